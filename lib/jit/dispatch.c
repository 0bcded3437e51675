/*
 * The interpreter's dispatch tables: (opcode map, opcode byte) to the
 * handler that executes it (Intel SDM vol. 2, appendix A opcode maps).
 * Each handler lives in the file of its instruction group: alu.c,
 * shift.c, move.c, branch.c, string.c, seg.c, far.c, fastcall.c,
 * system.c, x87.c, sse*.c.  NULL entries are #UD.  Group opcodes (80-83,
 * F6/F7, FE/FF, 0F 00/01/BA/C7/AE, ...) go to one handler that switches
 * on ModRM.reg; SSE opcodes go to the SSE handler, which switches on the
 * mandatory prefix.
 */
#include "jit/internal.h"

#define ALU6 jit_op_alu, jit_op_alu, jit_op_alu, jit_op_alu, jit_op_alu, jit_op_alu
#define X8(f) f, f, f, f, f, f, f, f
#define X16(f) X8(f), X8(f)

jit_op_fn *const jit_ops_1b[256] = {
	/* 00 */ ALU6, jit_op_push_seg, jit_op_pop_seg,		/* ADD, PUSH/POP ES */
	/* 08 */ ALU6, jit_op_push_seg, NULL,			/* OR, PUSH CS, (0F) */
	/* 10 */ ALU6, jit_op_push_seg, jit_op_pop_seg,		/* ADC, PUSH/POP SS */
	/* 18 */ ALU6, jit_op_push_seg, jit_op_pop_seg,		/* SBB, PUSH/POP DS */
	/* 20 */ ALU6, NULL, jit_op_bcd,				/* AND, ES:, DAA */
	/* 28 */ ALU6, NULL, jit_op_bcd,				/* SUB, CS:, DAS */
	/* 30 */ ALU6, NULL, jit_op_bcd,				/* XOR, SS:, AAA */
	/* 38 */ ALU6, NULL, jit_op_bcd,				/* CMP, DS:, AAS */
	/* 40 */ X16(jit_op_incdec_r),				/* INC/DEC r (not 64-bit) */
	/* 50 */ X8(jit_op_push_r),				/* PUSH r */
	/* 58 */ X8(jit_op_pop_r),				/* POP r */
	/* 60 */ jit_op_pusha, jit_op_popa, jit_op_bound, jit_op_arpl,
	/* 64 */ NULL, NULL, NULL, NULL,			/* prefixes */
	/* 68 */ jit_op_push_imm, jit_op_imul, jit_op_push_imm, jit_op_imul,
	/* 6C */ jit_op_string, jit_op_string, jit_op_string, jit_op_string, /* INS/OUTS */
	/* 70 */ X16(jit_op_jcc),				/* Jcc rel8 */
	/* 80 */ jit_op_grp1, jit_op_grp1, jit_op_grp1, jit_op_grp1,	/* group 1 */
	/* 84 */ jit_op_test, jit_op_test, jit_op_xchg, jit_op_xchg,
	/* 88 */ jit_op_mov, jit_op_mov, jit_op_mov, jit_op_mov,
	/* 8C */ jit_op_mov_from_seg, jit_op_lea, jit_op_mov_to_seg, jit_op_pop_rm,
	/* 90 */ X8(jit_op_xchg),				/* NOP, XCHG r,rAX */
	/* 98 */ jit_op_cbw, jit_op_cbw, jit_op_far_direct, jit_op_fwait,
	/* 9C */ jit_op_pushf, jit_op_popf, jit_op_lahf, jit_op_lahf,
	/* A0 */ jit_op_mov_moffs, jit_op_mov_moffs, jit_op_mov_moffs, jit_op_mov_moffs,
	/* A4 */ jit_op_string, jit_op_string, jit_op_string, jit_op_string, /* MOVS CMPS */
	/* A8 */ jit_op_test, jit_op_test, jit_op_string, jit_op_string,	/* TEST, STOS */
	/* AC */ jit_op_string, jit_op_string, jit_op_string, jit_op_string, /* LODS SCAS */
	/* B0 */ X16(jit_op_mov_r_imm),				/* MOV r,imm */
	/* C0 */ jit_op_grp2, jit_op_grp2, jit_op_ret, jit_op_ret,	/* shifts Ib, RET */
	/* C4 */ jit_op_lxs, jit_op_lxs, jit_op_mov_imm, jit_op_mov_imm, /* LES LDS MOV */
	/* C8 */ jit_op_enter, jit_op_leave, jit_op_retf, jit_op_retf,
	/* CC */ jit_op_int, jit_op_int, jit_op_int, jit_op_iret,	/* INT3 INT INTO IRET */
	/* D0 */ jit_op_grp2, jit_op_grp2, jit_op_grp2, jit_op_grp2,	/* shifts 1, CL */
	/* D4 */ jit_op_bcd, jit_op_bcd, NULL, jit_op_xlat,	/* AAM AAD SALC XLAT */
	/* D8 */ X8(jit_op_x87),				/* x87 escapes */
	/* E0 */ jit_op_loop, jit_op_loop, jit_op_loop, jit_op_loop,	/* LOOPcc JrCXZ */
	/* E4 */ jit_op_io, jit_op_io, jit_op_io, jit_op_io,	/* IN/OUT imm8 */
	/* E8 */ jit_op_call, jit_op_jmp, jit_op_far_direct, jit_op_jmp,
	/* EC */ jit_op_io, jit_op_io, jit_op_io, jit_op_io,	/* IN/OUT DX */
	/* F0 */ NULL, jit_op_int, NULL, NULL,			/* LOCK INT1 REPNE REP */
	/* F4 */ jit_op_hlt, jit_op_flagbit, jit_op_grp3, jit_op_grp3, /* HLT CMC group 3 */
	/* F8 */ jit_op_flagbit, jit_op_flagbit, jit_op_cli, jit_op_cli, /* CLC STC CLI STI */
	/* FC */ jit_op_flagbit, jit_op_flagbit, jit_op_grp4, jit_op_grp5, /* CLD STD grp4/5 */
};

