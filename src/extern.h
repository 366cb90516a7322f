/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * nsps-connector: receives PortaOne NSPS provisioning events.
 *
 * The one internal header.  Data flows in one direction:
 *
 *   transport (fcgi.c, cgi.c, file.c) -> struct request -> handle()
 *     -> struct response (written by the transport in one write)
 *     -> struct log_record (written by log.c in one write(2) to fd 2)
 *
 * handle() does no I/O of its own: the body comes through the
 * request's read_body callback and an accepted event goes to the
 * sink it is handed (the spool, or nothing).
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
	S_ROUTES_FILE,
	S_METRICS_PATH,
	S_METRICS_DIR,
	S_METRICS_MAX_TYPES,
	S_DATABASE_URL,
	S_DB_TIMEOUT,
	S_LEASE_TIME,
	SETTING_COUNT
};

/* Who reads a setting; config_load() checks only the caller's. */
#define FOR_CONNECTOR		0x1
#define FOR_DELIVER		0x2
#define FOR_HANDLER		0x4	/* nsps-deliver running handlers */

#define MAX_JOBS		64	/* nsps-deliver -j */
#define DEFAULT_ORDER_KEY	"data.variables.i_account," \
	"pb_data.account_info.i_account,pb_data.sim_info.i_sim_card"
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

enum store_result {
	STORE_OK,
	STORE_DUPLICATE,
	STORE_FAILED
};

/*
 * Where an accepted event goes before it is acknowledged.  store() gets
 * the body exactly as received; on STORE_FAILED it puts the reason in
 * why.  A NULL store means "log only".
 */
struct sink {
	enum store_result (*store)(void *, const struct event *,
	    const struct request *, const char *, size_t, char *, size_t);
	void		*ctx;
	/* Optional: event_id must satisfy this (the spool names files). */
	int		 require_event_id;
	/* Optional: events waiting for delivery, for the health check. */
	long		(*backlog)(void *);
	/* Optional: the shared counters, counted and scraped. */
	struct metrics	*metrics;
};

/* The answer handle() chose; st->out holds it rendered. */
struct response {
	int		 status;
	const char	*error;		/* overrides the standard "error" */
	const char	*reason;	/* for the log: why, never the body */
	const char	*extra;		/* one more header line, with CRLF */
	const char	*details;	/* 422 details, a JSON array */
	int		 duplicate;
	int		 health;	/* 1: health check, 2: metrics scrape */
	long		 backlog;	/* health: -1 when unknown */
	const struct metrics *metrics;	/* set: answer the exposition */
	char		 reason_buf[256];
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
	int		 health;
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
	ORDER_BAD_VERSION	/* a key, but its version is unreadable */
};
enum order_result event_order(const struct config *, struct json_object *,
	    char *, size_t, struct version *);
int	 iso8601_parse(const char *, long long *);
int	 version_cmp(const struct version *, const struct version *);

/* response.c */
int	 response_error_body(struct buf *, int, const char *, const char *);
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
	    int);
int	 serve_cgi(const struct config *, const struct sink *);
int	 serve_file(const struct config *, const struct sink *, int);
const char *http_parse_head(char *, struct request *);
int	 serve_request(const struct config *, const struct sink *,
	    struct state *, const struct request *,
	    int (*)(void *, const char *, size_t), void *);
int	 listen_socket(const char *);
int	 read_all(int, char *, size_t);
int	 write_all(int, const char *, size_t);

/*
 * spool.c: the spool's folders, opened once.  Shared with nsps-deliver,
 * which owns cur/ and the folders after it.
 */
#define SPOOL_ID_MAX		128	/* as event_id_valid() allows */
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
	SPOOL_NDIRS
};
extern const char *const spool_dirs[SPOOL_NDIRS];

