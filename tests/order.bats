#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The order cases of lib/order-cases.bash on the spool; tests/order-pg.bats
# runs the same ones on PostgreSQL.

STORE=spool

load helper
load spool-helper
load lib/servers
load lib/store
load lib/order-cases

@test "order: the stale sample after basic is skipped, before basic both are applied" { order_stale_sample; }
@test "order: the re-enriched sample is applied after basic, and makes basic stale before it" { order_reenriched; }
@test "order: both samples waiting at once: the newest runs, the others are stale" { order_all_waiting; }
@test "order: an equal version is handed over again; offsets and fractions count" { order_equal_version; }
@test "order: an unparseable version is held in failed/, with the reason; no key, no order" { order_unparseable; }
@test "order: ORDER=off hands every event over and keeps no versions" { order_off; }
@test "order: applied versions outlive the worker and are pruned after RETENTION" { order_retention; }
@test "order: a retry in backoff does not block a newer event; when due it is stale" { order_retry_backoff; }
@test "order: 1,000 shuffled events over 32 keys, -j 8, retries and a SIGKILL: per key in order, never two at once" { order_shuffled; }
@test "orphans: a handler that ignores SIGTERM dies with its SIGKILLed worker; the event runs once more, alone" { orphans_sigterm; }
@test "orphans: a recorded pid that is now another process is left alone" { orphans_pid_reused; }

# The spool's own: locks/ holds a file per key (pg keeps no such file).
@test "order: a key's lock file is pruned after RETENTION once no event of it is left; the next event makes it again" {
	spool_file "$(event lk-1 20 2025-11-03T10:00:00Z)" \
	    "$(event lk-2 21 2025-11-03T10:00:00Z)"
	deliver_once
	[ -f "$SPOOL/locks/i_account=20" ] && [ -f "$SPOOL/locks/i_account=21" ]
	touch -d '36 days ago' "$SPOOL/locks/i_account=20" \
	    "$SPOOL/locks/i_account=21"
	# Key 21 has an event waiting when the worker starts and prunes.
	spool_file "$(event lk-3 21 2025-11-03T11:00:00Z)"
	deliver_once
	[ ! -e "$SPOOL/locks/i_account=20" ]
	[ -f "$SPOOL/locks/i_account=21" ]
	[ "$(result_of lk-3)" = "exit 0" ]
	spool_file "$(event lk-4 20 2025-11-03T11:00:00Z)"
	deliver_once
	[ "$(result_of lk-4)" = "exit 0" ]
	# Key 20's, made again by lk-4, is newer than the cutoff: kept.
	# Key 21's, made before it and idle now: pruned.
	[ -f "$SPOOL/locks/i_account=20" ]
	[ ! -e "$SPOOL/locks/i_account=21" ]
}
