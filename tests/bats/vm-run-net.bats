#!/usr/bin/env bats
# vm-run's NICs with the test guest (tests/guest plus the net overlay of
# tests/guest/net) under -accel jit: one boot with three NICs --
#   e1000 on a vm-net user child:  -netdev user,id=u0,... -device e1000,netdev=u0
#   virtio-net on another child:   -nic user,model=virtio-net-pci,net=10.0.3.0/24
#   e1000 on a vm-net user run by the test (-netdev stream): restrict=on,
#     a hostfwd to the guest's httpd, and --pcap
# The guest takes a DHCP lease on each and fetches a file from a python
# HTTP server that plays the host (10.0.2.2, 10.0.3.2; 10.0.4.2 is blocked
# by restrict=on), resolves a name through the slirp DNS (10.0.2.3, which
# asks the namespace's resolver, tests/guest/net/dns-server.py), then
# serves httpd: the host fetches a page through the restricted NIC's
# hostfwd, adds a forward to the guest's nc through vm-run's monitor
# (hostfwd_add), talks to it, and removes it; set_link off and on through
# the monitor take both user NICs' carrier down and up.  Everything runs
# in a private network and mount namespace (unshare -n -m) so nothing
# leaves this machine.  Option errors are checked without a guest.

load helper

NETDIR="$VM_TOP/tests/guest/net"
# Prints "IF name driver" for every interface, then per NIC (found by
# MAC) the lease and the fetch, tagged.
GUEST_CMD='for i in /sys/class/net/eth*; do
	echo "IF $(basename $i) $(basename $(readlink $i/device/driver))"
done
run_nic() {
	tag=$1 host=$3
	for i in /sys/class/net/eth*; do
		[ "$(cat $i/address)" = "$2" ] && ifc=$(basename $i)
	done
	ip link set "$ifc" up
	udhcpc -i "$ifc" -n -q -t 10 -T 1 2>&1 | sed "s/^/$tag: /"
	if timeout 15 wget -q -O /tmp/f "http://$host:8080/payload.txt"; then
		echo "$tag: WGET-OK $(cat /tmp/f)"
	else
		echo "$tag: WGET-FAILED"
	fi
}
run_nic e1000 52:54:00:aa:bb:01 10.0.2.2
run_nic virtio_net 52:54:00:aa:bb:02 10.0.3.2
run_nic restricted 52:54:00:aa:bb:03 10.0.4.2
nslookup host.vmtest 10.0.2.3 2>&1 | sed "s/^/NS: /"
httpd -p 80 -h /www && echo HTTPD-READY
echo "FWD-GOT $(timeout 200 nc -l -p 7777)"
carrier() { for i in /sys/class/net/eth*; do [ "$(cat $i/address)" = "$1" ] && cat $i/carrier; done; }
links() { echo "$(carrier 52:54:00:aa:bb:01)$(carrier 52:54:00:aa:bb:02)"; }
echo "LINK-READY $(links)"
i=0; until [ "$(links)" = 00 ]; do i=$((i+1)); [ $i -gt 600 ] && break; usleep 200000; done
echo "LINK-DOWN $(links)"
i=0; until [ "$(links)" = 11 ]; do i=$((i+1)); [ $i -gt 600 ] && break; usleep 200000; done
echo "LINK-UP $(links)"'

