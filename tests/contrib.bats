#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The example handlers in contrib/handlers, run by nsps-deliver against
# real servers: a local HTTP API stand-in and a private PostgreSQL.

load helper
load spool-helper

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}
HANDLERS=${CONTRIB_DIR:-$TESTS_DIR/../contrib}/handlers

setup() {
	SPOOL=$BATS_TEST_TMPDIR/spool
	mkdir -p "$SPOOL"
	stub_pid=
	pgdir=
	export RETRY_BASE=1h
}

teardown() {
	stop_stub
	stop_pg
}

spool_file() {
	post_event "$1" SPOOL_DIR="$SPOOL"
	assert_status 202
}

# run_handler NAME ID FILE [NAME=VALUE ...]: the handler run as
# nsps-deliver runs it, for a redelivery or a single case.
run_handler() {
	local h=$1 id=$2 file=$3
	shift 3
	run --separate-stderr env NSPS_EVENT_ID="$id" NSPS_EVENT_FILE="$file" \
	    NSPS_EVENT_TYPE=SIM/Updated NSPS_BILL_STATUS=open NSPS_ATTEMPT=2 \
	    "$@" "$HANDLERS/$h" < "$file"
}

@test "contrib: log-append writes one line per event, once per event_id" {
	export NSPS_LOG_FILE=$BATS_TEST_TMPDIR/events.log
	spool_file "$FIX/nsps-doc-sample.json"
	spool_file "$FIX/sim-replaced-swap.json"
	run "$DELIVER" -d "$SPOOL" --once -- "$HANDLERS/log-append"
	[ "$status" -eq 0 ]
	[ "$(ls "$SPOOL/done" | wc -l)" -eq 2 ]
	[ "$(wc -l < "$NSPS_LOG_FILE")" -eq 2 ]
	id=$(jq -r .event_id "$FIX/nsps-doc-sample.json")
	run_handler log-append "$id" "$SPOOL/done/$id"
	[ "$status" -eq 0 ]
	[ "$(wc -l < "$NSPS_LOG_FILE")" -eq 2 ]
	line=$(grep "^$id	" "$NSPS_LOG_FILE")
	[ "$(cut -f2,3 <<<"$line")" = "SIM/Updated	open" ]
	[ "$(cut -f4 <<<"$line" | jq -cS .)" = "$(jq -cS . "$FIX/nsps-doc-sample.json")" ]
}

# The stub and its per-connection children (a /hang one included), which
# must not keep bats' output open.
stop_stub() {
	[ -n "${stub_pid:-}" ] || return 0
	# shellcheck disable=SC2046
	kill $(pgrep -P "$stub_pid") "$stub_pid" 2>/dev/null || true
	wait "$stub_pid" 2>/dev/null || true
	stub_pid=
}

start_stub() {
	"$HTTPSTUB" "$BATS_TEST_TMPDIR/requests" > "$BATS_TEST_TMPDIR/port" 3>&- &
	stub_pid=$!
	local i
	for i in $(seq 50); do
		[ -s "$BATS_TEST_TMPDIR/port" ] && break
		sleep 0.1
	done
	port=$(cat "$BATS_TEST_TMPDIR/port")
	[ -n "$port" ]
}

