/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * nsps-deliver: options, the one-shot commands (--stats,
 * --requeue-failed) and the start of the worker.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "extern.h"

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: %s [-hV] [--once] [-d spooldir] [-e envfile] "
	    "[-j jobs] [-r routesfile]\n"
	    "                    [-t timeout] [-- handler [arg ...]]\n"
	    "       %s --stats [-d spooldir]\n"
	    "       %s --checkpoint [-d spooldir]\n"
	    "       %s --requeue-failed [-d spooldir]\n"
	    "       %s --migrate [-e envfile]\n", DPROG, DPROG, DPROG, DPROG,
	    DPROG);
}

/* A key --stats names as blocked: {"key":..., "reason":...}. */
static void
add_blocked(void *arg, const char *key, const char *why)
{
	struct buf	*b = arg;

	buf_adds(b, b->data[b->len - 1] == '[' ? "{\"key\":" : ",{\"key\":");
	buf_add_json_string(b, key, strlen(key));
	buf_adds(b, ",\"reason\":");
	buf_add_json_string(b, why, strlen(why));
	buf_addc(b, '}');
}

/*
 * --stats: one JSON object, a count and the oldest age per state, and
 * the keys whose applied version cannot be read.
 */
static int
print_stats(const struct config *cfg, const struct store *store,
    struct queue *q)
{
	struct queue_count c[QSTATE_COUNT];
	struct buf	 b = { 0 };
	long long	 now = clock_ms(CLOCK_REALTIME);
	size_t		 i;
	int		 rc = 1, bad = 0;

	if (q->ops->stats(q->ctx, c, store->states) == -1)
		return 1;
	buf_addc(&b, '{');
	store->stats_head(cfg, &b);
	for (i = 0; i < QSTATE_COUNT; i++) {
		if ((store->states & (1u << i)) == 0)
			continue;
		buf_adds(&b, ",\"");
		buf_adds(&b, queue_state_names[i]);
		buf_adds(&b, "\":{\"count\":");
		buf_addu(&b, c[i].count);
		buf_adds(&b, ",\"oldest_age\":");
		if (c[i].oldest_ms < 0)
			buf_adds(&b, "null");
		else
			buf_addu(&b, (unsigned long long)(now > c[i].oldest_ms ?
			    (now - c[i].oldest_ms) / 1000 : 0));
		buf_addc(&b, '}');
	}
	buf_adds(&b, ",\"blocked\":[");
	if (q->ops->blocked != NULL &&
	    q->ops->blocked(q->ctx, add_blocked, &b) == -1)
		bad = 1;
	buf_addc(&b, ']');
	if (store->stats_tail != NULL && store->stats_tail(cfg, &b) == -1)
		bad = 1;
	if (!bad && buf_adds(&b, "}\n") == 0 &&
	    write_all(STDOUT_FILENO, b.data, b.len) == 0)
		rc = 0;
	buf_free(&b);
	return rc;
}

/*
 * Runs the worker, counting into the connector's counters file: one
 * scrape of the connector shows both.  A METRICS_DIR that cannot be
 * used stops it, as any bad setting does.
 */
static int
start_worker(struct worker *w, const struct config *cfg, int once)
{
	struct metrics	 m;
	int		 rc;

	if (cfg->metrics_dir != NULL) {
		if (metrics_open(&m, cfg->metrics_dir, 0) == -1) {
			dlog("%s", m.error);
			return EX_CONFIG_CODE;
		}
		w->metrics = &m;
	}
	rc = worker_run(w, once);
	w->metrics = NULL;
	if (cfg->metrics_dir != NULL)
		metrics_close(&m);
	return rc;
}

/*
 * --checkpoint: the spool's log recovered where no connector owns it,
 * and checkpointed (see wal.c); then --stats.  Before a backup, say.
 */
static int
run_checkpoint(struct config *cfg, const struct store *store,
    struct queue *q)
{
	struct log_stats ls;

	memset(&ls, 0, sizeof(ls));
	if (q->ops->checkpoint == NULL) {
		dlog("--checkpoint: the %s store has no log", store->name);
		return 1;
	}
	if (q->ops->checkpoint(q->ctx, &ls) == -1)
		return 1;
	return print_stats(cfg, store, q);
}

