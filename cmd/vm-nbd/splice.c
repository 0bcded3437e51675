/*
 * Zero-copy reads: the data of a read reply goes from the host's page
 * cache to the client's socket without passing through our memory
 * (splice(2): image file -> pipe -> socket; Linux 6.5 and later move
 * the page references into a unix socket without copying).  The client
 * copies the bytes once, where it reads them; with pread() and send()
 * there were three copies.  proto.md is unchanged: the client sees an
 * ordinary NBD_REPLY_TYPE_OFFSET_DATA chunk.
 *
 * Reads of 64 KiB or more qualify (smaller ones cost less to copy than
 * a pipe and two splices), and of those only bytes stored as they are:
 * extents that lib/fmt reports with FMT_ST_OFFSET in a layer we know
 * keeps them so (raw, or qcow2 without encryption or an external data
 * file), opened again here by the name lib/fmt opened them with, right
 * after it, from the same directory.  Not with --cache=none/directsync (the page cache is not
 * where those images are read from), and not when VM_NBD_SPLICE=0.
 * Anything else, or a short splice, is read the ordinary way.
 *
 * The thread that runs the read (the connection's reader, or a pool
 * worker) splices the data into the request's own pipe while it holds
 * the export's lock, so the mapping cannot change under it; whoever
 * sends the reply moves the pipe to the socket in order with the
 * headers (conn.c).  A pipe emptied that way stays with the connection
 * for its next spliced read: making one (pipe2, F_SETPIPE_SZ, two
 * closes) cost four system calls per read.
 * The pipe holds references to page cache pages, not copies: a write
 * to the same host bytes before the client read them is seen by the
 * client.  Writes to an extent only race with reads of the same guest
 * bytes (undefined in NBD, as on a disk), except a cluster that a
 * concurrent discard frees and another write reuses at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "vm-nbd.h"

#define SPLICE_PIPE (4 << 20)      /* largest pipe capacity asked for */
#define SPLICE_PIPE_USER (1 << 20) /* fs.pipe-max-size's default */
#define QCOW2_CRYPT_OFF 32
#define QCOW2_INCOMPAT_OFF 72
#define QCOW2_DATA_FILE (1ull << 2)

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

/* A qcow2 layer whose data clusters hold the guest's bytes as they are. */
static bool qcow2_plain(int fd)
{
	uint8_t h[80];

	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || be32(h) != 0x514649fbu)
		return false;
	if (be32(h + QCOW2_CRYPT_OFF))
		return false;
	if (be32(h + 4) >= 3 &&
	    (((uint64_t)be32(h + QCOW2_INCOMPAT_OFF) << 32 | be32(h + QCOW2_INCOMPAT_OFF + 4)) &
	     QCOW2_DATA_FILE))
		return false;
	return true;
}

static void add_layer(struct export *e, const struct fmt_image *img)
{
	const char *fmt = fmt_format(img), *name = fmt_filename(img);
	struct stat st;
	int fd;

	if (!name || (strcmp(fmt, "raw") && strcmp(fmt, "qcow2")))
		return;
	fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) ||
	    (!strcmp(fmt, "qcow2") && !qcow2_plain(fd))) {
		close(fd);
		return;
	}
	e->splice_files = xrealloc(e->splice_files, sizeof(*e->splice_files) * (e->nsplice + 1));
	e->splice_files[e->nsplice++] = (struct splice_file){ name, fd };
}

void splice_setup(struct export *e, const struct nbd_config *cfg)
{
	const char *env = getenv("VM_NBD_SPLICE");
	const char *cache = cfg->cache ? cfg->cache : "writeback";

	int layers = 0;

	if ((env && !strcmp(env, "0")) || !strcmp(cache, "none") || !strcmp(cache, "off") ||
	    !strcmp(cache, "directsync")) {
		LOG(LOG_NBD, "splice: off (%s)", env && !strcmp(env, "0") ? "VM_NBD_SPLICE=0" : "cache");
		return;
	}
	for (const struct fmt_image *img = e->img; img; img = fmt_backing(img), layers++)
		add_layer(e, img);
	LOG(LOG_NBD, "splice: %d of the image's %d layers can be sent without copying",
	    e->nsplice, layers);
}

