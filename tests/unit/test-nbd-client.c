/*
 * The NBD client of lib/fmt (nbd-client*.c) against real servers: vm-nbd
 * from this build ($VM_BUILD/bin/vm-nbd) and QEMU's qemu-nbd, on unix
 * sockets and on an inherited socketpair (vm-nbd --fd); and against a
 * scripted fake server on a socketpair for replies out of order and
 * replies the protocol forbids.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "unit.h"

#define SIZE (16u << 20)

extern char **environ;
static char dir[] = "/tmp/test-nbd-client.XXXXXX";

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 / 4096 + 1);
}

/* A raw image: data in the first 4 MiB and at 8 MiB, holes elsewhere. */
static char *make_image(const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint8_t *buf = xmalloc(1 << 20);

	if (ftruncate(fd, SIZE) < 0)
		abort();
	for (uint64_t off = 0; off < SIZE; off += 1 << 20) {
		if (off >= (4u << 20) && off != (8u << 20))
			continue;
		for (size_t i = 0; i < (1 << 20); i++)
			buf[i] = pattern(off + i);
		if (pwrite(fd, buf, 1 << 20, off) != 1 << 20)
			abort();
	}
	free(buf);
	close(fd);
	return path;
}

static pid_t spawn(char *const argv[])
{
	pid_t pid;

	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ))
		return -1;
	return pid;
}

static bool wait_socket(const char *path)
{
	struct stat st;

	for (int i = 0; i < 200; i++) {
		if (stat(path, &st) == 0)
			return true;
		usleep(20000);
	}
	return false;
}

static void stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

/* ---- many threads reading at once ---- */

struct reader_arg {
	struct nbd_client *c;
	unsigned seed;
	int bad;
};

static void *reader(void *opaque)
{
	struct reader_arg *a = opaque;
	uint8_t buf[4096];

	for (int i = 0; i < 300; i++) {
		uint64_t off = (uint64_t)(rand_r(&a->seed) % (4u << 20)) & ~4095ull;

		if (nbd_client_read(a->c, buf, off, sizeof(buf)) < 0) {
			a->bad++;
			continue;
		}
		for (size_t k = 0; k < sizeof(buf); k++)
			if (buf[k] != pattern(off + k)) {
				a->bad++;
				break;
			}
	}
	return NULL;
}

