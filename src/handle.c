/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * handle(): the whole NSPS contract for one request, with no I/O of its
 * own.  The order of checks is the contract:
 *
 *   configuration -> transport -> route -> method -> authentication ->
 *   length -> content type -> body -> JSON and fields -> sink -> 202
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "extern.h"

/* Refused bodies are read and thrown away up to this, see drain(). */
#define DRAIN_LIMIT	(16u * 1024 * 1024)
#define DRAIN_CHUNK	(64u * 1024)

/*
 * json-c moves to the C locale around every parse: duplocale() of the
 * thread's locale, newlocale() over it, freelocale() after.  The
 * connector never calls setlocale(), so its locale is C anyway; with
 * the C locale's own object as the thread's locale, the C library
 * answers all three at once instead of copying one per request.  Each
 * thread that parses calls it once.
 */
void
use_c_locale(void)
{
	locale_t	 c;

	if ((c = newlocale(LC_ALL_MASK, "C", (locale_t)0)) != (locale_t)0)
		uselocale(c);
}

int
state_init(struct state *st)
{
	memset(st, 0, sizeof(*st));
	if ((st->tok = json_tokener_new_ex(JSON_MAX_DEPTH)) == NULL)
		return -1;
	/* UTF-8 is checked, more strictly, by json_strict_scan(). */
	json_tokener_set_flags(st->tok, JSON_TOKENER_STRICT);
	return 0;
}

void
state_free(struct state *st)
{
	json_object_put(st->root);
	if (st->tok != NULL)
		json_tokener_free(st->tok);
	buf_free(&st->body);
	buf_free(&st->out);
	buf_free(&st->resp);
	buf_free(&st->details);
	buf_free(&st->path);
	memset(st, 0, sizeof(*st));
}

/* Sets the answer; reason goes to the log, error (if any) to the client. */
static void
reject(struct response *r, int status, const char *error,
    const char *reason)
{
	r->status = status;
	r->error = error;
	r->reason = reason;
}

/*
 * The request path is SCRIPT_NAME + PATH_INFO.  It matches a configured
 * path when it ends with it; configured paths start with '/', so the
 * match is always at a '/' boundary.  A connector mounted under a prefix
 * (/nsps/process-event, Apache's /cgi-bin/nsps-connector/process-event)
 * still finds its routes, and /process-event-x is no match.
 */
static int
path_matches(const char *path, size_t len, const char *want, size_t wlen)
{
	return len >= wlen && memcmp(path + len - wlen, want, wlen) == 0;
}

static const char *
build_path(struct state *st, const struct request *req)
{
	st->path.len = 0;
	if ((req->script_name != NULL &&
	    buf_adds(&st->path, req->script_name) == -1) ||
	    (req->path_info != NULL &&
	    buf_adds(&st->path, req->path_info) == -1) ||
	    buf_reserve(&st->path, 1) == -1)
		return NULL;
	if (st->path.len == 0)
		buf_addc(&st->path, '/');
	return st->path.data;
}

/*
 * application/json in any case, optionally followed by parameters
 * (";charset=utf-8").  An absent or empty Content-Type is accepted.
 */
static int
content_type_ok(const char *ct)
{
	size_t	 n = sizeof("application/json") - 1;

	if (ct == NULL)
		return 1;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (*ct == '\0')
		return 1;
	if (strncasecmp(ct, "application/json", n) != 0)
		return 0;
	for (ct += n; *ct == ' ' || *ct == '\t'; ct++)
		continue;
	return *ct == '\0' || *ct == ';';
}

/*
 * Reads and discards a body that was refused unread, up to a bound, so
 * the web server can finish sending it and the client sees our answer
 * instead of a reset connection.  Apache's mod_cgid resets it even for
 * a few bytes left unread (the unix socket to the program is closed
 * with data in it), so every answer that did not read the body drains
 * it, whatever the status.
 */
static void
drain(struct state *st, const struct request *req)
{
	size_t	 declared, n;

	if (req->content_length == NULL ||
	    parse_size(req->content_length, SIZE_MAX, &declared) == -1)
		return;
	if (declared > DRAIN_LIMIT)
		declared = DRAIN_LIMIT;
	if (buf_reserve(&st->body, DRAIN_CHUNK) == -1)
		return;
	while (declared > 0) {
		n = declared < DRAIN_CHUNK ? declared : DRAIN_CHUNK;
		if (req->read_body(req->read_ctx, st->body.data, n) == -1)
			return;
		declared -= n;
	}
}

/*
 * Whether the body's length is left to the end of the stream: no
 * CONTENT_LENGTH, an empty one (RFC 3875 4.1.2), or the -1 Caddy sends
 * for a chunked body.  Only FastCGI marks that end; under CGI a
 * missing length stays a 411 and -1 a 400.
 */
