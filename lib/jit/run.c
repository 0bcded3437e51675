/*
 * The run loop.
 *
 * jit_cpu_run() arms a setjmp point once and then runs blocks of decoded
 * instructions (block.c), or one instruction at a time (step() below)
 * when single-stepping (RFLAGS.TF), when the code is not in RAM, when an
 * instruction crosses a page, and everywhere with VM_JIT_NOBLOCKS set in
 * the environment (the plain interpreter, for comparisons).  An instruction that faults calls
 * jit_raise(), which records the vector and error code and longjmps back
 * here.  Every handler makes the accesses that can fault before it writes
 * registers, and cpu->rip moves to cpu->next_rip only after the handler
 * returns, so the state at that point is exactly the state before the
 * faulting instruction (precise exceptions).  The loop then delivers the
 * exception through the IDT (intr.c); a fault during that delivery
 * unwinds to the same point again, where the double-fault rules apply,
 * and a fault while delivering #DF is a shutdown (triple fault).
 *
 * Between blocks the loop polls the signals other threads set: one
 * relaxed load of the INTR line and one of the event word (stop, INIT,
 * SIPI, NMI).  External interrupts are taken when RFLAGS.IF is set and no
 * STI/MOV SS shadow covers the boundary (SDM vol. 3, 7.8 on priorities:
 * NMI before INTR).  A halted CPU returns JIT_EXIT_HLT until an event can
 * wake it.  The budget counts retired instructions (a slice of a REP
 * string instruction counts as one) and is never exceeded: a block runs
 * at most the instructions left.  Translated blocks that chain into each
 * other (block.c) poll the same two words at every chained entry and stop
 * before cpu->chain_end, a whole block short of the budget.
 * VM_JIT_PROFILE=N logs the guest RIP every N million instructions (a
 * sampling profile, with CPU time, TLB walks, how many blocks were
 * decoded, entered from here and translated, and how many TLB
 * generations, chained-entry rechecks and re-marks there were).
 *
 * Fetch: the TLB gives a host pointer to the code page; the decoder sees
 * the bytes up to the page end and asks for more only when the
 * instruction really crosses into the next page, so a #PF on the next
 * page is genuine.  step() caches nothing; block.c explains how blocks
 * stay exact under self-modifying code.
 */
#include <time.h>

#include "jit/internal.h"

static jit_op_fn *const *const maps[4] = {
	jit_ops_1b, jit_ops_0f, jit_ops_0f38, jit_ops_0f3a,
};

/* LOCK is allowed only on these read-modify-write forms with a memory
 * destination (SDM vol. 2, "LOCK"). */
bool jit_lock_ok(const struct jit_insn *in)
{
	if (in->mod == 3)
		return false;
	if (in->map == MAP_1B) {
		uint8_t op = in->op;

		if (op < 0x40 && (op & 7) < 2 && (op & 0x38) != 0x38)
			return true;
		if (op >= 0x80 && op <= 0x83)
			return (in->reg & 7) != 7;
		if (op == 0x86 || op == 0x87)
			return true;
		if (op == 0xf6 || op == 0xf7)
			return (in->reg & 7) == 2 || (in->reg & 7) == 3;
		if (op == 0xfe || op == 0xff)
			return (in->reg & 7) < 2;
		return false;
	}
	if (in->map != MAP_0F)
		return false;
	switch (in->op) {
	case 0xab: case 0xb3: case 0xbb: case 0xb0: case 0xb1: case 0xc0: case 0xc1:
		return true;
	case 0xba:
		return (in->reg & 7) >= 5;
	case 0xc7:
		return (in->reg & 7) == 1;
	}
	return false;
}

