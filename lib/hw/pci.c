/*
 * PCI: the i440FX host bridge (configuration mechanism #1 at 0xcf8/0xcfc,
 * bus 0 only) and the PIIX3 ISA bridge at slot 1 (the power-management
 * registers sit at fixed ports described by the FADT, with no PCI
 * function, so firmware finds no SMM to set up), following the PCI Local Bus
 * specification 3.0 (configuration header type 0, BAR sizing) and the
 * 82371AB data sheet (PIRQ route registers).  Device INTA# of slot s is
 * swizzled to PIRQ (s - 1) & 3, which the route registers send to ISA
 * IRQs 10, 10, 11, 11 as SeaBIOS sets them; lines sharing an IRQ are
 * ORed.  pci_assign_bars() plays the BIOS for direct kernel boots.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define PCI_MAX 32

struct hw_pci {
	struct machine *m;
	uint32_t addr;
	struct hw_pci_dev *dev[PCI_MAX * 8];	/* by devfn */
	bool intx[PCI_MAX * 8];
	int next_slot;
};

static const uint8_t pirq_irq[4] = { 10, 10, 11, 11 };

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void bar_update(struct hw_pci_dev *d)
{
	uint16_t cmd = d->cfg[4] | d->cfg[5] << 8;

	for (int i = 0; i < 6; i++) {
		if (!d->bar_size[i])
			continue;
		bool io = d->bar_size[i] & 1;
		uint64_t a = get32(d->cfg + 0x10 + 4 * i) & (io ? ~3u : ~15u);
		if (d->bar64[i])
			a |= (uint64_t)get32(d->cfg + 0x14 + 4 * i) << 32;
		if (!(cmd & (io ? 1 : 2)))
			a = 0;
		if (d->ops && d->ops->bar_map)
			d->ops->bar_map(d, i, a, io);
	}
}

static uint32_t cfg_read(struct hw_pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v = 0;

	if (off >= 0x40 && d->ops && d->ops->cfg_read)
		return d->ops->cfg_read(d, off, size);
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)d->cfg[off + i] << (8 * i);
	return v;
}

static void cfg_write_byte(struct hw_pci_dev *d, unsigned off, uint8_t b)
{
	if (off >= 0x10 && off < 0x28) {
		int bar = (off - 0x10) / 4;
		int hi = bar > 0 && d->bar64[bar - 1];
		uint32_t sz = hi ? d->bar_size[bar - 1] : d->bar_size[bar];
		if (!sz)
			return;
		d->cfg[off] = b;
		if (!hi) {
			uint32_t v = get32(d->cfg + 0x10 + 4 * bar), io = sz & 1;
			uint32_t mask = ~((sz & ~1u) - 1);
			v = (v & mask) | (io ? 1 : (d->bar64[bar] ? 4 : 0));
			put32(d->cfg + 0x10 + 4 * bar, v);
		}
		return;
	}
	switch (off) {
	case 0x04: d->cfg[4] = b & 0x07; break;
	case 0x05: d->cfg[5] = b & 0x05; break;
	case 0x0c: case 0x0d: case 0x3c: d->cfg[off] = b; break;
	default:
		if (off >= 0x40)
			d->cfg[off] = b;
	}
}

static void cfg_write(struct hw_pci_dev *d, unsigned off, uint32_t v, unsigned size)
{
	if (off >= 0x40 && d->ops && d->ops->cfg_write) {
		d->ops->cfg_write(d, off, v, size);
		return;
	}
	for (unsigned i = 0; i < size; i++)
		cfg_write_byte(d, off + i, v >> (8 * i));
	if (off < 0x28)
		bar_update(d);
}

static struct hw_pci_dev *selected(struct hw_pci *p, unsigned *reg)
{
	uint32_t a = p->addr;

	if (!(a & 0x80000000u) || ((a >> 16) & 0xff))
		return NULL;
	*reg = a & 0xfc;
	return p->dev[(a >> 8) & 0xff];
}

static uint64_t pci_io_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_pci *p = opaque;
	struct hw_pci_dev *d;
	unsigned reg;

	if (off < 4)
		return off == 0 && size == 4 ? p->addr : 0xffffffff;
	d = selected(p, &reg);
	if (!d)
		return 0xffffffff;
	reg += off - 4;
	if (reg + size > 256)
		return 0xffffffff;
	uint32_t v = cfg_read(d, reg, size);
	LOG(LOG_PCI, "cfg read %02x.%x+0x%02x/%u = 0x%x", d->slot, (p->addr >> 8) & 7, reg, size, v);
	return v;
}