static int
length_unknown(const struct request *req)
{
	const char	*cl = req->content_length;

	return cl == NULL || *cl == '\0' ||
	    (req->read_to_end != NULL && strcmp(cl, "-1") == 0);
}

/*
 * Reads a body of unknown length to its end into st->body, which it
 * leaves NUL-terminated.  Returns 0, or -1 with the answer set in r;
 * past the limit the rest is left to finish_stdin(), which closes the
 * connection rather than keep it when much is left.
 */
static int
read_unsized(const struct config *cfg, struct state *st,
    const struct request *req, struct response *r)
{
	switch (req->read_to_end(req->read_ctx, &st->body, cfg->max_body)) {
	case 0:
		return 0;
	case 1:
		snprintf(r->reason_buf, sizeof(r->reason_buf),
		    "body without Content-Length is over the limit of %zu",
		    cfg->max_body);
		reject(r, 413, NULL, r->reason_buf);
		return -1;
	case -2:
		reject(r, 500, "Out of memory", "out of memory for the body");
		return -1;
	default:
		reject(r, 400, "Unreadable body",
		    "body without Content-Length could not be read");
		return -1;
	}
}

/* Returns 1 when the body was read, 0 when handle() must drain it. */
static int
check_event(const struct config *cfg, const struct sink *sink,
    struct state *st, const struct request *req, struct response *r)
{
	size_t			 len;
	enum event_result	 er;
	enum store_result	 sr;
	int			 unsized;

	if ((r->reason = auth_check(cfg, req->authorization)) != NULL) {
		r->status = 401;
		r->extra = "WWW-Authenticate: Bearer\r\n";
		return 0;
	}
	if ((unsized = length_unknown(req)) && req->read_to_end == NULL) {
		reject(r, 411, NULL, "no Content-Length");
		return 0;
	}
	if (unsized)
		len = 0;
	else if (parse_size(req->content_length, SIZE_MAX, &len) == -1) {
		reject(r, 400, "Invalid Content-Length",
		    "Content-Length is not a decimal number");
		return 0;
	}
	if (len > cfg->max_body) {
		snprintf(r->reason_buf, sizeof(r->reason_buf),
		    "body of %zu bytes is over the limit of %zu", len,
		    cfg->max_body);
		reject(r, 413, NULL, r->reason_buf);
		return 0;
	}
	if (!content_type_ok(req->content_type)) {
		reject(r, 415, NULL, "Content-Type is not application/json");
		return 0;
	}

	st->body.len = 0;
	if (unsized) {
		if (read_unsized(cfg, st, req, r) == -1)
			return 1;
		len = st->body.len;
	} else {
		if (buf_reserve(&st->body, len) == -1) {
			reject(r, 500, "Out of memory",
			    "out of memory for the body");
			return 0;
		}
		if (len > 0 &&
		    req->read_body(req->read_ctx, st->body.data, len) == -1) {
			reject(r, 400, "Body shorter than Content-Length",
			    "body ended before Content-Length bytes");
			return 1;
		}
		st->body.len = len;
		st->body.data[len] = '\0';
	}

	er = event_parse(cfg, sink, st, st->body.data, len, &st->details,
	    r->reason_buf, sizeof(r->reason_buf));
	if (er == EVENT_NOMEM) {
		reject(r, 500, "Out of memory", "out of memory while parsing");
		return 1;
	}
	if (er != EVENT_OK) {
		reject(r, 422, NULL, r->reason_buf);
		r->details = st->details.data;
		return 1;
	}
	st->have_event = 1;
	r->status = 202;
	if (sink->store == NULL)
		return 1;
	sr = sink->store(sink->ctx, &st->event, req, st->body.data, len,
	    r->reason_buf, sizeof(r->reason_buf));
	if (sr == STORE_DUPLICATE) {
		r->status = 200;
		r->duplicate = 1;
	} else if (sr == STORE_FAILED) {
		reject(r, 503, NULL, r->reason_buf);
		r->extra = "Retry-After: 30\r\n";
	}
	/* A duplicate not yet done is delivered too: NSPS asks again. */
	if (sr != STORE_FAILED && sink->deliver != NULL)
		sink->deliver(sink->deliver_ctx, &st->event,
		    sr == STORE_DUPLICATE, r);
	return 1;
}

/*
 * The metrics path: GET or HEAD, no token, like the health check.  It
 * reveals counts only.  Without a counters file there is nothing to
 * show, and the scrape fails visibly.
 */
static int
scrape(const struct sink *sink, const char *m, struct response *r)
{
	if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
		reject(r, 405, NULL, "metrics take GET or HEAD");
		r->extra = "Allow: GET, HEAD\r\n";
	} else if (sink->metrics == NULL || sink->metrics->f == NULL) {
		reject(r, 503, "Metrics unavailable", sink->metrics == NULL ?
		    "no counters: set METRICS_DIR or SPOOL_DIR" :
		    sink->metrics->error);
	} else {
		r->status = 200;
		r->health = HEALTH_METRICS;
		r->metrics = sink->metrics;
	}
	return 0;
}

