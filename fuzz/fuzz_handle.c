/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The whole request handler, handle(), fed a fuzzed request.  Input:
 *
 *   byte 0	which of the eight request strings are present (bit i)
 *   byte 1	bit 0: JSON log; bit 1: a sink that stores; bits 2-3: what
 *		it answers (ok, duplicate, failed); bit 4: event_id required
 *   then	method, SCRIPT_NAME, PATH_INFO, Authorization, CONTENT_TYPE,
 *		CONTENT_LENGTH, X-B3-TraceId, X-Request-Id, each ending in NUL
 *   the rest	the body, served by an in-memory read_body
 *
 * Besides the sanitizers' own checks it asserts the response contract:
 * a Status line with the status handle() chose, Content-Length equal to
 * the JSON body's length, and 2xx only for a health check or a request
 * carrying a configured token.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "extern.h"
#include "common.h"

#define NFIELDS	8

struct body {
	const char	*p;
	size_t		 left;
};

static struct state	 st;

static int
read_mem(void *ctx, char *dst, size_t len)
{
	struct body	*b = ctx;

	if (len > b->left)
		return -1;
	memcpy(dst, b->p, len);
	b->p += len;
	b->left -= len;
	return 0;
}

static enum store_result
store(void *ctx, const struct event *ev, const struct request *req,
    const char *body, size_t len, char *why, size_t whylen)
{
	int	 answer = *(int *)ctx;

	(void)req;
	if (ev->event_type == NULL || ev->bill_status == NULL ||
	    memchr(body, '\0', len) != NULL)
		abort();
	if (answer == 2) {
		snprintf(why, whylen, "store failed");
		return STORE_FAILED;
	}
	return answer == 1 ? STORE_DUPLICATE : STORE_OK;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_config();
	if (state_init(&st) == -1)
		abort();
	return 0;
}

/* The response must be a CGI response whose body is one JSON object. */
static void
check_response(const struct request *req, const struct response *r)
{
	const char	*out = st.out.data, *end, *cl;
	size_t		 hlen, blen;
	json_object	*o;

	if (st.out.len < 12 || strncmp(out, "Status: ", 8) != 0 ||
	    atoi(out + 8) != r->status)
		abort();
	if ((end = strstr(out, "\r\n\r\n")) == NULL ||
	    (cl = strstr(out, "\r\nContent-Length: ")) == NULL || cl > end)
		abort();
	hlen = (size_t)(end - out) + 4;
	blen = strtoul(cl + 18, NULL, 10);
	if (blen != st.resp.len)
		abort();
	if (strcmp(req->method, "HEAD") == 0) {
		if (st.out.len != hlen)
			abort();
	} else if (st.out.len != hlen + blen)
		abort();
	o = json_tokener_parse(st.resp.data);
	if (!json_object_is_type(o, json_type_object))
		abort();
	json_object_put(o);
	if (r->status >= 200 && r->status < 300 && r->health == HEALTH_NONE &&
	    auth_check(fuzz_config(), req->authorization) != NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*field[NFIELDS] = { 0 }, *p, *end, *nul;
	struct config	 cfg;
	struct request	 req;
	struct response	 resp;
	struct log_record rec;
	struct sink	 sink;
	struct body	 body;
	char		*copy;
	unsigned	 present, opts;
	int		 answer;
	size_t		 i;

	if (size < 2)
		return 0;
	present = data[0];
	opts = data[1];
	/* A copy of exactly the input, so any overread is caught. */
	if ((copy = malloc(size - 2 + 1)) == NULL)
		return 0;
	memcpy(copy, data + 2, size - 2);
	copy[size - 2] = '\0';
	p = copy;
	end = copy + (size - 2);
	for (i = 0; i < NFIELDS; i++) {
		if ((nul = memchr(p, '\0', (size_t)(end - p))) == NULL)
			nul = end;
		if (present & (1u << i))
			field[i] = p;
		p = nul < end ? nul + 1 : end;
	}

	memset(&req, 0, sizeof(req));
	req.method = field[0] != NULL ? field[0] : "";
	req.script_name = field[1];
	req.path_info = field[2];
	req.authorization = field[3];
	req.content_type = field[4];
	req.content_length = field[5];
	req.trace_id = field[6];
	req.unique_id = field[7];
	body.p = p;
	body.left = (size_t)(end - p);
	req.read_body = read_mem;
	req.read_ctx = &body;

	answer = (opts >> 2) & 3;
	memset(&sink, 0, sizeof(sink));
	if (opts & 2) {
		sink.store = store;
		sink.ctx = &answer;
	}
	sink.require_event_id = (opts & 16) != 0;

	cfg = *fuzz_config();
	cfg.log_format = (opts & 1) ? LOG_JSON : LOG_TEXT;
	log_init(&cfg);

	handle(&cfg, &sink, &st, &req, &resp, &rec);
	check_response(&req, &resp);
	log_request(&rec);
	free(copy);
	return 0;
}
