/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Event validation: strict JSON (RFC 8259) with json-c, then the
 * required fields.  Failures become the "details" list of a 422.
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "extern.h"

#define EVENT_ID_MAX	128

/*
 * Bytes outside strings, by what the scan does with them: go on over
 * JSON's blanks and structural characters, the characters of numbers
 * and the letters of true, false and null (OUT_PLAIN), check a number
 * (OUT_NUMBER), enter a string (OUT_QUOTE), or stop (OUT_BAD).  json-c's
 * strict mode still takes single-quoted keys, NaN and Infinity; none of
 * those can get past this table.
 */
enum {
	OUT_BAD,
	OUT_PLAIN,
	OUT_NUMBER,
	OUT_QUOTE
};

static const unsigned char outside[256] = {
	[' '] = OUT_PLAIN, ['\t'] = OUT_PLAIN, ['\n'] = OUT_PLAIN,
	['\r'] = OUT_PLAIN,
	['{'] = OUT_PLAIN, ['}'] = OUT_PLAIN, ['['] = OUT_PLAIN,
	[']'] = OUT_PLAIN, [','] = OUT_PLAIN, [':'] = OUT_PLAIN,
	['0'] = OUT_NUMBER, ['1'] = OUT_NUMBER, ['2'] = OUT_NUMBER,
	['3'] = OUT_NUMBER, ['4'] = OUT_NUMBER, ['5'] = OUT_NUMBER,
	['6'] = OUT_NUMBER, ['7'] = OUT_NUMBER, ['8'] = OUT_NUMBER,
	['9'] = OUT_NUMBER, ['-'] = OUT_NUMBER,
	['+'] = OUT_PLAIN, ['.'] = OUT_PLAIN, ['e'] = OUT_PLAIN,
	['E'] = OUT_PLAIN,
	['t'] = OUT_PLAIN, ['r'] = OUT_PLAIN, ['u'] = OUT_PLAIN,
	['f'] = OUT_PLAIN, ['a'] = OUT_PLAIN, ['l'] = OUT_PLAIN,
	['s'] = OUT_PLAIN, ['n'] = OUT_PLAIN,
	['"'] = OUT_QUOTE,
};

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Length of the RFC 8259 number at p, or 0 when there is none:
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, not followed by another
 * character of a number.  json-c takes "1.", "-.5", "1.e5" and "-01".
 */
static size_t
number_len(const unsigned char *p, size_t n)
{
	size_t	 i = 0, start;

	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else if (i < n && p[i] >= '1' && p[i] <= '9')
		while (i < n && is_digit(p[i]))
			i++;
	else
		return 0;
	if (i < n && p[i] == '.') {
		for (start = ++i; i < n && is_digit(p[i]); i++)
			continue;
		if (i == start)
			return 0;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		if (++i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		for (start = i; i < n && is_digit(p[i]); i++)
			continue;
		if (i == start)
			return 0;
	}
	if (i < n && (is_digit(p[i]) || p[i] == '.' || p[i] == 'e' ||
	    p[i] == 'E' || p[i] == '+' || p[i] == '-'))
		return 0;
	return i;
}

/*
 * Bytes that need no look inside a string: printable ASCII but the
 * quote and the backslash.  Controls, escapes and UTF-8 stop the run.
 */
static const unsigned char string_plain[256] = {
	[0x20] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x30] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x40] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x50] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	[0x60] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	[0x70] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/*
 * How many of the n bytes at p have class c in table t.  Four at a
 * time: runs of plain bytes are what the scan spends its time on.
 */
static inline size_t
span(const unsigned char *t, unsigned char c, const unsigned char *p,
    size_t n)
{
	size_t	 i;

	for (i = 0; n - i >= 4; i += 4) {
		if (t[p[i]] != c)
			return i;
		if (t[p[i + 1]] != c)
			return i + 1;
		if (t[p[i + 2]] != c)
			return i + 2;
		if (t[p[i + 3]] != c)
			return i + 3;
	}
	while (i < n && t[p[i]] == c)
		i++;
	return i;
}

