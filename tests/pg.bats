#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# DATABASE_URL: PostgreSQL as the store of connectors and workers on
# many hosts.  One real PostgreSQL for the file, a database per test.

load helper
load lib/servers
load lib/pg
load spool-helper

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}

setup_file() {
	pg_start
	export PG_DIR PGHOST PGPORT PGUSER
}

teardown_file() {
	[ -n "${PG_DIR:-}" ] || return 0
	pg_ctl_init
	pg_stop
}

setup() {
	[ -n "${PG_DIR:-}" ] || skip "no PostgreSQL"
	pg_ctl_init
	# A server another test stopped comes back for this one.
	"${PG_CTL[@]}" status > /dev/null 2>&1 || pg_up
	pg_db "t$BATS_TEST_NUMBER"
	servers_init "$BATS_TEST_TMPDIR/srv"
	LOG=$BATS_TEST_TMPDIR/handler.log
	: > "$LOG"
	workers=
	export RETRY_BASE=100ms RETRY_CAP=400ms HANDLER_TIMEOUT=10s
	# A lease long enough that a worker stalled on a loaded machine
	# (ASan, two CPUs, a load of 7) still renews it in time: with 2 s,
	# a live worker lost one mid-handler and its event ran twice.
	export LEASE_TIME=4s DB_TIMEOUT=2s
	# The workers' copies of bodies; a SIGKILLed one leaves its own.
	export TMPDIR=$BATS_TEST_TMPDIR
}

teardown() {
	local pid
	for pid in ${workers:-}; do
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	servers_stop_all
}

migrate() {
	run "$DELIVER" --migrate
	[ "$status" -eq 0 ] || fail_with "--migrate: $output"
}

# wait_until SECONDS TEST...: polls the test command every 0.1 s.
wait_until() {
	local n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# schema_dump: the schema, without pg_dump's per-run \restrict keys.
schema_dump() {
	pg_dump -s | grep -v '^\\\(un\)\{0,1\}restrict '
}

rows_at_least() {
	[ "$(pg_sql "select count(*) from nsps_event")" -ge "$1" ]
}

count_is() {
	[ "$(pg_sql "$1")" = "$2" ]
}

# post ID [NAME=VALUE ...]: one event through the connector as CGI.
post() {
	local id=$1
	shift
	minimal_event "$id" > "$BATS_TEST_TMPDIR/ev.json"
	post_event "$BATS_TEST_TMPDIR/ev.json" DATABASE_URL="$DATABASE_URL" \
	    DB_TIMEOUT="$DB_TIMEOUT" "$@"
}

# start_host NAME PROCS: a lighttpd with PROCS connectors on the
# database, as one connector host; sets ${NAME}_port.
start_host() {
	cat > "$SERVERS_DIR/$1-fcgi.conf" <<-CONF
	server.modules += ( "mod_fastcgi" )
	fastcgi.server = ( "/" => ((
		"socket" => "$SERVERS_DIR/$1.sock",
		"bin-path" => "$CONNECTOR",
		"check-local" => "disable",
		"max-procs" => $2,
		"bin-environment" => ( "API_TOKEN" => "$TOKEN",
		    "DATABASE_URL" => "$DATABASE_URL",
		    "DB_TIMEOUT" => "$DB_TIMEOUT" ),
	)) )
	CONF
	retry 3 lighttpd_start "$1" /health "$SERVERS_DIR/$1-fcgi.conf" \
	    'server.max-connections = 256' || return 1
	printf -v "${1}_port" %s "$LIGHTTPD_PORT"
}

# load_config PREFIX N COPIES PORT...: a curl config sending events
# PREFIX-1 to PREFIX-N, COPIES times each, in a random order, each to
# one of the ports at random.  It writes "CODE EXIT SECONDS ID" lines.
load_config() {
	local prefix=$1 n=$2 copies=$3
	shift 3
	awk -v prefix="$prefix" -v n="$n" -v copies="$copies" \
	    -v ports="$*" -v token="$TOKEN" -v seed="$RANDOM" 'BEGIN {
		srand(seed)
		np = split(ports, port, " ")
		for (i = 1; i <= n; i++) for (c = 1; c <= copies; c++)
			printf "%.6f %d\n", rand(), i
	}' | sort -n | awk -v prefix="$prefix" -v ports="$*" \
	    -v token="$TOKEN" -v seed="$RANDOM" 'BEGIN {
		srand(seed)
		np = split(ports, port, " ")
	}
	{
		id = prefix "-" $2
		if (NR > 1) print "next"
		printf "url = \"http://127.0.0.1:%s/process-event?id=%s\"\n", port[1 + int(rand() * np)], id
		printf "header = \"Authorization: Bearer %s\"\n", token
		print "header = \"Content-Type: application/json\""
		printf "data-binary = \"{\\\"event_id\\\":\\\"%s\\\",\\\"data\\\":{\\\"event_type\\\":\\\"SIM/Updated\\\"},\\\"pb_data\\\":{\\\"account_info\\\":{\\\"bill_status\\\":\\\"open\\\"}}}\"\n", id
		print "output = \"/dev/null\""
		print "max-time = 30"
		print "write-out = \"%{http_code} %{exitcode} %{time_total} %{url}\\n\""
	}'
}

