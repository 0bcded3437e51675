/*
 * The virtio 1.x PCI transport ("modern" only) and split virtqueues,
 * following the Virtual I/O Device (VIRTIO) specification 1.2: section
 * 4.1 (PCI: vendor capabilities for the common, notify, ISR and device
 * configuration structures, all in BAR 4), section 2.7 (split
 * virtqueues: descriptor table, available and used rings, and indirect
 * descriptor tables, VIRTIO_F_INDIRECT_DESC, offered by every device so
 * that a request of many segments takes one ring entry).  Interrupts
 * are INTx, with the ISR register telling the driver why, until the
 * driver enables MSI-X (PCI Local Bus 3.0 section 6.8.2; its table in
 * BAR 1 with the pending bits at 0x800, as QEMU lays it out): then each
 * queue and the configuration change have a vector of their own.  Ring
 * indices are read with acquire and written with release ordering since
 * the driver runs on other vCPU threads.
 *
 * Under KVM with the in-kernel irqchip, once the driver sets DRIVER_OK
 * each queue's doorbell becomes an ioeventfd (the queue then runs on the
 * machine's event thread, with no exit of the vCPU) and each MSI-X vector
 * an irqfd (kvm-event.c); elsewhere doorbells stay on the MMIO handler.
 * INTx is always pci_set_intx() (set_intx says why).
 *
 * Snapshots: a request taken from a queue and not yet answered cannot be
 * saved (its available entry is consumed, its used entry not written):
 * vdev_busy tells savevm and loadvm to wait for it (vmstate.c).
 */
#include <string.h>

#include "common/common.h"
#include "hw/virtio.h"

#define BAR_SIZE 0x4000
#define OFF_COMMON 0x0000
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define OFF_NOTIFY 0x3000
#define NOTIFY_MULT 4
#define MSIX_BAR_SIZE 0x1000
#define MSIX_PBA 0x800
#define MSIX_MAX (VIRTIO_MAX_QUEUES + 1)
#define NO_VECTOR 0xffff

/* The transport's private part around what the devices see. */
struct virtio_pci {
	struct hw_virtio v;	/* first: the device's pointer is ours */
	uint64_t bar;		/* where BAR 4 is, 0 when unmapped */
	bool fast_tried;	/* fast paths set up, or found missing */
	struct hw_ioevent *doorbell[VIRTIO_MAX_QUEUES];
	/* MSI-X: capability offset, vectors (one per queue + config), the
	 * table (address low, high, data, vector control) and pending bits */
	uint8_t msix_cap;
	unsigned nvec;
	uint16_t config_vector, queue_vector[VIRTIO_MAX_QUEUES];
	uint32_t msix[MSIX_MAX][4];
	uint32_t msix_pending;
	struct hw_msifd *msifd[MSIX_MAX];	/* fast path of each vector */
};

static struct virtio_pci *vpci(struct hw_virtio *v) { return (struct virtio_pci *)v; }

/* INTx follows the ISR: raised with it, lowered when the driver reads
 * it.  Under KVM's in-kernel irqchip that is a KVM_IRQ_LINE from the
 * thread that sets or reads the ISR, not a resampling irqfd: the kernel
 * raises an irqfd's line on an IOAPIC pin from a work queue, which under
 * load was seen to hold a raise for seconds (until the VM was torn down)
 * while the driver waited for the interrupt. */
static void set_intx(struct hw_virtio *v, bool level)
{
	pci_set_intx(v->pci, level);
}

static uint16_t rd16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint16_t ring_load16(const uint8_t *p)
{
	uint16_t v;

	__atomic_load(p, (uint8_t *)&v, __ATOMIC_ACQUIRE);
	__atomic_load(p + 1, (uint8_t *)&v + 1, __ATOMIC_ACQUIRE);
	return v;
}

static void vdev_reset(struct hw_virtio *v)
{
	v->driver_features = 0;
	v->dfsel = v->gfsel = 0;
	v->status = v->isr = 0;
	v->qsel = 0;
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		v->q[i] = (struct virtq){ .size = v->ops->qsize };
		vpci(v)->queue_vector[i] = NO_VECTOR;
	}
	vpci(v)->config_vector = NO_VECTOR;
	if (v->ops->reset)
		v->ops->reset(v);
	set_intx(v, false);
}

/* ---- MSI-X ---- */

