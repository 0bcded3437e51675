/*
 * vm-run's monitor, private to its files: monitor.c (the core: the
 * servers, the loop thread, run-state commands), mon-block.c (drives:
 * query-block, query-blockstats, eject, blockdev-change-medium,
 * block_resize, BLOCK_IO_ERROR) and mon-info.c (queries and the human
 * layer: query-pci, query-chardev, send-key, memsave, info registers,
 * x/xp/p, hostfwd, set_link).
 */
#ifndef VM_RUN_MON_INTERNAL_H
#define VM_RUN_MON_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/common.h"
#include "vm-run.h"

/* What the monitor knows of drive i beyond the command line: the medium
 * now in it (change/eject) and its I/O status. */
struct mon_drive {
	char *file, *format;	/* NULL file: no medium */
	bool tray_open;		/* atomic: the guest moves it too */
	const char *io_status;	/* "ok", "failed", "nospace" */
};

struct vmrun_mon {
	struct vmrun *o;
	struct loop *loop;
	struct qmp_server *qmp;
	struct hmp_server *hmp;
	pthread_t thread;
	atomic_bool done;
	struct machine *m;	/* set and cleared on the loop thread */
	bool launched;		/* ever running (else "prelaunch") */
	atomic_bool io_error;	/* stopped by a drive's error policy */
	const char *quit_reason;	/* a SHUTDOWN reason set by a command */
	atomic_bool host_reset;	/* system_reset in progress: not the guest's */
	pthread_mutex_t drive_lock;	/* drives[]: the loop and device threads */
	struct mon_drive drives[HW_MAX_DISKS];
	/* Ctrl-a c: console lines go through a pipe to a human client */
	int con_pipe[2], ctl_pipe[2];
	bool con_added, thread_started;
	char line[512];
	size_t llen;
};

#define MACHINE(mon)                                                     \
	do {                                                             \
		if (!(mon)->m)                                           \
			return err_set(-EAGAIN, "the machine is not running"); \
	} while (0)

/* mon-block.c */
void mon_block_init(struct vmrun_mon *mon);
void mon_block_free(struct vmrun_mon *mon);
/* cont: drives back to io-status "ok" (QEMU resets it on cont). */
void mon_block_reset_status(struct vmrun_mon *mon);
qmp_cmd_fn mon_query_block, mon_query_blockstats, mon_eject, mon_change_medium,
	mon_block_resize;
/* lib/hw's on_block_error hook: BLOCK_IO_ERROR (and STOP for "stop"). */
void mon_block_error(void *opaque, int disk, bool write, int err, enum hw_blk_error_action action);
/* lib/hw's on_tray_moved hook: the guest moved a tray (DEVICE_TRAY_MOVED). */
void mon_tray_moved(void *opaque, int disk, bool open);

/* mon-info.c */
qmp_cmd_fn mon_query_chardev, mon_query_pci, mon_send_key, mon_memsave, mon_pmemsave,
	mon_set_link;
extern const struct hmp_machine_ops mon_mach;
int mon_hmp_info_registers(void *opaque, const struct hmp_args *a, struct hmp_out *o);
int mon_hmp_info_mtree(void *opaque, const struct hmp_args *a, struct hmp_out *o);
int mon_hmp_info_jit(void *opaque, const struct hmp_args *a, struct hmp_out *o);
int mon_hmp_info_network(void *opaque, const struct hmp_args *a, struct hmp_out *o);
int mon_hmp_hostfwd(void *opaque, const struct hmp_args *a, struct hmp_out *o);

/* mon-snapshot.c: QMP's snapshot jobs, query-jobs, job-dismiss */
qmp_cmd_fn mon_snapshot_save, mon_snapshot_load, mon_snapshot_delete, mon_query_jobs,
	mon_job_dismiss;
/* STOP/RESUME around savevm and loadvm (savevm_set_run_events). */
void mon_snapshot_event(void *opaque, const char *name);

#endif
