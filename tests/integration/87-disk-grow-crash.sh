#!/usr/bin/env bash
# timeout: 600
# A disk that grew, through the CLI (docs/disks.md "A disk that grew"): a.img and b.img laid
# out at 128 MiB with data in a.img's cmpt-guest (its first and last MiB), then a.img grown
# to 192 MiB. `compartd disks apply` is stopped at every point of the growth
# (COMPARTD_FAULT_AT: intent, grow, grow-copy, gpt-write torn after K = 0..4 of libparted's
# five writes, verify, done). After each stop libblkid (partx) reads a table, the old or
# the new one, with cmpt-guest at its start, and the data is there; the next run leaves
# cmpt-guest ending at 191 MiB, `sgdisk -v` clean, the data intact, one done grow record
# in the journal and none pending; b.img (not grown) keeps its table byte for byte.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/tests/integration/disk-lib.sh"
disk_test_init disk-grow sfdisk sgdisk partx jq sha256sum
disk_conf cluster.conf grow 'boot = 8MiB' 'state = 2MiB' 'infra = 16MiB' 'admin = 8MiB' 'min_disk = 64MiB' 'min_guest = 16MiB'

apply() { # [env...]: exit status of compartd disks apply
	env "$@" "$compartd" disks apply --config cluster.conf --node a1 \
		--disk "$work/a.img" --disk "$work/b.img" >out 2>err
}
guest() { # image: "START SECTORS" of cmpt-guest as libblkid reads it
	partx -g -o NAME,START,SECTORS "$1" | awk '$1 == "cmpt-guest" { print $2, $3 }'
}
data_sum() { # the canary: cmpt-guest's first and last MiB of the old extent
	dd if=a.img bs=1M skip="$g_mib" count=1 status=none | sha256sum | cut -c1-64
	dd if=a.img bs=1M skip="$((g_mib + g_len_mib - 1))" count=1 status=none | sha256sum | cut -c1-64
}
gpt_sum() { # image: its first and last 17 KiB (PMBR, headers, entries)
	{ head -c 17408 "$1"; tail -c 17408 "$1"; } | sha256sum | cut -c1-64
}

faults=("intent" "grow" "grow-copy" "gpt-write 0" "gpt-write 1" "gpt-write 2" "gpt-write 3"
	"gpt-write 4" "verify" "done")
checked=0
for f in "${faults[@]}"; do
	rm -f a.img b.img
	truncate -s 128M a.img b.img
	apply || { echo "layout: apply failed"; cat err; exit 1; }
	read -r g_start g_len <<<"$(guest a.img)"
	g_mib=$((g_start / 2048)) g_len_mib=$((g_len / 2048))
	head -c 1M /dev/urandom | dd of=a.img bs=1M seek="$g_mib" conv=notrunc status=none
	head -c 1M /dev/urandom | dd of=a.img bs=1M seek="$((g_mib + g_len_mib - 1))" conv=notrunc status=none
	canary=$(data_sum) b_sum=$(gpt_sum b.img)
	truncate -s 192M a.img
	read -r at torn <<<"$f"
	rc=0
	if [ -n "${torn:-}" ]; then
		apply COMPARTD_FAULT_AT="$at" COMPARTD_FAULT_TORN="$torn" || rc=$?
	else
		apply COMPARTD_FAULT_AT="$at" || rc=$?
	fi
	[ $rc -eq 99 ] || { echo "fault $f: expected exit 99, got $rc"; cat err; exit 1; }
	read -r s l <<<"$(guest a.img)"
	[ "${s:-}" = "$g_start" ] || { echo "fault $f: no readable table with cmpt-guest at $g_start"; partx -g a.img || true; exit 1; }
	case $l in
	"$g_len") state=old ;;
	$(((191 << 11) - g_start))) state=new ;;
	*) echo "fault $f: cmpt-guest has $l sectors"; exit 1 ;;
	esac
	[ "$(data_sum)" = "$canary" ] || { echo "fault $f: cmpt-guest data changed"; exit 1; }
	apply || { echo "fault $f: rerun failed"; cat err; exit 1; }
	grep -q "event=disk dev=$work/a.img .*verdict=keep" err || { echo "fault $f: a.img not kept"; cat err; exit 1; }
	read -r s l <<<"$(guest a.img)"
	[ "$s $l" = "$g_start $(((191 << 11) - g_start))" ] || { echo "fault $f: not grown after the rerun ($s $l)"; exit 1; }
	sgdisk -v a.img | grep -q 'No problems found' || { sgdisk -v a.img; echo "fault $f: sgdisk -v"; exit 1; }
	[ "$(data_sum)" = "$canary" ] || { echo "fault $f: cmpt-guest data changed by the rerun"; exit 1; }
	[ "$(gpt_sum b.img)" = "$b_sum" ] || { echo "fault $f: b.img's table changed"; exit 1; }
	"$compartd" state show --disk a.img --disk b.img --json 2>/dev/null | jq -e --arg t "grow:$work/a.img" '
		[.journal.steps[] | select(.target == $t)] as $g
		| ($g | map(select(.state == "done")) | length) == 1
		and ($g | map(select(.state == "intent")) | length) == 0' >/dev/null ||
		{ echo "fault $f: journal grow records wrong"; "$compartd" state show --disk a.img --disk b.img; exit 1; }
	checked=$((checked + 1))
	echo "fault $f: $state table after the stop, grown and clean after the rerun"
done
echo "disk grow crash test: $checked stop points converged"
