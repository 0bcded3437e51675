#!/usr/bin/env python3
"""Frame forwarding rate of a vm-net hub, with no guest in the way: one
peer sends N full-size frames (1514 bytes), keeping at most 512 of them
ahead of what the other peer has counted (a hub drops frames for a port
whose queue passes 2 MiB, like a switch: the window keeps this a measure of
forwarding, not of dropping).  Prints frames/s, MB/s and the drops.

  bench/net-hub.py [N]      (starts o/rel/bin/vm-net hub itself; default 200000)
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
vmnet = os.path.join(top, os.environ.get("O", "o/rel"), "bin", "vm-net")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
size = 1514
tmp = tempfile.mkdtemp()
sock = os.path.join(tmp, "hub.sock")
proc = subprocess.Popen([vmnet, "-k", sock, "hub"])
for _ in range(100):
    if os.path.exists(sock):
        break
    time.sleep(0.05)
time.sleep(0.1)


def peer():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


tx, rx = peer(), peer()
time.sleep(0.2)
got = [0, 0.0]


def receiver():
    rx.settimeout(2.0)
    buf = bytearray()
    count = 0
    try:
        while count < n:
            d = rx.recv(1 << 20)
            if not d:
                break
            buf += d
            off = 0
            while len(buf) - off >= 4:
                (ln,) = struct.unpack_from(">I", buf, off)
                if len(buf) - off < 4 + ln:
                    break
                off += 4 + ln
                count += 1
            del buf[:off]
            got[0] = count
            got[1] = time.monotonic()
    except socket.timeout:
        pass


frame = struct.pack(">I", size) + b"\xff" * 6 + b"\x52\x54\x00\x00\x00\x01" + b"\x88\xb5" + bytes(size - 14)
batch = frame * 64
t = threading.Thread(target=receiver)
t.start()
start = time.monotonic()
for i in range(n // 64):
    while i * 64 - got[0] > 512 and t.is_alive():
        time.sleep(0.0002)
    tx.sendall(batch)
t.join()
elapsed = got[1] - start
proc.terminate()
proc.wait()
sent = n // 64 * 64
print("hub: %d of %d frames delivered in %.2f s: %.0f frames/s, %.1f MB/s, %d dropped"
      % (got[0], sent, elapsed, got[0] / elapsed, got[0] * size / elapsed / 1e6, sent - got[0]))
