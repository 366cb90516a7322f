# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The queue contract on either store: one helper that hides where the
# store keeps things, so that one case body runs against the spool and
# against a real PostgreSQL, the way lib/contract.bash shares the HTTP
# cases across web servers.  STORE says which: spool (the default) or
# pg.  Load it after helper.bash; it loads lib/pg.bash itself.
#
# Life cycle, from the suite's own functions:
#   store_setup_file      in setup_file: pg starts one PostgreSQL for
#                         the file (lib/pg.bash); the spool needs none
#   store_teardown_file   in teardown_file: stops it
#   store_setup           in setup: a fresh, empty store per test (a
#                         new SPOOL_DIR; a new database migrated by
#                         nsps-deliver --migrate) and its variables
#                         exported, so that nsps-deliver finds it with
#                         no option; skips the test when pg has no
#                         server
#   store_teardown        in teardown (nothing to do today)
#   store_reset           empties the store within a test
#
# Talking to it:
#   STORE_VAR             SPOOL_DIR or DATABASE_URL
#   store_env             the assignments the connector and nsps-deliver
#                         need, one NAME=VALUE word per line, no spaces
#                         ("post_event FILE $(store_env)")
#   store_server_env      the same for a lighttpd bin-environment:
#                         '"NAME" => "VALUE", ...'
#   STORE_WAL=on          the spool with its write-ahead log: both of
#                         the above add SPOOL_WAL=on, so that FastCGI
#                         connectors acknowledge on the log (CGI and
#                         request files never use it)
#   store_post FILE [NAME=VALUE...]  post_event FILE through the
#                         connector (CGI) into the store, under
#                         NSPS_FIXTURE_WRAPPER if that is set, else
#                         under NSPS_WRAPPER: these posts only load the
#                         queue, on the paths the cgi, spool and pg
#                         suites check under the wrapper already
#   store_post_events [NAME=VALUE...] -- FILE...  each FILE posted
#                         through one FastCGI connector (post_events),
#                         under the same wrapper, without the
#                         write-ahead log (the events land where
#                         store_post puts them): for loading many
#   store_crashed         after a worker was SIGKILLed: whatever must
#                         pass before another worker may take its
#                         events over (pg: its leases run out; LEASE_TIME
#                         is 4s here); the spool needs nothing
#
# Queries (ID an event id, KEY an ORDER_KEY value such as i_account=8):
#   store_state ID        new, cur, retry, done, failed, or nothing
#   store_count STATE     how many events are in that state
#   store_ids STATE       their ids, sorted, one a line
#   store_result ID       the last result ("exit 0", "stale", ...)
#   store_attempts ID     attempts made so far
#   store_stderr ID       the handler's stderr tail kept with it
#   store_newer ID        the event that made it stale
#   store_due_ms ID       when its next attempt is due, epoch ms
#   store_results         "COUNT RESULT" lines over every event
#   store_applied_id KEY  the event whose version is applied for KEY
#   store_applied_keys    the keys with a version applied, sorted
#   store_event_file ID   the NSPS_EVENT_FILE a handler of ID sees,
#                         as a shell glob (pg: a private copy)
# Changing it as time would:
#   store_age ID SECONDS       received that long ago (queue order)
#   store_age_done ID DAYS     done that long ago (RETENTION)
#   store_age_applied KEY DAYS applied that long ago (RETENTION)
#   store_make_due ID          a retry due now, for the next worker
#
#   store_only NAME REASON     skips the test unless STORE is NAME:
#                              "skip \"$STORE: REASON\"", in the TAP
#                              output, never silently

load "${BATS_TEST_DIRNAME}/lib/pg"

STORE=${STORE:-spool}
case $STORE in
spool) STORE_VAR=SPOOL_DIR ;;
pg) STORE_VAR=DATABASE_URL ;;
*) echo "STORE must be spool or pg, not '$STORE'" >&2; exit 1 ;;
esac
STORE_WAL=${STORE_WAL:-off}
case $STORE:$STORE_WAL in
*:off|spool:on) ;;
*) echo "STORE_WAL must be off, or on with STORE=spool" >&2; exit 1 ;;
esac

