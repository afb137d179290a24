#!/usr/bin/env bash
# timeout: 600
# Crash anywhere, converge (SPEC §1, §3): `compartd disks apply` is killed at every step
# (COMPARTD_FAULT_AT) on two disks, one blank and one foreign with an approved wipe, then
# run again. Each time the final layout equals a clean run's, no disk is partitioned twice
# (its GPT disk GUID never changes once written; the journal has at most one done record
# per disk), and a canary written into cmpt-guest after the first completed run survives
# every later crash and rerun.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/integration/disk-lib.sh"
disk_test_init disk-crash sfdisk jq mkfs.ext4 sha256sum
disk_conf cluster.conf crash 'boot = 8MiB' 'state = 2MiB' 'infra = 16MiB' 'admin = 8MiB' 'min_disk = 64MiB' 'min_guest = 16MiB'

fresh() { # dir: a.img blank, b.img with an ext4 file system
	rm -rf "$1"; mkdir -p "$1"
	truncate -s 128M "$1/a.img" "$1/b.img"
	mkfs.ext4 -q -F "$1/b.img" >/dev/null 2>&1
}
apply() { # dir [env...]: exit status of compartd disks apply
	local d=$1; shift
	env "$@" "$compartd" disks apply --config cluster.conf --node a1 \
		--disk "$work/$d/a.img" --disk "$work/$d/b.img" --approve-wipe "$work/$d/b.img" \
		>"$d/out" 2>"$d/err"
}
layout() { # image: the table without what differs by design (GUIDs, paths)
	sfdisk --json "$1" | jq -c '.partitiontable | del(.id, .device)
		| .partitions |= map(del(.uuid, .node))'
}
ptuuid() {
	local v
	v=$({ sfdisk --json "$1" 2>/dev/null || true; } | jq -r '.partitiontable.id')
	echo "${v:-none}"
}
max_done() { # dir: most done partition records for one disk in the journal
	"$compartd" state show --disk "$1/a.img" --disk "$1/b.img" --json |
		jq '[.journal.steps[] | select(.kind == "partition" and .state == "done")]
		    | group_by(.target) | map(length) | max // 0'
}
guest_sum() { # image: sha256 of the first MiB of cmpt-guest
	local start
	start=$(sfdisk --json "$1" | jq '.partitiontable.partitions[] | select(.name == "cmpt-guest") | .start')
	dd if="$1" bs=512 skip="$start" count=2048 status=none | sha256sum | cut -d' ' -f1
}

# The clean run everything is compared with.
fresh ref
apply ref
ref_a=$(layout ref/a.img) ref_b=$(layout ref/b.img)
[ "$(jq -r '.partitions | length' <<<"$ref_a")" = 5 ] || { echo "clean run: bad layout"; exit 1; }
[ "$(max_done ref)" = 1 ] || { echo "clean run: journal records wrong"; exit 1; }

faults=(plan intent@1 partition@1 types@1 state-init@1 verify@1
	intent@2 wipe partition@2 types@2 state-init@2 verify@2 done)
checked=0
for f in "${faults[@]}"; do
	fresh run
	rc=0; apply run COMPARTD_FAULT_AT="$f" || rc=$?
	[ $rc -eq 99 ] || { echo "fault $f: expected exit 99 (step reached), got $rc"; cat run/err; exit 1; }
	before_a=$(ptuuid run/a.img) before_b=$(ptuuid run/b.img)
	apply run || { echo "fault $f: rerun failed"; cat run/err; exit 1; }
	[ "$(layout run/a.img)" = "$ref_a" ] || { echo "fault $f: a.img differs from the clean run"; exit 1; }
	[ "$(layout run/b.img)" = "$ref_b" ] || { echo "fault $f: b.img differs from the clean run"; exit 1; }
	for d in a b; do
		was=$(eval echo "\$before_$d")
		now=$(ptuuid "run/$d.img")
		# A GPT the crashed run wrote is ours: the rerun must keep it, not write another.
		if [ "$was" != none ] && [ "$was" != "$now" ]; then
			echo "fault $f: $d.img partitioned twice ($was → $now)"; exit 1
		fi
	done
	[ "$(max_done run)" -le 1 ] || { echo "fault $f: a disk has two partition records"; exit 1; }
	"$compartd" state show --disk run/a.img --disk run/b.img --json | jq -e --arg b "$work/run/b.img" \
		'.journal.wipes_consumed | map(.id) | index($b) != null' >/dev/null ||
		{ echo "fault $f: the wipe authorization is not recorded as consumed"; exit 1; }
	checked=$((checked + 1))
	echo "fault $f: converged (a $(ptuuid run/a.img), b $(ptuuid run/b.img))"
