/*
 * Debug registers and the debug exception (Intel SDM vol. 3, chapter 17
 * "Debug, Branch Profile, TSC, and Intel Resource Director Technology
 * Features": 17.2 for DR0-DR7, 17.3.1 for the #DB conditions, 17.3.1.1
 * for RF; vol. 2 "MOV - Move to/from Debug Registers", "INT n/INTO/INT3/
 * INT1").
 *
 * DR7 enables up to four breakpoints (L/G bits; RW: 00 instruction, 01
 * data write, 11 data read or write; LEN: 1, 2, 8 or 4 bytes, the address
 * aligned down to it).  While any is enabled, or a single-step trap is
 * held over a MOV SS, the run loop executes one instruction at a time
 * (run.c's step()), which calls in here around each instruction:
 *
 *  - before: an instruction breakpoint matches the linear address of
 *    CS:RIP unless RFLAGS.RF is set; it is a fault, delivered with the
 *    RF image as it is (0), DR6.Bn set.
 *  - during: every data access of a page holding a data breakpoint takes
 *    the slow path (the TLB never keeps such a page, paging.c), and the
 *    slow path calls jit_dbg_access(), which notes the breakpoints hit.
 *    REP string instructions stop after the iteration that hit one.
 *  - after: the traps - data breakpoints hit (DR6.Bn) and the single-step
 *    trap (DR6.BS, when TF was set as the instruction began) - are one
 *    #DB after the instruction.  Software interrupts (INT n, INT3, INTO,
 *    INT1) clear TF on entry and take no single-step trap.  After MOV SS
 *    and POP SS the traps are held until the next instruction has run
 *    (and an instruction breakpoint on that one is not reported).
 *    SYSCALL and SYSRET trap by TF as they leave it.  Under TF a REP
 *    string instruction runs one iteration per trap (RIP stays on it).
 *
 * Faults push RF = 1 (run.c), so that returning from a fault handler
 * does not hit the instruction breakpoint again.  With CR4.DE, RW = 10
 * makes an I/O breakpoint on ports (jit_dbg_io).  MOV to DR7 with DR7.GD
 * set is a general-detect fault (DR6.BD).
 */
#include "jit/internal.h"

#define DR6_BD 0x2000u
#define DR6_BS 0x4000u
#define DR7_GD 0x2000u

/* Breakpoint n's length in bytes from DR7.LENn. */
static unsigned bp_len(const struct jit_cpu *cpu, unsigned n)
{
	static const unsigned len[4] = { 1, 2, 8, 4 };

	return len[(cpu->dr[7] >> (18 + 4 * n)) & 3];
}

static unsigned bp_rw(const struct jit_cpu *cpu, unsigned n)
{
	return (cpu->dr[7] >> (16 + 4 * n)) & 3;
}

static uint64_t bp_addr(const struct jit_cpu *cpu, unsigned n)
{
	uint64_t a = cpu->dr[n] & ~(uint64_t)(bp_len(cpu, n) - 1);

	return cpu->lma ? a : (uint32_t)a;
}

static void set_on(struct jit_cpu *cpu)
{
	cpu->dbg_on = cpu->dbg_exec || cpu->dbg_data || cpu->dbg_io || cpu->dbg_held ||
		      cpu->dbg_now;
}

/* A debug trap (DR6 bits) before the next instruction: SYSRET that sets
 * TF (it may run inside a block, where no trap is looked for), a task
 * switch to a TSS with T set. */
void jit_dbg_trap_next(struct jit_cpu *cpu, uint32_t dr6_bits)
{
	cpu->dbg_now |= dr6_bits;
	set_on(cpu);
}

void jit_dbg_step_next(struct jit_cpu *cpu)
{
	jit_dbg_trap_next(cpu, DR6_BS);
}

void jit_dbg_update(struct jit_cpu *cpu)
{
	uint8_t exec = 0, data = 0, io = 0;

	for (unsigned n = 0; n < 4; n++) {
		if (!((cpu->dr[7] >> (2 * n)) & 3))
			continue;
		switch (bp_rw(cpu, n)) {
		case 0: exec |= (uint8_t)(1u << n); break;
		case 1: case 3: data |= (uint8_t)(1u << n); break;
		default:
			if (cpu->cr4 & CR4_DE)
				io |= (uint8_t)(1u << n);
		}
	}
	cpu->dbg_exec = exec;
	cpu->dbg_data = data;
	cpu->dbg_io = io;
	set_on(cpu);
	jit_tlb_flush(cpu, true);	/* pages with data breakpoints leave the TLB */
}

bool jit_dbg_page(const struct jit_cpu *cpu, uint64_t lin)
{
	for (unsigned n = 0; n < 4; n++) {
		uint64_t a;

		if (!(cpu->dbg_data & (1u << n)))
			continue;
		a = bp_addr(cpu, n);
		if ((a >> 12) == (lin >> 12) || ((a + bp_len(cpu, n) - 1) >> 12) == (lin >> 12))
			return true;
	}
	return false;
}

void jit_dbg_access(struct jit_cpu *cpu, uint64_t lin, unsigned size, unsigned acc)
{
	if (acc & ACC_X)
		return;
	for (unsigned n = 0; n < 4; n++) {
		uint64_t a;

		if (!(cpu->dbg_data & (1u << n)))
			continue;
		if (bp_rw(cpu, n) == 1 && !(acc & ACC_W))
			continue;
		a = bp_addr(cpu, n);
		if (lin < a + bp_len(cpu, n) && a < lin + size)
			cpu->dbg_hit |= (uint8_t)(1u << n);
	}
}

