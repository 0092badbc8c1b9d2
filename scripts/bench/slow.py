#!/usr/bin/env python3
"""Slow-reader helper for scripts/bench.sh (section g, RSS per slow-reading relayed connection).

  slow.py serve PORT
      Listens on 127.0.0.1:PORT: a fast source. Each connection it accepts is written to as fast
      as the socket takes it (64 KiB writes of constant bytes) until the peer closes it. Prints
      "listening" once the socket is bound.

  slow.py open PORT COUNT PIDS [--warmup N] [--rate BYTES] [--settle S] [--time-limit S]
      Through 127.0.0.1:PORT (an ss-tunnel pointed at a "serve" instance): opens N warm-up
      connections, lets each receive a few hundred KiB, closes them (so one-time allocations and
      the pools' first blocks are resident), reads VmRSS of every PID in PIDS (comma-separated),
      then opens COUNT connections that each read --rate bytes (default 1024) once per second.
      The proxies' queues towards the slow readers fill; once the summed VmRSS of PIDS has not
      grown by more than 1 % over 3 s (at least --settle seconds after the last connection is
      up, default 5), or after 60 s, it reads VmRSS again and prints one JSON object:
      {"ok": n, "failed": n, "before": {pid: kB}, "after": {pid: kB}, "settled_s": s,
       "kernel_pages": {"before": n, "after": n}} (kernel_pages: /proc/net/sockstat's TCP "mem",
      in pages, the whole host's). Then closes everything. Bounded by --time-limit seconds.
"""

import asyncio
import json
import socket
import sys
import time

from proc_util import raise_nofile, vm_rss_kb

CHUNK = b"\x5a" * 65536


def tcp_mem_pages():
    with open("/proc/net/sockstat", encoding="ascii") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1])
    return 0


async def serve(port):
    async def handle(_reader, writer):
        try:
            while True:
                writer.write(CHUNK)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


async def connect(port, sem):
    loop = asyncio.get_running_loop()
    async with sem:
        s = socket.socket()
        s.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), timeout=10)
            # The first bytes prove the whole path (ss-tunnel -> ss-server -> source) is up.
            first = await asyncio.wait_for(loop.sock_recv(s, 1), timeout=10)
        except (OSError, asyncio.TimeoutError):
            s.close()
            return None
        if not first:
            s.close()
            return None
        return s


async def open_batch(port, count):
    sem = asyncio.Semaphore(64)  # connects in flight: well below every listen backlog
    socks = await asyncio.gather(*(connect(port, sem) for _ in range(count)))
    return [s for s in socks if s is not None]


def read_some(socks, n):
    for s in socks:
        try:
            s.recv(n)
        except BlockingIOError:
            pass
        except OSError:
            pass


async def warm(port, count):
    socks = await open_batch(port, count)
    for _ in range(20):  # each gets a few hundred KiB through
        for s in socks:
            try:
                s.recv(65536)
            except OSError:
                pass
        await asyncio.sleep(0.02)
    for s in socks:
        s.close()


async def open_and_measure(port, count, pids, warmup, rate, settle):
    if warmup:
        await warm(port, warmup)
        await asyncio.sleep(1.0)
    before = {pid: vm_rss_kb(pid) for pid in pids}
    kbefore = tcp_mem_pages()
    socks = await open_batch(port, count)
    t0 = time.monotonic()
    history = []
    after = before
    while True:
        read_some(socks, rate)
        await asyncio.sleep(1.0)
        after = {pid: vm_rss_kb(pid) for pid in pids}
        history.append(sum(after.values()))
        waited = time.monotonic() - t0
        if waited >= settle and len(history) >= 4 and history[-1] <= history[-4] * 1.01:
            break
        if waited >= 60:
            break
    result = {"ok": len(socks), "failed": count - len(socks), "before": before, "after": after,
              "settled_s": round(time.monotonic() - t0, 1),
              "kernel_pages": {"before": kbefore, "after": tcp_mem_pages()}}
    print(json.dumps(result), flush=True)
    for s in socks:
        s.close()


def main(argv):
    raise_nofile()
    if len(argv) == 2 and argv[0] == "serve":
        asyncio.run(serve(int(argv[1])))
        return 0
    if len(argv) >= 4 and argv[0] == "open":
        port, count = int(argv[1]), int(argv[2])
        pids = [int(p) for p in argv[3].split(",") if p]
        opts = {"--warmup": 16, "--rate": 1024, "--settle": 5, "--time-limit": 300}
        rest = argv[4:]
        while rest:
            if rest[0] in opts and len(rest) > 1:
                opts[rest[0]] = float(rest[1])
            else:
                print(f"slow.py: unknown argument {rest[0]}", file=sys.stderr)
                return 2
            rest = rest[2:]
        limit = opts["--time-limit"]
        try:
            asyncio.run(asyncio.wait_for(
                open_and_measure(port, count, pids, int(opts["--warmup"]), int(opts["--rate"]),
                                 opts["--settle"]), limit))
        except asyncio.TimeoutError:
            print(f"slow.py: not done after {limit:.0f} s", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
