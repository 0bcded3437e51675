/*
 * The hub back-end: QEMU's "VLAN" with no local member.  Everything a hub
 * does (repeating each frame to every other port, capturing it) is the
 * LAN's own job (lan.c), so the back-end only checks its options.  Ports
 * are the connections on its listening sockets and its outgoing
 * connections (--connect), which join hubs on different hosts into one
 * LAN.  Joining hubs in a loop makes frames circle forever: don't.
 */
#include <stdlib.h>

#include "net.h"

static const char *const hub_keys[] = { "id", "hubid", NULL };

static int hub_open(struct lan *lan, const struct kvlist *opts, void **state)
{
	*state = NULL;
	return 0;
}

static void hub_close(void *state)
{
}

const struct net_backend hub_backend = {
	.name = "hub",
	.summary = "join every connected port into one LAN (QEMU's VLAN)",
	.keys = hub_keys,
	.open = hub_open,
	.close = hub_close,
};
