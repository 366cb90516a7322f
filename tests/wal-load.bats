#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The write-ahead log under load: the dedupe race and connectors killed
# with SIGKILL (spool.bats's two load tests, run with the log, with
# nsps-deliver --checkpoint running all along), and segments wrapping
# many times while a connector is killed at a wrap.  In the plain tree
# in CI: a build without sanitizers gives these races their speed, and
# the C paths they take run under ASan in wal.bats.

load helper
load lib/servers
load spool-helper
load lib/wal

setup() {
	SPOOL=$BATS_TEST_TMPDIR/spool
	mkdir -p "$SPOOL"
	lighttpd_pid=
	killer_pid=
}

teardown() {
	[ -z "${killer_pid:-}" ] || kill "$killer_pid" 2>/dev/null || true
	[ -z "${checkpoint_pid:-}" ] || kill "$checkpoint_pid" 2>/dev/null || true
	stop_lighttpd
}

@test "wal: 1000 ids sent 3 times over 16 connections are stored once each" {
	dedupe_race "$WAL_ENV"
}

@test "wal: connectors killed with SIGKILL under load, checkpoints running, lose no 2xx event" {
	: > "$BATS_TEST_TMPDIR/checkpoints"
	kills_under_load "$WAL_ENV" checkpoints
	echo "# $(ls "$SPOOL/wal" | wc -l) segments" >&3
}

@test "wal: segments wrap more than 3 times their size under load; a SIGKILL at a wrap loses no 2xx event" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	# 64 KiB segments; the first connector to reach its second wrap
	# is killed just before the wrap's syncfs, and lighttpd starts
	# another, which recovers the full segment and starts it over.
	start_lighttpd "$SPOOL" 2 "$(fault_env syncfs 1 "\"SPOOL_WAL_SIZE\" => \"65536\", \"NSPS_FAULT_KILL\" => \"1\", \"NSPS_FAULT_ONCE\" => \"$BATS_TEST_TMPDIR/killed\"")"
	: > "$BATS_TEST_TMPDIR/all"
	for round in 1 2 3 4 5; do
		post_ids wrapk 1500
		cat "$BATS_TEST_TMPDIR/codes" >> "$BATS_TEST_TMPDIR/all"
		! grep -qv '^20[02] ' "$BATS_TEST_TMPDIR/codes" || continue
		break
	done
	stop_lighttpd
	acked=$(awk '$1 == 202' "$BATS_TEST_TMPDIR/all" | wc -l)
	other=$(grep -vc '^20[02] ' "$BATS_TEST_TMPDIR/all" || true)
	echo "# $round rounds: $acked answered 202, $other failed while a connector was killed" >&3
	[ -e "$BATS_TEST_TMPDIR/killed" ] || fail_with "no connector was killed at a wrap"
	! grep -qv '^20[02] ' "$BATS_TEST_TMPDIR/codes" || fail_with "still failing after 5 rounds"
	# 1500 records of about 440 bytes: more than 3 x 64 KiB per segment.
	echo "# $(ls "$SPOOL/wal" | wc -l) segments" >&3
	deliver_once
	delivered_once wrapk 1500
}