static void pci_io_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_pci *p = opaque;
	struct hw_pci_dev *d;
	unsigned reg;

	if (off < 4) {
		if (off == 0 && size == 4)
			p->addr = v;
		else if (off == 1 && size == 1 && (v & 4))	/* 0xcf9: reset control */
			hw_request_reset(p->m);
		return;
	}
	d = selected(p, &reg);
	if (!d)
		return;
	reg += off - 4;
	if (reg + size > 256)
		return;
	LOG(LOG_PCI, "cfg write %02x+0x%02x/%u <- 0x%x", d->slot, reg, size, (unsigned)v);
	cfg_write(d, reg, v, size);
}

static const struct hw_io_ops pci_io = { pci_io_read, pci_io_write };

static struct hw_pci_dev *add_fn(struct hw_pci *p, int devfn, uint16_t vendor,
				 uint16_t device, uint32_t class_rev, uint16_t subsys)
{
	struct hw_pci_dev *d = xzalloc(sizeof(*d));

	d->m = p->m;
	d->slot = devfn >> 3;
	put16(d->cfg, vendor);
	put16(d->cfg + 2, device);
	put32(d->cfg + 8, class_rev);
	put16(d->cfg + 0x2c, subsys ? 0x1af4 : 0);
	put16(d->cfg + 0x2e, subsys);
	p->dev[devfn] = d;
	return d;
}

struct hw_pci_dev *pci_add(struct machine *m, uint16_t vendor, uint16_t device,
			   uint32_t class_rev, uint16_t subsys,
			   const struct hw_pci_ops *ops, void *opaque)
{
	struct hw_pci *p = m->pci;
	struct hw_pci_dev *d;

	if (p->next_slot >= PCI_MAX) {
		err_set(-ENOSPC, "no free PCI slot");
		return NULL;
	}
	d = add_fn(p, p->next_slot++ << 3, vendor, device, class_rev, subsys);
	d->ops = ops;
	d->opaque = opaque;
	d->irq = pirq_irq[(d->slot - 1) & 3];
	d->cfg[0x3c] = d->irq;
	d->cfg[0x3d] = 1;
	return d;
}

void pci_add_fn(struct machine *m, int devfn, uint16_t vendor, uint16_t device, uint32_t class_rev)
{
	add_fn(m->pci, devfn, vendor, device, class_rev, 0);
}

void pci_set_bar(struct hw_pci_dev *d, int bar, uint32_t size, bool io, bool is64)
{
	d->bar_size[bar] = size | io;
	d->bar64[bar] = is64;
	put32(d->cfg + 0x10 + 4 * bar, io ? 1 : (is64 ? 4 : 0));
}

uint8_t pci_add_cap(struct hw_pci_dev *d, const uint8_t *cap, unsigned len)
{
	uint8_t at = 0x40, prev = d->cfg[0x34];

	while (prev) {
		at = MAX(at, prev + d->cfg[prev + 2]);	/* caps carry their length */
		prev = d->cfg[prev + 1];
	}
	at = ALIGN_UP(at, 4);
	memcpy(d->cfg + at, cap, len);
	d->cfg[at + 1] = d->cfg[0x34];
	d->cfg[0x34] = at;
	d->cfg[6] |= 0x10;
	return at;
}

void pci_set_intx(struct hw_pci_dev *d, bool level)
{
	struct hw_pci *p = d->m->pci;
	bool any = false;

	for (int i = 0; i < PCI_MAX * 8; i++)
		if (p->dev[i] == d)
			p->intx[i] = level;
	for (int i = 0; i < PCI_MAX * 8; i++)
		if (p->dev[i] && p->intx[i] && p->dev[i]->irq == d->irq)
			any = true;
	hw_set_irq(d->m, d->irq, any);
}

void pci_assign_bars(struct machine *m)
{
	struct hw_pci *p = m->pci;
	uint32_t io = 0xc000;
	uint64_t mem = 0xfc000000;

	for (int i = 0; i < PCI_MAX * 8; i++) {
		struct hw_pci_dev *d = p->dev[i];
		if (!d)
			continue;
		for (int b = 0; b < 6; b++) {
			uint32_t sz = d->bar_size[b] & ~1u;
			if (!sz)
				continue;
			if (d->bar_size[b] & 1) {
				io = ALIGN_UP(io, sz);
				put32(d->cfg + 0x10 + 4 * b, io | 1);
				io += sz;
			} else {
				mem = ALIGN_UP(mem, sz);
				put32(d->cfg + 0x10 + 4 * b, mem | (d->bar64[b] ? 4 : 0));
				mem += sz;
			}
		}
		d->cfg[4] |= 0x07;
		bar_update(d);
	}
}

static void pci_reset(void *dev)
{
	((struct hw_pci *)dev)->addr = 0;
}

