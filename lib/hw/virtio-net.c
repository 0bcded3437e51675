/*
 * virtio-net (VIRTIO 1.2 section 5.1) without offloads: receiveq 0 and
 * transmitq 1, the 12-byte virtio_net_hdr in front of every frame
 * (num_buffers always 1: no MRG_RXBUF), the MAC address in the device
 * configuration.  Frames go to and come from the frame back-end; a frame
 * that arrives while the guest has no receive buffer is dropped, as a
 * real NIC with a full ring drops it.
 *
 * The link state is VIRTIO_NET_F_STATUS's status field (5.1.4: bit 0,
 * VIRTIO_NET_S_LINK_UP, at configuration offset 6); a change raises the
 * configuration-change interrupt (4.1.4.5).  While the link is down (set_link
 * off, or the back-end went away) frames in both directions are dropped.
 * The state lives in the configuration, which the transport saves.
 */
#include <string.h>

#include "common/common.h"
#include "hw/virtio.h"

#define NET_F_MAC (1ull << 5)
#define NET_F_STATUS (1ull << 16)
#define STATUS_OFF 6            /* le16 status in the configuration */
#define S_LINK_UP 1
#define ISR_CONFIG 2
#define DRIVER_OK 4
#define HDR_LEN 12
#define FRAME_MAX 65536

struct vnet {
	struct hw_nic nic;
	uint8_t frame[FRAME_MAX];
};

static bool link_up(const struct hw_virtio *v)
{
	return v->config[STATUS_OFF] & S_LINK_UP;
}

static void net_notify(struct hw_virtio *v, int q)
{
	struct vnet *n = v->dev;
	struct virtq_elem *e = v->elem;

	if (q == 0)
		return;		/* new receive buffers: nothing waits for them */
	while (virtq_pop(v, 1, e) > 0) {
		size_t len = virtq_copy_from(e->out, e->nout, HDR_LEN, n->frame, FRAME_MAX);
		if (len && link_up(v))
			n->nic.ops->send(n->nic.opaque, n->frame, len);
		virtq_push(v, 1, e, 0);
	}
}

void virtio_net_input(struct hw_virtio *v, const uint8_t *frame, size_t len)
{
	struct virtq_elem *e = v->elem;
	uint8_t hdr[HDR_LEN] = { 0 };

	if (!link_up(v))
		return;
	if (virtq_pop(v, 0, e) <= 0) {
		LOG(LOG_NET, "virtio-net: no receive buffer, frame dropped");
		return;
	}
	hdr[10] = 1;		/* num_buffers */
	size_t n = virtq_copy_to(e->in, e->nin, 0, hdr, HDR_LEN);
	n += virtq_copy_to(e->in, e->nin, HDR_LEN, frame, len);
	virtq_push(v, 0, e, n);
}

/* The host side of the link changed (machine_nic_set_link). */
void virtio_net_set_link(struct hw_virtio *v, bool up)
{
	if (link_up(v) == up)
		return;
	v->config[STATUS_OFF] = up ? S_LINK_UP : 0;
	v->cfg_gen++;
	if (v->status & DRIVER_OK)
		virtio_interrupt(v, ISR_CONFIG);
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
	r = virtio_pci_new(m, &vnet_ops, n, NET_F_MAC | NET_F_STATUS, 8, &v);
	if (r < 0)
		return r;
	memcpy(v->config, nic->mac, 6);
	v->config[STATUS_OFF] = S_LINK_UP;
	m->virtnet[idx] = v;
	return 0;
}
