/*
 * The whole machine as one stream: what savevm stores in a qcow2 image's
 * VM-state area, what loadvm and -loadvm read back, and what migration
 * would send.  It plays the role of QEMU's migration stream, in a format
 * of our own:
 *
 *   header   "VMSTATE\0", u32 format version (1), u32 vCPU count,
 *            u64 RAM size
 *   sections tag (4 bytes), u32 section version, u64 length, data:
 *     "CPU " one per vCPU: index, hw_regs, hw_sregs, a flags byte (1:
 *            the accelerator's extra state follows, 2: and then the
 *            vector of an interrupt being injected), the extra state:
 *            FXSAVE, XCR0, DR0-7, MSRs and the state at the instruction
 *            boundary (halted, shadow, NMI), then that vector
 *     "DEVS" the device sections of machine_save_devices (build.c)
 *     "RAM " guest RAM in 4 MiB chunks: a bitmap of non-zero pages, then
 *            those pages as one zstd frame
 *     "END " CRC-32 (zlib) of every byte before this section
 *
 * All integers are little-endian.  Loading treats the bytes as untrusted:
 * the whole stream (structure, sizes, CRC) is checked before anything in
 * the machine changes; only a stream that passes the CRC yet fails in a
 * device's or the accelerator's own checks leaves the machine partly
 * loaded, which is reported as -EIO so the caller keeps it stopped.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/common.h"
#include "hw/internal.h"

/* The MSRs a snapshot carries, for both accelerators: TSC, SYSENTER,
 * MISC_ENABLE, PAT, the MTRRs, STAR/LSTAR/CSTAR/SFMASK, KERNEL_GS_BASE
 * and TSC_AUX (FS/GS bases and EFER travel with the segment state). */
const uint32_t hw_saved_msrs[] = {
	0x10, 0x174, 0x175, 0x176, 0x1a0, 0x277, 0x2ff,
	0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207,
	0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f,
	0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102, 0xc0000103,
};
const size_t hw_n_saved_msrs = ARRAY_SIZE(hw_saved_msrs);

#define VMS_VERSION 1
#define VMS_CHUNK_PAGES 1024u		/* 4 MiB of RAM per chunk */
#define VMS_PAGE 4096u
#define VMS_ZSTD_LEVEL 1
#define VMS_DRAIN_MS 5000		/* longest wait for devices' requests */

static const char vms_magic[8] = "VMSTATE";

int machine_write_phys(struct machine *m, uint64_t gpa, const void *buf, size_t len)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = hw_dma_write(m, gpa, buf, len);
	pthread_mutex_unlock(&m->lock);
	return r < 0 ? err_set(-EFAULT, "cannot access memory at 0x%llx",
			       (unsigned long long)gpa) : 0;
}

/* ---- writing ---- */

static size_t section_begin(struct hw_wbuf *w, const char *tag, uint32_t version)
{
	hw_putb(w, tag, 4);
	hw_put32(w, version);
	hw_put64(w, 0);
	return w->len;
}

static void section_end(struct hw_wbuf *w, size_t start)
{
	uint64_t n = w->len - start;

	for (int b = 0; b < 8; b++)
		w->p[start - 8 + b] = (uint8_t)(n >> (8 * b));
}

static void put_seg(struct hw_wbuf *w, const struct hw_segment *s)
{
	uint8_t b[] = { s->type, s->present, s->dpl, s->db, s->s, s->l, s->g, s->avl,
			s->unusable };

	hw_put64(w, s->base);
	hw_put32(w, s->limit);
	hw_put16(w, s->selector);
	hw_putb(w, b, sizeof(b));
}

static void put_sregs(struct hw_wbuf *w, const struct hw_sregs *s)
{
	const struct hw_segment *seg[8] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss,
					    &s->tr, &s->ldt };
	uint64_t cr[7] = { s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer, s->apic_base };

	for (int i = 0; i < 8; i++)
		put_seg(w, seg[i]);
	hw_put64(w, s->gdt.base);
	hw_put16(w, s->gdt.limit);
	hw_put64(w, s->idt.base);
	hw_put16(w, s->idt.limit);
	for (int i = 0; i < 7; i++)
		hw_put64(w, cr[i]);
}

