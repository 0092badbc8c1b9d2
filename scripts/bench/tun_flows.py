#!/usr/bin/env python3
"""Flow helpers for scripts/bench/tun.sh, run inside the client namespace.

  tun_flows.py rate HOST SECS VIA
      Opens flows one after another for SECS seconds (connect, 1 byte each way, close) and
      prints "RATE COUNT".
  tun_flows.py hold HOST COUNT PID VIA
      Opens COUNT flows and keeps them, then prints ss-local's (PID) RSS growth per flow in bytes.

VIA is "tun" (a plain connection to HOST:7010, captured by the TUN) or "socks" (through
ss-local's SOCKS5 port 127.0.0.1:1080 to HOST:7010).
"""

import resource
import socket
import struct
import sys
import time

PORT = 7010


def exact(s, k):
    b = b""
    while len(b) < k:
        d = s.recv(k - len(b))
        if not d:
            raise EOFError
        b += d
    return b


def open_flow(host, via):
    """A connection to HOST:7010 that has carried one byte each way."""
    if via == "tun":
        s = socket.create_connection((host, PORT), timeout=10)
    else:
        s = socket.create_connection(("127.0.0.1", 1080), timeout=10)
        s.sendall(b"\x05\x01\x00")
        exact(s, 2)
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", PORT))
        exact(s, 10)
    s.sendall(b"x")
    exact(s, 1)
    return s


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def rate(host, secs, via):
    n = 0
    end = time.monotonic() + secs
    while time.monotonic() < end:
        open_flow(host, via).close()
        n += 1
    print("%.1f %d" % (n / secs, n))


def hold(host, n, pid, via):
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
    base = rss_kb(pid)
    held = [open_flow(host, via) for _ in range(n)]
    time.sleep(0.3)
    print("%.0f" % ((rss_kb(pid) - base) * 1024 / n))
    for s in held:
        s.close()


def main(argv):
    if len(argv) == 5 and argv[1] == "rate":
        rate(argv[2], float(argv[3]), argv[4])
    elif len(argv) == 6 and argv[1] == "hold":
        hold(argv[2], int(argv[3]), int(argv[4]), argv[5])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
