/*
 * qcow2: header, open-time validation, close and the driver table.
 * Follows QEMU's qcow2 specification (docs/interop/qcow2.txt): the
 * header (version 2 = compat 0.10, version 3 = compat 1.1), header
 * extensions (backing format, feature names, bitmaps and unknown ones
 * carried through verbatim), and the incompatible/compatible/autoclear
 * feature bits.  Every table offset and size in the header is checked
 * against the file before use: a corrupt image gives one error line.
 *
 * The rest lives in qcow2-io.c (guest I/O, compression), qcow2-refcount.c
 * (caches, reference counts, cluster allocation), qcow2-snapshot.c,
 * qcow2-check.c and qcow2-create.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/common.h"
#include "internal.h"

static const struct { uint8_t type, bit; const char *name; } qcow2_feature_names[] = {
	{ 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" },
	{ 0, 2, "external data file" }, { 0, 3, "compression type" },
	{ 0, 4, "extended L2 entries" }, { 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
};

static int qcow2_probe(const uint8_t *buf, size_t len)
{
	if (len >= 8 && be32_get(buf) == QCOW2_MAGIC &&
	    (be32_get(buf + 4) == 2 || be32_get(buf + 4) == 3))
		return 100;
	return 0;
}

uint64_t qcow2_l1_entries_for(const struct qcow2 *s, uint64_t size)
{
	return DIV_ROUND_UP(size, (uint64_t)1 << (s->cluster_bits + s->l2_bits));
}

int qcow2_corrupt(struct qcow2 *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->writable && s->version >= 3 && !(s->incompat & QCOW2_INCOMPAT_CORRUPT)) {
		qcow2_set_incompat(s, QCOW2_INCOMPAT_CORRUPT, true);
		return err_set(-EIO, "Marking image as corrupt: %s; further "
			       "corruption events will be suppressed", msg);
	}
	return err_set(-EIO, "Image is corrupt: %s", msg);
}

int qcow2_set_incompat(struct qcow2 *s, uint64_t bits, bool on)
{
	uint8_t b[8];
	uint64_t v = on ? s->incompat | bits : s->incompat & ~bits;

	if (s->version < 3 || v == s->incompat)
		return 0;
	be64_put(b, v);
	if (fmt_file_pwrite(&s->f, b, 8, 72) < 0)
		return -EIO;
	s->incompat = v;
	return fmt_file_flush(&s->f);
}

static size_t qcow2_put_ext(uint8_t *buf, size_t pos, size_t max, uint32_t type,
			    const void *data, uint32_t len)
{
	size_t need = 8 + ALIGN_UP(len, 8);

	if (pos + need > max)
		return 0;
	be32_put(buf + pos, type);
	be32_put(buf + pos + 4, len);
	memcpy(buf + pos + 8, data, len);
	return pos + need;
}

static size_t qcow2_put_features(uint8_t *buf, size_t pos, size_t max)
{
	uint8_t t[ARRAY_SIZE(qcow2_feature_names) * 48];
	size_t i;

	memset(t, 0, sizeof(t));
	for (i = 0; i < ARRAY_SIZE(qcow2_feature_names); i++) {
		t[i * 48] = qcow2_feature_names[i].type;
		t[i * 48 + 1] = qcow2_feature_names[i].bit;
		memcpy(t + i * 48 + 2, qcow2_feature_names[i].name,
		       strlen(qcow2_feature_names[i].name));
	}
	return qcow2_put_ext(buf, pos, max, QCOW2_EXT_FEATURES, t, sizeof(t));
}

/* Rewrite the whole header cluster from s (and img's backing name). */
int qcow2_header_write(struct qcow2 *s)
{
	struct fmt_image *img = s->img;
	size_t cs = s->cluster_size, pos, i, blen = 0;
	uint8_t *h = xzalloc(cs);
	int r;

	be32_put(h, QCOW2_MAGIC);
	be32_put(h + 4, s->version);
	be32_put(h + 20, s->cluster_bits);
	be64_put(h + 24, img->size);
	be32_put(h + 36, s->l1_size);
	be64_put(h + 40, s->l1_offset);
	be64_put(h + 48, s->rt_offset);
	be32_put(h + 56, s->rt_clusters);
	be32_put(h + 60, s->n_snaps);
	be64_put(h + 64, s->snaps_offset);
	pos = 72;
	if (s->version >= 3) {
		be64_put(h + 72, s->incompat);
		be64_put(h + 80, s->compat);
		be64_put(h + 88, s->autoclear);
		be32_put(h + 96, s->refcount_order);
		be32_put(h + 100, 112);
		h[104] = s->compression;
		pos = 112;
	}
	if (img->backing_fmt && img->backing_name)
		pos = qcow2_put_ext(h, pos, cs, QCOW2_EXT_BACKING_FMT, img->backing_fmt,
				    (uint32_t)strlen(img->backing_fmt));
	if (pos)
		pos = qcow2_put_features(h, pos, cs);
	for (i = 0; i < s->n_exts && pos; i++)
		pos = qcow2_put_ext(h, pos, cs, s->exts[i].type, s->exts[i].data,
				    s->exts[i].len);
	if (pos && pos + 8 <= cs)
		pos += 8;                /* end-of-extensions marker */
	else
		pos = 0;
	if (img->backing_name)
		blen = strlen(img->backing_name);
	if (!pos || pos + blen > cs) {
		free(h);
		return err_set(-ENOSPC, "header extensions and backing file name "
			       "do not fit in the first cluster");
	}
	s->backing_off = blen ? pos : 0;
	s->backing_len = (uint32_t)blen;
	be64_put(h + 8, s->backing_off);
	be32_put(h + 16, s->backing_len);
	memcpy(h + pos, img->backing_name ? img->backing_name : "", blen);
	r = fmt_file_pwrite(&s->f, h, pos + blen, 0);
	free(h);
	return r < 0 ? r : fmt_file_flush(&s->f);
}

