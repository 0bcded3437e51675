/*
 * The guest's arithmetic flags in translated code (tr-x86.c): where each
 * one's newest value is while a block runs, and flags liveness.
 *
 * Where they are.  Saving the host's flags (PUSHFQ) and merging them into
 * RFLAGS in memory after every operation made a chain of read-modify-
 * writes through one memory word, and loading them back (POPFQ) for ADC
 * is slower still.  So an operation leaves its flags where the host put
 * them, and the translator remembers, for each arithmetic flag, which of
 * three places holds its newest value: the host flags (t->hflags), a
 * PUSHFQ image in cpu->tr_tmp (t->pflags), or RFLAGS.  Instructions whose
 * code leaves the host flags alone (register MOVs, LEA, MOVZX, BSWAP)
 * keep them there, and those that read flags (Jcc, SETcc, CMOVcc,
 * ADC/SBB) read them there.  Any other instruction first saves them into
 * tr_tmp (jit_tr_flags_spill: PUSHFQ, POP to memory), unless no later
 * instruction can read them.  RFLAGS is made exact (the image merged
 * into it) only where something outside the block's code may look: on
 * the way out of the block, before a handler, and on the slow path of a
 * memory access, which may fault and deliver RFLAGS in the exception
 * frame; the fast path cannot fault, so a load or store between an
 * operation and its reader costs one PUSHFQ.
 *
 * Liveness.  Which instructions of a block need not keep the flags they
 * compute, because a later instruction of the block overwrites them
 * before anything can read them (Intel SDM vol. 1, 3.4.3.1 and appendix
 * A, "EFLAGS Cross-Reference", for which instruction reads and writes
 * which flag).  A memory operand counts as reading every flag: a fault
 * there delivers RFLAGS in the exception frame, so the flags must be
 * exact before it.  At the end of a block all flags are live.  What is
 * not known here reads and writes everything.
 */
#include "jit/internal.h"

/*
 * The coarse class of an instruction: FL_READ reads RFLAGS, may fault (a
 * memory operand) or runs a handler; FL_WRITE writes every arithmetic flag
 * and reads none; FL_NONE leaves them alone.  This mirrors tr_insn() in
 * tr-x86.c conservatively.
 */
enum { FL_NONE, FL_WRITE, FL_READ };

static int flag_use_1b(const struct jit_insn *in)
{
	uint8_t o = in->op;
	bool mem = in->mod != 3;
	unsigned ext = in->reg & 7, count;

	if (o < 0x40 && (o & 7) < 6) {
		if ((mem && (o & 7) < 4) || (o >> 3) == ALU_ADC || (o >> 3) == ALU_SBB)
			return FL_READ;
		return FL_WRITE;
	}
	if (o >= 0x80 && o <= 0x83)
		return mem || ext == ALU_ADC || ext == ALU_SBB ? FL_READ : FL_WRITE;
	if (o == 0x84 || o == 0x85 || o == 0x69 || o == 0x6b)
		return mem ? FL_READ : FL_WRITE;
	if (o == 0xa8 || o == 0xa9)
		return FL_WRITE;
	if (o == 0xf6 || o == 0xf7)
		return mem ? FL_READ : ext == 0 || ext == 3 ? FL_WRITE : ext == 2 ? FL_NONE :
		       o == 0xf7 && in->opsize >= 2 && (ext == 4 || ext == 5) ? FL_WRITE : FL_READ;
	if (o == 0xc0 || o == 0xc1 || o == 0xd0 || o == 0xd1) {
		count = o >= 0xd0 ? 1 : (unsigned)in->imm & (in->opsize == 8 ? 63 : 31);
		return !mem && count && ext >= 4 ? FL_WRITE : FL_READ;
	}
	if ((o >= 0x88 && o <= 0x8b) || o == 0x63 || ((o == 0xc6 || o == 0xc7) && ext == 0))
		return mem ? FL_READ : FL_NONE;
	if ((o >= 0xb0 && o < 0xc0) || (o == 0x8d && mem))
		return FL_NONE;
	if (o == 0x90 && !in->rex && in->rep != 0xf3)
		return FL_NONE;
	return FL_READ;
}

