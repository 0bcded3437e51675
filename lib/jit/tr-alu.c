/*
 * The translator's arithmetic (see the essay in tr-x86.c): the ALU group,
 * TEST, shifts and rotates, IMUL, INC/DEC, NOT/NEG, MOVZX/MOVSX, CMOVcc,
 * SETcc and BSWAP on the host ALU, and the guest's arithmetic flags
 * (Intel SDM vol. 1, 3.4.3.1): merged into RFLAGS after an operation,
 * loaded into the host's before one that reads them, or kept in the host
 * flags for a Jcc that follows at once.
 */
#include "jit/internal.h"

/* B0-BF: MOV r, imm */
int jit_tr_mov_r_imm(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->opsize >= 4 && t->host[in->reg] >= 0) {	/* mov r32 zero-extends */
		jit_tr_mov_imm(&t->b, (unsigned)t->host[in->reg], in->imm & size_mask(in->opsize));
		jit_tr_gpr_written(t, in->reg);
		return TR_OK;
	}
	jit_tr_mov_imm(&t->b, RAX, in->imm & size_mask(in->opsize));
	jit_tr_greg_store(t, in, RAX, in->reg, in->opsize);
	return TR_OK;
}

/* 0F B6/B7/BE/BF: MOVZX/MOVSX, 63: MOVSXD */
int jit_tr_movx(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned from = in->op == 0x63 ? 4 : (in->op & 1) ? 2 : 1;
	bool sign = in->op == 0x63 || in->op >= 0xbe;

	if (in->opsize < 4)
		return TR_NO;
	if (in->mod == 3 && t->host[in->reg] >= 0) {	/* into the cached register */
		struct jit_tr_rm src = jit_tr_greg(t, in, in->rm, from);
		unsigned hd = (unsigned)t->host[in->reg];

		if (from == 4) {
			jit_tr_ins(t, 8, 0x63, hd, src);			/* movsxd */
			jit_tr_gpr_written(t, in->reg);
			return TR_OK;
		}
		if (from == 2 || src.mem || src.base >= 8) {	/* no SPL..DIL without a REX */
			if (sign)
				jit_tr_ins(t, in->opsize, from == 1 ? 0x0fbe : 0x0fbf, hd, src);
			else		/* movzx r32 clears the upper half */
				jit_tr_ins(t, 4, from == 1 ? 0x0fb6 : 0x0fb7, hd, src);
			jit_tr_gpr_written(t, in->reg);
			return TR_OK;
		}
	}
	jit_tr_rm_to_rax(t, in, from);
	if (sign) {
		if (from == 4)
			jit_tr_ins(t, 8, 0x63, RAX, jit_tr_r(RAX));		/* movsxd rax, eax */
		else
			jit_tr_ins(t, 8, from == 1 ? 0x0fbe : 0x0fbf, RAX, jit_tr_r(RAX));
	}
	jit_tr_greg_store(t, in, RAX, in->reg, in->opsize);
	return TR_OK;
}

/* The guest register r of size bytes as an operand the host can change
 * in place: its cached host register, or else RAX loaded with it. */
static struct jit_tr_rm greg_op(struct jit_tr *t, const struct jit_insn *in, unsigned r,
				unsigned size)
{
	if (t->host[r] >= 0 && !(size == 1 && !in->rex && r >= 4 && r < 8))
		return jit_tr_r((unsigned)t->host[r]);
	jit_tr_greg_load(t, in, RAX, r, size);
	return jit_tr_r(RAX);
}

/* The result of an operation on greg_op()'s operand is guest register r's. */
static void greg_done(struct jit_tr *t, const struct jit_insn *in, struct jit_tr_rm dop, unsigned r,
		      unsigned size)
{
	if (dop.base == RAX)
		jit_tr_greg_store(t, in, RAX, r, size);
	else
		jit_tr_gpr_written(t, r);
}

/* d OP imm (aop: ALU_* or 8 for TEST) in the host's immediate form (imm
 * fits: a sign-extended imm32 for 64-bit operations). */
