/*
 * qcow2 creation, resize, option amendment, measurement and backing
 * changes.  A new image is laid out as QEMU lays it out: header in cluster
 * 0, refcount table in cluster 1, the first refcount block in cluster 2,
 * then the L1 table, allocated through the normal allocator once the image
 * opens.  Preallocation metadata/falloc/full allocates every L2 table and
 * data cluster in runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "internal.h"

const struct fmt_create_opt qcow2_create_opts[] = {
	{ "encrypt.format", FMT_OPT_STRING, "Encrypt the image (not supported)", NULL },
	{ "cluster_size", FMT_OPT_SIZE, "qcow2 cluster size", "65536" },
	{ "extended_l2", FMT_OPT_BOOL, "Extended L2 tables", "off" },
	{ "preallocation", FMT_OPT_STRING,
	  "Preallocation mode (allowed values: off, metadata, falloc, full)", NULL },
	{ "compression_type", FMT_OPT_STRING,
	  "Compression method used for image cluster compression", "zlib" },
	{ "size", FMT_OPT_SIZE, "Virtual disk size", NULL },
	{ "backing_file", FMT_OPT_STRING, "File name of a base image", NULL },
	{ "backing_fmt", FMT_OPT_STRING, "Image format of the base image", NULL },
	{ "compat", FMT_OPT_STRING, "Compatibility level (v2 [0.10] or v3 [1.1])", NULL },
	{ "data_file", FMT_OPT_STRING, "File name of an external data file "
	  "(not supported)", NULL },
	{ "data_file_raw", FMT_OPT_BOOL, "The external data file must stay valid "
	  "as a raw image", NULL },
	{ "lazy_refcounts", FMT_OPT_BOOL, "Postpone refcount updates", "off" },
	{ "refcount_bits", FMT_OPT_NUMBER, "Width of a reference count entry in bits",
	  "16" },
	{ "encryption", FMT_OPT_BOOL, "Encrypt the image (not supported)", NULL },
	{ "extent_size_hint", FMT_OPT_SIZE, "Extent size hint for the image file, "
	  "0 to disable", NULL },
	{ "nocow", FMT_OPT_BOOL, "Turn off copy-on-write (valid only on btrfs)", NULL },
	{ NULL, 0, NULL, NULL },
};

struct qcow2_params {
	uint32_t cluster_bits, version, refcount_order;
	bool lazy, ext_l2;
	uint8_t compression;
	enum fmt_prealloc prealloc;
};

static int parse_compat(const char *v, uint32_t *version)
{
	if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
		*version = 2;
	else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
		*version = 3;
	else
		return err_set(-EINVAL, "Invalid parameter '%s'", v);
	return 0;
}

static int parse_params(const struct kvlist *o, struct qcow2_params *p)
{
	uint64_t cs, rb;
	const char *v;
	int r;

	memset(p, 0, sizeof(*p));
	p->version = 3;
	if ((v = kv_get(o, "encrypt.format")) || (v = kv_get(o, "encryption")) ||
	    (v = kv_get(o, "data_file")))
		return err_set(-ENOTSUP, "qcow2 encryption and external data files "
			       "are not supported");
	if ((r = kv_get_size(o, "cluster_size", 65536, &cs)) < 0)
		return r;
	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		return err_set(-EINVAL, "Cluster size must be a power of two between "
			       "512 and 2048k");
	p->cluster_bits = (uint32_t)__builtin_ctzll(cs);
	if ((v = kv_get(o, "compat")) && (r = parse_compat(v, &p->version)) < 0)
		return r;
	if ((r = kv_get_bool(o, "lazy_refcounts", false, &p->lazy)) < 0 ||
	    (r = kv_get_bool(o, "extended_l2", false, &p->ext_l2)) < 0 ||
	    (r = kv_get_u64(o, "refcount_bits", 16, 1, 64, &rb)) < 0 ||
	    (r = fmt_opt_prealloc(o, &p->prealloc)) < 0)
		return r;
	if (rb & (rb - 1))
		return err_set(-EINVAL, "Refcount width must be a power of two and "
			       "may not exceed 64 bits");
	p->refcount_order = (uint32_t)__builtin_ctzll(rb);
	v = kv_get(o, "compression_type");
	if (v && strcmp(v, "zlib") && strcmp(v, "zstd"))
		return err_set(-EINVAL, "Invalid parameter '%s'", v);
	p->compression = v && !strcmp(v, "zstd");
	if (p->version < 3 && (p->lazy || rb != 16 || p->ext_l2 || p->compression))
		return err_set(-EINVAL, "%s only supported with compatibility level "
			       "1.1 and above (use compat=1.1 or greater)",
			       p->lazy ? "Lazy refcounts" : rb != 16 ?
			       "Different refcount widths than 16 bits" :
			       p->ext_l2 ? "Extended L2 entries" : "Compression types");
	if (p->ext_l2 && cs < 16384)
		return err_set(-EINVAL, "Extended L2 entries are only supported with "
			       "cluster sizes of at least 16384 bytes");
	return 0;
}

/* Header, refcount table and first block: the smallest valid image. */
static int write_skeleton(int fd, const struct qcow2_params *p)
{
	uint64_t cs = 1ull << p->cluster_bits;
	uint8_t *b = xzalloc(3 * cs);
	struct qcow2 tmp = { .refcount_bits = 1u << p->refcount_order };
	int r, i;

	be32_put(b, QCOW2_MAGIC);
	be32_put(b + 4, p->version);
	be32_put(b + 20, p->cluster_bits);
	be64_put(b + 48, cs);
	be32_put(b + 56, 1);
	if (p->version >= 3) {
		be64_put(b + 72, (p->compression ? QCOW2_INCOMPAT_COMPRESSION : 0) |
			 (p->ext_l2 ? QCOW2_INCOMPAT_EXTL2 : 0));
		be64_put(b + 80, p->lazy ? QCOW2_COMPAT_LAZY : 0);
		be32_put(b + 96, p->refcount_order);
		be32_put(b + 100, 112);
		b[104] = p->compression;
	}
	be64_put(b + cs, 2 * cs);
	for (i = 0; i < 3; i++)
		qcow2_rb_set(&tmp, b + 2 * cs, (uint64_t)i, 1);
	r = write_full(fd, b, 3 * cs);
	free(b);
	return r;
}

