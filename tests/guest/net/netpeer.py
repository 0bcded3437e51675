#!/usr/bin/env python3
"""A tiny stream-framing peer for vm-net's tests.

Speaks DESIGN.md's framing (4-byte big-endian length, then the frame) on a
unix or TCP socket, like QEMU's -netdev stream.  Each subcommand is one
scenario; it prints "ok ..." lines and exits 0, or prints why and exits 1.

  netpeer.py hub ADDR [ADDR...]        a broadcast from the first peer reaches
                                       every other one and not the sender
  netpeer.py malformed ADDR            bad lengths, a truncated frame and a
                                       vanishing peer close only that peer
  netpeer.py arp ADDR IP               an ARP request for IP gets a reply
  netpeer.py frames ADDR N SIZE...     send frames of the given sizes N times
  netpeer.py silent ADDR               a frame from a peer reaches nobody
  netpeer.py fd-child ARGV...          run ARGV with a connected socketpair
                                       end as fd {fd}; ARP 10.0.2.2 through it,
                                       close, and expect ARGV to exit 0
  netpeer.py ctl-fd ARGV...            as fd-child, plus a control socketpair
                                       end as {ctl}: set_link off stops ARP
                                       replies, set_link on brings them back
ADDR is unix:PATH, PATH or tcp:HOST:PORT.
"""
import socket
import struct
import subprocess
import sys
import time

MAC_A = bytes.fromhex("525400aa0001")
MAC_B = bytes.fromhex("525400aa0002")
BCAST = b"\xff" * 6


def connect(addr):
    if addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    path = addr[5:] if addr.startswith("unix:") else addr
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def send_frame(s, frame):
    s.sendall(struct.pack(">I", len(frame)) + frame)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def recv_frame(s, timeout=3.0, want=None):
    """The next frame (matching `want` if given), or None on timeout/EOF."""
    end = time.time() + timeout
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            hdr = recv_exact(s, 4)
            if hdr is None:
                return None
            (n,) = struct.unpack(">I", hdr)
            frame = recv_exact(s, n)
        except socket.timeout:
            return None
        if frame is None:
            return None
        if want is None or want(frame):
            return frame
    return None


def test_frame(src, tag, size=64):
    body = tag.encode().ljust(size - 14, b".")
    return BCAST + src + b"\x88\xb5" + body


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def has_tag(tag):
    return lambda f: tag.encode() in f


def cmd_hub(addrs):
    peers = [connect(a) for a in addrs]
    time.sleep(0.3)
    send_frame(peers[0], test_frame(MAC_A, "hello-hub"))
    for i, p in enumerate(peers[1:], 1):
        f = recv_frame(p, want=has_tag("hello-hub"))
        if f is None:
            fail("peer %d (%s) did not get the frame" % (i, addrs[i]))
        if len(f) != 64:
            fail("peer %d got %d bytes, expected 64" % (i, len(f)))
    if recv_frame(peers[0], timeout=0.5, want=has_tag("hello-hub")) is not None:
        fail("the frame came back to its sender")
    print("ok hub: %d peers" % len(peers))


def closed_by_server(s, timeout=3.0):
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
    except (socket.timeout, BlockingIOError):
        return False
    except ConnectionResetError:
        return True


def still_works(a, b, tag):
    send_frame(a, test_frame(MAC_A, tag))
    if recv_frame(b, want=has_tag(tag)) is None:
        fail("good peers stopped working after " + tag)


def cmd_malformed(addr):
    a, b = connect(addr), connect(addr)
    time.sleep(0.3)
    still_works(a, b, "before")
    for bad in (0, 0x7FFFFFFF, 69633):
        c = connect(addr)
        c.sendall(struct.pack(">I", bad) + b"x" * 16)
        if not closed_by_server(c):
            fail("a length of %d did not close the connection" % bad)
        still_works(a, b, "after-length-%d" % bad)
        print("ok bad length %d closed that peer only" % bad)
    c = connect(addr)
    c.sendall(struct.pack(">I", 100) + b"y" * 50)
    time.sleep(0.2)
    c.close()
    still_works(a, b, "after-truncated")
    print("ok truncated frame closed that peer only")
    c = connect(addr)
    time.sleep(0.2)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()                       # a reset, like a peer that crashed
    still_works(a, b, "after-reset")
    c = connect(addr)
    send_frame(c, b"short")         # a runt: dropped, connection kept
    still_works(c, b, "after-runt")
    print("ok vanishing peer and runt frame")


