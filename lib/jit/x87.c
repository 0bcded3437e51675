/*
 * The x87 FPU instructions, D8-DF (Intel SDM vol. 1, chapter 8; vol. 2,
 * each F* instruction; opcode map tables ).
 *
 * The register stack, tags, TOP and stack faults are modelled here; the
 * arithmetic itself runs on the host's x87 unit (the host is x86-64),
 * loaded with the guest's control word (exceptions masked on the host)
 * so precision and rounding control, denormal handling and transcendental
 * results are the hardware's own.  The host status word's exception bits
 * and condition codes are folded into the guest's.  An unmasked exception
 * sets ES and is reported as #MF by the next waiting FP instruction.
 */
#include "jit/internal.h"

#define SW_IE 0x1u
#define SW_SF 0x40u
#define SW_ES 0x80u
#define SW_C0 0x100u
#define SW_C1 0x200u
#define SW_C2 0x400u
#define SW_C3 0x4000u
#define SW_CC (SW_C0 | SW_C1 | SW_C2 | SW_C3)

static const union jit_fpreg indefinite = { .r = { 0xc000000000000000ull, 0xffff } };

static unsigned top(const struct jit_cpu *cpu)
{
	return (cpu->fpu.fsw >> 11) & 7;
}

static void set_top(struct jit_cpu *cpu, unsigned t)
{
	cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~0x3800u) | (t & 7) << 11);
}

static bool valid(const struct jit_cpu *cpu, unsigned i)
{
	return cpu->fpu.ftw & (1u << ((top(cpu) + i) & 7));
}

static void fpu_exc(struct jit_cpu *cpu, unsigned bits)
{
	cpu->fpu.fsw |= (uint16_t)bits;
	if (bits & ~cpu->fpu.fcw & 0x3f)
		cpu->fpu.fsw |= SW_ES | 0x8000;
}

/* ST(i); an empty register is a stack underflow giving the indefinite. */
static long double st(struct jit_cpu *cpu, unsigned i)
{
	if (!valid(cpu, i)) {
		cpu->fpu.fsw &= ~SW_C1;
		fpu_exc(cpu, SW_IE | SW_SF);
		return indefinite.f;
	}
	return cpu->fpu.st[(top(cpu) + i) & 7].f;
}

static void st_set(struct jit_cpu *cpu, unsigned i, long double v)
{
	unsigned p = (top(cpu) + i) & 7;

	memset(&cpu->fpu.st[p], 0, sizeof(cpu->fpu.st[p]));
	cpu->fpu.st[p].f = v;
	cpu->fpu.ftw |= (uint8_t)(1u << p);
}

static void fpush(struct jit_cpu *cpu, long double v)
{
	unsigned t = (top(cpu) - 1) & 7;

	if (cpu->fpu.ftw & (1u << t)) {
		fpu_exc(cpu, SW_IE | SW_SF | SW_C1);
		v = indefinite.f;
	}
	set_top(cpu, t);
	st_set(cpu, 0, v);
}

static void fpop(struct jit_cpu *cpu)
{
	cpu->fpu.ftw &= (uint8_t)~(1u << top(cpu));
	set_top(cpu, top(cpu) + 1);
}

/* ---- host execution ---- */

enum {
	H_ADD, H_MUL, H_SUB = 4, H_SUBR, H_DIV, H_DIVR,	/* binary: st0 = a op b */
	H_PREM, H_PREM1, H_SCALE, H_PATAN, H_YL2X, H_YL2XP1,
	H_SQRT, H_SIN, H_COS, H_RNDINT, H_2XM1, H_TAN, H_SINCOS, H_XTRACT,
};

#define HX(body, out) asm volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\t" body \
	"\n\tfnstsw %[sw]\n\t" out "\n\tfnclex\n\tfldcw %[sv]" \
	: [r] "=m"(r), [r2] "=m"(r2), [sw] "=m"(sw), [sv] "=m"(sv) \
	: [a] "m"(a), [b] "m"(b), [cw] "m"(cw) : "st", "st(1)", "st(2)", "rax", "cc", "memory")

/* Run op on a (= ST0) and b (= ST1 or the source); *r2 gets the second
 * result of FPTAN/FSINCOS/FXTRACT. */