static int flag_use(const struct jit_insn *in)
{
	if (in->lock)
		return FL_READ;
	if (in->map == MAP_1B)
		return flag_use_1b(in);
	if (in->map == MAP_0F) {
		if (in->op == 0xb6 || in->op == 0xb7 || in->op == 0xbe || in->op == 0xbf)
			return in->mod != 3 ? FL_READ : FL_NONE;
		if (in->op == 0xaf)
			return in->mod != 3 ? FL_READ : FL_WRITE;
		if (in->op == 0x1f || (in->op >= 0xc8 && in->op <= 0xcf && in->opsize >= 4))
			return FL_NONE;
	}
	return FL_READ;
}

/*
 * Which flags an instruction reads (r), certainly writes (kill) and may
 * write (any), refining flag_use() for the register forms that write
 * only some: rotates by a known count (CF, and OF when by 1), INC/DEC
 * (all but CF), ADC/SBB (read CF).
 */
static void flag_sets(const struct jit_insn *in, uint32_t *r, uint32_t *kill, uint32_t *any)
{
	int u = flag_use(in);
	uint8_t o = in->op;
	unsigned ext = in->reg & 7, count;

	*r = u == FL_READ ? F_ARITH : 0;
	*kill = u == FL_WRITE ? F_ARITH : 0;
	*any = u == FL_NONE ? 0 : F_ARITH;
	if (in->lock || in->map != MAP_1B || in->mod != 3)
		return;
	if ((o == 0xc0 || o == 0xc1 || o == 0xd0 || o == 0xd1) && ext < 2) {
		count = o >= 0xd0 ? 1 : (unsigned)in->imm & (in->opsize == 8 ? 63 : 31);
		if (count) {
			*r = 0;
			*kill = *any = count == 1 ? F_CF | F_OF : F_CF;
		}
	} else if ((o == 0xfe || o == 0xff) && ext < 2) {
		*r = 0;
		*kill = *any = F_ARITH & ~F_CF;
	} else if ((o < 0x40 && (o & 7) < 6 && ((o >> 3) == ALU_ADC || (o >> 3) == ALU_SBB)) ||
		   (o >= 0x80 && o <= 0x83 && (ext == ALU_ADC || ext == ALU_SBB))) {
		*r = F_CF;
		*kill = *any = F_ARITH;
	}
}

/* dead[i]: instruction i's flags are overwritten unread within the
 * block; live[i]: the flags that may be read from instruction i on
 * before they are overwritten. */
void jit_tr_flags_live(const struct jit_binsn *insn, unsigned n, bool *dead, uint32_t *live)
{
	uint32_t l = F_ARITH, fr, fkill, fany;

	for (unsigned i = n; i-- > 0;) {
		flag_sets(&insn[i].in, &fr, &fkill, &fany);
		dead[i] = !(fany & l);
		l = (l & ~fkill) | fr;
		live[i] = l;
	}
}

/* RFLAGS's arithmetic bits (mask: which of them) = those in RDX. */
void jit_tr_flags_merge_rdx(struct jit_tr *t, uint32_t mask)
{
	/* rflags ^= (rdx ^ rflags) & mask */
	jit_tr_ins(t, 8, 0x33, RDX, jit_tr_m(RBX, OFF_RFLAGS));	/* xor rdx, [rflags] */
	jit_tr_ins32(t, 4, 0x81, 4, jit_tr_r(RDX), mask);
	jit_tr_ins(t, 8, 0x31, RDX, jit_tr_m(RBX, OFF_RFLAGS));	/* xor [rflags], rdx */
}

/* AX = the host's arithmetic flags as an image: AH as LAHF loads it (SF
 * ZF AF PF CF at their RFLAGS bits), AL = OF. */
static void capture_ax(struct jit_tr *t)
{
	jit_tr_byte(&t->b, 0x9f);				/* lahf */
	jit_tr_ins(t, 1, 0x0f90, 0, jit_tr_r(RAX));		/* seto al */
}

