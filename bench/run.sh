#!/usr/bin/env bash
# vm-run against qemu-system-x86_64 on the same Debian test guest (stock
# kernel + busybox initramfs from tests/guest), same accelerator class:
#   1. time to the guest's marker line (VM-GUEST-READY) and to power-off
#      (vm-run inflates the kernel on the host by default and keeps it in
#      its kernel cache: a row for the first boot of the kernel and one for
#      the next boots; a last row keeps the bzImage's decompressor in the
#      guest, as QEMU does);
#   2. in-guest sequential read throughput of a 256 MiB qcow2 disk on
#      virtio-blk (dd of /dev/vda), vm-run's disk served by a vm-nbd child,
#      then the same from the guest's page cache (guest CPU alone) and
#      with O_DIRECT (the device and its back-end: 1 MiB reads, one
#      request at a time, and 4 MiB reads, several);
#   and, with no OS in the way (tests/guest multiboot programs): start-up
#   time to a program's exit, and virtio-blk read throughput.
# KVM is used on both sides where real KVM exists, TCG/JIT otherwise.
#
#   bench/run.sh            (VM_BUILD=o/rel, BENCH_TIMEOUT=600 seconds)
#   BENCH_ONLY=disk bench/run.sh     only the two disk measures
#   BENCH_DISK_REPEAT=N     the multiboot disk measure N times, QEMU and
#                           vm-run alternating, each figure and the median
#                           (the machine is noisy; default 1)
#   BENCH_GUEST_REPEAT=N    the in-guest disk measures N times, alternating,
#                           each figure's median (default 3)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${VM_BUILD:-$top/o/rel}
TIMEOUT=${BENCH_TIMEOUT:-600}
cache=${VM_CACHE:-$top/.cache/guest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$top/tests/guest/build-guest.sh" "$cache" >/dev/null || { echo "bench/run: no test guest"; exit 0; }
K=$cache/vmlinuz
I=$cache/initramfs.cpio.gz

if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
	qaccel=kvm; vaccel=kvm
else
	qaccel=tcg; vaccel=jit
fi

# run_timed LABEL CMD...: prints "LABEL marker=S total=S" (or a failure),
# and leaves the console output in $work/LABEL.out
run_timed() {
	local label=$1; shift
	local start marker="" end
	start=$(date +%s.%N)
	timeout "$TIMEOUT" "$@" </dev/null 2>&1 | while IFS= read -r line; do
		printf '%s\n' "$line" >>"$work/$label.out"
		case $line in *VM-GUEST-READY*) date +%s.%N >"$work/$label.marker" ;; esac
	done
	end=$(date +%s.%N)
	if [ -s "$work/$label.marker" ]; then
		awk -v l="$label" -v s="$start" -v m="$(cat "$work/$label.marker")" -v e="$end" \
			'BEGIN { printf "%-28s marker %6.2f s   power-off %6.2f s\n", l, m - s, e - s }'
	else
		printf '%-28s did not reach the marker in %s s\n' "$label" "$TIMEOUT"
	fi
}

# Device level, no Linux: tests/guest multiboot programs (make builds them).
HWB=$B/tests/guest
DX="-device isa-debug-exit,iobase=0xf4,iosize=0x04"
ONLY=${BENCH_ONLY:-all}
if [ -f "$HWB/hw-hello.elf" ] && [ "$ONLY" != disk ]; then
	echo "== start-up to a multiboot program's exit (QEMU goes through SeaBIOS, vm-run does not)"
	for who in qemu vm-run; do
		start=$(date +%s.%N)
		for i in 1 2 3 4 5; do
			if [ $who = qemu ]; then
				qemu-system-x86_64 -accel $qaccel -nographic -kernel "$HWB/hw-hello.elf" $DX </dev/null >/dev/null 2>&1
			else
				"$B/bin/vm-run" -accel $vaccel -nographic -kernel "$HWB/hw-hello.elf" $DX </dev/null >/dev/null 2>&1
			fi
		done
		awk -v w="$who" -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%-28s %6.3f s per run\n", w, (e - s) / 5 }'
	done
