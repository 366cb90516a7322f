/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * What nsps-deliver reads back from the spool and its settings, on an
 * exactly sized buffer: status records, tmp/ names and durations.
 * Whatever a parser accepts must be what the writer could have made.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "extern.h"
#include "spool.h"
#include "common.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct status		 st;
	char			*s, id[SPOOL_ID_MAX + 1], kind;
	long			 pid;
	unsigned long long	 ms;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	if (status_parse(s, size, &st) == 0 && (st.first_ms < 0 ||
	    st.next_ms < 0))
		abort();
	s[size] = '\0';
	if (strlen(s) == size) {
		if (tmp_name_parse(s, id, sizeof(id), &pid, &kind) == 0 &&
		    (!event_id_valid(id, strlen(id)) || pid <= 0 ||
		    (kind != 'b' && kind != 'm') ||
		    strncmp(s, id, strlen(id)) != 0))
			abort();
		/* Every accepted duration starts with a digit. */
		if (parse_duration(s, &ms) == 0 && (*s < '0' || *s > '9'))
			abort();
	}
	free(s);
	return 0;
}
