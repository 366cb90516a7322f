#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# ORDER fails closed, on the spool: no input, disk error or setting
# lets an older snapshot run after a newer one.  The cases are in
# lib/order-closed-cases.bash; order-closed-pg.bats runs them on PostgreSQL.

load helper
load spool-helper
load lib/order-closed-cases

STORE=spool

setup() {
	oc_init
}

teardown() {
	oc_teardown
}

@test "closed: every unreadable updated_at is held in failed/ with its reason, never run" {
	case_bad_versions
}

@test "closed: an event with a bad version keeps its key: never run beside its key's (-j 2)" {
	case_bad_keeps_key
}

@test "closed: a real ENOSPC on applied/: not done, retried, the key held; the older event then stale" {
	case_applied_not_recorded
}

@test "closed: the key's hold outlives the worker: an older event sent later still waits" {
	case_hold_persists
}

@test "closed: an empty applied record blocks its key until repaired" {
	case_applied_unreadable empty
}

@test "closed: a garbled applied record blocks its key until repaired" {
	case_applied_unreadable garbled
}

@test "closed: a symlinked applied record blocks its key until repaired" {
	case_applied_unreadable symlink
}

@test "closed: pruning keeps a key with an event in failed/; requeued, it is stale" {
	case_prune_requeue
}

@test "closed: RETENTION below 35 days is refused" {
	local v
	for v in 0 1s 34d; do
		RETENTION=$v run "$DELIVER" "${OC_D[@]}" --once -- /bin/true
		[ "$status" -eq 78 ] || fail_with "RETENTION=$v: exit $status" || return 1
		[[ $output == *"RETENTION: '$v' is not a duration from 35d to 3650d"* ]] ||
		    fail_with "RETENTION=$v" || return 1
	done
	ORDER_MAX_SKEW=0 run "$DELIVER" "${OC_D[@]}" --once -- /bin/true
	[ "$status" -eq 78 ]
	[[ $output == *"ORDER_MAX_SKEW: '0' is not a duration from 1s to 365d"* ]]
}

@test "closed: a version beyond ORDER_MAX_SKEW is held, not applied" {
	case_future_version
}

@test "closed: keys are exact: 2^63 + 1, 20 and 25 digits" {
	case_big_keys
}

@test "closed: 5, \"5\", 5.0 and 5e0 are one key; 5.5 is refused as a key" {
	case_number_forms
}

@test "closed: a SIM keeps its history from inventory to an account; two SIMs of an account are two" {
	case_sim_keys
}

@test "closed: a body that cannot be read back is held in failed/" {
	case_body_unreadable
}

@test "closed: 400 shuffled events, 5 % with a bad version, -j 8, retries and a SIGKILL" {
	case_shuffled 400 16
}
