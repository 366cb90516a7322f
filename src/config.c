/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * Settings of both programs: one table of keys, each with its kind,
 * default and limits, read from the command line, then the environment,
 * then the dotenv file named by NSPS_ENV_FILE.  Read and checked once,
 * at start-up, into struct config.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "extern.h"

#define MAX_FILE_SIZE	(64 * 1024)
#define MS_PER_DAY	(86400ULL * 1000)

/* What a setting's value is, and so how it is checked. */
enum kind {
	KIND_TOKENS,		/* comma-separated bearer tokens */
	KIND_FILE,		/* a file read at start-up */
	KIND_URL_PATH,		/* a path of the Service URL */
	KIND_FIELDS,		/* comma-separated dotted JSON paths */
	KIND_SIZE,		/* bytes */
	KIND_COUNT,		/* a whole number */
	KIND_DURATION,		/* 500ms, 30s, 5m, 2h, 35d; kept in ms */
	KIND_WORD,		/* one of a few words */
	KIND_DIR,		/* a directory */
	KIND_STRING,		/* anything, checked by its user */
	KIND_COMMAND		/* words, the first one executable */
};

struct setting_def {
	const char		*name;
	enum kind		 kind;
	unsigned int		 program;	/* FOR_*: who reads it */
	const char		*def;		/* NULL: unset */
	unsigned long long	 min, max;	/* sizes, counts, durations */
};

/*
 * Every setting either program reads.  A program checks only its own,
 * and only here; what it then holds in struct config is valid.
 */
