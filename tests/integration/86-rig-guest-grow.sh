#!/usr/bin/env bash
# timeout: 900
# cmpt-guest grows with its disk, and the guest LU with it (SPEC §3a, docs/guest.md), in the
# QEMU rig: a1 boots with 1 GiB disks and exports its cmpt-guest; an initiator with
# compartment a's infra IQN writes a checksummed pattern at the start and the end of the LU
# and holds a session open (tests/iscsi_ua_watch.c: TEST UNIT READY and READ CAPACITY(16)
# every 500 ms); the first disk is grown by 512 MiB under the running node (QMP
# block_resize). Asserted: disk:vda notices, the disks stage grows cmpt-guest
# (event=disk … guest_grown_to=), the export takes it (event=guest action=grown), the open
# session's READ CAPACITY and a new one's show the new size, both patterns are intact; after
# a power cut the GPT on the image is clean (sgdisk -v) with cmpt-guest up to the new end and
# the node exports the grown partition again. Whether the open session got a unit attention
# (CAPACITY DATA HAS CHANGED, 06/2A/09) is printed: LIO's iblock backstore raises none
# (docs/guest.md); that the watcher sees the unit attentions LIO does raise is asserted with
# a LOGICAL UNIT RESET (06/29/03).
# The image is built from the rig's configuration plus mutual CHAP for compartment a
# (guest_chap_mutual_user/secret_file): every initiator here checks the target's secret
# (libiscsi's target_user/target_password), and a wrong target secret is refused by the
# initiator.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
for t in iscsi-readcapacity16 qemu-img sgdisk cc pkg-config; do
	command -v "$t" >/dev/null || { echo "needs $t (make deps)"; exit 77; }
done
rig_init
rig_up
INI_A=iqn.2026-12.compartd.rig:infra.a
CHAP_USER=guest-a
CHAP_SECRET=$(head -n1 "$RIG_TOP/images/rig/guest-a.secret")
TGT_USER=target-a
TGT_SECRET=rig-target-a-mutual # a test secret, as guest-a.secret
IP=10.77.1.11
BASE="iscsi://$CHAP_USER%$CHAP_SECRET@$IP:3260/iqn.2026-12.compartd.rig:guest.a1/0"
URL="$BASE?target_user=$TGT_USER&target_password=$TGT_SECRET"
# qemu's iscsi driver takes the target's credentials from libiscsi's environment
export LIBISCSI_CHAP_TARGET_USERNAME=$TGT_USER LIBISCSI_CHAP_TARGET_PASSWORD=$TGT_SECRET

