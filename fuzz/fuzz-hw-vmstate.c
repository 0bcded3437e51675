/*
 * Fuzz the whole-machine state loader (lib/hw vmstate.c): loadvm and
 * -loadvm read these bytes from a qcow2 image's VM-state area, which is
 * as untrusted as the image.  The loader checks a CRC-32 before it looks
 * at most of the stream, so the harness appends a valid end section to
 * every input: the fuzzer then explores the header, the section walk,
 * the vCPU and device sections and the compressed RAM chunks.  A bad
 * stream must give an error, never a crash or an out-of-bounds access;
 * a stream that passes every check may load (the machine is reused).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/common.h"
#include "hw/hw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void nop_write(void *o, const uint8_t *b, size_t n) { }
static const struct hw_char_ops nop_char = { nop_write };

static struct machine *fuzz_machine(void)
{
	static struct machine *m;
	struct hw_config c = { .ram_size = 4u << 20, .smp = 1, .accel = "jit" };

	if (m)
		return m;
	c.serial[0] = (struct hw_char_backend){ &nop_char, NULL };
	if (machine_new(&c, &m) < 0) {
		fprintf(stderr, "fuzz-hw-vmstate: machine_new: %s\n", err_msg());
		abort();
	}
	return m;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine *m = fuzz_machine();
	uint8_t *buf = xmalloc(size + 20);
	uint32_t crc;

	if (size)
		memcpy(buf, data, size);
	crc = (uint32_t)crc32(0, buf, (uInt)size);
	memcpy(buf + size, "END ", 4);
	put_le(buf + size + 4, 1, 4);
	put_le(buf + size + 8, 4, 8);
	put_le(buf + size + 16, crc, 4);
	int r = machine_load_state(m, buf, size + 20);

	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "load: %d %s\n", r, r < 0 ? err_msg() : "");
	free(buf);
	return 0;
}
