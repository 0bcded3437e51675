/*
 * The Intel 8042 keyboard controller (ports 0x60 data, 0x64 status and
 * command) with a PS/2 keyboard and a mouse that answer the probing
 * commands an OS sends, following the IBM PC/AT technical reference:
 * the command byte, self tests, the output port (A20, reset line), the
 * 0xF0-0xFF pulse commands (0xFE resets the machine).  No keys are typed:
 * the console is the serial port.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define QLEN 16

struct hw_i8042 {
	struct machine *m;
	uint8_t cmd_byte, status_sys, outport, pending, kbd_pending;
	uint8_t q[QLEN], qaux[QLEN], qhead, qlen;
};

static void update(struct hw_i8042 *k)
{
	bool obf = k->qlen, aux = obf && k->qaux[k->qhead];

	hw_set_irq(k->m, 1, obf && !aux && (k->cmd_byte & 1));
	hw_set_irq(k->m, 12, obf && aux && (k->cmd_byte & 2));
}

static void push(struct hw_i8042 *k, uint8_t v, bool aux)
{
	if (k->qlen == QLEN)
		return;
	int i = (k->qhead + k->qlen++) % QLEN;
	k->q[i] = v;
	k->qaux[i] = aux;
}

static uint64_t i8042_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_i8042 *k = opaque;
	uint8_t v;

	if (off == 4) {
		v = 0x10 | k->status_sys | (k->pending ? 8 : 0);
		if (k->qlen)
			v |= 1 | (k->qaux[k->qhead] ? 0x20 : 0);
		return v;
	}
	if (!k->qlen)
		return 0;
	v = k->q[k->qhead];
	k->qhead = (k->qhead + 1) % QLEN;
	k->qlen--;
	/* OBF drops when the byte is read and rises again for the next one:
	 * an edge per byte, which edge-triggered IRQ 1/12 need. */
	hw_set_irq(k->m, 1, false);
	hw_set_irq(k->m, 12, false);
	update(k);
	return v;
}

static void kbd_command(struct hw_i8042 *k, uint8_t v)
{
	if (k->kbd_pending) {	/* argument of 0xED, 0xF0, 0xF3 */
		k->kbd_pending = 0;
		push(k, 0xfa, false);
		return;
	}
	switch (v) {
	case 0xff: push(k, 0xfa, false); push(k, 0xaa, false); break;
	case 0xf2: push(k, 0xfa, false); push(k, 0xab, false); push(k, 0x83, false); break;
	case 0xee: push(k, 0xee, false); break;
	case 0xed: case 0xf0: case 0xf3:
		k->kbd_pending = v;
		push(k, 0xfa, false);
		break;
	default: push(k, 0xfa, false); break;
	}
}

static void aux_command(struct hw_i8042 *k, uint8_t v)
{
	push(k, 0xfa, true);
	if (v == 0xff) {
		push(k, 0xaa, true);
		push(k, 0x00, true);
	} else if (v == 0xf2) {
		push(k, 0x00, true);
	}
}

static void write_outport(struct hw_i8042 *k, uint8_t v)
{
	k->outport = v;
	if (!(v & 1)) {
		LOG(LOG_BOOT, "i8042: reset through the output port");
		hw_request_reset(k->m);
	}
}

static void controller_command(struct hw_i8042 *k, uint8_t v)
{
	switch (v) {
	case 0x20: push(k, k->cmd_byte, false); break;
	case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
		k->pending = v;
		break;
	case 0xa7: k->cmd_byte |= 0x20; break;
	case 0xa8: k->cmd_byte &= ~0x20; break;
	case 0xa9: case 0xab: push(k, 0x00, false); break;
	case 0xaa:
		k->status_sys = 4;
		push(k, 0x55, false);
		break;
	case 0xad: k->cmd_byte |= 0x10; break;
	case 0xae: k->cmd_byte &= ~0x10; break;
	case 0xc0: push(k, 0x80, false); break;
	case 0xd0: push(k, k->outport, false); break;
	default:
		if (v >= 0xf0) {
			if (!(v & 1)) {
				LOG(LOG_BOOT, "i8042: reset pulse");
				hw_request_reset(k->m);
			}
		} else {
			LOG(LOG_UNIMP, "i8042: command 0x%02x", v);
		}
	}
}

static void i8042_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	struct hw_i8042 *k = opaque;
	uint8_t v = val, p = k->pending;

	if (off == 4) {
		k->pending = 0;
		controller_command(k, v);
	} else if (p) {
		k->pending = 0;
		switch (p) {
		case 0x60:
			k->cmd_byte = v;
			k->status_sys = v & 4;
			break;
		case 0xd1: write_outport(k, v); break;
		case 0xd2: push(k, v, false); break;
		case 0xd3: push(k, v, true); break;
		case 0xd4: aux_command(k, v); break;
		}
	} else {
		kbd_command(k, v);
	}
	update(k);
}

static uint64_t cmd_read(void *o, uint64_t off, unsigned size) { return i8042_read(o, 4, size); }
static void cmd_write(void *o, uint64_t off, uint64_t v, unsigned size) { i8042_write(o, 4, v, size); }

static const struct hw_io_ops i8042_data_io = { i8042_read, i8042_write };
static const struct hw_io_ops i8042_cmd_io = { cmd_read, cmd_write };

static void i8042_reset(void *dev)
{
	struct hw_i8042 *k = dev;

	k->cmd_byte = 0x61;
	k->status_sys = 0;
	k->outport = 0x03;
	k->pending = k->kbd_pending = 0;
	k->qhead = k->qlen = 0;
	update(k);
}

static void i8042_save(void *dev, struct hw_wbuf *w)
{
	struct hw_i8042 *k = dev;
	uint8_t b[] = { k->cmd_byte, k->status_sys, k->outport, k->pending, k->kbd_pending,
			k->qlen };

	hw_putb(w, b, sizeof(b));
	for (int i = 0; i < k->qlen; i++) {
		hw_put8(w, k->q[(k->qhead + i) % QLEN]);
		hw_put8(w, k->qaux[(k->qhead + i) % QLEN]);
	}
}

static int i8042_load(void *dev, struct hw_rbuf *r)
{
	struct hw_i8042 *k = dev;
	uint8_t b[6];

	hw_getb(r, b, sizeof(b));
	if (r->err || b[5] > QLEN)
		return -EINVAL;
	k->cmd_byte = b[0]; k->status_sys = b[1] & 4; k->outport = b[2] | 1;
	k->pending = b[3]; k->kbd_pending = b[4];
	k->qhead = 0;
	k->qlen = b[5];
	for (int i = 0; i < k->qlen; i++) {
		k->q[i] = hw_get8(r);
		k->qaux[i] = hw_get8(r) & 1;
	}
	update(k);
	return r->err;
}

static void i8042_free(void *dev) { free(dev); }

static const struct hw_dev_ops i8042_ops = {
	.name = "i8042", .version = 1, .reset = i8042_reset,
	.save = i8042_save, .load = i8042_load, .free = i8042_free,
};

int i8042_new(struct machine *m)
{
	struct hw_i8042 *k = xzalloc(sizeof(*k));
	int r;

	k->m = m;
	k->cmd_byte = 0x61;
	k->outport = 0x03;
	r = hw_dev_add(m, &i8042_ops, k);
	r = r < 0 ? r : hw_pio_add(m, 0x60, 1, &i8042_data_io, k, "i8042");
	return r < 0 ? r : hw_pio_add(m, 0x64, 1, &i8042_cmd_io, k, "i8042");
}
