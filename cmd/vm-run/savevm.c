/*
 * VM snapshots in the drives' images, as QEMU's savevm, loadvm, delvm,
 * info snapshots and -loadvm (QEMU user manual, "VM snapshots"; the
 * qcow2 specification's snapshot table and VM-state area).
 *
 * A VM snapshot is an internal snapshot of the same name in every
 * writable drive, all with the same date and VM clock; the first such
 * drive also stores the machine state (lib/hw's machine_save_state
 * stream) in its VM-state area, and its snapshot records the size.  The
 * images are opened by the drives' vm-nbd children, so every step on
 * the image side is a request on the control channel (nbdctl.c).  The
 * guest is paused around each operation (its disk requests drained by
 * machine_save_state) and resumed if it was running.  loadvm
 * reads the snapshot's VM state and checks it before the disks are
 * reverted, so a corrupt state changes nothing; one that fails later
 * (or where vm-nbd cannot read the state early: -snapshot overlays)
 * leaves the guest stopped, as QEMU does.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "vm-run.h"

/* The VM clock: guest time since start, carried over by loadvm. */
static int64_t clock_base;

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void savevm_clock_start(void)
{
	clock_base = mono_ns();
}

static uint64_t vm_clock_ns(void)
{
	return (uint64_t)(mono_ns() - clock_base);
}

/* STOP and RESUME events around the work, as QEMU's savevm and loadvm. */
static void (*run_event)(void *opaque, const char *name);
static void *run_event_opaque;

void savevm_set_run_events(void (*fn)(void *opaque, const char *name), void *opaque)
{
	run_event = fn;
	run_event_opaque = opaque;
}

/* Pause the guest; true if it was paused already. */
static bool vm_stop(struct machine *m)
{
	bool was = machine_paused(m);

	machine_pause(m, true);
	if (!was && run_event)
		run_event(run_event_opaque, "STOP");
	return was;
}

static void vm_resume(struct machine *m)
{
	if (run_event)
		run_event(run_event_opaque, "RESUME");
	machine_pause(m, false);
}

bool savevm_drive_can(int i)
{
	uint8_t *q = NULL;
	bool ok = nbdctl_call(i, "query", NULL, 0, &q, NULL) == 0 &&
		  strstr((char *)q, "snapshots=1");

	free(q);
	return ok;
}

/* The drives that take part: every writable one, which (when strict,
 * for savevm and loadvm) must be able to hold snapshots, else is left
 * out.  Fills idx[], returns the count (strict: at least one) or -errno. */
static int snapshot_drives(const struct vmrun *o, int *idx, bool strict)
{
	int n = 0;

	for (int i = 0; i < o->ndrives; i++) {
		const struct vmrun_drive *d = &o->drives[i];
		if (d->readonly || d->cdrom)
			continue;
		bool can = savevm_drive_can(i);
		if (!can && !strict)
			continue;
		if (!can) {
			char *name = disk_drive_name(o, i);
			int r = err_set(-ENOTSUP, "Device '%s' is writable but does not support "
					"snapshots", name);
			free(name);
			return r;
		}
		idx[n++] = i;
	}
	if (!n && strict)
		return err_set(-ENOTSUP, "no block device can store vmstate for snapshot");
	return n;
}

/* Snapshots of drive i, parsed from snapshot-list. */
static int list_snaps(int i, struct fmt_snapshot **out, size_t *n)
{
	uint8_t *t = NULL;
	size_t cap = 0;
	char *line, *save = NULL;
	int r = nbdctl_call(i, "snapshot-list", NULL, 0, &t, NULL);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	for (line = strtok_r((char *)t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char id[256], name[1024];
		struct fmt_snapshot sn = { .icount = UINT64_MAX };
		if (sscanf(line, "%255s %1023s %" SCNu64 " %" SCNu32 " %" SCNu32 " %" SCNu64, id,
			   name, &sn.vm_state_size, &sn.date_sec, &sn.date_nsec,
			   &sn.vm_clock_nsec) != 6)
			continue;
		if (pct_decode(id) < 0 || pct_decode(name) < 0)
			continue;
		sn.id = xstrdup(id);
		sn.name = xstrdup(name);
		if (*n == cap)
			*out = xrealloc(*out, sizeof(**out) * (cap = cap * 2 + 4));
		(*out)[(*n)++] = sn;
	}
	free(t);
	return 0;
}

static const struct fmt_snapshot *find_snap(const struct fmt_snapshot *l, size_t n,
					    const char *tag)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].name, tag))
			return &l[i];
	for (size_t i = 0; i < n; i++)
		if (!strcmp(l[i].id, tag))
			return &l[i];
	return NULL;
}

