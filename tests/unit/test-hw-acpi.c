/*
 * lib/hw ACPI tables as a direct kernel boot leaves them in guest RAM:
 * the RSDP is where an OS scans for it, every table's checksum holds,
 * the RSDT lists the FADT and the MADT, the FADT points at the PM
 * registers, the FACS and the DSDT, the MADT has one local APIC per vCPU
 * and the IOAPIC, and the DSDT carries \_S5 and the PCI root bridge.
 * The PM timer reads without the machine lock: a thread reads it while
 * another holds the lock (a guest polling it does not hold up the
 * threads that complete its I/O).
 * With ACPI_DUMP=FILE the DSDT is written out (for iasl -d).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

struct timer_read {
	struct machine *m;
	pthread_mutex_t lock;	/* not the machine's */
	pthread_cond_t cond;
	uint32_t t[2];
	bool done;
};

static void *read_timer(void *arg)
{
	struct timer_read *r = arg;
	struct timespec ms = { 0, 1000000 };

	r->t[0] = hw_bus_pio_in(r->m, 0x608, 4);
	nanosleep(&ms, NULL);
	r->t[1] = hw_bus_pio_in(r->m, 0x608, 4);
	pthread_mutex_lock(&r->lock);
	r->done = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Read the PM timer on another thread while this one holds the machine
 * lock; the generous deadline only tells a blocked reader from one that
 * finished (a blocked one finishes after the unlock, and is joined). */
static void check_timer_unlocked(struct machine *m)
{
	struct timer_read r = { .m = m };
	struct timespec until;
	pthread_t t;

	pthread_mutex_init(&r.lock, NULL);
	pthread_cond_init(&r.cond, NULL);
	pthread_mutex_lock(&m->lock);
	if (pthread_create(&t, NULL, read_timer, &r)) {
		pthread_mutex_unlock(&m->lock);
		CHECK(0, "cannot start a thread");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&r.lock);
	while (!r.done && pthread_cond_timedwait(&r.cond, &r.lock, &until) == 0)
		;
	bool done = r.done;
	pthread_mutex_unlock(&r.lock);
	pthread_mutex_unlock(&m->lock);
	pthread_join(t, NULL);
	CHECK(done, "the PM timer reads while another thread holds the machine lock");
	CHECK(r.t[0] <= 0xffffff && r.t[1] <= 0xffffff && ((r.t[1] - r.t[0]) & 0xffffff) >= 3000,
	      "PM timer: 24 bits, 1 ms later 3579 ticks on (%u, %u)", r.t[0], r.t[1]);
	CHECK((hw_bus_pio_in(m, 0x604, 2) & 1) == 1, "PM1 control still reads (SCI_EN)");
	pthread_mutex_destroy(&r.lock);
	pthread_cond_destroy(&r.cond);
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
	check_timer_unlocked(m);
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
