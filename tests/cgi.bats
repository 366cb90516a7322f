#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The HTTP contract, driven through plain CGI (RFC 3875) as a web server
# would run the binary: environment plus exactly CONTENT_LENGTH bytes.

load helper

@test "cgi: the NSPS documentation's sample event is accepted" {
	post_event "$FIX/nsps-doc-sample.json"
	assert_status 202
	assert_json .message "Event accepted for processing"
	assert_header 'Content-Type: application/json'
	assert_header 'Cache-Control: no-store'
	assert_log_line "Received event: SIM/Updated | bill status: open"
	[ "$status" -eq 0 ]
}

@test "cgi: every sample event gets the answer and log line of its table" {
	while read -r file code type bill; do
		post_event "$FIX/$file"
		assert_status "$code" || return 1
		if [ "$code" = 202 ]; then
			assert_log_line "Received event: $type | bill status: $bill" || return 1
		else
			assert_error 422 VALIDATION_ERROR || return 1
		fi
	done <<-'EOF'
	sim-updated-basic.json 202 SIM/Updated open
	sim-updated-basic-retry.json 202 SIM/Updated open
	sim-updated-stale-out-of-order.json 202 SIM/Updated suspended
	sim-updated-late-reenriched.json 202 SIM/Updated open
	sim-updated-blocked.json 202 SIM/Updated open
	sim-updated-suspended.json 202 SIM/Updated suspended
	sim-updated-terminated.json 202 SIM/Updated terminated
	sim-updated-bundle-counters.json 202 SIM/Updated open
	sim-updated-no-access-policy.json 202 SIM/Updated open
	sim-replaced-swap.json 202 SIM/Replaced open
	account-unblocked-basic.json 202 Account/Unblocked open
	sim-created-inventory.json 422
	sim-deleted-inventory.json 422
	missing-bill-status.json 422
	missing-event-type.json 422
	missing-pb-data.json 422
	EOF
}

@test "cgi: 422 details name each failing field" {
	post_event "$FIX/missing-pb-data.json"
	assert_error 422 VALIDATION_ERROR
	assert_json .message "Validation failed"
	assert_json .error "Validation failed"
	assert_json '.details | length' 1
	assert_json '.details[0].loc | join(".")' pb_data.account_info.bill_status
	assert_json '.details[0].msg' "field required"
	assert_log "422 VALIDATION_ERROR: pb_data.account_info.bill_status: field required"
}

@test "cgi: both required fields missing gives two details" {
	printf '{"data":{},"pb_data":{"account_info":{"bill_status":""}}}' > "$BATS_TEST_TMPDIR/b.json"
	post_event "$BATS_TEST_TMPDIR/b.json"
	assert_error 422 VALIDATION_ERROR
	assert_json '.details | length' 2
	assert_json '.details[0].loc | join(".")' data.event_type
	assert_json '.details[1].msg' "must not be empty"
}

@test "cgi: a required field that is not a string is a 422" {
	for v in 1 true null '{}' '[]' '["open"]'; do
		printf '{"data":{"event_type":"SIM/Updated"},"pb_data":{"account_info":{"bill_status":%s}}}' "$v" > "$BATS_TEST_TMPDIR/b.json"
		post_event "$BATS_TEST_TMPDIR/b.json"
		assert_error 422 VALIDATION_ERROR || return 1
	done
}

@test "cgi: a required string holding U+0000 is a 422" {
	printf '{"data":{"event_type":"SIM\\u0000x"},"pb_data":{"account_info":{"bill_status":"open"}}}' > "$BATS_TEST_TMPDIR/b.json"
	post_event "$BATS_TEST_TMPDIR/b.json"
	assert_error 422 VALIDATION_ERROR
	assert_json '.details[0].msg' "must not contain U+0000"
}

@test "cgi: wrong token is 401 with WWW-Authenticate" {
	post_event "$FIX/nsps-doc-sample.json" HTTP_AUTHORIZATION="Bearer wrong"
	assert_error 401 AUTHENTICATION_ERROR
	assert_json .message "Authentication failed"
	assert_json .error "Invalid API token"
	assert_header 'WWW-Authenticate: Bearer'
	assert_log "401 AUTHENTICATION_ERROR: token does not match"
	! grep -qF "$TOKEN" <<<"$stderr"
	! grep -qF wrong <<<"$stderr"
}

