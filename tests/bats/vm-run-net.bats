#!/usr/bin/env bats
# vm-run's NICs with the test guest (tests/guest plus the net overlay of
# tests/guest/net) under -accel jit: one boot with two NICs, each on its
# own vm-net user child started by vm-run --
#   eth with e1000:      -netdev user,id=u0,... -device e1000,netdev=u0
#   eth with virtio-net: -nic user,model=virtio-net-pci,net=10.0.3.0/24
# The guest takes a DHCP lease on each and fetches a file from a python
# HTTP server that plays the host (10.0.2.2 and 10.0.3.2).  Everything runs
# in a private network namespace (unshare -n -m) so nothing leaves this
# machine.  Option errors are checked without a guest.

load helper

NETDIR="$VM_TOP/tests/guest/net"
# Prints "IF name driver" for every interface, then per driver the lease
# and the fetch, tagged with the driver.
GUEST_CMD='for i in /sys/class/net/eth*; do
	echo "IF $(basename $i) $(basename $(readlink $i/device/driver))"
done
run_nic() {
	drv=$1 host=$2
	for i in /sys/class/net/eth*; do
		[ "$(basename $(readlink $i/device/driver))" = "$drv" ] && ifc=$(basename $i)
	done
	ip link set "$ifc" up
	udhcpc -i "$ifc" -n -q -t 10 -T 1 2>&1 | sed "s/^/$drv: /"
	if wget -q -O /tmp/f "http://$host:8080/payload.txt"; then
		echo "$drv: WGET-OK $(cat /tmp/f)"
	else
		echo "$drv: WGET-FAILED"
	fi
}
run_nic e1000 10.0.2.2
run_nic virtio_net 10.0.3.2'

