/*
 * vm-run: the virtual PC, as qemu-system-x86_64 (same single-dash option
 * names, defaults and exit codes; see man/vm-run.1).
 *
 * main() wires parse, validate, run: the command line becomes one struct
 * vmrun (with the lib/hw struct hw_config inside), the back-ends are
 * opened (serial ports, NIC cables, disks as NBD clients), the machine is
 * built and run until the guest powers off, resets with -no-reboot,
 * writes to isa-debug-exit, or the user quits with Ctrl-a x.  A KVM that
 * makes no progress is noticed by a watchdog: with the accelerator chosen
 * automatically vm-run starts again on the JIT, with a one-line notice.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "jit/jit.h"
#include "vm-run.h"

#define KVM_WATCHDOG_SECS 10

enum {
	OPT_M = 256, OPT_MACHINE, OPT_MEM, OPT_SMP, OPT_CPU, OPT_ACCEL, OPT_ENABLE_KVM,
	OPT_KERNEL, OPT_INITRD, OPT_APPEND, OPT_DRIVE, OPT_HDA, OPT_HDB, OPT_HDC, OPT_HDD,
	OPT_CDROM, OPT_BOOT, OPT_SNAPSHOT, OPT_NOGRAPHIC, OPT_SERIAL, OPT_NAME, OPT_PIDFILE,
	OPT_DAEMONIZE, OPT_S, OPT_NO_REBOOT, OPT_NODEFAULTS, OPT_DEVICE, OPT_D, OPT_BIOS,
	OPT_NIC, OPT_NETDEV, OPT_VIRTCON, OPT_DISPLAY, OPT_QMP, OPT_MONITOR, OPT_HELP, OPT_VERSION,
	OPT_LOADVM, OPT_PERFMAP,
};

static const struct option opts[] = {
	{ "M", required_argument, NULL, OPT_M },
	{ "machine", required_argument, NULL, OPT_MACHINE },
	{ "m", required_argument, NULL, OPT_MEM },
	{ "smp", required_argument, NULL, OPT_SMP },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "accel", required_argument, NULL, OPT_ACCEL },
	{ "enable-kvm", no_argument, NULL, OPT_ENABLE_KVM },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "append", required_argument, NULL, OPT_APPEND },
	{ "drive", required_argument, NULL, OPT_DRIVE },
	{ "hda", required_argument, NULL, OPT_HDA },
	{ "hdb", required_argument, NULL, OPT_HDB },
	{ "hdc", required_argument, NULL, OPT_HDC },
	{ "hdd", required_argument, NULL, OPT_HDD },
	{ "cdrom", required_argument, NULL, OPT_CDROM },
	{ "boot", required_argument, NULL, OPT_BOOT },
	{ "snapshot", no_argument, NULL, OPT_SNAPSHOT },
	{ "loadvm", required_argument, NULL, OPT_LOADVM },
	{ "nographic", no_argument, NULL, OPT_NOGRAPHIC },
	{ "display", required_argument, NULL, OPT_DISPLAY },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "virtioconsole", required_argument, NULL, OPT_VIRTCON },
	{ "nic", required_argument, NULL, OPT_NIC },
	{ "netdev", required_argument, NULL, OPT_NETDEV },
	{ "qmp", required_argument, NULL, OPT_QMP },
	{ "monitor", required_argument, NULL, OPT_MONITOR },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
	{ "daemonize", no_argument, NULL, OPT_DAEMONIZE },
	{ "S", no_argument, NULL, OPT_S },
	{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
	{ "nodefaults", no_argument, NULL, OPT_NODEFAULTS },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "d", required_argument, NULL, OPT_D },
	{ "bios", required_argument, NULL, OPT_BIOS },
	{ "perfmap", no_argument, NULL, OPT_PERFMAP },
	{ "h", no_argument, NULL, OPT_HELP },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void usage(void)
{
	printf(
"Usage: vm-run [options]\n"
"Run a virtual PC (i440FX + PIIX, as QEMU's pc machine).\n"
"\n"
"Standard options:\n"
"  -h, -help            display this help and exit\n"
"  -version             display version information and exit\n"
"  -M, -machine [type=]pc[,kernel_irqchip=on|off|split][,accel=A]\n"
"               [,kernel-decompress=host|guest][,kernel-cache=on|off]\n"
"                       machine type: pc (the only one); kernel_irqchip: KVM's\n"
"                       in-kernel PIC/IOAPIC/APIC/PIT, ioeventfd, irqfd (default on);\n"
"                       kernel-decompress: who inflates a -kernel bzImage (default host);\n"
"                       kernel-cache: keep host-inflated kernels in\n"
"                       ~/.cache/vm-run/kernels for the next boot (default on)\n"
"  -m SIZE              guest RAM, default suffix M (default 128M)\n"
"  -smp N               number of vCPUs (default 1)\n"
"  -cpu MODEL           CPU model (accepted: host, max, qemu64; the accelerator decides)\n"
"  -accel kvm|jit[,kernel-irqchip=on|off|split][,translate=on|off]\n"
"                       accelerator (tcg means jit); default: kvm when it works, else jit;\n"
"                       translate=off: the jit's interpreter alone, without host code\n"
"  -enable-kvm          same as -accel kvm\n"
"  -name NAME           a name for the guest\n"
"\n"
"Boot:\n"
"  -kernel FILE         Linux bzImage or multiboot kernel, booted directly\n"
"  -initrd FILE         initial ram disk (a module for multiboot kernels)\n"
"  -append CMDLINE      kernel command line\n"
"  -bios FILE           firmware image (default: SeaBIOS bios-256k.bin)\n"
"  -boot [order=]DRIVES firmware boot order (c disk, d CD-ROM, n network)\n"
"  -S                   do not start the CPUs\n"
"  -no-reboot           exit instead of rebooting\n"
"\n"
"Disks:\n"
"  -drive file=F[,if=virtio|ide][,format=FMT][,readonly=on][,cache=MODE][,media=cdrom][,snapshot=on]\n"
"                       a disk: an image (served by a vm-nbd child) or an NBD URI\n"
"                       (nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH);\n"
"                       [,werror=A][,rerror=A]: on a back-end error report, ignore,\n"
"                       stop or enospc (stop on ENOSPC only); media=cdrom without\n"
"                       file= is an empty CD-ROM drive\n"
"  -hda/-hdb/-hdc/-hdd FILE  IDE disks 0-3\n"
"  -cdrom FILE          IDE CD-ROM\n"
"  -snapshot            write to temporary overlays, never to the images\n"
"  -loadvm TAG          start from VM snapshot TAG (taken with savevm)\n"
"\n"
"Devices and back-ends:\n"
"  -nographic           no display; serial port 0 on stdio with Ctrl-a escapes\n"
"  -display none        no display\n"
"  -serial DEV          next serial port: stdio, file:PATH, unix:PATH[,server=on,wait=off],\n"
"                       pty, none\n"
"  -virtioconsole DEV   a virtio console on DEV (as -serial)\n"
"  -nic user[,hostfwd=...,net=...][,model=M][,mac=MAC]\n"
"                       a NIC on user-mode networking (a vm-net child)\n"
"  -nic socket,path=PATH|fd=N|connect=H:P[,mac=MAC][,model=M]\n"
"                       a NIC whose frames travel length-prefixed on a stream socket\n"
"  -netdev user|stream|socket,id=ID,...  a back-end for -device NIC,netdev=ID\n"
"                       (stream: server=off,addr.type=unix,addr.path=P or inet)\n"
"  -device virtio-net-pci|e1000,netdev=ID[,mac=MAC]\n"
"  -device isa-debug-exit[,iobase=0xf4][,iosize=0x04]\n"
"  -device virtio-rng-pci\n"
"  -nodefaults          no default serial port\n"
"  -qmp unix:PATH,server=on,wait=off|tcp:HOST:PORT,server=on,wait=off|fd:N\n"
"                       a QMP server (several allowed)\n"
"  -monitor stdio|unix:PATH,server=on,wait=off|tcp:...|none\n"
"                       a human monitor\n"
"\n"
"Process:\n"
"  -pidfile FILE        write the process id to FILE\n"
"  -daemonize           run in the background once the machine is built\n"
"  -d CAT[,CAT...]      debug log categories ('-d help' lists them)\n"
"  -perfmap             describe the JIT's host code in /tmp/perf-PID.map for perf\n"
"\n"
"On the stdio console: Ctrl-a x quits, Ctrl-a c switches to the monitor,\n"
"Ctrl-a h lists the escapes.\n"
"Exit status: 0 when the guest powers off or the user quits, (V << 1) | 1\n"
"when the guest writes V to isa-debug-exit, 1 on errors.\n");
}

static int add_drive(struct vmrun *o, const char *spec, int iface, int index, bool cdrom)
{
	static const char *const known[] = { "file", "if", "format", "readonly", "cache", "media",
					     "index", "snapshot", "id", "aio", "discard", "rerror",
					     "werror", NULL };
	struct kvlist kv = { 0 };
	struct vmrun_drive *d;
	const char *s;
	int r;

	if (o->ndrives >= HW_MAX_DISKS)
		return err_set(-EINVAL, "too many drives (at most %d)", HW_MAX_DISKS);
	d = &o->drives[o->ndrives];
	*d = (struct vmrun_drive){ .iface = iface, .index = index, .cdrom = cdrom };
	if (iface < 0) {
		r = kv_parse(spec, "file", &kv);
		r = r < 0 ? r : kv_check(&kv, known);
		if (r < 0)
			goto out;
		d->iface = HW_IF_IDE;
		if ((s = kv_get(&kv, "if")) && !strcmp(s, "virtio"))
			d->iface = HW_IF_VIRTIO;
		else if (s && strcmp(s, "ide")) {
			r = err_set(-EINVAL, "-drive: if=%s is not supported (virtio, ide)", s);
			goto out;
		}
		if ((s = kv_get(&kv, "media")))
			d->cdrom = !strcmp(s, "cdrom");
		r = kv_get_bool(&kv, "readonly", false, &d->readonly);
		r = r < 0 ? r : kv_get_bool(&kv, "snapshot", false, &d->snapshot);
		if (r < 0)
			goto out;
		d->format = (s = kv_get(&kv, "format")) ? xstrdup(s) : NULL;
		d->cache = (s = kv_get(&kv, "cache")) ? xstrdup(s) : NULL;
		d->id = (s = kv_get(&kv, "id")) ? xstrdup(s) : NULL;
		d->index = (s = kv_get(&kv, "index")) ? atoi(s) : -1;
		d->rerror = (s = kv_get(&kv, "rerror")) ? xstrdup(s) : NULL;
		d->werror = (s = kv_get(&kv, "werror")) ? xstrdup(s) : NULL;
		if (((!(s = kv_get(&kv, "file")) || !*s)) && d->cdrom) {
			s = "";		/* an empty CD-ROM drive */
		} else if (!s || !*s) {
			r = err_set(-EINVAL, "-drive %s: needs file=", spec);
			goto out;
		}
		d->file = xstrdup(s);
	} else {
		d->file = xstrdup(spec);
	}
	if (d->cdrom)
		d->readonly = true;
	o->ndrives++;
	r = 0;
