#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The example request files and dotenv file in contrib/ work as the
# README and the man page say: nsps-connector < contrib/requests/x.http

load helper

REQ=$TESTS_DIR/../contrib/requests

# run_example FILE [NAME=VALUE...]: request-file mode, demo token.
run_example() {
	local file=$1
	shift
	run --separate-stderr env -i PATH="$PATH" API_TOKEN=demo-token "$@" \
	    $WRAPPER "$CONNECTOR" < "$REQ/$file"
	split_response
}

@test "requests: valid-event.http is 202 and logs the event" {
	run_example valid-event.http
	assert_status 202
	assert_log_line "Received event: SIM/Updated | bill status: open"
	[ "$status" -eq 0 ]
}

@test "requests: wrong-token.http is 401" {
	run_example wrong-token.http
	assert_error 401 AUTHENTICATION_ERROR
	assert_header 'WWW-Authenticate: Bearer'
	assert_log "token does not match"
}

@test "requests: missing-token.http is 401" {
	run_example missing-token.http
	assert_error 401 AUTHENTICATION_ERROR
	assert_log "no Authorization header"
}

@test "requests: bad-body.http is 422 naming the missing field" {
	run_example bad-body.http
	assert_error 422 VALIDATION_ERROR
	assert_json '.details[0].loc | join(".")' pb_data.account_info.bill_status
}

@test "requests: health.http is 200 without a token" {
	run --separate-stderr env -i PATH="$PATH" API_TOKEN=x "$CONNECTOR" < "$REQ/health.http"
	split_response
	assert_status 200
}

@test "requests: the example dotenv file configures the connector" {
	printf '%s\n' demo-token > "$BATS_TEST_TMPDIR/token"
	chmod 600 "$BATS_TEST_TMPDIR/token"
	sed "s|^API_TOKEN_FILE=/etc/nsps/token$|API_TOKEN_FILE=$BATS_TEST_TMPDIR/token|" \
	    "$TESTS_DIR/../contrib/nsps-connector.env.example" > "$BATS_TEST_TMPDIR/env"
	! cmp -s "$BATS_TEST_TMPDIR/env" "$TESTS_DIR/../contrib/nsps-connector.env.example"
	run --separate-stderr env -i PATH="$PATH" $WRAPPER "$CONNECTOR" \
	    -e "$BATS_TEST_TMPDIR/env" < "$REQ/valid-event.http"
	split_response
	assert_status 202
	# Uncommenting every setting keeps it valid (the defaults shown).
	sed 's/^#\([A-Z_]*=\)/\1/; /^API_TOKEN=/d' "$BATS_TEST_TMPDIR/env" > "$BATS_TEST_TMPDIR/env2"
	run --separate-stderr env -i PATH="$PATH" "$CONNECTOR" \
	    -e "$BATS_TEST_TMPDIR/env2" < "$REQ/valid-event.http"
	split_response
	assert_status 202
}
