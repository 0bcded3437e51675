/*
 * vm-nbd's control channel (--control-fd N): what vm-run asks of the
 * image it cannot do over NBD.  vm-run keeps image-format code out of the
 * guest's process, so internal snapshots with their VM state (QEMU's
 * savevm/loadvm/delvm, the qcow2 "vmstate area") and block_resize are
 * carried out here, on the open image.
 *
 * The protocol, on an inherited stream socket: every message is one
 * frame, a 4-byte big-endian length then that many bytes.  A request
 * frame is a command line ending in '\n', optionally followed by binary
 * payload; a reply frame is "OK\n" plus payload, or "ERROR message\n".
 * One request at a time, answered in order.
 *
 *   query                       -> "format=F writable=0|1 snapshots=0|1 size=N"
 *   resize BYTES                -> the image grows or shrinks to BYTES
 *   vmstate-write OFFSET + data -> data into the VM-state area
 *   vmstate-read OFFSET LEN     -> LEN bytes of the VM-state area
 *   snapshot-save NAME VMSTATE_SIZE DATE_SEC DATE_NSEC VM_CLOCK_NSEC
 *                               -> a snapshot NAME (replacing one so named)
 *                                  holding VMSTATE_SIZE bytes of VM state
 *   snapshot-load NAME          -> the image reverted; reply "VMSTATE_SIZE"
 *   snapshot-vmstate-read NAME OFFSET LEN
 *                               -> LEN bytes of snapshot NAME's VM state,
 *                                  the image unchanged (so loadvm can check
 *                                  the state before it reverts anything)
 *   snapshot-delete NAME
 *   snapshot-list               -> one line per snapshot:
 *                                  "ID NAME VMSIZE DATE_SEC DATE_NSEC VM_CLOCK_NSEC"
 *
 * Snapshot names travel percent-encoded where they hold spaces, '%' or
 * control characters.  The caller pauses the guest and drains its I/O
 * first; the export's lock is taken exclusively anyway, so NBD requests
 * that still arrive wait.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "vm-nbd.h"

#define CONTROL_MAX_FRAME (64u << 20)

struct control {
	struct export *e;
	const struct nbd_config *cfg;
	int fd;
	pthread_t thread;
};

static int send_frame(int fd, const char *head, const void *data, size_t len)
{
	size_t hl = strlen(head);
	uint8_t b[4];
	uint32_t n = (uint32_t)(hl + len);

	b[0] = n >> 24, b[1] = n >> 16, b[2] = n >> 8, b[3] = n;
	if (write_full(fd, b, 4) < 0 || write_full(fd, head, hl) < 0 ||
	    (len && write_full(fd, data, len) < 0))
		return -EIO;
	return 0;
}

static int recv_frame(int fd, uint8_t **out, size_t *len)
{
	uint8_t b[4];
	uint32_t n;
	int r = read_full(fd, b, 4);

	if (r < 0)
		return r;
	n = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	if (n > CONTROL_MAX_FRAME + 4096)
		return -EPROTO;
	*out = xmalloc(n + 1);
	if ((r = read_full(fd, *out, n)) < 0) {
		free(*out);
		return r;
	}
	(*out)[n] = 0;
	*len = n;
	return 0;
}


static bool can_snapshot(struct export *e)
{
	return e->writable && !strcmp(fmt_format(e->img), "qcow2");
}

/* Has savevm ever left VM state in the image (so in its current VM-state
 * area too)? */
