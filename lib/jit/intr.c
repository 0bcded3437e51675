/*
 * Interrupt and exception delivery, and IRET (Intel SDM vol. 3, chapter 6
 * "Interrupt and Exception Handling": 6.12 for protected mode, 6.14 for
 * IA-32e mode, 6.15 for the double-fault rules; 20.1.4 for real mode;
 * vol. 2 "INT n", "IRET").
 *
 * Delivery reads the gate and the target code descriptor, builds the
 * stack frame in memory, and only then changes registers, so a fault
 * while delivering (a missing gate, a kernel stack that is not mapped)
 * leaves the state of the interrupted code and is itself delivered -
 * turned into #DF when the two faults are contributory or page faults,
 * and into a shutdown when the double fault cannot be delivered.
 */
#include "jit/internal.h"

static bool contributory(int v)
{
	return v == EXC_DE || (v >= EXC_TS && v <= EXC_GP);
}

/* Where a frame is being built: a stack not yet committed. */
struct frame {
	uint64_t base, sp, mask;
	unsigned acc;
};

static void fpush(struct jit_cpu *cpu, struct frame *f, unsigned size, uint64_t v)
{
	f->sp = (f->sp & ~f->mask) | ((f->sp - size) & f->mask);
	lin_write(cpu, cpu->lma ? f->base + (f->sp & f->mask)
				: (uint32_t)(f->base + (f->sp & f->mask)), size, v, f->acc);
}

static void deliver_real(struct jit_cpu *cpu, int vector, uint64_t ret_rip)
{
	struct frame f = {
		cpu->seg[SEG_SS].base, cpu->gpr[JIT_RSP], 0xffff, ACC_W,
	};
	uint64_t ivt = cpu->idt.base + vector * 4u;
	uint16_t ip, cs;

	if (vector * 4u + 3 > cpu->idt.limit)
		jit_raise(cpu, EXC_GP, 0);
	ip = (uint16_t)lin_read(cpu, ivt, 2, ACC_R);
	cs = (uint16_t)lin_read(cpu, ivt + 2, 2, ACC_R);
	fpush(cpu, &f, 2, cpu->rflags);
	fpush(cpu, &f, 2, cpu->seg[SEG_CS].selector);
	fpush(cpu, &f, 2, ret_rip);
	cpu->gpr[JIT_RSP] = (cpu->gpr[JIT_RSP] & ~0xffffull) | f.sp;
	cpu->rflags &= ~(uint64_t)(F_IF | F_TF | F_AC | F_RF);
	jit_seg_real(&cpu->seg[SEG_CS], cs);
	cpu->rip = ip;
}

/* The stack for privilege level dpl from the TSS (32-bit/16-bit TSS). */
static void tss_stack(struct jit_cpu *cpu, unsigned dpl, uint16_t *ss, uint64_t *sp)
{
	const struct jit_segment *tr = &cpu->seg[SEG_TR];
	bool tss32 = tr->type & 8;
	unsigned off = tss32 ? 4 + dpl * 8 : 2 + dpl * 4;

	if (off + (tss32 ? 5 : 3) > tr->limit)
		jit_raise(cpu, EXC_TS, tr->selector & 0xfffc);
	*sp = lin_read(cpu, (uint32_t)(tr->base + off), tss32 ? 4 : 2, ACC_R | ACC_SYS);
	*ss = (uint16_t)lin_read(cpu, (uint32_t)(tr->base + off + (tss32 ? 4 : 2)), 2,
				 ACC_R | ACC_SYS);
}

/* Checks of a new inner stack segment (SDM vol. 3, 6.12.1: #TS). */
static uint64_t check_inner_ss(struct jit_cpu *cpu, uint16_t ss, unsigned dpl)
{
	uint64_t d;

	if (!(ss & 0xfffc))
		jit_raise(cpu, EXC_TS, 0);
	d = jit_read_desc(cpu, ss, EXC_TS);
	if ((ss & 3) != dpl || ((d >> 45) & 3) != dpl || ((d >> 40) & 0x1a) != 0x12)
		jit_raise(cpu, EXC_TS, ss & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_SS, ss & 0xfffc);
	return d;
}

/* Gate descriptor and target code segment checks shared by both modes;
 * returns the code descriptor. */
