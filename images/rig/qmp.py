#!/usr/bin/env python3
"""One QEMU monitor command over a QMP unix socket (the rig's lib.sh: rig_hmp).

usage: qmp.py SOCKET 'HMP COMMAND' [TIMEOUT_S]
Prints the command's output; exit 1 on an error answer or a timeout. Bounded in time."""
import json
import socket
import sys
import time


def main():
    path, cmd = sys.argv[1], sys.argv[2]
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    deadline = time.monotonic() + timeout
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
                return 1
            time.sleep(0.1)
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