@test "cgi: missing Authorization is 401" {
	run_cgi --body "$FIX/nsps-doc-sample.json" API_TOKEN="$TOKEN" \
	    REQUEST_METHOD=POST SCRIPT_NAME=/process-event CONTENT_LENGTH=1831
	assert_error 401 AUTHENTICATION_ERROR
	assert_log "no Authorization header"
}

@test "cgi: malformed Authorization values are 401" {
	for v in "$TOKEN" "Basic $TOKEN" "Bearer" "Bearer " "Bearer  " \
	    "Bearer$TOKEN" "Bearer	$TOKEN" "Bearer $TOKEN x" "Token $TOKEN" \
	    "Bearer ${TOKEN}x" "Bearer ${TOKEN%?}" "Bearer $(printf 'A%.0s' {1..5000})"; do
		post_event "$FIX/nsps-doc-sample.json" HTTP_AUTHORIZATION="$v"
		assert_error 401 AUTHENTICATION_ERROR || return 1
	done
}

@test "cgi: the Bearer scheme is case-insensitive and takes several spaces" {
	for v in "bearer $TOKEN" "BEARER $TOKEN" "bEaReR    $TOKEN" "Bearer $TOKEN  "; do
		post_event "$FIX/nsps-doc-sample.json" HTTP_AUTHORIZATION="$v"
		assert_status 202 || return 1
	done
}

@test "cgi: any of several configured tokens is accepted (rotation)" {
	for t in old-token "$TOKEN" newer; do
		post_event "$FIX/nsps-doc-sample.json" API_TOKEN="old-token, $TOKEN,newer" \
		    HTTP_AUTHORIZATION="Bearer $t"
		assert_status 202 || return 1
	done
	post_event "$FIX/nsps-doc-sample.json" API_TOKEN="old-token,newer"
	assert_status 401
}

@test "cgi: authentication comes first: bad token on a bad body is 401" {
	printf 'not json' > "$BATS_TEST_TMPDIR/b"
	post_event "$BATS_TEST_TMPDIR/b" HTTP_AUTHORIZATION="Bearer nope" CONTENT_TYPE=text/plain
	assert_error 401 AUTHENTICATION_ERROR
	post_event "$BATS_TEST_TMPDIR/b" HTTP_AUTHORIZATION="Bearer nope" CONTENT_LENGTH=99999999
	assert_error 401 AUTHENTICATION_ERROR
}

@test "cgi: body that is not JSON is 422" {
	printf 'event_type=SIM/Updated' > "$BATS_TEST_TMPDIR/b"
	post_event "$BATS_TEST_TMPDIR/b"
	assert_error 422 VALIDATION_ERROR
	assert_json '.details[0].loc[0]' body
	assert_log "422 VALIDATION_ERROR: invalid JSON"
}

@test "cgi: strict JSON: lenient forms json-c would take are 422" {
	local ok='"data":{"event_type":"T"},"pb_data":{"account_info":{"bill_status":"open"}}'
	for b in "{$ok,'x':1}" "{$ok,\"x\":NaN}" "{$ok,\"x\":Infinity}" \
	    "{$ok,\"x\":-Infinity}" "{$ok,}" "{$ok} x" "{$ok}{}" "{$ok,\"x\":[1,]}" \
	    "{$ok /* c */}" "{$ok,\"x\":01}" "{$ok,\"x\":'s'}" "{$ok,\"x\":\"a	b\"}" \
	    "{$ok,\"x\":.5}" "{$ok,\"x\":+1}" "{$ok,\"x\":TRUE}" "[{$ok}]" '"s"' 42 '' '   ' \
	    "{$ok" "{$ok,\"x\":\"\\x41\"}"; do
		printf '%s' "$b" > "$BATS_TEST_TMPDIR/b"
		post_event "$BATS_TEST_TMPDIR/b"
		assert_error 422 VALIDATION_ERROR || { echo "body: $b"; return 1; }
	done
	printf ' \n\t{%s}\r\n ' "$ok" > "$BATS_TEST_TMPDIR/b"
	post_event "$BATS_TEST_TMPDIR/b"
	assert_status 202
}

