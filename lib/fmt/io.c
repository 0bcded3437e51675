/*
 * Checked entry points of the block layer: bounds and permission checks,
 * then the driver's ops (struct fmt_driver).  Block status resolves
 * unallocated extents down the backing chain and counts the depth.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/common.h"
#include "internal.h"

static int io_check(struct fmt_image *img, uint64_t off, uint64_t len, bool write)
{
	if (write && !(img->flags & FMT_O_RDWR))
		return err_set(-EPERM, "%s: image is opened read-only", img->filename);
	if (off > img->size || len > img->size - off)
		return err_set(-EINVAL, "%s: request at %llu+%llu is past the end "
			       "of the image (%llu bytes)", img->filename,
			       (unsigned long long)off, (unsigned long long)len,
			       (unsigned long long)img->size);
	return 0;
}

static int io_unsupported(struct fmt_image *img, const char *what)
{
	return err_set(-ENOTSUP, "Format driver '%s' does not support %s",
		       img->drv->name, what);
}

int fmt_read(struct fmt_image *img, void *buf, uint64_t off, size_t len)
{
	int r = io_check(img, off, len, false);

	if (r < 0 || !len)
		return r;
	return img->drv->read(img, buf, off, len);
}

int fmt_write(struct fmt_image *img, const void *buf, uint64_t off, size_t len,
	      unsigned flags)
{
	int r = io_check(img, off, len, true);

	if (r < 0 || !len)
		return r;
	if (!img->drv->write)
		return io_unsupported(img, "writing");
	if ((flags & FMT_W_COMPRESSED) && !fmt_cluster_size(img))
		return io_unsupported(img, "compressed writes");
	return img->drv->write(img, buf, off, len, flags);
}

int fmt_compress(struct fmt_image *img, const void *buf, uint64_t off,
		 size_t len, bool skip_zero, struct fmt_cdata *cd)
{
	int r = io_check(img, off, len, false);

	if (r < 0)
		return r;
	if (!img->drv->compress)
		return io_unsupported(img, "compressed writes");
	return img->drv->compress(img, buf, off, len, skip_zero, cd);
}

int fmt_write_compressed(struct fmt_image *img, const struct fmt_cdata *cd)
{
	int r = io_check(img, cd->off, 0, true);

	if (r < 0 || !cd->n)
		return r;
	if (!img->drv->write_compressed)
		return io_unsupported(img, "compressed writes");
	return img->drv->write_compressed(img, cd);
}

void fmt_cdata_free(struct fmt_cdata *cd)
{
	if (cd->ctx && cd->ctx_free)
		cd->ctx_free(cd->ctx);
	free(cd->buf);
	free(cd->len);
	memset(cd, 0, sizeof(*cd));
}

int fmt_copy_range(struct fmt_image *src, uint64_t soff, struct fmt_image *dst,
		   uint64_t doff, uint64_t len)
{
	int sfd, dfd, r;

	if (!src->drv->plain_fd || !dst->drv->plain_fd ||
	    (dst->probed && doff < 512))
		return -ENOTSUP;
	if ((r = io_check(src, soff, len, false)) < 0 ||
	    (r = io_check(dst, doff, len, true)) < 0)
		return r;
	sfd = src->drv->plain_fd(src);
	dfd = dst->drv->plain_fd(dst);
	if (sfd < 0 || dfd < 0)
		return -ENOTSUP;
	while (len) {
		loff_t so = (loff_t)soff, d = (loff_t)doff;
		ssize_t n = copy_file_range(sfd, &so, dfd, &d, (size_t)MIN(len, 1u << 30), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
			      errno == EINVAL))
			return -ENOTSUP;
		if (n < 0)
			return err_set_errno(errno, "%s: copy_file_range", dst->filename);
		if (n == 0)
			return -ENOTSUP;    /* source shorter than it claims */
		soff += (uint64_t)n;
		doff += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

