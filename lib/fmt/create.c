/*
 * Image creation and measurement through the drivers: option validation
 * against the driver's creation option list, the size taken from the
 * backing file when none is given, and qemu-img's "fmt=... size=..."
 * summary printed in the driver's option order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "internal.h"

const struct fmt_create_opt *fmt_create_options(const char *format)
{
	const struct fmt_driver *d = fmt_driver_find(format);

	return d ? d->create_opts : NULL;
}

static int create_check_opts(const struct fmt_driver *d, const struct kvlist *opts)
{
	const struct fmt_create_opt *o;
	size_t i;

	for (i = 0; opts && i < opts->n; i++) {
		for (o = d->create_opts; o->name; o++)
			if (strcmp(o->name, opts->v[i].key) == 0)
				break;
		if (!o->name)
			return err_set(-EINVAL, "Invalid parameter '%s'", opts->v[i].key);
	}
	return 0;
}

static char *create_summary(const struct fmt_driver *d, uint64_t size,
			    const struct kvlist *opts)
{
	const struct fmt_create_opt *o;
	char *s = xasprintf("fmt=%s", d->name), *t;

	for (o = d->create_opts; o->name; o++) {
		const char *v = opts ? kv_get(opts, o->name) : NULL;

		if (strcmp(o->name, "size") == 0)
			t = xasprintf("%s size=%llu", s, (unsigned long long)size);
		else if (v || o->dflt)
			t = xasprintf("%s %s=%s", s, o->name, v ? v : o->dflt);
		else
			continue;
		free(s);
		s = t;
	}
	return s;
}

/* The size of the backing file named in opts, for a create without one. */
static int create_backing_size(const char *filename, const struct kvlist *opts,
			       uint64_t *size)
{
	const char *bf = kv_get(opts, "backing_file");
	struct fmt_open_opts o = { .format = kv_get(opts, "backing_fmt"),
				   .flags = FMT_O_SHARE };
	struct fmt_image *b;
	char *path;
	int r;

	if (!bf)
		return err_set(-EINVAL, "Image creation needs a size parameter");
	path = fmt_resolve_backing(filename, bf);
	r = fmt_open(path, &o, &b);
	free(path);
	if (r < 0)
		return r;
	*size = fmt_size(b);
	fmt_close(b);
	return 0;
}

int fmt_create(const char *format, const char *filename, uint64_t size,
	       const struct kvlist *opts, const struct secret_store *secrets,
	       char **summary)
{
	const struct fmt_driver *d = fmt_driver_find(format);
	static const struct kvlist none;
	const char *v;
	int r;

	if (!opts)
		opts = &none;
	if (summary)
		*summary = NULL;
	if (!d)
		return err_set(-EINVAL, "Unknown file format '%s'", format);
	if (!d->create)
		return err_set(-ENOTSUP, "Format driver '%s' does not support image "
			       "creation", format);
	r = create_check_opts(d, opts);
	if (r < 0)
		return r;
	if (opts && (v = kv_get(opts, "size")) && (r = size_parse(v, 0, &size)) < 0)
		return err_set(-EINVAL, "Invalid image size specified. You may use "
			       "k, M, G, T, P or E suffixes for kilobytes, "
			       "megabytes, gigabytes, terabytes, petabytes and "
			       "exabytes.");
	if (size == UINT64_MAX && (r = create_backing_size(filename, opts, &size)) < 0)
		return r;
	if (size > INT64_MAX)
		return err_set(-EINVAL, "Image size must be less than 8 EiB!");
	if (summary)
		*summary = create_summary(d, size, opts);
	r = d->create(filename, size, opts);
	if (r < 0)
		err_prefix("%s", filename);
	return r;
}

int fmt_measure(const char *format, const struct kvlist *opts, uint64_t size,
		struct fmt_image *src, struct fmt_measure *m)
{
	const struct fmt_driver *d = fmt_driver_find(format);
	static const struct kvlist none;
	int r;

	if (!opts)
		opts = &none;
	memset(m, 0, sizeof(*m));
	if (!d)
		return err_set(-EINVAL, "Unknown file format '%s'", format);
	if (!d->measure)
		return err_set(-ENOTSUP, "Format driver '%s' does not support size "
			       "measurement", format);
	r = create_check_opts(d, opts);
	if (r < 0)
		return r;
	return d->measure(opts, src ? fmt_size(src) : size, src, m);
}