static const struct setting_def settings[SETTING_COUNT] = {
	[S_API_TOKEN] = { "API_TOKEN", KIND_TOKENS, FOR_CONNECTOR,
	    NULL, 0, 0 },
	[S_API_TOKEN_FILE] = { "API_TOKEN_FILE", KIND_FILE, FOR_CONNECTOR,
	    NULL, 0, 0 },
	[S_EVENT_PATH] = { "EVENT_PATH", KIND_URL_PATH, FOR_CONNECTOR,
	    DEFAULT_EVENT_PATH, 0, 0 },
	[S_HEALTH_PATH] = { "HEALTH_PATH", KIND_URL_PATH, FOR_CONNECTOR,
	    DEFAULT_HEALTH_PATH, 0, 0 },
	[S_REQUIRED_FIELDS] = { "REQUIRED_FIELDS", KIND_FIELDS,
	    FOR_CONNECTOR | FOR_DELIVER, DEFAULT_REQUIRED, 0, 0 },
	[S_MAX_BODY_BYTES] = { "MAX_BODY_BYTES", KIND_SIZE, FOR_CONNECTOR,
	    NULL, 1, MAX_BODY_LIMIT },
	[S_LOG_FORMAT] = { "LOG_FORMAT", KIND_WORD, FOR_CONNECTOR,
	    "text", 0, 0 },
	[S_SPOOL_DIR] = { "SPOOL_DIR", KIND_DIR, FOR_CONNECTOR | FOR_DELIVER,
	    NULL, 0, 0 },
	[S_HANDLER] = { "HANDLER", KIND_COMMAND, FOR_HANDLER | FOR_INLINE,
	    NULL, 0, 0 },
	[S_HANDLER_TIMEOUT] = { "HANDLER_TIMEOUT", KIND_DURATION, FOR_DELIVER,
	    "30s", 1, MS_PER_DAY },
	[S_RETRY_BASE] = { "RETRY_BASE", KIND_DURATION, FOR_DELIVER,
	    "10s", 0, 30 * MS_PER_DAY },
	[S_RETRY_CAP] = { "RETRY_CAP", KIND_DURATION, FOR_DELIVER,
	    "1h", 0, 30 * MS_PER_DAY },
	[S_RETRY_LIMIT] = { "RETRY_LIMIT", KIND_COUNT, FOR_DELIVER,
	    "50", 1, 100000 },
	[S_RETRY_MAX_AGE] = { "RETRY_MAX_AGE", KIND_DURATION, FOR_DELIVER,
	    "3d", 0, 3650 * MS_PER_DAY },
	/*
	 * Never less than NSPS's Long Retry (about a month, 35 days with
	 * manual replays): applied versions younger than that are what
	 * keeps a late copy from being applied over a newer snapshot.
	 */
	[S_RETENTION] = { "RETENTION", KIND_DURATION, FOR_DELIVER,
	    "35d", 35 * MS_PER_DAY, 3650 * MS_PER_DAY },
	[S_DELIVER_JOBS] = { "DELIVER_JOBS", KIND_COUNT, FOR_DELIVER,
	    "1", 1, MAX_JOBS },
	[S_ORDER] = { "ORDER", KIND_WORD, FOR_DELIVER | FOR_INLINE, "on",
	    0, 0 },
	/* With PostgreSQL the connector stores each event's key. */
	[S_ORDER_KEY] = { "ORDER_KEY", KIND_FIELDS,
	    FOR_CONNECTOR | FOR_DELIVER, DEFAULT_ORDER_KEY, 0, 0 },
	[S_ORDER_VERSION] = { "ORDER_VERSION", KIND_FIELDS,
	    FOR_CONNECTOR | FOR_DELIVER, DEFAULT_ORDER_VERSION, 0, 0 },
	[S_ORDER_MAX_SKEW] = { "ORDER_MAX_SKEW", KIND_DURATION,
	    FOR_DELIVER | FOR_INLINE,
	    "1d", 1000, 365 * MS_PER_DAY },
	[S_ROUTES_FILE] = { "ROUTES_FILE", KIND_FILE,
	    FOR_HANDLER | FOR_INLINE,
	    NULL, 0, 0 },
	[S_METRICS_PATH] = { "METRICS_PATH", KIND_URL_PATH, FOR_CONNECTOR,
	    DEFAULT_METRICS_PATH, 0, 0 },
	/* Unset: the spool.  Either way the counters' file lives there. */
	[S_METRICS_DIR] = { "METRICS_DIR", KIND_DIR,
	    FOR_CONNECTOR | FOR_DELIVER, NULL, 0, 0 },
	[S_METRICS_MAX_TYPES] = { "METRICS_MAX_TYPES", KIND_COUNT,
	    FOR_CONNECTOR, "32", 1, METRICS_TYPES_CAP },
	[S_DATABASE_URL] = { "DATABASE_URL", KIND_STRING,
	    FOR_CONNECTOR | FOR_DELIVER, NULL, 0, 0 },
	[S_DB_TIMEOUT] = { "DB_TIMEOUT", KIND_DURATION,
	    FOR_CONNECTOR | FOR_DELIVER, "5s", 100, 3600 * 1000 },
	[S_LEASE_TIME] = { "LEASE_TIME", KIND_DURATION, FOR_DELIVER,
	    "60s", 1000, MS_PER_DAY },
	[S_DELIVERY] = { "DELIVERY", KIND_WORD, FOR_CONNECTOR, "queue",
	    0, 0 },
	/* NSPS gives up on an answer after about a minute. */
	[S_INLINE_TIMEOUT] = { "INLINE_TIMEOUT", KIND_DURATION, FOR_INLINE,
	    "10s", 100, 60 * 1000 },
	[S_INLINE_FALLBACK] = { "INLINE_FALLBACK", KIND_WORD, FOR_INLINE,
	    "queue", 0, 0 },
	/* The spool's write-ahead log: see wal.c. */
	[S_SPOOL_WAL] = { "SPOOL_WAL", KIND_WORD, FOR_CONNECTOR, "off",
	    0, 0 },
	[S_SPOOL_WAL_SIZE] = { "SPOOL_WAL_SIZE", KIND_SIZE, FOR_CONNECTOR,
	    "16777216", 65536, 1073741824 },
	[S_WAL_CHECKPOINT] = { "WAL_CHECKPOINT", KIND_DURATION, FOR_DELIVER,
	    "5s", 100, 3600 * 1000 },
};

