# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# ORDER fails closed: the cases of order-closed.bats (the spool) and
# order-closed-pg.bats (PostgreSQL), one function each, run on the
# store STORE names.  What differs between the stores is in the oc_*
# functions at the top; the cases only call those.
#
# Needs helper.bash, spool-helper.bash and, for STORE=pg, lib/pg.bash.

DELIVER=${NSPS_DELIVER:?NSPS_DELIVER must name the built nsps-deliver}

# oc_init: a fresh store for one test, the handler and its log.
oc_init() {
	LOG=$BATS_TEST_TMPDIR/handler.log
	: > "$LOG"
	OC_H=$BATS_TEST_TMPDIR/handler
	OC_MNT=
	worker_pid=
	export OC_LOG=$LOG RETRY_BASE=100ms RETRY_CAP=200ms HANDLER_TIMEOUT=10s
	export METRICS_DIR=$BATS_TEST_TMPDIR/metrics
	mkdir -p "$METRICS_DIR"
	# B(egin) and E(nd, applied) lines; OC_FAIL names an event whose
	# handler fails for good, OC_SLEEP makes each run last.
	cat > "$OC_H" <<-'EOF'
	#!/bin/sh
	echo "B $NSPS_EVENT_ID" >> "$OC_LOG"
	[ -z "${OC_SLEEP:-}" ] || sleep "$OC_SLEEP"
	if [ "$NSPS_EVENT_ID" = "${OC_FAIL:-}" ]; then
		echo "F $NSPS_EVENT_ID" >> "$OC_LOG"
		exit 3
	fi
	echo "E $NSPS_EVENT_ID" >> "$OC_LOG"
	EOF
	chmod 755 "$OC_H"
	case $STORE in
	spool)
		oc_spool_at "$BATS_TEST_TMPDIR/spool"
		;;
	pg)
		pg_db "oc$BATS_TEST_NUMBER"
		OC_STORE_ENV=(DATABASE_URL="$DATABASE_URL")
		OC_D=()
		export LEASE_TIME=5s DB_TIMEOUT=5s TMPDIR=$BATS_TEST_TMPDIR
		run "$DELIVER" --migrate
		[ "$status" -eq 0 ] || fail_with "--migrate: $output"
		;;
	*)
		echo "STORE must be spool or pg" >&2
		return 1
		;;
	esac
}

oc_spool_at() {
	SPOOL=$1
	mkdir -p "$SPOOL"
	OC_STORE_ENV=(SPOOL_DIR="$SPOOL")
	OC_D=(-d "$SPOOL")
}

oc_teardown() {
	[ -z "${worker_pid:-}" ] || kill -9 "$worker_pid" 2>/dev/null || true
	[ -z "${worker_pid:-}" ] || wait "$worker_pid" 2>/dev/null || true
	worker_pid=
	[ -z "${OC_MNT:-}" ] || umount "$OC_MNT" 2>/dev/null || true
}

# oc_post FILE...: each accepted (202) through the connector, in order.
oc_post() {
	WRAPPER=${NSPS_FIXTURE_WRAPPER-$WRAPPER} post_events \
	    "${OC_STORE_ENV[@]}" REQUIRED_FIELDS=data.event_type -- "$@"
}

# oc_deliver [OPTION...]: one nsps-deliver --once run of the handler.
oc_deliver() {
	run --separate-stderr "$DELIVER" "${OC_D[@]}" --once "$@" -- "$OC_H"
	[ "$status" -eq 0 ] || fail_with "nsps-deliver: exit $status"
	printf '%s\n' "$stderr" >> "$BATS_TEST_TMPDIR/worker.log"
}

# oc_state ID: new, cur, retry, done or failed.
oc_state() {
	local d
	case $STORE in
	spool)
		for d in new cur retry done failed; do
			[ ! -e "$SPOOL/$d/$1" ] || { echo "$d"; return 0; }
		done
		echo none
		;;
	pg)
		pg_sql "select coalesce((select state from nsps_event where event_id = '$1'), 'none')"
		;;
	esac
}

# oc_result ID: the result of its last attempt.
oc_result() {
	case $STORE in
	spool) sed -n 's/^result //p' "$SPOOL/status/$1" ;;
	pg) pg_sql "select result from nsps_event where event_id = '$1'" ;;
	esac
}

