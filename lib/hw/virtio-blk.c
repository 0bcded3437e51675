/*
 * virtio-blk (VIRTIO 1.2 section 5.2): one request queue; requests are a
 * 16-byte header (type, sector), the data, and a status byte.
 *
 * The vCPU that notifies the queue only takes the requests off it; a
 * small thread pool per disk does the I/O (reads and writes go straight
 * between the block back-end and guest memory, no bounce buffer), several
 * requests at once and without the machine lock, then completes each
 * under the lock: status byte, used ring, interrupt.  A device reset
 * bumps a generation number so that requests still running then are
 * not completed into the new rings.
 */
#include <string.h>

#include "common/common.h"
#include "hw/virtio.h"

#define BLK_F_RO (1ull << 5)
#define BLK_F_SEG_MAX (1ull << 2)
#define BLK_F_FLUSH (1ull << 9)
#define QSIZE 256

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

#define WORKERS 4

struct vblk {
	struct hw_disk disk;
	struct pool *pool;
	unsigned gen;		/* bumped by reset (machine lock) */
};

struct vblk_req {
	struct hw_virtio *v;
	unsigned gen;
	int q;
	struct virtq_elem e;
};

/* Read or write the data segments [first byte after skip ..] at off. */
static int blk_io(struct vblk *b, struct virtq_seg *s, int n, size_t skip, uint64_t off,
		  size_t total, bool write)
{
	if (off + total < off || off + total > b->disk.size)
		return -EINVAL;
	for (int i = 0; i < n && total; i++) {
		if (skip >= s[i].len) {
			skip -= s[i].len;
			continue;
		}
		size_t c = MIN(s[i].len - skip, total);
		int r = write ? b->disk.ops->write(b->disk.opaque, s[i].p + skip, off, c)
			      : b->disk.ops->read(b->disk.opaque, s[i].p + skip, off, c);
		if (r < 0)
			return r;
		off += c;
		total -= c;
		skip = 0;
	}
	return 0;
}

static size_t seg_total(const struct virtq_seg *s, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += s[i].len;
	return t;
}

static uint32_t handle(struct hw_virtio *v, struct vblk *b, struct virtq_elem *e, uint8_t *st)
{
	uint8_t hdr[16];
	size_t out = seg_total(e->out, e->nout), in = seg_total(e->in, e->nin) - 1;
	uint32_t type;
	uint64_t off;
	int r = 0;

	if (virtq_copy_from(e->out, e->nout, 0, hdr, 16) < 16) {
		*st = S_IOERR;
		return 1;
	}
	type = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	off = 0;
	for (int i = 7; i >= 0; i--)
		off = off << 8 | hdr[8 + i];
	off *= 512;
	switch (type) {
	case T_IN:
		r = blk_io(b, e->in, e->nin, 0, off, in, false);
		*st = r < 0 ? S_IOERR : S_OK;
		return r < 0 ? 1 : in + 1;
	case T_OUT:
		r = b->disk.readonly ? -EROFS : blk_io(b, e->out, e->nout, 16, off, out - 16, true);
		break;
	case T_FLUSH:
		r = b->disk.ops->flush ? b->disk.ops->flush(b->disk.opaque) : 0;
		break;
	case T_GET_ID: {
		char id[20] = "vm-run-disk";
		virtq_copy_to(e->in, e->nin, 0, id, MIN(in, sizeof(id)));
		*st = S_OK;
		return MIN(in, sizeof(id)) + 1;
	}
	default:
		*st = S_UNSUPP;
		return 1;
	}
	if (r < 0)
		LOG(LOG_BLOCK, "virtio-blk: %s at %" PRIu64 ": %s", type == T_OUT ? "write" : "flush",
		    off, err_msg());
	*st = r < 0 ? S_IOERR : S_OK;
	return 1;
}

/* A pool thread: the I/O without the lock, the completion with it. */
static void blk_work(void *arg)
{
	struct vblk_req *r = arg;
	struct hw_virtio *v = r->v;
	struct vblk *b = v->dev;
	uint8_t st;
	uint32_t len = handle(v, b, &r->e, &st);

	pthread_mutex_lock(&v->m->lock);
	if (r->gen == b->gen) {
		struct virtq_seg *last = &r->e.in[r->e.nin - 1];
		last->p[last->len - 1] = st;
		virtq_push(v, r->q, &r->e, len);
	}
	pthread_mutex_unlock(&v->m->lock);
	free(r);
}

static void blk_notify(struct hw_virtio *v, int q)
{
	struct vblk *b = v->dev;

	for (;;) {
		struct vblk_req *r = xmalloc(sizeof(*r));
		if (virtq_pop(v, q, &r->e) <= 0) {
			free(r);
			break;
		}
		if (!r->e.nin || !r->e.in[r->e.nin - 1].len) {
			LOG(LOG_GUEST_ERRORS, "virtio-blk: request without a status byte");
			virtq_push(v, q, &r->e, 0);
			free(r);
			continue;
		}
		r->v = v;
		r->gen = b->gen;
		r->q = q;
		pool_submit(b->pool, blk_work, r);
	}
}

static void blk_reset(struct hw_virtio *v)
{
	((struct vblk *)v->dev)->gen++;
}

static void blk_free(struct hw_virtio *v)
{
	struct vblk *b = v->dev;

	pool_free(b->pool);
	free(b);
}

static const struct virtio_dev_ops vblk_ops = {
	.name = "virtio-blk", .device_id = 2, .class_code = 0x0180,
	.nqueues = 1, .qsize = QSIZE, .notify = blk_notify, .reset = blk_reset, .free = blk_free,
};

int virtio_blk_new(struct machine *m, const struct hw_disk *d)
{
	struct vblk *b = xzalloc(sizeof(*b));
	struct hw_virtio *v;
	uint64_t sectors = d->size / 512;
	int r;

	b->disk = *d;
	b->pool = pool_new(WORKERS);
	r = virtio_pci_new(m, &vblk_ops, b, BLK_F_SEG_MAX | BLK_F_FLUSH | (d->readonly ? BLK_F_RO : 0),
			   24, &v);
	if (r < 0)
		return r;
	for (int i = 0; i < 8; i++)
		v->config[i] = sectors >> (8 * i);
	v->config[12] = QSIZE - 2;	/* seg_max */
	return 0;
}
