#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# End to end behind a real Apache httpd 2.4 with mod_fcgid: the recipe
# is contrib/apache-fcgid.conf with only paths changed, included in a
# minimal server of the suite's own on 127.0.0.1 and a free port.  The
# connector's stderr goes to Apache's ErrorLog.

load helper
load lib/servers
load lib/contract
load lib/apache
load lib/tls

CONNECTOR_MAX=65536

launch() {
	[ -f "$D/tls/fullchain.pem" ] || tls_make "$D/tls" || return 1
	local APACHE_TLS=1
	derive_config "$TESTS_DIR/../contrib/apache-fcgid.conf" "$D/nsps.conf" \
	    "/usr/local/sbin/nsps-connector=$D/bin/nsps-connector" \
	    "/usr/local/sbin>=$D/bin>" \
	    "/etc/nsps/connector.env=$D/nsps.env" || return 1
	# A secret in Apache's environment that must not reach the connector.
	APACHE_SECRET=do-not-leak APACHE_EXTRA="FcgidIPCDir $D/run/fcgid
FcgidProcessTableFile $D/run/fcgid_shm" apache_launch fcgid
}

setup_file() {
	[ -n "$(apache_binary)" ] ||
	    skip "apache2 is not installed (.ci/deps installs it)"
	[ -f /usr/lib/apache2/modules/mod_fcgid.so ] ||
	    skip "mod_fcgid is not installed (.ci/deps installs libapache2-mod-fcgid)"
	suite_setup -b "$CONNECTOR_MAX" launch
	export BASE PLAIN LOG=$D/error.log
}

teardown_file() {
	suite_teardown
}

@test "apache-fcgid: HTTPS (apache-tls.conf) with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "apache-fcgid: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "apache-fcgid: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "apache-fcgid: the NSPS documentation's sample is 202 and logged in the ErrorLog" {
	contract_doc_sample "$BASE" "$LOG"
}
@test "apache-fcgid: the connector gets FcgidInitialEnv, not Apache's environment" {
	local pgid kids env k
	post "$BASE/process-event" "$FIX/nsps-doc-sample.json"
	assert_status 202
	pgid=$(awk '$2 == "apache" { print $1; exit }' "$SERVERS_PIDS")
	kids=$(ps -e -o pid=,pgid=,comm= |
	    awk -v g="$pgid" '$2 == g && $3 == "nsps-connector" { print $1 }')
	[ -n "$kids" ] || fail_with "no connector process under Apache"
	for k in $kids; do
		env=$(tr '\0' '\n' < "/proc/$k/environ")
		grep -qx "NSPS_ENV_FILE=$D/nsps.env" <<<"$env" ||
		    fail_with "no NSPS_ENV_FILE: $env" || return 1
		! grep -q APACHE_SECRET <<<"$env" ||
		    fail_with "Apache's environment leaked" || return 1
	done
}
@test "apache-fcgid: the recipe lets this host read the metrics path" { contract_metrics_from_here "$BASE" "$LOG"; }
@test "apache-fcgid: wrong token is 401" { contract_wrong_token "$BASE" "$LOG"; }
@test "apache-fcgid: missing token is 401 (and the sample 202: CGIPassAuth works)" {
	contract_missing_token "$BASE" "$LOG"
	contract_doc_sample "$BASE" "$LOG"
}
@test "apache-fcgid: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "apache-fcgid: GET on the event path is 405 with Allow" { contract_get_event_path "$BASE" "$LOG"; }
@test "apache-fcgid: unknown path is 404: the connector's under the mount, the server's outside" { contract_unknown_path "$BASE" "$LOG"; }
@test "apache-fcgid: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
@test "apache-fcgid: health check GET and HEAD are 200" { contract_health "$BASE" "$LOG"; }
@test "apache-fcgid: wrong Content-Type is 415" { contract_wrong_content_type "$BASE" "$LOG"; }
@test "apache-fcgid: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "apache-fcgid: Content-Length over the limit is Apache's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "apache-fcgid: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }
# mod_fcgid reads the body itself and always sets CONTENT_LENGTH to what
# it read: an empty POST reaches the connector as an empty body.
@test "apache-fcgid: POST without Content-Length is the connector's 422 (empty body)" {
	contract_no_length "$BASE" "$LOG" 422 connector
}
@test "apache-fcgid: Content-Length -1 is Apache's 400" {
	contract_bad_length "$BASE" "$LOG" 400 server
}
@test "apache-fcgid: a chunked body is buffered and the event is 202" {
	contract_chunked "$BASE" "$LOG" 202 connector
}
@test "apache-fcgid: a chunked body over FcgidMaxRequestLen is mod_fcgid's 500" {
	contract_chunked_over_limit "$BASE" "$LOG" $((3 * 1024 * 1024)) 500 server
}
