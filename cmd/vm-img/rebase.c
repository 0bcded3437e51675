/*
 * vm-img rebase: qemu-img rebase [-f fmt] [-t cache] [-T cache] [-p] [-u]
 * [-U] -b backing [-F fmt] filename.  Safe mode copies into the image
 * every cluster it does not allocate whose content differs between the old
 * and the new backing chain, then records the new backing file; -u only
 * records it.  -b "" removes the backing file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static const struct option rebase_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int rebase_copy(struct fmt_image *img, struct fmt_image *nb,
		       struct progress *p)
{
	uint64_t step = MAX(fmt_cluster_size(img), 65536u), off = 0, end = fmt_size(img);
	uint8_t *a = xmalloc(step), *b = xmalloc(step);
	struct fmt_extent e;
	int r = 0;

	while (off < end && r == 0) {
		uint64_t n = MIN(step, end - off);

		if ((r = fmt_block_status(img, off, n, false, &e)) < 0)
			break;
		n = e.length;
		if (!(e.status & FMT_ST_ALLOCATED)) {
			memset(b, 0, n);
			if ((r = fmt_read(img, a, off, n)) == 0 && nb && off < fmt_size(nb))
				r = fmt_read(nb, b, off, MIN(n, fmt_size(nb) - off));
			if (r == 0 && memcmp(a, b, n))
				r = fmt_write(img, a, off, n, 0);
		}
		off += n;
		progress_update(p, off, end);
	}
	free(a);
	free(b);
	return r;
}

static int rebase_run(struct img_ctx *ctx, const char *name, const char *fmt,
		      const char *bf, const char *bfmt, bool unsafe, struct progress *p)
{
	struct fmt_image *img, *nb = NULL;
	int r = 0;

	if (img_open(ctx, name, fmt, FMT_O_RDWR | (unsafe ? FMT_O_NO_BACKING : 0),
		     &img) < 0)
		return 1;
	if (!unsafe && *bf) {
		char *path = bf[0] == '/' || !strchr(name, '/') ? xstrdup(bf) :
			     xasprintf("%.*s/%s", (int)(strrchr(name, '/') - name), name, bf);

		r = img_open(ctx, path, bfmt, 0, &nb);
		free(path);
		if (r < 0) {
			fmt_close(img);
			return 1;
		}
	}
	if (!unsafe)
		r = rebase_copy(img, nb, p);
	if (r == 0)
		r = fmt_set_backing(img, *bf ? bf : NULL, bfmt ? bfmt :
				    nb ? fmt_format(nb) : NULL);
	if (r < 0)
		report_err();
	fmt_close(nb);
	if (fmt_close(img) < 0 && r == 0) {
		report_err();
		r = -1;
	}
	return r < 0 ? 1 : 0;
}

int cmd_rebase(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL, *bf = NULL, *bfmt = NULL;
	bool unsafe = false, prog = false;
	struct progress p;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:t:T:b:F:upqU", rebase_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case 't': case 'T':
			if (img_cache_flags(optarg, &ctx.cache) < 0)
				return 1;
			break;
		case 'b': bf = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'u': unsafe = true; break;
		case 'p': prog = true; break;
		case 'h': printf("usage: vm-img rebase [options] -b backing filename\n"); return 0;
		default: return img_bad_option("rebase", optopt, argv);
		}
	}
	if (optind != argc - 1) {
		report("Expecting one image file name");
		return 1;
	}
	if (!bf) {
		report("Must specify backing file (-b) or use unsafe mode (-u)");
		return 1;
	}
	ctx.share = false;
	progress_init(&p, prog && !ctx.quiet, 1.0);
	r = rebase_run(&ctx, argv[optind], fmt, bf, bfmt, unsafe, &p);
	progress_end(&p);
	img_ctx_free(&ctx);
	return r;
}
