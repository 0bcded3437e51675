/*
 * vm-run's network options, after QEMU 7's -nic, -netdev and -device NIC
 * syntax (QEMU user manual, "Network options").  Every NIC ends up as one
 * stream socket carrying length-prefixed Ethernet frames (DESIGN.md, the
 * -netdev stream framing), handed to chardev.c's NIC cable:
 *
 *   user,...                  a vm-net child (`vm-net --fd N -C fd:M user,...`)
 *                             on a socketpair, like -drive starts vm-nbd;
 *                             the control socketpair is kept (net_ctl_fd)
 *   stream,server=off,addr.type=unix,addr.path=P | addr.type=inet,
 *        addr.host=H,addr.port=P | addr.type=fd,addr.str=N
 *   socket,connect=H:P | socket,fd=N | socket,path=P (ours)
 *   stream,server=on,addr...  |  socket,listen=H:P
 *                             a vm-net hub child (`vm-net --fd N -C fd:M
 *                             -l ADDR hub`) listening for the peers, so
 *                             the guest runs while none is connected
 *
 * A child ends when vm-run closes its control socketpair.
 *
 * A -nic names its back-end and model together; -device virtio-net-pci
 * or e1000 names a -netdev by id.  A back-end that goes away leaves the
 * NIC in place with its frames dropped (link down); the guest runs on.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "vm-run.h"

/* QEMU's default NIC on pc. */
#define NET_DEFAULT_MODEL HW_NIC_E1000

static int ctl_fds[HW_MAX_NICS] = { -1, -1, -1, -1 };

/* The NIC models -nic model= and -device accept. */
static const struct {
	const char *name;
	enum hw_nic_model model;
} nic_models[] = {
	{ "virtio", HW_NIC_VIRTIO },
	{ "virtio-net-pci", HW_NIC_VIRTIO },
	{ "virtio-net", HW_NIC_VIRTIO },
	{ "e1000", HW_NIC_E1000 },
	{ "e1000-82540em", HW_NIC_E1000 },
};

/* Keys that belong to the NIC or the option, not to the back-end. */
static bool nic_key(const char *k)
{
	return !strcmp(k, "type") || !strcmp(k, "id") || !strcmp(k, "model") ||
		!strcmp(k, "mac") || !strcmp(k, "netdev");
}

static int model_parse(const char *s, enum hw_nic_model *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(nic_models); i++)
		if (!strcmp(s, nic_models[i].name)) {
			*out = nic_models[i].model;
			return 0;
		}
	return err_set(-EINVAL, "NIC model %s is not supported (virtio-net-pci, e1000)", s);
}

static char *find_vm_net(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			char *p = xasprintf("%s/vm-net", self);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return xstrdup("vm-net");
}

/* "user,KEY=VAL,..." for vm-net from the option's back-end keys. */
static char *user_args(const struct kvlist *kv)
{
	char *s = xstrdup("user");

	for (size_t i = 0; i < kv->n; i++) {
		if (nic_key(kv->v[i].key))
			continue;
		char *v = kv_escape(kv->v[i].val), *t = xasprintf("%s,%s=%s", s, kv->v[i].key, v);
		free(v);
		free(s);
		s = t;
	}
	return s;
}

/* In the child: exec `EXE --fd FD -C fd:CTL ARGS...`. */
static void child_exec(const char *exe, int fd, int ctl, const char *const *args)
{
	char fdarg[16], ctlarg[24];
	const char *argv[10] = { exe, "--fd", fdarg, "-C", ctlarg };
	sigset_t none;
	size_t n = 5;

	for (; *args && n < ARRAY_SIZE(argv) - 1; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	set_cloexec(fd, false);
	set_cloexec(ctl, false);
	signal(SIGINT, SIG_IGN);	/* Ctrl-C is for vm-run to handle */
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	snprintf(ctlarg, sizeof(ctlarg), "fd:%d", ctl);
	execvp(exe, (char *const *)argv);
	fprintf(stderr, "vm-run: %s: %s\n", exe, strerror(errno));
	_exit(127);
}

/* Start `vm-net --fd N -C fd:M ARGS...` (at most 4 ARGS); returns our
 * frame end, our control end in *ctl. */
static int spawn_vm_net(const char *const *args, int *ctl)
{
	int sv[2], cv[2];
	char *exe;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return err_set_errno(errno, "socketpair");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cv) < 0) {
		close(sv[0]);
		close(sv[1]);
		return err_set_errno(errno, "socketpair");
	}
	exe = find_vm_net();
	pid = fork();
	if (pid == 0)
		child_exec(exe, sv[1], cv[1], args);
	free(exe);
	close(sv[1]);
	close(cv[1]);
	if (pid < 0) {
		close(sv[0]);
		close(cv[0]);
		return err_set_errno(errno, "fork");
	}
	*ctl = cv[0];
	return sv[0];
}

