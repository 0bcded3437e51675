#!/usr/bin/env bats
# The disk data path of vm-run: vm-nbd sends read data without copying it
# (splice from the page cache) wherever an image layer stores the bytes as
# they are, and falls back to ordinary reads everywhere else; virtio-blk
# hands a request's scattered segments to the back-end as one iovec list
# (the NBD client receives into them, the -snapshot overlay copies), and
# an NBD disk's requests complete on the client's reader thread.  Every
# result is checked against qemu-img's view of the same image.

load helper
load ../guest/guest

GUEST_TIMEOUT=${GUEST_TIMEOUT:-300}

# serve IMAGE [vm-nbd options...]: vm-nbd -v -v on $T/s.sock in the
# background (log in $T/nbd.log), waits for the socket.
serve() {
	local img=$1
	shift
	rm -f "$T/s.sock"
	vm-nbd -v -v -t -k "$T/s.sock" "$@" "$img" 2>"$T/nbd.log" &
	NBD_PID=$!
	for i in $(seq 50); do [ -S "$T/s.sock" ] && break; sleep 0.1; done
}

unserve() {
	kill "$NBD_PID" 2>/dev/null
	wait "$NBD_PID" 2>/dev/null || true
}

# sha of an image's guest-visible bytes, as qemu-img reads them
img_sha() {
	qemu-img convert -O raw "$1" "$T/img.raw" && sha256sum <"$T/img.raw" | cut -d' ' -f1
}

export_sha() {
	nbdcopy "nbd+unix:///?socket=$T/s.sock" - | sha256sum | cut -d' ' -f1
}

# A raw base with data everywhere and a qcow2 on top with some clusters
# of its own, some zeroed, and the rest from the base.
make_chain() {
	head -c $((4 << 20)) /dev/urandom >"$T/base.raw"
	qemu-img create -q -f qcow2 -b "$T/base.raw" -F raw "$T/top.qcow2" >/dev/null
	qemu-io -f qcow2 -c "write -P 0x5a 64k 192k" -c "write -z 1M 128k" \
		-c "write -P 0xa5 3M 4k" "$T/top.qcow2" >/dev/null
}

@test "vm-nbd sends the data of every plain layer of a chain without copying, same bytes" {
	require vm-nbd qemu-img qemu-io nbdcopy
	make_chain
	want=$(img_sha "$T/top.qcow2")
	serve "$T/top.qcow2" -r -f qcow2
	got=$(export_sha)
	unserve
	[ "$got" = "$want" ]
	grep -q "splice: 2 of the image's 2 layers" "$T/nbd.log"
}

@test "vm-nbd with VM_NBD_SPLICE=0 or --cache=none reads the ordinary way, same bytes" {
	require vm-nbd qemu-img qemu-io nbdcopy
	make_chain
	want=$(img_sha "$T/top.qcow2")
	VM_NBD_SPLICE=0 serve "$T/top.qcow2" -r -f qcow2
	got=$(export_sha)
	unserve
	[ "$got" = "$want" ]
	grep -q "splice: off (VM_NBD_SPLICE=0)" "$T/nbd.log"
	serve "$T/top.qcow2" -r -f qcow2 --cache=none
	got=$(export_sha)
	unserve
	[ "$got" = "$want" ]
	grep -q "splice: off (cache)" "$T/nbd.log"
}

@test "vm-nbd reads that mix plain and compressed clusters take back what was spliced" {
	require vm-nbd qemu-img qemu-io nbdcopy
	# text compresses, so its clusters stay compressed
	seq 1 400000 | head -c $((2 << 20)) >"$T/src.raw"
	qemu-img convert -q -c -O qcow2 "$T/src.raw" "$T/c.qcow2" >/dev/null
	# plain clusters between compressed ones: one read request covers both
	qemu-io -f qcow2 -c "write -P 0x11 128k 64k" -c "write -P 0x22 512k 128k" "$T/c.qcow2" >/dev/null
	want=$(img_sha "$T/c.qcow2")
	serve "$T/c.qcow2" -r -f qcow2
	got=$(export_sha)
	unserve
	[ "$got" = "$want" ]
	grep -q "splice: 1 of the image's 1 layers" "$T/nbd.log"
	# a read that starts on plain clusters and runs into compressed ones
	grep -Eq "splice: [1-9][0-9]* of [0-9]+ bytes at [0-9]+, the rest is read" "$T/nbd.log"
}

@test "vm-nbd keeps a connection's pipes for its next spliced reads, same bytes" {
	require vm-nbd qemu-img nbdcopy
	head -c $((8 << 20)) /dev/urandom >"$T/src.raw"
	qemu-img convert -q -O qcow2 "$T/src.raw" "$T/p.qcow2" >/dev/null
	want=$(sha256sum <"$T/src.raw" | cut -d' ' -f1)
	serve "$T/p.qcow2" -r -f qcow2
	# one connection, one request at a time: 32 reads of 256 KiB
	got=$(nbdcopy --connections=1 --requests=1 --request-size=$((256 << 10)) \
		"nbd+unix:///?socket=$T/s.sock" - | sha256sum | cut -d' ' -f1)
	unserve
	[ "$got" = "$want" ]
	[ "$(grep -c "splice: a new pipe of" "$T/nbd.log")" -eq 1 ]
}

