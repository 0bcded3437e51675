/*
 * MMX/SSE/SSE2/SSE3/SSSE3 operations that are a pure function of two
 * register-sized operands (Intel SDM vol. 2; vol. 1, chapters 9-12).
 *
 * Like the integer ALU (alu.c), these run on the host's own SIMD unit:
 * each operation here is the same instruction applied to host registers
 * loaded from the guest's, which makes results bit-exact, including NaN
 * propagation, rounding under the guest's MXCSR and the status flags.
 * The table in sse.c says which operation an opcode and mandatory prefix
 * select, its operand form, and whether it is floating point (run under
 * the guest MXCSR).  The host must have what we advertise (SSE3, SSSE3),
 * which jit_cpu_new() checks.
 */
#include "jit/internal.h"

#define XOP(name, ins) \
static void x_##name(union jit_xmm *d, const union jit_xmm *s) \
{ \
	asm("movdqu %[d], %%xmm0\n\tmovdqu %[s], %%xmm1\n\t" ins " %%xmm1, %%xmm0\n\t" \
	    "movdqu %%xmm0, %[d]" : [d] "+m"(*d) : [s] "m"(*s) : "xmm0", "xmm1"); \
}

#define MOP(name, ins) \
static void m_##name(union jit_xmm *d, const union jit_xmm *s) \
{ \
	asm("movq %[d], %%mm0\n\tmovq %[s], %%mm1\n\t" ins " %%mm1, %%mm0\n\t" \
	    "movq %%mm0, %[d]\n\temms" : [d] "+m"(d->q[0]) : [s] "m"(s->q[0]) : "mm0", "mm1"); \
}

#define XMOP(name) XOP(name, #name) MOP(name, #name)

/* integer, MMX and XMM forms */
XMOP(punpcklbw) XMOP(punpcklwd) XMOP(punpckldq) XMOP(packsswb)
XMOP(pcmpgtb) XMOP(pcmpgtw) XMOP(pcmpgtd) XMOP(packuswb)
XMOP(punpckhbw) XMOP(punpckhwd) XMOP(punpckhdq) XMOP(packssdw)
XOP(punpcklqdq, "punpcklqdq") XOP(punpckhqdq, "punpckhqdq")
XMOP(pcmpeqb) XMOP(pcmpeqw) XMOP(pcmpeqd)
XMOP(psrlw) XMOP(psrld) XMOP(psrlq) XMOP(paddq) XMOP(pmullw)
XMOP(psubusb) XMOP(psubusw) XMOP(pminub) XMOP(pand)
XMOP(paddusb) XMOP(paddusw) XMOP(pmaxub) XMOP(pandn)
XMOP(pavgb) XMOP(psraw) XMOP(psrad) XMOP(pavgw) XMOP(pmulhuw) XMOP(pmulhw)
XMOP(psubsb) XMOP(psubsw) XMOP(pminsw) XMOP(por)
XMOP(paddsb) XMOP(paddsw) XMOP(pmaxsw) XMOP(pxor)
XMOP(psllw) XMOP(pslld) XMOP(psllq) XMOP(pmuludq) XMOP(pmaddwd) XMOP(psadbw)
XMOP(psubb) XMOP(psubw) XMOP(psubd) XMOP(psubq) XMOP(paddb) XMOP(paddw) XMOP(paddd)
/* SSSE3 */
XMOP(pshufb) XMOP(phaddw) XMOP(phaddd) XMOP(phaddsw) XMOP(pmaddubsw)
XMOP(phsubw) XMOP(phsubd) XMOP(phsubsw) XMOP(psignb) XMOP(psignw) XMOP(psignd)
XMOP(pmulhrsw) XMOP(pabsb) XMOP(pabsw) XMOP(pabsd)

