/*
 * Guest memory access: segmentation (logical to linear, Intel SDM vol. 3,
 * 3.4 and 5.3 for limit and type checks, 3.3.7.1 for canonical addresses
 * in 64-bit mode), the slow paths behind the inline TLB hits in
 * internal.h (page-crossing accesses, MMIO), and TLB invalidation.
 */
#include "jit/internal.h"

static _Noreturn void seg_fault(struct jit_cpu *cpu, int seg)
{
	jit_raise(cpu, seg == SEG_SS ? EXC_SS : EXC_GP, 0);
}

/* Is [off, off+size) inside segment s?  Expand-down data segments hold
 * the offsets above the limit (SDM vol. 3, 5.3). */
static bool in_limit(const struct jit_segment *s, uint64_t off, unsigned size)
{
	uint64_t last = off + size - 1;

	if (s->s && (s->type & 0xc) == 0x4) {
		uint64_t top = s->db ? 0xffffffffull : 0xffffull;

		return off > s->limit && last <= top && last >= off;
	}
	return last <= s->limit && last >= off;
}

uint64_t jit_seg_lin(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size, unsigned acc)
{
	const struct jit_segment *s = &cpu->seg[seg];

	if (cpu->mode64) {
		uint64_t lin = off + (seg >= SEG_FS ? s->base : 0);

		if (unlikely(!canonical(lin) || !canonical(lin + size - 1)))
			seg_fault(cpu, seg);
		return lin;
	}
	if (cpu->pm && !(cpu->rflags & F_VM)) {
		if (unlikely(s->unusable))
			seg_fault(cpu, seg);
		if ((acc & ACC_W) && (!s->s || (s->type & 0xa) != 0x2))
			jit_raise(cpu, EXC_GP, 0);
		if ((acc & ACC_R) && s->s && (s->type & 0xa) == 0x8)
			jit_raise(cpu, EXC_GP, 0);
	}
	if (unlikely(!in_limit(s, off, size)))
		seg_fault(cpu, seg);
	return (uint32_t)(s->base + off);
}

static struct jit_tlb_entry *translate(struct jit_cpu *cpu, uint64_t lin, unsigned acc)
{
	struct jit_tlb_entry *e = tlb_hit(cpu, lin, acc);

	return e ? e : jit_tlb_fill(cpu, lin, acc);
}

static uint64_t read_in_page(struct jit_cpu *cpu, struct jit_tlb_entry *e, uint64_t lin,
			     unsigned size)
{
	if (e->host_r)
		return host_load(e->host_r + (lin & 0xfff), size);
	return cpu->bus.mmio_read(cpu->bus.opaque, e->gpa | (lin & 0xfff), size);
}

static void write_in_page(struct jit_cpu *cpu, struct jit_tlb_entry *e, uint64_t lin,
			  unsigned size, uint64_t v)
{
	if (e->host_w) {
		smc_note(cpu, e->host_w + (lin & 0xfff), size);
		host_store(e->host_w + (lin & 0xfff), size, v);
	}
	else
		cpu->bus.mmio_write(cpu->bus.opaque, e->gpa | (lin & 0xfff), v, size);
}

static uint64_t trunc_lin(const struct jit_cpu *cpu, uint64_t lin)
{
	return cpu->lma ? lin : (uint32_t)lin;
}

uint64_t jit_lin_read_slow(struct jit_cpu *cpu, uint64_t lin, unsigned size, unsigned acc)
{
	unsigned n1 = 0x1000 - (lin & 0xfff);
	struct jit_tlb_entry *e;
	uint64_t v = 0;

	if (unlikely(cpu->dbg_data))
		jit_dbg_access(cpu, lin, size, acc);	/* data breakpoints (debug.c) */

	if (n1 >= size)
		return read_in_page(cpu, translate(cpu, lin, acc), lin, size);
	/* crosses a page: translate both before reading either */
	translate(cpu, lin, acc);
	translate(cpu, trunc_lin(cpu, lin + n1), acc);
	for (unsigned i = 0; i < size; i++) {
		uint64_t a = trunc_lin(cpu, lin + i);

		e = translate(cpu, a, acc);
		v |= read_in_page(cpu, e, a, 1) << (8 * i);
	}
	return v;
}

void jit_lin_write_slow(struct jit_cpu *cpu, uint64_t lin, unsigned size, uint64_t v,
			unsigned acc)
{
	unsigned n1 = 0x1000 - (lin & 0xfff);

	if (unlikely(cpu->dbg_data))
		jit_dbg_access(cpu, lin, size, acc);
	if (n1 >= size) {
		write_in_page(cpu, translate(cpu, lin, acc), lin, size, v);
		return;
	}
	translate(cpu, lin, acc);
	translate(cpu, trunc_lin(cpu, lin + n1), acc);
	for (unsigned i = 0; i < size; i++) {
		uint64_t a = trunc_lin(cpu, lin + i);

		write_in_page(cpu, translate(cpu, a, acc), a, 1, v >> (8 * i));
	}
}

