/*
 * vm-img create: qemu-img create [-f fmt] [-b backing [-F fmt]] [-u]
 * [-o options] filename [size]; prints "Formatting 'F', fmt=...".
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static const struct option create_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int create_size(const char *s, uint64_t *size)
{
	if (size_parse(s, 0, size) < 0 || *size > INT64_MAX) {
		report("Invalid image size specified. You may use k, M, G, T, P or E "
		       "suffixes for kilobytes, megabytes, gigabytes, terabytes, "
		       "petabytes and exabytes.");
		return -1;
	}
	return 0;
}

int cmd_create(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = "raw", *bf = NULL, *bfmt = NULL;
	char *opts = NULL, *summary = NULL;
	struct kvlist kv = { 0 };
	uint64_t size = UINT64_MAX;
	int c, r = 1;

	while ((c = getopt_long(argc, argv, ":hf:b:F:uo:q", create_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'b': bf = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'u': break;
		case 'o': img_add_opts(&opts, optarg); break;
		case 'h': printf("usage: vm-img %s\n", img_cmds[6].synopsis); return 0;
		default: return img_bad_option("create", optopt, argv);
		}
	}
	r = 1;
	if (opts && kv_is_help(opts)) {
		r = img_print_create_opts(fmt);
		goto out;
	}
	if (optind >= argc) {
		report("Expecting image file name");
		goto out;
	}
	if (optind + 2 < argc) {
		report("Unexpected argument: %s", argv[optind + 2]);
		goto out;
	}
	if (optind + 1 < argc && create_size(argv[optind + 1], &size) < 0)
		goto out;
	if (opts && kv_parse(opts, NULL, &kv) < 0) {
		report_err();
		goto out;
	}
	if (bf)
		kv_set(&kv, "backing_file", bf);
	if (bfmt)
		kv_set(&kv, "backing_fmt", bfmt);
	if (size == UINT64_MAX && !kv_get(&kv, "size") && !kv_get(&kv, "backing_file")) {
		report("Image creation needs a size parameter");
		goto out;
	}
	if (fmt_create(fmt, argv[optind], size, &kv, ctx.secrets, &summary) < 0) {
		if (summary && !ctx.quiet)
			printf("Formatting '%s', %s\n", argv[optind], summary);
		report_err();
		goto out;
	}
	if (!ctx.quiet)
		printf("Formatting '%s', %s\n", argv[optind], summary);
	r = 0;
out:
	free(summary);
	free(opts);
	kv_free(&kv);
	img_ctx_free(&ctx);
	return r;
}
