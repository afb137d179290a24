#!/usr/bin/env bash
# Adds up the results file; exits 1 when anything failed, nothing ran, or (under CI=true)
# anything was skipped. Skips are always listed.
results=$1
. "$(dirname "$0")/lib-results.sh"
[ -f "$results" ] || { echo "0 passed, 1 failed (no results in $results: nothing ran)"; exit 1; }
p=$(grep -c ' pass$' "$results")
f=$(grep -c ' fail$' "$results")
s=$(grep -c ' skip$' "$results")
if [ "$s" -gt 0 ]; then
	echo "skipped (did not run):"
	grep ' skip$' "$results" | sed 's/^/  /'
fi
if [ "$f" -gt 0 ]; then
	echo "failed:"
	grep ' fail$' "$results" | sed 's/^/  /'
fi
echo "$p passed, $f failed, $s skipped"
if [ "$s" -gt 0 ] && ci_strict; then
	echo "FAIL: CI=true and $s test(s) skipped: in CI every test must run"
	exit 1
fi
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
