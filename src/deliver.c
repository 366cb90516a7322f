/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * nsps-deliver: hands each spooled event to the operator's handler, at
 * least once, with retries.  The folders after new/ are its own:
 *
 *   cur/<id>      claimed, a handler is running on it
 *   retry/<id>    failed temporarily, waiting for its next attempt
 *   done/<id>     handled; kept, with its marker, for the retention
 *   failed/<id>   given up on; status/<id> says why
 *   status/<id>   attempts so far, the next attempt, the last result
 *
 * Every move is a rename(2), so the body keeps its two links (ids/ and
 * one folder).  A worker killed at any moment leaves events in cur/;
 * the next one moves them back to new/ before anything else.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "extern.h"

#define DPROG			"nsps-deliver"
#define EX_TEMPFAIL_CODE	75
#define MAX_JOBS		64
#define TAIL_SIZE		2048	/* of the handler's stderr, kept */
#define TMP_GRACE_MS		(15LL * 60 * 1000)
#define PRUNE_EVERY_MS		(60LL * 60 * 1000)
#define MAX_ENV_FILE		(64 * 1024)

extern char **environ;

enum dkey {
	D_SPOOL_DIR,
	D_HANDLER,
	D_HANDLER_TIMEOUT,
	D_RETRY_BASE,
	D_RETRY_CAP,
	D_RETRY_LIMIT,
	D_RETRY_MAX_AGE,
	D_RETENTION,
	D_DELIVER_JOBS,
	D_COUNT
};

static const char *const dkey_names[D_COUNT] = {
	"SPOOL_DIR", "HANDLER", "HANDLER_TIMEOUT", "RETRY_BASE", "RETRY_CAP",
	"RETRY_LIMIT", "RETRY_MAX_AGE", "RETENTION", "DELIVER_JOBS"
};

struct settings {
	const char	*opt[D_COUNT];		/* command line */
	char		*file[D_COUNT];		/* NSPS_ENV_FILE */
	char		*spool_dir;
	char		**argv;			/* the handler */
	long long	 timeout_ms;
	long long	 base_ms;
	long long	 cap_ms;
	long long	 max_age_ms;
	long long	 retention_ms;
	size_t		 max_attempts;
	size_t		 jobs;
};

/* What status/<id> holds. */
struct status {
	size_t		 attempts;
	long long	 first_ms;		/* first attempt */
	long long	 next_ms;		/* when in retry/ */
};

struct job {
	pid_t		 pid;
	int		 errfd;			/* -1 once closed */
	int		 wstatus;
	int		 timed_out;
	char		 id[SPOOL_ID_MAX + 1];
	struct status	 st;
	struct timespec	 start;
	long long	 deadline;		/* monotonic ms */
	char		 tail[TAIL_SIZE];
	size_t		 tail_len;
};

struct entry {
	char		*id;
	long long	 key;			/* arrival or due, ms */
};

struct queue {
	struct entry	*e;
	size_t		 n, next, cap;
};

static struct settings	 cfg;
static struct spool	 sp;
static struct job	 jobs[MAX_JOBS];
static size_t		 running;
static struct queue	 fresh;		/* new/, oldest first */
static struct queue	 retries;	/* retry/, due first */
static int		 fresh_dirty = 1, stopping;

static void
dlog(const char *fmt, ...)
	__attribute__((__format__(__printf__, 1, 2)));

/* One line to stderr in one write(2). */
static void
dlog(const char *fmt, ...)
{
	char	 line[1024];
	va_list	 ap;
	int	 n;

	n = snprintf(line, sizeof(line), "%s: ", DPROG);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	(void)write_all(STDERR_FILENO, line, (size_t)n);
}

static long long
now_ms(clockid_t clk)
{
	struct timespec	 ts;

	clock_gettime(clk, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: %s [-hV] [--once] [-d spooldir] [-e envfile] "
	    "[-j jobs] [-t timeout]\n"
	    "                    [-- handler [arg ...]]\n"
	    "       %s --stats [-d spooldir]\n"
	    "       %s --requeue-failed [-d spooldir]\n", DPROG, DPROG, DPROG);
}

/*
 * A duration: digits with an optional unit, ms, s (the default), m, h
 * or d.  Returns milliseconds, or -1.
 */
static long long
parse_duration(const char *s)
{
	char		 num[24];
	size_t		 n, v;
	long long	 mul = 1000;
	const char	*u;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		continue;
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (parse_size(num, (size_t)1 << 40, &v) == -1)
		return -1;
	u = s + n;
	if (strcmp(u, "ms") == 0)
		mul = 1;
	else if (*u == '\0' || strcmp(u, "s") == 0)
		mul = 1000;
	else if (strcmp(u, "m") == 0)
		mul = 60 * 1000;
	else if (strcmp(u, "h") == 0)
		mul = 3600 * 1000;
	else if (strcmp(u, "d") == 0)
		mul = 86400 * 1000;
	else
		return -1;
	return (long long)v * mul;
}

