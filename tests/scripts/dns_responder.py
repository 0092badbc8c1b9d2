#!/usr/bin/env python3
"""A small authoritative DNS responder for tests, on loopback UDP and TCP (one port).

Usage: dns_responder.py PORT_FILE [--address IP] [--port N] [--zone NAME=IP[,IP...]]... [--ttl S] [--log FILE]
                        [--blackhole] [--truncate] [--truncate-zone NAME]... [--any IP]

Binds 127.0.0.1 (--address) on a free port (--port) (UDP and TCP the same number) and writes the port to PORT_FILE
once it serves. A and AAAA queries for a zone name are answered with its addresses of that
family (NOERROR with no answer for the other family); other names get NXDOMAIN. --log appends
one line per query ("udp NAME TYPE" or "tcp NAME TYPE"). --blackhole reads queries and never
answers. --any answers every other name with IP. --truncate answers over UDP with TC set and no records, so clients retry over TCP.
"""
import argparse
import ipaddress
import socket
import struct
import sys
import threading


def parse_question(msg):
    pos = 12
    labels = []
    while True:
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0:
            raise ValueError("compressed question")
        labels.append(msg[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
    return ".".join(labels).lower(), qtype, qclass, pos + 4


def answer(msg, zones, ttl, truncate):
    ident, flags = struct.unpack("!HH", msg[:4])
    name, qtype, _qclass, end = parse_question(msg)
    question = msg[12:end]
    records = []
    rcode = 0
    if name not in zones and "*any*" in zones:
        zones = {name: zones["*any*"]}
    if name not in zones:
        rcode = 3
    elif not truncate:
        for addr in zones[name]:
            if qtype == 1 and addr.version == 4 or qtype == 28 and addr.version == 6:
                rdata = addr.packed
                records.append(struct.pack("!HHHIH", 0xC00C, qtype, 1, ttl, len(rdata)) + rdata)
    out_flags = 0x8000 | (flags & 0x0100) | 0x0400 | 0x0080 | rcode
    if truncate:
        out_flags |= 0x0200
    header = struct.pack("!HHHHHH", ident, out_flags, 1, len(records), 0, 0)
    return header + question + b"".join(records), name, qtype


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port_file")
    p.add_argument("--zone", action="append", default=[])
    p.add_argument("--ttl", type=int, default=300)
    p.add_argument("--log")
    p.add_argument("--blackhole", action="store_true")
    p.add_argument("--truncate", action="store_true")
    p.add_argument("--truncate-zone", action="append", default=[])
    p.add_argument("--any")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    zones = {}
    for z in a.zone:
        name, addrs = z.split("=", 1)
        zones[name.lower().rstrip(".")] = [ipaddress.ip_address(x) for x in addrs.split(",")]
    if a.any:
        zones["*any*"] = [ipaddress.ip_address(a.any)]
    truncated = {z.lower().rstrip(".") for z in a.truncate_zone}
    lock = threading.Lock()

    def log(proto, name, qtype):
        if a.log:
            with lock, open(a.log, "a") as f:
                f.write("%s %s %d\n" % (proto, name, qtype))

    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while True:  # one port number free for both
        tcp.bind((a.address, a.port))
        port = tcp.getsockname()[1]
        try:
            udp.bind((a.address, port))
            break
        except OSError:
            tcp.close()
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.listen(16)

    def serve_udp():
        while True:
            msg, peer = udp.recvfrom(4096)
            try:
                qname = parse_question(msg)[0]
                out, name, qtype = answer(msg, zones, a.ttl, a.truncate or qname in truncated)
            except (ValueError, IndexError, struct.error):
                continue
            log("udp", name, qtype)
            if not a.blackhole:
                udp.sendto(out, peer)

    def serve_conn(c):
        with c:
            buf = b""
            while True:
                data = c.recv(4096)
                if not data:
                    return
                buf += data
                while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                    n = struct.unpack("!H", buf[:2])[0]
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    try:
                        out, name, qtype = answer(msg, zones, a.ttl, False)
                    except (ValueError, IndexError, struct.error):
                        return
                    log("tcp", name, qtype)
                    if not a.blackhole:
                        c.sendall(struct.pack("!H", len(out)) + out)

    def serve_tcp():
        while True:
            c, _ = tcp.accept()
            threading.Thread(target=serve_conn, args=(c,), daemon=True).start()

    threading.Thread(target=serve_udp, daemon=True).start()
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    serve_tcp()


if __name__ == "__main__":
    sys.exit(main())
