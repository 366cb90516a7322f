/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * fcgi-client: sends the same event COUNT times to a FastCGI responder
 * on a unix socket, one connection per request as lighttpd and nginx do
 * by default, and checks that every answer is a 202.  It drives the
 * connector under callgrind and for the memory measurement, where no
 * web server should be in the way.
 *
 * usage: fcgi-client [-n count] [-p path] socket bodyfile
 * The token is taken from BENCH_TOKEN, never from the command line.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FCGI_BEGIN_REQUEST	1
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_RESPONDER		1
#define MAX_RECORD		65535

struct bytes {
	unsigned char	*p;
	size_t		 len;
	size_t		 cap;
};

static void
die(const char *what)
{
	fprintf(stderr, "fcgi-client: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		if ((b->p = realloc(b->p, b->cap)) == NULL)
			die("realloc");
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
add_header(struct bytes *b, int type, size_t len)
{
	unsigned char	 h[8] = { 1, (unsigned char)type, 0, 1,
	    (unsigned char)(len >> 8), (unsigned char)len, 0, 0 };

	add(b, h, sizeof(h));
}

static void
add_length(struct bytes *b, size_t n)
{
	unsigned char	 l[4];

	if (n < 128) {
		l[0] = (unsigned char)n;
		add(b, l, 1);
		return;
	}
	l[0] = (unsigned char)(0x80 | (n >> 24));
	l[1] = (unsigned char)(n >> 16);
	l[2] = (unsigned char)(n >> 8);
	l[3] = (unsigned char)n;
	add(b, l, 4);
}

static void
add_param(struct bytes *b, const char *name, const char *value)
{
	add_length(b, strlen(name));
	add_length(b, strlen(value));
	add(b, name, strlen(name));
	add(b, value, strlen(value));
}

/* A stream (PARAMS or STDIN) cut into records, then its empty record. */
static void
add_stream(struct bytes *b, int type, const unsigned char *p, size_t n)
{
	size_t	 chunk;

	while (n > 0) {
		chunk = n > MAX_RECORD ? MAX_RECORD : n;
		add_header(b, type, chunk);
		add(b, p, chunk);
		p += chunk;
		n -= chunk;
	}
	add_header(b, type, 0);
}

static void
read_file(const char *path, struct bytes *b)
{
	char	 tmp[8192];
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		die(path);
	while ((n = read(fd, tmp, sizeof(tmp))) > 0)
		add(b, tmp, (size_t)n);
	if (n == -1)
		die(path);
	close(fd);
}

static void
build_request(struct bytes *req, const char *path, const struct bytes *body,
    const char *token)
{
	static const unsigned char begin[8] = { 0, FCGI_RESPONDER, 0 };
	struct bytes	 params = { 0 };
	char		 len[32], auth[2048];

	snprintf(len, sizeof(len), "%zu", body->len);
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	add_param(&params, "GATEWAY_INTERFACE", "CGI/1.1");
	add_param(&params, "SERVER_PROTOCOL", "HTTP/1.1");
	add_param(&params, "SERVER_SOFTWARE", "fcgi-client");
	add_param(&params, "SERVER_NAME", "127.0.0.1");
	add_param(&params, "SERVER_ADDR", "127.0.0.1");
	add_param(&params, "SERVER_PORT", "8080");
	add_param(&params, "REMOTE_ADDR", "127.0.0.1");
	add_param(&params, "REMOTE_PORT", "40000");
	add_param(&params, "REQUEST_METHOD", "POST");
	add_param(&params, "REQUEST_URI", path);
	add_param(&params, "SCRIPT_NAME", path);
	add_param(&params, "DOCUMENT_ROOT", "/var/www");
	add_param(&params, "CONTENT_TYPE", "application/json");
	add_param(&params, "CONTENT_LENGTH", len);
	add_param(&params, "HTTP_HOST", "127.0.0.1:8080");
	add_param(&params, "HTTP_USER_AGENT", "fcgi-client");
	add_param(&params, "HTTP_CONTENT_TYPE", "application/json");
	add_param(&params, "HTTP_CONTENT_LENGTH", len);
	add_param(&params, "HTTP_AUTHORIZATION", auth);

	add_header(req, FCGI_BEGIN_REQUEST, sizeof(begin));
	add(req, begin, sizeof(begin));
	add_stream(req, FCGI_PARAMS, params.p, params.len);
	add_stream(req, FCGI_STDIN, body->p, body->len);
	free(params.p);
}

static void
read_exact(int fd, unsigned char *p, size_t n)
{
	ssize_t	 r;

	while (n > 0) {
		if ((r = read(fd, p, n)) == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			die("read");
		}
		p += r;
		n -= (size_t)r;
	}
}

/* One request on a new connection; returns 1 when the answer is a 202. */
static int
one_request(const char *sock, const struct bytes *req)
{
	struct sockaddr_un sun;
	unsigned char	 h[8], data[MAX_RECORD + 255];
	size_t		 len, got = 0;
	ssize_t		 n;
	const unsigned char *p = req->p;
	size_t		 left = req->len;
	int		 fd, ok = 0;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		die(sock);
	}
	strcpy(sun.sun_path, sock);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		die("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die(sock);
	while (left > 0) {
		if ((n = write(fd, p, left)) == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		p += n;
		left -= (size_t)n;
	}
	for (;;) {
		read_exact(fd, h, sizeof(h));
		len = ((size_t)h[4] << 8 | h[5]) + h[6];
		read_exact(fd, data, len);
		if (h[1] == FCGI_STDOUT && got == 0 && len >= 11) {
			ok = memcmp(data, "Status: 202", 11) == 0;
			got = 1;
		}
		if (h[1] == FCGI_END_REQUEST)
			break;
	}
	close(fd);
	return ok;
}

int
main(int argc, char *argv[])
{
	struct bytes	 body = { 0 }, req = { 0 };
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
	read_file(argv[1], &body);
	build_request(&req, path, &body, token);
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
