/*
 * Opening what a monitor option names, with QEMU's character device
 * syntax for -qmp and -monitor: "unix:PATH", "tcp:HOST:PORT" or "fd:N",
 * optionally followed by ",server=on" (the only mode served) and
 * ",wait=off" (the machine does not wait for a client; wait=on is not
 * supported).  The older spellings "server" and "nowait" work too.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

static int listen_options(const char *spec, struct kvlist *kv)
{
	static const char *const known[] = { "addr", "server", "wait", "nowait", NULL };
	bool on;
	int r;

	if ((r = kv_parse(spec, "addr", kv)) < 0 || (r = kv_check(kv, known)) < 0)
		return r;
	if ((r = kv_get_bool(kv, "server", true, &on)) < 0)
		return r;
	if (!on)
		return err_set(-ENOTSUP, "%s: only server=on monitors are supported", spec);
	if ((r = kv_get_bool(kv, "wait", false, &on)) < 0)
		return r;
	if (on && !kv_get(kv, "nowait"))
		return err_set(-ENOTSUP, "%s: wait=on is not supported (use wait=off)", spec);
	if (!kv_get(kv, "addr"))
		return err_set(-EINVAL, "%s: missing address", spec);
	return 0;
}

static int listen_addr(const struct sock_addr *a, struct qmp_listen *out)
{
	int acc = 0, r;
	socklen_t len = sizeof(acc);

	switch (a->kind) {
	case SOCK_UNIX:
		if ((r = sock_listen_unix(a->path, 0600)) < 0)
			return r;
		out->fd[out->n++] = r;
		out->path = xstrdup(a->path);
		return 0;
	case SOCK_TCP:
		r = sock_listen_tcp(a->host, a->port, out->fd, (int)ARRAY_SIZE(out->fd));
		if (r < 0)
			return r;
		out->n = r;
		return 0;
	default:
		out->fd[out->n++] = a->fd;
		out->connected = getsockopt(a->fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc;
		return 0;
	}
}

int qmp_listen_open(const char *spec, struct qmp_listen *out)
{
	struct kvlist kv = { 0 };
	struct sock_addr a;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = listen_options(spec, &kv)) == 0 &&
	    (r = sock_addr_parse(kv_get(&kv, "addr"), &a)) == 0) {
		r = listen_addr(&a, out);
		sock_addr_free(&a);
	}
	kv_free(&kv);
	return r;
}
