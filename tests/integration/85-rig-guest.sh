#!/usr/bin/env bash
# timeout: 900
# The guest storage network (SPEC §3a) in the QEMU rig: a1 and a2 export their cmpt-guest
# through the kernel's LIO target; an initiator with compartment a's infra IQN (libiscsi:
# iscsi-inq, iscsi-readcapacity16, and qemu-img's iscsi driver for the data, from the rig's
# namespace on compartment a's network) sees one LU per node with a designator and unit
# serial derived from the partition GUID, writes a checksummed pattern to both and reads it
# back after a power cut and reboot of a1, with compartment a's CHAP secret; compartment b's
# infra IQN, a wrong CHAP secret and no CHAP at all are refused; b1, booted without disks,
# exports nothing and says why; a2's export is removed before it powers off. Not covered
# here: mutual CHAP and partition growth (86-rig-guest-grow).
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
for t in iscsi-inq iscsi-readcapacity16 qemu-img; do
	command -v "$t" >/dev/null || { echo "needs $t (make deps: libiscsi-bin, qemu-block-extra)"; exit 77; }
done
rig_init
rig_up
INI_A=iqn.2026-12.compartd.rig:infra.a
INI_B=iqn.2026-12.compartd.rig:infra.b
CHAP_USER=guest-a
CHAP_SECRET=$(head -n1 "$RIG_TOP/images/rig/guest-a.secret")

