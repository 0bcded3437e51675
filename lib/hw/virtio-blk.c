/*
 * virtio-blk (VIRTIO 1.2 section 5.2): one request queue; requests are a
 * 16-byte header (type, sector), the data, and a status byte.  The queue
 * has 1024 entries and seg_max is 1022 (QEMU's rule, queue size less 2,
 * with its queue-size=1024): Linux sends a 1 MiB read of 4 KiB pages as
 * one request, where with 256 entries it split it in two (254 + 2 pages).
 *
 * The vCPU that notifies the queue takes the requests off it and starts
 * the reads a back-end can start without waiting; a small thread pool
 * per disk does the rest of the I/O (reads and writes go straight
 * between the block back-end and guest memory: a back-end with
 * scatter/gather calls gets a request's segments as one iovec list;
 * without, small scattered segments go through a bounce buffer), several
 * requests at once and without the machine lock, then completes each
 * under the lock: status byte, used ring, interrupt.  A back-end that
 * can start a request without waiting (hw_block_vec_ops.submit: the NBD
 * client) completes it from its own thread when the reply is in, so a
 * request changes threads once, not twice; a failure there goes back to
 * the pool, where the error policy may stop the machine and wait.  A
 * device reset bumps a generation number so that requests still running
 * then are not completed into the new rings; the device is freed only
 * when no request is in flight.
 *
 * For the monitor: each request is counted in the drive's
 * hw_block_stats; a failed one follows the drive's rerror/werror policy
 * (QEMU's: report, ignore, or stop the machine and retry the request
 * when it runs again, raising the embedder's on_block_error hook); a
 * resize rewrites the capacity and raises a configuration-change
 * interrupt (section 4.1.4.5).
 */
#include <string.h>
#include <sys/uio.h>

#include "common/common.h"
#include "hw/virtio.h"

#define BLK_F_RO (1ull << 5)
#define BLK_F_SEG_MAX (1ull << 2)
#define BLK_F_FLUSH (1ull << 9)
#define QSIZE 1024

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

#define WORKERS 4

struct vblk {
	struct hw_disk disk;	/* disk.size: atomic (resize) */
	struct pool *pool;
	unsigned gen;		/* bumped by reset (machine lock) */
	int index;		/* in the machine's disks[] */
	pthread_mutex_t ilock;	/* inflight */
	pthread_cond_t idle;	/* inflight dropped to 0 */
	int inflight;		/* requests taken off the ring, not completed */
};

struct vblk_req {
	struct hw_virtio *v;
	unsigned gen;
	int q;
	uint32_t kind;		/* asynchronous: the type, its start, its error */
	int64_t t0;
	int err;
	struct virtq_elem e;
};

/* A request's data arrives as many segments (Linux sends up to seg_max
 * pages of 4 KiB that are rarely adjacent).  A back-end with
 * hw_block_vec_ops takes them all in one call (blk_io_vec).  Otherwise
 * one back-end call per segment would cost one NBD round trip each, so
 * segments adjacent in memory are merged, and a run of small ones goes
 * through a bounce buffer of up to BOUNCE_MAX bytes: one back-end call
 * for the run, one memcpy per segment.  Segments of BOUNCE_MIN or more
 * go straight between the back-end and guest memory. */
#define BOUNCE_MAX (4u << 20)
#define BOUNCE_MIN (64u << 10)

/* The next piece of the segment list from s[*i] (skipping *skip bytes
 * of it), at most max bytes, merged over adjacent segments. */
static size_t seg_run(const struct virtq_seg *s, int n, int *i, size_t *skip, size_t max,
		      uint8_t **p)
{
	size_t len = 0;

	*p = s[*i].p + *skip;
	while (*i < n && len < max && s[*i].p + *skip == *p + len) {
		size_t c = MIN(s[*i].len - *skip, max - len);
		len += c;
		*skip += c;
		if (*skip == s[*i].len) {
			(*i)++;
			*skip = 0;
		}
	}
	return len;
}

