/*
 * The keys of QEMU's -netdev user (QEMU user manual, "-netdev user"),
 * parsed into addresses with QEMU's defaults:
 *
 *   net=ADDR[/MASK]     10.0.2.0/24; MASK a prefix length or dotted; an
 *                       address without one gets its classful mask, as
 *                       in QEMU (10.x /8, 172.16-31.x /12, 192.168.x /16...)
 *   host=ADDR           the network's .2 (the host as the guest sees it)
 *   dhcpstart=ADDR      .15, the first address DHCP hands out
 *   dns=ADDR            .3, the built-in DNS forwarder
 *   ipv4=, ipv6=        both on; not both off
 *   ipv6-net=ADDR[/N]   fec0::/64 (also ipv6-prefix= and ipv6-prefixlen=)
 *   ipv6-host=, ipv6-dns=   the prefix's ::2 and ::3
 *   restrict=on|off     (also y/n) cut the guest off from the host and the world
 *   hostname=, domainname=, dnssearch= (repeatable), tftp=, bootfile=,
 *   tftp-server-name=, hostfwd= and guestfwd= (repeatable)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "user.h"

/* The host part of `off` inside the network. */
static struct in_addr net_plus(struct in_addr net, uint32_t off)
{
	struct in_addr a = { .s_addr = htonl(ntohl(net.s_addr) + off) };

	return a;
}

/* QEMU's mask for an address given without one. */
static uint32_t classful_mask(uint32_t a)
{
	if (!(a & 0x80000000))
		return 0xff000000;            /* class A */
	if ((a & 0xfff00000) == 0xac100000)
		return 0xfff00000;            /* 172.16.0.0/12 */
	if ((a & 0xc0000000) == 0x80000000)
		return 0xffff0000;            /* class B */
	if ((a & 0xffff0000) == 0xc0a80000)
		return 0xffff0000;            /* 192.168.0.0/16 */
	if ((a & 0xffff0000) == 0xc6120000)
		return 0xfffe0000;            /* 198.18.0.0/15 */
	if ((a & 0xe0000000) == 0xe0000000)
		return 0xffffff00;            /* class C and above */
	return 0xfffffff0;
}

static int parse_net(const char *s, struct in_addr *net, struct in_addr *mask)
{
	char *copy = xstrdup(s), *slash = strchr(copy, '/');
	uint64_t bits;
	int r = 0;

	if (slash)
		*slash++ = 0;
	if (!inet_aton(copy, net)) {
		r = err_set(-EINVAL, "net=%s: not an IPv4 address", s);
	} else if (!slash) {
		mask->s_addr = htonl(classful_mask(ntohl(net->s_addr)));
	} else if (parse_u64(slash, 0, 32, &bits) == 0) {
		mask->s_addr = htonl(bits ? 0xffffffffu << (32 - bits) : 0);
	} else if (!inet_aton(slash, mask) ||
		   (~ntohl(mask->s_addr) & (~ntohl(mask->s_addr) + 1))) {
		r = err_set(-EINVAL, "net=%s: bad network mask", s);
	}
	net->s_addr &= mask->s_addr;
	free(copy);
	return r;
}

/* An address of the network that is neither the network nor the
 * broadcast address. */
static int parse_in_net(const struct kvlist *kv, const char *key, struct in_addr dflt,
			const struct user_config *c, struct in_addr *out)
{
	const char *s = kv_get(kv, key);
	uint32_t a, m = ntohl(c->mask.s_addr);

	*out = dflt;
	if (s && !inet_aton(s, out))
		return err_set(-EINVAL, "%s=%s: not an IPv4 address", key, s);
	a = ntohl(out->s_addr);
	if ((a & m) != ntohl(c->net.s_addr))
		return err_set(-EINVAL, "%s=%s: not inside the network", key, inet_ntoa(*out));
	if ((a & ~m) == 0 || (a & ~m) == ~m)
		return err_set(-EINVAL, "%s=%s: the network or broadcast address", key,
			       inet_ntoa(*out));
	return 0;
}

static int parse_ipv4(const struct kvlist *kv, struct user_config *c)
{
	const char *net = kv_get(kv, "net");
	int r;

	inet_aton("10.0.2.0", &c->net);
	c->mask.s_addr = htonl(0xffffff00);
	if (net && (r = parse_net(net, &c->net, &c->mask)) < 0)
		return r;
	if (ntohl(c->mask.s_addr) > 0xfffffff8)
		return err_set(-EINVAL, "net=%s: the network is too small", net);
	if ((r = parse_in_net(kv, "host", net_plus(c->net, 2), c, &c->host)) < 0 ||
	    (r = parse_in_net(kv, "dhcpstart", net_plus(c->net, 15), c, &c->dhcp_start)) < 0 ||
	    (r = parse_in_net(kv, "dns", net_plus(c->net, 3), c, &c->dns)) < 0)
		return r;
	if (c->dns.s_addr == c->host.s_addr)
		return err_set(-EINVAL, "dns= and host= must differ");
	return 0;
}