# oc_applied KEY: the id of the event applied last for KEY.
oc_applied() {
	case $STORE in
	spool) sed -n 's/^id //p' "$SPOOL/applied/$1" 2>/dev/null ;;
	pg) pg_sql "select event_id from nsps_applied where okey = '$1'" ;;
	esac
}

# oc_age_applied KEY DAYS: its applied version recorded DAYS ago.
oc_age_applied() {
	case $STORE in
	spool) touch -d "-$2 days" "$SPOOL/applied/$1" ;;
	pg) pg_sql "update nsps_applied set at = now() - interval '$2 days' where okey = '$1'" > /dev/null ;;
	esac
}

# oc_corrupt_body ID: its stored body is no longer JSON.
oc_corrupt_body() {
	case $STORE in
	spool) printf 'not json at all' > "$SPOOL/new/$1" ;;
	pg) pg_sql "update nsps_event set body = convert_to('not json at all', 'UTF8') where event_id = '$1'" > /dev/null ;;
	esac
}

# oc_small_store: the store where applied versions can be made to
# fail: the spool on a 2 MB tmpfs (a real ENOSPC), PostgreSQL as it is.
oc_small_store() {
	[ "$STORE" = spool ] || return 0
	[ "$(id -u)" -eq 0 ] ||
	    skip "not root: mounting a small tmpfs for a real ENOSPC needs root"
	OC_MNT=$BATS_TEST_TMPDIR/small
	mkdir -p "$OC_MNT"
	mount -t tmpfs -o size=2m,mode=0700 nsps-test "$OC_MNT" 2> "$BATS_TEST_TMPDIR/mount.err" || {
		OC_MNT=
		skip "mount -t tmpfs failed: $(cat "$BATS_TEST_TMPDIR/mount.err")"
	}
	oc_spool_at "$OC_MNT/spool"
}

# oc_break_applied / oc_fix_applied: applied versions cannot be
# recorded (the tmpfs full; a trigger refusing them), then can again.
oc_break_applied() {
	case $STORE in
	spool)
		dd if=/dev/zero of="$OC_MNT/fill" bs=64k 2>/dev/null || true
		# Nothing left, not even for a small file.
		! (printf 'x%.0s' $(seq 1 4096) > "$OC_MNT/probe") 2>/dev/null ||
		    fail_with "the tmpfs is not full"
		;;
	pg)
		pg_sql "create function oc_full() returns trigger language plpgsql as
		    \$\$ begin raise exception 'could not extend file: No space left on device'; end \$\$;
		    create trigger oc_full before insert or update on nsps_applied
		    for each row execute function oc_full()" > /dev/null
		;;
	esac
}

oc_fix_applied() {
	case $STORE in
	spool) rm -f "$OC_MNT/fill" "$OC_MNT/probe" ;;
	pg) pg_sql "drop trigger oc_full on nsps_applied" > /dev/null ;;
	esac
}

# oc_deliver_unrecorded: one --once run in which applied versions are
# not recorded: fsync(2) of applied/'s file fails with EIO (after the
# recovery's fsync of new/); the database's trigger refuses them.
oc_deliver_unrecorded() {
	case $STORE in
	spool)
		LD_PRELOAD=$NSPS_FAULT_SO NSPS_FAULT=fsync NSPS_FAULT_SKIP=1 \
		    oc_deliver
		;;
	pg)
		oc_break_applied
		oc_deliver
		oc_fix_applied
		;;
	esac
}

# oc_spoil_applied KEY HOW: its applied version unreadable: empty,
# garbled or a symbolic link on the spool; on PostgreSQL, whose rows
# cannot be garbled, the table cannot be read.
oc_spoil_applied() {
	case $STORE in
	spool)
		cp "$SPOOL/applied/$1" "$BATS_TEST_TMPDIR/applied.good"
		case $2 in
		empty) : > "$SPOOL/applied/$1" ;;
		garbled) printf 'version 17\ncreated x\n' > "$SPOOL/applied/$1" ;;
		symlink)
			rm "$SPOOL/applied/$1"
			ln -s "$BATS_TEST_TMPDIR/applied.good" "$SPOOL/applied/$1"
			;;
		esac
		;;
	pg)
		pg_sql "alter table nsps_applied rename to oc_applied" > /dev/null
		;;
	esac
}

