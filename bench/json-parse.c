/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * json-parse: json-c's own cost for a body, the yardstick for the
 * connector's instructions per request.  It parses the file COUNT times
 * the way the connector does (one tokener kept, reset, parse_ex with the
 * same depth and flags, the tree freed before the next parse) and
 * nothing else; callgrind runs it with two counts and takes the
 * difference.
 *
 * usage: json-parse count file
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#ifdef HAVE_MIMALLOC
#include <mimalloc.h>
#endif

int
main(int argc, char *argv[])
{
	struct json_tokener *tok;
	struct json_object *root;
	static char	 body[1 << 20];
	ssize_t		 n;
	size_t		 len = 0;
	long		 count, i;
	int		 fd;

#ifdef HAVE_MIMALLOC
	/* Names the allocator, and keeps --as-needed from dropping it. */
	fprintf(stderr, "json-parse: mimalloc %d\n", mi_version());
#endif
	if (argc != 3 || (count = strtol(argv[1], NULL, 10)) < 0) {
		fprintf(stderr, "usage: json-parse count file\n");
		return 2;
	}
	if ((fd = open(argv[2], O_RDONLY)) == -1) {
		fprintf(stderr, "json-parse: %s: %s\n", argv[2],
		    strerror(errno));
		return 1;
	}
	while ((n = read(fd, body + len, sizeof(body) - len)) > 0)
		len += (size_t)n;
	close(fd);
	/* The connector's settings: see state_init() and parse_json(). */
	if ((tok = json_tokener_new_ex(32)) == NULL)
		return 1;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	for (i = 0; i < count; i++) {
		json_tokener_reset(tok);
		root = json_tokener_parse_ex(tok, body, (int)len);
		if (json_tokener_get_error(tok) != json_tokener_success) {
			fprintf(stderr, "json-parse: %s: %s\n", argv[2],
			    json_tokener_error_desc(json_tokener_get_error(tok)));
			return 1;
		}
		json_object_put(root);
	}
	json_tokener_free(tok);
	return 0;
}
