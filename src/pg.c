/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The store on PostgreSQL, through libpq: the connector's sink (one
 * INSERT ... ON CONFLICT DO NOTHING per event) and nsps-deliver's queue
 * (claims as leases taken with SKIP LOCKED, one running event per key
 * across every worker by a unique index, LISTEN/NOTIFY wake-ups).
 *
 * Every statement waits at most DB_TIMEOUT for its answer, whatever
 * the network does: past that the connection is dropped and opened
 * again for the next one.  The URL's password never reaches a log.
 *
 * libpq is called through the table libpq_load.c fills (libpq_load.h):
 * the store's load(), pg_load(), loads it only once DATABASE_URL chose
 * this store.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json.h>
#include <libpq-fe.h>

#include "extern.h"
#include "libpq_load.h"

#define SCHEMA_VERSION	1
#define MIGRATE_LOCK	"7283512"	/* pg_advisory_xact_lock's key */
#define POLL_MS		5000		/* backstop for lost NOTIFYs */
#define NOTIFY_MS	100		/* a connector's NOTIFYs, at most */
#define CHANNEL		"nsps_event"

/* The schema, as contrib/nsps-pg-schema.sql has it. */
static const char schema_v1[] =
"CREATE TABLE nsps_event (\n"
"	event_id	text PRIMARY KEY,\n"
"	body		bytea NOT NULL,\n"
"	received	timestamptz NOT NULL DEFAULT now(),\n"
"	event_type	text,\n"
"	bill_status	text,\n"
"	trace_id	text,\n"
"	request_id	text,\n"
"	okey		text,\n"
"	version_ns	bigint,\n"
"	created_ns	bigint,\n"
"	state		text NOT NULL DEFAULT 'new' CHECK (state IN\n"
"			    ('new', 'cur', 'retry', 'done', 'failed')),\n"
"	attempts	integer NOT NULL DEFAULT 0,\n"
"	first_at	timestamptz,\n"
"	due_at		timestamptz,\n"
"	done_at		timestamptz,\n"
"	lock_key	text,\n"
"	owner		text,\n"
"	lease_until	timestamptz,\n"
"	result		text,\n"
"	newer		text,\n"
"	stderr		bytea\n"
");\n"
"CREATE INDEX nsps_event_waiting ON nsps_event (received, event_id)\n"
"    WHERE state IN ('new', 'retry');\n"
"CREATE INDEX nsps_event_key ON nsps_event (okey)\n"
"    WHERE state IN ('new', 'retry');\n"
"CREATE INDEX nsps_event_leased ON nsps_event (owner)\n"
"    WHERE state = 'cur';\n"
"CREATE INDEX nsps_event_done ON nsps_event (done_at)\n"
"    WHERE state = 'done';\n"
"-- One running event per key, whichever worker runs it.\n"
"CREATE UNIQUE INDEX nsps_event_running_key ON nsps_event (lock_key)\n"
"    WHERE state = 'cur';\n"
"CREATE TABLE nsps_applied (\n"
"	okey		text PRIMARY KEY,\n"
"	version_ns	bigint NOT NULL,\n"
"	created_ns	bigint NOT NULL,\n"
"	event_id	text NOT NULL,\n"
"	at		timestamptz NOT NULL DEFAULT now()\n"
");\n";

static const char insert_sql[] =
    "INSERT INTO nsps_event (event_id, body, event_type, bill_status, "
    "trace_id, request_id, okey, version_ns, created_ns) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (event_id) DO NOTHING";

/*
 * The oldest waiting event whose key runs nowhere, then the newest
 * version of its key, claimed as a lease in one statement.  A race
 * for the same key ends in the unique index, and the claim is tried
 * again.
 */
static const char claim_sql[] =
    "WITH c AS (SELECT event_id, okey FROM nsps_event e "
    " WHERE state IN ('new', 'retry') AND "
    "  (state = 'new' OR due_at <= now()) AND "
    "  (NOT $1 OR okey IS NULL OR NOT EXISTS (SELECT 1 FROM nsps_event r "
    "   WHERE r.state = 'cur' AND r.lock_key = e.okey) AND "
    /* A retry whose applied version is not recorded holds its key. */
    "   NOT EXISTS (SELECT 1 FROM nsps_event h WHERE h.okey = e.okey AND "
    "   h.state = 'retry' AND h.lock_key IS NOT NULL AND "
    "   h.event_id <> e.event_id)) "
    " ORDER BY received, event_id LIMIT 1 FOR UPDATE SKIP LOCKED), "
    "n AS (SELECT coalesce((SELECT k.event_id FROM nsps_event k, c "
    "  WHERE $1 AND k.okey = c.okey AND k.state IN ('new', 'retry') AND "
    "  (k.state = 'new' OR k.due_at <= now()) "
    "  ORDER BY k.version_ns DESC NULLS LAST, k.created_ns DESC LIMIT 1 "
    "  FOR UPDATE OF k SKIP LOCKED), (SELECT event_id FROM c)) AS id) "
    "UPDATE nsps_event u SET state = 'cur', "
    " lock_key = CASE WHEN $1 THEN u.okey END, owner = $2, "
    " lease_until = now() + $3 * interval '1 ms', "
    " attempts = u.attempts + 1, first_at = coalesce(u.first_at, now()), "
    " due_at = NULL FROM n WHERE u.event_id = n.id "
    "RETURNING u.event_id, u.body, u.event_type, u.bill_status, "
    " u.trace_id, u.request_id, u.okey, u.version_ns, u.created_ns, "
    " u.attempts, (extract(epoch FROM u.first_at) * 1000)::bigint, "
    /* The statement's snapshot: the row as it was before. */
    " (SELECT o.state = 'retry' AND o.lock_key IS NOT NULL "
    "  FROM nsps_event o WHERE o.event_id = u.event_id)";

/*
 * The connector's inline claim of one event by id, waiting or failed
 * (NSPS sends a failed event again to have it tried again).  Setting
 * lock_key reserves the key: while another event of it runs, or a
 * retry holds it, the unique index refuses the update (23505).
 */
