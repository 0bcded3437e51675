/*
 * The NBD client's transmission phase (proto.md "Transmission",
 * "Structured reply chunk message", "Request types").
 *
 * Many requests in flight from many threads: a caller registers its
 * request (a `struct pending` on its own stack) under the lock, sends
 * the 28-byte header (and payload) under the send lock, and sleeps on its
 * own condition variable.  One reader thread takes replies off the socket
 * (a reply's header and a data chunk's offset in one receive, through a
 * 32-byte look-ahead) and matches them to pending requests by cookie;
 * read data and hole chunks land straight in the caller's buffer, or
 * scattered over the caller's iovecs (readv: one receive per chunk, no
 * bounce buffer), block status descriptors in the caller's arrays.  A write's header and
 * payload (one buffer or many iovecs) leave in one writev.  A reply the protocol does not allow (unknown
 * cookie, chunk outside the request, bad lengths) breaks the connection:
 * every pending and later request fails with EIO.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"

#define BS_PAYLOAD_MAX (4u + 8u * (1u << 20))   /* 2^20 descriptors */
#define ZEROES_STEP (1u << 30)                  /* write_zeroes/trim/bs split */
#define IOV_BATCH 256                           /* iovecs per readv/writev call */
#define RBUF 32                                 /* reader's look-ahead bytes */

struct pending {
	uint64_t cookie;
	uint16_t type;
	uint64_t offset;
	uint32_t len;
	const struct iovec *iov;     /* READ: data goes to bytes [skip, skip+len) */
	int niov;                    /*   of these iovecs */
	size_t skip;
	uint8_t *bs[2];              /* BLOCK_STATUS: alloc, depth descriptors */
	uint32_t bs_len[2];
	int err;                     /* positive errno */
	bool done;
	pthread_cond_t cond;         /* a synchronous caller sleeps on it */
	struct pending *next;
	/* Asynchronous: the reader calls done() (outside the lock) instead
	 * of waking anyone; freed when both the reader and the submitter
	 * (still sending, maybe) let go of it.  The iovecs are a copy. */
	void (*done_fn)(void *arg, int err);
	void *done_arg;
	int refs;
	struct iovec own[];
};

struct nbd_client {
	int fd;
	struct nbd_negotiated n;
	pthread_mutex_t lock;        /* pending, next_cookie, broken */
	pthread_mutex_t send_lock;
	pthread_t reader;
	bool reader_started;
	struct pending *pending;
	uint64_t next_cookie;
	int broken;                  /* errno once the connection is unusable */
	/* The reader's look-ahead: a reply's header bytes come in one
	 * receive of up to RBUF bytes (a read chunk's 28), not three; what
	 * it took of the next bytes is used first. */
	uint8_t rbuf[RBUF];
	unsigned rpos, rend;
};

/* ---- scatter/gather helpers ---- */

/* Receive exactly len bytes into bytes [skip, skip+len) of the list,
 * whatever the socket's short reads (the look-ahead's bytes first);
 * -EIO on end of stream or error. */
static int recv_iov(struct nbd_client *c, const struct iovec *iov, int n, size_t skip,
		    size_t len)
{
	struct iovec v[IOV_BATCH];
	int fd = c->fd, i = iov_seek(iov, n, &skip);	/* skip: now in iov[i] */

	while (len && c->rpos < c->rend) {
		size_t k;

		if (i == n)
			return -EIO;	/* the list is shorter than the reply */
		k = MIN(MIN(len, (size_t)(c->rend - c->rpos)), iov[i].iov_len - skip);
		memcpy((uint8_t *)iov[i].iov_base + skip, c->rbuf + c->rpos, k);
		c->rpos += k;
		skip += k;
		len -= k;
		if (skip == iov[i].iov_len)
			i++, skip = 0;
	}
	while (len) {
		int k = iov_slice(iov, n, i, skip, len, v, IOV_BATCH);
		ssize_t got;

		if (!k)
			return -EIO;	/* the list is shorter than the reply */
		got = readv(fd, v, k);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -EIO;
		len -= (size_t)got;
		skip += (size_t)got;
		i += iov_seek(iov + i, n - i, &skip);
	}
	return 0;
}

