/*
 * The block cache: decoded straight-line code, run without re-decoding.
 *
 * The interpreter's cost per instruction used to be dominated by the
 * work around the handler: polling signals, translating CS:RIP through
 * the TLB, looking the instruction up in a decoded-instruction cache and
 * checking its bytes, checking LOCK and finding the handler in the opcode
 * maps.  A block does all of that once for a run of instructions:
 *
 *  - A block starts at a code address and holds the decoded instructions
 *    (struct jit_insn plus the handler, found once) up to and including
 *    the first one that may branch or change anything the decoding or
 *    the run loop depends on (mode, CS, paging, RFLAGS.IF set, halting,
 *    I/O), at most BLOCK_MAX instructions, and not past the end of the 4
 *    KiB code page unless the next page follows it in host memory
 *    (next_page()).  Instructions that continue a block are listed in
 *    continues_block() and jit_insn_continues(): integer, string, x87 and
 *    SIMD work, and a few system instructions.
 *  - Blocks are keyed by the host address of their first byte and the
 *    code size (16/32/64-bit decoding), so aliases of a physical page
 *    share blocks and remapping needs no flush: entry translates CS:RIP
 *    through the TLB exactly as a fetch does (with its faults).
 *  - Self-modifying code stays exact: entering a block from the run loop
 *    compares the bytes it was decoded from with the bytes in memory
 *    (whoever changed them: this CPU, another vCPU, a device's DMA), and
 *    a write by the running block into its own bytes is caught by
 *    smc_note() in every write path (internal.h, mem.c), which ends the
 *    block after that instruction; the next entry then sees the new bytes.
 *    Entries from other translated blocks compare the bytes too, unless
 *    the vCPU tracks writes to the block's pages (track.c, claim()).
 *  - Signals (interrupts, INIT, stop) and the budget are polled between
 *    blocks; instructions that change RFLAGS.IF end their block so that
 *    an interrupt shadow and a pending interrupt are seen at the right
 *    boundary.
 *
 * Frequent forms get the specialised handlers of fast.c.  Otherwise each
 * instruction runs through the same handler as in the
 * one-at-a-time interpreter (run.c's step(), kept for single-stepping,
 * code in MMIO and instructions that cross a page), so both paths share
 * one implementation of every instruction.
 *
 * A block of 64-bit code that has run a few times is translated to host
 * code (tr-x86.c) for the RIP and CPL it runs at; entering it then calls
 * that code instead of looping over the handlers.  Translated blocks jump
 * straight to each other: an exit to a known RIP is linked here, the
 * first time it is taken, to the next block's chained entry (which checks
 * the code bytes, signals and the budget itself), and RET looks its
 * target up in a table of chained entries filled here.  The interpreter
 * loop below stays the reference (VM_JIT_TRANSLATE=off).
 *
 * Storage is one arena per vCPU with a hash table of chains; when the
 * arena or the code cache fills up everything is dropped and decoding
 * starts afresh.  The arena (64 MiB of address space, touched as used)
 * holds a whole Debian boot's blocks: at 8 MiB it filled 5 times per
 * boot and the hot code was decoded and translated again each time.
 */
#include <stdlib.h>

#include "jit/internal.h"

#define BLOCK_MAX JIT_BLOCK_MAX
#define RETRANSLATE 8	/* entries at another RIP in a row that translate again */
#define BC_HASH 65536
#define BC_ARENA (64u << 20)
#define PG_HASH 4096	/* lists of translated blocks by code page */

struct jit_block {
	const uint8_t *p;	/* host address of the first code byte */
	struct jit_block *next;	/* hash chain */
	struct jit_block *succ[2];	/* blocks that followed this one (chaining hints) */
	jit_tr_fn *tr;		/* translated code (tr-x86.c), NULL until hot */
	void *tr_chain;		/* its entry from other translated blocks */
	uint8_t *tr_gen;	/* the TLB generation that entry accepts (jit_gen_get()) */
	uint8_t *ng_gen;	/* tr_gen when listed in cpu->chain_ng ... */
	uint64_t ng_epoch;	/* ... at this chain_ng_epoch */
	uint64_t tr_rip;	/* the RIP and CPL tr was made for */
	uint8_t tr_cpl;
	uint8_t runs;		/* entries so far, up to the translator's threshold; then
				   entries in a row at another RIP or CPL */
	uint16_t nbytes;	/* code bytes covered (copied after insn[]) */
	uint8_t ninsn;
	uint8_t code_size;
	bool cross;		/* its bytes go on into the next 4 KiB page (next_page()) */
	bool checks;		/* tr's chained entry compares the code bytes itself */
	bool listed;		/* on the lists of its pages (pg_next) */
	bool unsure;		/* tr's chained entry is off until claim() compared its bytes */
	uintptr_t at;		/* p (which goes NULL when b is stale) */
	struct jit_block *pg_next[2];	/* the lists of its first and next page */
	struct jit_binsn insn[];
};

