/*
 * virtio-console with a single port (VIRTIO 1.2 section 5.3, no
 * MULTIPORT): receiveq 0 gets the host's bytes, transmitq 1 carries the
 * guest's to the character back-end.  Bytes typed while the guest has
 * no receive buffer wait in a small ring.
 */
#include <string.h>

#include "common/common.h"
#include "hw/virtio.h"

#define PENDING 4096

struct vcon {
	struct hw_char_backend be;
	uint8_t pend[PENDING];
	size_t npend;
};

static void flush_rx(struct hw_virtio *v)
{
	struct vcon *c = v->dev;
	struct virtq_elem *e = v->elem;

	while (c->npend && virtq_pop(v, 0, e) > 0) {
		size_t n = virtq_copy_to(e->in, e->nin, 0, c->pend, c->npend);
		memmove(c->pend, c->pend + n, c->npend - n);
		c->npend -= n;
		virtq_push(v, 0, e, n);
	}
}

static void con_notify(struct hw_virtio *v, int q)
{
	struct vcon *c = v->dev;
	struct virtq_elem *e = v->elem;

	if (q == 0) {
		flush_rx(v);
		return;
	}
	while (virtq_pop(v, 1, e) > 0) {
		for (int i = 0; i < e->nout; i++)
			c->be.ops->write(c->be.opaque, e->out[i].p, e->out[i].len);
		virtq_push(v, 1, e, 0);
	}
}

void virtio_char_input(struct hw_virtio *v, const uint8_t *buf, size_t len)
{
	struct vcon *c = v->dev;
	size_t n = MIN(len, PENDING - c->npend);

	memcpy(c->pend + c->npend, buf, n);
	c->npend += n;
	flush_rx(v);
}

static void con_reset(struct hw_virtio *v) { ((struct vcon *)v->dev)->npend = 0; }
static void con_free(struct hw_virtio *v) { free(v->dev); }

static const struct virtio_dev_ops vcon_ops = {
	.name = "virtio-console", .device_id = 3, .class_code = 0x0780,
	.nqueues = 2, .qsize = 128, .notify = con_notify, .reset = con_reset, .free = con_free,
};

int virtio_console_new(struct machine *m, const struct hw_char_backend *be)
{
	struct vcon *c = xzalloc(sizeof(*c));
	struct hw_virtio *v;
	int r;

	c->be = *be;
	r = virtio_pci_new(m, &vcon_ops, c, 0, 12, &v);
	if (r < 0)
		return r;
	v->config[0] = 80;
	v->config[2] = 25;
	m->virtcon = v;
	return 0;
}
