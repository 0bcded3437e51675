#!/usr/bin/env bats
# lib/jit's CPU under a real userland: ONE boot of the Debian test guest
# under -accel jit runs tests/guest/cpu/userland-stress.sh (busybox
# applets: hashes, compressors, sort/sed/awk, floating point in awk, dc
# and bc, shell arithmetic, traps and signals arriving while code runs,
# timeouts, fork/exec).  The same busybox-static binary runs the same
# script on the host, which gives the expected output: every "S: " line
# must be identical.  The script is added to the guest's initramfs as an
# extra cpio member (the kernel command line is too short to carry it)
# and started through vmtest.cmdb64.  The freestanding CPU test kernels
# (tests/guest/cpu/*.S) also run here on vm-run's whole PC.

load helper

STRESS="$VM_TOP/tests/guest/cpu/userland-stress.sh"
KERNELS=$VM_BUILD/tests/guest/cpu
DX="-device isa-debug-exit,iobase=0xf4,iosize=0x04"

# The busybox-static .deb the guest was built from, unpacked for the host.
host_busybox() {
	local deb
	deb=$(ls "$VM_CACHE"/debs/busybox-static_*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || return 1
	dpkg-deb -x "$deb" "$1/root" || return 1
	mkdir -p "$1/bin"
	"$1/root/bin/busybox" --install -s "$1/bin"
}

boot_stress() {
	local u=$1 t=900 cmd
	case $(command -v vm-run) in */san/*) t=1800 ;; esac	# ASan'd JIT: slower
	mkdir -p "$u/overlay"
	cp "$STRESS" "$u/overlay/stress.sh"
	(cd "$u/overlay" && find . | "$u/bin/cpio" -o -H newc 2>/dev/null | gzip -9) >"$u/overlay.cpio.gz"
	cat "$VM_CACHE/initramfs.cpio.gz" "$u/overlay.cpio.gz" >"$u/initrd"
	cmd=$(printf 'W=/tmp/stress sh /stress.sh 2>/dev/null; dmesg | grep -iE "segfault|tsc|calibrat"' | base64 -w0)
	timeout "$t" vm-run -accel jit -m 256 -nodefaults -display none -no-reboot \
		-serial "file:$u/console.log" -kernel "$VM_CACHE/vmlinuz" -initrd "$u/initrd" \
		-append "console=ttyS0 quiet vmtest.cmdb64=$cmd" 2>"$u/vm-run.log"
	echo "vm-run exit $?" >>"$u/vm-run.log"
	tr -d '\r' <"$u/console.log" | grep '^S: ' >"$u/guest.txt"
}

# stress_results: the host's and the guest's results in $U, made by the
# first test that needs them (one boot per file); a missing prerequisite
# skips the guest tests only, not the test kernels below.
stress_results() {
	[ -e "$U/skipped" ] && skip "$(cat "$U/skipped")"
	[ -e "$U/guest.txt" ] && return 0
	require dpkg-deb gzip
	source "$VM_TOP/tests/guest/guest.bash"
	guest_require
	if ! host_busybox "$U"; then
		echo "busybox-static .deb not in $VM_CACHE/debs" >"$U/skipped"
		skip "$(cat "$U/skipped")"
	fi
	env -i PATH="$U/bin" W="$U/host-w" "$U/bin/sh" "$STRESS" 2>/dev/null >"$U/host.txt"
	boot_stress "$U"
}

setup() {
	T=$BATS_TEST_TMPDIR
	U=$BATS_FILE_TMPDIR/run
	mkdir -p "$U"
	case $BATS_TEST_DESCRIPTION in cpu-*) ;; *) stress_results ;; esac
}

@test "the host's busybox runs the userland stress script to its end" {
	grep -qx 'S: done' "$U/host.txt" || { cat "$U/host.txt"; return 1; }
}

@test "the Debian guest runs the userland stress script to its end under -accel jit" {
	grep -q 'VM-GUEST-STATUS=0' "$U/console.log" &&
		grep -qx 'S: done' "$U/guest.txt" ||
		{ tail -40 "$U/console.log"; cat "$U/vm-run.log"; return 1; }
}

@test "every userland stress result in the guest equals the host's" {
	run diff "$U/host.txt" "$U/guest.txt"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[ "$(wc -l <"$U/host.txt")" -ge 40 ]
}

@test "busybox wget -T faults in the guest as natively (Debian's busybox stores -T through NULL)" {
	grep -qx 'S: wget-T rc=139' "$U/host.txt"
	grep -qx 'S: wget-T rc=139' "$U/guest.txt"
	grep -q 'wget\[[0-9]*\]: segfault at 0 ip [0-9a-f]* sp [0-9a-f]* error 6' "$U/console.log" ||
		{ grep segfault "$U/console.log"; return 1; }
}

@test "the guest takes the TSC's rate from CPUID 15h and calibrates neither TSC nor APIC timer" {
	grep -q 'tsc: Detected [0-9.]* MHz processor' "$U/console.log" ||
		{ grep -i tsc "$U/console.log"; return 1; }
	run grep -iE 'calibrat.*(PIT|PMTIMER|HPET)|Fast TSC|APIC calibration|Refined TSC' "$U/console.log"
	[ "$status" -eq 1 ] || { echo "$output"; return 1; }
}

@test "signals interrupt running guest code and its state comes back intact" {
	grep -qx 'S: trap-count 50' "$U/guest.txt"
	grep -q '^S: trap-async [0-9]* some-signals$' "$U/guest.txt"
	grep -qx 'S: awk-stopped rc=0 1071417857.142857' "$U/guest.txt"
}

# run_kernel NAME [vm-run options]: every check of the kernel passes.
run_kernel() {
	local k=$KERNELS/$1.elf
	shift
	[ -e "$k" ] || skip "$k not built"
	run timeout 120 vm-run -accel jit -kernel "$k" $DX "$@" -nographic </dev/null
	[ "$status" -eq 1 ] || { echo "status $status"; echo "$output"; return 1; }
	[[ "$output" != *"not ok"* ]] || { echo "$output"; return 1; }
	[[ "$output" == *"ok - "* ]]
}

@test "cpu-debug: debug registers, single-step and #DB under vm-run -accel jit" {
	run_kernel cpu-debug
}

@test "cpu-modes: modes, exceptions, paging and gates under vm-run -accel jit" {
	run_kernel cpu-modes
}

@test "cpu-task: hardware task switches and a #DF task gate under vm-run -accel jit" {
	run_kernel cpu-task
}

@test "cpu-tlb: INVLPG of large pages, remapped and aliased hot code under vm-run -accel jit" {
	run_kernel cpu-tlb
}

@test "-perfmap: translated code is listed in /tmp/perf-PID.map as START SIZE guest-RIP" {
	local k=$KERNELS/cpu-tlb.elf pid w st
	[ -e "$k" ] || skip "$k not built"
	vm-run -accel jit -perfmap -kernel "$k" $DX -nographic </dev/null >"$BATS_TEST_TMPDIR/out" 2>&1 &
	pid=$!
	( sleep 120; kill "$pid" ) >/dev/null 2>&1 &
	w=$!
	wait "$pid" && st=0 || st=$?
	kill "$w" 2>/dev/null || true
	[ "$st" -eq 1 ] || { echo "status $st"; cat "$BATS_TEST_TMPDIR/out"; return 1; }
	[ -s "/tmp/perf-$pid.map" ]
	# every line is START SIZE guest-RIP; the hot loop's code is among them
	run grep -Evc '^[0-9a-f]+ [0-9a-f]+ guest-[0-9a-f]+$' "/tmp/perf-$pid.map"
	[ "$output" = 0 ]
	grep -q ' guest-bffffa$' "/tmp/perf-$pid.map"
	rm -f "/tmp/perf-$pid.map"
}
