#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The spool (SPOOL_DIR): durable accept, dedupe on event_id, faults and
# crashes, through the real binary in CGI mode and behind lighttpd.

load helper
load lib/servers
load spool-helper

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

# post_spooled ID [NAME=VALUE ...]: the minimal event ID, through CGI.
post_spooled() {
	local id=$1
	shift
	minimal_event "$id" > "$BATS_TEST_TMPDIR/ev.json"
	post_event "$BATS_TEST_TMPDIR/ev.json" SPOOL_DIR="$SPOOL" "$@"
}

# The spool holds nothing but empty folders.
assert_spool_empty() {
	local left
	left=$(find "$SPOOL" -type f ! -name nsps-metrics.v4)
	[ -z "$left" ] || fail_with "spool not empty:" "$left"
}

@test "spool: an accepted event is stored byte for byte, then answered 202" {
	post_event "$FIX/nsps-doc-sample.json" SPOOL_DIR="$SPOOL" \
	    HTTP_X_REQUEST_ID=req-1 HTTP_X_B3_TRACEID=80f198ee56343ba864fe8b2a57d3eff7
	assert_status 202
	id=$(jq -r .event_id "$FIX/nsps-doc-sample.json")
	cmp "$FIX/nsps-doc-sample.json" "$SPOOL/new/$id"
	[ "$SPOOL/new/$id" -ef "$SPOOL/ids/$id" ]
	[ "$(stat -c %h:%a "$SPOOL/new/$id")" = 2:600 ]
	[ "$(stat -c %a "$SPOOL/new")" = 700 ]
	jq -e '.request_id == "req-1" and
	    .trace_id == "80f198ee56343ba864fe8b2a57d3eff7"' \
	    <<<"$(spool_meta "$SPOOL" "$id")"
	meta_describes "$SPOOL" "$id"
	# One file carries both: no metadata file where attributes work.
	[ -z "$(find "$SPOOL/tmp" "$SPOOL/meta" -type f)" ]
}

@test "spool: the same event_id again is answered 200 and stored once" {
	post_spooled dup-1
	assert_status 202
	post_spooled dup-1 HTTP_X_REQUEST_ID=second
	assert_status 200
	assert_json .message "Event already accepted"
	assert_log "Duplicate event dup-1 already accepted"
	[ "$(ls "$SPOOL/new")" = dup-1 ]
	[ "$(spool_meta "$SPOOL" dup-1 | jq -r .request_id)" = null ]
	# Without the ids, the longest line (64 MiB body) still stays in an
	# ext4 inode of 256 bytes, which has room for 68.
	[ "$(spool_meta "$SPOOL" dup-1 | wc -c)" -le 66 ]
	[ -z "$(ls "$SPOOL/tmp")" ]
}

@test "spool: GET /health reports the backlog in new/" {
	run_cgi API_TOKEN="$TOKEN" SPOOL_DIR="$SPOOL" REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_status 200
	assert_json .status ok
	assert_json .spool_backlog 0
	post_spooled back-1
	post_spooled back-2
	run_cgi API_TOKEN="$TOKEN" SPOOL_DIR="$SPOOL" REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_json .spool_backlog 2
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_json .spool_backlog null
}

@test "spool: -d names the spool in request-file mode too" {
	body=$(minimal_event file-1)
	printf 'POST /process-event HTTP/1.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
	    "$TOKEN" "${#body}" "$body" > "$BATS_TEST_TMPDIR/req"
	run_file --stdin "$BATS_TEST_TMPDIR/req" -d "$SPOOL"
	assert_status 202
	check_new_file "$SPOOL" file-1
	run_file --stdin "$BATS_TEST_TMPDIR/req" -d "$SPOOL"
	assert_status 200
}

@test "spool: event_id is required and must be a safe file name" {
	printf '{"data":{"event_type":"SIM/Updated"},"pb_data":{"account_info":{"bill_status":"open"}}}' > "$BATS_TEST_TMPDIR/noid.json"
	post_event "$BATS_TEST_TMPDIR/noid.json" SPOOL_DIR="$SPOOL"
	assert_error 422 VALIDATION_ERROR
	assert_json '.details[0].loc[0]' event_id
	long=$(head -c 10240 /dev/zero | tr '\0' a)
	for id in ../x .hidden 'a/b' 'a b' "$long" ''; do
		post_spooled "$id"
		assert_error 422 VALIDATION_ERROR || return 1
	done
	assert_spool_empty
}

@test "spool: without SPOOL_DIR nothing changes and no event_id is needed" {
	printf '{"data":{"event_type":"SIM/Updated"},"pb_data":{"account_info":{"bill_status":"open"}}}' > "$BATS_TEST_TMPDIR/noid.json"
	post_event "$BATS_TEST_TMPDIR/noid.json"
	assert_status 202
}

