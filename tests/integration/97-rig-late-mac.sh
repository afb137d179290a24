#!/usr/bin/env bash
# timeout: 300
# SPEC §1, §11: a node found only by its MAC (no compartd.node=, no BOOTIF=) boots with no
# NIC at all; both are hot-plugged RIG_PLUG_S (default 30 s) after boot (QEMU `device_add`
# on PCIe root ports). Until then it waits for its identity (`event=boot stage=identity
# waiting="no interface with a configured MAC yet …"`, told once), serves the serial
# console (`status`), takes no decision; once the NICs appear it finds itself and comes up
# to a decision within seconds. Then the bound: booted again with no NIC and
# compartd.identity_wait=RIG_ID_BOUND (default 20s), it ends in the rescue prompt, saying
# that no interface with a configured MAC appeared (no identity can match: an operator acts).
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
rig_init
rig_up
fail() { echo "FAIL: $*"; exit 1; }
PLUG_S=${RIG_PLUG_S:-30}
BOUND=${RIG_ID_BOUND:-20s}

rig_node_start a1 --hotplug-nics
rig_wait_for a1 'event=boot stage=identity waiting="no interface with a configured MAC yet \(this host has: none found\)"' 90 ||
	fail "no identity waiting line"
rig_mark a1
rig_send a1 status
rig_wait_for a1 '^waiting +no interface with a configured MAC yet' 30 >/dev/null ||
	fail "the console does not answer while waiting for the identity"
left=$(awk -v d="$PLUG_S" -v t="$(rig_elapsed a1)" 'BEGIN { s = d - t; print (s > 0 ? int(s + 0.5) : 0) }')
sleep "$left"
ev=$(rig_events a1)
n=$(grep -c '^event=boot stage=identity waiting=' <<<"$ev" || true)
[ "$n" -eq 1 ] || fail "the identity wait was told $n times, not once: $(grep 'stage=identity' <<<"$ev")"
grep -q '^event=decision' <<<"$ev" && fail "a decision without an identity"
grep -Eq 'FATAL|rescue>' "$RIG_DIR/a1.log" && fail "the agent stopped while waiting"
rig_mark a1
t0=$(date +%s.%N)
rig_nic_plug a1 0 || fail "device_add of the compartment NIC refused"
rig_nic_plug a1 1 || fail "device_add of the external NIC refused"
rig_wait_for a1 'event=boot stage=identity waited_s=' 30 || fail "the identity wait did not end"
t_id=$(echo "$(date +%s.%N) - $t0" | bc)
rig_wait_for a1 'event=decision ' 60 >/dev/null || fail "no decision after the NICs appeared"
t_dec=$(echo "$(date +%s.%N) - $t0" | bc)
rig_wait_for a1 'event=ready node=a1' 30 >/dev/null || fail "not ready"
out=$(rig_sh a1 'ip -4 -o addr show' 60)
grep -q 'inet 10.77.1.11/24' <<<"$out" || fail "the compartment NIC has no address: $out"
echo "late NICs: identity ${t_id}s, decision ${t_dec}s after the plug at $(rig_elapsed a1)s (TCG)"
rig_kill a1

# No configured NIC ever: the wait ends at its bound, in the rescue prompt with the reason.
rig_node_start a1 --hotplug-nics --append "compartd.identity_wait=$BOUND"
rig_wait_for a1 'event=boot stage=identity waiting="no interface with a configured MAC yet' 90 >/dev/null ||
	fail "no identity waiting line (second boot)"
rig_wait_for a1 'identity: no interface with a configured MAC appeared within [0-9]+s' 120 ||
	fail "the bounded wait did not end"
rig_wait_for a1 'rescue> ' 30 >/dev/null || fail "no rescue prompt after the bound"
kill -0 "${RIG_PID[a1]}" || fail "QEMU is gone"
echo "PASS: identity waited for the late NICs; no configured NIC within $BOUND: rescue prompt"