struct jit_bcache {
	struct jit_block *hash[BC_HASH];
	struct jit_block *last;	/* the block run last, NULL after a flush */
	uint64_t flushes;
	uint8_t *arena;
	size_t used;
	struct jit_tcache *tc;	/* translated code, NULL when the translator is off */
	uint64_t link_flushes;	/* flushes when cpu->tr_link was last set */
	struct jit_jc jc[JIT_JC_SIZE];	/* chained entries by RIP (RET) */
	struct jit_block *pg_hash[PG_HASH];	/* translated blocks by page (tracked writes) */
};

static jit_op_fn *const *const maps[4] = {
	jit_ops_1b, jit_ops_0f, jit_ops_0f38, jit_ops_0f3a,
};

/* The table of chained entries RET looks its target up in, emptied. */
static void jc_empty(struct jit_bcache *bc)
{
	for (unsigned i = 0; i < JIT_JC_SIZE; i++)
		bc->jc[i] = (struct jit_jc){ .key = JIT_RIP_NONE };
}

struct jit_bcache *jit_bcache_new(void)
{
	struct jit_bcache *bc = calloc(1, sizeof(*bc));

	if (!bc)
		return NULL;
	bc->arena = malloc(BC_ARENA);
	if (!bc->arena) {
		free(bc);
		return NULL;
	}
	bc->tc = jit_tcache_new();
	jc_empty(bc);
	return bc;
}

void jit_bcache_free(struct jit_bcache *bc)
{
	if (bc) {
		jit_tcache_free(bc->tc);
		free(bc->arena);
		free(bc);
	}
}

void jit_bcache_stats(const struct jit_bcache *bc, struct jit_stats *s)
{
	s->flushes = bc->flushes;
	s->block_bytes = bc->used;
	s->block_capacity = BC_ARENA;
	s->code_bytes = jit_tcache_used(bc->tc, &s->code_capacity);
}

void jit_bcache_flush(struct jit_bcache *bc)
{
	memset(bc->hash, 0, sizeof(bc->hash));
	memset(bc->pg_hash, 0, sizeof(bc->pg_hash));
	bc->used = 0;
	bc->last = NULL;
	bc->flushes++;
	jit_tcache_flush(bc->tc);
	jc_empty(bc);
}

static unsigned bc_hash(const uint8_t *p)
{
	uintptr_t h = (uintptr_t)p;

	return (unsigned)((h ^ (h >> 16)) & (BC_HASH - 1));
}

static const uint8_t *block_bytes(const struct jit_block *b)
{
	return (const uint8_t *)&b->insn[b->ninsn];
}

/* May execution go on to the next instruction in the same block? */
static bool continues_block(jit_op_fn *fn)
{
	static jit_op_fn *const ok[] = {
		jit_op_alu, jit_op_grp1, jit_op_test, jit_op_incdec_r, jit_op_grp4,
		jit_op_grp3, jit_op_imul, jit_op_grp2, jit_op_shxd, jit_op_bt, jit_op_grp8,
		jit_op_bitscan, jit_op_bswap, jit_op_movbe, jit_op_mov, jit_op_mov_imm,
		jit_op_mov_r_imm, jit_op_mov_moffs, jit_op_movx, jit_op_lea, jit_op_xchg,
		jit_op_cmpxchg, jit_op_xadd, jit_op_grp9, jit_op_cmov, jit_op_setcc,
		jit_op_cbw, jit_op_xlat, jit_op_lahf, jit_op_flagbit, jit_op_nop,
		jit_op_push_r, jit_op_pop_r, jit_op_push_imm, jit_op_pop_rm, jit_op_pushf,
		jit_op_enter, jit_op_leave, jit_op_string, jit_op_x87, jit_op_fwait,
		jit_op_sse, jit_op_emms, jit_op_ssse3, jit_op_movnti, jit_op_grp15,
		jit_op_rdtsc,
	};

	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (ok[i] == fn)
			return true;
	return false;
}

