/*
 * qcow2 guest I/O (specification: "Cluster mapping", "Extended L2
 * Entries", "Compressed Clusters Descriptor").
 *
 * Essay.  A guest offset maps through the L1 table to an L2 table and an
 * L2 entry: unallocated (read the backing file), zero, normal data at a
 * host offset, or compressed.  With extended L2 entries each cluster has
 * 32 subclusters whose allocated/zero bits sit in a bitmap next to the
 * entry.  A "segment" is the longest run inside one cluster of a single
 * kind (backing, zero, data, compressed); reads and block status walk
 * segments.
 *
 * Locking: s->lock guards the tables and caches.  Reads look a segment up
 * under the lock and move the bytes without it.  A write to a cluster that
 * is already ours (COPIED) does the same; any write that allocates (a new
 * cluster, copy-on-write of a cluster shared with a snapshot or compressed,
 * a zero cluster becoming data) runs entirely under the lock, in the order
 * data, refcounts (already written when allocated), L2 entry, then the
 * old cluster is freed.  A kill at any instant thus leaves at worst leaks.
 * Runs of whole unallocated clusters are allocated in one go under the
 * lock, their data is written without it (so writers to different places
 * overlap), and the L2 entries are set under it again; an entry another
 * writer filled meanwhile wins and the run's cluster for it is freed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"


uint64_t qcow2_l2_host(uint64_t e)
{
	return e & QCOW2_OFFSET_MASK;
}

static bool l2_compressed(uint64_t e)
{
	return e & QCOW2_OFLAG_COMPRESSED;
}

/* Host range of a compressed cluster. */
static void l2_compressed_range(const struct qcow2 *s, uint64_t e,
				 uint64_t *off, uint64_t *len)
{
	uint64_t nsec = ((e >> s->csize_shift) & s->csize_mask) + 1;

	*off = e & ((1ull << s->csize_shift) - 1);
	*len = nsec * 512 - (*off & 511);
}

/* Find the L2 table for vaddr, optionally creating or un-sharing it. */
int qcow2_l2_table(struct qcow2 *s, uint64_t vaddr, bool alloc, uint8_t **t)
{
	uint64_t i = vaddr >> (s->cluster_bits + s->l2_bits), l2off, old;
	uint8_t ent[8], *src;
	int64_t n;
	int r;

	*t = NULL;
	if (i >= s->l1_size) {
		if (!alloc)
			return 0;
		if ((r = qcow2_l1_grow(s, i + 1)) < 0)
			return r;
	}
	old = s->l1[i];
	l2off = old & QCOW2_OFFSET_MASK;
	if (l2off && (l2off % s->cluster_size || l2off >= s->file_end))
		return qcow2_corrupt(s, "L2 table offset %#llx of L1 entry %llu is "
				     "invalid or past the end of the file",
				     (unsigned long long)l2off, (unsigned long long)i);
	if (!alloc || (l2off && (old & QCOW2_OFLAG_COPIED)))
		return l2off ? qcow2_cache_get(s, &s->l2c, l2off, false, t) : 0;
	if ((n = qcow2_alloc(s, 1)) < 0)
		return (int)n;
	if (l2off) {                    /* shared with a snapshot: copy it */
		if ((r = qcow2_cache_get(s, &s->l2c, l2off, false, &src)) < 0)
			return r;
		r = fmt_file_pwrite(&s->f, src, s->cluster_size, (uint64_t)n);
		if (r == 0)
			r = qcow2_cache_get(s, &s->l2c, (uint64_t)n, false, t);
	} else {
		r = qcow2_cache_get(s, &s->l2c, (uint64_t)n, true, t);
		if (r == 0)
			r = fmt_file_pwrite(&s->f, *t, s->cluster_size, (uint64_t)n);
	}
	if (r < 0)
		return r;
	be64_put(ent, (uint64_t)n | QCOW2_OFLAG_COPIED);
	if ((r = fmt_file_pwrite(&s->f, ent, 8, s->l1_offset + i * 8)) < 0)
		return r;
	s->l1[i] = (uint64_t)n | QCOW2_OFLAG_COPIED;
	if (l2off)
		return qcow2_free(s, l2off, s->cluster_size);
	return 0;
}

