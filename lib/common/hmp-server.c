/*
 * The human monitor served on a socket or a terminal: QEMU's -monitor
 * (QEMU user manual, "QEMU Monitor").  A client gets a banner and the
 * "(qemu) " prompt, types one command per line, and reads the output in
 * QEMU's layout with "\r\n" line ends, then the next prompt.  Commands
 * run through the QMP server's human layer (qmp_server_hmp), so they
 * behave exactly as human-monitor-command and vm-mon do; an error is
 * printed in place of output and the session goes on.
 *
 * Each client is a pair of descriptors (the same socket twice, or stdin
 * and stdout).  Output is written at once; a client that stops reading
 * until its socket buffer is full is disconnected rather than allowed to
 * stall the machine's loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define HMP_MAX_LINE 4096
#define HMP_MAX_LISTEN 8

struct hmp_client {
	struct hmp_server *srv;
	int in, out;
	char line[HMP_MAX_LINE];
	size_t len;
	bool overlong;            /* discarding up to the next newline */
	bool dead;
	struct hmp_client *next;
};

struct hmp_server {
	struct loop *loop;
	struct qmp_server *qmp;
	char *banner;
	struct hmp_client *clients;
	int listen_fd[HMP_MAX_LISTEN];
	char *listen_path[HMP_MAX_LISTEN];
	int nlisten;
	int depth;                /* inside a callback: defer freeing */
};

static void client_close(struct hmp_client *c)
{
	if (c->dead)
		return;
	loop_del(c->srv->loop, c->in);
	if (c->in > STDERR_FILENO)        /* stdio stays open */
		close(c->in);
	if (c->out != c->in && c->out > STDERR_FILENO)
		close(c->out);
	c->dead = true;
}

static void server_reap(struct hmp_server *h)
{
	struct hmp_client **pp = &h->clients;

	if (h->depth)
		return;
	while (*pp) {
		struct hmp_client *c = *pp;

		if (c->dead) {
			*pp = c->next;
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

/* Write text with "\r\n" line ends. */
static void client_write(struct hmp_client *c, const char *text)
{
	struct hmp_out o = { 0 };
	int r = 0;

	for (const char *p = text; *p; ) {
		size_t n = strcspn(p, "\n");

		hmp_printf(&o, "%.*s%s", (int)n, p, p[n] ? "\r\n" : "");
		p += n + (p[n] != '\0');
	}
	if (o.len && !c->dead)
		r = write_full(c->out, o.buf, o.len);
	hmp_out_free(&o);
	if (r < 0) {
		LOG(LOG_QMP, "human monitor client not reading: %s", strerror(-r));
		client_close(c);
	}
}

static void client_line(struct hmp_client *c, char *line)
{
	char *out = NULL;
	int r;

	LOG(LOG_QMP, "hmp <- %s", line);
	r = qmp_server_hmp(c->srv->qmp, line, &out);
	if (out)
		client_write(c, out);
	free(out);
	if (r < 0) {
		client_write(c, r == -ENOENT ? "" : "Error: ");
		client_write(c, err_msg());
		client_write(c, "\n");
	}
	client_write(c, "(qemu) ");
}

/* Split what arrived into lines ("\r\n" or "\n"); an overlong line is
 * refused as a whole. */
static void client_input(struct hmp_client *c, const char *buf, size_t n)
{
	for (size_t i = 0; i < n && !c->dead; i++) {
		if (buf[i] == '\n') {
			if (c->len && c->line[c->len - 1] == '\r')
				c->len--;
			c->line[c->len] = '\0';
			if (c->overlong)
				client_write(c, "line too long\n(qemu) ");
			else
				client_line(c, c->line);
			c->len = 0;
			c->overlong = false;
		} else if (c->len + 1 < sizeof(c->line)) {
			c->line[c->len++] = buf[i];
		} else {
			c->overlong = true;
		}
	}
}

static void client_event(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct hmp_client *c = opaque;
	struct hmp_server *h = c->srv;
	char buf[4096];
	ssize_t n;

	h->depth++;
	n = read(c->in, buf, sizeof(buf));
	if (n > 0)
		client_input(c, buf, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		client_close(c);
	h->depth--;
	server_reap(h);
}

int hmp_server_add(struct hmp_server *h, int in, int out)
{
	struct hmp_client *c = xzalloc(sizeof(*c));
	int r;

	c->srv = h;
	c->in = in;
	c->out = out;
	if ((r = loop_add(h->loop, in, LOOP_IN, client_event, c)) < 0) {
		free(c);
		return r;
	}
	c->next = h->clients;
	h->clients = c;
	client_write(c, h->banner);
	client_write(c, "\n(qemu) ");
	return 0;
}

static void server_accept(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct hmp_server *h = opaque;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return;
	if (hmp_server_add(h, cfd, cfd) < 0) {
		log_warn("human monitor: %s", err_msg());
		close(cfd);
	}
	server_reap(h);
}

struct hmp_server *hmp_server_new(struct loop *l, struct qmp_server *qmp, const char *banner)
{
	struct hmp_server *h = xzalloc(sizeof(*h));

	h->loop = l;
	h->qmp = qmp;
	h->banner = xasprintf("%s monitor - type 'help' for more information",
			      banner ? banner : "QEMU");
	return h;
}

int hmp_server_listen(struct hmp_server *h, const char *spec)
{
	struct qmp_listen l;
	int r;

	if ((r = qmp_listen_open(spec, &l)) < 0)
		return r;
	if (l.connected) {
		set_nonblock(l.fd[0], true);
		r = hmp_server_add(h, l.fd[0], l.fd[0]);
	}
	for (int i = 0; i < l.n && !l.connected; i++) {
		if (r == 0 && h->nlisten == HMP_MAX_LISTEN)
			r = err_set(-EMFILE, "too many human monitor listeners");
		if (r == 0)
			r = loop_add(h->loop, l.fd[i], LOOP_IN, server_accept, h);
		if (r < 0) {
			close(l.fd[i]);
			continue;
		}
		h->listen_fd[h->nlisten] = l.fd[i];
		h->listen_path[h->nlisten++] = i == 0 && l.path ? xstrdup(l.path) : NULL;
	}
	free(l.path);
	return r < 0 ? r : 0;
}

void hmp_server_free(struct hmp_server *h)
{
	if (!h)
		return;
	for (struct hmp_client *c = h->clients; c; c = c->next)
		client_close(c);
	h->depth = 0;
	server_reap(h);
	for (int i = 0; i < h->nlisten; i++) {
		loop_del(h->loop, h->listen_fd[i]);
		close(h->listen_fd[i]);
		if (h->listen_path[i])
			unlink(h->listen_path[i]);
		free(h->listen_path[i]);
	}
	free(h->banner);
	free(h);
}