# send CONFIG OUT: 16 concurrent clients; OUT gets "CODE SECONDS ID".
send() {
	curl --parallel --parallel-max 16 -s -K "$1" > "$2.raw" 2>/dev/null
	sed -n 's/^\([0-9][0-9][0-9]\) [0-9]* \([0-9.]*\) .*[?]id=\(.*\)$/\1 \2 \3/p' \
	    "$2.raw" > "$2"
}

@test "pg: --migrate creates the schema once, in one go; again it changes nothing" {
	run "$DELIVER" --stats
	[ "$status" -eq 78 ]
	[[ $output == *"schema version 0, this program needs 1: run nsps-deliver --migrate"* ]]
	migrate
	schema_dump > "$BATS_TEST_TMPDIR/once.sql"
	[ "$(pg_sql 'select version from nsps_schema')" = 1 ]
	migrate
	migrate
	schema_dump > "$BATS_TEST_TMPDIR/thrice.sql"
	diff "$BATS_TEST_TMPDIR/once.sql" "$BATS_TEST_TMPDIR/thrice.sql"
	[ "$(pg_sql 'select count(*) from nsps_schema')" = 1 ]
	# Two at once: one creates, the other waits and finds it done.
	pg_db "t${BATS_TEST_NUMBER}b"
	"$DELIVER" --migrate 2> "$BATS_TEST_TMPDIR/m1" & m1=$!
	"$DELIVER" --migrate 2> "$BATS_TEST_TMPDIR/m2" & m2=$!
	wait "$m1"
	wait "$m2"
	[ "$(pg_sql 'select count(*) from nsps_schema')" = 1 ]
	# The SQL in contrib/ is the same schema.
	pg_db "t${BATS_TEST_NUMBER}c"
	psql -X -q -1 -v ON_ERROR_STOP=1 -f "$CONTRIB_DIR/nsps-pg-schema.sql"
	schema_dump > "$BATS_TEST_TMPDIR/contrib.sql"
	diff "$BATS_TEST_TMPDIR/once.sql" "$BATS_TEST_TMPDIR/contrib.sql"
	migrate
	# A failed migration leaves nothing behind.
	pg_db "t${BATS_TEST_NUMBER}d"
	pg_sql "create table nsps_applied (x int)"
	run "$DELIVER" --migrate
	[ "$status" -eq 1 ]
	[[ $output == *'relation "nsps_applied" already exists'* ]]
	[ "$(pg_sql "select to_regclass('nsps_event') is null")" = t ]
}

@test "pg: SPOOL_DIR and DATABASE_URL together are a configuration error" {
	API_TOKEN=$TOKEN run "$CONNECTOR" -s "$BATS_TEST_TMPDIR/sock" \
	    -d "$BATS_TEST_TMPDIR"
	[ "$status" -eq 78 ]
	[[ $output == *"SPOOL_DIR and DATABASE_URL exclude each other"* ]]
	run "$DELIVER" -d "$BATS_TEST_TMPDIR" --stats
	[ "$status" -eq 78 ]
	[[ $output == *"SPOOL_DIR and DATABASE_URL exclude each other"* ]]
}

