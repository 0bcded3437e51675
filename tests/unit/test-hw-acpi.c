/*
 * lib/hw ACPI tables as a direct kernel boot leaves them in guest RAM:
 * the RSDP is where an OS scans for it, every table's checksum holds,
 * the RSDT lists the FADT and the MADT, the FADT points at the PM
 * registers, the FACS and the DSDT, the MADT has one local APIC per vCPU
 * and the IOAPIC, and the DSDT carries \_S5 and the PCI root bridge.
 * With ACPI_DUMP=FILE the DSDT is written out (for iasl -d).
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"
#include "unit.h"

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static int sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

static bool has(const uint8_t *p, size_t n, const char *what, size_t wl)
{
	return memmem(p, n, what, wl) != NULL;
}

int main(void)
{
	const char *kernel = getenv("HW_TEST_KERNEL");
	struct hw_config c = { .ram_size = 64u << 20, .smp = 3, .accel = "jit",
			       .kernel = kernel ? kernel : "o/rel/tests/guest/hw-hello.elf" };
	struct machine *m;

	if (machine_new(&c, &m) < 0) {
		CHECK(0, "machine_new: %s", err_msg());
		return unit_done();
	}
	uint8_t *rsdp = hw_ram_ptr(m, m->rsdp_addr, 20);
	CHECK(m->rsdp_addr >= 0xe0000 && m->rsdp_addr < 0x100000 && !(m->rsdp_addr & 15),
	      "RSDP in the BIOS area on a 16-byte boundary");
	CHECK(!memcmp(rsdp, "RSD PTR ", 8) && sum(rsdp, 20) == 0, "RSDP signature and checksum");
	uint8_t *rsdt = hw_ram_ptr(m, rd32(rsdp + 16), 44);
	CHECK(rsdt && !memcmp(rsdt, "RSDT", 4) && sum(rsdt, rd32(rsdt + 4)) == 0, "RSDT checksum");
	uint8_t *fadt = hw_ram_ptr(m, rd32(rsdt + 36), 116);
	uint8_t *madt = hw_ram_ptr(m, rd32(rsdt + 40), 44);
	CHECK(fadt && !memcmp(fadt, "FACP", 4) && sum(fadt, rd32(fadt + 4)) == 0, "FADT checksum");
	CHECK(rd32(fadt + 56) == 0x600 && rd32(fadt + 64) == 0x604 && rd32(fadt + 76) == 0x608,
	      "FADT: PM1a event, control and timer blocks");
	uint8_t *facs = hw_ram_ptr(m, rd32(fadt + 36), 64);
	CHECK(facs && !memcmp(facs, "FACS", 4) && !(rd32(fadt + 36) & 63), "FACS, 64-byte aligned");
	uint8_t *dsdt = hw_ram_ptr(m, rd32(fadt + 40), 36);
	uint32_t dl = dsdt ? rd32(dsdt + 4) : 0;
	dsdt = hw_ram_ptr(m, rd32(fadt + 40), dl);
	CHECK(dsdt && !memcmp(dsdt, "DSDT", 4) && sum(dsdt, dl) == 0, "DSDT checksum (%u bytes)", dl);
	CHECK(dsdt && has(dsdt, dl, "_S5_", 4) && has(dsdt, dl, "PCI0", 4) && has(dsdt, dl, "_PRT", 4),
	      "DSDT has \\_S5, \\_SB.PCI0 and its _PRT");
	/* the root bridge's windows: the config ports (IO descriptor) and
	 * the PCI hole up to 0xfebfffff (DWordMemory) */
	CHECK(dsdt && has(dsdt, dl, "_CRS", 4) &&
	      has(dsdt, dl, (const char[]){ 0x47, 1, (char)0xf8, 0x0c, (char)0xf8, 0x0c, 1, 8 }, 8) &&
	      has(dsdt, dl, (const char[]){ (char)0xff, (char)0xff, (char)0xbf, (char)0xfe }, 4),
	      "DSDT gives PCI0 a _CRS with the config ports and the PCI hole");
	CHECK(madt && !memcmp(madt, "APIC", 4) && sum(madt, rd32(madt + 4)) == 0, "MADT checksum");
	int cpus = 0, ioapics = 0;
	for (uint32_t o = 44; madt && o + 2 <= rd32(madt + 4); o += madt[o + 1]) {
		cpus += madt[o] == 0;
		ioapics += madt[o] == 1;
		if (!madt[o + 1])
			break;
	}
	CHECK(cpus == 3 && ioapics == 1, "MADT: 3 local APICs and 1 IOAPIC (%d, %d)", cpus, ioapics);
	const char *dump = getenv("ACPI_DUMP");
	if (dump && dsdt) {
		FILE *f = fopen(dump, "wb");
		if (f) {
			fwrite(dsdt, 1, dl, f);
			fclose(f);
		}
	}
	machine_free(m);
	return unit_done();
}
