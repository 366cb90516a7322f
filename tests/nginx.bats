#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real nginx, over HTTPS: contrib/nginx-tls.conf
# (its ports on 127.0.0.1, the certificate the throwaway one of
# tests/lib/tls) including contrib/nginx.conf (with only paths changed),
# in a minimal nginx of the suite's own, and the connector run by
# spawn-fcgi -n exactly as ExecStart in
# contrib/nsps-connector-spawn-fcgi.service says (paths and users
# changed).  The connector's stderr is spawn-fcgi's.

load helper
load lib/servers
load lib/contract
load lib/tls

CONNECTOR_MAX=65536

launch() {
	local sock=$D/run/fcgi.sock port plain
	derive_config "$TESTS_DIR/../contrib/nginx.conf" "$D/nsps.conf" \
	    "unix:/run/nsps-connector/fcgi.sock=unix:$sock" || return 1
	rm -f "$sock"
	mapfile -t spawn < <(spawn_fcgi_command "$sock" \
	    "$D/bin/nsps-connector" "$D/nsps.env") || return 1
	[ "${#spawn[@]}" -gt 3 ] || return 1
	start_bg spawn-fcgi env -i PATH="$PATH" "$(spawn_fcgi_env)" "${spawn[@]}"
	wait_file "$sock" "$LAST_PID" || return 1
	[ -f "$D/tls/fullchain.pem" ] || tls_make "$D/tls" || return 1
	port=$(free_port) && plain=$(free_port) || return 1
	derive_config "$CONTRIB_DIR/nginx-tls.conf" "$D/site.conf" \
	    "listen 80;=listen 127.0.0.1:$plain;" \
	    "listen 443 ssl;=listen 127.0.0.1:$port ssl;" \
	    "/etc/letsencrypt/live/EXAMPLE=$D/tls" \
	    "server_name EXAMPLE;=server_name localhost;" \
	    "include snippets/nsps-connector.conf;=include $D/nsps.conf;" ||
	    return 1
	BASE=https://127.0.0.1:$port/nsps
	PLAIN=http://127.0.0.1:$plain/nsps
	nginx_site_start nginx "$BASE/health" "$D/site.conf"
}

setup_file() {
	command -v nginx >/dev/null ||
	    skip "nginx is not installed (.ci/deps installs it)"
	command -v spawn-fcgi >/dev/null ||
	    skip "spawn-fcgi is not installed (.ci/deps installs it)"
	suite_setup -b "$CONNECTOR_MAX" launch
	export BASE PLAIN LOG=$D/spawn-fcgi.err
}

teardown_file() {
	suite_teardown
}

@test "nginx: the socket is mode 0660 and the connector does not run as root" {
	run -0 stat -c %a "$D/run/fcgi.sock"
	[ "$output" = 660 ]
	if [ -n "$(server_user)" ]; then
		run -0 stat -c %U "$D/run/fcgi.sock"
		[ "$output" = "$(server_user)" ]
		# spawn-fcgi -n became the connector: same PID.
		run -0 ps -o user=,comm= -p "$(awk '$2 == "spawn-fcgi" { print $1 }' "$SERVERS_PIDS")"
		[ "$output" = "$(server_user) nsps-connector" ] ||
		    [ "$output" = "$(printf '%-8s nsps-connector' "$(server_user)")" ]
	fi
}
@test "nginx: HTTPS with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "nginx: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "nginx: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "nginx: the NSPS documentation's sample is 202 and logged on spawn-fcgi's stderr" {
	contract_doc_sample "$BASE" "$LOG"
	! grep -qF "Received event" "$D/nginx-error.log"
}
@test "nginx: the recipe lets this host read the metrics path" { contract_metrics_from_here "$BASE" "$LOG"; }
@test "nginx: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "nginx: missing token is 401" { contract_missing_token "$BASE" "$LOG"; }
@test "nginx: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "nginx: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "nginx: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "nginx: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "nginx: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "nginx: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
@test "nginx: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "nginx: over client_max_body_size is nginx's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "nginx: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }
# fastcgi_params sends CONTENT_LENGTH even when empty; the connector
# takes an empty value as absent (RFC 3875 4.1.2) and reads FCGI_STDIN
# to its end: an empty body, which is no event.
@test "nginx: POST without Content-Length is the connector's 422 (empty CONTENT_LENGTH, empty body)" {
	contract_no_length "$BASE" "$LOG" 422 connector
}
@test "nginx: Content-Length -1 is nginx's 400" {
	contract_bad_length "$BASE" "$LOG" 400 server
}
@test "nginx: a chunked body is buffered and the event is 202" {
	contract_chunked "$BASE" "$LOG" 202 connector
}
@test "nginx: a chunked body over client_max_body_size is nginx's 413" {
	contract_chunked_over_limit "$BASE" "$LOG" $((3 * 1024 * 1024)) 413 server
}

@test "nginx: bodies across two 8 KiB boundaries on one kept connection are all answered" {
	body_sweep "$BASE/process-event" "$LOG" 7600 7640 15800 15840
}
@test "nginx: 16 connections for 3 s: every answer a 202, none slower than 1 s" {
	command -v wrk >/dev/null || skip "wrk is not installed (.ci/deps installs it)"
	load_check "$BASE" 3
}
@test "nginx: the recipe leaves fastcgi_keep_conn off" {
	! grep -q '^[^#]*fastcgi_keep_conn' "$D/nsps.conf"
	grep -q '^[[:space:]]*#.*fastcgi_keep_conn' "$D/nsps.conf"
}

# nginx with the systemd units instead of spawn-fcgi: the socket made as
# nsps-connector.socket says (group and mode), the connector started on
# the first connection with its token where LoadCredential= puts it.
@test "nginx: behind systemd socket activation (systemd-socket-activate)" {
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate is not installed (.ci/deps installs systemd)"
	local units=$TESTS_DIR/../contrib sock=$D/run/activated.sock
	local env mode group
	mode=$(sed -n 's/^SocketMode=//p' "$units/nsps-connector.socket")
	group=$(sed -n 's/^SocketGroup=//p' "$units/nsps-connector.socket")
	env=$(sed -n 's/^Environment=\(API_TOKEN_FILE=\)/\1/p' "$units/nsps-connector.service")
	[ "$env" = "API_TOKEN_FILE=%d/token" ]
	mkdir -m 700 "$D/creds"
	printf '%s\n' "$TOKEN" > "$D/creds/token"
	chmod 400 "$D/creds/token"
	start_bg activate env -i PATH="$PATH" systemd-socket-activate \
	    -l "$sock" -E "${env//%d/$D/creds}" "$D/bin/nsps-connector"
	wait_file "$sock" "$LAST_PID"
	# What systemd does with SocketGroup= and SocketMode=.
	[ -z "$(server_user)" ] || chgrp "$group" "$sock"
	chmod "$mode" "$sock"
	sed "s|unix:$D/run/fcgi.sock|unix:$sock|" "$D/nsps.conf" > "$D/activated.conf"
	nginx_start nginx-activated /nsps/health "$D/activated.conf"
	BASE=http://127.0.0.1:$NGINX_PORT/nsps
	log_mark "$D/activate.err"
	post "$BASE/process-event" "$FIX/nsps-doc-sample.json"
	assert_status 202
	assert_logged "$D/activate.err" "Received event: SIM/Updated | bill status: open"
	post "$BASE/process-event" "$FIX/missing-pb-data.json"
	assert_error 422 VALIDATION_ERROR
}