static const char claim_id_sql[] =
    "UPDATE nsps_event u SET state = 'cur', "
    " lock_key = CASE WHEN $1 THEN u.okey END, owner = $2, "
    " lease_until = now() + $3 * interval '1 ms', "
    " attempts = u.attempts + 1, first_at = coalesce(u.first_at, now()), "
    " due_at = NULL WHERE u.event_id = $4 AND "
    " u.state IN ('new', 'retry', 'failed') "
    "RETURNING u.event_id, u.body, u.event_type, u.bill_status, "
    " u.trace_id, u.request_id, u.okey, u.version_ns, u.created_ns, "
    " u.attempts, (extract(epoch FROM u.first_at) * 1000)::bigint, "
    " false";

/* Leases run out: their events are due again, attempts kept. */
static const char expire_sql[] =
    "UPDATE nsps_event SET state = 'retry', due_at = now(), "
    "lock_key = NULL, owner = NULL, lease_until = NULL "
    "WHERE state = 'cur' AND lease_until < now()";

struct held {
	char		 id[EVENT_ID_MAX + 1];
	int		 lost;
};

struct pg {
	PGconn		*conn;
	const struct config *cfg;
	void		(*log)(const char *, ...)
			    __attribute__((__format__(__printf__, 1, 2)));
	char		*password;	/* scrubbed from messages */
	int		 worker;	/* nsps-deliver: nothing to prepare */
	int		 listen;	/* LISTENs for new events */
	int		 prepared;
	int		 notifying;	/* a NOTIFY's answer is due */
	long long	 notified_ms;	/* monotonic, the last NOTIFY sent */
	int		 auth_failed;
	char		 error[512];
	/* nsps-deliver */
	char		 owner[128];
	char		 tmpdir[MAX_PATH_LEN];
	int		 notified;
	long long	 followup;	/* wall ms: look again, see pg_wake() */
	long long	 renewed;	/* monotonic ms of the last renewal */
	long long	 expired;	/* and of the last expiry sweep */
	struct held	 held[MAX_JOBS];
	size_t		 nheld;
};

static void
nolog(const char *fmt, ...)
{
	(void)fmt;
}

/* Replaces every copy of the password in s with ***. */
static void
scrub(const struct pg *pg, char *s)
{
	size_t	 pl;
	char	*p;

	if (pg->password == NULL || (pl = strlen(pg->password)) == 0)
		return;
	for (p = s; (p = strstr(p, pg->password)) != NULL; p += pl)
		memset(p, '*', pl);
}

/* error = what, then libpq's message on one line, password scrubbed. */
static void
pg_fail(struct pg *pg, const char *what, const char *msg)
{
	char	*p;

	snprintf(pg->error, sizeof(pg->error), "database: %s%s%s", what,
	    msg != NULL && *msg != '\0' ? ": " : "", msg != NULL ? msg : "");
	for (p = pg->error; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	while (p > pg->error && p[-1] == ' ')
		*--p = '\0';
	scrub(pg, pg->error);
}

static void
pg_drop(struct pg *pg)
{
	if (pg->conn != NULL)
		pq.finish(pg->conn);
	pg->conn = NULL;
	pg->prepared = 0;
}

/*
 * NOTIFYs libpq read with an answer: the socket will not say so again.
 * Each means claim now, and look again a little later.
 */
static void
drain(struct pg *pg)
{
	PGnotify	*n;

	while ((n = pq.notifies(pg->conn)) != NULL) {
		pq.freemem(n);
		pg->notified = 1;
		pg->followup = clock_ms(CLOCK_REALTIME) + 2 * NOTIFY_MS;
	}
}

/*
 * The last result of what was sent, waited for at most DB_TIMEOUT;
 * NULL, with the connection dropped, when it does not come.
 */
static PGresult *
pg_wait(struct pg *pg, const char *what)
{
	struct pollfd	 pfd;
	PGresult	*res, *last = NULL;
	long long	 end, left;

	end = clock_ms(CLOCK_MONOTONIC) + pg->cfg->db_timeout_ms;
	pfd.fd = pq.socket(pg->conn);
	pfd.events = POLLIN;
	while (pq.isBusy(pg->conn)) {
		if ((left = end - clock_ms(CLOCK_MONOTONIC)) <= 0) {
			pg_fail(pg, what, "no answer within DB_TIMEOUT");
			goto bad;
		}
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			pg_fail(pg, what, strerror(errno));
			goto bad;
		}
		if (!pq.consumeInput(pg->conn)) {
			pg_fail(pg, what, pq.errorMessage(pg->conn));
			goto bad;
		}
	}
	while ((res = pq.getResult(pg->conn)) != NULL) {
		pq.clear(last);
		last = res;
		if (pq.isBusy(pg->conn) && !pq.consumeInput(pg->conn))
			break;
	}
	if (last == NULL)
		pg_fail(pg, what, pq.errorMessage(pg->conn));
	else if (pq.resultStatus(last) != PGRES_COMMAND_OK &&
	    pq.resultStatus(last) != PGRES_TUPLES_OK)
		pg_fail(pg, what, pq.resultErrorMessage(last));
	if (pq.status(pg->conn) == CONNECTION_BAD)
		pg_drop(pg);
	else if (pg->listen)
		drain(pg);
	return last;
bad:
	pq.clear(last);
	pg_drop(pg);
	return NULL;
}

static int
ok(const PGresult *res)
{
	return res != NULL && (pq.resultStatus(res) == PGRES_COMMAND_OK ||
	    pq.resultStatus(res) == PGRES_TUPLES_OK);
}

/* A statement without parameters; 0 or -1. */
static int
pg_run(struct pg *pg, const char *what, const char *sql)
{
	PGresult	*res;
	int		 rc;

	if (pg->conn == NULL || !pq.sendQuery(pg->conn, sql)) {
		if (pg->conn != NULL)
			pg_fail(pg, what, pq.errorMessage(pg->conn));
		pg_drop(pg);
		return -1;
	}
	res = pg_wait(pg, what);
	rc = ok(res) ? 0 : -1;
	pq.clear(res);
	return rc;
}

static PGresult *
pg_params(struct pg *pg, const char *what, const char *sql, int n,
    const char *const *v, const int *len, const int *fmt)
{
	if (pg->conn == NULL) {
		pg_fail(pg, what, "not connected");
		return NULL;
	}
	if (!pq.sendQueryParams(pg->conn, sql, n, NULL, v, len, fmt, 0)) {
		pg_fail(pg, what, pq.errorMessage(pg->conn));
		pg_drop(pg);
		return NULL;
	}
	return pg_wait(pg, what);
}

