/*
 * Fast system calls: SYSCALL/SYSRET (AMD64; Intel SDM vol. 2 "SYSCALL",
 * "SYSRET") and SYSENTER/SYSEXIT (vol. 2 "SYSENTER", "SYSEXIT").  These
 * load flat segments without reading descriptors: the MSRs give the
 * selectors and the caches get fixed values.
 */
#include "jit/internal.h"

/* A flat 4 GiB segment: code (type 0xb) or data (type 0x3) at dpl. */
static void flat(struct jit_segment *s, uint16_t sel, bool code, unsigned dpl, bool l)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->s = 1;
	s->dpl = (uint8_t)dpl;
	s->present = 1;
	s->g = 1;
	s->l = l;
	s->db = !l;
}

/* 0F 05: SYSCALL */
void jit_op_syscall(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint16_t sel = (uint16_t)(cpu->star >> 32);

	if (!(cpu->efer & EFER_SCE) || !cpu->pm)
		jit_ud(cpu, in);
	if (cpu->lma) {
		cpu->gpr[JIT_RCX] = cpu->next_rip;
		cpu->gpr[JIT_R11] = cpu->rflags & ~(uint64_t)F_RF;
		cpu->next_rip = cpu->mode64 ? cpu->lstar : cpu->cstar;
		cpu->rflags &= ~(cpu->sfmask | F_RF);
	} else {
		cpu->gpr[JIT_RCX] = (uint32_t)cpu->next_rip;
		cpu->next_rip = (uint32_t)cpu->star;
		cpu->rflags &= ~(uint64_t)(F_IF | F_VM | F_RF);
	}
	cpu->rflags |= 2;
	flat(&cpu->seg[SEG_CS], sel & 0xfffc, true, 0, cpu->lma);
	flat(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) & 0xfffc), false, 0, false);
	cpu->cpl = 0;
	jit_update_mode(cpu);
}

/* 0F 07: SYSRET */
void jit_op_sysret(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint16_t sel = (uint16_t)(cpu->star >> 48);
	bool to64 = in->opsize == 8;

	if (!(cpu->efer & EFER_SCE) || !cpu->pm)
		jit_ud(cpu, in);
	if (cpu->cpl != 0)
		jit_raise(cpu, EXC_GP, 0);
	if (cpu->lma) {
		if (to64 && !canonical(cpu->gpr[JIT_RCX]))
			jit_raise(cpu, EXC_GP, 0);
		cpu->rflags = (cpu->gpr[JIT_R11] & 0x3c7fd7) | 2;
		cpu->next_rip = to64 ? cpu->gpr[JIT_RCX] : (uint32_t)cpu->gpr[JIT_RCX];
		flat(&cpu->seg[SEG_CS], (uint16_t)((to64 ? sel + 16 : sel) | 3), true, 3, to64);
	} else {
		cpu->rflags |= F_IF;
		cpu->next_rip = (uint32_t)cpu->gpr[JIT_RCX];
		flat(&cpu->seg[SEG_CS], sel | 3, true, 3, false);
	}
	/* SS keeps its selector RPL 3 and a fixed flat cache (SDM: SYSRET) */
	flat(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) | 3), false, 3, false);
	cpu->cpl = 3;
	jit_update_mode(cpu);
	if (cpu->rflags & F_TF)
		jit_dbg_step_next(cpu);	/* trap by the flags it leaves (debug.c) */
}

/* 0F 34: SYSENTER */
void jit_op_sysenter(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint16_t sel = (uint16_t)cpu->sysenter_cs;

	if (!cpu->pm || !(sel & 0xfffc))
		jit_raise(cpu, EXC_GP, 0);
	cpu->rflags &= ~(uint64_t)(F_VM | F_IF | F_RF);
	flat(&cpu->seg[SEG_CS], sel & 0xfffc, true, 0, cpu->lma);
	flat(&cpu->seg[SEG_SS], (uint16_t)((sel + 8) & 0xfffc), false, 0, false);
	cpu->cpl = 0;
	jit_update_mode(cpu);
	cpu->gpr[JIT_RSP] = cpu->lma ? cpu->sysenter_esp : (uint32_t)cpu->sysenter_esp;
	cpu->next_rip = cpu->lma ? cpu->sysenter_eip : (uint32_t)cpu->sysenter_eip;
}

/* 0F 35: SYSEXIT (REX.W: to 64-bit code) */
void jit_op_sysexit(struct jit_cpu *cpu, const struct jit_insn *in)
{
	uint16_t sel = (uint16_t)cpu->sysenter_cs;
	bool to64 = in->opsize == 8;

	if (!cpu->pm || cpu->cpl != 0 || !(sel & 0xfffc))
		jit_raise(cpu, EXC_GP, 0);
	flat(&cpu->seg[SEG_CS], (uint16_t)((sel + (to64 ? 32 : 16)) | 3), true, 3, to64);
	flat(&cpu->seg[SEG_SS], (uint16_t)((sel + (to64 ? 40 : 24)) | 3), false, 3, false);
	cpu->cpl = 3;
	jit_update_mode(cpu);
	cpu->gpr[JIT_RSP] = to64 ? cpu->gpr[JIT_RCX] : (uint32_t)cpu->gpr[JIT_RCX];
	cpu->next_rip = to64 ? cpu->gpr[JIT_RDX] : (uint32_t)cpu->gpr[JIT_RDX];
}
