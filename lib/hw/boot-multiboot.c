/*
 * Multiboot (version 1) kernels, following the Multiboot Specification
 * 0.6.96: the header in the first 8 KiB (with the a.out kludge when flag
 * 16 is set, else the ELF32 program headers), the information structure
 * with memory sizes, the command line ("kernel append", as QEMU passes
 * it), the initrd as one module and the memory map; entry in flat 32-bit
 * protected mode with EAX = 0x2BADB002 and EBX at the structure.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define MB_MAGIC 0x1badb002u
#define INFO_AT 0x9000
#define MMAP_AT 0x9100
#define CMD_AT 0x9400
#define MODS_AT 0x9300

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return p[0] | p[1] << 8; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }

static const uint8_t *find_header(const uint8_t *img, size_t len)
{
	for (size_t o = 0; o + 12 <= MIN(len, 8192); o += 4)
		if (rd32(img + o) == MB_MAGIC && rd32(img + o) + rd32(img + o + 4) + rd32(img + o + 8) == 0)
			return img + o;
	return NULL;
}

bool boot_is_multiboot(const uint8_t *img, size_t len)
{
	return find_header(img, len) != NULL;
}

static int place(struct machine *m, uint64_t addr, const uint8_t *src, size_t n, size_t memsz)
{
	uint8_t *dst = hw_ram_ptr(m, addr, memsz);

	if (!dst || n > memsz)
		return err_set(-EINVAL, "%s: segment at 0x%" PRIx64 " outside guest RAM",
			       m->cfg.kernel, addr);
	memcpy(dst, src, n);
	memset(dst + n, 0, memsz - n);
	return 0;
}

static int load_elf(struct machine *m, const uint8_t *img, size_t len, uint32_t *entry)
{
	if (len < 52 || memcmp(img, "\177ELF", 4) || img[4] != 1 || rd16(img + 18) != 3)
		return err_set(-EINVAL, "%s: multiboot kernel is not a 32-bit x86 ELF file", m->cfg.kernel);
	uint32_t phoff = rd32(img + 28);
	unsigned phent = rd16(img + 42), phnum = rd16(img + 44);
	*entry = rd32(img + 24);
	for (unsigned i = 0; i < phnum; i++) {
		const uint8_t *ph = img + phoff + (size_t)i * phent;
		if (phoff + (size_t)(i + 1) * phent > len || phent < 32)
			return err_set(-EINVAL, "%s: truncated ELF program headers", m->cfg.kernel);
		uint32_t off = rd32(ph + 4), paddr = rd32(ph + 12), fsz = rd32(ph + 16), msz = rd32(ph + 20);
		if (rd32(ph) != 1)
			continue;
		if ((uint64_t)off + fsz > len)
			return err_set(-EINVAL, "%s: ELF segment beyond end of file", m->cfg.kernel);
		int r = place(m, paddr, img + off, fsz, msz);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_kludge(struct machine *m, const uint8_t *img, size_t len,
		       const uint8_t *h, uint32_t *entry)
{
	uint32_t hdr = rd32(h + 12), load = rd32(h + 16), load_end = rd32(h + 20);
	uint32_t bss_end = rd32(h + 24), off = (h - img) - (hdr - load);
	size_t n = load_end ? load_end - load : len - off;

	*entry = rd32(h + 28);
	if (hdr < load || off > len || n > len - off || (bss_end && bss_end < load + n))
		return err_set(-EINVAL, "%s: bad multiboot load addresses", m->cfg.kernel);
	return place(m, load, img + off, n, bss_end ? bss_end - load : n);
}

static int add_module(struct machine *m, uint8_t *info, uint32_t at)
{
	uint8_t *buf;
	size_t len;
	int r;

	r = hw_read_file(m->cfg.initrd, &buf, &len);
	if (r < 0)
		return r;
	r = place(m, at, buf, len, len);
	free(buf);
	if (r < 0)
		return r;
	uint8_t *mod = hw_ram_ptr(m, MODS_AT, 16);
	size_t nl = strlen(m->cfg.initrd);
	char *name = hw_ram_ptr(m, CMD_AT + 0x800, MIN(nl + 1, 0x400));
	memcpy(name, m->cfg.initrd, MIN(nl, 0x3ff));
	name[MIN(nl, 0x3ff)] = 0;
	wr32(mod, at);
	wr32(mod + 4, at + len);
	wr32(mod + 8, CMD_AT + 0x800);
	wr32(mod + 12, 0);
	wr32(info + 20, 1);
	wr32(info + 24, MODS_AT);
	wr32(info, rd32(info) | 8);
	return 0;
}

int boot_multiboot(struct machine *m, const uint8_t *img, size_t len)
{
	const uint8_t *h = find_header(img, len);
	uint32_t entry = 0, flags = rd32(h + 4);
	uint8_t *info = hw_ram_ptr(m, INFO_AT, 0x1000);
	struct hw_e820 e[8];
	int n, r;

	r = (flags & 0x10000) ? load_kludge(m, img, len, h, &entry) : load_elf(m, img, len, &entry);
	if (r < 0)
		return r;
	memset(info, 0, 0x1000);
	wr32(info, 0x1 | 0x4 | 0x40);
	wr32(info + 4, 639);
	wr32(info + 8, (m->lowmem - 0x100000) / 1024);
	char *cmd = (char *)info + (CMD_AT - INFO_AT);
	snprintf(cmd, 0x800, "%s%s%s", m->cfg.kernel, m->cfg.append ? " " : "",
		 m->cfg.append ? m->cfg.append : "");
	wr32(info + 16, CMD_AT);
	n = hw_e820(m, e, 8);
	for (int i = 0; i < n; i++) {
		uint8_t *p = info + (MMAP_AT - INFO_AT) + 24 * i;
		wr32(p, 20);
		wr32(p + 4, e[i].addr); wr32(p + 8, e[i].addr >> 32);
		wr32(p + 12, e[i].size); wr32(p + 16, e[i].size >> 32);
		wr32(p + 20, e[i].type);
	}
	wr32(info + 44, 24 * n);
	wr32(info + 48, MMAP_AT);
	if (m->cfg.initrd) {
		r = add_module(m, info, 0x1000000);
		if (r < 0)
			return r;
	}
	LOG(LOG_BOOT, "multiboot kernel, entry 0x%x", entry);
	return boot_enter32(m, entry, 0x2badb002, INFO_AT, 0);
}

bool hw_kernel_is_multiboot(const char *path)
{
	uint8_t buf[8192];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	return boot_is_multiboot(buf, n);
}
