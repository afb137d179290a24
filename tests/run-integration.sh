#!/usr/bin/env bash
# Runs every tests/integration/NN-name.sh with a time bound. Exit 0 passes, 77 means the
# test cannot run here (the script prints why as its last line): a skip, a failure under
# CI=true. Anything else fails. Each script cleans up after itself. Results go to $RESULTS,
# by default BUILD/results.txt; each test's wall time is printed and kept in
# BUILD/integration-times.txt.
#
# Two lanes run side by side, each in file-name order:
#   rig   the tests that boot the QEMU rig (they source images/rig/lib.sh) and those whose
#         header says "# lane: rig" (they share the rig's build products, such as the image);
#   host  the rest: host-mode agents, tgtd on loopback, namespaces of their own. They spend
#         their time waiting on timeouts, not on the CPU the emulated guests need.
# Tests whose header says "# lane: alone" (many processes, the CPU to themselves) run after
# both lanes have finished. INTEGRATION_LANES=1 runs everything in one lane, in order.
# Tests in different lanes must not share a port, a namespace name or a file: each takes
# its own (a fixed port of its own, or one derived from its PID).
set -u
build=$1
results=${RESULTS:-$build/results.txt}
mkdir -p "$(dirname "$results")"
. "$(dirname "$0")/lib-results.sh"
export BUILD=$build
times=$build/integration-times.txt
: >"$times"

# lane_of TEST: rig, host or alone
lane_of() {
	local tag
	tag=$(sed -n 's/^# lane: *\([a-z]*\).*/\1/p' "$1" | head -1)
	if [ -n "$tag" ]; then
		echo "$tag"
	elif grep -q 'images/rig/lib.sh' "$1"; then
		echo rig
	else
		echo host
	fi
}

# run_one TEST: runs it, records the verdict, prints one block (lanes print side by side).
run_one() {
	local t=$1 name bound log start rc secs out
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
		out="PASS [integration] $name (${secs}s)"
	elif [ $rc -eq 77 ]; then
		out=$(not_run integration "$name" integration "$(tail -n 1 "$log")")
	else
		record integration "$name" fail
		out="FAIL [integration] $name (exit $rc after ${secs}s, log: $log)
$(tail -n 40 "$log" | sed 's/^/    /')"
	fi
	printf '%s\n' "$out"
}

# run_lane TEST...: one after the other
run_lane() {
	local t
	for t in "$@"; do run_one "$t"; done
}

rig=() host=() alone=()
for t in tests/integration/[0-9]*.sh; do
	[ -f "$t" ] || continue
	if [ "${INTEGRATION_LANES:-2}" = 1 ]; then
		rig+=("$t")
		continue
	fi
	case $(lane_of "$t") in
	rig) rig+=("$t") ;;
	alone) alone+=("$t") ;;
	*) host+=("$t") ;;
	esac
done

run_lane "${host[@]}" &
host_pid=$!
run_lane "${rig[@]}"
wait "$host_pid"
run_lane "${alone[@]}"
exit 0
