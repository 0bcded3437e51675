/*
 * vm-img measure: qemu-img measure [--output=ofmt] [-O fmt] [-o options]
 * [--size N | [-f fmt] [-l snapshot] filename]: space a new image needs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static const struct option measure_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void measure_print(const struct fmt_measure *m, bool json, bool bitmaps)
{
	if (json) {
		json_t *o = json_object();

		if (bitmaps)
			json_object_set_new(o, "bitmaps", json_integer(0));
		json_object_set_new(o, "required", json_integer((json_int_t)m->required));
		json_object_set_new(o, "fully-allocated",
				    json_integer((json_int_t)m->fully_allocated));
		vjson_print(o);
		json_decref(o);
		return;
	}
	printf("required size: %llu\nfully allocated size: %llu\n",
	       (unsigned long long)m->required, (unsigned long long)m->fully_allocated);
	if (bitmaps)
		printf("bitmaps size: 0\n");
}

int cmd_measure(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL, *ofmt = "raw", *snap = NULL;
	struct fmt_image *src = NULL;
	struct kvlist kv = { 0 };
	struct fmt_measure m;
	uint64_t size = UINT64_MAX;
	char *opts = NULL;
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:O:o:l:qU", measure_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': ofmt = optarg; break;
		case 'o': img_add_opts(&opts, optarg); break;
		case 'l': snap = optarg; break;
		case OPT_OUTPUT: if (img_output(optarg, &json) < 0) return 1; break;
		case OPT_SIZE:
			if (size_parse(optarg, 0, &size) < 0) {
				report("Invalid image size specified. You may use k, M, G, "
				       "T, P or E suffixes for kilobytes, megabytes, "
				       "gigabytes, terabytes, petabytes and exabytes.");
				return 1;
			}
			break;
		case 'h': printf("usage: vm-img measure [options] [--size N | filename]\n"); return 0;
		default: return img_bad_option("measure", optopt, argv);
		}
	}
	r = 1;
	if (opts && kv_is_help(opts)) {
		r = img_print_create_opts(ofmt);
		goto out;
	}
	if ((size == UINT64_MAX) == (optind >= argc) || optind < argc - 1) {
		report(size == UINT64_MAX ? "Either --size N or one filename must be "
		       "specified." : "--size N cannot be used together with a filename.");
		goto out;
	}
	if (opts && kv_parse(opts, NULL, &kv) < 0) {
		report_err();
		goto out;
	}
	if (optind < argc) {
		struct fmt_open_opts oo = { .format = fmt, .snapshot = snap,
					    .flags = ctx.share ? FMT_O_SHARE : 0 };

		if ((snap ? fmt_open(argv[optind], &oo, &src) < 0 &&
		     (report_err(), 1) : img_open(&ctx, argv[optind], fmt, 0, &src) < 0))
			goto out;
	}
	if (fmt_measure(ofmt, &kv, size, src, &m) < 0) {
		report_err();
		goto out;
	}
	measure_print(&m, json, src && !strcmp(ofmt, "qcow2") &&
		      !strcmp(fmt_format(src), "qcow2"));
	r = 0;
out:
	fmt_close(src);
	free(opts);
	kv_free(&kv);
	img_ctx_free(&ctx);
	return r;
}
