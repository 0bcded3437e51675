/*
 * A bzImage unpacked on the host.
 *
 * The protected-mode part of a bzImage is a small decompressor: in the
 * guest it inflates the real kernel (an ELF vmlinux compressed with xz,
 * gzip or zstd, boot protocol 2.08's payload_offset/payload_length),
 * copies each PT_LOAD segment to its physical address, picks a random
 * virtual base (KASLR) and applies the relocation table the build
 * appended to the ELF, then jumps to the kernel's startup_64.  Under an
 * emulated CPU that inflating is most of the boot: Debian's 8 MiB xz
 * payload costs about 4.5 G guest instructions.  Here the same steps run
 * natively (liblzma, zlib, libzstd) and the BSP enters startup_64 in
 * long mode, as Linux's 64-bit boot protocol describes (boot.rst: flat
 * 64-bit segments __BOOT_CS 0x10 and __BOOT_DS 0x18, identity-mapped page
 * tables, interrupts off, %rsi at the zero page).
 *
 * The relocation table (written by the kernel's arch/x86/tools/relocs at
 * build time) is a list of 32-bit words read from the end backwards:
 * 32-bit places, a zero, "inverse" 32-bit places (per-CPU references,
 * which move the other way), a zero, 64-bit places, a zero.  Each word is
 * the low half of the link-time virtual address of a place to patch.
 * Virtual KASLR follows the stub's rules (a base aligned to
 * kernel_alignment within the 1 GiB kernel image window, "nokaslr" turns
 * it off, KASLR_FLAG tells the kernel); the physical address stays the
 * preferred one.
 *
 * Anything this does not recognise (another compressor, a 32-bit kernel,
 * no payload fields, a payload that is not an x86-64 ELF) returns
 * -ENOTSUP and the caller boots the stub in the guest as before, which
 * `-machine kernel-decompress=guest` also forces.  A payload that fails
 * to inflate is an error: the stub would only halt on it.
 */
#include <elf.h>
#include <lzma.h>
#include <string.h>
#include <sys/random.h>
#include <zlib.h>
#include <zstd.h>

#include "common/common.h"
#include "hw/internal.h"

#define MAX_VMLINUX (512u << 20)
#define KERNEL_IMAGE_SIZE (1ull << 30)
#define KASLR_FLAG 0x02

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int unxz(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	uint64_t memlimit = 256u << 20;
	size_t in_pos = 0, out_pos = 0;
	lzma_ret r = lzma_stream_buffer_decode(&memlimit, LZMA_IGNORE_CHECK, NULL, in, &in_pos,
					       len, out, &out_pos, cap);

	*outlen = out_pos;
	return r == LZMA_OK ? 0 : -EINVAL;
}

static int ungzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	z_stream z = { .next_in = (uint8_t *)in, .avail_in = len, .next_out = out,
		       .avail_out = cap };
	int r;

	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	r = inflate(&z, Z_FINISH);
	*outlen = z.total_out;
	inflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -EINVAL;
}

static int unzstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	/* The kernel's zstd payload carries a 4-byte size trailer after the frame. */
	size_t n = ZSTD_decompress(out, cap, in, len >= 4 ? len - 4 : len);

	if (ZSTD_isError(n)) {
		n = ZSTD_decompress(out, cap, in, len);
		if (ZSTD_isError(n))
			return -EINVAL;
	}
	*outlen = n;
	return 0;
}

/* Inflates the payload into a new buffer (or reads it from the cache when
 * use_cache: *cached); -ENOTSUP for an unknown format. */
