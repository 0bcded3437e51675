/*
 * qcow2 persistent dirty bitmaps (specification: "Bitmaps extension",
 * "Bitmap directory", "Bitmap table", "Bitmap data").  The extension in
 * the header points at a directory of entries (table offset and size,
 * flags in-use/auto, granularity, name); each bitmap's table lists the
 * host clusters holding its bits (0: all zeros, 1: all ones).  The
 * extension counts only while the autoclear bit "bitmaps" is set.
 *
 * Here: reading the directory (for info, check's reference counting and
 * convert --bitmaps), reading one bitmap's bits and adding a bitmap.  An
 * addition writes the bits, the table and a whole new directory into new
 * clusters, then switches the header, then frees the old directory, so a
 * kill leaves at worst leaked clusters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/common.h"
#include "internal.h"

#define BM_IN_USE 1u
#define BM_AUTO 2u
#define BM_MAX_DIR (64u << 20)
#define BM_TABLE_MASK 0x00fffffffffffe00ull

/* One directory entry as found. */
struct bm_ent {
	uint64_t table_off;
	uint32_t table_size;      /* entries */
	uint32_t flags;
	uint8_t gran_bits;
	char name[1024];
};

/* The bitmaps extension: NULL when there is none (or it does not count). */
static struct qcow2_ext *bm_ext(struct qcow2 *s)
{
	size_t i;

	if (!(s->autoclear & QCOW2_AUTOCLEAR_BITMAPS))
		return NULL;
	for (i = 0; i < s->n_exts; i++)
		if (s->exts[i].type == QCOW2_EXT_BITMAPS && s->exts[i].len >= 24)
			return &s->exts[i];
	return NULL;
}

/* Read the raw directory; *n entries, *dir (free it) of *size bytes. */
static int bm_dir_read(struct qcow2 *s, uint8_t **dir, uint64_t *size,
		       uint64_t *off, uint32_t *n)
{
	struct qcow2_ext *e = bm_ext(s);

	*dir = NULL;
	*size = *off = 0;
	*n = 0;
	if (!e)
		return 0;
	*n = be32_get(e->data);
	*size = be64_get(e->data + 8);
	*off = be64_get(e->data + 16);
	if (*size > BM_MAX_DIR || *off % s->cluster_size || *off + *size > s->file_end)
		return err_set(-EINVAL, "%s: bitmap directory is invalid",
			       s->img->filename);
	*dir = xzalloc(*size + 1);
	return fmt_file_pread(&s->f, *dir, *size, *off);
}

/* Parse the entry at *pos of dir; advances *pos. */
static int bm_ent_parse(struct qcow2 *s, const uint8_t *dir, uint64_t size,
			uint64_t *pos, struct bm_ent *b)
{
	const uint8_t *p = dir + *pos;
	uint32_t extra, nl;

	if (size - *pos < 24)
		return err_set(-EINVAL, "%s: bitmap directory entry overruns the "
			       "directory", s->img->filename);
	b->table_off = be64_get(p);
	b->table_size = be32_get(p + 8);
	b->flags = be32_get(p + 12);
	b->gran_bits = p[17];
	nl = be16_get(p + 18);
	extra = be32_get(p + 20);
	if (nl >= sizeof(b->name) || (uint64_t)extra + nl > size - *pos - 24 ||
	    b->table_off % s->cluster_size || b->gran_bits < 9 || b->gran_bits > 31 ||
	    b->table_off + (uint64_t)b->table_size * 8 > s->file_end)
		return err_set(-EINVAL, "%s: bitmap directory entry is invalid",
			       s->img->filename);
	memcpy(b->name, p + 24 + extra, nl);
	b->name[nl] = 0;
	*pos += ALIGN_UP(24 + (uint64_t)extra + nl, 8);
	return 0;
}

/* Call fn for each entry. */
static int bm_each(struct qcow2 *s, int (*fn)(struct qcow2 *s, const struct bm_ent *b,
					     void *arg), void *arg)
{
	uint64_t size, off, pos = 0;
	struct bm_ent b;
	uint8_t *dir;
	uint32_t n, i;
	int r = bm_dir_read(s, &dir, &size, &off, &n);

	for (i = 0; r == 0 && i < n; i++)
		if ((r = bm_ent_parse(s, dir, size, &pos, &b)) == 0)
			r = fn(s, &b, arg);
	free(dir);
	return r;
}

