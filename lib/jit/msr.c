/*
 * Model-specific registers the CPU owns (Intel SDM vol. 4, chapter 2,
 * "architectural MSRs"; AMD APM vol. 2 for the SYSCALL MSRs).  The
 * machine gets the first look through bus->msr_read/msr_write (the APIC
 * base and x2APIC range are its business); an MSR neither knows raises
 * #GP in the guest.
 */
#include <errno.h>

#include "jit/internal.h"

#define MSR_TSC 0x10
#define MSR_PLATFORM_ID 0x17
#define MSR_APIC_BASE 0x1b
#define MSR_FEATURE_CONTROL 0x3a
#define MSR_BIOS_SIGN 0x8b
#define MSR_MTRRCAP 0xfe
#define MSR_ARCH_CAPABILITIES 0x10a
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define MSR_MCG_CAP 0x179
#define MSR_MCG_STATUS 0x17a
#define MSR_MISC_ENABLE 0x1a0
#define MSR_MTRR_VAR 0x200	/* ..0x20f: base/mask pairs */
#define MSR_PAT 0x277
#define MSR_MTRR_DEF 0x2ff
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS 0xc0000102
#define MSR_TSC_AUX 0xc0000103

static const uint32_t mtrr_fixed[11] = {
	0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
};

uint64_t jit_rdtsc(struct jit_cpu *cpu)
{
	return __builtin_ia32_rdtsc() + cpu->tsc_offset;
}

static uint64_t *mtrr_slot(struct jit_cpu *cpu, uint32_t msr)
{
	if (msr >= MSR_MTRR_VAR && msr < MSR_MTRR_VAR + 16)
		return &cpu->mtrr_var[msr - MSR_MTRR_VAR];
	for (unsigned i = 0; i < 11; i++)
		if (mtrr_fixed[i] == msr)
			return &cpu->mtrr_fixed[i];
	if (msr == MSR_MTRR_DEF)
		return &cpu->mtrr_def_type;
	return NULL;
}

int jit_msr_read(struct jit_cpu *cpu, uint32_t msr, uint64_t *v)
{
	uint64_t *slot;

	if (cpu->bus.msr_read && cpu->bus.msr_read(cpu->bus.opaque, cpu->index, msr, v) == 0)
		return 0;
	switch (msr) {
	case MSR_TSC: *v = jit_rdtsc(cpu); return 0;
	case MSR_APIC_BASE: *v = cpu->apic_base; return 0;
	case MSR_FEATURE_CONTROL: *v = 1; return 0;	/* locked, nothing enabled */
	case MSR_BIOS_SIGN: case MSR_PLATFORM_ID: *v = 0; return 0;
	case MSR_MTRRCAP: *v = 0x508; return 0;		/* 8 variable, fixed, WC */
	case MSR_ARCH_CAPABILITIES:
		/* RDCL_NO, SKIP_L1DFL_VMENTRY, SSB_NO, MDS_NO, PSCHANGE_MC_NO,
		 * TAA_NO, SBDR_SSDP_NO, FBSDP_NO, PSDP_NO, GDS_NO, RFDS_NO */
		*v = 0x1 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | (1u << 13) | (1u << 14) |
		     (1u << 15) | (1u << 26) | (1u << 27);
		return 0;
	case MSR_SYSENTER_CS: *v = cpu->sysenter_cs; return 0;
	case MSR_SYSENTER_ESP: *v = cpu->sysenter_esp; return 0;
	case MSR_SYSENTER_EIP: *v = cpu->sysenter_eip; return 0;
	case MSR_MCG_CAP: case MSR_MCG_STATUS: *v = 0; return 0;
	case MSR_MISC_ENABLE: *v = cpu->misc_enable; return 0;
	case MSR_PAT: *v = cpu->pat; return 0;
	case MSR_EFER: *v = cpu->efer; return 0;
	case MSR_STAR: *v = cpu->star; return 0;
	case MSR_LSTAR: *v = cpu->lstar; return 0;
	case MSR_CSTAR: *v = cpu->cstar; return 0;
	case MSR_SFMASK: *v = cpu->sfmask; return 0;
	case MSR_FS_BASE: *v = cpu->seg[SEG_FS].base; return 0;
	case MSR_GS_BASE: *v = cpu->seg[SEG_GS].base; return 0;
	case MSR_KERNEL_GS: *v = cpu->kernel_gs_base; return 0;
	case MSR_TSC_AUX: *v = cpu->tsc_aux; return 0;
	}
	slot = mtrr_slot(cpu, msr);
	if (!slot)
		return -ENOENT;
	*v = *slot;
	return 0;
}

static int write_efer(struct jit_cpu *cpu, uint64_t v)
{
	const uint64_t ok = EFER_SCE | EFER_LME | EFER_NXE | EFER_LMA;

	if (v & ~ok)
		return -EINVAL;
	if ((cpu->cr0 & CR0_PG) && ((v ^ cpu->efer) & EFER_LME))
		return -EINVAL;
	cpu->efer = (v & ~(uint64_t)EFER_LMA) | (cpu->efer & EFER_LMA);
	jit_tlb_flush(cpu, true);
	return 0;
}

static int addr_msr(uint64_t *dst, uint64_t v)
{
	if (!canonical(v))
		return -EINVAL;
	*dst = v;
	return 0;
}

int jit_msr_write(struct jit_cpu *cpu, uint32_t msr, uint64_t v)
{
	uint64_t *slot;

	if (cpu->bus.msr_write && cpu->bus.msr_write(cpu->bus.opaque, cpu->index, msr, v) == 0)
		return 0;
	switch (msr) {
	case MSR_TSC: cpu->tsc_offset = v - __builtin_ia32_rdtsc(); return 0;
	case MSR_APIC_BASE: cpu->apic_base = v; return 0;
	case MSR_BIOS_SIGN: case MSR_MCG_STATUS: return 0;
	case MSR_SYSENTER_CS: cpu->sysenter_cs = v & 0xffff; return 0;
	case MSR_SYSENTER_ESP: return addr_msr(&cpu->sysenter_esp, v);
	case MSR_SYSENTER_EIP: return addr_msr(&cpu->sysenter_eip, v);
	case MSR_MISC_ENABLE: cpu->misc_enable = v; return 0;
	case MSR_PAT: cpu->pat = v; return 0;
	case MSR_EFER: return write_efer(cpu, v);
	case MSR_STAR: cpu->star = v; return 0;
	case MSR_LSTAR: return addr_msr(&cpu->lstar, v);
	case MSR_CSTAR: return addr_msr(&cpu->cstar, v);
	case MSR_SFMASK: cpu->sfmask = (uint32_t)v; return 0;
	case MSR_FS_BASE: return addr_msr(&cpu->seg[SEG_FS].base, v);
	case MSR_GS_BASE: return addr_msr(&cpu->seg[SEG_GS].base, v);
	case MSR_KERNEL_GS: return addr_msr(&cpu->kernel_gs_base, v);
	case MSR_TSC_AUX: cpu->tsc_aux = (uint32_t)v; return 0;
	}
	slot = mtrr_slot(cpu, msr);
	if (!slot)
		return -ENOENT;
	*slot = v;
	return 0;
}
