/*
 * The user back-end: QEMU's -netdev user, a TCP/IP stack in the process
 * (libslirp, libslirp.h) that gives the guests DHCP, DNS forwarding, TFTP
 * and NAT to the host's sockets, with host forwards into the guests.
 * Its keys are parsed by user-opts.c.
 *
 * libslirp wants a poll(2)-style loop: before each sleep it lists the
 * descriptors it cares about (slirp_pollfds_fill), after it is told which
 * are ready (slirp_pollfds_poll).  We map that onto the LAN's epoll loop:
 * the list of a round is compared with the descriptors already watched
 * and only the differences become epoll_ctl calls; readiness reported by
 * the loop is recorded per descriptor and handed back in dispatch.
 * libslirp tells us when it closes a descriptor (unregister_poll_fd), so a
 * number reused by the kernel is never mistaken for the old socket.  Its
 * timers are LAN timers on the same monotonic clock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net.h"
#include "user.h"

/* A descriptor of this round, as libslirp asked for it. */
struct user_pollfd {
	int fd;
	int events;        /* SLIRP_POLL_* wanted */
	int revents;       /* SLIRP_POLL_* seen by the loop */
};

/* A descriptor on the LAN's loop. */
struct user_watch {
	int fd;
	unsigned events;   /* LOOP_* */
};

struct user {
	struct lan *lan;
	Slirp *slirp;
	struct user_config cfg;
	struct user_pollfd *pfds;
	size_t npfds, cap_pfds;
	struct user_watch *watch;
	size_t nwatch, cap_watch;
};

static const char *const user_keys[] = {
	"id", "net", "host", "dhcpstart", "dns", "ipv4", "ipv6", "ipv6-net",
	"ipv6-prefix", "ipv6-prefixlen", "ipv6-host", "ipv6-dns", "hostname",
	"domainname", "dnssearch", "restrict", "hostfwd", "guestfwd", "tftp",
	"bootfile", "tftp-server-name", "smb", NULL
};

/* ---- libslirp's callbacks ---- */

static ssize_t user_send_packet(const void *buf, size_t len, void *opaque)
{
	struct user *u = opaque;

	lan_input(u->lan, NULL, buf, len);
	return (ssize_t)len;
}

static void user_guest_error(const char *msg, void *opaque)
{
	LOG(LOG_GUEST_ERRORS, "user: guest error: %s", msg);
}

static int64_t user_clock_ns(void *opaque)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *user_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct user *u = opaque;

	return loop_timer_new(u->lan->loop, cb, cb_opaque);
}

static void user_timer_free(void *timer, void *opaque)
{
	loop_timer_free(timer);
}

static void user_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	loop_timer_mod(timer, expire_ms);
}

static void user_register_fd(int fd, void *opaque)
{
}

static void user_unwatch_at(struct user *u, size_t i)
{
	loop_del(u->lan->loop, u->watch[i].fd);
	u->watch[i] = u->watch[--u->nwatch];
}

static void user_unregister_fd(int fd, void *opaque)
{
	struct user *u = opaque;

	for (size_t i = 0; i < u->nwatch; i++)
		if (u->watch[i].fd == fd) {
			user_unwatch_at(u, i);
			return;
		}
}

static void user_notify(void *opaque)
{
}

static const SlirpCb user_callbacks = {
	.send_packet = user_send_packet,
	.guest_error = user_guest_error,
	.clock_get_ns = user_clock_ns,
	.timer_new = user_timer_new,
	.timer_free = user_timer_free,
	.timer_mod = user_timer_mod,
	.register_poll_fd = user_register_fd,
	.unregister_poll_fd = user_unregister_fd,
	.notify = user_notify,
};

/* ---- the poll loop on epoll ---- */

static int user_add_poll(int fd, int events, void *opaque)
{
	struct user *u = opaque;

	if (u->npfds == u->cap_pfds) {
		u->cap_pfds = u->cap_pfds ? u->cap_pfds * 2 : 16;
		u->pfds = xrealloc(u->pfds, u->cap_pfds * sizeof(*u->pfds));
	}
	u->pfds[u->npfds] = (struct user_pollfd){ .fd = fd, .events = events };
	return (int)u->npfds++;
}

static int user_get_revents(int idx, void *opaque)
{
	struct user *u = opaque;

	return idx >= 0 && (size_t)idx < u->npfds ? u->pfds[idx].revents : 0;
}

