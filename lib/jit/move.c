/*
 * Data movement: MOV in its forms, MOVZX/MOVSX/MOVSXD, LEA, XCHG,
 * CMPXCHG, XADD, CMPXCHG8B/16B, CMOVcc, SETcc, CBW/CWD, XLAT, LAHF/SAHF
 * and the flag-bit instructions (Intel SDM vol. 2).
 */
#include "jit/internal.h"

/* Condition codes (SDM vol. 1, appendix B). */
bool jit_cond(const struct jit_cpu *cpu, unsigned cc)
{
	uint64_t f = cpu->rflags;
	bool r;

	switch ((cc >> 1) & 7) {
	case 0: r = f & F_OF; break;
	case 1: r = f & F_CF; break;
	case 2: r = f & F_ZF; break;
	case 3: r = f & (F_CF | F_ZF); break;
	case 4: r = f & F_SF; break;
	case 5: r = f & F_PF; break;
	case 6: r = !(f & F_SF) != !(f & F_OF); break;
	default: r = (f & F_ZF) || (!(f & F_SF) != !(f & F_OF)); break;
	}
	return (cc & 1) ? !r : r;
}

/* 88-8B: MOV Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev */
void jit_op_mov(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	if (in->op & 2)
		reg_write(cpu, in, in->reg, size, rm_read(cpu, in, size));
	else
		rm_write(cpu, in, size, reg_read(cpu, in, in->reg, size));
}

/* C6/C7: MOV Eb,Ib / Ev,Iz (/0 only) */
void jit_op_mov_imm(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if (in->reg & 7)
		jit_ud(cpu, in);
	rm_write(cpu, in, in->opsize, in->imm & size_mask(in->opsize));
}

/* B0-BF: MOV r,imm */
void jit_op_mov_r_imm(struct jit_cpu *cpu, const struct jit_insn *in)
{
	reg_write(cpu, in, in->reg, in->opsize, in->imm);
}

/* A0-A3: MOV AL/eAX <-> moffs */
void jit_op_mov_moffs(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t off = in->imm & size_mask(in->addrsize);

	if (in->op & 2)
		mem_write(cpu, in->seg, off, in->opsize, cpu->gpr[JIT_RAX]);
	else
		reg_write(cpu, in, JIT_RAX, in->opsize, mem_read(cpu, in->seg, off, in->opsize));
}

/* 0F B6/B7 MOVZX, 0F BE/BF MOVSX, 63 MOVSXD (64-bit mode) */
void jit_op_movx(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned ssize = in->map == MAP_1B ? 4 : (in->op & 1) ? 2 : 1;
	uint64_t v;

	if (in->map == MAP_1B && in->opsize != 8)
		ssize = in->opsize;	/* MOVSXD without REX.W: plain move */
	if (ssize == 1 && in->mod == 3)
		v = reg_read(cpu, in, in->rm, 1);
	else
		v = rm_read(cpu, in, ssize);
	if (in->map == MAP_1B || in->op >= 0xbe)
		v = (uint64_t)sext(v, ssize);
	reg_write(cpu, in, in->reg, in->opsize, v);
}

/* 8D: LEA */
void jit_op_lea(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if (in->mod == 3)
		jit_ud(cpu, in);
	reg_write(cpu, in, in->reg, in->opsize, insn_ea(cpu, in));
}

/* 86/87 XCHG Eb,Gb / Ev,Gv (memory forms are always locked); 90-97 */
void jit_op_xchg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	struct jit_insn l = *in;
	struct rmw m;
	uint64_t old, v;

	if (in->op >= 0x90) {
		if (in->reg == JIT_RAX)	/* NOP, PAUSE */
			return;
		v = cpu->gpr[JIT_RAX];
		reg_write(cpu, in, JIT_RAX, size, cpu->gpr[in->reg]);
		reg_write(cpu, in, in->reg, size, v);
		return;
	}
	l.lock = 1;
	v = reg_read(cpu, in, in->reg, size);
	old = rmw_load(cpu, &l, size, &m);
	while (!rmw_store(cpu, &l, &m, &old, v))
		;
	reg_write(cpu, in, in->reg, size, old);
}

/* 0F B0/B1: CMPXCHG Eb,Gb / Ev,Gv */
void jit_op_cmpxchg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t src = reg_read(cpu, in, in->reg, size);
	uint64_t acc = cpu->gpr[JIT_RAX] & size_mask(size);
	struct rmw m;
	uint64_t old = rmw_load(cpu, in, size, &m);

	for (;;) {
		jit_alu(cpu, ALU_CMP, size, acc, old);
		if (cpu->rflags & F_ZF) {
			if (rmw_store(cpu, in, &m, &old, src))
				return;
			continue;
		}
		if (m.reg < 0 && !(m.p && m.lock))
			rmw_store(cpu, in, &m, &old, old);
		break;
	}
	reg_write(cpu, in, JIT_RAX, size, old);
}

/* 0F C0/C1: XADD Eb,Gb / Ev,Gv */
void jit_op_xadd(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t src = reg_read(cpu, in, in->reg, size);
	struct rmw m;
	uint64_t old = rmw_load(cpu, in, size, &m), sum;

	do
		sum = jit_alu(cpu, ALU_ADD, size, old, src);
	while (m.reg < 0 && !rmw_store(cpu, in, &m, &old, sum));
	reg_write(cpu, in, in->reg, size, old);
	if (m.reg >= 0)
		rmw_store(cpu, in, &m, &old, sum);
}