static bool has_vmstate(struct export *e)
{
	struct fmt_snapshot *l;
	size_t n;
	bool any = false;

	if (!can_snapshot(e) || fmt_snapshot_list(e->img, &l, &n) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		any |= l[i].vm_state_size > 0;
	fmt_snapshots_free(l, n);
	return any;
}

static int do_query(struct export *e, char **reply)
{
	*reply = xasprintf("format=%s writable=%d snapshots=%d size=%" PRIu64,
			   fmt_format(e->img), e->writable, can_snapshot(e), e->size);
	return 0;
}

static int do_resize(struct export *e, const char *arg)
{
	uint64_t size;
	int r;

	if (parse_u64(arg, 0, INT64_MAX, &size) < 0)
		return err_set(-EINVAL, "bad size '%s'", arg);
	if (!e->writable)
		return err_set(-EACCES, "the image is read-only");
	if (e->offset || e->size != e->image_size)
		return err_set(-ENOTSUP, "cannot resize a part of an image (-o, -P)");
	uint64_t old = fmt_size(e->img);
	bool stale = has_vmstate(e);

	if ((r = fmt_truncate(e->img, size, FMT_PREALLOC_OFF, true)) < 0)
		return r;
	e->image_size = e->size = fmt_size(e->img);
	/* The VM-state area savevm wrote lies past the old end: growing over
	 * it must not show that data to the guest. */
	if (stale && size > old)
		r = fmt_write_zeroes(e->img, old, size - old, FMT_W_MAY_UNMAP);
	return r;
}

static int do_vmstate_write(struct export *e, const char *arg, const uint8_t *data,
			    size_t len)
{
	uint64_t off;

	if (!can_snapshot(e))
		return err_set(-ENOTSUP, "the image cannot hold VM state");
	if (parse_u64(arg, 0, INT64_MAX, &off) < 0)
		return err_set(-EINVAL, "bad offset '%s'", arg);
	return fmt_vmstate_write(e->img, data, off, len);
}

static int do_vmstate_read(struct export *e, const char *arg, uint8_t **data, size_t *len)
{
	uint64_t off, n;
	int r;

	if (sscanf(arg, "%" SCNu64 " %" SCNu64, &off, &n) != 2 || n > CONTROL_MAX_FRAME)
		return err_set(-EINVAL, "bad vmstate-read arguments");
	if (!can_snapshot(e))
		return err_set(-ENOTSUP, "the image cannot hold VM state");
	*data = xmalloc(n ? n : 1);
	if ((r = fmt_vmstate_read(e->img, *data, off, n)) < 0)
		return r;
	*len = n;
	return 0;
}

/* The VM state of a snapshot without applying it: the image opened a
 * second time on that snapshot (read-only, no locks), as vm-nbd -l does.
 * Not for -s overlays (their file is gone) or --image-opts. */
static int do_snap_vmstate_read(struct export *e, const struct nbd_config *cfg, char *arg,
				uint8_t **data, size_t *len)
{
	char name[1024];
	uint64_t off, n;
	struct fmt_image *img;
	int r;

	if (sscanf(arg, "%1023s %" SCNu64 " %" SCNu64, name, &off, &n) != 3 ||
	    n > CONTROL_MAX_FRAME)
		return err_set(-EINVAL, "bad snapshot-vmstate-read arguments");
	if (!can_snapshot(e) || cfg->snapshot || cfg->image_opts)
		return err_set(-ENOTSUP, "cannot read a snapshot's VM state here");
	if (pct_decode(name) < 0)
		return err_set(-EINVAL, "bad escape in a snapshot name");
	struct fmt_open_opts o = { .format = fmt_format(e->img), .flags = FMT_O_SHARE,
				   .snapshot = name, .secrets = cfg->secrets };
	if ((r = fmt_open(cfg->filename, &o, &img)) < 0)
		return r;
	*data = xmalloc(n ? n : 1);
	r = fmt_vmstate_read(img, *data, off, n);
	fmt_close(img);
	if (r < 0)
		return r;
	*len = n;
	return 0;
}

/* The IDs of the snapshots called name (a NULL-terminated list). */
static char **ids_named(struct export *e, const char *name)
{
	struct fmt_snapshot *l;
	size_t n, k = 0;
	char **ids;

	if (fmt_snapshot_list(e->img, &l, &n) < 0)
		return xzalloc(sizeof(*ids));
	ids = xzalloc(sizeof(*ids) * (n + 1));
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, name))
			ids[k++] = xstrdup(l[i].id);
	fmt_snapshots_free(l, n);
	return ids;
}

static int do_save(struct export *e, char *arg)
{
	struct fmt_snapshot sn = { .icount = UINT64_MAX };
	char name[1024], **old;
	int r;

	if (sscanf(arg, "%1023s %" SCNu64 " %" SCNu32 " %" SCNu32 " %" SCNu64, name,
		   &sn.vm_state_size, &sn.date_sec, &sn.date_nsec, &sn.vm_clock_nsec) != 5)
		return err_set(-EINVAL, "bad snapshot-save arguments");
	if (!can_snapshot(e))
		return err_set(-ENOTSUP, "the image does not support snapshots");
	if (pct_decode(name) < 0)
		return err_set(-EINVAL, "bad escape in a snapshot name");
	sn.name = name;
	/* As QEMU's savevm: an older snapshot of the same name is replaced,
	 * once the new one exists (a failure keeps the old one). */
	old = ids_named(e, name);
	r = fmt_snapshot_create(e->img, &sn);
	for (char **id = old; *id; id++) {
		if (r == 0)
			r = fmt_snapshot_delete(e->img, *id);
		free(*id);
	}
	free(old);
	return r < 0 ? r : fmt_flush(e->img);
}

