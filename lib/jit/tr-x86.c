/*
 * The translator: a decoded block (block.c) of 64-bit code becomes x86-64
 * host code.
 *
 * Why and how.  The interpreter pays, for every guest instruction, an
 * indirect call whose target the host cannot predict, the bookkeeping of
 * RIP and the instruction count, and the generic decisions (operand size,
 * register or memory) that the block builder could only partly take off.
 * Here a block is translated once, when it has run a few times, into one
 * host function in which every decision is a constant:
 *
 *  - Host RBX holds the vCPU for the whole block.  The guest registers a
 *    block uses most (cache_pick()) live in host registers (RBP, R12-R15,
 *    R9-R11) from the block's entry: loaded there, written back to struct
 *    jit_cpu before anything that leaves the block, calls C (a handler, the
 *    slow memory path: both may fault and unwind, and read the registers)
 *    or jumps back to the block's start, and loaded again after a handler.
 *    The others, and RFLAGS, stay in struct jit_cpu.  Translated code runs
 *    in one frame set up by the prologue of the block entered from C (the
 *    callee-saved registers it uses); blocks chain inside that frame.
 *  - The frequent instructions (MOV, MOVZX/MOVSX, LEA, the ALU group,
 *    TEST, INC/DEC, shifts and rotates, IMUL, PUSH/POP, NOP) are emitted
 *    inline (tr-alu.c, tr-mem.c), register forms on the cached host
 *    registers in place.  Arithmetic runs on the host ALU, as in alu.c,
 *    so the results, undefined flags included, are those of the
 *    interpreter.  The guest's arithmetic flags stay where an operation
 *    left them, in the host flags, and are saved (LAHF, SETO) only before
 *    code that changes those, and merged into RFLAGS only on the way out
 *    of the block, before a handler and on a memory access's slow path;
 *    Jcc, SETcc, CMOVcc and ADC/SBB read them where they are (tr-flags.c
 *    tells the story).
 *  - Memory operands go through the TLB inline: index, tag (of the page
 *    of the last byte, so that a page-crossing access misses), rights,
 *    host pointer, then one host load or store.  Anything else
 *    (a miss, MMIO, a page-crossing access, a store into the page of this
 *    block's own code) calls back into C (jit_tr_read/jit_tr_write), which
 *    runs the interpreter's access with its faults.
 *  - Every other instruction calls its interpreter handler with the
 *    decoded instruction, exactly as the block loop does (RIP, next RIP
 *    and the instruction count stored first).
 *  - Block ends: Jcc, JMP, CALL and RET are emitted inline and leave with
 *    the new RIP; a handler that branched or a store that hit the block's
 *    own code leaves at once.
 *
 * Precise exceptions: before anything that can fault (the slow memory
 * path, a handler) the exact RIP of the instruction and the count of the
 * instructions retired so far are stored, and an instruction changes no
 * guest state before its last faulting access: loads come first, the
 * store is the last thing an instruction does but for the stack pointer
 * update of PUSH and CALL, which follows it.  A fault unwinds (longjmp)
 * straight out of the host code.
 *
 * Translated code depends on the RIP, CPL and code size it was made for;
 * block.c keys it so and drops it with its block (same bytes check).
 */
#include <stddef.h>

#include "jit/internal.h"

/* Host registers that cache guest registers, most used first: the
 * callee-saved ones survive the calls into C; R9-R11 are reloaded after
 * each call. */
static const uint8_t cache_regs[] = { RBP, R12, R13, R14, R15, R9, R10, R11 };
#define CALLER_SAVED ((1u << R9) | (1u << R10) | (1u << R11))

/* The whole guest register r: its host register or its slot in memory. */
struct jit_tr_rm jit_tr_gpr(const struct jit_tr *t, unsigned r)
{
	if (t->host[r] >= 0)
		return jit_tr_r((unsigned)t->host[r]);
	return jit_tr_m(RBX, OFF_GPR(r));
}

/* An instruction is about to change the guest register r through jit_tr_gpr(). */
void jit_tr_gpr_written(struct jit_tr *t, unsigned r)
{
	if (t->host[r] >= 0)
		t->dirty |= (uint16_t)(1u << r);
}

/* The guest register r as an operand of size bytes (AH..BH without REX:
 * never cached, see cache_pick()). */
struct jit_tr_rm jit_tr_greg(const struct jit_tr *t, const struct jit_insn *in, unsigned r,
			     unsigned size)
{
	if (size == 1 && !in->rex && r >= 4 && r < 8)
		return jit_tr_m(RBX, OFF_GPR(r - 4) + 1);
	return jit_tr_gpr(t, r);
}

void jit_tr_greg_load(struct jit_tr *t, const struct jit_insn *in, unsigned hreg, unsigned r,
		      unsigned size)
{
	jit_tr_ld(t, size, hreg, jit_tr_greg(t, in, r, size));
}

/* Write a result as reg_write() does: 32-bit results zero-extend. */
void jit_tr_greg_store(struct jit_tr *t, const struct jit_insn *in, unsigned hreg, unsigned r,
		       unsigned size)
{
	bool high = size == 1 && !in->rex && r >= 4 && r < 8;

	if (!high && t->host[r] >= 0) {
		jit_tr_st(t, size, hreg, jit_tr_r((unsigned)t->host[r]));	/* mov r32 zero-extends */
		t->dirty |= (uint16_t)(1u << r);
		return;
	}
	if (size == 4) {
		jit_tr_ins(t, 4, 0x8b, hreg, jit_tr_r(hreg));		/* zero-extend, then one store */
		jit_tr_st(t, 8, hreg, jit_tr_m(RBX, OFF_GPR(r)));
		return;
	}
	jit_tr_st(t, size, hreg, jit_tr_greg(t, in, r, size));
}

