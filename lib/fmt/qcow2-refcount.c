/*
 * qcow2 reference counts and cluster allocation (specification:
 * "Host cluster management").  Every host cluster has a refcount of
 * refcount_bits (1..64) in a refcount block; the refcount table lists
 * the blocks.  Refcount blocks and L2 tables are read through small
 * write-through caches.
 *
 * Ordering, so that a kill at any instant leaves at worst leaked
 * clusters: a cluster's refcount is written before anything points at it
 * (data, then refcounts, then L2, then L1 in the callers), and a table
 * that replaces another (refcount table growth) is fully written before
 * the header switches to it; the old one is freed last.  New refcount
 * blocks are placed so that they describe themselves when they can.
 * All functions here expect s->lock held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"

void qcow2_cache_init(struct qcow2_cache *c, int n)
{
	c->e = xzalloc(sizeof(*c->e) * (size_t)n);
	c->n = n;
	c->tick = 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
	int i;

	for (i = 0; c->e && i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
	c->e = NULL;
}

/* Forget a table (its bytes on disk changed).  Deferred refcount bytes
 * are kept: they are newer than the disk. */
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (c->e[i].data && c->e[i].off == off && !c->e[i].dhi)
			c->e[i].off = 0, c->e[i].used = 0;
}

static int cache_write_dirty(struct qcow2 *s, struct qcow2_cache_ent *v)
{
	int r;

	if (!v->dhi)
		return 0;
	r = fmt_file_pwrite(&s->f, v->data + v->dlo, v->dhi - v->dlo, v->off + v->dlo);
	if (r == 0)
		v->dlo = v->dhi = 0;
	return r;
}

int qcow2_rc_writeback(struct qcow2 *s)
{
	int i, r;

	for (i = 0; s->rbc.e && i < s->rbc.n; i++)
		if ((r = cache_write_dirty(s, &s->rbc.e[i])) < 0)
			return r;
	return 0;
}

/* The table at host offset `off` (fresh: a new zeroed table, not read). */
int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t off,
		    bool fresh, uint8_t **data)
{
	struct qcow2_cache_ent *v = NULL;
	int i, r;

	for (i = 0; i < c->n; i++) {
		if (c->e[i].data && c->e[i].off == off && c->e[i].used) {
			c->e[i].used = ++c->tick;
			if (fresh)
				memset(c->e[i].data, 0, s->cluster_size);
			*data = c->e[i].data;
			return 0;
		}
		if (!v || c->e[i].used < v->used)
			v = &c->e[i];
	}
	if ((r = cache_write_dirty(s, v)) < 0)
		return r;
	if (!v->data)
		v->data = xmalloc(s->cluster_size);
	if (!fresh && (off % s->cluster_size || off >= s->file_end ||
		       off < s->cluster_size)) {
		v->used = 0;
		return qcow2_corrupt(s, "table offset %#llx is invalid (past the "
				     "end of the file or overlapping the header)",
				     (unsigned long long)off);
	}
	if (fresh)
		memset(v->data, 0, s->cluster_size);
	else if ((r = fmt_file_pread(&s->f, v->data, s->cluster_size, off)) < 0) {
		v->used = 0;
		return r;
	}
	v->off = off;
	v->used = ++c->tick;
	*data = v->data;
	return 0;
}

