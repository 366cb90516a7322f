/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * nsps-connector receives PortaOne NSPS provisioning events;
 * nsps-deliver runs the operator's handler on each one accepted.
 *
 * The one internal header; the stores' interface is in queue.h, which
 * it includes.  In the connector data flows in one direction:
 *
 *   transport (fcgi.c, cgi.c, file.c) -> struct request -> handle()
 *     -> struct response (written by the transport in one write)
 *     -> struct log_record (written by log.c in one write(2) to fd 2)
 *
 * handle() does no I/O of its own: the body comes through the
 * request's read_body callback and an accepted event goes to the
 * sink it is handed (the store's, see queue.h, or none: log only).
 * nsps-deliver's scheduler (deliver.c) takes events from the store's
 * queue: the spool (spool_queue.c) or PostgreSQL (pg.c).
 */
#ifndef NSPS_EXTERN_H
#define NSPS_EXTERN_H

#include <sys/types.h>

#include <signal.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct json_tokener;
struct json_object;
struct sink;

#define PROG			"nsps-connector"

#define EX_USAGE_CODE		64	/* sysexits.h EX_USAGE */
#define EX_TEMPFAIL_CODE	75	/* sysexits.h EX_TEMPFAIL */
#define EX_CONFIG_CODE		78	/* sysexits.h EX_CONFIG */

#define DEFAULT_EVENT_PATH	"/process-event"
#define DEFAULT_HEALTH_PATH	"/health"
#define DEFAULT_METRICS_PATH	"/metrics"
#define DEFAULT_REQUIRED	"data.event_type,pb_data.account_info.bill_status"
#define DEFAULT_MAX_BODY	(2u * 1024 * 1024)
#define MAX_BODY_LIMIT		(64u * 1024 * 1024)	/* json-c takes int lengths */
#define JSON_MAX_DEPTH		32
#define MAX_TOKENS		16
#define MAX_TOKEN_LEN		1024
#define MAX_REQUIRED		16
#define MAX_FIELD_DEPTH		8
#define MAX_ID_LEN		128	/* trace ids copied into the log */
#define EVENT_ID_MAX		128	/* as event_id_valid() allows */
#define MAX_PATH_LEN		1024

/* A growable byte buffer, reused across requests. */
struct buf {
	char		*data;
	size_t		 len;
	size_t		 cap;
};

int	 buf_reserve(struct buf *, size_t);
int	 buf_add(struct buf *, const void *, size_t);
int	 buf_adds(struct buf *, const char *);
int	 buf_addc(struct buf *, char);
int	 buf_addu(struct buf *, unsigned long long);
int	 buf_add_json_string(struct buf *, const char *, size_t);
int	 buf_add_json_field(struct buf *, const char *, const char *, size_t);
size_t	 utf8_seqlen(const unsigned char *, size_t);
void	 buf_free(struct buf *);

enum log_format {
	LOG_TEXT,
	LOG_JSON
};

/* A required field, pre-split at start-up: "pb_data.account_info.x". */
struct field_path {
	char		*dotted;			/* as configured */
	const char	*seg[MAX_FIELD_DEPTH];	/* points into segbuf */
	size_t		 nseg;
	char		*segbuf;
};

/*
 * Every setting either program reads; config.c's table gives each its
 * kind, default and limits.
 */
enum setting {
	S_API_TOKEN,
	S_API_TOKEN_FILE,
	S_EVENT_PATH,
	S_HEALTH_PATH,
	S_REQUIRED_FIELDS,
	S_MAX_BODY_BYTES,
	S_LOG_FORMAT,
	S_SPOOL_DIR,
	S_HANDLER,
	S_HANDLER_TIMEOUT,
	S_RETRY_BASE,
	S_RETRY_CAP,
	S_RETRY_LIMIT,
	S_RETRY_MAX_AGE,
	S_RETENTION,
	S_DELIVER_JOBS,
	S_ORDER,
	S_ORDER_KEY,
	S_ORDER_VERSION,
	S_ORDER_MAX_SKEW,
	S_ROUTES_FILE,
	S_METRICS_PATH,
	S_METRICS_DIR,
	S_METRICS_MAX_TYPES,
	S_DATABASE_URL,
	S_DB_TIMEOUT,
	S_LEASE_TIME,
	S_DELIVERY,
	S_INLINE_TIMEOUT,
	S_INLINE_FALLBACK,
	S_SPOOL_WAL,
	S_SPOOL_WAL_SIZE,
	S_WAL_CHECKPOINT,
	SETTING_COUNT
};

/* Who reads a setting; config_load() checks only the caller's. */
#define FOR_CONNECTOR		0x1
#define FOR_DELIVER		0x2
#define FOR_HANDLER		0x4	/* nsps-deliver running handlers */
#define FOR_INLINE		0x8	/* the connector with DELIVERY=inline */

#define MAX_JOBS		64	/* nsps-deliver -j */
#define DEFAULT_ORDER_KEY	"pb_data.sim_info.i_sim_card," \
	"data.variables.i_account,pb_data.account_info.i_account"
#define DEFAULT_ORDER_VERSION	"updated_at"
#define ORDER_KEY_MAX		160	/* "name=value", as a file name */

/* A line of ROUTES_FILE: events whose type matches go to argv. */
struct route {
	char		*pattern;	/* fnmatch(3) on data.event_type */
	char		**argv;		/* NULL: ignore the event */
	char		*words;		/* the line, split in place */
	size_t		 line;
};

/*
 * Configuration: read and validated once at start-up, then never
 * changed.  When loading fails, error holds the one message that is
 * logged (and FastCGI refuses to start); CGI and request-file modes
 * answer 500 to the request instead.
 */
struct config {
	char		*token[MAX_TOKENS];
	size_t		 token_len[MAX_TOKENS];
	size_t		 ntokens;
	char		*event_path;
	size_t		 event_path_len;
	char		*health_path;
	size_t		 health_path_len;
	struct field_path required[MAX_REQUIRED];
	size_t		 nrequired;
	size_t		 max_body;
	enum log_format	 log_format;
	char		*spool_dir;		/* NULL: no spool */
	int		 spool_wal;		/* SPOOL_WAL=on */
	size_t		 spool_wal_size;	/* bytes a segment */
	long long	 wal_checkpoint_ms;	/* nsps-deliver's */
	char		*metrics_path;
	size_t		 metrics_path_len;
	char		*metrics_dir;		/* NULL: no counters */
	size_t		 metrics_max_types;
	char		*database_url;		/* NULL: no PostgreSQL */
	long long	 db_timeout_ms;
	long long	 lease_ms;		/* nsps-deliver's claims */
	/* nsps-deliver */
	char		**handler;		/* argv of the handler */
	char		*handler_words;		/* HANDLER, split in place */
	long long	 handler_timeout_ms;
	int		 inline_delivery;	/* DELIVERY=inline */
	long long	 inline_timeout_ms;
	int		 inline_reject;		/* INLINE_FALLBACK=reject */
	long long	 retry_base_ms;
	long long	 retry_cap_ms;
	long long	 retry_max_age_ms;
	long long	 retention_ms;
	size_t		 retry_limit;
	size_t		 jobs;
	int		 order;			/* ORDER=on */
	struct field_path order_key[MAX_REQUIRED];
	size_t		 norder_key;
	struct field_path order_version;
	long long	 order_max_skew_ms;	/* versions ahead of the clock */
	struct route	*routes;		/* ROUTES_FILE */
	size_t		 nroutes;
	char		 error[512];		/* empty when valid */
};

/* What the command line said; NULL where not given.  It wins. */
struct options {
	unsigned int	 program;		/* FOR_* */
	const char	*env_file;
	const char	*value[SETTING_COUNT];
	char *const	*handler;		/* words after "--" */
};

int	 config_load(struct config *, const struct options *);
void	 config_free(struct config *);
const char *setting_name(enum setting);
int	 dotenv_parse(const char *, size_t,
	    int (*)(void *, const char *, const char *), void *,
	    char *, size_t);
int	 parse_size(const char *, size_t, size_t *);
int	 parse_duration(const char *, unsigned long long *);
int	 command_runnable(const char *);
const struct route *route_find(const struct config *, const char *);

/*
 * One request as a transport sees it.  Strings are NUL-terminated and
 * NULL when absent; they stay valid until the response is written.
 */
struct request {
	const char	*method;
	const char	*script_name;
	const char	*path_info;
	const char	*authorization;
	const char	*content_type;
	const char	*content_length;
	const char	*trace_id;		/* X-B3-TraceId */
	const char	*unique_id;		/* X-Request-Id */
	const char	*transfer_encoding;	/* request-file mode only */
	const char	*transport_error;	/* set: answer 400 with it */
	/*
	 * Reads exactly len body bytes into dst; returns 0, or -1 when
	 * the body ended early or could not be read.
	 */
	int		(*read_body)(void *, char *, size_t);
	/*
	 * Appends the whole body to dst when no length was given, up to
	 * max bytes; returns 0 at its end, 1 past max (the rest unread),
	 * -1 when it could not be read, -2 out of memory.  NULL where the
	 * transport has no end of stream to read to (CGI).
	 */
	int		(*read_to_end)(void *, struct buf *, size_t);
	void		*read_ctx;
};

/* What handle() learnt of a valid event; points into the parsed body. */
struct event {
	const char	*event_id;		/* NULL when absent */
	size_t		 event_id_len;
	const char	*event_type;
	size_t		 event_type_len;
	const char	*bill_status;
	size_t		 bill_status_len;
	struct json_object *root;		/* the parsed body */
};

/* What a request to a path other than the event path asked for. */
enum health {
	HEALTH_NONE,		/* an event, or a rejection */
	HEALTH_CHECK,		/* the health path */
	HEALTH_METRICS		/* the metrics path: a scrape */
};

/* The answer handle() chose; st->out holds it rendered. */
struct response {
	int		 status;
	const char	*error;		/* overrides the standard "error" */
	const char	*message;	/* overrides the standard "message" */
	const char	*type;		/* overrides the standard "type" */
	const char	*reason;	/* for the log: why, never the body */
	const char	*extra;		/* one more header line, with CRLF */
	const char	*details;	/* 422 details, a JSON array */
	int		 duplicate;
	enum health	 health;
	long		 backlog;	/* health: -1 when unknown */
	const struct metrics *metrics;	/* set: answer the exposition */
	char		 reason_buf[256];
	char		 message_buf[384];	/* inline delivery's */
	char		 error_buf[256];
};

/* What the log line needs; values point into the request or body. */
struct log_record {
	int		 status;
	const char	*method;
	const char	*path;
	const char	*type;
	const char	*reason;
	const struct event *event;	/* NULL unless the event was valid */
	const char	*trace_id;
	const char	*unique_id;
	int		 duplicate;
	enum health	 health;
	struct timespec	 start;
};

/* Buffers and parser kept from one request to the next. */
struct state {
	struct buf	 body;
	struct buf	 out;		/* the whole CGI response */
	struct buf	 resp;		/* the response's JSON body */
	struct buf	 details;	/* 422 details */
	struct buf	 path;
	struct json_tokener *tok;
	struct json_object *root;	/* parsed body, freed next request */
	struct event	 event;
	int		 have_event;
};

void	 use_c_locale(void);
int	 state_init(struct state *);
void	 state_free(struct state *);

/* handle.c */
void	 handle(const struct config *, const struct sink *, struct state *,
	    const struct request *, struct response *, struct log_record *);

/* auth.c */
const char *auth_check(const struct config *, const char *);
int	 auth_bearer_token(const char *, const char **, size_t *);
int	 token_equal(const char *, size_t, const char *, size_t);

/* event.c */
enum event_result {
	EVENT_OK,
	EVENT_BAD_JSON,		/* details in scratch */
	EVENT_INVALID,		/* details in scratch */
	EVENT_NOMEM
};
enum event_result event_parse(const struct config *, const struct sink *,
	    struct state *, const char *, size_t, struct buf *, char *, size_t);
void	 event_describe(struct json_object *, struct event *);
int	 json_strict_scan(const char *, size_t, size_t *);
int	 event_id_valid(const char *, size_t);

/* Where an event stands in its key's order (ORDER). */
struct version {
	long long	 ns;		/* ORDER_VERSION, ns since the epoch */
	long long	 created_ns;	/* created_at; 0 when absent */
};

enum order_result {
	ORDER_NONE,		/* no key: not ordered */
	ORDER_KEYED,
	ORDER_BAD_VERSION,	/* a key, but its version is unreadable */
	ORDER_BAD_KEY		/* a key path holds no integer */
};
enum order_result event_order(const struct config *, struct json_object *,
	    char *, size_t, struct version *, char *, size_t);
int	 key_normalise(const char *, size_t, char *, size_t, const char **);
int	 iso8601_parse(const char *, long long *);
int	 version_cmp(const struct version *, const struct version *);
int	 version_ahead(const struct version *, long long, long long);

/* response.c */
int	 response_error_body(struct buf *, int, const char *, const char *);
int	 response_body(struct buf *, int, const char *, const char *,
	    const char *, const char *);
int	 response_render(struct buf *, int, const char *, const struct buf *,
	    int);
int	 response_render_type(struct buf *, int, const char *, const char *,
	    const struct buf *, int);
const char *status_type(int);

/* log.c */
void	 log_init(const struct config *);
void	 log_request(const struct log_record *);
void	 log_free(void);
void	 log_msg(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2)));

