/*
 * The software accelerator: adapts lib/jit's CPU (jit.h) to the
 * accelerator ops table.  Each vCPU gets its own struct jit_bus whose
 * opaque is the vCPU, so MMIO to the local APIC window knows which CPU
 * asked.  RAM is handed out page by page from the machine's map; the
 * firmware ROM below 4 GiB is readable but not writable.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"
#include "jit/jit.h"

#define JIT_BUDGET 200000

struct jit_vcpu {
	struct machine *m;
	int index;
	struct jit_cpu *cpu;
	struct jit_bus bus;
	uint64_t icount;
};

static uint8_t *bus_ram(void *opaque, uint64_t gpa, bool write)
{
	struct jit_vcpu *v = opaque;
	struct machine *m = v->m;
	uint8_t *p = hw_ram_ptr(m, gpa & ~0xfffull, 4096);
	uint64_t rom = 0x100000000ull - m->bios_size;

	if (p)
		return p + (gpa & 0xfff);
	if (!write && m->bios && gpa >= rom && gpa < 0x100000000ull)
		return m->bios + (gpa - rom);
	return NULL;
}

static uint64_t bus_mmio_read(void *opaque, uint64_t gpa, unsigned size)
{
	struct jit_vcpu *v = opaque;

	return hw_bus_mmio_read(v->m, v->index, gpa, size);
}

static void bus_mmio_write(void *opaque, uint64_t gpa, uint64_t val, unsigned size)
{
	struct jit_vcpu *v = opaque;

	hw_bus_mmio_write(v->m, v->index, gpa, val, size);
}

static uint32_t bus_pio_in(void *opaque, uint16_t port, unsigned size)
{
	return hw_bus_pio_in(((struct jit_vcpu *)opaque)->m, port, size);
}

static void bus_pio_out(void *opaque, uint16_t port, uint32_t val, unsigned size)
{
	hw_bus_pio_out(((struct jit_vcpu *)opaque)->m, port, val, size);
}

static int bus_irq_ack(void *opaque, int cpu)
{
	struct jit_vcpu *v = opaque;

	return hw_bus_irq_ack(v->m, v->index);
}

static int bus_msr_read(void *opaque, int cpu, uint32_t msr, uint64_t *val)
{
	struct jit_vcpu *v = opaque;

	return hw_bus_msr_read(v->m, v->index, msr, val);
}

static int bus_msr_write(void *opaque, int cpu, uint32_t msr, uint64_t val)
{
	struct jit_vcpu *v = opaque;

	return hw_bus_msr_write(v->m, v->index, msr, val);
}

static void bus_log(void *opaque, int cpu, const char *msg)
{
	LOG(LOG_UNIMP, "cpu %d: %s", cpu, msg);
}

static int jit_probe(void) { return 0; }

/* The machine, and its RAM as the vCPUs' translators track writes to it. */
struct jit_accel {
	struct machine *m;
	struct jit_ram *ram;
};

static int jit_init(struct machine *m, void **accel)
{
	struct jit_accel *a = xzalloc(sizeof(*a));

	a->m = m;
	a->ram = jit_ram_new(m->ram, m->ram_size);
	if (!a->ram) {
		free(a);
		return err_set_errno(ENOMEM, "cannot track guest RAM");
	}
	*accel = a;
	return 0;
}

static void jit_free(void *accel)
{
	struct jit_accel *a = accel;

	jit_ram_free(a->ram);
	free(a);
}

static void jit_ram_written_op(void *accel, const void *p, size_t len)
{
	jit_ram_written(((struct jit_accel *)accel)->ram, p, len);
}

static int jit_map(void *accel, uint64_t gpa, uint64_t size, void *host, bool ro)
{
	return 0;	/* bus_ram() reads the machine's map directly */
}

static int jit_vcpu_new(void *accel, int index, void **out)
{
	struct jit_accel *a = accel;
	struct jit_vcpu *v = xzalloc(sizeof(*v));

	v->m = a->m;
	v->index = index;
	v->bus = (struct jit_bus){ .opaque = v, .ram = bus_ram, .mmio_read = bus_mmio_read,
		.mmio_write = bus_mmio_write, .pio_in = bus_pio_in, .pio_out = bus_pio_out,
		.irq_ack = bus_irq_ack, .msr_read = bus_msr_read, .msr_write = bus_msr_write,
		.log = bus_log };
	v->cpu = jit_cpu_new(&v->bus, index);
	if (!v->cpu) {
		free(v);
		return err_set_errno(errno ? errno : ENOMEM, "cannot create JIT vCPU %d", index);
	}
	jit_cpu_set_ram(v->cpu, a->ram);
	jit_cpu_reset(v->cpu, index > 0);
	*out = v;
	return 0;
}

static void jit_vcpu_free(void *vcpu)
{
	struct jit_vcpu *v = vcpu;

	jit_cpu_free(v->cpu);
	free(v);
}

static enum hw_exit jit_run(void *vcpu)
{
	struct jit_vcpu *v = vcpu;
	enum jit_exit e = jit_cpu_run(v->cpu, JIT_BUDGET);
	uint64_t ic = jit_cpu_icount(v->cpu);

	atomic_fetch_add(&v->m->progress, ic - v->icount);
	v->icount = ic;
	if (log_on(LOG_CPU)) {
		struct jit_regs r;
		jit_cpu_get_regs(v->cpu, &r);
		log_cat_msg(LOG_CPU, "cpu %d: rip 0x%" PRIx64 " after %" PRIu64 " instructions",
			    v->index, r.rip, ic);
	}
	switch (e) {
	case JIT_EXIT_BUDGET: return HW_EXIT_AGAIN;
	case JIT_EXIT_HLT: return HW_EXIT_HLT;
	case JIT_EXIT_SHUTDOWN: return HW_EXIT_SHUTDOWN;
	default: return HW_EXIT_STOP;
	}
}

