/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * A small FastCGI client (FastCGI 1.0, responder role, one request per
 * connection as lighttpd and nginx send them by default, or several on a
 * kept one), shared by the malformed corpus (tests/malformed.c), the
 * kept-connection sweep (tests/fcgi-sync.c), the queue suites' loader
 * (tests/fcgi-post.c) and the benchmark's client (bench/fcgi-client.c).
 */
#ifndef FCGI_CLIENT_H
#define FCGI_CLIENT_H

#include <stddef.h>

/* A growing byte buffer; p[len] is always a NUL. */
struct fcgi_buf {
	char		*p;
	size_t		 len, cap;
};

void	fcgi_buf_add(struct fcgi_buf *, const void *, size_t);
void	fcgi_buf_free(struct fcgi_buf *);
void	fcgi_buf_read_file(struct fcgi_buf *, const char *);
void	fcgi_param(struct fcgi_buf *, const char *, const char *);
void	fcgi_request(struct fcgi_buf *, const struct fcgi_buf *,
	    const void *, size_t);
void	fcgi_request_ex(struct fcgi_buf *, const struct fcgi_buf *,
	    const void *, size_t, int, size_t);
void	fcgi_post_request(struct fcgi_buf *, const char *,
	    const struct fcgi_buf *, const char *);
int	fcgi_connect(const char *);
int	fcgi_post_status(const char *, const struct fcgi_buf *, int);
int	fcgi_exchange(int, const char *, size_t, int, struct fcgi_buf *,
	    int, int);
int	fcgi_answer(int, struct fcgi_buf *, int);
int	fcgi_stdout(const struct fcgi_buf *, struct fcgi_buf *);

#endif
