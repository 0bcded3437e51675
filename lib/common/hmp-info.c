/*
 * "info" subcommands: each formats the reply of the QMP query QEMU
 * answers it with (query-status, query-version, query-block, query-pci,
 * ...) in the layout QEMU's human monitor prints (QEMU user manual,
 * "QEMU Monitor", info).  Missing members print as QEMU prints absent
 * ones: nothing, or 0 for counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common.h"

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static int64_t jint(json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

static bool jbool(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

int hmp_fmt_status(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	bool running = jbool(r, "running");
	const char *status = jstr(r, "status");

	hmp_printf(o, "VM status: %s%s", running ? "running" : "paused",
		   jbool(r, "singlestep") ? " (single step mode)" : "");
	if (!running && *status && strcmp(status, "paused"))
		hmp_printf(o, " (%s)", status);
	hmp_printf(o, "\n");
	return 0;
}

int hmp_fmt_version(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	json_t *q = json_object_get(r, "qemu");

	hmp_printf(o, "%" PRId64 ".%" PRId64 ".%" PRId64 "%s\n", jint(q, "major"),
		   jint(q, "minor"), jint(q, "micro"), jstr(r, "package"));
	return 0;
}

int hmp_fmt_name(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	if (json_object_get(r, "name"))
		hmp_printf(o, "%s\n", jstr(r, "name"));
	return 0;
}

int hmp_fmt_kvm(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	hmp_printf(o, "kvm support: %s\n", !jbool(r, "present") ? "not compiled" :
		   jbool(r, "enabled") ? "enabled" : "disabled");
	return 0;
}

int hmp_fmt_cpus(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	size_t i;
	json_t *c;

	json_array_foreach(r, i, c) {
		hmp_printf(o, "%c CPU #%" PRId64 ":", i == 0 ? '*' : ' ', jint(c, "cpu-index"));
		hmp_printf(o, " thread_id=%" PRId64 "\n", jint(c, "thread-id"));
	}
	return 0;
}

int hmp_fmt_chardev(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	size_t i;
	json_t *c;

	json_array_foreach(r, i, c)
		hmp_printf(o, "%s: filename=%s\n", jstr(c, "label"), jstr(c, "filename"));
	return 0;
}

int hmp_fmt_blockstats(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	static const char *const keys[] = {
		"rd_bytes", "wr_bytes", "rd_operations", "wr_operations",
		"flush_operations", "wr_total_time_ns", "rd_total_time_ns",
		"flush_total_time_ns", "rd_merged", "wr_merged", "idle_time_ns",
	};
	size_t i;
	json_t *d;

	json_array_foreach(r, i, d) {
		json_t *st = json_object_get(d, "stats");

		hmp_printf(o, "%s:", *jstr(d, "device") ? jstr(d, "device") : jstr(d, "node-name"));
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
			hmp_printf(o, " %s=%" PRId64, keys[k], jint(st, keys[k]));
		hmp_printf(o, "\n");
	}
	return 0;
}

static void block_inserted(json_t *in, struct hmp_out *o)
{
	json_t *cache = json_object_get(in, "cache");
	const char *dz = jstr(in, "detect_zeroes");

	hmp_printf(o, "    Cache mode:       %s%s%s\n",
		   jbool(cache, "writeback") ? "writeback" : "writethrough",
		   jbool(cache, "direct") ? ", direct" : "",
		   jbool(cache, "no-flush") ? ", ignore flushes" : "");
	if (json_object_get(in, "backing_file"))
		hmp_printf(o, "    Backing file:     %s (chain depth: %" PRId64 ")\n",
			   jstr(in, "backing_file"), jint(in, "backing_file_depth"));
	if (*dz && strcmp(dz, "off"))
		hmp_printf(o, "    Detect zeroes:    %s\n", dz);
	if (jint(in, "bps") || jint(in, "bps_rd") || jint(in, "bps_wr") ||
	    jint(in, "iops") || jint(in, "iops_rd") || jint(in, "iops_wr"))
		hmp_printf(o, "    I/O throttling:   bps=%" PRId64 " bps_rd=%" PRId64
			   " bps_wr=%" PRId64 " iops=%" PRId64 " iops_rd=%" PRId64
			   " iops_wr=%" PRId64 "\n", jint(in, "bps"), jint(in, "bps_rd"),
			   jint(in, "bps_wr"), jint(in, "iops"), jint(in, "iops_rd"),
			   jint(in, "iops_wr"));
}

/* info block [device]: one paragraph per device, a blank line between. */
int hmp_fmt_block(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	const char *want = hmp_arg(a, "device");
	bool first = true;
	size_t i;
	json_t *d;

	json_array_foreach(r, i, d) {
		json_t *in = json_object_get(d, "inserted");
		const char *io = jstr(d, "io-status");

		if (want && strcmp(want, jstr(d, "device")))
			continue;
		hmp_printf(o, "%s", first ? "" : "\n");
		first = false;
		if (in)
			hmp_printf(o, "%s (%s): %s (%s%s%s)\n", jstr(d, "device"),
				   jstr(in, "node-name"), jstr(in, "file"), jstr(in, "drv"),
				   jbool(in, "ro") ? ", read-only" : "",
				   jbool(in, "encrypted") ? ", encrypted" : "");
		else
			hmp_printf(o, "%s: [not inserted]\n", jstr(d, "device"));
		if (json_object_get(d, "qdev"))
			hmp_printf(o, "    Attached to:      %s\n", jstr(d, "qdev"));
		if (jbool(d, "removable"))
			hmp_printf(o, "    Removable device: %slocked, tray %s\n",
				   jbool(d, "locked") ? "" : "not ",
				   jbool(d, "tray_open") ? "open" : "closed");
		if (*io && strcmp(io, "ok"))
			hmp_printf(o, "    I/O status:       %s\n", io);
		if (in)
			block_inserted(in, o);
	}
	if (want && first)
		return err_set(-ENODEV, "Device '%s' not found", want);
	return 0;
}

