#!/usr/bin/env python3
"""A TCP relay that delays every byte, for tests that need a slow storage path.

    tcp_delay.py LISTEN_IP:PORT TARGET_IP:PORT DELAY_FILE [LIFETIME_S]

Each connection accepted on LISTEN gets its own connection to TARGET; bytes in either
direction are passed on, in order, the number of milliseconds in DELAY_FILE later (read
for every chunk; missing or empty: 0). A side that closes is closed on the other side once
what it sent has been passed on. Bytes already accepted are delivered even when the other
end of their connection has gone quiet: commands in flight on a path complete after the
initiator lost its link, as on a real storage network. Only loopback and 10.0.0.0/8
addresses (network namespaces a test made) are accepted. Ends by itself after LIFETIME_S
seconds (default 300).
"""
import asyncio
import ipaddress
import sys
import time


def addr(text):
    host, port = text.rsplit(":", 1)
    ip = ipaddress.ip_address(host)
    if not (ip.is_loopback or ip in ipaddress.ip_network("10.0.0.0/8")):
        sys.exit(f"tcp_delay: {host} is neither loopback nor in 10.0.0.0/8")
    return host, int(port)


def delay_s(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) / 1000 if text else 0.0
    except (OSError, ValueError):
        return 0.0


async def pump(reader, writer, delay_file):
    """Reads chunks, stamps them, and writes each when its time has come, in order."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if chunk is None:
                break
            writer.write(chunk)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            await queue.put((time.monotonic() + delay_s(delay_file), chunk or None))
            if not chunk:
                break
    except (ConnectionError, OSError):
        await queue.put((time.monotonic(), None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def handle(c_reader, c_writer, target, delay_file):
    try:
        t_reader, t_writer = await asyncio.open_connection(*target)
    except OSError:
        c_writer.close()
        return
    await asyncio.gather(
        pump(c_reader, t_writer, delay_file),
        pump(t_reader, c_writer, delay_file),
        return_exceptions=True,
    )


async def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    listen, target = addr(sys.argv[1]), addr(sys.argv[2])
    delay_file = sys.argv[3]
    lifetime = float(sys.argv[4]) if len(sys.argv) > 4 else 300.0
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, target, delay_file), *listen, reuse_address=True
    )
    async with server:
        await asyncio.sleep(lifetime)


if __name__ == "__main__":
    asyncio.run(main())