static int inflate_payload(struct machine *m, const uint8_t *p, size_t len, bool use_cache,
			   uint8_t **out, size_t *outlen, const char **what, bool *cached)
{
	int (*fn)(const uint8_t *, size_t, uint8_t *, size_t, size_t *);
	size_t cap = MAX_VMLINUX;
	int r;

	if (len >= 6 && !memcmp(p, "\xfd" "7zXZ\0", 6))
		fn = unxz, *what = "xz";
	else if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		fn = ungzip, *what = "gzip";
	else if (len >= 4 && le(p, 4) == 0xfd2fb528)
		fn = unzstd, *what = "zstd";
	else
		return -ENOTSUP;
	*cached = use_cache && boot_cache_get(m, p, len, out, outlen) == 0;
	if (*cached)
		return 0;
	/* gzip and the kernel's zstd end with the size: allocate exactly. */
	if (len >= 4 && fn != unxz && le(p + len - 4, 4) > 0 && le(p + len - 4, 4) <= MAX_VMLINUX)
		cap = le(p + len - 4, 4);
	*out = malloc(cap);
	if (!*out)
		return -ENOMEM;
	r = fn(p, len, *out, cap, outlen);
	if (r < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

struct vmlinux {
	const uint8_t *elf;
	size_t len;		/* ELF plus relocation table */
	size_t elf_end;		/* where the ELF's own bytes end */
	const Elf64_Ehdr *eh;
	uint64_t load;		/* the preferred physical address (LOAD_PHYSICAL_ADDR) */
	uint64_t init_size;
	int64_t map;		/* link-time virtual address - physical address */
};

/* Program header i, copied out (e_phoff need not be aligned). */
static Elf64_Phdr phdr(const struct vmlinux *v, int i)
{
	Elf64_Phdr ph;

	memcpy(&ph, v->elf + v->eh->e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

/* Checks the ELF and finds where it ends (the relocations follow). */
static int parse_elf(struct vmlinux *v)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)v->elf;
	bool first = true;

	if (v->len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phoff > v->len || (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > v->len - eh->e_phoff)
		return -ENOTSUP;
	v->eh = eh;
	v->elf_end = eh->e_phoff + eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_shnum && eh->e_shoff < v->len)
		v->elf_end = MAX(v->elf_end, eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize);
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph = phdr(v, i);

		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset > v->len || ph.p_filesz > v->len - ph.p_offset ||
		    ph.p_filesz > ph.p_memsz || ph.p_paddr < v->load ||
		    ph.p_paddr - v->load > v->init_size || ph.p_memsz > v->init_size - (ph.p_paddr - v->load))
			return err_set(-EINVAL, "a segment of the kernel lies outside its init_size");
		if (first)
			v->map = (int64_t)(ph.p_vaddr - ph.p_paddr);
		first = false;
		v->elf_end = MAX(v->elf_end, ph.p_offset + ph.p_filesz);
	}
	if (first || v->elf_end > v->len)
		return err_set(-EINVAL, "the kernel has no loadable segment");
	return 0;
}

/* Applies the relocation table for a virtual shift of delta. */
static int relocate(struct machine *m, const struct vmlinux *v, uint64_t delta)
{
	const uint8_t *lo = v->elf + ALIGN_UP(v->elf_end, 4), *p = v->elf + v->len;
	int kind = 0;	/* 0: 32-bit, 1: inverse 32-bit, 2: 64-bit */

	while (kind < 3) {
		if (p - 4 < lo)
			return err_set(-EINVAL, "the kernel's relocation table is truncated");
		p -= 4;
		uint32_t w = le(p, 4);
		if (!w) {
			kind++;
			continue;
		}
		uint64_t pa = (uint64_t)(int64_t)(int32_t)w - (uint64_t)v->map;
		unsigned n = kind == 2 ? 8 : 4;
		uint8_t *at = pa >= v->load && pa - v->load <= v->init_size - n ?
			hw_ram_ptr(m, pa, n) : NULL;
		if (!at)
			return err_set(-EINVAL, "a kernel relocation points outside the kernel");
		uint64_t val = le(at, n);
		val = kind == 1 ? val - delta : val + delta;
		for (unsigned i = 0; i < n; i++)
			at[i] = val >> (8 * i);
	}
	return 0;
}

static bool kaslr_off(const char *cmdline)
{
	for (const char *s = cmdline; (s = strstr(s, "nokaslr")); s += 7)
		if ((s == cmdline || s[-1] == ' ') && (s[7] == 0 || s[7] == ' '))
			return true;
	return false;
}

/* The random virtual shift, as the stub chooses it (0 is one choice). */
static uint64_t kaslr_delta(const struct vmlinux *v, uint64_t align)
{
	uint64_t slots, rnd = 0;

	if (!align || (align & (align - 1)) || v->load + v->init_size > KERNEL_IMAGE_SIZE)
		return 0;
	slots = 1 + (KERNEL_IMAGE_SIZE - v->load - v->init_size) / align;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return 0;
	return rnd % slots * align;
}