/* Store the cached guest registers that changed (before leaving the block
 * or calling C, which may fault or read them); they stay cached. */
static void cache_writeback(struct jit_tr *t)
{
	for (unsigned r = 0; r < 16; r++)
		if (t->dirty & (1u << r))
			jit_tr_st(t, 8, (unsigned)t->host[r], jit_tr_m(RBX, OFF_GPR(r)));
}

/* Load the cached guest registers (all, or those in caller-saved host
 * registers after a call into C). */
void jit_tr_cache_load(struct jit_tr *t, bool after_call)
{
	for (unsigned r = 0; r < 16; r++)
		if ((t->cached & (1u << r)) &&
		    (!after_call || (CALLER_SAVED & (1u << t->host[r]))))
			jit_tr_ld(t, 8, (unsigned)t->host[r], jit_tr_m(RBX, OFF_GPR(r)));
}

void jit_tr_pend_flush(struct jit_tr *t, int sign)
{
	if (t->pend)
		jit_tr_ins8(t, 8, 0x83, sign > 0 ? 0 : 5, jit_tr_m(RBX, OFF_ICOUNT), (uint8_t)t->pend);
}

/* Return to C: through the block's epilogue. */
static void leave(struct jit_tr *t)
{
	jit_tr_jump_to(&t->b, -1, t->epi);
}

/* Leave the block with RIP = RAX (RFLAGS exact: jit_tr_flags_out()). */
static void exit_rax(struct jit_tr *t)
{
	cache_writeback(t);
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_RIP));
	jit_tr_pend_flush(t, 1);
	leave(t);
}

/*
 * A pending interrupt stops chained code only when RFLAGS.IF lets it in.
 * With IF clear it waits for the STI, POPF or IRET that sets IF, each of
 * which ends its block (STI after the instruction in its shadow): the
 * next entry checks again, or the run loop does.  Code that runs with
 * interrupts off while one is pending (a device's, raised during
 * get_user_pages_fast) went back to the run loop at every block.  (IF is
 * in cpu->rflags at block boundaries: only handlers change it.)  bail:
 * the jump to patch.
 */
static void irq_check(struct jit_tr *t, uint8_t **bail)
{
	uint8_t *none;

	jit_tr_ins8(t, 1, 0x80, 7, jit_tr_m(RBX, OFF_IRQ), 0);
	none = jit_tr_jump(&t->b, 4);					/* je */
	jit_tr_ins8(t, 1, 0xf6, 0, jit_tr_m(RBX, OFF_RFLAGS + 1), F_IF >> 8);	/* test */
	*bail = jit_tr_jump(&t->b, 5);
	jit_tr_here(&t->b, none);
}

/*
 * Signals and interrupts, as a chained entry checks them: events and
 * irq_level in one compare of the word they share; only when it is not
 * 0, out of line, each as before (a pending interrupt with IF clear goes
 * on).  bail: the jumps to patch to the exit (2); body: the jump from the
 * out-of-line code back to the block's code, to patch where that goes on
 * (jit_tr_here()).  The out-of-line code is emitted by attn_slow() after
 * the caller's jump over it (or before, attn NULL, for a backward jne).
 */
static uint8_t *attn_check(struct jit_tr *t)
{
	jit_tr_ins8(t, 8, 0x83, 7, jit_tr_m(RBX, OFF_EVENTS), 0);	/* cmp qword, 0 */
	return jit_tr_jump(&t->b, 5);					/* jne */
}

static uint8_t *attn_slow(struct jit_tr *t, uint8_t *attn, uint8_t **bail)
{
	jit_tr_here(&t->b, attn);
	jit_tr_ins8(t, 4, 0x83, 7, jit_tr_m(RBX, OFF_EVENTS), 0);
	bail[0] = jit_tr_jump(&t->b, 5);
	irq_check(t, &bail[1]);
	return jit_tr_jump(&t->b, -1);
}

/* A jump back to the block's own start: on into the body (the guest
 * registers still in their host registers, and in memory) unless a signal is pending or
 * the budget is spent, as a chained entry checks. */
static void loop_back(struct jit_tr *t)
{
	uint8_t *bail[3], *attn;
	unsigned pend = t->pend;

	jit_tr_flags_out_loop(t);	/* and with RFLAGS exact */
	cache_writeback(t);	/* the body was translated with none dirty at its start */
	jit_tr_pend_flush(t, 1);
	t->pend = 0;
	jit_tr_ld(t, 8, RAX, jit_tr_m(RBX, OFF_ICOUNT));
	jit_tr_ins(t, 8, 0x3b, RAX, jit_tr_m(RBX, OFF_CHAIN_END));
	bail[0] = jit_tr_jump(&t->b, 3);		/* jae */
	attn = attn_check(t);
	jit_tr_jump_to(&t->b, -1, t->body);
	jit_tr_point(&t->b, attn_slow(t, attn, &bail[1]), t->body);	/* on from there too */
	for (int i = 0; i < 3; i++)
		jit_tr_here(&t->b, bail[i]);
	jit_tr_exit_to(t, t->entry_rip);
	t->pend = pend;
}

void jit_tr_exit_to(struct jit_tr *t, uint64_t rip)
{
	jit_tr_flags_out(t);
	jit_tr_mov_imm(&t->b, RAX, rip);
	exit_rax(t);
}

