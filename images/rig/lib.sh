# The QEMU rig, as a bash library: source it, then
#
#   rig_init                    # a rig directory, an id, teardown on EXIT (always)
#   rig_up                      # namespaces, bridges, router, storage (tgtd)
#   rig_node_start a1           # QEMU for node a1 of cluster.conf (its MACs, two disks)
#   rig_wait_for a1 'event=ready' 60
#   rig_sh a1 'cat /proc/mdstat'
#   rig_kill a1                 # power cut
#
# Networks (all inside namespaces the rig creates, nothing leaves them):
#   netns rig-<id>     bridges br-a (10.77.1.0/24, router .1), br-b (10.77.2.0/24, router
#                      .1), br-x (external 10.77.9.0/24, router .1); one tap per node NIC;
#                      forwards between a and b (rig_cut / rig_join); QEMU runs here.
#   netns rig-<id>-st  the storage: 10.77.1.100 on br-a, 10.77.2.100 on br-b; tgtd for
#                      mirror0 (port 3260) and the quorum device (port 3261).
# Each node's serial console is logged to $RIG_DIR/<node>.log and takes input through the
# FIFO $RIG_DIR/<node>.ser.in (rig_send). On one clock, the host's: $RIG_DIR/<node>.ts.log
# holds the console lines stamped as they arrive, $RIG_DIR/<node>.events.log QEMU's QMP
# events (RESET, WATCHDOG, SHUTDOWN…) with QEMU's stamps (rig_stamp, rig_qmp_event).
#
# Settings (environment, before rig_init): BUILD (build dir, default build), RIG_CONF
# (cluster.conf, default images/rig/cluster.conf), RIG_DISK_SIZE (default 1G, the rig's min_disk), RIG_MEM
# (default 512), RIG_KEEP=1 keeps the rig directory, RIG_LOGS (where teardown copies the
# serial logs, default $BUILD/rig-logs/<test name>).

RIG_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RIG_IPXE_ROM=/usr/lib/ipxe/qemu/efi-virtio.rom

rig_log() { echo "rig: $*" >&2; }

# Exit 77 (skip) with the reason when the rig cannot run here; build the image when it is
# missing or older than one of its inputs (the programs, images/rig, initramfs/, rules/).
rig_require() {
	local b=${BUILD:-$RIG_TOP/build}
	[ "$(id -u)" -eq 0 ] || { echo "the rig needs root (network namespaces, taps)"; exit 77; }
	for t in qemu-system-x86_64 tgtd tgtadm ip; do
		command -v "$t" >/dev/null || { echo "the rig needs $t (make deps)"; exit 77; }
	done
	[ -e /dev/net/tun ] || { echo "the rig needs /dev/net/tun"; exit 77; }
	[ -x "$b/compartd" ] || { echo "rig: $b/compartd missing (make all)" >&2; exit 1; }
	local img=$b/images/initramfs.cpio.gz
	# the rig's image carries the rig's test key (RIG_KEY=1): rebuilt when it has none
	if [ ! -f "$img" ] || ! grep -q '^rig-key ' "$b/images/key" 2>/dev/null ||
		[ -n "$(find "$b/compartd" "$b/compartctl" "$RIG_TOP/images/rig" \
		"$RIG_TOP/initramfs" "$RIG_TOP/images/kernel.sh" "$RIG_TOP/rules" -newer "$img" \
		-type f 2>/dev/null | head -1)" ]; then
		RIG_KEY=1 "$RIG_TOP/initramfs/build.sh" "$b" >&2 || { echo "rig: image build failed" >&2; exit 1; }
	fi
}

