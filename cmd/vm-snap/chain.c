/*
 * External snapshots: an overlay is a qcow2 image whose backing file is
 * the image being snapshotted.  commit writes an overlay's data down into
 * its backing image; stream pulls the backing data up into the overlay so
 * it stands alone.  Both copy only what block status says is there.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "snap.h"

#define CHUNK (2u << 20)

/* Options shared by the chain commands; returns the first operand's index. */
static int chain_args(int argc, char **argv, int nargs, const char **fmt, bool *keep)
{
	static const struct option longopts[] = {
		{ "backing-format", required_argument, NULL, 'F' },
		{ 0 }
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:F:d", longopts, NULL)) != -1) {
		if (c == 'F' && fmt) {
			*fmt = optarg;
		} else if (c == 'd' && keep) {
			*keep = true;
		} else {
			report("%s: %s", argv[0], opt_error(c, argv));
			return -1;
		}
	}
	if (argc - optind != nargs) {
		report("%s: wrong number of arguments (try --help)", argv[0]);
		return -1;
	}
	return optind;
}

int snap_overlay(int argc, char **argv)
{
	const char *bfmt = NULL;
	struct fmt_open_opts o = { .flags = FMT_O_SHARE | FMT_O_NO_BACKING };
	struct fmt_image *base;
	struct kvlist opts = { 0 };
	char *summary = NULL;
	int r, i = chain_args(argc, argv, 2, &bfmt, NULL);

	if (i < 0)
		return 1;
	if (!bfmt) {
		/* Record the base's format so the overlay never probes it. */
		if (fmt_open(argv[i], &o, &base) < 0) {
			report_err();
			return 1;
		}
		bfmt = fmt_format(base);
		kv_set(&opts, "backing_fmt", bfmt);
		fmt_close(base);
	} else {
		kv_set(&opts, "backing_fmt", bfmt);
	}
	kv_set(&opts, "backing_file", argv[i]);
	r = fmt_create("qcow2", argv[i + 1], UINT64_MAX, &opts, NULL, &summary);
	if (r < 0)
		report("%s: %s", argv[i + 1], err_msg());
	free(summary);
	kv_free(&opts);
	return r < 0 ? 1 : 0;
}

/* Copy [off, off+len) from src to dst as data or zeroes. */
static int copy_extent(struct fmt_image *src, struct fmt_image *dst, uint64_t off,
		       uint64_t len, bool zero, void *buf)
{
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		int r;

		if (zero)
			r = fmt_write_zeroes(dst, off, n, 0);
		else if ((r = fmt_read(src, buf, off, n)) >= 0)
			r = fmt_write(dst, buf, off, n, 0);
		if (r < 0)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

/* Copy every extent of src for which want(status) holds. */
static int copy_where(struct fmt_image *src, struct fmt_image *dst, bool chain,
		      bool (*want)(const struct fmt_extent *e))
{
	uint64_t off = 0, size = fmt_size(src);
	void *buf = xmalloc(CHUNK);
	int r = 0;

	while (off < size) {
		struct fmt_extent e;

		r = fmt_block_status(src, off, size - off, chain, &e);
		if (r < 0)
			break;
		if (want(&e) && (r = copy_extent(src, dst, off, e.length,
						 !(e.status & FMT_ST_DATA), buf)) < 0)
			break;
		off += e.length;
	}
	free(buf);
	return r;
}

static bool top_allocated(const struct fmt_extent *e)
{
	return e->status & FMT_ST_ALLOCATED;
}

int snap_commit(int argc, char **argv)
{
	/* The top is opened without its chain: commit needs only what the top
	 * itself holds, and the base must be opened for writing by itself. */
	struct fmt_open_opts to = { .flags = FMT_O_RDWR | FMT_O_NO_BACKING };
	struct fmt_open_opts bo = { .flags = FMT_O_RDWR };
	struct fmt_image *top, *base;
	bool keep = false;
	int r, i = chain_args(argc, argv, 1, NULL, &keep);

	if (i < 0)
		return 1;
	if (fmt_open(argv[i], &to, &top) < 0) {
		report_err();
		return 1;
	}
	if (!fmt_backing_name(top) || !*fmt_backing_name(top)) {
		report("%s: the image has no backing file to commit into", argv[i]);
		fmt_close(top);
		return 1;
	}
	bo.format = fmt_backing_format(top);
	if (fmt_open(fmt_backing_path(top), &bo, &base) < 0) {
		report_err();
		fmt_close(top);
		return 1;
	}
	r = copy_where(top, base, false, top_allocated);
	if (r >= 0)
		r = fmt_flush(base);
	if (r >= 0 && !keep)
		r = fmt_make_empty(top);
	if (r < 0)
		report("%s: commit failed: %s", argv[i], err_msg());
	else
		printf("Image committed.\n");
	fmt_close(base);
	fmt_close(top);
	return r < 0 || report_close_stdout() ? 1 : 0;
}

static bool backing_data(const struct fmt_extent *e)
{
	return e->depth > 0 && (e->status & FMT_ST_DATA);
}

int snap_stream(int argc, char **argv)
{
	struct fmt_open_opts o = { .flags = FMT_O_RDWR };
	struct fmt_image *top;
	int r, i = chain_args(argc, argv, 1, NULL, NULL);

	if (i < 0)
		return 1;
	if (fmt_open(argv[i], &o, &top) < 0) {
		report_err();
		return 1;
	}
	if (!fmt_backing(top)) {
		fmt_close(top);
		return 0;   /* already stands alone */
	}
	/* Data first, flushed; only then drop the backing link, so a kill
	 * in between leaves an image that still reads the same. */
	r = copy_where(top, top, true, backing_data);
	if (r >= 0)
		r = fmt_flush(top);
	if (r >= 0)
		r = fmt_set_backing(top, NULL, NULL);
	if (r < 0)
		report("%s: stream failed: %s", argv[i], err_msg());
	if (fmt_close(top) < 0 && r >= 0) {
		report_err();
		r = -1;
	}
	return r < 0 ? 1 : 0;
}
