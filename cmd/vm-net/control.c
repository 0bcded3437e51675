/*
 * The control socket (--control PATH, or fd:N inherited listening or
 * already connected): a unix socket taking one command per line, for
 * scripts and for vm-run's monitor, which forwards QEMU's HMP commands
 * hostfwd_add, hostfwd_remove and set_link to it.  An inherited connected
 * descriptor is the parent's (vm-run's) line to its child: when the
 * parent closes it, vm-net stops, even while it listens.  The
 * commands keep QEMU's HMP argument order, the netdev id being optional:
 *
 *   hostfwd_add [ID] [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT
 *   hostfwd_remove [ID] [tcp|udp]:[HOSTADDR]:HOSTPORT
 *   set_link [ID] on|off
 *   info
 *   help
 *   quit
 *
 * Each reply is zero or more lines of output, then a last line "OK" or
 * "ERROR: message".  Any number of commands may follow on one connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net.h"

#define CONTROL_LINE_MAX 4096
#define CONTROL_ARGS_MAX 8

struct control_conn {
	struct control *ctl;
	int fd;
	char buf[CONTROL_LINE_MAX];
	size_t len;
	bool lifeline;          /* inherited: its end stops vm-net */
	struct control_conn *next;
};

struct control {
	struct lan *lan;
	int fd;
	char *path;
	struct control_conn *conns;
};

/* One command: fn gets the words after the name (the optional id already
 * checked and removed) and writes its output lines to out. */
struct control_cmd {
	const char *name;
	const char *args;          /* synopsis of the arguments */
	const char *help;
	int nargs;                 /* arguments expected after the optional id */
	int (*fn)(struct lan *lan, char **argv, FILE *out);
};

static int cmd_help(struct lan *lan, char **argv, FILE *out);

static int cmd_info(struct lan *lan, char **argv, FILE *out)
{
	lan_info(lan, out);
	return 0;
}

static int cmd_hostfwd_add(struct lan *lan, char **argv, FILE *out)
{
	if (!lan->be || !lan->be->hostfwd_add)
		return err_set(-ENOTSUP, "the %s back-end has no host forwards",
			       lan->be ? lan->be->name : "");
	return lan->be->hostfwd_add(lan->be_state, argv[0]);
}

static int cmd_hostfwd_remove(struct lan *lan, char **argv, FILE *out)
{
	if (!lan->be || !lan->be->hostfwd_remove)
		return err_set(-ENOTSUP, "the %s back-end has no host forwards",
			       lan->be ? lan->be->name : "");
	return lan->be->hostfwd_remove(lan->be_state, argv[0]);
}

static int cmd_set_link(struct lan *lan, char **argv, FILE *out)
{
	bool up;

	if (parse_bool(argv[0], &up) < 0)
		return err_set(-EINVAL, "set_link: expected on or off, not '%s'", argv[0]);
	if (up != lan->link_up)
		log_warn("link %s", up ? "up" : "down");
	lan->link_up = up;
	return 0;
}

static int cmd_quit(struct lan *lan, char **argv, FILE *out)
{
	lan->stop = true;
	return 0;
}

static const struct control_cmd control_cmds[] = {
	{ "hostfwd_add", "[ID] [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT",
	  "forward a host port to the guest network", 1, cmd_hostfwd_add },
	{ "hostfwd_remove", "[ID] [tcp|udp]:[HOSTADDR]:HOSTPORT",
	  "remove a host forward", 1, cmd_hostfwd_remove },
	{ "set_link", "[ID] on|off", "connect or cut the LAN (frames are dropped while off)",
	  1, cmd_set_link },
	{ "info", "", "show the back-end, the ports and the counters", 0, cmd_info },
	{ "help", "", "list the commands", 0, cmd_help },
	{ "quit", "", "stop vm-net", 0, cmd_quit },
};

static int cmd_help(struct lan *lan, char **argv, FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(control_cmds); i++)
		fprintf(out, "%s%s%s -- %s\n", control_cmds[i].name,
			*control_cmds[i].args ? " " : "", control_cmds[i].args,
			control_cmds[i].help);
	return 0;
}

