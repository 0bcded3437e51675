/*
 * The translator's memory operands (see the essay in tr-x86.c): effective
 * addresses, the inline TLB lookup with its slow path into C, stores that
 * may hit the block's own code, and the instructions built on them (MOV,
 * LEA, PUSH/POP, CALL/RET and Jcc at a block's end, read-modify-write of
 * memory).  Intel SDM vol. 3, 4.10 (TLBs) for what the lookup mirrors.
 */
#include "jit/internal.h"

/* Effective address of the memory operand into RSI (insn_ea()). */
void jit_tr_ea(struct jit_tr *t, const struct jit_insn *in)
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
			jit_tr_ld(t, 8, RSI, jit_tr_m(RBX, OFF_GPR(in->base)));
	} else {
		jit_tr_mov_imm(&t->b, RSI, (uint64_t)(int64_t)in->disp);
		if (in->index == REG_NONE) {
			if (in->addrsize == 4)
				jit_tr_ins(t, 4, 0x8b, RSI, jit_tr_r(RSI));
			return;
		}
	}
	if (in->index != REG_NONE) {
		index = t->host[in->index] >= 0 ? (unsigned)t->host[in->index] : RCX;
		if (index == RCX)
			jit_tr_ld(t, 8, RCX, jit_tr_m(RBX, OFF_GPR(in->index)));
		jit_tr_ins(t, 8, 0x8d, RSI, jit_tr_mx(base, index, in->scale,
						      in->base != REG_NONE ? in->disp : 0));
	} else if (in->disp || base != RSI) {
		jit_tr_ins(t, 8, 0x8d, RSI, jit_tr_m(base, in->disp));
	}
	if (in->addrsize == 4)
		jit_tr_ins(t, 4, 0x8b, RSI, jit_tr_r(RSI));
}

/*
 * The inline TLB lookup for the linear address seg:RSI (RSI itself, or
 * RAX = RSI + the FS/GS base): returns that register, with RDX = host
 * address minus linear address, or a jump to *miss (a patch point) for
 * the slow path.  The page of the access's last byte is compared with
 * cpu->tlb_fast[kind].page (the entry's page, or TLB_NONE when this kind of
 * access may not go straight to host memory) in the entry of its first
 * byte's page, so an access that crosses into the next page misses (those
 * pages' entries differ) and one compare covers both.
 */
static unsigned tlb_fast(struct jit_tr *t, int seg, unsigned size, bool write, uint8_t **miss)
{
	unsigned lin = RSI, kind = (write ? 2 : 0) + (t->cpl == 3);

	if (seg == SEG_FS || seg == SEG_GS) {
		jit_tr_ld(t, 8, RAX, jit_tr_m(RBX, OFF_SEGBASE(seg)));
		jit_tr_ins(t, 8, 0x01, RSI, jit_tr_r(RAX));		/* add rax, rsi */
		lin = RAX;
	}
	jit_tr_ins(t, 8, 0x8d, RCX, jit_tr_m(lin, (int32_t)size - 1));	/* lea rcx, [lin + size - 1] */
	jit_tr_ins32(t, 8, 0x81, 4, jit_tr_r(RCX), 0xfffff000);	/* and rcx, -4096: its page */
	jit_tr_ins(t, 4, 0x8b, RDX, jit_tr_r(lin));
	jit_tr_ins8(t, 4, 0xc1, 5, jit_tr_r(RDX), 8);		/* shr edx, 8 */
	jit_tr_ins32(t, 4, 0x81, 4, jit_tr_r(RDX), (TLB_SIZE - 1) * 16);	/* the entry's index * 16 */
	jit_tr_ins(t, 8, 0x3b, RCX, jit_tr_mx(RBX, RDX, 0, OFF_TLB_FAST(kind)));
	*miss = jit_tr_jump(&t->b, 5);
	jit_tr_ld(t, 8, RDX, jit_tr_mx(RBX, RDX, 0, OFF_TLB_ADD(kind)));
	return lin;
}

/* The slow path of an access: the interpreter's, in C, with its faults. */
static void slow_path(struct jit_tr *t, int seg, unsigned size, const void *fn)
{
	jit_tr_sync_state(t);
	jit_tr_ins(t, 8, 0x8b, RDX, jit_tr_r(RSI));
	jit_tr_mov_imm(&t->b, RSI, (unsigned)seg);
	jit_tr_mov_imm(&t->b, RCX, size);
	jit_tr_ins(t, 8, 0x8b, RDI, jit_tr_r(RBX));
	jit_tr_call(&t->b, fn);
	jit_tr_pend_flush(t, -1);
	jit_tr_cache_load(t, true);
}

