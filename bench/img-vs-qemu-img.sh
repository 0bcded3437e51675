#!/usr/bin/env bash
# vm-img against qemu-img, side by side, on a 4 GiB raw image holding
# 1 GiB of scattered data (half random, half compressible): convert
# raw->qcow2, qcow2->raw, compressed convert of random and of compressible
# data, check, map.  Prints each time and the ratio qemu-img / vm-img
# (above 1: vm-img is faster).
#
#   VM_BUILD=o/rel bench/img-vs-qemu-img.sh [scratch-dir]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
VM_IMG=${VM_BUILD:-$top/o/rel}/bin/vm-img
D=${1:-$(mktemp -d /tmp/img-bench.XXXXXX)}
mkdir -p "$D"
trap 'rm -rf "$D"' EXIT
command -v qemu-img >/dev/null || { echo "qemu-img is not installed"; exit 1; }

# 4 GiB sparse raw, 1 GiB of data in 1 MiB pieces at scattered offsets.
mkimage() {  # mkimage FILE random|text
	python3 - "$1" "$2" <<'PY'
import os, random, sys
path, kind = sys.argv[1], sys.argv[2]
f = open(path, "wb"); f.truncate(4 << 30)
r = random.Random(1)
slots = r.sample(range(4096), 1024)
piece = b"".join(b"line %08d of compressible text\n" % i for i in range(32768))[: 1 << 20]
for s in slots:
    f.seek(s << 20)
    f.write(os.urandom(1 << 20) if kind == "random" else piece)
PY
}

t() {  # t CMD...: seconds taken, output discarded
	local s e
	sync
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
	e=$(date +%s.%N)
	echo "$e - $s" | bc
}

row() {  # row NAME qemu-cmd -- vm-cmd
	local name=$1; shift
	local q=() v=()
	while [ "$1" != -- ]; do q+=("$1"); shift; done; shift
	v=("$@")
	local tq tv
	tq=$(t "${q[@]}")
	tv=$(t "${v[@]}")
	printf "%-28s qemu-img %7.2fs  vm-img %7.2fs  ratio %5.2f\n" "$name" "$tq" "$tv" \
		"$(echo "$tq / $tv" | bc -l)"
}

mkimage "$D/rand.raw" random
mkimage "$D/text.raw" text
echo "image: 4 GiB raw, 1 GiB scattered data; $(nproc) CPUs"
row "convert raw->qcow2" qemu-img convert -O qcow2 "$D/rand.raw" "$D/q.qcow2" -- \
	"$VM_IMG" convert -O qcow2 "$D/rand.raw" "$D/v.qcow2"
row "convert qcow2->raw" qemu-img convert -O raw "$D/q.qcow2" "$D/q.raw" -- \
	"$VM_IMG" convert -O raw "$D/v.qcow2" "$D/v.raw"
rm -f "$D/q.raw" "$D/v.raw"
row "convert -c (random data)" qemu-img convert -c -O qcow2 "$D/rand.raw" "$D/qc.qcow2" -- \
	"$VM_IMG" convert -c -O qcow2 "$D/rand.raw" "$D/vc.qcow2"
rm -f "$D/qc.qcow2" "$D/vc.qcow2"
row "convert -c (compressible)" qemu-img convert -c -O qcow2 "$D/text.raw" "$D/qc.qcow2" -- \
	"$VM_IMG" convert -c -O qcow2 "$D/text.raw" "$D/vc.qcow2"
row "check" qemu-img check "$D/q.qcow2" -- "$VM_IMG" check "$D/q.qcow2"
row "map --output=json" qemu-img map --output=json "$D/q.qcow2" -- \
	"$VM_IMG" map --output=json "$D/q.qcow2"
qemu-img compare -q "$D/text.raw" "$D/vc.qcow2" && echo "compressed result verified by qemu-img compare"
