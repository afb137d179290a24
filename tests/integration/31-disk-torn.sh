#!/usr/bin/env bash
# timeout: 300
# An interrupted create is not a wipe authorization for whatever disk shows up later
# (SPEC §3): apply on a.img; apply on a.img + c.img stopped at `partition`; c.img
# replaced by an ext4 image holding a file; the next apply (no approval) must leave it
# byte for byte. And the first disk of a blank node torn inside libparted's GPT write
# (COMPARTD_FAULT_AT=gpt-write, COMPARTD_FAULT_TORN=K: power lost after K of libparted's
# five writes) is finished on the next run, while the same torn table on a disk that holds
# anything else, or not at our canonical geometry, stays foreign.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/integration/disk-lib.sh"
disk_test_init disk-torn sfdisk sgdisk jq mkfs.ext4 sha256sum debugfs
disk_conf cluster.conf torn 'boot = 8MiB' 'state = 2MiB' 'infra = 16MiB' 'admin = 8MiB' 'min_disk = 64MiB' 'min_guest = 16MiB'
apply() { # out-prefix disk... (env passed through)
	local o=$1; shift
	local args=()
	for d in "$@"; do args+=(--disk "$work/$d"); done
	"$compartd" disks apply --config cluster.conf --node a1 "${args[@]}" >"$o.out" 2>"$o.err"
}
verdict() { # out-prefix disk
	grep -o "event=disk dev=$work/$2 [^ ]* verdict=[a-z-]*" "$1.err" | sed 's/.*verdict=//'
}

# 1. The interrupted create and the replaced disk.
truncate -s 128M a.img c.img
apply r1 a.img
rc=0; COMPARTD_FAULT_AT=partition apply r2 a.img c.img || rc=$?
[ $rc -eq 99 ] || { echo "expected the fault at partition (99), got $rc"; cat r2.err; exit 1; }
"$compartd" state show --disk a.img --json | jq -e --arg c "$work/c.img" \
	'[.journal.steps[] | select(.target == $c and .state == "intent")] | length == 1' >/dev/null ||
	{ echo "no pending intent for c.img"; exit 1; }
rm c.img; truncate -s 128M c.img
mkfs.ext4 -q -F c.img >/dev/null 2>&1
echo "precious $RANDOM" >precious.txt
debugfs -w -R "write precious.txt precious.txt" c.img >/dev/null 2>&1
sum_c=$(sha256sum <c.img)
apply r3 a.img c.img || true
[ "$(verdict r3 c.img)" = foreign ] || { echo "replaced disk not foreign: $(verdict r3 c.img)"; cat r3.err; exit 1; }
[ "$(sha256sum <c.img)" = "$sum_c" ] || { echo "the replaced disk was written to"; exit 1; }
debugfs -R "cat precious.txt" c.img 2>/dev/null | cmp -s - precious.txt ||
	{ echo "the file on the replaced disk is gone"; exit 1; }
# The same disk size, blank: the intent may resume (it is the torn disk's state).
rm c.img; truncate -s 128M c.img
apply r4 a.img c.img
[ "$(verdict r4 c.img)" = create ] || { echo "blank disk: $(verdict r4 c.img)"; exit 1; }
echo "replaced disk: foreign, untouched; a blank one is partitioned"

# 2. The first disk of a blank node, torn inside libparted's write after K writes.
for k in 1 2 3 4; do
	rm -f t.img; truncate -s 128M t.img
	rc=0; COMPARTD_FAULT_AT=gpt-write COMPARTD_FAULT_TORN=$k apply t$k t.img || rc=$?
	[ $rc -eq 99 ] || { echo "torn $k: expected 99, got $rc"; cat t$k.err; exit 1; }
	apply u$k t.img || { echo "torn $k: rerun failed"; cat u$k.err; exit 1; }
	v=$(verdict u$k t.img)
	case $v in create|keep) ;; *) echo "torn $k: verdict $v"; cat u$k.err; exit 1;; esac
	sfdisk --json t.img | jq -e '.partitiontable.partitions | length == 5' >/dev/null ||
		{ echo "torn $k: layout not finished"; exit 1; }
	sgdisk -v t.img 2>&1 | grep -q 'No problems found' || { echo "torn $k: GPT not sound"; exit 1; }
	"$compartd" state show --disk t.img --json | jq -e '.journal.node == "a1"' >/dev/null ||
		{ echo "torn $k: no journal"; exit 1; }
	# Torn again, with a file system written in cmpt-guest's place: foreign, untouched.
	rm -f f.img; truncate -s 128M f.img
	COMPARTD_FAULT_AT=gpt-write COMPARTD_FAULT_TORN=$k apply f$k f.img || true
	start=$(( (8 + 2 + 16 + 8 + 1) * 2048 ))
	dd if=/dev/urandom of=f.img bs=512 seek=$start count=2048 conv=notrunc status=none
	sum_f=$(sha256sum <f.img)
	apply g$k f.img || true
	v=$(verdict g$k f.img)
	if [ "$k" -ge 3 ] && [ "$v" = keep ]; then :; # complete primary: kept, nothing written
	elif [ "$v" != foreign ]; then echo "torn $k with data: verdict $v"; cat g$k.err; exit 1; fi
	[ "$(sha256sum <f.img)" = "$sum_f" ] || { echo "torn $k with data: written to"; exit 1; }
	echo "torn after $k writes: finished ($(verdict u$k t.img)); with data: $v, untouched"
done
# 3. Someone else's GPT whose primary (and PMBR) is gone, the backup intact, its partition
# empty: not our torn table, even though our canonical areas read as zeros.
rm -f o.img; truncate -s 128M o.img
sgdisk -n1:1M:+60M -c1:data o.img >/dev/null
dd if=/dev/zero of=o.img bs=512 count=34 conv=notrunc status=none
sum_o=$(sha256sum <o.img)
apply o1 o.img || true
[ "$(verdict o1 o.img)" = foreign ] || { echo "backup-only foreign GPT: $(verdict o1 o.img)"; cat o1.err; exit 1; }
[ "$(sha256sum <o.img)" = "$sum_o" ] || { echo "backup-only foreign GPT: written to"; exit 1; }
echo "a foreign GPT with only its backup left: foreign, untouched"
# Someone else's GPT torn the other way: primary header sound, its entries torn (libblkid
# sees only the PMBR), no backup. Our own look at the entries finds "data": foreign.
rm -f p.img; truncate -s 128M p.img
sgdisk -n1:1M:+60M -c1:data p.img >/dev/null
dd if=/dev/zero of=p.img bs=512 seek=$((128 * 2048 - 33)) count=33 conv=notrunc status=none
printf '\001' | dd of=p.img bs=1 seek=$((1024 + 128 + 100)) conv=notrunc status=none
sum_p=$(sha256sum <p.img)
apply p1 p.img || true
[ "$(verdict p1 p.img)" = foreign ] || { echo "torn foreign GPT: $(verdict p1 p.img)"; cat p1.err; exit 1; }
[ "$(sha256sum <p.img)" = "$sum_p" ] || { echo "torn foreign GPT: written to"; exit 1; }
echo "a foreign GPT with torn entries: foreign, untouched"
echo "disk torn test: ok"