/*
 * The fast path just emitted jumps to miss[] for the slow path: note it
 * for jit_tr_cold_emit() with the translator's state now (the slow path
 * leaves the state as it was, flags included: jit_tr_flags_out()).  NULL
 * when the block has too many: the caller emits it in line.
 */
static struct jit_tr_cold *cold_note(struct jit_tr *t, uint8_t *const miss[3], int seg,
				     unsigned size, const void *fn)
{
	struct jit_tr_cold *c;

	if (t->ncold == t->maxcold)
		return NULL;
	c = &t->cold[t->ncold++];
	c->at = *t;
	memcpy(c->miss, miss, sizeof(c->miss));
	c->fn = fn;
	c->seg = seg;
	c->size = size;
	c->last = false;
	c->exit = false;
	c->resume = t->b.p;
	return c;
}

/*
 * A conditional exit from inside the block (a Jcc that does not end it):
 * the jump to host condition cc goes to the exit, linked to the block at
 * rip as any other, emitted after the block with the translator's state
 * now (or here, jumped over, when the block has too many paths out of
 * line); the code after it goes on with that state.
 */
void jit_tr_side_exit(struct jit_tr *t, int cc, uint64_t rip)
{
	uint8_t *taken = jit_tr_jump(&t->b, cc), *over;
	struct jit_tr_cold *c = cold_note(t, (uint8_t *[3]){ taken, NULL, NULL }, 0, 0, NULL);

	if (c) {
		c->exit = true;
		c->exit_rip = rip;
		return;
	}
	over = jit_tr_jump(&t->b, -1);
	jit_tr_here(&t->b, taken);
	jit_tr_exit_link_out(t, t, rip);
	jit_tr_here(&t->b, over);
}

/* The slow path for the jump to miss: noted for after the block, or here
 * in line (jumped over) when the block has too many. */
static void slow_path_for(struct jit_tr *t, uint8_t *miss, int seg, unsigned size,
			  const void *fn)
{
	uint8_t *done;

	if (cold_note(t, (uint8_t *[3]){ miss, NULL, NULL }, seg, size, fn))
		return;
	done = jit_tr_jump(&t->b, -1);
	jit_tr_here(&t->b, miss);
	slow_path(t, seg, size, fn);
	jit_tr_here(&t->b, done);
}

/* The slow paths noted, after the block's code: each jumps back where its
 * fast path goes on. */
void jit_tr_cold_emit(struct jit_tr *t)
{
	for (unsigned i = 0; i < t->ncold; i++) {
		struct jit_tr_cold *c = &t->cold[i];
		struct jit_tr s = c->at;

		for (int k = 0; k < 3; k++)
			jit_tr_here(&t->b, c->miss[k]);
		if (c->exit) {
			jit_tr_exit_link_out(t, &s, c->exit_rip);
			continue;
		}
		s.b = t->b;
		slow_path(&s, c->seg, c->size, c->fn);
		if (c->last) {
			struct jit_tr e = c->end;

			e.b = s.b;
			jit_tr_smc_check(&e);
			s.b = e.b;
		}
		jit_tr_jump_to(&s.b, -1, c->resume);
		t->b = s.b;
	}
	t->ncold = 0;
}

/* Raise exception vector (no error code) at the instruction being
 * translated when its fast path jumps to miss: the state as the
 * translator has it now, RIP at the instruction, as for a faulting
 * memory access. */
void jit_tr_cold_raise(struct jit_tr *t, uint8_t *miss, int vector)
{
	slow_path_for(t, miss, vector, 0, (const void *)jit_tr_fault);
}

/* XMM1 = the 16 bytes at seg:RSI (an SSE load), through cpu->tr_x, where
 * the slow path (jit_tr_read16()) leaves them.  Clobbers RAX, RCX, RDX,
 * RSI, RDI, R8-R11 and, on the slow path, the other XMM registers. */
void jit_tr_mem_load16(struct jit_tr *t, int seg)
{
	uint8_t *miss;
	unsigned lin = tlb_fast(t, seg, 16, false, &miss);

	jit_tr_byte(&t->b, 0xf3);				/* movdqu xmm1, [lin + rdx] */
	jit_tr_ins(t, 4, 0x0f6f, 1, jit_tr_mx(lin, RDX, 0, 0));
	jit_tr_byte(&t->b, 0xf3);				/* movdqu [rbx + tr_x], xmm1 */
	jit_tr_ins(t, 4, 0x0f7f, 1, jit_tr_m(RBX, OFF_TR_X));
	slow_path_for(t, miss, seg, 16, (const void *)jit_tr_read16);
	jit_tr_byte(&t->b, 0xf3);				/* movdqu xmm1, [rbx + tr_x] */
	jit_tr_ins(t, 4, 0x0f6f, 1, jit_tr_m(RBX, OFF_TR_X));
}

