/*
 * CPUID: the feature set this CPU advertises (Intel SDM vol. 2, "CPUID";
 * AMD APM vol. 3, appendix E for the 8000_00xx leaves).  Honest by rule:
 * a bit is set only when the instructions and state behind it are
 * implemented here.  IA32_ARCH_CAPABILITIES says what is true of an
 * interpreter that never speculates: no Meltdown, MDS, TAA, SSB and the
 * like, so guests skip page-table isolation and buffer clearing.  Notably
 * absent: AVX (and XSAVE), SSE4.1/4.2, AES,
 * RDRAND, FSGSBASE, PCID, x2APIC, MCE/MCA, TSC-deadline.  Leaves 15h
 * and 16h give the TSC's rate (tsc.c), so guests need not calibrate.
 */
#include "jit/internal.h"

/* leaf 1 EDX */
#define L1D_FPU (1u << 0)
#define L1D_DE (1u << 2)
#define L1D_PSE (1u << 3)
#define L1D_TSC (1u << 4)
#define L1D_MSR (1u << 5)
#define L1D_PAE (1u << 6)
#define L1D_CX8 (1u << 8)
#define L1D_APIC (1u << 9)
#define L1D_SEP (1u << 11)
#define L1D_MTRR (1u << 12)
#define L1D_PGE (1u << 13)
#define L1D_CMOV (1u << 15)
#define L1D_PAT (1u << 16)
#define L1D_CLFSH (1u << 19)
#define L1D_MMX (1u << 23)
#define L1D_FXSR (1u << 24)
#define L1D_SSE (1u << 25)
#define L1D_SSE2 (1u << 26)
/* leaf 1 ECX */
#define L1C_SSE3 (1u << 0)
#define L1C_SSSE3 (1u << 9)
#define L1C_CX16 (1u << 13)
#define L1C_MOVBE (1u << 22)
#define L1C_POPCNT (1u << 23)
/* leaf 7 subleaf 0: ERMS and FSRM promise that REP MOVSB and REP STOSB
 * are the fast way to copy and fill, short or long, which is true here
 * (string.c copies a page at a time): Linux then picks them for memcpy,
 * memset, copy_to/from_user, clear_page and memmove instead of its
 * register loops or a REP MOVSQ/STOSQ plus a REP MOVSB/STOSB tail. */
#define L7B_ERMS (1u << 9)
#define L7D_FSRM (1u << 4)
#define L7D_ARCH_CAP (1u << 29)	/* IA32_ARCH_CAPABILITIES */
/* leaf 8000_0001 */
#define X1D_SYSCALL (1u << 11)
#define X1D_NX (1u << 20)
#define X1D_PDPE1GB (1u << 26)
#define X1D_RDTSCP (1u << 27)
#define X1D_LM (1u << 29)
#define X1C_LAHF (1u << 0)
#define X1C_ABM (1u << 5)

static void str4(uint32_t *out, const char *s)
{
	memcpy(out, s, 4);
}

static void brand(uint32_t leaf, uint32_t r[4])
{
	static const char name[48] = "vm-jit x86-64 software CPU";

	memcpy(r, name + (leaf - 0x80000002) * 16, 16);
}

void jit_cpuid(struct jit_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	memset(r, 0, 16);
	switch (leaf) {
	case 0:
		r[0] = 0x16;
		str4(&r[1], "Genu");
		str4(&r[3], "ineI");
		str4(&r[2], "ntel");
		break;
	case 1:
		r[0] = 0x000006f1;	/* family 6, model 15, stepping 1 */
		r[1] = (8u << 8) | (1u << 16) | ((uint32_t)cpu->index << 24);
		r[2] = L1C_SSE3 | L1C_SSSE3 | L1C_CX16 | L1C_MOVBE | L1C_POPCNT;
		r[3] = L1D_FPU | L1D_DE | L1D_PSE | L1D_TSC | L1D_MSR | L1D_PAE | L1D_CX8 |
		       L1D_APIC | L1D_SEP | L1D_MTRR | L1D_PGE | L1D_CMOV | L1D_PAT |
		       L1D_CLFSH | L1D_MMX | L1D_FXSR | L1D_SSE | L1D_SSE2;
		break;
	case 7:
		if (sub == 0) {
			r[1] = L7B_ERMS;
			r[3] = L7D_FSRM | L7D_ARCH_CAP;
		}
		break;
	case 0x15:		/* TSC = crystal * EBX / EAX (tsc.c) */
		if (jit_tsc_ratio(1000000, &r[1], &r[0]))
			r[2] = 1000000000;	/* the APIC timer's 1 GHz (lib/hw apic.c) */
		break;
	case 0x16:		/* base and maximum MHz, bus MHz */
		r[0] = r[1] = (uint32_t)((jit_tsc_khz() + 500) / 1000);
		r[2] = r[0] ? 100 : 0;
		break;
	case 0x80000000:
		r[0] = 0x80000008;
		break;
	case 0x80000001:
		r[2] = X1C_LAHF | X1C_ABM;
		r[3] = X1D_SYSCALL | X1D_NX | X1D_PDPE1GB | X1D_RDTSCP | X1D_LM;
		break;
	case 0x80000002:
	case 0x80000003:
	case 0x80000004:
		brand(leaf, r);
		break;
	case 0x80000006:
		r[2] = (512u << 16) | (6u << 12) | 64;	/* 512 KiB L2, 8-way, 64-byte lines */
		break;
	case 0x80000007:
		r[3] = 1u << 8;		/* invariant TSC: it is the host's */
		break;
	case 0x80000008:
		r[0] = 40 | (48 << 8);
		break;
	}
}
