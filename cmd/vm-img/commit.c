/*
 * vm-img commit: qemu-img commit [-f fmt] [-t cache] [-b base] [-r rate]
 * [-d] [-p] [-q] filename.  Copies what the layers above base allocate into base
 * (the backing file by default), then empties the top image unless -d;
 * with -b deeper in the chain the top is re-pointed at base.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static const struct option commit_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Copy everything allocated above `base` in top's chain into dst. */
static int commit_copy(struct fmt_image *top, struct fmt_image *base,
		       struct fmt_image *dst, struct progress *p, uint64_t rate)
{
	uint64_t start = img_now_ns(), copied = 0;
	uint64_t off = 0, end = MIN(fmt_size(top), fmt_size(dst));
	size_t cap = 1 << 20;
	uint8_t *buf = xmalloc(cap);
	struct fmt_extent e;
	struct fmt_image *l;
	int r = 0, d;

	while (off < end && r == 0) {
		uint64_t n = MIN(end - off, cap);

		if ((r = fmt_block_status(top, off, n, true, &e)) < 0)
			break;
		n = e.length;
		for (d = 0, l = top; l && l != base && d < e.depth; d++)
			l = fmt_backing(l);
		if ((e.status & FMT_ST_ALLOCATED) && l != base) {
			if (e.status & FMT_ST_ZERO)
				r = fmt_write_zeroes(dst, off, n, 0);
			else if ((r = fmt_read(top, buf, off, n)) == 0)
				r = fmt_write(dst, buf, off, n, 0);
			img_pace(rate, start, copied += n);
		}
		off += n;
		progress_update(p, off, end);
	}
	free(buf);
	return r;
}

static int commit_run(struct img_ctx *ctx, const char *name, const char *fmt,
		      const char *base_name, bool drop, struct progress *p,
		      uint64_t rate)
{
	struct fmt_image *top, *base, *dst = NULL, *b;
	int r = -1;

	if (img_open(ctx, name, fmt, FMT_O_RDWR, &top) < 0)
		return 1;
	base = fmt_backing(top);
	for (b = base; base_name && b; b = fmt_backing(b))
		if (!strcmp(fmt_filename(b), base_name) ||
		    !strcmp(fmt_backing_path(top) ? fmt_backing_path(top) : "", base_name))
			break;
	if (base_name)
		base = b;
	if (!base) {
		report(base_name ? "Base '%s' not found" : "Image does not have a "
		       "backing file", base_name);
		goto out;
	}
	if (img_open(ctx, fmt_filename(base), fmt_format(base), FMT_O_RDWR |
		     FMT_O_NO_BACKING | FMT_O_NO_LOCK, &dst) < 0)
		goto out;
	r = commit_copy(top, base, dst, p, rate);
	if (r == 0)
		r = fmt_flush(dst);
	if (r == 0 && !drop)
		r = fmt_make_empty(top);
	if (r == 0 && base != fmt_backing(top))
		r = fmt_set_backing(top, fmt_filename(base), fmt_format(base));
	if (r < 0)
		report_err();
out:
	fmt_close(dst);
	if (fmt_close(top) < 0 && r == 0) {
		report_err();
		r = -1;
	}
	return r < 0 ? 1 : 0;
}

int cmd_commit(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL, *base = NULL;
	struct progress p;
	bool drop = false, prog = false;
	uint64_t rate = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:t:b:r:dpq", commit_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case 't': if (img_cache_flags(optarg, &ctx.cache) < 0) return 1; break;
		case 'b': base = optarg; drop = true; break;
		case 'r': if (img_parse_rate(optarg, &rate) < 0) return 1; break;
		case 'd': drop = true; break;
		case 'p': prog = true; break;
		case 'h': printf("usage: vm-img commit [options] filename\n"); return 0;
		default: return img_bad_option("commit", optopt, argv);
		}
	}
	if (optind != argc - 1) {
		report("Expecting one image file name");
		return 1;
	}
	progress_init(&p, prog && !ctx.quiet, 1.0);
	r = commit_run(&ctx, argv[optind], fmt, base, drop, &p, rate);
	progress_end(&p);
	if (r == 0 && !ctx.quiet)
		printf("Image committed.\n");
	img_ctx_free(&ctx);
	return r;
}
