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
 *  - Guest registers and RFLAGS stay in struct jit_cpu; host RBX holds the
 *    vCPU for the whole block, and each instruction loads its operands
 *    from memory and stores its result (store forwarding makes this cheap
 *    and it keeps the guest state exact at every instruction boundary).
 *  - The frequent instructions (MOV, MOVZX/MOVSX, LEA, the ALU group,
 *    TEST, INC/DEC, shifts and rotates, IMUL, PUSH/POP, NOP) are emitted
 *    inline.  Arithmetic runs on the host ALU, as in alu.c: the host's
 *    status flags are merged into the guest RFLAGS after each operation,
 *    and operations that read flags (ADC/SBB, shifts, IMUL, INC/DEC) get
 *    the guest's arithmetic flags loaded first, so the results, undefined
 *    flags included, are those of the interpreter.
 *  - Memory operands go through the TLB inline: index, tag, rights, host
 *    pointer, page-end check, then one host load or store.  Anything else
 *    (a miss, MMIO, a page-crossing access, a store into this block's own
 *    code bytes) calls back into C (jit_tr_read/jit_tr_write), which runs
 *    the interpreter's access with its faults.
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

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

#define OFF_GPR(r) ((int32_t)(offsetof(struct jit_cpu, gpr) + 8 * (r)))
#define OFF_RIP ((int32_t)offsetof(struct jit_cpu, rip))
#define OFF_RFLAGS ((int32_t)offsetof(struct jit_cpu, rflags))
#define OFF_NEXT ((int32_t)offsetof(struct jit_cpu, next_rip))
#define OFF_ICOUNT ((int32_t)offsetof(struct jit_cpu, icount))
#define OFF_SMC_HIT ((int32_t)offsetof(struct jit_cpu, smc_hit))
#define OFF_TLB ((int32_t)offsetof(struct jit_cpu, tlb))
#define OFF_SMC_LO ((int32_t)offsetof(struct jit_cpu, smc_lo))
#define OFF_SMC_HI ((int32_t)offsetof(struct jit_cpu, smc_hi))
#define OFF_EVENTS ((int32_t)offsetof(struct jit_cpu, events))
#define OFF_IRQ ((int32_t)offsetof(struct jit_cpu, irq_level))
#define OFF_CHAIN_END ((int32_t)offsetof(struct jit_cpu, chain_end))
#define OFF_TLB_GEN ((int32_t)offsetof(struct jit_cpu, tlb_gen))
#define OFF_TR_LINK ((int32_t)offsetof(struct jit_cpu, tr_link))
#define OFF_TR_TMP ((int32_t)offsetof(struct jit_cpu, tr_tmp))
#define OFF_SEGBASE(s) ((int32_t)(offsetof(struct jit_cpu, seg) + \
			 (s) * sizeof(struct jit_segment) + offsetof(struct jit_segment, base)))

_Static_assert(sizeof(struct jit_tlb_entry) == 40, "the TLB index is scaled by 5 * 8");

struct tr {
	struct jit_tr_buf b;
	uint64_t rip, next;	/* of the instruction being translated */
	unsigned pend;		/* instructions retired since icount was updated */
	unsigned cpl;
	uintptr_t code_lo, code_hi;	/* host bytes of the block's code */
	struct jit_tr_slot *slot;	/* exit slots left (before the code) */
	unsigned nslot;
	struct jit_tr_slot *jc;	/* chained entries by RIP */
	bool fl_dead;		/* the flags this instruction sets are overwritten unread */
	uint64_t entry_rip;	/* the block's first instruction */
	uint64_t *gen;		/* TLB generation the chained entry is good for */
	uint8_t *body;		/* the block's first instruction, guest registers loaded */
	uint8_t *epi;		/* the common exit: restores the host registers, returns */
	int8_t host[16];	/* the host register caching each guest register, or -1 */
	uint16_t cached;	/* guest registers cached in host registers */
	uint16_t dirty;		/* those changed since loaded (memory is stale) */
	bool fuse;		/* the next instruction is a Jcc: flags_set() keeps the flags */
	uint32_t hflags;	/* flags kept so (in the host flags and RDX), not yet in RFLAGS */
};

/* Host registers that cache guest registers, most used first: the
 * callee-saved ones survive the calls into C; R9-R11 are reloaded after
 * each call. */
static const uint8_t cache_regs[] = { RBP, R12, R13, R14, R15, R9, R10, R11 };
#define CALLER_SAVED ((1u << R9) | (1u << R10) | (1u << R11))

static struct jit_tr_rm R(unsigned r)
{
	return (struct jit_tr_rm){ .base = (int8_t)r, .index = -1 };
}

static struct jit_tr_rm M(unsigned base, int32_t disp)
{
	return (struct jit_tr_rm){ .base = (int8_t)base, .index = -1, .mem = true, .disp = disp };
}

static struct jit_tr_rm MX(unsigned base, unsigned index, unsigned scale, int32_t disp)
{
	return (struct jit_tr_rm){ .base = (int8_t)base, .index = (int8_t)index,
				   .scale = (uint8_t)scale, .mem = true, .disp = disp };
}

static void op(struct tr *t, unsigned size, uint32_t opc, unsigned reg, struct jit_tr_rm rm)
{
	jit_tr_op(&t->b, size, opc > 0xffff ? 3 : opc > 0xff ? 2 : 1, opc, reg, &rm);
}

static void op_imm8(struct tr *t, unsigned size, uint32_t opc, unsigned ext, struct jit_tr_rm rm,
		    uint8_t imm)
{
	op(t, size, opc, ext, rm);
	jit_tr_byte(&t->b, imm);
}

static void op_imm32(struct tr *t, unsigned size, uint32_t opc, unsigned ext, struct jit_tr_rm rm,
		     uint32_t imm)
{
	op(t, size, opc, ext, rm);
	jit_tr_u32(&t->b, imm);
}

/* hreg = zero-extended size bytes at rm */
static void load(struct tr *t, unsigned size, unsigned hreg, struct jit_tr_rm rm)
{
	if (size >= 4)
		op(t, size, 0x8b, hreg, rm);
	else		/* REX.W: a REX, so that registers 4-7 are SPL..DIL, not AH..BH */
		op(t, !rm.mem && size == 1 ? 8 : 4, size == 2 ? 0x0fb7 : 0x0fb6, hreg, rm);
}

static void store(struct tr *t, unsigned size, unsigned hreg, struct jit_tr_rm rm)
{
	op(t, size, size == 1 ? 0x88 : 0x89, hreg, rm);
}

/* The whole guest register r: its host register or its slot in memory. */
static struct jit_tr_rm gpr(const struct tr *t, unsigned r)
{
	if (t->host[r] >= 0)
		return R((unsigned)t->host[r]);
	return M(RBX, OFF_GPR(r));
}

