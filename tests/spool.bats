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
	left=$(find "$SPOOL" -type f)
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
	jq -e --arg id "$id" '.event_id == $id and .request_id == "req-1" and
	    .trace_id == "80f198ee56343ba864fe8b2a57d3eff7" and
	    .event_type == "SIM/Updated" and .bill_status == "open" and
	    (.received | test("^[0-9-]+T[0-9:.]+Z$")) and .size > 0' \
	    "$SPOOL/meta/$id"
	[ -z "$(ls "$SPOOL/tmp")" ]
}

@test "spool: the same event_id again is answered 200 and stored once" {
	post_spooled dup-1
	assert_status 202
	post_spooled dup-1 HTTP_X_REQUEST_ID=second
	assert_status 200
	assert_json .message "Event already accepted"
	assert_log "Duplicate event dup-1 already accepted"
	[ "$(ls "$SPOOL/new")" = dup-1 ]
	[ "$(jq -r .request_id "$SPOOL/meta/dup-1")" = null ]
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

@test "spool: write, fsync, open, link and rename failures are 503, never 2xx" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	n=0
	# call skip: which of the spool's calls fails
	while read -r call skip; do
		n=$((n + 1))
		post_spooled "fault-$n" LD_PRELOAD="$NSPS_FAULT_SO" \
		    NSPS_FAULT="$call" NSPS_FAULT_SKIP="$skip"
		assert_error 503 SERVICE_ERROR || return 1
		assert_header 'Retry-After: 30' || return 1
		assert_log "spool: " || return 1
		[ ! -e "$SPOOL/new/fault-$n" ] || fail_with "$call $skip: in new/" || return 1
		[ ! -e "$SPOOL/ids/fault-$n" ] || fail_with "$call $skip: a marker was left" || return 1
		[ -z "$(ls "$SPOOL/tmp")" ] || fail_with "$call $skip: tmp/ not empty" || return 1
		# The client's retry, without the fault, is stored.
		post_spooled "fault-$n"
		assert_status 202 || return 1
		check_new_file "$SPOOL" "fault-$n" || fail_with "$call $skip" || return 1
	done <<-'EOF'
	open 0
	open 1
	write 0
	write 1
	fsync 0
	fsync 1
	link 0
	EOF
}

@test "spool: failures past the dedupe gate are 503 and leave the copy to recovery" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	n=0
	while read -r call skip; do
		n=$((n + 1))
		post_spooled "late-$n" LD_PRELOAD="$NSPS_FAULT_SO" \
		    NSPS_FAULT="$call" NSPS_FAULT_SKIP="$skip"
		assert_error 503 SERVICE_ERROR || return 1
		# Nothing partial in new/: absent, or the whole event.
		if [ -e "$SPOOL/new/late-$n" ]; then
			check_new_file "$SPOOL" "late-$n" || return 1
		else
			# The complete copy waits in tmp/ beside its marker.
			[ "$(find "$SPOOL/tmp" -samefile "$SPOOL/ids/late-$n" | wc -l)" = 1 ] ||
			    fail_with "$call $skip: no copy in tmp/" || return 1
		fi
		post_spooled "late-$n"
		assert_status 200 || return 1
	done <<-'EOF'
	rename 0
	link 1
	fsync 2
	fsync 4
	EOF
}

