#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Group commit: a connector process with the write-ahead log serves
# eight requests at once, a thread each, and their records share each
# fdatasync (src/wal.c).  Under load from 16 connections to one
# process: the flushes are shared, a failing one answers 503 for exactly
# the events it did not cover, and SIGTERM answers every request taken.
# In the plain tree in CI, beside wal-load.bats, for the same reason.

load helper
load lib/servers
load spool-helper
load lib/wal

setup() {
	SPOOL=$BATS_TEST_TMPDIR/spool
	mkdir -p "$SPOOL"
	lighttpd_pid=
}

teardown() {
	stop_lighttpd
}

# strace_connector [CALLS]: $CONNECTOR becomes a script that runs the
# connector under strace, which writes each thread's calls of CALLS
# (fdatasync) to $BATS_TEST_TMPDIR/syncs ("TID fdatasync(FD) = 0").
strace_connector() {
	command -v strace >/dev/null || fail_with "strace is not installed (.ci/deps installs it)" || return 1
	printf '#!/bin/sh\nexec strace -f -qq -e trace=%s -o %s %s "$@"\n' \
	    "${1:-fdatasync}" "$BATS_TEST_TMPDIR/syncs" "$NSPS_CONNECTOR" \
	    > "$BATS_TEST_TMPDIR/traced"
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
	# Each call, also one strace writes in two lines because another
	# thread's cut it ("fdatasync(5 <unfinished ...>").
	syncs=$(grep -c ' fdatasync(' "$BATS_TEST_TMPDIR/syncs")
	leaders=$(grep 'fdatasync(' "$BATS_TEST_TMPDIR/syncs" | awk '{ print $1 }' | sort -u | wc -l)
	echo "# 400 events over 16 connections to one process: $syncs fdatasync calls, made by $leaders threads" >&3
	# One flush an event would be 400 (and a few for the segment).
	[ "$syncs" -le 300 ] || fail_with "$syncs fdatasync calls for 400 events"
	[ "$leaders" -gt 1 ] || fail_with "one thread made every fdatasync"
	deliver_once
	delivered_once gc 400
}

@test "wal: a quarter of a segment filled starts the files' writeback outside the requests" {
	# 1 MiB: the smallest segment with a flusher (WAL_FLUSH_MIN).  The
	# test's records take about 210 bytes: 1800 of them fill more than
	# a quarter of it and less than half, and nothing wraps, so every
	# syncfs is the flusher's.
	strace_connector syncfs,fdatasync
	start_lighttpd "$SPOOL" 1 "$WAL_ENV, \"SPOOL_WAL_SIZE\" => \"1048576\""
	post_ids fl 1800
	stop_lighttpd
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" = 1800 ] ||
	    fail_with "not 1800 202s:" "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/codes" | sort | uniq -c)"
	stats
	stat_is .wal.pending 1800
	bytes=$(jq -r .wal.pending_bytes <<<"$output")
	[ "$bytes" -gt 262144 ] && [ "$bytes" -lt 524288 ] ||
	    fail_with "the records took $bytes bytes, not between a quarter and half of the segment"
	# A call cut by another thread's is written in two lines, the
	# first one "syncfs(3 <unfinished ...>".
	flushes=$(grep -c ' syncfs(' "$BATS_TEST_TMPDIR/syncs" || true)
	flusher=$(grep 'syncfs(' "$BATS_TEST_TMPDIR/syncs" | awk '{ print $1 }' | sort -u)
	echo "# 1800 events, $bytes bytes in a 1 MiB segment: $flushes syncfs calls, by thread $flusher" >&3
	[ "$flushes" -ge 1 ] || fail_with "no syncfs: the flusher never ran"
	# Its own thread: none that makes a record's fdatasync.
	! grep "^$flusher " "$BATS_TEST_TMPDIR/syncs" | grep -q 'fdatasync(' ||
	    fail_with "the syncfs came from a request's thread"
	deliver_once
	delivered_once fl 1800
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
