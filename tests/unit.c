/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * C unit tests of what is easier to pin down from inside: durations,
 * the backoff schedule, what an attempt's end means, status records,
 * tmp/ names, the settings table, ISO-8601 times, the order key and
 * the shared metrics counters.  TAP on stdout, for make check.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "extern.h"
#include "spool.h"

static int	 tests, failures;

static void
ok(int cond, const char *fmt, ...)
	__attribute__((__format__(__printf__, 2, 3)));

static void
ok(int cond, const char *fmt, ...)
{
	va_list	 ap;

	printf("%sok %d - ", cond ? "" : "not ", ++tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
		failures++;
}

/* CRC-32C a bit at a time: what either of wal.c's ways must give. */
static uint32_t
crc_bitwise(uint32_t crc, const unsigned char *p, size_t len)
{
	int	 k;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78U : crc >> 1;
	}
	return ~crc;
}

static void
test_crc32c(void)
{
	unsigned char	 buf[1031];
	size_t		 i, len, bad = 0;

	ok(crc32c(0, "123456789", 9) == 0xe3069283U,
	    "crc32c: the check value of \"123456789\"");
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	/* Every length and alignment around the 8-byte steps. */
	for (len = 0; len < 40; len++)
		for (i = 0; i < 8; i++)
			if (crc32c(0, buf + i, len) != crc_bitwise(0, buf + i, len))
				bad++;
	ok(bad == 0, "crc32c: 320 short lengths and offsets as bit by bit");
	ok(crc32c(crc32c(0, buf, 500), buf + 500, sizeof(buf) - 500) ==
	    crc_bitwise(0, buf, sizeof(buf)), "crc32c: resumed in two parts");
}

static void
test_durations(void)
{
	static const struct {
		const char		*s;
		unsigned long long	 ms;
	} good[] = {
		{ "0", 0 }, { "500ms", 500 }, { "30", 30000 },
		{ "30s", 30000 }, { "5m", 300000 }, { "2h", 7200000 },
		{ "35d", 35ULL * 86400000 }, { "007s", 7000 },
	};
	static const char *const bad[] = {
		"", "s", "ms", "10x", "-1s", "+1s", " 1s", "1 s", "1s ",
		"1.5s", "1sec", "10S", "99999999999999999999d", "1msms",
		"999999999999999d",
	};
	unsigned long long	 v;
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(parse_duration(good[i].s, &v) == 0 && v == good[i].ms,
		    "duration '%s' is %llu ms", good[i].s, good[i].ms);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(parse_duration(bad[i], &v) == -1,
		    "duration '%s' is refused", bad[i]);
}

static void
test_backoff(void)
{
	/* base 10 s, cap 1 h: 10, 20, 40 s ... each less up to half. */
	ok(backoff_delay(10000, 3600000, 1, 0) == 10000,
	    "backoff: attempt 1, no jitter: the base");
	ok(backoff_delay(10000, 3600000, 1, 5000) == 5000,
	    "backoff: attempt 1, most jitter: half the base");
	ok(backoff_delay(10000, 3600000, 1, 5001) == 10000,
	    "backoff: the jitter wraps within half");
	ok(backoff_delay(10000, 3600000, 2, 0) == 20000,
	    "backoff: attempt 2 doubles");
	ok(backoff_delay(10000, 3600000, 3, 0) == 40000,
	    "backoff: attempt 3 doubles again");
	ok(backoff_delay(10000, 3600000, 12, 0) == 3600000,
	    "backoff: the cap holds");
	ok(backoff_delay(10000, 3600000, 100000, 0) == 3600000,
	    "backoff: a huge attempt count stays at the cap");
	ok(backoff_delay(10000, 3600000, 100000, 1800000) == 1800000,
	    "backoff: at the cap the jitter is at most half");
	ok(backoff_delay(0, 3600000, 5, 12345) == 0,
	    "backoff: a zero base retries at once");
	ok(backoff_delay(1, 1, 1, 99) == 1,
	    "backoff: one ms cannot be halved");
}

