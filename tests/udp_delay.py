#!/usr/bin/env python3
"""A UDP relay on loopback that delays every datagram, for tests that need a slow link.

    udp_delay.py LISTEN_IP:PORT TARGET_IP:PORT DELAY_FILE [LIFETIME_S]
                 [--capture FILE] [--replay FILE --rate N]

Datagrams arriving on LISTEN go to TARGET from a socket bound to LISTEN's address (any
port); TARGET's answers to that socket go back to whoever last sent to LISTEN, from LISTEN.
Each datagram waits the number of milliseconds in DELAY_FILE (read for every datagram;
missing or empty: 0) in each direction. Only 127.0.0.0/8 addresses are accepted. Ends by
itself after LIFETIME_S seconds (default 120).

As an attacker on the path (tests/integration/45-hs-replay.sh): --capture FILE appends the
first 16 handshake HELLOs seen on LISTEN to FILE (one hex datagram a line); --replay FILE
sends those captured datagrams to TARGET, round robin, N per second (at most 1000), for the
whole lifetime, besides relaying.
"""
import heapq
import ipaddress
import select
import socket
import sys
import time


def addr(text):
    host, port = text.rsplit(":", 1)
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"udp_delay: {host} is not a loopback address")
    return host, int(port)


def delay_s(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) / 1000 if text else 0.0
    except FileNotFoundError:
        return 0.0


def is_hello(data):
    return len(data) >= 52 and data[:4] == b"CMPH" and data[5] == 0


def options(argv):
    opts = {"--capture": None, "--replay": None, "--rate": "0"}
    pos = []
    i = 0
    while i < len(argv):
        if argv[i] in opts and i + 1 < len(argv):
            opts[argv[i]] = argv[i + 1]
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    if len(pos) not in (3, 4):
        sys.exit(__doc__)
    return pos, opts


def main():
    pos, opts = options(sys.argv[1:])
    listen, target, delay_file = addr(pos[0]), addr(pos[1]), pos[2]
    end = time.monotonic() + (float(pos[3]) if len(pos) == 4 else 120)
    captured = 0
    replay = []
    if opts["--replay"]:
        with open(opts["--replay"]) as f:
            replay = [bytes.fromhex(line.strip()) for line in f if line.strip()]
    rate = min(max(int(opts["--rate"]), 1), 1000)
    next_replay, replayed = time.monotonic(), 0
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(listen)
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind((listen[0], 0))
    client = None
    pending = []  # (due, seq, socket, data, destination)
    seq = 0
    print("relaying", pos[0], "->", pos[1], flush=True)
    while time.monotonic() < end:
        now = time.monotonic()
        while replay and next_replay <= now:
            back.sendto(replay[replayed % len(replay)], target)
            replayed += 1
            next_replay += 1 / rate
        while pending and pending[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(pending)
            sock.sendto(data, dest)
        wait = min(pending[0][0] - now if pending else 0.5, end - now, 0.5)
        if replay:
            wait = min(wait, next_replay - now)
        ready, _, _ = select.select([front, back], [], [], max(wait, 0))
        for sock in ready:
            data, src = sock.recvfrom(65536)
            if sock is front:
                client = src
                if opts["--capture"] and captured < 16 and is_hello(data):
                    with open(opts["--capture"], "a") as f:
                        f.write(data.hex() + "\n")
                    captured += 1
                item = (back, data, target)
            elif client is not None:
                item = (front, data, client)
            else:
                continue
            seq += 1
            heapq.heappush(pending, (time.monotonic() + delay_s(delay_file), seq) + item)


    if replay:
        print("replayed", replayed, flush=True)


if __name__ == "__main__":
    main()
