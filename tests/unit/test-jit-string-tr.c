/*
 * The string instructions (MOVS, CMPS, STOS, LODS, SCAS, with and without
 * REP/REPE/REPNE) against the host, as test-jit-translate checks the
 * other forms: random sequences of a few string instructions, each after
 * MOVs that set RSI, RDI, RCX and RAX and a CLD or STD, run natively, by
 * a vCPU that translates every block at once (VM_JIT_HOT=0) and by one
 * that only interprets (VM_JIT_TRANSLATE=off).  Registers, flags and the
 * whole data area must match.  The cases cover every operand size, both
 * directions, RCX = 0, counts past one 4 KiB page, overlapping MOVS
 * (which must replicate element by element), STOS of one repeated byte
 * and of a pattern, REPE/REPNE ending early, and 67h (ESI/EDI/ECX, the
 * upper halves ignored).  Then a REP MOVS and a REP STOS that run into an
 * unmapped page: the fault leaves RSI, RDI and RCX counting the elements
 * done and RIP at the instruction, the same in both vCPUs.  Last, CPUID
 * says REP MOVSB and STOSB are the fast way (ERMS, FSRM).
 */
#include "test-jit-harness.h"

static struct jit_cpu *cpu_tr, *cpu_in;
static int cases, fails;

/* The data area the sequences use: native and guest compare all of it. */
#define AREA_LO (DATA + 0x400)
#define AREA_HI (DATA + 0x4400)

/* mov r64, imm64 */
static void mov_imm(struct hcase *c, unsigned r, uint64_t v)
{
	emit1(c, (uint8_t)(0x48 | (r >= 8)));
	emit1(c, (uint8_t)(0xb8 + (r & 7)));
	emit(c, &v, 8);
}

/* A start address for count elements of size bytes going one way, all
 * inside the area (and so on both sides of the page boundaries in it). */
static uint64_t rnd_ptr(struct rng *r, uint64_t span, bool down)
{
	uint64_t room = AREA_HI - AREA_LO - span;
	uint64_t p = AREA_LO + rnd(r) % (room + 1);

	return down ? p + span : p;
}

/* A value for STOS and SCAS: one byte repeated (the memset path), or not. */
static uint64_t rnd_acc(struct rng *r, const struct hcase *c, uint64_t di)
{
	uint64_t v;

	switch (rnd(r) % 4) {
	case 0:
		return 0;
	case 1:
		return (rnd(r) & 0xff) * 0x0101010101010101ull;
	case 2:
		memcpy(&v, &c->data[di - DATA], 8);	/* what SCAS will meet */
		return v;
	default:
		return rnd(r);
	}
}

/* One string instruction with its set-up. */
static void rnd_string(struct rng *r, struct hcase *c)
{
	static const uint8_t ops[] = { 0xa4, 0xa6, 0xaa, 0xac, 0xae };
	uint8_t op = ops[rnd(r) % sizeof(ops)];
	unsigned size = 1u << (rnd(r) % 4), k = (unsigned)(rnd(r) % 8);
	bool a32 = rnd(r) % 5 == 0, down = rnd(r) % 3 == 0, rep = rnd(r) % 6 != 0;
	uint64_t count, span, si, di;

	if (k == 0)
		count = 0;
	else if (k == 1)
		count = 0x600 + rnd(r) % 0xa00;		/* past a page */
	else
		count = rnd(r) % 70;
	if (count * size > 0x3c00)
		count = 0x3c00 / size;
	span = (count + 1) * size;
	si = rnd_ptr(r, span, down);
	di = rnd_ptr(r, span, down);
	if (op == 0xa4 && rnd(r) % 3 == 0) {		/* overlapping MOVS */
		di = si + rnd(r) % 25 - 12;
		if (di < AREA_LO + span || di > AREA_HI - span)
			di = si;
	}
	mov_imm(c, 6, si | (a32 ? rnd(r) << 32 : 0));
	mov_imm(c, 7, di | (a32 ? rnd(r) << 32 : 0));
	mov_imm(c, 1, count | (a32 ? rnd(r) << 32 : 0));
	mov_imm(c, 0, rnd_acc(r, c, di));
	emit1(c, down ? 0xfd : 0xfc);			/* std / cld */
	if (a32)
		emit1(c, 0x67);
	if (size == 2)
		emit1(c, 0x66);
	if (rep)
		emit1(c, (op == 0xa6 || op == 0xae) && rnd(r) & 1 ? 0xf2 : 0xf3);
	if (size == 8)
		emit1(c, 0x48);
	emit1(c, (uint8_t)(op + (size > 1)));
}

