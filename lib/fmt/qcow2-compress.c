/*
 * qcow2 compressed clusters (specification: "Compressed Clusters
 * Descriptor"): raw deflate with a 4 KiB window for compression_type=zlib
 * (0), zstd frames for compression_type=zstd (1).  The compressed bytes of
 * one cluster are at most cluster_size - 1 long or the cluster is stored
 * uncompressed; decompression stops once a whole cluster is produced.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>

#include "common/common.h"
#include "internal.h"

static int64_t zlib_compress(const uint8_t *in, size_t inlen, uint8_t *out,
			     size_t outlen)
{
	z_stream z;
	int64_t r;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	r = deflate(&z, Z_FINISH) == Z_STREAM_END ? (int64_t)(outlen - z.avail_out)
						    : -ENOSPC;
	deflateEnd(&z);
	return r;
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

static int64_t zstd_compress(const uint8_t *in, size_t inlen, uint8_t *out,
			     size_t outlen)
{
	size_t n = ZSTD_compress(out, outlen, in, inlen, ZSTD_CLEVEL_DEFAULT);

	if (ZSTD_isError(n))
		return -ENOSPC;
	return (int64_t)n;
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

/* Bytes that look random (close to 8 bits of entropy each) will not
 * shrink; skip the deflate attempt, it would be stored plainly anyway. */
static bool looks_random(const uint8_t *in, size_t len)
{
	uint32_t h[256] = { 0 };
	double e = 0;
	size_t i;

	if (len < 4096)
		return false;
	for (i = 0; i < len; i++)
		h[in[i]]++;
	for (i = 0; i < 256; i++)
		if (h[i]) {
			double p = (double)h[i] / (double)len;

			e -= p * log2(p);
		}
	return e > 7.98;
}

int64_t qcow2_compress(struct qcow2 *s, const uint8_t *in, size_t inlen,
		       uint8_t *out, size_t outlen)
{
	if (looks_random(in, inlen))
		return -ENOSPC;
	return s->compression ? zstd_compress(in, inlen, out, outlen)
			      : zlib_compress(in, inlen, out, outlen);
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