static void user_on_fd(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct user *u = opaque;
	int rev = (events & LOOP_IN ? SLIRP_POLL_IN : 0) |
		  (events & LOOP_OUT ? SLIRP_POLL_OUT : 0) |
		  (events & LOOP_ERR ? SLIRP_POLL_ERR : 0) |
		  (events & LOOP_HUP ? SLIRP_POLL_HUP : 0);

	for (size_t i = 0; i < u->npfds; i++)
		if (u->pfds[i].fd == fd)
			u->pfds[i].revents |= rev & (u->pfds[i].events | SLIRP_POLL_ERR |
						     SLIRP_POLL_HUP);
}

/* Bring the loop's set in line with this round's list. */
static void user_sync_watch(struct user *u)
{
	for (size_t i = 0; i < u->npfds; i++) {
		int e = u->pfds[i].events;
		unsigned want = (e & SLIRP_POLL_IN ? LOOP_IN : 0) | (e & SLIRP_POLL_OUT ? LOOP_OUT : 0);
		size_t w;

		for (w = 0; w < u->nwatch && u->watch[w].fd != u->pfds[i].fd; w++)
			;
		if (w < u->nwatch) {
			if (u->watch[w].events == want)
				continue;
			u->watch[w].events = want;
			if (loop_mod(u->lan->loop, u->pfds[i].fd, want) == 0)
				continue;
			loop_del(u->lan->loop, u->pfds[i].fd);
		} else {
			if (u->nwatch == u->cap_watch) {
				u->cap_watch = u->cap_watch ? u->cap_watch * 2 : 16;
				u->watch = xrealloc(u->watch, u->cap_watch * sizeof(*u->watch));
			}
			u->watch[u->nwatch++] = (struct user_watch){ u->pfds[i].fd, want };
		}
		if (loop_add(u->lan->loop, u->pfds[i].fd, want, user_on_fd, u) < 0)
			log_warn("user: %s", err_msg());
	}
	/* Descriptors libslirp no longer lists. */
	for (size_t w = 0; w < u->nwatch;) {
		size_t i;

		for (i = 0; i < u->npfds && u->pfds[i].fd != u->watch[w].fd; i++)
			;
		if (i == u->npfds)
			user_unwatch_at(u, w);
		else
			w++;
	}
}

static void user_prepare(void *state, int *timeout_ms)
{
	struct user *u = state;
	uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;

	u->npfds = 0;
	slirp_pollfds_fill(u->slirp, &t, user_add_poll, u);
	user_sync_watch(u);
	if (t != UINT32_MAX && (*timeout_ms < 0 || t < (uint32_t)*timeout_ms))
		*timeout_ms = (int)MIN(t, (uint32_t)60000);
}

static void user_dispatch(void *state)
{
	struct user *u = state;

	slirp_pollfds_poll(u->slirp, 0, user_get_revents, u);
	for (size_t i = 0; i < u->npfds; i++)
		u->pfds[i].revents = 0;
}

static void user_receive(void *state, const uint8_t *frame, size_t len)
{
	struct user *u = state;

	slirp_input(u->slirp, frame, (int)len);
}

/* ---- forwards ---- */

static int user_fwd_add(struct user *u, const struct user_hostfwd *f, const char *rule)
{
	struct sockaddr_in g = { .sin_family = AF_INET };
	struct sockaddr_storage h = f->host;

	g.sin_addr = f->guest.s_addr ? f->guest : u->cfg.dhcp_start;
	g.sin_port = htons((uint16_t)f->guest_port);
	errno = 0;
	if (slirp_add_hostxfwd(u->slirp, (struct sockaddr *)&h, f->host_len,
			       (struct sockaddr *)&g, sizeof(g), f->udp ? SLIRP_HOSTFWD_UDP : 0) < 0)
		return err_set_errno(errno ? errno : EADDRINUSE,
				     "could not set up host forwarding rule '%s'", rule);
	LOG(LOG_NET, "user: hostfwd %s", rule);
	return 0;
}

static int user_hostfwd_add(void *state, const char *rule)
{
	struct user_hostfwd f;
	int r;

	if ((r = user_hostfwd_parse(rule, true, &f)) < 0)
		return r;
	return user_fwd_add(state, &f, rule);
}

