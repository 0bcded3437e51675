/*
 * qcow2 block status, zero writes, discard and the VM-state area
 * (specification: "Cluster mapping", zero flag of version 3 L2 entries,
 * "Extended L2 Entries").  Whole clusters become zero or unallocated by
 * rewriting their L2 entry; with extended L2 entries whole subclusters do
 * too through the bitmap.  Partial pieces are written as zeros.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "internal.h"

static unsigned map_status(enum qcow2_seg_kind k)
{
	switch (k) {
	case SEG_ZERO: return FMT_ST_ZERO | FMT_ST_ALLOCATED;
	case SEG_DATA: return FMT_ST_DATA | FMT_ST_ALLOCATED | FMT_ST_OFFSET;
	case SEG_COMPRESSED: return FMT_ST_DATA | FMT_ST_ALLOCATED | FMT_ST_COMPRESSED;
	default: return 0;
	}
}

/* As QEMU asks the host file too: data whose host range is a hole in a
 * sparse file reads as zeros; the extent stops where that changes. */
static void map_host_holes(struct qcow2 *s, struct fmt_extent *ext)
{
	off_t h = (off_t)ext->host_offset, d, e;

	d = lseek(s->f.fd, h, SEEK_DATA);
	if (d < 0 && errno != ENXIO)
		return;
	if (d < 0 || d > h) {
		ext->status |= FMT_ST_ZERO;
		if (d > h)
			ext->length = MIN(ext->length, (uint64_t)(d - h));
		return;
	}
	e = lseek(s->f.fd, h, SEEK_HOLE);
	if (e > h)
		ext->length = MIN(ext->length, (uint64_t)(e - h));
}

/* QEMU looks at the host file's holes only for images that look
 * preallocated with preallocation=metadata: clearly more clusters in use
 * than the file has allocated. */
static bool map_meta_prealloc(struct qcow2 *s)
{
	uint64_t rc, used = 0, i, end, threshold;
	int64_t real;

	if (s->meta_prealloc_checked)
		return s->meta_prealloc;
	s->meta_prealloc_checked = true;
	real = fmt_file_allocated(&s->f);
	if (real < 0)
		return false;
	real /= s->cluster_size;
	threshold = (uint64_t)MAX(real * 10 / 9, real + 2);
	end = DIV_ROUND_UP(s->file_end, s->cluster_size);
	for (i = 0; i < end && used < threshold; i++)
		if (qcow2_refcount_get(s, i, &rc) == 0 && rc)
			used++;
	s->meta_prealloc = used >= threshold;
	return s->meta_prealloc;
}

int qcow2_block_status(struct fmt_image *img, uint64_t off, uint64_t len,
		       struct fmt_extent *ext)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size, pos = off, e, bm;
	uint64_t l2span = 1ull << (s->cluster_bits + s->l2_bits);
	uint64_t limit = MIN(off + len, ALIGN_DOWN(off, l2span) + l2span);
	struct qcow2_seg g, first = { 0 };
	bool holes;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	holes = map_meta_prealloc(s);
	while (pos < limit) {
		if ((r = qcow2_l2_entry(s, pos, &e, &bm)) < 0 ||
		    (r = qcow2_seg_of(s, e, bm, pos & (cs - 1), &g)) < 0)
			break;
		if (pos == off)
			first = g;
		else if (g.kind != first.kind || !g.host != !first.host ||
			 (g.host && g.host != first.host + (pos - off)))
			break;
		pos += g.len;
	}
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	ext->length = MIN(pos, off + len) - off;
	ext->status = map_status(first.kind);
	ext->host_offset = first.host;
	ext->file = img->filename;
	if (first.host && first.kind != SEG_COMPRESSED)
		ext->status |= FMT_ST_OFFSET;
	if (first.kind == SEG_DATA && holes)
		map_host_holes(s, ext);
	return 0;
}