static void check_parallel(struct nbd_client *c, const char *who)
{
	struct reader_arg a[8];
	pthread_t t[8];
	int bad = 0;

	for (int i = 0; i < 8; i++) {
		a[i] = (struct reader_arg){ c, (unsigned)i * 77 + 1, 0 };
		pthread_create(&t[i], NULL, reader, &a[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		bad += a[i].bad;
	}
	CHECK(bad == 0, "%s: 2400 reads from 8 threads at once are right (%d bad)", who, bad);
}

/* ---- scatter/gather ---- */

/* readv into 3 odd-sized iovecs across the data/hole boundary at 4 MiB,
 * writev from 3 others, each checked byte for byte against plain I/O. */
static void check_vec(struct nbd_client *c, const char *who)
{
	static const size_t len[3] = { 1237, 70001, 4099 };
	uint8_t *part[3], *flat = xmalloc(1 << 20);
	struct iovec v[3];
	uint64_t off = (4u << 20) - 70000;
	size_t pos = 0;
	int ok = 1;

	for (int i = 0; i < 3; i++) {
		part[i] = xmalloc(len[i] + 2);
		memset(part[i], 0xee, len[i] + 2);
		v[i] = (struct iovec){ part[i] + 1, len[i] };
	}
	CHECK(nbd_client_readv(c, v, 3, off) == 0, "%s: readv into 3 odd-sized iovecs", who);
	for (int i = 0; i < 3; i++) {
		for (size_t k = 0; k < len[i] && ok; k++, pos++)
			ok = part[i][1 + k] == (off + pos < (4u << 20) ? pattern(off + pos) : 0);
		ok = ok && part[i][0] == 0xee && part[i][len[i] + 1] == 0xee;
	}
	CHECK(ok, "%s: readv data and hole land in the right iovec bytes, none beside", who);
	for (int i = 0; i < 3; i++)
		for (size_t k = 0; k < len[i]; k++)
			part[i][1 + k] = (uint8_t)(i * 50 + k * 13);
	off = (13u << 20) + 333;
	CHECK(nbd_client_writev(c, v, 3, off, 0) == 0, "%s: writev from 3 odd-sized iovecs", who);
	CHECK(nbd_client_read(c, flat, off, pos) == 0, "%s: read the writev back", who);
	pos = 0;
	for (int i = 0; i < 3; i++)
		for (size_t k = 0; k < len[i] && ok; k++, pos++)
			ok = flat[pos] == (uint8_t)(i * 50 + k * 13);
	CHECK(ok, "%s: writev data read back in order", who);
	v[2].iov_len = (16u << 20);
	CHECK(nbd_client_readv(c, v, 3, 0) == -EINVAL, "%s: readv past the end refused", who);
	for (int i = 0; i < 3; i++)
		free(part[i]);
	free(flat);
}

/* nbd_client_submit: 16 reads of 64 KiB in flight at once, each into
 * two iovecs, completed by callbacks from the reader thread. */
struct async_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int left, failed;
};

static void async_done(void *arg, int err)
{
	struct async_wait *w = arg;

	pthread_mutex_lock(&w->lock);
	w->failed += err < 0;
	if (--w->left == 0)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int async_wait_all(struct async_wait *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->left)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return w->failed;
}

static void check_submit(struct nbd_client *c, const char *who)
{
	struct async_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 16, 0 };
	uint8_t *buf = xmalloc(16 * 65536);
	int started = 0, ok = 1;

	for (int i = 0; i < 16; i++) {
		struct iovec v[2] = { { buf + i * 65536 + 40000, 25536 }, { buf + i * 65536, 40000 } };

		started += nbd_client_submit(c, false, v, 2, (uint64_t)i * 65536 * 3, async_done, &w) == 0;
	}
	CHECK(started == 16, "%s: 16 asynchronous reads start", who);
	w.left -= 16 - started;
	CHECK(async_wait_all(&w) == 0, "%s: and all complete through their callbacks", who);
	for (int i = 0; i < 16 && ok; i++)
		for (size_t k = 0; k < 65536 && ok; k++) {
			size_t at = k < 25536 ? 40000 + k : k - 25536;
			ok = buf[i * 65536 + at] == pattern((uint64_t)i * 65536 * 3 + k);
		}
	CHECK(ok, "%s: each in its two iovecs, in order", who);
	{
		struct iovec v = { buf, SIZE };

		CHECK(nbd_client_submit(c, false, &v, 1, 4096, async_done, &w) == -EINVAL,
		      "%s: a submit past the end is refused at once", who);
	}
	free(buf);
}

/* ---- one export, every operation ---- */

