/*
 * The 8042's interrupt lines as an edge-triggered IOAPIC input sees them:
 * every byte of a multi-byte answer (GETID: FA AB xx) must raise its own
 * edge, as a real controller drops OBF on each read of port 0x60.  With
 * one edge per burst, Linux's atkbd probe times out and rescans forever.
 */
#include <string.h>

#include "common/common.h"
#include "hw/hw.h"
#include "hw/internal.h"
#include "unit.h"

#define IOAPIC 0xfec00000ull
#define LAPIC 0xfee00000ull

static void ioapic_route(struct machine *m, int gsi, int vector)
{
	hw_bus_mmio_write(m, 0, IOAPIC, 0x10 + 2 * gsi, 4);
	hw_bus_mmio_write(m, 0, IOAPIC + 0x10, vector, 4);     /* fixed, edge, unmasked */
	hw_bus_mmio_write(m, 0, IOAPIC, 0x11 + 2 * gsi, 4);
	hw_bus_mmio_write(m, 0, IOAPIC + 0x10, 0, 4);          /* APIC ID 0 */
}

int main(void)
{
	struct hw_config c = { .ram_size = 16u << 20, .smp = 1, .accel = "jit" };
	struct machine *m = NULL;
	int n = 0, vec;

	if (machine_new(&c, &m) < 0) {
		CHECK(0, "machine_new: %s", err_msg());
		return unit_done();
	}
	hw_bus_mmio_write(m, 0, LAPIC + 0xf0, 0x1ff, 4);       /* APIC software enable */
	ioapic_route(m, 1, 0x31);
	hw_bus_pio_out(m, 0x64, 0x60, 1);                      /* write command byte: */
	hw_bus_pio_out(m, 0x60, 0x01, 1);                      /* keyboard IRQ on, no translation */
	hw_bus_pio_out(m, 0x60, 0xf2, 1);                      /* keyboard GETID */
	while ((vec = hw_bus_irq_ack(m, 0)) == 0x31 && n < 8) {
		uint32_t b = hw_bus_pio_in(m, 0x60, 1);

		printf("# byte %d: 0x%02x\n", n, b);
		n++;
		hw_bus_mmio_write(m, 0, LAPIC + 0xb0, 0, 4);   /* EOI */
	}
	CHECK(n == 3, "each of GETID's three answer bytes raised an interrupt (got %d)", n);
	CHECK(hw_bus_pio_in(m, 0x64, 1) % 2 == 0, "nothing left in the output buffer");
	machine_free(m);
	return unit_done();
}
