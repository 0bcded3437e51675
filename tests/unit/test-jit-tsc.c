/*
 * lib/jit's TSC rate for CPUID leaves 15h and 16h (tsc.c): the host's
 * rate as measured here agrees with an independent longer measure, and
 * the TSC/crystal fraction leaf 15h gives survives Linux's 32-bit
 * arithmetic (crystal kHz * numerator / denominator in unsigned int)
 * within a few ppm for any rate; leaf 0 reaches 16h.
 */
#include <cpuid.h>
#include <stdlib.h>
#include <time.h>

#include "jit/internal.h"
#include "unit.h"

/* A (TSC, ns) pair: the clock read most tightly bracketed by two TSC
 * reads of 20 tries (a preempted try is wide). */
static void pair(uint64_t *tsc, int64_t *ns)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 20; i++) {
		struct timespec ts;
		uint64_t a = __builtin_ia32_rdtsc(), b;

		clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
		b = __builtin_ia32_rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a / 2 + b / 2;
			*ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		}
	}
}

/* What Linux 6.1's native_calibrate_tsc() makes of leaf 15h, in kHz. */
static uint64_t linux_khz(uint32_t den, uint32_t num, uint32_t crystal_hz)
{
	unsigned int crystal_khz = crystal_hz / 1000;

	return crystal_khz * num / den;
}

int main(void)
{
	unsigned a, b, c, d;
	uint32_t num = 0, den = 0, r[4];
	int none = 0, big = 0;
	double worst = 0;
	bool ok;

	srand(7);
	for (int i = 0; i < 2000; i++) {
		uint64_t khz = 500000 + (uint64_t)rand() % 5500000, got;
		double ppm;

		if (!jit_tsc_fraction(khz, 1000000, &num, &den)) {
			none++;
			continue;
		}
		big += (uint64_t)num * 1000000 > UINT32_MAX;
		got = linux_khz(den, num, 1000000000);
		ppm = (got > khz ? got - khz : khz - got) * 1e6 / (double)khz;
		if (ppm > worst)
			worst = ppm;
	}
	CHECK(big == 0 && worst <= 20 && none <= 20, "leaf 15h fractions for 0.5-6 GHz within 20 ppm "
	      "after 32-bit math (worst %.2f ppm, %d rates without one)", worst, none);
	ok = jit_tsc_fraction(2499982, 1000000, &num, &den);
	CHECK(ok && num == 5 && den == 2, "2499.982 MHz is 5/2 of 1 GHz (%u/%u)", num, den);
	CHECK(!jit_tsc_fraction(2999724, 1000000, &num, &den),
	      "none for 2999.724 MHz (3/1 is 92 ppm off, nothing closer fits)");
	CHECK(!jit_tsc_fraction(0, 1000000, &num, &den), "no rate, no fraction");

	if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8))) {
		printf("ok %d - # SKIP the host's TSC is not invariant\n", ++unit_n);
	} else {
		uint64_t t0, t1, khz;
		int64_t n0, n1;
		struct timespec gap = { 0, 200000000 };
		double ppm;

		pair(&t0, &n0);
		khz = jit_tsc_khz();
		nanosleep(&gap, NULL);
		pair(&t1, &n1);
		ppm = ((double)(t1 - t0) * 1e6 / (double)(n1 - n0) - (double)khz) * 1e6 / (double)khz;
		CHECK(khz && ppm > -50 && ppm < 50, "the measured rate (%llu kHz) agrees with a "
		      "200 ms measure (%.1f ppm)", (unsigned long long)khz, ppm);
	}
	jit_cpuid(NULL, 0, 0, r);
	CHECK(r[0] >= 0x16, "leaf 0 reaches 16h (%#x)", r[0]);
	jit_cpuid(NULL, 0x15, 0, r);
	CHECK(!jit_tsc_khz() || (r[0] && r[1] && r[2] == 1000000000),
	      "leaf 15h: a 1 GHz crystal and a ratio (%u/%u)", r[1], r[0]);
	return unit_done();
}