oc_repair_applied() {
	case $STORE in
	spool)
		rm -f "$SPOOL/applied/$1"
		cp "$BATS_TEST_TMPDIR/applied.good" "$SPOOL/applied/$1"
		;;
	pg) pg_sql "alter table oc_applied rename to nsps_applied" > /dev/null ;;
	esac
}

# oc_metric NAME: a sample of the connector's exposition, which shows
# the worker's counters too.
oc_metric() {
	run_cgi API_TOKEN="$TOKEN" REQUEST_METHOD=GET SCRIPT_NAME=/metrics \
	    "${OC_STORE_ENV[@]}" METRICS_DIR="$METRICS_DIR"
	awk -v k="$1" '$1 == k { print $2 }' <<< "$resp_body"
}

# oc_settled N: N events done or failed, none waiting or running.
oc_settled() {
	local n
	case $STORE in
	spool)
		[ -z "$(find "$SPOOL/new" "$SPOOL/cur" "$SPOOL/retry" -type f)" ] || return 1
		n=$(find "$SPOOL/done" "$SPOOL/failed" -type f | wc -l)
		;;
	pg)
		n=$(pg_sql "select count(*) from nsps_event where state in ('done', 'failed')")
		;;
	esac
	[ "$n" -eq "$1" ]
}

# --- Events.

# oc_event FILE-ID VARIABLES PB_DATA UPDATED: an event; UPDATED is raw
# JSON ("-": no updated_at at all).  Prints the file's path.
oc_event() {
	local f=$BATS_TEST_TMPDIR/$1.json upd=
	[ "$4" = - ] || upd=",\"updated_at\":$4"
	printf '{"event_id":"%s","data":{"event_type":"SIM/Updated","variables":%s},"pb_data":%s,"created_at":"2025-11-03T08:00:00+00:00"%s}' \
	    "$1" "$2" "$3" "$upd" > "$f"
	echo "$f"
}

# oc_acct ID ACCOUNT-JSON UPDATED: an account's event (no SIM).
oc_acct() {
	oc_event "$1" "{\"i_account\":$2}" \
	    "{\"account_info\":{\"bill_status\":\"open\"}}" "$3"
}

# oc_sim ID SIM ACCOUNT UPDATED: a SIM's event; ACCOUNT null: inventory.
oc_sim() {
	local vars='{}' acct=null
	[ "$3" = null ] || { vars="{\"i_account\":$3}"; acct="{\"bill_status\":\"open\",\"i_account\":$3}"; }
	oc_event "$1" "$vars" \
	    "{\"account_info\":$acct,\"sim_info\":{\"i_account\":$3,\"i_sim_card\":$2}}" "$4"
}

# oc_ran: the events whose handler ended applied, in order, on one line.
oc_ran() {
	awk '$1 == "E" { printf "%s%s", sep, $2; sep = " " } END { print "" }' "$LOG"
}

oc_began() {
	awk '$1 == "B" { printf "%s%s", sep, $2; sep = " " } END { print "" }' "$LOG"
}

expect() {
	[ "$1" = "$2" ] || fail_with "expected '$2', got '$1'"
}

# runs_of ID MIN RAN: RAN (oc_ran) is ID, at least MIN times, and
# nothing else.  An attempt whose retry falls due before the --once pass
# ends (a slow machine) runs again in that pass.
runs_of() {
	local n
	n=$(wc -w <<<"$3")
	[ -z "$(tr ' ' '\n' <<<"$3" | grep -vx "$1" | grep .)" ] && [ "$n" -ge "$2" ] ||
	    fail_with "expected $1 at least $2 times and nothing else, got '$3'"
}

# --- The cases.

