/*
 * Fast forms of the most frequent instructions.
 *
 * The generic handlers (alu.c, move.c, ...) decide at run time what the
 * operand size is, whether r/m is a register or memory, whether a byte
 * register means AH..BH, whether LOCK applies.  For the forms that
 * dominate real code - 32- and 64-bit MOV, ADD/OR/ADC/SBB/AND/SUB/XOR/CMP and
 * TEST between registers, with an immediate or loading memory, MOVZX,
 * LEA, PUSH/POP of a register, SHL/SHR/SAR of a register, Jcc in 64-bit
 * mode - the block builder (block.c) picks a
 * handler here instead, in which those decisions are constants.  Each
 * computes exactly what the generic handler computes (same inline memory
 * access, same host instruction for the flags); they are shortcuts, not a
 * second implementation, and the host-comparison tests run through them.
 */
#include "jit/internal.h"

/* dst OP= src on the host with the resulting status flags in *f (the
 * operations here do not read incoming flags). */
#define ALU_ASM(ins, sfx, reg) \
	asm("lea -128(%%rsp), %%rsp\n\t" ins sfx " %" reg "[s], %" reg "[d]\n\t" \
	    "pushfq\n\tpopq %[f]\n\tlea 128(%%rsp), %%rsp" \
	    : [d] "+r"(d), [f] "=r"(f) : [s] "r"(s) : "cc")

#define DEF_ALU(name, ins) \
static inline __attribute__((always_inline)) uint64_t \
name(struct jit_cpu *cpu, unsigned size, uint64_t d, uint64_t s) \
{ \
	uint64_t f; \
	if (size == 4) \
		ALU_ASM(ins, "l", "k"); \
	else \
		ALU_ASM(ins, "q", "q"); \
	set_arith(cpu, f); \
	return size == 4 ? (uint32_t)d : d; \
}

/* ADC and SBB read CF: the guest's flags are loaded first */
#define ALU_ASM_CF(ins, sfx, reg) \
	asm("lea -128(%%rsp), %%rsp\n\tpushq %[f]\n\tpopfq\n\t" ins sfx " %" reg "[s], %" reg "[d]\n\t" \
	    "pushfq\n\tpopq %[f]\n\tlea 128(%%rsp), %%rsp" \
	    : [d] "+r"(d), [f] "+r"(f) : [s] "r"(s) : "cc")

#define DEF_ALU_CF(name, ins) \
static inline __attribute__((always_inline)) uint64_t \
name(struct jit_cpu *cpu, unsigned size, uint64_t d, uint64_t s) \
{ \
	uint64_t f = (cpu->rflags & F_ARITH) | 0x202; \
	if (size == 4) \
		ALU_ASM_CF(ins, "l", "k"); \
	else \
		ALU_ASM_CF(ins, "q", "q"); \
	set_arith(cpu, f); \
	return size == 4 ? (uint32_t)d : d; \
}

DEF_ALU_CF(h_adc, "adc")
DEF_ALU_CF(h_sbb, "sbb")
DEF_ALU(h_add, "add")
DEF_ALU(h_or, "or")
DEF_ALU(h_and, "and")
DEF_ALU(h_sub, "sub")
DEF_ALU(h_xor, "xor")
DEF_ALU(h_cmp, "cmp")
DEF_ALU(h_test, "test")

static inline __attribute__((always_inline)) uint64_t
gpr_get(const struct jit_cpu *cpu, unsigned r, unsigned size)
{
	return size == 4 ? (uint32_t)cpu->gpr[r] : cpu->gpr[r];
}

static inline __attribute__((always_inline)) void
gpr_set(struct jit_cpu *cpu, unsigned r, unsigned size, uint64_t v)
{
	cpu->gpr[r] = size == 4 ? (uint32_t)v : v;
}

static inline __attribute__((always_inline)) uint64_t
load(struct jit_cpu *cpu, const struct jit_insn *in, unsigned size)
{
	return mem_read(cpu, in->seg, insn_ea(cpu, in), size);
}

/*
 * ALU forms: rr is "op r/m(reg), reg" (01, 09, ..., 39 with mod 3), rr_rev
 * "op reg, r/m(reg)" (03, ..., 3B), ri "op r/m(reg), imm" (81, 83),
 * rm "op reg, mem" (03, ..., 3B).  CMP and TEST write nothing.
 */