static void
test_judge(void)
{
	struct config	 cfg;
	char		 r[128];

	memset(&cfg, 0, sizeof(cfg));
	cfg.handler_timeout_ms = 30000;
	cfg.retry_limit = 3;
	cfg.retry_max_age_ms = 60000;
	ok(judge(&cfg, 0, 0, 1, 0, r, sizeof(r)) == OUTCOME_DONE &&
	    strcmp(r, "exit 0") == 0, "judge: exit 0 is done");
	ok(judge(&cfg, 75 << 8, 0, 1, 0, r, sizeof(r)) == OUTCOME_RETRY &&
	    strcmp(r, "exit 75") == 0, "judge: exit 75 is retried");
	ok(judge(&cfg, 75 << 8, 0, 3, 0, r, sizeof(r)) == OUTCOME_FAILED &&
	    strcmp(r, "exit 75, no attempts left") == 0,
	    "judge: exit 75 on the last attempt has failed");
	ok(judge(&cfg, 75 << 8, 0, 1, 60000, r, sizeof(r)) ==
	    OUTCOME_FAILED, "judge: exit 75 past RETRY_MAX_AGE has failed");
	ok(judge(&cfg, 1 << 8, 0, 1, 0, r, sizeof(r)) == OUTCOME_FAILED &&
	    strcmp(r, "exit 1") == 0, "judge: exit 1 has failed at once");
	ok(judge(&cfg, 9, 0, 1, 0, r, sizeof(r)) == OUTCOME_RETRY &&
	    strcmp(r, "signal 9") == 0, "judge: a signal is retried");
	ok(judge(&cfg, 9, 1, 1, 0, r, sizeof(r)) == OUTCOME_RETRY &&
	    strcmp(r, "timeout after 30000 ms") == 0,
	    "judge: the timeout is retried");
}

static void
test_status(void)
{
	struct status	 st;
	const char	*rec = "attempts 3\nfirst 1700000000000\nnext "
	    "1700000060000\nlast 1700000001000\nresult exit 75\n"
	    "stderr:\nattempts 99\n";

	ok(status_parse(rec, strlen(rec), &st) == 0 && st.attempts == 3 &&
	    st.first_ms == 1700000000000LL && st.next_ms == 1700000060000LL,
	    "status: a record as the worker writes it");
	rec = "attempts 2\nfuture 7\nnext 5";
	ok(status_parse(rec, strlen(rec), &st) == 0 && st.attempts == 2 &&
	    st.next_ms == 5, "status: unknown keys are skipped; no final "
	    "newline is fine");
	rec = "attempts 1x\n";
	ok(status_parse(rec, strlen(rec), &st) == -1,
	    "status: trailing junk in a number is refused");
	rec = "attempts -1\n";
	ok(status_parse(rec, strlen(rec), &st) == -1,
	    "status: a negative count is refused");
	rec = "next 9999999999999999999\n";
	ok(status_parse(rec, strlen(rec), &st) == -1,
	    "status: a number past 18 digits is refused");
	rec = "attempts\n";
	ok(status_parse(rec, strlen(rec), &st) == -1,
	    "status: a key without a value is refused");
	rec = "attempts \n";
	ok(status_parse(rec, strlen(rec), &st) == -1,
	    "status: an empty value is refused");
	ok(status_parse("", 0, &st) == 0 && st.attempts == 0,
	    "status: an empty record is a first attempt");
}

static void
test_tmp_names(void)
{
	static const char *const bad[] = {
		"abc", "abc,1,1", "abc,1,1,x", "abc,1,1,bb", "abc,0,1,b",
		"abc,-1,1,b", "abc,1x,1,b", "abc,1,,b", ",1,1,b", ".x,1,1,b",
		"a/b,1,1,b", "abc,99999999999,1,b", "abc,1,1,b,",
	};
	char		 id[SPOOL_ID_MAX + 1], kind, longname[300];
	long		 pid;
	size_t		 i;

	ok(tmp_name_parse("ev-1.x_Y,4242,7,b", id, sizeof(id), &pid,
	    &kind) == 0 && strcmp(id, "ev-1.x_Y") == 0 && pid == 4242 &&
	    kind == 'b', "tmp name: a body");
	ok(tmp_name_parse("ev,1,0,m", id, sizeof(id), &pid, &kind) == 0 &&
	    kind == 'm', "tmp name: metadata");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(tmp_name_parse(bad[i], id, sizeof(id), &pid, &kind) == -1,
		    "tmp name: '%s' is not one the connector makes", bad[i]);
	memset(longname, 'a', 129);
	snprintf(longname + 129, sizeof(longname) - 129, ",1,1,b");
	ok(tmp_name_parse(longname, id, sizeof(id), &pid, &kind) == -1,
	    "tmp name: an id longer than 128 is refused");
}

