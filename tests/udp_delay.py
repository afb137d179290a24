#!/usr/bin/env python3
"""A UDP relay on loopback that delays every datagram, for tests that need a slow link.

    udp_delay.py LISTEN_IP:PORT TARGET_IP:PORT DELAY_FILE [LIFETIME_S]

Datagrams arriving on LISTEN go to TARGET from a socket bound to LISTEN's address (any
port); TARGET's answers to that socket go back to whoever last sent to LISTEN, from LISTEN.
Each datagram waits the number of milliseconds in DELAY_FILE (read for every datagram;
missing or empty: 0) in each direction. Only 127.0.0.0/8 addresses are accepted. Ends by
itself after LIFETIME_S seconds (default 120).
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


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    listen, target, delay_file = addr(sys.argv[1]), addr(sys.argv[2]), sys.argv[3]
    end = time.monotonic() + (float(sys.argv[4]) if len(sys.argv) == 5 else 120)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(listen)
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind((listen[0], 0))
    client = None
    pending = []  # (due, seq, socket, data, destination)
    seq = 0
    print("relaying", sys.argv[1], "->", sys.argv[2], flush=True)
    while time.monotonic() < end:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(pending)
            sock.sendto(data, dest)
        wait = min(pending[0][0] - now if pending else 0.5, end - now, 0.5)
        ready, _, _ = select.select([front, back], [], [], max(wait, 0))
        for sock in ready:
            data, src = sock.recvfrom(65536)
            if sock is front:
                client = src
                item = (back, data, target)
            elif client is not None:
                item = (front, data, client)
            else:
                continue
            seq += 1
            heapq.heappush(pending, (time.monotonic() + delay_s(delay_file), seq) + item)


if __name__ == "__main__":
    main()
