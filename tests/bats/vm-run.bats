#!/usr/bin/env bats
# vm-run as a user runs it: small multiboot test programs (tests/guest/hw-*)
# on the JIT and, where it works, on KVM; the command line; the console;
# disks through vm-nbd; and the Debian test guest.

load helper
load ../guest/guest

HW=$VM_BUILD/tests/guest
DX="-device isa-debug-exit,iobase=0xf4,iosize=0x04"

# kvm_works: /dev/kvm usable by the multiboot test program.
kvm_works() {
	[ -w /dev/kvm ] || return 1
	timeout 20 vm-run -accel kvm -kernel "$HW/hw-hello.elf" $DX -nographic </dev/null >/dev/null 2>&1
	[ $? -eq 33 ]
}

@test "a multiboot kernel runs on the JIT and leaves through isa-debug-exit" {
	run timeout 30 vm-run -accel jit -kernel "$HW/hw-hello.elf" $DX -nographic </dev/null
	[ "$status" -eq 33 ]
	[[ "$output" == *"hello from multiboot"* ]]
	[[ "$output" == *"cmos ok"* ]]
}

@test "a multiboot kernel runs on KVM where KVM works" {
	kvm_works || skip "/dev/kvm cannot run the test program here"
	run timeout 30 vm-run -accel kvm -kernel "$HW/hw-hello.elf" $DX -nographic </dev/null
	[ "$status" -eq 33 ]
	[[ "$output" == *"cmos ok"* ]]
}

@test "the devices pass hw-devices on the JIT and ACPI soft-off ends with status 0" {
	run timeout 60 vm-run -accel jit -kernel "$HW/hw-devices.elf" $DX -nographic </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" != *"not ok"* ]]
	[[ "$output" == *"ACPI soft-off"* ]]
}

@test "-smp 2: INIT and startup IPIs through the local APIC start the second CPU" {
	run timeout 60 vm-run -accel jit -smp 2 -kernel "$HW/hw-devices.elf" $DX -nographic </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok "*" - INIT + startup IPI start the second CPU"* ]]
	[[ "$output" != *"not ok"* ]]
}

@test "virtio-blk reads and writes a qcow2 image served by a vm-nbd child" {
	require qemu-img
	head -c 1048576 /dev/zero >"$T/d.raw"
	printf 'VMRUN-DISK-TEST0' | dd of="$T/d.raw" conv=notrunc 2>/dev/null
	qemu-img convert -O qcow2 "$T/d.raw" "$T/d.qcow2"
	run timeout 60 vm-run -accel jit -kernel "$HW/hw-devices.elf" $DX -nographic -d block \
		-drive file="$T/d.qcow2",if=virtio,format=qcow2 </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"sector 0: VMRUN-DISK-TEST0"* ]]
	# one connection per host CPU, up to 4
	n=$(nproc); [ "$n" -gt 4 ] && n=4
	[[ "$output" == *"d.qcow2: a vm-nbd child, $n connection"* ]]
	qemu-img check "$T/d.qcow2"
	qemu-img dd if="$T/d.qcow2" of="$T/out.raw" bs=512 count=2
	[ "$(dd if="$T/out.raw" bs=1 skip=512 count=16 2>/dev/null)" = "WRITTEN-BY-GUEST" ]
}

@test "-snapshot leaves the image unchanged" {
	require qemu-img
	head -c 1048576 /dev/zero >"$T/d.raw"
	qemu-img convert -O qcow2 "$T/d.raw" "$T/d.qcow2"
	before=$(qemu-img dd if="$T/d.qcow2" of=/dev/stdout 2>/dev/null | sha256sum)
	run timeout 60 vm-run -accel jit -snapshot -kernel "$HW/hw-devices.elf" $DX -nographic \
		-drive file="$T/d.qcow2",if=virtio </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok "*" - virtio-blk writes sector 1"* ]]
	[[ "$output" != *"not ok"* ]]
	after=$(qemu-img dd if="$T/d.qcow2" of=/dev/stdout 2>/dev/null | sha256sum)
	[ "$before" = "$after" ]
}

