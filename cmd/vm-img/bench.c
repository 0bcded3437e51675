/*
 * vm-img bench: qemu-img bench [-c count] [-d depth] [-f fmt]
 * [--flush-interval=N] [-i aio] [-n] [--no-drain] [-o offset]
 * [--pattern=N] [-q] [-s size] [-S step] [-t cache] [-w] [-U] filename.
 * `depth` requests are in flight at once (one thread each, at most 64).
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

struct bench {
	struct fmt_image *img;
	uint64_t count, size, step, offset, flush_every;
	uint64_t next, done_since_flush;
	bool write;
	int pattern, err;
	pthread_mutex_t lock;
};

static void bench_worker(void *arg)
{
	struct bench *b = arg;
	uint8_t *buf = xmalloc(b->size);
	uint64_t i, off, span = fmt_size(b->img);

	memset(buf, b->pattern, b->size);
	for (;;) {
		bool flush = false;

		pthread_mutex_lock(&b->lock);
		i = b->next++;
		if (b->flush_every && ++b->done_since_flush >= b->flush_every) {
			b->done_since_flush = 0;
			flush = true;
		}
		pthread_mutex_unlock(&b->lock);
		if (i >= b->count || b->err)
			break;
		off = (b->offset + i * b->step) % (span - b->size + 1);
		if ((b->write ? fmt_write(b->img, buf, off, b->size, 0)
			      : fmt_read(b->img, buf, off, b->size)) < 0 ||
		    (flush && fmt_flush(b->img) < 0)) {
			b->err = 1;
			break;
		}
	}
	free(buf);
}

static const struct option bench_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
	{ "no-drain", no_argument, NULL, OPT_NO_DRAIN },
	{ "pattern", required_argument, NULL, OPT_PATTERN },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int bench_num(const char *s, uint64_t *v, bool size)
{
	if ((size ? size_parse(s, 0, v) : parse_u64(s, 0, UINT64_MAX, v)) < 0) {
		report("Invalid number: '%s'", s);
		return -1;
	}
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	struct bench b = { .count = 75000, .size = 4096 };
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL;
	struct timespec t0, t1;
	uint64_t depth = 64, v;
	bool step_set = false, native = false;
	struct pool *p;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hc:d:f:i:no:qs:S:t:wU", bench_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'c': if (bench_num(optarg, &b.count, false) < 0) return 1; break;
		case 'd': if (bench_num(optarg, &depth, false) < 0 || !depth) return 1; break;
		case 'f': fmt = optarg; break;
		case 'i':
			if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
			    strcmp(optarg, "io_uring")) {
				report("Invalid aio option: %s", optarg);
				return 1;
			}
			native = !strcmp(optarg, "native");
			break;
		case 'n': native = true; break;
		case OPT_NO_DRAIN: break;
		case 'o': if (bench_num(optarg, &b.offset, true) < 0) return 1; break;
		case 's': if (bench_num(optarg, &b.size, true) < 0 || !b.size) return 1; break;
		case 'S': if (bench_num(optarg, &b.step, true) < 0) return 1; step_set = true; break;
		case 't': if (img_cache_flags(optarg, &ctx.cache) < 0) return 1; break;
		case 'w': b.write = true; break;
		case OPT_FLUSH_INTERVAL: if (bench_num(optarg, &b.flush_every, false) < 0) return 1; break;
		case OPT_PATTERN:
			if (bench_num(optarg, &v, false) < 0 || v > 255) return 1;
			b.pattern = (int)v;
			break;
		case 'h': printf("usage: vm-img bench [options] filename\n"); return 0;
		default: return img_bad_option("bench", optopt, argv);
		}
	}
	if (optind != argc - 1) {
		report("Expecting one image file name");
		return 1;
	}
	if (!step_set)
		b.step = b.size;
	if (native && !(ctx.cache & FMT_O_NOCACHE)) {
		report("Could not open '%s': aio=native was specified, but it requires "
		       "cache.direct=on, which was not specified.", argv[optind]);
		return 1;
	}
	if (img_open(&ctx, argv[optind], fmt, b.write ? FMT_O_RDWR : 0, &b.img) < 0)
		return 1;
	if (b.size > fmt_size(b.img)) {
		report("Request size is larger than the image");
		fmt_close(b.img);
		return 1;
	}
	if (!ctx.quiet)
		printf("Sending %llu %s requests, %llu bytes each, %llu in parallel "
		       "(starting at offset %llu, step size %llu)\n",
		       (unsigned long long)b.count, b.write ? "write" : "read",
		       (unsigned long long)b.size, (unsigned long long)depth,
		       (unsigned long long)b.offset, (unsigned long long)b.step);
	pthread_mutex_init(&b.lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	p = pool_new((int)MIN(depth, 64));
	for (v = 0; v < MIN(depth, 64); v++)
		pool_submit(p, bench_worker, &b);
	pool_free(p);
	if (!b.err && b.write)
		b.err = fmt_flush(b.img) < 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!ctx.quiet && !b.err)
		printf("Run completed in %3.3f seconds.\n", (double)(t1.tv_sec - t0.tv_sec) +
		       (t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (b.err)
		report_err();
	fmt_close(b.img);
	pthread_mutex_destroy(&b.lock);
	img_ctx_free(&ctx);
	return b.err ? 1 : 0;
}
