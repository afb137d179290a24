# Helpers for the handshake tests (sourced): four agents of the rig config on loopback.
# Node X gets handshake 127.0.1.N and external 127.0.2.N (a1 .11, a2 .12, b1 .21, b2 .22).
# Profile hooks are scripts in the temp dir that append "<hook> <node> <profile>" to
# $HS_TMP/hooks.log.
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
HS_TMP=$(mktemp -d /tmp/compartd-hs.XXXXXX)
HS_PORT=${HS_PORT:-7460}
declare -A HS_PID=()
declare -A HS_IP=([a1]=11 [a2]=12 [b1]=21 [b2]=22)
declare -A HS_CONF=() # per-node config file instead of $HS_TMP/cluster.conf

hs_cleanup() {
	for n in "${!HS_PID[@]}"; do
		kill "${HS_PID[$n]}" 2>/dev/null
	done
	for n in "${!HS_PID[@]}"; do
		wait "${HS_PID[$n]}" 2>/dev/null
	done
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$HS_TMP"
}
trap hs_cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$HS_TMP"/*.log; do
		[ -f "$f" ] || continue
		echo "---- $f"
		tail -n 30 "$f"
	done
	exit 1
}

# hs_setup [sed expression applied to the config]. The key file (HS_KEY), the rules
# (HS_RULES) and the port (HS_PORT) go into the config: the kernel command line may not
# override them (SPEC §2). Set them before hs_setup.
hs_setup() {
	mkdir -p "$HS_TMP/hooks"
	for h in start-infra start-mgmt; do
		cat >"$HS_TMP/hooks/$h" <<EOS
#!/bin/sh
echo "$h \$COMPARTD_NODE \$COMPARTD_PROFILE" >>"$HS_TMP/hooks.log"
EOS
		chmod +x "$HS_TMP/hooks/$h"
	done
	# quorum portals on a closed loopback port: the rig's 10.77 addresses are not ours here
	sed -e "s|/etc/compartd/hooks/|$HS_TMP/hooks/|" -e "s|10\.77\.1\.100:3261|127.0.0.1:9|; s|10\.77\.2\.100:3261|127.0.0.2:9|" \
		-e "s|^key_file = .*|key_file = ${HS_KEY:-$REPO/images/rig/cluster.key}\nrules = ${HS_RULES:-$REPO/rules/boot.rules}|" \
		-e "s|^port = .*|port = $HS_PORT|" -e "s|^watchdog = .*|watchdog = none|" \
		${1:+-e "$1"} \
		"$REPO/images/rig/cluster.conf" >"$HS_TMP/cluster.conf"
}

# hs_cmdline NODE [extra words…] writes NODE's kernel command line file.
hs_cmdline() {
	local node=$1
	shift
	local words="compartd.node=$node"
	words+=" compartd.timeouts.handshake_window=${HS_WINDOW:-1500ms}"
	words+=" compartd.timeouts.handshake_timeout=200ms compartd.timeouts.hook_timeout=5s"
	for n in a1 a2 b1 b2; do
		words+=" compartd.node.$n.handshake=127.0.1.${HS_IP[$n]}"
		words+=" compartd.node.$n.external=127.0.2.${HS_IP[$n]}"
	done
	echo "$words $*" >"$HS_TMP/$node.cmdline"
}

# hs_start NODE: runs the agent in the background, output in $HS_TMP/NODE.log.
hs_start() {
	local node=$1
	[ -f "$HS_TMP/$node.cmdline" ] || hs_cmdline "$node"
	mkdir -p "$HS_TMP/$node"
	"$BUILD/compartd" run --foreground --config "${HS_CONF[$node]:-$HS_TMP/cluster.conf}" \
		--state-dir "$HS_TMP/$node" --cmdline "$HS_TMP/$node.cmdline" \
		>"$HS_TMP/$node.log" 2>&1 &
	HS_PID[$node]=$!
}

hs_stop() {
	[ -n "${HS_PID[$1]:-}" ] || return 0
	kill "${HS_PID[$1]}" 2>/dev/null
	wait "${HS_PID[$1]}" 2>/dev/null
	unset "HS_PID[$1]"
}

# hs_wait NODE REGEX [SECONDS]: waits until NODE's log has a line matching REGEX.
hs_wait() {
	local node=$1 re=$2 secs=${3:-10} i
	for ((i = 0; i < secs * 10; i++)); do
		grep -Eq -- "$re" "$HS_TMP/$node.log" && return 0
		kill -0 "${HS_PID[$node]}" 2>/dev/null || fail "$node exited while waiting for '$re'"
		sleep 0.1
	done
	fail "$node: no line matching '$re' after ${secs}s"
}

hs_ctl() {
	local node=$1
	shift
	"$BUILD/compartctl" --socket "$HS_TMP/$node/console.sock" "$@"
}