/* Run one tokenised command. */
static int control_run(struct lan *lan, int argc, char **argv, FILE *out)
{
	const struct control_cmd *c = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(control_cmds); i++)
		if (!strcmp(argv[0], control_cmds[i].name))
			c = &control_cmds[i];
	if (!c)
		return err_set(-EINVAL, "unknown command '%s' (try help)", argv[0]);
	argc--;
	argv++;
	if (c->nargs && argc == c->nargs + 1) {
		/* QEMU's HMP names the netdev first: accept our id= or the
		 * back-end's name. */
		if ((!lan->id || strcmp(argv[0], lan->id)) &&
		    (!lan->be || strcmp(argv[0], lan->be->name)))
			return err_set(-ENOENT, "%s: no back-end with id '%s'", c->name, argv[0]);
		argc--;
		argv++;
	}
	if (argc != c->nargs)
		return err_set(-EINVAL, "usage: %s %s", c->name, c->args);
	return c->fn(lan, argv, out);
}

void control_exec(struct lan *lan, const char *line, FILE *out)
{
	char *copy = xstrdup(line), *argv[CONTROL_ARGS_MAX + 1], *save = NULL, *w;
	int argc = 0, r;

	for (w = strtok_r(copy, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == CONTROL_ARGS_MAX) {
			argc = -1;
			break;
		}
		argv[argc++] = w;
	}
	if (argc == 0) {
		fprintf(out, "ERROR: empty command\n");
	} else if (argc < 0) {
		fprintf(out, "ERROR: too many arguments\n");
	} else {
		argv[argc] = NULL;
		err_clear();
		r = control_run(lan, argc, argv, out);
		if (r < 0)
			fprintf(out, "ERROR: %s\n", err_msg());
		else
			fprintf(out, "OK\n");
	}
	free(copy);
}

/* ---- the socket ---- */

static void control_conn_free(struct control_conn *cc)
{
	struct control_conn **pp;

	for (pp = &cc->ctl->conns; *pp; pp = &(*pp)->next)
		if (*pp == cc) {
			*pp = cc->next;
			break;
		}
	loop_del(cc->ctl->lan->loop, cc->fd);
	close(cc->fd);
	free(cc);
}

static void control_reply(struct control_conn *cc, const char *line)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out)
		return;
	LOG(LOG_NET, "control: %s", line);
	control_exec(cc->ctl->lan, line, out);
	fclose(out);
	if (write_full(cc->fd, text, len) < 0)
		LOG(LOG_NET, "control: reply lost: %s", strerror(errno));
	free(text);
}

static void control_on_conn(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct control_conn *cc = opaque;
	ssize_t n = read(fd, cc->buf + cc->len, sizeof(cc->buf) - 1 - cc->len);
	char *nl;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (cc->lifeline) {
			LOG(LOG_NET, "control: the parent closed its connection: stopping");
			cc->ctl->lan->stop = true;
		}
		control_conn_free(cc);
		return;
	}
	cc->len += (size_t)n;
	cc->buf[cc->len] = 0;
	while ((nl = memchr(cc->buf, '\n', cc->len))) {
		*nl = 0;
		control_reply(cc, cc->buf);
		cc->len -= (size_t)(nl + 1 - cc->buf);
		memmove(cc->buf, nl + 1, cc->len);
	}
	if (cc->len == sizeof(cc->buf) - 1) {
		log_warn("control: command line too long: connection closed");
		control_conn_free(cc);
	}
}

static void control_conn_add(struct control *ctl, int c, bool lifeline)
{
	struct timeval tv = { .tv_sec = 2 };
	struct control_conn *cc;

	/* Replies are written whole; a client that does not read them
	 * may stall the LAN for two seconds, not forever. */
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	set_nonblock(c, false);
	cc = xzalloc(sizeof(*cc));
	cc->ctl = ctl;
	cc->fd = c;
	cc->lifeline = lifeline;
	if (loop_add(ctl->lan->loop, c, LOOP_IN, control_on_conn, cc) < 0) {
		close(c);
		free(cc);
		return;
	}
	cc->next = ctl->conns;
	ctl->conns = cc;
}

