/*
 * Direct Linux boot without firmware, following the Linux x86 boot
 * protocol (Documentation/arch/x86/boot.rst, protocol 2.06 and later):
 * the protected-mode kernel of the bzImage is loaded at its preferred
 * address, the zero page (struct boot_params) is built here with the
 * setup header copied from the image, the e820 map, the command line,
 * the initrd placement and the ACPI RSDP address, and the BSP enters the
 * 32-bit entry point in flat protected mode with %esi at the zero page.
 * Also the flat 32-bit CPU state shared with the multiboot loader.
 *
 * By default a 64-bit kernel is unpacked on the host instead
 * (boot-unpack.c) and entered at startup_64 in long mode; the bzImage's
 * own decompressor runs in the guest with kernel-decompress=guest or
 * when the payload is not one the host can unpack.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define ZERO_PAGE 0x10000
#define CMDLINE_AT 0x20000
#define GDT_AT 0x1000
#define PGTABLE_AT 0x30000	/* 6 pages: PML4, PDPT, 4 PDs */

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* BSP with flat code (0x10) and data (0x18) segments at r->rip, paging
 * and long mode as long64 says, interrupts off. */
static int enter_flat(struct machine *m, bool long64, struct hw_regs *r)
{
	const uint64_t gdt[4] = { 0, 0, long64 ? 0x00af9b000000ffffull : 0x00cf9b000000ffffull,
				  0x00cf93000000ffffull };
	struct hw_segment code = { .base = 0, .limit = 0xffffffff, .selector = 0x10,
		.type = 0xb, .present = 1, .db = !long64, .s = 1, .l = long64, .g = 1 };
	struct hw_segment data = { .base = 0, .limit = 0xffffffff, .selector = 0x18,
		.type = 0x3, .present = 1, .db = 1, .s = 1, .g = 1 };
	void *vc = m->vcpu[0].accel_vcpu;
	uint8_t *g = hw_ram_ptr(m, GDT_AT, sizeof(gdt));
	struct hw_sregs s;
	int ret;

	if (!g)
		return err_set(-EINVAL, "no RAM for the boot GDT");
	for (int i = 0; i < 4; i++)
		put_le(g + 8 * i, gdt[i], 8);
	ret = m->accel->get_sregs(vc, &s);
	if (ret < 0)
		return ret;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = (struct hw_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	s.ldt = (struct hw_segment){ .limit = 0xffff, .type = 0x2, .present = 1 };
	s.gdt = (struct hw_dtable){ GDT_AT, sizeof(gdt) - 1 };
	s.idt = (struct hw_dtable){ 0, 0 };
	s.cr0 = long64 ? 0x80000011 : 0x11;	/* (PG,) ET, PE */
	s.cr3 = long64 ? PGTABLE_AT : 0;
	s.cr4 = long64 ? 0x20 : 0;		/* PAE */
	s.efer = long64 ? 0x500 : 0;		/* LMA, LME */
	ret = m->accel->set_sregs(vc, &s);
	if (ret < 0)
		return ret;
	r->rflags = 2;
	r->gpr[4] = 0x8000;
	apic_bios_setup(m->vcpu[0].apic);
	return m->accel->set_regs(vc, r);
}

/* BSP in flat 32-bit protected mode at eip, paging off, interrupts off. */
int boot_enter32(struct machine *m, uint32_t eip, uint32_t eax, uint32_t ebx, uint32_t esi)
{
	struct hw_regs r = { .rip = eip };

	r.gpr[0] = eax;
	r.gpr[3] = ebx;
	r.gpr[6] = esi;
	return enter_flat(m, false, &r);
}

/* Identity page tables for the low 4 GiB (2 MiB pages) at PGTABLE_AT. */
static int identity_map(struct machine *m)
{
	uint8_t *t = hw_ram_ptr(m, PGTABLE_AT, 6 * 4096);

	if (!t)
		return err_set(-EINVAL, "no RAM for the boot page tables");
	memset(t, 0, 6 * 4096);
	put_le(t, PGTABLE_AT + 0x1000 + 3, 8);			/* PML4[0] -> PDPT */
	for (int i = 0; i < 4; i++) {
		put_le(t + 0x1000 + 8 * i, PGTABLE_AT + 0x2000 + 0x1000 * i + 3, 8);
		for (int j = 0; j < 512; j++)		/* present, writable, 2 MiB */
			put_le(t + 0x2000 + 0x1000 * i + 8 * j,
			       ((uint64_t)i << 30 | (uint64_t)j << 21) | 0x83, 8);
	}
	return 0;
}

/* BSP in 64-bit mode at rip on identity page tables (boot.rst's 64-bit
 * boot protocol: __BOOT_CS 0x10, __BOOT_DS 0x18, %rsi at the zero page). */
static int boot_enter64(struct machine *m, uint64_t rip, uint64_t rsi)
{
	struct hw_regs r = { .rip = rip };
	int ret = identity_map(m);

	if (ret < 0)
		return ret;
	r.gpr[6] = rsi;
	return enter_flat(m, true, &r);
}

static int load_initrd(struct machine *m, uint8_t *zp, uint64_t kernel_end)
{
	uint8_t *buf, *dst;
	size_t len;
	uint64_t max = get_le(zp + 0x22c, 4), at;
	int r;

	if (!m->cfg.initrd)
		return 0;
	r = hw_read_file(m->cfg.initrd, &buf, &len);
	if (r < 0)
		return r;
	if (!max)
		max = 0x37ffffff;
	at = ALIGN_DOWN(MIN(max + 1, m->lowmem) - len, 0x1000);
	if (len >= m->lowmem || at < kernel_end || !(dst = hw_ram_ptr(m, at, len))) {
		free(buf);
		return err_set(-ENOMEM, "%s: initrd of %zu bytes does not fit in guest RAM",
			       m->cfg.initrd, len);
	}
	memcpy(dst, buf, len);
	free(buf);
	put_le(zp + 0x218, at, 4);
	put_le(zp + 0x21c, len, 4);
	LOG(LOG_BOOT, "initrd at 0x%" PRIx64 ", %zu bytes", at, len);
	return 0;
}

static void fill_e820(struct machine *m, uint8_t *zp)
{
	struct hw_e820 e[8];
	int n = hw_e820(m, e, 8);

	zp[0x1e8] = n;
	for (int i = 0; i < n; i++) {
		put_le(zp + 0x2d0 + 20 * i, e[i].addr, 8);
		put_le(zp + 0x2d0 + 20 * i + 8, e[i].size, 8);
		put_le(zp + 0x2d0 + 20 * i + 16, e[i].type, 4);
	}
}

int boot_linux(struct machine *m, const uint8_t *img, size_t len)
{
	unsigned setup_sects, ver;
	size_t setup, klen;
	uint64_t load, init_size;
	uint8_t *zp = hw_ram_ptr(m, ZERO_PAGE, 4096), *dst;
	const char *append = m->cfg.append ? m->cfg.append : "";
	int r;

	if (len < 0x300 || get_le(img + 0x202, 4) != 0x53726448)	/* "HdrS" */
		return err_set(-EINVAL, "%s: not a Linux bzImage or multiboot kernel", m->cfg.kernel);
	ver = get_le(img + 0x206, 2);
	if (ver < 0x206 || !(img[0x211] & 1))
		return err_set(-EINVAL, "%s: Linux boot protocol %u.%02u is too old (need a bzImage, 2.06+)",
			       m->cfg.kernel, ver >> 8, ver & 0xff);
	setup_sects = img[0x1f1] ? img[0x1f1] : 4;
	setup = (setup_sects + 1) * 512;
	if (setup >= len)
		return err_set(-EINVAL, "%s: truncated bzImage", m->cfg.kernel);
	klen = len - setup;
	load = 0x100000;
	init_size = ver >= 0x20a ? get_le(img + 0x260, 4) : klen * 4;
	if (ver >= 0x20a && img[0x234] && get_le(img + 0x258, 8) + init_size < m->lowmem / 2)
		load = get_le(img + 0x258, 8);
	if (load + MAX(init_size, klen) > m->lowmem || !(dst = hw_ram_ptr(m, load, klen)))
		return err_set(-ENOMEM, "%s: the kernel needs more guest RAM (-m)", m->cfg.kernel);

	memset(zp, 0, 4096);
	memcpy(zp + 0x1f1, img + 0x1f1, MIN(0x202 + img[0x201], 0x280) - 0x1f1);
	zp[0x210] = 0xff;			/* type_of_loader: undefined */
	zp[0x211] |= 0x80;			/* CAN_USE_HEAP */
	put_le(zp + 0x224, 0xfe00, 2);
	put_le(zp + 0x214, load, 4);
	size_t cl = strlen(append), max = ver >= 0x206 ? get_le(img + 0x238, 4) : 255;
	if (cl > max)
		return err_set(-EINVAL, "kernel command line longer than %zu bytes", max);
	memcpy(hw_ram_ptr(m, CMDLINE_AT, cl + 1), append, cl + 1);
	put_le(zp + 0x228, CMDLINE_AT, 4);
	put_le(zp + 0x070, m->rsdp_addr, 8);
	fill_e820(m, zp);
	r = load_initrd(m, zp, load + init_size);
	if (r < 0)
		return r;
	if (!m->cfg.guest_decompress && load == get_le(img + 0x258, 8)) {
		uint64_t entry;

		r = boot_unpack(m, img, len, zp, append, &entry);
		if (r == 0)
			return boot_enter64(m, entry, ZERO_PAGE);
		if (r != -ENOTSUP)
			return r;
	}
	memcpy(dst, img + setup, klen);
	LOG(LOG_BOOT, "Linux boot protocol %u.%02u, kernel at 0x%" PRIx64 " (%zu bytes)",
	    ver >> 8, ver & 0xff, load, klen);
	return boot_enter32(m, load, 0, 0, ZERO_PAGE);
}
