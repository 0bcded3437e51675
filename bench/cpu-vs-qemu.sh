#!/usr/bin/env bash
# lib/jit against QEMU's TCG on the same Debian test guest (stock kernel +
# busybox initramfs of tests/guest), one vCPU each:
#   1. boot: wall and CPU time (user+sys of the emulator process) to the
#      guest's marker line (VM-GUEST-READY) and to power-off;
#   2. compute: an in-guest `dd if=/dev/zero ... | sha256sum` of SHA_MIB MiB, timed by
#      the guest's own clock, as MiB/s.
# Prints both side by side and the ratios vm-run/QEMU (for times, > 1 means
# vm-run is slower).  Wall times on a shared machine are noisy: the CPU
# times are the figures to compare (the guest's own clock, which times
# sha256sum, runs on wall time).  BENCH_INTERP=1 adds a third column:
# vm-run with the translator off (VM_JIT_TRANSLATE=off, the interpreter
# alone).  BENCH_VMRUN_ARGS adds arguments to vm-run's command lines (e.g.
# "-machine kernel-decompress=guest", so that vm-run runs the bzImage's own
# decompressor as QEMU does).  Not run by make check.
#
#   bench/cpu-vs-qemu.sh     (VM_BUILD=o/rel, SHA_MIB=256, BENCH_TIMEOUT=1800,
#                             BENCH_INTERP=0, BENCH_VMRUN_ARGS=)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
B=${VM_BUILD:-$top/o/rel}
MIB=${SHA_MIB:-256}
TIMEOUT=${BENCH_TIMEOUT:-1800}
cache=${VM_CACHE:-$top/.cache/guest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -x "$B/bin/vm-run" ] || { echo "cpu-vs-qemu: build first (make)"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "cpu-vs-qemu: no qemu-system-x86_64, skipped"; exit 0; }
"$top/tests/guest/build-guest.sh" "$cache" >/dev/null || { echo "cpu-vs-qemu: no test guest, skipped"; exit 0; }
K=$cache/vmlinuz
I=$cache/initramfs.cpio.gz

# run LABEL GUESTCMD EMULATOR...: boots with vmtest.cmd=GUESTCMD; writes
# $work/LABEL.out (console), LABEL.marker (wall seconds to the marker),
# LABEL.total (wall seconds to exit), LABEL.cpu (user+sys seconds).
run() {
	local label=$1 cmd=$2 t0
	shift 2
	local append="console=ttyS0 quiet vmtest.cmdb64=$(printf '%s' "$cmd" | base64 -w0)"
	t0=$(date +%s.%N)
	/usr/bin/time -f '%U %S' -o "$work/$label.time" timeout "$TIMEOUT" "$@" -m 1G -nographic \
		-kernel "$K" -initrd "$I" -append "$append" </dev/null 2>/dev/null |
	while IFS= read -r line; do
		case $line in
		*VM-GUEST-READY*) echo "$(date +%s.%N) - $t0" | bc > "$work/$label.marker" ;;
		esac
		printf '%s\n' "$line"
	done > "$work/$label.out"
	echo "$(date +%s.%N) - $t0" | bc > "$work/$label.total"
	awk '{ print $1 + $2 }' "$work/$label.time" 2>/dev/null | tail -1 > "$work/$label.cpu"
}

val() { cat "$work/$1" 2>/dev/null || echo "?"; }
ratio() { echo "$1 $2" | awk '$1 + 0 > 0 && $2 + 0 > 0 { printf "%.2f", $1 / $2; exit } { printf "?" }'; }

QEMU=(qemu-system-x86_64 -accel tcg -no-reboot)
read -r -a extra <<< "${BENCH_VMRUN_ARGS:-}"
VMRUN=("$B/bin/vm-run" -accel jit -no-reboot "${extra[@]}")
INTERP=(env VM_JIT_TRANSLATE=off "$B/bin/vm-run" -accel jit -no-reboot "${extra[@]}")
labels="qemu jit"
[ "${BENCH_INTERP:-0}" = 1 ] && labels="qemu jit interp"

echo "== boot to the marker (vmtest.cmd=true)"
run qemu-boot true "${QEMU[@]}"
run jit-boot true "${VMRUN[@]}"
case $labels in *interp*) run interp-boot true "${INTERP[@]}" ;; esac
printf '%-10s %12s %12s %12s\n' "" "marker s" "poweroff s" "CPU s"
for l in $labels; do
	printf '%-10s %12.2f %12.2f %12.2f\n' "$l" "$(val $l-boot.marker)" "$(val $l-boot.total)" \
		"$(val $l-boot.cpu)" 2>/dev/null || printf '%-10s failed\n' "$l"
done
echo "ratio jit/qemu: marker $(ratio "$(val jit-boot.marker)" "$(val qemu-boot.marker)")," \
	"CPU $(ratio "$(val jit-boot.cpu)" "$(val qemu-boot.cpu)")"

echo "== in-guest sha256sum of $MIB MiB"
# busybox: no size suffixes for head, no %N for date; /proc/uptime has
# centiseconds, plenty for a run of seconds.
sha="s=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=1048576 count=${MIB} 2>/dev/null | sha256sum; e=\$(cut -d' ' -f1 /proc/uptime); echo SHA-TIME \$s \$e"
run qemu-sha "$sha" "${QEMU[@]}"
run jit-sha "$sha" "${VMRUN[@]}"
case $labels in *interp*) run interp-sha "$sha" "${INTERP[@]}" ;; esac
for l in $labels; do
	awk -v mib="$MIB" '/^SHA-TIME/ { t = $3 - $2; if (t > 0) printf "%.2f", mib / t }' \
		"$work/$l-sha.out" > "$work/$l.mibs"
	grep -q ' -.\?$' "$work/$l-sha.out" || echo "$l: no sha256sum output"
done
printf '%-10s %12s %12s %12s\n' "" "MiB/s" "seconds" "CPU s"
for l in $labels; do
	printf '%-10s %12s %12s %12s\n' "$l" "$(val $l.mibs)" \
		"$(awk '/^SHA-TIME/ { printf "%.1f", $3 - $2 }' "$work/$l-sha.out")" "$(val $l-sha.cpu)"
done
echo "ratio jit/qemu throughput: $(ratio "$(val jit.mibs)" "$(val qemu.mibs)")"
