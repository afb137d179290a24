#!/usr/bin/env bash
# timeout: 60
# compartd config export/import on the command line (SPEC §2a, seed 004): the rig's pair
# exported (golden bundle) and imported beside itself as p2 (check-config accepts the file
# and its normalized form is golden); a refused import leaves the file byte for byte as it
# was and says what and where; a truncated or changed bundle is refused; an import into a
# missing file creates a cluster of the one pair.
set -euo pipefail
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd_="$BUILD/compartd"

"$cd_" config export --config images/rig/cluster.conf --pair p1 --rules rules/boot.rules \
	>"$tmp/p1.bundle" || fail "export"
cmp -s "$tmp/p1.bundle" tests/golden/bundle/rig-p1.bundle || {
	diff -u tests/golden/bundle/rig-p1.bundle "$tmp/p1.bundle" | head -20
	fail "the export differs from the golden bundle"
}

maps=(--map-node a1=c1 --map-node a2=c2 --map-node b1=d1 --map-node b2=d2
	--map-compartment a=c --map-compartment b=d --map-storage mirror0=mirror1
	--map-net 10.77.1.0/24=10.88.1.0/24 --map-net 10.77.2.0/24=10.88.2.0/24
	--map-net 10.77.9.0/24=10.88.9.0/24)
for n in 0a 1a 0b 1b; do
	for i in 01 02; do maps+=(--map-mac "52:54:00:77:$n:$i=52:54:00:88:$n:$i"); done
done

# A refusal: b2 mapped onto its own name. The file is untouched and no temporary is left behind.
cp images/rig/cluster.conf "$tmp/cluster.conf"
if "$cd_" config import "$tmp/p1.bundle" --pair p2 --into "$tmp/cluster.conf" \
	--rules rules/boot.rules "${maps[@]/b2=d2/b2=b2}" 2>"$tmp/err"; then
	fail "an import with a duplicate name was accepted"
fi
grep -q "node b2: duplicate name, $tmp/cluster.conf has one" "$tmp/err" || { cat "$tmp/err"; fail "no message"; }
grep -q "import refused; $tmp/cluster.conf unchanged" "$tmp/err" || fail "no verdict line"
cmp -s images/rig/cluster.conf "$tmp/cluster.conf" || fail "a refused import changed the file"
[ "$(ls "$tmp")" = "$(printf 'cluster.conf\nerr\np1.bundle')" ] || fail "left over: $(ls "$tmp")"

# The round trip.
"$cd_" config import "$tmp/p1.bundle" --pair p2 --into "$tmp/cluster.conf" \
	--rules rules/boot.rules "${maps[@]}" >"$tmp/out" || fail "import: $(cat "$tmp/out")"
"$cd_" check-config "$tmp/cluster.conf" >"$tmp/norm" || fail "check-config refuses the import"
diff -u tests/golden/bundle/rig-p1-as-p2.conf.normalized "$tmp/norm" || fail "not the golden file"
# Importing the same again: every name is now taken.
if "$cd_" config import "$tmp/p1.bundle" --pair p2 --into "$tmp/cluster.conf" \
	--rules rules/boot.rules "${maps[@]}" 2>"$tmp/err"; then fail "a second import was accepted"; fi
grep -q "pair p2: duplicate name" "$tmp/err" || fail "second import: $(cat "$tmp/err")"

# Truncated and changed bundles.
head -c 1000 "$tmp/p1.bundle" >"$tmp/trunc.bundle"
"$cd_" config import "$tmp/trunc.bundle" --pair p3 --into "$tmp/new.conf" "${maps[@]}" \
	2>"$tmp/err" && fail "a truncated bundle was accepted"
grep -q "truncated bundle" "$tmp/err" || fail "truncated: $(cat "$tmp/err")"
sed 's/priority = 200/priority = 900/' "$tmp/p1.bundle" >"$tmp/forged.bundle"
"$cd_" config import "$tmp/forged.bundle" --pair p3 --into "$tmp/new.conf" "${maps[@]}" \
	2>"$tmp/err" && fail "a changed bundle was accepted"
grep -q "hash does not match" "$tmp/err" || fail "forged: $(cat "$tmp/err")"
[ ! -e "$tmp/new.conf" ] || fail "a refused import created the file"

# Into a missing file: a cluster of the one pair, accepted by check-config.
"$cd_" config import "$tmp/p1.bundle" --pair site2 --into "$tmp/new.conf" "${maps[@]}" >/dev/null \
	|| fail "import into a new file"
"$cd_" check-config "$tmp/new.conf" | grep -q '^\[pair site2\]' || fail "new file"
echo "PASS 37-config-bundle"