void splice_close(struct export *e)
{
	for (int i = 0; i < e->nsplice; i++)
		close(e->splice_files[i].fd);
	free(e->splice_files);
	e->splice_files = NULL;
	e->nsplice = 0;
}

static int layer_fd(const struct export *e, const char *file)
{
	for (int i = 0; i < e->nsplice; i++)
		if (file == e->splice_files[i].name || (file && !strcmp(file, e->splice_files[i].name)))
			return e->splice_files[i].fd;
	return -1;
}

/* Move host bytes [hoff, hoff+len) of fd into the pipe; bytes moved. */
static size_t move_in(int fd, uint64_t hoff, size_t len, int pipe_wr)
{
	size_t done = 0;

	while (done < len) {
		loff_t o = (loff_t)(hoff + done);
		ssize_t k = splice(fd, &o, pipe_wr, NULL, len - done, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		done += (size_t)k;
	}
	return done;
}

ssize_t export_splice(struct export *e, uint64_t off, size_t len, int pipe_wr)
{
	size_t done = 0;

	if (!e->nsplice)
		return 0;
	pthread_rwlock_rdlock(&e->lock);
	while (done < len) {
		struct fmt_extent x;
		size_t n, k;
		int fd;

		if (fmt_block_status(e->img, e->offset + off + done, len - done, true, &x) < 0) {
			err_clear();
			break;
		}
		fd = layer_fd(e, x.file);
		/* a zero cluster may keep stale bytes at its host offset */
		if (!(x.status & FMT_ST_OFFSET) || !(x.status & FMT_ST_DATA) ||
		    (x.status & FMT_ST_ZERO) || fd < 0)
			break;
		n = (size_t)MIN(x.length, (uint64_t)(len - done));
		k = move_in(fd, x.host_offset, n, pipe_wr);
		done += k;
		if (k < n)
			break;
	}
	pthread_rwlock_unlock(&e->lock);
	return (ssize_t)done;
}

/* A pipe for `want` bytes of one reply's data, and its capacity: as
 * large as asked if we may (root), else up to the usual limit. */
int splice_pipe(int p[2], size_t want, size_t *cap)
{
	int sz = 16 << 12, r;

	while ((size_t)sz < want && sz < SPLICE_PIPE)
		sz *= 2;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	r = fcntl(p[1], F_SETPIPE_SZ, sz);
	if (r < 0 && sz > SPLICE_PIPE_USER)
		r = fcntl(p[1], F_SETPIPE_SZ, SPLICE_PIPE_USER);
	if (r < 0)
		r = fcntl(p[1], F_GETPIPE_SZ);
	*cap = r > 0 ? (size_t)r : 0;
	LOG(LOG_NBD, "splice: a new pipe of %zu bytes", *cap);
	return 0;
}

int splice_pipe_get(struct conn *c, int p[2], size_t want, size_t need, size_t *cap)
{
	pthread_mutex_lock(&c->lock);
	for (int i = c->nspare - 1; i >= 0; i--)
		if (c->spare[i].cap >= need) {
			p[0] = c->spare[i].fd[0];
			p[1] = c->spare[i].fd[1];
			*cap = c->spare[i].cap;
			c->spare[i] = c->spare[--c->nspare];
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
	pthread_mutex_unlock(&c->lock);
	return splice_pipe(p, want, cap);
}

void splice_pipe_put_locked(struct conn *c, int p[2], size_t cap)
{
	if (c->nspare == SPARE_PIPES)
		return;
	c->spare[c->nspare].fd[0] = p[0];
	c->spare[c->nspare].fd[1] = p[1];
	c->spare[c->nspare++].cap = cap;
	p[0] = p[1] = -1;
}

void splice_pipe_close(struct conn *c)
{
	while (c->nspare) {
		c->nspare--;
		close(c->spare[c->nspare].fd[0]);
		close(c->spare[c->nspare].fd[1]);
	}
}

/* Send n bytes from the pipe to the socket (blocking); 0 or -EIO. */
int splice_send(int pipe_rd, int sock, size_t n, bool more)
{
	while (n) {
		ssize_t k = splice(pipe_rd, NULL, sock, NULL, n, SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		n -= (size_t)k;
	}
	return 0;
}