/* Where the values come from, and what they parsed to. */
struct sources {
	const struct options *opts;
	unsigned int	 program;	/* opts->program, and FOR_INLINE */
	char		*file_value[SETTING_COUNT];	/* NSPS_ENV_FILE */
	const char	*value[SETTING_COUNT];		/* the winners */
	unsigned long long num[SETTING_COUNT];		/* sizes and such */
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

const char *
setting_name(enum setting k)
{
	return settings[k].name;
}

/*
 * Parses a size made of decimal digits only (no sign, no blanks) from 0
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

/*
 * A duration: digits with an optional unit, ms, s (the default), m, h
 * or d.  Returns 0 with milliseconds in out, or -1.
 */
int
parse_duration(const char *s, unsigned long long *out)
{
	static const struct {
		const char		*unit;
		unsigned long long	 ms;
	} units[] = {
		{ "ms", 1 }, { "", 1000 }, { "s", 1000 }, { "m", 60 * 1000 },
		{ "h", 3600 * 1000 }, { "d", 86400 * 1000 }
	};
	char		 num[16];
	size_t		 n, v, i;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++)
		continue;
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s + n, units[i].unit) == 0) {
			/* Too many for 64 bits of ms is too many. */
			if (parse_size(num, SIZE_MAX / units[i].ms, &v) == -1)
				return -1;
			*out = v * units[i].ms;
			return 0;
		}
	return -1;
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
	/* Whoever may write it could name a secret or a command. */
	if (refuse_writable && st.st_uid != 0 && st.st_uid != geteuid()) {
		fail(cfg, "%s: %s: owned by uid %lu, neither root nor this "
		    "user", what, path, (unsigned long)st.st_uid);
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

	for (i = 0; i < SETTING_COUNT; i++) {
		if (strcmp(key, settings[i].name) != 0)
			continue;
		free(src->file_value[i]);
		if ((src->file_value[i] = strdup(val)) == NULL)
			return -1;
	}
	return 0;
}

/*
 * The env file may name tokens and commands: it must be as trusted as
 * the binary (a regular file, not writable by others, no NUL byte).
 */
static int
load_env_file(struct config *cfg, struct sources *src, const char *path)
{
	char	*data, err[256];
	size_t	 len;
	int	 rc;

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
winner(const struct sources *src, enum setting k)
{
	const char	*v;

	if ((v = nonempty(src->opts->value[k])) != NULL)
		return v;
	if ((v = nonempty(getenv(settings[k].name))) != NULL)
		return v;
	return nonempty(src->file_value[k]);
}

/* A duration in its largest whole unit, as a message writes it. */
static void
duration_text(unsigned long long ms, char *out, size_t len)
{
	if (ms != 0 && ms % MS_PER_DAY == 0)
		snprintf(out, len, "%llud", ms / MS_PER_DAY);
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(out, len, "%llus", ms / 1000);
	else
		snprintf(out, len, "%llums", ms);
}

/*
 * Resolves every setting the program reads and checks the numbers
 * against the table's limits, naming the key in the one message.
 */
static int
resolve(struct config *cfg, struct sources *src)
{
	const struct setting_def *d;
	const char	*v;
	char		 min[32], max[32];
	size_t		 k, n;

	for (k = 0; k < SETTING_COUNT; k++) {
		d = &settings[k];
		if ((d->program & src->program) == 0)
			continue;
		if ((v = winner(src, k)) == NULL)
			v = d->def;
		src->value[k] = v;
		if (v == NULL)
			continue;
		switch (d->kind) {
		case KIND_SIZE:
		case KIND_COUNT:
			if (parse_size(v, d->max, &n) == -1 || n < d->min)
				return fail(cfg, "%s: '%s' is not a number%s "
				    "from %llu to %llu", d->name, v,
				    d->kind == KIND_SIZE ? " of bytes" : "",
				    d->min, d->max);
			src->num[k] = n;
			break;
		case KIND_DURATION:
			if (parse_duration(v, &src->num[k]) == -1 ||
			    src->num[k] < d->min || src->num[k] > d->max) {
				duration_text(d->min, min, sizeof(min));
				duration_text(d->max, max, sizeof(max));
				return fail(cfg, "%s: '%s' is not a duration "
				    "from %s to %s (such as 500ms, 30s, "
				    "5m, 2h, 35d)", d->name, v, min, max);
			}
			break;
		default:
			break;
		}
	}
	return 0;
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
split_path(struct config *cfg, const char *what, struct field_path *f,
    const char *p, size_t len)
{
	char	*s;
	size_t	 i;

	if ((f->dotted = strndup(p, len)) == NULL ||
	    (f->segbuf = strndup(p, len)) == NULL)
		return fail(cfg, "%s: %s", what, strerror(errno));
	for (s = f->segbuf, i = 0; i <= len; i++) {
		if (i < len && is_segment_char((unsigned char)p[i]))
			continue;
		if (i < len && p[i] != '.')
			return fail(cfg, "%s: '%s': a name may hold only "
			    "letters, digits, _ and -", what, f->dotted);
		if (f->segbuf + i == s)
			return fail(cfg, "%s: '%s': empty name", what,
			    f->dotted);
		if (f->nseg == MAX_FIELD_DEPTH)
			return fail(cfg, "%s: '%s': deeper than %d", what,
			    f->dotted, MAX_FIELD_DEPTH);
		f->segbuf[i] = '\0';
		f->seg[f->nseg++] = s;
		s = f->segbuf + i + 1;
	}
	return 0;
}

static int
add_required(struct config *cfg, const char *p, size_t len)
{
	if (cfg->nrequired == MAX_REQUIRED)
		return fail(cfg, "REQUIRED_FIELDS: more than %d fields",
		    MAX_REQUIRED);
	return split_path(cfg, "REQUIRED_FIELDS",
	    &cfg->required[cfg->nrequired++], p, len);
}

static int
add_order_key(struct config *cfg, const char *p, size_t len)
{
	if (cfg->norder_key == MAX_REQUIRED)
		return fail(cfg, "ORDER_KEY: more than %d fields",
		    MAX_REQUIRED);
	return split_path(cfg, "ORDER_KEY",
	    &cfg->order_key[cfg->norder_key++], p, len);
}

/* HANDLER as a string: words separated by blanks, no quoting. */
static int
split_command(struct config *cfg, const char *v)
{
	char	*w, *save = NULL;
	size_t	 n = 0;

	if ((cfg->handler_words = strdup(v)) == NULL ||
	    (cfg->handler = calloc(strlen(v) / 2 + 2, sizeof(char *))) == NULL)
		return fail(cfg, "HANDLER: %s", strerror(errno));
	for (w = strtok_r(cfg->handler_words, " \t", &save); w != NULL;
	    w = strtok_r(NULL, " \t", &save))
		cfg->handler[n++] = w;
	cfg->handler[n] = NULL;
	return 0;
}

/*
 * The command must be there now, not fail every event later: a name
 * with a slash as it is, else looked up in PATH as execvp(3) does.
 */
int
command_runnable(const char *prog)
{
	const char	*path, *p, *e;
	char		 buf[PATH_MAX];

	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	if ((path = getenv("PATH")) == NULL)
		path = "/usr/bin:/bin";
	for (p = path;; p = e + 1) {
		if ((e = strchr(p, ':')) == NULL)
			e = p + strlen(p);
		if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)(e - p), p,
		    prog) < (int)sizeof(buf) && access(buf, X_OK) == 0)
			return 1;
		if (*e == '\0')
			return 0;
	}
}