static uint16_t msix_ctrl(struct virtio_pci *p)
{
	const uint8_t *c = p->v.pci->cfg + p->msix_cap + 2;

	return c[0] | c[1] << 8;
}

static bool msix_enabled(struct virtio_pci *p) { return msix_ctrl(p) & 0x8000; }

/* Send vector vec, or keep it pending while it or the function is masked. */
static void msix_fire(struct virtio_pci *p, unsigned vec)
{
	if (vec >= p->nvec)
		return;
	if ((msix_ctrl(p) & 0x4000) || (p->msix[vec][3] & 1)) {
		p->msix_pending |= 1u << vec;
		return;
	}
	p->msix_pending &= ~(1u << vec);
	uint64_t addr = (uint64_t)p->msix[vec][1] << 32 | p->msix[vec][0];
	if (p->msifd[vec] && (addr >> 20) == 0xfee)
		hw_msifd_send(p->msifd[vec], addr, p->msix[vec][2]);
	else
		hw_msi(p->v.m, addr, p->msix[vec][2]);
}

static void msix_unmasked(struct virtio_pci *p)
{
	for (unsigned vec = 0; vec < p->nvec; vec++)
		if (p->msix_pending & (1u << vec))
			msix_fire(p, vec);
}

static uint64_t msix_read(void *opaque, uint64_t off, unsigned size)
{
	struct virtio_pci *p = opaque;
	uint64_t val = 0;

	for (unsigned i = 0; i < size; i += 4, off += 4) {
		uint32_t w = 0;
		if (off < 16 * p->nvec)
			w = p->msix[off / 16][(off % 16) / 4];
		else if (off == MSIX_PBA)
			w = p->msix_pending;
		val |= (uint64_t)w << (8 * i);
	}
	return val;
}

static void msix_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	struct virtio_pci *p = opaque;

	for (unsigned i = 0; i < size && off < 16 * p->nvec; i += 4, off += 4) {
		uint32_t *w = &p->msix[off / 16][(off % 16) / 4];
		*w = (uint32_t)(val >> (8 * i));
		if ((off % 16) == 12) {
			*w &= 1;
			if (!*w)
				msix_unmasked(p);
		}
	}
}

static const struct hw_io_ops msix_io = { msix_read, msix_write };

/* Config space past the header: only MSI-X's enable and mask bits can be
 * written; the virtio capabilities are read-only. */
static void pci_cfg_write(struct hw_pci_dev *d, unsigned off, uint32_t val, unsigned size)
{
	struct virtio_pci *p = d->opaque;
	unsigned at = p->msix_cap + 3;

	if (off > at || off + size <= at)
		return;
	d->cfg[at] = (d->cfg[at] & 0x3f) | ((val >> (8 * (at - off))) & 0xc0);
	if (msix_enabled(p))
		msix_unmasked(p);
}

static void msix_reset(struct virtio_pci *p)
{
	memset(p->msix, 0, sizeof(p->msix));
	for (unsigned i = 0; i < p->nvec; i++)
		p->msix[i][3] = 1;
	p->msix_pending = 0;
	p->v.pci->cfg[p->msix_cap + 3] &= 0x3f;
}

/* The driver's attention for queue q (-1: a configuration change). */
static void interrupt(struct hw_virtio *v, int q, uint8_t isr_bit)
{
	struct virtio_pci *p = vpci(v);

	if (msix_enabled(p)) {
		uint16_t vec = q < 0 ? p->config_vector : p->queue_vector[q];
		if (vec != NO_VECTOR)
			msix_fire(p, vec);
		return;
	}
	v->isr |= isr_bit;
	set_intx(v, true);
}

void virtio_interrupt(struct hw_virtio *v, uint8_t isr_bit)
{
	interrupt(v, isr_bit & 2 ? -1 : 0, isr_bit);
}

bool virtio_ready(struct hw_virtio *v, int q)
{
	return (v->status & 4) && !(v->status & 0x40) && q < v->ops->nqueues && v->q[q].enabled;
}

static void broken(struct hw_virtio *v, const char *why)
{
	LOG(LOG_GUEST_ERRORS, "%s: %s; the device needs a reset", v->ops->name, why);
	v->status |= 0x40;
	virtio_interrupt(v, 2);
}

/* Append the descriptor chain from entry i of a table of num entries
 * (the ring's, or an indirect table when top is false) to e. */
static int walk_chain(struct hw_virtio *v, const uint8_t *desc, unsigned num, uint16_t i,
		      struct virtq_elem *e, bool top)
{
	unsigned n = 0;

