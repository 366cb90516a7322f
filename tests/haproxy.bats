#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real HAProxy 2.6 speaking FastCGI (fcgi-app), over
# HTTPS: contrib/haproxy.cfg with only its ports (on 127.0.0.1), paths
# and certificate changed, after a global and defaults section of the
# suite's own; the certificate is the throwaway one of tests/lib/tls.
# The connector runs as the recipe says: spawn-fcgi -n (the unit's
# ExecStart) and multiwatch with two processes; its stderr is
# spawn-fcgi's.

load helper
load lib/servers
load lib/contract
load lib/tls

CONNECTOR_MAX=65536

launch() {
	local port plain
	port=$(free_port) && plain=$(free_port) || return 1
	derive_config "$CONTRIB_DIR/haproxy.cfg" "$D/nsps.cfg" \
	    "bind :443 ssl crt /etc/haproxy/certs/EXAMPLE.pem=bind 127.0.0.1:$port ssl crt $D/tls/combined.pem" \
	    "bind :80=bind 127.0.0.1:$plain" \
	    "/run/nsps-connector/fcgi.sock=$D/run/fcgi.sock" \
	    "docroot /run/nsps-connector=docroot $D/run" || return 1
	spawn_fcgi_start "$D/run/fcgi.sock" "$D/bin/nsps-connector" \
	    "$D/nsps.env" "$(front_group)" 2 || return 1
	BASE=https://127.0.0.1:$port/nsps
	PLAIN=http://127.0.0.1:$plain/nsps
	HAPROXY_POLL=$BASE/health haproxy_start haproxy "$D/nsps.cfg"
}

setup_file() {
	command -v haproxy >/dev/null ||
	    skip "haproxy is not installed (.ci/deps installs it)"
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

@test "haproxy: derived config keeps every directive of the recipe" {
	for d in 'pass-header Authorization' 'no option get-values' \
	    'no option mpxs-conns' 'proto fcgi maxconn 32' \
	    'Strict-Transport-Security' 'redirect scheme https'; do
		grep -qF -- "$d" "$D/nsps.cfg" || fail_with "no $d" || return 1
	done
	[ "$(grep -vc '^[[:space:]]*#' "$D/nsps.cfg")" = \
	    "$(grep -vc '^[[:space:]]*#' "$CONTRIB_DIR/haproxy.cfg")" ]
	# The recipe keeps mpxs-conns and get-values off, with the reason,
	# and leaves keep-conn at HAProxy's default (kept).
	! grep -q '^[^#]*[^o] option \(mpxs-conns\|get-values\)' "$CONTRIB_DIR/haproxy.cfg"
	! grep -q '^[^#]*option keep-conn' "$CONTRIB_DIR/haproxy.cfg"
}
@test "haproxy: HTTPS with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "haproxy: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "haproxy: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "haproxy: two connector processes serve the socket" {
	local kids
	kids=$(ps -e -o pgid=,comm= | awk -v g="$(awk '$2 == "spawn-fcgi" { print $1 }' "$SERVERS_PIDS")" \
	    '$1 == g && $2 == "nsps-connector"' | wc -l)
	[ "$kids" -eq 2 ] || fail_with "$kids connector processes"
}
@test "haproxy: the NSPS documentation's sample is 202 and logged on spawn-fcgi's stderr" {
	contract_doc_sample "$BASE" "$LOG"
}
@test "haproxy: the recipe lets this host read the metrics path" { contract_metrics_from_here "$BASE" "$LOG"; }
@test "haproxy: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "haproxy: missing token is 401 (and the sample 202: pass-header works)" { contract_missing_token "$BASE" "$LOG"; }
@test "haproxy: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "haproxy: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "haproxy: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "haproxy: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "haproxy: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "haproxy: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
@test "haproxy: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "haproxy: over the recipe's Content-Length limit is HAProxy's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "haproxy: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }
# HAProxy sends CONTENT_LENGTH 0 for a POST without a body.
@test "haproxy: POST without Content-Length is the connector's 422 (empty body)" {
	contract_no_length "$BASE" "$LOG" 422 connector
}
@test "haproxy: Content-Length -1 is HAProxy's 400" {
	contract_bad_length "$BASE" "$LOG" 400 server
}
@test "haproxy: a chunked body is buffered and the event is 202" {
	contract_chunked "$BASE" "$LOG" 202 connector
}
@test "haproxy: bodies across two 8 KiB boundaries on one kept connection are all answered" {
	body_sweep "$BASE/process-event" "$LOG" 7600 7640 15800 15840
}
@test "haproxy: 16 connections for 3 s: every answer a 202, none slower than 1 s" {
	command -v wrk >/dev/null || skip "wrk is not installed (.ci/deps installs it)"
	load_check "$BASE" 3
}
