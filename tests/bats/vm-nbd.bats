#!/usr/bin/env bats
# vm-nbd against real NBD peers: libnbd's nbdinfo and nbdcopy, QEMU's
# qemu-img and qemu-io, and a hand-written raw-socket client (python3)
# that sends malformed input.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	SOCK=$T/nbd.sock
	URI="nbd+unix:///?socket=$SOCK"
}

teardown() {
	local p
	for p in $(cat "$T/pids" 2>/dev/null); do
		kill "$p" 2>/dev/null || true
	done
	for p in $(cat "$T/pids" 2>/dev/null); do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true	# (qemu-nbd can lose a SIGTERM: helper.bash)
	done
}

wait_for() {
	local i
	for i in $(seq 100); do "$@" && return 0; sleep 0.05; done
	return 1
}

# serve ARGS...: vm-nbd on $SOCK in the background, until it listens.
serve() {
	vm-nbd -k "$SOCK" "$@" >"$T/server.out" 2>"$T/server.err" &
	SERVER=$!
	echo "$SERVER" >>"$T/pids"
	wait_for test -S "$SOCK" || { cat "$T/server.err"; return 1; }
}

# An image with data at 0 (1 MiB of 0x33), 10 MiB (64 KiB of 0x44) and
# 40 MiB (4 KiB of 0x55), holes elsewhere.
mkimage() {
	local fmt=$1 file=$2 size=${3:-64M}
	qemu-img create -q -f "$fmt" "$file" "$size"
	qemu-io -f "$fmt" -c 'write -q -P 0x33 0 1M' -c 'write -q -P 0x44 10M 64k' \
		-c 'write -q -P 0x55 40M 4k' "$file" >/dev/null
}

# map_json URI_OR_FILE [-f fmt]: qemu-img map reduced to start/length/data/zero.
map_json() {
	qemu-img map --output=json "$@" | jq -c '[.[] | {start, length, data, zero}]'
}

@test "vm-nbd: nbdinfo lists the export, its description and every feature" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	serve -x disk -D "test disk" -e 2 -t "$T/a.raw"
	run nbdinfo --list "$URI"
	[ "$status" -eq 0 ]
	[[ "$output" == *'export="disk"'* ]]
	[[ "$output" == *"description: test disk"* ]]
	[[ "$output" == *"export-size: 67108864"* ]]
	[[ "$output" == *"base:allocation"* ]]
	[[ "$output" == *"qemu:allocation-depth"* ]]
	for f in can_cache can_df can_fast_zero can_flush can_fua can_multi_conn can_trim can_zero; do
		[[ "$output" == *"$f: true"* ]] || { echo "$f missing: $output"; return 1; }
	done
	[[ "$output" == *"is_read_only: false"* ]]
	[[ "$output" == *"block_size_maximum: 33554432"* ]]
	[[ "$output" == *"using structured packets"* ]]
}

@test "vm-nbd: nbdinfo --map shows holes and data as the image has them" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	serve -t "$T/a.raw"
	run nbdinfo --map "$URI"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^\ *0\ +1048576\ +0\ +data ]]
	[[ "${lines[1]}" =~ ^\ *1048576\ +9437184\ +3\ +hole,zero ]]
	[[ "${lines[2]}" =~ ^\ *10485760\ +65536\ +0\ +data ]]
	run nbdinfo --map=qemu:allocation-depth "$URI"
	[ "$status" -eq 0 ]
	[[ "$output" == *local* ]]
}

@test "vm-nbd: nbdcopy copies an export out byte for byte" {
	require nbdcopy
	mkimage qcow2 "$T/a.qcow2"
	qemu-img convert -O raw "$T/a.qcow2" "$T/ref.raw"
	serve -t -e 0 "$T/a.qcow2"
	run nbdcopy "$URI" "$T/out.raw"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	cmp "$T/ref.raw" "$T/out.raw"
}

@test "vm-nbd: nbdcopy copies a file in byte for byte" {
	require nbdcopy
	mkimage raw "$T/src.raw"
	qemu-img create -q -f qcow2 "$T/dst.qcow2" 64M
	qemu-io -f qcow2 -c 'write -q -P 0x77 2M 3M' "$T/dst.qcow2" >/dev/null
	serve -t -e 0 "$T/dst.qcow2"
	run nbdcopy "$T/src.raw" "$URI"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	kill "$SERVER"; wait_for bash -c "! kill -0 $SERVER 2>/dev/null"
	qemu-img check -q "$T/dst.qcow2"
	qemu-img compare -q -f raw -F qcow2 "$T/src.raw" "$T/dst.qcow2"
}

