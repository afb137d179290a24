#!/usr/bin/env bash
# Builds the PXE artifacts: BUILD/images/{vmlinuz,initramfs.cpio.gz,boot.ipxe}.
#
#   initramfs/build.sh BUILD           (make image)
#
# The initramfs holds compartd as /init (with the shared libraries it needs), compartctl,
# mdadm, busybox (rescue shell, udhcpc), the kernel modules from images/kernel.sh with
# modules.dep, and /etc/compartd/{cluster.conf,*.secret,hooks/,rules/}; the cluster key
# only with RIG_KEY=1 (below).
# Settings (environment):
#   CONF_DIR           where cluster.conf, cluster.key and hooks/ come from (images/rig)
#   RIG_KEY            1: embed CONF_DIR/cluster.key as /etc/compartd/cluster.key, marked
#                      "only-cluster NAME" (cluster.conf's name): the agent refuses it for
#                      any other cluster. This is for the rig's test key. Otherwise the
#                      image has no key: cluster.conf must name the key's key_id, and each
#                      node asks for the key once on its serial console ('key install')
#                      and keeps it on its cmpt-state (SPEC §5).
#   SOURCE_DATE_EPOCH  mtime of every entry (default: the last commit's time)
#   CMDLINE_EXTRA      appended to the kernel command line in boot.ipxe
# Reproducible: sorted entries, fixed mtimes and owners, gzip -n. The same inputs give the
# same bytes.
set -euo pipefail

build=${1:?usage: initramfs/build.sh BUILD}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/initramfs/busybox-links.sh"
mkdir -p "$build"
build=$(cd "$build" && pwd)
conf_dir=${CONF_DIR:-$top/images/rig}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}

rig_key=${RIG_KEY:-0}
need=("$build/compartd" "$build/compartctl" "$conf_dir/cluster.conf")
[ "$rig_key" = 1 ] && need+=("$conf_dir/cluster.key")
for f in "${need[@]}"; do
	[ -f "$f" ] || { echo "initramfs: $f is missing (run make all; set CONF_DIR)" >&2; exit 1; }
done
cluster=$(awk '/^\[/ { s = $0 } s == "[cluster]" && $1 == "name" && $2 == "=" { print $3; exit }' "$conf_dir/cluster.conf")
[ -n "$cluster" ] || { echo "initramfs: no [cluster] name in $conf_dir/cluster.conf" >&2; exit 1; }
if [ "$rig_key" != 1 ] && ! awk '/^\[/ { s = $0 } s == "[cluster]" && $1 == "key_id" { f = 1 } END { exit !f }' "$conf_dir/cluster.conf"; then
	echo "initramfs: the image carries no cluster key, and $conf_dir/cluster.conf has no" \
		"[cluster] key_id to check a typed one against: add key_id (as 'keys' shows it)," \
		"or build the rig's image with RIG_KEY=1" >&2
	exit 1
fi
for f in /sbin/mdadm /bin/busybox; do
	[ -x "$f" ] || { echo "initramfs: $f is missing (make deps installs mdadm, busybox-static)" >&2; exit 1; }
done

kdir=$("$top/images/kernel.sh" "$build")
kver=$(cat "$kdir/version")

root=$build/initramfs/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/compartd/hooks,etc/mdadm,dev,proc,sys,run,tmp,root,lib,var/run}
chmod 1777 "$root/tmp"

# A binary and every shared library ldd names, at the same paths.
copy_elf() { # SRC DST
	install -m 0755 "$1" "$root$2"
	ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
		chmod 0755 "$root$lib"
	done
}
copy_elf "$build/compartd" /init
strip --strip-debug "$root/init"
ln -s ../../init "$root/usr/bin/compartd"
copy_elf "$build/compartctl" /usr/bin/compartctl
strip --strip-debug "$root/usr/bin/compartctl"
copy_elf /sbin/mdadm /sbin/mdadm
printf 'HOMEHOST <system>\nAUTO +1.x -all\n' >"$root/etc/mdadm/mdadm.conf"

install -m 0755 /bin/busybox "$root/bin/busybox"
busybox_links "$root" /bin/busybox '*/mdadm'

mkdir -p "$root/lib/modules"
cp -a "$kdir/lib/modules/$kver" "$root/lib/modules/"

install -m 0644 "$conf_dir/cluster.conf" "$root/etc/compartd/cluster.conf"
if [ "$rig_key" = 1 ]; then
	{ echo "only-cluster $cluster"; cat "$conf_dir/cluster.key"; } >"$root/etc/compartd/cluster.key"
	chmod 0600 "$root/etc/compartd/cluster.key"
	key_note="embeds the test key $conf_dir/cluster.key (RIG_KEY=1), for cluster $cluster only"
else
	key_note="no cluster key: each node asks for it once on its serial console ('key install')"
fi
# CHAP secrets the configuration names (guest_chap_secret_file, docs/guest.md)
for f in "$conf_dir"/*.secret; do
	[ -f "$f" ] && install -m 0600 "$f" "$root/etc/compartd/$(basename "$f")"
done
if [ -d "$conf_dir/hooks" ]; then
	for h in "$conf_dir"/hooks/*; do
		[ -f "$h" ] && install -m 0755 "$h" "$root/etc/compartd/hooks/$(basename "$h")"
	done
fi
if ls "$top"/rules/*.rules >/dev/null 2>&1; then
	mkdir -p "$root/etc/compartd/rules"
	for r in "$top"/rules/*.rules; do
		install -m 0644 "$r" "$root/etc/compartd/rules/$(basename "$r")"
	done
fi
install -m 0755 "$top/initramfs/udhcpc.script" "$root/etc/compartd/udhcpc.script"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'compartd initramfs (kernel %s)\n' "$kver" >"$root/etc/issue"

# The kernel opens /dev/console for /init before anything is mounted.
if [ "$(id -u)" -eq 0 ]; then
	mknod -m 0600 "$root/dev/console" c 5 1
	mknod -m 0666 "$root/dev/null" c 1 3
else
	echo "initramfs: not root, /dev/console left out (PID 1 opens the console itself)" >&2
fi

# Fixed owners and mtimes, sorted entries, no gzip timestamp.
find "$root" -exec touch -h -d "@$epoch" {} +
out=$build/images
mkdir -p "$out"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -9 >"$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
cp "$kdir/vmlinuz" "$out/vmlinuz"

cat >"$out/boot.ipxe" <<EOF
#!ipxe
# compartd: one image for every node of the cluster. The agent finds which node it is
# from the MAC address iPXE booted from (BOOTIF=), or from compartd.node= if added here.
kernel vmlinuz initrd=initramfs.cpio.gz console=ttyS0,115200 printk.devkmsg=on panic=10 BOOTIF=01-\${netX/mac:hexhyp}${CMDLINE_EXTRA:+ $CMDLINE_EXTRA}
initrd initramfs.cpio.gz
boot
EOF

# What the image holds as its key, for the rig (images/rig/lib.sh) to know which image it has.
if [ "$rig_key" = 1 ]; then echo "rig-key $cluster"; else echo "no-key"; fi >"$out/key"

isize=$(stat -c %s "$out/initramfs.cpio.gz")
ksize=$(stat -c %s "$out/vmlinuz")
echo "image: $out/initramfs.cpio.gz $isize bytes ($((isize / 1024)) KiB), vmlinuz $ksize bytes," \
	"kernel $kver, sha256 $(sha256sum "$out/initramfs.cpio.gz" | cut -c1-16)"
echo "image: $key_note"
