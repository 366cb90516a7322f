/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * FastCGI transport on libfcgi's FCGX_* API: the same handle() as the
 * other modes, over any number of the web server's connections (see
 * serve_fcgi()), one request at a time, or one per thread where the
 * store lets several wait on one disk flush (the spool's log).
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "extern.h"

/*
 * What is read of FCGI_STDIN after the answer, looking for its end,
 * before the connection is given up instead (see finish_stdin()).  As
 * large as a refused body's drain (handle.c): a web server that has
 * written the whole request into the socket's buffers (hundreds of
 * KiB on a unix socket, some MiB on TCP) may read the answer and send
 * the next request before it sees the close, and that request would be
 * lost; a larger one is still being written when the close comes.
 */
#define STDIN_TAIL_LIMIT	(16u * 1024 * 1024)

/* What read_fcgi_to_end() asks libfcgi for at a time. */
#define BODY_CHUNK		(64 * 1024)

/*
 * Connections one process watches at once.  A new one beyond this
 * closes the one idle the longest.
 */
#define MAX_CONNS		64

/* The listening socket's mark in the epoll set, beside the slots. */
#define LISTEN_SLOT		UINT32_MAX

/*
 * The web server's connections one thread holds, each with the libfcgi
 * request that reads it: ipcFd is -1 in a free slot.  Its epoll set
 * has those kept after a request (see watch()) and the listening
 * socket, which every thread's set shares
 * with EPOLLEXCLUSIVE: a new connection wakes one thread, not all.
 */
struct pool {
	FCGX_Request	 fr[MAX_CONNS];
	unsigned long	 last[MAX_CONNS];	/* when last served */
	unsigned char	 watched[MAX_CONNS];	/* in the epoll set */
	unsigned long	 clock;
	struct epoll_event ev[MAX_CONNS + 1];
	int		 ready[MAX_CONNS];	/* slots with input */
	int		 nready;
	int		 listen_ready;
	int		 epfd;
	int		 listen_fd;
	const char	*allowed;		/* FCGI_WEB_SERVER_ADDRS */
};

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

/*
 * FCGI_STDIN to the empty record that ends it, for a body sent without
 * CONTENT_LENGTH (Caddy's chunked bodies): FastCGI marks the end of the
 * stream, so the length is not needed.  Reads at most one byte past
 * max, to tell a body of exactly max bytes from a longer one.
 */
static int
read_fcgi_to_end(void *ctx, struct buf *dst, size_t max)
{
	FCGX_Stream	*in = ctx;
	size_t		 want;
	int		 n;

	for (;;) {
		want = max + 1 - dst->len;
		if (want > BODY_CHUNK)
			want = BODY_CHUNK;
		if (buf_reserve(dst, want) == -1)
			return -2;
		n = FCGX_GetStr(dst->data + dst->len, (int)want, in);
		if (n < 0)
			return -1;
		dst->len += (size_t)n;
		dst->data[dst->len] = '\0';
		if (dst->len > max)
			return 1;
		if ((size_t)n < want)
			break;
	}
	return FCGX_GetError(in) == 0 ? 0 : -1;
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
 * SIGTERM, SIGINT and SIGHUP end the process at once while no request
 * is being served, before anything of the next one is handled (the web
 * server then answers 502 and NSPS sends again), and otherwise once
 * the last request served has been answered.  Counters do that rather
 * than a signal mask, so a request costs no sigprocmask() pair; both
 * are atomic, so that the handler, on whichever thread it runs, and a
 * thread ending a request cannot both miss the other.  SA_RESTART keeps
 * a signal from cutting the request's reads and writes short.
 */
static int	 busy, stop_asked;

static void
on_stop(int sig)
{
	(void)sig;
	__atomic_store_n(&stop_asked, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&busy, __ATOMIC_SEQ_CST) == 0)
		_exit(0);
}

/* Before a request is taken: a stop asked for ends the process. */
static void
stop_if_asked(void)
{
	if (!__atomic_load_n(&stop_asked, __ATOMIC_SEQ_CST))
		return;
	if (__atomic_load_n(&busy, __ATOMIC_SEQ_CST) == 0)
		_exit(0);
	/* Another thread's request is still being served: it ends it. */
	for (;;)
		pause();
}

static void
request_begin(void)
{
	__atomic_add_fetch(&busy, 1, __ATOMIC_SEQ_CST);
}

static void
request_end(void)
{
	if (__atomic_sub_fetch(&busy, 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&stop_asked, __ATOMIC_SEQ_CST))
		_exit(0);
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
	req->read_to_end = read_fcgi_to_end;
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
	char	 tmp[8192];
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
 * Whether a TCP peer may connect: FCGI_WEB_SERVER_ADDRS lists the
 * addresses allowed, comma-separated, as libfcgi reads it.  Unset, or
 * a unix socket, lets everyone in.
 */
static int
peer_allowed(const char *allowed, const struct sockaddr_storage *ss)
{
	char		 addr[INET6_ADDRSTRLEN];
	const char	*p;
	size_t		 len;

	if (allowed == NULL || (ss->ss_family != AF_INET &&
	    ss->ss_family != AF_INET6))
		return 1;
	if (inet_ntop(ss->ss_family, ss->ss_family == AF_INET ?
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr :
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr,
	    addr, sizeof(addr)) == NULL)
		return 0;
	len = strlen(addr);
	for (p = allowed; *p != '\0'; p += strcspn(p, ",")) {
		p += strspn(p, ", ");
		if (strncmp(p, addr, len) == 0 && (p[len] == '\0' ||
		    p[len] == ',' || p[len] == ' '))
			return 1;
	}
	return 0;
}

/* Whether any connection is held: libfcgi closes them as it goes. */
static int
holding(const struct pool *p)
{
	int	 i;

	for (i = 0; i < MAX_CONNS; i++)
		if (p->fr[i].ipcFd != -1)
			return 1;
	return 0;
}

/* A free slot, or the one idle the longest, closed to make room. */
static int
free_slot(struct pool *p)
{
	int	 i, old = 0;

	for (i = 0; i < MAX_CONNS; i++) {
		if (p->fr[i].ipcFd == -1)
			return i;
		if (p->last[i] < p->last[old])
			old = i;
	}
	close(p->fr[old].ipcFd);
	p->fr[old].ipcFd = -1;
	return old;
}

/*
 * Takes one connection waiting on the listening socket, which is
 * non-blocking: another process may have taken it first.  One at a
 * time, so that the processes woken with this one share the backlog.
 * Returns its slot, -1 when none was waiting, or -2 when the socket
 * itself fails.
 */
static int
accept_conn(struct pool *p)
{
	struct sockaddr_storage ss;
	socklen_t	 sslen;
	int		 fd, i, on = 1;

	for (;;) {
		sslen = sizeof(ss);
		fd = accept4(p->listen_fd, (struct sockaddr *)&ss, &sslen,
		    SOCK_CLOEXEC);
		if (fd != -1 && peer_allowed(p->allowed, &ss))
			break;
		if (fd != -1) {
			close(fd);
			continue;
		}
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
		case EINTR:
			return -1;
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			log_msg("accept: %s", strerror(errno));
			return -1;
		default:
			log_msg("accept: %s", strerror(errno));
			return -2;
		}
	}
	if (ss.ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	/*
	 * FCGX_Accept_r() reads a connection already in ipcFd.  It first
	 * finishes the slot's last request and closes the connection
	 * unless that one was kept: the new one is marked kept until its
	 * own FCGI_BEGIN_REQUEST says.
	 */
	i = free_slot(p);
	p->fr[i].ipcFd = fd;
	p->watched[i] = 0;
	p->fr[i].keepConnection = 1;
	p->last[i] = ++p->clock;
	return i;
}

/*
 * A connection kept after its first request goes into the epoll set
 * for the next one.  One that is not (lighttpd's, and most web
 * servers' by default) never does: its request is read as soon as it
 * is accepted, and libfcgi closes it after the answer.
 */
static void
watch(struct pool *p, int slot)
{
	struct epoll_event ev;
	FCGX_Request	*fr = &p->fr[slot];

	if (fr->ipcFd == -1 || p->watched[slot])
		return;
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.u32 = (uint32_t)slot;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fr->ipcFd, &ev) == -1) {
		log_msg("epoll_ctl: %s", strerror(errno));
		close(fr->ipcFd);
		fr->ipcFd = -1;
		return;
	}
	p->watched[slot] = 1;
}

