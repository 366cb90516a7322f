# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# nsps-deliver's ORDER: one event per key at a time, stale snapshots
# skipped, the newest applied last, across retries and a SIGKILL; and
# handlers that do not outlive their worker.  One body per case, run on
# the spool by tests/order.bats and on PostgreSQL by tests/order-pg.bats
# (STORE, lib/store.bash).


DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}

BASIC=0a53cf45-8ea3-4966-87ea-1989497cea50
STALE=c594aa37-d8f0-48cc-a3e4-725e1935043e
LATE=d7e1b0c2-5f3a-4e8b-9c41-6a2f8e90b7d3

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
	lighttpd_pid=
	leftovers=
	export RETRY_BASE=100ms RETRY_CAP=400ms HANDLER_TIMEOUT=10s
}

teardown() {
	local pid
	[ -z "${worker_pid:-}" ] || kill -9 "$worker_pid" 2>/dev/null || true
	stop_lighttpd
	for pid in ${leftovers:-}; do
		kill -9 "$pid" 2>/dev/null || true
	done
}

# spool_file FILE...: each accepted through the connector, in order;
# only the event type is required, so that inventory SIM events are
# taken.
spool_file() {
	store_post_events REQUIRED_FIELDS=data.event_type -- "$@"
}

# event ID KEY-JSON UPDATED_AT: a SIM/Updated event whose key is
# data.variables.i_account when KEY-JSON is a number.
event() {
	printf '{"event_id":"%s","data":{"event_type":"SIM/Updated","variables":{"i_account":%s}},"pb_data":{"account_info":{"bill_status":"open"}},"created_at":"2025-11-03T08:00:00+00:00","updated_at":"%s"}' \
	    "$1" "$2" "$3" > "$BATS_TEST_TMPDIR/$1.json"
	echo "$BATS_TEST_TMPDIR/$1.json"
}

# deliver_once: one --once run with a handler that logs the event id.
deliver_once() {
	run --separate-stderr "$DELIVER" --once -- /bin/sh -c \
	    'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG"
	[ "$status" -eq 0 ] || fail_with "exit $status"
}

result_of() {
	store_result "$1"
}