/* Read exactly len bytes of the reply stream: from the look-ahead,
 * which a small read refills with one receive of up to RBUF bytes. */
static int rd_full(struct nbd_client *c, void *dst, size_t len)
{
	uint8_t *d = dst;

	while (len) {
		size_t k = MIN(len, (size_t)(c->rend - c->rpos));
		ssize_t got;

		if (k) {
			memcpy(d, c->rbuf + c->rpos, k);
			c->rpos += k;
			d += k;
			len -= k;
			continue;
		}
		if (len >= RBUF)
			return read_full(c->fd, d, len) < 0 ? -EIO : 0;
		got = read(c->fd, c->rbuf, RBUF);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -EIO;
		c->rpos = 0;
		c->rend = (unsigned)got;
	}
	return 0;
}

/* Zero bytes [skip, skip+len) of the list (a hole chunk). */
static void zero_iov(const struct iovec *iov, int n, size_t skip, size_t len)
{
	for (int i = iov_seek(iov, n, &skip); i < n && len; i++, skip = 0) {
		size_t c = MIN(iov[i].iov_len - skip, len);

		memset((uint8_t *)iov[i].iov_base + skip, 0, c);
		len -= c;
	}
}

/* ---- the reader thread ---- */

static struct pending *find_locked(struct nbd_client *c, uint64_t cookie)
{
	for (struct pending *p = c->pending; p; p = p->next)
		if (p->cookie == cookie)
			return p;
	return NULL;
}

