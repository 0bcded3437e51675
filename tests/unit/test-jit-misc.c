/*
 * lib/jit against the host CPU: the instruction forms test-jit-alu.c does
 * not generate - the short XCHG rAX forms, MOV with a 64-bit (and, under
 * 67h, 32-bit) absolute address, LOOPE/LOOPNE/LOOP/JECXZ with both
 * address sizes, memory operands and string instructions under the 67h
 * address-size prefix (the upper halves of RBX/RSI/RDI/RCX must not be
 * used), byte registers reached through REX (SIL, DIL, R8B...),
 * CMPXCHG when the comparison succeeds, and prefixes the CPU must accept
 * or ignore: multi-byte NOPs, PAUSE, fences, prefetches, MOVNTI, branch
 * hints, segment overrides that 64-bit mode ignores, REP on a plain ALU
 * op, repeated 66h.  Each case runs natively and under lib/jit and the
 * registers, flags and memory are compared.  JIT_TEST_ITERS=N raises the
 * number of random cases per form (default 6).
 */
#include "test-jit-harness.h"

static struct jit_cpu *cpu;
static struct rng rng = { 0x2545f4914f6cdd1dull };
static int iters = 6, fails, cases;

static bool run(struct hcase *c, const char *what)
{
	cases++;
	if (!harness_compare(cpu, c, what, false)) {
		fails++;
		return false;
	}
	return true;
}

/* Operand-size prefix bytes for size 1, 2, 4 or 8 (REX.W merged into rex). */
static void emit_size(struct hcase *c, unsigned size, uint8_t rex)
{
	if (size == 2)
		emit1(c, 0x66);
	if (size == 8)
		rex |= 0x48;
	if (rex)
		emit1(c, rex | 0x40);
}

static const unsigned sizes[] = { 2, 4, 8 };

static void test_xchg_short(void)
{
	for (int r = 0; r < 16; r++)
		for (unsigned sz = 0; sz < 3; sz++)
			for (int i = 0; i < iters && r != 4; i++) {
				static struct hcase c;

				rnd_case(&rng, &c);
				emit_size(&c, sizes[sz], r >= 8 ? 0x41 : 0);
				emit1(&c, (uint8_t)(0x90 + (r & 7)));
				if (!run(&c, "xchg rAX,r"))
					return;
			}
}

static void test_moffs(void)
{
	static const uint8_t ops[] = { 0xa0, 0xa1, 0xa2, 0xa3 };

	for (unsigned k = 0; k < 4; k++)
		for (unsigned s = 1; s <= 8; s *= 2)
			for (int a32 = 0; a32 < 2; a32++)
				for (int i = 0; i < iters; i++) {
					static struct hcase c;
					uint64_t addr = MEMBASE + rnd(&rng) % 64;

					if ((s == 1) != !(ops[k] & 1))
						continue;
					rnd_case(&rng, &c);
					if (a32)
						emit1(&c, 0x67);
					emit_size(&c, s == 1 ? 4 : s, 0);
					emit1(&c, ops[k]);
					emit(&c, &addr, a32 ? 4 : 8);
					if (!run(&c, "mov moffs"))
						return;
				}
}

/* lea rsi,[rsi+1]; cmp rax,rdx; LOOPcc back (with 67h: ECX counts). */
static void test_loops(void)
{
	static const uint8_t ops[] = { 0xe0, 0xe1, 0xe2 };

	for (unsigned k = 0; k < 3; k++)
		for (int a32 = 0; a32 < 2; a32++)
			for (int i = 0; i < iters * 2; i++) {
				static struct hcase c;

				rnd_case(&rng, &c);
				c.in.gpr[1] = 1 + rnd(&rng) % 5;	/* never 0: LOOP would wrap */
				if (a32)
					c.in.gpr[1] |= rnd(&rng) << 32;
				if (rnd(&rng) & 1)
					c.in.gpr[2] = c.in.gpr[0];
				emit(&c, "\x48\x8d\x76\x01\x48\x39\xd0", 7);
				if (a32)
					emit1(&c, 0x67);
				emit1(&c, ops[k]);
				emit1(&c, (uint8_t)(a32 ? -10 : -9));
				if (!run(&c, "loopcc"))
					break;
			}
	for (int a32 = 0; a32 < 2; a32++)
		for (int i = 0; i < iters * 2; i++) {
			static struct hcase c;

			rnd_case(&rng, &c);
			c.in.gpr[1] = (rnd(&rng) & 1) ? 0 : rnd_val(&rng);
			if (rnd(&rng) & 1)
				c.in.gpr[1] |= rnd(&rng) << 32;
			if (a32)
				emit1(&c, 0x67);
			emit(&c, "\xe3\x03\x48\xff\xc0\x90", 6);
			if (!run(&c, a32 ? "jecxz" : "jrcxz"))
				break;
		}
}

