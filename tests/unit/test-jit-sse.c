/*
 * lib/jit against the host CPU: MMX, SSE, SSE2, SSE3, SSSE3.  Every
 * opcode of the 0F, 0F 38 and 0F 3A maps is tried with each mandatory
 * prefix, register and memory operands and random or edge values (NaNs,
 * infinities, denormals come from the random bits); forms the interpreter
 * rejects must be rejected by the host too (SIGILL), forms it accepts must
 * give the same XMM registers, general registers, flags and memory.  MMX
 * results are compared through memory.  JIT_TEST_ITERS=N sets the cases per
 * form (default 4).
 */
#include <setjmp.h>

#include "test-jit-harness.h"

static struct jit_cpu *cpu;
static struct rng rng = { 0x243f6a8885a308d3ull };
static int iters = 4, fails, cases, skipped;
static sigjmp_buf ill_jmp;
static volatile int got_ill;

static void on_sigill(int sig, siginfo_t *si, void *uc)
{
	got_ill = 1;
	siglongjmp(ill_jmp, 1);
}

/* Does the host accept the code? (runs it natively once, catching SIGILL) */
static bool host_accepts(const struct hcase *c)
{
	static struct hstate out;

	got_ill = 0;
	if (sigsetjmp(ill_jmp, 1) == 0)
		harness_native(c, &out);
	return !got_ill;
}

static void try_case(struct hcase *c, const char *what)
{
	static struct hstate emu;
	bool guest_ok = harness_guest(cpu, c, &emu) >= 0;
	bool host_ok = host_accepts(c);

	if (guest_ok != host_ok) {
		char hex_[400];

		hex(c->code, c->len, hex_);
		printf("# %s: %s accepts, %s does not: %s\n", what, guest_ok ? "jit" : "host",
		       guest_ok ? "host" : "jit", hex_);
		fails++;
		cases++;
		return;
	}
	if (!guest_ok) {
		skipped++;
		return;
	}
	cases++;
	if (!harness_compare(cpu, c, what, true))
		fails++;
}

/* Emit prefix, REX, the opcode and a ModRM for (reg, rm or [rbx+disp]). */
static void emit_op(struct hcase *c, uint8_t pfx, uint8_t rexw, const uint8_t *opc,
		    unsigned opc_len, int reg, int rm, bool mem, int8_t disp)
{
	uint8_t rex = (uint8_t)(0x40 | rexw | ((reg >> 3) & 1) << 2 | (mem ? 0 : (rm >> 3) & 1));

	if (pfx)
		emit1(c, pfx);
	if (rex != 0x40)
		emit1(c, rex);
	emit(c, opc, opc_len);
	if (mem) {
		emit1(c, (uint8_t)(0x40 | (reg & 7) << 3 | 3));
		emit1(c, (uint8_t)disp);
	} else {
		emit1(c, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
	}
}

static bool has_imm(unsigned map, uint8_t op)
{
	return map == 2 || op == 0x70 || op == 0x71 || op == 0x72 || op == 0x73 ||
	       op == 0xc2 || op == 0xc4 || op == 0xc5 || op == 0xc6;
}

static void one_form(unsigned map, uint8_t op, uint8_t pfx, bool mem, uint8_t rexw)
{
	uint8_t opc[3] = { 0x0f }, n = 1;

	if (map == 1)
		opc[n++] = 0x38;
	if (map == 2)
		opc[n++] = 0x3a;
	opc[n++] = op;
	for (int i = 0; i < iters; i++) {
		static struct hcase c;
		int reg = (int)(rnd(&rng) % 16), rm = (int)(rnd(&rng) % 16);
		int8_t disp = (int8_t)(16 * (rnd(&rng) % 6));

		rnd_case(&rng, &c);
		if (rm == 4 || rm == 3)
			rm = 5;
		if (reg == 4 || reg == 3)
			reg = 6;
		if (!pfx || pfx == 0xf3 || pfx == 0xf2) {
			/* MMX operands: load mm registers from memory first */
			for (int r = 0; r < 8; r++)
				emit(&c, (const uint8_t[]){ 0x0f, 0x6f, (uint8_t)(0x43 | r << 3),
					 (uint8_t)(0x40 + 8 * r) }, 4);
		}
		emit_op(&c, pfx, rexw, opc, n, reg, rm, mem, disp);
		if (has_imm(map, op))
			emit1(&c, (uint8_t)rnd(&rng));
		if (!pfx || pfx == 0xf3 || pfx == 0xf2) {
			for (int r = 0; r < 8; r++)	/* movq [rbx + 0x100 + 8r], mmr */
				emit(&c, (const uint8_t[]){ 0x0f, 0x7f, (uint8_t)(0x83 | r << 3),
					 (uint8_t)(0x00 + 8 * r), 0x01, 0, 0 }, 7);
			emit(&c, "\x0f\x77", 2);
		}
		try_case(&c, "sse");
		if (fails > 20)
			return;
	}
}

static bool skip_op(unsigned map, uint8_t op)
{
	if (map == 0)
		return op < 0x10 || op == 0x77 || op == 0xc3 || op == 0xf7 || op == 0x38 || op == 0x3a ||
		       (op >= 0x18 && op <= 0x27) || (op >= 0x30 && op <= 0x4f) ||
		       (op >= 0x78 && op <= 0x7b) || (op >= 0x80 && op <= 0xc1) ||
		       (op >= 0xc7 && op <= 0xcf);
	if (map == 1)	/* SSSE3 only: SSE4.1 is not advertised */
		return op > 0x1e || (op > 0x0b && op < 0x1c);
	return op != 0x0f;
}

int main(void)
{
	static const uint8_t pfxs[] = { 0, 0x66, 0xf3, 0xf2 };
	const char *env = getenv("JIT_TEST_ITERS");
	struct sigaction sa = { .sa_sigaction = on_sigill, .sa_flags = SA_SIGINFO | SA_NODEFER };
	static uint8_t altstack[65536];
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };

	if (env)
		iters = atoi(env);
	sigaltstack(&ss, NULL);
	sa.sa_flags |= SA_ONSTACK;
	sigaction(SIGILL, &sa, NULL);
	harness_map_native();
	cpu = harness_cpu();
	for (unsigned map = 0; map < 3; map++) {
		for (unsigned op = 0; op < 256; op++) {
			if (skip_op(map, (uint8_t)op))
				continue;
			for (unsigned p = 0; p < 4; p++)
				for (int mem = 0; mem < 2; mem++) {
					one_form(map, (uint8_t)op, pfxs[p], mem, 0);
					if (op == 0x2a || op == 0x2c || op == 0x2d || op == 0x6e ||
					    op == 0x7e)
						one_form(map, (uint8_t)op, pfxs[p], mem, 8);
				}
		}
	}
	CHECK(fails == 0, "mmx/sse/sse2/sse3/ssse3: %d cases, %d differ (%d invalid forms skipped)",
	      cases, fails, skipped);
	jit_cpu_free(cpu);
	harness_free();
	return unit_done();
}