static void put_extra(struct hw_wbuf *w, const struct hw_cpu_extra *x)
{
	uint8_t f[] = { x->halted, x->wait_sipi, x->shadow, x->nmi_blocked, x->nmi_pending };

	hw_putb(w, x->fxsave, sizeof(x->fxsave));
	hw_put64(w, x->xcr0);
	for (int i = 0; i < 8; i++)
		hw_put64(w, x->dr[i]);
	hw_putb(w, f, sizeof(f));
	hw_put32(w, x->nmsrs);
	for (uint32_t i = 0; i < x->nmsrs && i < HW_CPU_MAX_MSRS; i++) {
		hw_put32(w, x->msrs[i].index);
		hw_put64(w, x->msrs[i].value);
	}
}

static int save_cpu(struct machine *m, int i, struct hw_wbuf *w)
{
	void *v = m->vcpu[i].accel_vcpu;
	struct hw_regs r;
	struct hw_sregs s;
	struct hw_cpu_extra *x = NULL;
	int ret;

	if ((ret = m->accel->get_regs(v, &r)) < 0 || (ret = m->accel->get_sregs(v, &s)) < 0)
		return ret;
	if (m->accel->get_extra) {
		x = xmalloc(sizeof(*x));
		if ((ret = m->accel->get_extra(v, x)) < 0) {
			free(x);
			return ret;
		}
	}
	size_t at = section_begin(w, "CPU ", 1);
	hw_put32(w, (uint32_t)i);
	for (int k = 0; k < 16; k++)
		hw_put64(w, r.gpr[k]);
	hw_put64(w, r.rip);
	hw_put64(w, r.rflags);
	put_sregs(w, &s);
	hw_put8(w, (x != NULL) | (x && x->irq_injected ? 2 : 0));
	if (x)
		put_extra(w, x);
	if (x && x->irq_injected)
		hw_put8(w, x->irq_vector);
	section_end(w, at);
	free(x);
	return 0;
}

static bool page_zero(const uint8_t *p)
{
	static const uint8_t zero[64];

	for (unsigned i = 0; i < VMS_PAGE; i += 64)
		if (memcmp(p + i, zero, 64))
			return false;
	return true;
}

/* RAM: per chunk a bitmap of non-zero pages, then a zstd frame of them. */
static int save_ram(struct machine *m, struct hw_wbuf *w)
{
	size_t at = section_begin(w, "RAM ", 1), bound = ZSTD_compressBound(VMS_CHUNK_PAGES * VMS_PAGE);
	uint8_t *scratch = xmalloc(VMS_CHUNK_PAGES * VMS_PAGE), *dst = xmalloc(bound);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	uint64_t pages = m->ram_size / VMS_PAGE;
	int ret = 0;

	hw_put64(w, m->ram_size);
	hw_put32(w, VMS_CHUNK_PAGES);
	for (uint64_t c = 0; c < pages && ret == 0; c += VMS_CHUNK_PAGES) {
		uint8_t bitmap[VMS_CHUNK_PAGES / 8] = { 0 };
		size_t n = 0, z;

		for (unsigned k = 0; k < VMS_CHUNK_PAGES && c + k < pages; k++) {
			const uint8_t *p = m->ram + (c + k) * VMS_PAGE;
			if (page_zero(p))
				continue;
			bitmap[k / 8] |= (uint8_t)(1u << (k % 8));
			memcpy(scratch + n, p, VMS_PAGE);
			n += VMS_PAGE;
		}
		hw_putb(w, bitmap, sizeof(bitmap));
		z = n ? ZSTD_compressCCtx(cc, dst, bound, scratch, n, VMS_ZSTD_LEVEL) : 0;
		if (ZSTD_isError(z))
			ret = err_set(-EIO, "vmstate: zstd: %s", ZSTD_getErrorName(z));
		hw_put32(w, (uint32_t)z);
		hw_putb(w, dst, z);
	}
	section_end(w, at);
	ZSTD_freeCCtx(cc);
	free(scratch);
	free(dst);
	return ret;
}