static int jit_get_regs(void *vcpu, struct hw_regs *r)
{
	struct jit_regs j;

	jit_cpu_get_regs(((struct jit_vcpu *)vcpu)->cpu, &j);
	memcpy(r->gpr, j.gpr, sizeof(r->gpr));
	r->rip = j.rip;
	r->rflags = j.rflags;
	return 0;
}

static int jit_set_regs(void *vcpu, const struct hw_regs *r)
{
	struct jit_regs j;

	memcpy(j.gpr, r->gpr, sizeof(j.gpr));
	j.rip = r->rip;
	j.rflags = r->rflags;
	jit_cpu_set_regs(((struct jit_vcpu *)vcpu)->cpu, &j);
	return 0;
}

static int jit_get_sregs(void *vcpu, struct hw_sregs *s)
{
	struct jit_sregs j;

	jit_cpu_get_sregs(((struct jit_vcpu *)vcpu)->cpu, &j);
	SREGS_COPY(*s, j);
	return 0;
}

static int jit_set_sregs(void *vcpu, const struct hw_sregs *s)
{
	struct jit_sregs j;
	int r;

	SREGS_COPY(j, *s);
	r = jit_cpu_set_sregs(((struct jit_vcpu *)vcpu)->cpu, &j);
	return r < 0 ? err_set(r, "the JIT refused the CPU state") : 0;
}

static void jit_irq_line(void *vcpu, bool level) { jit_cpu_irq(((struct jit_vcpu *)vcpu)->cpu, level); }
static void jit_nmi(void *vcpu) { jit_cpu_nmi(((struct jit_vcpu *)vcpu)->cpu); }
static void jit_init_ipi(void *vcpu) { jit_cpu_init(((struct jit_vcpu *)vcpu)->cpu); }
static void jit_sipi(void *vcpu, uint8_t vec) { jit_cpu_sipi(((struct jit_vcpu *)vcpu)->cpu, vec); }
static void jit_kick(void *vcpu) { jit_cpu_stop(((struct jit_vcpu *)vcpu)->cpu); }

static void jit_reset(void *vcpu)
{
	struct jit_vcpu *v = vcpu;

	jit_cpu_reset(v->cpu, v->index > 0);
	jit_cpu_flush_tlb(v->cpu);
	jit_cpu_invalidate(v->cpu, 0, ~0ull);
}

static int jit_get_extra(void *vcpu, struct hw_cpu_extra *x)
{
	struct jit_cpu *c = ((struct jit_vcpu *)vcpu)->cpu;
	struct jit_misc_state ms;

	memset(x, 0, sizeof(*x));
	jit_cpu_get_fxsave(c, x->fxsave);
	for (size_t i = 0; i < hw_n_saved_msrs && x->nmsrs < HW_CPU_MAX_MSRS; i++) {
		uint64_t v;
		if (jit_cpu_get_msr(c, hw_saved_msrs[i], &v) == 0)
			x->msrs[x->nmsrs++] = (struct hw_msr){ hw_saved_msrs[i], v };
	}
	jit_cpu_get_misc(c, &ms);
	memcpy(x->dr, ms.dr, sizeof(x->dr));
	x->xcr0 = ms.xcr0;
	x->halted = ms.halted;
	x->wait_sipi = ms.wait_sipi;
	x->shadow = ms.shadow;
	x->nmi_blocked = ms.nmi_blocked;
	x->nmi_pending = ms.nmi_pending;
	return 0;
}

static int jit_set_extra(void *vcpu, const struct hw_cpu_extra *x)
{
	struct jit_cpu *c = ((struct jit_vcpu *)vcpu)->cpu;
	struct jit_misc_state ms = { .xcr0 = x->xcr0, .halted = x->halted,
		.wait_sipi = x->wait_sipi, .shadow = x->shadow,
		.nmi_blocked = x->nmi_blocked, .nmi_pending = x->nmi_pending };

	jit_cpu_set_fxsave(c, x->fxsave);
	for (uint32_t i = 0; i < x->nmsrs && i < HW_CPU_MAX_MSRS; i++)
		if (jit_cpu_set_msr(c, x->msrs[i].index, x->msrs[i].value) < 0)
			LOG(LOG_UNIMP, "snapshot: MSR 0x%x not restored", x->msrs[i].index);
	memcpy(ms.dr, x->dr, sizeof(ms.dr));
	jit_cpu_set_misc(c, &ms);
	return 0;
}

const struct hw_accel_ops hw_accel_jit = {
	.name = "jit", .probe = jit_probe, .init = jit_init, .free = jit_free,
	.map = jit_map, .ram_written = jit_ram_written_op,
	.vcpu_new = jit_vcpu_new, .vcpu_free = jit_vcpu_free,
	.run = jit_run, .get_regs = jit_get_regs, .set_regs = jit_set_regs,
	.get_sregs = jit_get_sregs, .set_sregs = jit_set_sregs,
	.irq_line = jit_irq_line, .nmi = jit_nmi, .init_ipi = jit_init_ipi,
	.sipi = jit_sipi, .kick = jit_kick, .reset = jit_reset,
	.get_extra = jit_get_extra, .set_extra = jit_set_extra,
};

struct jit_cpu *machine_jit_cpu(struct machine *m, int cpu)
{
	if (m->accel != &hw_accel_jit || cpu < 0 || cpu >= m->ncpu || !m->vcpu[cpu].accel_vcpu)
		return NULL;
	return ((struct jit_vcpu *)m->vcpu[cpu].accel_vcpu)->cpu;
}