/*
 * One line of ROUTES_FILE, split in place: a pattern, then "ignore" or
 * a command whose first word must be runnable now.
 */
static int
add_route(struct config *cfg, const char *path, char *line, size_t lineno)
{
	struct route	*r = &cfg->routes[cfg->nroutes];
	char		*w, *save = NULL;
	size_t		 n = 0;

	if ((r->words = strdup(line)) == NULL ||
	    (r->argv = calloc(strlen(line) / 2 + 2, sizeof(char *))) == NULL)
		return fail(cfg, "ROUTES_FILE: %s", strerror(errno));
	r->line = lineno;
	cfg->nroutes++;
	r->pattern = strtok_r(r->words, " \t", &save);
	while ((w = strtok_r(NULL, " \t", &save)) != NULL)
		r->argv[n++] = w;
	if (n == 0)
		return fail(cfg, "ROUTES_FILE: %s: line %zu: '%s' needs a "
		    "command or the word ignore", path, lineno, r->pattern);
	if (n == 1 && strcmp(r->argv[0], "ignore") == 0) {
		free(r->argv);
		r->argv = NULL;
	} else if (!command_runnable(r->argv[0]))
		return fail(cfg, "ROUTES_FILE: %s: line %zu: %s: not found or "
		    "not executable", path, lineno, r->argv[0]);
	return 0;
}

/*
 * ROUTES_FILE names commands: it is trusted like the env file.  One
 * rule a line, # comments; the first that matches an event wins.
 */