static int qcow2_unsupported(uint64_t bits)
{
	char list[256] = "";
	size_t i, n = 0;

	/* snprintf reports what it would have written: stop once the list
	 * is full, before list + n could point past its end. */
	for (i = 0; i < 64 && n < sizeof(list); i++)
		if (bits & (1ull << i))
			n += (size_t)snprintf(list + n, sizeof(list) - n,
					      "%sUnknown incompatible feature: %llx",
					      n ? ", " : "", 1ull << i);
	return err_set(-ENOTSUP, "Unsupported qcow2 feature(s): %s", list);
}

static int qcow2_parse_exts(struct qcow2 *s, const uint8_t *h, size_t len)
{
	struct fmt_image *img = s->img;
	size_t pos = s->header_len;

	while (pos + 8 <= len) {
		uint32_t type = be32_get(h + pos), el = be32_get(h + pos + 4);

		if (type == QCOW2_EXT_END)
			return 0;
		if (el > len - pos - 8)
			return err_set(-EINVAL, "Invalid header extension: "
				       "extension 0x%x overruns the header", type);
		if (type == QCOW2_EXT_BACKING_FMT) {
			free(img->backing_fmt);
			img->backing_fmt = xzalloc(el + 1);
			memcpy(img->backing_fmt, h + pos + 8, el);
		} else if (type == QCOW2_EXT_CRYPTO || type == QCOW2_EXT_DATA_FILE) {
			return err_set(-ENOTSUP, "qcow2 %s is not supported",
				       type == QCOW2_EXT_CRYPTO ? "encryption" :
				       "external data file");
		} else if (type != QCOW2_EXT_FEATURES) {
			s->exts = xrealloc(s->exts, (s->n_exts + 1) * sizeof(*s->exts));
			s->exts[s->n_exts].type = type;
			s->exts[s->n_exts].len = el;
			s->exts[s->n_exts].data = xmalloc(el);
			memcpy(s->exts[s->n_exts].data, h + pos + 8, el);
			s->n_exts++;
		}
		pos += 8 + ALIGN_UP((size_t)el, 8);
	}
	return 0;
}

