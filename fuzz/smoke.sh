#!/bin/sh
# Runs each libFuzzer harness for a bounded time under ASan+UBSan and a
# memory limit, from the committed seeds, and fails on the first crash,
# leak, timeout or out-of-memory.  Prints, per harness, the time, the
# runs, and the edge coverage libFuzzer measured.
#
# usage: smoke.sh fuzzdir seconds rss_mb harness...
set -u
fuzzdir=$1 seconds=$2 rss=$3
shift 3
out=fuzz-out
mkdir -p "$out"
failed=0
summary=
for h in "$@"; do
	name=${h##*/fuzz-}
	work=$out/$name
	rm -rf "$work"
	mkdir -p "$work/corpus"
	dict=
	[ -f "$fuzzdir/dict/$name.dict" ] && dict=-dict=$fuzzdir/dict/$name.dict
	echo "fuzz-smoke: $name for ${seconds}s"
	# The first directory takes new inputs; the seeds stay untouched.
	# shellcheck disable=SC2086
	"$h" -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout=10 \
	    -max_len=16384 -print_final_stats=1 -close_fd_mask=3 \
	    -artifact_prefix="$work/" $dict \
	    "$work/corpus" "$fuzzdir/corpus/$name" >"$work/log" 2>&1
	rc=$?
	total=$(sed -n 's/.*Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$work/log" | head -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$work/log" | tail -n 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log")
	rssmb=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/log")
	ncorp=$(find "$work/corpus" "$fuzzdir/corpus/$name" -type f | wc -l)
	pct=$(awk -v c="${cov:-0}" -v t="${total:-0}" \
	    'BEGIN { if (t > 0) printf "%.1f", 100 * c / t; else print "?" }')
	line="$name: ${secs:-?} s, ${runs:-?} runs, cov ${cov:-?}/${total:-?} edges ($pct%), corpus $ncorp, peak RSS ${rssmb:-?} MB"
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		line="$line: FAILED (exit $rc)"
		grep -E 'ERROR|SUMMARY|artifact|Test unit written' "$work/log" | head -n 20
		ls "$work" | grep -E '^(crash|leak|timeout|oom)-' | sed "s|^|  $work/|"
	fi
	echo "fuzz-smoke: $line"
	summary="$summary$line
"
done
printf '%s' "$summary" > "$out/summary"
echo "fuzz-smoke: $# harnesses, $failed failed"
[ "$failed" -eq 0 ]