/* Returns 1 when the body was read, 0 when handle() must drain it. */
static int
route(const struct config *cfg, const struct sink *sink, struct state *st,
    const struct request *req, struct response *r)
{
	const char	*path = st->path.data, *m = req->method;
	size_t		 len = st->path.len;

	if (req->transport_error != NULL) {
		reject(r, 400, NULL, req->transport_error);
		return 0;
	}
	if (path_matches(path, len, cfg->health_path, cfg->health_path_len)) {
		if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
			r->status = 200;
			r->health = HEALTH_CHECK;
			if (sink->backlog != NULL)
				r->backlog = sink->backlog(sink->ctx);
			/* -2: the store cannot be reached. */
			if (r->backlog == -2)
				r->status = 503;
		} else {
			reject(r, 405, NULL, "health check takes GET or HEAD");
			r->extra = "Allow: GET, HEAD\r\n";
		}
		return 0;
	}
	if (cfg->metrics_path != NULL && path_matches(path, len,
	    cfg->metrics_path, cfg->metrics_path_len))
		return scrape(sink, m, r);
	if (!path_matches(path, len, cfg->event_path, cfg->event_path_len)) {
		reject(r, 404, NULL, "no such path");
		return 0;
	}
	if (strcmp(m, "POST") != 0) {
		reject(r, 405, NULL, "events take POST");
		r->extra = "Allow: POST\r\n";
		return 0;
	}
	return check_event(cfg, sink, st, req, r);
}

/* Builds the response body and the whole CGI response in st->out. */
static void
render(struct state *st, const struct request *req, struct response *r)
{
	struct buf	*b = &st->resp;
	int		 head = strcmp(req->method, "HEAD") == 0;

	b->len = 0;
	if (r->status == 202 && r->message != NULL) {
		buf_adds(b, "{\"message\":");
		buf_add_json_string(b, r->message, strlen(r->message));
		buf_addc(b, '}');
	} else if (r->status == 202)
		buf_adds(b, "{\"message\":\"Event accepted for processing\"}");
	else if (r->duplicate)
		buf_adds(b, "{\"message\":\"Event already accepted\"}");
	else if (r->health == HEALTH_CHECK && r->backlog >= 0) {
		buf_adds(b, "{\"status\":\"ok\",\"spool_backlog\":");
		buf_addu(b, (unsigned long long)r->backlog);
		buf_addc(b, '}');
	} else if (r->metrics != NULL) {
		if (metrics_render(r->metrics, b) == -1)
			b->len = 0;
	} else if (r->health == HEALTH_CHECK && r->backlog == -2)
		buf_adds(b, "{\"status\":\"store unreachable\"}");
	else if (r->health == HEALTH_CHECK)
		buf_adds(b, "{\"status\":\"ok\"}");
	else
		response_body(b, r->status, r->message, r->error, r->type,
		    r->details);
	if (response_render_type(&st->out, r->status, r->metrics != NULL ?
	    "text/plain; version=0.0.4" : "application/json", r->extra, b,
	    head) == -1 || (r->metrics != NULL && b->len == 0)) {
		/* Out of memory: nothing is sent; the server answers 502. */
		st->out.len = 0;
		r->status = 500;
		r->reason = "out of memory for the response";
	}
}

void
handle(const struct config *cfg, const struct sink *sink, struct state *st,
    const struct request *req, struct response *r, struct log_record *rec)
{
	int	 consumed = 0;

	memset(r, 0, sizeof(*r));
	r->backlog = -1;
	memset(rec, 0, sizeof(*rec));
	clock_gettime(CLOCK_MONOTONIC, &rec->start);
	json_object_put(st->root);
	st->root = NULL;
	st->have_event = 0;

	if (build_path(st, req) == NULL)
		reject(r, 500, "Out of memory", "out of memory for the path");
	else if (cfg->error[0] != '\0')
		reject(r, 500, "Server configuration error", cfg->error);
	else
		consumed = route(cfg, sink, st, req, r);
	if (!consumed)
		drain(st, req);
	render(st, req, r);

	rec->status = r->status;
	rec->type = r->status < 400 ? NULL : r->type != NULL ? r->type :
	    status_type(r->status);
	rec->reason = r->reason;
	rec->method = req->method;
	rec->path = st->path.data;
	rec->event = st->have_event ? &st->event : NULL;
	rec->trace_id = req->trace_id;
	rec->unique_id = req->unique_id;
	rec->duplicate = r->duplicate;
	rec->health = r->health;
}
