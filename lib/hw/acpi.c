/*
 * ACPI: the PIIX4 power-management registers (PM1 event and control
 * blocks at 0x600 and 0x604, the 24-bit 3.579545 MHz PM timer at 0x608,
 * SCI on ISA IRQ 9) and the tables that describe the machine: RSDP,
 * RSDT, FADT (ACPI 1.0 layout, fixed-feature power button), FACS, MADT
 * (one local APIC per vCPU, the IOAPIC, IRQ 0 -> GSI 2 and SCI overrides,
 * LINT1 NMI) and a DSDT holding the \_S5 sleep package.  Follows the
 * ACPI specification 6.x, chapters 4 (PM registers) and 5 (tables).
 * Writing SLP_EN with the _S5 type ends the run (soft-off).
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define PM_BASE 0x600
#define SCI_IRQ 9
#define PM_TIMER_HZ 3579545ll
#define SLP_TYP_S5 0

struct hw_acpi {
	struct machine *m;
	uint16_t sts, en, cnt;
	uint8_t apm[2];	/* APM control and status (0xb2, 0xb3); no SMM behind them */
};

static void update_sci(struct hw_acpi *a)
{
	hw_set_irq(a->m, SCI_IRQ, (a->sts & a->en & 0x0521) != 0);
}

static uint64_t pm_read(void *opaque, uint64_t off, unsigned size)
{
	struct hw_acpi *a = opaque;
	uint64_t v = a->sts | (uint64_t)a->en << 16 | (uint64_t)a->cnt << 32;

	return v >> (8 * off);
}

/* The PM timer: the host's clock alone, read without the machine lock. */
static uint64_t pm_timer_read(void *opaque, uint64_t off, unsigned size)
{
	uint64_t v = (uint64_t)((__int128)hw_clock_ns() * PM_TIMER_HZ / 1000000000) & 0xffffff;

	return v >> (8 * off);
}

static void pm_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct hw_acpi *a = opaque;

	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b = v >> (8 * i);
		switch (o) {
		case 0: a->sts &= ~b; break;
		case 1: a->sts &= ~(b << 8); break;
		case 2: a->en = (a->en & 0xff00) | b; break;
		case 3: a->en = (a->en & 0x00ff) | b << 8; break;
		case 4: a->cnt = (a->cnt & 0xff00) | b | 1; break;
		case 5:
			a->cnt = (a->cnt & 0x00ff) | (b & ~0x20) << 8;
			if ((b & 0x20) && ((b >> 2) & 7) == SLP_TYP_S5) {
				LOG(LOG_BOOT, "ACPI: soft-off");
				hw_request_poweroff(a->m);
			}
			break;
		}
	}
	update_sci(a);
}

static const struct hw_io_ops pm_io = { pm_read, pm_write };
static const struct hw_io_ops pm_timer_io = { pm_timer_read, NULL };

static uint64_t apm_read(void *opaque, uint64_t off, unsigned size)
{
	return ((struct hw_acpi *)opaque)->apm[off & 1];
}

static void apm_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	((struct hw_acpi *)opaque)->apm[off & 1] = v;
}

static const struct hw_io_ops apm_io = { apm_read, apm_write };

