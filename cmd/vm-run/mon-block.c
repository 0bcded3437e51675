/*
 * vm-run's monitor: the drives.  QEMU's names for them (ide0-hd0,
 * ide1-cd0, virtio0, unless -drive id= named them), query-block,
 * query-blockstats (the counters the device models keep per guest
 * request), the removable medium of the IDE CD-ROM (eject and
 * blockdev-change-medium with DEVICE_TRAY_MOVED events; a new medium is
 * opened as -drive opens one, through disk.c), block_resize of virtio
 * disks (the back-end grows first, then the guest is told), and
 * BLOCK_IO_ERROR when a drive's back-end fails a request (QEMU's
 * rerror/werror actions; "stop" pauses with status io-error).
 * Follows the QMP reference of QEMU 7.2 for names, shapes and messages.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/hw.h"
#include "mon-internal.h"

static int drive_find(const struct vmrun *o, const char *name)
{
	for (int i = 0; i < o->ndrives; i++) {
		char *n = disk_drive_name(o, i);
		bool same = !strcmp(n, name);
		free(n);
		if (same)
			return i;
	}
	return err_set(-ENODEV, "Device '%s' not found", name);
}

void mon_block_init(struct vmrun_mon *mon)
{
	pthread_mutex_init(&mon->drive_lock, NULL);
	for (int i = 0; i < mon->o->ndrives; i++) {
		const struct vmrun_drive *d = &mon->o->drives[i];
		struct mon_drive *md = &mon->drives[i];

		md->file = d->file && *d->file ? xstrdup(d->file) : NULL;
		md->format = d->format ? xstrdup(d->format) : NULL;
		md->io_status = "ok";
	}
}

void mon_block_free(struct vmrun_mon *mon)
{
	for (int i = 0; i < HW_MAX_DISKS; i++) {
		free(mon->drives[i].file);
		free(mon->drives[i].format);
	}
	pthread_mutex_destroy(&mon->drive_lock);
}

/* io_status is set under the machine lock (mon_block_error), so it is
 * atomic rather than under drive_lock: the lock order is drive_lock,
 * then the machine's. */
void mon_block_reset_status(struct vmrun_mon *mon)
{
	for (int i = 0; i < mon->o->ndrives; i++)
		__atomic_store_n(&mon->drives[i].io_status, "ok", __ATOMIC_RELAXED);
}

static const char *device_arg(json_t *args)
{
	const char *dev = json_string_value(json_object_get(args, "device"));

	return dev ? dev : json_string_value(json_object_get(args, "id"));
}

/* The "inserted" member of query-block for drive i (drive_lock held). */
static json_t *inserted(struct vmrun_mon *mon, int i, const char *name)
{
	const struct vmrun_drive *d = &mon->o->drives[i];
	const struct mon_drive *md = &mon->drives[i];
	const struct hw_disk *hd = &mon->o->hw.disks[i];

	return json_pack("{s:s, s:s, s:b, s:s, s:i, s:b, s:I, s:s, s:{s:b, s:b, s:b}}",
		"file", md->file, "node-name", name, "ro", d->readonly || hd->readonly,
		"drv", md->format ? md->format : "raw", "backing_file_depth", 0,
		"encrypted", 0, "image-size", (json_int_t)hd->size, "detect_zeroes", "off",
		"cache", "writeback", 1, "direct", 0, "no-flush", 0);
}

int mon_query_block(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const struct vmrun *o = mon->o;
	json_t *a = json_array();

	pthread_mutex_lock(&mon->drive_lock);
	for (int i = 0; i < o->ndrives; i++) {
		const struct vmrun_drive *d = &o->drives[i];
		char *name = disk_drive_name(o, i);
		int locked = d->cdrom && mon->m ? machine_cdrom_locked(mon->m, i) : 0;
		json_t *dev = json_pack("{s:s, s:b, s:b, s:s, s:s}", "device", name,
			"locked", locked > 0, "removable", d->cdrom, "type", "unknown",
			"io-status", __atomic_load_n(&mon->drives[i].io_status, __ATOMIC_RELAXED));

		if (mon->drives[i].file)
			json_object_set_new(dev, "inserted", inserted(mon, i, name));
		if (d->cdrom)
			json_object_set_new(dev, "tray_open", json_boolean(
				__atomic_load_n(&mon->drives[i].tray_open, __ATOMIC_RELAXED)));
		json_array_append_new(a, dev);
		free(name);
	}
	pthread_mutex_unlock(&mon->drive_lock);
	*ret = a;
	return 0;
}