uint8_t *jit_lin_ptr(struct jit_cpu *cpu, uint64_t lin, unsigned size, unsigned acc)
{
	unsigned n1 = 0x1000 - (lin & 0xfff);
	struct jit_tlb_entry *e = translate(cpu, lin, acc);

	if (unlikely(cpu->dbg_data))
		jit_dbg_access(cpu, lin, size, acc);
	if (n1 < size) {
		translate(cpu, trunc_lin(cpu, lin + n1), acc);
		return NULL;
	}
	if (acc & ACC_W) {
		if (!e->host_w)
			return NULL;
		smc_note(cpu, e->host_w + (lin & 0xfff), size);
		return e->host_w + (lin & 0xfff);
	}
	return e->host_r ? e->host_r + (lin & 0xfff) : NULL;
}

/*
 * Whole operands of many bytes (SSE, x87, FXSAVE, an instruction fetch)
 * go page by page: every page is translated first (so a fault comes
 * before any byte is written), then each piece is one memcpy of guest
 * RAM, or bytes one at a time through MMIO or a data breakpoint.
 */
static unsigned piece(uint64_t a, unsigned left)
{
	unsigned n = 0x1000 - (unsigned)(a & 0xfff);

	return n < left ? n : left;
}

void jit_read_bytes(struct jit_cpu *cpu, uint64_t lin, void *buf, unsigned len, unsigned acc)
{
	uint8_t *b = buf;

	for (unsigned i = 0, n; i < len; i += n) {
		uint64_t a = trunc_lin(cpu, lin + i);
		struct jit_tlb_entry *e = translate(cpu, a, acc);

		n = piece(a, len - i);
		if (e->host_r && !cpu->dbg_data) {
			memcpy(b + i, e->host_r + (a & 0xfff), n);
			continue;
		}
		for (unsigned k = 0; k < n; k++)
			b[i + k] = (uint8_t)jit_lin_read_slow(cpu, trunc_lin(cpu, a + k), 1, acc);
	}
}

void jit_write_bytes(struct jit_cpu *cpu, uint64_t lin, const void *buf, unsigned len,
		     unsigned acc)
{
	const uint8_t *b = buf;

	acc |= ACC_W;
	if (piece(lin, len) < len)	/* more than one page: every fault first */
		for (unsigned i = 0; i < len; i += 0x1000 - ((lin + i) & 0xfff))
			translate(cpu, trunc_lin(cpu, lin + i), acc);
	for (unsigned i = 0, n; i < len; i += n) {
		uint64_t a = trunc_lin(cpu, lin + i);
		struct jit_tlb_entry *e = translate(cpu, a, acc);

		n = piece(a, len - i);
		if (e->host_w && !cpu->dbg_data) {
			smc_note(cpu, e->host_w + (a & 0xfff), n);
			memcpy(e->host_w + (a & 0xfff), b + i, n);
			continue;
		}
		for (unsigned k = 0; k < n; k++)
			jit_lin_write_slow(cpu, trunc_lin(cpu, a + k), 1, b[i + k], acc);
	}
}