/* floating point, XMM only (run under the guest MXCSR by the caller) */
XOP(unpcklps, "unpcklps") XOP(unpcklpd, "unpcklpd")
XOP(unpckhps, "unpckhps") XOP(unpckhpd, "unpckhpd")
XOP(sqrtps, "sqrtps") XOP(sqrtpd, "sqrtpd") XOP(sqrtss, "sqrtss") XOP(sqrtsd, "sqrtsd")
XOP(rsqrtps, "rsqrtps") XOP(rsqrtss, "rsqrtss") XOP(rcpps, "rcpps") XOP(rcpss, "rcpss")
XOP(andps, "andps") XOP(andnps, "andnps") XOP(orps, "orps") XOP(xorps, "xorps")
XOP(addps, "addps") XOP(addpd, "addpd") XOP(addss, "addss") XOP(addsd, "addsd")
XOP(mulps, "mulps") XOP(mulpd, "mulpd") XOP(mulss, "mulss") XOP(mulsd, "mulsd")
XOP(subps, "subps") XOP(subpd, "subpd") XOP(subss, "subss") XOP(subsd, "subsd")
XOP(minps, "minps") XOP(minpd, "minpd") XOP(minss, "minss") XOP(minsd, "minsd")
XOP(divps, "divps") XOP(divpd, "divpd") XOP(divss, "divss") XOP(divsd, "divsd")
XOP(maxps, "maxps") XOP(maxpd, "maxpd") XOP(maxss, "maxss") XOP(maxsd, "maxsd")
XOP(cvtps2pd, "cvtps2pd") XOP(cvtpd2ps, "cvtpd2ps") XOP(cvtss2sd, "cvtss2sd")
XOP(cvtsd2ss, "cvtsd2ss") XOP(cvtdq2ps, "cvtdq2ps") XOP(cvtps2dq, "cvtps2dq")
XOP(cvttps2dq, "cvttps2dq") XOP(cvttpd2dq, "cvttpd2dq") XOP(cvtdq2pd, "cvtdq2pd")
XOP(cvtpd2dq, "cvtpd2dq")
XOP(haddpd, "haddpd") XOP(haddps, "haddps") XOP(hsubpd, "hsubpd") XOP(hsubps, "hsubps")
XOP(addsubpd, "addsubpd") XOP(addsubps, "addsubps")

/* CMPPS/PD/SS/SD with predicate imm (0-7) */
#define CMPX(ins) do { switch (imm & 7) { \
	case 0: asm(PRE ins " $0, %%xmm1, %%xmm0" POSTX); break; \
	case 1: asm(PRE ins " $1, %%xmm1, %%xmm0" POSTX); break; \
	case 2: asm(PRE ins " $2, %%xmm1, %%xmm0" POSTX); break; \
	case 3: asm(PRE ins " $3, %%xmm1, %%xmm0" POSTX); break; \
	case 4: asm(PRE ins " $4, %%xmm1, %%xmm0" POSTX); break; \
	case 5: asm(PRE ins " $5, %%xmm1, %%xmm0" POSTX); break; \
	case 6: asm(PRE ins " $6, %%xmm1, %%xmm0" POSTX); break; \
	default: asm(PRE ins " $7, %%xmm1, %%xmm0" POSTX); break; \
	} } while (0)
#define PRE "movdqu %[d], %%xmm0\n\tmovdqu %[s], %%xmm1\n\t"
#define POSTX "\n\tmovdqu %%xmm0, %[d]" : [d] "+m"(*d) : [s] "m"(*s) : "xmm0", "xmm1"

void jit_x_cmp(union jit_xmm *d, const union jit_xmm *s, int pfx, uint8_t imm)
{
	switch (pfx) {
	case 0: CMPX("cmpps"); break;
	case 1: CMPX("cmppd"); break;
	case 2: CMPX("cmpss"); break;
	default: CMPX("cmpsd"); break;
	}
}

/* COMISS/UCOMISS/COMISD/UCOMISD: returns the host RFLAGS */
uint64_t jit_x_comi(const union jit_xmm *d, const union jit_xmm *s, int op, bool dbl)
{
	uint64_t f;

#define COMI(ins) asm("movdqu %[d], %%xmm0\n\tmovdqu %[s], %%xmm1\n\t" ins " %%xmm1, %%xmm0\n\t" \
		      "lea -128(%%rsp), %%rsp\n\tpushfq\n\tpopq %[f]\n\tlea 128(%%rsp), %%rsp" \
		      : [f] "=r"(f) : [d] "m"(*d), [s] "m"(*s) : "xmm0", "xmm1", "cc")
	if (dbl)
		if (op)
			COMI("comisd");
		else
			COMI("ucomisd");
	else
		if (op)
			COMI("comiss");
		else
			COMI("ucomiss");
#undef COMI
	return f;
}

/* Scalar float/double to integer (CVT[T]SS2SI, CVT[T]SD2SI) */
uint64_t jit_x_cvt2si(const union jit_xmm *s, bool dbl, bool trunc, bool q)
{
	uint64_t r;

#define CV(ins) asm("movdqu %[s], %%xmm1\n\t" ins " %%xmm1, %[r]" : [r] "=r"(r) : [s] "m"(*s) : "xmm1")
	if (dbl) {
		if (trunc)
			CV("cvttsd2si");
		else
			CV("cvtsd2si");
	} else {
		if (trunc)
			CV("cvttss2si");
		else
			CV("cvtss2si");
	}
#undef CV
	if (!q) {
		/* the 32-bit forms: redo with a 32-bit destination */
		uint32_t r32;

#define CV32(ins) asm("movdqu %[s], %%xmm1\n\t" ins " %%xmm1, %[r]" : [r] "=r"(r32) : [s] "m"(*s) : "xmm1")
		if (dbl)
			if (trunc)
				CV32("cvttsd2si");
			else
				CV32("cvtsd2si");
		else
			if (trunc)
				CV32("cvttss2si");
			else
				CV32("cvtss2si");
#undef CV32
		r = r32;
	}
	return r;
}

