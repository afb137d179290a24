#!/usr/bin/env bash
# timeout: 300
# lane: rig (it rebuilds the image the rig tests boot)
# The image is reproducible: building it twice from the same inputs gives the same bytes,
# and it holds what a node needs (init, tools, modules with modules.dep, configuration).
# The cluster key is in it only with RIG_KEY=1, marked for the rig's cluster (SPEC §5).
set -euo pipefail
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$BUILD/compartd" ] || { echo "FAIL: $BUILD/compartd missing"; exit 1; }
command -v cpio >/dev/null || { echo "needs cpio"; exit 77; }
[ -x /bin/busybox ] && [ -x /sbin/mdadm ] || { echo "needs busybox-static and mdadm (make deps)"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "the image build makes /dev/console: needs root"; exit 77; }
# Without RIG_KEY: no key in the image, and the build says so.
out=$(RIG_KEY= "$top/initramfs/build.sh" "$BUILD")
grep -q "no cluster key: each node asks for it" <<<"$out" || { echo "FAIL: build does not say it has no key: $out"; exit 1; }
zcat "$BUILD/images/initramfs.cpio.gz" | cpio -t --quiet | grep -qx etc/compartd/cluster.key &&
	{ echo "FAIL: the key is in an image built without RIG_KEY=1"; exit 1; }
grep -qx no-key "$BUILD/images/key" || { echo "FAIL: images/key does not say no-key"; exit 1; }
export RIG_KEY=1
out=$("$top/initramfs/build.sh" "$BUILD")
grep -q "embeds the test key .*RIG_KEY=1), for cluster rig only" <<<"$out" || { echo "FAIL: build does not say it embeds the key: $out"; exit 1; }
a=$(sha256sum "$BUILD/images/initramfs.cpio.gz" | cut -c1-64)
touch "$BUILD/compartd" # a newer mtime on an input must not change the bytes
"$top/initramfs/build.sh" "$BUILD"
b=$(sha256sum "$BUILD/images/initramfs.cpio.gz" | cut -c1-64)
echo "first  $a"
echo "second $b"
[ "$a" = "$b" ] || { echo "FAIL: two builds differ"; exit 1; }

list=$(zcat "$BUILD/images/initramfs.cpio.gz" | cpio -t --quiet)
for f in init usr/bin/compartctl sbin/mdadm bin/busybox bin/sh sbin/udhcpc dev/console \
	etc/compartd/cluster.conf etc/compartd/cluster.key etc/compartd/udhcpc.script; do
	grep -qx "$f" <<<"$list" || { echo "FAIL: $f missing from the image"; exit 1; }
done
for m in virtio_blk virtio_net virtio_pci raid1 md-mod nbd 8021q; do
	grep -q "/$m.ko\$" <<<"$list" || { echo "FAIL: module $m missing"; exit 1; }
done
grep -q 'lib/modules/.*/modules.dep$' <<<"$list" || { echo "FAIL: modules.dep missing"; exit 1; }
# Every shared library the agent needs is inside.
for lib in $(ldd "$BUILD/compartd" | grep -o '/[^ ]*'); do
	grep -qx "${lib#/}" <<<"$list" || { echo "FAIL: $lib missing"; exit 1; }
done
[ "$(zcat "$BUILD/images/initramfs.cpio.gz" | cpio -i --quiet --to-stdout etc/compartd/cluster.key | head -1)" = "only-cluster rig" ] ||
	{ echo "FAIL: the embedded key is not marked only-cluster rig"; exit 1; }
grep -q 'BOOTIF=01-${netX/mac:hexhyp}' "$BUILD/images/boot.ipxe" || { echo "FAIL: boot.ipxe has no BOOTIF"; exit 1; }
# Entries are sorted and every mtime is the same (device nodes list major, minor instead).
[ "$(sort <<<"$list")" = "$list" ] || { echo "FAIL: entries not sorted"; exit 1; }
mt=$(zcat "$BUILD/images/initramfs.cpio.gz" | cpio -tv --quiet 2>/dev/null | grep -v '^[cb]' | awk '{ print $6, $7, $8 }' | sort -u | wc -l)
[ "$mt" -eq 1 ] || { echo "FAIL: $mt different mtimes"; exit 1; }
echo "PASS ($(stat -c %s "$BUILD/images/initramfs.cpio.gz") bytes)"
