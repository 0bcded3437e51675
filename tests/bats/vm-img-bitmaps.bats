#!/usr/bin/env bats
# Persistent dirty bitmaps made by qemu-img: vm-img check counts their
# clusters, info lists them, convert --bitmaps copies them (same bits as
# qemu-img's copy, read back through qemu-nbd), and vm-img bitmap changes
# them as qemu-img bitmap does.

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	require qemu-img qemu-io
	qemu-img create -q -f qcow2 "$T/b.qcow2" 64M
	qemu-img bitmap --add "$T/b.qcow2" b0
	qemu-io -c 'write -P 1 0 1M' -c 'write -P 2 32M 64k' "$T/b.qcow2" >/dev/null
	qemu-img bitmap --add -g 1M --disable "$T/b.qcow2" b1
}

# bits IMAGE NAME: the dirty extents of a bitmap, as qemu-nbd exports them.
bits() {
	nbdinfo --map="qemu:dirty-bitmap:$2" -- [ qemu-nbd -r -B "$2" -f qcow2 "$1" ]
}

@test "check counts bitmap clusters: no leaks, same image end as qemu-img" {
	run qemu-img check "$T/b.qcow2"
	[ "$status" -eq 0 ]
	q=$output
	run vm-img check "$T/b.qcow2"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	[ "$output" = "$q" ]
}

@test "check -r all keeps the bitmaps (qemu-img check still clean)" {
	run vm-img check -r all "$T/b.qcow2"
	[ "$status" -eq 0 ]
	run qemu-img check "$T/b.qcow2"
	[ "$status" -eq 0 ] || { echo "$output"; return 1; }
	run qemu-img info "$T/b.qcow2"
	[[ "$output" == *"name: b1"* ]]
}

@test "info lists bitmaps as qemu-img does (human and JSON)" {
	diff <(vm-img info "$T/b.qcow2") <(qemu-img info "$T/b.qcow2")
	vm-img info --output=json "$T/b.qcow2" > "$T/v.json"
	qemu-img info --output=json "$T/b.qcow2" > "$T/q.json"
	python3 - "$T/v.json" "$T/q.json" <<'PY'
import json, sys
v, q = (json.load(open(f))["format-specific"]["data"]["bitmaps"] for f in sys.argv[1:])
assert v == q, (v, q)
PY
	# byte for byte, including the empty flags list of the disabled one
	diff <(vm-img info --output=json "$T/b.qcow2") <(qemu-img info --output=json "$T/b.qcow2")
}

@test "convert --bitmaps copies the bitmaps and their bits like qemu-img" {
	require nbdinfo qemu-nbd
	vm-img convert --bitmaps -O qcow2 "$T/b.qcow2" "$T/v.qcow2"
	qemu-img convert --bitmaps -O qcow2 "$T/b.qcow2" "$T/q.qcow2"
	qemu-img check "$T/v.qcow2"
	qemu-img compare "$T/v.qcow2" "$T/q.qcow2"
	for b in b0 b1; do
		[ "$(bits "$T/v.qcow2" $b)" = "$(bits "$T/q.qcow2" $b)" ]
	done
	[[ "$(bits "$T/v.qcow2" b0)" == *dirty* ]]
	diff <(vm-img info "$T/v.qcow2" | sed -n '/bitmaps/,$p') \
	     <(qemu-img info "$T/q.qcow2" | sed -n '/bitmaps/,$p')
}

@test "convert --bitmaps refuses a raw target and --skip-broken-bitmaps alone" {
	run vm-img convert --bitmaps -O raw "$T/b.qcow2" "$T/o.raw"
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"Format driver 'raw' does not support bitmaps"* ]]
	run vm-img convert --bitmaps -O qcow2 "$T/b.qcow2" "$T/b.qcow2" "$T/o.qcow2"
	[ "$status" -eq 1 ]
	one_line_error
	run vm-img convert --skip-broken-bitmaps -O qcow2 "$T/b.qcow2" "$T/o.qcow2"
	[ "$status" -eq 1 ]
	one_line_error
}