/* Decode the instruction at CS:RIP. */
static const struct jit_insn *fetch(struct jit_cpu *cpu, struct jit_insn *tmp)
{
	uint64_t lin = cpu->seg[SEG_CS].base + cpu->rip;
	unsigned acc = acc_user(cpu, ACC_X), avail;
	const struct jit_insn *in = tmp;
	struct jit_tlb_entry *e;
	uint8_t buf[16];
	int n;

	if (cpu->mode64) {
		lin = cpu->rip;
		if (!canonical(lin))
			jit_raise(cpu, EXC_GP, 0);
	} else {
		if (cpu->rip > cpu->seg[SEG_CS].limit)
			jit_raise(cpu, EXC_GP, 0);
		lin = (uint32_t)lin;
	}
	e = tlb_hit(cpu, lin, acc);
	if (!e)
		e = jit_tlb_fill(cpu, lin, acc);
	avail = 0x1000 - (lin & 0xfff);
	if (e->host_r) {
		n = jit_decode(e->host_r + (lin & 0xfff), avail, cpu->code_size, tmp);
		if (n != DEC_MORE)
			goto done;
		memcpy(buf, e->host_r + (lin & 0xfff), avail);
	} else {
		jit_read_bytes(cpu, lin, buf, avail < 15 ? avail : 15, acc);
		n = jit_decode(buf, avail, cpu->code_size, tmp);
		if (n != DEC_MORE)
			goto done;
	}
	jit_read_bytes(cpu, cpu->lma ? lin + avail : (uint32_t)(lin + avail),
		       buf + avail, 15 - avail, acc);
	n = jit_decode(buf, 15, cpu->code_size, tmp);
	in = tmp;
done:
	if (n == DEC_UD)
		jit_raise(cpu, EXC_UD, 0);
	if (n < 0)
		jit_raise(cpu, EXC_GP, 0);
	return in;
}

static void step(struct jit_cpu *cpu)
{
	struct jit_insn tmp;
	const struct jit_insn *in;
	jit_op_fn *fn;
	bool tf = cpu->rflags & F_TF;
	uint64_t old_rip = cpu->rip;

	if (unlikely(cpu->dbg_on) && jit_dbg_before(cpu))
		return;		/* instruction breakpoint (debug.c) */
	in = fetch(cpu, &tmp);
	cpu->rflags &= ~(uint64_t)F_RF;
	cpu->shadow = false;
	cpu->next_rip = (cpu->rip + in->len) & size_mask(cpu->code_size);
	if (in->lock && !jit_lock_ok(in))
		jit_raise(cpu, EXC_UD, 0);
	fn = maps[in->map][in->op];
	if (!fn)
		jit_ud(cpu, in);
	fn(cpu, in);
	cpu->rip = cpu->next_rip;
	cpu->icount++;
	if (unlikely(tf || cpu->dbg_on))
		jit_dbg_after(cpu, in, tf, old_rip);	/* single-step, data breakpoints */
}

/* INIT: processor 0 resets; others wait for SIPI (SDM vol. 3, 10.4). */
static void do_init(struct jit_cpu *cpu)
{
	jit_cpu_reset(cpu, true);
	if (cpu->index > 0)
		cpu->wait_sipi = true;
}

static void do_sipi(struct jit_cpu *cpu, int vector)
{
	if (!cpu->wait_sipi)
		return;
	cpu->wait_sipi = false;
	cpu->halted = false;
	jit_seg_real(&cpu->seg[SEG_CS], (uint16_t)(vector << 8));
	cpu->rip = 0;
	jit_update_mode(cpu);
}

/* Handle signals; returns an exit reason or -1 to go on running. */
static int events(struct jit_cpu *cpu)
{
	int v;

	if (atomic_exchange_explicit(&cpu->events, 0, memory_order_acq_rel)) {
		jit_track_drain(cpu);	/* pages of code others wrote (track.c) */
		if (atomic_exchange(&cpu->stop, false)) {
			/* A signal that raced with the stop is handled next run. */
			if (atomic_load(&cpu->init_pending) || atomic_load(&cpu->nmi_pending) ||
			    atomic_load(&cpu->sipi_vector) >= 0)
				atomic_store(&cpu->events, 1);
			return JIT_EXIT_STOP;
		}
		if (atomic_exchange(&cpu->init_pending, false))
			do_init(cpu);
		v = atomic_exchange(&cpu->sipi_vector, -1);
		if (v >= 0)
			do_sipi(cpu, v);
		if (!cpu->wait_sipi && !cpu->nmi_blocked &&
		    atomic_exchange(&cpu->nmi_pending, false)) {
			jit_deliver(cpu, EXC_NMI, INT_NMI, false, 0, cpu->rip);
			if (cpu->shutdown)
				return JIT_EXIT_SHUTDOWN;
		}
		if (atomic_load(&cpu->nmi_pending))
			atomic_store(&cpu->events, 1);	/* blocked: look again after IRET */
	}
	if (cpu->wait_sipi)
		return JIT_EXIT_HLT;
	if (atomic_load_explicit(&cpu->irq_level, memory_order_acquire) &&
	    (cpu->rflags & F_IF) && !cpu->shadow && cpu->bus.irq_ack) {
		v = cpu->bus.irq_ack(cpu->bus.opaque, cpu->index);
		if (v >= 0) {
			jit_deliver(cpu, v & 0xff, INT_EXT, false, 0, cpu->rip);
			if (cpu->shutdown)
				return JIT_EXIT_SHUTDOWN;
		}
	}
	return cpu->halted ? JIT_EXIT_HLT : -1;
}