static int parse_v6_addr(const struct kvlist *kv, const char *key, const struct in6_addr *dflt,
			 struct in6_addr *out)
{
	const char *s = kv_get(kv, key);

	*out = *dflt;
	if (s && inet_pton(AF_INET6, s, out) != 1)
		return err_set(-EINVAL, "%s=%s: not an IPv6 address", key, s);
	return 0;
}

static int parse_ipv6(const struct kvlist *kv, struct user_config *c)
{
	const char *net = kv_get(kv, "ipv6-net"), *plen = kv_get(kv, "ipv6-prefixlen");
	char *copy = xstrdup(net ? net : kv_get(kv, "ipv6-prefix") ? kv_get(kv, "ipv6-prefix")
					: "fec0::"), *slash = strchr(copy, '/');
	struct in6_addr h, d;
	uint64_t bits = 64;
	int r = 0;

	if (slash)
		*slash++ = 0;
	if (inet_pton(AF_INET6, copy, &c->net6) != 1)
		r = err_set(-EINVAL, "ipv6-net=%s: not an IPv6 address", copy);
	else if ((slash && parse_u64(slash, 0, 126, &bits) < 0) ||
		 (plen && parse_u64(plen, 0, 126, &bits) < 0))
		r = err_set(-EINVAL, "IPv6 prefix length '%s': expected 0 to 126",
			    slash ? slash : plen);
	free(copy);
	if (r < 0)
		return r;
	c->prefix6 = (unsigned)bits;
	h = d = c->net6;
	h.s6_addr[15] |= 2;
	d.s6_addr[15] |= 3;
	if ((r = parse_v6_addr(kv, "ipv6-host", &h, &c->host6)) < 0 ||
	    (r = parse_v6_addr(kv, "ipv6-dns", &d, &c->dns6)) < 0)
		return r;
	return 0;
}

/* restrict= takes QEMU's y/n besides on/off. */
static int parse_restrict(const struct kvlist *kv, bool *out)
{
	const char *s = kv_get(kv, "restrict");

	*out = false;
	if (!s)
		return 0;
	if (!strcmp(s, "y") || !strcmp(s, "n")) {
		*out = s[0] == 'y';
		return 0;
	}
	if (parse_bool(s, out) < 0)
		return err_set(-EINVAL, "restrict=%s: expected on or off", s);
	return 0;
}

static int parse_lists(const struct kvlist *kv, struct user_config *c)
{
	size_t nsearch = 0;
	int r;

	for (size_t i = 0; i < kv->n; i++) {
		const char *k = kv->v[i].key, *v = kv->v[i].val;

		if (!strcmp(k, "dnssearch")) {
			c->dnssearch = xrealloc(c->dnssearch, (nsearch + 2) * sizeof(char *));
			c->dnssearch[nsearch++] = v;
			c->dnssearch[nsearch] = NULL;
		} else if (!strcmp(k, "hostfwd")) {
			c->hostfwd = xrealloc(c->hostfwd, (c->nhostfwd + 1) * sizeof(*c->hostfwd));
			if ((r = user_hostfwd_parse(v, true, &c->hostfwd[c->nhostfwd])) < 0)
				return r;
			c->hostfwd[c->nhostfwd++].text = v;
		} else if (!strcmp(k, "guestfwd")) {
			c->guestfwd = xrealloc(c->guestfwd, (c->nguestfwd + 1) * sizeof(*c->guestfwd));
			if ((r = user_guestfwd_parse(v, &c->guestfwd[c->nguestfwd])) < 0)
				return r;
			c->nguestfwd++;
		} else if (!strcmp(k, "smb")) {
			return err_set(-ENOTSUP, "smb=: not supported (no Samba here)");
		}
	}
	return 0;
}

int user_config_parse(const struct kvlist *kv, struct user_config *c)
{
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = kv_get_bool(kv, "ipv4", true, &c->ipv4)) < 0 ||
	    (r = kv_get_bool(kv, "ipv6", true, &c->ipv6)) < 0 ||
	    (r = parse_restrict(kv, &c->restricted)) < 0)
		return r;
	if (!c->ipv4 && !c->ipv6)
		return err_set(-EINVAL, "ipv4=off and ipv6=off: nothing left to do");
	if ((r = parse_ipv4(kv, c)) < 0 || (r = parse_ipv6(kv, c)) < 0)
		return r;
	c->hostname = kv_get(kv, "hostname");
	c->domainname = kv_get(kv, "domainname");
	/* A DHCP option holds at most 255 bytes. */
	if (c->hostname && strlen(c->hostname) > 255)
		return err_set(-EINVAL, "hostname=: longer than 255 characters");
	if (c->domainname && strlen(c->domainname) > 255)
		return err_set(-EINVAL, "domainname=: longer than 255 characters");
	c->tftp = kv_get(kv, "tftp");
	c->bootfile = kv_get(kv, "bootfile");
	c->tftp_server_name = kv_get(kv, "tftp-server-name");
	return parse_lists(kv, c);
}