/* An instruction is about to change the guest register r through gpr(). */
static void gpr_written(struct tr *t, unsigned r)
{
	if (t->host[r] >= 0)
		t->dirty |= (uint16_t)(1u << r);
}

/* The guest register r as an operand of size bytes (AH..BH without REX:
 * never cached, see cache_pick()). */
static struct jit_tr_rm greg(const struct tr *t, const struct jit_insn *in, unsigned r,
			     unsigned size)
{
	if (size == 1 && !in->rex && r >= 4 && r < 8)
		return M(RBX, OFF_GPR(r - 4) + 1);
	return gpr(t, r);
}

static void greg_load(struct tr *t, const struct jit_insn *in, unsigned hreg, unsigned r,
		      unsigned size)
{
	load(t, size, hreg, greg(t, in, r, size));
}

/* Write a result as reg_write() does: 32-bit results zero-extend. */
static void greg_store(struct tr *t, const struct jit_insn *in, unsigned hreg, unsigned r,
		       unsigned size)
{
	bool high = size == 1 && !in->rex && r >= 4 && r < 8;

	if (!high && t->host[r] >= 0) {
		store(t, size, hreg, R((unsigned)t->host[r]));	/* mov r32 zero-extends */
		t->dirty |= (uint16_t)(1u << r);
		return;
	}
	if (size == 4) {
		op(t, 4, 0x8b, hreg, R(hreg));		/* zero-extend, then one store */
		store(t, 8, hreg, M(RBX, OFF_GPR(r)));
		return;
	}
	store(t, size, hreg, greg(t, in, r, size));
}

/* Store the cached guest registers that changed (before leaving the block
 * or calling C, which may fault or read them); they stay cached. */
static void cache_writeback(struct tr *t)
{
	for (unsigned r = 0; r < 16; r++)
		if (t->dirty & (1u << r))
			store(t, 8, (unsigned)t->host[r], M(RBX, OFF_GPR(r)));
}

/* Load the cached guest registers (all, or those in caller-saved host
 * registers after a call into C). */
static void cache_load(struct tr *t, bool after_call)
{
	for (unsigned r = 0; r < 16; r++)
		if ((t->cached & (1u << r)) &&
		    (!after_call || (CALLER_SAVED & (1u << t->host[r]))))
			load(t, 8, (unsigned)t->host[r], M(RBX, OFF_GPR(r)));
}

static void pend_flush(struct tr *t, int sign)
{
	if (t->pend)
		op_imm8(t, 8, 0x83, sign > 0 ? 0 : 5, M(RBX, OFF_ICOUNT), (uint8_t)t->pend);
}

/* Return to C: through the block's epilogue. */
static void leave(struct tr *t)
{
	int32_t rel = (int32_t)(t->epi - (t->b.p + 5));

	jit_tr_byte(&t->b, 0xe9);
	jit_tr_u32(&t->b, (uint32_t)rel);
}

/* Leave the block with RIP = RAX. */
static void exit_rax(struct tr *t)
{
	cache_writeback(t);
	store(t, 8, RAX, M(RBX, OFF_RIP));
	pend_flush(t, 1);
	leave(t);
}

static void exit_to(struct tr *t, uint64_t rip);

/* A jump back to the block's own start: on into the body (the guest
 * registers still in their host registers, and in memory) unless a signal is pending or
 * the budget is spent, as a chained entry checks. */
static void loop_back(struct tr *t)
{
	uint8_t *bail[3];
	int32_t rel;
	unsigned pend = t->pend;

	cache_writeback(t);	/* the body was translated with none dirty at its start */
	pend_flush(t, 1);
	t->pend = 0;
	load(t, 8, RAX, M(RBX, OFF_ICOUNT));
	op(t, 8, 0x3b, RAX, M(RBX, OFF_CHAIN_END));
	bail[0] = jit_tr_jump(&t->b, 3);		/* jae */
	op_imm8(t, 4, 0x83, 7, M(RBX, OFF_EVENTS), 0);
	bail[1] = jit_tr_jump(&t->b, 5);
	op_imm8(t, 1, 0x80, 7, M(RBX, OFF_IRQ), 0);
	bail[2] = jit_tr_jump(&t->b, 5);
	rel = (int32_t)(t->body - (t->b.p + 5));
	jit_tr_byte(&t->b, 0xe9);
	jit_tr_u32(&t->b, (uint32_t)rel);
	for (int i = 0; i < 3; i++)
		jit_tr_here(&t->b, bail[i]);
	exit_to(t, t->entry_rip);
	t->pend = pend;
}

