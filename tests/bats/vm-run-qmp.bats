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

# emu_start ARGS...: vm-run on the counter program, QMP at $T/qmp.sock.
emu_start() {
	local i
	vm-run -accel jit -display none -serial "file:$T/serial" -kernel "$G" "$@" \
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