bool jit_host_cas(uint8_t *p, unsigned size, uint64_t *old, uint64_t val)
{
	bool ok;

	switch (size) {
	case 1: {
		uint8_t o = (uint8_t)*old;

		ok = __atomic_compare_exchange_n(p, &o, (uint8_t)val, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*old = o;
		break;
	}
	case 2: {
		uint16_t o = (uint16_t)*old;

		ok = __atomic_compare_exchange_n((uint16_t *)(void *)p, &o, (uint16_t)val, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*old = o;
		break;
	}
	case 4: {
		uint32_t o = (uint32_t)*old;

		ok = __atomic_compare_exchange_n((uint32_t *)(void *)p, &o, (uint32_t)val, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		*old = o;
		break;
	}
	default:
		ok = __atomic_compare_exchange_n((uint64_t *)(void *)p, old, val, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	return ok;
}

/*
 * Chained translated code skips the TLB: a block's chained entry is good
 * while tlb_gen is the generation it was linked at (block.c's link()).
 * A flush moves to a new generation only when it may remap a linked
 * block's code: link() notes the 2 MiB and 1 GiB regions of the blocks
 * it links on global pages (one bit per region, hashed) and lists those
 * on non-global pages, which a flush of the non-global entries or an
 * INVLPG near them turns off alone (block.c's jit_chains_ng_off()).  So
 * the kernel's INVLPGs of its data pages, its CR3 loads and a program's
 * INVLPGs keep the kernel's chains.
 */
static void chains_off(struct jit_cpu *cpu)
{
	cpu->tlb_gen++;
	cpu->stat_gens++;
	memset(&cpu->chain_2m, 0, sizeof(cpu->chain_2m));
	cpu->chain_1g = 0;
	cpu->chain_nonglobal = false;
	jit_chains_ng_clear(cpu);
}

static bool in_set(uint64_t set, uint64_t region)
{
	return set >> (region & 63) & 1;
}

/* Either 2 MiB half of the 4 MiB region around lin. */
static bool in_set_4m(const struct jit_regions *set, uint64_t lin)
{
	return jit_region_has(set, lin >> 22 << 1) || jit_region_has(set, (lin >> 22 << 1) | 1);
}

void jit_tlb_flush(struct jit_cpu *cpu, bool global)
{
	unsigned n = 0;

	cpu->stat_tlb_flushes++;
	if (global || cpu->chain_nonglobal)
		chains_off(cpu);
	else if (cpu->nchain_ng)
		jit_chains_ng_off(cpu);
	for (unsigned k = 0; k < cpu->tlb_nlive; k++) {
		unsigned i = cpu->tlb_live[k];

		if (!global && cpu->tlb[i].tag != TLB_NONE && cpu->tlb[i].global) {
			cpu->tlb_live[n++] = (uint16_t)i;
		} else {
			jit_tlb_drop(cpu, i);
			cpu->tlb_listed[i] = 0;
		}
	}
	cpu->tlb_nlive = n;
	for (unsigned i = 0; i < TLB_VICTIMS; i++)
		if (global || !cpu->tlb_victim[i].global)
			cpu->tlb_victim[i].tag = TLB_NONE;
	if (global)
		memset(&cpu->large_2m, 0, sizeof(cpu->large_2m)), cpu->large_1g = 0;
}

/* Every entry empty, listed or not (a new or reset CPU). */
void jit_tlb_reset(struct jit_cpu *cpu)
{
	for (unsigned i = 0; i < TLB_SIZE; i++) {
		jit_tlb_drop(cpu, i);
		cpu->tlb_listed[i] = 0;
	}
	cpu->tlb_nlive = 0;
	jit_tlb_flush(cpu, true);
}

/* Is e a piece of the page (of any size) that holds 4 KiB page page? */
static bool covers(const struct jit_tlb_entry *e, uint64_t page)
{
	return e->tag != TLB_NONE && (e->tag ^ page) >> e->lshift == 0;
}

/* INVLPG: every piece of the page that maps lin leaves the TLB (SDM
 * vol. 3, 4.10.4.1), whatever the size of that page. */
void jit_tlb_flush_page(struct jit_cpu *cpu, uint64_t lin)
{
	uint64_t page = lin >> 12;
	unsigned sizes = 1;	/* bit n: a piece of a 4 KiB << n page went */
	bool large = in_set_4m(&cpu->large_2m, lin) || in_set(cpu->large_1g, lin >> 30);

	if (!large) {	/* no piece of a large page around lin */
		struct jit_tlb_entry *e = &cpu->tlb[page & (TLB_SIZE - 1)];

		if (e->tag == page)
			jit_tlb_drop(cpu, (unsigned)(page & (TLB_SIZE - 1)));
	} else {
		for (unsigned k = 0; k < cpu->tlb_nlive; k++) {
			unsigned i = cpu->tlb_live[k];
			struct jit_tlb_entry *e = &cpu->tlb[i];

			if (covers(e, page)) {
				sizes |= 1u << e->lshift;
				jit_tlb_drop(cpu, i);
			}
		}
	}
	for (unsigned i = 0; i < TLB_VICTIMS; i++) {
		struct jit_tlb_entry *e = &cpu->tlb_victim[i];

		if (covers(e, page)) {
			sizes |= 1u << e->lshift;
			e->tag = TLB_NONE;
		}
	}
	if (jit_region_has(&cpu->chain_2m, lin >> 21) ||
	    ((sizes & 1u << 10) && in_set_4m(&cpu->chain_2m, lin)) ||
	    ((sizes & 1u << 18) && in_set(cpu->chain_1g, lin >> 30)))
		chains_off(cpu);
	else if (sizes & 1u << 18)	/* a 1 GiB page went */
		jit_chains_ng_off(cpu);
	else if (sizes & 1u << 10) {	/* a 4 MiB page (32-bit paging): both halves */
		jit_chains_ng_off_2m(cpu, lin >> 22 << 22);
		jit_chains_ng_off_2m(cpu, (lin >> 22 << 22) | 1u << 21);
	} else
		jit_chains_ng_off_2m(cpu, lin);
}
