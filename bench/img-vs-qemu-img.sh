#!/usr/bin/env bash
# vm-img against qemu-img, side by side, on a 4 GiB raw image holding
# 1 GiB of scattered data (random, or compressible text): convert
# raw->qcow2, qcow2->raw, compressed convert of random and of compressible
# data, check, map.  Each row runs both tools RUNS times, alternating, and
# prints the median wall time of each, the ratio qemu-img / vm-img (above
# 1: vm-img is faster), the median CPU time (user + system) of each, and
# for converts the size of each output and the ratio vm-img / qemu-img.
# check and map are quick, so one run of them is LOOP invocations.
#
#   VM_BUILD=o/rel bench/img-vs-qemu-img.sh [-n RUNS] [-s GiB] [scratch-dir]
#
# The machine should be quiet: the load average is printed before and
# after.  -s scales the image (default 4 GiB with a quarter of it data).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
VM_IMG=${VM_BUILD:-$top/o/rel}/bin/vm-img
RUNS=3
GIB=4
LOOP=20
while getopts n:s: o; do
	case $o in
	n) RUNS=$OPTARG ;;
	s) GIB=$OPTARG ;;
	*) echo "usage: $0 [-n runs] [-s GiB] [scratch-dir]" >&2; exit 1 ;;
	esac
done
shift $((OPTIND - 1))
D=${1:-$(mktemp -d /tmp/img-bench.XXXXXX)}
mkdir -p "$D"
trap 'rm -rf "$D"' EXIT
command -v qemu-img >/dev/null || { echo "qemu-img is not installed"; exit 1; }
[ -x "$VM_IMG" ] || { echo "$VM_IMG is not built"; exit 1; }

