/*
 * vm-run's monitor: queries and the human layer -- query-pci (QEMU's
 * PciInfo from lib/hw's bus), query-chardev, send-key (QEMU's QKeyCode
 * names, as "qnum" codes into the i8042), memsave/pmemsave, set_link,
 * and the human commands only vm-run can run: info registers (QEMU's x86
 * cpu dump layout), x/xp/p through the machine, hostfwd_add/remove.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit/jit.h"
#include "mon-internal.h"

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

int mon_memsave(void *opaque, json_t *args, json_t **ret)
{
	return save_mem(opaque, args, false);
}

int mon_pmemsave(void *opaque, json_t *args, json_t **ret)
{
	return save_mem(opaque, args, true);
}

/* query-chardev: QEMU's labels (serial0.., virtiocon0, compat_monitor0,
 * qmp) with the back-end as given on the command line. */
static void add_chardev(json_t *a, const char *label, const char *spec)
{
	json_array_append_new(a, json_pack("{s:s, s:s, s:b}", "label", label,
					   "filename", spec, "frontend-open", 1));
}

int mon_query_chardev(void *opaque, json_t *args, json_t **ret)
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

int mon_set_link(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	int i = nic_find(mon->o, json_string_value(json_object_get(args, "name")));

	MACHINE(mon);
	if (i < 0)
		return i;
	return net_set_link(mon->m, i, json_is_true(json_object_get(args, "up")));
}

/* ---- query-pci ---- */

/* QEMU's names of PCI classes (base class << 8 | subclass). */
static const struct { uint16_t cls; const char *desc; } pci_classes[] = {
	{ 0x0100, "SCSI controller" }, { 0x0101, "IDE controller" },
	{ 0x0106, "SATA controller" }, { 0x0180, "Storage controller" },
	{ 0x0200, "Ethernet controller" }, { 0x0280, "Network controller" },
	{ 0x0300, "VGA controller" }, { 0x0380, "Display controller" },
	{ 0x0401, "Audio controller" }, { 0x0480, "Multimedia controller" },
	{ 0x0600, "Host bridge" }, { 0x0601, "ISA bridge" }, { 0x0604, "PCI bridge" },
	{ 0x0680, "Bridge" }, { 0x0700, "Serial port" },
	{ 0x0780, "Communication controller" }, { 0x0c03, "USB controller" },
	{ 0x00ff, "Unclassified device" },
};

static json_t *pci_regions(const struct hw_pci_info *p)
{
	json_t *a = json_array();

	for (int b = 0; b < 6; b++) {
		const struct hw_pci_bar *r = &p->bar[b];
		json_t *g;
		if (!r->size)
			continue;
		g = json_pack("{s:i, s:s, s:I, s:I}", "bar", b, "type", r->io ? "io" : "memory",
			      "address", (json_int_t)r->addr, "size", (json_int_t)r->size);
		if (!r->io) {
			json_object_set_new(g, "prefetch", json_boolean(r->prefetch));
			json_object_set_new(g, "mem_type_64", json_boolean(r->mem64));
		}
		json_array_append_new(a, g);
	}
	return a;
}

static json_t *pci_device(const struct hw_pci_info *p)
{
	json_t *cls = json_pack("{s:i}", "class", p->class_code);
	json_t *d;

	for (size_t i = 0; i < ARRAY_SIZE(pci_classes); i++)
		if (pci_classes[i].cls == p->class_code)
			json_object_set_new(cls, "desc", json_string(pci_classes[i].desc));
	d = json_pack("{s:i, s:i, s:i, s:o, s:{s:i, s:i, s:i, s:i}, s:i, s:s, s:o}",
		"bus", p->bus, "slot", p->slot, "function", p->function, "class_info", cls,
		"id", "device", p->device, "vendor", p->vendor, "subsystem", p->subsys,
		"subsystem-vendor", p->subsys_vendor, "irq_pin", p->irq_pin, "qdev_id", "",
		"regions", pci_regions(p));
	if (p->irq_pin)
		json_object_set_new(d, "irq", json_integer(p->irq));
	return d;
}

int mon_query_pci(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	struct hw_pci_info info[64];
	json_t *devs = json_array();
	int n;

	MACHINE(mon);
	n = machine_pci_list(mon->m, info, ARRAY_SIZE(info));
	for (int i = 0; i < n; i++)
		json_array_append_new(devs, pci_device(&info[i]));
	*ret = json_pack("[{s:i, s:o}]", "bus", 0, "devices", devs);
	return 0;
}