static int qcow2_parse_v3(struct qcow2 *s, const uint8_t *h)
{
	s->incompat = be64_get(h + 72);
	s->compat = be64_get(h + 80);
	s->autoclear = be64_get(h + 88);
	s->refcount_order = be32_get(h + 96);
	s->header_len = be32_get(h + 100);
	if (s->header_len < 104 || s->header_len > s->cluster_size ||
	    s->header_len % 8)
		return err_set(-EINVAL, "qcow2 header length %u is invalid",
			       s->header_len);
	if (s->incompat & ~QCOW2_INCOMPAT_KNOWN)
		return qcow2_unsupported(s->incompat & ~QCOW2_INCOMPAT_KNOWN);
	if (s->incompat & QCOW2_INCOMPAT_DATA_FILE)
		return err_set(-ENOTSUP, "qcow2 external data files are not supported");
	if (s->refcount_order > 6)
		return err_set(-EINVAL, "Reference count entry width too large; may "
			       "not exceed 64 bits");
	s->compression = s->header_len > 104 ? h[104] : 0;
	if (s->compression > 1)
		return err_set(-ENOTSUP, "Unknown compression type %u", s->compression);
	if (!!s->compression != !!(s->incompat & QCOW2_INCOMPAT_COMPRESSION))
		return err_set(-EINVAL, "Compression type %u does not match the "
			       "compression type bit", s->compression);
	s->ext_l2 = s->incompat & QCOW2_INCOMPAT_EXTL2;
	if (s->ext_l2 && s->cluster_bits < 14)
		return err_set(-EINVAL, "Extended L2 entries are only supported "
			       "with cluster sizes of at least 16384 bytes");
	s->autoclear &= QCOW2_AUTOCLEAR_BITMAPS;
	return 0;
}

/* Check that a table [off, off + len) is aligned and inside the file. */
static int qcow2_table_ok(struct qcow2 *s, uint64_t off, uint64_t len,
			  const char *what)
{
	if (off % s->cluster_size)
		return err_set(-EINVAL, "Invalid %s offset", what);
	if (off > s->file_end || len > s->file_end - off)
		return err_set(-EINVAL, "%s is past the end of the file", what);
	return 0;
}

static void qcow2_geometry(struct qcow2 *s)
{
	s->cluster_size = 1u << s->cluster_bits;
	s->refcount_bits = 1u << s->refcount_order;
	s->rb_bits = s->cluster_bits + 3 - s->refcount_order;
	s->l2_entry_size = s->ext_l2 ? 16 : 8;
	s->l2_bits = s->cluster_bits - (s->ext_l2 ? 4 : 3);
	s->sc_bits = s->ext_l2 ? s->cluster_bits - 5 : s->cluster_bits;
	s->csize_shift = 62 - (s->cluster_bits - 8);
	s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
}

static int qcow2_load_tables(struct qcow2 *s)
{
	uint64_t l1b = (uint64_t)s->l1_size * 8, i;
	int r;

	if (l1b > QCOW2_MAX_L1_BYTES)
		return err_set(-EFBIG, "Active L1 table too large");
	if (s->l1_size < qcow2_l1_entries_for(s, s->img->size))
		return err_set(-EINVAL, "L1 table is too small");
	if (s->rt_clusters == 0 || (uint64_t)s->rt_clusters * s->cluster_size >
	    QCOW2_MAX_RT_BYTES * (s->cluster_size >= 65536 ? s->cluster_size / 65536 : 1))
		return err_set(-EFBIG, "Reference count table too large");
	if ((r = qcow2_table_ok(s, s->l1_offset, l1b, "L1 table")) < 0 ||
	    (r = qcow2_table_ok(s, s->rt_offset, (uint64_t)s->rt_clusters <<
				s->cluster_bits, "Reference count table")) < 0)
		return r;
	s->l1 = xzalloc(l1b + 8);
	if (l1b && (r = fmt_file_pread(&s->f, s->l1, l1b, s->l1_offset)) < 0)
		return r;
	for (i = 0; i < s->l1_size; i++)
		s->l1[i] = be64_get(&s->l1[i]);
	s->rt_size = ((uint64_t)s->rt_clusters << s->cluster_bits) / 8;
	s->rt = xmalloc(s->rt_size * 8);
	if ((r = fmt_file_pread(&s->f, s->rt, s->rt_size * 8, s->rt_offset)) < 0)
		return r;
	for (i = 0; i < s->rt_size; i++)
		s->rt[i] = be64_get(&s->rt[i]);
	return 0;
}