@test "cgi: strict JSON: NUL bytes, bad UTF-8 and a BOM are 422" {
	local ok='"data":{"event_type":"T"},"pb_data":{"account_info":{"bill_status":"open"}}'
	printf '{%s}\0junk' "$ok" > "$BATS_TEST_TMPDIR/b1"
	printf '{%s,"x":"\xc3\x28"}' "$ok" > "$BATS_TEST_TMPDIR/b2"
	printf '{%s,"x":"\xed\xa0\x80"}' "$ok" > "$BATS_TEST_TMPDIR/b3"
	printf '\xef\xbb\xbf{%s}' "$ok" > "$BATS_TEST_TMPDIR/b4"
	printf '{%s,"x":"a\0b"}' "$ok" > "$BATS_TEST_TMPDIR/b5"
	for f in b1 b2 b3 b4 b5; do
		post_event "$BATS_TEST_TMPDIR/$f"
		assert_error 422 VALIDATION_ERROR || { echo "case $f"; return 1; }
	done
	printf '{%s,"x":"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}' "$ok" > "$BATS_TEST_TMPDIR/b6"
	post_event "$BATS_TEST_TMPDIR/b6"
	assert_status 202
}

@test "cgi: nesting deeper than the cap is 422, not a crash" {
	{ printf '{"data":{"event_type":"T"},"x":'; head -c 20000 /dev/zero | tr '\0' '['; } > "$BATS_TEST_TMPDIR/b"
	post_event "$BATS_TEST_TMPDIR/b"
	assert_error 422 VALIDATION_ERROR
	[ "$status" -eq 0 ]
}

@test "cgi: GET on the event path is 405 with Allow: POST" {
	for m in GET HEAD PUT DELETE PATCH OPTIONS; do
		run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=$m SCRIPT_NAME=/process-event \
		    HTTP_AUTHORIZATION="Bearer $TOKEN"
		assert_status 405 || return 1
		assert_header 'Allow: POST' || return 1
		[ $m = HEAD ] || assert_json .type VALIDATION_ERROR || return 1
	done
	assert_log "405 VALIDATION_ERROR"
}

@test "cgi: health check answers GET and HEAD without a token" {
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_status 200
	assert_json .status ok
	assert_header 'Content-Type: application/json'
	assert_log "Health check GET /health: 200"
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=HEAD SCRIPT_NAME=/health
	assert_status 200
	[ -z "$resp_body" ]
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=POST SCRIPT_NAME=/health CONTENT_LENGTH=0
	assert_status 405
	assert_header 'Allow: GET, HEAD'
}

@test "cgi: unknown paths are 404" {
	for p in / /process-event-x /process-event/ /processevent /x/health2 /PROCESS-EVENT; do
		run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=POST SCRIPT_NAME="$p" \
		    HTTP_AUTHORIZATION="Bearer $TOKEN" CONTENT_LENGTH=0
		assert_error 404 VALIDATION_ERROR || { echo "path $p"; return 1; }
	done
}

@test "cgi: the path is SCRIPT_NAME + PATH_INFO and matches at a / boundary" {
	post_event "$FIX/nsps-doc-sample.json" SCRIPT_NAME=/cgi-bin/nsps-connector PATH_INFO=/process-event
	assert_status 202
	post_event "$FIX/nsps-doc-sample.json" SCRIPT_NAME= PATH_INFO=/nsps/process-event
	assert_status 202
	post_event "$FIX/nsps-doc-sample.json" SCRIPT_NAME=/nsps/x-process-event
	assert_status 404
}

@test "cgi: EVENT_PATH and HEALTH_PATH move the routes" {
	post_event "$FIX/nsps-doc-sample.json" EVENT_PATH=/api/events SCRIPT_NAME=/api/events
	assert_status 202
	post_event "$FIX/nsps-doc-sample.json" EVENT_PATH=/api/events
	assert_status 404
	run_cgi API_TOKEN="$TOKEN" HEALTH_PATH=/healthz REQUEST_METHOD=GET SCRIPT_NAME=/healthz
	assert_status 200
}

@test "cgi: Content-Type other than application/json is 415" {
	for ct in text/plain application/x-www-form-urlencoded application/jsonx 'application/json-patch+json' multipart/form-data; do
		post_event "$FIX/nsps-doc-sample.json" CONTENT_TYPE="$ct"
		assert_error 415 VALIDATION_ERROR || { echo "type $ct"; return 1; }
	done
	for ct in application/json 'application/json; charset=utf-8' APPLICATION/JSON 'Application/Json;charset=UTF-8' ''; do
		post_event "$FIX/nsps-doc-sample.json" CONTENT_TYPE="$ct"
		assert_status 202 || { echo "type $ct"; return 1; }
	done
}