jit_op_fn *const jit_ops_0f[256] = {
	/* 00 */ jit_op_grp6, jit_op_grp7, jit_op_lar, jit_op_lar,	/* grp6 grp7 LAR LSL */
	/* 04 */ NULL, jit_op_syscall, jit_op_clts, jit_op_sysret,
	/* 08 */ jit_op_invd, jit_op_invd, NULL, jit_op_ud,		/* INVD WBINVD - UD2 */
	/* 0C */ NULL, jit_op_nop, NULL, NULL,			/* PREFETCHW */
	/* 10 */ X8(jit_op_sse),				/* MOVUPS .. MOVHPS */
	/* 18 */ X8(jit_op_nop),				/* hint NOPs */
	/* 20 */ jit_op_mov_cr, jit_op_mov_dr, jit_op_mov_cr, jit_op_mov_dr,
	/* 24 */ NULL, NULL, NULL, NULL,
	/* 28 */ X8(jit_op_sse),				/* MOVAPS .. COMISS */
	/* 30 */ jit_op_msr, jit_op_rdtsc, jit_op_msr, jit_op_rdpmc,
	/* 34 */ jit_op_sysenter, jit_op_sysexit, NULL, NULL,
	/* 38 */ X8(NULL),					/* 0F38, 0F3A escapes */
	/* 40 */ X16(jit_op_cmov),				/* CMOVcc */
	/* 50 */ X16(jit_op_sse),				/* SSE arithmetic */
	/* 60 */ X16(jit_op_sse),				/* unpack, pack, MOVD/MOVQ */
	/* 70 */ jit_op_sse, jit_op_sse, jit_op_sse, jit_op_sse,	/* PSHUF*, shift groups */
	/* 74 */ jit_op_sse, jit_op_sse, jit_op_sse, jit_op_emms,	/* PCMPEQ*, EMMS */
	/* 78 */ NULL, NULL, NULL, NULL,
	/* 7C */ jit_op_sse, jit_op_sse, jit_op_sse, jit_op_sse,	/* HADD HSUB MOVD MOVQ */
	/* 80 */ X16(jit_op_jcc),				/* Jcc rel32 */
	/* 90 */ X16(jit_op_setcc),				/* SETcc */
	/* A0 */ jit_op_push_seg, jit_op_pop_seg, jit_op_cpuid, jit_op_bt,
	/* A4 */ jit_op_shxd, jit_op_shxd, NULL, NULL,		/* SHLD */
	/* A8 */ jit_op_push_seg, jit_op_pop_seg, NULL, jit_op_bt,	/* RSM BTS */
	/* AC */ jit_op_shxd, jit_op_shxd, jit_op_grp15, jit_op_imul, /* SHRD grp15 IMUL */
	/* B0 */ jit_op_cmpxchg, jit_op_cmpxchg, jit_op_lxs, jit_op_bt, /* LSS BTR */
	/* B4 */ jit_op_lxs, jit_op_lxs, jit_op_movx, jit_op_movx,	/* LFS LGS MOVZX */
	/* B8 */ jit_op_bitscan, jit_op_ud, jit_op_grp8, jit_op_bt,	/* POPCNT UD1 grp8 BTC */
	/* BC */ jit_op_bitscan, jit_op_bitscan, jit_op_movx, jit_op_movx, /* BSF BSR MOVSX */
	/* C0 */ jit_op_xadd, jit_op_xadd, jit_op_sse, jit_op_movnti,
	/* C4 */ jit_op_sse, jit_op_sse, jit_op_sse, jit_op_grp9,	/* PINSRW PEXTRW SHUFPS */
	/* C8 */ X8(jit_op_bswap),				/* BSWAP */
	/* D0 */ X16(jit_op_sse),
	/* E0 */ X16(jit_op_sse),
	/* F0 */ X16(jit_op_sse),
};

jit_op_fn *const jit_ops_0f38[256] = {
	/* 00 */ X16(jit_op_ssse3),				/* PSHUFB .. PSIGN, PMULHRSW */
	/* 10 */ NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	/* 18 */ NULL, NULL, NULL, NULL, jit_op_ssse3, jit_op_ssse3, jit_op_ssse3, NULL, /* PABS* */
	/* 20 */ X16(NULL), X16(NULL), X16(NULL),
	/* 50 */ X16(NULL), X16(NULL), X16(NULL), X16(NULL),
	/* 90 */ X16(NULL), X16(NULL), X16(NULL), X16(NULL), X16(NULL), X16(NULL),
	/* F0 */ jit_op_movbe, jit_op_movbe,			/* MOVBE */
};

jit_op_fn *const jit_ops_0f3a[256] = {
	/* 00 */ NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	/* 08 */ NULL, NULL, NULL, NULL, NULL, NULL, NULL, jit_op_ssse3, /* PALIGNR */
};
