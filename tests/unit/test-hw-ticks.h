/*
 * For test-hw-pit.c and test-hw-apic.c: a 1 kHz periodic timer that ran
 * unattended for a while must hand its late ticks over, not merge them.
 */
#ifndef TEST_HW_TICKS_H
#define TEST_HW_TICKS_H
#include <stdint.h>

#include "hw/internal.h"

static int64_t now_ms(void) { return hw_clock_ns() / 1000000; }

/*
 * The timer started at start (now_ms()); take its ticks with take (every
 * tick offered for ms milliseconds; how many) until about as many came as
 * milliseconds went by, for up to 1 s, so that a loaded host that delays
 * this thread or the timer's only delays the count (merging would stay
 * about 40 behind for good).  Returns the ticks taken; *elapsed: the
 * milliseconds since start at the end.
 */
static int take_until_caught_up(struct machine *m, int (*take)(struct machine *, int),
				int64_t start, int64_t *elapsed)
{
	int64_t deadline = now_ms() + 1000;
	int n = 0;

	do {
		n += take(m, 5);
		*elapsed = now_ms() - start;
	} while (n < *elapsed - 5 && now_ms() < deadline);
	return n;
}

#endif