/* A fault pushes RF = 1 (SDM vol. 3, 17.3.1.1): its handler returns to
 * the instruction without hitting an instruction breakpoint again. */
static void deliver_fault(struct jit_cpu *cpu)
{
	cpu->rflags |= F_RF;
	jit_deliver(cpu, cpu->exc_vector, INT_EXC, cpu->exc_has_code, cpu->exc_code, cpu->rip);
}

/* One profile sample: where the guest is, and how fast it goes. */
static void profile_sample(struct jit_cpu *cpu)
{
	uint64_t now[PROF_STATS] = { cpu->stat_tlb_fills, cpu->stat_decodes, cpu->stat_blocks,
				     cpu->stat_translated, cpu->stat_tr_runs, cpu->stat_gens,
				     cpu->stat_rechecks, cpu->stat_genstores,
				     cpu->stat_tlb_flushes }, d[PROF_STATS];
	struct timespec ts;

	for (int i = 0; i < PROF_STATS; i++) {
		d[i] = now[i] - cpu->prof_base[i];
		cpu->prof_base[i] = now[i];
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	jit_log(cpu, "profile: icount %llu rip %#llx cpl %d cpu_ms %lld tlb_fills %llu "
		"decodes %llu blocks %llu translated %llu tr_entries %llu gens %llu rechecks %llu "
		"genstores %llu code_writes %llu tlb_flushes %llu",
		(unsigned long long)cpu->icount, (unsigned long long)cpu->rip, cpu->cpl,
		(long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
		(unsigned long long)d[0], (unsigned long long)d[1], (unsigned long long)d[2],
		(unsigned long long)d[3], (unsigned long long)d[4], (unsigned long long)d[5],
		(unsigned long long)d[6], (unsigned long long)d[7],
		(unsigned long long)cpu->stat_code_writes, (unsigned long long)d[8]);
	cpu->prof_next = cpu->icount + cpu->prof_period;
}

/* Chained translated blocks run while icount is below this: the budget
 * and the next profile sample are never passed (a block is at most
 * JIT_BLOCK_MAX instructions). */
static void set_chain_end(struct jit_cpu *cpu, uint64_t end)
{
	uint64_t lim = end < cpu->prof_next ? end : cpu->prof_next;

	cpu->chain_end = lim > JIT_BLOCK_MAX ? lim - JIT_BLOCK_MAX : 0;
}

enum jit_exit jit_cpu_run(struct jit_cpu *cpu, uint64_t budget)
{
	uint64_t end = cpu->icount + budget;
	int r;

	set_chain_end(cpu, end);
	if (setjmp(cpu->unwind)) {
		cpu->smc_lo = cpu->smc_hi = 0;
		if (!cpu->shutdown)
			deliver_fault(cpu);
		if (cpu->shutdown)
			return JIT_EXIT_SHUTDOWN;
	}
	for (;;) {
		if (unlikely(atomic_load_explicit(&cpu->events, memory_order_relaxed) ||
			     atomic_load_explicit(&cpu->irq_level, memory_order_relaxed) ||
			     cpu->halted || cpu->wait_sipi)) {
			r = events(cpu);
			if (r >= 0)
				return (enum jit_exit)r;
		}
		if (unlikely(cpu->icount >= cpu->prof_next)) {
			profile_sample(cpu);
			set_chain_end(cpu, end);
		}
		if (cpu->icount >= end)
			return JIT_EXIT_BUDGET;
		/* In an STI/MOV SS shadow one instruction runs alone, so that a
		 * pending interrupt is taken right after it, not at the end of
		 * a block (STI; NOP; CLI opens a window of one instruction). */
		if (unlikely((cpu->rflags & (F_TF | F_RF)) || cpu->no_blocks || cpu->dbg_on ||
			     cpu->shadow) ||
		    !jit_run_block(cpu, end - cpu->icount))
			step(cpu);
	}
}
