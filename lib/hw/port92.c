/*
 * System control port A (0x92) of the PS/2 and PIIX: bit 1 fast A20
 * gate, bit 0 fast reset.  A20 is recorded but memory is not wrapped.
 */
#include "common/common.h"
#include "hw/internal.h"

struct hw_port92 { struct machine *m; uint8_t val; };

static uint64_t p92_read(void *opaque, uint64_t off, unsigned size)
{
	return ((struct hw_port92 *)opaque)->val;
}

static void p92_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_port92 *p = opaque;

	p->val = v & 2;
	if (v & 1) {
		LOG(LOG_BOOT, "port 0x92: fast reset");
		hw_request_reset(p->m);
	}
}

static const struct hw_io_ops p92_io = { p92_read, p92_write };

static void p92_reset(void *dev) { ((struct hw_port92 *)dev)->val = 0; }
static void p92_save(void *dev, struct hw_wbuf *w) { hw_put8(w, ((struct hw_port92 *)dev)->val); }

static int p92_load(void *dev, struct hw_rbuf *r)
{
	uint8_t v = hw_get8(r);

	if (r->err)
		return -EINVAL;
	((struct hw_port92 *)dev)->val = v & 2;
	return 0;
}

static void p92_free(void *dev) { free(dev); }

static const struct hw_dev_ops p92_ops = {
	.name = "port92", .version = 1, .reset = p92_reset,
	.save = p92_save, .load = p92_load, .free = p92_free,
};

int port92_new(struct machine *m)
{
	struct hw_port92 *p = xzalloc(sizeof(*p));
	int r;

	p->m = m;
	r = hw_dev_add(m, &p92_ops, p);
	return r < 0 ? r : hw_pio_add(m, 0x92, 1, &p92_io, p, "port92");
}
