#!/usr/bin/env bats
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