/* RAX = the size bytes at seg:RSI, zero-extended (translated for writing
 * when write: the load of a read-modify-write).  Clobbers RCX, RDX, RSI,
 * RDI, R8-R11. */
void jit_tr_mem_load_acc(struct jit_tr *t, int seg, unsigned size, bool write)
{
	uint8_t *miss;
	unsigned lin = tlb_fast(t, seg, size, write, &miss);
	const void *fn = write ? (const void *)jit_tr_read_w : (const void *)jit_tr_read;

	jit_tr_ld(t, size, RAX, jit_tr_mx(lin, RDX, 0, 0));
	slow_path_for(t, miss, seg, size, fn);
}

void jit_tr_mem_load(struct jit_tr *t, int seg, unsigned size)
{
	jit_tr_mem_load_acc(t, seg, size, false);
}

/*
 * Store R8's low size bytes at seg:RSI: the fast path, then the slow path
 * (noted for after the block, or here, then *done is the fast path's jump
 * to patch to where the code goes on).  A store into a page of the
 * block's own code (one, or two for a block that crosses into the next)
 * takes the slow path, which notes one into the code itself (smc_note); a
 * store that crosses a page misses the TLB.  Clobbers RAX, RCX, RDX, RSI,
 * RDI, R9-R11.
 */
static struct jit_tr_cold *store_acc(struct jit_tr *t, int seg, unsigned size, uint8_t **done,
				     bool xmm)
{
	const void *fn = xmm ? (const void *)jit_tr_write16 : (const void *)jit_tr_write;
	uintptr_t first = t->code_lo & ~(uintptr_t)0xfff, last = (t->code_hi - 1) & ~(uintptr_t)0xfff;
	uint8_t *miss, *smc[2] = { NULL, NULL };
	unsigned lin = tlb_fast(t, seg, size, true, &miss);
	struct jit_tr_cold *c;

	jit_tr_ins(t, 8, 0x8d, RDX, jit_tr_mx(lin, RDX, 0, 0));	/* lea rdx, [lin + rdx]: host */
	jit_tr_ins(t, 8, 0x8b, RCX, jit_tr_r(RDX));
	jit_tr_ins32(t, 8, 0x81, 4, jit_tr_r(RCX), 0xfffff000);	/* and rcx, -4096 */
	jit_tr_mov_imm(&t->b, RAX, first);
	jit_tr_ins(t, 8, 0x3b, RCX, jit_tr_r(RAX));
	smc[0] = jit_tr_jump(&t->b, 4);			/* je */
	if (last != first) {
		jit_tr_mov_imm(&t->b, RAX, last);
		jit_tr_ins(t, 8, 0x3b, RCX, jit_tr_r(RAX));
		smc[1] = jit_tr_jump(&t->b, 4);
	}
	if (xmm) {
		jit_tr_byte(&t->b, 0xf3);			/* movdqu [rdx], xmm1 */
		jit_tr_ins(t, 4, 0x0f7f, 1, jit_tr_m(RDX, 0));
	} else {
		jit_tr_st(t, size, R8, jit_tr_m(RDX, 0));
	}
	c = cold_note(t, (uint8_t *[3]){ miss, smc[0], smc[1] }, seg, size, fn);
	*done = NULL;
	if (c)
		return c;
	*done = jit_tr_jump(&t->b, -1);
	jit_tr_here(&t->b, miss);
	jit_tr_here(&t->b, smc[0]);
	jit_tr_here(&t->b, smc[1]);
	slow_path(t, seg, size, fn);
	return NULL;
}

static struct jit_tr_cold *store(struct jit_tr *t, int seg, unsigned size, uint8_t **done)
{
	return store_acc(t, seg, size, done, false);
}

/* Store XMM1 (16 bytes) at seg:RSI as an instruction's last store: then
 * jit_tr_mem_store_end(), as after jit_tr_mem_store_last().  XMM1 goes to
 * cpu->tr_x first, where the slow path (jit_tr_write16()) takes it. */
void jit_tr_mem_store16_last(struct jit_tr *t, int seg, uint8_t **done)
{
	jit_tr_byte(&t->b, 0xf3);				/* movdqu [rbx + tr_x], xmm1 */
	jit_tr_ins(t, 4, 0x0f7f, 1, jit_tr_m(RBX, OFF_TR_X));
	if (store_acc(t, seg, 16, done, true))
		*done = NULL;
}

/* Store R8's low size bytes at seg:RSI (then jit_tr_smc_check() once the
 * instruction is done). */
void jit_tr_mem_store(struct jit_tr *t, int seg, unsigned size)
{
	uint8_t *done;

	store(t, seg, size, &done);
	jit_tr_here(&t->b, done);
}

/* The same for a store that ends its instruction: only the slow path can
 * write the block's code, so only it checks (jit_tr_smc_check()), with
 * the translator's state at jit_tr_mem_store_end(), which the caller
 * calls after its own updates of that state.  *done: for it. */
