#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# libpq is loaded only when DATABASE_URL chooses the PostgreSQL store:
# neither program links it; without DATABASE_URL both work where it
# cannot be loaded; with it both stop at start-up with one message and
# exit status 78.  No database is needed: the URL names none.

load helper
load spool-helper

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}
URL="host=/nonexistent dbname=nsps"
MSG="DATABASE_URL: cannot load libpq.so.5: "

# no_libpq: prepends to WRAPPER a script that runs the program where
# every libpq.so.5 the loader knows of reads as empty (/dev/null bound
# over it in a mount namespace of its own), as on a host without
# libpq5.  Skips, saying why, where that cannot be done.
no_libpq() {
	local out nolibpq=$BATS_TEST_TMPDIR/nolibpq
	[ "$(id -u)" -eq 0 ] ||
	    skip "needs root: binds /dev/null over libpq.so.5 (unshare -m)"
	command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
	out=$(unshare -m true 2>&1) || skip "unshare -m cannot run here: $out"
	ldconfig -p | awk '$1 == "libpq.so.5" { print $NF }' |
	    xargs -r realpath | sort -u > "$nolibpq.libs"
	cat > "$nolibpq" <<-'EOF'
	#!/bin/sh
	exec unshare -m sh -c '
		while IFS= read -r f; do
			mount --bind /dev/null "$f" || exit 125
		done < "$0.libs"
		exec "$@"' "$0" "$@"
	EOF
	chmod 755 "$nolibpq"
	WRAPPER="$nolibpq $WRAPPER"
}

# deliver [NAME=VALUE ...] [-- ARGS]: nsps-deliver with only that
# environment, through WRAPPER.
deliver() {
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	# shellcheck disable=SC2086
	run --separate-stderr env -i PATH="$PATH" "${envs[@]}" $WRAPPER \
	    "$DELIVER" "$@"
}

# assert_stopped PROG [ARGS]: exit status 78, nothing on standard
# output and one line on standard error: PROG's, the dlerror() text at
# its end.  Each check returns: errexit is off where this is called
# in a condition.
assert_stopped() {
	[ "$status" -eq 78 ] || fail_with "$*: status $status, not 78" ||
	    return 1
	[ -z "$output" ] || fail_with "$*: wrote to standard output" ||
	    return 1
	[ "${#stderr_lines[@]}" -eq 1 ] || fail_with "$*: not one line" ||
	    return 1
	[[ $stderr == "$1: $MSG"?* ]] || fail_with "$*: not the message"
}

@test "libpq: neither program has libpq among its NEEDED libraries" {
	command -v readelf >/dev/null ||
	    fail_with "readelf (binutils) is needed to read the binaries"
	local b
	for b in "$CONNECTOR" "$DELIVER"; do
		run readelf -dW "$b"
		[ "$status" -eq 0 ] || fail_with "readelf -d $b failed"
		grep -q '(NEEDED)' <<<"$output" ||
		    fail_with "$b: no NEEDED entry at all: not what this test reads"
		if grep '(NEEDED).*\[libpq\.' <<<"$output"; then
			fail_with "$b is linked with libpq: it costs every start"
		fi
	done
}

@test "libpq: without DATABASE_URL both programs work where libpq cannot be loaded" {
	no_libpq
	local spool=$BATS_TEST_TMPDIR/spool
	mkdir -m 700 "$spool"
	minimal_event nolibpq-1 > "$BATS_TEST_TMPDIR/ev.json"
	post_event "$BATS_TEST_TMPDIR/ev.json" SPOOL_DIR="$spool"
	assert_status 202
	deliver SPOOL_DIR="$spool" -- --once -- true
	[ "$status" -eq 0 ] || fail_with "nsps-deliver --once: status $status"
	[ -e "$spool/done/nolibpq-1" ] || fail_with "not delivered"
}

@test "libpq: with DATABASE_URL the connector stops at start-up in every mode: one message, 78" {
	no_libpq
	post_event "$FIX/sim-updated-basic.json" DATABASE_URL="$URL"
	assert_stopped nsps-connector
	printf 'GET /health HTTP/1.1\r\n\r\n' > "$BATS_TEST_TMPDIR/r"
	# shellcheck disable=SC2086
	run --separate-stderr env -i PATH="$PATH" API_TOKEN="$TOKEN" \
	    DATABASE_URL="$URL" $WRAPPER "$CONNECTOR" -f "$BATS_TEST_TMPDIR/r"
	assert_stopped nsps-connector
	# shellcheck disable=SC2086
	run --separate-stderr env -i PATH="$PATH" API_TOKEN="$TOKEN" \
	    DATABASE_URL="$URL" $WRAPPER "$CONNECTOR" \
	    -s "$BATS_TEST_TMPDIR/sock"
	assert_stopped nsps-connector
	[ ! -e "$BATS_TEST_TMPDIR/sock" ] || fail_with "the socket was made"
}

@test "libpq: with DATABASE_URL nsps-deliver stops at start-up, --migrate too: one message, 78" {
	no_libpq
	local args
	for args in "-- true" "--once -- true" --stats --requeue-failed \
	    --migrate; do
		# shellcheck disable=SC2086
		deliver DATABASE_URL="$URL" -- $args
		assert_stopped nsps-deliver "$args" || return 1
	done
}
