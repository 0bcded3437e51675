/*
 * lib/jit against the host CPU: general-purpose integer instructions.
 * Every opcode form below is generated with register and memory operands,
 * each operand size, and edge plus random values, run natively and under
 * the interpreter, and compared (registers, arithmetic flags, memory).
 * JIT_TEST_ITERS=N raises the number of random cases per form (default 6).
 */
#include "test-jit-harness.h"

struct enc {
	uint8_t pfx[3];		/* legacy prefixes, 0 = none */
	bool p66, w, rex40;	/* operand size 16 / REX.W / a bare REX (byte regs) */
	uint8_t opc[3];
	unsigned opc_len;
	int reg, rm;		/* ModRM.reg (or opcode extension), register operand */
	bool mem;		/* r/m is [rbx + disp] */
	int8_t disp;
	bool no_modrm;
	bool no_acc;		/* r/m register is not RAX, RDX or AH */
	unsigned imm_len;
	uint64_t imm;
};

static void encode(struct hcase *c, const struct enc *e)
{
	uint8_t rex = 0x40 | (e->w << 3) | ((e->reg >> 3) & 1) << 2;

	for (int i = 0; i < 3; i++)
		if (e->pfx[i])
			emit1(c, e->pfx[i]);
	if (e->p66)
		emit1(c, 0x66);
	if (!e->mem && !e->no_modrm)
		rex |= (e->rm >> 3) & 1;
	if (e->no_modrm)
		rex = (uint8_t)(0x40 | (e->w << 3) | ((e->reg >> 3) & 1));
	if (rex != 0x40 || e->rex40)
		emit1(c, rex);
	emit(c, e->opc, e->opc_len);
	if (!e->no_modrm) {
		if (e->mem) {
			emit1(c, (uint8_t)(0x40 | (e->reg & 7) << 3 | 3));
			emit1(c, (uint8_t)e->disp);
		} else {
			emit1(c, (uint8_t)(0xc0 | (e->reg & 7) << 3 | (e->rm & 7)));
		}
	}
	for (unsigned i = 0; i < e->imm_len; i++)
		emit1(c, (uint8_t)(e->imm >> (8 * i)));
}

static struct jit_cpu *cpu;
static struct rng rng = { 0x9e3779b97f4a7c15ull };
static int iters = 6, fails, cases;

/* A register other than RSP (and RBX when a memory operand needs it). */
static int rnd_reg(bool mem)
{
	for (;;) {
		int r = (int)(rnd(&rng) % 16);

		if (r != 4 && !(mem && r == 3))
			return r;
	}
}

static void rnd_operands(struct enc *e, bool allow_mem)
{
	e->mem = allow_mem && (rnd(&rng) & 1);
	do
		e->rm = rnd_reg(e->mem);
	while (e->no_acc && (e->rm == 0 || e->rm == 2 || e->rm == 4));
	if (e->reg < 0 || e->reg > 15)
		e->reg = rnd_reg(e->mem);
	e->disp = (int8_t)((rnd(&rng) % 16) * 8 - 64 + (rnd(&rng) % 8));
}

/* size: 1, 2, 4, 8 -> prefixes */
static void set_size(struct enc *e, unsigned size)
{
	e->p66 = size == 2;
	e->w = size == 8;
	e->rex40 = size == 1 && (rnd(&rng) & 1);
}

static bool run(struct hcase *c, const char *what)
{
	cases++;
	if (!harness_compare(cpu, c, what, false)) {
		fails++;
		return false;
	}
	return true;
}

static void one(const char *what, struct enc e, void (*fix)(struct hcase *, const struct enc *))
{
	for (int i = 0; i < iters; i++) {
		static struct hcase c;
		struct enc x = e;

		rnd_case(&rng, &c);
		if (x.reg == -1)
			x.reg = 99;
		rnd_operands(&x, !e.no_modrm);
		if (e.rm == -2)
			x.mem = true;	/* memory forced (LOCK) */
		if (e.reg >= 0 && e.reg < 16)
			x.reg = e.reg;
		encode(&c, &x);
		if (fix)
			fix(&c, &x);
		if (!run(&c, what))
			return;
	}
}

static struct enc op1(uint8_t a, int reg, unsigned size, unsigned imm_len)
{
	struct enc e = { .opc = { a }, .opc_len = 1, .reg = reg, .imm_len = imm_len };

