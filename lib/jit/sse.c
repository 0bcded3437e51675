/*
 * MMX and SSE through SSSE3: operand access, the table-driven binary
 * operations (sse_ops.c) and the instructions that are not a plain
 * function of two operands - moves, shuffles with an immediate, shifts by
 * an immediate, conversions to and from general registers, comparisons
 * into EFLAGS, MXCSR and the fences (Intel SDM vol. 2; vol. 1, chapters
 * 9-12; vol. 3, 13.1-13.4 for CR0.EM/TS and CR4.OSFXSR checks).
 *
 * MMX registers alias the x87 registers' significands: writing one sets
 * that register's exponent to all ones, TOP to 0 and every tag to valid
 * (SDM vol. 1, 9.5).
 */
#include "jit/internal.h"

/* ---- register files ---- */

static uint64_t mm_get(const struct jit_cpu *cpu, unsigned i)
{
	return cpu->fpu.st[i & 7].r.mant;
}

static void mmx_enter(struct jit_cpu *cpu)
{
	cpu->fpu.fsw &= ~0x3800;
	cpu->fpu.ftw = 0xff;
}

static void mm_set(struct jit_cpu *cpu, unsigned i, uint64_t v)
{
	cpu->fpu.st[i & 7].r.mant = v;
	cpu->fpu.st[i & 7].r.exp = 0xffff;
	mmx_enter(cpu);
}

static void check_sse(struct jit_cpu *cpu, bool mmx)
{
	if ((cpu->cr0 & CR0_EM) || (!mmx && !(cpu->cr4 & CR4_OSFXSR)))
		jit_raise(cpu, EXC_UD, 0);
	if (cpu->cr0 & CR0_TS)
		jit_raise(cpu, EXC_NM, 0);
}

/* ---- memory operands ---- */

static void load(struct jit_cpu *cpu, const struct jit_insn *in, union jit_xmm *v,
		 unsigned size, bool aligned)
{
	uint64_t ea = insn_ea(cpu, in), lin;

	if (aligned && (ea & 15))
		jit_raise(cpu, EXC_GP, 0);
	lin = jit_seg_lin(cpu, in->seg, ea, size, ACC_R);
	memset(v, 0, sizeof(*v));
	if (size == 16) {
		lin_read16(cpu, lin, v->q, acc_user(cpu, ACC_R));
	} else {
		v->q[0] = lin_read(cpu, lin, size, acc_user(cpu, ACC_R));
	}
}

static void store(struct jit_cpu *cpu, const struct jit_insn *in, const union jit_xmm *v,
		  unsigned size, bool aligned)
{
	uint64_t ea = insn_ea(cpu, in), lin;

	if (aligned && (ea & 15))
		jit_raise(cpu, EXC_GP, 0);
	lin = jit_seg_lin(cpu, in->seg, ea, size, ACC_W);
	if (size == 16) {
		jit_write_bytes(cpu, lin, v->b, 16, acc_user(cpu, ACC_W));
		return;
	}
	lin_write(cpu, lin, size, v->q[0], acc_user(cpu, ACC_W));
}

/* The xmm/mN source operand. */
static void src_x(struct jit_cpu *cpu, const struct jit_insn *in, union jit_xmm *v,
		  unsigned size, bool aligned)
{
	if (in->mod == 3)
		*v = cpu->fpu.xmm[in->rm];
	else
		load(cpu, in, v, size, aligned);
}

static uint64_t src_mm(struct jit_cpu *cpu, const struct jit_insn *in)
{
	union jit_xmm v;

	if (in->mod == 3)
		return mm_get(cpu, in->rm);
	load(cpu, in, &v, 8, false);
	return v.q[0];
}

