/*
 * The listening side of vm-nbd, with qemu-nbd's lifetime rules.
 *
 * We accept on every listening socket (a unix socket, TCP on IPv4 and
 * IPv6, or sockets handed over by systemd's LISTEN_FDS) while fewer than
 * -e/--shared clients are connected (0: no limit); connections beyond the
 * limit wait in the listen backlog.  Without -t/--persistent the server
 * ends when its last client leaves, after having served at least one.
 * SIGTERM, SIGINT and SIGHUP end it too: we stop accepting, hang up on
 * the clients (their requests in flight still finish) and return.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "vm-nbd.h"

#define MAX_LISTEN 16

/* The write end of the notify pipe, for the signal handler (cmd/, not
 * lib/: the one global the process needs). */
static int signal_fd = -1;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	char b = 0;

	stop_signal = sig;
	if (signal_fd >= 0 && write(signal_fd, &b, 1) < 0)
		stop_signal = sig;
}

static int server_init(struct server *s)
{
	struct sigaction sa = { .sa_handler = on_signal };

	pthread_mutex_init(&s->lock, NULL);
	if (pipe2(s->notify, O_CLOEXEC | O_NONBLOCK) < 0)
		return err_set_errno(errno, "pipe");
	signal_fd = s->notify[1];
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void accept_one(struct server *s, int lfd)
{
	int one = 1, sndbuf = 2 << 20, fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* room for a few large read replies, so that a worker's
	 * non-blocking send usually takes a whole one */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	log_info("client connected");
	conn_start(s, fd);
}

/* Hang up on every client and wait until their threads have ended. */
static void server_drain(struct server *s)
{
	struct conn *c;
	char buf[64];

	pthread_mutex_lock(&s->lock);
	for (c = s->conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (s->nconns) {
		struct pollfd p = { s->notify[0], POLLIN, 0 };

		pthread_mutex_unlock(&s->lock);
		poll(&p, 1, 100);
		while (read(s->notify[0], buf, sizeof(buf)) > 0)
			;
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
}

/* Should the loop end: a signal, or a one-shot server whose clients have
 * all left? */
static bool server_done(struct server *s)
{
	bool done;

	pthread_mutex_lock(&s->lock);
	done = stop_signal || (!s->cfg->persistent && s->served && !s->nconns);
	pthread_mutex_unlock(&s->lock);
	return done;
}

int server_run(struct server *s, const int *lfds, int nlfds)
{
	struct pollfd p[MAX_LISTEN + 1];
	char buf[64];
	int r;

	if ((r = server_init(s)) < 0)
		return r;
	for (int i = 0; i < nlfds; i++)
		set_nonblock(lfds[i], true);
	while (!server_done(s)) {
		bool room;

		pthread_mutex_lock(&s->lock);
		room = s->cfg->shared == 0 || s->nconns < s->cfg->shared;
		pthread_mutex_unlock(&s->lock);
		p[0] = (struct pollfd){ s->notify[0], POLLIN, 0 };
		for (int i = 0; i < nlfds && i < MAX_LISTEN; i++)
			p[i + 1] = (struct pollfd){ room ? lfds[i] : -1, POLLIN, 0 };
		if (poll(p, 1 + MIN(nlfds, MAX_LISTEN), -1) < 0 && errno != EINTR)
			return err_set_errno(errno, "poll");
		if (p[0].revents)
			while (read(s->notify[0], buf, sizeof(buf)) > 0)
				;
		for (int i = 0; i < nlfds && i < MAX_LISTEN; i++)
			if (room && (p[i + 1].revents & POLLIN) && !stop_signal)
				accept_one(s, lfds[i]);
	}
	server_drain(s);
	return 0;
}

int server_run_fd(struct server *s, const int *fds, int nfds)
{
	char buf[64];
	int r;

	if ((r = server_init(s)) < 0)
		return r;
	for (int i = 0; i < nfds; i++) {
		set_cloexec(fds[i], true);
		conn_start(s, fds[i]);
	}
	for (;;) {
		struct pollfd p = { s->notify[0], POLLIN, 0 };
		bool done;

		pthread_mutex_lock(&s->lock);
		done = stop_signal || !s->nconns;
		pthread_mutex_unlock(&s->lock);
		if (done)
			break;
		poll(&p, 1, -1);
		while (read(s->notify[0], buf, sizeof(buf)) > 0)
			;
	}
	server_drain(s);
	return 0;
}
