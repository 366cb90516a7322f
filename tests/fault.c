/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Fault injection for the spool tests, loaded with LD_PRELOAD.
 *
 *   NSPS_FAULT=write|fsync|link|rename|open|unlink|setxattr|
 *              pwrite|fdatasync|syncfs|fallocate
 *                                              the call to fail
 *   NSPS_FAULT_SKIP=N                          fail the call after N good ones
 *   NSPS_FAULT_ERRNO=N                         errno to fail with (EIO)
 *   NSPS_FAULT_KILL=1                          SIGKILL instead, before
 *                                              the call: a crash there
 *   NSPS_FAULT_ONCE=FILE                       only in the first process
 *                                              to get there (it creates
 *                                              FILE): respawned ones run
 *   NSPS_FAULT_NOXATTR=1                       every fsetxattr fails with
 *                                              ENOTSUP, as on a file
 *                                              system without them
 *   NSPS_FAULT_NOTMPFILE=1                     every O_TMPFILE open fails
 *                                              with EOPNOTSUPP, likewise
 *
 * write and open fail only on regular files and only when creating (an
 * O_TMPFILE open creates too), so
 * the response and the log still get out; open never fails on the
 * metrics counters file, which is not the spool's.
 */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <sys/xattr.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int	 counter;

static int
should_fail(const char *call)
{
	const char	*want = getenv("NSPS_FAULT");
	const char	*skip = getenv("NSPS_FAULT_SKIP");
	const char	*err = getenv("NSPS_FAULT_ERRNO");
	const char	*once = getenv("NSPS_FAULT_ONCE");
	int		 fd;

	if (want == NULL || strcmp(want, call) != 0)
		return 0;
	/*
	 * Only the one call: the log line must still get out.  The
	 * connector's threads make some of the calls at once.
	 */
	if (__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED) !=
	    (skip != NULL ? atoi(skip) : 0))
		return 0;
	/* Once across processes: the first to create the file. */
	if (once != NULL && (fd = open(once, O_WRONLY | O_CREAT | O_EXCL,
	    0600)) == -1)
		return 0;
	if (once != NULL)
		close(fd);
	if (getenv("NSPS_FAULT_KILL") != NULL)
		raise(SIGKILL);
	errno = err != NULL ? atoi(err) : EIO;
	return 1;
}

ssize_t
write(int fd, const void *p, size_t n)
{
	static ssize_t	(*real)(int, const void *, size_t);
	struct stat	 st;

	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t))
		    dlsym(RTLD_NEXT, "write");
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && should_fail("write"))
		return -1;
	return real(fd, p, n);
}

int
fsync(int fd)
{
	static int	(*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	if (should_fail("fsync"))
		return -1;
	return real(fd);
}

int
linkat(int ofd, const char *o, int nfd, const char *n, int flags)
{
	static int	(*real)(int, const char *, int, const char *, int);

	if (real == NULL)
		real = (int (*)(int, const char *, int, const char *, int))
		    dlsym(RTLD_NEXT, "linkat");
	if (should_fail("link"))
		return -1;
	return real(ofd, o, nfd, n, flags);
}

int
renameat(int ofd, const char *o, int nfd, const char *n)
{
	static int	(*real)(int, const char *, int, const char *);

	if (real == NULL)
		real = (int (*)(int, const char *, int, const char *))
		    dlsym(RTLD_NEXT, "renameat");
	if (should_fail("rename"))
		return -1;
	return real(ofd, o, nfd, n);
}

int
openat(int dfd, const char *path, int flags, ...)
{
	static int	(*real)(int, const char *, int, ...);
	va_list		 ap;
	mode_t		 mode = 0;

	if (real == NULL)
		real = (int (*)(int, const char *, int, ...))
		    dlsym(RTLD_NEXT, "openat");
	if ((flags & O_TMPFILE) == O_TMPFILE &&
	    getenv("NSPS_FAULT_NOTMPFILE") != NULL) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
		/* The metrics' counters file is not the spool's to fail. */
		if (strstr(path, "nsps-metrics") == NULL && should_fail("open"))
			return -1;
	}
	return real(dfd, path, flags, mode);
}

int
unlinkat(int dfd, const char *path, int flags)
{
	static int	(*real)(int, const char *, int);

	if (real == NULL)
		real = (int (*)(int, const char *, int))
		    dlsym(RTLD_NEXT, "unlinkat");
	if (should_fail("unlink"))
		return -1;
	return real(dfd, path, flags);
}

int
fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)
{
	static int	(*real)(int, const char *, const void *, size_t, int);

	if (real == NULL)
		real = (int (*)(int, const char *, const void *, size_t, int))
		    dlsym(RTLD_NEXT, "fsetxattr");
	if (getenv("NSPS_FAULT_NOXATTR") != NULL) {
		errno = ENOTSUP;
		return -1;
	}
	if (should_fail("setxattr"))
		return -1;
	return real(fd, name, value, size, flags);
}

/* The write-ahead log's calls: its records, and its segments' room. */
static ssize_t
pwrite_fault(const char *sym, int fd, const void *p, size_t n, off_t off)
{
	static ssize_t	(*real)(int, const void *, size_t, off_t);

	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t, off_t))
		    dlsym(RTLD_NEXT, sym);
	if (should_fail("pwrite"))
		return -1;
	return real(fd, p, n, off);
}

ssize_t
pwrite(int fd, const void *p, size_t n, off_t off)
{
	return pwrite_fault("pwrite", fd, p, n, off);
}

ssize_t
pwrite64(int fd, const void *p, size_t n, off_t off)
{
	return pwrite_fault("pwrite64", fd, p, n, off);
}

int
fdatasync(int fd)
{
	static int	(*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if (should_fail("fdatasync"))
		return -1;
	return real(fd);
}

int
syncfs(int fd)
{
	static int	(*real)(int);

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "syncfs");
	if (should_fail("syncfs"))
		return -1;
	return real(fd);
}

static int
fallocate_fault(const char *sym, int fd, int mode, off_t off, off_t len)
{
	static int	(*real)(int, int, off_t, off_t);

	if (real == NULL)
		real = (int (*)(int, int, off_t, off_t))dlsym(RTLD_NEXT, sym);
	if (should_fail("fallocate"))
		return -1;
	return real(fd, mode, off, len);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	return fallocate_fault("fallocate", fd, mode, off, len);
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
	return fallocate_fault("fallocate64", fd, mode, off, len);
}