@test "pg: 202 once, then 200 Event already accepted; the body exactly as received; health shows the backlog" {
	migrate
	post pg-1 HTTP_X_B3_TRACEID=abc
	assert_status 202
	post pg-1
	assert_status 200
	assert_json .message "Event already accepted"
	[ "$(pg_sql "select count(*) from nsps_event where event_id = 'pg-1'")" = 1 ]
	pg_sql "select convert_from(body, 'UTF8') from nsps_event" > "$BATS_TEST_TMPDIR/stored"
	minimal_event pg-1 > "$BATS_TEST_TMPDIR/sent"
	echo >> "$BATS_TEST_TMPDIR/sent"
	cmp "$BATS_TEST_TMPDIR/sent" "$BATS_TEST_TMPDIR/stored"
	[ "$(pg_sql "select event_type || ' ' || bill_status || ' ' || state from nsps_event")" = "SIM/Updated open new" ]
	run_cgi API_TOKEN="$TOKEN" DATABASE_URL="$DATABASE_URL" \
	    REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_status 200
	assert_json .spool_backlog 1
}

@test "pg: a database that is down answers 503 with Retry-After and why, and health says so" {
	migrate
	pg_down
	post pg-down
	assert_error 503 SERVICE_ERROR
	assert_header 'Retry-After: 30'
	[[ $stderr == *"database: connect"* ]] || fail_with "log: $stderr"
	run_cgi API_TOKEN="$TOKEN" DATABASE_URL="$DATABASE_URL" \
	    REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_status 503
	assert_json .status "store unreachable"
	pg_up
	post pg-down
	assert_status 202
}

@test "pg: a database that hangs is given DB_TIMEOUT, then 503" {
	migrate
	local locker t0 t1 base hung
	# The same post without the lock: what a start-up and a connect
	# cost on this machine now, so that the bound below is about the
	# wait alone, not about how loaded the machine is.
	t0=$(date +%s%N)
	DB_TIMEOUT=1s post free-1
	t1=$(date +%s%N)
	assert_status 202
	base=$(((t1 - t0) / 1000000))
	psql -X -q -c "begin; lock table nsps_event; select pg_sleep(60); commit" \
	    > /dev/null 2>&1 &
	locker=$!
	wait_until 10 count_is "select count(*) from pg_locks where
	    relation = 'nsps_event'::regclass and granted and
	    mode = 'AccessExclusiveLock'" 1 || fail_with "the lock was not taken"
	t0=$(date +%s%N)
	DB_TIMEOUT=1s post hang-1
	t1=$(date +%s%N)
	pg_sql "select pg_terminate_backend(pid) from pg_locks where
	    relation = 'nsps_event'::regclass and granted" > /dev/null
	kill "$locker" 2>/dev/null || true
	wait "$locker" 2>/dev/null || true
	assert_error 503 SERVICE_ERROR
	[[ $stderr == *"canceling statement due to statement timeout"* ]] ||
	    fail_with "$stderr"
	hung=$(((t1 - t0) / 1000000))
	echo "# pg: a post took $base ms; with the table locked, $hung ms" >&3
	[ "$hung" -lt $((base + 1000 + 1500)) ] ||
	    fail_with "took $hung ms, $base ms without the lock"
}