/* Gather (write) or scatter (read) a bounce buffer from/to segments. */
static void bounce_copy(const struct virtq_seg *s, int i, size_t skip, uint8_t *buf,
			size_t len, bool to_guest)
{
	for (; len; i++, skip = 0) {
		size_t c = MIN(s[i].len - skip, len);
		if (to_guest)
			memcpy(s[i].p + skip, buf, c);
		else
			memcpy(buf, s[i].p + skip, c);
		buf += c;
		len -= c;
	}
}

/* How many bytes from s[i]+skip on are small pieces worth bouncing. */
static size_t bounce_span(const struct virtq_seg *s, int n, int i, size_t skip, size_t total)
{
	size_t len = 0;

	for (; i < n && len < total && len < BOUNCE_MAX; i++, skip = 0) {
		size_t c = s[i].len - skip;
		if (c >= BOUNCE_MIN && len)
			break;
		len += c;
	}
	return MIN(MIN(len, total), (size_t)BOUNCE_MAX);
}

static int backend(struct vblk *b, void *p, uint64_t off, size_t len, bool write)
{
	return write ? b->disk.ops->write(b->disk.opaque, p, off, len)
		     : b->disk.ops->read(b->disk.opaque, p, off, len);
}

/* The segments' bytes [skip, skip+total) as iovecs, adjacent ones
 * merged; returns how many. */
static int build_iov(const struct virtq_seg *s, int n, size_t skip, size_t total,
		     struct iovec *v)
{
	int k = 0;

	for (int i = 0; i < n && total; i++) {
		uint8_t *p = s[i].p + skip;
		size_t c;

		if (skip >= s[i].len) {
			skip -= s[i].len;
			continue;
		}
		c = MIN(s[i].len - skip, total);
		if (k && (uint8_t *)v[k - 1].iov_base + v[k - 1].iov_len == p)
			v[k - 1].iov_len += c;
		else
			v[k++] = (struct iovec){ p, c };
		total -= c;
		skip = 0;
	}
	return k;
}

/* With a back-end that takes iovecs: the segments in one call, the data
 * straight between its socket and guest memory. */
static int blk_io_vec(struct vblk *b, const struct virtq_seg *s, int n, size_t skip,
		      uint64_t off, size_t total, bool write)
{
	struct iovec v[VIRTIO_MAX_SEGS];
	int k = build_iov(s, n, skip, total, v);

	return write ? b->disk.vec->writev(b->disk.opaque, v, k, off)
		     : b->disk.vec->readv(b->disk.opaque, v, k, off);
}

/* Read or write the data segments [first byte after skip ..] at off. */
static int blk_io(struct vblk *b, struct virtq_seg *s, int n, size_t skip, uint64_t off,
		  size_t total, bool write)
{
	uint64_t size = __atomic_load_n(&b->disk.size, __ATOMIC_RELAXED);
	uint8_t *bounce = NULL;
	int i = 0, r = 0;

	if (off + total < off || off + total > size)
		return -EINVAL;
	if (b->disk.vec)
		return blk_io_vec(b, s, n, skip, off, total, write);
	while (i < n && skip >= s[i].len)
		skip -= s[i++].len;
	while (total && i < n && r >= 0) {
		int i0 = i;
		size_t skip0 = skip;
		uint8_t *p;
		size_t len = seg_run(s, n, &i, &skip, total, &p);

		if (len < BOUNCE_MIN && i < n && len < total) {
			/* small and not adjacent to the next: bounce a run */
			i = i0, skip = skip0;
			len = bounce_span(s, n, i, skip, total);
			if (!bounce)
				bounce = xmalloc(BOUNCE_MAX);
			if (write)
				bounce_copy(s, i, skip, bounce, len, false);
			r = backend(b, bounce, off, len, write);
			if (r >= 0 && !write)
				bounce_copy(s, i, skip, bounce, len, true);
			for (size_t k = len; k; ) {
				size_t c = MIN(s[i].len - skip, k);
				k -= c;
				skip += c;
				if (skip == s[i].len)
					i++, skip = 0;
			}
		} else {
			r = backend(b, p, off, len, write);
		}
		off += len;
		total -= len;
	}
	free(bounce);
	return r;
}

static size_t seg_total(const struct virtq_seg *s, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += s[i].len;
	return t;
}

