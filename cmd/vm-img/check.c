/*
 * vm-img check: qemu-img check [-f fmt] [--output=ofmt] [-r leaks|all]
 * [-T cache] [-U] filename.  Exit 0 consistent, 1 check not completed,
 * 2 corrupted, 3 leaks only, 63 not supported by the format.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static void check_message(void *opaque, const char *line)
{
	bool json = *(bool *)opaque;

	if (!json)
		fprintf(stderr, "%s\n", line);
}

static void check_human(const struct fmt_check *c)
{
	if (!c->corruptions && !c->leaks && !c->check_errors)
		printf("No errors were found on the image.\n");
	if (c->corruptions)
		printf("\n%d errors were found on the image.\nData may be corrupted, "
		       "or further writes to the image may corrupt it.\n", c->corruptions);
	if (c->leaks)
		printf("\n%d leaked clusters were found on the image.\nThis means "
		       "waste of disk space, but no harm to data.\n", c->leaks);
	if (c->check_errors)
		printf("\n%d internal errors have occurred during the check.\n",
		       c->check_errors);
	if (c->total_clusters && c->allocated_clusters)
		printf("%llu/%llu = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% "
		       "compressed clusters\n",
		       (unsigned long long)c->allocated_clusters,
		       (unsigned long long)c->total_clusters,
		       c->allocated_clusters * 100.0 / c->total_clusters,
		       c->fragmented_clusters * 100.0 / c->allocated_clusters,
		       c->compressed_clusters * 100.0 / c->allocated_clusters);
	if (c->image_end_offset)
		printf("Image end offset: %llu\n", (unsigned long long)c->image_end_offset);
}

static void check_json(struct fmt_image *img, const struct fmt_check *c)
{
	json_t *o = json_object();

	if (c->image_end_offset)
		json_object_set_new(o, "image-end-offset", json_integer((json_int_t)c->image_end_offset));
	if (c->corruptions)
		json_object_set_new(o, "corruptions", json_integer(c->corruptions));
	if (c->leaks)
		json_object_set_new(o, "leaks", json_integer(c->leaks));
	if (c->corruptions_fixed)
		json_object_set_new(o, "corruptions-fixed", json_integer(c->corruptions_fixed));
	if (c->leaks_fixed)
		json_object_set_new(o, "leaks-fixed", json_integer(c->leaks_fixed));
	if (c->total_clusters)
		json_object_set_new(o, "total-clusters", json_integer((json_int_t)c->total_clusters));
	if (c->allocated_clusters) {
		json_object_set_new(o, "allocated-clusters", json_integer((json_int_t)c->allocated_clusters));
		json_object_set_new(o, "fragmented-clusters", json_integer((json_int_t)c->fragmented_clusters));
		json_object_set_new(o, "compressed-clusters", json_integer((json_int_t)c->compressed_clusters));
	}
	json_object_set_new(o, "check-errors", json_integer(c->check_errors));
	json_object_set_new(o, "filename", json_string(fmt_filename(img)));
	json_object_set_new(o, "format", json_string(fmt_format(img)));
	vjson_print(o);
	json_decref(o);
}

static const struct option check_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "repair", required_argument, NULL, 'r' },
	{ "force-share", no_argument, NULL, 'U' },
	{ "format", required_argument, NULL, 'f' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int check_run(struct fmt_image *img, unsigned fix, bool json, bool quiet,
		     struct fmt_check *c)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->message = check_message;
	c->opaque = &json;
	r = fmt_check(img, fix, c);
	if (r == -ENOTSUP) {
		report("This image format does not support checks");
		return 63;
	}
	if (r < 0) {
		report_err();
		return 1;
	}
	if (fix && (c->corruptions_fixed || c->leaks_fixed)) {
		if (!json && !quiet)
			printf("The following inconsistencies were found and repaired:\n\n"
			       "    %d leaked clusters\n    %d corruptions\n\n"
			       "Double checking the fixed image now...\n",
			       c->leaks_fixed, c->corruptions_fixed);
		int lf = c->leaks_fixed, cf = c->corruptions_fixed;

		memset(c, 0, sizeof(*c));
		c->message = check_message;
		c->opaque = &json;
		if (fmt_check(img, 0, c) < 0) {
			report_err();
			return 1;
		}
		c->leaks_fixed = lf;
		c->corruptions_fixed = cf;
	}
	return 0;
}

int cmd_check(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL;
	struct fmt_check res;
	struct fmt_image *img;
	bool json = false;
	unsigned fix = 0, flags = FMT_O_CHECK;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:r:T:qU", check_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case OPT_OUTPUT: if (img_output(optarg, &json) < 0) return 1; break;
		case 'T': if (img_cache_flags(optarg, &ctx.cache) < 0) return 1; break;
		case 'r':
			flags |= FMT_O_RDWR;
			if (!strcmp(optarg, "leaks"))
				fix = FMT_FIX_LEAKS;
			else if (!strcmp(optarg, "all"))
				fix = FMT_FIX_LEAKS | FMT_FIX_ERRORS;
			else {
				report("Unknown option value for -r (expecting 'leaks' "
				       "or 'all'): %s", optarg);
				return 1;
			}
			break;
		case 'h': printf("usage: vm-img check [options] filename\n"); return 0;
		default: return img_bad_option("check", optopt, argv);
		}
	}
	if (optind != argc - 1) {
		report("Expecting one image file name");
		return 1;
	}
	if (img_open(&ctx, argv[optind], fmt, flags | FMT_O_NO_BACKING, &img) < 0) {
		img_ctx_free(&ctx);
		return 1;
	}
	r = check_run(img, fix, json, ctx.quiet, &res);
	if (r == 0) {
		if (json)
			check_json(img, &res);
		else if (!ctx.quiet)
			check_human(&res);
		r = res.check_errors ? 1 : res.corruptions ? 2 : res.leaks ? 3 : 0;
	}
	if (fmt_close(img) < 0 && r == 0) {
		report_err();
		r = 1;
	}
	img_ctx_free(&ctx);
	return r;
}