int qcow2_parse_open(struct qcow2 *s, const uint8_t *h, size_t len, bool check)
{
	struct fmt_image *img = s->img;
	int r;

	if (len < 4 || be32_get(h) != QCOW2_MAGIC)
		return err_set(-EINVAL, "Image is not in qcow2 format");
	if (len < 72)
		return err_set(-EINVAL, "qcow2 header is truncated");
	s->version = be32_get(h + 4);
	if (s->version != 2 && s->version != 3)
		return err_set(-ENOTSUP, "Unsupported qcow2 version %u", s->version);
	s->cluster_bits = be32_get(h + 20);
	if (s->cluster_bits < 9 || s->cluster_bits > 21)
		return err_set(-EINVAL, "Unsupported cluster size: 2^%u", s->cluster_bits);
	s->cluster_size = 1u << s->cluster_bits;
	img->size = be64_get(h + 24);
	if (img->size > (1ull << 62))
		return err_set(-EFBIG, "Image size too large");
	if (be32_get(h + 32))
		return err_set(-ENOTSUP, "qcow2 encryption is not supported");
	s->refcount_order = 4;
	s->header_len = 72;
	if (s->version == 3 && (len < 104 || (r = qcow2_parse_v3(s, h)) < 0))
		return len < 104 ? err_set(-EINVAL, "qcow2 header is truncated") : r;
	if (len < s->cluster_size && s->file_end >= s->cluster_size)
		return err_set(-EIO, "short read of the qcow2 header");
	qcow2_geometry(s);
	s->l1_size = be32_get(h + 36);
	s->l1_offset = be64_get(h + 40);
	s->rt_offset = be64_get(h + 48);
	s->rt_clusters = be32_get(h + 56);
	s->n_snaps = be32_get(h + 60);
	s->snaps_offset = be64_get(h + 64);
	s->backing_off = be64_get(h + 8);
	s->backing_len = be32_get(h + 16);
	if ((r = qcow2_parse_exts(s, h, MIN(len, s->cluster_size))) < 0)
		return r;
	if (s->backing_off) {
		if (s->backing_len > 1023 || s->backing_off > s->cluster_size ||
		    s->backing_len > s->cluster_size - s->backing_off ||
		    s->backing_off + s->backing_len > len)
			return err_set(-EINVAL, "Backing file name too long or "
				       "outside the header cluster");
		img->backing_name = xzalloc(s->backing_len + 1);
		memcpy(img->backing_name, h + s->backing_off, s->backing_len);
	}
	if ((r = qcow2_load_tables(s)) < 0)
		return r;
	return qcow2_snapshots_read(s);
}

static int qcow2_use_snapshot(struct qcow2 *s, const char *which)
{
	struct qcow2_snap *sn;
	uint64_t i;
	int k = qcow2_snapshot_find(s, which);
	int r;

	if (k < 0)
		return err_set(-ENOENT, "Can't find snapshot '%s'", which);
	sn = &s->snaps[k];
	free(s->l1);
	s->l1 = xzalloc((uint64_t)sn->l1_size * 8 + 8);
	s->l1_size = sn->l1_size;
	s->l1_offset = sn->l1_offset;
	if (sn->l1_size && (r = fmt_file_pread(&s->f, s->l1, (size_t)sn->l1_size * 8,
					       sn->l1_offset)) < 0)
		return r;
	for (i = 0; i < sn->l1_size; i++)
		s->l1[i] = be64_get(&s->l1[i]);
	s->img->size = sn->disk_size;
	if (qcow2_l1_entries_for(s, sn->disk_size) > sn->l1_size)
		return err_set(-EINVAL, "Snapshot L1 table is too small");
	s->snapshot_view = true;
	return 0;
}