@test "contrib: http-forward posts the event byte for byte and maps the answers" {
	[ -x "$HTTPSTUB" ] || skip "tests/httpstub was not built (make check builds it)"
	start_stub
	printf 'stub-token-123\n' > "$BATS_TEST_TMPDIR/token"
	export NSPS_FORWARD_TOKEN_FILE=$BATS_TEST_TMPDIR/token NSPS_FORWARD_TIMEOUT=2
	spool_file "$FIX/nsps-doc-sample.json"
	id=$(jq -r .event_id "$FIX/nsps-doc-sample.json")
	NSPS_FORWARD_URL=http://127.0.0.1:$port/200 run "$DELIVER" -d "$SPOOL" \
	    --once -- "$HANDLERS/http-forward"
	[ "$status" -eq 0 ]
	[ -e "$SPOOL/done/$id" ]
	grep -q "^POST /200 HTTP/1.1" "$BATS_TEST_TMPDIR/requests"
	grep -qi "^Idempotency-Key: $id" "$BATS_TEST_TMPDIR/requests"
	grep -qi "^Authorization: Bearer stub-token-123" "$BATS_TEST_TMPDIR/requests"
	# The body, byte for byte, after the blank line.
	sed '1,/^\r$/d' "$BATS_TEST_TMPDIR/requests" | head -c "$(wc -c < "$FIX/nsps-doc-sample.json")" |
	    cmp - "$FIX/nsps-doc-sample.json"

	# path expected-exit text-in-stderr
	while read -r path want text; do
		run_handler http-forward "$id" "$FIX/nsps-doc-sample.json" \
		    NSPS_FORWARD_URL="http://127.0.0.1:$port/$path"
		[ "$status" -eq "$want" ] || fail_with "/$path: exit $status, not $want" || return 1
		[[ $stderr == *"$text"* ]] || fail_with "/$path: no '$text'" || return 1
	done <<-'EOF'
	201 0
	429 75 HTTP 429, will retry
	500 75 HTTP 500, will retry
	503 75 HTTP 503, will retry
	400 1 HTTP 400, not retried
	404 1 HTTP 404, not retried
	hang 75 curl exit 28
	EOF
	# Nobody listening: retried too.
	stop_stub
	run_handler http-forward "$id" "$FIX/nsps-doc-sample.json" \
	    NSPS_FORWARD_URL="http://127.0.0.1:$port/200"
	[ "$status" -eq 75 ]
}

@test "contrib: http-forward through nsps-deliver: 429 is retried, 400 is failed" {
	[ -x "$HTTPSTUB" ] || skip "tests/httpstub was not built (make check builds it)"
	start_stub
	minimal_event fw-1 > "$BATS_TEST_TMPDIR/ev.json"
	spool_file "$BATS_TEST_TMPDIR/ev.json"
	NSPS_FORWARD_URL=http://127.0.0.1:$port/429 run "$DELIVER" -d "$SPOOL" \
	    --once -- "$HANDLERS/http-forward"
	[ -e "$SPOOL/retry/fw-1" ]
	grep -q "HTTP 429, will retry" "$SPOOL/status/fw-1"
	# Its retry falls due (an hour early), and the API now refuses it.
	mv "$SPOOL/retry/fw-1" "$SPOOL/new/fw-1"
	NSPS_FORWARD_URL=http://127.0.0.1:$port/400 run "$DELIVER" -d "$SPOOL" \
	    --once -- "$HANDLERS/http-forward"
	[ -e "$SPOOL/failed/fw-1" ]
	grep -qx "attempts 2" "$SPOOL/status/fw-1"
	grep -qx "result exit 1" "$SPOOL/status/fw-1"
	grep -q "HTTP 400, not retried" "$SPOOL/status/fw-1"
}

