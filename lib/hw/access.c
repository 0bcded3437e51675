/*
 * Host-side inspection of a machine for the monitor (QEMU's x/xp,
 * pmemsave/memsave, info registers, query-status, inject-nmi): guest
 * physical reads, a page-table walk for virtual addresses (Intel SDM
 * vol. 3A ch. 4: 32-bit, PAE and 4-level paging), the vCPU registers
 * read with every vCPU parked, and the run state.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "hw/internal.h"

int machine_read_phys(struct machine *m, uint64_t gpa, void *buf, size_t len)
{
	void *p;

	pthread_mutex_lock(&m->lock);
	p = hw_ram_ptr(m, gpa, len);
	if (!p && m->bios && gpa >= 0x100000000ull - m->bios_size && gpa + len <= 0x100000000ull)
		p = m->bios + (gpa - (0x100000000ull - m->bios_size));
	else if (!p && m->bios && m->bios_size >= 0x20000 && gpa >= 0xe0000 && gpa + len <= 0x100000)
		p = m->bios + m->bios_size - 0x20000 + (gpa - 0xe0000);
	if (p)
		memcpy(buf, p, len);
	pthread_mutex_unlock(&m->lock);
	return p ? 0 : err_set(-EFAULT, "cannot access memory at 0x%" PRIx64, gpa);
}

bool machine_paused(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	bool p = m->paused;
	pthread_mutex_unlock(&m->lock);
	return p;
}

int machine_cpu_count(struct machine *m)
{
	return m->ncpu;
}

void machine_nmi(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->ncpu; i++)
		m->accel->nmi(m->vcpu[i].accel_vcpu);
	pthread_mutex_unlock(&m->lock);
}

bool hw_park_all(struct machine *m)
{
	struct timespec ts;
	bool was = m->paused;

	m->paused = true;
	if (!m->timer_running)
		return was;
	for (int i = 0; i < m->ncpu; i++)
		hw_cpu_kick(m, i);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1;
	while (m->nparked < m->ncpu && !m->stopping)
		if (pthread_cond_timedwait(&m->state_cond, &m->lock, &ts))
			break;
	return was;
}

void hw_unpark_all(struct machine *m, bool paused)
{
	m->paused = paused;
	pthread_cond_broadcast(&m->state_cond);
}

int machine_get_cpu(struct machine *m, int cpu, struct hw_regs *r, struct hw_sregs *s)
{
	int ret = 0;

	if (cpu < 0 || cpu >= m->ncpu)
		return err_set(-ENOENT, "no CPU %d", cpu);
	pthread_mutex_lock(&m->lock);
	bool was = hw_park_all(m);
	if (r)
		ret = m->accel->get_regs(m->vcpu[cpu].accel_vcpu, r);
	if (ret >= 0 && s)
		ret = m->accel->get_sregs(m->vcpu[cpu].accel_vcpu, s);
	hw_unpark_all(m, was);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int read_pte(struct machine *m, uint64_t gpa, unsigned size, uint64_t *v)
{
	uint8_t b[8] = { 0 };
	int r = machine_read_phys(m, gpa, b, size);

	*v = 0;
	for (unsigned i = 0; i < size; i++)
		*v |= (uint64_t)b[i] << (8 * i);
	return r;
}

/* Translate a virtual address through cpu 0's page tables. */
int machine_virt_to_phys(struct machine *m, uint64_t va, uint64_t *pa)
{
	struct hw_sregs s;
	uint64_t e, table;
	int r = machine_get_cpu(m, 0, NULL, &s), levels, bits, shift;

	if (r < 0)
		return r;
	if (!(s.cr0 & (1u << 31))) {
		*pa = va;
		return 0;
	}
	if (!(s.cr4 & (1u << 5))) {		/* 32-bit paging */
		levels = 2, bits = 10, shift = 22;
		table = s.cr3 & 0xfffff000;
		va &= 0xffffffff;
	} else if (s.efer & (1u << 10)) {	/* 4-level */
		levels = 4, bits = 9, shift = 39;
		table = s.cr3 & 0x000ffffffffff000ull;
	} else {				/* PAE: the PDPTE first */
		r = read_pte(m, (s.cr3 & 0xffffffe0) + ((va >> 30) & 3) * 8, 8, &e);
		if (r < 0 || !(e & 1))
			return err_set(-EFAULT, "cannot access memory at 0x%" PRIx64, va);
		levels = 2, bits = 9, shift = 21;
		table = e & 0x000ffffffffff000ull;
	}
	for (int l = 0; l < levels; l++, shift -= bits) {
		unsigned esz = bits == 10 ? 4 : 8;
		r = read_pte(m, table + ((va >> shift) & ((1u << bits) - 1)) * esz, esz, &e);
		if (r < 0 || !(e & 1))
			return err_set(-EFAULT, "cannot access memory at 0x%" PRIx64, va);
		if (l == levels - 1 || (l > 0 && (e & 0x80))) {
			uint64_t mask = (1ull << shift) - 1;
			uint64_t frame = bits == 10 && shift == 22 ? (e & 0xffc00000) : (e & 0x000ffffffffff000ull & ~mask);
			*pa = frame | (va & mask);
			return 0;
		}
		table = e & (bits == 10 ? 0xfffff000 : 0x000ffffffffff000ull);
	}
	return err_set(-EFAULT, "cannot access memory at 0x%" PRIx64, va);
}