/* Devices and RAM, with the lock held. */
static int save_locked(struct machine *m, struct hw_wbuf *w)
{
	uint8_t *devs;
	size_t dlen, at;
	int r = 0;

	if ((r = machine_save_devices(m, &devs, &dlen)) < 0)
		return r;
	at = section_begin(w, "DEVS", 1);
	hw_putb(w, devs, dlen);
	section_end(w, at);
	free(devs);
	if ((r = save_ram(m, w)) < 0)
		return r;
	uint32_t crc = (uint32_t)crc32(0, w->p, (uInt)w->len);
	at = section_begin(w, "END ", 1);
	hw_put32(w, crc);
	section_end(w, at);
	return 0;
}

/* The first device still serving requests of the guest's, or NULL (lock
 * held). */
static const char *busy_device_locked(struct machine *m)
{
	for (int i = 0; i < m->ndevs; i++)
		if (m->devs[i].ops->busy && m->devs[i].ops->busy(m->devs[i].dev))
			return m->devs[i].ops->name;
	return NULL;
}

/* With the vCPUs parked (lock held on entry and exit, dropped while
 * waiting): wait until every request a device took from the guest has
 * completed.  A disk request runs on its back-end's threads and
 * completes under the lock; one still running when the rings are saved
 * would be in a snapshot as taken but never answered (its available-ring
 * entry consumed, no used entry), and -loadvm could not run it again:
 * the guest waits for it for ever.  Nothing new starts meanwhile: the
 * vCPUs are parked and the event thread keeps doorbells for later while
 * the machine is paused.  A request that does not end (a back-end that
 * hangs, or one waiting under rerror=stop for the machine to run) is
 * given up on after VMS_DRAIN_MS, with a warning. */
static void drain_locked(struct machine *m, const char *what)
{
	int64_t until = hw_clock_ns() + VMS_DRAIN_MS * 1000000ll;
	const char *dev;

	while ((dev = busy_device_locked(m))) {
		if (hw_clock_ns() > until) {
			log_msg(LOG_WARN, "%s: %s still serves requests after %d ms; they are lost", what,
				dev, VMS_DRAIN_MS);
			return;
		}
		pthread_mutex_unlock(&m->lock);
		usleep(500);
		pthread_mutex_lock(&m->lock);
	}
}

int machine_save_state(struct machine *m, uint8_t **buf, size_t *len)
{
	struct hw_wbuf w = { 0 };
	bool was;
	int r = 0;

	pthread_mutex_lock(&m->lock);
	was = hw_park_all(m);
	/* The vCPUs stay parked; their MSRs are read through the bus, which
	 * locks. */
	pthread_mutex_unlock(&m->lock);
	hw_putb(&w, vms_magic, 8);
	hw_put32(&w, VMS_VERSION);
	hw_put32(&w, (uint32_t)m->ncpu);
	hw_put64(&w, m->ram_size);
	for (int i = 0, e; i < m->ncpu && r == 0; i++)
		if ((e = save_cpu(m, i, &w)) < 0)
			r = e;
	pthread_mutex_lock(&m->lock);
	drain_locked(m, "savevm");
	if (r == 0)
		r = save_locked(m, &w);
	hw_unpark_all(m, was);
	pthread_mutex_unlock(&m->lock);
	if (r < 0) {
		free(w.p);
		return r;
	}
	*buf = w.p;
	*len = w.len;
	return 0;
}

/* ---- reading ---- */