/*
 * Leave the block for RIP rip through a JMP that block.c points at the
 * next block's chained entry the first time the exit is taken (the slot
 * says where the JMP's displacement is); until then the JMP goes to the
 * code just after it, which returns asking for the link (cpu->tr_link).
 * A jump back to the block's own start loops inside it.
 */
void jit_tr_exit_link(struct jit_tr *t, uint64_t rip)
{
	struct jit_tr_slot *sl;
	uint8_t *site;

	if (rip == t->entry_rip && t->body) {		/* a loop: straight back */
		loop_back(t);
		return;
	}
	if (!t->nslot) {
		jit_tr_exit_to(t, rip);
		return;
	}
	sl = t->slot++;
	t->nslot--;
	sl->target = rip;
	sl->cpl = t->cpl;
	jit_tr_flags_out(t);
	cache_writeback(t);
	jit_tr_pend_flush(t, 1);
	jit_tr_mov_imm(&t->b, RSI, (uint64_t)(uintptr_t)sl);	/* for chain_entry() */
	site = jit_tr_jump(&t->b, -1);
	jit_tr_here(&t->b, site);			/* unlinked: falls through */
	sl->entry = site;
	jit_tr_st(t, 8, RSI, jit_tr_m(RBX, OFF_TR_LINK));
	jit_tr_mov_imm(&t->b, RAX, rip);
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_RIP));
	leave(t);
}

/* The same on a path out of line, for the translator's state at: the
 * code goes on at t->b, and takes the exit slot from t. */
void jit_tr_exit_link_out(struct jit_tr *t, const struct jit_tr *at, uint64_t rip)
{
	struct jit_tr s = *at;

	s.b = t->b;
	s.slot = t->slot;
	s.nslot = t->nslot;
	jit_tr_exit_link(&s, rip);
	t->b = s.b;
	t->slot = s.slot;
	t->nslot = s.nslot;
}

/*
 * Leave the block for the RIP in RAX, known only now (RET): straight into
 * the next block when the table of chained entries has it for this RIP
 * and CPL.  Its chained entry checks the TLB generation as for a linked
 * exit, and rechecks the mapping when it moved on (the table used to
 * keep a generation of its own: after each flush, every RET went through
 * the run loop until the run loop had filled the table again).
 */
static void exit_dyn_cpl(struct jit_tr *t, unsigned cpl);

void jit_tr_exit_dyn(struct jit_tr *t)
{
	exit_dyn_cpl(t, t->cpl);
}

/* The same, into code at privilege level cpl. */
static void exit_dyn_cpl(struct jit_tr *t, unsigned cpl)
{
	uint8_t *miss;

	jit_tr_flags_out(t);				/* keeps RAX */
	cache_writeback(t);
	jit_tr_pend_flush(t, 1);
	jit_tr_ins(t, 8, 0x8b, RCX, jit_tr_r(RAX));
	jit_tr_ins8(t, 8, 0xc1, 5, jit_tr_r(RCX), 12);		/* shr rcx, 12 */
	jit_tr_ins(t, 8, 0x31, RAX, jit_tr_r(RCX));			/* xor rcx, rax */
	jit_tr_ins32(t, 4, 0x81, 4, jit_tr_r(RCX), JIT_JC_SIZE - 1);
	jit_tr_ins8(t, 4, 0xc1, 4, jit_tr_r(RCX), 4);		/* shl ecx, 4 */
	_Static_assert(sizeof(struct jit_jc) == 16, "jc entries are 16 bytes");
	jit_tr_mov_imm(&t->b, RDX, (uint64_t)(uintptr_t)t->jc);
	jit_tr_ins(t, 8, 0x01, RCX, jit_tr_r(RDX));			/* add rdx, rcx */
	if (cpl) {					/* the key: RIP ^ CPL << 48 */
		jit_tr_mov_imm(&t->b, RCX, jit_jc_key(0, cpl));
		jit_tr_ins(t, 8, 0x31, RAX, jit_tr_r(RCX));		/* xor rcx, rax */
		jit_tr_ins(t, 8, 0x3b, RCX, jit_tr_m(RDX, offsetof(struct jit_jc, key)));
	} else {
		jit_tr_ins(t, 8, 0x3b, RAX, jit_tr_m(RDX, offsetof(struct jit_jc, key)));
	}
	miss = jit_tr_jump(&t->b, 5);
	jit_tr_ins(t, 4, 0x31, RSI, jit_tr_r(RSI));	/* no exit slot (chain_entry()) */
	jit_tr_ins(t, 4, 0xff, 4, jit_tr_m(RDX, offsetof(struct jit_jc, entry)));	/* jmp [rdx] */
	jit_tr_here(&t->b, miss);
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_RIP));
	leave(t);
}

/* The state a handler or a fault expects: RIP, the retired count and
 * RFLAGS (tr-flags.c: on a path out of line the pending flags are merged,
 * and stay pending on the main path). */
void jit_tr_sync_state(struct jit_tr *t)
{
	jit_tr_flags_out(t);
	cache_writeback(t);
	jit_tr_mov_imm(&t->b, RAX, t->rip);
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_RIP));
	jit_tr_pend_flush(t, 1);
	jit_tr_mov_imm(&t->b, RAX, t->code_lo);		/* this block's code, for smc_note() */
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_SMC_LO));
	jit_tr_mov_imm(&t->b, RAX, t->code_hi);
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_SMC_HI));
}