/*
 * Waits for a request on any held connection, or a new connection:
 * fills p->ready and p->listen_ready.  Returns 0, also after a signal,
 * or -1.  A connection the web server has closed with nothing left to
 * read is closed here (which takes it out of the epoll set), rather
 * than by FCGX_Accept_r(), which would go on to accept(2) and wait for
 * a request there.
 */
static int
wait_ready(struct pool *p)
{
	uint32_t	 e;
	int		 i, n, slot, fd, avail;

	p->nready = 0;
	p->listen_ready = 0;
	if ((n = epoll_wait(p->epfd, p->ev, MAX_CONNS + 1, -1)) == -1)
		return errno == EINTR ? 0 : -1;
	for (i = 0; i < n; i++) {
		if (p->ev[i].data.u32 == LISTEN_SLOT) {
			p->listen_ready = 1;
			continue;
		}
		slot = (int)p->ev[i].data.u32;
		if ((fd = p->fr[slot].ipcFd) == -1)
			continue;
		e = p->ev[i].events;
		if ((e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
		    (ioctl(fd, FIONREAD, &avail) == -1 || avail == 0)) {
			close(fd);
			p->fr[slot].ipcFd = -1;
			continue;
		}
		p->ready[p->nready++] = slot;
	}
	return 0;
}

/*
 * Whether the connection, to be closed after this request, has nothing
 * left unread: then a plain close(2) sends no reset that could discard
 * the answer.  libfcgi otherwise shuts the socket down and waits for
 * the web server to close first (a thread blocked per request), which
 * it skips for a request marked detached.
 */
static int
closes_drained(const FCGX_Request *fr)
{
	int	 avail;

	if (fr->keepConnection)
		return 0;
	return ioctl(fr->ipcFd, FIONREAD, &avail) == 0 && avail == 0;
}

/*
 * Reads one request from a connection just accepted or found readable,
 * answers it and finishes it, keeping the connection when the web
 * server asked for that (FCGI_KEEP_CONN) and the input stream ended
 * cleanly.
 * Returns -1 when libfcgi fails for good.
 */
static int
serve_one(const struct config *cfg, const struct sink *sink,
    struct state *st, struct pool *p, int slot)
{
	FCGX_Request	*fr = &p->fr[slot];
	struct request	 req;
	int		 rc;

	p->last[slot] = ++p->clock;

	stop_if_asked();
	rc = FCGX_Accept_r(fr);
	if (rc < 0) {
		/* A protocol error: libfcgi closed it, found none waiting. */
		if (rc == -EINTR || rc == -EAGAIN || rc == -EWOULDBLOCK)
			return 0;
		log_msg("FCGX_Accept_r: %s", rc > -4096 ? strerror(-rc) :
		    "failed");
		return -1;
	}
	request_begin();
	fill_request(&req, fr);
	(void)serve_request(cfg, sink, st, &req, write_fcgi, fr->out);
	if (finish_stdin(fr->in) == -1)
		fr->keepConnection = 0;
	fr->detached = closes_drained(fr);
	FCGX_Finish_r(fr);
	request_end();
	watch(p, slot);
	return 0;
}

/*
 * One thread's loop over its own pool of connections: returns only
 * when libfcgi or epoll_wait(2) fails for good.
 */
static void
serve_pool(const struct config *cfg, const struct sink *sink,
    struct state *st, struct pool *p)
{
	int	 i;

	for (;;) {
		stop_if_asked();
		/*
		 * Holding no connection, take a waiting one before any
		 * poll(): under load there is one, and none of its
		 * requests waits on another's.
		 */
		if (!holding(p) && (i = accept_conn(p)) != -1) {
			if (i == -2 || serve_one(cfg, sink, st, p, i) == -1)
				return;
			continue;
		}
		if (wait_ready(p) == -1) {
			log_msg("epoll_wait: %s", strerror(errno));
			return;
		}
		for (i = 0; i < p->nready; i++)
			if (serve_one(cfg, sink, st, p, p->ready[i]) == -1)
				return;
		/* A new connection's request follows its connect(2). */
		if (p->listen_ready && (i = accept_conn(p)) != -1 &&
		    (i == -2 || serve_one(cfg, sink, st, p, i) == -1))
			return;
	}
}

/* A pool of connections on the listening socket, for one thread. */
static struct pool *
pool_new(int listen_fd)
{
	struct epoll_event ev;
	struct pool	*p;
	int		 i;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u32 = LISTEN_SLOT;
	if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, listen_fd, &ev) == -1) {
		if (p->epfd != -1)
			close(p->epfd);
		free(p);
		return NULL;
	}
	p->listen_fd = listen_fd;
	p->allowed = getenv("FCGI_WEB_SERVER_ADDRS");
	for (i = 0; i < MAX_CONNS; i++)
		FCGX_InitRequest(&p->fr[i], listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);
	return p;
}

