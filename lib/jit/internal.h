/*
 * lib/jit private definitions: the vCPU structure, the decoded-instruction
 * form shared by the interpreter and the translator, the translator's
 * internals (tr-*.c), and the inline fast paths of register and memory
 * access.
 *
 * Conventions used throughout the library:
 *  - cpu->rip holds the address of the instruction being executed until it
 *    completes; handlers that branch set cpu->next_rip.  A fault raised
 *    with jit_raise() unwinds (longjmp) to the run loop with cpu->rip still
 *    at the faulting instruction, so handlers must do every access that can
 *    fault before they change architectural state (precise exceptions).
 *  - Arithmetic flags come from the host ALU (the host is x86-64): see the
 *    essay in alu.c.
 */
#ifndef JIT_INTERNAL_H
#define JIT_INTERNAL_H

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "jit/jit.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* RFLAGS (Intel SDM vol. 1, 3.4.3) */
#define F_CF 0x1u
#define F_PF 0x4u
#define F_AF 0x10u
#define F_ZF 0x40u
#define F_SF 0x80u
#define F_TF 0x100u
#define F_IF 0x200u
#define F_DF 0x400u
#define F_OF 0x800u
#define F_IOPL 0x3000u
#define F_NT 0x4000u
#define F_RF 0x10000u
#define F_VM 0x20000u
#define F_AC 0x40000u
#define F_VIF 0x80000u
#define F_VIP 0x100000u
#define F_ID 0x200000u
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)

/* Control registers and EFER (SDM vol. 3, 2.5 and 2.2.1) */
#define CR0_PE 0x1u
#define CR0_MP 0x2u
#define CR0_EM 0x4u
#define CR0_TS 0x8u
#define CR0_ET 0x10u
#define CR0_NE 0x20u
#define CR0_WP 0x10000u
#define CR0_AM 0x40000u
#define CR0_NW 0x20000000u
#define CR0_CD 0x40000000u
#define CR0_PG 0x80000000u
#define CR4_VME 0x1u
#define CR4_PVI 0x2u
#define CR4_TSD 0x4u
#define CR4_DE 0x8u
#define CR4_PSE 0x10u
#define CR4_PAE 0x20u
#define CR4_MCE 0x40u
#define CR4_PGE 0x80u
#define CR4_PCE 0x100u
#define CR4_OSFXSR 0x200u
#define CR4_OSXMMEXCPT 0x400u
#define CR4_FSGSBASE 0x10000u
#define EFER_SCE 0x1u
#define EFER_LME 0x100u
#define EFER_LMA 0x400u
#define EFER_NXE 0x800u

/* Exception vectors (SDM vol. 3, 6.3.1) */
enum {
	EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5,
	EXC_UD = 6, EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11,
	EXC_SS = 12, EXC_GP = 13, EXC_PF = 14, EXC_MF = 16, EXC_AC = 17,
	EXC_MC = 18, EXC_XM = 19,
};

/* Page-fault error code bits */
#define PF_P 0x1u
#define PF_W 0x2u
#define PF_U 0x4u
#define PF_RSVD 0x8u
#define PF_I 0x10u

/* Segment register numbers: the encoding order of sreg fields. */
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_LDTR, SEG_TR };
#define SEG_NONE 0xff

/* Memory access kinds; the TLB permission bits are these shifted by 3
 * for user-mode accesses. */
#define ACC_R 1u
#define ACC_W 2u
#define ACC_X 4u
#define ACC_USER 8u	/* flag: check with user privilege */
#define ACC_SYS 16u	/* flag: implicit supervisor access (descriptor tables) */

/* Decoded instruction: produced by jit_decode() (decode.c). */
enum { MAP_1B, MAP_0F, MAP_0F38, MAP_0F3A };
#define REG_NONE 0xff

struct jit_insn {
	uint8_t len;
	uint8_t map;		/* MAP_* */
	uint8_t op;		/* opcode byte within its map */
	uint8_t opsize;		/* operand size in bytes: 1, 2, 4 or 8 */
	uint8_t addrsize;	/* address size in bytes: 2, 4 or 8 */
	uint8_t seg;		/* segment of the memory operand (override or default) */
	uint8_t seg_override;	/* SEG_NONE when no override prefix */
	uint8_t rep;		/* 0, 0xf2 or 0xf3: the last of them seen */
	uint8_t lock;		/* LOCK prefix present */
	uint8_t pfx66;		/* operand-size prefix present (SSE mandatory prefix) */
	uint8_t rex;		/* REX byte, 0 when absent */
	uint8_t has_modrm;
	uint8_t mod;		/* ModRM.mod: 3 means a register operand */
	uint8_t reg;		/* ModRM.reg extended by REX.R (or the opcode's low 3 bits + REX.B) */
	uint8_t rm;		/* ModRM.rm extended by REX.B when mod == 3 */
	uint8_t base;		/* memory base register or REG_NONE */
	uint8_t index;		/* memory index register or REG_NONE */
	uint8_t scale;		/* log2 of the index scale */
	uint8_t rip_rel;	/* RIP-relative memory operand */
	uint8_t mode64;		/* decoded in 64-bit mode */
	int32_t disp;
	uint64_t imm;		/* first immediate (sign-extended where the ISA says so) */
	uint16_t imm2;		/* second immediate: ENTER's level, far pointer selector */
};

/* Decoder results other than a length */
#define DEC_MORE (-1)	/* the instruction continues past the bytes given */
#define DEC_UD (-2)	/* invalid opcode */
#define DEC_LONG (-3)	/* longer than 15 bytes: #GP(0) */

int jit_decode(const uint8_t *p, unsigned avail, unsigned code_size, struct jit_insn *in);

/* Sets of 2 MiB regions of linear addresses, hashed to one of 4096 bits
 * (8 GiB before two regions share one): the Linux kernel's text, modules,
 * direct map and vmalloc space fall on distinct bits, so INVLPG of a
 * vmalloc page neither walks the TLB for a large page nor ends the
 * chains into the kernel's text (mem.c), as 64 bits did. */
#define JIT_REGION_WORDS 64
struct jit_regions {
	uint64_t w[JIT_REGION_WORDS];
};

static inline void jit_region_add(struct jit_regions *s, uint64_t region)
{
	s->w[region >> 6 & (JIT_REGION_WORDS - 1)] |= 1ull << (region & 63);
}

static inline bool jit_region_has(const struct jit_regions *s, uint64_t region)
{
	return s->w[region >> 6 & (JIT_REGION_WORDS - 1)] >> (region & 63) & 1;
}

/* Soft TLB: direct-mapped by linear page number.  4096 entries (512 walked
 * the page tables 2.3 times as often while the guest read a file through
 * its page cache); a flush visits only the entries filled (tlb_live). */
#define TLB_SIZE 4096
#define TLB_VICTIMS 8	/* entries a fill pushed out, looked at before a walk */
#define JIT_BLOCK_MAX 64	/* instructions in a block (block.c), and so in a translation */
#define TLB_NONE (~0ull)
#define P_R ACC_R
#define P_W ACC_W
#define P_X ACC_X

