#!/usr/bin/env python3
"""Opens N idle connections to a unix console socket and holds them, for
tests/integration/48-console-flood.sh.

    console_flood.py SOCKET N HOLD_S

Connects one after the other (each waits at most 0.3 s for room in the backlog), sends nothing,
and for HOLD_S seconds notes what the agent does with each: answered with an error line
(refused) or closed without one (dropped). Prints "connected C refused R dropped D
first_drop_s T" at the end (T: seconds from start to the first drop, -1 when none).
"""
import signal
import socket
import sys
import time


def on_alarm(signum, frame):
    raise TimeoutError()


def main():
    path, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    socks, connected = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        try:
            s.connect(path)  # blocks while the backlog is full
            connected += 1
        except (OSError, TimeoutError):
            s.close()
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        s.setblocking(False)
        socks.append(s)
    refused = dropped = 0
    first_drop = -1.0
    open_socks = list(socks)
    while time.monotonic() - start < hold and open_socks:
        time.sleep(0.1)
        for s in list(open_socks):
            try:
                data = s.recv(256)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data.startswith(b"error:"):
                refused += 1
            else:
                dropped += 1
                if first_drop < 0:
                    first_drop = time.monotonic() - start
            open_socks.remove(s)
            s.close()
    for s in open_socks:
        s.close()
    print(f"connected {connected} refused {refused} dropped {dropped} first_drop_s {first_drop:.1f}",
          flush=True)


if __name__ == "__main__":
    main()
