/*
 * The translator (lib/jit/tr-*.c) against the interpreter and the host:
 * random straight-line sequences of the forms the translator emits inline
 * (ALU with register, memory and immediate operands, TEST, shifts and
 * rotates, IMUL, MUL/IMUL of rDX:rAX, INC/DEC, NOT/NEG, CMOVcc, SETcc,
 * BSWAP, MOV/MOVZX/MOVSX/LEA, PUSH/POP, loads and stores, read-modify-write
 * of memory, short forward Jcc, an ALU operation and the Jcc after it)
 * mixed with forms it hands to the interpreter, run natively, by a vCPU
 * that translates every block at once (VM_JIT_HOT=0) and by one that only
 * interprets (VM_JIT_TRANSLATE=off): registers, flags and memory must
 * match.  Then loops and CALL/RET (chained blocks, the RET table),
 * indirect CALL/JMP, loops inside one block, code that rewrites
 * itself ahead of RIP, and a fault in the middle of a translated block
 * (the state must be exactly the interpreter's: precise exceptions).
 * Last, the other CPU suites beside this program (test-jit-alu, -sse,
 * -x87, -sys, -events, -machine, -misc) run again twice: every block translated
 * at once, and the interpreter alone; each must pass both ways.
 */
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-jit-harness.h"

static struct jit_cpu *cpu_tr, *cpu_in;
static int cases, fails;

