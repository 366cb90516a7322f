/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * fcgi-sync: the FastCGI input stream stays in step over a kept
 * connection.  For each body size in a range, one connection carries
 * a POST of that size, asking the responder to keep the connection,
 * in unpadded records as HAProxy and H2O send them, then a GET of the
 * health path.  Both answers must arrive, with the expected status.
 * When the responder closes the connection after an answer instead,
 * the close must be orderly (the stream was read to its end: a unix
 * socket closed with unread input reports a reset) and the second
 * request goes on a new connection.
 *
 * usage: fcgi-sync [-jnx] [-c length] [-r reclen] [-s status] socket
 *     event from to
 * The body is the event padded with spaces to each size, or with -j
 * that many bytes of 'x' (not JSON).  With -x the responder must close
 * each connection after the POST's answer: the close is waited for,
 * not looked for once, since it may come a moment after the answer.  CONTENT_LENGTH is the body's
 * size, or with -c the string given (empty, -1, as Caddy sends for a
 * chunked body), or with -n absent.  The token is taken from
 * SYNC_TOKEN; it may be wrong on purpose.
 *
 * usage: fcgi-sync -p count socket
 * Kept connections must not hold the responder: count connections are
 * opened in turn, each asking for a GET to be kept while the ones
 * before it stay open and idle, then each carries a second GET, the
 * last first.  Every answer must come within five seconds: a
 * responder held by an idle connection would never answer, and a
 * loaded machine can take more than a second to.
 */
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-client.h"

/* Hang detectors, not speed bounds: 16 MiB bodies under ASan on a
 * loaded machine take seconds. */
#define TIMEOUT_MS	30000
#define PIN_TIMEOUT_MS	5000
#define MAX_PIN		64

/* CONTENT_LENGTH as -c and -n set it: NULL is the body's size. */
static const char	*clen;
static int		 noclen;

static void
build(struct fcgi_buf *req, const char *method, const char *script,
    const char *body, size_t len, size_t reclen, const char *token)
{
	struct fcgi_buf	 params = { 0 };
	char		 lenbuf[32], auth[2048];

	snprintf(lenbuf, sizeof(lenbuf), "%zu", len);
	if (clen != NULL)
		snprintf(lenbuf, sizeof(lenbuf), "%s", clen);
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	fcgi_param(&params, "GATEWAY_INTERFACE", "CGI/1.1");
	fcgi_param(&params, "SERVER_PROTOCOL", "HTTP/1.1");
	fcgi_param(&params, "REQUEST_METHOD", method);
	fcgi_param(&params, "SCRIPT_NAME", script);
	fcgi_param(&params, "REQUEST_URI", script);
	if (len > 0) {
		fcgi_param(&params, "CONTENT_TYPE", "application/json");
		if (!noclen)
			fcgi_param(&params, "CONTENT_LENGTH", lenbuf);
		fcgi_param(&params, "HTTP_AUTHORIZATION", auth);
	}
	req->len = 0;
	fcgi_request_ex(req, &params, body, len, 1, reclen);
	fcgi_buf_free(&params);
}

/* The status of the answer's Status line, or -1. */
static int
status_of(const struct fcgi_buf *in)
{
	struct fcgi_buf	 out = { 0 };
	int		 st = -1;

	if (fcgi_stdout(in, &out) == 0 && out.p != NULL &&
	    strncmp(out.p, "Status: ", 8) == 0)
		st = atoi(out.p + 8);
	fcgi_buf_free(&out);
	return st;
}

/*
 * Sends req on *fd (a new connection when it is -1) and checks the
 * answer.  Leaves *fd open when the responder kept it, else -1.  With
 * close_wait, the responder must close the connection after the
 * answer, within timeout_ms.  Returns 0, or -1 with the failure
 * printed.
 */
static int
exchange(const char *sock, int *fd, const struct fcgi_buf *req, int want,
    size_t size, const char *what, int timeout_ms, int close_wait)
{
	struct fcgi_buf	 in = { 0 };
	struct pollfd	 pfd;
	char		 c;
	ssize_t		 n;
	int		 rc, st;

	if (*fd == -1 && (*fd = fcgi_connect(sock)) == -1)
		err(2, "%s", sock);
	if (write(*fd, req->p, req->len) != (ssize_t)req->len) {
		printf("size %zu: %s: write: %s\n", size, what,
		    strerror(errno));
		goto fail;
	}
	if ((rc = fcgi_answer(*fd, &in, timeout_ms)) != 0) {
		printf("size %zu: %s: %s\n", size, what, rc == -1 ?
		    "no answer in time" : errno == 0 ?
		    "connection closed without an answer" : strerror(errno));
		goto fail;
	}
	if ((st = status_of(&in)) != want) {
		printf("size %zu: %s: status %d, not %d\n", size, what, st,
		    want);
		goto fail;
	}
	fcgi_buf_free(&in);
	pfd.fd = *fd;
	pfd.events = POLLIN;
	if (close_wait && poll(&pfd, 1, timeout_ms) == 0) {
		printf("size %zu: %s: kept open, not closed\n", size, what);
		goto fail;
	}
	/* Closed after the answer?  Then it must be an orderly end. */
	while ((n = recv(*fd, &c, 1, MSG_DONTWAIT)) == -1 && errno == EINTR)
		continue;
	if (n == -1 && errno == EAGAIN)
		return 0;
	if (n != 0) {
		printf("size %zu: %s: after the answer: %s\n", size, what,
		    n == -1 ? strerror(errno) : "more bytes");
		goto fail;
	}
	close(*fd);
	*fd = -1;
	return 0;
fail:
	fcgi_buf_free(&in);
	close(*fd);
	*fd = -1;
	return -1;
}

