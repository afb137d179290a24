#!/usr/bin/env bash
# Runs every tests/integration/NN-name.sh with a time bound. Exit 0 passes, 77 means the
# test cannot run here (the script prints why as its last line): a skip, a failure under
# CI=true. Anything else fails. Each script cleans up after itself. Results go to $RESULTS,
# by default BUILD/results.txt; each test's wall time is printed and kept in
# BUILD/integration-times.txt.
set -u
build=$1
results=${RESULTS:-$build/results.txt}
mkdir -p "$(dirname "$results")"
. "$(dirname "$0")/lib-results.sh"
export BUILD=$build
times=$build/integration-times.txt
: >"$times"
for t in tests/integration/[0-9]*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	bound=$(sed -n 's/^# timeout: *\([0-9]*\).*/\1/p' "$t" | head -1)
	log="$build/integration-$name.log"
	start=$(date +%s)
	timeout --kill-after=20 "${bound:-300}" bash "$t" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	echo "$name $secs" >>"$times"
	if [ $rc -eq 0 ]; then
		record integration "$name" pass
		echo "PASS [integration] $name (${secs}s)"
	elif [ $rc -eq 77 ]; then
		not_run integration "$name" integration "$(tail -n 1 "$log")"
	else
		record integration "$name" fail
		echo "FAIL [integration] $name (exit $rc after ${secs}s, log: $log)"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
done
exit 0
