/*
 * vm-img resize: qemu-img resize [-f fmt] [--preallocation=mode]
 * [--shrink] [-q] filename [+|-]size.  Prints "Image resized.".
 */
#include <getopt.h>
#include <stdio.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static const struct option resize_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "preallocation", required_argument, NULL, OPT_PREALLOC },
	{ "shrink", no_argument, NULL, OPT_SHRINK },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int resize_target(const char *arg, uint64_t cur, uint64_t *out)
{
	uint64_t v;
	int sign = 0;

	if (*arg == '+' || *arg == '-')
		sign = *arg++ == '+' ? 1 : -1;
	if (size_parse(arg, 0, &v) < 0) {
		report("Invalid image size specified. You may use k, M, G, T, P or E "
		       "suffixes for kilobytes, megabytes, gigabytes, terabytes, "
		       "petabytes and exabytes.");
		return -1;
	}
	if (sign < 0 && v > cur) {
		report("New image size must be positive");
		return -1;
	}
	*out = sign > 0 ? cur + v : sign < 0 ? cur - v : v;
	return 0;
}

int cmd_resize(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	enum fmt_prealloc pa = FMT_PREALLOC_OFF;
	const char *fmt = NULL;
	struct fmt_image *img;
	bool shrink = false;
	uint64_t size;
	int c, r;

	for (r = 1; r < argc; r++)       /* "-1G" is a size, not an option */
		if (argv[r][0] == '-' && argv[r][1] >= '0' && argv[r][1] <= '9')
			argv[r][0] = '~';
	while ((c = getopt_long(argc, argv, ":hf:qU", resize_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case OPT_SHRINK: shrink = true; break;
		case OPT_PREALLOC:
			if (fmt_prealloc_parse(optarg, &pa) < 0) {
				report("Invalid preallocation mode '%s'", optarg);
				return 1;
			}
			break;
		case 'h': printf("usage: vm-img resize [options] filename [+|-]size\n"); return 0;
		default: return img_bad_option("resize", optopt, argv);
		}
	}
	if (optind != argc - 2) {
		report("Expecting image file name and size");
		return 1;
	}
	if (argv[optind + 1][0] == '~')
		argv[optind + 1][0] = '-';
	if (img_open(&ctx, argv[optind], fmt, FMT_O_RDWR | FMT_O_NO_BACKING, &img) < 0) {
		img_ctx_free(&ctx);
		return 1;
	}
	r = resize_target(argv[optind + 1], fmt_size(img), &size) < 0 ? 1 : 0;
	if (r == 0 && fmt_truncate(img, size, pa, shrink) < 0) {
		report_err();
		r = 1;
	}
	if (fmt_close(img) < 0 && r == 0) {
		report_err();
		r = 1;
	}
	if (r == 0 && !ctx.quiet)
		printf("Image resized.\n");
	img_ctx_free(&ctx);
	return r;
}