/*
 * May execution go on to the next instruction in the same block after
 * in?  The forms of continues_block()'s handlers, and a few of handlers
 * that also branch or change what the run loop watches:
 *  - FF /0 /1 /6 (INC, DEC, PUSH r/m); the rest of group 5 (CALL, JMP,
 *    far forms) branches;
 *  - CLI (STI opens an interrupt window the run loop must see);
 *  - MOV r/m, Sreg reads a selector;
 *  - SWAPGS, RDTSCP and SMSW r of group 7 (translated code reads the FS
 *    and GS bases at each access); the rest loads tables or invalidates.
 * The translator links a block whose last instruction goes on (it ended
 * at BLOCK_MAX or at a page) as it links a fall-through.
 */
/* STI ends its block unless the instruction after it, the one in its
 * interrupt shadow, continues a block: then that one ends it (build()),
 * and the translated block clears the shadow as it leaves, linked
 * (tr-x86.c).  A HLT or a branch after STI still runs alone in the run
 * loop, after which the interrupt comes. */
bool jit_insn_is_sti(const struct jit_insn *in)
{
	return in->map == MAP_1B && in->op == 0xfb;
}

/* A Jcc (rel8, rel32)?  In 64-bit code one does not end its block: the
 * block goes on with the code after it (the path not taken), and a Jcc
 * taken leaves it, as a handler that branched does (jit_run_block()'s
 * loop; the translator's side exits).  Half of the kernel's blocks ended
 * at a Jcc, and each block's entry costs its checks. */
bool jit_insn_is_jcc(const struct jit_insn *in)
{
	return (in->map == MAP_1B && (in->op & 0xf0) == 0x70) ||
	       (in->map == MAP_0F && (in->op & 0xf0) == 0x80);
}

bool jit_insn_continues(const struct jit_insn *in)
{
	jit_op_fn *fn = maps[in->map][in->op];
	unsigned ext = in->reg & 7;

	if (!fn)
		return false;
	if (continues_block(fn) || fn == jit_op_mov_from_seg)
		return true;
	if (fn == jit_op_grp5)
		return ext == 0 || ext == 1 || ext == 6;
	if (fn == jit_op_cli)
		return in->op == 0xfa;
	if (fn == jit_op_grp7)
		return in->mod == 3 && ((ext == 7 && (in->rm & 7) <= 1) || ext == 4);
	return false;
}

/*
 * May a block at host address p, avail bytes before the end of its page,
 * go on into the next page?  In 64-bit mode, when the next linear page is
 * executable now and lies right after p's page in host memory (guest RAM
 * is one host mapping, so this is the common case of kernel text).  Such
 * a block is checked again at each entry from the run loop; chained
 * entries rely on link() having marked both pages' regions, so that a
 * flush of either ends the chains (mem.c).  may_fault: the instruction at
 * p itself crosses, so filling the TLB for the next page (with its #PF)
 * is its own fetch; otherwise only a TLB hit counts, as code before the
 * boundary must run before a fault there.
 */
static bool next_page(struct jit_cpu *cpu, const uint8_t *p, unsigned avail, bool may_fault)
{
	unsigned acc = acc_user(cpu, ACC_X);
	uint64_t lin = cpu->rip + avail;
	struct jit_tlb_entry *e;

	if (!cpu->mode64 || !canonical(lin))
		return false;
	e = tlb_hit(cpu, lin, acc);
	if (!e) {
		if (!may_fault)
			return false;
		e = jit_tlb_fill(cpu, lin, acc);
		if (e->tag != lin >> 12)
			return false;	/* a page the debugger watches: step it */
	}
	if (e->host_r != p + avail)
		return false;
	if (!e->global)
		cpu->code_global = false;
	return true;
}

/*
 * Does the block go on at the target of in, a JMP (rel8, rel32) that
 * ended at offset off?  When it jumps forward, in the bytes decodable now
 * (before lim) and no more than JMP_SKIP bytes skipped in all (*skip):
 * the block's bytes then include the ones jumped over (their change also
 * makes the block stale, as a change of its own would).  The run loop
 * leaves the block after the JMP as after any branch; the translator
 * emits nothing for it.  The join after an if/else is this.
 */
#define JMP_SKIP 128

static bool jmp_on(const struct jit_insn *in, unsigned off, unsigned lim, unsigned *skip)
{
	int64_t d = (int64_t)in->imm;

	if (in->map != MAP_1B || (in->op != 0xe9 && in->op != 0xeb) || in->opsize != 8 ||
	    d <= 0 || *skip + (uint64_t)d > JMP_SKIP || off + (uint64_t)d >= lim)
		return false;
	*skip += (unsigned)d;
	return true;
}

