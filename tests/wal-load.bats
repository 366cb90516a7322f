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

# strace_connector: $CONNECTOR becomes a script that runs the connector
# under strace, which writes each thread's fdatasync(2) calls to
# $BATS_TEST_TMPDIR/syncs ("TID fdatasync(FD) = 0").
strace_connector() {
	command -v strace >/dev/null || fail_with "strace is not installed (.ci/deps installs it)" || return 1
	printf '#!/bin/sh\nexec strace -f -qq -e trace=fdatasync -o %s %s "$@"\n' \
	    "$BATS_TEST_TMPDIR/syncs" "$NSPS_CONNECTOR" > "$BATS_TEST_TMPDIR/traced"
	chmod 755 "$BATS_TEST_TMPDIR/traced"
	CONNECTOR=$BATS_TEST_TMPDIR/traced
}

@test "wal: one connector's threads share each fdatasync, and every 202 is delivered once" {
	strace_connector
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	post_ids gc 400
	stop_lighttpd
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" = 400 ] ||
	    fail_with "not 400 202s:" "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/codes" | sort | uniq -c)"
	syncs=$(grep -c 'fdatasync(.*= 0$' "$BATS_TEST_TMPDIR/syncs")
	leaders=$(grep 'fdatasync(' "$BATS_TEST_TMPDIR/syncs" | awk '{ print $1 }' | sort -u | wc -l)
	echo "# 400 events over 16 connections to one process: $syncs fdatasync calls, made by $leaders threads" >&3
	# One flush an event would be 400 (and a few for the segment).
	[ "$syncs" -le 300 ] || fail_with "$syncs fdatasync calls for 400 events"
	[ "$leaders" -gt 1 ] || fail_with "one thread made every fdatasync"
	deliver_once
	delivered_once gc 400
}

@test "wal: an fdatasync that fails under 16 connections is 503 for each event it did not cover, none of them delivered" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	start_lighttpd "$SPOOL" 1 "$(fault_env fdatasync 40)"
	post_ids gf 200
	stop_lighttpd
	failed=$(awk '$1 == 503 { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort)
	acked=$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes" || true)
	echo "# $acked answered 202, $(wc -w <<<"$failed") answered 503" >&3
	[ -n "$failed" ] || fail_with "no 503:" "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/codes" | sort | uniq -c)"
	[ "$((acked + $(wc -w <<<"$failed")))" = 200 ] ||
	    fail_with "answers other than 202 and 503:" "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/codes" | sort | uniq -c)"
	deliver_once
	[ "$(awk '$1 == 202 { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort)" = \
	    "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/delivered" | sort)" ] ||
	    fail_with "delivered is not what was answered 202:" \
	    "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/delivered" | sort | uniq -c | awk '$1 != 1' | head)"
}

@test "wal: SIGTERM while threads serve requests answers each request it took, and each 202 is delivered once" {
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	curl_config gt 300 1 > "$BATS_TEST_TMPDIR/curl.conf"
	curl_batch "$BATS_TEST_TMPDIR/curl.conf" "$BATS_TEST_TMPDIR/codes" &
	curl_pid=$!
	for _ in $(seq 200); do
		[ "$(grep -c '^Received event' "$SERVERS_DIR/lighttpd.err" || true)" -ge 100 ] && break
		sleep 0.05
	done
	pid=$(pgrep -P "$lighttpd_pid" | head -1)
	[ -n "$pid" ] || fail_with "no connector under lighttpd"
	threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status")
	kill -TERM "$pid"
	wait "$curl_pid" || true
	stop_lighttpd
	acked=$(awk '$1 == 202 { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort)
	echo "# $threads threads; $(wc -w <<<"$acked") answered 202 of 300: $(cut -d' ' -f1 "$BATS_TEST_TMPDIR/codes" | sort | uniq -c | xargs)" >&3
	[ "$threads" -gt 1 ] || fail_with "the connector ran $threads thread"
	deliver_once
	# What was stored is what was answered 202: a request the process
	# took was answered before it ended.
	[ "$acked" = "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/delivered" | sort)" ] ||
	    fail_with "delivered is not what was answered 202:" \
	    "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/delivered" | sort | uniq -c | awk '$1 != 1' | head)"
}