@test "spool: a missing spool is 503 in CGI and refuses to start FastCGI" {
	post_spooled gone-1 SPOOL_DIR="$BATS_TEST_TMPDIR/missing"
	assert_error 503 SERVICE_ERROR
	assert_header 'Retry-After: 30'
	assert_log "SPOOL_DIR: $BATS_TEST_TMPDIR/missing: open"
	: > "$BATS_TEST_TMPDIR/file"
	post_spooled gone-2 SPOOL_DIR="$BATS_TEST_TMPDIR/file"
	assert_error 503 SERVICE_ERROR
	run --separate-stderr env -i API_TOKEN="$TOKEN" \
	    SPOOL_DIR="$BATS_TEST_TMPDIR/missing" "$CONNECTOR" \
	    -s "$BATS_TEST_TMPDIR/sock"
	[ "$status" -eq 78 ] || fail_with "exit $status"
	assert_log "SPOOL_DIR: $BATS_TEST_TMPDIR/missing: open"
}

# The three ways the connector stores an event: an unnamed body with
# its metadata in an attribute (neither set), a body named in tmp/
# where there is no O_TMPFILE (NOTMPFILE=1), and metadata in meta/
# where attributes are missing (NOXATTR=1).
fault_env() {
	local call=$1 skip=$2
	shift 2
	printf '%s\n' LD_PRELOAD="$NSPS_FAULT_SO" NSPS_FAULT="$call" \
	    NSPS_FAULT_SKIP="$skip" ${NOXATTR:+NSPS_FAULT_NOXATTR=1} \
	    ${NOTMPFILE:+NSPS_FAULT_NOTMPFILE=1} "$@"
}

# The way in use, in the ids it stores: "", "n" or "x".
mode() {
	printf '%s' "${NOTMPFILE:+n}${NOXATTR:+x}"
}

# The calls of one store before the dedupe gate, for each way.
early_calls() {
	if [ -n "${NOXATTR:-}" ]; then
		# The unnamed body is named in tmp/ beside its metadata.
		printf '%s\n' 'open 0' 'write 0' 'link 0' 'fsync 0' 'open 1' \
		    'write 1' 'fsync 1' 'link 1'
	else
		printf '%s\n' 'open 0' 'write 0' 'setxattr 0' 'fsync 0' 'link 0'
	fi
}

# And after it: what fails there leaves a whole copy for recovery.
late_calls() {
	if [ -n "${NOXATTR:-}" ]; then
		printf '%s\n' 'rename 0' 'link 2' 'unlink 0' 'fsync 2' 'fsync 3'
	elif [ -n "${NOTMPFILE:-}" ]; then
		printf '%s\n' 'link 1' 'unlink 0' 'fsync 1'
	else
		printf '%s\n' 'link 1' 'fsync 1'
	fi
}

faults_before_gate() {
	local n=0 call skip env
	while read -r call skip; do
		n=$((n + 1))
		mapfile -t env < <(fault_env "$call" "$skip")
		post_spooled "fault$(mode)-$n" "${env[@]}"
		assert_error 503 SERVICE_ERROR || return 1
		assert_header 'Retry-After: 30' || return 1
		assert_log "spool: " || return 1
		[ ! -e "$SPOOL/new/fault$(mode)-$n" ] || fail_with "$call $skip: in new/" || return 1
		[ ! -e "$SPOOL/ids/fault$(mode)-$n" ] || fail_with "$call $skip: a marker was left" || return 1
		[ -z "$(ls "$SPOOL/tmp")" ] || fail_with "$call $skip: tmp/ not empty" || return 1
		# The client's retry, without the fault, is stored.
		post_spooled "fault$(mode)-$n" $(fault_env none 0)
		assert_status 202 || return 1
		check_new_file "$SPOOL" "fault$(mode)-$n" || fail_with "$call $skip" || return 1
	done < <(early_calls)
	[ "$n" -gt 4 ]
}

@test "spool: write, fsync, open, setxattr and link failures are 503, never 2xx" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	NOXATTR= faults_before_gate
	NOTMPFILE=1 faults_before_gate
	NOXATTR=1 faults_before_gate
	# Metadata kept in meta/ where attributes are missing.
	[ -s "$SPOOL/meta/faultx-1" ] && [ ! -e "$SPOOL/meta/fault-1" ] &&
	    [ ! -e "$SPOOL/meta/faultn-1" ]
}

faults_past_gate() {
	local n=0 call skip env id
	while read -r call skip; do
		n=$((n + 1))
		id=late$(mode)-$n
		mapfile -t env < <(fault_env "$call" "$skip")
		post_spooled "$id" "${env[@]}"
		assert_error 503 SERVICE_ERROR || return 1
		# Nothing partial in new/: absent, or the whole event.
		if [ -e "$SPOOL/new/$id" ]; then
			check_new_file "$SPOOL" "$id" || return 1
		elif [ -n "$NOXATTR$NOTMPFILE" ]; then
			# The complete copy waits in tmp/ beside its marker.
			[ "$(find "$SPOOL/tmp" -samefile "$SPOOL/ids/$id" | wc -l)" = 1 ] ||
			    fail_with "$call $skip: no copy in tmp/" || return 1
		else
			# The marker is the copy's only name.
			[ "$(stat -c %h "$SPOOL/ids/$id")" = 1 ] ||
			    fail_with "$call $skip: the marker is not alone" || return 1
		fi
		post_spooled "$id"
		assert_status 200 || return 1
	done < <(late_calls)
	[ "$n" -ge 2 ]
}