	set_size(&e, size);
	e.imm = rnd_val(&rng);
	return e;
}

static struct enc op2(uint8_t a, int reg, unsigned size, unsigned imm_len)
{
	struct enc e = { .opc = { 0x0f, a }, .opc_len = 2, .reg = reg, .imm_len = imm_len };

	set_size(&e, size);
	e.imm = rnd_val(&rng);
	return e;
}

static const unsigned sizes[] = { 2, 4, 8 };

static void test_alu(void)
{
	for (unsigned op = 0; op < 8; op++) {
		for (unsigned sz = 0; sz < 3; sz++) {
			unsigned s = sizes[sz], iz = s == 2 ? 2 : 4;

			one("alu Eb,Gb", op1((uint8_t)(op * 8), -1, 1, 0), NULL);
			one("alu Ev,Gv", op1((uint8_t)(op * 8 + 1), -1, s, 0), NULL);
			one("alu Gb,Eb", op1((uint8_t)(op * 8 + 2), -1, 1, 0), NULL);
			one("alu Gv,Ev", op1((uint8_t)(op * 8 + 3), -1, s, 0), NULL);
			{
				struct enc e = op1((uint8_t)(op * 8 + 4), 0, 1, 1);

				e.no_modrm = true;
				one("alu AL,Ib", e, NULL);
				e = op1((uint8_t)(op * 8 + 5), 0, s, iz);
				e.no_modrm = true;
				one("alu eAX,Iz", e, NULL);
			}
			one("grp1 Eb,Ib", op1(0x80, (int)op, 1, 1), NULL);
			one("grp1 Ev,Iz", op1(0x81, (int)op, s, iz), NULL);
			one("grp1 Ev,Ib", op1(0x83, (int)op, s, 1), NULL);
		}
	}
	one("test Eb,Gb", op1(0x84, -1, 1, 0), NULL);
	for (unsigned sz = 0; sz < 3; sz++) {
		struct enc e = op1(0xa9, 0, sizes[sz], sizes[sz] == 2 ? 2 : 4);

		one("test Ev,Gv", op1(0x85, -1, sizes[sz], 0), NULL);
		e.no_modrm = true;
		one("test eAX,Iz", e, NULL);
	}
}

/* Keep DIV/IDIV from faulting: divisor not 0 or -1, RDX (AH) the zero or
 * sign extension of RAX (AL), so every quotient fits.  The divisor is
 * never AL/AH/RAX/RDX (see rnd_operands). */
static void fix_div(struct hcase *c, const struct enc *e)
{
	unsigned size = e->w ? 8 : e->p66 ? 2 : (e->opc[0] == 0xf6 ? 1 : 4);
	uint64_t m = size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
	uint8_t *dp = e->mem ? c->data + (MEMBASE - DATA) + e->disp : (uint8_t *)&c->in.gpr[e->rm];
	bool sign = (e->reg & 7) == 7;
	uint64_t d, a = c->in.gpr[0];

	if (size == 1 && !e->mem && !e->rex40 && e->rm >= 4 && e->rm < 8)
		dp = (uint8_t *)&c->in.gpr[e->rm - 4] + 1;	/* AH..BH */
	memcpy(&d, dp, size);
	if ((d & m) == 0 || (d & m) == m)
		d = (d & ~m) | 3;
	memcpy(dp, &d, size);
	if (size == 1) {
		uint64_t ah = sign && (a & 0x80) ? 0xff : 0;

		c->in.gpr[0] = (a & ~0xff00ull) | ah << 8;
		return;
	}
	c->in.gpr[2] = sign && ((a >> (size * 8 - 1)) & 1) ? ~0ull : 0;
}

