/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Request-file transport, for testing without a web server: a raw
 * HTTP/1.x request message (request line, headers, blank line, body;
 * CRLF or LF; a chunked body is decoded) on stdin or in a file, or a
 * bare JSON event, the CGI response on stdout.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "extern.h"

#define MAX_HEAD	(64 * 1024)
#define MAX_CHUNK_LINE	1024	/* a chunk size line, or a trailer */

struct reader {
	int		 fd;
	char		*pending;	/* body bytes read with the head */
	size_t		 npending;
	int		 eof;
	char		 raw[4096];	/* a chunked body, as read */
};

/* What read_head() found. */
#define HEAD_BARE	(-2)		/* a bare JSON event, no head */

/* Serves body bytes from what was read with the head, then from fd. */
static int
read_file_body(void *ctx, char *dst, size_t len)
{
	struct reader	*rd = ctx;
	size_t		 n;

	n = len < rd->npending ? len : rd->npending;
	memcpy(dst, rd->pending, n);
	rd->pending += n;
	rd->npending -= n;
	/* cppcheck-suppress knownConditionTrueFalse ; a false positive */
	if (len > n && (rd->eof || read_all(rd->fd, dst + n, len - n) == -1)) {
		rd->eof = 1;
		return -1;
	}
	return 0;
}

static int
write_fd(void *ctx, const char *p, size_t len)
{
	return write_all(*(int *)ctx, p, len);
}

/*
 * Offset just past the blank line that ends the head ("\n\n" or
 * "\n\r\n", which covers CRLF and LF requests), or -1 if not there yet.
 */
static ssize_t
head_end(const char *p, size_t len)
{
	const char	*nl, *end;

	/* Before the first read p is NULL: no memchr(NULL, ...), no NULL + 0. */
	if (len == 0)
		return -1;
	nl = p;
	end = p + len;
	while ((nl = memchr(nl, '\n', (size_t)(end - nl))) != NULL) {
		if (nl + 1 < end && nl[1] == '\n')
			return nl + 2 - p;
		if (nl + 2 < end && nl[1] == '\r' && nl[2] == '\n')
			return nl + 3 - p;
		nl++;
	}
	return -1;
}

/*
 * Reads until the blank line that ends the head, or EOF, or MAX_HEAD.
 * Input whose first byte but white space is '{' is a bare event
 * (HEAD_BARE): no request line starts so, as '{' is no method.
 */
