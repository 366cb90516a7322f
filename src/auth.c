/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Bearer token authentication (RFC 6750 section 2.1).
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "extern.h"

/*
 * Finds the token in an Authorization value: the scheme "Bearer" in any
 * case, one or more spaces, then the token up to trailing blanks.
 * Returns 0 and points tok/len at it, or -1 when the value is absent,
 * of another scheme, empty, too long or has blanks inside.
 */
int
auth_bearer_token(const char *value, const char **tok, size_t *len)
{
	const char	*p, *end;

	if (value == NULL || strncasecmp(value, "Bearer", 6) != 0 ||
	    value[6] != ' ')
		return -1;
	for (p = value + 6; *p == ' '; p++)
		continue;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (end == p || (size_t)(end - p) > MAX_TOKEN_LEN)
		return -1;
	for (*tok = p; p < end; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return -1;
	*len = (size_t)(end - *tok);
	return 0;
}

/*
 * Compares a presented token with a secret in time that depends only on
 * the secret's length, never on where the two first differ.
 */
int
token_equal(const char *given, size_t glen, const char *secret, size_t slen)
{
	volatile unsigned char	 diff;
	size_t			 i, j;

	diff = glen != slen;
	for (i = 0; i < slen; i++) {
		j = i < glen ? i : 0;
		diff |= (unsigned char)given[j] ^ (unsigned char)secret[i];
	}
	return diff == 0;
}

/*
 * Checks an Authorization value against every configured token, so the
 * time taken does not tell which one matched.  Returns NULL when it
 * carries one of them, else the reason for the log (never the token).
 */
const char *
auth_check(const struct config *cfg, const char *value)
{
	const char	*tok;
	size_t		 len, i;
	int		 ok = 0;

	if (value == NULL || *value == '\0')
		return "no Authorization header";
	if (auth_bearer_token(value, &tok, &len) == -1)
		return "Authorization is not a well-formed Bearer token";
	for (i = 0; i < cfg->ntokens; i++)
		ok |= token_equal(tok, len, cfg->token[i], cfg->token_len[i]);
	return ok ? NULL : "token does not match";
}
