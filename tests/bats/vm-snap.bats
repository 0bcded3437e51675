#!/usr/bin/env bats
# vm-snap's offline commands against the real qemu-img and qemu-io:
# snapshots made by either tool are listed, applied and deleted by the
# other; overlays, commit and stream leave images qemu-img accepts.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	require qemu-img qemu-io
}

# pattern IMAGE BYTE OFFSET LEN: write with qemu-io
pattern() { qemu-io -f qcow2 -c "write -P $2 $3 $4" "$1" >/dev/null; }
# has IMAGE BYTE OFFSET LEN: read back and verify with qemu-io
has() { qemu-io -f qcow2 -c "read -P $2 $3 $4" "$1" | grep -q 'read '; }
# has_not: qemu-io reports a pattern mismatch
has_not() { qemu-io -f qcow2 -c "read -P $2 $3 $4" "$1" 2>&1 | grep -q 'Pattern verification failed'; }

@test "vm-snap list prints the same table as qemu-img snapshot -l" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 64M
	qemu-img snapshot -c first "$T/a.qcow2"
	vm-snap create "$T/a.qcow2" second-with-a-long-name
	run vm-snap list "$T/a.qcow2"
	[ "$status" -eq 0 ]
	diff <(qemu-img snapshot -l "$T/a.qcow2") <(echo "$output")
	[ "${#lines[@]}" -eq 4 ]
}

@test "vm-snap list of an image without snapshots prints nothing" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 1M
	run vm-snap list "$T/a.qcow2"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "vm-snap applies a snapshot qemu-img made, and the image stays consistent" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 64M
	pattern "$T/a.qcow2" 0xaa 0 128k
	qemu-img snapshot -c before "$T/a.qcow2"
	pattern "$T/a.qcow2" 0xbb 0 64k
	run vm-snap apply "$T/a.qcow2" before
	[ "$status" -eq 0 ]
	has "$T/a.qcow2" 0xaa 0 128k
	qemu-img check "$T/a.qcow2"
}

@test "qemu-img applies and deletes a snapshot vm-snap made" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 64M
	pattern "$T/a.qcow2" 0x11 1M 64k
	vm-snap create "$T/a.qcow2" s1
	pattern "$T/a.qcow2" 0x22 1M 64k
	qemu-img check "$T/a.qcow2"
	qemu-img snapshot -a s1 "$T/a.qcow2"
	has "$T/a.qcow2" 0x11 1M 64k
	qemu-img snapshot -d s1 "$T/a.qcow2"
	[ -z "$(qemu-img snapshot -l "$T/a.qcow2")" ]
	qemu-img check "$T/a.qcow2"
}

@test "vm-snap deletes a snapshot and frees its clusters" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 64M
	pattern "$T/a.qcow2" 0x33 0 1M
	qemu-img snapshot -c gone "$T/a.qcow2"
	pattern "$T/a.qcow2" 0x44 0 1M
	run vm-snap delete "$T/a.qcow2" gone
	[ "$status" -eq 0 ]
	[ -z "$(qemu-img snapshot -l "$T/a.qcow2")" ]
	run qemu-img check "$T/a.qcow2"
	[ "$status" -eq 0 ]
	has "$T/a.qcow2" 0x44 0 1M
}

@test "applying or deleting a missing snapshot: one line, status 1, image untouched" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 64M
	qemu-img snapshot -c keep "$T/a.qcow2"
	cp "$T/a.qcow2" "$T/orig.qcow2"
	for verb in apply delete; do
		run --separate-stderr vm-snap $verb "$T/a.qcow2" nope
		[ "$status" -eq 1 ]
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ "$stderr" == "vm-snap: Could not $verb snapshot 'nope': "* ]]
	done
	cmp "$T/a.qcow2" "$T/orig.qcow2"
}

@test "vm-snap on a file that is not an image with snapshots fails in one line" {
	head -c 1M /dev/zero > "$T/raw.img"
	run --separate-stderr vm-snap create "$T/raw.img" x
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	run --separate-stderr vm-snap list "$T/missing.qcow2"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *missing.qcow2* ]]
}

@test "vm-snap overlay creates a qcow2 overlay that records its base and format" {
	qemu-img create -q -f raw "$T/base.raw" 32M
	run vm-snap overlay "$T/base.raw" "$T/ov.qcow2"
	[ "$status" -eq 0 ]
	run qemu-img info --output=json "$T/ov.qcow2"
	[[ "$output" == *'"backing-filename": "'"$T/base.raw"'"'* ]]
	[[ "$output" == *'"backing-filename-format": "raw"'* ]]
	[[ "$output" == *'"virtual-size": 33554432'* ]]
	qemu-img check "$T/ov.qcow2"
}

@test "vm-snap commit writes an overlay's data into its base and empties it" {
	qemu-img create -q -f qcow2 "$T/base.qcow2" 32M
	pattern "$T/base.qcow2" 0x55 0 2M
	qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/ov.qcow2"
	pattern "$T/ov.qcow2" 0x66 1M 64k
	qemu-io -f qcow2 -c "write -z 4M 64k" "$T/ov.qcow2" >/dev/null
	run vm-snap commit "$T/ov.qcow2"
	[ "$status" -eq 0 ]
	has "$T/base.qcow2" 0x66 1M 64k
	has "$T/base.qcow2" 0x55 0 1M
	qemu-img check "$T/base.qcow2"
	qemu-img check "$T/ov.qcow2"
	[ "$(qemu-img map --output=json "$T/ov.qcow2" | grep -c '"depth": 0')" -eq 0 ]
}

@test "vm-snap stream makes an overlay stand alone with the same content" {
	qemu-img create -q -f qcow2 "$T/base.qcow2" 32M
	pattern "$T/base.qcow2" 0x77 0 3M
	qemu-img create -q -f qcow2 -b "$T/base.qcow2" -F qcow2 "$T/ov.qcow2"
	pattern "$T/ov.qcow2" 0x88 2M 64k
	qemu-img convert -O raw "$T/ov.qcow2" "$T/expect.raw"
	run vm-snap stream "$T/ov.qcow2"
	[ "$status" -eq 0 ]
	! qemu-img info "$T/ov.qcow2" | grep -q 'backing file'
	rm "$T/base.qcow2"
	qemu-img compare -f qcow2 -F raw "$T/ov.qcow2" "$T/expect.raw"
	qemu-img check "$T/ov.qcow2"
}

@test "vm-snap commit of an image without a backing file fails in one line" {
	qemu-img create -q -f qcow2 "$T/a.qcow2" 1M
	run --separate-stderr vm-snap commit "$T/a.qcow2"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "vm-snap: "*"no backing file"* ]]
}
