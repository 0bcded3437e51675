/*
 * The generic block layer: opening an image by name (format forced, or
 * probed from the first bytes, with raw as the fallback), backing chains
 * of any depth with loop detection, and the checked entry points that
 * forward to a driver's ops table (see struct fmt_driver in internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "internal.h"

#define FMT_PROBE_LEN 4096
#define FMT_MAX_CHAIN 4096

/* Identity of each file already in the chain being opened. */
struct chain_seen { dev_t dev; ino_t ino; struct chain_seen *up; int depth; };

static int image_probe(const char *filename, const struct fmt_driver **out)
{
	uint8_t *buf = xzalloc(FMT_PROBE_LEN);
	int fd, best = 0, i;
	ssize_t n;

	*out = NULL;
	fd = open(filename, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return err_set_errno(errno, "Could not open '%s'", filename);
	}
	n = pread(fd, buf, FMT_PROBE_LEN, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		return err_set_errno(errno, "Could not read '%s'", filename);
	}
	for (i = 0; fmt_drivers[i]; i++) {
		int s;

		if (!fmt_drivers[i]->probe)
			continue;
		s = fmt_drivers[i]->probe(buf, (size_t)n);
		if (s > best) {
			best = s;
			*out = fmt_drivers[i];
		}
	}
	free(buf);
	if (!*out)
		return err_set(-EINVAL, "Could not determine the format of '%s'",
			       filename);
	return 0;
}

static const struct fmt_driver *image_claimed(const char *filename)
{
	int i;

	for (i = 0; fmt_drivers[i]; i++)
		if (fmt_drivers[i]->claims && fmt_drivers[i]->claims(filename))
			return fmt_drivers[i];
	return NULL;
}

char *fmt_resolve_backing(const char *image, const char *backing)
{
	char *dir, *copy, *r;

	if (backing[0] == '/' || nbd_uri_is(backing) || !strchr(image, '/'))
		return xstrdup(backing);
	copy = xstrdup(image);
	dir = dirname(copy);
	r = xasprintf("%s/%s", dir, backing);
	free(copy);
	return r;
}

static int image_open(const char *filename, const struct fmt_open_opts *o,
		      struct chain_seen *seen, struct fmt_image **out);

static int image_open_backing(struct fmt_image *img, const struct fmt_open_opts *o,
			      struct chain_seen *seen)
{
	struct fmt_open_opts bo = { 0 };
	struct chain_seen *s;
	struct stat st;
	int r;

	if (stat(img->backing_path, &st) == 0) {
		for (s = seen; s; s = s->up)
			if (s->dev == st.st_dev && s->ino == st.st_ino)
				return err_set(-ELOOP, "Backing file loop: '%s' is "
					       "already in the chain of '%s'",
					       img->backing_path, img->filename);
	}
	if (seen && seen->depth >= FMT_MAX_CHAIN)
		return err_set(-ELOOP, "Backing chain of '%s' is too deep",
			       img->filename);
	bo.format = img->backing_fmt;
	bo.flags = o->flags & (FMT_O_SHARE | FMT_O_NOCACHE | FMT_O_NO_LOCK);
	bo.secrets = o->secrets;
	r = image_open(img->backing_path, &bo, seen, &img->backing);
	if (r < 0)
		err_prefix("Could not open backing file");
	return r;
}

static int image_open(const char *filename, const struct fmt_open_opts *o,
		      struct chain_seen *up, struct fmt_image **out)
{
	const struct fmt_driver *drv = image_claimed(filename);
	struct chain_seen seen = { 0, 0, up, up ? up->depth + 1 : 0 };
	struct fmt_image *img;
	struct stat st;
	int r;

	*out = NULL;
	if (drv && o->format && strcmp(o->format, "raw") && strcmp(o->format, drv->name))
		return err_set(-ENOTSUP, "%s: format '%s' over %s is not supported (the export is raw)",
			       filename, o->format, drv->name);
	/* An export's bytes are raw: "-f raw" on a URI keeps the driver
	 * that claimed it. */
	if (!drv && o->format && !(drv = fmt_driver_find(o->format)))
		return err_set(-EINVAL, "Unknown driver '%s'", o->format);
	if (!drv && (r = image_probe(filename, &drv)) < 0)
		return r;
	if (stat(filename, &st) == 0) {
		seen.dev = st.st_dev;
		seen.ino = st.st_ino;
	}
	img = xzalloc(sizeof(*img));
	img->drv = drv;
	img->filename = xstrdup(filename);
	img->flags = o->flags;
	img->probed = !o->format;
	r = drv->open(img, o);
	if (r < 0) {
		free(img->filename);
		free(img->backing_name);
		free(img->backing_fmt);
		free(img);
		return r;
	}
	if (img->backing_name && img->backing_name[0])
		img->backing_path = fmt_resolve_backing(img->filename, img->backing_name);
	if (img->backing_name && img->backing_name[0] &&
	    !(o->flags & FMT_O_NO_BACKING)) {
		r = image_open_backing(img, o, &seen);
		if (r < 0) {
			fmt_close(img);
			return r;
		}
	}
	*out = img;
	return 0;
}