static char	 dir[] = "/tmp/nsps-unit.XXXXXX";

static const char *
write_env(const char *name, const char *text, size_t len, mode_t mode)
{
	static char	 path[256];
	int		 fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) == -1 ||
	    write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) == -1)
		abort();
	close(fd);
	return path;
}

static void
clear_env(void)
{
	size_t	 i;

	for (i = 0; i < SETTING_COUNT; i++)
		unsetenv(setting_name(i));
	unsetenv("NSPS_ENV_FILE");
}

/* config_load() for nsps-deliver; returns its result. */
static int
load(struct config *cfg, struct options *o)
{
	config_free(cfg);
	return config_load(cfg, o);
}

static void
test_settings(void)
{
	struct options	 o;
	struct config	 cfg;
	const char	*f;
	static const char text[] = "SPOOL_DIR=/file\nDELIVER_JOBS=3\n"
	    "RETRY_BASE=2s\nHANDLER_TIMEOUT=7s\nHANDLER=/bin/true\n";

	memset(&cfg, 0, sizeof(cfg));
	memset(&o, 0, sizeof(o));
	clear_env();
	o.program = FOR_DELIVER;
	ok(load(&cfg, &o) == 0 && cfg.jobs == 1 &&
	    cfg.handler_timeout_ms == 30000 && cfg.retry_base_ms == 10000 &&
	    cfg.retry_cap_ms == 3600000 && cfg.retry_limit == 50 &&
	    cfg.retry_max_age_ms == 3LL * 86400000 &&
	    cfg.retention_ms == 35LL * 86400000 && cfg.spool_dir == NULL,
	    "settings: the defaults");

	o.env_file = f = write_env("env", text, sizeof(text) - 1, 0640);
	ok(load(&cfg, &o) == 0 && cfg.jobs == 3 &&
	    strcmp(cfg.spool_dir, "/file") == 0 && cfg.retry_base_ms == 2000,
	    "settings: the file is read");
	setenv("DELIVER_JOBS", "4", 1);
	setenv("SPOOL_DIR", "/env", 1);
	ok(load(&cfg, &o) == 0 && cfg.jobs == 4 &&
	    strcmp(cfg.spool_dir, "/env") == 0 && cfg.retry_base_ms == 2000,
	    "settings: the environment wins over the file");
	o.value[S_DELIVER_JOBS] = "5";
	o.value[S_HANDLER_TIMEOUT] = "9s";
	ok(load(&cfg, &o) == 0 && cfg.jobs == 5 &&
	    cfg.handler_timeout_ms == 9000 && strcmp(cfg.spool_dir, "/env")
	    == 0, "settings: the command line wins over the environment");
	setenv("DELIVER_JOBS", "", 1);
	o.value[S_DELIVER_JOBS] = NULL;
	ok(load(&cfg, &o) == 0 && cfg.jobs == 3,
	    "settings: an empty value counts as unset");

	o.value[S_DELIVER_JOBS] = "65";
	ok(load(&cfg, &o) == -1 && strcmp(cfg.error, "DELIVER_JOBS: '65' is "
	    "not a number from 1 to 64") == 0,
	    "settings: a count past its limit names the key");
	o.value[S_DELIVER_JOBS] = NULL;
	o.value[S_HANDLER_TIMEOUT] = "0";
	ok(load(&cfg, &o) == -1 &&
	    strncmp(cfg.error, "HANDLER_TIMEOUT: '0' is not a duration", 38)
	    == 0, "settings: a duration below its limit names the key");
	o.value[S_HANDLER_TIMEOUT] = NULL;

	o.program = FOR_DELIVER | FOR_HANDLER;
	ok(load(&cfg, &o) == 0 && strcmp(cfg.handler[0], "/bin/true") == 0 &&
	    cfg.handler[1] == NULL, "settings: HANDLER from the file");
	setenv("HANDLER", "/nonexistent/handler --flag", 1);
	ok(load(&cfg, &o) == -1 && strcmp(cfg.error, "handler "
	    "/nonexistent/handler: not found or not executable") == 0,
	    "settings: a handler that cannot run is refused at start-up");
	unsetenv("HANDLER");

	o.env_file = write_env("env", text, sizeof(text) - 1, 0660);
	ok(load(&cfg, &o) == -1 && strstr(cfg.error, "group or world "
	    "writable") != NULL, "settings: a group-writable file is refused");
	o.env_file = write_env("env", text, sizeof(text) - 1, 0602);
	ok(load(&cfg, &o) == -1 && strstr(cfg.error, "group or world "
	    "writable") != NULL, "settings: a world-writable file is refused");
	o.env_file = write_env("env", "A=1\n\0B=2\n", 9, 0600);
	ok(load(&cfg, &o) == -1 && strstr(cfg.error, "NUL byte") != NULL,
	    "settings: a NUL byte is refused");
	o.env_file = write_env("env", text, sizeof(text) - 1, 0600);
	if (geteuid() == 0) {
		if (chown(o.env_file, 65534, 65534) == -1)
			abort();
		ok(load(&cfg, &o) == -1 && strstr(cfg.error, "owned by uid "
		    "65534") != NULL, "settings: a file another user owns is "
		    "refused");
	} else
		printf("ok %d - # SKIP chown to another user needs root\n",
		    ++tests);

	/* The connector reads the same table; its keys are its own. */
	o.env_file = write_env("env", "API_TOKEN=t\nMAX_BODY_BYTES=0\n", 29,
	    0600);
	o.program = FOR_CONNECTOR;
	ok(load(&cfg, &o) == -1 && strcmp(cfg.error, "MAX_BODY_BYTES: '0' is "
	    "not a number of bytes from 1 to 67108864") == 0,
	    "settings: the connector's sizes name the key too");
	o.program = FOR_DELIVER;
	ok(load(&cfg, &o) == 0, "settings: a key of the other program is not "
	    "checked");
	config_free(&cfg);
	clear_env();
}