/* Start a vm-net child and wait until it answers on its control socket:
 * a bad key or a busy address fails here (vm-net says why), not later
 * in the guest.  `what` names it in the error. */
static int start_child(int idx, const char *const *args, const char *what)
{
	int fd = spawn_vm_net(args, &ctl_fds[idx]);

	if (fd >= 0 && net_ctl(idx, "info", NULL) < 0) {
		close(fd);
		close(ctl_fds[idx]);
		ctl_fds[idx] = -1;
		return err_set(-EINVAL, "%s did not start", what);
	}
	return fd;
}

/* QEMU's listening back-ends as a vm-net hub child listening on `addr`
 * (vm-net's tcp:HOST:PORT or unix:PATH). */
static int start_listener(int idx, const char *addr)
{
	const char *args[] = { "-l", addr, "hub", NULL };

	return start_child(idx, args, "vm-net hub");
}

/* HOST:PORT (QEMU's socket,connect=) */
static int connect_hostport(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *host;
	int fd;

	if (!colon)
		return err_set(-EINVAL, "connect=%s: needs HOST:PORT", s);
	host = xasprintf("%.*s", (int)(colon - s), s);
	fd = sock_connect_tcp(*host ? host : "127.0.0.1", colon + 1);
	free(host);
	return fd;
}

/* -netdev stream,server=on: a listening hub child on the address. */
static int stream_listen(const struct kvlist *kv, int idx)
{
	const char *t = kv_get(kv, "addr.type"), *s;
	char *addr = NULL;
	int fd;

	if (t && !strcmp(t, "unix") && (s = kv_get(kv, "addr.path"))) {
		addr = xasprintf("unix:%s", s);
	} else if (t && !strcmp(t, "inet") && kv_get(kv, "addr.port")) {
		const char *h = kv_get(kv, "addr.host") ? kv_get(kv, "addr.host") : "";
		bool v6 = strchr(h, ':') && h[0] != '[';	/* an IPv6 address */

		addr = xasprintf("tcp:%s%s%s:%s", v6 ? "[" : "", h, v6 ? "]" : "", kv_get(kv, "addr.port"));
	} else {
		return err_set(-EINVAL, "stream,server=on: needs addr.type=unix,addr.path= or addr.type=inet,addr.port=");
	}
	fd = start_listener(idx, addr);
	free(addr);
	return fd;
}

static int open_stream(const struct kvlist *kv, int idx)
{
	const char *t = kv_get(kv, "addr.type"), *s = kv_get(kv, "server");
	bool server = false;
	int fd;

	if (s && parse_bool(s, &server) < 0)
		return err_set(-EINVAL, "server=%s: expected on or off", s);
	if (server)
		return stream_listen(kv, idx);
	if (!t)
		return err_set(-EINVAL, "stream: needs addr.type=");
	if (!strcmp(t, "unix") && (s = kv_get(kv, "addr.path")))
		return sock_connect_unix(s);
	if (!strcmp(t, "inet") && kv_get(kv, "addr.host") && kv_get(kv, "addr.port"))
		return sock_connect_tcp(kv_get(kv, "addr.host"), kv_get(kv, "addr.port"));
	if (!strcmp(t, "fd") && (s = kv_get(kv, "addr.str")))
		return sock_parse_fd(s, &fd) < 0 ? err_set(-EINVAL, "bad fd %s", s) : fd;
	return err_set(-EINVAL, "stream: addr.type=%s needs addr.path=, addr.host=/addr.port= or addr.str=", t);
}

