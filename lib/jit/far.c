/*
 * Far control transfers: JMP/CALL far (direct, indirect, through call
 * gates), RET far, IRET, INT n/INT3/INTO/INT1, SYSCALL/SYSRET and
 * SYSENTER/SYSEXIT (Intel SDM vol. 2 for each instruction's pseudo-code;
 * vol. 3, 5.8 "Privilege level checking when transferring program control
 * between code segments").  JMP/CALL to a TSS or task gate and IRET with
 * NT set switch tasks (task.c).
 */
#include "jit/internal.h"

static bool is_code(uint64_t d)
{
	return ((d >> 43) & 3) == 3;
}

/* Check a code descriptor as the direct target of JMP/CALL far. */
static void check_direct_code(struct jit_cpu *cpu, uint16_t sel, uint64_t d)
{
	unsigned dpl = (d >> 45) & 3, rpl = sel & 3;

	if (d & (1ull << 42)) {		/* conforming */
		if (dpl > (unsigned)cpu->cpl)
			jit_raise(cpu, EXC_GP, sel & 0xfffc);
	} else if (rpl > (unsigned)cpu->cpl || dpl != (unsigned)cpu->cpl) {
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	}
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	if (cpu->lma && (d & (1ull << 53)) && (d & (1ull << 54)))
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
}

/* CALL far through a call gate to a more privileged level: new stack from
 * the TSS, old SS:SP and return address pushed there. */
static void call_gate_inner(struct jit_cpu *cpu, uint16_t sel, uint64_t cd, uint64_t off,
			    unsigned gsize)
{
	unsigned dpl = (cd >> 45) & 3;
	const struct jit_segment *tr = &cpu->seg[SEG_TR];
	uint64_t sp, sd = 0, base = 0, mask = ~0ull, oss = cpu->seg[SEG_SS].selector;
	uint64_t orsp = cpu->gpr[JIT_RSP];
	uint16_t ss;

	if (cpu->lma) {
		sp = lin_read(cpu, tr->base + 4 + dpl * 8, 8, ACC_R | ACC_SYS);
		ss = (uint16_t)dpl;
	} else {
		sp = lin_read(cpu, (uint32_t)(tr->base + 4 + dpl * 8), 4, ACC_R | ACC_SYS);
		ss = (uint16_t)lin_read(cpu, (uint32_t)(tr->base + 8 + dpl * 8), 2, ACC_R | ACC_SYS);
		if (!(ss & 0xfffc) || (ss & 3) != dpl)
			jit_raise(cpu, EXC_TS, ss & 0xfffc);
		sd = jit_read_desc(cpu, ss, EXC_TS);
		base = ((sd >> 16) & 0xffffff) | ((sd >> 32) & 0xff000000);
		mask = (sd & (1ull << 54)) ? 0xffffffff : 0xffff;
	}
	sp &= mask;
	sp -= gsize;
	lin_write(cpu, base + (sp & mask), gsize, oss, ACC_W | ACC_SYS);
	sp -= gsize;
	lin_write(cpu, base + (sp & mask), gsize, orsp, ACC_W | ACC_SYS);
	sp -= gsize;
	lin_write(cpu, base + (sp & mask), gsize, cpu->seg[SEG_CS].selector, ACC_W | ACC_SYS);
	sp -= gsize;
	lin_write(cpu, base + (sp & mask), gsize, cpu->next_rip, ACC_W | ACC_SYS);
	if (cpu->lma) {
		jit_seg_null(&cpu->seg[SEG_SS], ss);
		cpu->seg[SEG_SS].dpl = (uint8_t)dpl;
	} else {
		jit_seg_from_desc(&cpu->seg[SEG_SS], ss, sd);
	}
	cpu->gpr[JIT_RSP] = (cpu->gpr[JIT_RSP] & ~mask) | (sp & mask);
	jit_load_cs(cpu, sel, cd, (int)dpl);
	cpu->next_rip = off;
}