void jit_tr_mem_store_last(struct jit_tr *t, int seg, unsigned size, uint8_t **done)
{
	if (store(t, seg, size, done))
		*done = NULL;		/* noted: the last one in t->cold */
}

void jit_tr_mem_store_end(struct jit_tr *t, uint8_t *done)
{
	struct jit_tr_cold *c = t->ncold ? &t->cold[t->ncold - 1] : NULL;

	if (!done && c && !c->last && c->resume == t->b.p) {
		c->end = *t;
		c->last = true;
		return;
	}
	jit_tr_smc_check(t);
	jit_tr_here(&t->b, done);
}

/* After an instruction that stored: leave if it wrote this block's code. */
void jit_tr_smc_check(struct jit_tr *t)
{
	uint8_t *go;

	jit_tr_ins8(t, 1, 0x80, 7, jit_tr_m(RBX, OFF_SMC_HIT), 0);
	go = jit_tr_jump(&t->b, 4);
	t->pend++;
	jit_tr_exit_to(t, t->next);
	t->pend--;
	jit_tr_here(&t->b, go);
}

/* The r/m operand of size bytes into RAX (register or memory). */
void jit_tr_rm_to_rax(struct jit_tr *t, const struct jit_insn *in, unsigned size)
{
	if (in->mod == 3) {
		jit_tr_greg_load(t, in, RAX, in->rm, size);
	} else {
		jit_tr_ea(t, in);
		jit_tr_mem_load(t, in->seg, size);
	}
}

/* Guest register dst = guest register src (size bytes), host register to
 * host register when dst is cached. */
static void mov_rr(struct jit_tr *t, const struct jit_insn *in, unsigned dst, unsigned src,
		   unsigned size)
{
	struct jit_tr_rm d = jit_tr_greg(t, in, dst, size);

	if (!d.mem) {		/* mov r32 zero-extends, mov r8/r16 keep the rest */
		jit_tr_ins(t, size, size == 1 ? 0x8a : 0x8b, (unsigned)d.base, jit_tr_greg(t, in, src, size));
		jit_tr_gpr_written(t, dst);
		return;
	}
	jit_tr_greg_load(t, in, RAX, src, size);
	jit_tr_greg_store(t, in, RAX, dst, size);
}

/* MOV 88/89/8A/8B, C6/C7 /0 */
int jit_tr_mov(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint8_t *done;

	switch (in->op) {
	case 0x8a: case 0x8b:
		if (in->mod == 3) {
			mov_rr(t, in, in->reg, in->rm, size);
			return TR_OK;
		}
		jit_tr_rm_to_rax(t, in, size);
		jit_tr_greg_store(t, in, RAX, in->reg, size);
		return TR_OK;
	case 0x88: case 0x89:
		if (in->mod == 3) {
			mov_rr(t, in, in->rm, in->reg, size);
			return TR_OK;
		}
		jit_tr_ea(t, in);
		jit_tr_greg_load(t, in, R8, in->reg, size);
		break;
	default:	/* C6/C7 */
		if ((in->reg & 7) != 0)
			return TR_NO;
		if (in->mod == 3) {
			jit_tr_mov_imm(&t->b, RAX, in->imm & size_mask(size));
			jit_tr_greg_store(t, in, RAX, in->rm, size);
			return TR_OK;
		}
		jit_tr_ea(t, in);
		jit_tr_mov_imm(&t->b, R8, in->imm & size_mask(size));
	}
	jit_tr_mem_store_last(t, in->seg, size, &done);
	jit_tr_mem_store_end(t, done);
	return TR_OK;
}

/* 8D: LEA */
int jit_tr_lea(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->mod == 3 || in->opsize < 4)
		return TR_NO;
	jit_tr_ea(t, in);
	jit_tr_greg_store(t, in, RSI, in->reg, in->opsize);
	return TR_OK;
}

/* 50-57: PUSH r; 58-5F: POP r (64-bit) */
/* Push R8 (64 bits): the store first, then RSP, so that a faulting store
 * leaves RSP as it was.  (The caller checks for a store into its own
 * code, or ends the block.) */
static void push_r8(struct jit_tr *t)
{
	jit_tr_ld(t, 8, RSI, jit_tr_gpr(t, JIT_RSP));
	jit_tr_ins8(t, 8, 0x83, 5, jit_tr_r(RSI), 8);
	jit_tr_mem_store(t, SEG_SS, 8);
	jit_tr_ins8(t, 8, 0x83, 5, jit_tr_gpr(t, JIT_RSP), 8);
	jit_tr_gpr_written(t, JIT_RSP);
}

