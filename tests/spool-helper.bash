# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The spool suites: a real lighttpd on 127.0.0.1 that spawns connectors
# through bin-path (and respawns them when they die), and curl batches
# sent over parallel connections.

# minimal_event ID: the smallest event the default REQUIRED_FIELDS take.
minimal_event() {
	printf '{"event_id":"%s","data":{"event_type":"SIM/Updated"},"pb_data":{"account_info":{"bill_status":"open"}}}' "$1"
}

# start_lighttpd SPOOL PROCS [ENV]: lighttpd on a free port with PROCS
# connectors writing to SPOOL, ENV more of their bin-environment
# ('"KEY" => "value"').  Sets $port, $lighttpd_pid, $ldir.
start_lighttpd() {
	start_lighttpd_env "\"SPOOL_DIR\" => \"$1\"" "$2" "${3:-}"
}

# start_lighttpd_env STORE-ENV PROCS [ENV]: the same with the store in
# STORE-ENV, the bin-environment of lib/store.bash's store_server_env.
start_lighttpd_env() {
	local store=$1 procs=$2 extra=${3:+, $3}
	ldir=$BATS_TEST_TMPDIR/lighttpd
	servers_init "$ldir"
	cat > "$ldir/spool.conf" <<-CONF
	server.modules += ( "mod_fastcgi" )
	fastcgi.server = ( "/" => ((
		"socket" => "$ldir/fcgi.sock",
		"bin-path" => "$CONNECTOR",
		"check-local" => "disable",
		"max-procs" => $procs,
		"bin-environment" => ( "API_TOKEN" => "$TOKEN",
		    $store$extra ),
	)) )
	CONF
	retry 3 lighttpd_start lighttpd /health "$ldir/spool.conf" \
	    'server.max-connections = 256' || return 1
	port=$LIGHTTPD_PORT
	lighttpd_pid=$LIGHTTPD_PID
}

# stop_lighttpd: lighttpd and the connectors it spawned (its process
# group), also when the test failed half-way.
stop_lighttpd() {
	servers_stop_all
	lighttpd_pid=
}

# curl_batch CONFIG OUT: sends every request of a curl config file over
# 16 parallel connections; OUT gets "CODE ID" per request.
curl_batch() {
	curl --parallel --parallel-max 16 -s -K "$1" > "$2.raw" 2>/dev/null
	sed -n 's/^\([0-9][0-9][0-9]\) .*[?]id=\(.*\)$/\1 \2/p' "$2.raw" > "$2"
}

# curl_config PREFIX N COPIES: a curl config sending events PREFIX-1 to
# PREFIX-N, each COPIES times in a row (so the copies run in parallel).
curl_config() {
	awk -v prefix="$1" -v n="$2" -v copies="$3" -v port="$port" \
	    -v token="$TOKEN" 'BEGIN {
		for (i = 1; i <= n; i++) for (c = 1; c <= copies; c++) {
			id = prefix "-" i
			if (i > 1 || c > 1) print "next"
			printf "url = \"http://127.0.0.1:%s/process-event?id=%s\"\n", port, id
			printf "header = \"Authorization: Bearer %s\"\n", token
			print "header = \"Content-Type: application/json\""
			printf "data-binary = \"{\\\"event_id\\\":\\\"%s\\\",\\\"data\\\":{\\\"event_type\\\":\\\"SIM/Updated\\\"},\\\"pb_data\\\":{\\\"account_info\\\":{\\\"bill_status\\\":\\\"open\\\"}}}\"\n", id
			print "output = \"/dev/null\""
			print "max-time = 20"
			print "write-out = \"%{http_code} %{exitcode} %{url}\\n\""
		}
	}'
}

# spool_meta SPOOL ID: the metadata the connector keeps with the body,
# in its extended attribute or, where there is none, in meta/; the
# worker looks in the same order.
spool_meta() {
	getfattr --absolute-names --only-values -n user.nsps "$1/ids/$2" 2>/dev/null ||
	    cat "$1/meta/$2"
}

# meta_describes SPOOL ID: the metadata kept with ids/ID describes that
# body: its size, a CRC-32C and an arrival time.
meta_describes() {
	spool_meta "$1" "$2" | jq -e --argjson size "$(stat -c %s "$1/ids/$2")" \
	    '.size == $size and (.crc32c | type) == "number" and
	    (.received_ms | type) == "number"' > /dev/null ||
	    { echo "$2: no metadata of its body"; return 1; }
}

