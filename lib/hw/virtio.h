/*
 * lib/hw private: the virtio 1.x PCI transport (virtio-pci.c) and the
 * split virtqueue helpers shared by the virtio devices.
 */
#ifndef HW_VIRTIO_H
#define HW_VIRTIO_H

#include "hw/internal.h"

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_MAX_SEGS 1024
#define VIRTIO_F_VERSION_1 (1ull << 32)
#define VIRTIO_F_INDIRECT_DESC (1ull << 28)

struct virtq {
	uint16_t size, enabled, last_avail, used_idx;
	uint64_t desc, avail, used;
};

/* One buffer taken from a queue: readable segments, then writable ones. */
struct virtq_seg { uint8_t *p; uint32_t len; };
struct virtq_elem {
	uint16_t head;
	int nout, nin;		/* driver->device (out), device->driver (in) */
	struct virtq_seg out[VIRTIO_MAX_SEGS], in[VIRTIO_MAX_SEGS];
};

/* What a virtio device adds to the transport. */
struct virtio_dev_ops {
	const char *name;	/* state section name, e.g. "virtio-blk" */
	uint16_t device_id;	/* 1 net, 2 blk, 3 console, 4 rng */
	uint32_t class_code;
	uint16_t nqueues, qsize;
	/* The driver notified queue q.  Required. */
	void (*notify)(struct hw_virtio *v, int q);
	/* The driver wrote the device configuration.  Optional. */
	void (*config_write)(struct hw_virtio *v, unsigned off);
	/* Device reset (status 0 or machine reset).  Optional. */
	void (*reset)(struct hw_virtio *v);
	/* Release the device part (v->dev).  Optional. */
	void (*free)(struct hw_virtio *v);
};

struct hw_virtio {
	struct machine *m;
	struct hw_pci_dev *pci;
	const struct virtio_dev_ops *ops;
	void *dev;
	uint64_t host_features, driver_features;
	uint32_t dfsel, gfsel;
	uint8_t status, isr, cfg_gen;
	uint16_t qsel;
	struct virtq q[VIRTIO_MAX_QUEUES];
	uint8_t config[256];
	unsigned config_len;
	struct virtq_elem *elem;	/* scratch for the devices */
};

int virtio_pci_new(struct machine *m, const struct virtio_dev_ops *ops, void *dev,
		   uint64_t features, unsigned config_len, struct hw_virtio **out);
/* Take the next available buffer: 1 when one was taken, 0 when the queue
 * is empty, -EFAULT when the driver gave a bad descriptor chain (the
 * device is then marked as needing a reset). */
int virtq_pop(struct hw_virtio *v, int q, struct virtq_elem *e);
/* Return it with len bytes written, and interrupt the driver unless it
 * asked not to be. */
void virtq_push(struct hw_virtio *v, int q, const struct virtq_elem *e, uint32_t len);
void virtio_interrupt(struct hw_virtio *v, uint8_t isr_bit);
bool virtio_ready(struct hw_virtio *v, int q);
/* Copy between a segment list and a flat buffer; return bytes copied. */
size_t virtq_copy_from(const struct virtq_seg *s, int n, size_t skip, void *buf, size_t len);
size_t virtq_copy_to(const struct virtq_seg *s, int n, size_t skip, const void *buf, size_t len);

#endif
