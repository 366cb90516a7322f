/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Whole reads and writes over short counts and EINTR, for both
 * programs.
 */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "extern.h"

/* Reads exactly len bytes; -1 when input ends first or fails. */
int
read_all(int fd, char *p, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = read(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes all of p; -1 when the write fails. */
int
write_all(int fd, const char *p, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