/* ---- host ranges, for check ---- */

struct bm_ranges { uint64_t (*r)[2]; size_t n, cap; };

static void ranges_add(struct bm_ranges *g, uint64_t off, uint64_t len)
{
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->r = xrealloc(g->r, g->cap * sizeof(*g->r));
	}
	g->r[g->n][0] = off;
	g->r[g->n][1] = len;
	g->n++;
}

static int ranges_of(struct qcow2 *s, const struct bm_ent *b, void *arg)
{
	struct bm_ranges *g = arg;
	uint64_t *t, i, d;
	int r;

	ranges_add(g, b->table_off, (uint64_t)b->table_size * 8);
	t = xmalloc((uint64_t)b->table_size * 8 + 8);
	r = fmt_file_pread(&s->f, t, (uint64_t)b->table_size * 8, b->table_off);
	for (i = 0; r == 0 && i < b->table_size; i++)
		if ((d = be64_get(&t[i]) & BM_TABLE_MASK))
			ranges_add(g, d, s->cluster_size);
	free(t);
	return r;
}

int qcow2_bitmap_ranges(struct qcow2 *s, uint64_t (**ranges)[2], size_t *n)
{
	struct bm_ranges g = { 0 };
	uint64_t size, off;
	uint8_t *dir;
	uint32_t nb;
	int r = bm_dir_read(s, &dir, &size, &off, &nb);

	free(dir);
	if (r == 0 && size)
		ranges_add(&g, off, size);
	if (r == 0)
		r = bm_each(s, ranges_of, &g);
	*ranges = g.r;
	*n = g.n;
	return r;
}

/* ---- listing, for info and convert --bitmaps ---- */

struct bm_list { struct fmt_bitmap *l; size_t n; };

static int list_one(struct qcow2 *s, const struct bm_ent *b, void *arg)
{
	struct bm_list *bl = arg;
	struct fmt_bitmap *m;

	bl->l = xrealloc(bl->l, (bl->n + 1) * sizeof(*bl->l));
	m = &bl->l[bl->n++];
	m->name = xstrdup(b->name);
	m->granularity = 1u << b->gran_bits;
	m->in_use = b->flags & BM_IN_USE;
	m->enabled = b->flags & BM_AUTO;
	return 0;
}

int qcow2_bitmap_list(struct fmt_image *img, struct fmt_bitmap **l, size_t *n)
{
	struct qcow2 *s = qcow2_of(img);
	struct bm_list bl = { 0 };
	int r;

	pthread_mutex_lock(&s->lock);
	r = bm_each(s, list_one, &bl);
	pthread_mutex_unlock(&s->lock);
	if (r < 0) {
		fmt_bitmaps_free(bl.l, bl.n);
		return r;
	}
	*l = bl.l;
	*n = bl.n;
	return 0;
}

/* qemu-img info's "bitmaps" list (only when the image has some). */
void qcow2_bitmap_info(struct qcow2 *s, json_t *d)
{
	struct fmt_bitmap *l;
	json_t *a, *o, *f;
	size_t n, i;

	if (!bm_ext(s) || qcow2_bitmap_list(s->img, &l, &n) < 0)
		return;
	if (!n) {                   /* qemu-img shows no empty list */
		free(l);
		return;
	}
	a = json_array();
	for (i = 0; i < n; i++) {
		o = json_object();
		f = json_array();
		if (l[i].in_use)
			json_array_append_new(f, json_string("in-use"));
		if (l[i].enabled)
			json_array_append_new(f, json_string("auto"));
		json_object_set_new(o, "flags", f);
		json_object_set_new(o, "name", json_string(l[i].name));
		json_object_set_new(o, "granularity", json_integer(l[i].granularity));
		json_array_append_new(a, o);
	}
	fmt_bitmaps_free(l, n);
	json_object_set_new(d, "bitmaps", a);
}

/* ---- reading the bits ---- */

struct bm_read { const char *name; uint8_t *bits; size_t len; bool found; };

