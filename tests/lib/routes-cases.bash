# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# nsps-deliver's ROUTES_FILE: the first fnmatch(3) rule on the event
# type picks the command, or ignores the event; HANDLER takes the rest,
# else the event fails until the routes are fixed.  A bad file stops
# the worker at start-up.  One body per case, run on the spool by
# tests/routes.bats and on PostgreSQL by tests/routes-pg.bats (STORE,
# lib/store.bash).

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}

UPDATED=0a53cf45-8ea3-4966-87ea-1989497cea50
CREATED=b74e2f50-7a9e-4689-b4b7-cdcbd6ff75e3
REPLACED=$(jq -r .event_id "$FIX/sim-replaced-swap.json")
UNBLOCKED=$(jq -r .event_id "$FIX/account-unblocked-basic.json")

setup_file() {
	store_setup_file
}

teardown_file() {
	store_teardown_file
}

setup() {
	store_setup
	LOG=$BATS_TEST_TMPDIR/handler.log
	ROUTES=$BATS_TEST_TMPDIR/routes
	# SIM/Updated and SIM/Replaced share an account; routing is the
	# matter here, so each is handed over whatever its age.
	export ORDER=off
	# Two handlers that say who ran them and with what.
	for h in a b; do
		printf '#!/bin/sh\necho "%s${*:+ $*} $NSPS_EVENT_TYPE" >> "%s"\n' \
		    "$h" "$LOG" > "$BATS_TEST_TMPDIR/handler-$h"
		chmod 755 "$BATS_TEST_TMPDIR/handler-$h"
	done
	spool_file sim-updated-basic.json sim-created-inventory.json \
	    sim-replaced-swap.json account-unblocked-basic.json
}

spool_file() {
	local f
	for f in "$@"; do
		store_post "$FIX/$f" REQUIRED_FIELDS=data.event_type
		assert_status 202 || return 1
	done
}

# routes TEXT: the routes file, mode 0600.
routes() {
	printf '%s\n' "$1" > "$ROUTES"
	chmod 600 "$ROUTES"
}

result_of() {
	store_result "$1"
}

routes_match() {
	routes "# SIM events to a, with an argument
SIM/Updated  $BATS_TEST_TMPDIR/handler-a  one   # a comment
SIM/Re*	$BATS_TEST_TMPDIR/handler-b
SIM/Created ignore"
	run --separate-stderr env -u HANDLER "$DELIVER" \
	    -r "$ROUTES" --once
	[ "$status" -eq 0 ] || fail_with "exit $status"
	[ "$(sort "$LOG")" = "$(printf 'a one SIM/Updated\nb SIM/Replaced')" ]
	[ "$(store_state "$CREATED")" = done ] && [ "$(result_of "$CREATED")" = ignored ]
	assert_log "$CREATED: SIM/Created: ignored by ROUTES_FILE line 4; done"
	[ "$(store_state "$UNBLOCKED")" = failed ]
	[ "$(result_of "$UNBLOCKED")" = "no route for Account/Unblocked" ]
	assert_log "$UNBLOCKED: no route for Account/Unblocked; failed"

	# The operator adds a rule and requeues: the event goes through.
	printf 'Account/*\t%s\n' "$BATS_TEST_TMPDIR/handler-a" >> "$ROUTES"
	run "$DELIVER" --requeue-failed
	[ "$output" = "1 events requeued" ]
	ROUTES_FILE=$ROUTES run env -u HANDLER "$DELIVER" --once
	[ "$status" -eq 0 ]
	[ "$(tail -n 1 "$LOG")" = "a Account/Unblocked" ]
	[ "$(store_state "$UNBLOCKED")" = done ]
}

routes_first_wins() {
	routes "SIM/*ed $BATS_TEST_TMPDIR/handler-a
SIM/Updated $BATS_TEST_TMPDIR/handler-b
* $BATS_TEST_TMPDIR/handler-b all"
	run "$DELIVER" -r "$ROUTES" --once
	[ "$status" -eq 0 ]
	[ "$(sort "$LOG")" = "$(printf 'a SIM/Created\na SIM/Replaced\na SIM/Updated\nb all Account/Unblocked')" ]
	[ "$(store_count failed)" -eq 0 ]
}

routes_handler_rest() {
	routes "SIM/Updated $BATS_TEST_TMPDIR/handler-a"
	HANDLER="$BATS_TEST_TMPDIR/handler-b fallback" ROUTES_FILE=$ROUTES \
	    run "$DELIVER" --once
	[ "$status" -eq 0 ]
	[ "$(sort "$LOG")" = "$(printf 'a SIM/Updated\nb fallback Account/Unblocked\nb fallback SIM/Created\nb fallback SIM/Replaced')" ]
}

routes_bad_file() {
	while IFS='|' read -r text message; do
		routes "$(printf '%b' "$text")"
		run "$DELIVER" -r "$ROUTES" --once -- /bin/true
		[ "$status" -eq 78 ] || fail_with "'$text': exit $status" || return 1
		[[ $output == *"ROUTES_FILE: $ROUTES: $message"* ]] ||
		    fail_with "'$text': $output" || return 1
	done <<-'EOF'
	# only a comment\n|no rules
	SIM/Updated /bin/true\nSIM/Created|line 2: 'SIM/Created' needs a command or the word ignore
	\n\nSIM/* /nonexistent/handler|line 3: /nonexistent/handler: not found or not executable
	SIM/* no-such-command-anywhere|line 1: no-such-command-anywhere: not found or not executable
	EOF
	routes "* /bin/true"
	chmod 620 "$ROUTES"
	run "$DELIVER" -r "$ROUTES" --once
	[ "$status" -eq 78 ]
	[[ $output == *"ROUTES_FILE: $ROUTES: group or world writable"* ]]
	run "$DELIVER" -r "$BATS_TEST_TMPDIR/missing" --once
	[ "$status" -eq 78 ]
	[[ $output == *"ROUTES_FILE: $BATS_TEST_TMPDIR/missing: No such file"* ]]
	# Nothing ran, nothing moved.
	[ ! -e "$LOG" ]
	[ "$(store_count new)" -eq 4 ]
}

routes_contrib() {
	sed "s|/usr/local/libexec/nsps/|$CONTRIB_DIR/handlers/|" \
	    "$CONTRIB_DIR/nsps-deliver.routes.example" > "$ROUTES"
	chmod 600 "$ROUTES"
	store_reset
	run env -u HANDLER "$DELIVER" -r "$ROUTES" --once
	[ "$status" -eq 0 ] || fail_with "$output"
	for type in SIM/Updated SIM/Created SIM/Deleted SIM/Replaced; do
		grep -q "^$type[[:space:]]" "$ROUTES" || fail_with "no rule for $type" || return 1
	done
	grep -q '^\*[[:space:]]' "$ROUTES"
}