/* Registers a sequence may write: not RSP (the stack) nor RBX (MEMBASE). */
static unsigned rreg(struct rng *r)
{
	static const uint8_t regs[] = { 0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

	return regs[rnd(r) % sizeof(regs)];
}

/* [REX] opcode(s) ModRM for register reg and r/m register rm (mod 3) or
 * [rbx + disp8] (rm < 0); w: REX.W; p66: operand-size prefix; byte: a
 * byte operation (BH is part of RBX: a REX makes register 7 DIL). */
static void modrm_insn(struct hcase *c, bool p66, bool w, bool byte, const uint8_t *op,
		       unsigned nop, unsigned reg, int rm, int disp)
{
	uint8_t rex = 0x40 | (w ? 8 : 0) | ((reg & 8) ? 4 : 0) | (rm >= 8 ? 1 : 0);

	if (p66)
		emit1(c, 0x66);
	if (rex != 0x40 || (byte && (reg == 7 || rm == 7)))
		emit1(c, rex);
	emit(c, op, nop);
	if (rm < 0) {
		emit1(c, (uint8_t)(0x40 | (reg & 7) << 3 | 3));
		emit1(c, (uint8_t)disp);
	} else {
		emit1(c, (uint8_t)(0xc0 | (reg & 7) << 3 | (rm & 7)));
	}
}

static int rdisp(struct rng *r)
{
	return (int)(rnd(r) % 0x70) & ~7;	/* inside the compared window */
}

/* An instruction that sets flags: ALU, INC/DEC, shifts and rotates (by
 * CL too), NEG, MUL/IMUL, CMP with memory, read-modify-write of memory. */
static void flag_producer(struct rng *r, struct hcase *c, unsigned d, unsigned s, bool w, bool p66)
{
	switch (rnd(r) % 9) {
	case 8: {	/* SHL/SHR/SAR by CL, CL often 0 (the flags stay) or a multiple of 32 */
		bool byte = rnd(r) % 4 == 0;

		emit(c, (uint8_t[]){ 0xb9, (uint8_t)(rnd(r) % 2 ? 0 : rnd(r) % 2 ? 32 : rnd(r)), 0, 0, 0 }, 5);
		modrm_insn(c, p66 && !byte, w && !byte, byte, (uint8_t[]){ byte ? 0xd2 : 0xd3 }, 1,
			   (unsigned[]){ 4, 5, 7 }[rnd(r) % 3], (int)(d == 1 ? 0 : d), 0);
		break;
	}
	case 0: case 1:
		modrm_insn(c, p66, w, false, (uint8_t[]){ (uint8_t)((rnd(r) % 8) << 3 | 1) }, 1, s, (int)d, 0);
		break;
	case 2:
		modrm_insn(c, p66, w, false, (uint8_t[]){ 0xff }, 1, (unsigned)(rnd(r) % 2), (int)d, 0);
		break;
	case 3:
		modrm_insn(c, p66, w, false, (uint8_t[]){ rnd(r) & 1 ? 0xc1 : 0xd1 }, 1,
			   (unsigned)(rnd(r) % 8), (int)d, 0);
		if (c->code[c->len - 2] == 0xc1)
			emit1(c, (uint8_t)(rnd(r) % 3 ? 1 + rnd(r) % 40 : 0));
		break;
	case 4:
		modrm_insn(c, p66, w, false, (uint8_t[]){ 0xf7 }, 1, 3 + (unsigned)(rnd(r) % 3), (int)d, 0);
		break;
	case 5:
		modrm_insn(c, p66, w, false, (uint8_t[]){ 0x0f, 0xaf }, 2, d, (int)s, 0);
		break;
	case 6:
		modrm_insn(c, p66, w, false, (uint8_t[]){ 0x39 }, 1, s, -1, rdisp(r));
		break;
	default:
		modrm_insn(c, p66, w, false, (uint8_t[]){ (uint8_t)((rnd(r) % 7) << 3 | 1) }, 1, s, -1,
			   rdisp(r));
		break;
	}
}

/* An instruction between a flag setter and a reader: one whose code
 * leaves the host flags alone, or a load, store or push that saves them. */
static void flag_between(struct rng *r, struct hcase *c, unsigned d, unsigned s)
{
	switch (rnd(r) % 7) {
	case 0:
		modrm_insn(c, false, true, false, (uint8_t[]){ 0x89 }, 1, s, (int)d, 0);
		break;
	case 1:
		modrm_insn(c, false, rnd(r) & 1, false, (uint8_t[]){ 0x0f, 0xb6 }, 2, d, (int)s, 0);
		break;
	case 2:
		emit(c, (uint8_t[]){ (uint8_t)(d & 8 ? 0x41 : 0x40), (uint8_t)(0xb8 + (d & 7)),
				     (uint8_t)rnd(r), 0, 0, (uint8_t)rnd(r) }, 6);
		break;
	case 3:
		emit1(c, (uint8_t)(0x48 | ((d & 8) ? 4 : 0) | ((s & 8) ? 1 : 0)));
		emit(c, (uint8_t[]){ 0x8d, (uint8_t)(0x40 | (d & 7) << 3 | (s & 7)) }, 2);
		if ((s & 7) == 4)
			emit1(c, 0x24);		/* R12: a SIB byte, no index */
		emit1(c, (uint8_t)rnd(r));
		break;
	case 4:
		emit(c, (uint8_t[]){ (uint8_t)(0x48 | (d & 8 ? 1 : 0)), 0x0f, (uint8_t)(0xc8 + (d & 7)) }, 3);
		break;
	case 5:
		modrm_insn(c, false, true, false, (uint8_t[]){ rnd(r) & 1 ? 0x8b : 0x89 }, 1, d, -1, rdisp(r));
		break;
	default:
		emit(c, (uint8_t[]){ 0x41, (uint8_t)(0x50 + (d & 7)), 0x58 }, 3);	/* push; pop rax */
		break;
	}
}

/* An instruction that reads flags: ADC/SBB (registers, immediates, memory),
 * SETcc, CMOVcc, or a Jcc over the next instruction. */
static void flag_reader(struct rng *r, struct hcase *c, unsigned d, unsigned s, bool w, bool p66)
{
	uint8_t cc = (uint8_t)(rnd(r) % 16);

	switch (rnd(r) % 8) {
	case 0: case 1:
		modrm_insn(c, p66, w, false, (uint8_t[]){ (uint8_t)((rnd(r) & 1 ? 0x11 : 0x19) | (rnd(r) % 2) << 1) },
			   1, s, rnd(r) % 4 ? (int)d : -1, rdisp(r));
		break;
	case 2:
		modrm_insn(c, p66, w, false, (uint8_t[]){ 0x83 }, 1, 2 + (unsigned)(rnd(r) % 2),
			   rnd(r) % 4 ? (int)d : -1, rdisp(r));
		emit1(c, (uint8_t)rnd(r));
		break;
	case 3:
		if (w || p66)
			emit1(c, w ? 0x48 : 0x66);
		emit1(c, rnd(r) & 1 ? 0x15 : 0x1d);
		emit(c, (uint8_t[]){ (uint8_t)rnd(r), (uint8_t)rnd(r), 0x80, (uint8_t)rnd(r) }, p66 && !w ? 2 : 4);
		break;
	case 4:
		modrm_insn(c, false, false, true, (uint8_t[]){ 0x0f, (uint8_t)(0x90 | cc) }, 2, 0, (int)d, 0);
		break;
	case 5: case 6:
		modrm_insn(c, p66, w, false, (uint8_t[]){ 0x0f, (uint8_t)(0x40 | cc) }, 2, d,
			   rnd(r) % 3 ? (int)s : -1, rdisp(r));
		break;
	default:
		emit(c, (uint8_t[]){ (uint8_t)(0x70 | cc), 4 }, 2);
		emit(c, (uint8_t[]){ (uint8_t)(d & 8 ? 0x49 : 0x48), 0x83, (uint8_t)(0xc0 | (d & 7)), 1 }, 4);
		break;
	}
}

/* A flag setter, up to three instructions between, and one to three
 * readers: where the translator keeps the flags (tr-flags.c). */
static void flag_chain(struct rng *r, struct hcase *c)
{
	bool w = rnd(r) & 1, p66 = !w && rnd(r) % 4 == 0;
	unsigned n;

	flag_producer(r, c, rreg(r), rreg(r), w, p66);
	for (n = (unsigned)(rnd(r) % 4); n > 0; n--)
		flag_between(r, c, rreg(r), rreg(r));
	for (n = 1 + (unsigned)(rnd(r) % 3); n > 0; n--)
		flag_reader(r, c, rreg(r), rreg(r), rnd(r) & 1, false);
}

/* One random instruction. */
static void rnd_insn(struct rng *r, struct hcase *c)
{
	unsigned k = (unsigned)(rnd(r) % 20), d = rreg(r), s = rreg(r);
	bool w = rnd(r) & 1, p66 = !w && rnd(r) % 4 == 0;
	int mem = rnd(r) % 3 == 0 ? -1 : (int)s;
	uint8_t op[2] = { 0, 0 };

	switch (k) {
	case 0: case 1: case 2:			/* ALU r, r/m and r/m, r (RMW: a handler) */
		op[0] = (uint8_t)((rnd(r) % 8) << 3 | (rnd(r) % 4));
		if (!(op[0] & 1))
			p66 = w = false;
		modrm_insn(c, p66, w, !(op[0] & 1), op, 1, d, mem, rdisp(r));
		break;
	case 3:					/* ALU r/m, imm8 / imm32; AL/rAX, imm; TEST */
		if (rnd(r) % 4 == 0) {
			bool byte = rnd(r) & 1;
			uint8_t o = rnd(r) % 5 == 0 ? 0xa8 : (uint8_t)((rnd(r) % 8) << 3 | 4);

			if (!byte && (w || p66))
				emit1(c, w ? 0x48 : 0x66);
			emit1(c, (uint8_t)(o + !byte));
			emit(c, (uint8_t[]){ (uint8_t)rnd(r), (uint8_t)rnd(r), 0x80, (uint8_t)rnd(r) },
			     byte ? 1 : p66 && !w ? 2 : 4);
			break;
		}
		op[0] = rnd(r) & 1 ? 0x83 : 0x81;
		modrm_insn(c, p66, w, false, op, 1, (unsigned)(rnd(r) % 8),
			   rnd(r) % 4 == 0 ? -1 : (int)d, rdisp(r));
		if (op[0] == 0x83)
			emit1(c, (uint8_t)rnd(r));
		else if (p66)
			emit(c, (uint8_t[]){ (uint8_t)rnd(r), (uint8_t)rnd(r) }, 2);
		else
			emit(c, (uint8_t[]){ (uint8_t)rnd(r), (uint8_t)rnd(r), 0, 0x80 }, 4);
		break;
	case 4:					/* shifts, rotates by imm, 1, CL */
		op[0] = (uint8_t[]){ 0xc1, 0xd1, 0xd3, 0xc0 }[rnd(r) % 4];
		modrm_insn(c, p66 && op[0] != 0xc0, w && op[0] != 0xc0, op[0] == 0xc0, op, 1,
			   (unsigned)(rnd(r) % 8), (int)d, 0);
		if (op[0] == 0xc1 || op[0] == 0xc0)
			emit1(c, (uint8_t)(rnd(r) % 3 ? rnd(r) % 40 : 0));
		break;
	case 5:					/* IMUL, MUL/IMUL rDX:rAX, INC/DEC, TEST */
		if (rnd(r) % 4 == 0) {
			modrm_insn(c, p66, w, false, (uint8_t[]){ 0xf7 }, 1, 4 + (unsigned)(rnd(r) % 2),
				   mem, rdisp(r));
		} else if (rnd(r) & 1) {
			modrm_insn(c, p66, w, false, (uint8_t[]){ 0x0f, 0xaf }, 2, d, mem, rdisp(r));
		} else {
			op[0] = rnd(r) & 1 ? 0xff : 0x85;
			modrm_insn(c, p66, w, false, op, 1,
				   op[0] == 0xff ? (unsigned)(rnd(r) % 2) : s, (int)d, 0);
		}
		break;
	case 6: case 7:				/* MOV load, store, register */
		op[0] = (uint8_t[]){ 0x8b, 0x89, 0x88, 0x8a }[rnd(r) % 4];
		modrm_insn(c, p66 && op[0] < 0x8a, w && op[0] != 0x88 && op[0] != 0x8a,
			   op[0] == 0x88 || op[0] == 0x8a, op, 1, d,
			   rnd(r) % 2 ? -1 : (int)s, rdisp(r));
		break;
	case 8:					/* MOVZX/MOVSX/MOVSXD */
		op[0] = 0x0f;
		op[1] = (uint8_t[]){ 0xb6, 0xb7, 0xbe, 0xbf }[rnd(r) % 4];
		if (rnd(r) % 4 == 0)
			modrm_insn(c, false, true, false, (uint8_t[]){ 0x63 }, 1, d, mem, rdisp(r));
		else
			modrm_insn(c, false, w, false, op, 2, d, mem, rdisp(r));
		break;
	case 9:					/* LEA r, [s + rcx*4 + disp8] */
		emit1(c, (uint8_t)(0x40 | (w ? 8 : 0) | ((d & 8) ? 4 : 0) | ((s & 8) ? 1 : 0)));
		emit(c, (uint8_t[]){ 0x8d, (uint8_t)(0x44 | (d & 7) << 3),
				     (uint8_t)(0x80 | 1 << 3 | (s & 7)), (uint8_t)rnd(r) }, 4);
		break;
	case 10:				/* PUSH r8-r15; POP r */
		emit(c, (uint8_t[]){ 0x41, (uint8_t)(0x50 + (d & 7)) }, 2);
		emit(c, (uint8_t[]){ (uint8_t)(s & 8 ? 0x41 : 0x40), (uint8_t)(0x58 + (s & 7)) }, 2);
		break;
	case 11:				/* MOV r, imm64; MOV [mem], imm32 */
		if (rnd(r) & 1) {
			emit1(c, (uint8_t)(0x48 | ((d & 8) ? 1 : 0)));
			emit1(c, (uint8_t)(0xb8 + (d & 7)));
			for (int i = 0; i < 8; i++)
				emit1(c, (uint8_t)rnd(r));
		} else {
			modrm_insn(c, false, w, false, (uint8_t[]){ 0xc7 }, 1, 0, -1, rdisp(r));
			emit(c, (uint8_t[]){ (uint8_t)rnd(r), 1, 2, (uint8_t)rnd(r) }, 4);
		}
		break;
	case 12:				/* SETcc, CMOVcc, NOT/NEG, BSWAP */
		op[0] = 0x0f;
		op[1] = (uint8_t)((rnd(r) & 1 ? 0x40 : 0x90) | (rnd(r) % 16));
		if (rnd(r) % 3 == 0) {
			modrm_insn(c, p66, w, false, (uint8_t[]){ 0xf7 }, 1, 2 + (unsigned)(rnd(r) % 2),
				   rnd(r) % 2 ? -1 : (int)d, rdisp(r));
		} else if (rnd(r) % 3 == 0) {
			emit(c, (uint8_t[]){ (uint8_t)(0x40 | (w ? 8 : 0) | (d & 8 ? 1 : 0)), 0x0f,
					     (uint8_t)(0xc8 + (d & 7)) }, 3);
		} else {
			modrm_insn(c, false, w && op[1] < 0x90, op[1] >= 0x90, op, 2, d,
				   op[1] < 0x90 ? mem : (int)s, rdisp(r));
		}
		break;
	case 13:				/* CMP/TEST memory with imm8 */
		op[0] = rnd(r) & 1 ? 0x80 : 0xf6;
		modrm_insn(c, false, false, false, op, 1, op[0] == 0x80 ? 7 : 0, -1, rdisp(r));
		emit1(c, (uint8_t)rnd(r));
		break;
	case 16: case 17: case 18:		/* flag setter, between, readers */
		flag_chain(r, c);
		break;
	default:				/* Jcc over the next instruction (a block end) */
		emit(c, (uint8_t[]){ (uint8_t)(0x70 | (rnd(r) % 16)), 4 }, 2);
		emit(c, (uint8_t[]){ (uint8_t)(d & 8 ? 0x49 : 0x48), 0x83, (uint8_t)(0xc0 | (d & 7)), 1 }, 4);
		break;
	}
}

/* Compare native, translated and interpreted runs of one case. */
static void both(const struct hcase *c, const char *what)
{
	cases++;
	if (!harness_compare(cpu_tr, c, what, false) || !harness_compare(cpu_in, c, what, false))
		fails++;
}

static void test_random(void)
{
	static struct hcase c;
	struct rng r = { 0x5eed1234abcdull };

	for (int i = 0; i < 3000; i++) {
		rnd_case(&r, &c);
		while (c.len < 200)
			rnd_insn(&r, &c);
		both(&c, "random sequence");
	}
}

/* A counted loop with a CALL/RET inside: blocks chain, RET uses its table. */
static void test_loops(void)
{
	static struct hcase c;
	struct rng r = { 42 };
	/* mov ecx, 500; l: call f; dec ecx; jnz l; jmp out; f: nop x3; add rax, rcx;
	 * imul rdx, rax; ret; out: */
	static const uint8_t code[] = {
		0xb9, 0xf4, 0x01, 0x00, 0x00,
		0xe8, 0x06, 0x00, 0x00, 0x00,
		0xff, 0xc9,
		0x75, 0xf7,
		0xeb, 0x0b,
		0x90, 0x90, 0x90,
		0x48, 0x01, 0xc8,
		0x48, 0x0f, 0xaf, 0xd0,
		0xc3,
	};

	for (int i = 0; i < 20; i++) {
		rnd_case(&r, &c);
		emit(&c, code, sizeof(code));
		both(&c, "loop with call/ret");
	}
}

/* CALL and JMP through a register and through memory, in a loop: the
 * exits look their targets up among the chained entries. */
static void test_indirect(void)
{
	static struct hcase c;
	struct rng r = { 1234 };
	/* mov ecx, 200; l: lea rdx, [rip + f]; call rdx; mov [rbx + 8], rdx;
	 * call [rbx + 8]; lea rsi, [rip + l2]; jmp rsi; ud2; l2: lea rsi, [rip + l3];
	 * mov [rbx + 16], rsi; jmp [rbx + 16]; ud2; l3: dec ecx; jnz l; jmp out;
	 * f: add rax, rcx; imul rax, rax, 3; xor rax, rdx; ret; out: */
	static const uint8_t code[] = {
		0xb9, 0xc8, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x15, 0x2a, 0x00, 0x00, 0x00,
		0xff, 0xd2, 0x48, 0x89, 0x53, 0x08, 0xff, 0x53, 0x08, 0x48, 0x8d, 0x35,
		0x04, 0x00, 0x00, 0x00, 0xff, 0xe6, 0x0f, 0x0b, 0x48, 0x8d, 0x35, 0x09,
		0x00, 0x00, 0x00, 0x48, 0x89, 0x73, 0x10, 0xff, 0x63, 0x10, 0x0f, 0x0b,
		0xff, 0xc9, 0x75, 0xd1, 0xeb, 0x0b, 0x48, 0x01, 0xc8, 0x48, 0x6b, 0xc0,
		0x03, 0x48, 0x31, 0xd0, 0xc3,
	};

	for (int i = 0; i < 20; i++) {
		rnd_case(&r, &c);
		emit(&c, code, sizeof(code));
		both(&c, "indirect call and jmp");
	}
}

/*
 * Blocks that jump back to their own start with guest registers changed
 * in host registers: an instruction run by its handler (XCHG, CPUID-free
 * and not translated inline) must see every register the last pass
 * changed, a compare fused with the loop's Jcc must branch as the
 * interpreter does, and flags set in one pass (CF for an ADC) must reach
 * the next.
 */
static void test_self_loops(void)
{
	static struct hcase c;
	struct rng r = { 99 };
	/* mov ecx, 37; l: add rax, rcx; add rax, 1; xchg rax, rdx; xchg rax, rdx;
	 * lea rsi, [rsi + rcx*2 + 5]; imul rsi, rax; dec ecx; jnz l;
	 * mov r8d, 40; m: add r9, r8; sub r8d, 3; cmp r8d, 7; ja m;
	 * and r9d, 255; inc r9d; n: xor r10d, r9d; test r10b, 1; sete r11b; sub r9, 1; jnz n */
	static const uint8_t code[] = {
		0xb9, 0x25, 0x00, 0x00, 0x00,
		0x48, 0x01, 0xc8,
		0x48, 0x83, 0xc0, 0x01,
		0x48, 0x92,
		0x48, 0x92,
		0x48, 0x8d, 0x74, 0x4e, 0x05,
		0x48, 0x0f, 0xaf, 0xf0,
		0xff, 0xc9,
		0x75, 0xe8,
		0x41, 0xb8, 0x28, 0x00, 0x00, 0x00,
		0x4d, 0x01, 0xc1,
		0x41, 0x83, 0xe8, 0x03,
		0x41, 0x83, 0xf8, 0x07,
		0x77, 0xf3,
		0x41, 0x81, 0xe1, 0xff, 0x00, 0x00, 0x00,	/* and r9d, 255 */
		0x41, 0xff, 0xc1,				/* inc r9d */
		0x45, 0x31, 0xca,
		0x41, 0xf6, 0xc2, 0x01,
		0x41, 0x0f, 0x94, 0xc3,
		0x49, 0x83, 0xe9, 0x01,
		0x75, 0xef,
		/* the flags carried across the jump back: mov ecx, 40; mov esi, 0x9e3779b9;
		 * a: adc rax, rdx; lea rdx, [rdx + rdx*2 + 7]; add esi, 0x9e3779b9;
		 * mov r8, [rbx + 16]; dec ecx; jnz a; mov esi, 0x90000000; b: seto cl;
		 * adc rdx, rax; lea rdi, [rdi + rcx]; lea rax, [rax + rax*2];
		 * add esi, 0x1234567; jno b */
		0xb9, 0x28, 0x00, 0x00, 0x00,
		0xbe, 0xb9, 0x79, 0x37, 0x9e,
		0x48, 0x11, 0xd0,
		0x48, 0x8d, 0x54, 0x52, 0x07,
		0x81, 0xc6, 0xb9, 0x79, 0x37, 0x9e,
		0x4c, 0x8b, 0x43, 0x10,
		0xff, 0xc9,
		0x75, 0xea,
		0xbe, 0x00, 0x00, 0x00, 0x90,
		0x0f, 0x90, 0xc1,
		0x48, 0x11, 0xc2,
		0x48, 0x8d, 0x3c, 0x0f,
		0x48, 0x8d, 0x04, 0x40,
		0x81, 0xc6, 0x67, 0x45, 0x23, 0x01,
		0x71, 0xea,
		/* entered with OF set: mov eax, 0x7fffffff; add eax, 1; jmp c; c: seto cl;
		 * lea rdi, [rdi + rcx]; add esi, 0x1234567; jno c */
		0xb8, 0xff, 0xff, 0xff, 0x7f,
		0x83, 0xc0, 0x01,
		0xeb, 0x00,
		0x0f, 0x90, 0xc1,
		0x48, 0x8d, 0x3c, 0x0f,
		0x81, 0xc6, 0x67, 0x45, 0x23, 0x01,
		0x71, 0xf1,
	};

	for (int i = 0; i < 20; i++) {
		rnd_case(&r, &c);
		emit(&c, code, sizeof(code));
		both(&c, "self loops with handlers");
	}
}

/* Code that rewrites an instruction further on in its own block. */
static void test_smc(void)
{
	static struct hcase c;
	struct rng r = { 7 };

	for (int i = 0; i < 50; i++) {
		rnd_case(&r, &c);
		/* mov byte [rip + 2], imm8; add eax, imm8 (the imm8 is the byte written) */
		emit(&c, (uint8_t[]){ 0xc6, 0x05, 0x02, 0x00, 0x00, 0x00, (uint8_t)rnd(&r) }, 7);
		emit(&c, (uint8_t[]){ 0x83, 0xc0, 0x11 }, 3);
		emit(&c, (uint8_t[]){ 0x48, 0x01, 0xc1 }, 3);	/* add rcx, rax */
		both(&c, "self-modifying code");
	}
	for (int i = 0; i < 20; i++) {	/* stores into the code's page, not the code */
		rnd_case(&r, &c);
		/* mov [rip + 0x300], rax; add [rip + 0x2f9], rcx; mov rdx, [rip + 0x2f2]; add rdx, rsi */
		emit(&c, (uint8_t[]){ 0x48, 0x89, 0x05, 0x00, 0x03, 0x00, 0x00 }, 7);
		emit(&c, (uint8_t[]){ 0x48, 0x01, 0x0d, 0xf9, 0x02, 0x00, 0x00 }, 7);
		emit(&c, (uint8_t[]){ 0x48, 0x8b, 0x15, 0xf2, 0x02, 0x00, 0x00 }, 7);
		emit(&c, (uint8_t[]){ 0x48, 0x01, 0xf2 }, 3);
		both(&c, "stores into the code's page");
	}
	for (int i = 0; i < 10; i++) {	/* code changed under the next block's chained entry */
		static const uint8_t code[] = {
			0xb9, 0x20, 0x00, 0x00, 0x00,		/* mov ecx, 32 */
			0x88, 0x0d, 0x04, 0x00, 0x00, 0x00,	/* a: mov [rip + 4], cl (b's imm8) */
			0xeb, 0x00,				/* jmp b */
			0x83, 0xc0, 0x00,			/* b: add eax, imm8 */
			0x48, 0x01, 0xc2,			/* add rdx, rax */
			0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
			0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
			0xff, 0xc9,				/* dec ecx */
			0x75, 0xde,				/* jnz a */
		};

		rnd_case(&r, &c);
		emit(&c, code, sizeof(code));
		both(&c, "code changed under a chained entry");
	}
	/* The same for callees of 3 to 7 bytes (their chained entries compare
	 * them in two pieces that may overlap), patched at each immediate byte,
	 * the ones only the second piece covers among them. */
	static const struct { uint8_t n, code[7], at[4]; } small[] = {
		{ 3, { 0xb0, 0, 0xc3 }, { 1 } },				/* mov al, ib; ret */
		{ 4, { 0x83, 0xc0, 0, 0xc3 }, { 2 } },				/* add eax, ib; ret */
		{ 5, { 0xb0, 0, 0xb4, 0, 0xc3 }, { 1, 3 } },			/* mov al; mov ah */
		{ 6, { 0xb8, 0, 0, 0, 0, 0xc3 }, { 1, 2, 3, 4 } },		/* mov eax, id */
		{ 7, { 0xb0, 0, 0xb4, 0, 0x04, 0, 0xc3 }, { 1, 3, 5 } },	/* ...; add al, ib */
	};
	for (unsigned k = 0; k < sizeof(small) / sizeof(small[0]); k++)
		for (unsigned j = 0; j < 4 && small[k].at[j]; j++) {
			/* mov ecx, 32; a: mov [rip + d], cl (f's byte at); call f;
			 * add rdx, rax; dec ecx; jnz a; jmp out; f: ...; out: */
			uint8_t d = (uint8_t)(5 + 3 + 2 + 2 + 2 + small[k].at[j]);
			uint8_t jo = small[k].n;

			rnd_case(&r, &c);
			emit(&c, (uint8_t[]){ 0xb9, 0x20, 0x00, 0x00, 0x00 }, 5);
			emit(&c, (uint8_t[]){ 0x88, 0x0d, d, 0x00, 0x00, 0x00 }, 6);
			emit(&c, (uint8_t[]){ 0xe8, 0x09, 0x00, 0x00, 0x00 }, 5);
			emit(&c, (uint8_t[]){ 0x48, 0x01, 0xc2, 0xff, 0xc9, 0x75, 0xee }, 7);
			emit(&c, (uint8_t[]){ 0xeb, jo }, 2);
			emit(&c, small[k].code, small[k].n);
			both(&c, "a callee of under 8 bytes changed under its chained entry");
		}
}

/* Blocks entered from the run loop (not chained) while cpu_tr runs c,
 * which must also give the native result. */
static uint64_t run_loop_entries(const struct hcase *c, const char *what)
{
	static struct hstate out;
	struct jit_stats a, b;

	both(c, what);
	jit_cpu_stats(cpu_tr, &a);
	harness_guest(cpu_tr, c, &out);
	jit_cpu_stats(cpu_tr, &b);
	return b.blocks - a.blocks;
}

/*
 * Exits stay linked, so a hot loop runs without the run loop:
 *  - a call site whose callee was patched (decoded again: the exit kept
 *    jumping to the old block's entry, which failed its bytes check and
 *    left, 300 times here);
 *  - a block that ends at the block size limit with an instruction run by
 *    its handler (XCHG) that goes on to the next one (it used to leave
 *    unlinked, as after a branching handler).
 */
static void test_links(void)
{
	static struct hcase c;
	struct rng r = { 77 };
	/* mov ecx, 400; l: cmp ecx, 300; jne s; mov byte [rip + 12], 0x22 (f's imm);
	 * s: call f; dec ecx; jnz l; jmp out; f: mov eax, 0x11; add rdx, rax; ret; out: */
	static const uint8_t patched[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00,
		0x81, 0xf9, 0x2c, 0x01, 0x00, 0x00,
		0x75, 0x07,
		0xc6, 0x05, 0x0c, 0x00, 0x00, 0x00, 0x22,
		0xe8, 0x06, 0x00, 0x00, 0x00,
		0xff, 0xc9,
		0x75, 0xe8,
		0xeb, 0x09,
		0xb8, 0x11, 0x00, 0x00, 0x00,
		0x48, 0x01, 0xc2,
		0xc3,
	};
	uint64_t n;

	rnd_case(&r, &c);
	emit(&c, patched, sizeof(patched));
	n = run_loop_entries(&c, "a call site whose callee is patched");
	CHECK(n < 100, "a hot call site stays linked to its patched callee (%llu run-loop entries)",
	      (unsigned long long)n);

	rnd_case(&r, &c);
	emit(&c, (uint8_t[]){ 0xb9, 0x90, 0x01, 0x00, 0x00 }, 5);	/* mov ecx, 400 */
	for (int i = 0; i < 63; i++)					/* l: inc eax x 63 */
		emit(&c, (uint8_t[]){ 0xff, 0xc0 }, 2);
	emit(&c, (uint8_t[]){ 0x48, 0x92 }, 2);				/* xchg rax, rdx */
	emit(&c, (uint8_t[]){ 0xff, 0xc9 }, 2);				/* dec ecx */
	emit(&c, (uint8_t[]){ 0x0f, 0x85, 0x78, 0xff, 0xff, 0xff }, 6);	/* jnz l */
	n = run_loop_entries(&c, "a full block ending in a handler");
	CHECK(n < 100, "a full block ending in a handler's instruction stays linked "
	      "(%llu run-loop entries)", (unsigned long long)n);
}

/* Blocks decoded by cpu_tr while both() runs c. */
static uint64_t decoded(const struct hcase *c, const char *what)
{
	struct jit_stats a, b;

	jit_cpu_stats(cpu_tr, &a);
	both(c, what);
	jit_cpu_stats(cpu_tr, &b);
	return b.decodes - a.decodes;
}

/*
 * A Jcc inside a block of 64-bit code does not end it: the path not taken
 * goes on in the same block, a Jcc taken leaves through a side exit that
 * is linked as the block's other exits are (one exit slot for each).
 *  - A loop whose body holds two Jcc never taken is one block, and its
 *    start one more: at most 3 blocks decoded with the UD2 at the end (5
 *    when every Jcc ended its block);
 *  - a JMP forward a few bytes goes on in the block too (the bytes it
 *    jumps over join the block's): an if/else in a loop is 3 blocks (4
 *    when the JMP ended its block, or when its translation left there);
 *  - a loop whose body leaves through its second Jcc every other time,
 *    through its third every fourth time and through its first at the end
 *    needs its three side exits linked: few entries from the run loop (one
 *    each of 100 times when the block had only the two slots of a block's
 *    end).
 */
static void test_side_exits(void)
{
	static struct hcase c;
	struct rng r = { 0x51de };
	/* mov ecx, 300; l: add eax, ecx; cmp ecx, 1000; jae out; add edx, eax;
	 * test ecx, 0x8000; jnz out; xor esi, edx; dec ecx; jnz l; out: */
	static const uint8_t not_taken[] = {
		0xb9, 0x2c, 0x01, 0x00, 0x00,
		0x01, 0xc8,
		0x81, 0xf9, 0xe8, 0x03, 0x00, 0x00,
		0x73, 0x14,
		0x01, 0xc2,
		0xf7, 0xc1, 0x00, 0x80, 0x00, 0x00,
		0x75, 0x0a,
		0x31, 0xd6,
		0xff, 0xc9,
		0x0f, 0x85, 0xe2, 0xff, 0xff, 0xff,
	};
	/* mov ecx, 400; l: dec ecx; jz out; test ecx, 1; jnz odd; test ecx, 2;
	 * jnz two; add eax, 3; jmp l; odd: add edx, 5; jmp l; two: add esi, 7;
	 * jmp l; out: */
	static const uint8_t taken[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00,
		0xff, 0xc9,
		0x74, 0x1f,
		0xf7, 0xc1, 0x01, 0x00, 0x00, 0x00,
		0x75, 0x0d,
		0xf7, 0xc1, 0x02, 0x00, 0x00, 0x00,
		0x75, 0x0a,
		0x83, 0xc0, 0x03,
		0xeb, 0xe7,
		0x83, 0xc2, 0x05,
		0xeb, 0xe2,
		0x83, 0xc6, 0x07,
		0xeb, 0xdd,
	};
	/* mov ecx, 400; l: test cl, 1; jz else; add eax, 3; jmp join;
	 * else: add edx, 5; join: dec ecx; jnz l */
	static const uint8_t join[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00,
		0xf6, 0xc1, 0x01,
		0x74, 0x05,
		0x83, 0xc0, 0x03,
		0xeb, 0x03,
		0x83, 0xc2, 0x05,
		0xff, 0xc9,
		0x75, 0xef,
	};
	uint64_t n;

	for (int i = 0; i < 20; i++) {
		rnd_case(&r, &c);
		emit(&c, join, sizeof(join));
		n = decoded(&c, "an if/else joined by a JMP forward");
		if (i == 0)
			CHECK(n <= 3, "a JMP forward to the join of an if/else goes on in its block "
			      "(%llu decoded)", (unsigned long long)n);

		rnd_case(&r, &c);
		emit(&c, not_taken, sizeof(not_taken));
		n = decoded(&c, "a loop with Jcc inside its block");
		if (i == 0)
			CHECK(n <= 3, "a loop body with two Jcc not taken is one block (%llu decoded)",
			      (unsigned long long)n);

		rnd_case(&r, &c);
		emit(&c, taken, sizeof(taken));
		n = run_loop_entries(&c, "side exits taken");
		if (i == 0)
			CHECK(n < 50, "side exits stay linked (%llu run-loop entries)", (unsigned long long)n);
	}
}

/*
 * A callee patched while hot, in its last instruction, at every size of
 * block: the chained entry compares the code bytes with immediates up to
 * 64 of them, with a copy beyond.  The loop calls f 400 times and patches
 * the immediate of f's last ADD before the 100th call from its end.
 */
static void test_patched_sizes(void)
{
	static struct hcase c;
	struct rng r = { 0x9a7c };

	for (unsigned k = 1; k <= 19; k++) {		/* f: k ADDs of 6 bytes, 9 more (jmp out: rel8) */
		unsigned f, patch;
		int32_t d;

		rnd_case(&r, &c);
		/* mov ecx, 400; l: cmp ecx, 300; jne s; mov byte [rip + d], 0x22;
		 * s: call f; dec ecx; jnz l; jmp out */
		emit(&c, (uint8_t[]){ 0xb9, 0x90, 0x01, 0x00, 0x00 }, 5);
		emit(&c, (uint8_t[]){ 0x81, 0xf9, 0x2c, 0x01, 0x00, 0x00, 0x75, 0x07 }, 8);
		f = 13 + 7 + 5 + 2 + 2 + 2;
		patch = f + 6 * (k - 1) + 2;
		d = (int32_t)(patch - (13 + 7));
		emit(&c, (uint8_t[]){ 0xc6, 0x05 }, 2);
		emit(&c, &d, 4);
		emit1(&c, 0x22);
		emit(&c, (uint8_t[]){ 0xe8, 0x06, 0x00, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xe8 }, 9);
		emit(&c, (uint8_t[]){ 0xeb, (uint8_t)(6 * k + 9) }, 2);
		for (unsigned i = 0; i < k; i++)	/* f: add rax, 0x11 */
			emit(&c, (uint8_t[]){ 0x48, 0x05, 0x11, 0x00, 0x00, 0x00 }, 6);
		emit(&c, (uint8_t[]){ 0x48, 0x01, 0xc2, 0x48, 0x01, 0xc6, 0x90 }, 7);	/* add rdx, rax; add rsi, rax; nop */
		emit(&c, (uint8_t[]){ 0x90, 0xc3 }, 2);
		both(&c, "a hot callee patched in its last instruction");
	}
}

/* A vCPU that translates every block at once, as cpu_tr. */
static struct jit_cpu *new_tr_cpu(void)
{
	struct jit_cpu *cpu;

	unsetenv("VM_JIT_TRANSLATE");
	cpu = jit_cpu_new(&h_bus, 0);
	setenv("VM_JIT_TRANSLATE", "off", 1);
	if (!cpu)
		abort();
	harness_setup(cpu);
	return cpu;
}

/*
 * Run fn with cpu_tr a new vCPU on a new jit_ram over the same memory:
 * pages no earlier test made mixed (track.c), so that its translated
 * code skips the byte compare, and only the tracking of writes keeps it
 * exact.  Returns the code pages written meanwhile.
 */
static uint64_t with_fresh_ram(void (*fn)(void))
{
	struct jit_cpu *keep = cpu_tr, *cpu = new_tr_cpu();
	struct jit_ram *keep_ram = h_jram, *ram = jit_ram_new(h_ram, GUEST_RAM);
	struct jit_stats s;

	if (!ram)
		abort();
	jit_cpu_set_ram(cpu, ram);
	cpu_tr = cpu;
	h_jram = ram;
	fn();
	jit_cpu_stats(cpu, &s);
	cpu_tr = keep;
	h_jram = keep_ram;
	jit_cpu_free(cpu);
	jit_ram_free(ram);
	return s.code_writes;
}

/*
 * A loop that stores beside its callee, in the callee's page: each store
 * makes the callee's translation stale (track.c), and each entry finds
 * its bytes unchanged; after a few such alarms the page is left
 * untracked and the callee compares its bytes instead, so the stores go
 * at full speed (400 rounds would make 400 or more code writes).
 */
static void test_mixed_page(void)
{
	static struct hcase c;
	struct rng r = { 0x3a11 };
	struct jit_stats a, b;

	rnd_case(&r, &c);
	/* 0: mov ecx, 400; 5: l: mov [rip + 0x7f5], ecx (CODE + 0x800); 11: call f;
	 * 16: dec ecx; 18: jnz l; 20: jmp out; 22: f: add rax, 1; 26: ret; 27: out */
	emit(&c, (uint8_t[]){ 0xb9, 0x90, 0x01, 0x00, 0x00, 0x89, 0x0d, 0xf5, 0x07, 0x00, 0x00 }, 11);
	emit(&c, (uint8_t[]){ 0xe8, 0x06, 0x00, 0x00, 0x00, 0xff, 0xc9, 0x75, 0xf1, 0xeb, 0x05 }, 11);
	emit(&c, (uint8_t[]){ 0x48, 0x83, 0xc0, 0x01, 0xc3 }, 5);
	jit_cpu_stats(cpu_tr, &a);
	both(&c, "a loop storing beside its callee");
	jit_cpu_stats(cpu_tr, &b);
	CHECK(b.code_writes - a.code_writes < 100, "a loop of 400 stores beside its callee: %llu code writes",
	      (unsigned long long)(b.code_writes - a.code_writes));
}

/* Self-modifying code with tracked pages, then with the compare (a vCPU
 * on no jit_ram, as each of several is). */
static void test_tracked(void)
{
	struct jit_cpu *keep = cpu_tr;
	uint64_t n;

	fails = cases = 0;
	n = with_fresh_ram(test_patched_sizes);
	CHECK(fails == 0 && n >= 19, "tracked: hot callees patched: %d cases, %d differ, %llu code writes",
	      cases, fails, (unsigned long long)n);
	fails = cases = 0;
	with_fresh_ram(test_smc);
	CHECK(fails == 0, "tracked: self-modifying code: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	with_fresh_ram(test_mixed_page);
	CHECK(fails == 0, "tracked: stores beside a callee: %d cases, %d differ", cases, fails);
	cpu_tr = new_tr_cpu();
	fails = cases = 0;
	test_patched_sizes();
	test_smc();
	CHECK(fails == 0, "compared: self-modifying code, patched callees: %d cases, %d differ", cases,
	      fails);
	jit_cpu_free(cpu_tr);
	cpu_tr = keep;
}

/* Run c on cpu_tr alone (code the host cannot run as the guest does: IF
 * clear, CPL 0, another mapping): true when it ran to its end; *d: the
 * run-loop entries (blocks) and page walks (tlb_fills) it took. */
static bool guest_only(const struct hcase *c, struct hstate *out, struct jit_stats *d)
{
	struct jit_stats a, b;
	bool ok;

	jit_cpu_stats(cpu_tr, &a);
	ok = harness_guest(cpu_tr, c, out) >= 0;
	jit_cpu_stats(cpu_tr, &b);
	d->blocks = b.blocks - a.blocks;
	d->tlb_fills = b.tlb_fills - a.tlb_fills;
	d->rechecks = b.rechecks - a.rechecks;
	return ok;
}

/* c, a loop counting gpr[reg] down to 0, on cpu_tr alone: it runs to its
 * end (with RFLAGS.IF set when if_set) and comes back to the run loop
 * fewer than 100 times (once a round or more, before the change that
 * keeps it linked). */
static void check_linked(const struct hcase *c, unsigned reg, bool if_set, const char *what,
			 struct hstate *out)
{
	struct jit_stats d;

	CHECK(guest_only(c, out, &d) && (uint32_t)out->gpr[reg] == 0 &&
	      (!if_set || (out->rflags & 0x200)), "%s runs to its end", what);
	CHECK(d.blocks < 100, "%s: %llu run-loop entries", what, (unsigned long long)d.blocks);
}

/*
 * Two pages 16 MiB apart take the same entry of the TLB's 4096: a loop
 * reading both (as a system call reads its kernel stack and the caller's
 * buffer) walked the page tables for every read, until a fill came to
 * keep the entry it pushes out aside (the TLB's victims) and to take it
 * back from there.  The second page is CODE's 2 MiB region mapped again,
 * for the guest only.
 */
static void test_victims(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 91 };
	uint64_t *pd = (uint64_t *)(void *)(h_ram + 0x3000);
	struct jit_stats d;
	/* mov ecx, 400; l: mov eax, [rsi]; add eax, [rdi]; dec ecx; jnz l */
	static const uint8_t loop[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00, 0x8b, 0x06, 0x03, 0x07, 0xff, 0xc9, 0x75, 0xf8,
	};

	pd[(CODE >> 21) + 8] = GUEST_MAP_GPA | 0x87;
	rnd_case(&r, &c);
	c.in.gpr[6] = DATA;			/* rsi */
	c.in.gpr[7] = DATA + (16u << 20);	/* rdi: the same index */
	emit(&c, loop, sizeof(loop));
	CHECK(guest_only(&c, &out, &d) && (uint32_t)out.gpr[1] == 0,
	      "the loop over two pages of one TLB index runs to its end");
	pd[(CODE >> 21) + 8] = 0;
	CHECK(d.tlb_fills < 50, "two pages of one TLB index: %llu page walks in 800 reads",
	      (unsigned long long)d.tlb_fills);
}

/*
 * The TLB holds 4096 pages: a loop reading 2048 pages twice (CODE's
 * 2 MiB region mapped 4 times over, for the guest only) walks the page
 * tables for each page once.  With 512 entries every read of the second
 * round walked again (a kernel streaming a file through its page cache
 * touches that many pages of its direct map, struct pages and buffers).
 */
static void test_tlb_capacity(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 92 };
	uint64_t *pd = (uint64_t *)(void *)(h_ram + 0x3000);
	struct jit_stats d;
	const uint64_t from = CODE + (2u << 20);
	/* mov edx, 2; o: mov rsi, from; mov ecx, 2048; i: mov eax, [rsi];
	 * add rsi, 4096; dec ecx; jnz i; dec edx; jnz o */
	uint8_t loop[] = {
		0xba, 0x02, 0x00, 0x00, 0x00, 0x48, 0xbe, 0, 0, 0, 0, 0, 0, 0, 0,
		0xb9, 0x00, 0x08, 0x00, 0x00, 0x8b, 0x06, 0x48, 0x81, 0xc6, 0x00, 0x10, 0x00, 0x00,
		0xff, 0xc9, 0x75, 0xf3, 0xff, 0xca, 0x75, 0xe0,
	};

	memcpy(loop + 7, &from, 8);
	for (int k = 1; k <= 4; k++)
		pd[(CODE >> 21) + k] = GUEST_MAP_GPA | 0x87;
	rnd_case(&r, &c);
	emit(&c, loop, sizeof(loop));
	CHECK(guest_only(&c, &out, &d) && (uint32_t)out.gpr[2] == 0,
	      "the loop over 2048 pages runs to its end");
	for (int k = 1; k <= 4; k++)
		pd[(CODE >> 21) + k] = 0;
	CHECK(d.tlb_fills < 2300, "2048 pages read twice: %llu page walks (2048 the first time)",
	      (unsigned long long)d.tlb_fills);
}