/* Opens the connection, and sets what every session needs. */
static int
pg_connect(struct pg *pg)
{
	const char *const keys[] = { "dbname", "connect_timeout",
	    "fallback_application_name", "keepalives", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", NULL };
	const char	*vals[8];
	char		 ct[24], set[96];
	PGresult	*res;
	long long	 st;

	if (pg->conn != NULL)
		return 0;
	/* libpq waits at least 2 s for a connection. */
	snprintf(ct, sizeof(ct), "%lld", pg->cfg->db_timeout_ms < 2000 ? 2 :
	    (pg->cfg->db_timeout_ms + 999) / 1000);
	vals[0] = pg->cfg->database_url;
	vals[1] = ct;
	vals[2] = pg->worker ? DPROG : PROG;
	vals[3] = "1";
	vals[4] = "10";
	vals[5] = "5";
	vals[6] = "3";
	vals[7] = NULL;
	pg->conn = pq.connectdbParams(keys, vals, 1);
	if (pg->conn == NULL || pq.status(pg->conn) != CONNECTION_OK) {
		pg->auth_failed = pg->conn != NULL &&
		    (pq.connectionNeedsPassword(pg->conn) ||
		    strstr(pq.errorMessage(pg->conn), "authentication") !=
		    NULL);
		pg_fail(pg, "connect", pg->conn != NULL ?
		    pq.errorMessage(pg->conn) : "out of memory");
		pg_drop(pg);
		return -1;
	}
	/* The server gives up first, and the connection stays usable. */
	st = pg->cfg->db_timeout_ms - (pg->cfg->db_timeout_ms / 4 < 250 ?
	    pg->cfg->db_timeout_ms / 4 : 250);
	snprintf(set, sizeof(set), "SET statement_timeout = %lld", st);
	if (pg_run(pg, "set", set) == -1)
		return -1;
	if (pg->listen)
		return pg_run(pg, "listen", "LISTEN " CHANNEL);
	if (pg->worker)
		return 0;
	if (!pq.sendPrepare(pg->conn, "ins", insert_sql, 9, NULL)) {
		pg_fail(pg, "prepare", pq.errorMessage(pg->conn));
		pg_drop(pg);
		return -1;
	}
	res = pg_wait(pg, "prepare");
	pg->prepared = ok(res);
	pq.clear(res);
	if (!pg->prepared)
		pg_drop(pg);
	return pg->prepared ? 0 : -1;
}

/* The URL's password, kept only to scrub messages. */
static void
pg_init(struct pg *pg, const struct config *cfg, int worker)
{
	PQconninfoOption *opts, *o;

	memset(pg, 0, sizeof(*pg));
	pg->cfg = cfg;
	pg->worker = worker;
	pg->log = nolog;
	if ((opts = pq.conninfoParse(cfg->database_url, NULL)) == NULL)
		return;
	for (o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
			pg->password = strdup(o->val);
	pq.conninfoFree(opts);
}

static void
pg_fini(struct pg *pg)
{
	pg_drop(pg);
	if (pg->password != NULL) {
		explicit_bzero(pg->password, strlen(pg->password));
		free(pg->password);
	}
	pg->password = NULL;
}

/*
 * The connector's side.
 */
static void notify_done(struct pg *);

static void
pg_sink_close(void *ctx)
{
	struct pg	*pg = ctx;

	if (pg == NULL)
		return;
	notify_done(pg);
	pg_fini(pg);
	free(pg);
}

/*
 * Wakes the workers after an insert, in a transaction of its own that
 * does not wait for the disk: a NOTIFY in the insert's would hold a
 * lock over its commit that makes every connector's commits queue.
 * Even so a NOTIFY costs a commit, so each connector sends at most one
 * every NOTIFY_MS; a worker looks again 2 * NOTIFY_MS after each one
 * it gets, which finds the events the connector kept quiet about.
 * Its answer is read before the next statement, not before the 202.
 */
static void
notify(struct pg *pg)
{
	long long	 now = clock_ms(CLOCK_MONOTONIC);

	if (pg->notified_ms != 0 && now - pg->notified_ms < NOTIFY_MS)
		return;
	if (pq.sendQuery(pg->conn, "BEGIN; SET LOCAL synchronous_commit = off; "
	    "NOTIFY " CHANNEL "; COMMIT")) {
		pg->notifying = 1;
		pg->notified_ms = now;
	}
}

static void
notify_done(struct pg *pg)
{
	if (!pg->notifying || pg->conn == NULL)
		return;
	pg->notifying = 0;
	pq.clear(pg_wait(pg, "notify"));
}

static int
insert(struct pg *pg, const char *const *v, const int *len, const int *fmt,
    PGresult **res)
{
	notify_done(pg);
	if (pg_connect(pg) == -1)
		return -1;
	if (!pq.sendQueryPrepared(pg->conn, "ins", 9, v, len, fmt, 0)) {
		pg_fail(pg, "insert", pq.errorMessage(pg->conn));
		pg_drop(pg);
		return -1;
	}
	*res = pg_wait(pg, "insert");
	return 0;
}

/*
 * The sink's store(): committed, 202; already there, 200; anything
 * else 503.  A connection found broken is opened again and the insert
 * tried once more: it is idempotent.
 */
static enum store_result
pg_store(void *ctx, const struct event *ev, const struct request *req,
    const char *body, size_t blen, char *why, size_t whylen)
{
	struct pg	*pg = ctx;
	struct version	 ver = { 0, 0 };
	PGresult	*res = NULL;
	const char	*v[9];
	char		 key[ORDER_KEY_MAX + 1], vns[24], cns[24], bad[256];
	char		*id = NULL, *type = NULL, *bill = NULL;
	int		 len[9] = { 0 }, fmt[9] = { 0 }, keyed = 0, tries, had;
	enum order_result or = ORDER_NONE;
	enum store_result sr = STORE_FAILED;

	if (ev->event_id == NULL) {
		snprintf(why, whylen, "database: no event_id");
		return STORE_FAILED;
	}
	id = strndup(ev->event_id, ev->event_id_len);
	type = ev->event_type ? strndup(ev->event_type, ev->event_type_len) :
	    NULL;
	bill = ev->bill_status ? strndup(ev->bill_status,
	    ev->bill_status_len) : NULL;
	if (id == NULL || (ev->event_type && type == NULL) ||
	    (ev->bill_status && bill == NULL)) {
		snprintf(why, whylen, "database: out of memory");
		goto out;
	}
	/*
	 * An unreadable version keeps its key, without a version: the
	 * worker holds the event in failed/, and the key stays its own.
	 */
	if (ev->root != NULL && pg->cfg->norder_key > 0)
		or = event_order(pg->cfg, ev->root, key, sizeof(key), &ver,
		    bad, sizeof(bad));
	keyed = or == ORDER_KEYED || or == ORDER_BAD_VERSION;
	snprintf(vns, sizeof(vns), "%lld", ver.ns);
	snprintf(cns, sizeof(cns), "%lld", ver.created_ns);
	v[0] = id;
	v[1] = body;
	len[1] = (int)blen;
	fmt[1] = 1;
	v[2] = type;
	v[3] = bill;
	v[4] = req->trace_id;
	v[5] = req->unique_id;
	v[6] = keyed ? key : NULL;
	v[7] = or == ORDER_KEYED ? vns : NULL;
	v[8] = or == ORDER_KEYED ? cns : NULL;
	for (tries = 0; tries < 2; tries++) {
		pq.clear(res);
		res = NULL;
		had = pg->conn != NULL;
		if (insert(pg, v, len, fmt, &res) == 0 && ok(res))
			break;
		/*
		 * Only a connection that broke under the insert is worth
		 * a second one: a server error would repeat, and a
		 * connection that could not be made would double the wait.
		 */
		if (pg->conn != NULL || !had)
			break;
	}
	if (ok(res)) {
		sr = strcmp(pq.cmdTuples(res), "1") == 0 ? STORE_OK :
		    STORE_DUPLICATE;
		if (sr == STORE_OK)
			notify(pg);
	} else
		snprintf(why, whylen, "%s", pg->error);
out:
	pq.clear(res);
	free(id);
	free(type);
	free(bill);
	return sr;
}

/* The sink's backlog(): waiting events; -2 when unreachable. */
static long
pg_backlog(void *ctx)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	long		 n = -2;

	notify_done(pg);
	if (pg_connect(pg) == -1)
		return -2;
	res = pg_params(pg, "backlog", "SELECT count(*) FROM nsps_event "
	    "WHERE state IN ('new', 'retry')", 0, NULL, NULL, NULL);
	if (ok(res) && pq.ntuples(res) == 1)
		n = strtol(pq.getvalue(res, 0, 0), NULL, 10);
	pq.clear(res);
	return n;
}

/*
 * nsps-deliver's side: struct queue_ops.
 */
static long long
val_ll(const PGresult *res, int row, int col)
{
	if (pq.getisnull(res, row, col))
		return 0;
	return strtoll(pq.getvalue(res, row, col), NULL, 10);
}

static char *
val_dup(const PGresult *res, int row, int col)
{
	return strdup(pq.getisnull(res, row, col) ? "" :
	    pq.getvalue(res, row, col));
}

/* The body goes to a private file: handlers read stdin or the path. */
static int
body_file(struct pg *pg, struct delivery *d, const char *body, size_t len)
{
	int	 fd;

	snprintf(d->path, sizeof(d->path), "%s/%s", pg->tmpdir, d->id);
	unlink(d->path);
	if ((fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return -1;
	if (write_all(fd, body, len) == -1 || lseek(fd, 0, SEEK_SET) == -1) {
		close(fd);
		unlink(d->path);
		return -1;
	}
	d->fd = fd;
	return 0;
}

static void
held_add(struct pg *pg, const char *id)
{
	if (pg->nheld == MAX_JOBS)
		return;
	snprintf(pg->held[pg->nheld].id, sizeof(pg->held[0].id), "%s", id);
	pg->held[pg->nheld++].lost = 0;
}

static void
held_del(struct pg *pg, const char *id)
{
	size_t	 i;

	for (i = 0; i < pg->nheld; i++)
		if (strcmp(pg->held[i].id, id) == 0) {
			pg->held[i] = pg->held[--pg->nheld];
			return;
		}
}

/* Leases run out: taken over, at most every second. */
static void
expire(struct pg *pg)
{
	long long	 now = clock_ms(CLOCK_MONOTONIC);

	if (now - pg->expired < 1000)
		return;
	pg->expired = now;
	if (pg_run(pg, "expire", expire_sql) == -1)
		pg->log("%s", pg->error);
}

/*
 * The claimed event's place in its key's order, read from its body as
 * the spool's worker reads it: a row stored by an older connector, or
 * under another ORDER_KEY, is put right (its key then taken as the
 * running one, which fails while another event of the key runs).
 */
static int
claim_order(struct pg *pg, const PGresult *res, struct delivery *d,
    const char *body, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*root = NULL;
	const char		*db = pq.getisnull(res, 0, 6) ? "" :
				    pq.getvalue(res, 0, 6);
	const char		*v[3];
	PGresult		*fix;
	int			 rc = 0;

	if ((tok = json_tokener_new()) != NULL) {
		root = json_tokener_parse_ex(tok, body, (int)len);
		json_tokener_free(tok);
	}
	if (root == NULL)
		snprintf(d->order_error, sizeof(d->order_error),
		    "body unreadable: not a JSON object");
	else if (event_order(pg->cfg, root, d->key, sizeof(d->key),
	    &d->version, d->order_error, sizeof(d->order_error)) ==
	    ORDER_BAD_KEY)
		d->key[0] = '\0';
	json_object_put(root);
	if (d->key[0] == '\0') {
		/* Whatever else is wrong, it keeps the key it runs under. */
		snprintf(d->key, sizeof(d->key), "%s", db);
		return 0;
	}
	if (strcmp(d->key, db) == 0)
		return 0;
	v[0] = d->id;
	v[1] = d->key;
	v[2] = pg->owner;
	fix = pg_params(pg, "claim", "UPDATE nsps_event SET okey = $2, "
	    "lock_key = $2 WHERE event_id = $1 AND owner = $3 AND "
	    "state = 'cur'", 3, v, NULL, NULL);
	if (!ok(fix)) {
		pg->log("%s: its key %s: %s", d->id, d->key, pg->error);
		rc = -1;
	}
	pq.clear(fix);
	return rc;
}

static int
claim_row(struct pg *pg, PGresult *res, struct delivery *d)
{
	size_t		 len;
	unsigned char	*body;
	int		 rc;

	memset(d, 0, sizeof(*d));
	d->fd = d->lock = -1;
	snprintf(d->id, sizeof(d->id), "%s", pq.getvalue(res, 0, 0));
	if ((body = pq.unescapeBytea((const unsigned char *)pq.getvalue(res, 0,
	    1), &len)) == NULL)
		return -1;
	rc = body_file(pg, d, (const char *)body, len);
	if (rc == 0 && pg->cfg->order)
		rc = claim_order(pg, res, d, (const char *)body, len);
	pq.freemem(body);
	if (rc == -1) {
		if (d->fd == -1)
			pg->log("%s: %s: %s", d->id, d->path,
			    strerror(errno));
		return -1;
	}
	d->type = val_dup(res, 0, 2);
	d->bill_status = val_dup(res, 0, 3);
	d->trace_id = val_dup(res, 0, 4);
	d->request_id = val_dup(res, 0, 5);
	d->attempts = (size_t)val_ll(res, 0, 9);
	d->first_ms = val_ll(res, 0, 10);
	d->hold = strcmp(pq.getvalue(res, 0, 11), "t") == 0;
	return 0;
}

static void pg_release(void *, struct delivery *);

/* Whether a failed statement was refused by a unique index. */
static int
unique_violation(const PGresult *res)
{
	const char	*state;

	if (res == NULL ||
	    (state = pq.resultErrorField(res, PG_DIAG_SQLSTATE)) == NULL)
		return 0;
	return strcmp(state, "23505") == 0;
}

static int
pg_claim(void *ctx, long long now, int (*busy)(void *, const char *),
    void *arg, struct delivery *d)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	const char	*v[3];
	char		 lease[24];
	int		 tries, rows, rc = 0;

	(void)busy;
	(void)arg;
	pg->notified = 0;
	if (pg->followup != 0 && now >= pg->followup)
		pg->followup = 0;
	if (pg_connect(pg) == -1)
		return 0;
	expire(pg);
	snprintf(lease, sizeof(lease), "%lld", pg->cfg->lease_ms);
	v[0] = pg->cfg->order ? "true" : "false";
	v[1] = pg->owner;
	v[2] = lease;
	for (tries = 0; tries < 5 && rc == 0; tries++) {
		res = pg_params(pg, "claim", claim_sql, 3, v, NULL, NULL);
		if (!ok(res)) {
			/* Another worker took the key meanwhile: again. */
			if (unique_violation(res)) {
				pq.clear(res);
				continue;
			}
			pg->log("%s", pg->error);
			pq.clear(res);
			return 0;
		}
		if ((rows = pq.ntuples(res)) == 1) {
			rc = 1;
			if (claim_row(pg, res, d) == -1) {
				held_add(pg, d->id);
				pg_release(pg, d);
				delivery_free(d);
				rc = 0;
			} else
				held_add(pg, d->id);
		}
		pq.clear(res);
		if (rows != 1 || rc == 1)
			break;
	}
	return rc;
}

/*
 * The connector's inline claim: the event of this id, once no other
 * event of its key runs, polled until the deadline (monotonic ms).
 */
static int
pg_claim_id(void *ctx, const char *id, long long deadline,
    struct delivery *d)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	const char	*v[4];
	char		 lease[24];
	int		 rows;

	if (pg_connect(pg) == -1)
		return -1;
	/*
	 * The lease outlives the run, which ends by the deadline; a
	 * connector killed meanwhile holds the event no longer than it.
	 */
	snprintf(lease, sizeof(lease), "%lld",
	    pg->cfg->inline_timeout_ms + INLINE_LEASE_MARGIN_MS);
	v[0] = pg->cfg->order ? "true" : "false";
	v[1] = pg->owner;
	v[2] = lease;
	v[3] = id;
	for (;;) {
		res = pg_params(pg, "claim", claim_id_sql, 4, v, NULL, NULL);
		if (ok(res))
			break;
		if (!unique_violation(res)) {
			pg->log("%s", pg->error);
			pq.clear(res);
			return -1;
		}
		pq.clear(res);
		if (clock_ms(CLOCK_MONOTONIC) >= deadline)
			return 2;
		usleep(5000);
	}
	rows = pq.ntuples(res);
	if (rows == 1 && claim_row(pg, res, d) == -1) {
		held_add(pg, d->id);
		pg_release(pg, d);
		delivery_free(d);
		rows = -1;
	} else if (rows == 1)
		held_add(pg, d->id);
	pq.clear(res);
	return rows;
}

static void
pg_started(void *ctx, struct delivery *d, pid_t pid, unsigned long long st)
{
	(void)ctx;
	(void)d;
	(void)pid;
	(void)st;
}

static int
pg_applied_get(void *ctx, const char *key, struct applied *a)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	int		 rc = -1;

	memset(a, 0, sizeof(*a));
	res = pg_params(pg, "applied", "SELECT version_ns, created_ns, "
	    "event_id FROM nsps_applied WHERE okey = $1", 1, &key, NULL, NULL);
	if (ok(res)) {
		rc = pq.ntuples(res) == 1;
		if (rc == 1) {
			a->version.ns = val_ll(res, 0, 0);
			a->version.created_ns = val_ll(res, 0, 1);
			snprintf(a->id, sizeof(a->id), "%s",
			    pq.getvalue(res, 0, 2));
		}
	} else
		snprintf(a->error, sizeof(a->error), "%.150s", pg->error);
	pq.clear(res);
	return rc;
}

