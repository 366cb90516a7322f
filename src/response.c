/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Responses: a CGI Status line, fixed headers and a JSON body, built in
 * one buffer so the transport can send it with one write.
 */
#include "config.h"

#include <string.h>

#include "extern.h"

struct answer {
	int		 status;
	const char	*text;		/* reason phrase */
	const char	*message;
	const char	*error;
	const char	*type;
};

/* The NSPS error contract: {"message","error","type"} for each status. */
static const struct answer answers[] = {
	{ 200, "OK", NULL, NULL, NULL },
	{ 202, "Accepted", NULL, NULL, NULL },
	{ 400, "Bad Request", "Bad request", "Bad request",
	    "VALIDATION_ERROR" },
	{ 401, "Unauthorized", "Authentication failed", "Invalid API token",
	    "AUTHENTICATION_ERROR" },
	{ 404, "Not Found", "Resource not found", "Not found",
	    "VALIDATION_ERROR" },
	{ 405, "Method Not Allowed", "Method not allowed",
	    "Method not allowed", "VALIDATION_ERROR" },
	{ 411, "Length Required", "Length required",
	    "Content-Length is required", "VALIDATION_ERROR" },
	{ 413, "Payload Too Large", "Payload too large",
	    "Request body is larger than the limit", "VALIDATION_ERROR" },
	{ 415, "Unsupported Media Type", "Unsupported media type",
	    "Content-Type must be application/json", "VALIDATION_ERROR" },
	{ 422, "Unprocessable Entity", "Validation failed",
	    "Validation failed", "VALIDATION_ERROR" },
	{ 500, "Internal Server Error", "Internal server error",
	    "Internal server error", "INTERNAL_ERROR" },
	{ 503, "Service Unavailable", "Service unavailable",
	    "Event could not be stored", "SERVICE_ERROR" },
};

static const struct answer *
answer_for(int status)
{
	size_t	 i;

	for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++)
		if (answers[i].status == status)
			return &answers[i];
	return &answers[sizeof(answers) / sizeof(answers[0]) - 2];
}

const char *
status_type(int status)
{
	return answer_for(status)->type;
}

/*
 * Renders an error body {"message","error","type"[,"details"]} into
 * body.  error overrides the standard text when not NULL; details is a
 * JSON array or NULL.
 */
int
response_error_body(struct buf *body, int status, const char *error,
    const char *details)
{
	return response_body(body, status, NULL, error, NULL, details);
}

/* The same, with message and type overridden when not NULL. */
int
response_body(struct buf *body, int status, const char *message,
    const char *error, const char *type, const char *details)
{
	const struct answer *a = answer_for(status);

	body->len = 0;
	if (message == NULL)
		message = a->message;
	if (type == NULL)
		type = a->type;
	if (buf_adds(body, "{\"message\":") == -1 ||
	    buf_add_json_string(body, message, strlen(message)) == -1 ||
	    buf_adds(body, ",\"error\":") == -1)
		return -1;
	if (error == NULL)
		error = a->error;
	if (buf_add_json_string(body, error, strlen(error)) == -1 ||
	    buf_adds(body, ",\"type\":\"") == -1 ||
	    buf_adds(body, type) == -1 || buf_addc(body, '"') == -1)
		return -1;
	if (details != NULL && (buf_adds(body, ",\"details\":") == -1 ||
	    buf_adds(body, details) == -1))
		return -1;
	return buf_addc(body, '}');
}

/*
 * Renders the whole CGI response into out: Status, the fixed headers,
 * extra (a header line with CRLF, or NULL), and body unless head_only.
 */
int
response_render(struct buf *out, int status, const char *extra,
    const struct buf *body, int head_only)
{
	return response_render_type(out, status, "application/json", extra,
	    body, head_only);
}

/* The same with another Content-Type (the metrics' exposition). */
int
response_render_type(struct buf *out, int status, const char *ctype,
    const char *extra, const struct buf *body, int head_only)
{
	const struct answer *a = answer_for(status);

	out->len = 0;
	if (buf_adds(out, "Status: ") == -1 ||
	    buf_addu(out, (unsigned)status) == -1 ||
	    buf_addc(out, ' ') == -1 || buf_adds(out, a->text) == -1 ||
	    buf_adds(out, "\r\nContent-Type: ") == -1 ||
	    buf_adds(out, ctype) == -1 ||
	    buf_adds(out, "\r\nCache-Control: no-store\r\n") == -1)
		return -1;
	if (extra != NULL && buf_adds(out, extra) == -1)
		return -1;
	if (buf_adds(out, "Content-Length: ") == -1 ||
	    buf_addu(out, body->len) == -1 ||
	    buf_adds(out, "\r\n\r\n") == -1)
		return -1;
	if (!head_only && buf_add(out, body->data, body->len) == -1)
		return -1;
	return 0;
}
