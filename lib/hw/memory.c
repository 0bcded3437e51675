/*
 * Guest memory and the physical address space of the PC.
 *
 * RAM below 4 GiB ends at 3.5 GiB (the PCI hole, as QEMU's pc); the rest
 * is mapped at 4 GiB.  The VGA window 0xa0000-0xbffff is unassigned; the
 * rest of the first megabyte is RAM (a firmware image is copied into
 * 0xe0000-0xfffff, standing in for the i440FX PAM shadow RAM), and the
 * firmware ROM is also mapped read-only just below 4 GiB.  Port I/O goes
 * through a 64 Ki-entry table, MMIO through a short list of regions.
 * Unassigned accesses read as all ones and are logged under -d unimp.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "common/common.h"
#include "hw/internal.h"

#define PCI_HOLE 0xe0000000ull
#define GIB4 0x100000000ull

int hw_memory_init(struct machine *m)
{
	uint64_t size = m->cfg.ram_size;

	m->ram_size = size;
	m->lowmem = size >= PCI_HOLE ? PCI_HOLE : size;
	m->highmem = size - m->lowmem;
	m->ram = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->ram == MAP_FAILED) {
		m->ram = NULL;
		return err_set_errno(errno, "cannot allocate %" PRIu64 " bytes of guest RAM", size);
	}
	madvise(m->ram, size, MADV_HUGEPAGE);
	m->a20_mask = ~0ull;
	return 0;
}

void *hw_ram_ptr(struct machine *m, uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa)
		return NULL;
	if (gpa + len <= m->lowmem) {
		if (gpa + len > 0xa0000 && gpa < 0xc0000)
			return NULL;
		return m->ram + gpa;
	}
	if (gpa >= GIB4 && gpa - GIB4 + len <= m->highmem)
		return m->ram + m->lowmem + (gpa - GIB4);
	return NULL;
}

void hw_ram_written(struct machine *m, const void *p, size_t len)
{
	if (m->accel && m->accel->ram_written)
		m->accel->ram_written(m->accel_state, p, len);
}

int hw_dma_read(struct machine *m, uint64_t gpa, void *buf, size_t len)
{
	void *p = hw_ram_ptr(m, gpa, len);

	if (!p) {
		LOG(LOG_GUEST_ERRORS, "DMA read outside RAM at 0x%" PRIx64 "+%zu", gpa, len);
		memset(buf, 0, len);
		return -EFAULT;
	}
	memcpy(buf, p, len);
	return 0;
}

int hw_dma_write(struct machine *m, uint64_t gpa, const void *buf, size_t len)
{
	void *p = hw_ram_ptr(m, gpa, len);

	if (!p) {
		LOG(LOG_GUEST_ERRORS, "DMA write outside RAM at 0x%" PRIx64 "+%zu", gpa, len);
		return -EFAULT;
	}
	memcpy(p, buf, len);
	hw_ram_written(m, p, len);
	return 0;
}

int hw_e820(const struct machine *m, struct hw_e820 *e, int max)
{
	struct hw_e820 map[5];
	int n = 0;

	map[n++] = (struct hw_e820){ 0, 0x9fc00, 1 };
	map[n++] = (struct hw_e820){ 0x9fc00, 0x400, 2 };
	map[n++] = (struct hw_e820){ 0xe0000, 0x20000, 2 };
	map[n++] = (struct hw_e820){ 0x100000, m->lowmem - 0x100000, 1 };
	if (m->highmem)
		map[n++] = (struct hw_e820){ GIB4, m->highmem, 1 };
	n = MIN(n, max);
	memcpy(e, map, n * sizeof(*e));
	return n;
}

int hw_pio_add(struct machine *m, uint16_t base, uint16_t len,
	       const struct hw_io_ops *ops, void *opaque, const char *name)
{
	if (m->npio >= HW_PIO_REGIONS || (uint32_t)base + len > 65536)
		return err_set(-ENOSPC, "no room for I/O ports of %s", name);
	m->pio[m->npio] = (struct hw_io_region){ base, len, ops, opaque, name, false };
	m->npio++;
	for (uint32_t p = base; p < (uint32_t)base + len; p++)
		m->pio_map[p] = m->npio;
	return 0;
}

int hw_pio_add_unlocked(struct machine *m, uint16_t base, uint16_t len,
			const struct hw_io_ops *ops, void *opaque, const char *name)
{
	int r = hw_pio_add(m, base, len, ops, opaque, name);

	if (r == 0)
		m->pio[m->npio - 1].read_unlocked = true;
	return r;
}

int hw_mmio_add(struct machine *m, uint64_t base, uint64_t len,
		const struct hw_io_ops *ops, void *opaque, const char *name)
{
	if (m->nmmio >= HW_MMIO_REGIONS)
		return err_set(-ENOSPC, "no room for MMIO of %s", name);
	m->mmio[m->nmmio++] = (struct hw_io_region){ base, len, ops, opaque, name, false };
	return 0;
}

/* Move the which-th region registered with opaque (PCI BAR programming). */
void hw_mmio_move(struct machine *m, void *opaque, int which, uint64_t base)
{
	for (int i = 0; i < m->nmmio; i++)
		if (m->mmio[i].opaque == opaque && which-- == 0) {
			m->mmio[i].base = base;
			return;
		}
}