/* CVTSI2SS/SD from a 32- or 64-bit integer into the low element of d */
void jit_x_cvtsi2(union jit_xmm *d, uint64_t v, bool dbl, bool q)
{
#define CS(ins, mod) asm("movdqu %[d], %%xmm0\n\t" ins " %" mod "[v], %%xmm0\n\tmovdqu %%xmm0, %[d]" \
			 : [d] "+m"(*d) : [v] "r"(v) : "xmm0")
	if (dbl)
		if (q)
			CS("cvtsi2sdq", "q");
		else
			CS("cvtsi2sdl", "k");
	else
		if (q)
			CS("cvtsi2ssq", "q");
		else
			CS("cvtsi2ssl", "k");
#undef CS
}

/* Run fn under the guest MXCSR (exceptions masked on the host); returns
 * the exception flags raised. */
uint32_t jit_x_fp(uint32_t mxcsr, void (*fn)(union jit_xmm *, const union jit_xmm *),
		  union jit_xmm *d, const union jit_xmm *s)
{
	uint32_t host, g = (mxcsr & ~0x3fu) | 0x1f80, out;

	asm volatile("stmxcsr %0" : "=m"(host));
	asm volatile("ldmxcsr %0" : : "m"(g));
	fn(d, s);
	asm volatile("stmxcsr %0" : "=m"(out));
	asm volatile("ldmxcsr %0" : : "m"(host));
	return out & 0x3f;
}

/* Set the host MXCSR for a sequence of host FP operations; returns the
 * previous host value for jit_x_mxcsr_end. */
uint32_t jit_x_mxcsr_begin(uint32_t mxcsr)
{
	uint32_t host, g = (mxcsr & ~0x3fu) | 0x1f80;

	asm volatile("stmxcsr %0" : "=m"(host));
	asm volatile("ldmxcsr %0" : : "m"(g));
	return host;
}

uint32_t jit_x_mxcsr_end(uint32_t host)
{
	uint32_t out;

	asm volatile("stmxcsr %0" : "=m"(out));
	asm volatile("ldmxcsr %0" : : "m"(host));
	return out & 0x3f;
}

/* ---- the table: (opcode, mandatory prefix) -> operation and operand form ---- */

