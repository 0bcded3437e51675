/*
 * Paging: linear to guest-physical translation and the soft TLB (Intel SDM
 * vol. 3, chapter 4).
 *
 * Three walks exist: 32-bit paging (CR4.PAE=0: a page directory of 4-byte
 * entries, 4 MiB pages with CR4.PSE), PAE paging (four PDPTEs, then 8-byte
 * directories and tables, 2 MiB pages) and 4-level paging in long mode
 * (PML4, PDPT with 1 GiB pages, PD with 2 MiB pages, PT).  A walk
 * accumulates the access rights of every level - writable only if every
 * level says R/W, user only if every level says U/S, no-execute if any
 * level says XD (when EFER.NXE) - sets the accessed bit of every entry it
 * uses and the dirty bit of the final one on a write, atomically since
 * other vCPUs share the tables.
 *
 * The result fills one entry of a direct-mapped TLB of 4 KiB pieces
 * (large pages are cached a 4 KiB piece at a time, each knowing the size
 * of its page, so that INVLPG drops every piece of the page it names).
 * The entry records the rights for supervisor and user accesses.  Write
 * rights are recorded only when the dirty bit is set, so the first write
 * to a clean page walks again and sets it, as hardware does.  Faults set
 * CR2 and raise #PF with the error code of SDM vol. 3, 4.7.
 */
#include "jit/internal.h"

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull
#define PTE_G 0x100ull
#define PTE_XD (1ull << 63)
#define ADDR_MASK 0x000ffffffffff000ull

uint64_t jit_phys_read(struct jit_cpu *cpu, uint64_t gpa, unsigned size)
{
	uint8_t *p = cpu->bus.ram(cpu->bus.opaque, gpa, false);

	if (p)
		return host_load(p, size);
	return cpu->bus.mmio_read(cpu->bus.opaque, gpa, size);
}

void jit_phys_write(struct jit_cpu *cpu, uint64_t gpa, unsigned size, uint64_t val)
{
	uint8_t *p = cpu->bus.ram(cpu->bus.opaque, gpa, true);

	if (p && unlikely(jit_track_hit(cpu, p)))
		jit_track_write(cpu, p);
	if (p)
		host_store(p, size, val);
	else
		cpu->bus.mmio_write(cpu->bus.opaque, gpa, val, size);
}

