#!/usr/bin/env bats
# vm-net with real guests: the test guest (tests/guest, plus vm-net's
# overlay from tests/guest/net) booted by qemu-system-x86_64 under TCG and
# joined to vm-net through QEMU's -netdev stream.  The user back-end runs in
# a private network namespace (tests/guest/net/user-scenario.sh) so guest
# traffic stays on this machine.  One boot in setup_file serves the first
# tests; restrict=on and the hub boot guests of their own.

load helper

NETDIR="$VM_TOP/tests/guest/net"
GUEST_CMD='ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -T 1 -O search || echo DHCP-FAILED
wget -q -O /tmp/f http://10.0.2.2:8080/payload.txt && echo "WGET-OK $(cat /tmp/f)" || echo WGET-FAILED
tftp -g -r payload.txt -l /tmp/t 10.0.2.2 && echo "TFTP-OK $(cat /tmp/t)" || echo TFTP-FAILED
echo "GUESTFWD $(nc 10.0.2.100 1234 </dev/null)"
nslookup host.vmtest 2>&1 | sed "s/^/NS: /"
i=0; until ping6 -c 1 -W 1 fec0::2 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 15 ] && break; sleep 0.5; done
ping6 -c 1 -W 2 fec0::2 >/dev/null 2>&1 && echo PING6-OK || echo PING6-FAILED
httpd -p 80 -h /www && echo HTTPD-READY
timeout 20 nc -l -p 7777 >/dev/null; echo RELEASED'

# Skip (with the reason) unless a guest can boot here; builds the overlay.
net_guest_require() {
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
	export VM_CACHE
}

netns_require() {
	unshare -n -m true 2>/dev/null ||
		skip "cannot make a private network namespace (unshare -n -m): not root?"
}

# user_run DIR MODEL NETOPTS CMD: one guest on vm-net user (see user-scenario.sh).
user_run() {
	mkdir -p "$1/www"
	echo "payload $RANDOM$RANDOM from the host" >"$1/www/payload.txt"
	unshare -n -m --propagation private "$NETDIR/user-scenario.sh" "$@"
}

setup_file() {
	net_guest_require
	netns_require
	U=$BATS_FILE_TMPDIR/user
	user_run "$U" virtio-net-pci "tftp=$U/www,hostname=vmguest,domainname=vmtest.example,dnssearch=a.example,dnssearch=b.example,guestfwd=tcp:10.0.2.100:1234-cmd:echo guestfwd-hello" "$GUEST_CMD" 3>&-
}

setup() {
	T=$BATS_TEST_TMPDIR
	U=$BATS_FILE_TMPDIR/user
	PIDS=()
}

teardown() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}

show_run() {
	cat "$1/console.log" "$1/vm-net.log" "$1/qemu.log" 2>/dev/null || true
}

@test "a QEMU guest on vm-net user gets a DHCP lease" {
	show_run "$U"
	grep -q "DHCP-LEASE ip=10.0.2.15 router=10.0.2.2 dns=10.0.2.3" "$U/console.log"
	grep -q "VM-GUEST-STATUS=0" "$U/console.log"
}

@test "DHCP hands out hostname=, domainname= and every dnssearch=" {
	grep "DHCP-LEASE" "$U/console.log"
	grep -q "DHCP-LEASE .* hostname=vmguest domain=vmtest.example search=a.example b.example" "$U/console.log"
}

@test "the guest fetches a file by TFTP from tftp= and reaches a guestfwd= command" {
	grep -qF "TFTP-OK $(cat "$U/www/payload.txt")" "$U/console.log"
	grep -q "GUESTFWD guestfwd-hello" "$U/console.log"
}

@test "the guest fetches a file from the host's HTTP server through vm-net user" {
	show_run "$U"
	grep -qF "WGET-OK $(cat "$U/www/payload.txt")" "$U/console.log"
	grep -q '"GET /payload.txt HTTP/1.1" 200' "$U/http.log"
}

@test "the guest resolves a name through the slirp DNS at 10.0.2.3" {
	show_run "$U"
	grep -q "NS: Server:.*10.0.2.3" "$U/console.log"
	grep -q "NS: Address: 192.0.2.7" "$U/console.log"
	grep -q "query host.vmtest" "$U/dns.log"
}

@test "the guest configures IPv6 from vm-net user's router advertisements and pings fec0::2" {
	grep -q PING6-OK "$U/console.log"
}

@test "a hostfwd lets the host fetch a page from the guest's busybox httpd" {
	show_run "$U"
	[ "$(cat "$U/curl.out")" = "hello from the guest's httpd" ]
}

@test "a host forward added through the control socket reaches the guest" {
	show_run "$U"
	[ ! -s "$U/ctl.out" ]
	grep -q RELEASED "$U/console.log"
	grep -q "HOST_FORWARD.*5581" "$U/info.out"
}

@test "tshark finds the DHCP exchange and the HTTP request with correct lengths and ordered timestamps" {
	require tshark
	run --separate-stderr tshark -r "$U/net.pcap" -Y dhcp -T fields -e dhcp.option.dhcp
	echo "$output"
	[ "$(echo $output)" = "1 2 3 5" ]          # discover, offer, request, ack
	run --separate-stderr tshark -r "$U/net.pcap" -Y http.request \
		-T fields -e http.request.uri -e frame.len -e frame.cap_len -e ip.len
	echo "$output"
	[ "${#lines[@]}" -ge 2 ]
	[[ "${lines[0]}" == "/payload.txt"* ]]
	for line in "${lines[@]}"; do
		read -r uri len cap iplen <<<"$line"
		[ "$len" -eq "$cap" ]
		[ "$len" -eq $((iplen + 14)) ]
	done
	run --separate-stderr tshark -r "$U/net.pcap" -T fields -e frame.time_epoch -e frame.len -e ip.len
	[ "${#lines[@]}" -gt 20 ]
	awk 'NR > 1 && $1 < prev { print "out of order at " NR; exit 1 }
	     $3 != "" && $2 < $3 + 14 { print "short frame at " NR; exit 1 }
	     { prev = $1 }' <<<"$output"
}

