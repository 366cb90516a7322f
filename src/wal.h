/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The spool's write-ahead log (SPOOL_WAL=on), shared by spool.c (the
 * connector's appends), spool_queue.c (nsps-deliver's recovery and
 * checkpoints) and the fuzz harness of its reader.  See wal.c.
 */
#ifndef NSPS_WAL_H
#define NSPS_WAL_H

#define WAL_DIR			"wal"
#define WAL_BLOCK		4096
#define WAL_DATA		(2 * WAL_BLOCK)	/* the first record */
#define WAL_REC_HEAD		32
#define WAL_ALIGN		8
#define WAL_NAME_MAX		32
#define WAL_SIZE_MIN		(64 * 1024)
#define WAL_SIZE_MAX		(1024ULL * 1024 * 1024)
#define WAL_SIZE_DEFAULT	(16 * 1024 * 1024)
/* A FastCGI process's requests at once, with the log: one per thread. */
#define WAL_THREADS		8
/*
 * Segments this large get a flusher (see wal.c): in a smaller one the
 * syncfs(2) of a full segment has little to write anyway.
 */
#define WAL_FLUSH_MIN		(1024 * 1024)

/* A record, as read back from a segment: pointers into it. */
struct wal_rec {
	uint64_t	 off;		/* where it starts */
	uint64_t	 len;		/* with its padding */
	const char	*id;
	size_t		 id_len;
	const char	*meta;
	size_t		 meta_len;
	const char	*body;
	size_t		 body_len;
	uint32_t	 body_crc;
};

/* One segment, mapped for reading. */
struct wal_seg {
	int		 fd;
	char		 name[WAL_NAME_MAX];
	uint32_t	 gen;
	uint64_t	 size;
	uint64_t	 ckpt;		/* records before it are covered */
	int64_t		 ckpt_ms;	/* when; 0: never */
	const unsigned char *map;
	int		 owned;		/* a live connector appends to it */
};

/*
 * A connector process's own segment, shared by its threads: lock
 * guards every member after it (see wal_append()).
 */
struct wal {
	pthread_mutex_t	 lock;
	pthread_cond_t	 synced;	/* a sync ended: its waiters */
	pthread_cond_t	 changed;	/* inflight, syncing, broken: room */
	int		 root;		/* the spool, for syncfs(2) */
	int		 dir;		/* wal/ */
	int		 fd;		/* -1: none claimed yet */
	char		 name[WAL_NAME_MAX];
	uint32_t	 gen;
	uint64_t	 size;
	uint64_t	 off;		/* the next record's place */
	int		 broken;	/* a failed append: claim another */
	int		 sync_error;	/* why it broke, for the waiters */
	unsigned	 inflight;	/* appended, their files not yet written */
	uint64_t	 syncs_started;	/* fdatasync(2) calls begun */
	uint64_t	 syncs_done;	/* the last of them that succeeded */
	int		 syncing;	/* one is running */
	pthread_cond_t	 flush_cv;	/* wakes the flusher */
	int		 flush_wanted;	/* a quarter of the segment filled */
	int		 flusher;	/* the flusher thread runs */
	struct buf	 rec;		/* reused for each record */
};

/* What the log holds now, for --stats and the metrics. */
struct wal_stats {
	size_t		 segments;
	uint64_t	 size;		/* all segments */
	uint64_t	 pending_bytes;	/* records after the checkpoints */
	size_t		 pending;
	int64_t		 checkpoint_ms;	/* the oldest checkpoint still needed */
};

/*
 * Called for each record after a segment's checkpoint: 1 its event is
 * in the spool (restored if need be), 0 not yet (its connector is still
 * storing it), -1 an error that stops the checkpoint.
 */
typedef int (*wal_restore_fn)(void *, const struct wal_rec *, int);

uint32_t crc32c(uint32_t, const void *, size_t);
int	 wal_head_parse(const unsigned char *, size_t, uint32_t *, uint64_t *);
int	 wal_ckpt_parse(const unsigned char *, size_t, uint32_t, uint64_t,
	    uint64_t *, int64_t *);
int	 wal_rec_parse(const unsigned char *, uint64_t, uint32_t, uint64_t,
	    struct wal_rec *);
int	 wal_seg_name_valid(const char *);

void	 wal_init(struct wal *);
int	 wal_open(struct wal *, int, uint64_t);
void	 wal_close(struct wal *);
void	 wal_release(struct wal *);
int	 wal_claim(struct wal *, wal_restore_fn, void *);
int	 wal_append(struct wal *, const char *, size_t, const char *, size_t,
	    const char *, size_t, uint32_t);
void	 wal_done(struct wal *, int);
int	 wal_checkpoint(int, wal_restore_fn, void *, int, size_t *);
int	 wal_stats(int, struct wal_stats *);

#endif /* NSPS_WAL_H */