# The rig's configuration with mutual CHAP for compartment a, in an image of its own.
conf=$RIG_DIR/conf
mkdir -p "$conf/hooks" "$RIG_DIR/b"
cp "$RIG_TOP"/images/rig/cluster.key "$RIG_TOP"/images/rig/guest-a.secret "$conf/"
cp "$RIG_TOP"/images/rig/hooks/* "$conf/hooks/"
echo "$TGT_SECRET" >"$conf/target-a.secret"
sed '/^guest_chap_secret_file = \/etc\/compartd\/guest-a.secret$/a\
guest_chap_mutual_user = target-a\
guest_chap_mutual_secret_file = /etc/compartd/target-a.secret' \
	"$RIG_TOP/images/rig/cluster.conf" >"$conf/cluster.conf"
grep -q '^guest_chap_mutual_user = target-a$' "$conf/cluster.conf" || { echo "FAIL: config edit"; exit 1; }
ln -s "$BUILD/compartd" "$BUILD/compartctl" "$BUILD/kernel" "$RIG_DIR/b/"
CONF_DIR=$conf RIG_KEY=1 "$RIG_TOP/initramfs/build.sh" "$RIG_DIR/b" >/dev/null
RIG_IMAGES=$RIG_DIR/b/images
ns() { ip netns exec "$RIG_NS" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

cc -O2 -o "$RIG_DIR/ua_watch" "$RIG_TOP/tests/iscsi_ua_watch.c" $(pkg-config --cflags --libs libiscsi) ||
	fail "cannot build iscsi_ua_watch"

lu_size() { ns timeout 30 iscsi-readcapacity16 -i "$INI_A" "$URL" | sed -n 's/^Total size:\([0-9]*\)$/\1/p'; }
# lu_opts OFFSET BYTES: qemu's image options for that window of the LU (the raw driver's
# offset and size over its libiscsi driver)
lu_opts() {
	echo "driver=raw,offset=$1,size=$2,file.driver=iscsi,file.transport=tcp,file.portal=$IP:3260,file.target=iqn.2026-12.compartd.rig:guest.a1,file.lun=0,file.initiator-name=$INI_A,file.user=$CHAP_USER,file.password=$CHAP_SECRET"
}
write_at() { # OFFSET FILE
	ns timeout 120 qemu-img convert -n -f raw --target-image-opts "$2" "$(lu_opts "$1" "$(stat -c %s "$2")")"
}
sha_at() { # OFFSET BYTES
	rm -f "$RIG_DIR/back.img"
	ns timeout 120 qemu-img convert --image-opts "$(lu_opts "$1" "$2")" -O raw "$RIG_DIR/back.img"
	sha256sum "$RIG_DIR/back.img" | cut -c1-64
}

rig_node_start a1
ev=$(rig_wait_for a1 'event=guest node=a1 state=' 240)
echo "$ev"
grep -q 'state=exported' <<<"$ev" || fail "a1 exported nothing"
size0=$(sed -n 's/.* size=\([0-9]*\).*/\1/p' <<<"$ev")
[ "$(lu_size)" = "$size0" ] || fail "LU size is not $size0"
echo "before: cmpt-guest $((size0 >> 20)) MiB"

echo "== mutual CHAP: the target's secret checked by the initiator"
ns timeout 30 iscsi-inq -i "$INI_A" "$URL" >/dev/null || fail "mutual CHAP login with the right secrets"
if out=$(ns timeout 30 iscsi-inq -i "$INI_A" "$BASE?target_user=$TGT_USER&target_password=wrong-target-123" 2>&1); then
	echo "$out"; fail "a wrong target secret was accepted by the initiator"
fi
echo "wrong target secret refused: $(head -1 <<<"$out")"
if out=$(env -u LIBISCSI_CHAP_TARGET_USERNAME -u LIBISCSI_CHAP_TARGET_PASSWORD \
	ip netns exec "$RIG_NS" timeout 30 iscsi-inq -i "$INI_A" "$BASE" 2>&1); then
	echo "one-way CHAP towards a target with mutual credentials: logged in"
else
	echo "one-way CHAP towards a target with mutual credentials: refused ($(head -1 <<<"$out"))"
fi

echo "== patterns at the start and the end of the LU"
P=$((4 << 20))
head -c $P /dev/urandom >"$RIG_DIR/p0.img"
head -c $P /dev/urandom >"$RIG_DIR/p1.img"
want0=$(sha256sum "$RIG_DIR/p0.img" | cut -c1-64)
want1=$(sha256sum "$RIG_DIR/p1.img" | cut -c1-64)
END_OFF=$((size0 - P))
write_at 0 "$RIG_DIR/p0.img"
write_at $END_OFF "$RIG_DIR/p1.img"
[ "$(sha_at 0 $P)" = "$want0" ] || fail "start pattern not written"
[ "$(sha_at $END_OFF $P)" = "$want1" ] || fail "end pattern not written"

echo "== a session held open; the disk grows by 512 MiB under the running node"
ns timeout 400 "$RIG_DIR/ua_watch" "$URL" "$INI_A" 360 "$RIG_DIR/ua.stop" "$RIG_DIR/ua.reset" \
	>"$RIG_DIR/ua.log" 2>&1 &
