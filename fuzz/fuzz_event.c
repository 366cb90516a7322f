/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The event validator: event_parse() (json_strict_scan(), json-c's
 * strict tokener, the required fields, event_id) on a fuzzed body, with
 * and without a sink that needs an event_id.  An event it accepts must
 * be a JSON object whose required fields are non-empty strings.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "extern.h"
#include "common.h"

static struct state	 st;
static struct buf	 details;

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

static void
check(enum event_result er, const char *body, size_t len, int need_id)
{
	const struct event *ev = &st.event;
	json_object	*o;
	size_t		 bad;

	switch (er) {
	case EVENT_OK:
		if (json_strict_scan(body, len, &bad) == -1 ||
		    !json_object_is_type(st.root, json_type_object) ||
		    ev->event_type == NULL || ev->event_type_len == 0 ||
		    ev->bill_status == NULL || ev->bill_status_len == 0)
			abort();
		if (need_id && !event_id_valid(ev->event_id,
		    ev->event_id_len))
			abort();
		break;
	case EVENT_BAD_JSON:
	case EVENT_INVALID:
		/* The 422 details must be a JSON array. */
		o = json_tokener_parse(details.data);
		if (!json_object_is_type(o, json_type_array) ||
		    json_object_array_length(o) == 0)
			abort();
		json_object_put(o);
		break;
	case EVENT_NOMEM:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink	 plain = { 0 }, spool = { 0 };
	char		*body, why[256];
	enum event_result er;

	spool.require_event_id = 1;
	/* NUL-terminated, as handle() hands it over, but exactly sized. */
	if ((body = malloc(size + 1)) == NULL)
		return 0;
	memcpy(body, data, size);
	body[size] = '\0';

	er = event_parse(fuzz_config(), &plain, &st, body, size, &details,
	    why, sizeof(why));
	check(er, body, size, 0);
	json_object_put(st.root);
	st.root = NULL;

	er = event_parse(fuzz_config(), &spool, &st, body, size, &details,
	    why, sizeof(why));
	check(er, body, size, 1);
	json_object_put(st.root);
	st.root = NULL;

	free(body);
	return 0;
}
