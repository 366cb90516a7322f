/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The glue every transport shares: one request handled, its response
 * sent back through the transport in one write, then logged.
 */
#include "config.h"

#include "extern.h"

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
	log_request(&rec);
	return rc;
}
