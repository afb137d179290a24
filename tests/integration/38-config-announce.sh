#!/usr/bin/env bash
# timeout: 60
# Every node announces its configuration (version, BLAKE2b hash) in its handshakes
# (SPEC §2a). Four agents on loopback: a1 and b1 run the same file, a2 a newer version,
# b2 another file with the same version number. a1 and b2 each name the conflict once
# (`event=config conflict=same-version` with both nodes and both hashes), a2 (newer) is
# no conflict, and `compartctl config` shows every peer's version and hash.
HS_PORT=${HS_PORT:-7538}
. "$(dirname "$0")/lib-hs.sh"
hs_setup
sed 's/^version = 1$/version = 2/' "$HS_TMP/cluster.conf" >"$HS_TMP/a2.conf"
{ cat "$HS_TMP/cluster.conf"; echo "# b2's local edit, same version number"; } >"$HS_TMP/b2.conf"
HS_CONF[a2]=$HS_TMP/a2.conf
HS_CONF[b2]=$HS_TMP/b2.conf
h() { b2sum -l 256 "$1" | cut -d' ' -f1; }
h1=$(h "$HS_TMP/cluster.conf") h2=$(h "$HS_TMP/a2.conf") hb2=$(h "$HS_TMP/b2.conf")
for n in a1 a2 b1 b2; do hs_start $n; done
for n in a1 a2 b1 b2; do hs_wait $n 'event=ready node='$n 15; done

hs_wait a1 "event=config conflict=same-version version=1 node=a1 hash=$h1 peer=b2 peer_hash=$hb2" 5
hs_wait b2 "event=config conflict=same-version version=1 node=b2 hash=$hb2 peer=a1 peer_hash=$h1" 5
hs_wait b2 "event=config conflict=same-version version=1 node=b2 hash=$hb2 peer=b1 peer_hash=$h1" 5
grep -q 'event=config conflict.*peer=a2' "$HS_TMP"/*.log && fail "a newer version counted as a conflict"
grep -q 'event=config conflict.*node=a2' "$HS_TMP/a2.log" && fail "a2 saw a conflict"
# Heartbeats keep coming (5 per second to the own pair): the conflict is named once.
sleep 2
c=$(grep -c "event=config conflict=same-version .*node=b2 .*peer=b1 " "$HS_TMP/b2.log")
[ "$c" -eq 1 ] || fail "b2 named its conflict with b1 $c times"

j=$(hs_ctl a1 config --json)
echo "$j" | grep -q "\"running\":{\"version\":1,\"hash\":\"$h1\"}" || fail "a1 running: $j"
echo "$j" | grep -q "{\"node\":\"a2\",\"version\":2,\"hash\":\"$h2\",\"relation\":\"newer\"}" || fail "a2 in: $j"
echo "$j" | grep -q "{\"node\":\"b1\",\"version\":1,\"hash\":\"$h1\",\"relation\":\"same\"}" || fail "b1 in: $j"
echo "$j" | grep -q "{\"node\":\"b2\",\"version\":1,\"hash\":\"$hb2\",\"relation\":\"conflict\"}" || fail "b2 in: $j"
echo "$j" | grep -q '"failed":\[' || fail "no failed list: $j"
hs_ctl a1 config | grep -q "^  b2 .*version 1, blake2b ${hb2:0:16}… (conflict)" || fail "text: $(hs_ctl a1 config)"
hs_ctl a2 config
echo "announce: versions and hashes in handshakes, same-version conflict named once per peer"
