#!/usr/bin/env bash
# Builds the two guest images bench/mpath.sh boots in the rig (the main image is untouched):
#
#   BUILD/images/compare/{vmlinuz,initramfs.cpio.gz}   the kernel's iSCSI initiator with
#       dm-multipath: busybox, open-iscsi's iscsistart, multipath-tools (multipath,
#       multipathd), systemd-udevd (udev, no rules), the modules iscsi_tcp, sd_mod, dm_multipath, dm_round_robin (and what
#       they need), /etc/multipath.conf, /sbin/compare-mpath-up, bench/mpath_io. /init is a
#       shell script: modules, the node's network from compare.* on the kernel command line,
#       then a shell on the serial console.
#   BUILD/images/bench/{vmlinuz,initramfs.cpio.gz}     the main image (make image) with
#       bench/mpath_io added as a second cpio archive (the kernel unpacks both).
#
#   images/compare/build.sh BUILD [--if-stale]   (--if-stale: nothing to do when both
#                                                images are newer than their inputs)
#
# Everything the compare image runs comes from Debian packages fetched with apt-get download
# (cached in BUILD/compare/debs) and extracted with dpkg-deb, with every shared library its
# programs need found in those packages (a missing one is an error naming it): nothing is
# copied from the host's installed files. The package versions go to /etc/compare.versions.
# Reproducible like initramfs/build.sh (sorted entries, fixed mtimes and owners, gzip -n)
# for the same package versions.
set -euo pipefail

build=${1:?usage: images/compare/build.sh BUILD}
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/initramfs/busybox-links.sh"
build=$(cd "$build" && pwd)
. "$top/images/debs.sh"
if [ "${2:-}" = --if-stale ] && [ -f "$build/images/compare/initramfs.cpio.gz" ] &&
	[ -f "$build/images/bench/initramfs.cpio.gz" ] &&
	[ -z "$(find "$top/images/compare" "$top/images/kernel.sh" "$top/images/debs.sh" "$top/bench/mpath_io.c" \
		"$build/images/initramfs.cpio.gz" -newer "$build/images/bench/initramfs.cpio.gz" \
		-type f 2>/dev/null | head -1)" ]; then
	exit 0
fi
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$top" log -1 --format=%ct 2>/dev/null || echo 0)}

# The programs and the packages that hold them and their libraries.
PKGS=(busybox-static open-iscsi multipath-tools udev libacl1 libblkid1
	libc6 libopeniscsiusr libkmod2 libssl3 libzstd1 liblzma5 libisns0
	libdevmapper1.02.1 libudev1 liburcu8 libaio1 libsystemd0 libselinux1 libcap2 libgcrypt20
	liblz4-1 libpcre2-8-0 libgpg-error0 libedit2 libjson-c5 libbsd0 libmd0 libtinfo6 libgcc-s1)
PROGS=(/sbin/iscsistart /sbin/multipath /sbin/multipathd /bin/udevadm)
MODULES=(scsi_mod sd_mod scsi_transport_iscsi libiscsi libiscsi_tcp iscsi_tcp
	dm_mod dm_multipath dm_round_robin)

kdir=$("$top/images/kernel.sh" "$build" compare "${MODULES[@]}")
kver=$(cat "$kdir/version")

# bench/mpath_io, static: the same binary in both images.
io=$build/bench/mpath_io
if [ ! -x "$io" ] || [ "$top/bench/mpath_io.c" -nt "$io" ]; then
	mkdir -p "$build/bench"
	cc -std=gnu17 -O2 -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Werror -D_GNU_SOURCE -static -pthread \
		-o "$io" "$top/bench/mpath_io.c"
fi

x=$build/compare/x
debs_unpack "$build/compare/debs" "$x" "$build/compare/versions" "${PKGS[@]}"

root=$build/compare/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/multipath,dev,proc,sys,run,tmp,root,lib,lib64,var/run,etc/iscsi}
chmod 1777 "$root/tmp"