static void complete_locked(struct nbd_client *c, struct pending *p)
{
	struct pending **pp;

	for (pp = &c->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	p->done = true;
	if (!p->done_fn)
		pthread_cond_signal(&p->cond);
}

static void pending_put(struct pending *p)
{
	if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(p);
}

/* After complete_locked and the unlock: an asynchronous request's
 * callback (a synchronous one's p may be gone already: done_fn was
 * read under the lock). */
static void run_done(struct pending *p, void (*fn)(void *, int))
{
	if (fn) {
		fn(p->done_arg, p->err ? -p->err : 0);
		pending_put(p);
	}
}

static void break_connection(struct nbd_client *c, int err)
{
	for (;;) {
		struct pending *p;
		void (*fn)(void *, int) = NULL;

		pthread_mutex_lock(&c->lock);
		if (!c->broken)
			c->broken = err;
		p = c->pending;
		if (p) {
			if (!p->err)
				p->err = c->broken;
			fn = p->done_fn;
			complete_locked(c, p);
		}
		pthread_mutex_unlock(&c->lock);
		if (!p)
			break;
		run_done(p, fn);
	}
	shutdown(c->fd, SHUT_RDWR);
}

/* Look up the pending request of a reply (the reader is the only thread
 * that completes requests, so it stays valid until we complete it). */
static struct pending *lookup(struct nbd_client *c, uint64_t cookie)
{
	struct pending *p;

	pthread_mutex_lock(&c->lock);
	p = find_locked(c, cookie);
	pthread_mutex_unlock(&c->lock);
	return p;
}

static void finish(struct nbd_client *c, struct pending *p, uint32_t wire_err)
{
	void (*fn)(void *, int);

	pthread_mutex_lock(&c->lock);
	if (wire_err && !p->err)
		p->err = nbd_wire_to_errno(wire_err);
	fn = p->done_fn;
	complete_locked(c, p);
	pthread_mutex_unlock(&c->lock);
	run_done(p, fn);
}

static int simple_reply(struct nbd_client *c, const uint8_t *h)
{
	uint8_t rest[12];
	struct pending *p;
	uint32_t err;

	if (rd_full(c, rest, sizeof(rest)) < 0)
		return -EIO;
	err = nbd_get32(rest);
	p = lookup(c, nbd_get64(rest + 4));
	if (!p || (c->n.structured && p->type == NBD_CMD_READ))
		return -EPROTO;
	if (p->type == NBD_CMD_READ && !err && recv_iov(c, p->iov, p->niov, p->skip, p->len) < 0)
		return -EIO;
	finish(c, p, err);
	return 0;
}

/* OFFSET_DATA and OFFSET_HOLE: into the caller's buffer, inside its range. */
static int chunk_content(struct nbd_client *c, struct pending *p, uint16_t type,
			 uint32_t len)
{
	uint8_t b[12];
	uint64_t off, n;

	if (p->type != NBD_CMD_READ || len < (type == NBD_REPLY_TYPE_OFFSET_HOLE ? 12u : 9u) ||
	    (type == NBD_REPLY_TYPE_OFFSET_HOLE && len != 12))
		return -EPROTO;
	if (rd_full(c, b, type == NBD_REPLY_TYPE_OFFSET_HOLE ? 12 : 8) < 0)
		return -EIO;
	off = nbd_get64(b);
	n = type == NBD_REPLY_TYPE_OFFSET_HOLE ? nbd_get32(b + 8) : len - 8;
	if (off < p->offset || off - p->offset > p->len || n > p->len - (off - p->offset))
		return -EPROTO;
	if (type == NBD_REPLY_TYPE_OFFSET_HOLE) {
		zero_iov(p->iov, p->niov, p->skip + (off - p->offset), n);
		return 0;
	}
	return recv_iov(c, p->iov, p->niov, p->skip + (off - p->offset), n);
}

static int chunk_block_status(struct nbd_client *c, struct pending *p, uint32_t len)
{
	uint8_t *buf;
	uint32_t id;
	int k;

	if (p->type != NBD_CMD_BLOCK_STATUS || len < 12 || (len - 4) % 8 ||
	    len > BS_PAYLOAD_MAX)
		return -EPROTO;
	buf = xmalloc(len);
	if (rd_full(c, buf, len) < 0) {
		free(buf);
		return -EIO;
	}
	id = nbd_get32(buf);
	k = c->n.has_alloc && id == c->n.ctx_alloc ? 0 :
	    c->n.has_depth && id == c->n.ctx_depth ? 1 : -1;
	if (k < 0 || p->bs[k]) {
		free(buf);
		return -EPROTO;
	}
	p->bs[k] = buf;
	p->bs_len[k] = (len - 4) / 8;
	return 0;
}

static int chunk_error(struct nbd_client *c, struct pending *p, uint32_t len)
{
	uint8_t *buf;
	uint32_t err;

	if (len < 6 || len > NBD_MAX_STRING + 64)
		return -EPROTO;
	buf = xmalloc(len);
	if (rd_full(c, buf, len) < 0) {
		free(buf);
		return -EIO;
	}
	err = nbd_get32(buf);
	if (nbd_get16(buf + 4) && nbd_get16(buf + 4) <= len - 6)
		LOG(LOG_NBD, "client: server error %u: %.*s", err, nbd_get16(buf + 4),
		    (const char *)buf + 6);
	if (!p->err)
		p->err = nbd_wire_to_errno(err ? err : NBD_EINVAL);
	free(buf);
	return 0;
}

static int structured_reply(struct nbd_client *c)
{
	uint8_t h[16];
	struct pending *p;
	uint16_t flags, type;
	uint32_t len;
	int r;

	if (rd_full(c, h, sizeof(h)) < 0)
		return -EIO;
	flags = nbd_get16(h);
	type = nbd_get16(h + 2);
	len = nbd_get32(h + 12);
	p = lookup(c, nbd_get64(h + 4));
	if (!p || !c->n.structured)
		return -EPROTO;
	if (type == NBD_REPLY_TYPE_NONE)
		r = len ? -EPROTO : 0;
	else if (type == NBD_REPLY_TYPE_OFFSET_DATA || type == NBD_REPLY_TYPE_OFFSET_HOLE)
		r = chunk_content(c, p, type, len);
	else if (type == NBD_REPLY_TYPE_BLOCK_STATUS)
		r = chunk_block_status(c, p, len);
	else if (NBD_REPLY_TYPE_IS_ERR(type))
		r = chunk_error(c, p, len);
	else
		r = -EPROTO;
	if (r == 0 && (flags & NBD_REPLY_FLAG_DONE))
		finish(c, p, 0);
	return r;
}

static void *reader_main(void *opaque)
{
	struct nbd_client *c = opaque;
	uint8_t m[4];
	int r = 0;

	while (r == 0) {
		if (rd_full(c, m, 4) < 0) {
			r = -EIO;
			break;
		}
		if (nbd_get32(m) == NBD_SIMPLE_REPLY_MAGIC)
			r = simple_reply(c, m);
		else if (nbd_get32(m) == NBD_STRUCTURED_REPLY_MAGIC)
			r = structured_reply(c);
		else
			r = -EPROTO;
	}
	if (r == -EPROTO)
		LOG(LOG_NBD, "client: protocol error from the server, disconnecting");
	break_connection(c, EIO);
	return NULL;
}

/* ---- issuing requests ---- */

/* Write all of v[0..n), whatever the short writes (v is used up). */
static int send_all(int fd, struct iovec *v, int n)
{
	for (int i = 0; i < n; ) {
		ssize_t k = writev(fd, v + i, n - i);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		while (i < n && (size_t)k >= v[i].iov_len)
			k -= v[i++].iov_len;
		if (i < n) {
			v[i].iov_base = (uint8_t *)v[i].iov_base + k;
			v[i].iov_len -= k;
		}
	}
	return 0;
}

/* The 28-byte header and, for a write, p->len bytes of payload from
 * byte skip of the iovecs on: one writev per IOV_BATCH pieces. */
static int send_request(struct nbd_client *c, struct pending *p, uint16_t flags,
			const struct iovec *payload, int npayload, size_t skip)
{
	uint8_t h[NBD_REQUEST_SIZE];
	struct iovec v[1 + IOV_BATCH];
	size_t left = payload ? p->len : 0;
	int i, n = 1, k, r;

	if (!payload)
		npayload = 0;
	i = iov_seek(payload, npayload, &skip);

	nbd_put32(h, NBD_REQUEST_MAGIC);
	nbd_put16(h + 4, flags);
	nbd_put16(h + 6, p->type);
	nbd_put64(h + 8, p->cookie);
	nbd_put64(h + 16, p->offset);
	nbd_put32(h + 24, p->len);
	v[0] = (struct iovec){ h, sizeof(h) };
	pthread_mutex_lock(&c->send_lock);
	do {
		k = iov_slice(payload, npayload, i, skip, left, v + n, IOV_BATCH);
		size_t sent = iov_total(v + n, k);

		left -= sent;
		skip += sent;
		if (k)
			i += iov_seek(payload + i, npayload - i, &skip);
		r = send_all(c->fd, v, n + k);
		n = 0;
	} while (r == 0 && left && k);
	pthread_mutex_unlock(&c->send_lock);
	return r == 0 && left ? -EIO : r;	/* a short list: the stream is out of step */
}

/* Send one request and wait for its reply; 0 or -errno. */
static int request(struct nbd_client *c, struct pending *p, uint16_t flags,
		   const struct iovec *payload, int npayload, size_t skip)
{
	int r;

	pthread_cond_init(&p->cond, NULL);
	pthread_mutex_lock(&c->lock);
	if (c->broken) {
		r = c->broken;
		pthread_mutex_unlock(&c->lock);
		pthread_cond_destroy(&p->cond);
		return err_set(-r, "NBD connection lost");
	}
	p->cookie = c->next_cookie++;
	p->next = c->pending;
	c->pending = p;
	pthread_mutex_unlock(&c->lock);
	/* On a failed send only the reader completes requests (it may be
	 * writing into one): hang up so that it notices. */
	if (send_request(c, p, flags, payload, npayload, skip) < 0)
		shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&c->lock);
	while (!p->done)
		pthread_cond_wait(&p->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&p->cond);
	if (p->err)
		return err_set_errno(p->err, "NBD %s at offset %llu",
				     nbd_cmd_name(p->type), (unsigned long long)p->offset);
	return 0;
}

