/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The spool's write-ahead log (SPOOL_WAL=on).  A FastCGI connector
 * process acknowledges an event once one record of it, written over a
 * segment preallocated and written whole beforehand, is on disk by
 * fdatasync(2): the data alone, no inode, no directory.  The event's
 * files and links in the spool are written after it, as before, but
 * without their fsyncs; a checkpoint makes them durable later with one
 * syncfs(2), and recovery rebuilds from the records whatever a crash
 * took of them first.
 *
 *   wal/seg-NNNNNN   a segment: block 0 its head (the generation, the
 *                    size), block 1 its checkpoint (which generation,
 *                    up to where, when), then records from WAL_DATA
 *
 * A record: a 32-byte head (magic, generation, lengths, the body's
 * CRC-32C, the record's CRC-32C), the event_id, the metadata, the
 * body; padded to 8 bytes.  A record is valid when its magic, its
 * generation (the segment's) and its checksum hold; the first one that
 * does not ends the segment, so a torn tail, and anything left of an
 * earlier generation in a recycled segment, is never read as a record.
 *
 * Each connector process owns one segment, by flock(2), for its life:
 * no file lock is taken per request.  Its threads append to it in
 * turn, under a mutex, and share the fdatasync(2): one call makes every
 * record written before it durable, so a thread whose record was
 * written while another's call ran waits for the next call, which one
 * of the waiting threads makes for all of them (group commit).  When
 * its segment is full, once no thread is still writing its records'
 * files, it makes the whole spool durable (syncfs) and starts the
 * segment over with the next generation.  A segment no process owns is recovered before it is
 * reused, by the next connector that claims it or by nsps-deliver's
 * checkpoint.  The byte order is the host's: the log is not meant to
 * move between machines (a backup copies the spool, see
 * nsps-deliver(8)).
 */
#include "config.h"

#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"
#include "wal.h"

#define SEG_MAGIC		0x4c57504eU	/* "NPWL" */
#define CKPT_MAGIC		0x4b43504eU	/* "NPCK" */
#define REC_MAGIC		0x5257504eU	/* "NPWR" */
#define WAL_VERSION		1
#define HEAD_LEN		32	/* the used part of blocks 0 and 1 */
#define ZERO_CHUNK		(64 * 1024)

/*
 * CRC-32C (Castagnoli), reflected: the SSE4.2 instruction where the CPU
 * has it, eight bytes a step; else one table, a byte a step.  Chosen
 * once, before any thread can race on it.
 */
static uint32_t	 crc_table[256];
static uint32_t	(*crc_update)(uint32_t, const unsigned char *, size_t);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static uint32_t
crc_by_table(uint32_t crc, const unsigned char *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((__target__("sse4.2")))
static uint32_t
crc_by_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t	 c = crc, v;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&v, p, sizeof(v));
		c = __builtin_ia32_crc32di(c, v);
	}
	for (; len > 0; p++, len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	return (uint32_t)c;
}
#endif

static void
crc_choose(void)
{
	uint32_t	 c;
	size_t		 i;
	int		 k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
		crc_table[i] = c;
	}
	crc_update = crc_by_table;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		crc_update = crc_by_sse42;
#endif
}

uint32_t
crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc_once, crc_choose);
	return ~crc_update(~crc, data, len);
}

static void
put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void
put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t	 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t	 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
pad(uint64_t n)
{
	return (n + WAL_ALIGN - 1) & ~(uint64_t)(WAL_ALIGN - 1);
}

static int64_t
now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

/*
 * Block 0: magic, version, generation, size, when the generation
 * began, CRC-32C of the 28 bytes before it.  0 and the generation and
 * size, or -1.
 */
int
wal_head_parse(const unsigned char *p, size_t len, uint32_t *gen,
    uint64_t *size)
{
	if (len < HEAD_LEN || get32(p) != SEG_MAGIC ||
	    get32(p + 4) != WAL_VERSION ||
	    get32(p + 28) != crc32c(0, p, 28))
		return -1;
	*gen = get32(p + 8);
	*size = get64(p + 12);
	if (*gen == 0 || *size < WAL_SIZE_MIN || *size > WAL_SIZE_MAX ||
	    *size % WAL_BLOCK != 0)
		return -1;
	return 0;
}

