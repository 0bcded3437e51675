/*
 * String instructions: MOVS, CMPS, STOS, LODS, SCAS, INS, OUTS, with the
 * REP/REPE/REPNE prefixes (Intel SDM vol. 2, "REP/REPE/REPZ/REPNE/REPNZ";
 * vol. 1, 7.3.9).
 *
 * Each iteration commits RSI/RDI/RCX, so a fault in the middle leaves the
 * registers describing the iterations done and RIP at the instruction, as
 * on hardware.  A repeated instruction runs at most a slice of iterations
 * per call and then leaves RIP unchanged, so that interrupts are taken in
 * between.  REP MOVS and REP STOS forward over RAM copy a page-bounded
 * chunk at a time with memmove/memset when the ranges do not overlap in a
 * way that element-by-element copying would make visible.
 */
#include "jit/internal.h"

#define SLICE 4096

static inline uint64_t areg(const struct jit_cpu *cpu, const struct jit_insn *in, int r)
{
	return cpu->gpr[r] & size_mask(in->addrsize);
}

static inline void aset(struct jit_cpu *cpu, const struct jit_insn *in, int r, uint64_t v)
{
	uint64_t m = size_mask(in->addrsize);

	if (in->addrsize == 4)
		cpu->gpr[r] = (uint32_t)v;
	else
		cpu->gpr[r] = (cpu->gpr[r] & ~m) | (v & m);
}

static inline int64_t step(const struct jit_cpu *cpu, unsigned size)
{
	return (cpu->rflags & F_DF) ? -(int64_t)size : (int64_t)size;
}

/* STOS's fill of len bytes (a multiple of size) with the low size bytes
 * of v: memset when they are all one byte (zeroing a page, the usual
 * case), else one element doubled by copies. */
static void fill(uint8_t *d, unsigned size, uint64_t v, uint64_t len)
{
	uint64_t m = size_mask(size), done;

	if ((v & m) == ((v & 0xff) * 0x0101010101010101ull & m)) {
		memset(d, (int)(v & 0xff), len);
		return;
	}
	host_store(d, size, v);
	for (done = size; done < len; done *= 2)
		memcpy(d + done, d, done < len - done ? done : len - done);
}

/* Fast forward REP MOVS/STOS over RAM; returns the elements done (0: use
 * the slow loop). */
static uint64_t rep_fast(struct jit_cpu *cpu, const struct jit_insn *in, bool movs,
			 uint64_t count)
{
	unsigned size = in->opsize, sh = (unsigned)__builtin_ctz(size);	/* no divides */
	uint64_t di = areg(cpu, in, JIT_RDI), si = areg(cpu, in, JIT_RSI), n, dl, sl = 0;
	uint8_t *d, *s = NULL;

	if (cpu->rflags & F_DF)
		return 0;
	dl = jit_seg_lin(cpu, SEG_ES, di, size, ACC_W);
	n = (0x1000 - (dl & 0xfff)) >> sh;
	if (movs) {
		sl = jit_seg_lin(cpu, in->seg, si, size, ACC_R);
		if ((0x1000 - (sl & 0xfff)) >> sh < n)
			n = (0x1000 - (sl & 0xfff)) >> sh;
	}
	if (n > count)
		n = count;
	if (n == 0 || di + n * size > size_mask(in->addrsize) ||
	    (movs && si + n * size > size_mask(in->addrsize)))
		return 0;
	if (movs && !(s = jit_lin_ptr(cpu, sl, (unsigned)(n * size), acc_user(cpu, ACC_R))))
		return 0;
	d = jit_lin_ptr(cpu, dl, (unsigned)(n * size), acc_user(cpu, ACC_W));
	if (!d)
		return 0;
	if (movs) {
		if (d > s && d < s + n * size)
			return 0;	/* overlap that replicates: element by element */
		memmove(d, s, n * size);
	} else {
		fill(d, size, cpu->gpr[JIT_RAX], n * size);
	}
	aset(cpu, in, JIT_RDI, di + n * size);
	if (movs)
		aset(cpu, in, JIT_RSI, si + n * size);
	return n;
}