struct jit_tlb_entry {
	uint64_t tag;		/* linear page number, TLB_NONE when empty */
	uint8_t *host_r;	/* host address of the page for reads/fetches, NULL: slow path */
	uint8_t *host_w;	/* same for writes (NULL until a write walk set D) */
	uint64_t gpa;		/* guest-physical page address */
	uint8_t perm;		/* P_* for supervisor, P_* << 3 for user */
	uint8_t global;
	uint8_t lshift;		/* piece of a page of 4 KiB << lshift (0, 9, 10, 18) */
};

/* Block cache (block.c): straight-line runs of decoded instructions,
 * keyed by the host address of their first code byte. */
struct jit_block;
struct jit_bcache;
/* chained entries into blocks on non-global pages one CR3 load turns off
 * (more: every chain goes) */
#define JIT_CHAIN_NG 512
/* a generation no TLB generation equals: the entry is off */
#define JIT_GEN_NONE UINT64_MAX
/* A chained entry's TLB generation: the 8-byte immediate of its first
 * instruction (tr-x86.c's chain_entry()), read and patched here. */
static inline uint64_t jit_gen_get(const uint8_t *g)
{
	uint64_t v;

	memcpy(&v, g, 8);
	return v;
}

static inline void jit_gen_set(uint8_t *g, uint64_t v)
{
	memcpy(g, &v, 8);
}
/* Translated code cache (tr-cache.c) */
struct jit_tcache;

/* x87 register: the 80-bit format, which is the host's long double. */
union jit_fpreg {
	long double f;
	struct {
		uint64_t mant;
		uint16_t exp;
	} r;
};

union jit_xmm {
	uint8_t b[16];
	uint16_t w[8];
	uint32_t d[4];
	uint64_t q[2];
	int8_t sb[16];
	int16_t sw[8];
	int32_t sd[4];
	int64_t sq[2];
	float f[4];
	double g[2];
};

struct jit_fpu {
	union jit_fpreg st[8];	/* physical registers R0..R7 */
	uint16_t fcw, fsw;	/* fsw holds TOP in bits 11..13 */
	uint8_t ftw;		/* abridged tag: bit i set when Ri is valid */
	uint16_t fop;
	uint64_t fip, fdp;
	uint32_t mxcsr;
	union jit_xmm xmm[16];
};

struct jit_cpu {
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags;
	struct jit_segment seg[8];	/* SEG_ES .. SEG_TR */
	struct jit_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t dr[8];
	uint64_t xcr0;

	/* debug registers in force (debug.c; bit n for DRn) */
	uint8_t dbg_exec;	/* enabled instruction breakpoints */
	uint8_t dbg_data;	/* enabled data breakpoints */
	uint8_t dbg_io;		/* enabled I/O breakpoints (CR4.DE) */
	uint8_t dbg_hit;	/* data breakpoints the current instruction hit */
	uint32_t dbg_held;	/* DR6 bits of traps held over a MOV SS/POP SS */
	uint32_t dbg_now;	/* DR6 bits of a trap due before the next instruction */
	bool dbg_after_ss;	/* the last instruction loaded SS */
	bool dbg_on;		/* any of the above: run one instruction at a time */

	/* derived from the above by jit_update_mode() */
	int cpl;
	unsigned code_size;	/* 2, 4 or 8: default operand/address size of CS */
	unsigned stack_size;	/* 2, 4 or 8: stack pointer width */
	bool pm;		/* CR0.PE */
	bool lma;		/* long mode active */
	bool mode64;		/* 64-bit sub-mode (LMA and CS.L) */

	/* MSRs the CPU owns */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
	uint64_t pat, tsc_offset, misc_enable, tsc_aux, apic_base;
	uint64_t mtrr_def_type, mtrr_fixed[11], mtrr_var[16];

	struct jit_fpu fpu;

	struct jit_tlb_entry tlb[TLB_SIZE];
	struct jit_bcache *bcache;
	uintptr_t smc_lo, smc_hi;	/* host code bytes of the running block */
	bool smc_hit;		/* the running block wrote to its own code */
	bool no_blocks;		/* VM_JIT_NOBLOCKS: interpret one instruction at a time */
	struct jit_regions large_2m;	/* 2 MiB and 1 GiB regions (hashed to a bit) of the */
	uint64_t large_1g;		/* TLB's pieces of large pages; 0: none */
	bool code_global;	/* the last code fetch's page is global */

	/* execution state */
	uint64_t next_rip;	/* where the current instruction continues */
	uint64_t icount;
	int exc_vector;		/* the fault being raised */
	uint32_t exc_code;
	bool exc_has_code;
	int delivering;		/* vector being delivered, -1 when none */
	bool halted;
	bool wait_sipi;
	bool shadow;		/* interrupts blocked for one instruction (STI, MOV SS) */
	bool nmi_blocked;	/* between NMI delivery and IRET */
	bool shutdown;
	jmp_buf unwind;

	/* signals from other threads; events and irq_level share an 8-byte
	 * word, the rest of it always 0, that chained entries test with one
	 * compare (tr-x86.c's attn_check()) */
	_Alignas(8) atomic_uint events;	/* any of the below changed: check them */
	atomic_bool irq_level;
	uint8_t attn_zero[3];
	atomic_bool nmi_pending;
	atomic_bool init_pending;
	atomic_int sipi_vector;	/* -1 when none */
	atomic_bool stop;

	struct jit_bus bus;
	int index;

	/* profiling (VM_JIT_PROFILE=N: a sample every N million instructions) */
	uint64_t prof_period, prof_next;
	uint64_t stat_tlb_fills, stat_decodes, stat_blocks;
	uint64_t stat_translated, stat_tr_runs;
	uint64_t stat_tr_calls;	/* instructions translated as handler calls */
	uint64_t stat_tlb_flushes;	/* whole-TLB flushes (CR3, CR4, INVPCID...) */
	uint64_t stat_gens, stat_rechecks, stat_genstores;	/* TLB generations, chained entries
							   rechecked, and marked again */
#define PROF_STATS 9
	uint64_t prof_base[PROF_STATS];	/* the stat_* counters at the last sample */

	/* translated-code chaining (tr-x86.c, block.c) */
	uint64_t chain_end;	/* a chained block may start while icount is below */
	uint64_t tlb_gen;	/* bumped by a flush that may remap linked code: chains made before are off */
	struct jit_regions chain_2m;	/* 2 MiB and 1 GiB regions (hashed to a bit) of */
	uint64_t chain_1g;		/* blocks on global pages linked at tlb_gen */
	bool chain_nonglobal;	/* more blocks on non-global pages than chain_ng holds */
	/* the chained entries into blocks on non-global pages made good at
	 * tlb_gen (block.c's mark()): a flush that keeps global pages (a CR3
	 * load) turns off just these, jit_chains_ng_off() */
	struct jit_chain_ng {
		uint8_t *gen;	/* the entry's generation (jit_gen_set()) */
		uint64_t rip;
		uint64_t last;	/* the linear address of the block's last byte */
	} chain_ng[JIT_CHAIN_NG];
	unsigned nchain_ng;
	struct jit_regions chain_ng_2m;	/* their 2 MiB regions (hashed to a bit) */
	uint64_t chain_ng_epoch;	/* bumped when chain_ng empties */
	uint64_t chain_ng_flushes;	/* the block cache's flushes when chain_ng was begun */
	struct jit_tr_slot *tr_link;	/* exit slot to link to the next block, or NULL */
	uint64_t tr_tmp;	/* translated code's scratch (flags across a store) */
	uint64_t tr_tmp2;	/* and CMPXCHG's new RAX */
	union jit_xmm tr_x;	/* a 16-byte SSE load's bytes (jit_tr_mem_load16()) */

