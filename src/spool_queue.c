/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The worker's side: nsps-deliver's queue on the spool.  The folders
 * after new/ are its own:
 *
 *   cur/<id>      claimed, a handler is running on it
 *   retry/<id>    failed temporarily, waiting for its next attempt
 *   done/<id>     handled; kept, with its marker, for the retention
 *   failed/<id>   given up on; status/<id> says why
 *   status/<id>   attempts so far, the next attempt, the last result,
 *                 the running handler's pid and start time
 *   applied/<key> the newest version applied for an ORDER key, and by
 *                 which event: written whole and fsync'd after the
 *                 handler's exit 0, before the move to done/
 *
 * Every move is a rename(2), so the body keeps its two links (ids/ and
 * one folder).  A worker killed at any moment leaves events in cur/;
 * the next one moves them back to new/ before anything else.
 */

#include "config.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>

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

#include <json-c/json.h>

#include "extern.h"
#include "spool.h"

#define TMP_GRACE_MS		(15LL * 60 * 1000)
#define LOCK_WAIT_MS		10000

/* A key's lock file removed under us this often in a row: call it busy. */
#define KEY_LOCK_TRIES		8

static long long
mtime_ms(const struct stat *st)
{
	return (long long)st->st_mtim.tv_sec * 1000 +
	    st->st_mtim.tv_nsec / 1000000;
}