	for (;;) {
		const uint8_t *d;
		if (i >= num || ++n > num) {
			broken(v, "bad descriptor chain");
			return -EFAULT;
		}
		d = desc + 16 * i;
		uint64_t addr = rd64(d);
		uint32_t len = rd32(d + 8);
		uint16_t flags = rd16(d + 12);
		if (flags & 4) {
			/* an indirect table ends the chain (section 2.7.5.3) */
			const uint8_t *table;
			if (!top || !(v->driver_features & VIRTIO_F_INDIRECT_DESC)) {
				broken(v, top ? "indirect descriptor not negotiated"
					      : "indirect descriptor inside an indirect table");
				return -EFAULT;
			}
			if ((flags & 1) || !len || len % 16) {
				broken(v, "bad indirect descriptor");
				return -EFAULT;
			}
			table = hw_ram_ptr(v->m, addr, len);
			if (!table) {
				broken(v, "indirect table outside RAM");
				return -EFAULT;
			}
			return walk_chain(v, table, len / 16, 0, e, false);
		}
		uint8_t *p = hw_ram_ptr(v->m, addr, len);
		if (!p) {
			broken(v, "buffer outside RAM");
			return -EFAULT;
		}
		if (flags & 2) {
			if (e->nin == VIRTIO_MAX_SEGS)
				goto too_long;
			e->in[e->nin++] = (struct virtq_seg){ p, len };
		} else {
			if (e->nin || e->nout == VIRTIO_MAX_SEGS)
				goto too_long;
			e->out[e->nout++] = (struct virtq_seg){ p, len };
		}
		if (!(flags & 1))
			return 1;
		i = rd16(d + 14);
	}
too_long:
	broken(v, "descriptor chain too long or out of order");
	return -EFAULT;
}

int virtq_pop(struct hw_virtio *v, int qi, struct virtq_elem *e)
{
	struct virtq *q = &v->q[qi];
	uint8_t *avail, *desc;
	uint16_t idx;

	if (!virtio_ready(v, qi))
		return 0;
	avail = hw_ram_ptr(v->m, q->avail, 6 + 2 * q->size);
	desc = hw_ram_ptr(v->m, q->desc, 16 * q->size);
	if (!avail || !desc) {
		broken(v, "virtqueue outside RAM");
		return -EFAULT;
	}
	idx = ring_load16(avail + 2);
	if (idx == q->last_avail)
		return 0;
	if ((uint16_t)(idx - q->last_avail) > q->size) {
		broken(v, "available index jumped");
		return -EFAULT;
	}
	e->head = rd16(avail + 4 + 2 * (q->last_avail % q->size));
	q->last_avail++;
	e->nout = e->nin = 0;
	return walk_chain(v, desc, q->size, e->head, e, true);
}

void virtq_push(struct hw_virtio *v, int qi, const struct virtq_elem *e, uint32_t len)
{
	struct virtq *q = &v->q[qi];
	uint8_t *used = hw_ram_ptr(v->m, q->used, 6 + 8 * q->size);
	uint8_t *avail = hw_ram_ptr(v->m, q->avail, 4);
	uint8_t *slot;
	uint16_t idx;

	if (!used || !avail)
		return;
	for (int i = 0; i < e->nin; i++)	/* what the device wrote, before the driver sees it */
		hw_ram_written(v->m, e->in[i].p, e->in[i].len);
	slot = used + 4 + 8 * (q->used_idx % q->size);
	for (int i = 0; i < 4; i++) {
		slot[i] = e->head >> (8 * i);
		slot[4 + i] = len >> (8 * i);
	}
	q->used_idx++;
	idx = q->used_idx;
	uint8_t b[2] = { idx, idx >> 8 };
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store(used + 2, &b[0], __ATOMIC_RELEASE);
	__atomic_store(used + 3, &b[1], __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	LOG(LOG_VIRTIO, "%s: queue %d used %u", v->ops->name, qi, idx);
	if (!(ring_load16(avail) & 1))
		interrupt(v, qi, 1);
}

size_t virtq_copy_from(const struct virtq_seg *s, int n, size_t skip, void *buf, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		if (skip >= s[i].len) {
			skip -= s[i].len;
			continue;
		}
		size_t c = MIN(s[i].len - skip, len - done);
		memcpy((uint8_t *)buf + done, s[i].p + skip, c);
		done += c;
		skip = 0;
	}
	return done;
}