int jit_tr_pushpop(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->opsize != 8)
		return TR_NO;
	if (in->op < 0x58) {
		jit_tr_ld(t, 8, R8, jit_tr_gpr(t, in->reg));
		push_r8(t);
		jit_tr_smc_check(t);
	} else {
		jit_tr_ld(t, 8, RSI, jit_tr_gpr(t, JIT_RSP));
		jit_tr_mem_load(t, SEG_SS, 8);
		jit_tr_ins8(t, 8, 0x83, 0, jit_tr_gpr(t, JIT_RSP), 8);
		jit_tr_gpr_written(t, JIT_RSP);
		jit_tr_st(t, 8, RAX, jit_tr_gpr(t, in->reg));
		jit_tr_gpr_written(t, in->reg);
	}
	return TR_OK;
}

/* 68/6A: PUSH imm32/imm8, sign-extended (64-bit operand size), as
 * PUSH r64 is translated. */
int jit_tr_push_imm(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->opsize != 8)
		return TR_NO;
	jit_tr_mov_imm(&t->b, R8, in->imm);
	push_r8(t);
	jit_tr_smc_check(t);
	return TR_OK;
}

/* 9C: PUSHF (64-bit operand size): RFLAGS as it is, RF and VM clear
 * (pushfq; pop; cli is local_irq_save()). */
int jit_tr_pushf(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->opsize != 8)
		return TR_NO;
	jit_tr_flags_sync(t);
	jit_tr_ld(t, 8, R8, jit_tr_m(RBX, OFF_RFLAGS));
	jit_tr_ins32(t, 8, 0x81, 4, jit_tr_r(R8), ~(uint32_t)(F_VM | F_RF));	/* and r8, imm */
	push_r8(t);
	jit_tr_smc_check(t);
	return TR_OK;
}

/* FA: CLI; #GP(0) when CPL > IOPL (no check at CPL 0).  RFLAGS.IF is in
 * memory at every point of a block (irq_check() reads it there). */
int jit_tr_cli(struct jit_tr *t, const struct jit_insn *in)
{
	uint8_t *gp;

	(void)in;
	if (t->cpl) {
		jit_tr_ld(t, 4, RAX, jit_tr_m(RBX, OFF_RFLAGS));
		jit_tr_ins32(t, 4, 0x81, 4, jit_tr_r(RAX), F_IOPL);			/* and */
		jit_tr_ins32(t, 4, 0x81, 7, jit_tr_r(RAX), t->cpl << 12);		/* cmp */
		gp = jit_tr_jump(&t->b, 2);						/* jb */
		jit_tr_cold_raise(t, gp, EXC_GP);
	}
	jit_tr_ins8(t, 1, 0x80, 4, jit_tr_m(RBX, OFF_RFLAGS + 1), (uint8_t)~(F_IF >> 8));	/* and */
	return TR_OK;
}

/*
 * FF /2 CALL and FF /4 JMP through a register or memory (64-bit operand
 * size), the block's end: the target is read first (and faults there),
 * CALL's push is a store as in jit_tr_branch(), and the exit looks the
 * target up among the chained entries (RET's table).  A non-canonical
 * target faults at its fetch, as in the interpreter.
 */
int jit_tr_indirect(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->opsize != 8)
		return TR_NO;
	jit_tr_flags_sync(t);				/* tr_tmp is free */
	jit_tr_rm_to_rax(t, in, 8);
	if ((in->reg & 7) == 2) {
		jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_TR_TMP));
		jit_tr_mov_imm(&t->b, R8, t->next);
		push_r8(t);
		jit_tr_ld(t, 8, RAX, jit_tr_m(RBX, OFF_TR_TMP));
	}
	t->pend++;
	jit_tr_exit_dyn(t);
	return TR_END;
}

/* Jcc, JMP, CALL, RET (64-bit operand size): the block's end, but for
 * a Jcc inside it (block.c), whose taken path is a side exit */