/* Load the bits of bitmap b: *len bytes for the image's size. */
static int bits_load(struct qcow2 *s, const struct bm_ent *b, uint8_t **bits, size_t *len)
{
	uint64_t cs = s->cluster_size, i, d, e;
	uint64_t granules = DIV_ROUND_UP(s->img->size, 1ull << b->gran_bits);
	int r = 0;

	*len = (size_t)DIV_ROUND_UP(granules, 8);
	*bits = xzalloc(*len + 1);
	if (DIV_ROUND_UP(*len, cs) > b->table_size)
		return err_set(-EINVAL, "%s: bitmap '%s' has a short table",
			       s->img->filename, b->name);
	for (i = 0; r == 0 && i * cs < *len; i++) {
		size_t n = (size_t)MIN(cs, *len - i * cs);
		uint8_t ent[8];

		if ((r = fmt_file_pread(&s->f, ent, 8, b->table_off + i * 8)) < 0)
			break;
		e = be64_get(ent);
		if ((d = e & BM_TABLE_MASK))
			r = fmt_file_pread(&s->f, *bits + i * cs, n, d);
		else if (e & 1)
			memset(*bits + i * cs, 0xff, n);
	}
	return r;
}

static int read_one(struct qcow2 *s, const struct bm_ent *b, void *arg)
{
	struct bm_read *br = arg;
	size_t i;

	if (br->found || strcmp(b->name, br->name))
		return 0;
	br->found = true;
	for (i = 0; i < s->n_track; i++)       /* being tracked: memory is newer */
		if (!strcmp(s->track[i].name, b->name)) {
			br->len = s->track[i].len;
			br->bits = xmalloc(br->len + 1);
			memcpy(br->bits, s->track[i].bits, br->len);
			return 0;
		}
	return bits_load(s, b, &br->bits, &br->len);
}

int qcow2_bitmap_read(struct fmt_image *img, const char *name, uint8_t **bits,
		      size_t *len)
{
	struct qcow2 *s = qcow2_of(img);
	struct bm_read br = { .name = name };
	int r;

	pthread_mutex_lock(&s->lock);
	r = bm_each(s, read_one, &br);
	pthread_mutex_unlock(&s->lock);
	if (r == 0 && !br.found)
		r = err_set(-ENOENT, "Dirty bitmap '%s' not found", name);
	if (r < 0) {
		free(br.bits);
		return r;
	}
	*bits = br.bits;
	*len = br.len;
	return 0;
}

/* ---- adding one ---- */

/* Write the bits into new clusters and the table that lists them;
 * returns the table's offset and entry count. */
static int add_table(struct qcow2 *s, const uint8_t *bits, size_t len,
		     uint64_t *toff, uint32_t *tsize)
{
	uint64_t cs = s->cluster_size, n = DIV_ROUND_UP(len, cs), i;
	uint8_t *t = xzalloc(ALIGN_UP(n * 8, cs)), *c = xmalloc(cs);
	int64_t off;
	int r = 0;

	for (i = 0; r == 0 && i < n; i++) {
		size_t k = (size_t)MIN(cs, len - i * cs);

		if (fmt_is_zero(bits + i * cs, k))
			continue;
		memset(c, 0, cs);
		memcpy(c, bits + i * cs, k);
		if ((off = qcow2_alloc(s, 1)) < 0)
			r = (int)off;
		else if ((r = fmt_file_pwrite(&s->f, c, cs, (uint64_t)off)) == 0)
			be64_put(t + i * 8, (uint64_t)off);
	}
	if (r == 0 && (off = qcow2_alloc(s, DIV_ROUND_UP(n * 8, cs))) < 0)
		r = (int)off;
	if (r == 0)
		r = fmt_file_pwrite(&s->f, t, ALIGN_UP(n * 8, cs), (uint64_t)off);
	*toff = (uint64_t)off;
	*tsize = (uint32_t)n;
	free(t);
	free(c);
	return r;
}