static void alu_imm(struct jit_tr *t, int aop, unsigned size, struct jit_tr_rm dop, uint64_t imm)
{
	unsigned ext = aop == 8 ? 0 : (unsigned)aop;
	uint32_t opc = aop == 8 ? (size == 1 ? 0xf6 : 0xf7) : (size == 1 ? 0x80 : 0x81);

	jit_tr_ins(t, size, opc, ext, dop);
	if (size == 1) {
		jit_tr_byte(&t->b, (uint8_t)imm);
	} else if (size == 2) {
		jit_tr_byte(&t->b, (uint8_t)imm);
		jit_tr_byte(&t->b, (uint8_t)(imm >> 8));
	} else {
		jit_tr_u32(&t->b, (uint32_t)imm);
	}
}

/*
 * The two-operand ALU group and TEST: d OP s with the host ALU, d = dop
 * (RAX or the destination's host register), s = sop (RCX, a cached guest
 * register's host register or its slot in struct jit_cpu) or, when imm,
 * the instruction's immediate.  aop is ALU_* or 8 for TEST.  dst: the
 * guest register that gets the result, -1 for none (CMP, TEST).
 */
static void alu_emit(struct jit_tr *t, const struct jit_insn *in, int aop, unsigned size, int dst,
		     struct jit_tr_rm dop, struct jit_tr_rm sop, bool imm)
{
	uint64_t v = in->imm & size_mask(size);

	if (imm && size == 8 && (uint64_t)(int64_t)(int32_t)v != v) {
		jit_tr_mov_imm(&t->b, RCX, v);
		sop = jit_tr_r(RCX);
		imm = false;
	}
	if (aop == ALU_ADC || aop == ALU_SBB)
		jit_tr_flags_cf_in(t);
	if (imm)
		alu_imm(t, aop, size, dop, v);
	else if (aop == 8)
		jit_tr_ins(t, size, size == 1 ? 0x84 : 0x85, (unsigned)dop.base, sop);
	else		/* the reg OP= r/m form: dop is a register */
		jit_tr_ins(t, size, (uint32_t)(aop << 3 | (size == 1 ? 2 : 3)), (unsigned)dop.base, sop);
	jit_tr_flags_set(t, F_ARITH);
	if (dst < 0 || aop == ALU_CMP || aop == 8)
		return;
	greg_done(t, in, dop, (unsigned)dst, size);
}

/* 00-3D (not the RMW forms to memory), 80-83, 84/85, A8/A9, F6/F7 /0 */
int jit_tr_alu(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, o = in->op;
	int aop, dst = -1;
	struct jit_tr_rm dop = jit_tr_r(RAX), sop = jit_tr_r(RCX);
	bool imm = false;

	if (in->lock)
		return TR_NO;
	if (o < 0x40) {
		aop = (int)(o >> 3);
		if ((o & 7) >= 4) {			/* AL/rAX, imm */
			dop = greg_op(t, in, JIT_RAX, size);
			imm = true;
			dst = JIT_RAX;
		} else if (o & 2) {			/* reg OP= r/m */
			if (in->mod == 3) {
				sop = jit_tr_greg(t, in, in->rm, size);
			} else {
				jit_tr_rm_to_rax(t, in, size);
				jit_tr_ins(t, 8, 0x8b, RCX, jit_tr_r(RAX));
			}
			dop = greg_op(t, in, in->reg, size);
			dst = in->reg;
		} else if (in->mod == 3 || aop == ALU_CMP) {	/* r/m OP= reg */
			if (in->mod == 3)
				dop = greg_op(t, in, in->rm, size);
			else
				jit_tr_rm_to_rax(t, in, size);
			sop = jit_tr_greg(t, in, in->reg, size);
			dst = in->mod == 3 ? in->rm : -1;
		} else {
			return TR_NO;
		}
	} else if (o >= 0x80 && o <= 0x83) {
		aop = in->reg & 7;
		if (in->mod != 3 && aop != ALU_CMP)
			return TR_NO;
		if (in->mod == 3)
			dop = greg_op(t, in, in->rm, size);
		else
			jit_tr_rm_to_rax(t, in, size);
		imm = true;
		dst = in->mod == 3 ? in->rm : -1;
	} else if (o == 0x84 || o == 0x85) {
		aop = 8;
		if (in->mod == 3)
			dop = greg_op(t, in, in->rm, size);
		else
			jit_tr_rm_to_rax(t, in, size);
		sop = jit_tr_greg(t, in, in->reg, size);
	} else if (o == 0xa8 || o == 0xa9) {
		aop = 8;
		jit_tr_greg_load(t, in, RAX, JIT_RAX, size);
		imm = true;
	} else {					/* F6/F7 /0 */
		aop = 8;
		jit_tr_rm_to_rax(t, in, size);
		imm = true;
	}
	alu_emit(t, in, aop, size, dst, dop, sop, imm);
	return TR_OK;
}