static bool cas16(uint8_t *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
	bool ok;

	asm volatile("lock cmpxchg16b %[m]" : "=@ccz"(ok), [m] "+m"(*(unsigned __int128 *)p),
		     "+a"(*lo), "+d"(*hi) : "b"(nlo), "c"(nhi) : "memory");
	return ok;
}

/* 0F C7 /1: CMPXCHG8B m64 / CMPXCHG16B m128 */
static void cmpxchg8b(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned half = in->opsize == 8 ? 8 : 4, size = half * 2;
	uint64_t ea = insn_ea(cpu, in), lin, lo, hi, m = size_mask(half);
	uint8_t *p;
	bool eq;

	if (in->mod == 3)
		jit_ud(cpu, in);
	if (size == 16 && (ea & 15))
		jit_raise(cpu, EXC_GP, 0);
	lin = jit_seg_lin(cpu, in->seg, ea, size, ACC_W);
	p = jit_lin_ptr(cpu, lin, size, acc_user(cpu, ACC_W));
	lo = cpu->gpr[JIT_RAX] & m;
	hi = cpu->gpr[JIT_RDX] & m;
	if (p && size == 16) {
		eq = cas16(p, &lo, &hi, cpu->gpr[JIT_RBX], cpu->gpr[JIT_RCX]);
	} else if (p) {
		uint64_t old = lo | hi << 32;

		eq = jit_host_cas(p, 8, &old,
				  (cpu->gpr[JIT_RBX] & m) | (cpu->gpr[JIT_RCX] & m) << 32);
		lo = (uint32_t)old;
		hi = old >> 32;
	} else {
		uint64_t vlo = jit_lin_read_slow(cpu, lin, half, acc_user(cpu, ACC_R));
		uint64_t vhi = jit_lin_read_slow(cpu, lin + half, half, acc_user(cpu, ACC_R));

		eq = vlo == lo && vhi == hi;
		if (eq) {
			jit_lin_write_slow(cpu, lin, half, cpu->gpr[JIT_RBX], acc_user(cpu, ACC_W));
			jit_lin_write_slow(cpu, lin + half, half, cpu->gpr[JIT_RCX], acc_user(cpu, ACC_W));
		}
		lo = vlo;
		hi = vhi;
	}
	cpu->rflags = eq ? cpu->rflags | F_ZF : cpu->rflags & ~(uint64_t)F_ZF;
	if (!eq) {
		reg_write(cpu, in, JIT_RAX, half, lo);
		reg_write(cpu, in, JIT_RDX, half, hi);
	}
}

/* 0F C7: group 9 */
void jit_op_grp9(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if ((in->reg & 7) == 1 && in->mod != 3)
		cmpxchg8b(cpu, in);
	else
		jit_ud(cpu, in);
}

/* 0F 40-4F: CMOVcc Gv,Ev (the source is read, and a 32-bit destination
 * zero-extended, whatever the condition) */
void jit_op_cmov(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t v = rm_read(cpu, in, in->opsize);

	if (jit_cond(cpu, in->op & 15))
		reg_write(cpu, in, in->reg, in->opsize, v);
	else if (in->opsize == 4)
		cpu->gpr[in->reg] &= 0xffffffff;
}

/* 0F 90-9F: SETcc Eb */
void jit_op_setcc(struct jit_cpu *cpu, const struct jit_insn *in)
{
	rm_write(cpu, in, 1, jit_cond(cpu, in->op & 15));
}

/* 98: CBW/CWDE/CDQE; 99: CWD/CDQ/CQO */
void jit_op_cbw(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t a = cpu->gpr[JIT_RAX];

	if (in->op == 0x98)
		reg_write(cpu, in, JIT_RAX, size, (uint64_t)sext(a, size / 2));
	else
		reg_write(cpu, in, JIT_RDX, size, sext(a, size) < 0 ? ~0ull : 0);
}

/* D7: XLAT */
void jit_op_xlat(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t ea = (cpu->gpr[JIT_RBX] + (cpu->gpr[JIT_RAX] & 0xff)) & size_mask(in->addrsize);

	reg_write(cpu, in, JIT_RAX, 1, mem_read(cpu, in->seg, ea, 1));
}

/* 9E SAHF, 9F LAHF */
void jit_op_lahf(struct jit_cpu *cpu, const struct jit_insn *in)
{
	const uint64_t m = F_SF | F_ZF | F_AF | F_PF | F_CF;

	if (in->op == 0x9f)
		reg_write(cpu, in, 4, 1, (cpu->rflags & m) | 2);
	else
		cpu->rflags = (cpu->rflags & ~m) | ((cpu->gpr[JIT_RAX] >> 8) & m);
}

/* F5 CMC, F8 CLC, F9 STC, FC CLD, FD STD */
void jit_op_flagbit(struct jit_cpu *cpu, const struct jit_insn *in)
{
	switch (in->op) {
	case 0xf5: cpu->rflags ^= F_CF; break;
	case 0xf8: cpu->rflags &= ~(uint64_t)F_CF; break;
	case 0xf9: cpu->rflags |= F_CF; break;
	case 0xfc: cpu->rflags &= ~(uint64_t)F_DF; break;
	default: cpu->rflags |= F_DF; break;
	}
}

/* 0F 18-1F: hint NOPs and NOP Ev; 0F 0D PREFETCH */
void jit_op_nop(struct jit_cpu *cpu, const struct jit_insn *in)
{
}

/* 0F 0B UD2, 0F B9 UD1, and anything not implemented */
void jit_op_ud(struct jit_cpu *cpu, const struct jit_insn *in)
{
	jit_ud(cpu, in);
}
