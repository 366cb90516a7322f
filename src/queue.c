/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * What the stores and the scheduler share of the queue: the choice of
 * a store, the names of its states, a claimed event's release and the
 * clock they all read.  It calls nothing of theirs, so that neither
 * calls the other.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

const char *const queue_state_names[QSTATE_COUNT] = {
	"new", "cur", "retry", "done", "failed", "tmp", "ids"
};

/*
 * The store the configuration names (config_load() lets it name one at
 * most); NULL when none.
 */
const struct store *
store_choose(const struct config *cfg)
{
	if (cfg->database_url != NULL)
		return &store_pg;
	if (cfg->spool_dir != NULL)
		return &store_spool;
	return NULL;
}

/* Milliseconds on clk: CLOCK_REALTIME for what is stored, else monotonic. */
long long
clock_ms(clockid_t clk)
{
	struct timespec	 ts;

	clock_gettime(clk, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
delivery_free(struct delivery *d)
{
	if (d->fd != -1)
		close(d->fd);
	if (d->lock != -1)
		close(d->lock);
	free(d->type);
	free(d->bill_status);
	free(d->trace_id);
	free(d->request_id);
	memset(d, 0, sizeof(*d));
	d->fd = d->lock = -1;
}
