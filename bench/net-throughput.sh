#!/bin/bash
# TCP throughput from a guest to the host through vm-net user, side by side
# with QEMU's own -netdev user, on the same guest (the test guest of
# tests/guest with vm-net's overlay; busybox dd | nc in the guest, a python
# sink on the host).  Each run happens in a private network namespace, so
# nothing leaves this machine.  Not run by make check.
#
#   bench/net-throughput.sh [MIB] [RUNS]     (default 64 MiB, 3 runs each)
#
# Prints MB/s for each run, the best of each, and the ratio vm-net/QEMU.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mib=${1:-64}
runs=${2:-3}
O=${O:-o/rel}
export PATH="$top/$O/bin:$PATH"
export VM_CACHE=${VM_CACHE:-$top/.cache/guest}
[ -x "$top/$O/bin/vm-net" ] || { echo "net-throughput: build first (make)" >&2; exit 1; }
if [ ! -s "$VM_CACHE/vmlinuz" ]; then
	"$top/tests/guest/build-guest.sh" "$VM_CACHE" >/dev/null
fi
"$top/tests/guest/net/build-net-guest.sh" "$VM_CACHE"
unshare -n true 2>/dev/null || { echo "net-throughput: needs unshare -n (root)" >&2; exit 1; }

cmd="ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -T 1 >/dev/null 2>&1
dd if=/dev/zero bs=65536 count=$((mib * 16)) 2>/dev/null | nc 10.0.2.2 5001; echo SENT"

# one_run MODE: print "BYTES SECONDS" of one transfer (MODE vm-net or qemu).
one_run() {
	local mode=$1 w
	w=$(mktemp -d)
	unshare -n bash -s "$mode" "$w" "$cmd" "$top" <<-'EOS'
	mode=$1 w=$2 cmd=$3 top=$4
	ip link set lo up
	python3 "$top/bench/net-sink.py" 127.0.0.1 5001 180 >"$w/sink.out" &
	sink=$!
	sleep 0.3
	if [ "$mode" = vm-net ]; then
		vm-net --fork --pid-file "$w/pid" -k "$w/net.sock" user 2>"$w/vm-net.log" || exit 1
		net=(-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$w/net.sock")
	else
		net=(-netdev user,id=n0)
	fi
	timeout 300 qemu-system-x86_64 -M pc -accel tcg -m 256 -nodefaults -display none \
		-no-reboot -serial "file:$w/console.log" \
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)" \
		"${net[@]}" -device virtio-net-pci,netdev=n0,romfile= 2>"$w/qemu.log"
	wait "$sink"
	if [ -f "$w/pid" ]; then
		# vm-net's own CPU time (utime + stime, in clock ticks)
		awk -v hz="$(getconf CLK_TCK)" '{ printf "vm-net cpu %.2f s\n", ($14 + $15) / hz }' \
			"/proc/$(cat "$w/pid")/stat" >&2
		kill "$(cat "$w/pid")" 2>/dev/null
	fi
	cat "$w/sink.out"
	EOS
	rm -rf "$w"
}

mbps() { awk '{ if ($2 > 0) printf "%.1f", $1 / $2 / 1e6; else print "0" }'; }

declare -A best=([vm-net]=0 [qemu]=0)
for i in $(seq "$runs"); do
	for mode in vm-net qemu; do
		r=$(one_run "$mode" | tail -1)
		m=$(echo "$r" | mbps)
		bytes=${r%% *}
		[ "$bytes" = $((mib * 1048576)) ] || echo "  (run $i $mode moved $bytes bytes, expected $((mib * 1048576)))"
		printf '%-28s run %d: %8s MB/s\n' "$([ "$mode" = vm-net ] && echo "vm-net user (stream)" || echo "qemu -netdev user")" "$i" "$m"
		awk -v a="$m" -v b="${best[$mode]}" 'BEGIN { exit !(a > b) }' && best[$mode]=$m
	done
done
echo "best: vm-net user ${best[vm-net]} MB/s, qemu -netdev user ${best[qemu]} MB/s"
awk -v a="${best[vm-net]}" -v b="${best[qemu]}" 'BEGIN { if (b > 0) printf "ratio vm-net/qemu: %.2f\n", a / b }'