uint64_t qcow2_l2_index(const struct qcow2 *s, uint64_t vaddr)
{
	return (vaddr >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
}

/* Write entries [first, first + n) of the L2 table t (the one mapping
 * vaddr) to disk in one go. */
int qcow2_write_l2_range(struct qcow2 *s, uint64_t vaddr, const uint8_t *t,
			 uint64_t first, uint64_t n)
{
	uint64_t l2off = s->l1[vaddr >> (s->cluster_bits + s->l2_bits)] &
			 QCOW2_OFFSET_MASK;

	return fmt_file_pwrite(&s->f, t + first * s->l2_entry_size,
			       n * s->l2_entry_size, l2off + first * s->l2_entry_size);
}

int qcow2_l2_entry(struct qcow2 *s, uint64_t vaddr, uint64_t *entry, uint64_t *bitmap)
{
	uint8_t *t;
	uint64_t i;
	int r = qcow2_l2_table(s, vaddr, false, &t);

	*entry = *bitmap = 0;
	if (r < 0 || !t)
		return r;
	i = qcow2_l2_index(s, vaddr);
	*entry = be64_get(t + i * s->l2_entry_size);
	if (s->ext_l2)
		*bitmap = be64_get(t + i * 16 + 8);
	return 0;
}

int qcow2_update_l2_locked(struct qcow2 *s, uint64_t vaddr, uint64_t entry,
			   uint64_t bitmap)
{
	uint8_t *t, *p;
	uint64_t i;
	int r = qcow2_l2_table(s, vaddr, true, &t);

	if (r < 0)
		return r;
	i = qcow2_l2_index(s, vaddr);
	p = t + i * s->l2_entry_size;
	be64_put(p, entry);
	if (s->ext_l2)
		be64_put(p + 8, bitmap);
	return fmt_file_pwrite(&s->f, p, s->l2_entry_size,
			       (s->l1[vaddr >> (s->cluster_bits + s->l2_bits)] &
				QCOW2_OFFSET_MASK) + i * s->l2_entry_size);
}

/* The segment of cluster entry (e, bm) starting at cluster offset coff. */
int qcow2_seg_of(struct qcow2 *s, uint64_t e, uint64_t bm, uint64_t coff,
		  struct qcow2_seg *g)
{
	uint64_t cs = s->cluster_size, host = qcow2_l2_host(e), sc, scs;

	g->host = 0;
	if (l2_compressed(e)) {
		g->kind = SEG_COMPRESSED;
		g->len = cs - coff;
		return 0;
	}
	if (host && host >= s->file_end + cs)
		return qcow2_corrupt(s, "data cluster offset %#llx is past the end "
				     "of the file", (unsigned long long)host);
	if (host % cs)
		return qcow2_corrupt(s, "data cluster offset %#llx is not aligned",
				     (unsigned long long)host);
	if (!s->ext_l2) {
		g->kind = (s->version >= 3 && (e & QCOW2_OFLAG_ZERO)) ? SEG_ZERO :
			  host ? SEG_DATA : SEG_BACKING;
		g->host = host ? host + coff : 0;
		g->len = cs - coff;
		return 0;
	}
	scs = 1ull << s->sc_bits;
	sc = coff >> s->sc_bits;
	for (g->len = 0; sc < 32; sc++) {
		bool a = bm & (1ull << sc), z = bm & (1ull << (32 + sc));
		enum qcow2_seg_kind k = z ? SEG_ZERO : a ? SEG_DATA : SEG_BACKING;

		if (a && z)
			return qcow2_corrupt(s, "subcluster both allocated and zero");
		if (a && !host)
			return qcow2_corrupt(s, "allocated subcluster without a host "
					     "cluster");
		if (g->len == 0)
			g->kind = k;
		else if (k != g->kind)
			break;
		g->len = (sc + 1) * scs - coff;
	}
	g->host = host ? host + coff : 0;
	return 0;
}

static int read_backing(struct fmt_image *img, uint8_t *buf, uint64_t pos, size_t n)
{
	struct fmt_image *b = img->backing;
	size_t have;

	if (!b || pos >= b->size) {
		memset(buf, 0, n);
		return 0;
	}
	have = (size_t)MIN((uint64_t)n, b->size - pos);
	memset(buf + have, 0, n - have);
	return fmt_read(b, buf, pos, have);
}

static int read_compressed(struct qcow2 *s, uint64_t e, uint8_t *buf,
			   uint64_t coff, size_t n)
{
	uint64_t off, len;
	uint8_t *in, *out;
	int r;

	l2_compressed_range(s, e, &off, &len);
	if (off >= s->file_end)
		return qcow2_corrupt(s, "compressed cluster past the end of the file");
	in = xmalloc(len);
	out = xmalloc(s->cluster_size);
	r = fmt_file_pread(&s->f, in, len, off);
	if (r == 0)
		r = qcow2_decompress(s, in, len, out, s->cluster_size);
	if (r == 0)
		memcpy(buf, out + coff, n);
	free(in);
	free(out);
	return r;
}

/* Move the bytes of one segment (no lock needed). */
static int seg_read(struct fmt_image *img, const struct qcow2_seg *g, uint64_t e,
		    uint8_t *buf, uint64_t pos, size_t n)
{
	struct qcow2 *s = qcow2_of(img);

	switch (g->kind) {
	case SEG_ZERO:
		memset(buf, 0, n);
		return 0;
	case SEG_DATA:
		return fmt_file_pread(&s->f, buf, n, g->host);
	case SEG_COMPRESSED:
		return read_compressed(s, e, buf, pos & (s->cluster_size - 1), n);
	default:
		return read_backing(img, buf, pos, n);
	}
}

/* Read [pos, pos+n) with the lock held (n within one cluster). */
static int read_locked(struct fmt_image *img, uint8_t *buf, uint64_t pos, size_t n)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t e, bm;
	struct qcow2_seg g;
	int r;

	while (n) {
		size_t k;

		if ((r = qcow2_l2_entry(s, pos, &e, &bm)) < 0 ||
		    (r = qcow2_seg_of(s, e, bm, pos & (s->cluster_size - 1), &g)) < 0)
			return r;
		k = (size_t)MIN((uint64_t)n, g.len);
		if ((r = seg_read(img, &g, e, buf, pos, k)) < 0)
			return r;
		buf += k;
		pos += k;
		n -= k;
	}
	return 0;
}

