/*
 * vm-img amend: qemu-img amend [-f fmt] [-t cache] [-p] [-q] [--force]
 * -o options filename: change format options of an existing image.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static const struct option amend_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cmd_amend(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL;
	struct kvlist kv = { 0 };
	struct fmt_image *img = NULL;
	char *opts = NULL;
	bool force = false;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:t:o:pq", amend_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case 't': if (img_cache_flags(optarg, &ctx.cache) < 0) return 1; break;
		case 'o': img_add_opts(&opts, optarg); break;
		case 'p': break;
		case OPT_FORCE: force = true; break;
		case 'h': printf("usage: vm-img amend [options] -o options filename\n"); return 0;
		default: return img_bad_option("amend", optopt, argv);
		}
	}
	r = 1;
	if (opts && kv_is_help(opts)) {
		r = img_print_create_opts(fmt ? fmt : "qcow2");
		goto out;
	}
	if (!opts) {
		report("Must specify options (-o)");
		goto out;
	}
	if (optind != argc - 1) {
		report("Expecting one image file name");
		goto out;
	}
	if (kv_parse(opts, NULL, &kv) < 0) {
		report_err();
		goto out;
	}
	if (img_open(&ctx, argv[optind], fmt, FMT_O_RDWR | FMT_O_NO_BACKING, &img) < 0)
		goto out;
	if (fmt_amend(img, &kv, force) < 0) {
		err_prefix("Error while amending options");
		report_err();
	} else
		r = 0;
	if (fmt_close(img) < 0 && r == 0) {
		report_err();
		r = 1;
	}
out:
	free(opts);
	kv_free(&kv);
	img_ctx_free(&ctx);
	return r;
}
