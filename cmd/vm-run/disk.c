/*
 * vm-run's disks: every drive is an NBD export.  An NBD URI is connected
 * directly; an image file gets a vm-nbd child serving it on socketpairs
 * (`vm-nbd --fd N,...`, one connection per host CPU up to four for a
 * virtio disk: below), so no image-format code runs in the process that
 * runs the guest.  -snapshot asks vm-nbd for a temporary
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
 * lock around the tables of drives' connections and children.
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
static struct conns *drives[HW_MAX_DISKS * 4];
static pid_t children[MAX_CHILDREN * 4];
static int ndrives, nchildren;
static struct hw_block_stats stats[HW_MAX_DISKS];
static int nstats;

/* ---- a drive's connections ---- */

/* A vm-nbd child serves one socketpair per host CPU, up to MAX_CONN, as
 * connections of one client (multi-conn).  Each connection's reader
 * thread copies its replies' data into guest memory, so a large request
 * is cut into one piece per connection and the copies run side by side
 * (with one request in flight, an O_DIRECT read, they were one thread's
 * work); smaller requests take the connections in turn.  The synchronous
 * calls use the first.  An NBD URI is one connection. */
#define MAX_CONN 4
#define SPLIT_MIN (256 * 1024)	/* requests cut in pieces from here */
#define PIECE_MIN (128 * 1024)

struct conns {
	struct nbd_client *c[MAX_CONN];
	int n;
	unsigned turn;
};

/* The pieces of one request: done(arg) when the last is back. */
struct split {
	int left;
	int err;
	void (*done)(void *arg, int err);
	void *arg;
};

static void split_put(struct split *s, int pieces)
{
	if (__atomic_sub_fetch(&s->left, pieces, __ATOMIC_ACQ_REL) == 0) {
		s->done(s->arg, __atomic_load_n(&s->err, __ATOMIC_ACQUIRE));
		free(s);
	}
}

static void piece_done(void *arg, int err)
{
	struct split *s = arg;

	if (err < 0)
		__atomic_store_n(&s->err, err, __ATOMIC_RELEASE);
	split_put(s, 1);
}

static int blk_submit(void *opaque, bool write, const struct iovec *iov, int n, uint64_t off,
		      void (*done)(void *arg, int err), void *arg)
{
	struct conns *d = opaque;
	size_t len = iov_total(iov, n), at = 0, each;
	struct iovec *sub;
	struct split *s;
	int k;

	k = len >= SPLIT_MIN ? (int)MIN((size_t)d->n, len / PIECE_MIN) : 1;
	if (k <= 1) {
		unsigned t = __atomic_fetch_add(&d->turn, 1, __ATOMIC_RELAXED) % (unsigned)d->n;
		return nbd_client_submit(d->c[t], write, iov, n, off, done, arg);
	}
	each = len / (size_t)k & ~(size_t)4095;
	sub = xmalloc(sizeof(*sub) * (size_t)n);
	s = xmalloc(sizeof(*s));
	*s = (struct split){ .left = k, .done = done, .arg = arg };
	for (int p = 0; p < k; p++) {
		size_t plen = p == k - 1 ? len - at : each, skip = at;
		int i = iov_seek(iov, n, &skip), m = iov_slice(iov, n, i, skip, plen, sub, n);
		int r = nbd_client_submit(d->c[p], write, sub, m, off + at, piece_done, s);

		if (r < 0 && p == 0) {		/* nothing started */
			free(s);
			free(sub);
			return r;
		}
		if (r < 0) {			/* the rest never will */
			__atomic_store_n(&s->err, r, __ATOMIC_RELEASE);
			split_put(s, k - p);
			break;
		}
		at += plen;
	}
	free(sub);
	return 0;
}

static int blk_read(void *opaque, void *buf, uint64_t off, size_t len)
{
	return nbd_client_read(((struct conns *)opaque)->c[0], buf, off, len);
}

static int blk_write(void *opaque, const void *buf, uint64_t off, size_t len)
{
	return nbd_client_write(((struct conns *)opaque)->c[0], buf, off, len, 0);
}

static int blk_flush(void *opaque)
{
	return nbd_client_flush(((struct conns *)opaque)->c[0]);
}

static int blk_readv(void *opaque, const struct iovec *iov, int n, uint64_t off)
{
	return nbd_client_readv(((struct conns *)opaque)->c[0], iov, n, off);
}

static int blk_writev(void *opaque, const struct iovec *iov, int n, uint64_t off)
{
	return nbd_client_writev(((struct conns *)opaque)->c[0], iov, n, off, 0);
}

static const struct hw_block_ops nbd_blk_ops = { blk_read, blk_write, blk_flush };
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
	size_t len = iov_total(iov, n), at = 0;
	bool own = false;
	uint8_t *buf;
	int r;

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
	size_t len = iov_total(iov, n);
	int r = 0;

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

static void close_pairs(int (*sv)[2], int n)
{
	for (int i = 0; i < n; i++)
		close(sv[i][0]), close(sv[i][1]);
}

/* Start `vm-nbd --fd N,...` on nconn socketpairs for drive idx (its
 * control channel goes to nbdctl.c; -1: none); our ends go to fds. */
