/*
 * qcow2 internal snapshots (specification: "Snapshots").  A snapshot is a
 * copy of the L1 table plus a table entry (id, name, dates, VM clock, the
 * size of its VM-state area and the disk size).  Every host cluster
 * counts one reference per L1 table that reaches it, so taking a snapshot
 * adds one to everything the active L1 reaches and clears the COPIED flags
 * there; writes then copy on write.  The new snapshot table is written
 * completely before the header switches to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"

void qcow2_snapshots_free(struct qcow2 *s)
{
	uint32_t i;

	for (i = 0; i < s->n_snaps && s->snaps; i++) {
		free(s->snaps[i].id);
		free(s->snaps[i].name);
		free(s->snaps[i].extra_rest);
	}
	free(s->snaps);
	s->snaps = NULL;
}

static int snap_parse(struct qcow2 *s, const uint8_t *p, uint64_t avail,
		      struct qcow2_snap *sn, uint64_t *used)
{
	uint32_t idl, nl, el;

	if (avail < 40)
		return err_set(-EINVAL, "Snapshot table is truncated");
	sn->l1_offset = be64_get(p);
	sn->l1_size = be32_get(p + 8);
	idl = be16_get(p + 12);
	nl = be16_get(p + 14);
	sn->date_sec = be32_get(p + 16);
	sn->date_nsec = be32_get(p + 20);
	sn->vm_clock_nsec = be64_get(p + 24);
	sn->vm_state_size = be32_get(p + 32);
	el = be32_get(p + 36);
	sn->extra_len = el;
	*used = ALIGN_UP(40ull + el + idl + nl, 8);
	if (el > 1024 || 40ull + el + idl + nl > avail)
		return err_set(-EINVAL, "Snapshot table entry is invalid");
	sn->disk_size = s->img->size;
	sn->icount = UINT64_MAX;
	if (el >= 8)
		sn->vm_state_size = be64_get(p + 40);
	if (el >= 16)
		sn->disk_size = be64_get(p + 48);
	if (el >= 24)
		sn->icount = be64_get(p + 56);
	if (el > 24) {
		sn->extra_rest_len = el - 24;
		sn->extra_rest = xmalloc(el - 24);
		memcpy(sn->extra_rest, p + 64, el - 24);
	}
	sn->id = xzalloc(idl + 1);
	memcpy(sn->id, p + 40 + el, idl);
	sn->name = xzalloc(nl + 1);
	memcpy(sn->name, p + 40 + el + idl, nl);
	if (sn->l1_offset % s->cluster_size || (uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
	    sn->l1_offset + (uint64_t)sn->l1_size * 8 > s->file_end)
		return err_set(-EINVAL, "Snapshot L1 table offset invalid");
	return 0;
}

int qcow2_snapshots_read(struct qcow2 *s)
{
	uint64_t pos = 0, used = 0, max = 0, i;
	uint8_t *t;
	int r = 0;

	if (!s->n_snaps)
		return 0;
	if (s->n_snaps > QCOW2_MAX_SNAPSHOTS)
		return err_set(-EFBIG, "Too many snapshots");
	if (s->snaps_offset % s->cluster_size || s->snaps_offset >= s->file_end)
		return err_set(-EINVAL, "Invalid snapshot table offset");
	max = MIN(s->file_end - s->snaps_offset, (uint64_t)s->n_snaps * 2048 + 64);
	t = xmalloc(max);
	if ((r = fmt_file_pread(&s->f, t, max, s->snaps_offset)) < 0) {
		free(t);
		return r;
	}
	s->snaps = xzalloc(sizeof(*s->snaps) * s->n_snaps);
	for (i = 0; i < s->n_snaps && r == 0; i++) {
		r = snap_parse(s, t + pos, max - pos, &s->snaps[i], &used);
		s->snaps_bytes = pos + used;
		pos = MIN(pos + used, max);
	}
	free(t);
	if (r < 0)
		s->n_snaps = (uint32_t)i;
	return r;
}

static uint8_t *snap_serialize(struct qcow2 *s, uint64_t *len)
{
	uint64_t pos = 0, n, i;
	uint8_t *t = NULL, *p;

	for (i = 0; i < s->n_snaps; i++) {
		struct qcow2_snap *sn = &s->snaps[i];
		uint32_t el = 24 + sn->extra_rest_len;
		uint64_t idl = strlen(sn->id), nl = strlen(sn->name);

		n = ALIGN_UP(40 + el + idl + nl, 8);
		t = xrealloc(t, pos + n);
		p = t + pos;
		memset(p, 0, n);
		be64_put(p, sn->l1_offset);
		be32_put(p + 8, sn->l1_size);
		be16_put(p + 12, (uint16_t)idl);
		be16_put(p + 14, (uint16_t)nl);
		be32_put(p + 16, sn->date_sec);
		be32_put(p + 20, sn->date_nsec);
		be64_put(p + 24, sn->vm_clock_nsec);
		be32_put(p + 32, (uint32_t)MIN(sn->vm_state_size, UINT32_MAX));
		be32_put(p + 36, el);
		be64_put(p + 40, sn->vm_state_size);
		be64_put(p + 48, sn->disk_size);
		be64_put(p + 56, sn->icount);
		if (sn->extra_rest_len)
			memcpy(p + 64, sn->extra_rest, sn->extra_rest_len);
		memcpy(p + 40 + el, sn->id, idl);
		memcpy(p + 40 + el + idl, sn->name, nl);
		pos += n;
	}
	*len = pos;
	return t;
}

/* Write the in-memory snapshot list as a new table, switch, free the old. */
static int snap_table_write(struct qcow2 *s)
{
	uint64_t len, old = s->snaps_offset, old_len = s->snaps_bytes;
	uint8_t *t = snap_serialize(s, &len), hdr[12];
	int64_t off = 0;
	int r = 0;

	if (len && (off = qcow2_alloc(s, DIV_ROUND_UP(len, s->cluster_size))) < 0)
		r = (int)off;
	if (r == 0 && len)
		r = fmt_file_pwrite(&s->f, t, len, (uint64_t)off);
	free(t);
	if (r == 0)
		r = fmt_file_flush(&s->f);
	be32_put(hdr, s->n_snaps);
	be64_put(hdr + 4, (uint64_t)off);
	if (r == 0)
		r = fmt_file_pwrite(&s->f, hdr, 12, 60);
	if (r < 0)
		return r;
	s->snaps_offset = (uint64_t)off;
	s->snaps_bytes = len;
	if (old && old_len)
		return qcow2_free(s, old, ALIGN_UP(old_len, s->cluster_size));
	return 0;
}