/* Decode a block at host address p with avail bytes left in its page
 * (and the next page too where next_page() allows).  NULL when the first
 * instruction cannot start a block (it crosses into a page that does not
 * follow in host memory, is invalid, or has an illegal LOCK): the caller
 * steps it. */
static struct jit_block *build(struct jit_cpu *cpu, const uint8_t *p, unsigned avail)
{
	struct jit_bcache *bc = cpu->bcache;
	size_t room = sizeof(struct jit_block) + BLOCK_MAX * sizeof(struct jit_binsn) +
		      BLOCK_MAX * 15 + JMP_SKIP + 8;
	struct jit_block *b;
	jit_op_fn *fn, *fast;
	unsigned off = 0, lim = avail;
	uint8_t n = 0;
	bool after_sti = false;
	unsigned skip = 0;

	if (bc->used + room > BC_ARENA)
		jit_bcache_flush(bc);
	b = (struct jit_block *)(void *)(bc->arena + bc->used);
	while (n < BLOCK_MAX) {
		struct jit_binsn *bi = &b->insn[n];
		int len = jit_decode(p + off, lim - off, cpu->code_size, &bi->in);

		if (len == DEC_MORE && lim == avail && next_page(cpu, p, avail, n == 0)) {
			lim += 0x1000;
			continue;
		}
		if (len <= 0 || (bi->in.lock && !jit_lock_ok(&bi->in)))
			break;
		fn = maps[bi->in.map][bi->in.op];
		if (!fn || (after_sti && !jit_insn_continues(&bi->in)))
			break;
		fast = jit_fast_form(&bi->in);
		bi->fn = fast ? fast : fn;
		off += (unsigned)len;
		n++;
		if (after_sti)
			break;		/* the instruction in STI's shadow */
		if (cpu->mode64 && jmp_on(&bi->in, off, lim, &skip)) {
			off += (unsigned)bi->in.imm;		/* on at the JMP's target */
			continue;
		}
		if (!jit_insn_continues(&bi->in) && !(cpu->mode64 && jit_insn_is_jcc(&bi->in))) {
			if (!jit_insn_is_sti(&bi->in))
				break;
			after_sti = true;
		}
		if (off >= lim && (lim != avail || !next_page(cpu, p, avail, false)))
			break;
		if (off >= lim)
			lim += 0x1000;
	}
	cpu->stat_decodes++;
	if (n == 0)
		return NULL;
	b->p = p;
	b->succ[0] = b->succ[1] = NULL;
	b->tr = NULL;
	b->ng_gen = NULL;
	b->runs = 0;
	b->listed = false;
	b->at = (uintptr_t)p;
	b->ninsn = n;
	b->nbytes = (uint16_t)off;
	b->code_size = (uint8_t)cpu->code_size;
	b->cross = off > avail;
	memcpy((uint8_t *)&b->insn[n], p, off);
	bc->used += (sizeof(*b) + n * sizeof(struct jit_binsn) + off + 7) & ~(size_t)7;
	return b;
}

/* Are the n code bytes at p still those block b was decoded from? */
static bool same_code(const struct jit_block *b, const uint8_t *p)
{
	const uint8_t *q = block_bytes(b);
	unsigned n = b->nbytes, i = 0;
	uint64_t x, y;

	for (; i + 8 <= n; i += 8) {
		memcpy(&x, p + i, 8);
		memcpy(&y, q + i, 8);
		if (x != y)
			return false;
	}
	for (; i < n; i++)
		if (p[i] != q[i])
			return false;
	return true;
}

/* Does block b, found for host address p, still hold the code there?  The
 * next page of a block that crosses is checked first: only then are its
 * bytes there in host memory to compare. */
static bool fits(struct jit_cpu *cpu, const struct jit_block *b, const uint8_t *p,
		 unsigned avail)
{
	if (unlikely(b->cross) && !next_page(cpu, p, avail, false))
		return false;
	return same_code(b, p);
}

/* The block at host address p, decoded again if its bytes changed.  The
 * blocks that followed the last one are tried before the hash table. */
static struct jit_block *lookup(struct jit_cpu *cpu, const uint8_t *p, unsigned avail)
{
	struct jit_bcache *bc = cpu->bcache;
	struct jit_block *last = bc->last, **head, *b, *nb;
	uint64_t flushes = bc->flushes;

