/*
 * Near control transfer and the stack: Jcc, JMP, CALL, RET, LOOP/JrCXZ,
 * PUSH/POP of registers, memory, immediates and segment registers,
 * PUSHA/POPA, PUSHF/POPF, ENTER/LEAVE (Intel SDM vol. 2; vol. 1, 6.2-6.5
 * for the stack).  Every memory access is made before RSP changes, so a
 * fault leaves the stack pointer as it was.
 */
#include "jit/internal.h"

/* 70-7F, 0F 80-8F: Jcc rel */
void jit_op_jcc(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if (jit_cond(cpu, in->op & 15))
		set_rip(cpu, in, cpu->next_rip + in->imm);
}

/* E9 JMP rel32/16, EB JMP rel8 */
void jit_op_jmp(struct jit_cpu *cpu, const struct jit_insn *in)
{
	set_rip(cpu, in, cpu->next_rip + in->imm);
}

/* E8: CALL rel */
void jit_op_call(struct jit_cpu *cpu, const struct jit_insn *in)
{
	push(cpu, in->opsize, cpu->next_rip);
	set_rip(cpu, in, cpu->next_rip + in->imm);
}

/* C2/C3: RET [imm16] */
void jit_op_ret(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t target = pop_peek(cpu, 0, in->opsize);

	cpu->gpr[JIT_RSP] = sp_add(cpu, in->opsize + (in->op == 0xc2 ? in->imm : 0));
	set_rip(cpu, in, target);
}

/* E0 LOOPNE, E1 LOOPE, E2 LOOP, E3 JrCXZ */
void jit_op_loop(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t m = size_mask(in->addrsize), c = cpu->gpr[JIT_RCX] & m;
	bool take;

	if (in->op == 0xe3) {
		take = c == 0;
	} else {
		c = (c - 1) & m;
		cpu->gpr[JIT_RCX] = (cpu->gpr[JIT_RCX] & ~m) | c;
		if (in->addrsize == 4)
			cpu->gpr[JIT_RCX] = c;
		take = c != 0;
		if (in->op == 0xe0)
			take = take && !(cpu->rflags & F_ZF);
		else if (in->op == 0xe1)
			take = take && (cpu->rflags & F_ZF);
	}
	if (take)
		set_rip(cpu, in, cpu->next_rip + in->imm);
}

/* FF /2 CALL Ev, /4 JMP Ev, /6 PUSH Ev; /3 /5 far forms are in far.c */
void jit_op_grp5(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t v;

	switch (in->reg & 7) {
	case 0:
	case 1:
		jit_op_grp4(cpu, in);
		return;
	case 2:
		v = rm_read(cpu, in, in->opsize);
		push(cpu, in->opsize, cpu->next_rip);
		set_rip(cpu, in, v);
		return;
	case 4:
		set_rip(cpu, in, rm_read(cpu, in, in->opsize));
		return;
	case 3:
	case 5:
		jit_op_far_indirect(cpu, in);
		return;
	case 6:
		push(cpu, in->opsize, rm_read(cpu, in, in->opsize));
		return;
	}
	jit_ud(cpu, in);
}

/* 50-57: PUSH r */
void jit_op_push_r(struct jit_cpu *cpu, const struct jit_insn *in)
{
	push(cpu, in->opsize, cpu->gpr[in->reg]);
}

/* 58-5F: POP r */
void jit_op_pop_r(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t v = pop_peek(cpu, 0, in->opsize);

	cpu->gpr[JIT_RSP] = sp_add(cpu, in->opsize);
	reg_write(cpu, in, in->reg, in->opsize, v);
}

/* 68/6A: PUSH Iz/Ib */
void jit_op_push_imm(struct jit_cpu *cpu, const struct jit_insn *in)
{
	push(cpu, in->opsize, in->imm);
}

/* 8F /0: POP Ev; the address uses RSP after the pop (SDM: POP) */
void jit_op_pop_rm(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t v = pop_peek(cpu, 0, size), old = cpu->gpr[JIT_RSP], lin;

	if (in->reg & 7)
		jit_ud(cpu, in);
	if (in->mod == 3) {
		cpu->gpr[JIT_RSP] = sp_add(cpu, size);
		reg_write(cpu, in, in->rm, size, v);
		return;
	}
	cpu->gpr[JIT_RSP] = sp_add(cpu, size);
	lin = insn_ea(cpu, in);
	cpu->gpr[JIT_RSP] = old;
	lin = jit_seg_lin(cpu, in->seg, lin, size, ACC_W);
	jit_lin_ptr(cpu, lin, size, acc_user(cpu, ACC_W));	/* fault before committing */
	cpu->gpr[JIT_RSP] = sp_add(cpu, size);
	lin_write(cpu, lin, size, v, acc_user(cpu, ACC_W));
}

