#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The manual page lints clean and its deployment parts match contrib/.

load helper

MAN=$TESTS_DIR/../man/nsps-connector.8
CONTRIB=$TESTS_DIR/../contrib

@test "man: mandoc -Tlint -Wwarning is clean" {
	command -v mandoc >/dev/null ||
	    skip "mandoc is not installed (.ci/deps installs it)"
	run mandoc -Tlint -Wwarning "$MAN"
	[ "$status" -eq 0 ] && [ -z "$output" ] || fail_with "mandoc lint"
}

@test "man: every web server recipe and connector unit is named in DEPLOYMENT" {
	command -v mandoc >/dev/null ||
	    skip "mandoc is not installed (.ci/deps installs it)"
	deploy=$(mandoc -Tascii "$MAN" | col -b | sed -n '/^DEPLOYMENT/,/^EXAMPLES/p')
	[ -n "$deploy" ] || fail_with "no DEPLOYMENT section"
	for f in "$CONTRIB"/*.conf "$CONTRIB"/nsps-connector*.socket \
	    "$CONTRIB"/nsps-connector*.service; do
		grep -qF "$(basename "$f")" <<<"$deploy" ||
		    fail_with "DEPLOYMENT does not name $(basename "$f")" || return 1
	done
}

@test "man: the directives shown in EXAMPLES are the recipes' own" {
	command -v mandoc >/dev/null ||
	    skip "mandoc is not installed (.ci/deps installs it)"
	ex=$(mandoc -Tascii "$MAN" | col -b | sed -n '/^EXAMPLES/,/^SEE ALSO/p')
	for pair in 'lighttpd-fastcgi.conf:"check-local" => "disable"' \
	    'lighttpd-fastcgi.conf:"bin-copy-environment" => ( "PATH", "TZ" )' \
	    'apache-fcgid.conf:SetHandler fcgid-script' \
	    'apache-fcgid.conf:FcgidMaxRequestLen 2097152' \
	    'apache-fcgid.conf:CGIPassAuth On' \
	    'apache-fcgid.conf:<If "%{HTTP:Content-Length} -gt 2097152">' \
	    'apache-cgi.conf:ScriptAlias /nsps /usr/local/sbin/nsps-connector' \
	    'apache-cgi.conf:LimitRequestBody 2097152' \
	    'nginx.conf:client_max_body_size 2m;' \
	    'nginx.conf:fastcgi_pass unix:/run/nsps-connector/fcgi.sock;'; do
		file=${pair%%:*} d=${pair#*:}
		grep -qF -- "$d" "$CONTRIB/$file" || fail_with "$file lacks $d" || return 1
		grep -qF -- "$d" <<<"$ex" || fail_with "EXAMPLES lack $d" || return 1
	done
}

@test "man: every setting the connector reads, in config.c's table, is in ENVIRONMENT" {
	local env names name
	env=$(sed -n '/^\.Sh ENVIRONMENT/,/^\.Sh FILES/p' "$MAN")
	# An entry of the table and its next line: who reads it may wrap.
	names=$(awk '/^\t\[S_[A-Z_]+\] = \{/ {
		line = $0; getline more; line = line more
		if (line ~ /FOR_CONNECTOR|FOR_INLINE/) {
			sub(/^[^"]*"/, "", line); sub(/".*/, "", line); print line
		}
	}' "$TESTS_DIR/../src/config.c")
	[ "$(wc -w <<<"$names")" -ge 20 ] || fail_with "names: $names" || return 1
	for name in $names; do
		grep -qw -- "$name" <<<"$env" ||
		    fail_with "ENVIRONMENT lacks $name" || return 1
	done
}
