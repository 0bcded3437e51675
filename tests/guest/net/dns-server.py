#!/usr/bin/env python3
"""A minimal DNS server for vm-net's guest tests: answers A queries for
host.vmtest with 192.0.2.7 (a documentation address nobody contacts) and
everything else with NXDOMAIN, logging each query name to stdout.

  dns-server.py ADDR PORT
"""
import socket
import struct
import sys

ANSWERS = {"host.vmtest": "192.0.2.7"}


def qname(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += n + 1
    return ".".join(labels).lower(), off + 1


def reply(msg):
    ident, flags, qd = struct.unpack(">HHH", msg[:6])
    name, end = qname(msg, 12)
    qtype, _ = struct.unpack(">HH", msg[end:end + 4])
    question = msg[12:end + 4]
    addr = ANSWERS.get(name)
    if addr and qtype == 1:
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
        hdr = struct.pack(">HHHHHH", ident, 0x8180 | (flags & 0x0100), 1, 1, 0, 0)
        return name, hdr + question + ans
    rcode = 0 if addr else 3
    hdr = struct.pack(">HHHHHH", ident, 0x8180 | (flags & 0x0100) | rcode, 1, 0, 0, 0)
    return name, hdr + question


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(sys.argv[2])))
    while True:
        msg, peer = s.recvfrom(2048)
        try:
            name, out = reply(msg)
        except (IndexError, struct.error):
            continue
        print("query", name, flush=True)
        s.sendto(out, peer)


if __name__ == "__main__":
    main()
