/*
 * Copyright (c) 2026 The nsps-connector authors
 * SPDX-License-Identifier: ISC (see LICENSE)
 */
/*
 * The stores' interface: the connector's sink, nsps-deliver's queue
 * and the table each store exports (store_spool, store_pg).  The
 * programs choose a store once, with store_choose(), and call only
 * through its table; the scheduler (deliver.c) knows nothing else of
 * a store.  Included by extern.h, whose types it uses.
 */
#ifndef NSPS_QUEUE_H
#define NSPS_QUEUE_H

enum store_result {
	STORE_OK,
	STORE_DUPLICATE,
	STORE_FAILED
};

/*
 * Where an accepted event goes before it is acknowledged.  store() gets
 * the body exactly as received; on STORE_FAILED it puts the reason in
 * why.  A NULL store means "log only".
 */
struct sink {
	enum store_result (*store)(void *, const struct event *,
	    const struct request *, const char *, size_t, char *, size_t);
	void		*ctx;
	/* Optional: event_id must satisfy this (the spool names files). */
	int		 require_event_id;
	/* Optional: events waiting for delivery, for the health check. */
	long		(*backlog)(void *);
	/* Optional: the shared counters, counted and scraped. */
	struct metrics	*metrics;
	/*
	 * Why the store cannot take events now, with the exit status
	 * FastCGI refuses to start with; NULL when it can.
	 */
	const char	*(*error)(const void *, int *);
	void		(*close)(void *);
	/*
	 * Optional, DELIVERY=inline: delivers the event just stored (or a
	 * duplicate not yet done) and answers from the outcome.
	 */
	void		(*deliver)(void *, const struct event *, int,
			    struct response *);
	void		*deliver_ctx;
	/*
	 * Optional: this process will store many events (FastCGI), so
	 * the store may use what a one-request process cannot (the
	 * spool's write-ahead log).  Returns how many requests the store
	 * takes at once, each on a thread of its own; without it, one.
	 */
	int		(*serving)(void *);
};

/*
 * The queue nsps-deliver works from.  A store implements these; the
 * scheduler in deliver.c knows nothing else of it.
 */
/* A claimed event, handed to its handler. */
struct delivery {
	char		 id[EVENT_ID_MAX + 1];
	int		 fd;		/* the body, open for reading */
	char		 path[MAX_PATH_LEN + EVENT_ID_MAX + 16];
	char		*type;		/* "" when unknown, never NULL */
	char		*bill_status;
	char		*trace_id;
	char		*request_id;
	size_t		 attempts;	/* this one included */
	long long	 first_ms;
	char		 key[ORDER_KEY_MAX + 1];	/* "": not ordered */
	struct version	 version;
	char		 newer[EVENT_ID_MAX + 1];	/* stale: applied */
	/* Set: its order cannot be read, so it is held, never run. */
	char		 order_error[256];
	/*
	 * A retry whose handler exited 0 but whose applied version was
	 * not recorded: until it is, no other event of its key runs.
	 */
	int		 hold;
	/* Its key's lock, held until delivery_free(); -1: none. */
	int		 lock;
};

/* The newest version applied (handler exit 0) for a key. */
struct applied {
	struct version	 version;
	char		 id[EVENT_ID_MAX + 1];
	char		 error[160];	/* why applied_get/set gave -1 */
};

enum outcome {
	OUTCOME_DONE,
	OUTCOME_RETRY,
	OUTCOME_FAILED
};

enum queue_state {
	QSTATE_NEW,
	QSTATE_CUR,
	QSTATE_RETRY,
	QSTATE_DONE,
	QSTATE_FAILED,
	QSTATE_TMP,		/* the spool's own, for --stats */
	QSTATE_IDS,
	QSTATE_COUNT
};

#define QSTATE_ALL		((1u << QSTATE_COUNT) - 1)

struct queue_count {
	size_t		 count;
	long long	 oldest_ms;	/* arrival, wall clock; -1: none */
};

/* The spool's write-ahead log after a checkpoint, for the metrics. */
struct log_stats {
	size_t		 segments;
	unsigned long long size;	/* bytes, all segments */
	size_t		 pending;	/* records not yet checkpointed */
	unsigned long long pending_bytes;
	long long	 checkpoint_ms;	/* the last one that succeeded */
};