static void
test_iso8601(void)
{
	static const struct {
		const char	*s;
		long long	 ns;
	} good[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1970-01-01T00:00:00.5Z", 500000000 },
		{ "2025-11-03T09:41:13.027551+00:00", 1762162873027551000LL },
		{ "2025-11-03T10:41:13.027551+01:00", 1762162873027551000LL },
		{ "2025-11-03T04:11:13.027551-05:30", 1762162873027551000LL },
		{ "2024-02-29T23:59:59.999999999Z", 1709251199999999999LL },
		{ "2000-03-01T00:00:00Z", 951868800000000000LL },
		{ "1969-12-31T23:59:59Z", -1000000000LL },
	};
	static const char *const bad[] = {
		"", "2025-11-03", "2025-11-03T09:41:13", "2025-11-03 09:41:13Z",
		"2025-11-03T09:41:13+0000", "2025-11-03T09:41:13+00",
		"2025-11-03T09:41:13.Z", "2025-11-03T09:41:13.1234567890Z",
		"2025-13-03T09:41:13Z", "2025-02-29T09:41:13Z",
		"2025-11-03T24:00:00Z", "2025-11-03T09:60:13Z",
		"2025-11-03T09:41:60Z", "2025-11-03T09:41:13+24:00",
		"2025-11-03T09:41:13Zjunk", "2025-11-03T09:41:13z",
		"+2025-11-03T09:41:13Z", "2025-11-03T09:41:13 Z",
		"2O25-11-03T09:41:13Z", "2025-1-03T09:41:13Z",
	};
	long long	 ns;
	size_t		 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(iso8601_parse(good[i].s, &ns) == 0 && ns == good[i].ns,
		    "iso8601: '%s' is %lld ns", good[i].s, good[i].ns);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(iso8601_parse(bad[i], &ns) == -1, "iso8601: '%s' is refused",
		    bad[i]);
}

static char	 order_why[256];

/* event_order() on a body, with the default ORDER_KEY and version. */
static enum order_result
order_of(const struct config *cfg, const char *body, char *key,
    struct version *v)
{
	struct json_object	*root = json_tokener_parse(body);
	enum order_result	 r;

	r = event_order(cfg, root, key, ORDER_KEY_MAX + 1, v, order_why,
	    sizeof(order_why));
	json_object_put(root);
	return r;
}