/* Set bits in a paging-structure entry of esize bytes at gpa. */
static void pte_set(struct jit_cpu *cpu, uint64_t gpa, unsigned esize, uint64_t bits)
{
	uint8_t *p = cpu->bus.ram(cpu->bus.opaque, gpa, true);

	if (!p)
		return;
	if (unlikely(jit_track_hit(cpu, p)))
		jit_track_write(cpu, p);
	if (esize == 8)
		__atomic_fetch_or((uint64_t *)(void *)p, bits, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_or((uint32_t *)(void *)p, (uint32_t)bits, __ATOMIC_SEQ_CST);
}

struct walk {
	uint64_t gpa;		/* physical address of the 4 KiB piece */
	uint64_t ent_gpa[4];	/* where the used entries live, for A/D */
	uint64_t ent[4];
	int levels;
	unsigned esize;
	bool rw, us, xd, global;
	uint8_t lshift;		/* a large page is 4 KiB << lshift, 0: a 4 KiB page */
};

static _Noreturn void page_fault(struct jit_cpu *cpu, uint64_t lin, unsigned acc,
				 uint32_t code)
{
	if (acc & ACC_W)
		code |= PF_W;
	if (acc & ACC_USER)
		code |= PF_U;
	if ((acc & ACC_X) && (cpu->efer & EFER_NXE))
		code |= PF_I;
	cpu->exc_code = code;
	cpu->cr2 = lin;
	jit_raise(cpu, EXC_PF, code);
}

/* One level: read the entry, fault when not present or reserved bits set. */
static uint64_t level(struct jit_cpu *cpu, struct walk *w, uint64_t gpa, uint64_t lin,
		      unsigned acc)
{
	uint64_t e = jit_phys_read(cpu, gpa, w->esize);

	if (!(e & PTE_P))
		page_fault(cpu, lin, acc, 0);
	if (w->esize == 8 && (e & PTE_XD) && !(cpu->efer & EFER_NXE))
		page_fault(cpu, lin, acc, PF_P | PF_RSVD);
	w->ent_gpa[w->levels] = gpa;
	w->ent[w->levels++] = e;
	w->rw &= !!(e & PTE_RW);
	w->us &= !!(e & PTE_US);
	w->xd |= w->esize == 8 && (e & PTE_XD);
	return e;
}

static void walk_32(struct jit_cpu *cpu, struct walk *w, uint64_t lin, unsigned acc)
{
	uint64_t pde, pte;

	w->esize = 4;
	pde = level(cpu, w, (cpu->cr3 & 0xfffff000) + ((lin >> 22) & 0x3ff) * 4, lin, acc);
	if ((pde & PTE_PS) && (cpu->cr4 & CR4_PSE)) {
		w->lshift = 10;
		w->gpa = ((pde & 0xffc00000) | (lin & 0x3ff000));
		return;
	}
	pte = level(cpu, w, (pde & 0xfffff000) + ((lin >> 12) & 0x3ff) * 4, lin, acc);
	w->gpa = pte & 0xfffff000;
}

static void walk_pae(struct jit_cpu *cpu, struct walk *w, uint64_t lin, unsigned acc)
{
	uint64_t pdpte, pde, pte;

	w->esize = 8;
	pdpte = jit_phys_read(cpu, (cpu->cr3 & 0xffffffe0) + ((lin >> 30) & 3) * 8, 8);
	if (!(pdpte & PTE_P))
		page_fault(cpu, lin, acc, 0);
	pde = level(cpu, w, (pdpte & ADDR_MASK) + ((lin >> 21) & 0x1ff) * 8, lin, acc);
	if (pde & PTE_PS) {
		w->lshift = 9;
		w->gpa = (pde & ADDR_MASK & ~0x1fffffull) | (lin & 0x1ff000);
		return;
	}
	pte = level(cpu, w, (pde & ADDR_MASK) + ((lin >> 12) & 0x1ff) * 8, lin, acc);
	w->gpa = pte & ADDR_MASK;
}

static void walk_long(struct jit_cpu *cpu, struct walk *w, uint64_t lin, unsigned acc)
{
	uint64_t e;

	w->esize = 8;
	e = level(cpu, w, (cpu->cr3 & ADDR_MASK) + ((lin >> 39) & 0x1ff) * 8, lin, acc);
	if (e & PTE_PS)
		page_fault(cpu, lin, acc, PF_P | PF_RSVD);
	e = level(cpu, w, (e & ADDR_MASK) + ((lin >> 30) & 0x1ff) * 8, lin, acc);
	if (e & PTE_PS) {
		w->lshift = 18;
		w->gpa = (e & ADDR_MASK & ~0x3fffffffull) | (lin & 0x3ffff000);
		return;
	}
	e = level(cpu, w, (e & ADDR_MASK) + ((lin >> 21) & 0x1ff) * 8, lin, acc);
	if (e & PTE_PS) {
		w->lshift = 9;
		w->gpa = (e & ADDR_MASK & ~0x1fffffull) | (lin & 0x1ff000);
		return;
	}
	e = level(cpu, w, (e & ADDR_MASK) + ((lin >> 12) & 0x1ff) * 8, lin, acc);
	w->gpa = e & ADDR_MASK;
}

/* May an access of kind acc go through a walk with these rights? */
static bool allowed(const struct jit_cpu *cpu, const struct walk *w, unsigned acc)
{
	if ((acc & ACC_USER) && !w->us)
		return false;
	if ((acc & ACC_W) && !w->rw && ((acc & ACC_USER) || (cpu->cr0 & CR0_WP)))
		return false;
	if ((acc & ACC_X) && w->xd)
		return false;
	return true;
}

static uint8_t rights(const struct jit_cpu *cpu, const struct walk *w, bool dirty)
{
	uint8_t sup = P_R, user = 0;

	if (!w->xd)
		sup |= P_X;
	if (dirty && (w->rw || !(cpu->cr0 & CR0_WP)))
		sup |= P_W;
	if (w->us) {
		user = P_R | (w->xd ? 0 : P_X);
		if (dirty && w->rw)
			user |= P_W;
	}
	return (uint8_t)(sup | user << 3);
}

/* The fast views of entry i (tlb_fast) from the entry. */
static void fast_set(struct jit_cpu *cpu, unsigned i, uint64_t lin)
{
	const struct jit_tlb_entry *e = &cpu->tlb[i];
	uint64_t page = lin & ~0xfffull;

	intptr_t r = (intptr_t)e->host_r - (intptr_t)page, w = (intptr_t)e->host_w - (intptr_t)page;

	cpu->tlb_fast[0][i] = (struct jit_tlb_fast){ e->host_r ? page : TLB_NONE, r };	/* always */
	cpu->tlb_fast[1][i] = (struct jit_tlb_fast){
		e->host_r && (e->perm & P_R << 3) ? page : TLB_NONE, r };
	cpu->tlb_fast[2][i] = (struct jit_tlb_fast){ e->host_w && (e->perm & P_W) ? page : TLB_NONE, w };
	cpu->tlb_fast[3][i] = (struct jit_tlb_fast){
		e->host_w && (e->perm & P_W << 3) ? page : TLB_NONE, w };
	if (!cpu->tlb_listed[i]) {
		cpu->tlb_listed[i] = 1;
		cpu->tlb_live[cpu->tlb_nlive++] = (uint16_t)i;
	}
}

/* Entry i is about to hold another page: keep the one it holds among
 * the victims (over the oldest). */
static void victim_push(struct jit_cpu *cpu, unsigned i)
{
	if (cpu->tlb[i].tag != TLB_NONE) {
		cpu->tlb_victim[cpu->tlb_victim_next] = cpu->tlb[i];
		cpu->tlb_victim_next = (cpu->tlb_victim_next + 1) % TLB_VICTIMS;
	}
}

/* lin's page among the victims with the rights acc needs: back into
 * entry i (the entry there goes to the victim's place).  A victim of the
 * page without those rights leaves: the walk makes a new entry. */
static struct jit_tlb_entry *victim_take(struct jit_cpu *cpu, unsigned i, uint64_t lin,
					 unsigned acc)
{
	unsigned need = (acc & ACC_USER) ? (acc & 7) << 3 : (acc & 7);

	for (unsigned k = 0; k < TLB_VICTIMS; k++) {
		struct jit_tlb_entry *v = &cpu->tlb_victim[k], t;

		if (v->tag != lin >> 12)
			continue;
		if ((v->perm & need) != need) {
			v->tag = TLB_NONE;
			return NULL;
		}
		t = cpu->tlb[i];
		cpu->tlb[i] = *v;
		*v = t;
		fast_set(cpu, i, lin);
		return &cpu->tlb[i];
	}
	return NULL;
}

struct jit_tlb_entry *jit_tlb_fill(struct jit_cpu *cpu, uint64_t lin, unsigned acc)
{
	unsigned i = (lin >> 12) & (TLB_SIZE - 1);
	struct jit_tlb_entry *e = &cpu->tlb[i];
	struct walk w;	/* field by field: zeroing all of it cost a REP STOS a fill */
	bool dirty = true;
	uint8_t perm = 0x3f;

	if (likely(!cpu->dbg_data)) {
		struct jit_tlb_entry *v = victim_take(cpu, i, lin, acc);

		if (v)
			return v;
	}
	cpu->stat_tlb_fills++;
	w.levels = 0;
	w.rw = w.us = true;
	w.xd = w.global = false;
	w.lshift = 0;
	if (!(cpu->cr0 & CR0_PG)) {
		w.gpa = lin & (cpu->lma ? ADDR_MASK : 0xfffff000);
	} else {
		if (cpu->lma)
			walk_long(cpu, &w, lin, acc);
		else if (cpu->cr4 & CR4_PAE)
			walk_pae(cpu, &w, lin, acc);
		else
			walk_32(cpu, &w, lin, acc);
		if (!allowed(cpu, &w, acc))
			page_fault(cpu, lin, acc, PF_P);
		for (int i = 0; i < w.levels; i++)
			if (!(w.ent[i] & PTE_A))
				pte_set(cpu, w.ent_gpa[i], w.esize, PTE_A);
		dirty = w.ent[w.levels - 1] & PTE_D;
		if ((acc & ACC_W) && !dirty) {
			pte_set(cpu, w.ent_gpa[w.levels - 1], w.esize, PTE_D);
			dirty = true;
		}
		perm = rights(cpu, &w, dirty);
		w.global = (w.ent[w.levels - 1] & PTE_G) && (cpu->cr4 & CR4_PGE);
		if (w.lshift == 18)
			cpu->large_1g |= 1ull << (lin >> 30 & 63);
		else if (w.lshift)
			jit_region_add(&cpu->large_2m, lin >> 21);
	}
	if (e->tag != lin >> 12)
		victim_push(cpu, i);
	e->perm = perm;
	e->tag = lin >> 12;
	e->gpa = w.gpa;
	e->global = w.global;
	e->lshift = w.lshift;
	e->host_r = cpu->bus.ram(cpu->bus.opaque, w.gpa, false);
	e->host_w = (e->perm & (P_W | P_W << 3)) ? cpu->bus.ram(cpu->bus.opaque, w.gpa, true)
						 : NULL;
	if (e->host_w && unlikely(jit_track_hit(cpu, e->host_w))) {
		if (acc & ACC_W)	/* the code there goes stale first (track.c) */
			jit_track_write(cpu, e->host_w + (lin & 0xfff));
		else			/* a write must come back here */
			e->perm &= (uint8_t)~(P_W | P_W << 3);
	}
	if (unlikely(cpu->dbg_data) && jit_dbg_page(cpu, lin)) {
		jit_tlb_drop(cpu, i);	/* every access takes the slow path (debug.c) */
		return e;
	}
	fast_set(cpu, i, lin);
	return e;
}