/* Which inline form an instruction has, if any. */
static int tr_insn(struct jit_tr *t, const struct jit_insn *in)
{
	uint8_t o = in->op;

	if (in->map == MAP_0F) {
		if ((o & 0xf0) == 0x80)
			return jit_tr_branch(t, in);
		if (o == 0xb6 || o == 0xb7 || o == 0xbe || o == 0xbf)
			return jit_tr_movx(t, in);
		if (o == 0xaf)
			return jit_tr_imul(t, in);
		if ((o >= 0x18 && o <= 0x1f) || o == 0x0d)
			return TR_OK;			/* NOP r/m, PREFETCHh, PREFETCHW: hints */
		if ((o & 0xf0) == 0x40)
			return jit_tr_cmov(t, in);
		if ((o & 0xf0) == 0x90)
			return jit_tr_setcc(t, in);
		if (o >= 0xc8 && o <= 0xcf)
			return jit_tr_bswap(t, in);
		if (o == 0xba)
			return jit_tr_grp8(t, in);
		if (o == 0xb0 || o == 0xb1)
			return jit_tr_cmpxchg(t, in);
		if (o == 0xc0 || o == 0xc1)
			return jit_tr_xadd(t, in);
		if (o == 0xa3 || o == 0xab || o == 0xb3 || o == 0xbb)
			return jit_tr_bt(t, in);
		if (o == 0xbc || o == 0xbd || o == 0xb8)
			return jit_tr_bitscan(t, in);
		return jit_tr_sse(t, in);
	}
	if (in->map == MAP_0F38)
		return jit_tr_sse(t, in);
	if (in->map != MAP_1B)
		return TR_NO;
	if (in->mod != 3 && !in->lock && ((o < 0x40 && (o & 7) < 2) || (o >= 0x80 && o <= 0x83) ||
	    ((o == 0xfe || o == 0xff) && (in->reg & 7) < 2) ||
	    ((o == 0xf6 || o == 0xf7) && ((in->reg & 7) == 2 || (in->reg & 7) == 3))) &&
	    !((o < 0x40 && (o >> 3) == ALU_CMP) || (o >= 0x80 && o <= 0x83 && (in->reg & 7) == ALU_CMP)))
		return jit_tr_rmw(t, in);
	if (o < 0x40 && (o & 7) < 6)
		return jit_tr_alu(t, in);
	if (o >= 0x50 && o < 0x60)
		return jit_tr_pushpop(t, in);
	if (o == 0x68 || o == 0x6a)
		return jit_tr_push_imm(t, in);
	if (o == 0x9c)
		return jit_tr_pushf(t, in);
	if (o == 0xfa)
		return jit_tr_cli(t, in);
	if (o == 0x98 || o == 0x99)
		return jit_tr_cwd(t, in);
	if ((o & 0xf0) == 0x70 || o == 0xe8 || o == 0xe9 || o == 0xeb || o == 0xc3 || o == 0xc2)
		return jit_tr_branch(t, in);
	if ((o >= 0x80 && o <= 0x85) || o == 0xa8 || o == 0xa9)
		return jit_tr_alu(t, in);
	if (o == 0xf6 || o == 0xf7)
		return jit_tr_grp3(t, in);
	if ((o >= 0x88 && o <= 0x8b) || o == 0xc6 || o == 0xc7)
		return jit_tr_mov(t, in);
	if (o >= 0xb0 && o < 0xc0)
		return jit_tr_mov_r_imm(t, in);
	if (o == 0x8d)
		return jit_tr_lea(t, in);
	if (o == 0x63 && in->opsize == 8)
		return jit_tr_movx(t, in);
	if (o == 0xc0 || o == 0xc1 || (o >= 0xd0 && o <= 0xd3))
		return jit_tr_grp2(t, in);
	if (o == 0x69 || o == 0x6b)
		return jit_tr_imul(t, in);
	if (o == 0xff && ((in->reg & 7) == 2 || (in->reg & 7) == 4))
		return jit_tr_indirect(t, in);
	if (o == 0xfe || o == 0xff)
		return jit_tr_incdec(t, in);
	if (o == 0x90 && !in->rex) {			/* NOP, PAUSE */
		if (in->rep == 0xf3)
			jit_tr_byte(&t->b, 0xf3), jit_tr_byte(&t->b, 0x90);	/* pause */
		return TR_OK;
	}
	if ((o >= 0xa4 && o <= 0xa7) || (o >= 0xaa && o <= 0xaf)) {
		jit_tr_flags_sync(t);			/* RFLAGS exact for tr-str.c */
		return jit_tr_string(t, in);		/* tr-str.c */
	}
	return TR_NO;
}

/* The call of an instruction's interpreter handler, with the state it
 * expects. */
static void call_handler(struct jit_tr *t, const struct jit_binsn *bi)
{
	jit_tr_flags_sync(t);			/* the handler may read and change RFLAGS */
	jit_tr_sync_state(t);
	t->pend = 0;
	jit_tr_mov_imm(&t->b, RAX, t->next);
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_NEXT));
	jit_tr_ins(t, 8, 0x8b, RDI, jit_tr_r(RBX));
	jit_tr_mov_imm(&t->b, RSI, (uint64_t)(uintptr_t)&bi->in);
	jit_tr_call(&t->b, (const void *)bi->fn);
	t->pend = 1;
	t->dirty = 0;
	t->sse_ok = false;		/* it may have written CR0 or CR4 */
}

/* An instruction through its interpreter handler, as the block loop runs
 * it; leaves when it branched or wrote this block's code. */