@test "pg: a wrong password or an unreachable host stops the start-up; no password in any log" {
	migrate
	pg_sql "create role nsps_pw login password 'right-secret-77'"
	sed -i '1i local all nsps_pw scram-sha-256' "$PG_DIR/data/pg_hba.conf"
	"${PG_CTL[@]}" reload > /dev/null
	sleep 0.5
	export API_TOKEN=$TOKEN
	export DATABASE_URL="postgresql://nsps_pw:wrong-secret-42@/t$BATS_TEST_NUMBER?host=$PGHOST"
	run --separate-stderr "$CONNECTOR" -s "$BATS_TEST_TMPDIR/sock"
	[ "$status" -eq 78 ] || fail_with "status $status: $stderr"
	[[ $stderr == *"password authentication failed"* ]] || fail_with "$stderr"
	[[ $stderr != *wrong-secret-42* ]]
	run --separate-stderr "$DELIVER" -- true
	[ "$status" -eq 78 ]
	[[ $stderr == *"password authentication failed"* ]]
	[[ $stderr != *wrong-secret-42* ]]
	run --separate-stderr "$DELIVER" --migrate
	[ "$status" -eq 78 ] || fail_with "--migrate: status $status: $stderr"
	[[ $stderr != *wrong-secret-42* ]]
	# A malformed URL: a configuration error, in every program and
	# mode, and not repeated either.
	export DATABASE_URL="postgresql://nsps_pw:wrong-secret-42@/x?host=$PGHOST&bad%zz=1"
	run --separate-stderr "$CONNECTOR" -s "$BATS_TEST_TMPDIR/sock"
	[ "$status" -eq 78 ] || fail_with "status $status: $stderr"
	[ "$stderr" = "nsps-connector: DATABASE_URL: not a connection string or URI that libpq accepts" ] ||
	    fail_with "$stderr"
	for args in "-- true" "--once -- true" --stats --migrate; do
		# shellcheck disable=SC2086
		run --separate-stderr "$DELIVER" $args
		[ "$status" -eq 78 ] || fail_with "$args: status $status: $stderr"
		[[ $stderr == *"DATABASE_URL: not a connection string or URI that libpq accepts"* ]] ||
		    fail_with "$args: $stderr"
		[[ $stderr != *wrong-secret-42* ]]
	done
	# Unreachable: temporary.
	export DATABASE_URL="host=$BATS_TEST_TMPDIR/nowhere user=nsps_pw password=wrong-secret-42 dbname=x"
	run --separate-stderr "$CONNECTOR" -s "$BATS_TEST_TMPDIR/sock"
	[ "$status" -eq 75 ] || fail_with "status $status: $stderr"
	[[ $stderr == *"database: connect"*"No such file or directory"* ]] || fail_with "$stderr"
	[[ $stderr != *wrong-secret-42* ]]
	run --separate-stderr "$DELIVER" -- true
	[ "$status" -eq 75 ]
	[[ $stderr != *wrong-secret-42* ]]
	run --separate-stderr "$DELIVER" --migrate
	[ "$status" -eq 75 ] || fail_with "--migrate: status $status: $stderr"
	[[ $stderr != *wrong-secret-42* ]]
	# The right one, from the env file: accepted.
	printf 'DATABASE_URL=postgresql://nsps_pw:right-secret-77@/t%s?host=%s\n' \
	    "$BATS_TEST_NUMBER" "$PGHOST" > "$BATS_TEST_TMPDIR/env"
	chmod 600 "$BATS_TEST_TMPDIR/env"
	unset DATABASE_URL
	pg_sql "grant insert, select on nsps_event to nsps_pw"
	minimal_event pg-pw > "$BATS_TEST_TMPDIR/ev.json"
	post_event "$BATS_TEST_TMPDIR/ev.json" NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env"
	assert_status 202
}

@test "pg: least privilege: the connector role inserts but cannot UPDATE, DELETE or change the schema; the worker role delivers" {
	migrate
	psql -X -q -v ON_ERROR_STOP=1 -f "$CONTRIB_DIR/nsps-pg-grants.sql"
	psql -X -q -v ON_ERROR_STOP=1 -f "$CONTRIB_DIR/nsps-pg-grants.sql"
	local db=t$BATS_TEST_NUMBER
	DATABASE_URL="host=$PGHOST user=nsps_connector dbname=$db" post lp-1
	assert_status 202
	DATABASE_URL="host=$PGHOST user=nsps_connector dbname=$db" post lp-1
	assert_status 200
	run_cgi API_TOKEN="$TOKEN" DATABASE_URL="host=$PGHOST user=nsps_connector dbname=$db" \
	    REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_json .spool_backlog 1
	run psql -X -U nsps_connector -c "update nsps_event set state = 'done'"
	[[ $output == *"permission denied"* ]]
	run psql -X -U nsps_connector -c "delete from nsps_event"
	[[ $output == *"permission denied"* ]]
	run psql -X -U nsps_connector -c "select body from nsps_event"
	[[ $output == *"permission denied"* ]]
	run psql -X -U nsps_connector -c "create table x (a int)"
	[[ $output == *"permission denied"* ]]
	run psql -X -U nsps_worker -c "drop table nsps_applied"
	[[ $output == *"must be owner"* ]]
	DATABASE_URL="host=$PGHOST user=nsps_worker dbname=$db" \
	    run "$DELIVER" --once -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG"
	[ "$status" -eq 0 ]
	[ "$(cat "$LOG")" = lp-1 ]
	[ "$(pg_sql "select state from nsps_event")" = done ]
}

