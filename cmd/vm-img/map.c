/*
 * vm-img map: qemu-img map [-f fmt] [--start-offset=N] [--max-length=N]
 * [--output=human|json] [-U] filename.  Adjacent extents with the same
 * depth, flags and contiguous host offsets are merged, as qemu-img does.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

struct map_ent {
	uint64_t start, length, offset;
	int depth;
	bool present, zero, data, has_offset;
	const char *file;
};

static void map_print(const struct map_ent *e, bool json, bool first)
{
	if (json) {
		printf("%s{ \"start\": %llu, \"length\": %llu, \"depth\": %d, "
		       "\"present\": %s, \"zero\": %s, \"data\": %s",
		       first ? "" : ",\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, e->depth,
		       e->present ? "true" : "false", e->zero ? "true" : "false",
		       e->data ? "true" : "false");
		if (e->has_offset)
			printf(", \"offset\": %llu", (unsigned long long)e->offset);
		printf("}");
	} else if (e->data && e->has_offset) {
		printf("%#-16llx%#-16llx%#-16llx%s\n", (unsigned long long)e->start,
		       (unsigned long long)e->length, (unsigned long long)e->offset,
		       e->file);
	}
}

static bool map_mergeable(const struct map_ent *a, const struct map_ent *b)
{
	return a->depth == b->depth && a->present == b->present &&
	       a->zero == b->zero && a->data == b->data &&
	       a->has_offset == b->has_offset &&
	       (!a->has_offset || a->offset + a->length == b->offset) &&
	       (!a->file || !b->file || !strcmp(a->file, b->file));
}

static const struct option map_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "start-offset", required_argument, NULL, OPT_START },
	{ "max-length", required_argument, NULL, OPT_MAXLEN },
	{ "force-share", no_argument, NULL, 'U' },
	{ "format", required_argument, NULL, 'f' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int map_run(struct fmt_image *img, uint64_t start, uint64_t end, bool json)
{
	struct map_ent cur = { 0 }, e;
	struct fmt_extent x;
	bool have = false, first = true;
	uint64_t off = start;

	if (json)
		printf("[");
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	while (off < end) {
		if (fmt_block_status(img, off, MIN(end - off, 1ull << 30), true, &x) < 0) {
			report_err();
			return 1;
		}
		e = (struct map_ent){ off, x.length, x.host_offset, x.depth,
			(x.status & FMT_ST_ALLOCATED) != 0, (x.status & FMT_ST_ZERO) != 0,
			(x.status & FMT_ST_DATA) != 0, (x.status & FMT_ST_OFFSET) != 0,
			x.file };
		if (have && map_mergeable(&cur, &e))
			cur.length += e.length;
		else {
			if (have)
				map_print(&cur, json, first), first = false;
			cur = e;
			have = true;
		}
		off += x.length;
	}
	if (!have)              /* an empty range: one empty extent, as qemu-img */
		cur = (struct map_ent){ .start = start };
	if (have || json)
		map_print(&cur, json, first);
	if (json)
		printf("]\n");
	return 0;
}

int cmd_map(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL;
	uint64_t start = 0, maxlen = UINT64_MAX, end;
	struct fmt_image *img;
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:U", map_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case OPT_OUTPUT: if (img_output(optarg, &json) < 0) return 1; break;
		case OPT_START:
			if (size_parse(optarg, 0, &start) < 0) {
				report("Invalid start offset specified! You may use k, M, "
				       "G, T, P or E suffixes for ");
				return 1;
			}
			break;
		case OPT_MAXLEN:
			if (size_parse(optarg, 0, &maxlen) < 0) {
				report("Invalid length specified! You may use k, M, G, T, "
				       "P or E suffixes for ");
				return 1;
			}
			break;
		case 'h': printf("usage: vm-img map [options] filename\n"); return 0;
		default: return img_bad_option("map", optopt, argv);
		}
	}
	if (optind != argc - 1) {
		report("Expecting one image file name");
		return 1;
	}
	if (img_open(&ctx, argv[optind], fmt, 0, &img) < 0) {
		img_ctx_free(&ctx);
		return 1;
	}
	end = maxlen > fmt_size(img) - MIN(start, fmt_size(img)) ? fmt_size(img)
								   : start + maxlen;
	r = map_run(img, start, end, json);
	fmt_close(img);
	img_ctx_free(&ctx);
	return r;
}