/* The run at pos of at most n bytes that one seg_read can move: segments
 * of one kind joined across clusters (data only where the host clusters
 * follow each other).  Lock held. */
static int read_run_locked(struct qcow2 *s, uint64_t pos, size_t n,
			   struct qcow2_seg *g, uint64_t *e, size_t *k)
{
	uint64_t cs = s->cluster_size, e2, bm;
	struct qcow2_seg h;
	int r;

	if ((r = qcow2_l2_entry(s, pos, e, &bm)) < 0 ||
	    (r = qcow2_seg_of(s, *e, bm, pos & (cs - 1), g)) < 0)
		return r;
	*k = (size_t)MIN((uint64_t)n, g->len);
	while (*k < n && g->kind != SEG_COMPRESSED) {
		if ((r = qcow2_l2_entry(s, pos + *k, &e2, &bm)) < 0 ||
		    (r = qcow2_seg_of(s, e2, bm, (pos + *k) & (cs - 1), &h)) < 0)
			return r;
		if (h.kind != g->kind || (g->kind == SEG_DATA && h.host != g->host + *k))
			break;
		*k += (size_t)MIN((uint64_t)(n - *k), h.len);
	}
	return 0;
}

int qcow2_read(struct fmt_image *img, void *vbuf, uint64_t pos, size_t n)
{
	struct qcow2 *s = qcow2_of(img);
	uint8_t *buf = vbuf;
	uint64_t e;
	struct qcow2_seg g;
	int r;

	while (n) {
		size_t k;

		pthread_mutex_lock(&s->lock);
		r = read_run_locked(s, pos, n, &g, &e, &k);
		pthread_mutex_unlock(&s->lock);
		if (r < 0)
			return r;
		if ((r = seg_read(img, &g, e, buf, pos, k)) < 0)
			return r;
		buf += k;
		pos += k;
		n -= k;
	}
	return 0;
}

/* Release what an L2 entry pointed to (after the entry was replaced). */
int qcow2_free_entry(struct qcow2 *s, uint64_t e)
{
	uint64_t off, len;

	if (l2_compressed(e)) {
		l2_compressed_range(s, e, &off, &len);
		return qcow2_refcount_add_bytes(s, off, len, -1);
	}
	if (qcow2_l2_host(e))
		return qcow2_free(s, qcow2_l2_host(e), s->cluster_size);
	return 0;
}

/* Subcluster bits [first, last] of a byte range inside a cluster. */
uint64_t qcow2_sc_bits(const struct qcow2 *s, uint64_t coff, uint64_t n)
{
	uint64_t a = coff >> s->sc_bits, b = (coff + n - 1) >> s->sc_bits;

	return ((b == 63 ? ~0ull : (1ull << (b + 1)) - 1) & ~((1ull << a) - 1)) & L2_SC_ALL;
}

