/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * null-responder: the FastCGI ceiling for the benchmark.  It reads the
 * request body and answers a fixed 202 with the same headers and the
 * same JSON the connector sends for an accepted event, without looking
 * at anything it was sent: whatever a FastCGI program does per request,
 * it cannot be faster than this behind the same web server.
 *
 * It serves the listening socket on fd 0 (lighttpd bin-path,
 * spawn-fcgi), one request at a time, like the connector.
 */
#include <signal.h>
#include <string.h>

#include <fcgiapp.h>

static const char answer[] =
    "Status: 202 Accepted\r\n"
    "Content-Type: application/json\r\n"
    "Cache-Control: no-store\r\n"
    "Content-Length: 43\r\n"
    "\r\n"
    "{\"message\":\"Event accepted for processing\"}";

int
main(void)
{
	FCGX_Request	 fr;
	char		 sink[16384];

	signal(SIGPIPE, SIG_IGN);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&fr) >= 0) {
		/* Read the body to its end, as any real responder must. */
		while (FCGX_GetStr(sink, sizeof(sink), fr.in) > 0)
			continue;
		FCGX_PutStr(answer, sizeof(answer) - 1, fr.out);
		FCGX_Finish_r(&fr);
	}
	return 0;
}
