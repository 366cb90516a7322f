/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Prometheus metrics of both programs, kept in one small file of
 * counters that every connector process of a pool, every CGI
 * invocation and nsps-deliver map shared:
 *
 *   METRICS_DIR/nsps-metrics.v4   (METRICS_DIR defaults to SPOOL_DIR)
 *
 * The file has a fixed layout (struct metrics_file) behind a magic and
 * version header.  It is created once, by whichever process comes
 * first, under an flock(2) taken at start-up only; after that the
 * event path does nothing but __atomic adds on the mapping: no lock,
 * no system call.  A process that dies or is respawned loses nothing,
 * because the counts live in the file, not in the process.
 *
 * Event types are labels a sender chooses, so they are bounded: a
 * table of METRICS_TYPES_CAP slots, of which a process claims at most
 * METRICS_MAX_TYPES with a compare-and-swap; every other type is
 * counted as "other".  Two processes that meet the same new type at
 * the same moment may claim a slot each; the rendering adds slots of
 * the same name together, so the series stays one.
 *
 * Rendering the exposition reads the mapping and writes a buffer: no
 * I/O, so handle() can answer a scrape.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "extern.h"

#define METRICS_FILE		"nsps-metrics.v4"
#define METRICS_MAGIC		0x4d50534eU	/* "NSPM" */
#define METRICS_VERSION		4

#define SLOT_FREE		0
#define SLOT_CLAIMING		1	/* being named; not counted yet */
#define SLOT_NAMED		2

/* A worker not heard from for this long is down. */
#define WORKER_STALE_MS		(3 * METRICS_PUBLISH_MS)

/* The statuses handle() answers; anything else is "other". */
static const int statuses[] = {
	200, 202, 400, 401, 404, 405, 411, 413, 415, 422, 500, 503
};
#define NSTATUS		(sizeof(statuses) / sizeof(statuses[0]))

/* Request durations, in microseconds: 100 us to 10 s. */
static const unsigned long long req_bounds[] = {
	100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	250000, 500000, 1000000, 2500000, 5000000, 10000000
};
#define NREQ_BUCKETS	(sizeof(req_bounds) / sizeof(req_bounds[0]))

/* Handler run times, in milliseconds: 10 ms to 10 min. */
static const unsigned long long handler_bounds[] = {
	10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	120000, 300000, 600000
};
#define NHANDLER_BUCKETS (sizeof(handler_bounds) / sizeof(handler_bounds[0]))

static const char *const result_names[DRESULT_COUNT] = {
	"done", "retry", "failed", "stale", "ignored", "timeout", "held",
	"busy"
};

/* The states of nsps_queue_events, as QSTATE_* index them. */
static const enum queue_state queue_gauges[] = {
	QSTATE_NEW, QSTATE_CUR, QSTATE_RETRY, QSTATE_FAILED
};
#define NQUEUE		(sizeof(queue_gauges) / sizeof(queue_gauges[0]))

struct metrics_type {
	uint32_t	 state;			/* SLOT_* */
	uint32_t	 len;
	char		 name[METRICS_TYPE_LEN + 1];
	uint64_t	 count;
};