# check_new_file SPOOL ID: new/ID is the complete event, the same file
# as its dedupe marker.  No forks: it runs for every stored event.
# check_whole FILE ID: FILE is minimal_event ID, whole.
check_whole() {
	local content= want
	IFS= read -r -d '' content < "$1" || true
	printf -v want '{"event_id":"%s","data":{"event_type":"SIM/Updated"},"pb_data":{"account_info":{"bill_status":"open"}}}' "$2"
	[ "$content" = "$want" ] || { echo "$2: ${1%/*}/ holds something else"; return 1; }
}

check_new_file() {
	local spool=$1 id=$2
	[ -f "$spool/new/$id" ] || { echo "$id: not in new/"; return 1; }
	check_whole "$spool/new/$id" "$id" || return 1
	[ "$spool/new/$id" -ef "$spool/ids/$id" ] ||
	    { echo "$id: marker is another file"; return 1; }
}

# dedupe_race [ENV]: 1000 ids sent 3 times over 16 connections to 4
# connectors (with ENV in their environment); each is stored once.
dedupe_race() {
	start_lighttpd "$SPOOL" 4 "${1:-}"
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

# checkpoints: nsps-deliver --checkpoint every 200 ms, one line per
# run in $BATS_TEST_TMPDIR/checkpoints.
checkpoints() {
	while :; do
		"$NSPS_DELIVER" -d "$SPOOL" --checkpoint > /dev/null 2>&1 &&
		    echo ok >> "$BATS_TEST_TMPDIR/checkpoints"
		sleep 0.2
	done
}

# kills_under_load [ENV [CHECKPOINTS]]: connectors killed with SIGKILL
# under load, with ENV in their environment, and with CHECKPOINTS set
# nsps-deliver --checkpoint running all along; no 2xx event is lost.
kills_under_load() {
	start_lighttpd "$SPOOL" 4 "${1:-}"
	[ -z "${2:-}" ] || { checkpoints & checkpoint_pid=$!; }
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
	if [ -n "${2:-}" ]; then
		kill "$checkpoint_pid"
		wait "$checkpoint_pid" 2>/dev/null || true
		checkpoint_pid=
		echo "# $(wc -l < "$BATS_TEST_TMPDIR/checkpoints") checkpoints ran during the kills" >&3
		[ "$(wc -l < "$BATS_TEST_TMPDIR/checkpoints")" -ge 5 ] ||
		    fail_with "too few checkpoints: the test did not test"
	fi
	stop_lighttpd
	kills=$(wc -l < "$BATS_TEST_TMPDIR/kills")
	sent=$(wc -l < "$BATS_TEST_TMPDIR/codes")
	c202=$(grep -c '^202 ' "$BATS_TEST_TMPDIR/codes" || true)
	c200=$(grep -c '^200 ' "$BATS_TEST_TMPDIR/codes" || true)
	other=$(grep -vc '^20[02] ' "$BATS_TEST_TMPDIR/codes" || true)
	innew=$(ls "$SPOOL/new" | wc -l)
	intmp=$(find "$SPOOL/tmp" -name '*,b' -links +1 | wc -l)
	alone=$(find "$SPOOL/ids" -type f -links 1 | wc -l)
	echo "# $sent requests in $round rounds, $kills connectors killed: $c202 answered 202, $c200 answered 200, $other failed; $innew events in new/, $intmp complete in tmp/ and $alone markers alone for recovery" >&3
	[ "$kills" -ge 10 ] || fail_with "only $kills kills: the test did not test"
	[ "$sent" -eq $((round * 600)) ]
	# Every 202 is in new/ exactly once, complete.
	[ "$(awk '$1 == 202 { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort | uniq -d)" = "" ]
	for id in $(awk '$1 == 202 { print $2 }' "$BATS_TEST_TMPDIR/codes"); do
		check_new_file "$SPOOL" "$id" || return 1
	done
	# Every 200 is in new/, or complete in tmp/ beside its marker, or
	# (killed between the gate and new/) the whole marker alone.
	for id in $(awk '$1 == 200 { print $2 }' "$BATS_TEST_TMPDIR/codes" | sort -u); do
		[ -e "$SPOOL/new/$id" ] && { check_new_file "$SPOOL" "$id" || return 1; continue; }
		if [ "$(stat -c %h "$SPOOL/ids/$id")" = 1 ]; then
			check_whole "$SPOOL/ids/$id" "$id" || return 1
			continue
		fi
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