static void tr_call(struct jit_tr *t, const struct jit_binsn *bi, bool last)
{
	uint8_t *e1, *cont;

	call_handler(t, bi);
	if (!last)
		jit_tr_cache_load(t, false);		/* the handler may have changed any */
	jit_tr_ld(t, 8, RAX, jit_tr_m(RBX, OFF_NEXT));
	if (last) {
		exit_rax(t);
		return;
	}
	jit_tr_mov_imm(&t->b, RCX, t->next);
	jit_tr_ins(t, 8, 0x3b, RAX, jit_tr_r(RCX));
	e1 = jit_tr_jump(&t->b, 5);
	jit_tr_ins8(t, 1, 0x80, 7, jit_tr_m(RBX, OFF_SMC_HIT), 0);
	cont = jit_tr_jump(&t->b, 4);
	jit_tr_here(&t->b, e1);
	exit_rax(t);
	jit_tr_here(&t->b, cont);
}

/*
 * SYSCALL, and SYSRET to 64-bit code (REX.W), leave for a RIP known only
 * when they ran, in 64-bit code at a CPL known now (0, 3): straight on
 * into the next block through the table of chained entries, as RET
 * does, unless a trap is due (TF or RF as they leave them, a trap
 * SYSRET queued: the run loop takes those).  Every system call used to
 * come back to the run loop twice.  POPF (a spin_unlock_irqrestore) goes
 * on linked the same way; the next block's entry takes an interrupt its
 * IF lets in (irq_check()).  cpl: where the instruction goes, -1 for any
 * other instruction.
 */
static int fast_sys_cpl(const struct jit_insn *in)
{
	if (in->map != MAP_0F)
		return -1;
	if (in->op == 0x05)
		return 0;
	return in->op == 0x07 && in->opsize == 8 ? 3 : -1;
}

/* After a handler that may leave TF or RF set or queue a debug trap: the
 * two jumps to the run loop's path, taken when one of those is due. */
static void trap_check(struct jit_tr *t, uint8_t **trap)
{
	jit_tr_ins32(t, 4, 0xf7, 0, jit_tr_m(RBX, OFF_RFLAGS), F_TF | F_RF);	/* test */
	trap[0] = jit_tr_jump(&t->b, 5);
	jit_tr_ins8(t, 1, 0x80, 7, jit_tr_m(RBX, OFF_DBG_ON), 0);
	trap[1] = jit_tr_jump(&t->b, 5);
}

/* The last instruction of a block through its handler, then on to the
 * next block: through the table of chained entries for cpl (cpl >= 0:
 * SYSCALL, SYSRET), else linked to the instruction after it (POPF);
 * with a trap due, to the run loop. */
static void tr_call_on(struct jit_tr *t, const struct jit_binsn *bi, int cpl)
{
	uint8_t *trap[2];
	unsigned pend;

	call_handler(t, bi);
	jit_tr_ld(t, 8, RAX, jit_tr_m(RBX, OFF_NEXT));
	trap_check(t, trap);
	pend = t->pend;
	if (cpl >= 0)
		exit_dyn_cpl(t, (unsigned)cpl);
	else
		jit_tr_exit_link(t, t->next);
	t->pend = pend;
	for (int i = 0; i < 2; i++)
		jit_tr_here(&t->b, trap[i]);
	exit_rax(t);
}

/*
 * Chained entries compare a block of up to IMM_BYTES code bytes with
 * immediates in their own code, 8 bytes at a time, and a longer one with
 * a copy, 16 bytes at a time: the copy is one more cache line to fetch at
 * each entry, and with a few thousand hot blocks it was rarely in the L1
 * cache.
 */
#define IMM_BYTES 64

/*
 * A copy of the code bytes at [code, code + nbytes) (16 or more) for
 * chain_entry() to compare with 16 at a time: 16-byte chunks at 16-byte
 * alignment, the last one the code's last 16 bytes.  Returns it, NULL
 * when the buffer is full.
 */
static const uint8_t *code_copy(struct jit_tr_buf *b, const uint8_t *code, unsigned nbytes)
{
	const uint8_t *copy;

	while ((uintptr_t)b->p & 15 && !b->full)
		jit_tr_byte(b, 0xcc);
	copy = b->p;
	for (unsigned i = 0; i < nbytes; i += 16) {
		unsigned at = i + 16 <= nbytes ? i : nbytes - 16;

		for (unsigned k = 0; k < 16; k++)
			jit_tr_byte(b, code[at + k]);
	}
	return b->full ? NULL : copy;
}

/* An instruction whose ModRM names a RIP-relative operand at target:
 * the bytes before ModRM, the ModRM's reg field, the displacement. */
static void rip_rel(struct jit_tr *t, const uint8_t *pre, unsigned npre, unsigned reg,
		    const void *target)
{
	int32_t rel;

	for (unsigned i = 0; i < npre; i++)
		jit_tr_byte(&t->b, pre[i]);
	jit_tr_byte(&t->b, (uint8_t)((reg & 7) << 3 | 5));
	rel = (int32_t)((const uint8_t *)target - (t->b.p + 4));
	jit_tr_u32(&t->b, (uint32_t)rel);
}

/* MOV reg, imm64 in its 10-byte form whatever v is (jit_tr_mov_imm()
 * picks shorter ones): returns the immediate's address, to patch. */
static uint8_t *mov_imm64(struct jit_tr_buf *b, unsigned reg, uint64_t v)
{
	uint8_t *imm;

	jit_tr_byte(b, (uint8_t)(0x48 | (reg >> 3)));	/* REX.W (.B) */
	jit_tr_byte(b, (uint8_t)(0xb8 | (reg & 7)));
	imm = b->p;
	jit_tr_u64(b, v);
	return imm;
}