# 1. Every unreadable updated_at, after a newer version and before
# one: held in failed/ with the reason, never run.
case_bad_versions() {
	local forms=(- null '""' 1762164000 '"yesterday"'
	    '"2025-11-03T09:00:00z"' '"2025-11-03 09:00:00Z"'
	    '"2025-11-03T09:00:00+0530"' '"2025-11-03T09:00:00.1234567890Z"'
	    '"2016-12-31T23:59:60Z"' '"1899-12-31T23:00:00Z"'
	    '"2201-01-01T00:00:00Z"') i want
	oc_post "$(oc_acct v10 5 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	for i in "${!forms[@]}"; do
		oc_post "$(oc_acct "bad-$i" 5 "${forms[i]}")"
	done
	oc_deliver
	oc_post "$(oc_acct v11 5 '"2025-11-03T11:00:00Z"')"
	oc_deliver
	expect "$(oc_ran)" "v10 v11" || return 1
	for i in "${!forms[@]}"; do
		want=${forms[i]}
		[ "$want" != - ] || want=missing
		expect "$(oc_state "bad-$i")" failed || return 1
		expect "$(oc_result "bad-$i")" "unreadable updated_at: $want" || return 1
		grep -qF "bad-$i: i_account=5: unreadable updated_at: $want; held in failed/" \
		    "$BATS_TEST_TMPDIR/worker.log" || fail_with "no log line for bad-$i" || return 1
	done
	expect "$(oc_applied i_account=5)" v11 || return 1
	expect "$(oc_metric 'nsps_deliveries_total{result="held"}')" "${#forms[@]}"
}

# 2. An event with a bad version keeps its key: with -j 2 it never runs
# beside the key's running event (it runs nowhere: it is held).
case_bad_keeps_key() {
	oc_post "$(oc_acct v10 1 '"2025-11-03T10:00:00Z"')" \
	    "$(oc_acct bad-1 1 '"yesterday"')" \
	    "$(oc_acct other-1 2 '"2025-11-03T10:00:00Z"')"
	OC_SLEEP=1 oc_deliver -j 2
	# The two runs overlap: they may end in either order.
	expect "$(oc_began | tr ' ' '\n' | sort | xargs)" \
	    "$(oc_ran | tr ' ' '\n' | sort | xargs)" || return 1
	[[ " $(oc_ran) " == *" v10 "* && " $(oc_ran) " == *" other-1 "* ]] ||
	    fail_with "ran: $(oc_ran)" || return 1
	expect "$(oc_state bad-1)" failed
}

# 3. A handler's exit 0 whose applied version cannot be recorded: not
# done, retried, the key held meanwhile; an older event waits, then is
# stale once the record is written.
case_applied_not_recorded() {
	oc_small_store
	oc_post "$(oc_acct v10 7 '"2025-11-03T10:00:00Z"')" \
	    "$(oc_acct v09 7 '"2025-11-03T09:30:00Z"')"
	oc_break_applied || return 1
	oc_deliver
	runs_of v10 1 "$(oc_ran)" || return 1
	expect "$(oc_state v10)" retry || return 1
	expect "$(oc_state v09)" new || return 1
	grep -q "v10: attempt 1: exit 0, but the applied version of i_account=7 was not recorded: .*No space left on device.*retry in" \
	    "$BATS_TEST_TMPDIR/worker.log" || fail_with "no retry logged" || return 1
	# Still full: still held, v09 still waits.
	sleep 0.3
	oc_deliver
	expect "$(oc_state v09)" new || return 1
	oc_fix_applied
	sleep 0.3
	oc_deliver
	runs_of v10 2 "$(oc_ran)" || return 1
	expect "$(oc_applied i_account=7)" v10 || return 1
	expect "$(oc_state v10)" done || return 1
	expect "$(oc_result v09)" stale
}

# 3b. The hold outlives the worker: an older event sent after it
# stopped still waits for the retry that holds its key.
case_hold_persists() {
	export RETRY_BASE=30s RETRY_CAP=30s
	oc_post "$(oc_acct v10 12 '"2025-11-03T10:00:00Z"')"
	oc_deliver_unrecorded
	expect "$(oc_ran)" v10 || return 1
	expect "$(oc_state v10)" retry || return 1
	[ "$STORE" != spool ] || grep -qx 'hold 1' "$SPOOL/status/v10" ||
	    fail_with "no hold in status/v10" || return 1
	oc_post "$(oc_acct v09 12 '"2025-11-03T09:00:00Z"')" \
	    "$(oc_acct other-1 13 '"2025-11-03T09:00:00Z"')"
	oc_deliver
	expect "$(oc_ran)" "v10 other-1" || return 1
	expect "$(oc_state v09)" new
}

