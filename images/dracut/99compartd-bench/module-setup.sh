#!/bin/bash
# dracut module of bench/boot.sh: a hook at initqueue/finished that tells on the serial
# console when the storage is attached (a dm-multipath map) and the md RAID1 assembled.

check() {
    return 255 # only when asked for (-m / --add)
}

depends() {
    echo multipath mdraid
    return 0
}

install() {
    inst_multiple head cut grep sed
    # first: check_finished stops at the first hook not finished yet
    inst_hook initqueue/finished 00 "$moddir/bench-ready.sh"
}
