/*
 * virtio-rng, the entropy device (VIRTIO 1.2 section 5.4): one queue
 * whose buffers are filled from the host's getrandom().
 */
#include <sys/random.h>

#include "common/common.h"
#include "hw/virtio.h"

static void rng_notify(struct hw_virtio *v, int q)
{
	struct virtq_elem *e = v->elem;

	while (virtq_pop(v, q, e) > 0) {
		uint32_t total = 0;
		for (int i = 0; i < e->nin; i++) {
			ssize_t n = getrandom(e->in[i].p, e->in[i].len, GRND_NONBLOCK);
			if (n <= 0)
				break;
			total += n;
		}
		virtq_push(v, q, e, total);
	}
}

static const struct virtio_dev_ops vrng_ops = {
	.name = "virtio-rng", .device_id = 4, .class_code = 0x00ff,
	.nqueues = 1, .qsize = 64, .notify = rng_notify,
};

int virtio_rng_new(struct machine *m)
{
	struct hw_virtio *v;

	return virtio_pci_new(m, &vrng_ops, NULL, 0, 0, &v);
}