#define DEF_ALU_FORMS(op, fn, write) \
static __attribute__((unused)) void f_##op##_rr4(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 4, gpr_get(cpu, in->rm, 4), gpr_get(cpu, in->reg, 4)); \
  if (write) gpr_set(cpu, in->rm, 4, r); } \
static __attribute__((unused)) void f_##op##_rr8(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 8, cpu->gpr[in->rm], cpu->gpr[in->reg]); \
  if (write) cpu->gpr[in->rm] = r; } \
static __attribute__((unused)) void f_##op##_rrv4(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 4, gpr_get(cpu, in->reg, 4), gpr_get(cpu, in->rm, 4)); \
  if (write) gpr_set(cpu, in->reg, 4, r); } \
static __attribute__((unused)) void f_##op##_rrv8(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 8, cpu->gpr[in->reg], cpu->gpr[in->rm]); \
  if (write) cpu->gpr[in->reg] = r; } \
static __attribute__((unused)) void f_##op##_ri4(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 4, gpr_get(cpu, in->rm, 4), (uint32_t)in->imm); \
  if (write) gpr_set(cpu, in->rm, 4, r); } \
static __attribute__((unused)) void f_##op##_ri8(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 8, cpu->gpr[in->rm], in->imm); \
  if (write) cpu->gpr[in->rm] = r; } \
static __attribute__((unused)) void f_##op##_rm4(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 4, gpr_get(cpu, in->reg, 4), load(cpu, in, 4)); \
  if (write) gpr_set(cpu, in->reg, 4, r); } \
static __attribute__((unused)) void f_##op##_rm8(struct jit_cpu *cpu, const struct jit_insn *in) \
{ uint64_t r = fn(cpu, 8, cpu->gpr[in->reg], load(cpu, in, 8)); \
  if (write) cpu->gpr[in->reg] = r; }

DEF_ALU_FORMS(add, h_add, 1)
DEF_ALU_FORMS(or, h_or, 1)
DEF_ALU_FORMS(and, h_and, 1)
DEF_ALU_FORMS(sub, h_sub, 1)
DEF_ALU_FORMS(xor, h_xor, 1)
DEF_ALU_FORMS(cmp, h_cmp, 0)
DEF_ALU_FORMS(adc, h_adc, 1)
DEF_ALU_FORMS(sbb, h_sbb, 1)
DEF_ALU_FORMS(test, h_test, 0)