	if (last) {
		for (int i = 0; i < 2; i++) {
			b = last->succ[i];
			if (b && b->p == p && b->code_size == cpu->code_size && fits(cpu, b, p, avail))
				return b;
		}
	}
	head = &bc->hash[bc_hash(p)];
	for (b = *head; b; b = b->next)
		if (b->p == p && b->code_size == cpu->code_size) {
			if (likely(fits(cpu, b, p, avail)))
				goto found;
			break;
		}
	nb = build(cpu, p, avail);
	if (!nb)
		return NULL;
	if (bc->flushes != flushes)
		b = last = NULL;	/* build() flushed the arena: they are gone */
	nb->next = *head;
	*head = nb;
	if (b) {
		b->p = NULL;	/* stale: never matches again */
		if (b->tr)
			jit_gen_set(b->tr_gen, JIT_GEN_NONE);	/* nor does its chained entry */
	}
	b = nb;
found:
	if (last) {
		last->succ[1] = last->succ[0];
		last->succ[0] = b;
	}
	return b;
}

/* Host address of the code at CS:RIP with the bytes left in its page,
 * translated as an instruction fetch (may raise #GP/#PF); NULL for code
 * outside RAM. */
static const uint8_t *code_ptr(struct jit_cpu *cpu, unsigned *avail)
{
	uint64_t lin;
	unsigned acc = acc_user(cpu, ACC_X);
	struct jit_tlb_entry *e;

	if (likely(cpu->mode64)) {
		lin = cpu->rip;
		if (unlikely(!canonical(lin)))
			jit_raise(cpu, EXC_GP, 0);
	} else {
		if (cpu->rip > cpu->seg[SEG_CS].limit)
			jit_raise(cpu, EXC_GP, 0);
		lin = (uint32_t)(cpu->seg[SEG_CS].base + cpu->rip);
	}
	e = tlb_hit(cpu, lin, acc);
	if (unlikely(!e))
		e = jit_tlb_fill(cpu, lin, acc);
	if (!e->host_r)
		return NULL;
	cpu->code_global = e->global;
	*avail = 0x1000 - (lin & 0xfff);
	return e->host_r + (lin & 0xfff);
}

/* The tracked pages (track.c) of b's first and last byte: false when
 * either is outside the RAM this vCPU tracks. */
static bool code_pages(const struct jit_cpu *cpu, const struct jit_block *b, size_t *i, size_t *j)
{
	ptrdiff_t first = jit_track_index(cpu, b->p), last = jit_track_index(cpu, b->p + b->nbytes - 1);

	*i = (size_t)first;
	*j = (size_t)last;
	return first >= 0 && last >= 0;
}

/* May b's chained entry skip comparing its bytes: are they in pages
 * this vCPU tracks, none of them mixed? */
static bool trackable(const struct jit_cpu *cpu, const struct jit_block *b)
{
	size_t i, j;

	return code_pages(cpu, b, &i, &j) && !jit_track_mixed(cpu, i) && !jit_track_mixed(cpu, j);
}

/* b's chained entry is off until claim() compared its bytes again. */
static void unsure(struct jit_block *b)
{
	jit_gen_set(b->tr_gen, JIT_GEN_NONE);
	b->unsure = true;
}

/* The list of translated blocks with bytes in host page number pg. */
static struct jit_block **pg_list(struct jit_bcache *bc, uintptr_t pg)
{
	return &bc->pg_hash[pg & (PG_HASH - 1)];
}

/* Which of b's list links (its first page's or its next page's) chains
 * the list of page pg. */
static unsigned pg_link(const struct jit_block *b, uintptr_t pg)
{
	return ((b->at >> 12) & (PG_HASH - 1)) == (pg & (PG_HASH - 1)) ? 0 : 1;
}

/*
 * b's chained entry skips the compare of its bytes: before it is first
 * marked good, and again after a write to one of its pages, its pages
 * are tracked and its bytes compared here, once.  False when they
 * changed (the run loop decodes them again), or when a page is mixed or
 * no longer tracked: then b's translation goes, and the next one
 * compares.
 */
static bool claim(struct jit_cpu *cpu, struct jit_block *b)
{
	struct jit_bcache *bc = cpu->bcache;
	size_t i, j;

	if (!b->unsure)
		return true;
	if (!code_pages(cpu, b, &i, &j) || !jit_track_page(cpu, i) || !jit_track_page(cpu, j)) {
		jit_gen_set(b->tr_gen, JIT_GEN_NONE);
		b->tr = NULL;
		b->runs = 0;
		return false;
	}
	if (!same_code(b, b->p))
		return false;
	if (!b->listed) {
		struct jit_block **l = pg_list(bc, b->at >> 12);

		b->pg_next[0] = *l;
		*l = b;
		if (b->cross) {
			l = pg_list(bc, (b->at >> 12) + 1);
			b->pg_next[1] = *l;
			*l = b;
		}
		b->listed = true;
	}
	b->unsure = false;
	return true;
}