/* F7 /4 /5: MUL and IMUL of rDX:rAX = rAX * r/m (16, 32 and 64 bits): the
 * source is read (and faults) first, the flags as the interpreter's. */
static int mul1(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	jit_tr_rm_to_rax(t, in, size);
	jit_tr_ins(t, 8, 0x8b, RCX, jit_tr_r(RAX));
	jit_tr_greg_load(t, in, RAX, JIT_RAX, size);
	jit_tr_ins(t, size, 0xf7, in->reg & 7, jit_tr_r(RCX));	/* mul/imul ecx or rcx */
	jit_tr_ins(t, 8, 0x8b, R8, jit_tr_r(RDX));
	jit_tr_flags_set(t, F_ARITH);
	jit_tr_greg_store(t, in, RAX, JIT_RAX, size);
	jit_tr_greg_store(t, in, R8, JIT_RDX, size);
	return TR_OK;
}

/* 98 CWDE/CDQE and 99 CDQ/CQO (32 and 64 bits): the host's own, which
 * leave the flags alone. */
int jit_tr_cwd(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	if (size < 4)
		return TR_NO;
	jit_tr_greg_load(t, in, RAX, JIT_RAX, 8);
	if (size == 8)
		jit_tr_byte(&t->b, 0x48);
	jit_tr_byte(&t->b, in->op);			/* cwde/cdqe, cdq/cqo */
	if (in->op == 0x98) {
		jit_tr_greg_store(t, in, RAX, JIT_RAX, size);
	} else {
		jit_tr_ins(t, 8, 0x8b, R8, jit_tr_r(RDX));
		jit_tr_greg_store(t, in, R8, JIT_RDX, size);
	}
	return TR_OK;
}

/* F7 /6: DIV of rDX:rAX by r/m (32 and 64 bits) on the host, with the
 * guest's flags in the host's as the interpreter runs it (they are
 * undefined after DIV).  A quotient that does not fit (rDX >= the
 * divisor, a zero divisor among them) raises #DE before anything
 * changes, as the SDM says; the host never sees it. */
static int div1(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint8_t *de;

	jit_tr_flags_sync(t);
	if (in->mod == 3) {
		jit_tr_greg_load(t, in, RCX, in->rm, size);
	} else {
		jit_tr_rm_to_rax(t, in, size);
		jit_tr_ins(t, 8, 0x8b, RCX, jit_tr_r(RAX));
	}
	jit_tr_greg_load(t, in, RDX, JIT_RDX, size);
	jit_tr_ins(t, size, 0x3b, RDX, jit_tr_r(RCX));		/* cmp rdx, rcx */
	de = jit_tr_jump(&t->b, 3);				/* jae: #DE */
	jit_tr_cold_raise(t, de, EXC_DE);
	jit_tr_flags_to_host(t);				/* keeps RAX, RCX */
	jit_tr_greg_load(t, in, RDX, JIT_RDX, size);
	jit_tr_greg_load(t, in, RAX, JIT_RAX, size);
	jit_tr_ins(t, size, 0xf7, 6, jit_tr_r(RCX));		/* div ecx or rcx */
	jit_tr_ins(t, 8, 0x8b, R8, jit_tr_r(RDX));
	jit_tr_flags_set(t, F_ARITH);
	jit_tr_greg_store(t, in, RAX, JIT_RAX, size);
	jit_tr_greg_store(t, in, R8, JIT_RDX, size);
	return TR_OK;
}

/* F6/F7: TEST r/m, imm; NOT and NEG of a register; MUL/IMUL; DIV */
int jit_tr_grp3(struct jit_tr *t, const struct jit_insn *in)
{
	if ((in->reg & 7) == 0)
		return jit_tr_alu(t, in);
	if (in->mod == 3 && ((in->reg & 7) == 2 || (in->reg & 7) == 3))
		return jit_tr_notneg(t, in);
	if (in->op == 0xf7 && in->opsize >= 2 && ((in->reg & 7) == 4 || (in->reg & 7) == 5))
		return mul1(t, in);
	if (in->op == 0xf7 && in->opsize >= 4 && (in->reg & 7) == 6)
		return div1(t, in);
	return TR_NO;
}