/* ---- send-key: QEMU's QKeyCode names and their "qnum" codes ---- */

static const struct { const char *name; uint16_t qnum; } qcodes[] = {
	{ "shift", 0x2a }, { "shift_r", 0x36 }, { "alt", 0x38 }, { "alt_r", 0xb8 },
	{ "ctrl", 0x1d }, { "ctrl_r", 0x9d }, { "menu", 0xdd }, { "esc", 0x01 },
	{ "1", 0x02 }, { "2", 0x03 }, { "3", 0x04 }, { "4", 0x05 }, { "5", 0x06 },
	{ "6", 0x07 }, { "7", 0x08 }, { "8", 0x09 }, { "9", 0x0a }, { "0", 0x0b },
	{ "minus", 0x0c }, { "equal", 0x0d }, { "backspace", 0x0e }, { "tab", 0x0f },
	{ "q", 0x10 }, { "w", 0x11 }, { "e", 0x12 }, { "r", 0x13 }, { "t", 0x14 },
	{ "y", 0x15 }, { "u", 0x16 }, { "i", 0x17 }, { "o", 0x18 }, { "p", 0x19 },
	{ "bracket_left", 0x1a }, { "bracket_right", 0x1b }, { "ret", 0x1c },
	{ "a", 0x1e }, { "s", 0x1f }, { "d", 0x20 }, { "f", 0x21 }, { "g", 0x22 },
	{ "h", 0x23 }, { "j", 0x24 }, { "k", 0x25 }, { "l", 0x26 }, { "semicolon", 0x27 },
	{ "apostrophe", 0x28 }, { "grave_accent", 0x29 }, { "backslash", 0x2b },
	{ "z", 0x2c }, { "x", 0x2d }, { "c", 0x2e }, { "v", 0x2f }, { "b", 0x30 },
	{ "n", 0x31 }, { "m", 0x32 }, { "comma", 0x33 }, { "dot", 0x34 }, { "slash", 0x35 },
	{ "asterisk", 0x37 }, { "spc", 0x39 }, { "caps_lock", 0x3a },
	{ "f1", 0x3b }, { "f2", 0x3c }, { "f3", 0x3d }, { "f4", 0x3e }, { "f5", 0x3f },
	{ "f6", 0x40 }, { "f7", 0x41 }, { "f8", 0x42 }, { "f9", 0x43 }, { "f10", 0x44 },
	{ "num_lock", 0x45 }, { "scroll_lock", 0x46 }, { "kp_divide", 0xb5 },
	{ "kp_multiply", 0x37 }, { "kp_subtract", 0x4a }, { "kp_add", 0x4e },
	{ "kp_enter", 0x9c }, { "kp_decimal", 0x53 }, { "sysrq", 0x54 },
	{ "kp_0", 0x52 }, { "kp_1", 0x4f }, { "kp_2", 0x50 }, { "kp_3", 0x51 },
	{ "kp_4", 0x4b }, { "kp_5", 0x4c }, { "kp_6", 0x4d }, { "kp_7", 0x47 },
	{ "kp_8", 0x48 }, { "kp_9", 0x49 }, { "less", 0x56 }, { "f11", 0x57 },
	{ "f12", 0x58 }, { "print", 0xb7 }, { "home", 0xc7 }, { "pgup", 0xc9 },
	{ "pgdn", 0xd1 }, { "end", 0xcf }, { "left", 0xcb }, { "up", 0xc8 },
	{ "down", 0xd0 }, { "right", 0xcd }, { "insert", 0xd2 }, { "delete", 0xd3 },
	{ "meta_l", 0xdb }, { "meta_r", 0xdc },
};

/* One KeyValue {"type": "qcode"|"number", "data": ...} to a qnum. */
static int key_value(json_t *k, uint16_t *qnum)
{
	const char *type = json_string_value(json_object_get(k, "type"));
	json_t *data = json_object_get(k, "data");

	if (!json_is_object(k) || !type || !data)
		return err_set(-EINVAL, "Invalid parameter type for 'keys', expected: KeyValue");
	if (!strcmp(type, "number")) {
		if (!json_is_integer(data) || json_integer_value(data) < 0 ||
		    json_integer_value(data) > 0xff)
			return err_set(-EINVAL, "Invalid parameter type for 'data', expected: integer");
		*qnum = json_integer_value(data);
		return 0;
	}
	if (strcmp(type, "qcode"))
		return err_set(-EINVAL, "Parameter 'type' does not accept value '%s'", type);
	for (size_t i = 0; json_is_string(data) && i < ARRAY_SIZE(qcodes); i++)
		if (!strcmp(qcodes[i].name, json_string_value(data))) {
			*qnum = qcodes[i].qnum;
			return 0;
		}
	return err_set(-EINVAL, "Parameter 'data' does not accept value '%s'",
		       json_is_string(data) ? json_string_value(data) : "?");
}