struct fcgi_thread {
	const struct config	*cfg;
	const struct sink	*sink;
	int			 listen_fd;
};

/*
 * A thread beside the first: its own pool, state and locale.  Its end
 * ends the process, as the first thread's does: the web server starts
 * another.
 */
static void *
worker_main(void *arg)
{
	const struct fcgi_thread *w = arg;
	struct state	 st;
	struct pool	*p;

	use_c_locale();
	if ((p = pool_new(w->listen_fd)) == NULL || state_init(&st) == -1) {
		log_msg("thread: %s", strerror(ENOMEM));
		_exit(1);
	}
	serve_pool(w->cfg, w->sink, &st, p);
	_exit(1);
}

/* The threads beside the first: threads - 1 of them. */
static int
start_workers(struct fcgi_thread *w, int threads)
{
	pthread_attr_t	 attr;
	pthread_t	 tid;
	int		 i, rc;

	if ((rc = pthread_attr_init(&attr)) != 0 ||
	    (rc = pthread_attr_setdetachstate(&attr,
	    PTHREAD_CREATE_DETACHED)) != 0) {
		log_msg("pthread_attr: %s", strerror(rc));
		return -1;
	}
	for (i = 1; i < threads; i++)
		if ((rc = pthread_create(&tid, &attr, worker_main, w)) != 0) {
			log_msg("pthread_create: %s", strerror(rc));
			pthread_attr_destroy(&attr);
			return -1;
		}
	pthread_attr_destroy(&attr);
	return 0;
}