/* The file, as mapped.  Bump METRICS_VERSION and the name to change it. */
struct metrics_file {
	uint32_t	 magic;
	uint32_t	 version;
	uint64_t	 size;
	int64_t		 created_ms;		/* wall clock */
	/* nsps-connector */
	uint64_t	 requests[NSTATUS + 1];	/* last: other */
	uint64_t	 req_bucket[NREQ_BUCKETS + 1];	/* last: +Inf */
	uint64_t	 req_sum_us;
	uint64_t	 store_failures;
	uint64_t	 events_other;
	int64_t		 last_event_ms;
	/* nsps-deliver */
	uint64_t	 deliveries[DRESULT_COUNT];
	uint64_t	 handler_bucket[NHANDLER_BUCKETS + 1];
	uint64_t	 handler_sum_ms;
	int64_t		 worker_seen_ms;	/* 0: stopped */
	int64_t		 queue_ms;		/* when the gauges were set */
	uint64_t	 queue[NQUEUE];
	int64_t		 oldest_ms;		/* -1: nothing pending */
	uint64_t	 blocked_keys;		/* applied unreadable */
	/* the connector with DELIVERY=inline */
	uint64_t	 inline_deliveries[DRESULT_COUNT];
	uint64_t	 inline_bucket[NHANDLER_BUCKETS + 1];
	uint64_t	 inline_sum_ms;
	/* nsps-deliver: the spool's write-ahead log */
	int64_t		 log_ms;		/* when set; 0: no log */
	int64_t		 log_checkpoint_ms;	/* the last good one */
	uint64_t	 log_size;
	uint64_t	 log_pending;
	uint64_t	 log_pending_bytes;
	struct metrics_type types[METRICS_TYPES_CAP];
};

static uint64_t
load64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void
add64(uint64_t *p, uint64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static int
set_error(struct metrics *m, const char *what, int err)
{
	snprintf(m->error, sizeof(m->error), "METRICS_DIR: %s/%s: %s: %s",
	    m->dir, METRICS_FILE, what, strerror(err));
	return -1;
}

/* A new file: sized, then its header, the magic last. */
static int
init_file(struct metrics *m, int fd)
{
	struct metrics_file *f;

	if (ftruncate(fd, (off_t)sizeof(*f)) == -1)
		return set_error(m, "ftruncate", errno);
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED)
		return set_error(m, "mmap", errno);
	f->version = METRICS_VERSION;
	f->size = sizeof(*f);
	f->created_ms = clock_ms(CLOCK_REALTIME);
	f->oldest_ms = -1;
	__atomic_store_n(&f->magic, METRICS_MAGIC, __ATOMIC_RELEASE);
	m->f = f;
	return 0;
}

/*
 * Opens or creates the counters file in dir and maps it.  Mode 0600,
 * or 0660 when dir is group writable (connector and worker in one
 * group).  Returns 0, or -1 with the reason in m->error.
 */