/* One iteration; returns false when a REPE/REPNE condition ends the loop. */
static bool string_once(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned size = in->opsize;
	int64_t d = step(cpu, size);
	uint64_t si = areg(cpu, in, JIT_RSI), di = areg(cpu, in, JIT_RDI), v;

	switch (in->op & ~1) {
	case 0xa4:	/* MOVS */
		v = mem_read(cpu, in->seg, si, size);
		mem_write(cpu, SEG_ES, di, size, v);
		aset(cpu, in, JIT_RSI, si + d);
		aset(cpu, in, JIT_RDI, di + d);
		return true;
	case 0xa6:	/* CMPS */
		v = mem_read(cpu, in->seg, si, size);
		jit_alu(cpu, ALU_CMP, size, v, mem_read(cpu, SEG_ES, di, size));
		aset(cpu, in, JIT_RSI, si + d);
		aset(cpu, in, JIT_RDI, di + d);
		break;
	case 0xaa:	/* STOS */
		mem_write(cpu, SEG_ES, di, size, cpu->gpr[JIT_RAX]);
		aset(cpu, in, JIT_RDI, di + d);
		return true;
	case 0xac:	/* LODS */
		reg_write(cpu, in, JIT_RAX, size, mem_read(cpu, in->seg, si, size));
		aset(cpu, in, JIT_RSI, si + d);
		return true;
	case 0xae:	/* SCAS */
		jit_alu(cpu, ALU_CMP, size, cpu->gpr[JIT_RAX] & size_mask(size),
			mem_read(cpu, SEG_ES, di, size));
		aset(cpu, in, JIT_RDI, di + d);
		break;
	case 0x6c:	/* INS */
		mem_read(cpu, SEG_ES, di, size);	/* probe before the port read */
		if (unlikely(cpu->dbg_io))
			jit_dbg_io(cpu, (uint16_t)cpu->gpr[JIT_RDX], size);
		v = cpu->bus.pio_in(cpu->bus.opaque, (uint16_t)cpu->gpr[JIT_RDX], size);
		mem_write(cpu, SEG_ES, di, size, v);
		aset(cpu, in, JIT_RDI, di + d);
		return true;
	default:	/* 0x6e OUTS */
		v = mem_read(cpu, in->seg, si, size);
		if (unlikely(cpu->dbg_io))
			jit_dbg_io(cpu, (uint16_t)cpu->gpr[JIT_RDX], size);
		cpu->bus.pio_out(cpu->bus.opaque, (uint16_t)cpu->gpr[JIT_RDX], (uint32_t)v, size);
		aset(cpu, in, JIT_RSI, si + d);
		return true;
	}
	if (in->rep == 0xf3)
		return cpu->rflags & F_ZF;
	return !(cpu->rflags & F_ZF);
}

/* REP with ECX = 0 under 67h: the host (Intel) still writes RCX as a
 * 32-bit register, zero-extending it, and so the pointers MOVS and STOS
 * advance; LODS, CMPS and SCAS leave theirs (checked by test-jit-misc). */
static void rep_none_a32(struct jit_cpu *cpu, const struct jit_insn *in)
{
	cpu->gpr[JIT_RCX] = (uint32_t)cpu->gpr[JIT_RCX];
	if ((in->op & ~1) == 0xa4 || (in->op & ~1) == 0xaa)
		cpu->gpr[JIT_RDI] = (uint32_t)cpu->gpr[JIT_RDI];
	if ((in->op & ~1) == 0xa4)
		cpu->gpr[JIT_RSI] = (uint32_t)cpu->gpr[JIT_RSI];
}

/* A4-AF, 6C-6F: the string instructions */
void jit_op_string(struct jit_cpu *cpu, const struct jit_insn *in)
{
	bool cond = (in->op & ~1) == 0xa6 || (in->op & ~1) == 0xae;
	uint64_t count;

	if ((in->op & 0xfc) == 0x6c &&
	    !jit_io_allowed(cpu, (uint16_t)cpu->gpr[JIT_RDX], in->opsize))
		jit_raise(cpu, EXC_GP, 0);
	if (!in->rep) {
		string_once(cpu, in);
		return;
	}
	count = areg(cpu, in, JIT_RCX);
	if (!count && in->addrsize == 4)
		rep_none_a32(cpu, in);
	for (unsigned slice = 0; count && slice < SLICE; slice++) {
		if (unlikely(cpu->dbg_hit || (slice && (cpu->rflags & F_TF))))
			break;	/* a data breakpoint or single-step: trap after this iteration */
		if (((in->op & ~1) == 0xa4 || (in->op & ~1) == 0xaa) && !cpu->dbg_data &&
		    !(cpu->rflags & F_TF)) {
			uint64_t n = rep_fast(cpu, in, (in->op & ~1) == 0xa4, count);

			if (n) {
				count -= n;
				aset(cpu, in, JIT_RCX, count);
				continue;
			}
		}
		bool go_on = string_once(cpu, in);

		aset(cpu, in, JIT_RCX, --count);
		if (cond && !go_on)
			return;
	}
	if (count)
		cpu->next_rip = cpu->rip;	/* resume here after pending events */
}