out:
	kv_free(&kv);
	return r;
}

static int parse_device(struct vmrun *o, const char *spec)
{
	struct kvlist kv = { 0 };
	uint64_t base, size;
	const char *type;
	int r = kv_parse(spec, "driver", &kv);

	if (r < 0)
		return r;
	type = kv_get(&kv, "driver");
	if (kv_is_help(spec)) {
		printf("isa-debug-exit (iobase=, iosize=)\nvirtio-rng-pci\n");
		exit(0);
	} else if (type && !strcmp(type, "isa-debug-exit")) {
		r = kv_get_u64(&kv, "iobase", 0x501, 1, 0xffff, &base);
		r = r < 0 ? r : kv_get_u64(&kv, "iosize", 2, 1, 4, &size);
		o->hw.debug_exit_port = base;
		o->hw.debug_exit_size = size;
	} else if (type && (!strcmp(type, "virtio-rng-pci") || !strcmp(type, "virtio-rng"))) {
		o->hw.rng = true;
	} else if ((r = net_add_device(o, spec)) <= 0) {
		/* a NIC (0), or a bad one (<0) */
	} else {
		r = err_set(-EINVAL, "-device %s: unknown device ('-device help' lists them)", type ? type : "");
	}
	kv_free(&kv);
	return r;
}

