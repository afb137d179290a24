#!/usr/bin/env python3
"""One QEMU monitor command over a QMP unix socket (the rig's lib.sh: rig_hmp), or the
node's QMP events (rig_node_start runs one per node on a second socket).

usage: qmp.py SOCKET 'HMP COMMAND' [TIMEOUT_S]
       qmp.py --events SOCKET OUT
The first prints the command's output; exit 1 on an error answer or a timeout. Bounded in
time. The second appends every event as "<seconds.µs, QEMU's stamp: the host clock> <NAME>
<data as JSON>" to OUT until QEMU closes the socket (it exits)."""
import json
import socket
import sys
import time


def connect(path, deadline):
    s = None
    while s is None:  # the socket appears once QEMU is up
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(max(0.1, deadline - time.monotonic()))
            s.connect(path)
        except OSError:
            s.close()
            s = None
            if time.monotonic() > deadline:
                print(f"qmp: cannot connect to {path}", file=sys.stderr)
                return None
            time.sleep(0.1)
    return s


def events(path, out):
    s = connect(path, time.monotonic() + 30)
    if s is None:
        return 1
    s.settimeout(None)  # QEMU closes it when it exits
    f = s.makefile("rw")
    f.readline()  # the greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    with open(out, "a", buffering=1) as o:
        for line in f:
            msg = json.loads(line)
            if "event" not in msg:
                continue
            ts = msg.get("timestamp", {})
            o.write("%d.%06d %s %s\n" % (ts.get("seconds", 0), ts.get("microseconds", 0),
                                         msg["event"], json.dumps(msg.get("data", {}))))
    return 0


def main():
    if sys.argv[1] == "--events":
        return events(sys.argv[2], sys.argv[3])
    path, cmd = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    deadline = time.monotonic() + timeout
    s = connect(path, deadline)
    if s is None:
        return 1
    f = s.makefile("rw")

    def answer():
        while time.monotonic() < deadline:
            line = f.readline()
            if not line:
                break
            msg = json.loads(line)
            if "return" in msg or "error" in msg:
                return msg
        raise TimeoutError("no answer")

    f.readline()  # the greeting
    f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
    f.flush()
    answer()
    f.write(json.dumps({"execute": "human-monitor-command",
                        "arguments": {"command-line": cmd}}) + "\n")
    f.flush()
    msg = answer()
    if "error" in msg:
        print(f"qmp: {cmd}: {msg['error'].get('desc')}", file=sys.stderr)
        return 1
    out = msg["return"]
    if out:
        print(out, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
