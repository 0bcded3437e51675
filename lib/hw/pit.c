/*
 * The Intel 8254 programmable interval timer (ports 0x40-0x43) and the
 * PC's port 0x61 (channel 2 gate, speaker, refresh toggle).  Follows the
 * 8254 data sheet: counters run at 1.193182 MHz in real time (computed
 * from the host clock, not ticked), modes 0-5, LSB/MSB/word access,
 * counter and read-back latches.  Channel 0's output drives ISA IRQ 0.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define PIT_HZ 1193182ll

struct pit_chan {
	uint32_t count;		/* reload value, 1..65536 */
	uint8_t mode, rw, bcd, gate;
	uint8_t wstate, rstate;	/* LSB/MSB flip-flops */
	uint8_t latched, status_latched, status, wlsb;
	uint16_t latch;
	int64_t start;		/* ns when counting began */
	bool null_count;
};

struct hw_pit {
	struct machine *m;
	struct pit_chan ch[3];
	uint8_t port61;
	struct hw_timer timer;
	uint64_t irq_ticks;	/* channel 0 periods already signalled */
	bool no_hold;		/* ticks were never taken: coalesce, do not hold */
};

/* Lost ticks are delayed, not dropped (the "delay" policy of QEMU's and
 * KVM's PIT): while the last tick still waits in the PIC or a local APIC
 * (a vCPU thread the host did not run, interrupts off), the next is held
 * and retried, so the guest gets every tick, late, and jiffies keep up;
 * Linux's boot-time check that the timer works counts them.  After
 * PIT_MAX_HOLD periods nobody took, ticks are coalesced again. */
#define PIT_RETRY_NS 50000
#define PIT_MAX_HOLD 100

static int64_t ticks_since(const struct pit_chan *c, int64_t now)
{
	int64_t d = now - c->start;

	return d <= 0 ? 0 : (int64_t)((__int128)d * PIT_HZ / 1000000000);
}

static uint16_t chan_value(const struct pit_chan *c, int64_t now)
{
	int64_t d = ticks_since(c, now);

	switch (c->mode) {
	case 2:
		return c->count - d % c->count;
	case 3:
		return (c->count - (2 * d) % c->count) & 0xfffe;
	default:
		return (c->count - d) & 0xffff;
	}
}

static bool chan_out(const struct pit_chan *c, int64_t now)
{
	int64_t d = ticks_since(c, now);

	switch (c->mode) {
	case 0: case 1:
		return d >= c->count;
	case 2:
		return d % c->count != c->count - 1;
	case 3:
		return d % c->count < (c->count + 1) / 2;
	default:
		return d != c->count;
	}
}

/* Program channel 0's interrupt timer for the next output edge. */
static void irq_arm(struct hw_pit *p)
{
	struct pit_chan *c = &p->ch[0];
	int64_t k;

	hw_timer_del(p->m, &p->timer);
	if (c->null_count)
		return;
	if (c->mode == 2 || c->mode == 3) {
		k = p->irq_ticks + c->count;
	} else if (c->mode == 0 || c->mode == 4) {
		if (p->irq_ticks)
			return;
		k = c->count;
	} else {
		return;
	}
	hw_timer_mod(p->m, &p->timer, c->start + (int64_t)((__int128)k * 1000000000 / PIT_HZ));
}

static void pit_fire(void *opaque)
{
	struct hw_pit *p = opaque;
	struct pit_chan *c = &p->ch[0];
	int64_t now = hw_clock_ns(), d = ticks_since(c, now);
	bool periodic = c->mode == 2 || c->mode == 3;

	if (periodic && p->irq_ticks && hw_irq_pending(p->m, 0)) {
		if (!p->no_hold && d <= (int64_t)p->irq_ticks + PIT_MAX_HOLD * (int64_t)c->count) {
			hw_timer_mod(p->m, &p->timer, now + PIT_RETRY_NS);
			return;
		}
		p->no_hold = true;
	} else {
		p->no_hold = false;
	}
	hw_pulse_irq(p->m, 0);
	if (periodic) {
		p->irq_ticks += c->count;
		if (d > (int64_t)p->irq_ticks + PIT_MAX_HOLD * (int64_t)c->count)	/* host stalled */
			p->irq_ticks = d - d % c->count;
	} else {
		p->irq_ticks = 1;
	}
	irq_arm(p);
}

static void chan_load(struct hw_pit *p, int i, uint32_t v)
{
	struct pit_chan *c = &p->ch[i];

	c->count = v ? v : 65536;
	c->start = hw_clock_ns();
	c->null_count = false;
	if (i == 0) {
		p->irq_ticks = 0;
		irq_arm(p);
	}
}

static void control(struct hw_pit *p, uint8_t v, int64_t now)
{
	int sel = v >> 6;

	if (sel == 3) {		/* read-back */
		for (int i = 0; i < 3; i++) {
			struct pit_chan *c = &p->ch[i];
			if (!(v & (2 << i)))
				continue;
			if (!(v & 0x20) && !c->latched) {
				c->latch = chan_value(c, now);
				c->latched = c->rw == 3 ? 2 : 1;
			}
			if (!(v & 0x10) && !c->status_latched) {
				c->status = (chan_out(c, now) << 7) | (c->null_count << 6) |
					    (c->rw << 4) | (c->mode << 1) | c->bcd;
				c->status_latched = 1;
			}
		}
		return;
	}
	struct pit_chan *c = &p->ch[sel];
	if (!(v & 0x30)) {		/* counter latch */
		if (!c->latched) {
			c->latch = chan_value(c, now);
			c->latched = c->rw == 3 ? 2 : 1;
		}
		return;
	}
	c->rw = (v >> 4) & 3;
	c->mode = (v >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4;
	c->bcd = v & 1;
	c->wstate = c->rstate = 0;
	c->latched = 0;
	c->null_count = true;
	if (sel == 0)
		hw_timer_del(p->m, &p->timer);
}

static uint8_t chan_read(struct pit_chan *c, int64_t now)
{
	uint16_t v;
	uint8_t b;

	if (c->status_latched) {
		c->status_latched = 0;
		return c->status;
	}
	v = c->latched ? c->latch : chan_value(c, now);
	if (c->rw == 1 || (c->rw == 3 && !c->rstate))
		b = v & 0xff;
	else
		b = v >> 8;
	if (c->rw == 3)
		c->rstate ^= 1;
	if (c->latched && (c->rw != 3 || !c->rstate))
		c->latched = 0;
	return b;
}

static uint64_t pit_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_pit *p = opaque;

	return off < 3 ? chan_read(&p->ch[off], hw_clock_ns()) : 0xff;
}

