/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The dotenv parser behind NSPS_ENV_FILE, on an exactly sized buffer so
 * that any read past the data is caught.  Every assignment it reports
 * must have a well-formed key and a value no longer than the file.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "common.h"

struct seen {
	size_t		 size;
	size_t		 count;
};

static int
is_key(const char *k)
{
	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
	    *k == '_'))
		return 0;
	for (k++; *k != '\0'; k++)
		if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') ||
		    (*k >= '0' && *k <= '9') || *k == '_'))
			return 0;
	return 1;
}

static int
assignment(void *arg, const char *key, const char *val)
{
	struct seen	*s = arg;

	if (!is_key(key) || strlen(key) + strlen(val) > s->size)
		abort();
	s->count++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen	 s = { size, 0 };
	char		*copy, err[256];

	/* load_env_file() refuses files holding NUL before parsing. */
	if (memchr(data, '\0', size) != NULL)
		return 0;
	if ((copy = malloc(size == 0 ? 1 : size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	err[0] = '\0';
	if (dotenv_parse(copy, size, assignment, &s, err, sizeof(err)) == -1 &&
	    strncmp(err, "line ", 5) != 0)
		abort();
	free(copy);
	return 0;
}
