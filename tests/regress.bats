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
