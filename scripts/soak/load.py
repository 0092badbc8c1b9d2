#!/usr/bin/env python3
"""Load generator for scripts/soak.sh (Python 3 standard library only, loopback only).

  load.py --socks-port P --seconds S [--watch NAME=PID ...] [options]

Serves its own target on 127.0.0.1 (port 0) and drives it through the SOCKS5 proxy at
127.0.0.1:P (our ss-local, chained to our ss-server) with:

  churn    --concurrency workers, together at most --rate new connections per second, each
           picking at random:
             echo        send 1 B .. 1 MiB, read the echo back (byte-exact), FIN, expect EOF
             source      the target sends 1 B .. 2 MiB of seeded data then FIN (byte-exact)
             target-rst  the target sends N bytes, waits until its kernel has them acknowledged,
                         then resets; the client must still get all N bytes (hostile-inputs F2)
             rst-upload  send up to 2 MiB (reading the echo or not) then RST mid-transfer (F3)
             rst-download  the target streams 8 MiB; read part of it (checked), then RST
             early-close  close during the SOCKS5 handshake
  streams  --streams long echo streams at --stream-kib KiB/s each for the whole run, every
           echoed byte compared with what was sent, then FIN and EOF at the end.

Every operation has a time limit (--op-timeout); a verified operation that fails, stalls or
gets different bytes is a failure. Phases: descriptor baseline of every watched process at rest
(before any load); warm-up with the full load (--warmup seconds, part of --seconds); rest until
the descriptors are back at the baseline; RSS baseline; main load; rest again (at most
--settle seconds); final checks:
  * every verified transfer was byte-exact and no operation failed unexpectedly;
  * every watched process is alive, and its descriptor count is back at its baseline exactly;
  * its RSS is within --rss-tolerance-kib of the RSS baseline taken after the warm-up.

Prints a human-readable summary on stderr and one JSON object on stdout. Exit status 0 if every
check passed, 1 otherwise, 2 on bad usage.
"""

import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import random
import resource
import socket
import struct
import sys
import termios
import time

CHUNK = 65536


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- /proc probes ------------------------------------------------------------------------------


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


# ---- seeded data -------------------------------------------------------------------------------