size_t virtq_copy_to(const struct virtq_seg *s, int n, size_t skip, const void *buf, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		if (skip >= s[i].len) {
			skip -= s[i].len;
			continue;
		}
		size_t c = MIN(s[i].len - skip, len - done);
		memcpy(s[i].p + skip, (const uint8_t *)buf + done, c);
		done += c;
		skip = 0;
	}
	return done;
}

/* ---- fast paths: ioeventfd doorbells and MSI irqfds (kvm-event.c) ---- */

static void doorbell(void *opaque, int q)
{
	struct hw_virtio *v = opaque;

	LOG(LOG_VIRTIO, "%s: notify queue %d (ioeventfd)", v->ops->name, q);
	if (q < v->ops->nqueues && virtio_ready(v, q))
		v->ops->notify(v, q);
}

/* One doorbell per queue at BAR 4's notify area, wherever it is now. */
static void doorbells_map(struct virtio_pci *p)
{
	struct hw_virtio *v = &p->v;

	for (int q = 0; q < v->ops->nqueues; q++) {
		hw_ioevent_del(v->m, p->doorbell[q]);
		p->doorbell[q] = NULL;
		if (p->bar && hw_ioevent_add(v->m, p->bar + OFF_NOTIFY + q * NOTIFY_MULT,
					     doorbell, v, q, &p->doorbell[q]) < 0)
			p->doorbell[q] = NULL;
	}
}

static void fast_paths(struct virtio_pci *p)
{
	struct hw_virtio *v = &p->v;

	if (p->fast_tried)
		return;
	p->fast_tried = true;
	for (unsigned vec = 0; vec < p->nvec; vec++)
		if (hw_msifd_new(v->m, &p->msifd[vec]) < 0)
			p->msifd[vec] = NULL;
	if (!p->msifd[0])
		return;		/* no fast paths on this accelerator */
	doorbells_map(p);
}

/* After a load: the guest may have rung a doorbell before the snapshot
 * whose request the snapshot holds unserved; ring each one again. */
static void fast_paths_loaded(struct virtio_pci *p)
{
	fast_paths(p);
	for (int q = 0; q < p->v.ops->nqueues; q++)
		if (p->doorbell[q] && virtio_ready(&p->v, q))
			hw_ioevent_ring(p->doorbell[q]);
}

/* ---- the common configuration structure (4.1.4.3) ---- */

static uint64_t common_read(struct hw_virtio *v, unsigned off)
{
	struct virtq *q = &v->q[v->qsel < VIRTIO_MAX_QUEUES ? v->qsel : 0];
	bool qok = v->qsel < v->ops->nqueues;

	switch (off) {
	case 0x00: return v->dfsel;
	case 0x04: return v->dfsel < 2 ? (uint32_t)(v->host_features >> (32 * v->dfsel)) : 0;
	case 0x08: return v->gfsel;
	case 0x0c: return v->gfsel < 2 ? (uint32_t)(v->driver_features >> (32 * v->gfsel)) : 0;
	case 0x10: return vpci(v)->config_vector;
	case 0x12: return v->ops->nqueues;
	case 0x14: return v->status;
	case 0x15: return v->cfg_gen;
	case 0x16: return v->qsel;
	case 0x18: return qok ? q->size : 0;
	case 0x1a: return qok ? vpci(v)->queue_vector[v->qsel] : NO_VECTOR;
	case 0x1c: return qok ? q->enabled : 0;
	case 0x1e: return qok ? v->qsel : 0;
	case 0x20: return qok ? q->desc : 0;
	case 0x24: return qok ? q->desc >> 32 : 0;
	case 0x28: return qok ? q->avail : 0;
	case 0x2c: return qok ? q->avail >> 32 : 0;
	case 0x30: return qok ? q->used : 0;
	case 0x34: return qok ? q->used >> 32 : 0;
	}
	return 0;
}

static void set_lo(uint64_t *r, uint32_t v) { *r = (*r & ~0xffffffffull) | v; }
static void set_hi(uint64_t *r, uint32_t v) { *r = (*r & 0xffffffffull) | (uint64_t)v << 32; }

