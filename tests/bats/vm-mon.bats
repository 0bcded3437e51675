#!/usr/bin/env bats
# vm-mon against a real machine: by default qemu-system-x86_64; set
# VM_MON_EMU=vm-run to run the same script against vm-run.  The first
# tests need no guest (-S: the machine waits before its first
# instruction); the last ones boot the test guest under TCG, with the ACPI
# button and evdev modules added so that busybox acpid powers it off.

load helper

EMU=${VM_MON_EMU:-qemu-system-x86_64}
# Options every machine gets: no display (and, for QEMU, no default devices).
if [[ "$EMU" == qemu-system-* ]]; then
	EMU_ARGS=(-display none -nodefaults)
	BOOT_WAIT=60
else
	EMU_ARGS=(-display none)
	BOOT_WAIT=400	# vm-run's JIT boots Linux several times slower than TCG
fi

setup() {
	T=$BATS_TEST_TMPDIR
	require "$EMU" vm-mon
}

teardown() {
	emu_stop
}

# emu_start ARGS...: start the machine with a QMP socket at $T/qmp.sock
# and wait until it accepts connections.
emu_start() {
	local sock=${SOCK:-$T/qmp.sock} i
	"$EMU" "${EMU_ARGS[@]}" -m 256 "$@" \
		-qmp "unix:$sock,server=on,wait=off" >"$T/emu.log" 2>&1 &
	echo $! >"$T/emu.pid"
	for i in $(seq 1 100); do
		[ -S "$sock" ] && return 0
		kill -0 "$(cat "$T/emu.pid")" 2>/dev/null || break
		sleep 0.1
	done
	cat "$T/emu.log"
	return 1
}

emu_pid() { cat "${1:-$T}/emu.pid" 2>/dev/null; }

