/*
 * The TSC's frequency, for CPUID leaves 15h and 16h.
 *
 * The guest's TSC is the host's (RDTSC plus an offset, msr.c), so its
 * rate is the host's invariant TSC rate.  Telling the guest that rate
 * (leaf 15h: the core crystal clock and the TSC/crystal ratio) is what
 * modern processors do, and it spares the guest its calibrations: Linux
 * otherwise counts TSC ticks against the 8254 PIT or the ACPI PM timer
 * for tens of milliseconds, and the local APIC timer against the timer
 * tick for 100 ms of jiffies, which under an emulated CPU take much
 * longer and come out as noisy as the emulation is slow.  Leaf 15h's
 * crystal is also the local APIC timer's input clock: lib/hw's APIC timer
 * counts nanoseconds, so the crystal is 1 GHz and Linux takes the APIC
 * timer's rate from it without calibrating.
 *
 * The rate is measured once per process, in a thread the first vCPU
 * starts (a guest that asks sooner waits for it): pairs of (TSC, CLOCK_MONOTONIC_RAW) 20 ms apart, each pair the one of
 * several whose two TSC reads bracket the clock read most tightly, give
 * it within a few parts per million.  0 (leaf 15h left empty, the guest
 * calibrates as before) when the host's TSC is not invariant or the
 * measure is implausible.  Leaf 15h's ratio has to keep Linux's 32-bit
 * product of crystal kHz and numerator from overflowing: with a 1 GHz
 * crystal the numerator stays under 4295, so the ratio is the closest
 * fraction of that size.  That is within a few ppm for most rates (7 ppm
 * for this machine's 2499.982 MHz, which 5/2 gives) but up to 200 ppm
 * just beside a simple fraction; beyond MAX_PPM leaf 15h stays empty and
 * the guest calibrates (about 1 rate in 400).
 */
#include <cpuid.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "jit/internal.h"

#define GAP_NS 20000000ll
#define MAX_PPM 20

static uint64_t tsc_khz;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* One (TSC, ns) pair, the TSC taken as the middle of the tightest of a
 * few brackets around the clock read. */
static void sample(uint64_t *tsc, int64_t *ns)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 8; i++) {
		struct timespec ts;
		uint64_t a = __builtin_ia32_rdtsc(), b;

		clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
		b = __builtin_ia32_rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		}
	}
}

static void measure(void)
{
	unsigned a, b, c, d;
	uint64_t t0, t1;
	int64_t n0, n1;
	struct timespec gap = { 0, GAP_NS };
	double khz;

	if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
		return;		/* no invariant TSC on the host */
	sample(&t0, &n0);
	nanosleep(&gap, NULL);
	sample(&t1, &n1);
	if (n1 - n0 < GAP_NS / 2 || t1 <= t0)
		return;
	khz = (double)(t1 - t0) * 1e6 / (double)(n1 - n0);
	if (khz > 100000 && khz < 20000000)	/* 100 MHz .. 20 GHz */
		tsc_khz = (uint64_t)(khz + 0.5);
}

uint64_t jit_tsc_khz(void)
{
	pthread_once(&once, measure);
	return tsc_khz;
}

/*
 * Leaf 15h's TSC/crystal ratio num/den for a crystal of crystal_khz:
 * the one closest to the TSC's rate among those whose product with the
 * crystal fits 32 bits, as Linux 6.1 computes crystal_khz * num / den in
 * unsigned int.  False when the rate is unknown or no such fraction is
 * within MAX_PPM of it (then the guest calibrates).
 */
bool jit_tsc_ratio(uint32_t crystal_khz, uint32_t *num, uint32_t *den)
{
	return jit_tsc_fraction(jit_tsc_khz(), crystal_khz, num, den);
}

/* The same for a TSC of khz. */
bool jit_tsc_fraction(uint64_t khz, uint32_t crystal_khz, uint32_t *num, uint32_t *den)
{
	uint64_t best = UINT64_MAX;
	uint32_t max = UINT32_MAX / crystal_khz;

	if (!khz)
		return false;
	for (uint32_t d = 1; d <= max; d++) {
		uint64_t n = (khz * d + crystal_khz / 2) / crystal_khz, got, err;

		if (n == 0 || n > max)
			break;
		got = crystal_khz * n / d;
		err = got > khz ? got - khz : khz - got;
		if (err < best) {
			best = err;
			*num = (uint32_t)n;
			*den = d;
		}
	}
	return best * 1000000 <= khz * MAX_PPM;
}

static void *prefetch(void *arg)
{
	(void)arg;
	jit_tsc_khz();
	return NULL;
}

void jit_tsc_start(void)
{
	static atomic_flag started = ATOMIC_FLAG_INIT;
	pthread_t t;

	if (!atomic_flag_test_and_set(&started) && pthread_create(&t, NULL, prefetch, NULL) == 0)
		pthread_detach(t);
}