static int check_range(const struct nbd_client *c, uint64_t off, uint64_t len)
{
	uint64_t size = __atomic_load_n(&c->n.size, __ATOMIC_RELAXED);

	if (off > size || len > size - off)
		return err_set(-EINVAL, "NBD request beyond the end of the export");
	return 0;
}

int nbd_client_readv(struct nbd_client *c, const struct iovec *iov, int niov,
		     uint64_t offset)
{
	size_t len = iov_total(iov, niov);
	int r = check_range(c, offset, len);

	for (size_t done = 0; r == 0 && done < len; ) {
		struct pending p = { .type = NBD_CMD_READ, .offset = offset + done,
				     .len = (uint32_t)MIN(len - done, (size_t)c->n.max_payload),
				     .iov = iov, .niov = niov, .skip = done };

		r = request(c, &p, 0, NULL, 0, 0);
		done += p.len;
	}
	return r;
}

int nbd_client_read(struct nbd_client *c, void *buf, uint64_t offset, size_t len)
{
	struct iovec v = { buf, len };

	return nbd_client_readv(c, &v, 1, offset);
}

int nbd_client_writev(struct nbd_client *c, const struct iovec *iov, int niov,
		      uint64_t offset, uint32_t flags)
{
	size_t len = iov_total(iov, niov);
	int r = check_range(c, offset, len);

	if (r == 0 && (c->n.flags & NBD_FLAG_READ_ONLY))
		return err_set(-EPERM, "NBD export is read-only");
	if (!(c->n.flags & NBD_FLAG_SEND_FUA))
		flags &= ~NBD_CMD_FLAG_FUA;
	for (size_t done = 0; r == 0 && done < len; ) {
		struct pending p = { .type = NBD_CMD_WRITE, .offset = offset + done,
				     .len = (uint32_t)MIN(len - done, (size_t)c->n.max_payload) };

		r = request(c, &p, (uint16_t)(flags & NBD_CMD_FLAG_FUA), iov, niov, done);
		done += p.len;
	}
	return r;
}

