/*
 * qcow2 consistency check and repair (what `qemu-img check` does): count
 * every reference to every host cluster (header, L1 tables of the active
 * state and of each snapshot, L2 tables, data and compressed clusters,
 * the snapshot table, the refcount table and blocks) and compare with the
 * stored refcounts.  More stored than referenced is a leak; fewer is an
 * error.  Leaks are repaired in place; errors, or refcount structures that
 * are themselves broken, by writing a whole new refcount structure past
 * the end of the image.  COPIED flags of the active tables are checked
 * against the refcounts last, as QEMU does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"

struct chk {
	struct qcow2 *s;
	struct fmt_check *c;
	uint64_t *refs;         /* references to each cluster */
	uint64_t *rs;           /* references from refcount structures */
	uint64_t n;             /* clusters in the file */
	bool rc_broken;         /* refcount table/blocks unusable */
	unsigned fix;           /* enum fmt_fix */
	int walk_fixed;         /* corruptions repaired during the walk */
	uint64_t next_contig;
};

static void chk_msg(struct chk *k, const char *fmt, ...) PRINTF(2, 3);
static void chk_msg(struct chk *k, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (k->c->message)
		k->c->message(k->c->opaque, line);
}

/* Count references to [off, off+len); false (and an error) if outside. */
static bool chk_ref(struct chk *k, uint64_t off, uint64_t len, uint64_t *arr)
{
	uint64_t first = off >> k->s->cluster_bits, last, i;

	if (!len)
		return true;
	last = (off + len - 1) >> k->s->cluster_bits;
	if (last >= k->n) {
		chk_msg(k, "ERROR: Cluster at offset %#llx is past the end of the "
			"image file", (unsigned long long)off);
		k->c->corruptions++;
		return false;
	}
	for (i = first; i <= last; i++)
		arr[i]++;
	return true;
}

/* -r all: an L2 entry pointing past the end of the file cannot be read;
 * make it read as zeros (version 3, or unallocated in version 2). */
static void chk_drop_entry(struct chk *k, uint64_t l2off, uint64_t i)
{
	struct qcow2 *s = k->s;
	uint8_t ent[16];

	if (!(k->fix & FMT_FIX_ERRORS))
		return;
	be64_put(ent, s->version >= 3 && !s->ext_l2 ? QCOW2_OFLAG_ZERO : 0);
	be64_put(ent + 8, s->version >= 3 ? (uint64_t)L2_SC_ALL << 32 : 0);
	if (fmt_file_pwrite(&s->f, ent, s->l2_entry_size,
			    l2off + i * s->l2_entry_size) < 0) {
		k->c->check_errors++;
		return;
	}
	qcow2_cache_drop(&s->l2c, l2off);
	chk_msg(k, "Repairing L2 entry %llu of the L2 table at %#llx: cluster past "
		"the end of the file now reads as zeros", (unsigned long long)i,
		(unsigned long long)l2off);
	k->c->corruptions_fixed++;
	k->walk_fixed++;
}

static void chk_l2(struct chk *k, uint64_t l2off, bool active)
{
	struct qcow2 *s = k->s;
	uint64_t n = 1ull << s->l2_bits, i, e, off, len, cs = s->cluster_size;
	uint8_t *t = xmalloc(cs);

	if (fmt_file_pread(&s->f, t, cs, l2off) < 0) {
		k->c->check_errors++;
		free(t);
		return;
	}
	for (i = 0; i < n; i++) {
		e = be64_get(t + i * s->l2_entry_size);
		if (e & QCOW2_OFLAG_COMPRESSED) {
			off = e & ((1ull << s->csize_shift) - 1);
			len = (((e >> s->csize_shift) & s->csize_mask) + 1) * 512 - (off & 511);
			if (!chk_ref(k, off, len, k->refs)) {
				chk_drop_entry(k, l2off, i);
				continue;
			}
			if (active) {
				k->c->allocated_clusters++;
				k->c->compressed_clusters++;
				k->c->fragmented_clusters++;
			}
			continue;
		}
		off = qcow2_l2_host(e);
		if (!off)
			continue;
		if (off % cs) {
			chk_msg(k, "ERROR offset=%llx: Cluster is not properly aligned; "
				"L2 entry corrupted", (unsigned long long)off);
			k->c->corruptions++;
			continue;
		}
		if (!chk_ref(k, off, cs, k->refs)) {
			chk_drop_entry(k, l2off, i);
			continue;
		}
		if (active) {
			k->c->allocated_clusters++;
			if (k->next_contig && off != k->next_contig)
				k->c->fragmented_clusters++;
			k->next_contig = off + cs;
		}
	}
	free(t);
}

