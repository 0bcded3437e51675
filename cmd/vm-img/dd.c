/*
 * vm-img dd: qemu-img dd [-f fmt] [-O fmt] [-U] [bs=N] [count=N] [skip=N]
 * if=input of=output.  Creates output and copies count blocks of bs bytes
 * starting skip blocks into the input.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

struct dd_args { const char *in, *out; uint64_t bs, count, skip; bool has_count; };

static int dd_arg(struct dd_args *a, const char *s)
{
	const char *v = strchr(s, '=');

	if (!v) {
		report("unrecognized operand %s", s);
		return -1;
	}
	v++;
	if (!strncmp(s, "if=", 3))
		a->in = v;
	else if (!strncmp(s, "of=", 3))
		a->out = v;
	else if (!strncmp(s, "bs=", 3)) {
		if (size_parse(v, 0, &a->bs) < 0 || !a->bs || a->bs > (1u << 30)) {
			report("invalid number: '%s'", v);
			return -1;
		}
	} else if (!strncmp(s, "count=", 6)) {
		if (size_parse(v, 0, &a->count) < 0) {
			report("invalid number: '%s'", v);
			return -1;
		}
		a->has_count = true;
	} else if (!strncmp(s, "skip=", 5)) {
		if (size_parse(v, 0, &a->skip) < 0) {
			report("invalid number: '%s'", v);
			return -1;
		}
	} else {
		report("unrecognized operand %s", s);
		return -1;
	}
	return 0;
}

static int dd_copy(struct fmt_image *in, struct fmt_image *out, uint64_t from,
		   uint64_t len, uint64_t bs)
{
	uint8_t *buf = xmalloc(bs);
	uint64_t off = 0;
	int r = 0;

	while (off < len && r == 0) {
		uint64_t n = MIN(bs, len - off);

		if ((r = fmt_read(in, buf, from + off, n)) == 0 && !fmt_is_zero(buf, n))
			r = fmt_write(out, buf, off, n, 0);
		off += n;
	}
	free(buf);
	return r;
}

static const struct option dd_lo[] = {
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cmd_dd(int argc, char **argv)
{
	struct dd_args a = { .bs = 512 };
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL, *ofmt = "raw";
	struct fmt_image *in = NULL, *out = NULL;
	uint64_t from, len;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:O:U", dd_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0)
			continue;
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'O': ofmt = optarg; break;
		case 'h': printf("usage: vm-img dd [options] if=input of=output\n"); return 0;
		default: return img_bad_option("dd", optopt, argv);
		}
	}
	for (; optind < argc; optind++)
		if (dd_arg(&a, argv[optind]) < 0)
			return 1;
	if (!a.in || !a.out) {
		report("Must specify both input and output files");
		return 1;
	}
	if (img_open(&ctx, a.in, fmt, 0, &in) < 0)
		return 1;
	from = MIN(a.skip * a.bs, fmt_size(in));
	len = fmt_size(in) - from;
	if (a.has_count)   /* qemu-img: count counts from the start, skip included */
		len = MIN(len, a.count * a.bs > from ? a.count * a.bs - from : 0);
	r = 1;
	if (fmt_create(ofmt, a.out, len, NULL, NULL, NULL) < 0) {
		report_err();
		goto out;
	}
	ctx.image_opts = false;
	ctx.share = false;
	if (img_open(&ctx, a.out, ofmt, FMT_O_RDWR, &out) < 0)
		goto out;
	if (dd_copy(in, out, from, len, a.bs) < 0)
		report_err();
	else
		r = 0;
out:
	if (out && fmt_close(out) < 0 && r == 0) {
		report_err();
		r = 1;
	}
	fmt_close(in);
	return r;
}
