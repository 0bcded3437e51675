#!/usr/bin/env bats
# Guests of different emulators on one vm-net hub: two vm-run guests
# (-accel jit; one e1000 on -netdev stream over the hub's unix socket, one
# virtio-net-pci on -netdev stream,server=on, which the hub dials with
# --connect) and one real qemu-system-x86_64 guest (TCG, e1000, -netdev
# stream over TCP), booted together in setup_file.  Static addresses 192.168.77.1-3: each guest
# pings the other two, sends a line with busybox nc to the next one
# (1 -> 2 -> 3 -> 1) and prints what it received.  A guest that is done
# adds the address 192.168.77.1N and stays up until it can ping all three
# such addresses, so no guest powers off while another still needs it.
# (The guest command's arguments: its number, the next one's, its peers.)

load helper

GUEST_CMD='me=$1 next=$2; shift 2
ip link set lo up; ip addr add 192.168.77.$me/24 dev eth0; ip link set eth0 up
nc -l -p 7000 >/tmp/nc 2>/dev/null &
wait_for() { i=0; until ping -c 1 -W 1 $1 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 300 ] && return 1; sleep 1; done; }
for p in "$@"; do
	wait_for 192.168.77.$p
	ping -c 3 -W 2 192.168.77.$p | grep -q " 0% packet loss" && echo "PING-OK $p" || echo "PING-FAILED $p"
done
echo "line from guest $me" | timeout 10 nc 192.168.77.$next 7000
ip addr add 192.168.77.1$me/24 dev eth0
for p in $me "$@"; do wait_for 192.168.77.1$p || echo "NOT-DONE $p"; done
echo "NC-GOT $(cat /tmp/nc)"
sleep 5'

# vm_guest NAME ME NEXT PEERS... -- NETARGS...: a vm-run guest in the
# background.
guest_append() {
	local cmd
	cmd=$(printf '%s\n%s' "set -- $1" "$GUEST_CMD" | base64 -w0)
	# panic=-1: a panic ends the run (-no-reboot) instead of leaving the
	# others waiting.  (The kernel's IO-APIC timer check counts ticks; on a
	# loaded host they arrive late but all of them: lib/hw's PIT delays
	# late ticks rather than dropping them.)
	echo "console=ttyS0 quiet panic=-1 vmtest.cmdb64=$cmd"
}

