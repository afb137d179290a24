#!/usr/bin/env bash
# timeout: 150
# Epochs survive reboots (SPEC §7, §10): a node never claims an epoch it has seen, even
# when the quorum device that recorded it is gone. Four agents with a journal each (a
# state image) elect an infra master at epoch E; all stop; the quorum LU is replaced by a
# blank one; all start again: the new master's epoch is above E (read back from the
# journals), where a fresh device alone would start again at 1.
source "$(dirname "$0")/lib-elect.sh"
el_setup
for n in $EL_NODES; do truncate -s 2M "$EL_TMP/$n.state"; done
for n in $EL_NODES; do el_start "$n"; done
m=$(el_wait_master 20)
sleep 1
epoch_of() { # node: the epoch of its last infra master line
	grep -o "event=role pair=[^ ]* kind=infra node=$1 role=master epoch=[0-9]*" "$EL_TMP/$1.log" |
		tail -n 1 | sed 's/.*epoch=//'
}
e1=$(epoch_of "$m")
[ -n "$e1" ] || fail "no epoch for master $m"
echo "first master: $m at epoch $e1"
for n in $EL_NODES; do el_kill "$n"; done
j=$("$BUILD/compartd" state show --disk "$EL_TMP/$m.state" --json) || fail "no journal on $m"
jq -e --argjson e "$e1" '.journal.roles.infra.epoch >= $e' <<<"$j" \
	>/dev/null || fail "journal of $m does not hold infra epoch $e1: $j"

# A blank quorum LU in place of the old one.
kill -9 "$EL_TGTD" 2>/dev/null
wait "$EL_TGTD" 2>/dev/null
rm -f "$EL_TMP/quorum-infra.img" "$EL_TMP/quorum-admin.img"
el_setup_tgtd
for n in $EL_NODES; do mv "$EL_TMP/$n.log" "$EL_TMP/$n.log.1"; done # roles from the new boot only
for n in $EL_NODES; do el_start "$n"; done
m2=$(el_wait_master 20)
sleep 1
e2=$(epoch_of "$m2")
echo "after the restart on a blank quorum LU: $m2 at epoch $e2"
[ -n "$e2" ] && [ "$e2" -gt "$e1" ] || fail "epoch $e2 reused or below $e1"
grep -q "epochs up to $e1 were seen before this boot" "$EL_TMP/$m2.log" ||
	fail "$m2 did not read its journal's epoch"
echo "ok"