static void pit_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_pit *p = opaque;
	struct pit_chan *c;

	if (off == 3) {
		control(p, v, hw_clock_ns());
		return;
	}
	c = &p->ch[off];
	if (c->rw == 1) {
		chan_load(p, off, v & 0xff);
	} else if (c->rw == 2) {
		chan_load(p, off, (v & 0xff) << 8);
	} else if (c->rw == 3) {
		if (!c->wstate)
			c->wlsb = v;
		else
			chan_load(p, off, c->wlsb | (v & 0xff) << 8);
		c->wstate ^= 1;
	}
}

static uint64_t port61_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_pit *p = opaque;
	int64_t now = hw_clock_ns();
	bool refresh = (now / 15000) & 1;

	return (p->port61 & 3) | (refresh << 4) | (chan_out(&p->ch[2], now) << 5);
}

static void port61_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_pit *p = opaque;

	if ((v & 1) && !p->ch[2].gate)
		p->ch[2].start = hw_clock_ns();
	p->ch[2].gate = v & 1;
	p->port61 = v & 3;
}

static const struct hw_io_ops pit_io = { pit_read, pit_write };
static const struct hw_io_ops port61_io = { port61_read, port61_write };

static void pit_reset(void *dev)
{
	struct hw_pit *p = dev;

	hw_timer_del(p->m, &p->timer);
	for (int i = 0; i < 3; i++)
		p->ch[i] = (struct pit_chan){ .count = 65536, .mode = 3, .rw = 3,
					      .gate = i != 2, .start = hw_clock_ns() };
	p->port61 = 0;
	p->irq_ticks = 0;
	irq_arm(p);
}

static void pit_save(void *dev, struct hw_wbuf *w)
{
	struct hw_pit *p = dev;
	int64_t now = hw_clock_ns();

	for (int i = 0; i < 3; i++) {
		struct pit_chan *c = &p->ch[i];
		hw_put32(w, c->count);
		uint8_t b[] = { c->mode, c->rw, c->bcd, c->gate, c->wstate, c->rstate,
				c->latched, c->status_latched, c->status, c->wlsb, c->null_count };
		hw_putb(w, b, sizeof(b));
		hw_put16(w, c->latch);
		hw_put64(w, now - c->start);
	}
	hw_put8(w, p->port61);
	hw_put64(w, p->irq_ticks);
}

static int pit_load(void *dev, struct hw_rbuf *r)
{
	struct hw_pit *p = dev;
	struct pit_chan ch[3];
	int64_t now = hw_clock_ns();
	uint8_t p61;
	uint64_t ticks;

	for (int i = 0; i < 3; i++) {
		struct pit_chan *c = &ch[i];
		uint8_t b[11];
		c->count = hw_get32(r);
		hw_getb(r, b, sizeof(b));
		*c = (struct pit_chan){ .count = c->count, .mode = b[0], .rw = b[1] & 3,
			.bcd = b[2] & 1, .gate = b[3] & 1, .wstate = b[4] & 1, .rstate = b[5] & 1,
			.latched = b[6], .status_latched = b[7] & 1, .status = b[8], .wlsb = b[9],
			.null_count = b[10] & 1 };
		c->latch = hw_get16(r);
		c->start = now - (int64_t)(hw_get64(r) & ((1ull << 62) - 1));
		if (c->count < 1 || c->count > 65536 || c->mode > 5 || c->latched > 2)
			return -EINVAL;
	}
	p61 = hw_get8(r);
	ticks = hw_get64(r);
	if (r->err)
		return -EINVAL;
	memcpy(p->ch, ch, sizeof(ch));
	p->port61 = p61 & 3;
	p->irq_ticks = ticks;
	irq_arm(p);
	return 0;
}

static void pit_free(void *dev)
{
	struct hw_pit *p = dev;

	hw_timer_del(p->m, &p->timer);
	free(p);
}

static const struct hw_dev_ops pit_ops = {
	.name = "pit", .version = 1, .reset = pit_reset,
	.save = pit_save, .load = pit_load, .free = pit_free,
};

int pit_new(struct machine *m)
{
	struct hw_pit *p = xzalloc(sizeof(*p));
	int r;

	p->m = m;
	hw_timer_init(&p->timer, pit_fire, p);
	for (int i = 0; i < 3; i++)
		p->ch[i] = (struct pit_chan){ .count = 65536, .mode = 3, .rw = 3,
					      .gate = i != 2, .start = hw_clock_ns(),
					      .null_count = true };
	m->pit = p;
	r = hw_dev_add(m, &pit_ops, p);
	r = r < 0 ? r : hw_pio_add(m, 0x40, 4, &pit_io, p, "pit");
	r = r < 0 ? r : hw_pio_add(m, 0x61, 1, &port61_io, p, "port61");
	return r;
}
