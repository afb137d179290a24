#!/usr/bin/env bash
# The checks of the tree itself, one result line each in the results file: the layers
# (tests/layers.sh: no include climbs) and the format (tests/format.sh: .clang-format).
set -u
build=$1
results=${RESULTS:-$build/results.txt}
mkdir -p "$(dirname "$results")"
. "$(dirname "$0")/lib-results.sh"
cd "$(dirname "$0")/.."
for check in layers format; do
	if out=$(tests/$check.sh 2>&1); then
		record static "$check" pass
		echo "PASS [static] $check: $(tail -n 1 <<<"$out")"
	else
		record static "$check" fail
		echo "FAIL [static] $check"
		sed 's/^/    /' <<<"$out"
	fi
done
exit 0