/* The one-shot commands and the worker, on one queue. */
static int
run(struct config *cfg, const struct store *store, struct queue *q, int once,
    int stats, int requeue)
{
	struct worker	 w;
	size_t		 n = 0;
	int		 rc;

	if (stats == 2)
		rc = run_checkpoint(cfg, store, q);
	else if (stats)
		rc = print_stats(cfg, store, q);
	else if (requeue) {
		rc = q->ops->requeue_failed(q->ctx, &n) == -1;
		printf("%zu events requeued\n", n);
	} else {
		signal(SIGPIPE, SIG_IGN);
		rc = worker_init(&w, cfg, q) == -1 ? 1 :
		    start_worker(&w, cfg, once);
	}
	return rc;
}

/* --migrate: the store's schema, brought up to date. */
static int
run_migrate(struct config *cfg, const struct store *store)
{
	char		 err[MAX_PATH_LEN + 256];
	int		 rc, ex;

	rc = store->migrate(cfg, err, sizeof(err), &ex);
	if (rc == -1)
		dlog("--migrate: %s", err);
	else
		dlog("schema is up to date");
	config_free(cfg);
	return rc == -1 ? ex : 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "stats", no_argument, NULL, 'S' },
		{ "checkpoint", no_argument, NULL, 'C' },
		{ "requeue-failed", no_argument, NULL, 'R' },
		{ "migrate", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct options	 opts;
	struct config	 cfg;
	const struct store *store;
	struct queue	 q;
	char		 err[MAX_PATH_LEN + 256];
	int		 ch, once = 0, stats = 0, requeue = 0, migrate = 0, rc;
	int		 checkpoint = 0;
	int		 ex;

	memset(&opts, 0, sizeof(opts));
	opts.program = FOR_DELIVER;
	while ((ch = getopt_long(argc, argv, "+d:e:hj:r:t:V", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'd':
			opts.value[S_SPOOL_DIR] = optarg;
			break;
		case 'e':
			opts.env_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'j':
			opts.value[S_DELIVER_JOBS] = optarg;
			break;
		case 'r':
			opts.value[S_ROUTES_FILE] = optarg;
			break;
		case 't':
			opts.value[S_HANDLER_TIMEOUT] = optarg;
			break;
		case 'o':
			once = 1;
			break;
		case 'S':
			stats = 1;
			break;
		case 'C':
			checkpoint = 1;
			break;
		case 'R':
			requeue = 1;
			break;
		case 'M':
			migrate = 1;
			break;
		case 'V':
			printf("%s %s\n", DPROG, PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE_CODE;
		}
	}
	if (optind < argc)
		opts.handler = argv + optind;
	if (stats + checkpoint + requeue + once + migrate > 1) {
		usage(stderr);
		return EX_USAGE_CODE;
	}
	/* --checkpoint prints --stats once it is done. */
	if (checkpoint)
		stats = 2;
	if (!stats && !requeue && !migrate)
		opts.program |= FOR_HANDLER;
	if (config_load(&cfg, &opts) == -1) {
		dlog("%s", cfg.error);
		config_free(&cfg);
		return EX_CONFIG_CODE;
	}
	/* The store, chosen once. */
	store = store_choose(&cfg);
	if (migrate && (store == NULL || store->migrate == NULL)) {
		dlog("--migrate: no database: set DATABASE_URL");
		config_free(&cfg);
		return EX_CONFIG_CODE;
	}
	if (store == NULL) {
		dlog("no store: set SPOOL_DIR (or give -d) or DATABASE_URL");
		config_free(&cfg);
		return EX_CONFIG_CODE;
	}
	if (store->load != NULL &&
	    store->load(&cfg, err, sizeof(err)) == -1) {
		dlog("%s", err);
		config_free(&cfg);
		return EX_CONFIG_CODE;
	}
	if (migrate)
		return run_migrate(&cfg, store);
	if (store->queue_open(&q, &cfg, stats || requeue ? 0 :
	    QUEUE_WORK | (once ? 0 : QUEUE_WATCH), dlog, err, sizeof(err),
	    &ex) == -1) {
		dlog("%s", err);
		if (q.ops != NULL)
			q.ops->close(q.ctx);
		config_free(&cfg);
		return ex;
	}
	rc = run(&cfg, store, &q, once, stats, requeue);
	q.ops->close(q.ctx);
	config_free(&cfg);
	return rc;
}
