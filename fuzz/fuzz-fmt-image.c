/*
 * Fuzz the block layer with arbitrary image files: probe and open them
 * (qcow2 headers, L1/L2/refcount tables, snapshot tables, header
 * extensions, backing names), read the disk, walk block status, list
 * snapshots and run a read-only check; then open a copy for writing and
 * write to it.  A corrupt image must give an error, never a crash, a
 * hang or an out-of-bounds access.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define READ_MAX (4u << 20)   /* bytes of the virtual disk looked at */

static int bytes_fd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);

	if (fd >= 0 && write_full(fd, data, size) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void read_side(struct fmt_image *img)
{
	uint64_t size = fmt_size(img), end = size < READ_MAX ? size : READ_MAX, off;
	struct fmt_snapshot *sn;
	struct fmt_check c = { 0 };
	char *buf = xmalloc(65536);
	size_t n;

	for (off = 0; off < end; off += 65536)
		fmt_read(img, buf, off, (size_t)MIN(65536, end - off));
	for (off = 0; off < end;) {
		struct fmt_extent e;

		if (fmt_block_status(img, off, end - off, true, &e) < 0 || !e.length)
			break;
		off += e.length;
	}
	if (fmt_snapshot_list(img, &sn, &n) == 0)
		fmt_snapshots_free(sn, n);
	fmt_check(img, 0, &c);
	free(buf);
}

static void write_side(const char *path)
{
	struct fmt_open_opts o = { .flags = FMT_O_RDWR | FMT_O_NO_BACKING };
	struct fmt_image *img;
	char buf[4096];

	if (fmt_open(path, &o, &img) < 0)
		return;
	memset(buf, 0x5a, sizeof(buf));
	if (fmt_size(img) >= 3 * sizeof(buf)) {
		fmt_write(img, buf, sizeof(buf), sizeof(buf), 0);
		fmt_write_zeroes(img, 2 * sizeof(buf), sizeof(buf), 0);
		fmt_discard(img, 0, sizeof(buf));
	}
	fmt_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fmt_open_opts o = { .flags = FMT_O_CHECK };
	struct fmt_image *img;
	char path[64];
	int fd = bytes_fd(data, size);

	if (fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (fmt_open(path, &o, &img) == 0) {
		read_side(img);
		fmt_close(img);
	}
	write_side(path);
	close(fd);
	return 0;
}
