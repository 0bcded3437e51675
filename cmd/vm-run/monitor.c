/*
 * vm-run's monitor: the QMP server (-qmp) and the human monitor
 * (-monitor, and Ctrl-a c on the stdio console) around the machine.
 *
 * Follows QEMU's QMP reference for the commands' names, arguments and
 * return shapes (query-status, stop, cont, system_reset, quit, memsave,
 * ...) and its events (STOP, RESUME, RESET, POWERDOWN, SHUTDOWN with a
 * reason).  The servers live on an event loop of their own thread so
 * that they answer while vCPUs run or the machine is paused.  The
 * machine comes and goes (mon_attach/mon_detach around each run); a
 * command arriving without one gets an error.
 *
 * This file is the core: the servers, the loop thread, the run-state
 * commands and the one table of QMP commands; mon-block.c has the
 * drives, mon-info.c the other queries and the human layer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mon-internal.h"

/* ---- commands ---- */

static int cmd_query_status(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	bool paused;

	MACHINE(mon);
	paused = machine_paused(mon->m);
	*ret = json_pack("{s:s, s:b, s:b}", "status",
			 !paused ? "running" : atomic_load(&mon->io_error) ? "io-error" :
			 mon->launched ? "paused" : "prelaunch",
			 "running", !paused, "singlestep", 0);
	return 0;
}

static int cmd_query_name(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;

	*ret = mon->o->name ? json_pack("{s:s}", "name", mon->o->name) : json_object();
	return 0;
}

static int cmd_query_kvm(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const struct hw_accel_ops *kvm = hw_accel_find("kvm");
	bool present = kvm && kvm->probe() >= 0;

	*ret = json_pack("{s:b, s:b}", "enabled", !strcmp(mon->o->hw.accel, "kvm"),
			 "present", present);
	return 0;
}

static int cmd_query_cpus_fast(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	json_t *a = json_array();

	MACHINE(mon);
	for (int i = 0; i < machine_cpu_count(mon->m); i++) {
		char path[48];
		snprintf(path, sizeof(path), "/machine/unattached/device[%d]", i);
		json_array_append_new(a, json_pack("{s:i, s:s, s:i, s:{s:i, s:i, s:i}, s:s}",
			"cpu-index", i, "qom-path", path, "thread-id", (int)getpid(),
			"props", "core-id", 0, "thread-id", 0, "socket-id", i, "target", "x86_64"));
	}
	*ret = a;
	return 0;
}

static int cmd_stop(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;

	MACHINE(mon);
	if (!machine_paused(mon->m)) {
		machine_pause(mon->m, true);
		/* As QEMU: the reply comes when the vCPUs are parked. */
		machine_get_cpu(mon->m, 0, NULL, NULL);
		qmp_server_event(mon->qmp, "STOP", NULL);
	}
	return 0;
}

static int cmd_cont(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;

	MACHINE(mon);
	mon->launched = true;
	atomic_store(&mon->io_error, false);
	mon_block_reset_status(mon);
	if (machine_paused(mon->m)) {
		qmp_server_event(mon->qmp, "RESUME", NULL);
		machine_pause(mon->m, false);
	}
	return 0;
}

static int cmd_system_reset(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;

	MACHINE(mon);
	qmp_server_event(mon->qmp, "RESET",
			 json_pack("{s:b, s:s}", "guest", 0, "reason", "host-qmp-system-reset"));
	atomic_store(&mon->host_reset, true);
	machine_reset(mon->m);
	atomic_store(&mon->host_reset, false);
	return 0;
}

static int cmd_system_powerdown(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;

	MACHINE(mon);
	qmp_server_event(mon->qmp, "POWERDOWN", NULL);
	machine_powerdown(mon->m);
	return 0;
}

static int cmd_quit(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;

	MACHINE(mon);
	mon->quit_reason = "host-qmp-quit";
	machine_quit(mon->m, 0);
	return 0;
}

