# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The write-ahead log's suites (tests/wal.bats, tests/wal-load.bats,
# tests/wal-group.bats):
# events through lighttpd's connectors, one nsps-deliver pass, the log
# as --stats shows it.  They use $SPOOL, $port (lib/servers.bash and
# spool-helper.bash) and $BATS_TEST_TMPDIR.

WAL_ENV='"SPOOL_WAL" => "on"'

# post_ids PREFIX N: PREFIX-1 to PREFIX-N once each through lighttpd;
# $BATS_TEST_TMPDIR/codes gets "CODE ID" per request.
post_ids() {
	curl_config "$1" "$2" 1 > "$BATS_TEST_TMPDIR/curl.conf"
	curl_batch "$BATS_TEST_TMPDIR/curl.conf" "$BATS_TEST_TMPDIR/codes"
}

# post_one ID: one event through lighttpd; $code gets the status.
post_one() {
	code=$(minimal_event "$1" | curl -s -o /dev/null -w '%{http_code}' \
	    -m 20 -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json' --data-binary @- \
	    "http://127.0.0.1:$port/process-event")
}

# deliver_once: recovery and one worker pass; each delivered event's
# "ID TYPE" is appended to $BATS_TEST_TMPDIR/delivered.
deliver_once() {
	run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --once -- /bin/sh -c \
	    'echo "$NSPS_EVENT_ID $NSPS_EVENT_TYPE" >> "$0"' "$BATS_TEST_TMPDIR/delivered"
	[ "$status" -eq 0 ] || fail_with "nsps-deliver exit $status" "$stderr"
}

# stats: nsps-deliver --stats, as JSON in $output.
stats() {
	run --separate-stderr "$NSPS_DELIVER" -d "$SPOOL" --stats
	[ "$status" -eq 0 ] || fail_with "--stats exit $status" "$stderr"
}

# stat_is PATH VALUE: the --stats member PATH (jq) is VALUE.
stat_is() {
	local v
	v=$(jq -r "$1" <<<"$output")
	[ "$v" = "$2" ] || fail_with "--stats $1: $v, not $2" "$output"
}

# delivered_once PREFIX N: PREFIX-1..N each delivered exactly once, with
# the connector's metadata.
delivered_once() {
	local want
	want=$(for i in $(seq "$2"); do echo "$1-$i SIM/Updated"; done | sort)
	[ "$(grep "^$1-" "$BATS_TEST_TMPDIR/delivered" | sort)" = "$want" ] ||
	    fail_with "not each of $1-1..$2 delivered once:" \
	    "$(grep "^$1-" "$BATS_TEST_TMPDIR/delivered" | sort | uniq -c | awk '$1 != 1' | head)"
}

# segment: the one segment of the log.
segment() {
	local s
	s=$(ls "$SPOOL/wal")
	[ "$(wc -w <<<"$s")" = 1 ] || fail_with "segments: $s"
	echo "$SPOOL/wal/$s"
}

# fault_env CALL SKIP [MORE]: lighttpd bin-environment entries that make
# the connector's SKIP+1th CALL fail (tests/fault.c).
fault_env() {
	printf '%s, "LD_PRELOAD" => "%s", "NSPS_FAULT" => "%s", "NSPS_FAULT_SKIP" => "%s"%s' \
	    "$WAL_ENV" "$NSPS_FAULT_SO" "$1" "$2" "${3:+, $3}"
}
