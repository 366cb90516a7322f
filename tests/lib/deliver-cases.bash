# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# nsps-deliver: handlers that succeed, fail, hang and crash; retries with
# backoff; a worker killed mid-delivery; recovery, pruning, --stats and
# --requeue-failed.  Short timings through the environment.  One body
# per case, run on the spool by tests/deliver.bats and on PostgreSQL by
# tests/deliver-pg.bats (STORE, lib/store.bash).

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}

setup_file() {
	store_setup_file
}

teardown_file() {
	store_teardown_file
}

setup() {
	store_setup
	LOG=$BATS_TEST_TMPDIR/handler.log
	worker_pid=
	export RETRY_BASE=100ms RETRY_CAP=400ms HANDLER_TIMEOUT=5s
}

teardown() {
	[ -z "${worker_pid:-}" ] || kill -9 "$worker_pid" 2>/dev/null || true
	[ -z "${sleeper:-}" ] || kill -9 "$sleeper" 2>/dev/null || true
}

# spool_events ID...: each accepted through the connector, in order.
spool_events() {
	local id files=()
	mkdir -p "$BATS_TEST_TMPDIR/events"
	for id in "$@"; do
		minimal_event "$id" > "$BATS_TEST_TMPDIR/events/$id.json"
		files+=("$BATS_TEST_TMPDIR/events/$id.json")
	done
	store_post_events -- "${files[@]}"
}