static void pci_save(void *dev, struct hw_wbuf *w)
{
	struct hw_pci *p = dev;

	hw_put32(w, p->addr);
	for (int i = 0; i < PCI_MAX * 8; i++)
		if (p->dev[i]) {
			hw_put16(w, i);
			hw_putb(w, p->dev[i]->cfg, 256);
			hw_put8(w, p->intx[i]);
		}
	hw_put16(w, 0xffff);
}

static int pci_load(void *dev, struct hw_rbuf *r)
{
	struct hw_pci *p = dev;
	uint32_t addr = hw_get32(r);
	uint8_t cfg[256];

	for (;;) {
		uint16_t fn = hw_get16(r);
		if (r->err)
			return -EINVAL;
		if (fn == 0xffff)
			break;
		if (fn >= PCI_MAX * 8 || !p->dev[fn])
			return -EINVAL;
		hw_getb(r, cfg, sizeof(cfg));
		uint8_t ix = hw_get8(r);
		if (r->err || memcmp(cfg, p->dev[fn]->cfg, 4))
			return -EINVAL;
		memcpy(p->dev[fn]->cfg, cfg, sizeof(cfg));
		p->intx[fn] = ix & 1;
		bar_update(p->dev[fn]);
	}
	p->addr = addr;
	return 0;
}

static void pci_free(void *dev)
{
	struct hw_pci *p = dev;

	for (int i = 0; i < PCI_MAX * 8; i++)
		free(p->dev[i]);
	free(p);
}

static const struct hw_dev_ops pci_ops = {
	.name = "pci", .version = 1, .reset = pci_reset,
	.save = pci_save, .load = pci_load, .free = pci_free,
};

int pci_new(struct machine *m)
{
	struct hw_pci *p = xzalloc(sizeof(*p));
	struct hw_pci_dev *d;
	int r;

	p->m = m;
	m->pci = p;
	add_fn(p, 0, 0x8086, 0x1237, 0x06000002, 0);		/* i440FX */
	d = add_fn(p, 1 << 3, 0x8086, 0x7000, 0x06010000, 0);	/* PIIX3 ISA */
	d->cfg[0x0e] = 0x80;					/* multi-function */
	for (int i = 0; i < 4; i++)
		d->cfg[0x60 + i] = pirq_irq[i];
	p->next_slot = 2;
	r = hw_dev_add(m, &pci_ops, p);
	return r < 0 ? r : hw_pio_add(m, 0xcf8, 8, &pci_io, p, "pci");
}

/* The function at devfn, or NULL (for a device that set up its function
 * with pci_add_fn and has registers to preset). */
struct hw_pci_dev *pci_get_fn(struct machine *m, int devfn)
{
	return devfn >= 0 && devfn < PCI_MAX * 8 ? m->pci->dev[devfn] : NULL;
}

/* ---- the monitor's view (query-pci) ---- */

static void bar_info(const struct hw_pci_dev *d, int b, struct hw_pci_bar *o)
{
	uint32_t sz = d->bar_size[b] & ~1u;
	bool io = d->bar_size[b] & 1;
	uint64_t a = get32(d->cfg + 0x10 + 4 * b) & (io ? ~3u : ~15u);

	if (!sz)
		return;
	if (d->bar64[b])
		a |= (uint64_t)get32(d->cfg + 0x14 + 4 * b) << 32;
	*o = (struct hw_pci_bar){ .addr = a, .size = sz, .io = io, .mem64 = d->bar64[b],
		.prefetch = !io && (d->cfg[0x10 + 4 * b] & 8) };
}

int machine_pci_list(struct machine *m, struct hw_pci_info *out, int max)
{
	struct hw_pci *p = m->pci;
	int n = 0;

	pthread_mutex_lock(&m->lock);
	for (int i = 0; p && i < PCI_MAX * 8 && n < max; i++) {
		const struct hw_pci_dev *d = p->dev[i];
		struct hw_pci_info *o = &out[n++];

		if (!d) {
			n--;
			continue;
		}
		memset(o, 0, sizeof(*o));
		o->slot = i >> 3;
		o->function = i & 7;
		o->vendor = d->cfg[0] | d->cfg[1] << 8;
		o->device = d->cfg[2] | d->cfg[3] << 8;
		o->revision = d->cfg[8];
		o->prog_if = d->cfg[9];
		o->class_code = d->cfg[0x0a] | d->cfg[0x0b] << 8;
		o->subsys_vendor = d->cfg[0x2c] | d->cfg[0x2d] << 8;
		o->subsys = d->cfg[0x2e] | d->cfg[0x2f] << 8;
		o->irq = d->cfg[0x3c];
		o->irq_pin = d->cfg[0x3d];
		for (int b = 0; b < 6; b++)
			bar_info(d, b, &o->bar[b]);
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}
