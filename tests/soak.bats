#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Soak: 100,000+ requests from wrk through lighttpd and one FastCGI
# connector process that lighttpd spawns itself (bin-path), on loopback.
# A 2 s wrk run warms it up.  A Lua script rotates valid (202), wrong-token (401), invalid (422) and
# over-limit (413) requests.  0 connector 5xx; the connector's open fds
# unchanged and its RSS within SOAK_RSS_MARGIN_KB of the value after a
# warm-up.  The figures are printed into the test log; they are not
# benchmarks (wrk shares the machine), only the bounds are asserted.

load helper
load lib/servers
load lib/proc

SOAK_REQUESTS=100000
SOAK_RSS_MARGIN_KB=1024
SOAK_RUN_SECONDS=10
SOAK_NOTE=
# NSPS_LONG_TESTS, set by .ci/run for the trees that do not run the long
# tests in full: "light: WHY" soaks with 10,000 requests (the RSS and fd
# bounds still checked), "skip: WHY" skips.  Unset: the full soak.
case ${NSPS_LONG_TESTS:-} in
light:*)
	SOAK_REQUESTS=10000 SOAK_RUN_SECONDS=2
	SOAK_NOTE=" (light:${NSPS_LONG_TESTS#light:})" ;;
esac

setup() {
	if [[ ${NSPS_LONG_TESTS:-} == skip:* ]]; then
		local why=${NSPS_LONG_TESTS#skip:}
		skip "${why# }"
	fi
	command -v lighttpd >/dev/null || skip "lighttpd is not installed (.ci/deps installs it)"
	command -v wrk >/dev/null || skip "wrk is not installed (.ci/deps installs it)"
	DIR=$BATS_TEST_TMPDIR
	servers_init "$DIR/servers"
}

teardown() {
	servers_stop_all
}

# Starts lighttpd on a free loopback port; sets PORT and LPID.
start_lighttpd() {
	cat > "$DIR/soak.conf" <<-EOC
	server.modules += ( "mod_fastcgi" )
	fastcgi.server = ( "/process-event" => ((
		"socket" => "$DIR/fcgi.sock",
		"bin-path" => "$CONNECTOR",
		"max-procs" => 1,
		"check-local" => "disable",
		"bin-environment" => (
			"API_TOKEN" => "$TOKEN",
			"MAX_BODY_BYTES" => "4096",
			# The RSS bound counts growth, not mimalloc's timed
			# decommits: see tests/malformed.bats.
			"MIMALLOC_ALLOW_DECOMMIT" => "0"
		)
	)) )
	EOC
	retry 3 lighttpd_start lighttpd / "$DIR/soak.conf" \
	    'server.max-keep-alive-requests = 10000' ||
	    fail_with "lighttpd did not start" || return 1
	PORT=$LIGHTTPD_PORT
	LPID=$LIGHTTPD_PID
}

# The connector lighttpd spawned: its child running our binary.
connector_pid() {
	local p
	for p in $(proc_children "$LPID"); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$CONNECTOR")" ] &&
		    { echo "$p"; return 0; }
	done
	return 1
}

# run_wrk SECONDS: one wrk run, 2 threads and 16 connections, its
# summary appended to wrk.out.
run_wrk() {
	SOAK_TOKEN=$TOKEN wrk -t2 -c16 -d"$1"s --timeout 5s \
	    -s "$TESTS_DIR/soak.lua" "http://127.0.0.1:$PORT/process-event" \
	    >> "$DIR/wrk.out" 2>&1
}

# count_status CODE: answers with that status over all runs so far.
count_status() {
	awk -v s="$1" '$1 == "status" && $2 == s {n += $3} END {print n + 0}' "$DIR/wrk.out"
}

@test "soak: $SOAK_REQUESTS mixed requests through lighttpd and one FastCGI connector$SOAK_NOTE" {
	local pid rss0 rss1 fd0 fd1 total=0 s5 code run
	start_lighttpd
	pid=$(connector_pid) || fail_with "no connector process under lighttpd"

	run_wrk 2 || fail_with "wrk failed" "$(cat "$DIR/wrk.out")"
	sleep 0.5
	rss0=$(proc_rss_kb "$pid")
	fd0=$(proc_fds "$pid")
	: > "$DIR/wrk.out"

	# wrk runs for a time, not a count: runs of 10 s (2 s when light)
	# until there are enough.
	for run in $(seq 30); do
		run_wrk "$SOAK_RUN_SECONDS" || fail_with "wrk failed" "$(cat "$DIR/wrk.out")"
		total=$(awk '$1 == "requests" {n += $2} END {print n + 0}' "$DIR/wrk.out")
		[ "$total" -ge "$SOAK_REQUESTS" ] && break
	done
	sleep 0.5
	kill -0 "$pid" || fail_with "the connector died"
	[ "$(connector_pid)" = "$pid" ] || fail_with "lighttpd had to respawn the connector"
	rss1=$(proc_rss_kb "$pid")
	fd1=$(proc_fds "$pid")

	s5=$(awk '$1 == "status" && $2 >= 500 {n += $3} END {print n + 0}' "$DIR/wrk.out")
	{
		echo "# soak: $total requests: 202=$(count_status 202)" \
		    "401=$(count_status 401) 422=$(count_status 422)" \
		    "413=$(count_status 413) 5xx=$s5"
		echo "# soak: wrk runs:" $(awk '$1 == "Requests/sec:" {printf "%d/s ", $2}' "$DIR/wrk.out") \
		    "socket errors (connect read write timeout):" \
		    $(awk '$1 == "errors" {c += $2; r += $3; w += $4; t += $6} END {print c, r, w, t}' "$DIR/wrk.out")
		echo "# soak: connector RSS ${rss0} KiB after warm-up, ${rss1} KiB at the end; fds $fd0 then $fd1"
	} >&3

	[ "$total" -ge "$SOAK_REQUESTS" ] || fail_with "only $total requests"
	[ "$s5" -eq 0 ] || fail_with "$s5 answers were 5xx" "$(cat "$DIR/wrk.out")"
	for code in 202 401 422 413; do
		[ "$(count_status $code)" -gt 0 ] || fail_with "no $code answers"
	done
	[ "$(awk '$1 == "status" && $2 !~ /^(202|401|422|413)$/' "$DIR/wrk.out")" = "" ] ||
	    fail_with "unexpected statuses" "$(cat "$DIR/wrk.out")"
	assert_steady soak "$fd0" "$fd1" "$rss0" "$rss1" "$SOAK_RSS_MARGIN_KB"
}
