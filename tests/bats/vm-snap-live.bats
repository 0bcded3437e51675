#!/usr/bin/env bats
# Live VM snapshots: savevm/loadvm/delvm in vm-run's monitor, -loadvm, and
# vm-snap save|load|del --monitor.  The guest is tests/guest/hw-snap, a
# multiboot program with a counter in RAM and a disk sector it writes and
# reads back on request (n: count, w: write the count to sector 0, r: read
# it back, q: leave), driven over a serial unix socket.

load helper

HW=$VM_BUILD/tests/guest

setup() {
	T=$BATS_TEST_TMPDIR
	[ -f "$HW/hw-snap.elf" ] || skip "tests/guest/hw-snap.elf is not built"
	require qemu-img python3
	qemu-img create -q -f qcow2 "$T/disk.qcow2" 16M
	cat >"$T/ser.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(60)
for k in sys.argv[2]:
    s.sendall(k.encode())
    if k == 'q':
        break
    line = b''
    while not line.endswith(b'\n'):
        b = s.recv(1)
        if not b:
            sys.exit('serial closed')
        line += b
    sys.stdout.write(line.decode())
EOF
}

teardown() {
	local pid
	pid=$(cat "$T/vm.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

# vm_start ARGS...: hw-snap on the JIT with the disk as IDE 0, serial on
# $T/ser.sock, QMP on $T/qmp.sock.
vm_start() {
	vm-run -accel "${ACCEL:-jit}" -m 64 -kernel "$HW/hw-snap.elf" -display none -nodefaults \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-serial "unix:$T/ser.sock,server=on,wait=off" \
		-qmp "unix:$T/qmp.sock,server=on,wait=off" \
		-drive "file=$T/disk.qcow2,if=ide,index=0" "$@" >"$T/vm.log" 2>&1 &
	echo $! >"$T/vm.pid"
	for _ in $(seq 1 100); do
		[ -S "$T/ser.sock" ] && [ -S "$T/qmp.sock" ] && return 0
		kill -0 "$(cat "$T/vm.pid")" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/vm.log"
	return 1
}

# keys K...: type keys on the guest's serial port, one answer line each.
keys() {
	timeout 60 python3 "$T/ser.py" "$T/ser.sock" "$1"
}

# vm_gone: wait until vm-run (and with it its vm-nbd children) has ended.
vm_gone() {
	local pid
	pid=$(cat "$T/vm.pid")
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" || true
	rm -f "$T/vm.pid"
}

# vm_quit: the guest leaves through isa-debug-exit (status 33).
vm_quit() {
	local pid
	pid=$(cat "$T/vm.pid")
	python3 "$T/ser.py" "$T/ser.sock" q
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	wait "$pid" || vm_status=$?
	rm -f "$T/vm.pid"
}

# The host offset of the first cluster of the first snapshot's VM-state
# area (the guest offsets past the virtual size, from the first L1 entry
# beyond it; qcow2 spec: header, snapshot table entry).
vmstate_cluster() {
	python3 - "$1" <<'EOF'
import struct, sys
f = open(sys.argv[1], 'rb')
h = f.read(72)
cb = struct.unpack('>I', h[20:24])[0]
size = struct.unpack('>Q', h[24:32])[0]
f.seek(struct.unpack('>Q', h[64:72])[0])
l1 = struct.unpack('>Q', f.read(8))[0]
per = 1 << (cb + cb - 3)
idx = (size + per - 1) // per
f.seek(l1 + 8 * idx)
l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2)
print(struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00)
EOF
}

@test "savevm then loadvm brings back the guest's counter and its disk" {
	vm_start
	[ "$(keys nnnw)" = $'count=1\ncount=2\ncount=3\nwrote=3' ]
	run vm-mon "$T/qmp.sock" savevm first
	[ "$status" -eq 0 ] && [ -z "$output" ]
	[ "$(keys nnwr)" = $'count=4\ncount=5\nwrote=5\ndisk=5' ]
	run vm-mon "$T/qmp.sock" loadvm first
	[ "$status" -eq 0 ] && [ -z "$output" ]
	# RAM, registers and the disk are back where they were
	[ "$(keys rn)" = $'disk=3\ncount=4' ]
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: running" ]
	vm_quit
	[ "$vm_status" -eq 33 ]
	run qemu-img snapshot -l "$T/disk.qcow2"
	[ "$status" -eq 0 ]
	[[ "${lines[2]}" =~ ^1\ +first\ +[0-9.]+\ (KiB|MiB)\  ]]
	run qemu-img check "$T/disk.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *"No errors were found"* ]]
}

@test "info snapshots lists the snapshot in QEMU's layout and delvm removes it" {
	vm_start
	keys nn >/dev/null
	vm-mon "$T/qmp.sock" savevm one
	run vm-mon "$T/qmp.sock" info snapshots
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "List of snapshots present on all disks:" ]
	[ "${lines[1]}" = "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT" ]
	[[ "${lines[2]}" =~ ^--\ +one\ +[0-9.]+\ KiB\ [0-9-]+\ [0-9:]+\ [0-9:.]+ ]]
	# savevm again with the same name replaces the snapshot
	vm-mon "$T/qmp.sock" savevm one
	run vm-mon "$T/qmp.sock" info snapshots
	[ "${#lines[@]}" -eq 3 ]
	run vm-mon "$T/qmp.sock" delvm one
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info snapshots
	[ "$output" = "There is no snapshot available." ]
	vm_quit
	run qemu-img snapshot -l "$T/disk.qcow2"
	[ -z "$output" ]
	qemu-img check -q "$T/disk.qcow2"
}

