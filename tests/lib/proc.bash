# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# Watching a process from outside through /proc: its memory, its open
# files, its CPU time and its children.  Shared by the soak and
# malformed suites and by bench/run, which compare a long-lived
# connector with itself before and after a load.

# proc_kb PID FIELD: a figure of /proc/PID/status in KiB (VmRSS, the
# resident set; VmHWM, its peak).  Fails when PID is gone.
proc_kb() {
	local v
	v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null)
	[ -n "$v" ] || return 1
	echo "$v"
}

proc_rss_kb() { proc_kb "$1" VmRSS; }
proc_hwm_kb() { proc_kb "$1" VmHWM; }

# proc_fds PID: how many files PID has open.
proc_fds() {
	[ -d "/proc/$1/fd" ] || return 1
	ls "/proc/$1/fd" | wc -l
}

# proc_ticks PID: "UTIME STIME", the CPU time PID has used, in clock
# ticks.
proc_ticks() {
	local f
	# The fields after the ")" that ends the command name.
	read -ra f < <(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	echo "${f[11]} ${f[12]}"
}

# proc_children PID: the PIDs of PID's children, one a line.
proc_children() {
	cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | sed '/^$/d'
}

# assert_steady LABEL FDS0 FDS1 RSS0 RSS1 MARGIN_KB: in a bats test, a
# long-lived process kept its open files and its RSS within MARGIN_KB
# between two measurements.  In a sanitizer build RSS is mostly ASan's
# quarantine of freed memory, so it is not compared there.
assert_steady() {
	local label=$1 fd0=$2 fd1=$3 rss0=$4 rss1=$5 margin=$6
	[ "$fd1" -eq "$fd0" ] || fail_with "fds went from $fd0 to $fd1" ||
	    return 1
	if [[ ${NSPS_HARDEN-} == *-fsanitize=* ]]; then
		echo "# $label: RSS not compared: ASan's quarantine keeps freed memory" >&3
		return 0
	fi
	[ "$rss1" -le $((rss0 + margin)) ] ||
	    fail_with "RSS grew from $rss0 to $rss1 KiB"
}
