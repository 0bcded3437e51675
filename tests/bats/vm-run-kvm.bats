#!/usr/bin/env bats
# vm-run's KVM accelerator with -machine kernel_irqchip=on (KVM's
# in-kernel PIC, IOAPIC, local APICs and PIT; ioeventfd doorbells and
# irqfd interrupts for virtio) and =off (lib/hw's chips in user space).
# The freestanding program tests/guest/hw-kvm.c checks PIT, IOAPIC and
# local APIC timer interrupts, port 0x61, the second CPU's start and
# interrupt-driven virtio-blk reads of a known pattern; the -d virtio log
# shows which doorbell path each request took.

load helper

HW=$VM_BUILD/tests/guest
DX="-device isa-debug-exit,iobase=0xf4,iosize=0x04"

setup() {
	T=$BATS_TEST_TMPDIR
}

# kvm_works: /dev/kvm usable by the multiboot test programs.
kvm_works() {
	[ -w /dev/kvm ] || return 1
	timeout 20 vm-run -accel kvm -kernel "$HW/hw-hello.elf" $DX -nographic </dev/null >/dev/null 2>&1
	[ $? -eq 33 ]
}

need_kvm() {
	[ -e /dev/kvm ] || skip "no /dev/kvm"
	kvm_works || skip "/dev/kvm cannot run the test programs here"
}

# A disk whose sector i begins with "KVMSECT" and i in 8 digits.
pattern_disk() {
	python3 -c '
import sys
b = bytearray(16384 * 512)
for i in range(16384):
    t = b"KVMSECT%08d" % i
    b[i * 512:i * 512 + len(t)] = t
open(sys.argv[1], "wb").write(b)' "$1"
}

# run_hwkvm ACCEL-ARGS...: hw-kvm with -smp 2 and the pattern disk,
# serial output in $T/out, the -d virtio,int log in $T/log.
run_hwkvm() {
	pattern_disk "$T/disk.img"
	run timeout 60 vm-run "$@" -smp 2 -d virtio,int -kernel "$HW/hw-kvm.elf" $DX -nographic \
		-drive file="$T/disk.img",if=virtio,format=raw,readonly=on </dev/null
	printf '%s\n' "$output" | grep -a -v '^vm-run: ' >"$T/out" || true
	printf '%s\n' "$output" | grep -a '^vm-run: ' >"$T/log" || true
	cat "$T/out"
}

check_all_passed() {
	[ "$status" -eq 33 ]
	! grep -q '^not ok' "$T/out"
	grep -q '^1\.\.12$' "$T/out"
	grep -q 'PIT interrupts through the IOAPIC' "$T/out"
	grep -q '^ok .* local APIC one-shot timer' "$T/out"
	grep -q '^ok .* start the second CPU' "$T/out"
	grep -q '^ok .* virtio-blk reads 64 sectors of the known pattern' "$T/out"
	grep -q '^ok .* one MSI-X message each' "$T/out"
}

@test "kvm kernel_irqchip=on: PIT, IOAPIC, APIC timer, -smp 2 and virtio-blk pass in hw-kvm" {
	need_kvm
	run_hwkvm -accel kvm -machine pc,kernel_irqchip=on
	check_all_passed
	grep -q 'in-kernel PIC, IOAPIC, local APICs and PIT' "$T/log"
}

@test "kvm kernel_irqchip=on: virtio doorbells go through ioeventfd, MSI-X through irqfd, INTx through KVM_IRQ_LINE" {
	need_kvm
	run_hwkvm -accel kvm,kernel-irqchip=on
	check_all_passed
	grep -q 'kvm: ioeventfd at 0x' "$T/log"
	# no resampling irqfd for INTx: the kernel raises those from a work
	# queue, which a loaded host can hold for seconds
	! grep -q 'resampled at EOI' "$T/log"
	# MSI-X vector 0 goes through an irqfd whose GSI is routed to its message
	grep -q 'kvm: irqfd on GSI 2[4-9] (MSI)' "$T/log"
	grep -q 'kvm: GSI 2[4-9] routed to MSI 0xfee00000 data 0x33' "$T/log"
	[ "$(grep -c 'virtio-blk: notify queue 0 (ioeventfd)' "$T/log")" -eq 128 ]
	# no doorbell left the guest for user space
	[ "$(grep -c 'notify queue .* (exit)' "$T/log")" -eq 0 ]
	# and no interrupt went through lib/hw's APIC
	! grep -q 'interrupt vector' "$T/log"
}

