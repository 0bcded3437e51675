/*
 * The debug console port 0x402 that SeaBIOS writes its log to (QEMU's
 * isa-debugcon): lines appear under -d boot.  Stateless apart from the
 * line being assembled.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

struct hw_debugcon { char line[256]; size_t n; };

static void dc_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_debugcon *d = opaque;
	char c = v;

	if (c == '\n' || d->n == sizeof(d->line) - 1) {
		d->line[d->n] = 0;
		LOG(LOG_BOOT, "firmware: %s", d->line);
		d->n = 0;
		if (c == '\n')
			return;
	}
	d->line[d->n++] = c;
}

static uint64_t dc_read(void *opaque, uint64_t off, unsigned size) { return 0xe9; }

static const struct hw_io_ops dc_io = { dc_read, dc_write };
static void dc_save(void *dev, struct hw_wbuf *w) { }
static int dc_load(void *dev, struct hw_rbuf *r) { return 0; }
static void dc_free(void *dev) { free(dev); }

static const struct hw_dev_ops dc_ops = {
	.name = "debugcon", .version = 1, .save = dc_save, .load = dc_load, .free = dc_free,
};

int debugcon_new(struct machine *m)
{
	struct hw_debugcon *d = xzalloc(sizeof(*d));
	int r = hw_dev_add(m, &dc_ops, d);

	return r < 0 ? r : hw_pio_add(m, 0x402, 1, &dc_io, d, "debugcon");
}
