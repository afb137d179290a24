#!/usr/bin/env bash
# timeout: 60
# The rules verbs (`compartd rules check|eval`), and a running agent re-reading its rules
# file: a broken file is refused with its line named and the previous rules are kept; a
# good new file takes effect at the next evaluation.
. "$(dirname "$0")/lib-hs.sh"
cd_ok() { "$BUILD/compartd" rules "$@"; }

out=$(cd_ok check "$REPO/rules/boot.rules") || fail "boot.rules refused: $out"
echo "$out" | grep -q '5 rules, ok' || fail "check: $out"
[ "$(cd_ok eval "$REPO/rules/boot.rules" peers=3 contacted=0)" = "rule=alone profile=wait-operator" ] ||
	fail "eval c=0"
[ "$(cd_ok eval "$REPO/rules/boot.rules" peers=3 contacted=2 mgmt_capable=true highest_priority=true)" = \
	"rule=majority profile=infra-and-mgmt" ] || fail "eval majority"
[ "$(cd_ok eval "$REPO/rules/boot.rules" peers=4 contacted=2 mgmt_capable=true highest_priority=true)" = \
	"rule=default profile=infra-only" ] || fail "eval exactly 50%"
[ "$(cd_ok eval "$REPO/rules/boot.rules" peers=3 contacted=1 mgmt_capable=yes highest_priority=yes uncontacted_alive=no)" = \
	"rule=minority-rest-dead profile=infra-and-mgmt" ] || fail "eval rule 4"
[ "$(cd_ok eval "$REPO/rules/boot.rules" peers=3 contacted=1 mgmt_running=1)" = \
	"rule=mgmt-elsewhere profile=infra-only" ] || fail "eval rule 2"
printf 'rule a when true => infra-only\nrule b when contacted > x => infra-only\n' >"$HS_TMP/bad.rules"
err=$(cd_ok check "$HS_TMP/bad.rules" 2>&1) && fail "a bad file passed the check"
echo "$err" | grep -q "bad.rules:2: unknown fact 'x'" || fail "check message: $err"
cd_ok eval "$REPO/rules/boot.rules" peers=3 contacted=1 contacted_pct=33 2>/dev/null && fail "contacted_pct accepted"
cd_ok eval "$REPO/rules/boot.rules" peers=3 contacted=4 2>/dev/null && fail "contacted > peers accepted"
echo "verbs ok"

cp "$REPO/rules/boot.rules" "$HS_TMP/boot.rules"
export HS_RULES=$HS_TMP/boot.rules # before hs_setup: the rules path goes into the config
hs_setup
hs_start b1
hs_start b2
hs_wait b1 'event=decision rule=default profile=infra-only contacted=1/3' 10
hs_wait b1 'event=ready' 5
printf '# broken\nrule a when nosuchfact => infra-only\n' >"$HS_TMP/boot.rules"
hs_wait b1 'boot.rules:2: unknown fact .nosuchfact.' 10
hs_wait b1 'keeping the rules loaded before' 5
grep -q 'profile=infra-and-mgmt' "$HS_TMP/b1.log" && fail "profile changed under broken rules"
printf 'rule take when contacted == 1 and mgmt_capable => infra-and-mgmt\nrule rest when true => infra-only\n' \
	>"$HS_TMP/boot.rules"
hs_wait b1 'event=decision rule=take profile=infra-and-mgmt contacted=1/3' 10
hs_wait b1 'event=hook name=.*start-mgmt status=ok' 5
sleep 2
grep -q 'rule=take' "$HS_TMP/b2.log" && fail "b2 (not capable) took the new rule"
echo "reload: broken rules refused with the line, previous kept; new rules applied"