# 4. An applied version that is there but cannot be read blocks its
# key: the older event waits as a retry, one log line, the metric and
# --stats say so; once repaired, it is stale.  On PostgreSQL a row
# cannot be garbled: a table that cannot be read blocks every key, and
# --stats has none to name.
case_applied_unreadable() {
	local how=$1 free=free-1 nblocked=1
	[ "$STORE" = spool ] || { free=; nblocked=2; }
	oc_post "$(oc_acct v10 4 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	oc_spoil_applied i_account=4 "$how"
	oc_post "$(oc_acct v09 4 '"2025-11-03T09:00:00Z"')" \
	    "$(oc_acct free-1 3 '"2025-11-03T09:00:00Z"')"
	oc_deliver
	expect "$(oc_ran)" "v10${free:+ $free}" || return 1
	expect "$(oc_state v09)" retry || return 1
	expect "$(oc_result v09)" "waiting: the applied version of its key cannot be read" || return 1
	[ "$(grep -c 'i_account=4: applied version unreadable' <<< "$stderr")" -eq 1 ] ||
	    fail_with "not one log line" || return 1
	expect "$(oc_metric nsps_order_blocked_keys)" "$nblocked" || return 1
	run "$DELIVER" "${OC_D[@]}" --stats
	[ "$status" -eq 0 ] || fail_with "--stats: exit $status" || return 1
	if [ "$STORE" = spool ]; then
		expect "$(jq -r '.blocked[0].key' <<< "$output")" i_account=4 || return 1
		[[ $(jq -r '.blocked[0].reason' <<< "$output") == applied/i_account=4:* ]] ||
		    fail_with "reason" || return 1
	else
		expect "$(jq -c '.blocked' <<< "$output")" '[]' || return 1
	fi
	sleep 0.3
	oc_deliver
	expect "$(oc_state v09)" retry || return 1
	oc_repair_applied i_account=4
	sleep 0.3
	oc_deliver
	expect "$(oc_ran)" "v10 free-1" || return 1
	expect "$(oc_result v09)" stale || return 1
	expect "$(oc_metric nsps_order_blocked_keys)" 0
}

# 5. Pruning never forgets a key with an event in failed/: requeued
# after the retention, it is stale; a key with none is forgotten.
case_prune_requeue() {
	oc_post "$(oc_acct v09 8 '"2025-11-03T09:00:00Z"')"
	OC_FAIL=v09 oc_deliver
	expect "$(oc_state v09)" failed || return 1
	# Two posts: arrivals in one millisecond have no order.
	oc_post "$(oc_acct v10 8 '"2025-11-03T10:00:00Z"')"
	oc_post "$(oc_acct lone-1 6 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	oc_age_applied i_account=8 40
	oc_age_applied i_account=6 40
	# Pruning runs as the worker starts.
	oc_deliver
	expect "$(oc_applied i_account=8)" v10 || return 1
	expect "$(oc_applied i_account=6)" "" || return 1
	run "$DELIVER" "${OC_D[@]}" --requeue-failed
	expect "$output" "1 events requeued" || return 1
	oc_deliver
	expect "$(oc_ran)" "v10 lone-1" || return 1
	expect "$(oc_result v09)" stale
}

# 6. A version from the far future is held, not applied: it would make
# every real event stale.  One within ORDER_MAX_SKEW is applied.
case_future_version() {
	local soon
	soon=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
	oc_post "$(oc_acct v2100 9 '"2100-01-01T00:00:00Z"')"
	oc_deliver
	expect "$(oc_state v2100)" failed || return 1
	expect "$(oc_result v2100)" "updated_at 2100-01-01T00:00:00Z is more than ORDER_MAX_SKEW ahead of the clock" || return 1
	oc_post "$(oc_acct real-1 9 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	oc_post "$(oc_acct soon-1 9 "\"$soon\"")"
	oc_deliver
	expect "$(oc_ran)" "real-1 soon-1" || return 1
	# A tighter skew holds what the default lets through.
	oc_post "$(oc_acct soon-2 10 "\"$soon\"")"
	ORDER_MAX_SKEW=10m oc_deliver
	expect "$(oc_state soon-2)" failed
}