	/* The translator's view of the TLB (tr-mem.c), kept with it by
	 * jit_tlb_fill() and jit_tlb_drop(): per entry and kind of access
	 * (supervisor read, user read, supervisor write, user write), the
	 * entry's linear page address when such an access may go straight to
	 * host memory, else TLB_NONE; and beside it host minus linear
	 * address.  A load is then compare, add, load, the first two on one
	 * cache line (in two arrays they were two lines, often both missed). */
	struct jit_tlb_fast {
		uint64_t page;
		intptr_t add;
	} tlb_fast[4][TLB_SIZE];
	/* The last entries a fill pushed out of tlb[] for another page at
	 * the same index (a system call's kernel stack, entry code and user
	 * buffer pages took each other's places at every call); a fill
	 * takes its page back from here before it walks.  Flushes drop them
	 * as they drop tlb[]. */
	struct jit_tlb_entry tlb_victim[TLB_VICTIMS];
	unsigned tlb_victim_next;
	/* The indexes of tlb[] filled since they were last dropped by a
	 * flush (some may have gone since, one at a time): a flush visits
	 * these, not all TLB_SIZE entries (a kernel's boot flushes some ten
	 * thousand times). */
	uint16_t tlb_live[TLB_SIZE];
	unsigned tlb_nlive;
	uint8_t tlb_listed[TLB_SIZE];

	/* writes into translated code (track.c) */
	struct jit_ram *ram;	/* the RAM attached, or NULL */
	bool track;		/* this vCPU is the RAM's one: its pages are tracked */
	uint64_t stat_code_writes;	/* pages of translated code written */
};

/* TLB entry i leaves the TLB. */
static inline void jit_tlb_drop(struct jit_cpu *cpu, unsigned i)
{
	cpu->tlb[i].tag = TLB_NONE;
	for (int k = 0; k < 4; k++)
		cpu->tlb_fast[k][i].page = TLB_NONE;
}

/* Operation handler: executes one decoded instruction. */
typedef void jit_op_fn(struct jit_cpu *cpu, const struct jit_insn *in);
extern jit_op_fn *const jit_ops_1b[256];
extern jit_op_fn *const jit_ops_0f[256];
extern jit_op_fn *const jit_ops_0f38[256];
extern jit_op_fn *const jit_ops_0f3a[256];


/* Instruction handlers, by group (see dispatch.c). */
jit_op_fn jit_op_alu, jit_op_grp1, jit_op_test, jit_op_incdec_r, jit_op_grp4;
jit_op_fn jit_op_grp3, jit_op_imul, jit_op_grp2, jit_op_shxd, jit_op_bt, jit_op_grp8;
jit_op_fn jit_op_bitscan, jit_op_bswap, jit_op_movbe, jit_op_mov, jit_op_mov_imm;
jit_op_fn jit_op_mov_r_imm, jit_op_mov_moffs, jit_op_movx, jit_op_lea, jit_op_xchg;
jit_op_fn jit_op_cmpxchg, jit_op_xadd, jit_op_grp9, jit_op_cmov, jit_op_setcc;
jit_op_fn jit_op_cbw, jit_op_xlat, jit_op_lahf, jit_op_flagbit, jit_op_nop, jit_op_ud;
jit_op_fn jit_op_jcc, jit_op_jmp, jit_op_call, jit_op_ret, jit_op_loop, jit_op_grp5;
jit_op_fn jit_op_push_r, jit_op_pop_r, jit_op_push_imm, jit_op_pop_rm, jit_op_push_seg;
jit_op_fn jit_op_pop_seg, jit_op_pusha, jit_op_popa, jit_op_pushf, jit_op_popf;
jit_op_fn jit_op_enter, jit_op_leave, jit_op_string, jit_op_mov_to_seg;
jit_op_fn jit_op_mov_from_seg, jit_op_lxs, jit_op_far_direct, jit_op_far_indirect;
jit_op_fn jit_op_retf, jit_op_iret, jit_op_int, jit_op_syscall, jit_op_sysret;
jit_op_fn jit_op_sysenter, jit_op_sysexit, jit_op_mov_cr, jit_op_mov_dr, jit_op_grp6;
jit_op_fn jit_op_lar, jit_op_grp7, jit_op_clts, jit_op_invd, jit_op_hlt, jit_op_cli;
jit_op_fn jit_op_io, jit_op_msr, jit_op_rdtsc, jit_op_rdpmc, jit_op_cpuid, jit_op_bcd;
jit_op_fn jit_op_bound, jit_op_arpl, jit_op_x87, jit_op_fwait, jit_op_sse, jit_op_emms;
jit_op_fn jit_op_grp15, jit_op_movnti, jit_op_ssse3;

/* An instruction of a block: its handler (found once) and its decoding. */
struct jit_binsn {
	jit_op_fn *fn;
	struct jit_insn in;
};

/* block.c */
struct jit_bcache *jit_bcache_new(void);
void jit_bcache_free(struct jit_bcache *bc);
void jit_bcache_stats(const struct jit_bcache *bc, struct jit_stats *s);
void jit_bcache_flush(struct jit_bcache *bc);
bool jit_run_block(struct jit_cpu *cpu, uint64_t limit);
bool jit_lock_ok(const struct jit_insn *in);
bool jit_insn_continues(const struct jit_insn *in);
bool jit_insn_is_jcc(const struct jit_insn *in);
bool jit_insn_is_sti(const struct jit_insn *in);
jit_op_fn *jit_fast_form(const struct jit_insn *in);

/* tr-cache.c, tr-x86.c, tr-emit.c: the translator to host code */
typedef void jit_tr_fn(struct jit_cpu *cpu);
/* A translated block's exit to a known RIP: block.c links it to the
 * chained entry of the block there (entry: the exit JMP's displacement).
 * The same struct is an entry of the RET table (entry: the chained entry
 * of the block at target, which checks the TLB generation itself). */
struct jit_tr_slot {
	void *entry;
	uint64_t target;	/* the exit's RIP */
	uint64_t cpl;		/* and CPL */
};
#define JIT_RIP_NONE (1ull << 63)	/* not canonical: no RIP */
struct jit_tr_buf {
	uint8_t *p, *end;
	uint8_t *dp, *dend;	/* the block's data words (away from code) */
	bool full;		/* ran out of room: nothing more was written */
};
/* A host operand: register base (mem false) or [base + index << scale + disp]
 * (index -1: none). */
struct jit_tr_rm {
	int8_t base, index;
	uint8_t scale;
	bool mem;
	int32_t disp;
};
struct jit_tcache *jit_tcache_new(void);
void jit_tcache_free(struct jit_tcache *tc);
void jit_tcache_flush(struct jit_tcache *tc);
size_t jit_tcache_used(const struct jit_tcache *tc, size_t *capacity);
unsigned jit_tcache_hot(const struct jit_tcache *tc);
/* Exits to a RIP known only at run time (RET) look the next block up in
 * a direct-mapped table of chained entries (block.c fills it): 1 MiB a
 * vCPU.  The kernel's O_DIRECT read path returns to so many call sites
 * that with 4096 entries RETs that found another's entry sent the guest
 * back to the run loop 36k times per 256 MiB; 16384: 19k, 65536: 9k.
 * An entry is 16 bytes, its key the RIP with the CPL in bits 48-49 (a
 * canonical address has bits 48-63 all equal; JIT_RIP_NONE, never a
 * key, marks an empty one): at 32 bytes the lookup missed the host's L2
 * more often. */