# Wait (up to 10 s) for the machine to exit.
emu_gone() {
	local pid i
	pid=$(emu_pid "$@")
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

emu_stop() {
	local pid
	pid=$(emu_pid "$@") || return 0
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && emu_gone "$@"
	rm -f "${1:-$T}/emu.pid"
}

@test "vm-mon: info status, stop and cont change the machine's status" {
	emu_start -S
	run vm-mon "$T/qmp.sock" info status
	[ "$status" -eq 0 ]
	[ "$output" = "VM status: paused (prelaunch)" ]
	run vm-mon "$T/qmp.sock" cont
	[ "$status" -eq 0 ] && [ -z "$output" ]
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: running" ]
	run vm-mon "$T/qmp.sock" stop
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" 'info status'
	[ "$output" = "VM status: paused" ]
	run vm-mon --json "$T/qmp.sock" '{"execute": "query-status"}'
	[ "$status" -eq 0 ]
	[[ "$output" == '{"return": {'*'"running": false'* ]]
	[[ "$output" == *'"status": "paused"'* ]]
}

@test "vm-mon: xp and x read memory in QEMU's layout" {
	emu_start -S
	# The BIOS's reset vector: a far jump to f000:e05b.
	run vm-mon "$T/qmp.sock" xp/5xb 0xffff0
	[ "$status" -eq 0 ]
	[ "$output" = "00000000000ffff0: 0xea 0x5b 0xe0 0x00 0xf0" ]
	run vm-mon "$T/qmp.sock" xp/2xh 0xffff0
	[ "$output" = "00000000000ffff0: 0x5bea 0x00e0" ]
	run vm-mon "$T/qmp.sock" x/1dw 0xffff0
	[ "$output" = "00000000000ffff0:   14703594" ]
	run vm-mon "$T/qmp.sock" p/x 0x10+0x20
	[ "$output" = "0x30" ]
}

@test "vm-mon: info commands answer in QEMU's human layout" {
	emu_start -S -name monitor-test
	run vm-mon "$T/qmp.sock" info name
	[ "$output" = "monitor-test" ]
	run vm-mon "$T/qmp.sock" info version
	[[ "$output" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]
	run vm-mon "$T/qmp.sock" info cpus
	[[ "$output" =~ ^\*\ CPU\ #0:\ thread_id=[0-9]+$ ]]
	run vm-mon "$T/qmp.sock" info kvm
	[[ "$output" == "kvm support: "* ]]
	run vm-mon "$T/qmp.sock" info registers
	[ "$status" -eq 0 ]
	[[ "$output" == *"EIP=0000fff0"* ]]
	run vm-mon "$T/qmp.sock" help info
	[[ "$output" == *"info status  -- show the current VM status"* ]]
}

@test "vm-mon: an unknown command, a bad format, a missing argument: one line and status 1" {
	emu_start -S
	run --separate-stderr vm-mon "$T/qmp.sock" frobnicate
	[ "$status" -eq 1 ] && [ -z "$output" ]
	[ "$stderr" = "vm-mon: unknown command: 'frobnicate'" ]
	run --separate-stderr vm-mon "$T/qmp.sock" x/4z 0
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-mon: invalid char in format: 'z'" ]
	run --separate-stderr vm-mon "$T/qmp.sock" memsave 0 16
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-mon: memsave: missing argument 'filename'" ]
	run --separate-stderr vm-mon "$T/qmp.sock" eject no-such-drive
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ] && [[ "$stderr" == "vm-mon: "*no-such-drive* ]]
}

@test "vm-mon: change, eject, block_resize, pmemsave, savevm and delvm act on the machine" {
	require qemu-img
	qemu-img create -q -f qcow2 "$T/disk.qcow2" 64M
	truncate -s 1M "$T/cd.iso"
	emu_start -S -drive if=ide,media=cdrom,id=cd0 -drive "file=$T/disk.qcow2,if=virtio,id=disk0"
	run vm-mon "$T/qmp.sock" change cd0 "$T/cd.iso" raw
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info block cd0
	[[ "${lines[0]}" == "cd0 ("*"): $T/cd.iso (raw, read-only)" ]]
	run vm-mon "$T/qmp.sock" eject -f cd0
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info block cd0
	[ "${lines[0]}" = "cd0: [not inserted]" ]
	run vm-mon "$T/qmp.sock" block_resize disk0 128M
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" pmemsave 0xffff0 5 "$T/mem.bin"
	[ "$status" -eq 0 ]
	[ "$(od -An -tx1 "$T/mem.bin" | tr -d ' ')" = "ea5be000f0" ]
	run vm-mon "$T/qmp.sock" savevm before
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info snapshots
	[[ "$output" == *" before "* ]]
	run vm-mon "$T/qmp.sock" delvm before
	[ "$status" -eq 0 ]
	run vm-mon "$T/qmp.sock" info snapshots
	[[ "$output" != *" before "* ]]
	vm-mon "$T/qmp.sock" quit
	emu_gone
	run qemu-img info "$T/disk.qcow2"
	[[ "$output" == *"virtual size: 128 MiB"* ]]
}

@test "vm-mon: an error QEMU's human monitor prints is status 1" {
	emu_start -S
	run --separate-stderr vm-mon "$T/qmp.sock" savevm nodisk
	[ "$status" -eq 1 ]
	[[ "$stderr" == "vm-mon: "*"vmstate"* ]]
}

@test "vm-mon: a socket nobody listens on is one line and status 1" {
	run --separate-stderr vm-mon "$T/none.sock" info status
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "vm-mon: $T/none.sock: "* ]]
}

@test "vm-mon: commands from standard input, the session surviving an error" {
	emu_start -S
	run --separate-stderr vm-mon "$T/qmp.sock" <<-EOF
		info status
		no-such-command
		# a comment
		stop
		info status
	EOF
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "VM status: paused (prelaunch)" ]
	[ "${lines[1]}" = "VM status: paused (prelaunch)" ]
	[ "$stderr" = "vm-mon: unknown command: 'no-such-command'" ]
}

