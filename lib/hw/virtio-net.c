/*
 * virtio-net (VIRTIO 1.2 section 5.1) without offloads: receiveq 0 and
 * transmitq 1, the 12-byte virtio_net_hdr in front of every frame
 * (num_buffers always 1: no MRG_RXBUF), the MAC address in the device
 * configuration.  Frames go to and come from the frame back-end; a frame
 * that arrives while the guest has no receive buffer is dropped, as a
 * real NIC with a full ring drops it.
 */
#include <string.h>

#include "common/common.h"
#include "hw/virtio.h"

#define NET_F_MAC (1ull << 5)
#define HDR_LEN 12
#define FRAME_MAX 65536

struct vnet {
	struct hw_nic nic;
	uint8_t frame[FRAME_MAX];
};

static void net_notify(struct hw_virtio *v, int q)
{
	struct vnet *n = v->dev;
	struct virtq_elem *e = v->elem;

	if (q == 0)
		return;		/* new receive buffers: nothing waits for them */
	while (virtq_pop(v, 1, e) > 0) {
		size_t len = virtq_copy_from(e->out, e->nout, HDR_LEN, n->frame, FRAME_MAX);
		if (len)
			n->nic.ops->send(n->nic.opaque, n->frame, len);
		virtq_push(v, 1, e, 0);
	}
}

void virtio_net_input(struct hw_virtio *v, const uint8_t *frame, size_t len)
{
	struct virtq_elem *e = v->elem;
	uint8_t hdr[HDR_LEN] = { 0 };

	if (virtq_pop(v, 0, e) <= 0) {
		LOG(LOG_NET, "virtio-net: no receive buffer, frame dropped");
		return;
	}
	hdr[10] = 1;		/* num_buffers */
	size_t n = virtq_copy_to(e->in, e->nin, 0, hdr, HDR_LEN);
	n += virtq_copy_to(e->in, e->nin, HDR_LEN, frame, len);
	virtq_push(v, 0, e, n);
}

static void net_free(struct hw_virtio *v) { free(v->dev); }

static const struct virtio_dev_ops vnet_ops = {
	.name = "virtio-net", .device_id = 1, .class_code = 0x0200,
	.nqueues = 2, .qsize = 256, .notify = net_notify, .free = net_free,
};

int virtio_net_new(struct machine *m, int idx, const struct hw_nic *nic)
{
	struct vnet *n = xzalloc(sizeof(*n));
	struct hw_virtio *v;
	int r;

	n->nic = *nic;
	r = virtio_pci_new(m, &vnet_ops, n, NET_F_MAC, 8, &v);
	if (r < 0)
		return r;
	memcpy(v->config, nic->mac, 6);
	m->virtnet[idx] = v;
	return 0;
}
