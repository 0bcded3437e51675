/*
 * A tiny TAP producer for the C unit tests: each CHECK prints one
 * "ok N - what" or "not ok N - what" line; unit_done() returns the exit
 * status (non-zero when anything failed).  tests/run-all counts the lines.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdarg.h>
#include <stdio.h>

static int unit_n, unit_failed;

#define CHECK(cond, ...) unit_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 4, 5), unused))
static int unit_check(int ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", ok ? "ok" : "not ok", ++unit_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		printf(" (%s:%d)", file, line);
		unit_failed++;
	}
	putchar('\n');
	fflush(stdout);
	return ok;
}

__attribute__((unused))
static int unit_done(void)
{
	printf("1..%d\n", unit_n);
	return unit_failed ? 1 : 0;
}

#endif