int nbd_client_write(struct nbd_client *c, const void *buf, uint64_t offset,
		     size_t len, uint32_t flags)
{
	struct iovec v = { (void *)buf, len };

	return nbd_client_writev(c, &v, 1, offset, flags);
}

int nbd_client_submit(struct nbd_client *c, bool write, const struct iovec *iov, int niov,
		      uint64_t offset, void (*done)(void *arg, int err), void *arg)
{
	size_t len = iov_total(iov, niov);
	struct pending *p, copy;
	int r = check_range(c, offset, len);

	if (r < 0)
		return r;
	if (!len || len > c->n.max_payload || niov < 1)
		return err_set(-E2BIG, "NBD request of %zu bytes cannot go in one piece", len);
	if (write && (c->n.flags & NBD_FLAG_READ_ONLY))
		return err_set(-EPERM, "NBD export is read-only");
	p = xzalloc(sizeof(*p) + sizeof(*iov) * (size_t)niov);
	memcpy(p->own, iov, sizeof(*iov) * (size_t)niov);
	*p = (struct pending){ .type = write ? NBD_CMD_WRITE : NBD_CMD_READ, .offset = offset,
			       .len = (uint32_t)len, .iov = p->own, .niov = niov,
			       .done_fn = done, .done_arg = arg, .refs = 2 };
	pthread_mutex_lock(&c->lock);
	if (c->broken) {
		r = c->broken;
		pthread_mutex_unlock(&c->lock);
		free(p);
		return err_set(-r, "NBD connection lost");
	}
	p->cookie = c->next_cookie++;
	p->next = c->pending;
	c->pending = p;
	copy = *p;	/* the reader may complete p from here on */
	pthread_mutex_unlock(&c->lock);
	if (send_request(c, &copy, 0, write ? p->own : NULL, niov, 0) < 0)
		shutdown(c->fd, SHUT_RDWR);	/* the reader fails it */
	pending_put(p);
	return 0;
}

