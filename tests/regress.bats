#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Regression tests for defects found by fuzzing (fuzz/).  The input that
# found each one is also kept in the fuzz seed corpus, named regress-*,
# so "make fuzz-smoke" replays it under ASan on every run.

load helper

@test "regress: an env file ending in 'export' and blanks is a clean config error" {
	# dotenv_parse() skipped the blanks after "export " without looking
	# at the end of the data (heap overread on an unterminated buffer).
	printf 'export        ' > "$BATS_TEST_TMPDIR/env"
	chmod 600 "$BATS_TEST_TMPDIR/env"
	run_cgi REQUEST_METHOD=GET SCRIPT_NAME=/health \
	    NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env"
	assert_error 500 INTERNAL_ERROR
	assert_log "line 1: expected KEY=VALUE"
}

@test "regress: control characters in a raw request head are refused" {
	# A bare CR inside the request target used to pass through into the
	# path ("/process\revent"), found by fuzz-request-file.
	printf 'POST /process\revent HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}' \
	    > "$BATS_TEST_TMPDIR/req"
	run_file --stdin "$BATS_TEST_TMPDIR/req"
	assert_error 400 VALIDATION_ERROR
	assert_log "control character in the request head"
	printf 'POST /process-event HTTP/1.1\r\nAuthorization: Bearer %s\x01\r\nContent-Length: 2\r\n\r\n{}' \
	    "$TOKEN" > "$BATS_TEST_TMPDIR/req"
	run_file --stdin "$BATS_TEST_TMPDIR/req"
	assert_error 400 VALIDATION_ERROR
	# A tab in a header value is allowed, and stripped at the ends.
	printf 'GET /health HTTP/1.1\r\nX-Request-Id:\tabc\tdef\t\r\n\r\n' \
	    > "$BATS_TEST_TMPDIR/req"
	run_file --stdin "$BATS_TEST_TMPDIR/req"
	assert_status 200
}

@test "regress: numbers outside RFC 8259's grammar are 422" {
	# json-c's strict mode takes "1.", "-.5", "1.e5", "0." and "-01";
	# found while building the malformed corpus (tests/malformed.c).
	local n v='"data":{"event_type":"SIM/Updated"},"pb_data":{"account_info":{"bill_status":"open"}}'
	for n in 1. -.5 1.e5 0. -01 1true; do
		printf '{%s,"x":%s}' "$v" "$n" > "$BATS_TEST_TMPDIR/b.json"
		post_event "$BATS_TEST_TMPDIR/b.json"
		assert_error 422 VALIDATION_ERROR || return 1
	done
	for n in -0 1e999 12345678901234567890 1E+2 -1.5e-7 0 '[0,-1,2.5e3]'; do
		printf '{%s,"x":%s}' "$v" "$n" > "$BATS_TEST_TMPDIR/b.json"
		post_event "$BATS_TEST_TMPDIR/b.json"
		assert_status 202 || return 1
	done
}
