/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * DELIVERY=inline: the connector delivers the event it has just stored
 * before it answers, and answers from the outcome, so that NSPS's Event
 * History shows what became of it.  The event is claimed from the store
 * the way nsps-deliver claims it (queue_ops.claim_id: the same per-key
 * exclusivity), decided by the same rules (delivery_decide: held,
 * stale, routes) and run by the same code (handler_exec, tail_read,
 * delivery_applied), with INLINE_TIMEOUT as its deadline.  What it
 * cannot finish in time stays for nsps-deliver, or is refused with 503
 * (INLINE_FALLBACK).
 */
#include "config.h"

#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"

/* Without a pidfd, how often the handler is looked at. */
#define INLINE_STEP_MS		5

struct inline_ctx {
	const struct config *cfg;
	struct queue	 q;
	struct metrics	*metrics;
	char		 tail[TAIL_SIZE];
	size_t		 tail_len;
};

/* How a handler's run ended. */
struct run {
	int		 wstatus;
	int		 timed_out;
	long long	 ms;
};

/*
 * Opens the store's queue for the connector's inline claims.  Returns
 * 0, or -1 with the message in err and the exit status in *ex.
 */
int
inline_open(struct sink *sink, struct config *cfg, const struct store *st,
    char *err, size_t len, int *ex)
{
	struct inline_ctx *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, len, "inline: %s", strerror(errno));
		*ex = 1;
		return -1;
	}
	c->cfg = cfg;
	c->metrics = sink->metrics;
	if (st->queue_open(&c->q, cfg, QUEUE_INLINE, log_msg, err, len,
	    ex) == -1) {
		if (c->q.ops != NULL)
			c->q.ops->close(c->q.ctx);
		free(c);
		return -1;
	}
	if (c->q.ops->claim_id == NULL) {
		snprintf(err, len, "DELIVERY: inline: the %s store cannot "
		    "deliver inline", st->name);
		*ex = EX_CONFIG_CODE;
		c->q.ops->close(c->q.ctx);
		free(c);
		return -1;
	}
	sink->deliver = inline_deliver;
	sink->deliver_ctx = c;
	return 0;
}

void
inline_close(struct sink *sink)
{
	struct inline_ctx *c = sink->deliver_ctx;

	if (c == NULL)
		return;
	c->q.ops->close(c->q.ctx);
	free(c);
	sink->deliver_ctx = NULL;
	sink->deliver = NULL;
}

/* A descriptor readable once pid has exited (Linux 5.3), or -1. */
static int
pid_fd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Waits for the handler until the deadline, keeping the tail of its
 * stderr; then kills its group (a child it left, or all of it at the
 * deadline) before the leader is reaped, so that the group's id cannot
 * have been handed out again.
 */
static void
await(struct inline_ctx *c, pid_t pid, int errfd, long long deadline,
    struct run *run)
{
	struct pollfd	 pfd[2];
	siginfo_t	 si;
	long long	 left;
	int		 pidfd = pid_fd(pid);

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG |
		    WNOWAIT) == 0 && si.si_pid == pid)
			break;
		if ((left = deadline - clock_ms(CLOCK_MONOTONIC)) <= 0) {
			run->timed_out = 1;
			break;
		}
		/* Its stderr may outlive it, held by a child it left. */
		pfd[0].fd = errfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = pidfd;
		pfd[1].events = POLLIN;
		if (pidfd == -1 && left > INLINE_STEP_MS)
			left = INLINE_STEP_MS;
		if (poll(pfd, 2, (int)left) > 0 && errfd != -1 &&
		    pfd[0].revents != 0)
			tail_read(&errfd, c->tail, &c->tail_len);
	}
	if (pidfd != -1)
		close(pidfd);
	kill(-pid, SIGKILL);
	while (waitpid(pid, &run->wstatus, 0) == -1 && errno == EINTR)
		continue;
	if (errfd != -1) {
		tail_read(&errfd, c->tail, &c->tail_len);
		if (errfd != -1)
			close(errfd);
	}
}

/*
 * Runs argv on the claimed event, in its own group, until the deadline
 * set before the claim; 0, or -1.
 */