/* Write into one cluster under the lock, allocating as needed. */
static int write_cluster_locked(struct fmt_image *img, const uint8_t *data,
				uint64_t pos, size_t n)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size, coff = pos & (cs - 1), cbase = pos - coff;
	uint64_t e, bm, host = 0, a = 0, b = cs, nbm = 0, cov;
	bool inplace;
	uint8_t *view;
	int64_t nh;
	int r;

	if ((r = qcow2_l2_entry(s, pos, &e, &bm)) < 0)
		return r;
	inplace = (e & QCOW2_OFLAG_COPIED) && qcow2_l2_host(e) && !l2_compressed(e);
	if (s->ext_l2 && !l2_compressed(e) && (inplace || !qcow2_l2_host(e))) {
		a = ALIGN_DOWN(coff, 1ull << s->sc_bits);
		b = ALIGN_UP(coff + n, 1ull << s->sc_bits);
	}
	view = xmalloc(cs);
	r = read_locked(img, view + a, cbase + a, b - a);
	if (r < 0)
		goto out;
	memcpy(view + coff, data, n);
	if (inplace)
		host = qcow2_l2_host(e);
	else if ((nh = qcow2_alloc(s, 1)) < 0) {
		r = (int)nh;
		goto out;
	} else
		host = (uint64_t)nh;
	if ((r = fmt_file_pwrite(&s->f, view + a, b - a, host + a)) < 0)
		goto out;
	cov = s->ext_l2 ? qcow2_sc_bits(s, a, b - a) : 0;
	if (s->ext_l2)
		nbm = l2_compressed(e) ? L2_SC_ALL :
		      inplace || !qcow2_l2_host(e) ? ((bm & L2_SC_ALL) | cov) |
					       ((bm >> 32) & ~cov) << 32 :
		      L2_SC_ALL;
	r = qcow2_update_l2_locked(s, pos, host | QCOW2_OFLAG_COPIED, nbm);
	if (r == 0 && !inplace)
		r = qcow2_free_entry(s, e);
out:
	free(view);
	return r;
}

/* Fast path, first step: whole unallocated clusters in one L2 table get
 * one allocation (refcounts written).  Returns the bytes the run covers,
 * 0 when the path does not apply, or -errno; *host is where they go.  The
 * caller writes the data without the lock, then run_finish_locked. */
static int64_t run_start_locked(struct qcow2 *s, uint64_t pos, size_t n,
				uint64_t *host)
{
	uint64_t cs = s->cluster_size, k, per = 1ull << s->l2_bits;
	uint64_t idx = qcow2_l2_index(s, pos), e;
	int64_t h;
	uint8_t *t;
	int r;

	if (pos & (cs - 1) || n < cs)
		return 0;
	if ((r = qcow2_l2_table(s, pos, true, &t)) < 0)
		return r;
	for (k = 0; k < n / cs && idx + k < per; k++) {
		e = be64_get(t + (idx + k) * s->l2_entry_size);
		if (qcow2_l2_host(e) || l2_compressed(e))
			break;
	}
	if (k == 0)
		return 0;
	if ((h = qcow2_alloc(s, k)) < 0)
		return h;
	*host = (uint64_t)h;
	return (int64_t)(k * cs);
}

/* Second step, the data written: point the L2 entries at the run (one
 * write).  An entry another writer filled meanwhile (overlapping writes
 * in flight together) is left to it and our cluster for it is freed. */
static int run_finish_locked(struct qcow2 *s, uint64_t pos, uint64_t len,
			     uint64_t host)
{
	uint64_t cs = s->cluster_size, idx = qcow2_l2_index(s, pos), i, e;
	uint8_t *t, *ents;
	int r;

	if ((r = qcow2_l2_table(s, pos, true, &t)) < 0)
		return r;
	ents = t + idx * s->l2_entry_size;
	for (i = 0; i < len / cs && r == 0; i++) {
		e = be64_get(ents + i * s->l2_entry_size);
		if (qcow2_l2_host(e) || l2_compressed(e)) {
			r = qcow2_free(s, host + i * cs, cs);
			continue;
		}
		be64_put(ents + i * s->l2_entry_size, (host + i * cs) | QCOW2_OFLAG_COPIED);
		if (s->ext_l2)
			be64_put(ents + i * 16 + 8, L2_SC_ALL);
	}
	if (r < 0)
		return r;
	return qcow2_write_l2_range(s, pos, t, idx, len / cs);
}