@test "savevm without a name uses QEMU's vm-YYYYMMDDHHMMSS" {
	vm_start
	vm-mon "$T/qmp.sock" savevm
	run vm-mon "$T/qmp.sock" info snapshots
	[[ "${lines[2]}" =~ ^--\ +vm-[0-9]{14}\  ]]
	vm_quit
}

@test "vm-snap save, load and del work through the monitor" {
	vm_start
	keys nnw >/dev/null
	run vm-snap save --monitor "$T/qmp.sock" before
	[ "$status" -eq 0 ] && [ -z "$output" ]
	[ "$(keys nwn)" = $'count=3\nwrote=3\ncount=4' ]
	run vm-snap load --monitor "$T/qmp.sock" before
	[ "$status" -eq 0 ] && [ -z "$output" ]
	[ "$(keys rn)" = $'disk=2\ncount=3' ]
	run vm-snap load --monitor "$T/qmp.sock" nosuch
	[ "$status" -eq 1 ]
	[ "$output" = "vm-snap: Snapshot 'nosuch' does not exist in one or more devices" ]
	run vm-snap del --monitor "$T/qmp.sock" before
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info snapshots
	[ "$output" = "There is no snapshot available." ]
	vm_quit
}

@test "vm-snap save needs --monitor, and a monitor nobody serves is one line" {
	run vm-snap save snap
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == "vm-snap: save: expected --monitor SOCKET [NAME]"* ]]
	run vm-snap load --monitor "$T/none.sock" x
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == "vm-snap: "* ]]
}

@test "vm-run -loadvm starts the machine from the snapshot" {
	vm_start
	keys nnnnw >/dev/null
	vm-snap save --monitor "$T/qmp.sock" four
	keys nw >/dev/null
	vm_quit
	rm -f "$T/ser.sock" "$T/qmp.sock"
	vm_start -loadvm four
	[ "$(keys rn)" = $'disk=4\ncount=5' ]
	vm_quit
	[ "$vm_status" -eq 33 ]
}

@test "a corrupt VM state is refused with a clear error, never a crash" {
	vm_start
	keys nnw >/dev/null
	vm-mon "$T/qmp.sock" savevm good
	vm_quit
	off=$(vmstate_cluster "$T/disk.qcow2")
	[ "$off" -gt 0 ]
	printf 'XXXX' | dd of="$T/disk.qcow2" bs=1 seek=$((off + 200)) conv=notrunc status=none
	rm -f "$T/ser.sock" "$T/qmp.sock"
	run timeout 60 vm-run -accel jit -m 64 -kernel "$HW/hw-snap.elf" -display none -nodefaults \
		-drive "file=$T/disk.qcow2,if=ide,index=0" -loadvm good
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == "vm-run: "*"checksum mismatch"* ]]
	# through the monitor: an error, found before anything changed, so
	# the guest runs on with its RAM and disk as they were
	vm_start
	[ "$(keys nnnw)" = $'count=1\ncount=2\ncount=3\nwrote=3' ]
	run vm-mon "$T/qmp.sock" loadvm good
	[ "$status" -eq 1 ]
	[[ "$output" == *"checksum mismatch"* ]]
	[[ "$output" != *stopped* ]]
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: running" ]
	[ "$(keys rn)" = $'disk=3\ncount=4' ]
	vm-mon "$T/qmp.sock" quit
	vm_gone
	qemu-img check -q "$T/disk.qcow2"
}

@test "a writable raw disk makes savevm fail as QEMU's does" {
	qemu-img create -q -f raw "$T/raw.img" 1M
	vm_start -drive "file=$T/raw.img,format=raw,if=ide,index=1"
	run vm-mon "$T/qmp.sock" savevm x
	[ "$status" -eq 1 ]
	[ "$output" = "vm-mon: Device 'ide0-hd1' is writable but does not support snapshots" ]
	run vm-snap save --monitor "$T/qmp.sock" x
	[ "$status" -eq 1 ]
	[ "$output" = "vm-snap: Device 'ide0-hd1' is writable but does not support snapshots" ]
	vm_quit
	run qemu-img snapshot -l "$T/disk.qcow2"
	[ -z "$output" ]
}

