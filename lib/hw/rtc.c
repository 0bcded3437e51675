/*
 * The Motorola MC146818 real-time clock and its CMOS RAM (ports 0x70
 * index, 0x71 data), following the MC146818A data sheet: time registers
 * read from the host clock plus an offset the guest may set, BCD or
 * binary, 12/24 hour, status registers A-D.  The CMOS bytes that a PC
 * BIOS reads (memory sizes, CPU count, boot order) are filled as QEMU
 * does.  Alarm and periodic interrupts are not generated.
 */
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "hw/internal.h"

struct hw_rtc {
	struct machine *m;
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset;		/* guest time - host time, seconds */
};

enum { R_SEC, R_SEC_ALARM, R_MIN, R_MIN_ALARM, R_HOUR, R_HOUR_ALARM, R_WDAY,
       R_MDAY, R_MON, R_YEAR, R_A, R_B, R_C, R_D, R_CENTURY = 0x32 };

static uint8_t to_reg(const struct hw_rtc *s, int v)
{
	return (s->cmos[R_B] & 4) ? v : ((v / 10) << 4) | (v % 10);
}

static int from_reg(const struct hw_rtc *s, uint8_t v)
{
	return (s->cmos[R_B] & 4) ? v : (v >> 4) * 10 + (v & 15);
}

static void get_tm(const struct hw_rtc *s, struct tm *tm)
{
	time_t t = time(NULL) + s->offset;

	gmtime_r(&t, tm);
}

static uint8_t time_reg(const struct hw_rtc *s, int reg)
{
	struct tm tm;
	int h;

	get_tm(s, &tm);
	switch (reg) {
	case R_SEC: return to_reg(s, tm.tm_sec);
	case R_MIN: return to_reg(s, tm.tm_min);
	case R_HOUR:
		if (s->cmos[R_B] & 2)
			return to_reg(s, tm.tm_hour);
		h = tm.tm_hour % 12;
		return to_reg(s, h ? h : 12) | (tm.tm_hour >= 12 ? 0x80 : 0);
	case R_WDAY: return to_reg(s, tm.tm_wday + 1);
	case R_MDAY: return to_reg(s, tm.tm_mday);
	case R_MON: return to_reg(s, tm.tm_mon + 1);
	case R_YEAR: return to_reg(s, tm.tm_year % 100);
	default: return to_reg(s, (tm.tm_year + 1900) / 100);
	}
}

/* The guest wrote a time register: move the offset so it reads back. */
static void set_time_reg(struct hw_rtc *s, int reg, uint8_t v)
{
	struct tm tm;
	int n = from_reg(s, v & (reg == R_HOUR && !(s->cmos[R_B] & 2) ? 0x7f : 0xff));

	get_tm(s, &tm);
	switch (reg) {
	case R_SEC: tm.tm_sec = n; break;
	case R_MIN: tm.tm_min = n; break;
	case R_HOUR:
		if (!(s->cmos[R_B] & 2))
			n = n % 12 + (v & 0x80 ? 12 : 0);
		tm.tm_hour = n;
		break;
	case R_MDAY: tm.tm_mday = n; break;
	case R_MON: tm.tm_mon = n - 1; break;
	case R_YEAR: tm.tm_year = (tm.tm_year / 100) * 100 + n; break;
	case R_CENTURY: tm.tm_year = n * 100 + tm.tm_year % 100 - 1900; break;
	default: return;
	}
	s->offset = (int64_t)timegm(&tm) - time(NULL);
}

static bool is_time(int reg)
{
	return (reg <= R_YEAR && !(reg & 1) && reg != R_WDAY) || reg == R_MDAY ||
	       reg == R_MON || reg == R_YEAR || reg == R_CENTURY;
}

static uint64_t rtc_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_rtc *s = opaque;
	int reg = s->index;
	uint8_t v;

	if (off == 0)
		return 0xff;
	if (is_time(reg) || reg == R_WDAY)
		return time_reg(s, reg);
	v = s->cmos[reg];
	if (reg == R_C)
		s->cmos[R_C] = 0;
	return v;
}

