/*
 * The local APIC of each vCPU (xAPIC mode, MMIO window at the APIC base,
 * 0xfee00000 by default), following the Intel SDM vol. 3, chapter 11:
 * IRR/ISR/TMR, task and processor priority, EOI (level-triggered EOIs are
 * broadcast to the IOAPIC), the LVT, the timer (one-shot and periodic;
 * the APIC bus runs at 1 GHz), interprocessor interrupts through the ICR
 * (fixed, lowest priority, NMI, INIT, startup) with flat logical and
 * physical destinations, and the virtual-wire path from the 8259 on the
 * BSP's LINT0.  x2APIC is not offered.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define APIC_DEFAULT_BASE 0xfee00000ull
enum { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_N };
#define LVT_MASKED (1u << 16)

struct hw_apic {
	struct machine *m;
	int cpu;
	uint64_t base;		/* IA32_APIC_BASE MSR */
	uint32_t id, tpr, ldr, dfr, svr, esr, icr[2], lvt[LVT_N];
	uint32_t isr[8], irr[8], tmr[8];
	uint32_t initial, divide;
	int64_t start;		/* timer: ns when the count was loaded */
	struct hw_timer timer;
};

static int highest(const uint32_t *v)
{
	for (int i = 7; i >= 0; i--)
		if (v[i])
			return i * 32 + 31 - __builtin_clz(v[i]);
	return -1;
}

static unsigned ppr(const struct hw_apic *a)
{
	int isrv = highest(a->isr);
	unsigned cls = isrv < 0 ? 0 : isrv & 0xf0;

	return (a->tpr & 0xf0) >= cls ? a->tpr & 0xff : cls;
}

static bool hw_enabled(const struct hw_apic *a) { return a->base & (1u << 11); }
static bool sw_enabled(const struct hw_apic *a) { return hw_enabled(a) && (a->svr & 0x100); }
bool apic_enabled(struct hw_apic *a) { return sw_enabled(a); }

static bool accepts_pic(const struct hw_apic *a)
{
	uint32_t l = a->lvt[LVT_LINT0];

	if (a->cpu != 0)
		return false;
	return !hw_enabled(a) || (!(l & LVT_MASKED) && ((l >> 8) & 7) == 7);
}

bool apic_has_intr(struct hw_apic *a)
{
	int v = highest(a->irr);

	if (v >= 0 && sw_enabled(a) && (v & 0xf0) > (ppr(a) & 0xf0))
		return true;
	return accepts_pic(a) && a->m->pic && pic_output(a->m->pic);
}

int apic_ack(struct hw_apic *a)
{
	int v = highest(a->irr);

	if (v >= 0 && sw_enabled(a) && (v & 0xf0) > (ppr(a) & 0xf0)) {
		a->irr[v >> 5] &= ~(1u << (v & 31));
		a->isr[v >> 5] |= 1u << (v & 31);
		return v;
	}
	if (accepts_pic(a) && a->m->pic && pic_output(a->m->pic))
		return pic_ack(a->m->pic);
	return -1;
}

bool apic_irr_test(const struct hw_apic *a, uint8_t vec)
{
	return a->irr[vec >> 5] & (1u << (vec & 31));
}

static void set_irr(struct hw_apic *a, uint8_t vec, bool level)
{
	if (vec < 16) {
		a->esr |= 0x40;		/* illegal vector */
		return;
	}
	a->irr[vec >> 5] |= 1u << (vec & 31);
	if (level)
		a->tmr[vec >> 5] |= 1u << (vec & 31);
	else
		a->tmr[vec >> 5] &= ~(1u << (vec & 31));
	hw_cpu_update_intr(a->m, a->cpu);
}

