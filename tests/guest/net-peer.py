#!/usr/bin/env python3
# The other end of a vm-run NIC for tests: listens on a unix socket, and
# answers every frame (4-byte big-endian length + Ethernet frame, QEMU's
# stream framing) whose payload starts with PING by the same frame with
# PONG.  Exits when the connection closes.
import socket, struct, sys, os

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
conn, _ = srv.accept()
buf = b""
while True:
    d = conn.recv(65536)
    if not d:
        break
    buf += d
    while len(buf) >= 4:
        n = struct.unpack(">I", buf[:4])[0]
        if len(buf) < 4 + n:
            break
        frame, buf = buf[4:4 + n], buf[4 + n:]
        if frame[14:18] == b"PING":
            frame = frame[:14] + b"PONG" + frame[18:]
            conn.sendall(struct.pack(">I", len(frame)) + frame)