static uint64_t gate_target(struct jit_cpu *cpu, uint16_t sel, uint32_t ext)
{
	uint64_t d;
	unsigned dpl;

	if (!(sel & 0xfffc))
		jit_raise(cpu, EXC_GP, ext);
	d = jit_read_desc(cpu, sel, EXC_GP);
	dpl = (d >> 45) & 3;
	if (((d >> 43) & 3) != 3 || dpl > (unsigned)cpu->cpl)
		jit_raise(cpu, EXC_GP, (sel & 0xfffc) | ext);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_NP, (sel & 0xfffc) | ext);
	return d;
}

static void deliver_prot(struct jit_cpu *cpu, int vector, int kind, bool has_code,
			 uint32_t code, uint64_t ret_rip)
{
	uint32_t ext = kind == INT_SOFT ? 0 : 1, idt_code = vector * 8u + 2 + ext;
	uint64_t g, cd, sd = 0, old_flags = cpu->rflags;
	unsigned type, dpl, size;
	uint16_t sel, ss = cpu->seg[SEG_SS].selector;
	struct frame f;
	bool inner;

	if (vector * 8u + 7 > cpu->idt.limit)
		jit_raise(cpu, EXC_GP, idt_code);
	g = lin_read(cpu, (uint32_t)(cpu->idt.base + vector * 8u), 8, ACC_R | ACC_SYS);
	type = (g >> 40) & 0x1f;
	if (type != 0x05 && type != 0x06 && type != 0x07 && type != 0x0e && type != 0x0f) {
		jit_log(cpu, "interrupt %d through unsupported gate type %#x", vector, type);
		jit_raise(cpu, EXC_GP, idt_code);
	}
	if (kind == INT_SOFT && ((g >> 45) & 3) < (unsigned)cpu->cpl)
		jit_raise(cpu, EXC_GP, idt_code);
	if (!(g & (1ull << 47)))
		jit_raise(cpu, EXC_NP, idt_code);
	if (type == 0x05) {	/* task gate (task.c) */
		uint16_t tss;
		uint64_t td = jit_task_gate_tss(cpu, g, &tss);

		jit_task_switch(cpu, tss, td, JIT_TASK_INT, has_code, code, (uint32_t)ret_rip);
		return;
	}
	sel = (uint16_t)(g >> 16);
	cd = gate_target(cpu, sel, ext);
	dpl = (cd >> 45) & 3;
	inner = !(cd & (1ull << 42)) && dpl < (unsigned)cpu->cpl;
	size = (type & 8) ? 4 : 2;
	if (cpu->rflags & F_VM) {
		jit_log(cpu, "interrupt %d from virtual-8086 mode is not supported", vector);
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	}
	f.acc = ACC_W | ACC_SYS;
	if (inner) {
		uint64_t sp;

		tss_stack(cpu, dpl, &ss, &sp);
		sd = check_inner_ss(cpu, ss, dpl);
		f.base = ((sd >> 16) & 0xffffff) | ((sd >> 32) & 0xff000000);
		f.mask = (sd & (1ull << 54)) ? 0xffffffff : 0xffff;
		f.sp = sp;
		fpush(cpu, &f, size, cpu->seg[SEG_SS].selector);
		fpush(cpu, &f, size, cpu->gpr[JIT_RSP]);
	} else {
		f.base = cpu->seg[SEG_SS].base;
		f.mask = sp_mask(cpu);
		f.sp = cpu->gpr[JIT_RSP];
		if (cpu->cpl == 3)
			f.acc = ACC_W | ACC_USER;
	}
	fpush(cpu, &f, size, old_flags);
	fpush(cpu, &f, size, cpu->seg[SEG_CS].selector);
	fpush(cpu, &f, size, ret_rip);
	if (has_code)
		fpush(cpu, &f, size, code);
	/* commit */
	if (inner) {
		jit_seg_from_desc(&cpu->seg[SEG_SS], ss, sd);
		cpu->cpl = (int)dpl;
	}
	cpu->gpr[JIT_RSP] = (cpu->gpr[JIT_RSP] & ~f.mask) | (f.sp & f.mask);
	jit_load_cs(cpu, sel, cd, inner ? (int)dpl : cpu->cpl);
	cpu->rip = ((g & 0xffff) | ((g >> 32) & 0xffff0000)) & (size == 2 ? 0xffff : 0xffffffff);
	cpu->rflags &= ~(uint64_t)(F_TF | F_NT | F_VM | F_RF);
	if (!(type & 1))
		cpu->rflags &= ~(uint64_t)F_IF;
}