/* Transports. Each returns the process exit status. */
int	 serve_fcgi(const struct config *, const struct sink *, const char *,
	    int, int);
int	 serve_cgi(const struct config *, const struct sink *);
int	 serve_file(const struct config *, const struct sink *, int);
const char *http_parse_head(char *, struct request *);
int	 serve_request(const struct config *, const struct sink *,
	    struct state *, const struct request *,
	    int (*)(void *, const char *, size_t), void *);
int	 listen_socket(const char *);
int	 read_all(int, char *, size_t);
int	 write_all(int, const char *, size_t);

#include "queue.h"

/* deliver.c: nsps-deliver's scheduler. */
#define DPROG			"nsps-deliver"
#define TAIL_SIZE		2048	/* of the handler's stderr, kept */
#define MAX_BLOCKED		64	/* blocked keys the worker names */

struct job {
	pid_t		 pid;		/* 0: the slot is free */
	int		 errfd;		/* -1 once closed */
	int		 wstatus;
	int		 timed_out;
	int		 lost;		/* its claim went to another worker */
	struct delivery	 d;
	char *const	*argv;		/* the handler the route chose */
	long long	 deadline;	/* monotonic ms */
	char		 tail[TAIL_SIZE];
	size_t		 tail_len;
};

struct worker {
	const struct config *cfg;
	struct queue	*q;
	struct metrics	*metrics;	/* NULL: not counted */
	struct job	 jobs[MAX_JOBS];
	size_t		 running;
	int		 stopping;
	int		 sigfd;
	sigset_t	 oldmask;	/* restored in the handlers */
	/* Keys whose applied version could not be read, logged once. */
	char		 blocked[MAX_BLOCKED][ORDER_KEY_MAX + 1];
	size_t		 nblocked;
	struct log_stats log;		/* the spool's log, at the last checkpoint */
	int		 has_log;
};