static int
pg_applied_set(void *ctx, const char *key, struct applied *a)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	char		 vns[24], cns[24];
	const char	*v[4];
	int		 rc;

	snprintf(vns, sizeof(vns), "%lld", a->version.ns);
	snprintf(cns, sizeof(cns), "%lld", a->version.created_ns);
	v[0] = key;
	v[1] = vns;
	v[2] = cns;
	v[3] = a->id;
	res = pg_params(pg, "applied", "INSERT INTO nsps_applied (okey, "
	    "version_ns, created_ns, event_id) VALUES ($1, $2, $3, $4) "
	    "ON CONFLICT (okey) DO UPDATE SET version_ns = $2, "
	    "created_ns = $3, event_id = $4, at = now()", 4, v, NULL, NULL);
	rc = ok(res) ? 0 : -1;
	if (rc == -1) {
		snprintf(a->error, sizeof(a->error), "%.150s", pg->error);
		pg->log("%s", pg->error);
	}
	pq.clear(res);
	return rc;
}

static void
forget(struct pg *pg, struct delivery *d)
{
	held_del(pg, d->id);
	if (d->path[0] != '\0')
		unlink(d->path);
}

/* Gives a claimed event back, its attempt uncounted. */
static void
pg_release(void *ctx, struct delivery *d)
{
	struct pg	*pg = ctx;
	const char	*v[2] = { d->id, pg->owner };

	pq.clear(pg_params(pg, "release", "UPDATE nsps_event SET "
	    "state = CASE WHEN attempts <= 1 THEN 'new' ELSE 'retry' END, "
	    "attempts = attempts - 1, due_at = now(), lock_key = NULL, "
	    "owner = NULL, lease_until = NULL "
	    "WHERE event_id = $1 AND owner = $2 AND state = 'cur'", 2, v,
	    NULL, NULL));
	forget(pg, d);
	pg->notified = 1;
}