static void chk_l1(struct chk *k, uint64_t l1off, uint32_t l1_size, bool active)
{
	struct qcow2 *s = k->s;
	uint64_t *l1, i, l2off;

	if (!chk_ref(k, l1off, (uint64_t)l1_size * 8, k->refs))
		return;
	l1 = xzalloc((uint64_t)l1_size * 8 + 8);
	if (l1_size && fmt_file_pread(&s->f, l1, (uint64_t)l1_size * 8, l1off) < 0) {
		k->c->check_errors++;
		free(l1);
		return;
	}
	for (i = 0; i < l1_size; i++) {
		l2off = be64_get(&l1[i]) & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		if (l2off % s->cluster_size) {
			chk_msg(k, "ERROR l2_offset=%llx: Table is not cluster aligned; "
				"L1 entry corrupted", (unsigned long long)l2off);
			k->c->corruptions++;
			continue;
		}
		if (chk_ref(k, l2off, s->cluster_size, k->refs))
			chk_l2(k, l2off, active);
	}
	free(l1);
}

static void chk_refcount_structs(struct chk *k)
{
	struct qcow2 *s = k->s;
	uint64_t i, b;

	if (!chk_ref(k, s->rt_offset, (uint64_t)s->rt_clusters << s->cluster_bits, k->rs))
		k->rc_broken = true;
	for (i = 0; i < s->rt_size; i++) {
		b = s->rt[i] & QCOW2_REFT_MASK;
		if (!b)
			continue;
		if (b % s->cluster_size) {
			chk_msg(k, "ERROR refcount block %llu is not cluster aligned; "
				"refcount table entry corrupted", (unsigned long long)i);
			k->c->corruptions++;
			k->rc_broken = true;
		} else if ((b >> s->cluster_bits) >= k->n) {
			chk_msg(k, "ERROR refcount block %llu is outside image",
				(unsigned long long)i);
			k->c->corruptions++;
			k->rc_broken = true;
		} else
			k->rs[b >> s->cluster_bits]++;
	}
}

/* The bitmaps' directory, tables and data clusters are references too. */
static void chk_bitmaps(struct chk *k)
{
	uint64_t (*g)[2];
	size_t n, i;

	if (qcow2_bitmap_ranges(k->s, &g, &n) < 0) {
		chk_msg(k, "ERROR %s", err_msg());
		k->c->corruptions++;
	}
	for (i = 0; i < n; i++)
		chk_ref(k, g[i][0], g[i][1], k->refs);
	free(g);
}

static void chk_walk(struct chk *k)
{
	struct qcow2 *s = k->s;
	uint32_t i;

	chk_ref(k, 0, s->cluster_size, k->refs);
	chk_l1(k, s->l1_offset, s->l1_size, true);
	for (i = 0; i < s->n_snaps; i++)
		chk_l1(k, s->snaps[i].l1_offset, s->snaps[i].l1_size, false);
	chk_ref(k, s->snaps_offset, s->snaps_bytes, k->refs);
	chk_bitmaps(k);
	chk_refcount_structs(k);
}

/* Compare references with stored refcounts; fix leaks in place. */
static int chk_compare(struct chk *k, unsigned fix, int *errs)
{
	struct qcow2 *s = k->s;
	uint64_t i, want, have;
	int r;

	*errs = 0;
	for (i = 0; i < k->n; i++) {
		want = k->refs[i] + k->rs[i];
		have = 0;
		if (!k->rc_broken && (r = qcow2_refcount_get(s, i, &have)) < 0)
			k->rc_broken = true;
		if (want == have || k->rc_broken)
			continue;
		if (have > want) {
			bool f = fix & FMT_FIX_LEAKS;

			chk_msg(k, "%s cluster %llu refcount=%llu reference=%llu",
				f ? "Repairing" : "Leaked", (unsigned long long)i,
				(unsigned long long)have, (unsigned long long)want);
			k->c->leaks++;
			if (f && qcow2_refcount_add(s, i, 1, (int64_t)(want - have)) == 0)
				k->c->leaks_fixed++;
			else if (f)
				(*errs)++;
		} else {
			chk_msg(k, "%s cluster %llu refcount=%llu reference=%llu",
				(fix & FMT_FIX_ERRORS) ? "Repairing" : "ERROR",
				(unsigned long long)i, (unsigned long long)have,
				(unsigned long long)want);
			k->c->corruptions++;
			(*errs)++;
		}
	}
	return 0;
}

