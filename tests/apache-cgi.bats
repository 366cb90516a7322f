#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real Apache httpd 2.4 with mod_cgid: the recipe
# is contrib/apache-cgi.conf with only paths changed, included in a
# minimal server of the suite's own on 127.0.0.1 and a free port.  The
# connector's stderr goes to Apache's ErrorLog, inside Apache's own
# prefix and suffix, so log lines are looked for inside the line.

load helper
load lib/servers
load lib/contract
load lib/apache
load lib/tls

export LOG_EXACT=0

CONNECTOR_MAX=65536

launch() {
	[ -f "$D/tls/fullchain.pem" ] || tls_make "$D/tls" || return 1
	local APACHE_TLS=1
	derive_config "$TESTS_DIR/../contrib/apache-cgi.conf" "$D/nsps.conf" \
	    "/usr/local/sbin/nsps-connector=$D/bin/nsps-connector" \
	    "/usr/local/sbin>=$D/bin>" \
	    "/etc/nsps/connector.env=$D/nsps.env" || return 1
	APACHE_EXTRA="ScriptSock $D/run/cgid.sock" apache_launch cgid env
}

setup_file() {
	[ -n "$(apache_binary)" ] ||
	    skip "apache2 is not installed (.ci/deps installs it)"
	suite_setup -b "$CONNECTOR_MAX" launch
	export BASE PLAIN LOG=$D/error.log
}

teardown_file() {
	suite_teardown
}

@test "apache-cgi: HTTPS (apache-tls.conf) with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "apache-cgi: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "apache-cgi: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "apache-cgi: the NSPS documentation's sample is 202 and logged in the ErrorLog" {
	contract_doc_sample "$BASE" "$LOG"
}
@test "apache-cgi: the recipe lets this host read the metrics path" { contract_metrics_from_here "$BASE" "$LOG"; }
@test "apache-cgi: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "apache-cgi: missing token is 401 (and the sample 202: CGIPassAuth works)" {
	contract_missing_token "$BASE" "$LOG"
	contract_doc_sample "$BASE" "$LOG"
}
@test "apache-cgi: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "apache-cgi: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "apache-cgi: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "apache-cgi: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "apache-cgi: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "apache-cgi: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
# The refused body is drained, so Apache can deliver the 413 instead of
# resetting the connection while it still writes the body.
@test "apache-cgi: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "apache-cgi: over LimitRequestBody is Apache's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "apache-cgi: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }
# The recipe's <If> answers a POST without Content-Length itself.
@test "apache-cgi: POST without Content-Length is Apache's 411" {
	contract_no_length "$BASE" "$LOG" 411 server
}
@test "apache-cgi: Content-Length -1 is Apache's 400" {
	contract_bad_length "$BASE" "$LOG" 400 server
}
# mod_cgid would stream a chunked body to the program with no
# CONTENT_LENGTH; the recipe refuses it first, every time.
@test "apache-cgi: a chunked body is Apache's 411, every time" {
	for i in $(seq 1 20); do
		contract_chunked "$BASE" "$LOG" 411 server || return 1
	done
}
@test "apache-cgi: a big chunked body is Apache's 411 too" {
	contract_chunked_over_limit "$BASE" "$LOG" $((3 * 1024 * 1024)) 411 server
}

# The trap the recipe avoids: the same recipe without CGIPassAuth.
# Apache then drops Authorization and the valid token is refused.
@test "apache-cgi: without CGIPassAuth a valid token is 401 (why the recipe sets it)" {
	local D=$D/noauth
	mkdir -p "$D/run" "$D/htdocs"
	# Over plain HTTP, as the trap is about Authorization only: without
	# SSLRequireSSL (and mod_ssl) too.
	grep -v -e 'CGIPassAuth On' -e SSLRequireSSL "${D%/noauth}/nsps.conf" \
	    > "$D/nsps.conf"
	! grep -q CGIPassAuth "$D/nsps.conf"
	APACHE_EXTRA="ScriptSock $D/run/cgid.sock" retry 3 apache_launch cgid env
	log_mark "$D/error.log"
	post "$BASE/process-event" "$FIX/nsps-doc-sample.json"
	assert_error 401 AUTHENTICATION_ERROR
	assert_logged "$D/error.log" "no Authorization header"
	stop_pid "$APACHE_PID"
}