/* RDX = the image in AX (or else in tr_tmp) in RFLAGS's layout.  Clobbers RCX. */
static void image_to_rdx(struct jit_tr *t, bool ax)
{
	if (ax) {
		jit_tr_ins(t, 4, 0x0fb6, RDX, jit_tr_r(4));		/* movzx edx, ah */
		jit_tr_ins(t, 4, 0x0fb6, RCX, jit_tr_r(RAX));	/* movzx ecx, al */
	} else {
		jit_tr_ins(t, 4, 0x0fb6, RDX, jit_tr_m(RBX, OFF_TR_TMP + 1));
		jit_tr_ins(t, 4, 0x0fb6, RCX, jit_tr_m(RBX, OFF_TR_TMP));
	}
	jit_tr_ins8(t, 4, 0xc1, 4, jit_tr_r(RCX), 11);		/* shl ecx, 11: OF */
	jit_tr_ins(t, 4, 0x09, RCX, jit_tr_r(RDX));			/* or edx, ecx */
}

/*
 * The flags in the host flags go to tr_tmp: the code about to be emitted
 * changes the host's.  The ones tr_tmp held that the host's do not
 * replace go to RFLAGS first.  Clobbers RAX, RCX, RDX.
 */
void jit_tr_flags_spill(struct jit_tr *t)
{
	uint32_t old = t->pflags & ~t->hflags;

	if (!t->hflags)
		return;
	capture_ax(t);
	if (old) {
		image_to_rdx(t, false);
		jit_tr_flags_merge_rdx(t, old);
	}
	jit_tr_st(t, 2, RAX, jit_tr_m(RBX, OFF_TR_TMP));
	t->pflags = t->hflags;
	t->hflags = 0;
}

/*
 * RFLAGS exact on a path that leaves the block or calls C.  On a path out
 * of line (after a memory access or a handler) the host flags hold none
 * and the state is left as it was, for the code after the path; clobbers
 * RCX, RDX.  On the main path, where the host flags may hold some, it
 * clobbers RAX too and RFLAGS is exact after it.  The host flags are read
 * with PUSHFQ, or with LAHF and SETO when lahf (measured on a Xeon host:
 * PUSHFQ is the faster on the way out to another block, LAHF at the jump
 * back of a loop within one).
 */
static void out(struct jit_tr *t, bool lahf)
{
	if (t->hflags) {
		if (lahf) {
			capture_ax(t);
		} else {
			jit_tr_byte(&t->b, 0x9c);		/* pushfq */
			jit_tr_byte(&t->b, 0x58);		/* pop rax */
		}
		if (t->pflags & ~t->hflags) {
			image_to_rdx(t, false);
			jit_tr_flags_merge_rdx(t, t->pflags & ~t->hflags);
		}
		if (lahf)
			image_to_rdx(t, true);
		else
			jit_tr_ins(t, 8, 0x8b, RDX, jit_tr_r(RAX));
		jit_tr_flags_merge_rdx(t, t->hflags);
		t->hflags = t->pflags = 0;
	} else if (t->pflags) {
		image_to_rdx(t, false);
		jit_tr_flags_merge_rdx(t, t->pflags);
	}
}

void jit_tr_flags_out(struct jit_tr *t)
{
	out(t, false);
}

void jit_tr_flags_out_loop(struct jit_tr *t)
{
	out(t, true);
}

/* RFLAGS exact from here on. */
void jit_tr_flags_sync(struct jit_tr *t)
{
	jit_tr_flags_out(t);
	t->pflags = 0;
}

/* The guest's flags that tr_tmp holds go back into the host flags. */
static void restore(struct jit_tr *t)
{
	jit_tr_ins(t, 4, 0x0fb7, RAX, jit_tr_m(RBX, OFF_TR_TMP));	/* movzx eax, word [tr_tmp] */
	jit_tr_ins8(t, 1, 0x80, 0, jit_tr_r(RAX), 0x7f);		/* add al, 0x7f: OF = AL */
	jit_tr_byte(&t->b, 0x9e);					/* sahf */
	t->hflags = t->pflags;
}

/* AX = the image of the flags a read-modify-write of memory just computed,
 * for tr_tmp once the store is done (jit_tr_rmw()). */
void jit_tr_flags_capture(struct jit_tr *t)
{
	capture_ax(t);
}

/* The flags of the operation just emitted (mask: those it sets) are the
 * guest's, where the host put them (unless nothing reads them). */
void jit_tr_flags_set(struct jit_tr *t, uint32_t mask)
{
	if (!t->fl_dead)
		t->hflags = mask;
}