def arp_request(ip):
    tip = socket.inet_aton(ip)
    sip = socket.inet_aton("10.0.2.15")
    return (BCAST + MAC_A + b"\x08\x06" +
            struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) +
            MAC_A + sip + b"\x00" * 6 + tip).ljust(60, b"\x00")


def is_arp_reply(ip):
    tip = socket.inet_aton(ip)
    return lambda f: f[12:14] == b"\x08\x06" and f[20:22] == b"\x00\x02" and f[28:32] == tip


def arp(s, ip):
    for _ in range(5):
        send_frame(s, arp_request(ip))
        f = recv_frame(s, timeout=1.0, want=is_arp_reply(ip))
        if f is not None:
            return f[22:28].hex(":")
    fail("no ARP reply for " + ip)


def cmd_arp(addr, ip):
    s = connect(addr)
    print("ok %s is at %s" % (ip, arp(s, ip)))


def cmd_frames(addr, count, sizes):
    s = connect(addr)
    time.sleep(0.2)
    for i in range(int(count)):
        for n in sizes:
            send_frame(s, test_frame(MAC_A, "frame-%d" % i, int(n)))
    time.sleep(0.5)
    print("ok sent %d frames" % (int(count) * len(sizes)))


def cmd_silent(addrs):
    a, b = connect(addrs[0]), connect(addrs[1])
    time.sleep(0.3)
    send_frame(a, test_frame(MAC_A, "link-test"))
    if recv_frame(b, timeout=1.0, want=has_tag("link-test")) is not None:
        print("delivered")
    else:
        print("dropped")


def cmd_fd_child(argv):
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = theirs.fileno()
    argv = [a.replace("{fd}", str(fd)) for a in argv]
    proc = subprocess.Popen(argv, pass_fds=(fd,), stderr=sys.stderr)
    theirs.close()
    mine.settimeout(5)
    print("ok %s" % arp(mine, "10.0.2.2"))
    mine.close()
    try:
        status = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("vm-net did not exit when its only peer left")
    if status != 0:
        fail("vm-net exited with status %d" % status)
    print("ok exit 0 after the peer left")


def ctl_command(c, line):
    c.sendall(line.encode() + b"\n")
    reply = b""
    while not (reply.endswith(b"OK\n") or b"ERROR" in reply):
        d = c.recv(4096)
        if not d:
            fail("control connection closed")
        reply += d
    return reply.decode()


def cmd_ctl_fd(argv):
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    cmine, ctheirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = (theirs.fileno(), ctheirs.fileno())
    argv = [a.replace("{fd}", str(fds[0])).replace("{ctl}", str(fds[1])) for a in argv]
    proc = subprocess.Popen(argv, pass_fds=fds, stderr=sys.stderr)
    theirs.close()
    ctheirs.close()
    cmine.settimeout(5)
    arp(mine, "10.0.2.2")
    r = ctl_command(cmine, "set_link off")
    if not r.endswith("OK\n"):
        fail("set_link off: " + r)
    send_frame(mine, arp_request("10.0.2.2"))
    if recv_frame(mine, timeout=1.0, want=is_arp_reply("10.0.2.2")) is not None:
        fail("an ARP reply came through a link that is down")
    print("ok link down drops frames")
    ctl_command(cmine, "set_link user0 on")
    arp(mine, "10.0.2.2")
    print("ok link up again")
    if "link up" not in ctl_command(cmine, "info"):
        fail("info does not say link up")
    mine.close()
    try:
        status = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("vm-net did not exit when its only peer left")
    if status != 0:
        fail("vm-net exited with status %d" % status)
    print("ok exit 0 after the peer left")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "hub":
        cmd_hub(args)
    elif cmd == "malformed":
        cmd_malformed(args[0])
    elif cmd == "arp":
        cmd_arp(args[0], args[1])
    elif cmd == "frames":
        cmd_frames(args[0], args[1], args[2:])
    elif cmd == "silent":
        cmd_silent(args)
    elif cmd == "fd-child":
        cmd_fd_child(args)
    elif cmd == "ctl-fd":
        cmd_ctl_fd(args)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
