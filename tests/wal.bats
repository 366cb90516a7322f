#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The spool's write-ahead log (SPOOL_WAL=on): acknowledged on the log,
# checkpointed and recovered by nsps-deliver; every state a power cut
# can leave, made by hand; faults on its calls.  Real connectors behind
# a real lighttpd on 127.0.0.1.  The tests under load are in
# wal-load.bats.

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

# record_offset ID: where ID's record starts in the segment (its id is
# 32 bytes into it).
record_offset() {
	local at
	at=$(grep -boa -- "$1{" "$(segment)" | head -n 1 | cut -d: -f1)
	[ -n "$at" ] || fail_with "no record of $1"
	echo $((at - 32))
}

@test "wal: each 202 is a record on the log and the event in new/; the worker checkpoints them" {
	start_lighttpd "$SPOOL" 2 "$WAL_ENV"
	post_ids ack 50
	stop_lighttpd
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" = 50 ]
	for i in $(seq 50); do
		check_new_file "$SPOOL" "ack-$i" || return 1
		[ "$(spool_meta "$SPOOL" "ack-$i" | jq -r '.crc32c | type')" = number ] || return 1
	done
	ls "$SPOOL"/wal/seg-* > /dev/null
	[ "$(find "$SPOOL/wal" -name 'seg-*' -size 16384k | wc -l)" -ge 1 ]
	stats
	stat_is .wal.pending 50
	[ "$(jq -r .wal.checkpoint_age <<<"$output")" -ge 0 ]
	deliver_once
	delivered_once ack 50
	stats
	stat_is .wal.pending 0
	stat_is .wal.checkpoint_age null
	stat_is .done.count 50
	# A segment a killed connector was making is removed; one a live
	# process makes is not.
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	: > "$SPOOL/wal/tmp-$dead"
	: > "$SPOOL/wal/tmp-$$"
	run "$NSPS_DELIVER" -d "$SPOOL" --checkpoint
	[ "$status" -eq 0 ]
	[ ! -e "$SPOOL/wal/tmp-$dead" ] && [ -e "$SPOOL/wal/tmp-$$" ]
}

@test "wal: what a power cut can leave is rebuilt from the log, each event delivered once" {
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	# One after the other: cut-8's record is the last.
	for i in $(seq 8); do
		post_one "cut-$i"
		[ "$code" = 202 ] || fail_with "cut-$i: $code" || return 1
	done
	stop_lighttpd
	seg=$(segment)
	# The record alone: nothing of its files reached the disk.
	rm "$SPOOL/ids/cut-1" "$SPOOL/new/cut-1"
	# The record with a short body (the inode, but not all its data).
	truncate -s 10 "$SPOOL/ids/cut-2"
	# The record and the body, but the marker's name lost.
	rm "$SPOOL/ids/cut-3"
	# The marker alone: its link into new/ lost.
	rm "$SPOOL/new/cut-4"
	# A body of zeros of the right length (data blocks never written).
	head -c "$(stat -c %s "$SPOOL/ids/cut-5")" /dev/zero > "$BATS_TEST_TMPDIR/z"
	cat "$BATS_TEST_TMPDIR/z" > "$SPOOL/ids/cut-5"
	# A torn tail: the last record half written, its files lost; it was
	# never answered, so it is dropped.
	off=$(record_offset cut-8)
	printf 'torn' | dd of="$seg" bs=1 seek=$((off + 40)) conv=notrunc status=none
	rm "$SPOOL/ids/cut-8" "$SPOOL/new/cut-8"
	deliver_once
	assert_log "cut-1: restored from the log"
	assert_log "cut-2: restored from the log"
	assert_log "cut-5: restored from the log"
	! grep -q "cut-8" <<<"$stderr" || fail_with "the torn record was used" "$stderr"
	delivered_once cut 7
	! grep -q '^cut-8 ' "$BATS_TEST_TMPDIR/delivered"
	for i in $(seq 7); do
		check_whole "$SPOOL/done/cut-$i" "cut-$i" || return 1
		[ "$SPOOL/done/cut-$i" -ef "$SPOOL/ids/cut-$i" ] || return 1
		meta_describes "$SPOOL" "cut-$i" || return 1
	done
	# NSPS's retry of the torn one is stored, as new.
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	post_one cut-8
	[ "$code" = 202 ]
	post_one cut-1
	[ "$code" = 200 ]
	stop_lighttpd
	deliver_once
	[ "$(grep -c '^cut-8 ' "$BATS_TEST_TMPDIR/delivered")" = 1 ]
	[ "$(wc -l < "$BATS_TEST_TMPDIR/delivered")" = 8 ]
}

