#!/usr/bin/env bats
# vm-run's QMP server and human monitor (-qmp, -monitor, Ctrl-a c) on a
# tiny multiboot program built here: it prints "boot" on COM1, writes the
# marker "QMPOK!" at 0x7000 and then counts forever in the dword at
# 0x8000 -- so stop/cont, x/xp, system_reset and quit can be watched.

load helper

setup_file() {
	G=$BATS_FILE_TMPDIR/counter.elf
	export G
	cat >"$BATS_FILE_TMPDIR/counter.S" <<-'ASM'
		.section .multiboot, "a"
		.align 4
		.long 0x1badb002, 0, -0x1badb002
		.text
		.code32
		.globl _start
	_start:	mov $0x90000, %esp
		mov $0x3f8, %dx
		mov $'b', %al; out %al, %dx
		mov $'o', %al; out %al, %dx
		mov $'o', %al; out %al, %dx
		mov $'t', %al; out %al, %dx
		mov $'\n', %al; out %al, %dx
		movl $0x4f504d51, 0x7000
		movl $0x0000214b, 0x7004
		movl $0, 0x8000
	1:	incl 0x8000
		jmp 1b
	ASM
	cc -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none \
		-Wl,-T,tests/guest/hw-link.ld -o "$G" "$BATS_FILE_TMPDIR/counter.S"
	# A second program resets the machine once through the i8042.
	R=$BATS_FILE_TMPDIR/reset.elf
	export R
	cat >"$BATS_FILE_TMPDIR/reset.S" <<-'ASM'
		.section .multiboot, "a"
		.align 4
		.long 0x1badb002, 0, -0x1badb002
		.text
		.code32
		.globl _start
	_start:	mov $0x3f8, %dx
		mov $'b', %al; out %al, %dx
		mov $'\n', %al; out %al, %dx
		cmpl $0x1234, 0x7100
		je 1f
		movl $0x1234, 0x7100
		mov $0xfe, %al
		out %al, $0x64
	1:	jmp 1b
	ASM
	cc -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none \
		-Wl,-T,tests/guest/hw-link.ld -o "$R" "$BATS_FILE_TMPDIR/reset.S"
	# The keyboard: every byte the i8042 hands over, in hex, on COM1.
	K=$BATS_FILE_TMPDIR/kbd.elf
	export K
	cat >"$BATS_FILE_TMPDIR/kbd.S" <<-'ASM'
		.section .multiboot, "a"
		.align 4
		.long 0x1badb002, 0, -0x1badb002
		.text
		.code32
		.globl _start
	_start:	mov $0x90000, %esp
		mov $0x3f8, %dx
		mov $'k', %al; out %al, %dx
		mov $'\n', %al; out %al, %dx
	1:	in $0x64, %al
		test $1, %al
		jz 1b
		in $0x60, %al
		mov %al, %bl
		shr $4, %al
		call nib
		mov %bl, %al
		and $15, %al
		call nib
		mov $' ', %al; out %al, %dx
		jmp 1b
	nib:	add $'0', %al
		cmp $'9', %al
		jbe 2f
		add $('a' - '9' - 1), %al
	2:	mov $0x3f8, %dx
		out %al, %dx
		ret
	ASM
	cc -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none \
		-Wl,-T,tests/guest/hw-link.ld -o "$K" "$BATS_FILE_TMPDIR/kbd.S"
	# The IDE disk: READ SECTORS of LBA 0, WRITE SECTORS of it to LBA 1,
	# FLUSH CACHE; "R", "W", "F" on COM1 as each succeeds, "E" for an error.
	D=$BATS_FILE_TMPDIR/ide.elf
	export D
	cat >"$BATS_FILE_TMPDIR/ide.S" <<-'ASM'
		.section .multiboot, "a"
		.align 4
		.long 0x1badb002, 0, -0x1badb002
		.macro putc c
		mov $0x3f8, %dx; mov $\c, %al; out %al, %dx
		.endm
		.text
		.code32
		.globl _start
	_start:	mov $0x90000, %esp
		putc 'b'
		xor %bl, %bl
		call sel
		mov $0x20, %al; out %al, %dx
		call wait
		test $1, %al; jnz err
		mov $0x1f0, %dx; mov $0x9000, %edi; mov $256, %ecx; rep insw
		putc 'R'
		mov $1, %bl
		call sel
		mov $0x30, %al; out %al, %dx
		call wait
		test $1, %al; jnz err
		mov $0x1f0, %dx; mov $0x9000, %esi; mov $256, %ecx; rep outsw
		call wait
		test $1, %al; jnz err
		putc 'W'
		mov $0x1f7, %dx; mov $0xe7, %al; out %al, %dx
		call wait
		test $1, %al; jnz err
		putc 'F'
		jmp done
	err:	putc 'E'
	done:	putc '\n'
	1:	hlt
		jmp 1b
	wait:	mov $0x1f7, %dx
	2:	in %dx, %al
		test $0x80, %al
		jnz 2b
		ret
	sel:	mov $0x1f6, %dx; mov $0xe0, %al; out %al, %dx
		mov $0x1f2, %dx; mov $1, %al; out %al, %dx
		mov $0x1f3, %dx; mov %bl, %al; out %al, %dx
		mov $0x1f4, %dx; xor %al, %al; out %al, %dx
		mov $0x1f5, %dx; out %al, %dx
		mov $0x1f7, %dx
		ret
	ASM
	cc -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none \
		-Wl,-T,tests/guest/hw-link.ld -o "$D" "$BATS_FILE_TMPDIR/ide.S"
	# The CD-ROM: TEST UNIT READY over and over, printing the sense key
	# (0: ready) each time it changes -- what a guest sees of eject/change.
	C=$BATS_FILE_TMPDIR/cd.elf
	export C
	cat >"$BATS_FILE_TMPDIR/cd.S" <<-'ASM'
		.section .multiboot, "a"
		.align 4
		.long 0x1badb002, 0, -0x1badb002
		.text
		.code32
		.globl _start
	_start:	mov $0x90000, %esp
	#if defined(LOCK) || defined(EJECT)
	#ifdef LOCK
	#define OP 0x1e
	#define ARG 1
	#define MARK 'L'
	#else
	#define OP 0x1b
	#define ARG 2
	#define MARK 'J'
	#endif
		mov $0x176, %dx; mov $0xa0, %al; out %al, %dx
		mov $0x174, %dx; mov $0xfe, %al; out %al, %dx
		mov $0x175, %dx; mov $0xff, %al; out %al, %dx
		mov $0x177, %dx; mov $0xa0, %al; out %al, %dx
		call wait
		mov $0x170, %dx
		mov $OP, %ax; out %ax, %dx
		xor %ax, %ax; out %ax, %dx
		mov $ARG, %ax; out %ax, %dx
		xor %ax, %ax; out %ax, %dx; out %ax, %dx; out %ax, %dx
		call wait
		mov $0x3f8, %dx; mov $MARK, %al; out %al, %dx
	#endif
		mov $0xff, %bl
	1:	mov $0x176, %dx; mov $0xa0, %al; out %al, %dx
		mov $0x171, %dx; xor %al, %al; out %al, %dx
		mov $0x174, %dx; mov $0xfe, %al; out %al, %dx
		mov $0x175, %dx; mov $0xff, %al; out %al, %dx
		mov $0x177, %dx; mov $0xa0, %al; out %al, %dx
		call wait
		mov $0x170, %dx; xor %eax, %eax; mov $6, %ecx
	2:	out %ax, %dx
		loop 2b
		call wait
		xor %cl, %cl
		test $1, %al
		jz 3f
		mov $0x171, %dx; in %dx, %al; shr $4, %al; mov %al, %cl
	3:	cmp %cl, %bl
		je 4f
		mov %cl, %bl
		mov %cl, %al; add $'0', %al; mov $0x3f8, %dx; out %al, %dx
	4:	mov $2000000, %ecx
	5:	loop 5b
		jmp 1b
	wait:	mov $0x177, %dx
	6:	in %dx, %al
		test $0x80, %al
		jnz 6b
		ret
	ASM
	cc -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none \
		-Wl,-T,tests/guest/hw-link.ld -o "$C" "$BATS_FILE_TMPDIR/cd.S"
	# The same, first locking the tray (PREVENT MEDIUM REMOVAL): "L"; or
	# first opening it (START STOP UNIT, LoEj): "J".
	CL=$BATS_FILE_TMPDIR/cdlock.elf
	export CL
	cc -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none -DLOCK \
		-Wl,-T,tests/guest/hw-link.ld -o "$CL" "$BATS_FILE_TMPDIR/cd.S"
	CJ=$BATS_FILE_TMPDIR/cdeject.elf
	export CJ
	cc -m32 -nostdlib -ffreestanding -static -no-pie -Wl,--build-id=none -DEJECT \
		-Wl,-T,tests/guest/hw-link.ld -o "$CJ" "$BATS_FILE_TMPDIR/cd.S"
}