/*
 * An interrupt pending while RFLAGS.IF is clear (a device's, raised while
 * the kernel runs with interrupts off) waits for IF: chained code goes on
 * meanwhile.  Every chained entry and every loop back to a block's start
 * used to return to the run loop, 400 times each here.
 */
static void test_irq_masked(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 93 };
	/* mov ecx, 400; l: call f; dec ecx; jnz l; jmp out; f: inc eax; ret; out: */
	static const uint8_t calls[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00, 0xe8, 0x06, 0x00, 0x00, 0x00, 0xff, 0xc9,
		0x75, 0xf7, 0xeb, 0x03, 0xff, 0xc0, 0xc3,
	};
	/* mov ecx, 400; l: inc eax; dec ecx; jnz l */
	static const uint8_t self[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00, 0xff, 0xc0, 0xff, 0xc9, 0x75, 0xfa,
	};
	const struct { const uint8_t *code; unsigned len; const char *what; } cases[] = {
		{ calls, sizeof(calls), "a loop calling a function (chained entries, RET) "
					"with IF clear and an interrupt pending" },
		{ self, sizeof(self), "a loop back to its block's start with IF clear and an "
				      "interrupt pending" },
	};

	jit_cpu_irq(cpu_tr, true);
	for (unsigned i = 0; i < 2; i++) {
		rnd_case(&r, &c);
		c.in.rflags &= ~0x200ull;	/* IF clear */
		emit(&c, cases[i].code, cases[i].len);
		check_linked(&c, 1, false, cases[i].what, &out);
	}
	jit_cpu_irq(cpu_tr, false);
}

