/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The FastCGI client of the malformed corpus and the benchmark: record
 * encoding, name-value pairs, a request as a web server sends it, the
 * connection, a deadline on the exchange, and the FCGI_STDOUT stream
 * of the answer.  See fcgi-client.h.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgi-client.h"

#define FCGI_VERSION_1		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_RESPONDER		1
#define FCGI_KEEP_CONN		1
#define FCGI_MAX_CONTENT	65535
#define CONNECT_TRIES		50	/* 10 ms apart */

void
fcgi_buf_add(struct fcgi_buf *b, const void *p, size_t n)
{
	char	*np;

	if (b->len + n + 1 > b->cap) {
		if ((np = realloc(b->p, (b->len + n + 1) * 2)) == NULL)
			err(2, "realloc");
		b->p = np;
		b->cap = (b->len + n + 1) * 2;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
fcgi_buf_free(struct fcgi_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Appends the whole file at path to b; exits 2 when it cannot. */
void
fcgi_buf_read_file(struct fcgi_buf *b, const char *path)
{
	char	 tmp[8192];
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		err(2, "%s", path);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		fcgi_buf_add(b, tmp, (size_t)n);
	if (n == -1)
		err(2, "%s", path);
	close(fd);
}

/*
 * One record of request 1: its header, then the content, unpadded
 * (FastCGI allows any padding; HAProxy and H2O send none).
 */
static void
record(struct fcgi_buf *b, int type, const char *p, size_t len)
{
	unsigned char	 h[8];

	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = 0;
	h[3] = 1;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = 0;
	h[7] = 0;
	fcgi_buf_add(b, h, sizeof(h));
	fcgi_buf_add(b, p, len);
}

/*
 * A stream cut into records of at most reclen bytes, then the empty
 * record that ends it.
 */
static void
stream(struct fcgi_buf *b, int type, const char *p, size_t len,
    size_t reclen)
{
	size_t	 n;

	if (reclen == 0 || reclen > FCGI_MAX_CONTENT)
		reclen = FCGI_MAX_CONTENT;
	while (len > 0) {
		n = len > reclen ? reclen : len;
		record(b, type, p, n);
		p += n;
		len -= n;
	}
	record(b, type, "", 0);
}

/* A name-value pair's length: one byte below 128, else four. */
static void
length(struct fcgi_buf *b, size_t n)
{
	unsigned char	 l[4];

	if (n < 128) {
		l[0] = (unsigned char)n;
		fcgi_buf_add(b, l, 1);
		return;
	}
	l[0] = (unsigned char)((n >> 24) | 0x80);
	l[1] = (unsigned char)(n >> 16);
	l[2] = (unsigned char)(n >> 8);
	l[3] = (unsigned char)n;
	fcgi_buf_add(b, l, 4);
}

/* Appends one parameter to the PARAMS stream being built in b. */
void
fcgi_param(struct fcgi_buf *b, const char *name, const char *value)
{
	length(b, strlen(name));
	length(b, strlen(value));
	fcgi_buf_add(b, name, strlen(name));
	fcgi_buf_add(b, value, strlen(value));
}

/*
 * A whole request in req: BEGIN_REQUEST for a responder that may close
 * the connection, the PARAMS stream and the body as the STDIN stream.
 */
void
fcgi_request(struct fcgi_buf *req, const struct fcgi_buf *params,
    const void *body, size_t bodylen)
{
	fcgi_request_ex(req, params, body, bodylen, 0, 0);
}

/*
 * The same, asking the responder to keep the connection when keep is
 * set, with the body in STDIN records of at most reclen bytes (0: the
 * largest).
 */
void
fcgi_request_ex(struct fcgi_buf *req, const struct fcgi_buf *params,
    const void *body, size_t bodylen, int keep, size_t reclen)
{
	char	 begin[8] = { 0, FCGI_RESPONDER, 0, 0, 0, 0, 0, 0 };

	begin[2] = keep ? FCGI_KEEP_CONN : 0;
	record(req, FCGI_BEGIN_REQUEST, begin, sizeof(begin));
	stream(req, FCGI_PARAMS, params->p != NULL ? params->p : "",
	    params->len, 0);
	stream(req, FCGI_STDIN, body != NULL ? body : "", bodylen, reclen);
}

/*
 * A POST of body to path with the parameters lighttpd sends, the token
 * as a bearer, in req (which is emptied first).
 */
void
fcgi_post_request(struct fcgi_buf *req, const char *path,
    const struct fcgi_buf *body, const char *token)
{
	struct fcgi_buf	 params = { 0 };
	char		 len[32], auth[2048];

	snprintf(len, sizeof(len), "%zu", body->len);
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	fcgi_param(&params, "GATEWAY_INTERFACE", "CGI/1.1");
	fcgi_param(&params, "SERVER_PROTOCOL", "HTTP/1.1");
	fcgi_param(&params, "SERVER_SOFTWARE", "fcgi-client");
	fcgi_param(&params, "SERVER_NAME", "127.0.0.1");
	fcgi_param(&params, "SERVER_ADDR", "127.0.0.1");
	fcgi_param(&params, "SERVER_PORT", "8080");
	fcgi_param(&params, "REMOTE_ADDR", "127.0.0.1");
	fcgi_param(&params, "REMOTE_PORT", "40000");
	fcgi_param(&params, "REQUEST_METHOD", "POST");
	fcgi_param(&params, "REQUEST_URI", path);
	fcgi_param(&params, "SCRIPT_NAME", path);
	fcgi_param(&params, "DOCUMENT_ROOT", "/var/www");
	fcgi_param(&params, "CONTENT_TYPE", "application/json");
	fcgi_param(&params, "CONTENT_LENGTH", len);
	fcgi_param(&params, "HTTP_HOST", "127.0.0.1:8080");
	fcgi_param(&params, "HTTP_USER_AGENT", "fcgi-client");
	fcgi_param(&params, "HTTP_CONTENT_TYPE", "application/json");
	fcgi_param(&params, "HTTP_CONTENT_LENGTH", len);
	fcgi_param(&params, "HTTP_AUTHORIZATION", auth);
	req->len = 0;
	fcgi_request(req, &params, body->p, body->len);
	fcgi_buf_free(&params);
}

/*
 * A connection to the unix socket at path, or -1 and errno.  The socket
 * file appears at bind(), a moment before listen(): a refused
 * connection is retried for up to half a second.
 */
int
fcgi_connect(const char *path)
{
	struct sockaddr_un sun;
	int		 fd, rc, tries, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	for (tries = 0; (rc = connect(fd, (struct sockaddr *)&sun,
	    sizeof(sun))) == -1 && errno == ECONNREFUSED &&
	    tries < CONNECT_TRIES; tries++)
		usleep(10000);
	if (rc == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static long
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Sends req on a new connection to the unix socket at sock and reads
 * the answer to its end.  Returns the status on the answer's Status
 * line, or -1 when it has none; exits 2 when the socket cannot be
 * reached or gives no answer within timeout_ms.
 */
int
fcgi_post_status(const char *sock, const struct fcgi_buf *req, int timeout_ms)
{
	struct fcgi_buf	 in = { 0 }, out = { 0 };
	int		 fd, status = -1;

	if ((fd = fcgi_connect(sock)) == -1)
		err(2, "%s", sock);
	if (fcgi_exchange(fd, req->p, req->len, fd, &in, 0, timeout_ms) == -1)
		errx(2, "%s: no answer within %d s", sock, timeout_ms / 1000);
	close(fd);
	if (fcgi_stdout(&in, &out) == 0 && out.p != NULL &&
	    strncmp(out.p, "Status: ", 8) == 0)
		status = atoi(out.p + 8);
	fcgi_buf_free(&in);
	fcgi_buf_free(&out);
	return status;
}

/*
 * Writes out to wfd and reads rfd to EOF into in, both at once (a
 * server may answer before it has read everything), within timeout_ms.
 * A write that fails (the peer stopped reading) just stops the writing.
 * The two may be one socket; close_after_write closes wfd when all is
 * written, as a CGI program's stdin.  Returns 0, or -1 on timeout.
 */
int
fcgi_exchange(int wfd, const char *out, size_t outlen, int rfd,
    struct fcgi_buf *in, int close_after_write, int timeout_ms)
{
	struct pollfd	 pfd[2];
	long		 deadline = now_ms() + timeout_ms, left;
	size_t		 off = 0;
	ssize_t		 n;
	char		 tmp[65536];
	int		 nfd;

	fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
	if (outlen == 0 && close_after_write) {
		close(wfd);
		wfd = -1;
	}
	for (;;) {
		nfd = 0;
		pfd[nfd].fd = rfd;
		pfd[nfd++].events = POLLIN;
		if (wfd != -1 && off < outlen) {
			pfd[nfd].fd = wfd;
			pfd[nfd++].events = POLLOUT;
		}
		if ((left = deadline - now_ms()) <= 0)
			return -1;
		if (poll(pfd, (nfds_t)nfd, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			err(2, "poll");
		}
		if (nfd == 2 && (pfd[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			n = write(wfd, out + off, outlen - off);
			if (n > 0)
				off += (size_t)n;
			else if (n == -1 && errno != EAGAIN && errno != EINTR)
				off = outlen;	/* the peer is not reading */
			if (off == outlen && close_after_write) {
				close(wfd);
				wfd = -1;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) {
			n = read(rfd, tmp, sizeof(tmp));
			if (n == 0 || (n == -1 && errno != EAGAIN &&
			    errno != EINTR))
				break;
			if (n > 0)
				fcgi_buf_add(in, tmp, (size_t)n);
		}
	}
	if (wfd != -1 && close_after_write)
		close(wfd);
	return 0;
}

/* Whether in holds a whole FCGI_END_REQUEST record. */
static int
has_end(const struct fcgi_buf *in)
{
	const unsigned char *p = (const unsigned char *)in->p;
	size_t		 off = 0, clen, plen;

	while (off + 8 <= in->len) {
		clen = (size_t)p[off + 4] << 8 | p[off + 5];
		plen = p[off + 6];
		if (off + 8 + clen + plen > in->len)
			return 0;
		if (p[off + 1] == FCGI_END_REQUEST)
			return 1;
		off += 8 + clen + plen;
	}
	return 0;
}

/*
 * Reads the answer of one request from a connection that may stay open:
 * records into in until FCGI_END_REQUEST, within timeout_ms.  Returns 0,
 * -1 on timeout, or 1 when the connection ended first (errno says how:
 * 0 for an orderly end).
 */
int
fcgi_answer(int fd, struct fcgi_buf *in, int timeout_ms)
{
	struct pollfd	 pfd;
	long		 deadline = now_ms() + timeout_ms, left;
	ssize_t		 n;
	char		 tmp[65536];

	while (!has_end(in)) {
		if ((left = deadline - now_ms()) <= 0)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			err(2, "poll");
		}
		if (pfd.revents == 0)
			continue;
		n = read(fd, tmp, sizeof(tmp));
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return 1;
		}
		fcgi_buf_add(in, tmp, (size_t)n);
	}
	return 0;
}

/*
 * Appends the FCGI_STDOUT stream of the records in `in' to out.
 * Returns 0, or -1 when the records stop before FCGI_END_REQUEST.
 */
int
fcgi_stdout(const struct fcgi_buf *in, struct fcgi_buf *out)
{
	const unsigned char *p = (const unsigned char *)in->p;
	size_t		 off = 0, clen, plen;

	while (off + 8 <= in->len) {
		clen = (size_t)p[off + 4] << 8 | p[off + 5];
		plen = p[off + 6];
		if (off + 8 + clen + plen > in->len)
			return -1;
		if (p[off + 1] == FCGI_STDOUT)
			fcgi_buf_add(out, p + off + 8, clen);
		if (p[off + 1] == FCGI_END_REQUEST)
			return 0;
		off += 8 + clen + plen;
	}
	return -1;
}