/* A write to host address p (track.c): the chained entries of the
 * blocks translated from bytes in its page are off until claim() compared
 * them.  Returns 1 when p is one of those bytes, 0 when it is not, -1
 * when there are none (a flush dropped them). */
int jit_bcache_page_written(struct jit_cpu *cpu, const void *p)
{
	uintptr_t pg = (uintptr_t)p >> 12;
	int hit = -1;

	for (struct jit_block *b = *pg_list(cpu->bcache, pg), *next; b; b = next) {
		unsigned k = pg_link(b, pg);

		next = b->pg_next[k];
		if ((b->at >> 12) + k == pg && b->tr && !b->checks) {
			unsure(b);
			if (hit < 1)
				hit = (uintptr_t)p - b->at < b->nbytes;
		}
	}
	return hit;
}

/* Every tracked page was written (track.c's queue overflowed). */
void jit_bcache_all_written(struct jit_cpu *cpu)
{
	struct jit_bcache *bc = cpu->bcache;

	for (unsigned h = 0; h < PG_HASH; h++)
		for (struct jit_block *b = bc->pg_hash[h]; b; b = b->pg_next[pg_link(b, h)])
			if (b->tr && !b->checks)
				unsure(b);
}

/*
 * The block's translated code for this entry, translating it when it has
 * become hot (tr-x86.c); NULL to interpret it.  Code is made for one RIP
 * and CPL: another entry (an alias, the other privilege) interprets, and
 * when such entries keep coming with none for the translated RIP between
 * them the block is translated again for the new one.  (The kernel runs
 * its first calls at their physical addresses, then forever at the
 * virtual ones; a static-PIE program is at a new address in each
 * process.)  The old code stays valid for its RIP; links into it stay.
 */
static jit_tr_fn *translated(struct jit_cpu *cpu, struct jit_block *b, uint64_t limit)
{
	struct jit_bcache *bc = cpu->bcache;
	struct jit_tr_req rq;

	if (b->ninsn > limit)
		return NULL;
	if (b->tr) {
		if (b->tr_rip == cpu->rip && b->tr_cpl == cpu->cpl) {
			b->runs = 0;
			return b->tr;
		}
		if (b->runs++ < RETRANSLATE)
			return NULL;
	} else if (!bc->tc || b->code_size != 8 || b->runs++ < jit_tcache_hot(bc->tc)) {
		return NULL;
	}
	b->runs = 0;
	if (b->tr)
		jit_gen_set(b->tr_gen, JIT_GEN_NONE);	/* the old code's chained entry is off for good */
	rq = (struct jit_tr_req){ .insn = b->insn, .n = b->ninsn, .rip = cpu->rip,
		.cpl = (unsigned)cpu->cpl, .code = b->p, .nbytes = b->nbytes, .jc = bc->jc,
		.owner = b, .checks = !trackable(cpu, b) };
	b->tr = jit_tcache_add(bc->tc, &rq);
	b->tr_chain = rq.chain;
	b->tr_gen = rq.gen;
	b->checks = rq.checks;
	b->unsure = !rq.checks;
	cpu->stat_translated++;
	cpu->stat_tr_calls += rq.calls;
	if (!b->tr) {
		jit_bcache_flush(bc);	/* the code cache is full: start afresh */
		return NULL;		/* (b stays readable until the next build) */
	}
	b->tr_rip = cpu->rip;
	b->tr_cpl = (uint8_t)cpu->cpl;
	return b->tr;
}

/* Chains into b are good until a flush of its regions (mem.c). */
static void add_regions(struct jit_cpu *cpu, const struct jit_block *b)
{
	jit_region_add(&cpu->chain_2m, b->tr_rip >> 21);
	cpu->chain_1g |= 1ull << (b->tr_rip >> 30 & 63);
	if (b->cross) {		/* and its next page's */
		uint64_t end = b->tr_rip + b->nbytes - 1;

		jit_region_add(&cpu->chain_2m, end >> 21);
		cpu->chain_1g |= 1ull << (end >> 30 & 63);
	}
}

/*
 * b's code is on a non-global page: list its chained entry, so that the
 * next flush of non-global pages (a CR3 load) turns it off, and with it
 * the other such entries, not every chain (jit_chains_ng_off()).  When
 * the list is full, that flush turns every chain off (mem.c).
 */
