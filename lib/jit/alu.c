/*
 * Integer arithmetic and logic: ADD/OR/ADC/SBB/AND/SUB/XOR/CMP in all
 * their forms, TEST, INC/DEC, NOT/NEG, MUL/IMUL/DIV/IDIV (Intel SDM vol. 2,
 * chapters 3-4, and vol. 1, 3.4.3 for the status flags).
 *
 * How flags are computed.  The host is x86-64, so each operation is done
 * by the same instruction on the host ALU: the guest's status flags are
 * loaded into the host RFLAGS (POPF), the instruction runs on the operand
 * values, and the resulting RFLAGS (PUSHF) become the guest's status
 * flags.  This is exact by construction, including the flags the manuals
 * call undefined (AF after logic ops, SF/ZF/PF after MUL, everything after
 * DIV, OF after multi-bit shifts) which real software observes, and it
 * gives the guest the same values a hardware-virtualised guest would see
 * on this host.  Faulting cases (divide error) are checked in C first so
 * the host instruction never traps.  The stack pointer is moved below the
 * ABI red zone around PUSHF/POPF since the compiler may keep data there.
 */
#include "jit/internal.h"

#define PRE "lea -128(%%rsp), %%rsp\n\tpushq %[f]\n\tpopfq\n\t"
#define POST "\n\tpushfq\n\tpopq %[f]\n\tlea 128(%%rsp), %%rsp"
/* for operations whose results do not depend on the incoming flags the
 * (slow) POPF is skipped */
#define PREN "lea -128(%%rsp), %%rsp\n\t"

/* dst = dst OP src on the host, by size; f carries flags in and out. */
#define HOST2(ins, D_, S_, F_) do { \
	switch (size) { \
	case 1: asm(PRE ins "b %b[s], %b[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : [s] "r"(S_) : "cc"); break; \
	case 2: asm(PRE ins "w %w[s], %w[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : [s] "r"(S_) : "cc"); break; \
	case 4: asm(PRE ins "l %k[s], %k[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : [s] "r"(S_) : "cc"); break; \
	default: asm(PRE ins "q %q[s], %q[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : [s] "r"(S_) : "cc"); \
	} \
} while (0)

#define HOST2N(ins, D_, S_, F_) do { \
	switch (size) { \
	case 1: asm(PREN ins "b %b[s], %b[d]" POST : [d] "+r"(D_), [f] "=r"(F_) : [s] "r"(S_) : "cc"); break; \
	case 2: asm(PREN ins "w %w[s], %w[d]" POST : [d] "+r"(D_), [f] "=r"(F_) : [s] "r"(S_) : "cc"); break; \
	case 4: asm(PREN ins "l %k[s], %k[d]" POST : [d] "+r"(D_), [f] "=r"(F_) : [s] "r"(S_) : "cc"); break; \
	default: asm(PREN ins "q %q[s], %q[d]" POST : [d] "+r"(D_), [f] "=r"(F_) : [s] "r"(S_) : "cc"); \
	} \
} while (0)