void machine_powerdown(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	if (m->acpi) {
		m->acpi->sts |= 0x100;		/* PWRBTN_STS */
		update_sci(m->acpi);
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- tables ---- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = v >> (8 * i);
}

static void checksum(uint8_t *p, size_t len, size_t at)
{
	uint8_t s = 0;

	p[at] = 0;
	for (size_t i = 0; i < len; i++)
		s += p[i];
	p[at] = -s;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le(t + 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, "VMRUN ", 6);
	memcpy(t + 16, "VMRUNPC ", 8);
	put_le(t + 24, 1, 4);
	memcpy(t + 28, "VMRN", 4);
	put_le(t + 32, 1, 4);
}

static size_t build_madt(struct machine *m, uint8_t *t)
{
	size_t n = 44;

	put_le(t + 36, 0xfee00000, 4);
	put_le(t + 40, 1, 4);			/* PCAT_COMPAT: there are 8259s */
	for (int i = 0; i < m->ncpu; i++, n += 8) {
		t[n] = 0; t[n + 1] = 8; t[n + 2] = i; t[n + 3] = i;
		put_le(t + n + 4, 1, 4);
	}
	t[n] = 1; t[n + 1] = 12; t[n + 2] = 0;
	put_le(t + n + 4, 0xfec00000, 4);
	put_le(t + n + 8, 0, 4);
	n += 12;
	t[n] = 2; t[n + 1] = 10; t[n + 2] = 0; t[n + 3] = 0;	/* IRQ0 -> GSI2 */
	put_le(t + n + 4, 2, 4);
	put_le(t + n + 8, 0, 2);
	n += 10;
	t[n] = 2; t[n + 1] = 10; t[n + 2] = 0; t[n + 3] = SCI_IRQ;
	put_le(t + n + 4, SCI_IRQ, 4);
	put_le(t + n + 8, 0x000d, 2);		/* level, active high */
	n += 10;
	t[n] = 4; t[n + 1] = 6; t[n + 2] = 0xff;		/* LINT1 is NMI */
	put_le(t + n + 3, 0, 2);
	t[n + 5] = 1;
	n += 6;
	header(t, "APIC", n, 1);
	checksum(t, n, 9);
	return n;
}

static size_t build_fadt(uint8_t *t, uint32_t facs, uint32_t dsdt)
{
	header(t, "FACP", 116, 1);
	put_le(t + 36, facs, 4);
	put_le(t + 40, dsdt, 4);
	put_le(t + 46, SCI_IRQ, 2);
	put_le(t + 56, PM_BASE, 4);
	put_le(t + 64, PM_BASE + 4, 4);
	put_le(t + 76, PM_BASE + 8, 4);
	t[88] = 4; t[89] = 2; t[91] = 4;
	put_le(t + 96, 0xfff, 2);
	put_le(t + 98, 0xfff, 2);
	t[108] = 0x32;				/* RTC century register */
	put_le(t + 112, 1 | 4 | 0x20, 4);	/* WBINVD, PROC_C1, no sleep button */
	checksum(t, 116, 9);
	return 116;
}

static size_t build_dsdt(uint8_t *t, const struct hw_wbuf *aml)
{
	size_t n = 36 + aml->len;

	memcpy(t + 36, aml->p, aml->len);
	header(t, "DSDT", n, 1);
	checksum(t, n, 9);
	return n;
}

/* Layout of the tables, as offsets from the RSDP. */
enum { T_RSDP = 0, T_RSDT = 0x40, T_FACS = 0x80, T_FADT = 0x100, T_MADT = 0x200, T_DSDT = 0x500 };
#define T_DSDT_MAX 0x2000
#define T_SIZE (T_DSDT + T_DSDT_MAX)

/* Build every table into base, as if base sat at guest address addr. */
static size_t build_all(struct machine *m, uint8_t *base, uint32_t addr)
{
	struct hw_wbuf aml = { 0 };
	size_t dsdt_len;
	uint8_t *t;

	memset(base, 0, T_SIZE);
	acpi_dsdt_aml(&aml, m->lowmem);
	if (36 + aml.len > T_DSDT_MAX) {
		free(aml.p);
		return 0;
	}
	dsdt_len = build_dsdt(base + T_DSDT, &aml);
	free(aml.p);
	t = base + T_FACS;
	memcpy(t, "FACS", 4);
	put_le(t + 4, 64, 4);
	build_fadt(base + T_FADT, addr + T_FACS, addr + T_DSDT);
	build_madt(m, base + T_MADT);
	t = base + T_RSDT;
	put_le(t + 36, addr + T_FADT, 4);
	put_le(t + 40, addr + T_MADT, 4);
	header(t, "RSDT", 44, 1);
	checksum(t, 44, 9);
	t = base;
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, "VMRUN ", 6);
	t[15] = 0;
	put_le(t + 16, addr + T_RSDT, 4);
	checksum(t, 20, 8);
	return T_DSDT + dsdt_len;
}

int acpi_build_tables(struct machine *m, uint64_t addr, uint64_t room)
{
	uint8_t *base = hw_ram_ptr(m, addr, room);

	if (!base || room < T_SIZE || addr + room > 0x100000000ull)
		return err_set(-EINVAL, "no room for the ACPI tables");
	if (!build_all(m, base, addr))
		return err_set(-EOVERFLOW, "the DSDT outgrew its room");
	m->rsdp_addr = addr;
	return 0;
}

/* ---- QEMU's linker/loader script for firmware (docs/specs/acpi... and
 * SeaBIOS romfile_loader): 128-byte commands ---- */

static uint8_t *loader_cmd(uint8_t *script, int *n, uint32_t cmd)
{
	uint8_t *c = script + 128 * (*n)++;

	put_le(c, cmd, 4);
	return c + 4;
}

