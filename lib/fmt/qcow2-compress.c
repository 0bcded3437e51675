/*
 * qcow2 compressed clusters (specification: "Compressed Clusters
 * Descriptor"): raw deflate with a 4 KiB window for compression_type=zlib
 * (0), zstd frames for compression_type=zstd (1).  The compressed bytes of
 * one cluster are at most cluster_size - 1 long or the cluster is stored
 * uncompressed; decompression stops once a whole cluster is produced.
 *
 * Compression runs on the caller's thread with a compressor state kept in
 * the caller's struct fmt_cdata (qcow2-cwrite.c stores the result).  zlib
 * uses qemu-img's settings (default level, 4 KiB window) but a hash table
 * sized for that window (memLevel 6 instead of 9): deflate slides its
 * window every 4 KiB and rescans the whole hash table each time, so with
 * qemu-img's 64 Ki-entry table most of the time goes into that rescan.
 * The streams are the same format and inflate the same way.  Measured
 * against memLevel 9: text compresses 2.5 times faster to the same size,
 * machine code about as fast and 0.6% larger.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "common/common.h"
#include "internal.h"

#define QCOW2_ZLIB_WINDOW (-12)       /* raw deflate, 4 KiB window */
#define QCOW2_ZLIB_MEMLEVEL 6

/* The compressor state of one thread (struct fmt_cdata's ctx). */
struct qcow2_cctx {
	z_stream z;
	bool z_ready;
	ZSTD_CCtx *zc;
};

static void cctx_free(void *p)
{
	struct qcow2_cctx *x = p;

	if (x->z_ready)
		deflateEnd(&x->z);
	ZSTD_freeCCtx(x->zc);
	free(x);
}

/* Compressed length, or -ENOSPC when it does not fit in outlen. */
static int64_t zlib_compress(struct qcow2_cctx *x, const uint8_t *in, size_t inlen,
			     uint8_t *out, size_t outlen)
{
	z_stream *z = &x->z;

	if (!x->z_ready) {
		memset(z, 0, sizeof(*z));
		if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
				 QCOW2_ZLIB_WINDOW, QCOW2_ZLIB_MEMLEVEL,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		x->z_ready = true;
	} else if (deflateReset(z) != Z_OK)
		return -ENOMEM;
	z->next_in = (uint8_t *)in;
	z->avail_in = (uInt)inlen;
	z->next_out = out;
	z->avail_out = (uInt)outlen;
	if (deflate(z, Z_FINISH) != Z_STREAM_END)
		return -ENOSPC;
	return (int64_t)(outlen - z->avail_out);
}

static int64_t zstd_compress(struct qcow2_cctx *x, const uint8_t *in, size_t inlen,
			     uint8_t *out, size_t outlen)
{
	size_t n;

	if (!x->zc && !(x->zc = ZSTD_createCCtx()))
		return -ENOMEM;
	n = ZSTD_compressCCtx(x->zc, out, outlen, in, inlen, ZSTD_CLEVEL_DEFAULT);
	if (ZSTD_isError(n))
		return -ENOSPC;
	return (int64_t)n;
}

static int zlib_decompress(const uint8_t *in, size_t inlen, uint8_t *out,
			   size_t outlen)
{
	z_stream z;
	int r;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -12) != Z_OK)
		return -ENOMEM;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	r = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	if ((r == Z_STREAM_END || r == Z_BUF_ERROR) && z.avail_out == 0)
		return 0;
	return -EIO;
}

