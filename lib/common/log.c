/*
 * Logging: levels and the run-time debug categories of "-d cat1,cat2"
 * (QEMU's -d, plus our own categories for the block and NBD layers).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

unsigned log_mask;
enum log_level log_level = LOG_WARN;

const struct log_cat_name log_cat_names[] = {
	{ "guest_errors", LOG_GUEST_ERRORS, "log when the guest does something invalid" },
	{ "unimp", LOG_UNIMP, "log unimplemented functionality the guest touches" },
	{ "int", LOG_INT, "show interrupts and exceptions" },
	{ "cpu", LOG_CPU, "show CPU registers before entering a block" },
	{ "jit", LOG_JIT, "show translation of guest code" },
	{ "mmu", LOG_MMU, "log page walks and TLB flushes" },
	{ "ioport", LOG_IOPORT, "log port I/O" },
	{ "mmio", LOG_MMIO, "log MMIO accesses" },
	{ "virtio", LOG_VIRTIO, "log virtio device activity" },
	{ "pci", LOG_PCI, "log PCI configuration accesses" },
	{ "nbd", LOG_NBD, "log NBD protocol traffic" },
	{ "block", LOG_BLOCK, "log block layer and image format activity" },
	{ "net", LOG_NET, "log network back-end activity" },
	{ "qmp", LOG_QMP, "log monitor traffic" },
	{ "boot", LOG_BOOT, "log kernel and firmware loading" },
};
const size_t log_cat_count = ARRAY_SIZE(log_cat_names);

static void log_vprint(const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "%s: %s\n", report_progname(), line);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl > log_level)
		return;
	va_start(ap, fmt);
	log_vprint(fmt, ap);
	va_end(ap);
}

void log_cat_msg(unsigned cat, const char *fmt, ...)
{
	va_list ap;

	if (!(log_mask & cat))
		return;
	va_start(ap, fmt);
	log_vprint(fmt, ap);
	va_end(ap);
}

int log_parse_categories(const char *s, unsigned *mask)
{
	const char *p = s;
	unsigned m = 0;

	if (!strcmp(s, "help") || !strcmp(s, "?"))
		return 1;
	if (!*s)
		return err_set(-EINVAL, "empty list of debug categories");
	while (*p) {
		size_t len = strcspn(p, ",");
		size_t i;

		for (i = 0; i < log_cat_count; i++)
			if (strlen(log_cat_names[i].name) == len &&
			    !strncmp(p, log_cat_names[i].name, len))
				break;
		if (len == 0 || i == log_cat_count)
			return err_set(-EINVAL, "unknown debug category '%.*s' (try -d help)",
				       (int)len, p);
		m |= log_cat_names[i].cat;
		p += len;
		if (*p == ',' && *++p == 0)
			return err_set(-EINVAL, "empty debug category after ','");
	}
	*mask |= m;
	return 0;
}