static int
load_routes(struct config *cfg, const char *path)
{
	char	*data, *p, *eol, *end, *hash;
	size_t	 len, lineno = 0, lines = 1;
	int	 rc = 0;

	if ((data = read_small_file(cfg, "ROUTES_FILE", path, 1, &len))
	    == NULL)
		return -1;
	if (memchr(data, '\0', len) != NULL) {
		free(data);
		return fail(cfg, "ROUTES_FILE: %s: contains a NUL byte", path);
	}
	for (p = data; (p = memchr(p, '\n', len - (size_t)(p - data)))
	    != NULL; p++)
		lines++;
	if ((cfg->routes = calloc(lines, sizeof(*cfg->routes))) == NULL) {
		free(data);
		return fail(cfg, "ROUTES_FILE: %s", strerror(errno));
	}
	for (p = data; rc == 0 && p < data + len; p = eol + 1) {
		lineno++;
		if ((eol = memchr(p, '\n', len - (size_t)(p - data))) == NULL)
			eol = data + len;
		*eol = '\0';
		if ((hash = strchr(p, '#')) != NULL)
			*hash = '\0';
		for (end = p + strlen(p); end > p && (end[-1] == '\r' ||
		    end[-1] == ' ' || end[-1] == '\t'); end--)
			end[-1] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0')
			rc = add_route(cfg, path, p, lineno);
	}
	free(data);
	if (rc == 0 && cfg->nroutes == 0)
		return fail(cfg, "ROUTES_FILE: %s: no rules", path);
	return rc;
}

/* The first route whose pattern matches the type, or NULL. */
const struct route *
route_find(const struct config *cfg, const char *type)
{
	size_t	 i;

	for (i = 0; i < cfg->nroutes; i++)
		if (fnmatch(cfg->routes[i].pattern, type, 0) == 0)
			return &cfg->routes[i];
	return NULL;
}

/* The handler: the words after -- win over HANDLER. */
static int
load_handler(struct config *cfg, const struct sources *src)
{
	const char	*v = src->value[S_HANDLER];
	char *const	*argv = src->opts->handler;
	size_t		 n;

	if (argv != NULL && argv[0] != NULL) {
		for (n = 0; argv[n] != NULL; n++)
			continue;
		if ((cfg->handler = calloc(n + 1, sizeof(char *))) == NULL)
			return fail(cfg, "HANDLER: %s", strerror(errno));
		memcpy(cfg->handler, argv, n * sizeof(char *));
	} else if (v != NULL && split_command(cfg, v) == -1)
		return -1;
	if ((v = src->value[S_ROUTES_FILE]) != NULL &&
	    load_routes(cfg, v) == -1)
		return -1;
	if (cfg->handler != NULL && cfg->handler[0] == NULL) {
		free(cfg->handler);
		cfg->handler = NULL;
	}
	/* Without a handler, routes alone decide. */
	if (cfg->handler == NULL && cfg->nroutes > 0)
		return 0;
	if (cfg->handler == NULL)
		return fail(cfg, "no handler: set HANDLER or ROUTES_FILE, or "
		    "give it after --");
	if (!command_runnable(cfg->handler[0]))
		return fail(cfg, "handler %s: not found or not executable",
		    cfg->handler[0]);
	return 0;
}

/* What only the connector reads: tokens, paths, limits, log format. */
static int
load_connector(struct config *cfg, const struct sources *src)
{
	const char	*v;

	if ((v = src->value[S_API_TOKEN]) != NULL &&
	    for_each_item(cfg, v, add_listed_token) == -1)
		return -1;
	if ((v = src->value[S_API_TOKEN_FILE]) != NULL &&
	    load_token_file(cfg, v) == -1)
		return -1;
	if (cfg->ntokens == 0)
		return fail(cfg, "no API token configured: set API_TOKEN or "
		    "API_TOKEN_FILE");
	if (load_path(cfg, "EVENT_PATH", src->value[S_EVENT_PATH],
	    &cfg->event_path, &cfg->event_path_len) == -1 ||
	    load_path(cfg, "HEALTH_PATH", src->value[S_HEALTH_PATH],
	    &cfg->health_path, &cfg->health_path_len) == -1)
		return -1;
	if (strcmp(cfg->event_path, cfg->health_path) == 0)
		return fail(cfg, "EVENT_PATH and HEALTH_PATH are both '%s'",
		    cfg->event_path);
	if (load_path(cfg, "METRICS_PATH", src->value[S_METRICS_PATH],
	    &cfg->metrics_path, &cfg->metrics_path_len) == -1)
		return -1;
	if (strcmp(cfg->metrics_path, cfg->event_path) == 0 ||
	    strcmp(cfg->metrics_path, cfg->health_path) == 0)
		return fail(cfg, "METRICS_PATH: '%s' is already EVENT_PATH or "
		    "HEALTH_PATH", cfg->metrics_path);
	cfg->metrics_max_types = src->num[S_METRICS_MAX_TYPES];
	cfg->max_body = DEFAULT_MAX_BODY;
	if (src->value[S_MAX_BODY_BYTES] != NULL)
		cfg->max_body = src->num[S_MAX_BODY_BYTES];
	v = src->value[S_LOG_FORMAT];
	if (strcmp(v, "json") == 0)
		cfg->log_format = LOG_JSON;
	else if (strcmp(v, "text") == 0)
		cfg->log_format = LOG_TEXT;
	else
		return fail(cfg, "LOG_FORMAT: '%s' is neither text nor json",
		    v);
	return 0;
}