static void check_io(struct nbd_client *c, const char *who, bool depth)
{
	uint8_t *buf = xmalloc(8u << 20);
	struct nbd_extent ext[16];
	int n, ok = 1;

	CHECK(nbd_client_size(c) == SIZE, "%s: size", who);
	CHECK(nbd_client_read(c, buf, 0, 5u << 20) == 0, "%s: read 5 MiB (split to the payload maximum)", who);
	for (size_t i = 0; i < (5u << 20); i++)
		if (buf[i] != (i < (4u << 20) ? pattern(i) : 0)) {
			ok = 0;
			break;
		}
	CHECK(ok, "%s: data and hole read back right", who);
	CHECK(nbd_client_has_block_status(c), "%s: base:allocation negotiated", who);
	CHECK(!depth || nbd_client_has_depth(c), "%s: qemu:allocation-depth negotiated", who);
	n = nbd_client_block_status(c, 0, SIZE, ext, 16);
	CHECK(n >= 3 && ext[0].offset == 0 && ext[0].length == (4u << 20) &&
	      !(ext[0].flags & NBD_STATE_HOLE) && (ext[1].flags & NBD_STATE_ZERO) &&
	      ext[1].offset == (4u << 20) && ext[1].length == (4u << 20),
	      "%s: block status: data, hole, data (%d extents)", who, n);
	memset(buf, 0xab, 65536);
	CHECK(nbd_client_write(c, buf, 12u << 20, 65536, NBD_CMD_FLAG_FUA) == 0, "%s: FUA write", who);
	memset(buf, 0, 65536);
	CHECK(nbd_client_read(c, buf, 12u << 20, 65536) == 0 && buf[0] == 0xab && buf[65535] == 0xab,
	      "%s: the write reads back", who);
	CHECK(nbd_client_write_zeroes(c, 12u << 20, 4096, 0) == 0, "%s: write zeroes", who);
	CHECK(nbd_client_read(c, buf, 12u << 20, 8192) == 0 && buf[0] == 0 && buf[4095] == 0 &&
	      buf[4096] == 0xab, "%s: zeroes read back", who);
	CHECK(nbd_client_trim(c, 13u << 20, 65536, 0) == 0, "%s: trim", who);
	CHECK(nbd_client_cache(c, 0, 1u << 20) == 0, "%s: cache", who);
	CHECK(nbd_client_flush(c) == 0, "%s: flush", who);
	CHECK(nbd_client_read(c, buf, SIZE - 512, 1024) == -EINVAL, "%s: read past the end refused", who);
	check_vec(c, who);
	check_submit(c, who);
	check_parallel(c, who);
	free(buf);
}

static void test_vm_nbd(const char *bin)
{
	char *img = make_image("a.raw"), *sock = xasprintf("%s/vm.sock", dir);
	char *uri = xasprintf("nbd+unix:///?socket=%s", sock);
	char *argv[] = { (char *)bin, "-k", sock, "-t", "-e", "0", "-f", "raw", img, NULL };
	struct nbd_client_opts o = { .want_depth = true };
	struct nbd_client *c = NULL;
	pid_t pid = spawn(argv);

	CHECK(pid > 0 && wait_socket(sock), "vm-nbd starts");
	CHECK(nbd_client_open_uri(uri, &o, &c) == 0, "open %s", uri);
	if (c) {
		check_io(c, "vm-nbd", true);
		nbd_client_close(c);
	}
	{
		char *other = xasprintf("nbd+unix:///other?socket=%s", sock);

		CHECK(nbd_client_open_uri(other, NULL, &c) == -ENOENT,
		      "an unknown export name fails: %s", err_msg());
		free(other);
	}
	stop(pid);
	free(img);
	free(sock);
	free(uri);
}

static void test_vm_nbd_fd(const char *bin)
{
	char *img = make_image("b.raw");
	int sv[2];
	char fdarg[16];
	struct nbd_client *c = NULL;
	pid_t pid;

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
	{
		char *argv[] = { (char *)bin, "--fd", fdarg, "-f", "raw", img, NULL };

		pid = spawn(argv);
	}
	close(sv[1]);
	CHECK(nbd_client_open_fd(sv[0], NULL, &c) == 0, "open on a socketpair with vm-nbd --fd");
	if (c) {
		uint8_t b[512];

		CHECK(nbd_client_read(c, b, 4096, 512) == 0 && b[0] == pattern(4096), "read over the socketpair");
		nbd_client_close(c);
	}
	{
		int st = -1;

		waitpid(pid, &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vm-nbd --fd exits 0 when the client leaves");
	}
	free(img);
}

static void test_qemu_nbd(void)
{
	char *img = make_image("q.raw"), *sock = xasprintf("%s/q.sock", dir);
	char *uri = xasprintf("nbd+unix:///?socket=%s", sock);
	char *argv[] = { "qemu-nbd", "-k", sock, "-t", "-e", "0", "-A", "-f", "raw", img, NULL };
	struct nbd_client_opts o = { .want_depth = true };
	struct nbd_client *c = NULL;
	pid_t pid = spawn(argv);

	if (pid < 0 || !wait_socket(sock)) {
		CHECK(1, "qemu-nbd not available: skipped");
		stop(pid);
		return;
	}
	CHECK(nbd_client_open_uri(uri, &o, &c) == 0, "open a qemu-nbd export");
	if (c) {
		check_io(c, "qemu-nbd", true);
		nbd_client_close(c);
	}
	stop(pid);
	free(img);
	free(sock);
	free(uri);
}

/* ---- a scripted fake server ---- */

static void fake_rep(int fd, uint32_t opt, uint32_t type, const void *d, uint32_t len)
{
	uint8_t h[20];

	nbd_put64(h, NBD_REP_MAGIC);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, type);
	nbd_put32(h + 16, len);
	write_full(fd, h, 20);
	write_full(fd, d, len);
}

