/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * FastCGI transport on libfcgi's FCGX_* API: one request at a time,
 * the same handle() as the other modes.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "extern.h"

/*
 * What is read of FCGI_STDIN after the answer, looking for its end,
 * before the connection is given up instead (see finish_stdin()).
 */
#define STDIN_TAIL_LIMIT	(64 * 1024)

static int
read_fcgi_body(void *ctx, char *dst, size_t len)
{
	FCGX_Stream	*in = ctx;
	int		 n;

	while (len > 0) {
		n = FCGX_GetStr(dst, len > INT32_MAX ? INT32_MAX : (int)len, in);
		if (n <= 0)
			return -1;
		dst += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_fcgi(void *ctx, const char *p, size_t len)
{
	FCGX_Stream	*out = ctx;

	if (FCGX_PutStr(p, (int)len, out) != (int)len)
		return -1;
	return 0;
}

/*
 * SIGTERM, SIGINT and SIGHUP end the process at once while it is in
 * FCGX_Accept_r(), before anything of a request is handled (the web
 * server then answers 502 and NSPS sends again), and only after the
 * response otherwise.  A flag does that rather than a signal mask, so a request
 * costs no sigprocmask() pair; SA_RESTART keeps a signal from cutting
 * the request's reads and writes short.
 */
static volatile sig_atomic_t busy, stop_asked;

static void
on_stop(int sig)
{
	(void)sig;
	if (!busy)
		_exit(0);
	stop_asked = 1;
}

static int
setup_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGHUP);
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1)
		return -1;
	return 0;
}

/*
 * Points the request at the parameters it needs in one pass over the
 * environment, rather than one FCGX_GetParam() scan of the whole list
 * for each of eight names.  As with FCGX_GetParam(), the first of
 * duplicated names wins.
 */
static void
fill_request(struct request *req, FCGX_Request *fr)
{
	struct {
		const char	 *name;
		size_t		  len;
		const char	**dst;
	} want[] = {
		{ "REQUEST_METHOD", 14, &req->method },
		{ "SCRIPT_NAME", 11, &req->script_name },
		{ "PATH_INFO", 9, &req->path_info },
		{ "HTTP_AUTHORIZATION", 18, &req->authorization },
		{ "CONTENT_TYPE", 12, &req->content_type },
		{ "CONTENT_LENGTH", 14, &req->content_length },
		{ "HTTP_X_B3_TRACEID", 17, &req->trace_id },
		{ "HTTP_X_REQUEST_ID", 17, &req->unique_id },
	};
	char		**e;
	const char	 *eq;
	size_t		  i, len;

	memset(req, 0, sizeof(*req));
	for (e = fr->envp; e != NULL && *e != NULL; e++) {
		if ((eq = strchr(*e, '=')) == NULL)
			continue;
		len = (size_t)(eq - *e);
		for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (want[i].len == len && *want[i].dst == NULL &&
			    memcmp(want[i].name, *e, len) == 0) {
				*want[i].dst = eq + 1;
				break;
			}
	}
	if (req->method == NULL)
		req->method = "";
	req->read_body = read_fcgi_body;
	req->read_ctx = fr->in;
}

/*
 * Reads FCGI_STDIN to the empty record that ends it (FastCGI 1.0
 * sections 3.3 and 6.2), whatever the answer was.  libfcgi frees its
 * read buffer at FCGX_Finish_r(): a body read to CONTENT_LENGTH only
 * may leave that record, or the part of its header that did not fit in
 * the buffer, in the socket, and the next request on a kept connection
 * would start there.  Servers that do not pad records (HAProxy, H2O)
 * hit it with 7 body sizes in every 8 KiB.  Usually the record is
 * already in the buffer and this costs no system call.  Returns 0 at
 * the end of the stream, -1 when it is broken or longer than the bound:
 * the connection cannot be kept then.
 */
static int
finish_stdin(FCGX_Stream *in)
{
	char	 tmp[512];
	size_t	 left = STDIN_TAIL_LIMIT;
	int	 n;

	while ((n = FCGX_GetStr(tmp, sizeof(tmp), in)) > 0) {
		if ((size_t)n >= left)
			return -1;
		left -= (size_t)n;
	}
	return FCGX_GetError(in) == 0 ? 0 : -1;
}

/*
 * Serves FastCGI on listen_fd, or on a socket bound to addr when it is
 * not NULL.  The stop signals are set first: once the socket exists a
 * web server or a test may send one, and the default action would end
 * the process with 143 rather than 0.
 */
int
serve_fcgi(const struct config *cfg, const struct sink *sink,
    const char *addr, int listen_fd)
{
	FCGX_Request	 fr;
	struct request	 req;
	struct state	 st;
	int		 rc;

	if (setup_signals() == -1) {
		log_msg("sigaction: %s", strerror(errno));
		return 1;
	}
	if (addr != NULL && (listen_fd = listen_socket(addr)) == -1)
		return 1;
	if (state_init(&st) == -1 || FCGX_Init() != 0 ||
	    FCGX_InitRequest(&fr, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_msg("FastCGI initialisation failed");
		return 1;
	}
	for (;;) {
		busy = 0;
		if (stop_asked)
			_exit(0);
		rc = FCGX_Accept_r(&fr);
		busy = 1;
		if (rc < 0) {
			if (rc == -EINTR)
				continue;
			log_msg("FCGX_Accept_r: %s", rc > -4096 ?
			    strerror(-rc) : "failed");
			break;
		}
		fill_request(&req, &fr);
		(void)serve_request(cfg, sink, &st, &req, write_fcgi, fr.out);
		if (finish_stdin(fr.in) == -1)
			fr.keepConnection = 0;
		FCGX_Finish_r(&fr);
	}
	state_free(&st);
	return 1;
}
