#!/usr/bin/env bats
# vm-img against the real qemu-img: creation, info/map/check output,
# convert, compare, snapshots, resize, commit, rebase, locking.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	require qemu-img qemu-io
}

# A raw image with scattered data and a compressible region.
mkdata() {
	qemu-img create -q -f raw "$1" 16M
	for i in 0 3 7 40 63 200 255; do
		dd if=/dev/urandom of="$1" bs=64k seek=$i count=1 conv=notrunc status=none
	done
	yes vm-img | head -c 300000 | dd of="$1" bs=1 seek=5000000 conv=notrunc status=none
}

# Keys both JSON documents have must hold equal values (jq-free: python).
json_agree() {
	python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
def cmp(x, y, path):
    if isinstance(x, dict) and isinstance(y, dict):
        for k in set(x) & set(y):
            if k in ("actual-size", "date-sec", "date-nsec"):
                continue
            cmp(x[k], y[k], path + "." + k)
    elif isinstance(x, list) and isinstance(y, list):
        assert len(x) == len(y), "%s: %d vs %d entries" % (path, len(x), len(y))
        for i, (p, q) in enumerate(zip(x, y)):
            cmp(p, q, "%s[%d]" % (path, i))
    else:
        assert x == y, "%s: %r != %r" % (path, x, y)
cmp(a, b, "")
PY
}

@test "create qcow2 prints qemu-img's Formatting line and passes qemu-img check" {
	run vm-img create -f qcow2 "$T/a.qcow2" 1G
	[ "$status" -eq 0 ]
	expected=$(qemu-img create -f qcow2 "$T/b.qcow2" 1G | sed "s|$T/b.qcow2|$T/a.qcow2|")
	[ "$output" = "$expected" ]
	qemu-img check "$T/a.qcow2"
}

@test "info human output is identical to qemu-img's" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 1G
	qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 "$T/b.qcow2"
	qemu-img snapshot -c snap1 "$T/b.qcow2"
	cd "$T"
	diff <(qemu-img info b.qcow2 | grep -v '^disk size') <(vm-img info b.qcow2 | grep -v '^disk size')
	diff <(qemu-img info --backing-chain b.qcow2 | grep -v '^disk size') \
	     <(vm-img info --backing-chain b.qcow2 | grep -v '^disk size')
}

@test "info --output=json agrees with qemu-img on every shared key" {
	for o in compat=0.10 compat=1.1,lazy_refcounts=on refcount_bits=1 refcount_bits=64 \
		 extended_l2=on,cluster_size=128k compression_type=zstd cluster_size=512; do
		rm -f "$T/x.qcow2"
		qemu-img create -q -f qcow2 -o "$o" "$T/x.qcow2" 100M
		qemu-img info --output=json "$T/x.qcow2" > "$T/q.json"
		vm-img info --output=json "$T/x.qcow2" > "$T/v.json"
		json_agree "$T/q.json" "$T/v.json" || { echo "options $o"; return 1; }
	done
}

@test "map --output=json agrees with qemu-img over a three-deep chain" {
	cd "$T"
	qemu-img create -q -f qcow2 base.qcow2 64M
	qemu-io -c 'write -P 1 0 2M' base.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
	qemu-io -c 'write -P 2 1M 2M' mid.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
	qemu-io -c 'write -P 3 2M 2M' -c 'write -z 0 512k' top.qcow2 >/dev/null
	diff <(qemu-img map --output=json top.qcow2) <(vm-img map --output=json top.qcow2)
	diff <(qemu-img map top.qcow2) <(vm-img map top.qcow2)
}

@test "check output and exit code match qemu-img on a clean image" {
	mkdata "$T/d.raw"
	qemu-img convert -O qcow2 "$T/d.raw" "$T/d.qcow2"
	cd "$T"
	diff <(qemu-img check d.qcow2) <(vm-img check d.qcow2)
	qemu-img check --output=json d.qcow2 > q.json
	vm-img check --output=json d.qcow2 > v.json
	json_agree q.json v.json
}

@test "convert raw to qcow2 and back: qemu-img check and compare pass" {
	mkdata "$T/d.raw"
	vm-img convert -O qcow2 "$T/d.raw" "$T/d.qcow2"
	qemu-img check "$T/d.qcow2"
	qemu-img compare "$T/d.raw" "$T/d.qcow2"
	vm-img convert -O raw "$T/d.qcow2" "$T/back.raw"
	cmp "$T/d.raw" "$T/back.raw"
}

