/*
 * The transmission phase of one NBD connection (proto.md "Transmission",
 * "Request types", "Structured reply types", "Error values").
 *
 * The reader thread takes 28-byte requests off the socket, checks each
 * completely (magic, command, flags, bounds, read-only) before anything
 * reaches the image, and hands valid ones to the shared thread pool;
 * a worker runs the command and builds the reply as a list of iovecs
 * (header bytes in a small arena, data straight from the read buffer);
 * the connection's writer thread sends finished replies in the order
 * they finish, several in one writev().  Requests in flight per
 * connection are bounded in number and bytes, so a client cannot make
 * us allocate without limit.
 *
 * Reads use structured replies when negotiated: data extents as
 * NBD_REPLY_TYPE_OFFSET_DATA, zero extents as NBD_REPLY_TYPE_OFFSET_HOLE,
 * the last chunk flagged DONE (everything is read before anything is
 * sent, so no error can follow it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "vm-nbd.h"

#define MAX_INFLIGHT 64
#define MAX_INFLIGHT_BYTES (256u << 20)
#define BS_MAX_EXTENTS 65536     /* descriptors per block status chunk */
#define INLINE_MAX (64u << 10)         /* reads the reader may run itself */
#define INLINE_SPLICE_MAX (4u << 20) /* ... or splices (cheap: no copy) */
#define INLINE_BACKOFF_NS 200000000u   /* after an inline read slept */
#define INLINE_BATCH 32                /* inline replies sent together, */
#define INLINE_BATCH_BYTES (1u << 20)  /* or this much data */
#define SPLICE_MIN (64u << 10)    /* smaller reads are copied: a pipe and
				     two splices cost more than the copy */
#define SPLICE_SLACK (64u << 10)  /* pipe room asked beyond a read's length:
				     its pages may start and end mid-page */
#define READ_MAX_CHUNKS 4096     /* extents per sparse read before we
				    just send the rest as data */

/* ---- building a reply ---- */

struct chunk {
	uint16_t type;
	uint64_t off;
	uint32_t len;
	uint32_t pos;      /* its bytes' place in the request's buffer */
	bool piped;        /* the data waits in the request's pipe */
};

/* The buffer for a read's data, made when first needed: a read that
 * splice.c sends whole never needs one (1 MiB allocated and freed per
 * read made glibc create and drop a heap on every pool thread's read). */
static uint8_t *req_buf(struct nbd_req *r)
{
	if (!r->data)
		r->data = xmalloc(r->len ? r->len : 1);
	return r->data;
}

static void reply_init(struct nbd_req *r, int max_iov, size_t hdr_bytes)
{
	r->iov = xmalloc(sizeof(*r->iov) * max_iov);
	r->hdrs = xmalloc(hdr_bytes);
	r->niov = 0;
	r->hdr_used = 0;
	r->last_hdr = false;
}

/* Append n bytes of header space, merged with the previous iovec when
 * that one is header bytes too, and return them. */
static uint8_t *reply_hdr(struct nbd_req *r, size_t n)
{
	uint8_t *p = r->hdrs + r->hdr_used;

	if (r->last_hdr)
		r->iov[r->niov - 1].iov_len += n;
	else
		r->iov[r->niov++] = (struct iovec){ p, n };
	r->hdr_used += n;
	r->last_hdr = true;
	return p;
}

/* data NULL: the next n bytes of the request's pipe (splice.c). */
static void reply_data(struct nbd_req *r, const void *data, size_t n)
{
	r->iov[r->niov++] = (struct iovec){ (void *)data, n };
	r->last_hdr = false;
}

static void put_chunk_hdr(uint8_t *h, const struct nbd_req *r, uint16_t flags,
			  uint16_t type, uint32_t len)
{
	nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
	nbd_put16(h + 4, flags);
	nbd_put16(h + 6, type);
	nbd_put64(h + 8, r->cookie);
	nbd_put32(h + 16, len);
}

