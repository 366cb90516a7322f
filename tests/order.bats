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