static void common_write(struct hw_virtio *v, unsigned off, uint32_t val)
{
	struct virtq *q = &v->q[v->qsel < VIRTIO_MAX_QUEUES ? v->qsel : 0];
	bool qok = v->qsel < v->ops->nqueues && !q->enabled;

	switch (off) {
	case 0x00: v->dfsel = val; break;
	case 0x08: v->gfsel = val; break;
	case 0x10: vpci(v)->config_vector = val < vpci(v)->nvec ? val : NO_VECTOR; break;
	case 0x1a:
		if (v->qsel < v->ops->nqueues)
			vpci(v)->queue_vector[v->qsel] = val < vpci(v)->nvec ? val : NO_VECTOR;
		break;
	case 0x0c:
		if (v->gfsel == 0)
			set_lo(&v->driver_features, val & v->host_features);
		else if (v->gfsel == 1)
			set_hi(&v->driver_features, val & (v->host_features >> 32));
		break;
	case 0x14:
		if (!val) {
			vdev_reset(v);
			break;
		}
		if ((val & 8) && !(v->driver_features & VIRTIO_F_VERSION_1))
			val &= ~8;	/* FEATURES_OK refused: legacy drivers are not served */
		v->status = val;
		if (val & 4)
			fast_paths(vpci(v));
		break;
	case 0x16: v->qsel = val; break;
	case 0x18:
		if (qok && val && val <= v->ops->qsize && !(val & (val - 1)))
			q->size = val;
		break;
	case 0x1c:
		if (v->qsel < v->ops->nqueues && val == 1) {
			q->enabled = 1;
			q->last_avail = q->used_idx = 0;
		}
		break;
	case 0x20: if (qok) set_lo(&q->desc, val); break;
	case 0x24: if (qok) set_hi(&q->desc, val); break;
	case 0x28: if (qok) set_lo(&q->avail, val); break;
	case 0x2c: if (qok) set_hi(&q->avail, val); break;
	case 0x30: if (qok) set_lo(&q->used, val); break;
	case 0x34: if (qok) set_hi(&q->used, val); break;
	}
}

static uint64_t bar_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_virtio *v = opaque;
	uint64_t val = 0;

	if (off < OFF_ISR) {
		val = common_read(v, off);	/* accessed field by field */
	} else if (off < OFF_DEVICE) {
		val = v->isr;
		v->isr = 0;
		set_intx(v, false);
	} else if (off < OFF_NOTIFY) {
		unsigned o = off - OFF_DEVICE;
		for (unsigned i = 0; i < size && o + i < v->config_len; i++)
			val |= (uint64_t)v->config[o + i] << (8 * i);
	}
	return val;
}

static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	struct hw_virtio *v = opaque;

	if (off < OFF_ISR) {
		common_write(v, off, val);
	} else if (off >= OFF_DEVICE && off < OFF_NOTIFY) {
		unsigned o = off - OFF_DEVICE;
		for (unsigned i = 0; i < size && o + i < v->config_len; i++)
			v->config[o + i] = val >> (8 * i);
		if (v->ops->config_write)
			v->ops->config_write(v, o);
	} else if (off >= OFF_NOTIFY) {
		unsigned q = (off - OFF_NOTIFY) / NOTIFY_MULT;
		LOG(LOG_VIRTIO, "%s: notify queue %u (exit)", v->ops->name, q);
		if (q < v->ops->nqueues && virtio_ready(v, q))
			v->ops->notify(v, q);
	}
}

static const struct hw_io_ops bar_io = { bar_read, bar_write };

static void bar_map(struct hw_pci_dev *d, int bar, uint64_t addr, bool io)
{
	struct virtio_pci *p = d->opaque;

	if (bar == 1)
		hw_mmio_move(d->m, d->opaque, 1, addr);
	if (bar != 4)
		return;
	hw_mmio_move(d->m, d->opaque, 0, addr);
	p->bar = addr;
	if (p->msifd[0] || p->doorbell[0])
		doorbells_map(p);
}

static const struct hw_pci_ops virtio_pci_ops = { .cfg_write = pci_cfg_write, .bar_map = bar_map };

/* ---- state ---- */

static void msix_save(struct virtio_pci *p, struct hw_wbuf *w)
{
	hw_put16(w, p->config_vector);
	for (int i = 0; i < p->v.ops->nqueues; i++)
		hw_put16(w, p->queue_vector[i]);
	hw_put8(w, p->nvec);
	for (unsigned i = 0; i < p->nvec; i++)
		for (int k = 0; k < 4; k++)
			hw_put32(w, p->msix[i][k]);
	hw_put32(w, p->msix_pending);
}