static void qcow2_free_state(struct qcow2 *s)
{
	size_t i;

	qcow2_cache_free(&s->l2c);
	qcow2_cache_free(&s->rbc);
	for (i = 0; i < s->n_exts; i++)
		free(s->exts[i].data);
	free(s->exts);
	qcow2_snapshots_free(s);
	free(s->l1);
	free(s->rt);
	fmt_file_close(&s->f);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int qcow2_open_state(struct qcow2 *s, struct fmt_image *img,
			    const struct fmt_open_opts *o)
{
	size_t hl;
	uint8_t *h;
	int64_t fs;
	int r;

	if ((fs = fmt_file_size(&s->f)) < 0)
		return (int)fs;
	s->file_end = (uint64_t)fs;
	hl = (size_t)MIN((uint64_t)fs, 1u << 21);
	h = xzalloc(hl + 8);
	r = hl ? fmt_file_pread(&s->f, h, hl, 0) : 0;
	if (r == 0)
		r = qcow2_parse_open(s, h, hl, img->flags & FMT_O_CHECK);
	free(h);
	if (r < 0)
		return r;
	int n = (int)MAX(16u, MIN(64u, (8u << 20) >> s->cluster_bits));
	qcow2_cache_init(&s->l2c, n);
	qcow2_cache_init(&s->rbc, n);
	if (o->snapshot)
		return qcow2_use_snapshot(s, o->snapshot);
	if (!s->writable || (img->flags & FMT_O_CHECK))
		return 0;
	if (s->incompat & QCOW2_INCOMPAT_CORRUPT)
		return err_set(-EACCES, "qcow2: Image is corrupt; cannot be opened "
			       "read/write");
	if (s->incompat & QCOW2_INCOMPAT_DIRTY)
		return qcow2_repair_dirty(s);
	return 0;
}

static int qcow2_open(struct fmt_image *img, const struct fmt_open_opts *o)
{
	struct qcow2 *s = xzalloc(sizeof(*s));
	int r;

	pthread_mutex_init(&s->lock, NULL);
	s->img = img;
	if (o->snapshot)
		img->flags &= ~FMT_O_RDWR;
	s->writable = img->flags & FMT_O_RDWR;
	r = fmt_file_open(&s->f, img->filename, img->flags);
	if (r < 0) {
		free(s);
		return r;
	}
	img->priv = s;
	r = qcow2_open_state(s, img, o);
	if (r < 0) {
		qcow2_free_state(s);
		img->priv = NULL;
	}
	return r;
}

static int qcow2_flush(struct fmt_image *img)
{
	struct qcow2 *s = qcow2_of(img);
	int r;

	pthread_mutex_lock(&s->lock);
	r = qcow2_rc_writeback(s);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : fmt_file_flush(&s->f);
}

/* A clean close stores the bitmaps kept up to date in memory, writes the
 * deferred refcounts, flushes, then clears the dirty bit (lazy_refcounts). */
static void qcow2_close(struct fmt_image *img)
{
	struct qcow2 *s = qcow2_of(img);

	if (!s)
		return;
	if (s->track_on)
		qcow2_bitmap_track_end(s);
	if (s->writable && s->dirty_set && qcow2_rc_writeback(s) == 0 &&
	    fmt_file_flush(&s->f) == 0)
		qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, false);
	qcow2_free_state(s);
}

static int qcow2_info(struct fmt_image *img, json_t *d)
{
	struct qcow2 *s = qcow2_of(img);

	json_object_set_new(d, "compat", json_string(s->version >= 3 ? "1.1" : "0.10"));
	json_object_set_new(d, "compression-type",
			    json_string(s->compression ? "zstd" : "zlib"));
	if (s->version >= 3)
		json_object_set_new(d, "lazy-refcounts",
				    json_boolean(s->compat & QCOW2_COMPAT_LAZY));
	qcow2_bitmap_info(s, d);
	json_object_set_new(d, "refcount-bits", json_integer(s->refcount_bits));
	if (s->version >= 3) {
		json_object_set_new(d, "corrupt",
				    json_boolean(s->incompat & QCOW2_INCOMPAT_CORRUPT));
		json_object_set_new(d, "extended-l2", json_boolean(s->ext_l2));
	}
	return 0;
}

static bool qcow2_is_dirty(const struct fmt_image *img)
{
	return qcow2_of(img)->incompat & QCOW2_INCOMPAT_DIRTY;
}

static uint32_t qcow2_cluster_size(const struct fmt_image *img)
{
	return qcow2_of(img)->cluster_size;
}

static int64_t qcow2_allocated(const struct fmt_image *img)
{
	return fmt_file_allocated(&qcow2_of(img)->f);
}

const struct fmt_driver fmt_qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.read = qcow2_read,
	.write = qcow2_write,
	.compress = qcow2_compress_clusters,
	.write_compressed = qcow2_write_compressed,
	.write_zeroes = qcow2_write_zeroes,
	.discard = qcow2_discard,
	.flush = qcow2_flush,
	.block_status = qcow2_block_status,
	.truncate = qcow2_truncate,
	.create_opts = qcow2_create_opts,
	.create = qcow2_create,
	.check = qcow2_check,
	.amend = qcow2_amend,
	.set_backing = qcow2_set_backing,
	.make_empty = qcow2_make_empty,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.vmstate_rw = qcow2_vmstate_rw,
	.bitmap_list = qcow2_bitmap_list,
	.bitmap_read = qcow2_bitmap_read,
	.bitmap_add = qcow2_bitmap_add,
	.bitmap_change = qcow2_bitmap_change,
	.info = qcow2_info,
	.is_dirty = qcow2_is_dirty,
	.cluster_size = qcow2_cluster_size,
	.allocated = qcow2_allocated,
	.measure = qcow2_measure,
};