static void
head_build(unsigned char *p, uint32_t gen, uint64_t size)
{
	memset(p, 0, HEAD_LEN);
	put32(p, SEG_MAGIC);
	put32(p + 4, WAL_VERSION);
	put32(p + 8, gen);
	put64(p + 12, size);
	put64(p + 20, (uint64_t)now_ms());
	put32(p + 28, crc32c(0, p, 28));
}

/*
 * Block 1: magic, generation, the offset the checkpoint covers, when,
 * CRC-32C.  0 with the offset and time, or -1 when it is not this
 * generation's or not whole (then nothing is covered).
 */
int
wal_ckpt_parse(const unsigned char *p, size_t len, uint32_t gen,
    uint64_t size, uint64_t *off, int64_t *ms)
{
	uint64_t	 o;

	if (len < HEAD_LEN || get32(p) != CKPT_MAGIC || get32(p + 4) != gen ||
	    get32(p + 24) != crc32c(0, p, 24))
		return -1;
	o = get64(p + 8);
	if (o < WAL_DATA || o > size || o % WAL_ALIGN != 0)
		return -1;
	*off = o;
	*ms = (int64_t)get64(p + 16);
	return 0;
}

/*
 * The record at off in a segment of size bytes and generation gen: 1
 * and rec filled, or 0 where there is none (the end of the log).
 */
int
wal_rec_parse(const unsigned char *map, uint64_t size, uint32_t gen,
    uint64_t off, struct wal_rec *rec)
{
	const unsigned char *h;
	uint64_t	 total;
	uint32_t	 crc;
	size_t		 id_len, meta_len, body_len;

	if (off < WAL_DATA || off % WAL_ALIGN != 0 || off > size ||
	    size - off < WAL_REC_HEAD)
		return 0;
	h = map + off;
	if (get32(h) != REC_MAGIC || get32(h + 4) != gen ||
	    h[10] != 0 || h[11] != 0 || get32(h + 24) != 0)
		return 0;
	id_len = (size_t)h[8] | (size_t)h[9] << 8;
	meta_len = get32(h + 12);
	body_len = get32(h + 16);
	total = pad((uint64_t)WAL_REC_HEAD + id_len + meta_len + body_len);
	if (id_len == 0 || id_len > EVENT_ID_MAX || total > size - off)
		return 0;
	crc = crc32c(0, h, 28);
	crc = crc32c(crc, h + WAL_REC_HEAD, id_len + meta_len + body_len);
	if (crc != get32(h + 28))
		return 0;
	if (!event_id_valid((const char *)h + WAL_REC_HEAD, id_len))
		return 0;
	rec->off = off;
	rec->len = total;
	rec->id = (const char *)h + WAL_REC_HEAD;
	rec->id_len = id_len;
	rec->meta = rec->id + id_len;
	rec->meta_len = meta_len;
	rec->body = rec->meta + meta_len;
	rec->body_len = body_len;
	rec->body_crc = get32(h + 20);
	return 1;
}

