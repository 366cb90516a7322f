/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The spool's own: shared by spool.c (the format and the connector's
 * store) and spool_queue.c (nsps-deliver's queue), and by the tests of
 * their parsers.  Nothing else needs it.
 */
#ifndef NSPS_SPOOL_H
#define NSPS_SPOOL_H

#include "wal.h"

/*
 * The spool's folders, opened once.  Shared with nsps-deliver,
 * which owns cur/ and the folders after it.
 */
#define SPOOL_ID_MAX		EVENT_ID_MAX	/* ids name files */
enum spool_dir {
	SPOOL_TMP,
	SPOOL_IDS,
	SPOOL_META,
	SPOOL_NEW,
	SPOOL_CUR,
	SPOOL_RETRY,
	SPOOL_DONE,
	SPOOL_FAILED,
	SPOOL_STATUS,
	SPOOL_APPLIED,
	SPOOL_LOCKS,
	SPOOL_NDIRS
};
extern const char *const spool_dirs[SPOOL_NDIRS];

struct spool {
	int		 root;
	/* SPOOL_WAL=on in a FastCGI process: the log, once claimed. */
	int		 wal_wanted;
	uint64_t	 wal_size;
	long long	 wal_retry_ms;	/* when a failed claim is tried again */
	int		 wal_claimed;	/* usable at the last look: atomic */
	struct wal	 wal;
	void		(*log)(const char *, ...)
			    __attribute__((__format__(__printf__, 1, 2)));
	int		 fd[SPOOL_NDIRS];
	pid_t		 pid;
	unsigned	 seq;
	int		 no_xattr;	/* metadata goes to meta/ */
	int		 no_tmpfile;	/* bodies are named in tmp/ */
	struct buf	 meta;
	char		 path[MAX_PATH_LEN + 1];
	char		 error[MAX_PATH_LEN + 256];	/* set: unusable */
};

int	 spool_open(struct spool *, const char *);
void	 spool_close(struct spool *);
int	 spool_wal_restore(void *, const struct wal_rec *, int);
int	 spool_body_whole(struct spool *, int, const char *,
	    const struct wal_rec *);


/* The metadata keys nsps-deliver reads back. */
#define META_TYPE		"event_type"
#define META_BILL		"bill_status"
#define META_TRACE		"trace_id"
#define META_REQUEST		"request_id"
#define META_XATTR		"user.nsps"
#define META_CRC		"crc32c"	/* of the body, as the log has it */

/* What is kept of an event's attempts: status/<id>. */
struct status {
	size_t		 attempts;
	long long	 first_ms;	/* first attempt, wall clock */
	long long	 next_ms;	/* when the next is due, if waiting */
	long long	 pid;		/* the handler running it, if any */
	long long	 pid_start;	/* and its start, in boot ticks */
	long long	 hold;		/* 1: a retry holding its key */
};

int	 status_parse(const char *, size_t, struct status *);

/* The spool as a queue: sorted lists of ids, filled from the folders. */
struct id_entry {
	char		*id;
	long long	 key;		/* arrival or due, wall ms */
	int		 parsed;	/* okey and version are known */
	char		*okey;		/* NULL: not ordered */
	struct version	 version;
	char		*why;		/* set: ORDER cannot place it */
	int		 hold;		/* a retry holding its key */
};

struct id_list {
	struct id_entry	*e;
	size_t		 n, next, cap;
};

struct spool_queue {
	struct spool	 sp;
	struct id_list	 fresh;		/* new/, oldest first */
	struct id_list	 retries;	/* retry/, due first */
	int		 fresh_dirty;	/* read new/ again */
	int		 ifd;		/* inotify on new/ */
	int		 lock;
	/* The key lock a claim in progress holds, and its key. */
	int		 claim_lock;
	char		 claim_key[ORDER_KEY_MAX + 1];
	const struct config *cfg;	/* ORDER's paths */
	void		(*log)(const char *, ...)
			    __attribute__((__format__(__printf__, 1, 2)));
};

int	 tmp_name_parse(const char *, char *, size_t, long *, char *);

int	 spool_queue_open(struct spool_queue *, struct queue *, const char *,
	    unsigned int, void (*)(const char *, ...), char *, size_t, int *);
int	 spool_store_queue_open(struct queue *, struct config *, unsigned int,
	    void (*)(const char *, ...), char *, size_t, int *);

#endif /* NSPS_SPOOL_H */