/* D2/D3 /4 /5 /7: SHL, SHR, SAR of a register by CL on the host, whose
 * flags are the guest's but for a zero count, which leaves the guest's as
 * they were (and still writes a 32-bit register): they go into the
 * host's on a path of its own. */
static int shift_cl(struct jit_tr *t, const struct jit_insn *in, unsigned ext)
{
	unsigned size = in->opsize;
	struct jit_tr_rm dop;
	uint8_t *zero, *join;

	jit_tr_ld(t, 1, RCX, jit_tr_gpr(t, JIT_RCX));
	dop = greg_op(t, in, in->rm, size);
	if (t->fl_dead) {			/* a zero count: the value stays */
		jit_tr_ins(t, size, in->op, ext, dop);
		greg_done(t, in, dop, in->rm, size);
		return TR_OK;
	}
	jit_tr_ins8(t, 1, 0xf6, 0, jit_tr_r(RCX), size == 8 ? 63 : 31);	/* test cl, mask */
	zero = jit_tr_jump(&t->b, 4);				/* je */
	jit_tr_ins(t, size, in->op, ext, dop);
	join = jit_tr_jump(&t->b, -1);
	jit_tr_here(&t->b, zero);
	jit_tr_ins(t, size, in->op, ext, dop);		/* a 32-bit one still clears the upper half */
	jit_tr_flags_to_host(t);				/* keeps RAX */
	jit_tr_here(&t->b, join);
	jit_tr_flags_set(t, F_ARITH);
	greg_done(t, in, dop, in->rm, size);
	return TR_OK;
}

/* C0/C1/D0-D3 with a register operand: shifts and rotates on the host
 * with the guest's flags loaded (a zero count changes nothing). */
int jit_tr_grp2(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, ext = in->reg & 7, o = in->op, count;
	struct jit_tr_rm dop;

	if (in->mod != 3)
		return TR_NO;
	if (ext == 6)
		ext = 4;				/* SAL is SHL */
	if (o >= 0xd2 && ext >= 4)
		return shift_cl(t, in, ext);
	count = o >= 0xd2 ? 0 : o >= 0xd0 ? 1 : (unsigned)in->imm & (size == 8 ? 63 : 31);
	if (!count || ext == 2 || ext == 3)
		jit_tr_flags_sync(t);		/* before RCX and RAX are loaded */
	if (o >= 0xd2)
		jit_tr_ld(t, 1, RCX, jit_tr_gpr(t, JIT_RCX));
	dop = greg_op(t, in, in->rm, size);
	if (!count || ext == 2 || ext == 3)
		jit_tr_flags_load(t);		/* a CL count, RCL/RCR: flags in */
	if (o <= 0xc1)
		jit_tr_ins8(t, size, o, ext, dop, (uint8_t)in->imm);
	else
		jit_tr_ins(t, size, o, ext, dop);
	/* a known count: shifts set every flag, rotates CF and (by 1) OF;
	 * the host leaves OF alone on longer rotates */
	jit_tr_flags_set(t, !count || ext >= 2 ? F_ARITH : count == 1 ? F_CF | F_OF : F_CF);
	greg_done(t, in, dop, in->rm, size);
	return TR_OK;
}

/* 0F AF, 69, 6B: IMUL r, r/m [, imm] */
int jit_tr_imul(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	if (size < 2)
		return TR_NO;
	if (in->map == MAP_0F && t->host[in->reg] >= 0) {	/* in the cached register */
		struct jit_tr_rm src = jit_tr_r(RAX);

		if (in->mod == 3)
			src = jit_tr_gpr(t, in->rm);
		else
			jit_tr_rm_to_rax(t, in, size);
		jit_tr_ins(t, size, 0x0faf, (unsigned)t->host[in->reg], src);
		jit_tr_flags_set(t, F_ARITH);
		jit_tr_gpr_written(t, in->reg);
		return TR_OK;
	}
	jit_tr_rm_to_rax(t, in, size);
	jit_tr_ins(t, 8, 0x8b, RCX, jit_tr_r(RAX));
	if (in->map == MAP_0F)
		jit_tr_greg_load(t, in, RAX, in->reg, size);
	else
		jit_tr_mov_imm(&t->b, RAX, in->imm & size_mask(size));
	jit_tr_ins(t, size, 0x0faf, RAX, jit_tr_r(RCX));		/* imul eax, ecx */
	jit_tr_flags_set(t, F_ARITH);
	jit_tr_greg_store(t, in, RAX, in->reg, size);
	return TR_OK;
}