/* Put the extension (nb bitmaps, directory at off of size bytes) in s. */
static void set_ext(struct qcow2 *s, uint32_t nb, uint64_t size, uint64_t off)
{
	struct qcow2_ext *e = bm_ext(s);

	if (!e) {
		size_t i;

		for (i = 0; i < s->n_exts && s->exts[i].type != QCOW2_EXT_BITMAPS; i++)
			;
		if (i == s->n_exts) {
			s->exts = xrealloc(s->exts, (s->n_exts + 1) * sizeof(*s->exts));
			s->exts[s->n_exts++] = (struct qcow2_ext){ QCOW2_EXT_BITMAPS, 24,
								  xzalloc(24) };
		}
		e = &s->exts[i];
		if (e->len < 24) {
			e->data = xrealloc(e->data, 24);
			e->len = 24;
		}
		s->autoclear |= QCOW2_AUTOCLEAR_BITMAPS;
	}
	memset(e->data, 0, 24);
	be32_put(e->data, nb);
	be64_put(e->data + 8, size);
	be64_put(e->data + 16, off);
}

static int add_locked(struct qcow2 *s, const struct fmt_bitmap *b,
		      const uint8_t *bits, size_t len)
{
	uint64_t size, off, toff, nsize, nl = strlen(b->name);
	uint8_t *dir, *nd;
	uint32_t nb, tsize;
	int64_t noff;
	int r;

	if ((r = bm_dir_read(s, &dir, &size, &off, &nb)) < 0 ||
	    (r = add_table(s, bits, len, &toff, &tsize)) < 0) {
		free(dir);
		return r;
	}
	nsize = size + ALIGN_UP(24 + nl, 8);
	nd = xzalloc(ALIGN_UP(nsize, s->cluster_size));
	if (size)
		memcpy(nd, dir, size);
	be64_put(nd + size, toff);
	be32_put(nd + size + 8, tsize);
	be32_put(nd + size + 12, b->enabled ? BM_AUTO : 0);
	nd[size + 16] = 1;                          /* dirty tracking bitmap */
	nd[size + 17] = (uint8_t)__builtin_ctz(b->granularity);
	be16_put(nd + size + 18, (uint16_t)nl);
	memcpy(nd + size + 24, b->name, nl);
	if ((noff = qcow2_alloc(s, DIV_ROUND_UP(nsize, s->cluster_size))) < 0)
		r = (int)noff;
	else if ((r = fmt_file_pwrite(&s->f, nd, ALIGN_UP(nsize, s->cluster_size),
				      (uint64_t)noff)) == 0 &&
		 (r = fmt_file_flush(&s->f)) == 0) {
		set_ext(s, nb + 1, nsize, (uint64_t)noff);
		r = qcow2_header_write(s);
	}
	if (r == 0 && size)
		r = qcow2_free(s, off, ALIGN_UP(size, s->cluster_size));
	free(nd);
	free(dir);
	return r;
}