static int user_hostfwd_remove(void *state, const char *rule)
{
	struct user *u = state;
	struct user_hostfwd f;
	int r;

	if ((r = user_hostfwd_parse(rule, false, &f)) < 0)
		return r;
	if (slirp_remove_hostxfwd(u->slirp, (struct sockaddr *)&f.host, f.host_len,
				  f.udp ? SLIRP_HOSTFWD_UDP : 0) < 0)
		return err_set(-ENOENT, "could not remove host forwarding rule '%s'", rule);
	return 0;
}

static int user_guestfwd_add(struct user *u, struct user_guestfwd *g)
{
	int r = g->is_unix ? slirp_add_unix(u->slirp, g->target, &g->server, g->port)
			   : slirp_add_exec(u->slirp, g->target, &g->server, g->port);

	if (r < 0)
		return err_set(-EINVAL, "guestfwd %s:%d: conflicts with another forward",
			       inet_ntoa(g->server), g->port);
	return 0;
}

/* ---- open and close ---- */

static void user_slirp_config(const struct user *u, SlirpConfig *sc)
{
	const struct user_config *c = &u->cfg;

	memset(sc, 0, sizeof(*sc));
	sc->version = 4;
	sc->restricted = c->restricted;
	sc->in_enabled = c->ipv4;
	sc->vnetwork = c->net;
	sc->vnetmask = c->mask;
	sc->vhost = c->host;
	sc->in6_enabled = c->ipv6;
	sc->vprefix_addr6 = c->net6;
	sc->vprefix_len = (uint8_t)c->prefix6;
	sc->vhost6 = c->host6;
	sc->vhostname = c->hostname;
	sc->tftp_server_name = c->tftp_server_name;
	sc->tftp_path = c->tftp;
	sc->bootfile = c->bootfile;
	sc->vdhcp_start = c->dhcp_start;
	sc->vnameserver = c->dns;
	sc->vnameserver6 = c->dns6;
	sc->vdnssearch = c->dnssearch;
	sc->vdomainname = c->domainname;
}

static void user_close(void *state)
{
	struct user *u = state;

	if (!u)
		return;
	while (u->nwatch)
		user_unwatch_at(u, u->nwatch - 1);
	if (u->slirp)
		slirp_cleanup(u->slirp);
	user_config_free(&u->cfg);
	free(u->pfds);
	free(u->watch);
	free(u);
}

static int user_open(struct lan *lan, const struct kvlist *opts, void **state)
{
	struct user *u = xzalloc(sizeof(*u));
	SlirpConfig sc;
	int r;

	u->lan = lan;
	if ((r = user_config_parse(opts, &u->cfg)) < 0)
		goto fail;
	user_slirp_config(u, &sc);
	u->slirp = slirp_new(&sc, &user_callbacks, u);
	if (!u->slirp) {
		r = err_set(-EINVAL, "libslirp refused the configuration");
		goto fail;
	}
	for (size_t i = 0; i < u->cfg.nhostfwd; i++)
		if ((r = user_fwd_add(u, &u->cfg.hostfwd[i], u->cfg.hostfwd[i].text)) < 0)
			goto fail;
	for (size_t i = 0; i < u->cfg.nguestfwd; i++)
		if ((r = user_guestfwd_add(u, &u->cfg.guestfwd[i])) < 0)
			goto fail;
	*state = u;
	return 0;
fail:
	user_close(u);
	return r;
}

static void user_info(void *state, FILE *out)
{
	struct user *u = state;
	char net[40], *s;

	user_net_str(u->cfg.net, u->cfg.mask, net, sizeof(net));
	fprintf(out, "user net=%s host=%s", net, inet_ntoa(u->cfg.host));
	fprintf(out, " dhcpstart=%s", inet_ntoa(u->cfg.dhcp_start));
	fprintf(out, " dns=%s restrict=%s\n", inet_ntoa(u->cfg.dns),
		u->cfg.restricted ? "on" : "off");
	s = slirp_connection_info(u->slirp);
	if (s)
		fputs(s, out);
	free(s);      /* glib allocates with malloc */
}

const struct net_backend user_backend = {
	.name = "user",
	.summary = "user-mode networking (libslirp): net=, host=, dns=, hostfwd=, ...",
	.keys = user_keys,
	.open = user_open,
	.receive = user_receive,
	.prepare = user_prepare,
	.dispatch = user_dispatch,
	.hostfwd_add = user_hostfwd_add,
	.hostfwd_remove = user_hostfwd_remove,
	.info = user_info,
	.close = user_close,
};
