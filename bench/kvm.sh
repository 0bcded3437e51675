#!/usr/bin/env bash
# vm-run's KVM interrupt paths against qemu-system-x86_64 -accel kvm, with
# no OS in the way (tests/guest multiboot programs, virtio-blk on a raw
# disk; QEMU's device is virtio-blk-pci,disable-legacy=on):
#   1. hw-kvm bench: 5000 reads of 4 KiB, one at a time, each waited for
#      with HLT until its interrupt, INTx through the IOAPIC and then
#      MSI-X (doorbell + interrupt latency);
#   2. hw-diskbench: 64 MiB of polled 256 KiB reads, 4 in flight
#      (doorbells only, throughput).
# Each under vm-run -machine kernel_irqchip=on (in-kernel chips,
# ioeventfd, irqfd), =split (KVM's local APICs, lib/hw's PIC/IOAPIC/PIT,
# ioeventfd and MSI irqfds), =off (lib/hw's chips, doorbells as MMIO
# exits) and QEMU; the best of BENCH_RUNS runs (default 3) is shown.
# Needs a /dev/kvm that runs the test programs (kvm_pvm does).
#
#   bench/kvm.sh            (VM_BUILD=o/rel, BENCH_TIMEOUT=300 seconds)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${VM_BUILD:-$top/o/rel}
HW=$B/tests/guest
TIMEOUT=${BENCH_TIMEOUT:-300}
RUNS=${BENCH_RUNS:-3}
DX="-device isa-debug-exit,iobase=0xf4,iosize=0x04"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -w /dev/kvm ] || { echo "bench/kvm: no /dev/kvm; skipped"; exit 0; }
timeout 20 "$B/bin/vm-run" -accel kvm -kernel "$HW/hw-hello.elf" $DX -nographic </dev/null >/dev/null 2>&1
if [ $? -ne 33 ]; then
	echo "bench/kvm: /dev/kvm cannot run the test programs here; skipped"
	exit 0
fi
python3 -c '
import sys
b = bytearray(16384 * 512)
for i in range(16384):
    t = b"KVMSECT%08d" % i
    b[i * 512:i * 512 + len(t)] = t
open(sys.argv[1], "wb").write(b)' "$work/pat.img"
truncate -s 64M "$work/big.img"

# one TOOL PROGRAM APPEND DISK: the program's result line
one() {
	local tool=$1 prog=$2 append=$3 disk=$4 ic
	case $tool in
	qemu)	timeout "$TIMEOUT" qemu-system-x86_64 -accel kvm -nographic -kernel "$HW/$prog.elf" \
			-append "$append" $DX -drive file="$disk",if=none,id=d0,format=raw,readonly=on \
			-device virtio-blk-pci,drive=d0,disable-legacy=on </dev/null 2>&1 ;;
	*)	ic=${tool#vm-run-}
		timeout "$TIMEOUT" "$B/bin/vm-run" -accel kvm -machine pc,kernel_irqchip="$ic" -nographic \
			-kernel "$HW/$prog.elf" -append "$append" $DX \
			-drive file="$disk",if=virtio,format=raw,readonly=on </dev/null 2>&1 ;;
	esac | grep -ao "$5.*" | tr -d '\r'
}

# best TOOL PROGRAM APPEND DISK PREFIX FIELD: the run with the smallest FIELD
best() {
	local i line out=""
	for i in $(seq "$RUNS"); do
		line=$(one "$@")
		[ -n "$line" ] && out+="$line"$'\n'
	done
	[ -n "$out" ] || { echo "no result"; return; }
	printf '%s' "$out" | sort -t' ' -k"$6" -n | head -1
}

for irq in intx msix; do
	echo "== hw-kvm bench: 4 KiB reads one at a time, waiting for each $irq interrupt (best of $RUNS)"
	for t in vm-run-on vm-run-split vm-run-off qemu; do
		printf '%-22s %s\n' "$t" "$(best $t hw-kvm "bench $irq" "$work/pat.img" kvmbench: 5)"
	done
done
echo "== hw-diskbench: 64 MiB, 256 KiB polled reads, 4 in flight (best of $RUNS)"
for t in vm-run-on vm-run-split vm-run-off qemu; do
	printf '%-22s %s\n' "$t" "$(best $t hw-diskbench "" "$work/big.img" diskbench: 5)"
done
