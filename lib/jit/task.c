/*
 * Hardware task switching in legacy protected mode (Intel SDM vol. 3,
 * chapter 8 "Task Management": 8.2.1 for the 32-bit TSS layout, 8.3 for
 * the switch, 8.4 for task linking; vol. 2 "JMP", "CALL", "IRET" and 6.11
 * for task gates in the IDT).
 *
 * A switch is entered from four places: JMP or CALL far to a TSS
 * descriptor or a task gate (far.c), IRET with NT set (far.c: back to the
 * task in the current TSS's link field), and an interrupt or exception
 * whose IDT entry is a task gate (intr.c) - how 32-bit kernels catch a
 * double fault on a known-good stack.  The order follows 8.3:
 *
 *  1. checks of the new TSS (available, or busy for IRET; present; limit
 *     at least 67h) and a read of all of it: faults so far belong to the
 *     old task, whose state is untouched;
 *  2. the old task's registers are saved in its TSS (EIP is the return
 *     point; IRET saves EFLAGS with NT clear), JMP and IRET clear the old
 *     descriptor's busy bit, CALL and interrupts write the back link into
 *     the new TSS and set NT in the new EFLAGS, the new descriptor becomes
 *     busy, TR is loaded and CR0.TS set;
 *  3. CR3 (with paging), LDTR, EFLAGS, the general registers and EIP are
 *     loaded, then the segment registers with their checks (#TS, #NP, #SS
 *     with the selector), so a fault there is delivered in the new task;
 *  4. an exception with an error code pushes it on the new task's stack.
 *
 * A TSS with its T bit set raises #DB (DR6.BT) before the new task's first
 * instruction (17.3.1.5).  16-bit TSSs are not modelled; long mode has no task switch
 * (the callers raise #GP there).
 */
#include "jit/internal.h"

#define TSS_BUSY (2ull << 40)

struct tss32 {
	uint32_t cr3, eip, eflags, gpr[8];
	uint16_t sel[6], ldt;
	bool trap;		/* T: a debug trap as the task starts */
};

static uint32_t tss_base(uint64_t d)
{
	return (uint32_t)(((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000));
}

static uint32_t tss_limit(uint64_t d)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));

	return (d & (1ull << 55)) ? (limit << 12) | 0xfff : limit;
}

static uint32_t rd32(struct jit_cpu *cpu, uint32_t lin)
{
	return (uint32_t)lin_read(cpu, lin, 4, ACC_R | ACC_SYS);
}

static void wr32(struct jit_cpu *cpu, uint32_t lin, uint32_t v)
{
	lin_write(cpu, lin, 4, v, ACC_W | ACC_SYS);
}

static void read_tss(struct jit_cpu *cpu, uint32_t b, struct tss32 *t)
{
	t->cr3 = rd32(cpu, b + 0x1c);
	t->eip = rd32(cpu, b + 0x20);
	t->eflags = rd32(cpu, b + 0x24);
	for (unsigned i = 0; i < 8; i++)
		t->gpr[i] = rd32(cpu, b + 0x28 + 4 * i);
	for (unsigned i = 0; i < 6; i++)
		t->sel[i] = (uint16_t)rd32(cpu, b + 0x48 + 4 * i);
	t->ldt = (uint16_t)rd32(cpu, b + 0x60);
	t->trap = rd32(cpu, b + 0x64) & 1;
}

/* Step 2 for the old task: its state into its TSS (writes that can fault
 * come before any register changes). */
static void save_old(struct jit_cpu *cpu, int reason, uint32_t ret_eip)
{
	uint32_t b = (uint32_t)cpu->seg[SEG_TR].base;
	uint32_t fl = (uint32_t)cpu->rflags;

	if (reason == JIT_TASK_IRET)
		fl &= ~F_NT;
	wr32(cpu, b + 0x20, ret_eip);
	wr32(cpu, b + 0x24, fl);
	for (unsigned i = 0; i < 8; i++)
		wr32(cpu, b + 0x28 + 4 * i, (uint32_t)cpu->gpr[i]);
	for (unsigned i = 0; i < 6; i++)
		lin_write(cpu, b + 0x48 + 4 * i, 2, cpu->seg[i].selector, ACC_W | ACC_SYS);
}

static void load_ldt(struct jit_cpu *cpu, uint16_t sel)
{
	uint64_t d;

	if (!(sel & 0xfffc)) {
		jit_seg_null(&cpu->seg[SEG_LDTR], sel);
		return;
	}
	if (sel & 4)
		jit_raise(cpu, EXC_TS, sel & 0xfffc);
	d = jit_read_desc(cpu, sel, EXC_TS);
	if (((d >> 40) & 0x1f) != 0x02)
		jit_raise(cpu, EXC_TS, sel & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_TS, sel & 0xfffc);
	jit_seg_from_desc(&cpu->seg[SEG_LDTR], sel, d);
}