static int zstd_decompress(const uint8_t *in, size_t inlen, uint8_t *out,
			   size_t outlen)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };
	int r = 0;

	if (!d)
		return -ENOMEM;
	while (ob.pos < ob.size) {
		size_t x = ZSTD_decompressStream(d, &ob, &ib);

		if (ZSTD_isError(x)) {
			r = -EIO;
			break;
		}
		if (ib.pos == ib.size && ob.pos < ob.size && x != 0) {
			r = -EIO;       /* input ran out mid-frame */
			break;
		}
		if (x == 0 && ob.pos < ob.size && ib.pos == ib.size) {
			r = -EIO;
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return r;
}

/* Bits of entropy per byte of len bytes, order 0. */
static double entropy(const uint8_t *in, size_t len)
{
	uint32_t h[4][256];
	double e = 0;
	size_t i;

	memset(h, 0, sizeof(h));
	for (i = 0; i + 4 <= len; i += 4) {      /* four tables: no store stalls */
		h[0][in[i]]++;
		h[1][in[i + 1]]++;
		h[2][in[i + 2]]++;
		h[3][in[i + 3]]++;
	}
	for (; i < len; i++)
		h[0][in[i]]++;
	for (i = 0; i < 256; i++) {
		uint32_t n = h[0][i] + h[1][i] + h[2][i] + h[3][i];

		if (n) {
			double p = (double)n / (double)len;

			e -= p * log2(p);
		}
	}
	return e;
}

/* Bytes that look random (close to 8 bits of entropy each) will not
 * shrink; skip the deflate attempt, the cluster is stored plainly anyway.
 * The first 4 KiB settle the common case quickly: random bytes measure
 * about 7.95 bits there, text and code far less. */
static bool looks_random(const uint8_t *in, size_t len)
{
	if (len < 8192 || entropy(in, 4096) < 7.9)
		return false;
	return entropy(in, len) > 7.98;
}

/* Room for n more clusters in cd. */
static void cdata_reserve(struct fmt_cdata *cd, size_t n, uint32_t cs)
{
	if (n > cd->cap) {
		cd->len = xrealloc(cd->len, n * sizeof(*cd->len));
		cd->cap = n;
	}
	if (n * cs > cd->buf_cap) {
		cd->buf = xrealloc(cd->buf, n * cs);
		cd->buf_cap = n * cs;
	}
}

/* Compress one cluster into out (room for a whole cluster); returns the
 * bytes used: cs when it is stored plainly. */
static int64_t compress_one(struct qcow2 *s, struct qcow2_cctx *x,
			    const uint8_t *cl, uint8_t *out)
{
	size_t cs = s->cluster_size;
	int64_t n;

	if (s->compression)
		n = zstd_compress(x, cl, cs, out, cs - 1);
	else
		n = looks_random(cl, cs) ? -ENOSPC : zlib_compress(x, cl, cs, out, cs - 1);
	if (n == -ENOSPC) {          /* does not shrink: store it plainly */
		memcpy(out, cl, cs);
		n = (int64_t)cs;
	}
	return n;
}

int qcow2_compress_clusters(struct fmt_image *img, const void *vbuf, uint64_t off,
			    size_t len, bool skip_zero, struct fmt_cdata *cd)
{
	struct qcow2 *s = qcow2_of(img);
	const uint8_t *buf = vbuf;
	uint32_t cs = s->cluster_size;
	size_t i, n = DIV_ROUND_UP(len, cs), used = 0;
	uint8_t *tail = NULL;
	int64_t k;

	if (off % cs || (len % cs && off + len != img->size))
		return err_set(-EINVAL, "Compressed writes must be cluster aligned");
	if (!cd->ctx) {
		cd->ctx = xzalloc(sizeof(struct qcow2_cctx));
		cd->ctx_free = cctx_free;
	}
	cdata_reserve(cd, n, cs);
	cd->off = off;
	cd->n = n;
	cd->cluster_size = cs;
	for (i = 0; i < n; i++) {
		const uint8_t *cl = buf + (size_t)i * cs;
		size_t have = MIN((size_t)cs, len - (size_t)i * cs);

		if (have < cs) {            /* the image ends inside this cluster */
			tail = xzalloc(cs);
			memcpy(tail, cl, have);
			cl = tail;
		}
		if ((cd->want && !cd->want[i]) || (skip_zero && fmt_is_zero(cl, cs))) {
			cd->len[i] = 0;
			continue;
		}
		if ((k = compress_one(s, cd->ctx, cl, cd->buf + used)) < 0) {
			free(tail);
			return err_set((int)k, "%s: cannot compress", img->filename);
		}
		cd->len[i] = (uint32_t)k;
		used += (size_t)k;
	}
	free(tail);
	return 0;
}

int qcow2_decompress(struct qcow2 *s, const uint8_t *in, size_t inlen,
		     uint8_t *out, size_t outlen)
{
	int r = s->compression ? zstd_decompress(in, inlen, out, outlen)
			       : zlib_decompress(in, inlen, out, outlen);

	if (r < 0)
		return err_set(-EIO, "%s: cannot decompress a compressed cluster",
			       s->img->filename);
	return 0;
}