# 7. Keys are exact: 2^63 and 2^63 + 1 are two accounts; 20 digits as
# a number and as a string are one; 25 digits as strings are two, and
# as a bare number (beyond what JSON parsers read exactly) refused.
case_big_keys() {
	oc_post "$(oc_acct a63 9223372036854775808 '"2025-11-03T10:00:00Z"')" \
	    "$(oc_acct b63 9223372036854775809 '"2025-11-03T09:00:00Z"')" \
	    "$(oc_acct n20 12345678901234567890 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	oc_post "$(oc_acct s20 '"12345678901234567890"' '"2025-11-03T09:00:00Z"')" \
	    "$(oc_acct s25a '"1234567890123456789012345"' '"2025-11-03T10:00:00Z"')" \
	    "$(oc_acct s25b '"1234567890123456789012346"' '"2025-11-03T09:00:00Z"')" \
	    "$(oc_acct n25 1234567890123456789012345 '"2025-11-03T11:00:00Z"')"
	oc_deliver
	expect "$(oc_ran)" "a63 b63 n20 s25a s25b" || return 1
	expect "$(oc_applied i_account=9223372036854775808)" a63 || return 1
	expect "$(oc_applied i_account=9223372036854775809)" b63 || return 1
	expect "$(oc_result s20)" stale || return 1
	expect "$(oc_applied i_account=1234567890123456789012346)" s25b || return 1
	expect "$(oc_state n25)" failed || return 1
	[[ $(oc_result n25) == "data.variables.i_account: an integer beyond 64 bits is not read exactly"* ]] ||
	    fail_with "n25: $(oc_result n25)"
}

# 8. 5, "5", 5.0 and 5e0 are account 5; 5.5 is no account, refused
# with the reason, and does not fall through to another path.
case_number_forms() {
	oc_post "$(oc_acct v10 5.0 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	oc_post "$(oc_acct v09 5e0 '"2025-11-03T09:00:00Z"')" \
	    "$(oc_acct v08 '"5"' '"2025-11-03T08:00:00Z"')" \
	    "$(oc_acct v07 5 '"2025-11-03T07:00:00Z"')"
	oc_deliver
	expect "$(oc_ran)" v10 || return 1
	expect "$(oc_applied i_account=5)" v10 || return 1
	expect "$(oc_result v09) $(oc_result v08) $(oc_result v07)" "stale stale stale" || return 1
	# The SIM path comes first: take it away to see 5.5 refused.
	oc_post "$(oc_event half-2 '{"i_account":5.5}' '{"account_info":{"i_account":6}}' '"2025-11-03T11:00:00Z"')"
	oc_deliver
	expect "$(oc_state half-2)" failed || return 1
	expect "$(oc_result half-2)" "data.variables.i_account: not an integer: 5.5"
}

# 9. A SIM keeps one history from inventory to an account; two SIMs of
# one account are two histories.
case_sim_keys() {
	oc_post "$(oc_sim assigned 700 9 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	oc_post "$(oc_sim inventory 700 null '"2025-11-03T09:00:00Z"')"
	oc_deliver
	expect "$(oc_result inventory)" stale || return 1
	expect "$(oc_applied i_sim_card=700)" assigned || return 1
	oc_post "$(oc_sim sim-b 702 9 '"2025-11-03T10:00:00Z"')"
	oc_deliver
	oc_post "$(oc_sim sim-a 701 9 '"2025-11-03T09:00:00Z"')"
	oc_deliver
	expect "$(oc_ran)" "assigned sim-b sim-a" || return 1
	expect "$(oc_applied i_sim_card=701)" sim-a
}

# 10. A body that cannot be read back when the worker reads it is held
# in failed/ with the reason.
case_body_unreadable() {
	oc_post "$(oc_acct v10 3 '"2025-11-03T10:00:00Z"')" \
	    "$(oc_acct junk-1 3 '"2025-11-03T11:00:00Z"')"
	oc_corrupt_body junk-1
	oc_deliver
	expect "$(oc_ran)" v10 || return 1
	expect "$(oc_state junk-1)" failed || return 1
	expect "$(oc_result junk-1)" "body unreadable: not a JSON object"
}

