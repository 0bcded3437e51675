/*
 * vm-run's disks: every drive is an NBD export.  An NBD URI is connected
 * directly; an image file gets a vm-nbd child serving it on one end of a
 * socketpair (`vm-nbd --fd N`), so no image-format code runs in the
 * process that runs the guest.  -snapshot asks vm-nbd for a temporary
 * overlay (-s); for an NBD URI the overlay lives in vm-run's memory, in
 * 64 KiB copy-on-write chunks.  The block back-end calls are synchronous,
 * except for submit (NBD disks without the in-memory overlay): virtio-blk
 * starts a read or write there and the NBD client's reader thread
 * completes it.  The overlay takes scattered requests too (readv and
 * writev), without submit.
 *
 * For the monitor: each drive gets its counters (hw_block_stats) and its
 * rerror/werror policy here; a CD-ROM may start empty; a medium is opened
 * and closed later (change, eject) from the monitor's thread, hence the
 * lock around the tables of clients and children.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "vm-run.h"

#define MAX_CHILDREN HW_MAX_DISKS

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nbd_client *clients[HW_MAX_DISKS * 4];
static pid_t children[MAX_CHILDREN * 4];
static int nclients, nchildren;
static struct hw_block_stats stats[HW_MAX_DISKS];
static int nstats;

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

static int blk_readv(void *opaque, const struct iovec *iov, int n, uint64_t off)
{
	return nbd_client_readv(opaque, iov, n, off);
}

static int blk_writev(void *opaque, const struct iovec *iov, int n, uint64_t off)
{
	return nbd_client_writev(opaque, iov, n, off, 0);
}

static const struct hw_block_ops nbd_blk_ops = { blk_read, blk_write, blk_flush };
static int blk_submit(void *opaque, bool write, const struct iovec *iov, int n, uint64_t off,
		      void (*done)(void *arg, int err), void *arg)
{
	return nbd_client_submit(opaque, write, iov, n, off, done, arg);
}

static const struct hw_block_vec_ops nbd_blk_vec_ops = { blk_readv, blk_writev, blk_submit };

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

/* Scattered reads: straight from the base into the iovecs while no
 * chunk of the range is the overlay's yet; else through one buffer. */
static int ov_readv(void *opaque, const struct iovec *iov, int n, uint64_t off)
{
	struct overlay *o = opaque;
	size_t len = 0, at = 0;
	bool own = false;
	uint8_t *buf;
	int r;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (off > o->size || len > o->size - off)
		return err_set(-EINVAL, "read beyond the end of the overlay");
	pthread_mutex_lock(&o->lock);
	for (uint64_t ci = off / CHUNK; len && ci <= (off + len - 1) / CHUNK && !own; ci++)
		own = o->chunk[ci] != NULL;
	if (!own) {
		r = nbd_client_readv(o->base, iov, n, off);
		pthread_mutex_unlock(&o->lock);
		return r;
	}
	buf = xmalloc(len);
	r = ov_io(o, buf, off, len, false);
	pthread_mutex_unlock(&o->lock);
	for (int i = 0; i < n && r == 0; at += iov[i++].iov_len)
		memcpy(iov[i].iov_base, buf + at, iov[i].iov_len);
	free(buf);
	return r;
}

/* Scattered writes land in the chunks piece by piece (memory copies;
 * a chunk is read from the base once, when it is first written). */
static int ov_writev(void *opaque, const struct iovec *iov, int n, uint64_t off)
{
	struct overlay *o = opaque;
	size_t len = 0;
	int r = 0;

	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	if (off > o->size || len > o->size - off)
		return err_set(-EINVAL, "write beyond the end of the overlay");
	pthread_mutex_lock(&o->lock);
	for (int i = 0; i < n && r == 0; off += iov[i++].iov_len)
		r = ov_io(o, iov[i].iov_base, off, iov[i].iov_len, true);
	pthread_mutex_unlock(&o->lock);
	return r;
}

static const struct hw_block_ops overlay_ops = { ov_read, ov_write, NULL };
static const struct hw_block_vec_ops overlay_vec_ops = { ov_readv, ov_writev, NULL };
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

/* Start `vm-nbd --fd N` on a socketpair for drive idx (its control
 * channel goes to nbdctl.c; -1: none); returns our end. */
static int spawn_vm_nbd(const struct vmrun *o, const struct vmrun_drive *d, int idx)
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
	for (int i = 0; i < 2; i++) {
		int sz = 4 << 20;
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
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
		nbdctl_register(idx, cv[0]);
	}
	pthread_mutex_lock(&table_lock);
	if (nchildren < (int)ARRAY_SIZE(children))
		children[nchildren++] = pid;
	pthread_mutex_unlock(&table_lock);
	return sv[0];
}

/* -drive rerror=/werror= into lib/hw's actions (QEMU's names). */
static int error_action(const char *s, enum hw_blk_error_action dflt,
			enum hw_blk_error_action *out)
{
	static const char *const names[] = {
		[HW_BLKERR_REPORT] = "report", [HW_BLKERR_IGNORE] = "ignore",
		[HW_BLKERR_STOP] = "stop", [HW_BLKERR_ENOSPC] = "enospc",
	};

