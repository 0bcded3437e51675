/*
 * The `nbd` driver of lib/fmt: an image that is an NBD export, named by
 * an NBD URI (nbd://host:port/export, nbd+unix:///export?socket=PATH, see
 * the NBD URI specification).  Every call maps onto the client in
 * nbd-client.c, which is thread-safe and keeps many requests in flight;
 * block status comes from the server's base:allocation context, so
 * convert and map copy and show only data.
 *
 * The export is the whole truth (it has no backing file of its own), so
 * every extent is reported ALLOCATED at this layer.  The block layer asks
 * for one extent at a time while the server answers with many, so the
 * last answer is kept (and dropped on every write) to save round trips.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "internal.h"

#define CACHE_EXTENTS 256

struct nbd_img {
	struct nbd_client *c;
	pthread_mutex_t lock;
	uint64_t gen;                 /* bumped by every write */
	int n;                        /* extents cached */
	struct nbd_extent cache[CACHE_EXTENTS];
};

static struct nbd_client *client(struct fmt_image *img)
{
	return ((struct nbd_img *)img->priv)->c;
}

/* A write changes allocation: forget what we knew. */
static void invalidate(struct fmt_image *img)
{
	struct nbd_img *ni = img->priv;

	pthread_mutex_lock(&ni->lock);
	ni->gen++;
	ni->n = 0;
	pthread_mutex_unlock(&ni->lock);
}

static bool nbd_drv_claims(const char *filename)
{
	return nbd_uri_is(filename);
}

static int nbd_drv_open(struct fmt_image *img, const struct fmt_open_opts *o)
{
	struct nbd_client_opts co = { .want_depth = false };
	struct nbd_client *c;
	int r = nbd_client_open_uri(img->filename, &co, &c);

	if (r < 0)
		return r;
	if ((img->flags & FMT_O_RDWR) && nbd_client_read_only(c)) {
		nbd_client_close(c);
		return err_set(-EACCES, "Could not open '%s': the NBD export is read-only",
			       img->filename);
	}
	struct nbd_img *ni = xzalloc(sizeof(*ni));

	ni->c = c;
	pthread_mutex_init(&ni->lock, NULL);
	img->size = nbd_client_size(c);
	img->priv = ni;
	return 0;
}

static void nbd_drv_close(struct fmt_image *img)
{
	struct nbd_img *ni = img->priv;

	nbd_client_close(ni->c);
	pthread_mutex_destroy(&ni->lock);
	free(ni);
	img->priv = NULL;
}

static int nbd_drv_read(struct fmt_image *img, void *buf, uint64_t off, size_t len)
{
	return nbd_client_read(client(img), buf, off, len);
}

static int nbd_drv_write(struct fmt_image *img, const void *buf, uint64_t off,
			 size_t len, unsigned flags)
{
	if (flags & FMT_W_COMPRESSED)
		return err_set(-ENOTSUP, "Operation not supported for format nbd");
	invalidate(img);
	return nbd_client_write(client(img), buf, off, len, 0);
}

static int nbd_drv_write_zeroes(struct fmt_image *img, uint64_t off, uint64_t len,
				unsigned flags)
{
	uint32_t f = 0;

	if (!(flags & FMT_W_MAY_UNMAP))
		f |= NBD_CMD_FLAG_NO_HOLE;
	if (flags & FMT_W_NO_FALLBACK)
		f |= NBD_CMD_FLAG_FAST_ZERO;
	invalidate(img);
	return nbd_client_write_zeroes(client(img), off, len, f);
}

static int nbd_drv_discard(struct fmt_image *img, uint64_t off, uint64_t len)
{
	invalidate(img);
	return nbd_client_trim(client(img), off, len, 0);
}

static int nbd_drv_flush(struct fmt_image *img)
{
	return nbd_client_flush(client(img));
}

/* The cached extent covering off, if any. */
static bool cache_lookup(struct nbd_img *ni, uint64_t off, struct nbd_extent *e)
{
	bool hit = false;

	pthread_mutex_lock(&ni->lock);
	for (int i = 0; i < ni->n && !hit; i++) {
		const struct nbd_extent *x = &ni->cache[i];

		if (off >= x->offset && off - x->offset < x->length) {
			*e = *x;
			e->length -= off - x->offset;
			e->offset = off;
			hit = true;
		}
	}
	pthread_mutex_unlock(&ni->lock);
	return hit;
}

static int nbd_drv_block_status(struct fmt_image *img, uint64_t off, uint64_t len,
				struct fmt_extent *ext)
{
	struct nbd_img *ni = img->priv;
	struct nbd_extent e, *list;
	uint64_t gen;
	int r;

	if (!cache_lookup(ni, off, &e)) {
		list = xmalloc(sizeof(*list) * CACHE_EXTENTS);
		pthread_mutex_lock(&ni->lock);
		gen = ni->gen;
		pthread_mutex_unlock(&ni->lock);
		r = nbd_client_block_status(ni->c, off, img->size - off, list, CACHE_EXTENTS);
		if (r < 0) {
			free(list);
			return r;
		}
		e = list[0];
		pthread_mutex_lock(&ni->lock);
		if (gen == ni->gen) {
			memcpy(ni->cache, list, sizeof(*list) * r);
			ni->n = r;
		}
		pthread_mutex_unlock(&ni->lock);
		free(list);
	}
	ext->length = MIN(e.length, len);
	ext->status = FMT_ST_ALLOCATED |
		      (e.flags & NBD_STATE_HOLE ? 0 : FMT_ST_DATA) |
		      (e.flags & NBD_STATE_ZERO ? FMT_ST_ZERO : 0);
	return 0;
}

const struct fmt_driver fmt_nbd_driver = {
	.name = "nbd",
	.claims = nbd_drv_claims,
	.open = nbd_drv_open,
	.close = nbd_drv_close,
	.read = nbd_drv_read,
	.write = nbd_drv_write,
	.write_zeroes = nbd_drv_write_zeroes,
	.discard = nbd_drv_discard,
	.flush = nbd_drv_flush,
	.block_status = nbd_drv_block_status,
};
