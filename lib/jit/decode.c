/*
 * The instruction decoder: x86 machine code to struct jit_insn.
 *
 * Follows the Intel SDM vol. 2, chapter 2 (instruction format) and
 * appendix A (opcode maps).  An instruction is
 *
 *     legacy prefixes, REX (64-bit mode only), opcode (1 byte, or 0F xx,
 *     0F 38 xx, 0F 3A xx), ModRM, SIB, displacement, immediate(s)
 *
 * Everything the decoder needs to know about an opcode - whether a ModRM
 * byte follows, how large its immediate is, whether its operand size is
 * byte, defaults to 64 bits in long mode or is invalid there - is one
 * entry of the attribute tables below, one per opcode map.  What the
 * instruction does is not the decoder's business: the interpreter finds
 * the handler in dispatch.c by (map, opcode), and a translator can do the
 * same with its own table, both reading the same struct jit_insn.
 *
 * The decoder is given the bytes available up to the end of the code page
 * and says DEC_MORE when the instruction continues beyond them, so the
 * caller fetches the next page only when an instruction really crosses
 * (and a #PF on that page is then genuine).  The 15-byte limit yields
 * DEC_LONG, which the run loop turns into #GP(0).
 *
 * Operand size: byte opcodes are 1; REX.W makes 8; in 64-bit mode D64
 * opcodes (push, pop, ...) default to 8 and take 66 for 16, F64 opcodes
 * (near branches) are always 8 (as Intel processors do); otherwise the
 * CS default (2 or 4) toggled by 66.  Address size is the CS default
 * toggled by 67 (in 64-bit mode: 8, or 4 with 67).
 */
#include "jit/internal.h"

/* attribute bits */
#define M   0x0001	/* ModRM follows */
#define B   0x0002	/* byte operand size */
#define I8  0x0004	/* imm8 (sign-extended into imm) */
#define IZ  0x0008	/* imm16 or imm32 by operand size (imm32 for 64-bit) */
#define IV  0x0010	/* imm16/32/64 by operand size */
#define IW  0x0020	/* imm16 */
#define IWB 0x0040	/* imm16 then imm8 (ENTER) */
#define AP  0x0080	/* far pointer: offset by operand size, then selector */
#define MO  0x0100	/* memory offset of address size (MOV moffs) */
#define D64 0x0200	/* operand size defaults to 64 in 64-bit mode */
#define F64 0x0400	/* operand size is 64 in 64-bit mode */
#define I64 0x0800	/* invalid in 64-bit mode */
#define UD  0x1000	/* invalid opcode */
#define G3  0x2000	/* group 3: imm only for /0 and /1 */
#define CR  0x4000	/* ModRM.mod ignored: always a register (MOV CR/DR) */
#define PFX 0x8000	/* a prefix byte (never looked up as an opcode) */

