/*
 * The Intel 8042 keyboard controller (ports 0x60 data, 0x64 status and
 * command) with a PS/2 keyboard and a mouse that answer the probing
 * commands an OS sends, following the IBM PC/AT technical reference:
 * the command byte, self tests, the output port (A20, reset line), the
 * 0xF0-0xFF pulse commands (0xFE resets the machine).  Keys come only
 * from the monitor (send-key): the console is the serial port.  The
 * keyboard speaks scancode set 2; with the command byte's translation
 * bit (6) set, as firmware and Linux leave it, the controller hands the
 * host set 1 instead -- so set 1 goes out directly, and set 2 is made
 * from it only when translation is off.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define QLEN 64
#define MAX_HELD 16

struct hw_i8042 {
	struct machine *m;
	uint8_t cmd_byte, status_sys, outport, pending, kbd_pending;
	uint8_t q[QLEN], qaux[QLEN], qhead, qlen;
	/* send-key: keys held until the release timer fires */
	struct hw_timer release;
	uint16_t held[MAX_HELD];
	int nheld;
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

/* ---- keys from the monitor ---- */

/* Scancode set 2 of each set-1 code 0x00-0x58 (0: none). */
static const uint8_t set2_of[0x59] = {
	0x00, 0x76, 0x16, 0x1e, 0x26, 0x25, 0x2e, 0x36, 0x3d, 0x3e, 0x46, 0x45, 0x4e, 0x55, 0x66, 0x0d,
	0x15, 0x1d, 0x24, 0x2d, 0x2c, 0x35, 0x3c, 0x43, 0x44, 0x4d, 0x54, 0x5b, 0x5a, 0x14, 0x1c, 0x1b,
	0x23, 0x2b, 0x34, 0x33, 0x3b, 0x42, 0x4b, 0x4c, 0x52, 0x0e, 0x12, 0x5d, 0x1a, 0x22, 0x21, 0x2a,
	0x32, 0x31, 0x3a, 0x41, 0x49, 0x4a, 0x59, 0x7c, 0x11, 0x29, 0x58, 0x05, 0x06, 0x04, 0x0c, 0x03,
	0x0b, 0x83, 0x0a, 0x01, 0x09, 0x77, 0x7e, 0x6c, 0x75, 0x7d, 0x7b, 0x6b, 0x73, 0x74, 0x79, 0x69,
	0x72, 0x7a, 0x70, 0x71, 0x84, 0x00, 0x61, 0x78, 0x07,
};

/* The set-2 code of qnum (0x80 | code for 0xe0 keys), 0 when none. */
static uint8_t set2_code(uint16_t qnum)
{
	uint8_t c = qnum & 0x7f;

	if (qnum & 0x80) {
		if (c >= 0x5b && c <= 0x5d)		/* the Windows and menu keys */
			return (uint8_t[]){ 0x1f, 0x27, 0x2f }[c - 0x5b];
	}
	return c < sizeof(set2_of) ? set2_of[c] : 0;
}

/* One key going down or up, as the host reads it (lock held). */
static void key_event(struct hw_i8042 *k, uint16_t qnum, bool down)
{
	bool ext = qnum & 0x80;

	if (k->cmd_byte & 0x40) {
		if (ext)
			push(k, 0xe0, false);
		push(k, (qnum & 0x7f) | (down ? 0 : 0x80), false);
		return;
	}
	if (ext)
		push(k, 0xe0, false);
	if (!down)
		push(k, 0xf0, false);
	push(k, set2_code(qnum), false);
}

static void release_keys(void *opaque)
{
	struct hw_i8042 *k = opaque;

	while (k->nheld)
		key_event(k, k->held[--k->nheld], false);
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
	k->nheld = 0;
	hw_timer_del(k->m, &k->release);
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

static void i8042_free(void *dev)
{
	struct hw_i8042 *k = dev;

	hw_timer_del(k->m, &k->release);
	free(k);
}

static const struct hw_dev_ops i8042_ops = {
	.name = "i8042", .version = 1, .reset = i8042_reset,
	.save = i8042_save, .load = i8042_load, .free = i8042_free,
};

int i8042_new(struct machine *m)
{
	struct hw_i8042 *k = xzalloc(sizeof(*k));
	int r;

	k->m = m;
	hw_timer_init(&k->release, release_keys, k);
	k->cmd_byte = 0x61;
	k->outport = 0x03;
	r = hw_dev_add(m, &i8042_ops, k);
	r = r < 0 ? r : hw_pio_add(m, 0x60, 1, &i8042_data_io, k, "i8042");
	return r < 0 ? r : hw_pio_add(m, 0x64, 1, &i8042_cmd_io, k, "i8042");
}

int machine_send_keys(struct machine *m, const uint16_t *qnum, int n, int hold_ms)
{
	struct hw_i8042 *k = NULL;

	for (int i = 0; i < n; i++)
		if (qnum[i] > 0xff || !set2_code(qnum[i]))
			return err_set(-EINVAL, "key code 0x%x has no scancode", qnum[i]);
	if (n > MAX_HELD)
		return err_set(-EINVAL, "too many keys (at most %d)", MAX_HELD);
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->ndevs && !k; i++)
		if (m->devs[i].ops == &i8042_ops)
			k = m->devs[i].dev;
	if (k) {
		release_keys(k);	/* the keys of an earlier send-key first */
		for (int i = 0; i < n; i++) {
			key_event(k, qnum[i], true);
			k->held[k->nheld++] = qnum[i];
		}
		update(k);
		hw_timer_mod(m, &k->release, hw_clock_ns() + (int64_t)hold_ms * 1000000);
	}
	pthread_mutex_unlock(&m->lock);
	return k ? 0 : err_set(-ENODEV, "the machine has no keyboard");
}
