#!/usr/bin/env bats
# -kernel with a bzImage: vm-run unpacks the kernel on the host (xz, gzip,
# zstd), applies KASLR with the kernel's relocation table and enters
# startup_64 in long mode; -machine kernel-decompress=guest keeps the
# bzImage's own decompressor.  Each boot is the Debian test guest.

load helper
load ../guest/guest

# boot OPTS... -- GUESTCMD: boots the test guest with -d boot and the
# command; fails (no skip) when the marker does not come.
boot() {
	local opts=() kernel=$GUEST_KERNEL append="console=ttyS0 quiet"
	while [ "$1" != -- ]; do opts+=("$1"); shift; done
	shift
	[ -n "${KERNEL:-}" ] && kernel=$KERNEL
	[ -n "${APPEND:-}" ] && append="$append $APPEND"
	run timeout 240 vm-run -accel jit -m 512 -no-reboot -nographic -d boot "${opts[@]}" \
		-kernel "$kernel" -initrd "$GUEST_INITRD" \
		-append "$append vmtest.cmdb64=$(printf '%s' "$1" | base64 -w0)" </dev/null
	echo "$output"
	[[ "$output" == *VM-GUEST-READY* ]]
	[[ "$output" == *VM-GUEST-STATUS=0* ]]
}

# repack FORMAT OUT: the test kernel with its payload inflated and packed
# again with FORMAT (gzip or zstd) plus the 4-byte size the kernel's build
# appends; only the host unpacker can boot it (the stub knows only xz).
repack() {
	python3 - "$GUEST_KERNEL" "$1" "$2" <<'EOF'
import lzma, struct, subprocess, sys
img = bytearray(open(sys.argv[1], 'rb').read())
setup = (img[0x1f1] + 1) * 512
off, length = struct.unpack_from('<II', img, 0x248)
raw = lzma.LZMADecompressor().decompress(bytes(img[setup + off:setup + off + length]))
cmd = {'gzip': ['gzip', '-1', '-n', '-c'], 'zstd': ['zstd', '-1', '-q', '-c']}[sys.argv[2]]
packed = subprocess.run(cmd, input=raw, stdout=subprocess.PIPE, check=True).stdout
if sys.argv[2] == 'zstd':
    packed += struct.pack('<I', len(raw))
struct.pack_into('<I', img, 0x24c, len(packed))
open(sys.argv[3], 'wb').write(bytes(img[:setup + off]) + packed)
EOF
}

@test "a bzImage is unpacked on the host and its kernel runs at the KASLR shift it was relocated to" {
	guest_require
	boot -- 'grep " _text$" /proc/kallsyms'
	[[ "$output" =~ "kernel unpacked on the host: xz, "[0-9]+" bytes, at 0x1000000, KASLR on, virtual shift 0x"([0-9a-f]+) ]]
	local shift=${BASH_REMATCH[1]}
	local want
	want=$(printf '%x' $((0xffffffff81000000 + 0x$shift)))
	[[ "$output" == *"$want T _text"* ]]
	# what the kernel itself saw: the flag that it was randomised
	[[ "$output" != *"KASLR disabled"* ]]
}

@test "nokaslr keeps the kernel at its link address" {
	guest_require
	APPEND=nokaslr boot -- 'grep " _text$" /proc/kallsyms'
	[[ "$output" == *"KASLR off, virtual shift 0x0"* ]]
	[[ "$output" == *"ffffffff81000000 T _text"* ]]
}

@test "-machine kernel-decompress=guest runs the bzImage's own decompressor" {
	guest_require
	boot -machine kernel-decompress=guest -- 'grep -c processor /proc/cpuinfo'
	[[ "$output" != *"unpacked on the host"* ]]
	[[ "$output" == *"Linux boot protocol 2.15"* ]]
}

@test "gzip and zstd payloads unpack on the host" {
	guest_require
	require zstd
	repack gzip "$T/vmlinuz-gzip"
	repack zstd "$T/vmlinuz-zstd"
	KERNEL=$T/vmlinuz-gzip boot -- true
	[[ "$output" == *"kernel unpacked on the host: gzip,"* ]]
	KERNEL=$T/vmlinuz-zstd boot -- true
	[[ "$output" == *"kernel unpacked on the host: zstd,"* ]]
}

@test "a corrupt payload is one error line, not a hung guest" {
	guest_require
	cp "$GUEST_KERNEL" "$T/bad"
	# some bytes in the middle of the xz stream
	printf 'garbage-garbage-garbage' | dd of="$T/bad" bs=1 seek=4000000 conv=notrunc 2>/dev/null
	run --separate-stderr timeout 30 vm-run -accel jit -m 512 -nographic -kernel "$T/bad" </dev/null
	[ "$status" -eq 1 ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ "$stderr" == "vm-run: $T/bad: the kernel's xz payload is corrupt" ]]
}

@test "-machine kernel-decompress takes host or guest" {
	run --separate-stderr vm-run -machine kernel-decompress=maybe -kernel /dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: -machine: kernel-decompress=maybe: want host or guest" ]
}

@test "the inflated kernel is kept in the cache and the next boot reads it back" {
	guest_require
	XDG_CACHE_HOME=$T/cache boot -- true
	[[ "$output" != *"read from the cache"* ]]
	[[ "$output" =~ "kernel unpacked on the host: xz, "([0-9]+)" bytes" ]]
	local size=${BASH_REMATCH[1]} entry
	entry=$(echo "$T"/cache/vm-run/kernels/v1-*.zst)
	[ -f "$entry" ]
	[ "$(zstd -dc "$entry" | wc -c)" -eq "$size" ]
	XDG_CACHE_HOME=$T/cache boot -- 'grep -c processor /proc/cpuinfo'
	[[ "$output" == *"kernel payload read from the cache $entry"* ]]
	[[ "$output" == *"kernel unpacked on the host: xz, $size bytes"* ]]
}

@test "a damaged or foreign cache entry is inflated again and written anew" {
	guest_require
	XDG_CACHE_HOME=$T/cache boot -- true
	local entry
	entry=$(echo "$T"/cache/vm-run/kernels/v1-*.zst)
	printf 'garbage-garbage-garbage' | dd of="$entry" bs=1 seek=5000000 conv=notrunc 2>/dev/null
	! zstd -tq "$entry"
	XDG_CACHE_HOME=$T/cache boot -- true
	[[ "$output" == *"$entry: not a good cache entry"* ]]
	[[ "$output" != *"read from the cache"* ]]
	zstd -tq "$entry"
	# a well-formed entry whose content is no kernel
	head -c 100000 /dev/urandom >"$T/junk"
	zstd -q -f "$T/junk" -o "$entry"
	XDG_CACHE_HOME=$T/cache boot -- true
	[[ "$output" == *"the cached kernel does not load"* ]]
	[ "$(zstd -dc "$entry" | wc -c)" -gt 1000000 ]
}

@test "-machine kernel-cache=off neither reads nor writes the cache" {
	guest_require
	XDG_CACHE_HOME=$T/cache boot -machine kernel-cache=off -- true
	[[ "$output" == *"kernel unpacked on the host: xz,"* ]]
	[ ! -e "$T/cache/vm-run" ]
	run --separate-stderr vm-run -machine kernel-cache=maybe -kernel /dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "vm-run: -machine: kernel-cache=maybe: want on or off" ]
}