/* Allocate L2 tables and data clusters for [from, to). */
static int prealloc_range(struct fmt_image *img, uint64_t from, uint64_t to,
			  enum fmt_prealloc mode)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size, pos = ALIGN_UP(from, cs), e, bm, span;
	uint64_t first = 0, last = 0;
	int64_t h;
	int r = 0;

	span = 1ull << (s->cluster_bits + s->l2_bits);
	pthread_mutex_lock(&s->lock);
	while (pos < to && r == 0) {
		uint64_t n = (MIN(to, ALIGN_DOWN(pos, span) + span) - pos + cs - 1) / cs, i;

		if ((r = qcow2_update_l2_locked(s, pos, 0, 0)) < 0 ||
		    (h = qcow2_alloc(s, n)) < 0) {
			r = r < 0 ? r : (int)h;
			break;
		}
		first = first ? first : (uint64_t)h;
		last = (uint64_t)h + n * cs;
		for (i = 0; i < n && r == 0; i++) {
			if ((r = qcow2_l2_entry(s, pos, &e, &bm)) == 0)
				r = qcow2_update_l2_locked(s, pos, ((uint64_t)h + i * cs) |
							   QCOW2_OFLAG_COPIED,
							   s->ext_l2 ? L2_SC_ALL : 0);
			pos += cs;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0 && last && (mode == FMT_PREALLOC_FALLOC || mode == FMT_PREALLOC_FULL))
		r = fmt_file_prealloc(&s->f, first, last - first, mode == FMT_PREALLOC_FULL);
	if (r == 0 && last && fmt_file_size(&s->f) < (int64_t)last)
		r = fmt_file_truncate(&s->f, last);
	return r;
}