static int chk_copied(struct chk *k, unsigned fix)
{
	struct qcow2 *s = k->s;
	uint64_t i, j, rc, l2off, e;
	uint8_t *t = xmalloc(s->cluster_size);
	int r = 0, bad = 0;

	for (i = 0; i < s->l1_size && r == 0; i++) {
		l2off = s->l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off || l2off % s->cluster_size || (l2off >> s->cluster_bits) >= k->n)
			continue;
		if ((r = qcow2_refcount_get(s, l2off >> s->cluster_bits, &rc)) < 0)
			break;
		if ((rc == 1) != !!(s->l1[i] & QCOW2_OFLAG_COPIED)) {
			chk_msg(k, "%s OFLAG_COPIED L2 cluster: l1_index=%llu l1_entry=%llx "
				"refcount=%llu", (fix & FMT_FIX_ERRORS) ? "Repairing" : "ERROR",
				(unsigned long long)i, (unsigned long long)s->l1[i],
				(unsigned long long)rc);
			bad++;
		}
		if ((r = fmt_file_pread(&s->f, t, s->cluster_size, l2off)) < 0)
			break;
		for (j = 0; j < (1ull << s->l2_bits); j++) {
			e = be64_get(t + j * s->l2_entry_size);
			if (!qcow2_l2_host(e) || (e & QCOW2_OFLAG_COMPRESSED) ||
			    (qcow2_l2_host(e) >> s->cluster_bits) >= k->n)
				continue;
			if ((r = qcow2_refcount_get(s, qcow2_l2_host(e) >> s->cluster_bits, &rc)) < 0)
				break;
			if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
				chk_msg(k, "%s OFLAG_COPIED data cluster: l2_entry=%llx "
					"refcount=%llu", (fix & FMT_FIX_ERRORS) ?
					"Repairing" : "ERROR", (unsigned long long)e,
					(unsigned long long)rc);
				bad++;
			}
		}
	}
	free(t);
	k->c->corruptions += bad;
	if (r == 0 && bad && (fix & FMT_FIX_ERRORS)) {
		qcow2_cache_free(&s->l2c);
		qcow2_cache_init(&s->l2c, s->rbc.n);
		if ((r = qcow2_tree_refs(s, s->l1, s->l1_size, 0, true)) == 0)
			k->c->corruptions_fixed += bad;
	}
	return r;
}

static int chk_run(struct qcow2 *s, unsigned fix, struct fmt_check *c)
{
	struct chk k = { .s = s, .c = c, .fix = fix };
	uint64_t i, end = 0;
	int r, errs = 0, corr0;

	k.n = DIV_ROUND_UP(s->file_end, s->cluster_size);
	k.refs = xzalloc((k.n + 1) * sizeof(uint64_t));
	k.rs = xzalloc((k.n + 1) * sizeof(uint64_t));
	c->has_alloc_info = true;
	c->total_clusters = DIV_ROUND_UP(s->img->size, s->cluster_size);
	chk_walk(&k);
	corr0 = c->corruptions;
	r = chk_compare(&k, fix, &errs);
	if (r == 0 && (fix & FMT_FIX_ERRORS) && (errs || k.rc_broken)) {
		r = qcow2_rebuild_refcounts(s, k.refs, k.n, s->refcount_order);
		k.refs = NULL;
		if (r == 0) {
			c->leaks_fixed = c->leaks;
			c->corruptions_fixed += c->corruptions - corr0 +
						(k.rc_broken ? corr0 - k.walk_fixed : 0);
		}
	} else if (k.rc_broken && !(fix & FMT_FIX_ERRORS))
		chk_msg(&k, "ERROR refcount structures are damaged; run with -r all");
	for (i = 0; k.refs && i < k.n; i++)
		if (k.refs[i] + k.rs[i])
			end = i + 1;
	c->image_end_offset = k.refs ? end * s->cluster_size : s->file_end;
	if (r == 0 && (!k.rc_broken || (fix & FMT_FIX_ERRORS)))
		r = chk_copied(&k, fix);
	free(k.refs);
	free(k.rs);
	return r;
}

int qcow2_check(struct fmt_image *img, unsigned fix, struct fmt_check *c)
{
	struct qcow2 *s = qcow2_of(img);
	int r;

	if (fix && !s->writable)
		return err_set(-EPERM, "%s: image is opened read-only", img->filename);
	pthread_mutex_lock(&s->lock);
	r = chk_run(s, fix, c);
	if (r == 0 && fix && (s->incompat & QCOW2_INCOMPAT_CORRUPT) &&
	    c->corruptions == c->corruptions_fixed)
		r = qcow2_set_incompat(s, QCOW2_INCOMPAT_CORRUPT, false);
	pthread_mutex_unlock(&s->lock);
	if (r == 0 && fix)
		r = fmt_file_flush(&s->f);
	return r;
}

/* Opened with the dirty bit (lazy refcounts, not closed cleanly): make
 * the refcounts right, then clear the bit.  Caller: open, no lock needed. */
int qcow2_repair_dirty(struct qcow2 *s)
{
	struct fmt_check c = { 0 };
	int r = chk_run(s, FMT_FIX_LEAKS | FMT_FIX_ERRORS, &c);

	if (r == 0)
		r = fmt_file_flush(&s->f);
	if (r == 0)
		r = qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, false);
	return r;
}

/* amend refcount_bits: count references, write them back in the new width. */
int qcow2_change_refcount_order(struct qcow2 *s, uint32_t order)
{
	struct fmt_check c = { 0 };
	struct chk k = { .s = s, .c = &c };
	int r;

	k.n = DIV_ROUND_UP(s->file_end, s->cluster_size);
	k.refs = xzalloc((k.n + 1) * sizeof(uint64_t));
	k.rs = xzalloc((k.n + 1) * sizeof(uint64_t));
	pthread_mutex_lock(&s->lock);
	chk_walk(&k);
	if (c.corruptions) {
		free(k.refs);
		r = err_set(-EIO, "the image has errors; run check -r all first");
	} else
		r = qcow2_rebuild_refcounts(s, k.refs, k.n, order);
	pthread_mutex_unlock(&s->lock);
	free(k.rs);
	return r < 0 ? r : fmt_file_flush(&s->f);
}
