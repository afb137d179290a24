#!/usr/bin/env bash
# Installs every Debian package the build, the tests and the demo need. Idempotent:
# when everything is there it only checks; otherwise it runs apt-get update once.
set -euo pipefail
pkgs=(
	build-essential pkg-config clang clang-format libclang-rt-14-dev
	libiscsi-dev libparted-dev libblkid-dev libsodium-dev libcmocka-dev
	tgt qemu-system-x86 qemu-utils ipxe-qemu mdadm busybox-static cpio kmod xz-utils zstd
	iproute2 jq e2fsprogs lvm2 fdisk gdisk procps psmisc util-linux
	keepalived open-iscsi multipath-tools libiscsi-bin qemu-block-extra
	bc python3
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
# Services these packages ship (tgt, open-iscsi, multipath-tools, keepalived, mdadm) are
# started by the tests themselves; keep the package scripts from starting them here.
printf '#!/bin/sh\nexit 101\n' > /tmp/compartd-policy-rc.d
"${sudo_cmd[@]}" install -m 0755 /tmp/compartd-policy-rc.d /usr/sbin/policy-rc.d
trap '"${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