/* Checked whole before anything changes; the enable bits are in the
 * PCI section. */
static int msix_load(struct virtio_pci *p, struct hw_rbuf *r)
{
	uint16_t cv = hw_get16(r), qv[VIRTIO_MAX_QUEUES];
	uint32_t t[MSIX_MAX][4], pend;

	for (int i = 0; i < p->v.ops->nqueues; i++)
		if ((qv[i] = hw_get16(r)) >= p->nvec && qv[i] != NO_VECTOR)
			return -EINVAL;
	if ((cv >= p->nvec && cv != NO_VECTOR) || hw_get8(r) != p->nvec)
		return -EINVAL;
	for (unsigned i = 0; i < p->nvec; i++)
		for (int k = 0; k < 4; k++)
			t[i][k] = hw_get32(r);
	pend = hw_get32(r);
	if (r->err)
		return -EINVAL;
	p->config_vector = cv;
	memcpy(p->queue_vector, qv, p->v.ops->nqueues * sizeof(qv[0]));
	memcpy(p->msix, t, p->nvec * sizeof(t[0]));
	p->msix_pending = pend & ((1u << p->nvec) - 1);
	return 0;
}

static void vdev_hw_reset(void *dev)
{
	vdev_reset(dev);
	msix_reset(dev);
}

static void vdev_save(void *dev, struct hw_wbuf *w)
{
	struct hw_virtio *v = dev;

	hw_put64(w, v->driver_features);
	hw_put32(w, v->dfsel);
	hw_put32(w, v->gfsel);
	hw_put8(w, v->status);
	hw_put8(w, v->isr);
	hw_put8(w, v->cfg_gen);
	hw_put16(w, v->qsel);
	hw_put8(w, v->ops->nqueues);
	for (int i = 0; i < v->ops->nqueues; i++) {
		struct virtq *q = &v->q[i];
		hw_put16(w, q->size);
		hw_put16(w, q->enabled);
		hw_put16(w, q->last_avail);
		hw_put16(w, q->used_idx);
		hw_put64(w, q->desc);
		hw_put64(w, q->avail);
		hw_put64(w, q->used);
		if (q->enabled)
			LOG(LOG_VIRTIO, "%s: queue %d saved at available %u, used %u", v->ops->name, i,
			    q->last_avail, q->used_idx);
	}
	hw_put16(w, v->config_len);
	hw_putb(w, v->config, v->config_len);
	msix_save(vpci(v), w);
}

static int vdev_load(void *dev, struct hw_rbuf *r)
{
	struct hw_virtio *v = dev;
	struct virtq q[VIRTIO_MAX_QUEUES];
	uint64_t feat = hw_get64(r);
	uint32_t dfsel = hw_get32(r), gfsel = hw_get32(r);
	uint8_t status = hw_get8(r), isr = hw_get8(r), gen = hw_get8(r);
	uint16_t qsel = hw_get16(r);
	uint8_t nq = hw_get8(r), cfg[256];

	if (r->err || nq != v->ops->nqueues)
		return -EINVAL;
	for (int i = 0; i < nq; i++) {
		q[i].size = hw_get16(r);
		q[i].enabled = hw_get16(r) & 1;
		q[i].last_avail = hw_get16(r);
		q[i].used_idx = hw_get16(r);
		q[i].desc = hw_get64(r);
		q[i].avail = hw_get64(r);
		q[i].used = hw_get64(r);
		if (!q[i].size || q[i].size > v->ops->qsize || (q[i].size & (q[i].size - 1)))
			return -EINVAL;
	}
	if (hw_get_index(r, 257, 2) != v->config_len)
		return -EINVAL;
	hw_getb(r, cfg, v->config_len);
	if (r->err || msix_load(vpci(v), r) < 0)
		return -EINVAL;
	v->driver_features = feat & v->host_features;
	v->dfsel = dfsel;
	v->gfsel = gfsel;
	v->status = status;
	v->isr = isr & 3;
	v->cfg_gen = gen;
	v->qsel = qsel;
	memcpy(v->q, q, nq * sizeof(q[0]));
	memcpy(v->config, cfg, v->config_len);
	set_intx(v, v->isr != 0);
	if (v->status & 4)
		fast_paths_loaded(vpci(v));
	return 0;
}

