#!/usr/bin/env python3
"""RSS per UDP association: N sockets, each from its own source port, send one datagram through a
UDP relay (ss-tunnel -u to this script's own echo target) and wait for the echo, so each makes
one association in the tunnel and one in the server (`held`: how many each keeps, by its open
descriptors). VmRSS of the given processes is read before,
once every association is up, and (with --expire S) S seconds after the last datagram, when the
proxies' idle associations have expired. Prints one JSON line.

Usage: udp_assoc.py TUNNEL_PORT N PID[,PID...] --echo-port=P [--expire=S]
         (the tunnel forwards to 127.0.0.1:P)
       udp_assoc.py --netns N "SERVER COMMAND" "TUNNEL COMMAND" [--expire=S]
         (as root: in a network namespace of its own, whose loopback has ports 1024-65535 to
          give, since N associations take 3 N ports, runs both commands with {srv}, {tun} and
          {echo} replaced by their ports, measures, and stops them; the namespace goes with them)
"""

import json
import os
import select
import shlex
import socket
import subprocess
import sys
import time

from proc_util import raise_nofile, vm_rss_kb


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def in_netns(argv):
    if "--inside" not in argv:
        os.execvp("unshare", ["unshare", "-n", sys.executable, os.path.abspath(__file__), "--netns"] + argv +
                  ["--inside"])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w", encoding="ascii") as f:
        f.write("1024 65535")
    args = [a for a in argv if not a.startswith("--")]
    extra = [a for a in argv if a.startswith("--expire")]
    n = args[0]
    ports = {"echo": 901, "srv": 902, "tun": 903}
    procs = []
    for cmd in args[1:3]:
        procs.append(subprocess.Popen(shlex.split(cmd.format(**ports)), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        time.sleep(1.5)
    try:
        main([str(ports["tun"]), n, f"{procs[1].pid},{procs[0].pid}",
              f"--echo-port={ports['echo']}"] + extra, roles=("tunnel", "server"))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv, roles=None):
    args = [a for a in argv if not a.startswith("--")]
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    tun_port, n = int(args[0]), int(args[1])
    pids = [int(p) for p in args[2].split(",")]
    echo_port = int(opts.get("echo-port", "0"))
    expire = float(opts.get("expire", "0"))
    raise_nofile()
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", echo_port))
    echo.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    echo.setblocking(False)

    def pump_echo():
        while True:
            try:
                data, addr = echo.recvfrom(2048)
            except BlockingIOError:
                return
            echo.sendto(data, addr)

    before = {p: vm_rss_kb(p) for p in pids}
    fds_before = {p: open_fds(p) for p in pids}
    socks = []
    answered = 0
    pending = {}
    start = time.monotonic()
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        s.sendto(b"assoc %d" % i, ("127.0.0.1", tun_port))
        socks.append(s)
        pending[s.fileno()] = s
        if i % 200 == 199:
            time.sleep(0.01)  # leave the relays' receive buffers room
            pump_echo()
    poll = select.epoll()
    for fd in pending:
        poll.register(fd, select.EPOLLIN)
    poll.register(echo.fileno(), select.EPOLLIN)
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        for fd, _ in poll.poll(0.5):
            if fd == echo.fileno():
                pump_echo()
                continue
            s = pending.pop(fd, None)
            if s is not None:
                s.recv(2048)
                poll.unregister(fd)
                answered += 1
    up_s = time.monotonic() - start
    time.sleep(2)
    during = {p: vm_rss_kb(p) for p in pids}
    # Associations each process holds: one socket each (shadowsocks-libev keeps at most 256 in
    # ss-tunnel and 512 in ss-server, evicting the least recently used).
    held = {p: open_fds(p) - fds_before[p] for p in pids}
    result = {"n": n, "answered": answered, "up_s": round(up_s, 1), "before": before,
              "during": during, "held": held}
    if roles:
        result["roles"] = dict(zip(roles, [str(p) for p in pids]))
    for s in socks:
        s.close()
    if expire > 0:
        time.sleep(expire)
        result["after"] = {p: vm_rss_kb(p) for p in pids}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if "--netns" in sys.argv:
        in_netns([a for a in sys.argv[1:] if a != "--netns"])
    else:
        main(sys.argv[1:])
