/*
 * The registry of image format drivers: one explicit const array, probed
 * in order.  Raw stays last: it is the fallback when nothing else claims a
 * file.  The NBD client driver (lib/fmt/nbd-driver.c) claims NBD URIs
 * through its `claims` member before any probing.
 */
#include <string.h>

#include "common/common.h"
#include "internal.h"

const struct fmt_driver *const fmt_drivers[] = {
	&fmt_nbd_driver,
	&fmt_qcow2_driver,
	&fmt_raw_driver,
	NULL,
};

const struct fmt_driver *fmt_driver_find(const char *name)
{
	size_t i;

	for (i = 0; fmt_drivers[i]; i++)
		if (strcmp(fmt_drivers[i]->name, name) == 0)
			return fmt_drivers[i];
	return NULL;
}

const char *fmt_driver_name(size_t i)
{
	size_t n;

	for (n = 0; fmt_drivers[n]; n++)
		if (n == i)
			return fmt_drivers[n]->name;
	return NULL;
}

bool fmt_format_known(const char *format)
{
	return fmt_driver_find(format) != NULL;
}