#define JIT_JC_SIZE 65536
struct jit_jc {
	uint64_t key;
	void *entry;
};
static inline unsigned jit_jc_index(uint64_t rip)
{
	return (unsigned)((rip ^ (rip >> 12)) & (JIT_JC_SIZE - 1));
}
static inline uint64_t jit_jc_key(uint64_t rip, unsigned cpl)
{
	return rip ^ (uint64_t)cpl << 48;
}
/* What to translate: a block's instructions, the RIP and CPL the code is
 * for, the code bytes at host [code, code + nbytes); chain is set to the
 * entry from other blocks. */
struct jit_tr_req {
	const struct jit_binsn *insn;
	unsigned n;
	uint64_t rip;
	unsigned cpl;
	const uint8_t *code;
	unsigned nbytes;
	struct jit_jc *jc;	/* JIT_JC_SIZE entries */
	void *owner;		/* the block, for jit_chain_recheck() */
	bool checks;		/* the chained entry compares the code bytes (untracked) */
	void *chain;		/* out */
	uint8_t *gen;		/* out: the TLB generation chain checks (jit_gen_get()) */
	unsigned calls;		/* out: instructions translated as calls of their handler */
};
jit_tr_fn *jit_tcache_add(struct jit_tcache *tc, struct jit_tr_req *rq);
bool jit_chain_recheck(struct jit_cpu *cpu, void *owner, const uint8_t *gen);
jit_tr_fn *jit_tr_translate(struct jit_tr_buf *b, struct jit_tr_req *rq);
void jit_tr_flags_live(const struct jit_binsn *insn, unsigned n, bool *dead, uint32_t *live);
uint64_t jit_tr_read(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size);
uint64_t jit_tr_read_w(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size);
void jit_tr_write(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val);
_Noreturn void jit_tr_fault(struct jit_cpu *cpu, int vector, uint64_t off, unsigned size);
void jit_tr_read16(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size);
void jit_tr_write16(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size);
/* Emit bytes; past the buffer's end, set full and write nothing. */
static inline void jit_tr_byte(struct jit_tr_buf *b, uint8_t v)
{
	if (b->p < b->end)
		*b->p++ = v;
	else
		b->full = true;
}

static inline void jit_tr_u32(struct jit_tr_buf *b, uint32_t v)
{
	if (b->end - b->p >= 4) {
		memcpy(b->p, &v, 4);	/* little-endian host */
		b->p += 4;
	} else {
		b->full = true;
	}
}

static inline void jit_tr_u64(struct jit_tr_buf *b, uint64_t v)
{
	jit_tr_u32(b, (uint32_t)v);
	jit_tr_u32(b, (uint32_t)(v >> 32));
}
void jit_tr_op(struct jit_tr_buf *b, unsigned size, unsigned n, uint32_t opc, unsigned reg,
	       const struct jit_tr_rm *rm);
void jit_tr_mov_imm(struct jit_tr_buf *b, unsigned reg, uint64_t imm);
uint8_t *jit_tr_jump(struct jit_tr_buf *b, int cc);
void jit_tr_here(struct jit_tr_buf *b, uint8_t *at);
void jit_tr_point(struct jit_tr_buf *b, uint8_t *at, const uint8_t *to);
void jit_tr_jump_to(struct jit_tr_buf *b, int cc, const uint8_t *to);
void jit_tr_call(struct jit_tr_buf *b, const void *fn);

/* ---- translator internals (tr-x86.c, tr-mem.c, tr-alu.c) ---- */

/* Host registers (the encoding numbers) */
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

/* Offsets in struct jit_cpu for translated code (RBX holds the vCPU) */
#define OFF_GPR(r) ((int32_t)(offsetof(struct jit_cpu, gpr) + 8 * (r)))
#define OFF_RIP ((int32_t)offsetof(struct jit_cpu, rip))
#define OFF_RFLAGS ((int32_t)offsetof(struct jit_cpu, rflags))
#define OFF_NEXT ((int32_t)offsetof(struct jit_cpu, next_rip))
#define OFF_ICOUNT ((int32_t)offsetof(struct jit_cpu, icount))
#define OFF_SMC_HIT ((int32_t)offsetof(struct jit_cpu, smc_hit))
#define OFF_SHADOW ((int32_t)offsetof(struct jit_cpu, shadow))
#define OFF_DBG_ON ((int32_t)offsetof(struct jit_cpu, dbg_on))
#define OFF_TLB_FAST(kind) ((int32_t)(offsetof(struct jit_cpu, tlb_fast) + \
				      (kind) * TLB_SIZE * sizeof(struct jit_tlb_fast)))
#define OFF_TLB_ADD(kind) (OFF_TLB_FAST(kind) + (int32_t)offsetof(struct jit_tlb_fast, add))
_Static_assert(sizeof(struct jit_tlb_fast) == 16, "the fast TLB index is scaled by 16");
#define OFF_SMC_LO ((int32_t)offsetof(struct jit_cpu, smc_lo))
#define OFF_SMC_HI ((int32_t)offsetof(struct jit_cpu, smc_hi))
#define OFF_EVENTS ((int32_t)offsetof(struct jit_cpu, events))
#define OFF_IRQ ((int32_t)offsetof(struct jit_cpu, irq_level))
_Static_assert(offsetof(struct jit_cpu, irq_level) == offsetof(struct jit_cpu, events) + 4 &&
	       sizeof(atomic_bool) == 1 && offsetof(struct jit_cpu, events) % 8 == 0,
	       "events and irq_level make one 8-byte word");
#define OFF_CHAIN_END ((int32_t)offsetof(struct jit_cpu, chain_end))
#define OFF_TLB_GEN ((int32_t)offsetof(struct jit_cpu, tlb_gen))
#define OFF_TR_LINK ((int32_t)offsetof(struct jit_cpu, tr_link))
#define OFF_TR_TMP ((int32_t)offsetof(struct jit_cpu, tr_tmp))
#define OFF_TR_TMP2 ((int32_t)offsetof(struct jit_cpu, tr_tmp2))
#define OFF_TR_X ((int32_t)offsetof(struct jit_cpu, tr_x))
#define OFF_SEGBASE(s) ((int32_t)(offsetof(struct jit_cpu, seg) + \
			 (s) * sizeof(struct jit_segment) + offsetof(struct jit_segment, base)))

_Static_assert(sizeof(struct jit_tlb_entry) == 40, "the TLB index is scaled by 5 * 8");