/*
 * The entry from another block (exit_link, or exit_dyn's table): go on
 * only while the code bytes are those translated (block.c's same_code();
 * compared here for nbytes > 0, else the block's pages are tracked,
 * track.c, and a write there turns the generation off), no signal
 * is pending (an interrupt only with RFLAGS.IF set, irq_check())
 * and the budget allows a whole block; otherwise
 * return to the run loop at this block's start.  The exit that jumped
 * here passes its slot in RSI (0 from the table): a return to the run
 * loop leaves it in cpu->tr_link, so that block.c points the exit at the
 * block it finds here now (the one decoded again after this one's bytes
 * changed: kernel code patching left exits jumping here, to fail the
 * bytes check, forever).  When the TLB generation moved on since block.c
 * last marked this entry (a flush that may have remapped linked code),
 * jit_chain_recheck() looks CS:RIP up as the run loop would and, when it
 * still maps here, marks the entry good and lets it go on.
 * A jump from the block back to its own
 * start (a loop, loop_back()) checks signals and budget only: its bytes can change
 * only through its own stores, which leave the block (smc_check), or
 * through another agent's, which a processor need not see before it
 * serializes (SDM vol. 3, 8.1.3 on cross-modifying code).
 *
 * The out-of-line part (the recheck, the exit, the signal checks) comes
 * first, so that the checks fall through into the body: returns the
 * entry, after that part.  The generation the entry accepts is the
 * immediate of its first instruction, which block.c patches (jit_gen_set()):
 * read from memory, it was a data cache miss at many entries, and it
 * changes a few thousand times per 100 million guest instructions once
 * booted.  The copy of the code is read RIP-relative (it precedes the
 * code); events and irq_level are tested in one compare (attn_check()).
 */
static uint8_t *chain_entry(struct jit_tr *t, const uint8_t *code, unsigned nbytes,
			    const uint8_t *copy)
{
	uint8_t *checks_fix, *body_fix, *bail[2], *exit, *regen, *attn, *entry, *gen_arg;
	unsigned i;
	uint64_t q;

	/* the generation moved on: look CS:RIP up again, and go on when it
	 * still maps here */
	regen = t->b.p;
	jit_tr_st(t, 8, RSI, jit_tr_m(RBX, OFF_TR_LINK));
	jit_tr_mov_imm(&t->b, RAX, t->rip);
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_RIP));	/* for a #PF of the fetch */
	jit_tr_ins(t, 8, 0x8b, RDI, jit_tr_r(RBX));
	jit_tr_mov_imm(&t->b, RSI, (uint64_t)(uintptr_t)t->owner);
	gen_arg = mov_imm64(&t->b, RDX, 0);		/* the entry's generation, below */
	jit_tr_call(&t->b, (const void *)jit_chain_recheck);
	jit_tr_ld(t, 8, RSI, jit_tr_m(RBX, OFF_TR_LINK));	/* the slot, 0 when it went on */
	jit_tr_ins(t, 1, 0x84, RAX, jit_tr_r(RAX));	/* test al, al */
	checks_fix = jit_tr_jump(&t->b, 5);		/* jnz checks */
	/* a check failed: back to the run loop at this block's start */
	exit = t->b.p;
	jit_tr_st(t, 8, RSI, jit_tr_m(RBX, OFF_TR_LINK));
	jit_tr_exit_to(t, t->rip);			/* pend is 0 here */
	/* events or irq_level set (the entry's last compare) */
	attn = t->b.p;
	body_fix = attn_slow(t, NULL, bail);
	jit_tr_point(&t->b, bail[0], exit);
	jit_tr_point(&t->b, bail[1], exit);

	entry = t->b.p;
	t->gen = mov_imm64(&t->b, RAX, JIT_GEN_NONE);	/* until block.c's mark() */
	if (!t->b.full)
		memcpy(gen_arg, &t->gen, 8);
	jit_tr_ins(t, 8, 0x3b, RAX, jit_tr_m(RBX, OFF_TLB_GEN));
	jit_tr_jump_to(&t->b, 5, regen);
	jit_tr_here(&t->b, checks_fix);
	if (nbytes)
		jit_tr_mov_imm(&t->b, RDX, (uint64_t)(uintptr_t)code);
	if (copy) {			/* 16 bytes at a time against the copy */
		for (i = 0; i < nbytes; i += 16) {
			unsigned at = i + 16 <= nbytes ? i : nbytes - 16, x = i ? 0 : 1;

			jit_tr_byte(&t->b, 0xf3);			/* movdqu xmm, [rdx + at] */
			jit_tr_ins(t, 4, 0x0f6f, x, jit_tr_m(RDX, (int32_t)at));
			rip_rel(t, (const uint8_t[]){ 0x66, 0x0f, 0x74 }, 3, x, copy + i);	/* pcmpeqb */
			if (i)
				jit_tr_ins(t, 2, 0x0fdb, 1, jit_tr_r(0));	/* pand xmm1, xmm0 */
		}
		jit_tr_ins(t, 2, 0x0fd7, RCX, jit_tr_r(1));		/* pmovmskb ecx, xmm1 */
		jit_tr_ins32(t, 4, 0x81, 7, jit_tr_r(RCX), 0xffff);
		jit_tr_jump_to(&t->b, 5, exit);
		nbytes = 0;
	}
	for (i = 0; i + 8 <= nbytes || (i < nbytes && nbytes >= 8); i += 8) {
		unsigned at = i + 8 <= nbytes ? i : nbytes - 8;

		memcpy(&q, code + at, 8);
		jit_tr_mov_imm(&t->b, RAX, q);
		jit_tr_ins(t, 8, 0x3b, RAX, jit_tr_m(RDX, (int32_t)at));
		jit_tr_jump_to(&t->b, 5, exit);
	}
	if (i < nbytes) {		/* blocks under 8 bytes: two compares, maybe overlapping */
		unsigned w = nbytes >= 4 ? 4 : nbytes >= 2 ? 2 : 1;

		for (unsigned at = 0;; at = nbytes - w) {
			uint32_t v = 0;

			memcpy(&v, code + at, w);
			if (w == 1) {
				jit_tr_ins8(t, 1, 0x80, 7, jit_tr_m(RDX, (int32_t)at), (uint8_t)v);
			} else {
				jit_tr_ins(t, w, 0x81, 7, jit_tr_m(RDX, (int32_t)at));
				jit_tr_byte(&t->b, (uint8_t)v);
				jit_tr_byte(&t->b, (uint8_t)(v >> 8));
				if (w == 4) {
					jit_tr_byte(&t->b, (uint8_t)(v >> 16));
					jit_tr_byte(&t->b, (uint8_t)(v >> 24));
				}
			}
			jit_tr_jump_to(&t->b, 5, exit);
			if (at == nbytes - w)
				break;
		}
	}
	jit_tr_ld(t, 8, RAX, jit_tr_m(RBX, OFF_ICOUNT));
	jit_tr_ins(t, 8, 0x3b, RAX, jit_tr_m(RBX, OFF_CHAIN_END));
	jit_tr_jump_to(&t->b, 3, exit);				/* jae */
	jit_tr_ins8(t, 8, 0x83, 7, jit_tr_m(RBX, OFF_EVENTS), 0);	/* events, irq_level */
	jit_tr_jump_to(&t->b, 5, attn);
	jit_tr_here(&t->b, body_fix);			/* the body follows */
	return entry;
}