static void note_nonglobal(struct jit_cpu *cpu, struct jit_block *b)
{
	uint64_t last = b->tr_rip + b->nbytes - 1;

	if (cpu->chain_ng_flushes != cpu->bcache->flushes) {	/* those listed are gone */
		jit_chains_ng_clear(cpu);
		cpu->chain_ng_flushes = cpu->bcache->flushes;
	}
	if (b->ng_gen == b->tr_gen && b->ng_epoch == cpu->chain_ng_epoch)
		return;					/* listed already */
	if (cpu->nchain_ng == JIT_CHAIN_NG) {
		cpu->chain_nonglobal = true;
		add_regions(cpu, b);
		return;
	}
	cpu->chain_ng[cpu->nchain_ng++] = (struct jit_chain_ng){ b->tr_gen, b->tr_rip, last };
	jit_region_add(&cpu->chain_ng_2m, b->tr_rip >> 21);
	jit_region_add(&cpu->chain_ng_2m, last >> 21);
	b->ng_gen = b->tr_gen;
	b->ng_epoch = cpu->chain_ng_epoch;
}

/* The list of chained entries on non-global pages starts afresh. */
void jit_chains_ng_clear(struct jit_cpu *cpu)
{
	cpu->nchain_ng = 0;
	cpu->chain_ng_epoch++;
	memset(&cpu->chain_ng_2m, 0, sizeof(cpu->chain_ng_2m));
}

/* Turn off a listed chained entry, for links and RET's table alike (it
 * stays listed: marked good again, the next flush finds it). */
static void ng_entry_off(const struct jit_chain_ng *c)
{
	jit_gen_set(c->gen, JIT_GEN_NONE);
}

/*
 * A flush of the TLB's non-global entries (mem.c): the chained entries
 * into blocks on non-global pages are off until a lookup finds their RIP
 * mapped to the same bytes again (jit_chain_recheck(), link()); RET's
 * table leads into the same entries.  The kernel's chains, on global
 * pages, stay: a CR3 load used to send every one of them through
 * jit_chain_recheck() (about 3000 for each context switch of a loop of
 * O_DIRECT reads).
 */
void jit_chains_ng_off(struct jit_cpu *cpu)
{
	struct jit_bcache *bc = cpu->bcache;

	if (cpu->chain_ng_flushes == bc->flushes)
		for (unsigned i = 0; i < cpu->nchain_ng; i++)
			ng_entry_off(&cpu->chain_ng[i]);
	jit_chains_ng_clear(cpu);
}

/*
 * INVLPG at lin, of a page no larger than 2 MiB (mem.c): off go the
 * listed entries into blocks with a byte in the 2 MiB around lin.  A
 * program's COW faults and munmaps flush pages of its data next to its
 * code; turning every chain off, the kernel's too, cost about 20 full
 * rounds of jit_chain_recheck() per 256 MiB of O_DIRECT reads.
 */
void jit_chains_ng_off_2m(struct jit_cpu *cpu, uint64_t lin)
{
	struct jit_bcache *bc = cpu->bcache;
	uint64_t r = lin >> 21;

	if (cpu->chain_ng_flushes != bc->flushes || !jit_region_has(&cpu->chain_ng_2m, r))
		return;
	for (unsigned i = 0; i < cpu->nchain_ng; i++) {
		const struct jit_chain_ng *c = &cpu->chain_ng[i];

		if (c->rip >> 21 == r || c->last >> 21 == r)
			ng_entry_off(c);
	}
}

/* CS:RIP maps to b's bytes now (at b's RIP and CPL): chaining into b is
 * fine until a flush may remap its pages, and RET may go straight there. */
static bool mark(struct jit_cpu *cpu, struct jit_block *b)
{
	struct jit_jc *sl;

	if (!b->checks && !claim(cpu, b))
		return false;
	if (jit_gen_get(b->tr_gen) != cpu->tlb_gen) {	/* (no needless store into code) */
		jit_gen_set(b->tr_gen, cpu->tlb_gen);
		cpu->stat_genstores++;
	}
	if (cpu->code_global)	/* (next_page() saw the next page's too) */
		add_regions(cpu, b);
	else
		note_nonglobal(cpu, b);
	sl = &cpu->bcache->jc[jit_jc_index(b->tr_rip)];
	sl->entry = b->tr_chain;
	sl->key = jit_jc_key(b->tr_rip, b->tr_cpl);
	return true;
}

/*
 * The translated block that ran last left through an exit slot to the
 * block b now starting (cpu->tr_link): link the two so that the next time
 * the exit jumps straight there.  Only when nothing happened in between
 * (an interrupt, a fault, a flush): the slot's RIP and CPL are b's.  Every
 * link into b targets b's RIP, which the lookup just found mapped to b's
 * bytes: b's chained entry is good for this TLB generation.
 */