@test "spool: failures past the dedupe gate are 503 and leave the copy to recovery" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	NOXATTR= faults_past_gate
	NOTMPFILE=1 faults_past_gate
	NOXATTR=1 faults_past_gate
}

# Kills the connector just before each call of a store; the client's
# retry gets 202 before the dedupe gate and 200 after it.
kills_between_steps() {
	local call skip answer env id
	while read -r call skip answer; do
		n=$((n + 1))
		mapfile -t env < <(fault_env "$call" "$skip" NSPS_FAULT_KILL=1)
		post_spooled "kill-$n" "${env[@]}"
		[ "$status" -eq 137 ] && [ -z "$output" ] ||
		    fail_with "$call $skip: not killed (exit $status)" || return 1
		# Never a partial file in new/.
		[ ! -e "$SPOOL/new/kill-$n" ] || check_new_file "$SPOOL" "kill-$n" || return 1
		post_spooled "kill-$n"
		assert_status "$answer" || fail_with "$call $skip" || return 1
	done < <(paste -d ' ' <(early_calls; late_calls) \
	    <(early_calls | sed 's/.*/202/'; late_calls | sed 's/.*/200/'))
}

@test "spool: a connector killed between any two steps loses nothing the worker cannot finish" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	n=0
	NOXATTR= kills_between_steps
	unnamed_kills=$n
	NOTMPFILE=1 kills_between_steps
	named_kills=$n
	NOXATTR=1 kills_between_steps
	[ "$unnamed_kills" -eq 7 ] && [ "$named_kills" -eq 15 ] && [ "$n" -eq 28 ]
	# The worker's recovery finishes every copy; each is handled once,
	# and is told the metadata the connector kept.
	run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --once -- /bin/sh -c \
	    'echo "$NSPS_EVENT_ID $NSPS_EVENT_TYPE" >> "$0"' "$BATS_TEST_TMPDIR/delivered"
	[ "$status" -eq 0 ]
	# Killed before the link into new/: only ids/ holds it, or tmp/ too.
	assert_log "kill-6: recovered from ids/"
	assert_log "kill-13: recovered from tmp/"
	assert_log "kill-24: recovered from tmp/"
	assert_log "kill-25: recovered from tmp/"
	[ "$(sort "$BATS_TEST_TMPDIR/delivered")" = "$(printf 'kill-%s SIM/Updated\n' $(seq "$n") | sort)" ]
	[ -z "$(find "$SPOOL/tmp" "$SPOOL/new" "$SPOOL/cur" -type f)" ]
	for i in $(seq "$n"); do
		[ "$(stat -c %h "$SPOOL/done/kill-$i")" = 2 ] || return 1
		meta_describes "$SPOOL" "kill-$i" || return 1
	done
}

@test "spool: what a power cut can undo after the 202 (new/ and tmp/ are not fsync'd) is rebuilt" {
	# Everything past the last fsync (ids/) may be lost in a power
	# cut: the link into new/, and the unlink of the tmp/ name.  Each
	# state that can leave is made by hand; one worker pass delivers
	# each event once.
	for id in lost-new lost-both lost-unlink; do
		post_spooled "$id" HTTP_X_REQUEST_ID="req-$id"
		assert_status 202
	done
	rm "$SPOOL/new/lost-new"
	rm "$SPOOL/new/lost-both"
	ln "$SPOOL/ids/lost-both" "$SPOOL/tmp/lost-both,4194305,1,b"
	ln "$SPOOL/ids/lost-unlink" "$SPOOL/tmp/lost-unlink,4194305,2,b"
	run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --once -- /bin/sh -c \
	    'echo "$NSPS_EVENT_ID $NSPS_REQUEST_ID" >> "$0"' "$BATS_TEST_TMPDIR/delivered"
	[ "$status" -eq 0 ]
	assert_log "lost-new: recovered from ids/"
	assert_log "lost-both: recovered from tmp/"
	[ "$(sort "$BATS_TEST_TMPDIR/delivered")" = "$(printf '%s\n' 'lost-both req-lost-both' \
	    'lost-new req-lost-new' 'lost-unlink req-lost-unlink')" ]
	[ -z "$(find "$SPOOL/tmp" "$SPOOL/new" "$SPOOL/cur" -type f)" ]
	for id in lost-new lost-both lost-unlink; do
		[ "$(stat -c %h "$SPOOL/done/$id")" = 2 ] || return 1
	done
}

@test "spool: 1000 ids sent 3 times over 16 connections are stored once each" {
	dedupe_race
}

@test "spool: connectors killed with SIGKILL under load lose no 2xx event" {
	kills_under_load
}
