/*
 * vm-run's side of the control channel to a drive's vm-nbd child
 * (vm-nbd --control-fd; the protocol is described in cmd/vm-nbd/control.c
 * and man/vm-nbd.1).  The image-format work behind savevm/loadvm/delvm
 * and block_resize happens in the child; here a request goes out as one
 * length-prefixed frame and its reply comes back as another.  Drives
 * given as NBD URIs have no channel.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "vm-run.h"

#define NBDCTL_CHUNK (32u << 20)	/* vmstate bytes per frame */

struct nbdctl {
	int fd;			/* -1: none */
	pthread_mutex_t lock;	/* one request at a time */
};

static struct nbdctl chans[HW_MAX_DISKS] = {
	[0 ... HW_MAX_DISKS - 1] = { -1, PTHREAD_MUTEX_INITIALIZER },
};

void nbdctl_register(int drive, int fd)
{
	if (drive >= 0 && drive < HW_MAX_DISKS)
		chans[drive].fd = fd;
	else
		close(fd);
}

bool nbdctl_has(int drive)
{
	return drive >= 0 && drive < HW_MAX_DISKS && chans[drive].fd >= 0;
}

void nbdctl_close_all(void)
{
	for (int i = 0; i < HW_MAX_DISKS; i++)
		if (chans[i].fd >= 0) {
			close(chans[i].fd);
			chans[i].fd = -1;
		}
}

static int frame_send(int fd, const char *line, const void *data, size_t len)
{
	size_t ll = strlen(line);
	uint32_t n = (uint32_t)(ll + 1 + len);
	uint8_t b[4] = { n >> 24, n >> 16, n >> 8, n };

	if (write_full(fd, b, 4) < 0 || write_full(fd, line, ll) < 0 ||
	    write_full(fd, "\n", 1) < 0 || (len && write_full(fd, data, len) < 0))
		return err_set_errno(errno ? errno : EIO, "vm-nbd control channel");
	return 0;
}

static int frame_recv(int fd, uint8_t **out, size_t *len)
{
	uint8_t b[4];
	uint32_t n;

	if (read_full(fd, b, 4) < 0)
		return err_set(-EIO, "vm-nbd control channel closed");
	n = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	if (n > NBDCTL_CHUNK + 65536)
		return err_set(-EPROTO, "vm-nbd control channel: oversized reply");
	*out = xmalloc(n + 1);
	if (read_full(fd, *out, n) < 0) {
		free(*out);
		return err_set(-EIO, "vm-nbd control channel closed");
	}
	(*out)[n] = 0;
	*len = n;
	return 0;
}

/* Split a reply frame: "OK\n" + payload, or "ERROR msg\n". */
static int reply_parse(uint8_t *f, size_t n, uint8_t **data, size_t *dlen)
{
	uint8_t *nl = memchr(f, '\n', n);

	if (!nl)
		return err_set(-EPROTO, "vm-nbd control channel: bad reply");
	*nl = 0;
	if (!strncmp((char *)f, "ERROR ", 6))
		return err_set(-EIO, "%s", (char *)f + 6);
	if (strcmp((char *)f, "OK"))
		return err_set(-EPROTO, "vm-nbd control channel: bad reply");
	*dlen = n - (size_t)(nl + 1 - f);
	*data = xmalloc(*dlen + 1);
	memcpy(*data, nl + 1, *dlen);
	(*data)[*dlen] = 0;
	return 0;
}

int nbdctl_call(int drive, const char *line, const void *data, size_t len,
		uint8_t **reply, size_t *rlen)
{
	struct nbdctl *c;
	uint8_t *f = NULL, *dummy = NULL;
	size_t n = 0, dl;
	int r;

	if (!nbdctl_has(drive))
		return err_set(-ENOTSUP, "the drive has no vm-nbd child");
	c = &chans[drive];
	pthread_mutex_lock(&c->lock);
	r = frame_send(c->fd, line, data, len);
	if (r == 0)
		r = frame_recv(c->fd, &f, &n);
	pthread_mutex_unlock(&c->lock);
	if (r == 0)
		r = reply_parse(f, n, reply ? reply : &dummy, rlen ? rlen : &dl);
	free(f);
	free(dummy);
	return r;
}

int nbdctl_resize(int drive, uint64_t size)
{
	char line[64];

	snprintf(line, sizeof(line), "resize %" PRIu64, size);
	return nbdctl_call(drive, line, NULL, 0, NULL, NULL);
}

int nbdctl_vmstate_write(int drive, const uint8_t *buf, size_t len)
{
	char line[64];
	int r = 0;

	for (size_t off = 0; off < len && r == 0; off += NBDCTL_CHUNK) {
		snprintf(line, sizeof(line), "vmstate-write %zu", off);
		r = nbdctl_call(drive, line, buf + off, MIN(len - off, NBDCTL_CHUNK), NULL, NULL);
	}
	return r;
}

/* Read len bytes in chunks with requests "PREFIX OFFSET LEN". */
static int read_chunks(int drive, const char *prefix, uint8_t *buf, size_t len)
{
	int r = 0;

	for (size_t off = 0; off < len && r == 0; off += NBDCTL_CHUNK) {
		size_t n = MIN(len - off, NBDCTL_CHUNK), got = 0;
		uint8_t *d = NULL;
		char *line = xasprintf("%s %zu %zu", prefix, off, n);

		r = nbdctl_call(drive, line, NULL, 0, &d, &got);
		free(line);
		if (r == 0 && got != n)
			r = err_set(-EPROTO, "vm-nbd control channel: short vmstate read");
		if (r == 0)
			memcpy(buf + off, d, n);
		free(d);
	}
	return r;
}

int nbdctl_vmstate_read(int drive, uint8_t *buf, size_t len)
{
	return read_chunks(drive, "vmstate-read", buf, len);
}

int nbdctl_snapshot_vmstate_read(int drive, const char *enc_name, uint8_t *buf, size_t len)
{
	char *prefix = xasprintf("snapshot-vmstate-read %s", enc_name);
	int r = read_chunks(drive, prefix, buf, len);

	free(prefix);
	return r;
}