# wait_for TEST...: up to 15 s for the test command to succeed.
wait_for() {
	local i
	for i in $(seq 150); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

in_folder() {
	[ "$(store_state "$2")" = "$1" ]
}

deliver_exit_0() {
	minimal_event ok-1 > "$BATS_TEST_TMPDIR/ev.json"
	store_post "$BATS_TEST_TMPDIR/ev.json" HTTP_X_B3_TRACEID=trace-1 \
	    HTTP_X_REQUEST_ID=req-1
	assert_status 202
	run --separate-stderr "$DELIVER" --once -- /bin/sh -c '
	    cat > "$0.stdin"; env | grep "^NSPS_" | sort > "$0.env"' "$LOG"
	[ "$status" -eq 0 ] || fail_with "exit $status"
	assert_log "ok-1: attempt 1: exit 0, done"
	in_folder done ok-1
	[ "$(store_count new)" -eq 0 ] && [ "$(store_count cur)" -eq 0 ]
	[ "$(cat "$LOG.stdin")" = "$(minimal_event ok-1)" ]
	grep -qx "NSPS_EVENT_ID=ok-1" "$LOG.env"
	grep -qx "NSPS_EVENT_TYPE=SIM/Updated" "$LOG.env"
	grep -qx "NSPS_BILL_STATUS=open" "$LOG.env"
	grep -qx "NSPS_ATTEMPT=1" "$LOG.env"
	grep -qx "NSPS_TRACE_ID=trace-1" "$LOG.env"
	grep -qx "NSPS_REQUEST_ID=req-1" "$LOG.env"
	file=$(sed -n 's/^NSPS_EVENT_FILE=//p' "$LOG.env")
	# shellcheck disable=SC2053
	[[ $file == $(store_event_file ok-1) ]] || fail_with "NSPS_EVENT_FILE=$file"
	[ "$(store_result ok-1)" = "exit 0" ]
	# Still a duplicate for the connector while it is kept.
	minimal_event ok-1 > "$BATS_TEST_TMPDIR/ev.json"
	store_post "$BATS_TEST_TMPDIR/ev.json"
	assert_status 200
}

deliver_oldest_first() {
	spool_events old-1 old-2 old-3
	# Minutes, not seconds: posting under ASan on a loaded machine took
	# longer than the 1 s that once separated them.
	store_age old-3 300
	store_age old-1 200
	run "$DELIVER" --once -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG"
	[ "$status" -eq 0 ]
	[ "$(cat "$LOG")" = "$(printf 'old-3\nold-1\nold-2')" ]
}

deliver_exit_1() {
	spool_events bad-1
	run --separate-stderr "$DELIVER" --once -- /bin/sh -c 'echo "no such customer" >&2; exit 1'
	[ "$status" -eq 0 ]
	assert_log "bad-1: attempt 1: exit 1, failed"
	in_folder failed bad-1
	[ "$(store_result bad-1)" = "exit 1" ]
	store_stderr bad-1 | grep -qx "no such customer"
	[ "$(store_attempts bad-1)" = 1 ]
}

deliver_exit_75() {
	spool_events temp-1
	RETRY_LIMIT=5 "$DELIVER" -- /bin/sh -c '
	    echo "$NSPS_ATTEMPT $(date +%s%3N)" >> "$0"; echo busy >&2; exit 75' \
	    "$LOG" 2> "$BATS_TEST_TMPDIR/worker.log" &
	worker_pid=$!
	wait_for in_folder failed temp-1
	kill "$worker_pid"
	wait "$worker_pid" || true
	worker_pid=
	cat "$BATS_TEST_TMPDIR/worker.log"
	[ "$(cut -d' ' -f1 "$LOG" | tr '\n' ' ')" = "1 2 3 4 5 " ]
	# The delays the worker chose: within [d/2, d], d = 100ms * 2^(n-1)
	# capped at 400ms.
	sed -n 's/.*attempt \([0-9]*\): exit 75, retry in \([0-9]*\) ms/\1 \2/p' \
	    "$BATS_TEST_TMPDIR/worker.log" > "$BATS_TEST_TMPDIR/delays"
	[ "$(wc -l < "$BATS_TEST_TMPDIR/delays")" -eq 4 ]
	while read -r n ms; do
		d=$((100 << (n - 1)))
		[ "$d" -le 400 ] || d=400
		[ "$ms" -ge $((d / 2)) ] && [ "$ms" -le "$d" ] ||
		    fail_with "attempt $n: delay $ms ms outside [$((d / 2)), $d]" || return 1
	done < "$BATS_TEST_TMPDIR/delays"
	# And no attempt ran before its time.
	paste <(head -n 4 "$LOG") <(tail -n 4 "$LOG") "$BATS_TEST_TMPDIR/delays" |
	while read -r _ t1 _ t2 _ ms; do
		[ $((t2 - t1)) -ge "$ms" ] || fail_with "ran after $((t2 - t1)) ms, due after $ms" || return 1
	done
	grep -q "attempt 5: exit 75, no attempts left, failed" "$BATS_TEST_TMPDIR/worker.log"
	[ "$(store_result temp-1)" = "exit 75, no attempts left" ]
	store_stderr temp-1 | grep -qx "busy"
}

deliver_retry_waits() {
	spool_events wait-1
	export RETRY_BASE=1h RETRY_CAP=2h
	run "$DELIVER" --once -- /bin/sh -c 'exit 75'
	[ "$status" -eq 0 ]
	in_folder retry wait-1
	[ "$(store_attempts wait-1)" = 1 ]
	next=$(store_due_ms wait-1)
	now=$(date +%s%3N)
	[ "$next" -gt $((now + 1700000)) ] || fail_with "next attempt at $next, now $now"
	run "$DELIVER" --once -- /bin/sh -c 'exit 0'
	in_folder retry wait-1
}

deliver_timeout() {
	spool_events hang-1
	HANDLER_TIMEOUT=300ms RETRY_BASE=1h run --separate-stderr "$DELIVER" \
	    --once -- /bin/sh -c 'sleep 30 & echo $! > "$0"; wait' "$LOG"
	[ "$status" -eq 0 ]
	assert_log "hang-1: attempt 1: timeout after 300 ms, retry in"
	in_folder retry hang-1
	sleeper=$(cat "$LOG")
	wait_for eval "! kill -0 $sleeper 2>/dev/null"
	[ "$(store_result hang-1)" = "timeout after 300 ms" ]
}

deliver_signal() {
	spool_events crash-1
	RETRY_BASE=1h run --separate-stderr "$DELIVER" --once -- \
	    /bin/sh -c 'kill -SEGV $$'
	[ "$status" -eq 0 ]
	assert_log "crash-1: attempt 1: signal 11, retry in"
	in_folder retry crash-1
}

deliver_worker_killed() {
	spool_events kill-1 kill-2
	"$DELIVER" -- /bin/sh -c '
	    echo $$ > "$0.pid"; echo "$NSPS_EVENT_ID $NSPS_ATTEMPT" >> "$0"
	    sleep 30' "$LOG" 2>/dev/null &
	worker_pid=$!
	wait_for in_folder cur kill-1
	wait_for test -s "$LOG"
	kill -9 "$worker_pid"
	wait "$worker_pid" 2>/dev/null || true
	worker_pid=
	# The orphaned handler is not the worker's any more; stop its group.
	kill -9 -- "-$(cat "$LOG.pid")"
	in_folder cur kill-1
	store_crashed
	run --separate-stderr "$DELIVER" --once -- /bin/sh -c '
	    echo "$NSPS_EVENT_ID $NSPS_ATTEMPT" >> "$0"' "$LOG"
	[ "$status" -eq 0 ]
	in_folder done kill-1
	in_folder done kill-2
	[ "$(cat "$LOG")" = "$(printf 'kill-1 1\nkill-1 2\nkill-2 1')" ]
}

# A worker SIGKILLed while -j 8 handlers start, started again at once, 20
# times: the new one never gives up on the lock its predecessor held,
# and every event ends in done/.
deliver_restart_at_once() {
	local n=200 round ids
	ids=$(seq -f "rs-%g" "$n")
	# shellcheck disable=SC2086
	spool_events $ids
	export RETRY_BASE=50ms RETRY_CAP=100ms
	for round in $(seq 20); do
		"$DELIVER" -j 8 -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"
		    sleep 0.$((RANDOM % 3))' "$LOG" \
		    2>> "$BATS_TEST_TMPDIR/worker.log" &
		worker_pid=$!
		sleep "0.$((RANDOM % 3 + 1))"
		kill -0 "$worker_pid" 2>/dev/null ||
		    fail_with "round $round: the worker exited: $(tail -n 3 "$BATS_TEST_TMPDIR/worker.log")" ||
		    return 1
		kill -9 "$worker_pid"
		wait "$worker_pid" 2>/dev/null || true
		worker_pid=
	done
	"$DELIVER" -j 8 -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG" \
	    2>> "$BATS_TEST_TMPDIR/worker.log" &
	worker_pid=$!
	wait_for eval '[ "$(store_count done)" -eq "$n" ]' ||
	    fail_with "$(store_count done) of $n done" || return 1
	kill "$worker_pid"
	wait "$worker_pid"
	worker_pid=
	! grep -q "runs on this spool\$" "$BATS_TEST_TMPDIR/worker.log"
	for s in new cur retry failed; do
		[ "$(store_count "$s")" -eq 0 ] || fail_with "$s: $(store_ids "$s")" || return 1
	done
	[ "$(sort -u "$LOG" | wc -l)" -eq "$n" ]
	echo "# restart at once: $(wc -l < "$LOG") handler runs for $n events, $(grep -c 'waiting up to' "$BATS_TEST_TMPDIR/worker.log") waits for the lock" >&3
}

deliver_no_polling() {
	"$DELIVER" -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG" 2>/dev/null &
	worker_pid=$!
	sleep 0.3
	spool_events live-1
	wait_for in_folder done live-1
	spool_events live-2
	wait_for in_folder done live-2
	# Idle, it sleeps: no CPU time to speak of while waiting.
	ticks=$(awk '{ print $14 + $15 }' "/proc/$worker_pid/stat")
	[ "$ticks" -lt 50 ] || fail_with "worker used $ticks ticks while idle"
	kill "$worker_pid"
	wait "$worker_pid"
	worker_pid=
}

deliver_jobs() {
	spool_events par-1 par-2 par-3 par-4 par-5 par-6
	mkdir "$BATS_TEST_TMPDIR/running"
	run "$DELIVER" --once -j 3 -- /bin/sh -c '
	    touch "$0/$NSPS_EVENT_ID"; ls "$0" | wc -l >> "$0.max"; sleep 0.5
	    rm "$0/$NSPS_EVENT_ID"' "$BATS_TEST_TMPDIR/running"
	[ "$status" -eq 0 ]
	[ "$(store_count done)" -eq 6 ]
	max=$(sort -n "$BATS_TEST_TMPDIR/running.max" | tail -n 1)
	[ "$max" -ge 2 ] && [ "$max" -le 3 ] || fail_with "at most $max at once"
}

deliver_stats_requeue() {
	spool_events st-1 st-2 st-3
	run "$DELIVER" --once -- /bin/sh -c '[ "$NSPS_EVENT_ID" = st-1 ]'
	spool_events st-4
	run "$DELIVER" --stats
	[ "$status" -eq 0 ]
	# PostgreSQL has no ids/: an event is one row.
	jq -e --arg store "$STORE" '.new.count == 1 and .done.count == 1 and
	    .failed.count == 2 and .retry.count == 0 and .cur.count == 0 and
	    ($store != "spool" or .ids.count == 4) and
	    (.failed.oldest_age | type) == "number" and .cur.oldest_age == null' <<<"$output"
	run "$DELIVER" --requeue-failed
	[ "$status" -eq 0 ]
	[ "$output" = "2 events requeued" ]
	in_folder new st-2
	a=$(store_attempts st-2)
	[ "${a:-0}" = 0 ] && [ -z "$(store_result st-2)" ]
	run "$DELIVER" --once -- /bin/sh -c 'echo "$NSPS_EVENT_ID $NSPS_ATTEMPT" >> "$0"' "$LOG"
	[ "$(sort "$LOG")" = "$(printf 'st-2 1\nst-3 1\nst-4 1')" ]
}

deliver_recovery() {
	store_only spool "tmp/ and ids/ are the spool's: PostgreSQL stores an event in one INSERT, with nothing to recover"
	spool_events rec-1
	# A copy past the gate that never reached new/, left by a dead
	# connector; a copy that never passed the gate; an orphan marker.
	sh -c 'exit 0' & dead=$!
	wait "$dead"
	minimal_event rec-2 > "$SPOOL/tmp/rec-2,$dead,1,b"
	ln "$SPOOL/tmp/rec-2,$dead,1,b" "$SPOOL/ids/rec-2"
	printf '{"event_id":"rec-2","event_type":"SIM/Updated","bill_status":"open","trace_id":null,"request_id":"r2"}\n' > "$SPOOL/tmp/rec-2,$dead,1,m"
	minimal_event rec-3 > "$SPOOL/tmp/rec-3,$dead,2,b"
	minimal_event rec-4 > "$SPOOL/ids/rec-4"
	# A live connector's file is left alone.
	minimal_event rec-5 > "$SPOOL/tmp/rec-5,$$,3,b"
	run --separate-stderr "$DELIVER" --once -- /bin/sh -c 'echo "$NSPS_EVENT_ID $NSPS_REQUEST_ID" >> "$0"' "$LOG"
	[ "$status" -eq 0 ]
	assert_log "rec-2: recovered from tmp/"
	assert_log "rec-4: recovered from ids/"
	[ "$(sort "$LOG")" = "$(printf 'rec-1 \nrec-2 r2\nrec-4 ')" ]
	[ "$(ls "$SPOOL/tmp")" = "rec-5,$$,3,b" ]
	[ ! -e "$SPOOL/ids/rec-3" ]
	for id in rec-1 rec-2 rec-4; do
		[ "$SPOOL/done/$id" -ef "$SPOOL/ids/$id" ] || return 1
		[ "$(stat -c %h "$SPOOL/done/$id")" = 2 ] || return 1
	done
}

deliver_prune() {
	spool_events pr-1 pr-2
	run "$DELIVER" --once -- /bin/true
	store_age_done pr-1 36
	run "$DELIVER" --once -- /bin/true
	[ -z "$(store_state pr-1)" ]
	[ "$STORE" != spool ] || { [ ! -e "$SPOOL/ids/pr-1" ] &&
	    [ ! -e "$SPOOL/meta/pr-1" ] && [ ! -e "$SPOOL/status/pr-1" ]; }
	in_folder done pr-2
	[ "$STORE" != spool ] || [ -e "$SPOOL/ids/pr-2" ]
	# The id is new again for the connector.
	spool_events pr-1
}

deliver_config_errors() {
	run env -u "$STORE_VAR" "$DELIVER" --once -- /bin/true
	[ "$status" -eq 78 ]
	run "$DELIVER" -d "$BATS_TEST_TMPDIR/missing" --once -- /bin/true
	[ "$status" -eq 78 ]
	run "$DELIVER" --once -- /nonexistent/handler
	[ "$status" -eq 78 ]
	[[ $output == *"not found or not executable"* ]]
	run env -u HANDLER "$DELIVER" --once
	[ "$status" -eq 78 ]
	HANDLER_TIMEOUT=soon run "$DELIVER" --once -- /bin/true
	[ "$status" -eq 78 ]
	store_only spool "workers share a database, one lease per event; tests/pg.bats runs two side by side"
	# A second worker waits for the lock, up to 10 s: it runs once the
	# first is gone, and exits 75 if it never goes.
	"$DELIVER" -- /bin/true 2>/dev/null &
	worker_pid=$!
	sleep 0.3
	"$DELIVER" --once -- /bin/true 2> "$BATS_TEST_TMPDIR/second.log" &
	second=$!
	sleep 1
	kill "$worker_pid"
	wait "$worker_pid"
	wait "$second" || fail_with "the second worker: exit $?" || return 1
	grep -q "another nsps-deliver runs on this spool; waiting up to 10 s for it" \
	    "$BATS_TEST_TMPDIR/second.log"
	"$DELIVER" -- /bin/true 2>/dev/null &
	worker_pid=$!
	sleep 0.3
	t0=$SECONDS
	run --separate-stderr "$DELIVER" --once -- /bin/true
	[ "$status" -eq 75 ]
	[ $((SECONDS - t0)) -ge 9 ] || fail_with "gave up after $((SECONDS - t0)) s"
	[ "$(grep -c "another nsps-deliver runs on this spool" <<<"$stderr")" -eq 2 ]
	kill "$worker_pid"
	wait "$worker_pid"
	worker_pid=
}

deliver_env() {
	spool_events env-1 env-2
	HANDLER="/bin/sh -c true" run "$DELIVER" --once
	[ "$status" -eq 0 ]
	in_folder done env-1
	spool_events env-3
	{ store_env; echo 'HANDLER="/bin/false"'; } > "$BATS_TEST_TMPDIR/env"
	NSPS_ENV_FILE=$BATS_TEST_TMPDIR/env run env -u "$STORE_VAR" "$DELIVER" --once
	[ "$status" -eq 0 ]
	in_folder failed env-3
}

deliver_env_file_unsafe() {
	spool_events unsafe-1
	printf '#!/bin/sh\ntouch "%s"\n' "$BATS_TEST_TMPDIR/ran" > "$BATS_TEST_TMPDIR/anything"
	chmod 755 "$BATS_TEST_TMPDIR/anything"
	{ store_env; echo "HANDLER=$BATS_TEST_TMPDIR/anything"; } > "$BATS_TEST_TMPDIR/env"
	for mode in 666 646 664 620; do
		chmod "$mode" "$BATS_TEST_TMPDIR/env"
		NSPS_ENV_FILE=$BATS_TEST_TMPDIR/env run env -u "$STORE_VAR" "$DELIVER" --once
		[ "$status" -eq 78 ] || fail_with "mode $mode: exit $status"
		[[ $output == *"NSPS_ENV_FILE: $BATS_TEST_TMPDIR/env: group or world writable"* ]] ||
		    fail_with "mode $mode: $output"
		run env -u "$STORE_VAR" "$DELIVER" -e "$BATS_TEST_TMPDIR/env" --stats
		[ "$status" -eq 78 ] || fail_with "--stats, mode $mode: exit $status"
	done
	[ ! -e "$BATS_TEST_TMPDIR/ran" ]
	in_folder new unsafe-1
	# A NUL byte is refused too; the same file, made safe, runs.
	{ store_env; printf '\0HANDLER=/bin/true\n'; } > "$BATS_TEST_TMPDIR/nul"
	NSPS_ENV_FILE=$BATS_TEST_TMPDIR/nul run env -u "$STORE_VAR" "$DELIVER" --once
	[ "$status" -eq 78 ]
	[[ $output == *"contains a NUL byte"* ]]
	chmod 640 "$BATS_TEST_TMPDIR/env"
	NSPS_ENV_FILE=$BATS_TEST_TMPDIR/env run env -u "$STORE_VAR" "$DELIVER" --once
	[ "$status" -eq 0 ]
	[ -e "$BATS_TEST_TMPDIR/ran" ]
	in_folder done unsafe-1
}

deliver_bad_value() {
	while IFS='|' read -r setting message; do
		env "$setting" "$DELIVER" --once -- /bin/true 2> "$BATS_TEST_TMPDIR/err" &&
		    fail_with "$setting: accepted"
		grep -qF "$message" "$BATS_TEST_TMPDIR/err" ||
		    fail_with "$setting: $(cat "$BATS_TEST_TMPDIR/err")"
	done <<-'EOF'
	HANDLER_TIMEOUT=0|HANDLER_TIMEOUT: '0' is not a duration from 1ms
	RETRY_BASE=10x|RETRY_BASE: '10x' is not a duration
	RETRY_CAP=-1s|RETRY_CAP: '-1s' is not a duration
	RETRY_LIMIT=0|RETRY_LIMIT: '0' is not a number from 1 to 100000
	DELIVER_JOBS=65|DELIVER_JOBS: '65' is not a number from 1 to 64
	RETENTION=99999999999999999999d|RETENTION: '99999999999999999999d' is not a duration
	EOF
	run "$DELIVER" -j 0 --once -- /bin/true
	[ "$status" -eq 78 ]
	[[ $output == *"DELIVER_JOBS: '0' is not a number from 1 to 64"* ]]
}

deliver_man() {
	command -v mandoc >/dev/null || skip "mandoc is not installed (.ci/deps installs it)"
	run mandoc -Tlint -Wwarning "${MAN_DIR:-$TESTS_DIR/../man}/nsps-deliver.8"
	[ "$status" -eq 0 ] || fail_with "$output"
}
