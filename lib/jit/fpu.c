/*
 * x87 state management: reset (FNINIT values), the register stack (TOP,
 * tags), FXSAVE/FXRSTOR images (Intel SDM vol. 1, 8.1 and 10.5.1, table
 * 10-2), and FNSTENV/FLDENV/FNSAVE/FRSTOR layouts (vol. 1, 8.1.10, figures
 * 8-9 to 8-12).  The instructions themselves are in x87.c.
 */
#include "jit/internal.h"

void jit_fpu_reset(struct jit_cpu *cpu)
{
	memset(&cpu->fpu, 0, sizeof(cpu->fpu));
	cpu->fpu.fcw = 0x40;
	cpu->fpu.mxcsr = 0x1f80;
}

/* FNINIT: control 0x37f, status 0, all registers empty */
void jit_fpu_reset_x87(struct jit_cpu *cpu)
{
	cpu->fpu.fcw = 0x37f;
	cpu->fpu.fsw = 0;
	cpu->fpu.ftw = 0;
	cpu->fpu.fop = 0;
	cpu->fpu.fip = cpu->fpu.fdp = 0;
}

/* Full two-bit tag of physical register i (SDM vol. 1, 8.1.7). */
unsigned jit_fpu_tag(const struct jit_cpu *cpu, unsigned i)
{
	const union jit_fpreg *r = &cpu->fpu.st[i];
	unsigned e = r->r.exp & 0x7fff;

	if (!(cpu->fpu.ftw & (1u << i)))
		return 3;
	if (e == 0x7fff || (e && !(r->r.mant >> 63)))
		return 2;
	if (!e)
		return r->r.mant ? 2 : 1;
	return 0;
}

void jit_fxsave(struct jit_cpu *cpu, uint8_t *b)
{
	const struct jit_fpu *f = &cpu->fpu;
	unsigned top = (f->fsw >> 11) & 7;

	memset(b, 0, 512);
	memcpy(b, &f->fcw, 2);
	memcpy(b + 2, &f->fsw, 2);
	b[4] = f->ftw;
	memcpy(b + 6, &f->fop, 2);
	memcpy(b + 8, &f->fip, 8);
	memcpy(b + 16, &f->fdp, 8);
	memcpy(b + 24, &f->mxcsr, 4);
	memcpy(b + 28, &(uint32_t){ 0xffff }, 4);
	for (unsigned i = 0; i < 8; i++)
		memcpy(b + 32 + 16 * i, &f->st[(top + i) & 7], 10);
	memcpy(b + 160, f->xmm, cpu->mode64 || !cpu->pm ? 256 : 128);
}

void jit_fxrstor(struct jit_cpu *cpu, const uint8_t *b)
{
	struct jit_fpu *f = &cpu->fpu;
	unsigned top;

	memcpy(&f->fcw, b, 2);
	memcpy(&f->fsw, b + 2, 2);
	f->ftw = b[4];
	memcpy(&f->fop, b + 6, 2);
	memcpy(&f->fip, b + 8, 8);
	memcpy(&f->fdp, b + 16, 8);
	memcpy(&f->mxcsr, b + 24, 4);
	top = (f->fsw >> 11) & 7;
	for (unsigned i = 0; i < 8; i++) {
		memset(&f->st[(top + i) & 7], 0, sizeof(f->st[0]));
		memcpy(&f->st[(top + i) & 7], b + 32 + 16 * i, 10);
	}
	memcpy(f->xmm, b + 160, cpu->mode64 || !cpu->pm ? 256 : 128);
}

void jit_cpu_get_fxsave(struct jit_cpu *cpu, uint8_t buf[512])
{
	jit_fxsave(cpu, buf);
	memcpy(buf + 160, cpu->fpu.xmm, 256);
}

void jit_cpu_set_fxsave(struct jit_cpu *cpu, const uint8_t buf[512])
{
	jit_fxrstor(cpu, buf);
	memcpy(cpu->fpu.xmm, buf + 160, 256);
}

/* FNSTENV/FNSAVE header: 14 bytes (16-bit) or 28 bytes (32/64-bit). */
unsigned jit_fpu_env_store(struct jit_cpu *cpu, uint64_t lin, unsigned opsize)
{
	const struct jit_fpu *f = &cpu->fpu;
	uint16_t tw = 0;
	unsigned acc = acc_user(cpu, ACC_W), w = opsize == 2 ? 2 : 4;
	uint32_t v[7];

	for (unsigned i = 0; i < 8; i++)
		tw |= (uint16_t)(jit_fpu_tag(cpu, i) << (2 * i));
	v[0] = f->fcw | (w == 4 ? 0xffff0000u : 0);
	v[1] = f->fsw | (w == 4 ? 0xffff0000u : 0);
	v[2] = tw | (w == 4 ? 0xffff0000u : 0);
	v[3] = (uint32_t)f->fip;
	v[4] = (uint32_t)f->fop << 16;
	v[5] = (uint32_t)f->fdp;
	v[6] = w == 4 ? 0xffff0000u : 0;
	for (unsigned i = 0; i < 7; i++) {
		uint8_t t[4];

		memcpy(t, &v[i], 4);
		jit_write_bytes(cpu, cpu->lma ? lin + i * w : (uint32_t)(lin + i * w), t, w, acc);
	}
	return 7 * w;
}

unsigned jit_fpu_env_load(struct jit_cpu *cpu, uint64_t lin, unsigned opsize)
{
	struct jit_fpu *f = &cpu->fpu;
	unsigned acc = acc_user(cpu, ACC_R), w = opsize == 2 ? 2 : 4;
	uint32_t v[7] = { 0 };
	uint16_t tw;

	for (unsigned i = 0; i < 7; i++)
		jit_read_bytes(cpu, cpu->lma ? lin + i * w : (uint32_t)(lin + i * w), &v[i], w, acc);
	f->fcw = (uint16_t)v[0];
	f->fsw = (uint16_t)v[1];
	tw = (uint16_t)v[2];
	f->ftw = 0;
	for (unsigned i = 0; i < 8; i++)
		if (((tw >> (2 * i)) & 3) != 3)
			f->ftw |= (uint8_t)(1u << i);
	f->fip = v[3];
	f->fop = (uint16_t)(v[4] >> 16) & 0x7ff;
	f->fdp = v[5];
	return 7 * w;
}