static void exit_to(struct tr *t, uint64_t rip)
{
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
static void exit_link(struct tr *t, uint64_t rip)
{
	struct jit_tr_slot *sl;
	uint8_t *site;

	if (rip == t->entry_rip && t->body) {		/* a loop: straight back */
		loop_back(t);
		return;
	}
	if (!t->nslot) {
		exit_to(t, rip);
		return;
	}
	sl = t->slot++;
	t->nslot--;
	sl->target = rip;
	sl->cpl = t->cpl;
	cache_writeback(t);
	pend_flush(t, 1);
	site = jit_tr_jump(&t->b, -1);
	jit_tr_here(&t->b, site);			/* unlinked: falls through */
	sl->entry = site;
	jit_tr_mov_imm(&t->b, RCX, (uint64_t)(uintptr_t)sl);
	store(t, 8, RCX, M(RBX, OFF_TR_LINK));
	jit_tr_mov_imm(&t->b, RAX, rip);
	store(t, 8, RAX, M(RBX, OFF_RIP));
	leave(t);
}

/*
 * Leave the block for the RIP in RAX, known only now (RET): straight into
 * the next block when the table of chained entries has it for this RIP,
 * CPL and TLB generation.
 */
static void exit_dyn(struct tr *t)
{
	uint8_t *miss[3];

	cache_writeback(t);
	pend_flush(t, 1);
	op(t, 8, 0x8b, RCX, R(RAX));
	op_imm8(t, 8, 0xc1, 5, R(RCX), 12);		/* shr rcx, 12 */
	op(t, 8, 0x31, RAX, R(RCX));			/* xor rcx, rax */
	op_imm32(t, 4, 0x81, 4, R(RCX), JIT_JC_SIZE - 1);
	op_imm8(t, 4, 0xc1, 4, R(RCX), 5);		/* shl ecx, 5 */
	_Static_assert(sizeof(struct jit_tr_slot) == 32, "jc entries are 32 bytes");
	jit_tr_mov_imm(&t->b, RDX, (uint64_t)(uintptr_t)t->jc);
	op(t, 8, 0x01, RCX, R(RDX));			/* add rdx, rcx */
	op(t, 8, 0x3b, RAX, M(RDX, offsetof(struct jit_tr_slot, target)));
	miss[0] = jit_tr_jump(&t->b, 5);
	load(t, 8, RCX, M(RDX, offsetof(struct jit_tr_slot, gen)));
	op(t, 8, 0x3b, RCX, M(RBX, OFF_TLB_GEN));
	miss[1] = jit_tr_jump(&t->b, 5);
	op_imm8(t, 8, 0x83, 7, M(RDX, offsetof(struct jit_tr_slot, cpl)), (uint8_t)t->cpl);
	miss[2] = jit_tr_jump(&t->b, 5);
	op(t, 4, 0xff, 4, M(RDX, offsetof(struct jit_tr_slot, entry)));	/* jmp [rdx] */
	for (int i = 0; i < 3; i++)
		jit_tr_here(&t->b, miss[i]);
	store(t, 8, RAX, M(RBX, OFF_RIP));
	leave(t);
}

/* The state a handler or a fault expects: RIP and the retired count. */
static void sync_state(struct tr *t)
{
	cache_writeback(t);
	jit_tr_mov_imm(&t->b, RAX, t->rip);
	store(t, 8, RAX, M(RBX, OFF_RIP));
	pend_flush(t, 1);
	jit_tr_mov_imm(&t->b, RAX, t->code_lo);		/* this block's code, for smc_note() */
	store(t, 8, RAX, M(RBX, OFF_SMC_LO));
	jit_tr_mov_imm(&t->b, RAX, t->code_hi);
	store(t, 8, RAX, M(RBX, OFF_SMC_HI));
}

/* Effective address of the memory operand into RSI (insn_ea()). */
static void ea(struct tr *t, const struct jit_insn *in)
{
	uint64_t m = size_mask(in->addrsize);
	unsigned base = RSI, index;

	if (in->rip_rel) {
		jit_tr_mov_imm(&t->b, RSI, (t->next + (uint64_t)(int64_t)in->disp) & m);
		return;
	}
	if (in->base != REG_NONE) {
		base = t->host[in->base] >= 0 ? (unsigned)t->host[in->base] : RSI;
		if (base == RSI)
			load(t, 8, RSI, M(RBX, OFF_GPR(in->base)));
	} else {
		jit_tr_mov_imm(&t->b, RSI, (uint64_t)(int64_t)in->disp);
		if (in->index == REG_NONE) {
			if (in->addrsize == 4)
				op(t, 4, 0x8b, RSI, R(RSI));
			return;
		}
	}
	if (in->index != REG_NONE) {
		index = t->host[in->index] >= 0 ? (unsigned)t->host[in->index] : RCX;
		if (index == RCX)
			load(t, 8, RCX, M(RBX, OFF_GPR(in->index)));
		op(t, 8, 0x8d, RSI, MX(base, index, in->scale, in->base != REG_NONE ? in->disp : 0));
	} else if (in->disp || base != RSI) {
		op(t, 8, 0x8d, RSI, M(base, in->disp));
	}
	if (in->addrsize == 4)
		op(t, 4, 0x8b, RSI, R(RSI));
}

/*
 * The inline TLB lookup for the linear address seg:RSI (RSI itself, or
 * RAX = RSI + the FS/GS base): leaves RDX = the host page (or jumps to the
 * returned patch points for the slow path) and RCX = the offset in the
 * page.  The tag is compared with the page of the access's last byte in
 * the entry of its first byte's page, so an access that crosses into the
 * next page misses (those pages' entries differ) and one compare covers
 * both.  Any patch point: a miss.
 */
static void tlb_fast(struct tr *t, int seg, unsigned size, bool write, uint8_t *miss[4])
{
	unsigned need = write ? P_W : P_R, lin = RSI;

	if (seg == SEG_FS || seg == SEG_GS) {
		load(t, 8, RAX, M(RBX, OFF_SEGBASE(seg)));
		op(t, 8, 0x01, RSI, R(RAX));		/* add rax, rsi */
		lin = RAX;
	}
	if (t->cpl == 3)
		need <<= 3;
	op(t, 8, 0x8d, RCX, M(lin, (int32_t)size - 1));	/* lea rcx, [lin + size - 1] */
	op_imm8(t, 8, 0xc1, 5, R(RCX), 12);		/* shr rcx, 12: the last byte's page */
	op(t, 4, 0x8b, RDX, R(lin));
	op_imm8(t, 4, 0xc1, 5, R(RDX), 12);		/* shr edx, 12 */
	op_imm32(t, 4, 0x81, 4, R(RDX), TLB_SIZE - 1);	/* and edx, 511 */
	op(t, 8, 0x8d, RDX, MX(RDX, RDX, 2, 0));	/* rdx *= 5 */
	op(t, 8, 0x8d, RDX, MX(RBX, RDX, 3, OFF_TLB));
	op(t, 8, 0x3b, RCX, M(RDX, offsetof(struct jit_tlb_entry, tag)));
	miss[0] = jit_tr_jump(&t->b, 5);
	miss[1] = NULL;
	if (need != P_R) {	/* a filled entry always allows supervisor reads */
		op_imm8(t, 1, 0xf6, 0, M(RDX, offsetof(struct jit_tlb_entry, perm)), (uint8_t)need);
		miss[1] = jit_tr_jump(&t->b, 4);
	}
	load(t, 8, RDX, M(RDX, write ? (int32_t)offsetof(struct jit_tlb_entry, host_w)
				     : (int32_t)offsetof(struct jit_tlb_entry, host_r)));
	op(t, 8, 0x85, RDX, R(RDX));
	miss[2] = jit_tr_jump(&t->b, 4);
	op(t, 4, 0x8b, RCX, R(lin));
	op_imm32(t, 4, 0x81, 4, R(RCX), 0xfff);
	miss[3] = NULL;
}

/* RAX = the size bytes at seg:RSI, zero-extended (translated for writing
 * when write: the load of a read-modify-write).  Clobbers RCX, RDX, RSI,
 * RDI, R8-R11. */
static void mem_load_acc(struct tr *t, int seg, unsigned size, bool write)
{
	uint8_t *miss[4], *done;

	tlb_fast(t, seg, size, write, miss);
	load(t, size, RAX, MX(RDX, RCX, 0, 0));
	done = jit_tr_jump(&t->b, -1);
	for (int i = 0; i < 4; i++)
		jit_tr_here(&t->b, miss[i]);
	sync_state(t);
	op(t, 8, 0x8b, RDX, R(RSI));
	jit_tr_mov_imm(&t->b, RSI, (unsigned)seg);
	jit_tr_mov_imm(&t->b, RCX, size);
	op(t, 8, 0x8b, RDI, R(RBX));
	jit_tr_call(&t->b, write ? (const void *)jit_tr_read_w : (const void *)jit_tr_read);
	pend_flush(t, -1);
	cache_load(t, true);
	jit_tr_here(&t->b, done);
}

static void mem_load(struct tr *t, int seg, unsigned size)
{
	mem_load_acc(t, seg, size, false);
}

/* Store R8's low size bytes at seg:RSI.  A store into the block's own
 * code takes the slow path, which notes it (smc_note). */
static void mem_store(struct tr *t, int seg, unsigned size)
{
	uint8_t *miss[4], *done, *ok, *smc;

	tlb_fast(t, seg, size, true, miss);
	op(t, 8, 0x8d, RCX, MX(RDX, RCX, 0, 0));
	jit_tr_mov_imm(&t->b, RDX, t->code_hi);
	op(t, 8, 0x3b, RCX, R(RDX));
	ok = jit_tr_jump(&t->b, 3);			/* jae */
	jit_tr_mov_imm(&t->b, RDX, t->code_lo - size);
	op(t, 8, 0x3b, RCX, R(RDX));
	smc = jit_tr_jump(&t->b, 7);			/* ja */
	jit_tr_here(&t->b, ok);
	store(t, size, R8, M(RCX, 0));
	done = jit_tr_jump(&t->b, -1);
	for (int i = 0; i < 4; i++)
		jit_tr_here(&t->b, miss[i]);
	jit_tr_here(&t->b, smc);
	sync_state(t);
	op(t, 8, 0x8b, RDX, R(RSI));
	jit_tr_mov_imm(&t->b, RSI, (unsigned)seg);
	jit_tr_mov_imm(&t->b, RCX, size);
	op(t, 8, 0x8b, RDI, R(RBX));
	jit_tr_call(&t->b, (const void *)jit_tr_write);
	pend_flush(t, -1);
	cache_load(t, true);
	jit_tr_here(&t->b, done);
}

/* After an instruction that stored: leave if it wrote this block's code. */
static void smc_check(struct tr *t)
{
	uint8_t *go;

	op_imm8(t, 1, 0x80, 7, M(RBX, OFF_SMC_HIT), 0);
	go = jit_tr_jump(&t->b, 4);
	t->pend++;
	exit_to(t, t->next);
	t->pend--;
	jit_tr_here(&t->b, go);
}

/* RFLAGS's arithmetic bits (mask: which of them) = those in RDX. */
static void flags_merge_rdx(struct tr *t, uint32_t mask)
{
	op_imm32(t, 4, 0x81, 4, R(RDX), mask);
	load(t, 8, RCX, M(RBX, OFF_RFLAGS));
	op_imm32(t, 8, 0x81, 4, R(RCX), ~mask);
	op(t, 8, 0x09, RDX, R(RCX));			/* or rcx, rdx */
	store(t, 8, RCX, M(RBX, OFF_RFLAGS));
}

/* RFLAGS's arithmetic bits = the host's (mask: which of them). */
static void flags_merge(struct tr *t, uint32_t mask)
{
	if (t->fl_dead)
		return;
	jit_tr_byte(&t->b, 0x9c);			/* pushfq */
	jit_tr_byte(&t->b, 0x5a);			/* pop rdx */
	flags_merge_rdx(t, mask);
}

/* The host's arithmetic flags = the guest's (for instructions that read
 * them or leave some unchanged). */
static void flags_load(struct tr *t)
{
	load(t, 8, RDX, M(RBX, OFF_RFLAGS));
	op_imm32(t, 4, 0x81, 4, R(RDX), F_ARITH);
	op_imm32(t, 4, 0x81, 1, R(RDX), 0x202);
	jit_tr_byte(&t->b, 0x52);			/* push rdx */
	jit_tr_byte(&t->b, 0x9d);			/* popfq */
}

/*
 * Test guest condition cc (Jcc/SETcc/CMOVcc encoding) on RFLAGS: returns
 * the host condition that holds when it is true.  Clobbers RAX, RCX.
 */
static int cond(struct tr *t, unsigned cc)
{
	static const uint32_t bits[6] = { F_OF, F_CF, F_ZF, F_CF | F_ZF, F_SF, F_PF };

	load(t, 4, RAX, M(RBX, OFF_RFLAGS));
	if (cc < 12) {
		op_imm32(t, 4, 0xf7, 0, R(RAX), bits[cc >> 1]);
	} else {
		op(t, 4, 0x8b, RCX, R(RAX));
		op_imm8(t, 4, 0xc1, 5, R(RCX), 4);		/* OF down to SF */
		op(t, 4, 0x31, RAX, R(RCX));			/* xor ecx, eax */
		op_imm32(t, 4, 0x81, 4, R(RCX), F_SF);
		if (cc >= 14) {
			op_imm32(t, 4, 0x81, 4, R(RAX), F_ZF);
			op(t, 4, 0x09, RAX, R(RCX));		/* or ecx, eax */
		}
	}
	return (cc & 1) ? 4 : 5;
}


/* ---- instructions ---- */

enum { TR_NO, TR_OK, TR_END };

/* The r/m operand of size bytes into RAX (register or memory). */
static void rm_to_rax(struct tr *t, const struct jit_insn *in, unsigned size)
{
	if (in->mod == 3) {
		greg_load(t, in, RAX, in->rm, size);
	} else {
		ea(t, in);
		mem_load(t, in->seg, size);
	}
}

/* MOV 88/89/8A/8B, C6/C7 /0 */
static int tr_mov(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	switch (in->op) {
	case 0x8a: case 0x8b:
		rm_to_rax(t, in, size);
		greg_store(t, in, RAX, in->reg, size);
		return TR_OK;
	case 0x88: case 0x89:
		if (in->mod == 3) {
			greg_load(t, in, RAX, in->reg, size);
			greg_store(t, in, RAX, in->rm, size);
			return TR_OK;
		}
		ea(t, in);
		greg_load(t, in, R8, in->reg, size);
		break;
	default:	/* C6/C7 */
		if ((in->reg & 7) != 0)
			return TR_NO;
		if (in->mod == 3) {
			jit_tr_mov_imm(&t->b, RAX, in->imm & size_mask(size));
			greg_store(t, in, RAX, in->rm, size);
			return TR_OK;
		}
		ea(t, in);
		jit_tr_mov_imm(&t->b, R8, in->imm & size_mask(size));
	}
	mem_store(t, in->seg, size);
	smc_check(t);
	return TR_OK;
}

/* B0-BF: MOV r, imm */
static int tr_mov_r_imm(struct tr *t, const struct jit_insn *in)
{
	jit_tr_mov_imm(&t->b, RAX, in->imm & size_mask(in->opsize));
	greg_store(t, in, RAX, in->reg, in->opsize);
	return TR_OK;
}

/* 8D: LEA */
static int tr_lea(struct tr *t, const struct jit_insn *in)
{
	if (in->mod == 3 || in->opsize < 4)
		return TR_NO;
	ea(t, in);
	greg_store(t, in, RSI, in->reg, in->opsize);
	return TR_OK;
}

/* 0F B6/B7/BE/BF: MOVZX/MOVSX, 63: MOVSXD */
static int tr_movx(struct tr *t, const struct jit_insn *in)
{
	unsigned from = in->op == 0x63 ? 4 : (in->op & 1) ? 2 : 1;
	bool sign = in->op == 0x63 || in->op >= 0xbe;

	if (in->opsize < 4)
		return TR_NO;
	rm_to_rax(t, in, from);
	if (sign) {
		if (from == 4)
			op(t, 8, 0x63, RAX, R(RAX));		/* movsxd rax, eax */
		else
			op(t, 8, from == 1 ? 0x0fbe : 0x0fbf, RAX, R(RAX));
	}
	greg_store(t, in, RAX, in->reg, in->opsize);
	return TR_OK;
}

/* The guest register r of size bytes as an operand the host can change
 * in place: its cached host register, or else RAX loaded with it. */
static struct jit_tr_rm greg_op(struct tr *t, const struct jit_insn *in, unsigned r,
				unsigned size)
{
	if (t->host[r] >= 0 && !(size == 1 && !in->rex && r >= 4 && r < 8))
		return R((unsigned)t->host[r]);
	greg_load(t, in, RAX, r, size);
	return R(RAX);
}

/*
 * The flags of the instruction just emitted (mask: those it sets): merged
 * into RFLAGS, or, when the next instruction is a Jcc (t->fuse), kept in
 * the host flags for it with a copy in RDX (see tr_branch).
 */
static void flags_set(struct tr *t, uint32_t mask)
{
	if (t->fuse && !t->fl_dead) {
		jit_tr_byte(&t->b, 0x9c);		/* pushfq */
		jit_tr_byte(&t->b, 0x5a);		/* pop rdx */
		t->hflags = mask;
		return;
	}
	flags_merge(t, mask);
}

/*
 * The two-operand ALU group and TEST: d OP s with the host ALU, d = dop
 * (RAX or the destination's host register), RCX = s.  aop is ALU_* or 8
 * for TEST.  dst: the guest register that gets the result, -1 for none
 * (CMP, TEST).
 */
static void alu_emit(struct tr *t, const struct jit_insn *in, int aop, unsigned size, int dst,
		     struct jit_tr_rm dop)
{
	if (aop == ALU_ADC || aop == ALU_SBB)
		op_imm8(t, 4, 0x0fba, 4, M(RBX, OFF_RFLAGS), 0);	/* bt: CF in */
	if (aop == 8)
		op(t, size, size == 1 ? 0x84 : 0x85, RCX, dop);
	else
		op(t, size, (uint32_t)(aop << 3 | (size == 1 ? 0 : 1)), RCX, dop);
	flags_set(t, F_ARITH);
	if (dst < 0 || aop == ALU_CMP || aop == 8)
		return;
	if (dop.base == RAX)
		greg_store(t, in, RAX, (unsigned)dst, size);
	else
		gpr_written(t, (unsigned)dst);
}

/* 00-3D (not the RMW forms to memory), 80-83, 84/85, A8/A9, F6/F7 /0 */
static int tr_alu(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, o = in->op;
	int aop, dst = -1;
	struct jit_tr_rm dop = R(RAX);

	if (in->lock)
		return TR_NO;
	if (o < 0x40) {
		aop = (int)(o >> 3);
		if ((o & 7) >= 4) {			/* AL/rAX, imm */
			dop = greg_op(t, in, JIT_RAX, size);
			jit_tr_mov_imm(&t->b, RCX, in->imm & size_mask(size));
			dst = JIT_RAX;
		} else if (o & 2) {			/* reg OP= r/m */
			rm_to_rax(t, in, size);
			op(t, 8, 0x8b, RCX, R(RAX));
			dop = greg_op(t, in, in->reg, size);
			dst = in->reg;
		} else if (in->mod == 3 || aop == ALU_CMP) {	/* r/m OP= reg */
			if (in->mod == 3)
				dop = greg_op(t, in, in->rm, size);
			else
				rm_to_rax(t, in, size);
			greg_load(t, in, RCX, in->reg, size);
			dst = in->mod == 3 ? in->rm : -1;
		} else {
			return TR_NO;
		}
	} else if (o >= 0x80 && o <= 0x83) {
		aop = in->reg & 7;
		if (in->mod != 3 && aop != ALU_CMP)
			return TR_NO;
		if (in->mod == 3)
			dop = greg_op(t, in, in->rm, size);
		else
			rm_to_rax(t, in, size);
		jit_tr_mov_imm(&t->b, RCX, in->imm & size_mask(size));
		dst = in->mod == 3 ? in->rm : -1;
	} else if (o == 0x84 || o == 0x85) {
		aop = 8;
		rm_to_rax(t, in, size);
		greg_load(t, in, RCX, in->reg, size);
	} else if (o == 0xa8 || o == 0xa9) {
		aop = 8;
		greg_load(t, in, RAX, JIT_RAX, size);
		jit_tr_mov_imm(&t->b, RCX, in->imm & size_mask(size));
	} else {					/* F6/F7 /0 */
		aop = 8;
		rm_to_rax(t, in, size);
		jit_tr_mov_imm(&t->b, RCX, in->imm & size_mask(size));
	}
	alu_emit(t, in, aop, size, dst, dop);
	return TR_OK;
}

static int tr_notneg(struct tr *t, const struct jit_insn *in);

/* F6/F7: TEST r/m, imm; NOT and NEG of a register */
static int tr_grp3(struct tr *t, const struct jit_insn *in)
{
	if ((in->reg & 7) == 0)
		return tr_alu(t, in);
	if (in->mod == 3 && ((in->reg & 7) == 2 || (in->reg & 7) == 3))
		return tr_notneg(t, in);
	return TR_NO;
}

/* C0/C1/D0-D3 with a register operand: shifts and rotates on the host
 * with the guest's flags loaded (a zero count changes nothing). */
static int tr_grp2(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, ext = in->reg & 7, o = in->op, count;

	if (in->mod != 3)
		return TR_NO;
	if (ext == 6)
		ext = 4;				/* SAL is SHL */
	if (o >= 0xd2)
		load(t, 1, RCX, gpr(t, JIT_RCX));
	greg_load(t, in, RAX, in->rm, size);
	count = o >= 0xd2 ? 0 : o >= 0xd0 ? 1 : (unsigned)in->imm & (size == 8 ? 63 : 31);
	if (!count || ext == 2 || ext == 3)
		flags_load(t);		/* a CL count, RCL/RCR: flags in */
	if (o <= 0xc1)
		op_imm8(t, size, o, ext, R(RAX), (uint8_t)in->imm);
	else
		op(t, size, o, ext, R(RAX));
	/* a known count: shifts set every flag, rotates CF and (by 1) OF;
	 * the host leaves OF alone on longer rotates */
	flags_merge(t, !count || ext >= 2 ? F_ARITH : count == 1 ? F_CF | F_OF : F_CF);
	greg_store(t, in, RAX, in->rm, size);
	return TR_OK;
}

/* 0F AF, 69, 6B: IMUL r, r/m [, imm] */
static int tr_imul(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	if (size < 2)
		return TR_NO;
	rm_to_rax(t, in, size);
	op(t, 8, 0x8b, RCX, R(RAX));
	if (in->map == MAP_0F)
		greg_load(t, in, RAX, in->reg, size);
	else
		jit_tr_mov_imm(&t->b, RAX, in->imm & size_mask(size));
	op(t, size, 0x0faf, RAX, R(RCX));		/* imul eax, ecx */
	flags_merge(t, F_ARITH);
	greg_store(t, in, RAX, in->reg, size);
	return TR_OK;
}

/* FE/FF /0 /1 with a register operand: INC/DEC (CF kept) */
static int tr_incdec(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, ext = in->reg & 7;

	if (in->mod != 3 || ext > 1)
		return TR_NO;
	greg_load(t, in, RAX, in->rm, size);
	op(t, size, size == 1 ? 0xfe : 0xff, ext, R(RAX));
	flags_set(t, F_ARITH & ~F_CF);
	greg_store(t, in, RAX, in->rm, size);
	return TR_OK;
}

/* 50-57: PUSH r; 58-5F: POP r (64-bit) */
static int tr_pushpop(struct tr *t, const struct jit_insn *in)
{
	if (in->opsize != 8)
		return TR_NO;
	load(t, 8, RSI, gpr(t, JIT_RSP));
	if (in->op < 0x58) {
		load(t, 8, R8, gpr(t, in->reg));
		op_imm8(t, 8, 0x83, 5, R(RSI), 8);
		mem_store(t, SEG_SS, 8);
		op_imm8(t, 8, 0x83, 5, gpr(t, JIT_RSP), 8);
		gpr_written(t, JIT_RSP);
		smc_check(t);
	} else {
		mem_load(t, SEG_SS, 8);
		op_imm8(t, 8, 0x83, 0, gpr(t, JIT_RSP), 8);
		gpr_written(t, JIT_RSP);
		store(t, 8, RAX, gpr(t, in->reg));
		gpr_written(t, in->reg);
	}
	return TR_OK;
}

/* Jcc, JMP, CALL, RET (64-bit operand size): the block's end */
static int tr_branch(struct tr *t, const struct jit_insn *in)
{
	uint64_t target = t->next + in->imm;
	uint8_t *taken;

	if (in->opsize != 8)
		return TR_NO;
	t->pend++;
	if ((in->map == MAP_1B && (in->op & 0xf0) == 0x70) || in->map == MAP_0F) {
		uint32_t hf = t->hflags;
		unsigned cc = in->op & 15;

		if (hf && (hf & F_CF || (cc >> 1 != 1 && cc >> 1 != 3))) {
			t->hflags = 0;				/* the guest's flags are the host's */
			taken = jit_tr_jump(&t->b, (int)cc);
			flags_merge_rdx(t, hf);
			exit_link(t, t->next);
			jit_tr_here(&t->b, taken);
			flags_merge_rdx(t, hf);
			exit_link(t, target);
			return TR_END;
		}
		if (hf) {				/* CF not among them: into RFLAGS */
			flags_merge_rdx(t, hf);
			t->hflags = 0;
		}
		taken = jit_tr_jump(&t->b, cond(t, cc));
		exit_link(t, t->next);
		jit_tr_here(&t->b, taken);
		exit_link(t, target);
		return TR_END;
	}
	switch (in->op) {
	case 0xe9: case 0xeb:
		exit_link(t, target);
		return TR_END;
	case 0xe8:
		t->pend--;
		load(t, 8, RSI, gpr(t, JIT_RSP));
		op_imm8(t, 8, 0x83, 5, R(RSI), 8);
		jit_tr_mov_imm(&t->b, R8, t->next);
		mem_store(t, SEG_SS, 8);
		op_imm8(t, 8, 0x83, 5, gpr(t, JIT_RSP), 8);
		gpr_written(t, JIT_RSP);
		t->pend++;
		exit_link(t, target);		/* a store into this block ends it anyway */
		return TR_END;
	default:	/* C3, C2 */
		t->pend--;
		load(t, 8, RSI, gpr(t, JIT_RSP));
		mem_load(t, SEG_SS, 8);
		op_imm32(t, 8, 0x81, 0, gpr(t, JIT_RSP),
			 8 + (in->op == 0xc2 ? (uint32_t)in->imm : 0));
		gpr_written(t, JIT_RSP);
		t->pend++;
		exit_dyn(t);
		return TR_END;
	}
}

/* 0F 40-4F: CMOVcc (the source is read, and faults, either way) */
static int tr_cmov(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint8_t *skip, *done;

	rm_to_rax(t, in, size);
	op(t, 8, 0x8b, R8, R(RAX));
	skip = jit_tr_jump(&t->b, cond(t, in->op & 15) ^ 1);
	greg_store(t, in, R8, in->reg, size);
	if (size != 4) {
		jit_tr_here(&t->b, skip);
		return TR_OK;
	}
	done = jit_tr_jump(&t->b, -1);
	jit_tr_here(&t->b, skip);
	if (t->host[in->reg] >= 0) {				/* 32-bit: upper cleared */
		op(t, 4, 0x8b, (unsigned)t->host[in->reg], gpr(t, in->reg));
		gpr_written(t, in->reg);
	} else {
		op_imm32(t, 4, 0xc7, 0, M(RBX, OFF_GPR(in->reg) + 4), 0);
	}
	jit_tr_here(&t->b, done);
	return TR_OK;
}

/* 0F 90-9F: SETcc of a register */
static int tr_setcc(struct tr *t, const struct jit_insn *in)
{
	if (in->mod != 3)
		return TR_NO;
	op(t, 1, 0x0f90 | (uint32_t)cond(t, in->op & 15), 0, R(RAX));
	greg_store(t, in, RAX, in->rm, 1);
	return TR_OK;
}

/* 0F C8-CF: BSWAP r32/r64 */
static int tr_bswap(struct tr *t, const struct jit_insn *in)
{
	if (in->opsize < 4)
		return TR_NO;
	load(t, in->opsize, RAX, gpr(t, in->reg));
	if (in->opsize == 8)
		jit_tr_byte(&t->b, 0x48);
	jit_tr_byte(&t->b, 0x0f);
	jit_tr_byte(&t->b, 0xc8);			/* bswap eax / rax */
	greg_store(t, in, RAX, in->reg, in->opsize);
	return TR_OK;
}

/* F6/F7 /2 NOT, /3 NEG of a register */
static int tr_notneg(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, ext = in->reg & 7;

	greg_load(t, in, RAX, in->rm, size);
	op(t, size, size == 1 ? 0xf6 : 0xf7, ext, R(RAX));
	if (ext == 3)
		flags_merge(t, F_ARITH);
	greg_store(t, in, RAX, in->rm, size);
	return TR_OK;
}

/*
 * Read-modify-write of memory without LOCK: ALU r/m, reg (00-31), group 1
 * (80-83), INC/DEC (FE/FF /0 /1), NOT/NEG (F6/F7 /2 /3).  The load is
 * translated for writing, as rmw_load() does; the flags are held in
 * cpu->tr_tmp across the store and set only after it, so a faulting store
 * leaves the state as it was.
 */
static int tr_rmw(struct tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize, o = in->op, ext = in->reg & 7;
	uint32_t mask = F_ARITH;
	int aop = -1;

	if (o < 0x40)
		aop = (int)(o >> 3);
	else if (o >= 0x80 && o <= 0x83)
		aop = (int)ext;
	if (aop == ALU_CMP)
		return TR_NO;
	ea(t, in);
	mem_load_acc(t, in->seg, size, true);
	if (o < 0x40) {
		greg_load(t, in, RCX, in->reg, size);
	} else if (aop >= 0) {
		jit_tr_mov_imm(&t->b, RCX, in->imm & size_mask(size));
	}
	if (aop == ALU_ADC || aop == ALU_SBB)
		op_imm8(t, 4, 0x0fba, 4, M(RBX, OFF_RFLAGS), 0);	/* bt: CF in */
	if (aop >= 0) {
		op(t, size, (uint32_t)(aop << 3 | (size == 1 ? 0 : 1)), RCX, R(RAX));
	} else {
		op(t, size, o, ext, R(RAX));		/* INC DEC NOT NEG */
		if (o <= 0xf7 && ext == 2)
			mask = 0;			/* NOT: no flags */
		else if (o >= 0xfe)
			mask = F_ARITH & ~F_CF;
	}
	if (mask && !t->fl_dead) {
		jit_tr_byte(&t->b, 0x9c);		/* pushfq */
		jit_tr_byte(&t->b, 0x5a);		/* pop rdx */
		store(t, 8, RDX, M(RBX, OFF_TR_TMP));
	}
	op(t, 8, 0x8b, R8, R(RAX));
	ea(t, in);
	mem_store(t, in->seg, size);
	if (mask && !t->fl_dead) {
		load(t, 8, RDX, M(RBX, OFF_TR_TMP));
		flags_merge_rdx(t, mask);
	}
	smc_check(t);
	return TR_OK;
}

/* Which inline form an instruction has, if any. */
static int tr_insn(struct tr *t, const struct jit_insn *in)
{
	uint8_t o = in->op;

	if (in->map == MAP_0F) {
		if ((o & 0xf0) == 0x80)
			return tr_branch(t, in);
		if (o == 0xb6 || o == 0xb7 || o == 0xbe || o == 0xbf)
			return tr_movx(t, in);
		if (o == 0xaf)
			return tr_imul(t, in);
		if (o == 0x1f)
			return TR_OK;			/* NOP r/m */
		if ((o & 0xf0) == 0x40)
			return tr_cmov(t, in);
		if ((o & 0xf0) == 0x90)
			return tr_setcc(t, in);
		if (o >= 0xc8 && o <= 0xcf)
			return tr_bswap(t, in);
		return TR_NO;
	}
	if (in->map != MAP_1B)
		return TR_NO;
	if (in->mod != 3 && !in->lock && ((o < 0x40 && (o & 7) < 2) || (o >= 0x80 && o <= 0x83) ||
	    ((o == 0xfe || o == 0xff) && (in->reg & 7) < 2) ||
	    ((o == 0xf6 || o == 0xf7) && ((in->reg & 7) == 2 || (in->reg & 7) == 3))) &&
	    !((o < 0x40 && (o >> 3) == ALU_CMP) || (o >= 0x80 && o <= 0x83 && (in->reg & 7) == ALU_CMP)))
		return tr_rmw(t, in);
	if (o < 0x40 && (o & 7) < 6)
		return tr_alu(t, in);
	if (o >= 0x50 && o < 0x60)
		return tr_pushpop(t, in);
	if ((o & 0xf0) == 0x70 || o == 0xe8 || o == 0xe9 || o == 0xeb || o == 0xc3 || o == 0xc2)
		return tr_branch(t, in);
	if ((o >= 0x80 && o <= 0x85) || o == 0xa8 || o == 0xa9)
		return tr_alu(t, in);
	if (o == 0xf6 || o == 0xf7)
		return tr_grp3(t, in);
	if ((o >= 0x88 && o <= 0x8b) || o == 0xc6 || o == 0xc7)
		return tr_mov(t, in);
	if (o >= 0xb0 && o < 0xc0)
		return tr_mov_r_imm(t, in);
	if (o == 0x8d)
		return tr_lea(t, in);
	if (o == 0x63 && in->opsize == 8)
		return tr_movx(t, in);
	if (o == 0xc0 || o == 0xc1 || (o >= 0xd0 && o <= 0xd3))
		return tr_grp2(t, in);
	if (o == 0x69 || o == 0x6b)
		return tr_imul(t, in);
	if (o == 0xfe || o == 0xff)
		return tr_incdec(t, in);
	if (o == 0x90 && !in->rex && in->rep != 0xf3)
		return TR_OK;				/* NOP */
	return TR_NO;
}

/* An instruction through its interpreter handler, as the block loop runs
 * it; leaves when it branched or wrote this block's code. */
static void tr_call(struct tr *t, const struct jit_binsn *bi, bool last)
{
	uint8_t *e1, *cont;

	sync_state(t);
	t->pend = 0;
	jit_tr_mov_imm(&t->b, RAX, t->next);
	store(t, 8, RAX, M(RBX, OFF_NEXT));
	op(t, 8, 0x8b, RDI, R(RBX));
	jit_tr_mov_imm(&t->b, RSI, (uint64_t)(uintptr_t)&bi->in);
	jit_tr_call(&t->b, (const void *)bi->fn);
	t->pend = 1;
	t->dirty = 0;
	if (!last)
		cache_load(t, false);		/* the handler may have changed any */
	load(t, 8, RAX, M(RBX, OFF_NEXT));
	if (last) {
		exit_rax(t);
		return;
	}
	jit_tr_mov_imm(&t->b, RCX, t->next);
	op(t, 8, 0x3b, RAX, R(RCX));
	e1 = jit_tr_jump(&t->b, 5);
	op_imm8(t, 1, 0x80, 7, M(RBX, OFF_SMC_HIT), 0);
	cont = jit_tr_jump(&t->b, 4);
	jit_tr_here(&t->b, e1);
	exit_rax(t);
	jit_tr_here(&t->b, cont);
}

/*
 * The entry from another block (exit_link): go on only while the code
 * bytes are those translated (block.c's same_code()), no signal is
 * pending and the budget allows a whole block; otherwise return to the
 * run loop at this block's start.  A jump from the block back to its own
 * start (a loop, loop_back()) checks signals and budget only: its bytes can change
 * only through its own stores, which leave the block (smc_check), or
 * through another agent's, which a processor need not see before it
 * serializes (SDM vol. 3, 8.1.3 on cross-modifying code).
 */
static void chain_entry(struct tr *t, const uint8_t *code, unsigned nbytes)
{
	uint8_t *bail[4 + 15 * 32 / 8 + 8];
	unsigned nb = 0, i;
	uint64_t q;

	jit_tr_mov_imm(&t->b, RDX, (uint64_t)(uintptr_t)t->gen);	/* mapping still valid? */
	load(t, 8, RAX, M(RDX, 0));
	op(t, 8, 0x3b, RAX, M(RBX, OFF_TLB_GEN));
	bail[nb++] = jit_tr_jump(&t->b, 5);
	jit_tr_mov_imm(&t->b, RDX, (uint64_t)(uintptr_t)code);
	for (i = 0; i + 8 <= nbytes || (i < nbytes && nbytes >= 8); i += 8) {
		unsigned at = i + 8 <= nbytes ? i : nbytes - 8;

		memcpy(&q, code + at, 8);
		jit_tr_mov_imm(&t->b, RAX, q);
		op(t, 8, 0x3b, RAX, M(RDX, (int32_t)at));
		bail[nb++] = jit_tr_jump(&t->b, 5);
	}
	for (; i < nbytes; i++) {			/* blocks under 8 bytes */
		op_imm8(t, 1, 0x80, 7, M(RDX, (int32_t)i), code[i]);
		bail[nb++] = jit_tr_jump(&t->b, 5);
	}
	op_imm32(t, 8, 0xc7, 0, M(RBX, OFF_TR_LINK), 0);
	load(t, 8, RAX, M(RBX, OFF_ICOUNT));
	op(t, 8, 0x3b, RAX, M(RBX, OFF_CHAIN_END));
	bail[nb++] = jit_tr_jump(&t->b, 3);		/* jae */
	op_imm8(t, 4, 0x83, 7, M(RBX, OFF_EVENTS), 0);
	bail[nb++] = jit_tr_jump(&t->b, 5);
	op_imm8(t, 1, 0x80, 7, M(RBX, OFF_IRQ), 0);
	bail[nb++] = jit_tr_jump(&t->b, 5);
	{
		uint8_t *body = jit_tr_jump(&t->b, -1);

		for (i = 0; i < nb; i++)
			jit_tr_here(&t->b, bail[i]);
		exit_to(t, t->rip);			/* pend is 0 here */
		jit_tr_here(&t->b, body);
	}
}

/*
 * Which guest registers the block keeps in host registers: the most used
 * ones (two uses or more), never one whose high byte (AH..BH) an
 * instruction names, since the host registers caching have none.
 */
static void cache_pick(struct tr *t, const struct jit_binsn *insn, unsigned n)
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
static void prologue(struct tr *t)
{
	static const uint8_t pro[] = {
		0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57,	/* push rbx rbp r12-r15 */
		0x48, 0x83, 0xec, 0x08,						/* sub rsp, 8 */
	};

	for (unsigned i = 0; i < sizeof(pro); i++)
		jit_tr_byte(&t->b, pro[i]);
	op(t, 8, 0x8b, RBX, R(RDI));			/* mov rbx, rdi */
}

static void epilogue(struct tr *t)
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
 * rq->chain, the entry for other blocks, and rq->gen, the TLB generation
 * word that entry checks), or NULL when the buffer filled up.  The word
 * and two exit slots (struct jit_tr_slot) precede the code.
 */