static void test_grp3(void)
{
	for (int g = 0; g < 8; g++) {
		void (*fix)(struct hcase *, const struct enc *) = g >= 6 ? fix_div : NULL;
		struct enc e = op1(0xf6, g, 1, g < 2 ? 1 : 0);

		e.no_acc = g >= 6;
		one("grp3 Eb", e, fix);
		for (unsigned sz = 0; sz < 3; sz++) {
			e = op1(0xf7, g, sizes[sz], g < 2 ? (sizes[sz] == 2 ? 2 : 4) : 0);
			e.no_acc = g >= 6;
			one("grp3 Ev", e, fix);
		}
	}
	for (int g = 0; g < 2; g++) {
		one("inc/dec Eb", op1(0xfe, g, 1, 0), NULL);
		for (unsigned sz = 0; sz < 3; sz++)
			one("inc/dec Ev", op1(0xff, g, sizes[sz], 0), NULL);
	}
	for (unsigned sz = 0; sz < 3; sz++) {
		one("imul Gv,Ev", op2(0xaf, -1, sizes[sz], 0), NULL);
		one("imul Gv,Ev,Iz", op1(0x69, -1, sizes[sz], sizes[sz] == 2 ? 2 : 4), NULL);
		one("imul Gv,Ev,Ib", op1(0x6b, -1, sizes[sz], 1), NULL);
	}
}

static uint64_t rnd_count(void)
{
	static const uint8_t counts[] = { 0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255 };

	return rnd(&rng) & 1 ? counts[rnd(&rng) % sizeof(counts)] : rnd(&rng) & 0xff;
}

static void fix_cl(struct hcase *c, const struct enc *e)
{
	c->in.gpr[1] = (c->in.gpr[1] & ~0xffull) | rnd_count();
}

static void test_shift(void)
{
	for (int g = 0; g < 8; g++) {
		for (int k = 0; k < 4; k++) {
			unsigned s = k == 0 ? 1 : sizes[k - 1];
			struct enc e = op1(s == 1 ? 0xc0 : 0xc1, g, s, 1);

			for (int i = 0; i < 3; i++) {
				e.imm = rnd_count();
				one("shift Ib", e, NULL);
			}
			one("shift 1", op1(s == 1 ? 0xd0 : 0xd1, g, s, 0), NULL);
			e = op1(s == 1 ? 0xd2 : 0xd3, g, s, 0);
			if (e.mem || 1) {
				struct enc x = e;

				one("shift CL", x, fix_cl);
			}
		}
	}
	for (unsigned sz = 0; sz < 3; sz++) {
		struct enc e;

		for (int i = 0; i < 3; i++) {
			e = op2(0xa4, -1, sizes[sz], 1);
			e.imm = rnd_count();
			one("shld Ib", e, NULL);
			e = op2(0xac, -1, sizes[sz], 1);
			e.imm = rnd_count();
			one("shrd Ib", e, NULL);
		}
		one("shld CL", op2(0xa5, -1, sizes[sz], 0), fix_cl);
		one("shrd CL", op2(0xad, -1, sizes[sz], 0), fix_cl);
	}
}

/* BT* Ev,Gv with memory: keep the bit offset within the data window. */
static void fix_bt(struct hcase *c, const struct enc *e)
{
	if (e->mem && e->reg != 3)
		c->in.gpr[e->reg] = (uint64_t)((int64_t)(rnd(&rng) % 2048) - 1024);
}

static void test_bits(void)
{
	static const uint8_t bt[] = { 0xa3, 0xab, 0xb3, 0xbb };

	for (unsigned sz = 0; sz < 3; sz++) {
		unsigned s = sizes[sz];

		for (int k = 0; k < 4; k++) {
			struct enc e = op2(bt[k], -1, s, 0);

			one("bt Ev,Gv", e, fix_bt);
			for (int g = 4; g < 8; g++)
				one("bt Ev,Ib", op2(0xba, g, s, 1), NULL);
		}
		one("bsf", op2(0xbc, -1, s, 0), NULL);
		one("bsr", op2(0xbd, -1, s, 0), NULL);
		{
			struct enc e = op2(0xbc, -1, s, 0);

			e.pfx[0] = 0xf3;
			one("tzcnt", e, NULL);
			e.opc[1] = 0xbd;
			one("lzcnt", e, NULL);
			e.opc[1] = 0xb8;
			one("popcnt", e, NULL);
		}
		if (s != 2) {
			struct enc e = op2(0xc8, 0, s, 0);

			e.no_modrm = true;
			for (int r = 0; r < 16; r++)
				if (r != 4) {
					e.reg = r;
					e.opc[1] = (uint8_t)(0xc8 + (r & 7));
					one("bswap", e, NULL);
				}
		}
		{
			struct enc e = { .opc = { 0x0f, 0x38, 0xf0 }, .opc_len = 3, .reg = -1,
					 .rm = -3 };

			set_size(&e, s);
			e.mem = true;
			for (int i = 0; i < iters; i++) {
				static struct hcase c;
				struct enc x = e;

				rnd_case(&rng, &c);
				x.reg = rnd_reg(true);
				x.disp = (int8_t)(rnd(&rng) % 64);
				x.opc[2] = (uint8_t)(0xf0 + (i & 1));
				encode(&c, &x);
				if (!run(&c, "movbe"))
					break;
			}
		}
	}
}

