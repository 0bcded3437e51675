/*
 * Legacy instructions invalid in 64-bit mode: the decimal adjusts
 * DAA/DAS/AAA/AAS/AAM/AAD, BOUND and ARPL (Intel SDM vol. 2, each
 * instruction's pseudo-code); opcode 63 is MOVSXD in 64-bit mode.
 * Flags the pseudo-code leaves undefined are computed as SF/ZF/PF of the
 * result with OF clear.
 */
#include "jit/internal.h"

static uint64_t szp(uint8_t v)
{
	uint64_t f = 0;

	if (!v)
		f |= F_ZF;
	if (v & 0x80)
		f |= F_SF;
	if (!__builtin_parity(v))
		f |= F_PF;
	return f;
}

static void daa_das(struct jit_cpu *cpu, bool sub)
{
	uint8_t al = (uint8_t)cpu->gpr[JIT_RAX], old = al;
	bool cf = cpu->rflags & F_CF, af = false, ncf = false;

	if ((al & 0xf) > 9 || (cpu->rflags & F_AF)) {
		ncf = cf || (sub ? al < 6 : al > 0xf9);
		al = (uint8_t)(sub ? al - 6 : al + 6);
		af = true;
	}
	if (old > 0x99 || cf) {
		al = (uint8_t)(sub ? al - 0x60 : al + 0x60);
		ncf = true;
	}
	cpu->gpr[JIT_RAX] = (cpu->gpr[JIT_RAX] & ~0xffull) | al;
	set_arith(cpu, szp(al) | (ncf ? F_CF : 0) | (af ? F_AF : 0));
}

static void aaa_aas(struct jit_cpu *cpu, bool sub)
{
	uint16_t ax = (uint16_t)cpu->gpr[JIT_RAX];
	bool adj = (ax & 0xf) > 9 || (cpu->rflags & F_AF);

	if (adj) {
		if (sub)
			ax = (uint16_t)(((ax - 6) & 0xff) | ((ax - 0x100) & 0xff00));
		else
			ax = (uint16_t)(ax + 0x106);
	}
	ax &= 0xff0f;
	cpu->gpr[JIT_RAX] = (cpu->gpr[JIT_RAX] & ~0xffffull) | ax;
	set_arith(cpu, szp((uint8_t)ax) | (adj ? F_AF | F_CF : 0));
}

/* 27 DAA, 2F DAS, 37 AAA, 3F AAS, D4 AAM, D5 AAD */
void jit_op_bcd(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint8_t al = (uint8_t)cpu->gpr[JIT_RAX], ah = (uint8_t)(cpu->gpr[JIT_RAX] >> 8);
	uint8_t base = (uint8_t)in->imm;

	switch (in->op) {
	case 0x27: daa_das(cpu, false); return;
	case 0x2f: daa_das(cpu, true); return;
	case 0x37: aaa_aas(cpu, false); return;
	case 0x3f: aaa_aas(cpu, true); return;
	case 0xd4:
		if (!base)
			jit_raise(cpu, EXC_DE, 0);
		ah = al / base;
		al = al % base;
		break;
	default:
		al = (uint8_t)(al + ah * base);
		ah = 0;
	}
	cpu->gpr[JIT_RAX] = (cpu->gpr[JIT_RAX] & ~0xffffull) | al | (uint64_t)ah << 8;
	set_arith(cpu, szp(al));
}

/* 62: BOUND Gv,Ma */
void jit_op_bound(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t ea = insn_ea(cpu, in);
	int64_t lo, hi, v = sext(cpu->gpr[in->reg], size);

	if (in->mod == 3)
		jit_ud(cpu, in);
	lo = sext(mem_read(cpu, in->seg, ea, size), size);
	hi = sext(mem_read(cpu, in->seg, (ea + size) & size_mask(in->addrsize), size), size);
	if (v < lo || v > hi)
		jit_raise(cpu, EXC_BR, 0);
}

/* 63: ARPL Ew,Gw (MOVSXD Gv,Ed in 64-bit mode) */
void jit_op_arpl(struct jit_cpu *cpu, const struct jit_insn *in)
{
	struct rmw m;
	uint64_t d, s;

	if (cpu->mode64) {
		jit_op_movx(cpu, in);
		return;
	}
	if (!cpu->pm || (cpu->rflags & F_VM))
		jit_ud(cpu, in);
	s = reg_read(cpu, in, in->reg, 2);
	d = rmw_load(cpu, in, 2, &m);
	if ((d & 3) < (s & 3)) {
		uint64_t n = (d & ~3ull) | (s & 3);

		rmw_store(cpu, in, &m, &d, n);
		cpu->rflags |= F_ZF;
	} else {
		cpu->rflags &= ~(uint64_t)F_ZF;
	}
}