int fmt_write_zeroes(struct fmt_image *img, uint64_t off, uint64_t len,
		     unsigned flags)
{
	const size_t chunk = 1 << 20;
	uint8_t *z;
	int r = io_check(img, off, len, true);

	if (r < 0 || !len)
		return r;
	if (img->drv->write_zeroes) {
		r = img->drv->write_zeroes(img, off, len, flags);
		if (r != -ENOTSUP || (flags & FMT_W_NO_FALLBACK))
			return r;
	} else if (flags & FMT_W_NO_FALLBACK)
		return -ENOTSUP;
	z = xzalloc(chunk);
	for (r = 0; len && r == 0;) {
		size_t n = (size_t)MIN(len, chunk);

		r = img->drv->write(img, z, off, n, 0);
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

int fmt_discard(struct fmt_image *img, uint64_t off, uint64_t len)
{
	int r = io_check(img, off, len, true);

	if (r < 0 || !len || !img->drv->discard)
		return r;
	return img->drv->discard(img, off, len);
}

int fmt_flush(struct fmt_image *img)
{
	if (!(img->flags & FMT_O_RDWR) || !img->drv->flush)
		return 0;
	return img->drv->flush(img);
}

static int io_status_layer(struct fmt_image *img, uint64_t off, uint64_t len,
			   struct fmt_extent *ext)
{
	int r;

	memset(ext, 0, sizeof(*ext));
	if (!img->drv->block_status) {
		ext->length = len;
		ext->status = FMT_ST_DATA | FMT_ST_ALLOCATED;
		return 0;
	}
	r = img->drv->block_status(img, off, len, ext);
	if (r == 0 && (ext->length == 0 || ext->length > len))
		ext->length = len;
	return r;
}

int fmt_block_status(struct fmt_image *img, uint64_t off, uint64_t len,
		     bool chain, struct fmt_extent *ext)
{
	struct fmt_image *b = img->backing;
	int r = io_check(img, off, len, false);

	if (r < 0)
		return r;
	if (!len)
		return err_set(-EINVAL, "block status of an empty range");
	r = io_status_layer(img, off, len, ext);
	if (r < 0 || !chain || (ext->status & FMT_ST_ALLOCATED))
		return r;
	if (!b) {
		ext->status = FMT_ST_ZERO | (ext->status & FMT_ST_OFFSET);
		return 0;
	}
	if (off >= b->size) {
		ext->status = FMT_ST_ZERO;
		ext->depth = 1;
		return 0;
	}
	len = MIN(ext->length, b->size - off);
	r = fmt_block_status(b, off, len, true, ext);
	ext->depth++;
	return r;
}

int fmt_allocation_depth(struct fmt_image *img, uint64_t off, uint64_t len,
			 uint64_t *run)
{
	struct fmt_extent e;
	int r = fmt_block_status(img, off, len, true, &e);

	if (r < 0)
		return r;
	*run = e.length;
	return (e.status & FMT_ST_ALLOCATED) ? e.depth + 1 : 0;
}

int fmt_truncate(struct fmt_image *img, uint64_t size, enum fmt_prealloc p,
		 bool shrink)
{
	if (!(img->flags & FMT_O_RDWR))
		return err_set(-EPERM, "%s: image is opened read-only", img->filename);
	if (!img->drv->truncate)
		return io_unsupported(img, "resizing");
	if (size < img->size && !shrink)
		return err_set(-EINVAL, "Use the --shrink option to perform a shrink "
			       "operation.");
	return img->drv->truncate(img, size, p, shrink);
}

int fmt_check(struct fmt_image *img, unsigned fix, struct fmt_check *c)
{
	if (!img->drv->check)
		return err_set(-ENOTSUP, "This image format does not support checks");
	return img->drv->check(img, fix, c);
}

int fmt_amend(struct fmt_image *img, const struct kvlist *opts, bool force)
{
	if (!img->drv->amend)
		return err_set(-ENOTSUP, "Format driver '%s' does not support option "
			       "amendment", img->drv->name);
	return img->drv->amend(img, opts, force);
}

int fmt_set_backing(struct fmt_image *img, const char *backing,
		    const char *backing_fmt)
{
	if (!img->drv->set_backing)
		return io_unsupported(img, "backing files");
	return img->drv->set_backing(img, backing, backing_fmt);
}

int fmt_make_empty(struct fmt_image *img)
{
	if (!img->drv->make_empty)
		return io_unsupported(img, "emptying the image");
	return img->drv->make_empty(img);
}

int fmt_snapshot_list(struct fmt_image *img, struct fmt_snapshot **list,
		      size_t *n)
{
	*list = NULL;
	*n = 0;
	if (!img->drv->snapshot_list)
		return 0;
	return img->drv->snapshot_list(img, list, n);
}

void fmt_snapshots_free(struct fmt_snapshot *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(list[i].id);
		free(list[i].name);
	}
	free(list);
}

int fmt_snapshot_create(struct fmt_image *img, const struct fmt_snapshot *sn)
{
	if (!img->drv->snapshot_create)
		return io_unsupported(img, "internal snapshots");
	if (!(img->flags & FMT_O_RDWR))
		return err_set(-EPERM, "%s: image is opened read-only", img->filename);
	return img->drv->snapshot_create(img, sn);
}

int fmt_snapshot_apply(struct fmt_image *img, const char *id_or_name)
{
	if (!img->drv->snapshot_apply)
		return io_unsupported(img, "internal snapshots");
	return img->drv->snapshot_apply(img, id_or_name);
}

int fmt_snapshot_delete(struct fmt_image *img, const char *id_or_name)
{
	if (!img->drv->snapshot_delete)
		return io_unsupported(img, "internal snapshots");
	return img->drv->snapshot_delete(img, id_or_name);
}

const char *fmt_snapshot_heading(void)
{
	return "ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT";
}

/* The columns are qemu-img's: a long field pushes the rest to the right
 * but always leaves one space before the next. */
char *fmt_snapshot_row(const struct fmt_snapshot *sn)
{
	char size[SIZE_STR_LEN], date[32], clock[48], icount[24] = "";
	time_t t = sn->date_sec;
	uint64_t ms = sn->vm_clock_nsec / 1000000;
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(clock, sizeof(clock), "%02llu:%02llu:%02llu.%03llu",
		 (unsigned long long)(ms / 3600000), (unsigned long long)(ms / 60000 % 60),
		 (unsigned long long)(ms / 1000 % 60), (unsigned long long)(ms % 1000));
	if (sn->icount != UINT64_MAX)
		snprintf(icount, sizeof(icount), "%llu", (unsigned long long)sn->icount);
	return xasprintf("%-9s %-16s %8s %19s %12s %10s", sn->id, sn->name,
			 size_to_str(sn->vm_state_size, size), date, clock, icount);
}

int fmt_vmstate_write(struct fmt_image *img, const void *buf, uint64_t off,
		      size_t len)
{
	if (!img->drv->vmstate_rw)
		return io_unsupported(img, "VM state");
	if (!(img->flags & FMT_O_RDWR))
		return err_set(-EPERM, "%s: image is opened read-only", img->filename);
	return img->drv->vmstate_rw(img, (void *)buf, off, len, true);
}

int fmt_vmstate_read(struct fmt_image *img, void *buf, uint64_t off, size_t len)
{
	if (!img->drv->vmstate_rw)
		return io_unsupported(img, "VM state");
	return img->drv->vmstate_rw(img, buf, off, len, false);
}

int fmt_bitmap_list(struct fmt_image *img, struct fmt_bitmap **list, size_t *n)
{
	*list = NULL;
	*n = 0;
	if (!img->drv->bitmap_list)
		return 0;
	return img->drv->bitmap_list(img, list, n);
}

void fmt_bitmaps_free(struct fmt_bitmap *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

int fmt_bitmap_read(struct fmt_image *img, const char *name, uint8_t **bits,
		    size_t *len)
{
	if (!img->drv->bitmap_read)
		return err_set(-ENOENT, "Dirty bitmap '%s' not found", name);
	return img->drv->bitmap_read(img, name, bits, len);
}

int fmt_bitmap_add(struct fmt_image *img, const struct fmt_bitmap *b,
		   const uint8_t *bits)
{
	if (!(img->flags & FMT_O_RDWR))
		return err_set(-EPERM, "%s: image is opened read-only", img->filename);
	if (!img->drv->bitmap_add)
		return io_unsupported(img, "persistent dirty bitmaps");
	return img->drv->bitmap_add(img, b, bits);
}

int fmt_bitmap_change(struct fmt_image *img, const char *name,
		      const struct fmt_bitmap *b, const uint8_t *bits)
{
	if (!(img->flags & FMT_O_RDWR))
		return err_set(-EPERM, "%s: image is opened read-only", img->filename);
	if (!img->drv->bitmap_change)
		return err_set(-ENOENT, "Dirty bitmap '%s' not found", name);
	return img->drv->bitmap_change(img, name, b, bits);
}

struct json_t *fmt_info_specific(struct fmt_image *img)
{
	json_t *o, *data;

	if (!img->drv->info)
		return NULL;
	data = json_object();
	if (img->drv->info(img, data) < 0) {
		json_decref(data);
		return NULL;
	}
	o = json_object();
	json_object_set_new(o, "type", json_string(img->drv->name));
	json_object_set_new(o, "data", data);
	return o;
}

static const char *const prealloc_names[] = { "off", "metadata", "falloc", "full" };

int fmt_prealloc_parse(const char *s, enum fmt_prealloc *out)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(prealloc_names); i++)
		if (strcmp(s, prealloc_names[i]) == 0) {
			*out = (enum fmt_prealloc)i;
			return 0;
		}
	return err_set(-EINVAL, "Invalid parameter '%s'", s);
}

const char *fmt_prealloc_name(enum fmt_prealloc p)
{
	return prealloc_names[p];
}

int fmt_opt_prealloc(const struct kvlist *opts, enum fmt_prealloc *p)
{
	const char *v = opts ? kv_get(opts, "preallocation") : NULL;

	*p = FMT_PREALLOC_OFF;
	return v ? fmt_prealloc_parse(v, p) : 0;
}
