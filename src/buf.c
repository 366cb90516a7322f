/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Growable byte buffers.  They are reused from one request to the next,
 * so after warm-up a request allocates nothing here.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "extern.h"

int
buf_reserve(struct buf *b, size_t more)
{
	size_t	 need, cap;
	char	*p;

	if (more > SIZE_MAX - b->len - 1)
		return -1;
	need = b->len + more + 1;		/* room for a NUL */
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_addc(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int
buf_addu(struct buf *b, unsigned long long v)
{
	char	 tmp[24];
	size_t	 i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return buf_add(b, tmp + i, sizeof(tmp) - i);
}

/*
 * Length of the valid UTF-8 sequence at p (1 to 4), or 0 when the bytes
 * there are not valid UTF-8 (overlong forms and surrogates included).
 */
size_t
utf8_seqlen(const unsigned char *p, size_t n)
{
	unsigned char	 c = p[0];
	size_t		 len, i;
	unsigned char	 lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/*
 * Appends s as a JSON string literal.  Control characters are escaped
 * and bytes that are not valid UTF-8 become U+FFFD, so whatever a
 * client sends, the output is valid JSON on one line.
 */
int
buf_add_json_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t		 i = 0, run, len;
	char		 esc[6];

	if (buf_reserve(b, n + 2) == -1 || buf_addc(b, '"') == -1)
		return -1;
	while (i < n) {
		/* Copy the longest run that needs no escaping in one go. */
		for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80 &&
		    p[run] != '"' && p[run] != '\\'; run++)
			continue;
		if (run > i && buf_add(b, p + i, run - i) == -1)
			return -1;
		if ((i = run) == n)
			break;
		if (p[i] >= 0x80) {
			if ((len = utf8_seqlen(p + i, n - i)) == 0) {
				if (buf_adds(b, "\\ufffd") == -1)
					return -1;
				i++;
			} else {
				if (buf_add(b, p + i, len) == -1)
					return -1;
				i += len;
			}
			continue;
		}
		esc[0] = '\\';
		switch (p[i]) {
		case '"':
		case '\\':
			esc[1] = (char)p[i];
			len = 2;
			break;
		case '\n':
			esc[1] = 'n';
			len = 2;
			break;
		case '\r':
			esc[1] = 'r';
			len = 2;
			break;
		case '\t':
			esc[1] = 't';
			len = 2;
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[p[i] >> 4];
			esc[5] = hex[p[i] & 0xf];
			len = 6;
			break;
		}
		if (buf_add(b, esc, len) == -1)
			return -1;
		i++;
	}
	return buf_addc(b, '"');
}

/* ,"key":"value" (or null) for a JSON object being built. */
int
buf_add_json_field(struct buf *b, const char *key, const char *s, size_t n)
{
	if (buf_addc(b, ',') == -1 ||
	    buf_add_json_string(b, key, strlen(key)) == -1 ||
	    buf_addc(b, ':') == -1)
		return -1;
	if (s == NULL)
		return buf_adds(b, "null");
	return buf_add_json_string(b, s, n);
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