@test "restrict=on keeps DHCP but blocks outbound connections of an e1000 guest" {
	net_guest_require
	netns_require
	user_run "$T" e1000 restrict=on 'ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -T 1 || echo DHCP-FAILED
timeout 5 wget -q -O /tmp/f http://10.0.2.2:8080/payload.txt; echo "WGET-STATUS=$?"'
	show_run "$T"
	grep -q "DHCP-LEASE ip=10.0.2.15" "$T/console.log"
	# blocked: slirp refuses the connection and wget fails (1), neither a
	# success nor a crash (busybox 1.35's wget -T segfaults: not used)
	grep -q "can't connect to remote host" "$T/console.log"
	grep -q "WGET-STATUS=1" "$T/console.log"
	! grep -q "GET /payload.txt" "$T/http.log"
}

# boot_guest NAME NETDEV MODEL MAC CMD: a background guest; NETDEV is the
# -netdev stream address part.  (no_timer_check: user-scenario.sh.)
boot_guest() {
	timeout 90 qemu-system-x86_64 -M pc -accel tcg -m 256 -nodefaults -display none \
		-no-reboot -serial "file:$T/$1.console" \
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet no_timer_check vmtest.cmdb64=$(printf '%s' "$5" | base64 -w0)" \
		-netdev "stream,id=n0,$2" \
		-device "$3,netdev=n0,mac=$4,romfile=" 2>"$T/$1.qemu" 3>&- &
	PIDS+=($!)
}

# Ping the other guest until it answers, then stay up a while for its pings.
ping_cmd() {
	echo "ip addr add $1/24 dev eth0; ip link set eth0 up
i=0; until ping -c 1 -W 1 $2 >/dev/null 2>&1; do i=\$((i+1)); [ \$i -gt 40 ] && break; done
ping -c 3 -W 2 $2 | grep -q ' 0% packet loss' && echo PING-OK || echo PING-FAILED
sleep 3"
}

@test "two QEMU guests on one vm-net hub ping each other (one over TCP, one dialled on its unix socket)" {
	net_guest_require
	# Guest b's QEMU is the server (server=on): the hub connects out to it.
	boot_guest b "server=on,addr.type=unix,addr.path=$T/b.sock" e1000 52:54:00:00:77:02 \
		"$(ping_cmd 192.168.77.2 192.168.77.1)"
	for _ in $(seq 50); do [ -S "$T/b.sock" ] && break; sleep 0.1; done
	# Guest a joins over TCP (addr.type=inet) on the hub's --listen.
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	vm-net --fork --pid-file "$T/hub.pid" --listen "tcp:127.0.0.1:$port" --connect "unix:$T/b.sock" \
		--pcap "$T/hub.pcap" hub 2>"$T/hub.log"
	PIDS+=("$(cat "$T/hub.pid")")
	boot_guest a "server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=$port" virtio-net-pci \
		52:54:00:00:77:01 "$(ping_cmd 192.168.77.1 192.168.77.2)"
	wait "${PIDS[0]}" "${PIDS[2]}" || true
	cat "$T/a.console" "$T/b.console" "$T/hub.log"
	grep -q PING-OK "$T/a.console"
	grep -q PING-OK "$T/b.console"
	if command -v tshark >/dev/null; then
		run --separate-stderr tshark -r "$T/hub.pcap" -Y "icmp.type == 0 && ip.src == 192.168.77.2"
		[ "${#lines[@]}" -ge 3 ]
	fi
}

@test "a QEMU guest pings the host through vm-net tap" {
	net_guest_require
	netns_require
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	cat >"$T/tap.sh" <<-EOF
	ip link set lo up
	vm-net --fork --pid-file "$T/tap.pid" -k "$T/tap.sock" tap,ifname=vmtest1 2>"$T/tap.log" || exit 1
	ip addr add 192.168.78.1/24 dev vmtest1 && ip link set vmtest1 up || exit 1
	timeout 60 qemu-system-x86_64 -M pc -accel tcg -m 256 -nodefaults -display none \\
		-no-reboot -serial "file:$T/tap.console" \\
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \\
		-append "console=ttyS0 quiet no_timer_check vmtest.cmdb64=\$(printf '%s' "\$1" | base64 -w0)" \\
		-netdev stream,id=n0,server=off,addr.type=unix,addr.path=$T/tap.sock \\
		-device virtio-net-pci,netdev=n0,romfile= 2>"$T/tap.qemu"
	kill \$(cat "$T/tap.pid")
	EOF
	unshare -n sh "$T/tap.sh" 'ip addr add 192.168.78.2/24 dev eth0; ip link set eth0 up
i=0; until ping -c 1 -W 1 192.168.78.1 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 20 ] && break; done
ping -c 3 -W 2 192.168.78.1 | grep -q " 0% packet loss" && echo TAP-PING-OK || echo TAP-PING-FAILED' 3>&-
	cat "$T/tap.console" "$T/tap.log" "$T/tap.qemu"
	grep -q TAP-PING-OK "$T/tap.console"
}
