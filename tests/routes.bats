#!/usr/bin/env bats
# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The routes cases of lib/routes-cases.bash on the spool; tests/routes-pg.bats
# runs the same ones on PostgreSQL.

STORE=spool

load helper
load lib/store
load lib/routes-cases

@test "routes: a match, ignore, and no route to failed/, requeued once the file is fixed" { routes_match; }
@test "routes: the first matching rule wins, a catch-all takes the rest" { routes_first_wins; }
@test "routes: HANDLER takes the events no rule matches" { routes_handler_rest; }
@test "routes: a bad file stops the worker at start-up, naming the line" { routes_bad_file; }
@test "routes: the example in contrib is a valid file once its handlers exist" { routes_contrib; }