static int spawn_vm_nbd(const struct vmrun *o, const struct vmrun_drive *d, int idx,
			int nconn, int *fds)
{
	int sv[MAX_CONN][2], cv[2];
	char *exe = find_vm_nbd(o), fdarg[8 * MAX_CONN], ctlarg[32];
	const char *argv[16];
	int n = 0, at = 0;
	pid_t pid;

	for (int k = 0; k < nconn; k++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[k]) < 0) {
			close_pairs(sv, k);
			free(exe);
			return err_set_errno(errno, "socketpair");
		}
		for (int i = 0; i < 2; i++) {
			int sz = 4 << 20;
			setsockopt(sv[k][i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
			setsockopt(sv[k][i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		}
		at += snprintf(fdarg + at, sizeof(fdarg) - (size_t)at, "%s%d", k ? "," : "", sv[k][1]);
	}
	/* the control channel (nbdctl.c): snapshots, resize */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cv) < 0)
		cv[0] = cv[1] = -1;
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
		close_pairs(sv, nconn);
		if (cv[0] >= 0)
			close(cv[0]), close(cv[1]);
		free(exe);
		return err_set_errno(errno, "fork");
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int k = 0; k < nconn; k++)
			set_cloexec(sv[k][1], false);
		if (cv[1] >= 0)
			set_cloexec(cv[1], false);
		signal(SIGINT, SIG_IGN);	/* Ctrl-C is for vm-run to handle */
		execvp(exe, (char *const *)argv);
		fprintf(stderr, "vm-run: %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	free(exe);
	for (int k = 0; k < nconn; k++) {
		close(sv[k][1]);
		fds[k] = sv[k][0];
	}
	if (cv[1] >= 0) {
		close(cv[1]);
		nbdctl_register(idx, cv[0]);
	}
	pthread_mutex_lock(&table_lock);
	if (nchildren < (int)ARRAY_SIZE(children))
		children[nchildren++] = pid;
	pthread_mutex_unlock(&table_lock);
	return 0;
}

static void conns_close(struct conns *d)
{
	for (int i = 0; i < d->n; i++)
		nbd_client_close(d->c[i]);
	free(d);
}

/* A drive's connections: an NBD URI's one, or a new vm-nbd child's. */
static int conns_open(const struct vmrun *o, const struct vmrun_drive *d, int idx, int max,
		      struct conns **out)
{
	struct conns *c = xzalloc(sizeof(*c));
	int fds[MAX_CONN], nconn = MIN(MIN(cpu_count(), MAX_CONN), max), r = 0;

	if (nbd_uri_is(d->file)) {
		r = nbd_client_open_uri(d->file, NULL, &c->c[0]);
		c->n = r == 0;
	} else if ((r = spawn_vm_nbd(o, d, idx, nconn, fds)) == 0) {
		for (int k = 0; k < nconn; k++) {
			if (r < 0)
				close(fds[k]);
			else if ((r = nbd_client_open_fd(fds[k], NULL, &c->c[k])) == 0)
				c->n++;
		}
	}
	if (r < 0) {
		conns_close(c);
		return r;
	}
	if (!nbd_uri_is(d->file))
		LOG(LOG_BLOCK, "%s: a vm-nbd child, %d connection%s", d->file, c->n,
		    c->n > 1 ? "s" : "");
	pthread_mutex_lock(&table_lock);
	if (ndrives < (int)ARRAY_SIZE(drives))
		drives[ndrives++] = c;
	pthread_mutex_unlock(&table_lock);
	*out = c;
	return 0;
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

int disk_open(const struct vmrun *o, const struct vmrun_drive *d, struct hw_disk *out)
{
	struct conns *c;
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
	/* (IDE runs one request at a time, synchronously: one connection) */
	r = conns_open(o, d, (int)(d - o->drives), d->iface == HW_IF_VIRTIO ? MAX_CONN : 1, &c);
	if (r < 0) {
		err_prefix("%s", d->file);
		return r;
	}
	out->ops = &nbd_blk_ops;
	out->vec = &nbd_blk_vec_ops;
	out->opaque = c;
	out->size = nbd_client_size(c->c[0]);
	out->readonly = d->readonly || nbd_client_read_only(c->c[0]);
	if (d->snapshot && nbd_uri_is(d->file)) {
		struct overlay *o = xzalloc(sizeof(*o));
		pthread_mutex_init(&o->lock, NULL);
		o->base = c->c[0];
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
	for (int i = 0; i < ndrives; i++)
		conns_close(drives[i]);
	ndrives = 0;
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
	struct conns *c;
	int r;

	if (!nbd_uri_is(file) && access(file, R_OK) < 0)
		return err_set_errno(errno, "Could not open '%s'", file);
	if ((r = conns_open(o, &d, -1, 1, &c)) < 0) {
		err_prefix("Could not open '%s'", file);
		return r;
	}
	*out = (struct hw_disk){ .ops = &nbd_blk_ops, .vec = &nbd_blk_vec_ops, .opaque = c,
		.size = nbd_client_size(c->c[0]),
		.readonly = true, .cdrom = true, .iface = HW_IF_IDE };
	return 0;
}

void disk_close_medium(const struct hw_disk *d)
{
	bool ours = false;

	pthread_mutex_lock(&table_lock);
	for (int i = 0; i < ndrives; i++)
		if (drives[i] == d->opaque) {
			drives[i] = drives[--ndrives];
			ours = true;
			break;
		}
	pthread_mutex_unlock(&table_lock);
	if (ours)
		conns_close(d->opaque);
	/* its vm-nbd child ends with the connection; disk_close_all reaps it */
}

/* block_resize through the vm-nbd child's control channel. */
int disk_resize(const struct vmrun *o, int idx, uint64_t size)
{
	struct conns *c = o->hw.disks[idx].opaque;
	int r;

	if (!nbdctl_has(idx))
		return err_set(-ENOTSUP, "Cannot resize '%s': an NBD export is resized by its server",
			       o->drives[idx].file);
	r = nbdctl_resize(idx, size);
	/* the connections check requests against the new size (the guest
	 * reads and writes the space it grew by) */
	for (int i = 0; r == 0 && c && i < c->n; i++)
		nbd_client_set_size(c->c[i], size);
	return r;
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
