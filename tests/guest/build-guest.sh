#!/bin/sh
# Build the test guest: Debian's stock x86-64 kernel and an initramfs of
# busybox-static plus the virtio modules, from packages fetched once with
# `apt-get download` into a per-user cache folder.
#
#   tests/guest/build-guest.sh CACHE_DIR
#
# Produces CACHE_DIR/vmlinuz and CACHE_DIR/initramfs.cpio.gz.  No root is
# needed: the cpio archive is written with --owner so every file is root's.
# Exit 2 (with one line on stderr) when the packages cannot be fetched.
set -eu
cache=${1:?usage: build-guest.sh CACHE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# The .debs are kept per user (VM_DEB_CACHE, else ~/.cache/vm-suite/debs),
# so a fresh clone does not download them again; CACHE_DIR/debs points there.
if [ ! -e "$cache/debs" ]; then
	debs=${VM_DEB_CACHE:-${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/vm-suite/debs}
	if mkdir -p "$debs" 2>/dev/null && [ -w "$debs" ]; then
		ln -s "$debs" "$cache/debs"
	else
		mkdir -p "$cache/debs"
	fi
fi

fetch() {	# fetch PACKAGE: download its .deb into the cache unless present
	if ! ls "$cache/debs/$1"_*.deb >/dev/null 2>&1; then
		(cd "$cache/debs" && apt-get download -q "$1" >/dev/null 2>&1) || {
			echo "build-guest: cannot apt-get download $1" >&2; exit 2; }
	fi
	ls "$cache/debs/$1"_*.deb | tail -1
}

# linux-image-amd64 is a metapackage naming the real kernel package.
kpkg=$(cat "$cache/kernel-package" 2>/dev/null || true)
if [ -z "$kpkg" ]; then
	kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
	[ -n "$kpkg" ] || { echo "build-guest: no linux-image-amd64 in apt's lists (apt-get update?)" >&2; exit 2; }
	echo "$kpkg" >"$cache/kernel-package"
fi
kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)

# Up to date: both outputs newer than what they are made from.
if [ -s "$cache/vmlinuz" ] && [ -s "$cache/initramfs.cpio.gz" ]; then
	stale=$(find "$here/init" "$here/build-guest.sh" "$kdeb" "$bdeb" -newer "$cache/initramfs.cpio.gz" 2>/dev/null)
	[ -z "$stale" ] && [ ! "$kdeb" -nt "$cache/vmlinuz" ] && { echo "guest: $kpkg, up to date"; exit 0; }
fi

# A private work folder and temporary names, so that two builds at once
# (a test and a bench run) never see each other's half-made files.
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kernel" "$work/bb" "$work/root"
dpkg-deb -x "$bdeb" "$work/bb"
# Only the kernel image and the modules we need leave the kernel package.
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work/kernel" \
	--wildcards './boot/vmlinuz-*' './lib/modules/*'
cp "$work"/kernel/boot/vmlinuz-* "$work/vmlinuz"
kver=$(ls "$work/kernel/lib/modules" | head -1)
mdir=$work/kernel/lib/modules/$kver
# modules.dep is made at install time (postinst), not shipped: make it.
[ -f "$mdir/modules.dep" ] || depmod -b "$work/kernel" "$kver"

# Resolve each wanted module and its dependencies through modules.dep, in
# load order (dependencies first).
want="virtio_pci virtio_blk virtio_net virtio_console virtio-rng"
order=$work/order
awk -v want="$want" '
function norm(p) { sub(".*/", "", p); sub("\\.ko.*", "", p); gsub("-", "_", p); return p }
function visit(path,   n, i, d) {
	if (path in done) return
	done[path] = 1
	n = split(deps[path], d, " ")
	for (i = 1; i <= n; i++) visit(d[i])
	print path
}
{ p = $1; sub(":$", "", p); deps[p] = ""; for (i = 2; i <= NF; i++) deps[p] = deps[p] " " $i; byname[norm(p)] = p }
END {
	n = split(want, w, " ")
	for (i = 1; i <= n; i++) {
		m = w[i]; gsub("-", "_", m)
		if (!(m in byname)) { print "build-guest: module " w[i] " not found" > "/dev/stderr"; exit 2 }
		visit(byname[m])
	}
}' "$mdir/modules.dep" >"$order"
nmod=$(wc -l <"$order")

r=$work/root
mkdir -p "$r/bin" "$r/sbin" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/etc" "$r/lib/modules" "$r/mnt" "$r/root"
cp "$work/bb/bin/busybox" "$r/bin/busybox"
for a in sh ash mount umount cat echo ls mkdir insmod modprobe poweroff reboot \
	sleep dd sha256sum md5sum grep sed awk head tail wc dmesg halt sync uname \
	setsid cttyhack hexdump od tr cut ps kill free df mknod ln rm cp mv date \
	true false test printf seq time ip ifconfig base64 nc wget; do
	ln -s busybox "$r/bin/$a"
done
i=0
while read -r path; do
	i=$((i + 1))
	n=$(basename "$path"); n=${n%.xz}
	case "$path" in
	*.xz) xz -dc "$mdir/$path" >"$r/lib/modules/$(printf %02d $i)-$n" ;;
	*) cp "$mdir/$path" "$r/lib/modules/$(printf %02d $i)-$n" ;;
	esac
done <"$order"
cp "$here/init" "$r/init"
chmod 755 "$r/init"
echo "$kver" >"$r/etc/kernel-release"

(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet) | gzip -9 >"$work/initramfs.cpio.gz"
mv "$work/vmlinuz" "$cache/vmlinuz"
mv "$work/initramfs.cpio.gz" "$cache/initramfs.cpio.gz"
echo "guest: $kpkg, $nmod modules"