/* Exception flags from an FP operation: unmasked ones fault (#XM). */
static void fp_flags(struct jit_cpu *cpu, uint32_t flags)
{
	if (flags & ~(cpu->fpu.mxcsr >> 7) & 0x3f)
		jit_raise(cpu, (cpu->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, 0);
	cpu->fpu.mxcsr |= flags;
}

static void run_table(struct jit_cpu *cpu, const struct jit_insn *in, const struct jit_sse_op *e)
{
	static const uint8_t sizes[] = { 0, 16, 8, 4, 8 };
	union jit_xmm d, s;

	if (e->form == SSE_M64) {
		d.q[0] = mm_get(cpu, in->reg);
		s.q[0] = src_mm(cpu, in);
		e->fn(&d, &s);
		mm_set(cpu, in->reg, d.q[0]);
		return;
	}
	d = cpu->fpu.xmm[in->reg];
	src_x(cpu, in, &s, sizes[e->form], e->form == SSE_X128);
	if (e->fp)
		fp_flags(cpu, jit_x_fp(cpu->fpu.mxcsr, e->fn, &d, &s));
	else
		e->fn(&d, &s);
	cpu->fpu.xmm[in->reg] = d;
}

static int prefix_index(const struct jit_insn *in)
{
	return in->rep == 0xf3 ? 2 : in->rep == 0xf2 ? 3 : in->pfx66 ? 1 : 0;
}

/* ---- moves ---- */

/* 0F 10-17, 28/29, 2B, 6E/6F, 7E/7F, D6, E7, F0: the move family */
static bool moves(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	union jit_xmm *d = &cpu->fpu.xmm[in->reg], v;
	unsigned gsize = in->rex & 8 ? 8 : 4;

	switch (in->op) {
	case 0x10:
		if (pfx < 2) {
			src_x(cpu, in, d, 16, false);
		} else if (in->mod == 3) {
			if (pfx == 2)
				d->d[0] = cpu->fpu.xmm[in->rm].d[0];
			else
				d->q[0] = cpu->fpu.xmm[in->rm].q[0];
		} else {
			load(cpu, in, d, pfx == 2 ? 4 : 8, false);
		}
		return true;
	case 0x11:
		if (pfx < 2) {
			if (in->mod == 3)
				cpu->fpu.xmm[in->rm] = *d;
			else
				store(cpu, in, d, 16, false);
		} else if (in->mod == 3) {
			if (pfx == 2)
				cpu->fpu.xmm[in->rm].d[0] = d->d[0];
			else
				cpu->fpu.xmm[in->rm].q[0] = d->q[0];
		} else {
			store(cpu, in, d, pfx == 2 ? 4 : 8, false);
		}
		return true;
	case 0x12:
	case 0x16: {
		bool hi = in->op == 0x16;

		if (pfx == 2) {		/* MOVSLDUP / MOVSHDUP */
			src_x(cpu, in, &v, 16, true);
			d->d[0] = d->d[1] = v.d[hi];
			d->d[2] = d->d[3] = v.d[2 + hi];
		} else if (pfx == 3 && !hi) {	/* MOVDDUP */
			src_x(cpu, in, &v, 8, false);
			d->q[0] = d->q[1] = v.q[0];
		} else if (pfx >= 2) {
			return false;
		} else if (in->mod == 3) {	/* MOVHLPS / MOVLHPS */
			if (pfx)
				return false;
			d->q[hi] = cpu->fpu.xmm[in->rm].q[!hi];
		} else {
			load(cpu, in, &v, 8, false);
			d->q[hi] = v.q[0];
		}
		return true;
	}
	case 0x13:
	case 0x17:
		if (in->mod == 3 || pfx >= 2)
			return false;
		v.q[0] = d->q[in->op == 0x17];
		store(cpu, in, &v, 8, false);
		return true;
	case 0x28:
		if (pfx >= 2)
			return false;
		src_x(cpu, in, d, 16, true);
		return true;
	case 0x29:
	case 0x2b:
		if (pfx >= 2 || (in->op == 0x2b && in->mod == 3))
			return false;
		if (in->mod == 3)
			cpu->fpu.xmm[in->rm] = *d;
		else
			store(cpu, in, d, 16, true);
		return true;
	case 0x6e:
		if (pfx >= 2)
			return false;
		v.q[0] = rm_read(cpu, in, gsize);
		if (pfx == 0) {
			mm_set(cpu, in->reg, v.q[0]);
		} else {
			memset(d, 0, sizeof(*d));
			d->q[0] = v.q[0];
		}
		return true;
	case 0x6f:
		if (pfx == 0)
			mm_set(cpu, in->reg, src_mm(cpu, in));
		else if (pfx == 1 || pfx == 2)
			src_x(cpu, in, d, 16, pfx == 1);
		else
			return false;
		return true;
	case 0x7e:
		if (pfx == 2) {			/* MOVQ xmm, xmm/m64 */
			src_x(cpu, in, &v, 8, false);
			d->q[0] = v.q[0];
			d->q[1] = 0;
		} else if (pfx < 2) {
			uint64_t x = pfx ? d->q[0] : mm_get(cpu, in->reg);

			if (!pfx)
				mmx_enter(cpu);
			if (in->mod == 3)
				reg_write(cpu, in, in->rm, gsize, x);
			else
				rm_write(cpu, in, gsize, x);
		} else {
			return false;
		}
		return true;
	case 0x7f:
		if (pfx == 0) {
			if (in->mod == 3)
				mm_set(cpu, in->rm, mm_get(cpu, in->reg));
			else
				rm_write(cpu, in, 8, mm_get(cpu, in->reg));
			mmx_enter(cpu);
		} else if (pfx <= 2) {
			if (in->mod == 3)
				cpu->fpu.xmm[in->rm] = *d;
			else
				store(cpu, in, d, 16, pfx == 1);
		} else {
			return false;
		}
		return true;
	case 0xd6:
		if (pfx == 1) {
			if (in->mod == 3) {
				cpu->fpu.xmm[in->rm].q[0] = d->q[0];
				cpu->fpu.xmm[in->rm].q[1] = 0;
			} else {
				store(cpu, in, d, 8, false);
			}
		} else if (pfx == 2 && in->mod == 3) {	/* MOVQ2DQ */
			d->q[0] = mm_get(cpu, in->rm);
			d->q[1] = 0;
			mmx_enter(cpu);
		} else if (pfx == 3 && in->mod == 3) {	/* MOVDQ2Q */
			mm_set(cpu, in->reg, cpu->fpu.xmm[in->rm].q[0]);
		} else {
			return false;
		}
		return true;
	case 0xe7:
		if (in->mod == 3 || pfx > 1)
			return false;
		if (pfx == 0) {
			rm_write(cpu, in, 8, mm_get(cpu, in->reg));
			mmx_enter(cpu);
		} else {
			store(cpu, in, d, 16, true);
		}
		return true;
	case 0xf0:
		if (pfx != 3 || in->mod == 3)
			return false;
		load(cpu, in, d, 16, false);
		return true;
	}
	return false;
}

/* ---- immediate shuffles and shifts ---- */

/* 0F 70: PSHUFW / PSHUFD / PSHUFHW / PSHUFLW */
static void pshuf(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	uint8_t imm = (uint8_t)in->imm;
	union jit_xmm s, d;

	if (pfx == 0) {
		s.q[0] = src_mm(cpu, in);
		for (int i = 0; i < 4; i++)
			d.w[i] = s.w[(imm >> (2 * i)) & 3];
		mm_set(cpu, in->reg, d.q[0]);
		return;
	}
	src_x(cpu, in, &s, 16, true);
	d = s;
	for (int i = 0; i < 4; i++) {
		unsigned k = (imm >> (2 * i)) & 3;

		if (pfx == 1)
			d.d[i] = s.d[k];
		else if (pfx == 2)
			d.w[4 + i] = s.w[4 + k];
		else
			d.w[i] = s.w[k];
	}
	cpu->fpu.xmm[in->reg] = d;
}

/* 0F 71/72/73: shift by immediate (groups 12-14), via the shift-by-register
 * operation with the count in a vector */
static bool shift_imm(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	static const uint8_t to_reg[3][8] = {
		{ [2] = 0xd1, [4] = 0xe1, [6] = 0xf1 },
		{ [2] = 0xd2, [4] = 0xe2, [6] = 0xf2 },
		{ [2] = 0xd3, [6] = 0xf3 },
	};
	unsigned g = in->reg & 7, n = (uint8_t)in->imm;
	const struct jit_sse_op *e;
	union jit_xmm d, s = { .q = { n, 0 } };

	if (in->mod != 3 || pfx > 1)
		return false;
	if (in->op == 0x73 && pfx == 1 && (g == 3 || g == 7)) {	/* PSRLDQ / PSLLDQ */
		union jit_xmm *x = &cpu->fpu.xmm[in->rm];

		memset(&d, 0, sizeof(d));
		for (unsigned i = 0; i < 16; i++) {
			int k = g == 3 ? (int)(i + n) : (int)i - (int)n;

			if (n < 16 && k >= 0 && k < 16)
				d.b[i] = x->b[k];
		}
		*x = d;
		return true;
	}
	if (!to_reg[in->op - 0x71][g])
		return false;
	e = jit_sse_lookup(MAP_0F, to_reg[in->op - 0x71][g], pfx);
	if (pfx == 0) {
		d.q[0] = mm_get(cpu, in->rm);
		e->fn(&d, &s);
		mm_set(cpu, in->rm, d.q[0]);
	} else {
		e->fn(&cpu->fpu.xmm[in->rm], &s);
	}
	return true;
}

/* 0F C6: SHUFPS / SHUFPD */
static void shufp(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	uint8_t imm = (uint8_t)in->imm;
	union jit_xmm s, *d = &cpu->fpu.xmm[in->reg], r;

	src_x(cpu, in, &s, 16, true);
	if (pfx == 0) {
		r.d[0] = d->d[imm & 3];
		r.d[1] = d->d[(imm >> 2) & 3];
		r.d[2] = s.d[(imm >> 4) & 3];
		r.d[3] = s.d[(imm >> 6) & 3];
	} else {
		r.q[0] = d->q[imm & 1];
		r.q[1] = s.q[(imm >> 1) & 1];
	}
	*d = r;
}

/* 0F C4 PINSRW, 0F C5 PEXTRW */
static void pinsrw(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	unsigned sel = (uint8_t)in->imm & (pfx ? 7 : 3);

	if (in->op == 0xc4) {
		uint16_t v = (uint16_t)(in->mod == 3 ? cpu->gpr[in->rm] : rm_read(cpu, in, 2));

		if (pfx) {
			cpu->fpu.xmm[in->reg].w[sel] = v;
		} else {
			union jit_xmm t = { .q = { mm_get(cpu, in->reg) } };

			t.w[sel] = v;
			mm_set(cpu, in->reg, t.q[0]);
		}
		return;
	}
	if (in->mod != 3)
		jit_raise(cpu, EXC_UD, 0);
	if (pfx) {
		reg_write(cpu, in, in->reg, 8, cpu->fpu.xmm[in->rm].w[sel]);
	} else {
		union jit_xmm t = { .q = { mm_get(cpu, in->rm) } };

		mmx_enter(cpu);
		reg_write(cpu, in, in->reg, 8, t.w[sel]);
	}
}

/* 0F 50 MOVMSKPS/PD, 0F D7 PMOVMSKB */
static void movmsk(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	union jit_xmm s;
	uint64_t m = 0;

	if (in->mod != 3)
		jit_raise(cpu, EXC_UD, 0);
	if (in->op == 0xd7 && pfx == 0) {
		s.q[0] = mm_get(cpu, in->rm);
		mmx_enter(cpu);
		for (int i = 0; i < 8; i++)
			m |= (uint64_t)(s.b[i] >> 7) << i;
	} else {
		s = cpu->fpu.xmm[in->rm];
		if (in->op == 0xd7)
			for (int i = 0; i < 16; i++)
				m |= (uint64_t)(s.b[i] >> 7) << i;
		else if (pfx)
			m = (s.q[0] >> 63) | (s.q[1] >> 63) << 1;
		else
			for (int i = 0; i < 4; i++)
				m |= (uint64_t)(s.d[i] >> 31) << i;
	}
	reg_write(cpu, in, in->reg, 8, m);
}

/* ---- conversions and comparisons ---- */

/* 0F 2A: CVTPI2PS, CVTPI2PD, CVTSI2SS, CVTSI2SD */
static void cvt_from_int(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	union jit_xmm *d = &cpu->fpu.xmm[in->reg], t = *d;
	uint32_t host;

	if (pfx >= 2) {
		bool q = in->rex & 8;
		uint64_t v = in->mod == 3 ? cpu->gpr[in->rm] : rm_read(cpu, in, q ? 8 : 4);

		host = jit_x_mxcsr_begin(cpu->fpu.mxcsr);
		jit_x_cvtsi2(&t, v, pfx == 3, q);
		fp_flags(cpu, jit_x_mxcsr_end(host));
	} else {
		union jit_xmm s = { .q = { src_mm(cpu, in) } };

		mmx_enter(cpu);
		if (pfx == 1) {
			t.g[0] = (int32_t)s.d[0];
			t.g[1] = (int32_t)s.d[1];
		} else {
			union jit_xmm u = t;

			host = jit_x_mxcsr_begin(cpu->fpu.mxcsr);
			jit_x_cvtsi2(&t, (uint64_t)(int64_t)s.sd[0], false, false);
			jit_x_cvtsi2(&u, (uint64_t)(int64_t)s.sd[1], false, false);
			fp_flags(cpu, jit_x_mxcsr_end(host));
			t.f[1] = u.f[0];
		}
	}
	*d = t;
}

/* 0F 2C/2D: CVT[T]PS2PI, CVT[T]PD2PI, CVT[T]SS2SI, CVT[T]SD2SI */
static void cvt_to_int(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	bool trunc = in->op == 0x2c, dbl = pfx & 1;
	union jit_xmm s, e;
	uint32_t host;
	uint64_t r0, r1 = 0;

	if (pfx >= 2) {
		dbl = pfx == 3;
		src_x(cpu, in, &s, dbl ? 8 : 4, false);
		host = jit_x_mxcsr_begin(cpu->fpu.mxcsr);
		r0 = jit_x_cvt2si(&s, dbl, trunc, in->rex & 8);
		fp_flags(cpu, jit_x_mxcsr_end(host));
		reg_write(cpu, in, in->reg, in->rex & 8 ? 8 : 4, r0);
		return;
	}
	if (pfx == 0) {
		s.q[0] = 0;
		if (in->mod == 3)
			s = cpu->fpu.xmm[in->rm];
		else
			load(cpu, in, &s, 8, false);
	} else {
		src_x(cpu, in, &s, 16, true);
	}
	e = s;
	if (dbl)
		e.q[0] = s.q[1];
	else
		e.d[0] = s.d[1];
	host = jit_x_mxcsr_begin(cpu->fpu.mxcsr);
	r0 = jit_x_cvt2si(&s, dbl, trunc, false);
	r1 = jit_x_cvt2si(&e, dbl, trunc, false);
	fp_flags(cpu, jit_x_mxcsr_end(host));
	mm_set(cpu, in->reg, (r0 & 0xffffffff) | r1 << 32);
}

/* 0F 2E/2F: UCOMISS/COMISS (UCOMISD/COMISD with 66) */
static void comis(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	union jit_xmm s;
	uint32_t host;
	uint64_t f;

	src_x(cpu, in, &s, pfx ? 8 : 4, false);
	host = jit_x_mxcsr_begin(cpu->fpu.mxcsr);
	f = jit_x_comi(&cpu->fpu.xmm[in->reg], &s, in->op == 0x2f, pfx == 1);
	fp_flags(cpu, jit_x_mxcsr_end(host));
	set_arith(cpu, f & (F_ZF | F_PF | F_CF));
}

/* 0F C2: CMPPS/CMPPD/CMPSS/CMPSD */
static void cmpp(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	static const uint8_t size[4] = { 16, 16, 4, 8 };
	union jit_xmm s, d = cpu->fpu.xmm[in->reg];
	uint32_t host;

	src_x(cpu, in, &s, size[pfx], pfx < 2);
	host = jit_x_mxcsr_begin(cpu->fpu.mxcsr);
	jit_x_cmp(&d, &s, pfx, (uint8_t)in->imm);
	fp_flags(cpu, jit_x_mxcsr_end(host));
	cpu->fpu.xmm[in->reg] = d;
}

/* 0F F7: MASKMOVQ / MASKMOVDQU to DS:rDI */
static void maskmov(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	union jit_xmm v, m;
	unsigned n = pfx ? 16 : 8;
	uint64_t di = cpu->gpr[JIT_RDI];

	if (in->mod != 3)
		jit_raise(cpu, EXC_UD, 0);
	if (pfx) {
		v = cpu->fpu.xmm[in->reg];
		m = cpu->fpu.xmm[in->rm];
	} else {
		v.q[0] = mm_get(cpu, in->reg);
		m.q[0] = mm_get(cpu, in->rm);
		mmx_enter(cpu);
	}
	for (unsigned i = 0; i < n; i++)
		if (m.b[i] & 0x80)
			mem_write(cpu, in->seg, (di + i) & size_mask(in->addrsize), 1, v.b[i]);
}

static bool special(struct jit_cpu *cpu, const struct jit_insn *in, int pfx)
{
	switch (in->op) {
	case 0x2a: cvt_from_int(cpu, in, pfx); return true;
	case 0x2c: case 0x2d: cvt_to_int(cpu, in, pfx); return true;
	case 0x2e: case 0x2f: if (pfx > 1) return false; comis(cpu, in, pfx); return true;
	case 0x50: if (pfx > 1) return false; movmsk(cpu, in, pfx); return true;
	case 0x70: pshuf(cpu, in, pfx); return true;
	case 0x71: case 0x72: case 0x73: return shift_imm(cpu, in, pfx);
	case 0xc2: cmpp(cpu, in, pfx); return true;
	case 0xc4: case 0xc5: if (pfx > 1) return false; pinsrw(cpu, in, pfx); return true;
	case 0xc6: if (pfx > 1) return false; shufp(cpu, in, pfx); return true;
	case 0xd7: if (pfx > 1) return false; movmsk(cpu, in, pfx); return true;
	case 0xf7: if (pfx > 1) return false; maskmov(cpu, in, pfx); return true;
	}
	return moves(cpu, in, pfx);
}

/* 0F 10-17, 28-2F, 50-7F, C2-C6, D0-FF: MMX and SSE */
void jit_op_sse(struct jit_cpu *cpu, const struct jit_insn *in)
{
	int pfx = prefix_index(in);
	const struct jit_sse_op *e = jit_sse_lookup(MAP_0F, in->op, pfx);
	bool mmx = pfx == 0 && ((in->op >= 0x60 && in->op <= 0x7f) || in->op >= 0xd0 ||
				in->op == 0xc4 || in->op == 0xc5);

	check_sse(cpu, mmx);
	if (e)
		run_table(cpu, in, e);
	else if (!special(cpu, in, pfx))
		jit_ud(cpu, in);
}

/* 0F 38 00-1E: SSSE3; 0F 3A 0F: PALIGNR */
void jit_op_ssse3(struct jit_cpu *cpu, const struct jit_insn *in)
{
	int pfx = prefix_index(in);
	const struct jit_sse_op *e;
	union jit_xmm s, d, r;
	unsigned n, w;

	if (pfx > 1)
		jit_ud(cpu, in);
	check_sse(cpu, pfx == 0);
	if (in->map == MAP_0F38) {
		e = jit_sse_lookup(MAP_0F38, in->op, pfx);
		if (!e)
			jit_ud(cpu, in);
		run_table(cpu, in, e);
		return;
	}
	n = (uint8_t)in->imm;
	w = pfx ? 16 : 8;
	memset(&r, 0, sizeof(r));
	if (pfx) {
		d = cpu->fpu.xmm[in->reg];
		src_x(cpu, in, &s, 16, true);
	} else {
		d.q[0] = mm_get(cpu, in->reg);
		s.q[0] = src_mm(cpu, in);
	}
	for (unsigned i = 0; i < w; i++) {
		unsigned k = i + n;

		r.b[i] = k < w ? s.b[k] : k < 2 * w ? d.b[k - w] : 0;
	}
	if (pfx)
		cpu->fpu.xmm[in->reg] = r;
	else
		mm_set(cpu, in->reg, r.q[0]);
}

/* 0F 77: EMMS */
void jit_op_emms(struct jit_cpu *cpu, const struct jit_insn *in)
{
	check_sse(cpu, true);
	cpu->fpu.ftw = 0;
}

/* 0F C3: MOVNTI m32/64, r */
void jit_op_movnti(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if (in->mod == 3 || in->opsize == 2)
		jit_ud(cpu, in);
	rm_write(cpu, in, in->opsize, cpu->gpr[in->reg]);
}

/* 0F AE: group 15 - FXSAVE FXRSTOR LDMXCSR STMXCSR CLFLUSH, fences */
void jit_op_grp15(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned g = in->reg & 7;
	uint8_t buf[512];
	uint64_t ea, lin;

	if (in->rep || in->pfx66)
		jit_ud(cpu, in);
	if (in->mod == 3) {
		if (g < 5)
			jit_ud(cpu, in);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		return;
	}
	ea = insn_ea(cpu, in);
	switch (g) {
	case 0:
	case 1:
		if (cpu->cr0 & (CR0_EM | CR0_TS))
			jit_raise(cpu, (cpu->cr0 & CR0_EM) ? EXC_UD : EXC_NM, 0);
		if (ea & 15)
			jit_raise(cpu, EXC_GP, 0);
		lin = jit_seg_lin(cpu, in->seg, ea, 512, g ? ACC_R : ACC_W);
		if (g == 0) {
			jit_fxsave(cpu, buf);
			if (!(in->rex & 8)) {	/* 32-bit format: FIP, FCS, FDP, FDS */
				memset(buf + 8, 0, 16);
				memcpy(buf + 8, &cpu->fpu.fip, 4);
				memcpy(buf + 16, &cpu->fpu.fdp, 4);
			}
			jit_write_bytes(cpu, lin, buf, 512, acc_user(cpu, ACC_W));
		} else {
			jit_read_bytes(cpu, lin, buf, 512, acc_user(cpu, ACC_R));
			if (((uint32_t)buf[24] | buf[25] << 8 | buf[26] << 16 |
			     (uint32_t)buf[27] << 24) & ~0xffffu)
				jit_raise(cpu, EXC_GP, 0);
			jit_fxrstor(cpu, buf);
		}
		return;
	case 2:
	case 3:
		check_sse(cpu, false);
		if (g == 2) {
			uint32_t v = (uint32_t)mem_read(cpu, in->seg, ea, 4);

			if (v & ~0xffffu)
				jit_raise(cpu, EXC_GP, 0);
			cpu->fpu.mxcsr = v;
		} else {
			mem_write(cpu, in->seg, ea, 4, cpu->fpu.mxcsr);
		}
		return;
	case 7:		/* CLFLUSH: only the access check */
		jit_seg_lin(cpu, in->seg, ea, 1, ACC_R);
		return;
	}
	jit_ud(cpu, in);
}