static void control_on_accept(struct loop *l, int fd, unsigned events, void *opaque)
{
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

	if (c >= 0)
		control_conn_add(opaque, c, false);
}

/* The control socket from "unix:PATH", PATH or "fd:N"; an inherited
 * descriptor may be listening or already connected (a socketpair from
 * vm-run). */
static int control_open(struct control *ctl, const char *addr)
{
	struct sock_addr a;
	int acc = 0, r;
	socklen_t sl = sizeof(acc);

	if ((r = sock_addr_parse(addr, &a)) < 0)
		return r;
	if (a.kind == SOCK_UNIX) {
		ctl->fd = sock_listen_unix(a.path, 0600);
		ctl->path = ctl->fd >= 0 ? xstrdup(a.path) : NULL;
		r = ctl->fd < 0 ? ctl->fd : 0;
	} else if (a.kind == SOCK_FD) {
		set_cloexec(a.fd, true);
		if (getsockopt(a.fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) == 0 && acc) {
			ctl->fd = a.fd;
		} else {
			control_conn_add(ctl, a.fd, true);
			r = 0;
		}
	} else {
		r = err_set(-EINVAL, "%s: the control socket is a unix socket or fd:N", addr);
	}
	sock_addr_free(&a);
	return r;
}

int control_listen(struct lan *lan, const char *addr)
{
	struct control *ctl = xzalloc(sizeof(*ctl));
	int r;

	ctl->lan = lan;
	ctl->fd = -1;
	lan->control = ctl;
	if ((r = control_open(ctl, addr)) < 0)
		return r;
	if (ctl->fd >= 0 && (r = loop_add(lan->loop, ctl->fd, LOOP_IN, control_on_accept, ctl)) < 0)
		return r;
	return 0;
}

void control_close(struct lan *lan)
{
	struct control *ctl = lan->control;

	if (!ctl)
		return;
	while (ctl->conns)
		control_conn_free(ctl->conns);
	if (ctl->fd >= 0) {
		loop_del(lan->loop, ctl->fd);
		close(ctl->fd);
	}
	if (ctl->path)
		unlink(ctl->path);
	free(ctl->path);
	free(ctl);
	lan->control = NULL;
}

/* ---- the client: vm-net ctl SOCKET COMMAND... ---- */

static int control_client_read(int fd)
{
	char buf[CONTROL_LINE_MAX], *line = buf;
	size_t len = 0;

	for (;;) {
		char *nl;
		ssize_t n;

		while ((nl = memchr(line, '\n', len - (size_t)(line - buf)))) {
			*nl = 0;
			if (!strcmp(line, "OK"))
				return 0;
			if (!strncmp(line, "ERROR: ", 7))
				return err_set(-EIO, "%s", line + 7);
			printf("%s\n", line);
			line = nl + 1;
		}
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
		line = buf;
		if (len == sizeof(buf))
			return err_set(-EPROTO, "reply line too long");
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set_errno(errno, "control socket");
		if (n == 0)
			return err_set(-EPROTO, "control socket closed before the reply ended");
		len += (size_t)n;
	}
}

int control_client(const char *path, int argc, char **argv)
{
	char *line = xstrdup("");
	int fd, r;

	for (int i = 0; i < argc; i++) {
		char *next = xasprintf("%s%s%s", line, i ? " " : "", argv[i]);

		free(line);
		line = next;
	}
	if (strchr(line, '\n')) {
		free(line);
		return err_set(-EINVAL, "a command cannot contain a newline");
	}
	if ((fd = sock_connect_unix(path)) < 0) {
		free(line);
		return fd;
	}
	r = write_full(fd, line, strlen(line));
	if (r == 0)
		r = write_full(fd, "\n", 1);
	free(line);
	if (r < 0)
		r = err_set_errno(-r, "%s", path);
	else
		r = control_client_read(fd);
	close(fd);
	return r;
}
