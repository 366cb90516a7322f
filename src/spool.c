/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The spool: an accepted event is made durable, and its event_id
 * claimed, before it is acknowledged.  Maildir style, one directory
 * per state, every step a link(2) or rename(2) so a crash at any point
 * leaves either nothing or a state nsps-deliver's recovery completes:
 *
 *   (unnamed file in tmp/)   the body exactly as received, with its
 *                            metadata (JSON) in the extended attribute
 *                            user.nsps; one fsync(2) makes both durable
 *   ids/<id>                 the first link to the body: the dedupe
 *                            gate.  link(2) fails with EEXIST for the
 *                            second copy, on any connection, whatever
 *                            the worker does
 *   new/<id>                 second link to the body: handed to the worker
 *
 * The body is an O_TMPFILE file, so a store that dies before the gate
 * leaves nothing behind and tmp/ itself is never written.  Then ids/ is
 * fsync'd; only then is the event answered 202.  That is two fsyncs an
 * event, each guarding what a power cut could otherwise lose:
 *
 *   fsync(body)   before the gate, so no name, ever, points at a body
 *                 that is not whole: a marker that outlived a crash
 *                 would make NSPS's retry a 200 for an empty event;
 *   fsync(ids/)   before the 202: the marker, the one name from which
 *                 nsps-deliver's recovery can rebuild every other.
 *
 * new/ is not fsync'd: a new/ link lost to a crash leaves a marker with
 * one link, which recovery links into new/ again (see nsps-deliver(8)).
 * At rest an accepted event's body has exactly two links: ids/<id> and
 * the state folder it is in.
 *
 * Where the file system has no O_TMPFILE (or no /proc to link one
 * through), the body is tmp/<id>,<pid>,<seq>,b instead, and its tmp/
 * name is removed after the link into new/; that unlink is not fsync'd
 * either, and a tmp link that comes back shares its inode with the
 * marker, which recovery knows.  Where the file system has no room for
 * the attribute (or none at all), the metadata goes to
 * tmp/<id>,<pid>,<seq>,m, is fsync'd, and is renamed into meta/<id>
 * after the gate; the body is then named in tmp/ as well, so recovery
 * finds the two together, and meta/ is fsync'd too.
 *
 * A failure before the gate removes what was written; past it nothing
 * is undone, because a concurrent copy may already have been answered
 * 200 on the strength of the marker: the complete copy stays in tmp/
 * and nsps-deliver's recovery links it into new/.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "extern.h"
#include "spool.h"

/*
 * The metadata of the event being stored, reused: one per thread, as
 * a FastCGI process may store several at once (see wal.c).
 */
static _Thread_local struct buf meta_line;

const char *const spool_dirs[SPOOL_NDIRS] = {
	"tmp", "ids", "meta", "new", "cur", "retry", "done", "failed",
	"status", "applied", "locks"
};

static int
set_error(struct spool *sp, const char *what, int err)
{
	snprintf(sp->error, sizeof(sp->error), "SPOOL_DIR: %s: %s: %s",
	    sp->path, what, strerror(err));
	return -1;
}

/*
 * Opens the spool once, creating its folders (mode 0700) when they are
 * missing.  Returns 0, or -1 with the reason in sp->error; a spool that
 * failed to open answers every store with that reason.
 */
