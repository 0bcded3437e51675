/*
 * The NS16550A UART (COM1-4 at 0x3f8/0x2f8/0x3e8/0x2e8, IRQ 4/3/4/3),
 * following the PC16550D data sheet: divisor latch, FIFO control and the
 * interrupt identification priorities (line status, received data,
 * transmitter empty, modem status), loopback through the modem control
 * register.  Transmission is instant; received bytes queue in a ring
 * larger than the 16-byte FIFO so that pasted text is not lost.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define RX_RING 4096

struct hw_uart {
	struct machine *m;
	struct hw_char_backend be;
	int irq;
	uint8_t ier, iir_fifo, lcr, mcr, lsr_err, msr, scr, fcr;
	uint16_t divisor;
	bool thr_ipending;
	uint8_t rx[RX_RING];
	uint32_t rx_head, rx_len;
};

static const uint16_t uart_base[HW_MAX_SERIAL] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
static const int uart_irq[HW_MAX_SERIAL] = { 4, 3, 4, 3 };

static uint8_t iir(const struct hw_uart *u)
{
	uint8_t fifo = (u->fcr & 1) ? 0xc0 : 0;

	if ((u->ier & 4) && u->lsr_err)
		return fifo | 0x06;
	if ((u->ier & 1) && u->rx_len)
		return fifo | 0x04;
	if ((u->ier & 2) && u->thr_ipending)
		return fifo | 0x02;
	if ((u->ier & 8) && (u->msr & 0x0f))
		return fifo | 0x00;
	return fifo | 0x01;
}

static void update(struct hw_uart *u)
{
	hw_set_irq(u->m, u->irq, !(iir(u) & 1));
}

static void rx_push(struct hw_uart *u, uint8_t b)
{
	if (u->rx_len == RX_RING) {
		u->lsr_err |= 0x02;	/* overrun */
		return;
	}
	u->rx[(u->rx_head + u->rx_len++) % RX_RING] = b;
}

void uart_input(struct hw_uart *u, const uint8_t *buf, size_t len)
{
	if (u->mcr & 0x10)	/* loopback: the outside is disconnected */
		return;
	for (size_t i = 0; i < len; i++)
		rx_push(u, buf[i]);
	update(u);
}

static uint8_t msr_value(const struct hw_uart *u)
{
	if (u->mcr & 0x10)	/* loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
		return (u->msr & 0x0f) | ((u->mcr & 1) << 5) | ((u->mcr & 2) << 3) |
		       ((u->mcr & 4) << 4) | ((u->mcr & 8) << 4);
	return (u->msr & 0x0f) | 0xb0;	/* DCD, DSR, CTS */
}

static uint64_t uart_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_uart *u = opaque;
	uint8_t v = 0;

	switch (off) {
	case 0:
		if (u->lcr & 0x80)
			return u->divisor & 0xff;
		if (u->rx_len) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % RX_RING;
			u->rx_len--;
		}
		break;
	case 1:
		return (u->lcr & 0x80) ? u->divisor >> 8 : u->ier;
	case 2:
		v = iir(u);
		if ((v & 0x0f) == 0x02)
			u->thr_ipending = false;
		break;
	case 3: return u->lcr;
	case 4: return u->mcr;
	case 5:
		v = (u->rx_len ? 1 : 0) | u->lsr_err | 0x60;
		u->lsr_err = 0;
		break;
	case 6:
		v = msr_value(u);
		u->msr &= 0xf0;
		break;
	case 7: return u->scr;
	}
	update(u);
	return v;
}

static void uart_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_uart *u = opaque;
	uint8_t b = v;

	switch (off) {
	case 0:
		if (u->lcr & 0x80) {
			u->divisor = (u->divisor & 0xff00) | b;
			return;
		}
		if (u->mcr & 0x10)
			rx_push(u, b);
		else if (u->be.ops)
			u->be.ops->write(u->be.opaque, &b, 1);
		u->thr_ipending = true;
		break;
	case 1:
		if (u->lcr & 0x80) {
			u->divisor = (u->divisor & 0xff) | b << 8;
			return;
		}
		if ((b & 2) && !(u->ier & 2))
			u->thr_ipending = true;	/* enabling THRE with THR empty */
		u->ier = b & 0x0f;
		break;
	case 2:
		if (b & 2) {
			u->rx_len = 0;
			u->rx_head = 0;
		}
		u->fcr = b & 0xc9;
		break;
	case 3: u->lcr = b; break;
	case 4: u->mcr = b & 0x1f; break;
	case 7: u->scr = b; break;
	}
	update(u);
}

static const struct hw_io_ops uart_io = { uart_read, uart_write };

static void uart_reset(void *dev)
{
	struct hw_uart *u = dev;

	u->ier = u->lcr = u->mcr = u->lsr_err = u->msr = u->scr = u->fcr = 0;
	u->divisor = 12;
	u->thr_ipending = false;
	u->rx_len = u->rx_head = 0;
	update(u);
}

static void uart_save(void *dev, struct hw_wbuf *w)
{
	struct hw_uart *u = dev;
	uint8_t b[] = { u->ier, u->lcr, u->mcr, u->lsr_err, u->msr, u->scr, u->fcr,
			u->thr_ipending };

	hw_putb(w, b, sizeof(b));
	hw_put16(w, u->divisor);
	hw_put32(w, u->rx_len);
	for (uint32_t i = 0; i < u->rx_len; i++)
		hw_put8(w, u->rx[(u->rx_head + i) % RX_RING]);
}

static int uart_load(void *dev, struct hw_rbuf *r)
{
	struct hw_uart *u = dev;
	uint8_t b[8];
	uint16_t div;
	uint32_t n;

	hw_getb(r, b, sizeof(b));
	div = hw_get16(r);
	n = hw_get_index(r, RX_RING + 1, 4);
	if (r->err || n > r->len - r->pos)
		return -EINVAL;
	u->ier = b[0] & 0x0f; u->lcr = b[1]; u->mcr = b[2] & 0x1f; u->lsr_err = b[3] & 0x1e;
	u->msr = b[4]; u->scr = b[5]; u->fcr = b[6] & 0xc9; u->thr_ipending = b[7] & 1;
	u->divisor = div;
	u->rx_head = 0;
	u->rx_len = n;
	hw_getb(r, u->rx, n);
	update(u);
	return 0;
}

static void uart_free(void *dev) { free(dev); }

static const struct hw_dev_ops uart_ops = {
	.name = "uart", .version = 1, .reset = uart_reset,
	.save = uart_save, .load = uart_load, .free = uart_free,
};

int uart_new(struct machine *m, int index, const struct hw_char_backend *be)
{
	struct hw_uart *u = xzalloc(sizeof(*u));
	int r;

	u->m = m;
	u->be = *be;
	u->irq = uart_irq[index];
	u->divisor = 12;
	m->uart[index] = u;
	r = hw_dev_add(m, &uart_ops, u);
	return r < 0 ? r : hw_pio_add(m, uart_base[index], 8, &uart_io, u, "uart");
}
