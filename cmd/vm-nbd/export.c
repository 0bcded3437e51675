/*
 * The export of vm-nbd: one image opened through lib/fmt, seen through a
 * window (-o offset, -P partition), with qemu-nbd's policies applied on
 * the way: --cache (writethrough: every write stable before the reply;
 * unsafe: flush does nothing), --discard (trim reaches the image or is
 * ignored), --detect-zeroes (writes of zeros become zero writes), -s (a
 * temporary qcow2 overlay takes the writes), -l (an internal snapshot,
 * read-only).
 *
 * Requests arrive here already checked against the export's bounds
 * (transmit.c); this file only adds the window's offset.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "vm-nbd.h"

static bool all_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Every request holds the export's lock shared; the control channel
 * (control.c: snapshots, resize) holds it exclusively. */
#define LOCKED(e, expr) ({ pthread_rwlock_rdlock(&(e)->lock); int r_ = (expr); \
			   pthread_rwlock_unlock(&(e)->lock); r_; })

int export_read(struct export *e, void *buf, uint64_t off, size_t len)
{
	return len ? LOCKED(e, fmt_read(e->img, buf, e->offset + off, len)) : 0;
}

int export_flush(struct export *e)
{
	return e->unsafe ? 0 : LOCKED(e, fmt_flush(e->img));
}

static int after_write(struct export *e, int r, bool fua)
{
	if (r >= 0 && (fua || e->writethrough))
		r = fmt_flush(e->img);
	return r;
}

static int write_unlocked(struct export *e, const void *buf, uint64_t off, size_t len,
			  bool fua)
{
	int r;

	if (!len)
		return 0;
	if (e->detect_zeroes != DZ_OFF && all_zero(buf, len))
		r = fmt_write_zeroes(e->img, e->offset + off, len,
				     e->detect_zeroes == DZ_UNMAP ? FMT_W_MAY_UNMAP : 0);
	else
		r = fmt_write(e->img, buf, e->offset + off, len, 0);
	return after_write(e, r, fua);
}

int export_write(struct export *e, const void *buf, uint64_t off, size_t len,
		 bool fua)
{
	return LOCKED(e, write_unlocked(e, buf, off, len, fua));
}

int export_write_zeroes(struct export *e, uint64_t off, uint64_t len,
			bool no_hole, bool fast, bool fua)
{
	unsigned flags = 0;

	if (!len)
		return 0;
	if (!no_hole && e->discard)
		flags |= FMT_W_MAY_UNMAP;
	if (fast)
		flags |= FMT_W_NO_FALLBACK;
	return LOCKED(e, after_write(e, fmt_write_zeroes(e->img, e->offset + off, len, flags),
				     fua));
}

int export_trim(struct export *e, uint64_t off, uint64_t len, bool fua)
{
	if (!len || !e->discard)
		return 0;
	return LOCKED(e, after_write(e, fmt_discard(e->img, e->offset + off, len), fua));
}

/* base:allocation as QEMU maps it: HOLE where no layer stores data,
 * ZERO where reads return zeros; the depth of the layer that allocates. */
int export_block_status(struct export *e, uint64_t off, uint64_t len,
			struct export_extent *ext)
{
	struct fmt_extent x;
	int r;

	if (off + len > e->size)
		len = e->size - off;
	r = LOCKED(e, fmt_block_status(e->img, e->offset + off, len, true, &x));
	if (r < 0)
		return r;
	ext->length = MIN(x.length, len);
	ext->flags = (x.status & FMT_ST_DATA ? 0 : NBD_STATE_HOLE) |
		     (x.status & FMT_ST_ZERO ? NBD_STATE_ZERO : 0);
	ext->depth = x.status & FMT_ST_ALLOCATED ? (uint32_t)x.depth + 1 : 0;
	return 0;
}

/* ---- opening ---- */

static int cache_flags(const struct nbd_config *cfg, struct export *e,
		       unsigned *flags)
{
	const char *c = cfg->cache ? cfg->cache : "writeback";

	if (!strcmp(c, "none") || !strcmp(c, "off")) {
		*flags |= FMT_O_NOCACHE;
	} else if (!strcmp(c, "directsync")) {
		*flags |= FMT_O_NOCACHE;
		e->writethrough = true;
	} else if (!strcmp(c, "writethrough")) {
		e->writethrough = true;
	} else if (!strcmp(c, "unsafe")) {
		e->unsafe = true;
	} else if (strcmp(c, "writeback")) {
		return err_set(-EINVAL, "Invalid cache mode '%s'", c);
	}
	return 0;
}

