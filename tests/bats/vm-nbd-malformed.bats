#!/usr/bin/env bats
# vm-nbd and malformed input: a raw-socket NBD client (python3) sends each
# kind of bad input on one connection while a well-behaved connection
# stays open beside it; the bad one must get the protocol's error (or a
# clean hang-up), the good one must keep working, the image must not
# change, and a fresh client must still be served.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	SOCK=$T/nbd.sock
	URI="nbd+unix:///?socket=$SOCK"
	cat >"$T/raw.py" <<'PY'
# Speak NBD by hand to vm-nbd over a unix socket and check how it answers
# malformed input.  Usage: raw.py CASE SOCKET EXPORT_SIZE
# Every case first opens a well-behaved connection, then misbehaves on a
# second one, then checks that the first still reads correctly.
import socket, struct, sys

REQ, SIMPLE, CHUNK, REP = 0x25609513, 0x67446698, 0x668e33ef, 0x3e889045565a9
EINVAL, EPERM, ENOSPC = 22, 1, 28

def fail(msg):
    print("FAIL %s: %s" % (case, msg))
    sys.exit(1)

def connect():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(path)
    return s

def recvn(s, n):
    b = b''
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError
        b += k
    return b

def closed(s):
    try:
        while True:
            if s.recv(65536) == b'':
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False

def start(s, cflags=3):
    g = recvn(s, 18)
    if g[:16] != b'NBDMAGICIHAVEOPT':
        fail("bad greeting")
    s.sendall(struct.pack('>I', cflags))

def opt(s, o, data=b'', length=None):
    n = len(data) if length is None else length
    s.sendall(b'IHAVEOPT' + struct.pack('>II', o, n) + data)

def rep(s):
    magic, o, t, n = struct.unpack('>QIII', recvn(s, 20))
    if magic != REP:
        fail("bad option reply magic")
    return t, recvn(s, n)

def go(s, name=b'', meta=False):
    opt(s, 8)
    if rep(s)[0] != 1:
        fail("structured replies refused")
    if meta:
        q = b'base:allocation'
        opt(s, 10, struct.pack('>I', len(name)) + name + struct.pack('>II', 1, len(q)) + q)
        while rep(s)[0] != 1:
            pass
    opt(s, 7, struct.pack('>I', len(name)) + name + struct.pack('>H', 0))
    while True:
        t, d = rep(s)
        if t == 1:
            return
        if t != 3:
            fail("GO failed: 0x%x" % t)

def req(s, typ, off, n, flags=0, cookie=1, payload=b''):
    s.sendall(struct.pack('>IHHQQI', REQ, flags, typ, cookie, off, n) + payload)

def reply(s):
    """(cookie, error, data chunks) of one complete reply."""
    data, err = [], 0
    while True:
        magic = struct.unpack('>I', recvn(s, 4))[0]
        if magic == SIMPLE:
            e, cookie = struct.unpack('>IQ', recvn(s, 12))
            return cookie, e, data
        if magic != CHUNK:
            fail("bad reply magic 0x%x" % magic)
        flags, typ, cookie, n = struct.unpack('>HHQI', recvn(s, 16))
        d = recvn(s, n)
        if typ & 0x8000:
            err = struct.unpack('>I', d[:4])[0]
        else:
            data.append((typ, d))
        if flags & 1:
            return cookie, err, data

def expect_err(s, want, what):
    cookie, e, _ = reply(s)
    if e != want:
        fail("%s: error %d, expected %d" % (what, e, want))

def check_alive(s):
    req(s, 0, 0, 4096, cookie=77)
    cookie, e, data = reply(s)
    if cookie != 77 or e:
        fail("the other client stopped working")

# ---- the cases ----

def c_client_flags(s):
    start(s, cflags=0x80)
    if not closed(s): fail("unknown client flags accepted")

def c_option_magic(s):
    start(s)
    s.sendall(b'IHAVEOPX' + struct.pack('>II', 3, 0))
    if not closed(s): fail("bad option magic accepted")

def c_option_too_long(s):
    start(s)
    opt(s, 6, b'\0' * (1 << 20))
    t, d = rep(s)
    if t != 0x80000009: fail("long option: reply 0x%x" % t)
    opt(s, 3)                      # the connection still haggles
    if rep(s)[0] != 2: fail("no export listed after a long option")