int jit_tr_branch(struct jit_tr *t, const struct jit_insn *in)
{
	uint64_t target = t->next + in->imm;
	uint8_t *taken;

	if (in->opsize != 8)
		return TR_NO;
	t->pend++;
	if ((in->map == MAP_1B && (in->op & 0xf0) == 0x70) || in->map == MAP_0F) {
		unsigned cc = in->op & 15, need = jit_tr_cond_flags(cc);

		if (!t->last) {			/* a side exit; the block goes on */
			jit_tr_side_exit(t, jit_tr_cond(t, cc), target);
			t->pend--;		/* (the caller counts it) */
			return TR_OK;
		}
		if ((t->hflags & need) == need) {	/* the host flags hold the guest's */
			jit_tr_ins(t, 1, 0x0f90 | cc, 0, jit_tr_r(RSI));	/* setcc sil */
			if (target == t->entry_rip)		/* a loop within the block */
				jit_tr_flags_out_loop(t);
			else
				jit_tr_flags_out(t);
			t->pflags = 0;				/* RFLAGS exact */
			jit_tr_ins(t, 1, 0x84, RSI, jit_tr_r(RSI));	/* test sil, sil */
			taken = jit_tr_jump(&t->b, 5);
		} else {
			jit_tr_flags_sync(t);
			taken = jit_tr_jump(&t->b, jit_tr_cond(t, cc));
		}
		jit_tr_exit_link(t, t->next);
		jit_tr_here(&t->b, taken);
		jit_tr_exit_link(t, target);
		return TR_END;
	}
	switch (in->op) {
	case 0xe9: case 0xeb:
		if (!t->last) {			/* the block goes on there (block.c) */
			t->next = target;
			t->pend--;		/* (the caller counts it) */
			return TR_OK;
		}
		jit_tr_exit_link(t, target);
		return TR_END;
	case 0xe8:
		t->pend--;
		jit_tr_mov_imm(&t->b, R8, t->next);
		push_r8(t);
		t->pend++;
		jit_tr_exit_link(t, target);		/* a store into this block ends it anyway */
		return TR_END;
	default:	/* C3, C2 */
		t->pend--;
		jit_tr_ld(t, 8, RSI, jit_tr_gpr(t, JIT_RSP));
		jit_tr_mem_load(t, SEG_SS, 8);
		jit_tr_ins32(t, 8, 0x81, 0, jit_tr_gpr(t, JIT_RSP),
			 8 + (in->op == 0xc2 ? (uint32_t)in->imm : 0));
		jit_tr_gpr_written(t, JIT_RSP);
		t->pend++;
		jit_tr_exit_dyn(t);
		return TR_END;
	}
}

/* The end of a read-modify-write: the result in RAX stored at the memory
 * operand; the flags it set in the host flags (mask: which, 0 for none)
 * held in tr_tmp across the store and the guest's only after it, so a
 * faulting store leaves the state as it was. */
static void store_result_at(struct jit_tr *t, const struct jit_insn *in, unsigned size,
			    uint32_t mask, void (*ea)(struct jit_tr *, const struct jit_insn *))
{
	uint8_t *done;

	jit_tr_ins(t, 8, 0x8b, R8, jit_tr_r(RAX));
	if (mask && !t->fl_dead) {
		jit_tr_flags_capture(t);
		jit_tr_st(t, 2, RAX, jit_tr_m(RBX, OFF_TR_TMP));
	}
	ea(t, in);
	jit_tr_mem_store_last(t, in->seg, size, &done);
	if (mask && !t->fl_dead)
		t->pflags = mask;			/* the image in tr_tmp */
	jit_tr_mem_store_end(t, done);
}

static void store_result(struct jit_tr *t, const struct jit_insn *in, unsigned size,
			 uint32_t mask)
{
	store_result_at(t, in, size, mask, jit_tr_ea);
}

/* The end of CMPXCHG and XADD: R8 stored at the memory operand, guest
 * register reg (rsize bytes) written from tr_tmp2 first, the flags of
 * the host's operation held in tr_tmp across the store (as in
 * store_result()).  The address is taken again before the register
 * changes (it may be its base); the store cannot fault after the load
 * translated for writing, so the register may go first. */
static void store_after_reg(struct jit_tr *t, const struct jit_insn *in, unsigned reg,
			    unsigned rsize)
{
	uint8_t *done;

	if (!t->fl_dead) {
		jit_tr_flags_capture(t);
		jit_tr_st(t, 2, RAX, jit_tr_m(RBX, OFF_TR_TMP));
	}
	jit_tr_ea(t, in);
	jit_tr_ld(t, 8, RAX, jit_tr_m(RBX, OFF_TR_TMP2));
	jit_tr_greg_store(t, in, RAX, reg, rsize);
	jit_tr_mem_store_last(t, in->seg, in->opsize, &done);
	if (!t->fl_dead)
		t->pflags = F_ARITH;			/* the image in tr_tmp */
	jit_tr_mem_store_end(t, done);
}

/*
 * Read-modify-write of memory without LOCK: ALU r/m, reg (00-31), group 1
 * (80-83), INC/DEC (FE/FF /0 /1), NOT/NEG (F6/F7 /2 /3).  The load is
 * translated for writing, as rmw_load() does; the flags are held in
 * cpu->tr_tmp across the store (with RFLAGS exact before it) and become
 * the guest's only after it, so a faulting store leaves the state as it
 * was.
 */
