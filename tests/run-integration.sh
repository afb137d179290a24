#!/usr/bin/env bash
# Runs every tests/integration/NN-name.sh with a time bound. Exit 0 passes, 77 skips
# (the script prints why), anything else fails. Each script cleans up after itself.
set -u
build=$1
results=${RESULTS:-$build/results.txt}
export BUILD=$build
for t in tests/integration/[0-9]*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	bound=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1)
	log="$build/integration-$name.log"
	start=$(date +%s)
	timeout --kill-after=20 "${bound:-300}" bash "$t" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	if [ $rc -eq 0 ]; then
		echo "integration $name pass" >>"$results"
		echo "PASS [integration] $name (${secs}s)"
	elif [ $rc -eq 77 ]; then
		echo "integration $name skip" >>"$results"
		echo "SKIP [integration] $name: $(tail -n 1 "$log")"
	else
		echo "integration $name fail" >>"$results"
		echo "FAIL [integration] $name (exit $rc after ${secs}s, log: $log)"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
done
exit 0
