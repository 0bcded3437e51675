/*
 * The host-comparison harness for lib/jit: runs a generated instruction
 * sequence natively on the host CPU (64-bit user mode) and under the
 * interpreter (64-bit long mode at CPL 3 on a small guest memory whose
 * page tables map the same linear addresses), then compares registers,
 * flags, XMM registers and the data area.
 *
 * The code and data live at fixed linear addresses (CODE, DATA) in both
 * worlds, so pointers in registers mean the same thing to both.  Natively
 * the sequence is entered through harness_enter (below), which loads every
 * GPR and RFLAGS from a struct and jumps to the code; the code ends with an
 * absolute jump to harness_leave, which stores them back.  Under the
 * interpreter the run stops when RIP reaches that jump.
 */
#ifndef TEST_JIT_HARNESS_H
#define TEST_JIT_HARNESS_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "jit/jit.h"
#include "unit.h"

#define CODE 0x20000000ull
#define DATA 0x20010000ull
#define DATA_SIZE 0x10000u
#define STACK_TOP (DATA + 0xf000)
#define MEMBASE (DATA + 0x800)	/* what RBX points at in memory-operand tests */
#define CMP_LO (DATA + 0x400)	/* compared data window */
#define CMP_HI (DATA + 0x1400)
#define GUEST_RAM (4u << 20)
#define GUEST_MAP_GPA 0x200000ull	/* CODE's 2 MiB region lives here */

struct hstate {
	uint64_t gpr[16];
	uint64_t rflags;
	uint8_t xmm[16][16];
};

/* harness globals: the native side cannot carry a pointer in a register */
static struct hstate *h_state __attribute__((used));
static uint64_t h_host_rsp __attribute__((used)), h_scratch __attribute__((used));
static uint64_t h_code __attribute__((used));
static uint8_t *h_ram;
static struct jit_ram *h_jram;	/* h_ram as the translator tracks writes to it */

void harness_enter(struct hstate *s, uint64_t code);
void harness_leave(void);

asm(".text\n"
    ".globl harness_enter\n"
    "harness_enter:\n"
    "  push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
    "  mov %rsp, h_host_rsp(%rip)\n"
    "  mov %rdi, h_state(%rip)\n"
    "  mov %rsi, h_code(%rip)\n"
    "  movdqu 136(%rdi), %xmm0\n  movdqu 152(%rdi), %xmm1\n"
    "  movdqu 168(%rdi), %xmm2\n  movdqu 184(%rdi), %xmm3\n"
    "  movdqu 200(%rdi), %xmm4\n  movdqu 216(%rdi), %xmm5\n"
    "  movdqu 232(%rdi), %xmm6\n  movdqu 248(%rdi), %xmm7\n"
    "  movdqu 264(%rdi), %xmm8\n  movdqu 280(%rdi), %xmm9\n"
    "  movdqu 296(%rdi), %xmm10\n  movdqu 312(%rdi), %xmm11\n"
    "  movdqu 328(%rdi), %xmm12\n  movdqu 344(%rdi), %xmm13\n"
    "  movdqu 360(%rdi), %xmm14\n  movdqu 376(%rdi), %xmm15\n"
    "  pushq 128(%rdi); popfq\n"
    "  mov 0(%rdi), %rax\n  mov 8(%rdi), %rcx\n  mov 16(%rdi), %rdx\n"
    "  mov 24(%rdi), %rbx\n  mov 32(%rdi), %rsp\n  mov 40(%rdi), %rbp\n"
    "  mov 48(%rdi), %rsi\n  mov 64(%rdi), %r8\n  mov 72(%rdi), %r9\n"
    "  mov 80(%rdi), %r10\n  mov 88(%rdi), %r11\n  mov 96(%rdi), %r12\n"
    "  mov 104(%rdi), %r13\n  mov 112(%rdi), %r14\n  mov 120(%rdi), %r15\n"
    "  mov 56(%rdi), %rdi\n"
    "  jmp *h_code(%rip)\n"
    ".globl harness_leave\n"
    "harness_leave:\n"
    "  mov %rdi, h_scratch(%rip)\n"
    "  mov h_state(%rip), %rdi\n"
    "  mov %rax, 0(%rdi)\n  mov %rcx, 8(%rdi)\n  mov %rdx, 16(%rdi)\n"
    "  mov %rbx, 24(%rdi)\n  mov %rsp, 32(%rdi)\n  mov %rbp, 40(%rdi)\n"
    "  mov %rsi, 48(%rdi)\n  mov %r8, 64(%rdi)\n  mov %r9, 72(%rdi)\n"
    "  mov %r10, 80(%rdi)\n  mov %r11, 88(%rdi)\n  mov %r12, 96(%rdi)\n"
    "  mov %r13, 104(%rdi)\n  mov %r14, 112(%rdi)\n  mov %r15, 120(%rdi)\n"
    "  mov h_host_rsp(%rip), %rsp\n"
    "  pushfq; popq 128(%rdi)\n"
    "  cld\n"
    "  mov h_scratch(%rip), %rax\n  mov %rax, 56(%rdi)\n"
    "  movdqu %xmm0, 136(%rdi)\n  movdqu %xmm1, 152(%rdi)\n"
    "  movdqu %xmm2, 168(%rdi)\n  movdqu %xmm3, 184(%rdi)\n"
    "  movdqu %xmm4, 200(%rdi)\n  movdqu %xmm5, 216(%rdi)\n"
    "  movdqu %xmm6, 232(%rdi)\n  movdqu %xmm7, 248(%rdi)\n"
    "  movdqu %xmm8, 264(%rdi)\n  movdqu %xmm9, 280(%rdi)\n"
    "  movdqu %xmm10, 296(%rdi)\n  movdqu %xmm11, 312(%rdi)\n"
    "  movdqu %xmm12, 328(%rdi)\n  movdqu %xmm13, 344(%rdi)\n"
    "  movdqu %xmm14, 360(%rdi)\n  movdqu %xmm15, 376(%rdi)\n"
    "  pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
    "  ret\n");

