/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The malformed corpus: a deterministic generator of hostile requests,
 * each marked valid or invalid, and a runner that sends every one to
 * the connector, through CGI (one process per request) or to a
 * long-lived FastCGI process on a unix socket (tests/lib/fcgi-client.c).
 * Written in C, not a script: it has to produce NUL bytes, invalid
 * UTF-8 and multi-megabyte bodies exactly, keep 10,000 requests within
 * a couple of minutes, enforce a 1 s deadline on each, and needs
 * nothing but the compiler and json-c the build already has.
 *
 * usage: malformed cgi connector count
 *        malformed fcgi socket count
 *        malformed token
 * The last prints the token the corpus's valid requests carry, for
 * whoever starts the FastCGI process (tests/malformed.bats, which also
 * watches that process's fds and RSS).
 *
 * Checks for every request: no crash (signal), no hang over 5 s, a
 * well-formed CGI response (Status line, Content-Type:
 * application/json, Content-Length equal to the body) whose body is a
 * JSON object, no 2xx for an invalid request and 202 for a valid one.
 *
 * Duplicate object keys: RFC 8259 says names SHOULD be unique and
 * leaves the rest to the parser.  The connector, like json-c,
 * JavaScript's JSON.parse and Python's json, keeps the last value, and
 * validates that one: a duplicate is valid when the value kept is.
 */
#include "config.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fcgi-client.h"

#define TOKEN		"malformed-corpus-token-71c3"
#define MAX_BODY	(2u * 1024 * 1024)	/* the connector's default */
/*
 * A hang is an answer that never comes; the bound is not a speed.  1 s
 * was once exceeded by one CGI exec under ASan at a load average of 8.
 */
#define DEADLINE_MS	5000
#define NFIELDS		8

static const char *const field_name[NFIELDS] = {
	"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "HTTP_AUTHORIZATION",
	"CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_X_B3_TRACEID",
	"HTTP_X_REQUEST_ID",
};
enum { F_METHOD, F_SCRIPT, F_PATH, F_AUTH, F_CTYPE, F_CLEN, F_TRACE, F_UID };

struct kase {
	char		*f[NFIELDS];	/* NULL: not set */
	struct fcgi_buf	 body;
	int		 valid;
	int		 auto_len;	/* CONTENT_LENGTH = body length */
	/*
	 * CONTENT_LENGTH absent, empty or -1: through FastCGI the body is
	 * read to the end of its stream, so the request is valid there;
	 * CGI has no such end and refuses it.
	 */
	int		 unknown_len;
	const char	*what;
};

struct counts {
	unsigned long	 total, valid, invalid, crashes, hangs, malformed,
			 invalid_2xx, valid_refused, status[600];
};

static uint64_t	 rng_state;

static void
die(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	fprintf(stderr, "malformed: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* xorshift64*: the same sequence on every machine. */
static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static size_t
pick(size_t n)
{
	return (size_t)(rnd() % n);
}

static void
cb_adds(struct fcgi_buf *b, const char *s)
{
	fcgi_buf_add(b, s, strlen(s));
}

static void
cb_printf(struct fcgi_buf *b, const char *fmt, ...)
{
	char	*tmp;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&tmp, fmt, ap);
	va_end(ap);
	if (n == -1)
		die("out of memory");
	fcgi_buf_add(b, tmp, (size_t)n);
	free(tmp);
}

static void
cb_repeat(struct fcgi_buf *b, const char *s, size_t times)
{
	while (times-- > 0)
		cb_adds(b, s);
}

static char *
xstrdup(const char *s)
{
	char	*d;

	if ((d = strdup(s)) == NULL)
		die("out of memory");
	return d;
}

/* A string of n copies of c. */
static char *
fill(char c, size_t n)
{
	char	*s;

	if ((s = malloc(n + 1)) == NULL)
		die("out of memory");
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
set(struct kase *k, int f, const char *v)
{
	free(k->f[f]);
	k->f[f] = v != NULL ? xstrdup(v) : NULL;
}

/*
 * An NSPS event.  type and bill are JSON texts for data.event_type and
 * pb_data.account_info.bill_status (NULL: key left out); extra is
 * appended as more members of the top-level object.
 */
static void
event(struct fcgi_buf *b, const char *type, const char *bill, const char *extra)
{
	cb_printf(b, "{\"event_id\":\"ev-%llu\",\"data\":{",
	    (unsigned long long)pick(1000000));
	if (type != NULL)
		cb_printf(b, "\"event_type\":%s,", type);
	cb_adds(b, "\"object\":\"SIM\"},\"pb_data\":{\"account_info\":{");
	if (bill != NULL)
		cb_printf(b, "\"bill_status\":%s,", bill);
	cb_adds(b, "\"i_account\":42}}");
	if (extra != NULL)
		cb_adds(b, extra);
	cb_adds(b, "}");
}

static void
valid_event(struct fcgi_buf *b, const char *extra)
{
	static const char *const types[] = {
		"\"SIM/Updated\"", "\"SIM/Replaced\"", "\"Account/Unblocked\"",
		"\"\\u0053IM/Updated\"", "\"t\\u00e9st/\\ud83d\\ude00\"",
	};
	static const char *const bills[] = {
		"\"open\"", "\"suspended\"", "\"terminated\"", "\"ferm\\u00e9\"",
	};

	event(b, types[pick(5)], bills[pick(4)], extra);
}

/* The request of a well-behaved sender; callers then spoil one thing. */
static void
base(struct kase *k, const char *what)
{
	memset(k, 0, sizeof(*k));
	k->what = what;
	k->valid = 1;
	k->auto_len = 1;
	set(k, F_METHOD, "POST");
	if (pick(2)) {
		set(k, F_SCRIPT, "/process-event");
	} else {
		set(k, F_SCRIPT, "");
		set(k, F_PATH, "/process-event");
	}
	set(k, F_AUTH, "Bearer " TOKEN);
	set(k, F_CTYPE, "application/json");
}

static void
kase_free(struct kase *k)
{
	size_t	 i;

	for (i = 0; i < NFIELDS; i++)
		free(k->f[i]);
	free(k->body.p);
	memset(k, 0, sizeof(*k));
}

/* Valid requests with unusual but legal content. */
static void
gen_valid(struct kase *k, size_t v)
{
	static const char *const extras[] = {
		",\"n\":[-0,1e999,-1e999,12345678901234567890,-12345678901234567890,1E+2,-1.5e-7,0]",
		",\"s\":\"\\u0000 \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\ud800\"",
		",\"u\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xef\xbb\xbf\"",
		",\"\xe9\x94\xae\":{\"\":[]}",
		",\"x\":1,\"x\":2,\"x\":[3],\"x\":{\"x\":\"x\"}",
		",\"pb_data\":{\"account_info\":{\"bill_status\":5}},"
		    "\"pb_data\":{\"account_info\":{\"bill_status\":\"open\"}}",
		",\"a\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
		",\"t\":[true,false,null,{},[],\"\"]",
	};
	struct fcgi_buf	 ws = { 0 };

	base(k, "valid");
	switch (v % 4) {
	case 0:
		valid_event(&k->body, extras[pick(8)]);
		break;
	case 1:
		/* Blanks of every allowed kind around every token. */
		cb_adds(&k->body, " \t\r\n{ \"data\" :\t{\n\"event_type\"\r\n:"
		    " \"SIM/Updated\" } ,\t\"pb_data\":{ \"account_info\" : "
		    "{\"bill_status\":\"open\"}\t}\n}\n\t ");
		break;
	case 2:
		cb_repeat(&ws, " \t\n", 1 + pick(2000));
		cb_printf(&k->body, "%s{%s\"data\":{\"event_type\":\"X\"},%s"
		    "\"pb_data\":{\"account_info\":{\"bill_status\":\"open\"}}%s}%s",
		    ws.p, ws.p, ws.p, ws.p, ws.p);
		break;
	default:
		valid_event(&k->body, NULL);
		set(k, F_TRACE, pick(2) ? "0af7651916cd43dd8448eb211c80319c" :
		    "trace \t \xff\x01 \"quoted\" \\ done");
		set(k, F_UID, "req\nid\r\n injected: yes");
		break;
	}
	free(ws.p);
}

static void
gen_clen(struct kase *k, size_t v)
{
	static const char *const bad[] = {
		"-1", "-0", "+12", " 12", "12 ", "0x10", "1e3", "", "12.0",
		"99999999999999999999999", "18446744073709551616",
		"18446744073709551615", "\xd9\xa1\xd9\xa2", "1,2", "\t5",
	};
	const char *b;
	char	 n[64];

	base(k, "content-length");
	valid_event(&k->body, NULL);
	k->auto_len = 0;
	k->valid = 0;
	switch (v % 8) {
	case 0:
		b = bad[pick(sizeof(bad) / sizeof(bad[0]))];
		set(k, F_CLEN, b);
		k->unknown_len = strcmp(b, "-1") == 0 || *b == '\0';
		break;
	case 1:		/* shorter than the body: a prefix is never JSON */
		snprintf(n, sizeof(n), "%zu", pick(k->body.len));
		set(k, F_CLEN, n);
		break;
	case 2:		/* longer than the body: the body ends early */
		snprintf(n, sizeof(n), "%zu", k->body.len + 1 + pick(5000));
		set(k, F_CLEN, n);
		break;
	case 3:
		set(k, F_CLEN, NULL);
		k->unknown_len = 1;
		break;
	case 4:
		snprintf(n, sizeof(n), "%u", MAX_BODY + 1 + (unsigned)pick(1u << 30));
		set(k, F_CLEN, n);
		break;
	case 5:		/* leading zeros are still 1*DIGIT */
		snprintf(n, sizeof(n), "000%zu", k->body.len);
		set(k, F_CLEN, n);
		k->valid = 1;
		break;
	case 6:
		set(k, F_CLEN, "0");
		break;
	default:	/* the body is the size it says, but over the limit */
		k->body.len = 0;
		cb_adds(&k->body, "{\"pad\":\"");
		cb_repeat(&k->body, "x", MAX_BODY);
		cb_adds(&k->body, "\"}");
		k->auto_len = 1;
		break;
	}
}

static void
gen_truncated(struct kase *k, size_t v)
{
	(void)v;
	base(k, "truncated body");
	valid_event(&k->body, pick(2) ? ",\"s\":\"abc\\u00e9\",\"n\":[1,2]" :
	    NULL);
	k->body.len = pick(k->body.len);
	k->valid = 0;
}

static void
gen_nesting(struct kase *k, size_t v)
{
	static const size_t depth[] = { 30, 31, 100, 1000, 10000, 20000, 50000 };
	struct fcgi_buf	 x = { 0 };
	size_t		 d = depth[v % 7];
	int		 obj = (v / 7) % 2, closed = (v / 14) % 2;

	base(k, "nesting");
	cb_adds(&x, ",\"deep\":");
	cb_repeat(&x, obj ? "{\"a\":" : "[", d);
	cb_adds(&x, "1");
	if (closed)
		cb_repeat(&x, obj ? "}" : "]", d);
	valid_event(&k->body, x.p);
	/*
	 * json-c's limit of 32 levels counts the top-level object and the
	 * innermost scalar: 30 containers in between is the most it takes.
	 */
	k->valid = closed && d <= 30;
	free(x.p);
}

static void
gen_huge(struct kase *k, size_t v)
{
	struct fcgi_buf	 x = { 0 };
	char		*s;

	base(k, "huge");
	switch (v % 8) {
	case 0:		/* 1 MiB string value */
		s = fill('a', 1u << 20);
		cb_printf(&x, ",\"big\":\"");
		cb_adds(&x, s);
		cb_adds(&x, "\"");
		free(s);
		valid_event(&k->body, x.p);
		break;
	case 1:		/* 1 MiB key */
		s = fill('k', 1u << 20);
		cb_adds(&x, ",\"");
		cb_adds(&x, s);
		cb_adds(&x, "\":0");
		free(s);
		valid_event(&k->body, x.p);
		break;
	case 2:		/* just under the limit */
		valid_event(&k->body, ",\"pad\":\"");
		k->body.len--;		/* drop the closing brace */
		cb_repeat(&k->body, "y", MAX_BODY - k->body.len - 2);
		cb_adds(&k->body, "\"}");
		break;
	case 3:		/* one byte over the limit */
		valid_event(&k->body, ",\"pad\":\"");
		k->body.len--;
		cb_repeat(&k->body, "y", MAX_BODY - k->body.len - 1);
		cb_adds(&k->body, "\"}");
		k->valid = 0;
		break;
	case 4:		/* 100,000 array elements */
		cb_adds(&x, ",\"many\":[0");
		cb_repeat(&x, ",1", 100000);
		cb_adds(&x, "]");
		valid_event(&k->body, x.p);
		break;
	case 5:		/* 1 MiB required string */
		s = fill('o', 1u << 20);
		cb_printf(&x, "\"%s\"", s);
		free(s);
		event(&k->body, "\"SIM/Updated\"", x.p, NULL);
		break;
	case 6:		/* 20,000 keys */
		{
			size_t	 i;

			for (i = 0; i < 20000; i++)
				cb_printf(&x, ",\"k%zu\":%zu", i, i);
		}
		valid_event(&k->body, x.p);
		break;
	default:	/* a huge string that never ends */
		s = fill('z', 1u << 20);
		cb_adds(&x, ",\"open\":\"");
		cb_adds(&x, s);
		free(s);
		valid_event(&k->body, NULL);
		k->body.len--;
		cb_adds(&k->body, x.p);
		k->valid = 0;
		break;
	}
	free(x.p);
}

static void
gen_utf8(struct kase *k, size_t v)
{
	static const char *const bad[] = {
		"\xff", "\xfe", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80",
		"\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80",
		"\xf5\x80\x80\x80", "\xe2\x82", "\x80", "\xbf", "\xf0\x9f\x98",
		"\xc3", "\xf8\x88\x80\x80\x80",
	};
	struct fcgi_buf	 x = { 0 };
	const char	*b = bad[pick(sizeof(bad) / sizeof(bad[0]))];

	base(k, "invalid utf-8");
	k->valid = 0;
	switch (v % 4) {
	case 0:
		cb_printf(&x, ",\"s\":\"ok %s ok\"", b);
		valid_event(&k->body, x.p);
		break;
	case 1:
		cb_printf(&x, ",\"%s\":1", b);
		valid_event(&k->body, x.p);
		break;
	case 2:
		cb_printf(&x, "\"open%s\"", b);
		event(&k->body, "\"SIM/Updated\"", x.p, NULL);
		break;
	default:	/* outside any string */
		cb_printf(&x, ",\"s\":1%s", b);
		valid_event(&k->body, x.p);
		break;
	}
	free(x.p);
}

static void
gen_bom(struct kase *k, size_t v)
{
	base(k, "byte order mark");
	k->valid = 0;
	switch (v % 4) {
	case 0:
		cb_adds(&k->body, "\xef\xbb\xbf");
		break;
	case 1:
		cb_adds(&k->body, "\xff\xfe");
		break;
	case 2:
		cb_adds(&k->body, "\xfe\xff");
		break;
	default:	/* inside a string, U+FEFF is just a character */
		k->valid = 1;
		valid_event(&k->body, ",\"s\":\"\xef\xbb\xbf\"");
		return;
	}
	valid_event(&k->body, NULL);
}

static void
gen_nul(struct kase *k, size_t v)
{
	size_t	 at;

	base(k, "NUL byte");
	k->valid = 0;
	switch (v % 3) {
	case 0:		/* a raw NUL anywhere */
		valid_event(&k->body, NULL);
		at = pick(k->body.len);
		k->body.p[at] = '\0';
		break;
	case 1:
		event(&k->body, "\"SIM/Updated\"", "\"op\\u0000en\"", NULL);
		break;
	default:
		event(&k->body, "\"\\u0000\"", "\"open\"", NULL);
		break;
	}
}

static void
gen_dupkeys(struct kase *k, size_t v)
{
	static const struct {
		const char	*extra;
		int		 valid;
	} d[] = {
		{ ",\"pb_data\":{\"account_info\":{\"bill_status\":5}}", 0 },
		{ ",\"pb_data\":{\"account_info\":{\"bill_status\":\"\"}}", 0 },
		{ ",\"data\":{}", 0 },
		{ ",\"data\":{\"event_type\":\"A\"},\"data\":null", 0 },
		{ ",\"data\":{\"event_type\":\"Other\"}", 1 },
		{ ",\"pb_data\":{\"account_info\":{\"bill_status\":\"closed\"}}", 1 },
		{ ",\"event_id\":1,\"event_id\":\"e\"", 1 },
	};
	size_t	 i = v % (sizeof(d) / sizeof(d[0]));

	base(k, "duplicate keys");
	valid_event(&k->body, d[i].extra);
	k->valid = d[i].valid;
}

static void
gen_numbers(struct kase *k, size_t v)
{
	static const char *const badnum[] = {
		"1.", "-.5", ".5", "01", "-01", "+1", "1e", "1e+", "0x10",
		"NaN", "Infinity", "-Infinity", "1_000", "1.e5", "0.",
		"--1", "1..2", "1e5e5", "- 1",
	};
	static const char *const goodnum[] = {
		"1e999", "-0", "12345678901234567890", "-99999999999999999999",
		"0.0000000000000000000001", "1E-400", "-0.0e+0",
	};
	struct fcgi_buf	 x = { 0 };

	base(k, "numbers");
	switch (v % 3) {
	case 0:
		cb_printf(&x, ",\"n\":%s", goodnum[pick(7)]);
		valid_event(&k->body, x.p);
		break;
	case 1:
		cb_printf(&x, ",\"n\":[1,%s]", badnum[pick(19)]);
		valid_event(&k->body, x.p);
		k->valid = 0;
		break;
	default:	/* a number where a string is required */
		if (pick(2))
			event(&k->body, goodnum[pick(7)], "\"open\"", NULL);
		else
			event(&k->body, "\"SIM/Updated\"", goodnum[pick(7)], NULL);
		k->valid = 0;
		break;
	}
	free(x.p);
}

/* Every required field, and every object on its way, of every wrong type. */
static void
gen_types(struct kase *k, size_t v)
{
	static const char *const wrong[] = {
		"1", "-0", "1e999", "true", "false", "null", "[]", "[\"open\"]",
		"{}", "{\"open\":1}", "\"\"",
	};
	const char	*w = wrong[pick(11)];

	base(k, "wrong type");
	k->valid = 0;
	switch (v % 6) {
	case 0:
		event(&k->body, w, "\"open\"", NULL);
		break;
	case 1:
		event(&k->body, "\"SIM/Updated\"", w, NULL);
		break;
	case 2:
		cb_printf(&k->body, "{\"data\":%s,\"pb_data\":{\"account_info\":"
		    "{\"bill_status\":\"open\"}}}", strcmp(w, "\"\"") ? w : "\"x\"");
		break;
	case 3:
		cb_printf(&k->body, "{\"data\":{\"event_type\":\"X\"},"
		    "\"pb_data\":%s}", strcmp(w, "\"\"") ? w : "\"x\"");
		break;
	case 4:
		cb_printf(&k->body, "{\"data\":{\"event_type\":\"X\"},"
		    "\"pb_data\":{\"account_info\":%s}}", strcmp(w, "\"\"") ? w :
		    "\"x\"");
		break;
	default:	/* the whole body */
		cb_adds(&k->body, pick(2) ? w : "[{\"data\":{\"event_type\":\"X\"}}]");
		break;
	}
}

static void
gen_auth(struct kase *k, size_t v)
{
	static const struct {
		const char	*value;
		int		 valid;
	} a[] = {
		{ "bearer " TOKEN, 1 },
		{ "BEARER " TOKEN, 1 },
		{ "Bearer      " TOKEN, 1 },
		{ "Bearer " TOKEN "   \t \t", 1 },
		{ "Bearer\t" TOKEN, 0 },
		{ " Bearer " TOKEN, 0 },
		{ "Bearer", 0 },
		{ "Bearer ", 0 },
		{ "", 0 },
		{ "Basic " TOKEN, 0 },
		{ "Bearer " TOKEN "x", 0 },
		{ "Bearer x" TOKEN, 0 },
		{ "Bearer " TOKEN " " TOKEN, 0 },
		{ "Bearer malformed-corpus-token-71c4", 0 },
		{ "Bearer malformed-corpus-token-71c", 0 },
		{ "Bearer malformed\xc3\xa9" "corpus-token-71c3", 0 },
		{ "Bearer \xff\xfe", 0 },
		{ "Bearer " TOKEN "\x01", 0 },
		{ "Bearer\xc2\xa0" TOKEN, 0 },
		{ NULL, 0 },
	};
	struct fcgi_buf	 x = { 0 };
	size_t		 i = v % 22;

	base(k, "authorization");
	valid_event(&k->body, NULL);
	if (i < 20) {
		set(k, F_AUTH, a[i].value);
		k->valid = a[i].valid;
		return;
	}
	/* Very long: 1 KiB + 1 up to 100 KiB of token characters. */
	cb_adds(&x, "Bearer ");
	cb_repeat(&x, i == 20 ? "A" : "abcdefghij", i == 20 ? 1025 :
	    1 + pick(10000));
	if (i == 21)
		cb_adds(&x, TOKEN);
	set(k, F_AUTH, x.p);
	k->valid = 0;
	free(x.p);
}

static void
gen_method(struct kase *k, size_t v)
{
	static const char *const m[] = {
		"GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "CONNECT",
		"TRACE", "post", "Post", "FOO", "", "POST ", " POST", "POS",
		"POSTT", "P\xc3\x96ST", "POST\tX", NULL,
	};
	char	*longm;

	base(k, "method");
	valid_event(&k->body, NULL);
	k->valid = 0;
	if (v % 20 == 19) {
		longm = fill('P', 1000 + pick(10000));
		set(k, F_METHOD, longm);
		free(longm);
	} else
		set(k, F_METHOD, m[v % 20]);
	if (k->f[F_METHOD] == NULL)
		set(k, F_METHOD, "");
}

static void
gen_path(struct kase *k, size_t v)
{
	static const struct {
		const char	*script, *path;
		int		 valid;
	} p[] = {
		{ "/", NULL, 0 },
		{ "", "", 0 },
		{ NULL, NULL, 0 },
		{ "/process", NULL, 0 },
		{ "/process-events", NULL, 0 },
		{ "/Process-Event", NULL, 0 },
		{ "/PROCESS-EVENT", NULL, 0 },
		{ "/process-event/", NULL, 0 },
		{ "/process-eventx", NULL, 0 },
		{ "/aprocess-event", NULL, 0 },
		{ "", "process-event", 0 },
		{ "/health", NULL, 0 },
		{ "/process-event", "/x", 0 },
		{ "/process-event%00", NULL, 0 },
		{ "/process\xff" "event", NULL, 0 },
		{ "/process\tevent", NULL, 0 },
		{ "/cgi-bin/nsps-connector", "/process-event", 1 },
		{ "/nsps", "/process-event", 1 },
		{ "/a/b/c/process-event", NULL, 1 },
		{ "", "//process-event", 1 },
	};
	char	*longp;
	size_t	 i = v % 21;

	base(k, "path");
	valid_event(&k->body, NULL);
	if (i == 20) {
		longp = fill('/', 1 + pick(60000));
		set(k, F_SCRIPT, longp);
		set(k, F_PATH, NULL);
		free(longp);
		k->valid = 0;
		return;
	}
	set(k, F_SCRIPT, p[i].script);
	set(k, F_PATH, p[i].path);
	k->valid = p[i].valid;
}

static void
gen_ctype(struct kase *k, size_t v)
{
	static const struct {
		const char	*value;
		int		 valid;
	} c[] = {
		{ "application/json", 1 },
		{ "APPLICATION/JSON", 1 },
		{ "application/json;charset=utf-8", 1 },
		{ "application/json ; charset=\"UTF-8\"", 1 },
		{ "  \tapplication/json", 1 },
		{ "", 1 },
		{ NULL, 1 },
		{ "text/plain", 0 },
		{ "application/jsonx", 0 },
		{ "application/json , text/plain", 0 },
		{ "application/xml", 0 },
		{ "multipart/form-data; boundary=x", 0 },
		{ "application/x-www-form-urlencoded", 0 },
		{ "application/js", 0 },
		{ "application/json\xc2\xa0", 0 },
		{ "json", 0 },
	};
	size_t	 i = v % 16;

	base(k, "content-type");
	valid_event(&k->body, NULL);
	set(k, F_CTYPE, c[i].value);
	k->valid = c[i].valid;
}

/* Trace headers are copied to the log only: any value is harmless. */
static void
gen_trace(struct kase *k, size_t v)
{
	char	*big;

	base(k, "trace headers");
	valid_event(&k->body, NULL);
	switch (v % 4) {
	case 0:
		big = fill('t', 1 + pick(100000));
		set(k, F_TRACE, big);
		set(k, F_UID, big);
		free(big);
		break;
	case 1:
		set(k, F_TRACE, "\xff\xfe\xc0\x80\x1b[31mred\x1b[0m");
		set(k, F_UID, "\t\t  spaced \t out  \t");
		break;
	case 2:
		set(k, F_TRACE, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
		set(k, F_UID, "\"},{\"injected\":true");
		break;
	default:
		set(k, F_TRACE, "");
		set(k, F_UID, "");
		break;
	}
}

static void
gen_syntax(struct kase *k, size_t v)
{
	static const char *const bad[] = {
		"{\"data\":{\"event_type\":\"X\"},\"pb_data\":{\"account_info\":"
		    "{\"bill_status\":\"open\"}},}",
		"{\"data\":{\"event_type\":\"X\"} /* c */,\"pb_data\":{}}",
		"{'data':{\"event_type\":\"X\"}}",
		"{data:{\"event_type\":\"X\"}}",
		"{\"data\" {\"event_type\":\"X\"}}",
		"{\"a\":\"tab\there\"}",
		"{\"a\":\"\\x41\"}",
		"{\"a\":\"\\u12\"}",
		"{\"a\":\"\\u12G4\"}",
		"{\"a\":1}\x0c",
		"\x0b{\"a\":1}",
		"{\"a\":1}x",
		"{\"a\":1}{\"a\":1}",
		"{\"a\":1",
		"{\"a\":tru}",
		"{\"a\":True}",
		"{\"a\":nul}",
		"{\"a\" : [1,2,]}",
		"{,}",
		"\"just a string\"",
		"{\"a\":\"unterminated}",
		"{\"a\":\"\\",
		"{\"\\ud800\":1,",
		"{\"a\":1}\n\n// comment",
	};
	size_t	 i = v % 25;

	base(k, "json syntax");
	k->valid = 0;
	if (i == 24) {
		/* The valid event, with its blanks replaced by other bytes. */
		valid_event(&k->body, ",\"b\" : [ 1 , 2 ]");
		for (i = 0; i < k->body.len; i++)
			if (k->body.p[i] == ' ' && k->body.p[i - 1] != '"')
				k->body.p[i] = "\x0b\x0c\xa0"[pick(3)];
		return;
	}
	cb_adds(&k->body, bad[i]);
}

typedef void (*generator)(struct kase *, size_t);

static const generator generators[] = {
	gen_valid, gen_clen, gen_truncated, gen_nesting, gen_huge, gen_utf8,
	gen_bom, gen_nul, gen_dupkeys, gen_numbers, gen_types, gen_auth,
	gen_method, gen_path, gen_ctype, gen_trace, gen_syntax,
};
#define NGEN	(sizeof(generators) / sizeof(generators[0]))

/* Every LEAK_EVERY-th CGI case is leak-checked: coprime with NGEN, so
 * that the checked ones reach every generator. */
#define LEAK_EVERY	4
_Static_assert(NGEN % 2 == 1, "NGEN must be odd for LEAK_EVERY 4");

/* Case i: the same request for the same i, whatever ran before it. */
static void
generate(struct kase *k, size_t i)
{
	char	 n[32];

	rng_state = 0x4e5053ULL * (i + 1) ^ 0x9e3779b97f4a7c15ULL;
	(void)rnd();
	generators[i % NGEN](k, i / NGEN);
	if (k->auto_len) {
		snprintf(n, sizeof(n), "%zu", k->body.len);
		set(k, F_CLEN, n);
	}
}

static long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A CGI response: "Status: NNN text", Content-Type: application/json,
 * Content-Length equal to the body, and a body that is a JSON object
 * (none for HEAD).  Returns the status, or -1 when malformed.
 */
static int
check_response(const char *r, size_t len, int head, const char **why)
{
	const char	*end, *cl;
	size_t		 hlen, blen;
	json_tokener	*tok;
	json_object	*o;
	int		 status, ok;

	*why = "no Status line";
	if (len < 12 || strncmp(r, "Status: ", 8) != 0 ||
	    r[8] < '1' || r[8] > '5' || r[11] != ' ')
		return -1;
	status = atoi(r + 8);
	*why = "no end of headers";
	if ((end = memmem(r, len, "\r\n\r\n", 4)) == NULL)
		return -1;
	hlen = (size_t)(end - r) + 4;
	*why = "no Content-Type: application/json";
	if (memmem(r, hlen, "\r\nContent-Type: application/json\r\n", 34) ==
	    NULL)
		return -1;
	*why = "no or wrong Content-Length";
	if ((cl = memmem(r, hlen, "\r\nContent-Length: ", 18)) == NULL)
		return -1;
	blen = strtoul(cl + 18, NULL, 10);
	if (len != hlen + (head ? 0 : blen))
		return -1;
	if (head)
		return status;
	*why = "body is not a JSON object";
	if ((tok = json_tokener_new()) == NULL)
		die("out of memory");
	o = json_tokener_parse_ex(tok, r + hlen, (int)blen);
	ok = json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == blen &&
	    json_object_is_type(o, json_type_object);
	json_object_put(o);
	json_tokener_free(tok);
	return ok ? status : -1;
}

static void
account(struct counts *c, const struct kase *k, int fcgi, size_t i,
    int status, const char *why)
{
	int	 valid = k->valid || (fcgi && k->unknown_len);

	c->total++;
	if (valid)
		c->valid++;
	else
		c->invalid++;
	if (status == -1) {
		c->malformed++;
		fprintf(stderr, "case %zu (%s): malformed response: %s\n", i,
		    k->what, why);
		return;
	}
	c->status[status]++;
	if (!valid && status >= 200 && status < 300) {
		c->invalid_2xx++;
		fprintf(stderr, "case %zu (%s): invalid request got %d\n", i,
		    k->what, status);
	}
	if (valid && status != 202) {
		c->valid_refused++;
		fprintf(stderr, "case %zu (%s): valid request got %d\n", i,
		    k->what, status);
	}
}

static void
run_cgi(const char *connector, const struct kase *k, size_t i,
    struct counts *c)
{
	char		*envp[NFIELDS + 4], *argv[2];
	struct fcgi_buf	 e[NFIELDS] = { { 0 } }, out = { 0 };
	int		 in[2], res[2], st, status, n = 0;
	size_t		 f;
	pid_t		 pid;
	const char	*why = "";

	envp[n++] = "API_TOKEN=" TOKEN;
	envp[n++] = "PATH=/usr/bin:/bin";
	/*
	 * In a sanitizer build, LeakSanitizer's scan at exit costs an exec
	 * 60 ms more here; every LEAK_EVERY-th case keeps it, which reaches
	 * each generator.  A leak is an exit status of 23, counted as a
	 * crash.  Other builds ignore the variable.
	 */
	if (i % LEAK_EVERY != 0)
		envp[n++] = "ASAN_OPTIONS=detect_leaks=0";
	for (f = 0; f < NFIELDS; f++) {
		if (k->f[f] == NULL)
			continue;
		cb_printf(&e[f], "%s=", field_name[f]);
		cb_adds(&e[f], k->f[f]);
		envp[n++] = e[f].p;
	}
	envp[n] = NULL;
	argv[0] = (char *)connector;
	argv[1] = NULL;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(res, O_CLOEXEC) == -1)
		die("pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int	 null = open("/dev/null", O_WRONLY);

		dup2(in[0], 0);
		dup2(res[1], 1);
		dup2(null, 2);
		execve(connector, argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(res[1]);
	if (fcgi_exchange(in[1], k->body.p, k->body.len, res[0], &out, 1,
	    DEADLINE_MS) == -1) {
		kill(pid, SIGKILL);
		c->hangs++;
		fprintf(stderr, "case %zu (%s): no answer within %d s\n", i,
		    k->what, DEADLINE_MS / 1000);
		close(in[1]);
	}
	close(res[0]);
	if (waitpid(pid, &st, 0) == -1)
		die("waitpid: %s", strerror(errno));
	if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL) {
		c->crashes++;
		fprintf(stderr, "case %zu (%s): killed by signal %d\n", i,
		    k->what, WTERMSIG(st));
	} else if (WIFEXITED(st) && WEXITSTATUS(st) > 1) {
		c->crashes++;
		fprintf(stderr, "case %zu (%s): exit status %d\n", i,
		    k->what, WEXITSTATUS(st));
	}
	status = check_response(out.p ? out.p : "", out.len,
	    strcmp(k->f[F_METHOD], "HEAD") == 0, &why);
	account(c, k, 0, i, status, why);
	for (f = 0; f < NFIELDS; f++)
		free(e[f].p);
	free(out.p);
}

static void
run_fcgi(const char *sock, const struct kase *k, size_t i, struct counts *c)
{
	struct fcgi_buf	 req = { 0 }, params = { 0 }, in = { 0 }, out = { 0 };
	const char	*why = "";
	size_t		 f;
	int		 fd, status;

	for (f = 0; f < NFIELDS; f++)
		if (k->f[f] != NULL)
			fcgi_param(&params, field_name[f], k->f[f]);
	fcgi_request(&req, &params, k->body.p, k->body.len);
	if ((fd = fcgi_connect(sock)) == -1) {
		c->crashes++;
		fprintf(stderr, "case %zu (%s): connect: %s\n", i, k->what,
		    strerror(errno));
		account(c, k, 1, i, -1, "no connection");
		goto out;
	}
	if (fcgi_exchange(fd, req.p, req.len, fd, &in, 0, DEADLINE_MS) == -1) {
		c->hangs++;
		fprintf(stderr, "case %zu (%s): no answer within %d s\n", i,
		    k->what, DEADLINE_MS / 1000);
	}
	close(fd);
	if (fcgi_stdout(&in, &out) == -1) {
		account(c, k, 1, i, -1, "no FCGI_END_REQUEST");
		goto out;
	}
	status = check_response(out.p ? out.p : "", out.len,
	    strcmp(k->f[F_METHOD], "HEAD") == 0, &why);
	account(c, k, 1, i, status, why);
out:
	fcgi_buf_free(&req);
	fcgi_buf_free(&params);
	fcgi_buf_free(&in);
	fcgi_buf_free(&out);
}

int
main(int argc, char *argv[])
{
	struct counts	 c;
	struct kase	 k;
	const char	*mode, *target;
	size_t		 i, count;
	long		 t0;
	int		 s, fcgi;

	if (argc == 2 && strcmp(argv[1], "token") == 0) {
		printf("%s\n", TOKEN);
		return 0;
	}
	if (argc != 4)
		die("usage: malformed cgi connector count | "
		    "fcgi socket count | token");
	mode = argv[1];
	target = argv[2];
	count = strtoul(argv[3], NULL, 10);
	if (strcmp(mode, "cgi") != 0 && strcmp(mode, "fcgi") != 0)
		die("mode is cgi or fcgi");
	fcgi = strcmp(mode, "fcgi") == 0;
	signal(SIGPIPE, SIG_IGN);
	memset(&c, 0, sizeof(c));
	t0 = now_ms();

	for (i = 0; i < count; i++) {
		generate(&k, i);
		if (fcgi)
			run_fcgi(target, &k, i, &c);
		else
			run_cgi(target, &k, i, &c);
		kase_free(&k);
	}

	printf("%s: %lu requests (%lu valid, %lu invalid) in %.1f s\n", mode,
	    c.total, c.valid, c.invalid, (double)(now_ms() - t0) / 1000);
	printf("%s: %lu crashes, %lu hangs over %d s, %lu malformed "
	    "answers, %lu 2xx for invalid, %lu valid refused\n", mode,
	    c.crashes, c.hangs, DEADLINE_MS / 1000, c.malformed,
	    c.invalid_2xx, c.valid_refused);
	printf("%s: statuses:", mode);
	for (s = 0; s < 600; s++)
		if (c.status[s] > 0)
			printf(" %d=%lu", s, c.status[s]);
	printf("\n");
	return c.crashes || c.hangs || c.malformed || c.invalid_2xx ||
	    c.valid_refused || c.total < count;
}