/* One-byte opcode map (SDM vol. 2, table A-2). */
static const uint16_t attr_1b[256] = {
	/* 00 ADD Eb,Gb  Ev,Gv  Gb,Eb  Gv,Ev  AL,Ib  eAX,Iz  PUSH ES  POP ES */
	M|B, M, M|B, M, B|I8, IZ, I64, I64,
	/* 08 OR ...  PUSH CS  (0F escape) */
	M|B, M, M|B, M, B|I8, IZ, I64, 0,
	/* 10 ADC ...  PUSH SS  POP SS */
	M|B, M, M|B, M, B|I8, IZ, I64, I64,
	/* 18 SBB ...  PUSH DS  POP DS */
	M|B, M, M|B, M, B|I8, IZ, I64, I64,
	/* 20 AND ...  ES:  DAA */
	M|B, M, M|B, M, B|I8, IZ, PFX, I64,
	/* 28 SUB ...  CS:  DAS */
	M|B, M, M|B, M, B|I8, IZ, PFX, I64,
	/* 30 XOR ...  SS:  AAA */
	M|B, M, M|B, M, B|I8, IZ, PFX, I64,
	/* 38 CMP ...  DS:  AAS */
	M|B, M, M|B, M, B|I8, IZ, PFX, I64,
	/* 40 INC r (REX in 64-bit mode) */
	0, 0, 0, 0, 0, 0, 0, 0,
	/* 48 DEC r (REX) */
	0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 PUSH r */
	D64, D64, D64, D64, D64, D64, D64, D64,
	/* 58 POP r */
	D64, D64, D64, D64, D64, D64, D64, D64,
	/* 60 PUSHA POPA BOUND ARPL/MOVSXD FS: GS: 66 67 */
	I64, I64, M|I64, M, PFX, PFX, PFX, PFX,
	/* 68 PUSH Iz  IMUL Gv,Ev,Iz  PUSH Ib  IMUL Gv,Ev,Ib  INSB INS OUTSB OUTS */
	IZ|D64, M|IZ, I8|D64, M|I8, B, 0, B, 0,
	/* 70 Jcc rel8 */
	I8|F64, I8|F64, I8|F64, I8|F64, I8|F64, I8|F64, I8|F64, I8|F64,
	I8|F64, I8|F64, I8|F64, I8|F64, I8|F64, I8|F64, I8|F64, I8|F64,
	/* 80 grp1 Eb,Ib  Ev,Iz  Eb,Ib(inv64)  Ev,Ib  TEST Eb,Gb  Ev,Gv  XCHG Eb,Gb  Ev,Gv */
	M|B|I8, M|IZ, M|B|I8|I64, M|I8, M|B, M, M|B, M,
	/* 88 MOV Eb,Gb Ev,Gv Gb,Eb Gv,Ev  MOV Ev,Sw  LEA  MOV Sw,Ew  POP Ev */
	M|B, M, M|B, M, M, M, M, M|D64,
	/* 90 NOP/XCHG r,eAX */
	0, 0, 0, 0, 0, 0, 0, 0,
	/* 98 CBW CWD CALLF FWAIT PUSHF POPF SAHF LAHF */
	0, 0, AP|I64, 0, D64, D64, 0, 0,
	/* A0 MOV AL,Ob  eAX,Ov  Ob,AL  Ov,eAX  MOVSB MOVS CMPSB CMPS */
	B|MO, MO, B|MO, MO, B, 0, B, 0,
	/* A8 TEST AL,Ib  eAX,Iz  STOSB STOS LODSB LODS SCASB SCAS */
	B|I8, IZ, B, 0, B, 0, B, 0,
	/* B0 MOV r8,Ib */
	B|I8, B|I8, B|I8, B|I8, B|I8, B|I8, B|I8, B|I8,
	/* B8 MOV r,Iv */
	IV, IV, IV, IV, IV, IV, IV, IV,
	/* C0 grp2 Eb,Ib  Ev,Ib  RET Iw  RET  LES(VEX)  LDS(VEX)  MOV Eb,Ib  MOV Ev,Iz */
	M|B|I8, M|I8, IW|F64, F64, M|I64, M|I64, M|B|I8, M|IZ,
	/* C8 ENTER LEAVE RETF Iw  RETF  INT3  INT Ib  INTO  IRET */
	IWB|D64, D64, IW, 0, 0, I8, I64, 0,
	/* D0 grp2 Eb,1  Ev,1  Eb,CL  Ev,CL  AAM  AAD  SALC  XLAT */
	M|B, M, M|B, M, I8|I64, I8|I64, UD, B,
	/* D8 x87 escapes */
	M, M, M, M, M, M, M, M,
	/* E0 LOOPNE LOOPE LOOP JrCXZ  IN AL,Ib  IN eAX,Ib  OUT Ib,AL  OUT Ib,eAX */
	I8|F64, I8|F64, I8|F64, I8|F64, B|I8, I8, B|I8, I8,
	/* E8 CALL Jz  JMP Jz  JMPF Ap  JMP Jb  IN AL,DX  IN eAX,DX  OUT DX,AL  OUT DX,eAX */
	IZ|F64, IZ|F64, AP|I64, I8|F64, B, 0, B, 0,
	/* F0 LOCK  ICEBP  REPNE  REP  HLT  CMC  grp3 Eb  grp3 Ev */
	PFX, 0, PFX, PFX, 0, 0, M|B|G3, M|G3,
	/* F8 CLC STC CLI STI CLD STD grp4 grp5 */
	0, 0, 0, 0, 0, 0, M|B, M,
};