void user_config_free(struct user_config *c)
{
	for (size_t i = 0; i < c->nguestfwd; i++)
		free(c->guestfwd[i].target);
	free(c->guestfwd);
	free(c->hostfwd);
	free(c->dnssearch);
	memset(c, 0, sizeof(*c));
}

/* "tcp:"/"udp:"/":" at the front of a rule. */
static const char *parse_proto(const char *s, bool *udp, bool udp_ok)
{
	*udp = false;
	if (!strncmp(s, "tcp:", 4))
		return s + 4;
	if (udp_ok && !strncmp(s, "udp:", 4)) {
		*udp = true;
		return s + 4;
	}
	return *s == ':' ? s + 1 : NULL;
}

static int parse_port(const char *s, int min, int *out)
{
	return parse_int(s, min, 65535, out);
}

/* HOSTADDR:HOSTPORT (HOSTADDR possibly empty or [v6]) into a sockaddr. */
static int parse_host_side(char *s, struct user_hostfwd *f, char **rest)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&f->host;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&f->host;
	char *addr = s, *colon;
	int port;

	if (*s == '[') {
		char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		*rb = 0;
		addr = s + 1;
		colon = rb + 1;
	} else if (!(colon = strchr(s, ':'))) {
		return -1;
	}
	*colon = 0;
	*rest = colon + 1;
	memset(&f->host, 0, sizeof(f->host));
	if (*s == '[') {
		in6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
			return -1;
		f->host_len = sizeof(*in6);
	} else {
		in->sin_family = AF_INET;
		if (*addr && !inet_aton(addr, &in->sin_addr))
			return -1;
		f->host_len = sizeof(*in);
	}
	colon = strchr(*rest, '-');
	if (colon)
		*colon = 0;
	if (parse_port(*rest, 0, &port) < 0)
		return -1;
	*rest = colon ? colon + 1 : NULL;
	if (f->host.ss_family == AF_INET6)
		in6->sin6_port = htons((uint16_t)port);
	else
		in->sin_port = htons((uint16_t)port);
	return 0;
}

int user_hostfwd_parse(const char *rule, bool with_guest, struct user_hostfwd *f)
{
	char *copy = NULL, *rest, *colon;
	const char *p;
	int bad = -1;

	memset(f, 0, sizeof(*f));
	if (!(p = parse_proto(rule, &f->udp, true)))
		goto out;
	copy = xstrdup(p);
	if (parse_host_side(copy, f, &rest) < 0)
		goto out;
	if (!with_guest) {
		bad = rest ? -1 : 0;
		goto out;
	}
	if (!rest || !(colon = strchr(rest, ':')))
		goto out;
	*colon = 0;
	if (*rest && !inet_aton(rest, &f->guest))
		goto out;
	bad = parse_port(colon + 1, 1, &f->guest_port);
out:
	free(copy);
	if (bad < 0)
		return err_set(-EINVAL, "invalid host forwarding rule '%s' (expected %s)", rule,
			       with_guest ? "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"
					  : "[tcp|udp]:[HOSTADDR]:HOSTPORT");
	return 0;
}

int user_guestfwd_parse(const char *rule, struct user_guestfwd *g)
{
	const char *p, *dash;
	char *addr = NULL;
	bool udp;
	int bad = -1;

	memset(g, 0, sizeof(*g));
	p = parse_proto(rule, &udp, false);
	if (!p)
		p = rule;     /* "SERVER:PORT-..." without the protocol */
	dash = strchr(p, '-');
	if (!dash || !strchr(p, ':') || strchr(p, ':') > dash)
		goto out;
	addr = strndup(p, (size_t)(strchr(p, ':') - p));
	if (!inet_aton(addr, &g->server))
		goto out;
	free(addr);
	addr = strndup(strchr(p, ':') + 1, (size_t)(dash - strchr(p, ':') - 1));
	if (parse_port(addr, 1, &g->port) < 0)
		goto out;
	if (!strncmp(dash + 1, "cmd:", 4) && dash[5]) {
		g->target = xstrdup(dash + 5);
		bad = 0;
	} else if (!strncmp(dash + 1, "unix:", 5) && dash[6]) {
		g->target = xstrdup(dash + 6);
		g->is_unix = true;
		bad = 0;
	}
out:
	free(addr);
	if (bad < 0)
		return err_set(-EINVAL, "invalid guest forwarding rule '%s' (expected "
			       "[tcp]:SERVER:PORT-cmd:COMMAND or -unix:PATH)", rule);
	return 0;
}

void user_net_str(struct in_addr net, struct in_addr mask, char *buf, size_t len)
{
	uint32_t m = ntohl(mask.s_addr);
	int bits = 0;

	while (m & 0x80000000) {
		bits++;
		m <<= 1;
	}
	snprintf(buf, len, "%s/%d", inet_ntoa(net), bits);
}