/*
 * Serves FastCGI on listen_fd, or on a socket bound to addr when it is
 * not NULL, with threads serving a request each (1: the calling thread
 * alone).  The stop signals are set first: once the socket exists a
 * web server or a test may send one, and the default action would end
 * the process with 143 rather than 0.
 *
 * libfcgi serves one connection per FCGX_Request and, when the web
 * server keeps a connection (FCGI_KEEP_CONN), blocks reading it while
 * it is idle: a process would be held by one idle connection while
 * others wait in the backlog.  So each thread accepts connections
 * itself and holds several, each with its own FCGX_Request, and reads
 * whichever epoll_wait(2) finds a request on.  A thread serves its
 * requests one at a time.
 */
int
serve_fcgi(const struct config *cfg, const struct sink *sink,
    const char *addr, int listen_fd, int threads)
{
	static struct fcgi_thread w;
	struct state	 st;
	struct pool	*p;

	if (setup_signals() == -1) {
		log_msg("sigaction: %s", strerror(errno));
		return 1;
	}
	if (addr != NULL && (listen_fd = listen_socket(addr)) == -1)
		return 1;
	if (fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) |
	    O_NONBLOCK) == -1) {
		log_msg("fcntl: %s", strerror(errno));
		return 1;
	}
	if (state_init(&st) == -1 || FCGX_Init() != 0 ||
	    (p = pool_new(listen_fd)) == NULL) {
		log_msg("FastCGI initialisation failed");
		return 1;
	}
	w.cfg = cfg;
	w.sink = sink;
	w.listen_fd = listen_fd;
	if (threads > 1 && start_workers(&w, threads) == -1)
		_exit(1);
	serve_pool(cfg, sink, &st, p);
	if (threads > 1)
		_exit(1);
	state_free(&st);
	close(p->epfd);
	free(p);
	return 1;
}