/* [ALU op][form][size 4 / 8] */
enum { FORM_RR, FORM_RRV, FORM_RI, FORM_RM };
#define ALU_ROW(op) { \
	{ f_##op##_rr4, f_##op##_rr8 }, { f_##op##_rrv4, f_##op##_rrv8 }, \
	{ f_##op##_ri4, f_##op##_ri8 }, { f_##op##_rm4, f_##op##_rm8 } }
static jit_op_fn *const alu_forms[8][4][2] = {
	[ALU_ADD] = ALU_ROW(add), [ALU_OR] = ALU_ROW(or), [ALU_AND] = ALU_ROW(and),
	[ALU_ADC] = ALU_ROW(adc), [ALU_SBB] = ALU_ROW(sbb),
	[ALU_SUB] = ALU_ROW(sub), [ALU_XOR] = ALU_ROW(xor), [ALU_CMP] = ALU_ROW(cmp),
};
static jit_op_fn *const test_forms[4][2] = ALU_ROW(test);

/* MOV */
static void f_mov_rr4(struct jit_cpu *cpu, const struct jit_insn *in)
{ gpr_set(cpu, in->rm, 4, cpu->gpr[in->reg]); }
static void f_mov_rr8(struct jit_cpu *cpu, const struct jit_insn *in)
{ cpu->gpr[in->rm] = cpu->gpr[in->reg]; }
static void f_mov_rrv4(struct jit_cpu *cpu, const struct jit_insn *in)
{ gpr_set(cpu, in->reg, 4, cpu->gpr[in->rm]); }
static void f_mov_rrv8(struct jit_cpu *cpu, const struct jit_insn *in)
{ cpu->gpr[in->reg] = cpu->gpr[in->rm]; }
static void f_mov_load4(struct jit_cpu *cpu, const struct jit_insn *in)
{ gpr_set(cpu, in->reg, 4, load(cpu, in, 4)); }
static void f_mov_load8(struct jit_cpu *cpu, const struct jit_insn *in)
{ cpu->gpr[in->reg] = load(cpu, in, 8); }
static void f_mov_store4(struct jit_cpu *cpu, const struct jit_insn *in)
{ mem_write(cpu, in->seg, insn_ea(cpu, in), 4, cpu->gpr[in->reg]); }
static void f_mov_store8(struct jit_cpu *cpu, const struct jit_insn *in)
{ mem_write(cpu, in->seg, insn_ea(cpu, in), 8, cpu->gpr[in->reg]); }

/* MOVZX Gv, Eb/Ew from memory; LEA */
static void f_movzx_b(struct jit_cpu *cpu, const struct jit_insn *in)
{ gpr_set(cpu, in->reg, in->opsize, load(cpu, in, 1)); }
static void f_movzx_w(struct jit_cpu *cpu, const struct jit_insn *in)
{ gpr_set(cpu, in->reg, in->opsize, load(cpu, in, 2)); }
static void f_lea4(struct jit_cpu *cpu, const struct jit_insn *in)
{ gpr_set(cpu, in->reg, 4, insn_ea(cpu, in)); }
static void f_lea8(struct jit_cpu *cpu, const struct jit_insn *in)
{ cpu->gpr[in->reg] = insn_ea(cpu, in); }

/* 64-bit PUSH/POP r: the stack is flat and 8 bytes wide in 64-bit mode. */
static void f_push64(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t sp = cpu->gpr[JIT_RSP] - 8;

	mem_write(cpu, SEG_SS, sp, 8, cpu->gpr[in->reg]);
	cpu->gpr[JIT_RSP] = sp;
}

static void f_pop64(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t v = mem_read(cpu, SEG_SS, cpu->gpr[JIT_RSP], 8);

	cpu->gpr[JIT_RSP] += 8;
	cpu->gpr[in->reg] = v;	/* POP RSP: the popped value wins */
}

/*
 * SHL/SHR/SAR of a register by 1, CL or an immediate (D1, D3, C1 with mod
 * 3).  These read the incoming flags (a zero count changes none, and the
 * undefined AF is whatever the host leaves), so the guest's flags are
 * loaded first, as in shift.c.
 */
#define SH_ASM(ins, sfx, reg) \
	asm("lea -128(%%rsp), %%rsp\n\tpushq %[f]\n\tpopfq\n\t" ins sfx " %%cl, %" reg "[d]\n\t" \
	    "pushfq\n\tpopq %[f]\n\tlea 128(%%rsp), %%rsp" \
	    : [d] "+r"(d), [f] "+r"(f) : "c"(c) : "cc")

static inline __attribute__((always_inline)) unsigned
sh_count(const struct jit_cpu *cpu, const struct jit_insn *in, unsigned size)
{
	unsigned c = in->op == 0xc1 ? (unsigned)in->imm : in->op == 0xd1 ? 1 : (unsigned)cpu->gpr[JIT_RCX];

	return c & (size == 8 ? 63 : 31);
}

#define DEF_SHIFT(name, ins) \
static void f_##name##4(struct jit_cpu *cpu, const struct jit_insn *in) \
{ \
	uint8_t c = (uint8_t)sh_count(cpu, in, 4); \
	uint64_t d = (uint32_t)cpu->gpr[in->rm], f = (cpu->rflags & F_ARITH) | 0x202; \
	if (c) { \
		SH_ASM(ins, "l", "k"); \
		set_arith(cpu, f); \
	} \
	cpu->gpr[in->rm] = (uint32_t)d; \
} \
static void f_##name##8(struct jit_cpu *cpu, const struct jit_insn *in) \
{ \
	uint8_t c = (uint8_t)sh_count(cpu, in, 8); \
	uint64_t d = cpu->gpr[in->rm], f = (cpu->rflags & F_ARITH) | 0x202; \
	if (c) { \
		SH_ASM(ins, "q", "q"); \
		set_arith(cpu, f); \
		cpu->gpr[in->rm] = d; \
	} \
}

DEF_SHIFT(shl, "shl")
DEF_SHIFT(shr, "shr")
DEF_SHIFT(sar, "sar")

static jit_op_fn *const shift_forms[8][2] = {
	[4] = { f_shl4, f_shl8 }, [5] = { f_shr4, f_shr8 },
	[6] = { f_shl4, f_shl8 }, [7] = { f_sar4, f_sar8 },
};

/* Jcc in 64-bit mode (the operand size is 64: no truncation of RIP). */
#define DEF_JCC(cc, cond) \
static void f_jcc##cc(struct jit_cpu *cpu, const struct jit_insn *in) \
{ \
	uint64_t f = cpu->rflags; \
	if (cond) \
		cpu->next_rip += in->imm; \
}
#define SF_NE_OF (!(f & F_SF) != !(f & F_OF))
DEF_JCC(0, f & F_OF)
DEF_JCC(1, !(f & F_OF))
DEF_JCC(2, f & F_CF)
DEF_JCC(3, !(f & F_CF))
DEF_JCC(4, f & F_ZF)
DEF_JCC(5, !(f & F_ZF))
DEF_JCC(6, f & (F_CF | F_ZF))
DEF_JCC(7, !(f & (F_CF | F_ZF)))
DEF_JCC(8, f & F_SF)
DEF_JCC(9, !(f & F_SF))
DEF_JCC(10, f & F_PF)
DEF_JCC(11, !(f & F_PF))
DEF_JCC(12, SF_NE_OF)
DEF_JCC(13, !SF_NE_OF)
DEF_JCC(14, (f & F_ZF) || SF_NE_OF)
DEF_JCC(15, !((f & F_ZF) || SF_NE_OF))

static jit_op_fn *const jcc_forms[16] = {
	f_jcc0, f_jcc1, f_jcc2, f_jcc3, f_jcc4, f_jcc5, f_jcc6, f_jcc7,
	f_jcc8, f_jcc9, f_jcc10, f_jcc11, f_jcc12, f_jcc13, f_jcc14, f_jcc15,
};

static jit_op_fn *alu_form(const struct jit_insn *in, unsigned sz)
{
	uint8_t op = in->op;

	if (op < 0x40 && (op & 7) < 4 && (op & 1)) {
		int alu = (op >> 3) & 7;
		int form = in->mod == 3 ? ((op & 2) ? FORM_RRV : FORM_RR) : (op & 2) ? FORM_RM : -1;

		return form < 0 ? NULL : alu_forms[alu][form][sz];
	}
	if ((op == 0x81 || op == 0x83) && in->mod == 3)
		return alu_forms[in->reg & 7][FORM_RI][sz];
	if (op == 0x85)		/* TEST r/m, reg: AND commutes */
		return test_forms[in->mod == 3 ? FORM_RR : FORM_RM][sz];
	if (op == 0xf7 && in->mod == 3 && (in->reg & 7) == 0)
		return test_forms[FORM_RI][sz];
	return NULL;
}

/* The fast form of a decoded instruction, or NULL to use the generic one. */
jit_op_fn *jit_fast_form(const struct jit_insn *in)
{
	unsigned sz = in->opsize == 8;

	if (in->mode64 && in->opsize == 8 && (in->map == MAP_0F ? (in->op & 0xf0) == 0x80 :
	    in->map == MAP_1B && (in->op & 0xf0) == 0x70))
		return jcc_forms[in->op & 15];
	if (in->lock || (in->opsize != 4 && in->opsize != 8))
		return NULL;
	if (in->map == MAP_0F) {
		if ((in->op == 0xb6 || in->op == 0xb7) && in->mod != 3)
			return in->op == 0xb6 ? f_movzx_b : f_movzx_w;
		return NULL;
	}
	if (in->map != MAP_1B)
		return NULL;
	switch (in->op) {
	case 0x89:
		return in->mod == 3 ? (sz ? f_mov_rr8 : f_mov_rr4) : (sz ? f_mov_store8 : f_mov_store4);
	case 0x8b:
		return in->mod == 3 ? (sz ? f_mov_rrv8 : f_mov_rrv4) : (sz ? f_mov_load8 : f_mov_load4);
	case 0x8d:
		return in->mod == 3 ? NULL : sz ? f_lea8 : f_lea4;
	}
	if (in->mode64 && sz && in->op >= 0x50 && in->op < 0x60)
		return in->op < 0x58 ? f_push64 : f_pop64;
	if ((in->op == 0xc1 || in->op == 0xd1 || in->op == 0xd3) && in->mod == 3)
		return shift_forms[in->reg & 7][sz];
	return alu_form(in, sz);
}