@test "convert -c compresses with zlib and zstd; qemu-img reads it back" {
	mkdata "$T/d.raw"
	for ct in zlib zstd; do
		vm-img convert -c -O qcow2 -o compression_type=$ct "$T/d.raw" "$T/c-$ct.qcow2"
		qemu-img check "$T/c-$ct.qcow2"
		qemu-img compare "$T/d.raw" "$T/c-$ct.qcow2"
		run qemu-img check --output=json "$T/c-$ct.qcow2"
		[[ "$output" == *'"compressed-clusters": '[1-9]* ]]
	done
}

@test "images qemu-img compresses read back identically through vm-img" {
	mkdata "$T/d.raw"
	for ct in zlib zstd; do
		qemu-img convert -c -O qcow2 -o compression_type=$ct "$T/d.raw" "$T/q-$ct.qcow2"
		vm-img compare "$T/d.raw" "$T/q-$ct.qcow2"
		vm-img convert -O raw "$T/q-$ct.qcow2" "$T/out.raw"
		cmp "$T/d.raw" "$T/out.raw"
	done
}

@test "compare exit codes: 0 identical, 1 different, 2 error" {
	mkdata "$T/d.raw"
	cp "$T/d.raw" "$T/e.raw"
	run vm-img compare "$T/d.raw" "$T/e.raw"
	[ "$status" -eq 0 ] && [ "$output" = "Images are identical." ]
	printf x | dd of="$T/e.raw" bs=1 seek=70000 conv=notrunc status=none
	run vm-img compare "$T/d.raw" "$T/e.raw"
	[ "$status" -eq 1 ]
	[ "$output" = "$(qemu-img compare "$T/d.raw" "$T/e.raw")" ]
	run vm-img compare "$T/d.raw" "$T/missing.raw"
	[ "$status" -eq 2 ]
}

@test "snapshots made by vm-img are applied and deleted by qemu-img" {
	mkdata "$T/d.raw"
	vm-img convert -O qcow2 "$T/d.raw" "$T/s.qcow2"
	vm-img snapshot -c before "$T/s.qcow2"
	qemu-io -c 'write -P 9 0 1M' "$T/s.qcow2" >/dev/null
	qemu-img check "$T/s.qcow2"
	run qemu-img snapshot -l "$T/s.qcow2"
	[[ "$output" == *before* ]]
	qemu-img snapshot -a before "$T/s.qcow2"
	qemu-img compare "$T/d.raw" "$T/s.qcow2"
	qemu-img snapshot -d before "$T/s.qcow2"
	qemu-img check "$T/s.qcow2"
}

@test "snapshots made by qemu-img are listed, applied and deleted by vm-img" {
	mkdata "$T/d.raw"
	qemu-img convert -O qcow2 "$T/d.raw" "$T/s.qcow2"
	qemu-img snapshot -c before "$T/s.qcow2"
	qemu-io -c 'write -P 9 0 1M' "$T/s.qcow2" >/dev/null
	diff <(qemu-img snapshot -l "$T/s.qcow2") <(vm-img snapshot -l "$T/s.qcow2")
	vm-img snapshot -a before "$T/s.qcow2"
	qemu-img compare "$T/d.raw" "$T/s.qcow2"
	vm-img snapshot -d before "$T/s.qcow2"
	qemu-img check "$T/s.qcow2"
	run qemu-img snapshot -l "$T/s.qcow2"
	[ -z "$output" ]
}

@test "snapshot -l and info print the snapshot table as qemu-img, long tags included" {
	qemu-img create -q -f qcow2 "$T/s.qcow2" 16M
	for tag in a-seventeen-chars x a-very-long-snapshot-tag-of-forty-characters; do
		qemu-img snapshot -c "$tag" "$T/s.qcow2"
	done
	diff <(qemu-img snapshot -l "$T/s.qcow2") <(vm-img snapshot -l "$T/s.qcow2")
	diff <(qemu-img info "$T/s.qcow2") <(vm-img info "$T/s.qcow2")
	diff <(qemu-img snapshot -l "$T/s.qcow2") <(vm-snap list "$T/s.qcow2")
}

@test "map of an empty range prints what qemu-img prints" {
	qemu-img create -q -f qcow2 "$T/m.qcow2" 16M
	qemu-img create -q -f raw "$T/z.raw" 0
	for a in --start-offset=32M --max-length=0 "--start-offset=1M --max-length=0"; do
		diff <(qemu-img map --output=json $a "$T/m.qcow2") \
		     <(vm-img map --output=json $a "$T/m.qcow2")
		diff <(qemu-img map $a "$T/m.qcow2") <(vm-img map $a "$T/m.qcow2")
	done
	diff <(qemu-img map --output=json "$T/z.raw") <(vm-img map --output=json "$T/z.raw")
}

