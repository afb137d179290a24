#!/usr/bin/env bash
# Fetches the Debian cloud kernel (small; virtio, nbd, md and 8021q are modules) and
# stages it under BUILD/kernel/<version>/: vmlinuz, and lib/modules/<version>/ holding only
# the modules the image needs (with their dependencies) and a modules.dep made by depmod.
# Prints the staged directory. Cached: a second run with the same version does nothing.
#
#   images/kernel.sh BUILD                         the image's modules (MODULES below)
#   images/kernel.sh BUILD NAME MODULE...          MODULES plus these, staged apart under
#                                                  BUILD/kernel/<version>+NAME (a variant
#                                                  image, e.g. images/compare/build.sh)
#
# To move to another kernel, change KERNEL_VERSION (the package is linux-image-<it>);
# `apt-cache depends linux-image-cloud-amd64` names the current one.
set -euo pipefail

KERNEL_VERSION=6.1.0-56-cloud-amd64

# What the image loads at boot, in this order (dependencies are added before each one).
# Modules built into this kernel are skipped; a module missing from the package is an error.
# softdog: the watchdog the election fences with (SPEC §7). This kernel builds no driver
# for a device QEMU emulates (no i6300esb, ib700wdt or iTCO_wdt; docs/rig.md).
MODULES=(virtio_pci virtio_blk virtio_net virtio_rng af_packet 8021q md_mod raid1 nbd
	target_core_mod target_core_iblock iscsi_target_mod softdog)

build=${1:?usage: images/kernel.sh BUILD [NAME MODULE...]}
mkdir -p "$build/kernel"
build=$(cd "$build" && pwd)
out=$build/kernel/$KERNEL_VERSION
if [ $# -gt 1 ]; then
	out=$out+$2
	MODULES+=("${@:3}")
fi
# the cache holds for the same module list only
if [ -f "$out/.done" ] && [ "$(cat "$out/modules.list" 2>/dev/null)" != "${MODULES[*]}" ]; then
	rm -f "$out/.done"
fi
if [ -f "$out/.done" ]; then
	echo "$out"
	exit 0
fi

work=$(mktemp -d "$build/kernel/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt's "_apt cannot access" note about downloading as root is harmless.
(cd "$work" && apt-get download -q "linux-image-$KERNEL_VERSION" >&2)
deb=$(ls "$work"/linux-image-*.deb)
dpkg-deb -x "$deb" "$work/x"
src=$work/x/lib/modules/$KERNEL_VERSION
depmod -b "$work/x" "$KERNEL_VERSION"

# module name as modprobe spells it (dashes and underscores are the same) -> .ko path
ko_of() {
	local want=${1//-/_} path name
	while IFS=: read -r path _; do
		name=$(basename "$path" .ko)
		name=${name%.ko.*}
		[ "${name//-/_}" = "$want" ] && { echo "$path"; return 0; }
	done <"$src/modules.dep"
	return 1
}
builtin() {
	local want=${1//-/_}
	sed 's|.*/||; s|\.ko$||; s|-|_|g' "$src/modules.builtin" | grep -qx "$want"
}

declare -A seen=()
order=()
add_ko() { # add a .ko path after its dependencies
	local ko=$1 deps d
	[ -n "${seen[$ko]:-}" ] && return 0
	seen[$ko]=1
	deps=$(grep -E "^${ko//./\\.}:" "$src/modules.dep" | cut -d: -f2)
	# modules.dep lists the nearest dependency first: load from the far end.
	for d in $(echo "$deps" | tr ' ' '\n' | tac); do
		add_ko "$d"
	done
	order+=("$ko")
}
for m in "${MODULES[@]}"; do
	if builtin "$m"; then
		continue
	fi
	ko=$(ko_of "$m") || { echo "kernel.sh: module $m is not in linux-image-$KERNEL_VERSION" >&2; exit 1; }
	add_ko "$ko"
done

stage=$work/stage
dst=$stage/lib/modules/$KERNEL_VERSION
mkdir -p "$dst"
for ko in "${order[@]}"; do
	mkdir -p "$dst/$(dirname "$ko")"
	case $ko in
	*.ko.xz) xz -dc "$src/$ko" >"$dst/${ko%.xz}" ;;
	*.ko.zst) zstd -qdc "$src/$ko" >"$dst/${ko%.zst}" ;;
	*.ko.gz) gzip -dc "$src/$ko" >"$dst/${ko%.gz}" ;;
	*) cp "$src/$ko" "$dst/$ko" ;;
	esac
done
cp "$src/modules.builtin" "$src/modules.order" "$dst/"
[ -f "$src/modules.builtin.modinfo" ] && cp "$src/modules.builtin.modinfo" "$dst/"
depmod -b "$stage" "$KERNEL_VERSION"
# The load order the agent follows as PID 1 (paths relative to lib/modules/<version>).
for ko in "${order[@]}"; do
	ko=${ko%.xz}
	ko=${ko%.zst}
	echo "${ko%.gz}"
done >"$dst/compartd.load"
cp "$work/x/boot/vmlinuz-$KERNEL_VERSION" "$stage/vmlinuz"
echo "$KERNEL_VERSION" >"$stage/version"
echo "${MODULES[*]}" >"$stage/modules.list"
rm -rf "$out"
mv "$stage" "$out"
touch "$out/.done"
echo "$out"