static long double host(struct jit_cpu *cpu, int op, long double a, long double b,
			long double *second, unsigned *cc)
{
	long double r = 0, r2 = 0;
	uint16_t sw = 0, sv, cw = cpu->fpu.fcw | 0x3f;

	switch (op) {
	case H_ADD: HX("fldt %[b]\n\tfldt %[a]\n\tfadd %%st(1), %%st", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_MUL: HX("fldt %[b]\n\tfldt %[a]\n\tfmul %%st(1), %%st", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_SUB: HX("fldt %[b]\n\tfldt %[a]\n\tfsub %%st(1), %%st", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_SUBR: HX("fldt %[b]\n\tfldt %[a]\n\tfsubr %%st(1), %%st", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_DIV: HX("fldt %[b]\n\tfldt %[a]\n\tfdiv %%st(1), %%st", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_DIVR: HX("fldt %[b]\n\tfldt %[a]\n\tfdivr %%st(1), %%st", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_PREM: HX("fldt %[b]\n\tfldt %[a]\n\tfprem", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_PREM1: HX("fldt %[b]\n\tfldt %[a]\n\tfprem1", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_SCALE: HX("fldt %[b]\n\tfldt %[a]\n\tfscale", "fstpt %[r]\n\tfstp %%st(0)"); break;
	case H_PATAN: HX("fldt %[b]\n\tfldt %[a]\n\tfpatan", "fstpt %[r]"); break;
	case H_YL2X: HX("fldt %[b]\n\tfldt %[a]\n\tfyl2x", "fstpt %[r]"); break;
	case H_YL2XP1: HX("fldt %[b]\n\tfldt %[a]\n\tfyl2xp1", "fstpt %[r]"); break;
	case H_SQRT: HX("fldt %[a]\n\tfsqrt", "fstpt %[r]"); break;
	case H_SIN: HX("fldt %[a]\n\tfsin", "fstpt %[r]"); break;
	case H_COS: HX("fldt %[a]\n\tfcos", "fstpt %[r]"); break;
	case H_RNDINT: HX("fldt %[a]\n\tfrndint", "fstpt %[r]"); break;
	case H_2XM1: HX("fldt %[a]\n\tf2xm1", "fstpt %[r]"); break;
	case H_TAN: HX("fldt %[a]\n\tfptan", "fnstsw %%ax\n\ttest $4, %%ah\n\tjnz 1f\n\t"
		       "fstpt %[r2]\n1:\n\tfstpt %[r]"); break;
	case H_SINCOS: HX("fldt %[a]\n\tfsincos", "fnstsw %%ax\n\ttest $4, %%ah\n\tjnz 1f\n\t"
			  "fstpt %[r2]\n1:\n\tfstpt %[r]"); break;
	default: HX("fldt %[a]\n\tfxtract", "fstpt %[r2]\n\tfstpt %[r]"); break;
	}
	fpu_exc(cpu, sw & 0x3f);
	if (cc)
		*cc = sw & SW_CC;
	cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_C1) | (sw & SW_C1));
	if (second)
		*second = r2;
	return r;
}
#undef HX

/* ---- memory operand conversions (through the host, for exact flags) ---- */

static long double load_mem(struct jit_cpu *cpu, const struct jit_insn *in, int kind)
{
	uint64_t ea = insn_ea(cpu, in);
	uint8_t m[16] = { 0 };
	static const uint8_t sizes[] = { 4, 8, 10, 2, 4, 8, 10 };
	long double r = 0;
	uint16_t sw = 0;

	jit_read_bytes(cpu, jit_seg_lin(cpu, in->seg, ea, sizes[kind], ACC_R), m, sizes[kind],
		       acc_user(cpu, ACC_R));
	switch (kind) {
	case 0: asm("flds %2\n\tfstpt %0\n\tfnstsw %1\n\tfnclex" : "=m"(r), "=m"(sw) : "m"(*(float *)(void *)m)); break;
	case 1: asm("fldl %2\n\tfstpt %0\n\tfnstsw %1\n\tfnclex" : "=m"(r), "=m"(sw) : "m"(*(double *)(void *)m)); break;
	case 2: memcpy(&r, m, 10); break;
	case 3: asm("filds %1\n\tfstpt %0" : "=m"(r) : "m"(*(int16_t *)(void *)m)); break;
	case 4: asm("fildl %1\n\tfstpt %0" : "=m"(r) : "m"(*(int32_t *)(void *)m)); break;
	case 5: asm("fildll %1\n\tfstpt %0" : "=m"(r) : "m"(*(int64_t *)(void *)m)); break;
	default: asm("fbld %1\n\tfstpt %0" : "=m"(r) : "m"(*(long double *)(void *)m)); break;
	}
	fpu_exc(cpu, sw & (SW_IE | 0x2));
	return r;
}

/* Store a to memory as kind (0 m32fp, 1 m64fp, 2 m80fp, 3 m16int, 4 m32int,
 * 5 m64int, 6 m80bcd; +8: truncating FISTTP). */
static void store_mem(struct jit_cpu *cpu, const struct jit_insn *in, int kind, long double a)
{
	static const uint8_t sizes[] = { 4, 8, 10, 2, 4, 8, 10 };
	uint64_t ea = insn_ea(cpu, in), lin;
	uint16_t cw = cpu->fpu.fcw | 0x3f, sv, sw = 0;
	uint8_t m[16] = { 0 };
	bool trunc = kind & 8;

	kind &= 7;
	lin = jit_seg_lin(cpu, in->seg, ea, sizes[kind], ACC_W);
	if (trunc)
		cw |= 0xc00;
#define ST(ins) asm volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\tfldt %[a]\n\t" ins " %[m]\n\t" \
			     "fnstsw %[sw]\n\tfnclex\n\tfldcw %[sv]" \
			     : [m] "=m"(*(uint8_t(*)[16])m), [sw] "=m"(sw), [sv] "=m"(sv) \
			     : [a] "m"(a), [cw] "m"(cw) : "st", "memory")
	switch (kind) {
	case 0: ST("fstps"); break;
	case 1: ST("fstpl"); break;
	case 2: memcpy(m, &a, 10); break;
	case 3: ST("fistps"); break;
	case 4: ST("fistpl"); break;
	case 5: ST("fistpll"); break;
	default: ST("fbstp"); break;
	}
#undef ST
	jit_write_bytes(cpu, lin, m, sizes[kind], acc_user(cpu, ACC_W));
	fpu_exc(cpu, sw & 0x3f);
	cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_C1) | (sw & SW_C1));
}

/* ST0 op memory operand (D8/DA/DC/DE memory forms), run directly on the
 * host so denormal-operand reporting follows the hardware's priorities. */
static long double host_mem(struct jit_cpu *cpu, unsigned g, long double a, const uint8_t *m,
			    unsigned kind)
{
	long double r = 0;
	uint16_t sw = 0, sv, cw = cpu->fpu.fcw | 0x3f;

#define HM(ins) asm volatile("fnstcw %[sv]\n\tfldcw %[cw]\n\tfnclex\n\tfldt %[a]\n\t" ins " %[m]\n\t" \
	"fnstsw %[sw]\n\tfstpt %[r]\n\tfnclex\n\tfldcw %[sv]" \
	: [r] "=m"(r), [sw] "=m"(sw), [sv] "=m"(sv) \
	: [a] "m"(a), [m] "m"(*(const uint8_t(*)[16])m), [cw] "m"(cw) : "st", "memory")
#define HM4(a, b, c, d) do { switch (kind) { case 0: HM(a); break; case 1: HM(b); break; \
	case 3: HM(c); break; default: HM(d); break; } } while (0)
	switch (g) {
	case 0: HM4("fadds", "faddl", "fiadds", "fiaddl"); break;
	case 1: HM4("fmuls", "fmull", "fimuls", "fimull"); break;
	case 4: HM4("fsubs", "fsubl", "fisubs", "fisubl"); break;
	case 5: HM4("fsubrs", "fsubrl", "fisubrs", "fisubrl"); break;
	case 6: HM4("fdivs", "fdivl", "fidivs", "fidivl"); break;
	default: HM4("fdivrs", "fdivrl", "fidivrs", "fidivrl"); break;
	}
#undef HM4
#undef HM
	fpu_exc(cpu, sw & 0x3f);
	cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_C1) | (sw & SW_C1));
	return r;
}