static int set_size(struct fmt_image *img, uint64_t size)
{
	struct qcow2 *s = qcow2_of(img);
	uint8_t b[8];
	int r;

	pthread_mutex_lock(&s->lock);
	r = qcow2_l1_grow(s, qcow2_l1_entries_for(s, size));
	pthread_mutex_unlock(&s->lock);
	be64_put(b, size);
	if (r == 0 && (r = fmt_file_pwrite(&s->f, b, 8, 24)) == 0)
		img->size = size;
	return r;
}

int qcow2_create(const char *filename, uint64_t size, const struct kvlist *o)
{
	struct fmt_open_opts oo = { .format = "qcow2",
				    .flags = FMT_O_RDWR | FMT_O_NO_BACKING };
	struct qcow2_params p;
	struct fmt_image *img;
	const char *bf = kv_get(o, "backing_file"), *bfmt = kv_get(o, "backing_fmt");
	int fd, r;

	if ((r = parse_params(o, &p)) < 0)
		return r;
	if (bfmt && !bf)
		return err_set(-EINVAL, "Backing format cannot be used without "
			       "backing file");
	if (bf && p.prealloc != FMT_PREALLOC_OFF)
		return err_set(-EINVAL, "Backing file and preallocation can only be "
			       "used at the same time if extended_l2 is on");
	fd = open(filename, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set_errno(errno, "Could not create '%s'", filename);
	r = write_skeleton(fd, &p);
	close(fd);
	if (r < 0)
		return err_set_errno(-r, "Could not write '%s'", filename);
	if ((r = fmt_open(filename, &oo, &img)) < 0)
		return r;
	r = set_size(img, size);
	if (r == 0 && bf) {
		img->backing_name = xstrdup(bf);
		img->backing_fmt = bfmt ? xstrdup(bfmt) : NULL;
	}
	if (r == 0)
		r = qcow2_header_write(qcow2_of(img));
	if (r == 0 && p.prealloc != FMT_PREALLOC_OFF)
		r = prealloc_range(img, 0, size, p.prealloc);
	if (fmt_close(img) < 0 && r == 0)
		r = -EIO;
	return r;
}

/* After a shrink: L1 entries past the new size are cleared (on disk
 * first) and their L2 tables freed, then the file is cut after the last
 * cluster still in use, as qemu-img leaves it. */
static int shrink_tables(struct qcow2 *s, uint64_t size)
{
	uint64_t first = qcow2_l1_entries_for(s, size), i, l2, rc, last;
	uint8_t *z;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (first < s->l1_size) {
		z = xzalloc((s->l1_size - first) * 8);
		r = fmt_file_pwrite(&s->f, z, (s->l1_size - first) * 8,
				    s->l1_offset + first * 8);
		free(z);
	}
	for (i = first; r == 0 && i < s->l1_size; i++) {
		if (!(l2 = s->l1[i] & QCOW2_OFFSET_MASK))
			continue;
		s->l1[i] = 0;
		qcow2_cache_drop(&s->l2c, l2);
		r = qcow2_free(s, l2, s->cluster_size);
	}
	for (last = DIV_ROUND_UP(s->file_end, s->cluster_size); r == 0 && last > 1; last--)
		if ((r = qcow2_refcount_get(s, last - 1, &rc)) < 0 || rc)
			break;
	if (r == 0 && (r = qcow2_rc_writeback(s)) == 0 &&
	    (last << s->cluster_bits) < s->file_end &&
	    (r = fmt_file_truncate(&s->f, last << s->cluster_bits)) == 0)
		s->file_end = last << s->cluster_bits;
	s->free_hint = MIN(s->free_hint, last);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int qcow2_truncate(struct fmt_image *img, uint64_t size, enum fmt_prealloc p,
		   bool shrink)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t old = img->size;
	int r;

	if (s->snapshot_view)
		return err_set(-EPERM, "image is opened on a snapshot");
	if (size < old) {
		if (s->n_snaps)
			return err_set(-ENOTSUP, "Can't resize an image which has "
				       "snapshots");
		r = qcow2_unmap(img, ALIGN_UP(size, s->cluster_size),
				ALIGN_UP(old, s->cluster_size) -
				ALIGN_UP(size, s->cluster_size));
		if (r < 0 || (r = shrink_tables(s, size)) < 0)
			return r;
	}
	r = set_size(img, size);
	if (r == 0 && size > old && p != FMT_PREALLOC_OFF)
		r = prealloc_range(img, old, size, p);
	return r < 0 ? r : fmt_file_flush(&s->f);
}

int qcow2_set_backing(struct fmt_image *img, const char *name, const char *fmt)
{
	struct qcow2 *s = qcow2_of(img);
	char *on = img->backing_name, *of = img->backing_fmt;
	int r;

	img->backing_name = name ? xstrdup(name) : NULL;
	img->backing_fmt = fmt && name ? xstrdup(fmt) : NULL;
	r = qcow2_header_write(s);
	if (r < 0) {
		free(img->backing_name);
		free(img->backing_fmt);
		img->backing_name = on;
		img->backing_fmt = of;
		return r;
	}
	free(on);
	free(of);
	return 0;
}

int qcow2_make_empty(struct fmt_image *img)
{
	return qcow2_unmap(img, 0, ALIGN_UP(img->size, qcow2_of(img)->cluster_size));
}

/* QEMU's rule for the space of a fully allocated image. */
static uint64_t rc_meta_clusters(uint64_t clusters, uint32_t cbits, uint32_t order)
{
	uint64_t per = 1ull << (cbits + 3 - order), rtper = 1ull << (cbits - 3);
	uint64_t table = 0, blocks = 0, last;

	do {
		last = table + blocks;
		blocks = DIV_ROUND_UP(clusters + table + blocks, per);
		table = DIV_ROUND_UP(blocks, rtper);
	} while (table + blocks != last);
	return table + blocks;
}

static uint64_t full_size(uint64_t size, const struct qcow2_params *p)
{
	uint64_t cs = 1ull << p->cluster_bits, esz = p->ext_l2 ? 16 : 8;
	uint64_t asize = ALIGN_UP(size, cs), meta = cs, nl2e, nl1e;

	nl2e = ALIGN_UP(asize / cs, cs / esz);
	meta += nl2e * esz;
	nl1e = ALIGN_UP(DIV_ROUND_UP(nl2e * esz, cs), cs / 8);
	meta += nl1e * 8;
	meta += rc_meta_clusters(meta / cs + asize / cs, p->cluster_bits,
				 p->refcount_order) * cs;
	return meta + asize;
}

int qcow2_measure(const struct kvlist *opts, uint64_t size,
		  struct fmt_image *src, struct fmt_measure *m)
{
	struct qcow2_params p;
	uint64_t cs, data = 0, off = 0;
	struct fmt_extent e;
	int r;

	if ((r = parse_params(opts, &p)) < 0)
		return r;
	cs = 1ull << p.cluster_bits;
	while (src && off < size) {
		if ((r = fmt_block_status(src, off, size - off, true, &e)) < 0)
			return r;
		if ((e.status & FMT_ST_DATA) && !(e.status & FMT_ST_ZERO))
			data += ALIGN_UP(off + e.length, cs) - ALIGN_DOWN(off, cs);
		off += e.length;
	}
	if (!src || p.prealloc == FMT_PREALLOC_FALLOC || p.prealloc == FMT_PREALLOC_FULL)
		data = src ? ALIGN_UP(size, cs) : 0;
	m->fully_allocated = full_size(size, &p);
	m->required = m->fully_allocated - ALIGN_UP(size, cs) + MIN(data, ALIGN_UP(size, cs));
	if (!src && (p.prealloc == FMT_PREALLOC_FALLOC || p.prealloc == FMT_PREALLOC_FULL))
		m->required = m->fully_allocated;
	return 0;
}