@test "vm-nbd: qemu-img convert through nbd:// gives an identical image" {
	mkimage raw "$T/a.raw"
	serve -t -e 0 -f raw "$T/a.raw"
	run qemu-img convert -O qcow2 "$URI" "$T/out.qcow2"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	qemu-img compare -q -f raw -F qcow2 "$T/a.raw" "$T/out.qcow2"
	# and into the export
	qemu-img create -q -f raw "$T/b.raw" 64M
	qemu-io -f raw -c 'write -q -P 0x99 0 64M' "$T/b.raw" >/dev/null
	run qemu-img convert -n -O raw "$T/b.raw" "$URI"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	cmp "$T/a.raw" "$T/b.raw"
}

@test "vm-nbd: qemu-img map through nbd:// matches qemu-img map of the image" {
	mkimage raw "$T/a.raw"
	serve -t -e 0 -f raw "$T/a.raw"
	[ "$(map_json "$URI")" = "$(map_json -f raw "$T/a.raw")" ]
}

@test "vm-nbd: qemu-img map through nbd:// of a qcow2 image shows its data" {
	mkimage qcow2 "$T/a.qcow2"
	serve -t -e 0 "$T/a.qcow2"
	run map_json "$URI"
	[ "$status" -eq 0 ]
	[ "$output" = "$(map_json -U -f qcow2 "$T/a.qcow2")" ]
}

@test "vm-nbd: writes, FUA writes, zeroes, trims and flushes reach the image" {
	mkimage raw "$T/a.raw"
	cp "$T/a.raw" "$T/ref.raw"
	serve -t -e 0 -f raw --discard=unmap "$T/a.raw"
	run qemu-io -f raw -c 'write -q -P 0x11 4M 1M' -c 'write -q -f -P 0x12 6M 64k' \
		-c 'write -q -z 0 512k' -c 'discard -q 10M 64k' -c flush "$URI"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	qemu-io -f raw -c 'write -q -P 0x11 4M 1M' -c 'write -q -P 0x12 6M 64k' \
		-c 'write -q -z 0 512k' -c 'write -q -z 10M 64k' "$T/ref.raw" >/dev/null
	cmp "$T/a.raw" "$T/ref.raw"
}

@test "vm-nbd: -r exports read-only and refuses writes" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	sum=$(sha256sum <"$T/a.raw")
	serve -r -t -f raw "$T/a.raw"
	run nbdinfo "$URI"
	[[ "$output" == *"is_read_only: true"* ]]
	[[ "$output" == *"can_multi_conn: false"* ]]
	run qemu-io -f raw -c 'write -P 0x11 0 4k' "$URI"
	[[ "$output" == *"ermission denied"* || "$output" == *"read-only"* || "$status" -ne 0 ]]
	[ "$(sha256sum <"$T/a.raw")" = "$sum" ]
}

@test "vm-nbd: -s keeps writes in a temporary overlay" {
	mkimage qcow2 "$T/a.qcow2"
	sum=$(sha256sum <"$T/a.qcow2")
	TMPDIR=$T serve -s -t "$T/a.qcow2"
	run qemu-io -f raw -c 'write -q -P 0x66 0 1M' -c 'read -q -P 0x66 0 1M' "$URI"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ "$output" != *"fail"* ]]
	[ "$(sha256sum <"$T/a.qcow2")" = "$sum" ]
	# the overlay is unlinked: nothing left behind in TMPDIR
	[ -z "$(ls "$T" | grep vm-nbd)" ]
}

@test "vm-nbd: -l exports an internal snapshot read-only" {
	require nbdinfo
	mkimage qcow2 "$T/a.qcow2"
	qemu-img snapshot -c snap1 "$T/a.qcow2"
	qemu-img convert -O raw "$T/a.qcow2" "$T/snap.raw"
	qemu-io -f qcow2 -c 'write -q -P 0x99 0 2M' "$T/a.qcow2" >/dev/null
	serve -l snap1 -t "$T/a.qcow2"
	run nbdinfo "$URI"
	[[ "$output" == *"is_read_only: true"* ]]
	nbdcopy "$URI" "$T/out.raw"
	cmp "$T/snap.raw" "$T/out.raw"
}

