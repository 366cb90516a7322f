#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real lighttpd with mod_cgi: the configuration is
# contrib/lighttpd-cgi.conf with only paths changed, included from a
# minimal server configuration on 127.0.0.1 and a free port.

load helper
load lib/servers
load lib/contract
load lib/tls

CONNECTOR_MAX=65536

launch() {
	local port tls
	derive_config "$TESTS_DIR/../contrib/lighttpd-cgi.conf" "$D/nsps.conf" \
	    "/usr/local/sbin/nsps-connector=$D/bin/nsps-connector" \
	    "/etc/nsps/connector.env=$D/nsps.env" \
	    "/var/log/lighttpd/nsps-connector.log=$D/run/breakage.log" || return 1
	[ -f "$D/tls/fullchain.pem" ] || tls_make "$D/tls" || return 1
	port=$(free_port) || return 1
	tls=$(lighttpd_tls "$D" "$port") || return 1
	lighttpd_start -u lighttpd /nsps/health "$D/nsps.conf" "$tls" || return 1
	BASE=https://127.0.0.1:$port/nsps
	PLAIN=http://127.0.0.1:$LIGHTTPD_PORT/nsps
}

setup_file() {
	command -v lighttpd >/dev/null ||
	    skip "lighttpd is not installed (.ci/deps installs it)"
	suite_setup -b "$CONNECTOR_MAX" launch
	export BASE PLAIN LOG=$D/run/breakage.log
}

teardown_file() {
	suite_teardown
}

@test "lighttpd-cgi: HTTPS (lighttpd-tls.conf) with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "lighttpd-cgi: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "lighttpd-cgi: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "lighttpd-cgi: the NSPS documentation's sample is 202 and logged in server.breakagelog" {
	contract_doc_sample "$BASE" "$LOG"
}
@test "lighttpd-cgi: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "lighttpd-cgi: missing token is 401" { contract_missing_token "$BASE" "$LOG"; }
@test "lighttpd-cgi: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "lighttpd-cgi: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "lighttpd-cgi: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "lighttpd-cgi: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "lighttpd-cgi: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "lighttpd-cgi: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
@test "lighttpd-cgi: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "lighttpd-cgi: over server.max-request-size is lighttpd's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "lighttpd-cgi: 50 events in a row are all 202" {
	contract_many "$BASE" "$LOG" 50
}
@test "lighttpd-cgi: POST without Content-Length is lighttpd's 411" {
	contract_no_length "$BASE" "$LOG" 411 server
}
@test "lighttpd-cgi: Content-Length -1 is lighttpd's 400" {
	contract_bad_length "$BASE" "$LOG" 400 server
}
@test "lighttpd-cgi: a chunked body is buffered and the event is 202" {
	contract_chunked "$BASE" "$LOG" 202 connector
}

# CGI reads its configuration per request: with no token configured it
# answers 500 INTERNAL_ERROR and logs why, and never takes a default.
@test "lighttpd-cgi: no token configured is a 500 INTERNAL_ERROR and a log line" {
	cp "$D/nsps.env" "$D/nsps.env.saved"
	grep -v '^API_TOKEN_FILE=' "$D/nsps.env.saved" > "$D/nsps.env"
	log_mark "$LOG"
	post "$BASE/process-event" "$FIX/nsps-doc-sample.json"
	cp "$D/nsps.env.saved" "$D/nsps.env"
	assert_error 500 INTERNAL_ERROR
	assert_logged_part "$LOG" "500 INTERNAL_ERROR"
	log_new "$LOG" | grep -qF "no API token configured"
	post "$BASE/process-event" "$FIX/nsps-doc-sample.json"
	assert_status 202
}
