#!/usr/bin/env bash
# timeout: 150
# Path identity and login on the host: a portal showing a different LU (other serial and
# scsi_id) or the same LU with another size is refused with both values named, once per
# streak, while the good path serves I/O; a pinned designator must match; CHAP logs in
# with the secret from chap_secret_file and fails with a wrong one.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/integration/iscsi-lib.sh
iscsi_test_init serve.log console.sock

base=13270
pa=127.0.0.1:$base
pb=127.0.0.2:$((base + 2))
truncate -s 32M "$tmp/lu.img" "$tmp/other.img"
truncate -s 48M "$tmp/big.img"
head -c 4M /dev/urandom >"$tmp/data"
write_conf "$tmp/c.conf" $base

# 1. Portal b shows another LU: refused, naming both designators; a serves alone.
# (The first path to pass defines the LU when none is pinned: a comes first here.)
tgt_start a 127.0.0.1 $base $((base + 1)) "$tmp/lu.img" compartd-lu0 CMPT0001
serve_start "$tmp/c.conf"
wait_for "portal=$pa state=up" 15 || fail "a not up"
tgt_start b 127.0.0.2 $((base + 2)) $((base + 3)) "$tmp/other.img" compartd-other CMPT0099
wait_for "portal=$pb state=failed reason=identity-mismatch" 15 || fail "different LU not refused"
line=$(grep "portal=$pb state=failed reason=identity-mismatch" "$tmp/serve.log" | head -1)
echo "$line"
have=$(sed -n 's/.* designator=\([^ ]*\) .*/\1/p' <<<"$line")
want=$(sed -n 's/.* expected=\([^ ]*\).*/\1/p' <<<"$line")
[[ $have == naa.* && $want == naa.* && $have != "$want" ]] || fail "refusal does not name both designators"
grep -q "path $pb refused: designator $have differs from $want" "$tmp/serve.log" || fail "no refusal message"
qemu-img convert -n -f raw -O raw "$tmp/data" "$(nbd_url)" || fail "write with one path"
qemu-img compare -q -f raw -F raw "$tmp/data" "$(nbd_url)" || true # sizes differ: check the head
head -c 4M "$tmp/lu.img" | cmp - "$tmp/data" || fail "data not on the good LU"
cmp -n 4194304 /dev/zero "$tmp/other.img" || fail "the refused LU was written to"
# It is checked again after the backoff (5s) but said once.
sleep 6
[ "$(count_lines "portal=$pb state=failed reason=identity-mismatch")" = 1 ] || fail "refusal repeated"
[ "$(ctl paths --json | jq -r '.storage[0].paths[1].state')" = refused ] || fail "paths does not show refused"

# 2. Same LU id but another size on b: refused naming both sizes.
mark
tgt_kill b
tgt_start b 127.0.0.2 $((base + 2)) $((base + 3)) "$tmp/big.img" compartd-lu0 CMPT0001
wait_for "portal=$pb state=failed reason=identity-mismatch size=50331648/512 expected=33554432/512" 15 \
	|| fail "size mismatch not refused"
serve_stop

# 3. A pinned designator that neither path shows: both refused, nothing exported.
: >"$tmp/serve.log"
MARK=0
tgt_kill b
tgt_start b 127.0.0.2 $((base + 2)) $((base + 3)) "$tmp/lu.img" compartd-lu0 CMPT0001
serve_start "$tmp/c.conf" --set storage.lu0.designator=naa.6000000000000000000000000000dead
wait_for "portal=$pa state=failed reason=identity-mismatch designator=$want expected=naa.6000000000000000000000000000dead" 15 \
	|| fail "pinned designator not enforced on a"
wait_for "portal=$pb state=failed reason=identity-mismatch" 10 || fail "pinned designator not enforced on b"
! grep -q 'serving on' "$tmp/serve.log" || fail "exported a LU that does not match the pin"
serve_stop

# 4. The pinned designator that both show: both up.
: >"$tmp/serve.log"
serve_start "$tmp/c.conf" --set "storage.lu0.designator=$want"
wait_for 'event=storage name=lu0 .*paths=2/2' 15 || fail "pinned matching designator refused"
serve_stop

# 5. CHAP: the target requires an account; the right secret logs in, a wrong one does not.
for n in a b; do
	tgtadm -C "${TGT_CPORT[$n]}" --lld iscsi --mode account --op new --user compartd --password chap-secret-42
	tgtadm -C "${TGT_CPORT[$n]}" --lld iscsi --mode account --op bind --tid 1 --user compartd
done
printf 'chap-secret-42\n' >"$tmp/secret"
: >"$tmp/serve.log"
serve_start "$tmp/c.conf" --set storage.lu0.chap_user=compartd --set "storage.lu0.chap_secret_file=$tmp/secret"
wait_for 'event=storage name=lu0 .*paths=2/2' 15 || fail "CHAP login failed"
qemu-img compare -q -f raw -F raw "$tmp/data" "$(nbd_url)" >/dev/null || true
serve_stop
printf 'wrong-secret-1\n' >"$tmp/secret"
: >"$tmp/serve.log"
serve_start "$tmp/c.conf" --set storage.lu0.chap_user=compartd --set "storage.lu0.chap_secret_file=$tmp/secret"
wait_for "path $pa: login-failed" 10 || fail "a wrong CHAP secret was not refused"
! grep -q 'state=up' "$tmp/serve.log" || fail "logged in with a wrong CHAP secret"
serve_stop
: >"$tmp/serve.log"
serve_start "$tmp/c.conf" --set storage.lu0.chap_user=compartd
sleep 0.5
serve_stop
grep -q 'chap_user but no chap_secret_file' "$tmp/serve.log" || fail "chap_user without secret accepted"
echo PASS
