/*
 * A small x86-64 instruction encoder for the translator (tr-x86.c):
 * REX/ModRM/SIB encoding of register and [base + index*scale + disp32]
 * operands, immediates, jumps with 32-bit displacements patched later,
 * and absolute calls.  Encodings follow Intel SDM vol. 2, chapter 2
 * ("Instruction Format") and 2.2.1 (REX prefixes).
 *
 * Writing past the end of the buffer sets b->full and writes nothing
 * (jit_tr_byte() and the others in internal.h); the translator checks it
 * once per block and gives up on the block.
 */
#include "jit/internal.h"

/* ModRM (and SIB, displacement) for register field reg and operand rm. */
static void modrm(struct jit_tr_buf *b, unsigned reg, const struct jit_tr_rm *rm)
{
	unsigned base = (unsigned)rm->base & 7, mod;

	if (!rm->mem) {
		jit_tr_byte(b, (uint8_t)(0xc0 | (reg & 7) << 3 | base));
		return;
	}
	if (rm->disp == 0 && base != 5)
		mod = 0;
	else if (rm->disp >= -128 && rm->disp < 128)
		mod = 1;
	else
		mod = 2;
	if (rm->index >= 0 || base == 4) {
		unsigned idx = rm->index >= 0 ? (unsigned)rm->index & 7 : 4;

		jit_tr_byte(b, (uint8_t)(mod << 6 | (reg & 7) << 3 | 4));
		jit_tr_byte(b, (uint8_t)(rm->scale << 6 | idx << 3 | base));
	} else {
		jit_tr_byte(b, (uint8_t)(mod << 6 | (reg & 7) << 3 | base));
	}
	if (mod == 1)
		jit_tr_byte(b, (uint8_t)rm->disp);
	else if (mod == 2)
		jit_tr_u32(b, (uint32_t)rm->disp);
}

/*
 * One instruction: [66] [REX] opcode (n bytes, most significant first)
 * ModRM.  size is the operand size (1, 2, 4 or 8: 66 or REX.W); reg is
 * the ModRM.reg register or opcode extension.
 */
void jit_tr_op(struct jit_tr_buf *b, unsigned size, unsigned n, uint32_t opc, unsigned reg,
	       const struct jit_tr_rm *rm)
{
	unsigned rex = 0x40;

	if (size == 2)
		jit_tr_byte(b, 0x66);
	if (size == 8)
		rex |= 8;
	if (reg & 8)
		rex |= 4;
	if (rm->mem && rm->index >= 8)
		rex |= 2;
	if (rm->base >= 8)
		rex |= 1;
	if (rex != 0x40 || (size == 1 && (reg >= 4 || (!rm->mem && rm->base >= 4))))
		jit_tr_byte(b, (uint8_t)rex);
	for (unsigned i = n; i-- > 0;)
		jit_tr_byte(b, (uint8_t)(opc >> (8 * i)));
	modrm(b, reg, rm);
}

/* reg = imm, as the shortest of mov r32, imm32 / mov r64, simm32 / movabs. */
void jit_tr_mov_imm(struct jit_tr_buf *b, unsigned reg, uint64_t imm)
{
	if (imm <= 0xffffffffull) {
		if (reg & 8)
			jit_tr_byte(b, 0x41);
		jit_tr_byte(b, (uint8_t)(0xb8 + (reg & 7)));
		jit_tr_u32(b, (uint32_t)imm);
	} else if ((uint64_t)(int64_t)(int32_t)imm == imm) {
		struct jit_tr_rm r = { .base = (int8_t)reg, .index = -1 };

		jit_tr_op(b, 8, 1, 0xc7, 0, &r);
		jit_tr_u32(b, (uint32_t)imm);
	} else {
		jit_tr_byte(b, (uint8_t)(0x48 | ((reg >> 3) & 1)));
		jit_tr_byte(b, (uint8_t)(0xb8 + (reg & 7)));
		jit_tr_u64(b, imm);
	}
}

/* Jcc rel32 (cc = condition 0..15) or JMP rel32 (cc < 0) to be patched:
 * returns where the displacement goes. */
uint8_t *jit_tr_jump(struct jit_tr_buf *b, int cc)
{
	uint8_t *at;

	if (cc >= 0) {
		jit_tr_byte(b, 0x0f);
		jit_tr_byte(b, (uint8_t)(0x80 + cc));
	} else {
		jit_tr_byte(b, 0xe9);
	}
	at = b->p;
	jit_tr_u32(b, 0);
	return b->full ? NULL : at;
}

/* Point the jump whose displacement is at `at` (NULL: none) to `to`. */
void jit_tr_point(struct jit_tr_buf *b, uint8_t *at, const uint8_t *to)
{
	int32_t rel;

	if (!at || b->full)
		return;
	rel = (int32_t)(to - (at + 4));
	memcpy(at, &rel, 4);
}

/* ... to the current position. */
void jit_tr_here(struct jit_tr_buf *b, uint8_t *at)
{
	jit_tr_point(b, at, b->p);
}

/* Jcc or JMP (cc as jit_tr_jump()'s) to a place already known. */
void jit_tr_jump_to(struct jit_tr_buf *b, int cc, const uint8_t *to)
{
	jit_tr_point(b, jit_tr_jump(b, cc), to);
}

/* call fn: through RAX (the code cache may be far from the library). */
void jit_tr_call(struct jit_tr_buf *b, const void *fn)
{
	jit_tr_mov_imm(b, 0, (uint64_t)(uintptr_t)fn);
	jit_tr_byte(b, 0xff);
	jit_tr_byte(b, 0xd0);
}
