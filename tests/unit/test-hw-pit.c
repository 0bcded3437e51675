/*
 * lib/hw's 8254 channel 0 under a guest that is late taking its ticks
 * (a vCPU thread the host did not run): ticks are delayed, not lost.
 * With the 8259 set up and IRQ 0 unmasked, the timer runs 100 Hz for
 * 400 ms while nobody acknowledges; then ticks are taken as fast as they
 * come until as many came as periods went by.  Coalescing would stay
 * about 40 behind; the delay policy hands over the backlog too.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"
#include "test-hw-ticks.h"
#include "unit.h"

static void nop_write(void *o, const uint8_t *b, size_t n) { }
static const struct hw_char_ops nop_char = { nop_write };

static void out8(struct machine *m, uint16_t p, uint8_t v) { hw_bus_pio_out(m, p, v, 1); }

/* Take every IRQ 0 the PIC offers for ms milliseconds; how many. */
static int take_ticks(struct machine *m, int ms)
{
	int64_t end = now_ms() + ms;
	int n = 0;

	while (now_ms() < end) {
		bool got = false;

		pthread_mutex_lock(&m->lock);
		if (pic_irq_pending(m->pic, 0)) {
			got = pic_ack(m->pic) == 0x08;
			n += got;
		}
		pthread_mutex_unlock(&m->lock);
		if (got)
			out8(m, 0x20, 0x20);		/* non-specific EOI */
		else
			usleep(20);
	}
	return n;
}

int main(void)
{
	struct hw_config c = { .ram_size = 16u << 20, .smp = 1, .accel = "jit" };
	struct machine *m;

	c.serial[0] = (struct hw_char_backend){ &nop_char, NULL };
	if (access("/usr/share/seabios/bios-256k.bin", R_OK) < 0)
		c.kernel = getenv("HW_TEST_KERNEL") ? getenv("HW_TEST_KERNEL")
						    : "o/rel/tests/guest/hw-hello.elf";
	if (machine_new(&c, &m) < 0) {
		CHECK(0, "machine_new: %s", err_msg());
		return unit_done();
	}
	/* 8259 master: edge, vector base 8, IRQ 0 alone unmasked */
	out8(m, 0x20, 0x11), out8(m, 0x21, 0x08), out8(m, 0x21, 0x04), out8(m, 0x21, 0x01);
	out8(m, 0x21, 0xfe);
	CHECK(hw_timers_start(m) == 0, "timer thread");
	/* channel 0, lobyte/hibyte, mode 2, 11932 ticks: 10 ms */
	out8(m, 0x43, 0x34), out8(m, 0x40, 0x9c), out8(m, 0x40, 0x2e);
	int64_t start = now_ms(), e;
	usleep(400000);
	pthread_mutex_lock(&m->lock);
	CHECK(pic_irq_pending(m->pic, 0), "an untaken tick waits in the PIC's IRR");
	pthread_mutex_unlock(&m->lock);
	int n = take_until_caught_up(m, take_ticks, start, 10, 0, &e);
	/* (a few may still be on their way) */
	CHECK(n >= e - 5, "the late ticks are handed over, not coalesced (%d in %lld periods)", n,
	      (long long)e);
	int more = take_ticks(m, 300);
	CHECK(more >= 10 && more <= 45, "then the 100 Hz pace again (%d in 300 ms)", more);
	/*
	 * A loaded host can leave late ticks still held here: hand them all
	 * over first, so that the count after the unmask is the unmask's own.
	 */
	take_until_caught_up(m, take_ticks, start, 10, n + more, &e);
	/* masked, a pending tick does not hold the timer back */
	out8(m, 0x21, 0xff);
	usleep(200000);
	out8(m, 0x21, 0xfe);
	CHECK(take_ticks(m, 100) <= 15, "ticks while IRQ 0 was masked are not saved up");
	hw_timers_stop(m);
	machine_free(m);
	return unit_done();
}
