/*
 * QEMU's firmware configuration device (fw_cfg), so that SeaBIOS finds
 * what it needs: selector at port 0x510, data at 0x511, following QEMU's
 * docs/specs/fw_cfg.rst (traditional interface; no DMA).  Items: the
 * "QEMU" signature, the interface id, RAM size, CPU counts, and files
 * listed in the file directory (selector 0x19): etc/e820, etc/sercon-port
 * (SeaBIOS prints its screen on COM1), bootorder when given, and the
 * ACPI tables with their linker/loader script (acpi.c).
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define FW_MAX_ITEMS 32
#define FW_FILE_FIRST 0x20

struct fw_item { uint16_t key; uint8_t *data; uint32_t len; char name[56]; };

struct hw_fwcfg {
	struct machine *m;
	struct fw_item item[FW_MAX_ITEMS];
	int n, nfiles;
	uint16_t sel;
	uint32_t off;
};

static struct fw_item *find(struct hw_fwcfg *f, uint16_t key)
{
	for (int i = 0; i < f->n; i++)
		if (f->item[i].key == key)
			return &f->item[i];
	return NULL;
}

static void add(struct hw_fwcfg *f, uint16_t key, const void *data, uint32_t len, const char *name)
{
	struct fw_item *it;

	if (f->n >= FW_MAX_ITEMS)
		return;
	it = &f->item[f->n++];
	it->key = key;
	it->data = xmalloc(len ? len : 1);
	memcpy(it->data, data, len);
	it->len = len;
	snprintf(it->name, sizeof(it->name), "%s", name ? name : "");
}

static void add_u64(struct hw_fwcfg *f, uint16_t key, uint64_t v, unsigned size)
{
	uint8_t b[8];

	for (unsigned i = 0; i < size; i++)
		b[i] = v >> (8 * i);
	add(f, key, b, size, NULL);
}

void fwcfg_add_file(struct hw_fwcfg *f, const char *name, const void *data, uint32_t len)
{
	add(f, FW_FILE_FIRST + f->nfiles++, data, len, name);
}

/* The directory (selector 0x19), rebuilt from the files: big-endian. */
static void build_dir(struct hw_fwcfg *f)
{
	uint32_t len = 4 + 64 * f->nfiles;
	uint8_t *d = xzalloc(len);
	int k = 0;

	d[3] = f->nfiles;
	for (int i = 0; i < f->n; i++) {
		struct fw_item *it = &f->item[i];
		if (it->key < FW_FILE_FIRST)
			continue;
		uint8_t *e = d + 4 + 64 * k++;
		e[0] = it->len >> 24; e[1] = it->len >> 16; e[2] = it->len >> 8; e[3] = it->len;
		e[4] = it->key >> 8; e[5] = it->key;
		memcpy(e + 8, it->name, 56);
	}
	add(f, 0x19, d, len, NULL);
	free(d);
}

static uint64_t fw_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_fwcfg *f = opaque;
	struct fw_item *it;
	uint64_t v = 0;

	if (off != 1)
		return 0;
	it = find(f, f->sel);
	for (unsigned i = 0; i < size; i++, f->off++)
		if (it && f->off < it->len)
			v |= (uint64_t)it->data[f->off] << (8 * i);
	return v;
}

static void fw_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_fwcfg *f = opaque;

	if (off == 0 && size == 2) {
		f->sel = v;
		f->off = 0;
	}
}

static const struct hw_io_ops fw_io = { fw_read, fw_write };

static void fw_reset(void *dev)
{
	struct hw_fwcfg *f = dev;

	f->sel = 0;
	f->off = 0;
}

static void fw_save(void *dev, struct hw_wbuf *w)
{
	struct hw_fwcfg *f = dev;

	hw_put16(w, f->sel);
	hw_put32(w, f->off);
}

static int fw_load(void *dev, struct hw_rbuf *r)
{
	struct hw_fwcfg *f = dev;
	uint16_t sel = hw_get16(r);
	uint32_t off = hw_get32(r);

	if (r->err)
		return -EINVAL;
	f->sel = sel;
	f->off = off;
	return 0;
}

static void fw_free(void *dev)
{
	struct hw_fwcfg *f = dev;

	for (int i = 0; i < f->n; i++)
		free(f->item[i].data);
	free(f);
}

static const struct hw_dev_ops fw_ops = {
	.name = "fw_cfg", .version = 1, .reset = fw_reset,
	.save = fw_save, .load = fw_load, .free = fw_free,
};

int fwcfg_new(struct machine *m)
{
	struct hw_fwcfg *f = xzalloc(sizeof(*f));
	struct hw_e820 e[8];
	uint8_t buf[8 * 20], sercon[2] = { 0xf8, 0x03 };
	int n, r;

	f->m = m;
	add(f, 0x00, "QEMU", 4, NULL);
	add_u64(f, 0x01, 1, 4);
	add_u64(f, 0x03, m->ram_size, 8);
	add_u64(f, 0x05, m->ncpu, 2);
	add_u64(f, 0x0f, m->ncpu, 2);
	add_u64(f, 0x0d, 0, 8);
	add_u64(f, 0x0e, 0, 2);
	n = hw_e820(m, e, 8);
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (e[i].type != 1)
			continue;
		uint8_t *p = buf + 20 * k++;
		for (int b = 0; b < 8; b++) {
			p[b] = e[i].addr >> (8 * b);
			p[8 + b] = e[i].size >> (8 * b);
		}
		p[16] = 1; p[17] = p[18] = p[19] = 0;
	}
	fwcfg_add_file(f, "etc/e820", buf, 20 * k);
	if (m->cfg.serial[0].ops)
		fwcfg_add_file(f, "etc/sercon-port", sercon, 2);
	acpi_fwcfg_tables(m, f);
	build_dir(f);
	m->fwcfg = f;
	r = hw_dev_add(m, &fw_ops, f);
	return r < 0 ? r : hw_pio_add(m, 0x510, 2, &fw_io, f, "fw_cfg");
}
