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

@test "file: a bare JSON event is answered as a POST with a valid token, with a note" {
	run_file --stdin "$FIX/nsps-doc-sample.json"
	assert_status 202
	assert_json .message "Event accepted for processing"
	[ "${#stderr_lines[@]}" -eq 2 ]
	[ "${stderr_lines[0]}" = "nsps-connector: request file: a bare JSON event, taken as a POST to /process-event with a valid token" ]
	[ "${stderr_lines[1]}" = "Received event: SIM/Updated | bill status: open" ]
	{ printf ' \r\n\t'; cat "$FIX/nsps-doc-sample.json"; } > "$BATS_TEST_TMPDIR/e"
	run_file -f "$BATS_TEST_TMPDIR/e" -p /nsps/in
	assert_status 202
	assert_log "taken as a POST to /nsps/in"
	# The token is never needed nor shown.
	[[ $stderr != *"$TOKEN"* ]]
}

@test "file: a bare event is checked like any other" {
	run_file --stdin "$FIX/missing-event-type.json"
	assert_error 422 VALIDATION_ERROR
	assert_json '.details[0].loc | join(".")' data.event_type
	assert_log "Rejected POST /process-event: 422"
	run_file --stdin "$FIX/nsps-doc-sample.json" -m 1000
	assert_error 413 VALIDATION_ERROR
	printf '{"data": ' > "$BATS_TEST_TMPDIR/e"
	run_file --stdin "$BATS_TEST_TMPDIR/e"
	assert_error 422 VALIDATION_ERROR
	# No token configured is still a configuration error.
	run --separate-stderr env -i "$CONNECTOR" -f "$FIX/nsps-doc-sample.json"
	split_response
	assert_error 500 INTERNAL_ERROR
	assert_log "no API token configured"
}

@test "file: a bare event is stored in the spool like any accepted one, once" {
	local spool=$BATS_TEST_TMPDIR/spool
	mkdir "$spool"
	run_file --stdin "$FIX/nsps-doc-sample.json" -d "$spool"
	assert_status 202
	[ "$(find "$spool/new" -type f | wc -l)" -eq 1 ]
	cmp "$(find "$spool/new" -type f)" "$FIX/nsps-doc-sample.json"
	run_file --stdin "$FIX/nsps-doc-sample.json" -d "$spool"
	assert_status 200
	assert_json .message "Event already accepted"
	[ "$(find "$spool/new" -type f | wc -l)" -eq 1 ]
}

# chunk FILE SIZE...: FILE's bytes as chunks of the sizes given in turn,
# with an extension on each size line, then the last chunk and a trailer.
chunk() {
	python3 - "$@" <<-'EOF'
	import sys
	data = open(sys.argv[1], "rb").read()
	sizes = [int(s) for s in sys.argv[2:]]
	out, i, k = b"", 0, 0
	while i < len(data):
	    n = sizes[k % len(sizes)]
	    k += 1
	    out += b"%x;name=value\r\n" % len(data[i:i + n]) + data[i:i + n] + b"\r\n"
	    i += n
	sys.stdout.buffer.write(out + b"0\r\nX-Trailer: t\r\n\r\n")
	EOF
}

@test "file: a chunked body is decoded" {
	local h="Authorization: Bearer $TOKEN" te="Transfer-Encoding: chunked"
	chunk "$FIX/nsps-doc-sample.json" 1 700 7 2000 > "$BATS_TEST_TMPDIR/body"
	BODY="$BATS_TEST_TMPDIR/body" req "$BATS_TEST_TMPDIR/r" POST /process-event "$h" "$te"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_status 202
	assert_log_line "Received event: SIM/Updated | bill status: open"
	BODY="$BATS_TEST_TMPDIR/body" EOL=$'\n' req "$BATS_TEST_TMPDIR/r" POST /process-event "$h" "transfer-encoding: CHUNKED"
	run_file -f "$BATS_TEST_TMPDIR/r"
	assert_status 202
	# Decoded, it is over the limit: 413, as with a Content-Length.
	BODY="$BATS_TEST_TMPDIR/body" req "$BATS_TEST_TMPDIR/r" POST /process-event "$h" "$te"
	run_file --stdin "$BATS_TEST_TMPDIR/r" -m 1830
	assert_error 413 VALIDATION_ERROR
}

@test "file: malformed chunked framing is 400 with the reason logged" {
	local h="POST /process-event HTTP/1.1\r\nAuthorization: Bearer $TOKEN\r\n"
	while IFS='|' read -r text reason; do
		printf "$h$text" > "$BATS_TEST_TMPDIR/r"
		run_file --stdin "$BATS_TEST_TMPDIR/r"
		assert_error 400 VALIDATION_ERROR || { echo "case: $text"; return 1; }
		assert_log "$reason" || return 1
	done <<-'EOF'
	Transfer-Encoding: gzip\r\n\r\nxx|Transfer-Encoding other than chunked
	Transfer-Encoding: gzip, chunked\r\n\r\nxx|Transfer-Encoding other than chunked
	Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nx\r\n0\r\n\r\n|both Transfer-Encoding and Content-Length
	Transfer-Encoding: chunked\r\n\r\n|a chunk size line is missing
	Transfer-Encoding: chunked\r\n\r\nzz\r\n|malformed chunk size
	Transfer-Encoding: chunked\r\n\r\n-1\r\n|malformed chunk size
	Transfer-Encoding: chunked\r\n\r\n10\r\n{}|chunked body ended inside a chunk
	Transfer-Encoding: chunked\r\n\r\n2\r\n{}}\r\n0\r\n\r\n|no line end after a chunk
	Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n|the trailer section does not end
	EOF
}

@test "file: an unfinished request head is logged with the mode and a hint" {
	printf 'POST /process-event HTTP/1.1\r\nAuthorization: x\r\n' > "$BATS_TEST_TMPDIR/r"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 400 VALIDATION_ERROR
	assert_log_line "Rejected request-file -: 400 VALIDATION_ERROR: request head has no terminating blank line (a bare JSON event starts with {)"
	printf '[{"data": {}}]' > "$BATS_TEST_TMPDIR/r"
	run_file --stdin "$BATS_TEST_TMPDIR/r"
	assert_error 400 VALIDATION_ERROR
	assert_log "Rejected request-file -: 400"
}
