/*
 * vm-img compare: qemu-img compare [-f fmt] [-F fmt] [-T cache] [-p] [-q]
 * [-s] [-U] filename1 filename2.  Exit 0 identical, 1 different, 2 error.
 * Extents both images report as zero are skipped without reading.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

#define CMP_CHUNK (1u << 20)

struct cmp {
	struct fmt_image *a, *b;
	uint8_t *ba, *bb;
	bool strict, quiet;
	struct progress prog;
};

/* 0 same, 1 different (printed), 2 error. */
static int cmp_range(struct cmp *c, uint64_t off, uint64_t end)
{
	struct fmt_extent ea, eb;
	uint64_t n, i;

	while (off < end) {
		n = MIN(end - off, CMP_CHUNK);
		if (fmt_block_status(c->a, off, n, true, &ea) < 0 ||
		    fmt_block_status(c->b, off, n, true, &eb) < 0)
			goto err;
		n = MIN(ea.length, eb.length);
		if (c->strict && (ea.status & FMT_ST_ALLOCATED) != (eb.status & FMT_ST_ALLOCATED)) {
			printf("Strict mode: Offset %llu block status mismatch!\n",
			       (unsigned long long)off);
			return 1;
		}
		if (!((ea.status & FMT_ST_ZERO) && (eb.status & FMT_ST_ZERO))) {
			if (fmt_read(c->a, c->ba, off, n) < 0 || fmt_read(c->b, c->bb, off, n) < 0)
				goto err;
			if (memcmp(c->ba, c->bb, n)) {
				for (i = 0; c->ba[i] == c->bb[i]; i++)
					;
				printf("Content mismatch at offset %llu!\n",
				       (unsigned long long)ALIGN_DOWN(off + i, 512));
				return 1;
			}
		}
		off += n;
		progress_update(&c->prog, off, end);
	}
	return 0;
err:
	report_err();
	return 2;
}

/* The tail of the longer image must read as zeros. */
static int cmp_tail(struct cmp *c, struct fmt_image *img, uint64_t off)
{
	struct fmt_extent e;
	uint64_t end = fmt_size(img), n, i;

	while (off < end) {
		if (fmt_block_status(img, off, MIN(end - off, CMP_CHUNK), true, &e) < 0)
			goto err;
		n = e.length;
		if (!(e.status & FMT_ST_ZERO)) {
			if (fmt_read(img, c->ba, off, n) < 0)
				goto err;
			for (i = 0; i < n; i++)
				if (c->ba[i]) {
					printf("Content mismatch at offset %llu!\n",
					       (unsigned long long)ALIGN_DOWN(off + i, 512));
					return 1;
				}
		}
		off += n;
	}
	return 0;
err:
	report_err();
	return 2;
}

static const struct option cmp_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int cmp_run(struct cmp *c)
{
	uint64_t sa = fmt_size(c->a), sb = fmt_size(c->b);
	int r;

	if (sa != sb) {
		if (c->strict) {
			printf("Strict mode: Image size mismatch!\n");
			return 1;
		}
		if (!c->quiet)
			printf("Warning: Image size mismatch!\n");
	}
	r = cmp_range(c, 0, MIN(sa, sb));
	if (r == 0 && sa != sb)
		r = cmp_tail(c, sa > sb ? c->a : c->b, MIN(sa, sb));
	progress_end(&c->prog);
	if (r == 0 && !c->quiet)
		printf("Images are identical.\n");
	return r;
}

int cmd_compare(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fa = NULL, *fb = NULL;
	struct cmp c = { 0 };
	bool prog = false;
	int o, r;

	while ((o = getopt_long(argc, argv, ":hf:F:T:pqsU", cmp_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, o, optarg)) != 0) {
			if (r < 0)
				return 2;
			continue;
		}
		switch (o) {
		case 'f': fa = optarg; break;
		case 'F': fb = optarg; break;
		case 'T': if (img_cache_flags(optarg, &ctx.cache) < 0) return 2; break;
		case 'p': prog = true; break;
		case 's': c.strict = true; break;
		case 'h': printf("usage: vm-img compare [options] file1 file2\n"); return 0;
		default: img_bad_option("compare", optopt, argv); return 2;
		}
	}
	if (optind != argc - 2) {
		report("Expecting two image file names");
		return 2;
	}
	c.quiet = ctx.quiet;
	if (img_open(&ctx, argv[optind], fa, 0, &c.a) < 0 ||
	    img_open(&ctx, argv[optind + 1], fb ? fb : fa, 0, &c.b) < 0) {
		fmt_close(c.a);
		img_ctx_free(&ctx);
		return 2;
	}
	progress_init(&c.prog, prog && !ctx.quiet, 1.0);
	c.ba = xmalloc(CMP_CHUNK);
	c.bb = xmalloc(CMP_CHUNK);
	r = cmp_run(&c);
	free(c.ba);
	free(c.bb);
	fmt_close(c.a);
	fmt_close(c.b);
	img_ctx_free(&ctx);
	return r;
}