/* Buffers taken from a ready queue and not given back yet: virtio-blk's
 * requests outlive the call that takes them (its back-ends complete them
 * on their own threads).  A queue the device gave up on (NEEDS_RESET)
 * may hold a buffer taken but never returned: not counted. */
static bool vdev_busy(void *dev)
{
	struct hw_virtio *v = dev;

	for (int i = 0; i < v->ops->nqueues; i++)
		if (virtio_ready(v, i) && v->q[i].last_avail != v->q[i].used_idx)
			return true;
	return false;
}

static void vdev_free(void *dev)
{
	struct hw_virtio *v = dev;

	if (v->ops->free)
		v->ops->free(v);
	free(v->elem);
	free(v);
}

static const struct hw_dev_ops vdev_ops[] = {
	{ .name = "virtio-net", .version = 2, .reset = vdev_hw_reset, .save = vdev_save, .load = vdev_load,
	  .busy = vdev_busy, .free = vdev_free },
	{ .name = "virtio-blk", .version = 2, .reset = vdev_hw_reset, .save = vdev_save, .load = vdev_load,
	  .busy = vdev_busy, .free = vdev_free },
	{ .name = "virtio-console", .version = 2, .reset = vdev_hw_reset, .save = vdev_save, .load = vdev_load,
	  .busy = vdev_busy, .free = vdev_free },
	{ .name = "virtio-rng", .version = 2, .reset = vdev_hw_reset, .save = vdev_save, .load = vdev_load,
	  .busy = vdev_busy, .free = vdev_free },
};

static void add_cap(struct hw_pci_dev *d, uint8_t type, uint32_t off, uint32_t len, bool notify)
{
	uint8_t c[20] = { 0x09, 0, notify ? 20 : 16, type, 4 };

	for (int i = 0; i < 4; i++) {
		c[8 + i] = off >> (8 * i);
		c[12 + i] = len >> (8 * i);
		c[16 + i] = notify ? (uint32_t)NOTIFY_MULT >> (8 * i) : 0;
	}
	pci_add_cap(d, c, c[2]);
}

/* Last of the capabilities: its third byte is no length, as the vendor
 * ones' are (pci_add_cap measures the previous capability by it). */
static void add_msix(struct virtio_pci *p)
{
	uint8_t c[12] = { 0x11, 0 };

	p->nvec = p->v.ops->nqueues + 1;
	c[2] = p->nvec - 1;
	c[4] = 1;			/* table: BAR 1, offset 0 */
	c[8] = 1 | (MSIX_PBA & 0xff);	/* pending bits: BAR 1 + 0x800 */
	c[9] = MSIX_PBA >> 8;
	pci_set_bar(p->v.pci, 1, MSIX_BAR_SIZE, false, false);
	p->msix_cap = pci_add_cap(p->v.pci, c, sizeof(c));
}

int virtio_pci_new(struct machine *m, const struct virtio_dev_ops *ops, void *dev,
		   uint64_t features, unsigned config_len, struct hw_virtio **out)
{
	struct virtio_pci *p = xzalloc(sizeof(*p));
	struct hw_virtio *v = &p->v;
	int r;

	v->m = m;
	v->ops = ops;
	v->dev = dev;
	v->host_features = features | VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC;
	v->config_len = config_len;
	v->elem = xmalloc(sizeof(*v->elem));
	v->pci = pci_add(m, 0x1af4, 0x1040 + ops->device_id, ops->class_code << 8 | 1,
			 ops->device_id, &virtio_pci_ops, v);
	if (!v->pci) {
		free(v->elem);
		free(v);
		return -ENOSPC;
	}
	pci_set_bar(v->pci, 4, BAR_SIZE, false, true);
	add_cap(v->pci, 1, OFF_COMMON, 0x38, false);
	add_cap(v->pci, 3, OFF_ISR, 4, false);
	add_cap(v->pci, 4, OFF_DEVICE, 0x100, false);
	add_cap(v->pci, 2, OFF_NOTIFY, NOTIFY_MULT * ops->nqueues, true);
	add_msix(p);
	vdev_hw_reset(v);
	r = hw_dev_add(m, &vdev_ops[ops->device_id - 1], v);
	if (r < 0)
		return r;
	r = hw_mmio_add(m, 0, BAR_SIZE, &bar_io, v, ops->name);
	if (r >= 0)
		r = hw_mmio_add(m, 0, MSIX_BAR_SIZE, &msix_io, v, ops->name);
	if (r < 0)
		return r;
	*out = v;
	return 0;
}