@test "a disk from an NBD URI (qemu-nbd on a unix socket)" {
	require qemu-nbd qemu-img
	head -c 1048576 /dev/zero >"$T/d.raw"
	printf 'VMRUN-DISK-TEST0' | dd of="$T/d.raw" conv=notrunc 2>/dev/null
	qemu-nbd -f raw -k "$T/nbd.sock" --persistent "$T/d.raw" &
	pid=$!
	for i in $(seq 50); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
	run timeout 60 vm-run -accel jit -kernel "$HW/hw-devices.elf" $DX -nographic \
		-drive "file=nbd+unix:///?socket=$T/nbd.sock,if=virtio" </dev/null
	stop_pid $pid
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"sector 0: VMRUN-DISK-TEST0"* ]]
	[ "$(dd if="$T/d.raw" bs=1 skip=512 count=16 2>/dev/null)" = "WRITTEN-BY-GUEST" ]
}

@test "-snapshot keeps an NBD export unchanged (overlay in memory)" {
	require qemu-nbd
	head -c 1048576 /dev/zero >"$T/d.raw"
	qemu-nbd -f raw -k "$T/nbd.sock" --persistent "$T/d.raw" &
	pid=$!
	for i in $(seq 50); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
	run timeout 60 vm-run -accel jit -snapshot -kernel "$HW/hw-devices.elf" $DX -nographic \
		-drive "file=nbd+unix:///?socket=$T/nbd.sock,if=virtio" </dev/null
	stop_pid $pid
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok "*" - virtio-blk writes sector 1"* ]]
	[ "$(tr -d '\0' <"$T/d.raw" | wc -c)" -eq 0 ]
}

@test "virtio-net: a frame goes out on the stream socket and the answer comes back" {
	require python3
	python3 "$VM_TOP/tests/guest/net-peer.py" "$T/net.sock" &
	for i in $(seq 50); do [ -S "$T/net.sock" ] && break; sleep 0.1; done
	run timeout 60 vm-run -accel jit -kernel "$HW/hw-devices.elf" $DX -nographic \
		-nic socket,path="$T/net.sock",model=virtio </dev/null
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"virtio-net receives the peer's answer (PONG)"* ]]
	[[ "$output" != *"not ok"* ]]
}

@test "-daemonize returns at once; the machine runs on in the background" {
	run timeout 30 vm-run -accel jit -daemonize -kernel "$HW/hw-devices.elf" -append idle \
		-serial file:"$T/con.txt" -pidfile "$T/pid"
	[ "$status" -eq 0 ]
	for i in $(seq 100); do grep -q idle "$T/con.txt" 2>/dev/null && break; sleep 0.1; done
	grep -q idle "$T/con.txt"
	pid=$(cat "$T/pid")
	kill -0 "$pid"
	kill "$pid"
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "$pid" 2>/dev/null
	[ ! -e "$T/pid" ]
}

@test "-no-reboot turns a triple fault into exit status 0" {
	run timeout 30 vm-run -accel jit -no-reboot -kernel "$HW/hw-devices.elf" -append reboot \
		$DX -nographic </dev/null
	[ "$status" -eq 0 ]
}

@test "Ctrl-a x on the stdio console quits with status 0" {
	run bash -c "{ sleep 2; printf '\001x'; } | timeout 30 vm-run -accel jit -kernel '$HW/hw-devices.elf' -append idle -nographic"
	[ "$status" -eq 0 ]
	[[ "$output" == *"terminated"* ]]
}

@test "serial input reaches the guest, Ctrl-a a sends a literal Ctrl-a" {
	run bash -c "{ sleep 1; printf 'abc\001hq'; } | timeout 30 vm-run -accel jit -kernel '$HW/hw-devices.elf' -append echo -nographic"
	[ "$status" -eq 0 ]
	[[ "$output" == *"abc"* ]]
	[[ "$output" == *"C-a x    exit emulator"* ]]
}

