/*
 * Integer SSE instructions between XMM registers, run on the host's SSE
 * unit: the guest's registers stay in cpu->fpu.xmm; the instruction runs
 * on host XMM0 (its destination) and XMM1 (its source), which translated
 * code otherwise uses only as scratch (chained entries' code checks).
 * Only 66-prefixed forms of the 0F map (and 66 0F 38 00, PSHUFB) whose
 * result depends on their operands alone: no MXCSR, no RFLAGS; a general
 * register only for MOVD/MOVQ and PMOVMSKB (through host RAX); and the
 * 16-byte moves (MOVUPS/MOVAPS/MOVUPD/MOVAPD, MOVDQA, MOVDQU).  A 16-byte
 * memory operand goes through jit_tr_mem_load16() or
 * jit_tr_mem_store16_last() (the TLB's fast path, the interpreter's
 * access on a miss, a store's SMC check), #GP(0) first when it must be
 * aligned and is not.  Anything else goes to its handler (sse.c), as
 * before.
 *
 * sse.c's check_sse() comes first, once per block until a handler runs
 * (a handler may write CR0 or CR4): CR0.EM or a clear CR4.OSFXSR raise
 * #UD, CR0.TS #NM, from a cold path (jit_tr_cold_raise()), with the
 * state before the instruction.
 */
#include <stddef.h>

#include "jit/internal.h"

#define OFF_XMM(r) ((int32_t)(offsetof(struct jit_cpu, fpu.xmm) + 16 * (r)))
#define OFF_CR0 ((int32_t)offsetof(struct jit_cpu, cr0))
#define OFF_CR4 ((int32_t)offsetof(struct jit_cpu, cr4))

/* 66 0F xx with an XMM destination and an XMM or m128 source that only
 * computes: unpacks, packs, compares, PSHUFD, shifts by a register,
 * integer arithmetic and logic (not D0 ADDSUBPD, D6 MOVQ, D7 PMOVMSKB,
 * E6 CVTTPD2DQ, E7 MOVNTDQ, F0, F7 MASKMOVDQU, FF). */
static bool two_regs(uint8_t o)
{
	if (o >= 0x60 && o <= 0x6d)
		return true;
	if (o == 0x70 || (o >= 0x74 && o <= 0x76))
		return true;
	if (o >= 0xd1 && o <= 0xfe)
		return !(o == 0xd6 || o == 0xd7 || o == 0xe6 || o == 0xe7 || o == 0xf0 || o == 0xf7);
	return false;
}

/* movdqu xmm<hx>, [rbx + OFF_XMM(g)] (store: movdqu [..], xmm<hx>) */
static void xmm_move(struct jit_tr *t, unsigned hx, unsigned g, bool store)
{
	jit_tr_byte(&t->b, 0xf3);
	jit_tr_ins(t, 4, store ? 0x0f7f : 0x0f6f, hx, jit_tr_m(RBX, OFF_XMM(g)));
}

/* The host instruction 66 [REX.W] 0F [38] op modrm. */
static void host_op(struct jit_tr *t, bool w, bool map38, uint8_t op, uint8_t modrm)
{
	jit_tr_byte(&t->b, 0x66);
	if (w)
		jit_tr_byte(&t->b, 0x48);
	jit_tr_byte(&t->b, 0x0f);
	if (map38)
		jit_tr_byte(&t->b, 0x38);
	jit_tr_byte(&t->b, op);
	jit_tr_byte(&t->b, modrm);
}

/* check_sse() of sse.c, in translated code: once per block until a
 * handler runs. */
static void sse_check(struct jit_tr *t)
{
	uint8_t *ud;

	if (t->sse_ok)
		return;
	jit_tr_ins8(t, 1, 0xf6, 0, jit_tr_m(RBX, OFF_CR0), CR0_EM);		/* test */
	ud = jit_tr_jump(&t->b, 5);						/* jnz */
	jit_tr_cold_raise(t, ud, EXC_UD);
	jit_tr_ins32(t, 4, 0xf7, 0, jit_tr_m(RBX, OFF_CR4), CR4_OSFXSR);	/* test */
	ud = jit_tr_jump(&t->b, 4);						/* jz */
	jit_tr_cold_raise(t, ud, EXC_UD);
	jit_tr_ins8(t, 1, 0xf6, 0, jit_tr_m(RBX, OFF_CR0), CR0_TS);
	ud = jit_tr_jump(&t->b, 5);
	jit_tr_cold_raise(t, ud, EXC_NM);
	t->sse_ok = true;
}

/* 66 0F 6E MOVD/MOVQ xmm, r/m; 66 0F 7E MOVD/MOVQ r, xmm; 66 0F D7
 * PMOVMSKB r, xmm: through host RAX and XMM0. */
static int gpr_form(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned gsize = in->rex & 8 ? 8 : 4;

	sse_check(t);
	switch (in->op) {
	case 0x6e:
		if (in->mod == 3) {
			jit_tr_greg_load(t, in, RAX, in->rm, gsize);
		} else {
			jit_tr_ea(t, in);
			jit_tr_mem_load(t, in->seg, gsize);
		}
		host_op(t, gsize == 8, false, 0x6e, 0xc0);		/* movd/movq xmm0, eax/rax */
		xmm_move(t, 0, in->reg, true);		/* zero-extended to 128 bits */
		return TR_OK;
	case 0x7e:
		xmm_move(t, 0, in->reg, false);
		host_op(t, gsize == 8, false, 0x7e, 0xc0);		/* movd/movq eax/rax, xmm0 */
		jit_tr_greg_store(t, in, RAX, in->rm, gsize);
		return TR_OK;
	default:					/* D7 */
		xmm_move(t, 1, in->rm, false);
		host_op(t, false, false, 0xd7, 0xc1);			/* pmovmskb eax, xmm1 */
		jit_tr_greg_store(t, in, RAX, in->reg, 8);
		return TR_OK;
	}
}

