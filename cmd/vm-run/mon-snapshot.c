/*
 * QMP's snapshot jobs (QEMU's QMP reference: snapshot-save, snapshot-load,
 * snapshot-delete, and the job commands query-jobs and job-dismiss): the
 * same work as savevm/loadvm/delvm (savevm.c) on the drives the client
 * names, run as a job.  The command returns at once; the job runs on the
 * monitor's loop right after the reply has gone out, and reports its
 * progress as JOB_STATUS_CHANGE events (created, running, waiting,
 * pending, concluded; aborting before concluded when it failed).  A
 * concluded job stays listed by query-jobs, with its error if any, until
 * job-dismiss.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mon-internal.h"

#define MAX_JOBS 16

enum job_kind { JOB_SAVE, JOB_LOAD, JOB_DELETE };

static const char *const kind_names[] = { "snapshot-save", "snapshot-load", "snapshot-delete" };

struct snap_job {
	bool used;
	enum job_kind kind;
	char *id, *tag, *error;
	const char *status;
	int idx[HW_MAX_DISKS], n, vm;
	struct vmrun_mon *mon;
	struct loop_timer *timer;
};

/* The monitor runs one loop thread: jobs live and change only there. */
static struct snap_job jobs[MAX_JOBS];

static struct snap_job *job_find(const char *id)
{
	for (int i = 0; i < MAX_JOBS; i++)
		if (jobs[i].used && !strcmp(jobs[i].id, id))
			return &jobs[i];
	return NULL;
}

static void job_status(struct snap_job *j, const char *status)
{
	j->status = status;
	qmp_server_event(j->mon->qmp, "JOB_STATUS_CHANGE",
			 json_pack("{s:s, s:s}", "status", status, "id", j->id));
}

static void job_run(void *opaque)
{
	struct snap_job *j = opaque;
	struct vmrun_mon *mon = j->mon;
	int r;

	job_status(j, "running");
	if (j->kind != JOB_DELETE && !mon->m)
		r = err_set(-EAGAIN, "the machine is not running");
	else if (j->kind == JOB_SAVE)
		r = savevm_save_on(mon->m, j->tag, j->idx, j->n, j->vm);
	else if (j->kind == JOB_LOAD)
		r = savevm_load_on(mon->m, j->tag, j->idx, j->n, j->vm);
	else
		r = savevm_delete_on(mon->o, j->tag, j->idx, j->n);
	if (r < 0) {
		j->error = xstrdup(err_msg());
		job_status(j, "aborting");
	} else {
		job_status(j, "waiting");
		job_status(j, "pending");
	}
	job_status(j, "concluded");
}

/* Drive names to indices; each must be able to hold snapshots. */
static int job_drives(struct vmrun_mon *mon, json_t *devices, struct snap_job *j)
{
	size_t k;
	json_t *v;

	json_array_foreach(devices, k, v) {
		const char *name = json_string_value(v);
		int found = -1;
		for (int i = 0; i < mon->o->ndrives && found < 0 && name; i++) {
			char *n = disk_drive_name(mon->o, i);
			if (!strcmp(n, name))
				found = i;
			free(n);
		}
		if (found < 0)
			return err_set(-ENODEV, "Cannot find device='' nor node-name='%s'",
				       name ? name : "");
		if (!savevm_drive_can(found))
			return err_set(-ENOTSUP, "Device '%s' is writable but does not support "
				       "snapshots", name);
		if (j->n >= HW_MAX_DISKS)
			return err_set(-EINVAL, "too many devices");
		j->idx[j->n++] = found;
	}
	return 0;
}

void mon_snapshot_event(void *opaque, const char *name)
{
	struct vmrun_mon *mon = opaque;

	qmp_server_event(mon->qmp, name, NULL);
}

static int job_start(struct vmrun_mon *mon, json_t *args, enum job_kind kind)
{
	const char *id = json_string_value(json_object_get(args, "job-id"));
	const char *tag = json_string_value(json_object_get(args, "tag"));
	const char *vm = json_string_value(json_object_get(args, "vmstate"));
	struct snap_job *j = NULL, tmp = { .kind = kind, .vm = -1 };
	int r;

	if (job_find(id))
		return err_set(-EEXIST, "Job ID '%s' already in use", id);
	if ((r = job_drives(mon, json_object_get(args, "devices"), &tmp)) < 0)
		return r;
	for (int k = 0; k < tmp.n && vm; k++) {
		char *n = disk_drive_name(mon->o, tmp.idx[k]);
		if (!strcmp(n, vm))
			tmp.vm = tmp.idx[k];
		free(n);
	}
	if (kind != JOB_DELETE && tmp.vm < 0)
		return err_set(-EINVAL, "vmstate block device '%s' does not exist in the "
			       "devices list", vm ? vm : "");
	for (int i = 0; i < MAX_JOBS && !j; i++)
		if (!jobs[i].used)
			j = &jobs[i];
	if (!j)
		return err_set(-EBUSY, "too many jobs: dismiss some with job-dismiss");
	*j = tmp;
	j->used = true;
	j->id = xstrdup(id);
	j->tag = xstrdup(tag);
	j->mon = mon;
	j->timer = loop_timer_new(mon->loop, job_run, j);
	savevm_set_run_events(mon_snapshot_event, mon);
	job_status(j, "created");
	loop_timer_mod(j->timer, loop_now_ms());
	return 0;
}

int mon_snapshot_save(void *opaque, json_t *args, json_t **ret)
{
	int r = job_start(opaque, args, JOB_SAVE);

	*ret = r < 0 ? NULL : json_object();
	return r;
}

int mon_snapshot_load(void *opaque, json_t *args, json_t **ret)
{
	int r = job_start(opaque, args, JOB_LOAD);

	*ret = r < 0 ? NULL : json_object();
	return r;
}

int mon_snapshot_delete(void *opaque, json_t *args, json_t **ret)
{
	int r = job_start(opaque, args, JOB_DELETE);

	*ret = r < 0 ? NULL : json_object();
	return r;
}

int mon_query_jobs(void *opaque, json_t *args, json_t **ret)
{
	json_t *a = json_array();

	for (int i = 0; i < MAX_JOBS; i++) {
		struct snap_job *j = &jobs[i];
		if (!j->used)
			continue;
		bool done = !strcmp(j->status, "concluded");
		json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i}", "id", j->id, "type",
				      kind_names[j->kind], "status", j->status,
				      "current-progress", done, "total-progress", 1);
		if (j->error)
			json_object_set_new(o, "error", json_string(j->error));
		json_array_append_new(a, o);
	}
	*ret = a;
	return 0;
}

int mon_job_dismiss(void *opaque, json_t *args, json_t **ret)
{
	const char *id = json_string_value(json_object_get(args, "id"));
	struct snap_job *j = job_find(id);

	if (!j)
		return err_set(-ENOENT, "Job not found");
	if (strcmp(j->status, "concluded"))
		return err_set(-EBUSY, "Job '%s' in state '%s' cannot accept command verb "
			       "'dismiss'", id, j->status);
	job_status(j, "null");
	loop_timer_free(j->timer);
	free(j->id);
	free(j->tag);
	free(j->error);
	memset(j, 0, sizeof(*j));
	*ret = json_object();
	return 0;
}