static int parse_size(const char *s, uint64_t *out)
{
	struct kvlist kv = { 0 };
	const char *v;
	int r = kv_parse(s, "size", &kv);

	if (r < 0)
		return r;
	v = kv_get(&kv, "size");
	r = v ? size_parse(v, 'M', out) : err_set(-EINVAL, "-m %s: needs a size", s);
	kv_free(&kv);
	if (r < 0)
		return r;
	if (*out < (16u << 20) || *out > (1ull << 40))
		return err_set(-EINVAL, "-m %s: RAM must be between 16M and 1T", s);
	*out = ALIGN_UP(*out, 1u << 20);
	return 0;
}

static int parse_smp(const char *s, int *out)
{
	struct kvlist kv = { 0 };
	const char *v;
	int r = kv_parse(s, "cpus", &kv);

	if (r < 0)
		return r;
	v = kv_get(&kv, "cpus");
	r = v ? parse_int(v, 1, HW_MAX_CPUS, out) : err_set(-EINVAL, "-smp %s: needs a count", s);
	kv_free(&kv);
	return r < 0 ? err_set(-EINVAL, "-smp %s: want 1 to %d vCPUs", s, HW_MAX_CPUS) : 0;
}

/* QEMU's kernel_irqchip=on|off|split (the JIT ignores it, as TCG does). */
static int parse_irqchip(struct vmrun *o, const char *opt, const struct kvlist *kv, const char *key)
{
	const char *val = kv_get(kv, key);
	bool b;

	if (!val)
		return 0;
	if (!strcmp(val, "split"))
		o->hw.kernel_irqchip = HW_IRQCHIP_SPLIT;
	else if (parse_bool(val, &b) == 0)
		o->hw.kernel_irqchip = b ? HW_IRQCHIP_ON : HW_IRQCHIP_OFF;
	else
		return err_set(-EINVAL, "%s: %s=%s: want on, off or split", opt, key, val);
	return 0;
}