setup() {
	T=$BATS_TEST_TMPDIR
	require vm-run vm-mon
}

teardown() {
	local pid
	pid=$(cat "$T/emu.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	emu_gone
}

# emu_start ARGS...: vm-run on the counter program (or ${PROG}), QMP at
# $T/qmp.sock.
emu_start() {
	local i
	vm-run -accel jit -display none -serial "file:$T/serial" -kernel "${PROG:-$G}" "$@" \
		-qmp "unix:$T/qmp.sock,server=on,wait=off" </dev/null >"$T/emu.log" 2>&1 &
	echo $! >"$T/emu.pid"
	for i in $(seq 1 100); do
		[ -S "$T/qmp.sock" ] && return 0
		kill -0 "$(cat "$T/emu.pid")" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/emu.log"
	return 1
}

# Wait (up to 10 s) for vm-run to exit; its status in $T/emu.status.
emu_gone() {
	local pid i
	pid=$(cat "$T/emu.pid")
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; echo $? >"$T/emu.status"; return 0; }
		sleep 0.1
	done
	return 1
}

# The guest's counter, as a decimal number.
counter() {
	vm-mon "$T/qmp.sock" xp/1uw 0x8000 | awk '{print $2}'
}

@test "vm-run-qmp: the greeting, qmp_capabilities and query-status of a running machine" {
	emu_start
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-status"}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"return": {"status": "running", "singlestep": false, "running": true}}' ] ||
		[[ "$output" == *'"status": "running"'*'"running": true'* ]]
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-version"}'
	[[ "$output" == *'"qemu": {"micro": 0, "minor": 2, "major": 7}'* ]]
}

