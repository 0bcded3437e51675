/*
 * vm-img convert's copy engine.
 *
 * The whole (all sources end to end) is cut into chunks of c->chunk bytes
 * that -m workers take in turn.  A worker first plans its chunk without
 * touching the target: it walks the source by block status (holes and
 * zero extents are never read), reads the data, finds zero runs of -S
 * bytes and, with -c, compresses every cluster, so compression runs on all
 * workers at once.  The plan is a short list of writes, zero writes and
 * (-C) kernel copies, plus the compressed clusters.  Without -W the
 * plans are committed in guest order, as qemu-img writes (a qcow2 target
 * gets its clusters in guest order and the compressed ones packed back to
 * back): a finished plan waits in a window of slots (twice the workers)
 * and whichever worker finds the next chunk's plan ready commits it and
 * those after it, while the others go on planning later chunks, so one
 * slow worker does not stall the rest.  With -W each worker commits its
 * own plan at once.  -r paces the commits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "convert.h"
#include "img.h"

enum op_kind { OP_DATA, OP_ZERO, OP_COPY };

struct conv_op {
	enum op_kind kind;
	uint64_t off, len;       /* in the whole (= in the target) */
	size_t bufoff;           /* OP_DATA: the bytes in the job's buffer */
	int src;                 /* OP_COPY: source image and offset in it */
	uint64_t soff;
};

/* One chunk: its buffer, plan and compressed clusters. */
struct conv_job {
	uint64_t idx, off, n;
	bool ready;              /* planned, waiting for its turn */
	uint8_t *buf;
	struct conv_op *ops;
	size_t nops, cap;
	struct fmt_cdata cd;
	bool has_cd;
	uint8_t *needed;         /* -c: clusters to write (-B: those the top
				    layer allocates) */
	uint8_t *want;           /* -c: clusters with data to compress */
};

/* Source index holding offset off of the whole. */
static int conv_src(const struct conv *c, uint64_t off)
{
	int i = c->nsrc - 1;

	while (i > 0 && c->src_start[i] > off)
		i--;
	return i;
}

static void conv_fail_locked(struct conv *c, int r)
{
	if (!c->err) {
		c->err = r;
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", err_msg());
	}
	pthread_cond_broadcast(&c->space);
}

static void conv_fail(struct conv *c, int r)
{
	pthread_mutex_lock(&c->lock);
	conv_fail_locked(c, r);
	pthread_mutex_unlock(&c->lock);
}

/* Append an operation, merging it into the previous one when they join. */
static void op_add(struct conv_job *j, enum op_kind k, uint64_t off, uint64_t len,
		   size_t bufoff, int src, uint64_t soff)
{
	struct conv_op *p = j->nops ? &j->ops[j->nops - 1] : NULL;

	if (!len)
		return;
	if (p && p->kind == k && p->off + p->len == off &&
	    (k != OP_DATA || p->bufoff + p->len == bufoff) &&
	    (k != OP_COPY || (p->src == src && p->soff + p->len == soff))) {
		p->len += len;
		return;
	}
	if (j->nops == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 64;
		j->ops = xrealloc(j->ops, j->cap * sizeof(*j->ops));
	}
	j->ops[j->nops++] = (struct conv_op){ k, off, len, bufoff, src, soff };
}

/* Read [off, off+n) of the whole into buf. */
static int conv_read(struct conv *c, uint8_t *buf, uint64_t off, uint64_t n)
{
	while (n) {
		int i = conv_src(c, off);
		uint64_t so = off - c->src_start[i];
		uint64_t len = MIN(n, fmt_size(c->src[i]) - so);
		int r = fmt_read(c->src[i], buf, so, len);

		if (r < 0)
			return r;
		buf += len;
		off += len;
		n -= len;
	}
	return 0;
}

/* Data just read at buf + bo: write it, skipping (or zeroing) zero runs of
 * c->sparse bytes. */