static void test_moves(void)
{
	for (int k = 0; k < 4; k++) {
		unsigned s = k == 0 ? 1 : sizes[k - 1];

		one("mov Ev,Gv", op1(s == 1 ? 0x88 : 0x89, -1, s, 0), NULL);
		one("mov Gv,Ev", op1(s == 1 ? 0x8a : 0x8b, -1, s, 0), NULL);
		one("mov Ev,Iz", op1(s == 1 ? 0xc6 : 0xc7, 0, s, s == 1 ? 1 : s == 2 ? 2 : 4), NULL);
		one("xchg", op1(s == 1 ? 0x86 : 0x87, -1, s, 0), NULL);
		one("cmpxchg", op2(s == 1 ? 0xb0 : 0xb1, -1, s, 0), NULL);
		one("xadd", op2(s == 1 ? 0xc0 : 0xc1, -1, s, 0), NULL);
		for (int r = 0; r < 16; r++) {
			struct enc e = op1((uint8_t)((s == 1 ? 0xb0 : 0xb8) + (r & 7)), r, s,
					   s == 1 ? 1 : s);

			if (r == 4 && s != 1)
				continue;
			e.no_modrm = true;
			one("mov r,imm", e, NULL);
		}
	}
	for (unsigned sz = 0; sz < 3; sz++) {
		unsigned s = sizes[sz];

		one("movzx b", op2(0xb6, -1, s, 0), NULL);
		one("movzx w", op2(0xb7, -1, s, 0), NULL);
		one("movsx b", op2(0xbe, -1, s, 0), NULL);
		one("movsx w", op2(0xbf, -1, s, 0), NULL);
		one("movsxd", op1(0x63, -1, s, 0), NULL);
		for (int cc = 0; cc < 16; cc++)
			one("cmovcc", op2((uint8_t)(0x40 + cc), -1, s, 0), NULL);
		{
			struct enc e = op1(0x98, 0, s, 0);

			e.no_modrm = true;
			one("cbw", e, NULL);
			e.opc[0] = 0x99;
			one("cwd", e, NULL);
		}
	}
	for (int cc = 0; cc < 16; cc++)
		one("setcc", op2((uint8_t)(0x90 + cc), 0, 1, 0), NULL);
	{
		static const uint8_t ops[] = { 0x9e, 0x9f, 0xf5, 0xf8, 0xf9, 0xfc, 0xfd, 0x90 };

		for (unsigned i = 0; i < sizeof(ops); i++) {
			struct enc e = op1(ops[i], 0, 4, 0);

			e.no_modrm = true;
			one("flag op", e, NULL);
		}
	}
	for (unsigned sz = 0; sz < 2; sz++) {
		struct enc e = op2(0xc7, 1, sz ? 8 : 4, 0);

		e.mem = true;
		for (int i = 0; i < iters; i++) {
			static struct hcase c;
			struct enc x = e;

			rnd_case(&rng, &c);
			x.disp = (int8_t)(16 * (rnd(&rng) % 4));
			encode(&c, &x);
			if (rnd(&rng) & 1) {	/* make the comparison succeed */
				memcpy(&c.in.gpr[0], c.data + (MEMBASE - DATA) + x.disp, 4 * (sz + 1));
				memcpy(&c.in.gpr[2], c.data + (MEMBASE - DATA) + x.disp + 4 * (sz + 1),
				       4 * (sz + 1));
				if (!sz) {
					c.in.gpr[0] &= 0xffffffff;
					c.in.gpr[2] &= 0xffffffff;
				}
			}
			if (!run(&c, sz ? "cmpxchg16b" : "cmpxchg8b"))
				break;
		}
	}
}