UA_PID=$!
RIG_BG+=("$UA_PID")
for _ in $(seq 1 50); do grep -q '^capacity ' "$RIG_DIR/ua.log" && break; sleep 0.2; done
grep -q "^capacity $size0\$" "$RIG_DIR/ua.log" || { cat "$RIG_DIR/ua.log"; fail "watcher did not log in"; }
rig_mark a1
t0=$(date +%s.%N)
rig_hmp a1 "block_resize d0 1536M"
ev=$(rig_wait_for a1 'event=disk dev=/dev/vda .*guest_grown_to=' 120) || {
	rig_output a1 | grep -E 'event=(disk|health)' | tail -20
	fail "cmpt-guest was not grown"
}
echo "$ev"
size1=$(sed -n 's/.*guest_grown_to=\([0-9]*\).*/\1/p' <<<"$ev")
[ "$size1" -gt "$size0" ] || fail "grown to $size1, was $size0"
rig_wait_for a1 "event=guest node=a1 action=grown from=$size0 size=$size1" 60 ||
	fail "the export did not take the grown partition"
echo "grown to $((size1 >> 20)) MiB, exported $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}') s after the resize"
for _ in $(seq 1 40); do grep -q "^capacity $size1\$" "$RIG_DIR/ua.log" && break; sleep 0.5; done
# The watcher's own check: a LOGICAL UNIT RESET, which LIO answers with 06/29/03 on the nexus.
touch "$RIG_DIR/ua.reset"
for _ in $(seq 1 40); do grep -q '^sense 6 29 03$' "$RIG_DIR/ua.log" && break; sleep 0.5; done
touch "$RIG_DIR/ua.stop"
wait "$UA_PID" || true
echo "-- the open session saw:"
cat "$RIG_DIR/ua.log"
grep -q "^capacity $size1\$" "$RIG_DIR/ua.log" || fail "the open session's READ CAPACITY did not follow"
grep -q '^sense 6 29 03$' "$RIG_DIR/ua.log" ||
	fail "the watcher saw no unit attention after its LUN reset: it cannot tell whether one came"
if sed '/^lun-reset/q' "$RIG_DIR/ua.log" | grep -q '^sense 6 2a 09$'; then
	echo "unit attention CAPACITY DATA HAS CHANGED: seen"
else
	echo "unit attention CAPACITY DATA HAS CHANGED: not raised by LIO (docs/guest.md)"
fi
[ "$(lu_size)" = "$size1" ] || fail "a new session's READ CAPACITY is not $size1"
[ "$(sha_at 0 $P)" = "$want0" ] || fail "start pattern lost"
[ "$(sha_at $END_OFF $P)" = "$want1" ] || fail "end pattern lost"
if rig_events a1 | grep -E '^event=health component=guest:a1 state=(failed|needs-operator)'; then
	fail "guest:a1 went through the ladder"
fi

echo "== power cut: the GPT on the image, then the grown export after a reboot"
rig_kill a1
D0=$(rig_disk a1 0)
sgdisk -v "$D0" | tee "$RIG_DIR/sgdisk.out" | tail -3
grep -q 'No problems found' "$RIG_DIR/sgdisk.out" || fail "sgdisk -v finds problems on the grown disk"
gend=$(sfdisk -J "$D0" | python3 -c 'import json,sys; t=json.load(sys.stdin)["partitiontable"]; g=[p for p in t["partitions"] if p.get("name")=="cmpt-guest"][0]; print((g["start"]+g["size"])*512)')
[ "$gend" = $((1535 << 20)) ] || fail "cmpt-guest ends at $gend, not at the last whole MiB"
rig_node_start a1
ev=$(rig_wait_for a1 'event=guest node=a1 state=' 240)
grep -q "state=exported.* size=$size1" <<<"$ev" || { echo "$ev"; fail "a1 does not export the grown partition"; }
rig_wait_for a1 'event=disk dev=/dev/vda ' 5 | grep -q 'guest_grown_to=' && fail "grown again after the reboot"
[ "$(sha_at 0 $P)" = "$want0" ] || fail "start pattern lost across the reboot"
[ "$(sha_at $END_OFF $P)" = "$want1" ] || fail "end pattern lost across the reboot"
echo PASS
