#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The deliver cases of lib/deliver-cases.bash on the spool; tests/deliver-pg.bats
# runs the same ones on PostgreSQL.

STORE=spool

load helper
load spool-helper
load lib/store
load lib/deliver-cases

@test "deliver: exit 0 moves the event to done/ with the event on stdin and NSPS_* set" { deliver_exit_0; }
@test "deliver: events are handled oldest first" { deliver_oldest_first; }
@test "deliver: exit 1 fails at once and keeps the reason with stderr's tail" { deliver_exit_1; }
@test "deliver: exit 75 is retried with exponential backoff and jitter, then failed/" { deliver_exit_75; }
@test "deliver: a retry waits in retry/ for its time; --once leaves it there" { deliver_retry_waits; }
@test "deliver: a handler past HANDLER_TIMEOUT is killed with its process group and retried" { deliver_timeout; }
@test "deliver: a handler killed by a signal is retried" { deliver_signal; }
@test "deliver: a worker killed mid-delivery delivers the event again on restart" { deliver_worker_killed; }
@test "deliver: a worker SIGKILLed while -j 8 handlers start and restarted at once, 20 times, never gives up on the lock; every event is done" { deliver_restart_at_once; }
@test "deliver: the long-running worker picks up new events without polling" { deliver_no_polling; }
@test "deliver: -j 3 runs up to three handlers at once" { deliver_jobs; }
@test "deliver: --stats counts each folder and --requeue-failed starts over" { deliver_stats_requeue; }
@test "deliver: recovery completes what a killed connector left" { deliver_recovery; }
@test "deliver: events done past RETENTION are pruned with their marker" { deliver_prune; }
@test "deliver: configuration errors exit 78, a second worker 75" { deliver_config_errors; }
@test "deliver: HANDLER and SPOOL_DIR come from the environment or NSPS_ENV_FILE" { deliver_env; }
@test "deliver: an env file others may write is refused before any handler runs" { deliver_env_file_unsafe; }
@test "deliver: a bad value names its key, with the same checks as the connector" { deliver_bad_value; }
@test "deliver: the man page is lint-clean" { deliver_man; }