@test "pg: a NOTIFY wakes an idle worker at once; with nobody listening, polling finds the event" {
	migrate
	"$DELIVER" -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG" \
	    2> "$BATS_TEST_TMPDIR/worker.log" &
	workers=$!
	sleep 1
	post wake-1
	wait_until 2 grep -qx wake-1 "$LOG" || fail_with "not delivered in 2 s"
	# A NOTIFY lost (here: none sent): the backstop poll, within 5 s.
	pg_sql "insert into nsps_event (event_id, body) values ('wake-2', '{}')"
	sleep 1
	! grep -qx wake-2 "$LOG"
	wait_until 6 grep -qx wake-2 "$LOG" || fail_with "not delivered: $(cat "$BATS_TEST_TMPDIR/worker.log")"
	# Its connection cut: it connects and listens again.
	pg_sql "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'nsps-deliver'" > /dev/null
	sleep 0.5
	post wake-3
	wait_until 8 grep -qx wake-3 "$LOG" || fail_with "not delivered: $(cat "$BATS_TEST_TMPDIR/worker.log")"
	kill "$workers"
	wait "$workers"
	workers=
}

@test "pg: a connector sends one NOTIFY per 100 ms; the worker's second look finds the rest at once" {
	migrate
	start_host host1 1
	"$DELIVER" -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG" \
	    2> "$BATS_TEST_TMPDIR/worker.log" &
	workers=$!
	sleep 1
	# The first wakes the worker, which is done with it before the
	# second comes, 50 ms later, from the same connector: no NOTIFY.
	local id
	for id in burst-1 burst-2; do
		minimal_event "$id" | curl -s -o /dev/null -w '%{http_code}\n' \
		    -H "Authorization: Bearer $TOKEN" \
		    -H 'Content-Type: application/json' --data-binary @- \
		    "http://127.0.0.1:$host1_port/process-event" >> "$BATS_TEST_TMPDIR/codes"
		sleep 0.05
	done
	[ "$(grep -c '^202' "$BATS_TEST_TMPDIR/codes")" -eq 2 ]
	# Well before the 5 s poll.
	wait_until 1 grep -qx burst-2 "$LOG" || fail_with "$(cat "$LOG")"
	kill "$workers"
	wait "$workers"
	workers=
}

@test "pg: two connector hosts on one database: 1,000 ids sent 3 times by 16 clients, one 202 each" {
	migrate
	start_host host1 2
	start_host host2 2
	load_config dup 1000 3 "$host1_port" "$host2_port" > "$BATS_TEST_TMPDIR/curl.conf"
	send "$BATS_TEST_TMPDIR/curl.conf" "$BATS_TEST_TMPDIR/codes"
	[ "$(wc -l < "$BATS_TEST_TMPDIR/codes")" -eq 3000 ]
	awk '$1 != 202 && $1 != 200 { print; bad = 1 } END { exit bad }' \
	    "$BATS_TEST_TMPDIR/codes" | head
	[ "$(awk '$1 == 202' "$BATS_TEST_TMPDIR/codes" | wc -l)" -eq 1000 ]
	[ "$(awk '$1 == 202 { print $3 }' "$BATS_TEST_TMPDIR/codes" | sort -u | wc -l)" -eq 1000 ]
	[ "$(pg_sql "select count(*) from nsps_event where event_id like 'dup-%'")" -eq 1000 ]
	# Both hosts took their share.
	grep -q "Received event" "$SERVERS_DIR"/host1.err
	grep -q "Received event" "$SERVERS_DIR"/host2.err
}

