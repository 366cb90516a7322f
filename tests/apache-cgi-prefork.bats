#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# contrib/apache-cgi.conf with the prefork MPM and plain mod_cgi (the
# other suite uses mpm_event and mod_cgid): the cases where the two
# modules could differ.

load helper
load lib/servers
load lib/contract
load lib/apache
load lib/tls

export LOG_EXACT=0

launch() {
	[ -f "$D/tls/fullchain.pem" ] || tls_make "$D/tls" || return 1
	local APACHE_TLS=1
	derive_config "$TESTS_DIR/../contrib/apache-cgi.conf" "$D/nsps.conf" \
	    "/usr/local/sbin/nsps-connector=$D/bin/nsps-connector" \
	    "/usr/local/sbin>=$D/bin>" \
	    "/etc/nsps/connector.env=$D/nsps.env" || return 1
	APACHE_MPM=prefork APACHE_SERVERS=4 APACHE_THREADS= APACHE_EXTRA= \
	    apache_launch cgi env
}

setup_file() {
	[ -n "$(apache_binary)" ] ||
	    skip "apache2 is not installed (.ci/deps installs it)"
	suite_setup -b 65536 launch
	export BASE PLAIN LOG=$D/error.log
}

teardown_file() {
	suite_teardown
}

@test "apache-cgi-prefork: HTTPS (apache-tls.conf) with the operator's certificate and HSTS" { tls_check_https "$BASE"; }
@test "apache-cgi-prefork: plain HTTP is redirected to https, never served" {
	tls_check_plain "$PLAIN/process-event" "$LOG"
}
@test "apache-cgi-prefork: another host name over plain HTTP is never served" {
	tls_check_other_host "$PLAIN/process-event" "$LOG"
}
@test "apache-cgi-prefork: mod_cgi is loaded, not mod_cgid" {
	grep -q '^LoadModule cgi_module .*/mod_cgi.so' "$D/apache.conf"
	grep -q '^LoadModule mpm_prefork_module' "$D/apache.conf"
	! grep -q cgid "$D/apache.conf"
}
@test "apache-cgi-prefork: the NSPS documentation's sample is 202 and logged in the ErrorLog" {
	contract_doc_sample "$BASE" "$LOG"
}
@test "apache-cgi-prefork: missing token is 401 (and the sample 202: CGIPassAuth works)" {
	contract_missing_token "$BASE" "$LOG"
	contract_doc_sample "$BASE" "$LOG"
}
@test "apache-cgi-prefork: broken body is 422 with details" { contract_broken_body "$BASE" "$LOG"; }
@test "apache-cgi-prefork: over the connector's limit is the connector's 413" {
	contract_over_connector_limit "$BASE" "$LOG" $((1024 * 1024))
}
@test "apache-cgi-prefork: over LimitRequestBody is Apache's own 413" {
	contract_over_server_limit "$BASE" "$LOG" $((3 * 1024 * 1024))
}
@test "apache-cgi-prefork: 50 events in a row are all 202" { contract_many "$BASE" "$LOG" 50; }
@test "apache-cgi-prefork: 404 and 405 on a POST with a body always reach the client" { contract_refused_unread "$BASE" "$LOG"; }