vm_guest() {
	local name=$1 args=$2 t=600
	shift 2
	case $(command -v vm-run) in */san/*) t=850 ;; esac	# ASan'd JIT: slower
	timeout "$t" vm-run -accel jit -m 256 -nodefaults -display none -no-reboot \
		-serial "file:$U/$name.console" \
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \
		-append "$(guest_append "$args")" "$@" 2>"$U/$name.log" 3>&-
	echo "vm-run exit $?" >>"$U/$name.log"
}

qemu_guest() {
	local name=$1 args=$2
	shift 2
	timeout 850 qemu-system-x86_64 -M pc -accel tcg -m 256 -nodefaults -display none \
		-no-reboot -serial "file:$U/$name.console" \
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \
		-append "$(guest_append "$args") no_timer_check" "$@" 2>"$U/$name.log" 3>&-
	echo "qemu exit $?" >>"$U/$name.log"
}

setup_file() {
	local out port a b c
	require qemu-system-x86_64 python3
	source "$VM_TOP/tests/guest/guest.bash"
	guest_require
	out=$("$VM_TOP/tests/guest/net/build-net-guest.sh" "$VM_CACHE" 2>&1)
	case $? in
	0) ;;
	2) skip "network test guest unavailable: ${out##*: }" ;;
	*) echo "$out"; return 1 ;;
	esac
	U=$BATS_FILE_TMPDIR/hub
	mkdir -p "$U"
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	# b listens (its vm-run starts a vm-net child on b.sock), the hub dials it
	vm_guest b "2 3 1 3" -netdev "stream,id=n0,server=on,addr.type=unix,addr.path=$U/b.sock" \
		-device virtio-net-pci,netdev=n0,mac=52:54:00:00:77:02 &
	b=$!
	for _ in $(seq 100); do [ -S "$U/b.sock" ] && break; sleep 0.1; done
	vm-net --fork --pid-file "$U/hub.pid" -k "$U/hub.sock" -l "tcp:127.0.0.1:$port" \
		--connect "unix:$U/b.sock" -C "$U/hub.ctl" --pcap "$U/hub.pcap" hub 2>"$U/hub.log" 3>&- || return 1
	vm_guest a "1 2 2 3" -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$U/hub.sock" \
		-device e1000,netdev=n0,mac=52:54:00:00:77:01 &
	a=$!
	qemu_guest c "3 1 1 2" \
		-netdev "stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=$port" \
		-device e1000,netdev=n0,mac=52:54:00:00:77:03,romfile= &
	c=$!
	# the hub's view while all three are on it
	for _ in $(seq 600); do
		[ "$(vm-net ctl "$U/hub.ctl" info | grep -c '^port')" = 3 ] && break
		sleep 0.5
	done
	vm-net ctl "$U/hub.ctl" info >"$U/info.out" 2>&1
	wait "$a" "$b" "$c" || true
	vm-net ctl "$U/hub.ctl" info >"$U/info-end.out" 2>&1
	kill "$(cat "$U/hub.pid")" || true
}

teardown_file() {
	local U=$BATS_FILE_TMPDIR/hub
	[ -s "$U/hub.pid" ] && kill "$(cat "$U/hub.pid")" 2>/dev/null || true
}

setup() {
	T=$BATS_TEST_TMPDIR
	U=$BATS_FILE_TMPDIR/hub
}

show() {
	local f
	for f in "$@"; do
		echo "== $f"
		cat "$U/$f" 2>/dev/null || true
	done
}

@test "hub: three ports while two vm-run guests and a QEMU guest are on it" {
	show info.out hub.log
	[ "$(grep -c '^port' "$U/info.out")" = 3 ]
}

@test "hub: two vm-run guests (e1000; virtio-net on -netdev stream,server=on) ping each other" {
	show a.console a.log b.console b.log
	grep -q "PING-OK 2" "$U/a.console"
	grep -q "PING-OK 1" "$U/b.console"
}

@test "hub: a QEMU guest and the vm-run guests ping each other" {
	show c.console c.log a.console b.console
	grep -q "PING-OK 1" "$U/c.console"
	grep -q "PING-OK 2" "$U/c.console"
	grep -q "PING-OK 3" "$U/a.console"
	grep -q "PING-OK 3" "$U/b.console"
}

@test "hub: busybox nc carries a line vm-run -> vm-run -> QEMU -> vm-run" {
	show a.console b.console c.console
	grep -q "NC-GOT line from guest 1" "$U/b.console"
	grep -q "NC-GOT line from guest 2" "$U/c.console"
	grep -q "NC-GOT line from guest 3" "$U/a.console"
}

@test "hub: every guest powers off cleanly and both vm-runs exit 0" {
	show a.log b.log c.log
	run grep -q "NOT-DONE" "$U/a.console" "$U/b.console" "$U/c.console"
	[ "$status" = 1 ]
	grep -q "VM-GUEST-STATUS=0" "$U/a.console"
	grep -q "VM-GUEST-STATUS=0" "$U/b.console"
	grep -q "VM-GUEST-STATUS=0" "$U/c.console"
	grep -q "vm-run exit 0" "$U/a.log"
	grep -q "vm-run exit 0" "$U/b.log"
	grep -q "qemu exit 0" "$U/c.log"
}

@test "hub: the capture holds each guest's echo replies to the others" {
	require tshark
	local ip n
	for ip in 1 2 3; do
		n=$(tshark -r "$U/hub.pcap" -Y "icmp.type == 0 && ip.src == 192.168.77.$ip" 2>/dev/null | wc -l)
		echo "192.168.77.$ip: $n echo replies"
		[ "$n" -ge 6 ]
	done
}
