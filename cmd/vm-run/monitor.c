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

#include "common/common.h"
#include "common/common.h"
#include "vm-run.h"

struct vmrun_mon {
	const struct vmrun *o;
	struct loop *loop;
	struct qmp_server *qmp;
	struct hmp_server *hmp;
	pthread_t thread;
	atomic_bool done;
	struct machine *m;	/* set and cleared on the loop thread */
	bool launched;		/* ever running (else "prelaunch") */
	const char *quit_reason;	/* a SHUTDOWN reason set by a command */
	atomic_bool host_reset;	/* system_reset in progress: not the guest's */
	/* Ctrl-a c: console lines go through a pipe to a human client */
	int con_pipe[2], ctl_pipe[2];
	bool con_added, thread_started;
	char line[512];
	size_t llen;
};

/* ---- commands ---- */

#define MACHINE(mon)                                                     \
	do {                                                             \
		if (!(mon)->m)                                           \
			return err_set(-EAGAIN, "the machine is not running"); \
	} while (0)

static int cmd_query_status(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	bool paused;

	MACHINE(mon);
	paused = machine_paused(mon->m);
	*ret = json_pack("{s:s, s:b, s:b}", "status",
			 !paused ? "running" : mon->launched ? "paused" : "prelaunch",
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

/* memsave/pmemsave: copy guest memory to a file, page by page. */
static int save_mem(struct vmrun_mon *mon, json_t *args, bool phys)
{
	uint64_t addr = json_integer_value(json_object_get(args, "val"));
	int64_t size = json_integer_value(json_object_get(args, "size"));
	const char *path = json_string_value(json_object_get(args, "filename"));
	uint8_t buf[4096];
	int fd, r = 0;

	MACHINE(mon);
	if (size < 0)
		return err_set(-EINVAL, "Parameter 'size' expects a non-negative value");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_set_errno(errno, "Could not open '%s'", path);
	while (size > 0 && r >= 0) {
		size_t n = size < (int64_t)sizeof(buf) ? (size_t)size : sizeof(buf);
		uint64_t pa = addr;
		n = MIN(n, 4096 - (addr & 4095));
		r = phys ? 0 : machine_virt_to_phys(mon->m, addr, &pa);
		r = r < 0 ? r : machine_read_phys(mon->m, pa, buf, n);
		if (r < 0)
			memset(buf, 0, n), r = 0;	/* QEMU writes what it can */
		r = write_full(fd, buf, n);
		if (r < 0)
			r = err_set_errno(errno, "writing to file failed");
		addr += n;
		size -= n;
	}
	close(fd);
	return r < 0 ? r : 0;
}

static int cmd_memsave(void *opaque, json_t *args, json_t **ret)
{
	return save_mem(opaque, args, false);
}

static int cmd_pmemsave(void *opaque, json_t *args, json_t **ret)
{
	return save_mem(opaque, args, true);
}

/* ---- block devices: QEMU's default names (ide0-hd0, ide1-cd0, virtio0)
 * unless -drive id= named them ---- */

static char *drive_name(const struct vmrun *o, int i)
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

static int drive_find(const struct vmrun *o, const char *name)
{
	for (int i = 0; i < o->ndrives; i++) {
		char *n = drive_name(o, i);
		bool same = !strcmp(n, name);
		free(n);
		if (same)
			return i;
	}
	return err_set(-ENODEV, "Device '%s' not found", name);
}

static int cmd_query_block(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const struct vmrun *o = mon->o;
	json_t *a = json_array();

	for (int i = 0; i < o->ndrives; i++) {
		const struct vmrun_drive *d = &o->drives[i];
		char *name = drive_name(o, i);
		json_t *in = json_pack("{s:s, s:s, s:b, s:s, s:i, s:b, s:{s:b, s:b, s:b}}",
			"file", d->file, "node-name", name, "ro", d->readonly,
			"drv", d->format ? d->format : "raw", "backing_file_depth", 0,
			"encrypted", 0, "cache", "writeback", 1, "direct", 0, "no-flush", 0);
		json_t *dev = json_pack("{s:s, s:b, s:b, s:s, s:s, s:o}", "device", name, "locked", 0,
			"removable", d->cdrom, "type", "unknown", "io-status", "ok", "inserted", in);
		if (d->cdrom)
			json_object_set_new(dev, "tray_open", json_false());
		json_array_append_new(a, dev);
		free(name);
	}
	*ret = a;
	return 0;
}

static int cmd_eject(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const char *dev = json_string_value(json_object_get(args, "device"));
	int i;

	if (!dev)
		dev = json_string_value(json_object_get(args, "id"));
	if (!dev)
		return err_set(-EINVAL, "Need exactly one of 'device' and 'id'");
	i = drive_find(mon->o, dev);
	if (i < 0)
		return i;
	if (!mon->o->drives[i].cdrom)
		return err_set(-EINVAL, "Device '%s' is not removable", dev);
	return err_set(-ENOTSUP, "Device '%s': changing media is not supported by vm-run yet", dev);
}

/* query-chardev: QEMU's labels (serial0.., virtiocon0, compat_monitor0,
 * qmp) with the back-end as given on the command line. */
static void add_chardev(json_t *a, const char *label, const char *spec)
{
	json_array_append_new(a, json_pack("{s:s, s:s, s:b}", "label", label,
					   "filename", spec, "frontend-open", 1));
}

static int cmd_query_chardev(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	const struct vmrun *o = mon->o;
	json_t *a = json_array();
	char label[32];

	for (int i = 0; i < o->nserial; i++) {
		snprintf(label, sizeof(label), "serial%d", i);
		add_chardev(a, label, o->serial[i]);
	}
	if (o->virtcon)
		add_chardev(a, "virtiocon0", o->virtcon);
	for (int i = 0; i < o->nmonitors; i++) {
		snprintf(label, sizeof(label), "compat_monitor%d", i);
		add_chardev(a, label, o->monitors[i]);
	}
	for (int i = 0; i < o->nqmp; i++) {
		snprintf(label, sizeof(label), i ? "qmp%d" : "qmp", i);
		add_chardev(a, label, o->qmp[i]);
	}
	*ret = a;
	return 0;
}

/* ---- NICs: named by their id=, netdev=, or net0, net1, ... ---- */

static int nic_find(const struct vmrun *o, const char *name)
{
	for (int i = 0; i < o->nnics; i++) {
		struct kvlist kv = { 0 };
		char dflt[16];
		bool same = false;

		snprintf(dflt, sizeof(dflt), "net%d", i);
		if (kv_parse(o->nics[i], o->nic_device[i] ? "driver" : "type", &kv) >= 0) {
			const char *id = kv_get(&kv, "id"), *nd = kv_get(&kv, "netdev");
			same = (id && !strcmp(id, name)) || (nd && !strcmp(nd, name));
		}
		kv_free(&kv);
		if (same || !strcmp(name, dflt))
			return i;
	}
	return err_set(-ENODEV, "Device '%s' not found", name);
}

static int cmd_set_link(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	int i = nic_find(mon->o, json_string_value(json_object_get(args, "name")));

	MACHINE(mon);
	if (i < 0)
		return i;
	return net_set_link(mon->m, i, json_is_true(json_object_get(args, "up")));
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
	{ "memsave", cmd_memsave, "val:i,size:i,filename:s,*cpu-index:i" },
	{ "pmemsave", cmd_pmemsave, "val:i,size:i,filename:s" },
	{ "query-block", cmd_query_block, "" },
	{ "query-chardev", cmd_query_chardev, "" },
	{ "set_link", cmd_set_link, "name:s,up:b" },
	{ "eject", cmd_eject, "*device:s,*id:s,*force:b" },
};

/* ---- the human layer: x/xp/p and info registers ---- */

static int mach_read_mem(void *opaque, uint64_t addr, void *buf, size_t len, bool phys)
{
	struct vmrun_mon *mon = opaque;
	uint8_t *p = buf;

	MACHINE(mon);
	while (len) {
		size_t n = MIN(len, 4096 - (addr & 4095));
		uint64_t pa = addr;
		int r = phys ? 0 : machine_virt_to_phys(mon->m, addr, &pa);
		r = r < 0 ? r : machine_read_phys(mon->m, pa, p, n);
		if (r < 0)
			return err_set(-EFAULT, "Cannot access memory");
		addr += n, p += n, len -= n;
	}
	return 0;
}

static const char *const reg_names[16] = {
	"ax", "cx", "dx", "bx", "sp", "bp", "si", "di",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
};

static int mach_get_reg(void *opaque, const char *name, uint64_t *val)
{
	struct vmrun_mon *mon = opaque;
	struct hw_regs r;
	struct hw_sregs s;
	bool e = name[0] == 'e' || name[0] == 'r';

	MACHINE(mon);
	if (machine_get_cpu(mon->m, 0, &r, &s) < 0)
		return -ENOENT;
	for (int i = 0; i < 16; i++)
		if (!strcmp(name, reg_names[i]) || (e && !strcmp(name + 1, reg_names[i]) && i < 8)) {
			*val = name[0] == 'e' ? (uint32_t)r.gpr[i] : i < 8 && !e ? (uint16_t)r.gpr[i] : r.gpr[i];
			return 0;
		}
	if (!strcmp(name, "pc") || !strcmp(name, "rip") || !strcmp(name, "eip"))
		*val = !strcmp(name, "pc") ? s.cs.base + r.rip : r.rip;
	else if (!strcmp(name, "eflags") || !strcmp(name, "rflags"))
		*val = r.rflags;
	else if (!strcmp(name, "cr0") || !strcmp(name, "cr2") || !strcmp(name, "cr3") || !strcmp(name, "cr4"))
		*val = name[2] == '0' ? s.cr0 : name[2] == '2' ? s.cr2 : name[2] == '3' ? s.cr3 : s.cr4;
	else
		return -ENOENT;
	return 0;
}

static const struct hmp_machine_ops mon_mach = {
	.read_mem = mach_read_mem,
	.get_reg = mach_get_reg,
};

static uint32_t seg_flags(const struct hw_segment *g)
{
	return (uint32_t)g->type << 8 | (uint32_t)g->s << 12 | (uint32_t)g->dpl << 13 |
	       (uint32_t)g->present << 15 | (uint32_t)g->avl << 20 | (uint32_t)g->l << 21 |
	       (uint32_t)g->db << 22 | (uint32_t)g->g << 23;
}

/* One segment line of QEMU's "info registers" (x86 cpu dump). */
static void dump_seg(struct hmp_out *o, const char *name, const struct hw_segment *g,
		     bool lma, bool pe)
{
	static const char *const sys[16] = {
		"", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate",
		"IntGate16", "TrapGate16", "", "TSS32-avl", "", "TSS32-busy",
		"CallGate32", "", "IntGate32", "TrapGate32",
	};

	if (lma)
		hmp_printf(o, "%-3s=%04x %016" PRIx64 " %08x %08x", name, g->selector,
			   g->base, g->limit, seg_flags(g));
	else
		hmp_printf(o, "%-3s=%04x %08x %08x %08x", name, g->selector,
			   (uint32_t)g->base, g->limit, seg_flags(g));
	if (pe && g->present) {
		if (g->s && (g->type & 8))
			hmp_printf(o, " %s [%c%c%c]", g->l ? "CS64" : g->db ? "CS32" : "CS16",
				   g->type & 4 ? 'C' : '-', g->type & 2 ? 'R' : '-',
				   g->type & 1 ? 'A' : '-');
		else if (g->s)
			hmp_printf(o, " %s [%c%c%c]", g->db ? "DS  " : "DS16",
				   g->type & 4 ? 'E' : '-', g->type & 2 ? 'W' : '-',
				   g->type & 1 ? 'A' : '-');
		else
			hmp_printf(o, " %s", sys[g->type & 15]);
	}
	hmp_printf(o, "\n");
}

static void dump_gprs(struct hmp_out *o, const struct hw_regs *r, bool lma)
{
	static const char *const n64[16] = {
		"RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI",
		"R8 ", "R9 ", "R10", "R11", "R12", "R13", "R14", "R15",
	};
	/* QEMU's order: a b c d, si di bp sp, then r8..r15. */
	static const int order[16] = { 0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15 };
	int n = lma ? 16 : 8;

	for (int i = 0; i < n; i++) {
		int k = order[i];
		if (lma)
			hmp_printf(o, "%s=%016" PRIx64, n64[k], r->gpr[k]);
		else
			hmp_printf(o, "E%.2s=%08x", n64[k] + 1, (uint32_t)r->gpr[k]);
		hmp_printf(o, "%s", i % 4 == 3 ? "\n" : " ");
	}
}

static int hmp_info_registers(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	struct vmrun_mon *mon = opaque;
	static const char *const segn[6] = { "ES", "CS", "SS", "DS", "FS", "GS" };
	struct hw_regs r;
	struct hw_sregs s;
	uint64_t f;
	int ret;

	MACHINE(mon);
	ret = machine_get_cpu(mon->m, 0, &r, &s);
	if (ret < 0)
		return ret;
	const struct hw_segment *seg[6] = { &s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs };
	bool lma = s.efer & (1u << 10), pe = s.cr0 & 1;
	f = r.rflags;
	dump_gprs(o, &r, lma);
	if (lma)
		hmp_printf(o, "RIP=%016" PRIx64 " RFL=%08x", r.rip, (uint32_t)f);
	else
		hmp_printf(o, "EIP=%08x EFL=%08x", (uint32_t)r.rip, (uint32_t)f);
	hmp_printf(o, " [%c%c%c%c%c%c%c] CPL=%d II=0 A20=1 SMM=0 HLT=0\n",
		   f & 0x400 ? 'D' : '-', f & 0x800 ? 'O' : '-', f & 0x80 ? 'S' : '-',
		   f & 0x40 ? 'Z' : '-', f & 0x10 ? 'A' : '-', f & 0x4 ? 'P' : '-',
		   f & 0x1 ? 'C' : '-', s.cs.dpl);
	for (int i = 0; i < 6; i++)
		dump_seg(o, segn[i], seg[i], lma, pe);
	dump_seg(o, "LDT", &s.ldt, lma, pe);
	dump_seg(o, "TR", &s.tr, lma, pe);
	if (lma) {
		hmp_printf(o, "GDT=     %016" PRIx64 " %08x\n", s.gdt.base, s.gdt.limit);
		hmp_printf(o, "IDT=     %016" PRIx64 " %08x\n", s.idt.base, s.idt.limit);
		hmp_printf(o, "CR0=%08x CR2=%016" PRIx64 " CR3=%016" PRIx64 " CR4=%08x\n",
			   (uint32_t)s.cr0, s.cr2, s.cr3, (uint32_t)s.cr4);
	} else {
		hmp_printf(o, "GDT=     %08x %08x\n", (uint32_t)s.gdt.base, s.gdt.limit);
		hmp_printf(o, "IDT=     %08x %08x\n", (uint32_t)s.idt.base, s.idt.limit);
		hmp_printf(o, "CR0=%08x CR2=%08x CR3=%08x CR4=%08x\n", (uint32_t)s.cr0,
			   (uint32_t)s.cr2, (uint32_t)s.cr3, (uint32_t)s.cr4);
	}
	hmp_printf(o, "EFER=%016" PRIx64 "\n", s.efer);
	return 0;
}

/* savevm/loadvm/delvm wait for vm-snap; QEMU's answer without a disk. */
static int hmp_snapshot(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	struct vmrun_mon *mon = opaque;

	for (int i = 0; i < mon->o->ndrives; i++)
		if (!mon->o->drives[i].readonly)
			return err_set(-ENOTSUP, "snapshots are not supported by vm-run yet");
	return err_set(-ENOTSUP, "no block device can store vmstate for snapshot");
}

/* hostfwd_add/hostfwd_remove [netdev] RULE: a line to the NIC's vm-net
 * child (QEMU's optional hub id is not supported). */
static int hmp_hostfwd(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	struct vmrun_mon *mon = opaque;
	const char *dev = hmp_arg(a, "netdev"), *rule = hmp_arg(a, "rule");
	char *line, *out = NULL;
	int i = 0, r;

	if (!rule)
		rule = dev, dev = NULL;
	if (dev && (i = nic_find(mon->o, dev)) < 0)
		return i;
	if (!mon->o->nnics || net_ctl_fd(i) < 0)
		return err_set(-ENODEV, "no user-mode network (-nic user) to forward to");
	line = xasprintf("%s %s", a->name, rule);
	r = net_ctl(i, line, &out);
	if (out)
		hmp_printf(o, "%s", out);
	free(out);
	free(line);
	return r;
}

static const struct hmp_native mon_native[] = {
	{ "hostfwd_add", "netdev rule?", "redirect TCP or UDP connections from host to guest "
	  "([netdev] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport)", hmp_hostfwd },
	{ "hostfwd_remove", "netdev rule?", "remove host-to-guest TCP or UDP redirection "
	  "([netdev] [tcp|udp]:[hostaddr]:hostport)", hmp_hostfwd },
	{ "info registers", "", "show the cpu registers", hmp_info_registers },
	{ "savevm", "tag?", "save a VM snapshot", hmp_snapshot },
	{ "loadvm", "tag", "restore a VM snapshot", hmp_snapshot },
	{ "delvm", "tag", "delete a VM snapshot", hmp_snapshot },
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