/* -accel NAME[,kernel-irqchip=on|off|split] and -machine accel=NAME */
static int parse_accel(struct vmrun *o, const char *s)
{
	static const char *const known[] = { "accel", "kernel-irqchip", "kernel_irqchip",
					     "translate", NULL };
	const struct hw_accel_ops *a;
	struct kvlist kv;
	const char *name;
	int r = kv_parse(s, "accel", &kv);

	if (r < 0 || kv_check(&kv, known) < 0) {
		char why[200];
		snprintf(why, sizeof(why), "%s", err_msg());
		kv_free(&kv);
		return err_set(-EINVAL, "-accel %s: %s", s, why);
	}
	name = kv_get(&kv, "accel") ? kv_get(&kv, "accel") : "";
	a = hw_accel_find(strcmp(name, "tcg") ? name : "jit");
	if (!a)
		r = err_set(-EINVAL, "-accel %s: unknown accelerator (kvm, jit)", s);
	if (r >= 0)
		r = parse_irqchip(o, "-accel", &kv, "kernel-irqchip");
	if (r >= 0)
		r = parse_irqchip(o, "-accel", &kv, "kernel_irqchip");
	if (r >= 0 && kv_get(&kv, "translate")) {
		/* jit only: off keeps lib/jit's interpreter alone (the reference
		 * the translator is checked against); lib/jit reads it from the
		 * environment when it creates a vCPU */
		bool on;
		if (parse_bool(kv_get(&kv, "translate"), &on) < 0)
			r = err_set(-EINVAL, "-accel %s: translate=%s: want on or off", s,
				    kv_get(&kv, "translate"));
		else
			setenv("VM_JIT_TRANSLATE", on ? "on" : "off", 1);
	}
	if (r >= 0) {
		o->hw.accel = a->name;
		o->accel_auto = false;
	}
	kv_free(&kv);
	return r;
}

/* -machine key=no|yes (kernel-decompress=host|guest: where a bzImage's
 * kernel is inflated; kernel-cache=on|off: lib/hw/boot-cache.c): *yes
 * says which, left alone when the key is absent. */
static int parse_either(const struct kvlist *kv, const char *key, const char *no,
			const char *yes, bool *is_yes)
{
	const char *val = kv_get(kv, key);

	if (!val)
		return 0;
	if (strcmp(val, no) && strcmp(val, yes))
		return err_set(-EINVAL, "-machine: %s=%s: want %s or %s", key, val, no, yes);
	*is_yes = !strcmp(val, yes);
	return 0;
}

/* -machine [type=]pc[,accel=NAME][,kernel_irqchip=on|off|split]
 *          [,kernel-decompress=host|guest][,kernel-cache=on|off] */