# 11. Shuffled: N events over KEYS keys, one in 20 with a bad or
# missing version, -j 8, retries and a SIGKILL.  Per key never two at
# once, applied versions never go down, the newest is applied last;
# every bad event is in failed/ with its reason.
case_shuffled() {
	local n=$1 keys=$2 ev=$BATS_TEST_TMPDIR/events f id i files
	mkdir "$ev"
	awk -v dir="$ev" -v n="$n" -v keys="$keys" -v seed="$RANDOM" 'BEGIN {
		srand(seed)
		for (i = 1; i <= n; i++) {
			k = i <= keys ? i - 1 : int(rand() * keys)
			v = int(i * 0.4 + rand() * 40)
			ms = v * 250; s = int(ms / 1000)
			ts = sprintf("\"2025-11-03T%02d:%02d:%02d.%03dZ\"", 9 + int(s / 3600),
			    int(s % 3600 / 60), s % 60, ms % 1000)
			bad = ""
			if (i > keys && rand() < 0.05) {
				bad = "-bad"
				ts = rand() < 0.5 ? "" : "\"yesterday\""
			}
			id = sprintf("k%02d-v%04d-%d%s", k, v, i, bad)
			if (k < keys / 2)
				pb = sprintf("{\"account_info\":{\"bill_status\":\"open\",\"i_account\":%d},\"sim_info\":{\"i_sim_card\":%d,\"i_account\":%d}}", 277000 + k, 9000 + k, 277000 + k)
			else
				pb = sprintf("{\"account_info\":{\"bill_status\":\"open\",\"i_account\":%d}}", 277000 + k)
			f = dir "/" id ".json"
			printf "{\"event_id\":\"%s\",\"data\":{\"event_type\":\"SIM/Updated\",\"variables\":{}},\"pb_data\":%s,\"created_at\":\"2025-11-03T08:00:00+00:00\"%s}", id, pb, ts == "" ? "" : ",\"updated_at\":" ts > f
			close(f)
			print i + rand() * 100, f
		}
	}' | sort -n | cut -d' ' -f2 > "$BATS_TEST_TMPDIR/files"
	cat > "$OC_H" <<-'EOF'
	#!/bin/bash
	echo "B $NSPS_EVENT_ID" >> "$OC_LOG"
	printf -v t '0.%03d' $((RANDOM % 20 ? RANDOM % 25 : 300))
	sleep "$t"
	if [ "$NSPS_ATTEMPT" = 1 ] && [ $((RANDOM % 8)) -eq 0 ]; then
		echo "R $NSPS_EVENT_ID" >> "$OC_LOG"
		exit 75
	fi
	echo "E $NSPS_EVENT_ID" >> "$OC_LOG"
	EOF
	export RETRY_BASE=50ms RETRY_CAP=200ms
	"$DELIVER" "${OC_D[@]}" -j 8 -- "$OC_H" 2>> "$BATS_TEST_TMPDIR/worker.log" &
	worker_pid=$!
	# Half, the SIGKILL while handlers run, a new worker, the rest.
	mapfile -t files < "$BATS_TEST_TMPDIR/files"
	oc_post "${files[@]:0:n/2}" || return 1
	kill -9 "$worker_pid"
	wait "$worker_pid" 2>/dev/null || true
	sleep 0.2
	echo KILL >> "$LOG"
	"$DELIVER" "${OC_D[@]}" -j 8 -- "$OC_H" 2>> "$BATS_TEST_TMPDIR/worker.log" &
	worker_pid=$!
	oc_post "${files[@]:n/2}" || return 1
	for ((i = 0; i < 600; i++)); do
		oc_settled "$n" && break
		sleep 0.1
	done
	oc_settled "$n" || fail_with "not all settled" || return 1
	kill "$worker_pid"
	wait "$worker_pid" || true
	worker_pid=
	ls "$ev" | sed 's/\.json$//' | grep -v -- '-bad$' > "$BATS_TEST_TMPDIR/ids"
	awk -v report="$BATS_TEST_TMPDIR/counts" -f "$TESTS_DIR/lib/order-check.awk" \
	    "$BATS_TEST_TMPDIR/ids" "$LOG" || fail_with "ordering violated" || return 1
	local nbad=0
	for f in "$ev"/*-bad.json; do
		[ -e "$f" ] || continue
		id=${f##*/}
		id=${id%.json}
		nbad=$((nbad + 1))
		expect "$(oc_state "$id")" failed || return 1
		[[ $(oc_result "$id") == "unreadable updated_at: "* ]] ||
		    fail_with "$id: $(oc_result "$id")" || return 1
		! grep -q " $id\$" "$LOG" || fail_with "$id ran" || return 1
	done
	echo "# $STORE: $n events, $nbad with a bad version, all in failed/; $(cat "$BATS_TEST_TMPDIR/counts")" >&3
}
