#!/usr/bin/env python3
"""Accept one TCP connection on ADDR PORT, read to end of file, and print
"BYTES SECONDS" (from the first byte to the end).  For bench/net-throughput.sh.
"""
import socket
import sys
import time

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(1)
srv.settimeout(float(sys.argv[3]) if len(sys.argv) > 3 else 120)
conn, _ = srv.accept()
conn.settimeout(60)
total, start = 0, None
while True:
    d = conn.recv(1 << 20)
    if not d:
        break
    if start is None:
        start = time.monotonic()
    total += len(d)
end = time.monotonic()
print(total, "%.3f" % (end - (start or end)), flush=True)