int
metrics_open(struct metrics *m, const char *dir, size_t max_types)
{
	struct stat	 st;
	void		*p;
	mode_t		 mode = 0600;
	int		 dfd, fd, rc = -1;

	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "%s", dir);
	m->max_types = max_types > METRICS_TYPES_CAP ? METRICS_TYPES_CAP :
	    max_types;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(m->error, sizeof(m->error), "METRICS_DIR: %s: %s",
		    dir, strerror(errno));
		return -1;
	}
	if (fstat(dfd, &st) == 0 && (st.st_mode & S_IWGRP))
		mode = 0660;
	fd = openat(dfd, METRICS_FILE, O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	close(dfd);
	if (fd == -1)
		return set_error(m, "open", errno);
	/* Only the first process creates it; the others wait here once. */
	if (flock(fd, LOCK_EX) == -1) {
		set_error(m, "flock", errno);
		goto out;
	}
	if (fstat(fd, &st) == -1) {
		set_error(m, "fstat", errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_error(m, "open", EINVAL);
		goto out;
	}
	if (st.st_size == 0) {
		rc = init_file(m, fd);
		goto out;
	}
	if ((size_t)st.st_size != sizeof(struct metrics_file)) {
		snprintf(m->error, sizeof(m->error), "METRICS_DIR: %s/%s: "
		    "%lld bytes, not %zu: not this version's counters; "
		    "remove it", dir, METRICS_FILE, (long long)st.st_size,
		    sizeof(struct metrics_file));
		goto out;
	}
	p = mmap(NULL, sizeof(*m->f), PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0);
	if (p == MAP_FAILED) {
		set_error(m, "mmap", errno);
		goto out;
	}
	m->f = p;
	if (__atomic_load_n(&m->f->magic, __ATOMIC_ACQUIRE) != METRICS_MAGIC ||
	    m->f->version != METRICS_VERSION) {
		snprintf(m->error, sizeof(m->error), "METRICS_DIR: %s/%s: no "
		    "counters of version %d; remove it", dir, METRICS_FILE,
		    METRICS_VERSION);
		metrics_close(m);
		goto out;
	}
	rc = 0;
out:
	/* The mapping holds the file open: unlock it by hand. */
	(void)flock(fd, LOCK_UN);
	close(fd);
	return rc;
}

void
metrics_close(struct metrics *m)
{
	if (m->f != NULL)
		munmap(m->f, sizeof(*m->f));
	m->f = NULL;
}

/* One answer of the connector: its status and how long it took. */
void
metrics_request(struct metrics *m, int status, long long us)
{
	struct metrics_file *f;
	size_t	 i, b;

	if (m == NULL || (f = m->f) == NULL)
		return;
	for (i = 0; i < NSTATUS && statuses[i] != status; i++)
		continue;
	add64(&f->requests[i], 1);
	if (us < 0)
		us = 0;
	for (b = 0; b < NREQ_BUCKETS && (unsigned long long)us >
	    req_bounds[b]; b++)
		continue;
	add64(&f->req_bucket[b], 1);
	add64(&f->req_sum_us, (uint64_t)us);
}

/*
 * A label value is taken as it is only when it needs no escaping and
 * is of a sane length: printable ASCII but quote and backslash.
 */
static int
type_ok(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > METRICS_TYPE_LEN ||
	    (len == 5 && memcmp(s, "other", 5) == 0))
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

/*
 * The slot counting type: one already named so, else a free one
 * claimed with a compare-and-swap, within the first max_types; NULL
 * when the table is full.  A slot another process is naming right now
 * is passed over, never waited for.
 */
static struct metrics_type *
type_slot(struct metrics *m, const char *type, size_t len)
{
	struct metrics_type *t;
	uint32_t	 s, want;
	size_t		 i;

	for (i = 0; i < m->max_types; i++) {
		t = &m->f->types[i];
		s = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
		if (s == SLOT_FREE) {
			want = SLOT_FREE;
			if (__atomic_compare_exchange_n(&t->state, &want,
			    SLOT_CLAIMING, 0, __ATOMIC_ACQ_REL,
			    __ATOMIC_ACQUIRE)) {
				memcpy(t->name, type, len);
				t->name[len] = '\0';
				t->len = (uint32_t)len;
				__atomic_store_n(&t->state, SLOT_NAMED,
				    __ATOMIC_RELEASE);
				return t;
			}
			s = want;
		}
		if (s == SLOT_NAMED && t->len == len &&
		    memcmp(t->name, type, len) == 0)
			return t;
	}
	return NULL;
}

/* An accepted event (202), counted by its type. */
void
metrics_event(struct metrics *m, const char *type, size_t len)
{
	struct metrics_type *t = NULL;

	if (m == NULL || m->f == NULL)
		return;
	if (type != NULL && type_ok(type, len))
		t = type_slot(m, type, len);
	add64(t != NULL ? &t->count : &m->f->events_other, 1);
	__atomic_store_n(&m->f->last_event_ms, clock_ms(CLOCK_REALTIME),
	    __ATOMIC_RELAXED);
}

/* A valid event that could not be stored (503). */
void
metrics_store_failure(struct metrics *m)
{
	if (m != NULL && m->f != NULL)
		add64(&m->f->store_failures, 1);
}

/* A result and, when a handler ran (ms >= 0), its run time. */
static void
count_delivery(uint64_t *results, uint64_t *bucket, uint64_t *sum,
    enum delivery_result r, long long ms)
{
	size_t	 b;

	add64(&results[r], 1);
	if (ms < 0)
		return;
	for (b = 0; b < NHANDLER_BUCKETS && (unsigned long long)ms >
	    handler_bounds[b]; b++)
		continue;
	add64(&bucket[b], 1);
	add64(sum, (uint64_t)ms);
}

/*
 * One event handled by nsps-deliver: how it ended, and how long its
 * handler ran; ms < 0 when none ran (stale, ignored, no route).
 */
void
metrics_delivery(struct metrics *m, enum delivery_result r, long long ms)
{
	struct metrics_file *f;

	if (m == NULL || (f = m->f) == NULL || r >= DRESULT_COUNT)
		return;
	count_delivery(f->deliveries, f->handler_bucket, &f->handler_sum_ms,
	    r, ms);
}

/* The same for an event the connector delivered inline. */
void
metrics_inline(struct metrics *m, enum delivery_result r, long long ms)
{
	struct metrics_file *f;

	if (m == NULL || (f = m->f) == NULL || r >= DRESULT_COUNT)
		return;
	count_delivery(f->inline_deliveries, f->inline_bucket,
	    &f->inline_sum_ms, r, ms);
}

/* The worker is alive (up) or has stopped. */
void
metrics_worker(struct metrics *m, int up)
{
	if (m != NULL && m->f != NULL)
		__atomic_store_n(&m->f->worker_seen_ms,
		    up ? clock_ms(CLOCK_REALTIME) : 0, __ATOMIC_RELAXED);
}

/* The queue's gauges, from the worker's stats (QSTATE_COUNT entries). */
void
metrics_queue(struct metrics *m, const struct queue_count *c)
{
	struct metrics_file *f;
	long long	 oldest = -1;
	size_t		 i;

	if (m == NULL || (f = m->f) == NULL)
		return;
	for (i = 0; i < NQUEUE; i++)
		__atomic_store_n(&f->queue[i], (uint64_t)c[queue_gauges[i]].count,
		    __ATOMIC_RELAXED);
	/* Pending: not yet delivered, nor given up on. */
	for (i = 0; i < NQUEUE; i++)
		if (queue_gauges[i] != QSTATE_FAILED &&
		    c[queue_gauges[i]].oldest_ms >= 0 && (oldest < 0 ||
		    c[queue_gauges[i]].oldest_ms < oldest))
			oldest = c[queue_gauges[i]].oldest_ms;
	__atomic_store_n(&f->oldest_ms, oldest, __ATOMIC_RELAXED);
	__atomic_store_n(&f->queue_ms, clock_ms(CLOCK_REALTIME),
	    __ATOMIC_RELAXED);
}

/* The spool's log, as the worker's last checkpoint left it. */
void
metrics_log(struct metrics *m, const struct log_stats *ls)
{
	struct metrics_file *f;

	if (m == NULL || (f = m->f) == NULL)
		return;
	__atomic_store_n(&f->log_size, (uint64_t)ls->size, __ATOMIC_RELAXED);
	__atomic_store_n(&f->log_pending, (uint64_t)ls->pending,
	    __ATOMIC_RELAXED);
	__atomic_store_n(&f->log_pending_bytes, (uint64_t)ls->pending_bytes,
	    __ATOMIC_RELAXED);
	__atomic_store_n(&f->log_checkpoint_ms, ls->checkpoint_ms,
	    __ATOMIC_RELAXED);
	__atomic_store_n(&f->log_ms, clock_ms(CLOCK_REALTIME),
	    __ATOMIC_RELAXED);
}

/* How many keys wait for their applied version to be repaired. */
void
metrics_blocked(struct metrics *m, size_t n)
{
	if (m != NULL && m->f != NULL)
		__atomic_store_n(&m->f->blocked_keys, (uint64_t)n,
		    __ATOMIC_RELAXED);
}

/* Which delivery_result an attempt's end is counted as. */
enum delivery_result
metrics_result(enum outcome how, int timed_out)
{
	if (timed_out)
		return DRESULT_TIMEOUT;
	if (how == OUTCOME_DONE)
		return DRESULT_DONE;
	if (how == OUTCOME_RETRY)
		return DRESULT_RETRY;
	return DRESULT_FAILED;
}

/* The exposition, version 0.0.4. */

static int
family(struct buf *b, const char *name, const char *type, const char *help)
{
	int	 rc = 0;

	rc |= buf_adds(b, "# HELP ");
	rc |= buf_adds(b, name);
	rc |= buf_addc(b, ' ');
	rc |= buf_adds(b, help);
	rc |= buf_adds(b, "\n# TYPE ");
	rc |= buf_adds(b, name);
	rc |= buf_addc(b, ' ');
	rc |= buf_adds(b, type);
	rc |= buf_addc(b, '\n');
	return rc;
}

/* name{label="value"} v, or name v when label is NULL. */
static int
sample(struct buf *b, const char *name, const char *label,
    const char *value, unsigned long long v)
{
	int	 rc = 0;

	rc |= buf_adds(b, name);
	if (label != NULL) {
		rc |= buf_addc(b, '{');
		rc |= buf_adds(b, label);
		rc |= buf_adds(b, "=\"");
		rc |= buf_adds(b, value);
		rc |= buf_adds(b, "\"}");
	}
	rc |= buf_addc(b, ' ');
	rc |= buf_addu(b, v);
	rc |= buf_addc(b, '\n');
	return rc;
}

/* A value in seconds from an integer count of 1/scale seconds. */
static int
seconds(struct buf *b, const char *name, unsigned long long v,
    unsigned long long scale)
{
	char	 tmp[64];

	snprintf(tmp, sizeof(tmp), " %llu.%0*llu\n", v / scale,
	    scale == 1000 ? 3 : 6, v % scale);
	if (buf_adds(b, name) == -1)
		return -1;
	return buf_adds(b, tmp);
}

/* A histogram from per-bucket counts (not cumulative) and a sum. */
static int
histogram(struct buf *b, const char *name, const char *help,
    const unsigned long long *bounds, size_t n, const uint64_t *bucket,
    uint64_t sum, unsigned long long scale)
{
	char		 line[128], le[32];
	unsigned long long total = 0;
	size_t		 i;
	int		 rc;

	rc = family(b, name, "histogram", help);
	for (i = 0; i <= n; i++) {
		total += load64(&bucket[i]);
		if (i == n)
			snprintf(le, sizeof(le), "+Inf");
		else
			snprintf(le, sizeof(le), "%g",
			    (double)bounds[i] / (double)scale);
		snprintf(line, sizeof(line), "%s_bucket{le=\"%s\"} %llu\n",
		    name, le, total);
		rc |= buf_adds(b, line);
	}
	snprintf(line, sizeof(line), "%s_sum", name);
	rc |= seconds(b, line, sum, scale);
	snprintf(line, sizeof(line), "%s_count", name);
	rc |= sample(b, line, NULL, NULL, total);
	return rc;
}

static int
render_connector(struct buf *b, const struct metrics_file *f)
{
	char		 code[16];
	size_t		 i;
	int		 rc;

	rc = family(b, "nsps_requests_total", "counter",
	    "Answers of the connector, by HTTP status.");
	for (i = 0; i <= NSTATUS; i++) {
		if (i < NSTATUS)
			snprintf(code, sizeof(code), "%d", statuses[i]);
		else
			snprintf(code, sizeof(code), "other");
		rc |= sample(b, "nsps_requests_total", "status", code,
		    load64(&f->requests[i]));
	}
	rc |= histogram(b, "nsps_request_duration_seconds",
	    "Time from a request's start to its answer written.", req_bounds,
	    NREQ_BUCKETS, f->req_bucket, load64(&f->req_sum_us), 1000000);
	rc |= family(b, "nsps_store_failures_total", "counter",
	    "Valid events the spool could not store (answered 503).");
	rc |= sample(b, "nsps_store_failures_total", NULL, NULL,
	    load64(&f->store_failures));
	return rc;
}

/*
 * nsps_events_total: the named slots, each name once (two processes
 * may have claimed a slot each for it), then "other".  A name that is
 * not valid as written (a damaged file) is counted as "other" too.
 */
static int
render_events(struct buf *b, const struct metrics_file *f)
{
	const struct metrics_type *t, *u;
	unsigned long long n, other = load64(&f->events_other);
	size_t		 i, j, len;
	int		 rc, seen;

	rc = family(b, "nsps_events_total", "counter",
	    "Accepted events (202), by event type; types past "
	    "METRICS_MAX_TYPES are \"other\".");
	for (i = 0; i < METRICS_TYPES_CAP; i++) {
		t = &f->types[i];
		if (__atomic_load_n(&t->state, __ATOMIC_ACQUIRE) != SLOT_NAMED)
			continue;
		len = t->len;
		if (len > METRICS_TYPE_LEN || t->name[len] != '\0' ||
		    !type_ok(t->name, len)) {
			other += load64(&t->count);
			continue;
		}
		for (seen = 0, j = 0; j < i && !seen; j++) {
			u = &f->types[j];
			seen = __atomic_load_n(&u->state, __ATOMIC_ACQUIRE) ==
			    SLOT_NAMED && u->len == len &&
			    memcmp(u->name, t->name, len) == 0;
		}
		if (seen)
			continue;
		for (n = 0, j = i; j < METRICS_TYPES_CAP; j++) {
			u = &f->types[j];
			if (__atomic_load_n(&u->state, __ATOMIC_ACQUIRE) ==
			    SLOT_NAMED && u->len == len &&
			    memcmp(u->name, t->name, len) == 0)
				n += load64(&u->count);
		}
		rc |= sample(b, "nsps_events_total", "event_type", t->name, n);
	}
	rc |= sample(b, "nsps_events_total", "event_type", "other", other);
	return rc;
}

/* The spool's log (SPOOL_WAL), as nsps-deliver last saw it. */
static int
render_log(struct buf *b, const struct metrics_file *f, long long now)
{
	long long	 set, last;
	int		 rc;

	set = __atomic_load_n(&f->log_ms, __ATOMIC_RELAXED);
	last = __atomic_load_n(&f->log_checkpoint_ms, __ATOMIC_RELAXED);
	rc = family(b, "nsps_wal_size_bytes", "gauge",
	    "Bytes of the spool's write-ahead log, all segments; 0 without "
	    "one.");
	rc |= sample(b, "nsps_wal_size_bytes", NULL, NULL,
	    set > 0 ? load64(&f->log_size) : 0);
	rc |= family(b, "nsps_wal_pending_records", "gauge",
	    "Records of the write-ahead log not yet covered by a checkpoint.");
	rc |= sample(b, "nsps_wal_pending_records", NULL, NULL,
	    set > 0 ? load64(&f->log_pending) : 0);
	rc |= family(b, "nsps_wal_pending_bytes", "gauge",
	    "Bytes of those records: what recovery would read.");
	rc |= sample(b, "nsps_wal_pending_bytes", NULL, NULL,
	    set > 0 ? load64(&f->log_pending_bytes) : 0);
	rc |= family(b, "nsps_wal_checkpoint_age_seconds", "gauge",
	    "Time since nsps-deliver's last good checkpoint of the log; 0 "
	    "without a log.");
	rc |= seconds(b, "nsps_wal_checkpoint_age_seconds",
	    set > 0 && now > last ? (unsigned long long)(now - last) : 0,
	    1000);
	return rc;
}

static int
render_deliver(struct buf *b, const struct metrics_file *f, long long now)
{
	char		 label[64];
	long long	 seen, oldest;
	size_t		 i;
	int		 rc;

	rc = family(b, "nsps_deliveries_total", "counter",
	    "Events handled by nsps-deliver, by how each attempt ended "
	    "(stale, ignored and held ran no handler; held: ORDER could "
	    "not place it, see failed/).");
	for (i = 0; i < DRESULT_COUNT; i++)
		rc |= sample(b, "nsps_deliveries_total", "result",
		    result_names[i], load64(&f->deliveries[i]));
	/* The connector's inline deliveries: the same family, mode set. */
	for (i = 0; i < DRESULT_COUNT; i++) {
		snprintf(label, sizeof(label), "%s\",mode=\"inline",
		    result_names[i]);
		rc |= sample(b, "nsps_deliveries_total", "result", label,
		    load64(&f->inline_deliveries[i]));
	}
	rc |= histogram(b, "nsps_handler_duration_seconds",
	    "How long each handler attempt of nsps-deliver ran.",
	    handler_bounds, NHANDLER_BUCKETS, f->handler_bucket,
	    load64(&f->handler_sum_ms), 1000);
	rc |= histogram(b, "nsps_inline_handler_duration_seconds",
	    "How long each handler the connector ran inline took.",
	    handler_bounds, NHANDLER_BUCKETS, f->inline_bucket,
	    load64(&f->inline_sum_ms), 1000);
	rc |= family(b, "nsps_queue_events", "gauge",
	    "Events in the spool by state, as nsps-deliver last counted them.");
	for (i = 0; i < NQUEUE; i++)
		rc |= sample(b, "nsps_queue_events", "state",
		    queue_state_names[queue_gauges[i]], load64(&f->queue[i]));
	oldest = __atomic_load_n(&f->oldest_ms, __ATOMIC_RELAXED);
	rc |= family(b, "nsps_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest event not yet delivered (new, cur, retry); "
	    "0 when there is none.");
	rc |= seconds(b, "nsps_queue_oldest_age_seconds",
	    oldest >= 0 && now > oldest ? (unsigned long long)(now - oldest) :
	    0, 1000);
	rc |= family(b, "nsps_order_blocked_keys", "gauge",
	    "ORDER keys whose applied version cannot be read: their events "
	    "wait until it is repaired (nsps-deliver --stats names them).");
	rc |= sample(b, "nsps_order_blocked_keys", NULL, NULL,
	    load64(&f->blocked_keys));
	rc |= render_log(b, f, now);
	seen = __atomic_load_n(&f->worker_seen_ms, __ATOMIC_RELAXED);
	rc |= family(b, "nsps_worker_up", "gauge",
	    "1 while nsps-deliver runs and was heard from lately.");
	rc |= sample(b, "nsps_worker_up", NULL, NULL,
	    seen > 0 && now - seen < WORKER_STALE_MS);
	return rc;
}

/* Appends the whole exposition of m's counters to b; -1: out of memory. */
int
metrics_render(const struct metrics *m, struct buf *b)
{
	const struct metrics_file *f = m->f;
	long long	 now = clock_ms(CLOCK_REALTIME), last;
	char		 line[256];
	int		 rc = 0;

	rc |= family(b, "nsps_build_info", "gauge",
	    "Versions of the connector that answered and of its libraries.");
	snprintf(line, sizeof(line), "nsps_build_info{version=\"%s\","
	    "json_c=\"%s\",layout=\"%d\"} 1\n", PACKAGE_VERSION,
	    json_c_version(), METRICS_VERSION);
	rc |= buf_adds(b, line);
	rc |= family(b, "process_start_time_seconds", "gauge",
	    "When these counters started: the creation of the shared "
	    "counters file, seconds since the epoch.");
	rc |= seconds(b, "process_start_time_seconds",
	    (unsigned long long)f->created_ms, 1000);
	rc |= render_connector(b, f);
	rc |= render_events(b, f);
	last = __atomic_load_n(&f->last_event_ms, __ATOMIC_RELAXED);
	rc |= family(b, "nsps_last_event_timestamp_seconds", "gauge",
	    "When the last event was accepted, seconds since the epoch; "
	    "0 when none was.");
	rc |= seconds(b, "nsps_last_event_timestamp_seconds",
	    (unsigned long long)(last > 0 ? last : 0), 1000);
	rc |= render_deliver(b, f, now);
	return rc != 0 ? -1 : 0;
}