/*
 * Records an attempt's outcome, only while the lease is ours: a worker
 * that lost it leaves the event to the one that took it over.
 */
static int
pg_finish(void *ctx, struct delivery *d, enum outcome how, long long due,
    const char *result, const char *tail, size_t tail_len)
{
	static const char *const states[] = { "done", "retry", "failed" };
	struct pg	*pg = ctx;
	PGresult	*res;
	const char	*v[8];
	char		 delay[24];
	int		 len[8] = { 0 }, fmt[8] = { 0 }, rc = -1;

	snprintf(delay, sizeof(delay), "%lld", how == OUTCOME_RETRY ?
	    due - clock_ms(CLOCK_REALTIME) : 0);
	v[0] = d->id;
	v[1] = pg->owner;
	v[2] = states[how];
	v[3] = delay;
	v[4] = result;
	v[5] = d->newer[0] != '\0' ? d->newer : NULL;
	v[6] = how == OUTCOME_DONE || tail_len == 0 ? NULL : tail;
	len[6] = (int)tail_len;
	fmt[6] = 1;
	/* A retry that holds its key keeps it as lock_key. */
	v[7] = how == OUTCOME_RETRY && d->hold ? "true" : "false";
	res = pg_params(pg, "finish", "UPDATE nsps_event SET state = $3, "
	    "due_at = CASE WHEN $3 = 'retry' THEN now() + $4 * "
	    "interval '1 ms' END, "
	    "done_at = CASE WHEN $3 = 'done' THEN now() END, "
	    "result = $5, newer = $6, stderr = $7, "
	    "lock_key = CASE WHEN $8::boolean THEN lock_key END, "
	    "owner = NULL, lease_until = NULL "
	    "WHERE event_id = $1 AND owner = $2 AND state = 'cur'", 8, v, len,
	    fmt);
	if (!ok(res))
		pg->log("%s: %s", d->id, pg->error);
	else if (strcmp(pq.cmdTuples(res), "1") != 0)
		pg->log("%s: lease lost; its outcome is not recorded", d->id);
	else
		rc = 0;
	pq.clear(res);
	forget(pg, d);
	return rc;
}

