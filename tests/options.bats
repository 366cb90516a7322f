#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Command line, environment and dotenv file: where each setting comes from.

load helper

sample_request() {
	{
		printf 'POST %s HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n' "${2:-/process-event}" "$1"
		cat "$FIX/nsps-doc-sample.json"
	} > "$BATS_TEST_TMPDIR/r"
}

# connector [NAME=VALUE ...] [-- ARGS]: request-file mode with a clean
# environment and no default token.
connector() {
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	# shellcheck disable=SC2086
	run --separate-stderr env -i PATH="$PATH" "${envs[@]}" $WRAPPER "$CONNECTOR" "$@" \
	    < "$BATS_TEST_TMPDIR/r"
	split_response
}

@test "options: -h prints the usage line, which is the man page's SYNOPSIS" {
	run "$CONNECTOR" -h
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "usage: nsps-connector "* ]]
	local usage synopsis
	usage=$(printf '%s\n' "$output" | sed 's/^usage: //' | tr -s '[:space:]' ' ' | sed 's/ $//')
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	synopsis=$(mandoc -Tascii "$TESTS_DIR/../man/nsps-connector.8" | col -b |
	    sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' | sed '1d;$d' | tr -s '[:space:]' ' ' |
	    sed 's/^ //;s/ $//')
	[ "$usage" = "$synopsis" ] || fail_with "usage:    $usage" "synopsis: $synopsis"
}

@test "options: -V prints the version; bad usage exits 64" {
	run "$CONNECTOR" -V
	[ "$status" -eq 0 ]
	[[ $output =~ ^nsps-connector\ [0-9]+\.[0-9]+\.[0-9]+(\ \(mimalloc\ [0-9.]+\))?$ ]]
	# The allocator -V names is the one the binary loads.
	if [[ $output == *mimalloc* ]]; then
		ldd "$CONNECTOR" | grep -q 'libmimalloc\.so'
	else
		if ldd "$CONNECTOR" | grep -q 'libmimalloc\.so'; then
			fail_with "links mimalloc, but -V does not say so"
		fi
	fi
	run "$CONNECTOR" -x
	[ "$status" -eq 64 ]
	run "$CONNECTOR" extra-argument
	[ "$status" -eq 64 ]
	run "$CONNECTOR" -f a -s b
	[ "$status" -eq 64 ]
}

@test "options: there is no option that takes the token" {
	run "$CONNECTOR" -h
	[[ $output != *token\ * && $output != *"[-T"* && $output != *"[-k"* ]]
	[[ $output == *"[-t tokenfile]"* ]]
}

@test "options: command line wins over environment, environment over the file" {
	printf 'EVENT_PATH=/from-file\n' > "$BATS_TEST_TMPDIR/env"
	chmod 600 "$BATS_TEST_TMPDIR/env"
	sample_request "$TOKEN" /from-file
	connector API_TOKEN="$TOKEN" NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env"
	assert_status 202
	sample_request "$TOKEN" /from-env
	connector API_TOKEN="$TOKEN" NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env" EVENT_PATH=/from-env
	assert_status 202
	sample_request "$TOKEN" /from-cli
	connector API_TOKEN="$TOKEN" NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env" EVENT_PATH=/from-env \
	    -- -p /from-cli
	assert_status 202
	sample_request "$TOKEN" /from-env
	connector API_TOKEN="$TOKEN" NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env" EVENT_PATH=/from-env \
	    -- -p /from-cli
	assert_status 404
}

@test "options: every setting has its option" {
	sample_request "$TOKEN" /ev
	printf '%s\n' "$TOKEN" > "$BATS_TEST_TMPDIR/tokens"
	chmod 600 "$BATS_TEST_TMPDIR/tokens"
	printf 'LOG_FORMAT=text\n' > "$BATS_TEST_TMPDIR/env"
	chmod 600 "$BATS_TEST_TMPDIR/env"
	connector -- -t "$BATS_TEST_TMPDIR/tokens" -p /ev -H /hc -m 5000 \
	    -r data.event_type -l json -e "$BATS_TEST_TMPDIR/env"
	assert_status 202
	jq -e '.status == 202' <<<"$stderr"
	connector -- -t "$BATS_TEST_TMPDIR/tokens" -p /ev -m 100
	assert_status 413
	printf 'GET /hc HTTP/1.1\r\n\r\n' > "$BATS_TEST_TMPDIR/r"
	connector -- -t "$BATS_TEST_TMPDIR/tokens" -H /hc
	assert_status 200
}

