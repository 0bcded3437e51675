/*
 * vm-img convert: copy one or more images (concatenated) into a new or
 * existing (-n) image of any writable format.  The source is walked by
 * block status so holes and zero extents are never read; data chunks are
 * checked for zero runs of -S bytes (default 4 KiB) that are skipped when
 * the target reads as zeros.  -m workers read, detect zeros and compress
 * (-c, on all cores) in parallel; without -W chunks are written in order
 * (convert-copy.c).  With -B only what the top source layer allocates is
 * copied, the rest is left to the new backing file.  -C copies data with
 * copy_file_range when both sides are plain files; -r limits the rate.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"
#include "convert.h"

struct conv_opts {
	const char *fmt, *out_fmt, *backing, *backing_fmt, *snapshot;
	char *opts;
	uint64_t sparse, rate;
	unsigned tcache;         /* -t, default unsafe as qemu-img's */
	int threads;
	bool compress, no_create, target_zero, unordered, progress, target_opts;
	bool sparse_set, copy_range, bitmaps, skip_broken;
};

static const struct option conv_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "target-image-opts", no_argument, NULL, OPT_TARGET_OPTS },
	{ "target-is-zero", no_argument, NULL, OPT_TARGET_ZERO },
	{ "bitmaps", no_argument, NULL, OPT_BITMAPS },
	{ "skip-broken-bitmaps", no_argument, NULL, OPT_SKIP_BROKEN },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char *conv_snapshot_arg(const char *s)
{
	if (!strncmp(s, "snapshot.name=", 14))
		return s + 14;
	if (!strncmp(s, "snapshot.id=", 12))
		return s + 12;
	return s;
}

static int conv_parse(int argc, char **argv, struct img_ctx *ctx,
		      struct conv_opts *o)
{
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:O:B:F:o:l:S:m:t:T:r:cCnpqUW",
				conv_lo, NULL)) != -1) {
		if ((r = img_common_opt(ctx, c, optarg)) != 0) {
			if (r < 0)
				return -1;
			continue;
		}
		switch (c) {
		case 'f': o->fmt = optarg; break;
		case 'O': o->out_fmt = optarg; break;
		case 'B': o->backing = optarg; break;
		case 'F': o->backing_fmt = optarg; break;
		case 'o': img_add_opts(&o->opts, optarg); break;
		case 'l': o->snapshot = conv_snapshot_arg(optarg); break;
		case 'S':
			if (size_parse(optarg, 0, &o->sparse) < 0) {
				report("Invalid buffer size for sparse output specified. "
				       "Valid sizes are multiples of 512 up to 16M.");
				return -1;
			}
			o->sparse_set = true;
			break;
		case 'r':
			if (img_parse_rate(optarg, &o->rate) < 0)
				return -1;
			break;
		case 'm':
			if (parse_int(optarg, 1, 16, &o->threads) < 0) {
				report("Invalid number of coroutines. Allowed number of "
				       "coroutines is between 1 and 16");
				return -1;
			}
			break;
		case 't':
			if (img_cache_flags(optarg, &o->tcache) < 0)
				return -1;
			break;
		case 'T':
			if (img_cache_flags(optarg, &ctx->cache) < 0)
				return -1;
			break;
		case 'C': o->copy_range = true; break;
		case 'c': o->compress = true; break;
		case 'n': o->no_create = true; break;
		case 'p': o->progress = true; break;
		case 'W': o->unordered = true; break;
		case OPT_TARGET_OPTS: o->target_opts = true; break;
		case OPT_TARGET_ZERO: o->target_zero = true; break;
		case OPT_BITMAPS: o->bitmaps = true; break;
		case OPT_SKIP_BROKEN: o->skip_broken = true; break;
		case 'h': printf("usage: vm-img convert [options] src... dst\n"); exit(0);
		default: img_bad_option("convert", optopt, argv); return -1;
		}
	}
	if (argc - optind < 2) {
		report("Expecting image file name");
		return -1;
	}
	if (o->sparse % 512 || o->sparse > (16u << 20)) {
		report("Invalid buffer size for sparse output specified. Valid sizes "
		       "are multiples of 512 up to 16M.");
		return -1;
	}
	if (o->skip_broken && !o->bitmaps) {
		report("Use of --skip-broken-bitmaps requires --bitmaps");
		return -1;
	}
	if (o->bitmaps && argc - optind > 2) {
		report("Copying bitmaps only possible with single source");
		return -1;
	}
	if (o->copy_range && o->compress) {
		report("Cannot enable copy offloading when -c is used");
		return -1;
	}
	if (o->copy_range && o->sparse_set) {
		report("Cannot enable copy offloading when -S is used");
		return -1;
	}
	if (o->target_zero && !o->no_create) {
		report("--target-is-zero requires use of -n flag");
		return -1;
	}
	if (o->backing && o->no_create) {
		report("-B makes no sense when the target is not being created");
		return -1;
	}
	return 0;
}

static int conv_create(struct conv *c, struct conv_opts *o, const char *out,
		       struct img_ctx *ctx)
{
	struct kvlist kv = { 0 };
	int r;

	if (o->opts && kv_parse(o->opts, NULL, &kv) < 0) {
		report_err();
		return -1;
	}
	if (o->backing) {
		kv_set(&kv, "backing_file", o->backing);
		if (o->backing_fmt)
			kv_set(&kv, "backing_fmt", o->backing_fmt);
	}
	r = fmt_create(o->out_fmt, out, c->total, &kv, ctx->secrets, NULL);
	kv_free(&kv);
	if (r < 0) {
		report_err();
		return -1;
	}
	return 0;
}

