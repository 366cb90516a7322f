# Copyright (c) 2026 The nsps-connector authors
# SPDX-License-Identifier: ISC (see LICENSE)
# The ordering check of order.bats and pg.bats, from a handler's log:
# per key, runs never overlap, applied versions never go down, and the
# last applied is the newest version sent.
#
#   awk -v report=FILE -f order-check.awk IDS LOG
#
# IDS has one event id per line, "KEY-vVERSION".  LOG has the handlers'
# lines "B id [worker]" (began), "E id" (applied), "R id" (asked for a
# retry), anything else ending a run ("S id", stale), and "KILL
# [worker]": the runs of that worker, or of every worker, died.  The
# counts go to FILE; a violation is printed, and the exit status is 1.
FNR == NR {
	split($1, a, "-"); v = substr(a[2], 2) + 0
	if (!(a[1] in newest) || v > newest[a[1]]) newest[a[1]] = v
	next
}
$1 == "KILL" {
	for (k in open)
		if ($2 == "" || owner[k] == $2) { delete open[k]; killed++ }
	next
}
{ split($2, a, "-"); k = a[1]; v = substr(a[2], 2) + 0 }
$1 == "B" {
	if (k in open) { print "overlap: " $2 " began while " open[k] " ran"; bad = 1 }
	open[k] = $2; owner[k] = $3; runs++
	next
}
open[k] != $2 { print $1 " of " $2 " outside its run"; bad = 1 }
{ delete open[k] }
$1 == "R" { retries++ }
$1 == "E" {
	if (k in last && v < last[k]) { print k ": " $2 " applied after version " last[k]; bad = 1 }
	last[k] = v
}
END {
	for (k in newest) {
		nkeys++
		if (last[k] != newest[k]) { print k ": last applied " last[k] ", newest " newest[k]; bad = 1 }
	}
	printf "%d keys, %d handler runs, %d retries asked, %d runs killed", nkeys, runs, retries, killed > report
	exit bad
}