/* Retries due, leases running out, or the polling backstop. */
static long long
pg_next_due(void *ctx)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	long long	 now = clock_ms(CLOCK_REALTIME), due, in;

	due = now + POLL_MS;
	if (pg->notified)
		return now;
	if (pg->followup != 0 && pg->followup < due)
		due = pg->followup;
	if (pg->conn == NULL)
		return now + 1000;
	res = pg_params(pg, "next due", "SELECT (extract(epoch FROM "
	    "least((SELECT min(due_at) FROM nsps_event WHERE state = 'retry'), "
	    "(SELECT min(lease_until) FROM nsps_event WHERE state = 'cur')) - "
	    "now()) * 1000)::bigint", 0, NULL, NULL, NULL);
	if (ok(res) && pq.ntuples(res) == 1 && !pq.getisnull(res, 0, 0)) {
		in = val_ll(res, 0, 0);
		if (now + in < due)
			due = now + (in < 0 ? 0 : in);
	}
	pq.clear(res);
	return due;
}

static int
pg_wait_fd(void *ctx)
{
	struct pg	*pg = ctx;

	return pg->conn != NULL ? pq.socket(pg->conn) : -1;
}

/* A NOTIFY, or anything else the server said: claim again. */
static void
pg_wake(void *ctx)
{
	struct pg	*pg = ctx;

	if (pg->conn == NULL)
		return;
	if (!pq.consumeInput(pg->conn)) {
		pg_fail(pg, "listen", pq.errorMessage(pg->conn));
		pg->log("%s", pg->error);
		pg_drop(pg);
	} else
		drain(pg);
	pg->notified = 1;
}

static void
pg_rescan(void *ctx)
{
	((struct pg *)ctx)->notified = 1;
}

/*
 * Extends the leases of this worker's running events, every third of
 * LEASE_TIME.  Those the database no longer gives it, or all of them
 * once a whole lease passed without a renewal, are lost: returns how
 * many were newly lost.
 */
