#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# DELIVERY=inline, the cases of lib/inline-cases.bash on the spool;
# tests/inline-pg.bats runs the same ones on PostgreSQL.

STORE=spool

load helper
load spool-helper
load lib/servers
load lib/store
load lib/inline-cases

@test "inline: exit 0 is 202 Event processed, the event on stdin, no API_TOKEN; a copy is 200" { inline_processed; }
@test "inline: an ignore route is 202 Event ignored; no route at all is 422, failed" { inline_ignored; }
@test "inline: an older snapshot after a newer one is 202 Event ignored, naming the newer" { inline_stale; }
@test "inline: another exit is 422 SERVICE_ERROR with stderr's last line, escaped; NSPS's retry runs it again" { inline_failed; }
@test "inline: exit 75 with INLINE_FALLBACK=queue is 202 queued, and nsps-deliver delivers it" { inline_retry_queue; }
@test "inline: exit 75 with INLINE_FALLBACK=reject is 503 with Retry-After; NSPS's retry runs it" { inline_retry_reject; }
@test "inline: a version ORDER cannot place is 422 Event held" { inline_held; }
@test "inline: a handler that never exits and leaves a daemon: the deadline kills the group" { inline_timeout; }
@test "inline: a MiB of stderr: the answer carries a bounded last line" { inline_stderr_flood; }
@test "inline: a key nsps-deliver holds past INLINE_TIMEOUT falls back; other keys run" { inline_busy; }
@test "inline: outcomes are counted with mode=inline, with the handler's duration" { inline_metrics; }
@test "inline: without a store, or with a deadline over 60 s, the connector exits 78" { inline_no_store; }
@test "inline: the FastCGI process SIGKILLed mid-handler: its handler dies, the event is kept, the next request works" { inline_killed; }
@test "inline: 20 accounts x 10 snapshots from 16 clients: per key no overlap, never older after newer, newest applied" { inline_concurrency; }
@test "inline: the same with nsps-deliver on the same store" { inline_concurrency_deliver; }