@test "kvm kernel_irqchip=off: the same program passes with lib/hw's chips and userspace doorbells" {
	need_kvm
	run_hwkvm -accel kvm -machine kernel_irqchip=off
	check_all_passed
	! grep -q 'in-kernel PIC' "$T/log"
	! grep -q 'ioeventfd' "$T/log"
	[ "$(grep -c 'virtio-blk: notify queue 0 (exit)' "$T/log")" -eq 128 ]
	grep -q 'interrupt vector 0x32' "$T/log"
}

@test "kvm: a machine reset puts the in-kernel chips and the second CPU back to power-on" {
	need_kvm
	pattern_disk "$T/disk.img"
	for ic in on off split; do
		run timeout 60 vm-run -accel kvm -machine kernel_irqchip=$ic -smp 2 -kernel "$HW/hw-kvm.elf" \
			-append reboot $DX -nographic -drive file="$T/disk.img",if=virtio,format=raw,readonly=on </dev/null
		echo "== kernel_irqchip=$ic"; echo "$output"
		[ "$status" -eq 33 ]
		[[ "$output" == *"# after the reset"* ]]
		[[ "$output" != *"not ok"* ]]
		[[ "$output" == *"ok 8 - INIT + startup IPI start the second CPU at 0x8000, once"* ]]
	done
}

@test "kvm kernel_irqchip=on: a guest idle in HLT with in-kernel timers is not taken for a stuck one" {
	need_kvm
	# the watchdog stops a KVM guest with no sign of progress in its
	# first 10 s; this one only halts and takes interrupts, no exits
	run --separate-stderr timeout 14 vm-run -accel kvm -machine kernel_irqchip=on \
		-kernel "$HW/hw-kvm.elf" -append idle $DX -nographic </dev/null
	echo "$stderr"
	[ "$status" -eq 124 ]
	[[ "$stderr" != *"no progress"* ]]
}

@test "kvm: kernel_irqchip is on by default, as in QEMU's pc machine" {
	need_kvm
	run timeout 30 vm-run -accel kvm -d int -kernel "$HW/hw-hello.elf" $DX -nographic </dev/null
	[ "$status" -eq 33 ]
	[[ "$output" == *"in-kernel PIC, IOAPIC, local APICs and PIT"* ]]
}

@test "jit: kernel_irqchip=on is accepted and ignored, as QEMU does under TCG" {
	run_hwkvm -accel jit -machine pc,kernel_irqchip=on
	check_all_passed
	! grep -q 'in-kernel PIC' "$T/log"
	! grep -q 'ioeventfd' "$T/log"
}

@test "a bad kernel_irqchip value is one line on stderr and exit 1" {
	run --separate-stderr vm-run -machine pc,kernel_irqchip=maybe -kernel "$HW/hw-hello.elf"
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: -machine: kernel_irqchip=maybe: want on, off or split" ]
	run --separate-stderr vm-run -accel kvm,kernel-irqchip=2 -kernel "$HW/hw-hello.elf"
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: -accel: kernel-irqchip=2: want on, off or split" ]
	run --separate-stderr vm-run -accel kvm,irqchip=on -kernel "$HW/hw-hello.elf"
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: -accel kvm,irqchip=on: invalid parameter 'irqchip'" ]
}

@test "kvm kernel_irqchip=split: KVM's local APICs with lib/hw's PIC, IOAPIC and PIT pass hw-kvm" {
	need_kvm
	run_hwkvm -accel kvm,kernel-irqchip=split
	check_all_passed
	grep -q 'local APICs in the kernel, PIC, IOAPIC and PIT in user space' "$T/log"
	# doorbells and MSI-X still skip user space; INTx goes through lib/hw's IOAPIC
	[ "$(grep -c 'virtio-blk: notify queue 0 (ioeventfd)' "$T/log")" -eq 128 ]
	grep -q 'kvm: GSI 2[4-9] routed to MSI 0xfee00000 data 0x33' "$T/log"
	! grep -q 'resampled at EOI' "$T/log"
	# the PIC's ExtINT is injected from user space
	grep -q 'interrupt vector 0x20' "$T/log"
}