#define HOST1(ins, D_, F_) do { \
	switch (size) { \
	case 1: asm(PRE ins "b %b[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : : "cc"); break; \
	case 2: asm(PRE ins "w %w[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : : "cc"); break; \
	case 4: asm(PRE ins "l %k[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : : "cc"); break; \
	default: asm(PRE ins "q %q[d]" POST : [d] "+r"(D_), [f] "+r"(F_) : : "cc"); \
	} \
} while (0)

static inline uint64_t flags_in(const struct jit_cpu *cpu)
{
	return (cpu->rflags & F_ARITH) | 0x202;
}

uint64_t jit_alu(struct jit_cpu *cpu, int op, unsigned size, uint64_t d, uint64_t s)
{
	uint64_t f = (op == ALU_ADC || op == ALU_SBB) ? flags_in(cpu) : 0;

	switch (op) {
	case ALU_ADD: HOST2N("add", d, s, f); break;
	case ALU_OR:  HOST2N("or", d, s, f); break;
	case ALU_ADC: HOST2("adc", d, s, f); break;
	case ALU_SBB: HOST2("sbb", d, s, f); break;
	case ALU_AND: HOST2N("and", d, s, f); break;
	case ALU_SUB: HOST2N("sub", d, s, f); break;
	case ALU_XOR: HOST2N("xor", d, s, f); break;
	default:      HOST2N("cmp", d, s, f); break;
	}
	set_arith(cpu, f);
	return d & size_mask(size);
}

/* INC, DEC, NEG: one-operand ALU ops; returns the result. */
enum { UN_INC, UN_DEC, UN_NEG };

static uint64_t alu1(struct jit_cpu *cpu, int op, unsigned size, uint64_t d)
{
	uint64_t f = flags_in(cpu);

	if (op == UN_INC)
		HOST1("inc", d, f);
	else if (op == UN_DEC)
		HOST1("dec", d, f);
	else
		HOST1("neg", d, f);
	set_arith(cpu, f);
	return d & size_mask(size);
}

/* r/m = r/m OP src with LOCK support; CMP only reads. */
static void alu_rm(struct jit_cpu *cpu, const struct jit_insn *in, int op, uint64_t src)
{
	unsigned size = in->opsize;
	struct rmw m;
	uint64_t old, r;

	if (op == ALU_CMP) {
		jit_alu(cpu, op, size, rm_read(cpu, in, size), src);
		return;
	}
	old = rmw_load(cpu, in, size, &m);
	do
		r = jit_alu(cpu, op, size, old, src);
	while (!rmw_store(cpu, in, &m, &old, r));
}

/* 00-3F: op Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / eAX,Iz */
void jit_op_alu(struct jit_cpu *cpu, const struct jit_insn *in)
{
	int op = (in->op >> 3) & 7;
	unsigned size = in->opsize;
	uint64_t r;

	switch (in->op & 7) {
	case 0:
	case 1:
		alu_rm(cpu, in, op, reg_read(cpu, in, in->reg, size));
		return;
	case 2:
	case 3:
		r = jit_alu(cpu, op, size, reg_read(cpu, in, in->reg, size), rm_read(cpu, in, size));
		if (op != ALU_CMP)
			reg_write(cpu, in, in->reg, size, r);
		return;
	default:
		r = jit_alu(cpu, op, size, cpu->gpr[JIT_RAX] & size_mask(size), in->imm);
		if (op != ALU_CMP)
			reg_write(cpu, in, JIT_RAX, size, r);
	}
}

/* 80-83: group 1, op Eb,Ib / Ev,Iz / Ev,Ib */
void jit_op_grp1(struct jit_cpu *cpu, const struct jit_insn *in)
{
	alu_rm(cpu, in, in->reg & 7, in->imm & size_mask(in->opsize));
}

/* 84/85 TEST Eb,Gb / Ev,Gv; A8/A9 TEST AL,Ib / eAX,Iz */
void jit_op_test(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	if (in->op >= 0xa8)
		jit_alu(cpu, ALU_AND, size, cpu->gpr[JIT_RAX], in->imm);
	else
		jit_alu(cpu, ALU_AND, size, rm_read(cpu, in, size),
			reg_read(cpu, in, in->reg, size));
}

/* 40-4F (outside 64-bit mode): INC/DEC r */
void jit_op_incdec_r(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned r = in->op & 7;

	reg_write(cpu, in, r, in->opsize,
		  alu1(cpu, in->op < 0x48 ? UN_INC : UN_DEC, in->opsize, cpu->gpr[r]));
}

static void unary_rm(struct jit_cpu *cpu, const struct jit_insn *in, int op)
{
	struct rmw m;
	uint64_t old, r;

	old = rmw_load(cpu, in, in->opsize, &m);
	do
		r = op < 0 ? ~old & size_mask(in->opsize) : alu1(cpu, op, in->opsize, old);
	while (!rmw_store(cpu, in, &m, &old, r));
}

/* FE: group 4 (INC/DEC Eb); FF /0 /1 reach here too */
void jit_op_grp4(struct jit_cpu *cpu, const struct jit_insn *in)
{
	switch (in->reg & 7) {
	case 0: unary_rm(cpu, in, UN_INC); break;
	case 1: unary_rm(cpu, in, UN_DEC); break;
	default: jit_ud(cpu, in);
	}
}

/* MUL/IMUL with the accumulator (group 3 /4 /5) */
static void mul_acc(struct jit_cpu *cpu, const struct jit_insn *in, bool sign)
{
	uint64_t s = rm_read(cpu, in, in->opsize);
	uint64_t a = cpu->gpr[JIT_RAX], d = cpu->gpr[JIT_RDX], f = flags_in(cpu);

#define MULX(ins, mod) asm(PRE ins " %" mod "[s]" POST : "+a"(a), "+d"(d), [f] "+r"(f) : [s] "r"(s) : "cc")
	switch (in->opsize) {
	case 1: if (sign) MULX("imulb", "b"); else MULX("mulb", "b"); break;
	case 2: if (sign) MULX("imulw", "w"); else MULX("mulw", "w"); break;
	case 4: if (sign) MULX("imull", "k"); else MULX("mull", "k"); break;
	default: if (sign) MULX("imulq", "q"); else MULX("mulq", "q"); break;
	}
	set_arith(cpu, f);
	if (in->opsize == 1) {
		reg_write(cpu, in, JIT_RAX, 2, a);
	} else {
		reg_write(cpu, in, JIT_RAX, in->opsize, a);
		reg_write(cpu, in, JIT_RDX, in->opsize, d);
	}
}

/* Would the division fault?  (SDM: #DE on zero divisor or quotient overflow) */
static bool div_faults(const struct jit_cpu *cpu, unsigned size, uint64_t s, bool sign)
{
	unsigned bits = size * 8;
	unsigned __int128 lo = size == 1 ? (cpu->gpr[JIT_RAX] & 0xffff)
				: cpu->gpr[JIT_RAX] & size_mask(size);
	unsigned __int128 n = size == 1 ? lo
		: ((unsigned __int128)(cpu->gpr[JIT_RDX] & size_mask(size)) << bits) | lo;

	if (s == 0)
		return true;
	if (!sign)
		return (n / s) >> bits != 0;
	{
		__int128 sn = (__int128)(n << (128 - 2 * bits)) >> (128 - 2 * bits);
		__int128 sd = sext(s, size), q;

		if (sd == -1) {
			if (sn == (__int128)((unsigned __int128)1 << 127))
				return true;
			q = -sn;
		} else {
			q = sn / sd;
		}
		return q < -((__int128)1 << (bits - 1)) || q > ((__int128)1 << (bits - 1)) - 1;
	}
}

static void div_acc(struct jit_cpu *cpu, const struct jit_insn *in, bool sign)
{
	uint64_t s = rm_read(cpu, in, in->opsize);
	uint64_t a = cpu->gpr[JIT_RAX], d = cpu->gpr[JIT_RDX], f = flags_in(cpu);

	if (div_faults(cpu, in->opsize, s, sign))
		jit_raise_nocode(cpu, EXC_DE);
	switch (in->opsize) {
	case 1: if (sign) MULX("idivb", "b"); else MULX("divb", "b"); break;
	case 2: if (sign) MULX("idivw", "w"); else MULX("divw", "w"); break;
	case 4: if (sign) MULX("idivl", "k"); else MULX("divl", "k"); break;
	default: if (sign) MULX("idivq", "q"); else MULX("divq", "q"); break;
	}
#undef MULX
	set_arith(cpu, f);
	if (in->opsize == 1) {
		reg_write(cpu, in, JIT_RAX, 2, a);
	} else {
		reg_write(cpu, in, JIT_RAX, in->opsize, a);
		reg_write(cpu, in, JIT_RDX, in->opsize, d);
	}
}

/* F6/F7: group 3 */
void jit_op_grp3(struct jit_cpu *cpu, const struct jit_insn *in)
{
	switch (in->reg & 7) {
	case 0:
	case 1:
		jit_alu(cpu, ALU_AND, in->opsize, rm_read(cpu, in, in->opsize), in->imm);
		break;
	case 2: unary_rm(cpu, in, -1); break;
	case 3: unary_rm(cpu, in, UN_NEG); break;
	case 4: mul_acc(cpu, in, false); break;
	case 5: mul_acc(cpu, in, true); break;
	case 6: div_acc(cpu, in, false); break;
	default: div_acc(cpu, in, true); break;
	}
}

static uint64_t imul2(struct jit_cpu *cpu, unsigned size, uint64_t d, uint64_t s)
{
	uint64_t f = flags_in(cpu);

	switch (size) {
	case 2: asm(PRE "imulw %w[s], %w[d]" POST : [d] "+r"(d), [f] "+r"(f) : [s] "r"(s) : "cc"); break;
	case 4: asm(PRE "imull %k[s], %k[d]" POST : [d] "+r"(d), [f] "+r"(f) : [s] "r"(s) : "cc"); break;
	default: asm(PRE "imulq %q[s], %q[d]" POST : [d] "+r"(d), [f] "+r"(f) : [s] "r"(s) : "cc"); break;
	}
	set_arith(cpu, f);
	return d;
}

/* 0F AF: IMUL Gv,Ev;  69/6B: IMUL Gv,Ev,Iz/Ib */
void jit_op_imul(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint64_t s = rm_read(cpu, in, size);
	uint64_t d = in->map == MAP_0F ? reg_read(cpu, in, in->reg, size) : in->imm;

	reg_write(cpu, in, in->reg, size, imul2(cpu, size, d, s));
}
