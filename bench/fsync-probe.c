/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * fsync-probe: the file system's own limit for a durable create, the
 * least any spool must do per event.  Each of N processes loops for the
 * given time: create tmp/<pid>.<seq>, write the body, fsync(2) it,
 * rename(2) it into new/, fsync new/.  The events per second of all the
 * processes together are what bench/durable sets the spool against.
 *
 * With -l, the least a log-structured spool would do instead: before
 * the start, log/<i> is written for each process, SEGMENT bytes of
 * zeros, and fsync'd;
 * then, timed, it writes the body over the next bytes of that file and
 * fdatasync(2)s it, as a database's WAL is written, starting over at
 * the file's end.  No inode or directory changes: one data write and
 * one cache flush an event.  With -d as well, the segment is written
 * with O_DIRECT, each event padded to whole 4096-byte blocks: the page
 * cache left out, the fdatasync still there for the disk's own cache.
 *
 * With -s, the file work the spool does in a request when the log holds
 * the event, and nothing else: an fstatat(2) of ids/<name>, the body
 * written to an O_TMPFILE file in tmp/ with META_LEN bytes of metadata
 * in its attribute user.nsps, linked into ids/ through /proc and from
 * there into new/, no fsync; at the end one syncfs(2), as a checkpoint
 * makes them durable.  Its CPU per event, beside the path without a
 * store, bounds what any number of requests in flight can reach while
 * each request makes its files.
 *
 * usage: fsync-probe [-l [-d] | -s] [-n procs] [-t seconds] bodyfile dir
 * Prints "events=N seconds=S rate=R procs=P bytes=B" on success; the
 * files are left in dir/new (dir/log with -l) for the caller to count
 * and remove.
 */
#define _GNU_SOURCE		/* O_DIRECT */
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS	256
#define MAX_BODY	(1024 * 1024)
#define SEGMENT		(32 * 1024 * 1024)
#define BLOCK		4096
#define META_LEN	66	/* the spool's longest metadata line without ids */

struct result {
	unsigned long long	 events;
	int			 error;
};