@test "vm-run-qmp: -S is prelaunch; cont runs the guest; stop freezes its counter" {
	emu_start -S
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: paused (prelaunch)" ]
	[ ! -s "$T/serial" ]
	vm-mon "$T/qmp.sock" cont
	sleep 0.5
	[ "$(cat "$T/serial")" = "boot" ]
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: running" ]
	vm-mon "$T/qmp.sock" stop
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: paused" ]
	a=$(counter)
	sleep 0.5
	b=$(counter)
	[ "$a" -gt 0 ] && [ "$a" = "$b" ]
	vm-mon "$T/qmp.sock" cont
	sleep 0.3
	c=$(counter)
	[ "$c" != "$b" ]
}

@test "vm-run-qmp: x and xp read back what the guest wrote; p evaluates registers" {
	emu_start
	sleep 0.3
	run vm-mon "$T/qmp.sock" xp/6cb 0x7000
	[ "$output" = "0000000000007000: 'Q' 'M' 'P' 'O' 'K' '!'" ]
	run vm-mon "$T/qmp.sock" x/2xw 0x7000
	[ "$output" = "0000000000007000: 0x4f504d51 0x0000214b" ]
	run vm-mon "$T/qmp.sock" p/x '$esp'
	[ "$output" = "0x90000" ]
}

@test "vm-run-qmp: info registers in QEMU's layout" {
	emu_start -S
	run vm-mon "$T/qmp.sock" info registers
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^EAX=2badb002\ EBX=[0-9a-f]{8}\ ECX=[0-9a-f]{8}\ EDX=[0-9a-f]{8}$ ]]
	[[ "${lines[2]}" == "EIP=00100"*" EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0" ]]
	[[ "${lines[4]}" == "CS =0010 00000000 ffffffff 00c09b00 CS32 [-RA]" ]]
	[[ "$output" == *"CR0=00000011 "* ]]
}

@test "vm-run-qmp: system_reset reboots the guest (marker twice) and raises RESET" {
	emu_start
	sleep 0.3
	run vm-mon --timeout 10 --wait RESET "$T/qmp.sock" system_reset
	[ "$status" -eq 0 ]
	[[ "$output" == *'"event": "RESET"'*'"reason": "host-qmp-system-reset"'* ]]
	sleep 0.3
	[ "$(grep -c boot "$T/serial")" -eq 2 ]
}

@test "vm-run-qmp: events arrive in order; quit ends vm-run with status 0 and SHUTDOWN" {
	emu_start -S -qmp "unix:$T/ev.sock,server=on,wait=off"
	vm-mon --events "$T/ev.sock" >"$T/events" 2>"$T/events.err" &
	local evpid=$!
	sleep 0.3
	vm-mon "$T/qmp.sock" cont
	vm-mon "$T/qmp.sock" stop
	vm-mon "$T/qmp.sock" system_powerdown
	run vm-mon --wait SHUTDOWN --timeout 10 "$T/qmp.sock" quit
	[ "$status" -eq 0 ]
	[[ "$output" == *'"guest": false'*'"reason": "host-qmp-quit"'* ]]
	emu_gone
	[ "$(cat "$T/emu.status")" -eq 0 ]
	wait "$evpid" || true
	run cat "$T/events"
	[[ "${lines[0]}" == '{"timestamp": {"seconds": '*'"event": "RESUME"'* ]]
	[[ "${lines[1]}" == *'"event": "STOP"'* ]]
	[[ "${lines[2]}" == *'"event": "POWERDOWN"'* ]]
	[[ "${lines[3]}" == *'"event": "SHUTDOWN"'* ]]
}