static json_t *stats_json(const struct hw_block_stats *s)
{
	struct hw_block_stats c = { 0 };
	json_t *j;

#define LOAD(f) c.f = s ? __atomic_load_n(&s->f, __ATOMIC_RELAXED) : 0
	LOAD(rd_bytes); LOAD(wr_bytes); LOAD(rd_ops); LOAD(wr_ops); LOAD(flush_ops);
	LOAD(rd_ns); LOAD(wr_ns); LOAD(flush_ns); LOAD(failed_rd); LOAD(failed_wr);
	LOAD(failed_flush); LOAD(last_ns);
#undef LOAD
	j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"rd_bytes", (json_int_t)c.rd_bytes, "wr_bytes", (json_int_t)c.wr_bytes,
		"rd_operations", (json_int_t)c.rd_ops, "wr_operations", (json_int_t)c.wr_ops,
		"flush_operations", (json_int_t)c.flush_ops,
		"rd_total_time_ns", (json_int_t)c.rd_ns, "wr_total_time_ns", (json_int_t)c.wr_ns,
		"flush_total_time_ns", (json_int_t)c.flush_ns);
	json_object_update_missing_new(j, json_pack("{s:I, s:I, s:I, s:i, s:i, s:i, s:i, s:i, "
		"s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:[]}",
		"failed_rd_operations", (json_int_t)c.failed_rd,
		"failed_wr_operations", (json_int_t)c.failed_wr,
		"failed_flush_operations", (json_int_t)c.failed_flush,
		"failed_unmap_operations", 0, "invalid_rd_operations", 0,
		"invalid_wr_operations", 0, "invalid_flush_operations", 0,
		"invalid_unmap_operations", 0, "rd_merged", 0, "wr_merged", 0, "unmap_merged", 0,
		"unmap_bytes", 0, "unmap_operations", 0, "unmap_total_time_ns", 0,
		"wr_highest_offset", 0, "account_invalid", 1, "account_failed", 1,
		"timed_stats"));
	if (c.last_ns)
		json_object_set_new(j, "idle_time_ns", json_integer(hw_clock_ns() - c.last_ns));
	return j;
}

int mon_query_blockstats(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const struct vmrun *o = mon->o;
	json_t *a = json_array();

	for (int i = 0; i < o->ndrives; i++) {
		char *name = disk_drive_name(o, i);
		json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "device", name,
			"node-name", name, "stats", stats_json(o->hw.disks[i].stats)));
		free(name);
	}
	*ret = a;
	return 0;
}

/* ---- removable media ---- */

static void tray_event(struct vmrun_mon *mon, int i, bool open)
{
	char *name = disk_drive_name(mon->o, i), id[48];

	snprintf(id, sizeof(id), "/machine/unattached/device[%d]", 20 + i);
	qmp_server_event(mon->qmp, "DEVICE_TRAY_MOVED",
			 json_pack("{s:s, s:s, s:b}", "device", name, "id", id, "tray-open", open));
	free(name);
}

/* Find a removable drive for eject/change: its index or -errno. */
static int removable(struct vmrun_mon *mon, const char *dev)
{
	int i;

	if (!dev)
		return err_set(-EINVAL, "Need exactly one of 'device' and 'id'");
	i = drive_find(mon->o, dev);
	if (i < 0)
		return i;
	if (!mon->o->drives[i].cdrom)
		return err_set(-EINVAL, "Device '%s' is not removable", dev);
	return i;
}

/* Open the tray and take the medium out (drive_lock held). */
static int remove_medium_locked(struct vmrun_mon *mon, int i, bool force, const char *dev)
{
	struct mon_drive *md = &mon->drives[i];
	struct hw_disk old = mon->o->hw.disks[i];
	int r;

	if (!force && mon->m && machine_cdrom_locked(mon->m, i) > 0) {
		machine_cdrom_eject_request(mon->m, i);		/* as QEMU: ask the guest */
		return err_set(-EBUSY, "Device '%s' is locked and force was not specified, "
			       "wait for tray to open and try again", dev);
	}
	if (mon->m && (r = machine_cdrom_change(mon->m, i, NULL)) < 0)
		return r;
	if (!__atomic_exchange_n(&md->tray_open, true, __ATOMIC_RELAXED))
		tray_event(mon, i, true);
	if (md->file && old.opaque)
		disk_close_medium(&old);
	mon->o->hw.disks[i].ops = NULL;
	mon->o->hw.disks[i].opaque = NULL;
	mon->o->hw.disks[i].size = 0;
	mon->o->hw.disks[i].empty = true;
	free(md->file);
	free(md->format);
	md->file = md->format = NULL;
	return 0;
}