static bool drive_has(int i, const char *tag, uint64_t *vmsize, uint64_t *clock)
{
	struct fmt_snapshot *l;
	size_t n;
	const struct fmt_snapshot *s;
	bool found;

	if (list_snaps(i, &l, &n) < 0)
		return false;
	s = find_snap(l, n, tag);
	found = s != NULL;
	if (s && vmsize)
		*vmsize = s->vm_state_size;
	if (s && clock)
		*clock = s->vm_clock_nsec;
	fmt_snapshots_free(l, n);
	return found;
}

static int save_to(const int *idx, int nd, int vm, const char *tag, const uint8_t *st,
		   size_t len)
{
	struct timespec now;
	char *enc = pct_encode(tag), line[1300];
	int r = nbdctl_vmstate_write(vm, st, len);

	clock_gettime(CLOCK_REALTIME, &now);
	for (int k = 0; k < nd && r == 0; k++) {
		snprintf(line, sizeof(line), "snapshot-save %s %zu %lld %ld %" PRIu64, enc,
			 idx[k] != vm ? (size_t)0 : len, (long long)now.tv_sec, now.tv_nsec,
			 vm_clock_ns());
		r = nbdctl_call(idx[k], line, NULL, 0, NULL, NULL);
	}
	free(enc);
	return r;
}

int savevm_save(const struct vmrun *o, struct machine *m, const char *tag)
{
	int idx[HW_MAX_DISKS], nd = snapshot_drives(o, idx, true);

	return nd < 0 ? nd : savevm_save_on(m, tag, idx, nd, idx[0]);
}

int savevm_save_on(struct machine *m, const char *tag, const int *idx, int nd, int vm)
{
	bool was_paused;
	char dflt[32];
	uint8_t *st = NULL;
	size_t len = 0;
	int r;

	if (!tag || !*tag) {
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(dflt, sizeof(dflt), "vm-%Y%m%d%H%M%S", &tm);
		tag = dflt;
	}
	was_paused = vm_stop(m);
	r = machine_save_state(m, &st, &len);
	if (r == 0)
		r = save_to(idx, nd, vm, tag, st, len);
	if (r < 0) {
		char *why = xstrdup(err_msg());
		r = err_set(r, "Error while creating snapshot on '%s': %s", tag, why);
		free(why);
	}
	free(st);
	if (!was_paused)
		vm_resume(m);
	return r;
}

/* Revert the drives and read the VM state; the machine is paused. */
/* Revert the drives and load the VM state; the machine is paused.  The
 * state is read and checked before anything changes where the drive's
 * vm-nbd can read a snapshot's state in place; *changed tells whether
 * the drives or the machine were touched. */
static int load_paused(struct machine *m, const int *idx, int nd, int vm, const char *tag,
		       uint64_t vmsize, uint64_t clock, bool *changed)
{
	char *enc = pct_encode(tag), *line = xasprintf("snapshot-load %s", enc);
	uint8_t *st = xmalloc(vmsize);
	bool early = nbdctl_snapshot_vmstate_read(vm, enc, st, vmsize) == 0;
	int r = early ? machine_check_state(m, st, vmsize) : 0;

	free(enc);
	*changed = r < 0 ? false : true;
	for (int k = 0; k < nd && r == 0; k++)
		r = nbdctl_call(idx[k], line, NULL, 0, NULL, NULL);
	free(line);
	if (r == 0 && !early)
		r = nbdctl_vmstate_read(vm, st, vmsize);
	if (r == 0)
		r = machine_load_state(m, st, vmsize);
	free(st);
	if (r == 0)
		clock_base = mono_ns() - (int64_t)clock;
	return r;
}

int savevm_load(const struct vmrun *o, struct machine *m, const char *tag)
{
	int idx[HW_MAX_DISKS], nd = snapshot_drives(o, idx, true);

	return nd < 0 ? nd : savevm_load_on(m, tag, idx, nd, idx[0]);
}