@test "vm-run-qmp: malformed input and bad arguments are answered; the session goes on" {
	emu_start -S
	run --separate-stderr vm-mon --json "$T/qmp.sock" <<-'EOF'
		{"bad" }
		{"execute": "no-such-command", "id": 7}
		{"execute": "pmemsave", "arguments": {"val": "x", "size": 1, "filename": "f"}}
		{"execute": "stop", "arguments": {"extra": 1}}
		{"execute": "query-status", "id": "last"}
	EOF
	[ "${#lines[@]}" -eq 5 ]
	[[ "${lines[0]}" == *'"class": "GenericError"'* ]]
	[[ "${lines[1]}" == *'"class": "CommandNotFound"'*'"id": 7'* ]]
	[[ "${lines[2]}" == *"Invalid parameter type for 'val', expected: integer"* ]]
	[[ "${lines[3]}" == *'"class": "GenericError"'* ]]
	[[ "${lines[4]}" == '{"return": {'*'"id": "last"}' ]]
}

@test "vm-run-qmp: pmemsave and memsave write guest memory to a file" {
	emu_start
	sleep 0.3
	vm-mon "$T/qmp.sock" stop
	vm-mon --json "$T/qmp.sock" "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 28672, \"size\": 6, \"filename\": \"$T/p.bin\"}}"
	[ "$(cat "$T/p.bin")" = "QMPOK!" ]
	vm-mon --json "$T/qmp.sock" "{\"execute\": \"memsave\", \"arguments\": {\"val\": 28672, \"size\": 4096, \"filename\": \"$T/m.bin\"}}"
	[ "$(stat -c %s "$T/m.bin")" -eq 4096 ]
	[ "$(head -c 6 "$T/m.bin")" = "QMPOK!" ]
}

@test "vm-run-qmp: query-name, query-kvm, query-cpus-fast" {
	emu_start -S -name qmp-test -smp 2
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-name"}'
	[ "$output" = '{"return": {"name": "qmp-test"}}' ]
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-kvm"}'
	[[ "$output" == *'"enabled": false'* ]]
	run vm-mon "$T/qmp.sock" info cpus
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == "* CPU #0: thread_id="* ]]
	run vm-mon "$T/qmp.sock" info chardev
	[ "${lines[0]}" = "serial0: filename=file:$T/serial" ]
}

@test "vm-run-qmp: -monitor unix: the human monitor with QEMU's banner" {
	command -v python3 >/dev/null || skip "python3 missing"
	emu_start -S -monitor "unix:$T/hmp.sock,server=on,wait=off"
	run python3 - "$T/hmp.sock" <<-'PY'
		import socket, sys, time
		s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
		s.sendall(b"info status\n"); time.sleep(0.5)
		s.settimeout(2); print(s.recv(65536).decode().replace("\r", ""))
	PY
	[[ "$output" == *"QEMU 7.2.0 monitor - type 'help' for more information"* ]]
	[[ "$output" == *"(qemu) "* ]]
	[[ "$output" == *"VM status: paused (prelaunch)"* ]]
}

@test "vm-run-qmp: Ctrl-a c switches the stdio console to the monitor and back" {
	{ sleep 0.5; printf '\001c'; sleep 0.3; printf 'info status\r'; sleep 0.5
	  printf '\001c'; sleep 0.2; printf '\001x'; } |
		timeout 20 vm-run -accel jit -display none -nographic -kernel "$G" >"$T/out" 2>&1
	run cat "$T/out"
	[[ "$output" == *"boot"* ]]
	[[ "$output" == *"QEMU 7.2.0 monitor"* ]]
	[[ "$output" == *"VM status: running"* ]]
}

@test "vm-run-qmp: -monitor stdio with a stdio serial port is one line and status 1" {
	run --separate-stderr vm-run -accel jit -kernel "$G" -serial stdio -monitor stdio </dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: cannot use stdio by multiple character devices" ]
}

@test "vm-run-qmp: -qmp fd:N serves an inherited listening socket" {
	command -v python3 >/dev/null || skip "python3 missing"
	run timeout 30 python3 - "$T/fd.sock" "$G" <<-'PY'
		import json, os, socket, subprocess, sys, time
		l = socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); l.listen(1)
		p = subprocess.Popen(["vm-run", "-accel", "jit", "-display", "none", "-serial", "none",
		                      "-kernel", sys.argv[2], "-qmp", "fd:%d" % l.fileno()],
		                     pass_fds=[l.fileno()], stdin=subprocess.DEVNULL)
		c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1]); f = c.makefile("rw")
		print(json.loads(f.readline())["QMP"]["version"]["qemu"]["major"])
		for cmd in ("qmp_capabilities", "query-status", "quit"):
		    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
		    print(f.readline().strip())
		print("exit", p.wait())
	PY
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "7" ]
	[[ "${lines[2]}" == *'"status": "running"'* ]]
	[ "${lines[-1]}" = "exit 0" ]
}