static void accept(struct hw_apic *a, uint8_t mode, uint8_t vec, bool level)
{
	struct machine *m = a->m;
	void *vc = m->vcpu[a->cpu].accel_vcpu;

	switch (mode) {
	case 0: case 1:
		if (sw_enabled(a))
			set_irr(a, vec, level);
		break;
	case 4:
		if (vc)
			m->accel->nmi(vc);
		hw_cpu_kick(m, a->cpu);
		break;
	case 5:
		if (vc)
			m->accel->init_ipi(vc);
		hw_cpu_kick(m, a->cpu);
		break;
	case 6:
		LOG(LOG_INT, "cpu %d: startup IPI, vector 0x%x", a->cpu, vec);
		if (vc)
			m->accel->sipi(vc, vec);
		hw_cpu_kick(m, a->cpu);
		break;
	default:
		LOG(LOG_UNIMP, "apic: delivery mode %u", mode);
	}
}

static bool matches(const struct hw_apic *a, uint8_t dest, bool logical)
{
	if (!logical)
		return dest == 0xff || dest == a->id;
	if ((a->dfr >> 28) == 0xf)	/* flat */
		return (a->ldr >> 24) & dest;
	return ((a->ldr >> 28) == (dest >> 4)) && ((a->ldr >> 24) & dest & 0xf);
}

void apic_deliver(struct machine *m, uint8_t dest, bool logical, uint8_t mode,
		  uint8_t vector, bool level)
{
	for (int i = 0; i < m->ncpu; i++) {
		struct hw_apic *a = m->vcpu[i].apic;
		if (a && matches(a, dest, logical)) {
			accept(a, mode, vector, level);
			if (mode == 1)
				break;
		}
	}
}

static void send_ipi(struct hw_apic *a)
{
	uint32_t lo = a->icr[0];
	uint8_t mode = (lo >> 8) & 7, vec = lo & 0xff;
	struct machine *m = a->m;

	if (mode == 5 && !(lo & (1u << 14)) && (lo & (1u << 15)))
		return;			/* INIT level de-assert */
	switch ((lo >> 18) & 3) {
	case 0:
		apic_deliver(m, a->icr[1] >> 24, lo & (1u << 11), mode, vec, false);
		break;
	case 1:
		accept(a, mode, vec, false);
		break;
	default:
		for (int i = 0; i < m->ncpu; i++)
			if (i != a->cpu || ((lo >> 18) & 3) == 2)
				accept(m->vcpu[i].apic, mode, vec, false);
	}
}

static void eoi(struct hw_apic *a)
{
	int v = highest(a->isr);

	if (v < 0)
		return;
	a->isr[v >> 5] &= ~(1u << (v & 31));
	if (a->tmr[v >> 5] & (1u << (v & 31)))
		apic_eoi_notify(a->m, v);
	hw_cpu_update_intr(a->m, a->cpu);
}

/* ---- timer ---- */

static uint64_t timer_div(const struct hw_apic *a)
{
	unsigned d = (a->divide & 3) | ((a->divide >> 1) & 4);

	return d == 7 ? 1 : 2ull << d;
}

static void timer_arm(struct hw_apic *a)
{
	hw_timer_del(a->m, &a->timer);
	if (a->initial)
		hw_timer_mod(a->m, &a->timer, a->start + (int64_t)(a->initial * timer_div(a)));
}

/*
 * A periodic tick the CPU has not taken yet (its vector still in IRR: a
 * vCPU thread the host did not run, a guest with interrupts off) holds
 * the next one back, retried every TIMER_RETRY_NS, rather than merging
 * into it: the guest gets every tick, late, as from pit.c's timer, and a
 * tick-counting clock (jiffies) keeps time.  Linux's clocksource
 * watchdog compares the TSC with jiffies and drops the TSC as unstable
 * when ticks are lost.  Beyond TIMER_MAX_HOLD periods behind (a stopped
 * host) ticks are merged again.
 */
#define TIMER_RETRY_NS 50000
#define TIMER_MAX_HOLD 100

static void timer_fire(void *opaque)
{
	struct hw_apic *a = opaque;
	uint32_t l = a->lvt[LVT_TIMER];
	bool periodic = ((l >> 17) & 3) == 1 && a->initial;
	int64_t period = (int64_t)(a->initial * timer_div(a)), now = hw_clock_ns();

	if (!(l & LVT_MASKED)) {
		if (periodic && apic_irr_test(a, l & 0xff) && sw_enabled(a) &&
		    now - (a->start + period) < TIMER_MAX_HOLD * period) {
			hw_timer_mod(a->m, &a->timer, now + TIMER_RETRY_NS);
			return;
		}
		accept(a, 0, l & 0xff, false);
	}
	if (periodic) {
		a->start += period;
		if (now - (a->start + period) >= TIMER_MAX_HOLD * period)
			a->start = now;		/* the host stalled: do not pile up */
		timer_arm(a);
	} else {
		a->initial = a->initial ? a->initial : 0;
		a->start = INT64_MIN / 2;
	}
}

