#!/usr/bin/env bats
# vm-img and qemu-img over a matrix of qcow2 options: whatever one tool
# writes, the other checks, compares and reads back identically; info and
# map JSON agree on every shared key.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	require qemu-img qemu-io python3
	qemu-img create -q -f raw "$T/d.raw" 8M
	for i in 0 5 17 64 100 127; do
		dd if=/dev/urandom of="$T/d.raw" bs=32k seek=$i count=1 conv=notrunc status=none
	done
	yes matrix | head -c 200000 | dd of="$T/d.raw" bs=1 seek=3000000 conv=notrunc status=none
}

MATRIX="cluster_size=512 cluster_size=4k cluster_size=2M compat=0.10
refcount_bits=1 refcount_bits=8 refcount_bits=64 lazy_refcounts=on
extended_l2=on,cluster_size=32k compression_type=zstd
preallocation=metadata preallocation=falloc preallocation=full"

json_agree() {
	python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
def cmp(x, y, p):
    if isinstance(x, dict) and isinstance(y, dict):
        for k in set(x) & set(y) - {"actual-size"}:
            cmp(x[k], y[k], p + "." + k)
    elif isinstance(x, list) and isinstance(y, list):
        assert len(x) == len(y), "%s: lengths %d %d" % (p, len(x), len(y))
        for i, (u, v) in enumerate(zip(x, y)):
            cmp(u, v, "%s[%d]" % (p, i))
    else:
        assert x == y, "%s: %r != %r" % (p, x, y)
cmp(a, b, "")
PY
}

@test "images vm-img converts pass qemu-img check and compare over the matrix" {
	for o in $MATRIX; do
		rm -f "$T/v.qcow2"
		vm-img convert -O qcow2 -o "$o" "$T/d.raw" "$T/v.qcow2" || { echo "convert $o"; return 1; }
		qemu-img check -q "$T/v.qcow2" || { echo "check $o"; return 1; }
		qemu-img compare -q "$T/d.raw" "$T/v.qcow2" || { echo "compare $o"; return 1; }
	done
}

@test "compressed converts over the matrix pass qemu-img check and compare" {
	for o in cluster_size=4k compression_type=zstd extended_l2=on,cluster_size=64k refcount_bits=2 compat=0.10; do
		rm -f "$T/v.qcow2"
		vm-img convert -c -O qcow2 -o "$o" "$T/d.raw" "$T/v.qcow2" || { echo "convert $o"; return 1; }
		qemu-img check -q "$T/v.qcow2" || { echo "check $o"; return 1; }
		qemu-img compare -q "$T/d.raw" "$T/v.qcow2" || { echo "compare $o"; return 1; }
	done
}

@test "images qemu-img writes read back identically through vm-img; info and map agree" {
	for o in $MATRIX; do
		rm -f "$T/q.qcow2" "$T/o.raw"
		qemu-img convert -O qcow2 -o "$o" "$T/d.raw" "$T/q.qcow2"
		vm-img compare -q "$T/d.raw" "$T/q.qcow2" || { echo "compare $o"; return 1; }
		vm-img convert -O raw "$T/q.qcow2" "$T/o.raw"
		cmp "$T/d.raw" "$T/o.raw" || { echo "cmp $o"; return 1; }
		qemu-img info --output=json "$T/q.qcow2" > "$T/qi.json"
		vm-img info --output=json "$T/q.qcow2" > "$T/vi.json"
		json_agree "$T/qi.json" "$T/vi.json" || { echo "info $o"; return 1; }
		qemu-img map --output=json "$T/q.qcow2" > "$T/qm.json"
		vm-img map --output=json "$T/q.qcow2" > "$T/vm.json"
		json_agree "$T/qm.json" "$T/vm.json" || { echo "map $o"; return 1; }
	done
}

@test "vm-img creates the matrix images as qemu-img does (check clean, same info)" {
	for o in $MATRIX; do
		rm -f "$T/v.qcow2" "$T/q.qcow2"
		vm-img create -q -f qcow2 -o "$o" "$T/v.qcow2" 100M
		qemu-img create -q -f qcow2 -o "$o" "$T/q.qcow2" 100M
		qemu-img check -q "$T/v.qcow2" || { echo "check $o"; return 1; }
		qemu-img info --output=json "$T/q.qcow2" | sed 's/q.qcow2/X/' > "$T/qi.json"
		vm-img info --output=json "$T/v.qcow2" | sed 's/v.qcow2/X/' > "$T/vi.json"
		json_agree "$T/qi.json" "$T/vi.json" || { echo "info $o"; return 1; }
	done
}

@test "partial writes into a three-deep chain (also with subclusters) match qemu-img's" {
	for o in cluster_size=64k extended_l2=on,cluster_size=64k compat=0.10; do
		cd "$T"
		rm -f base.qcow2 mid.qcow2 v.qcow2 q.qcow2
		qemu-img convert -O qcow2 -o "$o" d.raw base.qcow2
		qemu-img create -q -f qcow2 -o "$o" -b base.qcow2 -F qcow2 mid.qcow2
		qemu-io -c 'write -P 7 100k 300k' mid.qcow2 >/dev/null
		vm-img create -q -f qcow2 -o "$o" -b mid.qcow2 -F qcow2 v.qcow2
		cp v.qcow2 q.qcow2
		vm-img bench -q -w -c 40 -d 4 -s 4k -S 52k -o 1536 --pattern=5 v.qcow2
		qemu-img bench -q -w -c 40 -d 4 -s 4k -S 52k -o 1536 --pattern=5 q.qcow2
		qemu-img check -q v.qcow2 || { echo "check $o"; return 1; }
		qemu-img compare -q q.qcow2 v.qcow2 || { echo "compare $o"; return 1; }
		vm-img compare -q q.qcow2 v.qcow2 || { echo "vm compare $o"; return 1; }
	done
}
