#!/usr/bin/env bash
# timeout: 60
# A node alone (nobody else answers): rule 1, wait-operator. Its start-infra hook runs,
# management does not, until `continue` on the console releases it; a second `continue`
# is refused. A failing hook is reported as failed with its exit status.
. "$(dirname "$0")/lib-hs.sh"
hs_setup
hs_start a2
hs_wait a2 'event=decision rule=alone profile=wait-operator contacted=0/3' 10
hs_wait a2 'event=hook name=.*start-infra status=ok exit=0' 5
hs_wait a2 'event=ready node=a2 profile=wait-operator' 5
sleep 1
grep -q '^start-mgmt' "$HS_TMP/hooks.log" && fail "management started before continue"
hs_ctl a2 decision --json | grep -q '"waiting_for_operator":true' || fail "decision does not say waiting"
hs_ctl a2 continue || fail "continue refused"
hs_wait a2 'event=decision rule=operator-continue profile=infra-and-mgmt contacted=0/3' 5
hs_wait a2 'event=hook name=.*start-mgmt status=ok exit=0' 5
if hs_ctl a2 continue; then fail "a second continue was accepted"; fi
echo "alone: wait-operator, released by continue"

# A failing hook: exit status 3 is reported, and the profile is failed.
hs_stop a2
printf '#!/bin/sh\nexit 3\n' >"$HS_TMP/hooks/start-infra"
hs_start b1
hs_wait b1 'event=hook name=.*start-infra status=failed exit=3' 10
hs_ctl b1 decision --json | grep -q '"hooks":"failed"' || fail "decision does not show the failed hooks"
# A hook that hangs is killed at hook_timeout.
hs_stop b1
printf '#!/bin/sh\nexec sleep 60\n' >"$HS_TMP/hooks/start-infra"
hs_cmdline b2 compartd.timeouts.hook_timeout=500ms
hs_start b2
hs_wait b2 'event=hook name=.*start-infra status=timeout' 10
echo "failed and hanging hooks reported"