@test "-serial file: writes the console to a file; -pidfile" {
	run timeout 30 vm-run -accel jit -kernel "$HW/hw-hello.elf" $DX -serial file:"$T/con.txt" \
		-pidfile "$T/pid" </dev/null
	[ "$status" -eq 33 ]
	grep -q "hello from multiboot" "$T/con.txt"
	[ ! -e "$T/pid" ]
}

@test "bad options give one line and status 1" {
	for args in "-m 1x" "-smp 0" "-accel nope" "-device nope" "-serial bogus" "-drive if=virtio" \
		    "-kernel /nonexistent" "-M q35" "-initrd x" "-frobnicate"; do
		run --separate-stderr vm-run $args -nographic </dev/null
		[ "$status" -eq 1 ] || { echo "$args: status $status"; return 1; }
		[ "${#stderr_lines[@]}" -eq 1 ] || { echo "$args: $stderr"; return 1; }
		[[ "$stderr" == "vm-run: "* ]] || { echo "$args: $stderr"; return 1; }
	done
}

@test "an explicit -accel kvm that cannot run the guest stops with a message, never hangs" {
	[ -w /dev/kvm ] || skip "no /dev/kvm"
	[ -d /sys/module/kvm_pvm ] || skip "this KVM can boot Linux"
	guest_require
	run --separate-stderr timeout 60 vm-run -accel kvm -m 256 -kernel "$GUEST_KERNEL" \
		-initrd "$GUEST_INITRD" -append console=ttyS0 -nographic </dev/null
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"no progress"* ]]
}