static int
remember(void *arg, const char *key, const char *val)
{
	size_t	 i;

	(void)arg;
	for (i = 0; i < D_COUNT; i++) {
		if (strcmp(key, dkey_names[i]) != 0)
			continue;
		free(cfg.file[i]);
		if ((cfg.file[i] = strdup(val)) == NULL)
			return -1;
	}
	return 0;
}

static int
read_env_file(const char *path)
{
	struct stat	 st;
	char		*data, err[256];
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		dlog("NSPS_ENV_FILE: %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > MAX_ENV_FILE) {
		dlog("NSPS_ENV_FILE: %s: not a regular file of at most %d "
		    "bytes", path, MAX_ENV_FILE);
		close(fd);
		return -1;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size &&
	    (n = read(fd, data + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	rc = dotenv_parse(data, len, remember, NULL, err, sizeof(err));
	free(data);
	if (rc == -1)
		dlog("NSPS_ENV_FILE: %s: %s", path, err);
	return rc;
}

/* Command line, then environment, then the dotenv file. */
static const char *
dsetting(enum dkey k)
{
	const char	*v;

	if (cfg.opt[k] != NULL && *cfg.opt[k] != '\0')
		return cfg.opt[k];
	if ((v = getenv(dkey_names[k])) != NULL && *v != '\0')
		return v;
	if (cfg.file[k] != NULL && *cfg.file[k] != '\0')
		return cfg.file[k];
	return NULL;
}

static int
duration_setting(enum dkey k, const char *def, long long *out)
{
	const char	*v = dsetting(k);

	if (v == NULL)
		v = def;
	if ((*out = parse_duration(v)) < 0) {
		dlog("%s: '%s' is not a duration (such as 500ms, 30s, 5m, "
		    "2h, 35d)", dkey_names[k], v);
		return -1;
	}
	return 0;
}

static int
count_setting(enum dkey k, size_t def, size_t max, size_t *out)
{
	const char	*v = dsetting(k);

	*out = def;
	if (v != NULL && (parse_size(v, max, out) == -1 || *out == 0)) {
		dlog("%s: '%s' is not a number from 1 to %zu", dkey_names[k],
		    v, max);
		return -1;
	}
	return 0;
}

/* HANDLER from the environment: words separated by blanks, no quoting. */
static int
split_handler(const char *v)
{
	char	*copy, *w, *save = NULL;
	size_t	 n = 0;

	if ((copy = strdup(v)) == NULL ||
	    (cfg.argv = calloc(strlen(v) / 2 + 2, sizeof(char *))) == NULL)
		return -1;
	for (w = strtok_r(copy, " \t", &save); w != NULL;
	    w = strtok_r(NULL, " \t", &save))
		cfg.argv[n++] = w;
	cfg.argv[n] = NULL;
	return n > 0 ? 0 : -1;
}

/* The handler must be there now, not fail every event later. */
static int
handler_runnable(const char *prog)
{
	const char	*path;
	char		 buf[PATH_MAX];
	const char	*p, *e;

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	if ((path = getenv("PATH")) == NULL)
		path = "/usr/bin:/bin";
	for (p = path;; p = e + 1) {
		if ((e = strchr(p, ':')) == NULL)
			e = p + strlen(p);
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p, prog);
		if (access(buf, X_OK) == 0)
			return 1;
		if (*e == '\0')
			return 0;
	}
}

static int
load_settings(const char *envfile, int need_handler)
{
	const char	*v;

	if (envfile == NULL && (v = getenv("NSPS_ENV_FILE")) != NULL &&
	    *v != '\0')
		envfile = v;
	if (envfile != NULL && read_env_file(envfile) == -1)
		return -1;
	if ((v = dsetting(D_SPOOL_DIR)) == NULL) {
		dlog("no spool: set SPOOL_DIR or give -d");
		return -1;
	}
	if ((cfg.spool_dir = realpath(v, NULL)) == NULL) {
		dlog("SPOOL_DIR: %s: %s", v, strerror(errno));
		return -1;
	}
	if (duration_setting(D_HANDLER_TIMEOUT, "30s", &cfg.timeout_ms) == -1 ||
	    duration_setting(D_RETRY_BASE, "10s", &cfg.base_ms) == -1 ||
	    duration_setting(D_RETRY_CAP, "1h", &cfg.cap_ms) == -1 ||
	    duration_setting(D_RETRY_MAX_AGE, "3d", &cfg.max_age_ms) == -1 ||
	    duration_setting(D_RETENTION, "35d", &cfg.retention_ms) == -1 ||
	    count_setting(D_RETRY_LIMIT, 50, 100000, &cfg.max_attempts) == -1 ||
	    count_setting(D_DELIVER_JOBS, 1, MAX_JOBS, &cfg.jobs) == -1)
		return -1;
	if (cfg.timeout_ms == 0) {
		dlog("HANDLER_TIMEOUT: must not be 0");
		return -1;
	}
	if (!need_handler)
		return 0;
	if (cfg.argv == NULL && ((v = dsetting(D_HANDLER)) == NULL ||
	    split_handler(v) == -1)) {
		dlog("no handler: set HANDLER or give it after --");
		return -1;
	}
	if (!handler_runnable(cfg.argv[0])) {
		dlog("handler %s: not found or not executable", cfg.argv[0]);
		return -1;
	}
	return 0;
}

/* status/<id>: "key value" lines, then the last handler's stderr. */
static void
status_read(const char *id, struct status *st)
{
	char	 buf[512], *p;
	ssize_t	 n;
	int	 fd;

	memset(st, 0, sizeof(*st));
	if ((fd = openat(sp.fd[SPOOL_STATUS], id, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (p = buf; *p != '\0' && strncmp(p, "stderr:", 7) != 0; p++) {
		if (strncmp(p, "attempts ", 9) == 0)
			st->attempts = strtoul(p + 9, NULL, 10);
		else if (strncmp(p, "first ", 6) == 0)
			st->first_ms = strtoll(p + 6, NULL, 10);
		else if (strncmp(p, "next ", 5) == 0)
			st->next_ms = strtoll(p + 5, NULL, 10);
		if ((p = strchr(p, '\n')) == NULL)
			break;
	}
}

/* Replaces status/<id> whole, through a hidden temporary name. */
static int
status_write(const char *id, const struct status *st, const char *result,
    const char *tail, size_t tail_len)
{
	struct buf	 b = { 0 };
	char		 tmp[SPOOL_ID_MAX + 2];
	int		 fd, rc = -1, dir = sp.fd[SPOOL_STATUS];

	snprintf(tmp, sizeof(tmp), ".%s", id);
	if (buf_adds(&b, "attempts ") == -1 ||
	    buf_addu(&b, st->attempts) == -1 ||
	    buf_adds(&b, "\nfirst ") == -1 ||
	    buf_addu(&b, (unsigned long long)st->first_ms) == -1 ||
	    buf_adds(&b, "\nnext ") == -1 ||
	    buf_addu(&b, (unsigned long long)st->next_ms) == -1 ||
	    buf_adds(&b, "\nlast ") == -1 ||
	    buf_addu(&b, (unsigned long long)now_ms(CLOCK_REALTIME)) == -1 ||
	    buf_adds(&b, "\nresult ") == -1 || buf_adds(&b, result) == -1 ||
	    buf_adds(&b, "\nstderr:\n") == -1 ||
	    buf_add(&b, tail, tail_len) == -1)
		goto out;
	unlinkat(dir, tmp, 0);
	if ((fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		goto out;
	if (write_all(fd, b.data, b.len) == -1) {
		close(fd);
		goto out;
	}
	close(fd);
	rc = renameat(dir, tmp, dir, id);
out:
	if (rc == -1)
		dlog("%s: status: %s", id, strerror(errno));
	buf_free(&b);
	return rc;
}

static int
move(int from, int to, const char *id)
{
	if (renameat(sp.fd[from], id, sp.fd[to], id) == -1) {
		if (errno != ENOENT)
			dlog("%s: %s/ -> %s/: %s", id, spool_dirs[from],
			    spool_dirs[to], strerror(errno));
		return -1;
	}
	return 0;
}

/* Names in a folder, skipping dot files. */
static int
for_each(int folder, int (*fn)(int, const char *, void *), void *arg)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if ((fd = openat(sp.fd[folder], ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		dlog("%s/: %s", spool_dirs[folder], strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && fn(folder, de->d_name, arg) == -1)
			break;
	closedir(d);
	return 0;
}

static int
queue_add(struct queue *q, const char *id, long long key)
{
	struct entry	*e;

	if (q->n == q->cap) {
		if ((e = reallocarray(q->e, q->cap ? q->cap * 2 : 64,
		    sizeof(*e))) == NULL)
			return -1;
		q->e = e;
		q->cap = q->cap ? q->cap * 2 : 64;
	}
	if ((q->e[q->n].id = strdup(id)) == NULL)
		return -1;
	q->e[q->n++].key = key;
	return 0;
}

static void
queue_clear(struct queue *q)
{
	size_t	 i;

	for (i = 0; i < q->n; i++)
		free(q->e[i].id);
	q->n = q->next = 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return strcmp(x->id, y->id);
}

static long long
mtime_ms(const struct stat *st)
{
	return (long long)st->st_mtim.tv_sec * 1000 +
	    st->st_mtim.tv_nsec / 1000000;
}

static int
add_fresh(int folder, const char *id, void *arg)
{
	struct stat	 st;

	(void)arg;
	if (fstatat(sp.fd[folder], id, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode))
		return 0;
	return queue_add(&fresh, id, mtime_ms(&st));
}

static int
add_retry(int folder, const char *id, void *arg)
{
	struct status	 st;

	(void)folder;
	(void)arg;
	status_read(id, &st);
	return queue_add(&retries, id, st.next_ms);
}

/* The next due event, claimed into cur/; 0 when there is none. */
static int
claim(char *id, size_t idlen)
{
	struct entry	*e;
	long long	 now = now_ms(CLOCK_REALTIME);

	if (fresh.n > 0 && fresh.next == fresh.n)
		queue_clear(&fresh);
	if (fresh_dirty) {
		fresh_dirty = 0;
		queue_clear(&fresh);
		(void)for_each(SPOOL_NEW, add_fresh, NULL);
		/* An empty queue has no array: qsort(NULL, 0) is undefined. */
		if (fresh.n > 1)
			qsort(fresh.e, fresh.n, sizeof(*fresh.e), entry_cmp);
	}
	while (fresh.next < fresh.n) {
		e = &fresh.e[fresh.next++];
		if (move(SPOOL_NEW, SPOOL_CUR, e->id) == 0) {
			snprintf(id, idlen, "%s", e->id);
			return 1;
		}
	}
	while (retries.next < retries.n &&
	    retries.e[retries.next].key <= now) {
		e = &retries.e[retries.next++];
		if (move(SPOOL_RETRY, SPOOL_CUR, e->id) == 0) {
			snprintf(id, idlen, "%s", e->id);
			return 1;
		}
	}
	return 0;
}

/*
 * New files in new/, named by inotify: appended to the queue, newest
 * last, without reading the folder again.  Only an overflowed inotify
 * queue costs a rescan.
 */
static void
inotify_drain(int ifd)
{
	char		 buf[4096]
	    __attribute__((__aligned__(__alignof__(struct inotify_event))));
	const struct inotify_event *ie;
	const char	*p;
	ssize_t		 n;
	long long	 now = now_ms(CLOCK_REALTIME);

	while ((n = read(ifd, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ie) + ie->len) {
			ie = (const struct inotify_event *)(const void *)p;
			if (ie->mask & IN_Q_OVERFLOW)
				fresh_dirty = 1;
			else if (ie->len > 0 && ie->name[0] != '.' &&
			    queue_add(&fresh, ie->name, now) == -1)
				fresh_dirty = 1;
		}
}

/* Adds a retry in due order to the part of the queue not yet taken. */
static void
schedule_retry(const char *id, long long due)
{
	size_t	 i;

	/* Drop the entries already taken, so a long run does not grow. */
	if (retries.next > 0) {
		for (i = 0; i < retries.next; i++)
			free(retries.e[i].id);
		memmove(retries.e, retries.e + retries.next,
		    (retries.n - retries.next) * sizeof(*retries.e));
		retries.n -= retries.next;
		retries.next = 0;
	}
	if (queue_add(&retries, id, due) == -1)
		return;
	qsort(retries.e + retries.next, retries.n - retries.next,
	    sizeof(*retries.e), entry_cmp);
}

static char *
string_at(struct json_object *o, const char *const *path, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!json_object_object_get_ex(o, path[i], &o))
			return NULL;
	if (!json_object_is_type(o, json_type_string))
		return NULL;
	return strdup(json_object_get_string(o));
}

/* The connector's metadata, or what the body itself says. */
static void
event_fields(const char *id, char **type, char **bill, char **trace,
    char **request)
{
	static const char *const type_in_body[] = { "data", "event_type" };
	static const char *const bill_in_body[] = { "pb_data",
	    "account_info", "bill_status" };
	static const char *const k_type[] = { "event_type" };
	static const char *const k_bill[] = { "bill_status" };
	static const char *const k_trace[] = { "trace_id" };
	static const char *const k_request[] = { "request_id" };
	struct json_object	*root;
	int			 fd, meta = 1;

	*type = *bill = *trace = *request = NULL;
	fd = openat(sp.fd[SPOOL_META], id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		meta = 0;
		fd = openat(sp.fd[SPOOL_CUR], id, O_RDONLY | O_NOFOLLOW |
		    O_CLOEXEC);
	}
	if (fd == -1)
		return;
	root = json_object_from_fd(fd);
	close(fd);
	if (root == NULL)
		return;
	if (meta) {
		*type = string_at(root, k_type, 1);
		*bill = string_at(root, k_bill, 1);
		*trace = string_at(root, k_trace, 1);
		*request = string_at(root, k_request, 1);
	} else {
		*type = string_at(root, type_in_body, 2);
		*bill = string_at(root, bill_in_body, 3);
	}
	json_object_put(root);
}

/* In the child: never returns. */
static void
exec_handler(struct job *j, int evfd, int errw, const sigset_t *mask)
{
	char	*type, *bill, *trace, *request, buf[PATH_MAX];

	setpgid(0, 0);
	sigprocmask(SIG_SETMASK, mask, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(evfd, STDIN_FILENO) == -1 ||
	    dup2(errw, STDERR_FILENO) == -1)
		_exit(127);
	event_fields(j->id, &type, &bill, &trace, &request);
	snprintf(buf, sizeof(buf), "%s/cur/%s", cfg.spool_dir, j->id);
	setenv("NSPS_EVENT_ID", j->id, 1);
	setenv("NSPS_EVENT_FILE", buf, 1);
	setenv("NSPS_EVENT_TYPE", type ? type : "", 1);
	setenv("NSPS_BILL_STATUS", bill ? bill : "", 1);
	setenv("NSPS_TRACE_ID", trace ? trace : "", 1);
	setenv("NSPS_REQUEST_ID", request ? request : "", 1);
	snprintf(buf, sizeof(buf), "%zu", j->st.attempts);
	setenv("NSPS_ATTEMPT", buf, 1);
	setenv("NSPS_SPOOL_DIR", cfg.spool_dir, 1);
	execvp(cfg.argv[0], cfg.argv);
	dprintf(STDERR_FILENO, "%s: %s: %s\n", DPROG, cfg.argv[0],
	    strerror(errno));
	_exit(127);
}

static void
start(const char *id, const sigset_t *mask)
{
	struct job	*j = NULL;
	size_t		 i;
	int		 evfd, p[2];
	long long	 now = now_ms(CLOCK_REALTIME);

	for (i = 0; i < cfg.jobs; i++)
		if (jobs[i].pid == 0) {
			j = &jobs[i];
			break;
		}
	if (j == NULL) {
		/* Called only with a free slot; put the event back anyway. */
		(void)move(SPOOL_CUR, SPOOL_NEW, id);
		return;
	}
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "%s", id);
	status_read(id, &j->st);
	j->st.attempts++;
	if (j->st.first_ms == 0)
		j->st.first_ms = now;
	j->st.next_ms = 0;
	/* Recorded first, so an attempt cut short by a crash still counts. */
	(void)status_write(id, &j->st, "running", "", 0);
	if ((evfd = openat(sp.fd[SPOOL_CUR], id, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || pipe2(p, O_CLOEXEC) == -1) {
		dlog("%s: %s", id, strerror(errno));
		if (evfd != -1)
			close(evfd);
		(void)move(SPOOL_CUR, SPOOL_NEW, id);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &j->start);
	j->deadline = now_ms(CLOCK_MONOTONIC) + cfg.timeout_ms;
	j->errfd = p[0];
	if ((j->pid = fork()) == -1) {
		dlog("fork: %s", strerror(errno));
		j->pid = 0;
		close(p[0]);
		close(p[1]);
		close(evfd);
		(void)move(SPOOL_CUR, SPOOL_NEW, id);
		return;
	}
	if (j->pid == 0)
		exec_handler(j, evfd, p[1], mask);
	setpgid(j->pid, j->pid);
	close(p[1]);
	close(evfd);
	fcntl(j->errfd, F_SETFL, O_NONBLOCK);
	running++;
}

/* Keeps the last TAIL_SIZE bytes the handler wrote to stderr. */
static void
read_stderr(struct job *j)
{
	char	 buf[4096];
	ssize_t	 n;
	size_t	 keep;

	while ((n = read(j->errfd, buf, sizeof(buf))) > 0) {
		if ((size_t)n >= TAIL_SIZE) {
			memcpy(j->tail, buf + n - TAIL_SIZE, TAIL_SIZE);
			j->tail_len = TAIL_SIZE;
			continue;
		}
		keep = TAIL_SIZE - (size_t)n;
		if (j->tail_len > keep) {
			memmove(j->tail, j->tail + j->tail_len - keep, keep);
			j->tail_len = keep;
		}
		memcpy(j->tail + j->tail_len, buf, (size_t)n);
		j->tail_len += (size_t)n;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		close(j->errfd);
		j->errfd = -1;
	}
}

/* Equal jitter: between half and all of base * 2^(attempt-1), capped. */
static long long
backoff(size_t attempt)
{
	long long	 d = cfg.base_ms;
	unsigned int	 r = 0;
	size_t		 i;

	for (i = 1; i < attempt && d < cfg.cap_ms; i++)
		d *= 2;
	if (d > cfg.cap_ms)
		d = cfg.cap_ms;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned int)rand();
	return d - (d / 2 == 0 ? 0 : (long long)(r % (unsigned)(d / 2 + 1)));
}

/* The handler is gone: decide where its event goes. */
static void
finish(struct job *j)
{
	char		 result[128];
	long long	 now = now_ms(CLOCK_REALTIME), delay;
	int		 temp = 0, ok = 0;

	if (j->errfd != -1)
		read_stderr(j);
	if (j->errfd != -1)
		close(j->errfd);
	j->errfd = -1;
	if (j->timed_out) {
		snprintf(result, sizeof(result), "timeout after %lld ms",
		    cfg.timeout_ms);
		temp = 1;
	} else if (WIFSIGNALED(j->wstatus)) {
		snprintf(result, sizeof(result), "signal %d",
		    WTERMSIG(j->wstatus));
		temp = 1;
	} else {
		snprintf(result, sizeof(result), "exit %d",
		    WEXITSTATUS(j->wstatus));
		ok = WEXITSTATUS(j->wstatus) == 0;
		temp = WEXITSTATUS(j->wstatus) == EX_TEMPFAIL_CODE;
	}
	if (ok) {
		(void)status_write(j->id, &j->st, result, "", 0);
		if (move(SPOOL_CUR, SPOOL_DONE, j->id) == 0)
			fsync(sp.fd[SPOOL_DONE]);
		dlog("%s: attempt %zu: %s, done", j->id, j->st.attempts,
		    result);
	} else if (temp && j->st.attempts < cfg.max_attempts &&
	    now - j->st.first_ms < cfg.max_age_ms) {
		delay = backoff(j->st.attempts);
		j->st.next_ms = now + delay;
		(void)status_write(j->id, &j->st, result, j->tail,
		    j->tail_len);
		if (move(SPOOL_CUR, SPOOL_RETRY, j->id) == 0)
			schedule_retry(j->id, j->st.next_ms);
		dlog("%s: attempt %zu: %s, retry in %lld ms", j->id,
		    j->st.attempts, result, delay);
	} else {
		if (temp)
			snprintf(result + strlen(result),
			    sizeof(result) - strlen(result),
			    ", no attempts left");
		(void)status_write(j->id, &j->st, result, j->tail,
		    j->tail_len);
		if (move(SPOOL_CUR, SPOOL_FAILED, j->id) == 0)
			fsync(sp.fd[SPOOL_FAILED]);
		dlog("%s: attempt %zu: %s, failed", j->id, j->st.attempts,
		    result);
	}
	j->pid = 0;
	running--;
}

static void
reap(void)
{
	pid_t	 pid;
	int	 ws;
	size_t	 i;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
		for (i = 0; i < cfg.jobs; i++)
			if (jobs[i].pid == pid) {
				jobs[i].wstatus = ws;
				finish(&jobs[i]);
			}
}

/*
 * Recovery, before any delivery: whatever a killed worker or connector
 * left half done is completed.
 */
static int
recover_cur(int folder, const char *id, void *arg)
{
	(void)folder;
	(void)arg;
	(void)move(SPOOL_CUR, SPOOL_NEW, id);
	return 0;
}

/* A tmp file is stale when its connector is gone or it is old. */
static int
stale(const char *name, const struct stat *st)
{
	const char	*p = strchr(name, ',');
	long		 pid;

	if (now_ms(CLOCK_REALTIME) - mtime_ms(st) > TMP_GRACE_MS)
		return 1;
	if (p == NULL || (pid = strtol(p + 1, NULL, 10)) <= 0)
		return 1;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}

static int
recover_tmp(int folder, const char *name, void *arg)
{
	struct stat	 st, mk;
	char		 id[SPOOL_ID_MAX + 1];
	const char	*comma = strchr(name, ',');
	size_t		 len = strlen(name);
	int		 tmp = sp.fd[SPOOL_TMP];

	(void)folder;
	(void)arg;
	if (fstatat(tmp, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !stale(name, &st))
		return 0;
	if (comma == NULL || (size_t)(comma - name) > SPOOL_ID_MAX ||
	    len < 2 || name[len - 2] != ',') {
		unlinkat(tmp, name, 0);
		return 0;
	}
	memcpy(id, name, (size_t)(comma - name));
	id[comma - name] = '\0';
	if (fstatat(sp.fd[SPOOL_IDS], id, &mk, AT_SYMLINK_NOFOLLOW) == 0 &&
	    mk.st_ino == st.st_ino && mk.st_dev == st.st_dev &&
	    st.st_nlink == 2) {
		/* Past the gate, never reached new/. */
		if (linkat(tmp, name, sp.fd[SPOOL_NEW], id, 0) == 0)
			dlog("%s: recovered from tmp/", id);
		else if (errno != EEXIST)
			return 0;
	} else if (name[len - 1] == 'm' &&
	    fstatat(sp.fd[SPOOL_IDS], id, &mk, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fstatat(sp.fd[SPOOL_META], id, &mk, AT_SYMLINK_NOFOLLOW) == -1) {
		(void)renameat(tmp, name, sp.fd[SPOOL_META], id);
		return 0;
	}
	unlinkat(tmp, name, 0);
	return 0;
}

/* A marker with no other link: its event is in no folder. */
static int
recover_ids(int folder, const char *id, void *arg)
{
	struct stat	 st;

	(void)folder;
	(void)arg;
	if (fstatat(sp.fd[SPOOL_IDS], id, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    linkat(sp.fd[SPOOL_IDS], id, sp.fd[SPOOL_NEW], id, 0) == 0)
		dlog("%s: recovered from ids/", id);
	return 0;
}

static void
recover(void)
{
	(void)for_each(SPOOL_CUR, recover_cur, NULL);
	/* Body files first: their meta siblings look at what they did. */
	(void)for_each(SPOOL_TMP, recover_tmp, NULL);
	(void)for_each(SPOOL_IDS, recover_ids, NULL);
	fsync(sp.fd[SPOOL_NEW]);
}

static long long
arrival_ms(int folder, const char *id)
{
	struct stat	 st;

	if (fstatat(sp.fd[folder], id, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	return mtime_ms(&st);
}

/* Past the retention: the marker goes first, so a crash leaves no orphan. */
static int
prune_one(int folder, const char *id, void *arg)
{
	struct stat	 st, mk;
	long long	*cutoff = arg;

	if (fstatat(sp.fd[folder], id, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    mtime_ms(&st) > *cutoff)
		return 0;
	unlinkat(sp.fd[SPOOL_STATUS], id, 0);
	unlinkat(sp.fd[SPOOL_META], id, 0);
	if (fstatat(sp.fd[SPOOL_IDS], id, &mk, AT_SYMLINK_NOFOLLOW) == 0 &&
	    mk.st_ino == st.st_ino && mk.st_dev == st.st_dev)
		unlinkat(sp.fd[SPOOL_IDS], id, 0);
	unlinkat(sp.fd[folder], id, 0);
	return 0;
}

static void
prune(void)
{
	long long	 cutoff = now_ms(CLOCK_REALTIME) - cfg.retention_ms;

	(void)for_each(SPOOL_DONE, prune_one, &cutoff);
}

/* --stats */
struct fstat {
	size_t		 count;
	long long	 oldest;
};

static int
stat_one(int folder, const char *id, void *arg)
{
	struct fstat	*f = arg;
	long long	 t = arrival_ms(folder, id);

	f->count++;
	if (t >= 0 && (f->oldest < 0 || t < f->oldest))
		f->oldest = t;
	return 0;
}

static int
print_stats(void)
{
	static const int folders[] = { SPOOL_NEW, SPOOL_CUR, SPOOL_RETRY,
	    SPOOL_DONE, SPOOL_FAILED, SPOOL_TMP, SPOOL_IDS };
	struct buf	 b = { 0 };
	struct fstat	 f;
	long long	 now = now_ms(CLOCK_REALTIME);
	size_t		 i;

	buf_adds(&b, "{\"spool\":");
	buf_add_json_string(&b, cfg.spool_dir, strlen(cfg.spool_dir));
	for (i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		f.count = 0;
		f.oldest = -1;
		if (for_each(folders[i], stat_one, &f) == -1)
			return 1;
		buf_adds(&b, ",\"");
		buf_adds(&b, spool_dirs[folders[i]]);
		buf_adds(&b, "\":{\"count\":");
		buf_addu(&b, f.count);
		buf_adds(&b, ",\"oldest_age\":");
		if (f.oldest < 0)
			buf_adds(&b, "null");
		else
			buf_addu(&b, (unsigned long long)(now > f.oldest ?
			    (now - f.oldest) / 1000 : 0));
		buf_addc(&b, '}');
	}
	if (buf_adds(&b, "}\n") == -1 ||
	    write_all(STDOUT_FILENO, b.data, b.len) == -1)
		return 1;
	buf_free(&b);
	return 0;
}

/* --requeue-failed: attempts start again from one. */
static int
requeue_one(int folder, const char *id, void *arg)
{
	size_t	*n = arg;

	(void)folder;
	unlinkat(sp.fd[SPOOL_STATUS], id, 0);
	if (move(SPOOL_FAILED, SPOOL_NEW, id) == 0)
		(*n)++;
	return 0;
}

static void
kill_all(int sig)
{
	size_t	 i;

	for (i = 0; i < cfg.jobs; i++)
		if (jobs[i].pid > 0)
			kill(-jobs[i].pid, sig);
}

/*
 * The service loop: poll() on a signalfd (children, stop requests), an
 * inotify watch on new/ and the handlers' stderr pipes, with a timeout
 * for the nearest handler deadline, retry or pruning.
 */
static int
serve(int once)
{
	struct pollfd	 pfd[MAX_JOBS + 2];
	struct signalfd_siginfo si;
	sigset_t	 mask, old;
	char		 id[SPOOL_ID_MAX + 1], path[PATH_MAX];
	long long	 now, wait, next_prune, t;
	size_t		 i, n;
	int		 sfd, ifd = -1, timeout;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &old) == -1 ||
	    (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) == -1) {
		dlog("signalfd: %s", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/new", cfg.spool_dir);
	if (!once && ((ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1 ||
	    inotify_add_watch(ifd, path, IN_CREATE | IN_MOVED_TO |
	    IN_ONLYDIR) == -1)) {
		dlog("inotify: %s", strerror(errno));
		return 1;
	}
	recover();
	prune();
	(void)for_each(SPOOL_RETRY, add_retry, NULL);
	if (retries.n > 1)
		qsort(retries.e, retries.n, sizeof(*retries.e), entry_cmp);
	next_prune = now_ms(CLOCK_MONOTONIC) + PRUNE_EVERY_MS;

	for (;;) {
		while (!stopping && running < cfg.jobs &&
		    claim(id, sizeof(id)))
			start(id, &old);
		if (running == 0 && (stopping || once))
			break;

		now = now_ms(CLOCK_MONOTONIC);
		wait = next_prune - now;
		for (i = 0; i < cfg.jobs; i++)
			if (jobs[i].pid > 0 && !jobs[i].timed_out &&
			    jobs[i].deadline - now < wait)
				wait = jobs[i].deadline - now;
		if (retries.next < retries.n && !stopping &&
		    running < cfg.jobs) {
			t = retries.e[retries.next].key -
			    now_ms(CLOCK_REALTIME);
			if (t < wait)
				wait = t;
		}
		if (wait < 0)
			wait = 0;
		timeout = wait > INT_MAX ? INT_MAX : (int)wait;

		n = 0;
		pfd[n].fd = sfd;
		pfd[n++].events = POLLIN;
		pfd[n].fd = ifd;
		pfd[n++].events = POLLIN;
		for (i = 0; i < cfg.jobs; i++) {
			pfd[n].fd = jobs[i].pid > 0 ? jobs[i].errfd : -1;
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, n, timeout) == -1 && errno != EINTR) {
			dlog("poll: %s", strerror(errno));
			kill_all(SIGKILL);
			return 1;
		}
		for (i = 0; i < cfg.jobs; i++)
			if (jobs[i].pid > 0 && jobs[i].errfd != -1 &&
			    pfd[2 + i].revents != 0)
				read_stderr(&jobs[i]);
		if (ifd != -1 && pfd[1].revents != 0)
			inotify_drain(ifd);
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD)
				continue;
			if (stopping)
				kill_all(SIGKILL);
			stopping = 1;
			dlog("stopping on signal %u; %zu handlers running",
			    si.ssi_signo, running);
		}
		reap();
		now = now_ms(CLOCK_MONOTONIC);
		for (i = 0; i < cfg.jobs; i++)
			if (jobs[i].pid > 0 && !jobs[i].timed_out &&
			    now >= jobs[i].deadline) {
				jobs[i].timed_out = 1;
				kill(-jobs[i].pid, SIGKILL);
			}
		/* The hourly rescan also catches anything inotify missed. */
		if (now >= next_prune) {
			prune();
			next_prune = now + PRUNE_EVERY_MS;
			fresh_dirty = 1;
		}
		/* --once takes what arrived meanwhile, too. */
		if (once && fresh.next >= fresh.n)
			fresh_dirty = 1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "stats", no_argument, NULL, 'S' },
		{ "requeue-failed", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*envfile = NULL;
	int		 ch, once = 0, stats = 0, requeue = 0, lock, rc;
	size_t		 n = 0;

	while ((ch = getopt_long(argc, argv, "+d:e:hj:t:V", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'd':
			cfg.opt[D_SPOOL_DIR] = optarg;
			break;
		case 'e':
			envfile = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'j':
			cfg.opt[D_DELIVER_JOBS] = optarg;
			break;
		case 't':
			cfg.opt[D_HANDLER_TIMEOUT] = optarg;
			break;
		case 'o':
			once = 1;
			break;
		case 'S':
			stats = 1;
			break;
		case 'R':
			requeue = 1;
			break;
		case 'V':
			printf("%s %s\n", DPROG, PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE_CODE;
		}
	}
	if (optind < argc)
		cfg.argv = argv + optind;
	if (stats + requeue + once > 1) {
		usage(stderr);
		return EX_USAGE_CODE;
	}
	if (load_settings(envfile, !stats && !requeue) == -1)
		return EX_CONFIG_CODE;
	if (spool_open(&sp, cfg.spool_dir) == -1) {
		dlog("%s", sp.error);
		return EX_CONFIG_CODE;
	}
	if (stats)
		return print_stats();
	if (requeue) {
		rc = for_each(SPOOL_FAILED, requeue_one, &n) == -1;
		printf("%zu events requeued\n", n);
		return rc;
	}
	/* One worker per spool: two would deliver the same event twice. */
	if ((lock = openat(sp.root, "deliver.lock", O_RDWR | O_CREAT |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 ||
	    flock(lock, LOCK_EX | LOCK_NB) == -1) {
		dlog("%s/deliver.lock: %s", cfg.spool_dir,
		    errno == EWOULDBLOCK ? "another nsps-deliver runs on "
		    "this spool" : strerror(errno));
		return EX_TEMPFAIL_CODE;
	}
	signal(SIGPIPE, SIG_IGN);
	return serve(once);
}