static int cmd_inject_nmi(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;

	MACHINE(mon);
	machine_nmi(mon->m);
	return 0;
}

static const struct qmp_cmd mon_cmds[] = {
	{ "query-status", cmd_query_status, "" },
	{ "query-name", cmd_query_name, "" },
	{ "query-kvm", cmd_query_kvm, "" },
	{ "query-cpus-fast", cmd_query_cpus_fast, "" },
	{ "stop", cmd_stop, "" },
	{ "cont", cmd_cont, "" },
	{ "system_reset", cmd_system_reset, "" },
	{ "system_powerdown", cmd_system_powerdown, "" },
	{ "quit", cmd_quit, "" },
	{ "inject-nmi", cmd_inject_nmi, "" },
	{ "memsave", mon_memsave, "val:i,size:i,filename:s,*cpu-index:i" },
	{ "pmemsave", mon_pmemsave, "val:i,size:i,filename:s" },
	{ "query-block", mon_query_block, "" },
	{ "query-blockstats", mon_query_blockstats, "*query-nodes:b" },
	{ "query-chardev", mon_query_chardev, "" },
	{ "query-pci", mon_query_pci, "" },
	{ "set_link", mon_set_link, "name:s,up:b" },
	{ "send-key", mon_send_key, "keys:a,*hold-time:i" },
	{ "eject", mon_eject, "*device:s,*id:s,*force:b" },
	{ "blockdev-change-medium", mon_change_medium,
	  "*device:s,*id:s,filename:s,*format:s,*force:b,*read-only-mode:s" },
	{ "block_resize", mon_block_resize, "*device:s,*node-name:s,size:i" },
	{ "snapshot-save", mon_snapshot_save, "job-id:s,tag:s,vmstate:s,devices:a" },
	{ "snapshot-load", mon_snapshot_load, "job-id:s,tag:s,vmstate:s,devices:a" },
	{ "snapshot-delete", mon_snapshot_delete, "job-id:s,tag:s,devices:a" },
	{ "query-jobs", mon_query_jobs, "" },
	{ "job-dismiss", mon_job_dismiss, "id:s" },
};

/* savevm/loadvm/delvm and info snapshots: savevm.c. */
static int hmp_snapshot(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	struct vmrun_mon *mon = opaque;
	const char *tag = hmp_arg(a, "tag");

	savevm_set_run_events(mon_snapshot_event, mon);
	if (!strcmp(a->name, "info"))
		return savevm_info(mon->o, o);
	if (!strcmp(a->name, "delvm"))
		return savevm_delete(mon->o, tag);
	MACHINE(mon);
	if (!strcmp(a->name, "loadvm"))
		return savevm_load(mon->o, mon->m, tag);
	return savevm_save(mon->o, mon->m, tag);
}

static const struct hmp_native mon_native[] = {
	{ "hostfwd_add", "netdev rule?", "redirect TCP or UDP connections from host to guest "
	  "([netdev] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport)", mon_hmp_hostfwd },
	{ "hostfwd_remove", "netdev rule?", "remove host-to-guest TCP or UDP redirection "
	  "([netdev] [tcp|udp]:[hostaddr]:hostport)", mon_hmp_hostfwd },
	{ "info registers", "", "show the cpu registers", mon_hmp_info_registers },
	{ "info mtree", "", "show memory tree", mon_hmp_info_mtree },
	{ "info jit", "", "show dynamic compiler info", mon_hmp_info_jit },
	{ "info network", "", "show the network state", mon_hmp_info_network },
	{ "savevm", "tag?", "save a VM snapshot", hmp_snapshot },
	{ "loadvm", "tag", "restore a VM snapshot", hmp_snapshot },
	{ "delvm", "tag", "delete a VM snapshot", hmp_snapshot },
	{ "info snapshots", "", "show the currently saved VM snapshots", hmp_snapshot },
};

/* ---- the loop thread ---- */

static pthread_mutex_t sync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sync_cond = PTHREAD_COND_INITIALIZER;