@test "vm-mon: on a terminal it prompts, edits lines and runs them" {
	require script
	emu_start -S
	run env HOME="$T" script -qec "vm-mon $T/qmp.sock" /dev/null <<<$'info status\nhelp stop'
	[ "$status" -eq 0 ]
	[[ "$output" == *"(vm-mon) "* ]]
	[[ "$output" == *"VM status: paused (prelaunch)"* ]]
	[[ "$output" == *"stop  -- stop emulation"* ]]
	grep -q "info" "$T/.vm-mon_history"
}

@test "vm-mon: malformed QMP is answered with the right class and the session stays usable" {
	emu_start -S
	run --separate-stderr vm-mon --json "$T/qmp.sock" <<-'EOF'
		{"execute": 1}
		{"bad" }
		[1, 2]
		{"execute": "no-such-command", "id": 7}
		{"execute": "memsave", "arguments": {"val": "x"}}
		{"execute": "memsave", "arguments": {"val": 0, "size": 1}}
		{"execute": "query-status", "id": "last"}
	EOF
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 7 ]
	[[ "${lines[0]}" == *'"class": "GenericError"'*"'execute' must be a string"* ]]
	[[ "${lines[1]}" == *'"class": "GenericError"'* ]]
	[[ "${lines[2]}" == *'"desc": "QMP input must be a JSON object"'* ]]
	[[ "${lines[3]}" == *'"class": "CommandNotFound"'* && "${lines[3]}" == *'"id": 7'* ]]
	[[ "${lines[4]}" == *"Invalid parameter type for 'val', expected: integer"* ]]
	[[ "${lines[5]}" == *"Parameter 'filename' is missing"* ]]
	[[ "${lines[6]}" == '{"return": {'*'"id": "last"}' ]]
}

@test "vm-mon: --wait RESET returns the event system_reset causes" {
	emu_start -S
	run vm-mon --timeout 10 --wait RESET "$T/qmp.sock" system_reset
	[ "$status" -eq 0 ]
	[[ "$output" == '{"timestamp": {"seconds": '*'"event": "RESET"'* ]]
}

@test "vm-mon: --wait gives up after --timeout with status 1" {
	emu_start -S
	run --separate-stderr vm-mon --timeout 1 --wait NO_SUCH_EVENT "$T/qmp.sock"
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-mon: timed out waiting for NO_SUCH_EVENT" ]
}

@test "vm-mon: --events streams events in order; quit ends the machine" {
	# A QEMU monitor serves one client at a time: a second one for events.
	emu_start -S -qmp "unix:$T/ev.sock,server=on,wait=off"
	vm-mon --events "$T/ev.sock" >"$T/events" 2>"$T/events.err" &
	local evpid=$!
	sleep 0.5
	vm-mon "$T/qmp.sock" cont
	vm-mon "$T/qmp.sock" stop
	run vm-mon --wait SHUTDOWN --timeout 10 "$T/qmp.sock" quit
	[ "$status" -eq 0 ]
	[[ "$output" == *'"event": "SHUTDOWN"'*'"reason": "host-qmp-quit"'* ]]
	emu_gone
	wait "$evpid"
	run cat "$T/events"
	[[ "${lines[0]}" == *'"event": "RESUME"'* ]]
	[[ "${lines[1]}" == *'"event": "STOP"'* ]]
	[[ "${lines[2]}" == *'"event": "SHUTDOWN"'* ]]
}

@test "vm-mon: a tcp: monitor address works" {
	local port=$((20000 + RANDOM % 20000))
	"$EMU" "${EMU_ARGS[@]}" -S -qmp "tcp:127.0.0.1:$port,server=on,wait=off" &
	echo $! >"$T/emu.pid"
	for i in $(seq 1 50); do vm-mon "tcp:127.0.0.1:$port" info status >"$T/out" 2>/dev/null && break; sleep 0.1; done
	run cat "$T/out"
	[ "$output" = "VM status: paused (prelaunch)" ]
}