/* 67h: [ebx + disp8] with garbage above EBX must address MEMBASE + disp. */
static void test_addr32(void)
{
	static const uint8_t ops[] = { 0x8b, 0x89, 0x01, 0x2b, 0x85, 0x87, 0x8d };

	for (unsigned k = 0; k < sizeof(ops); k++)
		for (unsigned sz = 0; sz < 3; sz++)
			for (int i = 0; i < iters; i++) {
				static struct hcase c;
				int reg = (int)(rnd(&rng) % 16);

				if (reg == 4 || reg == 3)
					reg = 0;
				rnd_case(&rng, &c);
				c.in.gpr[3] = MEMBASE | (rnd(&rng) << 32);
				emit1(&c, 0x67);
				emit_size(&c, sizes[sz], reg >= 8 ? 0x44 : 0);
				emit1(&c, ops[k]);
				emit1(&c, (uint8_t)(0x43 | (reg & 7) << 3));
				emit1(&c, (uint8_t)(rnd(&rng) % 64));
				if (!run(&c, "addr32 [ebx+d8]"))
					break;
			}
}

/* String instructions under 67h: ESI, EDI and ECX, upper halves ignored. */
static void test_string32(void)
{
	static const uint8_t ops[] = { 0xa4, 0xa5, 0xaa, 0xab, 0xac, 0xa6, 0xae };

	for (unsigned k = 0; k < sizeof(ops); k++)
		for (int rep = 0; rep < 2; rep++)
			for (int i = 0; i < iters; i++) {
				static struct hcase c;

				rnd_case(&rng, &c);
				c.in.gpr[6] = (DATA + 0x700 + rnd(&rng) % 0x200) | (rnd(&rng) << 32);
				c.in.gpr[7] = (DATA + 0x900 + rnd(&rng) % 0x200) | (rnd(&rng) << 32);
				c.in.gpr[1] = (rnd(&rng) % 4 ? rnd(&rng) % 40 : 0) | (rnd(&rng) << 32);
				if (rnd(&rng) & 1)
					c.in.rflags |= 0x400;
				emit1(&c, 0x67);
				if (rep)
					emit1(&c, 0xf3);
				emit1(&c, ops[k]);
				if (!run(&c, "addr32 string"))
					break;
			}
}

/* Byte registers through REX: SIL, DIL, BPL and R8B-R15B (never SPL). */
static void test_rex_bytes(void)
{
	static const uint8_t ops[] = { 0x88, 0x8a, 0x00, 0x28, 0x30, 0x38, 0x84, 0x86 };

	for (unsigned k = 0; k < sizeof(ops); k++)
		for (int i = 0; i < iters * 4; i++) {
			static struct hcase c;
			int a = (int)(rnd(&rng) % 16), b = (int)(rnd(&rng) % 16);

			if (a == 4)
				a = 5;
			if (b == 4)
				b = 6;
			rnd_case(&rng, &c);
			emit1(&c, (uint8_t)(0x40 | (a >> 3) << 2 | (b >> 3)));
			emit1(&c, ops[k]);
			emit1(&c, (uint8_t)(0xc0 | (a & 7) << 3 | (b & 7)));
			if (!run(&c, "rex byte regs"))
				break;
		}
	for (int i = 0; i < iters * 2; i++) {
		static struct hcase c;

		rnd_case(&rng, &c);
		emit(&c, "\x40\x0f\xb6\xfe\x44\x0f\xbe\xc6\x40\x0f\x95\xc7", 12);
		if (!run(&c, "movzx/movsx/setcc rex bytes"))
			break;
	}
}