@test "wal: a marker whose body was lost and that has no record is removed, and the retry stored" {
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	post_one keep-1
	[ "$code" = 202 ]
	stop_lighttpd
	# An event stored without a record (CGI stores without the log),
	# whose body then lost its data: never acknowledged with the log.
	post_spooled_cgi lost-1
	assert_status 202
	: > "$SPOOL/ids/lost-1"
	deliver_once
	assert_log "lost-1: removed: its body was lost before it was acknowledged"
	[ ! -e "$SPOOL/ids/lost-1" ] && [ ! -e "$SPOOL/new/lost-1" ]
	post_spooled_cgi lost-1
	assert_status 202
	deliver_once
	[ "$(sort "$BATS_TEST_TMPDIR/delivered")" = "$(printf '%s\n' 'keep-1 SIM/Updated' 'lost-1 SIM/Updated')" ]
}

# post_spooled_cgi ID: the minimal event ID through CGI, on the spool.
post_spooled_cgi() {
	minimal_event "$1" > "$BATS_TEST_TMPDIR/ev.json"
	post_event "$BATS_TEST_TMPDIR/ev.json" SPOOL_DIR="$SPOOL" SPOOL_WAL=on
}

@test "wal: a checkpoint that died half-way and a recycled segment's old records deliver nothing twice" {
	# 64 KiB segments: 400 events wrap the one connector's segment
	# more than twice, leaving older generations' records behind the
	# current one's.
	start_lighttpd "$SPOOL" 1 "$WAL_ENV, \"SPOOL_WAL_SIZE\" => \"65536\""
	post_ids wrap 400
	stop_lighttpd
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" = 400 ]
	seg=$(segment)
	[ "$(stat -c %s "$seg")" = 65536 ]
	# Older generations' records are still there, past the current
	# one's, and are not read as records.
	present=$(grep -ao 'wrap-[0-9]*{' "$seg" | sort -u | wc -l)
	stats
	pending=$(jq -r .wal.pending <<<"$output")
	echo "# $present records in the segment, $pending of its generation" >&3
	[ "$pending" -gt 0 ] && [ "$present" -gt "$pending" ]
	deliver_once
	delivered_once wrap 400
	# The checkpoint block torn: recovery reads the generation again
	# from its start, and finds every event in place.
	printf 'XXXXXXXX' | dd of="$seg" bs=1 seek=4100 conv=notrunc status=none
	stats
	[ "$(jq -r .wal.pending <<<"$output")" -gt 0 ]
	deliver_once
	[ "$(wc -l < "$BATS_TEST_TMPDIR/delivered")" = 400 ]
	! grep -q "restored from the log" <<<"$stderr"
	stats
	stat_is .wal.pending 0
}

# warm_up: a segment with one event, checkpointed, no connector left:
# the next connector's claim starts it over with one pwrite and one
# fdatasync, so its first event's are the second of each.
warm_up() {
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	post_one warm-1
	[ "$code" = 202 ] || fail_with "warm-1: $code"
	stop_lighttpd
	run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --checkpoint
	[ "$status" -eq 0 ] || fail_with "--checkpoint exit $status" "$stderr"
	stat_is .wal.pending 0
}

