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