struct ctl_msg { char op; struct machine *m; bool *done; };

/* Requests from other threads, carried out between commands. */
static void on_ctl(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct vmrun_mon *mon = opaque;
	struct ctl_msg msg;

	if (read(fd, &msg, sizeof(msg)) != sizeof(msg))
		return;
	if (msg.op == 'c' && !mon->con_added) {
		mon->con_added = true;
		if (hmp_server_add(mon->hmp, mon->con_pipe[0], STDOUT_FILENO) < 0)
			log_msg(LOG_ERROR, "monitor: %s", err_msg());
	} else if (msg.op == 'm') {
		mon->m = msg.m;
	}
	if (msg.done) {
		pthread_mutex_lock(&sync_lock);
		*msg.done = true;
		pthread_cond_broadcast(&sync_cond);
		pthread_mutex_unlock(&sync_lock);
	}
}

static void ctl_send(struct vmrun_mon *mon, char op, struct machine *m, bool wait)
{
	bool done = false;
	struct ctl_msg msg = { op, m, wait ? &done : NULL };

	if (write_full(mon->ctl_pipe[1], &msg, sizeof(msg)) < 0 || !wait)
		return;
	pthread_mutex_lock(&sync_lock);
	while (!done)
		pthread_cond_wait(&sync_cond, &sync_lock);
	pthread_mutex_unlock(&sync_lock);
}

static void *mon_thread(void *arg)
{
	struct vmrun_mon *mon = arg;

	while (!atomic_load(&mon->done))
		loop_run_once(mon->loop, 500);
	return NULL;
}

static int mon_listen(struct vmrun_mon *mon)
{
	const struct vmrun *o = mon->o;
	int r = 0;

	for (int i = 0; i < o->nqmp && r >= 0; i++)
		r = qmp_server_listen(mon->qmp, o->qmp[i]);
	for (int i = 0; i < o->nmonitors && r >= 0; i++) {
		const char *spec = o->monitors[i];
		if (!strcmp(spec, "none"))
			continue;
		if (!strcmp(spec, "stdio")) {
			for (int j = 0; j < o->nserial; j++)
				if (!strcmp(o->serial[j], "stdio"))
					return err_set(-EINVAL, "cannot use stdio by multiple character devices");
			r = hmp_server_add(mon->hmp, STDIN_FILENO, STDOUT_FILENO);
		} else {
			r = hmp_server_listen(mon->hmp, spec);
		}
	}
	return r;
}

/* The machine resets (lib/hw's on_reset, machine lock held): RESET for
 * the guest's own resets; system_reset raised its event itself. */
static void on_guest_reset(void *opaque)
{
	struct vmrun_mon *mon = opaque;

	if (!atomic_load(&mon->host_reset))
		qmp_server_event(mon->qmp, "RESET",
				 json_pack("{s:b, s:s}", "guest", 1, "reason", "guest-reset"));
}

int mon_open(struct vmrun *o, struct vmrun_mon **out)
{
	struct vmrun_mon *mon = xzalloc(sizeof(*mon));
	struct qmp_server_config cfg = {
		.cmds = mon_cmds, .cmd_count = ARRAY_SIZE(mon_cmds), .opaque = mon,
		.major = 7, .minor = 2, .micro = 0, .package = "vm-run " VM_VERSION,
		.hmp = mon_native, .hmp_count = ARRAY_SIZE(mon_native), .mach = &mon_mach,
	};
	int r;

	mon->o = o;
	o->hw.on_reset = on_guest_reset;
	o->hw.on_reset_opaque = mon;
	o->hw.on_block_error = mon_block_error;
	o->hw.on_block_error_opaque = mon;
	o->hw.on_tray_moved = mon_tray_moved;
	mon_block_init(mon);
	mon->launched = !o->hw.start_paused;
	mon->con_pipe[0] = mon->con_pipe[1] = mon->ctl_pipe[0] = mon->ctl_pipe[1] = -1;
	mon->loop = loop_new();
	mon->qmp = qmp_server_new(mon->loop, &cfg);
	mon->hmp = hmp_server_new(mon->loop, mon->qmp, "QEMU " "7.2.0");
	*out = mon;
	if (pipe2(mon->ctl_pipe, O_CLOEXEC) < 0 || pipe2(mon->con_pipe, O_CLOEXEC) < 0)
		return err_set_errno(errno, "pipe");
	r = loop_add(mon->loop, mon->ctl_pipe[0], LOOP_IN, on_ctl, mon);
	return r < 0 ? r : mon_listen(mon);
}

