/*
 * The raw format: the file is the disk.  Sparse-aware (SEEK_DATA and
 * SEEK_HOLE answer block status), preallocation off/falloc/full,
 * cache=none through the O_DIRECT file helpers, and QEMU's guard: a raw
 * image whose format was probed rather than named refuses a write to
 * sector 0 that would make it probe as another format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "internal.h"

#define RAW_GUARD 512

static struct fmt_file *raw_file(const struct fmt_image *img)
{
	return img->priv;
}

static int raw_probe(const uint8_t *buf, size_t len)
{
	return 1;
}

static int raw_open(struct fmt_image *img, const struct fmt_open_opts *o)
{
	struct fmt_file *f = xzalloc(sizeof(*f));
	int64_t size;
	int r;

	r = fmt_file_open(f, img->filename, img->flags);
	if (r < 0) {
		free(f);
		return r;
	}
	size = fmt_file_size(f);
	if (size < 0) {
		fmt_file_close(f);
		free(f);
		return (int)size;
	}
	img->size = (uint64_t)size;
	img->priv = f;
	return 0;
}

static void raw_close(struct fmt_image *img)
{
	fmt_file_close(raw_file(img));
	free(img->priv);
}

static int raw_read(struct fmt_image *img, void *buf, uint64_t off, size_t len)
{
	return fmt_file_pread(raw_file(img), buf, len, off);
}

/* Would sector 0 after this write make the image probe as another format? */
static int raw_guard(struct fmt_image *img, const void *buf, uint64_t off,
		     size_t len)
{
	uint8_t s0[RAW_GUARD];
	int i, r;

	r = fmt_file_pread(raw_file(img), s0, sizeof(s0), 0);
	if (r < 0)
		return r;
	memcpy(s0 + off, buf, MIN(len, RAW_GUARD - off));
	for (i = 0; fmt_drivers[i]; i++)
		if (fmt_drivers[i] != &fmt_raw_driver && fmt_drivers[i]->probe &&
		    fmt_drivers[i]->probe(s0, sizeof(s0)) > 1)
			return err_set(-EPERM, "%s: writing a %s header to sector 0 "
				       "of an image probed as raw is not allowed; "
				       "name the format with -f raw",
				       img->filename, fmt_drivers[i]->name);
	return 0;
}

static int raw_write(struct fmt_image *img, const void *buf, uint64_t off,
		     size_t len, unsigned flags)
{
	int r;

	if (img->probed && off < RAW_GUARD && (r = raw_guard(img, buf, off, len)) < 0)
		return r;
	return fmt_file_pwrite(raw_file(img), buf, len, off);
}

static int raw_write_zeroes(struct fmt_image *img, uint64_t off, uint64_t len,
			    unsigned flags)
{
	struct fmt_file *f = raw_file(img);

	if (img->probed && off < RAW_GUARD)
		return -ENOTSUP;   /* the generic fallback runs the guard */
	if ((flags & FMT_W_MAY_UNMAP) && fmt_file_punch(f, off, len) == 0)
		return 0;
	if (fallocate(f->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
		return 0;
	return -ENOTSUP;
}

static int raw_discard(struct fmt_image *img, uint64_t off, uint64_t len)
{
	if (img->probed && off < RAW_GUARD)
		return 0;
	fmt_file_punch(raw_file(img), off, len);
	return 0;
}

static int raw_plain_fd(const struct fmt_image *img)
{
	return raw_file(img)->fd;
}

static int raw_flush(struct fmt_image *img)
{
	return fmt_file_flush(raw_file(img));
}

static int raw_block_status(struct fmt_image *img, uint64_t off, uint64_t len,
			    struct fmt_extent *ext)
{
	struct fmt_file *f = raw_file(img);
	off_t data, hole;

	ext->host_offset = off;
	ext->file = img->filename;
	ext->length = len;
	ext->status = FMT_ST_DATA | FMT_ST_ALLOCATED | FMT_ST_OFFSET;
	data = lseek(f->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO)
		data = (off_t)img->size;      /* a hole up to the end */
	else if (data < 0)
		return 0;                     /* no SEEK_DATA: all data */
	if ((uint64_t)data > off) {
		ext->status = FMT_ST_ZERO | FMT_ST_ALLOCATED | FMT_ST_OFFSET;
		ext->length = MIN(len, (uint64_t)data - off);
		return 0;
	}
	hole = lseek(f->fd, (off_t)off, SEEK_HOLE);
	if (hole > (off_t)off)
		ext->length = MIN(len, (uint64_t)hole - off);
	return 0;
}

static int raw_prealloc(struct fmt_file *f, uint64_t from, uint64_t to,
			enum fmt_prealloc p)
{
	if (to <= from || p == FMT_PREALLOC_OFF || p == FMT_PREALLOC_METADATA)
		return 0;
	return fmt_file_prealloc(f, from, to - from, p == FMT_PREALLOC_FULL);
}

static int raw_truncate(struct fmt_image *img, uint64_t size,
			enum fmt_prealloc p, bool shrink)
{
	struct fmt_file *f = raw_file(img);
	uint64_t old = img->size;
	int r;

	if (p == FMT_PREALLOC_METADATA)
		return err_set(-ENOTSUP, "Unsupported preallocation mode 'metadata'");
	r = fmt_file_truncate(f, size);
	if (r == 0)
		r = raw_prealloc(f, old, size, p);
	if (r == 0)
		img->size = size;
	return r;
}

static int raw_create(const char *filename, uint64_t size, const struct kvlist *opts)
{
	struct fmt_file f = { .fd = -1, .align = 1, .writable = true };
	enum fmt_prealloc p;
	int r;

	r = fmt_opt_prealloc(opts, &p);
	if (r < 0)
		return r;
	if (p == FMT_PREALLOC_METADATA)
		return err_set(-EINVAL, "Unsupported preallocation mode 'metadata'");
	f.fd = open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f.fd < 0)
		return err_set_errno(errno, "Could not create '%s'", filename);
	f.path = xstrdup(filename);
	r = fmt_file_truncate(&f, size);
	if (r == 0)
		r = raw_prealloc(&f, 0, size, p);
	fmt_file_close(&f);
	return r;
}

static int64_t raw_allocated(const struct fmt_image *img)
{
	return fmt_file_allocated(raw_file(img));
}

static int raw_measure(const struct kvlist *opts, uint64_t size,
		       struct fmt_image *src, struct fmt_measure *m)
{
	struct fmt_extent e;
	uint64_t off = 0;
	int r;

	m->fully_allocated = size;
	m->required = src ? 0 : size;
	while (src && off < size) {
		r = fmt_block_status(src, off, size - off, true, &e);
		if (r < 0)
			return r;
		if (e.status & FMT_ST_DATA)
			m->required += e.length;
		off += e.length;
	}
	return 0;
}

static const struct fmt_create_opt raw_create_opts[] = {
	{ "size", FMT_OPT_SIZE, "Virtual disk size", NULL },
	{ "preallocation", FMT_OPT_STRING,
	  "Preallocation mode (allowed values: off, falloc, full)", NULL },
	{ NULL, 0, NULL, NULL },
};

const struct fmt_driver fmt_raw_driver = {
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.close = raw_close,
	.read = raw_read,
	.write = raw_write,
	.write_zeroes = raw_write_zeroes,
	.discard = raw_discard,
	.flush = raw_flush,
	.plain_fd = raw_plain_fd,
	.block_status = raw_block_status,
	.truncate = raw_truncate,
	.create_opts = raw_create_opts,
	.create = raw_create,
	.allocated = raw_allocated,
	.measure = raw_measure,
};
