#!/usr/bin/env bash
# Runs each libFuzzer harness for a bounded time from its seed corpus, FUZZ_JOBS (default:
# the number of cores) at a time. A crash, leak or timeout fails the harness and leaves the
# reproducer in FBUILD/fuzz/artifacts/. A harness source without its binary could not run:
# a skip, a failure under CI=true. Results go to $RESULTS, by default BUILD/results.txt.
set -u
fbuild=$1 build=$2 secs=$3
results=${RESULTS:-$build/results.txt}
mkdir -p "$(dirname "$results")" "$fbuild/fuzz/artifacts"
. "$(dirname "$0")/lib-results.sh"
jobs=${FUZZ_JOBS:-$(nproc)}
# libparted's library constructor (ped_disk_gpt_init) trips ASan's strchr interceptor on
# Debian 12 before main() runs; that check is off, every other one stays on.
export ASAN_OPTIONS=${ASAN_OPTIONS:-intercept_strchr=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# fuzz_one NAME: runs one harness; its verdict goes to FBUILD/fuzz/NAME.verdict.
fuzz_one() {
	local name=$1 f=$fbuild/fuzz/$1 work=$fbuild/fuzz/corpus-$1 log=$fbuild/fuzz/$1.log
	local corpus_src=tests/fuzz/corpus/${name#fuzz_}
	mkdir -p "$work"
	[ -d "$corpus_src" ] && cp -n "$corpus_src"/* "$work"/ 2>/dev/null
	if timeout $((secs + 60)) "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$fbuild/fuzz/artifacts/$name-" "$work" >"$log" 2>&1; then
		echo "pass $(grep -o 'Done [0-9]* runs' "$log" | tail -1)" >"$fbuild/fuzz/$name.verdict"
	else
		echo "fail" >"$fbuild/fuzz/$name.verdict"
	fi
}

names=()
for src in tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	name=$(basename "$src" .c)
	if [ ! -x "$fbuild/fuzz/$name" ]; then
		not_run fuzz "$name" fuzz "no harness binary $fbuild/fuzz/$name (make fuzz builds it; needs clang)"
		continue
	fi
	rm -f "$fbuild/fuzz/$name.verdict"
	names+=("$name")
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
	fuzz_one "$name" &
done
wait
for name in "${names[@]}"; do
	read -r verdict runs <"$fbuild/fuzz/$name.verdict" 2>/dev/null || verdict=fail
	if [ "$verdict" = pass ]; then
		record fuzz "$name" pass
		echo "PASS [fuzz] $name (${runs:-ran} in ${secs}s)"
	else
		record fuzz "$name" fail
		echo "FAIL [fuzz] $name (log: $fbuild/fuzz/$name.log)"
		grep -E 'ERROR|SUMMARY|Test unit written' "$fbuild/fuzz/$name.log" | head -5 | sed 's/^/    /'
	fi
done
exit 0