/* Write a whole-cluster run: allocate under the lock, move the data
 * without it (other requests go on meanwhile), then map it.  Returns the
 * bytes written, 0 when the path does not apply, or -errno. */
static int64_t write_run(struct qcow2 *s, const uint8_t *data, uint64_t pos,
			 size_t n)
{
	uint64_t host = 0;
	int64_t k;
	int r;

	pthread_mutex_lock(&s->lock);
	k = run_start_locked(s, pos, n, &host);
	pthread_mutex_unlock(&s->lock);
	if (k <= 0)
		return k;
	r = fmt_file_pwrite(&s->f, data, (size_t)k, host);
	pthread_mutex_lock(&s->lock);
	if (r == 0)
		r = run_finish_locked(s, pos, (uint64_t)k, host);
	else
		qcow2_free(s, host, (uint64_t)k);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : k;
}

int qcow2_mark_dirty(struct qcow2 *s)
{
	if (!(s->compat & QCOW2_COMPAT_LAZY) || s->dirty_set)
		return 0;
	s->dirty_set = true;
	return qcow2_set_incompat(s, QCOW2_INCOMPAT_DIRTY, true);
}

int qcow2_before_write(struct qcow2 *s, uint64_t off, uint64_t len)
{
	int r = qcow2_mark_dirty(s);

	if (r == 0 && s->writable && !s->track_on)
		r = qcow2_bitmap_track_begin(s);
	if (r == 0)
		qcow2_bitmap_track_mark(s, off, len);
	return r;
}

/* Can the bytes go straight to an existing cluster of ours? */
static int write_direct(struct qcow2 *s, uint64_t pos, size_t n, uint64_t *host)
{
	uint64_t e, bm, coff = pos & (s->cluster_size - 1), cov;
	int r = qcow2_l2_entry(s, pos, &e, &bm);

	*host = 0;
	if (r < 0 || !(e & QCOW2_OFLAG_COPIED) || !qcow2_l2_host(e) || l2_compressed(e))
		return r;
	if (!s->ext_l2) {
		if (!(s->version >= 3 && (e & QCOW2_OFLAG_ZERO)))
			*host = qcow2_l2_host(e) + coff;
		return 0;
	}
	cov = qcow2_sc_bits(s, coff, n);
	if ((bm & cov) == cov)
		*host = qcow2_l2_host(e) + coff;
	return 0;
}

/* A compressed write through the two-step path, on this thread. */
static int write_compressed(struct fmt_image *img, const uint8_t *data,
			    uint64_t pos, size_t n)
{
	struct fmt_cdata cd = { 0 };
	int r = qcow2_compress_clusters(img, data, pos, n, false, &cd);

	if (r == 0)
		r = qcow2_write_compressed(img, &cd);
	fmt_cdata_free(&cd);
	return r;
}

int qcow2_write(struct fmt_image *img, const void *vbuf, uint64_t pos,
		size_t n, unsigned flags)
{
	struct qcow2 *s = qcow2_of(img);
	const uint8_t *buf = vbuf;
	uint64_t cs = s->cluster_size, host;
	int64_t k;
	int r = 0;

	if (flags & FMT_W_COMPRESSED)
		return write_compressed(img, buf, pos, n);
	pthread_mutex_lock(&s->lock);
	r = qcow2_before_write(s, pos, n);
	pthread_mutex_unlock(&s->lock);
	while (n && r == 0) {
		size_t m = (size_t)MIN((uint64_t)n, cs - (pos & (cs - 1)));

		pthread_mutex_lock(&s->lock);
		r = write_direct(s, pos, m, &host);
		pthread_mutex_unlock(&s->lock);
		k = 0;
		if (r == 0 && !host && (k = write_run(s, buf, pos, n)) == 0) {
			pthread_mutex_lock(&s->lock);
			k = (r = write_cluster_locked(img, buf, pos, m)) < 0 ? r : (int64_t)m;
			pthread_mutex_unlock(&s->lock);
		}
		if (k < 0)
			return (int)k;
		if (r == 0 && host) {
			r = fmt_file_pwrite(&s->f, buf, m, host);
			k = (int64_t)m;
		}
		buf += k;
		pos += (uint64_t)k;
		n -= (size_t)k;
	}
	return r;
}