store_setup_file() {
	[ "$STORE" = pg ] || return 0
	pg_start
	export PG_DIR PGHOST PGPORT PGUSER
}

store_teardown_file() {
	[ "$STORE" = pg ] && [ -n "${PG_DIR:-}" ] || return 0
	pg_ctl_init
	pg_stop
}

store_setup() {
	if [ "$STORE" = spool ]; then
		SPOOL=$BATS_TEST_TMPDIR/spool
		mkdir -p "$SPOOL"
		export SPOOL_DIR=$SPOOL
		return 0
	fi
	[ -n "${PG_DIR:-}" ] || skip "pg: no PostgreSQL"
	pg_ctl_init
	# A server a test stopped comes back for the next one.
	"${PG_CTL[@]}" status > /dev/null 2>&1 || pg_up
	PGOPTIONS="-c client_min_messages=warning" pg_db "t$BATS_TEST_NUMBER" ||
	    return 1
	# A URI: one word, for env(1) and for "$(store_env)".
	export DATABASE_URL="postgresql:///t$BATS_TEST_NUMBER?host=$PGHOST&port=$PGPORT&user=postgres"
	# Short for the tests that wait for a SIGKILLed worker's leases,
	# long enough that a worker stalled on a loaded machine (ASan, two
	# CPUs, a load of 10) still renews in time: with 1 s, one lost its
	# lease mid-handler and the key's next event began beside it.
	export LEASE_TIME=4s DB_TIMEOUT=5s
	# The worker's private copies of bodies; a SIGKILLed one leaves its
	# own behind.
	export TMPDIR=$BATS_TEST_TMPDIR
	local out
	out=$("$NSPS_DELIVER" --migrate 2>&1) ||
	    { echo "--migrate: $out" >&2; return 1; }
}

store_teardown() {
	:
}

store_reset() {
	if [ "$STORE" = spool ]; then
		rm -rf "$SPOOL"
		mkdir "$SPOOL"
	else
		pg_sql "truncate nsps_event, nsps_applied" > /dev/null
	fi
}

store_env() {
	if [ "$STORE" = spool ]; then
		echo "SPOOL_DIR=$SPOOL"
		[ "$STORE_WAL" = off ] || echo "SPOOL_WAL=on"
	else
		echo "DATABASE_URL=$DATABASE_URL"
		echo "DB_TIMEOUT=$DB_TIMEOUT"
	fi
}

store_server_env() {
	if [ "$STORE" = spool ]; then
		printf '"SPOOL_DIR" => "%s"' "$SPOOL"
		[ "$STORE_WAL" = off ] || printf ', "SPOOL_WAL" => "on"'
	else
		printf '"DATABASE_URL" => "%s", "DB_TIMEOUT" => "%s"' \
		    "$DATABASE_URL" "$DB_TIMEOUT"
	fi
}

store_post() {
	local file=$1
	shift
	# shellcheck disable=SC2046
	WRAPPER=${NSPS_FIXTURE_WRAPPER-$WRAPPER} post_event "$file" \
	    $(store_env) "$@"
}

store_post_events() {
	# shellcheck disable=SC2046
	WRAPPER=${NSPS_FIXTURE_WRAPPER-$WRAPPER} post_events \
	    $(store_env | grep -v '^SPOOL_WAL=') "$@"
}

store_crashed() {
	[ "$STORE" = pg ] || return 0
	local i
	for i in $(seq 200); do
		[ "$(pg_sql "select count(*) from nsps_event where state = 'cur'
		    and lease_until >= now()")" = 0 ] && return 0
		sleep 0.1
	done
	echo "leases still held after 20 s" >&2
	return 1
}

# store_q SQL ARG: a query on the event or key ARG, which it names as
# :'a' (psql quotes it).
store_q() {
	psql -X -A -t -v ON_ERROR_STOP=1 -v "a=$2" <<<"$1"
}

# The spool's status record: key VALUE lines, then "stderr:" and the tail.
status_key() {
	[ -e "$SPOOL/status/$1" ] || return 0
	sed -n "/^stderr:\$/q; s/^$2 //p" "$SPOOL/status/$1"
}