static int conv_open_sources(struct conv *c, struct conv_opts *o, char **names,
			     int n, struct img_ctx *ctx)
{
	struct fmt_open_opts so = { .format = o->fmt, .snapshot = o->snapshot,
				    .secrets = ctx->secrets };
	int i;

	c->src = xzalloc(sizeof(*c->src) * (size_t)n);
	c->src_start = xzalloc(sizeof(uint64_t) * (size_t)n);
	c->nsrc = n;
	for (i = 0; i < n; i++) {
		if (o->snapshot) {
			so.flags = ctx->cache | (ctx->share ? FMT_O_SHARE : 0);
			if (fmt_open(names[i], &so, &c->src[i]) < 0) {
				report_err();
				return -1;
			}
		} else if (img_open(ctx, names[i], o->fmt, 0, &c->src[i]) < 0)
			return -1;
		c->src_start[i] = c->total;
		c->total += fmt_size(c->src[i]);
	}
	return 0;
}

static int conv_setup_target(struct conv *c, struct conv_opts *o, const char *out,
			     struct img_ctx *ctx)
{
	struct img_ctx tctx = { .cache = o->tcache, .image_opts = o->target_opts,
				.secrets = ctx->secrets };
	uint32_t cs;

	if (!o->no_create && conv_create(c, o, out, ctx) < 0)
		return -1;
	if (img_open(&tctx, out, o->target_opts ? NULL : o->out_fmt, FMT_O_RDWR,
		     &c->dst) < 0)
		return -1;
	if (fmt_size(c->dst) < c->total) {
		report("Target image is smaller than the source");
		return -1;
	}
	cs = fmt_cluster_size(c->dst);
	if (o->compress && !cs) {
		report("Compression not supported for this file format");
		return -1;
	}
	c->chunk = ALIGN_UP(MAX(1u << 21, cs), cs ? cs : 1);
	c->compress = o->compress;
	c->sparse = o->copy_range ? 0 : o->sparse;
	c->copy_range = o->copy_range;
	c->rate = o->rate;
	c->top_only = o->backing != NULL;
	c->zero_init = o->no_create ? o->target_zero : !o->backing;
	c->in_order = !o->unordered;
	progress_init(&c->prog, o->progress && !ctx->quiet, 1.0);
	return 0;
}

/* Refuse inconsistent bitmaps up front, as qemu-img does (or skip them). */
static int conv_check_bitmaps(struct conv *c, const struct conv_opts *o)
{
	struct fmt_bitmap *l;
	size_t n, i;

	if (fmt_bitmap_list(c->src[0], &l, &n) < 0) {
		report_err();
		return -1;
	}
	for (i = 0; i < n && (o->skip_broken || !l[i].in_use); i++)
		;
	if (i < n)
		report("Cannot copy inconsistent bitmap '%s'; try --skip-broken-bitmaps",
		       l[i].name);
	fmt_bitmaps_free(l, n);
	return i < n ? -1 : 0;
}

/* --bitmaps: copy the source's persistent bitmaps after the data. */
static int conv_bitmaps(struct conv *c, const struct conv_opts *o)
{
	struct fmt_bitmap *l;
	uint8_t *bits;
	size_t n, i, len;
	int r = 0;

	if (fmt_bitmap_list(c->src[0], &l, &n) < 0) {
		report_err();
		return 1;
	}
	for (i = 0; i < n && r == 0; i++) {
		if (l[i].in_use)
			continue;
		if ((r = fmt_bitmap_read(c->src[0], l[i].name, &bits, &len)) == 0) {
			r = fmt_bitmap_add(c->dst, &l[i], bits);
			free(bits);
		}
	}
	fmt_bitmaps_free(l, n);
	if (r < 0) {
		report_err();
		return 1;
	}
	return 0;
}

int cmd_convert(int argc, char **argv)
{
	struct conv_opts o = { .out_fmt = "raw", .sparse = 4096, .threads = 8,
			       .tcache = FMT_O_UNSAFE };
	struct img_ctx ctx = { 0 };
	struct conv c = { 0 };
	int r = 1, i;

	if (conv_parse(argc, argv, &ctx, &o) < 0)
		goto out;
	if (o.opts && kv_is_help(o.opts)) {
		r = img_print_create_opts(o.out_fmt);
		goto out;
	}
	if (conv_open_sources(&c, &o, argv + optind, argc - optind - 1, &ctx) < 0 ||
	    (o.bitmaps && conv_check_bitmaps(&c, &o) < 0) ||
	    conv_setup_target(&c, &o, argv[argc - 1], &ctx) < 0)
		goto out;
	if (o.bitmaps && strcmp(fmt_format(c.dst), "qcow2")) {
		report("Format driver '%s' does not support bitmaps", fmt_format(c.dst));
		goto out;
	}
	if ((r = conv_copy(&c, o.threads)) == 0 && o.bitmaps)
		r = conv_bitmaps(&c, &o);
out:
	if (c.dst && fmt_close(c.dst) < 0 && r == 0) {
		report_err();
		r = 1;
	}
	for (i = 0; i < c.nsrc; i++)
		fmt_close(c.src[i]);
	free(c.src);
	free(c.src_start);
	free(o.opts);
	img_ctx_free(&ctx);
	return r;
}