int jit_tr_rmw(struct jit_tr *t, const struct jit_insn *in)
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
	jit_tr_ea(t, in);
	jit_tr_mem_load_acc(t, in->seg, size, true);
	jit_tr_flags_sync(t);				/* keeps RAX */
	if (o < 0x40) {
		jit_tr_greg_load(t, in, RCX, in->reg, size);
	} else if (aop >= 0) {
		jit_tr_mov_imm(&t->b, RCX, in->imm & size_mask(size));
	}
	if (aop == ALU_ADC || aop == ALU_SBB)
		jit_tr_flags_cf_in(t);
	if (aop >= 0) {
		jit_tr_ins(t, size, (uint32_t)(aop << 3 | (size == 1 ? 0 : 1)), RCX, jit_tr_r(RAX));
	} else {
		jit_tr_ins(t, size, o, ext, jit_tr_r(RAX));		/* INC DEC NOT NEG */
		if (o <= 0xf7 && ext == 2)
			mask = 0;			/* NOT: no flags */
		else if (o >= 0xfe)
			mask = F_ARITH & ~F_CF;
	}
	store_result(t, in, size, mask);
	return TR_OK;
}

/* RSI = the address of the unit of BT's memory operand that holds the
 * bit a register offset (RCX, as the register holds it) selects: the
 * offset is signed and may reach below the operand (SDM vol. 2, BT). */
static void bt_ea(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	jit_tr_ea(t, in);
	jit_tr_greg_load(t, in, RCX, in->reg, size);
	if (size == 8)
		jit_tr_ins(t, 8, 0x8b, RDX, jit_tr_r(RCX));		/* mov rdx, rcx */
	else
		jit_tr_ins(t, 8, size == 4 ? 0x63 : 0x0fbf, RDX, jit_tr_r(RCX));	/* movsx */
	jit_tr_ins8(t, 8, 0xc1, 7, jit_tr_r(RDX), 3);		/* sar rdx, 3 */
	jit_tr_ins8(t, 8, 0x83, 4, jit_tr_r(RDX), (uint8_t)-size);	/* and rdx, -size */
	jit_tr_ins(t, 8, 0x01, RDX, jit_tr_r(RSI));		/* add rsi, rdx */
	if (in->addrsize == 4)
		jit_tr_ins(t, 4, 0x8b, RSI, jit_tr_r(RSI));
}

/*
 * BT, BTS, BTR, BTC (op 0-3) with an immediate bit offset (0F BA /4-/7)
 * or one in a register (0F A3/AB/B3/BB), no LOCK, 16 bits or more.  The
 * host's own instruction on a register copy, with the guest's flags in
 * the host flags first, as jit_op_bt() and jit_op_grp8() run it: CF is
 * the bit, ZF stays, and the undefined flags come out as they do there.
 * The memory forms but BT store as jit_tr_rmw() does (store_result());
 * with a register offset the memory unit is the one the signed offset
 * selects (bt_ea()), the bit its offset in that unit.  (test_bit() and
 * the set_bit() family of a kernel on one CPU: no LOCK prefixes, a few
 * hundred per MiB of disk I/O.)
 */
static int bt_family(struct jit_tr *t, const struct jit_insn *in, unsigned op, bool imm)
{
	static const uint16_t host_op[4] = { 0x0fa3, 0x0fab, 0x0fb3, 0x0fbb };	/* BT BTS BTR BTC r/m, r */
	unsigned size = in->opsize;

	if (in->lock || size < 2)
		return TR_NO;
	if (in->mod == 3) {
		jit_tr_greg_load(t, in, RAX, in->rm, size);
	} else {
		if (imm) {
			jit_tr_ea(t, in);
		} else {
			bt_ea(t, in);
			jit_tr_ins8(t, 4, 0x83, 4, jit_tr_r(RCX), (uint8_t)(size * 8 - 1));	/* and ecx, bits - 1 */
			jit_tr_st(t, 8, RCX, jit_tr_m(RBX, OFF_TR_TMP2));
		}
		jit_tr_mem_load_acc(t, in->seg, size, op != 0);
	}
	jit_tr_flags_load(t);				/* keeps RAX */
	if (imm)
		jit_tr_mov_imm(&t->b, RCX, in->imm & (size * 8 - 1));
	else if (in->mod == 3)
		jit_tr_greg_load(t, in, RCX, in->reg, size);
	else
		jit_tr_ld(t, 8, RCX, jit_tr_m(RBX, OFF_TR_TMP2));
	jit_tr_ins(t, size, host_op[op], RCX, jit_tr_r(RAX));
	if (op == 0 || in->mod == 3) {
		jit_tr_flags_set(t, F_ARITH);
		if (op)
			jit_tr_greg_store(t, in, RAX, in->rm, size);
		return TR_OK;
	}
	store_result_at(t, in, size, F_ARITH, imm ? jit_tr_ea : bt_ea);
	return TR_OK;
}