static void fake_chunk(int fd, uint16_t flags, uint16_t type, uint64_t cookie,
		       const void *d, uint32_t len)
{
	uint8_t h[20];

	nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
	nbd_put16(h + 4, flags);
	nbd_put16(h + 6, type);
	nbd_put64(h + 8, cookie);
	nbd_put32(h + 16, len);
	write_full(fd, h, 20);
	write_full(fd, d, len);
}

/* The fake server's handshake: structured replies, base:allocation as
 * context 5, a 1 MiB export; false when the client went away. */
static bool fake_handshake(int fd)
{
	uint8_t b[256], info[12], ctx[4 + 15];

	nbd_put64(b, NBD_MAGIC);
	nbd_put64(b + 8, NBD_IHAVEOPT);
	nbd_put16(b + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	write_full(fd, b, 18);
	read_full(fd, b, 4);
	for (;;) {
		uint32_t opt, len;

		if (read_full(fd, b, 16) < 0)
			return false;
		opt = nbd_get32(b + 8);
		len = nbd_get32(b + 12);
		if (len > sizeof(b) || read_full(fd, b, len) < 0)
			return false;
		if (opt == NBD_OPT_SET_META_CONTEXT) {
			nbd_put32(ctx, 5);
			memcpy(ctx + 4, "base:allocation", 15);
			fake_rep(fd, opt, NBD_REP_META_CONTEXT, ctx, sizeof(ctx));
		}
		if (opt == NBD_OPT_GO) {
			nbd_put16(info, NBD_INFO_EXPORT);
			nbd_put64(info + 2, 1 << 20);
			nbd_put16(info + 10, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);
			fake_rep(fd, opt, NBD_REP_INFO, info, 12);
		}
		fake_rep(fd, opt, NBD_REP_ACK, NULL, 0);
		if (opt == NBD_OPT_GO)
			return true;
	}
}

/* Handshake, then: two reads answered in reverse order (hole + data
 * chunks), then a reply with a cookie nobody asked for. */
static void *fake_server(void *opaque)
{
	int fd = *(int *)opaque;
	uint8_t b[256];
	uint64_t cookie[2], off[2];

	if (!fake_handshake(fd))
		return NULL;
	for (int i = 0; i < 2; i++) {
		if (read_full(fd, b, 28) < 0)
			return NULL;
		cookie[i] = nbd_get64(b + 8);
		off[i] = nbd_get64(b + 16);
	}
	for (int i = 1; i >= 0; i--) {
		uint8_t d[8 + 2048];

		nbd_put64(d, off[i]);
		nbd_put32(d + 8, 2048);
		fake_chunk(fd, 0, NBD_REPLY_TYPE_OFFSET_HOLE, cookie[i], d, 12);
		nbd_put64(d, off[i] + 2048);
		memset(d + 8, 0x40 + i, 2048);
		fake_chunk(fd, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie[i], d, 8 + 2048);
	}
	if (read_full(fd, b, 28) == 0)
		fake_chunk(fd, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 0xdeadbeef, NULL, 0);
	read_full(fd, b, sizeof(b));
	close(fd);
	return NULL;
}

struct one_read { struct nbd_client *c; uint64_t off; uint8_t buf[4096]; int r; };

static void *one_reader(void *opaque)
{
	struct one_read *a = opaque;

	a->r = nbd_client_read(a->c, a->buf, a->off, sizeof(a->buf));
	return NULL;
}

static void test_fake(void)
{
	int sv[2];
	pthread_t srv, t[2];
	struct nbd_client *c = NULL;
	struct one_read a[2];
	uint8_t b[512];

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pthread_create(&srv, NULL, fake_server, &sv[1]);
	CHECK(nbd_client_open_fd(sv[0], NULL, &c) == 0, "fake server: handshake");
	if (!c)
		return;
	CHECK(nbd_client_size(c) == (1u << 20) && nbd_client_has_block_status(c),
	      "fake server: size and base:allocation context id 5");
	for (int i = 0; i < 2; i++) {
		a[i] = (struct one_read){ .c = c, .off = 8192u * (i + 1) };
		memset(a[i].buf, 0xff, sizeof(a[i].buf));
		pthread_create(&t[i], NULL, one_reader, &a[i]);
		usleep(50000);   /* keep the order of the two requests */
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		CHECK(a[i].r == 0 && a[i].buf[0] == 0 && a[i].buf[2047] == 0 &&
		      a[i].buf[2048] == 0x40 + i && a[i].buf[4095] == 0x40 + i,
		      "fake server: read %d answered out of order, hole and data chunks", i);
	CHECK(nbd_client_read(c, b, 0, 512) == -EIO, "a reply with an unknown cookie breaks the connection: %s", err_msg());
	CHECK(nbd_client_read(c, b, 0, 512) == -EIO, "later requests fail at once");
	nbd_client_close(c);
	pthread_join(srv, NULL);
}

/* Append a chunk to a buffer (the packed server sends many at once). */
static size_t put_chunk(uint8_t *p, uint16_t flags, uint16_t type, uint64_t cookie,
			const void *d, uint32_t len)
{
	nbd_put32(p, NBD_STRUCTURED_REPLY_MAGIC);
	nbd_put16(p + 4, flags);
	nbd_put16(p + 6, type);
	nbd_put64(p + 8, cookie);
	nbd_put32(p + 16, len);
	if (len)
		memcpy(p + 20, d, len);
	return 20 + len;
}

/* Handshake, then three reads (16, 8 and 3 bytes at 0, 64 and 128)
 * answered by one write that packs all their chunks, so that the
 * client's look-ahead ends inside headers and inside data: 16 bytes of
 * data; a 4-byte hole and 4 bytes of data; 3 bytes of data after an
 * empty NONE chunk. */
static void *fake_packed_server(void *opaque)
{
	int fd = *(int *)opaque;
	uint8_t b[28], out[512], d[8 + 16];
	uint64_t cookie[3];
	size_t n = 0;

	if (!fake_handshake(fd))
		return NULL;
	for (int i = 0; i < 3; i++) {
		if (read_full(fd, b, 28) < 0)
			return NULL;
		cookie[nbd_get64(b + 16) / 64] = nbd_get64(b + 8);
	}
	nbd_put64(d, 0);
	for (int i = 0; i < 16; i++)
		d[8 + i] = 0x10 + i;
	n += put_chunk(out + n, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie[0], d, 24);
	nbd_put64(d, 64);
	nbd_put32(d + 8, 4);
	n += put_chunk(out + n, 0, NBD_REPLY_TYPE_OFFSET_HOLE, cookie[1], d, 12);
	nbd_put64(d, 68);
	memset(d + 8, 0x44, 4);
	n += put_chunk(out + n, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie[1], d, 12);
	n += put_chunk(out + n, 0, NBD_REPLY_TYPE_NONE, cookie[2], NULL, 0);
	nbd_put64(d, 128);
	memset(d + 8, 0x33, 3);
	n += put_chunk(out + n, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie[2], d, 11);
	write_full(fd, out, n);
	read_full(fd, b, sizeof(b));	/* until the client hangs up */
	close(fd);
	return NULL;
}

static void test_fake_packed(void)
{
	struct async_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 3, 0 };
	uint8_t x[16], y[8], z[3];
	struct iovec v[4] = { { x, 16 }, { y, 5 }, { y + 5, 3 }, { z, 3 } };
	struct nbd_client *c = NULL;
	pthread_t srv;
	int sv[2];

	memset(x, 0xff, sizeof(x));
	memset(y, 0xff, sizeof(y));
	memset(z, 0xff, sizeof(z));
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pthread_create(&srv, NULL, fake_packed_server, &sv[1]);
	CHECK(nbd_client_open_fd(sv[0], NULL, &c) == 0, "packed replies: handshake");
	if (!c)
		return;
	CHECK(nbd_client_submit(c, false, v, 1, 0, async_done, &w) == 0 &&
	      nbd_client_submit(c, false, v + 1, 2, 64, async_done, &w) == 0 &&
	      nbd_client_submit(c, false, v + 3, 1, 128, async_done, &w) == 0 &&
	      async_wait_all(&w) == 0, "packed replies: three reads complete");
	CHECK(x[0] == 0x10 && x[15] == 0x1f && !y[0] && !y[3] && y[4] == 0x44 && y[7] == 0x44 &&
	      z[0] == 0x33 && z[2] == 0x33,
	      "packed replies: data, hole and data across iovecs, each byte where it belongs");
	nbd_client_close(c);
	pthread_join(srv, NULL);
}

/* Handshake, then a data chunk that promises 4096 bytes of a read and
 * hangs up after 1000 of them. */
static void *fake_short_server(void *opaque)
{
	int fd = *(int *)opaque;
	uint8_t b[28], d[8 + 1000];

	if (fake_handshake(fd) && read_full(fd, b, 28) == 0) {
		uint8_t h[20];

		nbd_put32(h, NBD_STRUCTURED_REPLY_MAGIC);
		nbd_put16(h + 4, NBD_REPLY_FLAG_DONE);
		nbd_put16(h + 6, NBD_REPLY_TYPE_OFFSET_DATA);
		nbd_put64(h + 8, nbd_get64(b + 8));
		nbd_put32(h + 16, 8 + 4096);
		write_full(fd, h, 20);
		nbd_put64(d, nbd_get64(b + 16));
		memset(d + 8, 0x5a, 1000);
		write_full(fd, d, sizeof(d));
	}
	close(fd);
	return NULL;
}

/* A reply cut short in the middle of a readv's data (asynchronous: of
 * a submitted read): an error, no hang. */
static void test_fake_short(bool async)
{
	const char *how = async ? "an asynchronous read" : "a readv";
	struct async_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 1, 0 };
	int sv[2];
	pthread_t srv;
	struct nbd_client *c = NULL;
	uint8_t x[1500], y[2596];
	struct iovec v[2] = { { x, sizeof(x) }, { y, sizeof(y) } };

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pthread_create(&srv, NULL, fake_short_server, &sv[1]);
	CHECK(nbd_client_open_fd(sv[0], NULL, &c) == 0, "short reply: handshake");
	if (c) {
		if (async)
			CHECK(nbd_client_submit(c, false, v, 2, 4096, async_done, &w) == 0 &&
			      async_wait_all(&w) == 1,
			      "%s whose reply ends after 1000 of 4096 bytes gets the error", how);
		else
			CHECK(nbd_client_readv(c, v, 2, 4096) == -EIO,
			      "%s whose reply ends after 1000 of 4096 bytes fails: %s", how, err_msg());
		CHECK(nbd_client_readv(c, v, 2, 4096) == -EIO, "after %s, later ones fail at once", how);
		w.left = 1;
		CHECK(nbd_client_submit(c, false, v, 2, 4096, async_done, &w) == -EIO,
		      "after %s, a submit is refused at once", how);
		nbd_client_close(c);
	}
	pthread_join(srv, NULL);
}

int main(void)
{
	const char *build = getenv("VM_BUILD");
	char *bin = xasprintf("%s/bin/vm-nbd", build ? build : "o/rel");

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir))
		return 1;
	if (access(bin, X_OK) == 0) {
		test_vm_nbd(bin);
		test_vm_nbd_fd(bin);
	} else {
		CHECK(1, "%s not built: skipped", bin);
	}
	test_qemu_nbd();
	test_fake();
	test_fake_packed();
	test_fake_short(false);
	test_fake_short(true);
	free(bin);
	{
		char *cmd = xasprintf("rm -rf %s", dir);

		if (system(cmd) != 0)
			CHECK(0, "clean up %s", dir);
		free(cmd);
	}
	return unit_done();
}
