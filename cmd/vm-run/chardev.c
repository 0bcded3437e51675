/*
 * Host side of vm-run's character devices and its I/O thread: serial
 * back-ends (stdio, file:, unix:, pty, none), the stdio console with
 * QEMU's Ctrl-a escapes (x quits, h helps, a sends Ctrl-a, c is kept for
 * the monitor), NIC cables (net.c) and the progress watchdog that notices
 * an accelerator which runs nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "vm-run.h"

#define MAX_IN 16

static int64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum in_kind { IN_CONSOLE, IN_CHAR, IN_LISTEN, IN_NET };

struct chardev {
	int fd;			/* output (and input for sockets) */
	int idx;
	struct vmrun_io *io;
};

struct input {
	int fd;
	enum in_kind kind;
	int idx;
	struct chardev *chr;
	/* net framing */
	uint8_t *buf;
	size_t have;
};

struct vmrun_io {
	struct machine *m;
	struct input in[MAX_IN];
	int nin;
	pthread_t thread;
	bool running, escape, watchdog_fired, tty_saved;
	struct vmrun_mon *mon;	/* Ctrl-a c target, or NULL */
	bool in_monitor;
	int stop_pipe[2];
	int sigfd;		/* SIGTERM, SIGINT, SIGHUP: quit */
	int watchdog_secs;
	struct termios saved_tty;
	void *owned[2 * MAX_IN];	/* chardevs and netdevs to free */
	int nowned;
};

static void *own(struct vmrun_io *io, void *p)
{
	if (io->nowned < (int)ARRAY_SIZE(io->owned))
		io->owned[io->nowned++] = p;
	return p;
}

void io_free(struct vmrun_io *io)
{
	if (!io)
		return;
	io_restore_tty(io);
	for (int i = 0; i < io->nin; i++) {
		if (io->in[i].fd > 2)
			close(io->in[i].fd);
		free(io->in[i].buf);
	}
	for (int i = 0; i < io->nowned; i++)
		free(io->owned[i]);
	if (io->sigfd >= 0)
		close(io->sigfd);
	free(io);
}

struct vmrun_io *io_new(void)
{
	struct vmrun_io *io = xzalloc(sizeof(*io));

	io->stop_pipe[0] = io->stop_pipe[1] = -1;
	io->sigfd = -1;
	return io;
}

static int io_add_input(struct vmrun_io *io, int fd, int kind, int idx, void *chr)
{
	if (io->nin >= MAX_IN)
		return err_set(-ENOSPC, "too many character devices");
	io->in[io->nin++] = (struct input){ .fd = fd, .kind = kind, .idx = idx, .chr = chr };
	return 0;
}

/* Plain write(), not write_full(): its send() first failed with ENOTSOCK
 * on every byte a UART wrote to a terminal or a file, two system calls a
 * byte.  (vm-run ignores SIGPIPE, so a socket's closed peer is an EPIPE.) */
