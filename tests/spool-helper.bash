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