static uint32_t timer_current(const struct hw_apic *a)
{
	int64_t el = hw_clock_ns() - a->start;
	uint64_t ticks, div = timer_div(a);

	if (!a->initial || el < 0)
		return 0;
	ticks = el / div;
	if (((a->lvt[LVT_TIMER] >> 17) & 3) == 1)
		return a->initial - ticks % a->initial;
	return ticks >= a->initial ? 0 : a->initial - ticks;
}

/* ---- registers ---- */

static uint32_t reg_read(struct hw_apic *a, unsigned reg)
{
	switch (reg) {
	case 0x02: return a->id << 24;
	case 0x03: return 0x50014;		/* version 0x14, 6 LVT entries */
	case 0x08: return a->tpr;
	case 0x09: return 0;
	case 0x0a: return ppr(a);
	case 0x0d: return a->ldr;
	case 0x0e: return a->dfr;
	case 0x0f: return a->svr;
	case 0x28: return a->esr;
	case 0x30: return a->icr[0] & ~(1u << 12);
	case 0x31: return a->icr[1];
	case 0x38: return a->initial;
	case 0x39: return timer_current(a);
	case 0x3e: return a->divide;
	}
	if (reg >= 0x10 && reg < 0x18) return a->isr[reg - 0x10];
	if (reg >= 0x18 && reg < 0x20) return a->tmr[reg - 0x18];
	if (reg >= 0x20 && reg < 0x28) return a->irr[reg - 0x20];
	if (reg >= 0x32 && reg < 0x38) return a->lvt[reg - 0x32];
	return 0;
}

static void reg_write(struct hw_apic *a, unsigned reg, uint32_t v)
{
	switch (reg) {
	case 0x02: a->id = v >> 24; break;
	case 0x08: a->tpr = v & 0xff; break;
	case 0x0b: eoi(a); break;
	case 0x0d: a->ldr = v & 0xff000000; break;
	case 0x0e: a->dfr = v | 0x0fffffff; break;
	case 0x0f:
		a->svr = v & 0x3ff;
		if (!(v & 0x100))
			for (int i = 0; i < LVT_N; i++)
				a->lvt[i] |= LVT_MASKED;
		break;
	case 0x28: a->esr = 0; break;
	case 0x30: a->icr[0] = v; send_ipi(a); break;
	case 0x31: a->icr[1] = v & 0xff000000; break;
	case 0x38:
		a->initial = v;
		a->start = hw_clock_ns();
		timer_arm(a);
		break;
	case 0x3e: a->divide = v & 0xb; break;
	default:
		if (reg >= 0x32 && reg < 0x38) {
			if (!(a->svr & 0x100))
				v |= LVT_MASKED;
			a->lvt[reg - 0x32] = v & 0x7ffff;
		}
	}
	hw_cpu_update_intr(a->m, a->cpu);
}

bool apic_mmio(struct hw_apic *a, uint64_t gpa, uint64_t *val, bool write, unsigned size)
{
	uint64_t base = a->base & ~0xfffull;

	if (!a || !hw_enabled(a) || gpa < base || gpa >= base + 0x1000)
		return false;
	if ((gpa & 0xf) || size != 4) {
		LOG(LOG_GUEST_ERRORS, "apic: access of %u bytes at 0x%" PRIx64, size, gpa);
		if (!write)
			*val = 0;
		return true;
	}
	if (write)
		reg_write(a, (gpa - base) >> 4, *val);
	else
		*val = reg_read(a, (gpa - base) >> 4);
	return true;
}

int apic_msr_read(struct hw_apic *a, uint32_t msr, uint64_t *val)
{
	if (msr != 0x1b)
		return -1;
	*val = a->base;
	return 0;
}

