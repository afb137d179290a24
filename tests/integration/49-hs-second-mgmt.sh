#!/usr/bin/env bash
# timeout: 90
# Rule 2 after boot (SPEC §6): two nodes that each started management while
# they could not reach each other reconcile when they meet. a1 (priority 200) and b1
# (150) reach each other only through relays that are not running at first; rules that
# give a lone capable node management make both start it. When the relays start, b1
# (lower rank) stops its management with the `stop` hooks of [profile infra-and-mgmt] and
# goes on as infra-only; both log event=decision … reason=second-mgmt within a few
# heartbeat intervals; a1 keeps management.
HS_PORT=7469
. "$(dirname "$0")/lib-hs.sh"
DELAY=$HS_TMP/delay
printf 'rule solo when contacted == 0 and mgmt_capable => infra-and-mgmt\nrule mgmt-elsewhere when mgmt_running => infra-only\nrule rest when true => infra-only\n' \
	>"$HS_TMP/solo.rules"
export HS_RULES=$HS_TMP/solo.rules
hs_setup "/^\[profile infra-and-mgmt\]/a stop = $HS_TMP/hooks/stop-mgmt"
cat >"$HS_TMP/hooks/stop-mgmt" <<EOS
#!/bin/sh
echo "stop-mgmt \$COMPARTD_NODE \$COMPARTD_PROFILE" >>"$HS_TMP/hooks.log"
EOS
chmod +x "$HS_TMP/hooks/stop-mgmt"
grep -q "^stop = $HS_TMP/hooks/stop-mgmt" "$HS_TMP/cluster.conf" || fail "no stop hook in the config"
# Own addresses behind the relays; the external ones unused (no external = lines).
hs_cmdline a1 compartd.node.a1.handshake=127.0.1.111
hs_cmdline b1 compartd.node.b1.handshake=127.0.1.121
for n in a1 b1; do sed -i 's/ compartd\.node\.[a-z0-9]*\.external=[0-9.]*//g' "$HS_TMP/$n.cmdline"; done
sed -i '/^external = /d' "$HS_TMP/cluster.conf"
hs_start a1
hs_start b1
hs_wait a1 'event=decision rule=solo profile=infra-and-mgmt' 15
hs_wait b1 'event=decision rule=solo profile=infra-and-mgmt' 15
hs_wait a1 'event=hook name=.*start-mgmt status=ok' 10
hs_wait b1 'event=hook name=.*start-mgmt status=ok' 10
echo "both run management while apart"

start=$(date +%s%N)
python3 "$REPO/tests/udp_delay.py" 127.0.1.11:$HS_PORT 127.0.1.111:$HS_PORT "$DELAY" 60 >"$HS_TMP/r1.out" 2>&1 &
HS_PID[r1]=$!
python3 "$REPO/tests/udp_delay.py" 127.0.1.21:$HS_PORT 127.0.1.121:$HS_PORT "$DELAY" 60 >"$HS_TMP/r2.out" 2>&1 &
HS_PID[r2]=$!
hs_wait a1 'event=peer node=b1 state=contacted' 10
hs_wait b1 'event=decision rule=second-mgmt profile=infra-only reason=second-mgmt peer=a1 keeps=a1' 5
hs_wait a1 'event=decision rule=second-mgmt profile=infra-and-mgmt reason=second-mgmt peer=b1 keeps=a1' 5
took=$((($(date +%s%N) - start) / 1000000))
hs_wait b1 'event=hook name=.*stop-mgmt status=ok' 5
grep -q 'stop-mgmt b1 infra-and-mgmt' "$HS_TMP/hooks.log" || fail "b1's stop hook did not run"
grep -q 'stop-mgmt a1' "$HS_TMP/hooks.log" && fail "a1 (higher rank) stopped its management"
sleep 1
hs_ctl b1 decision --json | jq -e '.profile == "infra-only" and .mgmt_running == false' >/dev/null ||
	fail "b1 still runs management: $(hs_ctl b1 decision)"
hs_ctl a1 decision --json | jq -e '.profile == "infra-and-mgmt" and .mgmt_running == true' >/dev/null ||
	fail "a1 lost management: $(hs_ctl a1 decision)"
hs_ctl a1 peers --json | jq -e '.peers[] | select(.node == "b1") | .mgmt_running == false' >/dev/null ||
	fail "a1 still sees b1 running management"
[ "$(grep -c 'reason=second-mgmt' "$HS_TMP/a1.log")" -eq 1 ] || fail "a1 logged the conflict more than once"
echo "reconciled ${took} ms after the nodes could meet: b1 stopped its management, a1 keeps it"