/*
 * STI goes on with the instruction in its shadow when that one continues
 * a block, and the block leaves linked: a loop enabling interrupts (as
 * every system call does) went back to the run loop at each STI.  POPF
 * (spin_unlock_irqrestore's) leaves its block linked too.
 */
static void test_sti_popf(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 95 };
	/* mov ecx, 400; l: cli; sti; inc eax; dec ecx; jnz l */
	static const uint8_t sti[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00, 0xfa, 0xfb, 0xff, 0xc0, 0xff, 0xc9, 0x75, 0xf8,
	};
	/* mov ecx, 400; l: pushfq; popfq; inc eax; dec ecx; jnz l */
	static const uint8_t popf[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00, 0x9c, 0x9d, 0xff, 0xc0, 0xff, 0xc9, 0x75, 0xf8,
	};

	rnd_case(&r, &c);
	c.in.rflags |= 0x3000;		/* IOPL 3: CLI and STI at CPL 3 */
	emit(&c, sti, sizeof(sti));
	check_linked(&c, 1, true, "a loop of CLI; STI (IF set at its end)", &out);
	rnd_case(&r, &c);
	emit(&c, popf, sizeof(popf));
	check_linked(&c, 1, false, "a loop of PUSHF; POPF", &out);
}

/*
 * SYSCALL and SYSRET (REX.W) go straight on into the translated block at
 * their target, through the table of chained entries: a loop of system
 * calls came back to the run loop twice per call.
 */