class Stream:
    """Deterministic pseudo-random bytes in CHUNK pieces: sender and checker make the same."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.buf = b""

    def take(self, n):
        while len(self.buf) < n:
            self.buf += self.rng.randbytes(CHUNK)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Checker:
    """Compares received bytes with a Stream as they come."""

    def __init__(self, seed):
        self.expected = Stream(seed)
        self.count = 0

    def feed(self, data):
        want = self.expected.take(len(data))
        if want != data:
            at = next(i for i in range(len(data)) if data[i] != want[i])
            raise VerifyError(f"byte {self.count + at} differs")
        self.count += len(data)


class VerifyError(Exception):
    pass


# ---- the target --------------------------------------------------------------------------------


async def read_header(reader):
    line = await reader.readline()
    return line.decode("ascii", "replace").split()


async def serve_target(reader, writer, stats):
    """ECHO | SOURCE n seed | RST n seed. Errors from clients that reset are expected."""
    try:
        cmd = await asyncio.wait_for(read_header(reader), 60)
        if not cmd:
            return
        if cmd[0] == "ECHO":
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        elif cmd[0] in ("SOURCE", "RST"):
            n, seed = int(cmd[1]), int(cmd[2])
            src = Stream(seed)
            left = n
            while left > 0:
                k = min(CHUNK, left)
                writer.write(src.take(k))
                await writer.drain()
                left -= k
            if cmd[0] == "RST":
                # Reset only once the peer's kernel has acknowledged every byte.
                sock = writer.get_extra_info("socket")
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    outq = struct.unpack(
                        "i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
                    if outq == 0:
                        break
                    await asyncio.sleep(0.002)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            writer.write_eof()
            await writer.drain()
            while await reader.read(CHUNK):
                pass
        else:
            stats["target_bad_header"] += 1
    except (ConnectionError, asyncio.TimeoutError, OSError):
        stats["target_conn_errors"] += 1
    finally:
        if not writer.transport.is_closing():
            writer.close()


# ---- the client side ---------------------------------------------------------------------------


class Failure(Exception):
    pass


async def socks_connect(port, target_port, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    writer.write(b"\x05\x01\x00")
    if await asyncio.wait_for(reader.readexactly(2), timeout) != b"\x05\x00":
        raise Failure("SOCKS5 greeting refused")
    writer.write(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") +
                 struct.pack(">H", target_port))
    head = await asyncio.wait_for(reader.readexactly(4), timeout)
    if head[1] != 0:
        raise Failure(f"SOCKS5 CONNECT failed, REP {head[1]}")
    alen = {1: 4, 4: 16}.get(head[3])
    if alen is None:
        alen = (await asyncio.wait_for(reader.readexactly(1), timeout))[0]
    await asyncio.wait_for(reader.readexactly(alen + 2), timeout)
    return reader, writer


def reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def read_until_eof(reader, checker, limit):
    while True:
        data = await reader.read(CHUNK)
        if not data:
            return
        checker.feed(data)
        if checker.count > limit:
            raise VerifyError(f"more than {limit} bytes")


class Load:
    def __init__(self, args, target_port):
        self.args = args
        self.target_port = target_port
        self.rng = random.Random(args.seed)
        self.counts = {}
        self.failures = []
        self.verified_bytes = 0
        self.verified_streams = 0
        self.stream_bytes = 0
        self.stop = asyncio.Event()
        self.tokens = 0.0
        self.last_refill = time.monotonic()
        self.token_lock = asyncio.Lock()

    def count(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n

    def fail(self, what, err):
        self.count(f"{what}:failed")
        if len(self.failures) < 50:
            self.failures.append(f"{what}: {type(err).__name__}: {err}")
        log(f"FAILURE {what}: {type(err).__name__}: {err}")

    async def take_token(self):
        async with self.token_lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.args.rate, self.tokens +
                                  (now - self.last_refill) * self.args.rate)
                self.last_refill = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.args.rate)

    def seed(self):
        return self.rng.getrandbits(63)

    def size(self, small, big, p_big):
        hi = big if self.rng.random() < p_big else small
        return self.rng.randint(1, hi)

    # -- operations: each returns normally or raises --

    async def op_echo(self):
        n = self.size(64 * 1024, 1 << 20, 0.05)
        seed = self.seed()
        reader, writer = await socks_connect(self.args.socks_port, self.target_port, 10)
        try:
            writer.write(b"ECHO\n")
            src, checker = Stream(seed), Checker(seed)

            async def send():
                left = n
                while left > 0:
                    k = min(CHUNK, left)
                    writer.write(src.take(k))
                    await writer.drain()
                    left -= k
                writer.write_eof()

            sender = asyncio.ensure_future(send())
            try:
                await read_until_eof(reader, checker, n)
            except BaseException:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                raise
            await sender
            if checker.count != n:
                raise VerifyError(f"echo: {checker.count} of {n} bytes, then EOF")
            self.verified_bytes += 2 * n
            self.verified_streams += 1
        finally:
            writer.close()

    async def op_source(self, rst=False):
        n = self.size(256 * 1024, 2 << 20, 0.2)
        seed = self.seed()
        reader, writer = await socks_connect(self.args.socks_port, self.target_port, 10)
        try:
            writer.write(f"{'RST' if rst else 'SOURCE'} {n} {seed}\n".encode())
            checker = Checker(seed)
            try:
                await read_until_eof(reader, checker, n)
            except ConnectionResetError:
                if not rst:
                    raise
            if checker.count != n:
                raise VerifyError(f"{checker.count} of {n} bytes before the end")
            self.verified_bytes += n
            self.verified_streams += 1
        finally:
            writer.close()

    async def op_rst_upload(self):
        n = self.size(256 * 1024, 2 << 20, 0.3)
        read_echo = self.rng.random() < 0.5
        reader, writer = await socks_connect(self.args.socks_port, self.target_port, 10)
        try:
            writer.write(b"ECHO\n")
            src = Stream(self.seed())
            left = n
            while left > 0:
                k = min(CHUNK, left)
                writer.write(src.take(k))
                left -= k
                if read_echo:
                    await writer.drain()
                    try:
                        await asyncio.wait_for(reader.read(CHUNK), 0.001)
                    except asyncio.TimeoutError:
                        pass
                elif writer.transport.get_write_buffer_size() > 256 * 1024:
                    break  # backpressure reached: reset now, with data still queued
            await asyncio.sleep(self.rng.random() * 0.02)
        finally:
            reset(writer)

    async def op_rst_download(self):
        seed = self.seed()
        reader, writer = await socks_connect(self.args.socks_port, self.target_port, 10)
        try:
            writer.write(f"SOURCE {8 << 20} {seed}\n".encode())
            checker = Checker(seed)
            want = self.rng.randint(1, 4 << 20)
            while checker.count < want:
                data = await reader.read(CHUNK)
                if not data:
                    raise VerifyError(f"EOF after {checker.count} of 8 MiB")
                checker.feed(data)
            self.verified_bytes += checker.count
        finally:
            reset(writer)

    async def op_early_close(self):
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.args.socks_port), 10)
        if self.rng.random() < 0.5:
            writer.write(b"\x05\x01\x00\x05\x01")  # greeting and half a request
            await writer.drain()
        if self.rng.random() < 0.5:
            reset(writer)
        else:
            writer.close()

    OPS = [("echo", 40), ("source", 15), ("target-rst", 10), ("rst-upload", 20),
           ("rst-download", 10), ("early-close", 5)]

    async def churn_worker(self):
        names = [n for n, _ in self.OPS]
        weights = [w for _, w in self.OPS]
        while not self.stop.is_set():
            await self.take_token()
            if self.stop.is_set():
                return
            name = self.rng.choices(names, weights)[0]
            op = {
                "echo": self.op_echo,
                "source": self.op_source,
                "target-rst": lambda: self.op_source(rst=True),
                "rst-upload": self.op_rst_upload,
                "rst-download": self.op_rst_download,
                "early-close": self.op_early_close,
            }[name]
            try:
                await asyncio.wait_for(op(), self.args.op_timeout)
                self.count(f"{name}:ok")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every error is a finding here
                self.fail(name, e)

    async def steady_stream(self, index, until):
        """A long echo stream at a fixed rate; every byte of the echo is checked."""
        name = f"stream-{index}"
        seed = self.seed()
        try:
            reader, writer = await socks_connect(self.args.socks_port, self.target_port, 10)
        except Exception as e:  # noqa: BLE001
            self.fail(name, e)
            return
        writer.write(b"ECHO\n")
        src, checker = Stream(seed), Checker(seed)
        sent = 0
        piece = 16 * 1024
        interval = piece / (self.args.stream_kib * 1024)

        async def send():
            nonlocal sent
            next_at = time.monotonic()
            while time.monotonic() < until:
                writer.write(src.take(piece))
                sent += piece
                await writer.drain()
                next_at += interval
                await asyncio.sleep(max(0, next_at - time.monotonic()))
            writer.write_eof()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await asyncio.wait_for(reader.read(CHUNK), self.args.op_timeout)
                if not data:
                    break
                checker.feed(data)
            await sender
            if checker.count != sent:
                raise VerifyError(f"echoed {checker.count} of {sent} bytes, then EOF")
            self.verified_bytes += 2 * sent
            self.verified_streams += 1
            self.count("stream:ok")
            self.stream_bytes += sent
        except Exception as e:  # noqa: BLE001
            self.fail(name, e)
        finally:
            if not sender.done():
                sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            writer.close()

    async def run_phase(self, seconds, streams):
        self.stop.clear()
        until = time.monotonic() + seconds
        tasks = [asyncio.ensure_future(self.churn_worker()) for _ in range(self.args.concurrency)]
        tasks += [asyncio.ensure_future(self.steady_stream(i, until)) for i in range(streams)]
        await asyncio.sleep(seconds)
        self.stop.set()
        # Let running operations finish (each is bounded by --op-timeout).
        await asyncio.wait(tasks, timeout=self.args.op_timeout + 5)
        for t in tasks:
            if not t.done():
                t.cancel()
                self.fail("phase", Failure("an operation outlived its time limit"))


# ---- monitoring --------------------------------------------------------------------------------


class Monitor:
    def __init__(self, watch):
        self.watch = watch  # name -> pid
        self.max_fds = {n: 0 for n in watch}
        self.max_rss = {n: 0 for n in watch}
        self.dead = set()

    def sample(self):
        for name, pid in self.watch.items():
            if not alive(pid):
                self.dead.add(name)
                continue
            self.max_fds[name] = max(self.max_fds[name], fd_count(pid) or 0)
            self.max_rss[name] = max(self.max_rss[name], rss_kib(pid) or 0)

    async def run(self, stop):
        while not stop.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    def fds(self):
        return {n: fd_count(p) for n, p in self.watch.items()}

    def rss(self):
        return {n: rss_kib(p) for n, p in self.watch.items()}

    async def settle(self, want_fds, limit):
        """Waits until every descriptor count equals want_fds (or is read twice unchanged 1 s
        apart when want_fds is None). Returns (counts, seconds waited)."""
        start = time.monotonic()
        prev = None
        while True:
            now = self.fds()
            done = now == want_fds if want_fds is not None else now == prev
            if done or time.monotonic() - start >= limit:
                return now, time.monotonic() - start
            prev = now
            await asyncio.sleep(0.2 if want_fds is not None else 1.0)


# ---- main --------------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socks-port", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True, help="total load time incl. warm-up")
    p.add_argument("--warmup", type=float, default=None,
                   help="warm-up seconds (default: 10%% of --seconds, 10..30)")
    p.add_argument("--watch", action="append", default=[], metavar="NAME=PID")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--rate", type=float, default=100, help="new connections per second, at most")
    p.add_argument("--streams", type=int, default=3)
    p.add_argument("--stream-kib", type=float, default=1024, help="KiB/s per long stream")
    p.add_argument("--op-timeout", type=float, default=30)
    p.add_argument("--settle", type=float, default=30,
                   help="longest wait for descriptors to return to the baseline")
    p.add_argument("--rss-tolerance-kib", type=int, default=8192)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(32)
    if args.warmup is None:
        args.warmup = min(30.0, max(10.0, args.seconds / 10))
    args.warmup = min(args.warmup, args.seconds / 2)
    watch = {}
    for w in args.watch:
        name, _, pid = w.partition("=")
        if not pid.isdigit():
            p.error(f"--watch wants NAME=PID, got {w!r}")
        watch[name] = int(pid)
    args.watch = watch
    return args


async def amain(args):
    stats = {"target_conn_errors": 0, "target_bad_header": 0}
    server = await asyncio.start_server(lambda r, w: serve_target(r, w, stats), "127.0.0.1", 0,
                                        backlog=1024)
    target_port = server.sockets[0].getsockname()[1]
    load = Load(args, target_port)
    mon = Monitor(args.watch)
    log(f"seed {args.seed}; target on 127.0.0.1:{target_port}; SOCKS5 on 127.0.0.1:"
        f"{args.socks_port}; {args.seconds:.0f} s of load ({args.warmup:.0f} s warm-up)")

    fd_base, _ = await mon.settle(None, 5)
    log(f"descriptors at rest: {fd_base}")
    mon_stop = asyncio.Event()
    mon_task = asyncio.ensure_future(mon.run(mon_stop))

    await load.run_phase(args.warmup, args.streams)
    fds_warm, waited_warm = await mon.settle(fd_base, args.settle)
    rss_base = mon.rss()
    log(f"after warm-up: descriptors {fds_warm} ({waited_warm:.1f} s to settle), "
        f"RSS baseline {rss_base} KiB")

    main_seconds = args.seconds - args.warmup
    await load.run_phase(main_seconds, args.streams)
    fds_end, waited_end = await mon.settle(fd_base, args.settle)
    rss_end = mon.rss()
    mon_stop.set()
    await mon_task
    mon.sample()
    server.close()
    await server.wait_closed()

    checks = []

    def check(ok, what):
        checks.append({"ok": bool(ok), "check": what})

    failed_ops = sum(v for k, v in load.counts.items() if k.endswith(":failed"))
    check(failed_ops == 0, f"{failed_ops} failed operations (every verified transfer byte-exact)")
    check(load.counts.get("stream:ok", 0) == 2 * args.streams,
          f"{load.counts.get('stream:ok', 0)} of {2 * args.streams} long streams verified")
    for name in args.watch:
        check(name not in mon.dead, f"{name} alive throughout")
        check(fds_warm.get(name) == fd_base.get(name),
              f"{name} descriptors after warm-up {fds_warm.get(name)} == at rest "
              f"{fd_base.get(name)}")
        check(fds_end.get(name) == fd_base.get(name),
              f"{name} descriptors at the end {fds_end.get(name)} == at rest "
              f"{fd_base.get(name)} ({waited_end:.1f} s to settle)")
        base, end = rss_base.get(name) or 0, rss_end.get(name) or 0
        check(end <= base + args.rss_tolerance_kib,
              f"{name} RSS at the end {end} KiB <= baseline {base} + {args.rss_tolerance_kib} KiB "
              f"(delta {end - base:+d} KiB; peak {mon.max_rss[name]} KiB)")

    ok_ops = sum(v for k, v in load.counts.items() if k.endswith(":ok"))
    summary = {
        "ok": all(c["ok"] for c in checks),
        "seed": args.seed,
        "seconds": args.seconds,
        "operations": ok_ops + failed_ops,
        "counts": dict(sorted(load.counts.items())),
        "verified_transfers": load.verified_streams,
        "verified_bytes": load.verified_bytes,
        "long_stream_bytes_each_way": load.stream_bytes,
        "target_side_connection_errors": stats["target_conn_errors"],
        "fds_at_rest": fd_base,
        "fds_after_warmup": fds_warm,
        "fds_end": fds_end,
        "settle_seconds_end": round(waited_end, 1),
        "rss_baseline_kib": rss_base,
        "rss_end_kib": rss_end,
        "rss_peak_kib": mon.max_rss,
        "fds_peak": mon.max_fds,
        "checks": checks,
        "failures": load.failures,
    }
    return summary


def main(argv):
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    summary = asyncio.run(amain(args))
    print(json.dumps(summary))
    for c in summary["checks"]:
        log(f"{'PASS' if c['ok'] else 'FAIL'}  {c['check']}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