/* Two-byte map 0F xx (SDM vol. 2, table A-3). */
static const uint16_t attr_0f[256] = {
	/* 00 grp6 grp7 LAR LSL - SYSCALL CLTS SYSRET */
	M, M, M, M, UD, 0, 0, 0,
	/* 08 INVD WBINVD - UD2 - PREFETCH - - */
	0, 0, UD, 0, UD, M, UD, UD,
	/* 10 SSE moves: MOVUPS.. MOVLPS.. UNPCK.. MOVHPS.. */
	M, M, M, M, M, M, M, M,
	/* 18 hint NOPs (PREFETCHh, NOP Ev) */
	M, M, M, M, M, M, M, M,
	/* 20 MOV r,CRn  MOV r,DRn  MOV CRn,r  MOV DRn,r */
	M|CR|F64, M|CR|F64, M|CR|F64, M|CR|F64, UD, UD, UD, UD,
	/* 28 MOVAPS MOVAPS CVTPI2PS MOVNTPS CVTTPS2PI CVTPS2PI UCOMISS COMISS */
	M, M, M, M, M, M, M, M,
	/* 30 WRMSR RDTSC RDMSR RDPMC SYSENTER SYSEXIT - GETSEC */
	0, 0, 0, 0, 0, 0, UD, UD,
	/* 38 (0F38 escape) - (0F3A escape) - - - - - */
	0, UD, 0, UD, UD, UD, UD, UD,
	/* 40 CMOVcc */
	M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 50 SSE: MOVMSKPS SQRT RSQRT RCP AND ANDN OR XOR ADD MUL CVT CVT SUB MIN DIV MAX */
	M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 60 MMX/SSE2 unpack and pack */
	M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 70 PSHUF* Ib  grp12 grp13 grp14 (Ib)  PCMPEQ*  EMMS */
	M|I8, M|I8, M|I8, M|I8, M, M, M, 0,
	/* 78 VMREAD VMWRITE - - HADD HSUB MOVD/Q MOVQ/DQ */
	UD, UD, UD, UD, M, M, M, M,
	/* 80 Jcc rel32 */
	IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64,
	IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64, IZ|F64,
	/* 90 SETcc Eb */
	M|B, M|B, M|B, M|B, M|B, M|B, M|B, M|B,
	M|B, M|B, M|B, M|B, M|B, M|B, M|B, M|B,
	/* A0 PUSH FS  POP FS  CPUID  BT  SHLD Ib  SHLD CL  -  - */
	D64, D64, 0, M, M|I8, M, UD, UD,
	/* A8 PUSH GS  POP GS  RSM  BTS  SHRD Ib  SHRD CL  grp15  IMUL Gv,Ev */
	D64, D64, UD, M, M|I8, M, M, M,
	/* B0 CMPXCHG Eb  Ev  LSS  BTR  LFS  LGS  MOVZX Gv,Eb  MOVZX Gv,Ew */
	M|B, M, M, M, M, M, M, M,
	/* B8 POPCNT  UD1  grp8 Ev,Ib  BTC  BSF/TZCNT  BSR/LZCNT  MOVSX Gv,Eb  MOVSX Gv,Ew */
	M, M, M|I8, M, M, M, M, M,
	/* C0 XADD Eb  Ev  CMPPS Ib  MOVNTI  PINSRW Ib  PEXTRW Ib  SHUFPS Ib  grp9 */
	M|B, M, M|I8, M, M|I8, M|I8, M|I8, M,
	/* C8 BSWAP r */
	0, 0, 0, 0, 0, 0, 0, 0,
	/* D0 .. FF: MMX/SSE2 arithmetic; FF is UD0 */
	M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M|UD,
};

/* Intel SDM vol. 2, 2.1.5: 16-bit ModRM base/index pairs for rm 0..7. */
static const uint8_t rm16_base[8] = {
	JIT_RBX, JIT_RBX, JIT_RBP, JIT_RBP, REG_NONE, REG_NONE, JIT_RBP, JIT_RBX,
};
static const uint8_t rm16_index[8] = {
	JIT_RSI, JIT_RDI, JIT_RSI, JIT_RDI, JIT_RSI, JIT_RDI, REG_NONE, REG_NONE,
};