# The Debian test guest.  While the JIT cannot run Debian's kernel (an
# unimplemented instruction, or too slow to reach the marker in time) the
# test is skipped with that reason; the first such boot marks the file so
# the other guest tests skip at once.
GUEST_TIMEOUT=${VM_GUEST_TIMEOUT:-240}
boot_guest() {
	guest_require
	local mark=$BATS_FILE_TMPDIR/jit-cannot-boot
	[ -e "$mark" ] && skip "$(cat "$mark")"
	run timeout "$GUEST_TIMEOUT" vm-run -m 512 "$@" -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
		-nographic -d unimp </dev/null
	[[ "$output" == *VM-GUEST-READY* ]] && return 0
	if [[ "$output" =~ (\#UD at [^$'\n']*) ]]; then
		echo "the JIT cannot boot Linux yet: ${BASH_REMATCH[1]}" >"$mark"
	elif [ "$status" -eq 124 ]; then
		echo "the JIT did not reach the marker within $GUEST_TIMEOUT s" >"$mark"
	else
		return 0
	fi
	skip "$(cat "$mark")"
}

# The same through firmware: boot_guest_bios -cdrom|-hda IMAGE
boot_guest_bios() {
	local mark=$BATS_FILE_TMPDIR/jit-cannot-boot
	[ -e "$mark" ] && skip "$(cat "$mark")"
	run timeout "$GUEST_TIMEOUT" vm-run -m 512 "$1" "$2" -nographic -d unimp </dev/null
	[[ "$output" == *VM-GUEST-READY* ]] && return 0
	if [[ "$output" =~ (\#UD at [^$'\n']*) ]]; then
		echo "the JIT cannot boot Linux yet: ${BASH_REMATCH[1]}" >"$mark"
	elif [ "$status" -eq 124 ]; then
		echo "the JIT did not reach the marker within $GUEST_TIMEOUT s" >"$mark"
	else
		return 0
	fi
	skip "$(cat "$mark")"
}

@test "the Debian guest boots to its marker and powers off with status 0" {
	boot_guest -append "console=ttyS0 quiet vmtest.cmd=true"
	[ "$status" -eq 0 ]
	[[ "$output" == *VM-GUEST-READY* ]]
	[[ "$output" == *VM-GUEST-STATUS=0* ]]
}

@test "make run boots the guest to a busybox shell on the console; its poweroff ends vm-run with status 0" {
	guest_require
	local san=
	case $VM_BUILD in
	"$VM_TOP/o/rel") ;;
	"$VM_TOP/o/san") san=SAN=1 ;;
	*) skip "make run builds in this tree's o/rel or o/san, not $VM_BUILD" ;;
	esac
	mkfifo "$T/in"
	# the command the README gives (a make of its own, not the suite's)
	( env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL timeout "$GUEST_TIMEOUT" \
		make -s --no-print-directory -C "$VM_TOP" run $san <"$T/in" >"$T/out" 2>&1
	  echo "MAKE-RUN-STATUS=$?" >>"$T/out" ) 3>&- &
	local w
	exec {w}>"$T/in"	# (bats keeps fd 3 for itself)
	wait_text "$T/out" "busybox shell: 'poweroff' to leave" "$GUEST_TIMEOUT"
	echo 'echo SHELL-$((6 * 7))' >&$w
	wait_text "$T/out" "SHELL-42" "$GUEST_TIMEOUT"
	echo poweroff >&$w
	wait_text "$T/out" "MAKE-RUN-STATUS=" "$GUEST_TIMEOUT"
	exec {w}>&-
	wait
	cat "$T/out"
	grep -aq "MAKE-RUN-STATUS=0" "$T/out"
	grep -aq "reboot: Power down" "$T/out"
}

@test "the test guest's reboot restarts the machine; with -no-reboot vm-run ends with status 0" {
	boot_guest -no-reboot -append "console=ttyS0 quiet vmtest.cmd=reboot"
	[ "$status" -eq 0 ]
	[[ "$output" == *"reboot: Restarting system"* ]]
}

@test "-smp 2 shows two CPUs in the guest's /proc/cpuinfo" {
	boot_guest -smp 2 -append "console=ttyS0 quiet vmtest.cmd=\"grep -c ^processor /proc/cpuinfo\""
	[ "$status" -eq 0 ]
	[[ "$output" == *$'\n2'* ]] || [[ "$output" == *$'\r\n2'* ]]
}

# make_iso DIR GRUBCFG: a grub-mkrescue image in $T/DIR.iso
make_iso() {
	require grub-mkrescue xorriso mformat
	[ -d /usr/lib/grub/i386-pc ] || skip "grub-pc-bin is not installed"
	mkdir -p "$T/$1/boot/grub"
	printf '%s\n' "serial --unit=0 --speed=115200" "terminal_input serial" \
		"terminal_output serial" "$2" >"$T/$1/boot/grub/grub.cfg"
	[ -z "${3:-}" ] || cp "$3" "$4" "$T/$1/boot/"
	grub-mkrescue -o "$T/$1.iso" "$T/$1" >/dev/null 2>&1 || skip "grub-mkrescue failed"
}

@test "-cdrom: SeaBIOS boots a GRUB ISO over ATAPI, GRUB powers off through ACPI" {
	[ -f /usr/share/seabios/bios-256k.bin ] || skip "seabios is not installed"
	make_iso halt $'echo GRUB-MARKER\nhalt'
	run timeout 120 vm-run -accel jit -nographic -cdrom "$T/halt.iso" </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *GRUB-MARKER* ]]
}

@test "-hda: the same hybrid ISO boots as an IDE hard disk" {
	[ -f /usr/share/seabios/bios-256k.bin ] || skip "seabios is not installed"
	make_iso halt $'echo GRUB-MARKER\nhalt'
	run timeout 120 vm-run -accel jit -nographic -hda "$T/halt.iso" </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *GRUB-MARKER* ]]
}

@test "-drive if=virtio: SeaBIOS boots from virtio-blk" {
	[ -f /usr/share/seabios/bios-256k.bin ] || skip "seabios is not installed"
	make_iso halt $'echo GRUB-MARKER\nhalt'
	run timeout 120 vm-run -accel jit -nographic -drive file="$T/halt.iso",if=virtio,format=raw,readonly=on </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *GRUB-MARKER* ]]
}