@test "loadvm of a snapshot that does not exist leaves the guest running" {
	vm_start
	keys n >/dev/null
	run vm-mon "$T/qmp.sock" loadvm nothere
	[ "$status" -eq 1 ]
	[ "$output" = "vm-mon: Snapshot 'nothere' does not exist in one or more devices" ]
	[ "$(keys n)" = "count=2" ]
	vm_quit
}

# The Debian test guest: a shell on the serial port (one boot).
@test "the Debian guest: /tmp/x and the disk come back as they were at savevm" {
	load ../guest/guest
	guest_require
	cat >"$T/sh.py" <<'EOF2'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(float(sys.argv[2]))
# argv[3]: a shell line (or "" to only wait); the answer ends at the
# marker, which the terminal's echo of the line cannot contain.
mark = 'MARK-%d' % (len(sys.argv[3]) + 1)
if sys.argv[3]:
    s.sendall(('%s; echo MARK-$((%d+1))\n' % (sys.argv[3], len(sys.argv[3]))).encode())
else:
    mark = 'VM-SHELL-42'
buf = b''
while mark.encode() not in buf:
    d = s.recv(4096)
    if not d:
        sys.exit('serial closed: %r' % buf[-300:])
    buf += d
out = buf.decode(errors='replace').replace('\r', '').split('\n')
print('\n'.join(l for l in out[1:] if l and 'MARK' not in l) if sys.argv[3] else 'ready')
EOF2
	local cmd='echo A > /tmp/x; echo VM-SHELL-$((40+2)); while read -r l; do eval "$l"; done'
	vm-run -m 256 -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" -display none -nodefaults \
		-append "console=ttyS0 quiet vmtest.cmdb64=$(printf %s "$cmd" | base64 -w0)" \
		-serial "unix:$T/ser.sock,server=on,wait=off" \
		-qmp "unix:$T/qmp.sock,server=on,wait=off" \
		-drive "file=$T/disk.qcow2,if=virtio" >"$T/vm.log" 2>&1 &
	echo $! >"$T/vm.pid"
	for _ in $(seq 1 100); do [ -S "$T/ser.sock" ] && break; sleep 0.1; done
	run timeout 700 python3 "$T/sh.py" "$T/ser.sock" 600 ""
	[ "$output" = ready ] || skip "the guest did not reach its shell: $output"
	local dd='dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null'
	python3 "$T/sh.py" "$T/ser.sock" 60 "echo A | $dd"
	run vm-snap save --monitor "$T/qmp.sock" guest
	[ "$status" -eq 0 ]
	run python3 "$T/sh.py" "$T/ser.sock" 60 "echo B > /tmp/x; echo B | $dd; cat /tmp/x"
	[ "$output" = B ]
	run vm-snap load --monitor "$T/qmp.sock" guest
	[ "$status" -eq 0 ]
	run python3 "$T/sh.py" "$T/ser.sock" 60 \
		"cat /tmp/x; sync; echo 3 >/proc/sys/vm/drop_caches; head -c 1 /dev/vda; echo"
	[ "$output" = $'A\nA' ]
	# the guest goes on: its timers and the serial port still work
	run python3 "$T/sh.py" "$T/ser.sock" 60 "sleep 1; echo alive"
	[ "$output" = alive ]
	vm-mon "$T/qmp.sock" quit
	vm_gone
	run qemu-img snapshot -l "$T/disk.qcow2"
	[[ "${lines[2]}" =~ ^1\ +guest\ +[0-9.]+\ MiB\  ]]
	qemu-img check -q "$T/disk.qcow2"
}

