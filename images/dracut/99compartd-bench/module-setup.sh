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
    inst_multiple head cut grep sed ls pidof dmsetup
    # Debian's multipath-tools keeps its path checkers and prioritizers in /lib/multipath,
    # which 90multipath's inst_libdir_file "multipath/*" does not search (libdirs are the
    # multiarch ones): without them multipathd does not start ("Checker 'tur' not found").
    local f
    for f in "$dracutsysrootdir"/lib/multipath/*.so; do
        inst_simple "${f#"$dracutsysrootdir"}"
    done
    # first: check_finished stops at the first hook not finished yet
    inst_hook initqueue/finished 00 "$moddir/bench-ready.sh"
}