static int
run_handler(struct inline_ctx *c, struct delivery *d, char *const *argv,
    long long deadline, struct run *run)
{
	sigset_t	 none;
	long long	 start = clock_ms(CLOCK_MONOTONIC);
	pid_t		 pid, parent = getpid();
	int		 p[2];

	memset(run, 0, sizeof(*run));
	c->tail_len = 0;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -1;
	sigemptyset(&none);
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0)
		handler_exec(c->cfg, d, argv, p[1], parent, &none, 1);
	setpgid(pid, pid);
	close(p[1]);
	/* Read what is there, never wait in read(2): the deadline rules. */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	await(c, pid, p[0], deadline, run);
	run->ms = clock_ms(CLOCK_MONOTONIC) - start;
	return 0;
}

/* The last line of the handler's stderr, for the 422's error. */
static void
last_line(const struct inline_ctx *c, char *out, size_t len)
{
	size_t	 end = c->tail_len, start;

	while (end > 0 && (c->tail[end - 1] == '\n' ||
	    c->tail[end - 1] == '\r'))
		end--;
	for (start = end; start > 0 && c->tail[start - 1] != '\n'; start--)
		continue;
	if (end - start > INLINE_ERROR_MAX)
		end = start + INLINE_ERROR_MAX;
	snprintf(out, len, "%.*s", (int)(end - start), c->tail + start);
}

/*
 * What cannot be finished now: kept for nsps-deliver (202, queued), or
 * given back and refused (503), as INLINE_FALLBACK says.
 */
static void
fallback(struct inline_ctx *c, struct delivery *d, const char *why,
    struct response *r)
{
	if (c->cfg->inline_reject) {
		/* NSPS sends it again; its copy finds it waiting in new/. */
		if (d != NULL)
			c->q.ops->release(c->q.ctx, d);
		r->status = 503;
		r->extra = "Retry-After: 30\r\n";
		r->message = "Event not processed";
		snprintf(r->error_buf, sizeof(r->error_buf), "%s", why);
		r->error = r->error_buf;
		snprintf(r->reason_buf, sizeof(r->reason_buf), "inline: %s; "
		    "refused", why);
	} else {
		/* Back in new/, where a running nsps-deliver sees it at once. */
		if (d != NULL)
			c->q.ops->release(c->q.ctx, d);
		r->status = 202;
		snprintf(r->message_buf, sizeof(r->message_buf), "Event "
		    "accepted for processing; queued: %s", why);
		r->message = r->message_buf;
		snprintf(r->reason_buf, sizeof(r->reason_buf), "inline: %s; "
		    "queued", why);
	}
	r->reason = r->reason_buf;
}

/* Done without a handler, or with one that exited 0. */
static void
answer_done(struct inline_ctx *c, struct delivery *d, const char *result,
    const char *message, struct response *r)
{
	(void)c->q.ops->finish(c->q.ctx, d, OUTCOME_DONE, 0, result, "", 0);
	r->status = 202;
	snprintf(r->message_buf, sizeof(r->message_buf), "%s", message);
	r->message = r->message_buf;
	snprintf(r->reason_buf, sizeof(r->reason_buf), "inline: %s", result);
	r->reason = r->reason_buf;
}

/* Failed: in failed/ with the reason, answered 422. */
static void
answer_failed(struct inline_ctx *c, struct delivery *d, const char *result,
    const char *error, int held, struct response *r)
{
	(void)c->q.ops->finish(c->q.ctx, d, OUTCOME_FAILED, 0, result,
	    c->tail, c->tail_len);
	r->status = 422;
	r->message = held ? "Event held" : "Event processing failed";
	r->type = held ? "VALIDATION_ERROR" : "SERVICE_ERROR";
	snprintf(r->error_buf, sizeof(r->error_buf), "%s", error);
	r->error = r->error_buf;
	snprintf(r->reason_buf, sizeof(r->reason_buf), "inline: %s; failed",
	    result);
	r->reason = r->reason_buf;
}

/* The handler has run: its outcome becomes the answer. */
static void
conclude(struct inline_ctx *c, struct delivery *d, const struct run *run,
    struct response *r)
{
	char	 result[256], why[160], line[INLINE_ERROR_MAX + 1];
	int	 code = WIFEXITED(run->wstatus) ? WEXITSTATUS(run->wstatus) :
		    -1;