@test "vm-run-qmp: a reset by the guest raises RESET with guest true" {
	G=$R emu_start -S
	run vm-mon --wait RESET --timeout 10 "$T/qmp.sock" cont
	[ "$status" -eq 0 ]
	[[ "$output" == *'"event": "RESET", "data": {"guest": true, "reason": "guest-reset"}'* ]]
	sleep 0.3
	[ "$(grep -c b "$T/serial")" -eq 2 ]
}

@test "vm-run-qmp: set_link and hostfwd_add/remove reach the -nic user back-end" {
	require vm-net
	emu_start -S -nic user
	run --separate-stderr vm-mon "$T/qmp.sock" set_link nope off
	[ "$status" -eq 1 ] && [ "$stderr" = "vm-mon: Device 'nope' not found" ]
	run vm-mon "$T/qmp.sock" set_link net0 off
	[ "$status" -eq 0 ]
	local port=$((20000 + RANDOM % 20000))
	run vm-mon "$T/qmp.sock" hostfwd_add "tcp:127.0.0.1:$port-:22"
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" hostfwd_remove "tcp:127.0.0.1:$port"
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" hostfwd_remove "tcp:127.0.0.1:$port"
	[ "$status" -eq 1 ]
}

# wait_serial TEXT: until the guest printed TEXT (10 s).
wait_serial() {
	local i
	for i in $(seq 1 100); do
		grep -q -- "$1" "$T/serial" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no '$1' on the console: $(cat "$T/serial")"
	return 1
}

@test "vm-run-qmp: query-pci and info pci list the bus in QEMU's layout" {
	truncate -s 1M "$T/d.raw"
	emu_start -S -drive "file=$T/d.raw,if=virtio,format=raw"
	run vm-mon "$T/qmp.sock" info pci
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "  Bus  0, device   0, function 0:" ]
	[ "${lines[1]}" = "    Host bridge: PCI device 8086:1237" ]
	[[ "$output" == *"  Bus  0, device   1, function 0:"*"    ISA bridge: PCI device 8086:7000"* ]]
	[[ "$output" == *"  Bus  0, device   1, function 1:"*"    IDE controller: PCI device 8086:7010"* ]]
	[[ "$output" == *"PCI device 1af4:1042"*"IRQ "*", pin A"*"BAR4: 64 bit memory at 0x"* ]]
	[[ "$output" == *'      id ""'* ]]
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-pci"}'
	[[ "$output" == '{"return": [{"bus": 0, "devices": [{'* ]]
	[[ "$output" == *'"class_info": {"class": 1536, "desc": "Host bridge"}'* ]]
	[[ "$output" == *'"id": {'*'"vendor": 32902'* ]]
}

@test "vm-run-qmp: info blockstats counts the guest's IDE reads, writes and flushes" {
	printf 'SECTOR-ZERO' | dd of="$T/d.raw" conv=notrunc 2>/dev/null
	truncate -s 1M "$T/d.raw"
	PROG=$D emu_start -drive "file=$T/d.raw,if=ide,format=raw"
	wait_serial bRWF
	run vm-mon "$T/qmp.sock" info blockstats
	[ "$status" -eq 0 ]
	[[ "$output" == "ide0-hd0: rd_bytes=512 wr_bytes=512 rd_operations=1 wr_operations=1 flush_operations=1 "* ]]
	[[ "$output" == *" idle_time_ns="[0-9]* ]]
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-blockstats"}'
	[[ "$output" == *'"device": "ide0-hd0"'* && "$output" == *'"failed_rd_operations": 0'* ]]
	vm-mon "$T/qmp.sock" quit
	emu_gone
	[ "$(dd if="$T/d.raw" bs=512 skip=1 count=1 2>/dev/null | head -c 11)" = SECTOR-ZERO ]
}

@test "vm-run-qmp: sendkey and send-key type into the i8042 (scancode set 1 through the translation)" {
	PROG=$K emu_start
	wait_serial k
	run vm-mon "$T/qmp.sock" sendkey ctrl-alt-delete
	[ "$status" -eq 0 ]
	wait_serial "1d 38 e0 53 e0 d3 b8 9d "
	run vm-mon --json "$T/qmp.sock" '{"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": "a"}, {"type": "number", "data": 48}], "hold-time": 50}}'
	[ "$output" = '{"return": {}}' ]
	wait_serial "1e 30 b0 9e "
	run vm-mon --json "$T/qmp.sock" '{"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": "nokey"}]}}'
	[[ "$output" == *GenericError*"'nokey'"* ]]
}