# GIB GiB sparse raw, a quarter of it data in 1 MiB pieces at scattered
# offsets (the same offsets for both kinds).
mkimage() {  # mkimage FILE random|text
	python3 - "$1" "$2" "$GIB" <<'PY'
import os, random, sys
path, kind, gib = sys.argv[1], sys.argv[2], int(sys.argv[3])
mib = gib << 10
f = open(path, "wb"); f.truncate(mib << 20)
r = random.Random(1)
slots = r.sample(range(mib), mib // 4)
piece = b"".join(b"line %08d of compressible text\n" % i for i in range(32768))[: 1 << 20]
for s in slots:
    f.seek(s << 20)
    f.write(os.urandom(1 << 20) if kind == "random" else piece)
PY
}

# once LOOP CMD...: run CMD LOOP times; prints "wall cpu" in seconds.
once() {
	local loop=$1 i; shift
	sync
	/usr/bin/time -f "%e %U %S" -o "$D/time" bash -c '
		n=$1; shift
		for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 || exit 1; done' \
		- "$loop" "$@" || { echo "failed: $*" >&2; exit 1; }
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$D/time"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

size() { [ -e "$1" ] && stat -c %s "$1" || echo 0; }

hr() { awk -v b="$1" 'BEGIN { if (b >= 1073741824) printf "%.2fG", b / 1073741824;
	else printf "%.1fM", b / 1048576 }'; }


# row NAME LOOP QOUT VOUT qemu-cmd... -- vm-cmd...: QOUT/VOUT are the
# outputs, or - for none.  Before each run both outputs are removed (a
# leftover output of the other tool costs the writer page-cache reclaim),
# and the tools take turns going first (qemu-img last, so its outputs are
# there for the rows after).
row() {
	local name=$1 loop=$2 qo=$3 vo=$4; shift 4
	local q=() v=() i sq=0 sv=0 sr=-
	while [ "$1" != -- ]; do q+=("$1"); shift; done; shift
	v=("$@")
	: > "$D/q.t"; : > "$D/v.t"
	for ((i = 0; i < RUNS; i++)); do
		for t in $([ $(((RUNS - 1 - i) % 2)) -eq 0 ] && echo v q || echo q v); do
			[ "$qo" = - ] || rm -f "$qo" "$vo"
			if [ $t = q ]; then
				once "$loop" "${q[@]}" >> "$D/q.t"
				[ "$qo" = - ] || sq=$(size "$qo")
			else
				once "$loop" "${v[@]}" >> "$D/v.t"
				[ "$vo" = - ] || sv=$(size "$vo")
			fi
		done
	done
	# the last turn was qemu-img's: remake vm-img's output for later rows
	[ "$vo" = - ] || [ -e "$vo" ] || "${v[@]}" >/dev/null 2>&1
	local tq tv cq cv
	tq=$(cut -d' ' -f1 "$D/q.t" | median); tv=$(cut -d' ' -f1 "$D/v.t" | median)
	cq=$(cut -d' ' -f2 "$D/q.t" | median); cv=$(cut -d' ' -f2 "$D/v.t" | median)
	if [ "$qo" != - ]; then
		sr=$(awk -v a="$sv" -v b="$sq" 'BEGIN { printf "%.4f", a / b }')
		sq=$(hr "$sq"); sv=$(hr "$sv")
	else
		sq=-; sv=-
	fi
printf "%-26s %8.2fs %8.2fs %6.2f %7.2fs %7.2fs %9s %9s %6s\n" "$name" "$tq" "$tv" \
		"$(awk -v a="$tq" -v b="$tv" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
		"$cq" "$cv" "$sq" "$sv" "$sr"
}

mkimage "$D/rand.raw" random
mkimage "$D/text.raw" text
echo "# image: $GIB GiB raw, $((GIB * 256)) MiB scattered data; $(nproc) CPUs;" \
	"median of $RUNS runs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-26s %9s %9s %6s %8s %8s %9s %9s %6s\n" operation qemu-img vm-img ratio \
	"cpu-q" "cpu-v" size-q size-v "v/q"
row "convert raw->qcow2" 1 "$D/q.qcow2" "$D/v.qcow2" \
	qemu-img convert -O qcow2 "$D/rand.raw" "$D/q.qcow2" -- \
	"$VM_IMG" convert -O qcow2 "$D/rand.raw" "$D/v.qcow2"
row "convert qcow2->raw" 1 "$D/q.raw" "$D/v.raw" \
	qemu-img convert -O raw "$D/q.qcow2" "$D/q.raw" -- \
	"$VM_IMG" convert -O raw "$D/q.qcow2" "$D/v.raw"
rm -f "$D/q.raw" "$D/v.raw"
row "convert -c (random)" 1 "$D/qc.qcow2" "$D/vc.qcow2" \
	qemu-img convert -c -O qcow2 "$D/rand.raw" "$D/qc.qcow2" -- \
	"$VM_IMG" convert -c -O qcow2 "$D/rand.raw" "$D/vc.qcow2"
qemu-img compare -q "$D/rand.raw" "$D/vc.qcow2" || echo "MISMATCH: vm-img -c random"
rm -f "$D/qc.qcow2" "$D/vc.qcow2"
row "convert -c (compressible)" 1 "$D/qc.qcow2" "$D/vc.qcow2" \
	qemu-img convert -c -O qcow2 "$D/text.raw" "$D/qc.qcow2" -- \
	"$VM_IMG" convert -c -O qcow2 "$D/text.raw" "$D/vc.qcow2"
qemu-img check -q "$D/vc.qcow2" && qemu-img compare -q "$D/text.raw" "$D/vc.qcow2" ||
	echo "MISMATCH: vm-img -c compressible"
row "check (x$LOOP)" "$LOOP" - - qemu-img check "$D/q.qcow2" -- \
	"$VM_IMG" check "$D/q.qcow2"
row "map --output=json (x$LOOP)" "$LOOP" - - qemu-img map --output=json "$D/q.qcow2" -- \
	"$VM_IMG" map --output=json "$D/q.qcow2"
row "check -c image (x$LOOP)" "$LOOP" - - qemu-img check "$D/qc.qcow2" -- \
	"$VM_IMG" check "$D/qc.qcow2"
row "map -c image (x$LOOP)" "$LOOP" - - qemu-img map --output=json "$D/qc.qcow2" -- \
	"$VM_IMG" map --output=json "$D/qc.qcow2"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