# libname -> path inside the extracted packages
find_lib() {
	local d
	for d in lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib usr/lib; do
		[ -e "$x/$d/$1" ] && { echo "/$d/$1"; return 0; }
	done
	return 1
}
# An ELF from the packages at the same path, with every library it needs (recursively).
declare -A copied=()
copy_elf() { # PATH (inside the packages)
	local f=$1 lib path
	[ -n "${copied[$f]:-}" ] && return 0
	copied[$f]=1
	mkdir -p "$root$(dirname "$f")"
	cp -L "$x$f" "$root$f"
	chmod 0755 "$root$f"
	for lib in $(readelf -d "$x$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		path=$(find_lib "$lib") || {
			echo "compare: $lib (needed by $f) is in none of the packages: add its package to PKGS" >&2
			exit 1
		}
		copy_elf "$path"
	done
}
copy_elf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
for p in "${PROGS[@]}"; do copy_elf "$p"; done
# multipath-tools loads its path checkers, prioritizers and foreign libraries at run time.
for so in "$x"/lib/multipath/*.so; do copy_elf "/lib/multipath/$(basename "$so")"; done
# glibc loads libgcc_s at run time for pthread_cancel (multipathd stops its threads so)
copy_elf /lib/x86_64-linux-gnu/libgcc_s.so.1
# udevd is udevadm under another name (no rules: it only records the devices, which is
# what multipath's device enumeration waits for)
mkdir -p "$root/lib/systemd" "$root/etc/udev/rules.d"
ln -s /bin/udevadm "$root/lib/systemd/systemd-udevd"

install -m 0755 "$x/bin/busybox" "$root/bin/busybox"
busybox_links "$root" "$x/bin/busybox"
install -m 0755 "$io" "$root/usr/bin/mpath_io"

mkdir -p "$root/lib/modules"
cp -a "$kdir/lib/modules/$kver" "$root/lib/modules/"
cp "$build/compare/versions" "$root/etc/compare.versions"

install -m 0755 "$top/images/compare/init" "$root/init"
install -m 0755 "$top/images/compare/mpath-up" "$root/sbin/compare-mpath-up"
install -m 0644 "$top/images/compare/multipath.conf" "$root/etc/multipath.conf"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'compartd comparison image: iscsistart + dm-multipath (kernel %s)\n' "$kver" >"$root/etc/issue"

if [ "$(id -u)" -eq 0 ]; then
	mknod -m 0600 "$root/dev/console" c 5 1
	mknod -m 0666 "$root/dev/null" c 1 3
fi

# pack DIR OUT: sorted, fixed owners and mtimes, no gzip timestamp.
pack() {
	find "$1" -exec touch -h -d "@$epoch" {} +
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -9 >"$2.tmp"
	mv "$2.tmp" "$2"
}
out=$build/images/compare
mkdir -p "$out"
pack "$root" "$out/initramfs.cpio.gz"
cp "$kdir/vmlinuz" "$out/vmlinuz"

# The main image plus mpath_io (a second archive after the first: the kernel unpacks both).
main=$build/images/initramfs.cpio.gz
[ -f "$main" ] || { echo "compare: $main is missing (make image)" >&2; exit 1; }
ov=$build/compare/overlay
rm -rf "$ov"
mkdir -p "$ov/usr/bin"
install -m 0755 "$io" "$ov/usr/bin/mpath_io"
pack "$ov" "$build/compare/overlay.cpio.gz"
mkdir -p "$build/images/bench"
cat "$main" "$build/compare/overlay.cpio.gz" >"$build/images/bench/initramfs.cpio.gz"
cp "$build/images/vmlinuz" "$build/images/bench/vmlinuz"

isize=$(stat -c %s "$out/initramfs.cpio.gz")
echo "compare image: $out/initramfs.cpio.gz $isize bytes ($((isize / 1024)) KiB), kernel $kver," \
	"$(grep -E '^(open-iscsi|multipath-tools) ' "$build/compare/versions" | paste -sd, -)"