static void chr_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct chardev *c = opaque;

	while (c->fd >= 0 && len) {
		ssize_t n = write(c->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (c->fd > 2)
				c->fd = -1;	/* the other end went away: drop output */
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static const struct hw_char_ops chr_ops = { .write = chr_write };

static void raw_tty(struct vmrun_io *io)
{
	struct termios t;

	if (!isatty(0) || tcgetattr(0, &io->saved_tty) < 0)
		return;
	io->tty_saved = true;
	t = io->saved_tty;
	t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	t.c_oflag |= OPOST | ONLCR;
	t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	t.c_cflag &= ~(CSIZE | PARENB);
	t.c_cflag |= CS8;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(0, TCSANOW, &t);
}

void io_restore_tty(struct vmrun_io *io)
{
	if (io && io->tty_saved) {
		tcsetattr(0, TCSANOW, &io->saved_tty);
		io->tty_saved = false;
	}
}

static int open_unix(const char *spec, struct vmrun_io *io, struct chardev *c)
{
	struct kvlist kv = { 0 };
	bool server = false, wait = true;
	int r = kv_parse(spec, "path", &kv);

	if (r < 0)
		return r;
	kv_get_bool(&kv, "server", false, &server);
	kv_get_bool(&kv, "wait", true, &wait);
	const char *path = kv_get(&kv, "path");
	if (!path || !*path) {
		kv_free(&kv);
		return err_set(-EINVAL, "unix: needs a path");
	}
	if (server) {
		int l = sock_listen_unix(path, 0600);
		if (l < 0) {
			kv_free(&kv);
			return l;
		}
		c->fd = wait ? accept(l, NULL, NULL) : -1;
		r = io_add_input(io, l, IN_LISTEN, c->idx, c);
	} else {
		c->fd = sock_connect_unix(path);
		r = c->fd;
	}
	if (r >= 0 && c->fd >= 0)
		r = io_add_input(io, c->fd, IN_CHAR, c->idx, c);
	kv_free(&kv);
	return r < 0 ? r : 0;
}

int chardev_open(struct vmrun_io *io, const char *spec, int idx, struct hw_char_backend *be)
{
	struct chardev *c = xzalloc(sizeof(*c));
	int r = 0;

	c->idx = idx;
	c->io = io;
	c->fd = -1;
	if (!strcmp(spec, "stdio") || !strcmp(spec, "mon:stdio")) {
		c->fd = 1;
		raw_tty(io);
		r = io_add_input(io, 0, IN_CONSOLE, idx, c);
	} else if (!strncmp(spec, "file:", 5)) {
		c->fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->fd < 0)
			r = err_set_errno(errno, "%s", spec + 5);
	} else if (!strncmp(spec, "unix:", 5)) {
		r = open_unix(spec + 5, io, c);
	} else if (!strcmp(spec, "pty")) {
		c->fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (c->fd < 0 || grantpt(c->fd) < 0 || unlockpt(c->fd) < 0) {
			r = err_set_errno(errno, "pty");
		} else {
			struct termios t;
			if (tcgetattr(c->fd, &t) == 0) {
				cfmakeraw(&t);
				tcsetattr(c->fd, TCSANOW, &t);
			}
			fprintf(stderr, "char device redirected to %s (label serial%d)\n",
				ptsname(c->fd), idx < 0 ? 0 : idx);
			r = io_add_input(io, c->fd, IN_CHAR, idx, c);
		}
	} else if (!strcmp(spec, "none") || !strcmp(spec, "null")) {
		c->fd = -1;
	} else {
		r = err_set(-EINVAL, "-serial %s: unknown character device (stdio, file:, unix:, pty, none)", spec);
	}
	if (r < 0) {
		free(c);
		return r;
	}
	own(io, c);
	be->ops = &chr_ops;
	be->opaque = c;
	return 0;
}

static const char escape_help[] =
	"\r\nC-a h    print this help\r\n"
	"C-a x    exit emulator\r\n"
	"C-a c    switch between console and monitor\r\n"
	"C-a a    sends C-a\r\n";

/* Console bytes: Ctrl-a escapes, the rest to the guest. */
static void console_input(struct vmrun_io *io, const uint8_t *buf, size_t n, int idx)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = buf[i];
		if (io->escape) {
			io->escape = false;
			if (b == 'x') {
				io_restore_tty(io);
				fprintf(stderr, "vm-run: terminated\n");
				machine_quit(io->m, 0);
				return;
			} else if (b == 'h' || b == '?') {
				write_full(1, escape_help, sizeof(escape_help) - 1);
				continue;
			} else if (b == 'c' && io->mon) {
				io->in_monitor = !io->in_monitor;
				if (io->in_monitor)
					mon_console_enter(io->mon);
				continue;
			} else if (b != 1) {
				continue;
			}
		} else if (b == 1) {
			io->escape = true;
			continue;
		}
		if (io->in_monitor)
			mon_console_input(io->mon, b);
		else
			machine_char_input(io->m, idx, &b, 1);
	}
}

