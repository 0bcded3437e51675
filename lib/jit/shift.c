/*
 * Shifts, rotates and bit operations: ROL/ROR/RCL/RCR/SHL/SHR/SAR,
 * SHLD/SHRD, BT/BTS/BTR/BTC, BSF/BSR, TZCNT/LZCNT, POPCNT, BSWAP, MOVBE
 * (Intel SDM vol. 2).  As in alu.c the host ALU computes results and
 * flags (including the undefined ones) from the guest's input flags; a
 * masked shift count of zero changes nothing, as the manual says.
 */
#include "jit/internal.h"

#define PRE "lea -128(%%rsp), %%rsp\n\tpushq %[f]\n\tpopfq\n\t"
#define POST "\n\tpushfq\n\tpopq %[f]\n\tlea 128(%%rsp), %%rsp"

#define SHX(ins, D_, C_, F_) do { \
	switch (size) { \
	case 1: asm(PRE ins "b %%cl, %b[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : "c"(C_) : "cc"); break; \
	case 2: asm(PRE ins "w %%cl, %w[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : "c"(C_) : "cc"); break; \
	case 4: asm(PRE ins "l %%cl, %k[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : "c"(C_) : "cc"); break; \
	default: asm(PRE ins "q %%cl, %q[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : "c"(C_) : "cc"); \
	} \
} while (0)

#define BIT2(ins, D_, S_, F_) do { \
	switch (size) { \
	case 2: asm(PRE ins "w %w[s], %w[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : [s] "r"(S_) : "cc"); break; \
	case 4: asm(PRE ins "l %k[s], %k[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : [s] "r"(S_) : "cc"); break; \
	default: asm(PRE ins "q %q[s], %q[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : [s] "r"(S_) : "cc"); \
	} \
} while (0)

static inline uint64_t flags_in(const struct jit_cpu *cpu)
{
	return (cpu->rflags & F_ARITH) | 0x202;
}

static uint64_t shift(struct jit_cpu *cpu, int op, unsigned size, uint64_t d, uint8_t c)
{
	uint64_t f = flags_in(cpu);

	switch (op) {
	case 0: SHX("rol", d, c, f); break;
	case 1: SHX("ror", d, c, f); break;
	case 2: SHX("rcl", d, c, f); break;
	case 3: SHX("rcr", d, c, f); break;
	case 4: SHX("shl", d, c, f); break;
	case 5: SHX("shr", d, c, f); break;
	case 6: SHX("sal", d, c, f); break;
	default: SHX("sar", d, c, f); break;
	}
	set_arith(cpu, f);
	return d & size_mask(size);
}

/* C0/C1 (Ib), D0/D1 (1), D2/D3 (CL): group 2 */
void jit_op_grp2(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint8_t c;
	struct rmw m;
	uint64_t old, r;

	if (in->op < 0xd0)
		c = (uint8_t)in->imm;
	else if (in->op < 0xd2)
		c = 1;
	else
		c = (uint8_t)cpu->gpr[JIT_RCX];
	c &= size == 8 ? 63 : 31;
	if (!c) {
		/* flags unchanged; a 32-bit register is still written (zero-extended) */
		rm_write(cpu, in, size, rm_read(cpu, in, size));
		return;
	}
	old = rmw_load(cpu, in, size, &m);
	{
		uint64_t of = cpu->rflags & F_OF;

		r = shift(cpu, in->reg & 7, size, old, c);
		/* current Intel processors leave OF alone after ROL/ROR of a
		 * register by an immediate count above 1 (the CL and memory
		 * forms compute it) */
		if (in->op < 0xd0 && (in->reg & 7) < 2 && c > 1 && in->mod == 3)
			cpu->rflags = (cpu->rflags & ~(uint64_t)F_OF) | of;
	}
	rmw_store(cpu, in, &m, &old, r);
}

/* 0F A4/A5 SHLD, 0F AC/AD SHRD (Ib or CL) */
void jit_op_shxd(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint8_t c = (uint8_t)((in->op & 1) ? cpu->gpr[JIT_RCX] : in->imm);
	uint64_t s = reg_read(cpu, in, in->reg, size), f = flags_in(cpu), d, old;
	struct rmw m;

	c &= size == 8 ? 63 : 31;
	if (!c) {
		rm_write(cpu, in, size, rm_read(cpu, in, size));
		return;
	}
	old = d = rmw_load(cpu, in, size, &m);
#define SHD(ins) do { switch (size) { \
	case 2: asm(PRE ins "w %%cl, %w[s], %w[d]" POST : [d] "+r"(d), [f] "+r"(f) : [s] "r"(s), "c"(c) : "cc"); break; \
	case 4: asm(PRE ins "l %%cl, %k[s], %k[d]" POST : [d] "+r"(d), [f] "+r"(f) : [s] "r"(s), "c"(c) : "cc"); break; \
	default: asm(PRE ins "q %%cl, %q[s], %q[d]" POST : [d] "+r"(d), [f] "+r"(f) : [s] "r"(s), "c"(c) : "cc"); \
	} } while (0)
	if (in->op < 0xa8)
		SHD("shld");
	else
		SHD("shrd");
#undef SHD
	set_arith(cpu, f);
	rmw_store(cpu, in, &m, &old, d & size_mask(size));
}

/* The bit-test family: op 0 BT, 1 BTS, 2 BTR, 3 BTC on a value. */
static uint64_t bit_op(struct jit_cpu *cpu, int op, unsigned size, uint64_t d, uint64_t bit)
{
	uint64_t f = flags_in(cpu);

	switch (op) {
	case 0: BIT2("bt", d, bit, f); break;
	case 1: BIT2("bts", d, bit, f); break;
	case 2: BIT2("btr", d, bit, f); break;
	default: BIT2("btc", d, bit, f); break;
	}
	set_arith(cpu, f);
	return d & size_mask(size);
}

/* BT* with a register or immediate bit offset; a register offset into
 * memory addresses the operand-sized unit holding the bit. */
static void bt_common(struct jit_cpu *cpu, const struct jit_insn *in, int op, uint64_t off,
		      bool imm)
{
	unsigned size = in->opsize, bits = size * 8;
	struct rmw m;
	uint64_t old, r;

	if (in->mod != 3 && !imm) {
		int64_t unit = sext(off, size) >> (__builtin_ctz(bits));
		uint64_t ea = (insn_ea(cpu, in) + (uint64_t)(unit * (int64_t)size)) &
			      size_mask(in->addrsize);
		uint64_t lin;

		off &= bits - 1;
		if (op == 0) {
			bit_op(cpu, 0, size, mem_read(cpu, in->seg, ea, size), off);
			return;
		}
		lin = jit_seg_lin(cpu, in->seg, ea, size, ACC_W);
		m.size = size;
		m.lock = in->lock;
		m.reg = -1;
		m.lin = lin;
		m.acc = acc_user(cpu, ACC_W);
		m.p = jit_lin_ptr(cpu, lin, size, m.acc);
		old = m.p ? host_load(m.p, size) : jit_lin_read_slow(cpu, lin, size, m.acc & ~ACC_W);
	} else {
		off &= bits - 1;
		if (op == 0) {
			bit_op(cpu, 0, size, rm_read(cpu, in, size), off);
			return;
		}
		old = rmw_load(cpu, in, size, &m);
	}
	do
		r = bit_op(cpu, op, size, old, off);
	while (!rmw_store(cpu, in, &m, &old, r));
}

/* 0F A3 BT, AB BTS, B3 BTR, BB BTC: Ev,Gv */
void jit_op_bt(struct jit_cpu *cpu, const struct jit_insn *in)
{
	bt_common(cpu, in, (in->op >> 3) & 3, reg_read(cpu, in, in->reg, in->opsize), false);
}

/* 0F BA: group 8, BT* Ev,Ib */
void jit_op_grp8(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if ((in->reg & 7) < 4)
		jit_ud(cpu, in);
	bt_common(cpu, in, (in->reg & 7) - 4, in->imm & 0xff, true);
}

/* 0F BC/BD: BSF/BSR, or TZCNT/LZCNT with F3; 0F B8 with F3: POPCNT */
void jit_op_bitscan(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t s = rm_read(cpu, in, size), d = reg_read(cpu, in, in->reg, size);
	uint64_t f = flags_in(cpu);

	if (in->op == 0xb8 && in->rep != 0xf3)
		jit_ud(cpu, in);
	if (in->op == 0xb8)
		BIT2("popcnt", d, s, f);
	else if (in->rep == 0xf3 && in->op == 0xbc)
		BIT2("tzcnt", d, s, f);
	else if (in->rep == 0xf3)
		BIT2("lzcnt", d, s, f);
	else if (in->op == 0xbc)
		BIT2("bsf", d, s, f);
	else
		BIT2("bsr", d, s, f);
	set_arith(cpu, f);
	/* BSF/BSR of zero leave the destination alone, not even zero-extended */
	if (in->rep == 0xf3 || in->op == 0xb8 || (s & size_mask(size)))
		reg_write(cpu, in, in->reg, size, d);
}

/* 0F C8+r: BSWAP (16-bit operand size: undefined, zeroes the register
 * on current processors) */
void jit_op_bswap(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t v = cpu->gpr[in->reg];

	if (in->opsize == 8)
		cpu->gpr[in->reg] = __builtin_bswap64(v);
	else if (in->opsize == 4)
		cpu->gpr[in->reg] = __builtin_bswap32((uint32_t)v);
	else
		reg_write(cpu, in, in->reg, 2, 0);
}

/* 0F 38 F0/F1: MOVBE Gv,Mv / Mv,Gv (CRC32 with F2 is not implemented) */
void jit_op_movbe(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t v;

	if (in->mod == 3 || in->rep)
		jit_ud(cpu, in);
	if (in->op == 0xf0)
		v = rm_read(cpu, in, size);
	else
		v = reg_read(cpu, in, in->reg, size);
	v = size == 8 ? __builtin_bswap64(v) : size == 4 ? __builtin_bswap32((uint32_t)v)
		: __builtin_bswap16((uint16_t)v);
	if (in->op == 0xf0)
		reg_write(cpu, in, in->reg, size, v);
	else
		rm_write(cpu, in, size, v);
}