# ---- with the test guest booted ----

# The guest: writes a marker into low memory (devmem), starts acpid with
# an action that powers off, then ticks once a second on the console.
guest_boot() {
	load ../guest/guest
	guest_require
	require cpio dpkg-deb
	local deb x cmd
	deb=$(ls "$VM_CACHE"/debs/linux-image-*.deb | tail -1)
	x=$T/extra
	mkdir -p "$x/lib/modules" "$x/k"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x/k" --wildcards '*/acpi/button.ko*' '*/input/evdev.ko*'
	find "$x/k" -name '*.ko' -exec cp {} "$x/lib/modules/" \;
	rm -rf "$x/k"
	(cd "$x" && find . | cpio -o -H newc --owner 0:0 2>/dev/null | gzip) >"$T/extra.cpio.gz"
	cat "$GUEST_INITRD" "$T/extra.cpio.gz" >"$T/initrd.gz"
	cmd='devmem 0x600 32 0x4d4f4e21; mkdir -p /tmp/a/PWRF;'
	cmd+=' printf "#!/bin/sh\necho VM-POWER-BUTTON\npoweroff -f\n" >/tmp/a/PWRF/00000080;'
	cmd+=' chmod +x /tmp/a/PWRF/00000080; acpid -d -c /tmp/a & sleep 1; echo VM-ACPID-READY;'
	cmd+=' i=0; while :; do i=$((i+1)); echo VM-TICK-$i; sleep 1; done'
	emu_start -serial "file:$T/serial.log" -kernel "$GUEST_KERNEL" -initrd "$T/initrd.gz" \
		-append "console=ttyS0 quiet nokaslr no_timer_check vmtest.quiet=1 vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)"
}

# wait_marker TEXT COUNT [SECONDS]: until TEXT appears COUNT times on the console.
wait_marker() {
	local i
	for i in $(seq 1 $((${3:-60} * 10))); do
		[ "$(grep -c "$1" "$T/serial.log" 2>/dev/null)" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "no $1 (x$2) on the console:"; tail -5 "$T/serial.log"
	return 1
}

last_tick() { grep -o 'VM-TICK-[0-9]*' "$T/serial.log" | tail -1; }

@test "vm-mon: a booted guest: x/xp read its memory, stop/cont stop its clock, system_reset reboots it, system_powerdown powers it off" {
	guest_boot
	wait_marker VM-ACPID-READY 1 "$BOOT_WAIT"
	wait_marker VM-TICK- 1
	run vm-mon "$T/qmp.sock" xp/4xb 0x600
	[ "$output" = "0000000000000600: 0x21 0x4e 0x4f 0x4d" ]
	run vm-mon "$T/qmp.sock" x/1xw 0xffff888000000600
	[ "$output" = "ffff888000000600: 0x4d4f4e21" ]
	run vm-mon "$T/qmp.sock" stop
	[ "$status" -eq 0 ]
	local t1 t2
	t1=$(last_tick)
	sleep 2.5
	t2=$(last_tick)
	[ "$t1" = "$t2" ]
	run vm-mon "$T/qmp.sock" info status
	[ "$output" = "VM status: paused" ]
	vm-mon "$T/qmp.sock" cont
	sleep 2.5
	[ "$(last_tick)" != "$t2" ]
	run vm-mon --wait RESET --timeout 10 "$T/qmp.sock" system_reset
	[ "$status" -eq 0 ]
	wait_marker VM-GUEST-READY 2 "$BOOT_WAIT"
	wait_marker VM-ACPID-READY 2 "$BOOT_WAIT"
	run vm-mon --wait SHUTDOWN --timeout 30 "$T/qmp.sock" system_powerdown
	[ "$status" -eq 0 ]
	[[ "$output" == *'"event": "SHUTDOWN"'*'"reason": "guest-shutdown"'* ]]
	grep -q VM-POWER-BUTTON "$T/serial.log"
	emu_gone
}