/* Recompute the COPIED flags of one L2 table; adjust refs by delta. */
static int tree_l2(struct qcow2 *s, uint64_t l2off, int64_t delta, bool fix)
{
	uint64_t n = 1ull << s->l2_bits, i, e, ne, rc, off, len;
	bool changed = false;
	uint8_t *t, *copy;
	int r;

	if ((r = qcow2_cache_get(s, &s->l2c, l2off, false, &t)) < 0)
		return r;
	copy = xmalloc(s->cluster_size);
	memcpy(copy, t, s->cluster_size);
	for (i = 0; i < n && r == 0; i++) {
		e = be64_get(copy + i * s->l2_entry_size);
		ne = e;
		if (e & QCOW2_OFLAG_COMPRESSED) {
			off = e & ((1ull << s->csize_shift) - 1);
			len = (((e >> s->csize_shift) & s->csize_mask) + 1) * 512 - (off & 511);
			if (delta)
				r = qcow2_refcount_add_bytes(s, off, len, delta);
		} else if (qcow2_l2_host(e)) {
			if (delta)
				r = qcow2_refcount_add(s, qcow2_l2_host(e) >> s->cluster_bits,
						       1, delta);
			if (r == 0 && fix &&
			    (r = qcow2_refcount_get(s, qcow2_l2_host(e) >> s->cluster_bits, &rc)) == 0)
				ne = rc == 1 ? e | QCOW2_OFLAG_COPIED : e & ~QCOW2_OFLAG_COPIED;
		}
		if (ne != e) {
			be64_put(copy + i * s->l2_entry_size, ne);
			changed = true;
		}
	}
	if (r == 0 && changed) {
		r = fmt_file_pwrite(&s->f, copy, s->cluster_size, l2off);
		qcow2_cache_drop(&s->l2c, l2off);
	}
	free(copy);
	return r;
}