/*
 * The checks json-c does not make: only JSON's own characters outside
 * strings (no NUL, BOM, quotes of another kind, comments) and numbers
 * only as RFC 8259 writes them; inside strings no raw control characters
 * and only valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * which json-c's own check lets through).
 * Returns 0, or -1 with the offending offset.
 *
 * This runs on every event before json-c does, so it skips runs of
 * ordinary bytes with one table look-up each and stops only where
 * there is something to decide.
 */
int
json_strict_scan(const char *s, size_t n, size_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t		 i = 0, len;

	for (;;) {
		i += span(outside, OUT_PLAIN, p + i, n - i);
		if (i == n)
			return 0;
		if (outside[p[i]] == OUT_NUMBER) {
			/* Numbers only as RFC 8259 writes them. */
			if ((len = number_len(p + i, n - i)) == 0)
				goto bad;
			i += len;
			continue;
		}
		if (outside[p[i]] != OUT_QUOTE)
			goto bad;
		for (i++;;) {
			i += span(string_plain, 1, p + i, n - i);
			if (i == n || p[i] < 0x20)
				goto bad;
			if (p[i] == '"')
				break;
			if (p[i] == '\\') {
				/* The escaped byte is json-c's to judge. */
				if ((i += 2) > n)
					goto bad;
			} else {
				if ((len = utf8_seqlen(p + i, n - i)) == 0)
					goto bad;
				i += len;
			}
		}
		i++;
	}
bad:
	*bad = i < n ? i : n;
	return -1;
}

static int
is_json_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * An event_id that can name a file: 1 to 128 of letters, digits, '-',
 * '_' and '.', not starting with '.'.
 */
