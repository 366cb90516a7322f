/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * fcgi-post: posts each event file, in the order given, to a FastCGI
 * connector on a unix socket, one connection per request as lighttpd
 * and nginx send them, and prints "STATUS FILE" for each.  The queue
 * suites load hundreds of events with it through one long-lived
 * connector (tests/helper.bash, post_events), where one CGI process
 * an event cost each post an exec and, on PostgreSQL, a new backend.
 *
 * usage: fcgi-post socket file...
 * The token is taken from POST_TOKEN, never from the command line.
 * Exits 0 when every answer is a 202, 1 when one is not (the rest are
 * still sent), 2 on a usage error or when the connector cannot be
 * reached or does not answer within the timeout.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>

#include "fcgi-client.h"

/* A hang detector, not a speed bound: the connector may run under ASan
 * on a loaded machine, and PostgreSQL's commit may wait on a disk. */
#define TIMEOUT_MS	30000

int
main(int argc, char *argv[])
{
	struct fcgi_buf	 body = { 0 }, req = { 0 };
	const char	*token;
	int		 i, status, rc = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: fcgi-post socket file...\n");
		return 2;
	}
	if ((token = getenv("POST_TOKEN")) == NULL)
		errx(2, "POST_TOKEN is not set");
	for (i = 2; i < argc; i++) {
		body.len = 0;
		fcgi_buf_read_file(&body, argv[i]);
		fcgi_post_request(&req, "/process-event", &body, token);
		status = fcgi_post_status(argv[1], &req, TIMEOUT_MS);
		printf("%d %s\n", status, argv[i]);
		if (status != 202)
			rc = 1;
	}
	fcgi_buf_free(&body);
	fcgi_buf_free(&req);
	return rc;
}
