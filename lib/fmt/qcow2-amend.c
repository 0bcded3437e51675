/*
 * qcow2 option amendment (qemu-img amend): compat 0.10 <-> 1.1 (a
 * downgrade first turns zero clusters into allocated or unallocated
 * ones), lazy_refcounts, refcount_bits (a whole new refcount structure of
 * the new width), backing file and format, and size.  Options that would
 * need the image rewritten (cluster size, extended L2, compression type)
 * are refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"

/* Replace zero clusters in one L1 tree by plain clusters (for compat=0.10). */
static int expand_zero(struct fmt_image *img, const uint64_t *l1, uint32_t n)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size, i, j, e, l2off;
	uint8_t *t = xmalloc(cs), *z = xzalloc(cs);
	int64_t h;
	int r = 0;

	for (i = 0; i < n && r == 0; i++) {
		if (!(l2off = l1[i] & QCOW2_OFFSET_MASK))
			continue;
		if ((r = fmt_file_pread(&s->f, t, cs, l2off)) < 0)
			break;
		for (j = 0; j < (1ull << s->l2_bits) && r == 0; j++) {
			e = be64_get(t + j * 8);
			if ((e & QCOW2_OFLAG_COMPRESSED) || !(e & QCOW2_OFLAG_ZERO))
				continue;
			if (qcow2_l2_host(e))
				r = fmt_file_pwrite(&s->f, z, cs, qcow2_l2_host(e));
			else if (!img->backing_name)
				e = 0;
			else if ((h = qcow2_alloc(s, 1)) < 0)
				r = (int)h;
			else {
				r = fmt_file_pwrite(&s->f, z, cs, (uint64_t)h);
				e = (uint64_t)h | QCOW2_OFLAG_COPIED;
			}
			be64_put(t + j * 8, e & ~QCOW2_OFLAG_ZERO);
		}
		if (r == 0)
			r = fmt_file_pwrite(&s->f, t, cs, l2off);
		qcow2_cache_drop(&s->l2c, l2off);
	}
	free(t);
	free(z);
	return r;
}

static int downgrade(struct fmt_image *img)
{
	struct qcow2 *s = qcow2_of(img);
	uint32_t i;
	int r;

	if (s->refcount_order != 4)
		return err_set(-ENOTSUP, "compat=0.10 requires refcount_bits=16");
	if (s->ext_l2 || s->compression)
		return err_set(-ENOTSUP, "compat=0.10 does not support extended L2 "
			       "entries or compression types other than zlib");
	if (s->compat & QCOW2_COMPAT_LAZY)
		return err_set(-EINVAL, "Lazy refcounts only supported with "
			       "compatibility level 1.1 and above (use compat=1.1 "
			       "or greater)");
	pthread_mutex_lock(&s->lock);
	r = expand_zero(img, s->l1, s->l1_size);
	for (i = 0; i < s->n_snaps && r == 0; i++) {
		uint64_t *l1 = xzalloc((uint64_t)s->snaps[i].l1_size * 8 + 8), j;

		r = fmt_file_pread(&s->f, l1, (uint64_t)s->snaps[i].l1_size * 8,
				   s->snaps[i].l1_offset);
		for (j = 0; j < s->snaps[i].l1_size; j++)
			l1[j] = be64_get(&l1[j]);
		if (r == 0)
			r = expand_zero(img, l1, s->snaps[i].l1_size);
		free(l1);
	}
	pthread_mutex_unlock(&s->lock);
	if (r == 0) {
		s->version = 2;
		s->incompat = s->compat = s->autoclear = 0;
		r = qcow2_header_write(s);
	}
	return r;
}

static int amend_refcount_bits(struct qcow2 *s, uint64_t bits)
{
	if (bits == 0 || bits > 64 || (bits & (bits - 1)))
		return err_set(-EINVAL, "Refcount width must be a power of two and "
			       "may not exceed 64 bits");
	if (bits != 16 && s->version < 3)
		return err_set(-EINVAL, "Different refcount widths than 16 bits "
			       "require compatibility level 1.1 or above (use "
			       "compat=1.1 or greater)");
	if (bits == s->refcount_bits)
		return 0;
	return qcow2_change_refcount_order(s, (uint32_t)__builtin_ctzll(bits));
}

static int amend_fixed(struct qcow2 *s, const struct kvlist *o)
{
	const char *v;
	uint64_t cs;
	bool b;

	if ((v = kv_get(o, "cluster_size")) &&
	    (size_parse(v, 0, &cs) < 0 || cs != s->cluster_size))
		return err_set(-ENOTSUP, "Changing the cluster size is not supported");
	if ((v = kv_get(o, "compression_type")) &&
	    strcmp(v, s->compression ? "zstd" : "zlib"))
		return err_set(-ENOTSUP, "Changing the compression type is not "
			       "supported");
	if ((v = kv_get(o, "extended_l2")) && (parse_bool(v, &b) < 0 || b != s->ext_l2))
		return err_set(-ENOTSUP, "Changing extended_l2 is not supported");
	if (kv_get(o, "preallocation") || kv_get(o, "encrypt.format") ||
	    kv_get(o, "data_file"))
		return err_set(-ENOTSUP, "Changing preallocation, encryption or the "
			       "data file is not supported");
	return 0;
}

int qcow2_amend(struct fmt_image *img, const struct kvlist *o, bool force)
{
	struct qcow2 *s = qcow2_of(img);
	uint32_t version = s->version;
	const char *v;
	uint64_t rb, size;
	bool lazy;
	int r;

	if ((r = amend_fixed(s, o)) < 0)
		return r;
	if ((v = kv_get(o, "compat"))) {
		if (!strcmp(v, "0.10") || !strcmp(v, "v2"))
			version = 2;
		else if (!strcmp(v, "1.1") || !strcmp(v, "v3"))
			version = 3;
		else
			return err_set(-EINVAL, "Invalid compatibility level: '%s'", v);
	}
	if (version == 3 && s->version == 2) {
		s->version = 3;
		s->refcount_order = 4;
		if ((r = qcow2_header_write(s)) < 0)
			return r;
	}
	if ((v = kv_get(o, "lazy_refcounts"))) {
		if ((r = parse_bool(v, &lazy)) < 0)
			return r;
		if (lazy && version < 3)
			return err_set(-EINVAL, "Lazy refcounts only supported with "
				       "compatibility level 1.1 and above (use "
				       "compat=1.1 or greater)");
		s->compat = lazy ? s->compat | QCOW2_COMPAT_LAZY
				 : s->compat & ~QCOW2_COMPAT_LAZY;
		if ((r = qcow2_header_write(s)) < 0)
			return r;
	}
	if ((v = kv_get(o, "refcount_bits"))) {
		if ((r = parse_u64(v, 1, 64, &rb)) < 0 ||
		    (r = amend_refcount_bits(s, rb)) < 0)
			return r;
	}
	if ((v = kv_get(o, "backing_file")) || kv_get(o, "backing_fmt")) {
		r = qcow2_set_backing(img, v ? v : img->backing_name,
				      kv_get(o, "backing_fmt") ? kv_get(o, "backing_fmt")
							       : img->backing_fmt);
		if (r < 0)
			return r;
	}
	if ((v = kv_get(o, "size"))) {
		if ((r = size_parse(v, 0, &size)) < 0)
			return r;
		if (size != img->size &&
		    (r = qcow2_truncate(img, size, FMT_PREALLOC_OFF, true)) < 0)
			return r;
	}
	if (version == 2 && s->version == 3)
		return downgrade(img);
	return 0;
}