/* ---- comparisons ---- */

/* FCOM family: sets C3/C2/C0 (or ZF/PF/CF for FCOMI); unordered only
 * raises IE for FCOM or signalling NaNs. */
static void compare(struct jit_cpu *cpu, long double a, long double b, bool quiet, bool eflags)
{
	union jit_fpreg x = { .f = a }, y = { .f = b };
	bool snan = ((x.r.exp & 0x7fff) == 0x7fff && !(x.r.mant & (1ull << 62)) && (x.r.mant << 1)) ||
		    ((y.r.exp & 0x7fff) == 0x7fff && !(y.r.mant & (1ull << 62)) && (y.r.mant << 1));
	unsigned c;

	if (a != a || b != b) {
		c = SW_C3 | SW_C2 | SW_C0;
		if (!quiet || snan)
			fpu_exc(cpu, SW_IE);
	} else if (a > b) {
		c = 0;
	} else if (a < b) {
		c = SW_C0;
	} else {
		c = SW_C3;
	}
	if (eflags) {
		uint64_t f = (c & SW_C3 ? F_ZF : 0) | (c & SW_C2 ? F_PF : 0) | (c & SW_C0 ? F_CF : 0);

		set_arith(cpu, f);
		cpu->fpu.fsw &= ~SW_C1;
	} else {
		cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_CC) | c);
	}
}