/* ---- the guest side: a bus over a flat RAM buffer ---- */

static uint8_t *h_bus_ram(void *o, uint64_t gpa, bool write)
{
	return gpa < GUEST_RAM ? h_ram + gpa : NULL;
}

static uint64_t h_mmio_read(void *o, uint64_t gpa, unsigned size) { return ~0ull; }
static void h_mmio_write(void *o, uint64_t gpa, uint64_t v, unsigned size) { }
static uint32_t h_pio_in(void *o, uint16_t port, unsigned size) { return ~0u; }
static void h_pio_out(void *o, uint16_t port, uint32_t v, unsigned size) { }

static const struct jit_bus h_bus = {
	.ram = h_bus_ram, .mmio_read = h_mmio_read, .mmio_write = h_mmio_write,
	.pio_in = h_pio_in, .pio_out = h_pio_out,
};

static uint8_t *guest_ptr(uint64_t lin)
{
	return h_ram + GUEST_MAP_GPA + (lin - CODE);
}

/* Write guest bytes at lin from outside the vCPU, as a device does. */
static void guest_write(uint64_t lin, const void *src, size_t n)
{
	memcpy(guest_ptr(lin), src, n);
	jit_ram_written(h_jram, guest_ptr(lin), n);
}

static void seg_flat(struct jit_segment *s, uint16_t sel, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->present = 1;
	s->s = 1;
	s->dpl = 3;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static void h_set_xmm(struct jit_cpu *cpu, const uint8_t xmm[16][16])
{
	uint8_t fx[512];

	jit_cpu_get_fxsave(cpu, fx);
	memcpy(fx + 160, xmm, 256);
	jit_cpu_set_fxsave(cpu, fx);
}

static void h_get_xmm(struct jit_cpu *cpu, uint8_t xmm[16][16])
{
	uint8_t fx[512];

	jit_cpu_get_fxsave(cpu, fx);
	memcpy(xmm, fx + 160, 256);
}

/* Long mode, CPL 3 (segments, control registers, EFER) after a reset. */
static void harness_setup(struct jit_cpu *cpu)
{
	struct jit_sregs sr;

	jit_cpu_reset(cpu, false);
	jit_cpu_get_sregs(cpu, &sr);
	seg_flat(&sr.cs, 0x33, true);
	seg_flat(&sr.ss, 0x2b, false);
	seg_flat(&sr.ds, 0x2b, false);
	seg_flat(&sr.es, 0x2b, false);
	seg_flat(&sr.fs, 0, false);
	seg_flat(&sr.gs, 0, false);
	sr.tr.type = 0xb;
	sr.tr.present = 1;
	sr.tr.limit = 0x67;
	sr.idt.limit = 0;
	sr.cr0 = 0x80050033;
	sr.cr3 = 0x1000;
	sr.cr4 = 0x6a0;	/* PAE PGE OSFXSR OSXMMEXCPT */
	sr.efer = 0xd01;
	if (jit_cpu_set_sregs(cpu, &sr) < 0)
		abort();
}

/* The guest memory with page tables mapping CODE's 2 MiB region, and a vCPU. */
static struct jit_cpu *harness_cpu(void)
{
	struct jit_cpu *cpu;
	uint64_t *pml4, *pdpt, *pd;

	h_ram = aligned_alloc(4096, GUEST_RAM);
	memset(h_ram, 0, GUEST_RAM);
	pml4 = (uint64_t *)(h_ram + 0x1000);
	pdpt = (uint64_t *)(h_ram + 0x2000);
	pd = (uint64_t *)(h_ram + 0x3000);
	pml4[0] = 0x2000 | 7;
	pdpt[0] = 0x3000 | 7;
	pd[CODE >> 21] = GUEST_MAP_GPA | 0x87;
	cpu = jit_cpu_new(&h_bus, 0);
	h_jram = jit_ram_new(h_ram, GUEST_RAM);
	if (!cpu || !h_jram)
		abort();
	jit_cpu_set_ram(cpu, h_jram);	/* as vm-run's one vCPU */
	harness_setup(cpu);
	return cpu;
}

/* After the vCPUs are freed. */
static void harness_free(void)
{
	jit_ram_free(h_jram);
	free(h_ram);
}

static void harness_map_native(void)
{
	void *c = mmap((void *)CODE, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	void *d = mmap((void *)DATA, DATA_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (c != (void *)CODE || d != (void *)DATA) {
		perror("mmap");
		exit(2);
	}
}

/* ---- one comparison ---- */

struct hcase {
	uint8_t code[256];
	unsigned len;
	struct hstate in;
	uint8_t data[DATA_SIZE];
};

static void harness_native(const struct hcase *c, struct hstate *out)
{
	uint8_t *code = (uint8_t *)CODE;
	uint64_t leave = (uint64_t)harness_leave;

	memcpy((void *)DATA, c->data, DATA_SIZE);
	memcpy(code, c->code, c->len);
	/* jmp *0(%rip); .quad harness_leave */
	memcpy(code + c->len, "\xff\x25\0\0\0\0", 6);
	memcpy(code + c->len + 6, &leave, 8);
	__builtin___clear_cache((char *)code, (char *)code + c->len + 14);
	*out = c->in;
	harness_enter(out, CODE);
}

/*
 * Runs the sequence as the CPU runs code (in blocks of instructions), up
 * to a UD2 placed after it: with no IDT, the #UD ends in a triple fault
 * (JIT_EXIT_SHUTDOWN) with RIP exactly at the UD2 (precise exceptions).
 * Any other fault stops it elsewhere.  Returns the number of run calls,
 * or -1 when the guest did not reach the end.
 */
static int harness_guest(struct jit_cpu *cpu, const struct hcase *c, struct hstate *out)
{
	enum jit_exit e = JIT_EXIT_BUDGET;
	struct jit_regs r;
	uint8_t fx[512];
	int n;

	memcpy(guest_ptr(DATA), c->data, DATA_SIZE);
	jit_ram_written(h_jram, guest_ptr(DATA), DATA_SIZE);
	guest_write(CODE, c->code, c->len);	/* the last case's translations go */
	guest_write(CODE + c->len, "\x0f\x0b", 2);
	memcpy(r.gpr, c->in.gpr, sizeof(r.gpr));
	r.rip = CODE;
	r.rflags = c->in.rflags;
	jit_cpu_set_regs(cpu, &r);
	h_set_xmm(cpu, c->in.xmm);
	for (n = 0; n < 100 && e == JIT_EXIT_BUDGET; n++)
		e = jit_cpu_run(cpu, 100000);
	jit_cpu_get_regs(cpu, &r);
	memcpy(out->gpr, r.gpr, sizeof(r.gpr));
	out->rflags = r.rflags;
	h_get_xmm(cpu, out->xmm);
	jit_cpu_get_fxsave(cpu, fx);
	harness_setup(cpu);	/* leave the shutdown state, keep x87/MMX/SSE state */
	jit_cpu_set_fxsave(cpu, fx);
	return e == JIT_EXIT_SHUTDOWN && r.rip == CODE + c->len ? n : -1;
}

#define FLAG_MASK 0xcd5ull	/* CF PF AF ZF SF DF OF */

static void hex(const uint8_t *p, unsigned n, char *buf)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(buf + 3 * i, "%02x ", p[i]);
}

/* Run one case both ways; report a mismatch in detail. */
static bool harness_compare(struct jit_cpu *cpu, const struct hcase *c, const char *what,
			    bool check_xmm)
{
	static struct hstate nat, emu;
	char code[800];
	bool ok = true;

	harness_native(c, &nat);
	if (harness_guest(cpu, c, &emu) < 0) {
		hex(c->code, c->len, code);
		printf("# %s: guest did not finish: %s\n", what, code);
		return false;
	}
	for (int i = 0; i < 16; i++)
		if (nat.gpr[i] != emu.gpr[i]) {
			printf("# %s: r%d native %#llx jit %#llx\n", what, i,
			       (unsigned long long)nat.gpr[i], (unsigned long long)emu.gpr[i]);
			ok = false;
		}
	if ((nat.rflags & FLAG_MASK) != (emu.rflags & FLAG_MASK)) {
		printf("# %s: flags native %#llx jit %#llx\n", what,
		       (unsigned long long)(nat.rflags & FLAG_MASK),
		       (unsigned long long)(emu.rflags & FLAG_MASK));
		ok = false;
	}
	if (check_xmm && memcmp(nat.xmm, emu.xmm, sizeof(nat.xmm))) {
		for (int i = 0; i < 16; i++)
			if (memcmp(nat.xmm[i], emu.xmm[i], 16)) {
				char a[64], b[64];

				hex(nat.xmm[i], 16, a + 0);
				hex(emu.xmm[i], 16, b + 0);
				printf("# %s: xmm%d native %s\n#   jit %s\n", what, i, a, b);
			}
		ok = false;
	}
	if (memcmp((void *)CMP_LO, guest_ptr(CMP_LO), CMP_HI - CMP_LO)) {
		for (uint64_t a = CMP_LO; a < CMP_HI; a++)
			if (*(uint8_t *)a != *guest_ptr(a)) {
				printf("# %s: memory %#llx native %02x jit %02x\n", what,
				       (unsigned long long)a, *(uint8_t *)a, *guest_ptr(a));
				break;
			}
		ok = false;
	}
	if (!ok) {
		hex(c->code, c->len, code);
		printf("# %s: code %s\n", what, code);
	}
	return ok;
}

/* ---- random inputs ---- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

/* Interesting values: edges of every operand size, and random ones. */
static uint64_t rnd_val(struct rng *r)
{
	static const uint64_t edge[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
		0xffffffff, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, ~1ull,
		0x100000000ull, 0x1f, 0x20, 0x3f, 0x40, 0xfffffffffffffff0ull,
	};
	uint64_t k = rnd(r) % 4;

	if (k == 0)
		return edge[rnd(r) % (sizeof(edge) / sizeof(edge[0]))];
	if (k == 1)
		return rnd(r) & 0xff;
	return rnd(r);
}

static void rnd_case(struct rng *r, struct hcase *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < 16; i++)
		c->in.gpr[i] = rnd_val(r);
	c->in.gpr[4] = STACK_TOP;
	c->in.gpr[3] = MEMBASE;
	c->in.rflags = (rnd(r) & 0x8d5) | 0x202;
	for (unsigned i = 0x400; i < 0x1400; i++)
		c->data[i] = (uint8_t)rnd(r);
	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 16; j += 8) {
			uint64_t v = rnd_val(r);

			memcpy(&c->in.xmm[i][j], &v, 8);
		}
}

static void emit(struct hcase *c, const void *b, unsigned n)
{
	memcpy(c->code + c->len, b, n);
	c->len += n;
}

__attribute__((unused)) static void emit1(struct hcase *c, uint8_t b)
{
	c->code[c->len++] = b;
}

#endif