int
event_id_valid(const char *s, size_t n)
{
	size_t	 i;
	char	 c;

	if (n == 0 || n > EVENT_ID_MAX || s[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* Appends {"loc":[...],"msg":"..."} to the details list. */
static int
add_detail(struct buf *d, const char *const *seg, size_t nseg,
    const char *msg)
{
	size_t	 i;

	if (buf_adds(d, d->len == 0 ? "[{\"loc\":[" : ",{\"loc\":[") == -1)
		return -1;
	for (i = 0; i < nseg; i++)
		if ((i > 0 && buf_addc(d, ',') == -1) ||
		    buf_add_json_string(d, seg[i], strlen(seg[i])) == -1)
			return -1;
	if (buf_adds(d, "],\"msg\":") == -1 ||
	    buf_add_json_string(d, msg, strlen(msg)) == -1)
		return -1;
	return buf_addc(d, '}');
}

/*
 * Looks up a dotted path.  Returns the string there, or NULL with msg
 * saying why there is no usable one.
 */
static const char *
lookup_string(struct json_object *root, const char *const *seg, size_t nseg,
    size_t *lenp, const char **msg)
{
	struct json_object	*o = root, *v;
	const char		*s;
	size_t			 i;

	for (i = 0; i < nseg; i++) {
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, seg[i], &v) || v == NULL) {
			*msg = "field required";
			return NULL;
		}
		o = v;
	}
	if (!json_object_is_type(o, json_type_string)) {
		*msg = "must be a string";
		return NULL;
	}
	s = json_object_get_string(o);
	*lenp = (size_t)json_object_get_string_len(o);
	if (*lenp == 0) {
		*msg = "must not be empty";
		return NULL;
	}
	if (memchr(s, '\0', *lenp) != NULL) {
		*msg = "must not contain U+0000";
		return NULL;
	}
	return s;
}

static int
parse_json(struct state *st, const char *body, size_t len, struct buf *d,
    char *why, size_t whylen)
{
	static const char *const body_loc[] = { "body" };
	enum json_tokener_error	 jerr;
	const char		*msg;
	size_t			 i, end, bad;

	for (i = 0; i < len && is_json_blank(body[i]); i++)
		continue;
	if (i == len) {
		snprintf(why, whylen, "empty body");
		return add_detail(d, body_loc, 1, "body is empty");
	}
	if (json_strict_scan(body, len, &bad) == -1) {
		snprintf(why, whylen, "invalid JSON at byte %zu", bad);
		return add_detail(d, body_loc, 1, why);
	}
	json_tokener_reset(st->tok);
	st->root = json_tokener_parse_ex(st->tok, body, (int)len);
	jerr = json_tokener_get_error(st->tok);
	end = json_tokener_get_parse_end(st->tok);
	if (jerr != json_tokener_success) {
		msg = jerr == json_tokener_continue ? "unexpected end of input" :
		    json_tokener_error_desc(jerr);
		snprintf(why, whylen, "invalid JSON at byte %zu: %s", end, msg);
		return add_detail(d, body_loc, 1, why);
	}
	for (i = end; i < len && is_json_blank(body[i]); i++)
		continue;
	if (i < len) {
		snprintf(why, whylen, "invalid JSON at byte %zu: data after "
		    "the value", i);
		return add_detail(d, body_loc, 1, why);
	}
	if (!json_object_is_type(st->root, json_type_object)) {
		snprintf(why, whylen, "body is not a JSON object");
		return add_detail(d, body_loc, 1, "body must be a JSON object");
	}
	return 0;
}

/*
 * The fields a log line and a handler are told of, found where NSPS
 * puts them.  Both programs ask here, so the paths live in one place.
 */
static const char *const type_path[] = { "data", "event_type" };
static const char *const bill_path[] = {
	"pb_data", "account_info", "bill_status"
};
static const char *const id_path[] = { "event_id" };

void
event_describe(struct json_object *root, struct event *ev)
{
	const char	*msg;

	ev->event_id = lookup_string(root, id_path, 1, &ev->event_id_len,
	    &msg);
	ev->event_type = lookup_string(root, type_path, 2,
	    &ev->event_type_len, &msg);
	ev->root = root;
	ev->bill_status = lookup_string(root, bill_path, 3,
	    &ev->bill_status_len, &msg);
}

/* Whether a configured field is the path seg. */
static int
same_path(const struct field_path *f, const char *const *seg, size_t nseg)
{
	size_t	 i;

	if (f->nseg != nseg)
		return 0;
	for (i = 0; i < nseg; i++)
		if (strcmp(f->seg[i], seg[i]) != 0)
			return 0;
	return 1;
}

/*
 * Parses and validates an event body.  On EVENT_OK st->event describes
 * it; otherwise d holds the 422 details list and why the log reason.
 */
enum event_result
event_parse(const struct config *cfg, const struct sink *sink,
    struct state *st, const char *body, size_t len, struct buf *d,
    char *why, size_t whylen)
{
	const struct field_path	*f;
	const char		*msg = NULL;
	size_t			 i, n, bad = 0;
	struct event		*ev = &st->event;

	d->len = 0;
	memset(ev, 0, sizeof(*ev));
	if (parse_json(st, body, len, d, why, whylen) == -1)
		return EVENT_NOMEM;
	if (d->len > 0)
		return buf_addc(d, ']') == -1 ? EVENT_NOMEM : EVENT_BAD_JSON;

	/*
	 * The fields the log and the handler are told of, found once: a
	 * required field found there is not looked up again, and only a
	 * missing one is, for the reason.
	 */
	event_describe(st->root, ev);
	for (i = 0; i < cfg->nrequired; i++) {
		f = &cfg->required[i];
		if ((ev->event_type != NULL && same_path(f, type_path, 2)) ||
		    (ev->bill_status != NULL && same_path(f, bill_path, 3)) ||
		    lookup_string(st->root, f->seg, f->nseg, &n, &msg) != NULL)
			continue;
		if (bad++ == 0)
			snprintf(why, whylen, "%s: %s", f->dotted, msg);
		if (add_detail(d, f->seg, f->nseg, msg) == -1)
			return EVENT_NOMEM;
	}
	if (sink->require_event_id && (ev->event_id == NULL ||
	    !event_id_valid(ev->event_id, ev->event_id_len))) {
		if (ev->event_id != NULL)
			msg = "must be 1 to 128 letters, digits, '-', '_' or "
			    "'.', not starting with '.'";
		else
			(void)lookup_string(st->root, id_path, 1, &n, &msg);
		if (bad++ == 0)
			snprintf(why, whylen, "event_id: %s", msg);
		if (add_detail(d, id_path, 1, msg) == -1)
			return EVENT_NOMEM;
	}
	if (bad > 0) {
		if (d->len > 0 && buf_addc(d, ']') == -1)
			return EVENT_NOMEM;
		return EVENT_INVALID;
	}
	return EVENT_OK;
}

static int
digits(const char *s, size_t n, int *out)
{
	size_t	 i;
	int	 v = 0;

	for (i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar. */
static long long
days_from_civil(int y, int m, int d)
{
	long long	 era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
	static const int mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return mdays[m - 1];
}

/*
 * A time as NSPS writes updated_at: YYYY-MM-DDTHH:MM:SS, an optional
 * fraction of 1 to 9 digits, then Z or +HH:MM/-HH:MM.  Nothing else:
 * a time without an offset names no instant.  Returns 0 with ns since
 * the epoch, or -1.
 */
int
iso8601_parse(const char *s, long long *ns)
{
	int		 y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	long long	 frac = 0, t;
	size_t		 n = strlen(s), i, nd;

	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' ||
	    digits(s, 4, &y) == -1 || digits(s + 5, 2, &mo) == -1 ||
	    digits(s + 8, 2, &d) == -1 || digits(s + 11, 2, &h) == -1 ||
	    digits(s + 14, 2, &mi) == -1 || digits(s + 17, 2, &sec) == -1)
		return -1;
	if (y < 1900 || y > 2200 || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
		return -1;
	i = 19;
	if (s[i] == '.') {
		for (nd = 0, i++; i < n && is_digit((unsigned char)s[i]);
		    i++, nd++)
			if (nd < 9)
				frac = frac * 10 + (s[i] - '0');
		if (nd == 0 || nd > 9)
			return -1;
		for (; nd < 9; nd++)
			frac *= 10;
	}
	if (s[i] == 'Z' && i + 1 == n)
		sign = 0;
	else if ((s[i] == '+' || s[i] == '-') && i + 6 == n &&
	    s[i + 3] == ':' && digits(s + i + 1, 2, &oh) == 0 &&
	    digits(s + i + 4, 2, &om) == 0 && oh <= 23 && om <= 59)
		sign = s[i] == '+' ? 1 : -1;
	else
		return -1;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	*ns = t * 1000000000LL + frac;
	return 0;
}

/*
 * Whether a version is further ahead of the clock (now, wall ms) than
 * skew ms: a snapshot from the future would make every real one stale.
 */
int
version_ahead(const struct version *v, long long now, long long skew)
{
	return v->ns / 1000000 > now + skew ||
	    (v->ns / 1000000 == now + skew && v->ns % 1000000 > 0);
}

/* Which of two versions is newer: updated_at, then created_at. */
int
version_cmp(const struct version *a, const struct version *b)
{
	if (a->ns != b->ns)
		return a->ns < b->ns ? -1 : 1;
	if (a->created_ns != b->created_ns)
		return a->created_ns < b->created_ns ? -1 : 1;
	return 0;
}

/*
 * An integer key in its one canonical form: decimal digits of any
 * length, a '-' before a negative one, no leading zeros, so that 5,
 * "5", 5.0, 5e0 and "005" are one key and 2^63 + 1 stays itself.
 * s is a number as JSON writes one (leading zeros allowed); a fraction
 * or exponent is taken when the value is still a whole number.
 * Returns 0, or -1 with why saying what is wrong.
 */
int
key_normalise(const char *s, size_t n, char *out, size_t len,
    const char **why)
{
	size_t		 i = 0, ip, il, fp = 0, fl = 0, nd, o = 0, k;
	long		 e = 0, shift;
	int		 neg = 0, eneg = 0;

	*why = "not an integer";
	if (i < n && s[i] == '-') {
		neg = 1;
		i++;
	}
	for (ip = i; i < n && is_digit((unsigned char)s[i]); i++)
		continue;
	if ((il = i - ip) == 0)
		return -1;
	if (i < n && s[i] == '.') {
		for (fp = ++i; i < n && is_digit((unsigned char)s[i]); i++)
			continue;
		if ((fl = i - fp) == 0)
			return -1;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		if (++i < n && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		if (i == n)
			return -1;
		for (; i < n && is_digit((unsigned char)s[i]); i++)
			if ((e = e * 10 + (s[i] - '0')) > 100000)
				e = 100000;
	}
	if (i != n)
		return -1;
	if (eneg)
		e = -e;
	/* The digits, integer part then fraction, times 10^shift. */
	shift = e - (long)fl;
	nd = il + fl;
	/* Leading zeros say nothing. */
	for (k = 0; k < nd; k++)
		if ((k < il ? s[ip + k] : s[fp + k - il]) != '0')
			break;
	if (k == nd) {
		if (len < 2)
			goto long_;
		out[0] = '0';
		out[1] = '\0';
		return 0;
	}
	/* Digits shifted out must be zeros: else a fraction is left. */
	while (shift < 0 && nd > k) {
		if ((nd - 1 < il ? s[ip + nd - 1] : s[fp + nd - 1 - il]) != '0')
			return -1;
		nd--;
		shift++;
	}
	if (shift < 0)
		return -1;
	if ((size_t)neg + nd - k + (size_t)shift + 1 > len ||
	    (size_t)shift > len)
		goto long_;
	if (neg)
		out[o++] = '-';
	for (; k < nd; k++)
		out[o++] = k < il ? s[ip + k] : s[fp + k - il];
	for (; shift > 0; shift--)
		out[o++] = '0';
	out[o] = '\0';
	return 0;
long_:
	*why = "too many digits for a key";
	return -1;
}

/*
 * The JSON text of a value, for a reason: at most 64 bytes of it;
 * json-c has no object for null.
 */
static void
value_text(struct json_object *o, int present, char *out, size_t len)
{
	const char	*s;

	s = o == NULL ? (present ? "null" : "missing") :
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (s == NULL)
		s = "?";
	snprintf(out, len, "%.64s%s", s, strlen(s) > 64 ? "..." : "");
}

/*
 * The value at a path; NULL when a part of the path is absent or null,
 * and *present says whether the last one is there (as null).
 */
static struct json_object *
lookup(struct json_object *root, const char *const *seg, size_t nseg,
    int *present)
{
	struct json_object	*o = root, *v;
	size_t			 i;

	*present = 0;
	for (i = 0; i < nseg; i++) {
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, seg[i], &v))
			return NULL;
		if (v == NULL) {
			*present = i + 1 == nseg;
			return NULL;
		}
		o = v;
	}
	*present = 1;
	return o;
}

/*
 * The key at a path, canonical: 1, 0 when there is none (absent, null
 * or ""), -1 when the value is no integer, with why.
 */
static int
lookup_key(struct json_object *root, const struct field_path *f, char *out,
    size_t len, char *why, size_t whylen)
{
	struct json_object	*o;
	const char		*s, *msg = "not an integer";
	char			 num[32], text[80];
	int64_t			 i;
	uint64_t		 u;
	int			 present;

	if ((o = lookup(root, f->seg, f->nseg, &present)) == NULL ||
	    json_object_is_type(o, json_type_null) ||
	    (json_object_is_type(o, json_type_string) &&
	    json_object_get_string_len(o) == 0))
		return 0;
	if (json_object_is_type(o, json_type_int)) {
		/* json-c clamps what does not fit 64 bits: not exact. */
		if ((i = json_object_get_int64(o)) < 0 && i != INT64_MIN)
			snprintf(num, sizeof(num), "%lld", (long long)i);
		else if (i >= 0 && (u = json_object_get_uint64(o)) !=
		    UINT64_MAX)
			snprintf(num, sizeof(num), "%llu",
			    (unsigned long long)u);
		else {
			msg = "an integer beyond 64 bits is not read "
			    "exactly: send it as a string";
			goto bad;
		}
		s = num;
	} else if (json_object_is_type(o, json_type_double) ||
	    json_object_is_type(o, json_type_string)) {
		/* json-c keeps a parsed number's text. */
		s = json_object_is_type(o, json_type_string) ?
		    json_object_get_string(o) :
		    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		if (json_object_is_type(o, json_type_string) &&
		    (size_t)json_object_get_string_len(o) != strlen(s))
			goto bad;
	} else
		goto bad;
	if (key_normalise(s, strlen(s), out, len, &msg) == 0)
		return 1;
bad:
	value_text(o, 1, text, sizeof(text));
	snprintf(why, whylen, "%s: %s: %s", f->dotted, msg, text);
	return -1;
}

/*
 * The key as a file name: "<last segment>=<value>", so that both paths
 * to an account's i_account meet and a SIM's id never meets one;
 * bytes other than letters, digits, '-', '_' and '.' as %XX.
 */
static int
encode_key(const char *name, const char *val, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		 o;
	const unsigned char *p;

	if ((o = (size_t)snprintf(out, len, "%s=", name)) >= len)
		return -1;
	for (p = (const unsigned char *)val; *p != '\0'; p++) {
		if (o + 4 > len)
			return -1;
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.')
			out[o++] = (char)*p;
		else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/*
 * An event's place in its key's order: the first ORDER_KEY path with a
 * value, which must be an integer, and the instant at ORDER_VERSION
 * (created_at breaks ties).  A key is kept even when the version is
 * unreadable: the event still holds its key.  Anything but
 * ORDER_KEYED and ORDER_NONE comes with why.
 */
enum order_result
event_order(const struct config *cfg, struct json_object *root, char *key,
    size_t keylen, struct version *v, char *why, size_t whylen)
{
	static const char *const created[] = { "created_at" };
	const struct field_path	*f = NULL;
	struct json_object	*o;
	char			 val[ORDER_KEY_MAX + 1], text[80];
	size_t			 i;
	int			 r = 0, present;

	key[0] = '\0';
	why[0] = '\0';
	memset(v, 0, sizeof(*v));
	for (i = 0; i < cfg->norder_key; i++) {
		f = &cfg->order_key[i];
		if ((r = lookup_key(root, f, val, sizeof(val), why,
		    whylen)) != 0)
			break;
	}
	if (r == -1)
		return ORDER_BAD_KEY;
	if (i == cfg->norder_key)
		return ORDER_NONE;
	if (encode_key(f->seg[f->nseg - 1], val, key, keylen) == -1) {
		key[0] = '\0';
		snprintf(why, whylen, "%s: too many digits for a key",
		    f->dotted);
		return ORDER_BAD_KEY;
	}
	o = lookup(root, cfg->order_version.seg, cfg->order_version.nseg,
	    &present);
	if (!json_object_is_type(o, json_type_string) ||
	    (size_t)json_object_get_string_len(o) !=
	    strlen(json_object_get_string(o)) ||
	    iso8601_parse(json_object_get_string(o), &v->ns) == -1) {
		value_text(o, present, text, sizeof(text));
		snprintf(why, whylen, "unreadable %s: %s",
		    cfg->order_version.dotted, text);
		return ORDER_BAD_VERSION;
	}
	o = lookup(root, created, 1, &present);
	if (!json_object_is_type(o, json_type_string) ||
	    iso8601_parse(json_object_get_string(o), &v->created_ns) == -1)
		v->created_ns = 0;
	return ORDER_KEYED;
}
