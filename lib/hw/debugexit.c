/*
 * QEMU's isa-debug-exit device (-device isa-debug-exit,iobase=,iosize=):
 * a write of value v ends the emulator with exit status (v << 1) | 1, so
 * test kernels written for QEMU run unchanged.  Stateless.
 */
#include "common/common.h"
#include "hw/internal.h"

struct hw_debugexit { struct machine *m; };

static void dx_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_debugexit *d = opaque;

	hw_request_exit(d->m, HW_STOP_DEBUG_EXIT, (int)(((v << 1) | 1) & 0xff));
}

static const struct hw_io_ops dx_io = { NULL, dx_write };

static void dx_save(void *dev, struct hw_wbuf *w) { }
static int dx_load(void *dev, struct hw_rbuf *r) { return 0; }
static void dx_free(void *dev) { free(dev); }

static const struct hw_dev_ops dx_ops = {
	.name = "isa-debug-exit", .version = 1,
	.save = dx_save, .load = dx_load, .free = dx_free,
};

int debugexit_new(struct machine *m, uint16_t port, uint8_t size)
{
	struct hw_debugexit *d = xzalloc(sizeof(*d));
	int r;

	d->m = m;
	r = hw_dev_add(m, &dx_ops, d);
	return r < 0 ? r : hw_pio_add(m, port, size ? size : 1, &dx_io, d, "isa-debug-exit");
}