/* FXAM: classify ST0 into C3 C2 C0, sign into C1 */
static void fxam(struct jit_cpu *cpu)
{
	const union jit_fpreg *r = &cpu->fpu.st[top(cpu)];
	unsigned e = r->r.exp & 0x7fff, c;

	if (!valid(cpu, 0))
		c = SW_C3 | SW_C0;
	else if (e == 0x7fff)
		c = (r->r.mant << 1) ? SW_C0 : SW_C2 | SW_C0;
	else if (e == 0)
		c = r->r.mant ? SW_C3 | SW_C2 : SW_C3;
	else
		c = (r->r.mant >> 63) ? SW_C2 : 0;
	if (r->r.exp & 0x8000)
		c |= SW_C1;
	cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_CC) | c);
}

/* ---- arithmetic helpers ---- */

static const int arith_op[8] = { H_ADD, H_MUL, -1, -1, H_SUB, H_SUBR, H_DIV, H_DIVR };

/* ST0 = ST0 op src, or the FCOM/FCOMP forms */
static void arith_st0(struct jit_cpu *cpu, unsigned g, long double src)
{
	long double a = st(cpu, 0);

	if (g == 2 || g == 3) {
		compare(cpu, a, src, false, false);
		if (g == 3)
			fpop(cpu);
		return;
	}
	st_set(cpu, 0, host(cpu, arith_op[g], a, src, NULL, NULL));
}

/* FLD1 .. FLDZ under the guest's rounding control */
static long double constant(const struct jit_cpu *cpu, unsigned k)
{
	uint16_t cw = cpu->fpu.fcw | 0x3f, sv;
	long double r = 0;

#define K(ins) asm("fnstcw %1\n\tfldcw %2\n\t" ins "\n\tfstpt %0\n\tfldcw %1" \
		   : "=m"(r), "=m"(sv) : "m"(cw) : "st")
	switch (k) {
	case 0: K("fld1"); break;
	case 1: K("fldl2t"); break;
	case 2: K("fldl2e"); break;
	case 3: K("fldpi"); break;
	case 4: K("fldlg2"); break;
	case 5: K("fldln2"); break;
	default: K("fldz"); break;
	}
#undef K
	return r;
}

