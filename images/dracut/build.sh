#!/usr/bin/env bash
# The peer image of bench/boot.sh: a dracut initramfs for the rig's node, built with
# Debian's own dracut without installing it on this host (the dracut package would replace
# initramfs-tools):
#
#   BUILD/images/dracut/{vmlinuz,initramfs.cpio.gz}
#
#   images/dracut/build.sh BUILD [--if-stale]
#
# dracut, dracut-core, dracut-network and what its network-legacy module needs
# (isc-dhcp-client, iputils-arping) are fetched with apt-get download (cached in
# BUILD/dracut/debs) and unpacked onto an overlay of this host's root whose upper layer is a
# tmpfs, in a mount namespace of its own; dracut runs chrooted there and gathers the other
# programs (bash, udev, open-iscsi, multipath-tools, mdadm, kmod, iproute2) and their
# libraries from the host's installed Debian packages, as it does on a Debian system.
# Nothing on the host changes: the namespace and its tmpfs go when dracut ends.
# The kernel is the rig's (images/kernel.sh, staged with the iSCSI and dm-multipath
# modules as for images/compare); the dracut modules are network (network-legacy),
# iscsi, multipath, mdraid, plus 99compartd-bench (a hook at initqueue/finished that
# prints "bench: dracut-ready …" on the console once a multipath map and an md RAID1 are
# up). /etc/multipath.conf is images/compare/multipath.conf (Debian has no mpathconf for
# rd.multipath=default to write one). gzip, as the main image.
set -euo pipefail

build=${1:?usage: images/dracut/build.sh BUILD [--if-stale]}
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$build" && pwd)
. "$top/images/debs.sh"
out=$build/images/dracut
if [ "${2:-}" = --if-stale ] && [ -f "$out/initramfs.cpio.gz" ] &&
	[ -z "$(find "$top/images/dracut" "$top/images/kernel.sh" "$top/images/debs.sh" "$top/images/compare/multipath.conf" \
		-newer "$out/initramfs.cpio.gz" -type f 2>/dev/null | head -1)" ]; then
	exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "dracut image: needs root (mount namespace, overlay, chroot)" >&2; exit 1; }

PKGS=(dracut dracut-core dracut-network isc-dhcp-client iputils-arping)
# the same module list as images/compare/build.sh: the same staged kernel directory
MODULES=(scsi_mod sd_mod scsi_transport_iscsi libiscsi libiscsi_tcp iscsi_tcp
	dm_mod dm_multipath dm_round_robin)
DRACUT_MODULES="bash base kernel-modules udev-rules network network-legacy iscsi multipath mdraid compartd-bench"
DRIVERS="virtio_pci virtio_blk virtio_net virtio_rng md_mod raid1 iscsi_tcp sd_mod dm_multipath dm_round_robin"

kdir=$("$top/images/kernel.sh" "$build" compare "${MODULES[@]}")
kver=$(cat "$kdir/version")

x=$build/dracut/x
debs_unpack "$build/dracut/debs" "$x" "$build/dracut/versions" "${PKGS[@]}"
mkdir -p "$x/usr/lib/dracut/modules.d" "$x/etc"
cp -a "$top/images/dracut/99compartd-bench" "$x/usr/lib/dracut/modules.d/"
cp "$top/images/compare/multipath.conf" "$x/etc/compartd-bench-multipath.conf"

mkdir -p "$out"
rm -f "$out/initramfs.cpio.gz.tmp"
# In a mount namespace: tmpfs, overlay (lower: /, upper: the tmpfs), the packages copied in
# through the overlay (tar keeps the host's /bin -> usr/bin links), chroot, dracut.
unshare -m --propagation private bash -euo pipefail -c '
	x=$1 kdir=$2 kver=$3 dst=$4 mods=$5 drivers=$6
	t=$(mktemp -d /tmp/dracut-bench.XXXXXX)
	mount -t tmpfs -o size=1g tmpfs "$t"
	mkdir "$t/u" "$t/w" "$t/m"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$t/u,workdir=$t/w" "$t/m"
	tar -C "$x" -cf - . | tar -C "$t/m" -xf - --keep-directory-symlink --no-same-owner
	# the staged kernel modules where modprobe (module checks) and dracut look for them
	mkdir -p "$t/m/lib/modules/$kver"
	mount --bind "$kdir/lib/modules/$kver" "$t/m/lib/modules/$kver"
	for d in proc sys dev; do mount --rbind "/$d" "$t/m/$d"; done
	chroot "$t/m" /usr/bin/dracut --force --no-hostonly --no-hostonly-cmdline --gzip \
		--kver "$kver" \
		-m "$mods" --add-drivers "$drivers" --nomdadmconf --nolvmconf \
		--include /etc/compartd-bench-multipath.conf /etc/multipath.conf \
		/tmp/dracut-bench.img >&2
	cp "$t/m/tmp/dracut-bench.img" "$dst"
	for d in proc sys dev "lib/modules/$kver"; do umount -R "$t/m/$d"; done
	umount "$t/m"
	umount "$t"
	rmdir "$t"
' _ "$x" "$kdir" "$kver" "$out/initramfs.cpio.gz.tmp" "$DRACUT_MODULES" "$DRIVERS"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
cp "$kdir/vmlinuz" "$out/vmlinuz"
isize=$(stat -c %s "$out/initramfs.cpio.gz")
echo "dracut image: $out/initramfs.cpio.gz $isize bytes ($((isize / 1024)) KiB), kernel $kver," \
	"$(grep -E '^dracut ' "$build/dracut/versions")"
