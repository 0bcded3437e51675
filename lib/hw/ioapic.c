/*
 * The Intel 82093AA I/O APIC at 0xfec00000 with 24 inputs, following its
 * data sheet: IOREGSEL/IOWIN indirect access, ID, version 0x11,
 * redirection entries with edge or level trigger, mask and remote IRR
 * (cleared by the local APICs' EOI broadcast).  Lines are given as
 * logically asserted or not; polarity is recorded but not applied.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define IOAPIC_BASE 0xfec00000ull
#define NPINS 24

struct hw_ioapic {
	struct machine *m;
	uint32_t sel, id;
	uint64_t redir[NPINS];
	uint32_t level;		/* input lines */
};

#define R_MASK (1ull << 16)
#define R_LEVEL (1ull << 15)
#define R_RIRR (1ull << 14)

static void service(struct hw_ioapic *io, int pin)
{
	uint64_t e = io->redir[pin];

	if (e & R_MASK)
		return;
	if (e & R_LEVEL) {
		if (e & R_RIRR)
			return;
		io->redir[pin] |= R_RIRR;
	}
	if (io->m->kernel_lapic) {	/* split irqchip: KVM's local APICs */
		uint32_t addr = 0xfee00000u | (uint32_t)(e >> 56) << 12 | (e & (1u << 11) ? 4 : 0);
		uint32_t data = (e & 0xff) | ((e >> 8) & 7) << 8 | (e & R_LEVEL ? 1u << 15 : 0);
		kvm_irqchip_ioapic_send(kvm_accel_chips(io->m), pin, addr, data);
		return;
	}
	apic_deliver(io->m, e >> 56, e & (1u << 11), (e >> 8) & 7, e & 0xff, e & R_LEVEL);
}

/* An edge the pin passed on that no local APIC has taken yet (its vector
 * still requested in some IRR); false for a masked pin. */
bool ioapic_pin_pending(const struct hw_ioapic *io, int pin)
{
	uint64_t e = io->redir[pin];
	struct machine *m = io->m;

	if (pin < 0 || pin >= NPINS || (e & R_MASK) || m->kernel_lapic)
		return false;
	for (int i = 0; i < m->ncpu; i++)
		if (m->vcpu[i].apic && apic_irr_test(m->vcpu[i].apic, e & 0xff))
			return true;
	return false;
}

void ioapic_set_irq(struct hw_ioapic *io, int gsi, bool level)
{
	uint32_t bit = 1u << gsi, old = io->level;

	if (gsi < 0 || gsi >= NPINS)
		return;
	io->level = level ? io->level | bit : io->level & ~bit;
	if (!level)
		return;
	if ((io->redir[gsi] & R_LEVEL) || !(old & bit))
		service(io, gsi);
}

void ioapic_eoi(struct hw_ioapic *io, uint8_t vector)
{
	for (int i = 0; i < NPINS; i++) {
		uint64_t e = io->redir[i];
		if ((e & R_LEVEL) && (e & R_RIRR) && (e & 0xff) == vector) {
			io->redir[i] &= ~R_RIRR;
			if (io->level & (1u << i))
				service(io, i);
		}
	}
}

void apic_eoi_notify(struct machine *m, uint8_t vector)
{
	if (m->ioapic)
		ioapic_eoi(m->ioapic, vector);
}

static uint64_t ioapic_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_ioapic *io = opaque;
	unsigned s = io->sel;

	if (off == 0)
		return io->sel;
	if (off != 0x10)
		return 0;
	if (s == 0)
		return io->id << 24;
	if (s == 1)
		return ((NPINS - 1) << 16) | 0x11;
	if (s == 2)
		return io->id << 24;
	if (s >= 0x10 && s < 0x10 + 2 * NPINS) {
		uint64_t e = io->redir[(s - 0x10) / 2];
		return (s & 1) ? e >> 32 : (uint32_t)e;
	}
	return 0;
}

static void ioapic_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_ioapic *io = opaque;
	unsigned s = io->sel;

	if (off == 0) {
		io->sel = v & 0xff;
		return;
	}
	if (off != 0x10)
		return;
	if (s == 0) {
		io->id = (v >> 24) & 0xf;
	} else if (s >= 0x10 && s < 0x10 + 2 * NPINS) {
		int pin = (s - 0x10) / 2;
		uint64_t e = io->redir[pin];
		if (s & 1)
			e = (e & 0xffffffffull) | (v << 32);
		else
			e = (e & ~0xffffffffull & ~0x1afffull) | (e & R_RIRR) | (v & 0x1afff);
		io->redir[pin] = e & ~(1ull << 12);
		if (!(e & R_LEVEL))
			io->redir[pin] &= ~R_RIRR;
		if ((e & R_LEVEL) && (io->level & (1u << pin)))
			service(io, pin);
	}
}

static const struct hw_io_ops ioapic_io = { ioapic_read, ioapic_write };

static void ioapic_reset(void *dev)
{
	struct hw_ioapic *io = dev;

	io->sel = 0;
	for (int i = 0; i < NPINS; i++)
		io->redir[i] = R_MASK;
}

static void ioapic_save(void *dev, struct hw_wbuf *w)
{
	struct hw_ioapic *io = dev;

	hw_put32(w, io->sel);
	hw_put32(w, io->id);
	hw_put32(w, io->level);
	for (int i = 0; i < NPINS; i++)
		hw_put64(w, io->redir[i]);
}

static int ioapic_load(void *dev, struct hw_rbuf *r)
{
	struct hw_ioapic *io = dev, n = *io;

	n.sel = hw_get32(r) & 0xff;
	n.id = hw_get32(r) & 0xf;
	n.level = hw_get32(r) & ((1u << NPINS) - 1);
	for (int i = 0; i < NPINS; i++)
		n.redir[i] = hw_get64(r);
	if (r->err)
		return -EINVAL;
	*io = n;
	return 0;
}

static void ioapic_free(void *dev) { free(dev); }

static const struct hw_dev_ops ioapic_ops = {
	.name = "ioapic", .version = 1, .reset = ioapic_reset,
	.save = ioapic_save, .load = ioapic_load, .free = ioapic_free,
};

int ioapic_new(struct machine *m)
{
	struct hw_ioapic *io = xzalloc(sizeof(*io));
	int r;

	io->m = m;
	io->id = 0;
	ioapic_reset(io);
	m->ioapic = io;
	r = hw_dev_add(m, &ioapic_ops, io);
	return r < 0 ? r : hw_mmio_add(m, IOAPIC_BASE, 0x1000, &ioapic_io, io, "ioapic");
}