fi
if [ -f "$HWB/hw-diskbench.elf" ]; then
	echo "== virtio-blk sequential read of a 256 MiB qcow2, multiboot program (4 x 256 KiB in flight)"
	head -c $((256 << 20)) /dev/urandom >"$work/b.raw"
	qemu-img convert -O qcow2 "$work/b.raw" "$work/b.qcow2" && rm -f "$work/b.raw"
	qs=() vs=()
	for i in $(seq "${BENCH_DISK_REPEAT:-1}"); do
		q=$(timeout "$TIMEOUT" qemu-system-x86_64 -accel $qaccel -nographic -kernel "$HWB/hw-diskbench.elf" $DX \
			-drive file="$work/b.qcow2",if=none,id=d0,format=qcow2,readonly=on \
			-device virtio-blk-pci,drive=d0,disable-legacy=on </dev/null 2>&1 | grep -ao 'diskbench:.*')
		v=$(timeout "$TIMEOUT" "$B/bin/vm-run" -accel $vaccel -nographic -kernel "$HWB/hw-diskbench.elf" $DX \
			-drive file="$work/b.qcow2",if=virtio,format=qcow2,readonly=on </dev/null 2>&1 | grep -ao 'diskbench:.*')
		qs+=("$(echo "$q" | grep -o '[0-9]* ms' | cut -d' ' -f1)")
		vs+=("$(echo "$v" | grep -o '[0-9]* ms' | cut -d' ' -f1)")
	done
	if [ "${BENCH_DISK_REPEAT:-1}" -gt 1 ]; then
		median() { printf '%s\n' "$@" | grep . | sort -n | awk '{v[NR] = $1} END { if (NR) print (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2 }'; }
		q="diskbench: ${qs[*]} ms, median $(median "${qs[@]}") ms"
		v="diskbench: ${vs[*]} ms, median $(median "${vs[@]}") ms"
	fi
	printf '%-28s %s\n' "qemu" "${q:-no result}" "vm-run (disk via vm-nbd)" "${v:-no result}"
	rm -f "$work/b.qcow2"
fi

if [ "$ONLY" != disk ]; then
	echo "== boot to marker (accelerators: qemu $qaccel, vm-run $vaccel)"
	APPEND="console=ttyS0 quiet vmtest.cmd=true"
	run_timed qemu-direct qemu-system-x86_64 -accel $qaccel -m 512 -nographic -no-reboot \
		-kernel "$K" -initrd "$I" -append "$APPEND"
	# the first boot of this kernel (an empty kernel cache: vm-run inflates
	# it and keeps it), then the next boots (read back from the cache)
	XDG_CACHE_HOME=$work/xdg run_timed vm-run-first-boot "$B/bin/vm-run" -accel $vaccel -m 512 \
		-nographic -no-reboot -kernel "$K" -initrd "$I" -append "$APPEND"
	XDG_CACHE_HOME=$work/xdg run_timed vm-run-direct "$B/bin/vm-run" -accel $vaccel -m 512 -nographic -no-reboot \
		-kernel "$K" -initrd "$I" -append "$APPEND"
	# the bzImage's own decompressor in the guest, as QEMU runs it
	run_timed vm-run-guest-decompress "$B/bin/vm-run" -accel $vaccel -m 512 -nographic -no-reboot \
		-machine kernel-decompress=guest -kernel "$K" -initrd "$I" -append "$APPEND"
fi