static void
test_keys(void)
{
	static const struct {
		const char	*in, *out;
	} good[] = {
		{ "5", "5" }, { "005", "5" }, { "5.0", "5" }, { "5e0", "5" },
		{ "5E+0", "5" }, { "50e-1", "5" }, { "0.5e1", "5" },
		{ "5.000", "5" }, { "0", "0" }, { "-0", "0" }, { "0e7", "0" },
		{ "-12", "-12" }, { "1e3", "1000" }, { "1.5e1", "15" },
		{ "9223372036854775808", "9223372036854775808" },
		{ "123456789012345678901234567890",
		    "123456789012345678901234567890" },
		{ "1.23456789012345678901234567890e29",
		    "123456789012345678901234567890" },
	};
	static const char *const bad[] = {
		"", "-", "5.5", "5e-1", "0.1", "1.", ".5", "+5", "5 ", " 5",
		"5a", "0x10", "1e", "1e+", "abc", "5..0", "1e100000000000",
	};
	char		 out[ORDER_KEY_MAX + 1], tiny[4];
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(key_normalise(good[i].in, strlen(good[i].in), out,
		    sizeof(out), &why) == 0 && strcmp(out, good[i].out) == 0,
		    "key: '%s' is %s", good[i].in, good[i].out);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(key_normalise(bad[i], strlen(bad[i]), out, sizeof(out),
		    &why) == -1 && why != NULL, "key: '%s' is refused (%s)",
		    bad[i], why);
	ok(key_normalise("1e3", 3, tiny, sizeof(tiny), &why) == -1 &&
	    strcmp(why, "too many digits for a key") == 0 &&
	    key_normalise("999", 3, tiny, sizeof(tiny), &why) == 0,
	    "key: one that does not fit is refused, not cut");
	ok(key_normalise("1e200", 5, out, sizeof(out), &why) == -1 &&
	    strcmp(why, "too many digits for a key") == 0,
	    "key: 1e200 is too long for a file name");
}

