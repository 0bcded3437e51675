/*
 * The translator's code cache and its glue to the block cache.
 *
 * Host code lives in one anonymous mapping per vCPU, readable, writable
 * and executable, filled from the start; translated blocks are never
 * freed one by one.  When it fills up, block.c drops every block and all
 * their code together (jit_bcache_flush), as it does when its own arena
 * fills up, so no pointer into the cache outlives its code.
 *
 * VM_JIT_TRANSLATE=off in the environment keeps the translator off (the
 * interpreter alone, the reference); VM_JIT_HOT=N translates a block
 * when it starts for the (N+1)th time (default 2; 0: at once, as the
 * tests run it).  Translated code keeps flags with LAHF and SAHF
 * (tr-flags.c), which a 64-bit host has when CPUID 80000001h says so;
 * without them the interpreter runs everything.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jit/internal.h"

#define TCACHE_SIZE (64u << 20)
#define TCACHE_SLACK 16384	/* more than one block's code */

#define HUGE_PAGE (2u << 20)

struct jit_tcache {
	uint8_t *map;		/* the mapping, HUGE_PAGE larger than the cache */
	uint8_t *mem;		/* the cache in it, aligned to HUGE_PAGE */
	size_t used;		/* from mem */
	unsigned hot;
};

struct jit_tcache *jit_tcache_new(void)
{
	const char *off = getenv("VM_JIT_TRANSLATE"), *hot = getenv("VM_JIT_HOT");
	struct jit_tcache *tc;

	unsigned eax, ebx, ecx = 0, edx;

	if (off && (!strcmp(off, "off") || !strcmp(off, "0") || !strcmp(off, "no")))
		return NULL;
	if (!__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) || !(ecx & 1))
		return NULL;		/* no LAHF/SAHF in 64-bit mode */
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	tc->map = mmap(NULL, TCACHE_SIZE + HUGE_PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (tc->map == MAP_FAILED) {
		free(tc);
		return NULL;	/* no executable memory: the interpreter runs everything */
	}
	/* Transparent huge pages where the host allows them: chained blocks
	 * jump all over the cache, and with 4 KiB pages nearly every jump
	 * into another block missed the instruction TLB. */
	tc->mem = (uint8_t *)(((uintptr_t)tc->map + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	madvise(tc->mem, TCACHE_SIZE, MADV_HUGEPAGE);
	tc->hot = hot ? (unsigned)strtoul(hot, NULL, 0) : 2;
	if (tc->hot > 200)
		tc->hot = 200;
	return tc;
}

size_t jit_tcache_used(const struct jit_tcache *tc, size_t *capacity)
{
	*capacity = tc ? TCACHE_SIZE : 0;
	return tc ? tc->used : 0;
}

void jit_tcache_free(struct jit_tcache *tc)
{
	if (tc) {
		munmap(tc->map, TCACHE_SIZE + HUGE_PAGE);
		free(tc);
	}
}

void jit_tcache_flush(struct jit_tcache *tc)
{
	if (tc)
		tc->used = 0;
}

unsigned jit_tcache_hot(const struct jit_tcache *tc)
{
	return tc->hot;
}

static FILE *perfmap;	/* jit_perfmap_open(); vCPU threads share it (stdio locks) */

static void perfmap_close(void)
{
	fclose(perfmap);
}

int jit_perfmap_open(void)
{
	char path[64];

	snprintf(path, sizeof(path), "/tmp/perf-%ld.map", (long)getpid());
	perfmap = fopen(path, "w");
	if (!perfmap)
		return -errno;
	atexit(perfmap_close);
	return 0;
}

/* Translate a block; NULL when the cache is full (the caller flushes). */
jit_tr_fn *jit_tcache_add(struct jit_tcache *tc, struct jit_tr_req *rq)
{
	struct jit_tr_buf b = { .p = tc->mem + tc->used, .end = tc->mem + TCACHE_SIZE };
	jit_tr_fn *fn;

	if (tc->used + TCACHE_SLACK > TCACHE_SIZE)
		return NULL;
	fn = jit_tr_translate(&b, rq);
	if (!fn)
		return NULL;
	if (perfmap)
		fprintf(perfmap, "%lx %lx guest-%llx\n", (unsigned long)(uintptr_t)(tc->mem + tc->used),
			(unsigned long)(b.p - (tc->mem + tc->used)), (unsigned long long)rq->rip);
	tc->used = ((size_t)(b.p - tc->mem) + 15) & ~(size_t)15;
	return fn;
}

/* The slow paths of translated loads and stores: the interpreter's
 * segmented access, with its faults. */
uint64_t jit_tr_read(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	return mem_read(cpu, seg, off, size);
}

/* An exception raised from translated code (jit_tr_cold_raise()): the
 * slow path's arguments, the vector in place of the segment.  #GP has an
 * error code (0 here), the others raised so (#DE, #UD, #NM) none. */
void jit_tr_fault(struct jit_cpu *cpu, int vector, uint64_t off, unsigned size)
{
	(void)off;
	(void)size;
	if (vector == EXC_GP)
		jit_raise(cpu, EXC_GP, 0);
	jit_raise_nocode(cpu, vector);
}

/* cpu->tr_x to the 16 bytes at seg:off, as sse.c's store() writes them
 * (nothing written when either page faults): jit_tr_mem_store16_last()'s
 * slow path. */
void jit_tr_write16(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	(void)size;
	jit_write_bytes(cpu, seg_lin(cpu, seg, off, 16, ACC_W), cpu->tr_x.b, 16,
			acc_user(cpu, ACC_W));
}

/* The 16 bytes at seg:off into cpu->tr_x, as sse.c's load() reads them
 * (two halves, each with its faults): jit_tr_mem_load16()'s slow path. */
void jit_tr_read16(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	(void)size;
	lin_read16(cpu, seg_lin(cpu, seg, off, 16, ACC_R), cpu->tr_x.q, acc_user(cpu, ACC_R));
}

void jit_tr_write(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size, uint64_t val)
{
	mem_write(cpu, seg, off, size, val);
}

/* The load of a read-modify-write: translated for writing (a read-only
 * page faults with the write error code), as rmw_load() does. */
uint64_t jit_tr_read_w(struct jit_cpu *cpu, int seg, uint64_t off, unsigned size)
{
	uint64_t lin = seg_lin(cpu, seg, off, size, ACC_W);
	unsigned acc = acc_user(cpu, ACC_W);
	uint8_t *p = jit_lin_ptr(cpu, lin, size, acc);

	if (p)
		return host_load(p, size);
	return jit_lin_read_slow(cpu, lin, size, acc & ~ACC_W);
}
