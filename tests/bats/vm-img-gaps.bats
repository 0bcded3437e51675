#!/usr/bin/env bats
# Behaviours closed late: shrinking frees L2 tables and cuts the file as
# qemu-img does, check -r all repairs L2 entries past the end of the file,
# lazy_refcounts leaves a clean image, convert -C (copy_file_range) and -r
# (rate limit), bench -i/-n validation.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	require qemu-img qemu-io python3
}

# l1 FILE: the L1 entries, one per line, in hex.
l1() {
	python3 - "$1" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb'); h = f.read(48)
n, off = struct.unpack('>IQ', h[36:48]); f.seek(off)
for e in struct.unpack('>%dQ' % n, f.read(8 * n)):
    print(hex(e))
PY
}

@test "resize --shrink frees the L2 tables past the end and cuts the file like qemu-img" {
	for t in q v; do
		qemu-img create -q -f qcow2 "$T/$t.qcow2" 2G
		qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 1100M 2M' -c 'write -P 3 1900M 1M' \
			"$T/$t.qcow2" >/dev/null
	done
	qemu-img resize -q --shrink "$T/q.qcow2" 100M
	vm-img resize --shrink "$T/v.qcow2" 100M
	qemu-img check "$T/v.qcow2"
	qemu-img compare "$T/q.qcow2" "$T/v.qcow2"
	[ "$(l1 "$T/v.qcow2")" = "$(l1 "$T/q.qcow2")" ]
	[ "$(stat -c %s "$T/v.qcow2")" = "$(stat -c %s "$T/q.qcow2")" ]
}

@test "check -r all repairs an L2 entry pointing past the end of the file" {
	qemu-img create -q -f qcow2 "$T/c.qcow2" 16M
	qemu-io -c 'write -P 5 0 256k' "$T/c.qcow2" >/dev/null
	python3 - "$T/c.qcow2" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(40); l1 = struct.unpack('>Q', f.read(8))[0]
f.seek(l1); l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
f.seek(l2 + 8); f.write(struct.pack('>Q', 0x8000000000000000 | 0x40000000))
PY
	run vm-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
	run vm-img check -r all "$T/c.qcow2"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ "$output" == *"1 corruptions"* ]]
	run qemu-img check "$T/c.qcow2"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	# the damaged cluster now reads as zeros, the rest is intact
	run qemu-io -c 'read -P 0 64k 64k' -c 'read -P 5 0 64k' -c 'read -P 5 128k 128k' \
		"$T/c.qcow2"
	[[ "$output" != *Pattern* ]] || { echo "$output"; return 1; }
}

@test "lazy_refcounts: vm-img writes leave a clean image that qemu-img accepts" {
	qemu-img create -q -f qcow2 -o lazy_refcounts=on "$T/l.qcow2" 64M
	vm-img bench -w -c 200 -s 64k -S 192k "$T/l.qcow2" >/dev/null
	run qemu-img check "$T/l.qcow2"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	run vm-img info --output=json "$T/l.qcow2"
	[[ "$output" == *'"dirty-flag": false'* ]]
}

@test "convert -C copies raw to raw with copy_file_range; refused with -c or -S" {
	require strace
	qemu-img create -q -f raw "$T/a.raw" 8M
	dd if=/dev/urandom of="$T/a.raw" bs=64k seek=3 count=5 conv=notrunc status=none
	# (LeakSanitizer cannot run under ptrace)
	ASAN_OPTIONS=detect_leaks=0 run strace -f -e trace=copy_file_range vm-img convert -C -O raw "$T/a.raw" "$T/b.raw"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[[ "$output" == *copy_file_range* ]]
	cmp "$T/a.raw" "$T/b.raw"
	run vm-img convert -C -c -O qcow2 "$T/a.raw" "$T/c.qcow2"
	[ "$status" -eq 1 ]
	one_line_error
	run vm-img convert -C -S 0 -O raw "$T/a.raw" "$T/c.raw"
	[ "$status" -eq 1 ]
	one_line_error
}

@test "commit -r limits the rate" {
	qemu-img create -q -f raw "$T/base.raw" 4M
	qemu-img create -q -f qcow2 -b base.raw -F raw "$T/top.qcow2"
	qemu-io -c 'write -P 9 0 3M' "$T/top.qcow2" >/dev/null
	s=$(date +%s.%N)
	vm-img commit -q -r 2M "$T/top.qcow2"
	e=$(date +%s.%N)
	python3 -c "import sys; sys.exit(0 if $e - $s >= 1.0 else 1)"
	run qemu-io -f raw -c 'read -P 9 0 3M' "$T/base.raw"
	[[ "$output" != *Pattern* ]] || { echo "$output"; return 1; }
	run vm-img commit -r x "$T/top.qcow2"
	[ "$status" -eq 1 ]
	one_line_error
}

@test "convert -r limits the rate; -W works with -c" {
	qemu-img create -q -f raw "$T/a.raw" 4M
	dd if=/dev/urandom of="$T/a.raw" bs=1M count=4 conv=notrunc status=none
	s=$(date +%s.%N)
	vm-img convert -r 2M -O raw "$T/a.raw" "$T/b.raw"
	e=$(date +%s.%N)
	cmp "$T/a.raw" "$T/b.raw"
	python3 -c "import sys; sys.exit(0 if $e - $s >= 1.4 else 1)"
	vm-img convert -r 0 -O raw "$T/a.raw" "$T/c.raw"
	run vm-img convert -r foo -O raw "$T/a.raw" "$T/d.raw"
	[ "$status" -eq 1 ]
	one_line_error
	vm-img convert -c -W -O qcow2 "$T/a.raw" "$T/c.qcow2"
	qemu-img check -q "$T/c.qcow2"
	qemu-img compare -q "$T/a.raw" "$T/c.qcow2"
}

@test "bench -i and -n: native needs -t none as with qemu-img; unknown modes refused" {
	qemu-img create -q -f raw "$T/b.raw" 16M
	for args in "-n" "-i native" "-i foo"; do
		run vm-img bench -c 10 $args "$T/b.raw"
		q=$(qemu-img bench -c 10 $args "$T/b.raw" >/dev/null 2>&1; echo $?)
		[ "$status" -eq "$q" ] || { echo "$args: $status vs $q"; return 1; }
		one_line_error
	done
	for args in "-n -t none" "-i threads" "-i io_uring -t none"; do
		run vm-img bench -c 10 $args "$T/b.raw"
		[ "$status" -eq 0 ] || { echo "$args: $output"; return 1; }
	done
}
