/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * CGI/1.1 transport (RFC 3875): one request from the environment and
 * fd 0, one response on fd 1, then exit.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "extern.h"

/* Reads exactly len bytes of the body from fd 0; never to EOF. */
static int
read_fd_body(void *ctx, char *dst, size_t len)
{
	return read_all(*(int *)ctx, dst, len);
}

/*
 * Some servers (lighttpd's mod_cgi) send SIGTERM as soon as they hold
 * the whole response, which would kill us before the log line is
 * written.  The body has been read by now, so nothing can hang: hold
 * the stop signals from here on; they die with the process at exit.
 */
static int
write_fd(void *ctx, const char *p, size_t len)
{
	sigset_t	 stopset;

	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sigaddset(&stopset, SIGHUP);
	sigprocmask(SIG_BLOCK, &stopset, NULL);
	return write_all(*(int *)ctx, p, len);
}

int
serve_cgi(const struct config *cfg, const struct sink *sink)
{
	struct state	 st;
	struct request	 req = { 0 };
	int		 in = STDIN_FILENO, out = STDOUT_FILENO, rc;
	const char	*method;

	if (state_init(&st) == -1) {
		log_msg("out of memory");
		return 1;
	}
	method = getenv("REQUEST_METHOD");
	req.method = method != NULL ? method : "";
	req.script_name = getenv("SCRIPT_NAME");
	req.path_info = getenv("PATH_INFO");
	req.authorization = getenv("HTTP_AUTHORIZATION");
	req.content_type = getenv("CONTENT_TYPE");
	req.content_length = getenv("CONTENT_LENGTH");
	req.trace_id = getenv("HTTP_X_B3_TRACEID");
	req.unique_id = getenv("HTTP_X_REQUEST_ID");
	req.read_body = read_fd_body;
	req.read_ctx = &in;
	rc = serve_request(cfg, sink, &st, &req, write_fd, &out);
	state_free(&st);
	return rc == 0 ? 0 : 1;
}