struct queue_ops {
	/*
	 * Completes what a killed worker or connector left half done;
	 * first calls orphan(pid, start) for each handler a killed worker
	 * recorded as running.
	 */
	int	  (*recover)(void *, void (*)(pid_t, unsigned long long));
	/*
	 * The next event due at now (wall ms) whose key busy() does not
	 * name, the newest version of its key first: 1 claimed, 0 none.
	 */
	int	  (*claim)(void *, long long, int (*)(void *, const char *),
		    void *, struct delivery *);
	/*
	 * The connector's inline delivery: claims the event of this id
	 * once its key is free, waiting for it until the monotonic ms
	 * given.  1 claimed; 0 not waiting (done, or another has it);
	 * 2 its key stayed busy; -1 the store failed.
	 */
	int	  (*claim_id)(void *, const char *, long long,
		    struct delivery *);
	/* Its handler runs as pid, started at the given boot tick. */
	void	  (*started)(void *, struct delivery *, pid_t,
		    unsigned long long);
	/*
	 * The newest version applied for a key: 1, 0 none, -1 with the
	 * reason in its error when it is there but cannot be read.
	 */
	int	  (*applied_get)(void *, const char *, struct applied *);
	/*
	 * Made durable before the event is recorded as done: 0, or -1
	 * with the reason in its error, and the event is not done.
	 */
	int	  (*applied_set)(void *, const char *, struct applied *);
	/* Gives a claimed event back untouched. */
	void	  (*release)(void *, struct delivery *);
	/* Records an attempt's outcome; a retry is due at the given ms. */
	int	  (*finish)(void *, struct delivery *, enum outcome, long long,
		    const char *, const char *, size_t);
	/* When the earliest retry is due (wall ms), -1 when none. */
	long long (*next_due)(void *);
	/* Readable when new events may have come; -1 when none. */
	int	  (*wait_fd)(void *);
	void	  (*wake)(void *);
	/* The next claim looks at the whole store again. */
	void	  (*rescan)(void *);
	/* Forgets events done before the given wall ms. */
	void	  (*prune)(void *, long long);
	/* Counts the states whose bit (1 << QSTATE_*) is set. */
	int	  (*stats)(void *, struct queue_count *, unsigned int);
	int	  (*requeue_failed)(void *, size_t *);
	void	  (*close)(void *);
	/*
	 * Optional, for stores shared by many workers: renew() keeps the
	 * claims of running events and says how many were newly lost;
	 * lost() whether this one was (another worker may run it now).
	 */
	int	  (*renew)(void *);
	int	  (*lost)(void *, const struct delivery *);
	/*
	 * Optional: calls fn(arg, key, why) for each key whose applied
	 * version cannot be read, which holds the key's events back.
	 */
	int	  (*blocked)(void *, void (*)(void *, const char *,
		    const char *), void *);
	/*
	 * Optional: the store's checkpoint (the spool's log), run every
	 * WAL_CHECKPOINT; 1 and what the log holds after it, 0 when the
	 * store has no log, -1 when it failed.
	 */
	int	  (*checkpoint)(void *, struct log_stats *);
};

struct queue {
	const struct queue_ops *ops;
	void		*ctx;
};

#define QUEUE_WORK		0x1	/* claim events: take the lock */
#define QUEUE_WATCH		0x2	/* be told of new events */
#define QUEUE_INLINE		0x4	/* the connector's claims by id */

/* A store, as both programs see it. */
struct store {
	const char	*name;
	/* The states --stats shows: bit 1 << QSTATE_*. */
	unsigned int	 states;
	/* Optional: what must be ready before the rest (libpq). */
	int		(*load)(const struct config *, char *, size_t);
	/*
	 * The connector's side.  Fails only where no mode could answer;
	 * a store away for now is the sink's error().
	 */
	int		(*sink_open)(struct sink *, const struct config *,
			    char *, size_t, int *);
	/*
	 * nsps-deliver's side, with QUEUE_* flags.  The store may settle
	 * its own setting in the configuration (the spool's real path,
	 * which handlers are told).  On failure q->ops is NULL or
	 * q->ops->close() must still be called.
	 */
	int		(*queue_open)(struct queue *, struct config *,
			    unsigned int, void (*)(const char *, ...),
			    char *, size_t, int *);
	/* Optional: brings the store's schema up to date. */
	int		(*migrate)(const struct config *, char *, size_t,
			    int *);
	/* The first member of --stats' object: which store. */
	int		(*stats_head)(const struct config *, struct buf *);
	/* Optional: more members, after the states (the spool's log). */
	int		(*stats_tail)(const struct config *, struct buf *);
};

extern const struct store store_spool, store_pg;

/* queue.c */
extern const char *const queue_state_names[QSTATE_COUNT];

const struct store *store_choose(const struct config *);
long long clock_ms(clockid_t);
void	 delivery_free(struct delivery *);

#endif /* NSPS_QUEUE_H */
