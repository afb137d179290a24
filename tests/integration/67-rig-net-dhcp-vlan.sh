#!/usr/bin/env bash
# timeout: 180
# PID 1's network from a cluster.conf of its own (image built with CONF_DIR): node a1 takes
# its compartment address by DHCP (`net = <mac> dhcp`, busybox udhcpc against a udhcpd the
# test runs on the rig's bridge, a fixed lease: the handshake binds to that address, so it
# waits until it can bind it), and an address on VLAN 8 of its external NIC
# (`net = <mac> <addr> vlan=8`); node a2 is on VLAN 8 too and the two reach each other
# through the rig's external bridge, which carries the tagged frames.
set -euo pipefail
. "$(dirname "$0")/../../images/rig/lib.sh"
rig_require
/bin/busybox udhcpd --help >/dev/null 2>&1 || [ $? -eq 1 ] || { echo "needs busybox udhcpd"; exit 77; }
rig_init
rig_up

# An image whose a1 uses DHCP and a VLAN.
conf=$RIG_DIR/conf
mkdir -p "$conf/hooks" "$RIG_DIR/b"
cp "$RIG_TOP"/images/rig/cluster.key "$conf/"
cp "$RIG_TOP"/images/rig/hooks/* "$conf/hooks/"
sed -e 's|^net = 52:54:00:77:0a:01 10.77.1.11/24|net = 52:54:00:77:0a:01 dhcp|' \
	-e 's|^net = 52:54:00:77:1a:01 10.77.9.11/24|net = 52:54:00:77:1a:01 10.77.8.11/24 vlan=8|' \
	-e 's|^net = 52:54:00:77:1a:02 10.77.9.12/24|net = 52:54:00:77:1a:02 10.77.8.12/24 vlan=8|' \
	-e 's|^external = 10.77.9.1\([12]\)$|external = 10.77.8.1\1|' \
	"$RIG_TOP/images/rig/cluster.conf" >"$conf/cluster.conf"
grep -q 'vlan=8' "$conf/cluster.conf" && grep -q '0a:01 dhcp' "$conf/cluster.conf" || { echo "FAIL: config edit"; exit 1; }
ln -s "$BUILD/compartd" "$BUILD/compartctl" "$BUILD/kernel" "$RIG_DIR/b/"
CONF_DIR=$conf RIG_KEY=1 "$RIG_TOP/initramfs/build.sh" "$RIG_DIR/b" >/dev/null
RIG_IMAGES=$RIG_DIR/b/images

# The rig side: a DHCP server on compartment a.
cat >"$RIG_DIR/udhcpd.conf" <<CONF
start 10.77.1.200
end 10.77.1.210
interface br-a
lease_file $RIG_DIR/udhcpd.leases
pidfile $RIG_DIR/udhcpd.pid
option subnet 255.255.255.0
option router 10.77.1.1
static_lease 52:54:00:77:0a:01 10.77.1.11
CONF
touch "$RIG_DIR/udhcpd.leases"
rig_bg /bin/busybox udhcpd -f "$RIG_DIR/udhcpd.conf"

rig_node_start a1 --no-disks
rig_node_start a2 --no-disks
rig_wait_for a1 'event=ready node=a1' 120 >/dev/null
rig_wait_for a2 'event=ready node=a2' 120 >/dev/null
out=$(rig_sh a1 'ip -4 -o addr show; ping -c1 -W3 10.77.8.12 >/dev/null && echo VLAN-OK; ping -c1 -W3 10.77.1.1 >/dev/null && echo DHCP-NET-OK' 60)
echo "$out"
grep -Eq 'eth0 +inet 10\.77\.1\.11/24' <<<"$out" || { echo "FAIL: no DHCP address on eth0"; exit 1; }
grep -Eq 'eth1\.8(@eth1)? +inet 10\.77\.8\.11/24' <<<"$out" || { echo "FAIL: no address on eth1.8"; exit 1; }
grep -q VLAN-OK <<<"$out" || { echo "FAIL: VLAN 8 peer unreachable"; exit 1; }
grep -q DHCP-NET-OK <<<"$out" || { echo "FAIL: router unreachable over the DHCP address"; exit 1; }
echo PASS
