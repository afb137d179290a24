#!/usr/bin/env bash
# timeout: 300
# The comparison image of bench/mpath.sh (images/compare/build.sh) boots in the rig, logs
# in to mirror0 on both portals with open-iscsi's iscsistart and builds one dm-multipath
# map over the two paths (round-robin, one path group); a block written through the map
# reads back the same.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/images/rig/lib.sh"
rig_require
BUILD=${BUILD:-$top/build}
"$top/images/compare/build.sh" "$BUILD" --if-stale >&2 || { echo "FAIL: compare image build"; exit 1; }
rig_init
rig_up
RIG_IMAGES=$BUILD/images/compare
rig_node_start a1 --no-disks --append \
	"compare.mac=52:54:00:77:0a:01 compare.ip=10.77.1.11/24 compare.route=10.77.2.0/24,10.77.1.1"
rig_wait_for a1 'compare: ready dev=' 120 || { echo "FAIL: the comparison image did not come up"; exit 1; }
out=$(rig_sh a1 'compare-mpath-up iqn.2026-11.org.compartd.rig:mirror0 10.77.1.100:3260 10.77.2.100:3260; multipath -ll' 120) || true
echo "$out"
grep -qE '^map=/dev/mapper/[a-z0-9]+ paths=2$' <<<"$out" || { echo "FAIL: no map over 2 paths"; exit 1; }
grep -q 'round-robin' <<<"$out" || { echo "FAIL: the map does not use round-robin"; exit 1; }
map=$(sed -n 's/^map=\([^ ]*\) .*/\1/p' <<<"$out")
out=$(rig_sh a1 "dd if=/dev/urandom of=/tmp/w bs=64k count=1 2>/dev/null; dd if=/tmp/w of=$map bs=64k seek=3 oflag=direct 2>&1 && dd if=$map of=/tmp/r bs=64k skip=3 count=1 iflag=direct 2>&1 && cmp /tmp/w /tmp/r && echo SAME" 60) || true
echo "$out"
grep -q '^SAME$' <<<"$out" || { echo "FAIL: a block written through $map did not read back"; exit 1; }
echo "PASS (dm-multipath map $map over 2 iSCSI paths in the comparison image)"
