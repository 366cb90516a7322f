#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# DELIVERY=inline, the cases of lib/inline-cases.bash on the spool with its
# write-ahead log (SPOOL_WAL=on), under the names tests/inline.bats gives
# them: each event acknowledged on the log, its files unsynced, when the
# connector delivers it.  What a power cut leaves after an inline
# delivery is in tests/wal.bats.

STORE=spool
STORE_WAL=on

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

# This file's own: what a power cut can leave after inline deliveries on
# the log.  Nothing on the log's path fsyncs a body, its attribute or
# the ids/ folder; the claim fsyncs cur/, applied/<key> is fsync'd, and
# the outcome's folder is fsync'd last.  Account 7's two events were
# delivered and finished; account 9's newer one was delivered, its
# version recorded, and the cut came before its move to done/ reached
# the disk.
@test "inline: a power cut after inline deliveries on the log: rebuilt from it, nothing older run after newer" {
	local id
	handler 'exit 0'
	inline_start
	for id in pc7-old:7:09 pc7-new:7:10 pc9-old:9:09 pc9-new:9:10; do
		send "$(event "${id%%:*}" "$(cut -d: -f2 <<<"$id")" \
		    "2025-11-03T${id##*:}:00:00Z")"
		expect 202 '{"message":"Event processed"}'
	done
	stop_lighttpd
	[ "$(grep -c '^run' "$LOG")" -eq 4 ]
	ls "$SPOOL"/wal/seg-* > /dev/null
	for id in pc7-old pc7-new pc9-old pc9-new; do
		rm "$SPOOL/ids/$id"
		setfattr -x user.nsps "$SPOOL/done/$id"
		truncate -s 0 "$SPOOL/done/$id"
	done
	mv "$SPOOL/done/pc9-new" "$SPOOL/cur/pc9-new"
	: > "$LOG"
	run --separate-stderr "$DELIVER" --once -- "$H"
	[ "$status" -eq 0 ] || fail_with "nsps-deliver exit $status" "$stderr"
	for id in pc7-old pc7-new pc9-old pc9-new; do
		grep -q "$id: restored from the log" <<<"$stderr" ||
		    fail_with "$id not restored" "$stderr" || return 1
		[ "$(store_state "$id")" = done ] || return 1
		cmp "$SPOOL/done/$id" "$T/$id.json" || return 1
		[ "$SPOOL/done/$id" -ef "$SPOOL/ids/$id" ] || return 1
		meta_describes "$SPOOL" "$id" || return 1
	done
	# Only the event whose finish was lost runs again: the same
	# snapshot, at least once; the older ones never.
	grep -Eqx 'run pc9-new [12] token=none' "$LOG" &&
	    [ "$(wc -l < "$LOG")" -eq 1 ] ||
	    fail_with "runs after the cut:" "$(cat "$LOG")"
	[ "$(store_applied_id i_account=7)" = pc7-new ]
	[ "$(store_applied_id i_account=9)" = pc9-new ]
}