static void
die(const char *what)
{
	fprintf(stderr, "fsync-probe: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One process's loop; returns the number of durable creates done. */
static struct result
probe(int tmp, int new, const char *body, size_t len, double seconds)
{
	struct result	 r = { 0, 0 };
	char		 name[64];
	double		 end = now() + seconds;
	long		 pid = (long)getpid();
	int		 fd;

	while (now() < end) {
		snprintf(name, sizeof(name), "%ld.%llu", pid, r.events);
		fd = openat(tmp, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd == -1 || write_all(fd, body, len) == -1 ||
		    fsync(fd) == -1 || close(fd) == -1 ||
		    renameat(tmp, name, new, name) == -1 || fsync(new) == -1) {
			r.error = errno != 0 ? errno : EIO;
			break;
		}
		r.events++;
	}
	return r;
}

/* One process's loop with -s: the spool's files, without fsyncs. */
static struct result
probe_files(int tmp, int ids, int new, const char *body, size_t len,
    double seconds)
{
	static char	 meta[META_LEN];
	struct result	 r = { 0, 0 };
	struct stat	 st;
	char		 name[64], path[64];
	double		 end = now() + seconds;
	long		 pid = (long)getpid();
	int		 fd;

	memset(meta, 'm', sizeof(meta));
	while (now() < end) {
		snprintf(name, sizeof(name), "%ld.%llu", pid, r.events);
		if (fstatat(ids, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
		    errno != ENOENT) {
			r.error = EEXIST;
			break;
		}
		fd = openat(tmp, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (fd == -1 || write_all(fd, body, len) == -1 ||
		    fsetxattr(fd, "user.nsps", meta, sizeof(meta), 0) == -1) {
			r.error = errno != 0 ? errno : EIO;
			break;
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, path, ids, name, AT_SYMLINK_FOLLOW) == -1 ||
		    close(fd) == -1 || linkat(ids, name, new, name, 0) == -1) {
			r.error = errno != 0 ? errno : EIO;
			break;
		}
		r.events++;
	}
	/* Their writeback is part of their cost: a checkpoint pays it. */
	if (r.error == 0 && syncfs(tmp) == -1)
		r.error = errno;
	return r;
}

/* Writes the whole segment once, so that later writes change no metadata. */
static int
log_prepare(int logdir, int n)
{
	static char	 zeros[1024 * 1024];
	char		 name[64];
	int		 fd, i;

	snprintf(name, sizeof(name), "%d", n);
	fd = openat(logdir, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	for (i = 0; i < SEGMENT / (int)sizeof(zeros); i++)
		if (write_all(fd, zeros, sizeof(zeros)) == -1)
			return -1;
	if (fsync(fd) == -1 || fsync(logdir) == -1)
		return -1;
	return fd;
}

/* One process's loop with -l: an append and an fdatasync an event. */
static struct result
probe_log(int fd, const char *body, size_t len, double seconds, int direct)
{
	struct result	 r = { 0, 0 };
	double		 end = now() + seconds;
	off_t		 off = 0;
	void		*aligned;

	if (direct) {
		/* Whole blocks from an aligned buffer, as O_DIRECT needs. */
		if (posix_memalign(&aligned, BLOCK, MAX_BODY + BLOCK) != 0) {
			r.error = ENOMEM;
			return r;
		}
		memset(aligned, 0, MAX_BODY + BLOCK);
		memcpy(aligned, body, len);
		body = aligned;
		len = (len + BLOCK - 1) / BLOCK * BLOCK;
	}

	while (now() < end) {
		if (off + (off_t)len > SEGMENT)
			off = 0;
		if (pwrite(fd, body, len, off) != (ssize_t)len ||
		    fdatasync(fd) == -1) {
			r.error = errno != 0 ? errno : EIO;
			break;
		}
		off += (off_t)len;
		r.events++;
	}
	return r;
}

static int
open_dir(int root, const char *name)
{
	int	 fd;

	if (mkdirat(root, name, 0700) == -1 && errno != EEXIST)
		die(name);
	if ((fd = openat(root, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		die(name);
	return fd;
}

static void
usage(void)
{
	fprintf(stderr, "usage: fsync-probe [-l [-d] | -s] [-n procs] "
	    "[-t seconds] bodyfile dir\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct result	 r;
	unsigned long long total = 0;
	static char	 body[MAX_BODY];
	size_t		 len = 0;
	ssize_t		 n;
	double		 seconds = 10, t0, t1;
	char		*end;
	long		 procs = 2;
	pid_t		 pids[MAX_PROCS];
	int		 go[2], out[2], ch, fd, root, tmp, new, status, i;
	int		 failed = 0, log = 0, logdir = -1, seg[MAX_PROCS];
	int		 direct = 0, files = 0, ids = -1;
	char		 name[64];
	char		 c;

	while ((ch = getopt(argc, argv, "dln:st:")) != -1) {
		switch (ch) {
		case 'd':
			direct = 1;
			break;
		case 'l':
			log = 1;
			break;
		case 'n':
			procs = strtol(optarg, &end, 10);
			if (*end != '\0' || procs < 1 || procs > MAX_PROCS)
				usage();
			break;
		case 's':
			files = 1;
			break;
		case 't':
			seconds = strtod(optarg, &end);
			if (*end != '\0' || seconds <= 0)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2 || (files && log) || (direct && !log))
		usage();

	if ((fd = open(argv[0], O_RDONLY | O_CLOEXEC)) == -1)
		die(argv[0]);
	while ((n = read(fd, body + len, sizeof(body) - len)) > 0)
		len += (size_t)n;
	if (n == -1)
		die(argv[0]);
	close(fd);
	if ((root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		die(argv[1]);
	tmp = open_dir(root, "tmp");
	new = open_dir(root, "new");
	if (files)
		ids = open_dir(root, "ids");
	if (log) {
		logdir = open_dir(root, "log");
		for (i = 0; i < procs; i++)
			if ((seg[i] = log_prepare(logdir, i)) == -1)
				die("log");
	}
	/* The same files, written past the page cache. */
	for (i = 0; log && direct && i < procs; i++) {
		snprintf(name, sizeof(name), "%d", i);
		close(seg[i]);
		if ((seg[i] = openat(logdir, name, O_RDWR | O_DIRECT |
		    O_CLOEXEC)) == -1)
			die("log: O_DIRECT");
	}

	/* The children start together, when "go" is closed. */
	if (pipe(go) == -1 || pipe(out) == -1)
		die("pipe");
	for (i = 0; i < procs; i++) {
		if ((pids[i] = fork()) == -1)
			die("fork");
		if (pids[i] == 0) {
			close(go[1]);
			close(out[0]);
			if (read(go[0], &c, 1) == -1)
				_exit(1);
			if (log)
				r = probe_log(seg[i], body, len, seconds,
				    direct);
			else if (files)
				r = probe_files(tmp, ids, new, body, len,
				    seconds);
			else
				r = probe(tmp, new, body, len, seconds);
			/* Smaller than PIPE_BUF: one write, never split. */
			if (write(out[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
				_exit(1);
			_exit(r.error != 0);
		}
	}
	close(go[0]);
	close(out[1]);
	t0 = now();
	close(go[1]);
	for (i = 0; i < procs; i++) {
		if (waitpid(pids[i], &status, 0) == -1)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	t1 = now();
	while ((n = read(out[0], &r, sizeof(r))) == (ssize_t)sizeof(r)) {
		total += r.events;
		if (r.error != 0) {
			fprintf(stderr, "fsync-probe: %s\n", strerror(r.error));
			failed = 1;
		}
	}
	if (failed)
		return 1;
	printf("events=%llu seconds=%.3f rate=%.1f procs=%ld bytes=%zu\n",
	    total, t1 - t0, (double)total / (t1 - t0), procs, len);
	return 0;
}