#define NEED(n) do { \
	if (i + (n) > 15) return DEC_LONG; \
	if (i + (n) > avail) return DEC_MORE; \
} while (0)

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned k = 0; k < n; k++)
		v |= (uint64_t)p[k] << (8 * k);
	return v;
}

/* ModRM, SIB and displacement starting at p[*pi]. */
static int decode_modrm(const uint8_t *p, unsigned avail, unsigned *pi,
			struct jit_insn *in, bool reg_only)
{
	unsigned i = *pi;
	unsigned disp = 0, rm;
	uint8_t m;

	NEED(1);
	m = p[i++];
	in->has_modrm = 1;
	in->mod = m >> 6;
	in->reg = ((m >> 3) & 7) | ((in->rex & 4) << 1);
	rm = m & 7;
	in->base = in->index = REG_NONE;
	if (reg_only)
		in->mod = 3;
	if (in->mod == 3) {
		in->rm = rm | ((in->rex & 1) << 3);
		*pi = i;
		return 0;
	}
	if (in->addrsize == 2) {
		in->base = rm16_base[rm];
		in->index = rm16_index[rm];
		if (in->mod == 0 && rm == 6) {
			in->base = REG_NONE;
			disp = 2;
		} else {
			disp = in->mod == 1 ? 1 : in->mod == 2 ? 2 : 0;
		}
		if (in->base == JIT_RBP && in->seg_override == SEG_NONE)
			in->seg = SEG_SS;
	} else {
		if (rm == 4) {
			uint8_t s;

			NEED(1);
			s = p[i++];
			in->scale = s >> 6;
			in->index = ((s >> 3) & 7) | ((in->rex & 2) << 2);
			if (in->index == JIT_RSP)
				in->index = REG_NONE;
			in->base = (s & 7) | ((in->rex & 1) << 3);
			if ((s & 7) == 5 && in->mod == 0) {
				in->base = REG_NONE;
				disp = 4;
			}
		} else if (rm == 5 && in->mod == 0) {
			in->rip_rel = in->mode64;
			disp = 4;
		} else {
			in->base = rm | ((in->rex & 1) << 3);
		}
		if (in->mod == 1)
			disp = 1;
		else if (in->mod == 2)
			disp = 4;
		if ((in->base == JIT_RSP || in->base == JIT_RBP) && in->seg_override == SEG_NONE)
			in->seg = SEG_SS;
	}
	NEED(disp);
	if (disp)
		in->disp = (int32_t)sext(get_le(p + i, disp), disp);
	*pi = i + disp;
	return 0;
}

/* Legacy and REX prefixes; returns the index of the opcode byte. */
static int decode_prefixes(const uint8_t *p, unsigned avail, struct jit_insn *in,
			   bool *p66, bool *p67)
{
	static const uint8_t seg_of[8] = {
		[0] = SEG_ES, [1] = SEG_CS, [2] = SEG_SS, [3] = SEG_DS,
	};
	unsigned i = 0;

	for (;;) {
		uint8_t b;

		NEED(1);
		b = p[i];
		if (in->mode64 && (b & 0xf0) == 0x40) {
			in->rex = b;
			i++;
			continue;
		}
		if (b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e)
			in->seg_override = seg_of[(b >> 3) & 3];
		else if (b == 0x64 || b == 0x65)
			in->seg_override = b == 0x64 ? SEG_FS : SEG_GS;
		else if (b == 0x66)
			*p66 = true;
		else if (b == 0x67)
			*p67 = true;
		else if (b == 0xf0)
			in->lock = 1;
		else if (b == 0xf2 || b == 0xf3)
			in->rep = b;
		else
			return (int)i;
		in->rex = 0;	/* a REX not directly before the opcode is ignored */
		i++;
	}
}