/*
 * Does the instruction's code keep the guest's flags in the host flags
 * (tr-flags.c)?  Those that leave the host flags alone (MOV, LEA, MOVZX,
 * MOVSX, BSWAP, NOP of registers) and those that read them there
 * (jit_tr_cond(), jit_tr_flags_cf_in(): Jcc, SETcc and CMOVcc of
 * registers, ADC/SBB of registers when CF is among them); a handler run
 * instead saves them (tr_call()).  Every other instruction saves them
 * first.
 */
static bool keeps_hflags(const struct jit_tr *t, const struct jit_insn *in)
{
	uint8_t o = in->op;
	bool cf = t->hflags & F_CF || !t->hflags;	/* ADC/SBB: CF there, or nothing */

	if (in->lock)
		return false;
	if (in->map == MAP_0F)
		return (o & 0xf0) == 0x80 || (o >= 0x18 && o <= 0x1f) || o == 0x0d ||
		       (o >= 0xc8 && o <= 0xcf) ||
		       (in->mod == 3 && ((o & 0xf0) == 0x40 || (o & 0xf0) == 0x90 ||
					 o == 0xb6 || o == 0xb7 || o == 0xbe || o == 0xbf));
	if (in->map != MAP_1B)
		return false;
	if ((o & 0xf0) == 0x70 || (o >= 0xb0 && o < 0xc0) || o == 0x8d || (o == 0x90 && !in->rex) ||
	    o == 0xe9 || o == 0xeb)
		return true;
	if (in->mod != 3)
		return cf && ((o >= 0x14 && o <= 0x15) || (o >= 0x1c && o <= 0x1d));	/* ADC/SBB rAX, imm */
	return (o >= 0x88 && o <= 0x8b) || o == 0x63 || ((o == 0xc6 || o == 0xc7) && (in->reg & 7) == 0) ||
	       (cf && o >= 0x10 && o <= 0x1b && (o & 7) < 4) ||
	       (cf && o >= 0x80 && o <= 0x83 && ((in->reg & 7) == ALU_ADC || (in->reg & 7) == ALU_SBB));
}

/*
 * Which guest registers the block keeps in host registers: the most used
 * ones (two uses or more), never one whose high byte (AH..BH) an
 * instruction names, since the host registers caching have none.
 */
static void cache_pick(struct jit_tr *t, const struct jit_binsn *insn, unsigned n)
{
	unsigned count[16] = { 0 }, excl = 0, nc = 0;

	for (unsigned i = 0; i < n; i++) {
		const struct jit_insn *in = &insn[i].in;
		bool byte = in->opsize == 1 || (in->map == MAP_0F &&
			    (in->op == 0xb6 || in->op == 0xbe || (in->op & 0xf0) == 0x90));

		if (!in->rex && byte) {
			if (in->reg >= 4 && in->reg < 8)
				excl |= 1u << (in->reg - 4);
			if (in->mod == 3 && in->rm >= 4 && in->rm < 8)
				excl |= 1u << (in->rm - 4);
		}
		count[in->reg & 15]++;
		if (in->mod == 3) {
			count[in->rm & 15]++;
		} else {
			if (in->base != REG_NONE)
				count[in->base & 15]++;
			if (in->index != REG_NONE)
				count[in->index & 15]++;
		}
		if (in->map == MAP_1B && ((in->op >= 0x50 && in->op < 0x60) || in->op == 0xe8 ||
					  in->op == 0xc3 || in->op == 0xc2))
			count[JIT_RSP] += 2;
	}
	memset(t->host, -1, sizeof(t->host));
	while (nc < sizeof(cache_regs)) {
		unsigned best = 16;

		for (unsigned r = 0; r < 16; r++)
			if (!(excl & (1u << r)) && !(t->cached & (1u << r)) && count[r] >= 2 &&
			    (best == 16 || count[r] > count[best]))
				best = r;
		if (best == 16)
			break;
		t->host[best] = (int8_t)cache_regs[nc++];
		t->cached |= (uint16_t)(1u << best);
	}
}

