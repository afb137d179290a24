#!/usr/bin/env bash
# timeout: 60
# The daemon's plumbing on the host: config refusal, identity errors, the console socket
# through compartctl (text, JSON, errors), SIGHUP reload keeping the last good config,
# and a clean stop on SIGTERM.
set -euo pipefail
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$tmp/agent.log" ] && tail -n 20 "$tmp/agent.log"; exit 1; }

# The rig's quorum portals live in the rig's namespaces: here the election would reach
# for them through the host's default route, so point them at a closed loopback port.
# The key file and the rules in the config: the command line may not override them.
sed -e "s|10\.77\.1\.100:3261|127.0.0.1:9|; s|10\.77\.2\.100:3261|127.0.0.2:9|" \
	-e "s|^key_file = .*|key_file = $tmp/cluster.key\nrules = $top/rules/boot.rules|" \
	images/rig/cluster.conf >"$tmp/cluster.conf"
cp images/rig/cluster.key "$tmp/cluster.key"
# Host mode: handshake on loopback, our own key file.
cat > "$tmp/cmdline" <<EOC
compartd.node.a1.handshake=127.0.1.11:17460 compartd.node.a2.handshake=127.0.1.12:17460
compartd.node.b1.handshake=127.0.1.21:17460 compartd.node.b2.handshake=127.0.1.22:17460
compartd.node.a1.external=127.0.1.11:17461 compartd.node.a2.external=127.0.1.12:17461
compartd.node.b1.external=127.0.1.21:17461 compartd.node.b2.external=127.0.1.22:17461
EOC
ctl() { "$BUILD/compartctl" --socket "$tmp/s/console.sock" "$@"; }

# 1. A broken config is refused with file:line: key: and exit 1.
printf '[cluster]\nname = x\nkey_file = /k\ncolour = red\n' > "$tmp/bad.conf"
if "$BUILD/compartd" run --foreground --config "$tmp/bad.conf" --node a1 --state-dir "$tmp/s" 2>"$tmp/err"; then
	fail "agent accepted a broken config"
fi
grep -q "bad.conf:4: colour: unknown key in \[cluster\]" "$tmp/err" || { cat "$tmp/err"; fail "no file:line error"; }

# check-config prints the normalized form (golden) or the errors with exit 1.
"$BUILD/compartd" check-config images/rig/cluster.conf | diff -u tests/golden/rig-cluster.conf.normalized - \
	|| fail "check-config output differs from the golden file"
if "$BUILD/compartd" check-config "$tmp/bad.conf" 2>"$tmp/err" >/dev/null; then fail "check-config accepted"; fi
grep -q "configuration refused" "$tmp/err" || fail "check-config message"

# 2. An unknown node name is a clear error.
if "$BUILD/compartd" run --foreground --config "$tmp/cluster.conf" --cmdline "$tmp/cmdline" --node zz --state-dir "$tmp/s" 2>"$tmp/err"; then
	fail "agent accepted an unknown node"
fi
grep -q "node 'zz' is not in" "$tmp/err" || { cat "$tmp/err"; fail "no identity error"; }

# 3. The agent runs; compartctl talks to it.
"$BUILD/compartd" run --foreground --config "$tmp/cluster.conf" --cmdline "$tmp/cmdline" --node a1 \
	--state-dir "$tmp/s" 2>"$tmp/agent.log" &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/s/console.sock" ] && break; sleep 0.1; done
[ -S "$tmp/s/console.sock" ] || { cat "$tmp/agent.log"; fail "no console socket"; }
[ "$(stat -c %a "$tmp/s/console.sock")" = 600 ] || fail "console socket is not 0600"

grep -q "^node        a1$" <<<"$(ctl status)" || fail "status: no node line"
grep -q "compartment a (mz, pair p1)" <<<"$(ctl status)" || fail "status: no compartment line"
[ "$(ctl status --json | jq -r .node)" = a1 ] || fail "status --json"
[ "$(ctl status --json | jq -r .config_version)" = 1 ] || fail "status --json version"
grep -q "^  status" <<<"$(ctl help)" || fail "help lists status"
ctl help --json | jq -e '.commands | map(.name) | index("log")' >/dev/null || fail "help --json"
grep -q "this is node a1" <<<"$(ctl log 100)" || fail "log shows the identity line"
[ "$(ctl log 3 --json | jq '.lines | length')" = 3 ] || fail "log --json length"

# Errors: exit 1, a sentence naming the problem.
set +e
out=$(ctl frobnicate 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "unknown command exit $rc"
grep -q "unknown command 'frobnicate'" <<<"$out" || fail "unknown command message: $out"
set +e
out=$(ctl log zero --json); rc=$?
set -e
[ $rc -eq 1 ] && echo "$out" | jq -e .error >/dev/null || fail "bad argument in JSON: $out"
set +e
"$BUILD/compartctl" --socket "$tmp/nope.sock" status 2>/dev/null; rc=$?
set -e
[ $rc -eq 2 ] || fail "unreachable agent exit $rc"

# 4. SIGHUP with a broken file: refused, the running config stays.
cp "$tmp/cluster.conf" "$tmp/good.conf"
echo "bogus line" >> "$tmp/cluster.conf"
kill -HUP "$pid"
for _ in $(seq 50); do grep -q "reload refused" "$tmp/agent.log" && break; sleep 0.1; done
grep -q "config reload refused, keeping version 1" "$tmp/agent.log" || fail "broken reload not refused"
grep -q "cluster.conf:[0-9]*: expected 'key = value'" "$tmp/agent.log" || fail "reload error has no line"
[ "$(ctl status --json | jq -r .config_version)" = 1 ] || fail "version changed after refused reload"

# ... and with a good new version: taken.
sed 's/^version = 1$/version = 2/' "$tmp/good.conf" > "$tmp/cluster.conf"
kill -HUP "$pid"
for _ in $(seq 50); do [ "$(ctl status --json | jq -r .config_version)" = 2 ] && break; sleep 0.1; done
[ "$(ctl status --json | jq -r .config_version)" = 2 ] || fail "good reload not taken"

# ... and one that changes the set of nodes: refused until a restart.
{ sed 's/^version = 1$/version = 3/' "$tmp/good.conf"; printf '[node b3]\ncompartment = b\nhandshake = 127.0.1.23:17460\n'; } > "$tmp/cluster.conf"
kill -HUP "$pid"
for _ in $(seq 50); do grep -q "set of nodes changed" "$tmp/agent.log" && break; sleep 0.1; done
grep -q "the set of nodes changed; restart the agent to apply it" "$tmp/agent.log" || fail "topology change not refused"
ctl status >/dev/null || fail "agent gone after a refused topology change"

# 5. SIGTERM: clean exit 0, socket removed (after the handshake window has passed).
for _ in $(seq 100); do grep -q "event=boot stage=ready node=a1" "$tmp/agent.log" && break; sleep 0.1; done
kill -TERM "$pid"
wait "$pid"; rc=$?; pid=
[ $rc -eq 0 ] || fail "exit status $rc on SIGTERM"
[ ! -e "$tmp/s/console.sock" ] || fail "socket left behind"
grep -q "event=boot stage=ready node=a1" "$tmp/agent.log" || fail "no ready event"
echo "ok"