/* RSI = the memory operand's effective address: #GP(0) first when it
 * must be 16-byte aligned and is not, as sse.c's load() and store()
 * check it. */
static void ea16(struct jit_tr *t, const struct jit_insn *in, bool aligned)
{
	uint8_t *gp;

	jit_tr_ea(t, in);
	if (aligned) {
		jit_tr_ins8(t, 1, 0xf6, 0, jit_tr_r(RSI), 15);		/* test sil, 15 */
		gp = jit_tr_jump(&t->b, 5);				/* jnz */
		jit_tr_cold_raise(t, gp, EXC_GP);
	}
}

/* XMM1 = the memory operand (16 bytes). */
static void src_mem(struct jit_tr *t, const struct jit_insn *in, bool aligned)
{
	ea16(t, in, aligned);
	jit_tr_mem_load16(t, in->seg);
}

/* The moves of 16 bytes: MOVUPS/MOVUPD 10/11, MOVAPS/MOVAPD 28/29,
 * MOVDQA 66 6F/7F, MOVDQU F3 6F/7F (loads, stores, between registers);
 * the aligned ones raise #GP(0) for a misaligned operand.  A store goes
 * through jit_tr_mem_store16_last() with the SMC check after it. */
static int xmm_moves(struct jit_tr *t, const struct jit_insn *in)
{
	uint8_t o = in->op, *done;
	bool store = o == 0x11 || o == 0x29 || o == 0x7f;
	bool aligned = o == 0x28 || o == 0x29 || ((o == 0x6f || o == 0x7f) && in->pfx66);

	sse_check(t);	/* its TESTs clobber the host's flags: keeps_hflags() spilled them */
	if (in->mod == 3) {
		xmm_move(t, 1, store ? in->reg : in->rm, false);
		xmm_move(t, 1, store ? in->rm : in->reg, true);
		return TR_OK;
	}
	if (!store) {
		src_mem(t, in, aligned);
		xmm_move(t, 1, in->reg, true);
		return TR_OK;
	}
	xmm_move(t, 1, in->reg, false);
	ea16(t, in, aligned);
	jit_tr_mem_store16_last(t, in->seg, &done);
	jit_tr_mem_store_end(t, done);
	return TR_OK;
}

int jit_tr_sse(struct jit_tr *t, const struct jit_insn *in)
{
	uint8_t o = in->op;
	bool shift_imm = in->map == MAP_0F && o >= 0x71 && o <= 0x73;
	unsigned ext = in->reg & 7;

	if (in->lock)
		return TR_NO;
	if (in->map == MAP_0F && !in->rep && (o == 0x10 || o == 0x11 || o == 0x28 || o == 0x29))
		return xmm_moves(t, in);
	if (in->map == MAP_0F && (o == 0x6f || o == 0x7f) &&
	    ((in->pfx66 && !in->rep) || (in->rep == 0xf3 && !in->pfx66)))
		return xmm_moves(t, in);
	if (!in->pfx66 || in->rep)
		return TR_NO;
	if (in->map == MAP_0F && (o == 0x6e || o == 0x7e || o == 0xd7))
		return in->mod == 3 || o == 0x6e ? gpr_form(t, in) : TR_NO;
	if (in->map == MAP_0F38) {
		if (o != 0x00)				/* PSHUFB */
			return TR_NO;
	} else if (in->map != MAP_0F) {
		return TR_NO;
	} else if (shift_imm) {
		/* 71: PSRLW PSRAW PSLLW; 72: PSRLD PSRAD PSLLD; 73: PSRLQ PSRLDQ PSLLQ PSLLDQ */
		if (in->mod != 3 || !(ext == 2 || ext == 6 || (ext == 4 && o != 0x73) ||
				      ((ext == 3 || ext == 7) && o == 0x73)))
			return TR_NO;
	} else if (!two_regs(o)) {
		return TR_NO;
	}
	sse_check(t);	/* its TESTs clobber the host's flags: keeps_hflags() spilled them */
	if (shift_imm) {		/* the register is the destination, in ModRM.rm */
		xmm_move(t, 0, in->rm, false);
		host_op(t, false, false, o, (uint8_t)(0xc0 | ext << 3));	/* xmm0, imm8 */
		jit_tr_byte(&t->b, (uint8_t)in->imm);
		xmm_move(t, 0, in->rm, true);
		return TR_OK;
	}
	/* the source into XMM1: a register, or memory (aligned) */
	if (in->mod == 3)
		xmm_move(t, 1, in->rm, false);
	else
		src_mem(t, in, true);
	xmm_move(t, 0, in->reg, false);
	host_op(t, false, in->map == MAP_0F38, o, 0xc1);	/* xmm0, xmm1 */
	if (in->map == MAP_0F && o == 0x70)
		jit_tr_byte(&t->b, (uint8_t)in->imm);	/* PSHUFD's order */
	xmm_move(t, 0, in->reg, true);
	return TR_OK;
}