@test "vm-run-qmp: eject and change on the IDE CD-ROM: DEVICE_TRAY_MOVED, query-block, errors" {
	truncate -s 1M "$T/a.iso" "$T/b.iso" "$T/d.raw"
	emu_start -S -qmp "unix:$T/ev.sock,server=on,wait=off" -cdrom "$T/a.iso" \
		-drive "file=$T/d.raw,if=virtio,format=raw"
	vm-mon --events "$T/ev.sock" >"$T/events" &
	local evpid=$!
	sleep 0.5
	run vm-mon "$T/qmp.sock" info block ide1-cd0
	[ "${lines[0]}" = "ide1-cd0 (ide1-cd0): $T/a.iso (raw, read-only)" ]
	[ "${lines[1]}" = "    Removable device: not locked, tray closed" ]
	run vm-mon "$T/qmp.sock" eject ide1-cd0
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info block ide1-cd0
	[ "${lines[0]}" = "ide1-cd0: [not inserted]" ]
	[ "${lines[1]}" = "    Removable device: not locked, tray open" ]
	run vm-mon "$T/qmp.sock" change ide1-cd0 "$T/b.iso" raw
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info block ide1-cd0
	[ "${lines[0]}" = "ide1-cd0 (ide1-cd0): $T/b.iso (raw, read-only)" ]
	run --separate-stderr vm-mon "$T/qmp.sock" eject virtio0
	[ "$status" -eq 1 ] && [ "$stderr" = "vm-mon: Device 'virtio0' is not removable" ]
	run --separate-stderr vm-mon "$T/qmp.sock" change ide1-cd0 "$T/none.iso"
	[ "$status" -eq 1 ] && [[ "$stderr" == "vm-mon: Could not open '$T/none.iso': No such file"* ]]
	run vm-mon --json "$T/qmp.sock" '{"execute": "eject", "arguments": {"device": "nodrive"}}'
	[[ "$output" == *'"class": "DeviceNotFound"'* ]]
	sleep 0.3
	kill "$evpid"
	run cat "$T/events"
	# eject opens the tray; change finds it open and only closes it
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == *'"event": "DEVICE_TRAY_MOVED"'* && "${lines[0]}" == *'"tray-open": true'* ]]
	[[ "${lines[0]}" == *'"device": "ide1-cd0"'* ]]
	[[ "${lines[1]}" == *'"tray-open": false'* ]]
}

@test "vm-run-qmp: the guest's CD-ROM says NOT READY after eject and UNIT ATTENTION after change" {
	truncate -s 1M "$T/a.iso" "$T/b.iso"
	PROG=$C emu_start -cdrom "$T/a.iso"
	wait_serial 0
	vm-mon "$T/qmp.sock" eject ide1-cd0
	wait_serial 02
	vm-mon "$T/qmp.sock" change ide1-cd0 "$T/b.iso" raw
	wait_serial 0260
	[ "$(cat "$T/serial")" = 0260 ]
}

@test "vm-run-qmp: a tray the guest locked opens only with force" {
	truncate -s 1M "$T/a.iso"
	PROG=$CL emu_start -cdrom "$T/a.iso"
	wait_serial L0
	run --separate-stderr vm-mon "$T/qmp.sock" eject ide1-cd0
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-mon: Device 'ide1-cd0' is locked and force was not specified, wait for tray to open and try again" ]
	run vm-mon "$T/qmp.sock" info block ide1-cd0
	[ "${lines[1]}" = "    Removable device: locked, tray closed" ]
	run vm-mon "$T/qmp.sock" eject -f ide1-cd0
	[ "$status" -eq 0 ]
	wait_serial L02
}

@test "vm-run-qmp: the guest opening its tray raises DEVICE_TRAY_MOVED; change closes it" {
	truncate -s 1M "$T/a.iso" "$T/b.iso"
	PROG=$CJ emu_start -S -cdrom "$T/a.iso"
	run vm-mon --wait DEVICE_TRAY_MOVED --timeout 20 "$T/qmp.sock" cont
	[ "$status" -eq 0 ]
	[[ "$output" == *'"device": "ide1-cd0"'* && "$output" == *'"tray-open": true'* ]]
	wait_serial J2
	run vm-mon "$T/qmp.sock" info block ide1-cd0
	[ "${lines[0]}" = "ide1-cd0 (ide1-cd0): $T/a.iso (raw, read-only)" ]
	[ "${lines[1]}" = "    Removable device: not locked, tray open" ]
	run vm-mon --wait DEVICE_TRAY_MOVED --timeout 20 "$T/qmp.sock" change ide1-cd0 "$T/b.iso" raw
	[[ "$output" == *'"tray-open": false'* ]]
	wait_serial J260
}