# The scenario inside the namespace: OUT is the directory, the rest vm-run's
# NIC options.
scenario() {
	local out=$1 h d vm t=600 i
	shift
	case $(command -v vm-run) in */san/*) t=850 ;; esac	# ASan'd JIT: slower
	ip link set lo up || return 1
	echo "nameserver 127.0.0.1" >"$out/resolv.conf"
	mount --bind "$out/resolv.conf" /etc/resolv.conf || return 1
	python3 "$NETDIR/dns-server.py" 127.0.0.1 53 >"$out/dns.log" 2>&1 &
	d=$!
	(cd "$out/www" && exec python3 -m http.server 8080 --bind 0.0.0.0) >"$out/http.log" 2>&1 &
	h=$!
	vm-net --fork --pid-file "$out/r.pid" -k "$out/r.sock" -C "$out/r.ctl" --pcap "$out/r.pcap" \
		user,net=10.0.4.0/24,restrict=on,hostfwd=tcp:127.0.0.1:5580-:80 2>"$out/r.log" || return 1
	timeout "$t" vm-run -accel jit -m 256 -nodefaults -display none -no-reboot \
		-serial "file:$out/console.log" -qmp "unix:$out/qmp.sock,server=on,wait=off" \
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1 vmtest.cmdb64=$(printf '%s' "$GUEST_CMD" | base64 -w0)" \
		"$@" -netdev "stream,id=r0,server=off,addr.type=unix,addr.path=$out/r.sock" \
		-device e1000,netdev=r0,mac=52:54:00:aa:bb:03 2>"$out/vm-run.log" &
	vm=$!
	for i in $(seq $((t * 2))); do
		kill -0 "$vm" 2>/dev/null || break
		grep -q HTTPD-READY "$out/console.log" 2>/dev/null && break
		sleep 0.5
	done
	host_side "$out" >"$out/host.log" 2>&1
	wait "$vm"
	echo "vm-run exit $?" >>"$out/vm-run.log"
	vm-net ctl "$out/r.ctl" info >"$out/r.info" 2>&1
	kill "$h" "$d" "$(cat "$out/r.pid")"
}

# What the host does once the guest serves: fetch a page through the
# restricted NIC's hostfwd, forward port 5581 to the guest's nc through
# the monitor, talk to it, remove the forward and find the port closed.
host_side() {
	local out=$1
	python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:5580/", timeout=20).read().decode(), end="")' \
		>"$out/fetch.out"
	echo "hostfwd_add: $(vm-mon "$out/qmp.sock" hostfwd_add u0 tcp:127.0.0.1:5581-:7777 2>&1; echo "status $?")"
	python3 -c 'import socket; s=socket.create_connection(("127.0.0.1",5581),10); s.sendall(b"bye through the monitor\n"); s.close()'
	echo "hostfwd_remove: $(vm-mon "$out/qmp.sock" hostfwd_remove u0 tcp:127.0.0.1:5581 2>&1; echo "status $?")"
	python3 -c 'import socket; socket.create_connection(("127.0.0.1",5581),5)' 2>/dev/null &&
		echo "AFTER-REMOVE: connected" || echo "AFTER-REMOVE: refused"
	wait_console "$out" LINK-READY
	echo "set_link off: $(vm-mon "$out/qmp.sock" set_link u0 off 2>&1; vm-mon "$out/qmp.sock" set_link net1 off 2>&1; echo "status $?")"
	wait_console "$out" LINK-DOWN
	echo "set_link on: $(vm-mon "$out/qmp.sock" set_link u0 on 2>&1; vm-mon "$out/qmp.sock" set_link net1 on 2>&1; echo "status $?")"
}

# wait_console OUT WORD: until the guest prints WORD (at most 3 minutes).
wait_console() {
	local i
	for i in $(seq 360); do
		grep -q "$2" "$1/console.log" && return 0
		sleep 0.5
	done
	return 1
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
	export VM_CACHE GUEST_CMD NETDIR
	export -f scenario host_side wait_console
	U=$BATS_FILE_TMPDIR/run
	mkdir -p "$U/www"
	echo "payload $RANDOM$RANDOM from the host" >"$U/www/payload.txt"
	echo "r$RANDOM$RANDOM.example" >"$U/tag"	# names this run's vm-net child
	unshare -n -m --propagation private bash -c 'scenario "$@"' scenario "$U" \
		-netdev user,id=u0,hostname=e1000guest,dnssearch="$(cat "$U/tag")" -device e1000,netdev=u0,mac=52:54:00:aa:bb:01 \
		-nic user,model=virtio-net-pci,net=10.0.3.0/24,mac=52:54:00:aa:bb:02 3>&-
}

setup() {
	T=$BATS_TEST_TMPDIR
	U=$BATS_FILE_TMPDIR/run
}

show_run() {
	local f
	for f in console.log vm-run.log http.log host.log r.log dns.log; do
		echo "== $f"
		cat "$U/$f" 2>/dev/null || true
	done
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

@test "vm-run guest: a name resolves through the slirp DNS and the host's resolver" {
	show_run
	grep -q "NS: Server:.*10.0.2.3" "$U/console.log"
	grep -q "NS: Address: 192.0.2.7" "$U/console.log"
	grep -q "query host.vmtest" "$U/dns.log"
}

@test "vm-run guest on restrict=on: DHCP works, outbound connections are blocked" {
	show_run
	# libslirp offers no router and no DNS server when restricted
	grep -q "restricted: DHCP-LEASE ip=10.0.4.15 router= dns= " "$U/console.log"
	grep -q "restricted: WGET-FAILED" "$U/console.log"
	[ "$(grep -c "GET /payload.txt" "$U/http.log")" = 2 ]	# the other two NICs only
}

@test "vm-run guest on restrict=on: a hostfwd still reaches the guest's httpd" {
	show_run
	[ "$(cat "$U/fetch.out")" = "hello from the guest's httpd" ]
}

@test "vm-run monitor: hostfwd_add reaches the guest, hostfwd_remove closes the port" {
	show_run
	grep -q "hostfwd_add: status 0" "$U/host.log"
	grep -q "FWD-GOT bye through the monitor" "$U/console.log"
	grep -q "hostfwd_remove: status 0" "$U/host.log"
	grep -q "AFTER-REMOVE: refused" "$U/host.log"
}

@test "vm-run monitor: set_link off takes the carrier of e1000 and virtio-net down in the guest, on brings it back" {
	show_run
	grep -q "LINK-READY 11" "$U/console.log"
	grep -q "LINK-DOWN 00" "$U/console.log"
	grep -q "LINK-UP 11" "$U/console.log"
}

@test "tshark reads the vm-run guest's capture: DHCP, the forwarded HTTP request, no connection out" {
	require tshark
	show_run
	run --separate-stderr tshark -r "$U/r.pcap" -Y dhcp -T fields -e dhcp.option.dhcp
	echo "$output"
	[ "$(echo $output)" = "1 2 3 5" ]	# discover, offer, request, ack
	run --separate-stderr tshark -r "$U/r.pcap" -Y http.request \
		-T fields -e http.request.uri -e ip.dst -e tcp.dstport -e frame.len -e frame.cap_len -e ip.len
	echo "$output"
	[ "${#lines[@]}" = 1 ]
	read -r uri dst port len cap iplen <<<"${lines[0]}"
	[ "$uri $dst $port" = "/ 10.0.4.15 80" ]
	[ "$len" -eq "$cap" ] && [ "$len" -eq $((iplen + 14)) ]
	# the guest's SYN to 10.0.4.2:8080 is there, and no SYN-ACK came back
	run --separate-stderr tshark -r "$U/r.pcap" -T fields -e ip.src \
		-Y "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 8080"
	echo "$output"
	[ "${#lines[@]}" -ge 1 ] && [ "${lines[0]}" = 10.0.4.15 ]
	run --separate-stderr tshark -r "$U/r.pcap" -Y "tcp.flags.syn == 1 && tcp.srcport == 8080"
	[ -z "$output" ]
	run --separate-stderr tshark -r "$U/r.pcap" -T fields -e frame.time_epoch
	awk 'NR > 1 && $1 < prev { print "out of order at " NR; exit 1 } { prev = $1 }' <<<"$output"
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
	run vm-run -display none -kernel "$k" -netdev stream,id=a,server=on -device e1000,netdev=a
	[ "$status" = 1 ] && [ "$output" = "vm-run: -device e1000,netdev=a: stream,server=on: needs addr.type=unix,addr.path= or addr.type=inet,addr.port=" ]
	run vm-run -display none -kernel "$k" -nic socket
	[ "$status" = 1 ] && [ "$output" = "vm-run: -nic socket: socket: needs connect=, listen=, fd= or path=" ]
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

@test "-netdev stream,server=on and -netdev socket,listen= listen through a vm-net child that ends with vm-run" {
	local port=$((20000 + RANDOM % 20000)) vm i
	vm-run -accel jit -S -display none -kernel "$VM_BUILD/tests/guest/hw-hello.elf" \
		-netdev stream,id=a,server=on,addr.type=unix,addr.path="$T/l.sock" -device e1000,netdev=a \
		-netdev socket,id=b,listen=127.0.0.1:$port -device virtio-net-pci,netdev=b \
		</dev/null 2>"$T/vm-run.log" &
	vm=$!
	for i in $(seq 100); do [ -S "$T/l.sock" ] && break; sleep 0.1; done
	run python3 "$NETDIR/netpeer.py" hub "unix:$T/l.sock" "unix:$T/l.sock"
	echo "$output"
	[ "$status" = 0 ]
	run python3 "$NETDIR/netpeer.py" hub "tcp:127.0.0.1:$port" "tcp:127.0.0.1:$port"
	echo "$output"
	[ "$status" = 0 ]
	pgrep -f "vm-net --fd .* -l unix:$T/l.sock hub"
	kill "$vm"
	wait "$vm" || true
	cat "$T/vm-run.log"
	for i in $(seq 50); do
		pgrep -f "vm-net --fd .* -l unix:$T/l.sock hub" >/dev/null || break
		sleep 0.1
	done
	run pgrep -f "vm-net --fd .* -l unix:$T/l.sock hub"
	[ "$status" = 1 ]
	[ ! -e "$T/l.sock" ]
}