/* Commands without payload, split into pieces a u32 length can carry. */
static int ranged(struct nbd_client *c, uint16_t type, uint64_t offset,
		  uint64_t len, uint32_t flags)
{
	int r = check_range(c, offset, len);

	for (uint64_t done = 0; r == 0 && done < len; ) {
		struct pending p = { .type = type, .offset = offset + done,
				     .len = (uint32_t)MIN(len - done, (uint64_t)ZEROES_STEP) };

		r = request(c, &p, (uint16_t)flags, NULL, 0, 0);
		done += p.len;
	}
	return r;
}

int nbd_client_write_zeroes(struct nbd_client *c, uint64_t offset, uint64_t len,
			    uint32_t flags)
{
	if (!(c->n.flags & NBD_FLAG_SEND_WRITE_ZEROES)) {
		if (flags & NBD_CMD_FLAG_FAST_ZERO)
			return err_set(-ENOTSUP, "NBD server cannot write zeroes fast");
		return err_set(-ENOTSUP, "NBD server cannot write zeroes");
	}
	if ((flags & NBD_CMD_FLAG_FAST_ZERO) && !(c->n.flags & NBD_FLAG_SEND_FAST_ZERO))
		return err_set(-ENOTSUP, "NBD server cannot write zeroes fast");
	if (!(c->n.flags & NBD_FLAG_SEND_FUA))
		flags &= ~NBD_CMD_FLAG_FUA;
	return ranged(c, NBD_CMD_WRITE_ZEROES, offset, len,
		      flags & (NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO));
}

int nbd_client_trim(struct nbd_client *c, uint64_t offset, uint64_t len, uint32_t flags)
{
	if (!(c->n.flags & NBD_FLAG_SEND_TRIM))
		return 0;   /* a hint the server does not take */
	if (!(c->n.flags & NBD_FLAG_SEND_FUA))
		flags &= ~NBD_CMD_FLAG_FUA;
	return ranged(c, NBD_CMD_TRIM, offset, len, flags & NBD_CMD_FLAG_FUA);
}

int nbd_client_cache(struct nbd_client *c, uint64_t offset, uint64_t len)
{
	if (!(c->n.flags & NBD_FLAG_SEND_CACHE))
		return 0;
	return ranged(c, NBD_CMD_CACHE, offset, len, 0);
}

int nbd_client_flush(struct nbd_client *c)
{
	struct pending p = { .type = NBD_CMD_FLUSH };

	if (!(c->n.flags & NBD_FLAG_SEND_FLUSH))
		return 0;
	return request(c, &p, 0, NULL, 0, 0);
}

/* ---- block status ---- */

/* Merge the two contexts' descriptors into extents starting at offset. */
static int bs_merge(const struct pending *p, struct nbd_extent *ext, int max,
		    bool has_alloc, bool has_depth)
{
	uint32_t i[2] = { 0, 0 }, used[2] = { 0, 0 };
	uint64_t pos = p->offset;
	int n = 0;

	while (n < max) {
		uint64_t len = UINT64_MAX;
		bool more = true;

		for (int k = 0; k < 2; k++) {
			if (!p->bs[k])
				continue;
			if (i[k] >= p->bs_len[k]) {
				more = false;
				break;
			}
			len = MIN(len, (uint64_t)nbd_get32(p->bs[k] + 4 + 8 * i[k]) - used[k]);
		}
		if (!more || len == 0 || len == UINT64_MAX)
			break;
		ext[n] = (struct nbd_extent){
			.offset = pos, .length = len,
			.flags = has_alloc ? nbd_get32(p->bs[0] + 8 + 8 * i[0]) : 0,
			.depth = has_depth ? nbd_get32(p->bs[1] + 8 + 8 * i[1]) : 1,
		};
		n++;
		pos += len;
		for (int k = 0; k < 2; k++) {
			if (!p->bs[k])
				continue;
			used[k] += (uint32_t)len;
			if (used[k] == nbd_get32(p->bs[k] + 4 + 8 * i[k])) {
				i[k]++;
				used[k] = 0;
			}
		}
	}
	return n;
}