/* LEA with random ModRM/SIB/displacement and address size. */
static void test_lea(void)
{
	for (int i = 0; i < iters * 60; i++) {
		static struct hcase c;
		uint8_t modrm, rex = 0x40;
		unsigned mod;

		rnd_case(&rng, &c);
		if (rnd(&rng) & 1)
			emit1(&c, 0x67);
		if (rnd(&rng) % 3 == 0)
			emit1(&c, 0x66);
		rex |= (uint8_t)(rnd(&rng) & 0xf);
		emit1(&c, rex);
		emit1(&c, 0x8d);
		mod = rnd(&rng) % 3;
		modrm = (uint8_t)(mod << 6 | (rnd(&rng) & 7) << 3 | (rnd(&rng) & 7));
		if (((modrm >> 3) & 7) == 4 && !(rex & 4))
			modrm ^= 1 << 3;	/* keep RSP as it is */
		emit1(&c, modrm);
		if ((modrm & 7) == 4)
			emit1(&c, (uint8_t)rnd(&rng));
		if (mod == 1)
			emit1(&c, (uint8_t)rnd(&rng));
		else if (mod == 2 || (mod == 0 && ((modrm & 7) == 5 ||
					(c.code[c.len - 1] & 7) == 5)))
			for (int k = 0; k < 4; k++)
				emit1(&c, (uint8_t)rnd(&rng));
		if (!run(&c, "lea"))
			break;
	}
}

static void test_stack_branch(void)
{
	static const struct { const char *what; const char *code; unsigned len; } seqs[] = {
		{ "push/pop", "\x50\x51\x41\x52\x58\x41\x59\x5e", 8 },
		{ "push imm", "\x68\x78\x56\x34\x92\x6a\x80\x58\x5a", 9 },
		{ "push16", "\x66\x50\x66\x6a\x7f\x66\x58\x66\x41\x5b", 10 },
		{ "pushf/popf", "\x9c\x58\x48\x35\xd5\x08\x00\x00\x50\x9d\x9c\x59", 12 },
		{ "call/pop", "\xe8\x00\x00\x00\x00\x58", 6 },
		{ "call/ret", "\xe8\x01\x00\x00\x00\xc3\x48\xff\xc0", 9 },
		{ "enter/leave", "\x48\x89\xe5\xc8\x10\x00\x00\x48\x89\xe0\xc9\xc8\x08\x00\x03\x48\x89\xe1\xc9", 19 },
		{ "jmp rel8", "\xeb\x03\x48\xff\xc0\x48\xff\xc1", 8 },
		{ "jmp rel32", "\xe9\x03\x00\x00\x00\x48\xff\xc0\x48\xff\xc1", 11 },
		{ "loop", "\xb9\x05\x00\x00\x00\x48\xff\xc0\xe2\xfb", 10 },
		{ "jrcxz", "\xe3\x03\x48\xff\xc0\x90", 6 },
		{ "xlat", "\x48\x31\xc0\xb0\x10\xd7", 6 },
		{ "ret imm", "\xe8\x03\x00\x00\x00\xeb\x04\x90\xc2\x00\x00\x90", 12 },
		{ "push mem", "\xff\x73\x08\x8f\x43\x10", 6 },
		{ "self-modifying", "\xb1\x05\xba\x04\x00\x00\x00\x88\x0d\x02\x00\x00\x00"
		  "\x83\xc0\x00\xfe\xc1\xff\xca\x75\xf1", 22 },
		{ "call ind", "\x48\x8d\x05\x05\x00\x00\x00\xff\xd0\xeb\x01\xc3\x90", 13 },
	};

	for (unsigned k = 0; k < sizeof(seqs) / sizeof(seqs[0]); k++)
		for (int i = 0; i < iters; i++) {
			static struct hcase c;

			rnd_case(&rng, &c);
			emit(&c, seqs[k].code, seqs[k].len);
			if (!run(&c, seqs[k].what))
				break;
		}
	for (int cc = 0; cc < 16; cc++)
		for (int i = 0; i < iters; i++) {
			static struct hcase c;

			rnd_case(&rng, &c);
			emit1(&c, (uint8_t)(0x70 + cc));
			emit(&c, "\x03\x48\xff\xc0", 4);
			emit(&c, "\x0f", 1);
			emit1(&c, (uint8_t)(0x80 + cc));
			emit(&c, "\x03\x00\x00\x00\x48\xff\xc1", 7);
			if (!run(&c, "jcc"))
				break;
		}
}

