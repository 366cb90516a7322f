#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# ORDER fails closed, on PostgreSQL (DATABASE_URL): the cases of
# lib/order-closed-cases.bash, as order-closed.bats runs them on the spool.
# One real PostgreSQL for the file, a database per test.

load helper
load lib/pg
load spool-helper
load lib/order-closed-cases

STORE=pg

setup_file() {
	pg_start
	export PG_DIR PGHOST PGPORT PGUSER
}

teardown_file() {
	[ -n "${PG_DIR:-}" ] || return 0
	pg_ctl_init
	pg_stop
}

setup() {
	[ -n "${PG_DIR:-}" ] || skip "no PostgreSQL"
	pg_ctl_init
	oc_init
}

teardown() {
	oc_teardown
}

@test "closed-pg: every unreadable updated_at is held in failed/ with its reason, never run" {
	case_bad_versions
}

@test "closed-pg: an event with a bad version keeps its key: never run beside its key's (-j 2)" {
	case_bad_keeps_key
}

@test "closed-pg: the applied table refusing a write: not done, retried, the key held; the older event then stale" {
	case_applied_not_recorded
}

@test "closed-pg: the key's hold outlives the worker: an older event sent later still waits" {
	case_hold_persists
}

@test "closed-pg: an applied table that cannot be read blocks the keys until repaired" {
	case_applied_unreadable table
}

@test "closed-pg: pruning keeps a key with an event in failed/; requeued, it is stale" {
	case_prune_requeue
}

@test "closed-pg: a version beyond ORDER_MAX_SKEW is held, not applied" {
	case_future_version
}

@test "closed-pg: keys are exact: 2^63 + 1, 20 and 25 digits" {
	case_big_keys
}

@test "closed-pg: 5, \"5\", 5.0 and 5e0 are one key; 5.5 is refused as a key" {
	case_number_forms
}

@test "closed-pg: a SIM keeps its history from inventory to an account; two SIMs of an account are two" {
	case_sim_keys
}

@test "closed-pg: a body that cannot be read back is held in failed/" {
	case_body_unreadable
}

@test "closed-pg: 400 shuffled events, 5 % with a bad version, -j 8, retries and a SIGKILL" {
	case_shuffled 400 16
}
