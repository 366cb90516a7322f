# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The HTTP contract as a client sees it through a real web server: one
# function per case, shared by every server suite.  Each takes the base
# URL the connector is mounted at (e.g. http://127.0.0.1:PORT/nsps) and
# the file where that server puts the connector's stderr.
#
# LOG_EXACT=1 (the default) asks for the log line as a whole line; a
# server that decorates the program's stderr (Apache's ErrorLog) sets
# LOG_EXACT=0 and the text is looked for inside the line.

# http METHOD URL [CURL-ARGS...]: one request; sets resp_status,
# resp_headers (CR stripped), resp_body and, for fail_with, output.
http() {
	local method=$1 url=$2 h="$BATS_TEST_TMPDIR/h" b="$BATS_TEST_TMPDIR/b"
	shift 2
	local -a m=(-X "$method")
	[ "$method" = HEAD ] && m=(-I)
	resp_status=$(curl -sS -m 20 "${m[@]}" -D "$h" -o "$b" \
	    -w '%{http_code}' "$@" "$url") || resp_status=${resp_status:-000}
	resp_headers=$(tr -d '\r' < "$h" 2>/dev/null)
	resp_body=$(cat "$b" 2>/dev/null)
	output="HTTP $resp_status"$'\n'"$resp_headers"$'\n\n'"$resp_body"
	return 0
}

# post URL FILE [CURL-ARGS...]: a POST of FILE as NSPS sends it.
# AUTH and CTYPE, when set, replace the Authorization and Content-Type
# header values (curl would send a second header otherwise).
post() {
	local url=$1 file=$2
	shift 2
	http POST "$url" -H "Content-Type: ${CTYPE:-application/json}" \
	    -H "Authorization: ${AUTH:-Bearer $TOKEN}" --data-binary "@$file" "$@"
}

# The log is read from the offset taken by log_mark, so that each case
# only sees its own lines.
log_mark() {
	LOG_OFFSET=$(stat -c %s "$1" 2>/dev/null || echo 0)
}

log_new() {
	tail -c "+$((LOG_OFFSET + 1))" "$1" 2>/dev/null
}

# assert_logged LOG TEXT [COUNT]: the lines logged since log_mark hold
# TEXT (a whole line when LOG_EXACT=1) COUNT times, default once.  The
# connector logs after it has answered, so this polls, up to 5 s.
assert_logged() {
	local flag=-cxF
	[ "${LOG_EXACT:-1}" = 1 ] || flag=-cF
	logged_lines "$flag" "$@"
}

# assert_logged_part LOG TEXT [COUNT]: as assert_logged, TEXT anywhere.
assert_logged_part() {
	logged_lines -cF "$@"
}

logged_lines() {
	local flag=$1 log=$2 text=$3 want=${4:-1} got=0 i
	for i in $(seq 1 100); do
		got=$(log_new "$log" | grep "$flag" -- "$text") || :
		[ "$got" -ge "$want" ] && break
		sleep 0.05
	done
	[ "$got" -eq "$want" ] && return 0
	stderr=$(log_new "$log")
	fail_with "expected $want log lines '$text', found $got"
}

# answered_by: "connector" when the body is the connector's JSON error
# (or success), "server" otherwise.
answered_by() {
	if jq -e 'type == "object" and (has("type") or has("message"))' \
	    <<<"$resp_body" >/dev/null 2>&1; then
		echo connector
	else
		echo server
	fi
}

assert_from() {
	local who
	who=$(answered_by)
	[ "$who" = "$1" ] || fail_with "expected the $1 to answer, the $who did"
}

contract_doc_sample() {
	local base=$1 log=$2
	log_mark "$log"
	post "$base/process-event" "$FIX/nsps-doc-sample.json"
	assert_status 202 || return 1
	assert_json .message "Event accepted for processing" || return 1
	assert_header 'Content-Type: application/json' || return 1
	assert_header 'Cache-Control: no-store' || return 1
	assert_logged "$log" "Received event: SIM/Updated | bill status: open"
}

contract_wrong_token() {
	local base=$1 log=$2
	log_mark "$log"
	AUTH="Bearer not-the-token" post "$base/process-event" \
	    "$FIX/nsps-doc-sample.json"
	assert_error 401 AUTHENTICATION_ERROR || return 1
	assert_json .error "Invalid API token" || return 1
	assert_header 'WWW-Authenticate: Bearer' || return 1
	assert_logged_part "$log" "token does not match" || return 1
	! log_new "$log" | grep -qF -e "$TOKEN" -e not-the-token ||
	    fail_with "a token reached the log" || return 1
	# Malformed: another scheme, or no token after the scheme.
	AUTH="Basic $TOKEN" post "$base/process-event" "$FIX/nsps-doc-sample.json"
	assert_error 401 AUTHENTICATION_ERROR || return 1
	AUTH="Bearer" post "$base/process-event" "$FIX/nsps-doc-sample.json"
	assert_error 401 AUTHENTICATION_ERROR
}