echo "== in-guest sequential read of a 256 MiB qcow2 disk (virtio-blk)"
head -c $((256 << 20)) /dev/urandom >"$work/d.raw"
qemu-img convert -O qcow2 "$work/d.raw" "$work/d.qcow2" && rm -f "$work/d.raw"
# The first read is the headline (QEMU's figure); the same read again
# comes from the guest's page cache (guest CPU alone: the copy to user
# space), and O_DIRECT reads (one 1 MiB request at a time; then 4 MiB
# reads, direct4m, which the guest's block layer sends as several
# requests at once) are mostly the device and its back-end: four passes
# of each, timed together (one takes 0.2 s, and busybox's
# time counts hundredths).  The shell keeps /dev/vda
# open: Linux drops a block device's page cache at its last close, and
# the second read would go to the disk again.
DD='exec 3</dev/vda; for m in first cached direct direct4m; do n=1 f= bs=1M
case $m in direct) n=4 f=iflag=direct;; direct4m) n=4 f=iflag=direct bs=4M;; esac
echo "DISK-PASS $m"; time sh -c "i=0; while [ \$i -lt $n ]; do dd if=/dev/vda of=/dev/null bs=$bs $f 2>/dev/null; i=\$((i + 1)); done"; done'
APPEND="console=ttyS0 quiet vmtest.cmdb64=$(printf '%s' "$DD" | base64 -w0)"
# QEMU and vm-run alternate, BENCH_GUEST_REPEAT rounds (default 3): each
# figure is the median of the rounds (the host is shared and noisy; one
# round gave anything from half to twice another's O_DIRECT figure).
rounds=${BENCH_GUEST_REPEAT:-3}
: >"$work/disk.tsv"
for round in $(seq "$rounds"); do
	for who in qemu vm-run; do
		rm -f "$work/$who-disk.out"
		if [ $who = qemu ]; then
			run_timed $who-disk qemu-system-x86_64 -accel $qaccel -m 512 -nographic -no-reboot \
				-kernel "$K" -initrd "$I" -append "$APPEND" \
				-drive file="$work/d.qcow2",if=virtio,format=qcow2,readonly=on >/dev/null
		else
			run_timed $who-disk "$B/bin/vm-run" -accel $vaccel -m 512 -nographic -no-reboot \
				-kernel "$K" -initrd "$I" -append "$APPEND" \
				-drive file="$work/d.qcow2",if=virtio,format=qcow2,readonly=on >/dev/null
		fi
		# busybox time: "real<TAB>0m 1.23s", "sys<TAB>0m 1.20s"
		tr -d '\r' <"$work/$who-disk.out" | awk -v who="$who" '
			/^DISK-PASS/ { m = $2 }
			/^real/ { split($2, a, "m"); r[m] = a[1] * 60 + $3 }
			/^sys/ { split($2, a, "m"); c[m] = a[1] * 60 + $3 }
			END { for (m in r) if (r[m] > 0) print who, m, r[m], c[m] }' >>"$work/disk.tsv"
	done
done
# per measure: MiB/s of each round, the median's, and the guest CPU of the
# median round; then vm-run's medians over QEMU's
awk -v rounds="$rounds" '
	{ k = $1 SUBSEP $2; n[k]++; t[k, n[k]] = $3; c[k, n[k]] = $4 }
	function med(k,   i, j, x, y, m) {
		for (i = 1; i <= n[k]; i++) o[i] = i
		for (i = 1; i <= n[k]; i++) for (j = i + 1; j <= n[k]; j++)
			if (t[k, o[j]] < t[k, o[i]]) { x = o[i]; o[i] = o[j]; o[j] = x }
		m = o[int((n[k] + 1) / 2)]
		mc = c[k, m]
		return t[k, m]
	}
	END {
		nm = split("first cached direct direct4m", ms, " ")
		for (w = 1; w <= 2; w++) {
			who = w == 1 ? "qemu" : "vm-run"
			for (i = 1; i <= nm; i++) {
				m = ms[i]; k = who SUBSEP m; mib = 256 * (m ~ /^direct/ ? 4 : 1)
				if (!n[k]) { printf "%-28s no result\n", who " " m; continue }
				all = ""
				for (j = 1; j <= n[k]; j++) all = all sprintf(" %.0f", mib / t[k, j])
				s = med(k)
				tput[who, m] = mib / s
				printf "%-28s %7.1f MiB/s median (rounds:%s; guest CPU %.2f s)\n",
				       who " " (m == "first" ? "disk read" : m), mib / s, all, mc
			}
		}
		printf "%-28s", "ratio vm-run/qemu"
		for (i = 1; i <= nm; i++)
			if (tput["qemu", ms[i]] > 0)
				printf " %s %.2f", ms[i], tput["vm-run", ms[i]] / tput["qemu", ms[i]]
		printf "\n"
	}' "$work/disk.tsv"
