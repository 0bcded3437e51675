/*
 * vm-img bitmap: qemu-img bitmap (--merge SOURCE | --add | --remove |
 * --clear | --enable | --disable)... [-b source_file [-F source_fmt]]
 * [-g granularity] [-f fmt] filename bitmap.  The operations on one
 * persistent dirty bitmap run in the order given (--add --disable adds
 * it disabled); --merge ORs the bits of SOURCE (in -b's image, or this
 * one) into the bitmap.  Errors read "Operation OP on bitmap B failed:
 * why" as qemu-img's do.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

enum bm_op { BM_ADD, BM_REMOVE, BM_CLEAR, BM_ENABLE, BM_DISABLE, BM_MERGE };
static const char *const bm_op_names[] = { "add", "remove", "clear", "enable",
					   "disable", "merge" };

struct bm_act { enum bm_op op; const char *src; };

struct bm_opts {
	struct bm_act acts[64];
	int nacts;
	const char *fmt, *src_file, *src_fmt;
	uint64_t granularity;
};

enum { OPT_ADD = 512, OPT_REMOVE, OPT_CLEAR, OPT_ENABLE, OPT_DISABLE, OPT_MERGE };

static const struct option bitmap_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "add", no_argument, NULL, OPT_ADD },
	{ "remove", no_argument, NULL, OPT_REMOVE },
	{ "clear", no_argument, NULL, OPT_CLEAR },
	{ "enable", no_argument, NULL, OPT_ENABLE },
	{ "disable", no_argument, NULL, OPT_DISABLE },
	{ "merge", required_argument, NULL, OPT_MERGE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The bitmap's current description (name, granularity, enabled). */
static int bm_find(struct fmt_image *img, const char *name, struct fmt_bitmap *out)
{
	struct fmt_bitmap *l;
	size_t n, i;
	int r = fmt_bitmap_list(img, &l, &n);

	if (r < 0)
		return r;
	for (i = 0; i < n && strcmp(l[i].name, name); i++)
		;
	if (i < n) {
		*out = l[i];
		out->name = NULL;
	}
	fmt_bitmaps_free(l, n);
	return i < n ? 0 : err_set(-ENOENT, "Dirty bitmap '%s' not found", name);
}

/* --merge: OR the source's bits into the bitmap. */
static int bm_merge(struct fmt_image *img, struct fmt_image *src, const char *sname,
		    const char *name)
{
	struct fmt_bitmap b, sb;
	uint8_t *bits = NULL, *sbits = NULL;
	size_t len, slen, i;
	int r;

	if ((r = bm_find(img, name, &b)) < 0 || (r = bm_find(src, sname, &sb)) < 0)
		return r;
	if (b.granularity != sb.granularity || fmt_size(img) != fmt_size(src))
		return err_set(-EINVAL, "Bitmaps are incompatible and can't be merged");
	if ((r = fmt_bitmap_read(img, name, &bits, &len)) == 0 &&
	    (r = fmt_bitmap_read(src, sname, &sbits, &slen)) == 0) {
		for (i = 0; i < MIN(len, slen); i++)
			bits[i] |= sbits[i];
		b.name = (char *)name;
		r = fmt_bitmap_change(img, name, &b, bits);
	}
	free(bits);
	free(sbits);
	return r;
}