/* The request header: type and byte offset; false when it is short. */
static bool parse_hdr(const struct virtq_elem *e, uint32_t *type, uint64_t *off)
{
	uint8_t hdr[16];

	if (virtq_copy_from(e->out, e->nout, 0, hdr, 16) < 16)
		return false;
	*type = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	*off = 0;
	for (int i = 7; i >= 0; i--)
		*off = *off << 8 | hdr[8 + i];
	*off *= 512;
	return true;
}

static uint32_t handle(struct hw_virtio *v, struct vblk *b, struct virtq_elem *e, uint8_t *st,
		       int *err, uint32_t *kind)
{
	size_t out = seg_total(e->out, e->nout), in = seg_total(e->in, e->nin) - 1;
	uint32_t type;
	uint64_t off;
	int r = 0;

	if (!parse_hdr(e, &type, &off)) {
		*st = S_IOERR;
		return 1;
	}
	*kind = type;
	LOG(LOG_VIRTIO, "virtio-blk: type %u sector %" PRIu64 " bytes %zu segments %d+%d", type,
	    off / 512, type == T_OUT ? out - 16 : in, e->nout, e->nin);
	switch (type) {
	case T_IN:
		r = *err = blk_io(b, e->in, e->nin, 0, off, in, false);
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
	*err = r;
	*st = r < 0 ? S_IOERR : S_OK;
	return 1;
}

static size_t req_bytes(const struct virtq_elem *e, uint32_t kind)
{
	if (kind == T_IN)
		return seg_total(e->in, e->nin) - 1;
	return kind == T_OUT ? seg_total(e->out, e->nout) - 16 : 0;
}

static void count(struct hw_block_stats *s, uint32_t kind, size_t bytes, int err, int64_t t0)
{
	int64_t now = hw_clock_ns();
	uint64_t *ops, *nbytes = NULL, *ns, *failed;

	if (!s || (kind != T_IN && kind != T_OUT && kind != T_FLUSH))
		return;
	if (kind == T_IN)
		ops = &s->rd_ops, nbytes = &s->rd_bytes, ns = &s->rd_ns, failed = &s->failed_rd;
	else if (kind == T_OUT)
		ops = &s->wr_ops, nbytes = &s->wr_bytes, ns = &s->wr_ns, failed = &s->failed_wr;
	else
		ops = &s->flush_ops, ns = &s->flush_ns, failed = &s->failed_flush;
	if (err < 0) {
		__atomic_fetch_add(failed, 1, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_add(ops, 1, __ATOMIC_RELAXED);
		if (nbytes)
			__atomic_fetch_add(nbytes, bytes, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(ns, (uint64_t)(now - t0), __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_ns, now, __ATOMIC_RELAXED);
}

/* What the drive's policy says for a failed request (-EROFS of a
 * read-only disk and unsupported requests are the guest's problem). */
static enum hw_blk_error_action error_action(const struct vblk *b, uint32_t kind, int err)
{
	enum hw_blk_error_action a = kind == T_IN ? b->disk.rerror : b->disk.werror;

	if (err >= 0 || err == -EROFS || err == -EINVAL)
		return HW_BLKERR_REPORT;
	if (a == HW_BLKERR_ENOSPC)
		a = err == -ENOSPC ? HW_BLKERR_STOP : HW_BLKERR_REPORT;
	return a;
}

/* Stop the machine for a failed request and wait (lock held) until it
 * runs again: true to retry, false when the machine ends or the device
 * was reset meanwhile. */
static bool stop_and_wait_locked(struct hw_virtio *v, struct vblk *b, unsigned gen)
{
	struct machine *m = v->m;

	m->paused = true;
	for (int i = 0; i < m->ncpu; i++)
		hw_cpu_kick(m, i);
	pthread_cond_broadcast(&m->state_cond);
	while (m->paused && !m->stopping && gen == b->gen)
		pthread_cond_wait(&m->state_cond, &m->lock);
	return !m->stopping && gen == b->gen;
}

/* Report a failure to the embedder and apply the policy (lock held):
 * true when the request is to be run again. */
static bool failed_locked(struct hw_virtio *v, struct vblk *b, struct vblk_req *r,
			  uint32_t kind, int err, uint8_t *st)
{
	const struct hw_config *cfg = &v->m->cfg;
	enum hw_blk_error_action a = error_action(b, kind, err);

	if (err >= 0 || kind == T_GET_ID || r->gen != b->gen)
		return false;
	if (cfg->on_block_error)
		cfg->on_block_error(cfg->on_block_error_opaque, b->index, kind != T_IN, err, a);
	if (a == HW_BLKERR_IGNORE)
		*st = S_OK;
	return a == HW_BLKERR_STOP && stop_and_wait_locked(v, b, r->gen);
}

static void inflight_add(struct vblk *b, int d)
{
	pthread_mutex_lock(&b->ilock);
	b->inflight += d;
	if (!b->inflight)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->ilock);
}

/* Status byte and used ring, unless the device was reset meanwhile
 * (machine lock held). */
static void complete_locked(struct hw_virtio *v, struct vblk *b, struct vblk_req *r,
			    uint8_t st, uint32_t len)
{
	if (r->gen == b->gen) {
		struct virtq_seg *last = &r->e.in[r->e.nin - 1];
		last->p[last->len - 1] = st;
		virtq_push(v, r->q, &r->e, len);
	}
}

/* The synchronous way, on a pool thread: the I/O without the lock, the
 * completion with it; a failure is retried as long as the policy says. */
static void blk_sync(struct vblk_req *r)
{
	struct hw_virtio *v = r->v;
	struct vblk *b = v->dev;
	uint8_t st;
	uint32_t len, kind = T_GET_ID;
	int err;

	for (;;) {
		int64_t t0 = hw_clock_ns();
		err = 0;
		len = handle(v, b, &r->e, &st, &err, &kind);
		count(b->disk.stats, kind, req_bytes(&r->e, kind), err, t0);
		pthread_mutex_lock(&v->m->lock);
		if (!failed_locked(v, b, r, kind, err, &st))
			break;
		pthread_mutex_unlock(&v->m->lock);
	}
	complete_locked(v, b, r, st, len);
	pthread_mutex_unlock(&v->m->lock);
	free(r);
	inflight_add(b, -1);
}

/* A failed asynchronous request, on a pool thread (the policy may stop
 * the machine and wait, which the back-end's thread must not). */
static void blk_failed_work(void *arg)
{
	struct vblk_req *r = arg;
	struct hw_virtio *v = r->v;
	struct vblk *b = v->dev;
	uint8_t st = S_IOERR;

	LOG(LOG_BLOCK, "virtio-blk: %s failed: %s", r->kind == T_OUT ? "write" : "read",
	    strerror(-r->err));
	pthread_mutex_lock(&v->m->lock);
	if (failed_locked(v, b, r, r->kind, r->err, &st)) {
		pthread_mutex_unlock(&v->m->lock);
		blk_sync(r);	/* run again, the synchronous way */
		return;
	}
	complete_locked(v, b, r, st, 1);
	pthread_mutex_unlock(&v->m->lock);
	free(r);
	inflight_add(b, -1);
}

/* An asynchronous request's end, on the back-end's thread. */
static void blk_done(void *arg, int err)
{
	struct vblk_req *r = arg;
	struct hw_virtio *v = r->v;
	struct vblk *b = v->dev;
	size_t bytes = req_bytes(&r->e, r->kind);

	count(b->disk.stats, r->kind, bytes, err, r->t0);
	if (err < 0) {
		r->err = err;
		pool_submit(b->pool, blk_failed_work, r);
		return;
	}
	pthread_mutex_lock(&v->m->lock);
	complete_locked(v, b, r, S_OK, r->kind == T_IN ? bytes + 1 : 1);
	pthread_mutex_unlock(&v->m->lock);
	free(r);
	inflight_add(b, -1);
}

/* Hand a plain read or write to a back-end that can start it without
 * waiting: its completion then comes from the back-end's own thread,
 * one thread switch fewer.  False: take the synchronous way. */
static bool blk_try_async(struct vblk_req *r)
{
	struct vblk *b = r->v->dev;
	struct virtq_elem *e = &r->e;
	struct iovec v[VIRTIO_MAX_SEGS];
	uint64_t size = __atomic_load_n(&b->disk.size, __ATOMIC_RELAXED), off;
	bool write;
	size_t total;
	int k;

	if (!b->disk.vec || !b->disk.vec->submit || !parse_hdr(e, &r->kind, &off) ||
	    (r->kind != T_IN && (r->kind != T_OUT || b->disk.readonly)))
		return false;
	write = r->kind == T_OUT;
	total = req_bytes(e, r->kind);
	if (!total || off + total < off || off + total > size)
		return false;
	k = write ? build_iov(e->out, e->nout, 16, total, v) : build_iov(e->in, e->nin, 0, total, v);
	LOG(LOG_VIRTIO, "virtio-blk: type %u sector %" PRIu64 " bytes %zu segments %d+%d, async",
	    r->kind, off / 512, total, e->nout, e->nin);
	r->t0 = hw_clock_ns();
	return b->disk.vec->submit(b->disk.opaque, write, v, k, off, blk_done, r) == 0;
}

/* A read for a back-end that starts it without waiting starts right
 * here, on the notifying vCPU: only its request header goes out now (the
 * NBD client's one short send), and the hop to a pool thread is saved.
 * A write sends its data with the request, which may fill the socket and
 * wait: writes, and anything the back-end refuses, go to the pool. */
static bool blk_try_async_read(struct vblk_req *r)
{
	uint32_t type;
	uint64_t off;

	return parse_hdr(&r->e, &type, &off) && type == T_IN && blk_try_async(r);
}

static void blk_work(void *arg)
{
	if (!blk_try_async(arg))
		blk_sync(arg);
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
		inflight_add(b, 1);
		if (!blk_try_async_read(r))
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

	/* asynchronous requests end on the back-end's thread: wait for them */
	pthread_mutex_lock(&b->ilock);
	while (b->inflight)
		pthread_cond_wait(&b->idle, &b->ilock);
	pthread_mutex_unlock(&b->ilock);
	pool_free(b->pool);
	pthread_mutex_destroy(&b->ilock);
	pthread_cond_destroy(&b->idle);
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
	b->index = (int)(d - m->cfg.disks);
	b->pool = pool_new(WORKERS);
	pthread_mutex_init(&b->ilock, NULL);
	pthread_cond_init(&b->idle, NULL);
	r = virtio_pci_new(m, &vblk_ops, b, BLK_F_SEG_MAX | BLK_F_FLUSH | (d->readonly ? BLK_F_RO : 0),
			   24, &v);
	if (r < 0)
		return r;
	for (int i = 0; i < 8; i++)
		v->config[i] = sectors >> (8 * i);
	for (int i = 0; i < 4; i++)
		v->config[12 + i] = (uint8_t)((QSIZE - 2) >> (8 * i));	/* seg_max */
	return 0;
}

/* The virtio-blk device of disk `disk`, or NULL (lock held). */
static struct hw_virtio *find_locked(struct machine *m, int disk)
{
	for (int i = 0; i < m->ndevs; i++) {
		struct hw_virtio *v = m->devs[i].dev;
		if (!strcmp(m->devs[i].ops->name, vblk_ops.name) && ((struct vblk *)v->dev)->index == disk)
			return v;
	}
	return NULL;
}

int machine_disk_resize(struct machine *m, int disk, uint64_t size)
{
	struct hw_virtio *v;
	struct vblk *b;

	pthread_mutex_lock(&m->lock);
	v = find_locked(m, disk);
	if (v) {
		b = v->dev;
		__atomic_store_n(&b->disk.size, size, __ATOMIC_RELAXED);
		for (int i = 0; i < 8; i++)
			v->config[i] = (size / 512) >> (8 * i);
		v->cfg_gen++;
		if (v->status & 4)	/* DRIVER_OK */
			virtio_interrupt(v, 2);
	}
	pthread_mutex_unlock(&m->lock);
	return v ? 0 : err_set(-ENODEV, "disk %d is no virtio-blk disk", disk);
}
