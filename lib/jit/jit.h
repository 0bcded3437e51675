/*
 * lib/jit: the x86-64 CPU in software.
 *
 * A vCPU is created against a bus (struct jit_bus) that the machine
 * provides: guest RAM, MMIO, port I/O, the interrupt controller's
 * acknowledge and the MSRs the machine owns.  The CPU knows nothing of
 * devices.  jit_cpu_run() executes guest code until an exit reason; other
 * threads may signal interrupts, NMI, INIT, SIPI or a stop at any time
 * through the jit_cpu_irq/nmi/init/sipi/stop calls, which only set atomic
 * flags the run loop polls between instructions.
 *
 * The register and segment state structs follow KVM's kvm_regs/kvm_sregs
 * in spirit so the same machine code can drive either accelerator.
 *
 * Hot 64-bit code is translated to host code; the environment chooses,
 * when a vCPU is created: VM_JIT_TRANSLATE=off runs the interpreter alone
 * (the reference), VM_JIT_HOT=N translates a block on its (N+1)th entry
 * (default 2), VM_JIT_PROFILE=N logs a sample every N million
 * instructions through bus->log.
 */
#ifndef JIT_H
#define JIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jit_cpu;

/* What the machine gives the CPU.  Every callback receives opaque. */
struct jit_bus {
	void *opaque;
	/*
	 * Host pointer to the byte at guest-physical gpa when it is RAM (or
	 * ROM when !write), valid up to the end of gpa's 4 KiB page; NULL when
	 * the page is MMIO, unassigned, or ROM written.  Required.  The CPU
	 * caches the pointer in its TLB: call jit_cpu_flush_tlb() when the
	 * memory map changes.
	 */
	uint8_t *(*ram)(void *opaque, uint64_t gpa, bool write);
	/* Access of size 1, 2, 4 or 8 bytes to a page ram() refused.  Required. */
	uint64_t (*mmio_read)(void *opaque, uint64_t gpa, unsigned size);
	void (*mmio_write)(void *opaque, uint64_t gpa, uint64_t val, unsigned size);
	/* Port I/O of size 1, 2 or 4.  Required. */
	uint32_t (*pio_in)(void *opaque, uint16_t port, unsigned size);
	void (*pio_out)(void *opaque, uint16_t port, uint32_t val, unsigned size);
	/*
	 * The highest-priority pending external interrupt vector for this
	 * vCPU, acknowledged (moved to in-service), or -1 when none.  Called
	 * only while the interrupt line (jit_cpu_irq) is raised and the guest
	 * can take an interrupt.  Optional (NULL: no external interrupts).
	 */
	int (*irq_ack)(void *opaque, int cpu);
	/*
	 * MSRs the machine owns (APIC base 0x1b, the x2APIC range, ...):
	 * return 0 when handled, -1 to let the CPU handle it (or raise #GP for
	 * an MSR it does not know).  Optional.
	 */
	int (*msr_read)(void *opaque, int cpu, uint32_t msr, uint64_t *val);
	int (*msr_write)(void *opaque, int cpu, uint32_t msr, uint64_t val);
	/*
	 * Debug messages (unimplemented opcodes, guest faults worth a look).
	 * Optional; the library never prints.
	 */
	void (*log)(void *opaque, int cpu, const char *msg);
};

/* General-purpose registers, indexed in instruction-encoding order. */
enum {
	JIT_RAX, JIT_RCX, JIT_RDX, JIT_RBX, JIT_RSP, JIT_RBP, JIT_RSI, JIT_RDI,
	JIT_R8, JIT_R9, JIT_R10, JIT_R11, JIT_R12, JIT_R13, JIT_R14, JIT_R15,
};

struct jit_regs {
	uint64_t gpr[16];	/* JIT_RAX .. JIT_R15 */
	uint64_t rip;
	uint64_t rflags;
};

/*
 * A segment register's hidden part, as KVM's struct kvm_segment: type is
 * the 4-bit descriptor type, s the code/data bit, db the default-size bit,
 * l the 64-bit code bit, g the granularity bit; limit is in bytes (already
 * scaled by g).  unusable marks a null selector loaded in protected mode.
 */
struct jit_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct jit_dtable {
	uint64_t base;
	uint16_t limit;
};

struct jit_sregs {
	struct jit_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct jit_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;	/* informational: the machine owns MSR 0x1b */
};

/* Why jit_cpu_run() returned. */
enum jit_exit {
	JIT_EXIT_BUDGET,	/* the instruction budget ran out */
	JIT_EXIT_HLT,		/* halted (HLT, or waiting for SIPI), nothing can wake it now */
	JIT_EXIT_SHUTDOWN,	/* triple fault: the machine should reset */
	JIT_EXIT_STOP,		/* jit_cpu_stop() was called */
};

/* A vCPU for processor number index, in the power-on (reset) state.  NULL
 * with errno set on failure: EINVAL for a bus without its required
 * callbacks, ENOTSUP on a host CPU lacking SSE3/SSSE3/POPCNT/LZCNT (the
 * interpreter runs arithmetic, SIMD and x87 operations on the host's own
 * units), ENOMEM. */
struct jit_cpu *jit_cpu_new(const struct jit_bus *bus, int index);
void jit_cpu_free(struct jit_cpu *cpu);

/*
 * Power-on / RESET state: real mode at F000:FFF0 (CS base 0xffff0000).
 * Processor 0 starts running; others (index > 0) wait for INIT + SIPI
 * when ap_wait is true.
 */
void jit_cpu_reset(struct jit_cpu *cpu, bool ap_wait);