/* The state of one block's translation. */
struct jit_tr {
	struct jit_tr_buf b;
	uint64_t rip, next;	/* of the instruction being translated */
	unsigned pend;		/* instructions retired since icount was updated */
	unsigned cpl;
	uintptr_t code_lo, code_hi;	/* host bytes of the block's code */
	struct jit_tr_slot *slot;	/* exit slots left (before the code) */
	unsigned nslot;
	struct jit_jc *jc;	/* chained entries by RIP */
	bool fl_dead;		/* the flags this instruction sets are overwritten unread */
	bool last;		/* the instruction is the block's last */
	bool sse_ok;		/* SSE's CR0/CR4 checks made since the last handler (tr-sse.c) */
	uint64_t entry_rip;	/* the block's first instruction */
	uint8_t *gen;		/* TLB generation the chained entry is good for (jit_gen_get()) */
	void *owner;		/* jit_tr_req's */
	uint8_t *body;		/* the block's first instruction, guest registers loaded */
	uint8_t *epi;		/* the common exit: restores the host registers, returns */
	int8_t host[16];	/* the host register caching each guest register, or -1 */
	uint16_t cached;	/* guest registers cached in host registers */
	uint16_t dirty;		/* those changed since loaded (memory is stale) */
	/* where each arithmetic flag's newest value is (tr-flags.c): */
	uint32_t hflags;	/* in the host flags */
	uint32_t pflags;	/* else in the image in cpu->tr_tmp (else in RFLAGS) */
	struct jit_tr_cold *cold;	/* slow paths of memory accesses, emitted after */
	unsigned ncold, maxcold;	/* the block (tr-mem.c) */
};

/* A memory access's slow path, emitted after the block's code so that the
 * fast path falls through (jit_tr_cold_emit()): the translator's state at
 * the access, and for a store that ends its instruction the state at its
 * end too (for the check of a store into the block's own code). */
struct jit_tr_cold {
	struct jit_tr at, end;
	uint8_t *miss[3];	/* jumps to the slow path */
	uint8_t *resume;	/* where the code goes on after it */
	const void *fn;		/* jit_tr_read, jit_tr_read_w or jit_tr_write */
	int seg;
	unsigned size;
	bool last;		/* end is set: jit_tr_smc_check() after the call */
	bool exit;		/* not a slow path: a side exit to exit_rip (jit_tr_side_exit()) */
	uint64_t exit_rip;
};
#define JIT_TR_COLD 96

/* What an instruction's translator did: nothing (the handler runs it),
 * emitted it, or emitted it and ended the block. */
enum { TR_NO, TR_OK, TR_END };

/* Operands and instructions for the emitter (tr-emit.c) */
static inline struct jit_tr_rm jit_tr_r(unsigned r)
{
	return (struct jit_tr_rm){ .base = (int8_t)r, .index = -1 };
}

static inline struct jit_tr_rm jit_tr_m(unsigned base, int32_t disp)
{
	return (struct jit_tr_rm){ .base = (int8_t)base, .index = -1, .mem = true, .disp = disp };
}

static inline struct jit_tr_rm jit_tr_mx(unsigned base, unsigned index, unsigned scale,
					 int32_t disp)
{
	return (struct jit_tr_rm){ .base = (int8_t)base, .index = (int8_t)index,
				   .scale = (uint8_t)scale, .mem = true, .disp = disp };
}

static inline void jit_tr_ins(struct jit_tr *t, unsigned size, uint32_t opc, unsigned reg,
			      struct jit_tr_rm rm)
{
	jit_tr_op(&t->b, size, opc > 0xffff ? 3 : opc > 0xff ? 2 : 1, opc, reg, &rm);
}

static inline void jit_tr_ins8(struct jit_tr *t, unsigned size, uint32_t opc, unsigned ext,
			       struct jit_tr_rm rm, uint8_t imm)
{
	jit_tr_ins(t, size, opc, ext, rm);
	jit_tr_byte(&t->b, imm);
}

static inline void jit_tr_ins32(struct jit_tr *t, unsigned size, uint32_t opc, unsigned ext,
				struct jit_tr_rm rm, uint32_t imm)
{
	jit_tr_ins(t, size, opc, ext, rm);
	jit_tr_u32(&t->b, imm);
}

/* hreg = zero-extended size bytes at rm */
static inline void jit_tr_ld(struct jit_tr *t, unsigned size, unsigned hreg, struct jit_tr_rm rm)
{
	if (size >= 4)
		jit_tr_ins(t, size, 0x8b, hreg, rm);
	else		/* REX.W: a REX, so that registers 4-7 are SPL..DIL, not AH..BH */
		jit_tr_ins(t, !rm.mem && size == 1 ? 8 : 4, size == 2 ? 0x0fb7 : 0x0fb6, hreg, rm);
}

static inline void jit_tr_st(struct jit_tr *t, unsigned size, unsigned hreg, struct jit_tr_rm rm)
{
	jit_tr_ins(t, size, size == 1 ? 0x88 : 0x89, hreg, rm);
}

/* tr-x86.c: guest registers (cached in host registers), exits, C calls */
struct jit_tr_rm jit_tr_gpr(const struct jit_tr *t, unsigned r);
void jit_tr_gpr_written(struct jit_tr *t, unsigned r);
struct jit_tr_rm jit_tr_greg(const struct jit_tr *t, const struct jit_insn *in, unsigned r,
			     unsigned size);
void jit_tr_greg_load(struct jit_tr *t, const struct jit_insn *in, unsigned hreg, unsigned r,
		      unsigned size);
void jit_tr_greg_store(struct jit_tr *t, const struct jit_insn *in, unsigned hreg, unsigned r,
		       unsigned size);
void jit_tr_cache_load(struct jit_tr *t, bool after_call);
void jit_tr_pend_flush(struct jit_tr *t, int sign);
void jit_tr_exit_to(struct jit_tr *t, uint64_t rip);
void jit_tr_exit_link(struct jit_tr *t, uint64_t rip);
void jit_tr_exit_dyn(struct jit_tr *t);
void jit_tr_sync_state(struct jit_tr *t);