	*out = dflt;
	for (size_t i = 0; s && i < ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i])) {
			*out = i;
			return 0;
		}
	return s ? err_set(-EINVAL, "'%s' invalid %s error action", s,
			   dflt == HW_BLKERR_ENOSPC ? "write" : "read") : 0;
}

static void add_client(struct nbd_client *c)
{
	pthread_mutex_lock(&table_lock);
	if (nclients < (int)ARRAY_SIZE(clients))
		clients[nclients++] = c;
	pthread_mutex_unlock(&table_lock);
}

int disk_open(const struct vmrun *o, const struct vmrun_drive *d, struct hw_disk *out)
{
	struct nbd_client *c;
	int r;

	*out = (struct hw_disk){ .cdrom = d->cdrom, .iface = d->iface, .index = d->index,
		.readonly = d->readonly, .stats = nstats < HW_MAX_DISKS ? &stats[nstats++] : NULL };
	r = error_action(d->rerror, HW_BLKERR_REPORT, &out->rerror);
	r = r < 0 ? r : error_action(d->werror, HW_BLKERR_ENOSPC, &out->werror);
	if (r < 0)
		return r;
	if (d->cdrom && (!d->file || !*d->file)) {
		out->empty = true;
		return 0;
	}
	if (nbd_uri_is(d->file)) {
		r = nbd_client_open_uri(d->file, NULL, &c);
	} else {
		int fd = spawn_vm_nbd(o, d, (int)(d - o->drives));
		if (fd < 0)
			return fd;
		r = nbd_client_open_fd(fd, NULL, &c);
	}
	if (r < 0) {
		err_prefix("%s", d->file);
		return r;
	}
	add_client(c);
	out->ops = &nbd_blk_ops;
	out->vec = &nbd_blk_vec_ops;
	out->opaque = c;
	out->size = nbd_client_size(c);
	out->readonly = d->readonly || nbd_client_read_only(c);
	if (d->snapshot && nbd_uri_is(d->file)) {
		struct overlay *o = xzalloc(sizeof(*o));
		pthread_mutex_init(&o->lock, NULL);
		o->base = c;
		o->size = out->size;
		o->chunk = xzalloc(sizeof(*o->chunk) * DIV_ROUND_UP(o->size, CHUNK));
		overlays[noverlays++] = o;
		out->ops = &overlay_ops;
		out->vec = &overlay_vec_ops;
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

/* ---- the monitor's media and resize ---- */

int disk_open_medium(const struct vmrun *o, const char *file, const char *format,
		     struct hw_disk *out)
{
	struct vmrun_drive d = { .file = (char *)file, .format = format, .readonly = true,
		.cdrom = true, .iface = HW_IF_IDE, .index = -1 };
	struct nbd_client *c;
	int r;

	if (!nbd_uri_is(file) && access(file, R_OK) < 0)
		return err_set_errno(errno, "Could not open '%s'", file);
	if (nbd_uri_is(file)) {
		r = nbd_client_open_uri(file, NULL, &c);
	} else {
		int fd = spawn_vm_nbd(o, &d, -1);
		if (fd < 0)
			return fd;
		r = nbd_client_open_fd(fd, NULL, &c);
	}
	if (r < 0) {
		err_prefix("Could not open '%s'", file);
		return r;
	}
	add_client(c);
	*out = (struct hw_disk){ .ops = &nbd_blk_ops, .vec = &nbd_blk_vec_ops, .opaque = c,
		.size = nbd_client_size(c),
		.readonly = true, .cdrom = true, .iface = HW_IF_IDE };
	return 0;
}

void disk_close_medium(const struct hw_disk *d)
{
	bool ours = false;

	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < nclients; i++)
		if (clients[i] == d->opaque) {
			clients[i] = clients[--nclients];
			ours = true;
			break;
		}
	pthread_mutex_unlock(&table_lock);
	if (ours)
		nbd_client_close(d->opaque);
	/* its vm-nbd child ends with the connection; disk_close_all reaps it */
}

/* block_resize through the vm-nbd child's control channel. */
int disk_resize(const struct vmrun *o, int idx, uint64_t size)
{
	if (!nbdctl_has(idx))
		return err_set(-ENOTSUP, "Cannot resize '%s': an NBD export is resized by its server",
			       o->drives[idx].file);
	return nbdctl_resize(idx, size);
}

/* QEMU's default drive names (ide0-hd0, virtio0) unless -drive id=. */
char *disk_drive_name(const struct vmrun *o, int i)
{
	const struct vmrun_drive *d = &o->drives[i];
	int n = 0, idx = d->index;

	if (d->id)
		return xstrdup(d->id);
	for (int j = 0; j < i; j++)
		n += o->drives[j].iface == d->iface;
	if (d->iface == HW_IF_VIRTIO)
		return xasprintf("virtio%d", n);
	if (idx < 0)
		idx = n;
	return xasprintf("ide%d-%s%d", idx / 2, d->cdrom ? "cd" : "hd", idx % 2);
}