uint64_t qcow2_rb_get(const struct qcow2 *s, const uint8_t *b, uint64_t i)
{
	uint32_t bits = s->refcount_bits;

	switch (bits) {
	case 1: case 2: case 4:
		return (b[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
	case 8: return b[i];
	case 16: return be16_get(b + 2 * i);
	case 32: return be32_get(b + 4 * i);
	default: return be64_get(b + 8 * i);
	}
}

void qcow2_rb_set(const struct qcow2 *s, uint8_t *b, uint64_t i, uint64_t v)
{
	uint32_t bits = s->refcount_bits;
	unsigned sh, mask;

	switch (bits) {
	case 1: case 2: case 4:
		sh = (unsigned)(i * bits % 8);
		mask = ((1u << bits) - 1) << sh;
		b[i * bits / 8] = (uint8_t)((b[i * bits / 8] & ~mask) | ((v << sh) & mask));
		break;
	case 8: b[i] = (uint8_t)v; break;
	case 16: be16_put(b + 2 * i, (uint16_t)v); break;
	case 32: be32_put(b + 4 * i, (uint32_t)v); break;
	default: be64_put(b + 8 * i, v); break;
	}
}

static uint64_t rc_max(const struct qcow2 *s)
{
	return s->refcount_bits == 64 ? UINT64_MAX : (1ull << s->refcount_bits) - 1;
}

int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *rc)
{
	uint64_t bi = cluster >> s->rb_bits, boff;
	uint8_t *b;
	int r;

	*rc = 0;
	if (bi >= s->rt_size || !(boff = s->rt[bi] & QCOW2_REFT_MASK))
		return 0;
	r = qcow2_cache_get(s, &s->rbc, boff, false, &b);
	if (r < 0)
		return r;
	*rc = qcow2_rb_get(s, b, cluster & ((1ull << s->rb_bits) - 1));
	return 0;
}

/* First run of n free clusters at or after s->free_hint. */
static int64_t rc_find_free(struct qcow2 *s, uint64_t n)
{
	uint64_t c = s->free_hint, run = 0, rc;
	int r;

	while (run < n) {
		if ((c >> s->rb_bits) >= s->rt_size) {
			c += n - run;             /* past the table: all free */
			break;
		}
		r = qcow2_refcount_get(s, c, &rc);
		if (r < 0)
			return r;
		run = rc ? 0 : run + 1;
		c++;
	}
	return (int64_t)(c - n);
}

static int rc_grow_table(struct qcow2 *s, uint64_t min_entries);

/* lazy_refcounts with the dirty bit set: refcount blocks may lag behind
 * (a kill leaves the dirty bit, and the next writable open rebuilds
 * them), so their writes are deferred to eviction, flush and close. */
static bool rc_lazy(const struct qcow2 *s)
{
	return (s->compat & QCOW2_COMPAT_LAZY) && s->dirty_set && s->writable;
}

/* Write entries [first, last] of a refcount block to disk (or, lazily,
 * note them as dirty in the cache entry holding b). */
static int rc_write_entries(struct qcow2 *s, uint64_t boff, const uint8_t *b,
			    uint64_t first, uint64_t last)
{
	uint64_t from = first * s->refcount_bits / 8;
	uint64_t to = ((last + 1) * s->refcount_bits + 7) / 8;
	int i;

	for (i = 0; rc_lazy(s) && i < s->rbc.n; i++) {
		struct qcow2_cache_ent *v = &s->rbc.e[i];

		if (v->data != b || v->off != boff)
			continue;
		v->dlo = v->dhi ? MIN(v->dlo, (uint32_t)from) : (uint32_t)from;
		v->dhi = MAX(v->dhi, (uint32_t)to);
		return 0;
	}
	return fmt_file_pwrite(&s->f, b + from, to - from, boff + from);
}

/* Create refcount block `bi` (absent in the table).  It is placed at the
 * first free cluster; when that cluster is one it covers, it counts
 * itself. */
static int rc_new_block(struct qcow2 *s, uint64_t bi, uint64_t *boff)
{
	uint8_t rtent[8], *b;
	int64_t c;
	int r;

	if (bi >= s->rt_size && (r = rc_grow_table(s, bi + 1)) < 0)
		return r;
	if (s->rt[bi])                      /* the growth made it */
		return (*boff = s->rt[bi] & QCOW2_REFT_MASK), 0;
	if ((c = rc_find_free(s, 1)) < 0)
		return (int)c;
	s->free_hint = (uint64_t)c + 1;
	*boff = (uint64_t)c << s->cluster_bits;
	if ((r = qcow2_cache_get(s, &s->rbc, *boff, true, &b)) < 0)
		return r;
	if (((uint64_t)c >> s->rb_bits) == bi)
		qcow2_rb_set(s, b, (uint64_t)c & ((1ull << s->rb_bits) - 1), 1);
	if ((r = fmt_file_pwrite(&s->f, b, s->cluster_size, *boff)) < 0)
		return r;
	s->file_end = MAX(s->file_end, *boff + s->cluster_size);
	if (((uint64_t)c >> s->rb_bits) != bi &&
	    (r = qcow2_refcount_add(s, (uint64_t)c, 1, 1)) < 0)
		return r;
	be64_put(rtent, *boff);
	if ((r = fmt_file_pwrite(&s->f, rtent, 8, s->rt_offset + bi * 8)) < 0)
		return r;
	s->rt[bi] = *boff;
	return 0;
}

/* Add delta (or cnt[i] when cnt is given) to the refcounts of clusters
 * [cluster, cluster + n), one write per refcount block touched. */
static int rc_add(struct qcow2 *s, uint64_t cluster, uint64_t n, int64_t delta,
		  const uint32_t *cnt)
{
	uint64_t per = 1ull << s->rb_bits, start = cluster, end = cluster + n;

	while (cluster < end) {
		uint64_t bi = cluster >> s->rb_bits, first = cluster & (per - 1);
		uint64_t last = MIN(per - 1, first + (end - cluster) - 1), i, boff;
		uint8_t *b;
		int r;

		boff = bi < s->rt_size ? s->rt[bi] & QCOW2_REFT_MASK : 0;
		if (!boff && delta < 0)
			return qcow2_corrupt(s, "freeing cluster %llu with no refcount",
					     (unsigned long long)cluster);
		if (!boff && (r = rc_new_block(s, bi, &boff)) < 0)
			return r;
		if ((r = qcow2_cache_get(s, &s->rbc, boff, false, &b)) < 0)
			return r;
		for (i = first; i <= last; i++) {
			uint64_t v = qcow2_rb_get(s, b, i), c = bi * per + i;
			int64_t d = cnt ? (int64_t)cnt[c - start] : delta;

			if ((d < 0 && v < (uint64_t)-d) ||
			    (d > 0 && rc_max(s) - v < (uint64_t)d)) {
				qcow2_cache_drop(&s->rbc, boff);
				return d < 0 ? qcow2_corrupt(s, "refcount of cluster "
					"%llu would drop below zero",
					(unsigned long long)c) :
					err_set(-ERANGE, "refcount overflow");
			}
			qcow2_rb_set(s, b, i, v + (uint64_t)d);
			if (v + (uint64_t)d == 0 && d) {
				if (c < s->free_hint)
					s->free_hint = c;
				if (s->cbyte && (s->cbyte >> s->cluster_bits) == c)
					s->cbyte = 0;   /* no more packing there */
			}
		}
		if ((r = rc_write_entries(s, boff, b, first, last)) < 0)
			return r;
		cluster += last - first + 1;
	}
	return 0;
}

int qcow2_refcount_add(struct qcow2 *s, uint64_t cluster, uint64_t n, int64_t delta)
{
	return rc_add(s, cluster, n, delta, NULL);
}

int qcow2_refcount_add_counts(struct qcow2 *s, uint64_t first, uint64_t n,
			      const uint32_t *cnt)
{
	return rc_add(s, first, n, 0, cnt);
}

int64_t qcow2_find_free(struct qcow2 *s, uint64_t n)
{
	return rc_find_free(s, n);
}

int qcow2_refcount_add_bytes(struct qcow2 *s, uint64_t off, uint64_t len,
			     int64_t delta)
{
	uint64_t first = off >> s->cluster_bits;
	uint64_t last = (off + len - 1) >> s->cluster_bits;

	return qcow2_refcount_add(s, first, last - first + 1, delta);
}

int64_t qcow2_alloc(struct qcow2 *s, uint64_t n)
{
	int64_t c = rc_find_free(s, n);
	int r;

	if (c < 0)
		return c;
	s->free_hint = (uint64_t)c + n;
	r = qcow2_refcount_add(s, (uint64_t)c, n, 1);
	if (r < 0)
		return r;
	if (s->free_hint == (uint64_t)c + n)
		s->free_hint = (uint64_t)c + n;
	s->file_end = MAX(s->file_end, ((uint64_t)c + n) << s->cluster_bits);
	return (int64_t)((uint64_t)c << s->cluster_bits);
}

int qcow2_free(struct qcow2 *s, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	return qcow2_refcount_add_bytes(s, off, len, -1);
}

/* Grow the refcount table to at least min_entries: the new table and any
 * refcount blocks describing it go past everything allocated; they are
 * written first, then the header switches, then the old table is freed. */
static int rc_grow_table(struct qcow2 *s, uint64_t min_entries)
{
	uint64_t per = 1ull << s->rb_bits, cs = s->cluster_size;
	uint64_t start = MAX(s->free_hint, DIV_ROUND_UP(s->file_end, cs));
	uint64_t entries = MAX(min_entries, s->rt_size * 2), m, k = 0, i, j;
	uint64_t *nt, old_off = s->rt_offset, old_cl = s->rt_clusters;
	uint8_t hdr[12], *buf;
	int r = 0;

	for (;;) {
		uint64_t need = 0;

		m = DIV_ROUND_UP(entries * 8, cs);
		entries = m * cs / 8;
		for (i = start >> s->rb_bits; i <= (start + m + k - 1) >> s->rb_bits; i++)
			if (i >= s->rt_size || !s->rt[i])
				need++;
		if (need == k && ((start + m + k - 1) >> s->rb_bits) < entries)
			break;
		if (need != k)
			k = need;
		else
			entries *= 2;
	}
	nt = xzalloc(entries * 8);
	memcpy(nt, s->rt, s->rt_size * 8);
	buf = xzalloc(cs);
	for (j = 0, i = start >> s->rb_bits; r == 0 && i <= (start + m + k - 1) >> s->rb_bits; i++) {
		uint64_t c;

		if (i < s->rt_size && s->rt[i])
			continue;
		nt[i] = (start + m + j++) * cs;
		memset(buf, 0, cs);
		for (c = MAX(start, i * per); c < MIN(start + m + k, (i + 1) * per); c++)
			qcow2_rb_set(s, buf, c - i * per, 1);
		r = fmt_file_pwrite(&s->f, buf, cs, nt[i]);
	}
	for (i = start; r == 0 && i < start + m + k; i++)   /* covered by old blocks */
		if ((i >> s->rb_bits) < s->rt_size && s->rt[i >> s->rb_bits])
			r = qcow2_refcount_add(s, i, 1, 1);
	free(buf);
	buf = xzalloc(m * cs);
	for (i = 0; i < entries; i++)
		be64_put(buf + i * 8, nt[i]);
	if (r == 0)
		r = fmt_file_pwrite(&s->f, buf, m * cs, start * cs);
	free(buf);
	if (r == 0) {
		r = fmt_file_flush(&s->f);
		be64_put(hdr, start * cs);
		be32_put(hdr + 8, (uint32_t)m);
		if (r == 0)
			r = fmt_file_pwrite(&s->f, hdr, 12, 48);
	}
	if (r < 0) {
		free(nt);
		return r;
	}
	free(s->rt);
	s->rt = nt;
	s->rt_size = entries;
	s->rt_offset = start * cs;
	s->rt_clusters = (uint32_t)m;
	s->file_end = MAX(s->file_end, (start + m + k) * cs);
	s->free_hint = MAX(s->free_hint, start + m + k);
	return qcow2_refcount_add(s, old_off / cs, old_cl, -1);
}

/* Replace the active L1 table by a bigger one (for resize and VM state). */
int qcow2_l1_grow(struct qcow2 *s, uint64_t min_size)
{
	uint64_t n = MAX(min_size, (uint64_t)s->l1_size * 3 / 2), i;
	uint64_t bytes, old_off = s->l1_offset, old_bytes = (uint64_t)s->l1_size * 8;
	uint8_t *t, hdr[12];
	int64_t off;
	int r;

	if (min_size <= s->l1_size)
		return 0;
	bytes = ALIGN_UP(n * 8, s->cluster_size);
	n = MIN(bytes / 8, QCOW2_MAX_L1_BYTES / 8);
	if (n < min_size)
		return err_set(-EFBIG, "L1 table would be too large");
	if ((off = qcow2_alloc(s, bytes >> s->cluster_bits)) < 0)
		return (int)off;
	t = xzalloc(bytes);
	for (i = 0; i < s->l1_size; i++)
		be64_put(t + i * 8, s->l1[i]);
	r = fmt_file_pwrite(&s->f, t, bytes, (uint64_t)off);
	free(t);
	if (r == 0)
		r = fmt_file_flush(&s->f);
	be32_put(hdr, (uint32_t)n);
	be64_put(hdr + 4, (uint64_t)off);
	if (r == 0)
		r = fmt_file_pwrite(&s->f, hdr, 12, 36);
	if (r < 0)
		return r;
	s->l1 = xrealloc(s->l1, n * 8 + 8);
	memset(s->l1 + s->l1_size, 0, (n - s->l1_size) * 8);
	s->l1_size = (uint32_t)n;
	s->l1_offset = (uint64_t)off;
	if (old_bytes)
		return qcow2_free(s, old_off, ALIGN_UP(old_bytes, s->cluster_size));
	return 0;
}

/* Write a new refcount table and blocks (of 2^new_order bits) holding
 * refs[0..n) past cluster n, describing themselves too, then switch the
 * header to them.  The old structures are left unreferenced (free). */
int qcow2_rebuild_refcounts(struct qcow2 *s, uint64_t *refs, uint64_t n,
			    uint32_t new_order)
{
	uint32_t old_order = s->refcount_order;
	uint64_t cs = s->cluster_size, per, m = 1, k = 0, i, total, entries;
	uint8_t *blk;
	int r = 0;

	s->refcount_order = new_order;
	s->refcount_bits = 1u << new_order;
	s->rb_bits = s->cluster_bits + 3 - new_order;
	per = 1ull << s->rb_bits;
	for (;;) {
		total = n + m + k;
		uint64_t nk = DIV_ROUND_UP(total, per);
		uint64_t nm = DIV_ROUND_UP(nk * 8, cs);

		if (nk == k && nm == m)
			break;
		k = nk;
		m = nm;
	}
	entries = m * cs / 8;
	refs = xrealloc(refs, total * sizeof(*refs));
	for (i = n; i < total; i++)
		refs[i] = 1;
	for (i = 0; i < total; i++)
		if (refs[i] > rc_max(s)) {
			r = err_set(-ERANGE, "refcount %llu of cluster %llu does not "
				    "fit in %u bits", (unsigned long long)refs[i],
				    (unsigned long long)i, s->refcount_bits);
			goto fail;
		}
	blk = xzalloc(MAX(cs, entries * 8));
	for (i = 0; r == 0 && i < k; i++) {
		uint64_t c;

		memset(blk, 0, cs);
		for (c = i * per; c < MIN(total, (i + 1) * per); c++)
			qcow2_rb_set(s, blk, c - i * per, refs[c]);
		r = fmt_file_pwrite(&s->f, blk, cs, (n + m + i) * cs);
	}
	if (r == 0) {
		memset(blk, 0, entries * 8);
		for (i = 0; i < k; i++)
			be64_put(blk + i * 8, (n + m + i) * cs);
		r = fmt_file_pwrite(&s->f, blk, m * cs, n * cs);
	}
	free(s->rt);
	s->rt = xzalloc(entries * 8);
	for (i = 0; i < k; i++)
		s->rt[i] = (n + m + i) * cs;
	free(blk);
	s->rt_size = entries;
	s->rt_offset = n * cs;
	s->rt_clusters = (uint32_t)m;
	s->file_end = MAX(s->file_end, total * cs);
	qcow2_cache_free(&s->rbc);
	qcow2_cache_init(&s->rbc, s->l2c.n);
	s->free_hint = 0;
	if (r == 0 && (r = fmt_file_flush(&s->f)) == 0)
		r = qcow2_header_write(s);
	free(refs);
	return r;
fail:
	s->refcount_order = old_order;
	s->refcount_bits = 1u << old_order;
	s->rb_bits = s->cluster_bits + 3 - old_order;
	free(refs);
	return r;
}
