#!/usr/bin/env bats
# vm-net without a guest: the command line, the stream framing with a small
# python peer (tests/guest/net/netpeer.py), hubs over unix sockets and TCP,
# inherited descriptors, the control socket, pcap capture read back by
# tshark, and a tap device inside a private network namespace.

load helper

NETPEER="$VM_TOP/tests/guest/net/netpeer.py"

setup() {
	T=$BATS_TEST_TMPDIR
	PIDS=()
}

teardown() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}

# start_net NAME ARGS...: run vm-net --fork with its log in $T/NAME.log.
start_net() {
	local name=$1
	shift
	vm-net --fork --pid-file "$T/$name.pid" "$@" 2>"$T/$name.log" || {
		cat "$T/$name.log"; return 1; }
	PIDS+=("$(cat "$T/$name.pid")")
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

netpeer() {
	python3 "$NETPEER" "$@"
}

@test "vm-net without a back-end fails with one line" {
	run timeout 10 vm-net -k "$T/s"
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == "vm-net: missing back-end"* ]]
}

@test "vm-net rejects an unknown back-end and an unknown key with one line" {
	run timeout 10 vm-net -k "$T/s" switch
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"unknown back-end 'switch'"* ]]
	run timeout 10 vm-net -k "$T/s" user,bogus=1
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"invalid parameter 'bogus'"* ]]
}

@test "vm-net refuses to start with nothing to serve" {
	run timeout 10 vm-net hub
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"nothing to serve"* ]]
}

@test "vm-net user rejects malformed addresses and forwarding rules" {
	run timeout 10 vm-net -k "$T/s" user hostfwd=tcp::22
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"invalid host forwarding rule 'tcp::22'"* ]]
	run timeout 10 vm-net -k "$T/s" user net=10.0.2.0/24,host=10.0.3.2
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"host=10.0.3.2: not inside the network"* ]]
	run timeout 10 vm-net -k "$T/s" user ipv4=off,ipv6=off
	[ "$status" -eq 1 ]
	one_line_error
	run timeout 10 vm-net -k "$T/s" user guestfwd=tcp:10.0.2.100:80-file:/x
	[ "$status" -eq 1 ]
	one_line_error
	[ ! -e "$T/s" ]
}

@test "vm-net user help lists the keys of -netdev user" {
	run vm-net user help
	[ "$status" -eq 0 ]
	for k in net= host= dhcpstart= dns= ipv6-net= hostfwd= guestfwd= restrict= tftp= bootfile=; do
		[[ "$output" == *"$k"* ]] || { echo "missing $k"; return 1; }
	done
}

@test "a busy host port makes vm-net user fail with one line" {
	port=$(free_port)
	python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); print("ready", flush=True); time.sleep(30)' "$port" >"$T/bound" 3>&- &
	PIDS+=($!)
	for _ in $(seq 100); do grep -q ready "$T/bound" && break; sleep 0.1; done
	run timeout 10 vm-net -k "$T/s" user hostfwd=tcp:127.0.0.1:$port-:22
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"could not set up host forwarding rule"* ]]
}

@test "vm-net -k creates its socket with mode 0600 and removes it on SIGTERM" {
	start_net hub -k "$T/hub.sock" hub
	[ "$(stat -c %a "$T/hub.sock")" = 600 ]
	kill "${PIDS[0]}"
	for _ in $(seq 50); do kill -0 "${PIDS[0]}" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "${PIDS[0]}" 2>/dev/null
	[ ! -e "$T/hub.sock" ]
}

@test "a hub repeats each frame to every other port and not back" {
	start_net hub -k "$T/hub.sock" hub
	run netpeer hub "$T/hub.sock" "$T/hub.sock" "$T/hub.sock" "$T/hub.sock"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "hubs joined over TCP share one LAN and reconnect" {
	port=$(free_port)
	start_net a -k "$T/a.sock" --listen "tcp:127.0.0.1:$port" hub
	start_net b -k "$T/b.sock" --connect "tcp:127.0.0.1:$port" -C "$T/b.ctl" hub
	run netpeer hub "$T/a.sock" "$T/b.sock" "tcp:127.0.0.1:$port"
	echo "$output"
	[ "$status" -eq 0 ]
	run netpeer hub "$T/b.sock" "$T/a.sock"
	[ "$status" -eq 0 ]
	kill "${PIDS[0]}"
	sleep 0.5
	run vm-net ctl "$T/b.ctl" info
	[[ "$output" == *"connecting to tcp:127.0.0.1:$port (away)"* ]]
	start_net a2 -k "$T/a.sock" --listen "tcp:127.0.0.1:$port" hub
	sleep 1.5
	run netpeer hub "$T/b.sock" "$T/a.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -q "reconnected" "$T/b.log"
}

@test "bad lengths, truncated frames and vanishing peers close only that peer" {
	start_net hub -k "$T/hub.sock" hub
	run netpeer malformed "$T/hub.sock"
	echo "$output"
	[ "$status" -eq 0 ]
	kill -0 "${PIDS[0]}"
	cat "$T/hub.log"
	grep -q "bad frame length 0 " "$T/hub.log"
	grep -q "bad frame length 2147483647 " "$T/hub.log"
	grep -q "bad frame length 69633 " "$T/hub.log"
	grep -q "peer closed in the middle of a frame (54 bytes pending)" "$T/hub.log"
}

@test "vm-net user answers ARP for the host address" {
	start_net user -k "$T/user.sock" user
	run netpeer arp "$T/user.sock" 10.0.2.2
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == "ok 10.0.2.2 is at 52:55:0a:00:02:02" ]]
}