done

# After a completed run: a canary in cmpt-guest, then crash at every step the run on a
# laid-out disk reaches, rerun, and the canary, the layout and the disk GUIDs stay.
fresh live
apply live
for d in a b; do
	start=$(sfdisk --json "live/$d.img" | jq '.partitiontable.partitions[] | select(.name == "cmpt-guest") | .start')
	head -c 1M /dev/urandom | dd of="live/$d.img" bs=512 seek="$start" conv=notrunc status=none
done
canary_a=$(guest_sum live/a.img) canary_b=$(guest_sum live/b.img)
id_a=$(ptuuid live/a.img) id_b=$(ptuuid live/b.img)
sum_before=$(sha256sum live/a.img live/b.img | cut -d' ' -f1)
for f in plan verify@1 verify@2 done; do
	rc=0; apply live COMPARTD_FAULT_AT="$f" || rc=$?
	[ $rc -eq 99 ] || { echo "canary, fault $f: expected exit 99, got $rc"; exit 1; }
	apply live || { echo "canary, fault $f: rerun failed"; cat live/err; exit 1; }
	[ "$(guest_sum live/a.img)" = "$canary_a" ] && [ "$(guest_sum live/b.img)" = "$canary_b" ] ||
		{ echo "canary, fault $f: cmpt-guest changed"; exit 1; }
	[ "$(ptuuid live/a.img)" = "$id_a" ] && [ "$(ptuuid live/b.img)" = "$id_b" ] ||
		{ echo "canary, fault $f: a disk was partitioned again"; exit 1; }
	[ "$(layout live/a.img)" = "$ref_a" ] && [ "$(layout live/b.img)" = "$ref_b" ] ||
		{ echo "canary, fault $f: layout changed"; exit 1; }
	grep -q 'verdict=keep' live/err || { echo "canary, fault $f: not kept"; exit 1; }
	checked=$((checked + 1))
	echo "canary, fault $f: intact"
done
# Runs on a laid-out disk write nothing at all (the approval was consumed, b is ours now).
[ "$(sha256sum live/a.img live/b.img | cut -d' ' -f1)" = "$sum_before" ] ||
	{ echo "a run on laid-out disks changed bytes"; exit 1; }
# The CLI's JSON and event lines for the same disks, plus a foreign one nobody approved.
truncate -s 128M live/c.img
mkfs.ext4 -q -F live/c.img >/dev/null 2>&1
sum_c=$(sha256sum <live/c.img)
"$compartd" disks plan --config cluster.conf --node a1 --disk "$work/live/a.img" \
	--disk "$work/live/c.img" --json >plan.json 2>plan.err
jq -e '.disks[0].verdict == "keep" and .disks[1].verdict == "foreign"
	and (.disks[1].found | test("ext4")) and (.disks[0].partitions | length) == 5' plan.json >/dev/null ||
	{ echo "plan --json wrong:"; cat plan.json; exit 1; }
grep -q "event=disk dev=$work/live/c.img serial=\"\" verdict=foreign found=ext4" plan.err ||
	{ echo "no event=disk line for the foreign disk"; cat plan.err; exit 1; }
"$compartd" disks apply --config cluster.conf --node a1 --disk "$work/live/c.img" >/dev/null 2>&1
[ "$(sha256sum <live/c.img)" = "$sum_c" ] || { echo "apply changed a foreign disk"; exit 1; }
echo "disk crash test: $checked crash points converged"