/* 0F BA /4-/7: BT, BTS, BTR, BTC r/m, imm8 (bt_family()). */
int jit_tr_grp8(struct jit_tr *t, const struct jit_insn *in)
{
	if ((in->reg & 7) < 4)
		return TR_NO;
	return bt_family(t, in, (in->reg & 7) - 4, true);
}

/* 0F A3/AB/B3/BB: BT, BTS, BTR, BTC r/m, r (bt_family()). */
int jit_tr_bt(struct jit_tr *t, const struct jit_insn *in)
{
	return bt_family(t, in, (in->op >> 3) & 3, false);
}

/* The load of CMPXCHG's and XADD's memory operand into RAX, translated
 * for writing, RFLAGS exact after it; false for the forms left to the
 * handler (a register operand, LOCK). */
static bool rmw_m_load(struct jit_tr *t, const struct jit_insn *in)
{
	if (in->mod == 3 || in->lock)
		return false;
	jit_tr_ea(t, in);
	jit_tr_mem_load_acc(t, in->seg, in->opsize, true);
	jit_tr_flags_sync(t);				/* keeps RAX */
	return true;
}

/*
 * 0F B0/B1: CMPXCHG m, r without LOCK (a kernel's atomics once it runs on
 * one CPU: about one per page of disk I/O).  The host's CMPXCHG between
 * registers, with the whole guest RAX as its accumulator, leaves RAX as
 * the guest's (AL, AX or EAX zero-extended written only when the compare
 * fails) and the flags of the compare; then the store of the new or the
 * old value.  RAX is written before that store, which cannot fault after
 * the load translated for writing.
 */
int jit_tr_cmpxchg(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	if (!rmw_m_load(t, in))
		return TR_NO;
	jit_tr_ins(t, 8, 0x8b, RCX, jit_tr_r(RAX));
	jit_tr_greg_load(t, in, R8, in->reg, size);
	jit_tr_ld(t, 8, RAX, jit_tr_gpr(t, JIT_RAX));
	jit_tr_ins(t, size, size == 1 ? 0x0fb0 : 0x0fb1, R8, jit_tr_r(RCX));
	jit_tr_st(t, 8, RAX, jit_tr_m(RBX, OFF_TR_TMP2));
	jit_tr_ins(t, 8, 0x8b, R8, jit_tr_r(RCX));
	store_after_reg(t, in, JIT_RAX, 8);
	return TR_OK;
}

/*
 * 0F C0/C1: XADD m, r without LOCK (atomic_add_return() and friends of a
 * kernel on one CPU, a few per page of disk I/O).  The host's XADD between
 * registers gives the sum and the flags of the ADD; the register gets the
 * operand's old value and the operand the sum, the register written after
 * the address is taken again (it may be its base) and, as in
 * jit_tr_cmpxchg(), before a store that cannot fault after the load
 * translated for writing.
 */
int jit_tr_xadd(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;

	if (!rmw_m_load(t, in))
		return TR_NO;
	jit_tr_greg_load(t, in, RCX, in->reg, size);
	jit_tr_ins(t, size, size == 1 ? 0x0fc0 : 0x0fc1, RCX, jit_tr_r(RAX));	/* xadd rax, rcx */
	jit_tr_ins(t, 8, 0x8b, R8, jit_tr_r(RAX));
	jit_tr_st(t, 8, RCX, jit_tr_m(RBX, OFF_TR_TMP2));
	store_after_reg(t, in, in->reg, size);
	return TR_OK;
}

/*
 * 0F BC/BD: BSF, BSR; with F3 TZCNT, LZCNT, and F3 0F B8 POPCNT (16 bits
 * or more; __ffs(), fls() and find_next_bit() of a kernel).  The host's
 * own instruction, with the guest's flags in the host flags first, as
 * jit_op_bitscan() runs it; a BSF or BSR of zero leaves the register as
 * it was, not even zero-extended, so its write is skipped when ZF says
 * the source was zero.
 */
int jit_tr_bitscan(struct jit_tr *t, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	uint8_t *zero = NULL;

	if (in->lock || (in->op == 0xb8 && in->rep != 0xf3))
		return TR_NO;
	jit_tr_rm_to_rax(t, in, size);
	jit_tr_flags_load(t);				/* keeps RAX */
	jit_tr_greg_load(t, in, RCX, in->reg, size);
	if (in->rep == 0xf3)
		jit_tr_byte(&t->b, 0xf3);
	jit_tr_ins(t, size, 0x0f00 | in->op, RCX, jit_tr_r(RAX));
	jit_tr_flags_set(t, F_ARITH);
	if (in->rep != 0xf3)
		zero = jit_tr_jump(&t->b, 4);		/* jz: the source was zero */
	jit_tr_greg_store(t, in, RCX, in->reg, size);
	if (zero)
		jit_tr_here(&t->b, zero);
	return TR_OK;
}