/* The loop starts with the first machine, as QEMU's main loop does:
 * clients that connect earlier wait for their greeting. */
void mon_attach(struct vmrun_mon *mon, struct machine *m)
{
	if (!mon)
		return;
	if (!mon->thread_started) {
		int r = pthread_create(&mon->thread, NULL, mon_thread, mon);
		if (r) {
			log_msg(LOG_ERROR, "monitor thread: %s", strerror(r));
			return;
		}
		mon->thread_started = true;
	}
	ctl_send(mon, 'm', m, true);
}

void mon_detach(struct vmrun_mon *mon, enum hw_stop why, bool final)
{
	const char *reason = NULL;
	bool guest = false;

	if (!mon || !mon->thread_started)
		return;
	ctl_send(mon, 'm', NULL, true);
	if (!final)
		return;
	if (why == HW_STOP_POWEROFF)
		reason = "guest-shutdown", guest = true;
	else if (why == HW_STOP_RESET)
		reason = "guest-reset", guest = true;
	else if (why == HW_STOP_QUIT)
		reason = mon->quit_reason ? mon->quit_reason : "host-signal";
	if (reason)
		qmp_server_event(mon->qmp, "SHUTDOWN",
				 json_pack("{s:b, s:s}", "guest", guest, "reason", reason));
}

void mon_free(struct vmrun_mon *mon)
{
	if (!mon)
		return;
	if (mon->thread_started) {
		atomic_store(&mon->done, true);
		loop_wake(mon->loop);
		pthread_join(mon->thread, NULL);
	}
	hmp_server_free(mon->hmp);
	qmp_server_free(mon->qmp);
	if (mon->ctl_pipe[0] >= 0)
		loop_del(mon->loop, mon->ctl_pipe[0]);
	loop_free(mon->loop);
	mon_block_free(mon);
	for (int i = 0; i < 2; i++) {
		if (mon->ctl_pipe[i] >= 0)
			close(mon->ctl_pipe[i]);
		if (mon->con_pipe[i] >= 0 && !(i == 0 && mon->con_added))
			close(mon->con_pipe[i]);
	}
	free(mon);
}

/* ---- Ctrl-a c: the stdio console's monitor side ---- */

void mon_console_enter(struct vmrun_mon *mon)
{
	static const char nl[] = "\r\n";

	write_full(STDOUT_FILENO, nl, 2);
	if (!mon->con_added && mon->thread_started)
		ctl_send(mon, 'c', NULL, false);
	else
		write_full(STDOUT_FILENO, "(qemu) ", 7);
}

/* A byte typed while the console shows the monitor: line editing with
 * echo, whole lines to the human monitor. */
void mon_console_input(struct vmrun_mon *mon, uint8_t b)
{
	if (b == '\r' || b == '\n') {
		write_full(STDOUT_FILENO, "\r\n", 2);
		mon->line[mon->llen++] = '\n';
		write_full(mon->con_pipe[1], mon->line, mon->llen);
		mon->llen = 0;
	} else if (b == 0x7f || b == 8) {
		if (mon->llen) {
			mon->llen--;
			write_full(STDOUT_FILENO, "\b \b", 3);
		}
	} else if (b >= 0x20 && mon->llen < sizeof(mon->line) - 1) {
		mon->line[mon->llen++] = b;
		write_full(STDOUT_FILENO, &b, 1);
	}
}