static int parse_machine(struct vmrun *o, const char *s)
{
	static const char *const known[] = { "type", "accel", "kernel_irqchip", "kernel-irqchip",
					     "kernel-decompress", "kernel-cache", NULL };
	struct kvlist kv;
	const char *type;
	int r = kv_parse(s, "type", &kv);

	if (r < 0 || kv_check(&kv, known) < 0) {
		char why[200];
		snprintf(why, sizeof(why), "%s", err_msg());
		kv_free(&kv);
		return err_set(-EINVAL, "-machine %s: %s", s, why);
	}
	type = kv_get(&kv, "type");
	if (type && strncmp(type, "pc", 2))
		r = err_set(-EINVAL, "-machine %s: unsupported machine type (pc)", s);
	if (r >= 0 && kv_get(&kv, "accel"))
		r = parse_accel(o, kv_get(&kv, "accel"));
	if (r >= 0)
		r = parse_irqchip(o, "-machine", &kv, "kernel_irqchip");
	if (r >= 0)
		r = parse_irqchip(o, "-machine", &kv, "kernel-irqchip");
	if (r >= 0)
		r = parse_either(&kv, "kernel-decompress", "host", "guest", &o->hw.guest_decompress);
	if (r >= 0)
		r = parse_either(&kv, "kernel-cache", "on", "off", &o->hw.no_kernel_cache);
	kv_free(&kv);
	return r;
}

static void free_opts(struct vmrun *o)
{
	for (int i = 0; i < o->ndrives; i++) {
		free(o->drives[i].file);
		free((char *)o->drives[i].format);
		free((char *)o->drives[i].cache);
		free((char *)o->drives[i].id);
		free((char *)o->drives[i].rerror);
		free((char *)o->drives[i].werror);
	}
}

static int parse_opt(struct vmrun *o, int c, const char *arg)
{
	unsigned cat = 0;

	switch (c) {
	case OPT_M: case OPT_MACHINE:
		if (kv_is_help(arg)) {
			printf("pc                   Standard PC (i440FX + PIIX, 1996) (default)\n");
			exit(0);
		}
		return parse_machine(o, arg);
	case OPT_MEM: return parse_size(arg, &o->hw.ram_size);
	case OPT_SMP: return parse_smp(arg, &o->hw.smp);
	case OPT_CPU:
		if (kv_is_help(arg)) {
			printf("host\nmax\nqemu64\n");
			exit(0);
		}
		return 0;
	case OPT_ACCEL: return parse_accel(o, arg);
	case OPT_ENABLE_KVM: return parse_accel(o, "kvm");
	case OPT_KERNEL: o->hw.kernel = arg; return 0;
	case OPT_INITRD: o->hw.initrd = arg; return 0;
	case OPT_APPEND: o->hw.append = arg; return 0;
	case OPT_BIOS: o->hw.bios = arg; return 0;
	case OPT_DRIVE: return add_drive(o, arg, -1, -1, false);
	case OPT_HDA: case OPT_HDB: case OPT_HDC: case OPT_HDD:
		return add_drive(o, arg, HW_IF_IDE, c - OPT_HDA, false);
	case OPT_CDROM: return add_drive(o, arg, HW_IF_IDE, 2, true);
	case OPT_BOOT:
		o->hw.boot_order = strncmp(arg, "order=", 6) ? arg : arg + 6;
		return 0;
	case OPT_SNAPSHOT: o->snapshot = true; return 0;
	case OPT_LOADVM: o->loadvm = arg; return 0;
	case OPT_NOGRAPHIC: o->nographic = true; return 0;
	case OPT_DISPLAY: return 0;
	case OPT_SERIAL:
		if (o->nserial >= HW_MAX_SERIAL)
			return err_set(-EINVAL, "-serial: at most %d serial ports", HW_MAX_SERIAL);
		o->serial[o->nserial++] = arg;
		return 0;
	case OPT_VIRTCON: o->virtcon = arg; return 0;
	case OPT_NETDEV: return net_add_netdev(o, arg);
	case OPT_NIC:
		if (!strcmp(arg, "none"))
			return 0;
		if (o->nnics >= HW_MAX_NICS)
			return err_set(-EINVAL, "-nic: at most %d NICs", HW_MAX_NICS);
		o->nics[o->nnics++] = arg;
		return 0;
	case OPT_QMP: case OPT_MONITOR:
		if ((c == OPT_QMP ? o->nqmp : o->nmonitors) >= 4)
			return err_set(-EINVAL, "-%s: at most 4", c == OPT_QMP ? "qmp" : "monitor");
		if (c == OPT_QMP)
			o->qmp[o->nqmp++] = arg;
		else
			o->monitors[o->nmonitors++] = arg;
		return 0;
	case OPT_NAME: o->name = arg; return 0;
	case OPT_PIDFILE: o->pidfile = arg; return 0;
	case OPT_DAEMONIZE: o->daemonize = true; return 0;
	case OPT_S: o->hw.start_paused = true; return 0;
	case OPT_NO_REBOOT: o->hw.no_reboot = true; return 0;
	case OPT_PERFMAP: o->perfmap = true; return 0;
	case OPT_NODEFAULTS: o->nodefaults = true; return 0;
	case OPT_DEVICE: return parse_device(o, arg);
	case OPT_D:
		if (log_parse_categories(arg, &cat) == 1) {
			for (size_t i = 0; i < log_cat_count; i++)
				printf("%-15s %s\n", log_cat_names[i].name, log_cat_names[i].help);
			exit(0);
		}
		if (log_parse_categories(arg, &log_mask) < 0)
			return err_set(-EINVAL, "-d %s: unknown log category ('-d help' lists them)", arg);
		return 0;
	case OPT_HELP: usage(); exit(report_close_stdout() < 0 ? 1 : 0);
	case OPT_VERSION:
		printf("vm-run version %s\n", VM_VERSION);
		exit(report_close_stdout() < 0 ? 1 : 0);
	}
	return err_set(-EINVAL, "internal: option %d", c);
}