/* "seg-" and six digits: the only names the log makes. */
int
wal_seg_name_valid(const char *name)
{
	size_t	 i;

	if (strncmp(name, "seg-", 4) != 0 || strlen(name) != 10)
		return 0;
	for (i = 4; i < 10; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return 1;
}

/* Writes a block's head and makes it durable. */
static int
block_write(int fd, const unsigned char *p, off_t where)
{
	if (pwrite(fd, p, HEAD_LEN, where) != HEAD_LEN) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

static int
ckpt_write(int fd, uint32_t gen, uint64_t off)
{
	unsigned char	 p[HEAD_LEN];

	memset(p, 0, sizeof(p));
	put32(p, CKPT_MAGIC);
	put32(p + 4, gen);
	put64(p + 8, off);
	put64(p + 16, (uint64_t)now_ms());
	put32(p + 24, crc32c(0, p, 24));
	return block_write(fd, p, WAL_BLOCK);
}

/* Maps an open segment and reads its head and checkpoint. */
static int
seg_load(struct wal_seg *s, int fd, const char *name)
{
	struct stat	 st;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	snprintf(s->name, sizeof(s->name), "%s", name);
	if (fstat(fd, &st) == -1)
		return -1;
	if (st.st_size < WAL_SIZE_MIN || (uint64_t)st.st_size > WAL_SIZE_MAX) {
		errno = EINVAL;
		return -1;
	}
	s->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		return -1;
	}
	if (wal_head_parse(s->map, WAL_BLOCK, &s->gen, &s->size) == -1 ||
	    s->size != (uint64_t)st.st_size) {
		munmap((void *)s->map, (size_t)st.st_size);
		s->map = NULL;
		errno = EINVAL;
		return -1;
	}
	if (wal_ckpt_parse(s->map + WAL_BLOCK, WAL_BLOCK, s->gen, s->size,
	    &s->ckpt, &s->ckpt_ms) == -1) {
		s->ckpt = WAL_DATA;
		s->ckpt_ms = (int64_t)get64(s->map + 20);
	}
	return 0;
}

static void
seg_unload(struct wal_seg *s)
{
	if (s->map != NULL)
		munmap((void *)s->map, (size_t)s->size);
	s->map = NULL;
}

/*
 * Calls restore for each record after the checkpoint, in order, until
 * one is not in the spool yet.  Returns where the covered records end,
 * or -1.
 */
static int64_t
seg_walk(struct wal_seg *s, wal_restore_fn restore, void *arg, int rebuild)
{
	struct wal_rec	 r;
	uint64_t	 off = s->ckpt;
	int		 rc;

	while (wal_rec_parse(s->map, s->size, s->gen, off, &r)) {
		if (restore != NULL) {
			if ((rc = restore(arg, &r, rebuild)) == -1)
				return -1;
			if (rc == 0)
				break;
		}
		off += r.len;
	}
	return (int64_t)off;
}

/* Once, before wal_open(): the lock lives as long as the process. */
void
wal_init(struct wal *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->synced, NULL);
	pthread_cond_init(&w->flush_cv, NULL);
	pthread_cond_init(&w->changed, NULL);
	w->root = w->dir = w->fd = -1;
}