ns() { ip netns exec "$RIG_NS" "$@"; }
# lu_json NODE IP INITIATOR: qemu's json: filename for the node's guest LU
lu_json() {
	printf 'json:{"driver":"raw","file":{"driver":"iscsi","transport":"tcp","portal":"%s:3260","target":"iqn.2026-12.compartd.rig:guest.%s","lun":0,"initiator-name":"%s","user":"%s","password":"%s"}}' \
		"$2" "$1" "$3" "$CHAP_USER" "$CHAP_SECRET"
}
# lu_url NODE IP [SECRET]: libiscsi's URL, with compartment a's CHAP credentials
lu_url() { echo "iscsi://$CHAP_USER%${3:-$CHAP_SECRET}@$2:3260/iqn.2026-12.compartd.rig:guest.$1/0"; }
# check_lu NODE IP: the export's event, then what the initiator sees: size, serial, designator
check_lu() {
	local node=$1 ip=$2 ev guid naa size
	ev=$(rig_wait_for "$node" "event=guest node=$node state=" 240)
	echo "$ev"
	grep -q 'state=exported' <<<"$ev" || { echo "FAIL: $node exported nothing"; exit 1; }
	grep -q ' chap=yes' <<<"$ev" || { echo "FAIL: $node exports without CHAP"; exit 1; }
	guid=$(sed -n 's/.* guid=\([^ ]*\).*/\1/p' <<<"$ev")
	naa=$(sed -n 's/.* designator=naa\.\([^ ]*\).*/\1/p' <<<"$ev")
	size=$(sed -n 's/.* size=\([0-9]*\).*/\1/p' <<<"$ev")
	local cap inq80 inq83
	cap=$(ns timeout 30 iscsi-readcapacity16 -i "$INI_A" "$(lu_url "$node" "$ip")")
	grep -q "^Total size:$size\$" <<<"$cap" || { echo "FAIL: $node LU size"; echo "$cap"; exit 1; }
	inq80=$(ns timeout 30 iscsi-inq -i "$INI_A" -e 1 -c 128 "$(lu_url "$node" "$ip")")
	grep -qi "$guid" <<<"$inq80" || { echo "FAIL: $node unit serial is not $guid"; echo "$inq80"; exit 1; }
	# iscsi-inq prints the NAA designator's 16 bytes raw: look for them in its output's hex.
	# (through a file: the page holds NUL bytes, which a shell variable drops)
	local rc=0
	ns timeout 30 iscsi-inq -i "$INI_A" -e 1 -c 131 "$(lu_url "$node" "$ip")" >"$RIG_DIR/inq83" 2>&1 ||
		rc=$?
	inq83=$(xxd -p "$RIG_DIR/inq83" | tr -d '\n')
	# iscsi-inq prints a binary designator with %s: it ends at the first NUL byte. Compare
	# what it can print, up to that byte (at least 60 01 40 5x: never NUL); the unit serial
	# above, which the designator is derived from, was compared whole.
	local want=$naa i
	for ((i = 8; i < ${#naa}; i += 2)); do
		[ "${naa:i:2}" = 00 ] && { want=${naa:0:i}; break; }
	done
	grep -qi "$want" <<<"$inq83" || {
		echo "FAIL: $node designator is not naa.$naa (iscsi-inq exit $rc):"
		head -c 1024 "$RIG_DIR/inq83" | xxd | head -20
		exit 1
	}
	echo "$node: $size bytes, serial $guid, designator naa.$naa"
	eval "GUID_$node=$guid"
}
write_pattern() { # NODE IP FILE
	ns timeout 120 qemu-img convert -n -f raw -O raw "$3" "$(lu_json "$1" "$2" "$INI_A")"
}
read_sha() { # NODE IP BYTES
	rm -f "$RIG_DIR/back.img"
	ns timeout 120 qemu-img dd -f raw -O raw if="$(lu_json "$1" "$2" "$INI_A")" \
		of="$RIG_DIR/back.img" bs=1M count=$(($3 >> 20)) >/dev/null
	sha256sum "$RIG_DIR/back.img" | cut -c1-64
}

rig_node_start a1
rig_node_start a2
rig_node_start b1 --no-disks

echo "== exports"
check_lu a1 10.77.1.11
check_lu a2 10.77.1.12
ev=$(rig_wait_for b1 'event=guest node=b1 state=' 240)
echo "$ev"
grep -q 'state=none reason=' <<<"$ev" || { echo "FAIL: b1 without disks should export nothing"; exit 1; }
if ns timeout 20 iscsi-inq -i "$INI_B" "$(lu_url b1 10.77.2.11)" >/dev/null 2>&1; then
	echo "FAIL: b1 answers on 10.77.2.11:3260"; exit 1
fi

echo "== compartment b's initiator is refused"
if out=$(ns timeout 30 iscsi-inq -i "$INI_B" "$(lu_url a1 10.77.1.11)" 2>&1); then
	echo "FAIL: $INI_B logged in to a1"; echo "$out"; exit 1
fi
echo "refused: $(head -1 <<<"$out")"

echo "== a wrong CHAP secret, and none at all, are refused"
if out=$(ns timeout 30 iscsi-inq -i "$INI_A" "$(lu_url a1 10.77.1.11 wrong-secret-123)" 2>&1); then
	echo "FAIL: a wrong CHAP secret logged in to a1"; echo "$out"; exit 1
fi
echo "wrong secret refused: $(head -1 <<<"$out")"
if out=$(ns timeout 30 iscsi-inq -i "$INI_A" "iscsi://10.77.1.11:3260/iqn.2026-12.compartd.rig:guest.a1/0" 2>&1); then
	echo "FAIL: a login without CHAP got in to a1"; echo "$out"; exit 1
fi
echo "no CHAP refused: $(head -1 <<<"$out")"

echo "== checksummed patterns on both LUs"
P=$((8 << 20))
head -c $P /dev/urandom >"$RIG_DIR/pat-a1.img"
head -c $P /dev/urandom >"$RIG_DIR/pat-a2.img"
want1=$(sha256sum "$RIG_DIR/pat-a1.img" | cut -c1-64)
want2=$(sha256sum "$RIG_DIR/pat-a2.img" | cut -c1-64)
t0=$(date +%s.%N)
write_pattern a1 10.77.1.11 "$RIG_DIR/pat-a1.img"
write_pattern a2 10.77.1.12 "$RIG_DIR/pat-a2.img"
echo "wrote 2 x 8 MiB in $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}') s"
[ "$(read_sha a1 10.77.1.11 $P)" = "$want1" ] || { echo "FAIL: a1 read back differs"; exit 1; }
[ "$(read_sha a2 10.77.1.12 $P)" = "$want2" ] || { echo "FAIL: a2 read back differs"; exit 1; }

echo "== the console: guest on a1"
rig_mark a1
rig_send a1 guest
rig_wait_for a1 "^acl +$INI_A" 30
rig_output a1 | grep -E '^(target|portal|partition|designator|auth|acl|io) ' || true
rig_output a1 | grep -Eq '^portal .*\(enabled, listening\)' || { echo "FAIL: a1 portal not enabled+listening"; exit 1; }
rig_output a1 | grep -Eq '^auth +CHAP$' || { echo "FAIL: a1 does not require CHAP"; exit 1; }

echo "== a1: power cut, reboot, the pattern is still there under the same designator"
guid_before=$GUID_a1
rig_kill a1
rig_node_start a1
check_lu a1 10.77.1.11
[ "$GUID_a1" = "$guid_before" ] || { echo "FAIL: a1's serial changed across the reboot"; exit 1; }
[ "$(read_sha a1 10.77.1.11 $P)" = "$want1" ] || { echo "FAIL: a1 pattern lost across the reboot"; exit 1; }
sleep 12 # two health intervals
if rig_events a1 | grep -E '^event=health component=guest:a1 state=(failed|needs-operator)'; then
	echo "FAIL: guest:a1 not healthy"; exit 1
fi
echo "== a2 powers off (SIGUSR2 to PID 1): the export is torn down first"
# (from a shell that has exited by then: the console prints no events while a shell runs)
rig_mark a2
rig_send a2 sh
sleep 0.5
rig_send a2 "setsid sh -c 'sleep 3; kill -USR2 1' </dev/null >/dev/null 2>&1 & exit"
rig_wait_for a2 'event=guest node=a2 state=removed' 60
echo PASS