static int parse_args(int argc, char **argv, struct vmrun *o)
{
	int c, r;

	opterr = 0;
	while ((c = getopt_long_only(argc, argv, ":", opts, NULL)) != -1) {
		if (c == '?')
			return err_set(-EINVAL, "%s: invalid option", argv[optind - 1]);
		if (c == ':')
			return err_set(-EINVAL, "%s: requires an argument", argv[optind - 1]);
		r = parse_opt(o, c, optarg);
		if (r < 0)
			return r;
	}
	if (optind < argc)		/* QEMU: a bare argument is -hda */
		return add_drive(o, argv[optind], HW_IF_IDE, 0, false);
	return 0;
}

static int validate(struct vmrun *o)
{
	if (!o->hw.ram_size)
		o->hw.ram_size = 128u << 20;
	if (!o->hw.smp)
		o->hw.smp = 1;
	if ((o->hw.initrd || o->hw.append) && !o->hw.kernel)
		return err_set(-EINVAL, "-initrd and -append need -kernel");
	if (o->hw.kernel && access(o->hw.kernel, R_OK) < 0)
		return err_set_errno(errno, "%s", o->hw.kernel);
	for (int i = 0; i < o->ndrives; i++) {
		if (o->drives[i].cdrom && o->drives[i].iface != HW_IF_IDE)
			return err_set(-EINVAL, "%s: a CD-ROM must be on if=ide", o->drives[i].file);
		o->drives[i].snapshot |= o->snapshot && !o->drives[i].cdrom;
	}
	if (!o->nserial && !o->nodefaults)
		o->serial[o->nserial++] = "stdio";
	return 0;
}

/* Pick the accelerator when -accel was not given. */
static void choose_accel(struct vmrun *o)
{
	if (o->hw.accel)
		return;
	o->accel_auto = true;
	o->hw.accel = "jit";
	if (hw_accel_find("kvm")->probe() < 0)
		return;
	if (hw_kvm_is_limited() && !(o->hw.kernel && hw_kernel_is_multiboot(o->hw.kernel))) {
		fprintf(stderr, "vm-run: /dev/kvm is kvm_pvm, which cannot run this guest; using the JIT\n");
		return;
	}
	o->hw.accel = "kvm";
}