/* D9 with mod == 3: loads, FXCH, constants and the one-operand functions */
static void d9_reg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned r = in->rm & 7, cc = 0;
	long double a, b, x;

	switch ((in->reg & 7) << 3 | r) {
	case 0x00 ... 0x07: fpush(cpu, st(cpu, r)); return;		/* FLD ST(i) */
	case 0x08 ... 0x0f:						/* FXCH */
		a = st(cpu, 0);
		b = st(cpu, r);
		st_set(cpu, 0, b);
		st_set(cpu, r, a);
		cpu->fpu.fsw &= ~SW_C1;
		return;
	case 0x10: return;						/* FNOP */
	case 0x20: st_set(cpu, 0, -st(cpu, 0)); return;			/* FCHS */
	case 0x21: a = st(cpu, 0); st_set(cpu, 0, a < 0 || (a == 0 && __builtin_signbit(a)) ? -a : a); return;
	case 0x24: compare(cpu, st(cpu, 0), 0.0L, false, false); return;	/* FTST */
	case 0x25: fxam(cpu); return;
	case 0x28 ... 0x2e: fpush(cpu, constant(cpu, r)); return;		/* FLD1 .. FLDZ */
	case 0x30: st_set(cpu, 0, host(cpu, H_2XM1, st(cpu, 0), 0, NULL, NULL)); return;
	case 0x31: case 0x33: case 0x39:				/* FYL2X FPATAN FYL2XP1 */
		a = st(cpu, 0);
		b = st(cpu, 1);
		x = host(cpu, in->reg == 7 ? H_YL2XP1 : r == 3 ? H_PATAN : H_YL2X, a, b, NULL, NULL);
		st_set(cpu, 1, x);
		fpop(cpu);
		return;
	case 0x32: case 0x3b: case 0x34:				/* FPTAN FSINCOS FXTRACT */
		a = host(cpu, r == 2 ? H_TAN : r == 3 ? H_SINCOS : H_XTRACT, st(cpu, 0), 0, &b, &cc);
		cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_C2) | (cc & SW_C2));
		st_set(cpu, 0, a);
		if (!(cc & SW_C2))
			fpush(cpu, b);
		return;
	case 0x35: case 0x38:						/* FPREM1 FPREM */
		a = host(cpu, r == 5 ? H_PREM1 : H_PREM, st(cpu, 0), st(cpu, 1), NULL, &cc);
		cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_CC) | cc);
		st_set(cpu, 0, a);
		return;
	case 0x36: set_top(cpu, top(cpu) - 1); cpu->fpu.fsw &= ~SW_C1; return;	/* FDECSTP */
	case 0x37: set_top(cpu, top(cpu) + 1); cpu->fpu.fsw &= ~SW_C1; return;	/* FINCSTP */
	case 0x3a: st_set(cpu, 0, host(cpu, H_SQRT, st(cpu, 0), 0, NULL, NULL)); return;
	case 0x3c: st_set(cpu, 0, host(cpu, H_RNDINT, st(cpu, 0), 0, NULL, NULL)); return;
	case 0x3d: st_set(cpu, 0, host(cpu, H_SCALE, st(cpu, 0), st(cpu, 1), NULL, NULL)); return;
	case 0x3e: case 0x3f:						/* FSIN FCOS */
		a = host(cpu, r == 6 ? H_SIN : H_COS, st(cpu, 0), 0, NULL, &cc);
		cpu->fpu.fsw = (uint16_t)((cpu->fpu.fsw & ~SW_C2) | (cc & SW_C2));
		st_set(cpu, 0, a);
		return;
	}
	jit_ud(cpu, in);
}

/* D9 with memory: FLD/FST/FSTP m32, FLDENV, FLDCW, FNSTENV, FNSTCW */
static void d9_mem(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t ea = insn_ea(cpu, in);

	switch (in->reg & 7) {
	case 0: fpush(cpu, load_mem(cpu, in, 0)); return;
	case 2: store_mem(cpu, in, 0, st(cpu, 0)); return;
	case 3: store_mem(cpu, in, 0, st(cpu, 0)); fpop(cpu); return;
	case 4: jit_fpu_env_load(cpu, jit_seg_lin(cpu, in->seg, ea, 28, ACC_R), in->opsize); return;
	case 5: cpu->fpu.fcw = (uint16_t)mem_read(cpu, in->seg, ea, 2); return;
	case 6:
		jit_fpu_env_store(cpu, jit_seg_lin(cpu, in->seg, ea, 28, ACC_W), in->opsize);
		cpu->fpu.fcw |= 0x3f;
		return;
	case 7: mem_write(cpu, in->seg, ea, 2, cpu->fpu.fcw); return;
	}
	jit_ud(cpu, in);
}

/* FNSAVE (DD /6) and FRSTOR (DD /4): environment plus eight registers */
static void save_restore(struct jit_cpu *cpu, const struct jit_insn *in, bool save)
{
	uint64_t lin = jit_seg_lin(cpu, in->seg, insn_ea(cpu, in), in->opsize == 2 ? 94 : 108,
				   save ? ACC_W : ACC_R);
	unsigned n;

	if (save) {
		n = jit_fpu_env_store(cpu, lin, in->opsize);
		for (unsigned i = 0; i < 8; i++)
			jit_write_bytes(cpu, lin + n + 10 * i, &cpu->fpu.st[(top(cpu) + i) & 7], 10,
					acc_user(cpu, ACC_W));
		jit_fpu_reset_x87(cpu);
		return;
	}
	n = jit_fpu_env_load(cpu, lin, in->opsize);
	for (unsigned i = 0; i < 8; i++) {
		union jit_fpreg *r = &cpu->fpu.st[(top(cpu) + i) & 7];

		memset(r, 0, sizeof(*r));
		jit_read_bytes(cpu, lin + n + 10 * i, r, 10, acc_user(cpu, ACC_R));
	}
}