static void loader_pointer(uint8_t *s, int *n, const char *dst, uint32_t off)
{
	uint8_t *c = loader_cmd(s, n, 2);

	strcpy((char *)c, dst);
	strcpy((char *)c + 56, "etc/acpi/tables");
	put_le(c + 112, off, 4);
	c[116] = 4;
}

static void loader_checksum(uint8_t *s, int *n, const char *file, uint32_t start, uint32_t len)
{
	uint8_t *c = loader_cmd(s, n, 3);

	strcpy((char *)c, file);
	put_le(c + 56, start + (strcmp(file, "etc/acpi/rsdp") ? 9 : 8), 4);
	put_le(c + 60, start, 4);
	put_le(c + 64, len, 4);
}

void acpi_fwcfg_tables(struct machine *m, struct hw_fwcfg *f)
{
	uint8_t *buf = xzalloc(T_SIZE), script[128 * 16] = { 0 }, *c;
	int n = 0;
	uint32_t tab = T_RSDT;		/* the tables file starts at the RSDT */
	size_t size = build_all(m, buf, (uint32_t)-tab);

	if (!size) {
		free(buf);
		return;
	}
	c = loader_cmd(script, &n, 1);
	strcpy((char *)c, "etc/acpi/rsdp");
	put_le(c + 56, 16, 4);
	c[60] = 2;			/* FSEG */
	c = loader_cmd(script, &n, 1);
	strcpy((char *)c, "etc/acpi/tables");
	put_le(c + 56, 64, 4);
	c[60] = 1;			/* HIGH */
	loader_pointer(script, &n, "etc/acpi/tables", T_FADT - tab + 36);
	loader_pointer(script, &n, "etc/acpi/tables", T_FADT - tab + 40);
	loader_pointer(script, &n, "etc/acpi/tables", T_RSDT - tab + 36);
	loader_pointer(script, &n, "etc/acpi/tables", T_RSDT - tab + 40);
	loader_pointer(script, &n, "etc/acpi/rsdp", 16);
	loader_checksum(script, &n, "etc/acpi/tables", T_FADT - tab, 116);
	loader_checksum(script, &n, "etc/acpi/tables", T_RSDT - tab, 44);
	loader_checksum(script, &n, "etc/acpi/rsdp", 0, 20);
	fwcfg_add_file(f, "etc/acpi/rsdp", buf, 20);
	fwcfg_add_file(f, "etc/acpi/tables", buf + tab, size - tab);
	fwcfg_add_file(f, "etc/table-loader", script, 128 * n);
	free(buf);
}

/* ---- device ---- */

static void acpi_reset(void *dev)
{
	struct hw_acpi *a = dev;

	a->sts = a->en = 0;
	a->cnt = 1;		/* SCI_EN: ACPI mode from the start, no SMI_CMD */
	update_sci(a);
}

static void acpi_save(void *dev, struct hw_wbuf *w)
{
	struct hw_acpi *a = dev;

	hw_put16(w, a->sts);
	hw_put16(w, a->en);
	hw_put16(w, a->cnt);
	hw_put8(w, a->apm[0]);
	hw_put8(w, a->apm[1]);
}

static int acpi_load(void *dev, struct hw_rbuf *r)
{
	struct hw_acpi *a = dev;
	uint16_t sts = hw_get16(r), en = hw_get16(r), cnt = hw_get16(r);
	uint8_t apm0 = hw_get8(r), apm1 = hw_get8(r);

	if (r->err)
		return -EINVAL;
	a->sts = sts;
	a->en = en;
	a->cnt = (cnt & ~0x2000) | 1;
	a->apm[0] = apm0;
	a->apm[1] = apm1;
	update_sci(a);
	return 0;
}

static void acpi_free(void *dev) { free(dev); }

static const struct hw_dev_ops acpi_ops = {
	.name = "acpi-pm", .version = 1, .reset = acpi_reset,
	.save = acpi_save, .load = acpi_load, .free = acpi_free,
};

int acpi_new(struct machine *m)
{
	struct hw_acpi *a = xzalloc(sizeof(*a));
	int r;

	a->m = m;
	a->cnt = 1;
	m->acpi = a;
	r = hw_dev_add(m, &acpi_ops, a);
	r = r < 0 ? r : hw_pio_add(m, 0xb2, 2, &apm_io, a, "apm");
	r = r < 0 ? r : hw_pio_add(m, PM_BASE, 8, &pm_io, a, "acpi-pm");
	return r < 0 ? r : hw_pio_add_unlocked(m, PM_BASE + 8, 4, &pm_timer_io, a, "acpi-pm-timer");
}
