/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Logging: one line per request on stderr, written with one write(2) so
 * lines from several processes sharing the web server's stderr never
 * interleave.  Text by default; JSON with the fields the NSPS logging
 * guide asks for.  Nothing from the request reaches the log unescaped.
 */
#include "config.h"

#include <sys/random.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

#define MAX_LOGGED_VALUE	256

static enum log_format	 log_format = LOG_TEXT;
static uint64_t		 id_state;
/* The line, reused: one per thread (a FastCGI process may have several). */
static _Thread_local struct buf text, json;

void
log_init(const struct config *cfg)
{
	log_format = cfg->log_format;
	/* Seeded once; generated ids need to be unique, not secret. */
	if (log_format == LOG_JSON &&
	    getrandom(&id_state, sizeof(id_state), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(id_state))
		id_state = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

/* splitmix64: cheap, and good enough to tell requests apart. */
static uint64_t
next_random(void)
{
	uint64_t	 z;

	z = __atomic_add_fetch(&id_state, 0x9e3779b97f4a7c15ULL,
	    __ATOMIC_RELAXED);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A UUID (version 4 layout) for requests that came without an id. */
static void
make_uuid(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t	 hi = next_random(), lo = next_random();
	size_t		 i, o = 0;
	unsigned	 nib;

	hi = (hi & ~0xf000ULL) | 0x4000ULL;
	lo = (lo & ~(0xcULL << 60)) | (0x8ULL << 60);
	for (i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		nib = i < 16 ? (unsigned)(hi >> (60 - 4 * i)) & 0xf :
		    (unsigned)(lo >> (60 - 4 * (i - 16))) & 0xf;
		out[o++] = hex[nib];
	}
	out[o] = '\0';
}

/*
 * Appends a value for a text line: backslash and control characters
 * escaped, so a value can never end the line or fake another one.
 */
static int
add_text_value(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char		 esc[4] = { '\\', 'x', 0, 0 };
	size_t		 i, j;
	unsigned char	 c;

	if (s == NULL)
		return buf_addc(b, '-');
	if (n > MAX_LOGGED_VALUE)
		n = MAX_LOGGED_VALUE;
	for (i = 0; i < n; i++) {
		/* A run of bytes that go as they are, in one copy. */
		for (j = i; j < n && (unsigned char)s[j] >= 0x20 &&
		    s[j] != 0x7f && s[j] != '\\'; j++)
			continue;
		if (j > i && buf_add(b, s + i, j - i) == -1)
			return -1;
		if ((i = j) == n)
			break;
		c = (unsigned char)s[i];
		if (c == '\\') {
			if (buf_adds(b, "\\\\") == -1)
				return -1;
		} else {
			esc[2] = hex[c >> 4];
			esc[3] = hex[c & 0xf];
			if (buf_add(b, esc, 4) == -1)
				return -1;
		}
	}
	return 0;
}

/* Values longer than this are cut in the log, whatever their source. */
static size_t
capped(size_t n)
{
	return n > MAX_LOGGED_VALUE ? MAX_LOGGED_VALUE : n;
}

static size_t
capped_len(const char *s)
{
	size_t	 n = s == NULL ? 0 : strnlen(s, MAX_LOGGED_VALUE + 1);

	return n > MAX_LOGGED_VALUE ? MAX_LOGGED_VALUE : n;
}

static int
text_line(struct buf *b, const struct log_record *r)
{
	const struct event *ev = r->event;
	int	 rc = 0;

	if (ev != NULL && (r->status == 202 || r->duplicate)) {
		if (r->duplicate) {
			rc |= buf_adds(b, "Duplicate event ");
			rc |= add_text_value(b, ev->event_id, ev->event_id_len);
			rc |= buf_adds(b, " already accepted: ");
		} else
			rc |= buf_adds(b, "Received event: ");
		rc |= add_text_value(b, ev->event_type, ev->event_type_len);
		rc |= buf_adds(b, " | bill status: ");
		rc |= add_text_value(b, ev->bill_status, ev->bill_status_len);
		/* Inline delivery says what became of it. */
		if (r->reason != NULL) {
			rc |= buf_adds(b, " | ");
			rc |= add_text_value(b, r->reason,
			    capped_len(r->reason));
		}
	} else {
		rc |= buf_adds(b, r->health == HEALTH_METRICS ?
		    "Metrics scrape " : r->health == HEALTH_CHECK ?
		    "Health check " : "Rejected ");
		rc |= add_text_value(b, r->method, capped_len(r->method));
		rc |= buf_addc(b, ' ');
		rc |= add_text_value(b, r->path, capped_len(r->path));
		rc |= buf_adds(b, ": ");
		rc |= buf_addu(b, (unsigned)r->status);
		if (r->type != NULL) {
			rc |= buf_addc(b, ' ');
			rc |= buf_adds(b, r->type);
		}
		if (r->reason != NULL) {
			rc |= buf_adds(b, ": ");
			rc |= add_text_value(b, r->reason,
			    capped_len(r->reason));
		}
	}
	rc |= buf_addc(b, '\n');
	return rc;
}

static int
add_time(struct buf *b)
{
	struct timespec	 ts;
	struct tm	 tm;
	char		 tmp[40];
	size_t		 n;
	int		 rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, ".%03ldZ",
	    ts.tv_nsec / 1000000);
	rc |= buf_adds(b, "{\"time\":\"");
	rc |= buf_add(b, tmp, n);
	rc |= buf_addc(b, '"');
	return rc;
}

static const char *
level_of(int status)
{
	if (status >= 500)
		return "\"error\"";
	return status >= 400 ? "\"warning\"" : "\"info\"";
}

/* Milliseconds with three decimals, from microseconds. */
static int
add_millis(struct buf *b, long long us)
{
	char	 frac[4];
	int	 rc = 0;

	if (us < 0)
		us = 0;
	frac[0] = '.';
	frac[1] = (char)('0' + us / 100 % 10);
	frac[2] = (char)('0' + us / 10 % 10);
	frac[3] = (char)('0' + us % 10);
	rc |= buf_addu(b, (unsigned long long)(us / 1000));
	rc |= buf_add(b, frac, sizeof(frac));
	return rc;
}

static int
json_line(struct buf *b, const struct buf *msg, const struct log_record *r)
{
	const struct event *ev = r->event;
	struct timespec	 now;
	char		 rid[37], uid[37];
	const char	*trace = r->trace_id, *unique = r->unique_id;
	int		 rc = 0;

	if (trace == NULL || *trace == '\0') {
		make_uuid(rid);
		trace = rid;
	}
	if (unique == NULL || *unique == '\0') {
		make_uuid(uid);
		unique = uid;
	}
	rc |= add_time(b);
	rc |= buf_adds(b, ",\"level\":");
	rc |= buf_adds(b, level_of(r->status));
	rc |= buf_add_json_field(b, "message", msg->data,
	    capped(msg->len));
	rc |= buf_adds(b, ",\"status\":");
	rc |= buf_addu(b, (unsigned)r->status);
	rc |= buf_add_json_field(b, "method", r->method, capped_len(r->method));
	rc |= buf_add_json_field(b, "path", r->path, capped_len(r->path));
	rc |= buf_add_json_field(b, "event_id", ev ? ev->event_id : NULL,
	    ev ? capped(ev->event_id_len) : 0);
	rc |= buf_add_json_field(b, "event_type", ev ? ev->event_type : NULL,
	    ev ? capped(ev->event_type_len) : 0);
	rc |= buf_add_json_field(b, "bill_status", ev ? ev->bill_status : NULL,
	    ev ? capped(ev->bill_status_len) : 0);
	rc |= buf_add_json_field(b, "request_id", trace, capped_len(trace));
	rc |= buf_add_json_field(b, "unique_id", unique, capped_len(unique));
	if (r->type != NULL)
		rc |= buf_add_json_field(b, "type", r->type,
		    capped(strlen(r->type)));
	if (r->reason != NULL)
		rc |= buf_add_json_field(b, "reason", r->reason,
		    capped_len(r->reason));
	clock_gettime(CLOCK_MONOTONIC, &now);
	rc |= buf_adds(b, ",\"duration_ms\":");
	rc |= add_millis(b, (now.tv_sec - r->start.tv_sec) * 1000000LL +
	    (now.tv_nsec - r->start.tv_nsec) / 1000);
	rc |= buf_adds(b, "}\n");
	return rc;
}

/*
 * Writes the line for one request.  Both buffers live as long as the
 * thread, so a request allocates nothing here after the first.
 */
void
log_request(const struct log_record *r)
{
	text.len = 0;
	if (text_line(&text, r) == -1)
		return;
	if (log_format == LOG_TEXT) {
		(void)write_all(STDERR_FILENO, text.data, text.len);
		return;
	}
	/* The JSON message is the text line without its newline. */
	text.data[--text.len] = '\0';
	json.len = 0;
	if (json_line(&json, &text, r) == 0)
		(void)write_all(STDERR_FILENO, json.data, json.len);
}

/* Frees the line buffers, so that tools see nothing left at exit. */
void
log_free(void)
{
	buf_free(&text);
	buf_free(&json);
}

/* A message about the program rather than a request (start-up, errors). */
void
log_msg(const char *fmt, ...)
{
	struct buf	 b = { 0 }, line = { 0 };
	char		 tmp[1024];
	va_list		 ap;
	int		 n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	if (log_format == LOG_TEXT) {
		if (buf_adds(&line, PROG ": ") == 0 &&
		    add_text_value(&line, tmp, (size_t)n) == 0 &&
		    buf_addc(&line, '\n') == 0)
			(void)write_all(STDERR_FILENO, line.data, line.len);
	} else {
		if (buf_adds(&b, PROG ": ") == 0 &&
		    buf_add(&b, tmp, (size_t)n) == 0 &&
		    add_time(&line) == 0 &&
		    buf_adds(&line, ",\"level\":\"error\"") == 0 &&
		    buf_add_json_field(&line, "message", b.data,
		    capped(b.len)) == 0 &&
		    buf_adds(&line, "}\n") == 0)
			(void)write_all(STDERR_FILENO, line.data, line.len);
	}
	buf_free(&b);
	buf_free(&line);
}