@test "pg: the database killed under load: only 202, 200 or 503, none past DB_TIMEOUT, nothing 2xx lost; retries store each id once" {
	migrate
	start_host host1 2
	start_host host2 2
	load_config kill 4000 1 "$host1_port" "$host2_port" > "$BATS_TEST_TMPDIR/curl.conf"
	send "$BATS_TEST_TMPDIR/curl.conf" "$BATS_TEST_TMPDIR/codes" &
	local load=$!
	wait_until 20 rows_at_least 300
	pg_down immediate
	sleep 2
	pg_up
	wait "$load"
	[ "$(wc -l < "$BATS_TEST_TMPDIR/codes")" -eq 4000 ]
	awk '$1 != 202 && $1 != 200 && $1 != 503 { print; bad = 1 } END { exit bad }' \
	    "$BATS_TEST_TMPDIR/codes" | head
	# DB_TIMEOUT is 2 s; a second more for the web server and curl.
	awk '$2 > 3.0 { print; bad = 1 } END { exit bad }' "$BATS_TEST_TMPDIR/codes" | head
	local n503
	n503=$(awk '$1 == 503' "$BATS_TEST_TMPDIR/codes" | wc -l)
	[ "$n503" -gt 0 ] || fail_with "the stop came too late: no 503"
	# Every id answered 2xx is in the table.
	pg_sql "select event_id from nsps_event" | sort > "$BATS_TEST_TMPDIR/stored"
	awk '$1 ~ /^2/ { print $3 }' "$BATS_TEST_TMPDIR/codes" | sort > "$BATS_TEST_TMPDIR/acked"
	[ -z "$(comm -23 "$BATS_TEST_TMPDIR/acked" "$BATS_TEST_TMPDIR/stored")" ]
	grep -q "database: " "$SERVERS_DIR"/host*.err
	# NSPS retries what got no 2xx, until it does.
	local round
	awk '$1 == 503 { print $3 }' "$BATS_TEST_TMPDIR/codes" > "$BATS_TEST_TMPDIR/todo"
	for round in 1 2 3 4 5; do
		[ -s "$BATS_TEST_TMPDIR/todo" ] || break
		while read -r id; do
			echo "${id#kill-}"
		done < "$BATS_TEST_TMPDIR/todo" > "$BATS_TEST_TMPDIR/nums"
		awk -v p1="$host1_port" -v p2="$host2_port" -v token="$TOKEN" '{
			id = "kill-" $1
			if (NR > 1) print "next"
			printf "url = \"http://127.0.0.1:%s/process-event?id=%s\"\n", NR % 2 ? p1 : p2, id
			printf "header = \"Authorization: Bearer %s\"\n", token
			print "header = \"Content-Type: application/json\""
			printf "data-binary = \"{\\\"event_id\\\":\\\"%s\\\",\\\"data\\\":{\\\"event_type\\\":\\\"SIM/Updated\\\"},\\\"pb_data\\\":{\\\"account_info\\\":{\\\"bill_status\\\":\\\"open\\\"}}}\"\n", id
			print "output = \"/dev/null\""
			print "max-time = 30"
			print "write-out = \"%{http_code} %{exitcode} %{time_total} %{url}\\n\""
		}' "$BATS_TEST_TMPDIR/nums" > "$BATS_TEST_TMPDIR/retry.conf"
		send "$BATS_TEST_TMPDIR/retry.conf" "$BATS_TEST_TMPDIR/again"
		awk '$1 !~ /^2/ { print $3 }' "$BATS_TEST_TMPDIR/again" > "$BATS_TEST_TMPDIR/todo"
	done
	[ ! -s "$BATS_TEST_TMPDIR/todo" ] || fail_with "still refused: $(wc -l < "$BATS_TEST_TMPDIR/todo")"
	[ "$(pg_sql "select count(*) from nsps_event where event_id like 'kill-%'")" -eq 4000 ]
	echo "# pg: database killed under load: $n503 of 4000 answered 503, all stored after retries" >&3
}

@test "pg: a worker restarts with the database and goes on; nothing is done without exit 0" {
	migrate
	"$DELIVER" -- /bin/sh -c 'echo "$NSPS_EVENT_ID" >> "$0"' "$LOG" \
	    2> "$BATS_TEST_TMPDIR/worker.log" &
	workers=$!
	post before-1
	wait_until 5 grep -qx before-1 "$LOG"
	pg_down immediate
	sleep 1
	pg_up
	post after-1
	wait_until 10 grep -qx after-1 "$LOG" ||
	    fail_with "not delivered after the restart: $(cat "$BATS_TEST_TMPDIR/worker.log")"
	kill -0 "$workers"
	[ "$(pg_sql "select count(*) from nsps_event where state = 'done'")" = 2 ]
	kill "$workers"
	wait "$workers"
	workers=
	grep -q "database: " "$BATS_TEST_TMPDIR/worker.log"
}

