#!/usr/bin/env bash
# The random-order start of the rig (tests/integration/93-rig-random-order.sh) ten times:
# four nodes and the storage start in random order with random delays up to 30 s, on the
# same disks; every run must end with every node ready, one infra and one admin master,
# mirror0 2/2 everywhere and no disk repartitioned. Root, QEMU (TCG): about 25 minutes.
#
#   bench/random-order.sh [BUILD] [RUNS]     (RIG_SEED=N repeats a schedule)
set -euo pipefail
BUILD=${1:-build}
RUNS=${2:-10}
start=$(date +%s)
out=$(RIG_ORDERS=$RUNS BUILD=$BUILD bash "$(dirname "$0")/../tests/integration/93-rig-random-order.sh" 2>&1) && rc=0 || rc=$?
grep -E '^(seed|run [0-9]+|PASS|FAIL|  )' <<<"$out" || true
settled=$(sed -n 's/^run [0-9]* settled after \([0-9.]*\)s/\1/p' <<<"$out" | sort -n)
n=$(grep -c . <<<"$settled" || true)
max=$(tail -1 <<<"$settled")
echo "result: runs=$RUNS passed=$n ok=$([ $rc -eq 0 ] && echo yes || echo no) max_settle_s=${max:-none} total_s=$(($(date +%s) - start))"
exit $rc