# vm_ticker N ARGS...: hw-kvm "ticker" under KVM, serial in $T/serN.txt,
# QMP on $T/qmp.sock, the qcow2 disk for snapshots as IDE 0.
vm_ticker() {
	local n=$1; shift
	vm-run -accel kvm -m 64 -kernel "$HW/hw-kvm.elf" -display none -nodefaults -append ticker \
		$DX -serial "file:$T/ser$n.txt" -qmp "unix:$T/qmp.sock,server=on,wait=off" \
		-drive "file=$T/disk.qcow2,if=ide,index=0" "$@" >"$T/vm$n.log" 2>&1 &
	echo $! >"$T/vm.pid"
}

vm_stop() {
	local pid
	pid=$(cat "$T/vm.pid" 2>/dev/null) || return 0
	vm-mon "$T/qmp.sock" quit >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$T/vm.pid" "$T/qmp.sock"
}

teardown() {
	vm_stop
	[ ! -f "$T/nbd.pid" ] || kill "$(cat "$T/nbd.pid")" 2>/dev/null || true
}

@test "kvm kernel_irqchip=on: savevm, then -loadvm in a new vm-run brings back the in-kernel chips" {
	need_kvm
	require qemu-img
	qemu-img create -q -f qcow2 "$T/disk.qcow2" 16M
	vm_ticker 1 -machine kernel_irqchip=on
	wait_text "$T/ser1.txt" '^tick 2$'
	run vm-mon "$T/qmp.sock" savevm s1
	[ "$status" -eq 0 ] && [ -z "$output" ]
	vm_stop
	n=$(grep -c '^tick' "$T/ser1.txt")
	# a fresh machine's IOAPIC is masked and its PIT stopped: ticks after
	# the load come only from the restored chips, counting on from RAM
	vm_ticker 2 -machine kernel_irqchip=on -loadvm s1
	wait_text "$T/ser2.txt" "^tick $((n + 3))\$"
	vm_stop
	# a snapshot of the in-kernel chips does not load into lib/hw's
	vm_ticker 3 -machine kernel_irqchip=off -loadvm s1
	wait "$(cat "$T/vm.pid")" || true
	grep -q "unknown device 'kvm-irqchip'" "$T/vm3.log"
	qemu-img check -q "$T/disk.qcow2"
}

# vm_wait N READS: wait for vm-run N (hw-kvm "bench reads=READS") to end;
# true when it did with status 33, every read answered (a read whose
# interrupt never comes fails after 5 s: status 3, the read named).
vm_wait() {
	local st=0
	wait "$(cat "$T/vm.pid")" || st=$?
	rm -f "$T/vm.pid" "$T/qmp.sock"
	echo "vm-run $1: exit status $st"; cat "$T/ser$1.txt" "$T/vm$1.log"
	[ "$st" -eq 33 ] && grep -q "^kvmbench: $2 reads" "$T/ser$1.txt"
}

@test "kvm kernel_irqchip=on: savevm amid virtio-blk reads; -loadvm finishes every read (doorbells rung again)" {
	need_kvm
	require qemu-img
	pattern_disk "$T/pat.img"
	qemu-img create -q -f qcow2 "$T/disk.qcow2" 16M
	# 20000 reads: 1.3 s at the fastest seen (66 us a read), so that the
	# savevm 0.3 s in lands amid them (5000 were over by then once)
	vm_ticker 1 -machine kernel_irqchip=on -append "bench reads=20000" \
		-drive file="$T/pat.img",if=virtio,format=raw,readonly=on
	wait_text "$T/ser1.txt" '^hw-kvm:'
	sleep 0.3
	run vm-mon "$T/qmp.sock" savevm mid
	[ "$status" -eq 0 ] && [ -z "$output" ]
	vm_wait 1 20000
	vm_ticker 2 -machine kernel_irqchip=on -append "bench reads=20000" -loadvm mid \
		-drive file="$T/pat.img",if=virtio,format=raw,readonly=on
	vm_wait 2 20000
}

