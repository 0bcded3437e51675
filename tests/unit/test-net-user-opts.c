/*
 * vm-net user's keys (cmd/vm-net/user-opts.c): QEMU's -netdev user
 * defaults, classful masks, address checks, hostfwd and guestfwd rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "../../cmd/vm-net/user-opts.c"
#include "unit.h"

static int parse(const char *s, struct user_config *c)
{
	struct kvlist kv;
	int r;

	if (kv_parse(s, NULL, &kv) < 0)
		return -99;
	/* The string fields point into kv: only addresses and counts are
	 * checked after this. */
	r = user_config_parse(&kv, c);
	kv_free(&kv);
	return r;
}

static const char *ip(struct in_addr a)
{
	return inet_ntoa(a);
}

static void check_defaults(void)
{
	struct user_config c;
	char buf[64];

	CHECK(parse("id=n0", &c) == 0, "defaults parse");
	user_net_str(c.net, c.mask, buf, sizeof(buf));
	CHECK(!strcmp(buf, "10.0.2.0/24"), "net 10.0.2.0/24 (%s)", buf);
	CHECK(!strcmp(ip(c.host), "10.0.2.2"), "host .2");
	CHECK(!strcmp(ip(c.dhcp_start), "10.0.2.15"), "dhcpstart .15");
	CHECK(!strcmp(ip(c.dns), "10.0.2.3"), "dns .3");
	CHECK(c.ipv4 && c.ipv6 && !c.restricted, "ipv4 and ipv6 on, restrict off");
	inet_ntop(AF_INET6, &c.host6, buf, sizeof(buf));
	CHECK(!strcmp(buf, "fec0::2") && c.prefix6 == 64, "ipv6 host fec0::2/64 (%s)", buf);
	user_config_free(&c);
}

static void check_networks(void)
{
	struct user_config c;
	char buf[64];

	CHECK(parse("net=192.168.76.0/255.255.255.0", &c) == 0, "dotted mask");
	CHECK(!strcmp(ip(c.host), "192.168.76.2") && !strcmp(ip(c.dns), "192.168.76.3"),
	      "host and dns follow net");
	user_config_free(&c);
	CHECK(parse("net=172.20.1.7", &c) == 0, "classful 172.16/12");
	user_net_str(c.net, c.mask, buf, sizeof(buf));
	CHECK(!strcmp(buf, "172.16.0.0/12"), "172.20.1.7 -> %s", buf);
	user_config_free(&c);
	CHECK(parse("net=10.1.2.3", &c) == 0 && ntohl(c.mask.s_addr) == 0xff000000,
	      "class A without a mask is /8");
	user_config_free(&c);
	CHECK(parse("net=10.0.2.0/24,host=10.0.3.2", &c) == -EINVAL, "host outside net");
	CHECK(parse("net=10.0.2.0/24,dhcpstart=10.0.2.255", &c) == -EINVAL,
	      "dhcpstart on the broadcast address");
	CHECK(parse("net=10.0.2.0/255.0.255.0", &c) == -EINVAL, "non-contiguous mask");
	CHECK(parse("net=10.0.2.0/33", &c) == -EINVAL, "prefix over 32");
	CHECK(parse("ipv4=off,ipv6=off", &c) == -EINVAL, "both families off");
	CHECK(parse("restrict=y", &c) == 0 && c.restricted, "restrict=y");
	user_config_free(&c);
	CHECK(parse("restrict=maybe", &c) == -EINVAL, "restrict=maybe");
	CHECK(parse("ipv6-net=fd00:1::/48", &c) == 0 && c.prefix6 == 48, "ipv6-net with a length");
	inet_ntop(AF_INET6, &c.dns6, buf, sizeof(buf));
	CHECK(!strcmp(buf, "fd00:1::3"), "ipv6 dns follows the prefix (%s)", buf);
	user_config_free(&c);
	{
		char *long_name = xasprintf("hostname=%0300d", 0);

		CHECK(parse(long_name, &c) == -EINVAL, "a hostname over 255 characters");
		free(long_name);
	}
	CHECK(parse("smb=/tmp", &c) == -ENOTSUP, "smb= is not supported");
	user_config_free(&c);
}

static void check_hostfwd(void)
{
	struct user_hostfwd f;
	struct sockaddr_in *in = (struct sockaddr_in *)&f.host;
	struct user_config c;

	CHECK(user_hostfwd_parse("tcp::2222-:22", true, &f) == 0 && !f.udp &&
	      in->sin_addr.s_addr == 0 && ntohs(in->sin_port) == 2222 &&
	      f.guest.s_addr == 0 && f.guest_port == 22, "tcp::2222-:22");
	CHECK(user_hostfwd_parse("udp:127.0.0.1:5353-10.0.2.9:53", true, &f) == 0 && f.udp &&
	      !strcmp(ip(in->sin_addr), "127.0.0.1") && !strcmp(ip(f.guest), "10.0.2.9") &&
	      f.guest_port == 53, "udp with both addresses");
	CHECK(user_hostfwd_parse("::8080-:80", true, &f) == 0 && !f.udp, "empty protocol is tcp");
	CHECK(user_hostfwd_parse("tcp:[::1]:8080-:80", true, &f) == 0 &&
	      f.host.ss_family == AF_INET6, "IPv6 host address");
	CHECK(user_hostfwd_parse("tcp:127.0.0.1:2222", false, &f) == 0, "a rule to remove");
	CHECK(user_hostfwd_parse("tcp:127.0.0.1:2222-:22", false, &f) == -EINVAL,
	      "a rule to remove has no guest side");
	CHECK(user_hostfwd_parse("icmp::1-:1", true, &f) == -EINVAL, "unknown protocol");
	CHECK(user_hostfwd_parse("tcp::70000-:22", true, &f) == -EINVAL, "host port too big");
	CHECK(user_hostfwd_parse("tcp::22-:0", true, &f) == -EINVAL, "guest port 0");
	CHECK(user_hostfwd_parse("tcp::22", true, &f) == -EINVAL, "no guest side");
	CHECK(user_hostfwd_parse("tcp:300.1.1.1:22-:22", true, &f) == -EINVAL, "bad address");
	CHECK(parse("hostfwd=tcp::1-:1,hostfwd=udp::2-:2", &c) == 0 && c.nhostfwd == 2 &&
	      c.hostfwd[1].udp, "hostfwd may repeat");
	user_config_free(&c);
}

static void check_guestfwd(void)
{
	struct user_guestfwd g;

	CHECK(user_guestfwd_parse("tcp:10.0.2.100:1234-cmd:cat -", &g) == 0 && !g.is_unix &&
	      g.port == 1234 && !strcmp(g.target, "cat -"), "guestfwd to a command");
	free(g.target);
	CHECK(user_guestfwd_parse(":10.0.2.100:80-unix:/tmp/s", &g) == 0 && g.is_unix &&
	      !strcmp(g.target, "/tmp/s"), "guestfwd to a unix socket");
	free(g.target);
	CHECK(user_guestfwd_parse("tcp:10.0.2.100:80-chardev0", &g) == -EINVAL,
	      "chardev targets are not supported");
	CHECK(user_guestfwd_parse("udp:10.0.2.100:80-cmd:x", &g) == -EINVAL, "udp guestfwd");
	CHECK(user_guestfwd_parse("tcp:nowhere:80-cmd:x", &g) == -EINVAL, "bad server");
}

int main(void)
{
	check_defaults();
	check_networks();
	check_hostfwd();
	check_guestfwd();
	return unit_done();
}