static bool fcmov(const struct jit_cpu *cpu, unsigned op, unsigned g)
{
	uint64_t f = cpu->rflags;
	bool c;

	switch (g & 3) {
	case 0: c = f & F_CF; break;
	case 1: c = f & F_ZF; break;
	case 2: c = f & (F_CF | F_ZF); break;
	default: c = f & F_PF; break;
	}
	return op == 0xdb ? !c : c;
}

static void reg_forms(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned g = in->reg & 7, r = in->rm & 7;
	static const int rev[8] = { H_ADD, H_MUL, -1, -1, H_SUBR, H_SUB, H_DIVR, H_DIV };

	switch (in->op) {
	case 0xd8: arith_st0(cpu, g, st(cpu, r)); return;
	case 0xd9: d9_reg(cpu, in); return;
	case 0xda:
	case 0xdb:
		if (g < 4) {					/* FCMOVcc */
			long double v = st(cpu, r);

			if (fcmov(cpu, in->op, g))
				st_set(cpu, 0, v);
			return;
		}
		if (in->op == 0xda && g == 5 && r == 1) {	/* FUCOMPP */
			compare(cpu, st(cpu, 0), st(cpu, 1), true, false);
			fpop(cpu);
			fpop(cpu);
			return;
		}
		if (in->op == 0xdb && g == 4 && r == 2) {	/* FNCLEX */
			cpu->fpu.fsw &= 0x7f00;
			return;
		}
		if (in->op == 0xdb && g == 4 && r == 3) {	/* FNINIT */
			jit_fpu_reset_x87(cpu);
			return;
		}
		if (in->op == 0xdb && (g == 5 || g == 6)) {	/* FUCOMI / FCOMI */
			compare(cpu, st(cpu, 0), st(cpu, r), g == 5, true);
			return;
		}
		break;
	case 0xdc:
	case 0xde:
		if (g == 2 || g == 3) {
			if (in->op == 0xde && !(g == 3 && r == 1))
				break;
			compare(cpu, st(cpu, 0), st(cpu, r), false, false);
			fpop(cpu);
			if (in->op == 0xde)
				fpop(cpu);
			return;
		}
		st_set(cpu, r, host(cpu, rev[g], st(cpu, r), st(cpu, 0), NULL, NULL));
		if (in->op == 0xde)
			fpop(cpu);
		return;
	case 0xdd:
		switch (g) {
		case 0: cpu->fpu.ftw &= (uint8_t)~(1u << ((top(cpu) + r) & 7)); return;
		case 2: st_set(cpu, r, st(cpu, 0)); return;
		case 3: st_set(cpu, r, st(cpu, 0)); fpop(cpu); return;
		case 4: compare(cpu, st(cpu, 0), st(cpu, r), true, false); return;
		case 5: compare(cpu, st(cpu, 0), st(cpu, r), true, false); fpop(cpu); return;
		}
		break;
	case 0xdf:
		if (g == 4 && r == 0) {				/* FNSTSW AX */
			reg_write(cpu, in, JIT_RAX, 2, cpu->fpu.fsw);
			return;
		}
		if (g == 5 || g == 6) {				/* FUCOMIP / FCOMIP */
			compare(cpu, st(cpu, 0), st(cpu, r), g == 5, true);
			fpop(cpu);
			return;
		}
		if (g == 0) {					/* FFREEP */
			cpu->fpu.ftw &= (uint8_t)~(1u << ((top(cpu) + r) & 7));
			fpop(cpu);
			return;
		}
		break;
	}
	jit_ud(cpu, in);
}

