# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Shared by the bats suites: run the connector the way a web server
# would, then look at the CGI response and the log line.
bats_require_minimum_version 1.5.0

CONNECTOR=${NSPS_CONNECTOR:?NSPS_CONNECTOR must name the built binary}
FIX=${TESTS_DIR:?TESTS_DIR must name the tests directory}/fixtures
TOKEN=nsps-test-token-4f2a9c
# NSPS_WRAPPER (e.g. "valgrind -q --error-exitcode=99") runs each
# connector invocation under a tool.
WRAPPER=${NSPS_WRAPPER:-}

# run_cgi [--body FILE] [NAME=VALUE ...]: one CGI invocation with only
# the given environment.  Sets $output, $stderr, $status, then the parsed
# $resp_status, $resp_headers and $resp_body.
run_cgi() {
	local body=/dev/null
	if [ "${1:-}" = --body ]; then
		body=$2
		shift 2
	fi
	# shellcheck disable=SC2086
	run --separate-stderr env -i PATH="$PATH" "$@" $WRAPPER "$CONNECTOR" \
	    < "$body"
	split_response
}

# post_event FILE [NAME=VALUE ...]: a valid NSPS delivery of FILE, with
# later assignments overriding the defaults.
post_event() {
	local file=$1
	shift
	run_cgi --body "$file" API_TOKEN="$TOKEN" REQUEST_METHOD=POST \
	    SCRIPT_NAME=/process-event CONTENT_TYPE=application/json \
	    CONTENT_LENGTH="$(wc -c < "$file" | tr -d ' ')" \
	    HTTP_AUTHORIZATION="Bearer $TOKEN" "$@"
}

# post_events [NAME=VALUE ...] -- FILE...: each FILE, in order, posted
# as post_event would, through one connector serving FastCGI on a unix
# socket for the whole batch (tests/fcgi-post), with only the given
# environment.  For loading a queue: one exec, and on PostgreSQL one
# connection, for the batch instead of one each an event.  Fails,
# saying which, unless every answer is a 202; the connector's log is in
# $BATS_TEST_TMPDIR/post.log.
post_events() {
	local env=() sock=$BATS_TEST_TMPDIR/post.sock pid i out rc=0
	while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	rm -f "$sock"
	# fd 3 is bats' own: the connector holding it would hold the suite.
	# shellcheck disable=SC2086
	env -i PATH="$PATH" API_TOKEN="$TOKEN" "${env[@]}" $WRAPPER \
	    "$CONNECTOR" -s "$sock" 2>> "$BATS_TEST_TMPDIR/post.log" \
	    < /dev/null 3>&- &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		if [ -S "$sock" ] || ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.05
	done
	if [ -S "$sock" ]; then
		out=$(POST_TOKEN=$TOKEN "$(dirname "$CONNECTOR")/tests/fcgi-post" \
		    "$sock" "$@") || rc=1
	else
		echo "post_events: the connector did not serve $sock" >&2
		rc=1
	fi
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ "$rc" -eq 0 ] && return 0
	echo "post_events: not all accepted:" >&2
	grep -v '^202 ' <<<"$out" | head -n 5 >&2
	tail -n 5 "$BATS_TEST_TMPDIR/post.log" >&2
	return 1
}

# run_file [--stdin FILE] [ARGS...]: request-file mode.
run_file() {
	local in=/dev/null
	if [ "${1:-}" = --stdin ]; then
		in=$2
		shift 2
	fi
	# shellcheck disable=SC2086
	run --separate-stderr env -i PATH="$PATH" API_TOKEN="$TOKEN" \
	    $WRAPPER "$CONNECTOR" "$@" < "$in"
	split_response
}

# Splits a CGI response in $output (CRLF line ends) into its parts.
split_response() {
	local text=${output//$'\r'/}
	resp_status=$(sed -n '1s/^Status: \([0-9][0-9][0-9]\) .*/\1/p' <<<"$text")
	resp_headers=${text%%$'\n\n'*}
	resp_body=
	[[ $text == *$'\n\n'* ]] && resp_body=${text#*$'\n\n'}
	return 0
}

fail_with() {
	printf '%s\n' "$@" "--- response:" "$output" "--- stderr:" "${stderr:-}" >&2
	return 1
}

assert_status() {
	[ "$resp_status" = "$1" ] || fail_with "expected status $1, got '$resp_status'"
}

# assert_json JQ-FILTER EXPECTED
assert_json() {
	local got
	got=$(jq -r "$1" <<<"$resp_body" 2>/dev/null) ||
	    fail_with "body is not JSON: $resp_body" || return 1
	[ "$got" = "$2" ] || fail_with "$1: expected '$2', got '$got'"
}

assert_header() {
	grep -qixF -- "$1" <<<"$resp_headers" || fail_with "no header '$1'"
}

# The error contract: JSON with message, error and type, the right
# status and the fixed headers.
assert_error() {
	assert_status "$1" || return 1
	# One jq for the three fields: an exec of jq costs 30 ms here.
	assert_json '"\(.type) \(.message | type) \(.error | type)"' \
	    "$2 string string" || return 1
	assert_header 'Content-Type: application/json' || return 1
	assert_header 'Cache-Control: no-store'
}

# assert_log TEXT: the log (stderr) has a line containing TEXT.
assert_log() {
	grep -qF -- "$1" <<<"${stderr:-}" || fail_with "log lacks '$1'"
}

# assert_log_line TEXT: the log is exactly that one line.
assert_log_line() {
	[ "${stderr:-}" = "$1" ] || fail_with "log is not exactly '$1'"
}