static void plan_data(struct conv *c, struct conv_job *j, uint64_t off,
		      size_t bo, uint64_t len)
{
	uint64_t g = c->sparse, i = 0, k;
	const uint8_t *b = j->buf + bo;

	if (!g) {
		op_add(j, OP_DATA, off, len, bo, 0, 0);
		return;
	}
	while (i < len) {
		bool z = fmt_is_zero(b + i, MIN(g, len - i));

		for (k = i + MIN(g, len - i); k < len && fmt_is_zero(b + k, MIN(g, len - k)) == z;
		     k += MIN(g, len - k))
			;
		if (!z)
			op_add(j, OP_DATA, off + i, k - i, bo + i, 0, 0);
		else if (!c->zero_init)
			op_add(j, OP_ZERO, off + i, k - i, 0, 0, 0);
		i = k;
	}
}

/* The extent at off (within one source), at most len bytes. */
static int conv_extent(struct conv *c, uint64_t off, uint64_t len, bool chain,
		       struct fmt_extent *e, int *src, uint64_t *so)
{
	int i = conv_src(c, off);

	*src = i;
	*so = off - c->src_start[i];
	len = MIN(len, fmt_size(c->src[i]) - *so);
	return fmt_block_status(c->src[i], *so, len, chain, e);
}

static int plan_plain(struct conv *c, struct conv_job *j)
{
	uint64_t off = j->off, end = j->off + j->n, so;
	struct fmt_extent e;
	int r, i;

	for (; off < end; off += e.length) {
		size_t bo = (size_t)(off - j->off);

		if ((r = conv_extent(c, off, end - off, !c->top_only, &e, &i, &so)) < 0)
			return r;
		if (c->top_only && !(e.status & FMT_ST_ALLOCATED))
			continue;
		if (e.status & FMT_ST_ZERO) {
			if (!c->zero_init)
				op_add(j, OP_ZERO, off, e.length, 0, 0, 0);
		} else if (c->copy_range) {
			op_add(j, OP_COPY, off, e.length, bo, i, so);
		} else {
			if ((r = fmt_read(c->src[i], j->buf + bo, so, e.length)) < 0)
				return r;
			plan_data(c, j, off, bo, e.length);
		}
	}
	return 0;
}

/* -c: the holes noted as zero ops while filling: clusters wholly inside
 * one are not compressed at all (want 0), the rest of a hole becomes
 * zeros in the buffer; then the ops are dropped. */
static void plan_blank_holes(struct conv_job *j, uint64_t cs)
{
	uint64_t a, b, k;
	size_t i;

	memset(j->want, 1, DIV_ROUND_UP(j->n, cs));
	for (i = 0; i < j->nops; i++) {
		a = j->ops[i].off - j->off;
		b = a + j->ops[i].len;
		for (k = DIV_ROUND_UP(a, cs); (k + 1) * cs <= b; k++)
			j->want[k] = 0;
		if (b == j->n && b % cs && a <= ALIGN_DOWN(b, cs))
			j->want[b / cs] = 0;      /* the image ends in this hole */
		if (ALIGN_UP(a, cs) >= b) {
			memset(j->buf + a, 0, b - a);
			continue;
		}
		memset(j->buf + a, 0, ALIGN_UP(a, cs) - a);
		memset(j->buf + ALIGN_DOWN(b, cs), 0, b - ALIGN_DOWN(b, cs));
	}
	j->nops = 0;
}

/* -c: the chunk's bytes with holes as zeros (with -B: the whole chain;
 * the clusters the top layer does not allocate are not wanted). */
static int plan_fill(struct conv *c, struct conv_job *j, uint64_t cs, bool *empty)
{
	uint64_t off = j->off, end = j->off + j->n, so, k;
	struct fmt_extent e;
	int r = 0, i;

	*empty = true;
	if (c->top_only) {
		memset(j->needed, 0, DIV_ROUND_UP(j->n, cs));
		for (; off < end; off += e.length) {
			if ((r = conv_extent(c, off, end - off, false, &e, &i, &so)) < 0)
				return r;
			if (!(e.status & FMT_ST_ALLOCATED))
				continue;
			*empty = false;
			for (k = (off - j->off) / cs; k * cs < off + e.length - j->off; k++)
				j->needed[k] = 1;
		}
		if (*empty)
			return 0;
		if ((r = conv_read(c, j->buf, j->off, j->n)) < 0)
			return r;
		return 0;
	}
	memset(j->needed, 1, DIV_ROUND_UP(j->n, cs));
	for (; off < end; off += e.length) {
		size_t bo = (size_t)(off - j->off);

		if ((r = conv_extent(c, off, end - off, true, &e, &i, &so)) < 0)
			return r;
		if (e.status & FMT_ST_ZERO) {
			op_add(j, OP_ZERO, off, e.length, 0, 0, 0);
			continue;
		}
		*empty = false;
		if ((r = fmt_read(c->src[i], j->buf + bo, so, e.length)) < 0)
			return r;
	}
	plan_blank_holes(j, cs);
	return 0;
}

