/*
 * Flags liveness for the translator (tr-x86.c): which instructions of a
 * block need not store the arithmetic flags they compute, because a later
 * instruction of the block overwrites them before anything can read them
 * (Intel SDM vol. 1, 3.4.3.1 and appendix A, "EFLAGS Cross-Reference", for
 * which instruction reads and writes which flag).  A memory operand counts
 * as reading every flag: a fault there delivers RFLAGS in the exception
 * frame, so the flags must be exact before it.  At the end of a block all
 * flags are live.  What is not known here reads and writes everything.
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

/* dead[i]: instruction i's flags are overwritten unread within the block. */
void jit_tr_flags_dead(const struct jit_binsn *insn, unsigned n, bool *dead)
{
	uint32_t live = F_ARITH, fr, fkill, fany;

	for (unsigned i = n; i-- > 0;) {
		flag_sets(&insn[i].in, &fr, &fkill, &fany);
		dead[i] = !(fany & live);
		live = (live & ~fkill) | fr;
	}
}
