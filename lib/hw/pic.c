/*
 * The two cascaded Intel 8259A programmable interrupt controllers of the
 * PC (master at 0x20, slave at 0xa0 on master IRQ 2) and the PIIX edge/
 * level control registers (ELCR, 0x4d0-0x4d1).  Follows the 8259A data
 * sheet: ICW1-4 initialisation, OCW1 mask, OCW2 EOI and rotation, OCW3
 * register read and poll; auto-EOI; edge or level triggering per line.
 * The master's INT pin goes to the BSP's local APIC LINT0 (ExtINT).
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

struct pic_chip {
	uint8_t irr, imr, isr, last_level, elcr, elcr_mask;
	uint8_t base, prio_add, init_state, read_isr, poll;
	uint8_t auto_eoi, icw4, single, rotate_auto;
};

struct hw_pic {
	struct machine *m;
	struct pic_chip c[2];
};

static int priority(const struct pic_chip *s, uint8_t mask)
{
	int p = 0;

	if (!mask)
		return 8;
	while (!(mask & (1 << ((p + s->prio_add) & 7))))
		p++;
	return p;
}

static int chip_irq(const struct pic_chip *s, bool master)
{
	int p = priority(s, s->irr & ~s->imr), cur;
	uint8_t isr = s->isr;

	if (p == 8)
		return -1;
	if (master)		/* fully nested: the slave may interrupt itself */
		isr &= ~(1 << 2);
	cur = priority(s, isr);
	return p < cur ? (p + s->prio_add) & 7 : -1;
}

static void chip_set(struct pic_chip *s, int irq, bool level)
{
	uint8_t bit = 1 << irq;

	if (s->elcr & bit) {
		if (level)
			s->irr |= bit;
		else
			s->irr &= ~bit;
	} else if (level && !(s->last_level & bit)) {
		s->irr |= bit;
	}
	if (level)
		s->last_level |= bit;
	else
		s->last_level &= ~bit;
}

static void update(struct hw_pic *p)
{
	chip_set(&p->c[0], 2, chip_irq(&p->c[1], false) >= 0);
	hw_cpu_update_intr(p->m, 0);
}

/* A request latched in the IRR, unmasked, not yet acknowledged (INTA). */
bool pic_irq_pending(const struct hw_pic *p, int irq)
{
	const struct pic_chip *s = &p->c[irq >> 3];
	uint8_t bit = 1u << (irq & 7);

	return (s->irr & bit) && !(s->imr & bit);
}

void pic_set_irq(struct hw_pic *p, int irq, bool level)
{
	chip_set(&p->c[irq >> 3], irq & 7, level);
	update(p);
}

bool pic_output(struct hw_pic *p)
{
	return chip_irq(&p->c[0], true) >= 0;
}

static void chip_ack(struct pic_chip *s, int irq)
{
	if (s->auto_eoi) {
		if (s->rotate_auto)
			s->prio_add = (irq + 1) & 7;
	} else {
		s->isr |= 1 << irq;
	}
	if (!(s->elcr & (1 << irq)))
		s->irr &= ~(1 << irq);
}

int pic_ack(struct hw_pic *p)
{
	int irq = chip_irq(&p->c[0], true), vec;

	if (irq < 0) {
		vec = p->c[0].base + 7;		/* spurious */
	} else if (irq == 2) {
		int irq2 = chip_irq(&p->c[1], false);
		chip_ack(&p->c[0], 2);
		if (irq2 < 0)
			irq2 = 7;
		else
			chip_ack(&p->c[1], irq2);
		vec = p->c[1].base + irq2;
	} else {
		chip_ack(&p->c[0], irq);
		vec = p->c[0].base + irq;
	}
	update(p);
	return vec;
}

static void chip_reset(struct pic_chip *s)
{
	uint8_t elcr = s->elcr, mask = s->elcr_mask;

	memset(s, 0, sizeof(*s));
	s->elcr = elcr;
	s->elcr_mask = mask;
}

static void ocw2(struct pic_chip *s, uint8_t v)
{
	int cmd = v >> 5, pr;

	switch (cmd) {
	case 0: case 4:
		s->rotate_auto = cmd >> 2;
		break;
	case 1: case 5:		/* non-specific EOI (and rotate) */
		pr = priority(s, s->isr);
		if (pr != 8) {
			int irq = (pr + s->prio_add) & 7;
			s->isr &= ~(1 << irq);
			if (cmd == 5)
				s->prio_add = (irq + 1) & 7;
		}
		break;
	case 3: case 7:		/* specific EOI (and rotate) */
		s->isr &= ~(1 << (v & 7));
		if (cmd == 7)
			s->prio_add = ((v & 7) + 1) & 7;
		break;
	case 6:
		s->prio_add = ((v & 7) + 1) & 7;
		break;
	}
}

