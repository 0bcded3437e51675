/*
 * qemu-img's progress indicator for -p: the line "    (42.00/100%)"
 * rewritten in place with a carriage return, printed again only when it
 * moved by at least min_step percent, and ended with a newline.
 */
#include <stdio.h>

#include "common.h"

void progress_init(struct progress *p, bool enabled, double min_step)
{
	p->enabled = enabled;
	p->last = -1.0;
	p->min_step = min_step > 0 ? min_step : 1.0;
	p->fd = 1;
	if (enabled)
		progress_update(p, 0, 1);
}

void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
	double pct;

	if (!p->enabled)
		return;
	pct = total ? 100.0 * (double)done / (double)total : 100.0;
	if (pct > 100.0)
		pct = 100.0;
	if (p->last >= 0 && pct - p->last < p->min_step && pct < 100.0)
		return;
	if (pct == p->last)
		return;
	p->last = pct;
	printf("    (%3.2f/100%%)\r", pct);
	fflush(stdout);
}

void progress_end(struct progress *p)
{
	if (!p->enabled)
		return;
	progress_update(p, 1, 1);
	printf("\n");
	fflush(stdout);
}