static void pci_regions(json_t *regions, struct hmp_out *o)
{
	size_t i;
	json_t *g;

	json_array_foreach(regions, i, g) {
		uint64_t addr = (uint64_t)jint(g, "address"), size = (uint64_t)jint(g, "size");

		if (!strcmp(jstr(g, "type"), "io"))
			hmp_printf(o, "      BAR%" PRId64 ": I/O at 0x%04" PRIx64 " [0x%04" PRIx64 "].\n",
				   jint(g, "bar"), addr, addr + size - 1);
		else
			hmp_printf(o, "      BAR%" PRId64 ": %d bit%s memory at 0x%08" PRIx64
				   " [0x%08" PRIx64 "].\n", jint(g, "bar"),
				   jbool(g, "mem_type_64") ? 64 : 32,
				   jbool(g, "prefetch") ? " prefetchable" : "", addr, addr + size - 1);
	}
}

static void pci_devices(json_t *devs, struct hmp_out *o, int depth);

static void pci_bridge(json_t *br, struct hmp_out *o)
{
	json_t *bus = json_object_get(br, "bus");
	json_t *io = json_object_get(bus, "io_range");
	json_t *mem = json_object_get(bus, "memory_range");
	json_t *pf = json_object_get(bus, "prefetchable_range");

	hmp_printf(o, "      BUS %" PRId64 ".\n", jint(bus, "number"));
	hmp_printf(o, "      secondary bus %" PRId64 ".\n", jint(bus, "secondary"));
	hmp_printf(o, "      subordinate bus %" PRId64 ".\n", jint(bus, "subordinate"));
	hmp_printf(o, "      IO range [0x%04" PRIx64 ", 0x%04" PRIx64 "]\n",
		   (uint64_t)jint(io, "base"), (uint64_t)jint(io, "limit"));
	hmp_printf(o, "      memory range [0x%08" PRIx64 ", 0x%08" PRIx64 "]\n",
		   (uint64_t)jint(mem, "base"), (uint64_t)jint(mem, "limit"));
	hmp_printf(o, "      prefetchable memory range [0x%08" PRIx64 ", 0x%08" PRIx64 "]\n",
		   (uint64_t)jint(pf, "base"), (uint64_t)jint(pf, "limit"));
}

static void pci_devices(json_t *devs, struct hmp_out *o, int depth)
{
	size_t i;
	json_t *d;

	json_array_foreach(devs, i, d) {
		json_t *cls = json_object_get(d, "class_info"), *id = json_object_get(d, "id");

		hmp_printf(o, "  Bus %2" PRId64 ", device %3" PRId64 ", function %" PRId64 ":\n",
			   jint(d, "bus"), jint(d, "slot"), jint(d, "function"));
		if (json_object_get(cls, "desc"))
			hmp_printf(o, "    %s", jstr(cls, "desc"));
		else
			hmp_printf(o, "    Class %04" PRId64, jint(cls, "class"));
		hmp_printf(o, ": PCI device %04" PRIx64 ":%04" PRIx64 "\n",
			   (uint64_t)jint(id, "vendor"), (uint64_t)jint(id, "device"));
		if (json_object_get(id, "subsystem-vendor"))
			hmp_printf(o, "      PCI subsystem %04" PRIx64 ":%04" PRIx64 "\n",
				   (uint64_t)jint(id, "subsystem-vendor"), (uint64_t)jint(id, "subsystem"));
		if (json_object_get(d, "irq"))
			hmp_printf(o, "      IRQ %" PRId64 ", pin %c\n", jint(d, "irq"),
				   (char)(jint(d, "irq_pin") - 1 + 'A'));
		if (json_object_get(d, "pci_bridge"))
			pci_bridge(json_object_get(d, "pci_bridge"), o);
		pci_regions(json_object_get(d, "regions"), o);
		hmp_printf(o, "      id \"%s\"\n", jstr(d, "qdev_id"));
		if (json_object_get(d, "pci_bridge") && depth < 8)
			pci_devices(json_object_get(json_object_get(d, "pci_bridge"), "devices"),
				    o, depth + 1);
	}
}

int hmp_fmt_pci(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	size_t i;
	json_t *bus;

	json_array_foreach(r, i, bus)
		pci_devices(json_object_get(bus, "devices"), o, 0);
	return 0;
}

/* The reply of human-monitor-command: QEMU's text with "\r\n" line ends.
 * A command that failed says so in the text, "Error: why" as QEMU
 * prints it: that becomes the command's error. */
int hmp_fmt_text(const struct hmp_args *a, json_t *r, struct hmp_out *o)
{
	const char *s = json_string_value(r);

	if (s && !strncmp(s, "Error: ", 7))
		return err_set(-EREMOTEIO, "%.*s", (int)strcspn(s + 7, "\r\n"), s + 7);

	while (s && *s) {
		size_t n = strcspn(s, "\r");

		hmp_printf(o, "%.*s", (int)n, s);
		s += n;
		if (*s == '\r' && s[1] != '\n')
			hmp_printf(o, "\r");
		if (*s)
			s++;
	}
	return 0;
}