/* Where each section's data is, found by vms_check. */
struct vms_layout {
	const uint8_t *cpu[HW_MAX_CPUS];
	size_t cpu_len[HW_MAX_CPUS];
	const uint8_t *devs, *ram;
	size_t devs_len, ram_len;
};

static int check_section(struct machine *m, struct vms_layout *l, const char *tag,
			 uint32_t ver, const uint8_t *p, uint64_t n)
{
	if (ver != 1)
		return err_set(-EINVAL, "vmstate: section '%.4s' version %u not supported", tag, ver);
	if (!memcmp(tag, "CPU ", 4)) {
		struct hw_rbuf r = { p, n, 0, 0 };
		uint32_t i = hw_get_index(&r, (uint32_t)m->ncpu, 4);
		if (r.err || l->cpu[i])
			return err_set(-EINVAL, "vmstate: bad CPU section");
		l->cpu[i] = p, l->cpu_len[i] = n;
	} else if (!memcmp(tag, "DEVS", 4)) {
		l->devs = p, l->devs_len = n;
	} else if (!memcmp(tag, "RAM ", 4)) {
		l->ram = p, l->ram_len = n;
	} else {
		return err_set(-EINVAL, "vmstate: unknown section '%.4s'", tag);
	}
	return 0;
}

static int vms_check(struct machine *m, const uint8_t *buf, size_t len, struct vms_layout *l)
{
	struct hw_rbuf r = { buf, len, 0, 0 };
	char magic[8], tag[4];
	uint32_t ver, ncpu;
	uint64_t ram;

	memset(l, 0, sizeof(*l));
	hw_getb(&r, magic, 8);
	ver = hw_get32(&r), ncpu = hw_get32(&r), ram = hw_get64(&r);
	if (r.err || memcmp(magic, vms_magic, 8))
		return err_set(-EINVAL, "vmstate: not a VM state stream");
	if (ver != VMS_VERSION)
		return err_set(-EINVAL, "vmstate: format version %u not supported", ver);
	if (ncpu != (uint32_t)m->ncpu || ram != m->ram_size)
		return err_set(-EINVAL, "vmstate: saved from a machine with %u vCPUs and %llu MiB,"
			       " this one has %d and %llu MiB", ncpu, (unsigned long long)(ram >> 20),
			       m->ncpu, (unsigned long long)(m->ram_size >> 20));
	for (;;) {
		size_t start = r.pos;
		hw_getb(&r, tag, 4);
		uint32_t sv = hw_get32(&r);
		uint64_t n = hw_get64(&r);
		if (r.err || n > r.len - r.pos)
			return err_set(-EINVAL, "vmstate: truncated");
		if (!memcmp(tag, "END ", 4)) {
			uint32_t want = hw_get32(&r);
			if (n != 4 || r.pos != r.len)
				return err_set(-EINVAL, "vmstate: bad end section");
			if ((uint32_t)crc32(0, buf, (uInt)start) != want)
				return err_set(-EINVAL, "vmstate: checksum mismatch (corrupt VM state)");
			break;
		}
		int e = check_section(m, l, tag, sv, r.p + r.pos, n);
		if (e < 0)
			return e;
		r.pos += n;
	}
	for (int i = 0; i < m->ncpu; i++)
		if (!l->cpu[i])
			return err_set(-EINVAL, "vmstate: no state for vCPU %d", i);
	if (!l->devs || !l->ram)
		return err_set(-EINVAL, "vmstate: incomplete (no %s section)", l->devs ? "RAM" : "device");
	return 0;
}

static void get_seg(struct hw_rbuf *r, struct hw_segment *s)
{
	uint8_t b[9];

	s->base = hw_get64(r);
	s->limit = hw_get32(r);
	s->selector = hw_get16(r);
	hw_getb(r, b, sizeof(b));
	s->type = b[0] & 15, s->present = b[1] & 1, s->dpl = b[2] & 3, s->db = b[3] & 1;
	s->s = b[4] & 1, s->l = b[5] & 1, s->g = b[6] & 1, s->avl = b[7] & 1;
	s->unusable = b[8] & 1;
}

