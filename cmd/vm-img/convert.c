/*
 * vm-img convert: copy one or more images (concatenated) into a new or
 * existing (-n) image of any writable format.  The source is walked by
 * block status so holes and zero extents are never read; data chunks are
 * checked for zero runs of -S bytes (default 4 KiB) that are skipped when
 * the target reads as zeros.  -m workers read, detect zeros and compress
 * (-c, on all cores) in parallel; without -W (and without -c) chunks are
 * written in order.  With -B only what the top source layer allocates is
 * copied, the rest is left to the new backing file.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

struct conv {
	struct fmt_image **src;
	uint64_t *src_start;     /* offset of each source in the whole */
	int nsrc;
	uint64_t total, chunk, sparse, nchunks;
	struct fmt_image *dst;
	bool compress, zero_init, top_only, in_order;
	pthread_mutex_t lock;
	pthread_cond_t turn;
	uint64_t next, written, done_bytes;
	int err;
	char errmsg[512];
	struct progress prog;
};

struct conv_opts {
	const char *fmt, *out_fmt, *backing, *backing_fmt, *snapshot;
	char *opts;
	uint64_t sparse;
	int threads;
	bool compress, no_create, target_zero, unordered, progress, target_opts;
};

static void conv_fail(struct conv *c, int r)
{
	pthread_mutex_lock(&c->lock);
	if (!c->err) {
		c->err = r;
		snprintf(c->errmsg, sizeof(c->errmsg), "%s", err_msg());
	}
	pthread_cond_broadcast(&c->turn);
	pthread_mutex_unlock(&c->lock);
}

/* Source index holding offset off. */
static int conv_src(const struct conv *c, uint64_t off)
{
	int i = c->nsrc - 1;

	while (i > 0 && c->src_start[i] > off)
		i--;
	return i;
}

/* Write data, skipping (or zeroing) zero runs of c->sparse bytes. */
static int conv_write_data(struct conv *c, const uint8_t *buf, uint64_t off,
			   uint64_t n)
{
	uint64_t g = c->sparse, i = 0, j;
	uint32_t cs = fmt_cluster_size(c->dst);
	int r;

	if (c->compress) {
		for (i = 0; i < n; i += cs) {
			j = MIN(cs, n - i);
			if (fmt_is_zero(buf + i, j) && c->zero_init)
				continue;
			if ((r = fmt_write(c->dst, buf + i, off + i, j, FMT_W_COMPRESSED)) < 0)
				return r;
		}
		return 0;
	}
	if (!g)
		return fmt_write(c->dst, buf, off, n, 0);
	while (i < n) {
		bool z = fmt_is_zero(buf + i, MIN(g, n - i));

		for (j = i; j < n && fmt_is_zero(buf + j, MIN(g, n - j)) == z; j += g)
			;
		j = MIN(j, n);
		if (!z)
			r = fmt_write(c->dst, buf + i, off + i, j - i, 0);
		else
			r = c->zero_init ? 0 : fmt_write_zeroes(c->dst, off + i, j - i,
								FMT_W_MAY_UNMAP);
		if (r < 0)
			return r;
		i = j;
	}
	return 0;
}

/* Read [off, off+n) of the concatenated sources. */
static int conv_read(struct conv *c, uint8_t *buf, uint64_t off, uint64_t n)
{
	while (n) {
		int i = conv_src(c, off);
		uint64_t so = off - c->src_start[i];
		uint64_t len = MIN(n, fmt_size(c->src[i]) - so);
		int r = fmt_read(c->src[i], buf, so, len);

		if (r < 0)
			return r;
		buf += len;
		off += len;
		n -= len;
	}
	return 0;
}

/* Compression works on whole clusters: skip a chunk that is all zero,
 * else read it whole and compress each non-zero cluster. */
static int conv_chunk_compressed(struct conv *c, uint64_t off, uint64_t n,
				 uint8_t *buf)
{
	struct fmt_extent e;
	int i = conv_src(c, off), r;
	uint64_t so = off - c->src_start[i];

	if (so + n <= fmt_size(c->src[i]) &&
	    (r = fmt_block_status(c->src[i], so, n, true, &e)) == 0 &&
	    e.length == n && (e.status & FMT_ST_ZERO) && c->zero_init)
		return 0;
	if ((r = conv_read(c, buf, off, n)) < 0)
		return r;
	return conv_write_data(c, buf, off, n);
}