# The case that catches a server dropping Authorization (Apache without
# CGIPassAuth): this one must be 401 and contract_doc_sample 202.
contract_missing_token() {
	local base=$1 log=$2
	log_mark "$log"
	http POST "$base/process-event" -H 'Content-Type: application/json' \
	    --data-binary "@$FIX/nsps-doc-sample.json"
	assert_error 401 AUTHENTICATION_ERROR || return 1
	assert_header 'WWW-Authenticate: Bearer' || return 1
	assert_logged_part "$log" "no Authorization header"
}

contract_broken_body() {
	local base=$1 log=$2
	log_mark "$log"
	post "$base/process-event" "$FIX/missing-pb-data.json"
	assert_error 422 VALIDATION_ERROR || return 1
	assert_json '.details[0].loc | join(".")' \
	    pb_data.account_info.bill_status || return 1
	assert_json '.details[0].msg' "field required" || return 1
	printf '{"data":{"event_type":"SIM/Updated"},' > "$BATS_TEST_TMPDIR/cut.json"
	post "$base/process-event" "$BATS_TEST_TMPDIR/cut.json"
	assert_error 422 VALIDATION_ERROR || return 1
	assert_json '.details | length > 0' true || return 1
	printf '[]' > "$BATS_TEST_TMPDIR/array.json"
	post "$base/process-event" "$BATS_TEST_TMPDIR/array.json"
	assert_error 422 VALIDATION_ERROR || return 1
	assert_logged_part "$log" "422 VALIDATION_ERROR" 3
}

contract_get_event_path() {
	local base=$1 log=$2
	http GET "$base/process-event" -H "Authorization: Bearer $TOKEN"
	assert_error 405 VALIDATION_ERROR || return 1
	assert_header 'Allow: POST'
}

contract_unknown_path() {
	local base=$1 log=$2
	http GET "$base/no-such-thing"
	assert_status 404 || return 1
	assert_from connector || return 1
	assert_json '.message | type' string || return 1
	http POST "$base/process-event-x" -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json' --data-binary '{}'
	assert_status 404 || return 1
	assert_from connector || return 1
	# Outside the mount the connector is not asked: the server answers.
	http GET "${base%/*}/elsewhere"
	assert_status 404 || return 1
	assert_from server
}

contract_health() {
	local base=$1 log=$2
	http GET "$base/health"
	assert_status 200 || return 1
	assert_json 'type' object || return 1
	assert_header 'Content-Type: application/json' || return 1
	# curl reads no body after HEAD, so only the status is seen here.
	http HEAD "$base/health"
	assert_status 200 || return 1
	assert_header 'Content-Type: application/json'
}

# contract_metrics_from_here BASE LOG: the recipe lets this host read
# the metrics path, and the connector answers it (these suites run
# without counters: its 503 JSON, not the server's own page).
contract_metrics_from_here() {
	local base=$1 log=$2
	http GET "$base/metrics"
	assert_status 503 || return 1
	assert_from connector || return 1
	assert_json .error "Metrics unavailable"
}

contract_wrong_content_type() {
	local base=$1 log=$2
	CTYPE=text/plain post "$base/process-event" "$FIX/nsps-doc-sample.json"
	assert_error 415 VALIDATION_ERROR || return 1
	CTYPE='Application/JSON; charset=utf-8' post "$base/process-event" \
	    "$FIX/nsps-doc-sample.json"
	assert_status 202
}

# contract_over_connector_limit BASE LOG BYTES: a body over the
# connector's MAX_BODY_BYTES but under the server's own limit: the
# connector answers 413, drains the body, and the client gets the 413
# rather than a reset connection.
contract_over_connector_limit() {
	local base=$1 log=$2 bytes=$3
	head -c "$bytes" /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big.json"
	log_mark "$log"
	post "$base/process-event" "$BATS_TEST_TMPDIR/big.json"
	assert_status 413 || return 1
	assert_from connector || return 1
	assert_json .type VALIDATION_ERROR || return 1
	assert_logged_part "$log" "over the limit" || return 1
	# The connection (and a process) is still good for the next event.
	contract_doc_sample "$base" "$log"
}