/* CMPXCHG r/m, r when the comparison succeeds (RAX equals the destination). */
static void test_cmpxchg_equal(void)
{
	for (unsigned s = 1; s <= 8; s *= 2)
		for (int mem = 0; mem < 2; mem++)
			for (int i = 0; i < iters; i++) {
				static struct hcase c;
				int src = 1 + (int)(rnd(&rng) % 2);	/* rcx or rdx */
				uint8_t d = (uint8_t)(rnd(&rng) % 64);

				rnd_case(&rng, &c);
				if (mem)
					memcpy(&c.in.gpr[0], c.data + (MEMBASE - DATA) + d, 8);
				else
					c.in.gpr[0] = c.in.gpr[6];
				emit_size(&c, s, s == 1 ? 0x40 : 0);	/* SIL, not DH */
				emit1(&c, 0x0f);
				emit1(&c, s == 1 ? 0xb0 : 0xb1);
				emit1(&c, mem ? (uint8_t)(0x43 | src << 3) : (uint8_t)(0xc6 | src << 3));
				if (mem)
					emit1(&c, d);
				if (!run(&c, "cmpxchg equal"))
					break;
			}
}

/* Forms that do nothing visible, or that the CPU must skip correctly. */
static void test_prefixes(void)
{
	static const struct { const char *what; const char *code; unsigned len; } seqs[] = {
		{ "nop Ev", "\x0f\x1f\x00\x0f\x1f\x40\x00\x0f\x1f\x44\x00\x00", 12 },
		{ "nopw long", "\x66\x66\x2e\x0f\x1f\x84\x00\x00\x00\x00\x00\x66\x0f\x1f\x44\x00\x00", 17 },
		{ "pause", "\xf3\x90\x48\xff\xc0", 5 },
		{ "fences", "\x0f\xae\xe8\x0f\xae\xf0\x0f\xae\xf8\x48\xff\xc1", 12 },
		{ "prefetch", "\x0f\x18\x03\x0f\x18\x0b\x0f\x18\x13\x0f\x18\x1b\x48\xff\xc2", 15 },
		{ "movnti", "\x0f\xc3\x03\x48\x0f\xc3\x4b\x08", 8 },
		{ "branch hints", "\x48\x39\xc8\x2e\x74\x03\x48\xff\xc0\x3e\x75\x03\x48\xff\xc1", 15 },
		{ "ignored sreg", "\x26\x48\x01\xc8\x36\x48\x8b\x03\x2e\x48\x03\x53\x08\x3e\x48\x29\x4b\x10", 18 },
		{ "rep on alu", "\xf3\x48\x01\xc8\xf2\x48\x31\xd0", 8 },
		{ "66 66", "\x66\x66\x01\xc8\x66\x66\x48\x01\xd0", 9 },
		{ "66 rex.w", "\x66\x48\xb8\x11\x22\x33\x44\x55\x66\x77\x88\x66\x48\x0f\xaf\xc1", 16 },
		{ "xchg same", "\x48\x87\xc0\x87\xc9\x48\x0f\xc1\xd2\x0f\xb1\xdb", 12 },
	};

	for (unsigned k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++)
		for (int i = 0; i < iters; i++) {
			static struct hcase c;

			rnd_case(&rng, &c);
			emit(&c, seqs[k].code, seqs[k].len);
			if (!run(&c, seqs[k].what))
				break;
		}
}

int main(void)
{
	const char *env = getenv("JIT_TEST_ITERS");

	if (env)
		iters = atoi(env);
	harness_map_native();
	cpu = harness_cpu();
	test_xchg_short();
	test_moffs();
	CHECK(fails == 0, "xchg rAX,r and mov moffs: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_loops();
	CHECK(fails == 0, "loop/loope/loopne/jrcxz/jecxz: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_addr32();
	test_string32();
	CHECK(fails == 0, "67h address size (memory operands, strings): %d cases, %d differ",
	      cases, fails);
	fails = cases = 0;
	test_rex_bytes();
	test_cmpxchg_equal();
	CHECK(fails == 0, "REX byte registers, cmpxchg that succeeds: %d cases, %d differ",
	      cases, fails);
	fails = cases = 0;
	test_prefixes();
	CHECK(fails == 0, "nops, hints, fences, ignored and repeated prefixes: %d cases, %d differ",
	      cases, fails);
	jit_cpu_free(cpu);
	harness_free();
	return unit_done();
}
