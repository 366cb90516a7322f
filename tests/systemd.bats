#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The systemd units in contrib/: checked with systemd-analyze verify
# (systemd cannot run as PID 1 here), and their socket activation
# emulated with systemd-socket-activate, which hands the connector a
# listening socket (LISTEN_FDS=1, fd 3) on the first connection, as
# systemd does.  Requests are sent with cgi-fcgi from libfcgi.

load helper
load lib/servers

UNITS=$TESTS_DIR/../contrib

setup() {
	D=$(make_shared_dir)
	servers_init "$D"
}

teardown() {
	servers_stop_all
	rm -rf "$D"
}

# verify UNIT...: systemd-analyze verify on the units, with the binary
# path pointing at the built connector; any warning fails.
verify() {
	local u
	command -v systemd-analyze >/dev/null ||
	    skip "systemd-analyze is not installed (.ci/deps installs systemd)"
	for u in "$@"; do
		if grep -q /usr/local/sbin/nsps-connector "$UNITS/$u"; then
			derive_config "$UNITS/$u" "$D/$u" \
			    "/usr/local/sbin/nsps-connector=$NSPS_CONNECTOR" ||
			    return 1
		else
			cp "$UNITS/$u" "$D/$u"
		fi
		[[ $u != *spawn-fcgi* ]] || sed -i \
		    "s|/usr/bin/spawn-fcgi|$(command -v spawn-fcgi || echo /usr/bin/spawn-fcgi)|" "$D/$u"
	done
	cd "$D"
	run --separate-stderr systemd-analyze verify --man=no "$@"
	[ "$status" -eq 0 ] && [ -z "$output$stderr" ] ||
	    fail_with "systemd-analyze verify complained"
}

@test "systemd: socket and service units verify without a warning" {
	verify nsps-connector.socket nsps-connector.service
}

@test "systemd: the spawn-fcgi unit verifies without a warning" {
	command -v spawn-fcgi >/dev/null || skip "spawn-fcgi is not installed"
	verify nsps-connector-spawn-fcgi.service
}

@test "systemd: the units ask for what the recipe promises" {
	local s=$UNITS/nsps-connector.socket u=$UNITS/nsps-connector.service
	for d in 'ListenStream=/run/' 'SocketGroup=www-data' 'SocketMode=0660'; do
		grep -qx -- "$d.*" "$s" || fail_with "socket lacks $d" || return 1
	done
	for d in 'StandardInput=socket' 'StandardOutput=journal' \
	    'StandardError=journal' 'User=nsps' 'NoNewPrivileges=yes' \
	    'ProtectSystem=strict' 'PrivateTmp=yes' \
	    'RestrictAddressFamilies=AF_UNIX' 'Restart=on-failure' \
	    'LoadCredential=token:' 'Environment=API_TOKEN_FILE=%d/token'; do
		grep -q -- "^$d" "$u" || fail_with "service lacks $d" || return 1
	done
	# The token itself is never in a unit.
	! grep -Eq '^[^#]*(API_TOKEN=|Bearer)' "$u" "$s" \
	    "$UNITS/nsps-connector-spawn-fcgi.service"
}

@test "systemd: the service's sandbox rates SAFE offline" {
	command -v systemd-analyze >/dev/null ||
	    skip "systemd-analyze is not installed (.ci/deps installs systemd)"
	derive_config "$UNITS/nsps-connector.service" "$D/nsps-connector.service" \
	    "/usr/local/sbin/nsps-connector=$NSPS_CONNECTOR"
	cd "$D"
	run -0 systemd-analyze security --offline=yes --no-pager nsps-connector.service
	grep -q 'Overall exposure level for nsps-connector.service: [0-9.]* SAFE' <<<"$output" ||
	    fail_with "not rated SAFE"
}

# fcgi_post SOCKET FILE: one FastCGI request as a web server sends it.
fcgi_post() {
	run --separate-stderr env -i PATH="$PATH" REQUEST_METHOD=POST \
	    SCRIPT_NAME=/process-event CONTENT_TYPE=application/json \
	    CONTENT_LENGTH="$(wc -c < "$2" | tr -d ' ')" \
	    HTTP_AUTHORIZATION="Bearer $TOKEN" \
	    cgi-fcgi -bind -connect "$1" < "$2"
	split_response
}

# start_activated [ENV...]: the service as systemd would run it, the
# socket path and %d (the credentials directory) made local.
start_activated() {
	local env
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate is not installed (.ci/deps installs systemd)"
	command -v cgi-fcgi >/dev/null ||
	    skip "cgi-fcgi is not installed (.ci/deps installs libfcgi-bin)"
	mkdir -m 700 "$D/creds"
	printf '%s\n' "$TOKEN" > "$D/creds/token"
	chmod 400 "$D/creds/token"
	env=$(sed -n 's/^Environment=\(API_TOKEN_FILE=\)/\1/p' "$UNITS/nsps-connector.service")
	[ "$env" = "API_TOKEN_FILE=%d/token" ] || return 1
	SOCK=$D/fcgi.sock
	start_bg activate env -i PATH="$PATH" "$@" \
	    systemd-socket-activate -l "$SOCK" \
	    -E "${env//%d/$D/creds}" "$NSPS_CONNECTOR"
	wait_file "$SOCK" "$LAST_PID"
}

@test "systemd: socket activation: started on the first connection, 202, log on stderr" {
	start_activated
	# Nothing runs the connector until a request comes.
	[ "$(ps -o comm= -p "$LAST_PID")" = systemd-socket- ]
	fcgi_post "$SOCK" "$FIX/nsps-doc-sample.json"
	assert_status 202
	[ "$(ps -o comm= -p "$LAST_PID")" = nsps-connector ]
	for i in $(seq 1 100); do
		grep -q 'Received' "$D/activate.err" && break
		sleep 0.05
	done
	run -0 grep -cxF "Received event: SIM/Updated | bill status: open" "$D/activate.err"
	[ "$output" = 1 ]
	# The same process serves the next requests.
	fcgi_post "$SOCK" "$FIX/missing-pb-data.json"
	assert_error 422 VALIDATION_ERROR
	[ "$(ps -o comm= -p "$LAST_PID")" = nsps-connector ]
}

@test "systemd: socket activation without a token: exit 78 and one line why" {
	mkdir -m 700 "$D/creds"
	SOCK=$D/fcgi.sock
	command -v systemd-socket-activate >/dev/null ||
	    skip "systemd-socket-activate is not installed (.ci/deps installs systemd)"
	start_bg activate env -i PATH="$PATH" \
	    systemd-socket-activate -l "$SOCK" "$NSPS_CONNECTOR"
	wait_file "$SOCK" "$LAST_PID"
	run env -i PATH="$PATH" REQUEST_METHOD=GET SCRIPT_NAME=/health \
	    cgi-fcgi -bind -connect "$SOCK"
	# wait, not "run wait": only this shell can wait for its child.
	local rc=0
	wait "$LAST_PID" || rc=$?
	[ "$rc" -eq 78 ] || fail_with "exit status $rc, not 78"
	# systemd-socket-activate's own lines, then exactly one of ours.
	run -0 grep -v -e '^Listening on ' -e '^Communication attempt' \
	    -e '^Execing ' "$D/activate.err"
	[ "$output" = "nsps-connector: no API token configured: set API_TOKEN or API_TOKEN_FILE" ]
}