int
spool_open(struct spool *sp, const char *path)
{
	size_t	 i;
	int	 fd;

	memset(sp, 0, sizeof(*sp));
	for (i = 0; i < SPOOL_NDIRS; i++)
		sp->fd[i] = -1;
	sp->root = -1;
	wal_init(&sp->wal);
	sp->log = log_msg;
	sp->pid = getpid();
	snprintf(sp->path, sizeof(sp->path), "%s", path);
	if ((sp->root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return set_error(sp, "open", errno);
	for (i = 0; i < SPOOL_NDIRS; i++) {
		if (mkdirat(sp->root, spool_dirs[i], 0700) == -1 &&
		    errno != EEXIST)
			return set_error(sp, spool_dirs[i], errno);
		fd = openat(sp->root, spool_dirs[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			return set_error(sp, spool_dirs[i], errno);
		sp->fd[i] = fd;
		/* Root passes any access check; others learn it now. */
		if (i <= SPOOL_NEW &&
		    faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) == -1)
			return set_error(sp, spool_dirs[i], errno);
	}
	/* An unnamed body is linked through /proc: see body_link(). */
	if (faccessat(AT_FDCWD, "/proc/self/fd", X_OK, 0) == -1)
		sp->no_tmpfile = 1;
	return 0;
}

void
spool_close(struct spool *sp)
{
	size_t	 i;

	for (i = 0; i < SPOOL_NDIRS; i++)
		if (sp->fd[i] != -1)
			close(sp->fd[i]);
	if (sp->root != -1)
		close(sp->root);
	sp->root = -1;
	for (i = 0; i < SPOOL_NDIRS; i++)
		sp->fd[i] = -1;
	if (sp->wal.dir != -1)
		wal_close(&sp->wal);
	buf_free(&sp->meta);
	buf_free(&meta_line);
}

static enum store_result
failed(char *why, size_t whylen, const char *what, int err)
{
	snprintf(why, whylen, "spool: %s: %s", what, strerror(err));
	return STORE_FAILED;
}

/*
 * Creates dir/name exclusively and writes data (to disk, with sync):
 * the metadata file, where the body's attribute cannot carry it.
 */
static int
write_file(int dir, const char *name, const char *data, size_t len, int sync)
{
	int	 fd, save;

	fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (write_all(fd, data, len) == -1 || (sync && fsync(fd) == -1)) {
		save = errno != 0 ? errno : EIO;
		close(fd);
		unlinkat(dir, name, 0);
		errno = save;
		return -1;
	}
	if (close(fd) == -1) {
		save = errno;
		unlinkat(dir, name, 0);
		errno = save;
		return -1;
	}
	return 0;
}

/*
 * The body's file: unnamed (O_TMPFILE) where the file system has them,
 * so a store that dies before the gate leaves nothing, and tmp/'s
 * directory is neither written nor locked; tmp/<bname> otherwise.
 */
static int
body_open(struct spool *sp, const char *bname, int *named)
{
	int	 fd;

	if (!sp->no_tmpfile) {
		fd = openat(sp->fd[SPOOL_TMP], ".", O_TMPFILE | O_WRONLY |
		    O_CLOEXEC, 0600);
		if (fd != -1) {
			*named = 0;
			return fd;
		}
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -1;
		sp->no_tmpfile = 1;
	}
	*named = 1;
	return openat(sp->fd[SPOOL_TMP], bname, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
}

/*
 * Links the body's file as dir/name: by its tmp/ name, or, unnamed, by
 * its descriptor's /proc link, which linkat(2) follows without the
 * privilege AT_EMPTY_PATH would need.
 */
static int
body_link(struct spool *sp, int fd, int named, const char *bname, int dir,
    const char *name)
{
	char	 path[64];

	if (named)
		return linkat(sp->fd[SPOOL_TMP], bname, dir, name, 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, path, dir, name, AT_SYMLINK_FOLLOW);
}

/*
 * Writes the body with its metadata in the extended attribute, and
 * with sync makes both durable; *sidecar says when the attribute could
 * not be set and the metadata needs a file, and then the body is named
 * in tmp/ too, so that recovery finds the two side by side.  Returns
 * the open file for the gate to link, or -1 with nothing left behind.
 */
static int
body_write(struct spool *sp, const struct buf *meta, const char *bname,
    const char *data, size_t len, int sync, int *named, int *sidecar)
{
	int	 fd, save;

	if ((fd = body_open(sp, bname, named)) == -1)
		return -1;
	if (write_all(fd, data, len) == -1)
		goto fail;
	if (!sp->no_xattr &&
	    fsetxattr(fd, META_XATTR, meta->data, meta->len, 0) == -1) {
		/* No attributes here at all, or no room for this one. */
		if (errno == ENOTSUP)
			sp->no_xattr = 1;
		else if (errno != E2BIG && errno != ENOSPC && errno != ERANGE)
			goto fail;
		*sidecar = 1;
	} else
		*sidecar = sp->no_xattr;
	if (*sidecar && !*named) {
		if (body_link(sp, fd, 0, NULL, sp->fd[SPOOL_TMP], bname) == -1)
			goto fail;
		*named = 1;
	}
	if (sync && fsync(fd) == -1)
		goto fail;
	return fd;
fail:
	save = errno != 0 ? errno : EIO;
	close(fd);
	if (*named)
		unlinkat(sp->fd[SPOOL_TMP], bname, 0);
	errno = save;
	return -1;
}

/*
 * The metadata kept beside the body: one line of JSON, short enough to
 * stay inside an ext4 inode (68 bytes of value with 256-byte inodes)
 * instead of taking a block of its own.  It holds the arrival time and
 * the body's size and CRC-32C; the request's trace and request ids
 * follow only when it had them.  The event_id is the file's name, and
 * nsps-deliver reads event type and bill status from the body.
 */
static int
build_meta(struct buf *b, const struct request *req, size_t len,
    uint32_t crc)
{
	struct timespec	 now;

	clock_gettime(CLOCK_REALTIME, &now);
	b->len = 0;
	if (buf_adds(b, "{\"received_ms\":") == -1 ||
	    buf_addu(b, (unsigned long long)now.tv_sec * 1000 +
	    (unsigned long long)now.tv_nsec / 1000000) == -1 ||
	    buf_adds(b, ",\"" META_CRC "\":") == -1 ||
	    buf_addu(b, crc) == -1 ||
	    buf_adds(b, ",\"size\":") == -1 ||
	    buf_addu(b, len) == -1)
		return -1;
	if (req->trace_id != NULL && buf_add_json_field(b, META_TRACE,
	    req->trace_id, strlen(req->trace_id)) == -1)
		return -1;
	if (req->unique_id != NULL && buf_add_json_field(b, META_REQUEST,
	    req->unique_id, strlen(req->unique_id)) == -1)
		return -1;
	return buf_adds(b, "}\n");
}

/*
 * The event_id was accepted before.  Its marker is made durable before
 * the 200, so that the answer never runs ahead of the disk: the copy it
 * points to was fsync'd before the marker was made.
 */
static enum store_result
duplicate(struct spool *sp, char *why, size_t whylen)
{
	if (fsync(sp->fd[SPOOL_IDS]) == -1)
		return failed(why, whylen, "ids", errno);
	return STORE_DUPLICATE;
}

/* A tmp/ name's sequence number: the process's threads share it. */
static unsigned
next_seq(struct spool *sp)
{
	return __atomic_add_fetch(&sp->seq, 1, __ATOMIC_RELAXED);
}

/*
 * The event's files: the body (with its metadata), the gate, the link
 * into new/; see the comment at the top of the file for the order of
 * the steps.  With sync, STORE_OK only once everything is on disk;
 * without it (the log holds the event) nothing is fsync'd.
 */
static enum store_result
spool_files(struct spool *sp, const struct buf *meta, const char *id,
    const char *body, size_t len, int sync, char *why, size_t whylen)
{
	char		 bname[SPOOL_ID_MAX + 64], mname[SPOOL_ID_MAX + 64];
	int		 tmp = sp->fd[SPOOL_TMP], fd, err, named, sidecar = 0;
	unsigned	 seq = next_seq(sp);

	snprintf(bname, sizeof(bname), "%s,%ld,%u,b", id, (long)sp->pid,
	    seq);
	snprintf(mname, sizeof(mname), "%s,%ld,%u,m", id, (long)sp->pid,
	    seq);
	if ((fd = body_write(sp, meta, bname, body, len, sync, &named,
	    &sidecar)) == -1)
		return failed(why, whylen, "tmp", errno);
	if (sidecar && write_file(tmp, mname, meta->data, meta->len,
	    sync) == -1) {
		err = errno;
		close(fd);
		unlinkat(tmp, bname, 0);
		return failed(why, whylen, "tmp", err);
	}
	err = body_link(sp, fd, named, bname, sp->fd[SPOOL_IDS], id) == -1 ?
	    errno : 0;
	/* fsync(2) has reported any write error: nothing is left to check. */
	close(fd);
	if (err != 0) {
		if (named)
			unlinkat(tmp, bname, 0);
		if (sidecar)
			unlinkat(tmp, mname, 0);
		if (err == EEXIST)
			return duplicate(sp, why, whylen);
		return failed(why, whylen, "ids", err);
	}
	/*
	 * Past the gate nothing is undone: a concurrent copy may already
	 * have been answered 200 on the strength of this one.  On failure
	 * what was linked stays, and nsps-deliver's recovery moves it on.
	 */
	if (sidecar && renameat(tmp, mname, sp->fd[SPOOL_META], id) == -1)
		return failed(why, whylen, "meta", errno);
	if (linkat(sp->fd[SPOOL_IDS], id, sp->fd[SPOOL_NEW], id, 0) == -1)
		return failed(why, whylen, "new", errno);
	if (named && unlinkat(tmp, bname, 0) == -1)
		return failed(why, whylen, "tmp", errno);
	if (!sync)
		return STORE_OK;
	/* The one directory a 202 needs on disk: see the top of the file. */
	if (fsync(sp->fd[SPOOL_IDS]) == -1)
		return failed(why, whylen, "ids", errno);
	if (sidecar && fsync(sp->fd[SPOOL_META]) == -1)
		return failed(why, whylen, "meta", errno);
	return STORE_OK;
}

/*
 * The log, when this process may use it: claimed once, at start-up or
 * at the first event; a claim that failed is tried again a second
 * later, and meanwhile events are stored without the log.  A broken
 * segment is let go once no thread still writes an event of it.
 */
static int
wal_ready_locked(struct spool *sp)
{
	long long	 now;

	if (sp->wal.fd != -1 && !sp->wal.broken)
		return 1;
	if (__atomic_load_n(&sp->wal.inflight, __ATOMIC_ACQUIRE) > 0)
		return 0;
	now = clock_ms(CLOCK_MONOTONIC);
	if (now < sp->wal_retry_ms)
		return 0;
	if ((sp->wal.dir == -1 &&
	    wal_open(&sp->wal, sp->root, sp->wal_size) == -1) ||
	    wal_claim(&sp->wal, spool_wal_restore, sp) == -1) {
		sp->log("SPOOL_WAL: %s/%s: %s; storing without the log for "
		    "now", sp->path, WAL_DIR, strerror(errno));
		sp->wal_retry_ms = now + 1000;
		return 0;
	}
	return 1;
}

static int
wal_ready(struct spool *sp)
{
	int	 ready;

	if (!sp->wal_wanted)
		return 0;
	/* The common case, without the lock: wal_append() looks again. */
	if (__atomic_load_n(&sp->wal_claimed, __ATOMIC_ACQUIRE))
		return 1;
	pthread_mutex_lock(&sp->wal.lock);
	ready = wal_ready_locked(sp);
	__atomic_store_n(&sp->wal_claimed, ready, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&sp->wal.lock);
	return ready;
}

/*
 * Acknowledged on the log: the record is made durable first, then the
 * files are written without fsyncs.  Once the record is on disk the
 * event is stored whatever happens to its files: recovery rebuilds
 * them from the record, so a failure there is logged and still a 202.
 * *nolog: the event is too large for a segment, or another thread's
 * failure broke the segment before this record was written: it is
 * stored with fsyncs instead.
 */
static enum store_result
wal_store(struct spool *sp, const struct buf *meta, const char *id,
    const char *body, size_t len, uint32_t crc, char *why, size_t whylen,
    int *nolog)
{
	enum store_result r;

	if (wal_append(&sp->wal, id, strlen(id), meta->data, meta->len,
	    body, len, crc) == -1) {
		if (errno == EBADF)
			__atomic_store_n(&sp->wal_claimed, 0,
			    __ATOMIC_RELEASE);
		if (errno == EFBIG || errno == EBADF) {
			*nolog = 1;
			return STORE_FAILED;
		}
		return failed(why, whylen, "wal", errno);
	}
	r = spool_files(sp, meta, id, body, len, 0, why, whylen);
	wal_done(&sp->wal, r != STORE_FAILED);
	if (r != STORE_FAILED)
		return r;
	sp->log("%s: %s; the log holds it, and recovery restores it", id,
	    why);
	/*
	 * The segment is let go once no thread is left on it (see
	 * wal_done()): then nsps-deliver's next checkpoint, or this
	 * process's next claim, recovers it.
	 */
	return STORE_OK;
}

/* The sink's store(): durable before STORE_OK, by the log or by fsync. */
static enum store_result
spool_store(void *ctx, const struct event *ev, const struct request *req,
    const char *body, size_t len, char *why, size_t whylen)
{
	struct spool	*sp = ctx;
	struct stat	 st;
	enum store_result r;
	uint32_t	 crc;
	char		 id[SPOOL_ID_MAX + 1];
	int		 log, nolog = 0;

	if (sp->error[0] != '\0') {
		snprintf(why, whylen, "%s", sp->error);
		return STORE_FAILED;
	}
	if (ev->event_id == NULL || ev->event_id_len > SPOOL_ID_MAX) {
		snprintf(why, whylen, "spool: no usable event_id");
		return STORE_FAILED;
	}
	memcpy(id, ev->event_id, ev->event_id_len);
	id[ev->event_id_len] = '\0';

	/* The common retry: answered without writing anything. */
	if (fstatat(sp->fd[SPOOL_IDS], id, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return duplicate(sp, why, whylen);

	/* Before the metadata: a claim may restore records with it. */
	log = wal_ready(sp);
	crc = crc32c(0, body, len);
	if (build_meta(&meta_line, req, len, crc) == -1)
		return failed(why, whylen, "metadata", ENOMEM);
	if (log) {
		r = wal_store(sp, &meta_line, id, body, len, crc, why, whylen,
		    &nolog);
		if (!nolog)
			return r;
	}
	return spool_files(sp, &meta_line, id, body, len, 1, why, whylen);
}

/* The copy's own metadata, parsed: the attribute, else meta/<id>. */
static struct json_object *
own_meta(struct spool *sp, int fd, const char *id)
{
	char	 buf[8192];
	ssize_t	 n;
	int	 mfd;

	if ((n = fgetxattr(fd, META_XATTR, buf, sizeof(buf) - 1)) <= 0) {
		if ((mfd = openat(sp->fd[SPOOL_META], id, O_RDONLY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			return NULL;
		n = read(mfd, buf, sizeof(buf) - 1);
		close(mfd);
	}
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return json_tokener_parse(buf);
}

/*
 * Whether folder/id holds a whole body: the record r's, if given, or
 * the one its own metadata describes (a duplicate's record may carry
 * other bytes than the copy that won).  1 whole, 0 not, -1 cannot tell
 * (no record, and no metadata with a CRC-32C).
 */
int
spool_body_whole(struct spool *sp, int folder, const char *id,
    const struct wal_rec *r)
{
	struct json_object *root, *o;
	struct stat	 st;
	char		 buf[8192];
	uint32_t	 c = 0;
	ssize_t		 n;
	int		 fd, whole = 0;

	if ((fd = openat(sp->fd[folder], id, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return 0;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		c = crc32c(c, buf, (size_t)n);
	if (n == 0 && r != NULL && (uint64_t)st.st_size == r->body_len &&
	    c == r->body_crc)
		whole = 1;
	else if (n == 0) {
		whole = -1;
		if ((root = own_meta(sp, fd, id)) != NULL) {
			if (json_object_object_get_ex(root, META_CRC, &o))
				whole = json_object_get_int64(o) ==
				    (int64_t)c &&
				    json_object_object_get_ex(root, "size",
				    &o) &&
				    json_object_get_int64(o) == st.st_size;
			json_object_put(root);
		}
	}
	close(fd);
	return whole;
}

/*
 * Writes the record's body and metadata over the file folder/id; the
 * syncfs(2) before the checkpoint moves makes them durable.
 */
static int
body_rewrite(struct spool *sp, int folder, const char *id,
    const struct wal_rec *r)
{
	char	 mname[SPOOL_ID_MAX + 64];
	int	 fd, rc = 0;

	if ((fd = openat(sp->fd[folder], id, O_WRONLY | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if (write_all(fd, r->body, r->body_len) == -1)
		rc = -1;
	else if (sp->no_xattr || fsetxattr(fd, META_XATTR, r->meta,
	    r->meta_len, 0) == -1) {
		snprintf(mname, sizeof(mname), "%s,%ld,%u,m", id,
		    (long)getpid(), next_seq(sp));
		if (write_file(sp->fd[SPOOL_TMP], mname, r->meta, r->meta_len,
		    0) == -1 || renameat(sp->fd[SPOOL_TMP], mname,
		    sp->fd[SPOOL_META], id) == -1)
			rc = -1;
	}
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

/*
 * The log's restore function: whether the record's event is in the
 * spool, and with rebuild, puts it there when a crash took it (or part
 * of it): 1 in place, 0 not yet, -1 it could not be restored.  Nothing
 * is fsync'd here: the checkpoint that covers the record comes after
 * one syncfs(2) of the whole spool.
 */
int
spool_wal_restore(void *ctx, const struct wal_rec *r, int rebuild)
{
	static const int folders[] = {
		SPOOL_IDS, SPOOL_NEW, SPOOL_CUR, SPOOL_RETRY, SPOOL_DONE,
		SPOOL_FAILED
	};
	struct spool	*sp = ctx;
	struct stat	 st;
	char		 id[SPOOL_ID_MAX + 1], why[256];
	size_t		 i;
	int		 at = -1;

	memcpy(id, r->id, r->id_len);
	id[r->id_len] = '\0';
	for (i = 0; i < sizeof(folders) / sizeof(folders[0]) && at == -1; i++)
		if (fstatat(sp->fd[folders[i]], id, &st,
		    AT_SYMLINK_NOFOLLOW) == 0)
			at = folders[i];
	if (!rebuild)
		return at == SPOOL_IDS;
	if (at == -1) {
		/* Nothing of it survived: stored again, durably. */
		sp->meta.len = 0;
		if (buf_add(&sp->meta, r->meta, r->meta_len) == -1)
			return -1;
		if (spool_files(sp, &sp->meta, id, r->body, r->body_len, 0, why,
		    sizeof(why)) == STORE_FAILED) {
			sp->log("%s: restoring from the log: %s", id, why);
			return -1;
		}
		sp->log("%s: restored from the log", id);
		return 1;
	}
	if (spool_body_whole(sp, at, id, r) != 1) {
		if (body_rewrite(sp, at, id, r) == -1) {
			sp->log("%s: restoring from the log: %s", id,
			    strerror(errno));
			return -1;
		}
		sp->log("%s: restored from the log", id);
	}
	/* A lost name: the marker, or any folder (recovery's ids/ pass). */
	if (at != SPOOL_IDS &&
	    linkat(sp->fd[at], id, sp->fd[SPOOL_IDS], id, 0) == -1 &&
	    errno != EEXIST)
		return -1;
	if (at == SPOOL_IDS && st.st_nlink == 1 &&
	    linkat(sp->fd[SPOOL_IDS], id, sp->fd[SPOOL_NEW], id, 0) == -1 &&
	    errno != EEXIST)
		return -1;
	return 1;
}

/*
 * The sink's backlog(): events in new/, for GET /health.  One readdir,
 * cheap while the worker keeps up; -1 when the spool is unusable.
 */
static long
spool_backlog(void *ctx)
{
	struct spool	*sp = ctx;
	struct dirent	*de;
	DIR		*d;
	long		 n = 0;
	int		 fd;

	if (sp->error[0] != '\0')
		return -1;
	if ((fd = openat(sp->fd[SPOOL_NEW], ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static const char *
spool_sink_error(const void *ctx, int *ex)
{
	const struct spool *sp = ctx;

	if (sp->error[0] == '\0')
		return NULL;
	*ex = EX_CONFIG_CODE;
	return sp->error;
}

static void
spool_sink_close(void *ctx)
{
	spool_close(ctx);
	free(ctx);
}

/*
 * FastCGI: this process stores many events, so it may own a segment of
 * the log; claimed now, before the first request waits for it.  With
 * the log, WAL_THREADS threads serve requests, so that their records
 * share each fdatasync(2) (see wal.c).
 */
static int
spool_serving(void *ctx)
{
	struct spool	*sp = ctx;

	if (sp->error[0] != '\0')
		return 1;
	sp->wal_wanted = 1;
	(void)wal_ready(sp);
	return WAL_THREADS;
}

/*
 * The spool's folders are opened once.  One that cannot be used is the
 * sink's error: the one-request modes answer 503 (the event is fine,
 * and NSPS retries it once the spool is back).
 */
static int
spool_sink_open(struct sink *sink, const struct config *cfg, char *err,
    size_t errlen, int *ex)
{
	struct spool	*sp;

	if ((sp = malloc(sizeof(*sp))) == NULL) {
		snprintf(err, errlen, "spool: %s", strerror(errno));
		*ex = 1;
		return -1;
	}
	(void)spool_open(sp, cfg->spool_dir);
	sp->wal_size = cfg->spool_wal_size;
	sink->store = spool_store;
	sink->backlog = spool_backlog;
	sink->error = spool_sink_error;
	sink->close = spool_sink_close;
	sink->ctx = sp;
	sink->require_event_id = 1;
	if (cfg->spool_wal)
		sink->serving = spool_serving;
	return 0;
}

static int
spool_stats_head(const struct config *cfg, struct buf *b)
{
	if (buf_adds(b, "\"spool\":") == -1)
		return -1;
	return buf_add_json_string(b, cfg->spool_dir, strlen(cfg->spool_dir));
}

/* --stats: the log, where there is one (see wal.c). */
static int
spool_stats_tail(const struct config *cfg, struct buf *b)
{
	struct wal_stats ws;
	long long	 now = clock_ms(CLOCK_REALTIME);
	int		 root, rc;

	if ((root = open(cfg->spool_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	rc = wal_stats(root, &ws);
	close(root);
	if (rc == -1 || ws.segments == 0)
		return rc;
	if (buf_adds(b, ",\"wal\":{\"segments\":") == -1 ||
	    buf_addu(b, ws.segments) == -1 ||
	    buf_adds(b, ",\"size\":") == -1 || buf_addu(b, ws.size) == -1 ||
	    buf_adds(b, ",\"pending\":") == -1 ||
	    buf_addu(b, ws.pending) == -1 ||
	    buf_adds(b, ",\"pending_bytes\":") == -1 ||
	    buf_addu(b, ws.pending_bytes) == -1 ||
	    buf_adds(b, ",\"checkpoint_age\":") == -1)
		return -1;
	if (ws.checkpoint_ms < 0)
		rc = buf_adds(b, "null");
	else
		rc = buf_addu(b, (unsigned long long)(now > ws.checkpoint_ms ?
		    (now - ws.checkpoint_ms) / 1000 : 0));
	return rc == -1 ? -1 : buf_addc(b, '}');
}

const struct store store_spool = {
	.name = "spool",
	.states = QSTATE_ALL,
	.load = NULL,
	.sink_open = spool_sink_open,
	.queue_open = spool_store_queue_open,
	.migrate = NULL,
	.stats_head = spool_stats_head,
	.stats_tail = spool_stats_tail
};