@test "cgi: POST without CONTENT_LENGTH, or with an empty one, is 411" {
	run_cgi --body "$FIX/nsps-doc-sample.json" API_TOKEN="$TOKEN" REQUEST_METHOD=POST \
	    SCRIPT_NAME=/process-event HTTP_AUTHORIZATION="Bearer $TOKEN"
	assert_error 411 VALIDATION_ERROR
	post_event "$FIX/nsps-doc-sample.json" CONTENT_LENGTH=
	assert_error 411 VALIDATION_ERROR
}

@test "cgi: CONTENT_LENGTH that is not plain digits is 400" {
	for cl in -1 +5 ' 5' '5 ' abc 1e3 0x10 99999999999999999999999; do
		post_event "$FIX/nsps-doc-sample.json" CONTENT_LENGTH="$cl"
		assert_error 400 VALIDATION_ERROR || { echo "length '$cl'"; return 1; }
	done
}

@test "cgi: a body shorter than CONTENT_LENGTH is 400" {
	post_event "$FIX/nsps-doc-sample.json" CONTENT_LENGTH=5000
	assert_error 400 VALIDATION_ERROR
	assert_log "body ended before Content-Length bytes"
}

@test "cgi: exactly CONTENT_LENGTH bytes are read, never to EOF" {
	{ cat "$FIX/nsps-doc-sample.json"; printf 'trailing garbage'; } > "$BATS_TEST_TMPDIR/b"
	post_event "$BATS_TEST_TMPDIR/b" CONTENT_LENGTH=1831
	assert_status 202
}

@test "cgi: CONTENT_LENGTH over the limit is 413 before a byte is read" {
	post_event "$FIX/nsps-doc-sample.json" CONTENT_LENGTH=2097153
	assert_error 413 VALIDATION_ERROR
	post_event "$FIX/nsps-doc-sample.json" MAX_BODY_BYTES=1000
	assert_error 413 VALIDATION_ERROR
	assert_log "body of 1831 bytes is over the limit of 1000"
	post_event "$FIX/nsps-doc-sample.json" MAX_BODY_BYTES=1831
	assert_status 202
}

@test "cgi: a refused body is drained so the server can deliver the answer" {
	head -c 3000000 /dev/zero > "$BATS_TEST_TMPDIR/big"
	# A pipe that holds less than the body: the writer must not block.
	run --separate-stderr bash -c 'cat "$1" | env -i API_TOKEN=t REQUEST_METHOD=POST \
	    SCRIPT_NAME=/process-event CONTENT_LENGTH=3000000 HTTP_AUTHORIZATION="Bearer t" \
	    "$2"; echo "cat: ${PIPESTATUS[0]}"' _ "$BATS_TEST_TMPDIR/big" "$CONNECTOR"
	split_response
	assert_status 413
	[[ $output == *"cat: 0" ]] || fail_with "the writer was cut off"
}

@test "cgi: no token configured is 500 INTERNAL_ERROR and a log line" {
	post_event "$FIX/nsps-doc-sample.json" API_TOKEN=
	assert_error 500 INTERNAL_ERROR
	assert_log "no API token configured"
	run_cgi REQUEST_METHOD=GET SCRIPT_NAME=/health
	assert_error 500 INTERNAL_ERROR
}

@test "cgi: every configuration error is a 500 with the reason in the log" {
	while IFS='|' read -r setting reason; do
		post_event "$FIX/nsps-doc-sample.json" "$setting"
		assert_error 500 INTERNAL_ERROR || { echo "$setting"; return 1; }
		assert_log "$reason" || return 1
		! grep -q '"message":"Event' <<<"$resp_body" || return 1
	done <<-'EOF'
	MAX_BODY_BYTES=abc|MAX_BODY_BYTES: 'abc' is not a number
	MAX_BODY_BYTES=0|MAX_BODY_BYTES
	MAX_BODY_BYTES=-5|MAX_BODY_BYTES
	MAX_BODY_BYTES=999999999999|MAX_BODY_BYTES
	LOG_FORMAT=xml|LOG_FORMAT: 'xml' is neither text nor json
	REQUIRED_FIELDS=data..event_type|REQUIRED_FIELDS: 'data..event_type': empty name
	REQUIRED_FIELDS=data.event type|REQUIRED_FIELDS
	REQUIRED_FIELDS=a,,b|REQUIRED_FIELDS
	EVENT_PATH=process-event|EVENT_PATH: 'process-event' does not start with /
	EVENT_PATH=/health|EVENT_PATH and HEALTH_PATH are both '/health'
	API_TOKEN_FILE=/nonexistent/tokens|API_TOKEN_FILE: /nonexistent/tokens: No such file or directory
	NSPS_ENV_FILE=/nonexistent/env|NSPS_ENV_FILE: /nonexistent/env
	API_TOKEN=a b|API_TOKEN: a token holds a blank
	EOF
}

