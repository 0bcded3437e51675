/*
 * vm-run's disks: every drive is an NBD export.  An NBD URI is connected
 * directly; an image file gets a vm-nbd child serving it on one end of a
 * socketpair (`vm-nbd --fd N`), so no image-format code runs in the
 * process that runs the guest.  -snapshot asks vm-nbd for a temporary
 * overlay (-s); for an NBD URI the overlay lives in vm-run's memory, in
 * 64 KiB copy-on-write chunks.  The block back-end calls are synchronous.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "vm-run.h"

#define MAX_CHILDREN HW_MAX_DISKS

static struct nbd_client *clients[HW_MAX_DISKS];
static pid_t children[MAX_CHILDREN];
static int nclients, nchildren;

static int blk_read(void *opaque, void *buf, uint64_t off, size_t len)
{
	return nbd_client_read(opaque, buf, off, len);
}

static int blk_write(void *opaque, const void *buf, uint64_t off, size_t len)
{
	return nbd_client_write(opaque, buf, off, len, 0);
}

static int blk_flush(void *opaque)
{
	return nbd_client_flush(opaque);
}

static const struct hw_block_ops nbd_blk_ops = { blk_read, blk_write, blk_flush };

/* ---- the in-memory -snapshot overlay for NBD URIs ---- */

#define CHUNK (64 * 1024)

struct overlay {
	pthread_mutex_t lock;	/* virtio-blk runs requests on several threads */
	struct nbd_client *base;
	uint64_t size;
	uint8_t **chunk;	/* by chunk index; NULL: still the base's */
};

static int ov_io(struct overlay *o, void *buf, uint64_t off, size_t len, bool write)
{
	while (len) {
		uint64_t ci = off / CHUNK, in = off % CHUNK;
		size_t n = MIN(len, CHUNK - in);
		int r;

		if (!o->chunk[ci] && write) {
			o->chunk[ci] = xmalloc(CHUNK);
			size_t have = MIN((uint64_t)CHUNK, o->size - ci * CHUNK);
			r = nbd_client_read(o->base, o->chunk[ci], ci * CHUNK, have);
			if (r < 0)
				return r;
		}
		if (o->chunk[ci] && write)
			memcpy(o->chunk[ci] + in, buf, n);
		else if (o->chunk[ci])
			memcpy(buf, o->chunk[ci] + in, n);
		else if ((r = nbd_client_read(o->base, buf, off, n)) < 0)
			return r;
		buf = (uint8_t *)buf + n;
		off += n;
		len -= n;
	}
	return 0;
}

static int ov_read(void *opaque, void *buf, uint64_t off, size_t len)
{
	struct overlay *o = opaque;
	int r;

	pthread_mutex_lock(&o->lock);
	r = ov_io(o, buf, off, len, false);
	pthread_mutex_unlock(&o->lock);
	return r;
}

static int ov_write(void *opaque, const void *buf, uint64_t off, size_t len)
{
	struct overlay *o = opaque;
	int r;

	pthread_mutex_lock(&o->lock);
	r = ov_io(o, (void *)buf, off, len, true);
	pthread_mutex_unlock(&o->lock);
	return r;
}

static const struct hw_block_ops overlay_ops = { ov_read, ov_write, NULL };
static struct overlay *overlays[HW_MAX_DISKS];
static int noverlays;