@test "vm-run-qmp: a back-end that fails a read: BLOCK_IO_ERROR, the guest sees the error (rerror=report)" {
	truncate -s 1M "$T/d.raw"
	PROG=$D emu_start -S -drive "file=$T/d.raw,if=ide,format=raw"
	kill "$(pgrep -P "$(cat "$T/emu.pid")" vm-nbd)"
	run vm-mon --wait BLOCK_IO_ERROR --timeout 20 "$T/qmp.sock" cont
	[ "$status" -eq 0 ]
	[[ "$output" == *'"device": "ide0-hd0"'* && "$output" == *'"operation": "read"'* ]]
	[[ "$output" == *'"action": "report"'* ]]
	wait_serial bE
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: running" ]
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-blockstats"}'
	[[ "$output" == *'"failed_rd_operations": 1'* ]]
}

@test "vm-run-qmp: rerror=stop pauses the machine with status io-error; cont retries" {
	truncate -s 1M "$T/d.raw"
	PROG=$D emu_start -S -drive "file=$T/d.raw,if=ide,format=raw,rerror=stop"
	kill "$(pgrep -P "$(cat "$T/emu.pid")" vm-nbd)"
	run vm-mon --wait STOP --timeout 20 "$T/qmp.sock" cont
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: paused (io-error)" ]
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-block"}'
	[[ "$output" == *'"io-status": "failed"'* ]]
	[ "$(cat "$T/serial")" = b ]
	# cont retries the read, which fails again: stopped again
	run vm-mon --wait BLOCK_IO_ERROR --timeout 20 "$T/qmp.sock" cont
	[[ "$output" == *'"action": "stop"'* ]]
	run vm-mon --wait SHUTDOWN --timeout 20 "$T/qmp.sock" quit
	[ "$status" -eq 0 ]
	emu_gone
}

@test "vm-run-qmp: -drive werror= with a bad action is one line and status 1" {
	truncate -s 1M "$T/d.raw"
	run --separate-stderr vm-run -accel jit -display none -kernel "$G" \
		-drive "file=$T/d.raw,if=ide,format=raw,werror=sometimes" </dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: 'sometimes' invalid write error action" ]
}


# wait_serial_for TEXT SECONDS: wait_serial with a longer wait (a Linux boot).
wait_serial_for() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		grep -q -- "$1" "$T/serial" 2>/dev/null && return 0
		kill -0 "$(cat "$T/emu.pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "no '$1' on the console:"; tail -5 "$T/serial"
	return 1
}

@test "vm-run-qmp: a Linux guest sees block_resize (virtio config change) and reads the space it grew by, and a new CD-ROM; its failed read stops the machine (rerror=stop)" {
	load ../guest/guest
	guest_require
	require qemu-img cpio dpkg-deb
	local cmd deb x i f m
	# The ATA and CD-ROM modules, loaded after the guest's own.
	deb=$(ls "$VM_CACHE"/debs/linux-image-*.deb | tail -1)
	x=$T/extra
	mkdir -p "$x/lib/modules" "$x/k"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x/k" --wildcards '*/scsi_common.ko*' \
		'*/scsi_mod.ko*' '*/libata.ko*' '*/ata_piix.ko*' '*/cdrom.ko*' '*/sr_mod.ko*'
	i=90
	for m in scsi_common scsi_mod libata ata_piix cdrom sr_mod; do
		f=$(find "$x/k" -name "$m.ko*" | head -1)
		case $f in
		*.xz) xz -dc "$f" >"$x/lib/modules/$i-$m.ko" ;;
		*) cp "$f" "$x/lib/modules/$i-$m.ko" ;;
		esac
		i=$((i + 1))
	done
	rm -rf "$x/k"
	(cd "$x" && find . | cpio -o -H newc --owner 0:0 2>/dev/null | gzip) >"$T/extra.cpio.gz"
	cat "$GUEST_INITRD" "$T/extra.cpio.gz" >"$T/initrd.gz"
	qemu-img create -q -f qcow2 "$T/d.qcow2" 4M
	truncate -s 1M "$T/a.iso"
	truncate -s 2M "$T/b.iso"
	# Each second: a read of the disk past the page cache, an open of the
	# CD-ROM (Linux checks its medium: TEST UNIT READY), then the sizes and
	# whether a read of the disk's last 4 KiB worked (after the resize, the
	# space it grew by; a failed read would stop the machine).
	# No pci=nocrs: the root bridge's _CRS must give Linux windows that
	# let it claim the IDE legacy ports (without them sr0 never appears).
	cmd='while :; do echo 3 >/proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=4096 count=1 2>/dev/null;'
	cmd+=' dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2>/dev/null; s=$(cat /sys/block/vda/size);'
	cmd+=' dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=$((s / 8 - 1)) iflag=direct 2>/dev/null;'
	cmd+=' t=$?; echo "VM-SIZE $s $(cat /sys/block/sr0/size) tail $t"; sleep 1; done'
	PROG=$GUEST_KERNEL emu_start -m 256 -initrd "$T/initrd.gz" \
		-append "console=ttyS0 quiet vmtest.quiet=1 vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)" \
		-drive "file=$T/d.qcow2,if=virtio,format=qcow2,rerror=stop" -cdrom "$T/a.iso"
	wait_serial_for "VM-SIZE 8192 2048 tail 0" 400
	run vm-mon "$T/qmp.sock" block_resize virtio0 8M
	[ "$status" -eq 0 ]
	wait_serial_for "VM-SIZE 16384 2048 tail 0" 60
	run vm-mon "$T/qmp.sock" change ide1-cd0 "$T/b.iso" raw
	[ "$status" -eq 0 ]
	wait_serial_for "VM-SIZE 16384 4096 tail 0" 60
	run qemu-img info -U "$T/d.qcow2"
	[[ "$output" == *"virtual size: 8 MiB"* ]]
	# The disk's vm-nbd child dies: the guest's next read stops the machine.
	vm-mon --events "$T/qmp.sock" >"$T/events" &
	local evpid=$! i
	sleep 0.5
	kill "$(pgrep -P "$(cat "$T/emu.pid")" -f "vm-nbd.*d.qcow2")"
	for i in $(seq 1 300); do
		[ "$(vm-mon "$T/qmp.sock" info status)" = "VM status: paused (io-error)" ] && break
		sleep 0.2
	done
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: paused (io-error)" ]
	sleep 0.3
	kill "$evpid"
	run cat "$T/events"
	[[ "${lines[0]}" == *'"event": "BLOCK_IO_ERROR"'* && "${lines[0]}" == *'"device": "virtio0"'* ]]
	[[ "${lines[0]}" == *'"action": "stop"'* && "${lines[1]}" == *'"event": "STOP"'* ]]
	run vm-mon --wait SHUTDOWN --timeout 20 "$T/qmp.sock" quit
	[ "$status" -eq 0 ]
	emu_gone
	qemu-img check -q "$T/d.qcow2"
}