@test "spool: a connector killed between any two steps loses nothing the worker cannot finish" {
	[ -f "${NSPS_FAULT_SO:-}" ] || skip "the fault shim was not built (make check builds it)"
	n=0
	# call skip: SIGKILL just before that call; then the client's retry
	# gets answer, 202 before the dedupe gate and 200 after it.
	while read -r call skip answer; do
		n=$((n + 1))
		post_spooled "kill-$n" LD_PRELOAD="$NSPS_FAULT_SO" \
		    NSPS_FAULT="$call" NSPS_FAULT_SKIP="$skip" NSPS_FAULT_KILL=1
		[ "$status" -eq 137 ] && [ -z "$output" ] ||
		    fail_with "$call $skip: not killed (exit $status)" || return 1
		# Never a partial file in new/.
		[ ! -e "$SPOOL/new/kill-$n" ] || check_new_file "$SPOOL" "kill-$n" || return 1
		post_spooled "kill-$n"
		assert_status "$answer" || fail_with "$call $skip" || return 1
	done <<-'EOF'
	open 0 202
	write 0 202
	fsync 0 202
	open 1 202
	write 1 202
	fsync 1 202
	link 0 202
	rename 0 200
	link 1 200
	unlink 0 200
	fsync 2 200
	fsync 3 200
	fsync 4 200
	EOF
	# The worker's recovery finishes every copy; each is handled once.
	run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --once -- /bin/sh -c \
	    'echo "$NSPS_EVENT_ID" >> "$0"' "$BATS_TEST_TMPDIR/delivered"
	[ "$status" -eq 0 ]
	assert_log "kill-8: recovered from tmp/"
	assert_log "kill-9: recovered from tmp/"
	[ "$(sort "$BATS_TEST_TMPDIR/delivered")" = "$(printf 'kill-%s\n' $(seq "$n") | sort)" ]
	[ -z "$(find "$SPOOL/tmp" "$SPOOL/new" "$SPOOL/cur" -type f)" ]
	for i in $(seq "$n"); do
		[ "$(stat -c %h "$SPOOL/done/kill-$i")" = 2 ] || return 1
		[ -s "$SPOOL/meta/kill-$i" ] || fail_with "kill-$i: no metadata" || return 1
	done
}

@test "spool: 1000 ids sent 3 times over 16 connections are stored once each" {
	start_lighttpd "$SPOOL" 4
	curl_config race 1000 3 > "$BATS_TEST_TMPDIR/curl.conf"
	curl_batch "$BATS_TEST_TMPDIR/curl.conf" "$BATS_TEST_TMPDIR/codes"
	stop_lighttpd
	total=$(wc -l < "$BATS_TEST_TMPDIR/codes")
	c202=$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes" || true)
	c200=$(grep -c '^200 ' "$BATS_TEST_TMPDIR/codes" || true)
	echo "# sent $total: $c202 answered 202, $c200 answered 200" >&3
	[ "$total" -eq 3000 ]
	[ "$c202" -eq 1000 ] || fail_with "$c202 answered 202, not 1000" "$(grep -v '^20[02] ' "$BATS_TEST_TMPDIR/codes.raw" | head)"
	[ "$c200" -eq 2000 ] || fail_with "$c200 answered 200, not 2000"
	# Each id: exactly one 202 and two 200.
	dups=$(awk '$1 == 202 { n[$2]++ } END { for (i in n) if (n[i] != 1) print i }' "$BATS_TEST_TMPDIR/codes")
	[ -z "$dups" ] || fail_with "ids accepted twice: $dups"
	[ "$(ls "$SPOOL/new" | wc -l)" -eq 1000 ]
	[ "$(ls "$SPOOL/ids" | wc -l)" -eq 1000 ]
	[ -z "$(ls "$SPOOL/tmp")" ]
	for i in $(seq 1000); do
		check_new_file "$SPOOL" "race-$i" || return 1
	done
}

# kill_connectors: SIGKILL a random connector of lighttpd every 50 to
# 250 ms, one line per kill in $BATS_TEST_TMPDIR/kills.
kill_connectors() {
	local kids
	while :; do
		sleep "$(printf 0.%03d $((50 + RANDOM % 200)))"
		mapfile -t kids < <(pgrep -P "$lighttpd_pid")
		[ "${#kids[@]}" -gt 0 ] || continue
		kill -9 "${kids[RANDOM % ${#kids[@]}]}" 2>/dev/null &&
		    echo killed >> "$BATS_TEST_TMPDIR/kills"
	done
}