# start_worker NAME: nsps-deliver -j 4 with the ordering handler; its
# pid is added to $workers and left in $wpid.
start_worker() {
	"$DELIVER" -j 4 -- "$BATS_TEST_TMPDIR/handler" "$LOG" \
	    2>> "$BATS_TEST_TMPDIR/$1.log" &
	wpid=$!
	workers="$workers $wpid"
}

# events N KEYS: N events over KEYS account keys posted in a shuffled
# order; the id says key and version: k<key>-v<version>-<n>.
make_keyed() {
	awk -v n="$1" -v keys="$2" -v port="$3" -v token="$TOKEN" -v seed="$RANDOM" 'BEGIN {
		srand(seed)
		for (i = 1; i <= n; i++) {
			k = i <= keys ? i - 1 : int(rand() * keys)
			v = int(i * 0.4 + rand() * 40)
			id = sprintf("k%02d-v%04d-%d", k, v, i)
			s = v
			ts = sprintf("2025-11-03T%02d:%02d:%02d+00:00", 9 + int(s / 3600), int(s % 3600 / 60), s % 60)
			printf "%f\t%s\t{\"event_id\":\"%s\",\"data\":{\"event_type\":\"SIM/Updated\",\"variables\":{\"i_account\":%d}},\"pb_data\":{\"account_info\":{\"bill_status\":\"open\"}},\"created_at\":\"2025-11-03T08:00:00+00:00\",\"updated_at\":\"%s\"}\n", i + rand() * 100, id, id, 277000 + k, ts
		}
	}' | sort -n | cut -f2-
}

# keyed_config: a curl config posting each "ID<tab>BODY" line to host1.
keyed_config() {
	local i=0 id body
	while IFS=$'\t' read -r id body; do
		i=$((i + 1))
		[ "$i" -eq 1 ] || echo next
		printf 'url = "http://127.0.0.1:%s/process-event?id=%s"\n' "$host1_port" "$id"
		printf 'header = "Authorization: Bearer %s"\n' "$TOKEN"
		printf 'header = "Content-Type: application/json"\n'
		printf 'data-binary = "%s"\n' "${body//\"/\\\"}"
		printf 'output = "/dev/null"\nmax-time = 20\n'
		printf 'write-out = "%%{http_code} %%{exitcode} %%{time_total} %%{url}\\n"\n'
	done
}