static void test_syscall_chain(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 97 };
	uint64_t efer, star, lstar, mask;
	/* mov r12d, 200; l: syscall; dec r12d; jnz l; jmp out; k: o64 sysret; out: */
	static const uint8_t loop[] = {
		0x41, 0xbc, 0xc8, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x41, 0xff, 0xcc, 0x75, 0xf9,
		0xeb, 0x03, 0x48, 0x0f, 0x07,
	};

	jit_cpu_get_msr(cpu_tr, 0xc0000080, &efer);
	jit_cpu_get_msr(cpu_tr, 0xc0000081, &star);
	jit_cpu_get_msr(cpu_tr, 0xc0000082, &lstar);
	jit_cpu_get_msr(cpu_tr, 0xc0000084, &mask);
	jit_cpu_set_msr(cpu_tr, 0xc0000080, efer | 1);			/* SCE */
	jit_cpu_set_msr(cpu_tr, 0xc0000081, 0x0023001000000000ull);	/* SYSRET 0x23, SYSCALL 0x10 */
	jit_cpu_set_msr(cpu_tr, 0xc0000082, CODE + 15);
	jit_cpu_set_msr(cpu_tr, 0xc0000084, 0);
	rnd_case(&r, &c);
	emit(&c, loop, sizeof(loop));
	check_linked(&c, 12, false, "200 SYSCALLs and SYSRETs", &out);
	CHECK(out.gpr[1] == CODE + 8, "the last SYSCALL left its return address in RCX");
	jit_cpu_set_msr(cpu_tr, 0xc0000080, efer);
	jit_cpu_set_msr(cpu_tr, 0xc0000081, star);
	jit_cpu_set_msr(cpu_tr, 0xc0000082, lstar);
	jit_cpu_set_msr(cpu_tr, 0xc0000084, mask);
}

/*
 * A CR3 load, and an INVLPG of a page beside code on a non-global page,
 * turn off the chained entries into blocks on non-global pages alone:
 * those into a function on a global page stay good (the kernel's, when a
 * program switches address space or flushes a page of its data).  Both
 * used to send every chained entry through jit_chain_recheck(): 9 per
 * round here, where it is 4 now (those on the non-global page).  The
 * SYSCALL, SYSRET and RET into those look their target up in the table
 * of chained entries, whose entries once went stale with each flush:
 * they went through the run loop (5 or 4 run-loop entries per round,
 * now 2 or 1).
 */
static void test_flush_keeps_global(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 99 };
	uint64_t *pd = (uint64_t *)(void *)(h_ram + 0x3000);
	uint64_t efer;
	struct jit_stats d;
	/*
	 *  0: mov r12d, 200; l: syscall; call g + 2 MiB (global); dec r12d; jnz l; jmp out
	 * 20: k: mov rax, cr3; mov cr3, rax (or invlpg [rsi]; nop x 3); o64 sysret
	 * 32: g: jmp $+2 x 4; ret
	 * 42: out:
	 */
	static uint8_t loop[42] = {
		0x41, 0xbc, 0xc8, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xe8, 0x13, 0x00, 0x20, 0x00,
		0x41, 0xff, 0xcc, 0x75, 0xf4, 0xeb, 0x16,
		0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8, 0x48, 0x0f, 0x07, 0x90, 0x90, 0x90,
		0xeb, 0x00, 0xeb, 0x00, 0xeb, 0x00, 0xeb, 0x00, 0xc3, 0x90,
	};
	static const uint8_t invlpg[6] = { 0x0f, 0x01, 0x3e, 0x90, 0x90, 0x90 };
	static const uint8_t cr3[6] = { 0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8 };

	pd[(CODE >> 21) + 1] = GUEST_MAP_GPA | 0x187;	/* CODE again, global */
	for (int i = 0; i < 2; i++) {		/* (the harness resets the MSRs after a run) */
		jit_cpu_get_msr(cpu_tr, 0xc0000080, &efer);
		jit_cpu_set_msr(cpu_tr, 0xc0000080, efer | 1);			/* SCE */
		jit_cpu_set_msr(cpu_tr, 0xc0000081, 0x0023001000000000ull);	/* SYSRET 0x23 */
		jit_cpu_set_msr(cpu_tr, 0xc0000082, CODE + 20);
		jit_cpu_set_msr(cpu_tr, 0xc0000084, 0);
		memcpy(loop + 20, i ? invlpg : cr3, 6);
		rnd_case(&r, &c);
		c.in.gpr[6] = DATA + 0x1000;		/* rsi: a data page beside the code */
		emit(&c, loop, sizeof(loop));
		CHECK(guest_only(&c, &out, &d) && (uint32_t)out.gpr[12] == 0,
		      "200 rounds of %s and a call of a function on a global page run to their end",
		      i ? "INVLPG" : "a CR3 load");
		CHECK(d.rechecks < 200 * 6, "%s: %llu chained entries rechecked in 200 rounds",
		      i ? "INVLPG beside non-global code" : "CR3 loads",
		      (unsigned long long)d.rechecks);
		CHECK(d.blocks < 200 * 3, "%s: %llu run-loop entries in 200 rounds",
		      i ? "INVLPG beside non-global code" : "CR3 loads", (unsigned long long)d.blocks);
	}
	pd[(CODE >> 21) + 1] = 0;
	harness_setup(cpu_tr);
}

/*
 * Two return addresses 0x1001 apart (CODE + 0x10 and CODE + 0x1011) took
 * the same entry of RET's table of chained entries when it had 4096: each
 * RET pushed the other's entry out and went through the run loop, twice
 * a round (a kernel path runs through thousands of call sites).
 */
static void test_ret_table(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 101 };
	/*
	 *  0: mov ecx, 200; nop x 6
	 * 11: l: call f; jmp far		(returns to CODE + 0x10)
	 * 21: back: dec ecx; jnz l; jmp out
	 * 64: f: inc eax; ret
	 * 67: out:
	 */
	static const uint8_t loop[] = {
		0xb9, 0xc8, 0x00, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
		0xe8, 0x30, 0x00, 0x00, 0x00, 0xe9, 0xf7, 0x0f, 0x00, 0x00,
		0xff, 0xc9, 0x75, 0xf2, 0xeb, 0x28,
	};
	/* at CODE + 0x100c: call f; jmp back	(returns to CODE + 0x1011) */
	static const uint8_t far[] = {
		0xe8, 0x2f, 0xf0, 0xff, 0xff, 0xe9, 0xff, 0xef, 0xff, 0xff,
	};
	static const uint8_t f[] = { 0xff, 0xc0, 0xc3 };

	rnd_case(&r, &c);
	emit(&c, loop, sizeof(loop));
	while (c.len < 0x40)
		emit1(&c, 0x90);
	emit(&c, f, sizeof(f));
	guest_write(CODE + 0x100c, far, sizeof(far));
	check_linked(&c, 1, false, "a loop of two calls whose return addresses are 0x1001 apart",
		     &out);
	guest_write(CODE + 0x100c, (uint8_t[sizeof(far)]){ 0 }, sizeof(far));
}

/* Run code (len bytes) at CODE on cpu from RAX = rax, RBX = rbx, RSP =
 * STACK_TOP, RFLAGS = rflags and the other registers 0, for up to 4000
 * instructions: why it stopped, its registers in *out.  The vCPU gets the
 * harness's state again after (memory stays as the code left it). */
static enum jit_exit run_code(struct jit_cpu *cpu, const uint8_t *code, size_t len, uint64_t rax,
			      uint64_t rbx, uint64_t rflags, struct jit_regs *out)
{
	struct jit_regs st = { .rip = CODE, .rflags = rflags };
	enum jit_exit e = JIT_EXIT_BUDGET;

	guest_write(CODE, code, len);
	st.gpr[0] = rax;
	st.gpr[3] = rbx;
	st.gpr[4] = STACK_TOP;
	jit_cpu_set_regs(cpu, &st);
	for (int n = 0; n < 4 && e == JIT_EXIT_BUDGET; n++)
		e = jit_cpu_run(cpu, 1000);
	jit_cpu_get_regs(cpu, out);
	harness_setup(cpu);
	return e;
}