/* A segment register of the new task (SDM vol. 3, 8.3 step 13's checks). */
static void load_task_seg(struct jit_cpu *cpu, int s, uint16_t sel)
{
	unsigned rpl = sel & 3, dpl, type;
	uint64_t d;

	if (!(sel & 0xfffc)) {
		if (s == SEG_CS || s == SEG_SS)
			jit_raise(cpu, EXC_TS, sel & 0xfffc);
		jit_seg_null(&cpu->seg[s], sel);
		return;
	}
	d = jit_read_desc(cpu, sel, EXC_TS);
	type = (d >> 40) & 0x1f;
	dpl = (d >> 45) & 3;
	if (s == SEG_CS) {
		bool conforming = type & 4;

		if ((type & 0x18) != 0x18 || (conforming ? dpl > rpl : dpl != rpl))
			jit_raise(cpu, EXC_TS, sel & 0xfffc);
	} else if (s == SEG_SS) {
		if ((type & 0x1a) != 0x12 || rpl != (unsigned)cpu->cpl || dpl != rpl)
			jit_raise(cpu, EXC_TS, sel & 0xfffc);
	} else if (!(type & 0x10) || (type & 0x1a) == 0x18 ||
		   ((type & 0x1c) != 0x1c && dpl < (rpl > (unsigned)cpu->cpl ? rpl : (unsigned)cpu->cpl))) {
		jit_raise(cpu, EXC_TS, sel & 0xfffc);
	}
	if (!(d & (1ull << 47)))
		jit_raise(cpu, s == SEG_SS ? EXC_SS : EXC_NP, sel & 0xfffc);
	if (s == SEG_CS)
		jit_load_cs(cpu, sel, d, (int)rpl);
	else
		jit_seg_from_desc(&cpu->seg[s], sel, d);
}

static void set_busy(struct jit_cpu *cpu, uint16_t sel, uint64_t d, bool busy)
{
	d = busy ? d | TSS_BUSY : d & ~TSS_BUSY;
	jit_write_desc_hi(cpu, sel, (uint32_t)(d >> 32));
}

/* Step 3: the new task's registers; faults from here on are the new
 * task's. */
static void load_new(struct jit_cpu *cpu, const struct tss32 *t)
{
	static const int order[6] = { SEG_CS, SEG_SS, SEG_DS, SEG_ES, SEG_FS, SEG_GS };

	if (cpu->cr0 & CR0_PG)
		jit_set_cr3(cpu, t->cr3);
	for (unsigned i = 0; i < 8; i++)
		cpu->gpr[i] = t->gpr[i];
	cpu->rflags = (t->eflags & 0x3f7fd7) | 2;
	cpu->rip = cpu->next_rip = t->eip;
	for (unsigned i = 0; i < 6; i++)	/* selectors first: a fault shows them */
		cpu->seg[i].selector = t->sel[i];
	cpu->seg[SEG_LDTR].selector = t->ldt;
	if (cpu->rflags & F_VM) {
		for (unsigned i = 0; i < 6; i++)
			jit_seg_real(&cpu->seg[i], t->sel[i]);
		jit_update_mode(cpu);
		load_ldt(cpu, t->ldt);
		return;
	}
	cpu->cpl = t->sel[SEG_CS] & 3;
	jit_update_mode(cpu);
	load_ldt(cpu, t->ldt);
	for (unsigned i = 0; i < 6; i++)
		load_task_seg(cpu, order[i], t->sel[order[i]]);
	jit_update_mode(cpu);
}

void jit_task_switch(struct jit_cpu *cpu, uint16_t sel, uint64_t d, int reason,
		     bool has_code, uint32_t code, uint32_t ret_eip)
{
	struct jit_segment *tr = &cpu->seg[SEG_TR];
	unsigned type = (d >> 40) & 0x1f;
	uint16_t old_sel = tr->selector;
	uint32_t nb = tss_base(d);
	struct tss32 t;
	uint64_t od;

	if (cpu->lma || (sel & 4))
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (type != (reason == JIT_TASK_IRET ? 0x0b : 0x09))
		jit_raise(cpu, reason == JIT_TASK_IRET ? EXC_TS : EXC_GP, sel & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	if (tss_limit(d) < 0x67)
		jit_raise(cpu, EXC_TS, sel & 0xfffc);
	if (tr->unusable || !(tr->type & 8) || tr->limit < 0x67)
		jit_raise(cpu, EXC_TS, old_sel & 0xfffc);
	od = jit_read_desc(cpu, old_sel, EXC_TS);
	read_tss(cpu, nb, &t);
	save_old(cpu, reason, ret_eip);
	if (reason == JIT_TASK_JMP || reason == JIT_TASK_IRET)
		set_busy(cpu, old_sel, od, false);
	if (reason == JIT_TASK_CALL || reason == JIT_TASK_INT) {
		lin_write(cpu, nb, 2, old_sel, ACC_W | ACC_SYS);
		t.eflags |= F_NT;
	}
	if (reason != JIT_TASK_IRET)
		set_busy(cpu, sel, d, true);
	jit_seg_from_desc(tr, sel, d | TSS_BUSY);
	cpu->cr0 |= CR0_TS;
	load_new(cpu, &t);
	if (has_code) {
		uint64_t rsp = push_at(cpu, cpu->gpr[JIT_RSP], 4, code);

		cpu->gpr[JIT_RSP] = rsp;
	}
	if (t.trap)
		jit_dbg_trap_next(cpu, 0x8000);	/* DR6.BT before its first instruction */
}

/* The TSS descriptor behind a task gate (JMP/CALL far or the IDT). */
uint64_t jit_task_gate_tss(struct jit_cpu *cpu, uint64_t gate, uint16_t *tss_sel)
{
	uint16_t sel = (uint16_t)(gate >> 16);
	uint64_t d;

	if (sel & 4)
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	d = jit_read_desc(cpu, sel, EXC_GP);
	if (((d >> 40) & 0x1f) != 0x09)
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	*tss_sel = sel;
	return d;
}
