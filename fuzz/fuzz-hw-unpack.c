/*
 * Fuzz the host-side kernel unpacker (lib/hw boot-unpack.c): the input
 * is what a bzImage's payload inflates to, an ELF vmlinux followed by
 * its relocation table.  The harness wraps it as vm-run would meet it
 * (a boot protocol 2.15 header for a relocatable 64-bit kernel with a
 * gzip payload, preferred address 1 MiB, init_size 1 MiB) in a memfd and
 * builds a machine from it with KASLR on (the random shift is whatever
 * getrandom gives).  A bad vmlinux must give an error or fall back to
 * the guest decompressor, never a crash or an access outside guest RAM.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "common/common.h"
#include "hw/hw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nop_write(void *o, const uint8_t *b, size_t n) { }
static const struct hw_char_ops nop_char = { nop_write };

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A bzImage around the gzip-compressed vmlinux: two sectors of setup. */
static size_t make_bzimage(const uint8_t *data, size_t size, uint8_t **out)
{
	uLong bound = compressBound((uLong)size) + 64;
	uint8_t *img = xzalloc(1024 + bound);
	z_stream z = { 0 };

	img[0x1f1] = 1;				/* setup_sects */
	memcpy(img + 0x202, "HdrS", 4);
	put_le(img + 0x206, 0x020f, 2);		/* protocol 2.15 */
	img[0x211] = 1;				/* LOADED_HIGH */
	img[0x234] = 1;				/* relocatable_kernel */
	put_le(img + 0x230, 0x200000, 4);	/* kernel_alignment */
	img[0x236] = 1;				/* XLF_KERNEL_64 */
	put_le(img + 0x238, 2048, 4);		/* cmdline_size */
	put_le(img + 0x258, 0x100000, 8);	/* pref_address */
	put_le(img + 0x260, 0x100000, 4);	/* init_size */
	deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (uint8_t *)data;
	z.avail_in = (uInt)size;
	z.next_out = img + 1024;
	z.avail_out = (uInt)bound;
	deflate(&z, Z_FINISH);
	put_le(img + 0x24c, z.total_out, 4);	/* payload_length; offset 0 */
	size = 1024 + z.total_out;
	deflateEnd(&z);
	*out = img;
	return size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hw_config c = { .ram_size = 8u << 20, .smp = 1, .accel = "jit",
			       .append = "console=ttyS0", .no_kernel_cache = true };
	struct machine *m = NULL;
	uint8_t *img;
	size_t len = make_bzimage(data, size, &img);
	int fd = memfd_create("fuzz-bzimage", 0);
	char path[64];

	if (fd < 0 || write(fd, img, len) != (ssize_t)len)
		abort();
	free(img);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	c.kernel = path;
	c.serial[0] = (struct hw_char_backend){ &nop_char, NULL };
	if (machine_new(&c, &m) == 0)
		machine_free(m);
	close(fd);
	return 0;
}
