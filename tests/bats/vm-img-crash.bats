#!/usr/bin/env bats
# Killing vm-img at random instants while it writes never leaves an image
# that qemu-img check finds corrupt (leaked clusters are allowed).

load helper

setup() {
	T=$BATS_TEST_TMPDIR
	require qemu-img python3
	qemu-img create -q -f raw "$T/d.raw" 64M
	python3 - "$T/d.raw" <<'PY'
import os, random, sys
f = open(sys.argv[1], "r+b")
r = random.Random(7)
for i in range(300):
    f.seek(r.randrange(0, 64 << 20, 4096))
    f.write(os.urandom(4096) if i % 3 else b"compressible " * 2000)
PY
}

# check_ok IMAGE: qemu-img check exit 0 (clean) or 3 (leaks only).
check_ok() {
	run qemu-img check "$1"
	[ "$status" -eq 0 ] || [ "$status" -eq 3 ] || { echo "$output"; return 1; }
}

@test "vm-img convert killed at random instants leaves a checkable target" {
	for i in 1 2 3 4 5 6; do
		rm -f "$T/t.qcow2"
		args=(-O qcow2)
		[ $((i % 2)) -eq 0 ] && args+=(-c)
		[ $((i % 3)) -eq 0 ] && args+=(-o cluster_size=4k,refcount_bits=2)
		vm-img convert "${args[@]}" "$T/d.raw" "$T/t.qcow2" &
		pid=$!
		sleep "0.0$((RANDOM % 9 + 1))"
		kill -9 $pid 2>/dev/null || true
		wait $pid || true
		[ -f "$T/t.qcow2" ] || continue
		check_ok "$T/t.qcow2"
	done
}

@test "a writing vm-img (bench -w, snapshots) killed at random instants" {
	vm-img convert -O qcow2 "$T/d.raw" "$T/w.qcow2"
	vm-img snapshot -c base "$T/w.qcow2"
	for i in 1 2 3 4 5; do
		vm-img bench -q -w -c 200000 -d 8 -s 4k -S 12k --pattern=$i "$T/w.qcow2" &
		pid=$!
		sleep "0.$((RANDOM % 3 + 1))"
		kill -9 $pid 2>/dev/null || true
		wait $pid || true
		check_ok "$T/w.qcow2"
	done
	vm-img snapshot -a base "$T/w.qcow2"
	check_ok "$T/w.qcow2"
	qemu-img compare -q "$T/d.raw" "$T/w.qcow2"
}