static int conv_chunk(struct conv *c, uint64_t off, uint64_t n, uint8_t *buf)
{
	if (c->compress && !c->top_only)
		return conv_chunk_compressed(c, off, n, buf);

	uint64_t end = off + n;
	struct fmt_extent e;
	int r;

	while (off < end) {
		int i = conv_src(c, off);
		struct fmt_image *s = c->src[i];
		uint64_t so = off - c->src_start[i];
		uint64_t len = MIN(end - off, fmt_size(s) - so);

		if ((r = fmt_block_status(s, so, len, !c->top_only, &e)) < 0)
			return r;
		len = e.length;
		if (c->top_only && !(e.status & FMT_ST_ALLOCATED))
			r = 0;
		else if (e.status & FMT_ST_ZERO)
			r = c->zero_init ? 0 : fmt_write_zeroes(c->dst, off, len,
								FMT_W_MAY_UNMAP);
		else if ((r = fmt_read(s, buf + (off - (end - n)), so, len)) == 0)
			r = conv_write_data(c, buf + (off - (end - n)), off, len);
		if (r < 0)
			return r;
		off += len;
	}
	return 0;
}

static void conv_worker(void *arg)
{
	struct conv *c = arg;
	uint8_t *buf = xmalloc(c->chunk);
	uint64_t idx, off, n;
	int r;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		idx = c->next++;
		if (c->in_order)
			while (!c->err && c->written != idx && idx < c->nchunks)
				pthread_cond_wait(&c->turn, &c->lock);
		if (c->err || idx >= c->nchunks) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		pthread_mutex_unlock(&c->lock);
		off = idx * c->chunk;
		n = MIN(c->chunk, c->total - off);
		r = conv_chunk(c, off, n, buf);
		if (r < 0) {
			conv_fail(c, r);
			break;
		}
		pthread_mutex_lock(&c->lock);
		c->written++;
		c->done_bytes += n;
		progress_update(&c->prog, c->done_bytes, c->total);
		pthread_cond_broadcast(&c->turn);
		pthread_mutex_unlock(&c->lock);
	}
	free(buf);
}

static int conv_copy(struct conv *c, int threads)
{
	struct pool *p;
	int i;

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->turn, NULL);
	c->nchunks = DIV_ROUND_UP(c->total, c->chunk);
	if (c->compress)
		threads = MAX(threads, cpu_count());
	p = pool_new(threads);
	for (i = 0; i < threads; i++)
		pool_submit(p, conv_worker, c);
	pool_wait(p);
	pool_free(p);
	progress_end(&c->prog);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->turn);
	if (c->err) {
		report("error while converting: %s", c->errmsg);
		return 1;
	}
	if (fmt_flush(c->dst) < 0) {
		report_err();
		return 1;
	}
	return 0;
}

static const struct option conv_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "target-image-opts", no_argument, NULL, OPT_TARGET_OPTS },
	{ "target-is-zero", no_argument, NULL, OPT_TARGET_ZERO },
	{ "bitmaps", no_argument, NULL, OPT_BITMAPS },
	{ "skip-broken-bitmaps", no_argument, NULL, OPT_SKIP_BROKEN },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const char *conv_snapshot_arg(const char *s)
{
	if (!strncmp(s, "snapshot.name=", 14))
		return s + 14;
	if (!strncmp(s, "snapshot.id=", 12))
		return s + 12;
	return s;
}

static int conv_parse(int argc, char **argv, struct img_ctx *ctx,
		      struct conv_opts *o)
{
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:O:B:F:o:l:S:m:t:T:r:cCnpqUW",
				conv_lo, NULL)) != -1) {
		if ((r = img_common_opt(ctx, c, optarg)) != 0) {
			if (r < 0)
				return -1;
			continue;
		}
		switch (c) {
		case 'f': o->fmt = optarg; break;
		case 'O': o->out_fmt = optarg; break;
		case 'B': o->backing = optarg; break;
		case 'F': o->backing_fmt = optarg; break;
		case 'o': img_add_opts(&o->opts, optarg); break;
		case 'l': o->snapshot = conv_snapshot_arg(optarg); break;
		case 'S':
			if (size_parse(optarg, 0, &o->sparse) < 0) {
				report("Invalid buffer size for sparse output specified. "
				       "Valid sizes are multiples of 512 up to 16M.");
				return -1;
			}
			break;
		case 'm':
			if (parse_int(optarg, 1, 16, &o->threads) < 0) {
				report("Invalid number of coroutines. Allowed number of "
				       "coroutines is between 1 and 16");
				return -1;
			}
			break;
		case 't': case 'T':
			if (img_cache_flags(optarg, &ctx->cache) < 0)
				return -1;
			break;
		case 'r': case 'C': break;
		case 'c': o->compress = true; break;
		case 'n': o->no_create = true; break;
		case 'p': o->progress = true; break;
		case 'W': o->unordered = true; break;
		case OPT_TARGET_OPTS: o->target_opts = true; break;
		case OPT_TARGET_ZERO: o->target_zero = true; break;
		case OPT_BITMAPS: case OPT_SKIP_BROKEN:
			report("--bitmaps is not supported");
			return -1;
		case 'h': printf("usage: vm-img convert [options] src... dst\n"); exit(0);
		default: img_bad_option("convert", optopt, argv); return -1;
		}
	}
	if (argc - optind < 2) {
		report("Expecting image file name");
		return -1;
	}
	if (o->sparse % 512 || o->sparse > (16u << 20)) {
		report("Invalid buffer size for sparse output specified. Valid sizes "
		       "are multiples of 512 up to 16M.");
		return -1;
	}
	if (o->target_zero && !o->no_create) {
		report("--target-is-zero requires use of -n flag");
		return -1;
	}
	if (o->backing && o->no_create) {
		report("-B makes no sense when the target is not being created");
		return -1;
	}
	return 0;
}

