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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fcgi-client.h"

/* Generous: the connector may be running under callgrind. */
#define TIMEOUT_MS	60000

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
		if (fcgi_post_status(argv[0], &req, TIMEOUT_MS) != 202)
			failed++;
	if (failed > 0) {
		fprintf(stderr, "fcgi-client: %ld of %ld answers were not 202\n",
		    failed, count);
		return 1;
	}
	return 0;
}