@test "the Debian guest boots through SeaBIOS and GRUB from -cdrom" {
	guest_require
	make_iso linux $'set timeout=0\nmenuentry t {\n linux /boot/vmlinuz console=ttyS0 quiet vmtest.cmd=true\n initrd /boot/initramfs.cpio.gz\n}' \
		"$GUEST_KERNEL" "$GUEST_INITRD"
	# (-hda with the same image is the GRUB test above: one Linux boot is enough)
	boot_guest_bios -cdrom "$T/linux.iso"
	[ "$status" -eq 0 ]
	[[ "$output" == *VM-GUEST-READY* ]]
}

@test "-boot d picks the CD-ROM over the hard disk, -boot c the disk" {
	[ -f /usr/share/seabios/bios-256k.bin ] || skip "seabios is not installed"
	make_iso halt $'echo DISK-MARKER\nhalt'
	make_iso cd $'echo CDROM-MARKER\nhalt'
	run timeout 120 vm-run -accel jit -nographic -hda "$T/halt.iso" -cdrom "$T/cd.iso" -boot d </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *CDROM-MARKER* ]]
	run timeout 120 vm-run -accel jit -nographic -hda "$T/halt.iso" -cdrom "$T/cd.iso" -boot order=c </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *DISK-MARKER* ]]
}

@test "a guest writing garbage to every device register never crashes or hangs vm-run" {
	head -c 1048576 /dev/zero >"$T/d.raw"
	head -c 2097152 /dev/zero >"$T/cd.raw"
	for seed in 1 2 3; do
		run --separate-stderr timeout -k 10 20 vm-run -accel jit -no-reboot -kernel "$HW/hw-chaos.elf" \
			-append seed=$seed $DX -serial file:"$T/con.txt" -snapshot \
			-drive file="$T/d.raw",if=virtio,format=raw -cdrom "$T/cd.raw" -hdb "$T/d.raw" \
			-device virtio-rng-pci -virtioconsole file:"$T/vc.txt" </dev/null
		echo "seed $seed: status $status: $stderr"
		# 33: the program finished; 0: it reset the machine (an NMI or
		# INIT it sent itself, with no IDT: a triple fault) and
		# -no-reboot ended the run; 124: it wrecked itself (DMA over its
		# own code) and vm-run ended cleanly on SIGTERM.
		[ "$status" -eq 33 ] || [ "$status" -eq 0 ] || [ "$status" -eq 124 ]
		[[ "$stderr" != *Sanitizer* && "$stderr" != *"runtime error"* ]]
	done
}

@test "the Debian guest writes a pattern to a qcow2 disk (vm-nbd child) that reads back on the host" {
	require qemu-img
	guest_require
	qemu-img create -q -f qcow2 "$T/d.qcow2" 4M
	boot_guest -append "console=ttyS0 quiet vmtest.cmd=\"seq 1 100000 >/dev/vda; sync\"" \
		-drive file="$T/d.qcow2",if=virtio,format=qcow2
	[ "$status" -eq 0 ]
	[[ "$output" == *VM-GUEST-STATUS=0* ]]
	qemu-img check "$T/d.qcow2"
	want=$(seq 1 100000 | sha256sum)
	n=$(seq 1 100000 | wc -c)
	if command -v vm-img >/dev/null && vm-img dd --help >/dev/null 2>&1; then
		vm-img dd if="$T/d.qcow2" of="$T/out.raw" bs=1M count=1
	else
		qemu-img dd if="$T/d.qcow2" of="$T/out.raw" bs=1M count=1
	fi
	[ "$(head -c "$n" "$T/out.raw" | sha256sum)" = "$want" ]
}

@test "the Debian guest's reboot resets the machine; with -no-reboot vm-run exits 0" {
	guest_require
	boot_guest -no-reboot -append "console=ttyS0 quiet vmtest.cmd=\"reboot -f\""
	[ "$status" -eq 0 ]
	[[ "$output" == *VM-GUEST-READY* ]]
	[[ "$output" != *VM-GUEST-STATUS* ]]
}
