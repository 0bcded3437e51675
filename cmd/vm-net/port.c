/*
 * Ports: the stream connections of a LAN.  They are accepted on listening
 * sockets (unix, TCP, or an inherited listening descriptor), adopted from
 * an inherited connected descriptor, or made by connecting out to another
 * vm-net (which is how hubs on different hosts share one LAN).
 *
 * Each port reads whole frames in the framing of DESIGN.md (frame.c) into
 * lan_input(), and queues frames towards its peer without ever blocking
 * the loop: past PORT_WMAX queued bytes a frame is dropped, as a switch
 * with a full buffer would (TCP inside the guests recovers).  A bad length
 * prefix, a read error or the peer closing in the middle of a frame is
 * logged and closes that port only; the others keep working.  Closing is
 * deferred to port_sweep() so that a port may fail while the LAN is
 * iterating over the ports.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "net.h"

#define PORT_RBUF (256 * 1024)          /* at least one whole frame */
#define PORT_WMAX (2 * 1024 * 1024)     /* queue limit per port */
#define RECONNECT_MS 1000

/* A listening socket. */
struct listener {
	int fd;
	char *name;          /* "unix:PATH", "tcp:HOST:PORT", "fd:N" */
	char *unlink_path;   /* the socket file we created, removed at exit */
	struct lan *lan;
	struct listener *next;
};

/* A --connect address, reconnected while its port is away. */
struct target {
	char *addr;
	struct port *port;   /* NULL while disconnected */
	struct loop_timer *retry;  /* every RECONNECT_MS while away */
	struct lan *lan;
	struct target *next;
};

static void port_on_event(struct loop *l, int fd, unsigned events, void *opaque);

static struct port *port_new(struct lan *lan, int fd, const char *name)
{
	struct port *p = xzalloc(sizeof(*p));
	int one = 1;

	p->lan = lan;
	p->fd = fd;
	p->id = ++lan->next_port_id;
	p->name = xstrdup(name);
	p->rbuf = xmalloc(PORT_RBUF);
	set_nonblock(fd, true);
	set_cloexec(fd, true);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (loop_add(lan->loop, fd, LOOP_IN, port_on_event, p) < 0) {
		log_warn("%s: %s", name, err_msg());
		p->dead = true;
	}
	p->next = lan->ports;
	lan->ports = p;
	LOG(LOG_NET, "port %u: %s connected", p->id, p->name);
	return p;
}

static void port_fail(struct port *p, const char *fmt, ...) PRINTF(2, 3);

/* Log why the port goes away (NULL fmt: an orderly close) and mark it. */
static void port_fail(struct port *p, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (p->dead)
		return;
	p->dead = true;
	if (!fmt) {
		LOG(LOG_NET, "port %u: %s disconnected (rx %" PRIu64 " tx %" PRIu64
		    " dropped %" PRIu64 ")", p->id, p->name, p->rx_frames, p->tx_frames,
		    p->tx_dropped);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("port %u (%s): %s: connection closed", p->id, p->name, msg);
}

/* Hand every whole frame in the receive buffer to the LAN. */
static void port_parse(struct port *p)
{
	size_t off = 0;

	while (!p->dead) {
		const uint8_t *frame;
		uint32_t len;
		int n = frame_parse(p->rbuf + off, p->rlen - off, &frame, &len);

		if (n == 0)
			break;
		if (n < 0) {
			port_fail(p, "bad frame length %u (allowed 1..%d)", len, FRAME_MAX);
			return;
		}
		off += (size_t)n;
		p->rx_frames++;
		if (len < FRAME_MIN)
			LOG(LOG_NET, "port %u: dropping a %u-byte runt frame", p->id, len);
		else
			lan_input(p->lan, p, frame, len);
	}
	if (off && !p->dead) {
		memmove(p->rbuf, p->rbuf + off, p->rlen - off);
		p->rlen -= off;
	}
}

static void port_read(struct port *p)
{
	ssize_t n = read(p->fd, p->rbuf + p->rlen, PORT_RBUF - p->rlen);

	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			port_fail(p, "read: %s", strerror(errno));
		return;
	}
	if (n == 0) {
		if (p->rlen)
			port_fail(p, "peer closed in the middle of a frame (%zu bytes pending)",
				  p->rlen);
		else
			port_fail(p, NULL);
		return;
	}
	p->rlen += (size_t)n;
	port_parse(p);
}

static void port_watch_out(struct port *p, bool on)
{
	if (p->watch_out == on || p->dead)
		return;
	p->watch_out = on;
	loop_mod(p->lan->loop, p->fd, LOOP_IN | (on ? LOOP_OUT : 0));
}

