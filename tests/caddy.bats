#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real Caddy 2.6 (reverse_proxy, transport fastcgi),
# over HTTPS: contrib/Caddyfile with only its site address, socket path
# and certificate changed (the recipe's commented "tls" line, with the
# throwaway certificate of tests/lib/tls: automatic HTTPS would ask an
# ACME server), after a global options block of the suite's own (ports
# on 127.0.0.1, no admin endpoint, its storage in the suite's
# directory).  The connector runs as the recipe says: spawn-fcgi -n (the
# unit's ExecStart) and multiwatch with two processes; its stderr is
# spawn-fcgi's.

load helper
load lib/servers
load lib/contract
load lib/tls

CONNECTOR_MAX=65536

launch() {
	local port plain
	port=$(free_port) && plain=$(free_port) || return 1
	derive_config "$CONTRIB_DIR/Caddyfile" "$D/nsps.Caddyfile" \
	    "# tls /etc/letsencrypt/live/EXAMPLE/fullchain.pem /etc/letsencrypt/live/EXAMPLE/privkey.pem=tls $D/tls/fullchain.pem $D/tls/privkey.pem" \
	    "EXAMPLE {=localhost {" \
	    "unix//run/nsps-connector/fcgi.sock=unix/$D/run/fcgi.sock" || return 1
	spawn_fcgi_start "$D/run/fcgi.sock" "$D/bin/nsps-connector" \
	    "$D/nsps.env" "$(front_group)" 2 || return 1
	# localhost: Caddy picks the site by the name the client sends
	# (SNI), and curl sends none for an address.
	BASE=https://localhost:$port/nsps
	PLAIN=http://localhost:$plain/nsps
	caddy_start caddy "$D/nsps.Caddyfile" "$plain" "$port" "$BASE/health"
}

setup_file() {
	command -v caddy >/dev/null ||
	    skip "caddy is not installed (.ci/deps installs it)"
	command -v spawn-fcgi >/dev/null && command -v multiwatch >/dev/null ||
	    skip "spawn-fcgi or multiwatch is not installed (.ci/deps installs them)"
	suite_setup -b "$CONNECTOR_MAX" tls_launch
	export BASE PLAIN LOG=$D/spawn-fcgi.err
}

tls_launch() {
	[ -f "$D/tls/combined.pem" ] || tls_make "$D/tls" || return 1
	[ -z "$(server_user)" ] || chgrp "$(front_group)" "$D/tls/privkey.pem" &&
	    chmod 640 "$D/tls/privkey.pem" || return 1
	launch
}

teardown_file() {
	suite_teardown
}

@test "caddy: derived config keeps every directive of the recipe" {
	for d in 'transport fastcgi' 'max_size 2MiB' '@too_big header_regexp Content-Length' 'Strict-Transport-Security' \
	    "tls $D/tls/fullchain.pem"; do
		grep -qF -- "$d" "$D/nsps.Caddyfile" || fail_with "no $d" || return 1
	done
	# The same lines, the tls one uncommented.
	[ "$(grep -vc '^[[:space:]]*#' "$D/nsps.Caddyfile")" = \
	    "$(($(grep -vc '^[[:space:]]*#' "$CONTRIB_DIR/Caddyfile") + 1))" ]
}
@test "caddy: HTTPS with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "caddy: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "caddy: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "caddy: two connector processes serve the socket" {
	local kids
	kids=$(ps -e -o pgid=,comm= | awk -v g="$(awk '$2 == "spawn-fcgi" { print $1 }' "$SERVERS_PIDS")" \
	    '$1 == g && $2 == "nsps-connector"' | wc -l)
	[ "$kids" -eq 2 ] || fail_with "$kids connector processes"
}
@test "caddy: the NSPS documentation's sample is 202 and logged on spawn-fcgi's stderr" {
	contract_doc_sample "$BASE" "$LOG"
}
@test "caddy: the recipe lets this host read the metrics path" { contract_metrics_from_here "$BASE" "$LOG"; }
@test "caddy: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "caddy: missing token is 401" { contract_missing_token "$BASE" "$LOG"; }
@test "caddy: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "caddy: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "caddy: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "caddy: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "caddy: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "caddy: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
@test "caddy: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "caddy: over request_body's max_size is Caddy's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "caddy: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }
@test "caddy: POST without Content-Length is the connector's 422 (empty body)" {
	contract_no_length "$BASE" "$LOG" 422 connector
}
# Caddy passes a request of unknown length (chunked, or an HTTP/2 body
# without content-length) on with CONTENT_LENGTH -1; the connector reads
# FCGI_STDIN to its end instead.  NSPS sends Content-Length.
# Over HTTP/2 a content-length of -1 makes the stream malformed (RFC 9113
# 8.1.1): Go's server resets it, before or after the connector's 400.
# The row of the contract is checked over HTTP/1.1.
@test "caddy: Content-Length -1 over HTTP/1.1 is Caddy's 400" {
	http POST "$BASE/process-event" --http1.1 -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json' -H 'Content-Length: -1' \
	    --data-binary '{}'
	assert_answer 400 server
}
@test "caddy: a chunked body is read to its end and the event is 202 (CONTENT_LENGTH -1)" {
	contract_chunked "$BASE" "$LOG" 202 connector
}
@test "caddy: Content-Length just over the limit is Caddy's 413, at it the connector's" {
	head -c 2097153 /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big.json"
	post "$BASE/process-event" "$BATS_TEST_TMPDIR/big.json"
	assert_answer 413 server
	head -c 2097152 /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big.json"
	post "$BASE/process-event" "$BATS_TEST_TMPDIR/big.json"
	assert_answer 413 connector
}
@test "caddy: bodies across two 8 KiB boundaries on one kept connection are all answered" {
	body_sweep "$BASE/process-event" "$LOG" 7600 7640 15800 15840
}
@test "caddy: 16 connections for 3 s: every answer a 202, none slower than 1 s" {
	command -v wrk >/dev/null || skip "wrk is not installed (.ci/deps installs it)"
	load_check "$BASE" 3
}
