#!/usr/bin/env bash
# Runs every unit test binary under BUILD/tests; records one line per binary in the
# results file (build/results.txt) that tests/summary.sh adds up.
set -u
build=$1 label=$2
results=${RESULTS:-build/results.txt}
mkdir -p "$(dirname "$results")"
# libparted's library constructor (ped_disk_gpt_init) trips ASan's strchr interceptor on
# Debian 12 before main() runs; that check is off, every other one stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-intercept_strchr=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	log="$build/tests/$name.log"
	if timeout 300 "$t" >"$log" 2>&1; then
		echo "unit-$label $name pass" >>"$results"
		echo "PASS [$label] $name"
	else
		echo "unit-$label $name fail" >>"$results"
		echo "FAIL [$label] $name (log: $log)"
		tail -n 30 "$log" | sed 's/^/    /'
	fi
done
exit 0