void jit_cpu_get_regs(const struct jit_cpu *cpu, struct jit_regs *regs);
void jit_cpu_set_regs(struct jit_cpu *cpu, const struct jit_regs *regs);
void jit_cpu_get_sregs(const struct jit_cpu *cpu, struct jit_sregs *sregs);
/* Sets segments, tables, control registers and EFER; recomputes the mode
 * and flushes the TLB.  Returns 0, or -EINVAL for an inconsistent state. */
int jit_cpu_set_sregs(struct jit_cpu *cpu, const struct jit_sregs *sregs);

/* x87/MMX/SSE state in the FXSAVE image format (512 bytes; Intel SDM
 * vol. 1, 10.5.1), the same layout KVM's kvm_fpu carries. */
void jit_cpu_get_fxsave(struct jit_cpu *cpu, uint8_t buf[512]);
void jit_cpu_set_fxsave(struct jit_cpu *cpu, const uint8_t buf[512]);

/* What else a snapshot carries (state.c): debug registers, XCR0 and the
 * state at the instruction boundary.  set_misc comes after set_sregs
 * (which clears wait_sipi) and flushes the TLB and translated code. */
struct jit_misc_state {
	uint64_t dr[8];
	uint64_t xcr0;
	bool halted, wait_sipi, shadow, nmi_blocked, nmi_pending;
};
void jit_cpu_get_misc(const struct jit_cpu *cpu, struct jit_misc_state *x);
void jit_cpu_set_misc(struct jit_cpu *cpu, const struct jit_misc_state *x);

/* MSR access from the machine (e.g. loading state); 0 or -ENOENT. */
int jit_cpu_get_msr(struct jit_cpu *cpu, uint32_t msr, uint64_t *val);
int jit_cpu_set_msr(struct jit_cpu *cpu, uint32_t msr, uint64_t val);

/*
 * Run guest code until an exit reason or until about budget instructions
 * have retired.  Executes on the calling thread; at most one thread runs
 * a given vCPU at a time.
 */
enum jit_exit jit_cpu_run(struct jit_cpu *cpu, uint64_t budget);

/* Instructions retired since creation. */
uint64_t jit_cpu_icount(const struct jit_cpu *cpu);

/* What a vCPU has done since it was created, for HMP's "info jit" (read
 * from another thread while it runs, the figures are approximate). */
struct jit_stats {
	uint64_t icount;		/* guest instructions */
	uint64_t decodes, blocks;	/* blocks decoded; entered from the run loop */
	uint64_t translated, translated_runs;	/* to host code; entered so */
	uint64_t tr_calls;		/* instructions translated as calls of the interpreter */
	uint64_t tlb_fills, flushes;	/* TLB misses; block cache flushes */
	uint64_t rechecks;		/* chained entries that found the TLB generation moved on */
	uint64_t code_writes;		/* writes that made tracked translated code stale (jit_ram) */
	size_t block_bytes, block_capacity;	/* decoded-block arena */
	size_t code_bytes, code_capacity;	/* host code; 0 capacity: translator off */
};
void jit_cpu_stats(const struct jit_cpu *cpu, struct jit_stats *s);

/* From now on, describe each translated block in /tmp/perf-PID.map, in
 * the format perf(1) reads for JIT code ("START SIZE guest-RIP"), so that
 * perf report names host time by the guest code it ran.  0 or -errno. */
int jit_perfmap_open(void);

/*
 * Signals, callable from any thread.  jit_cpu_irq sets the level of the
 * external interrupt line (INTR): while raised and RFLAGS.IF allows, the
 * CPU calls bus->irq_ack.  nmi is an edge; init puts the CPU in
 * wait-for-SIPI (processor index > 0) or resets it; sipi starts a waiting
 * CPU at vector << 12; stop makes jit_cpu_run return JIT_EXIT_STOP at the
 * next instruction boundary.
 */
void jit_cpu_irq(struct jit_cpu *cpu, bool level);
void jit_cpu_nmi(struct jit_cpu *cpu);
void jit_cpu_init(struct jit_cpu *cpu);
void jit_cpu_sipi(struct jit_cpu *cpu, uint8_t vector);
void jit_cpu_stop(struct jit_cpu *cpu);

/* True when the CPU is halted (HLT or wait-for-SIPI). */
bool jit_cpu_halted(const struct jit_cpu *cpu);

/*
 * Forget cached translations of guest-physical memory: call after DMA
 * writes code to RAM (a no-op for the interpreter, needed by the
 * translator) and flush_tlb after the physical memory map changes.
 * Both are safe from the thread running the vCPU only.
 */
void jit_cpu_invalidate(struct jit_cpu *cpu, uint64_t gpa, uint64_t len);
void jit_cpu_flush_tlb(struct jit_cpu *cpu);

/*
 * Guest RAM as the translator tracks writes to it.  A machine with one
 * vCPU gives it its RAM (one host mapping, [base, base + size)): the
 * translated code of that RAM then skips comparing its guest code bytes
 * on every entry from another block, because every write into a page
 * holding such code is seen: the vCPU's own stores (its TLB sends them to
 * a slow path), and everyone else's, which the machine reports with
 * jit_ram_written() after writing (a device's DMA, the monitor).  With
 * several vCPUs attached, or none, entries compare the bytes as before.
 * jit_ram_new returns NULL with errno set on failure.
 */
struct jit_ram;
struct jit_ram *jit_ram_new(uint8_t *base, size_t size);
void jit_ram_free(struct jit_ram *r);
/* cpu runs on r's RAM; call before it first runs.  The vCPUs attached
 * must be freed before r. */
void jit_cpu_set_ram(struct jit_cpu *cpu, struct jit_ram *r);
/* Bytes [p, p + len) of r's RAM were written by something other than a
 * vCPU: translations of them go stale before the vCPU runs another
 * block.  Any thread; p outside the RAM is ignored. */
void jit_ram_written(struct jit_ram *r, const void *p, size_t len);

#endif