/* inline.c: DELIVERY=inline, the connector's own delivery. */
#define INLINE_ERROR_MAX	200	/* of the handler's last stderr line */
#define INLINE_LEASE_MARGIN_MS	5000	/* pg: a claim's lease past the deadline */

int	 inline_open(struct sink *, struct config *, const struct store *,
	    char *, size_t, int *);
void	 inline_close(struct sink *);
void	 inline_deliver(void *, const struct event *, int,
	    struct response *);

/* What a claimed event calls for: delivery_decide(). */
enum decision {
	DECIDE_RUN,
	DECIDE_HELD,		/* ORDER cannot place it: failed/ */
	DECIDE_BLOCKED,		/* its key's applied version is unreadable */
	DECIDE_STALE,
	DECIDE_IGNORED,
	DECIDE_NOROUTE
};

int	 worker_init(struct worker *, const struct config *, struct queue *);
int	 worker_run(struct worker *, int);
enum decision delivery_decide(const struct config *, const struct queue *,
	    struct delivery *, char *const **, char *, size_t);
int	 delivery_applied(const struct queue *, const struct delivery *,
	    char *, size_t);
void	 handler_exec(const struct config *, const struct delivery *,
	    char *const *, int, pid_t, const sigset_t *, int)
	    __attribute__((__noreturn__));