static void mem_forms(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned g = in->reg & 7;
	static const int8_t arith_kind[8] = { 0, -1, 4, -1, 1, -1, 3, -1 };	/* D8 DA DC DE */

	if (arith_kind[in->op & 7] >= 0) {
		int kind = arith_kind[in->op & 7];
		static const uint8_t sizes[] = { 4, 8, 0, 2, 4 };
		uint8_t m[16] = { 0 };
		long double a;

		if (g == 2 || g == 3) {
			arith_st0(cpu, g, load_mem(cpu, in, kind));
			return;
		}
		jit_read_bytes(cpu, jit_seg_lin(cpu, in->seg, insn_ea(cpu, in), sizes[kind], ACC_R),
			       m, sizes[kind], acc_user(cpu, ACC_R));
		a = st(cpu, 0);
		st_set(cpu, 0, host_mem(cpu, g, a, m, (unsigned)kind));
		return;
	}
	switch (in->op << 3 | g) {
	case 0xd9 << 3 ... (0xd9 << 3) + 7: d9_mem(cpu, in); return;
	case 0xdb << 3: fpush(cpu, load_mem(cpu, in, 4)); return;
	case 0xdf << 3: fpush(cpu, load_mem(cpu, in, 3)); return;
	case 0xdf << 3 | 5: fpush(cpu, load_mem(cpu, in, 5)); return;
	case 0xdf << 3 | 4: fpush(cpu, load_mem(cpu, in, 6)); return;
	case 0xdd << 3: fpush(cpu, load_mem(cpu, in, 1)); return;
	case 0xdb << 3 | 5: fpush(cpu, load_mem(cpu, in, 2)); return;
	case 0xdb << 3 | 1: store_mem(cpu, in, 8 | 4, st(cpu, 0)); fpop(cpu); return;
	case 0xdd << 3 | 1: store_mem(cpu, in, 8 | 5, st(cpu, 0)); fpop(cpu); return;
	case 0xdf << 3 | 1: store_mem(cpu, in, 8 | 3, st(cpu, 0)); fpop(cpu); return;
	case 0xdb << 3 | 2: store_mem(cpu, in, 4, st(cpu, 0)); return;
	case 0xdb << 3 | 3: store_mem(cpu, in, 4, st(cpu, 0)); fpop(cpu); return;
	case 0xdf << 3 | 2: store_mem(cpu, in, 3, st(cpu, 0)); return;
	case 0xdf << 3 | 3: store_mem(cpu, in, 3, st(cpu, 0)); fpop(cpu); return;
	case 0xdf << 3 | 6: store_mem(cpu, in, 6, st(cpu, 0)); fpop(cpu); return;
	case 0xdf << 3 | 7: store_mem(cpu, in, 5, st(cpu, 0)); fpop(cpu); return;
	case 0xdb << 3 | 7: store_mem(cpu, in, 2, st(cpu, 0)); fpop(cpu); return;
	case 0xdd << 3 | 2: store_mem(cpu, in, 1, st(cpu, 0)); return;
	case 0xdd << 3 | 3: store_mem(cpu, in, 1, st(cpu, 0)); fpop(cpu); return;
	case 0xdd << 3 | 4: save_restore(cpu, in, false); return;
	case 0xdd << 3 | 6: save_restore(cpu, in, true); return;
	case 0xdd << 3 | 7: mem_write(cpu, in->seg, insn_ea(cpu, in), 2, cpu->fpu.fsw); return;
	}
	jit_ud(cpu, in);
}

/* Control instructions do not check for pending exceptions (SDM vol. 1,
 * 8.6): FNINIT, FNCLEX, FNSTCW, FNSTSW, FNSTENV, FNSAVE, FLDCW, FLDENV,
 * FRSTOR. */
static bool is_control(const struct jit_insn *in)
{
	unsigned g = in->reg & 7;

	if (in->mod == 3)
		return (in->op == 0xdb && g == 4) || (in->op == 0xdf && g == 4);
	return (in->op == 0xd9 && g >= 4) || (in->op == 0xdd && (g == 4 || g >= 6));
}

/* D8-DF: x87 escapes */
void jit_op_x87(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if (cpu->cr0 & (CR0_EM | CR0_TS))
		jit_raise(cpu, EXC_NM, 0);
	if ((cpu->fpu.fsw & SW_ES) && !is_control(in))
		jit_raise(cpu, EXC_MF, 0);
	if (in->mod == 3) {
		reg_forms(cpu, in);
		return;
	}
	mem_forms(cpu, in);
	cpu->fpu.fdp = insn_ea(cpu, in);
	cpu->fpu.fip = cpu->rip;
	cpu->fpu.fop = (uint16_t)(((in->op & 7) << 8) | (in->mod << 6) | ((in->reg & 7) << 3) |
				  (in->rm & 7));
}

/* 9B: FWAIT - reports a pending unmasked exception */
void jit_op_fwait(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if ((cpu->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
		jit_raise(cpu, EXC_NM, 0);
	if (cpu->fpu.fsw & SW_ES)
		jit_raise(cpu, EXC_MF, 0);
}