static int bm_do(struct fmt_image *img, struct fmt_image *src, const struct bm_opts *o,
		 const struct bm_act *a, const char *name)
{
	struct fmt_bitmap b = { .name = (char *)name };
	uint8_t *zero;
	size_t len;
	int r;

	switch (a->op) {
	case BM_ADD:
		b.granularity = (uint32_t)(o->granularity ? o->granularity :
					   MAX(4096u, fmt_cluster_size(img)));
		b.enabled = true;
		if (o->granularity && (o->granularity < 512 || o->granularity > (1u << 31) ||
				       (o->granularity & (o->granularity - 1))))
			return err_set(-EINVAL, "Granularity must be power of 2 and at least 512");
		len = (size_t)DIV_ROUND_UP(DIV_ROUND_UP(fmt_size(img), b.granularity), 8);
		zero = xzalloc(len + 1);
		r = fmt_bitmap_add(img, &b, zero);
		free(zero);
		return r;
	case BM_REMOVE:
		return fmt_bitmap_change(img, name, NULL, NULL);
	case BM_CLEAR:
		if ((r = bm_find(img, name, &b)) < 0)
			return r;
		b.name = (char *)name;
		len = (size_t)DIV_ROUND_UP(DIV_ROUND_UP(fmt_size(img), b.granularity), 8);
		zero = xzalloc(len + 1);
		r = fmt_bitmap_change(img, name, &b, zero);
		free(zero);
		return r;
	case BM_ENABLE: case BM_DISABLE:
		if ((r = bm_find(img, name, &b)) < 0)
			return r;
		b.name = (char *)name;
		b.enabled = a->op == BM_ENABLE;
		return fmt_bitmap_change(img, name, &b, NULL);
	default:
		return bm_merge(img, src ? src : img, a->src, name);
	}
}

static int bm_parse(int argc, char **argv, struct img_ctx *ctx, struct bm_opts *o)
{
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:b:F:g:", bitmap_lo, NULL)) != -1) {
		if ((r = img_common_opt(ctx, c, optarg)) != 0) {
			if (r < 0)
				return -1;
			continue;
		}
		if (c >= OPT_ADD && c <= OPT_MERGE) {
			if (o->nacts == (int)ARRAY_SIZE(o->acts)) {
				report("Too many operations");
				return -1;
			}
			o->acts[o->nacts++] = (struct bm_act){ (enum bm_op)(c - OPT_ADD),
							       c == OPT_MERGE ? optarg : NULL };
			continue;
		}
		switch (c) {
		case 'f': o->fmt = optarg; break;
		case 'b': o->src_file = optarg; break;
		case 'F': o->src_fmt = optarg; break;
		case 'g':
			if (size_parse(optarg, 0, &o->granularity) < 0 || !o->granularity) {
				report("Invalid granularity specified");
				return -1;
			}
			break;
		case 'h':
			printf("usage: vm-img bitmap (--merge SOURCE | --add | --remove | "
			       "--clear | --enable | --disable)... [-b source_file "
			       "[-F source_fmt]] [-g granularity] [-f fmt] filename bitmap\n");
			exit(0);
		default: img_bad_option("bitmap", optopt, argv); return -1;
		}
	}
	return 0;
}

static int bm_validate(int argc, const struct bm_opts *o)
{
	bool add = false, merge = false;
	int i;

	for (i = 0; i < o->nacts; i++) {
		add |= o->acts[i].op == BM_ADD;
		merge |= o->acts[i].op == BM_MERGE;
	}
	if (!o->nacts)
		report("Need at least one of --add, --remove, --clear, --enable, "
		       "--disable, or --merge");
	else if (argc - optind != 2)
		report("Expecting filename and bitmap name");
	else if (o->granularity && !add)
		report("granularity only supported with --add");
	else if (o->src_fmt && !o->src_file)
		report("-F only supported with -b");
	else if (o->src_file && !merge)
		report("Merge bitmap source file only supported with --merge");
	else
		return 0;
	return -1;
}

int cmd_bitmap(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	struct bm_opts o = { 0 };
	struct fmt_image *img = NULL, *src = NULL;
	int i, r = 1;

	if (bm_parse(argc, argv, &ctx, &o) < 0 || bm_validate(argc, &o) < 0)
		goto out;
	if (img_open(&ctx, argv[optind], o.fmt, FMT_O_RDWR, &img) < 0)
		goto out;
	if (o.src_file && img_open(&ctx, o.src_file, o.src_fmt, 0, &src) < 0)
		goto out;
	for (i = 0; i < o.nacts; i++)
		if (bm_do(img, src, &o, &o.acts[i], argv[optind + 1]) < 0) {
			report("Operation %s on bitmap %s failed: %s",
			       bm_op_names[o.acts[i].op], argv[optind + 1], err_msg());
			goto out;
		}
	r = 0;
out:
	if (src)
		fmt_close(src);
	if (img && fmt_close(img) < 0 && r == 0) {
		report_err();
		r = 1;
	}
	img_ctx_free(&ctx);
	return r;
}
