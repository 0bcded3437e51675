/*
 * qcow2 compressed-cluster writes (specification: "Compressed Clusters
 * Descriptor", "Host cluster management"): storing a batch that
 * qcow2_compress_clusters (qcow2-compress.c) made on some thread.
 *
 * Essay.  Compressed clusters are packed back to back, as qemu-img packs
 * them: one may begin in the middle of a host cluster and run on into the
 * next, since its descriptor holds a byte offset and a count of 512-byte
 * sectors.  The refcount of a host cluster is the number of compressed
 * clusters with bytes in it; when that would pass what refcount_bits can
 * hold, packing moves on to the next host cluster.  s->cbyte remembers
 * where the previous batch stopped inside a host cluster; a batch goes
 * on from there when the host clusters after it are free, otherwise it
 * starts at a fresh run of free clusters.
 *
 * A whole batch is stored under the lock with a handful of writes, in the
 * order that keeps a kill harmless (at worst leaked clusters): the L2
 * tables exist first, then the refcounts of every host cluster the batch
 * uses (one write per refcount block), then all the compressed bytes in
 * one write, then the L2 entries (one write per L2 table), and last the
 * clusters the entries pointed to before are released.  Clusters that do
 * not shrink are stored as ordinary clusters through qcow2_write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"

/* Where the compressed clusters of one batch go. */
struct cw_plan {
	uint64_t *host;     /* per cluster of the batch: host byte offset */
	uint32_t *cnt;      /* per host cluster from first_cl: refs added */
	size_t cnt_cap;
	uint64_t base;      /* first host byte written */
	uint64_t base_rc;   /* refs the host cluster of base already has */
	uint64_t first_cl;  /* host cluster of base */
	uint64_t end;       /* one past the last byte */
	uint64_t ncl;       /* host clusters touched, from first_cl */
};

static bool cw_packed(const struct fmt_cdata *cd, size_t i)
{
	return cd->len[i] && cd->len[i] < cd->cluster_size;
}

/* Lay the batch out from p->base; fills host, cnt, end, ncl. */
static void cw_layout(struct qcow2 *s, const struct fmt_cdata *cd,
		      struct cw_plan *p)
{
	uint64_t cs = s->cluster_size, pos = p->base, j;
	uint64_t max = s->refcount_bits == 64 ? UINT64_MAX :
		       (1ull << s->refcount_bits) - 1;
	size_t i;

	p->first_cl = p->base >> s->cluster_bits;
	memset(p->cnt, 0, p->cnt_cap * sizeof(*p->cnt));
	for (i = 0; i < cd->n; i++) {
		uint64_t c, len = cd->len[i];

		if (!cw_packed(cd, i))
			continue;
		c = (pos >> s->cluster_bits) - p->first_cl;
		if (pos % cs && p->cnt[c] + (c ? 0 : p->base_rc) >= max)
			pos = ALIGN_UP(pos, cs);
		p->host[i] = pos;
		for (j = pos >> s->cluster_bits; j <= (pos + len - 1) >> s->cluster_bits; j++)
			p->cnt[j - p->first_cl]++;
		pos += len;
	}
	p->end = pos;
	p->ncl = pos > p->base ? DIV_ROUND_UP(pos, cs) - p->first_cl : 0;
}

/* Choose where the batch goes: after s->cbyte when the clusters there are
 * free, else at a fresh run. */
static int cw_place(struct qcow2 *s, const struct fmt_cdata *cd, struct cw_plan *p)
{
	uint64_t i, rc;
	int64_t c;
	int r;

	if (s->cbyte) {
		p->base = s->cbyte;
		if ((r = qcow2_refcount_get(s, s->cbyte >> s->cluster_bits, &rc)) < 0)
			return r;
		p->base_rc = rc;
		cw_layout(s, cd, p);
		for (i = 1; i < p->ncl; i++) {
			if ((r = qcow2_refcount_get(s, p->first_cl + i, &rc)) < 0)
				return r;
			if (rc)
				break;
		}
		if (i >= p->ncl)
			return 0;
	}
	p->base = 0;
	p->base_rc = 0;
	cw_layout(s, cd, p);
	if (!p->ncl)
		return 0;
	if ((c = qcow2_find_free(s, p->ncl)) < 0)
		return (int)c;
	p->base = (uint64_t)c << s->cluster_bits;
	cw_layout(s, cd, p);
	return 0;
}

/* Refcounts, then the bytes, of the planned host range. */
static int cw_store(struct qcow2 *s, const struct fmt_cdata *cd,
		    const struct cw_plan *p)
{
	uint64_t last = p->first_cl + p->ncl - 1, src = 0;
	uint8_t *out;
	size_t i;
	int r;

	s->free_hint = MAX(s->free_hint, last + 1);
	s->file_end = MAX(s->file_end, (last + 1) << s->cluster_bits);
	if ((r = qcow2_refcount_add_counts(s, p->first_cl, p->ncl, p->cnt)) < 0)
		return r;
	out = xzalloc(p->end - p->base);
	for (i = 0; i < cd->n; src += cd->len[i], i++)
		if (cw_packed(cd, i))
			memcpy(out + (p->host[i] - p->base), cd->buf + src, cd->len[i]);
	r = fmt_file_pwrite(&s->f, out, p->end - p->base, p->base);
	free(out);
	return r;
}

