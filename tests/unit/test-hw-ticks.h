/*
 * For test-hw-pit.c and test-hw-apic.c: a 100 Hz periodic timer that ran
 * unattended for a while must hand its late ticks over, not merge them.
 */
#ifndef TEST_HW_TICKS_H
#define TEST_HW_TICKS_H
#include <stdint.h>

#include "hw/internal.h"

static int64_t now_ms(void) { return hw_clock_ns() / 1000000; }

/*
 * The timer started at start (now_ms()) with a period of period_ms; take
 * its ticks with take (every tick offered for ms milliseconds; how many)
 * until about as many came as periods went by, for up to 10 s, so that a
 * loaded host that delays this thread or the timer's only delays the
 * count (merging would stay behind by the stall for good).  The period is
 * long (10 ms) beside the host's wake-up latency, which on a busy virtual
 * machine reached several milliseconds: at 1 kHz each late tick handed
 * over took as long as a new one to come, and the backlog never drained.
 * n counts the ticks already taken since start.  Returns the ticks taken
 * in all; *periods: the periods since start at the end.
 */
static int take_until_caught_up(struct machine *m, int (*take)(struct machine *, int),
				int64_t start, int period_ms, int n, int64_t *periods)
{
	int64_t deadline = now_ms() + 10000;	/* a loaded host runs the timer late */

	do {
		n += take(m, period_ms);
		*periods = (now_ms() - start) / period_ms;
	} while (n < *periods - 1 && now_ms() < deadline);
	return n;
}

#endif