int fmt_open(const char *filename, const struct fmt_open_opts *o,
	     struct fmt_image **out)
{
	static const struct fmt_open_opts none;
	int r = image_open(filename, o ? o : &none, NULL, out);

	if (r < 0 && strncmp(err_msg(), "Could not open '", 16) != 0)
		err_prefix("Could not open '%s'", filename);
	return r;
}

static int image_opts_flags(const struct kvlist *kv, unsigned *flags)
{
	const char *v;
	bool b;
	int r;

	if ((v = kv_get(kv, "cache.direct")) && (r = parse_bool(v, &b)) == 0 && b)
		*flags |= FMT_O_NOCACHE;
	if ((v = kv_get(kv, "file.locking")) && strcmp(v, "off") == 0)
		*flags |= FMT_O_NO_LOCK;
	if ((v = kv_get(kv, "read-only")) && parse_bool(v, &b) == 0 && b)
		*flags &= ~FMT_O_RDWR;
	if ((v = kv_get(kv, "force-share")) && parse_bool(v, &b) == 0 && b)
		*flags |= FMT_O_SHARE;
	if ((v = kv_get(kv, "backing")) && strcmp(v, "null") == 0)
		*flags |= FMT_O_NO_BACKING;
	return 0;
}

int fmt_open_image_opts(const char *optstr, unsigned flags,
			const struct secret_store *secrets, struct fmt_image **out)
{
	struct fmt_open_opts o = { 0 };
	struct kvlist kv = { 0 };
	const char *file;
	int r;

	r = kv_parse(optstr, NULL, &kv);
	if (r < 0)
		return r;
	file = kv_get(&kv, "file.filename");
	if (!file)
		file = kv_get(&kv, "filename");
	if (!file)
		file = kv_get(&kv, "file");
	if (!file) {
		kv_free(&kv);
		return err_set(-EINVAL, "A block device must be specified by "
			       "\"file.filename\" in --image-opts");
	}
	image_opts_flags(&kv, &flags);
	o.format = kv_get(&kv, "driver");
	o.flags = flags;
	o.opts = &kv;
	o.secrets = secrets;
	r = fmt_open(file, &o, out);
	kv_free(&kv);
	return r;
}

int fmt_close(struct fmt_image *img)
{
	int r = 0;

	if (!img)
		return 0;
	if (img->flags & FMT_O_RDWR)
		r = fmt_flush(img);
	fmt_close(img->backing);
	img->drv->close(img);
	free(img->filename);
	free(img->backing_name);
	free(img->backing_fmt);
	free(img->backing_path);
	free(img);
	return r;
}

const char *fmt_filename(const struct fmt_image *img) { return img->filename; }
const char *fmt_format(const struct fmt_image *img) { return img->drv->name; }
uint64_t fmt_size(const struct fmt_image *img) { return img->size; }
bool fmt_writable(const struct fmt_image *img) { return img->flags & FMT_O_RDWR; }
struct fmt_image *fmt_backing(const struct fmt_image *img) { return img->backing; }
const char *fmt_backing_name(const struct fmt_image *img) { return img->backing_name; }
const char *fmt_backing_format(const struct fmt_image *img) { return img->backing_fmt; }

const char *fmt_backing_path(const struct fmt_image *img)
{
	return img->backing_path ? img->backing_path : img->backing_name;
}

uint32_t fmt_cluster_size(const struct fmt_image *img)
{
	return img->drv->cluster_size ? img->drv->cluster_size(img) : 0;
}

int64_t fmt_allocated_size(const struct fmt_image *img)
{
	return img->drv->allocated ? img->drv->allocated(img) : -ENOTSUP;
}

bool fmt_is_dirty(const struct fmt_image *img)
{
	return img->drv->is_dirty && img->drv->is_dirty(img);
}

bool fmt_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	const uint64_t *q;
	size_t i;

	while (len && ((uintptr_t)p & 7)) {
		if (*p++)
			return false;
		len--;
	}
	q = (const uint64_t *)(const void *)p;
	for (i = 0; i < len / 8; i++)
		if (q[i])
			return false;
	p += len / 8 * 8;
	for (i = 0; i < len % 8; i++)
		if (p[i])
			return false;
	return true;
}