@test "pg: two workers -j 4, one SIGKILLed mid-delivery: all delivered, only its in-flight events twice, per key in order" {
	migrate
	local n=600 keys=24
	cat > "$BATS_TEST_TMPDIR/handler" <<-'EOF'
	#!/bin/bash
	echo "B $NSPS_EVENT_ID $PPID" >> "$1"
	printf -v t '0.%03d' $((RANDOM % 10 ? 20 + RANDOM % 80 : 400))
	sleep "$t"
	echo "E $NSPS_EVENT_ID $PPID" >> "$1"
	EOF
	chmod 755 "$BATS_TEST_TMPDIR/handler"
	start_host host1 2
	make_keyed "$n" "$keys" > "$BATS_TEST_TMPDIR/events"
	start_worker w1
	local dead=$wpid
	start_worker w2
	# Six rounds of 100, each mostly handled before the next, so that
	# each key sees several applied versions; after the third, while
	# handlers of both workers run, the SIGKILL.
	split -l $((n / 6)) -d "$BATS_TEST_TMPDIR/events" "$BATS_TEST_TMPDIR/round"
	local round
	: > "$BATS_TEST_TMPDIR/codes"
	for round in 0 1 2 3 4 5; do
		keyed_config < "$BATS_TEST_TMPDIR/round0$round" > "$BATS_TEST_TMPDIR/round.conf"
		send "$BATS_TEST_TMPDIR/round.conf" "$BATS_TEST_TMPDIR/c"
		cat "$BATS_TEST_TMPDIR/c" >> "$BATS_TEST_TMPDIR/codes"
		if [ "$round" -eq 2 ]; then
			wait_until 10 grep -q " $dead\$" "$LOG"
			sleep 0.2
			kill -9 "$dead"
			wait "$dead" 2>/dev/null || true
			pg_sql "select event_id from nsps_event where state = 'cur' and owner like '%:$dead:%'" \
			    > "$BATS_TEST_TMPDIR/inflight"
			# Its handlers died with it; a write under way may
			# still land.
			sleep 0.2
			echo "KILL $dead" >> "$LOG"
		fi
		wait_until 20 count_is "select count(*) from nsps_event where state = 'new'" 0
	done
	[ "$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes")" -eq "$n" ] ||
	    fail_with "not every event was stored: $(cut -d' ' -f1 "$BATS_TEST_TMPDIR/codes" | sort | uniq -c); $(head -3 "$BATS_TEST_TMPDIR/c1.raw")"
	wait_until 60 count_is "select count(*) from nsps_event where state = 'done'" "$n" ||
	    fail_with "$(pg_sql "select state, count(*) from nsps_event group by 1")"
	[ "$(pg_sql "select count(*) from nsps_event where result not in ('exit 0', 'stale')")" -eq 0 ]

	# Only the dead worker's in-flight events ran twice; none more.
	awk '$1 == "B" { print $2 }' "$LOG" | sort | uniq -c |
	    awk '$1 > 1 { print $2 }' > "$BATS_TEST_TMPDIR/twice"
	sort -o "$BATS_TEST_TMPDIR/inflight" "$BATS_TEST_TMPDIR/inflight"
	[ -z "$(comm -23 "$BATS_TEST_TMPDIR/twice" "$BATS_TEST_TMPDIR/inflight")" ] ||
	    fail_with "ran twice, not in flight: $(comm -23 "$BATS_TEST_TMPDIR/twice" "$BATS_TEST_TMPDIR/inflight")"
	[ -z "$(awk '$1 == "B" { print $2 }' "$LOG" | sort | uniq -c | awk '$1 > 2')" ]
	# Every event not stale ran to its end.
	pg_sql "select event_id from nsps_event where result = 'exit 0'" | sort > "$BATS_TEST_TMPDIR/applied"
	awk '$1 == "E" { print $2 }' "$LOG" | sort -u > "$BATS_TEST_TMPDIR/ended"
	[ -z "$(comm -23 "$BATS_TEST_TMPDIR/applied" "$BATS_TEST_TMPDIR/ended")" ]

	# Per key, from the handlers' log, across both workers: runs never
	# overlap, applied versions never go down, the newest is the last.
	cut -f1 "$BATS_TEST_TMPDIR/events" > "$BATS_TEST_TMPDIR/ids"
	awk -v report="$BATS_TEST_TMPDIR/counts" -f "$BATS_TEST_DIRNAME/lib/order-check.awk" \
	    "$BATS_TEST_TMPDIR/ids" "$LOG"
	echo "# pg: $n events, $(cat "$BATS_TEST_TMPDIR/counts"), $(wc -l < "$BATS_TEST_TMPDIR/inflight") in flight at the SIGKILL, $(wc -l < "$BATS_TEST_TMPDIR/twice") ran twice" >&3
}

@test "pg: a handler whose lease was lost is stopped, and its outcome not recorded" {
	migrate
	post lease-1
	"$DELIVER" -- /bin/sh -c 'echo "B $NSPS_EVENT_ID" >> "$0"; sleep 30; echo "E $NSPS_EVENT_ID" >> "$0"' "$LOG" \
	    2> "$BATS_TEST_TMPDIR/worker.log" &
	workers=$!
	wait_until 5 grep -q "^B lease-1" "$LOG"
	# Another worker's takeover, as the database sees it.
	# Its claim gives it a lease of its own, so the event stays cur
	# however long the checks below take.
	pg_sql "update nsps_event set owner = 'other:1:1',
	    lease_until = now() + interval '10 min' where event_id = 'lease-1'"
	wait_until 5 grep -q "lease-1: lease lost; stopping its handler" "$BATS_TEST_TMPDIR/worker.log" ||
	    fail_with "$(cat "$BATS_TEST_TMPDIR/worker.log")"
	wait_until 5 grep -q "lease-1: lease lost; its outcome is not recorded" "$BATS_TEST_TMPDIR/worker.log"
	[ "$(pg_sql "select state || ' ' || owner from nsps_event")" = "cur other:1:1" ]
	! grep -q "^E" "$LOG"
}