#define INT2(o, n) [o] = { [0] = { m_##n, SSE_M64, 0 }, [1] = { x_##n, SSE_X128, 0 } }
#define PS4(o, n) [o] = { [0] = { x_##n##ps, SSE_X128, 1 }, [1] = { x_##n##pd, SSE_X128, 1 }, \
			  [2] = { x_##n##ss, SSE_X32, 1 }, [3] = { x_##n##sd, SSE_X64, 1 } }
#define PS2(o, n) [o] = { [0] = { x_##n##ps, SSE_X128, 1 }, [1] = { x_##n##pd, SSE_X128, 1 } }

/* 0F map; prefix index 0 none, 1 66, 2 F3, 3 F2 (SDM vol. 2, table A-3) */
static const struct jit_sse_op map0f[256][4] = {
	PS2(0x14, unpckl), PS2(0x15, unpckh),
	PS4(0x51, sqrt),
	[0x52] = { [0] = { x_rsqrtps, SSE_X128, 1 }, [2] = { x_rsqrtss, SSE_X32, 1 } },
	[0x53] = { [0] = { x_rcpps, SSE_X128, 1 }, [2] = { x_rcpss, SSE_X32, 1 } },
	[0x54] = { [0] = { x_andps, SSE_X128, 0 }, [1] = { x_andps, SSE_X128, 0 } },
	[0x55] = { [0] = { x_andnps, SSE_X128, 0 }, [1] = { x_andnps, SSE_X128, 0 } },
	[0x56] = { [0] = { x_orps, SSE_X128, 0 }, [1] = { x_orps, SSE_X128, 0 } },
	[0x57] = { [0] = { x_xorps, SSE_X128, 0 }, [1] = { x_xorps, SSE_X128, 0 } },
	PS4(0x58, add), PS4(0x59, mul),
	[0x5a] = { [0] = { x_cvtps2pd, SSE_X64, 1 }, [1] = { x_cvtpd2ps, SSE_X128, 1 },
		   [2] = { x_cvtss2sd, SSE_X32, 1 }, [3] = { x_cvtsd2ss, SSE_X64, 1 } },
	[0x5b] = { [0] = { x_cvtdq2ps, SSE_X128, 1 }, [1] = { x_cvtps2dq, SSE_X128, 1 },
		   [2] = { x_cvttps2dq, SSE_X128, 1 } },
	PS4(0x5c, sub), PS4(0x5d, min), PS4(0x5e, div), PS4(0x5f, max),
	INT2(0x60, punpcklbw), INT2(0x61, punpcklwd), INT2(0x62, punpckldq),
	INT2(0x63, packsswb), INT2(0x64, pcmpgtb), INT2(0x65, pcmpgtw), INT2(0x66, pcmpgtd),
	INT2(0x67, packuswb), INT2(0x68, punpckhbw), INT2(0x69, punpckhwd),
	INT2(0x6a, punpckhdq), INT2(0x6b, packssdw),
	[0x6c] = { [1] = { x_punpcklqdq, SSE_X128, 0 } },
	[0x6d] = { [1] = { x_punpckhqdq, SSE_X128, 0 } },
	INT2(0x74, pcmpeqb), INT2(0x75, pcmpeqw), INT2(0x76, pcmpeqd),
	[0x7c] = { [1] = { x_haddpd, SSE_X128, 1 }, [3] = { x_haddps, SSE_X128, 1 } },
	[0x7d] = { [1] = { x_hsubpd, SSE_X128, 1 }, [3] = { x_hsubps, SSE_X128, 1 } },
	[0xd0] = { [1] = { x_addsubpd, SSE_X128, 1 }, [3] = { x_addsubps, SSE_X128, 1 } },
	INT2(0xd1, psrlw), INT2(0xd2, psrld), INT2(0xd3, psrlq), INT2(0xd4, paddq),
	INT2(0xd5, pmullw),
	INT2(0xd8, psubusb), INT2(0xd9, psubusw), INT2(0xda, pminub), INT2(0xdb, pand),
	INT2(0xdc, paddusb), INT2(0xdd, paddusw), INT2(0xde, pmaxub), INT2(0xdf, pandn),
	INT2(0xe0, pavgb), INT2(0xe1, psraw), INT2(0xe2, psrad), INT2(0xe3, pavgw),
	INT2(0xe4, pmulhuw), INT2(0xe5, pmulhw),
	[0xe6] = { [1] = { x_cvttpd2dq, SSE_X128, 1 }, [2] = { x_cvtdq2pd, SSE_X64, 1 },
		   [3] = { x_cvtpd2dq, SSE_X128, 1 } },
	INT2(0xe8, psubsb), INT2(0xe9, psubsw), INT2(0xea, pminsw), INT2(0xeb, por),
	INT2(0xec, paddsb), INT2(0xed, paddsw), INT2(0xee, pmaxsw), INT2(0xef, pxor),
	INT2(0xf1, psllw), INT2(0xf2, pslld), INT2(0xf3, psllq), INT2(0xf4, pmuludq),
	INT2(0xf5, pmaddwd), INT2(0xf6, psadbw),
	INT2(0xf8, psubb), INT2(0xf9, psubw), INT2(0xfa, psubd), INT2(0xfb, psubq),
	INT2(0xfc, paddb), INT2(0xfd, paddw), INT2(0xfe, paddd),
};

/* 0F 38 00-1F: SSSE3 (no prefix: MMX, 66: XMM) */
static const struct jit_sse_op map0f38[32][4] = {
	INT2(0x00, pshufb), INT2(0x01, phaddw), INT2(0x02, phaddd), INT2(0x03, phaddsw),
	INT2(0x04, pmaddubsw), INT2(0x05, phsubw), INT2(0x06, phsubd), INT2(0x07, phsubsw),
	INT2(0x08, psignb), INT2(0x09, psignw), INT2(0x0a, psignd), INT2(0x0b, pmulhrsw),
	INT2(0x1c, pabsb), INT2(0x1d, pabsw), INT2(0x1e, pabsd),
};

const struct jit_sse_op *jit_sse_lookup(int map, uint8_t op, int pfx)
{
	const struct jit_sse_op *e;

	if (map == MAP_0F)
		e = &map0f[op][pfx];
	else if (map == MAP_0F38 && op < 32)
		e = &map0f38[op][pfx];
	else
		return NULL;
	return e->fn ? e : NULL;
}