static void
test_order(void)
{
	struct options	 o;
	struct config	 cfg;
	struct version	 v, w;
	char		 key[ORDER_KEY_MAX + 1];

	memset(&o, 0, sizeof(o));
	clear_env();
	o.program = FOR_DELIVER;
	ok(config_load(&cfg, &o) == 0 && cfg.order == 1 &&
	    cfg.norder_key == 3 && cfg.order_max_skew_ms == 86400000LL &&
	    cfg.retention_ms == 35 * 86400000LL, "order: on by default, "
	    "with three key paths, ORDER_MAX_SKEW 1d, RETENTION 35d");
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":7}},"
	    "\"updated_at\":\"2025-11-03T09:41:13.5+00:00\"}", key, &v) ==
	    ORDER_KEYED && strcmp(key, "i_account=7") == 0 &&
	    v.ns == 1762162873500000000LL && v.created_ns == 0,
	    "order: data.variables.i_account, a number");
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":null}},"
	    "\"pb_data\":{\"account_info\":null,\"sim_info\":{"
	    "\"i_sim_card\":\"0052\"}},\"updated_at\":\"1970-01-01T00:00:01Z\","
	    "\"created_at\":\"1970-01-01T00:00:00Z\"}", key, &v) ==
	    ORDER_KEYED && strcmp(key, "i_sim_card=52") == 0 &&
	    v.ns == 1000000000, "order: an inventory SIM by i_sim_card");
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":7}},"
	    "\"pb_data\":{\"sim_info\":{\"i_sim_card\":52,"
	    "\"i_account\":7}},\"updated_at\":\"1970-01-01T00:00:01Z\"}",
	    key, &v) == ORDER_KEYED && strcmp(key, "i_sim_card=52") == 0,
	    "order: a SIM of an account by the SIM, first");
	ok(order_of(&cfg, "{\"pb_data\":{\"account_info\":{\"i_account\":"
	    "\"\"}}}", key, &v) == ORDER_NONE && key[0] == '\0',
	    "order: no key when every path is empty or absent");
	ok(order_of(&cfg, "{\"pb_data\":{\"account_info\":{\"i_account\":"
	    "3}},\"updated_at\":\"yesterday\"}", key, &v) ==
	    ORDER_BAD_VERSION && strcmp(key, "i_account=3") == 0 &&
	    strcmp(order_why, "unreadable updated_at: \"yesterday\"") == 0,
	    "order: an unreadable version is reported, the key kept");
	ok(order_of(&cfg, "{\"pb_data\":{\"account_info\":{\"i_account\":"
	    "3}}}", key, &v) == ORDER_BAD_VERSION &&
	    strcmp(order_why, "unreadable updated_at: missing") == 0,
	    "order: a missing version is unreadable");
	ok(order_of(&cfg, "{\"pb_data\":{\"account_info\":{\"i_account\":"
	    "3}},\"updated_at\":null}", key, &v) == ORDER_BAD_VERSION &&
	    strcmp(order_why, "unreadable updated_at: null") == 0,
	    "order: a null version is unreadable");
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":5.0}},"
	    "\"updated_at\":\"2025-11-03T09:00:00Z\"}", key, &v) ==
	    ORDER_KEYED && strcmp(key, "i_account=5") == 0 &&
	    order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":5e0}},"
	    "\"updated_at\":\"2025-11-03T09:00:00Z\"}", key, &v) ==
	    ORDER_KEYED && strcmp(key, "i_account=5") == 0 &&
	    order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":\"5\"}},"
	    "\"updated_at\":\"2025-11-03T09:00:00Z\"}", key, &v) ==
	    ORDER_KEYED && strcmp(key, "i_account=5") == 0,
	    "order: 5.0, 5e0 and \"5\" are account 5");
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":5.5}},"
	    "\"pb_data\":{\"sim_info\":null},"
	    "\"updated_at\":\"2025-11-03T09:00:00Z\"}", key, &v) ==
	    ORDER_BAD_KEY && strcmp(order_why, "data.variables.i_account: "
	    "not an integer: 5.5") == 0, "order: 5.5 is refused as a key, "
	    "and does not fall through (%s)", order_why);
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":"
	    "9223372036854775808}},\"updated_at\":\"2025-11-03T09:00:00Z\"}",
	    key, &v) == ORDER_KEYED &&
	    strcmp(key, "i_account=9223372036854775808") == 0 &&
	    order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":"
	    "9223372036854775809}},\"updated_at\":\"2025-11-03T09:00:00Z\"}",
	    key, &v) == ORDER_KEYED &&
	    strcmp(key, "i_account=9223372036854775809") == 0,
	    "order: 2^63 and 2^63 + 1 are two keys");
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":"
	    "123456789012345678901234567890}},"
	    "\"updated_at\":\"2025-11-03T09:00:00Z\"}", key, &v) ==
	    ORDER_BAD_KEY && strstr(order_why, "beyond 64 bits") != NULL &&
	    order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":"
	    "\"123456789012345678901234567890\"}},"
	    "\"updated_at\":\"2025-11-03T09:00:00Z\"}", key, &v) ==
	    ORDER_KEYED &&
	    strcmp(key, "i_account=123456789012345678901234567890") == 0,
	    "order: 30 digits: as a string exact, as a bare number refused");
	ok(order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":"
	    "\"abc\"}}}", key, &v) == ORDER_BAD_KEY &&
	    order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":"
	    "true}}}", key, &v) == ORDER_BAD_KEY &&
	    order_of(&cfg, "{\"data\":{\"variables\":{\"i_account\":"
	    "[1]}}}", key, &v) == ORDER_BAD_KEY,
	    "order: a word, a boolean, a list are no keys");
	memset(&v, 0, sizeof(v));
	v.ns = 86400000LL * 1000000 + 1;
	ok(version_ahead(&v, 0, 86400000LL) &&
	    !version_ahead(&v, 1, 86400000LL) && (v.ns -= 1,
	    !version_ahead(&v, 0, 86400000LL)),
	    "order: a version more than ORDER_MAX_SKEW ahead, to the ns");
	v.ns = w.ns = 5;
	v.created_ns = 1;
	w.created_ns = 2;
	ok(version_cmp(&v, &w) < 0 && version_cmp(&w, &v) > 0 &&
	    version_cmp(&v, &v) == 0, "order: created_at breaks a tie");
	config_free(&cfg);

	setenv("RETENTION", "1s", 1);
	ok(config_load(&cfg, &o) == -1 && strcmp(cfg.error, "RETENTION: '1s' "
	    "is not a duration from 35d to 3650d (such as 500ms, 30s, 5m, 2h, "
	    "35d)") == 0, "order: RETENTION has a floor of 35d (%s)",
	    cfg.error);
	config_free(&cfg);
	setenv("RETENTION", "0", 1);
	ok(config_load(&cfg, &o) == -1, "order: RETENTION=0 is refused");
	config_free(&cfg);
	unsetenv("RETENTION");
	setenv("ORDER_MAX_SKEW", "2h", 1);
	ok(config_load(&cfg, &o) == 0 && cfg.order_max_skew_ms ==
	    7200000LL, "order: ORDER_MAX_SKEW=2h");
	config_free(&cfg);
	setenv("ORDER_MAX_SKEW", "soon", 1);
	ok(config_load(&cfg, &o) == -1 && strncmp(cfg.error,
	    "ORDER_MAX_SKEW: 'soon' is not a duration from 1s", 48) == 0,
	    "order: ORDER_MAX_SKEW is checked like any duration");
	config_free(&cfg);
	unsetenv("ORDER_MAX_SKEW");
	setenv("ORDER", "maybe", 1);
	ok(config_load(&cfg, &o) == -1 && strcmp(cfg.error, "ORDER: 'maybe' "
	    "is neither on nor off") == 0, "order: ORDER is on or off");
	config_free(&cfg);
	setenv("ORDER", "off", 1);
	setenv("ORDER_KEY", "a..b", 1);
	ok(config_load(&cfg, &o) == -1 && strcmp(cfg.error, "ORDER_KEY: "
	    "'a..b': empty name") == 0, "order: ORDER_KEY is checked like "
	    "REQUIRED_FIELDS");
	config_free(&cfg);
	clear_env();
}