# mbr FILE: a 32 MiB disk with primary partitions 1 (1 MiB at 1 MiB) and
# 2 (extended, 8 MiB at 4 MiB) holding logical partition 5 (2 MiB at 5 MiB).
mkmbr() {
	python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], 'wb'); f.truncate(32 << 20)
def entry(t, lba, n): return struct.pack('<B3sB3sII', 0, b'\0' * 3, t, b'\0' * 3, lba, n)
mbr = bytearray(512)
mbr[446:462] = entry(0x83, 2048, 2048)
mbr[462:478] = entry(0x05, 8192, 16384)
mbr[510:512] = b'\x55\xaa'
f.seek(0); f.write(mbr)
ebr = bytearray(512)
ebr[446:462] = entry(0x83, 2048, 4096)
ebr[510:512] = b'\x55\xaa'
f.seek(8192 * 512); f.write(ebr)
f.seek(2048 * 512); f.write(b'\x01' * (1 << 20))
f.seek((8192 + 2048) * 512); f.write(b'\x05' * (2 << 20))
PY
}

@test "vm-nbd: -P exports a primary and a logical MBR partition" {
	require nbdinfo
	mkmbr "$T/d.raw"
	serve -P 1 -t -f raw "$T/d.raw"
	[ "$(nbdinfo --size "$URI")" = 1048576 ]
	nbdcopy "$URI" "$T/p1"
	[ "$(tr -d '\001' <"$T/p1" | wc -c)" -eq 0 ]
	kill "$SERVER"; wait_for bash -c "! kill -0 $SERVER 2>/dev/null"
	rm -f "$SOCK"
	serve -P 5 -t -f raw "$T/d.raw"
	[ "$(nbdinfo --size "$URI")" = 2097152 ]
	nbdcopy "$URI" "$T/p5"
	[ "$(tr -d '\005' <"$T/p5" | wc -c)" -eq 0 ]
}

@test "vm-nbd: -P exports a GPT partition" {
	require nbdinfo
	python3 - "$T/g.raw" <<'PY'
import struct, sys
f = open(sys.argv[1], 'wb'); f.truncate(32 << 20)
mbr = bytearray(512)
mbr[446:462] = struct.pack('<B3sB3sII', 0, b'\0' * 3, 0xee, b'\0' * 3, 1, 65535)
mbr[510:512] = b'\x55\xaa'
f.seek(0); f.write(mbr)
hdr = bytearray(512)
hdr[0:8] = b'EFI PART'
struct.pack_into('<IIIIQQQQ16sQIII', hdr, 8, 0x10000, 92, 0, 0, 1, 65535, 34, 65502,
                 b'\x11' * 16, 2, 128, 128, 0)
f.seek(512); f.write(hdr)
def ent(first, last): return b'\xaf' * 16 + b'\x22' * 16 + struct.pack('<QQQ', first, last, 0) + b'\0' * 72
f.seek(1024); f.write(ent(2048, 4095) + ent(4096, 12287))
f.seek(4096 * 512); f.write(b'\x02' * (4 << 20))
PY
	serve -P 2 -t -f raw "$T/g.raw"
	[ "$(nbdinfo --size "$URI")" = 4194304 ]
	nbdcopy "$URI" "$T/p2"
	[ "$(tr -d '\002' <"$T/p2" | wc -c)" -eq 0 ]
}

@test "vm-nbd: -P of a missing partition is a one-line error" {
	mkmbr "$T/d.raw"
	run --separate-stderr vm-nbd -k "$SOCK" -P 3 -f raw "$T/d.raw"
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "vm-nbd: "*"partition 3"* ]]
}

@test "vm-nbd: -e 4 serves four clients in parallel" {
	require nbdcopy
	mkimage raw "$T/a.raw"
	serve -e 4 -t -r -f raw "$T/a.raw"
	for i in 1 2 3 4; do
		nbdcopy --connections=1 "$URI" "$T/out$i" &
		echo $! >"$T/copy$i"
	done
	for i in 1 2 3 4; do wait "$(cat "$T/copy$i")"; cmp "$T/a.raw" "$T/out$i"; done
}

@test "vm-nbd: -e 4 holds a fifth client back until one leaves" {
	mkimage raw "$T/a.raw"
	serve -e 4 -t -r -f raw "$T/a.raw"
	run python3 - "$SOCK" <<'PY'
import socket, sys
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); return s
def greeted(s, t):
    s.settimeout(t)
    try: return len(s.recv(18)) > 0
    except socket.timeout: return False