# gone PID: no such process, or only its zombie.
gone() {
	[ ! -e "/proc/$1" ] ||
	    [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# wait_until SECONDS TEST...: polls the test command every 0.1 s.
wait_until() {
	local n=$(($1 * 10)) i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	echo "timed out waiting for: $*" >&2
	return 1
}

# run_open: the handler log shows a run begun and not ended.
run_open() {
	awk '$1 == "B" { o[$2] = 1; next } { delete o[$2] }
	    END { for (k in o) exit 0; exit 1 }' "$LOG" 2>/dev/null
}

in_state() {
	[ "$(store_state "$1")" = "$2" ]
}

folder_empty() {
	[ "$(store_count "$1")" -eq 0 ]
}

done_count_at_least() {
	[ "$(store_count done)" -ge "$1" ]
}

order_stale_sample() {
	spool_file "$FIX/sim-updated-basic.json"
	deliver_once
	spool_file "$FIX/sim-updated-stale-out-of-order.json"
	deliver_once
	assert_log "$STALE: stale: i_sim_card=3793 has a newer version applied, by $BASIC; done"
	[ "$(cat "$LOG")" = "$BASIC" ]
	[ "$(store_state "$STALE")" = done ]
	[ "$(result_of "$STALE")" = stale ]
	[ "$(store_newer "$STALE")" = "$BASIC" ]
	[ "$(store_applied_id i_sim_card=3793)" = "$BASIC" ]

	store_reset
	rm -f "$LOG"
	spool_file "$FIX/sim-updated-stale-out-of-order.json"
	deliver_once
	spool_file "$FIX/sim-updated-basic.json"
	deliver_once
	[ "$(cat "$LOG")" = "$(printf '%s\n%s' "$STALE" "$BASIC")" ]
	[ "$(result_of "$STALE")" = "exit 0" ] && [ "$(result_of "$BASIC")" = "exit 0" ]
}

order_reenriched() {
	spool_file "$FIX/sim-updated-basic.json"
	deliver_once
	spool_file "$FIX/sim-updated-late-reenriched.json"
	deliver_once
	[ "$(cat "$LOG")" = "$(printf '%s\n%s' "$BASIC" "$LATE")" ]
	[ "$(store_applied_id i_sim_card=3793)" = "$LATE" ]

	store_reset
	rm -f "$LOG"
	spool_file "$FIX/sim-updated-late-reenriched.json"
	deliver_once
	spool_file "$FIX/sim-updated-basic.json"
	deliver_once
	[ "$(cat "$LOG")" = "$LATE" ]
	[ "$(result_of "$BASIC")" = stale ]
	[ "$(store_newer "$BASIC")" = "$LATE" ]
}

order_all_waiting() {
	spool_file "$FIX/sim-updated-basic.json" \
	    "$FIX/sim-updated-stale-out-of-order.json" \
	    "$FIX/sim-updated-late-reenriched.json"
	deliver_once
	[ "$(cat "$LOG")" = "$LATE" ]
	[ "$(result_of "$BASIC")" = stale ] && [ "$(result_of "$STALE")" = stale ]
}

order_equal_version() {
	spool_file "$(event eq-1 7 2025-11-03T10:00:00.5+01:00)"
	deliver_once
	# The same instant, written in UTC: not older, so handed over.
	spool_file "$(event eq-2 7 2025-11-03T09:00:00.500000Z)"
	deliver_once
	# Half a second older: stale.
	spool_file "$(event eq-3 7 2025-11-03T09:00:00Z)"
	deliver_once
	[ "$(cat "$LOG")" = "$(printf 'eq-1\neq-2')" ]
	[ "$(result_of eq-3)" = stale ]
	[ "$(store_newer eq-3)" = eq-2 ]
}

order_unparseable() {
	spool_file "$(event new-1 8 2025-11-03T10:00:00Z)"
	deliver_once
	spool_file "$(event bad-1 8 "2025-11-03 09:00:00")"
	deliver_once
	assert_log 'bad-1: i_account=8: unreadable updated_at: "2025-11-03 09:00:00"; held in failed/'
	[ "$(store_state bad-1)" = failed ]
	# No key at all: the minimal event has none of ORDER_KEY's paths.
	minimal_event nokey-1 > "$BATS_TEST_TMPDIR/nokey.json"
	spool_file "$BATS_TEST_TMPDIR/nokey.json"
	deliver_once
	[ "$(cat "$LOG")" = "$(printf 'new-1\nnokey-1')" ]
	[ "$(store_applied_keys)" = "i_account=8" ]
	[ "$(store_applied_id i_account=8)" = new-1 ]
}

order_off() {
	spool_file "$FIX/sim-updated-basic.json"
	ORDER=off deliver_once
	spool_file "$FIX/sim-updated-stale-out-of-order.json"
	ORDER=off deliver_once
	[ "$(cat "$LOG")" = "$(printf '%s\n%s' "$BASIC" "$STALE")" ]
	[ -z "$(store_applied_keys)" ]
	ORDER=sometimes run "$DELIVER" --once -- /bin/true
	[ "$status" -eq 78 ]
	[[ $output == *"ORDER: 'sometimes' is neither on nor off"* ]]
}

order_retention() {
	spool_file "$(event keep-1 10 2025-11-03T10:00:00Z)" \
	    "$(event keep-2 11 2025-11-03T10:00:00Z)"
	deliver_once
	[ "$(store_applied_keys)" = "$(printf 'i_account=10\ni_account=11')" ]
	store_age_applied i_account=10 36
	deliver_once
	[ "$(store_applied_keys)" = "i_account=11" ]
	# Forgotten: an older event of that key is applied again.
	spool_file "$(event keep-3 10 2025-11-03T09:00:00Z)" \
	    "$(event keep-4 11 2025-11-03T09:00:00Z)"
	deliver_once
	[ "$(result_of keep-3)" = "exit 0" ] && [ "$(result_of keep-4)" = stale ]
}

order_retry_backoff() {
	spool_file "$(event old-1 9 2025-11-03T09:00:00Z)"
	# Twenty seconds in backoff: time enough to store and run new-2, also
	# on a loaded machine (2 s and then 5 s were not, in CI runs beside
	# other suites, under ASan, on PostgreSQL).
	RETRY_BASE=20s RETRY_CAP=20s "$DELIVER" -- /bin/sh -c '
	    echo "$NSPS_EVENT_ID $NSPS_ATTEMPT" >> "$0"
	    [ "$NSPS_EVENT_ID" != old-1 ] || exit 75' "$LOG" \
	    2> "$BATS_TEST_TMPDIR/worker.log" &
	worker_pid=$!
	wait_until 10 in_state old-1 retry
	spool_file "$(event new-2 9 2025-11-03T09:00:01Z)"
	wait_until 10 in_state new-2 done
	# new-2 ran while old-1 waited for its retry.
	in_state old-1 retry
	wait_until 30 in_state old-1 done
	kill "$worker_pid"
	wait "$worker_pid" || true
	worker_pid=
	[ "$(cat "$LOG")" = "$(printf 'old-1 1\nnew-2 1')" ]
	[ "$(result_of old-1)" = stale ]
	grep -q "old-1: stale: i_account=9 has a newer version applied, by new-2" \
	    "$BATS_TEST_TMPDIR/worker.log"
}

# make_events DIR N KEYS: N events over KEYS keys, three in four of them
# accounts (by data.variables.i_account or only pb_data's), the others
# inventory SIMs.  Versions grow with n, give or take 40, in quarter
# seconds, written in UTC or at +01:00.  The id says the key and the
# version: k<key>-v<version>-<n>.  Prints the files shuffled: each moved
# by up to 300 places, as retries and redrives move events.
make_events() {
	awk -v dir="$1" -v n="$2" -v keys="$3" -v seed="$RANDOM" 'BEGIN {
		srand(seed)
		for (i = 1; i <= n; i++) {
			k = i <= keys ? i - 1 : int(rand() * keys)
			v = int(i * 0.4 + rand() * 40)
			id = sprintf("k%02d-v%04d-%d", k, v, i)
			ms = v * 250
			s = int(ms / 1000)
			hh = 9 + int(s / 3600); mm = int(s % 3600 / 60)
			if (i % 2)
				ts = sprintf("2025-11-03T%02d:%02d:%02d.%03d000+00:00",
				    hh, mm, s % 60, ms % 1000)
			else
				ts = sprintf("2025-11-03T%02d:%02d:%02d.%03d+01:00",
				    hh + 1, mm, s % 60, ms % 1000)
			if (k < keys * 3 / 4) {
				vars = i % 3 ? sprintf("{\"i_account\":%d}", 277000 + k) : "{}"
				pb = sprintf("{\"account_info\":{\"bill_status\":\"open\",\"i_account\":%d},\"sim_info\":{\"i_sim_card\":%d}}", 277000 + k, 9000 + k)
			} else {
				vars = "{}"
				pb = sprintf("{\"account_info\":null,\"sim_info\":{\"i_account\":null,\"i_sim_card\":%d}}", 5000 + k)
			}
			f = dir "/" id ".json"
			printf "{\"event_id\":\"%s\",\"data\":{\"event_type\":\"SIM/Updated\",\"variables\":%s},\"pb_data\":%s,\"created_at\":\"2025-11-03T08:00:00+00:00\",\"updated_at\":\"%s\"}", id, vars, pb, ts > f
			close(f)
			print i + rand() * 300, f
		}
	}' | sort -n | cut -d' ' -f2
}

# curl_files FILE...: a curl config posting each file, in that order.
curl_files() {
	local f id
	for f in "$@"; do
		id=${f##*/}
		id=${id%.json}
		printf 'url = "http://127.0.0.1:%s/process-event?id=%s"\n' "$port" "$id"
		printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
		printf 'header = "Content-Type: application/json"\n'
		printf 'data-binary = "@%s"\n' "$f"
		printf 'output = "/dev/null"\nmax-time = 20\n'
		printf 'write-out = "%%{http_code} %%{exitcode} %%{url}\\n"\n'
		[ "$f" = "${*: -1}" ] || echo next
	done
}

# start_worker LOGFILE: nsps-deliver -j 8 with the sleepy, sometimes
# retrying handler; B(egin), R(etry) and E(nd, applied) lines go to $LOG.
start_worker() {
	"$DELIVER" -j 8 -- "$BATS_TEST_TMPDIR/handler" "$LOG" \
	    2>> "$1" &
	worker_pid=$!
}

order_shuffled() {
	local n=1000 keys=32 ev=$BATS_TEST_TMPDIR/events
	mkdir "$ev"
	mapfile -t files < <(make_events "$ev" "$n" "$keys")
	cat > "$BATS_TEST_TMPDIR/handler" <<-'EOF'
	#!/bin/bash
	echo "B $NSPS_EVENT_ID" >> "$1"
	# Mostly quick, now and then slow: the SIGKILL finds some running.
	printf -v t '0.%03d' $((RANDOM % 20 ? RANDOM % 25 : 300))
	sleep "$t"
	if [ "$NSPS_ATTEMPT" = 1 ] && [ $((RANDOM % 8)) -eq 0 ]; then
		echo "R $NSPS_EVENT_ID" >> "$1"
		exit 75
	fi
	echo "E $NSPS_EVENT_ID" >> "$1"
	EOF
	chmod 755 "$BATS_TEST_TMPDIR/handler"
	start_lighttpd_env "$(store_server_env)" 2 '"REQUIRED_FIELDS" => "data.event_type"'
	export RETRY_BASE=50ms RETRY_CAP=200ms
	start_worker "$BATS_TEST_TMPDIR/worker1.log"
	# Ten rounds of 100, each mostly handled before the next, so that
	# each key sees several applied versions; half-way, the SIGKILL.
	: > "$BATS_TEST_TMPDIR/codes"
	for ((round = 0; round < 10; round++)); do
		curl_files "${files[@]:round*n/10:n/10}" > "$BATS_TEST_TMPDIR/curl.conf"
		curl_batch "$BATS_TEST_TMPDIR/curl.conf" "$BATS_TEST_TMPDIR/round"
		cat "$BATS_TEST_TMPDIR/round" >> "$BATS_TEST_TMPDIR/codes"
		if [ "$round" -eq 4 ]; then
			# Best when handlers run; the test holds either way.
			wait_until 10 run_open || true
			kill -9 "$worker_pid"
			wait "$worker_pid" 2>/dev/null || true
			worker_pid=
			# Its handlers died with it; a write under way may
			# still land.
			sleep 0.2
			echo KILL >> "$LOG"
			killed_in=$(store_count cur)
			store_crashed
			start_worker "$BATS_TEST_TMPDIR/worker2.log"
		fi
		wait_until 20 folder_empty new
	done
	stop_lighttpd
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" -eq "$n" ] ||
	    fail_with "not every event was stored" || return 1
	wait_until 60 done_count_at_least "$n" ||
	    fail_with "$(store_count done) of $n done" || return 1
	kill "$worker_pid"
	wait "$worker_pid" || true
	worker_pid=

	# Every event is applied (exit 0) or stale, nothing else.
	store_results > "$BATS_TEST_TMPDIR/results"
	applied=$(awk '$2 == "exit" && $3 == "0" && NF == 3 { print $1 }' "$BATS_TEST_TMPDIR/results")
	stale=$(awk '$2 == "stale" && NF == 2 { print $1 }' "$BATS_TEST_TMPDIR/results")
	[ $((${applied:-0} + ${stale:-0})) -eq "$n" ] ||
	    fail_with "results: $(cat "$BATS_TEST_TMPDIR/results")" || return 1
	[ "$(store_count done)" -eq "$n" ]
	for s in new cur retry failed; do
		[ "$(store_count "$s")" -eq 0 ] || fail_with "$s: $(store_ids "$s")" || return 1
	done

	# Per key, from the handler's own log: runs never overlap, applied
	# versions never go down, and the last applied is the newest.
	ls "$ev" | sed 's/\.json$//' > "$BATS_TEST_TMPDIR/ids"
	awk -v report="$BATS_TEST_TMPDIR/counts" -f "$BATS_TEST_DIRNAME/lib/order-check.awk" \
	    "$BATS_TEST_TMPDIR/ids" "$LOG"
	[ "$(cut -d- -f1 "$BATS_TEST_TMPDIR/ids" | sort -u | wc -l)" -ge 30 ]
	echo "# order: $n events: $applied applied, $stale stale; $(cat "$BATS_TEST_TMPDIR/counts"); $killed_in in cur/ at the SIGKILL" >&3
}

orphans_sigterm() {
	spool_file "$FIX/sim-updated-basic.json"
	"$DELIVER" -- /bin/bash -c '
	    trap "" TERM
	    echo "run $NSPS_ATTEMPT" >> "$0"
	    echo $$ > "$0.pid"
	    sleep 60 & echo $! > "$0.child"
	    wait' "$LOG" 2> "$BATS_TEST_TMPDIR/worker1.log" &
	worker_pid=$!
	wait_until 10 test -s "$LOG.child"
	handler=$(cat "$LOG.pid")
	child=$(cat "$LOG.child")
	leftovers="$handler $child"
	kill -TERM "$handler"
	sleep 0.2
	! gone "$handler" || fail_with "the handler did not ignore SIGTERM" || return 1
	kill -9 "$worker_pid"
	wait "$worker_pid" 2>/dev/null || true
	worker_pid=
	# The handler itself dies with the worker.
	wait_until 5 gone "$handler"
	# Its background child is in its group: the next worker kills it
	# before the event runs again.
	! gone "$child" || fail_with "the child died early; nothing to prove" || return 1
	store_only spool "the worker keeps no handler pid in the database, so the next one cannot stop a group left behind (the handler itself died with its worker, checked above)"
	run --separate-stderr "$DELIVER" --once -- /bin/sh -c '
	    echo "run $NSPS_ATTEMPT" >> "$0"
	    [ -e "/proc/$1" ] && ! grep -q "^State:.*Z" "/proc/$1/status" &&
	        echo "beside the orphan" >> "$0"
	    exit 0' "$LOG" "$child"
	[ "$status" -eq 0 ]
	assert_log "killing handler group $handler a previous worker left"
	gone "$child"
	[ "$(cat "$LOG")" = "$(printf 'run 1\nrun 2')" ]
	[ "$(result_of "$BASIC")" = "exit 0" ]
}

orphans_pid_reused() {
	store_only spool "the handler pid record is the spool's status file; PostgreSQL keeps none"
	spool_file "$FIX/sim-updated-basic.json"
	sleep 60 &
	other=$!
	leftovers=$other
	# A killed worker's record, but the start time is not this process's.
	mv "$SPOOL/new/$BASIC" "$SPOOL/cur/$BASIC"
	printf 'attempts 1\nfirst 1\nnext 0\nlast 1\npid %s\nstarted 1\nresult running\nstderr:\n' \
	    "$other" > "$SPOOL/status/$BASIC"
	deliver_once
	! gone "$other"
	[ "$(cat "$LOG")" = "$BASIC" ]
}