@test "options: a dotenv file like the NSPS guide's .env" {
	cat > "$BATS_TEST_TMPDIR/env" <<-EOF
	# NSPS connector settings
	export API_TOKEN="$TOKEN"

	ES_BASE_URL=https://es.example.com/api   # other programs' keys are ignored
	EVENT_PATH = '/nsps/events'
	REQUIRED_FIELDS=data.event_type # inline comment
	LOG_FORMAT="text"
	EOF
	chmod 600 "$BATS_TEST_TMPDIR/env"
	sample_request "$TOKEN" /nsps/events
	connector NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env"
	assert_status 202
	connector -- -e "$BATS_TEST_TMPDIR/env"
	assert_status 202
}

@test "options: malformed dotenv files name the line" {
	while IFS='|' read -r text reason; do
		printf "$text" > "$BATS_TEST_TMPDIR/env"
		chmod 600 "$BATS_TEST_TMPDIR/env"
		sample_request "$TOKEN"
		connector API_TOKEN="$TOKEN" NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env"
		assert_error 500 INTERNAL_ERROR || return 1
		assert_log "$reason" || return 1
	done <<-'EOF'
	A=1\nnot an assignment\n|line 2: expected KEY=VALUE
	A="unterminated\n|line 1: unterminated quote
	A='x' y\n|line 1: text after the closing quote
	1A=x\n|line 1: expected KEY=VALUE
	=x\n|line 1: expected KEY=VALUE
	EOF
}

@test "options: group- or world-writable token and env files are refused" {
	printf '%s\n' "$TOKEN" > "$BATS_TEST_TMPDIR/tokens"
	chmod 620 "$BATS_TEST_TMPDIR/tokens"
	sample_request "$TOKEN"
	connector API_TOKEN_FILE="$BATS_TEST_TMPDIR/tokens"
	assert_error 500 INTERNAL_ERROR
	assert_log "group or world writable"
	chmod 602 "$BATS_TEST_TMPDIR/tokens"
	connector API_TOKEN_FILE="$BATS_TEST_TMPDIR/tokens"
	assert_error 500 INTERNAL_ERROR
	chmod 640 "$BATS_TEST_TMPDIR/tokens"
	connector API_TOKEN_FILE="$BATS_TEST_TMPDIR/tokens"
	assert_status 202
	printf 'API_TOKEN=%s\n' "$TOKEN" > "$BATS_TEST_TMPDIR/env"
	chmod 666 "$BATS_TEST_TMPDIR/env"
	connector NSPS_ENV_FILE="$BATS_TEST_TMPDIR/env"
	assert_error 500 INTERNAL_ERROR
}

@test "options: a token file holds several tokens; comments and blanks are skipped" {
	printf '# rotated 2026-11\n\nold-token\r\n  %s  \n' "$TOKEN" > "$BATS_TEST_TMPDIR/tokens"
	chmod 400 "$BATS_TEST_TMPDIR/tokens"
	for t in old-token "$TOKEN"; do
		sample_request "$t"
		connector API_TOKEN_FILE="$BATS_TEST_TMPDIR/tokens"
		assert_status 202 || return 1
	done
	sample_request "# rotated"
	connector API_TOKEN_FILE="$BATS_TEST_TMPDIR/tokens"
	assert_status 401
	# Tokens from API_TOKEN and the file are both valid.
	sample_request also-valid
	connector API_TOKEN=also-valid API_TOKEN_FILE="$BATS_TEST_TMPDIR/tokens"
	assert_status 202
}

@test "options: an empty token file is no token at all" {
	printf '\n# nothing\n' > "$BATS_TEST_TMPDIR/tokens"
	chmod 600 "$BATS_TEST_TMPDIR/tokens"
	sample_request ""
	connector API_TOKEN_FILE="$BATS_TEST_TMPDIR/tokens"
	assert_error 500 INTERNAL_ERROR
	assert_log "no API token configured"
}

@test "options: the token never reaches the log, in either format" {
	sample_request "$TOKEN"
	for fmt in text json; do
		connector API_TOKEN="$TOKEN" LOG_FORMAT=$fmt
		assert_status 202 || return 1
		! grep -qF "$TOKEN" <<<"$stderr" || return 1
	done
	sample_request "$TOKEN-wrong"
	connector API_TOKEN="$TOKEN" LOG_FORMAT=json
	assert_status 401
	! grep -qF "$TOKEN" <<<"$stderr"
}