/* A simple reply, with the read data when err is 0 and data is set. */
static void reply_simple(struct nbd_req *r, uint32_t err, bool with_data)
{
	uint8_t *h;

	reply_init(r, 2, NBD_SIMPLE_REPLY_SIZE);
	h = reply_hdr(r, NBD_SIMPLE_REPLY_SIZE);
	nbd_put32(h, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(h + 4, err);
	nbd_put64(h + 8, r->cookie);
	if (!err && with_data && r->len)
		reply_data(r, r->data, r->len);
}

/* The error reply: a structured error chunk with a message when
 * structured replies are on, else a simple reply. */
static void reply_error(struct nbd_req *r, int err, const char *msg)
{
	uint32_t wire = nbd_errno_to_wire(err);
	size_t n = MIN(strlen(msg), (size_t)NBD_MAX_STRING);
	uint8_t *h;

	if (!wire)
		wire = NBD_EIO;
	LOG(LOG_NBD, "%s: error %u: %s", nbd_cmd_name(r->type), wire, msg);
	if (!r->c->structured) {
		reply_simple(r, wire, false);
		return;
	}
	reply_init(r, 1, NBD_CHUNK_SIZE + 6 + n);
	h = reply_hdr(r, NBD_CHUNK_SIZE + 6 + n);
	put_chunk_hdr(h, r, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, (uint32_t)(6 + n));
	nbd_put32(h + 20, wire);
	nbd_put16(h + 24, (uint16_t)n);
	memcpy(h + 26, msg, n);
}

/* A failed back-end call: its errno and the message it recorded. */
static void reply_errno(struct nbd_req *r, int ret)
{
	reply_error(r, -ret, err_msg());
}

static void reply_chunks(struct nbd_req *r, const struct chunk *ch, int n)
{

	reply_init(r, 2 * n, (size_t)n * (NBD_CHUNK_SIZE + 12));
	for (int i = 0; i < n; i++) {
		uint16_t fl = i == n - 1 ? NBD_REPLY_FLAG_DONE : 0;
		bool hole = ch[i].type == NBD_REPLY_TYPE_OFFSET_HOLE;
		uint8_t *h = reply_hdr(r, NBD_CHUNK_SIZE + (hole ? 12 : 8));

		put_chunk_hdr(h, r, fl, ch[i].type, hole ? 12 : 8 + ch[i].len);
		nbd_put64(h + 20, ch[i].off);
		if (hole)
			nbd_put32(h + 28, ch[i].len);
		else
			reply_data(r, ch[i].piped ? NULL : req_buf(r) + ch[i].pos, ch[i].len);
	}
}

/* ---- the commands ---- */

/* Take back what the pipe holds (chunks before `upto` and k bytes of
 * it) into the chunks' buffers: the pipe is given up. */
static int unpipe(struct nbd_req *r, struct chunk *ch, int upto, size_t k)
{
	int ret = 0;

	for (int i = 0; i <= upto && ret == 0; i++) {
		size_t n = i == upto ? k : (ch[i].piped ? ch[i].len : 0);
		if (n)
			ret = read_full(r->pipe[0], req_buf(r) + ch[i].pos, n) < 0 ? -EIO : 0;
		ch[i].piped = false;
	}
	close(r->pipe[0]);
	close(r->pipe[1]);
	r->pipe[0] = r->pipe[1] = -1;
	r->pipe_fill = 0;
	return ret < 0 ? err_set(ret, "cannot take back spliced data") : 0;
}

/* The data chunks: spliced into the request's pipe where splice.c can,
 * else (or for what is left after a short splice) read into r->data. */
static int read_data(struct nbd_req *r, struct chunk *ch, int n)
{
	struct export *e = r->c->srv->exp;
	bool try = e->nsplice > 0 && r->len >= SPLICE_MIN;
	int ret;

	for (int i = 0; i < n; i++) {
		size_t k = 0, cap;

		if (ch[i].type != NBD_REPLY_TYPE_OFFSET_DATA)
			continue;
		if (try && r->pipe[0] < 0 &&
		    (splice_pipe_get(r->c, r->pipe, r->len + SPLICE_SLACK, r->len, &cap) < 0 ||
		     cap < r->len)) {
			if (r->pipe[0] >= 0)
				unpipe(r, ch, -1, 0);
			try = false;
		}
		if (try) {
			ssize_t m = export_splice(e, ch[i].off, ch[i].len, r->pipe[1]);
			k = m > 0 ? (size_t)m : 0;
			r->pipe_cap = cap;
			r->pipe_fill += k;
			ch[i].piped = k == ch[i].len;
			if (ch[i].piped)
				continue;
			LOG(LOG_NBD, "splice: %zu of %u bytes at %llu, the rest is read", k, ch[i].len,
			    (unsigned long long)ch[i].off);
			if ((ret = unpipe(r, ch, i, k)) < 0)
				return ret;
			try = false;
		}
		ret = export_read(e, req_buf(r) + ch[i].pos + k, ch[i].off + k, ch[i].len - k);
		if (ret < 0)
			return ret;
		r->copied += ch[i].len;
	}
	return 0;
}

/* Read [off, off+len) of the request into req_buf(), as chunks: data runs
 * read with one call each, zero runs left out. */
static int read_sparse(struct nbd_req *r, struct chunk *ch, int max, int *n)
{
	struct export *e = r->c->srv->exp;
	uint64_t pos = 0;
	int ret;

	*n = 0;
	while (pos < r->len) {
		struct export_extent x;
		bool zero;

		ret = export_block_status(e, r->offset + pos, r->len - pos, &x);
		if (ret < 0)
			return ret;
		x.length = MIN(x.length, r->len - pos);
		zero = (x.flags & NBD_STATE_ZERO) && *n < max - 1;
		if (*n >= max - 1)
			x.length = r->len - pos;
		if (*n && ch[*n - 1].type == (zero ? NBD_REPLY_TYPE_OFFSET_HOLE :
					      NBD_REPLY_TYPE_OFFSET_DATA)) {
			ch[*n - 1].len += (uint32_t)x.length;
		} else {
			ch[*n] = (struct chunk){
				zero ? NBD_REPLY_TYPE_OFFSET_HOLE : NBD_REPLY_TYPE_OFFSET_DATA,
				r->offset + pos, (uint32_t)x.length, (uint32_t)pos, false };
			(*n)++;
		}
		pos += x.length;
	}
	return read_data(r, ch, *n);
}

static void cmd_read(struct nbd_req *r)
{
	struct export *e = r->c->srv->exp;
	struct chunk one, *ch;
	int n, ret;

	if (!r->c->structured || (r->flags & NBD_CMD_FLAG_DF) || !r->len) {
		ret = export_read(e, req_buf(r), r->offset, r->len);
		r->copied = r->len;
		if (ret < 0)
			reply_errno(r, ret);
		else if (!r->c->structured)
			reply_simple(r, 0, true);
		else if (!r->len)
			reply_simple(r, 0, false);
		else {
			one = (struct chunk){ NBD_REPLY_TYPE_OFFSET_DATA, r->offset, r->len, 0, false };
			reply_chunks(r, &one, 1);
		}
		return;
	}
	ch = xmalloc(sizeof(*ch) * READ_MAX_CHUNKS);
	ret = read_sparse(r, ch, READ_MAX_CHUNKS, &n);
	if (ret < 0)
		reply_errno(r, ret);
	else
		reply_chunks(r, ch, n);
	free(ch);
}

static void cmd_write(struct nbd_req *r)
{
	int ret = export_write(r->c->srv->exp, r->data, r->offset, r->len,
			       r->flags & NBD_CMD_FLAG_FUA);

	if (ret < 0)
		reply_errno(r, ret);
	else
		reply_simple(r, 0, false);
}

static void cmd_write_zeroes(struct nbd_req *r)
{
	int ret = export_write_zeroes(r->c->srv->exp, r->offset, r->len,
				      r->flags & NBD_CMD_FLAG_NO_HOLE,
				      r->flags & NBD_CMD_FLAG_FAST_ZERO,
				      r->flags & NBD_CMD_FLAG_FUA);

	if (ret < 0)
		reply_errno(r, ret);
	else
		reply_simple(r, 0, false);
}

static void cmd_trim(struct nbd_req *r)
{
	int ret = export_trim(r->c->srv->exp, r->offset, r->len,
			      r->flags & NBD_CMD_FLAG_FUA);

	if (ret < 0)
		reply_errno(r, ret);
	else
		reply_simple(r, 0, false);
}

static void cmd_flush(struct nbd_req *r)
{
	int ret = export_flush(r->c->srv->exp);

	if (ret < 0)
		reply_errno(r, ret);
	else
		reply_simple(r, 0, false);
}

/* CACHE: a hint; we read the range through so the host page cache (and
 * the format's metadata caches) are warm, in pieces of 1 MiB. */
static void cmd_cache(struct nbd_req *r)
{
	struct export *e = r->c->srv->exp;
	size_t step = 1u << 20;
	uint8_t *buf = xmalloc(step);
	int ret = 0;

	for (uint64_t pos = 0; pos < r->len && ret >= 0; pos += step)
		ret = export_read(e, buf, r->offset + pos, MIN(step, r->len - pos));
	free(buf);
	if (ret < 0)
		reply_errno(r, ret);
	else
		reply_simple(r, 0, false);
}

/* One context's descriptors, merged where the value repeats. */
struct bs_list {
	uint32_t id;
	uint8_t *buf;      /* u32 id then (length, flags) pairs */
	int n;
	uint64_t covered;
};

static void bs_add(struct bs_list *l, uint64_t len, uint32_t val)
{
	uint8_t *d = l->buf + 4 + 8 * (l->n - 1);

	if (l->n && nbd_get32(d + 4) == val && nbd_get32(d) + len <= 0xfffff000u) {
		nbd_put32(d, (uint32_t)(nbd_get32(d) + len));
	} else {
		d = l->buf + 4 + 8 * l->n++;
		nbd_put32(d, (uint32_t)len);
		nbd_put32(d + 4, val);
	}
	l->covered += len;
}

static int bs_collect(struct nbd_req *r, struct bs_list *a, struct bs_list *d, int max)
{
	struct export *e = r->c->srv->exp;
	bool one = r->flags & NBD_CMD_FLAG_REQ_ONE;
	uint64_t pos = 0;

	while (pos < r->len) {
		struct export_extent x;
		int ret = export_block_status(e, r->offset + pos, r->len - pos, &x);

		if (ret < 0)
			return ret;
		x.length = MIN(x.length, (uint64_t)r->len - pos);
		if ((a->id && a->n >= max && nbd_get32(a->buf + 4 + 8 * (a->n - 1) + 4) != x.flags) ||
		    (d->id && d->n >= max && nbd_get32(d->buf + 4 + 8 * (d->n - 1) + 4) != x.depth))
			break;
		if (a->id)
			bs_add(a, x.length, x.flags);
		if (d->id)
			bs_add(d, x.length, x.depth);
		pos += x.length;
		if (one)
			break;
	}
	return 0;
}

static void cmd_block_status(struct nbd_req *r)
{
	struct conn *c = r->c;
	bool one = r->flags & NBD_CMD_FLAG_REQ_ONE;
	int max = one ? 1 : BS_MAX_EXTENTS;
	struct bs_list l[2] = { { .id = c->ctx_alloc }, { .id = c->ctx_depth } };
	int ret, nl = 0;

	for (int i = 0; i < 2; i++)
		l[i].buf = xmalloc(4 + 8 * (size_t)max);
	ret = bs_collect(r, &l[0], &l[1], max);
	if (ret < 0) {
		reply_errno(r, ret);
		goto out;
	}
	reply_init(r, 4, 2 * NBD_CHUNK_SIZE);
	for (int i = 0; i < 2; i++)
		nl += l[i].id != 0;
	for (int i = 0, k = 0; i < 2; i++) {
		uint32_t plen = 4 + 8 * l[i].n;
		uint8_t *h;

		if (!l[i].id)
			continue;
		h = reply_hdr(r, NBD_CHUNK_SIZE);
		put_chunk_hdr(h, r, ++k == nl ? NBD_REPLY_FLAG_DONE : 0,
			      NBD_REPLY_TYPE_BLOCK_STATUS, plen);
		nbd_put32(l[i].buf, l[i].id);
		reply_data(r, l[i].buf, plen);
	}
	/* the buffers now belong to the reply */
	r->data = l[0].buf;
	r->extra = l[1].buf;
	l[0].buf = l[1].buf = NULL;
out:
	free(l[0].buf);
	free(l[1].buf);
}

/* ---- validation ---- */

/* Flags each command accepts; FUA is valid on every command (proto.md
 * "Command flags"). */
static uint16_t allowed_flags(const struct conn *c, uint16_t type)
{
	uint16_t f = NBD_CMD_FLAG_FUA;

	switch (type) {
	case NBD_CMD_READ:
		return f | (c->structured ? NBD_CMD_FLAG_DF : 0);
	case NBD_CMD_WRITE_ZEROES:
		return f | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
	case NBD_CMD_BLOCK_STATUS:
		return f | NBD_CMD_FLAG_REQ_ONE;
	default:
		return f;
	}
}

static bool is_write(uint16_t type)
{
	return type == NBD_CMD_WRITE || type == NBD_CMD_WRITE_ZEROES ||
	       type == NBD_CMD_TRIM;
}

/* Check a request against the export; 0 or a positive errno with *msg. */
static int req_check(const struct nbd_req *r, const char **msg)
{
	const struct conn *c = r->c;
	const struct export *e = c->srv->exp;
	bool ranged = r->type != NBD_CMD_FLUSH;

	if (r->type > NBD_CMD_BLOCK_STATUS || r->type == NBD_CMD_DISC)
		return *msg = "unknown command", EINVAL;
	if (r->flags & ~allowed_flags(c, r->type))
		return *msg = "unknown or invalid flags", EINVAL;
	if (is_write(r->type) && !e->writable)
		return *msg = "export is read-only", EPERM;
	if (r->type == NBD_CMD_BLOCK_STATUS && !c->ctx_alloc && !c->ctx_depth)
		return *msg = "no metadata context negotiated", EINVAL;
	if (r->type == NBD_CMD_BLOCK_STATUS && !r->len)
		return *msg = "block status of an empty range", EINVAL;
	if (r->type == NBD_CMD_READ && r->len > e->max_payload)
		return *msg = "request too large", EINVAL;
	if (ranged && (r->offset > e->size || r->len > e->size - r->offset)) {
		*msg = "request beyond the end of the export";
		return r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES ?
		       ENOSPC : EINVAL;
	}
	if (ranged && e->min_block > 1 &&
	    (r->offset % e->min_block || r->len % e->min_block))
		return *msg = "request not aligned to the minimum block size", EINVAL;
	return 0;
}

/* Run a checked request and build its reply. */
static void req_exec(struct nbd_req *r)
{
	LOG(LOG_NBD, "%s offset %llu length %u flags 0x%x", nbd_cmd_name(r->type),
	    (unsigned long long)r->offset, r->len, r->flags);
	switch (r->type) {
	case NBD_CMD_READ: cmd_read(r); break;
	case NBD_CMD_WRITE: cmd_write(r); break;
	case NBD_CMD_WRITE_ZEROES: cmd_write_zeroes(r); break;
	case NBD_CMD_TRIM: cmd_trim(r); break;
	case NBD_CMD_FLUSH: cmd_flush(r); break;
	case NBD_CMD_CACHE: cmd_cache(r); break;
	case NBD_CMD_BLOCK_STATUS: cmd_block_status(r); break;
	}
	err_clear();
}

/* A pool job: one request, its reply sent or queued. */
static void req_run(void *arg)
{
	struct nbd_req *r = arg;

	req_exec(r);
	conn_queue_reply(r->c, r);
}

void req_free(struct nbd_req *r)
{
	free(r->data);
	free(r->iov);
	free(r->hdrs);
	free(r->extra);
	if (r->pipe[0] >= 0) {
		close(r->pipe[0]);
		close(r->pipe[1]);
	}
	free(r);
}

/* ---- the request loop ---- */

/* Requests come in bursts: read what the socket has into a buffer and
 * take headers (and small payloads) from there, one recv() for many
 * requests; large payloads go straight to their own buffer. */
struct inbuf {
	size_t pos, end;
	struct nbd_req *batch, *batch_tail;  /* replies of inline requests */
	int nbatch;
	size_t batch_bytes;
	uint8_t b[64 << 10];
};

/* Send the replies of the requests run inline, all in one go. */
static void flush_batch(struct conn *c, struct inbuf *in)
{
	if (!in->batch)
		return;
	conn_send_replies(c, in->batch, in->batch_tail);
	in->batch = in->batch_tail = NULL;
	in->nbatch = 0;
	in->batch_bytes = 0;
}

/* Fill the buffer; before blocking, send what the batch holds (the
 * client may be waiting for those replies to send more). */
static ssize_t in_fill(struct conn *c, struct inbuf *in)
{
	ssize_t n = recv(c->fd, in->b, sizeof(in->b), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		flush_batch(c, in);
		n = recv(c->fd, in->b, sizeof(in->b), 0);
	}
	return n;
}

static int in_read(struct conn *c, struct inbuf *in, void *dst, size_t len)
{
	uint8_t *d = dst;

	while (len) {
		size_t k = MIN(len, in->end - in->pos);
		ssize_t n;

		if (k) {
			memcpy(d, in->b + in->pos, k);
			in->pos += k;
			d += k;
			len -= k;
			continue;
		}
		if (len >= sizeof(in->b)) {
			flush_batch(c, in);
			return read_full(c->fd, d, len);
		}
		n = in_fill(c, in);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		in->pos = 0;
		in->end = (size_t)n;
	}
	return 0;
}

/* Wait until this request fits in the in-flight limits (sending the
 * inline batch first: its requests count too, and only we send it). */
static bool admit(struct conn *c, struct inbuf *in, size_t bytes)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	while (!c->dead && (c->inflight >= MAX_INFLIGHT ||
			    (c->inflight && c->inflight_bytes + bytes > MAX_INFLIGHT_BYTES))) {
		if (in->batch) {
			pthread_mutex_unlock(&c->lock);
			flush_batch(c, in);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		c->admit_waiting = true;
		pthread_cond_wait(&c->cond, &c->lock);
		c->admit_waiting = false;
	}
	ok = !c->dead;
	if (ok) {
		c->inflight++;
		c->inflight_bytes += bytes;
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long voluntary_switches(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : 0;
}

/* Small reads that the page cache answers take a few microseconds, less
 * than handing them to a pool thread and back; the reader runs those
 * itself, and reads of up to 4 MiB that splice.c can send without a
 * copy too (their replies then leave from this thread as well, so a
 * cached read never changes threads: conn_send_replies).  As soon as one had to sleep (it went to the disk, or waited
 * for a lock), reads go to the pool again for a while, so that slow
 * reads overlap.  Being preempted on a busy machine is not sleeping:
 * only voluntary context switches count. */
static bool run_inline(struct conn *c, struct inbuf *in, struct nbd_req *r)
{
	long sw;

	if (r->type != NBD_CMD_READ ||
	    r->len > (c->srv->exp->nsplice ? INLINE_SPLICE_MAX : INLINE_MAX))
		return false;
	if (c->inline_after && now_ns() < c->inline_after)
		return false;
	c->inline_after = 0;
	sw = voluntary_switches();
	req_exec(r);
	/* it slept, or copied more than a small read's worth */
	if (voluntary_switches() != sw || r->copied > INLINE_MAX)
		c->inline_after = now_ns() + INLINE_BACKOFF_NS;
	r->next = NULL;
	if (in->batch_tail)
		in->batch_tail->next = r;
	else
		in->batch = r;
	in->batch_tail = r;
	in->batch_bytes += r->len;
	if (++in->nbatch >= INLINE_BATCH || in->batch_bytes >= INLINE_BATCH_BYTES)
		flush_batch(c, in);
	return true;
}

/* Read one request; 0 = handled, 1 = the client disconnected (DISC or
 * gone), -errno = protocol violation (we hang up). */
static int one_request(struct conn *c, struct inbuf *in)
{
	uint8_t h[NBD_REQUEST_SIZE];
	struct nbd_req *r;
	const char *msg = NULL;
	int err;

	if (in_read(c, in, h, sizeof(h)) < 0)
		return 1;
	if (nbd_get32(h) != NBD_REQUEST_MAGIC)
		return err_set(-EPROTO, "bad request magic 0x%08x", nbd_get32(h));
	r = xzalloc(sizeof(*r));
	r->pipe[0] = r->pipe[1] = -1;
	r->c = c;
	r->flags = nbd_get16(h + 4);
	r->type = nbd_get16(h + 6);
	r->cookie = nbd_get64(h + 8);
	r->offset = nbd_get64(h + 16);
	r->len = nbd_get32(h + 24);
	if (r->type == NBD_CMD_DISC) {
		free(r);
		return 1;
	}
	if (r->type == NBD_CMD_WRITE && r->len > c->srv->exp->max_payload) {
		free(r);
		return err_set(-EPROTO, "write of %u bytes is too large", nbd_get32(h + 24));
	}
	if (!admit(c, in, r->type == NBD_CMD_WRITE || r->type == NBD_CMD_READ ? r->len : 0)) {
		free(r);
		return 1;
	}
	if (r->type == NBD_CMD_WRITE) {
		r->data = xmalloc(r->len ? r->len : 1);
		if (in_read(c, in, r->data, r->len) < 0) {
			conn_queue_reply(c, r);  /* no reply: the socket is gone */
			return 1;
		}
	}
	err = req_check(r, &msg);
	if (err) {
		reply_error(r, err, msg);
		conn_queue_reply(c, r);
		return 0;
	}
	if (run_inline(c, in, r))
		return 0;
	pool_submit(c->srv->pool, req_run, r);
	return 0;
}

void transmit_run(struct conn *c)
{
	struct inbuf *in = xmalloc(sizeof(*in));
	int r;

	in->pos = in->end = 0;
	in->batch = in->batch_tail = NULL;
	in->nbatch = 0;
	in->batch_bytes = 0;
	while ((r = one_request(c, in)) == 0)
		;
	flush_batch(c, in);
	free(in);
	if (r < 0)
		log_info("hanging up on a client: %s", err_msg());
}
