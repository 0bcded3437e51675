/*
 * The vCPU: creation, power-on reset (Intel SDM vol. 3, 10.1), register
 * and MSR access for the machine, raising exceptions, and the signals
 * other threads send.  The run loop is in run.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "jit/internal.h"

static bool has_error_code(int v)
{
	return v == EXC_DF || (v >= EXC_TS && v <= EXC_PF) || v == EXC_AC;
}

_Noreturn void jit_raise(struct jit_cpu *cpu, int vector, uint32_t code)
{
	cpu->exc_vector = vector;
	cpu->exc_code = code;
	cpu->exc_has_code = has_error_code(vector);
	longjmp(cpu->unwind, 1);
}

_Noreturn void jit_raise_nocode(struct jit_cpu *cpu, int vector)
{
	jit_raise(cpu, vector, 0);
}

void jit_log(struct jit_cpu *cpu, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!cpu->bus.log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	cpu->bus.log(cpu->bus.opaque, cpu->index, buf);
}

_Noreturn void jit_ud(struct jit_cpu *cpu, const struct jit_insn *in)
{
	jit_log(cpu, "#UD at %#llx: map %d opcode %#x /%d", (unsigned long long)cpu->rip,
		in->map, in->op, in->reg & 7);
	jit_raise(cpu, EXC_UD, 0);
}

void jit_update_mode(struct jit_cpu *cpu)
{
	cpu->pm = cpu->cr0 & CR0_PE;
	cpu->lma = cpu->efer & EFER_LMA;
	cpu->mode64 = cpu->lma && cpu->seg[SEG_CS].l;
	cpu->code_size = cpu->mode64 ? 8 : cpu->seg[SEG_CS].db ? 4 : 2;
	cpu->stack_size = cpu->mode64 ? 8 : cpu->seg[SEG_SS].db ? 4 : 2;
	if (!cpu->pm)
		cpu->cpl = 0;
	else if (cpu->rflags & F_VM)
		cpu->cpl = 3;
}

static void seg_reset(struct jit_segment *s, uint16_t sel, uint64_t base, uint8_t type, bool sys)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = base;
	s->limit = 0xffff;
	s->type = type;
	s->present = 1;
	s->s = !sys;
}

/* Power-on state: SDM vol. 3, 10.1.1, table 10-1. */
void jit_cpu_reset(struct jit_cpu *cpu, bool ap_wait)
{
	memset(cpu->gpr, 0, sizeof(cpu->gpr));
	cpu->gpr[JIT_RDX] = 0x6f1;
	cpu->rip = 0xfff0;
	cpu->rflags = 2;
	for (int i = 0; i < 6; i++)
		seg_reset(&cpu->seg[i], 0, 0, 3, false);
	seg_reset(&cpu->seg[SEG_CS], 0xf000, 0xffff0000, 0xb, false);
	seg_reset(&cpu->seg[SEG_LDTR], 0, 0, 2, true);
	seg_reset(&cpu->seg[SEG_TR], 0, 0, 0xb, true);
	cpu->gdt = (struct jit_dtable){ 0, 0xffff };
	cpu->idt = (struct jit_dtable){ 0, 0xffff };
	cpu->cr0 = CR0_CD | CR0_NW | CR0_ET;
	cpu->cr2 = cpu->cr3 = cpu->cr4 = cpu->cr8 = cpu->efer = 0;
	memset(cpu->dr, 0, sizeof(cpu->dr));
	cpu->dr[6] = 0xffff0ff0;
	cpu->dr[7] = 0x400;
	cpu->dbg_held = cpu->dbg_now = 0;
	cpu->dbg_after_ss = false;
	jit_dbg_update(cpu);
	cpu->star = cpu->lstar = cpu->cstar = cpu->sfmask = cpu->kernel_gs_base = 0;
	cpu->sysenter_cs = cpu->sysenter_esp = cpu->sysenter_eip = 0;
	cpu->pat = 0x0007040600070406ull;
	cpu->misc_enable = 1;
	cpu->apic_base = 0xfee00000 | (cpu->index == 0 ? 0x100 : 0) | 0x800;
	cpu->mtrr_def_type = 0;
	memset(cpu->mtrr_fixed, 0, sizeof(cpu->mtrr_fixed));
	memset(cpu->mtrr_var, 0, sizeof(cpu->mtrr_var));
	jit_fpu_reset(cpu);
	cpu->cpl = 0;
	cpu->delivering = -1;
	cpu->halted = false;
	cpu->wait_sipi = ap_wait && cpu->index > 0;
	cpu->shadow = cpu->nmi_blocked = cpu->shutdown = false;
	jit_update_mode(cpu);
	jit_tlb_reset(cpu);
}

