/*
 * The back-ends of vm-net, in --help order: the one place that lists them.
 */
#include <string.h>

#include "net.h"

const struct net_backend *const net_backends[] = {
	&user_backend,
	&hub_backend,
	&tap_backend,
	NULL,
};

const struct net_backend *net_backend_find(const char *name)
{
	for (const struct net_backend *const *b = net_backends; *b; b++)
		if (!strcmp((*b)->name, name))
			return *b;
	return NULL;
}