# start_pg: a private PostgreSQL cluster listening only on a unix socket
# in its own directory (so no port can clash), run by an unprivileged
# user.  Sets PGHOST, PGPORT, PGUSER, PGDATABASE.
start_pg() {
	local bin as=()
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$bin" ] && [ -x "$bin/initdb" ] ||
	    skip "PostgreSQL server binaries not installed (.ci/deps installs postgresql)"
	command -v psql >/dev/null || skip "psql not installed"
	pgdir=$(mktemp -d /tmp/nsps-pg.XXXXXX)
	chmod 755 "$pgdir"
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 ||
		    skip "running as root and there is no postgres user to run the server"
		chown postgres "$pgdir"
		as=(runuser -u postgres --)
	fi
	"${as[@]}" "$bin/initdb" -D "$pgdir/data" -A trust -U postgres \
	    --no-sync > "$pgdir/initdb.log" 2>&1 ||
	    { cat "$pgdir/initdb.log" >&2; return 1; }
	"${as[@]}" "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
	    -o "-k $pgdir -c listen_addresses= -p 5432 -c fsync=off" start \
	    > /dev/null 3>&- || { cat "$pgdir/server.log" >&2; return 1; }
	PG_CTL=("${as[@]}" "$bin/pg_ctl" -D "$pgdir/data")
	export PGHOST=$pgdir PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

stop_pg() {
	[ -n "${pgdir:-}" ] || return 0
	"${PG_CTL[@]}" -m immediate stop > /dev/null 2>&1 || true
	rm -rf "$pgdir"
	pgdir=
}

@test "contrib: pg-store inserts each event once into a real PostgreSQL" {
	start_pg
	psql -X -q -v ON_ERROR_STOP=1 -f "$HANDLERS/pg-store.sql"
	spool_file "$FIX/nsps-doc-sample.json"
	spool_file "$FIX/sim-replaced-swap.json"
	spool_file "$FIX/account-unblocked-basic.json"
	run --separate-stderr "$DELIVER" -d "$SPOOL" --once -j 2 -- "$HANDLERS/pg-store"
	[ "$status" -eq 0 ] || fail_with "exit $status"
	[ "$(ls "$SPOOL/done" | wc -l)" -eq 3 ] || fail_with "not all done" "$(cat "$SPOOL"/status/*)"
	[ "$(psql -XAtc 'select count(*) from nsps_events')" -eq 3 ]
	id=$(jq -r .event_id "$FIX/nsps-doc-sample.json")
	# Delivered again (at least once): still one row, exit 0.
	run_handler pg-store "$id" "$SPOOL/done/$id"
	[ "$status" -eq 0 ] || fail_with "exit $status"
	[ "$(psql -XAtc 'select count(*) from nsps_events')" -eq 3 ]
	swap=$(jq -r .event_id "$FIX/sim-replaced-swap.json")
	row=$(PGTZ=UTC psql -XAt -F ' ' -c "select event_type,
	    bill_status, attempt, to_char(event_time, 'YYYY-MM-DD HH24:MI:SS')
	    from nsps_events where event_id = '$swap'")
	[ "$row" = "SIM/Replaced open 1 $(jq -r .data.variables.event_time "$FIX/sim-replaced-swap.json")" ] ||
	    fail_with "row: $row"
	[ "$(psql -XAtc "select body from nsps_events where event_id = '$id'" | jq -cS .)" = \
	    "$(jq -cS . "$FIX/nsps-doc-sample.json")" ]
	# A missing table is a permanent failure; no server, a retry.
	run_handler pg-store "$id" "$SPOOL/done/$id" NSPS_PG_TABLE=no_such_table
	[ "$status" -eq 1 ] || fail_with "missing table: exit $status"
	[[ $stderr == *42P01* ]]
	"${PG_CTL[@]}" -m fast stop > /dev/null
	run_handler pg-store "$id" "$SPOOL/done/$id"
	[ "$status" -eq 75 ] || fail_with "server down: exit $status"
}

# The server suites check HTTPS on the real servers; this checks that no
# web server's recipe is left without it: Let's Encrypt's paths for the
# operator to fill in, a year of HSTS, and plain HTTP redirected.
@test "contrib: every web server's HTTPS names Let's Encrypt's paths, HSTS and a redirect" {
	local f
	for f in lighttpd-tls.conf apache-tls.conf nginx-tls.conf haproxy.cfg \
	    Caddyfile h2o.conf; do
		grep -qF /etc/letsencrypt/live/EXAMPLE/fullchain.pem "$CONTRIB_DIR/$f" &&
		    grep -qF /etc/letsencrypt/live/EXAMPLE/privkey.pem "$CONTRIB_DIR/$f" ||
		    fail_with "$f: no Let's Encrypt paths" || return 1
		grep -q '^[^#]*Strict-Transport-Security.*max-age=31536000' \
		    "$CONTRIB_DIR/$f" || fail_with "$f: no HSTS" || return 1
		if [ "$f" = Caddyfile ]; then
			# Caddy's automatic HTTPS redirects, unless told not to.
			! grep -q '^[^#]*auto_https' "$CONTRIB_DIR/$f" ||
			    fail_with "$f: automatic HTTPS changed" || return 1
		else
			grep -qiE '^[^#]*(redirect|return 301)' "$CONTRIB_DIR/$f" ||
			    fail_with "$f: plain HTTP is not redirected" ||
			    return 1
		fi
	done
	# Each HTTPS file is installed and mentioned beside its recipe.
	for f in lighttpd-tls.conf apache-tls.conf nginx-tls.conf; do
		grep -qF "contrib/$f" "$TESTS_DIR/../Makefile.am" ||
		    fail_with "$f is not installed" || return 1
	done
}