rig_init() {
	BUILD=${BUILD:-$RIG_TOP/build}
	BUILD=$(cd "$BUILD" && pwd)
	RIG_IMAGES=${RIG_IMAGES:-$BUILD/images}
	RIG_CONF=${RIG_CONF:-$RIG_TOP/images/rig/cluster.conf}
	RIG_DISK_SIZE=${RIG_DISK_SIZE:-1G}
	RIG_MEM=${RIG_MEM:-512}
	RIG_ID=${RIG_ID:-$$}
	RIG_NS=rig-$RIG_ID
	RIG_NS_ST=rig-$RIG_ID-st
	RIG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rig-$RIG_ID.XXXXXX")
	RIG_LOGS=${RIG_LOGS:-$BUILD/rig-logs/$(basename "${0%.sh}")}
	declare -gA RIG_PID=() RIG_DRAIN=() RIG_HOTPLUG_MAC=()
	RIG_TGTD=()
	RIG_BG=()
	RIG_CTL=()
	trap rig_down EXIT
	trap 'exit 130' INT TERM
}

# ---- networks and storage ----

rig_up() {
	ip netns add "$RIG_NS"
	ip netns add "$RIG_NS_ST"
	local n="ip -n $RIG_NS" s="ip -n $RIG_NS_ST"
	$n link set lo up
	$s link set lo up
	local br addr
	for br in a:10.77.1.1/24 b:10.77.2.1/24 x:10.77.9.1/24; do
		addr=${br#*:}
		br=br-${br%%:*}
		$n link add "$br" type bridge forward_delay 0 stp_state 0
		$n addr add "$addr" dev "$br"
		$n link set "$br" up
	done
	ip netns exec "$RIG_NS" sysctl -qw net.ipv4.ip_forward=1
	# The storage: one leg in each compartment, reached from the other one through the router.
	for br in a:10.77.1.100/24:10.77.2.0/24:10.77.1.1 b:10.77.2.100/24:10.77.1.0/24:10.77.2.1; do
		IFS=: read -r c addr other gw <<<"$br"
		$n link add "st-$c" type veth peer name "st-$c" netns "$RIG_NS_ST"
		$n link set "st-$c" master "br-$c" up
		$s addr add "$addr" dev "st-$c"
		$s link set "st-$c" up
		# Each portal answers through its own leg (via the router for the other
		# compartment), so a leg going down takes only its own paths with it.
		local table=101
		[ "$c" = a ] || table=102
		$s route add "${addr%.*}.0/24" dev "st-$c" table "$table"
		$s route add default via "$gw" dev "st-$c" table "$table"
		$s rule add from "${addr%/*}" table "$table"
	done
	[ -n "${RIG_NO_STORAGE:-}" ] || rig_storage_up
}

# rig_storage_up: the rig's two targets (rig_up starts them unless RIG_NO_STORAGE=1: a test
# of storage that comes up after the nodes calls it later).
rig_storage_up() {
	rig_storage_start mirror0 3260 iqn.2026-11.org.compartd.rig:mirror0 256M
	# The quorum target holds one LU per pair and instance kind: LUN 1 for p1's infra
	# election, LUN 2 for its admin election (docs/election.md).
	rig_storage_start quorum 3261 iqn.2026-11.org.compartd.rig:quorum 16M 2
}

# A free tgtd control port (its socket lives in /var/run/tgtd, shared by the whole host).
rig_free_ctl() {
	local p
	for p in $(seq $((600 + RIG_ID % 300)) 999) $(seq 600 999); do
		[ -e "/var/run/tgtd/socket.$p" ] || [ -e "/var/run/tgtd/socket.$p.lock" ] || { echo "$p"; return 0; }
	done
	return 1
}

# rig_storage_start NAME PORT IQN SIZE [LUNS]: tgtd in the storage namespace, listening on both
# portals (10.77.1.100 and 10.77.2.100) on PORT, one LUN 1 backed by $RIG_DIR/NAME.img.
rig_storage_start() {
	local name=$1 port=$2 iqn=$3 size=$4 luns=${5:-1} ctl lun
	ctl=$(rig_free_ctl) || { rig_log "no free tgtd control port"; return 1; }
	truncate -s "$size" "$RIG_DIR/$name.img"
	for ((lun = 2; lun <= luns; lun++)); do truncate -s "$size" "$RIG_DIR/$name-$lun.img"; done
	ip netns exec "$RIG_NS_ST" tgtd -f -C "$ctl" --iscsi "portal=10.77.1.100:$port" \
		>"$RIG_DIR/tgtd-$name.log" 2>&1 &
	RIG_TGTD+=($!)
	disown "$!"
	RIG_CTL+=("$ctl")
	local t="tgtadm -C $ctl --lld iscsi" i
	for i in $(seq 50); do
		$t --op show --mode target >/dev/null 2>&1 && break
		sleep 0.1
	done
	$t --op new --mode portal --param "portal=10.77.2.100:$port"
	$t --op new --mode target --tid 1 -T "$iqn"
	$t --op new --mode logicalunit --tid 1 --lun 1 -b "$RIG_DIR/$name.img"
	for ((lun = 2; lun <= luns; lun++)); do
		$t --op new --mode logicalunit --tid 1 --lun "$lun" -b "$RIG_DIR/$name-$lun.img"
	done
	$t --op bind --mode target --tid 1 -I ALL
	rig_log "storage $name: $iqn on 10.77.1.100:$port and 10.77.2.100:$port (tgtd control port $ctl)"
}

# rig_storage_down: stops every tgtd of the rig (the backing files stay: rig_storage_up
# serves the same data again).
rig_storage_down() {
	local p
	for p in "${RIG_TGTD[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${RIG_TGTD[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	for p in "${RIG_CTL[@]}"; do rm -f "/var/run/tgtd/socket.$p" "/var/run/tgtd/socket.$p.lock"; done
	RIG_TGTD=()
	RIG_CTL=()
	rig_log "storage stopped"
}

# rig_bg CMD [ARGS]: a helper process inside the rig namespace (a DHCP server, a
# traffic source...), stopped at teardown. Output goes to $RIG_DIR/bg-<n>.log.
rig_bg() {
	ip netns exec "$RIG_NS" "$@" >"$RIG_DIR/bg-${#RIG_BG[@]}.log" 2>&1 &
	RIG_BG+=($!)
	disown "$!"
}

# Cutting the compartments: the router stops forwarding between a and b (the storage
# legs and each compartment's own network stay up).
rig_cut() { ip netns exec "$RIG_NS" sysctl -qw net.ipv4.ip_forward=0; rig_log "compartments cut"; }
rig_join() { ip netns exec "$RIG_NS" sysctl -qw net.ipv4.ip_forward=1; rig_log "compartments joined"; }
# rig_storage_link a|b up|down: one storage portal's leg.
rig_storage_link() { ip -n "$RIG_NS_ST" link set "st-$1" "$2"; rig_log "storage leg $1 $2"; }

# ---- nodes ----

# rig_conf_node NODE KEY: the values of KEY in [node NODE], one a line.
rig_conf_node() {
	awk -v want="[node $1]" -v key="$2" '
		/^\[/ { insec = ($0 == want); next }
		insec { line = $0; sub(/#.*/, "", line)
			split(line, kv, "=")
			k = kv[1]; gsub(/[ \t]/, "", k)
			if (k == key) { v = substr(line, index(line, "=") + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); print v } }
	' "$RIG_CONF"
}

rig_nodes() { sed -n 's/^\[node \(.*\)\]/\1/p' "$RIG_CONF"; }

# rig_disk NODE N: the path of the node's Nth disk image (created sparse when missing).
rig_disk() {
	local f=$RIG_DIR/$1-d$2.img
	[ -f "$f" ] || truncate -s "$RIG_DISK_SIZE" "$f"
	echo "$f"
}

# rig_node_start NODE [--disk FILE]... [--no-disks] [--pxe] [--append "ARGS"] [--links-down]
#                [--hotplug-nic | --hotplug-nics] [--reboot]
# --reboot: a guest reset (a watchdog's, a reboot) reboots the VM; without it QEMU exits
# (-no-reboot), so an unexpected reset shows as a dead node.
# Default disks: rig_disk NODE 0 and 1. The first MAC of the node goes on its compartment's
# bridge, the second on the external one. --pxe boots through the iPXE ROM from QEMU's
# built-in TFTP on a NIC of its own (restrict=on: slirp talks to nothing outside), carrying
# the first MAC; the image then comes from boot.ipxe.
rig_node_start() {
	local node=$1
	shift
	local disks=() pxe=0 append="" nodisks=0 linksdown=0 hotplug=0 noreboot=-no-reboot
	while [ $# -gt 0 ]; do
		case $1 in
		--disk) disks+=("$2"); shift ;;
		--no-disks) nodisks=1 ;;
		--links-down) linksdown=1 ;;
		--hotplug-nic) hotplug=1 ;; # the first NIC is not there: rig_nic_plug adds it
		--hotplug-nics) hotplug=2 ;; # no NIC is there: rig_nic_plug NODE N adds the Nth
		--pxe) pxe=1 ;;
		--reboot) noreboot= ;;
		--append) append=$2; shift ;;
		*) rig_log "rig_node_start: unknown option $1"; return 1 ;;
		esac
		shift
	done
	[ ${#disks[@]} -gt 0 ] || [ $nodisks -eq 1 ] || disks=("$(rig_disk "$node" 0)" "$(rig_disk "$node" 1)")
	local comp macs
	comp=$(rig_conf_node "$node" compartment)
	[ -n "$comp" ] || { rig_log "node $node is not in $RIG_CONF"; return 1; }
	mapfile -t macs < <(rig_conf_node "$node" mac)
	local args=(-machine q35 -m "$RIG_MEM" -display none $noreboot -nodefaults
		-device virtio-rng-pci -qmp "unix:$RIG_DIR/$node.qmp,server=on,wait=off"
		-qmp "unix:$RIG_DIR/$node.ev.qmp,server=on,wait=off")
	[ $linksdown -eq 0 ] || args+=(-S) # paused until its links are set down (below)
	local i=0 d serial
	for d in "${disks[@]}"; do
		# The serial follows the image file: a replacement disk has a new one.
		serial=$(basename "$d" .img | tr -c 'A-Za-z0-9_\n-' '_' | cut -c1-20)
		args+=(-drive "file=$d,if=none,id=d$i,format=raw,cache=unsafe"
			-device "virtio-blk-pci,drive=d$i,serial=$serial")
		i=$((i + 1))
	done
	local nic=0 mac br tap
	for mac in "${macs[@]}"; do
		if [ $pxe -eq 1 ] && [ $nic -eq 0 ]; then
			args+=(-netdev "user,id=n0,restrict=on,tftp=$RIG_IMAGES,bootfile=boot.ipxe"
				-device "virtio-net-pci,netdev=n0,mac=$mac,bootindex=1") # ROM: QEMU's default, from ipxe-qemu
			nic=1
			continue
		fi
		[ $nic -eq 0 ] && br=br-$comp || br=br-x
		tap=t-$node-$nic
		ip -n "$RIG_NS" link del "$tap" 2>/dev/null || true
		ip -n "$RIG_NS" tuntap add "$tap" mode tap
		ip -n "$RIG_NS" link set "$tap" master "$br" up
		args+=(-netdev "tap,id=n$nic,ifname=$tap,script=no,downscript=no")
		if [ $hotplug -eq 2 ] || { [ $hotplug -eq 1 ] && [ $nic -eq 0 ]; }; then
			# a free PCIe root port for the NIC plugged later (device_add)
			args+=(-device "pcie-root-port,id=hp$nic,chassis=$((9 + nic)),slot=$((9 + nic))")
			RIG_HOTPLUG_MAC[$node.$nic]=$mac
		else
			args+=(-device "virtio-net-pci,netdev=n$nic,mac=$mac,romfile=")
		fi
		nic=$((nic + 1))
	done
	if [ $pxe -eq 0 ]; then
		args+=(-kernel "$RIG_IMAGES/vmlinuz" -initrd "$RIG_IMAGES/initramfs.cpio.gz"
			-append "console=ttyS0,115200 printk.devkmsg=on panic=-1${append:+ $append}")
	fi
	local ser=$RIG_DIR/$node.ser
	[ -p "$ser.in" ] || mkfifo "$ser.in" "$ser.out"
	touch "$RIG_DIR/$node.log"
	stat -c %s "$RIG_DIR/$node.log" >"$RIG_DIR/$node.mark"
	cp "$RIG_DIR/$node.mark" "$RIG_DIR/$node.start"
	echo "=== rig: $node starts $(date -u +%T)" >>"$RIG_DIR/$node.log"
	# Nobody else reads the console's output FIFO: drain it so QEMU never blocks on it,
	# stamping each line with the host's clock as it arrives.
	if [ -z "${RIG_DRAIN[$node]:-}" ]; then
		exec {RIG_HOLD}<>"$ser.in" # keeps the input FIFO open between writers
	fi
	if [ -z "${RIG_DRAIN[$node]:-}" ] || ! kill -0 "${RIG_DRAIN[$node]}" 2>/dev/null; then
		python3 "$RIG_TOP/images/rig/stamp.py" "$ser.out" "$RIG_DIR/$node.ts.log" &
		RIG_DRAIN[$node]=$!
		disown "$!" # no "Killed" notice at teardown
	fi
	args+=(-chardev "pipe,id=ser0,path=$ser,logfile=$RIG_DIR/$node.log,logappend=on"
		-serial chardev:ser0)
	echo "$(date +%s.%N)" >"$RIG_DIR/$node.t0"
	ip netns exec "$RIG_NS" qemu-system-x86_64 "${args[@]}" >>"$RIG_DIR/$node.qemu.log" 2>&1 &
	RIG_PID[$node]=$!
	# its QMP events, until it exits
	python3 "$RIG_TOP/images/rig/qmp.py" --events "$RIG_DIR/$node.ev.qmp" \
		"$RIG_DIR/$node.events.log" 2>>"$RIG_DIR/$node.qemu.log" &
	RIG_BG+=($!)
	disown "$!"
	if [ $linksdown -eq 1 ]; then
		for ((i = 0; i < nic; i++)); do rig_hmp "$node" "set_link n$i off" || return 1; done
		rig_hmp "$node" cont || return 1
	fi
	rig_log "$node started (pid ${RIG_PID[$node]}, disks: ${disks[*]:-none}${append:+, append: $append}$([ $linksdown -eq 0 ] || echo ", links down")$([ $hotplug -eq 0 ] || echo ", NICs held back for root ports hp0$([ $hotplug -eq 1 ] || echo "…hp$((nic - 1))")")$([ -n "$noreboot" ] || echo ", reboots on reset"))"
}

# rig_start_all [NODE...]: every node of the config (or those named), in parallel.
rig_start_all() {
	local n nodes=("$@")
	[ ${#nodes[@]} -gt 0 ] || mapfile -t nodes < <(rig_nodes)
	for n in "${nodes[@]}"; do rig_node_start "$n" || return 1; done
}

# rig_wait_all REGEX TIMEOUT [NODE...]: rig_wait_for on every started node (or those
# named) within one shared deadline.
rig_wait_all() {
	local re=$1 timeout=$2 end n left
	shift 2
	local nodes=("$@")
	[ ${#nodes[@]} -gt 0 ] || nodes=("${!RIG_PID[@]}")
	end=$(($(date +%s) + timeout))
	for n in "${nodes[@]}"; do
		left=$((end - $(date +%s)))
		[ $left -gt 0 ] || left=1
		rig_wait_for "$n" "$re" "$left" >/dev/null || return 1
	done
}

# rig_kill NODE: power cut (SIGKILL to QEMU); the disks stay as they are.
# rig_hmp NODE 'COMMAND': a QEMU monitor command (`set_link n0 on`, `device_add …`) on the
# node's QMP socket; prints its output.
rig_hmp() { python3 "$RIG_TOP/images/rig/qmp.py" "$RIG_DIR/$1.qmp" "$2" 20; }

# rig_links NODE on|off: the carrier of every NIC of the node, as its guest sees it.
rig_links() {
	local i n
	n=$(rig_conf_node "$1" mac | wc -l)
	for ((i = 0; i < n; i++)); do rig_hmp "$1" "set_link n$i $2" || return 1; done
	rig_log "$1: links $2"
}

# rig_nic_plug NODE [N]: plugs the Nth NIC (default 0) held back by --hotplug-nic(s) into
# its root port hpN.
rig_nic_plug() {
	local n=${2:-0} id=hpnic
	[ "$n" = 0 ] || id=hpnic$n
	rig_hmp "$1" "device_add virtio-net-pci,netdev=n$n,mac=${RIG_HOTPLUG_MAC[$1.$n]},romfile=,bus=hp$n,id=$id" &&
		rig_log "$1: NIC ${RIG_HOTPLUG_MAC[$1.$n]} plugged"
}

rig_kill() {
	local pid=${RIG_PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	RIG_PID[$1]=
	rig_log "$1 powered off"
}

# rig_mark NODE: later rig_wait_for calls only look at console output after this point.
rig_mark() { stat -c %s "$RIG_DIR/$1.log" >"$RIG_DIR/$1.mark"; }

# rig_output NODE: the console output since the mark.
rig_output() { tail -c +$(($(cat "$RIG_DIR/$1.mark") + 1)) "$RIG_DIR/$1.log" | tr -d '\r'; }

# rig_whole_lines: its input without a last line that has no newline yet.
rig_whole_lines() { perl -ne 'print if /\n\z/'; }

# rig_last_partial: the last line of its input when it has no newline yet, else nothing.
rig_last_partial() { perl -ne 'print if eof && !/\n\z/'; }

# rig_first NODE REGEX: the first console line since the mark that matches; fails when none.
# (Every reader here consumes its whole input: with pipefail, a grep -m1 or head that stops
# early makes the writer die of SIGPIPE and the pipeline fail even though it matched.)
# The console writes a line in pieces, and a line still arriving would match a prefix of
# itself: a last line without its newline counts only when it stays as it is for 0.3 s (a
# prompt). Callers poll.
rig_first() {
	local line size
	size=$(stat -c %s "$RIG_DIR/$1.log")
	line=$(rig_output "$1" | rig_whole_lines | { grep -E -- "$2" || true; } | sed -n 1p)
	[ -n "$line" ] && { echo "$line"; return 0; }
	line=$(rig_output "$1" | rig_last_partial | { grep -E -- "$2" || true; })
	[ -n "$line" ] || return 1
	sleep 0.3
	[ "$(stat -c %s "$RIG_DIR/$1.log")" = "$size" ] || return 1
	echo "$line"
}

# rig_wait_for NODE REGEX TIMEOUT: waits until the console shows a line matching REGEX
# (grep -E) after the mark; prints that line. On timeout (seconds) or when QEMU died,
# shows the end of the console and fails.
rig_wait_for() {
	local node=$1 re=$2 timeout=${3:-60} end line
	end=$(($(date +%s) + timeout))
	while [ "$(date +%s)" -lt "$end" ]; do
		line=$(rig_first "$node" "$re") && { echo "$line"; return 0; }
		if [ -n "${RIG_PID[$node]:-}" ] && ! kill -0 "${RIG_PID[$node]}" 2>/dev/null; then
			# its last words may have reached the log after the grep above
			line=$(rig_first "$node" "$re") && { echo "$line"; return 0; }
			rig_log "$node: QEMU exited while waiting for /$re/"
			break
		fi
		sleep 0.2
	done
	rig_log "$node: no /$re/ within ${timeout}s; console ends with:"
	rig_output "$node" | tail -n 25 | sed 's/^/    /' >&2
	return 1
}

# rig_send NODE LINE: types LINE and Enter on the node's serial console.
rig_send() { printf '%s\n' "$2" >"$RIG_DIR/$1.ser.in"; }

# rig_sh NODE 'COMMANDS' [TIMEOUT]: runs shell commands in a rescue shell on the serial
# console (the console's 'sh' command) and prints their output. The agent keeps running.
rig_sh() {
	local node=$1 cmd=$2 timeout=${3:-30} tag=$RANDOM$RANDOM
	# Type the commands only once the shell answers a marker. A line typed while the
	# console is still answering something is dropped (so "sh" itself may be lost), and
	# one typed before the shell runs goes to the console: then the console answers the
	# marker with "unknown command", and "sh" is typed again.
	local i j
	rig_mark "$node"
	rig_send "$node" "sh"
	sleep 0.5
	for ((i = 0; i < timeout; i++)); do
		rig_send "$node" "echo @@S$tag''"
		for ((j = 0; j < 10; j++)); do
			rig_first "$node" "^@@S$tag\$" >/dev/null && break 2
			if rig_first "$node" "unknown command 'echo'" >/dev/null; then
				rig_mark "$node" # the console had it: "sh" was lost
				rig_send "$node" "sh"
				sleep 0.5
				continue 2
			fi
			sleep 0.2
		done
	done
	rig_mark "$node"
	rig_send "$node" "echo @@B$tag''; { $cmd ; } 2>&1; echo @@E$tag''; exit"
	rig_wait_for "$node" "^@@E$tag\$" "$timeout" >/dev/null || return 1
	rig_output "$node" | sed -n "/^@@B$tag\$/,/^@@E$tag\$/p" | sed '1d;$d' |
		{ grep -Ev '^\[ *[0-9]+\.[0-9]+\] ' || true; }
}

# rig_nbd_workload NODE: starts, in the guest, a checksummed workload on /dev/nbd0: each
# round writes 1 MiB of fresh random data at a rotating offset (the first 200 MiB) with
# O_DIRECT and fsync, reads it back with O_DIRECT and compares. It logs WRITE-ERROR,
# READ-ERROR and MISMATCH lines to /tmp/wl.log, the round count to /tmp/rounds, and stops
# (printing DONE N) once /tmp/stop exists.
rig_nbd_workload() {
	rig_sh "$1" "printf '%s\n' \
 'i=0; while [ ! -e /tmp/stop ]; do' \
 '  o=\$((i % 200)); dd if=/dev/urandom of=/tmp/w bs=1M count=1 2>/dev/null' \
 '  dd if=/tmp/w of=/dev/nbd0 bs=1M seek=\$o oflag=direct conv=fsync 2>/tmp/werr || { echo WRITE-ERROR \$i; cat /tmp/werr; }' \
 '  dd if=/dev/nbd0 of=/tmp/r bs=1M skip=\$o count=1 iflag=direct 2>/tmp/rerr || { echo READ-ERROR \$i; cat /tmp/rerr; }' \
 '  cmp -s /tmp/w /tmp/r || echo MISMATCH \$i' \
 '  i=\$((i + 1)); echo \$i >/tmp/rounds' \
 'done; echo DONE \$i' >/tmp/wl.sh; rm -f /tmp/stop; setsid sh /tmp/wl.sh </dev/null >/tmp/wl.log 2>&1 &
 sleep 1; cat /tmp/rounds" 30 >/dev/null
}

# rig_events NODE: the node's event= lines since it last started (whatever the mark),
# without the kernel prefix.
rig_events() {
	tail -c +$(($(cat "$RIG_DIR/$1.start") + 1)) "$RIG_DIR/$1.log" | tr -d '\r' |
		rig_whole_lines | { grep -o 'event=.*' || true; }
}

# rig_stamp NODE REGEX [AFTER]: the host time (seconds since the epoch, µs) at which the
# first console line of NODE matching REGEX (grep -E) arrived after time AFTER (default:
# ever); prints "TIME LINE". Fails when there is none.
rig_stamp() {
	local out
	out=$(awk -v after="${3:-0}" '$1 + 0 > after + 0' "$RIG_DIR/$1.ts.log" 2>/dev/null |
		{ grep -E -- "^[0-9.]+ .*($2)" || true; } | sed -n 1p)
	[ -n "$out" ] && echo "$out"
}

# rig_qmp_event NODE NAME [AFTER]: the first QMP event NAME (RESET, WATCHDOG…) of NODE
# after host time AFTER; prints "TIME NAME DATA". Fails when there is none.
rig_qmp_event() {
	local out
	out=$(awk -v after="${3:-0}" -v name="$2" '$1 + 0 > after + 0 && $2 == name' \
		"$RIG_DIR/$1.events.log" 2>/dev/null | sed -n 1p)
	[ -n "$out" ] && echo "$out"
}

# Seconds since QEMU of NODE was started.
rig_elapsed() { echo "$(date +%s.%N) $(cat "$RIG_DIR/$1.t0")" | awk '{ printf "%.2f", $1 - $2 }'; }

# ---- disks ----

# rig_md_detail NODE NAME: `mdadm --detail /dev/md/NAME` inside the guest (rescue shell).
rig_md_detail() { rig_sh "$1" "mdadm --detail /dev/md/$2; cat /proc/mdstat" 40; }

# rig_md_wait NODE NAME REGEX TIMEOUT: polls mdadm --detail in the guest until it matches
# REGEX (grep -E; e.g. 'State : clean *$' ), prints the last detail.
rig_md_wait() {
	local node=$1 name=$2 re=$3 timeout=${4:-90} end out
	end=$(($(date +%s) + timeout))
	while :; do
		out=$(rig_md_detail "$node" "$name") || true
		if grep -Eq -- "$re" <<<"$out"; then
			echo "$out"
			return 0
		fi
		[ "$(date +%s)" -lt "$end" ] || break
		sleep 3
	done
	rig_log "$node: /dev/md/$name never matched /$re/; last:"
	echo "$out" | sed 's/^/    /' >&2
	return 1
}

# rig_gpt_names FILE: the GPT partition names of a disk image, seen from the host.
rig_gpt_names() { sfdisk -d "$1" 2>/dev/null | sed -n 's/.*name="\([^"]*\)".*/\1/p' | tr '\n' ' '; }

# rig_part_sha FILE NAME: sha256 of the named GPT partition of a disk image (host side).
rig_part_sha() {
	local line start size
	line=$(sfdisk -d "$1" | grep "name=\"$2\"") || return 1
	start=$(sed -n 's/.*start= *\([0-9]*\).*/\1/p' <<<"$line")
	size=$(sed -n 's/.*size= *\([0-9]*\).*/\1/p' <<<"$line")
	dd if="$1" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) \
		status=none | sha256sum | cut -c1-64
}

# rig_part_fill FILE NAME BYTES: writes BYTES of random data at the start of a named
# partition of a disk image (host side, QEMU stopped).
rig_part_fill() {
	local start
	start=$(sfdisk -d "$1" | grep "name=\"$2\"" | sed -n 's/.*start= *\([0-9]*\).*/\1/p')
	[ -n "$start" ] || return 1
	head -c "$3" /dev/urandom | dd of="$1" bs=512 seek="$start" conv=notrunc status=none
}

# ---- teardown (runs on EXIT, also after a failure) ----

rig_down() {
	local rc=$? n p
	trap - EXIT
	set +e # every step runs, whatever failed before
	[ -n "${RIG_DIR:-}" ] || return $rc
	local pids=()
	for p in "${RIG_PID[@]}" "${RIG_TGTD[@]}" "${RIG_DRAIN[@]}" "${RIG_BG[@]}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null && pids+=("$p")
	done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for p in "${RIG_CTL[@]}"; do rm -f "/var/run/tgtd/socket.$p" "/var/run/tgtd/socket.$p.lock"; done
	ip netns del "$RIG_NS" 2>/dev/null
	ip netns del "$RIG_NS_ST" 2>/dev/null
	mkdir -p "$RIG_LOGS" 2>/dev/null && cp "$RIG_DIR"/*.log "$RIG_LOGS/" 2>/dev/null
	if [ "${RIG_KEEP:-0}" = 1 ]; then
		rig_log "kept $RIG_DIR"
	else
		rm -rf "$RIG_DIR"
	fi
	return $rc
}