# contract_over_server_limit BASE LOG BYTES: a body over the server's own
# limit (set to the connector's default in every recipe): the server
# answers 413 itself, before the connector sees anything.
contract_over_server_limit() {
	local base=$1 log=$2 bytes=$3
	head -c "$bytes" /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big.json"
	log_mark "$log"
	post "$base/process-event" "$BATS_TEST_TMPDIR/big.json"
	assert_status 413 || return 1
	assert_from server || return 1
	sleep 0.2
	! log_new "$log" | grep -qF "over the limit" ||
	    fail_with "the connector saw a body the server should have refused"
}

# contract_many BASE LOG N: N events in a row, every one 202 and logged.
contract_many() {
	local base=$1 log=$2 n=${3:-50} i codes args=()
	log_mark "$log"
	# One curl for all (an exec of curl costs 35 ms here).  Over
	# HTTP/1.1 each request has a connection of its own, as with a
	# curl each: "Connection: close" ends it.  Over HTTP/2 (Caddy and
	# H2O, with TLS) curl sends them all on one connection.
	for ((i = 0; i < n; i++)); do
		[ "$i" -eq 0 ] || args+=(--next)
		args+=(-s -o /dev/null -m 20 -w '%{http_code}\n'
		    -H 'Connection: close' -H 'Content-Type: application/json'
		    -H "Authorization: Bearer $TOKEN"
		    --data-binary "@$FIX/nsps-doc-sample.json"
		    "$base/process-event")
	done
	codes=$(curl "${args[@]}" | sort | uniq -c | tr -s ' ')
	[ "$codes" = " $n 202" ] || fail_with "statuses of $n events: $codes" ||
	    return 1
	assert_logged "$log" "Received event: SIM/Updated | bill status: open" "$n"
}

# Rows of the contract table that the server may answer itself.  Each
# takes the status and the answerer ("server" or "connector") that this
# server really gives, so the suites record it and notice a change.

# assert_answer STATUS FROM
assert_answer() {
	assert_status "$1" || return 1
	assert_from "$2" || return 1
	if [ "$2" = connector ] && [ "$1" -ge 400 ]; then
		assert_error "$1" VALIDATION_ERROR
	fi
}

# POST with no body and no Content-Length header.
contract_no_length() {
	local base=$1 log=$2
	http POST "$base/process-event" -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json'
	assert_answer "$3" "$4"
}

# A Content-Length that is not plain digits.
contract_bad_length() {
	local base=$1 log=$2
	http POST "$base/process-event" -H "Authorization: Bearer $TOKEN" \
	    -H 'Content-Type: application/json' -H 'Content-Length: -1' \
	    --data-binary '{}'
	assert_answer "$3" "$4"
}

# contract_chunked_over_limit BASE LOG BYTES STATUS FROM: a chunked body
# over every limit.
contract_chunked_over_limit() {
	local base=$1 log=$2 bytes=$3
	head -c "$bytes" /dev/zero | tr '\0' ' ' > "$BATS_TEST_TMPDIR/big.json"
	post "$base/process-event" "$BATS_TEST_TMPDIR/big.json" \
	    -H 'Transfer-Encoding: chunked'
	assert_answer "$4" "$5"
}

# A chunked body: no Content-Length on the wire.  A server that buffers
# it passes CONTENT_LENGTH on and the event is a 202.
contract_chunked() {
	local base=$1 log=$2
	log_mark "$log"
	post "$base/process-event" "$FIX/nsps-doc-sample.json" \
	    -H 'Transfer-Encoding: chunked'
	assert_answer "$3" "$4" || return 1
	[ "$3" != 202 ] || assert_logged "$log" \
	    "Received event: SIM/Updated | bill status: open"
}

# contract_refused_unread BASE LOG: answers decided before the body is
# read (404, 405) still reach the client, every time.  Apache's mod_cgid
# resets the connection when the program exits with request bytes
# unread, so the connector drains them; without that about one request
# in ten got no answer at all.
contract_refused_unread() {
	local base=$1 log=$2 i codes
	printf '{"data":{}}' > "$BATS_TEST_TMPDIR/small.json"
	codes=$(for i in $(seq 1 20); do
		curl -s -o /dev/null -m 20 -w '%{http_code}\n' \
		    -H "Authorization: Bearer $TOKEN" \
		    -H 'Content-Type: application/json' \
		    --data-binary "@$BATS_TEST_TMPDIR/small.json" \
		    "$base/process-event-x"
		curl -s -o /dev/null -m 20 -w '%{http_code}\n' \
		    --data-binary "@$BATS_TEST_TMPDIR/small.json" \
		    "$base/health"
	done | sort | uniq -c | tr -s ' ' | tr '\n' ' ')
	[ "$codes" = " 20 404  20 405 " ] ||
	    fail_with "statuses of 20 404s and 20 405s: $codes"
}