/* Open the back-end described by kv (type= and its keys); returns the fd. */
static int open_backend(const struct kvlist *kv, int idx)
{
	const char *t = kv_get(kv, "type"), *s;
	int fd;

	if (!t)
		return err_set(-EINVAL, "needs a back-end type (user, stream, socket)");
	if (!strcmp(t, "user")) {
		char *args = user_args(kv);
		const char *argv[] = { args, NULL };

		fd = start_child(idx, argv, "vm-net user");
		free(args);
		return fd;
	}
	if (!strcmp(t, "stream"))
		return open_stream(kv, idx);
	if (strcmp(t, "socket"))
		return err_set(-EINVAL, "back-end %s is not supported (user, stream, socket)", t);
	if ((s = kv_get(kv, "fd")))
		return sock_parse_fd(s, &fd) < 0 ? err_set(-EINVAL, "bad fd %s", s) : fd;
	if ((s = kv_get(kv, "path")))
		return sock_connect_unix(s);
	if ((s = kv_get(kv, "connect")))
		return connect_hostport(s);
	if ((s = kv_get(kv, "listen"))) {
		char *addr = xasprintf("tcp:%s", s);

		fd = start_listener(idx, addr);
		free(addr);
		return fd;
	}
	return err_set(-EINVAL, "socket: needs connect=, listen=, fd= or path=");
}

int net_add_netdev(struct vmrun *o, const char *spec)
{
	if (o->nnetdevs >= HW_MAX_NICS)
		return err_set(-EINVAL, "-netdev: at most %d", HW_MAX_NICS);
	o->netdevs[o->nnetdevs++] = spec;
	return 0;
}

int net_add_device(struct vmrun *o, const char *spec)
{
	struct kvlist kv = { 0 };
	enum hw_nic_model m;
	const char *d;
	int r = kv_parse(spec, "driver", &kv);

	if (r < 0)
		return r;
	d = kv_get(&kv, "driver");
	r = d && model_parse(d, &m) == 0;
	kv_free(&kv);
	if (!r)
		return 1;
	if (o->nnics >= HW_MAX_NICS)
		return err_set(-EINVAL, "-device %s: at most %d NICs", spec, HW_MAX_NICS);
	o->nic_device[o->nnics] = true;
	o->nics[o->nnics++] = spec;
	return 0;
}

/* The -netdev whose id= is id, parsed into *kv. */
static int find_netdev(const struct vmrun *o, const char *id, struct kvlist *kv)
{
	for (int i = 0; i < o->nnetdevs; i++) {
		struct kvlist k = { 0 };
		int r = kv_parse(o->netdevs[i], "type", &k);
		if (r < 0)
			return r;
		const char *kid = kv_get(&k, "id");
		if (kid && !strcmp(kid, id)) {
			*kv = k;
			return 0;
		}
		kv_free(&k);
	}
	return err_set(-ENOENT, "no -netdev with id=%s", id);
}

/* Model, MAC and back-end fd for NIC idx. */
static int nic_resolve(const struct vmrun *o, int idx, struct hw_nic *nic, int *fd)
{
	struct kvlist kv = { 0 }, be = { 0 };
	const char *s;
	int r = kv_parse(o->nics[idx], o->nic_device[idx] ? "driver" : "type", &kv);

	if (r >= 0 && (s = kv_get(&kv, o->nic_device[idx] ? "driver" : "model")))
		r = model_parse(s, &nic->model);
	if (r >= 0 && (s = kv_get(&kv, "mac")))
		r = net_parse_mac(s, nic->mac);
	if (r >= 0 && o->nic_device[idx]) {
		s = kv_get(&kv, "netdev");
		r = s ? find_netdev(o, s, &be) : err_set(-EINVAL, "needs netdev=ID");
		if (r >= 0)
			r = *fd = open_backend(&be, idx);
		kv_free(&be);
	} else if (r >= 0) {
		r = *fd = open_backend(&kv, idx);
	}
	kv_free(&kv);
	return r;
}

int net_nic_open(const struct vmrun *o, struct vmrun_io *io, int idx, struct hw_nic *nic)
{
	char spec[32];
	int fd = -1, r;

	memcpy(nic->mac, (uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 + idx }, 6);
	nic->model = NET_DEFAULT_MODEL;
	r = nic_resolve(o, idx, nic, &fd);
	if (r < 0) {
		err_prefix("%s %s", o->nic_device[idx] ? "-device" : "-nic", o->nics[idx]);
		return r;
	}
	snprintf(spec, sizeof(spec), "socket,fd=%d", fd);
	uint8_t mac[6];
	memcpy(mac, nic->mac, 6);
	enum hw_nic_model model = nic->model;
	r = net_open(io, spec, idx, nic);
	memcpy(nic->mac, mac, 6);
	nic->model = model;
	return r;
}