static void chip_write(struct pic_chip *s, unsigned port, uint8_t v)
{
	if (port == 0 && (v & 0x10)) {		/* ICW1 */
		chip_reset(s);
		s->init_state = 1;
		s->icw4 = v & 1;
		s->single = (v >> 1) & 1;
	} else if (port == 0 && (v & 0x08)) {	/* OCW3 */
		if (v & 0x04)
			s->poll = 1;
		if (v & 0x02)
			s->read_isr = v & 1;
	} else if (port == 0) {
		ocw2(s, v);
	} else if (s->init_state == 1) {	/* ICW2 */
		s->base = v & 0xf8;
		s->init_state = s->single ? (s->icw4 ? 3 : 0) : 2;
	} else if (s->init_state == 2) {	/* ICW3 */
		s->init_state = s->icw4 ? 3 : 0;
	} else if (s->init_state == 3) {	/* ICW4 */
		s->auto_eoi = (v >> 1) & 1;
		s->init_state = 0;
	} else {
		s->imr = v;
	}
}

static uint64_t pic_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_pic *p = opaque;
	struct pic_chip *s = &p->c[off >> 7 & 1];

	if (off >= 0x400)		/* ELCR at 0x4d0 */
		return p->c[off - 0x4b0].elcr;
	if (s->poll) {
		int irq = chip_irq(s, s == &p->c[0]);
		s->poll = 0;
		if (irq < 0)
			return 0;
		chip_ack(s, irq);
		update(p);
		return 0x80 | irq;
	}
	if (off & 1)
		return s->imr;
	return s->read_isr ? s->isr : s->irr;
}

static void pic_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_pic *p = opaque;

	if (off >= 0x400) {
		struct pic_chip *s = &p->c[off - 0x4b0];
		s->elcr = v & s->elcr_mask;
	} else {
		chip_write(&p->c[off >> 7 & 1], off & 1, v);
	}
	update(p);
}

/* The three port ranges share one handler; offsets are from 0x20. */
static uint64_t pic_read_a0(void *o, uint64_t off, unsigned s) { return pic_read(o, off + 0x80, s); }
static void pic_write_a0(void *o, uint64_t off, uint64_t v, unsigned s) { pic_write(o, off + 0x80, v, s); }
static uint64_t pic_read_elcr(void *o, uint64_t off, unsigned s) { return pic_read(o, off + 0x4b0, 1); }
static void pic_write_elcr(void *o, uint64_t off, uint64_t v, unsigned s) { pic_write(o, off + 0x4b0, v, 1); }

static const struct hw_io_ops pic_master_io = { pic_read, pic_write };
static const struct hw_io_ops pic_slave_io = { pic_read_a0, pic_write_a0 };
static const struct hw_io_ops pic_elcr_io = { pic_read_elcr, pic_write_elcr };

static void pic_reset(void *dev)
{
	struct hw_pic *p = dev;

	chip_reset(&p->c[0]);
	chip_reset(&p->c[1]);
}

static void pic_save(void *dev, struct hw_wbuf *w)
{
	struct hw_pic *p = dev;

	for (int i = 0; i < 2; i++) {
		struct pic_chip *s = &p->c[i];
		uint8_t b[] = { s->irr, s->imr, s->isr, s->last_level, s->elcr, s->base,
				s->prio_add, s->init_state, s->read_isr, s->poll,
				s->auto_eoi, s->icw4, s->single, s->rotate_auto };
		hw_putb(w, b, sizeof(b));
	}
}

static int pic_load(void *dev, struct hw_rbuf *r)
{
	struct hw_pic *p = dev;
	struct pic_chip c[2];

	for (int i = 0; i < 2; i++) {
		struct pic_chip *s = &c[i];
		uint8_t b[14];
		hw_getb(r, b, sizeof(b));
		if (b[7] > 3 || b[6] > 7)
			return -EINVAL;
		*s = (struct pic_chip){ b[0], b[1], b[2], b[3], b[4] & p->c[i].elcr_mask,
			p->c[i].elcr_mask, b[5] & 0xf8, b[6], b[7], b[8] & 1, b[9] & 1,
			b[10] & 1, b[11] & 1, b[12] & 1, b[13] & 1 };
	}
	if (r->err)
		return -EINVAL;
	memcpy(p->c, c, sizeof(c));
	update(p);
	return 0;
}

static void pic_free(void *dev) { free(dev); }

static const struct hw_dev_ops pic_ops = {
	.name = "pic", .version = 1, .reset = pic_reset,
	.save = pic_save, .load = pic_load, .free = pic_free,
};

int pic_new(struct machine *m)
{
	struct hw_pic *p = xzalloc(sizeof(*p));
	int r;

	p->m = m;
	p->c[0].elcr_mask = 0xf8;
	p->c[1].elcr_mask = 0xde;
	m->pic = p;
	r = hw_dev_add(m, &pic_ops, p);
	r = r < 0 ? r : hw_pio_add(m, 0x20, 2, &pic_master_io, p, "pic");
	r = r < 0 ? r : hw_pio_add(m, 0xa0, 2, &pic_slave_io, p, "pic");
	r = r < 0 ? r : hw_pio_add(m, 0x4d0, 2, &pic_elcr_io, p, "elcr");
	return r;
}