# One boot: vda is a qcow2 over a raw base through vm-run's vm-nbd child
# (spliced reads), vdb a raw image that qemu-nbd serves (the plain NBD
# path).  The guest writes through O_DIRECT in odd sizes (requests of
# many small segments), reads everything back through the page cache and
# with O_DIRECT, and prints the sums; after power-off qemu-img must read
# the same bytes.
@test "guest writes and reads through vm-nbd and qemu-nbd disks match qemu-img's sha256" {
	require qemu-img qemu-io qemu-nbd
	guest_require
	make_chain
	head -c $((4 << 20)) /dev/urandom >"$T/b.raw"
	qemu-nbd -f raw -k "$T/q.sock" --persistent "$T/b.raw" &
	qpid=$!
	for i in $(seq 50); do [ -S "$T/q.sock" ] && break; sleep 0.1; done
	cmd='for d in vda vdb; do
		dd if=/dev/urandom of=/tmp/p bs=1k count=300 2>/dev/null
		dd if=/tmp/p of=/dev/$d bs=3k seek=37 oflag=direct conv=notrunc 2>/dev/null
		dd if=/tmp/p of=/dev/$d bs=1k seek=2999 conv=notrunc,fsync 2>/dev/null
		dd if=/tmp/p of=/dev/$d bs=300k seek=7 oflag=direct conv=notrunc 2>/dev/null
		echo 3 >/proc/sys/vm/drop_caches
		echo "SUM-$d-cache $(sha256sum </dev/$d | cut -c1-64)"
		echo "SUM-$d-direct $(dd if=/dev/$d bs=96k iflag=direct 2>/dev/null | sha256sum | cut -c1-64)"
		echo "SUM-$d-large $(dd if=/dev/$d bs=1M iflag=direct 2>/dev/null | sha256sum | cut -c1-64)"
	done'
	run timeout "$GUEST_TIMEOUT" vm-run -m 512 -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
		-nographic -append "console=ttyS0 quiet vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)" \
		-drive file="$T/top.qcow2",if=virtio,format=qcow2 \
		-drive "file=nbd+unix:///?socket=$T/q.sock,if=virtio" </dev/null
	stop_pid $qpid
	echo "$output" | tr -d '\r' | grep -a SUM- >"$T/sums" || true
	echo "$output" | tail -n 15
	[[ "$output" == *VM-GUEST-STATUS=0* ]]
	qemu-img check -q "$T/top.qcow2" >/dev/null
	a=$(img_sha "$T/top.qcow2")
	b=$(sha256sum <"$T/b.raw" | cut -d' ' -f1)
	grep -q "SUM-vda-cache $a" "$T/sums"
	grep -q "SUM-vda-direct $a" "$T/sums"
	grep -q "SUM-vdb-cache $b" "$T/sums"
	grep -q "SUM-vdb-direct $b" "$T/sums"
	# reads and writes of 256 KiB and more, cut in one piece per connection
	grep -q "SUM-vda-large $a" "$T/sums"
	grep -q "SUM-vdb-large $b" "$T/sums"
	# the writes happened
	[ "$a" != "$(sha256sum <"$T/base.raw" | cut -d' ' -f1)" ]
}

@test "-snapshot on an NBD URI: scattered guest writes and reads through the in-memory overlay, the export unchanged" {
	require qemu-nbd
	guest_require
	head -c $((4 << 20)) /dev/urandom >"$T/b.raw"
	before=$(sha256sum <"$T/b.raw" | cut -d' ' -f1)
	qemu-nbd -f raw -k "$T/q.sock" --persistent "$T/b.raw" &
	qpid=$!
	for i in $(seq 50); do [ -S "$T/q.sock" ] && break; sleep 0.1; done
	# the same bytes on the host and in the guest: a text pattern
	cmd='i=0; while [ $i -lt 9000 ]; do echo "line $i of the pattern"; i=$((i + 1)); done | head -c 307200 >/tmp/p
		dd if=/tmp/p of=/dev/vda bs=3k seek=37 oflag=direct conv=notrunc 2>/dev/null
		dd if=/tmp/p of=/dev/vda bs=1k seek=2999 conv=notrunc,fsync 2>/dev/null
		echo "SUM-direct $(dd if=/dev/vda bs=96k iflag=direct 2>/dev/null | sha256sum | cut -c1-64)"
		echo 3 >/proc/sys/vm/drop_caches
		echo "SUM-cache $(sha256sum </dev/vda | cut -c1-64)"'
	run timeout "$GUEST_TIMEOUT" vm-run -m 512 -kernel "$GUEST_KERNEL" -initrd "$GUEST_INITRD" \
		-nographic -append "console=ttyS0 quiet vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)" \
		-snapshot -drive "file=nbd+unix:///?socket=$T/q.sock,if=virtio" </dev/null
	stop_pid $qpid
	echo "$output" | tr -d '\r' | grep -a SUM- >"$T/sums" || true
	echo "$output" | tail -n 15
	[[ "$output" == *VM-GUEST-STATUS=0* ]]
	i=0
	while [ $i -lt 9000 ]; do echo "line $i of the pattern"; i=$((i + 1)); done | head -c 307200 >"$T/p"
	cp "$T/b.raw" "$T/want.raw"
	dd if="$T/p" of="$T/want.raw" bs=3k seek=37 conv=notrunc 2>/dev/null
	dd if="$T/p" of="$T/want.raw" bs=1k seek=2999 conv=notrunc 2>/dev/null
	want=$(sha256sum <"$T/want.raw" | cut -d' ' -f1)
	cat "$T/sums"
	grep -q "SUM-direct $want" "$T/sums"
	grep -q "SUM-cache $want" "$T/sums"
	[ "$(sha256sum <"$T/b.raw" | cut -d' ' -f1)" = "$before" ]
}
