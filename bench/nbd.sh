#!/usr/bin/env bash
# vm-nbd against qemu-nbd, side by side, on the same qcow2 image over a
# unix socket:
#   - nbdcopy out (export -> null:), MB/s
#   - nbdcopy in (a raw file -> an empty qcow2 export), MB/s
#   - random 4 KiB reads with 32 in flight (fio's nbd engine), IOPS
# and the ratio vm-nbd / qemu-nbd of each (higher is better for vm-nbd).
#
#   bench/nbd.sh    (VM_BUILD=o/rel by default; SIZE=1G, RUNTIME=10, REPS=2)
#
# Each server runs 2*REPS times in the order A B B A ..., and the best
# run of each counts, so that load from elsewhere on the machine evens
# out.  The server's CPU time per operation is printed too: it depends
# less on that load than wall-clock rates do.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
VM_BUILD=${VM_BUILD:-$top/o/rel}
VM_NBD=$VM_BUILD/bin/vm-nbd
SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-10}
REPS=${REPS:-2}
for c in qemu-nbd qemu-img nbdcopy fio; do
	command -v "$c" >/dev/null || { echo "bench/nbd.sh: $c is not installed" >&2; exit 1; }
done
[ -x "$VM_NBD" ] || { echo "bench/nbd.sh: $VM_NBD is not built" >&2; exit 1; }

W=$(mktemp -d /var/tmp/bench-nbd.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

# The source: random data in every other MiB, as a qcow2 and a raw copy.
bytes=$(numfmt --from=iec "$SIZE")
python3 - "$W/src.raw" "$bytes" <<'PY'
import os, sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, 'wb') as f:
    f.truncate(size)
    block = os.urandom(1 << 20)
    for off in range(0, size, 2 << 20):
        f.seek(off); f.write(block)
PY
qemu-img convert -O qcow2 "$W/src.raw" "$W/src.qcow2"

sock=$W/nbd.sock
uri="nbd+unix:///?socket=$sock"

start() {   # start SERVER IMAGE
	rm -f "$sock"
	case $1 in
	vm-nbd) "$VM_NBD" -k "$sock" -t -e 0 -f qcow2 "$2" & ;;
	qemu-nbd) qemu-nbd -k "$sock" -t -e 0 -f qcow2 "$2" & ;;
	esac
	pid=$!
	for _ in $(seq 200); do [ -S "$sock" ] && return; sleep 0.05; done
	echo "bench/nbd.sh: $1 did not start" >&2
	exit 1
}

halt() {
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

seconds() {   # seconds CMD...: wall time of a command
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc -l
}

mbps() { echo "scale=1; $bytes / 1048576 / $1" | bc -l; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }

declare -A R
order=
for _ in $(seq "$REPS"); do order="$order qemu-nbd vm-nbd vm-nbd qemu-nbd"; done
for s in $order; do
	start "$s" "$W/src.qcow2"
	c0=$(cpu_ticks)
	out=$(mbps "$(seconds nbdcopy "$uri" null:)")
	c1=$(cpu_ticks)
	iops=$(fio --name=rand --ioengine=nbd --uri="$uri" --rw=randread --bs=4k \
		--iodepth=32 --size="$SIZE" --runtime="$RUNTIME" --time_based \
		--output-format=json | sed -n "/^{/,\$p" | jq '.jobs[0].read.iops | floor')
	c2=$(cpu_ticks)
	halt
	qemu-img create -q -f qcow2 "$W/dst.qcow2" "$SIZE"
	start "$s" "$W/dst.qcow2"
	in=$(mbps "$(seconds nbdcopy "$W/src.raw" "$uri")")
	halt
	R[$s.out]="${R[$s.out]:-} $out"
	R[$s.in]="${R[$s.in]:-} $in"
	R[$s.iops]="${R[$s.iops]:-} $iops"
	# server CPU: ms per GiB copied out, microseconds per random read
	R[$s.cpuout]="${R[$s.cpuout]:-} $(echo "($c1 - $c0) * 10 * 1073741824 / $bytes" | bc)"
	R[$s.cpuio]="${R[$s.cpuio]:-} $(echo "scale=1; ($c2 - $c1) * 10000 / ($iops * $RUNTIME)" | bc)"
done

best() { tr ' ' '\n' | grep . | sort -g | tail -1; }
least() { tr ' ' '\n' | grep . | sort -g | head -1; }
printf '%-34s %12s %12s %8s\n' test qemu-nbd vm-nbd ratio
for k in out in iops; do
	q=$(best <<<"${R[qemu-nbd.$k]}")
	v=$(best <<<"${R[vm-nbd.$k]}")
	case $k in
	out) name="nbdcopy out (MB/s)" ;;
	in) name="nbdcopy in (MB/s)" ;;
	iops) name="random 4k read, QD32 (IOPS)" ;;
	esac
	printf '%-34s %12s %12s %8s\n' "$name" "$q" "$v" "$(echo "scale=2; $v / $q" | bc -l)"
done
for k in cpuout cpuio; do
	q=$(least <<<"${R[qemu-nbd.$k]}")
	v=$(least <<<"${R[vm-nbd.$k]}")
	case $k in
	cpuout) name="server CPU, copy out (ms/GiB)" ;;
	cpuio) name="server CPU, 4k read (us/read)" ;;
	esac
	printf '%-34s %12s %12s %8s\n' "$name" "$q" "$v" "$(echo "scale=2; $q / $v" | bc -l)"
done
