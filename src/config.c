/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Configuration: command line, then environment, then the dotenv file
 * named by NSPS_ENV_FILE.  Read and validated once, at start-up.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"

#define MAX_FILE_SIZE	(64 * 1024)

/* The settings a dotenv file may hold; other keys are ignored. */
enum key {
	K_API_TOKEN,
	K_API_TOKEN_FILE,
	K_EVENT_PATH,
	K_HEALTH_PATH,
	K_REQUIRED_FIELDS,
	K_MAX_BODY_BYTES,
	K_LOG_FORMAT,
	K_SPOOL_DIR,
	K_COUNT
};

static const char *const key_names[K_COUNT] = {
	"API_TOKEN",
	"API_TOKEN_FILE",
	"EVENT_PATH",
	"HEALTH_PATH",
	"REQUIRED_FIELDS",
	"MAX_BODY_BYTES",
	"LOG_FORMAT",
	"SPOOL_DIR",
};

struct sources {
	const struct options *opts;
	char		*file_value[K_COUNT];	/* from NSPS_ENV_FILE */
	const char	*file_name;
};

static int
fail(struct config *cfg, const char *fmt, ...)
	__attribute__((__format__(__printf__, 2, 3)));

static int
fail(struct config *cfg, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(cfg->error, sizeof(cfg->error), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Parses a size made of decimal digits only (no sign, no blanks) from 1
 * to max.  Returns 0, or -1 when s is anything else.
 */
int
parse_size(const char *s, size_t max, size_t *out)
{
	size_t	 v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (size_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (size_t)(*s - '0');
	}
	*out = v;
	return 0;
}

/* Reads a small file whole, refusing anything that is not regular. */
static char *
read_small_file(struct config *cfg, const char *what, const char *path,
    int refuse_writable, size_t *lenp)
{
	struct stat	 st;
	char		*data = NULL;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fail(cfg, "%s: %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		fail(cfg, "%s: %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(cfg, "%s: %s: not a regular file", what, path);
		goto out;
	}
	if (refuse_writable && (st.st_mode & (S_IWGRP | S_IWOTH))) {
		fail(cfg, "%s: %s: group or world writable; "
		    "chmod go-w it", what, path);
		goto out;
	}
	if (st.st_size > MAX_FILE_SIZE) {
		fail(cfg, "%s: %s: larger than %d bytes", what, path,
		    MAX_FILE_SIZE);
		goto out;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		fail(cfg, "%s: %s", what, strerror(errno));
		goto out;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, data + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fail(cfg, "%s: %s: %s", what, path,
			    n == 0 ? "short read" : strerror(errno));
			free(data);
			data = NULL;
			goto out;
		}
		len += (size_t)n;
	}
	data[len] = '\0';
	*lenp = len;
out:
	close(fd);
	return data;
}

static int
is_key_start(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int
is_key_char(int c)
{
	return is_key_start(c) || (c >= '0' && c <= '9');
}

/*
 * Parses one value after "KEY=": double-quoted (with \" \\ \n escapes),
 * single-quoted (literal) or bare (up to an inline " #" comment, trailing
 * blanks dropped).  Writes it NUL-terminated to out, which has room for
 * the whole line.  Returns NULL, or an error message.
 */
static const char *
dotenv_value(const char *p, const char *end, char *out)
{
	char	 q;

	if (p < end && (*p == '"' || *p == '\'')) {
		q = *p++;
		while (p < end && *p != q) {
			if (q == '"' && *p == '\\' && p + 1 < end) {
				p++;
				*out++ = *p == 'n' ? '\n' : *p;
				p++;
			} else
				*out++ = *p++;
		}
		if (p == end)
			return "unterminated quote";
		for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
			continue;
		if (p < end && *p != '#')
			return "text after the closing quote";
		*out = '\0';
		return NULL;
	}
	while (p < end && !((*p == '#') && (p[-1] == ' ' || p[-1] == '\t')))
		*out++ = *p++;
	while (out[-1] == ' ' || out[-1] == '\t')
		out--;
	*out = '\0';
	return NULL;
}

/*
 * Parses a dotenv file: KEY=VALUE lines, blank lines and # comments, an
 * optional "export " prefix, optional quotes.  Calls fn for each
 * assignment.  Returns 0, or -1 with a message naming the line in err.
 */
int
dotenv_parse(const char *data, size_t len,
    int (*fn)(void *, const char *, const char *), void *arg,
    char *err, size_t errlen)
{
	const char	*p = data, *end = data + len, *eol, *k, *why;
	char		*line = NULL, *key, *val;
	size_t		 lineno = 0, klen;
	int		 rc = -1;

	if ((line = malloc(len + 2)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	for (; p < end; p = eol + 1) {
		lineno++;
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (p < eol && eol[-1] == '\r')
			eol--;
		if (p == eol || *p == '#')
			goto next;
		if ((size_t)(eol - p) > 7 && strncmp(p, "export ", 7) == 0)
			for (p += 7; p < eol && *p == ' '; p++)
				continue;
		for (k = p; p < eol && is_key_char((unsigned char)*p); p++)
			continue;
		klen = (size_t)(p - k);
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if (klen == 0 || !is_key_start((unsigned char)*k) ||
		    p == eol || *p != '=') {
			snprintf(err, errlen, "line %zu: expected KEY=VALUE",
			    lineno);
			goto out;
		}
		for (p++; p < eol && (*p == ' ' || *p == '\t'); p++)
			continue;
		key = line;
		memcpy(key, k, klen);
		key[klen] = '\0';
		val = key + klen + 1;
		if ((why = dotenv_value(p, eol, val)) != NULL) {
			snprintf(err, errlen, "line %zu: %s", lineno, why);
			goto out;
		}
		if (fn(arg, key, val) == -1) {
			snprintf(err, errlen, "line %zu: out of memory",
			    lineno);
			goto out;
		}
next:
		if (eol < end && *eol == '\r')
			eol++;
	}
	rc = 0;
out:
	free(line);
	return rc;
}

static int
remember_file_value(void *arg, const char *key, const char *val)
{
	struct sources	*src = arg;
	size_t		 i;

	for (i = 0; i < K_COUNT; i++) {
		if (strcmp(key, key_names[i]) != 0)
			continue;
		free(src->file_value[i]);
		if ((src->file_value[i] = strdup(val)) == NULL)
			return -1;
	}
	return 0;
}

static int
load_env_file(struct config *cfg, struct sources *src, const char *path)
{
	char	*data, err[256];
	size_t	 len;
	int	 rc;

	src->file_name = path;
	if ((data = read_small_file(cfg, "NSPS_ENV_FILE", path, 1, &len))
	    == NULL)
		return -1;
	if (memchr(data, '\0', len) != NULL) {
		free(data);
		return fail(cfg, "NSPS_ENV_FILE: %s: contains a NUL byte",
		    path);
	}
	rc = dotenv_parse(data, len, remember_file_value, src, err,
	    sizeof(err));
	free(data);
	if (rc == -1)
		return fail(cfg, "NSPS_ENV_FILE: %s: %s", path, err);
	return 0;
}

/* An empty value counts as unset, so "VAR= prog" does what it says. */
static const char *
nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

/* The winning value of a setting: command line, environment, file. */
static const char *
setting(const struct sources *src, enum key k, const char *opt)
{
	const char	*v;

	if ((v = nonempty(opt)) != NULL)
		return v;
	if ((v = nonempty(getenv(key_names[k]))) != NULL)
		return v;
	return nonempty(src->file_value[k]);
}

static int
add_token(struct config *cfg, const char *what, const char *p, size_t len)
{
	size_t	 i;

	if (len == 0)
		return 0;
	if (len > MAX_TOKEN_LEN)
		return fail(cfg, "%s: a token is longer than %d bytes", what,
		    MAX_TOKEN_LEN);
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
			return fail(cfg, "%s: a token holds a blank, control "
			    "or non-ASCII character", what);
	if (cfg->ntokens == MAX_TOKENS)
		return fail(cfg, "%s: more than %d tokens", what, MAX_TOKENS);
	if ((cfg->token[cfg->ntokens] = strndup(p, len)) == NULL)
		return fail(cfg, "%s: %s", what, strerror(errno));
	cfg->token_len[cfg->ntokens++] = len;
	return 0;
}

/* Calls fn for each item of a comma-separated list, blanks trimmed. */
static int
for_each_item(struct config *cfg, const char *list,
    int (*fn)(struct config *, const char *, size_t))
{
	const char	*p = list, *e, *end;

	for (;;) {
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		for (end = e; end > p && end[-1] == ' '; end--)
			continue;
		while (p < end && *p == ' ')
			p++;
		if (fn(cfg, p, (size_t)(end - p)) == -1)
			return -1;
		if (*e == '\0')
			return 0;
		p = e + 1;
	}
}

/* API_TOKEN: one token, or several separated by commas (rotation). */
static int
add_listed_token(struct config *cfg, const char *p, size_t len)
{
	return add_token(cfg, "API_TOKEN", p, len);
}

/* API_TOKEN_FILE: one token a line; blank lines and # comments skipped. */
static int
load_token_file(struct config *cfg, const char *path)
{
	char	*data, *p, *eol, *end;
	size_t	 len;
	int	 rc = 0;

	if ((data = read_small_file(cfg, "API_TOKEN_FILE", path, 1, &len))
	    == NULL)
		return -1;
	for (p = data; rc == 0 && p < data + len; p = eol + 1) {
		if ((eol = memchr(p, '\n', len - (size_t)(p - data))) == NULL)
			eol = data + len;
		for (end = eol; end > p && (end[-1] == '\r' ||
		    end[-1] == ' ' || end[-1] == '\t'); end--)
			continue;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p != '#')
			rc = add_token(cfg, "API_TOKEN_FILE", p,
			    (size_t)(end - p));
	}
	free(data);
	return rc;
}

static int
load_path(struct config *cfg, const char *what, const char *v,
    char **out, size_t *lenp)
{
	const char	*p;

	if (*v != '/')
		return fail(cfg, "%s: '%s' does not start with /", what, v);
	if (strlen(v) > MAX_PATH_LEN)
		return fail(cfg, "%s: longer than %d bytes", what,
		    MAX_PATH_LEN);
	for (p = v; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' ||
		    (unsigned char)*p == 0x7f)
			return fail(cfg, "%s: '%s' holds a blank, control "
			    "character, ? or #", what, v);
	if ((*out = strdup(v)) == NULL)
		return fail(cfg, "%s: %s", what, strerror(errno));
	*lenp = strlen(v);
	return 0;
}

static int
is_segment_char(int c)
{
	return is_key_char(c) || c == '-';
}

/* One dotted path such as "pb_data.account_info.bill_status". */
static int
add_required(struct config *cfg, const char *p, size_t len)
{
	struct field_path	*f;
	char			*s;
	size_t			 i;

	if (cfg->nrequired == MAX_REQUIRED)
		return fail(cfg, "REQUIRED_FIELDS: more than %d fields",
		    MAX_REQUIRED);
	f = &cfg->required[cfg->nrequired];
	if ((f->dotted = strndup(p, len)) == NULL ||
	    (f->segbuf = strndup(p, len)) == NULL)
		return fail(cfg, "REQUIRED_FIELDS: %s", strerror(errno));
	cfg->nrequired++;
	for (s = f->segbuf, i = 0; i <= len; i++) {
		if (i < len && is_segment_char((unsigned char)p[i]))
			continue;
		if (i < len && p[i] != '.')
			return fail(cfg, "REQUIRED_FIELDS: '%s': a name may "
			    "hold only letters, digits, _ and -", f->dotted);
		if (f->segbuf + i == s)
			return fail(cfg, "REQUIRED_FIELDS: '%s': empty name",
			    f->dotted);
		if (f->nseg == MAX_FIELD_DEPTH)
			return fail(cfg, "REQUIRED_FIELDS: '%s': deeper than "
			    "%d", f->dotted, MAX_FIELD_DEPTH);
		f->segbuf[i] = '\0';
		f->seg[f->nseg++] = s;
		s = f->segbuf + i + 1;
	}
	return 0;
}

static int
load_settings(struct config *cfg, const struct sources *src)
{
	const struct options *o = src->opts;
	const char	*v;

	if ((v = setting(src, K_API_TOKEN, NULL)) != NULL &&
	    for_each_item(cfg, v, add_listed_token) == -1)
		return -1;
	if ((v = setting(src, K_API_TOKEN_FILE, o->token_file)) != NULL &&
	    load_token_file(cfg, v) == -1)
		return -1;
	if (cfg->ntokens == 0)
		return fail(cfg, "no API token configured: set API_TOKEN or "
		    "API_TOKEN_FILE");

	v = setting(src, K_EVENT_PATH, o->event_path);
	if (load_path(cfg, "EVENT_PATH", v ? v : DEFAULT_EVENT_PATH,
	    &cfg->event_path, &cfg->event_path_len) == -1)
		return -1;
	v = setting(src, K_HEALTH_PATH, o->health_path);
	if (load_path(cfg, "HEALTH_PATH", v ? v : DEFAULT_HEALTH_PATH,
	    &cfg->health_path, &cfg->health_path_len) == -1)
		return -1;
	if (strcmp(cfg->event_path, cfg->health_path) == 0)
		return fail(cfg, "EVENT_PATH and HEALTH_PATH are both '%s'",
		    cfg->event_path);

	v = setting(src, K_REQUIRED_FIELDS, o->required);
	if (for_each_item(cfg, v ? v : DEFAULT_REQUIRED, add_required) == -1)
		return -1;

	cfg->max_body = DEFAULT_MAX_BODY;
	if ((v = setting(src, K_MAX_BODY_BYTES, o->max_body)) != NULL &&
	    parse_size(v, MAX_BODY_LIMIT, &cfg->max_body) == -1)
		return fail(cfg, "MAX_BODY_BYTES: '%s' is not a number of "
		    "bytes from 1 to %u", v, MAX_BODY_LIMIT);
	if (cfg->max_body == 0)
		return fail(cfg, "MAX_BODY_BYTES: must be at least 1");

	cfg->log_format = LOG_TEXT;
	if ((v = setting(src, K_LOG_FORMAT, o->log_format)) != NULL) {
		if (strcmp(v, "json") == 0)
			cfg->log_format = LOG_JSON;
		else if (strcmp(v, "text") != 0)
			return fail(cfg, "LOG_FORMAT: '%s' is neither text "
			    "nor json", v);
	}

	if ((v = setting(src, K_SPOOL_DIR, o->spool_dir)) != NULL &&
	    (cfg->spool_dir = strdup(v)) == NULL)
		return fail(cfg, "SPOOL_DIR: %s", strerror(errno));
	return 0;
}

/*
 * Fills cfg.  Returns 0, or -1 with the reason in cfg->error; the caller
 * decides whether that stops the program or fails each request.
 */
int
config_load(struct config *cfg, const struct options *opts)
{
	struct sources	 src;
	const char	*envfile;
	size_t		 i;
	int		 rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	memset(&src, 0, sizeof(src));
	src.opts = opts;
	envfile = nonempty(opts->env_file);
	if (envfile == NULL)
		envfile = nonempty(getenv("NSPS_ENV_FILE"));
	if (envfile == NULL || load_env_file(cfg, &src, envfile) == 0)
		rc = load_settings(cfg, &src);
	for (i = 0; i < K_COUNT; i++)
		free(src.file_value[i]);
	return rc;
}

void
config_free(struct config *cfg)
{
	size_t	 i;

	for (i = 0; i < cfg->ntokens; i++) {
		explicit_bzero(cfg->token[i], cfg->token_len[i]);
		free(cfg->token[i]);
	}
	for (i = 0; i < cfg->nrequired; i++) {
		free(cfg->required[i].dotted);
		free(cfg->required[i].segbuf);
	}
	free(cfg->event_path);
	free(cfg->health_path);
	free(cfg->spool_dir);
	memset(cfg, 0, sizeof(*cfg));
}