/* Point the L2 entries at the packed clusters, one write per L2 table. */
static int cw_map(struct qcow2 *s, const struct fmt_cdata *cd,
		  const struct cw_plan *p)
{
	uint64_t cs = s->cluster_size, per = 1ull << s->l2_bits;
	size_t i = 0;
	int r;

	while (i < cd->n) {
		uint64_t vaddr = cd->off + i * cs, idx = qcow2_l2_index(s, vaddr);
		uint64_t lo = per, hi = 0;
		uint8_t *t;

		if ((r = qcow2_l2_table(s, vaddr, true, &t)) < 0)
			return r;
		for (; i < cd->n && idx < per; i++, idx++) {
			uint64_t h = p->host[i], nsec, ent;

			if (!cw_packed(cd, i))
				continue;
			nsec = ((h + cd->len[i] - 1) >> 9) - (h >> 9);
			ent = QCOW2_OFLAG_COMPRESSED | (nsec << s->csize_shift) | h;
			be64_put(t + idx * s->l2_entry_size, ent);
			if (s->ext_l2)
				be64_put(t + idx * 16 + 8, 0);
			lo = MIN(lo, idx);
			hi = idx + 1;
		}
		if (hi && (r = qcow2_write_l2_range(s, vaddr, t, lo, hi - lo)) < 0)
			return r;
	}
	return 0;
}

/* Runs of clusters stored plainly go through the ordinary write path. */
static int cw_plain(struct fmt_image *img, const struct fmt_cdata *cd)
{
	uint64_t cs = cd->cluster_size, src = 0;
	size_t i = 0, j;
	int r;

	while (i < cd->n) {
		uint64_t start = src, pos = cd->off + i * cs, len;

		if (cd->len[i] != cs) {
			src += cd->len[i++];
			continue;
		}
		for (j = i; j < cd->n && cd->len[j] == cs; j++)
			src += cs;
		len = MIN((j - i) * cs, img->size - pos);
		if ((r = qcow2_write(img, cd->buf + start, pos, (size_t)len, 0)) < 0)
			return r;
		i = j;
	}
	return 0;
}

/* The batch's part under the lock: tables, placement, store, map, free. */
static int cw_commit_locked(struct qcow2 *s, const struct fmt_cdata *cd,
			    struct cw_plan *p, uint64_t *old)
{
	uint64_t cs = s->cluster_size, span = 1ull << (s->cluster_bits + s->l2_bits);
	uint64_t v, bm;
	uint8_t *t;
	size_t i;
	int r;

	if ((r = qcow2_before_write(s, cd->off, cd->n * cs)) < 0)
		return r;
	for (v = ALIGN_DOWN(cd->off, span); v < cd->off + cd->n * cs; v += span)
		if ((r = qcow2_l2_table(s, v, true, &t)) < 0)
			return r;
	for (i = 0; i < cd->n; i++)
		if (cw_packed(cd, i) &&
		    (r = qcow2_l2_entry(s, cd->off + i * cs, &old[i], &bm)) < 0)
			return r;
	if ((r = cw_place(s, cd, p)) < 0 || !p->ncl)
		return r;
	if ((r = cw_store(s, cd, p)) < 0 || (r = cw_map(s, cd, p)) < 0)
		return r;
	s->cbyte = p->end % cs ? p->end : 0;
	for (i = 0; i < cd->n; i++)
		if (cw_packed(cd, i) && old[i] && (r = qcow2_free_entry(s, old[i])) < 0)
			return r;
	return 0;
}

int qcow2_write_compressed(struct fmt_image *img, const struct fmt_cdata *cd)
{
	struct qcow2 *s = qcow2_of(img);
	struct cw_plan p = { 0 };
	uint64_t bytes = 0, *old;
	size_t i;
	int r;

	if (cd->cluster_size != s->cluster_size || cd->off % s->cluster_size)
		return err_set(-EINVAL, "Compressed writes must be cluster aligned");
	if ((r = cw_plain(img, cd)) < 0)
		return r;
	for (i = 0; i < cd->n; i++)
		bytes += cw_packed(cd, i) ? cd->len[i] : 0;
	if (!bytes)
		return 0;
	p.host = xzalloc(cd->n * sizeof(*p.host));
	p.cnt_cap = 2 * cd->n + bytes / s->cluster_size + 2;
	p.cnt = xzalloc(p.cnt_cap * sizeof(*p.cnt));
	old = xzalloc(cd->n * sizeof(*old));
	pthread_mutex_lock(&s->lock);
	r = cw_commit_locked(s, cd, &p, old);
	pthread_mutex_unlock(&s->lock);
	free(old);
	free(p.host);
	free(p.cnt);
	return r;
}