static int open_image(const struct nbd_config *cfg, unsigned flags,
		      const char *snapshot, struct fmt_image **img)
{
	struct fmt_open_opts o = {
		.format = cfg->format, .flags = flags, .snapshot = snapshot,
		.secrets = cfg->secrets,
	};

	if (cfg->image_opts)
		return fmt_open_image_opts(cfg->filename, flags, cfg->secrets, img);
	return fmt_open(cfg->filename, &o, img);
}

/* -s: a qcow2 overlay in $TMPDIR whose backing file is the image; the
 * file is unlinked once open, so it vanishes with the process. */
static int open_overlay(const struct nbd_config *cfg, unsigned flags,
			struct export *e)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	struct fmt_image *base;
	struct kvlist kv = { 0 };
	char *path, *abs;
	int fd, r;

	r = open_image(cfg, flags & ~FMT_O_RDWR, NULL, &base);
	if (r < 0)
		return r;
	abs = realpath(fmt_filename(base), NULL);
	kv_set(&kv, "backing_file", abs ? abs : fmt_filename(base));
	kv_set(&kv, "backing_fmt", fmt_format(base));
	fmt_close(base);
	free(abs);
	path = xasprintf("%s/vm-nbd.snapshot.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		r = err_set_errno(errno, "%s", path);
		goto out;
	}
	close(fd);
	r = fmt_create("qcow2", path, UINT64_MAX, &kv, cfg->secrets, NULL);
	if (r == 0) {
		struct fmt_open_opts o = { .format = "qcow2", .flags = flags | FMT_O_RDWR };

		r = fmt_open(path, &o, &e->img);
	}
	unlink(path);
out:
	free(path);
	kv_free(&kv);
	return r;
}

static int open_window(const struct nbd_config *cfg, struct export *e)
{
	e->image_size = fmt_size(e->img);
	if (cfg->offset > e->image_size)
		return err_set(-EINVAL, "offset %llu is beyond the end of the image",
			       (unsigned long long)cfg->offset);
	e->offset = cfg->offset;
	e->size = e->image_size - cfg->offset;
	if (cfg->partition) {
		uint64_t start, len;
		int r = partition_find(e, cfg->partition, &start, &len);

		if (r < 0)
			return r;
		e->offset += start;
		e->size = len;
	}
	return 0;
}

int export_open(const struct nbd_config *cfg, struct export **out)
{
	struct export *e = xzalloc(sizeof(*e));
	unsigned flags = cfg->read_only || cfg->load_snapshot ? 0 : FMT_O_RDWR;
	pthread_rwlockattr_t la;
	int r;

	/* a control request waiting for the lock goes before new requests */
	pthread_rwlockattr_init(&la);
	pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->lock, &la);
	pthread_rwlockattr_destroy(&la);
	if ((r = cache_flags(cfg, e, &flags)) < 0)
		goto fail;
	if (cfg->discard)
		flags |= FMT_O_UNMAP;
	if (cfg->snapshot && !cfg->load_snapshot)
		r = open_overlay(cfg, flags, e);
	else
		r = open_image(cfg, flags, cfg->load_snapshot, &e->img);
	if (r < 0)
		goto fail;
	if ((r = open_window(cfg, e)) < 0)
		goto fail;
	e->writable = fmt_writable(e->img);
	e->discard = cfg->discard;
	e->detect_zeroes = cfg->detect_zeroes;
	e->min_block = 1;
	e->pref_block = 4096;
	e->max_payload = NBD_MAX_PAYLOAD;
	e->name = cfg->export_name;
	e->description = cfg->description;
	splice_setup(e, cfg);
	*out = e;
	return 0;
fail:
	export_close(e);
	return r;
}

void export_close(struct export *e)
{
	if (!e)
		return;
	if (e->img && fmt_close(e->img) < 0)
		log_warn("%s", err_msg());
	splice_close(e);
	pthread_rwlock_destroy(&e->lock);
	free(e);
}