int mon_eject(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const char *dev = device_arg(args);
	int i = removable(mon, dev), r;

	if (i < 0)
		return i;
	MACHINE(mon);
	pthread_mutex_lock(&mon->drive_lock);
	r = remove_medium_locked(mon, i, json_is_true(json_object_get(args, "force")), dev);
	pthread_mutex_unlock(&mon->drive_lock);
	return r;
}

int mon_change_medium(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const char *dev = device_arg(args);
	const char *file = json_string_value(json_object_get(args, "filename"));
	const char *fmt = json_string_value(json_object_get(args, "format"));
	struct hw_disk medium;
	int i = removable(mon, dev), r;

	if (i < 0)
		return i;
	MACHINE(mon);
	r = disk_open_medium(mon->o, file, fmt, &medium);
	if (r < 0)
		return r;
	pthread_mutex_lock(&mon->drive_lock);
	r = remove_medium_locked(mon, i, json_is_true(json_object_get(args, "force")), dev);
	if (r < 0) {
		pthread_mutex_unlock(&mon->drive_lock);
		disk_close_medium(&medium);
		return r;
	}
	medium.cdrom = true;
	medium.readonly = true;
	r = machine_cdrom_change(mon->m, i, &medium);
	if (r >= 0) {
		struct hw_disk *hd = &mon->o->hw.disks[i];
		hd->ops = medium.ops;
		hd->opaque = medium.opaque;
		hd->size = medium.size;
		hd->empty = false;
		mon->drives[i].file = xstrdup(file);
		mon->drives[i].format = fmt ? xstrdup(fmt) : NULL;
		__atomic_store_n(&mon->drives[i].tray_open, false, __ATOMIC_RELAXED);
		tray_event(mon, i, false);
	}
	pthread_mutex_unlock(&mon->drive_lock);
	if (r < 0)
		disk_close_medium(&medium);
	return r;
}

/* ---- block_resize ---- */

int mon_block_resize(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const char *dev = device_arg(args);
	int64_t size = json_integer_value(json_object_get(args, "size"));
	int i, r;

	if (!dev)
		return err_set(-EINVAL, "Either 'device' or 'node-name' must be set");
	if ((i = drive_find(mon->o, dev)) < 0)
		return i;
	MACHINE(mon);
	if (size < 0)
		return err_set(-EINVAL, "Parameter 'size' expects a >0 size");
	if (mon->o->drives[i].iface != HW_IF_VIRTIO || !mon->drives[i].file)
		return err_set(-ENOTSUP, "Device '%s' cannot be resized", dev);
	if (mon->o->drives[i].readonly || mon->o->hw.disks[i].readonly)
		return err_set(-EACCES, "Block node is read-only");
	if (size % 512)
		return err_set(-EINVAL, "The new size must be a multiple of 512");
	r = disk_resize(mon->o, i, (uint64_t)size);
	if (r < 0)
		return r;
	mon->o->hw.disks[i].size = (uint64_t)size;
	return machine_disk_resize(mon->m, i, (uint64_t)size);
}

/* ---- BLOCK_IO_ERROR: lib/hw's on_block_error (machine lock held) ---- */

void mon_block_error(void *opaque, int disk, bool write, int err, enum hw_blk_error_action action)
{
	static const char *const actions[] = {
		[HW_BLKERR_REPORT] = "report", [HW_BLKERR_IGNORE] = "ignore",
		[HW_BLKERR_STOP] = "stop", [HW_BLKERR_ENOSPC] = "report",
	};
	struct vmrun_mon *mon = opaque;
	char *name = disk_drive_name(mon->o, disk);

	qmp_server_event(mon->qmp, "BLOCK_IO_ERROR",
		json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "device", name, "node-name", name,
			  "operation", write ? "write" : "read", "action", actions[action],
			  "nospace", err == -ENOSPC, "reason", strerror(-err)));
	if (action == HW_BLKERR_STOP) {
		__atomic_store_n(&mon->drives[disk].io_status, err == -ENOSPC ? "nospace" : "failed",
				 __ATOMIC_RELAXED);
		if (!atomic_exchange(&mon->io_error, true))
			qmp_server_event(mon->qmp, "STOP", NULL);
	}
	free(name);
}

/* lib/hw's on_tray_moved (machine lock held): the guest's START STOP UNIT. */
void mon_tray_moved(void *opaque, int disk, bool open)
{
	struct vmrun_mon *mon = opaque;

	__atomic_store_n(&mon->drives[disk].tray_open, open, __ATOMIC_RELAXED);
	tray_event(mon, disk, open);
}
