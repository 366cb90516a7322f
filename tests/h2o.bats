#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real H2O 2.2 (fastcgi.connect), over HTTPS:
# contrib/h2o.conf with only its host names, ports (on 127.0.0.1),
# paths, user and certificate changed; the certificate is the throwaway
# one of tests/lib/tls.  The connector runs as the recipe says:
# spawn-fcgi -n (the unit's ExecStart) and multiwatch with two
# processes; its stderr is spawn-fcgi's.

load helper
load lib/servers
load lib/contract
load lib/tls

CONNECTOR_MAX=65536

launch() {
	local port plain user
	port=$(free_port) && plain=$(free_port) || return 1
	user=$(server_user)
	derive_config "$CONTRIB_DIR/h2o.conf" "$D/nsps.conf" \
	    "user: debian-h2o=${user:+user: $user}" \
	    "access-log: \"|rotatelogs -l -f -L /var/log/h2o/access.log -p /usr/share/h2o/compress_logs /var/log/h2o/access.log.%Y-%m-%d 86400\"=access-log: $D/h2o-access.log" \
	    "error-log: \"|rotatelogs -l -f -L /var/log/h2o/error.log -p /usr/share/h2o/compress_logs /var/log/h2o/error.log.%Y-%m-%d 86400\"=error-log: $D/h2o-error.log" \
	    "pid-file: /run/h2o.pid=pid-file: $D/run/h2o.pid" \
	    "EXAMPLE:443=127.0.0.1:$port" \
	    "EXAMPLE:80=127.0.0.1:$plain" \
	    "https://EXAMPLE/=https://127.0.0.1:$port/" \
	    "      port: 443=      host: 127.0.0.1
      port: $port" \
	    "      port: 80=      host: 127.0.0.1
      port: $plain" \
	    "/etc/letsencrypt/live/EXAMPLE=$D/tls" \
	    "/run/nsps-connector/fcgi.sock=$D/run/fcgi.sock" || return 1
	spawn_fcgi_start "$D/run/fcgi.sock" "$D/bin/nsps-connector" \
	    "$D/nsps.env" "$(front_group)" 2 || return 1
	BASE=https://127.0.0.1:$port/nsps
	PLAIN=http://127.0.0.1:$plain/nsps
	h2o_start h2o "$D/nsps.conf" "$BASE/health"
}

setup_file() {
	command -v h2o >/dev/null ||
	    skip "h2o is not installed (.ci/deps installs it)"
	command -v spawn-fcgi >/dev/null && command -v multiwatch >/dev/null ||
	    skip "spawn-fcgi or multiwatch is not installed (.ci/deps installs them)"
	suite_setup -b "$CONNECTOR_MAX" tls_launch
	export BASE PLAIN LOG=$D/spawn-fcgi.err
}

tls_launch() {
	[ -f "$D/tls/combined.pem" ] || tls_make "$D/tls" || return 1
	launch
}

teardown_file() {
	suite_teardown
}

@test "h2o: derived config keeps every directive of the recipe" {
	for d in 'fastcgi.connect:' 'CONTENT_LENGTH"].to_i > 2097152' \
	    'Strict-Transport-Security' 'fastcgi.timeout.keepalive: 0' \
	    "certificate-file: $D/tls/fullchain.pem"; do
		grep -qF -- "$d" "$D/nsps.conf" || fail_with "no $d" || return 1
	done
	# Two more lines: the listeners' host: 127.0.0.1.
	[ "$(grep -vc '^[[:space:]]*#' "$D/nsps.conf")" = \
	    "$(($(grep -vc '^[[:space:]]*#' "$CONTRIB_DIR/h2o.conf") + 2))" ]
}
@test "h2o: HTTPS with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "h2o: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "h2o: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "h2o: two connector processes serve the socket" {
	local kids
	kids=$(ps -e -o pgid=,comm= | awk -v g="$(awk '$2 == "spawn-fcgi" { print $1 }' "$SERVERS_PIDS")" \
	    '$1 == g && $2 == "nsps-connector"' | wc -l)
	[ "$kids" -eq 2 ] || fail_with "$kids connector processes"
}
@test "h2o: the NSPS documentation's sample is 202 and logged on spawn-fcgi's stderr" {
	contract_doc_sample "$BASE" "$LOG"
}
@test "h2o: the recipe lets this host read the metrics path" { contract_metrics_from_here "$BASE" "$LOG"; }
@test "h2o: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "h2o: missing token is 401" { contract_missing_token "$BASE" "$LOG"; }
@test "h2o: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "h2o: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "h2o: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "h2o: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "h2o: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "h2o: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
@test "h2o: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "h2o: over the recipe's Content-Length limit is H2O's own 413 (mruby)" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "h2o: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }
# H2O sends no CONTENT_LENGTH; the connector reads FCGI_STDIN to its
# end: an empty body, which is no event.
@test "h2o: POST without Content-Length is the connector's 422 (empty body)" {
	contract_no_length "$BASE" "$LOG" 422 connector
}
# Over HTTP/2 a content-length of -1 makes the stream malformed (RFC 9113
# 8.1.1); the row of the contract is checked over HTTP/1.1.
@test "h2o: Content-Length -1 over HTTP/1.1 is H2O's 400" {
	http POST "$BASE/process-event" --http1.1 -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json' -H 'Content-Length: -1' \
	    --data-binary '{}'
	assert_answer 400 server
}
@test "h2o: a chunked body is buffered and the event is 202" {
	contract_chunked "$BASE" "$LOG" 202 connector
}
@test "h2o: Content-Length just over the limit is H2O's 413 (mruby), at it the connector's" {
	head -c 2097153 /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big.json"
	post "$BASE/process-event" "$BATS_TEST_TMPDIR/big.json"
	assert_answer 413 server
	head -c 2097152 /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big.json"
	post "$BASE/process-event" "$BATS_TEST_TMPDIR/big.json"
	assert_answer 413 connector
}
@test "h2o: bodies across two 8 KiB boundaries on one kept connection are all answered" {
	body_sweep "$BASE/process-event" "$LOG" 7600 7640 15800 15840
}
@test "h2o: 16 connections for 3 s: every answer a 202, none slower than 1 s" {
	command -v wrk >/dev/null || skip "wrk is not installed (.ci/deps installs it)"
	load_check "$BASE" 3
}