static void deliver_long(struct jit_cpu *cpu, int vector, int kind, bool has_code,
			 uint32_t code, uint64_t ret_rip)
{
	uint32_t ext = kind == INT_SOFT ? 0 : 1, idt_code = vector * 16u + 2 + ext;
	uint64_t lo, hi, cd, rsp;
	unsigned type, dpl, ist;
	uint16_t sel;
	struct frame f = { 0, 0, ~0ull, ACC_W | ACC_SYS };
	bool inner;

	if (vector * 16u + 15 > cpu->idt.limit)
		jit_raise(cpu, EXC_GP, idt_code);
	lo = lin_read(cpu, cpu->idt.base + vector * 16u, 8, ACC_R | ACC_SYS);
	hi = lin_read(cpu, cpu->idt.base + vector * 16u + 8, 8, ACC_R | ACC_SYS);
	type = (lo >> 40) & 0x1f;
	if (type != 0x0e && type != 0x0f)
		jit_raise(cpu, EXC_GP, idt_code);
	if (kind == INT_SOFT && ((lo >> 45) & 3) < (unsigned)cpu->cpl)
		jit_raise(cpu, EXC_GP, idt_code);
	if (!(lo & (1ull << 47)))
		jit_raise(cpu, EXC_NP, idt_code);
	sel = (uint16_t)(lo >> 16);
	cd = gate_target(cpu, sel, ext);
	if (!((cd >> 53) & 1) || ((cd >> 54) & 1))
		jit_raise(cpu, EXC_GP, (sel & 0xfffc) | ext);
	dpl = (cd >> 45) & 3;
	inner = !(cd & (1ull << 42)) && dpl < (unsigned)cpu->cpl;
	ist = (lo >> 32) & 7;
	rsp = cpu->gpr[JIT_RSP];
	if (inner || ist) {
		const struct jit_segment *tr = &cpu->seg[SEG_TR];
		unsigned off = ist ? 36 + (ist - 1) * 8 : 4 + dpl * 8;

		if (off + 7 > tr->limit)
			jit_raise(cpu, EXC_TS, tr->selector & 0xfffc);
		rsp = lin_read(cpu, tr->base + off, 8, ACC_R | ACC_SYS);
	}
	if (!inner && cpu->cpl == 3)
		f.acc = ACC_W | ACC_USER;
	f.sp = rsp & ~0xfull;
	fpush(cpu, &f, 8, cpu->seg[SEG_SS].selector);
	fpush(cpu, &f, 8, cpu->gpr[JIT_RSP]);
	fpush(cpu, &f, 8, cpu->rflags);
	fpush(cpu, &f, 8, cpu->seg[SEG_CS].selector);
	fpush(cpu, &f, 8, ret_rip);
	if (has_code)
		fpush(cpu, &f, 8, code);
	if (inner) {
		jit_seg_null(&cpu->seg[SEG_SS], (uint16_t)dpl);
		cpu->seg[SEG_SS].dpl = (uint8_t)dpl;
	}
	cpu->gpr[JIT_RSP] = f.sp;
	jit_load_cs(cpu, sel, cd, inner ? (int)dpl : cpu->cpl);
	cpu->rip = (lo & 0xffff) | ((lo >> 32) & 0xffff0000) | (hi << 32);
	cpu->rflags &= ~(uint64_t)(F_TF | F_NT | F_VM | F_RF);
	if (!(type & 1))
		cpu->rflags &= ~(uint64_t)F_IF;
}

/* Deliver vector; ret_rip is the RIP pushed (the faulting instruction for
 * faults, the next one for traps and software interrupts). */
void jit_deliver(struct jit_cpu *cpu, int vector, int kind, bool has_code, uint32_t code,
		 uint64_t ret_rip)
{
	int prev = cpu->delivering;

	if (prev >= 0 && kind == INT_EXC) {
		if (prev == EXC_DF) {
			cpu->shutdown = true;
			cpu->delivering = -1;
			return;
		}
		if ((contributory(prev) && contributory(vector)) ||
		    (prev == EXC_PF && (vector == EXC_PF || contributory(vector)))) {
			vector = EXC_DF;
			has_code = true;
			code = 0;
		}
	}
	cpu->delivering = kind == INT_EXC ? vector : EXC_NMI + 100;
	if (kind == INT_NMI)
		cpu->nmi_blocked = true;
	if (!cpu->pm)
		deliver_real(cpu, vector, ret_rip);
	else if (cpu->lma)
		deliver_long(cpu, vector, kind, has_code, code, ret_rip);
	else
		deliver_prot(cpu, vector, kind, has_code, code, ret_rip);
	cpu->delivering = -1;
	cpu->halted = false;
}
