/*
 * lib/jit against the host CPU: the x87 FPU.  Each case starts with
 * FNINIT, loads operands from memory (random normal numbers, zeros,
 * infinities, NaNs, denormals, integers), runs one x87 operation, and
 * ends by storing the status word in AX and all eight stack slots to
 * memory, so registers, memory and the status word are compared.
 */
#include "test-jit-harness.h"

static struct jit_cpu *cpu;
static struct rng rng = { 0x13198a2e03707344ull };
static int iters = 20, fails, cases;

static double rnd_double(void)
{
	static const double edge[] = { 0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e308, -1e-310,
				       __builtin_inf(), -__builtin_inf(), __builtin_nan(""),
				       1e-300, 123456789.0, -2.5, 0.1 };
	uint64_t k = rnd(&rng) % 4;

	if (k == 0)
		return edge[rnd(&rng) % (sizeof(edge) / sizeof(edge[0]))];
	return ((double)(int64_t)rnd(&rng) / 9.3e18) * (double)(1ull << (rnd(&rng) % 40));
}

/* Operand block at [rbx]: [0] [8] doubles, [16] [20] floats, [24] int16,
 * [28] int32, [32] int64, [40] m80 */
static void fill(struct hcase *c)
{
	uint8_t *m = c->data + (MEMBASE - DATA);
	double a = rnd_double(), b = rnd_double();
	float f = (float)rnd_double(), g = (float)rnd_double();
	long double l = (long double)rnd_double() * 3;
	int16_t i16 = (int16_t)rnd_val(&rng);
	int32_t i32 = (int32_t)rnd_val(&rng);
	int64_t i64 = (int64_t)rnd_val(&rng);

	memcpy(m, &a, 8);
	memcpy(m + 8, &b, 8);
	memcpy(m + 16, &f, 4);
	memcpy(m + 20, &g, 4);
	memcpy(m + 24, &i16, 2);
	memcpy(m + 28, &i32, 4);
	memcpy(m + 32, &i64, 8);
	memcpy(m + 40, &l, 10);
}

static void one(const char *what, const char *code, unsigned len)
{
	for (int i = 0; i < iters; i++) {
		static struct hcase c;

		rnd_case(&rng, &c);
		fill(&c);
		emit(&c, "\xdb\xe3", 2);			/* fninit */
		if (rnd(&rng) & 1)				/* round/precision control */
			emit(&c, "\xc7\x43\x60\x7f\x03\x00\x00\xd9\x6b\x60", 10), c.code[c.len - 7] =
				(uint8_t)(0x7f | ((rnd(&rng) & 0xf) << 8 >> 8)), c.code[c.len - 6] =
				(uint8_t)(rnd(&rng) & 0xf);
		emit(&c, code, len);
		emit(&c, "\xdf\xe0", 2);			/* fnstsw ax */
		for (int k = 0; k < 8; k++)			/* fstpt [rbx + 0x100 + 16k] */
			emit(&c, (const uint8_t[]){ 0xdb, 0xbb, (uint8_t)(16 * k), 0x01, 0, 0 }, 6);
		emit(&c, "\xdb\xe3", 2);
		cases++;
		if (!harness_compare(cpu, &c, what, false)) {
			fails++;
			return;
		}
	}
}

#define T(what, code) one(what, code, sizeof(code) - 1)

int main(void)
{
	const char *env = getenv("JIT_TEST_ITERS");
	static const char ld2[] = "\xdd\x03\xdd\x43\x08";	/* fld [rbx]; fld [rbx+8] */

	if (env)
		iters = atoi(env);
	harness_map_native();
	cpu = harness_cpu();
	for (int g = 0; g < 8; g++) {
		char m64[] = "\xdd\x03\xdc\x43\x08", m32[] = "\xdd\x03\xd8\x43\x10";
		char i16[] = "\xdd\x03\xde\x43\x18", i32[] = "\xdd\x03\xda\x43\x1c";
		char st[] = "\xdd\x03\xdd\x43\x08\xd8\xc1", sti[] = "\xdd\x03\xdd\x43\x08\xdc\xc1";
		char pop[] = "\xdd\x03\xdd\x43\x08\xde\xc1";

		m64[3] = m32[3] = i16[3] = i32[3] = (char)(0x43 | g << 3);
		st[6] = sti[6] = pop[6] = (char)(0xc1 | g << 3);
		T("arith m64", m64);
		T("arith m32", m32);
		T("arith m16int", i16);
		T("arith m32int", i32);
		T("arith st0,sti", st);
		if (g != 2 && g != 3) {
			T("arith sti,st0", sti);
			T("arith p", pop);
		}
	}
	{
		static const uint8_t un[] = { 0xe0, 0xe1, 0xe4, 0xe5, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4,
					      0xf5, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
					      0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xc9, 0xc1 };

		for (unsigned k = 0; k < sizeof(un); k++) {
			char code[8];

			memcpy(code, ld2, 5);
			code[5] = (char)0xd9;
			code[6] = (char)un[k];
			one("d9 op", code, 7);
		}
	}
	T("fcomi", "\xdd\x03\xdd\x43\x08\xdb\xf1");
	T("fucomip", "\xdd\x03\xdd\x43\x08\xdf\xe9");
	T("fucompp", "\xdd\x03\xdd\x43\x08\xda\xe9");
	T("fcompp", "\xdd\x03\xdd\x43\x08\xde\xd9");
	T("fcmovb", "\xdd\x03\xdd\x43\x08\x48\x85\xc0\xda\xc1");
	T("fcmovnbe", "\xdd\x03\xdd\x43\x08\x48\x85\xc9\xdb\xd1");
	T("fild/fistp 16", "\xdf\x43\x18\xdf\x5b\x50");
	T("fild/fistp 32", "\xdb\x43\x1c\xdb\x5b\x50");
	T("fild/fistp 64", "\xdf\x6b\x20\xdf\x7b\x50");
	T("fist 32", "\xdd\x03\xdb\x53\x50");
	T("fistp 64", "\xdd\x03\xdf\x7b\x50");
	T("fisttp 32", "\xdd\x03\xdb\x4b\x50");
	T("fisttp 64", "\xdd\x03\xdd\x4b\x50");
	T("fisttp 16", "\xdd\x03\xdf\x4b\x50");
	T("fst m32", "\xdd\x03\xd9\x53\x50");
	T("fstp m64", "\xdd\x03\xdd\x5b\x50");
	T("fld/fstp m80", "\xdb\x6b\x28\xdb\x7b\x50");
	T("fld m32", "\xd9\x43\x10");
	T("fbstp", "\xdd\x03\xdf\x73\x50");
	T("fxch", "\xdd\x03\xdd\x43\x08\xd9\xc9");
	T("fst st(i)", "\xdd\x03\xdd\x43\x08\xdd\xd1\xdd\xd9");
	T("ffree", "\xdd\x03\xdd\x43\x08\xdd\xc1");
	T("fdecstp", "\xdd\x03\xd9\xf6\xd9\xf7");
	T("fnstcw", "\xd9\x7b\x50");
	T("overflow", "\xdd\x03\xd9\xc0\xd9\xc0\xd9\xc0\xd9\xc0\xd9\xc0\xd9\xc0\xd9\xc0\xd9\xc0");
	T("underflow", "\xd9\xc9");
	CHECK(fails == 0, "x87: %d cases, %d differ", cases, fails);
	jit_cpu_free(cpu);
	harness_free();
	return unit_done();
}