static void through_gate(struct jit_cpu *cpu, uint16_t gsel, uint64_t g, bool call,
			 unsigned opsize)
{
	uint64_t hi = 0, cd, off;
	unsigned gdpl = (g >> 45) & 3, gsize = ((g >> 40) & 8) ? (cpu->lma ? 8 : 4) : 2;
	uint16_t sel = (uint16_t)(g >> 16);

	if (gdpl < (unsigned)cpu->cpl || gdpl < (gsel & 3u))
		jit_raise(cpu, EXC_GP, gsel & 0xfffc);
	if (!(g & (1ull << 47)))
		jit_raise(cpu, EXC_NP, gsel & 0xfffc);
	if (cpu->lma)
		jit_read_desc_sys(cpu, gsel, &hi, EXC_GP);
	off = (g & 0xffff) | ((g >> 32) & 0xffff0000) | (hi << 32);
	if (gsize == 2)
		off &= 0xffff;
	if (!(sel & 0xfffc))
		jit_raise(cpu, EXC_GP, 0);
	cd = jit_read_desc(cpu, sel, EXC_GP);
	if (!is_code(cd) || ((cd >> 45) & 3) > (unsigned)cpu->cpl)
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (!(cd & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	if (call && !(cd & (1ull << 42)) && ((cd >> 45) & 3) < (unsigned)cpu->cpl) {
		call_gate_inner(cpu, sel, cd, off, gsize);
		return;
	}
	if (call) {
		uint64_t rsp = push_at(cpu, cpu->gpr[JIT_RSP], gsize, cpu->seg[SEG_CS].selector);

		rsp = push_at(cpu, rsp, gsize, cpu->next_rip);
		cpu->gpr[JIT_RSP] = rsp;
	}
	jit_load_cs(cpu, sel, cd, cpu->cpl);
	cpu->next_rip = off;
	(void)opsize;
}

/* JMP/CALL far to a TSS descriptor or a task gate: a task switch
 * (task.c), with the descriptor's (or gate's) DPL checked here. */
static void far_task(struct jit_cpu *cpu, uint16_t sel, uint64_t d, bool call)
{
	unsigned dpl = (d >> 45) & 3;
	uint16_t tss = sel;

	if (dpl < (unsigned)cpu->cpl || dpl < (sel & 3u))
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	if (((d >> 40) & 0x1f) == 0x05)
		d = jit_task_gate_tss(cpu, d, &tss);
	jit_task_switch(cpu, tss, d, call ? JIT_TASK_CALL : JIT_TASK_JMP, false, 0,
			(uint32_t)cpu->next_rip);
}

/* JMP/CALL far to sel:off with operand size opsize. */
static void far_transfer(struct jit_cpu *cpu, uint16_t sel, uint64_t off, unsigned opsize,
			 bool call)
{
	uint64_t d;
	unsigned type;

	if (!cpu->pm || (cpu->rflags & F_VM)) {
		if (call) {
			uint64_t rsp = push_at(cpu, cpu->gpr[JIT_RSP], opsize,
					       cpu->seg[SEG_CS].selector);

			cpu->gpr[JIT_RSP] = push_at(cpu, rsp, opsize, cpu->next_rip);
		}
		jit_seg_real(&cpu->seg[SEG_CS], sel);
		cpu->next_rip = off & size_mask(opsize);
		return;
	}
	if (!(sel & 0xfffc))
		jit_raise(cpu, EXC_GP, 0);
	d = jit_read_desc(cpu, sel, EXC_GP);
	type = (d >> 40) & 0x1f;
	if (is_code(d)) {
		check_direct_code(cpu, sel, d);
		if (call) {
			uint64_t rsp = push_at(cpu, cpu->gpr[JIT_RSP], opsize,
					       cpu->seg[SEG_CS].selector);

			rsp = push_at(cpu, rsp, opsize, cpu->next_rip);
			cpu->gpr[JIT_RSP] = rsp;
		}
		jit_load_cs(cpu, sel, d, cpu->cpl);
		cpu->next_rip = off & size_mask(opsize);
	} else if (type == 0x04 || type == 0x0c) {
		through_gate(cpu, sel, d, call, opsize);
	} else if ((type == 0x05 || type == 0x09) && !cpu->lma) {
		far_task(cpu, sel, d, call);
	} else {
		jit_log(cpu, "far %s to descriptor type %#x not supported",
			call ? "call" : "jmp", type);
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	}
}

/* 9A CALL far ptr, EA JMP far ptr */
void jit_op_far_direct(struct jit_cpu *cpu, const struct jit_insn *in)
{
	far_transfer(cpu, in->imm2, in->imm, in->opsize, in->op == 0x9a);
}

/* FF /3 CALL far m16:16/32/64, FF /5 JMP far */
void jit_op_far_indirect(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t ea, off;
	uint16_t sel;

	if (in->mod == 3)
		jit_ud(cpu, in);
	ea = insn_ea(cpu, in);
	off = mem_read(cpu, in->seg, ea, in->opsize);
	sel = (uint16_t)mem_read(cpu, in->seg, (ea + in->opsize) & size_mask(in->addrsize), 2);
	far_transfer(cpu, sel, off, in->opsize, (in->reg & 7) == 3);
}

/* Check the SS popped by a return to the outer level cpl; returns its
 * descriptor (0 for the null SS 64-bit mode allows below CPL 3). */
static uint64_t check_outer_ss(struct jit_cpu *cpu, uint16_t ss, int cpl, bool lma64)
{
	uint64_t d;

	if (!(ss & 0xfffc) && lma64 && cpl != 3)
		return 0;
	if (!(ss & 0xfffc))
		jit_raise(cpu, EXC_GP, 0);
	d = jit_read_desc(cpu, ss, EXC_GP);
	if ((ss & 3u) != (unsigned)cpl || ((d >> 45) & 3) != (unsigned)cpl ||
	    ((d >> 40) & 0x1a) != 0x12)
		jit_raise(cpu, EXC_GP, ss & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_SS, ss & 0xfffc);
	return d;
}

static void load_outer_ss(struct jit_cpu *cpu, uint16_t ss, uint64_t d, int cpl, uint64_t sp)
{
	if (!d) {
		jit_seg_null(&cpu->seg[SEG_SS], ss);
		cpu->seg[SEG_SS].dpl = (uint8_t)cpl;
	} else {
		jit_seg_from_desc(&cpu->seg[SEG_SS], ss, d);
	}
	cpu->gpr[JIT_RSP] = sp;
}

static uint64_t check_return_cs(struct jit_cpu *cpu, uint16_t sel)
{
	uint64_t d;
	unsigned dpl, rpl = sel & 3;

	if (!(sel & 0xfffc))
		jit_raise(cpu, EXC_GP, 0);
	d = jit_read_desc(cpu, sel, EXC_GP);
	dpl = (d >> 45) & 3;
	if (!is_code(d) || rpl < (unsigned)cpu->cpl)
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if ((d & (1ull << 42)) ? dpl > rpl : dpl != rpl)
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	return d;
}

/* CA RETF imm16, CB RETF */
void jit_op_retf(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t imm = in->op == 0xca ? in->imm : 0, off = pop_peek(cpu, 0, size), d;
	uint16_t sel = (uint16_t)pop_peek(cpu, size, 2);
	unsigned rpl = sel & 3;

	if (!cpu->pm || (cpu->rflags & F_VM)) {
		cpu->gpr[JIT_RSP] = sp_add(cpu, 2 * size + imm);
		jit_seg_real(&cpu->seg[SEG_CS], sel);
		cpu->next_rip = off & size_mask(size);
		return;
	}
	d = check_return_cs(cpu, sel);
	if (rpl > (unsigned)cpu->cpl) {
		uint64_t sp = pop_peek(cpu, 2 * size + imm, size);
		uint16_t ss = (uint16_t)pop_peek(cpu, 3 * size + imm, 2);
		bool to64 = cpu->lma && ((d >> 53) & 1);
		uint64_t sd = check_outer_ss(cpu, ss, (int)rpl, to64);

		jit_load_cs(cpu, sel, d, (int)rpl);
		load_outer_ss(cpu, ss, sd, (int)rpl, sp);
		jit_update_mode(cpu);
		cpu->gpr[JIT_RSP] = sp_add(cpu, imm);
		jit_fix_data_segs(cpu);
	} else {
		cpu->gpr[JIT_RSP] = sp_add(cpu, 2 * size + imm);
		jit_load_cs(cpu, sel, d, cpu->cpl);
	}
	cpu->next_rip = off & size_mask(cpu->mode64 ? 8 : size);
}

/* The flags IRET may write (SDM vol. 2, IRET: depends on CPL and IOPL). */
static void iret_flags(struct jit_cpu *cpu, uint64_t v, unsigned size, int old_cpl)
{
	uint64_t mask = F_ARITH | F_TF | F_DF | F_NT | F_RF | F_AC | F_ID | F_VIF | F_VIP;

	if (old_cpl == 0)
		mask |= F_IOPL;
	if (old_cpl <= (int)((cpu->rflags & F_IOPL) >> 12))
		mask |= F_IF;
	if (size == 2)
		mask &= 0xffff;
	else if (size == 4 && !cpu->pm)
		mask &= ~(uint64_t)(F_VIF | F_VIP);
	cpu->rflags = (cpu->rflags & ~mask) | (v & mask) | 2;
}

static void iret_real(struct jit_cpu *cpu, unsigned size)
{
	uint64_t ip = pop_peek(cpu, 0, size), fl;
	uint16_t cs = (uint16_t)pop_peek(cpu, size, 2);

	fl = pop_peek(cpu, 2 * size, size);
	cpu->gpr[JIT_RSP] = sp_add(cpu, 3 * size);
	jit_seg_real(&cpu->seg[SEG_CS], cs);
	if (size == 2)
		fl = (cpu->rflags & ~0xffffull) | (fl & 0xffff);
	cpu->rflags = (fl & ~(uint64_t)(F_VM | F_VIP | F_VIF)) | 2 |
		      (cpu->rflags & (F_VM | F_VIP | F_VIF));
	cpu->next_rip = ip & size_mask(size);
}

/* CF: IRET/IRETD/IRETQ */
void jit_op_iret(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t ip, fl, d, sp = 0, sd = 0;
	uint16_t cs, ss = 0;
	int old_cpl = cpu->cpl;
	bool outer, pop_ss;

	cpu->nmi_blocked = false;
	if (!cpu->pm) {
		iret_real(cpu, size);
		return;
	}
	if (cpu->rflags & F_VM) {
		if (((cpu->rflags & F_IOPL) >> 12) < 3)
			jit_raise(cpu, EXC_GP, 0);
		iret_real(cpu, size);
		return;
	}
	if ((cpu->rflags & F_NT) && !cpu->lma) {
		uint16_t link = (uint16_t)lin_read(cpu, (uint32_t)cpu->seg[SEG_TR].base, 2,
						   ACC_R | ACC_SYS);

		if (link & 4)
			jit_raise(cpu, EXC_TS, link & 0xfffc);
		d = jit_read_desc(cpu, link, EXC_TS);
		jit_task_switch(cpu, link, d, JIT_TASK_IRET, false, 0, (uint32_t)cpu->next_rip);
		return;
	}
	ip = pop_peek(cpu, 0, size);
	cs = (uint16_t)pop_peek(cpu, size, 2);
	fl = pop_peek(cpu, 2 * size, size);
	if ((fl & F_VM) && cpu->cpl == 0 && !cpu->lma) {
		jit_log(cpu, "IRET to virtual-8086 mode not supported");
		jit_raise(cpu, EXC_GP, 0);
	}
	d = check_return_cs(cpu, cs);
	outer = (cs & 3u) > (unsigned)cpu->cpl;
	pop_ss = outer || (cpu->lma && size == 8);
	if (pop_ss) {
		sp = pop_peek(cpu, 3 * size, size);
		ss = (uint16_t)pop_peek(cpu, 4 * size, 2);
	}
	if (cpu->lma && ((d >> 53) & 1) && !canonical(ip))
		jit_raise(cpu, EXC_GP, 0);
	if (pop_ss)
		sd = check_outer_ss(cpu, ss, cs & 3, cpu->lma && ((d >> 53) & 1));
	jit_load_cs(cpu, cs, d, cs & 3);
	if (pop_ss)
		load_outer_ss(cpu, ss, sd, cs & 3, sp);
	else
		cpu->gpr[JIT_RSP] = sp_add(cpu, 3 * size);
	jit_update_mode(cpu);
	iret_flags(cpu, fl, size, old_cpl);
	if (outer)
		jit_fix_data_segs(cpu);
	cpu->next_rip = ip & size_mask(cpu->mode64 ? 8 : size);
}

/* CC INT3, CD INT n, CE INTO, F1 INT1 */
void jit_op_int(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if ((cpu->rflags & F_VM) && ((cpu->rflags & F_IOPL) >> 12) < 3 && in->op == 0xcd)
		jit_raise(cpu, EXC_GP, 0);
	if (in->op == 0xce && !(cpu->rflags & F_OF))
		return;
	switch (in->op) {
	case 0xcc: jit_deliver(cpu, EXC_BP, INT_SOFT, false, 0, cpu->next_rip); break;
	case 0xcd: jit_deliver(cpu, (int)(in->imm & 0xff), INT_SOFT, false, 0, cpu->next_rip); break;
	case 0xce: jit_deliver(cpu, EXC_OF, INT_SOFT, false, 0, cpu->next_rip); break;
	default: jit_deliver(cpu, EXC_DB, INT_ICEBP, false, 0, cpu->next_rip); break;
	}
	cpu->next_rip = cpu->rip;
}