four = [conn() for _ in range(4)]
assert all(greeted(s, 5) for s in four), "one of four not served"
fifth = conn()
assert not greeted(fifth, 1), "a fifth client was served"
four[0].close()
assert greeted(fifth, 5), "the fifth client was not served after one left"
print("ok")
PY
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
}

@test "vm-nbd: without -t the server exits when its client leaves" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	serve -f raw "$T/a.raw"
	nbdinfo --size "$URI"
	wait_for bash -c "! kill -0 $SERVER 2>/dev/null"
	run wait "$SERVER"
	[ "$status" -eq 0 ]
	[ ! -e "$SOCK" ]
}

@test "vm-nbd: -t keeps serving after clients leave" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	serve -t -f raw "$T/a.raw"
	for i in 1 2 3; do [ "$(nbdinfo --size "$URI")" = 67108864 ]; done
	kill -0 "$SERVER"
}

@test "vm-nbd: --fork returns once serving and --pid-file names the server" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	run vm-nbd --fork --pid-file "$T/pid" -t -k "$SOCK" -f raw "$T/a.raw"
	[ "$status" -eq 0 ]
	pid=$(cat "$T/pid")
	echo "$pid" >>"$T/pids"
	kill -0 "$pid"
	[ "$(nbdinfo --size "$URI")" = 67108864 ]
	kill "$pid"
	wait_for bash -c "! kill -0 $pid 2>/dev/null"
	[ ! -e "$T/pid" ]
}

@test "vm-nbd: --fork reports an open error in the parent" {
	run --separate-stderr vm-nbd --fork -k "$SOCK" "$T/missing.raw"
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "vm-nbd: "*missing.raw* ]]
}

@test "vm-nbd: serves TCP on IPv4 and IPv6" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	port=$((20000 + RANDOM % 20000))
	vm-nbd -p "$port" -t -e 0 -f raw "$T/a.raw" >"$T/out" 2>"$T/err" &
	echo $! >>"$T/pids"
	wait_for nbdinfo --size "nbd://127.0.0.1:$port"
	[ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 67108864 ]
	[ "$(nbdinfo --size "nbd://[::1]:$port")" = 67108864 ]
}

@test "vm-nbd: the unix socket is created with mode 0600" {
	mkimage raw "$T/a.raw"
	serve -t -f raw "$T/a.raw"
	[ "$(stat -c %a "$SOCK")" = 600 ]
}

@test "vm-nbd: --fd serves an inherited connected socket" {
	mkimage raw "$T/a.raw"
	run python3 - "$T/a.raw" <<'PY'
import os, socket, struct, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(['vm-nbd', '--fd', str(b.fileno()), '-f', 'raw', sys.argv[1]],
                     pass_fds=[b.fileno()])
b.close()
def recvn(n):
    d = b''
    while len(d) < n:
        k = a.recv(n - len(d)); assert k; d += k
    return d
assert recvn(18)[:8] == b'NBDMAGIC'
a.sendall(struct.pack('>I', 3))
a.sendall(b'IHAVEOPT' + struct.pack('>II', 7, 6) + b'\0' * 6)
while True:
    magic, o, t, n = struct.unpack('>QIII', recvn(20)); recvn(n)
    if t == 1: break
a.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, 5, 0, 512))
m, e, c = struct.unpack('>IIQ', recvn(16)); data = recvn(512)
assert e == 0 and c == 5 and data == b'\x33' * 512
a.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 2, 6, 0, 0))
a.close()
print('exit', p.wait(10))
PY
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[ "$output" = "exit 0" ]
}

