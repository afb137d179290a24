#!/usr/bin/env bash
# Adds up the results file; exits 1 when anything failed or nothing ran.
results=$1
[ -f "$results" ] || { echo "0 passed, 1 failed (no results: nothing ran)"; exit 1; }
p=$(grep -c ' pass$' "$results")
f=$(grep -c ' fail$' "$results")
s=$(grep -c ' skip$' "$results")
if [ "$f" -gt 0 ]; then
	echo "failed:"
	grep ' fail$' "$results" | sed 's/^/  /'
fi
echo "$p passed, $f failed, $s skipped"
[ "$f" -eq 0 ] && [ "$p" -gt 0 ]