@test "wal: a pwrite or fdatasync of the record that fails is 503 and leaves nothing to deliver" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	warm_up
	for call in pwrite fdatasync; do
		start_lighttpd "$SPOOL" 1 "$(fault_env "$call" 1)"
		post_one "f-$call"
		[ "$code" = 503 ] || fail_with "$call: $code" || return 1
		stop_lighttpd
		[ ! -e "$SPOOL/ids/f-$call" ] || fail_with "$call: a marker was left" || return 1
		deliver_once
		! grep -q "^f-$call " "$BATS_TEST_TMPDIR/delivered" ||
		    fail_with "$call: the failed event was delivered" || return 1
		# NSPS's retry is stored, and delivered once.
		start_lighttpd "$SPOOL" 1 "$WAL_ENV"
		post_one "f-$call"
		[ "$code" = 202 ] || fail_with "$call: retry $code" || return 1
		stop_lighttpd
		deliver_once
		[ "$(grep -c "^f-$call " "$BATS_TEST_TMPDIR/delivered")" = 1 ] || return 1
	done
	[ "$(wc -l < "$BATS_TEST_TMPDIR/delivered")" = 3 ]
}

@test "wal: once the record is on disk, a failing body write or link is still 202, and the event delivered" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	warm_up
	# The first write to a regular file is the log line (stderr is a
	# file here); the second, the body's.
	for fault in 'write 1' 'link 0'; do
		read -r call skip <<<"$fault"
		start_lighttpd "$SPOOL" 1 "$(fault_env "$call" "$skip")"
		post_one "late-$call"
		[ "$code" = 202 ] || fail_with "$call: $code" || return 1
		grep -q "late-$call: spool: .*the log holds it" "$SERVERS_DIR/lighttpd.err" ||
		    fail_with "$call: no log line" "$(cat "$SERVERS_DIR/lighttpd.err")" || return 1
		# The connector let go of its segment: a checkpoint restores
		# the event while it still runs.
		run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --checkpoint
		[ "$status" -eq 0 ] || fail_with "--checkpoint exit $status" "$stderr" || return 1
		assert_log "late-$call: restored from the log" || return 1
		check_new_file "$SPOOL" "late-$call" || return 1
		stop_lighttpd
		deliver_once
	done
	[ "$(sort "$BATS_TEST_TMPDIR/delivered" | cut -d' ' -f1)" = "$(printf '%s\n' late-link late-write warm-1)" ]
}

@test "wal: a syncfs that fails at the wrap is 503 for that event; in a checkpoint it leaves the records pending" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	small='"SPOOL_WAL_SIZE" => "65536"'
	start_lighttpd "$SPOOL" 1 "$(fault_env syncfs 0 "$small")"
	post_ids sf 300
	stop_lighttpd
	[ "$(grep -c '^503 ' "$BATS_TEST_TMPDIR/codes")" = 1 ] ||
	    fail_with "not one 503:" "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/codes" | sort | uniq -c)"
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" = 299 ]
	failed_id=$(awk '$1 == 503 { print $2 }' "$BATS_TEST_TMPDIR/codes")
	# The checkpoint's syncfs fails: nothing is said to be covered.
	run --separate-stderr env LD_PRELOAD="$NSPS_FAULT_SO" NSPS_FAULT=syncfs \
	    "$NSPS_DELIVER" -d "$SPOOL" --checkpoint
	[ "$status" -eq 1 ]
	assert_log "checkpoint: Input/output error"
	stats
	[ "$(jq -r .wal.pending <<<"$output")" -gt 0 ]
	deliver_once
	stats
	stat_is .wal.pending 0
	[ "$(wc -l < "$BATS_TEST_TMPDIR/delivered")" = 299 ]
	! grep -q "^$failed_id " "$BATS_TEST_TMPDIR/delivered"
	[ -z "$(sort "$BATS_TEST_TMPDIR/delivered" | uniq -d)" ]
}