/* A whole decimal number, nothing before or after it. */
static int
parse_number(const char *s, size_t len, long long *out)
{
	long long	 v = 0;
	size_t		 i;

	if (len == 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
is_key(const char *p, const char *end, const char *key)
{
	return (size_t)(end - p) == strlen(key) &&
	    memcmp(p, key, (size_t)(end - p)) == 0;
}

/*
 * Parses a status record: "key value" lines up to "stderr:", whose
 * numbers must be whole and unsigned.  Other keys (result, newer) are
 * skipped, so a newer worker may add some.  Returns 0, or -1 when it is malformed.
 */
int
status_parse(const char *buf, size_t len, struct status *st)
{
	const char	*p = buf, *end = buf + len, *eol, *sp;
	long long	 v;

	memset(st, 0, sizeof(*st));
	for (; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		if ((size_t)(eol - p) == 7 && memcmp(p, "stderr:", 7) == 0)
			return 0;
		if ((sp = memchr(p, ' ', (size_t)(eol - p))) == NULL)
			return -1;
		if (!is_key(p, sp, "attempts") && !is_key(p, sp, "first") &&
		    !is_key(p, sp, "next") && !is_key(p, sp, "pid") &&
		    !is_key(p, sp, "started") && !is_key(p, sp, "hold"))
			continue;
		if (parse_number(sp + 1, (size_t)(eol - sp - 1), &v) == -1)
			return -1;
		if (is_key(p, sp, "attempts"))
			st->attempts = (size_t)v;
		else if (is_key(p, sp, "first"))
			st->first_ms = v;
		else if (is_key(p, sp, "next"))
			st->next_ms = v;
		else if (is_key(p, sp, "pid"))
			st->pid = v;
		else if (is_key(p, sp, "hold"))
			st->hold = v;
		else
			st->pid_start = v;
	}
	return 0;
}

/* status/<id>; an absent record is a first attempt. */
static void
status_read(struct spool_queue *q, const char *id, struct status *st)
{
	char	 buf[512];
	ssize_t	 n;
	int	 fd;

	memset(st, 0, sizeof(*st));
	if ((fd = openat(q->sp.fd[SPOOL_STATUS], id, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	/* Only the head is read: the stderr tail may be cut anywhere. */
	if (n > 0 && (size_t)n == sizeof(buf)) {
		const char *nl = memrchr(buf, '\n', sizeof(buf));

		n = nl == NULL ? -1 : (ssize_t)(nl - buf);
	}
	if (n <= 0 || status_parse(buf, (size_t)n, st) == -1) {
		q->log("%s: status record unreadable; counted as new", id);
		memset(st, 0, sizeof(*st));
	}
}

/* Replaces status/<id> whole, through a hidden temporary name. */
static int
status_write(struct spool_queue *q, const char *id, const struct status *st,
    const char *result, const char *newer, const char *tail, size_t tail_len)
{
	struct buf	*b = &q->sp.meta;
	char		 tmp[SPOOL_ID_MAX + 2];
	int		 fd, rc = -1, dir = q->sp.fd[SPOOL_STATUS];

	snprintf(tmp, sizeof(tmp), ".%s", id);
	b->len = 0;
	if (buf_adds(b, "attempts ") == -1 ||
	    buf_addu(b, st->attempts) == -1 ||
	    buf_adds(b, "\nfirst ") == -1 ||
	    buf_addu(b, (unsigned long long)st->first_ms) == -1 ||
	    buf_adds(b, "\nnext ") == -1 ||
	    buf_addu(b, (unsigned long long)st->next_ms) == -1 ||
	    buf_adds(b, "\nlast ") == -1 ||
	    buf_addu(b, (unsigned long long)clock_ms(CLOCK_REALTIME)) == -1 ||
	    (st->pid > 0 && (buf_adds(b, "\npid ") == -1 ||
	    buf_addu(b, (unsigned long long)st->pid) == -1 ||
	    buf_adds(b, "\nstarted ") == -1 ||
	    buf_addu(b, (unsigned long long)st->pid_start) == -1)) ||
	    (st->hold && buf_adds(b, "\nhold 1") == -1) ||
	    buf_adds(b, "\nresult ") == -1 || buf_adds(b, result) == -1 ||
	    (newer != NULL && newer[0] != '\0' &&
	    (buf_adds(b, "\nnewer ") == -1 || buf_adds(b, newer) == -1)) ||
	    buf_adds(b, "\nstderr:\n") == -1 ||
	    buf_add(b, tail, tail_len) == -1)
		goto out;
	unlinkat(dir, tmp, 0);
	if ((fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		goto out;
	if (write_all(fd, b->data, b->len) == -1) {
		close(fd);
		goto out;
	}
	close(fd);
	rc = renameat(dir, tmp, dir, id);
out:
	if (rc == -1)
		q->log("%s: status: %s", id, strerror(errno));
	return rc;
}

static int
move(struct spool_queue *q, int from, int to, const char *id)
{
	if (renameat(q->sp.fd[from], id, q->sp.fd[to], id) == -1) {
		if (errno != ENOENT)
			q->log("%s: %s/ -> %s/: %s", id, spool_dirs[from],
			    spool_dirs[to], strerror(errno));
		return -1;
	}
	return 0;
}

/* Names in a folder, skipping dot files. */
static int
for_each(struct spool_queue *q, int folder,
    int (*fn)(struct spool_queue *, int, const char *, void *), void *arg)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if ((fd = openat(q->sp.fd[folder], ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		q->log("%s/: %s", spool_dirs[folder], strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && fn(q, folder, de->d_name, arg) == -1)
			break;
	closedir(d);
	return 0;
}

static int
list_add(struct id_list *l, const char *id, long long key)
{
	struct id_entry	*e;

	if (l->n == l->cap) {
		if ((e = reallocarray(l->e, l->cap ? l->cap * 2 : 64,
		    sizeof(*e))) == NULL)
			return -1;
		l->e = e;
		l->cap = l->cap ? l->cap * 2 : 64;
	}
	memset(&l->e[l->n], 0, sizeof(l->e[l->n]));
	if ((l->e[l->n].id = strdup(id)) == NULL)
		return -1;
	l->e[l->n++].key = key;
	return 0;
}

/* Drops the entries already taken, so a long run does not grow. */
static void
list_compact(struct id_list *l)
{
	size_t	 i;

	for (i = 0; i < l->next; i++) {
		free(l->e[i].id);
		free(l->e[i].okey);
		free(l->e[i].why);
	}
	/* memmove(3) of nothing still wants a pointer. */
	if (l->n > l->next)
		memmove(l->e, l->e + l->next, (l->n - l->next) *
		    sizeof(*l->e));
	l->n -= l->next;
	l->next = 0;
}

static void
list_free(struct id_list *l)
{
	l->next = l->n;
	list_compact(l);
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct id_entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Sorts what is not taken yet; qsort(NULL, 0) is undefined. */
static void
list_sort(struct id_list *l)
{
	if (l->n - l->next > 1)
		qsort(l->e + l->next, l->n - l->next, sizeof(*l->e),
		    entry_cmp);
}

static int
add_fresh(struct spool_queue *q, int folder, const char *id, void *arg)
{
	struct stat	 st;

	(void)arg;
	if (fstatat(q->sp.fd[folder], id, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return 0;
	return list_add(&q->fresh, id, mtime_ms(&st));
}

static void	 entry_order(struct spool_queue *, int, struct id_entry *);

static int
add_retry(struct spool_queue *q, int folder, const char *id, void *arg)
{
	struct status	 st;

	(void)arg;
	status_read(q, id, &st);
	if (list_add(&q->retries, id, st.next_ms) == -1)
		return -1;
	/* A holding retry's key is known from the start. */
	if ((q->retries.e[q->retries.n - 1].hold = st.hold != 0))
		entry_order(q, folder, &q->retries.e[q->retries.n - 1]);
	return 0;
}

/* Metadata from the attribute of the body open as fd, else meta/<id>. */
static struct json_object *
read_meta(struct spool_queue *q, int fd, const char *id)
{
	struct json_object	*root;
	char			 buf[4096];
	ssize_t			 n;

	if ((n = fgetxattr(fd, META_XATTR, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		return json_tokener_parse(buf);
	}
	if ((fd = openat(q->sp.fd[SPOOL_META], id, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return NULL;
	root = json_object_from_fd(fd);
	close(fd);
	return root;
}

static const char *
meta_string(struct json_object *root, const char *key)
{
	struct json_object	*o;

	if (!json_object_object_get_ex(root, key, &o) ||
	    !json_object_is_type(o, json_type_string))
		return NULL;
	return json_object_get_string(o);
}

static char *
dup_field(const char *s, size_t len)
{
	return strndup(s != NULL ? s : "", s != NULL ? len : 0);
}

/*
 * What the handler is told of an event: the trace and request ids from
 * the connector's metadata; event type and bill status from the body,
 * or from metadata that still carries them (written before they moved
 * out of it to keep it inside the inode).
 */
static void
read_fields(struct spool_queue *q, struct delivery *d)
{
	struct json_object	*root, *body = NULL;
	struct event		 ev;
	const char		*s;

	memset(&ev, 0, sizeof(ev));
	if ((root = read_meta(q, d->fd, d->id)) != NULL) {
		if ((ev.event_type = meta_string(root, META_TYPE)) != NULL)
			ev.event_type_len = strlen(ev.event_type);
		if ((ev.bill_status = meta_string(root, META_BILL)) != NULL)
			ev.bill_status_len = strlen(ev.bill_status);
		s = meta_string(root, META_TRACE);
		d->trace_id = dup_field(s, s ? strlen(s) : 0);
		s = meta_string(root, META_REQUEST);
		d->request_id = dup_field(s, s ? strlen(s) : 0);
	}
	if (ev.event_type == NULL && ev.bill_status == NULL &&
	    (body = json_object_from_fd(d->fd)) != NULL) {
		event_describe(body, &ev);
		/* The handler reads its stdin from the start. */
		lseek(d->fd, 0, SEEK_SET);
	}
	d->type = dup_field(ev.event_type, ev.event_type_len);
	d->bill_status = dup_field(ev.bill_status, ev.bill_status_len);
	if (d->trace_id == NULL)
		d->trace_id = strdup("");
	if (d->request_id == NULL)
		d->request_id = strdup("");
	json_object_put(body);
	json_object_put(root);
}

/*
 * Starts an attempt on an event now in cur/: the attempt is recorded
 * first, so one cut short by a crash still counts.
 */
static int
begin(struct spool_queue *q, const char *id, struct delivery *d)
{
	struct status	 st;

	memset(d, 0, sizeof(*d));
	d->fd = d->lock = -1;
	snprintf(d->id, sizeof(d->id), "%s", id);
	status_read(q, id, &st);
	st.pid = st.pid_start = 0;
	st.attempts++;
	if (st.first_ms == 0)
		st.first_ms = clock_ms(CLOCK_REALTIME);
	st.next_ms = 0;
	d->attempts = st.attempts;
	d->first_ms = st.first_ms;
	(void)status_write(q, id, &st, "running", NULL, "", 0);
	snprintf(d->path, sizeof(d->path), "%s/%s/%s", q->sp.path,
	    spool_dirs[SPOOL_CUR], id);
	if ((d->fd = openat(q->sp.fd[SPOOL_CUR], id, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		q->log("%s: %s", id, strerror(errno));
		(void)move(q, SPOOL_CUR, SPOOL_NEW, id);
		delivery_free(d);
		return -1;
	}
	read_fields(q, d);
	return 0;
}

/*
 * Where an entry stands in its key's order, read from its body once.
 * An event with no key is not ordered; one whose key, version or body
 * cannot be read gets why, and keeps its key when it has one.
 */
static void
entry_order(struct spool_queue *q, int folder, struct id_entry *e)
{
	struct json_object	*root;
	char			 key[ORDER_KEY_MAX + 1], why[256];
	int			 fd;

	if (e->parsed)
		return;
	if (q->cfg == NULL || !q->cfg->order) {
		e->parsed = 1;
		return;
	}
	if ((fd = openat(q->sp.fd[folder], e->id, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		/* Gone meanwhile, or short of descriptors: read it later. */
		if (errno == ENOENT || errno == EMFILE || errno == ENFILE ||
		    errno == ENOMEM)
			return;
		snprintf(why, sizeof(why), "body unreadable: %s",
		    strerror(errno));
		e->why = strdup(why);
		e->parsed = 1;
		return;
	}
	e->parsed = 1;
	root = json_object_from_fd(fd);
	close(fd);
	if (root == NULL) {
		e->why = strdup("body unreadable: not a JSON object");
		return;
	}
	switch (event_order(q->cfg, root, key, sizeof(key), &e->version, why,
	    sizeof(why))) {
	case ORDER_KEYED:
		e->okey = strdup(key);
		break;
	case ORDER_BAD_VERSION:
		e->okey = strdup(key);
		e->why = strdup(why);
		break;
	case ORDER_BAD_KEY:
		e->why = strdup(why);
		break;
	default:
		break;
	}
	json_object_put(root);
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct id_entry *)a)->id,
	    ((const struct id_entry *)b)->id);
}

/*
 * Reads new/ again.  What was already read of a waiting event's order
 * is kept: --once rescans whenever it runs dry, and the bodies are not
 * parsed again each time.
 */
static void
fresh_reread(struct spool_queue *q)
{
	struct id_list	 old = q->fresh;
	struct id_entry	*e, *o;
	size_t		 i, nold = old.n - old.next;

	memset(&q->fresh, 0, sizeof(q->fresh));
	if (nold > 1)
		qsort(old.e + old.next, nold, sizeof(*old.e), id_cmp);
	(void)for_each(q, SPOOL_NEW, add_fresh, NULL);
	for (i = 0; nold > 0 && i < q->fresh.n; i++) {
		e = &q->fresh.e[i];
		o = bsearch(e, old.e + old.next, nold, sizeof(*old.e), id_cmp);
		if (o == NULL || !o->parsed)
			continue;
		e->parsed = 1;
		e->okey = o->okey;
		e->version = o->version;
		e->why = o->why;
		o->okey = NULL;
		o->why = NULL;
	}
	list_sort(&q->fresh);
	list_free(&old);
}

/* Tries the write lock on fd: 0, or -1 with errno (EAGAIN: held). */
static int
try_write_lock(int fd)
{
	struct flock	 fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) == -1) {
		if (errno == EACCES)
			errno = EAGAIN;
		return -1;
	}
	return 0;
}

/* Whether fd is still the file dir/name: pruning may have removed it. */
static int
still_named(int dir, const char *name, int fd)
{
	struct stat	 a, b;

	return fstat(fd, &a) == 0 &&
	    fstatat(dir, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/*
 * locks/<key>, locked while an event of the key is decided, run and
 * recorded: by nsps-deliver and by each connector delivering inline, so
 * that one handler runs per key at a time on the spool.  A POSIX record
 * lock, as deliver.lock: a forked handler never holds it, and it goes
 * with its process however that dies.  Pruning removes the file of an
 * idle key while it holds the lock, so a lock won on a file that is no
 * longer the key's name is let go and taken on the new one.  Returns
 * the locked fd, or -1 with errno EAGAIN when another process holds it.
 */
static int
key_lock(struct spool_queue *q, const char *key)
{
	int	 dir = q->sp.fd[SPOOL_LOCKS], fd, e, tries;

	for (tries = 0; tries < KEY_LOCK_TRIES; tries++) {
		if ((fd = openat(dir, key, O_RDWR | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC, 0600)) == -1)
			return -1;
		if (try_write_lock(fd) == -1) {
			e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (still_named(dir, key, fd))
			return fd;
		close(fd);
	}
	errno = EAGAIN;
	return -1;
}

static void
claim_unlock(struct spool_queue *q)
{
	if (q->claim_lock != -1)
		close(q->claim_lock);
	q->claim_lock = -1;
}

/*
 * The claim in progress takes its candidate's key lock; one it held for
 * another key is let go.  Returns 0, or -1 when the key is busy.
 */
static int
claim_lock(struct spool_queue *q, const char *key)
{
	if (q->claim_lock != -1 && strcmp(q->claim_key, key) == 0)
		return 0;
	claim_unlock(q);
	if ((q->claim_lock = key_lock(q, key)) == -1) {
		if (errno != EAGAIN)
			q->log("locks/%s: %s", key, strerror(errno));
		return -1;
	}
	snprintf(q->claim_key, sizeof(q->claim_key), "%s", key);
	return 0;
}

/* A claim's candidate: an entry of a list and the folder it is in. */
struct pick {
	struct id_list	*l;
	size_t		 i;
	int		 folder;
};

/*
 * Whether a retry other than e holds e's key: its handler exited 0
 * but its applied version is not recorded yet.
 */
static int
key_held(const struct spool_queue *q, const struct id_entry *e)
{
	const struct id_list *l = &q->retries;
	size_t		 i;

	for (i = l->next; i < l->n; i++)
		if (l->e[i].hold && &l->e[i] != e && l->e[i].okey != NULL &&
		    strcmp(l->e[i].okey, e->okey) == 0)
			return 1;
	return 0;
}

/* The first entry due by limit whose key is not busy. */
static int
first_free(struct spool_queue *q, struct id_list *l, int folder,
    long long limit, int (*busy)(void *, const char *), void *arg,
    struct pick *p)
{
	struct id_entry	*e;
	size_t		 i;

	for (i = l->next; i < l->n && l->e[i].key <= limit; i++) {
		e = &l->e[i];
		entry_order(q, folder, e);
		if (!e->parsed)
			continue;
		if (e->okey == NULL || ((busy == NULL || !busy(arg, e->okey)) &&
		    !key_held(q, e) && claim_lock(q, e->okey) == 0)) {
			p->l = l;
			p->i = i;
			p->folder = folder;
			return 1;
		}
	}
	return 0;
}

/*
 * Of the events of the candidate's key that could run now, the newest
 * runs first: the older ones then turn out stale, and a snapshot a
 * killed worker had already applied is not followed by an older one.
 * Only the next NEWEST_WINDOW events of a list are looked at, so that a
 * backlog of millions costs no more per claim than one of thousands.
 */
#define NEWEST_WINDOW		4096

static void
newest_of_key(struct spool_queue *q, struct id_list *l, int folder,
    long long limit, struct pick *p)
{
	struct id_entry	*e, *best = &p->l->e[p->i];
	size_t		 i;

	for (i = l->next; i < l->n && i - l->next < NEWEST_WINDOW &&
	    l->e[i].key <= limit; i++) {
		e = &l->e[i];
		entry_order(q, folder, e);
		if (e->okey == NULL || e->why != NULL ||
		    strcmp(e->okey, best->okey) != 0 ||
		    version_cmp(&e->version, &best->version) <= 0)
			continue;
		best = e;
		p->l = l;
		p->i = i;
		p->folder = folder;
	}
}

/* Takes entry i out of the queue, keeping the order of the rest. */
static struct id_entry *
list_take(struct id_list *l, size_t i)
{
	struct id_entry	 e = l->e[i];

	memmove(l->e + l->next + 1, l->e + l->next,
	    (i - l->next) * sizeof(*l->e));
	l->e[l->next] = e;
	return &l->e[l->next++];
}

/* What a claimed entry knows of its order goes to its delivery. */
static void
entry_to(const struct id_entry *e, struct delivery *d)
{
	if (e->okey != NULL) {
		snprintf(d->key, sizeof(d->key), "%s", e->okey);
		d->version = e->version;
	}
	if (e->why != NULL)
		snprintf(d->order_error, sizeof(d->order_error), "%s",
		    e->why);
	d->hold = e->hold;
}

/*
 * The next due event whose key busy() does not name, claimed into
 * cur/: 1, or 0 when there is none.  New events before due retries,
 * oldest arrival first, but the newest version of a key before its
 * older ones.
 */
static int
spool_claim(void *ctx, long long now, int (*busy)(void *, const char *),
    void *arg, struct delivery *d)
{
	struct spool_queue *q = ctx;
	struct id_entry	*e;
	struct pick	 p;

	if (q->fresh.next > 0 && (q->fresh.next == q->fresh.n ||
	    q->fresh.next > q->fresh.n / 2))
		list_compact(&q->fresh);
	if (q->fresh_dirty) {
		q->fresh_dirty = 0;
		fresh_reread(q);
	}
	for (;;) {
		if (!first_free(q, &q->fresh, SPOOL_NEW, LLONG_MAX, busy, arg,
		    &p) && !first_free(q, &q->retries, SPOOL_RETRY, now, busy,
		    arg, &p)) {
			claim_unlock(q);
			return 0;
		}
		if (p.l->e[p.i].okey != NULL && p.l->e[p.i].why == NULL) {
			newest_of_key(q, &q->fresh, SPOOL_NEW, LLONG_MAX, &p);
			newest_of_key(q, &q->retries, SPOOL_RETRY, now, &p);
		}
		e = list_take(p.l, p.i);
		if (move(q, p.folder, SPOOL_CUR, e->id) == 0 &&
		    begin(q, e->id, d) == 0) {
			entry_to(e, d);
			if (e->okey != NULL) {
				d->lock = q->claim_lock;
				q->claim_lock = -1;
			}
			return 1;
		}
	}
}

/*
 * Where an event of this id waits for a claim by id: new/, retry/, or
 * failed/ (NSPS sends a failed event again to have it tried again).
 * -1 when in none.
 */
static int
waiting_in(struct spool_queue *q, const char *id)
{
	static const int folders[] = { SPOOL_NEW, SPOOL_RETRY, SPOOL_FAILED };
	struct stat	 st;
	size_t		 i;

	for (i = 0; i < sizeof(folders) / sizeof(folders[0]); i++)
		if (fstatat(q->sp.fd[folders[i]], id, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			return folders[i];
	return -1;
}

/*
 * The connector's inline claim: the event of this id, once its key's
 * lock is free (polled, as F_SETLKW cannot time out), into cur/.
 */
static int
spool_claim_id(void *ctx, const char *id, long long deadline,
    struct delivery *d)
{
	struct spool_queue *q = ctx;
	struct id_entry	 e;
	int		 from, lock = -1, rc = 0;

	if ((from = waiting_in(q, id)) == -1)
		return 0;
	memset(&e, 0, sizeof(e));
	e.id = (char *)id;
	entry_order(q, from, &e);
	if (!e.parsed)
		return 0;
	while (e.okey != NULL && (lock = key_lock(q, e.okey)) == -1) {
		if (errno != EAGAIN) {
			q->log("locks/%s: %s", e.okey, strerror(errno));
			rc = -1;
			goto out;
		}
		if (clock_ms(CLOCK_MONOTONIC) >= deadline) {
			rc = 2;
			goto out;
		}
		usleep(2000);
	}
	/* Gone meanwhile: nsps-deliver, or another connector, has it. */
	if (move(q, from, SPOOL_CUR, id) == -1 || begin(q, id, d) == -1) {
		if (lock != -1)
			close(lock);
		goto out;
	}
	entry_to(&e, d);
	d->lock = lock;
	rc = 1;
out:
	free(e.okey);
	free(e.why);
	return rc;
}

/* Records the handler's pid and start, for a later worker's recovery. */
static void
spool_started(void *ctx, struct delivery *d, pid_t pid,
    unsigned long long start)
{
	struct spool_queue *q = ctx;
	struct status	 st;

	memset(&st, 0, sizeof(st));
	st.attempts = d->attempts;
	st.first_ms = d->first_ms;
	st.pid = pid;
	st.pid_start = (long long)start;
	(void)status_write(q, d->id, &st, "running", NULL, "", 0);
}

/* A signed decimal number, the whole of s (ns need 19 digits). */
static int
parse_signed(const char *s, size_t len, long long *out)
{
	char	 buf[24], *end;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!(buf[0] == '-' || (buf[0] >= '0' && buf[0] <= '9')))
		return -1;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/*
 * applied/<key>: "version N", "created N" and "id ID" lines.  A record
 * that is there but cannot be read (empty, garbled, a symbolic link,
 * an I/O or permission error) is -1 with the reason: the key does not
 * start over, its events wait.
 */
static int
spool_applied_get(void *ctx, const char *key, struct applied *a)
{
	struct spool_queue *q = ctx;
	char		 buf[512], *p, *eol, *end;
	ssize_t		 n;
	int		 fd, seen = 0;

	memset(a, 0, sizeof(*a));
	if ((fd = openat(q->sp.fd[SPOOL_APPLIED], key, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(a->error, sizeof(a->error), "applied/%s: %s", key,
		    errno == ELOOP ? "a symbolic link" : strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n == -1) {
		snprintf(a->error, sizeof(a->error), "applied/%s: %s", key,
		    strerror(errno));
		return -1;
	}
	if (n == 0) {
		snprintf(a->error, sizeof(a->error), "applied/%s: empty", key);
		return -1;
	}
	buf[n] = '\0';
	for (p = buf, end = buf + n; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		if (strncmp(p, "version ", 8) == 0 && parse_signed(p + 8,
		    (size_t)(eol - p - 8), &a->version.ns) == 0)
			seen |= 1;
		else if (strncmp(p, "created ", 8) == 0 && parse_signed(p + 8,
		    (size_t)(eol - p - 8), &a->version.created_ns) == 0)
			seen |= 2;
		else if (strncmp(p, "id ", 3) == 0 &&
		    event_id_valid(p + 3, (size_t)(eol - p - 3))) {
			memcpy(a->id, p + 3, (size_t)(eol - p - 3));
			a->id[eol - p - 3] = '\0';
			seen |= 4;
		} else
			seen |= 8;
	}
	if (seen == 7)
		return 1;
	snprintf(a->error, sizeof(a->error), "applied/%s: garbled", key);
	return -1;
}

/*
 * Replaces applied/<key> whole: written and fsync'd under a hidden name,
 * renamed, and the folder fsync'd, so that after a crash it names
 * either the previous event or this one, never a half.
 */
static int
spool_applied_set(void *ctx, const char *key, struct applied *a)
{
	struct spool_queue *q = ctx;
	char		 tmp[ORDER_KEY_MAX + 2], line[SPOOL_ID_MAX + 96];
	int		 fd, len, dir = q->sp.fd[SPOOL_APPLIED];

	snprintf(tmp, sizeof(tmp), ".%s", key);
	len = snprintf(line, sizeof(line), "version %lld\ncreated %lld\n"
	    "id %s\n", a->version.ns, a->version.created_ns, a->id);
	unlinkat(dir, tmp, 0);
	if ((fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		goto fail;
	if (write_all(fd, line, (size_t)len) == -1 || fsync(fd) == -1) {
		close(fd);
		goto fail;
	}
	if (close(fd) == -1 || renameat(dir, tmp, dir, key) == -1 ||
	    fsync(dir) == -1)
		goto fail;
	return 0;
fail:
	snprintf(a->error, sizeof(a->error), "applied/%s: %s", key,
	    strerror(errno));
	q->log("%s", a->error);
	return -1;
}

/* Puts a claimed event back in new/ untouched, e.g. when fork fails. */
static void
spool_release(void *ctx, struct delivery *d)
{
	struct spool_queue *q = ctx;

	(void)move(q, SPOOL_CUR, SPOOL_NEW, d->id);
	q->fresh_dirty = 1;
}

/* Records the outcome of an attempt and moves the event on. */
static int
spool_finish(void *ctx, struct delivery *d, enum outcome how, long long due,
    const char *result, const char *tail, size_t tail_len)
{
	struct spool_queue *q = ctx;
	struct id_entry	*e;
	struct status	 st;
	int		 to;

	memset(&st, 0, sizeof(st));
	st.attempts = d->attempts;
	st.first_ms = d->first_ms;
	switch (how) {
	case OUTCOME_DONE:
		to = SPOOL_DONE;
		tail_len = 0;
		break;
	case OUTCOME_RETRY:
		to = SPOOL_RETRY;
		st.next_ms = due;
		st.hold = d->hold;
		break;
	default:
		to = SPOOL_FAILED;
		break;
	}
	(void)status_write(q, d->id, &st, result, d->newer, tail, tail_len);
	if (move(q, SPOOL_CUR, to, d->id) == -1)
		return -1;
	if (how == OUTCOME_RETRY) {
		list_compact(&q->retries);
		if (list_add(&q->retries, d->id, due) == 0) {
			e = &q->retries.e[q->retries.n - 1];
			/* Held in memory even when status/ could not say so. */
			if ((e->hold = d->hold) && d->key[0] != '\0' &&
			    (e->okey = strdup(d->key)) != NULL) {
				e->parsed = 1;
				e->version = d->version;
			}
			list_sort(&q->retries);
		}
		return 0;
	}
	return fsync(q->sp.fd[to]);
}

/* When the earliest retry is due, wall clock ms; -1 when none waits. */
static long long
spool_next_due(void *ctx)
{
	struct spool_queue *q = ctx;

	if (q->retries.next == q->retries.n)
		return -1;
	return q->retries.e[q->retries.next].key;
}

static int
spool_wait_fd(void *ctx)
{
	return ((struct spool_queue *)ctx)->ifd;
}

/*
 * New files in new/, named by inotify: appended to the queue, newest
 * last, without reading the folder again.  Only an overflowed inotify
 * queue costs a rescan.
 */
static void
spool_wake(void *ctx)
{
	struct spool_queue *q = ctx;
	char		 buf[4096]
	    __attribute__((__aligned__(__alignof__(struct inotify_event))));
	const struct inotify_event *ie;
	const char	*p;
	ssize_t		 n;
	long long	 now = clock_ms(CLOCK_REALTIME);

	while ((n = read(q->ifd, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)(const void *)p;
			if (ie->mask & IN_Q_OVERFLOW)
				q->fresh_dirty = 1;
			else if (ie->len > 0 && ie->name[0] != '.' &&
			    list_add(&q->fresh, ie->name, now) == -1)
				q->fresh_dirty = 1;
		}
}

/* The next claim reads new/ again, for anything inotify missed. */
static void
spool_rescan(void *ctx)
{
	((struct spool_queue *)ctx)->fresh_dirty = 1;
}

/*
 * Parses a tmp/ name, "<id>,<pid>,<seq>,<b|m>", as spool_store() makes
 * them.  Returns 0, or -1 for a name it would not make.
 */
int
tmp_name_parse(const char *name, char *id, size_t idlen, long *pid,
    char *kind)
{
	const char	*c1, *c2, *c3;
	long long	 v;

	if ((c1 = strchr(name, ',')) == NULL ||
	    (c2 = strchr(c1 + 1, ',')) == NULL ||
	    (c3 = strchr(c2 + 1, ',')) == NULL)
		return -1;
	if (!event_id_valid(name, (size_t)(c1 - name)) ||
	    (size_t)(c1 - name) >= idlen)
		return -1;
	if (parse_number(c1 + 1, (size_t)(c2 - c1 - 1), &v) == -1 ||
	    v <= 0 || v > INT_MAX)
		return -1;
	*pid = (long)v;
	if (parse_number(c2 + 1, (size_t)(c3 - c2 - 1), &v) == -1)
		return -1;
	if ((c3[1] != 'b' && c3[1] != 'm') || c3[2] != '\0')
		return -1;
	*kind = c3[1];
	memcpy(id, name, (size_t)(c1 - name));
	id[c1 - name] = '\0';
	return 0;
}

/*
 * Recovery, before any delivery: whatever a killed worker or connector
 * left half done is completed.
 */
struct orphan_fn {
	void	(*fn)(pid_t, unsigned long long);
};

/* First the killed worker's handler, if one still runs; then new/. */
static int
recover_cur(struct spool_queue *q, int folder, const char *id, void *arg)
{
	struct orphan_fn *o = arg;
	struct status	 st;

	struct id_entry	 e;
	int		 lock = -1;

	/* A connector delivering it inline holds its key: it is not ours. */
	memset(&e, 0, sizeof(e));
	e.id = (char *)id;
	entry_order(q, folder, &e);
	if (e.okey != NULL && (lock = key_lock(q, e.okey)) == -1 &&
	    errno == EAGAIN) {
		free(e.okey);
		free(e.why);
		return 0;
	}
	status_read(q, id, &st);
	if (st.pid > 0 && st.pid <= INT_MAX && o->fn != NULL)
		o->fn((pid_t)st.pid, (unsigned long long)st.pid_start);
	(void)move(q, SPOOL_CUR, SPOOL_NEW, id);
	if (lock != -1)
		close(lock);
	free(e.okey);
	free(e.why);
	return 0;
}

/* A tmp file is stale when its connector is gone or it is old. */
static int
tmp_stale(long pid, const struct stat *st)
{
	if (clock_ms(CLOCK_REALTIME) - mtime_ms(st) > TMP_GRACE_MS)
		return 1;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

/* The sibling of a tmp/ name: the same store's other file. */
static void
tmp_sibling(const char *name, char kind, char *out, size_t len)
{
	snprintf(out, len, "%.*s%c", (int)strlen(name) - 1, name, kind);
}

/*
 * A body past the gate (its marker is the same file) that never reached
 * new/: its metadata file, if any, goes to meta/ and the body to new/.
 * Anything else in tmp/ is a store that never reached the gate, or one
 * already finished, and is removed.  Metadata files are handled through
 * their body, so a killed attempt's never replaces the stored one's.
 */
static int
recover_tmp(struct spool_queue *q, int folder, const char *name, void *arg)
{
	struct stat	 st, mk;
	char		 id[SPOOL_ID_MAX + 1], kind, meta[SPOOL_ID_MAX + 64];
	long		 pid;
	int		 tmp = q->sp.fd[SPOOL_TMP];

	(void)folder;
	(void)arg;
	if (fstatat(tmp, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if (tmp_name_parse(name, id, sizeof(id), &pid, &kind) == -1) {
		unlinkat(tmp, name, 0);
		return 0;
	}
	if (!tmp_stale(pid, &st))
		return 0;
	if (kind == 'm') {
		tmp_sibling(name, 'b', meta, sizeof(meta));
		if (fstatat(tmp, meta, &mk, AT_SYMLINK_NOFOLLOW) == -1)
			unlinkat(tmp, name, 0);
		return 0;
	}
	tmp_sibling(name, 'm', meta, sizeof(meta));
	if (fstatat(q->sp.fd[SPOOL_IDS], id, &mk, AT_SYMLINK_NOFOLLOW) == 0 &&
	    mk.st_ino == st.st_ino && mk.st_dev == st.st_dev &&
	    st.st_nlink == 2) {
		/* Past the gate, never reached new/. */
		(void)renameat(tmp, meta, q->sp.fd[SPOOL_META], id);
		if (linkat(tmp, name, q->sp.fd[SPOOL_NEW], id, 0) == 0)
			q->log("%s: recovered from tmp/", id);
		else if (errno != EEXIST)
			return 0;
	}
	unlinkat(tmp, meta, 0);
	unlinkat(tmp, name, 0);
	return 0;
}

/* A marker with no other link: its event is in no folder. */
static int
recover_ids(struct spool_queue *q, int folder, const char *id, void *arg)
{
	struct stat	 st;

	(void)folder;
	(void)arg;
	if (fstatat(q->sp.fd[SPOOL_IDS], id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    linkat(q->sp.fd[SPOOL_IDS], id, q->sp.fd[SPOOL_NEW], id, 0) == 0)
		q->log("%s: recovered from ids/", id);
	return 0;
}

/*
 * With the log, a marker's body is not fsync'd before the 202: the
 * record is.  A power cut may then leave a marker whose body lost its
 * data, and when no record restored it, the event was never
 * acknowledged (the record comes first): the marker goes, so that
 * NSPS's retry is stored.  Only markers written after the oldest
 * checkpoint that records still waited for can be such (everything
 * before it was syncfs'd); a body whose metadata has no CRC-32C is
 * left alone.
 */
static int
sweep_marker(struct spool_queue *q, int folder, const char *id, void *arg)
{
	static const int folders[] = {
		SPOOL_NEW, SPOOL_CUR, SPOOL_RETRY, SPOOL_DONE, SPOOL_FAILED
	};
	const long long	*since = arg;
	struct stat	 st, other;
	size_t		 i;

	(void)folder;
	if (fstatat(q->sp.fd[SPOOL_IDS], id, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode) || mtime_ms(&st) < *since ||
	    spool_body_whole(&q->sp, SPOOL_IDS, id, NULL) != 0)
		return 0;
	for (i = 0; i < sizeof(folders) / sizeof(folders[0]); i++)
		if (fstatat(q->sp.fd[folders[i]], id, &other,
		    AT_SYMLINK_NOFOLLOW) == 0 && other.st_ino == st.st_ino &&
		    other.st_dev == st.st_dev)
			unlinkat(q->sp.fd[folders[i]], id, 0);
	unlinkat(q->sp.fd[SPOOL_META], id, 0);
	unlinkat(q->sp.fd[SPOOL_IDS], id, 0);
	q->log("%s: removed: its body was lost before it was acknowledged",
	    id);
	return 0;
}

/* How far back a marker may have lost its body: see sweep_marker(). */
#define SWEEP_SLACK_MS		(60 * 1000)

static int
spool_recover(void *ctx, void (*orphan)(pid_t, unsigned long long))
{
	struct spool_queue *q = ctx;
	struct orphan_fn o = { orphan };
	struct wal_stats ws;
	long long	 since;
	size_t		 pending;

	/* The log first: what it restores, the passes below move on. */
	if (wal_stats(q->sp.root, &ws) == -1 || wal_checkpoint(q->sp.root,
	    spool_wal_restore, &q->sp, 0, &pending) == -1)
		q->log("%s/%s: recovery: %s", q->sp.path, WAL_DIR,
		    strerror(errno));
	(void)for_each(q, SPOOL_CUR, recover_cur, &o);
	(void)for_each(q, SPOOL_TMP, recover_tmp, NULL);
	if (ws.pending > 0) {
		since = ws.checkpoint_ms - SWEEP_SLACK_MS;
		(void)for_each(q, SPOOL_IDS, sweep_marker, &since);
	}
	(void)for_each(q, SPOOL_IDS, recover_ids, NULL);
	fsync(q->sp.fd[SPOOL_NEW]);
	(void)for_each(q, SPOOL_RETRY, add_retry, NULL);
	list_sort(&q->retries);
	return 0;
}

/* Past the retention: the marker goes first, so a crash leaves no orphan. */
static int
prune_one(struct spool_queue *q, int folder, const char *id, void *arg)
{
	struct stat	 st, mk;
	long long	*cutoff = arg;

	if (fstatat(q->sp.fd[folder], id, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    mtime_ms(&st) > *cutoff)
		return 0;
	unlinkat(q->sp.fd[SPOOL_STATUS], id, 0);
	unlinkat(q->sp.fd[SPOOL_META], id, 0);
	if (fstatat(q->sp.fd[SPOOL_IDS], id, &mk, AT_SYMLINK_NOFOLLOW) == 0 &&
	    mk.st_ino == st.st_ino && mk.st_dev == st.st_dev)
		unlinkat(q->sp.fd[SPOOL_IDS], id, 0);
	unlinkat(q->sp.fd[folder], id, 0);
	return 0;
}

/* The keys of the events not done yet: pruning keeps their versions. */
struct live_keys {
	char		**k;
	size_t		 n, cap;
	int		 unknown;	/* a body could not be read */
	long long	 cutoff;
};

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
live_add(struct spool_queue *q, int folder, const char *id, void *arg)
{
	struct live_keys *lk = arg;
	struct id_entry	 e;
	char		**k;

	memset(&e, 0, sizeof(e));
	e.id = (char *)(uintptr_t)id;
	entry_order(q, folder, &e);
	/* A body that cannot be read may be of any key. */
	if (!e.parsed || (e.why != NULL && strncmp(e.why, "body unreadable",
	    15) == 0))
		lk->unknown = 1;
	if (e.okey != NULL && lk->n == lk->cap) {
		if ((k = reallocarray(lk->k, lk->cap ? lk->cap * 2 : 64,
		    sizeof(*k))) == NULL) {
			lk->unknown = 1;
			free(e.okey);
			e.okey = NULL;
		} else {
			lk->k = k;
			lk->cap = lk->cap ? lk->cap * 2 : 64;
		}
	}
	if (e.okey != NULL)
		lk->k[lk->n++] = e.okey;
	free(e.why);
	return 0;
}

/*
 * A key applied last before the retention is forgotten, unless an
 * event of it still waits, runs or failed: a requeue must find it.
 */
static int
prune_applied(struct spool_queue *q, int folder, const char *key, void *arg)
{
	struct live_keys *lk = arg;
	struct stat	 st;

	if (lk->n > 0 && bsearch(&key, lk->k, lk->n, sizeof(*lk->k),
	    key_cmp) != NULL)
		return 0;
	if (fstatat(q->sp.fd[folder], key, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && mtime_ms(&st) <= lk->cutoff)
		unlinkat(q->sp.fd[folder], key, 0);
	return 0;
}

/*
 * locks/<key> of a key with no event left (held keys all have one, in
 * cur/ or waiting), made before the cutoff: removed while its lock is
 * held, so that a process that opened it before sees the name gone
 * and makes it again (key_lock()).  A key this process may hold is
 * never opened here: closing any descriptor of the file would let its
 * POSIX lock go.
 */
static int
prune_lock(struct spool_queue *q, int folder, const char *key, void *arg)
{
	struct live_keys *lk = arg;
	struct stat	 st;
	int		 fd;

	if ((lk->n > 0 && bsearch(&key, lk->k, lk->n, sizeof(*lk->k),
	    key_cmp) != NULL) || (q->claim_lock != -1 &&
	    strcmp(q->claim_key, key) == 0))
		return 0;
	if (fstatat(q->sp.fd[folder], key, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode) || mtime_ms(&st) > lk->cutoff)
		return 0;
	if ((fd = openat(q->sp.fd[folder], key, O_RDWR | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return 0;
	if (try_write_lock(fd) == 0 && still_named(q->sp.fd[folder], key, fd))
		unlinkat(q->sp.fd[folder], key, 0);
	close(fd);
	return 0;
}

static void
spool_prune(void *ctx, long long cutoff)
{
	struct spool_queue *q = ctx;
	struct live_keys lk;
	static const int live[] = { SPOOL_NEW, SPOOL_CUR, SPOOL_RETRY,
	    SPOOL_FAILED };
	size_t		 i;

	(void)for_each(ctx, SPOOL_DONE, prune_one, &cutoff);
	if (q->cfg == NULL)
		return;
	memset(&lk, 0, sizeof(lk));
	lk.cutoff = cutoff;
	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (for_each(q, live[i], live_add, &lk) == -1)
			lk.unknown = 1;
	if (lk.unknown)
		q->log("applied/: not pruned: the key of an event not done "
		    "could not be read");
	else {
		if (lk.n > 1)
			qsort(lk.k, lk.n, sizeof(*lk.k), key_cmp);
		(void)for_each(q, SPOOL_APPLIED, prune_applied, &lk);
		(void)for_each(q, SPOOL_LOCKS, prune_lock, &lk);
	}
	for (i = 0; i < lk.n; i++)
		free(lk.k[i]);
	free(lk.k);
}

/* --stats: each key whose applied version cannot be read. */
struct blocked_fn {
	void	(*fn)(void *, const char *, const char *);
	void	*arg;
};

static int
blocked_one(struct spool_queue *q, int folder, const char *key, void *arg)
{
	struct blocked_fn *b = arg;
	struct applied	 a;

	(void)folder;
	if (spool_applied_get(q, key, &a) == -1)
		b->fn(b->arg, key, a.error);
	return 0;
}

static int
spool_blocked(void *ctx, void (*fn)(void *, const char *, const char *),
    void *arg)
{
	struct blocked_fn b = { fn, arg };

	return for_each(ctx, SPOOL_APPLIED, blocked_one, &b);
}

static int
stat_one(struct spool_queue *q, int folder, const char *id, void *arg)
{
	struct queue_count *c = arg;
	struct stat	 st;

	c->count++;
	if (fstatat(q->sp.fd[folder], id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (c->oldest_ms < 0 || mtime_ms(&st) < c->oldest_ms))
		c->oldest_ms = mtime_ms(&st);
	return 0;
}

/*
 * Counts and the oldest arrival per state, tmp/ and ids/ besides; only
 * the states in want are read (done/ and ids/ grow with the retention).
 */
static int
spool_stats(void *ctx, struct queue_count *c, unsigned int want)
{
	static const int folders[QSTATE_COUNT] = { SPOOL_NEW, SPOOL_CUR,
	    SPOOL_RETRY, SPOOL_DONE, SPOOL_FAILED, SPOOL_TMP, SPOOL_IDS };
	size_t	 i;

	for (i = 0; i < QSTATE_COUNT; i++) {
		c[i].count = 0;
		c[i].oldest_ms = -1;
		if ((want & (1u << i)) != 0 &&
		    for_each(ctx, folders[i], stat_one, &c[i]) == -1)
			return -1;
	}
	return 0;
}

/* --requeue-failed: attempts start again from one. */
static int
requeue_one(struct spool_queue *q, int folder, const char *id, void *arg)
{
	size_t	*n = arg;

	(void)folder;
	unlinkat(q->sp.fd[SPOOL_STATUS], id, 0);
	if (move(q, SPOOL_FAILED, SPOOL_NEW, id) == 0)
		(*n)++;
	return 0;
}

static int
spool_requeue_failed(void *ctx, size_t *n)
{
	*n = 0;
	return for_each(ctx, SPOOL_FAILED, requeue_one, n);
}

static void
spool_queue_close(void *ctx)
{
	struct spool_queue *q = ctx;

	list_free(&q->fresh);
	list_free(&q->retries);
	if (q->ifd != -1)
		close(q->ifd);
	if (q->lock != -1)
		close(q->lock);
	claim_unlock(q);
	spool_close(&q->sp);
	free(q);
}

/* The log's checkpoint (see wal.c), and what it then holds. */
static int
spool_checkpoint(void *ctx, struct log_stats *ls)
{
	struct spool_queue *q = ctx;
	struct wal_stats ws;
	size_t		 pending;
	int		 rc = 1;

	if (faccessat(q->sp.root, WAL_DIR, F_OK, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if (wal_checkpoint(q->sp.root, spool_wal_restore, &q->sp, 0,
	    &pending) == -1) {
		q->log("%s/%s: checkpoint: %s", q->sp.path, WAL_DIR,
		    strerror(errno));
		rc = -1;
	}
	if (wal_stats(q->sp.root, &ws) == -1)
		return -1;
	ls->segments = ws.segments;
	ls->size = ws.size;
	ls->pending = ws.pending;
	ls->pending_bytes = ws.pending_bytes;
	if (rc == 1)
		ls->checkpoint_ms = clock_ms(CLOCK_REALTIME);
	return rc;
}

static const struct queue_ops spool_queue_ops = {
	.recover = spool_recover,
	.claim = spool_claim,
	.claim_id = spool_claim_id,
	.started = spool_started,
	.applied_get = spool_applied_get,
	.applied_set = spool_applied_set,
	.release = spool_release,
	.finish = spool_finish,
	.next_due = spool_next_due,
	.wait_fd = spool_wait_fd,
	.wake = spool_wake,
	.rescan = spool_rescan,
	.prune = spool_prune,
	.stats = spool_stats,
	.requeue_failed = spool_requeue_failed,
	.close = spool_queue_close,
	.blocked = spool_blocked,
	.checkpoint = spool_checkpoint,
};

/*
 * Takes deliver.lock, waiting up to LOCK_WAIT_MS for it with one log
 * line: a worker restarted at once after a crash may find its
 * predecessor not quite gone.  A POSIX record lock, not flock(2): it
 * belongs to this process and is not inherited by fork(2), so a handler
 * forked but not yet exec'd never holds it; a flock(2) lock belongs to
 * the open file, which that child shares until it dies, and it dies of
 * PR_SET_PDEATHSIG only some time after a SIGKILLed worker.  Returns 0,
 * or -1 with errno EAGAIN when another worker still holds it.
 */
static int
lock_wait(struct spool_queue *q, const char *path)
{
	struct flock	 fl;
	int		 waited;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	for (waited = 0; fcntl(q->lock, F_SETLK, &fl) == -1; waited += 100) {
		if (errno != EAGAIN && errno != EACCES)
			return -1;
		errno = EAGAIN;
		if (waited >= LOCK_WAIT_MS)
			return -1;
		if (waited == 0)
			q->log("%s/deliver.lock: another nsps-deliver runs "
			    "on this spool; waiting up to %d s for it", path,
			    LOCK_WAIT_MS / 1000);
		usleep(100 * 1000);
	}
	return 0;
}

/*
 * Opens the spool as nsps-deliver's queue.  With QUEUE_WORK the caller
 * is the one worker of the spool (a lock says so) and is told of new
 * events through inotify; with QUEUE_WATCH only the latter.  Returns 0,
 * or -1 with a message in err and the exit status in *ex.
 */
int
spool_queue_open(struct spool_queue *q, struct queue *qu, const char *path,
    unsigned int how, void (*log)(const char *, ...), char *err,
    size_t errlen, int *ex)
{
	char	 newdir[MAX_PATH_LEN + 8];

	memset(q, 0, sizeof(*q));
	q->ifd = q->lock = q->claim_lock = -1;
	q->fresh_dirty = 1;
	q->log = log;
	qu->ops = &spool_queue_ops;
	qu->ctx = q;
	*ex = EX_CONFIG_CODE;
	if (spool_open(&q->sp, path) == -1) {
		snprintf(err, errlen, "%s", q->sp.error);
		return -1;
	}
	q->sp.log = log;
	if ((how & QUEUE_WORK) == 0)
		return 0;
	/* One worker per spool: two would deliver the same event twice. */
	if ((q->lock = openat(q->sp.root, "deliver.lock", O_RDWR | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 ||
	    lock_wait(q, path) == -1) {
		if (errno == EAGAIN)
			*ex = EX_TEMPFAIL_CODE;
		snprintf(err, errlen, "%s/deliver.lock: %s", path,
		    errno == EAGAIN ? "another nsps-deliver runs on "
		    "this spool" : strerror(errno));
		return -1;
	}
	if ((how & QUEUE_WATCH) == 0)
		return 0;
	snprintf(newdir, sizeof(newdir), "%s/%s", path, spool_dirs[SPOOL_NEW]);
	if ((q->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1 ||
	    inotify_add_watch(q->ifd, newdir, IN_CREATE | IN_MOVED_TO |
	    IN_ONLYDIR) == -1) {
		*ex = 1;
		snprintf(err, errlen, "inotify: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The store's queue_open(): the spool's real path replaces SPOOL_DIR,
 * as handlers are told it.
 */
int
spool_store_queue_open(struct queue *qu, struct config *cfg,
    unsigned int how, void (*log)(const char *, ...), char *err,
    size_t errlen, int *ex)
{
	struct spool_queue *q;
	char		*real;
	int		 rc;

	qu->ops = NULL;
	qu->ctx = NULL;
	if ((real = realpath(cfg->spool_dir, NULL)) == NULL) {
		snprintf(err, errlen, "SPOOL_DIR: %s: %s", cfg->spool_dir,
		    strerror(errno));
		*ex = EX_CONFIG_CODE;
		return -1;
	}
	free(cfg->spool_dir);
	cfg->spool_dir = real;
	if ((q = malloc(sizeof(*q))) == NULL) {
		snprintf(err, errlen, "spool: %s", strerror(errno));
		*ex = 1;
		return -1;
	}
	rc = spool_queue_open(q, qu, cfg->spool_dir, how, log, err, errlen,
	    ex);
	q->cfg = cfg;
	return rc;
}
