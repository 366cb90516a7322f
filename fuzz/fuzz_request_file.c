/*
 * The request-file (raw HTTP) head parser, http_parse_head(), on the
 * head exactly as serve_file() cuts it from its input: up to the first
 * blank line, no NUL bytes.  A head it accepts must give a method made
 * of token characters and a path that starts with '/' and has no query.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "common.h"

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
	/* As read_head() does it. */
	if ((end = strstr(head, "\r\n\r\n")) == NULL &&
	    (end = strstr(head, "\n\n")) == NULL) {
		free(head);
		return 0;
	}
	hlen = (size_t)(end - head) + (end[0] == '\r' ? 4 : 2);
	head[hlen - 1] = '\0';

	memset(&req, 0, sizeof(req));
	req.method = "";
	if ((why = http_parse_head(head, &req)) == NULL) {
		if (req.method[0] == '\0' ||
		    strcspn(req.method, " \t\r\n:/") != strlen(req.method) ||
		    req.path_info == NULL || req.path_info[0] != '/' ||
		    strchr(req.path_info, '?') != NULL ||
		    strpbrk(req.path_info, "\r\n") != NULL)
			abort();
	} else if (*why == '\0')
		abort();
	free(head);
	return 0;
}