int qcow2_bitmap_add(struct fmt_image *img, const struct fmt_bitmap *b,
		     const uint8_t *bits)
{
	struct qcow2 *s = qcow2_of(img);
	struct fmt_bitmap *l;
	size_t n, i, len;
	int r;

	if (s->version < 3)
		return err_set(-ENOTSUP, "Cannot store dirty bitmaps in qcow2 v2 files");
	if (!b->granularity || (b->granularity & (b->granularity - 1)) ||
	    b->granularity < 512 || strlen(b->name) > 1023)
		return err_set(-EINVAL, "Bitmap '%s': invalid name or granularity",
			       b->name);
	if ((r = qcow2_bitmap_list(img, &l, &n)) < 0)
		return r;
	for (i = 0; i < n && strcmp(l[i].name, b->name); i++)
		;
	fmt_bitmaps_free(l, n);
	if (i < n)
		return err_set(-EEXIST, "Bitmap already exists: %s", b->name);
	len = (size_t)DIV_ROUND_UP(DIV_ROUND_UP(img->size, b->granularity), 8);
	pthread_mutex_lock(&s->lock);
	if ((r = qcow2_bitmap_track_end(s)) == 0)
		r = add_locked(s, b, bits, len);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- changing or removing one ---- */

/* Free a bitmap's table and data clusters (after nothing points at them). */
static int free_table(struct qcow2 *s, uint64_t toff, uint32_t tsize)
{
	uint64_t *t = xmalloc((uint64_t)tsize * 8 + 8), d, i;
	int r = fmt_file_pread(&s->f, t, (uint64_t)tsize * 8, toff);

	for (i = 0; r == 0 && i < tsize; i++)
		if ((d = be64_get(&t[i]) & BM_TABLE_MASK))
			r = qcow2_free(s, d, s->cluster_size);
	free(t);
	if (r == 0 && tsize)
		r = qcow2_free(s, toff, ALIGN_UP((uint64_t)tsize * 8, s->cluster_size));
	return r;
}

/* Drop the bitmaps extension (no bitmap left). */
static void drop_ext(struct qcow2 *s)
{
	size_t i;

	for (i = 0; i < s->n_exts; i++)
		if (s->exts[i].type == QCOW2_EXT_BITMAPS) {
			free(s->exts[i].data);
			s->exts[i] = s->exts[--s->n_exts];
			break;
		}
	s->autoclear &= ~QCOW2_AUTOCLEAR_BITMAPS;
}

/* Write directory nd of nsize bytes (nb entries) and switch the header. */
static int dir_switch(struct qcow2 *s, const uint8_t *nd, uint64_t nsize, uint32_t nb)
{
	int64_t noff = 0;
	int r = 0;

	if (nb) {
		if ((noff = qcow2_alloc(s, DIV_ROUND_UP(nsize, s->cluster_size))) < 0)
			return (int)noff;
		if ((r = fmt_file_pwrite(&s->f, nd, ALIGN_UP(nsize, s->cluster_size),
					 (uint64_t)noff)) < 0 ||
		    (r = fmt_file_flush(&s->f)) < 0)
			return r;
		set_ext(s, nb, nsize, (uint64_t)noff);
	} else
		drop_ext(s);
	return qcow2_header_write(s);
}

/* Find entry `name`: its position and length in dir. */
static int find_ent(struct qcow2 *s, const uint8_t *dir, uint64_t size, uint32_t n,
		    const char *name, uint64_t *at, uint64_t *len, struct bm_ent *b)
{
	uint64_t pos = 0, start;
	uint32_t i;
	int r;

	for (i = 0; i < n; i++) {
		start = pos;
		if ((r = bm_ent_parse(s, dir, size, &pos, b)) < 0)
			return r;
		if (!strcmp(b->name, name)) {
			*at = start;
			*len = pos - start;
			return 0;
		}
	}
	return err_set(-ENOENT, "Dirty bitmap '%s' not found", name);
}

static int change_locked(struct qcow2 *s, const char *name, const struct fmt_bitmap *b,
			 const uint8_t *bits, size_t len)
{
	uint64_t size, off, at = 0, el = 0, toff = 0, nsize;
	uint32_t nb, tsize = 0, fl;
	struct bm_ent e;
	uint8_t *dir, *nd;
	int r;

	if ((r = bm_dir_read(s, &dir, &size, &off, &nb)) < 0 ||
	    (r = find_ent(s, dir, size, nb, name, &at, &el, &e)) < 0 ||
	    (bits && (r = add_table(s, bits, len, &toff, &tsize)) < 0)) {
		free(dir);
		return r;
	}
	nd = xzalloc(ALIGN_UP(size, s->cluster_size) + 8);
	memcpy(nd, dir, at);
	nsize = size;
	if (!b) {                                   /* remove */
		memcpy(nd + at, dir + at + el, size - at - el);
		nsize -= el;
	} else {
		memcpy(nd + at, dir + at, size - at);
		fl = (e.flags & ~BM_AUTO) | (b->enabled ? BM_AUTO : 0);
		if (bits) {
			be64_put(nd + at, toff);
			be32_put(nd + at + 8, tsize);
			fl &= ~BM_IN_USE;
		}
		be32_put(nd + at + 12, fl);
	}
	r = dir_switch(s, nd, nsize, b ? nb : nb - 1);
	if (r == 0)
		r = qcow2_free(s, off, ALIGN_UP(size, s->cluster_size));
	if (r == 0 && (!b || bits))
		r = free_table(s, e.table_off, e.table_size);
	free(nd);
	free(dir);
	return r;
}

int qcow2_bitmap_change(struct fmt_image *img, const char *name,
			const struct fmt_bitmap *b, const uint8_t *bits)
{
	struct qcow2 *s = qcow2_of(img);
	struct fmt_bitmap *l;
	size_t n, i, len = 0;
	int r;

	if ((r = qcow2_bitmap_list(img, &l, &n)) < 0)
		return r;
	for (i = 0; i < n && strcmp(l[i].name, name); i++)
		;
	if (i < n)
		len = (size_t)DIV_ROUND_UP(DIV_ROUND_UP(img->size, l[i].granularity), 8);
	fmt_bitmaps_free(l, n);
	if (i == n)
		return err_set(-ENOENT, "Dirty bitmap '%s' not found", name);
	pthread_mutex_lock(&s->lock);
	if ((r = qcow2_bitmap_track_end(s)) == 0)
		r = change_locked(s, name, b, bits, len);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* ---- keeping enabled bitmaps up to date while the image is written ----
 * Before the first change of guest data, every enabled bitmap that is
 * not already in use gets its bits loaded into memory and its directory
 * entry marked in-use (a new directory, flushed, then the header switch),
 * so that a kill at any later point leaves the bitmap flagged
 * inconsistent rather than silently missing writes.  Writes set bits in
 * memory; a clean close stores each bitmap with the in-use flag cleared. */

static void track_free(struct qcow2 *s)
{
	size_t i;

	for (i = 0; i < s->n_track; i++) {
		free(s->track[i].name);
		free(s->track[i].bits);
	}
	free(s->track);
	s->track = NULL;
	s->n_track = 0;
	s->track_on = false;
}

/* Load entry b for tracking; mark it in-use in the new directory nd. */
static int track_add(struct qcow2 *s, const struct bm_ent *b, uint8_t *nd_ent)
{
	struct qcow2_bmtrack *t;

	s->track = xrealloc(s->track, (s->n_track + 1) * sizeof(*s->track));
	t = &s->track[s->n_track++];
	*t = (struct qcow2_bmtrack){ .name = xstrdup(b->name), .gran_bits = b->gran_bits };
	be32_put(nd_ent + 12, b->flags | BM_IN_USE);
	return bits_load(s, b, &t->bits, &t->len);
}

int qcow2_bitmap_track_begin(struct qcow2 *s)
{
	uint64_t size, off, pos = 0, at;
	uint8_t *dir, *nd;
	struct bm_ent b;
	uint32_t n, i;
	int r;

	if ((r = bm_dir_read(s, &dir, &size, &off, &n)) < 0) {
		free(dir);
		return r;
	}
	nd = xzalloc(ALIGN_UP(size, s->cluster_size) + 8);
	if (size)
		memcpy(nd, dir, size);
	for (i = 0; r == 0 && i < n; i++) {
		at = pos;
		if ((r = bm_ent_parse(s, dir, size, &pos, &b)) == 0 &&
		    (b.flags & (BM_AUTO | BM_IN_USE)) == BM_AUTO)
			r = track_add(s, &b, nd + at);
	}
	if (r == 0 && s->n_track && (r = dir_switch(s, nd, size, n)) == 0)
		r = qcow2_free(s, off, ALIGN_UP(size, s->cluster_size));
	free(nd);
	free(dir);
	if (r < 0)
		track_free(s);
	else
		s->track_on = true;
	return r;
}

void qcow2_bitmap_track_mark(struct qcow2 *s, uint64_t off, uint64_t len)
{
	uint64_t g, a, z;
	size_t i;

	if (!len || off >= s->img->size)
		return;
	len = MIN(len, s->img->size - off);
	for (i = 0; i < s->n_track; i++) {
		struct qcow2_bmtrack *t = &s->track[i];

		a = off >> t->gran_bits;
		z = (off + len - 1) >> t->gran_bits;
		for (g = a; g <= z && g / 8 < t->len; g++) {
			if (!(g & 7) && z - g >= 7) {
				t->bits[g / 8] = 0xff;
				g += 7;
			} else
				t->bits[g / 8] |= (uint8_t)(1u << (g & 7));
		}
	}
}

int qcow2_bitmap_track_end(struct qcow2 *s)
{
	size_t i;
	int r = 0;

	for (i = 0; i < s->n_track && r == 0; i++) {
		struct qcow2_bmtrack *t = &s->track[i];
		struct fmt_bitmap b = { .name = t->name, .enabled = true,
					.granularity = 1u << t->gran_bits };

		r = change_locked(s, t->name, &b, t->bits, t->len);
	}
	track_free(s);
	return r;
}