int qcow2_tree_refs(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size,
		    int64_t delta, bool fix_copied)
{
	uint64_t i, l2off, rc, ne;
	uint8_t ent[8];
	int r = 0;

	for (i = 0; i < l1_size && r == 0; i++) {
		l2off = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		if (l2off % s->cluster_size || l2off >= s->file_end)
			return qcow2_corrupt(s, "L2 table offset %#llx invalid",
					     (unsigned long long)l2off);
		r = tree_l2(s, l2off, delta, fix_copied);
		if (r == 0 && delta)
			r = qcow2_refcount_add(s, l2off >> s->cluster_bits, 1, delta);
		if (r == 0 && fix_copied &&
		    (r = qcow2_refcount_get(s, l2off >> s->cluster_bits, &rc)) == 0) {
			ne = rc == 1 ? l1[i] | QCOW2_OFLAG_COPIED : l1[i] & ~QCOW2_OFLAG_COPIED;
			if (ne != l1[i]) {
				s->l1[i] = ne;
				be64_put(ent, ne);
				r = fmt_file_pwrite(&s->f, ent, 8, s->l1_offset + i * 8);
			}
		}
	}
	return r;
}

int qcow2_snapshot_find(struct qcow2 *s, const char *which)
{
	uint32_t i;

	for (i = 0; i < s->n_snaps; i++)
		if (strcmp(s->snaps[i].id, which) == 0)
			return (int)i;
	for (i = 0; i < s->n_snaps; i++)
		if (strcmp(s->snaps[i].name, which) == 0)
			return (int)i;
	return -ENOENT;
}

int qcow2_snapshot_list(struct fmt_image *img, struct fmt_snapshot **l, size_t *n)
{
	struct qcow2 *s = qcow2_of(img);
	uint32_t i;

	*l = xzalloc(sizeof(**l) * (s->n_snaps + 1));
	for (i = 0; i < s->n_snaps; i++) {
		struct qcow2_snap *q = &s->snaps[i];

		(*l)[i] = (struct fmt_snapshot){ xstrdup(q->id), xstrdup(q->name),
			q->vm_state_size, q->date_sec, q->date_nsec, q->vm_clock_nsec,
			q->icount, q->disk_size };
	}
	*n = s->n_snaps;
	return 0;
}

static uint64_t *snap_load_l1(struct qcow2 *s, const struct qcow2_snap *sn, int *r)
{
	uint64_t *l1 = xzalloc((uint64_t)sn->l1_size * 8 + 8), i;

	*r = sn->l1_size ? fmt_file_pread(&s->f, l1, (size_t)sn->l1_size * 8,
					  sn->l1_offset) : 0;
	for (i = 0; i < sn->l1_size; i++)
		l1[i] = be64_get(&l1[i]);
	return l1;
}

static int snap_create_locked(struct qcow2 *s, const struct fmt_snapshot *in)
{
	uint64_t bytes = (uint64_t)s->l1_size * 8, i, maxid = 0;
	struct qcow2_snap sn = { 0 };
	uint8_t *t;
	int64_t off;
	int r;

	for (i = 0; i < s->n_snaps; i++)
		maxid = MAX(maxid, strtoull(s->snaps[i].id, NULL, 10));
	sn.id = in->id ? xstrdup(in->id) : xasprintf("%llu", (unsigned long long)maxid + 1);
	if (qcow2_snapshot_find(s, sn.id) >= 0 && strcmp(s->snaps[qcow2_snapshot_find(s, sn.id)].id, sn.id) == 0) {
		free(sn.id);
		return err_set(-EEXIST, "snapshot id '%s' already exists", in->id);
	}
	if ((r = qcow2_tree_refs(s, s->l1, s->l1_size, 1, true)) < 0 ||
	    (off = qcow2_alloc(s, DIV_ROUND_UP(MAX(bytes, 1), s->cluster_size))) < 0) {
		free(sn.id);
		return r < 0 ? r : (int)off;
	}
	t = xzalloc(bytes + 8);
	for (i = 0; i < s->l1_size; i++)
		be64_put(t + i * 8, s->l1[i] & ~QCOW2_OFLAG_COPIED);
	r = bytes ? fmt_file_pwrite(&s->f, t, bytes, (uint64_t)off) : 0;
	free(t);
	sn.l1_offset = (uint64_t)off;
	sn.l1_size = s->l1_size;
	sn.name = xstrdup(in->name);
	sn.date_sec = in->date_sec;
	sn.date_nsec = in->date_nsec;
	sn.vm_clock_nsec = in->vm_clock_nsec;
	sn.vm_state_size = in->vm_state_size;
	sn.disk_size = s->img->size;
	sn.icount = in->icount;
	s->snaps = xrealloc(s->snaps, sizeof(*s->snaps) * (s->n_snaps + 1));
	s->snaps[s->n_snaps++] = sn;
	return r < 0 ? r : snap_table_write(s);
}

