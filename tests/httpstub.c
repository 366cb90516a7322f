/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * A stand-in HTTP API for the http-forward handler's tests: listens on
 * 127.0.0.1 on a free port, prints the port, then answers each request
 * by its path: /200, /429, /500, /400, /301 answer that status; /hang
 * never answers.  Every request (headers and body) is appended to the
 * file given as argument.  One process per connection, so a hanging
 * request does not hold up the others.  Stops on SIGTERM.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_REQUEST	(4 * 1024 * 1024)

static void
serve(int c, const char *logpath)
{
	char		*req, *end, *cl, *p, reply[256];
	size_t		 len = 0, want = 0;
	ssize_t		 n;
	int		 code, fd;

	if ((req = malloc(MAX_REQUEST + 1)) == NULL)
		_exit(1);
	for (;;) {
		n = read(c, req + len, MAX_REQUEST - len);
		if (n <= 0)
			_exit(1);
		len += (size_t)n;
		req[len] = '\0';
		if ((end = strstr(req, "\r\n\r\n")) == NULL)
			continue;
		end += 4;
		want = 0;
		for (cl = req; (cl = strcasestr(cl, "\r\ncontent-length:")) &&
		    cl < end; cl++)
			want = strtoul(cl + 17, NULL, 10);
		if (len >= (size_t)(end - req) + want || len == MAX_REQUEST)
			break;
	}
	if ((fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT, 0600)) != -1) {
		(void)write(fd, req, len);
		(void)write(fd, "\n", 1);
		close(fd);
	}
	p = strchr(req, ' ');
	if (p != NULL && strncmp(p, " /hang", 6) == 0) {
		alarm(60);
		pause();
		_exit(0);
	}
	code = p != NULL && p[1] == '/' ? atoi(p + 2) : 0;
	if (code < 200 || code > 599)
		code = 404;
	n = snprintf(reply, sizeof(reply), "HTTP/1.1 %d Stub\r\n"
	    "Content-Type: application/json\r\nContent-Length: 16\r\n"
	    "Connection: close\r\n\r\n{\"status\":%5d}", code, code);
	(void)write(c, reply, (size_t)n);
	_exit(0);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in sin;
	socklen_t	 slen = sizeof(sin);
	int		 s, c;

	if (argc != 2) {
		fprintf(stderr, "usage: httpstub logfile\n");
		return 64;
	}
	signal(SIGCHLD, SIG_IGN);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(s, 64) == -1 ||
	    getsockname(s, (struct sockaddr *)&sin, &slen) == -1) {
		perror("httpstub");
		return 1;
	}
	printf("%u\n", ntohs(sin.sin_port));
	fflush(stdout);
	for (;;) {
		if ((c = accept(s, NULL, NULL)) == -1) {
			if (errno == EINTR)
				continue;
			perror("httpstub: accept");
			return 1;
		}
		switch (fork()) {
		case -1:
			close(c);
			break;
		case 0:
			close(s);
			serve(c, argv[1]);
			break;
		default:
			close(c);
		}
	}
}