static int plan_compressed(struct conv *c, struct conv_job *j)
{
	uint64_t cs = fmt_cluster_size(c->dst), len, k;
	bool empty;
	int r;

	if ((r = plan_fill(c, j, cs, &empty)) < 0)
		return r;
	if (empty) {
		j->nops = 0;
		if (!c->zero_init && !c->top_only)
			op_add(j, OP_ZERO, j->off, j->n, 0, 0, 0);
		return 0;
	}
	len = MIN(ALIGN_UP(j->n, cs), fmt_size(c->dst) - j->off);
	memset(j->buf + j->n, 0, (size_t)(len - j->n));
	j->cd.want = c->top_only ? j->needed : j->want;
	if ((r = fmt_compress(c->dst, j->buf, j->off, (size_t)len, true, &j->cd)) < 0)
		return r;
	j->has_cd = true;
	for (k = 0; k < j->cd.n; k++)
		if (!j->cd.len[k] && j->needed[k] && !c->zero_init)
			op_add(j, OP_ZERO, j->off + k * cs, MIN(cs, j->n - k * cs), 0, 0, 0);
	return 0;
}

static int commit_op(struct conv *c, struct conv_job *j, const struct conv_op *o)
{
	size_t bo = (size_t)(o->off - j->off);
	int r;

	switch (o->kind) {
	case OP_DATA:
		return fmt_write(c->dst, j->buf + o->bufoff, o->off, o->len, 0);
	case OP_ZERO:
		return fmt_write_zeroes(c->dst, o->off, o->len, FMT_W_MAY_UNMAP);
	default:
		r = fmt_copy_range(c->src[o->src], o->soff, c->dst, o->off, o->len);
		if (r != -ENOTSUP)
			return r;
		if ((r = fmt_read(c->src[o->src], j->buf + bo, o->soff, o->len)) < 0)
			return r;
		return fmt_write(c->dst, j->buf + bo, o->off, o->len, 0);
	}
}

static int conv_commit(struct conv *c, struct conv_job *j)
{
	size_t i;
	int r;

	for (i = 0; i < j->nops; i++)
		if ((r = commit_op(c, j, &j->ops[i])) < 0)
			return r;
	if (j->has_cd)
		return fmt_write_compressed(c->dst, &j->cd);
	return 0;
}

/* -r: sleep until the bytes so far fit the rate. */
static void conv_pace(struct conv *c, uint64_t n)
{
	uint64_t bytes;

	if (!c->rate)
		return;
	pthread_mutex_lock(&c->lock);
	bytes = c->rate_bytes += n;
	pthread_mutex_unlock(&c->lock);
	img_pace(c->rate, c->start_ns, bytes);
}

/* Page-aligned buffers: the kernel copies to and from the page cache
 * much faster than into a buffer 16 bytes off a page boundary. */
static void *conv_buf_alloc(size_t n)
{
	void *p;

	if (posix_memalign(&p, 4096, n))
		return xmalloc(n);      /* xmalloc reports running out of memory */
	return p;
}

static void job_start(struct conv *c, struct conv_job *j, uint64_t idx)
{
	if (!j->buf) {
		j->buf = conv_buf_alloc(c->chunk);
		j->needed = xmalloc(c->chunk / 512 + 1);
		j->want = xmalloc(c->chunk / 512 + 1);
	}
	j->idx = idx;
	j->off = idx * c->chunk;
	j->n = MIN(c->chunk, c->total - j->off);
	j->nops = 0;
	j->has_cd = false;
	j->ready = false;
}

static void job_free(struct conv_job *j)
{
	fmt_cdata_free(&j->cd);
	free(j->ops);
	free(j->needed);
	free(j->want);
	free(j->buf);
}

