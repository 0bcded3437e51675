#!/usr/bin/env bats
# Damaged qcow2 images: each gives one clear error line and a non-zero
# exit, never a crash or a write to the image; check -r repairs what
# qemu-img check -r repairs.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	require qemu-img qemu-io python3
	qemu-img create -q -f qcow2 "$T/c.qcow2" 16M
	qemu-io -c 'write -P 5 0 256k' -c 'write -P 6 4M 64k' "$T/c.qcow2" >/dev/null
}

# poke FILE OFFSET FORMAT VALUE: overwrite a big-endian field.
poke() {
	python3 -c "import struct,sys; f=open(sys.argv[1],'r+b'); f.seek(int(sys.argv[2])); f.write(struct.pack('>'+sys.argv[3], int(sys.argv[4],0)))" "$@"
}

# field FILE OFFSET FORMAT: read a big-endian field.
field() {
	python3 -c "import struct,sys; f=open(sys.argv[1],'rb'); f.seek(int(sys.argv[2])); n=struct.calcsize('>'+sys.argv[3]); print(struct.unpack('>'+sys.argv[3], f.read(n))[0])" "$@"
}

# An error: one line, status non-zero, no "Segmentation" and file unchanged.
expect_clean_error() {
	local before after
	before=$(md5sum < "$T/c.qcow2")
	run "$@"
	after=$(md5sum < "$T/c.qcow2")
	[ "$status" -ne 0 ] || { echo "status 0: $output"; return 1; }
	[ "$status" -lt 128 ] || { echo "crashed: $status"; return 1; }
	one_line_error
	[[ "$output" == vm-img:* ]]
	[ "$before" = "$after" ] || { echo "image changed"; return 1; }
}

@test "L1 table past the end of the file: one-line error" {
	poke "$T/c.qcow2" 40 Q 0x40000000
	expect_clean_error vm-img info "$T/c.qcow2"
	[[ "$output" == *"L1 table"* ]]
	expect_clean_error vm-img convert -O raw "$T/c.qcow2" "$T/o.raw"
}

@test "refcount table past the end of the file: one-line error" {
	poke "$T/c.qcow2" 48 Q 0x40000000
	expect_clean_error vm-img check "$T/c.qcow2"
	[[ "$output" == *"eference count table"* ]]
}

@test "L2 table past the end of the file: reads fail cleanly, check finds it" {
	l1=$(field "$T/c.qcow2" 40 Q)
	poke "$T/c.qcow2" "$l1" Q 0x8000000040000000
	expect_clean_error vm-img convert -O raw "$T/c.qcow2" "$T/o.raw"
	run vm-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
	run qemu-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
}

@test "overlapping metadata (a data cluster on the L1 table) is reported and repaired" {
	l1=$(field "$T/c.qcow2" 40 Q)
	l2=$(( $(field "$T/c.qcow2" "$l1" Q) & 0x00fffffffffffe00 ))
	poke "$T/c.qcow2" "$l2" Q "$(printf 0x%x $((0x8000000000000000 | l1)))"
	run vm-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
	run qemu-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
	cp "$T/c.qcow2" "$T/q.qcow2"
	run qemu-img check -r all "$T/q.qcow2"
	qstatus=$status
	run vm-img check -r all "$T/c.qcow2"
	[ "$status" -eq "$qstatus" ]
}

@test "an unknown incompatible feature bit is refused" {
	poke "$T/c.qcow2" 72 Q 0x10000000000
	expect_clean_error vm-img info "$T/c.qcow2"
	[[ "$output" == *"Unsupported qcow2 feature"* ]]
}

@test "a truncated file is refused" {
	head -c 60 "$T/c.qcow2" > "$T/t.qcow2"
	mv "$T/t.qcow2" "$T/c.qcow2"
	expect_clean_error vm-img info "$T/c.qcow2"
	expect_clean_error vm-img info -f qcow2 "$T/c.qcow2"
}

@test "a backing file loop is refused" {
	qemu-img create -q -f qcow2 -u -b "$T/l2.qcow2" -F qcow2 "$T/l1.qcow2" 1M
	qemu-img create -q -f qcow2 -u -b "$T/l1.qcow2" -F qcow2 "$T/l2.qcow2" 1M
	run vm-img info --backing-chain "$T/l1.qcow2"
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *loop* ]]
}

@test "leaked clusters: exit 3, check -r leaks repairs them as qemu-img does" {
	size=$(stat -c %s "$T/c.qcow2")
	truncate -s $((size + 65536)) "$T/c.qcow2"
	rt=$(field "$T/c.qcow2" 48 Q)
	rb=$(field "$T/c.qcow2" "$rt" Q)
	poke "$T/c.qcow2" $((rb + 2 * size / 65536)) H 1
	run vm-img check "$T/c.qcow2"
	[ "$status" -eq 3 ]
	[[ "$output" == *"1 leaked clusters were found on the image."* ]]
	run qemu-img check "$T/c.qcow2"
	[ "$status" -eq 3 ]
	run vm-img check -r leaks "$T/c.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *"1 leaked clusters"* ]]
	qemu-img check "$T/c.qcow2"
}

@test "a refcount too low: exit 2, check -r all repairs it" {
	rt=$(field "$T/c.qcow2" 48 Q)
	rb=$(field "$T/c.qcow2" "$rt" Q)
	poke "$T/c.qcow2" $((rb + 2 * 5)) H 0
	run vm-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
	run qemu-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
	run vm-img check -r all "$T/c.qcow2"
	[ "$status" -eq 0 ]
	qemu-img check "$T/c.qcow2"
	qemu-img convert -O raw "$T/c.qcow2" "$T/o.raw"
}

@test "a broken refcount table entry is rebuilt by check -r all" {
	rt=$(field "$T/c.qcow2" 48 Q)
	poke "$T/c.qcow2" "$rt" Q 0x40000000
	run vm-img check "$T/c.qcow2"
	[ "$status" -eq 2 ]
	run vm-img check -r all "$T/c.qcow2"
	[ "$status" -eq 0 ]
	qemu-img check "$T/c.qcow2"
}

@test "an image marked corrupt is not opened for writing" {
	poke "$T/c.qcow2" 72 Q 2
	expect_clean_error vm-img resize "$T/c.qcow2" +1M
	[[ "$output" == *corrupt* ]]
	run vm-img info "$T/c.qcow2"
	[ "$status" -eq 0 ]
	[[ "$output" == *"corrupt: true"* ]]
}

@test "a dirty image with lazy refcounts is repaired when opened for writing" {
	qemu-img create -q -f qcow2 -o lazy_refcounts=on "$T/z.qcow2" 16M
	qemu-io -c 'write -P 5 0 256k' "$T/z.qcow2" >/dev/null
	poke "$T/z.qcow2" 72 Q 1
	run vm-img info --output=json "$T/z.qcow2"
	[[ "$output" == *'"dirty-flag": true'* ]]
	vm-img resize "$T/z.qcow2" +1M
	qemu-img check "$T/z.qcow2"
	run vm-img info --output=json "$T/z.qcow2"
	[[ "$output" == *'"dirty-flag": false'* ]]
}