# The scenario inside the namespace: OUT is the directory, the rest vm-run's
# NIC options.
scenario() {
	local out=$1 h t=400
	shift
	case $(command -v vm-run) in */san/*) t=900 ;; esac	# ASan'd JIT: slower
	ip link set lo up || return 1
	(cd "$out/www" && exec python3 -m http.server 8080 --bind 0.0.0.0) >"$out/http.log" 2>&1 &
	h=$!
	timeout "$t" vm-run -accel jit -m 256 -nodefaults -display none -no-reboot \
		-serial "file:$out/console.log" \
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet vmtest.cmdb64=$(printf '%s' "$GUEST_CMD" | base64 -w0)" \
		"$@" 2>"$out/vm-run.log"
	echo "vm-run exit $?" >>"$out/vm-run.log"
	kill "$h"
}

setup_file() {
	local out
	require qemu-system-x86_64 python3
	source "$VM_TOP/tests/guest/guest.bash"
	guest_require
	out=$("$NETDIR/build-net-guest.sh" "$VM_CACHE" 2>&1)
	case $? in
	0) ;;
	2) skip "network test guest unavailable: ${out##*: }" ;;
	*) echo "$out"; return 1 ;;
	esac
	unshare -n -m true 2>/dev/null ||
		skip "cannot make a private network namespace (unshare -n -m): not root?"
	export VM_CACHE GUEST_CMD
	export -f scenario
	U=$BATS_FILE_TMPDIR/run
	mkdir -p "$U/www"
	echo "payload $RANDOM$RANDOM from the host" >"$U/www/payload.txt"
	echo "r$RANDOM$RANDOM.example" >"$U/tag"	# names this run's vm-net child
	unshare -n -m --propagation private bash -c 'scenario "$@"' scenario "$U" \
		-netdev user,id=u0,hostname=e1000guest,dnssearch="$(cat "$U/tag")" -device e1000,netdev=u0,mac=52:54:00:aa:bb:01 \
		-nic user,model=virtio-net-pci,net=10.0.3.0/24 3>&-
}

setup() {
	T=$BATS_TEST_TMPDIR
	U=$BATS_FILE_TMPDIR/run
}

show_run() {
	cat "$U/console.log" "$U/vm-run.log" "$U/http.log" 2>/dev/null || true
}

@test "vm-run -nic user: the guest gets a DHCP lease from the vm-net child (virtio-net)" {
	show_run
	grep -q "IF eth.* virtio_net" "$U/console.log"
	grep -q "virtio_net: DHCP-LEASE ip=10.0.3.15 router=10.0.3.2 dns=10.0.3.3" "$U/console.log"
}

@test "vm-run -nic user: the guest fetches a file from the host's HTTP server (virtio-net)" {
	show_run
	grep -qF "virtio_net: WGET-OK $(cat "$U/www/payload.txt")" "$U/console.log"
}

@test "vm-run -netdev user + -device e1000: Linux's e1000 driver binds and gets a DHCP lease" {
	show_run
	grep -q "IF eth.* e1000" "$U/console.log"
	grep -q "e1000: DHCP-LEASE ip=10.0.2.15 router=10.0.2.2 dns=10.0.2.3 hostname=e1000guest" "$U/console.log"
}

@test "vm-run -device e1000: the guest fetches a file from the host's HTTP server" {
	show_run
	grep -qF "e1000: WGET-OK $(cat "$U/www/payload.txt")" "$U/console.log"
	[ "$(grep -c '"GET /payload.txt HTTP/1.1" 200' "$U/http.log")" = 2 ]
}

@test "the guest powers off and vm-run exits 0; the vm-net children are gone" {
	show_run
	grep -q "VM-GUEST-STATUS=" "$U/console.log"
	grep -q "vm-run exit 0" "$U/vm-run.log"
	run pgrep -f "vm-net --fd .* user,hostname=e1000guest,dnssearch=$(cat "$U/tag")"
	[ "$status" = 1 ]
}

@test "vm-run NIC options: one-line errors for a bad back-end, model, netdev or MAC" {
	local k=${VM_CACHE:-/nonexistent}/vmlinuz
	run vm-run -display none -kernel "$k" -nic foo
	[ "$status" = 1 ] && [ "${lines[0]}" = "vm-run: -nic foo: back-end foo is not supported (user, stream, socket)" ]
	run vm-run -display none -kernel "$k" -nic user,model=rtl8139
	[ "$status" = 1 ] && [[ "$output" == *"NIC model rtl8139 is not supported"* ]]
	run vm-run -display none -kernel "$k" -device e1000,netdev=zz
	[ "$status" = 1 ] && [[ "$output" == *"no -netdev with id=zz"* ]]
	run vm-run -display none -kernel "$k" -nic user,bogus=1
	[ "$status" = 1 ] && [ "${lines[-1]}" = "vm-run: -nic user,bogus=1: vm-net user did not start" ]
	[[ "$output" == *"vm-net: user: invalid parameter 'bogus'"* ]]
	run vm-run -display none -kernel "$k" -netdev user,id=a -device e1000,netdev=a,mac=zz
	[ "$status" = 1 ] && [[ "$output" == *"bad MAC address 'zz'"* ]]
	[ "${#lines[@]}" = 1 ]
}

@test "-netdev stream (unix) and -netdev socket,connect= join a vm-net hub; a gone back-end leaves the guest running" {
	local port=$((20000 + RANDOM % 20000)) vm i
	vm-net --fork --pid-file "$T/hub.pid" -k "$T/hub.sock" -l "tcp:127.0.0.1:$port" \
		-C "$T/hub.ctl" hub 2>"$T/hub.log"
	vm-run -accel jit -S -display none -kernel "$VM_BUILD/tests/guest/hw-hello.elf" \
		-netdev stream,id=a,server=off,addr.type=unix,addr.path="$T/hub.sock" \
		-device e1000,netdev=a \
		-netdev socket,id=b,connect=127.0.0.1:$port -device virtio-net-pci,netdev=b \
		</dev/null 2>"$T/vm-run.log" &
	vm=$!
	for i in $(seq 100); do
		[ "$(vm-net ctl "$T/hub.ctl" info | grep -c '^port')" = 2 ] && break
		sleep 0.1
	done
	vm-net ctl "$T/hub.ctl" info
	[ "$(vm-net ctl "$T/hub.ctl" info | grep -c '^port')" = 2 ]
	kill "$(cat "$T/hub.pid")"
	sleep 0.5
	kill -0 "$vm"	# still running without its back-ends
	kill "$vm"
	wait "$vm" || true
	cat "$T/vm-run.log"
}
