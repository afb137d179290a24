#!/usr/bin/env python3
"""Drains a node's serial output FIFO and stamps each line with the host's clock as it
arrives (the rig's lib.sh starts one per node: one clock for every node and for the QMP
events, which QEMU stamps with the host's clock too).

usage: stamp.py FIFO OUT
Appends "<seconds since the epoch, µs> <line>" to OUT for each complete line (carriage
returns dropped); ends when the last writer closes the FIFO (QEMU exited)."""
import os
import sys
import time


def main():
    fifo, out = sys.argv[1], sys.argv[2]
    fd = os.open(fifo, os.O_RDONLY)
    buf = b""
    with open(out, "ab", buffering=0) as f:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            now = b"%.6f " % time.time()
            buf += chunk.replace(b"\r", b"")
            *lines, buf = buf.split(b"\n")
            if lines:
                f.write(b"".join(now + line + b"\n" for line in lines))
        if buf:
            f.write(b"%.6f " % time.time() + buf + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