/* ---- NIC cables: Ethernet frames with a 4-byte big-endian length ---- */

#define FRAME_MAX 65536

struct netdev { int fd; };

static void net_send(void *opaque, const uint8_t *frame, size_t len)
{
	struct netdev *n = opaque;
	uint8_t hdr[4] = { len >> 24, len >> 16, len >> 8, len };

	if (n->fd < 0)
		return;
	if (write_full(n->fd, hdr, 4) < 0 || write_full(n->fd, frame, len) < 0) {
		close(n->fd);
		n->fd = -1;
	}
}

static const struct hw_net_ops net_ops = { .send = net_send };

static int parse_mac(const char *s, uint8_t *mac)
{
	unsigned v[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return err_set(-EINVAL, "bad MAC address '%s'", s);
	for (int i = 0; i < 6; i++)
		mac[i] = v[i];
	return 0;
}

int net_open(struct vmrun_io *io, const char *spec, int idx, struct hw_nic *nic)
{
	static const char *const known[] = { "type", "path", "fd", "mac", "model", "id", "netdev", NULL };
	struct kvlist kv = { 0 };
	struct netdev *n;
	const char *s;
	int r = kv_parse(spec, "type", &kv), fd = -1;

	if (r >= 0)
		r = kv_check(&kv, known);
	if (r >= 0 && (!(s = kv_get(&kv, "type")) || (strcmp(s, "socket") && strcmp(s, "stream"))))
		r = err_set(-EINVAL, "-nic %s: only socket,path=PATH or socket,fd=N is supported", spec);
	if (r >= 0 && (s = kv_get(&kv, "model")) && strcmp(s, "virtio") && strcmp(s, "virtio-net-pci"))
		r = err_set(-EINVAL, "-nic: model %s is not supported (virtio)", s);
	memcpy(nic->mac, (uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + idx }, 6);
	if (r >= 0 && (s = kv_get(&kv, "mac")))
		r = parse_mac(s, nic->mac);
	if (r >= 0 && (s = kv_get(&kv, "fd")))
		r = fd = sock_parse_fd(s, &fd) < 0 ? -EINVAL : fd;
	else if (r >= 0 && (s = kv_get(&kv, "path")))
		r = fd = sock_connect_unix(s);
	else if (r >= 0)
		r = err_set(-EINVAL, "-nic %s: needs path= or fd=", spec);
	kv_free(&kv);
	if (r < 0)
		return r;
	n = own(io, xzalloc(sizeof(*n)));
	n->fd = fd;
	nic->ops = &net_ops;
	nic->opaque = n;
	return io_add_input(io, fd, IN_NET, idx, NULL);
}

static void net_input(struct vmrun_io *io, struct input *in)
{
	ssize_t n;

	if (!in->buf)
		in->buf = xmalloc(FRAME_MAX + 4);
	n = read(in->fd, in->buf + in->have, FRAME_MAX + 4 - in->have);
	if (n <= 0) {
		in->fd = -1;
		machine_nic_set_link(io->m, in->idx, false);	/* back-end gone */
		return;
	}
	in->have += n;
	while (in->have >= 4) {
		uint32_t len = (uint32_t)in->buf[0] << 24 | in->buf[1] << 16 | in->buf[2] << 8 | in->buf[3];
		if (len > FRAME_MAX) {
			in->fd = -1;	/* not our framing: give up on this cable */
			return;
		}
		if (in->have < 4 + len)
			break;
		machine_nic_input(io->m, in->idx, in->buf + 4, len);
		memmove(in->buf, in->buf + 4 + len, in->have - 4 - len);
		in->have -= 4 + len;
	}
}

/* ---- the I/O thread ---- */

static void handle(struct vmrun_io *io, struct input *in)
{
	uint8_t buf[4096];
	ssize_t n;

	switch (in->kind) {
	case IN_NET:
		net_input(io, in);
		return;
	case IN_LISTEN: {
		int c = accept(in->fd, NULL, NULL);
		if (c < 0)
			return;
		if (in->chr->fd >= 0) {
			close(c);	/* one client at a time */
			return;
		}
		in->chr->fd = c;
		io_add_input(io, c, IN_CHAR, in->idx, in->chr);
		return;
	}
	default:
		n = read(in->fd, buf, sizeof(buf));
		if (n <= 0) {
			if (in->kind == IN_CHAR && in->chr && in->chr->fd == in->fd) {
				close(in->fd);
				in->chr->fd = -1;
			}
			in->fd = -1;
			return;
		}
		if (in->kind == IN_CONSOLE)
			console_input(io, buf, n, in->idx);
		else
			machine_char_input(io->m, in->idx, buf, n);
	}
}

static void *io_thread(void *arg)
{
	struct vmrun_io *io = arg;
	uint64_t last = machine_progress(io->m);
	int64_t last_t = clock_ms(), idle_ms = 0;

	while (io->running) {
		struct pollfd p[MAX_IN + 1];
		int map[MAX_IN + 1], n = 0;

		p[n] = (struct pollfd){ .fd = io->stop_pipe[0], .events = POLLIN };
		map[n++] = -1;
		p[n] = (struct pollfd){ .fd = io->sigfd, .events = POLLIN };
		map[n++] = -1;
		for (int i = 0; i < io->nin; i++)
			if (io->in[i].fd >= 0) {
				p[n] = (struct pollfd){ .fd = io->in[i].fd, .events = POLLIN };
				map[n++] = i;
			}
		int r = poll(p, n, 500);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 2; i < n && r > 0; i++)
			if (p[i].revents)
				handle(io, &io->in[map[i]]);
		if (p[0].revents)
			break;
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(io->sigfd, &si, sizeof(si)) == sizeof(si)) {
				io_restore_tty(io);
				fprintf(stderr, "vm-run: terminating on signal %u\n", si.ssi_signo);
				machine_quit(io->m, 0);
			}
		}
		if (io->watchdog_secs) {
			int64_t now = clock_ms();
			uint64_t prog = machine_progress(io->m);
			if (prog - last < 10)
				idle_ms += now - last_t;
			else
				idle_ms = 0;
			if (prog > 100000)	/* it got going: an idle guest later is fine */
				io->watchdog_secs = 0;
			last = prog;
			last_t = now;
			if (io->watchdog_secs && idle_ms >= io->watchdog_secs * 1000ll) {
				io->watchdog_fired = true;
				machine_quit(io->m, 1);
				break;
			}
		}
	}
	return NULL;
}

int io_start(struct vmrun_io *io, struct machine *m, int watchdog_secs)
{
	int r;

	io->m = m;
	io->watchdog_secs = watchdog_secs;
	if (io->sigfd < 0) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		io->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	}
	io->watchdog_fired = false;
	if (pipe2(io->stop_pipe, O_CLOEXEC) < 0)
		return err_set_errno(errno, "pipe");
	io->running = true;
	r = pthread_create(&io->thread, NULL, io_thread, io);
	if (r) {
		io->running = false;
		return err_set_errno(r, "I/O thread");
	}
	return 0;
}

void io_stop(struct vmrun_io *io)
{
	if (!io->running)
		return;
	io->running = false;
	write_full(io->stop_pipe[1], "x", 1);
	pthread_join(io->thread, NULL);
	close(io->stop_pipe[0]);
	close(io->stop_pipe[1]);
}

void io_set_monitor(struct vmrun_io *io, struct vmrun_mon *mon)
{
	io->mon = mon;
}

bool io_watchdog_fired(struct vmrun_io *io)
{
	return io->watchdog_fired;
}