/* Data that CMPS and SCAS find equal in places: runs of a few values. */
static void rnd_data(struct rng *r, struct hcase *c)
{
	for (uint64_t a = AREA_LO; a < AREA_HI; a++)
		c->data[a - DATA] = rnd(r) % 4 ? (uint8_t)(a & 3) : (uint8_t)rnd(r);
}

/* Compare native, translated and interpreted runs of one case, the
 * whole area included. */
static void all3(const struct hcase *c, const char *what)
{
	struct jit_cpu *cpus[2] = { cpu_tr, cpu_in };

	cases++;
	for (int k = 0; k < 2; k++) {
		if (!harness_compare(cpus[k], c, what, false)) {
			fails++;
			return;
		}
		if (memcmp((void *)AREA_LO, guest_ptr(AREA_LO), AREA_HI - AREA_LO)) {
			for (uint64_t a = AREA_LO; a < AREA_HI; a++)
				if (*(uint8_t *)a != *guest_ptr(a)) {
					printf("# %s (%s): memory %#llx native %02x jit %02x\n", what,
					       k ? "interpreter" : "translator", (unsigned long long)a,
					       *(uint8_t *)a, *guest_ptr(a));
					break;
				}
			fails++;
			return;
		}
	}
}

static void test_random(void)
{
	static struct hcase c;
	struct rng r = { 0x57a1e55ull };

	for (int i = 0; i < 3000; i++) {
		rnd_case(&r, &c);
		rnd_data(&r, &c);
		for (unsigned n = 1 + (unsigned)(rnd(&r) % 5); n; n--)
			rnd_string(&r, &c);
		emit1(&c, 0xfc);
		all3(&c, "string sequence");
	}
}

/* Run the code at CODE from registers rg (RSP, RIP and RFLAGS set
 * here) until it stops (a triple fault: the harness has no IDT); rg gets
 * the final registers, and the vCPU is made ready for the next case. */
static enum jit_exit run_from(struct jit_cpu *cpu, struct jit_regs *rg)
{
	enum jit_exit e = JIT_EXIT_BUDGET;

	rg->gpr[4] = STACK_TOP;
	rg->rip = CODE;
	rg->rflags = 0x202;
	jit_cpu_set_regs(cpu, rg);
	for (int i = 0; i < 4 && e == JIT_EXIT_BUDGET; i++)
		e = jit_cpu_run(cpu, 1000);
	jit_cpu_get_regs(cpu, rg);
	harness_setup(cpu);
	return e;
}

/*
 * A REP MOVS or STOS that runs from the last mapped page into an unmapped
 * one (the guest maps 2 MiB from CODE): the #PF (a triple fault here,
 * with no IDT) stops it with RIP at the instruction and RSI, RDI, RCX
 * counting the elements copied, which are in memory.
 */
