/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * fcgi-client: sends the same event COUNT times to a FastCGI responder
 * on a unix socket, one connection per request as lighttpd and nginx do
 * by default, and checks that every answer is a 202.  It drives the
 * connector under callgrind and for the memory measurement, where no
 * web server should be in the way.  The FastCGI side is
 * tests/lib/fcgi-client.c, shared with the malformed corpus.
 *
 * usage: fcgi-client [-n count] [-p path] socket bodyfile
 * The token is taken from BENCH_TOKEN, never from the command line.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi-client.h"

/* Generous: the connector may be running under callgrind. */
#define TIMEOUT_MS	60000

/* One request on a new connection; returns 1 when the answer is a 202. */
static int
one_request(const char *sock, const struct fcgi_buf *req)
{
	struct fcgi_buf	 in = { 0 }, out = { 0 };
	int		 fd, ok;

	if ((fd = fcgi_connect(sock)) == -1)
		err(1, "%s", sock);
	if (fcgi_exchange(fd, req->p, req->len, fd, &in, 0, TIMEOUT_MS) == -1)
		errx(1, "%s: no answer within %d s", sock, TIMEOUT_MS / 1000);
	close(fd);
	ok = fcgi_stdout(&in, &out) == 0 && out.len >= 11 &&
	    memcmp(out.p, "Status: 202", 11) == 0;
	fcgi_buf_free(&in);
	fcgi_buf_free(&out);
	return ok;
}

int
main(int argc, char *argv[])
{
	struct fcgi_buf	 body = { 0 }, req = { 0 };
	const char	*path = "/process-event", *token, *errstr = NULL;
	long		 count = 1, i, failed = 0;
	char		*end;
	int		 ch;

	while ((ch = getopt(argc, argv, "n:p:")) != -1) {
		switch (ch) {
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || count < 0)
				errstr = "-n takes a count";
			break;
		case 'p':
			path = optarg;
			break;
		default:
			errstr = "bad option";
			break;
		}
	}
	argc -= optind;
	argv += optind;
	if (errstr != NULL || argc != 2) {
		fprintf(stderr, "usage: fcgi-client [-n count] [-p path] "
		    "socket bodyfile\n");
		return 2;
	}
	if ((token = getenv("BENCH_TOKEN")) == NULL) {
		fprintf(stderr, "fcgi-client: BENCH_TOKEN is not set\n");
		return 2;
	}
	fcgi_buf_read_file(&body, argv[1]);
	fcgi_post_request(&req, path, &body, token);
	for (i = 0; i < count; i++)
		if (!one_request(argv[0], &req))
			failed++;
	if (failed > 0) {
		fprintf(stderr, "fcgi-client: %ld of %ld answers were not 202\n",
		    failed, count);
		return 1;
	}
	return 0;
}
