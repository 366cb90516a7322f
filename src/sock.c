/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * -s ADDR: binds the FastCGI socket ourselves rather than through
 * FCGX_OpenSocket(), which listens on every interface for ":PORT",
 * unlinks any path blindly and exits on failure.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"

#define BACKLOG	SOMAXCONN

/*
 * A unix socket, mode 0660 whatever the umask: only its owner and group
 * (the web server's) may connect.  An old socket left at the path is
 * replaced; any other file there is an error.
 */
static int
listen_unix(const char *path)
{
	struct sockaddr_un sun;
	struct stat	 st;
	mode_t		 old;
	int		 fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_msg("%s: socket path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_msg("%s: exists and is not a socket", path);
			return -1;
		}
		if (unlink(path) == -1) {
			log_msg("%s: %s", path, strerror(errno));
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		log_msg("socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0117);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc == -1 || listen(fd, BACKLOG) == -1) {
		log_msg("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* HOST:PORT or [V6HOST]:PORT; a bare :PORT is refused. */
static int
listen_tcp(const char *addr)
{
	struct addrinfo	 hints, *res, *ai;
	char		 host[256];
	const char	*port, *h = addr;
	size_t		 hlen;
	int		 fd = -1, on = 1, e;

	if (*addr == '[') {
		h = addr + 1;
		if ((port = strstr(h, "]:")) == NULL) {
			log_msg("%s: expected [HOST]:PORT", addr);
			return -1;
		}
		hlen = (size_t)(port - h);
		port += 2;
	} else {
		port = strrchr(addr, ':');
		hlen = (size_t)(port - addr);
		port++;
	}
	if (hlen == 0) {
		log_msg("%s: give a host (such as 127.0.0.1:%s): a bare port "
		    "would listen on every interface", addr, port);
		return -1;
	}
	if (hlen >= sizeof(host) || *port == '\0') {
		log_msg("%s: expected HOST:PORT", addr);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0) {
		log_msg("%s: %s", addr, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, BACKLOG) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	if (fd == -1)
		log_msg("%s: %s", addr, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

/* A socket path if ADDR holds a '/', else HOST:PORT. */
int
listen_socket(const char *addr)
{
	if (strchr(addr, '/') != NULL)
		return listen_unix(addr);
	if (strchr(addr, ':') == NULL) {
		log_msg("%s: expected a socket path or HOST:PORT", addr);
		return -1;
	}
	return listen_tcp(addr);
}
