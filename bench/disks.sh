#!/usr/bin/env bash
# Disk layout: time to lay out a blank 2 GiB image and to verify a laid-out one with
# `compartd disks apply`, side by side with sgdisk writing the same five named, typed
# partitions (sgdisk does no discovery, no verification and no journal).
set -euo pipefail
BUILD=${1:-build}
n=${N:-10}
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/tests/integration/disk-lib.sh"
disk_test_init bench-disks sgdisk
disk_conf "$work/c.conf" bench 'boot = 512MiB' 'state = 16MiB' 'infra = 512MiB' 'admin = 256MiB' \
	'min_disk = 1GiB' 'min_guest = 64MiB'
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
create=0 keep=0 sg=0
for i in $(seq "$n"); do
	rm -f "$work/d.img" "$work/s.img"
	truncate -s 2G "$work/d.img" "$work/s.img"
	t=$(date +%s%N)
	"$compartd" disks apply --config "$work/c.conf" --node a1 --disk "$work/d.img" >/dev/null 2>&1
	create=$((create + $(ms "$t")))
	t=$(date +%s%N)
	"$compartd" disks apply --config "$work/c.conf" --node a1 --disk "$work/d.img" >/dev/null 2>&1
	keep=$((keep + $(ms "$t")))
	t=$(date +%s%N)
	sgdisk -a 2048 -n1:1M:+512M -c1:cmpt-boot -t1:BC13C2FF-59E6-4262-A352-B57C60C3FDB5 \
		-n2:0:+16M -c2:cmpt-state -t2:5D138929-4580-4EC8-8641-5C8EBFEFE4B2 \
		-n3:0:+512M -c3:cmpt-infra -t3:A19D880F-05FC-4D3B-A006-743F0F84911E \
		-n4:0:+256M -c4:cmpt-admin -t4:A19D880F-05FC-4D3B-A006-743F0F84911E \
		-n5:0:0 -c5:cmpt-guest -t5:0FC63DAF-8483-4772-8E79-3D69D8477DE4 "$work/s.img" >/dev/null
	sg=$((sg + $(ms "$t")))
done
printf '%-44s %8s\n' "operation (2 GiB image, mean of $n)" "ms"
printf '%-44s %8d\n' "compartd disks apply, blank -> create" $((create / n))
printf '%-44s %8d\n' "compartd disks apply, laid out -> keep" $((keep / n))
printf '%-44s %8d\n' "sgdisk, same five partitions (peer)" $((sg / n))
echo "result: create_ms=$((create / n)) keep_ms=$((keep / n)) sgdisk_ms=$((sg / n))"