static void get_sregs(struct hw_rbuf *r, struct hw_sregs *s)
{
	struct hw_segment *seg[8] = { &s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss,
				      &s->tr, &s->ldt };
	uint64_t *cr[7] = { &s->cr0, &s->cr2, &s->cr3, &s->cr4, &s->cr8, &s->efer,
			    &s->apic_base };

	for (int i = 0; i < 8; i++)
		get_seg(r, seg[i]);
	s->gdt.base = hw_get64(r);
	s->gdt.limit = hw_get16(r);
	s->idt.base = hw_get64(r);
	s->idt.limit = hw_get16(r);
	for (int i = 0; i < 7; i++)
		*cr[i] = hw_get64(r);
}

static void get_extra(struct hw_rbuf *r, struct hw_cpu_extra *x)
{
	uint8_t f[5];

	hw_getb(r, x->fxsave, sizeof(x->fxsave));
	x->xcr0 = hw_get64(r);
	for (int i = 0; i < 8; i++)
		x->dr[i] = hw_get64(r);
	hw_getb(r, f, sizeof(f));
	x->halted = f[0] & 1, x->wait_sipi = f[1] & 1, x->shadow = f[2] & 1;
	x->nmi_blocked = f[3] & 1, x->nmi_pending = f[4] & 1;
	x->nmsrs = hw_get_index(r, HW_CPU_MAX_MSRS + 1, 4);
	for (uint32_t i = 0; i < x->nmsrs && !r->err; i++) {
		x->msrs[i].index = hw_get32(r);
		x->msrs[i].value = hw_get64(r);
	}
}

/* Parse a CPU section fully (no machine change); *has_extra when it
 * carries the accelerator's extra state. */
static int parse_cpu(const uint8_t *p, size_t n, struct hw_regs *rg, struct hw_sregs *s,
		     struct hw_cpu_extra *x, bool *has_extra)
{
	struct hw_rbuf r = { p, n, 0, 0 };

	hw_get32(&r);
	for (int k = 0; k < 16; k++)
		rg->gpr[k] = hw_get64(&r);
	rg->rip = hw_get64(&r);
	rg->rflags = hw_get64(&r);
	get_sregs(&r, s);
	uint8_t flags = hw_get8(&r);
	*has_extra = flags & 1;
	if (*has_extra) {
		get_extra(&r, x);
		x->irq_injected = flags & 2;
		x->irq_vector = x->irq_injected ? hw_get8(&r) : 0;
	}
	if (r.err || r.pos != r.len)
		return err_set(-EINVAL, "vmstate: bad CPU section");
	return 0;
}

static int load_cpu(struct machine *m, int i, const struct vms_layout *l)
{
	struct hw_regs rg;
	struct hw_sregs s;
	struct hw_cpu_extra *x = xzalloc(sizeof(*x));
	void *v = m->vcpu[i].accel_vcpu;
	bool has;
	int r = parse_cpu(l->cpu[i], l->cpu_len[i], &rg, &s, x, &has);

	if (r == 0)
		r = m->accel->set_sregs(v, &s);
	if (r == 0)
		r = m->accel->set_regs(v, &rg);
	if (r == 0 && has && m->accel->set_extra)
		r = m->accel->set_extra(v, x);
	else if (r == 0 && m->accel->invalidate)
		m->accel->invalidate(v, 0, ~0ull);
	m->vcpu[i].intr = false;
	m->vcpu[i].kicked = false;
	free(x);
	return r;
}

