# A userland stress script for the CPU: busybox applets that exercise
# integer, string, SSE/x87 floating point and signal paths.  Run by the
# test guest (tests/bats/vm-run-cpu.bats) and, for the expected output, by
# the same busybox-static binary on the host: every line starting with
# "S: " must be the same.  Deterministic by design: no times, no PIDs.
# W is the scratch folder.
W=${W:-/tmp/stress}
mkdir -p "$W" && cd "$W" || exit 1
out() { echo "S: $*"; }

# Data: an LCG in awk (integer-valued doubles), then text of many shapes.
awk 'BEGIN { x = 12345; for (i = 0; i < 6000; i++) {
	x = (x * 1103515245 + 12345) % 2147483648
	printf "%d %s %.6f\n", x % 100000 - 50000, substr("abcdefghijklmnop", x % 11 + 1, 5), x / 7919 } }' >data.txt
seq 1 3000 >>data.txt
out lines "$(wc -l <data.txt)"
for h in md5sum sha1sum sha256sum sha512sum sha3sum; do
	out "$h" "$($h <data.txt | cut -d' ' -f1)"
done
out crc32 "$(crc32 data.txt)"

# Compressors: the compressed bytes and the round trip.
out gzip "$(gzip -9 -c <data.txt | sha256sum | cut -c1-16)"
out gzip-rt "$(gzip -1 -c <data.txt | gunzip | sha256sum | cut -c1-16)"
out bzip2 "$(bzip2 -9 -c <data.txt | sha256sum | cut -c1-16)"
out bzip2-rt "$(bzip2 -c <data.txt | bunzip2 | sha256sum | cut -c1-16)"
if command -v xz >/dev/null && xz -c </dev/null >/dev/null 2>&1; then
	out xz-rt "$(xz -c <data.txt | unxz | sha256sum | cut -c1-16)"
fi
out lzop-rt "$(lzop -c <data.txt | lzop -d -c | sha256sum | cut -c1-16)"

# Text processing.
out sort-n "$(sort -n data.txt | sha256sum | cut -c1-16)"
out sort-k "$(sort -k2,2 -k1,1nr data.txt | sha256sum | cut -c1-16)"
out uniq "$(cut -d' ' -f2 data.txt | sort | uniq -c | sort -rn | head -3 | tr -s ' ' | tr '\n' ,)"
out sed "$(sed -n 's/^\(-\?[0-9]*\) \([a-p]*\)/\2:\1/p' data.txt | sha256sum | cut -c1-16)"
out grep "$(grep -cE '^-?[0-9]{4} [aeiou]' data.txt)"
out tr "$(tr 'a-z0-9' 'n-za-m5-90-4' <data.txt | md5sum | cut -c1-16)"
out od "$(head -c 64 data.txt | od -A x -t x8 | sha1sum | cut -c1-16)"
out rev "$(rev data.txt | tac | sha1sum | cut -c1-16)"
out factor "$(factor 600851475143 4294967297 1000000007 18446744073709551615 | tr '\n' ' ')"

# Floating point: awk (libc printf of doubles), seq, dc, bc.
# (Debian's busybox awk has no math library: arithmetic and printf only.)
out awk-fp "$(awk 'BEGIN { x = 1; for (i = 1; i <= 60; i++) {
	x = x * 1.37 - 1 / (i + 0.25); y = x / 3 - i * 0.1; s = s sprintf("%.17g %.10e %g %.6f|", x, y / (i * 7.1),
		x * y, -y / 1e7) } print s }' | md5sum | cut -c1-32)"
out awk-sum "$(awk '{ s += $3 * $1; n += $1 / 3 } END { printf "%.9e %.9e", s, n }' data.txt)"
out awk-int "$(awk 'BEGIN { printf "%d %d %d %x %d", 9007199254740993, -7 % 3, int(-7.9), 3735928559, 1e15 + 0.5 }')"
out seq-fp "$(seq -w 0 0.125 2 | tr '\n' ' ')"
out dc "$(echo '20k 2 v p 3 1 / 7 / p 2 128 ^ p 17 3 % p' | dc | tr -d '\\\n' | tr '\n' ' ')"
out bc "$(echo 'scale=30; 4*a(1); e(1); l(10); sqrt(2)*sqrt(3); 7^77 % 1000003' | bc -l | tr -d '\\\n' | tr '\n' ' ')"
out printf "$(printf '%.3f %e %x %o %5.2s|' 3.14159 -0.000123 255 8 hello)"
out shell-arith "$(echo $(( (1 << 62) / 3 * -5 % 1000003 )) $(( 0x7fffffffffffffff + 1 )) $(( -9 / 4 )) $(( 7 ** 20 )))"
out expr "$(expr 123456789 \* 987654321 % 1000000007) $(expr length 'abcdefg') $(expr substr hello 2 3)"

# Signals: a trap run many times, signals arriving while the shell
# computes (the kernel saves and restores the FPU/SSE state around each
# handler), alarm-style timeouts.
n=0
trap 'n=$((n + 1))' USR1
i=0
while [ $i -lt 50 ]; do kill -USR1 $$; i=$((i + 1)); done
out trap-count "$n"
( for i in 1 2 3 4 5 6 7 8 9 10; do kill -USR1 $$ 2>/dev/null; usleep 20000; done ) &
bp=$!
acc=0; i=0
while [ $i -lt 3000 ]; do acc=$(( (acc * 31 + i) % 1000000007 )); i=$((i + 1)); done
while kill -0 $bp 2>/dev/null; do wait $bp; done	# a trapped signal ends a wait early
trap - USR1
out trap-async "$acc $([ $n -gt 50 ] && echo some-signals)"
awk 'BEGIN { for (i = 0; i < 100000; i++) s += i / 7 * 1.5; printf "%.6f", s }' >awk.out &
p=$!
for i in 1 2 3 4 5; do kill -STOP $p 2>/dev/null; usleep 10000; kill -CONT $p 2>/dev/null; usleep 10000; done
wait $p; out awk-stopped "rc=$? $(cat awk.out)"
timeout 1 sleep 5; out timeout "rc=$?"
timeout 5 sleep 0.2; out timeout-ok "rc=$?"
sleep 0.3; out sleep "rc=$?"
sh -c 'trap "exit 3" ALRM; kill -ALRM $$; sleep 2'; out sh-trap "rc=$?"
sh -c 'kill -TERM $$; echo not-reached'; out sigterm "rc=$?"
sh -c 'kill -SEGV $$'; out sigsegv "rc=$?"
# Debian's busybox 1.35 is built without wget's -T: it stores the option
# through a NULL pointer and dies of SIGSEGV, natively as well.
wget -T 1 http://127.0.0.1:1/ 2>/dev/null; out wget-T "rc=$?"

# Many short processes: fork/exec/exit.
i=0; s=0
while [ $i -lt 60 ]; do s=$((s + 0x$(echo $i | md5sum | cut -c1-2))); i=$((i + 1)); done
out fork "$s"
out xargs "$(seq 1 200 | xargs -n 7 echo | awk '{ s += NF * $1 } END { print s }')"
out done