jit_tr_fn *jit_tr_translate(struct jit_tr_buf *b, struct jit_tr_req *rq)
{
	struct tr t = { .b = *b, .rip = rq->rip, .cpl = rq->cpl, .jc = rq->jc, .entry_rip = rq->rip,
			.code_lo = (uintptr_t)rq->code, .code_hi = (uintptr_t)rq->code + rq->nbytes };
	bool dead[64];
	uint8_t *start, *body;
	int r = TR_OK;

	if (rq->n > 64 || t.b.p + 8 + 2 * sizeof(struct jit_tr_slot) > t.b.end)
		return NULL;	/* blocks are at most 32 instructions */
	jit_tr_flags_dead(rq->insn, rq->n, dead);
	t.gen = (uint64_t *)(void *)t.b.p;
	*t.gen = 0;		/* never a TLB generation: block.c sets it */
	t.b.p += 8;
	t.slot = (struct jit_tr_slot *)(void *)t.b.p;
	t.nslot = 2;
	memset(t.slot, 0, 2 * sizeof(struct jit_tr_slot));
	t.b.p += 2 * sizeof(struct jit_tr_slot);
	rq->gen = t.gen;
	start = t.b.p;
	cache_pick(&t, rq->insn, rq->n);
	prologue(&t);
	body = jit_tr_jump(&t.b, -1);
	t.epi = t.b.p;
	epilogue(&t);
	rq->chain = t.b.p;
	chain_entry(&t, rq->code, rq->nbytes);
	jit_tr_here(&t.b, body);
	cache_load(&t, false);
	t.body = t.b.p;
	for (unsigned i = 0; i < rq->n && r != TR_END; i++) {
		const struct jit_insn *in = &rq->insn[i].in;

		t.next = t.rip + in->len;
		t.fl_dead = dead[i];
		t.fuse = i + 1 < rq->n && rq->insn[i + 1].in.opsize == 8 &&
			 ((rq->insn[i + 1].in.map == MAP_1B && (rq->insn[i + 1].in.op & 0xf0) == 0x70) ||
			  (rq->insn[i + 1].in.map == MAP_0F && (rq->insn[i + 1].in.op & 0xf0) == 0x80));
		r = tr_insn(&t, in);
		if (t.hflags && !t.fuse) {	/* kept for a Jcc that did not take them */
			flags_merge_rdx(&t, t.hflags);
			t.hflags = 0;
		}
		if (r == TR_NO) {
			tr_call(&t, &rq->insn[i], i == rq->n - 1);
			r = i == rq->n - 1 ? TR_END : TR_OK;
		} else if (r == TR_OK) {
			t.pend++;
		}
		t.rip = t.next;
	}
	if (r != TR_END)
		exit_link(&t, t.rip);
	if (t.b.full)
		return NULL;
	*b = t.b;
	return (jit_tr_fn *)(void *)start;
}