static void rtc_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_rtc *s = opaque;

	if (off == 0) {
		s->index = v & 0x7f;
		return;
	}
	switch (s->index) {
	case R_A: s->cmos[R_A] = (v & 0x7f); break;
	case R_C: case R_D: break;
	default:
		if (is_time(s->index))
			set_time_reg(s, s->index, v);
		else
			s->cmos[s->index] = v;
	}
}

static const struct hw_io_ops rtc_io = { rtc_read, rtc_write };

static void fill_cmos(struct hw_rtc *s)
{
	struct machine *m = s->m;
	uint64_t ext = m->lowmem > 0x100000 ? (m->lowmem - 0x100000) / 1024 : 0;
	uint64_t above16 = m->lowmem > 0x1000000 ? (m->lowmem - 0x1000000) >> 16 : 0;
	uint64_t high = m->highmem >> 16;

	memset(s->cmos, 0, sizeof(s->cmos));
	s->cmos[R_A] = 0x26;
	s->cmos[R_B] = 0x02;
	s->cmos[R_D] = 0x80;
	s->cmos[0x14] = 0x06;		/* maths coprocessor, VGA... as QEMU */
	s->cmos[0x15] = 0x80;		/* 640 KiB base memory */
	s->cmos[0x16] = 0x02;
	ext = MIN(ext, 0xffff);
	s->cmos[0x17] = s->cmos[0x30] = ext;
	s->cmos[0x18] = s->cmos[0x31] = ext >> 8;
	above16 = MIN(above16, 0xffff);
	s->cmos[0x34] = above16;
	s->cmos[0x35] = above16 >> 8;
	s->cmos[0x5b] = high;
	s->cmos[0x5c] = high >> 8;
	s->cmos[0x5d] = high >> 16;
	s->cmos[0x5f] = m->ncpu - 1;
	/* Boot order: c (disk) d (cdrom) a (floppy) n (net) -> 2 3 1 4. */
	const char *order = m->cfg.boot_order ? m->cfg.boot_order : "cd";
	uint8_t dev[3] = { 0 };
	for (int i = 0; i < 3 && order[i]; i++)
		dev[i] = order[i] == 'a' ? 1 : order[i] == 'c' ? 2 : order[i] == 'd' ? 3 :
			 order[i] == 'n' ? 4 : 0;
	s->cmos[0x3d] = dev[0] | dev[1] << 4;
	s->cmos[0x38] = dev[2] << 4 | 1;
	s->cmos[R_CENTURY] = 0;
}

static void rtc_reset(void *dev)
{
	struct hw_rtc *s = dev;

	s->cmos[R_B] &= ~0x70;
	s->cmos[R_C] = 0;
}

static void rtc_save(void *dev, struct hw_wbuf *w)
{
	struct hw_rtc *s = dev;

	hw_put8(w, s->index);
	hw_putb(w, s->cmos, sizeof(s->cmos));
	hw_put64(w, s->offset);
}

static int rtc_load(void *dev, struct hw_rbuf *r)
{
	struct hw_rtc *s = dev;
	uint8_t idx = hw_get8(r), cmos[128];
	int64_t off;

	hw_getb(r, cmos, sizeof(cmos));
	off = hw_get64(r);
	if (r->err)
		return -EINVAL;
	s->index = idx & 0x7f;
	memcpy(s->cmos, cmos, sizeof(cmos));
	s->offset = off;
	return 0;
}

static void rtc_free(void *dev) { free(dev); }

static const struct hw_dev_ops rtc_ops = {
	.name = "rtc", .version = 1, .reset = rtc_reset,
	.save = rtc_save, .load = rtc_load, .free = rtc_free,
};

int rtc_new(struct machine *m)
{
	struct hw_rtc *s = xzalloc(sizeof(*s));
	int r;

	s->m = m;
	fill_cmos(s);
	r = hw_dev_add(m, &rtc_ops, s);
	return r < 0 ? r : hw_pio_add(m, 0x70, 2, &rtc_io, s, "rtc");
}