static char *find_vm_nbd(const struct vmrun *o)
{
	char self[PATH_MAX];
	ssize_t n;

	if (o->vm_nbd)
		return xstrdup(o->vm_nbd);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			char *p = xasprintf("%s/vm-nbd", self);
			if (access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	return xstrdup("vm-nbd");
}

/* Start `vm-nbd --fd N` on a socketpair; returns our end. */
static int spawn_vm_nbd(const struct vmrun *o, const struct vmrun_drive *d)
{
	int sv[2], cv[2];
	char *exe = find_vm_nbd(o), fdarg[16], ctlarg[32];
	const char *argv[16];
	int n = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		free(exe);
		return err_set_errno(errno, "socketpair");
	}
	/* the control channel (nbdctl.c): snapshots, resize */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cv) < 0)
		cv[0] = cv[1] = -1;
	snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
	snprintf(ctlarg, sizeof(ctlarg), "--control-fd=%d", cv[1]);
	argv[n++] = exe;
	argv[n++] = "--fd";
	argv[n++] = fdarg;
	if (cv[1] >= 0)
		argv[n++] = ctlarg;
	if (d->format) {
		argv[n++] = "-f";
		argv[n++] = d->format;
	}
	if (d->readonly)
		argv[n++] = "-r";
	if (d->snapshot)
		argv[n++] = "-s";
	if (d->cache && (!strcmp(d->cache, "none") || !strcmp(d->cache, "directsync")))
		argv[n++] = "--cache=none";
	argv[n++] = d->file;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		if (cv[0] >= 0)
			close(cv[0]), close(cv[1]);
		free(exe);
		return err_set_errno(errno, "fork");
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		set_cloexec(sv[1], false);
		if (cv[1] >= 0)
			set_cloexec(cv[1], false);
		signal(SIGINT, SIG_IGN);	/* Ctrl-C is for vm-run to handle */
		execvp(exe, (char *const *)argv);
		fprintf(stderr, "vm-run: %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	free(exe);
	close(sv[1]);
	if (cv[1] >= 0) {
		close(cv[1]);
		nbdctl_register((int)(d - o->drives), cv[0]);
	}
	if (nchildren < MAX_CHILDREN)
		children[nchildren++] = pid;
	return sv[0];
}

int disk_open(const struct vmrun *o, const struct vmrun_drive *d, struct hw_disk *out)
{
	struct nbd_client *c;
	int r;

	if (nbd_uri_is(d->file)) {
		r = nbd_client_open_uri(d->file, NULL, &c);
	} else {
		int fd = spawn_vm_nbd(o, d);
		if (fd < 0)
			return fd;
		r = nbd_client_open_fd(fd, NULL, &c);
	}
	if (r < 0) {
		err_prefix("%s", d->file);
		return r;
	}
	clients[nclients++] = c;
	*out = (struct hw_disk){ .ops = &nbd_blk_ops, .opaque = c, .size = nbd_client_size(c),
		.readonly = d->readonly || nbd_client_read_only(c), .cdrom = d->cdrom,
		.iface = d->iface, .index = d->index };
	if (d->snapshot && nbd_uri_is(d->file)) {
		struct overlay *o = xzalloc(sizeof(*o));
		pthread_mutex_init(&o->lock, NULL);
		o->base = c;
		o->size = out->size;
		o->chunk = xzalloc(sizeof(*o->chunk) * DIV_ROUND_UP(o->size, CHUNK));
		overlays[noverlays++] = o;
		out->ops = &overlay_ops;
		out->opaque = o;
		out->readonly = false;
	}
	return 0;
}

void disk_close_all(void)
{
	for (int i = 0; i < noverlays; i++) {
		struct overlay *o = overlays[i];
		for (uint64_t k = 0; k < DIV_ROUND_UP(o->size, CHUNK); k++)
			free(o->chunk[k]);
		free(o->chunk);
		free(o);
	}
	noverlays = 0;
	for (int i = 0; i < nclients; i++)
		nbd_client_close(clients[i]);
	nclients = 0;
	nbdctl_close_all();
	/* The children end when their client disconnects; one that does not
	 * within 3 seconds is terminated, so vm-run never hangs on exit. */
	for (int i = 0; i < nchildren; i++) {
		int waited = 0;
		while (waitpid(children[i], NULL, WNOHANG) == 0) {
			if (waited == 30)
				kill(children[i], SIGTERM);
			else if (waited == 50)
				kill(children[i], SIGKILL);
			usleep(100000);
			waited++;
		}
	}
	nchildren = 0;
}