/* Make a whole cluster read as zeros (zero) or drop it (!zero). */
static int zero_cluster_locked(struct fmt_image *img, uint64_t pos, bool zero,
			       bool unmap)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t e, bm, ne = 0, nbm = 0;
	bool keep;
	int r = qcow2_l2_entry(s, pos, &e, &bm);

	if (r < 0)
		return r;
	keep = zero && !unmap && (e & QCOW2_OFLAG_COPIED) && qcow2_l2_host(e) &&
	       !(e & QCOW2_OFLAG_COMPRESSED);
	if (s->ext_l2) {
		ne = keep ? e : 0;
		nbm = zero ? L2_SC_ALL << 32 : 0;
	} else if (zero) {
		ne = keep ? e | QCOW2_OFLAG_ZERO : QCOW2_OFLAG_ZERO;
	}
	if (ne == e && nbm == bm)
		return 0;
	if (!e && !bm && !zero)
		return 0;
	r = qcow2_update_l2_locked(s, pos, ne, nbm);
	if (r == 0 && !keep)
		r = qcow2_free_entry(s, e);
	return r;
}

/* Zero whole subclusters [coff, coff+n) of a cluster through the bitmap;
 * 1 when done, 0 when the cluster cannot be handled that way. */
static int zero_subclusters_locked(struct qcow2 *s, uint64_t pos, uint64_t n)
{
	uint64_t e, bm, cov, coff = pos & (s->cluster_size - 1);
	int r = qcow2_l2_entry(s, pos, &e, &bm);

	if (r < 0)
		return r;
	if ((e & QCOW2_OFLAG_COMPRESSED) || (qcow2_l2_host(e) && !(e & QCOW2_OFLAG_COPIED)))
		return 0;
	cov = qcow2_sc_bits(s, coff, n);
	r = qcow2_update_l2_locked(s, pos, e, (bm & ~cov) | ((bm >> 32 | cov) << 32));
	return r < 0 ? r : 1;
}

static int zero_range(struct fmt_image *img, uint64_t off, uint64_t len,
		      bool zero, unsigned flags)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t cs = s->cluster_size, scs = 1ull << s->sc_bits;
	uint8_t *z = NULL;
	int r = 0;

	while (len && r >= 0) {
		uint64_t coff = off & (cs - 1), n = MIN(len, cs - coff);

		pthread_mutex_lock(&s->lock);
		if (n == cs || (coff == 0 && off + n == img->size))
			r = zero_cluster_locked(img, off, zero, flags & FMT_W_MAY_UNMAP);
		else if (zero && s->ext_l2 && coff % scs == 0 &&
			 (n % scs == 0 || off + n == img->size))
			r = zero_subclusters_locked(s, off, n) > 0 ? 0 : 1;
		else
			r = 1;
		pthread_mutex_unlock(&s->lock);
		if (r == 1 && zero) {
			if (!z)
				z = xzalloc(cs);
			r = qcow2_write(img, z, off, (size_t)n, 0);
		} else if (r == 1)
			r = 0;          /* partial discard: nothing */
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

int qcow2_write_zeroes(struct fmt_image *img, uint64_t off, uint64_t len,
		       unsigned flags)
{
	struct qcow2 *s = qcow2_of(img);
	int r;

	if (s->version < 3)
		return -ENOTSUP;
	pthread_mutex_lock(&s->lock);
	r = qcow2_before_write(s, off, len);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : zero_range(img, off, len, true, flags);
}

int qcow2_discard(struct fmt_image *img, uint64_t off, uint64_t len)
{
	struct qcow2 *s = qcow2_of(img);
	int r;

	pthread_mutex_lock(&s->lock);
	r = qcow2_before_write(s, off, len);
	pthread_mutex_unlock(&s->lock);
	if (r < 0)
		return r;
	/* With a backing file a discarded cluster must not show old data. */
	if (img->backing)
		return s->version < 3 ? 0 : zero_range(img, off, len, true,
						       FMT_W_MAY_UNMAP);
	return zero_range(img, off, len, false, 0);
}

uint64_t qcow2_vmstate_offset(const struct qcow2 *s)
{
	return qcow2_l1_entries_for(s, s->img->size) <<
	       (s->cluster_bits + s->l2_bits);
}

int qcow2_vmstate_rw(struct fmt_image *img, void *buf, uint64_t off, size_t len,
		     bool write)
{
	struct qcow2 *s = qcow2_of(img);
	uint64_t base = qcow2_vmstate_offset(s);

	if (s->snapshot_view && write)
		return err_set(-EPERM, "the VM state of a snapshot is read-only");
	if (write)
		return qcow2_write(img, buf, base + off, len, 0);
	return qcow2_read(img, buf, base + off, len);
}

int qcow2_unmap(struct fmt_image *img, uint64_t off, uint64_t len)
{
	return len ? zero_range(img, off, len, false, 0) : 0;
}