int
wal_open(struct wal *w, int root, uint64_t size)
{
	w->root = root;
	w->fd = -1;
	w->size = size;
	if (mkdirat(root, WAL_DIR, 0700) == -1 && errno != EEXIST)
		return -1;
	w->dir = openat(root, WAL_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	return w->dir == -1 ? -1 : 0;
}

/* Lets go of this process's segment, for recovery or the next claim. */
void
wal_release(struct wal *w)
{
	if (w->fd != -1)
		close(w->fd);	/* and with it the lock */
	w->fd = -1;
	w->broken = 0;
	w->sync_error = 0;
}

void
wal_close(struct wal *w)
{
	wal_release(w);
	if (w->dir != -1)
		close(w->dir);
	w->dir = -1;
	buf_free(&w->rec);
}

/* Starts the segment over: the next generation, nothing in it. */
static int
recycle(struct wal *w)
{
	unsigned char	 p[HEAD_LEN];

	head_build(p, w->gen + 1, w->size);
	if (block_write(w->fd, p, 0) == -1)
		return -1;
	w->gen++;
	w->off = WAL_DATA;
	return 0;
}

/*
 * A new segment, written whole (zeros) and named only once it is on
 * disk, so that no later write to it changes anything but its data.
 */
static int
seg_create(struct wal *w)
{
	unsigned char	 head[HEAD_LEN];
	char		 tmp[WAL_NAME_MAX], name[WAL_NAME_MAX];
	char		*zero;
	uint64_t	 off;
	unsigned int	 k;
	int		 fd, save;

	snprintf(tmp, sizeof(tmp), "tmp-%ld", (long)getpid());
	fd = openat(w->dir, tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if ((zero = calloc(1, ZERO_CHUNK)) == NULL)
		goto fail;
	/* Room first, so a full disk says so at once. */
	if (fallocate(fd, 0, 0, (off_t)w->size) == -1 &&
	    errno != EOPNOTSUPP) {
		free(zero);
		goto fail;
	}
	for (off = 0; off < w->size; off += ZERO_CHUNK)
		if (pwrite(fd, zero, ZERO_CHUNK, (off_t)off) != ZERO_CHUNK) {
			free(zero);
			if (errno == 0)
				errno = EIO;
			goto fail;
		}
	free(zero);
	head_build(head, 1, w->size);
	if (pwrite(fd, head, HEAD_LEN, 0) != HEAD_LEN || fsync(fd) == -1 ||
	    flock(fd, LOCK_EX | LOCK_NB) == -1)
		goto fail;
	for (k = 0; k < 1000000; k++) {
		snprintf(name, sizeof(name), "seg-%06u", k);
		if (linkat(w->dir, tmp, w->dir, name, 0) == 0)
			break;
		if (errno != EEXIST)
			goto fail;
	}
	if (k == 1000000) {
		errno = ENOSPC;
		goto fail;
	}
	unlinkat(w->dir, tmp, 0);
	if (fsync(w->dir) == -1) {
		save = errno;
		close(fd);
		errno = save;
		return -1;
	}
	w->fd = fd;
	w->gen = 1;
	w->off = WAL_DATA;
	snprintf(w->name, sizeof(w->name), "%s", name);
	return 0;
fail:
	save = errno != 0 ? errno : EIO;
	close(fd);
	unlinkat(w->dir, tmp, 0);
	errno = save;
	return -1;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A segment a killed connector was making: "tmp-" and its pid. */
static void
tidy(int dir, const char *name)
{
	const char	*p;
	long long	 pid = 0;

	if (strncmp(name, "tmp-", 4) != 0 || name[4] == '\0')
		return;
	for (p = name + 4; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || pid > INT_MAX / 10)
			return;
		pid = pid * 10 + (*p - '0');
	}
	if (pid <= 0 || pid > INT_MAX)
		return;
	if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		unlinkat(dir, name, 0);
}

/*
 * The segments' names, sorted; NULL-terminated, or NULL.  With tmp, the
 * half-made segments of dead processes are removed on the way.
 */
static char **
seg_list(int dir, int tmp)
{
	struct dirent	*de;
	DIR		*d;
	char		**v = NULL, **nv;
	size_t		 n = 0;
	int		 fd;

	if ((fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL)
		goto out;
	while ((de = readdir(d)) != NULL) {
		if (tmp)
			tidy(dir, de->d_name);
		if (!wal_seg_name_valid(de->d_name))
			continue;
		if ((nv = realloc(v, (n + 2) * sizeof(*v))) == NULL)
			break;
		v = nv;
		if ((v[n] = strdup(de->d_name)) == NULL)
			break;
		v[++n] = NULL;
	}
	qsort(v, n, sizeof(*v), name_cmp);
out:
	closedir(d);
	return v;
}

static void
seg_list_free(char **v)
{
	size_t	 i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/*
 * Recovers a segment no process owns (its lock is ours): every record
 * after its checkpoint is restored, all of it made durable, and the
 * checkpoint moved past them.
 */
static int
seg_recover(int root, struct wal_seg *s, wal_restore_fn restore, void *arg)
{
	int64_t	 end;

	if ((end = seg_walk(s, restore, arg, 1)) == -1)
		return -1;
	if ((uint64_t)end == s->ckpt)
		return 0;
	if (syncfs(root) == -1)
		return -1;
	return ckpt_write(s->fd, s->gen, (uint64_t)end);
}

/*
 * A segment for this process: the first one no other process owns,
 * recovered and started over, or a new one.
 */
int
wal_claim(struct wal *w, wal_restore_fn restore, void *arg)
{
	struct wal_seg	 s;
	char		**names;
	size_t		 i;
	int		 fd, rc = -1, save;

	wal_release(w);
	if ((names = seg_list(w->dir, 0)) == NULL)
		return -1;
	for (i = 0; names[i] != NULL && w->fd == -1; i++) {
		fd = openat(w->dir, names[i], O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == -1 ||
		    seg_load(&s, fd, names[i]) == -1) {
			close(fd);
			continue;
		}
		rc = seg_recover(w->root, &s, restore, arg);
		save = errno;
		seg_unload(&s);
		if (rc == -1) {
			close(fd);
			seg_list_free(names);
			errno = save;
			return -1;
		}
		w->fd = fd;
		w->gen = s.gen;
		w->size = s.size;
		snprintf(w->name, sizeof(w->name), "%s", names[i]);
		if (recycle(w) == -1) {
			save = errno;
			wal_release(w);
			seg_list_free(names);
			errno = save;
			return -1;
		}
	}
	seg_list_free(names);
	if (w->fd != -1)
		return 0;
	return seg_create(w);
}

/*
 * A broken segment is let go once no thread is left on it, so that
 * nsps-deliver's checkpoint, or this process's next claim, recovers
 * what its records hold.
 */
static void
let_go(struct wal *w)
{
	if (w->broken && __atomic_load_n(&w->inflight, __ATOMIC_ACQUIRE) == 0 &&
	    !w->syncing)
		wal_release(w);
}

/* A record that did not reach the disk must never be read back. */
static void
unwrite(struct wal *w, uint64_t at)
{
	static const unsigned char zero[WAL_REC_HEAD];

	/*
	 * Where even this fails, recovery may restore an event that was
	 * answered 503: delivered, if unasked, but never lost.
	 */
	w->broken = 1;
	if (pwrite(w->fd, zero, sizeof(zero), (off_t)at) !=
	    (ssize_t)sizeof(zero))
		w->off = w->size;
}

/*
 * Waits, lock held, until an fdatasync(2) begun after this thread's
 * record was written has succeeded: the next one, run by whichever
 * waiting thread finds none running.  Returns 0 with the lock
 * released.  A failed one breaks the segment for every record it did
 * not cover: -1, the lock still held, and each is unwritten by its own
 * thread, and no record is appended after them.
 */
static int
group_sync(struct wal *w, uint64_t need)
{
	uint64_t	 mine;
	int		 rc, save;

	while (w->syncs_done < need) {
		if (w->sync_error != 0) {
			errno = w->sync_error;
			return -1;
		}
		if (w->syncing) {
			pthread_cond_wait(&w->synced, &w->lock);
			continue;
		}
		w->syncing = 1;
		mine = ++w->syncs_started;
		pthread_mutex_unlock(&w->lock);
		rc = fdatasync(w->fd);
		save = errno;
		pthread_mutex_lock(&w->lock);
		w->syncing = 0;
		if (rc == 0) {
			/*
			 * Its own record covered: woken after the unlock,
			 * the waiters do not queue on the lock behind it.
			 */
			w->syncs_done = mine;
			pthread_mutex_unlock(&w->lock);
			pthread_cond_broadcast(&w->synced);
			pthread_cond_broadcast(&w->changed);
			return 0;
		}
		w->broken = 1;
		w->sync_error = save != 0 ? save : EIO;
		pthread_cond_broadcast(&w->synced);
		pthread_cond_broadcast(&w->changed);
	}
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/*
 * The flusher, a thread of its own: each time a quarter of the segment
 * has filled, it writes the spool's files back (syncfs(2)) while the
 * requests go on, so that the syncfs a full segment needs before it
 * starts over finds little left to write, and the requests waiting for
 * that one wait less.  Nothing relies on what it makes durable: the
 * records and the checkpoints have their own syncs.
 */
static void *
flusher_main(void *arg)
{
	struct wal	*w = arg;
	int		 root;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->flush_wanted)
			pthread_cond_wait(&w->flush_cv, &w->lock);
		w->flush_wanted = 0;
		root = w->root;
		pthread_mutex_unlock(&w->lock);
		(void)syncfs(root);
		pthread_mutex_lock(&w->lock);
	}
	return NULL;
}

/*
 * Lock held: wakes the flusher, started at the first need, when a
 * record from off to end fills a quarter of a large enough segment.
 */
static void
flush_if_due(struct wal *w, uint64_t off, uint64_t end)
{
	pthread_attr_t	 attr;
	pthread_t	 t;
	uint64_t	 quarter = w->size / 4;

	if (w->size < WAL_FLUSH_MIN || off / quarter == end / quarter)
		return;
	if (!w->flusher) {
		if (pthread_attr_init(&attr) != 0)
			return;
		(void)pthread_attr_setdetachstate(&attr,
		    PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, flusher_main, w) == 0)
			w->flusher = 1;
		pthread_attr_destroy(&attr);
		if (!w->flusher)
			return;
	}
	w->flush_wanted = 1;
	pthread_cond_signal(&w->flush_cv);
}

/*
 * Room for a record of total bytes: a full segment is started over
 * once everything its records name is on disk, which waits for the
 * threads still writing their events' files.  -1 with EBADF: the
 * segment broke meanwhile, by another thread's failure.
 */
static int
make_room(struct wal *w, uint64_t total)
{
	int	 save;

	while (w->off + total > w->size) {
		if (w->fd == -1 || w->broken) {
			errno = EBADF;
			return -1;
		}
		if (__atomic_load_n(&w->inflight, __ATOMIC_ACQUIRE) > 0 ||
		    w->syncing) {
			pthread_cond_wait(&w->changed, &w->lock);
			continue;
		}
		if (syncfs(w->root) == -1 || recycle(w) == -1) {
			save = errno;
			w->broken = 1;
			let_go(w);
			pthread_cond_broadcast(&w->changed);
			errno = save;
			return -1;
		}
	}
	return 0;
}

/* The record in w->rec, padded, for the generation now. */
static int
rec_build(struct wal *w, const char *id, size_t id_len, const char *meta,
    size_t meta_len, const char *body, size_t body_len, uint32_t body_crc,
    uint64_t total)
{
	unsigned char	 h[WAL_REC_HEAD];
	uint32_t	 crc;

	memset(h, 0, sizeof(h));
	put32(h, REC_MAGIC);
	put32(h + 4, w->gen);
	h[8] = (unsigned char)(id_len & 0xff);
	h[9] = (unsigned char)(id_len >> 8);
	put32(h + 12, (uint32_t)meta_len);
	put32(h + 16, (uint32_t)body_len);
	put32(h + 20, body_crc);
	crc = crc32c(0, h, 28);
	crc = crc32c(crc, id, id_len);
	crc = crc32c(crc, meta, meta_len);
	crc = crc32c(crc, body, body_len);
	put32(h + 28, crc);
	w->rec.len = 0;
	if (buf_add(&w->rec, (const char *)h, sizeof(h)) == -1 ||
	    buf_add(&w->rec, id, id_len) == -1 ||
	    buf_add(&w->rec, meta, meta_len) == -1 ||
	    buf_add(&w->rec, body, body_len) == -1 ||
	    buf_reserve(&w->rec, total - w->rec.len) == -1) {
		errno = ENOMEM;
		return -1;
	}
	memset(w->rec.data + w->rec.len, 0, total - w->rec.len);
	return 0;
}

/*
 * Appends one record and makes it durable: 0, or -1 with errno
 * (EFBIG: it would never fit in a segment; EBADF: the segment is
 * broken or gone, and nothing was written).  Records are written in
 * turn, under the lock, so that they follow each other with no gap;
 * the fdatasync(2) is shared (group_sync()).  After 0 the caller
 * writes the event's files and then calls wal_done(): until every
 * thread has, a full segment is not started over.
 */
int
wal_append(struct wal *w, const char *id, size_t id_len, const char *meta,
    size_t meta_len, const char *body, size_t body_len, uint32_t body_crc)
{
	uint64_t	 total, at;
	ssize_t		 n;
	int		 save;

	total = pad((uint64_t)WAL_REC_HEAD + id_len + meta_len + body_len);
	pthread_mutex_lock(&w->lock);
	if (w->fd == -1 || w->broken) {
		pthread_mutex_unlock(&w->lock);
		errno = EBADF;
		return -1;
	}
	if (id_len > EVENT_ID_MAX || total > w->size - WAL_DATA) {
		pthread_mutex_unlock(&w->lock);
		errno = EFBIG;
		return -1;
	}
	if (make_room(w, total) == -1 || rec_build(w, id, id_len, meta,
	    meta_len, body, body_len, body_crc, total) == -1) {
		save = errno;
		pthread_mutex_unlock(&w->lock);
		errno = save;
		return -1;
	}
	at = w->off;
	errno = 0;
	n = pwrite(w->fd, w->rec.data, total, (off_t)at);
	if (n != (ssize_t)total) {
		save = n >= 0 || errno == 0 ? EIO : errno;
		unwrite(w, at);
		let_go(w);
		pthread_cond_broadcast(&w->changed);
		pthread_mutex_unlock(&w->lock);
		errno = save;
		return -1;
	}
	flush_if_due(w, w->off, w->off + total);
	w->off += total;
	__atomic_add_fetch(&w->inflight, 1, __ATOMIC_ACQ_REL);
	if (group_sync(w, w->syncs_started + 1) == -1) {
		save = errno;
		unwrite(w, at);
		__atomic_sub_fetch(&w->inflight, 1, __ATOMIC_ACQ_REL);
		let_go(w);
		pthread_cond_broadcast(&w->changed);
		pthread_mutex_unlock(&w->lock);
		errno = save;
		return -1;
	}
	return 0;
}

/*
 * The event of a record wal_append() made durable has its files now
 * (ok), or they failed: then no more records go to this segment, and
 * it is let go (let_go()).
 */
void
wal_done(struct wal *w, int ok)
{
	/*
	 * Without the lock while others are still in flight: only the
	 * last one can let a full segment start over, or let it go.
	 * make_room() reads inflight under the lock, which the last one
	 * takes before it wakes it, so no wake-up is lost.
	 */
	if (ok && __atomic_sub_fetch(&w->inflight, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	pthread_mutex_lock(&w->lock);
	if (!ok) {
		w->broken = 1;
		__atomic_sub_fetch(&w->inflight, 1, __ATOMIC_ACQ_REL);
	}
	let_go(w);
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->lock);
}

/*
 * nsps-deliver's checkpoint: segments no process owns are recovered;
 * in the others, the records whose events are already in the spool
 * are covered.  One syncfs(2) makes all of those durable before any
 * checkpoint says so.  *pending: records left after it.
 */
int
wal_checkpoint(int root, wal_restore_fn restore, void *arg, int flags,
    size_t *pending)
{
	struct wal_seg	*segs = NULL;
	struct wal_rec	 r;
	char		**names;
	size_t		 n = 0, i, todo = 0;
	int64_t		 end;
	uint64_t	 off;
	int		 dir, fd, rc = 0;

	(void)flags;
	*pending = 0;
	dir = openat(root, WAL_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (dir == -1)
		return errno == ENOENT ? 0 : -1;
	if ((names = seg_list(dir, 1)) == NULL) {
		close(dir);
		return -1;
	}
	for (i = 0; names[i] != NULL; i++)
		continue;
	if (i > 0 && (segs = calloc(i, sizeof(*segs))) == NULL) {
		rc = -1;
		goto out;
	}
	for (i = 0; names[i] != NULL; i++) {
		fd = openat(dir, names[i], O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			continue;
		if (seg_load(&segs[n], fd, names[i]) == -1) {
			close(fd);
			continue;
		}
		segs[n].owned = flock(fd, LOCK_EX | LOCK_NB) == -1;
		end = seg_walk(&segs[n], restore, arg, !segs[n].owned);
		/*
		 * Restored: a connector may claim it now, and recover it
		 * again itself; this checkpoint then names a generation
		 * gone, and is ignored.
		 */
		if (!segs[n].owned)
			(void)flock(fd, LOCK_UN);
		if (end == -1) {
			rc = -1;
			n++;
			goto out;
		}
		/* What is left: records still being stored. */
		for (off = (uint64_t)end; wal_rec_parse(segs[n].map,
		    segs[n].size, segs[n].gen, off, &r); off += r.len)
			(*pending)++;
		if ((uint64_t)end > segs[n].ckpt) {
			segs[n].ckpt = (uint64_t)end;
			todo++;
			n++;
		} else {
			seg_unload(&segs[n]);
			close(fd);
		}
	}
	if (todo > 0 && syncfs(root) == -1) {
		rc = -1;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (ckpt_write(segs[i].fd, segs[i].gen, segs[i].ckpt) == -1)
			rc = -1;
out:
	for (i = 0; i < n; i++) {
		seg_unload(&segs[i]);
		close(segs[i].fd);
	}
	free(segs);
	seg_list_free(names);
	close(dir);
	return rc;
}

/* What the log holds: read only, no lock taken. */
int
wal_stats(int root, struct wal_stats *st)
{
	struct wal_seg	 s;
	struct wal_rec	 r;
	char		**names;
	uint64_t	 off;
	size_t		 i, before;
	int		 dir, fd;

	memset(st, 0, sizeof(*st));
	st->checkpoint_ms = -1;
	dir = openat(root, WAL_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (dir == -1)
		return errno == ENOENT ? 0 : -1;
	if ((names = seg_list(dir, 0)) == NULL) {
		close(dir);
		return -1;
	}
	for (i = 0; names[i] != NULL; i++) {
		fd = openat(dir, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			continue;
		if (seg_load(&s, fd, names[i]) == -1) {
			close(fd);
			continue;
		}
		st->segments++;
		st->size += s.size;
		before = st->pending;
		for (off = s.ckpt; wal_rec_parse(s.map, s.size, s.gen, off,
		    &r); off += r.len) {
			st->pending++;
			st->pending_bytes += r.len;
		}
		if (st->pending > before &&
		    (st->checkpoint_ms == -1 || s.ckpt_ms < st->checkpoint_ms))
			st->checkpoint_ms = s.ckpt_ms;
		seg_unload(&s);
		close(fd);
	}
	seg_list_free(names);
	close(dir);
	return 0;
}
