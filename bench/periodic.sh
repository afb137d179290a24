#!/usr/bin/env bash
# One agent's periodic work at 16 and 512 nodes, in-process (bench/periodic_bench.c): per
# call CPU time of the probe round, heartbeat, SWIM period, HELLO and SWIM PING handling,
# health cycle and configuration parse, and the ratio 512/16 (goal: at most 1.5).
set -u
BUILD=${1:-build}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
make --no-print-directory BUILD="$BUILD" "$BUILD/bench/periodic_bench" >/dev/null || exit 1
"$BUILD/bench/periodic_bench" "${PERIODIC_ITERS:-2000}"