@test "wal: a segment that cannot be made (fallocate) stores without the log, and the log is tried again" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	start_lighttpd "$SPOOL" 1 "$(fault_env fallocate 0)"
	post_one nolog-1
	[ "$code" = 202 ]
	grep -q "SPOOL_WAL: .*/wal: Input/output error; storing without the log for now" "$SERVERS_DIR/lighttpd.err" ||
	    fail_with "no log line" "$(cat "$SERVERS_DIR/lighttpd.err")"
	check_new_file "$SPOOL" nolog-1
	[ -z "$(ls "$SPOOL/wal")" ]
	sleep 1.1
	post_one nolog-2
	[ "$code" = 202 ]
	stop_lighttpd
	stats
	stat_is .wal.pending 1
	deliver_once
	[ "$(sort "$BATS_TEST_TMPDIR/delivered" | cut -d' ' -f1)" = "$(printf '%s\n' nolog-1 nolog-2)" ]
}

@test "wal: SPOOL_WAL and SPOOL_WAL_SIZE are checked; the metrics show the log after a checkpoint" {
	run --separate-stderr env -i API_TOKEN="$TOKEN" SPOOL_DIR="$SPOOL" \
	    SPOOL_WAL=yes "$CONNECTOR" -s "$BATS_TEST_TMPDIR/sock"
	[ "$status" -eq 78 ]
	assert_log "SPOOL_WAL: 'yes' is neither on nor off"
	run --separate-stderr env -i API_TOKEN="$TOKEN" SPOOL_DIR="$SPOOL" \
	    SPOOL_WAL=on SPOOL_WAL_SIZE=70000 "$CONNECTOR" -s "$BATS_TEST_TMPDIR/sock"
	[ "$status" -eq 78 ]
	assert_log "SPOOL_WAL_SIZE: 70000 is not a multiple of 4096"
	run --separate-stderr env -i API_TOKEN="$TOKEN" SPOOL_DIR="$SPOOL" \
	    SPOOL_WAL=on SPOOL_WAL_SIZE=4096 "$CONNECTOR" -s "$BATS_TEST_TMPDIR/sock"
	[ "$status" -eq 78 ]
	assert_log "SPOOL_WAL_SIZE: '4096' is not a number of bytes from 65536 to 1073741824"
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	post_one met-1
	[ "$code" = 202 ]
	stop_lighttpd
	deliver_once
	run_cgi API_TOKEN="$TOKEN" SPOOL_DIR="$SPOOL" REQUEST_METHOD=GET SCRIPT_NAME=/metrics
	assert_status 200
	grep -qx 'nsps_wal_size_bytes 16777216' <<<"$resp_body" || fail_with "no log size" "$body"
	grep -qx 'nsps_wal_pending_records 0' <<<"$resp_body" || fail_with "records pending" "$body"
	age=$(sed -n 's/^nsps_wal_checkpoint_age_seconds \([0-9.]*\)$/\1/p' <<<"$resp_body")
	[ -n "$age" ] && awk -v a="$age" 'BEGIN { exit !(a < 600) }' ||
	    fail_with "checkpoint age: '$age'" "$body"
}

@test "wal: nsps-deliver killed at any step of a checkpoint loses nothing, and the next one finishes it" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	start_lighttpd "$SPOOL" 1 "$WAL_ENV"
	post_ids ck 20
	stop_lighttpd
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" = 20 ]
	# Before the syncfs, before the checkpoint block's write, before
	# its fdatasync.
	for call in syncfs pwrite fdatasync; do
		run env LD_PRELOAD="$NSPS_FAULT_SO" NSPS_FAULT="$call" \
		    NSPS_FAULT_KILL=1 "$NSPS_DELIVER" -d "$SPOOL" --checkpoint
		[ "$status" -eq 137 ] || fail_with "$call: exit $status, not killed" "$output" || return 1
	done
	stats
	stat_is .new.count 20
	deliver_once
	delivered_once ck 20
	stats
	stat_is .wal.pending 0
}
