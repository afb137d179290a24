#!/usr/bin/env bash
# timeout: 120
# Cluster keys (SPEC §5):
# 1. a key file that group or others may read, or that root does not own, is refused with
#    a message naming the file and the reason;
# 2. the datagram key binds the cluster name: a node of cluster "rig2" with the same key
#    file is never contacted by "rig" nodes, its datagrams count as bad-tag;
# 3. rotation without a flag day across four agents: the key file goes K1 → "K1 K2" →
#    "K2 K1" → K2, each node re-reading it on SIGHUP at its own moment; no peer is lost and
#    no datagram fails authentication (no heartbeat lost), and `keys` shows the key ids and
#    which peers still seal with the other key.
HS_PORT=7467
. "$(dirname "$0")/lib-hs.sh"
newkey() { head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n'; }
K1=$(newkey) K2=$(newkey)
KEY=$HS_TMP/cluster.key
export HS_KEY=$KEY
hs_setup
(umask 077 && echo "$K1" >"$KEY")

# 1. permissions
chmod 644 "$KEY"
hs_start a1
for ((i = 0; i < 50; i++)); do
	grep -q "cluster key file $KEY refused: mode 0644 gives access to group or others" \
		"$HS_TMP/a1.log" && break
	sleep 0.1
done
grep -q "cluster key file $KEY refused: mode 0644" "$HS_TMP/a1.log" ||
	fail "a key readable by others was not refused"
hs_ctl a1 peers >/dev/null 2>&1 && fail "a1 runs the handshake with a refused key"
hs_stop a1
chmod 600 "$KEY"
chown 65534 "$KEY"
hs_start a1
for ((i = 0; i < 50; i++)); do
	grep -q "cluster key file $KEY refused: owned by uid 65534, not root" "$HS_TMP/a1.log" && break
	sleep 0.1
done
grep -q "refused: owned by uid 65534, not root" "$HS_TMP/a1.log" || fail "a key not owned by root was not refused"
hs_stop a1
chown 0 "$KEY"
echo "1. key files readable by others or not owned by root are refused"

# 2. another cluster with the same key
sed 's/^name = rig$/name = rig2/' "$HS_TMP/cluster.conf" >"$HS_TMP/rig2.conf"
HS_CONF[a2]=$HS_TMP/rig2.conf
hs_start a1
hs_start a2
hs_wait a1 'event=ready' 15
sleep 1
grep -q 'event=peer node=a2 state=contacted' "$HS_TMP/a1.log" && fail "a1 (rig) contacted a2 (rig2)"
tags=$(hs_ctl a1 peers --json | jq '.drops["bad-tag"]')
[ "$tags" -gt 0 ] || fail "a2's datagrams were not counted as bad-tag on a1"
echo "2. the same key in a cluster of another name: not contacted, $tags bad-tag drops"
hs_stop a1
hs_stop a2
unset 'HS_CONF[a2]'

# 3. rotation across four agents
for n in a1 a2 b1 b2; do hs_start $n; done
for n in a1 a2 b1 b2; do hs_wait $n 'event=ready' 15; done
for n in a1 a2 b1 b2; do
	for ((i = 0; i < 50; i++)); do
		hs_ctl $n peers --json | grep -q '"contacted":3' && break
		sleep 0.1
	done
	hs_ctl $n peers --json | grep -q '"contacted":3' || fail "$n: not all peers contacted"
done
tags_before=$(for n in a1 a2 b1 b2; do hs_ctl $n peers --json | jq '.drops["bad-tag"]'; done | paste -sd+ | bc)
id1=$(hs_ctl a1 keys --json | jq -r .current)
rotate() { # rotate CONTENT: every node re-reads it on SIGHUP, one after the other
	printf '%s\n' "$@" >"$KEY"
	for n in a1 a2 b1 b2; do
		kill -HUP "${HS_PID[$n]}"
		sleep 0.4
	done
}
rotate "$K1" "$K2"
printf '%s\n' "$K2" "$K1" >"$KEY"
kill -HUP "${HS_PID[a1]}"
sleep 0.6
hs_ctl a1 keys
hs_ctl a1 keys --json | jq -e '.peers[] | select(.node == "a2") | .key == "other"' >/dev/null ||
	fail "a1 does not show a2 still sealing with the other key"
hs_ctl a2 keys --json | jq -e '.peers[] | select(.node == "a1") | .key == "other"' >/dev/null ||
	fail "a2 does not show a1 sealing with its next key"
rotate "$K2" "$K1"
rotate "$K2"
sleep 0.6
for n in a1 a2 b1 b2; do
	hs_ctl $n keys --json | jq -e '.other == null and ([.peers[] | .key == "current"] | all)' \
		>/dev/null || fail "$n: not every peer on the new key: $(hs_ctl $n keys)"
	grep -q 'state=lost' "$HS_TMP/$n.log" && fail "$n lost a peer during the rotation"
	hs_ctl $n peers --json | grep -q '"contacted":3' || fail "$n: a peer not contacted after the rotation"
done
hs_ctl b2 keys
id2=$(hs_ctl a1 keys --json | jq -r .current)
[ "$id1" != "$id2" ] || fail "the key id did not change"
tags_after=$(for n in a1 a2 b1 b2; do hs_ctl $n peers --json | jq '.drops["bad-tag"]'; done | paste -sd+ | bc)
[ "$tags_after" -eq "$tags_before" ] ||
	fail "$((tags_after - tags_before)) datagrams failed authentication during the rotation"
echo "3. rotated $id1 -> $id2 across four agents: no peer lost, no datagram refused"