static void test_fault(void)
{
	static const struct { uint8_t op, rex; const char *what; } f[] = {
		{ 0xa4, 0, "rep movsb" }, { 0xa5, 0x48, "rep movsq" },
		{ 0xaa, 0, "rep stosb" }, { 0xab, 0x48, "rep stosq" },
	};
	const uint64_t end = CODE + (2u << 20);

	for (unsigned k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		unsigned size = f[k].rex ? 8 : 1;
		uint64_t di = end - 0x18 * size, si = DATA + 0x1000;
		struct jit_regs out[2];

		for (int m = 0; m < 2; m++) {
			struct jit_cpu *cpu = m ? cpu_in : cpu_tr;
			enum jit_exit e;
			uint8_t code[16] = { 0x48, 0xff, 0xc2, 0xf3 };	/* inc rdx; rep ... */
			unsigned n = 4;

			if (f[k].rex)
				code[n++] = f[k].rex;
			code[n++] = f[k].op;
			code[n++] = 0x90;
			guest_write(CODE, code, n);
			for (unsigned i = 0; i < 0x100; i++)
				*guest_ptr(si + i) = (uint8_t)(i * 7 + 1);
			memset(guest_ptr(di), 0, end - di);
			memset(&out[m], 0, sizeof(out[m]));
			out[m].gpr[0] = 0x5a5a5a5a5a5a5a5aull;
			out[m].gpr[1] = 0x40;
			out[m].gpr[6] = si;
			out[m].gpr[7] = di;
			e = run_from(cpu, &out[m]);
			CHECK(e == JIT_EXIT_SHUTDOWN && out[m].rip == CODE + 3 &&
			      out[m].gpr[1] == 0x40 - 0x18 && out[m].gpr[7] == end &&
			      (f[k].op == 0xaa || f[k].op == 0xab || out[m].gpr[6] == si + 0x18 * size) &&
			      out[m].gpr[2] == 1 &&
			      *guest_ptr(end - 1) == (f[k].op & 2 ? 0x5a : (uint8_t)((0x18 * size - 1) * 7 + 1)),
			      "%s into an unmapped page (%s): rip %#llx rcx %#llx rdi %#llx", f[k].what,
			      m ? "interpreter" : "translator", (unsigned long long)out[m].rip,
			      (unsigned long long)out[m].gpr[1], (unsigned long long)out[m].gpr[7]);
		}
		CHECK(!memcmp(out[0].gpr, out[1].gpr, sizeof(out[0].gpr)),
		      "%s fault: translator and interpreter agree", f[k].what);
	}
}

/* CPUID.(7,0) promises fast REP MOVSB/STOSB (EBX bit 9, ERMS) and fast
 * short REP MOVSB (EDX bit 4, FSRM), which Linux's memcpy, memset,
 * memmove, copy_user and clear_page choose by. */
static void test_cpuid(void)
{
	/* mov eax, 7; xor ecx, ecx; cpuid */
	static const uint8_t code[] = { 0xb8, 0x07, 0x00, 0x00, 0x00, 0x31, 0xc9, 0x0f, 0xa2 };
	struct jit_regs rg = { 0 };

	guest_write(CODE, code, sizeof(code));
	guest_write(CODE + sizeof(code), "\x0f\x0b", 2);
	run_from(cpu_in, &rg);
	CHECK(rg.rip == CODE + sizeof(code) && (rg.gpr[3] & (1u << 9)) && (rg.gpr[2] & (1u << 4)),
	      "CPUID.(7,0) has ERMS and FSRM (ebx %#llx edx %#llx)", (unsigned long long)rg.gpr[3],
	      (unsigned long long)rg.gpr[2]);
}

int main(void)
{
	harness_map_native();
	setenv("VM_JIT_HOT", "0", 1);
	cpu_tr = harness_cpu();
	setenv("VM_JIT_TRANSLATE", "off", 1);
	cpu_in = jit_cpu_new(&h_bus, 0);
	harness_setup(cpu_in);
	test_random();
	CHECK(fails == 0, "random string sequences: %d cases, %d differ", cases, fails);
	test_fault();
	test_cpuid();
	jit_cpu_free(cpu_tr);
	jit_cpu_free(cpu_in);
	harness_free();
	return unit_done();
}
