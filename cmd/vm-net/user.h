/*
 * The user back-end's configuration: QEMU's -netdev user keys parsed into
 * addresses (user-opts.c), shared with the libslirp glue (user.c) and the
 * unit tests.
 */
#ifndef VM_NET_USER_H
#define VM_NET_USER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>

struct kvlist;

/* hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
struct user_hostfwd {
	const char *text;               /* the rule as given */
	bool udp;
	struct sockaddr_storage host;   /* AF_INET, or AF_INET6 for [v6] */
	socklen_t host_len;
	struct in_addr guest;           /* 0.0.0.0 when not given */
	int guest_port;
};

/* guestfwd=[tcp]:SERVER:PORT-cmd:COMMAND or -unix:PATH */
struct user_guestfwd {
	struct in_addr server;
	int port;
	bool is_unix;                   /* else a command */
	char *target;
};

struct user_config {
	bool ipv4, ipv6, restricted;
	struct in_addr net, mask, host, dhcp_start, dns;
	struct in6_addr net6, host6, dns6;
	unsigned prefix6;
	const char *hostname, *domainname, *tftp, *bootfile, *tftp_server_name;
	const char **dnssearch;         /* NULL-terminated, or NULL */
	struct user_hostfwd *hostfwd;
	size_t nhostfwd;
	struct user_guestfwd *guestfwd;
	size_t nguestfwd;
};

/* Fill cfg from the keys (the strings stay owned by `kv`).  0, or
 * -EINVAL with a message naming the key. */
int user_config_parse(const struct kvlist *kv, struct user_config *cfg);
void user_config_free(struct user_config *cfg);
/* One host forward for adding (full rule) or removing (with_guest false:
 * "[tcp|udp]:[HOSTADDR]:HOSTPORT"). */
int user_hostfwd_parse(const char *rule, bool with_guest, struct user_hostfwd *out);
int user_guestfwd_parse(const char *rule, struct user_guestfwd *out);
/* "10.0.2.0/24"-style text of an IPv4 network. */
void user_net_str(struct in_addr net, struct in_addr mask, char *buf, size_t len);

#endif