struct spool {
	int		 root;
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
enum store_result spool_store(void *, const struct event *,
	    const struct request *, const char *, size_t, char *, size_t);
long	 spool_backlog(void *);

/*
 * The queue nsps-deliver works from.  A store implements these; the
 * scheduler in deliver.c knows nothing else of it.
 */
struct status {			/* what is kept of an event's attempts */
	size_t		 attempts;
	long long	 first_ms;	/* first attempt, wall clock */
	long long	 next_ms;	/* when the next is due, if waiting */
	long long	 pid;		/* the handler running it, if any */
	long long	 pid_start;	/* and its start, in boot ticks */
};

/* A claimed event, handed to its handler. */
struct delivery {
	char		 id[SPOOL_ID_MAX + 1];
	int		 fd;		/* the body, open for reading */
	char		 path[MAX_PATH_LEN + SPOOL_ID_MAX + 16];
	char		*type;		/* "" when unknown, never NULL */
	char		*bill_status;
	char		*trace_id;
	char		*request_id;
	size_t		 attempts;	/* this one included */
	long long	 first_ms;
	char		 key[ORDER_KEY_MAX + 1];	/* "": not ordered */
	struct version	 version;
	char		 newer[SPOOL_ID_MAX + 1];	/* stale: applied */
};

/* The newest version applied (handler exit 0) for a key. */
struct applied {
	struct version	 version;
	char		 id[SPOOL_ID_MAX + 1];
};

enum outcome {
	OUTCOME_DONE,
	OUTCOME_RETRY,
	OUTCOME_FAILED
};

enum queue_state {
	QSTATE_NEW,
	QSTATE_CUR,
	QSTATE_RETRY,
	QSTATE_DONE,
	QSTATE_FAILED,
	QSTATE_TMP,		/* the spool's own, for --stats */
	QSTATE_IDS,
	QSTATE_COUNT
};

#define QSTATE_ALL		((1u << QSTATE_COUNT) - 1)

struct queue_count {
	size_t		 count;
	long long	 oldest_ms;	/* arrival, wall clock; -1: none */
};

struct queue_ops {
	/*
	 * Completes what a killed worker or connector left half done;
	 * first calls orphan(pid, start) for each handler a killed worker
	 * recorded as running.
	 */
	int	  (*recover)(void *, void (*)(pid_t, unsigned long long));
	/*
	 * The next event due at now (wall ms) whose key busy() does not
	 * name, the newest version of its key first: 1 claimed, 0 none.
	 */
	int	  (*claim)(void *, long long, int (*)(void *, const char *),
		    void *, struct delivery *);
	/* Its handler runs as pid, started at the given boot tick. */
	void	  (*started)(void *, struct delivery *, pid_t,
		    unsigned long long);
	/* The newest version applied for a key: 1, 0 none, -1 error. */
	int	  (*applied_get)(void *, const char *, struct applied *);
	/* Made durable before the event is recorded as done. */
	int	  (*applied_set)(void *, const char *, const struct applied *);
	/* Gives a claimed event back untouched. */
	void	  (*release)(void *, struct delivery *);
	/* Records an attempt's outcome; a retry is due at the given ms. */
	int	  (*finish)(void *, struct delivery *, enum outcome, long long,
		    const char *, const char *, size_t);
	/* When the earliest retry is due (wall ms), -1 when none. */
	long long (*next_due)(void *);
	/* Readable when new events may have come; -1 when none. */
	int	  (*wait_fd)(void *);
	void	  (*wake)(void *);
	/* The next claim looks at the whole store again. */
	void	  (*rescan)(void *);
	/* Forgets events done before the given wall ms. */
	void	  (*prune)(void *, long long);
	/* Counts the states whose bit (1 << QSTATE_*) is set. */
	int	  (*stats)(void *, struct queue_count *, unsigned int);
	int	  (*requeue_failed)(void *, size_t *);
	void	  (*close)(void *);
	/*
	 * Optional, for stores shared by many workers: renew() keeps the
	 * claims of running events and says how many were newly lost;
	 * lost() whether this one was (another worker may run it now).
	 */
	int	  (*renew)(void *);
	int	  (*lost)(void *, const struct delivery *);
};

struct queue {
	const struct queue_ops *ops;
	void		*ctx;
};

extern const char *const queue_state_names[QSTATE_COUNT];

void	 delivery_free(struct delivery *);
int	 status_parse(const char *, size_t, struct status *);

/* The spool as a queue: sorted lists of ids, filled from the folders. */
struct id_entry {
	char		*id;
	long long	 key;		/* arrival or due, wall ms */
	int		 parsed;	/* okey and version are known */
	char		*okey;		/* NULL: not ordered */
	struct version	 version;
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
	const struct config *cfg;	/* ORDER's paths */
	void		(*log)(const char *, ...)
			    __attribute__((__format__(__printf__, 1, 2)));
};

#define QUEUE_WORK		0x1	/* claim events: take the lock */
#define QUEUE_WATCH		0x2	/* be told of new events */

int	 spool_queue_open(struct spool_queue *, struct queue *, const char *,
	    unsigned int, void (*)(const char *, ...), char *, size_t, int *);
int	 tmp_name_parse(const char *, char *, size_t, long *, char *);

/* pg.c: the store on PostgreSQL (DATABASE_URL). */
struct pg;
struct pg *pg_sink_open(const struct config *);
void	 pg_sink_close(struct pg *);
const char *pg_error(const struct pg *);
int	 pg_auth_failed(const struct pg *);
enum store_result pg_store(void *, const struct event *,
	    const struct request *, const char *, size_t, char *, size_t);
long	 pg_backlog(void *);
int	 pg_queue_open(struct queue *, const struct config *, unsigned int,
	    void (*)(const char *, ...), char *, size_t, int *);
int	 pg_migrate(const struct config *, char *, size_t, int *);

/* pq.c: libpq, loaded at start-up when DATABASE_URL is set, which it checks. */
int	 pq_load(const char *, char *, size_t);

/* deliver.c: nsps-deliver's scheduler. */
#define DPROG			"nsps-deliver"
#define TAIL_SIZE		2048	/* of the handler's stderr, kept */

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
};

int	 worker_init(struct worker *, const struct config *, struct queue *);
int	 worker_run(struct worker *, int);
enum outcome judge(const struct config *, int, int, size_t, long long,
	    char *, size_t);
long long backoff_delay(long long, long long, size_t, unsigned int);
long long now_ms(clockid_t);
unsigned long long proc_start_time(pid_t);
const struct route *route_find(const struct config *, const char *);
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
void	 metrics_worker(struct metrics *, int);
void	 metrics_queue(struct metrics *, const struct queue_count *);
enum delivery_result metrics_result(enum outcome, int);
int	 metrics_render(const struct metrics *, struct buf *);

#endif /* NSPS_EXTERN_H */