/* A page fault inside a translated block: RIP at the faulting load, the
 * flags of the ALU instruction before it, registers untouched after it. */
static void test_fault(void)
{
	static const uint8_t code[] = {
		0x48, 0x01, 0xd8,		/* add rax, rbx */
		0x48, 0x01, 0xd8,		/* add rax, rbx (RAX cached, changed) */
		0x48, 0x8b, 0x0c, 0x25, 0x00, 0x00, 0x00, 0x30,	/* mov rcx, [0x30000000] */
		0x48, 0x83, 0xc2, 0x01,		/* add rdx, 1 */
		0x48, 0x01, 0xd2,		/* add rdx, rdx */
	};
	struct jit_cpu *cpus[2] = { cpu_tr, cpu_in };
	struct jit_regs out[2];

	for (int k = 0; k < 2; k++) {
		enum jit_exit e = run_code(cpus[k], code, sizeof(code), 0x7fffffffffffffffull, 1, 0x202,
					   &out[k]);

		CHECK(e == JIT_EXIT_SHUTDOWN && out[k].rip == CODE + 6 && out[k].gpr[0] == 0x8000000000000001ull,
		      "%s: the fault stops at the load (rip %#llx)", k ? "interpreter" : "translator",
		      (unsigned long long)out[k].rip);
	}
	CHECK(!memcmp(out[0].gpr, out[1].gpr, sizeof(out[0].gpr)) &&
	      (out[0].rflags & FLAG_MASK) == (out[1].rflags & FLAG_MASK) &&
	      (out[0].rflags & 0x880) == 0x80,
	      "fault state: translator and interpreter agree (flags %#llx / %#llx)",
	      (unsigned long long)out[0].rflags, (unsigned long long)out[1].rflags);
}

/*
 * DIV of rDX:rAX by a register or memory (32 and 64 bits), translated on
 * the host, with a flag reader after it; the dividend's high half is
 * below the divisor (no #DE natively).  Then a zero divisor: #DE at the
 * DIV (no IDT here: a shutdown), the state before it committed, as in the
 * interpreter.
 */
static void test_div(void)
{
	static struct hcase c;
	static const uint8_t code[] = {
		0x48, 0x01, 0xd8,		/* add rax, rbx */
		0x48, 0x01, 0xd8,		/* add rax, rbx (RAX cached, changed) */
		0x31, 0xc9,			/* xor ecx, ecx */
		0x48, 0xf7, 0xf1,		/* div rcx */
		0x48, 0x83, 0xc2, 0x01,		/* add rdx, 1 */
	};
	struct jit_cpu *cpus[2] = { cpu_tr, cpu_in };
	struct jit_regs out[2];
	struct rng r = { 0xd1d1 };

	for (int i = 0; i < 200; i++) {
		bool w = i & 1, mem = i & 2;
		uint64_t d = rnd(&r) | 1ull << (w ? 63 - rnd(&r) % 40 : 31 - rnd(&r) % 20);
		uint64_t hi = rnd(&r) % (w ? d : (uint32_t)d);
		unsigned dv = (unsigned[]){ 1, 6, 9, 14, 0 }[rnd(&r) % 5];	/* divisor's register */

		rnd_case(&r, &c);
		if (dv == 0)
			hi %= w ? rnd(&r) | 1 : (uint32_t)(rnd(&r) | 1);	/* below rAX */
		emit(&c, (uint8_t[]){ (uint8_t)(dv & 8 ? 0x49 : 0x48), (uint8_t)(0xb8 + (dv & 7)) }, 2);
		emit(&c, &d, 8);			/* mov divisor, d */
		emit(&c, (uint8_t[]){ 0x48, 0xba }, 2);
		emit(&c, &hi, 8);			/* mov rdx, hi */
		if (dv == 0)	/* rAX divides itself: hi below it (rAX's high bits random) */
			emit(&c, (uint8_t[]){ 0x48, 0x0d, 0x00, 0x00, 0x00, 0x80 }, 6);	/* or rax, imm */
		if (mem) {
			int disp = rdisp(&r);

			modrm_insn(&c, false, true, false, (uint8_t[]){ 0x89 }, 1, dv, -1, disp);
			modrm_insn(&c, false, w, false, (uint8_t[]){ 0xf7 }, 1, 6, -1, disp);
		} else {
			modrm_insn(&c, false, w, false, (uint8_t[]){ 0xf7 }, 1, 6, (int)dv, 0);
		}
		flag_reader(&r, &c, rreg(&r), rreg(&r), rnd(&r) & 1, false);
		both(&c, "DIV");
	}

	for (int k = 0; k < 2; k++) {
		enum jit_exit e = run_code(cpus[k], code, sizeof(code), 0x7fffffffffffffffull, 1, 0x202,
					   &out[k]);

		CHECK(e == JIT_EXIT_SHUTDOWN && out[k].rip == CODE + 8 &&
		      out[k].gpr[0] == 0x8000000000000001ull && out[k].gpr[2] == 0,
		      "%s: DIV by 0 faults at the DIV, the state before it committed (rip %#llx)",
		      k ? "interpreter" : "translator", (unsigned long long)out[k].rip);
	}
	CHECK(!memcmp(out[0].gpr, out[1].gpr, sizeof(out[0].gpr)) &&
	      (out[0].rflags & FLAG_MASK) == (out[1].rflags & FLAG_MASK),
	      "#DE state: translator and interpreter agree");
}

/*
 * Integer SSE between XMM registers is translated (tr-sse.c): with
 * CR0.TS set (#NM), CR0.EM set or CR4.OSFXSR clear (#UD) the first SSE
 * instruction of a block faults (no IDT here: a shutdown) at itself, the
 * state before it committed, as in the interpreter; with none of them,
 * the code runs on.  A translated PADDD that skipped the checks ran on.
 */
static void test_sse_checks(void)
{
	static const uint8_t code[] = {
		0x48, 0x01, 0xd8,		/* add rax, rbx */
		0x66, 0x0f, 0xfe, 0xc1,		/* paddd xmm0, xmm1 */
		0x66, 0x0f, 0xef, 0xd0,		/* pxor xmm2, xmm0 */
		0x48, 0x83, 0xc2, 0x01,		/* add rdx, 1 */
		0xeb, 0xfe,			/* jmp $ */
	};
	static const struct { uint64_t cr0_set, cr4_clear; const char *what; } conds[] = {
		{ 0x8, 0, "CR0.TS (#NM)" }, { 0x4, 0, "CR0.EM (#UD)" },
		{ 0, 0x200, "CR4.OSFXSR clear (#UD)" }, { 0, 0, "none" },
	};
	struct jit_cpu *cpus[2] = { cpu_tr, cpu_in };

	for (unsigned c = 0; c < 4; c++) {
		struct jit_regs out[2];

		for (int k = 0; k < 2; k++) {
			struct jit_sregs sr;
			enum jit_exit e;

			jit_cpu_get_sregs(cpus[k], &sr);
			sr.cr0 |= conds[c].cr0_set;
			sr.cr4 &= ~conds[c].cr4_clear;
			jit_cpu_set_sregs(cpus[k], &sr);
			e = run_code(cpus[k], code, sizeof(code), 5, 1, 0x2, &out[k]);
			if (conds[c].cr0_set || conds[c].cr4_clear)
				CHECK(e == JIT_EXIT_SHUTDOWN && out[k].rip == CODE + 3 && out[k].gpr[0] == 6 &&
				      out[k].gpr[2] == 0,
				      "%s: with %s PADDD faults at itself, the ADD before it done (rip %#llx)",
				      k ? "interpreter" : "translator", conds[c].what,
				      (unsigned long long)out[k].rip);
			else
				CHECK(e == JIT_EXIT_BUDGET && out[k].rip == CODE + 15 && out[k].gpr[2] == 1,
				      "%s: with SSE enabled the code runs on to its loop",
				      k ? "interpreter" : "translator");
		}
		CHECK(!memcmp(out[0].gpr, out[1].gpr, sizeof(out[0].gpr)) && out[0].rip == out[1].rip,
		      "%s: translator and interpreter agree", conds[c].what);
	}
}

/*
 * SSE with a 16-byte memory operand (tr-sse.c, jit_tr_mem_load16(),
 * jit_tr_mem_store16_last()): PADDD, PSHUFB and MOVDQA from aligned
 * operands, MOVDQU and MOVUPS from unaligned ones, one across a page (the
 * slow path's two halves), PCMPEQB and PMOVMSKB into a general register;
 * MOVAPS, MOVDQU, MOVDQA and MOVUPS stores, one across a page; moves
 * between registers; XMM registers and memory compared with native runs.
 * A MOVDQU store over the next instructions: the new ones run, natively
 * and translated.  A misaligned PADDD raises #GP(0) at itself with
 * the earlier state committed (no IDT here: a shutdown), as in the
 * interpreter.  Without the alignment check the translator ran on.
 */