static bool link(struct jit_cpu *cpu, struct jit_block *b)
{
	struct jit_tr_slot *sl = cpu->tr_link;

	cpu->tr_link = NULL;
	if (!mark(cpu, b))
		return false;
	if (sl && cpu->bcache->link_flushes == cpu->bcache->flushes &&
	    sl->target == b->tr_rip && sl->cpl == b->tr_cpl) {
		uint8_t *site = sl->entry;
		int32_t rel = (int32_t)((uint8_t *)b->tr_chain - (site + 4));

		memcpy(site, &rel, 4);	/* the exit's JMP now goes to b */
	}
	return true;
}

/*
 * Called by b's chained entry (tr-x86.c) when the TLB generation moved on
 * since b was marked: instead of a return to the run loop, look CS:RIP (b's
 * RIP, in cpu->rip) up as the run loop would, and when it still maps to
 * b's bytes (and b's next page is still the next one, for a block that
 * crosses), mark b and go on: true, cpu->tr_link cleared.  A #PF of the
 * fetch unwinds as the run loop's would.  False, to leave to the run loop,
 * with a signal, an interrupt or the budget due (it takes those first),
 * or when b is stale or no longer mapped there.
 */
bool jit_chain_recheck(struct jit_cpu *cpu, void *owner, const uint8_t *gen)
{
	struct jit_block *b = owner;
	const uint8_t *p;
	unsigned avail;

	if (cpu->icount >= cpu->chain_end ||
	    atomic_load_explicit(&cpu->events, memory_order_relaxed) ||
	    (atomic_load_explicit(&cpu->irq_level, memory_order_relaxed) && (cpu->rflags & F_IF)) ||
	    !b->tr || gen != b->tr_gen || b->tr_rip != cpu->rip || b->tr_cpl != cpu->cpl)
		return false;
	cpu->stat_rechecks++;
	p = code_ptr(cpu, &avail);
	if (!p || p != b->p || (b->cross && !next_page(cpu, p, avail, false)) || !mark(cpu, b))
		return false;
	cpu->tr_link = NULL;
	return true;
}

/*
 * Run one block at CS:RIP, at most limit (> 0) instructions of it.  False when there is none to run (the caller
 * steps one instruction instead).  A fault inside unwinds to the run loop
 * with cpu->rip at the faulting instruction, as in step().
 */
bool jit_run_block(struct jit_cpu *cpu, uint64_t limit)
{
	const struct jit_binsn *bi, *end;
	struct jit_block *b;
	jit_tr_fn *tr;
	const uint8_t *p;
	unsigned avail;
	uint64_t mask;

	p = code_ptr(cpu, &avail);
	if (!p)
		return false;
	b = lookup(cpu, p, avail);
	cpu->bcache->last = b;
	if (!b)
		return false;
	if (!cpu->mode64 && cpu->rip + b->nbytes - 1 > cpu->seg[SEG_CS].limit)
		return false;	/* runs past the CS limit: step to the #GP */
	cpu->stat_blocks++;
	cpu->smc_lo = (uintptr_t)p;
	cpu->smc_hi = (uintptr_t)p + b->nbytes;
	cpu->smc_hit = false;
	cpu->shadow = false;
	tr = translated(cpu, b, limit);
	if (tr && !link(cpu, b))
		tr = NULL;	/* its bytes changed, or it goes: interpret them this once */
	if (tr) {
		cpu->stat_tr_runs++;
		cpu->bcache->link_flushes = cpu->bcache->flushes;
		tr(cpu);
		cpu->smc_lo = cpu->smc_hi = 0;
		return true;
	}
	cpu->tr_link = NULL;
	mask = size_mask(cpu->code_size);
	bi = b->insn;
	end = bi + (b->ninsn < limit ? b->ninsn : limit);
	for (;;) {
		uint64_t next = (cpu->rip + bi->in.len) & mask;

		cpu->next_rip = next;
		bi->fn(cpu, &bi->in);
		cpu->rip = cpu->next_rip;
		cpu->icount++;
		if (++bi == end || unlikely(cpu->next_rip != next || cpu->smc_hit))
			break;
	}
	if (bi - b->insn >= 2 && jit_insn_is_sti(&bi[-2].in))
		cpu->shadow = false;	/* the instruction in STI's shadow ran */
	cpu->smc_lo = cpu->smc_hi = 0;
	return true;
}