@test "cgi: REQUIRED_FIELDS changes which fields an event needs" {
	post_event "$FIX/sim-created-inventory.json" REQUIRED_FIELDS=data.event_type
	assert_status 202
	assert_log_line "Received event: SIM/Created | bill status: -"
	post_event "$FIX/nsps-doc-sample.json" REQUIRED_FIELDS="data.event_type, pb_data.sim_info.imsi"
	assert_status 202
	post_event "$FIX/nsps-doc-sample.json" REQUIRED_FIELDS="pb_data.sim_info.iccid"
	assert_error 422 VALIDATION_ERROR
	assert_json '.details[0].loc | join(".")' pb_data.sim_info.iccid
}

@test "cgi: values from the request cannot forge log lines" {
	printf '{"data":{"event_type":"SIM/Updated\\nReceived event: fake | bill status: x"},"pb_data":{"account_info":{"bill_status":"open\\r\\u001b[31m"}}}' > "$BATS_TEST_TMPDIR/b"
	post_event "$BATS_TEST_TMPDIR/b"
	assert_status 202
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail_with "more than one log line"
	assert_log 'SIM/Updated\x0aReceived event: fake'
	assert_log 'open\x0d\x1b[31m'
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=GET SCRIPT_NAME=$'/x\nRejected' 
	[ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ] || fail_with "more than one log line"
}

@test "cgi: LOG_FORMAT=json writes one JSON object per request" {
	post_event "$FIX/nsps-doc-sample.json" LOG_FORMAT=json \
	    HTTP_X_B3_TRACEID=abc123 HTTP_X_REQUEST_ID=req-1
	assert_status 202
	[ "$(jq -r .message <<<"$stderr")" = "Received event: SIM/Updated | bill status: open" ]
	[ "$(jq -r .status <<<"$stderr")" = 202 ]
	[ "$(jq -r .level <<<"$stderr")" = info ]
	[ "$(jq -r .event_id <<<"$stderr")" = 3e84c79f-ab6f-4546-8e27-0b6ab866f1fb ]
	[ "$(jq -r .event_type <<<"$stderr")" = SIM/Updated ]
	[ "$(jq -r .bill_status <<<"$stderr")" = open ]
	[ "$(jq -r .request_id <<<"$stderr")" = abc123 ]
	[ "$(jq -r .unique_id <<<"$stderr")" = req-1 ]
	[ "$(jq -r '.duration_ms | type' <<<"$stderr")" = number ]
	jq -e '.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")' <<<"$stderr"
}

@test "cgi: LOG_FORMAT=json generates ids and logs rejections" {
	post_event "$FIX/nsps-doc-sample.json" LOG_FORMAT=json HTTP_AUTHORIZATION="Bearer not-the-token"
	assert_status 401
	[ "$(jq -r .level <<<"$stderr")" = warning ]
	[ "$(jq -r .type <<<"$stderr")" = AUTHENTICATION_ERROR ]
	[ "$(jq -r .reason <<<"$stderr")" = "token does not match" ]
	jq -e '.request_id | test("^[0-9a-f-]{36}$")' <<<"$stderr"
	jq -e '.unique_id | test("^[0-9a-f-]{36}$")' <<<"$stderr"
	[ "$(jq -r .request_id <<<"$stderr")" != "$(jq -r .unique_id <<<"$stderr")" ]
	! grep -q not-the-token <<<"$stderr"
}

@test "cgi: hostile header values stay valid JSON in the json log" {
	post_event "$FIX/nsps-doc-sample.json" LOG_FORMAT=json \
	    HTTP_X_B3_TRACEID=$'a"b\\c\nd\x01\xff' HTTP_X_REQUEST_ID="$(printf 'x%.0s' {1..5000})"
	assert_status 202
	jq -e . <<<"$stderr" >/dev/null
	[ "$(jq -r '.unique_id | length' <<<"$stderr")" -le 256 ]
}
