#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real lighttpd with mod_fastcgi: the configuration
# is contrib/lighttpd-fastcgi.conf with only paths changed, included
# from a minimal server configuration on 127.0.0.1 and a free port.
# lighttpd puts the connector's stderr on its own stderr.

load helper
load lib/servers
load lib/contract
load lib/tls

# The connector's limit is set below the server's so that both refusals
# can be seen: 1 MiB is refused by the connector, 3 MiB by lighttpd.
CONNECTOR_MAX=65536

launch() {
	local port tls
	derive_config "$TESTS_DIR/../contrib/lighttpd-fastcgi.conf" "$D/nsps.conf" \
	    "/usr/local/sbin/nsps-connector=$D/nsps-connector" \
	    "/run/lighttpd/nsps-connector.sock=$D/run/nsps.sock" \
	    "/etc/nsps/connector.env=$D/nsps.env" || return 1
	# A secret in lighttpd's environment that must not reach the
	# connector (bin-copy-environment).
	[ -f "$D/tls/fullchain.pem" ] || tls_make "$D/tls" || return 1
	port=$(free_port) || return 1
	tls=$(lighttpd_tls "$D" "$port") || return 1
	LIGHTTPD_SECRET=do-not-leak \
	    lighttpd_start -u lighttpd /nsps/health "$D/nsps.conf" "$tls" || return 1
	BASE=https://127.0.0.1:$port/nsps
	PLAIN=http://127.0.0.1:$LIGHTTPD_PORT/nsps
}

setup_file() {
	command -v lighttpd >/dev/null ||
	    skip "lighttpd is not installed (.ci/deps installs it)"
	suite_setup "$CONNECTOR_MAX" launch
	export BASE PLAIN LOG=$D/lighttpd.err
}

teardown_file() {
	suite_teardown
}

@test "lighttpd: derived config keeps every directive of the recipe" {
	for d in '"bin-path"' '"check-local" => "disable"' '"max-procs"' \
	    '"bin-environment"' '"bin-copy-environment"' 'server.max-request-size = 2048'; do
		grep -qF -- "$d" "$D/nsps.conf" || fail_with "no $d" || return 1
	done
	[ "$(grep -vc '^[[:space:]]*#' "$D/nsps.conf")" = \
	    "$(grep -vc '^[[:space:]]*#' "$TESTS_DIR/../contrib/lighttpd-fastcgi.conf")" ]
}

@test "lighttpd: the connector gets only the environment the recipe names" {
	local pid kids env
	pid=$(awk '$2 == "lighttpd" { print $1; exit }' "$SERVERS_PIDS")
	kids=$(ps -o pid= --ppid "$pid")
	[ -n "$kids" ] || fail_with "lighttpd has no connector processes"
	[ "$(wc -w <<<"$kids")" -eq 2 ] || fail_with "max-procs 2: $kids"
	for k in $kids; do
		[ "$(ps -o comm= -p "$k")" = nsps-connector ] || return 1
		env=$(tr '\0' '\n' < "/proc/$k/environ")
		grep -qx "NSPS_ENV_FILE=$D/nsps.env" <<<"$env" ||
		    fail_with "no NSPS_ENV_FILE: $env" || return 1
		! grep -q LIGHTTPD_SECRET <<<"$env" ||
		    fail_with "lighttpd's environment leaked" || return 1
	done
}

@test "lighttpd: HTTPS (lighttpd-tls.conf) with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "lighttpd: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "lighttpd: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "lighttpd: the NSPS documentation's sample is 202 and logged on lighttpd's stderr" {
	contract_doc_sample "$BASE" "$LOG"
	! grep -qF "Received event" "$D/run/lighttpd-error.log"
}
@test "lighttpd: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "lighttpd: missing token is 401" { contract_missing_token "$BASE" "$LOG"; }
@test "lighttpd: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "lighttpd: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "lighttpd: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "lighttpd: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "lighttpd: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "lighttpd: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
@test "lighttpd: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "lighttpd: over server.max-request-size is lighttpd's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "lighttpd: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }

# Rows lighttpd answers itself, as they really come out.
@test "lighttpd: POST without Content-Length is lighttpd's 411" {
	contract_no_length "$BASE" "$LOG" 411 server
}
@test "lighttpd: Content-Length -1 is lighttpd's 400" {
	contract_bad_length "$BASE" "$LOG" 400 server
}
@test "lighttpd: a chunked body is buffered and the event is 202" {
	contract_chunked "$BASE" "$LOG" 202 connector
}
@test "lighttpd: bodies across two 8 KiB boundaries on one kept connection are all answered" {
	body_sweep "$BASE/process-event" "$LOG" 7600 7640 15800 15840
}
@test "lighttpd: 16 connections for 3 s: every answer a 202, none slower than 1 s" {
	command -v wrk >/dev/null || skip "wrk is not installed (.ci/deps installs it)"
	load_check "$BASE" 3
}

# No token configured: a FastCGI connector refuses to start (exit 78)
# rather than answer anything, and says why on lighttpd's stderr.
@test "lighttpd: no token configured: the connector refuses to start" {
	local port
	port=$(free_port)
	mkdir -p "$D/bad"
	[ -z "$(server_user)" ] || chown "$(server_user)" "$D/bad"
	echo "MAX_BODY_BYTES=1024" > "$D/bad/nsps.env"
	sed -e "s|$D/nsps.env|$D/bad/nsps.env|" -e "s|$D/run/|$D/bad/|" \
	    "$D/nsps.conf" > "$D/bad/nsps.conf"
	lighttpd_conf -u lighttpd-bad "$port" "$D/bad/nsps.conf"
	start_bg lighttpd-bad lighttpd -D -f "$D/lighttpd-bad.conf"
	for i in $(seq 1 100); do
		grep -qF "no API token configured" "$D/lighttpd-bad.err" && break
		sleep 0.05
	done
	run -0 grep -F "no API token configured" "$D/lighttpd-bad.err"
	# lighttpd gives up at start-up when the child dies at once; when
	# it saw the child alive first (a loaded machine), it keeps
	# respawning it and answers the mount itself, never with a 2xx.
	sleep 0.2
	if alive "$LAST_PID"; then
		http GET "http://127.0.0.1:$port/nsps/health"
		[[ $resp_status == 5* ]] || fail_with "expected a 5xx" || return 1
		assert_from server
	fi
}