/* 06/0E/16/1E, 0F A0/A8: PUSH sreg */
void jit_op_push_seg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	int s = in->map == MAP_0F ? (in->op == 0xa0 ? SEG_FS : SEG_GS) : (in->op >> 3) & 3;
	uint16_t sel = cpu->seg[s].selector;

	/* a 32/64-bit push of a segment register writes only 16 bits */
	uint64_t rsp = sp_add(cpu, -(int64_t)in->opsize);

	mem_write(cpu, SEG_SS, rsp & sp_mask(cpu), 2, sel);
	cpu->gpr[JIT_RSP] = rsp;
}

/* 07/17/1F, 0F A1/A9: POP sreg */
void jit_op_pop_seg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	int s = in->map == MAP_0F ? (in->op == 0xa1 ? SEG_FS : SEG_GS) : (in->op >> 3) & 3;
	uint16_t sel = (uint16_t)pop_peek(cpu, 0, 2);

	jit_load_seg(cpu, s, sel);
	cpu->gpr[JIT_RSP] = sp_add(cpu, in->opsize);
	if (s == SEG_SS)
		cpu->shadow = true;
}

/* 60: PUSHA/PUSHAD */
void jit_op_pusha(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t rsp = cpu->gpr[JIT_RSP];

	for (int r = 0; r < 8; r++)
		rsp = push_at(cpu, rsp, in->opsize, cpu->gpr[r == JIT_RSP ? JIT_RSP : r]);
	cpu->gpr[JIT_RSP] = rsp;
}

/* 61: POPA/POPAD (the saved SP is skipped) */
void jit_op_popa(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t v[8];

	for (int r = 0; r < 8; r++)
		v[7 - r] = pop_peek(cpu, r * in->opsize, in->opsize);
	for (int r = 0; r < 8; r++)
		if (r != JIT_RSP)
			reg_write(cpu, in, r, in->opsize, v[r]);
	cpu->gpr[JIT_RSP] = sp_add(cpu, 8 * in->opsize);
}

/* 9C: PUSHF (VM and RF read as 0 in the image) */
void jit_op_pushf(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if ((cpu->rflags & F_VM) && ((cpu->rflags & F_IOPL) >> 12) < 3)
		jit_raise(cpu, EXC_GP, 0);
	push(cpu, in->opsize, cpu->rflags & ~(uint64_t)(F_VM | F_RF));
}

/* 9D: POPF; which bits change depends on CPL and IOPL (SDM: POPF) */
void jit_op_popf(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t v = pop_peek(cpu, 0, in->opsize);
	uint64_t mask = F_ARITH | F_TF | F_DF | F_NT | F_AC | F_ID;
	unsigned iopl = (cpu->rflags & F_IOPL) >> 12;

	if ((cpu->rflags & F_VM) && iopl < 3)
		jit_raise(cpu, EXC_GP, 0);
	if (cpu->cpl == 0)
		mask |= F_IOPL | F_IF;
	else if (cpu->cpl <= (int)iopl)
		mask |= F_IF;
	if (in->opsize == 2)
		mask &= 0xffff;
	cpu->gpr[JIT_RSP] = sp_add(cpu, in->opsize);
	cpu->rflags = (cpu->rflags & ~mask) | (v & mask) | 2;
}

/* C8: ENTER imm16, imm8 */
void jit_op_enter(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize, level = in->imm2 & 31;
	uint64_t m = sp_mask(cpu), rsp, frame, rbp = cpu->gpr[JIT_RBP];

	rsp = push_at(cpu, cpu->gpr[JIT_RSP], size, rbp);
	frame = rsp;
	if (level) {
		for (unsigned i = 1; i < level; i++) {
			rbp = (rbp & ~m) | ((rbp - size) & m);
			rsp = push_at(cpu, rsp, size, mem_read(cpu, SEG_SS, rbp & m, size));
		}
		rsp = push_at(cpu, rsp, size, frame);
	}
	rsp = (rsp & ~m) | ((rsp - in->imm) & m);
	mem_read(cpu, SEG_SS, rsp & m, 1);	/* the new stack top must be accessible */
	reg_write(cpu, in, JIT_RBP, size, frame);
	cpu->gpr[JIT_RSP] = rsp;
}

/* C9: LEAVE */
void jit_op_leave(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t m = sp_mask(cpu), rbp = cpu->gpr[JIT_RBP] & m;
	uint64_t v = mem_read(cpu, SEG_SS, rbp, in->opsize);

	cpu->gpr[JIT_RSP] = (cpu->gpr[JIT_RSP] & ~m) | ((rbp + in->opsize) & m);
	reg_write(cpu, in, JIT_RBP, in->opsize, v);
}