/* The -p test: idle kept connections do not hold the responder. */
static int
pin(const char *sock, size_t count, const char *token)
{
	struct fcgi_buf	 req = { 0 };
	int		 fd[MAX_PIN];
	size_t		 i, failed = 0, kept = 0;

	if (count == 0 || count > MAX_PIN)
		errx(2, "-p takes 1 to %d", MAX_PIN);
	build(&req, "GET", "/health", NULL, 0, 0, token);
	for (i = 0; i < count; i++) {
		fd[i] = -1;
		if (exchange(sock, &fd[i], &req, 200, i, "new connection",
		    PIN_TIMEOUT_MS, 0) == -1)
			failed++;
	}
	for (i = count; i-- > 0;) {
		if (fd[i] == -1)
			continue;
		kept++;
		if (exchange(sock, &fd[i], &req, 200, i, "kept connection",
		    PIN_TIMEOUT_MS, 0) == -1)
			failed++;
		if (fd[i] != -1)
			close(fd[i]);
	}
	fcgi_buf_free(&req);
	printf("%zu connections, %zu kept, %zu failures\n", count, kept,
	    failed);
	return failed == 0 && kept == count ? 0 : 1;
}

int
main(int argc, char *argv[])
{
	struct fcgi_buf	 event = { 0 }, body = { 0 }, req = { 0 };
	const char	*token = getenv("SYNC_TOKEN");
	size_t		 from, to, size, reclen = 0, failed = 0, kept = 0;
	size_t		 npin = 0;
	int		 ch, fd, junk = 0, want = 202, close_wait = 0;

	while ((ch = getopt(argc, argv, "c:jnp:r:s:x")) != -1)
		switch (ch) {
		case 'c':
			clen = optarg;
			break;
		case 'n':
			noclen = 1;
			break;
		case 'p':
			npin = strtoul(optarg, NULL, 10);
			break;
		case 'j':
			junk = 1;
			break;
		case 'r':
			reclen = strtoul(optarg, NULL, 10);
			break;
		case 's':
			want = atoi(optarg);
			break;
		case 'x':
			close_wait = 1;
			break;
		default:
			goto usage;
		}
	argc -= optind;
	argv += optind;
	if (npin > 0 && argc == 1 && token != NULL)
		return pin(argv[0], npin, token);
	if (argc != 4 || token == NULL)
		goto usage;
	from = strtoul(argv[2], NULL, 10);
	to = strtoul(argv[3], NULL, 10);
	fcgi_buf_read_file(&event, argv[1]);
	if (from < event.len || to < from)
		errx(2, "sizes must be from %zu up", event.len);

	for (size = from; size <= to; size++) {
		body.len = 0;
		if (junk) {
			while (body.len < size)
				fcgi_buf_add(&body, "x", 1);
		} else {
			fcgi_buf_add(&body, event.p, event.len);
			while (body.len < size)
				fcgi_buf_add(&body, " ", 1);
		}
		fd = -1;
		build(&req, "POST", "/process-event", body.p, body.len,
		    reclen, token);
		if (exchange(argv[0], &fd, &req, want, size, "POST",
		    TIMEOUT_MS, close_wait) == -1) {
			failed++;
			continue;
		}
		if (fd != -1)
			kept++;
		build(&req, "GET", "/health", NULL, 0, 0, token);
		if (exchange(argv[0], &fd, &req, 200, size,
		    "the GET after it", TIMEOUT_MS, 0) == -1)
			failed++;
		if (fd != -1)
			close(fd);
	}
	printf("%zu sizes from %zu to %zu, %zu connections kept, "
	    "%zu failures\n", to - from + 1, from, to, kept, failed);
	return failed == 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: fcgi-sync [-jnx] [-c length] [-r reclen] "
	    "[-s status] socket event from to\n"
	    "       fcgi-sync -p count socket\n");
	return 2;
}