int apic_msr_write(struct hw_apic *a, uint32_t msr, uint64_t val)
{
	if (msr != 0x1b)
		return -1;
	a->base = (val & 0xfffff0900ull) | (a->cpu == 0 ? 0x100 : 0);
	hw_cpu_update_intr(a->m, a->cpu);
	return 0;
}

void apic_bios_setup(struct hw_apic *a)
{
	a->svr = 0x1ff;
	a->lvt[LVT_LINT0] = 0x700;
	a->lvt[LVT_LINT1] = 0x400;
}

static void apic_reset(void *dev)
{
	struct hw_apic *a = dev;

	hw_timer_del(a->m, &a->timer);
	a->base = APIC_DEFAULT_BASE | (1u << 11) | (a->cpu == 0 ? 0x100 : 0);
	a->id = a->cpu;
	a->tpr = a->ldr = a->esr = a->icr[0] = a->icr[1] = 0;
	a->dfr = 0xffffffff;
	a->svr = 0xff;
	for (int i = 0; i < LVT_N; i++)
		a->lvt[i] = LVT_MASKED;
	memset(a->isr, 0, sizeof(a->isr));
	memset(a->irr, 0, sizeof(a->irr));
	memset(a->tmr, 0, sizeof(a->tmr));
	a->initial = a->divide = 0;
}

static void apic_save(void *dev, struct hw_wbuf *w)
{
	struct hw_apic *a = dev;
	uint32_t r[] = { a->id, a->tpr, a->ldr, a->dfr, a->svr, a->esr, a->icr[0], a->icr[1],
			 a->initial, a->divide };

	hw_put64(w, a->base);
	for (size_t i = 0; i < ARRAY_SIZE(r); i++)
		hw_put32(w, r[i]);
	for (int i = 0; i < LVT_N; i++)
		hw_put32(w, a->lvt[i]);
	for (int i = 0; i < 8; i++) {
		hw_put32(w, a->isr[i]);
		hw_put32(w, a->irr[i]);
		hw_put32(w, a->tmr[i]);
	}
	hw_put64(w, a->initial ? hw_clock_ns() - a->start : 0);
}

static int apic_load(void *dev, struct hw_rbuf *r)
{
	struct hw_apic *a = dev, n = *a;
	uint32_t *f[] = { &n.id, &n.tpr, &n.ldr, &n.dfr, &n.svr, &n.esr, &n.icr[0], &n.icr[1],
			  &n.initial, &n.divide };

	n.base = hw_get64(r);
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		*f[i] = hw_get32(r);
	for (int i = 0; i < LVT_N; i++)
		n.lvt[i] = hw_get32(r) & 0x7ffff;
	for (int i = 0; i < 8; i++) {
		n.isr[i] = hw_get32(r);
		n.irr[i] = hw_get32(r);
		n.tmr[i] = hw_get32(r);
	}
	int64_t el = hw_get64(r) & ((1ull << 62) - 1);
	if (r->err || n.id > 0xff)
		return -EINVAL;
	n.start = hw_clock_ns() - el;
	n.divide &= 0xb;
	n.svr &= 0x3ff;
	hw_timer_del(a->m, &a->timer);
	*a = n;
	hw_timer_init(&a->timer, timer_fire, a);
	timer_arm(a);
	hw_cpu_update_intr(a->m, a->cpu);
	return 0;
}

static void apic_free(void *dev)
{
	struct hw_apic *a = dev;

	hw_timer_del(a->m, &a->timer);
	free(a);
}

static const struct hw_dev_ops apic_ops = {
	.name = "apic", .version = 1, .reset = apic_reset,
	.save = apic_save, .load = apic_load, .free = apic_free,
};

int apic_new(struct machine *m, int cpu)
{
	struct hw_apic *a = xzalloc(sizeof(*a));

	a->m = m;
	a->cpu = cpu;
	hw_timer_init(&a->timer, timer_fire, a);
	apic_reset(a);
	m->vcpu[cpu].apic = a;
	return hw_dev_add(m, &apic_ops, a);
}
