#!/usr/bin/env python3
"""Idle-connection helper for scripts/bench.sh (section d, RSS per idle relayed connection).

  hold.py serve PORT
      Listens on 127.0.0.1:PORT; echoes the first bytes each connection sends, then holds the
      connection open (reading and discarding) until the peer closes it. Prints "listening" once
      the socket is bound.

  hold.py open PORT COUNT PIDS [--warmup N] [--time-limit S]
      Through 127.0.0.1:PORT (an ss-tunnel pointed at a "serve" instance): opens N warm-up
      connections and closes them (so one-time allocations such as the pages of the replay
      Bloom filters are already resident), reads VmRSS of every PID in PIDS (comma-separated),
      opens COUNT connections that each send 8 bytes and wait for their echo (so the whole path
      ss-tunnel -> ss-server -> target is established), waits one second, reads VmRSS again and
      prints one JSON object: {"ok": n, "failed": n, "before": {pid: kB}, "after": {pid: kB}}.
      Then closes everything. The whole run is bounded by --time-limit seconds.
"""

import asyncio
import json
import sys

from proc_util import raise_nofile, vm_rss_kb

PROBE = b"ssbench!"


async def serve(port):
    async def handle(reader, writer):
        try:
            first = await reader.read(64)
            if first:
                writer.write(first)
                await writer.drain()
                while await reader.read(4096):
                    pass
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


async def open_one(port, sem, held):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout=10)
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            writer.write(PROBE)
            await writer.drain()
            echo = await asyncio.wait_for(reader.readexactly(len(PROBE)), timeout=10)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            writer.close()
            return False
        held.append(writer)
        return echo == PROBE


async def open_batch(port, count, held):
    sem = asyncio.Semaphore(64)  # connects in flight: well below every listen backlog
    results = await asyncio.gather(*(open_one(port, sem, held) for _ in range(count)))
    return sum(1 for r in results if r)


async def close_all(held):
    for w in held:
        w.close()
    for w in held:
        try:
            await w.wait_closed()
        except (ConnectionError, OSError):
            pass
    held.clear()


async def open_and_measure(port, count, pids, warmup):
    held = []
    await open_batch(port, warmup, held)
    await close_all(held)
    await asyncio.sleep(1.0)
    before = {pid: vm_rss_kb(pid) for pid in pids}
    ok = await open_batch(port, count, held)
    await asyncio.sleep(1.0)
    after = {pid: vm_rss_kb(pid) for pid in pids}
    print(json.dumps({"ok": ok, "failed": count - ok, "before": before, "after": after}),
          flush=True)
    await close_all(held)


def main(argv):
    raise_nofile()
    if len(argv) == 2 and argv[0] == "serve":
        asyncio.run(serve(int(argv[1])))
        return 0
    if len(argv) >= 4 and argv[0] == "open":
        port, count = int(argv[1]), int(argv[2])
        pids = [int(p) for p in argv[3].split(",") if p]
        warmup, limit = 256, 300.0
        rest = argv[4:]
        while rest:
            if rest[0] == "--warmup" and len(rest) > 1:
                warmup = int(rest[1])
            elif rest[0] == "--time-limit" and len(rest) > 1:
                limit = float(rest[1])
            else:
                print(f"hold.py: unknown argument {rest[0]}", file=sys.stderr)
                return 2
            rest = rest[2:]
        try:
            asyncio.run(asyncio.wait_for(open_and_measure(port, count, pids, warmup), limit))
        except asyncio.TimeoutError:
            print(f"hold.py: not done after {limit:.0f} s", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
