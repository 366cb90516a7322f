#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Request-file mode: a raw HTTP/1.x request on stdin or in a file.

load helper

# req FILE METHOD TARGET [HEADER...]: writes a request with CRLF line ends
# and the sample event as its body (BODY= to change it, EOL= for LF).
req() {
	local out=$1 method=$2 target=$3 eol=${EOL-$'\r\n'} h
	shift 3
	{
		printf '%s %s HTTP/1.1%s' "$method" "$target" "$eol"
		for h in "$@"; do printf '%s%s' "$h" "$eol"; done
		printf '%s' "$eol"
		cat "${BODY:-$FIX/nsps-doc-sample.json}"
	} > "$out"
}

@test "file: a request on stdin is answered on stdout" {
	req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN" \
	    "Content-Type: application/json" "Content-Length: 1831"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_status 202
	assert_json .message "Event accepted for processing"
	assert_log_line "Received event: SIM/Updated | bill status: open"
}

@test "file: -f FILE, LF line ends and no Content-Length" {
	EOL=$'\n' req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN"
	run_file -f "$BATS_TEST_TMPDIR/r"
	assert_status 202
}

@test "file: header names are case-insensitive, the query is ignored" {
	req "$BATS_TEST_TMPDIR/r" POST '/process-event?x=1&y' "authorization:   Bearer $TOKEN  " \
	    "CONTENT-TYPE: application/json; charset=utf-8" "Host: example.com"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_status 202
}

@test "file: an absolute-form target uses its path" {
	req "$BATS_TEST_TMPDIR/r" POST http://example.com/nsps/process-event "Authorization: Bearer $TOKEN"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_status 202
}

@test "file: Content-Length bytes are the body, the rest is ignored" {
	req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN" "Content-Length: 1831"
	printf 'GET / HTTP/1.1\r\n\r\n' >> "$BATS_TEST_TMPDIR/r"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_status 202
}

@test "file: a body shorter than Content-Length is 400" {
	req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN" "Content-Length: 2000"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 400 VALIDATION_ERROR
}

@test "file: the contract applies as in the other modes" {
	req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer bad"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 401 AUTHENTICATION_ERROR
	req "$BATS_TEST_TMPDIR/r" POST /process-event
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 401 AUTHENTICATION_ERROR
	BODY="$FIX/missing-event-type.json" req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 422 VALIDATION_ERROR
	assert_json '.details[0].loc | join(".")' data.event_type
	req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN" "Content-Type: text/xml"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 415 VALIDATION_ERROR
	req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN" "Content-Length: -1"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 400 VALIDATION_ERROR
	req "$BATS_TEST_TMPDIR/r" GET /process-event
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 405 VALIDATION_ERROR
	req "$BATS_TEST_TMPDIR/r" GET /elsewhere
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 404 VALIDATION_ERROR
	BODY=/dev/null req "$BATS_TEST_TMPDIR/r" GET /health
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_status 200
}

@test "file: a body over the limit is 413, with or without Content-Length" {
	head -c 3000 /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big"
	BODY="$BATS_TEST_TMPDIR/big" req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN"
	run_file --stdin "$BATS_TEST_TMPDIR/r" -m 2000
	assert_error 413 VALIDATION_ERROR
	BODY="$BATS_TEST_TMPDIR/big" req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN" "Content-Length: 3000"
	run_file --stdin "$BATS_TEST_TMPDIR/r" -m 2000
	assert_error 413 VALIDATION_ERROR
}

@test "file: malformed requests are 400 with the reason logged" {
	while IFS='|' read -r text reason; do
		printf "$text" > "$BATS_TEST_TMPDIR/r"
		run_file --stdin "$BATS_TEST_TMPDIR/r"
		assert_error 400 VALIDATION_ERROR || { echo "case: $text"; return 1; }
		assert_log "$reason" || return 1
	done <<-'EOF'
	|empty request
	POST /process-event HTTP/1.1\r\nAuthorization: x\r\n|no terminating blank line
	POST /process-event\r\n\r\n|malformed request line
	POST /process-event HTTP/2.0\r\n\r\n|malformed request line
	POST  /process-event HTTP/1.1\r\n\r\n|malformed request line
	POST * HTTP/1.1\r\n\r\n|request target is not a path
	P@ST /process-event HTTP/1.1\r\n\r\n|malformed method
	POST /process-event HTTP/1.1\r\nNoColon\r\n\r\n|malformed header line
	POST /process-event HTTP/1.1\r\nBad Name: x\r\n\r\n|malformed header name
	POST /process-event HTTP/1.1\r\nA: b\r\n folded\r\n\r\n|obsolete header line folding
	POST /process-event HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx|duplicate Content-Length header
	POST /process-event HTTP/1.1\r\nAuthorization: a\r\nauthorization: b\r\n\r\n|duplicate Authorization header
	POST /process-event HTTP/1.1\r\nX: \0\r\n\r\n|NUL byte in the request head
	EOF
}

@test "file: a request head over 64 KiB is 400" {
	{ printf 'POST /process-event HTTP/1.1\r\nX: '; head -c 70000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } > "$BATS_TEST_TMPDIR/r"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 400 VALIDATION_ERROR
	assert_log "request head longer than 64 KiB"
}

@test "file: without a token the answer is 500 and the reason is logged" {
	req "$BATS_TEST_TMPDIR/r" POST /process-event "Authorization: Bearer $TOKEN"
	run --separate-stderr env -i "$CONNECTOR" -f "$BATS_TEST_TMPDIR/r"
	split_response
	assert_error 500 INTERNAL_ERROR
	assert_log "no API token configured"
}

@test "file: an unreadable -f FILE exits 1 with a message" {
	run --separate-stderr env -i API_TOKEN=x "$CONNECTOR" -f /nonexistent/request
	[ "$status" -eq 1 ]
	[ "$stderr" = "nsps-connector: /nonexistent/request: No such file or directory" ]
}
