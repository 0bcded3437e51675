#!/bin/bash
# One test-guest run on vm-net user, inside a private network and mount
# namespace (unshare -n -m) so that no guest packet can leave this machine:
# the namespace has only its loopback, where a python http.server plays
# "the host" (10.0.2.2 for the guest) and dns-server.py plays the host's
# resolver (a private /etc/resolv.conf is bind-mounted).
#
#   unshare -n -m --propagation private user-scenario.sh OUT MODEL NETOPTS GUESTCMD
#
# MODEL is a QEMU NIC (virtio-net-pci, e1000); NETOPTS extra vm-net user
# keys.  The host's payload is OUT/www/payload.txt.  When the guest prints
# HTTPD-READY the script fetches http://127.0.0.1:5580/ (hostfwd to the
# guest's port 80, with python's urllib) into OUT/curl.out, adds a forward for port 7777 through
# the control socket and connects to it, which releases the guest.  Leaves
# OUT/console.log, OUT/vm-net.log, OUT/net.pcap, OUT/dns.log, OUT/http.log.
set -u
out=$1 model=$2 netopts=$3 cmd=$4
here=$(cd "$(dirname "$0")" && pwd)
cache=${VM_CACHE:?}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

ip link set lo up || exit 1
echo "nameserver 127.0.0.1" >"$out/resolv.conf"
mount --bind "$out/resolv.conf" /etc/resolv.conf || exit 1
python3 "$here/dns-server.py" 127.0.0.1 53 >"$out/dns.log" 2>&1 &
pids+=($!)
(cd "$out/www" && exec python3 -m http.server 8080 --bind 127.0.0.1) >"$out/http.log" 2>&1 &
pids+=($!)

vm-net --fork --pid-file "$out/vm-net.pid" -k "$out/net.sock" -C "$out/net.ctl" \
	--pcap "$out/net.pcap" "user,hostfwd=tcp:127.0.0.1:5580-:80${netopts:+,$netopts}" \
	2>"$out/vm-net.log" || exit 1
pids+=("$(cat "$out/vm-net.pid")")

# no_timer_check: on a loaded host, QEMU's TCG guest can count too few
# ticks in the kernel's IO-APIC timer check and panic ("IO-APIC + timer
# doesn't work"), as a clean-clone CI run did.
timeout 60 qemu-system-x86_64 -M pc -accel tcg -m 256 -nodefaults -display none \
	-no-reboot -serial "file:$out/console.log" \
	-kernel "$cache/vmlinuz" -initrd "$cache/net/initramfs.cpio.gz" \
	-append "console=ttyS0 quiet no_timer_check vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)" \
	-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$out/net.sock" \
	-device "$model,netdev=n0,romfile=" 2>"$out/qemu.log" &
qemu=$!

for _ in $(seq 450); do
	kill -0 "$qemu" 2>/dev/null || break
	if grep -q HTTPD-READY "$out/console.log" 2>/dev/null; then
		python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:5580/", timeout=10).read().decode(), end="")' \
			>"$out/curl.out" 2>"$out/curl.err"
		vm-net ctl "$out/net.ctl" hostfwd_add tcp:127.0.0.1:5581-:7777 >"$out/ctl.out" 2>&1
		python3 -c 'import socket; s=socket.create_connection(("127.0.0.1",5581),5); s.sendall(b"bye\n"); s.close()'
		break
	fi
	sleep 0.1
done
wait "$qemu"
echo "qemu exit $?" >>"$out/qemu.log"
vm-net ctl "$out/net.ctl" info >"$out/info.out" 2>&1
