#!/bin/bash
# TCP throughput between a guest and the host through vm-net user, side by
# side with QEMU's own -netdev user, on the same guest (the test guest of
# tests/guest with vm-net's overlay) and the same qemu-system-x86_64 (TCG).
# Each boot measures three transfers of MIB MiB:
#
#   nc      guest -> host: busybox `dd | nc 10.0.2.2 5001` into a python sink
#   httpd   guest -> host: the host (python urllib) fetches a file from the guest's
#           busybox httpd through hostfwd=tcp:127.0.0.1:5580-:80
#   wget    host -> guest: the guest's busybox wget fetches a file from a
#           python http.server on the host (10.0.2.2:8080)
#
# Every run happens in a private network namespace, so nothing leaves this
# machine.  Not run by make check.
#
#   bench/net-throughput.sh [MIB] [RUNS]     (default 32 MiB, 3 runs each)
#
# Prints MB/s per transfer and run, the best of each, and the ratios
# vm-net/QEMU, plus vm-net's own CPU time per run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mib=${1:-32}
runs=${2:-3}
O=${O:-o/rel}
export PATH="$top/$O/bin:$PATH"
export VM_CACHE=${VM_CACHE:-$top/.cache/guest}
[ -x "$top/$O/bin/vm-net" ] || { echo "net-throughput: build first (make)" >&2; exit 1; }
if [ ! -s "$VM_CACHE/vmlinuz" ]; then
	"$top/tests/guest/build-guest.sh" "$VM_CACHE" >/dev/null
fi
"$top/tests/guest/net/build-net-guest.sh" "$VM_CACHE"
unshare -n true 2>/dev/null || { echo "net-throughput: needs unshare -n (root)" >&2; exit 1; }

cmd="ip link set eth0 up; udhcpc -i eth0 -n -q -t 10 -T 1 >/dev/null 2>&1
mkdir -p /tmp/www; dd if=/dev/zero of=/tmp/www/big bs=1048576 count=$mib 2>/dev/null
httpd -p 80 -h /tmp/www; echo HTTPD-READY
timeout 120 nc -l -p 7777 >/dev/null
dd if=/dev/zero bs=65536 count=$((mib * 16)) 2>/dev/null | nc 10.0.2.2 5001
time wget -q -O /dev/null http://10.0.2.2:8080/big 2>&1 | sed 's/^/WGET /'"

# one_run MODE DIR: one boot (MODE vm-net or qemu); leaves DIR/result with
# lines "nc BYTES SECONDS", "httpd BYTES/S", "wget SECONDS".
one_run() {
	unshare -n bash -s "$1" "$2" "$cmd" "$top" "$mib" <<-'EOS'
	mode=$1 w=$2 cmd=$3 top=$4 mib=$5
	ip link set lo up
	mkdir -p "$w/www"
	head -c $((mib * 1048576)) /dev/zero >"$w/www/big"
	(cd "$w/www" && exec python3 -m http.server 8080 --bind 127.0.0.1) >/dev/null 2>&1 &
	http=$!
	python3 "$top/bench/net-sink.py" 127.0.0.1 5001 300 >"$w/sink.out" &
	sink=$!
	if [ "$mode" = vm-net ]; then
		vm-net --fork --pid-file "$w/pid" -k "$w/net.sock" \
			user,hostfwd=tcp:127.0.0.1:5580-:80,hostfwd=tcp:127.0.0.1:5581-:7777 \
			2>"$w/vm-net.log" || exit 1
		net=(-netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$w/net.sock")
	else
		net=(-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:5580-:80,hostfwd=tcp:127.0.0.1:5581-:7777")
	fi
	timeout 400 qemu-system-x86_64 -M pc -accel tcg -m 512 -nodefaults -display none \
		-no-reboot -serial "file:$w/console.log" \
		-kernel "$VM_CACHE/vmlinuz" -initrd "$VM_CACHE/net/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)" \
		"${net[@]}" -device virtio-net-pci,netdev=n0,romfile= 2>"$w/qemu.log" &
	qemu=$!
	for _ in $(seq 1200); do
		grep -q HTTPD-READY "$w/console.log" 2>/dev/null && break
		sleep 0.1
	done
	python3 - >"$w/result" <<-'EOP'
	import time, urllib.request
	t = time.monotonic()
	n = len(urllib.request.urlopen("http://127.0.0.1:5580/big", timeout=120).read())
	print("httpd", n / (time.monotonic() - t))
	EOP
	python3 -c 'import socket; s=socket.create_connection(("127.0.0.1",5581),5); s.close()'
	wait "$qemu"
	wait "$sink"
	echo "nc $(cat "$w/sink.out")" >>"$w/result"
	# busybox time: "real	0m 0.98s"
	awk '$1 == "WGET" && $2 == "real" { print "wget", ($3 + 0) * 60 + ($4 + 0) }' \
		"$w/console.log" >>"$w/result"
	if [ -f "$w/pid" ]; then
		awk -v hz="$(getconf CLK_TCK)" '{ printf "cpu %.2f\n", ($14 + $15) / hz }' \
			"/proc/$(cat "$w/pid")/stat" >>"$w/result"
		kill "$(cat "$w/pid")"
	fi
	kill "$http"
	EOS
}

declare -A best
for i in $(seq "$runs"); do
	for mode in vm-net qemu; do
		w=$(mktemp -d)
		one_run "$mode" "$w"
		r=$(awk -v mib="$mib" '
			$1 == "nc" && $3 > 0 { nc = $2 / $3 / 1e6; ok = ($2 == mib * 1048576) }
			$1 == "httpd" { httpd = $2 / 1e6 }
			$1 == "wget" && $2 > 0 { wget = mib * 1048576 / $2 / 1e6 }
			$1 == "cpu" { cpu = $2 }
			END { printf "%.1f %.1f %.1f %s %s", nc, httpd, wget, ok ? "" : "(nc short!)", cpu }' "$w/result")
		read -r nc httpd wget rest <<<"$r"
		printf '%-22s run %d: nc %7s MB/s  httpd %7s MB/s  wget %7s MB/s  %s\n' \
			"$([ "$mode" = vm-net ] && echo "vm-net user (stream)" || echo "qemu -netdev user")" \
			"$i" "$nc" "$httpd" "$wget" "${rest:+vm-net cpu ${rest}s}"
		for k in nc httpd wget; do
			v=${!k}
			awk -v a="$v" -v b="${best[$mode.$k]:-0}" 'BEGIN { exit !(a > b) }' && best[$mode.$k]=$v
		done
		rm -rf "$w"
	done
done
for k in nc httpd wget; do
	awk -v k="$k" -v a="${best[vm-net.$k]:-0}" -v b="${best[qemu.$k]:-0}" \
		'BEGIN { printf "best %-6s vm-net %7.1f MB/s  qemu %7.1f MB/s  ratio %.2f\n", k, a, b, (b > 0 ? a / b : 0) }'
done