static uint64_t ones(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* The machine lock held, unless the port's region reads unlocked. */
static uint32_t pio_in(struct machine *m, uint16_t port, unsigned size)
{
	int i = m->pio_map[port];

	if (!i) {
		LOG(LOG_UNIMP, "in%c 0x%x: no device", "bw?l"[size - 1], port);
		return ones(size);
	}
	struct hw_io_region *r = &m->pio[i - 1];
	uint32_t v = r->ops->read ? r->ops->read(r->opaque, port - r->base, size) : ones(size);
	LOG(LOG_IOPORT, "in 0x%x/%u = 0x%x (%s)", port, size, v, r->name);
	return v & ones(size);
}

static void pio_out_locked(struct machine *m, uint16_t port, uint32_t val, unsigned size)
{
	int i = m->pio_map[port];

	if (!i) {
		LOG(LOG_UNIMP, "out 0x%x/%u <- 0x%x: no device", port, size, val);
		return;
	}
	struct hw_io_region *r = &m->pio[i - 1];
	LOG(LOG_IOPORT, "out 0x%x/%u <- 0x%x (%s)", port, size, val, r->name);
	if (r->ops->write)
		r->ops->write(r->opaque, port - r->base, val & ones(size), size);
}

uint32_t hw_bus_pio_in(struct machine *m, uint16_t port, unsigned size)
{
	int i = m->pio_map[port];	/* fixed once the machine is built */
	uint32_t v;

	atomic_fetch_add(&m->progress, 1);
	if (i && m->pio[i - 1].read_unlocked)
		return pio_in(m, port, size);
	pthread_mutex_lock(&m->lock);
	v = pio_in(m, port, size);
	pthread_mutex_unlock(&m->lock);
	return v;
}

void hw_bus_pio_out(struct machine *m, uint16_t port, uint32_t val, unsigned size)
{
	atomic_fetch_add(&m->progress, 1);
	pthread_mutex_lock(&m->lock);
	pio_out_locked(m, port, val, size);
	pthread_mutex_unlock(&m->lock);
}

static struct hw_io_region *mmio_find(struct machine *m, uint64_t gpa, unsigned size)
{
	for (int i = 0; i < m->nmmio; i++) {
		struct hw_io_region *r = &m->mmio[i];
		if (r->base && gpa >= r->base && gpa + size <= r->base + r->len)
			return r;
	}
	return NULL;
}

uint64_t hw_bus_mmio_read(struct machine *m, int cpu, uint64_t gpa, unsigned size)
{
	uint64_t v = ones(size);
	struct hw_io_region *r;

	atomic_fetch_add(&m->progress, 1);
	pthread_mutex_lock(&m->lock);
	if (cpu >= 0 && cpu < m->ncpu && apic_mmio(m->vcpu[cpu].apic, gpa, &v, false, size)) {
		pthread_mutex_unlock(&m->lock);
		return v;
	}
	r = mmio_find(m, gpa, size);
	if (r && r->ops->read)
		v = r->ops->read(r->opaque, gpa - r->base, size) & ones(size);
	else if (!r && m->bios && gpa >= GIB4 - m->bios_size && gpa + size <= GIB4)
		memcpy(&v, m->bios + (gpa - (GIB4 - m->bios_size)), size);
	else if (!r)
		LOG(LOG_UNIMP, "MMIO read 0x%" PRIx64 "/%u: nothing there", gpa, size);
	pthread_mutex_unlock(&m->lock);
	LOG(LOG_MMIO, "read 0x%" PRIx64 "/%u = 0x%" PRIx64, gpa, size, v);
	return v;
}

void hw_bus_mmio_write(struct machine *m, int cpu, uint64_t gpa, uint64_t val, unsigned size)
{
	struct hw_io_region *r;

	atomic_fetch_add(&m->progress, 1);
	LOG(LOG_MMIO, "write 0x%" PRIx64 "/%u <- 0x%" PRIx64, gpa, size, val);
	pthread_mutex_lock(&m->lock);
	if (cpu >= 0 && cpu < m->ncpu && apic_mmio(m->vcpu[cpu].apic, gpa, &val, true, size)) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	r = mmio_find(m, gpa, size);
	if (r && r->ops->write)
		r->ops->write(r->opaque, gpa - r->base, val & ones(size), size);
	else if (!r)
		LOG(LOG_UNIMP, "MMIO write 0x%" PRIx64 "/%u: nothing there", gpa, size);
	pthread_mutex_unlock(&m->lock);
}
