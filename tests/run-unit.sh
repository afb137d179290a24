#!/usr/bin/env bash
# Runs every unit test binary under BUILD/tests; records one line per binary, and one per
# test a binary skipped, in the results file that tests/summary.sh adds up: $RESULTS, by
# default BUILD/results.txt (`make check` names its own for every stage). A test source
# without its binary fails; a cmocka skip() is a skip (a failure under CI=true).
set -u
build=$1 label=$2
results=${RESULTS:-$build/results.txt}
mkdir -p "$(dirname "$results")"
. "$(dirname "$0")/lib-results.sh"
# libparted's library constructor (ped_disk_gpt_init) trips ASan's strchr interceptor on
# Debian 12 before main() runs; that check is off, every other one stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-intercept_strchr=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The suite compares and explores in full whatever the caller's environment says:
# UPDATE_GOLDEN rewrites golden files instead of comparing, ELECT_SIM_* shrink the
# election's random schedules to reproduce one.
unset UPDATE_GOLDEN ELECT_SIM_SCHEDULES ELECT_SIM_SEED
# The plain stage runs the election's schedules in full (10,000 per fault family); under
# the sanitizers 1,000 per family walk the same code for memory errors in a tenth of the
# time (the full set costs over a minute of the suite there).
[ "$label" = asan ] && export ELECT_SIM_SCHEDULES=1000
# The format parsed below: "[  SKIPPED ] name" per skipped test, and the run's summary.
export CMOCKA_MESSAGE_OUTPUT=STDOUT

# skipped LOG: the names of the tests cmocka skipped (each is listed twice: when it ran
# and in the summary; the summary's count line has spaces and does not match).
skipped() {
	sed -n 's/^\[  SKIPPED \] \([^ ]*\)$/\1/p' "$1" | sort -u
}

for src in tests/unit/test_*.c; do
	name=$(basename "$src" .c)
	t=$build/tests/$name
	if [ ! -x "$t" ]; then
		record "unit-$label" "$name" fail
		echo "FAIL [$label] $name: $src has no binary $t (not built)"
		continue
	fi
	log="$build/tests/$name.log"
	if ! timeout 300 "$t" >"$log" 2>&1; then
		record "unit-$label" "$name" fail
		echo "FAIL [$label] $name (log: $log)"
		tail -n 30 "$log" | sed 's/^/    /'
	elif ! grep -q '^\[==========\] [0-9]* test(s) run\.$' "$log"; then
		record "unit-$label" "$name" fail
		echo "FAIL [$label] $name: exit 0 without cmocka's summary (log: $log)"
	else
		record "unit-$label" "$name" pass
		echo "PASS [$label] $name"
		for s in $(skipped "$log"); do
			not_run "unit-$label" "$name:$s" "$label" "cmocka skip() (log: $log)"
		done
	fi
done
exit 0