@test "vm-nbd: --fd N,M serves each socket as a connection, multi-conn, until both close" {
	mkimage raw "$T/a.raw"
	run python3 - "$T/a.raw" <<'PY'
import socket, struct, subprocess, sys, time
pairs = [socket.socketpair() for _ in range(2)]
fds = [b.fileno() for _, b in pairs]
p = subprocess.Popen(['vm-nbd', '--fd', '%d,%d' % tuple(fds), '-f', 'raw', sys.argv[1]],
                     pass_fds=fds)
for _, b in pairs: b.close()
def recvn(a, n):
    d = b''
    while len(d) < n:
        k = a.recv(n - len(d)); assert k; d += k
    return d
def handshake(a):
    assert recvn(a, 18)[:8] == b'NBDMAGIC'
    a.sendall(struct.pack('>I', 3))
    a.sendall(b'IHAVEOPT' + struct.pack('>II', 7, 6) + b'\0' * 6)
    flags = None
    while True:
        magic, o, t, n = struct.unpack('>QIII', recvn(a, 20)); d = recvn(a, n)
        if t == 3 and struct.unpack('>H', d[:2])[0] == 0:
            flags = struct.unpack('>H', d[10:12])[0]
        if t == 1: return flags
def read(a, cookie):
    a.sendall(struct.pack('>IHHQQI', 0x25609513, 0, 0, cookie, 0, 512))
    m, e, c = struct.unpack('>IIQ', recvn(a, 16)); data = recvn(a, 512)
    return e == 0 and c == cookie and data == b'\x33' * 512
conns = [a for a, _ in pairs]
print('multi-conn', [bool(handshake(a) & (1 << 8)) for a in conns])
print('reads', [read(a, 5 + i) for i, a in enumerate(conns)])
conns[0].close()
time.sleep(0.3)
print('after one closed', p.poll(), read(conns[1], 9))
conns[1].close()
print('exit', p.wait(10))
PY
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	echo "$output"
	[ "${lines[0]}" = "multi-conn [True, True]" ]
	[ "${lines[1]}" = "reads [True, True]" ]
	[ "${lines[2]}" = "after one closed None True" ]
	[ "${lines[3]}" = "exit 0" ]
	run vm-nbd --fd 0,77 -f raw "$T/a.raw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"Invalid file descriptor '77'"* ]]
}

@test "vm-nbd: systemd socket activation with LISTEN_FDS" {
	require systemd-socket-activate nbdinfo
	mkimage raw "$T/a.raw"
	systemd-socket-activate -l "$SOCK" vm-nbd -t -f raw "$T/a.raw" >"$T/out" 2>"$T/err" &
	echo $! >>"$T/pids"
	wait_for test -S "$SOCK"
	[ "$(nbdinfo --size "$URI")" = 67108864 ]
	[ "$(nbdinfo --size "$URI")" = 67108864 ]
}

@test "vm-nbd: -x names the export and other names are refused" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	serve -x disk -t -f raw "$T/a.raw"
	[ "$(nbdinfo --size "nbd+unix:///disk?socket=$SOCK")" = 67108864 ]
	run nbdinfo --size "nbd+unix:///other?socket=$SOCK"
	[ "$status" -ne 0 ]
}

@test "vm-nbd: -o serves the image from an offset" {
	require nbdcopy
	mkimage raw "$T/a.raw"
	serve -o 10M -t -f raw "$T/a.raw"
	[ "$(nbdinfo --size "$URI")" = $((54 << 20)) ]
	nbdcopy "$URI" "$T/out"
	tail -c +$(((10 << 20) + 1)) "$T/a.raw" | cmp - "$T/out"
}

@test "vm-nbd: qemu:allocation-depth tells the layers of a backing chain apart" {
	require nbdinfo
	qemu-img create -q -f qcow2 "$T/base.qcow2" 8M
	qemu-io -f qcow2 -c 'write -q -P 1 0 1M' "$T/base.qcow2" >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/top.qcow2" 8M
	qemu-io -f qcow2 -c 'write -q -P 2 2M 1M' "$T/top.qcow2" >/dev/null
	serve -t "$T/top.qcow2"
	run nbdinfo --map=qemu:allocation-depth "$URI"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^\ *0\ +1048576\ +2\ +backing\ depth\ 2 ]]
	[[ "${lines[1]}" =~ ^\ *1048576\ +1048576\ +0\ +(absent|unallocated) ]]
	[[ "${lines[2]}" =~ ^\ *2097152\ +1048576\ +1\ +local ]]
}

@test "vm-nbd: bad options and arguments are one line and status 1" {
	for args in "--cache=bogus a" "-P 0 a" "-e -1 a" "-p 70000 a" "--discard=x a" \
		    "--detect-zeroes=unmap a" "-k s -p 1 a" "" "a b"; do
		run --separate-stderr vm-nbd $args
		[ "$status" -eq 1 ] || { echo "$args: status $status"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$args: $stderr"; return 1; }
		[[ "$stderr" == "vm-nbd: "* ]]
	done
}

@test "vm-nbd: a missing image is a one-line error" {
	run --separate-stderr vm-nbd -k "$SOCK" "$T/none.qcow2"
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "vm-nbd: "*none.qcow2* ]]
}