static int
pg_renew(void *ctx)
{
	struct pg	*pg = ctx;
	PGresult	*res = NULL;
	long long	 now = clock_ms(CLOCK_MONOTONIC);
	const char	*v[2];
	char		 lease[24];
	size_t		 i;
	int		 r, lost = 0, seen;

	if (pg->nheld == 0) {
		pg->renewed = now;
		return 0;
	}
	if (now - pg->renewed < pg->cfg->lease_ms / 3)
		return 0;
	snprintf(lease, sizeof(lease), "%lld", pg->cfg->lease_ms);
	v[0] = pg->owner;
	v[1] = lease;
	if (pg_connect(pg) == 0)
		res = pg_params(pg, "renew", "UPDATE nsps_event SET "
		    "lease_until = now() + $2 * interval '1 ms' "
		    "WHERE owner = $1 AND state = 'cur' RETURNING event_id",
		    2, v, NULL, NULL);
	if (ok(res)) {
		pg->renewed = now;
		for (i = 0; i < pg->nheld; i++) {
			for (seen = 0, r = 0; r < pq.ntuples(res) && !seen; r++)
				seen = strcmp(pq.getvalue(res, r, 0),
				    pg->held[i].id) == 0;
			if (!seen && !pg->held[i].lost) {
				pg->held[i].lost = 1;
				lost++;
			}
		}
	} else {
		pg->log("%s", pg->error);
		if (now - pg->renewed >= pg->cfg->lease_ms)
			for (i = 0; i < pg->nheld; i++)
				if (!pg->held[i].lost) {
					pg->held[i].lost = 1;
					lost++;
				}
	}
	pq.clear(res);
	return lost;
}

static int
pg_lost(void *ctx, const struct delivery *d)
{
	struct pg	*pg = ctx;
	size_t		 i;

	for (i = 0; i < pg->nheld; i++)
		if (strcmp(pg->held[i].id, d->id) == 0)
			return pg->held[i].lost;
	return 0;
}

static int
pg_recover(void *ctx, void (*orphan)(pid_t, unsigned long long))
{
	(void)orphan;
	expire(ctx);
	return 0;
}

/* Forgets events done, and versions applied, before cutoff. */
static void
pg_prune(void *ctx, long long cutoff)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	char		 age[24];
	const char	*v = age;

	snprintf(age, sizeof(age), "%lld", clock_ms(CLOCK_REALTIME) - cutoff);
	res = pg_params(pg, "prune", "DELETE FROM nsps_event WHERE "
	    "state = 'done' AND done_at < now() - $1 * interval '1 ms'", 1,
	    &v, NULL, NULL);
	if (ok(res)) {
		pq.clear(res);
		/* Never the version of a key with events not done. */
		res = pg_params(pg, "prune", "DELETE FROM nsps_applied a WHERE "
		    "at < now() - $1 * interval '1 ms' AND okey NOT IN "
		    "(SELECT okey FROM nsps_event WHERE okey IS NOT NULL AND "
		    "state <> 'done')", 1, &v, NULL, NULL);
	}
	if (!ok(res))
		pg->log("%s", pg->error);
	pq.clear(res);
}

static int
pg_stats(void *ctx, struct queue_count *c, unsigned int mask)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	long long	 now = clock_ms(CLOCK_REALTIME);
	const char	*s;
	int		 i, k;

	for (k = 0; k < QSTATE_COUNT; k++) {
		c[k].count = 0;
		c[k].oldest_ms = -1;
	}
	/* done/ holds the retention's worth: counted only when asked. */
	res = pg_params(pg, "stats", (mask & (1u << QSTATE_DONE)) ?
	    "SELECT state, count(*), "
	    "(extract(epoch FROM now() - min(received)) * 1000)::bigint "
	    "FROM nsps_event GROUP BY state" :
	    "SELECT state, count(*), "
	    "(extract(epoch FROM now() - min(received)) * 1000)::bigint "
	    "FROM nsps_event WHERE state <> 'done' GROUP BY state",
	    0, NULL, NULL, NULL);
	if (!ok(res)) {
		pg->log("%s", pg->error);
		pq.clear(res);
		return -1;
	}
	for (i = 0; i < pq.ntuples(res); i++) {
		s = pq.getvalue(res, i, 0);
		for (k = 0; k < QSTATE_TMP; k++)
			if (strcmp(s, queue_state_names[k]) == 0) {
				c[k].count = (size_t)val_ll(res, i, 1);
				c[k].oldest_ms = now - val_ll(res, i, 2);
			}
	}
	pq.clear(res);
	return 0;
}

static int
pg_requeue_failed(void *ctx, size_t *n)
{
	struct pg	*pg = ctx;
	PGresult	*res;
	int		 rc = -1;

	*n = 0;
	res = pg_params(pg, "requeue", "UPDATE nsps_event SET state = 'new', "
	    "attempts = 0, first_at = NULL, result = NULL, newer = NULL, "
	    "stderr = NULL WHERE state = 'failed'", 0, NULL, NULL, NULL);
	if (ok(res)) {
		*n = strtoul(pq.cmdTuples(res), NULL, 10);
		rc = 0;
	} else
		pg->log("%s", pg->error);
	pq.clear(res);
	return rc;
}

static void
pg_queue_close(void *ctx)
{
	struct pg	*pg = ctx;

	if (pg == NULL)
		return;
	if (pg->tmpdir[0] != '\0')
		rmdir(pg->tmpdir);
	pg_fini(pg);
	free(pg);
}

static const struct queue_ops pg_ops = {
	.recover = pg_recover,
	.claim = pg_claim,
	.claim_id = pg_claim_id,
	.started = pg_started,
	.applied_get = pg_applied_get,
	.applied_set = pg_applied_set,
	.release = pg_release,
	.finish = pg_finish,
	.next_due = pg_next_due,
	.wait_fd = pg_wait_fd,
	.wake = pg_wake,
	.rescan = pg_rescan,
	.prune = pg_prune,
	.stats = pg_stats,
	.requeue_failed = pg_requeue_failed,
	.close = pg_queue_close,
	.renew = pg_renew,
	.lost = pg_lost
};

/* The schema's version: 0 when there is none yet, -1 on error. */
static int
schema_version(struct pg *pg)
{
	PGresult	*res;
	int		 v = -1;

	res = pg_params(pg, "schema", "SELECT to_regclass('nsps_schema') "
	    "IS NOT NULL", 0, NULL, NULL, NULL);
	if (ok(res) && pq.ntuples(res) == 1)
		v = strcmp(pq.getvalue(res, 0, 0), "t") == 0;
	pq.clear(res);
	if (v != 1)
		return v;
	res = pg_params(pg, "schema", "SELECT max(version) FROM nsps_schema",
	    0, NULL, NULL, NULL);
	v = ok(res) && pq.ntuples(res) == 1 ? (int)val_ll(res, 0, 0) : -1;
	pq.clear(res);
	return v;
}