def c_option_huge(s):
    start(s)
    opt(s, 6, b'', length=0xffffffff)
    if not closed(s): fail("4 GiB option accepted")

def c_option_unknown(s):
    start(s)
    opt(s, 99, b'abc')
    if rep(s)[0] != 0x80000001: fail("unknown option not NBD_REP_ERR_UNSUP")

def c_go_unknown_export(s):
    start(s)
    opt(s, 7, struct.pack('>I', 4) + b'nope' + struct.pack('>H', 0))
    if rep(s)[0] != 0x80000006: fail("unknown export not NBD_REP_ERR_UNKNOWN")

def c_go_malformed(s):
    start(s)
    opt(s, 7, struct.pack('>I', 1000) + b'abcdef')
    if rep(s)[0] != 0x80000003: fail("short GO not NBD_REP_ERR_INVALID")
    opt(s, 7, struct.pack('>I', 0) + struct.pack('>H', 5) + b'\0\0')
    if rep(s)[0] != 0x80000003: fail("GO with missing info requests not invalid")

def c_meta_malformed(s):
    start(s)
    opt(s, 10, struct.pack('>II', 0, 1))   # before structured replies
    if rep(s)[0] != 0x80000003: fail("meta context without structured replies")
    opt(s, 8)
    rep(s)
    opt(s, 10, struct.pack('>III', 0, 1, 50) + b'base:')
    if rep(s)[0] != 0x80000003: fail("truncated meta query not invalid")

def c_export_name_unknown(s):
    start(s)
    opt(s, 1, b'nope')
    if not closed(s): fail("unknown NBD_OPT_EXPORT_NAME accepted")

def c_request_magic(s):
    start(s); go(s)
    s.sendall(struct.pack('>IHHQQI', 0x12345678, 0, 0, 1, 0, 512))
    if not closed(s): fail("bad request magic accepted")

def c_out_of_bounds(s):
    start(s); go(s)
    req(s, 0, size - 512, 4096)
    expect_err(s, EINVAL, "read past the end")
    req(s, 0, (1 << 64) - 512, 1024)
    expect_err(s, EINVAL, "read at a wrapping offset")
    req(s, 1, size, 512, payload=b'\xff' * 512)
    expect_err(s, ENOSPC, "write past the end")
    req(s, 6, size - 4096, 8192)
    expect_err(s, ENOSPC, "write zeroes past the end")
    req(s, 4, size, 1)
    expect_err(s, EINVAL, "trim past the end")
    check_alive(s)

def c_too_large(s):
    start(s); go(s)
    req(s, 0, 0, 64 << 20)
    expect_err(s, EINVAL, "64 MiB read")
    check_alive(s)
    req(s, 1, 0, 0x7fffffff)
    if not closed(s): fail("2 GiB write accepted")

def c_unknown_command(s):
    start(s); go(s)
    req(s, 42, 0, 512)
    expect_err(s, EINVAL, "unknown command")
    req(s, 0, 0, 512, flags=0x8000)
    expect_err(s, EINVAL, "unknown flag")
    req(s, 1, 0, 512, flags=1 << 3, payload=b'\xff' * 512)
    expect_err(s, EINVAL, "REQ_ONE on a write")
    req(s, 7, 0, 512)
    expect_err(s, EINVAL, "block status without a context")
    check_alive(s)

def c_block_status_empty(s):
    start(s); go(s, meta=True)
    req(s, 7, 0, 0)
    expect_err(s, EINVAL, "block status of no bytes")
    req(s, 7, size, 512)
    expect_err(s, EINVAL, "block status past the end")
    req(s, 7, 0, 4096, flags=1 << 3)
    cookie, e, data = reply(s)
    if e or len(data) != 1 or len(data[0][1]) != 12:
        fail("REQ_ONE block status: error %d, %r" % (e, data))
    check_alive(s)

def c_read_only(s):
    start(s); go(s)
    req(s, 1, 0, 512, payload=b'\xff' * 512)
    expect_err(s, EPERM, "write to a read-only export")
    req(s, 6, 0, 512)
    expect_err(s, EPERM, "write zeroes to a read-only export")
    req(s, 4, 0, 512)
    expect_err(s, EPERM, "trim of a read-only export")
    check_alive(s)