/* ORDER and ORDER_MAX_SKEW: nsps-deliver's, and inline delivery's. */
static int
load_ordering(struct config *cfg, const struct sources *src)
{
	const char	*v = src->value[S_ORDER];

	if (strcmp(v, "on") == 0)
		cfg->order = 1;
	else if (strcmp(v, "off") != 0)
		return fail(cfg, "ORDER: '%s' is neither on nor off", v);
	cfg->order_max_skew_ms = (long long)src->num[S_ORDER_MAX_SKEW];
	return 0;
}

/* What only nsps-deliver reads: the schedule of attempts, the order. */
static int
load_deliver(struct config *cfg, const struct sources *src)
{
	cfg->handler_timeout_ms = (long long)src->num[S_HANDLER_TIMEOUT];
	cfg->retry_base_ms = (long long)src->num[S_RETRY_BASE];
	cfg->retry_cap_ms = (long long)src->num[S_RETRY_CAP];
	cfg->retry_max_age_ms = (long long)src->num[S_RETRY_MAX_AGE];
	cfg->retention_ms = (long long)src->num[S_RETENTION];
	cfg->retry_limit = src->num[S_RETRY_LIMIT];
	cfg->jobs = src->num[S_DELIVER_JOBS];
	cfg->lease_ms = (long long)src->num[S_LEASE_TIME];
	return load_ordering(cfg, src);
}

/*
 * The connector delivering inline: its deadline, its fallback, and the
 * ordering and handlers nsps-deliver has.
 */
static int
load_inline(struct config *cfg, const struct sources *src)
{
	const char	*v = src->value[S_INLINE_FALLBACK];

	cfg->inline_delivery = 1;
	cfg->inline_timeout_ms = (long long)src->num[S_INLINE_TIMEOUT];
	if (strcmp(v, "reject") == 0)
		cfg->inline_reject = 1;
	else if (strcmp(v, "queue") != 0)
		return fail(cfg, "INLINE_FALLBACK: '%s' is neither queue nor "
		    "reject", v);
	if (cfg->spool_dir == NULL && cfg->database_url == NULL)
		return fail(cfg, "DELIVERY: inline needs a store: set "
		    "SPOOL_DIR or DATABASE_URL");
	return load_ordering(cfg, src);
}

/* The order's paths: the worker's, and the connector's for PostgreSQL. */
static int
load_order(struct config *cfg, const struct sources *src)
{
	const char	*v;

	if (for_each_item(cfg, src->value[S_ORDER_KEY], add_order_key) == -1)
		return -1;
	v = src->value[S_ORDER_VERSION];
	return split_path(cfg, "ORDER_VERSION", &cfg->order_version, v,
	    strlen(v));
}

/* SPOOL_WAL and its segment size: the connector's; a spool's only. */
static int
load_wal(struct config *cfg, const struct sources *src)
{
	const char	*v = src->value[S_SPOOL_WAL];

	cfg->wal_checkpoint_ms = (long long)src->num[S_WAL_CHECKPOINT];
	if (v == NULL)
		return 0;
	if (strcmp(v, "on") == 0)
		cfg->spool_wal = 1;
	else if (strcmp(v, "off") != 0)
		return fail(cfg, "SPOOL_WAL: '%s' is neither on nor off", v);
	cfg->spool_wal_size = src->num[S_SPOOL_WAL_SIZE];
	if (cfg->spool_wal_size % 4096 != 0)
		return fail(cfg, "SPOOL_WAL_SIZE: %zu is not a multiple of "
		    "4096", cfg->spool_wal_size);
	if (cfg->spool_wal && cfg->spool_dir == NULL)
		return fail(cfg, "SPOOL_WAL: on needs SPOOL_DIR");
	return 0;
}

