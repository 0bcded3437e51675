/*
 * Device-state stream: little-endian writers and bounds-checked readers
 * used by every device's save and load (the section layout is in
 * internal.h; machine.c frames the sections).
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

static void wgrow(struct hw_wbuf *w, size_t n)
{
	if (w->len + n <= w->cap)
		return;
	w->cap = MAX(w->cap * 2, w->len + n + 256);
	w->p = xrealloc(w->p, w->cap);
}

void hw_putb(struct hw_wbuf *w, const void *p, size_t n)
{
	wgrow(w, n);
	memcpy(w->p + w->len, p, n);
	w->len += n;
}

static void putle(struct hw_wbuf *w, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = v >> (8 * i);
	hw_putb(w, b, n);
}

void hw_put8(struct hw_wbuf *w, uint8_t v) { putle(w, v, 1); }
void hw_put16(struct hw_wbuf *w, uint16_t v) { putle(w, v, 2); }
void hw_put32(struct hw_wbuf *w, uint32_t v) { putle(w, v, 4); }
void hw_put64(struct hw_wbuf *w, uint64_t v) { putle(w, v, 8); }

void hw_getb(struct hw_rbuf *r, void *p, size_t n)
{
	if (r->err || n > r->len - r->pos) {
		r->err = -EINVAL;
		memset(p, 0, n);
		return;
	}
	memcpy(p, r->p + r->pos, n);
	r->pos += n;
}

static uint64_t getle(struct hw_rbuf *r, unsigned n)
{
	uint8_t b[8];
	uint64_t v = 0;

	hw_getb(r, b, n);
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

uint8_t hw_get8(struct hw_rbuf *r) { return getle(r, 1); }
uint16_t hw_get16(struct hw_rbuf *r) { return getle(r, 2); }
uint32_t hw_get32(struct hw_rbuf *r) { return getle(r, 4); }
uint64_t hw_get64(struct hw_rbuf *r) { return getle(r, 8); }

uint32_t hw_get_index(struct hw_rbuf *r, uint32_t max, unsigned bytes)
{
	uint32_t v = getle(r, bytes);

	if (v >= max) {
		r->err = -EINVAL;
		return 0;
	}
	return v;
}