static unsigned operand_size(const struct jit_insn *in, uint16_t a, bool p66,
			     unsigned code_size)
{
	if (a & B)
		return 1;
	if (in->rex & 8)
		return 8;
	if (in->mode64 && (a & F64))
		return 8;
	if (in->mode64 && (a & D64))
		return p66 ? 2 : 8;
	if (code_size == 2)
		return p66 ? 4 : 2;
	return p66 ? 2 : 4;
}

static int decode_imm(const uint8_t *p, unsigned avail, unsigned i,
		      struct jit_insn *in, uint16_t a)
{
	unsigned n = 0;

	if (a & I8)
		n = 1;
	else if (a & IZ)
		n = in->opsize == 2 ? 2 : 4;
	else if (a & IV)
		n = in->opsize;
	else if (a & IW)
		n = 2;
	else if (a & MO)
		n = in->addrsize;
	if (a & (IWB | AP)) {
		unsigned off = (a & IWB) ? 2 : (in->opsize == 2 ? 2 : 4);

		NEED(off + ((a & IWB) ? 1 : 2));
		in->imm = get_le(p + i, off);
		in->imm2 = (uint16_t)get_le(p + i + off, (a & IWB) ? 1 : 2);
		return (int)(i + off + ((a & IWB) ? 1 : 2));
	}
	NEED(n);
	if (n) {
		in->imm = get_le(p + i, n);
		if (a & (I8 | IZ))
			in->imm = (uint64_t)sext(in->imm, n);
	}
	return (int)(i + n);
}

int jit_decode(const uint8_t *p, unsigned avail, unsigned code_size, struct jit_insn *in)
{
	bool p66 = false, p67 = false;
	uint16_t a;
	int r;
	unsigned i;

	memset(in, 0, sizeof(*in));
	in->mode64 = code_size == 8;
	in->seg_override = SEG_NONE;
	r = decode_prefixes(p, avail, in, &p66, &p67);
	if (r < 0)
		return r;
	i = (unsigned)r;
	in->pfx66 = p66;
	in->seg = in->seg_override == SEG_NONE ? SEG_DS : in->seg_override;
	if (code_size == 8)
		in->addrsize = p67 ? 4 : 8;
	else
		in->addrsize = (code_size == 2) != p67 ? 2 : 4;

	NEED(1);
	in->op = p[i++];
	in->map = MAP_1B;
	a = attr_1b[in->op];
	if (in->op == 0x0f) {
		NEED(1);
		in->op = p[i++];
		in->map = MAP_0F;
		a = attr_0f[in->op];
		if (in->op == 0x38 || in->op == 0x3a) {
			in->map = in->op == 0x38 ? MAP_0F38 : MAP_0F3A;
			a = in->op == 0x38 ? M : M | I8;
			NEED(1);
			in->op = p[i++];
		}
	}
	if ((a & UD) || (in->mode64 && (a & I64)))
		return DEC_UD;
	if (in->map == MAP_1B && in->op >= 0x50 && in->op < 0x60)
		in->reg = (in->op & 7) | ((in->rex & 1) << 3);
	else if (in->map == MAP_1B && ((in->op >= 0x90 && in->op < 0x98) || in->op >= 0xb0) &&
		 in->op < 0xc0)
		in->reg = (in->op & 7) | ((in->rex & 1) << 3);
	else if (in->map == MAP_0F && in->op >= 0xc8 && in->op < 0xd0)
		in->reg = (in->op & 7) | ((in->rex & 1) << 3);
	in->opsize = (uint8_t)operand_size(in, a, p66, code_size);
	in->mod = 3;
	if (a & M) {
		r = decode_modrm(p, avail, &i, in, a & CR);
		if (r < 0)
			return r;
		if (in->map == MAP_1B && in->op == 0xff && in->mode64) {
			unsigned g = in->reg & 7;

			if (g == 2 || g == 4)
				in->opsize = 8;
			else if (g == 6 && !(in->rex & 8))
				in->opsize = p66 ? 2 : 8;
		}
		if ((a & G3) && (in->reg & 7) < 2)
			a |= (a & B) ? I8 : IZ;
	}
	r = decode_imm(p, avail, i, in, a);
	if (r < 0)
		return r;
	in->len = (uint8_t)r;
	return r;
}