/* The exposition's line for key, or NULL. */
static const char *
metric(const struct buf *b, const char *key)
{
	static char	 line[256];
	const char	*p = b->data, *end = b->data + b->len, *nl;
	size_t		 n = strlen(key);

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((size_t)(nl - p) > n && memcmp(p, key, n) == 0 &&
		    p[n] == ' ') {
			snprintf(line, sizeof(line), "%.*s", (int)(nl - p - n - 1),
			    p + n + 1);
			return line;
		}
	}
	return NULL;
}

static int
metric_is(const struct buf *b, const char *key, const char *want)
{
	const char	*v = metric(b, key);

	return v != NULL && strcmp(v, want) == 0;
}

static void
test_metrics(void)
{
	struct metrics	 m, m2;
	struct buf	 b = { 0 };
	char		 type[32], path[64];
	int		 i;

	ok(metrics_open(&m, dir, 3) == 0, "metrics: a new counters file");
	ok(metrics_open(&m2, dir, 3) == 0, "metrics: a second process maps "
	    "it too");
	for (i = 0; i < 10; i++) {
		snprintf(type, sizeof(type), "T/%d", i);
		metrics_event(i % 2 ? &m : &m2, type, strlen(type));
	}
	metrics_event(&m, "T/0", 3);
	metrics_event(&m, "with \"quote", 12);
	metrics_event(&m, "other", 5);
	metrics_request(&m, 202, 50);
	metrics_request(&m2, 202, 100);
	metrics_request(&m, 418, 20000000);
	metrics_delivery(&m2, metrics_result(OUTCOME_RETRY, 1), 5);
	metrics_delivery(&m2, metrics_result(OUTCOME_FAILED, 0), 700);
	metrics_delivery(&m2, DRESULT_STALE, -1);
	metrics_store_failure(&m);
	ok(metrics_render(&m2, &b) == 0, "metrics: rendered");
	ok(metric_is(&b, "nsps_events_total{event_type=\"T/0\"}", "2") &&
	    metric_is(&b, "nsps_events_total{event_type=\"T/1\"}", "1") &&
	    metric_is(&b, "nsps_events_total{event_type=\"T/2\"}", "1") &&
	    metric(&b, "nsps_events_total{event_type=\"T/3\"}") == NULL &&
	    metric_is(&b, "nsps_events_total{event_type=\"other\"}", "9"),
	    "metrics: three types of their own, the rest and the odd ones "
	    "other");
	ok(metric_is(&b, "nsps_requests_total{status=\"202\"}", "2") &&
	    metric_is(&b, "nsps_requests_total{status=\"other\"}", "1") &&
	    metric_is(&b, "nsps_request_duration_seconds_bucket{le=\"0.0001\"}",
	    "2") && metric_is(&b,
	    "nsps_request_duration_seconds_bucket{le=\"10\"}", "2") &&
	    metric_is(&b, "nsps_request_duration_seconds_bucket{le=\"+Inf\"}",
	    "3") && metric_is(&b, "nsps_request_duration_seconds_sum",
	    "20.000150") && metric_is(&b, "nsps_store_failures_total", "1"),
	    "metrics: statuses, buckets up to the bound, the sum");
	ok(metric_is(&b, "nsps_deliveries_total{result=\"timeout\"}", "1") &&
	    metric_is(&b, "nsps_deliveries_total{result=\"failed\"}", "1") &&
	    metric_is(&b, "nsps_deliveries_total{result=\"retry\"}", "0") &&
	    metric_is(&b, "nsps_handler_duration_seconds_bucket{le=\"0.5\"}",
	    "1") && metric_is(&b, "nsps_handler_duration_seconds_sum",
	    "0.705") && metric_is(&b, "nsps_worker_up", "0") &&
	    metric_is(&b, "nsps_deliveries_total{result=\"stale\"}", "1") &&
	    metric_is(&b, "nsps_handler_duration_seconds_count", "2"),
	    "metrics: a timeout is its own result; handler buckets; a stale "
	    "event ran no handler");
	metrics_worker(&m2, 1);
	b.len = 0;
	ok(metrics_render(&m, &b) == 0 && metric_is(&b, "nsps_worker_up", "1"),
	    "metrics: the worker's heartbeat");
	metrics_close(&m);
	metrics_close(&m2);
	snprintf(path, sizeof(path), "%s/nsps-metrics.v4", dir);
	ok(truncate(path, 10) == 0 && metrics_open(&m, dir, 3) == -1 &&
	    strstr(m.error, "remove it") != NULL,
	    "metrics: a file of another size is refused: %s", m.error);
	unlink(path);
	buf_free(&b);
}