static void port_flush(struct port *p)
{
	while (p->wlen > p->woff) {
		ssize_t n = send(p->fd, p->wbuf + p->woff, p->wlen - p->woff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			port_fail(p, "write: %s", strerror(errno));
			return;
		}
		p->woff += (size_t)n;
	}
	if (p->woff == p->wlen)
		p->woff = p->wlen = 0;
	port_watch_out(p, p->wlen > p->woff);
}

static void port_on_event(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct port *p = opaque;

	if (events & (LOOP_IN | LOOP_HUP | LOOP_ERR))
		port_read(p);
	if ((events & LOOP_OUT) && !p->dead)
		port_flush(p);
}

/* Append to the send queue, compacting it first when that makes room. */
static void port_queue(struct port *p, const uint8_t *data, size_t len)
{
	if (p->woff && p->wlen + len > p->wcap) {
		memmove(p->wbuf, p->wbuf + p->woff, p->wlen - p->woff);
		p->wlen -= p->woff;
		p->woff = 0;
	}
	if (p->wlen + len > p->wcap) {
		p->wcap = MAX(p->wcap * 2, p->wlen + len);
		p->wbuf = xrealloc(p->wbuf, p->wcap);
	}
	memcpy(p->wbuf + p->wlen, data, len);
	p->wlen += len;
}

void port_send(struct port *p, const uint8_t *frame, size_t len)
{
	uint8_t hdr[4];
	size_t done = 0;

	if (p->dead)
		return;
	if (p->wlen - p->woff + len + 4 > PORT_WMAX) {
		if (!p->tx_dropped++)
			log_warn("port %u (%s): peer is not reading, dropping frames "
				 "(counted by the control command info)", p->id, p->name);
		return;
	}
	frame_header(hdr, (uint32_t)len);
	p->tx_frames++;
	if (p->wlen == p->woff) {
		struct iovec iov[2] = { { hdr, 4 }, { (void *)frame, len } };
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n = sendmsg(p->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			port_fail(p, "write: %s", strerror(errno));
			return;
		}
		done = n > 0 ? (size_t)n : 0;
		if (done == len + 4)
			return;
	}
	if (done < 4)
		port_queue(p, hdr + done, 4 - done);
	port_queue(p, frame + (done > 4 ? done - 4 : 0), len - (done > 4 ? done - 4 : 0));
	port_watch_out(p, true);
}

/* ---- connecting out ---- */

static int target_dial(const char *addr)
{
	struct sock_addr a;
	int fd, r;

	if ((r = sock_addr_parse(addr, &a)) < 0)
		return r;
	switch (a.kind) {
	case SOCK_UNIX:
		fd = sock_connect_unix(a.path);
		break;
	case SOCK_TCP:
		fd = sock_connect_tcp(a.host, a.port);
		break;
	default:
		fd = err_set(-EINVAL, "%s: cannot connect to a descriptor (use --fd)", addr);
		break;
	}
	sock_addr_free(&a);
	return fd;
}

static void target_retry(void *opaque)
{
	struct target *t = opaque;
	int fd = target_dial(t->addr);

	if (fd < 0)
		return;
	loop_timer_mod(t->retry, -1);
	t->port = port_new(t->lan, fd, t->addr);
	t->port->target = t;
	log_warn("%s: reconnected", t->addr);
}

int port_connect(struct lan *lan, const char *addr)
{
	struct target *t;
	int fd = target_dial(addr);

	if (fd < 0)
		return fd;
	t = xzalloc(sizeof(*t));
	t->addr = xstrdup(addr);
	t->lan = lan;
	t->retry = loop_timer_new(lan->loop, target_retry, t);
	t->next = lan->targets;
	lan->targets = t;
	t->port = port_new(lan, fd, addr);
	t->port->target = t;
	return 0;
}

/* ---- listening ---- */

