/*
 * Segment registers and descriptor tables (Intel SDM vol. 3, chapter 3
 * for descriptors, 5.5-5.8 for privilege checks on segment loads; vol. 2
 * "MOV", "POP", "LDS/LES/LFS/LGS/LSS" for the exact fault order).
 */
#include "jit/internal.h"

void jit_seg_from_desc(struct jit_segment *s, uint16_t sel, uint64_t d)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));

	s->selector = sel;
	s->base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000);
	s->type = (d >> 40) & 0xf;
	s->s = (d >> 44) & 1;
	s->dpl = (d >> 45) & 3;
	s->present = (d >> 47) & 1;
	s->avl = (d >> 52) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->unusable = 0;
}

/* Real-mode (and virtual-8086) load: only selector and base change. */
void jit_seg_real(struct jit_segment *s, uint16_t sel)
{
	s->selector = sel;
	s->base = (uint64_t)sel << 4;
	s->unusable = 0;
}

void jit_seg_null(struct jit_segment *s, uint16_t sel)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->unusable = 1;
}

/* Raw 8-byte descriptor for sel from the GDT or LDT; #vec(sel) when the
 * index is outside the table. */
uint64_t jit_read_desc(struct jit_cpu *cpu, uint16_t sel, int vec)
{
	uint64_t base, limit;

	if (sel & 4) {
		if (cpu->seg[SEG_LDTR].unusable)
			jit_raise(cpu, vec, sel & 0xfffc);
		base = cpu->seg[SEG_LDTR].base;
		limit = cpu->seg[SEG_LDTR].limit;
	} else {
		base = cpu->gdt.base;
		limit = cpu->gdt.limit;
	}
	if ((sel & ~7u) + 7u > limit)
		jit_raise(cpu, vec, sel & 0xfffc);
	base += sel & ~7u;
	if (!cpu->lma)
		base = (uint32_t)base;
	return lin_read(cpu, base, 8, ACC_R | ACC_SYS);
}

/* A system descriptor: 16 bytes in long mode (hi gets the upper half). */
uint64_t jit_read_desc_sys(struct jit_cpu *cpu, uint16_t sel, uint64_t *hi, int vec)
{
	uint64_t lo = jit_read_desc(cpu, sel, vec);

	*hi = 0;
	if (cpu->lma)
		*hi = jit_read_desc(cpu, (uint16_t)(sel + 8), vec);
	return lo;
}

/* Write the upper dword of a descriptor (accessed / busy bits). */
void jit_write_desc_hi(struct jit_cpu *cpu, uint16_t sel, uint32_t hi)
{
	uint64_t base = (sel & 4) ? cpu->seg[SEG_LDTR].base : cpu->gdt.base;

	base += (sel & ~7u) + 4;
	if (!cpu->lma)
		base = (uint32_t)base;
	lin_write(cpu, base, 4, hi, ACC_W | ACC_SYS);
}

static void set_accessed(struct jit_cpu *cpu, uint16_t sel, uint64_t *d)
{
	if (!(*d & (1ull << 40))) {
		*d |= 1ull << 40;
		jit_write_desc_hi(cpu, sel, (uint32_t)(*d >> 32));
	}
}

static void load_ss(struct jit_cpu *cpu, uint16_t sel)
{
	uint64_t d;
	unsigned type;

	if (!(sel & 0xfffc)) {
		if (cpu->mode64 && cpu->cpl != 3 && (sel & 3) == cpu->cpl) {
			jit_seg_null(&cpu->seg[SEG_SS], sel);
			cpu->seg[SEG_SS].dpl = (uint8_t)cpu->cpl;
			return;
		}
		jit_raise(cpu, EXC_GP, 0);
	}
	d = jit_read_desc(cpu, sel, EXC_GP);
	type = (d >> 40) & 0x1f;
	if ((sel & 3) != cpu->cpl || ((d >> 45) & 3) != (unsigned)cpu->cpl ||
	    (type & 0x1a) != 0x12)
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_SS, sel & 0xfffc);
	set_accessed(cpu, sel, &d);
	jit_seg_from_desc(&cpu->seg[SEG_SS], sel, d);
}