int savevm_load_on(struct machine *m, const char *tag, const int *idx, int nd, int vm)
{
	uint64_t vmsize = 0, clock = 0;
	bool was_paused, changed;
	int r;

	if (!drive_has(vm, tag, &vmsize, &clock))
		return err_set(-EINVAL, "Snapshot '%s' does not exist in one or more devices", tag);
	for (int k = 0; k < nd; k++)
		if (!drive_has(idx[k], tag, NULL, NULL))
			return err_set(-EINVAL, "Snapshot '%s' does not exist in one or more devices",
				       tag);
	if (!vmsize)
		return err_set(-EINVAL, "This is a disk-only snapshot. Revert to it offline "
			       "using qemu-img");
	if (vmsize > SIZE_MAX / 2)
		return err_set(-EINVAL, "Snapshot '%s': VM state too large", tag);
	was_paused = vm_stop(m);
	r = load_paused(m, idx, nd, vm, tag, vmsize, clock, &changed);
	if (r < 0) {
		char *why = xstrdup(err_msg());
		r = err_set(r, "Error while loading VM state of '%s'%s: %s", tag,
			    changed ? " (the VM is stopped)" : "", why);
		free(why);
		if (!changed && !was_paused)
			vm_resume(m);
		return r;
	}
	if (!was_paused)
		vm_resume(m);
	return 0;
}

int savevm_delete(const struct vmrun *o, const char *tag)
{
	int idx[HW_MAX_DISKS], nd = snapshot_drives(o, idx, false);

	return nd < 0 ? nd : savevm_delete_on(o, tag, idx, nd);
}

int savevm_delete_on(const struct vmrun *o, const char *tag, const int *idx, int nd)
{
	char *enc, *line;
	int r = 0;

	enc = pct_encode(tag);
	line = xasprintf("snapshot-delete %s", enc);
	/* As QEMU: drives without the snapshot are skipped. */
	for (int k = 0; k < nd && r == 0; k++)
		if (drive_has(idx[k], tag, NULL, NULL))
			r = nbdctl_call(idx[k], line, NULL, 0, NULL, NULL);
	if (r < 0) {
		char *why = xstrdup(err_msg()), *name = disk_drive_name(o, idx[0]);
		r = err_set(r, "Error while deleting snapshot on device '%s': %s", name, why);
		free(why);
		free(name);
	}
	free(line);
	free(enc);
	return r;
}

static void print_rows(struct hmp_out *out, const struct fmt_snapshot *l, size_t n,
		       const bool *all, bool want, bool anon)
{
	for (size_t i = 0; i < n; i++) {
		if (all[i] != want)
			continue;
		struct fmt_snapshot row = l[i];
		if (anon)
			row.id = (char *)"--";
		char *s = fmt_snapshot_row(&row);
		hmp_printf(out, "%s\n", s);
		free(s);
	}
}

/* info snapshots: QEMU's tables, the snapshots present on every drive
 * (loadable) and then the first drive's others. */
int savevm_info(const struct vmrun *o, struct hmp_out *out)
{
	int idx[HW_MAX_DISKS], nd = snapshot_drives(o, idx, false), nall = 0;
	struct fmt_snapshot *l;
	size_t n;
	bool *all;

	if (nd <= 0) {
		hmp_printf(out, "No block device can store vmstate for snapshot\n");
		return nd < 0 ? nd : 0;
	}
	if (list_snaps(idx[0], &l, &n) < 0)
		return -EIO;
	if (!n) {
		hmp_printf(out, "There is no snapshot available.\n");
		free(l);
		return 0;
	}
	all = xzalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		all[i] = true;
		for (int k = 1; k < nd && all[i]; k++)
			all[i] = drive_has(idx[k], l[i].name, NULL, NULL);
		nall += all[i];
	}
	hmp_printf(out, "List of snapshots present on all disks:\n");
	if (nall) {
		hmp_printf(out, "%s\n", fmt_snapshot_heading());
		print_rows(out, l, n, all, true, true);
	} else {
		hmp_printf(out, "None\n");
	}
	if ((size_t)nall < n) {
		char *name = disk_drive_name(o, idx[0]);
		hmp_printf(out, "\nList of partial (non-loadable) snapshots on '%s':\n%s\n", name,
			   fmt_snapshot_heading());
		print_rows(out, l, n, all, false, false);
		free(name);
	}
	free(all);
	fmt_snapshots_free(l, n);
	return 0;
}
