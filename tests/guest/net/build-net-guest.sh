#!/bin/sh
# Build vm-net's overlay of the test guest: a second cpio archive with the
# e1000 module, the busybox applets the network tests use (udhcpc, httpd, tftp,
# ping, nslookup, route), udhcpc's default script and a web root.  The
# kernel takes concatenated cpio archives as one initramfs, so the result
# is the base initramfs of tests/guest followed by this overlay.
#
#   tests/guest/net/build-net-guest.sh CACHE_DIR
#
# Needs CACHE_DIR/initramfs.cpio.gz and the .debs that tests/guest/
# build-guest.sh left in CACHE_DIR/debs; produces CACHE_DIR/net/initramfs.cpio.gz.
# Exit 2 (with one line on stderr) when those are missing.
set -eu
cache=${1:?usage: build-net-guest.sh CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
cache=$(cd "$cache" && pwd)
out=$cache/net/initramfs.cpio.gz
base=$cache/initramfs.cpio.gz
kpkg=$(cat "$cache/kernel-package" 2>/dev/null || true)
kdeb=$(ls "$cache/debs/${kpkg:-none}"_*.deb 2>/dev/null | tail -1 || true)
[ -s "$base" ] && [ -n "$kdeb" ] || { echo "build-net-guest: no base guest in $cache" >&2; exit 2; }
if [ -s "$out" ] && [ "$out" -nt "$base" ] && [ "$out" -nt "$0" ] && [ "$out" -nt "$here/udhcpc.script" ]; then
	exit 0
fi

work=$cache/net/work
rm -rf "$work"
mkdir -p "$work/kernel" "$work/root"
r=$work/root
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work/kernel" --wildcards '*/e1000/e1000.ko*'
mkdir -p "$r/bin" "$r/lib/modules" "$r/etc/udhcpc" "$r/www" "$r/etc"
# The base /init loads /lib/modules/*.ko in name order: after virtio.
for m in "$work"/kernel/lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/e1000.ko*; do
	case "$m" in
	*.xz) xz -dc "$m" >"$r/lib/modules/50-e1000.ko" ;;
	*) cp "$m" "$r/lib/modules/50-e1000.ko" ;;
	esac
done
for a in udhcpc httpd ping ping6 nslookup route netstat pidof killall timeout usleep tftp; do
	ln -s busybox "$r/bin/$a"
done
cp "$here/udhcpc.script" "$r/etc/udhcpc/default.script"
chmod 755 "$r/etc/udhcpc/default.script"
echo "hello from the guest's httpd" >"$r/www/index.html"
echo "127.0.0.1 localhost" >"$r/etc/hosts"

(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet) | gzip -9 >"$work/overlay.cpio.gz"
cat "$base" "$work/overlay.cpio.gz" >"$out.tmp"
mv "$out.tmp" "$out"
rm -rf "$work"