int qcow2_snapshot_create(struct fmt_image *img, const struct fmt_snapshot *sn)
{
	struct qcow2 *s = qcow2_of(img);
	int r;

	if (s->snapshot_view)
		return err_set(-EPERM, "image is opened on a snapshot");
	pthread_mutex_lock(&s->lock);
	r = snap_create_locked(s, sn);
	pthread_mutex_unlock(&s->lock);
	if (r == 0)
		r = fmt_file_flush(&s->f);
	/* As QEMU: the VM state now belongs to the snapshot; the current
	 * state lets go of it, so it costs no copy-on-write later and never
	 * shows through a disk that grows over the area. */
	if (r == 0 && sn->vm_state_size)
		r = qcow2_unmap(img, qcow2_vmstate_offset(s),
				ALIGN_UP(sn->vm_state_size, s->cluster_size));
	return r < 0 ? r : fmt_file_flush(&s->f);
}

static int snap_apply_locked(struct qcow2 *s, int k)
{
	struct qcow2_snap *sn = &s->snaps[k];
	uint64_t *sl1, *old, i;
	uint32_t old_size;
	uint8_t *t, b[8];
	int r;

	sl1 = snap_load_l1(s, sn, &r);
	if (r == 0 && sn->l1_size > s->l1_size)
		r = qcow2_l1_grow(s, sn->l1_size);
	if (r == 0)
		r = qcow2_tree_refs(s, sl1, sn->l1_size, 1, false);
	if (r < 0) {
		free(sl1);
		return r;
	}
	old_size = s->l1_size;
	old = xmalloc((uint64_t)old_size * 8 + 8);
	memcpy(old, s->l1, (uint64_t)old_size * 8);
	t = xzalloc((uint64_t)s->l1_size * 8 + 8);
	for (i = 0; i < sn->l1_size; i++)
		be64_put(t + i * 8, sl1[i]);
	r = fmt_file_pwrite(&s->f, t, (uint64_t)s->l1_size * 8, s->l1_offset);
	free(t);
	if (r == 0) {
		memset(s->l1, 0, (uint64_t)s->l1_size * 8);
		memcpy(s->l1, sl1, (uint64_t)sn->l1_size * 8);
		r = qcow2_tree_refs(s, old, old_size, -1, false);
	}
	if (r == 0)
		r = qcow2_tree_refs(s, s->l1, s->l1_size, 0, true);
	if (r == 0 && sn->disk_size != s->img->size) {
		be64_put(b, sn->disk_size);
		if ((r = fmt_file_pwrite(&s->f, b, 8, 24)) == 0)
			s->img->size = sn->disk_size;
	}
	free(old);
	free(sl1);
	return r;
}

int qcow2_snapshot_apply(struct fmt_image *img, const char *which)
{
	struct qcow2 *s = qcow2_of(img);
	int k, r;

	if (s->snapshot_view || !s->writable)
		return err_set(-EPERM, "image is not writable");
	pthread_mutex_lock(&s->lock);
	k = qcow2_snapshot_find(s, which);
	r = k < 0 ? err_set(-ENOENT, "Can't find snapshot") : snap_apply_locked(s, k);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : fmt_file_flush(&s->f);
}

static int snap_delete_locked(struct qcow2 *s, int k)
{
	struct qcow2_snap sn = s->snaps[k];
	uint64_t *l1;
	int r;

	memmove(&s->snaps[k], &s->snaps[k + 1],
		sizeof(*s->snaps) * (s->n_snaps - (uint32_t)k - 1));
	s->n_snaps--;
	if ((r = snap_table_write(s)) == 0) {
		l1 = snap_load_l1(s, &sn, &r);
		if (r == 0)
			r = qcow2_tree_refs(s, l1, sn.l1_size, -1, false);
		if (r == 0 && sn.l1_size)
			r = qcow2_free(s, sn.l1_offset,
				       ALIGN_UP((uint64_t)sn.l1_size * 8, s->cluster_size));
		free(l1);
	}
	if (r == 0)
		r = qcow2_tree_refs(s, s->l1, s->l1_size, 0, true);
	free(sn.id);
	free(sn.name);
	free(sn.extra_rest);
	return r;
}

int qcow2_snapshot_delete(struct fmt_image *img, const char *which)
{
	struct qcow2 *s = qcow2_of(img);
	int k, r;

	if (s->snapshot_view || !s->writable)
		return err_set(-EPERM, "image is not writable");
	pthread_mutex_lock(&s->lock);
	k = qcow2_snapshot_find(s, which);
	r = k < 0 ? err_set(-ENOENT, "Can't find snapshot") : snap_delete_locked(s, k);
	pthread_mutex_unlock(&s->lock);
	return r < 0 ? r : fmt_file_flush(&s->f);
}