def c_truncated(s):
    start(s); go(s)
    s.sendall(struct.pack('>IHHQ', REQ, 0, 0, 9)[:10])
    s.close()

def c_vanish_mid_write(s):
    start(s); go(s)
    req(s, 1, 0, 1 << 20)
    s.sendall(b'\xee' * 1000)
    s.close()

def c_vanish_in_flight(s):
    start(s); go(s, meta=True)
    # all 128 requests in one send: a server that stops reading while its
    # replies wait (as qemu-nbd does past 16 in flight) must not block us
    buf = b''
    for i in range(64):
        buf += struct.pack('>IHHQQI', REQ, 0, 0, i, (i * 4096) % (size - (1 << 20)), 1 << 20)
        buf += struct.pack('>IHHQQI', REQ, 0, 7, 1000 + i, 0, size)
    s.sendall(buf)
    s.close()

def c_handshake_vanish(s):
    start(s)
    s.sendall(b'IHAVEOPT' + struct.pack('>II', 7, 100) + b'\0' * 10)
    s.close()

def c_parallel(s):
    start(s); go(s, meta=True)
    n = 64
    for i in range(n):
        req(s, 0, i * 65536, 65536, cookie=i)
        req(s, 7, i * 65536, 65536, cookie=1000 + i)
    seen = set()
    for i in range(2 * n):
        cookie, e, data = reply(s)
        if e or cookie in seen: fail("reply %d: error %d or repeated" % (cookie, e))
        seen.add(cookie)
    check_alive(s)

case, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
good = connect()
start(good); go(good)
s = connect()
try:
    globals()['c_' + case.replace('-', '_')](s)
except EOFError:
    fail("connection closed unexpectedly")
check_alive(good)
print("ok " + case)
PY
}

teardown() {
	local p
	for p in $(cat "$T/pids" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
}

wait_for() {
	local i
	for i in $(seq 100); do "$@" && return 0; sleep 0.05; done
	return 1
}

# serve_image ARGS...: a 64 MiB raw image with a pattern, served on $SOCK.
serve_image() {
	qemu-img create -q -f raw "$T/a.raw" 64M
	qemu-io -f raw -c 'write -q -P 0x5a 0 2M' "$T/a.raw" >/dev/null
	SUM=$(sha256sum <"$T/a.raw")
	vm-nbd -k "$SOCK" -t -e 0 -f raw "$@" "$T/a.raw" >"$T/out" 2>"$T/err" &
	SERVER=$!
	echo "$SERVER" >>"$T/pids"
	wait_for test -S "$SOCK"
}

# cases CASE...: run each, then check the server and the image.
cases() {
	local c
	for c in "$@"; do
		run timeout 60 python3 "$T/raw.py" "$c" "$SOCK" 67108864
		[ "$status" -eq 0 ] || { echo "$c: $output"; return 1; }
	done
	kill -0 "$SERVER"
	[ "$(nbdinfo --size "$URI")" = 67108864 ]
	[ "$(sha256sum <"$T/a.raw")" = "$SUM" ]
}

@test "vm-nbd malformed: bad handshakes get NBD_REP_ERR_* or a hang-up" {
	require nbdinfo
	serve_image
	cases client-flags option-magic option-too-long option-huge option-unknown \
	      go-unknown-export go-malformed meta-malformed export-name-unknown
}

@test "vm-nbd malformed: bad requests get EINVAL/ENOSPC or a hang-up" {
	require nbdinfo
	serve_image
	cases request-magic out-of-bounds too-large unknown-command block-status-empty
}

@test "vm-nbd malformed: writes to a read-only export get EPERM" {
	require nbdinfo
	serve_image -r
	cases read-only
}

@test "vm-nbd malformed: clients vanishing mid-packet or mid-request" {
	require nbdinfo
	serve_image
	cases truncated vanish-mid-write vanish-in-flight handshake-vanish
}

@test "vm-nbd malformed: 128 requests in flight are each answered once" {
	require nbdinfo
	serve_image
	cases parallel
}
