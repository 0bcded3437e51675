/*
 * The vCPU state a snapshot needs beyond registers, segments, FXSAVE and
 * MSRs (jit.h): debug registers, XCR0, and the execution state that
 * decides what happens at the next instruction boundary (halted, waiting
 * for SIPI, the one-instruction interrupt shadow, NMI blocking and a
 * pending NMI).  Loading also forgets every translated block and TLB
 * entry, since guest memory is replaced along with the CPU.
 */
#include <string.h>

#include "jit/internal.h"

void jit_cpu_get_misc(const struct jit_cpu *cpu, struct jit_misc_state *x)
{
	memset(x, 0, sizeof(*x));
	memcpy(x->dr, cpu->dr, sizeof(x->dr));
	x->xcr0 = cpu->xcr0;
	x->halted = cpu->halted;
	x->wait_sipi = cpu->wait_sipi;
	x->shadow = cpu->shadow;
	x->nmi_blocked = cpu->nmi_blocked;
	x->nmi_pending = atomic_load(&cpu->nmi_pending);
}

void jit_cpu_set_misc(struct jit_cpu *cpu, const struct jit_misc_state *x)
{
	memcpy(cpu->dr, x->dr, sizeof(cpu->dr));
	cpu->dbg_held = cpu->dbg_now = 0;
	cpu->dbg_after_ss = false;
	jit_dbg_update(cpu);	/* breakpoints armed as DR7 says (debug.c) */
	cpu->xcr0 = x->xcr0 | 1;
	cpu->halted = x->halted;
	cpu->wait_sipi = x->wait_sipi;
	cpu->shadow = x->shadow;
	cpu->nmi_blocked = x->nmi_blocked;
	cpu->delivering = -1;
	cpu->shutdown = false;
	atomic_store(&cpu->nmi_pending, x->nmi_pending);
	atomic_store(&cpu->init_pending, false);
	atomic_store(&cpu->sipi_vector, -1);
	atomic_store(&cpu->events, 1);
	jit_tlb_flush(cpu, true);
	jit_bcache_flush(cpu->bcache);
}
