#!/usr/bin/env bash
# Handshake figures: datagram seal/open rates next to bare libsodium (the peer: the cipher
# alone), and four agents on loopback: time from start until each has contacted all three
# others, and the round trips they measured.
set -u
BUILD=${1:-build}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=gnu17 -O2 -D_GNU_SOURCE -Iagent/base -Iagent/handshake -o "$tmp/hs_wire_bench" bench/hs_wire_bench.c \
	agent/handshake/hs_wire.c agent/base/util.c $(pkg-config --libs libsodium) || exit 1
"$tmp/hs_wire_bench" | tee "$tmp/wire.txt" | grep -v '^result-'
export BUILD
(
	. tests/integration/lib-hs.sh
	hs_setup
	start=$(date +%s%N)
	for n in a1 a2 b1 b2; do hs_start $n; done
	for n in a1 a2 b1 b2; do
		until hs_ctl $n peers --json 2>/dev/null | grep -q '"contacted":3'; do sleep 0.005; done
	done
	echo "all four contacted 3/3 after $((($(date +%s%N) - start) / 1000000)) ms (agent start included)"
	rtts=$(for n in a1 a2 b1 b2; do hs_ctl $n peers --json | grep -o '"rtt_us":[0-9]*' | cut -d: -f2; done | sort -n)
	echo "handshake round trips (us): min $(echo "$rtts" | head -1) median $(echo "$rtts" | sed -n 6p) max $(echo "$rtts" | tail -1)"
	echo "rtt_median_us=$(echo "$rtts" | sed -n 6p)" >"$tmp/rtt"
) | tee "$tmp/agents.txt"
hb=$(sed -n 's/^result-heartbeat: //p' "$tmp/wire.txt")
rtt=$(cat "$tmp/rtt" 2>/dev/null)
echo "result: $hb $rtt"
