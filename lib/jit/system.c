/*
 * System instructions: control and debug registers, descriptor-table
 * registers (group 6 and 7), LAR/LSL/VERR/VERW, HLT, CLI/STI, port I/O
 * with the TSS I/O bitmap, RDMSR/WRMSR, RDTSC/RDTSCP, CPUID, CLTS,
 * INVD/WBINVD, and the fast system calls SYSCALL/SYSRET and
 * SYSENTER/SYSEXIT (Intel SDM vol. 2; vol. 3, chapter 2 for the registers,
 * 18.5 for I/O permission, 5.8.7-5.8.8 for the fast system calls).
 */
#include "jit/internal.h"

static void need_cpl0(struct jit_cpu *cpu)
{
	if (cpu->cpl != 0)
		jit_raise(cpu, EXC_GP, 0);
}

void jit_set_cr0(struct jit_cpu *cpu, uint64_t v)
{
	uint64_t changed;

	v = (uint32_t)v | CR0_ET;
	if (((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
		jit_raise(cpu, EXC_GP, 0);
	if ((v & CR0_PG) && !(cpu->cr0 & CR0_PG) && (cpu->efer & EFER_LME)) {
		if (!(cpu->cr4 & CR4_PAE))
			jit_raise(cpu, EXC_GP, 0);
		cpu->efer |= EFER_LMA;
	}
	if (!(v & CR0_PG) && (cpu->cr0 & CR0_PG) && cpu->lma) {
		if (cpu->mode64)
			jit_raise(cpu, EXC_GP, 0);
		cpu->efer &= ~(uint64_t)EFER_LMA;
	}
	changed = v ^ cpu->cr0;
	cpu->cr0 = v;
	if (changed & (CR0_PG | CR0_WP | CR0_PE))
		jit_tlb_flush(cpu, true);
	jit_update_mode(cpu);
}

void jit_set_cr4(struct jit_cpu *cpu, uint64_t v)
{
	const uint64_t ok = CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE |
			    CR4_MCE | CR4_PGE | CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT |
			    CR4_FSGSBASE;
	bool de = (v ^ cpu->cr4) & CR4_DE;

	if (v & ~ok)
		jit_raise(cpu, EXC_GP, 0);
	if (cpu->lma && !(v & CR4_PAE))
		jit_raise(cpu, EXC_GP, 0);
	if ((v ^ cpu->cr4) & (CR4_PSE | CR4_PAE | CR4_PGE))
		jit_tlb_flush(cpu, true);
	cpu->cr4 = v;
	if (de)
		jit_dbg_update(cpu);	/* I/O breakpoints come and go with DE */
}

void jit_set_cr3(struct jit_cpu *cpu, uint64_t v)
{
	cpu->cr3 = v & (cpu->lma ? 0x000ffffffffff000ull | 0x18 : 0xffffffffull);
	jit_tlb_flush(cpu, false);
}

/* 0F 20/22: MOV r,CRn / MOV CRn,r */
void jit_op_mov_cr(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned n = in->reg, size = cpu->mode64 ? 8 : 4;	/* never 16-bit */
	uint64_t v;

	need_cpl0(cpu);
	if (in->op == 0x20) {
		switch (n) {
		case 0: v = cpu->cr0; break;
		case 2: v = cpu->cr2; break;
		case 3: v = cpu->cr3; break;
		case 4: v = cpu->cr4; break;
		case 8: v = cpu->cr8; break;
		default: jit_ud(cpu, in);
		}
		reg_write(cpu, in, in->rm, size, v);
		return;
	}
	v = reg_read(cpu, in, in->rm, size);
	switch (n) {
	case 0: jit_set_cr0(cpu, v); break;
	case 2: cpu->cr2 = v; break;
	case 3: jit_set_cr3(cpu, v); break;
	case 4: jit_set_cr4(cpu, v); break;
	case 8: cpu->cr8 = v & 15; break;
	default: jit_ud(cpu, in);
	}
}

/* 0F 21/23: MOV r,DRn / MOV DRn,r (debug.c) */
void jit_op_mov_dr(struct jit_cpu *cpu, const struct jit_insn *in)
{
	need_cpl0(cpu);
	jit_dbg_mov(cpu, in);
}

/* LLDT / LTR: load a system segment from the GDT. */
static void load_sys_seg(struct jit_cpu *cpu, int s, uint16_t sel)
{
	uint64_t lo, hi;
	unsigned type;

	if (!(sel & 0xfffc)) {
		if (s == SEG_TR)
			jit_raise(cpu, EXC_GP, 0);
		jit_seg_null(&cpu->seg[s], sel);
		return;
	}
	if (sel & 4)
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	lo = jit_read_desc_sys(cpu, sel, &hi, EXC_GP);
	type = (lo >> 40) & 0x1f;
	if (s == SEG_LDTR ? type != 0x02 : (type != 0x09 && type != 0x01))
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (!(lo & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	if (s == SEG_TR) {
		lo |= 2ull << 40;	/* busy */
		jit_write_desc_hi(cpu, sel, (uint32_t)(lo >> 32));
	}
	jit_seg_from_desc(&cpu->seg[s], sel, lo);
	cpu->seg[s].base |= hi << 32;
}

/* LAR/LSL/VERR/VERW: is sel's descriptor visible at CPL/RPL?  *d gets it. */
static bool desc_visible(struct jit_cpu *cpu, uint16_t sel, uint64_t *d, bool lsl)
{
	uint64_t limit = (sel & 4) ? cpu->seg[SEG_LDTR].limit : cpu->gdt.limit;
	unsigned type, dpl;

	if (!(sel & 0xfffc) || (sel | 7u) > limit)
		return false;
	*d = jit_read_desc(cpu, sel, EXC_GP);
	type = (*d >> 40) & 0x1f;
	dpl = (*d >> 45) & 3;
	if (!(type & 0x10)) {
		/* 1: visible to LAR and LSL, 2: to LAR only (gates) */
		static const uint8_t ok_types[16] = {
			[1] = 1, [2] = 1, [3] = 1, [4] = 2, [5] = 2, [9] = 1, [0xb] = 1, [0xc] = 2,
		};

		if (!ok_types[type & 15] || (lsl && ok_types[type & 15] == 2) ||
		    (cpu->lma && (type & 15) != 2 && (type & 15) != 9 && (type & 15) != 0xb &&
		     (type & 15) != 0xc))
			return false;
	} else if ((type & 0x1c) == 0x1c) {
		return true;	/* conforming code: no privilege check */
	}
	return dpl >= (unsigned)cpu->cpl && dpl >= (sel & 3u);
}

/* 0F 00: group 6 - SLDT STR LLDT LTR VERR VERW */
void jit_op_grp6(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned g = in->reg & 7;
	uint64_t d;

	if (!cpu->pm || (cpu->rflags & F_VM))
		jit_ud(cpu, in);
	switch (g) {
	case 0:
	case 1:
		if (in->mod == 3)
			reg_write(cpu, in, in->rm, in->opsize,
				  cpu->seg[g ? SEG_TR : SEG_LDTR].selector);
		else
			rm_write(cpu, in, 2, cpu->seg[g ? SEG_TR : SEG_LDTR].selector);
		return;
	case 2:
	case 3:
		need_cpl0(cpu);
		load_sys_seg(cpu, g == 2 ? SEG_LDTR : SEG_TR, (uint16_t)rm_read(cpu, in, 2));
		return;
	case 4:
	case 5: {
		bool ok = desc_visible(cpu, (uint16_t)rm_read(cpu, in, 2), &d, false) &&
			  ((d >> 44) & 1);
		unsigned type = (d >> 40) & 0xf;

		if (ok)
			ok = g == 4 ? !((type & 8) && !(type & 2)) : !(type & 8) && (type & 2);
		cpu->rflags = ok ? cpu->rflags | F_ZF : cpu->rflags & ~(uint64_t)F_ZF;
		return;
	}
	}
	jit_ud(cpu, in);
}

/* 0F 02 LAR, 0F 03 LSL */
void jit_op_lar(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t d = 0;
	bool ok;

	if (!cpu->pm || (cpu->rflags & F_VM))
		jit_ud(cpu, in);
	ok = desc_visible(cpu, (uint16_t)rm_read(cpu, in, 2), &d, in->op == 0x03);
	cpu->rflags = ok ? cpu->rflags | F_ZF : cpu->rflags & ~(uint64_t)F_ZF;
	if (!ok)
		return;
	if (in->op == 0x02) {
		reg_write(cpu, in, in->reg, in->opsize, (d >> 32) & 0x00f0ff00);
	} else {
		struct jit_segment s;

		jit_seg_from_desc(&s, 0, d);
		reg_write(cpu, in, in->reg, in->opsize, s.limit);
	}
}

static void dtable_store(struct jit_cpu *cpu, const struct jit_insn *in,
			 const struct jit_dtable *t)
{
	uint64_t ea = insn_ea(cpu, in);
	unsigned bsize = cpu->mode64 ? 8 : 4;

	mem_write(cpu, in->seg, ea, 2, t->limit);
	mem_write(cpu, in->seg, (ea + 2) & size_mask(in->addrsize), bsize, t->base);
}

static void dtable_load(struct jit_cpu *cpu, const struct jit_insn *in, struct jit_dtable *t)
{
	uint64_t ea = insn_ea(cpu, in), base;
	uint16_t limit;

	need_cpl0(cpu);
	limit = (uint16_t)mem_read(cpu, in->seg, ea, 2);
	base = mem_read(cpu, in->seg, (ea + 2) & size_mask(in->addrsize), cpu->mode64 ? 8 : 4);
	if (!cpu->mode64 && in->opsize == 2)
		base &= 0xffffff;
	if (cpu->mode64 && !canonical(base))
		jit_raise(cpu, EXC_GP, 0);
	t->limit = limit;
	t->base = base;
}

/* 0F 01 with mod == 3: SWAPGS, RDTSCP, and SMSW/LMSW on a register */
static void grp7_reg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned g = in->reg & 7, r = in->rm & 7;
	uint64_t t;

	if (g == 7 && r == 0) {		/* SWAPGS */
		if (!cpu->mode64)
			jit_ud(cpu, in);
		need_cpl0(cpu);
		t = cpu->seg[SEG_GS].base;
		cpu->seg[SEG_GS].base = cpu->kernel_gs_base;
		cpu->kernel_gs_base = t;
	} else if (g == 7 && r == 1) {	/* RDTSCP */
		if ((cpu->cr4 & CR4_TSD) && cpu->cpl)
			jit_raise(cpu, EXC_GP, 0);
		t = jit_rdtsc(cpu);
		cpu->gpr[JIT_RAX] = (uint32_t)t;
		cpu->gpr[JIT_RDX] = t >> 32;
		cpu->gpr[JIT_RCX] = (uint32_t)cpu->tsc_aux;
	} else if (g == 4) {		/* SMSW r */
		reg_write(cpu, in, in->rm, in->opsize, cpu->cr0);
	} else if (g == 6) {		/* LMSW r */
		need_cpl0(cpu);
		jit_set_cr0(cpu, (cpu->cr0 & ~0xeull) | (rm_read(cpu, in, 2) & 0xf) |
				 (cpu->cr0 & CR0_PE));
	} else {
		jit_ud(cpu, in);
	}
}

/* 0F 01: group 7 */
void jit_op_grp7(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if (in->mod == 3) {
		grp7_reg(cpu, in);
		return;
	}
	switch (in->reg & 7) {
	case 0: dtable_store(cpu, in, &cpu->gdt); break;
	case 1: dtable_store(cpu, in, &cpu->idt); break;
	case 2: dtable_load(cpu, in, &cpu->gdt); break;
	case 3: dtable_load(cpu, in, &cpu->idt); break;
	case 4: rm_write(cpu, in, 2, cpu->cr0); break;		/* SMSW */
	case 6:							/* LMSW */
		need_cpl0(cpu);
		jit_set_cr0(cpu, (cpu->cr0 & ~0xeull) | (rm_read(cpu, in, 2) & 0xf) |
				 (cpu->cr0 & CR0_PE));
		break;
	case 7:							/* INVLPG */
		need_cpl0(cpu);
		jit_tlb_flush_page(cpu, jit_seg_lin(cpu, in->seg, insn_ea(cpu, in), 1, 0));
		break;
	default:
		jit_ud(cpu, in);
	}
}

/* 0F 06: CLTS */
void jit_op_clts(struct jit_cpu *cpu, const struct jit_insn *in)
{
	need_cpl0(cpu);
	cpu->cr0 &= ~(uint64_t)CR0_TS;
}

/* 0F 08 INVD, 0F 09 WBINVD */
void jit_op_invd(struct jit_cpu *cpu, const struct jit_insn *in)
{
	need_cpl0(cpu);
}

/* F4: HLT */
void jit_op_hlt(struct jit_cpu *cpu, const struct jit_insn *in)
{
	need_cpl0(cpu);
	cpu->halted = true;
}

/* FA CLI, FB STI (IOPL-sensitive) */
void jit_op_cli(struct jit_cpu *cpu, const struct jit_insn *in)
{
	if (cpu->pm && cpu->cpl > (int)((cpu->rflags & F_IOPL) >> 12))
		jit_raise(cpu, EXC_GP, 0);
	if (in->op == 0xfa) {
		cpu->rflags &= ~(uint64_t)F_IF;
	} else {
		if (!(cpu->rflags & F_IF))
			cpu->shadow = true;
		cpu->rflags |= F_IF;
	}
}

/* May the current privilege access ports [port, port+size)?  (SDM vol. 1,
 * 18.5: IOPL, then the TSS I/O permission bitmap) */
bool jit_io_allowed(struct jit_cpu *cpu, uint16_t port, unsigned size)
{
	const struct jit_segment *tr = &cpu->seg[SEG_TR];
	uint64_t base;
	uint32_t bits;
	uint16_t off;

	if (!cpu->pm || (!(cpu->rflags & F_VM) && cpu->cpl <= (int)((cpu->rflags & F_IOPL) >> 12)))
		return true;
	if (tr->unusable || (tr->type & 7) != 1 || !(tr->type & 8) || tr->limit < 0x67)
		return false;
	base = cpu->lma ? tr->base : (uint32_t)tr->base;
	off = (uint16_t)lin_read(cpu, base + 0x66, 2, ACC_R | ACC_SYS);
	if ((uint32_t)off + port / 8 + 1 > tr->limit)
		return false;
	bits = (uint32_t)lin_read(cpu, base + off + port / 8, 2, ACC_R | ACC_SYS);
	return !((bits >> (port & 7)) & ((1u << size) - 1));
}

/* E4-E7, EC-EF: IN/OUT */
void jit_op_io(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint16_t port = (in->op & 8) ? (uint16_t)cpu->gpr[JIT_RDX] : (uint16_t)(in->imm & 0xff);
	unsigned size = in->opsize == 8 ? 4 : in->opsize;

	if (!jit_io_allowed(cpu, port, size))
		jit_raise(cpu, EXC_GP, 0);
	if (unlikely(cpu->dbg_io))
		jit_dbg_io(cpu, port, size);	/* I/O breakpoints (debug.c) */
	if (in->op & 2)
		cpu->bus.pio_out(cpu->bus.opaque, port, (uint32_t)cpu->gpr[JIT_RAX] & (uint32_t)size_mask(size), size);
	else
		reg_write(cpu, in, JIT_RAX, size, cpu->bus.pio_in(cpu->bus.opaque, port, size));
}

/* 0F 30 WRMSR, 0F 32 RDMSR */
void jit_op_msr(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint32_t msr = (uint32_t)cpu->gpr[JIT_RCX];
	uint64_t v;

	need_cpl0(cpu);
	if (in->op == 0x32) {
		if (jit_msr_read(cpu, msr, &v) < 0)
			jit_raise(cpu, EXC_GP, 0);
		cpu->gpr[JIT_RAX] = (uint32_t)v;
		cpu->gpr[JIT_RDX] = v >> 32;
		return;
	}
	v = (uint32_t)cpu->gpr[JIT_RAX] | cpu->gpr[JIT_RDX] << 32;
	if (jit_msr_write(cpu, msr, v) < 0)
		jit_raise(cpu, EXC_GP, 0);
}

/* 0F 31: RDTSC */
void jit_op_rdtsc(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint64_t t;

	if ((cpu->cr4 & CR4_TSD) && cpu->cpl)
		jit_raise(cpu, EXC_GP, 0);
	t = jit_rdtsc(cpu);
	cpu->gpr[JIT_RAX] = (uint32_t)t;
	cpu->gpr[JIT_RDX] = t >> 32;
}

/* 0F 33: RDPMC (no counters) */
void jit_op_rdpmc(struct jit_cpu *cpu, const struct jit_insn *in)
{
	jit_raise(cpu, EXC_GP, 0);
}

/* 0F A2: CPUID */
void jit_op_cpuid(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint32_t r[4];

	jit_cpuid(cpu, (uint32_t)cpu->gpr[JIT_RAX], (uint32_t)cpu->gpr[JIT_RCX], r);
	cpu->gpr[JIT_RAX] = r[0];
	cpu->gpr[JIT_RBX] = r[1];
	cpu->gpr[JIT_RCX] = r[2];
	cpu->gpr[JIT_RDX] = r[3];
}