/* HMP "info network" for NIC idx: QEMU's two lines, the NIC and, under
 * it, its back-end (malloc'd text). */
char *net_describe(const struct vmrun *o, int idx)
{
	struct kvlist kv = { 0 }, be = { 0 };
	uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + idx) };
	const char *model = "e1000", *id = NULL, *type, *s, *bid = NULL;
	char *text, bname[16];
	bool dev = o->nic_device[idx];

	if (kv_parse(o->nics[idx], dev ? "driver" : "type", &kv) < 0)
		return xasprintf("net%d: (unparsable)\n", idx);
	if ((s = kv_get(&kv, dev ? "driver" : "model")))
		model = s;
	if ((s = kv_get(&kv, "mac")))
		net_parse_mac(s, mac);
	id = kv_get(&kv, "id");
	if (dev && (bid = kv_get(&kv, "netdev")) && find_netdev(o, bid, &be) < 0)
		bid = NULL;
	snprintf(bname, sizeof(bname), "net%d", idx);
	const struct kvlist *b = dev ? &be : &kv;
	type = kv_get(b, "type") ? kv_get(b, "type") : "user";
	char *extra = !strcmp(type, "user") ?
		xasprintf(",net=%s,restrict=%s", kv_get(b, "net") ? kv_get(b, "net") : "10.0.2.0",
			  kv_get(b, "restrict") ? kv_get(b, "restrict") : "off") : xstrdup("");
	char *nicname = id ? xstrdup(id) : xasprintf("%s.%d", model, idx);
	text = xasprintf("%s: index=0,type=nic,model=%s,macaddr=%02x:%02x:%02x:%02x:%02x:%02x\n"
			 " \\ %s: index=0,type=%s%s\n", nicname, model,
			 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
			 bid ? bid : bname, type, extra);
	free(nicname);
	free(extra);
	kv_free(&be);
	kv_free(&kv);
	return text;
}

int net_ctl_fd(int idx)
{
	return idx >= 0 && idx < HW_MAX_NICS ? ctl_fds[idx] : -1;
}

int net_parse_mac(const char *s, uint8_t *mac)
{
	unsigned v[6];
	char end;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &end) != 6)
		return err_set(-EINVAL, "bad MAC address '%s'", s);
	for (int i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return err_set(-EINVAL, "bad MAC address '%s'", s);
		mac[i] = v[i];
	}
	return 0;
}

/*
 * One command line to NIC idx's vm-net child ("hostfwd_add tcp::8080-:80",
 * "set_link off"): its output lines go to *out (malloc'd, may be NULL),
 * 0 on "OK", -EIO with vm-net's message on "ERROR: ...".  The monitor's
 * thread only.
 */
int net_ctl(int idx, const char *cmd, char **out)
{
	int fd = net_ctl_fd(idx);
	char *acc = xstrdup(""), line[1024];
	size_t n = 0;

	if (out)
		*out = NULL;
	if (fd < 0) {
		free(acc);
		return err_set(-ENOENT, "NIC %d has no vm-net child", idx);
	}
	if (write_full(fd, cmd, strlen(cmd)) < 0 || write_full(fd, "\n", 1) < 0) {
		free(acc);
		return err_set(-EIO, "vm-net control socket: %s", strerror(errno));
	}
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r <= 0) {
			free(acc);
			return err_set(-EIO, "vm-net control socket closed");
		}
		if (c != '\n') {
			if (n < sizeof(line) - 1)
				line[n++] = c;
			continue;
		}
		line[n] = 0;
		n = 0;
		if (!strcmp(line, "OK") || !strncmp(line, "ERROR: ", 7))
			break;
		char *t = xasprintf("%s%s\n", acc, line);
		free(acc);
		acc = t;
	}
	if (!strcmp(line, "OK")) {
		if (out)
			*out = acc;
		else
			free(acc);
		return 0;
	}
	free(acc);
	return err_set(-EIO, "%s", line + 7);
}

/* QEMU's set_link: the guest's NIC sees the link change, and a vm-net
 * child drops frames while it is off. */
int net_set_link(struct machine *m, int idx, bool up)
{
	if (idx < 0 || idx >= HW_MAX_NICS)
		return err_set(-EINVAL, "no NIC %d", idx);
	machine_nic_set_link(m, idx, up);
	return net_ctl_fd(idx) < 0 ? 0 : net_ctl(idx, up ? "set_link on" : "set_link off", NULL);
}