/* The store: a spool or PostgreSQL, not both. */
static int
load_store(struct config *cfg, const struct sources *src)
{
	const char	*v;

	if ((v = src->value[S_SPOOL_DIR]) != NULL &&
	    (cfg->spool_dir = strdup(v)) == NULL)
		return fail(cfg, "SPOOL_DIR: %s", strerror(errno));
	if (load_wal(cfg, src) == -1)
		return -1;
	if ((v = src->value[S_DATABASE_URL]) == NULL)
		return 0;
	if (cfg->spool_dir != NULL)
		return fail(cfg, "SPOOL_DIR and DATABASE_URL exclude each "
		    "other: choose one store");
	/* The URL may hold a password: never repeat it in a message. */
	if ((cfg->database_url = strdup(v)) == NULL)
		return fail(cfg, "DATABASE_URL: %s", strerror(errno));
	cfg->db_timeout_ms = (long long)src->num[S_DB_TIMEOUT];
	return 0;
}

/*
 * DELIVERY=inline makes the connector read what nsps-deliver reads of
 * handlers and ordering: the settings marked FOR_INLINE.
 */
static int
delivery_mode(struct config *cfg, struct sources *src, unsigned int *prog)
{
	const char	*v;

	if ((*prog & FOR_CONNECTOR) == 0)
		return 0;
	if ((v = winner(src, S_DELIVERY)) == NULL)
		v = settings[S_DELIVERY].def;
	if (strcmp(v, "inline") == 0)
		*prog |= FOR_INLINE;
	else if (strcmp(v, "queue") != 0)
		return fail(cfg, "DELIVERY: '%s' is neither queue nor inline",
		    v);
	return 0;
}

static int
load_settings(struct config *cfg, struct sources *src)
{
	unsigned int	 prog = src->program;
	const char	*v;

	if (delivery_mode(cfg, src, &prog) == -1)
		return -1;
	src->program = prog;
	if (resolve(cfg, src) == -1)
		return -1;
	if ((prog & FOR_CONNECTOR) && load_connector(cfg, src) == -1)
		return -1;
	if (for_each_item(cfg, src->value[S_REQUIRED_FIELDS],
	    add_required) == -1)
		return -1;
	if (load_store(cfg, src) == -1 || load_order(cfg, src) == -1)
		return -1;
	if ((v = src->value[S_METRICS_DIR]) == NULL)
		v = src->value[S_SPOOL_DIR];
	if (v != NULL && (cfg->metrics_dir = strdup(v)) == NULL)
		return fail(cfg, "METRICS_DIR: %s", strerror(errno));
	if ((prog & FOR_DELIVER) && load_deliver(cfg, src) == -1)
		return -1;
	if ((prog & FOR_HANDLER) && load_handler(cfg, src) == -1)
		return -1;
	if ((prog & FOR_INLINE) && (load_inline(cfg, src) == -1 ||
	    load_handler(cfg, src) == -1))
		return -1;
	return 0;
}


/*
 * Fills cfg with the settings opts->program reads.  Returns 0, or -1
 * with the reason in cfg->error; the caller decides whether that stops
 * the program or fails each request.
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
	src.program = opts->program;
	envfile = nonempty(opts->env_file);
	if (envfile == NULL)
		envfile = nonempty(getenv("NSPS_ENV_FILE"));
	if (envfile == NULL || load_env_file(cfg, &src, envfile) == 0)
		rc = load_settings(cfg, &src);
	for (i = 0; i < SETTING_COUNT; i++)
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
	for (i = 0; i < cfg->norder_key; i++) {
		free(cfg->order_key[i].dotted);
		free(cfg->order_key[i].segbuf);
	}
	free(cfg->order_version.dotted);
	free(cfg->order_version.segbuf);
	for (i = 0; i < cfg->nroutes; i++) {
		free(cfg->routes[i].argv);
		free(cfg->routes[i].words);
	}
	free(cfg->routes);
	free(cfg->event_path);
	free(cfg->health_path);
	free(cfg->metrics_path);
	free(cfg->spool_dir);
	free(cfg->metrics_dir);
	if (cfg->database_url != NULL)
		explicit_bzero(cfg->database_url, strlen(cfg->database_url));
	free(cfg->database_url);
	free(cfg->handler);
	free(cfg->handler_words);
	memset(cfg, 0, sizeof(*cfg));
}