/* String instructions with and without REP, both directions. */
static void test_string(void)
{
	static const uint8_t ops[] = { 0xa4, 0xa5, 0xa6, 0xa7, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf };
	static const uint8_t reps[] = { 0, 0xf3, 0xf2 };

	for (unsigned k = 0; k < sizeof(ops); k++)
		for (unsigned r = 0; r < 3; r++)
			for (unsigned sz = 0; sz < 4; sz++)
				for (int i = 0; i < iters; i++) {
					static struct hcase c;

					rnd_case(&rng, &c);
					c.in.gpr[6] = DATA + 0x700 + rnd(&rng) % 0x200;	/* rsi */
					c.in.gpr[7] = DATA + 0x900 + rnd(&rng) % 0x200;	/* rdi */
					if (rnd(&rng) % 4 == 0)
						c.in.gpr[7] = c.in.gpr[6] + rnd(&rng) % 16;
					c.in.gpr[1] = rnd(&rng) % 40;
					if (rnd(&rng) & 1)
						c.in.rflags |= 0x400;
					if ((ops[k] & ~1) == 0xa6 || (ops[k] & ~1) == 0xae)
						memset(c.data + 0x780, 0x11, 0x100), c.in.gpr[0] = 0x1111111111111111ull;
					if (reps[r])
						emit1(&c, reps[r]);
					if (sz == 1)
						emit1(&c, 0x66);
					if (sz == 3)
						emit1(&c, 0x48);
					emit1(&c, (uint8_t)(sz == 0 ? ops[k] & ~1 : ops[k] | 1));
					if (!run(&c, "string"))
						goto next;
				}
next:
		;
}

/* LOCK-prefixed read-modify-write forms on memory. */
static void test_lock(void)
{
	for (unsigned op = 0; op < 7; op++)
		for (unsigned sz = 0; sz < 3; sz++) {
			struct enc e = op1((uint8_t)(op * 8 + 1), -1, sizes[sz], 0);

			e.pfx[0] = 0xf0;
			e.rm = -2;
			e.mem = true;
			one("lock alu", e, NULL);
			e = op1(0x83, (int)op, sizes[sz], 1);
			e.pfx[0] = 0xf0;
			e.rm = -2;
			e.mem = true;
			one("lock grp1", e, NULL);
		}
	{
		static const struct { uint8_t a, b; int reg; } f[] = {
			{ 0xff, 0, 0 }, { 0xff, 0, 1 }, { 0xf7, 0, 2 }, { 0xf7, 0, 3 },
			{ 0x0f, 0xb1, -1 }, { 0x0f, 0xc1, -1 }, { 0x0f, 0xab, 1 }, { 0x87, 0, -1 },
		};

		for (unsigned k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
			struct enc e = f[k].b ? op2(f[k].b, f[k].reg, 8, 0) : op1(f[k].a, f[k].reg, 8, 0);

			e.pfx[0] = 0xf0;
			e.rm = -2;
			e.mem = true;
			one("lock rmw", e, f[k].b == 0xab ? fix_bt : NULL);
		}
	}
}

int main(void)
{
	const char *env = getenv("JIT_TEST_ITERS");

	if (env)
		iters = atoi(env);
	harness_map_native();
	cpu = harness_cpu();
	test_alu();
	CHECK(fails == 0, "alu/grp1/test: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_grp3();
	CHECK(fails == 0, "grp3/inc/dec/imul/div: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_shift();
	CHECK(fails == 0, "shifts/rotates/shld/shrd: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_bits();
	CHECK(fails == 0, "bt*/bsf/bsr/tzcnt/lzcnt/popcnt/bswap/movbe: %d cases, %d differ",
	      cases, fails);
	fails = cases = 0;
	test_moves();
	CHECK(fails == 0, "mov/movx/xchg/cmpxchg/xadd/cmov/setcc/cmpxchg8b/16b: %d cases, %d differ",
	      cases, fails);
	fails = cases = 0;
	test_lea();
	CHECK(fails == 0, "lea addressing forms: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_stack_branch();
	CHECK(fails == 0, "stack and branches: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_string();
	CHECK(fails == 0, "string instructions: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_lock();
	CHECK(fails == 0, "lock forms: %d cases, %d differ", cases, fails);
	jit_cpu_free(cpu);
	harness_free();
	return unit_done();
}