# slow_nbd SOCKET IMAGE MS: a read-only NBD server on SOCKET (newstyle,
# not fixed; simple replies) that answers each read MS milliseconds late.
slow_nbd() {
	python3 -c '
import socket, struct, sys, threading, time
path, img, delay = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3]) / 1000
def full(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def serve(c):
    try:
        c.sendall(b"NBDMAGIC" + struct.pack(">QH", 0x49484156454F5054, 2))
        full(c, 4)
        full(c, struct.unpack(">QII", full(c, 16))[2])
        c.sendall(struct.pack(">QH", len(img), 3))
        while True:
            magic, flags, typ, cookie, off, n = struct.unpack(">IHHQQI", full(c, 28))
            if typ == 2:
                break
            if typ == 0:
                time.sleep(delay)
            data = img[off:off + n] if typ == 0 else b""
            c.sendall(struct.pack(">IIQ", 0x67446698, 0 if typ == 0 else 1, cookie) + data)
    except (EOFError, OSError):
        pass
    c.close()
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(4)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
' "$@" &
	echo $! >"$T/nbd.pid"
	for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.1; done
	return 1
}

# With every read 150 ms late, nearly every savevm finds one in flight:
# savevm must wait for it (its available entry is consumed, its answer
# not yet in the used ring); saved unanswered, -loadvm could not run it
# again and the guest would wait for it for ever.
@test "kvm kernel_irqchip=on: savevm with a slow virtio-blk read in flight; each -loadvm gets every answer" {
	need_kvm
	require qemu-img
	pattern_disk "$T/pat.img"
	slow_nbd "$T/nbd.sock" "$T/pat.img" 150
	qemu-img create -q -f qcow2 "$T/disk.qcow2" 16M
	local disk="file=nbd+unix:///?socket=$T/nbd.sock,if=virtio,format=raw,readonly=on"
	vm_ticker 1 -machine kernel_irqchip=on -append "bench reads=30" -d virtio -drive "$disk"
	wait_text "$T/ser1.txt" '^hw-kvm:'
	sleep 0.3
	for k in 1 2 3; do
		run vm-mon "$T/qmp.sock" savevm "s$k"
		[ "$status" -eq 0 ] && [ -z "$output" ]
		sleep 0.4
	done
	vm_wait 1 30
	for k in 1 2 3; do
		vm_ticker $((k + 1)) -machine kernel_irqchip=on -append "bench reads=30" -loadvm "s$k" \
			-drive "$disk"
		vm_wait $((k + 1)) 30
	done
	# each snapshot holds its queue with every request taken answered
	grep 'saved at' "$T/vm1.log"
	[ "$(grep -c 'virtio-blk: queue 0 saved at available \([0-9]*\), used \1$' "$T/vm1.log")" -eq 3 ]
}

@test "kvm kernel_irqchip=off and split: savevm and -loadvm carry the chips" {
	need_kvm
	require qemu-img
	for ic in off split; do
		rm -f "$T/disk.qcow2" "$T"/ser*.txt
		qemu-img create -q -f qcow2 "$T/disk.qcow2" 16M
		vm_ticker 1 -machine kernel_irqchip=$ic
		wait_text "$T/ser1.txt" '^tick 2$'
		run vm-mon "$T/qmp.sock" savevm s1
		[ "$status" -eq 0 ] && [ -z "$output" ]
		vm_stop
		n=$(grep -c '^tick' "$T/ser1.txt")
		vm_ticker 2 -machine kernel_irqchip=$ic -loadvm s1
		wait_text "$T/ser2.txt" "^tick $((n + 3))\$"
		vm_stop
	done
}

@test "jit: a machine reset puts lib/hw's chips and the second CPU back to power-on" {
	pattern_disk "$T/disk.img"
	run timeout 60 vm-run -accel jit -smp 2 -kernel "$HW/hw-kvm.elf" -append reboot $DX \
		-nographic -drive file="$T/disk.img",if=virtio,format=raw,readonly=on </dev/null
	echo "$output"
	[ "$status" -eq 33 ]
	[[ "$output" == *"# after the reset"* ]]
	[[ "$output" != *"not ok"* ]]
	[[ "$output" == *"ok 1 - the IOAPIC's entries are masked again after reset"* ]]
	[[ "$output" == *"ok 8 - INIT + startup IPI start the second CPU at 0x8000, once"* ]]
}

@test "jit: -accel jit,translate=off runs the interpreter alone and passes the same program" {
	run_hwkvm -accel jit,translate=off
	check_all_passed
	run --separate-stderr vm-run -accel jit,translate=maybe -kernel "$HW/hw-hello.elf"
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: -accel jit,translate=maybe: translate=maybe: want on or off" ]
}