@test "convert -l copies an internal snapshot" {
	mkdata "$T/d.raw"
	qemu-img convert -O qcow2 "$T/d.raw" "$T/s.qcow2"
	qemu-img snapshot -c snap "$T/s.qcow2"
	qemu-io -c 'write -P 9 0 1M' "$T/s.qcow2" >/dev/null
	vm-img convert -l snapshot.name=snap -O raw "$T/s.qcow2" "$T/o.raw"
	cmp "$T/d.raw" "$T/o.raw"
}

@test "resize grows and, with --shrink, shrinks a qcow2 image" {
	vm-img create -q -f qcow2 "$T/r.qcow2" 64M
	run vm-img resize "$T/r.qcow2" +1G
	[ "$status" -eq 0 ] && [ "$output" = "Image resized." ]
	[ "$(qemu-img info --output=json "$T/r.qcow2" | grep virtual-size)" = '    "virtual-size": 1140850688,' ]
	run vm-img resize "$T/r.qcow2" -- -1G
	[ "$status" -eq 1 ]
	vm-img resize --shrink "$T/r.qcow2" 64M
	qemu-img check "$T/r.qcow2"
}

@test "commit and rebase keep the guest-visible content" {
	cd "$T"
	qemu-img create -q -f qcow2 base.qcow2 64M
	qemu-io -c 'write -P 1 0 2M' base.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
	qemu-io -c 'write -P 2 1M 2M' mid.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
	qemu-io -c 'write -P 3 2M 2M' top.qcow2 >/dev/null
	qemu-img convert -O raw top.qcow2 want.raw
	cp top.qcow2 t2.qcow2
	vm-img rebase -b base.qcow2 -F qcow2 t2.qcow2
	qemu-img compare want.raw t2.qcow2
	qemu-img check t2.qcow2
	run vm-img commit top.qcow2
	[ "$status" -eq 0 ] && [ "$output" = "Image committed." ]
	qemu-img compare want.raw mid.qcow2
	qemu-img check mid.qcow2
}

@test "amend changes compat and refcount_bits; qemu-img agrees" {
	mkdata "$T/d.raw"
	vm-img convert -O qcow2 "$T/d.raw" "$T/a.qcow2"
	vm-img amend -o refcount_bits=4 "$T/a.qcow2"
	qemu-img check "$T/a.qcow2"
	[[ "$(qemu-img info "$T/a.qcow2")" == *"refcount bits: 4"* ]]
	vm-img amend -o refcount_bits=16,compat=0.10 "$T/a.qcow2"
	qemu-img check "$T/a.qcow2"
	[[ "$(qemu-img info "$T/a.qcow2")" == *"compat: 0.10"* ]]
	qemu-img compare "$T/d.raw" "$T/a.qcow2"
}

@test "measure agrees with qemu-img" {
	mkdata "$T/d.raw"
	diff <(qemu-img measure -O qcow2 --size 1G) <(vm-img measure -O qcow2 --size 1G)
	diff <(qemu-img measure -O qcow2 "$T/d.raw") <(vm-img measure -O qcow2 "$T/d.raw")
}

@test "dd copies a range like qemu-img dd" {
	mkdata "$T/d.raw"
	vm-img dd bs=64k skip=2 count=8 if="$T/d.raw" of="$T/v.raw"
	qemu-img dd bs=64k skip=2 count=8 if="$T/d.raw" of="$T/q.raw"
	cmp "$T/v.raw" "$T/q.raw"
}

@test "bench reads and writes" {
	vm-img create -q -f qcow2 "$T/b.qcow2" 16M
	run vm-img bench -c 2000 -d 8 "$T/b.qcow2"
	[ "$status" -eq 0 ] && [[ "$output" == *"Run completed in"* ]]
	vm-img bench -w -c 2000 -d 8 "$T/b.qcow2"
	qemu-img check "$T/b.qcow2"
}

@test "an image a running qemu-nbd holds is refused for writing and readable with -U" {
	require qemu-nbd
	vm-img create -q -f qcow2 "$T/l.qcow2" 16M
	qemu-nbd -k "$T/nbd.sock" "$T/l.qcow2" &
	pid=$!
	for i in $(seq 50); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
	run vm-img resize "$T/l.qcow2" +1M
	stop_pid $pid
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *lock* ]]
	qemu-nbd -k "$T/nbd.sock" "$T/l.qcow2" &
	pid=$!
	for i in $(seq 50); do [ -S "$T/nbd.sock" ] && break; sleep 0.1; done
	run vm-img info -U "$T/l.qcow2"
	stop_pid $pid
	[ "$status" -eq 0 ]
}

@test "commands without a file say so in one line" {
	for c in info check map snapshot amend; do
		run vm-img $c
		[ "$status" -eq 1 ]
		one_line_error
	done
	run vm-img frobnicate
	[ "$status" -eq 1 ] && [ "$output" = "vm-img: Command not found: frobnicate" ]
}