/* The host executes our arithmetic, SIMD and x87 operations (alu.c,
 * sse_ops.c, x87.c): it must have every feature we advertise. */
static bool host_capable(void)
{
	unsigned a, b, c, d;

	asm("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	if ((c & 0x00800201) != 0x00800201 || (d & 0x07808001) != 0x07808001)
		return false;	/* SSE3 SSSE3 POPCNT; FPU CMOV MMX FXSR SSE SSE2 */
	asm("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000001), "c"(0));
	return c & 0x20;	/* LZCNT */
}

/* VM_JIT_PROFILE=N: log the guest RIP every N million instructions
 * (a sampling profile of where the guest spends its time; -d unimp). */
static void profile_init(struct jit_cpu *cpu)
{
	const char *s = getenv("VM_JIT_PROFILE");
	unsigned long long n = s ? strtoull(s, NULL, 0) : 0;

	cpu->prof_period = n ? n * 1000000 : 0;
	cpu->prof_next = n ? cpu->prof_period : ~0ull;
	cpu->no_blocks = getenv("VM_JIT_NOBLOCKS") != NULL;
}

struct jit_cpu *jit_cpu_new(const struct jit_bus *bus, int index)
{
	struct jit_cpu *cpu;

	if (!host_capable()) {
		errno = ENOTSUP;
		return NULL;
	}
	if (!bus || !bus->ram || !bus->mmio_read || !bus->mmio_write || !bus->pio_in ||
	    !bus->pio_out) {
		errno = EINVAL;
		return NULL;
	}
	cpu = calloc(1, sizeof(*cpu));
	if (!cpu)
		return NULL;
	cpu->bcache = jit_bcache_new();
	if (!cpu->bcache) {
		free(cpu);
		return NULL;
	}
	cpu->bus = *bus;
	cpu->index = index;
	atomic_init(&cpu->sipi_vector, -1);
	jit_tsc_start();	/* for CPUID 15h (tsc.c) */
	jit_cpu_reset(cpu, true);
	profile_init(cpu);
	return cpu;
}

void jit_cpu_free(struct jit_cpu *cpu)
{
	if (!cpu)
		return;
	jit_track_detach(cpu);
	jit_bcache_free(cpu->bcache);
	free(cpu);
}

void jit_cpu_get_regs(const struct jit_cpu *cpu, struct jit_regs *regs)
{
	memcpy(regs->gpr, cpu->gpr, sizeof(regs->gpr));
	regs->rip = cpu->rip;
	regs->rflags = cpu->rflags;
}

void jit_cpu_set_regs(struct jit_cpu *cpu, const struct jit_regs *regs)
{
	memcpy(cpu->gpr, regs->gpr, sizeof(cpu->gpr));
	cpu->rip = regs->rip;
	cpu->rflags = (regs->rflags & 0x3f7fd7) | 2;
	jit_update_mode(cpu);
}

void jit_cpu_get_sregs(const struct jit_cpu *cpu, struct jit_sregs *s)
{
	s->es = cpu->seg[SEG_ES];
	s->cs = cpu->seg[SEG_CS];
	s->ss = cpu->seg[SEG_SS];
	s->ds = cpu->seg[SEG_DS];
	s->fs = cpu->seg[SEG_FS];
	s->gs = cpu->seg[SEG_GS];
	s->ldt = cpu->seg[SEG_LDTR];
	s->tr = cpu->seg[SEG_TR];
	s->gdt = cpu->gdt;
	s->idt = cpu->idt;
	s->cr0 = cpu->cr0;
	s->cr2 = cpu->cr2;
	s->cr3 = cpu->cr3;
	s->cr4 = cpu->cr4;
	s->cr8 = cpu->cr8;
	s->efer = cpu->efer;
	s->apic_base = cpu->apic_base;
}

int jit_cpu_set_sregs(struct jit_cpu *cpu, const struct jit_sregs *s)
{
	if (((s->cr0 & CR0_PG) && !(s->cr0 & CR0_PE)) ||
	    ((s->efer & EFER_LMA) && (!(s->cr0 & CR0_PG) || !(s->cr4 & CR4_PAE))) ||
	    (s->cs.l && s->cs.db))
		return -EINVAL;
	cpu->seg[SEG_ES] = s->es;
	cpu->seg[SEG_CS] = s->cs;
	cpu->seg[SEG_SS] = s->ss;
	cpu->seg[SEG_DS] = s->ds;
	cpu->seg[SEG_FS] = s->fs;
	cpu->seg[SEG_GS] = s->gs;
	cpu->seg[SEG_LDTR] = s->ldt;
	cpu->seg[SEG_TR] = s->tr;
	cpu->gdt = s->gdt;
	cpu->idt = s->idt;
	cpu->cr0 = s->cr0 | CR0_ET;
	cpu->cr2 = s->cr2;
	cpu->cr3 = s->cr3;
	cpu->cr4 = s->cr4;
	cpu->cr8 = s->cr8;
	cpu->efer = s->efer;
	cpu->apic_base = s->apic_base;
	cpu->cpl = (s->cr0 & CR0_PE) ? s->cs.selector & 3 : 0;
	cpu->wait_sipi = false;
	jit_update_mode(cpu);
	jit_dbg_update(cpu);	/* flushes the TLB too */
	return 0;
}

int jit_cpu_get_msr(struct jit_cpu *cpu, uint32_t msr, uint64_t *val)
{
	return jit_msr_read(cpu, msr, val) < 0 ? -ENOENT : 0;
}

int jit_cpu_set_msr(struct jit_cpu *cpu, uint32_t msr, uint64_t val)
{
	return jit_msr_write(cpu, msr, val) < 0 ? -ENOENT : 0;
}

uint64_t jit_cpu_icount(const struct jit_cpu *cpu)
{
	return cpu->icount;
}

void jit_cpu_stats(const struct jit_cpu *cpu, struct jit_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->icount = cpu->icount;
	s->decodes = cpu->stat_decodes;
	s->blocks = cpu->stat_blocks;
	s->translated = cpu->stat_translated;
	s->translated_runs = cpu->stat_tr_runs;
	s->tr_calls = cpu->stat_tr_calls;
	s->tlb_fills = cpu->stat_tlb_fills;
	s->rechecks = cpu->stat_rechecks;
	s->code_writes = cpu->stat_code_writes;
	if (cpu->bcache)
		jit_bcache_stats(cpu->bcache, s);
}

bool jit_cpu_halted(const struct jit_cpu *cpu)
{
	return cpu->halted || cpu->wait_sipi;
}

void jit_cpu_invalidate(struct jit_cpu *cpu, uint64_t gpa, uint64_t len)
{
	jit_bcache_flush(cpu->bcache);
}

void jit_cpu_flush_tlb(struct jit_cpu *cpu)
{
	jit_tlb_flush(cpu, true);
}

static void signal_event(struct jit_cpu *cpu)
{
	atomic_store_explicit(&cpu->events, 1, memory_order_release);
}

void jit_cpu_irq(struct jit_cpu *cpu, bool level)
{
	atomic_store_explicit(&cpu->irq_level, level, memory_order_release);
}

void jit_cpu_nmi(struct jit_cpu *cpu)
{
	atomic_store(&cpu->nmi_pending, true);
	signal_event(cpu);
}

void jit_cpu_init(struct jit_cpu *cpu)
{
	atomic_store(&cpu->init_pending, true);
	signal_event(cpu);
}

void jit_cpu_sipi(struct jit_cpu *cpu, uint8_t vector)
{
	atomic_store(&cpu->sipi_vector, vector);
	signal_event(cpu);
}

void jit_cpu_stop(struct jit_cpu *cpu)
{
	atomic_store(&cpu->stop, true);
	signal_event(cpu);
}