/* Walk the RAM section; with ram NULL only check it. */
static int ram_walk(struct machine *m, const struct vms_layout *l, uint8_t *ram)
{
	struct hw_rbuf r = { l->ram, l->ram_len, 0, 0 };
	uint64_t size = hw_get64(&r), pages = size / VMS_PAGE;
	uint32_t cp = hw_get32(&r);
	uint8_t *scratch = xmalloc(VMS_CHUNK_PAGES * VMS_PAGE);
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	int ret = 0;

	if (r.err || size != m->ram_size || cp != VMS_CHUNK_PAGES)
		ret = err_set(-EINVAL, "vmstate: bad RAM section");
	for (uint64_t c = 0; c < pages && ret == 0; c += VMS_CHUNK_PAGES) {
		uint8_t bitmap[VMS_CHUNK_PAGES / 8];
		size_t want = 0, got;
		hw_getb(&r, bitmap, sizeof(bitmap));
		uint32_t z = hw_get32(&r);
		for (unsigned k = 0; k < VMS_CHUNK_PAGES; k++)
			if (bitmap[k / 8] & (1u << (k % 8)))
				want += c + k < pages ? VMS_PAGE : SIZE_MAX / 2;
		if (r.err || z > r.len - r.pos || want > VMS_CHUNK_PAGES * VMS_PAGE) {
			ret = err_set(-EINVAL, "vmstate: bad RAM chunk");
			break;
		}
		got = want ? ZSTD_decompressDCtx(dc, scratch, want, r.p + r.pos, z) : 0;
		r.pos += z;
		if ((want && ZSTD_isError(got)) || got != want || (!want && z)) {
			ret = err_set(-EINVAL, "vmstate: RAM chunk does not decompress");
			break;
		}
		for (unsigned k = 0, n = 0; ram && k < VMS_CHUNK_PAGES && c + k < pages; k++) {
			uint8_t *p = ram + (c + k) * VMS_PAGE;
			if (bitmap[k / 8] & (1u << (k % 8)))
				memcpy(p, scratch + (size_t)VMS_PAGE * n++, VMS_PAGE);
			else
				memset(p, 0, VMS_PAGE);
		}
	}
	if (ret == 0 && r.pos != r.len)
		ret = err_set(-EINVAL, "vmstate: trailing bytes in the RAM section");
	ZSTD_freeDCtx(dc);
	free(scratch);
	return ret;
}

static int check_cpus(struct machine *m, const struct vms_layout *l)
{
	struct hw_regs rg;
	struct hw_sregs s;
	struct hw_cpu_extra *x = xmalloc(sizeof(*x));
	bool has;
	int r = 0;

	for (int i = 0; i < m->ncpu && r == 0; i++)
		r = parse_cpu(l->cpu[i], l->cpu_len[i], &rg, &s, x, &has);
	free(x);
	return r;
}

int machine_check_state(struct machine *m, const uint8_t *buf, size_t len)
{
	struct vms_layout l;
	int r;

	if ((r = vms_check(m, buf, len, &l)) < 0 || (r = check_cpus(m, &l)) < 0)
		return r;
	return ram_walk(m, &l, NULL);
}

int machine_load_state(struct machine *m, const uint8_t *buf, size_t len)
{
	struct vms_layout l;
	int r;

	if ((r = machine_check_state(m, buf, len)) < 0 || (r = vms_check(m, buf, len, &l)) < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	hw_park_all(m);
	/* disk requests still in flight land before their rings are replaced */
	drain_locked(m, "loadvm");
	pthread_mutex_unlock(&m->lock);
	for (int i = 0; i < m->ncpu && r == 0; i++)
		r = load_cpu(m, i, &l);
	pthread_mutex_lock(&m->lock);
	if (r == 0)
		r = ram_walk(m, &l, m->ram);
	m->request = HW_REQ_NONE;
	pthread_mutex_unlock(&m->lock);
	if (r == 0)
		r = machine_load_devices(m, l.devs, l.devs_len);
	if (r < 0) {
		char *why = xstrdup(err_msg());
		r = err_set(-EIO, "%s (the machine is partly loaded)", why);
		free(why);
		return r;
	}
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->ncpu; i++)
		hw_cpu_update_intr(m, i);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
