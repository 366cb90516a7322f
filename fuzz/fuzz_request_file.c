/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The request-file (raw HTTP) head parser, http_parse_head(), on the
 * head exactly as serve_file() cuts it from its input: up to the first
 * blank line, no NUL bytes.  A head it accepts must give a method made
 * of token characters, a path that starts with '/' and has no query,
 * and no control character other than HTAB in any value.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "common.h"

static int
clean(const char *s)
{
	if (s == NULL)
		return 1;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') ||
		    (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request	 req;
	char		*head, *end;
	const char	*why;
	size_t		 hlen;

	if (size > 64 * 1024 || memchr(data, '\0', size) != NULL)
		return 0;
	if ((head = malloc(size + 1)) == NULL)
		return 0;
	memcpy(head, data, size);
	head[size] = '\0';
	/* As read_head() does it: up to the first "\n\n" or "\n\r\n". */
	for (end = head; (end = strchr(end, '\n')) != NULL; end++)
		if (end[1] == '\n' || (end[1] == '\r' && end[2] == '\n'))
			break;
	if (end == NULL) {
		free(head);
		return 0;
	}
	hlen = (size_t)(end - head) + (end[1] == '\n' ? 2 : 3);
	head[hlen - 1] = '\0';

	memset(&req, 0, sizeof(req));
	req.method = "";
	if ((why = http_parse_head(head, &req)) == NULL) {
		if (req.method[0] == '\0' ||
		    strcspn(req.method, " \t\r\n:/") != strlen(req.method) ||
		    req.path_info == NULL || req.path_info[0] != '/' ||
		    strchr(req.path_info, '?') != NULL ||
		    !clean(req.path_info) || !clean(req.authorization) ||
		    !clean(req.content_type) || !clean(req.content_length) ||
		    !clean(req.trace_id) || !clean(req.unique_id))
			abort();
	} else if (*why == '\0')
		abort();
	free(head);
	return 0;
}