static int conv_create(struct conv *c, struct conv_opts *o, const char *out,
		       struct img_ctx *ctx)
{
	struct kvlist kv = { 0 };
	int r;

	if (o->opts && kv_parse(o->opts, NULL, &kv) < 0) {
		report_err();
		return -1;
	}
	if (o->backing) {
		kv_set(&kv, "backing_file", o->backing);
		if (o->backing_fmt)
			kv_set(&kv, "backing_fmt", o->backing_fmt);
	}
	r = fmt_create(o->out_fmt, out, c->total, &kv, ctx->secrets, NULL);
	kv_free(&kv);
	if (r < 0) {
		report_err();
		return -1;
	}
	return 0;
}

static int conv_open_sources(struct conv *c, struct conv_opts *o, char **names,
			     int n, struct img_ctx *ctx)
{
	struct fmt_open_opts so = { .format = o->fmt, .snapshot = o->snapshot,
				    .secrets = ctx->secrets };
	int i;

	c->src = xzalloc(sizeof(*c->src) * (size_t)n);
	c->src_start = xzalloc(sizeof(uint64_t) * (size_t)n);
	c->nsrc = n;
	for (i = 0; i < n; i++) {
		if (o->snapshot) {
			so.flags = ctx->cache | (ctx->share ? FMT_O_SHARE : 0);
			if (fmt_open(names[i], &so, &c->src[i]) < 0) {
				report_err();
				return -1;
			}
		} else if (img_open(ctx, names[i], o->fmt, 0, &c->src[i]) < 0)
			return -1;
		c->src_start[i] = c->total;
		c->total += fmt_size(c->src[i]);
	}
	return 0;
}

static int conv_setup_target(struct conv *c, struct conv_opts *o, const char *out,
			     struct img_ctx *ctx)
{
	struct img_ctx tctx = { .cache = ctx->cache, .image_opts = o->target_opts,
				.secrets = ctx->secrets };
	uint32_t cs;

	if (!o->no_create && conv_create(c, o, out, ctx) < 0)
		return -1;
	if (img_open(&tctx, out, o->target_opts ? NULL : o->out_fmt, FMT_O_RDWR,
		     &c->dst) < 0)
		return -1;
	if (fmt_size(c->dst) < c->total) {
		report("Target image is smaller than the source");
		return -1;
	}
	cs = fmt_cluster_size(c->dst);
	if (o->compress && !cs) {
		report("Compression not supported for this file format");
		return -1;
	}
	c->chunk = ALIGN_UP(MAX(1u << 21, cs), cs ? cs : 1);
	c->compress = o->compress;
	c->sparse = o->sparse;
	c->top_only = o->backing != NULL;
	c->zero_init = o->no_create ? o->target_zero : !o->backing;
	c->in_order = !o->unordered && !o->compress;
	progress_init(&c->prog, o->progress && !ctx->quiet, 1.0);
	return 0;
}

int cmd_convert(int argc, char **argv)
{
	struct conv_opts o = { .out_fmt = "raw", .sparse = 4096, .threads = 8 };
	struct img_ctx ctx = { 0 };
	struct conv c = { 0 };
	int r = 1, i;

	if (conv_parse(argc, argv, &ctx, &o) < 0)
		goto out;
	if (o.opts && kv_is_help(o.opts)) {
		r = img_print_create_opts(o.out_fmt);
		goto out;
	}
	if (conv_open_sources(&c, &o, argv + optind, argc - optind - 1, &ctx) < 0 ||
	    conv_setup_target(&c, &o, argv[argc - 1], &ctx) < 0)
		goto out;
	r = conv_copy(&c, o.threads);
out:
	if (c.dst && fmt_close(c.dst) < 0 && r == 0) {
		report_err();
		r = 1;
	}
	for (i = 0; i < c.nsrc; i++)
		fmt_close(c.src[i]);
	free(c.src);
	free(c.src_start);
	free(o.opts);
	img_ctx_free(&ctx);
	return r;
}