static ssize_t
read_head(struct reader *rd, struct buf *b, const char **why)
{
	ssize_t	 n, end;
	size_t	 lead;

	for (;;) {
		if (b->len > 0) {
			lead = strspn(b->data, " \t\r\n");
			if (lead < b->len && b->data[lead] == '{')
				return HEAD_BARE;
		}
		if ((end = head_end(b->data, b->len)) != -1 && end <= MAX_HEAD)
			return end;
		if (b->len >= MAX_HEAD) {
			*why = "request head longer than 64 KiB";
			return -1;
		}
		if (buf_reserve(b, 4096) == -1) {
			*why = "out of memory";
			return -1;
		}
		n = read(rd->fd, b->data + b->len, b->cap - b->len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rd->eof = 1;
			*why = b->len == 0 ? "empty request" :
			    "request head has no terminating blank line "
			    "(a bare JSON event starts with {)";
			return -1;
		}
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
}

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/* "METHOD /path?query HTTP/1.x": keeps method and path, drops the query. */
static const char *
parse_request_line(char *line, struct request *req)
{
	char	*sp, *target, *q;

	if ((sp = strchr(line, ' ')) == NULL)
		return "malformed request line";
	*sp = '\0';
	for (q = line; *q != '\0'; q++)
		if (!is_tchar((unsigned char)*q))
			return "malformed method in the request line";
	if (*line == '\0')
		return "malformed request line";
	target = sp + 1;
	if ((sp = strchr(target, ' ')) == NULL ||
	    strncmp(sp + 1, "HTTP/1.", 7) != 0 || sp[8] < '0' || sp[8] > '9' ||
	    sp[9] != '\0')
		return "malformed request line (expected METHOD target HTTP/1.x)";
	*sp = '\0';
	if (strncmp(target, "http://", 7) == 0 ||
	    strncmp(target, "https://", 8) == 0) {
		target = strchr(target + 8 - (target[4] == ':'), '/');
		if (target == NULL)
			target = "/";
	}
	if (*target != '/')
		return "request target is not a path";
	if ((q = strchr(target, '?')) != NULL)
		*q = '\0';
	req->method = line;
	req->script_name = "";
	req->path_info = target;
	return NULL;
}

/* Sets *slot to value, refusing a header that appears twice. */
static const char *
set_header(const char **slot, const char *value, const char *name)
{
	static char	 msg[64];

	if (*slot != NULL) {
		snprintf(msg, sizeof(msg), "duplicate %s header", name);
		return msg;
	}
	*slot = value;
	return NULL;
}

static const char *
parse_header(char *line, struct request *req)
{
	static const struct {
		const char	*name;
		size_t		 off;
	} known[] = {
		{ "Authorization", offsetof(struct request, authorization) },
		{ "Content-Type", offsetof(struct request, content_type) },
		{ "Content-Length", offsetof(struct request, content_length) },
		{ "X-B3-TraceId", offsetof(struct request, trace_id) },
		{ "X-Request-Id", offsetof(struct request, unique_id) },
		{ "Transfer-Encoding", offsetof(struct request,
		    transfer_encoding) },
	};
	char	*colon, *v, *end, *p;
	size_t	 i;

	if (*line == ' ' || *line == '\t')
		return "obsolete header line folding";
	if ((colon = strchr(line, ':')) == NULL || colon == line)
		return "malformed header line";
	for (p = line; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return "malformed header name";
	*colon = '\0';
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		continue;
	for (end = v + strlen(v); end > v && (end[-1] == ' ' ||
	    end[-1] == '\t'); end--)
		continue;
	*end = '\0';
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcasecmp(line, known[i].name) == 0)
			return set_header((const char **)((char *)req +
			    known[i].off), v, known[i].name);
	return NULL;
}

/*
 * HTTP allows no control characters in a request head but HTAB (RFC
 * 9112 section 2.2 for bare CR; RFC 9110 section 5.5 for field values).
 * They would otherwise reach the route match and the handler as part of
 * a path or a header value.
 */
static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') ||
		    (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

/*
 * Splits the head into lines (CRLF or LF) and parses each, filling req
 * with pointers into head.  head is the request head without its blank
 * line, NUL-terminated and holding no other NUL.  Returns NULL, or why
 * the request is malformed.  Kept apart from the reading so it can be
 * fuzzed on its own.
 */
const char *
http_parse_head(char *head, struct request *req)
{
	char		*line, *next, *nl;
	const char	*why;
	int		 first = 1;

	for (line = head; *line != '\0'; line = next) {
		if ((nl = strchr(line, '\n')) == NULL)
			nl = line + strlen(line);
		next = *nl == '\n' ? nl + 1 : nl;
		if (nl > line && nl[-1] == '\r')
			nl--;
		*nl = '\0';
		if (has_control(line))
			return "control character in the request head";
		if (first) {
			if ((why = parse_request_line(line, req)) != NULL)
				return why;
			first = 0;
		} else if (*line != '\0' &&
		    (why = parse_header(line, req)) != NULL)
			return why;
	}
	return first ? "empty request" : NULL;
}

/*
 * Without Content-Length the body is the rest of the input; it is read
 * up to one byte past the limit so that handle() can answer 413.
 */
static int
read_rest(struct reader *rd, struct buf *b, size_t limit)
{
	size_t	 want = limit + 1;
	ssize_t	 n;

	b->len = 0;
	if (buf_add(b, rd->pending, rd->npending > want ? want :
	    rd->npending) == -1)
		return -1;
	rd->npending = 0;
	while (b->len < want && !rd->eof) {
		if (buf_reserve(b, 65536) == -1)
			return -1;
		n = read(rd->fd, b->data + b->len, want - b->len < 65536 ?
		    want - b->len : 65536);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rd->eof = 1;
			break;
		}
		b->len += (size_t)n;
	}
	rd->pending = b->data;
	rd->npending = b->len;
	return 0;
}

/* The next byte of the body's input, or -1 at its end. */
static int
next_byte(struct reader *rd)
{
	ssize_t	 n;

	if (rd->npending == 0) {
		if (rd->eof)
			return -1;
		while ((n = read(rd->fd, rd->raw, sizeof(rd->raw))) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0) {
			rd->eof = 1;
			return -1;
		}
		rd->pending = rd->raw;
		rd->npending = (size_t)n;
	}
	rd->npending--;
	return (unsigned char)*rd->pending++;
}

/*
 * A line of the chunked framing into line, without its LF or CRLF.
 * Returns its length, or -1 at the end of input or past cap.
 */
static ssize_t
chunk_line(struct reader *rd, char *line, size_t cap)
{
	size_t	 len = 0;
	int	 c;

	while ((c = next_byte(rd)) != '\n') {
		if (c == -1 || len + 1 >= cap)
			return -1;
		line[len++] = (char)c;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	return (ssize_t)len;
}

/*
 * Decodes a chunked body (RFC 9112 section 7.1) into b, up to one byte
 * past limit so that handle() can answer 413.  Chunk extensions and
 * trailer fields are read and ignored.  Returns NULL, or why the
 * framing is malformed.
 */
static const char *
read_chunked(struct reader *rd, struct buf *b, size_t limit)
{
	char		 line[MAX_CHUNK_LINE];
	const char	*p;
	size_t		 size, trailers = 0;
	ssize_t		 n;
	int		 c, digit;

	b->len = 0;
	for (;;) {
		if (chunk_line(rd, line, sizeof(line)) == -1)
			return "chunked body: a chunk size line is missing "
			    "or too long";
		size = 0;
		for (p = line; (digit = hex_digit(*p)) != -1; p++) {
			if (size > (limit + 1) / 16)
				size = limit + 2;	/* over it anyway */
			else
				size = size * 16 + (size_t)digit;
		}
		p += strspn(p, " \t");
		if (p == line || (*p != '\0' && *p != ';'))
			return "chunked body: malformed chunk size";
		if (size == 0)
			break;
		while (size-- > 0) {
			if ((c = next_byte(rd)) == -1)
				return "chunked body ended inside a chunk";
			if (buf_addc(b, (char)c) == -1)
				return "out of memory";
			if (b->len > limit)
				return NULL;
		}
		if (chunk_line(rd, line, sizeof(line)) != 0)
			return "chunked body: no line end after a chunk";
	}
	do {
		if ((n = chunk_line(rd, line, sizeof(line))) == -1 ||
		    (trailers += (size_t)n) > MAX_HEAD)
			return "chunked body: the trailer section does not end";
	} while (n > 0);
	return NULL;
}

/*
 * The framing of the body: Content-Length, chunked, or neither (the
 * rest of the input).  Returns NULL, or why the request is refused.
 */
static const char *
read_framed(const struct config *cfg, struct request *req,
    struct reader *rd, struct buf *rest, char *lenbuf, size_t lensize)
{
	const char	*why = NULL;

	if (req->transfer_encoding != NULL) {
		if (req->content_length != NULL)
			return "both Transfer-Encoding and Content-Length";
		if (strcasecmp(req->transfer_encoding, "chunked") != 0)
			return "Transfer-Encoding other than chunked";
		why = read_chunked(rd, rest, cfg->max_body);
	} else if (req->content_length == NULL &&
	    read_rest(rd, rest, cfg->max_body) == -1)
		why = "out of memory";
	if (why != NULL || req->content_length != NULL)
		return why;
	rd->pending = rest->data;
	rd->npending = rest->len;
	rd->eof = 1;
	snprintf(lenbuf, lensize, "%zu", rest->len);
	req->content_length = lenbuf;
	return NULL;
}

/*
 * A bare event: taken as a POST of it to EVENT_PATH with the first
 * token, since whoever runs the program holds the settings anyway.
 * Returns the token's header, to be wiped, or NULL without a token
 * (handle() answers 500 for that configuration).
 */
static char *
bare_event(const struct config *cfg, struct request *req)
{
	static char	 auth[sizeof("Bearer ") + MAX_TOKEN_LEN];

	log_msg("request file: a bare JSON event, taken as a POST to %s "
	    "with a valid token", cfg->event_path != NULL ?
	    cfg->event_path : DEFAULT_EVENT_PATH);
	req->method = "POST";
	req->script_name = "";
	req->path_info = cfg->event_path != NULL ? cfg->event_path :
	    DEFAULT_EVENT_PATH;
	req->content_type = "application/json";
	if (cfg->ntokens == 0)
		return NULL;
	snprintf(auth, sizeof(auth), "Bearer %.*s", (int)cfg->token_len[0],
	    cfg->token[0]);
	req->authorization = auth;
	return auth;
}

int
serve_file(const struct config *cfg, const struct sink *sink, int fd)
{
	struct state	 st;
	struct request	 req = { 0 };
	struct reader	 rd = { 0 };
	struct buf	 head = { 0 }, rest = { 0 };
	char		 lenbuf[24], *auth = NULL;
	const char	*why = NULL;
	ssize_t		 hlen;
	int		 out = STDOUT_FILENO, rc;

	if (state_init(&st) == -1) {
		log_msg("out of memory");
		return 1;
	}
	rd.fd = fd;
	/* Until a request line says otherwise, the log names the mode. */
	req.method = "request-file";
	req.path_info = "-";
	if ((hlen = read_head(&rd, &head, &why)) == HEAD_BARE) {
		rd.pending = head.data;
		rd.npending = head.len;
		auth = bare_event(cfg, &req);
	} else if (hlen >= 0) {
		rd.pending = head.data + hlen;
		rd.npending = head.len - (size_t)hlen;
		head.data[hlen - 1] = '\0';	/* the head's last newline */
		if (memchr(head.data, '\0', (size_t)hlen - 1) != NULL)
			why = "NUL byte in the request head";
		else
			why = http_parse_head(head.data, &req);
	}
	if (why == NULL)
		why = read_framed(cfg, &req, &rd, &rest, lenbuf,
		    sizeof(lenbuf));
	req.transport_error = why;
	req.read_body = read_file_body;
	req.read_ctx = &rd;
	rc = serve_request(cfg, sink, &st, &req, write_fd, &out);
	if (auth != NULL)
		explicit_bzero(auth, strlen(auth));
	buf_free(&head);
	buf_free(&rest);
	state_free(&st);
	return rc == 0 ? 0 : 1;
}