@test "bitmap --add/--disable/--merge/--clear/--enable/--remove as qemu-img does them" {
	require nbdinfo qemu-nbd
	cp "$T/b.qcow2" "$T/q.qcow2"
	for t in v q; do
		[ $t = v ] && tool=vm-img || tool=qemu-img
		img="$T/b.qcow2"; [ $t = q ] && img="$T/q.qcow2"
		$tool bitmap --add --disable -g 64k "$img" m
		$tool bitmap --merge b0 "$img" m
		$tool bitmap --add "$img" gone
		$tool bitmap --clear --enable "$img" b0
		$tool bitmap --remove "$img" gone
		qemu-img check "$img"
	done
	diff <(qemu-img info "$T/b.qcow2" | sed -n '/bitmaps/,$p') \
	     <(qemu-img info "$T/q.qcow2" | sed -n '/bitmaps/,$p')
	for b in b0 b1 m; do
		[ "$(bits "$T/b.qcow2" $b)" = "$(bits "$T/q.qcow2" $b)" ]
	done
	[[ "$(bits "$T/b.qcow2" m)" == *dirty* ]]
	for b in b0 b1 m; do vm-img bitmap --remove "$T/b.qcow2" $b; done
	qemu-img check "$T/b.qcow2"
	run qemu-img info "$T/b.qcow2"
	[[ "$output" != *bitmaps* ]]
	run vm-img bitmap --remove "$T/b.qcow2" m
	[ "$status" -eq 1 ]
	[ "$output" = "vm-img: Operation remove on bitmap m failed: Dirty bitmap 'm' not found" ]
}

# The same writes done by qemu-io directly and through a vm-nbd export
# must leave the same bits in each enabled bitmap, and none in a disabled
# one.
@test "writes through vm-nbd keep enabled bitmaps up to date, as QEMU does" {
	require nbdinfo qemu-nbd
	cp "$T/b.qcow2" "$T/q.qcow2"
	qemu-io -c 'write -P 3 8M 4k' -c 'write -z 40M 128k' -c 'discard 48M 64k' \
		"$T/q.qcow2" >/dev/null
	vm-nbd --fork -t --discard=unmap --pid-file "$T/pid" -k "$T/s" -f qcow2 "$T/b.qcow2"
	pid=$(cat "$T/pid")
	qemu-io -f raw -c 'write -P 3 8M 4k' -c 'write -z 40M 128k' -c 'discard 48M 64k' \
		"nbd+unix:///?socket=$T/s" >/dev/null
	# while the export runs, the enabled bitmap is flagged in use
	qemu-img info -U --output=json "$T/b.qcow2" |
		jq -e '.["format-specific"].data.bitmaps[] | select(.name=="b0") |
		       .flags | index("in-use")'
	kill "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	qemu-img check "$T/b.qcow2"
	diff <(qemu-img info "$T/b.qcow2" | sed -n '/bitmaps/,$p') \
	     <(qemu-img info "$T/q.qcow2" | sed -n '/bitmaps/,$p')
	for b in b0 b1; do
		diff <(bits "$T/b.qcow2" $b) <(bits "$T/q.qcow2" $b)
	done
	[[ "$(bits "$T/b.qcow2" b0)" == *"8388608"*dirty* ]]
}

@test "a writer killed mid-session leaves the bitmap flagged in use, never stale" {
	vm-nbd --fork -t --pid-file "$T/pid" -k "$T/s" -f qcow2 "$T/b.qcow2"
	qemu-io -f raw -c 'write -P 3 8M 4k' "nbd+unix:///?socket=$T/s" >/dev/null
	kill -9 "$(cat "$T/pid")"
	qemu-img info --output=json "$T/b.qcow2" |
		jq -e '.["format-specific"].data.bitmaps[] | select(.name=="b0") |
		       .flags | index("in-use")'
	# the disabled one was not touched
	qemu-img info --output=json "$T/b.qcow2" |
		jq -e '.["format-specific"].data.bitmaps[] | select(.name=="b1") |
		       .flags == []'
	qemu-img check "$T/b.qcow2"
}

@test "vm-img convert -n into an image with a bitmap marks what it wrote, as qemu-img" {
	require nbdinfo qemu-nbd
	qemu-img create -q -f qcow2 "$T/v.qcow2" 64M
	qemu-img bitmap --add "$T/v.qcow2" b0
	cp "$T/v.qcow2" "$T/q.qcow2"
	qemu-img create -q -f raw "$T/src.raw" 64M
	qemu-io -f raw -c 'write -P 7 16M 64k' "$T/src.raw" >/dev/null
	vm-img convert -n -f raw -O qcow2 "$T/src.raw" "$T/v.qcow2"
	qemu-img convert -n -f raw -O qcow2 "$T/src.raw" "$T/q.qcow2"
	qemu-img check "$T/v.qcow2"
	diff <(bits "$T/v.qcow2" b0) <(bits "$T/q.qcow2" b0)
	[[ "$(bits "$T/v.qcow2" b0)" == *dirty* ]]
	qemu-img info --output=json "$T/v.qcow2" |
		jq -e '.["format-specific"].data.bitmaps[0].flags == ["auto"]'
}