@test "vm-net --fd serves an inherited socket and exits 0 when it closes" {
	run netpeer fd-child vm-net --fd '{fd}' user
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "a control connection inherited with -C fd:N switches the link (vm-run's way)" {
	run netpeer ctl-fd vm-net --fd '{fd}' -C 'fd:{ctl}' user,id=user0
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "vm-net --fd listens on an inherited listening socket" {
	cat >"$T/listen.py" <<-'EOF'
	import socket, subprocess, sys, time
	path, netpeer = sys.argv[1], sys.argv[2]
	ls = socket.socket(socket.AF_UNIX)
	ls.bind(path)
	ls.listen()
	vm = subprocess.Popen(["vm-net", "--fd", str(ls.fileno()), "hub"], pass_fds=(ls.fileno(),))
	ls.close()
	r = subprocess.run([sys.executable, netpeer, "hub", path, path, path])
	vm.terminate()
	sys.exit(r.returncode or vm.wait(timeout=5))
	EOF
	run timeout 20 python3 "$T/listen.py" "$T/inherited.sock" "$NETPEER"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "vm-net --fd rejects a descriptor that is not open" {
	run timeout 10 vm-net --fd 77 hub
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == *"file descriptor 77"* ]]
}

@test "control socket: hostfwd_add and hostfwd_remove at run time" {
	port=$(free_port)
	start_net user -k "$T/user.sock" -C "$T/ctl" user,id=net0
	[ "$(stat -c %a "$T/ctl")" = 600 ]
	run vm-net ctl "$T/ctl" hostfwd_add net0 "tcp:127.0.0.1:$port-:80"
	[ "$status" -eq 0 ]
	run vm-net ctl "$T/ctl" info
	[[ "$output" == *"HOST_FORWARD"*"127.0.0.1"*"$port"* ]]
	python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),2).close()' "$port"
	run vm-net ctl "$T/ctl" hostfwd_remove "tcp:127.0.0.1:$port"
	[ "$status" -eq 0 ]
	run python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),2).close()' "$port"
	[ "$status" -ne 0 ]
	run vm-net ctl "$T/ctl" hostfwd_remove "tcp:127.0.0.1:$port"
	[ "$status" -eq 1 ]
	[ "$output" = "vm-net: could not remove host forwarding rule 'tcp:127.0.0.1:$port'" ]
	run vm-net ctl "$T/ctl" hostfwd_add other0 "tcp::$port-:80"
	[ "$status" -eq 1 ]
	[[ "$output" == *"no back-end with id 'other0'"* ]]
	run vm-net ctl "$T/ctl" hostfwd_add "tcp:nonsense"
	[ "$status" -eq 1 ]
	one_line_error
}

@test "host forwards on an IPv6 host address and for UDP come and go" {
	require ss
	port=$(free_port)
	start_net user -k "$T/user.sock" -C "$T/ctl" "user,hostfwd=udp:127.0.0.1:$port-:53"
	ss -lnu | grep -q "127.0.0.1:$port "
	run vm-net ctl "$T/ctl" hostfwd_add "tcp:[::1]:$port-:80"
	[ "$status" -eq 0 ] || { echo "$output"; skip "no IPv6 loopback here"; }
	python3 -c 'import socket,sys; socket.create_connection(("::1",int(sys.argv[1])),2).close()' "$port"
	vm-net ctl "$T/ctl" hostfwd_remove "tcp:[::1]:$port"
	vm-net ctl "$T/ctl" hostfwd_remove "udp:127.0.0.1:$port"
	! ss -lnu | grep -q "127.0.0.1:$port "
	! ss -lnt | grep -q "\[::1\]:$port "
}