static void test_sse_mem(void)
{
	static struct hcase c;
	static const uint8_t codes[2][12] = { {
		0x48, 0x01, 0xd8,			/* add rax, rbx */
		0x66, 0x0f, 0xfe, 0x4b, 0x08,		/* paddd xmm1, [rbx + 8] */
		0x48, 0x83, 0xc2, 0x01,			/* add rdx, 1 */
	}, {
		0x48, 0x01, 0xd8,			/* add rax, rbx */
		0x0f, 0x29, 0x4b, 0x08, 0x90,		/* movaps [rbx + 8], xmm1; nop */
		0x48, 0x83, 0xc2, 0x01,			/* add rdx, 1 */
	} };
	struct jit_cpu *cpus[2] = { cpu_tr, cpu_in };
	struct jit_regs out[2];
	struct rng r = { 0x55e };

	for (int i = 0; i < 100; i++) {
		uint8_t a = (uint8_t)(rnd(&r) % 7 * 16), u = (uint8_t)(rnd(&r) % 0x70);
		uint32_t cross = 0x7f8 + (uint32_t)(rnd(&r) % 8);	/* DATA + 0x1000 is a page */

		rnd_case(&r, &c);
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0xfe, 0x4b, a }, 5);		/* paddd xmm1, [rbx+a] */
		emit(&c, (uint8_t[]){ 0xf3, 0x0f, 0x6f, 0x53, u }, 5);		/* movdqu xmm2, [rbx+u] */
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0x38, 0x00, 0x5b, a }, 6);	/* pshufb xmm3, [rbx+a] */
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0x6f, 0x63, a }, 5);		/* movdqa xmm4, [rbx+a] */
		emit(&c, (uint8_t[]){ 0xf3, 0x0f, 0x6f, 0xab }, 4);		/* movdqu xmm5, [rbx+cross] */
		emit(&c, &cross, 4);
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0x74, 0xe9 }, 4);		/* pcmpeqb xmm5, xmm1 */
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0xd7, 0xcd }, 4);		/* pmovmskb ecx, xmm5 */
		emit(&c, (uint8_t[]){ 0x66, 0x48, 0x0f, 0x7e, 0xd6 }, 5);	/* movq rsi, xmm2 */
		emit(&c, (uint8_t[]){ 0x0f, 0x10, 0x73, u }, 4);		/* movups xmm6, [rbx+u] */
		emit(&c, (uint8_t[]){ 0x0f, 0x29, 0x4b, (uint8_t)(a ^ 0x10) }, 4); /* movaps [rbx+a^16], xmm1 */
		emit(&c, (uint8_t[]){ 0xf3, 0x0f, 0x7f, 0x73, (uint8_t)(u + 0x20) }, 5); /* movdqu [..], xmm6 */
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0x7f, 0xab }, 4);		/* movdqa [rbx+...], xmm5 */
		emit(&c, &(uint32_t){ 0x400 + a }, 4);
		emit(&c, (uint8_t[]){ 0x0f, 0x11, 0xa3 }, 3);			/* movups [rbx+cross], xmm4 */
		emit(&c, &cross, 4);
		emit(&c, (uint8_t[]){ 0x0f, 0x28, 0xf9 }, 3);			/* movaps xmm7, xmm1 */
		emit(&c, (uint8_t[]){ 0xf3, 0x0f, 0x7f, 0xfa }, 4);		/* movdqu xmm2, xmm7 */
		cases++;
		if (!harness_compare(cpu_tr, &c, "SSE memory sources", true) ||
		    !harness_compare(cpu_in, &c, "SSE memory sources", true))
			fails++;
	}

	/* a 16-byte store into the code right after it (16 NOPs over four ADDs) */
	for (int i = 0; i < 10; i++) {
		rnd_case(&r, &c);
		emit(&c, (uint8_t[]){ 0xb8, 0x90, 0x90, 0x90, 0x90 }, 5);	/* mov eax, 0x90909090 */
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0x6e, 0xf0 }, 4);		/* movd xmm6, eax */
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0x70, 0xf6, 0x00 }, 5);	/* pshufd xmm6, xmm6, 0 */
		emit(&c, (uint8_t[]){ 0xf3, 0x0f, 0x7f, 0x35, 0, 0, 0, 0 }, 8);	/* movdqu [rip], xmm6 */
		for (int k = 0; k < 4; k++)
			emit(&c, (uint8_t[]){ 0x48, 0x83, 0xc1, 0x01 }, 4);	/* add rcx, 1 */
		cases++;
		if (!harness_compare(cpu_tr, &c, "an SSE store into the next instructions", true) ||
		    !harness_compare(cpu_in, &c, "an SSE store into the next instructions", true))
			fails++;
	}

	for (int v = 0; v < 2; v++)
		for (int k = 0; k < 2; k++) {
			enum jit_exit e;

			memset(guest_ptr(MEMBASE), 0x5a, 32);
			e = run_code(cpus[k], codes[v], sizeof(codes[v]), 5, MEMBASE, 0x2, &out[k]);
			CHECK(e == JIT_EXIT_SHUTDOWN && out[k].rip == CODE + 3 &&
			      out[k].gpr[0] == 5 + MEMBASE && out[k].gpr[2] == 0 &&
			      guest_ptr(MEMBASE)[8] == 0x5a && guest_ptr(MEMBASE)[23] == 0x5a,
			      "%s: a misaligned %s faults at itself, the ADD before it done, memory "
			      "unchanged (rip %#llx)", k ? "interpreter" : "translator",
			      v ? "MOVAPS store" : "PADDD source", (unsigned long long)out[k].rip);
		}
}

/*
 * CWDE/CDQE and CDQ/CQO, PUSH imm32/imm8 (popped back into a register)
 * and MOVD/MOVQ from memory into an XMM register are translated: random
 * cases against native runs, XMM registers compared.
 */
static void test_small_forms(void)
{
	static struct hcase c;
	struct rng r = { 0x98 };

	for (int i = 0; i < 100; i++) {
		uint8_t a = (uint8_t)(rnd(&r) % 0x70), d = (uint8_t)rreg(&r), imm = (uint8_t)rnd(&r);
		uint32_t imm32 = (uint32_t)rnd(&r);

		rnd_case(&r, &c);
		emit(&c, (uint8_t[]){ 0x48, 0x98, 0x98, 0x99, 0x48, 0x99 }, 6);	/* cdqe cwde cdq cqo */
		emit1(&c, 0x68);							/* push imm32 */
		emit(&c, &imm32, 4);
		emit(&c, (uint8_t[]){ 0x6a, imm }, 2);					/* push imm8 */
		emit(&c, (uint8_t[]){ (uint8_t)(d & 8 ? 0x41 : 0x40), (uint8_t)(0x58 + (d & 7)) }, 2);
		emit(&c, (uint8_t[]){ 0x59 }, 1);					/* pop rcx */
		emit(&c, (uint8_t[]){ 0x66, 0x0f, 0x6e, 0x5b, a }, 5);		/* movd xmm3, [rbx+a] */
		emit(&c, (uint8_t[]){ 0x66, 0x48, 0x0f, 0x6e, 0x63, a }, 6);	/* movq xmm4, [rbx+a] */
		cases++;
		if (!harness_compare(cpu_tr, &c, "CWDE, CQO, PUSH imm, MOVD from memory", true) ||
		    !harness_compare(cpu_in, &c, "CWDE, CQO, PUSH imm, MOVD from memory", true))
			fails++;
	}
}

/* BT, BTS, BTR, BTC with an immediate bit offset (0F BA /4-/7), 16, 32
 * and 64 bits, on memory and on registers, with SBB reading CF between
 * them and the flags compared at the end (ZF kept, the undefined ones as
 * the interpreter leaves them). */
static void test_bt_imm(void)
{
	static struct hcase c;
	struct rng r = { 0xb7 };

	for (int i = 0; i < 300; i++) {
		rnd_case(&r, &c);
		for (int k = 0; k < 6; k++) {
			unsigned ext = 4 + rnd(&r) % 4, size = rnd(&r) % 3, d = rreg(&r);
			uint8_t imm = (uint8_t)rnd(&r), disp = (uint8_t)(rnd(&r) % 0x70);
			bool mem = rnd(&r) & 1;

			if (size == 0)
				emit1(&c, 0x66);
			if (size == 2 || (!mem && d >= 8))
				emit1(&c, (uint8_t)(0x40 | (size == 2 ? 8 : 0) | (!mem && d >= 8 ? 1 : 0)));
			if (mem)
				emit(&c, (uint8_t[]){ 0x0f, 0xba, (uint8_t)(0x43 | ext << 3), disp, imm }, 5);
			else
				emit(&c, (uint8_t[]){ 0x0f, 0xba, (uint8_t)(0xc0 | ext << 3 | (d & 7)), imm }, 4);
			if (rnd(&r) & 1)
				emit(&c, (uint8_t[]){ 0x48, 0x19, 0xd6 }, 3);	/* sbb rsi, rdx */
		}
		both(&c, "BT* with an immediate");
	}
}

/* CMPXCHG m, r (0F B0/B1) of 8 to 64 bits, the compare made to succeed
 * half of the time (the accumulator stored to the operand first), RAX's
 * upper half random (kept on success, cleared by a 32-bit failure), and
 * with RAX as the operand's base, equal or not (the store goes to the
 * address RAX held before). */
static void test_cmpxchg(void)
{
	static struct hcase c;
	struct rng r = { 0xc3 };

	for (int i = 0; i < 300; i++) {
		unsigned size = rnd(&r) % 4, d = rreg(&r);
		uint8_t disp = (uint8_t)(rnd(&r) % 0x70), rex = (uint8_t)(0x40 | (size == 3 ? 8 : 0) |
								  (d >= 8 ? 4 : 0));
		uint8_t op = size ? 0xb1 : 0xb0;

		rnd_case(&r, &c);
		if (rnd(&r) & 1) {				/* mov [rbx + disp], al/ax/eax/rax */
			if (size == 1)
				emit1(&c, 0x66);
			if (size == 3)
				emit1(&c, 0x48);
			emit(&c, (uint8_t[]){ size ? 0x89 : 0x88, 0x43, disp }, 3);
		}
		if (size == 1)
			emit1(&c, 0x66);
		if (rex != 0x40 || (size == 0 && rnd(&r) & 1))
			emit1(&c, rex);
		emit(&c, (uint8_t[]){ 0x0f, op, (uint8_t)(0x43 | (d & 7) << 3), disp }, 4);
		/* mov rdi, rax; lea rax, [rbx + disp]; then [rax] = rax or 5;
		 * cmpxchg [rax], rdx */
		emit(&c, (uint8_t[]){ 0x48, 0x89, 0xc7, 0x48, 0x8d, 0x43, disp }, 7);
		if (rnd(&r) & 1)
			emit(&c, (uint8_t[]){ 0x48, 0x89, 0x00 }, 3);
		else
			emit(&c, (uint8_t[]){ 0x48, 0xc7, 0x00, 0x05, 0x00, 0x00, 0x00 }, 7);
		emit(&c, (uint8_t[]){ 0x48, 0x0f, 0xb1, 0x10 }, 4);
		emit(&c, (uint8_t[]){ 0x48, 0x19, 0xd6 }, 3);	/* sbb rsi, rdx: CF read */
		both(&c, "CMPXCHG to memory");
	}
}

/* Runs c both ways; false when cpu_tr translated one of its instructions
 * as a call of its handler, other than the UD2 that ends each block. */
static bool inline_only(const struct hcase *c, const char *what)
{
	struct jit_stats a, b;

	jit_cpu_stats(cpu_tr, &a);
	both(c, what);
	jit_cpu_stats(cpu_tr, &b);
	return b.tr_calls - a.tr_calls <= b.translated - a.translated;
}

/* XADD m, r (0F C0/C1) of 8 to 64 bits, one to three in a row with SBB
 * reading CF after some, and with RAX both the register and the
 * operand's base (the sum goes to the address RAX held before). */
static int test_xadd(void)
{
	static struct hcase c;
	struct rng r = { 0xc1 };
	int calls = 0;

	for (int i = 0; i < 300; i++) {
		rnd_case(&r, &c);
		for (int k = 1 + (int)(rnd(&r) % 3); k > 0; k--) {
			unsigned size = rnd(&r) % 4, d = rreg(&r);
			uint8_t disp = (uint8_t)(rnd(&r) % 0x70);
			uint8_t rex = (uint8_t)(0x40 | (size == 3 ? 8 : 0) | (d >= 8 ? 4 : 0));

			if (size == 1)
				emit1(&c, 0x66);
			/* (a byte XADD of register 7 without REX would change BH, RBX's) */
			if (rex != 0x40 || (size == 0 && (d == 7 || rnd(&r) & 1)))
				emit1(&c, rex);
			emit(&c, (uint8_t[]){ 0x0f, size ? 0xc1 : 0xc0, (uint8_t)(0x43 | (d & 7) << 3),
					      disp }, 4);
			if (rnd(&r) & 1)
				emit(&c, (uint8_t[]){ 0x48, 0x19, 0xd6 }, 3);	/* sbb rsi, rdx */
		}
		if (rnd(&r) & 1)	/* lea rax, [rbx + 0x40]; xadd [rax], rax */
			emit(&c, (uint8_t[]){ 0x48, 0x8d, 0x43, 0x40, 0x48, 0x0f, 0xc1, 0x00 }, 8);
		calls += !inline_only(&c, "XADD to memory");
	}
	return calls;
}

/* [66] [REX] 0F op ModRM, 16 (size 1), 32 (2) or 64 bits (3): register d
 * with r/m register m, or [rbx + disp] when m < 0. */
static void op_0f_rm(struct hcase *c, unsigned size, uint8_t op, unsigned d, int m, uint8_t disp)
{
	bool hi_m = m >= 8;

	if (size == 1)
		emit1(c, 0x66);
	if (size == 3 || d >= 8 || hi_m)
		emit1(c, (uint8_t)(0x40 | (size == 3 ? 8 : 0) | (d >= 8 ? 4 : 0) | (hi_m ? 1 : 0)));
	if (m < 0)
		emit(c, (uint8_t[]){ 0x0f, op, (uint8_t)(0x43 | (d & 7) << 3), disp }, 4);
	else
		emit(c, (uint8_t[]){ 0x0f, op, (uint8_t)(0xc0 | (d & 7) << 3 | (m & 7)) }, 3);
}

