/*
 * Helpers shared by the vm-img subcommands: the common options
 * (--object, --image-opts, -U, -q), opening images, cache modes, output
 * formats, and printing creation options and snapshot tables as qemu-img
 * does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

int img_common_opt(struct img_ctx *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_OBJECT:
		if (!c->secrets)
			c->secrets = secret_store_new();
		if (secret_add_object(c->secrets, arg) < 0) {
			report_err();
			return -1;
		}
		return 1;
	case OPT_IMAGE_OPTS:
		c->image_opts = true;
		return 1;
	case 'U':
		c->share = true;
		return 1;
	case 'q':
		c->quiet = true;
		return 1;
	default:
		return 0;
	}
}

void img_ctx_free(struct img_ctx *c)
{
	if (c->secrets)
		secret_store_free(c->secrets);
}

int img_open(const struct img_ctx *c, const char *name, const char *fmt,
	     unsigned flags, struct fmt_image **out)
{
	struct fmt_open_opts o = { .format = fmt, .secrets = c->secrets };
	int r;

	flags |= c->cache | (c->share ? FMT_O_SHARE : 0);
	if (c->share && (flags & FMT_O_RDWR)) {
		report("force-share=on can only be used with read-only images");
		return -1;
	}
	o.flags = flags;
	if (c->image_opts)
		r = fmt_open_image_opts(name, flags, c->secrets, out);
	else
		r = fmt_open(name, &o, out);
	if (r < 0) {
		report_err();
		return -1;
	}
	return 0;
}

int img_cache_flags(const char *mode, unsigned *flags)
{
	*flags &= ~(unsigned)(FMT_O_NOCACHE | FMT_O_UNSAFE);
	if (!strcmp(mode, "none") || !strcmp(mode, "directsync"))
		*flags |= FMT_O_NOCACHE;
	else if (!strcmp(mode, "unsafe"))
		*flags |= FMT_O_UNSAFE;
	else if (strcmp(mode, "writeback") && strcmp(mode, "writethrough")) {
		report("Invalid cache option: %s", mode);
		return -1;
	}
	return 0;
}

int img_output(const char *s, bool *json)
{
	if (!strcmp(s, "json"))
		*json = true;
	else if (!strcmp(s, "human"))
		*json = false;
	else {
		report("--output must be used with human or json as argument.");
		return -1;
	}
	return 0;
}

int img_bad_option(const char *cmd, int opt, char **argv)
{
	if (opt && opt < 256)
		if (!strcmp(cmd, "vm-img"))
		report("invalid option or missing argument -- '%c'", opt);
	else
		report("%s: invalid option or missing argument -- '%c'", cmd, opt);
	else if (!strcmp(cmd, "vm-img"))
		report("unrecognized option '%s'", argv[optind - 1]);
	else
		report("%s: unrecognized option or missing argument '%s'", cmd,
		       argv[optind - 1]);
	return 1;
}

void img_add_opts(char **acc, const char *more)
{
	char *n = *acc ? xasprintf("%s,%s", *acc, more) : xstrdup(more);

	free(*acc);
	*acc = n;
}

static int opt_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fmt_create_opt *)a)->name,
		      ((const struct fmt_create_opt *)b)->name);
}

int img_print_create_opts(const char *fmt)
{
	const struct fmt_create_opt *o = fmt_create_options(fmt);
	static const char *const types[] = { "str", "size", "bool (on/off)", "num" };
	struct fmt_create_opt *v;
	size_t n = 0, i;

	if (!o) {
		report("Unknown file format '%s'", fmt);
		return 1;
	}
	while (o[n].name)
		n++;
	v = xmalloc(sizeof(*v) * (n + 1));
	memcpy(v, o, sizeof(*v) * n);
	qsort(v, n, sizeof(*v), opt_cmp);
	printf("Supported options:\n");
	for (i = 0; i < n; i++) {
		char *k = xasprintf("%s=<%s>", v[i].name, types[v[i].type]);

		printf("  %-22s - %s\n", k, v[i].help);
		free(k);
	}
	free(v);
	return 0;
}

void img_print_snapshots(struct fmt_image *img)
{
	struct fmt_snapshot *l;
	size_t n, i;

	if (fmt_snapshot_list(img, &l, &n) < 0)
		return;
	printf("%s\n", fmt_snapshot_heading());
	for (i = 0; i < n; i++) {
		char *row = fmt_snapshot_row(&l[i]);

		printf("%s\n", row);
		free(row);
	}
	fmt_snapshots_free(l, n);
}

int img_parse_rate(const char *s, uint64_t *rate)
{
	if (size_parse(s, 0, rate) < 0) {
		report("Invalid rate limit specified. You may use k, M, G, T, P or E "
		       "suffixes for kilobytes, megabytes, gigabytes, terabytes, "
		       "petabytes and exabytes.");
		return -1;
	}
	return 0;
}

uint64_t img_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void img_pace(uint64_t rate, uint64_t start_ns, uint64_t bytes)
{
	uint64_t due, now;
	struct timespec t;

	if (!rate)
		return;
	due = start_ns + (uint64_t)((double)bytes * 1e9 / (double)rate);
	if ((now = img_now_ns()) >= due)
		return;
	t.tv_sec = (time_t)((due - now) / 1000000000u);
	t.tv_nsec = (long)((due - now) % 1000000000u);
	nanosleep(&t, NULL);
}