int mon_send_key(void *opaque, json_t *args, json_t **ret)
{
	struct vmrun_mon *mon = opaque;
	json_t *keys = json_object_get(args, "keys"), *hold = json_object_get(args, "hold-time");
	uint16_t qnum[16];
	size_t i;
	json_t *k;

	MACHINE(mon);
	if (json_array_size(keys) > ARRAY_SIZE(qnum))
		return err_set(-EINVAL, "too many keys");
	json_array_foreach(keys, i, k) {
		int r = key_value(k, &qnum[i]);
		if (r < 0)
			return r;
	}
	return machine_send_keys(mon->m, qnum, (int)json_array_size(keys),
				 hold ? (int)MIN(json_integer_value(hold), 60000) : 100);
}

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

const struct hmp_machine_ops mon_mach = {
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

int mon_hmp_info_registers(void *opaque, const struct hmp_args *a, struct hmp_out *o)
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

/* hostfwd_add/hostfwd_remove [netdev] RULE: a line to the NIC's vm-net
 * child (QEMU's optional hub id is not supported). */
int mon_hmp_hostfwd(void *opaque, const struct hmp_args *a, struct hmp_out *o)
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

int mon_hmp_info_mtree(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	struct vmrun_mon *mon = opaque;
	char *t;

	MACHINE(mon);
	if (!(t = machine_mtree(mon->m)))
		return err_set(-ENOMEM, "out of memory");
	hmp_printf(o, "%s", t);
	free(t);
	return 0;
}

int mon_hmp_info_network(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	struct vmrun_mon *mon = opaque;

	for (int i = 0; i < mon->o->nnics; i++) {
		char *t = net_describe(mon->o, i);

		hmp_printf(o, "%s", t);
		free(t);
	}
	return 0;
}

/* HMP "info jit": QEMU shows TCG's translation buffer and statistics;
 * these are lib/jit's, summed over the vCPUs. */
int mon_hmp_info_jit(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	struct vmrun_mon *mon = opaque;
	struct jit_stats t = { 0 }, s;
	int n = 0;

	MACHINE(mon);
	for (int i = 0; i < mon->o->hw.smp; i++) {
		struct jit_cpu *c = machine_jit_cpu(mon->m, i);

		if (!c)
			continue;
		jit_cpu_stats(c, &s);
		t.icount += s.icount, t.decodes += s.decodes, t.blocks += s.blocks;
		t.translated += s.translated, t.translated_runs += s.translated_runs;
		t.tlb_fills += s.tlb_fills, t.flushes += s.flushes;
		t.code_writes += s.code_writes;
		t.block_bytes += s.block_bytes, t.block_capacity += s.block_capacity;
		t.code_bytes += s.code_bytes, t.code_capacity += s.code_capacity;
		n++;
	}
	if (!n)
		return err_set(-ENOTSUP, "JIT information is only available with accel=tcg");
	hmp_printf(o, "Translation buffer state:\n");
	hmp_printf(o, "gen code size       %zu/%zu\n", t.code_bytes, t.code_capacity);
	hmp_printf(o, "TB count            %llu\n", (unsigned long long)t.translated);
	hmp_printf(o, "decoded blocks      %llu (%zu/%zu bytes)\n",
		   (unsigned long long)t.decodes, t.block_bytes, t.block_capacity);
	hmp_printf(o, "translator          %s\n", t.code_capacity ? "on" : "off (interpreter)");
	hmp_printf(o, "\nStatistics:\n");
	hmp_printf(o, "TB flush count      %llu\n", (unsigned long long)t.flushes);
	hmp_printf(o, "guest instructions  %llu\n", (unsigned long long)t.icount);
	hmp_printf(o, "block entries       %llu (%llu translated)\n",
		   (unsigned long long)t.blocks, (unsigned long long)t.translated_runs);
	hmp_printf(o, "TLB fills           %llu\n", (unsigned long long)t.tlb_fills);
	hmp_printf(o, "code pages written  %llu\n", (unsigned long long)t.code_writes);
	return 0;
}
