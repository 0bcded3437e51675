/*
 * lib/hw's local APIC timer in periodic mode under a guest that is late
 * taking its ticks (a vCPU thread the host did not run, interrupts off):
 * ticks are delayed, not lost, as the 8254's (test-hw-pit.c).  The timer
 * runs at 100 Hz for 400 ms while nobody takes its vector; then ticks are
 * taken as fast as they come until as many came as periods went by.
 * Merging them would stay about 40 behind; the delay hands over the
 * backlog too.  Then the pace is 100 Hz again, and a masked timer saves
 * nothing up.
 */
#include <stdlib.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"
#include "test-hw-ticks.h"
#include "unit.h"

#define APIC 0xfee00000ull
#define VEC 0x40

static void nop_write(void *o, const uint8_t *b, size_t n) { }
static const struct hw_char_ops nop_char = { nop_write };

static void reg(struct machine *m, unsigned off, uint32_t v)
{
	hw_bus_mmio_write(m, 0, APIC + off, v, 4);
}

/* Take every timer interrupt the APIC offers for ms milliseconds. */
static int take_ticks(struct machine *m, int ms)
{
	struct hw_apic *a = m->vcpu[0].apic;
	int64_t end = now_ms() + ms;
	int n = 0;

	while (now_ms() < end) {
		bool got = false;

		pthread_mutex_lock(&m->lock);
		if (apic_has_intr(a))
			got = apic_ack(a) == VEC;
		pthread_mutex_unlock(&m->lock);
		if (got) {
			n++;
			reg(m, 0xb0, 0);		/* EOI */
		} else {
			usleep(20);
		}
	}
	return n;
}

int main(void)
{
	struct hw_config c = { .ram_size = 16u << 20, .smp = 1, .accel = "jit" };
	struct machine *m;
	bool pending;

	c.serial[0] = (struct hw_char_backend){ &nop_char, NULL };
	if (access("/usr/share/seabios/bios-256k.bin", R_OK) < 0)
		c.kernel = getenv("HW_TEST_KERNEL") ? getenv("HW_TEST_KERNEL")
						    : "o/rel/tests/guest/hw-hello.elf";
	if (machine_new(&c, &m) < 0) {
		CHECK(0, "machine_new: %s", err_msg());
		return unit_done();
	}
	CHECK(hw_timers_start(m) == 0, "timer thread");
	reg(m, 0xf0, 0x1ff);			/* SVR: enabled, spurious 0xff */
	reg(m, 0x3e0, 0xb);			/* divide by 1: 1 GHz */
	reg(m, 0x320, 1u << 17 | VEC);		/* LVT timer: periodic */
	reg(m, 0x380, 10000000);		/* 10 ms */
	int64_t start = now_ms(), e;
	usleep(400000);
	pthread_mutex_lock(&m->lock);
	pending = apic_irr_test(m->vcpu[0].apic, VEC);
	pthread_mutex_unlock(&m->lock);
	CHECK(pending, "an untaken tick waits in IRR");
	int n = take_until_caught_up(m, take_ticks, start, 10, 0, &e);
	/* (a few may still be on their way) */
	CHECK(n >= e - 5, "the late ticks are handed over, not merged (%d in %lld periods)", n,
	      (long long)e);
	int more = take_ticks(m, 300);
	CHECK(more >= 10 && more <= 45, "then the 100 Hz pace again (%d in 300 ms)", more);
	/*
	 * A loaded host can leave late ticks still held here: hand them all
	 * over first, so that the count after the unmask is the unmask's own.
	 */
	take_until_caught_up(m, take_ticks, start, 10, n + more, &e);
	reg(m, 0x320, 1u << 17 | 1u << 16 | VEC);	/* masked */
	usleep(200000);
	reg(m, 0x320, 1u << 17 | VEC);
	CHECK(take_ticks(m, 100) <= 15, "ticks while the timer was masked are not saved up");
	hw_timers_stop(m);
	machine_free(m);
	return unit_done();
}