static void listener_on_accept(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct listener *ls = opaque;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char name[300], host[INET6_ADDRSTRLEN] = "?";
	int c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (c < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("%s: accept: %s", ls->name, strerror(errno));
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(name, sizeof(name), "tcp:%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(name, sizeof(name), "tcp:[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(name, sizeof(name), "%.290s", ls->name);
	}
	port_new(ls->lan, c, name);
}

static int listener_add(struct lan *lan, int fd, const char *name, const char *path)
{
	struct listener *ls = xzalloc(sizeof(*ls));
	int r;

	set_nonblock(fd, true);
	set_cloexec(fd, true);
	ls->fd = fd;
	ls->name = xstrdup(name);
	ls->unlink_path = path ? xstrdup(path) : NULL;
	ls->lan = lan;
	ls->next = lan->listeners;
	lan->listeners = ls;
	if ((r = loop_add(lan->loop, fd, LOOP_IN, listener_on_accept, ls)) < 0)
		return r;
	LOG(LOG_NET, "listening on %s", name);
	return 0;
}

static int port_listen_tcp(struct lan *lan, const struct sock_addr *a, const char *addr)
{
	int fds[8], n, r = 0;

	if ((n = sock_listen_tcp(a->host, a->port, fds, ARRAY_SIZE(fds))) < 0)
		return n;
	for (int i = 0; i < n; i++)
		if (r == 0)
			r = listener_add(lan, fds[i], addr, NULL);
		else
			close(fds[i]);
	return r;
}

int port_listen(struct lan *lan, const char *addr)
{
	struct sock_addr a;
	char *name;
	int fd, r;

	if ((r = sock_addr_parse(addr, &a)) < 0)
		return r;
	switch (a.kind) {
	case SOCK_UNIX:
		if ((fd = sock_listen_unix(a.path, 0600)) < 0) {
			r = fd;
			break;
		}
		name = xasprintf("unix:%s", a.path);
		r = listener_add(lan, fd, name, a.path);
		free(name);
		break;
	case SOCK_TCP:
		r = port_listen_tcp(lan, &a, addr);
		break;
	default:
		r = port_adopt_fd(lan, a.fd);
		break;
	}
	sock_addr_free(&a);
	return r;
}

int port_adopt_fd(struct lan *lan, int fd)
{
	int type = 0, acc = 0;
	socklen_t sl = sizeof(type);
	char name[32];

	snprintf(name, sizeof(name), "fd:%d", fd);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) < 0)
		return err_set_errno(errno, "file descriptor %d", fd);
	if (type != SOCK_STREAM)
		return err_set(-EINVAL, "file descriptor %d is not a stream socket", fd);
	sl = sizeof(acc);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) == 0 && acc)
		return listener_add(lan, fd, name, NULL);
	port_new(lan, fd, name);
	return 0;
}

/* ---- closing ---- */

static void port_unlink(struct lan *lan, struct port *p)
{
	struct port **pp;

	for (pp = &lan->ports; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
}

static void port_free(struct port *p)
{
	loop_del(p->lan->loop, p->fd);
	close(p->fd);
	if (p->target) {
		p->target->port = NULL;
		if (!p->lan->stop)
			log_warn("%s: connection lost; reconnecting", p->target->addr);
		loop_timer_every(p->target->retry, RECONNECT_MS);
	}
	free(p->name);
	free(p->rbuf);
	free(p->wbuf);
	free(p);
}

void port_sweep(struct lan *lan)
{
	struct port *p = lan->ports, *next;

	for (; p; p = next) {
		next = p->next;
		if (p->dead) {
			port_unlink(lan, p);
			port_free(p);
		}
	}
}

bool port_persistent(const struct lan *lan)
{
	return lan->listeners || lan->targets;
}

void port_close_all(struct lan *lan)
{
	while (lan->ports) {
		struct port *p = lan->ports;

		/* Give queued frames a last non-blocking chance. */
		if (!p->dead && p->wlen > p->woff)
			port_flush(p);
		if (p->target) {
			p->target->port = NULL;
			p->target = NULL;
		}
		lan->ports = p->next;
		port_free(p);
	}
	while (lan->listeners) {
		struct listener *ls = lan->listeners;

		lan->listeners = ls->next;
		loop_del(lan->loop, ls->fd);
		close(ls->fd);
		if (ls->unlink_path)
			unlink(ls->unlink_path);
		free(ls->unlink_path);
		free(ls->name);
		free(ls);
	}
	while (lan->targets) {
		struct target *t = lan->targets;

		lan->targets = t->next;
		loop_timer_free(t->retry);
		free(t->addr);
		free(t);
	}
}

void port_info(struct lan *lan, FILE *out)
{
	for (struct listener *ls = lan->listeners; ls; ls = ls->next)
		fprintf(out, "listening on %s\n", ls->name);
	for (struct target *t = lan->targets; t; t = t->next)
		if (!t->port)
			fprintf(out, "connecting to %s (away)\n", t->addr);
	for (struct port *p = lan->ports; p; p = p->next)
		fprintf(out, "port %u: %s rx=%" PRIu64 " tx=%" PRIu64 " dropped=%" PRIu64
			" queued=%zu%s\n", p->id, p->name, p->rx_frames, p->tx_frames,
			p->tx_dropped, p->wlen - p->woff, p->dead ? " closing" : "");
}
