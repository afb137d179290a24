#!/usr/bin/env bash
# Runs each libFuzzer harness for a bounded time from its seed corpus. A crash, leak or
# timeout fails the harness and leaves the reproducer in BUILD/fuzz/artifacts/.
set -u
fbuild=$1 build=$2 secs=$3
results=${RESULTS:-$build/results.txt}
# libparted's library constructor (ped_disk_gpt_init) trips ASan's strchr interceptor on
# Debian 12 before main() runs; that check is off, every other one stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-intercept_strchr=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for f in "$fbuild"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	corpus_src=tests/fuzz/corpus/${name#fuzz_}
	work="$fbuild/fuzz/corpus-$name"
	mkdir -p "$work" "$fbuild/fuzz/artifacts"
	[ -d "$corpus_src" ] && cp -n "$corpus_src"/* "$work"/ 2>/dev/null
	log="$fbuild/fuzz/$name.log"
	if timeout $((secs + 60)) "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$fbuild/fuzz/artifacts/$name-" "$work" >"$log" 2>&1; then
		runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1)
		echo "fuzz $name pass" >>"$results"
		echo "PASS [fuzz] $name (${runs:-ran} in ${secs}s)"
	else
		echo "fuzz $name fail" >>"$results"
		echo "FAIL [fuzz] $name (log: $log)"
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
	fi
done
exit 0