/* MOV/POP/LxS to a segment register other than CS. */
void jit_load_seg(struct jit_cpu *cpu, int sreg, uint16_t sel)
{
	uint64_t d;
	unsigned type, dpl;

	if (!cpu->pm || (cpu->rflags & F_VM)) {
		jit_seg_real(&cpu->seg[sreg], sel);
		if (sreg == SEG_SS)
			jit_update_mode(cpu);
		return;
	}
	if (sreg == SEG_SS) {
		load_ss(cpu, sel);
		jit_update_mode(cpu);
		return;
	}
	if (!(sel & 0xfffc)) {
		jit_seg_null(&cpu->seg[sreg], sel);
		return;
	}
	d = jit_read_desc(cpu, sel, EXC_GP);
	type = (d >> 40) & 0x1f;
	dpl = (d >> 45) & 3;
	if (!(type & 0x10) || (type & 0x1a) == 0x18)	/* system, or execute-only code */
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if ((type & 0x1c) != 0x1c && (dpl < (unsigned)cpu->cpl || dpl < (sel & 3u)))
		jit_raise(cpu, EXC_GP, sel & 0xfffc);
	if (!(d & (1ull << 47)))
		jit_raise(cpu, EXC_NP, sel & 0xfffc);
	set_accessed(cpu, sel, &d);
	jit_seg_from_desc(&cpu->seg[sreg], sel, d);
}

/* Load CS from a checked descriptor at privilege level cpl. */
void jit_load_cs(struct jit_cpu *cpu, uint16_t sel, uint64_t desc, int cpl)
{
	if (!(desc & (1ull << 40))) {
		desc |= 1ull << 40;
		jit_write_desc_hi(cpu, sel, (uint32_t)(desc >> 32));
	}
	jit_seg_from_desc(&cpu->seg[SEG_CS], (uint16_t)((sel & 0xfffc) | cpl), desc);
	cpu->cpl = cpl;
	jit_update_mode(cpu);
}

/* After a return to an outer level: data segments the new CPL may not use
 * become null (SDM vol. 2, "RET", "IRET"). */
void jit_fix_data_segs(struct jit_cpu *cpu)
{
	static const int segs[] = { SEG_ES, SEG_DS, SEG_FS, SEG_GS };

	for (unsigned i = 0; i < 4; i++) {
		struct jit_segment *s = &cpu->seg[segs[i]];
		bool conforming_code = s->s && (s->type & 0xc) == 0xc;

		if (!s->unusable && !conforming_code && s->dpl < cpu->cpl)
			jit_seg_null(s, 0);
	}
}

/* 8E: MOV Sreg,Ew */
void jit_op_mov_to_seg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned s = in->reg & 7;

	if (s == SEG_CS || s > SEG_GS)
		jit_ud(cpu, in);
	jit_load_seg(cpu, (int)s, (uint16_t)rm_read(cpu, in, 2));
	if (s == SEG_SS)
		cpu->shadow = true;
}

/* 8C: MOV Ev,Sreg (a register destination is zero-extended) */
void jit_op_mov_from_seg(struct jit_cpu *cpu, const struct jit_insn *in)
{
	unsigned s = in->reg & 7;

	if (s > SEG_GS)
		jit_ud(cpu, in);
	if (in->mod == 3)
		reg_write(cpu, in, in->rm, in->opsize, cpu->seg[s].selector);
	else
		rm_write(cpu, in, 2, cpu->seg[s].selector);
}

/* C4 LES, C5 LDS, 0F B2 LSS, 0F B4 LFS, 0F B5 LGS: Gv, Mp */
void jit_op_lxs(struct jit_cpu *cpu, const struct jit_insn *in)
{
	int s = in->map == MAP_1B ? (in->op == 0xc4 ? SEG_ES : SEG_DS)
		: in->op == 0xb2 ? SEG_SS : in->op == 0xb4 ? SEG_FS : SEG_GS;
	uint64_t ea = insn_ea(cpu, in), off;
	uint16_t sel;

	if (in->mod == 3)
		jit_ud(cpu, in);
	off = mem_read(cpu, in->seg, ea, in->opsize);
	sel = (uint16_t)mem_read(cpu, in->seg, (ea + in->opsize) & size_mask(in->addrsize), 2);
	jit_load_seg(cpu, s, sel);
	reg_write(cpu, in, in->reg, in->opsize, off);
}