# jobs: the query-jobs reply once job $1 has concluded.
jobs_when_concluded() {
	local out
	for _ in $(seq 1 100); do
		out=$(vm-mon --json "$T/qmp.sock" '{"execute": "query-jobs"}')
		[[ "$out" =~ \"id\":\ ?\"$1\"[^}]*\"status\":\ ?\"concluded\" ]] && break
		sleep 0.1
	done
	echo "$out"
}

@test "QMP snapshot-save and snapshot-load run as jobs, listed until job-dismiss" {
	vm_start
	keys nw >/dev/null
	run vm-mon --json "$T/qmp.sock" '{"execute": "snapshot-save", "arguments": {"job-id": "s1",
		"tag": "qmp", "vmstate": "ide0-hd0", "devices": ["ide0-hd0"]}}'
	[ "$status" -eq 0 ]
	run jobs_when_concluded s1
	[[ "$output" == *'"type": "snapshot-save"'* || "$output" == *'"type":"snapshot-save"'* ]]
	[[ "$output" != *error* ]]
	vm-mon --json "$T/qmp.sock" '{"execute": "job-dismiss", "arguments": {"id": "s1"}}'
	[ "$(keys nw)" = $'count=2\nwrote=2' ]
	vm-mon --json "$T/qmp.sock" '{"execute": "snapshot-load", "arguments": {"job-id": "l1",
		"tag": "qmp", "vmstate": "ide0-hd0", "devices": ["ide0-hd0"]}}'
	run jobs_when_concluded l1
	[[ "$output" != *error* ]]
	[ "$(keys rn)" = $'disk=1\ncount=2' ]
	# a job that fails concludes with its error
	vm-mon --json "$T/qmp.sock" '{"execute": "snapshot-load", "arguments": {"job-id": "l2",
		"tag": "none", "vmstate": "ide0-hd0", "devices": ["ide0-hd0"]}}'
	run jobs_when_concluded l2
	[[ "$output" == *"Snapshot 'none' does not exist"* ]]
	run vm-mon --json "$T/qmp.sock" '{"execute": "snapshot-save", "arguments": {"job-id": "x",
		"tag": "t", "vmstate": "ide0-hd0", "devices": ["nodisk"]}}'
	[[ "$output" == *GenericError* || "$status" -ne 0 ]]
	vm_quit
	run qemu-img snapshot -l "$T/disk.qcow2"
	[[ "${lines[2]}" =~ ^1\ +qmp\  ]]
}

@test "savevm and loadvm on KVM, where KVM runs the test program" {
	[ -w /dev/kvm ] || skip "no /dev/kvm"
	run timeout 20 vm-run -accel kvm -kernel "$HW/hw-hello.elf" -nographic \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null
	[ "$status" -eq 33 ] || skip "KVM cannot run the test program here"
	ACCEL=kvm vm_start
	[ "$(keys nnw)" = $'count=1\ncount=2\nwrote=2' ]
	vm-mon "$T/qmp.sock" savevm k
	[ "$(keys nw)" = $'count=3\nwrote=3' ]
	vm-mon "$T/qmp.sock" loadvm k
	[ "$(keys rn)" = $'disk=2\ncount=3' ]
	vm_quit
	[ "$vm_status" -eq 33 ]
}

@test "vm-nbd's control channel answers malformed requests with one ERROR line" {
	cat >"$T/ctl.py" <<'EOF2'
import socket, struct, subprocess, sys
a, b = socket.socketpair()
c, d = socket.socketpair()
p = subprocess.Popen(['vm-nbd', '--fd', str(b.fileno()), '--control-fd=%d' % d.fileno(),
                      sys.argv[1]], pass_fds=[b.fileno(), d.fileno()])
b.close(); d.close()
c.settimeout(20)
def call(raw):
    c.sendall(struct.pack('>I', len(raw)) + raw)
    n = struct.unpack('>I', c.recv(4, socket.MSG_WAITALL))[0]
    r = b''
    while len(r) < n:
        r += c.recv(n - len(r))
    print(r.decode(errors='replace').rstrip('\n'))
call(b'no newline')
call(b'frobnicate\n')
call(b'resize lots\n')
call(b'vmstate-read 0\n')
call(b'snapshot-save\n')
call(b'snapshot-load nosuch\n')
call(b'vmstate-write 0\nstate')
call(b'snapshot-save with%20space 5 1700000000 0 0\n')
call(b'snapshot-list\n')
c.sendall(struct.pack('>I', 0xffffffff))   # too long: the channel closes
print('closed' if c.recv(1) == b'' else 'open')
a.close()
print('exit', p.wait(timeout=20))
EOF2
	run timeout 60 python3 "$T/ctl.py" "$T/disk.qcow2"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "ERROR control request without a command line" ]
	[ "${lines[1]}" = "ERROR unknown control command 'frobnicate'" ]
	[ "${lines[2]}" = "ERROR bad size 'lots'" ]
	[ "${lines[3]}" = "ERROR bad vmstate-read arguments" ]
	[ "${lines[4]}" = "ERROR bad snapshot-save arguments" ]
	[[ "${lines[5]}" == "ERROR "*"nosuch"* ]]
	[ "${lines[6]}" = "OK" ]
	[ "${lines[7]}" = "OK" ]
	[ "${lines[8]}" = "OK" ]
	[ "${lines[9]}" = "1 with%20space 5 1700000000 0 0" ]
	[ "${lines[10]}" = "closed" ]
	[ "${lines[11]}" = "exit 0" ]
	run qemu-img snapshot -l "$T/disk.qcow2"
	[[ "${lines[2]}" =~ ^1\ +with\ space\  ]]
	qemu-img check -q "$T/disk.qcow2"
}