/* Copies the segments to guest RAM and clears the rest of init_size. */
static int place(struct machine *m, const struct vmlinux *v)
{
	uint8_t *dst = hw_ram_ptr(m, v->load, v->init_size);

	if (!dst)
		return err_set(-ENOMEM, "%s: the kernel needs more guest RAM (-m)", m->cfg.kernel);
	memset(dst, 0, v->init_size);
	for (int i = 0; i < v->eh->e_phnum; i++) {
		Elf64_Phdr ph = phdr(v, i);

		if (ph.p_type == PT_LOAD)
			memcpy(dst + (ph.p_paddr - v->load), v->elf + ph.p_offset, ph.p_filesz);
	}
	return 0;
}

/*
 * Unpacks the bzImage img into guest RAM and patches the zero page zp;
 * *entry gets the physical address of startup_64.  -ENOTSUP: boot the
 * stub in the guest instead.
 */
/* Places the inflated kernel v (out, outlen) and relocates it. */
static int load(struct machine *m, const uint8_t *img, struct vmlinux v, uint8_t *zp,
		const char *cmdline, uint64_t *entry, const char *what)
{
	uint64_t delta;
	bool kaslr;
	int r = parse_elf(&v);

	if (r == 0)
		r = place(m, &v);
	kaslr = r == 0 && v.len - v.elf_end >= 12 && !kaslr_off(cmdline);
	delta = kaslr ? kaslr_delta(&v, le(img + 0x230, 4)) : 0;
	if (delta)
		r = relocate(m, &v, delta);
	if (r == 0) {
		*entry = v.eh->e_entry >= (uint64_t)v.map ? v.eh->e_entry - v.map : v.eh->e_entry;
		if (*entry < v.load || *entry - v.load >= v.init_size)
			r = err_set(-EINVAL, "the kernel's entry point lies outside it");
	}
	if (r == 0) {
		if (kaslr)
			zp[0x211] |= KASLR_FLAG;
		LOG(LOG_BOOT, "kernel unpacked on the host: %s, %zu bytes, at 0x%" PRIx64
		    ", KASLR %s, virtual shift 0x%" PRIx64, what, v.len, v.load,
		    kaslr ? "on" : "off", delta);
	}
	return r;
}

int boot_unpack(struct machine *m, const uint8_t *img, size_t len, uint8_t *zp,
		const char *cmdline, uint64_t *entry)
{
	size_t setup = (size_t)((img[0x1f1] ? img[0x1f1] : 4) + 1) * 512, off, plen;
	struct vmlinux v = { .load = le(img + 0x258, 8), .init_size = le(img + 0x260, 4) };
	const char *what = "?";
	uint8_t *out = NULL;
	bool cached = false;
	int r;

	if (le(img + 0x206, 2) < 0x20c || !(img[0x236] & 1))	/* 2.12: XLF_KERNEL_64 */
		return -ENOTSUP;
	off = setup + le(img + 0x248, 4);
	plen = le(img + 0x24c, 4);
	if (off > len || plen > len - off || !v.init_size)
		return -ENOTSUP;
	if (v.load + v.init_size > m->lowmem)
		return err_set(-ENOMEM, "%s: the kernel needs more guest RAM (-m)", m->cfg.kernel);
	for (int pass = 0; pass < 2; pass++) {
		r = inflate_payload(m, img + off, plen, pass == 0, &out, &v.len, &what, &cached);
		if (r == -EINVAL)
			return err_set(r, "%s: the kernel's %s payload is corrupt", m->cfg.kernel, what);
		if (r < 0)
			return r == -ENOMEM ? err_set(r, "no memory to unpack the kernel") : r;
		v.elf = out;
		r = load(m, img, v, zp, cmdline, entry, what);
		if (r == 0 && !cached) {
			boot_cache_put(m, img + off, plen, out, v.len);	/* takes out */
			out = NULL;
		}
		free(out);
		out = NULL;
		if (r == 0 || !cached)
			break;
		LOG(LOG_BOOT, "the cached kernel does not load (%s): inflating it again", err_msg());
		err_clear();
	}
	return r;
}
