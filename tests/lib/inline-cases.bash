# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# DELIVERY=inline: the connector runs the handler before it answers, and
# answers from the outcome.  Every case goes through a real lighttpd with
# four connector processes (max-procs 4).  One body per case, run on the
# spool by tests/inline.bats and on PostgreSQL by tests/inline-pg.bats
# (STORE, lib/store.bash).

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}

setup_file() {
	store_setup_file
}

teardown_file() {
	store_teardown_file
}

setup() {
	store_setup
	T=$BATS_TEST_TMPDIR
	LOG=$T/handler.log
	H=$T/handler
	worker_pid=
	lighttpd_pid=
	leftovers=
	: > "$LOG"
}

teardown() {
	local pid
	[ -z "${worker_pid:-}" ] || kill -9 "$worker_pid" 2>/dev/null || true
	stop_lighttpd
	for pid in ${leftovers:-}; do
		kill -9 "$pid" 2>/dev/null || true
	done
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

# handler BODY: $H, a bash script with BODY after a line that logs the
# event's id, attempt and whether API_TOKEN reached it.
handler() {
	{
		echo '#!/bin/bash'
		echo "LOG=$LOG"
		# shellcheck disable=SC2016
		echo 'echo "run $NSPS_EVENT_ID $NSPS_ATTEMPT token=${API_TOKEN:-none}" >> "$LOG"'
		printf '%s\n' "$1"
	} > "$H"
	chmod 755 "$H"
}

# inline_start [ENV]: lighttpd with four connectors delivering inline to
# $H (none when NO_HANDLER is set) on the test's store; ENV more of
# their bin-environment.
inline_start() {
	local h="\"HANDLER\" => \"$H\", "
	[ -z "${NO_HANDLER:-}" ] || h=
	start_lighttpd_env "$(store_server_env)" 4 \
	    "\"DELIVERY\" => \"inline\", $h\"PATH\" => \"$PATH\"${1:+, $1}"
}

# event ID ACCOUNT UPDATED_AT [TYPE]: an event file of key
# i_account=ACCOUNT; prints its path.
event() {
	printf '{"event_id":"%s","data":{"event_type":"%s","variables":{"i_account":%s}},"pb_data":{"account_info":{"bill_status":"open"}},"created_at":"2025-11-03T08:00:00+00:00","updated_at":"%s"}' \
	    "$1" "${4:-SIM/Updated}" "$2" "$3" > "$T/$1.json"
	echo "$T/$1.json"
}

# send FILE: POSTs it; sets code, body and headers.
send() {
	local out
	out=$(curl -s -m 90 -D "$T/headers" -w '\n%{http_code}' \
	    -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json' --data-binary "@$1" \
	    "http://127.0.0.1:$port/process-event") || true
	code=${out##*$'\n'}
	body=${out%$'\n'*}
	headers=$(tr -d '\r' < "$T/headers")
}

# expect CODE BODY: the last answer, exactly.
expect() {
	[ "$code" = "$1" ] && [ "$body" = "$2" ] ||
	    { printf 'expected %s %s\ngot      %s %s\n' "$1" "$2" "$code" "$body" >&2; return 1; }
}

inline_processed() {
	handler 'cat > "$LOG.stdin"; echo "to stdout"; exit 0'
	inline_start
	send "$(event p-1 7 2025-11-03T09:00:00Z)"
	expect 202 '{"message":"Event processed"}'
	[ "$(store_state p-1)" = done ]
	[ "$(store_applied_id i_account=7)" = p-1 ]
	cmp "$LOG.stdin" "$T/p-1.json"
	# The token stays with the connector.
	[ "$(cat "$LOG")" = "run p-1 1 token=none" ]
	# A copy NSPS sends again is the duplicate it always was.
	send "$T/p-1.json"
	expect 200 '{"message":"Event already accepted"}'
	[ "$(wc -l < "$LOG")" -eq 1 ]
	grep -q 'Received event: SIM/Updated | bill status: open | inline: exit 0, done' \
	    "$ldir/lighttpd.err" "$ldir"/run/*.log
}

inline_ignored() {
	handler 'exit 0'
	printf 'SIM/* ignore\n* %s\n' "$H" > "$T/routes"
	inline_start "\"ROUTES_FILE\" => \"$T/routes\""
	send "$(event i-1 7 2025-11-03T09:00:00Z)"
	expect 202 '{"message":"Event ignored: no route for SIM/Updated"}'
	[ "$(store_state i-1)" = done ]
	[ ! -s "$LOG" ]
	# No route at all: failed, as nsps-deliver fails it.
	printf 'SIM/* ignore\n' > "$T/routes"
	stop_lighttpd
	NO_HANDLER=1 inline_start "\"ROUTES_FILE\" => \"$T/routes\""
	send "$(event i-2 7 2025-11-03T09:00:00Z Account/Updated)"
	expect 422 '{"message":"Event processing failed","error":"no route for Account/Updated","type":"SERVICE_ERROR"}'
	[ "$(store_state i-2)" = failed ]
}

inline_stale() {
	handler 'exit 0'
	inline_start
	send "$(event s-new 7 2025-11-03T10:00:00Z)"
	expect 202 '{"message":"Event processed"}'
	send "$(event s-old 7 2025-11-03T09:00:00Z)"
	expect 202 '{"message":"Event ignored: i_account=7 has a newer version applied by s-new"}'
	[ "$(store_state s-old)" = done ]
	[ "$(store_result s-old)" = stale ]
	[ "$(store_applied_id i_account=7)" = s-new ]
	[ "$(grep -c '^run' "$LOG")" -eq 1 ]
}

inline_failed() {
	# Fails until the operator fixes what it needs: the flag file.
	handler "echo first line >&2
	    printf 'the CRM said: \"no\"\\ttab\\001\\n' >&2
	    [ -e $T/fixed ] || exit 3"
	inline_start
	send "$(event f-1 7 2025-11-03T09:00:00Z)"
	expect 422 '{"message":"Event processing failed","error":"the CRM said: \"no\"\ttab\u0001","type":"SERVICE_ERROR"}'
	[ "$(store_state f-1)" = failed ]
	[ "$(store_result f-1)" = "exit 3" ]
	store_stderr f-1 | grep -q 'first line'
	# NSPS's retry of a failed event is attempted again.
	touch "$T/fixed"
	send "$T/f-1.json"
	expect 202 '{"message":"Event processed"}'
	[ "$(store_state f-1)" = done ]
	[ "$(store_attempts f-1)" = 2 ]
}

inline_retry_queue() {
	handler 'exit 75'
	inline_start
	send "$(event r-1 7 2025-11-03T09:00:00Z)"
	expect 202 '{"message":"Event accepted for processing; queued: handler asked to retry"}'
	[ "$(store_state r-1)" = new ]
	# nsps-deliver takes it from there.
	"$DELIVER" --once -- /bin/true 2> "$T/worker.log"
	[ "$(store_state r-1)" = done ]
}

inline_retry_reject() {
	handler 'exit 75'
	inline_start '"INLINE_FALLBACK" => "reject"'
	send "$(event r-2 7 2025-11-03T09:00:00Z)"
	expect 503 '{"message":"Event not processed","error":"handler asked to retry","type":"SERVICE_ERROR"}'
	grep -qix 'Retry-After: 30' <<<"$headers"
	# NSPS's retry finds it waiting and runs it.
	handler 'exit 0'
	send "$T/r-2.json"
	expect 202 '{"message":"Event processed"}'
	[ "$(grep -c '^run r-2' "$LOG")" -eq 2 ]
}

inline_held() {
	handler 'exit 0'
	inline_start
	send "$(event h-1 7 yesterday)"
	[ "$code" = 422 ] || fail_with "got $code $body" || return 1
	[ "$(jq -r .message <<<"$body")" = "Event held" ]
	[ "$(jq -r .type <<<"$body")" = VALIDATION_ERROR ]
	jq -r .error <<<"$body" | grep -q updated_at
	[ "$(store_state h-1)" = failed ]
	[ ! -s "$LOG" ]
}

inline_timeout() {
	# Never exits, writes to stderr and then holds it open, and leaves
	# a daemon behind in its group.
	handler "sleep 300 & echo \$! > $T/daemon
	    echo \$\$ > $T/pid
	    echo still working >&2
	    exec sleep 300"
	inline_start '"INLINE_TIMEOUT" => "1s"'
	send "$(event t-1 7 2025-11-03T09:00:00Z)"
	expect 202 '{"message":"Event accepted for processing; queued: timeout after 1000 ms"}'
	leftovers="$(cat "$T/pid") $(cat "$T/daemon")"
	wait_until 5 gone "$(cat "$T/pid")"
	wait_until 5 gone "$(cat "$T/daemon")"
	[ "$(store_state t-1)" = new ]
	# The same with INLINE_FALLBACK=reject, and the next request works.
	stop_lighttpd
	inline_start '"INLINE_TIMEOUT" => "1s", "INLINE_FALLBACK" => "reject"'
	send "$(event t-2 8 2025-11-03T09:00:00Z)"
	expect 503 '{"message":"Event not processed","error":"timeout after 1000 ms","type":"SERVICE_ERROR"}'
	leftovers="$leftovers $(cat "$T/pid") $(cat "$T/daemon")"
	wait_until 5 gone "$(cat "$T/pid")"
	wait_until 5 gone "$(cat "$T/daemon")"
	handler 'exit 0'
	send "$(event t-3 9 2025-11-03T09:00:00Z)"
	expect 202 '{"message":"Event processed"}'
}

inline_stderr_flood() {
	# A MiB of stderr, no newline at its end, then a failure.
	handler 'head -c 1048576 /dev/zero | tr "\0" x >&2; exit 4'
	inline_start
	send "$(event e-1 7 2025-11-03T09:00:00Z)"
	[ "$code" = 422 ] || fail_with "got $code" || return 1
	[ "${#body}" -lt 400 ]
	[ "$(jq -r .error <<<"$body")" = "$(printf 'x%.0s' $(seq 200))" ]
	[ "$(store_state e-1)" = failed ]
}

inline_busy() {
	# nsps-deliver runs an event of the key, slowly; an inline event of
	# the same key waits for it, up to INLINE_TIMEOUT.
	handler 'exit 0'
	inline_start '"INLINE_TIMEOUT" => "1s"'
	store_post "$(event b-1 7 2025-11-03T09:00:00Z)"
	assert_status 202
	"$DELIVER" -- /bin/bash -c 'echo $$ > "$0.pid"; sleep 30' "$T/slow" \
	    2> "$T/worker.log" &
	worker_pid=$!
	wait_until 10 test -s "$T/slow.pid"
	leftovers=$(cat "$T/slow.pid")
	send "$(event b-2 7 2025-11-03T10:00:00Z)"
	expect 202 '{"message":"Event accepted for processing; queued: its key stayed busy"}'
	[ "$(store_state b-2)" = new ]
	# Another key is not held up.
	send "$(event b-3 8 2025-11-03T10:00:00Z)"
	expect 202 '{"message":"Event processed"}'
}

inline_metrics() {
	handler '[ "$NSPS_EVENT_TYPE" != Account/Updated ] || exit 3'
	mkdir "$T/metrics"
	inline_start "\"METRICS_DIR\" => \"$T/metrics\""
	send "$(event m-1 7 2025-11-03T10:00:00Z)"
	send "$(event m-2 7 2025-11-03T09:00:00Z)"
	send "$(event m-3 8 2025-11-03T09:00:00Z Account/Updated)"
	curl -s "http://127.0.0.1:$port/metrics" > "$T/scrape"
	grep -qx 'nsps_deliveries_total{result="done",mode="inline"} 1' "$T/scrape"
	grep -qx 'nsps_deliveries_total{result="stale",mode="inline"} 1' "$T/scrape"
	grep -qx 'nsps_deliveries_total{result="failed",mode="inline"} 1' "$T/scrape"
	grep -qx 'nsps_inline_handler_duration_seconds_count 2' "$T/scrape"
}

inline_no_store() {
	run timeout 10 env -i PATH="$PATH" API_TOKEN="$TOKEN" DELIVERY=inline \
	    HANDLER=/bin/true "$CONNECTOR" -s 127.0.0.1:0
	[ "$status" -eq 78 ]
	[ "$output" = "nsps-connector: DELIVERY: inline needs a store: set SPOOL_DIR or DATABASE_URL" ]
	# shellcheck disable=SC2046
	run timeout 10 env -i PATH="$PATH" API_TOKEN="$TOKEN" DELIVERY=inline \
	    HANDLER=/bin/true INLINE_TIMEOUT=61s $(store_env) "$CONNECTOR" \
	    -s 127.0.0.1:0
	[ "$status" -eq 78 ]
	[[ $output == *"INLINE_TIMEOUT: '61s' is not a duration from 100ms to 60s"* ]]
}

# The connector process running the handler in $T/pid.
handler_parent() {
	awk '/^PPid:/ { print $2 }' "/proc/$(cat "$T/pid")/status"
}

inline_killed() {
	handler "echo \$\$ > $T/pid; sleep 300 & wait"
	# pg: the killed connector's lease runs out this long after it.
	inline_start '"INLINE_TIMEOUT" => "5s"'
	send "$(event k-1 7 2025-11-03T09:00:00Z)" &
	local client=$!
	wait_until 10 test -s "$T/pid"
	local hpid fpid
	hpid=$(cat "$T/pid")
	leftovers=$hpid
	fpid=$(handler_parent)
	kill -9 "$fpid"
	wait "$client" || true
	# The handler dies with its connector.
	wait_until 5 gone "$hpid"
	# Not lost: nsps-deliver delivers it (pg: once the lease is out).
	[ "$(store_state k-1)" = cur ]
	wait_until 30 eval '"$DELIVER" --once -- /bin/true 2>> "$T/worker.log"
	    [ "$(store_state k-1)" = done ]'
	# lighttpd starts a fresh connector; the next request works.
	handler 'exit 0'
	wait_until 10 eval 'send "$(event k-2 8 2025-11-03T09:00:00Z)"; [ "$code" = 202 ]'
	expect 202 '{"message":"Event processed"}'
}

# concurrency [deliver]: 20 accounts x 10 snapshots, shuffled, from 16
# clients; the handler sleeps 0-30 ms and logs its start and end.  With
# "deliver", nsps-deliver runs on the same store meanwhile.
concurrency() {
	local ev=$T/events a v i
	mkdir "$ev"
	for ((a = 0; a < 20; a++)); do
		for ((v = 1; v <= 10; v++)); do
			printf '{"event_id":"k%02d-v%d","data":{"event_type":"SIM/Updated","variables":{"i_account":%d}},"pb_data":{"account_info":{"bill_status":"open"}},"updated_at":"2025-11-03T09:00:%02dZ"}' \
			    "$a" "$v" "$((100 + a))" "$v" > "$ev/k$(printf %02d "$a")-v$v.json"
		done
	done
	# order-check.awk's key is the id's part before '-'.
	cat > "$H" <<-EOF
	#!/bin/bash
	echo "B \$NSPS_EVENT_ID" >> $LOG
	printf -v t '0.%03d' \$((RANDOM % 31))
	sleep "\$t"
	echo "E \$NSPS_EVENT_ID" >> $LOG
	EOF
	chmod 755 "$H"
	inline_start '"INLINE_TIMEOUT" => "60s"'
	if [ "${1:-}" = deliver ]; then
		"$DELIVER" -j 8 -- "$H" 2> "$T/worker.log" &
		worker_pid=$!
	fi
	ls "$ev" | shuf | while read -r i; do
		printf 'url = "http://127.0.0.1:%s/process-event"\n' "$port"
		printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
		printf 'header = "Content-Type: application/json"\n'
		printf 'data-binary = "@%s/%s"\n' "$ev" "$i"
		printf 'output = "/dev/null"\nmax-time = 120\n'
		printf 'write-out = "%%{http_code}\\n"\nnext\n'
	done | sed '$d' > "$T/curl.conf"
	curl --parallel --parallel-max 16 -s -K "$T/curl.conf" > "$T/codes" || true
	if [ -n "$worker_pid" ]; then
		wait_until 60 eval '[ "$(store_count new)" -eq 0 ] && [ "$(store_count cur)" -eq 0 ]'
		kill "$worker_pid"
		wait "$worker_pid" || true
		worker_pid=
	fi
	sort "$T/codes" | uniq -c > "$T/code-counts"
	! grep -qv '^20[02]$' "$T/codes" ||
	    fail_with "answers: $(cat "$T/code-counts")" || return 1
	[ "$(wc -l < "$T/codes")" -eq 200 ]
	ls "$ev" | sed 's/\.json$//' > "$T/ids"
	awk -v report="$T/counts" -f "$BATS_TEST_DIRNAME/lib/order-check.awk" \
	    "$T/ids" "$LOG"
	for ((a = 0; a < 20; a++)); do
		[ "$(store_applied_id "i_account=$((100 + a))")" = \
		    "k$(printf %02d "$a")-v10" ] || fail_with "account $a" || return 1
	done
	echo "# inline${1:+ beside nsps-deliver}: 200 events: $(tr '\n' ' ' < "$T/code-counts"); $(cat "$T/counts"); results: $(store_results | tr '\n' ';')" >&3
}

inline_concurrency() {
	concurrency
}

inline_concurrency_deliver() {
	concurrency deliver
}
