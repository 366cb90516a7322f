/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The glue every transport shares: one request handled, its response
 * sent back through the transport in one write, then logged.
 */
#include "config.h"

#include <time.h>

#include "extern.h"

/* The answer in the shared counters: atomic adds on the mapping only. */
static void
count(const struct sink *sink, const struct response *resp,
    const struct log_record *rec)
{
	struct timespec	 now;
	long long	 us;

	if (sink->metrics == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (long long)(now.tv_sec - rec->start.tv_sec) * 1000000 +
	    (now.tv_nsec - rec->start.tv_nsec) / 1000;
	metrics_request(sink->metrics, resp->status, us);
	if (rec->event != NULL && resp->status == 202)
		metrics_event(sink->metrics, rec->event->event_type,
		    rec->event->event_type_len);
	else if (rec->event != NULL && resp->status == 503)
		metrics_store_failure(sink->metrics);
}

/*
 * Handles one request, sends the response with one write and logs it.
 * Returns 0, or -1 when the response could not be written.
 */
int
serve_request(const struct config *cfg, const struct sink *sink,
    struct state *st, const struct request *req,
    int (*send)(void *, const char *, size_t), void *arg)
{
	struct response	 resp;
	struct log_record rec;
	int		 rc;

	handle(cfg, sink, st, req, &resp, &rec);
	if ((rc = send(arg, st->out.data, st->out.len)) == -1)
		rec.reason = "could not write the response";
	count(sink, &resp, &rec);
	log_request(&rec);
	return rc;
}