static int open_backends(struct vmrun *o, struct vmrun_io *io)
{
	int r;

	for (int i = 0; i < o->nserial; i++) {
		r = chardev_open(io, o->serial[i], i, &o->hw.serial[i]);
		if (r < 0)
			return r;
	}
	if (o->virtcon && (r = chardev_open(io, o->virtcon, -1, &o->hw.virtcon)) < 0)
		return r;
	for (int i = 0; i < o->nnics; i++) {
		r = net_nic_open(o, io, i, &o->hw.nics[i]);
		if (r < 0)
			return r;
	}
	o->hw.nnics = o->nnics;
	for (int i = 0; i < o->ndrives; i++) {
		r = disk_open(o, &o->drives[i], &o->hw.disks[i]);
		if (r < 0)
			return r;
	}
	o->hw.ndisks = o->ndrives;
	return 0;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0)
		return err_set_errno(errno, "%s", path);
	return 0;
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return err_set_errno(errno, "fork");
	if (pid > 0)
		_exit(0);
	setsid();
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

/* Build and run the machine once.  Returns the exit status, or -1 when
 * the KVM watchdog fired and the caller may retry on the JIT. */
static int run_once(struct vmrun *o, struct vmrun_io *io)
{
	struct machine *m;
	enum hw_stop why;
	int status, r;

	r = machine_new(&o->hw, &m);
	if (r < 0) {
		io_restore_tty(io);
		report_err();
		return 1;
	}
	savevm_clock_start();
	if (o->loadvm && savevm_load(o, m, o->loadvm) < 0) {
		io_restore_tty(io);
		report_err();
		machine_free(m);
		return 1;
	}
	mon_attach(o->mon, m);
	r = io_start(io, m, !strcmp(o->hw.accel, "kvm") ? KVM_WATCHDOG_SECS : 0);
	if (r < 0) {
		mon_detach(o->mon, HW_STOP_ERROR, false);
		machine_free(m);
		report_err();
		return 1;
	}
	why = machine_run(m, &status);
	io_stop(io);
	mon_detach(o->mon, why, !io_watchdog_fired(io));
	machine_free(m);
	if (io_watchdog_fired(io))
		return -1;
	if (why == HW_STOP_ERROR) {
		io_restore_tty(io);
		report("%s", err_msg());
		return 1;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct vmrun o = { 0 };
	struct vmrun_io *io;
	int r, status;

	report_init("vm-run");
	signal(SIGPIPE, SIG_IGN);
	/* Termination signals are read by the I/O thread (a signalfd): block
	 * them before any thread starts so that none takes them. */
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigaddset(&term, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	if (parse_args(argc, argv, &o) < 0 || validate(&o) < 0) {
		report_err();
		free_opts(&o);
		return 1;
	}
	io = io_new();
	r = open_backends(&o, io);
	if (r >= 0)
		choose_accel(&o);
	if (r < 0) {
		io_restore_tty(io);
		report_err();
		disk_close_all();
		io_free(io);
		free_opts(&o);
		return 1;
	}
	if ((o.daemonize && daemonize() < 0) || (o.pidfile && write_pidfile(o.pidfile) < 0)) {
		io_restore_tty(io);
		report_err();
		disk_close_all();
		io_free(io);
		free_opts(&o);
		return 1;
	}
	if (o.perfmap && (r = jit_perfmap_open()) < 0) {
		io_restore_tty(io);
		report("-perfmap: /tmp/perf-%ld.map: %s", (long)getpid(), strerror(-r));
		disk_close_all();
		io_free(io);
		free_opts(&o);
		return 1;
	}
	if ((o.nqmp || o.nmonitors || o.nserial) && mon_open(&o, &o.mon) < 0) {
		io_restore_tty(io);
		report_err();
		mon_free(o.mon);
		disk_close_all();
		io_free(io);
		free_opts(&o);
		return 1;
	}
	io_set_monitor(io, o.mon);
	status = run_once(&o, io);
	if (status < 0 && o.accel_auto) {
		fprintf(stderr, "vm-run: KVM made no progress for %d s; starting again on the JIT\n",
			KVM_WATCHDOG_SECS);
		o.hw.accel = "jit";
		status = run_once(&o, io);
	}
	if (status < 0) {
		io_restore_tty(io);
		report("kvm: the guest made no progress for %d s (this KVM cannot run it); try -accel jit",
		       KVM_WATCHDOG_SECS);
		status = 1;
	}
	io_restore_tty(io);
	mon_free(o.mon);
	disk_close_all();
	io_free(io);
	free_opts(&o);
	if (o.pidfile)
		unlink(o.pidfile);
	return status;
}
