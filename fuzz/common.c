/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The fixed configuration every harness runs with, and stand-ins for
 * read_all() and write_all() (io.c), which the linked transport and
 * log code refer to: with both here, io.c is not taken from libnsps.a.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "common.h"

static struct config	 cfg;
static int		 loaded;

/*
 * Two tokens (rotation), the default paths and required fields, and a
 * small body limit so inputs stay cheap.
 */
const struct config *
fuzz_config(void)
{
	struct options	 opts;

	if (loaded)
		return &cfg;
	memset(&opts, 0, sizeof(opts));
	opts.program = FOR_CONNECTOR;
	opts.value[S_MAX_BODY_BYTES] = "65536";
	setenv("API_TOKEN", "old-token, " FUZZ_TOKEN, 1);
	unsetenv("NSPS_ENV_FILE");
	if (config_load(&cfg, &opts) == -1)
		abort();
	loaded = 1;
	return &cfg;
}

/* No harness reads a body from an fd. */
int
read_all(int fd, char *p, size_t len)
{
	(void)fd;
	(void)p;
	(void)len;
	abort();
}

/* Log lines are built in full, then thrown away here. */
int
write_all(int fd, const char *p, size_t len)
{
	(void)fd;
	(void)p;
	(void)len;
	return 0;
}
