# Shared by the iSCSI integration tests and bench/mpath.sh (sourced, not run).
# tgtd instances on loopback with their own portal and control port, one LU each,
# serving a backing file with a given scsi_id/serial; the agent's `storage serve`; and
# qemu-io against its NBD socket. Callers set $tmp and call iscsi_cleanup from their
# EXIT trap.

BUILD=${BUILD:-build}
ISCSI_TARGET=iqn.2026-11.org.compartd.test:lu0
declare -A TGT_PID=() TGT_CPORT=()
SERVE_PID=

# tgt_start NAME IP PORT CONTROL_PORT BACKING_FILE SCSI_ID SERIAL
tgt_start() {
	local name=$1 ip=$2 port=$3 cport=$4 file=$5 id=$6 sn=$7
	tgtd -f --iscsi "portal=$ip:$port" -C "$cport" >"$tmp/tgtd-$name.log" 2>&1 &
	TGT_PID[$name]=$!
	TGT_CPORT[$name]=$cport
	local ok=
	for _ in $(seq 50); do
		if tgtadm -C "$cport" --lld iscsi --mode target --op show >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.1
	done
	[ -n "$ok" ] || { cat "$tmp/tgtd-$name.log"; echo "tgtd $name did not start"; return 1; }
	tgtadm -C "$cport" --lld iscsi --mode target --op new --tid 1 -T "$ISCSI_TARGET"
	tgtadm -C "$cport" --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 -b "$file"
	tgtadm -C "$cport" --lld iscsi --mode logicalunit --op update --tid 1 --lun 1 \
		--params "scsi_id=$id,scsi_sn=$sn"
	tgtadm -C "$cport" --lld iscsi --mode target --op bind --tid 1 -I ALL
}

tgt_kill() {
	local name=$1
	local pid=${TGT_PID[$name]:-}
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	TGT_PID[$name]=
}

# Two tgtd on 127.0.0.1 and 127.0.0.2 serving one backing file as one LU.
tgt_pair() {
	local base=$1 file=$2
	tgt_start a 127.0.0.1 "$base" $((base + 1)) "$file" compartd-lu0 CMPT0001
	tgt_start b 127.0.0.2 $((base + 2)) $((base + 3)) "$file" compartd-lu0 CMPT0001
}

# write_conf FILE BASE_PORT [extra storage lines...]: portals on BASE_PORT and BASE_PORT+2,
# the node's handshake on BASE_PORT+5000 (one port per test: tests may run side by side).
write_conf() {
	local f=$1 base=$2
	shift 2
	head -c 32 /dev/urandom >"$tmp/cluster.key"
	chmod 600 "$tmp/cluster.key" # the agent refuses a key others may read
	cat >"$f" <<EOC
[cluster]
name = t
key_file = $tmp/cluster.key

[pair p1]

[compartment a]
zone = mz
pair = p1

[compartment b]
zone = dmz
pair = p1

[node n1]
compartment = a
handshake = 127.0.0.1:$((base + 5000))

[storage lu0]
target = $ISCSI_TARGET
lun = 1
portal = a 127.0.0.1:$base
portal = b 127.0.0.2:$((base + 2))
EOC
	for l in "$@"; do echo "$l" >>"$f"; done
}

# serve_start CONF [serve args...]: starts the agent's storage serve, logs to $tmp/serve.log.
serve_start() {
	local conf=$1
	shift
	"$BUILD/compartd" storage serve --config "$conf" --node n1 --listen "$tmp/nbd.sock" \
		--console "$tmp/console.sock" "$@" >>"$tmp/serve.log" 2>&1 &
	SERVE_PID=$!
}

serve_stop() {
	[ -n "$SERVE_PID" ] || return 0
	kill "$SERVE_PID" 2>/dev/null || true
	wait "$SERVE_PID" 2>/dev/null || true
	SERVE_PID=
}

# mark: later wait_for calls only look at log lines written after this point.
MARK=0
mark() {
	MARK=$(wc -l <"$tmp/serve.log" 2>/dev/null || echo 0)
}

# wait_for PATTERN SECONDS: waits until $tmp/serve.log has a line matching PATTERN
# (after the last mark).
wait_for() {
	local pat=$1 secs=$2
	for _ in $(seq $((secs * 10))); do
		tail -n +$((MARK + 1)) "$tmp/serve.log" 2>/dev/null | grep -qE "$pat" && return 0
		sleep 0.1
	done
	echo "timed out after ${secs}s waiting for /$pat/ in the agent's log:"
	tail -n 30 "$tmp/serve.log"
	return 1
}

count_lines() {
	grep -cE "$1" "$tmp/serve.log" 2>/dev/null || true
}

nbd_url() {
	echo "nbd+unix:///?socket=$tmp/nbd.sock"
}

qio() {
	qemu-io -f raw "$(nbd_url)" "$@"
}

iscsi_cleanup() {
	serve_stop
	for n in "${!TGT_PID[@]}"; do tgt_kill "$n"; done
}

# iscsi_test_init LOG SOCKET: the common start of an iSCSI integration test, run from the
# tree's top: an absolute BUILD, a temp dir in $tmp (kept with KEEP=1), the EXIT trap that
# stops the agent ($apid), a workload ($wl), the agent's storage serve and every tgtd, and
# fail() / ctl() / agent_wait() reading $tmp/LOG and the console at $tmp/SOCKET.
iscsi_test_init() {
	ISCSI_LOG=$1
	ISCSI_SOCK=$2
	top=$PWD
	BUILD=$(cd "$BUILD" && pwd)
	tmp=$(mktemp -d)
	apid=
	wl=
	trap iscsi_test_cleanup EXIT
}

iscsi_test_cleanup() {
	[ -n "$apid" ] && kill "$apid" 2>/dev/null && wait "$apid" 2>/dev/null
	[ -n "$wl" ] && kill "$wl" 2>/dev/null
	iscsi_cleanup
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}

fail() {
	echo "FAIL: $*"
	tail -n 40 "$tmp/$ISCSI_LOG" 2>/dev/null
	exit 1
}

ctl() { "$BUILD/compartctl" --socket "$tmp/$ISCSI_SOCK" "$@"; }

# agent_wait REGEX [SECONDS]: waits for a line of the log (default 15 s).
agent_wait() {
	local secs=${2:-15}
	for _ in $(seq $((secs * 10))); do grep -qE "$1" "$tmp/$ISCSI_LOG" && return 0; sleep 0.1; done
	return 1
}