/*
 * Opens the queue; with QUEUE_WORK the worker claims, and its bodies
 * go to a private directory.  Returns 0, or -1 with a message in err
 * and the exit status in *ex.
 */
static int
pg_queue_open(struct queue *qu, struct config *cfg, unsigned int how,
    void (*log)(const char *, ...), char *err, size_t errlen, int *ex)
{
	struct pg	*pg;
	const char	*tmp;
	char		 host[64];
	unsigned int	 r = 0;
	int		 v;

	qu->ops = &pg_ops;
	if ((qu->ctx = pg = malloc(sizeof(*pg))) == NULL) {
		snprintf(err, errlen, "database: %s", strerror(errno));
		*ex = 1;
		return -1;
	}
	pg_init(pg, cfg, 1);
	pg->listen = (how & QUEUE_WATCH) != 0;
	pg->log = log;
	*ex = EX_TEMPFAIL_CODE;
	if (pg_connect(pg) == -1) {
		if (pg->auth_failed)
			*ex = EX_CONFIG_CODE;
		snprintf(err, errlen, "%s", pg->error);
		return -1;
	}
	if ((v = schema_version(pg)) == -1) {
		snprintf(err, errlen, "%s", pg->error);
		return -1;
	}
	if (v != SCHEMA_VERSION) {
		snprintf(err, errlen, "database: schema version %d, this "
		    "program needs %d: run %s --migrate", v, SCHEMA_VERSION,
		    DPROG);
		*ex = EX_CONFIG_CODE;
		return -1;
	}
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (getentropy(&r, sizeof(r)) == -1)
		r = (unsigned int)clock_ms(CLOCK_MONOTONIC);
	snprintf(pg->owner, sizeof(pg->owner), "%s:%ld:%08x", host,
	    (long)getpid(), r);
	if (how & (QUEUE_WORK | QUEUE_INLINE)) {
		if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
			tmp = "/tmp";
		snprintf(pg->tmpdir, sizeof(pg->tmpdir), "%s/nsps-deliver.XXXXXX",
		    tmp);
		if (mkdtemp(pg->tmpdir) == NULL) {
			snprintf(err, errlen, "%s: %s", pg->tmpdir,
			    strerror(errno));
			pg->tmpdir[0] = '\0';
			*ex = 1;
			return -1;
		}
	}
	pg->renewed = clock_ms(CLOCK_MONOTONIC);
	return 0;
}

/*
 * --migrate: creates the schema or brings it up to this version, in one
 * transaction, under a lock so that two at once do it once.
 */
static int
pg_migrate(const struct config *cfg, char *err, size_t errlen, int *ex)
{
	struct pg	 pg;
	int		 v, rc = -1;
	char		 ins[64];

	pg_init(&pg, cfg, 0);
	pg.worker = 1;		/* nothing to prepare */
	/* As the worker's start: unreachable is temporary, refused not. */
	*ex = EX_TEMPFAIL_CODE;
	if (pg_connect(&pg) == -1) {
		if (pg.auth_failed)
			*ex = EX_CONFIG_CODE;
		goto out;
	}
	*ex = 1;
	if (pg_run(&pg, "migrate", "BEGIN") == -1 ||
	    pg_run(&pg, "migrate", "SELECT pg_advisory_xact_lock("
	    MIGRATE_LOCK ")") == -1 ||
	    (v = schema_version(&pg)) == -1)
		goto out;
	if (v > SCHEMA_VERSION) {
		snprintf(pg.error, sizeof(pg.error), "database: schema version "
		    "%d is newer than this program's %d", v, SCHEMA_VERSION);
		*ex = EX_CONFIG_CODE;
		goto out;
	}
	snprintf(ins, sizeof(ins), "UPDATE nsps_schema SET version = %d",
	    SCHEMA_VERSION);
	if (v == 0 && (pg_run(&pg, "migrate", schema_v1) == -1 ||
	    pg_run(&pg, "migrate", "CREATE TABLE nsps_schema (version "
	    "integer NOT NULL); INSERT INTO nsps_schema VALUES (0)") == -1))
		goto out;
	if (pg_run(&pg, "migrate", ins) == -1 ||
	    pg_run(&pg, "migrate", "COMMIT") == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		snprintf(err, errlen, "%s", pg.error);
	pg_fini(&pg);
	return rc;
}

/* libpq, loaded once DATABASE_URL chose this store. */
static int
pg_load(const struct config *cfg, char *err, size_t errlen)
{
	char		 why[512];

	if (pq_load(cfg->database_url, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "DATABASE_URL: %s", why);
		return -1;
	}
	return 0;
}

/* Why the last attempt failed; NULL when it did not. */
static const char *
pg_sink_error(const void *ctx, int *ex)
{
	const struct pg	*pg = ctx;

	if (pg->conn != NULL || pg->error[0] == '\0')
		return NULL;
	/* A wrong password is configuration; a database away, temporary. */
	*ex = pg->auth_failed ? EX_CONFIG_CODE : EX_TEMPFAIL_CODE;
	return pg->error;
}

/*
 * The connector's sink, connected once; a database away is the sink's
 * error, and each event tries again.
 */
static int
pg_sink_open(struct sink *sink, const struct config *cfg, char *err,
    size_t errlen, int *ex)
{
	struct pg	*pg;

	if ((pg = malloc(sizeof(*pg))) == NULL) {
		snprintf(err, errlen, "database: %s", strerror(errno));
		*ex = 1;
		return -1;
	}
	pg_init(pg, cfg, 0);
	(void)pg_connect(pg);
	sink->store = pg_store;
	sink->backlog = pg_backlog;
	sink->error = pg_sink_error;
	sink->close = pg_sink_close;
	sink->ctx = pg;
	sink->require_event_id = 1;
	return 0;
}

static int
pg_stats_head(const struct config *cfg, struct buf *b)
{
	(void)cfg;
	return buf_adds(b, "\"store\":\"postgresql\"");
}

const struct store store_pg = {
	.name = "postgresql",
	.states = (1u << QSTATE_TMP) - 1,	/* no tmp/ or ids/ */
	.load = pg_load,
	.sink_open = pg_sink_open,
	.queue_open = pg_queue_open,
	.migrate = pg_migrate,
	.stats_head = pg_stats_head
};