/* FE/FF /0 /1 with a register operand: INC/DEC (CF kept) */
int jit_tr_incdec(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, ext = in->reg & 7;
	struct jit_tr_rm dop;

	if (in->mod != 3 || ext > 1)
		return TR_NO;
	dop = greg_op(t, in, in->rm, size);
	jit_tr_ins(t, size, size == 1 ? 0xfe : 0xff, ext, dop);
	jit_tr_flags_set(t, F_ARITH & ~F_CF);
	greg_done(t, in, dop, in->rm, size);
	return TR_OK;
}

/*
 * 0F 40-4F: CMOVcc with the host's CMOVcc, which, as the guest's, reads
 * its source (and faults) either way and clears the upper half of a
 * 32-bit destination either way.
 */
int jit_tr_cmov(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, dst = in->reg;
	struct jit_tr_rm src;
	int cc;

	if (in->mod != 3) {
		jit_tr_rm_to_rax(t, in, size);
		jit_tr_ins(t, 8, 0x8b, R8, jit_tr_r(RAX));
		src = jit_tr_r(R8);
	} else {
		src = jit_tr_gpr(t, in->rm);
	}
	cc = jit_tr_cond(t, in->op & 15);		/* clobbers RAX RCX RDX */
	if (t->host[dst] >= 0) {
		jit_tr_ins(t, size, 0x0f40 | (uint32_t)cc, (unsigned)t->host[dst], src);
		jit_tr_gpr_written(t, dst);
		return TR_OK;
	}
	jit_tr_ld(t, 8, RSI, jit_tr_m(RBX, OFF_GPR(dst)));
	jit_tr_ins(t, size, 0x0f40 | (uint32_t)cc, RSI, src);
	jit_tr_st(t, 8, RSI, jit_tr_m(RBX, OFF_GPR(dst)));
	return TR_OK;
}

/* 0F 90-9F: SETcc of a register */
int jit_tr_setcc(struct jit_tr *t, const struct jit_insn *in)
{
	int cc;

	if (in->mod != 3)
		return TR_NO;
	cc = jit_tr_cond(t, in->op & 15);
	if (!jit_tr_greg(t, in, in->rm, 1).mem && t->host[in->rm] >= 0) {
		jit_tr_ins(t, 1, 0x0f90 | (uint32_t)cc, 0, jit_tr_gpr(t, in->rm));
		jit_tr_gpr_written(t, in->rm);
		return TR_OK;
	}
	jit_tr_ins(t, 1, 0x0f90 | (uint32_t)cc, 0, jit_tr_r(RAX));
	jit_tr_greg_store(t, in, RAX, in->rm, 1);
	return TR_OK;
}

/* 0F C8-CF: BSWAP r32/r64 */
int jit_tr_bswap(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->opsize < 4)
		return TR_NO;
	jit_tr_ld(t, in->opsize, RAX, jit_tr_gpr(t, in->reg));
	if (in->opsize == 8)
		jit_tr_byte(&t->b, 0x48);
	jit_tr_byte(&t->b, 0x0f);
	jit_tr_byte(&t->b, 0xc8);			/* bswap eax / rax */
	jit_tr_greg_store(t, in, RAX, in->reg, in->opsize);
	return TR_OK;
}

/* F6/F7 /2 NOT, /3 NEG of a register */
int jit_tr_notneg(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, ext = in->reg & 7;
	struct jit_tr_rm dop = greg_op(t, in, in->rm, size);

	jit_tr_ins(t, size, size == 1 ? 0xf6 : 0xf7, ext, dop);
	if (ext == 3)
		jit_tr_flags_set(t, F_ARITH);
	greg_done(t, in, dop, in->rm, size);
	return TR_OK;
}