/* RFLAGS's arithmetic bits = the host's (mask: which of them), at once:
 * for code that does not track where the flags are (RFLAGS exact
 * before it). */
void jit_tr_flags_merge(struct jit_tr *t, uint32_t mask)
{
	if (t->fl_dead)
		return;
	jit_tr_byte(&t->b, 0x9c);			/* pushfq */
	jit_tr_byte(&t->b, 0x5a);			/* pop rdx */
	jit_tr_flags_merge_rdx(t, mask);
	t->pflags &= ~mask;
	t->hflags = 0;
}

/* The host's arithmetic flags = the guest's (for instructions that read
 * them or leave some unchanged). */
void jit_tr_flags_load(struct jit_tr *t)
{
	jit_tr_flags_sync(t);
	jit_tr_flags_to_host(t);
}

/* The same on a path out of line, the host flags holding none of the
 * guest's: the state stays.  Clobbers RCX, RDX. */
void jit_tr_flags_to_host(struct jit_tr *t)
{
	if (t->pflags) {
		image_to_rdx(t, false);
		jit_tr_flags_merge_rdx(t, t->pflags);
	}
	jit_tr_ld(t, 8, RDX, jit_tr_m(RBX, OFF_RFLAGS));
	jit_tr_ins32(t, 4, 0x81, 4, jit_tr_r(RDX), F_ARITH);
	jit_tr_ins32(t, 4, 0x81, 1, jit_tr_r(RDX), 0x202);
	jit_tr_byte(&t->b, 0x52);			/* push rdx */
	jit_tr_byte(&t->b, 0x9d);			/* popfq */
}

/* The host's CF = the guest's (ADC, SBB; the host flags hold CF or none:
 * keeps_hflags() in tr-x86.c). */
void jit_tr_flags_cf_in(struct jit_tr *t)
{
	if (t->hflags & F_CF)
		return;
	if (t->pflags & F_CF)			/* bt [tr_tmp], 8: LAHF's CF */
		jit_tr_ins8(t, 4, 0x0fba, 4, jit_tr_m(RBX, OFF_TR_TMP), 8);
	else
		jit_tr_ins8(t, 4, 0x0fba, 4, jit_tr_m(RBX, OFF_RFLAGS), 0);
}

/* The flags guest condition cc (Jcc/SETcc/CMOVcc encoding) reads. */
uint32_t jit_tr_cond_flags(unsigned cc)
{
	static const uint32_t bits[8] = { F_OF, F_CF, F_ZF, F_CF | F_ZF, F_SF, F_PF,
					  F_SF | F_OF, F_ZF | F_SF | F_OF };

	return bits[(cc >> 1) & 7];
}

/*
 * Test guest condition cc: returns the host condition that holds when it
 * is true, in the host flags (cc itself when they hold the guest's, as
 * they do after restore()).  Clobbers RAX, RCX, RDX.
 */
int jit_tr_cond(struct jit_tr *t, unsigned cc)
{
	uint32_t need = jit_tr_cond_flags(cc);

	if ((t->hflags & need) == need)
		return (int)cc;
	jit_tr_flags_spill(t);
	if ((t->pflags & need) == need) {
		restore(t);
		return (int)cc;
	}
	if (t->pflags & need)
		jit_tr_flags_sync(t);
	jit_tr_ld(t, 4, RAX, jit_tr_m(RBX, OFF_RFLAGS));
	if (cc < 12) {
		jit_tr_ins32(t, 4, 0xf7, 0, jit_tr_r(RAX), need);
	} else {
		jit_tr_ins(t, 4, 0x8b, RCX, jit_tr_r(RAX));
		jit_tr_ins8(t, 4, 0xc1, 5, jit_tr_r(RCX), 4);		/* OF down to SF */
		jit_tr_ins(t, 4, 0x31, RAX, jit_tr_r(RCX));			/* xor ecx, eax */
		jit_tr_ins32(t, 4, 0x81, 4, jit_tr_r(RCX), F_SF);
		if (cc >= 14) {
			jit_tr_ins32(t, 4, 0x81, 4, jit_tr_r(RAX), F_ZF);
			jit_tr_ins(t, 4, 0x09, RAX, jit_tr_r(RCX));		/* or ecx, eax */
		}
	}
	return (cc & 1) ? 4 : 5;
}