@test "vm-run-qmp: info mtree shows RAM, MMIO and port ranges; info network the NICs and back-ends" {
	emu_start -S -m 128 -nic user,model=virtio-net-pci,restrict=on \
		-netdev user,id=n1 -device e1000,netdev=n1,mac=52:54:00:aa:bb:cc
	run vm-mon "$T/qmp.sock" info mtree
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "address-space: memory" ]
	[[ "$output" == *"0000000000000000-0000000007ffffff (prio 0, ram): pc.ram"* ]]
	[[ "$output" == *"00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic"* ]]
	[[ "$output" == *"(prio 0, i/o): e1000"* ]]
	[[ "$output" == *"address-space: I/O"* ]]
	[[ "$output" == *"0000000000000040-0000000000000043 (prio 0, i/o): pit"* ]]
	[[ "$output" == *"00000000000003f8-00000000000003ff (prio 0, i/o): uart"* ]]
	run vm-mon "$T/qmp.sock" info network
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "virtio-net-pci.0: index=0,type=nic,model=virtio-net-pci,macaddr=52:54:00:12:34:56" ]
	[ "${lines[1]}" = ' \ net0: index=0,type=user,net=10.0.2.0,restrict=on' ]
	[ "${lines[2]}" = "e1000.1: index=0,type=nic,model=e1000,macaddr=52:54:00:aa:bb:cc" ]
	[ "${lines[3]}" = ' \ n1: index=0,type=user,net=10.0.2.0,restrict=off' ]
	vm-mon "$T/qmp.sock" quit
	emu_gone
}

@test "vm-run-qmp: info jit shows the translation buffer and the CPU's statistics" {
	emu_start
	local i
	for i in $(seq 1 50); do
		run vm-mon "$T/qmp.sock" info jit
		[[ "$output" == *"guest instructions  0"* ]] || break
		sleep 0.1
	done
	[ "${lines[0]}" = "Translation buffer state:" ]
	[[ "$output" == *"translator          on"* ]]
	[[ "$output" =~ guest\ instructions\ \ [1-9] ]]
	[[ "$output" =~ code\ pages\ written\ \ [0-9] ]]
	vm-mon "$T/qmp.sock" quit
	emu_gone
	rm -f "$T/qmp.sock"
	emu_start -accel jit,translate=off
	run vm-mon "$T/qmp.sock" info jit
	[[ "$output" == *"gen code size       0/0"* ]]
	[[ "$output" == *"translator          off (interpreter)"* ]]
	vm-mon "$T/qmp.sock" quit
	emu_gone
}
