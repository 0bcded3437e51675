/*
 * Unit tests of lib/fmt internals: the probed-raw guard on sector 0,
 * raw block status through SEEK_DATA/SEEK_HOLE, qcow2 refcount entry
 * packing for every width, and concurrent qcow2 writes from many threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "fmt/internal.h"
#include "unit.h"

static char dir[] = "/tmp/test-fmt-XXXXXX";

static char *path(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void test_raw_guard(void)
{
	struct fmt_open_opts probe = { .flags = FMT_O_RDWR };
	struct fmt_open_opts named = { .format = "raw", .flags = FMT_O_RDWR };
	uint8_t hdr[512] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
	char *p = path("r.raw");
	struct fmt_image *img;

	CHECK(fmt_create("raw", p, 1 << 20, NULL, NULL, NULL) == 0, "create raw");
	CHECK(fmt_open(p, &probe, &img) == 0, "open probed raw");
	CHECK(fmt_write(img, hdr, 0, sizeof(hdr), 0) == -EPERM,
	      "probed raw refuses a qcow2 header in sector 0");
	CHECK(fmt_write(img, hdr, 4096, sizeof(hdr), 0) == 0,
	      "probed raw accepts the same bytes elsewhere");
	fmt_close(img);
	CHECK(fmt_open(p, &named, &img) == 0, "open named raw");
	CHECK(fmt_write(img, hdr, 0, sizeof(hdr), 0) == 0,
	      "raw named with -f raw accepts it");
	fmt_close(img);
	free(p);
}

static void test_raw_status(void)
{
	struct fmt_open_opts o = { .format = "raw", .flags = FMT_O_RDWR };
	char *p = path("s.raw");
	struct fmt_image *img;
	struct fmt_extent e;
	uint8_t buf[4096];

	memset(buf, 7, sizeof(buf));
	fmt_create("raw", p, 8 << 20, NULL, NULL, NULL);
	fmt_open(p, &o, &img);
	fmt_write(img, buf, 1 << 20, sizeof(buf), 0);
	CHECK(fmt_block_status(img, 0, 8 << 20, true, &e) == 0 &&
	      (e.status & FMT_ST_ZERO) && e.length == 1 << 20, "hole before data");
	CHECK(fmt_block_status(img, 1 << 20, 4096, true, &e) == 0 &&
	      (e.status & FMT_ST_DATA) && e.host_offset == 1 << 20, "data extent");
	fmt_close(img);
	free(p);
}

static void test_refcount_packing(void)
{
	uint32_t order;

	for (order = 0; order <= 6; order++) {
		struct qcow2 s = { .refcount_bits = 1u << order };
		uint8_t blk[512] = { 0 };
		uint64_t max = order == 6 ? UINT64_MAX : (1ull << (1u << order)) - 1;
		bool ok = true;
		uint64_t i;

		for (i = 0; i < 64; i++)
			qcow2_rb_set(&s, blk, i, (i * 7) & max);
		for (i = 0; i < 64; i++)
			ok &= qcow2_rb_get(&s, blk, i) == ((i * 7) & max);
		CHECK(ok, "refcount entries of %u bits round-trip", 1u << order);
	}
}

struct writer { struct fmt_image *img; int id; int err; };

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	uint8_t buf[65536];
	int i;

	for (i = 0; i < 64; i++) {
		memset(buf, w->id * 64 + i, sizeof(buf));
		if (fmt_write(w->img, buf, ((uint64_t)i * 8 + (uint64_t)w->id) * 65536,
			      sizeof(buf), 0) < 0)
			w->err = 1;
	}
	return NULL;
}

static void test_qcow2_threads(void)
{
	struct fmt_open_opts o = { .format = "qcow2", .flags = FMT_O_RDWR };
	struct writer w[8];
	pthread_t t[8];
	char *p = path("t.qcow2");
	struct fmt_image *img;
	struct fmt_check c = { 0 };
	uint8_t buf[65536];
	bool ok = true;
	int i, j;

	CHECK(fmt_create("qcow2", p, 64 << 20, NULL, NULL, NULL) == 0, "create qcow2");
	CHECK(fmt_open(p, &o, &img) == 0, "open qcow2");
	for (i = 0; i < 8; i++) {
		w[i] = (struct writer){ img, i, 0 };
		pthread_create(&t[i], NULL, writer_run, &w[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok &= !w[i].err;
	}
	CHECK(ok, "8 threads write 512 clusters concurrently");
	for (i = 0; i < 8 && ok; i++)
		for (j = 0; j < 64 && ok; j++) {
			fmt_read(img, buf, ((uint64_t)j * 8 + (uint64_t)i) * 65536, sizeof(buf));
			ok &= buf[0] == (uint8_t)(i * 64 + j) && buf[65535] == buf[0];
		}
	CHECK(ok, "every cluster reads back what its thread wrote");
	CHECK(fmt_check(img, 0, &c) == 0 && !c.corruptions && !c.leaks,
	      "no leaks or corruptions after concurrent writes");
	fmt_close(img);
	free(p);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_raw_guard();
	test_raw_status();
	test_refcount_packing();
	test_qcow2_threads();
	if (fork() == 0)
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
	return unit_done();
}