	if (run->timed_out) {
		snprintf(result, sizeof(result), "timeout after %lld ms",
		    c->cfg->inline_timeout_ms);
		metrics_inline(c->metrics, DRESULT_TIMEOUT, run->ms);
		fallback(c, d, result, r);
	} else if (code == 0 && d->key[0] != '\0' &&
	    delivery_applied(&c->q, d, why, sizeof(why)) == -1) {
		/* Not recorded, not done: it holds its key until it is. */
		d->hold = 1;
		snprintf(result, sizeof(result), "the applied version of its "
		    "key was not recorded: %s", why);
		metrics_inline(c->metrics, DRESULT_RETRY, run->ms);
		fallback(c, d, result, r);
	} else if (code == 0) {
		metrics_inline(c->metrics, DRESULT_DONE, run->ms);
		answer_done(c, d, "exit 0, done", "Event processed", r);
	} else if (code == EX_TEMPFAIL_CODE || code == -1) {
		if (code == -1)
			snprintf(result, sizeof(result), "handler killed by "
			    "signal %d", WTERMSIG(run->wstatus));
		else
			snprintf(result, sizeof(result), "handler asked to "
			    "retry");
		metrics_inline(c->metrics, DRESULT_RETRY, run->ms);
		fallback(c, d, result, r);
	} else {
		snprintf(result, sizeof(result), "exit %d", code);
		last_line(c, line, sizeof(line));
		metrics_inline(c->metrics, DRESULT_FAILED, run->ms);
		answer_failed(c, d, result, line[0] != '\0' ? line : result, 0,
		    r);
	}
}

/* A claimed event: decided, then run or settled at once. */
static void
deliver_claimed(struct inline_ctx *c, struct delivery *d, long long deadline,
    struct response *r)
{
	char *const	*argv;
	char		 why[sizeof(d->order_error) + 64];
	char		 msg[sizeof(why) + 32];
	struct run	 run;

	c->tail_len = 0;
	switch (delivery_decide(c->cfg, &c->q, d, &argv, why, sizeof(why))) {
	case DECIDE_HELD:
		metrics_inline(c->metrics, DRESULT_HELD, -1);
		answer_failed(c, d, why, why, 1, r);
		break;
	case DECIDE_BLOCKED:
		metrics_inline(c->metrics, DRESULT_RETRY, -1);
		snprintf(msg, sizeof(msg), "the applied version of its key "
		    "cannot be read");
		fallback(c, d, msg, r);
		break;
	case DECIDE_STALE:
		metrics_inline(c->metrics, DRESULT_STALE, -1);
		snprintf(msg, sizeof(msg), "Event ignored: %s", why);
		answer_done(c, d, "stale", msg, r);
		break;
	case DECIDE_IGNORED:
		metrics_inline(c->metrics, DRESULT_IGNORED, -1);
		snprintf(msg, sizeof(msg), "Event ignored: no route for %s",
		    d->type);
		answer_done(c, d, why, msg, r);
		break;
	case DECIDE_NOROUTE:
		metrics_inline(c->metrics, DRESULT_FAILED, -1);
		answer_failed(c, d, why, why, 0, r);
		break;
	default:
		if (run_handler(c, d, argv, deadline, &run) == -1) {
			snprintf(msg, sizeof(msg), "handler not started: %s",
			    strerror(errno));
			fallback(c, d, msg, r);
		} else
			conclude(c, d, &run, r);
		break;
	}
	delivery_free(d);
}

/*
 * The sink's deliver(): the event just stored, or a duplicate NSPS
 * sends again, delivered before the answer.  A duplicate already done,
 * or one another process runs, keeps its 200.
 */
void
inline_deliver(void *ctx, const struct event *ev, int duplicate,
    struct response *r)
{
	struct inline_ctx *c = ctx;
	struct delivery	 d;
	char		 id[EVENT_ID_MAX + 1];
	long long	 deadline;

	if (ev->event_id == NULL || ev->event_id_len >= sizeof(id))
		return;
	memcpy(id, ev->event_id, ev->event_id_len);
	id[ev->event_id_len] = '\0';
	deadline = clock_ms(CLOCK_MONOTONIC) + c->cfg->inline_timeout_ms;
	memset(&d, 0, sizeof(d));
	d.fd = d.lock = -1;
	switch (c->q.ops->claim_id(c->q.ctx, id, deadline, &d)) {
	case 1:
		r->duplicate = 0;
		deliver_claimed(c, &d, deadline, r);
		break;
	case 2:
		metrics_inline(c->metrics, DRESULT_BUSY, -1);
		r->duplicate = 0;
		fallback(c, NULL, "its key stayed busy", r);
		break;
	case -1:
		r->duplicate = 0;
		fallback(c, NULL, "the store could not claim it", r);
		break;
	default:
		/* nsps-deliver, or another connector, has it now. */
		if (!duplicate) {
			r->message = "Event accepted for processing; queued: "
			    "another process delivers it";
			r->reason = "inline: another process delivers it";
		}
		break;
	}
}