@test "spool: connectors killed with SIGKILL under load lose no 2xx event" {
	start_lighttpd "$SPOOL" 4
	curl_config crash 600 1 > "$BATS_TEST_TMPDIR/curl.conf"
	: > "$BATS_TEST_TMPDIR/kills"
	kill_connectors &
	killer_pid=$!
	# Every event sent again and again, as NSPS retries, until the
	# connectors have been killed often enough.
	: > "$BATS_TEST_TMPDIR/codes"
	# Bounded by rounds and time, not by luck: on a loaded machine the
	# kills come slower than the rounds.
	round=0
	deadline=$((SECONDS + 90))
	while [ "$round" -lt 40 ] && [ "$SECONDS" -lt "$deadline" ]; do
		round=$((round + 1))
		curl_batch "$BATS_TEST_TMPDIR/curl.conf" "$BATS_TEST_TMPDIR/round"
		cat "$BATS_TEST_TMPDIR/round" >> "$BATS_TEST_TMPDIR/codes"
		[ "$round" -lt 3 ] || [ "$(wc -l < "$BATS_TEST_TMPDIR/kills")" -lt 20 ] || break
	done
	kill "$killer_pid"
	wait "$killer_pid" 2>/dev/null || true
	killer_pid=
	stop_lighttpd
	kills=$(wc -l < "$BATS_TEST_TMPDIR/kills")
	sent=$(wc -l < "$BATS_TEST_TMPDIR/codes")
	c202=$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes" || true)
	c200=$(grep -c '^200 ' "$BATS_TEST_TMPDIR/codes" || true)
	other=$(grep -vc '^20[02] ' "$BATS_TEST_TMPDIR/codes" || true)
	innew=$(ls "$SPOOL/new" | wc -l)
	intmp=$(find "$SPOOL/tmp" -name '*,b' -links +1 | wc -l)
	echo "# $sent requests in $round rounds, $kills connectors killed: $c202 answered 202, $c200 answered 200, $other failed; $innew events in new/, $intmp complete in tmp/ for recovery" >&3
	[ "$kills" -ge 10 ] || fail_with "only $kills kills: the test did not test"
	[ "$sent" -eq $((round * 600)) ]
	# Every 202 is in new/ exactly once, complete.
	[ "$(awk '$1 == 202 { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort | uniq -d)" = "" ]
	for id in $(awk '$1 == 202 { print $2 }' "$BATS_TEST_TMPDIR/codes"); do
		check_new_file "$SPOOL" "$id" || return 1
	done
	# Every 200 is in new/, or complete in tmp/ beside its marker.
	for id in $(awk '$1 == 200 { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort -u); do
		[ -e "$SPOOL/new/$id" ] && { check_new_file "$SPOOL" "$id" || return 1; continue; }
		[ "$(find "$SPOOL/tmp" -samefile "$SPOOL/ids/$id" | wc -l)" = 1 ] ||
		    fail_with "$id answered 200 but is nowhere" || return 1
	done
	# Nothing partial in new/: every file is a whole event with its marker.
	for f in "$SPOOL"/new/*; do
		check_new_file "$SPOOL" "${f##*/}" || return 1
	done
	# The worker's recovery and one pass deliver every 2xx event once.
	run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --once -- /bin/sh -c \
	    'echo "$NSPS_EVENT_ID" >> "$0"' "$BATS_TEST_TMPDIR/delivered"
	[ "$status" -eq 0 ] || fail_with "nsps-deliver exit $status"
	recovered=$(grep -c 'recovered from' <<<"$stderr" || true)
	delivered=$(wc -l < "$BATS_TEST_TMPDIR/delivered")
	echo "# nsps-deliver recovered $recovered and delivered $delivered events, each once" >&3
	[ -z "$(sort "$BATS_TEST_TMPDIR/delivered" | uniq -d)" ]
	awk '$1 ~ /^20[02]$/ { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort -u > "$BATS_TEST_TMPDIR/acked"
	missing=$(sort "$BATS_TEST_TMPDIR/delivered" | comm -23 "$BATS_TEST_TMPDIR/acked" -)
	[ -z "$missing" ] || fail_with "acknowledged but never delivered: $missing"
	[ -z "$(find "$SPOOL/tmp" "$SPOOL/new" "$SPOOL/cur" -type f)" ]
}
