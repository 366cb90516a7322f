#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The malformed corpus (tests/malformed.c): 10,200 generated hostile
# requests, each marked valid or invalid, through CGI and through one
# long-lived FastCGI process.  0 crashes, 0 hangs over 1 s, every answer
# a well-formed CGI response with a JSON object body, no 2xx for an
# invalid request, 202 for every valid one; the FastCGI process alive at
# the end with the same fds and RSS within 1 MiB of the warm-up (not in
# a sanitizer build).  The
# counts are printed into the test log.

load helper

COUNT=10200
RUNNER=$(dirname "$CONNECTOR")/tests/malformed

setup() {
	[ -x "$RUNNER" ] || fail_with "$RUNNER is not built (make check builds it)"
}

report() {
	printf '# %s\n' "${lines[@]}" >&3
}

@test "malformed: $COUNT hostile requests through CGI" {
	run "$RUNNER" cgi "$CONNECTOR" "$COUNT"
	report
	[ "$status" -eq 0 ] || fail_with "runner exited $status"
	[[ $output == *"cgi: $COUNT requests"* ]]
	[[ $output == *"0 crashes, 0 hangs over 1 s, 0 malformed answers, 0 2xx for invalid, 0 valid refused"* ]]
}

@test "malformed: $COUNT hostile requests through one FastCGI process" {
	# A sanitizer build's RSS is ASan's quarantine, not the connector's.
	[[ ${NSPS_HARDEN-} != *-fsanitize=* ]] || export MALFORMED_NO_RSS=1
	run "$RUNNER" fcgi "$CONNECTOR" "$COUNT" "$BATS_TEST_TMPDIR"
	report
	[ "$status" -eq 0 ] || fail_with "runner exited $status"
	[[ $output == *"fcgi: $COUNT requests"* ]]
	[[ $output == *"0 crashes, 0 hangs over 1 s, 0 malformed answers, 0 2xx for invalid, 0 valid refused"* ]]
	[[ $output == *"fcgi: process alive"* ]]
}