/* Entry from C: save the host registers the block uses (and keep the
 * stack 16-byte aligned for calls); the epilogue undoes it. */
static void prologue(struct jit_tr *t)
{
	static const uint8_t pro[] = {
		0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57,	/* push rbx rbp r12-r15 */
		0x48, 0x83, 0xec, 0x08,						/* sub rsp, 8 */
	};

	for (unsigned i = 0; i < sizeof(pro); i++)
		jit_tr_byte(&t->b, pro[i]);
	jit_tr_ins(t, 8, 0x8b, RBX, jit_tr_r(RDI));			/* mov rbx, rdi */
}

static void epilogue(struct jit_tr *t)
{
	static const uint8_t epi[] = {
		0x48, 0x83, 0xc4, 0x08,						/* add rsp, 8 */
		0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b,	/* pop r15-r12 rbp rbx */
		0xc3,
	};

	for (unsigned i = 0; i < sizeof(epi); i++)
		jit_tr_byte(&t->b, epi[i]);
}

/*
 * Translate the block described by rq.  Returns the host function (and
 * rq->chain, the entry for other blocks, which checks the TLB generation
 * at rq->gen), or NULL when the buffer filled up.  The exit slots
 * (struct jit_tr_slot: two, and one for each Jcc inside the block: side
 * exits) precede the code.
 */
jit_tr_fn *jit_tr_translate(struct jit_tr_buf *b, struct jit_tr_req *rq)
{
	struct jit_tr_cold cold[JIT_TR_COLD];
	struct jit_tr t = { .b = *b, .rip = rq->rip, .cpl = rq->cpl, .jc = rq->jc, .entry_rip = rq->rip,
			.code_lo = (uintptr_t)rq->code, .code_hi = (uintptr_t)rq->code + rq->nbytes,
			.cold = cold, .maxcold = JIT_TR_COLD };
	bool dead[JIT_BLOCK_MAX];
	uint32_t live[JIT_BLOCK_MAX];
	const uint8_t *copy = NULL;
	uint8_t *start, *body;
	unsigned nslot = 2;
	int r = TR_OK;

	for (unsigned i = 0; i + 1 < rq->n; i++)	/* Jcc inside: side exits */
		nslot += jit_insn_is_jcc(&rq->insn[i].in);
	if (rq->n > JIT_BLOCK_MAX || t.b.p + nslot * sizeof(struct jit_tr_slot) > t.b.end)
		return NULL;
	jit_tr_flags_live(rq->insn, rq->n, dead, live);
	t.owner = rq->owner;
	t.slot = (struct jit_tr_slot *)(void *)t.b.p;
	t.nslot = nslot;
	memset(t.slot, 0, nslot * sizeof(struct jit_tr_slot));
	t.b.p += nslot * sizeof(struct jit_tr_slot);
	if (rq->checks && rq->nbytes > IMM_BYTES)
		copy = code_copy(&t.b, rq->code, rq->nbytes);
	start = t.b.p;
	cache_pick(&t, rq->insn, rq->n);
	prologue(&t);
	body = jit_tr_jump(&t.b, -1);
	t.epi = t.b.p;
	epilogue(&t);
	rq->chain = chain_entry(&t, rq->code, rq->checks ? rq->nbytes : 0, copy);
	rq->gen = t.gen;
	jit_tr_here(&t.b, body);
	jit_tr_cache_load(&t, false);
	t.body = t.b.p;
	for (unsigned i = 0; i < rq->n && r != TR_END; i++) {
		const struct jit_insn *in = &rq->insn[i].in;

		t.next = t.rip + in->len;
		t.last = i == rq->n - 1;
		t.fl_dead = dead[i];
		t.hflags &= live[i];		/* flags no one will read are dropped */
		t.pflags &= live[i];
		if (!keeps_hflags(&t, in))
			jit_tr_flags_spill(&t);
		r = tr_insn(&t, in);
		if (r == TR_NO) {
			bool last = i == rq->n - 1 && !jit_insn_continues(in);

			if (last && fast_sys_cpl(in) >= 0)
				tr_call_on(&t, &rq->insn[i], fast_sys_cpl(in));
			else if (last && in->map == MAP_1B && in->op == 0x9d)	/* POPF */
				tr_call_on(&t, &rq->insn[i], -1);
			else
				tr_call(&t, &rq->insn[i], last);	/* (the last one linked if it goes on) */
			r = last ? TR_END : TR_OK;
		} else if (r == TR_OK) {
			t.pend++;
		}
		t.rip = t.next;
	}
	if (r != TR_END) {
		if (rq->n >= 2 && jit_insn_is_sti(&rq->insn[rq->n - 2].in))
			jit_tr_ins8(&t, 1, 0xc6, 0, jit_tr_m(RBX, OFF_SHADOW), 0);	/* it is over */
		jit_tr_exit_link(&t, t.rip);
	}
	jit_tr_cold_emit(&t);
	if (t.b.full)
		return NULL;
	*b = t.b;
	return (jit_tr_fn *)(void *)start;
}