store_state() {
	local s
	if [ "$STORE" = pg ]; then
		store_q "select state from nsps_event where event_id = :'a'" "$1"
		return
	fi
	for s in new cur retry done failed; do
		[ ! -e "$SPOOL/$s/$1" ] || { echo "$s"; return 0; }
	done
}

store_count() {
	if [ "$STORE" = pg ]; then
		store_q "select count(*) from nsps_event where state = :'a'" "$1"
	else
		find "$SPOOL/$1" -type f 2>/dev/null | wc -l
	fi
}

store_ids() {
	if [ "$STORE" = pg ]; then
		store_q "select event_id from nsps_event where state = :'a'" "$1" |
		    LC_ALL=C sort
	else
		ls "$SPOOL/$1" | LC_ALL=C sort
	fi
}

store_result() {
	if [ "$STORE" = pg ]; then
		store_q "select result from nsps_event where event_id = :'a'" "$1"
	else
		status_key "$1" result
	fi
}

store_attempts() {
	if [ "$STORE" = pg ]; then
		store_q "select attempts from nsps_event where event_id = :'a'" "$1"
	else
		status_key "$1" attempts
	fi
}

store_stderr() {
	if [ "$STORE" = pg ]; then
		store_q "select convert_from(stderr, 'UTF8') from nsps_event
		    where event_id = :'a'" "$1"
	else
		sed '1,/^stderr:$/d' "$SPOOL/status/$1"
	fi
}

store_newer() {
	if [ "$STORE" = pg ]; then
		store_q "select newer from nsps_event where event_id = :'a'" "$1"
	else
		status_key "$1" newer
	fi
}

store_due_ms() {
	if [ "$STORE" = pg ]; then
		store_q "select (extract(epoch from due_at) * 1000)::bigint
		    from nsps_event where event_id = :'a'" "$1"
	else
		status_key "$1" next
	fi
}

store_results() {
	if [ "$STORE" = pg ]; then
		pg_sql "select count(*) || ' ' || result from nsps_event
		    group by result order by result"
	else
		grep -h '^result ' "$SPOOL"/status/* | sed 's/^result //' |
		    sort | uniq -c | sed 's/^ *//'
	fi
}

store_applied_id() {
	if [ "$STORE" = pg ]; then
		store_q "select event_id from nsps_applied where okey = :'a'" "$1"
	else
		sed -n 's/^id //p' "$SPOOL/applied/$1" 2>/dev/null
	fi
}

store_applied_keys() {
	if [ "$STORE" = pg ]; then
		pg_sql "select okey from nsps_applied" | LC_ALL=C sort
	else
		ls "$SPOOL/applied" | LC_ALL=C sort
	fi
}

store_event_file() {
	if [ "$STORE" = pg ]; then
		echo "$BATS_TEST_TMPDIR/nsps-deliver.*/$1"
	else
		echo "$(realpath "$SPOOL")/cur/$1"
	fi
}

store_age() {
	if [ "$STORE" = pg ]; then
		store_q "update nsps_event set received = now() - interval
		    '$2 seconds' where event_id = :'a'" "$1" > /dev/null
	else
		touch -d "-$2 seconds" "$SPOOL/new/$1"
	fi
}

store_age_done() {
	if [ "$STORE" = pg ]; then
		store_q "update nsps_event set done_at = now() - interval
		    '$2 days' where event_id = :'a'" "$1" > /dev/null
	else
		touch -d "-$2 days" "$SPOOL/done/$1"
	fi
}

store_age_applied() {
	if [ "$STORE" = pg ]; then
		store_q "update nsps_applied set at = now() - interval
		    '$2 days' where okey = :'a'" "$1" > /dev/null
	else
		touch -d "-$2 days" "$SPOOL/applied/$1"
	fi
}

store_make_due() {
	if [ "$STORE" = pg ]; then
		store_q "update nsps_event set due_at = now()
		    where event_id = :'a'" "$1" > /dev/null
	else
		sed -i '/^stderr:$/,$!s/^next .*/next 0/' "$SPOOL/status/$1"
	fi
}

store_only() {
	[ "$STORE" = "$1" ] || skip "$STORE: $2"
}