/* Port I/O of [port, port+size) by IN, OUT, INS or OUTS (RW = 10 with
 * CR4.DE): a trap after the instruction, like a data breakpoint. */
void jit_dbg_io(struct jit_cpu *cpu, uint16_t port, unsigned size)
{
	for (unsigned n = 0; n < 4; n++) {
		uint64_t a = (cpu->dr[n] & 0xffff) & ~(uint64_t)(bp_len(cpu, n) - 1);

		if ((cpu->dbg_io & (1u << n)) && port < a + bp_len(cpu, n) && a < port + size)
			cpu->dbg_hit |= (uint8_t)(1u << n);
	}
}

/* The #DB of an instruction breakpoint at CS:RIP, before the instruction
 * is fetched; true when one was delivered. */
bool jit_dbg_before(struct jit_cpu *cpu)
{
	uint64_t lin = cpu->mode64 ? cpu->rip : (uint32_t)(cpu->seg[SEG_CS].base + cpu->rip);
	unsigned hit = 0;

	cpu->dbg_hit = 0;
	if (cpu->dbg_now) {
		cpu->dr[6] |= cpu->dbg_now;
		cpu->dbg_now = 0;
		set_on(cpu);
		jit_deliver(cpu, EXC_DB, INT_EXC, false, 0, cpu->rip);
		return true;
	}
	if (!cpu->dbg_exec || (cpu->rflags & F_RF) || cpu->dbg_after_ss)
		return false;
	for (unsigned n = 0; n < 4; n++)
		if ((cpu->dbg_exec & (1u << n)) && lin == bp_addr(cpu, n))
			hit |= 1u << n;
	if (!hit)
		return false;
	cpu->dr[6] = (cpu->dr[6] & ~0xfull) | hit;
	jit_deliver(cpu, EXC_DB, INT_EXC, false, 0, cpu->rip);
	return true;
}

static bool soft_int(const struct jit_insn *in)
{
	return in->map == MAP_1B && (in->op == 0xcc || in->op == 0xcd || in->op == 0xf1 ||
				     in->op == 0xce);
}

/* SYSCALL and SYSRET take the single-step trap by TF as they leave it
 * (SFMASK may clear it), not as they found it: a user's TF must not trap
 * on the kernel's first instruction.  SYSRET queues its own trap
 * (jit_dbg_step_next), since it may run inside a block. */
static bool tf_after(const struct jit_cpu *cpu, const struct jit_insn *in, bool tf)
{
	if (in->map == MAP_0F && in->op == 0x05)
		return cpu->rflags & F_TF;
	if (in->map == MAP_0F && in->op == 0x07)
		return false;
	return tf;
}

static bool loads_ss(const struct jit_insn *in)
{
	return in->map == MAP_1B && (in->op == 0x17 || (in->op == 0x8e && (in->reg & 7) == SEG_SS));
}

/* The traps of the instruction that just completed (RIP is past it, or
 * still at it for an unfinished REP string instruction: old_rip). */
void jit_dbg_after(struct jit_cpu *cpu, const struct jit_insn *in, bool tf, uint64_t old_rip)
{
	uint32_t bits;

	tf = tf_after(cpu, in, tf);
	bits = cpu->dbg_hit | (tf && !soft_int(in) ? DR6_BS : 0);
	cpu->dbg_hit = 0;
	cpu->dbg_after_ss = false;
	if (loads_ss(in)) {
		cpu->dbg_held |= bits;
		cpu->dbg_after_ss = true;
		set_on(cpu);
		return;
	}
	bits |= cpu->dbg_held;
	cpu->dbg_held = 0;
	set_on(cpu);
	if (!bits)
		return;
	if (bits & 0xf)
		cpu->dr[6] = (cpu->dr[6] & ~0xfull) | bits;
	else
		cpu->dr[6] |= bits;
	if (cpu->rip == old_rip && in->rep && !soft_int(in))
		cpu->rflags |= F_RF;	/* trapped between iterations of a REP */
	jit_deliver(cpu, EXC_DB, INT_EXC, false, 0, cpu->rip);
}

/* 0F 21/23: MOV r,DRn / MOV DRn,r (the caller checked CPL 0) */
void jit_dbg_mov(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned n = in->reg, size = cpu->mode64 ? 8 : 4;
	uint64_t v;

	if (n > 7 || ((n == 4 || n == 5) && (cpu->cr4 & CR4_DE)))
		jit_ud(cpu, in);
	if (cpu->dr[7] & DR7_GD) {
		cpu->dr[6] = (cpu->dr[6] & ~0xfull) | DR6_BD;
		cpu->dr[7] &= ~(uint64_t)DR7_GD;
		jit_raise(cpu, EXC_DB, 0);
	}
	if (n == 4 || n == 5)
		n += 2;
	if (in->op == 0x21) {
		reg_write(cpu, in, in->rm, size, cpu->dr[n]);
		return;
	}
	v = reg_read(cpu, in, in->rm, size);
	if (n >= 6 && (v >> 32))
		jit_raise(cpu, EXC_GP, 0);
	if (n == 6)
		cpu->dr[6] = (v & 0xe00f) | 0xffff0ff0;
	else if (n == 7)
		cpu->dr[7] = (v & 0xffff23ff) | 0x400;
	else
		cpu->dr[n] = v;
	if (n != 6)
		jit_dbg_update(cpu);
}
