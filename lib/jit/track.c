/*
 * Writes into translated code, seen page by page (jit.h's jit_ram).
 *
 * A translated block's entry from another block (tr-x86.c's
 * chain_entry()) compares the guest code bytes it was made from with
 * memory, so that code changed by anyone is never run stale.  In the
 * kernel's I/O paths, where half the blocks end at a branch, that
 * compare and the line of guest code it reads were a fifth of the
 * translated code's time.  With one vCPU on a jit_ram the pages of its
 * translated code are tracked instead, and the entries skip the compare:
 *
 *  - When a block's chained entry is first made good (block.c's claim()),
 *    its pages get PAGE_TRACKED, the vCPU drops the TLB entries that
 *    could write them, and the bytes are compared once.
 *  - The vCPU's own write to a tracked page then misses its TLB, and the
 *    fill (paging.c) calls jit_track_write() before the write is done:
 *    the page's translated blocks go stale (generation words off, their
 *    bytes compared once more when next reached), the page is untracked,
 *    and further writes go at full speed until code there is linked
 *    again.  Physical writes of the CPU (page-table A/D bits) do the same.
 *  - Everyone else's writes (device DMA, the monitor) are reported with
 *    jit_ram_written() after they are done: tracked pages are queued for
 *    the vCPU, which makes their blocks stale before it runs another
 *    block (run.c's events()).  Both sides store, fence, then load (the
 *    writer: the bytes, then the flag; the vCPU: the flag, then the
 *    bytes), so either the writer sees the page tracked or the vCPU's
 *    compare sees the new bytes.
 *  - A page where code and written data share 4 KiB would fault on
 *    every write after every entry.  A write of the vCPU to a tracked
 *    page that misses all of its translated code's bytes counts an alarm
 *    for the page; after MIXED_AFTER of them the page is no longer
 *    tracked and its blocks are translated again with the compare.
 *
 * With several vCPUs, each has its own translations and TLB, and a write
 * would have to reach the others' before it lands; they keep the compare.
 */
#include <errno.h>
#include <stdlib.h>

#include "jit/internal.h"

#define MIXED_AFTER 16

struct jit_ram *jit_ram_new(uint8_t *base, size_t size)
{
	struct jit_ram *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->page = calloc((size + 0xfff) >> 12, 1);
	if (!r->page) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->base = base;
	r->size = size;
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

void jit_ram_free(struct jit_ram *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->page);
	free(r);
}

void jit_cpu_set_ram(struct jit_cpu *cpu, struct jit_ram *r)
{
	pthread_mutex_lock(&r->lock);
	cpu->ram = r;
	if (++r->ncpu == 1) {
		r->cpu = cpu;
		cpu->track = true;
	} else if (r->cpu) {
		r->cpu->track = false;
		r->cpu = NULL;
	}
	pthread_mutex_unlock(&r->lock);
}

/* cpu is being freed (cpu.c). */
void jit_track_detach(struct jit_cpu *cpu)
{
	struct jit_ram *r = cpu->ram;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	if (r->cpu == cpu)
		r->cpu = NULL;
	r->ncpu--;
	pthread_mutex_unlock(&r->lock);
	cpu->ram = NULL;
	cpu->track = false;
}

bool jit_track_mixed(const struct jit_cpu *cpu, size_t i)
{
	return (__atomic_load_n(&cpu->ram->page[i], __ATOMIC_RELAXED) & PAGE_ALARMS) >= MIXED_AFTER;
}

/*
 * Page i holds code cpu links without a compare: track it.  False when
 * it is mixed (it stays untracked).  The vCPU's entries that could write
 * the page go, so that its next write there fills (paging.c).
 */