int nbd_client_block_status(struct nbd_client *c, uint64_t offset,
			    uint64_t len, struct nbd_extent *ext, int max)
{
	bool ha = c->n.has_alloc, hd = c->n.has_depth;
	struct pending p = { .type = NBD_CMD_BLOCK_STATUS, .offset = offset,
			     .len = (uint32_t)MIN(len, (uint64_t)ZEROES_STEP) };
	int r = check_range(c, offset, len), n;

	if (r < 0 || max < 1)
		return r < 0 ? r : err_set(-EINVAL, "no room for extents");
	if (!len)
		return err_set(-EINVAL, "block status of an empty range");
	if (!ha && !hd) {
		ext[0] = (struct nbd_extent){ offset, len, 0, 1 };
		return 1;
	}
	r = request(c, &p, 0, NULL, 0, 0);
	if (r == 0 && ((ha && !p.bs[0]) || (hd && !p.bs[1])))
		r = err_set(-EIO, "NBD server sent no block status");
	n = r == 0 ? bs_merge(&p, ext, max, ha, hd) : 0;
	if (r == 0 && n == 0)
		r = err_set(-EIO, "NBD server sent empty block status");
	/* the last extent may reach past the request: clip it */
	if (r == 0 && ext[n - 1].offset + ext[n - 1].length > offset + len)
		ext[n - 1].length = offset + len - ext[n - 1].offset;
	free(p.bs[0]);
	free(p.bs[1]);
	return r < 0 ? r : n;
}

/* ---- open, close, properties ---- */

int nbd_client_open_fd(int fd, const struct nbd_client_opts *opts,
		       struct nbd_client **out)
{
	struct nbd_client *c = xzalloc(sizeof(*c));
	int r;

	c->fd = fd;
	r = nbd_client_handshake(fd, opts, &c->n);
	if (r < 0) {
		close(fd);
		free(c);
		return r;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	c->next_cookie = 1;
	if (pthread_create(&c->reader, NULL, reader_main, c)) {
		nbd_client_close(c);
		return err_set(-EAGAIN, "cannot start the NBD reader thread");
	}
	c->reader_started = true;
	*out = c;
	return 0;
}

int nbd_client_open_uri(const char *uri, const struct nbd_client_opts *opts,
			struct nbd_client **out)
{
	struct nbd_client_opts o = { 0 };
	char *export = NULL;
	int fd, r;

	if (opts)
		o = *opts;
	fd = nbd_client_connect_uri(uri, &export);
	if (fd < 0)
		return fd;
	o.export = export;
	r = nbd_client_open_fd(fd, &o, out);
	if (r < 0)
		err_prefix("%s", uri);
	free(export);
	return r;
}

void nbd_client_close(struct nbd_client *c)
{
	struct pending p = { .type = NBD_CMD_DISC };

	if (!c)
		return;
	if (c->reader_started) {
		pthread_mutex_lock(&c->lock);
		p.cookie = c->next_cookie++;
		pthread_mutex_unlock(&c->lock);
		if (!c->broken)
			send_request(c, &p, 0, NULL, 0, 0);
		/* DISC has no reply: hang up so the reader ends at once */
		shutdown(c->fd, SHUT_RDWR);
		pthread_join(c->reader, NULL);
	}
	close(c->fd);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	free(c);
}

uint64_t nbd_client_size(const struct nbd_client *c)
{
	return __atomic_load_n(&c->n.size, __ATOMIC_RELAXED);
}

void nbd_client_set_size(struct nbd_client *c, uint64_t size)
{
	__atomic_store_n(&c->n.size, size, __ATOMIC_RELAXED);
}

uint16_t nbd_client_flags(const struct nbd_client *c)
{
	return c->n.flags;
}

bool nbd_client_read_only(const struct nbd_client *c)
{
	return c->n.flags & NBD_FLAG_READ_ONLY;
}

void nbd_client_block_size(const struct nbd_client *c, uint32_t *min,
			   uint32_t *preferred, uint32_t *max_payload)
{
	*min = c->n.min_block;
	*preferred = c->n.pref_block;
	*max_payload = c->n.max_payload;
}

bool nbd_client_has_block_status(const struct nbd_client *c)
{
	return c->n.has_alloc;
}

bool nbd_client_has_depth(const struct nbd_client *c)
{
	return c->n.has_depth;
}
