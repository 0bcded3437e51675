/*
 * Temporary: x87/SSE entry points until x87.c and sse.c exist.
 */
#include "jit/internal.h"

void jit_fpu_reset(struct jit_cpu *cpu)
{
	memset(&cpu->fpu, 0, sizeof(cpu->fpu));
	cpu->fpu.fcw = 0x40;
	cpu->fpu.mxcsr = 0x1f80;
}

void jit_op_x87(struct jit_cpu *cpu, const struct jit_insn *in) { jit_ud(cpu, in); }
void jit_op_fwait(struct jit_cpu *cpu, const struct jit_insn *in) { }
void jit_op_sse(struct jit_cpu *cpu, const struct jit_insn *in) { jit_ud(cpu, in); }
void jit_op_emms(struct jit_cpu *cpu, const struct jit_insn *in) { jit_ud(cpu, in); }
void jit_op_grp15(struct jit_cpu *cpu, const struct jit_insn *in) { jit_ud(cpu, in); }
void jit_op_movnti(struct jit_cpu *cpu, const struct jit_insn *in) { jit_ud(cpu, in); }
void jit_op_ssse3(struct jit_cpu *cpu, const struct jit_insn *in) { jit_ud(cpu, in); }

void jit_cpu_get_fxsave(struct jit_cpu *cpu, uint8_t buf[512])
{
	memset(buf, 0, 512);
	memcpy(buf + 160, cpu->fpu.xmm, 256);
}

void jit_cpu_set_fxsave(struct jit_cpu *cpu, const uint8_t buf[512])
{
	memcpy(cpu->fpu.xmm, buf + 160, 256);
}