bool jit_track_page(struct jit_cpu *cpu, size_t i)
{
	uint8_t *pg = &cpu->ram->page[i], v = __atomic_load_n(pg, __ATOMIC_RELAXED);
	uintptr_t host = (uintptr_t)cpu->ram->base + (i << 12);

	if (v & PAGE_TRACKED)
		return true;
	if ((v & PAGE_ALARMS) >= MIXED_AFTER)
		return false;
	__atomic_store_n(pg, (uint8_t)(v | PAGE_TRACKED), __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* before the caller compares the bytes */
	for (unsigned k = 0; k < cpu->tlb_nlive; k++) {
		unsigned e = cpu->tlb_live[k];

		if (cpu->tlb[e].tag != TLB_NONE && ((uintptr_t)cpu->tlb[e].host_w & ~0xfffull) == host)
			jit_tlb_drop(cpu, e);
	}
	for (unsigned k = 0; k < TLB_VICTIMS; k++)
		if (((uintptr_t)cpu->tlb_victim[k].host_w & ~0xfffull) == host)
			cpu->tlb_victim[k].tag = TLB_NONE;
	return true;
}

/* Host address p, in tracked page i, is written: the page's translated
 * code goes stale.  A write by the vCPU beside that code (not into it)
 * counts an alarm for the page. */
static void untrack(struct jit_cpu *cpu, size_t i, const uint8_t *p, bool by_cpu)
{
	uint8_t *pg = &cpu->ram->page[i];

	__atomic_fetch_and(pg, (uint8_t)~PAGE_TRACKED, __ATOMIC_RELAXED);
	cpu->stat_code_writes++;
	if (jit_bcache_page_written(cpu, p) == 0 && by_cpu &&
	    (__atomic_load_n(pg, __ATOMIC_RELAXED) & PAGE_ALARMS) < MIXED_AFTER)
		__atomic_fetch_add(pg, 1, __ATOMIC_RELAXED);
}

/* The vCPU is about to write host address p, in a tracked page
 * (jit_track_hit()). */
void jit_track_write(struct jit_cpu *cpu, const void *p)
{
	untrack(cpu, (size_t)jit_track_index(cpu, p), p, true);
}

/* Before the vCPU runs another block: the pages others wrote. */
void jit_track_drain(struct jit_cpu *cpu)
{
	struct jit_ram *r = cpu->ram;
	size_t q[sizeof(r->q) / sizeof(r->q[0])];
	unsigned n;
	bool all;

	if (!cpu->track || (!__atomic_load_n(&r->nq, __ATOMIC_ACQUIRE) &&
			    !__atomic_load_n(&r->all, __ATOMIC_ACQUIRE)))
		return;
	pthread_mutex_lock(&r->lock);
	n = r->nq;
	all = r->all;
	memcpy(q, r->q, n * sizeof(q[0]));
	__atomic_store_n(&r->nq, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->all, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&r->lock);
	if (all) {
		for (size_t i = 0; i < (r->size + 0xfff) >> 12; i++)
			__atomic_fetch_and(&r->page[i], (uint8_t)~PAGE_TRACKED, __ATOMIC_RELAXED);
		jit_bcache_all_written(cpu);
		return;
	}
	for (unsigned k = 0; k < n; k++)
		untrack(cpu, q[k], r->base + (q[k] << 12), false);
}

void jit_ram_written(struct jit_ram *r, const void *p, size_t len)
{
	const uint8_t *a = p, *end = a + len;
	struct jit_cpu *cpu = NULL;
	size_t i, last;

	if (!len || a >= r->base + r->size || end <= r->base)
		return;
	if (a < r->base)
		a = r->base;
	if (end > r->base + r->size)
		end = r->base + r->size;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* the bytes, then the flags */
	last = (size_t)(end - 1 - r->base) >> 12;
	for (i = (size_t)(a - r->base) >> 12; i <= last; i++) {
		if (!(__atomic_load_n(&r->page[i], __ATOMIC_RELAXED) & PAGE_TRACKED))
			continue;
		pthread_mutex_lock(&r->lock);
		cpu = r->cpu;
		if (r->nq < sizeof(r->q) / sizeof(r->q[0]))
			r->q[r->nq] = i, __atomic_store_n(&r->nq, r->nq + 1, __ATOMIC_RELEASE);
		else
			__atomic_store_n(&r->all, true, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&r->lock);
	}
	if (cpu)
		atomic_store_explicit(&cpu->events, 1, memory_order_release);
}