void	 tail_read(int *, char *, size_t *);
enum outcome judge(const struct config *, int, int, size_t, long long,
	    char *, size_t);
long long backoff_delay(long long, long long, size_t, unsigned int);
unsigned long long proc_start_time(pid_t);
void	 dlog(const char *, ...)
	    __attribute__((__format__(__printf__, 1, 2)));

/*
 * metrics.c: the counters both programs share through one mapped file
 * in METRICS_DIR, and their Prometheus exposition.
 */
#define METRICS_TYPES_CAP	256	/* event type slots in the file */
#define METRICS_TYPE_LEN	63	/* longer types count as "other" */
#define METRICS_PUBLISH_MS	10000	/* nsps-deliver's heartbeat */

enum delivery_result {
	DRESULT_DONE,
	DRESULT_RETRY,
	DRESULT_FAILED,
	DRESULT_STALE,
	DRESULT_IGNORED,
	DRESULT_TIMEOUT,
	DRESULT_HELD,		/* ORDER could not place it: failed/ */
	DRESULT_BUSY,		/* inline: its key stayed busy */
	DRESULT_COUNT
};

struct metrics_file;
struct metrics {
	struct metrics_file *f;		/* the mapping; NULL: unusable */
	size_t		 max_types;
	char		 dir[MAX_PATH_LEN + 1];
	char		 error[MAX_PATH_LEN + 256];
};

int	 metrics_open(struct metrics *, const char *, size_t);
void	 metrics_close(struct metrics *);
void	 metrics_request(struct metrics *, int, long long);
void	 metrics_event(struct metrics *, const char *, size_t);
void	 metrics_store_failure(struct metrics *);
void	 metrics_delivery(struct metrics *, enum delivery_result, long long);
void	 metrics_inline(struct metrics *, enum delivery_result, long long);
void	 metrics_worker(struct metrics *, int);
void	 metrics_queue(struct metrics *, const struct queue_count *);
void	 metrics_blocked(struct metrics *, size_t);
void	 metrics_log(struct metrics *, const struct log_stats *);
enum delivery_result metrics_result(enum outcome, int);
int	 metrics_render(const struct metrics *, struct buf *);

#endif /* NSPS_EXTERN_H */
