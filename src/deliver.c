/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * nsps-deliver's scheduler: hands each queued event to the operator's
 * handler, at least once, with retries.  It keeps the jobs, the timers
 * and the signals; where events are kept is the queue's business
 * (struct queue, queue.h: the spool, spool_queue.c, or PostgreSQL,
 * pg.c).
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

#define PRUNE_EVERY_MS		(60LL * 60 * 1000)

/* One line to stderr in one write(2). */
void
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

/*
 * Equal jitter: between half and all of base * 2^(attempt-1), capped;
 * r is a random number.
 */
long long
backoff_delay(long long base, long long cap, size_t attempt, unsigned int r)
{
	long long	 d = base;
	size_t		 i;

	for (i = 1; i < attempt && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	return d - (d / 2 == 0 ? 0 : (long long)(r % (unsigned)(d / 2 + 1)));
}

static long long
backoff(const struct config *cfg, size_t attempt)
{
	unsigned int	 r = 0;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned int)rand();
	return backoff_delay(cfg->retry_base_ms, cfg->retry_cap_ms, attempt,
	    r);
}

/*
 * The start of a process in clock ticks since boot (/proc/PID/stat's
 * 22nd field): with the pid it names one process for good.  0 when
 * there is no such process.
 */
unsigned long long
proc_start_time(pid_t pid)
{
	char			 path[64], buf[1024], *p;
	unsigned long long	 v = 0;
	ssize_t			 n;
	int			 fd, i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may hold anything but ends at the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	for (i = 0; i < 20 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		v = strtoull(p + 1, NULL, 10);
	return v;
}

/* Whether a live (not zombie) process is in process group pgid. */
static int
group_alive(pid_t pgid)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[300], buf[512], *p, state;
	long		 grp;
	ssize_t		 n;
	int		 fd, alive = 0;

	if ((d = opendir("/proc")) == NULL)
		return kill(-pgid, 0) == 0;
	while (!alive && (de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if ((p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %c %*d %ld", &state, &grp) == 2 &&
		    grp == (long)pgid && state != 'Z')
			alive = 1;
	}
	closedir(d);
	return alive;
}

/*
 * A killed worker's handler still running (its pid and start time were
 * recorded): its whole group is killed, and waited for, before the
 * event runs again.  A leader with another start time is a reused
 * pid, not ours; a group whose leader is gone still holds its id, so
 * that pid cannot have been handed out again.
 */
static void
kill_orphan(pid_t pid, unsigned long long start)
{
	unsigned long long	 now = proc_start_time(pid);
	int			 i;

	if (now != 0 && now != start)
		return;
	if (!group_alive(pid))
		return;
	dlog("killing handler group %ld a previous worker left", (long)pid);
	kill(-pid, SIGKILL);
	for (i = 0; i < 1000 && group_alive(pid); i++)
		usleep(10000);
	if (group_alive(pid))
		dlog("handler group %ld: still there after SIGKILL",
		    (long)pid);
}

/*
 * In the child: runs argv on the event, in a process group of its own
 * that dies with its parent.  stdout goes to /dev/null when quiet (the
 * connector's stdout may be its FastCGI socket).  Never returns.
 */
void
handler_exec(const struct config *cfg, const struct delivery *d,
    char *const *argv, int errw, pid_t parent, const sigset_t *mask,
    int quiet)
{
	char	 buf[32];
	int	 null;

	setpgid(0, 0);
	/* Dies with its parent, however it dies; it may already have. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(127);
	sigprocmask(SIG_SETMASK, mask, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(d->fd, STDIN_FILENO) == -1 ||
	    dup2(errw, STDERR_FILENO) == -1)
		_exit(127);
	if (quiet && ((null = open("/dev/null", O_WRONLY)) == -1 ||
	    dup2(null, STDOUT_FILENO) == -1))
		_exit(127);
	/* The connector's token is never the handler's business. */
	unsetenv("API_TOKEN");
	setenv("NSPS_EVENT_ID", d->id, 1);
	setenv("NSPS_EVENT_FILE", d->path, 1);
	setenv("NSPS_EVENT_TYPE", d->type ? d->type : "", 1);
	setenv("NSPS_BILL_STATUS", d->bill_status ? d->bill_status : "", 1);
	setenv("NSPS_TRACE_ID", d->trace_id ? d->trace_id : "", 1);
	setenv("NSPS_REQUEST_ID", d->request_id ? d->request_id : "", 1);
	snprintf(buf, sizeof(buf), "%zu", d->attempts);
	setenv("NSPS_ATTEMPT", buf, 1);
	if (cfg->spool_dir != NULL)
		setenv("NSPS_SPOOL_DIR", cfg->spool_dir, 1);
	execvp(argv[0], argv);
	dprintf(STDERR_FILENO, "%s: %s: %s\n", quiet ? PROG : DPROG, argv[0],
	    strerror(errno));
	_exit(127);
}

/* Runs argv on a claimed event, in a free job slot. */
static void
start(struct worker *w, struct delivery *d, char *const *argv)
{
	struct job	*j = NULL;
	size_t		 i;
	pid_t		 parent = getpid();
	int		 p[2];

	for (i = 0; i < w->cfg->jobs; i++)
		if (w->jobs[i].pid == 0) {
			j = &w->jobs[i];
			break;
		}
	if (j == NULL || pipe2(p, O_CLOEXEC) == -1) {
		if (j != NULL)
			dlog("%s: pipe: %s", d->id, strerror(errno));
		w->q->ops->release(w->q->ctx, d);
		delivery_free(d);
		return;
	}
	memset(j, 0, sizeof(*j));
	j->d = *d;
	j->argv = argv;
	j->deadline = clock_ms(CLOCK_MONOTONIC) + w->cfg->handler_timeout_ms;
	j->errfd = p[0];
	if ((j->pid = fork()) == -1) {
		dlog("fork: %s", strerror(errno));
		j->pid = 0;
		close(p[0]);
		close(p[1]);
		w->q->ops->release(w->q->ctx, &j->d);
		delivery_free(&j->d);
		return;
	}
	if (j->pid == 0)
		handler_exec(w->cfg, &j->d, j->argv, p[1], parent, &w->oldmask,
		    0);
	setpgid(j->pid, j->pid);
	w->q->ops->started(w->q->ctx, &j->d, j->pid,
	    proc_start_time(j->pid));
	close(p[1]);
	/* The child has its own copy; ours would only hold the file. */
	close(j->d.fd);
	j->d.fd = -1;
	fcntl(j->errfd, F_SETFL, O_NONBLOCK);
	w->running++;
}

/*
 * Keeps the last TAIL_SIZE bytes the handler wrote to stderr; closes
 * *fd at its end.
 */
void
tail_read(int *fd, char *tail, size_t *tail_len)
{
	char	 buf[4096];
	ssize_t	 n;
	size_t	 keep;

	while ((n = read(*fd, buf, sizeof(buf))) > 0) {
		if ((size_t)n >= TAIL_SIZE) {
			memcpy(tail, buf + n - TAIL_SIZE, TAIL_SIZE);
			*tail_len = TAIL_SIZE;
			continue;
		}
		keep = TAIL_SIZE - (size_t)n;
		if (*tail_len > keep) {
			memmove(tail, tail + *tail_len - keep, keep);
			*tail_len = keep;
		}
		memcpy(tail + *tail_len, buf, (size_t)n);
		*tail_len += (size_t)n;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		close(*fd);
		*fd = -1;
	}
}

static void
read_stderr(struct job *j)
{
	tail_read(&j->errfd, j->tail, &j->tail_len);
}

/*
 * What an attempt's end means: exit 0 is done; exit 75, a signal or
 * the timeout is worth a retry while attempts and age allow; anything
 * else has failed.
 */
enum outcome
judge(const struct config *cfg, int wstatus, int timed_out, size_t attempts,
    long long age_ms, char *result, size_t len)
{
	int	 temp;

	if (timed_out) {
		snprintf(result, len, "timeout after %lld ms",
		    cfg->handler_timeout_ms);
		temp = 1;
	} else if (WIFSIGNALED(wstatus)) {
		snprintf(result, len, "signal %d", WTERMSIG(wstatus));
		temp = 1;
	} else {
		snprintf(result, len, "exit %d", WEXITSTATUS(wstatus));
		if (WEXITSTATUS(wstatus) == 0)
			return OUTCOME_DONE;
		temp = WEXITSTATUS(wstatus) == EX_TEMPFAIL_CODE;
	}
	if (temp && attempts < cfg->retry_limit &&
	    age_ms < cfg->retry_max_age_ms)
		return OUTCOME_RETRY;
	if (temp)
		snprintf(result + strlen(result), len - strlen(result),
		    ", no attempts left");
	return OUTCOME_FAILED;
}

/*
 * The key's newest applied version, recorded before the event is done:
 * a crash in between delivers it again, which an equal version allows.
 * Returns 0, or -1 with why when it is not durable: then the event is
 * not done.
 */
int
delivery_applied(const struct queue *q, const struct delivery *d, char *why,
    size_t len)
{
	struct applied	 a;
	int		 r;

	memset(&a, 0, sizeof(a));
	if ((r = q->ops->applied_get(q->ctx, d->key, &a)) == 1 &&
	    version_cmp(&d->version, &a.version) < 0)
		return 0;
	/* Unreadable: never written over, an operator looks first. */
	if (r == -1) {
		snprintf(why, len, "%s", a.error);
		return -1;
	}
	a.version = d->version;
	snprintf(a.id, sizeof(a.id), "%s", d->id);
	if (q->ops->applied_set(q->ctx, d->key, &a) == -1) {
		snprintf(why, len, "%s", a.error);
		return -1;
	}
	return 0;
}

/* The handler is gone: its event goes where the outcome says. */
static void
finish(struct worker *w, struct job *j)
{
	char		 result[384], why[160];
	long long	 now = clock_ms(CLOCK_REALTIME), delay = 0;
	enum outcome	 how;

	if (j->errfd != -1)
		read_stderr(j);
	if (j->errfd != -1)
		close(j->errfd);
	j->errfd = -1;
	how = judge(w->cfg, j->wstatus, j->timed_out, j->d.attempts,
	    now - j->d.first_ms, result, sizeof(result));
	if (how == OUTCOME_DONE && j->d.key[0] != '\0' && !j->lost &&
	    delivery_applied(w->q, &j->d, why, sizeof(why)) == -1) {
		/*
		 * Not recorded, not done: it runs again, as an equal
		 * version may, and holds its key until it is recorded.
		 */
		how = OUTCOME_RETRY;
		j->d.hold = 1;
		snprintf(result + strlen(result), sizeof(result) -
		    strlen(result), ", but the applied version of %s was not "
		    "recorded: %s", j->d.key, why);
	}
	if (how == OUTCOME_RETRY)
		delay = backoff(w->cfg, j->d.attempts);
	(void)w->q->ops->finish(w->q->ctx, &j->d, how, now + delay, result,
	    j->tail, j->tail_len);
	/* The job started at its deadline less the timeout. */
	metrics_delivery(w->metrics, metrics_result(how, j->timed_out),
	    clock_ms(CLOCK_MONOTONIC) - j->deadline +
	    w->cfg->handler_timeout_ms);
	if (how == OUTCOME_DONE)
		dlog("%s: attempt %zu: %s, done", j->d.id, j->d.attempts,
		    result);
	else if (how == OUTCOME_RETRY)
		dlog("%s: attempt %zu: %s, retry in %lld ms", j->d.id,
		    j->d.attempts, result, delay);
	else
		dlog("%s: attempt %zu: %s, failed", j->d.id, j->d.attempts,
		    result);
	delivery_free(&j->d);
	j->pid = 0;
	w->running--;
}

/* An event that runs no handler goes straight where it belongs. */
static void
settle(struct worker *w, struct delivery *d, enum outcome how,
    enum delivery_result counted, const char *result)
{
	long long	 due = 0;

	if (how == OUTCOME_RETRY)
		due = clock_ms(CLOCK_REALTIME) + backoff(w->cfg, d->attempts);
	(void)w->q->ops->finish(w->q->ctx, d, how, due, result, "", 0);
	metrics_delivery(w->metrics, counted, -1);
	delivery_free(d);
}

/* Whether a running handler has an event of this key: the claim's test. */
static int
key_busy(void *arg, const char *key)
{
	const struct worker *w = arg;
	size_t		 i;

	for (i = 0; i < w->cfg->jobs; i++)
		if (w->jobs[i].pid > 0 && strcmp(w->jobs[i].d.key, key) == 0)
			return 1;
	return 0;
}

/*
 * A key whose applied version cannot be read: its events wait as
 * retries, the key named once in the log until it reads again.
 */
static void
blocked(struct worker *w, struct delivery *d, const char *why)
{
	size_t	 i;

	for (i = 0; i < w->nblocked; i++)
		if (strcmp(w->blocked[i], d->key) == 0)
			break;
	if (i == w->nblocked) {
		dlog("%s: applied version unreadable (%s): its events wait "
		    "until it is repaired", d->key, why);
		if (w->nblocked < MAX_BLOCKED)
			snprintf(w->blocked[w->nblocked++],
			    sizeof(w->blocked[0]), "%s", d->key);
		metrics_blocked(w->metrics, w->nblocked);
	}
	settle(w, d, OUTCOME_RETRY, DRESULT_RETRY, "waiting: the applied "
	    "version of its key cannot be read");
}

/* The key reads again: it is no longer named as blocked. */
static void
unblocked(struct worker *w, const char *key)
{
	size_t	 i;

	for (i = 0; i < w->nblocked; i++)
		if (strcmp(w->blocked[i], key) == 0) {
			dlog("%s: applied version readable again", key);
			memmove(w->blocked[i], w->blocked[i + 1],
			    (w->nblocked - i - 1) * sizeof(w->blocked[0]));
			w->nblocked--;
			metrics_blocked(w->metrics, w->nblocked);
			return;
		}
}

/*
 * Why ORDER cannot place an event, into why: its version or key is
 * unreadable, its body cannot be read back, or its version is further
 * ahead of the clock than ORDER_MAX_SKEW.  Returns 1 when it cannot.
 */
static int
unplaced(const struct config *cfg, const struct delivery *d, char *why,
    size_t len)
{
	struct tm	 tm;
	time_t		 t;
	char		 when[32];

	if (d->order_error[0] != '\0') {
		snprintf(why, len, "%s", d->order_error);
		return 1;
	}
	if (d->key[0] == '\0' || !version_ahead(&d->version,
	    clock_ms(CLOCK_REALTIME), cfg->order_max_skew_ms))
		return 0;
	t = (time_t)(d->version.ns / 1000000000LL);
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	snprintf(why, len, "%s %s is more than ORDER_MAX_SKEW ahead of the "
	    "clock", cfg->order_version.dotted, when);
	return 1;
}

/*
 * What a claimed event calls for, the same for nsps-deliver and the
 * connector's inline delivery: held when ORDER cannot place it, blocked
 * when its key's applied version cannot be read, stale when its key has
 * a newer version applied (d->newer names it); otherwise its route:
 * a handler (*argv), ignored, or none.  why says the reason.
 */
enum decision
delivery_decide(const struct config *cfg, const struct queue *q,
    struct delivery *d, char *const **argv, char *why, size_t len)
{
	const struct route *r;
	struct applied	 a;
	size_t		 i, n;
	int		 rc = 0;

	*argv = NULL;
	if (unplaced(cfg, d, why, len))
		return DECIDE_HELD;
	memset(&a, 0, sizeof(a));
	if (d->key[0] != '\0' &&
	    (rc = q->ops->applied_get(q->ctx, d->key, &a)) == -1) {
		snprintf(why, len, "%s", a.error);
		return DECIDE_BLOCKED;
	}
	if (rc == 1 && version_cmp(&d->version, &a.version) < 0) {
		snprintf(d->newer, sizeof(d->newer), "%s", a.id);
		snprintf(why, len, "%s has a newer version applied by %s",
		    d->key, a.id);
		return DECIDE_STALE;
	}
	if ((r = route_find(cfg, d->type)) != NULL && r->argv == NULL) {
		snprintf(why, len, "ignored by ROUTES_FILE line %zu",
		    r->line);
		return DECIDE_IGNORED;
	}
	if (r != NULL || cfg->handler != NULL) {
		*argv = r != NULL ? r->argv : cfg->handler;
		return DECIDE_RUN;
	}
	n = (size_t)snprintf(why, len, "no route for %s", d->type);
	/* The type is the sender's: one line in the status file. */
	for (i = 0; i < n && i < len; i++)
		if ((unsigned char)why[i] < ' ' || why[i] == 0x7f)
			why[i] = '?';
	return DECIDE_NOROUTE;
}

/*
 * A claimed event goes where delivery_decide() says: held in failed/,
 * waiting while its key is blocked, done when stale or ignored, to its
 * handler, or failed when no route takes it.
 */
static void
dispatch(struct worker *w, struct delivery *d)
{
	char *const	*argv;
	char		 why[sizeof(d->order_error) + 64];
	enum decision	 dec;

	dec = delivery_decide(w->cfg, w->q, d, &argv, why, sizeof(why));
	if (dec != DECIDE_HELD && dec != DECIDE_BLOCKED &&
	    d->key[0] != '\0' && w->nblocked > 0)
		unblocked(w, d->key);
	switch (dec) {
	case DECIDE_HELD:
		dlog("%s: %s%s%s; held in failed/", d->id, d->key,
		    d->key[0] != '\0' ? ": " : "", why);
		settle(w, d, OUTCOME_FAILED, DRESULT_HELD, why);
		break;
	case DECIDE_BLOCKED:
		blocked(w, d, why);
		break;
	case DECIDE_STALE:
		dlog("%s: stale: %s has a newer version applied, by %s; done",
		    d->id, d->key, d->newer);
		settle(w, d, OUTCOME_DONE, DRESULT_STALE, "stale");
		break;
	case DECIDE_IGNORED:
		dlog("%s: %s: %s; done", d->id, d->type, why);
		settle(w, d, OUTCOME_DONE, DRESULT_IGNORED, "ignored");
		break;
	case DECIDE_RUN:
		start(w, d, argv);
		break;
	default:
		dlog("%s: %s; failed", d->id, why);
		settle(w, d, OUTCOME_FAILED, DRESULT_FAILED, why);
		break;
	}
}

static void
reap(struct worker *w)
{
	pid_t	 pid;
	int	 ws;
	size_t	 i;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
		for (i = 0; i < w->cfg->jobs; i++)
			if (w->jobs[i].pid == pid) {
				w->jobs[i].wstatus = ws;
				finish(w, &w->jobs[i]);
			}
}

static void
kill_all(struct worker *w, int sig)
{
	size_t	 i;

	for (i = 0; i < w->cfg->jobs; i++)
		if (w->jobs[i].pid > 0)
			kill(-w->jobs[i].pid, sig);
}

/*
 * How long poll() may sleep: the nearest deadline, retry, or wake_at
 * (pruning, metrics).
 */
static int
poll_timeout(const struct worker *w, long long wake_at)
{
	long long	 now = clock_ms(CLOCK_MONOTONIC), wait, due;
	size_t		 i;

	wait = wake_at - now;
	for (i = 0; i < w->cfg->jobs; i++)
		if (w->jobs[i].pid > 0 && !w->jobs[i].timed_out &&
		    w->jobs[i].deadline - now < wait)
			wait = w->jobs[i].deadline - now;
	/* Leases are renewed a few times within LEASE_TIME. */
	if (w->q->ops->renew != NULL && w->running > 0 &&
	    w->cfg->lease_ms / 4 < wait)
		wait = w->cfg->lease_ms / 4;
	if (!w->stopping && w->running < w->cfg->jobs &&
	    (due = w->q->ops->next_due(w->q->ctx)) >= 0 &&
	    due - clock_ms(CLOCK_REALTIME) < wait)
		wait = due - clock_ms(CLOCK_REALTIME);
	if (wait < 0)
		wait = 0;
	return wait > INT_MAX ? INT_MAX : (int)wait;
}

/* Signals: children are reaped after; a stop request stops claiming. */
static void
read_signals(struct worker *w)
{
	struct signalfd_siginfo si;

	while (read(w->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (w->stopping)
			kill_all(w, SIGKILL);
		w->stopping = 1;
		dlog("stopping on signal %u; %zu handlers running",
		    si.ssi_signo, w->running);
	}
}

static void
kill_overdue(struct worker *w)
{
	long long	 now = clock_ms(CLOCK_MONOTONIC);
	size_t		 i;

	for (i = 0; i < w->cfg->jobs; i++)
		if (w->jobs[i].pid > 0 && !w->jobs[i].timed_out &&
		    now >= w->jobs[i].deadline) {
			w->jobs[i].timed_out = 1;
			kill(-w->jobs[i].pid, SIGKILL);
		}
}

/* Handlers whose claim was lost are stopped: another worker has it. */
static void
renew(struct worker *w)
{
	struct job	*j;
	size_t		 i;

	if (w->q->ops->renew == NULL || w->q->ops->renew(w->q->ctx) == 0)
		return;
	for (i = 0; i < w->cfg->jobs; i++) {
		j = &w->jobs[i];
		if (j->pid > 0 && !j->lost && w->q->ops->lost(w->q->ctx,
		    &j->d)) {
			j->lost = 1;
			dlog("%s: lease lost; stopping its handler", j->d.id);
			kill(-j->pid, SIGKILL);
		}
	}
}

int
worker_init(struct worker *w, const struct config *cfg, struct queue *q)
{
	sigset_t	 mask;

	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	w->q = q;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &w->oldmask) == -1 ||
	    (w->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK))
	    == -1) {
		dlog("signalfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The queue's gauges and the heartbeat behind nsps_worker_up, into the
 * shared counters: from the worker, so a scrape never walks the spool.
 */
static void
publish(struct worker *w, int up)
{
	struct queue_count c[QSTATE_COUNT];

	if (w->metrics == NULL)
		return;
	if (w->q->ops->stats(w->q->ctx, c, 1u << QSTATE_NEW |
	    1u << QSTATE_CUR | 1u << QSTATE_RETRY | 1u << QSTATE_FAILED) == 0)
		metrics_queue(w->metrics, c);
	metrics_blocked(w->metrics, w->nblocked);
	if (w->has_log)
		metrics_log(w->metrics, &w->log);
	metrics_worker(w->metrics, up);
}

/* The store's checkpoint (the spool's log), every WAL_CHECKPOINT. */
static void
checkpoint(struct worker *w)
{
	if (w->q->ops->checkpoint != NULL &&
	    w->q->ops->checkpoint(w->q->ctx, &w->log) != 0)
		w->has_log = 1;
}

/*
 * The service loop: poll() on the signalfd (children, stop requests),
 * the queue's wake-up fd and the handlers' stderr pipes, with a timeout
 * for the nearest handler deadline, retry or pruning.
 */
int
worker_run(struct worker *w, int once)
{
	const struct queue_ops *ops = w->q->ops;
	struct pollfd	 pfd[MAX_JOBS + 2];
	struct delivery	 d;
	long long	 next_prune, next_publish, next_checkpoint, wake_at;
	size_t		 i, n;
	int		 drained;

	ops->recover(w->q->ctx, kill_orphan);
	checkpoint(w);
	next_checkpoint = clock_ms(CLOCK_MONOTONIC) + w->cfg->wal_checkpoint_ms;
	ops->prune(w->q->ctx, clock_ms(CLOCK_REALTIME) - w->cfg->retention_ms);
	next_prune = clock_ms(CLOCK_MONOTONIC) + PRUNE_EVERY_MS;
	publish(w, 1);
	next_publish = clock_ms(CLOCK_MONOTONIC) + METRICS_PUBLISH_MS;

	for (;;) {
		drained = 0;
		while (!w->stopping && w->running < w->cfg->jobs) {
			if (ops->claim(w->q->ctx, clock_ms(CLOCK_REALTIME),
			    key_busy, w, &d) != 1) {
				drained = 1;
				break;
			}
			dispatch(w, &d);
		}
		if (w->running == 0 && (w->stopping || once))
			break;

		n = 0;
		pfd[n].fd = w->sigfd;
		pfd[n++].events = POLLIN;
		pfd[n].fd = ops->wait_fd(w->q->ctx);
		pfd[n++].events = POLLIN;
		for (i = 0; i < w->cfg->jobs; i++) {
			pfd[n].fd = w->jobs[i].pid > 0 ? w->jobs[i].errfd : -1;
			pfd[n++].events = POLLIN;
		}
		wake_at = w->metrics != NULL && next_publish < next_prune ?
		    next_publish : next_prune;
		if (ops->checkpoint != NULL && next_checkpoint < wake_at)
			wake_at = next_checkpoint;
		if (poll(pfd, n, poll_timeout(w, wake_at)) == -1 &&
		    errno != EINTR) {
			dlog("poll: %s", strerror(errno));
			kill_all(w, SIGKILL);
			return 1;
		}
		for (i = 0; i < w->cfg->jobs; i++)
			if (w->jobs[i].pid > 0 && w->jobs[i].errfd != -1 &&
			    pfd[2 + i].revents != 0)
				read_stderr(&w->jobs[i]);
		if (pfd[1].fd != -1 && pfd[1].revents != 0)
			ops->wake(w->q->ctx);
		read_signals(w);
		reap(w);
		kill_overdue(w);
		renew(w);
		/* The hourly rescan also catches anything inotify missed. */
		if (clock_ms(CLOCK_MONOTONIC) >= next_prune) {
			ops->prune(w->q->ctx, clock_ms(CLOCK_REALTIME) -
			    w->cfg->retention_ms);
			next_prune = clock_ms(CLOCK_MONOTONIC) + PRUNE_EVERY_MS;
			ops->rescan(w->q->ctx);
		}
		if (clock_ms(CLOCK_MONOTONIC) >= next_checkpoint) {
			checkpoint(w);
			next_checkpoint = clock_ms(CLOCK_MONOTONIC) +
			    w->cfg->wal_checkpoint_ms;
		}
		if (clock_ms(CLOCK_MONOTONIC) >= next_publish) {
			publish(w, 1);
			next_publish = clock_ms(CLOCK_MONOTONIC) +
			    METRICS_PUBLISH_MS;
		}
		/* --once takes what arrived meanwhile, too. */
		if (once && drained)
			ops->rescan(w->q->ctx);
	}
	publish(w, 0);
	return 0;
}