@test "control socket: set_link off drops frames and on restores them" {
	start_net hub -k "$T/hub.sock" -C "$T/ctl" hub
	run netpeer silent "$T/hub.sock" "$T/hub.sock"
	[ "$output" = delivered ]
	vm-net ctl "$T/ctl" set_link off
	run netpeer silent "$T/hub.sock" "$T/hub.sock"
	[ "$output" = dropped ]
	vm-net ctl "$T/ctl" set_link hub on
	run netpeer silent "$T/hub.sock" "$T/hub.sock"
	[ "$output" = delivered ]
	run vm-net ctl "$T/ctl" set_link maybe
	[ "$status" -eq 1 ]
	run vm-net ctl "$T/ctl" frobnicate
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown command 'frobnicate'"* ]]
	vm-net ctl "$T/ctl" quit
	for _ in $(seq 50); do kill -0 "${PIDS[0]}" 2>/dev/null || break; sleep 0.1; done
	! kill -0 "${PIDS[0]}" 2>/dev/null
}

@test "tshark reads the capture with real lengths, the snap length and ordered timestamps" {
	require tshark
	start_net hub -k "$T/hub.sock" --pcap "$T/cap.pcap" --snaplen 100 hub
	netpeer frames "$T/hub.sock" 5 60 1000 1514
	run --separate-stderr tshark -r "$T/cap.pcap" -T fields -e frame.len -e frame.cap_len -e frame.time_epoch
	[ "$status" -eq 0 ]
	echo "$output"
	[ "${#lines[@]}" -eq 15 ]
	prev=0
	i=0
	for line in "${lines[@]}"; do
		read -r len cap ts <<<"$line"
		want=(60 1000 1514)
		[ "$len" -eq "${want[$((i % 3))]}" ]
		[ "$cap" -eq "$(( len < 100 ? len : 100 ))" ]
		awk -v a="$prev" -v b="$ts" 'BEGIN { exit !(b >= a) }'
		prev=$ts
		i=$((i + 1))
	done
}

@test "a second vm-net joined with --connect is a dump port of a running hub" {
	require tshark
	start_net hub -k "$T/hub.sock" hub
	start_net dump --connect "unix:$T/hub.sock" --pcap "$T/dump.pcap" hub
	sleep 0.2
	netpeer frames "$T/hub.sock" 4 100 200
	kill "${PIDS[1]}"
	sleep 0.3
	run --separate-stderr tshark -r "$T/dump.pcap" -T fields -e frame.len
	echo "$output"
	[ "${#lines[@]}" -eq 8 ]
}

@test "--pcap-size rotates the capture into complete files" {
	require tshark
	start_net hub -k "$T/hub.sock" --pcap "$T/cap.pcap" --pcap-size 4k hub
	netpeer frames "$T/hub.sock" 10 1000
	[ -s "$T/cap.pcap.1" ]
	total=0
	for f in "$T"/cap.pcap*; do
		[ "$(stat -c %s "$f")" -le 4096 ]
		n=$(tshark -r "$f" 2>/dev/null | wc -l)
		total=$((total + n))
	done
	[ "$total" -eq 10 ]
}

@test "vm-net tap: the host answers ARP through a tap device set up by script=" {
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	unshare -n true 2>/dev/null || skip "cannot make a network namespace (unshare -n): not root?"
	printf '#!/bin/sh\necho "up $1" >>"%s/scripts.out"\nip addr add 10.0.2.2/24 dev "$1" && ip link set "$1" up\n' "$T" >"$T/up.sh"
	printf '#!/bin/sh\necho "down $1" >>"%s/scripts.out"\n' "$T" >"$T/down.sh"
	chmod +x "$T/up.sh" "$T/down.sh"
	cat >"$T/tap.sh" <<-EOF
	ip link set lo up
	vm-net --fork --pid-file "$T/tap.pid" -k "$T/tap.sock" -C "$T/tap.ctl" \\
		tap,ifname=vmtest0,script=$T/up.sh,downscript=$T/down.sh 2>"$T/tap.log" || exit 1
	python3 "$NETPEER" arp "$T/tap.sock" 10.0.2.2 || exit 1
	vm-net ctl "$T/tap.ctl" info
	vm-net ctl "$T/tap.ctl" quit
	sleep 0.5
	EOF
	run unshare -n sh "$T/tap.sh"
	echo "$output"
	cat "$T/tap.log" || true
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok 10.0.2.2 is at"* ]]
	[[ "$output" == *"tap vmtest0"* ]]
	[ "$(cat "$T/scripts.out")" = "up vmtest0
down vmtest0" ]
}

@test "vm-net tap without the privilege fails with one line" {
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	run timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups vm-net -k "$T/t.sock" tap
	echo "$output"
	[ "$status" -eq 1 ]
	one_line_error
	[[ "$output" == "vm-net: /dev/net/tun: "* || "$output" == *"cannot create the tap device"* ]]
}