@test "vm-nbd: --image-opts opens driver=,file.filename=" {
	require nbdinfo
	mkimage qcow2 "$T/a.qcow2"
	serve -t --image-opts "driver=qcow2,file.filename=$T/a.qcow2"
	[ "$(nbdinfo --size "$URI")" = 67108864 ]
	nbdcopy "$URI" "$T/out.raw"
	qemu-img compare -q -U -f raw -F qcow2 "$T/out.raw" "$T/a.qcow2"
}

@test "vm-nbd: --cache=none and --cache=writethrough serve the same bytes" {
	require nbdcopy
	mkimage raw "$T/a.raw"
	for mode in none writethrough directsync unsafe; do
		rm -f "$SOCK"
		serve -t --cache=$mode -f raw "$T/a.raw"
		nbdcopy "$URI" "$T/out.$mode"
		cmp "$T/a.raw" "$T/out.$mode"
		kill "$SERVER"; wait_for bash -c "! kill -0 $SERVER 2>/dev/null"
	done
}

@test "vm-nbd: --detect-zeroes=unmap turns zero writes into holes" {
	require nbdinfo
	qemu-img create -q -f qcow2 "$T/a.qcow2" 16M
	qemu-io -f qcow2 -c 'write -q -P 7 0 4M' "$T/a.qcow2" >/dev/null
	serve -t --discard=unmap --detect-zeroes=unmap "$T/a.qcow2"
	qemu-io -f raw -c 'write -q -P 0 0 4M' "$URI" >/dev/null
	run nbdinfo --map "$URI"
	[[ "${lines[0]}" =~ ^\ *0\ +16777216\ +3\ +hole,zero ]] || { echo "$output"; return 1; }
}

@test "vm-nbd: -b binds one address only" {
	require nbdinfo
	mkimage raw "$T/a.raw"
	port=$((20000 + RANDOM % 20000))
	vm-nbd -b 127.0.0.1 -p "$port" -t -f raw "$T/a.raw" >"$T/out" 2>"$T/err" &
	echo $! >>"$T/pids"
	wait_for nbdinfo --size "nbd://127.0.0.1:$port"
	run nbdinfo --size "nbd://[::1]:$port"
	[ "$status" -ne 0 ]
}

@test "vm-nbd: --object secret is accepted and a bad object refused" {
	mkimage raw "$T/a.raw"
	serve -t --object secret,id=s0,data=pw -f raw "$T/a.raw"
	run --separate-stderr vm-nbd -k "$T/x.sock" --object bogus,id=x -f raw "$T/a.raw"
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
}

@test "vm-img reads, maps and converts a qemu-nbd export through our client" {
	require qemu-nbd
	command -v vm-img >/dev/null || skip "vm-img is not built"
	mkimage qcow2 "$T/a.qcow2"
	qemu-nbd -k "$SOCK" -t -e 0 -f qcow2 "$T/a.qcow2" >"$T/q.out" 2>&1 &
	echo $! >>"$T/pids"
	wait_for test -S "$SOCK"
	run vm-img info "$URI"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ "$output" == *"virtual size: 64 MiB (67108864 bytes)"* ]]
	[ "$(vm-img map --output=json "$URI" | jq -c '[.[] | {start, length, data, zero}]')" = \
	  "$(map_json -U -f qcow2 "$T/a.qcow2")" ]
	vm-img convert -O qcow2 "$URI" "$T/out.qcow2"
	qemu-img compare -q -U "$T/a.qcow2" "$T/out.qcow2"
}

@test "vm-img converts into a vm-nbd export" {
	command -v vm-img >/dev/null || skip "vm-img is not built"
	mkimage qcow2 "$T/src.qcow2"
	qemu-img create -q -f raw "$T/dst.raw" 64M
	serve -t -e 0 -f raw "$T/dst.raw"
	run vm-img info -f raw "$URI"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	run vm-img convert -n -O raw "$T/src.qcow2" "$URI"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	qemu-img compare -q -U -F raw "$T/src.qcow2" "$T/dst.raw"
	# a format layered over the export is refused in one line
	run --separate-stderr vm-img info -f qcow2 "$URI"
	[ "$status" -eq 1 ] && [ "${#stderr_lines[@]}" -eq 1 ] && [[ "$stderr" == *"not supported"* ]]
}