/* BT, BTS, BTR, BTC with the bit offset in a register (0F A3/AB/B3/BB),
 * 16, 32 and 64 bits: on registers, and on memory with offsets from -200
 * to 200 (the unit below or above the operand's address, the offset's
 * sign taken at the operand size), with SBB reading CF between them. */
static int test_bt_reg(void)
{
	static struct hcase c;
	struct rng r = { 0xa3 };
	static const uint8_t ops[4] = { 0xa3, 0xab, 0xb3, 0xbb };
	int calls = 0;

	for (int i = 0; i < 300; i++) {
		rnd_case(&r, &c);
		for (int k = 0; k < 5; k++) {
			unsigned size = 1 + rnd(&r) % 3, d = rreg(&r), m = rreg(&r);
			uint8_t op = ops[rnd(&r) % 4], disp = (uint8_t)(0x20 + rnd(&r) % 0x40);
			bool mem = rnd(&r) & 1;
			int32_t off = (int32_t)(rnd(&r) % 401) - 200;

			if (mem) {		/* mov r64(d), off */
				emit(&c, (uint8_t[]){ (uint8_t)(0x48 | (d >= 8)), 0xc7,
						      (uint8_t)(0xc0 | (d & 7)) }, 3);
				emit(&c, &off, 4);
			}
			op_0f_rm(&c, size, op, d, mem ? -1 : (int)m, disp);
			if (rnd(&r) & 1)
				emit(&c, (uint8_t[]){ 0x48, 0x19, 0xd6 }, 3);	/* sbb rsi, rdx */
		}
		calls += !inline_only(&c, "BT* with a register offset");
	}
	return calls;
}

/* BSF, BSR, TZCNT, LZCNT and POPCNT (0F BC/BD, F3 0F BC/BD/B8) of 16 to
 * 64 bits from registers and memory, the source zero now and then (BSF
 * and BSR keep the destination, not even zero-extending it), with SBB
 * reading CF after some. */
static int test_bitscan(void)
{
	static struct hcase c;
	struct rng r = { 0xbc };
	static const uint8_t ops[5] = { 0xbc, 0xbd, 0xbc, 0xbd, 0xb8 };
	int calls = 0;

	for (int i = 0; i < 300; i++) {
		rnd_case(&r, &c);
		for (int k = 0; k < 5; k++) {
			unsigned size = 1 + rnd(&r) % 3, d = rreg(&r), m = rreg(&r), kind = rnd(&r) % 5;
			uint8_t disp = (uint8_t)(rnd(&r) % 0x70);
			bool mem = rnd(&r) & 1;

			if (rnd(&r) % 3 == 0) {
				if (mem)	/* mov qword [rbx + disp], 0 */
					emit(&c, (uint8_t[]){ 0x48, 0xc7, 0x43, disp, 0, 0, 0, 0 }, 8);
				else		/* xor m32, m32 */
					emit(&c, (uint8_t[]){ (uint8_t)(0x40 | (m >= 8 ? 5 : 0)), 0x31,
							      (uint8_t)(0xc0 | (m & 7) << 3 | (m & 7)) }, 3);
			}
			if (kind >= 2)
				emit1(&c, 0xf3);
			op_0f_rm(&c, size, ops[kind], d, mem ? -1 : (int)m, disp);
			if (rnd(&r) & 1)
				emit(&c, (uint8_t[]){ 0x48, 0x19, 0xd6 }, 3);	/* sbb rsi, rdx */
		}
		calls += !inline_only(&c, "bit scans and counts");
	}
	return calls;
}

/*
 * PUSHF after flag producers (the pushed image against the host's own),
 * and CLI at CPL 3: with IOPL 3 it clears IF and the block goes on; with
 * IOPL 0 it raises #GP(0) at the CLI with the flags of the ADD before it
 * in RFLAGS, as the interpreter leaves them.
 */
static void test_pushf_cli(void)
{
	static struct hcase c;
	struct rng r = { 0x9c };
	/* add rax, rbx; cli; add rdx, 1; ud2 */
	static const uint8_t cli[] = { 0x48, 0x01, 0xd8, 0xfa, 0x48, 0x83, 0xc2, 0x01, 0x0f, 0x0b };
	struct jit_cpu *cpus[2] = { cpu_tr, cpu_in };
	struct jit_regs out[2];

	for (int i = 0; i < 100; i++) {
		rnd_case(&r, &c);
		for (int k = 0; k < 4; k++) {
			flag_producer(&r, &c, rreg(&r), rreg(&r), rnd(&r) & 1, false);
			emit(&c, (uint8_t[]){ 0x9c, 0x5f, 0x48, 0x01, 0xfe }, 5);	/* pushfq; pop rdi; add rsi, rdi */
		}
		both(&c, "PUSHF after flag producers");
	}
	for (int k = 0; k < 2; k++) {
		enum jit_exit e = run_code(cpus[k], cli, sizeof(cli), 0x7fffffffffffffffull, 1, 0x3202,
					   &out[k]);

		CHECK(e == JIT_EXIT_SHUTDOWN && !(out[k].rflags & 0x200) && out[k].rip == CODE + 8,
		      "%s: CLI at CPL 3, IOPL 3, clears IF and goes on to the UD2 (rip %#llx, flags %#llx)",
		      k ? "interpreter" : "translator", (unsigned long long)out[k].rip,
		      (unsigned long long)out[k].rflags);
		e = run_code(cpus[k], cli, sizeof(cli), 0x7fffffffffffffffull, 1, 0x202, &out[k]);
		CHECK(e == JIT_EXIT_SHUTDOWN && out[k].rip == CODE + 3 && (out[k].rflags & 0xa00) == 0xa00,
		      "%s: CLI at CPL 3, IOPL 0, raises #GP with the ADD's flags (rip %#llx, flags %#llx)",
		      k ? "interpreter" : "translator", (unsigned long long)out[k].rip,
		      (unsigned long long)out[k].rflags);
	}
}

/*
 * PAUSE and the hint NOPs (PREFETCHh, PREFETCHW, NOP r/m) are translated:
 * a loop of them between a CMP and the Jcc that reads its flags runs
 * linked and gives the native result.
 */
static void test_hints(void)
{
	static struct hcase c;
	static struct hstate out;
	struct rng r = { 0x9a05e };
	/* mov ecx, 400; l: cmp ecx, 200; pause; prefetcht0 [rbx]; prefetchw [rbx + 8];
	 * prefetchnta [rbx]; nop dword [rax]; jb s; inc eax; s: dec ecx; jnz l */
	static const uint8_t loop[] = {
		0xb9, 0x90, 0x01, 0x00, 0x00,
		0x81, 0xf9, 0xc8, 0x00, 0x00, 0x00,
		0xf3, 0x90,
		0x0f, 0x18, 0x0b,
		0x0f, 0x0d, 0x4b, 0x08,
		0x0f, 0x18, 0x03,
		0x0f, 0x1f, 0x00,
		0x72, 0x02,
		0xff, 0xc0,
		0xff, 0xc9,
		0x75, 0xe3,
	};

	rnd_case(&r, &c);
	emit(&c, loop, sizeof(loop));
	both(&c, "PAUSE and hint NOPs");
	check_linked(&c, 1, false, "a loop of PAUSE and prefetches", &out);
}

/* Run a sibling suite with one extra environment setting; its exit status. */
static int run_suite(const char *dir, const char *name, const char *var, const char *val)
{
	char path[4096];
	pid_t pid;
	int st;

	snprintf(path, sizeof(path), "%s/test-jit-%s", dir, name);
	if (access(path, X_OK) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		setenv(var, val, 1);
		unsetenv(strcmp(var, "VM_JIT_HOT") ? "VM_JIT_HOT" : "VM_JIT_TRANSLATE");
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_suites(const char *argv0)
{
	static const char *const names[] = { "alu", "sse", "x87", "sys", "events", "machine", "misc" };
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", argv0);
	slash = strrchr(dir, '/');
	if (!slash) {
		printf("# no directory in %s: the other suites are not run\n", argv0);
		return;
	}
	*slash = 0;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int tr = run_suite(dir, names[i], "VM_JIT_HOT", "0");
		int in = run_suite(dir, names[i], "VM_JIT_TRANSLATE", "off");

		if (tr < 0 && in < 0) {
			printf("# test-jit-%s not built beside this program\n", names[i]);
			continue;
		}
		CHECK(tr == 0 && in == 0, "test-jit-%s: translated %d, interpreted %d (exit status)",
		      names[i], tr, in);
	}
}

int main(int argc, char **argv)
{
	int calls;

	harness_map_native();
	setenv("VM_JIT_HOT", "0", 1);
	cpu_tr = harness_cpu();
	setenv("VM_JIT_TRANSLATE", "off", 1);
	cpu_in = jit_cpu_new(&h_bus, 0);
	harness_setup(cpu_in);
	test_random();
	CHECK(fails == 0, "random sequences: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_loops();
	CHECK(fails == 0, "loops with CALL/RET: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_smc();
	CHECK(fails == 0, "self-modifying code and stores beside it: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_indirect();
	CHECK(fails == 0, "indirect CALL/JMP: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_self_loops();
	CHECK(fails == 0, "self loops with handlers: %d cases, %d differ", cases, fails);
	test_links();
	CHECK(fails == 0, "linked loops: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_side_exits();
	CHECK(fails == 0, "side exits: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_patched_sizes();
	CHECK(fails == 0, "hot callees of 15 to 123 bytes patched: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_tracked();
	test_victims();
	test_tlb_capacity();
	test_irq_masked();
	test_sti_popf();
	test_syscall_chain();
	test_flush_keeps_global();
	test_ret_table();
	test_fault();
	fails = cases = 0;
	test_div();
	CHECK(fails == 0, "DIV: %d cases, %d differ", cases, fails);
	test_sse_checks();
	fails = cases = 0;
	test_sse_mem();
	CHECK(fails == 0, "SSE memory sources: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_small_forms();
	CHECK(fails == 0, "CWDE/CQO, PUSH imm, MOVD from memory: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_hints();
	CHECK(fails == 0, "PAUSE and hint NOPs: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_bt_imm();
	CHECK(fails == 0, "BT/BTS/BTR/BTC with an immediate: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	test_cmpxchg();
	CHECK(fails == 0, "CMPXCHG to memory: %d cases, %d differ", cases, fails);
	fails = cases = 0;
	calls = test_xadd();
	CHECK(fails == 0, "XADD to memory: %d cases, %d differ", cases, fails);
	CHECK(calls == 0, "XADD to memory is translated inline (%d cases called a handler)", calls);
	fails = cases = 0;
	calls = test_bt_reg();
	CHECK(fails == 0, "BT/BTS/BTR/BTC with a register offset: %d cases, %d differ", cases,
	      fails);
	CHECK(calls == 0, "BT* with a register offset is translated inline (%d cases called a "
	      "handler)", calls);
	fails = cases = 0;
	calls = test_bitscan();
	CHECK(fails == 0, "BSF/BSR/TZCNT/LZCNT/POPCNT: %d cases, %d differ", cases, fails);
	CHECK(calls == 0, "bit scans and counts are translated inline (%d cases called a handler)",
	      calls);
	fails = cases = 0;
	test_pushf_cli();
	CHECK(fails == 0, "PUSHF: %d cases, %d differ", cases, fails);
	if (argc > 0)
		test_suites(argv[0]);
	jit_cpu_free(cpu_tr);
	jit_cpu_free(cpu_in);
	harness_free();
	return unit_done();
}