static int do_load(struct export *e, char *arg, char **reply)
{
	struct fmt_snapshot *l;
	size_t n;
	uint64_t vmsize = 0;
	bool found = false;
	int r;

	if (pct_decode(arg) < 0)
		return err_set(-EINVAL, "bad escape in a snapshot name");
	if (!can_snapshot(e))
		return err_set(-ENOTSUP, "the image does not support snapshots");
	if ((r = fmt_snapshot_list(e->img, &l, &n)) < 0)
		return r;
	for (size_t i = 0; i < n && !found; i++)
		if (!strcmp(l[i].name, arg) || !strcmp(l[i].id, arg))
			found = true, vmsize = l[i].vm_state_size;
	fmt_snapshots_free(l, n);
	if (!found)
		return err_set(-ENOENT, "Snapshot '%s' does not exist", arg);
	if ((r = fmt_snapshot_apply(e->img, arg)) < 0)
		return r;
	e->image_size = fmt_size(e->img);
	if (!e->offset)
		e->size = e->image_size;
	*reply = xasprintf("%" PRIu64, vmsize);
	return fmt_flush(e->img);
}

static int do_list(struct export *e, char **reply)
{
	struct fmt_snapshot *l;
	size_t n, used = 0;
	char *out = xstrdup("");
	int r;

	if ((r = fmt_snapshot_list(e->img, &l, &n)) < 0) {
		free(out);
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		char *id = pct_encode(l[i].id), *nm = pct_encode(l[i].name);
		char *line = xasprintf("%s %s %" PRIu64 " %" PRIu32 " %" PRIu32 " %" PRIu64 "\n",
				       id, nm, l[i].vm_state_size, l[i].date_sec,
				       l[i].date_nsec, l[i].vm_clock_nsec);
		out = xrealloc(out, used + strlen(line) + 1);
		strcpy(out + used, line);
		used += strlen(line);
		free(line), free(id), free(nm);
	}
	fmt_snapshots_free(l, n);
	*reply = out;
	return 0;
}

/* One request: its verb, the rest of its line, and its payload. */
static int dispatch(struct control *c, char *line, const uint8_t *data, size_t dlen,
		    char **reply, uint8_t **rdata, size_t *rlen)
{
	struct export *e = c->e;
	char *arg = strchr(line, ' ');

	if (arg)
		*arg++ = 0;
	else
		arg = line + strlen(line);
	if (!strcmp(line, "query"))
		return do_query(e, reply);
	if (!strcmp(line, "resize"))
		return do_resize(e, arg);
	if (!strcmp(line, "vmstate-write"))
		return do_vmstate_write(e, arg, data, dlen);
	if (!strcmp(line, "vmstate-read"))
		return do_vmstate_read(e, arg, rdata, rlen);
	if (!strcmp(line, "snapshot-save"))
		return do_save(e, arg);
	if (!strcmp(line, "snapshot-load"))
		return do_load(e, arg, reply);
	if (!strcmp(line, "snapshot-delete")) {
		if (pct_decode(arg) < 0)
			return err_set(-EINVAL, "bad escape in a snapshot name");
		return fmt_snapshot_delete(e->img, arg);
	}
	if (!strcmp(line, "snapshot-vmstate-read"))
		return do_snap_vmstate_read(e, c->cfg, arg, rdata, rlen);
	if (!strcmp(line, "snapshot-list"))
		return do_list(e, reply);
	return err_set(-EINVAL, "unknown control command '%s'", line);
}

static int serve_one(struct control *c)
{
	uint8_t *req, *rdata = NULL, *nl;
	size_t len, rlen = 0;
	char *reply = NULL, *head;
	int r = recv_frame(c->fd, &req, &len);

	if (r < 0)
		return r;
	nl = memchr(req, '\n', len);
	if (!nl) {
		r = err_set(-EINVAL, "control request without a command line");
	} else {
		*nl = 0;
		LOG(LOG_NBD, "control: %s", (char *)req);
		pthread_rwlock_wrlock(&c->e->lock);
		r = dispatch(c, (char *)req, nl + 1, len - (size_t)(nl + 1 - req), &reply,
			     &rdata, &rlen);
		pthread_rwlock_unlock(&c->e->lock);
	}
	if (r < 0) {
		head = xasprintf("ERROR %s\n", err_msg());
		rlen = 0;
	} else {
		head = xasprintf("OK\n%s", reply ? reply : "");
	}
	r = send_frame(c->fd, head, rdata, rlen);
	free(head), free(reply), free(rdata), free(req);
	return r;
}

static void *control_thread(void *arg)
{
	struct control *c = arg;

	while (serve_one(c) == 0)
		;
	/* end of stream or a broken frame: hang up, so the peer knows */
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

struct control *control_start(struct export *e, const struct nbd_config *cfg, int fd)
{
	struct control *c = xzalloc(sizeof(*c));
	int r;

	c->e = e;
	c->cfg = cfg;
	c->fd = fd;
	set_cloexec(fd, true);
	r = pthread_create(&c->thread, NULL, control_thread, c);
	if (r) {
		log_warn("control thread: %s", strerror(r));
		free(c);
		return NULL;
	}
	return c;
}

void control_stop(struct control *c)
{
	if (!c)
		return;
	shutdown(c->fd, SHUT_RDWR);
	pthread_join(c->thread, NULL);
	close(c->fd);
	free(c);
}