/*
 * The strict scan inside strings: a byte it must stop at is found at
 * every offset of strings of every length up to 40, valid UTF-8, DEL
 * and escapes pass, and an escaped quote does not end the string.
 */
static void
test_strict_scan(void)
{
	static const struct {
		const char	*bytes;
		int		 reject;	/* at the first byte */
	} special[] = {
		{ "\x01", 1 }, { "\x1f", 1 }, { "\x80", 1 }, { "\xff", 1 },
		{ "\xc3\xa9", 0 }, { "\x7f", 0 }, { "\\a", 0 },
		{ "\\\"", 0 },
	};
	char		 buf[128];
	size_t		 len, k, j, n, m, bad;
	int		 rc, wrong = 0, cases = 0;

	for (len = 0; len <= 40; len++)
		for (k = 0; k <= len; k++)
			for (j = 0; j < sizeof(special) / sizeof(special[0]);
			    j++) {
				m = strlen(special[j].bytes);
				n = 0;
				buf[n++] = '[';
				buf[n++] = '"';
				memset(buf + n, 'a', k);
				n += k;
				memcpy(buf + n, special[j].bytes, m);
				n += m;
				memset(buf + n, 'b', len - k);
				n += len - k;
				/* A control byte after it: still in the string. */
				buf[n++] = special[j].reject ? 'c' : '\x02';
				buf[n++] = '"';
				buf[n++] = ']';
				bad = 0;
				rc = json_strict_scan(buf, n, &bad);
				cases++;
				if (rc != -1 || bad != (special[j].reject ?
				    2 + k : n - 3))
					wrong++;
				/* Without the control byte: accepted or not. */
				buf[n - 3] = 'c';
				rc = json_strict_scan(buf, n, &bad);
				if (rc != (special[j].reject ? -1 : 0))
					wrong++;
			}
	ok(wrong == 0, "strict scan: %d strings, each special byte at every "
	    "offset found (%d wrong)", cases, wrong);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	test_durations();
	test_backoff();
	test_judge();
	test_status();
	test_tmp_names();
	test_settings();
	test_iso8601();
	test_keys();
	test_order();
	test_metrics();
	test_strict_scan();
	test_crc32c();
	printf("1..%d\n", tests);
	unlink(write_env("env", "", 0, 0600));
	rmdir(dir);
	return failures > 0;
}
