#!/bin/sh
# initqueue/finished hook (run in a subshell on every pass of dracut's main loop; 0 =
# finished): the storage is attached (a multipath map with at least one active path) and
# an md RAID1 is active. Says so once on the console:
#   bench: dracut-ready md=md127 map=mpatha paths=2 uptime=12.34
# 20 s after the first iSCSI disk appeared without that, it shows once what there is
# (bench: not-ready …) and keeps waiting.
[ -e /tmp/bench.ready ] && exit 0
not_ready() {
    if [ -e /sys/block/sda ] && [ ! -e /tmp/bench.told ]; then
        now=$(cut -d. -f1 /proc/uptime)
        [ -e /tmp/bench.sda ] || echo "$now" >/tmp/bench.sda
        if [ $((now - $(cat /tmp/bench.sda))) -ge 20 ]; then
            : >/tmp/bench.told
            {
                echo "bench: not-ready after 20s: $1; multipathd pid: $(pidof multipathd)"
                ls /sys/block /dev/mapper
                cat /proc/mdstat
                multipath -ll
                dmsetup ls
            } 2>&1 | sed 's/^/bench: not-ready: /' >/dev/console
        fi
    fi
    exit 1
}
md=$(sed -n 's/^\(md[0-9a-z_]*\) : active .*raid1 .*/\1/p' /proc/mdstat 2>/dev/null | head -n 1)
[ -n "$md" ] || not_ready "no active md RAID1"
map=$(multipath -l -v1 2>/dev/null | head -n 1)
[ -n "$map" ] && [ -e "/dev/mapper/$map" ] || not_ready "no multipath map"
paths=$(multipath -l "$map" 2>/dev/null | grep -Ec ' sd[a-z]+ [0-9]+:[0-9]+ +active')
[ "$paths" -ge 1 ] || not_ready "no active path in $map"
: >/tmp/bench.ready
echo "bench: dracut-ready md=$md map=$map paths=$paths uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/console
exit 0