/* tr-mem.c */
void jit_tr_ea(struct jit_tr *t, const struct jit_insn *in);
void jit_tr_mem_load_acc(struct jit_tr *t, int seg, unsigned size, bool write);
void jit_tr_mem_load(struct jit_tr *t, int seg, unsigned size);
void jit_tr_mem_store(struct jit_tr *t, int seg, unsigned size);
void jit_tr_mem_store_last(struct jit_tr *t, int seg, unsigned size, uint8_t **done);
void jit_tr_mem_store_end(struct jit_tr *t, uint8_t *done);
void jit_tr_cold_emit(struct jit_tr *t);
void jit_tr_side_exit(struct jit_tr *t, int cc, uint64_t rip);
void jit_tr_exit_link_out(struct jit_tr *t, const struct jit_tr *at, uint64_t rip);
void jit_tr_smc_check(struct jit_tr *t);
void jit_tr_rm_to_rax(struct jit_tr *t, const struct jit_insn *in, unsigned size);
int jit_tr_mov(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_lea(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_pushpop(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_branch(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_indirect(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_rmw(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_grp8(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_cmpxchg(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_xadd(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_bt(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_bitscan(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_pushf(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_cli(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_sse(struct jit_tr *t, const struct jit_insn *in);	/* tr-sse.c */
int jit_tr_push_imm(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_cwd(struct jit_tr *t, const struct jit_insn *in);
void jit_tr_cold_raise(struct jit_tr *t, uint8_t *miss, int vector);
void jit_tr_mem_load16(struct jit_tr *t, int seg);
void jit_tr_mem_store16_last(struct jit_tr *t, int seg, uint8_t **done);

/* tr-flags.c */
void jit_tr_flags_merge_rdx(struct jit_tr *t, uint32_t mask);
void jit_tr_flags_spill(struct jit_tr *t);
void jit_tr_flags_out(struct jit_tr *t);
void jit_tr_flags_out_loop(struct jit_tr *t);
void jit_tr_flags_sync(struct jit_tr *t);
void jit_tr_flags_set(struct jit_tr *t, uint32_t mask);
void jit_tr_flags_capture(struct jit_tr *t);
void jit_tr_flags_merge(struct jit_tr *t, uint32_t mask);
void jit_tr_flags_load(struct jit_tr *t);
void jit_tr_flags_to_host(struct jit_tr *t);
void jit_tr_flags_cf_in(struct jit_tr *t);
uint32_t jit_tr_cond_flags(unsigned cc);
int jit_tr_cond(struct jit_tr *t, unsigned cc);

/* tr-alu.c */
int jit_tr_mov_r_imm(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_movx(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_alu(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_grp3(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_grp2(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_imul(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_incdec(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_string(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_cmov(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_setcc(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_bswap(struct jit_tr *t, const struct jit_insn *in);
int jit_tr_notneg(struct jit_tr *t, const struct jit_insn *in);

/* cpu.c */
_Noreturn void jit_raise(struct jit_cpu *cpu, int vector, uint32_t code);
_Noreturn void jit_raise_nocode(struct jit_cpu *cpu, int vector);
void jit_update_mode(struct jit_cpu *cpu);
void jit_log(struct jit_cpu *cpu, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void jit_ud(struct jit_cpu *cpu, const struct jit_insn *in);

/* mem.c: linear and segmented memory access; may raise #PF/#GP/#SS */
uint64_t jit_lin_read_slow(struct jit_cpu *cpu, uint64_t lin, unsigned size, unsigned acc);
void jit_lin_write_slow(struct jit_cpu *cpu, uint64_t lin, unsigned size, uint64_t val, unsigned acc);
uint8_t *jit_lin_ptr(struct jit_cpu *cpu, uint64_t lin, unsigned size, unsigned acc);
uint64_t jit_seg_lin(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size, unsigned acc);
void jit_read_bytes(struct jit_cpu *cpu, uint64_t lin, void *buf, unsigned len, unsigned acc);
void jit_write_bytes(struct jit_cpu *cpu, uint64_t lin, const void *buf, unsigned len, unsigned acc);
void jit_tlb_flush(struct jit_cpu *cpu, bool global);
void jit_tlb_reset(struct jit_cpu *cpu);
void jit_chains_ng_off(struct jit_cpu *cpu);
void jit_chains_ng_clear(struct jit_cpu *cpu);
void jit_chains_ng_off_2m(struct jit_cpu *cpu, uint64_t lin);
void jit_tlb_flush_page(struct jit_cpu *cpu, uint64_t lin);

/* track.c: writes into the pages of translated code (jit.h's jit_ram) */
#define PAGE_TRACKED 0x80	/* translated code that does not compare its bytes lives here */
#define PAGE_ALARMS 0x7f	/* writes that left that code's bytes as they were */
struct jit_ram {
	uint8_t *base;
	size_t size;
	uint8_t *page;		/* per 4 KiB page: PAGE_TRACKED | alarms (__atomic) */
	pthread_mutex_t lock;	/* the rest */
	struct jit_cpu *cpu;	/* the one vCPU attached, NULL with none or several */
	unsigned ncpu;
	bool all;		/* queue overflowed: every page went stale */
	unsigned nq;		/* pages written by others, for cpu to invalidate */
	size_t q[64];
};
/* The page index of host address p when cpu tracks writes there, else -1. */
static inline ptrdiff_t jit_track_index(const struct jit_cpu *cpu, const void *p)
{
	const struct jit_ram *r = cpu->ram;

	if (!cpu->track || (const uint8_t *)p < r->base || (const uint8_t *)p >= r->base + r->size)
		return -1;
	return ((const uint8_t *)p - r->base) >> 12;
}
/* Is host address p's page tracked: a vCPU's write there must call
 * jit_track_write() first? */
static inline bool jit_track_hit(const struct jit_cpu *cpu, const void *p)
{
	ptrdiff_t i = jit_track_index(cpu, p);

	return i >= 0 && __atomic_load_n(&cpu->ram->page[i], __ATOMIC_RELAXED) & PAGE_TRACKED;
}
bool jit_track_page(struct jit_cpu *cpu, size_t i);
bool jit_track_mixed(const struct jit_cpu *cpu, size_t i);
void jit_track_write(struct jit_cpu *cpu, const void *p);
void jit_track_drain(struct jit_cpu *cpu);
void jit_track_detach(struct jit_cpu *cpu);
/* block.c: the translated blocks with bytes in host p's page go stale; 1
 * when p is one of their bytes, 0 when not, -1 when there are none */
int jit_bcache_page_written(struct jit_cpu *cpu, const void *p);
void jit_bcache_all_written(struct jit_cpu *cpu);

/* paging.c: translate lin for acc, filling the TLB entry; raises #PF */
struct jit_tlb_entry *jit_tlb_fill(struct jit_cpu *cpu, uint64_t lin, unsigned acc);
/* physical access for page walks and slow paths */
uint64_t jit_phys_read(struct jit_cpu *cpu, uint64_t gpa, unsigned size);
void jit_phys_write(struct jit_cpu *cpu, uint64_t gpa, unsigned size, uint64_t val);

/* seg.c */
void jit_load_seg(struct jit_cpu *cpu, int sreg, uint16_t sel);
void jit_seg_from_desc(struct jit_segment *s, uint16_t sel, uint64_t desc);
uint64_t jit_read_desc(struct jit_cpu *cpu, uint16_t sel, int vec);
void jit_write_desc_hi(struct jit_cpu *cpu, uint16_t sel, uint32_t hi);
void jit_load_cs(struct jit_cpu *cpu, uint16_t sel, uint64_t desc, int cpl);
void jit_seg_real(struct jit_segment *s, uint16_t sel);
void jit_seg_null(struct jit_segment *s, uint16_t sel);
void jit_fix_data_segs(struct jit_cpu *cpu);
uint64_t jit_read_desc_sys(struct jit_cpu *cpu, uint16_t sel, uint64_t *hi, int vec);

/* debug.c: debug registers and #DB (see the essay there) */
void jit_dbg_update(struct jit_cpu *cpu);
bool jit_dbg_page(const struct jit_cpu *cpu, uint64_t lin);
void jit_dbg_access(struct jit_cpu *cpu, uint64_t lin, unsigned size, unsigned acc);
bool jit_dbg_before(struct jit_cpu *cpu);
void jit_dbg_after(struct jit_cpu *cpu, const struct jit_insn *in, bool tf, uint64_t old_rip);
void jit_dbg_mov(struct jit_cpu *cpu, const struct jit_insn *in);
void jit_dbg_step_next(struct jit_cpu *cpu);
void jit_dbg_io(struct jit_cpu *cpu, uint16_t port, unsigned size);
void jit_dbg_trap_next(struct jit_cpu *cpu, uint32_t dr6_bits);

/* task.c: hardware task switches (legacy protected mode) */
enum { JIT_TASK_JMP, JIT_TASK_CALL, JIT_TASK_IRET, JIT_TASK_INT };
void jit_task_switch(struct jit_cpu *cpu, uint16_t sel, uint64_t d, int reason,
		     bool has_code, uint32_t code, uint32_t ret_eip);
uint64_t jit_task_gate_tss(struct jit_cpu *cpu, uint64_t gate, uint16_t *tss_sel);

/* intr.c */
enum { INT_EXC, INT_SOFT, INT_EXT, INT_NMI, INT_ICEBP };
void jit_deliver(struct jit_cpu *cpu, int vector, int kind, bool has_code,
		 uint32_t code, uint64_t ret_rip);

/* cpuid.c / msr.c */
void jit_cpuid(struct jit_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4]);
int jit_msr_read(struct jit_cpu *cpu, uint32_t msr, uint64_t *val);
int jit_msr_write(struct jit_cpu *cpu, uint32_t msr, uint64_t val);
uint64_t jit_rdtsc(struct jit_cpu *cpu);
/* tsc.c: the host TSC's rate in kHz (0: unknown), measured once; start measuring */
uint64_t jit_tsc_khz(void);
bool jit_tsc_ratio(uint32_t crystal_khz, uint32_t *num, uint32_t *den);
bool jit_tsc_fraction(uint64_t khz, uint32_t crystal_khz, uint32_t *num, uint32_t *den);
void jit_tsc_start(void);

/* system.c */
void jit_set_cr0(struct jit_cpu *cpu, uint64_t val);
void jit_set_cr4(struct jit_cpu *cpu, uint64_t val);
void jit_set_cr3(struct jit_cpu *cpu, uint64_t val);
bool jit_io_allowed(struct jit_cpu *cpu, uint16_t port, unsigned size);

/* sse_ops.c: host-executed SIMD operations */
enum { SSE_X128 = 1, SSE_X64, SSE_X32, SSE_M64 };
struct jit_sse_op {
	void (*fn)(union jit_xmm *d, const union jit_xmm *s);
	uint8_t form;		/* SSE_*: destination register file and source size */
	uint8_t fp;		/* runs under MXCSR */
};
const struct jit_sse_op *jit_sse_lookup(int map, uint8_t op, int pfx);
void jit_x_cmp(union jit_xmm *d, const union jit_xmm *s, int pfx, uint8_t imm);
uint64_t jit_x_comi(const union jit_xmm *d, const union jit_xmm *s, int op, bool dbl);
uint64_t jit_x_cvt2si(const union jit_xmm *s, bool dbl, bool trunc, bool q);
void jit_x_cvtsi2(union jit_xmm *d, uint64_t v, bool dbl, bool q);
uint32_t jit_x_fp(uint32_t mxcsr, void (*fn)(union jit_xmm *, const union jit_xmm *),
		  union jit_xmm *d, const union jit_xmm *s);
uint32_t jit_x_mxcsr_begin(uint32_t mxcsr);
uint32_t jit_x_mxcsr_end(uint32_t host);

/* fpu */
void jit_fpu_reset(struct jit_cpu *cpu);
void jit_fpu_reset_x87(struct jit_cpu *cpu);
unsigned jit_fpu_tag(const struct jit_cpu *cpu, unsigned i);
unsigned jit_fpu_env_store(struct jit_cpu *cpu, uint64_t lin, unsigned opsize);
unsigned jit_fpu_env_load(struct jit_cpu *cpu, uint64_t lin, unsigned opsize);
void jit_fxsave(struct jit_cpu *cpu, uint8_t *buf);
void jit_fxrstor(struct jit_cpu *cpu, const uint8_t *buf);

/* alu.c: two-operand integer ALU with host flags */
enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };
uint64_t jit_alu(struct jit_cpu *cpu, int op, unsigned size, uint64_t d, uint64_t s);

/* ---- register access ---- */

static inline uint64_t size_mask(unsigned size)
{
	return size == 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static inline int64_t sext(uint64_t v, unsigned size)
{
	unsigned sh = 64 - size * 8;

	return (int64_t)(v << sh) >> sh;
}

/* Byte register r: AH..BH when there is no REX and r is 4..7. */
static inline uint64_t reg_read(const struct jit_cpu *cpu, const struct jit_insn *in,
				unsigned r, unsigned size)
{
	if (size == 1) {
		if (!in->rex && r >= 4 && r < 8)
			return (cpu->gpr[r - 4] >> 8) & 0xff;
		return cpu->gpr[r] & 0xff;
	}
	return cpu->gpr[r] & size_mask(size);
}

static inline void reg_write(struct jit_cpu *cpu, const struct jit_insn *in,
			     unsigned r, unsigned size, uint64_t v)
{
	switch (size) {
	case 1:
		if (!in->rex && r >= 4 && r < 8)
			cpu->gpr[r - 4] = (cpu->gpr[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
		else
			cpu->gpr[r] = (cpu->gpr[r] & ~0xffull) | (v & 0xff);
		break;
	case 2:
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		cpu->gpr[r] = (uint32_t)v;
		break;
	default:
		cpu->gpr[r] = v;
	}
}

/* ---- memory access ---- */

static inline struct jit_tlb_entry *tlb_hit(struct jit_cpu *cpu, uint64_t lin, unsigned acc)
{
	struct jit_tlb_entry *e = &cpu->tlb[(lin >> 12) & (TLB_SIZE - 1)];
	unsigned need = (acc & ACC_USER) ? (acc & 7) << 3 : (acc & 7);

	if (likely(e->tag == lin >> 12 && (e->perm & need) == need))
		return e;
	return NULL;
}

static inline unsigned acc_user(const struct jit_cpu *cpu, unsigned acc)
{
	return cpu->cpl == 3 ? acc | ACC_USER : acc;
}

/* A write to host bytes [p, p+len): did the running block just modify
 * its own code?  (Self-modifying code inside one block; block.c.) */
static inline void smc_note(struct jit_cpu *cpu, const uint8_t *p, unsigned len)
{
	if (unlikely((uintptr_t)p + len > cpu->smc_lo && (uintptr_t)p < cpu->smc_hi))
		cpu->smc_hit = true;
}

static inline uint64_t lin_read(struct jit_cpu *cpu, uint64_t lin, unsigned size, unsigned acc)
{
	struct jit_tlb_entry *e = tlb_hit(cpu, lin, acc);

	if (likely(e && e->host_r && (lin & 0xfff) + size <= 0x1000)) {
		const uint8_t *p = e->host_r + (lin & 0xfff);

		switch (size) {
		case 1: return *p;
		case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
		case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
		default: { uint64_t v; memcpy(&v, p, 8); return v; }
		}
	}
	return jit_lin_read_slow(cpu, lin, size, acc);
}

/* 16 bytes at lin as two 8-byte reads, each with its faults (the second
 * wraps at 4 GiB outside long mode): SSE's m128 loads. */
static inline void lin_read16(struct jit_cpu *cpu, uint64_t lin, uint64_t q[2], unsigned acc)
{
	q[0] = lin_read(cpu, lin, 8, acc);
	q[1] = lin_read(cpu, cpu->lma ? lin + 8 : (uint32_t)(lin + 8), 8, acc);
}

static inline void lin_write(struct jit_cpu *cpu, uint64_t lin, unsigned size, uint64_t v,
			     unsigned acc)
{
	struct jit_tlb_entry *e = tlb_hit(cpu, lin, acc | ACC_W);

	if (likely(e && e->host_w && (lin & 0xfff) + size <= 0x1000)) {
		uint8_t *p = e->host_w + (lin & 0xfff);

		smc_note(cpu, p, size);
		switch (size) {
		case 1: *p = (uint8_t)v; return;
		case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); return; }
		case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); return; }
		default: memcpy(p, &v, 8); return;
		}
	}
	jit_lin_write_slow(cpu, lin, size, v, acc | ACC_W);
}

static inline bool canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* Logical to linear: the 64-bit mode case inline, the rest in mem.c. */
static inline uint64_t seg_lin(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size,
			       unsigned acc)
{
	if (likely(cpu->mode64)) {
		uint64_t lin = off + (seg >= SEG_FS ? cpu->seg[seg].base : 0);

		if (likely(canonical(lin) && canonical(lin + size - 1)))
			return lin;
	}
	return jit_seg_lin(cpu, seg, off, size, acc);
}

/* Segment-relative access with the current privilege. */
static inline uint64_t mem_read(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t lin = seg_lin(cpu, seg, off, size, ACC_R);

	return lin_read(cpu, lin, size, acc_user(cpu, ACC_R));
}

static inline void mem_write(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size,
			     uint64_t v)
{
	uint64_t lin = seg_lin(cpu, seg, off, size, ACC_W);

	lin_write(cpu, lin, size, v, acc_user(cpu, ACC_W));
}

/* Effective address of the memory operand (before segmentation). */
static inline uint64_t insn_ea(const struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t ea = (uint64_t)(int64_t)in->disp;

	if (in->rip_rel)
		ea += cpu->rip + in->len;
	if (in->base != REG_NONE)
		ea += cpu->gpr[in->base];
	if (in->index != REG_NONE)
		ea += cpu->gpr[in->index] << in->scale;
	return ea & size_mask(in->addrsize);
}

/* The r/m operand as a register or memory value. */
static inline uint64_t rm_read(struct jit_cpu *cpu, const struct jit_insn *in, unsigned size)
{
	if (in->mod == 3)
		return reg_read(cpu, in, in->rm, size);
	return mem_read(cpu, in->seg, insn_ea(cpu, in), size);
}

static inline void rm_write(struct jit_cpu *cpu, const struct jit_insn *in, unsigned size,
			    uint64_t v)
{
	if (in->mod == 3)
		reg_write(cpu, in, in->rm, size, v);
	else
		mem_write(cpu, in->seg, insn_ea(cpu, in), size, v);
}


/* ---- read-modify-write of the r/m operand (atomic under LOCK) ---- */

struct rmw {
	uint8_t *p;		/* host address, NULL for a register or MMIO */
	uint64_t lin;
	unsigned size, acc;
	int reg;		/* register operand, -1 for memory */
	bool lock;
};

static inline uint64_t host_load(const uint8_t *p, unsigned size)
{
	switch (size) {
	case 1: return *p;
	case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
	case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
	default: { uint64_t v; memcpy(&v, p, 8); return v; }
	}
}

static inline void host_store(uint8_t *p, unsigned size, uint64_t v)
{
	switch (size) {
	case 1: *p = (uint8_t)v; break;
	case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
	default: memcpy(p, &v, 8);
	}
}

bool jit_host_cas(uint8_t *p, unsigned size, uint64_t *old, uint64_t val);

/* Start an RMW: translates for writing (faults happen here) and loads. */
static inline uint64_t rmw_load(struct jit_cpu *cpu, const struct jit_insn *in,
				unsigned size, struct rmw *m)
{
	m->size = size;
	m->lock = in->lock;
	if (in->mod == 3) {
		m->reg = in->rm;
		m->p = NULL;
		m->lin = 0;
		m->acc = 0;
		return reg_read(cpu, in, in->rm, size);
	}
	m->reg = -1;
	m->lin = seg_lin(cpu, in->seg, insn_ea(cpu, in), size, ACC_W);
	m->acc = acc_user(cpu, ACC_W);
	{
		struct jit_tlb_entry *e = tlb_hit(cpu, m->lin, m->acc);

		if (likely(e && e->host_w && (m->lin & 0xfff) + size <= 0x1000)) {
			m->p = e->host_w + (m->lin & 0xfff);
			smc_note(cpu, m->p, size);
		} else {
			m->p = jit_lin_ptr(cpu, m->lin, size, m->acc);
		}
	}
	if (m->p)
		return host_load(m->p, size);
	return jit_lin_read_slow(cpu, m->lin, size, m->acc & ~ACC_W);
}

/* Finish an RMW.  Under LOCK, false means another CPU changed the value
 * (now in *old): compute again and retry. */
static inline bool rmw_store(struct jit_cpu *cpu, const struct jit_insn *in,
			     struct rmw *m, uint64_t *old, uint64_t val)
{
	if (m->reg >= 0)
		reg_write(cpu, in, (unsigned)m->reg, m->size, val);
	else if (m->p && m->lock)
		return jit_host_cas(m->p, m->size, old, val);
	else if (m->p)
		host_store(m->p, m->size, val);
	else
		jit_lin_write_slow(cpu, m->lin, m->size, val, m->acc);
	return true;
}

/* ---- stack ---- */

static inline uint64_t sp_mask(const struct jit_cpu *cpu)
{
	return size_mask(cpu->stack_size);
}

static inline uint64_t sp_add(const struct jit_cpu *cpu, int64_t delta)
{
	uint64_t m = sp_mask(cpu);

	return (cpu->gpr[JIT_RSP] & ~m) | ((cpu->gpr[JIT_RSP] + delta) & m);
}

/* Push without committing RSP: returns the new RSP value. */
static inline uint64_t push_at(struct jit_cpu *cpu, uint64_t rsp, unsigned size, uint64_t v)
{
	uint64_t m = sp_mask(cpu);

	rsp = (rsp & ~m) | ((rsp - size) & m);
	mem_write(cpu, SEG_SS, rsp & m, size, v);
	return rsp;
}

static inline void push(struct jit_cpu *cpu, unsigned size, uint64_t v)
{
	cpu->gpr[JIT_RSP] = push_at(cpu, cpu->gpr[JIT_RSP], size, v);
}

static inline uint64_t pop_peek(struct jit_cpu *cpu, unsigned off, unsigned size)
{
	uint64_t m = sp_mask(cpu);

	return mem_read(cpu, SEG_SS, (cpu->gpr[JIT_RSP] + off) & m, size);
}

/* ---- flags ---- */

static inline void set_arith(struct jit_cpu *cpu, uint64_t f)
{
	cpu->rflags = (cpu->rflags & ~(uint64_t)F_ARITH) | (f & F_ARITH);
}

bool jit_cond(const struct jit_cpu *cpu, unsigned cc);

/* Operand size of near branches and stack ops. */
static inline unsigned stack_opsize(const struct jit_insn *in)
{
	return in->opsize == 1 ? 8 : in->opsize;
}

static inline void set_rip(struct jit_cpu *cpu, const struct jit_insn *in, uint64_t target)
{
	if (in->opsize == 2)
		target &= 0xffff;
	else if (in->opsize == 4 || !cpu->mode64)
		target &= 0xffffffff;
	cpu->next_rip = target;
}

#endif