/* A chunk is written: count it (lock held). */
static void conv_done_locked(struct conv *c, const struct conv_job *j)
{
	c->written++;
	c->done_bytes += j->n;
	progress_update(&c->prog, c->done_bytes, c->total);
	if (c->space_waiters)        /* one slot came free: wake one worker */
		pthread_cond_signal(&c->space);
}

static int conv_plan(struct conv *c, struct conv_job *j)
{
	return c->compress ? plan_compressed(c, j) : plan_plain(c, j);
}

/* -W: plan and commit chunks on this worker's own job. */
static void conv_worker_unordered(struct conv *c)
{
	struct conv_job j = { 0 };
	uint64_t idx;
	int r;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		idx = c->next++;
		if (c->err || idx >= c->nchunks) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		pthread_mutex_unlock(&c->lock);
		job_start(c, &j, idx);
		if ((r = conv_plan(c, &j)) < 0 || (r = conv_commit(c, &j)) < 0) {
			conv_fail(c, r);
			break;
		}
		pthread_mutex_lock(&c->lock);
		conv_done_locked(c, &j);
		pthread_mutex_unlock(&c->lock);
		conv_pace(c, j.n);
	}
	job_free(&j);
}

/* Commit ready slots in order while the next one is ready (lock held on
 * entry and exit; released around each commit). */
static void conv_commit_ready_locked(struct conv *c)
{
	struct conv_job *j;
	int r;

	c->committing = true;
	while (!c->err && c->written < c->nchunks &&
	       (j = &c->slots[c->written % (uint64_t)c->nslots])->ready &&
	       j->idx == c->written) {
		pthread_mutex_unlock(&c->lock);
		r = conv_commit(c, j);
		pthread_mutex_lock(&c->lock);
		if (r < 0) {
			conv_fail_locked(c, r);
			break;
		}
		j->ready = false;
		conv_done_locked(c, j);
		pthread_mutex_unlock(&c->lock);
		conv_pace(c, j->n);
		pthread_mutex_lock(&c->lock);
	}
	c->committing = false;
}

static void conv_worker(void *arg)
{
	struct conv *c = arg;
	struct conv_job *j;
	uint64_t idx;
	int r;

	if (!c->in_order) {
		conv_worker_unordered(c);
		return;
	}
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->err && c->next < c->nchunks &&
		       c->next >= c->written + (uint64_t)c->nslots) {
			c->space_waiters++;
			pthread_cond_wait(&c->space, &c->lock);
			c->space_waiters--;
		}
		if (c->err || c->next >= c->nchunks) {
			pthread_cond_broadcast(&c->space);   /* the others stop too */
			break;
		}
		idx = c->next++;
		j = &c->slots[idx % (uint64_t)c->nslots];
		pthread_mutex_unlock(&c->lock);
		job_start(c, j, idx);
		r = conv_plan(c, j);
		pthread_mutex_lock(&c->lock);
		if (r < 0) {
			conv_fail_locked(c, r);
			break;
		}
		j->ready = true;
		if (!c->committing)
			conv_commit_ready_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
}

int conv_copy(struct conv *c, int threads)
{
	struct pool *p;
	int i;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->space, NULL);
	c->nchunks = DIV_ROUND_UP(c->total, c->chunk);
	c->start_ns = img_now_ns();
	if (c->compress)
		threads = MAX(threads, cpu_count());
	threads = (int)MIN((uint64_t)threads, MAX(c->nchunks, 1));
	c->nslots = 2 * threads;
	c->slots = xzalloc(sizeof(*c->slots) * (size_t)c->nslots);
	p = pool_new(threads);
	for (i = 0; i < threads; i++)
		pool_submit(p, conv_worker, c);
	pool_wait(p);
	pool_free(p);
	progress_end(&c->prog);
	for (i = 0; i < c->nslots; i++)
		job_free(&c->slots[i]);
	free(c->slots);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->space);
	if (c->err) {
		report("error while converting: %s", c->errmsg);
		return 1;
	}
	if (fmt_flush(c->dst) < 0) {
		report_err();
		return 1;
	}
	return 0;
}
