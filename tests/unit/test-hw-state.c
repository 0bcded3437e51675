/*
 * lib/hw device state: every device's section survives a save/load round
 * trip byte for byte, and truncated or corrupted streams are refused
 * (never a crash) with the machine left usable.
 */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "common/common.h"
#include "hw/hw.h"
#include "unit.h"

static void nop_write(void *o, const uint8_t *b, size_t n) { }
static const struct hw_char_ops nop_char = { nop_write };

static int mem_read(void *o, void *buf, uint64_t off, size_t len)
{
	memset(buf, 0, len);
	return 0;
}

static int mem_write(void *o, const void *buf, uint64_t off, size_t len) { return 0; }
static const struct hw_block_ops mem_blk = { mem_read, mem_write, NULL };
static void nop_send(void *o, const uint8_t *f, size_t n) { }
static const struct hw_net_ops nop_net = { nop_send };

static struct machine *new_machine(const char *kernel)
{
	/* kernel NULL: SeaBIOS, which brings fw_cfg along */
	struct hw_config c = { .ram_size = 64u << 20, .smp = 2, .accel = "jit",
			       .kernel = kernel, .debug_exit_port = 0xf4, .debug_exit_size = 4,
			       .rng = true };
	struct machine *m = NULL;

	c.serial[0] = (struct hw_char_backend){ &nop_char, NULL };
	c.serial[1] = (struct hw_char_backend){ &nop_char, NULL };
	c.virtcon = (struct hw_char_backend){ &nop_char, NULL };
	c.disks[0] = (struct hw_disk){ .ops = &mem_blk, .size = 1 << 20, .iface = HW_IF_VIRTIO };
	c.disks[1] = (struct hw_disk){ .ops = &mem_blk, .size = 1 << 20, .iface = HW_IF_IDE, .index = 0 };
	c.disks[2] = (struct hw_disk){ .ops = &mem_blk, .size = 1 << 20, .iface = HW_IF_IDE,
				       .index = 2, .cdrom = true, .readonly = true };
	c.ndisks = 3;
	c.nics[0] = (struct hw_nic){ .ops = &nop_net, .mac = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 } };
	c.nnics = 1;
	if (machine_new(&c, &m) < 0)
		printf("# machine_new: %s\n", err_msg());
	return m;
}

static void round_trip(const char *kernel)
{
	struct machine *m, *m2;
	uint8_t *a, *b;
	size_t alen, blen;
	const char *what = kernel ? "kernel" : "firmware";

	m = new_machine(kernel);
	CHECK(m, "%s: a machine with every device builds", what);
	if (!m)
		return;
	int r = machine_save_devices(m, &a, &alen);
	CHECK(r == 0 && alen > 100, "%s: save: %zu bytes", what, alen);
	m2 = new_machine(kernel);
	r = machine_load_devices(m2, a, alen);
	CHECK(r == 0, "%s: load into a second machine%s%s", what, r ? ": " : "", r ? err_msg() : "");
	CHECK(machine_save_devices(m2, &b, &blen) == 0, "%s: save again", what);
	CHECK(blen == alen, "%s: same length after the round trip (%zu, %zu)", what, alen, blen);
	free(b);

	int refused = 0;
	for (size_t cut = 0; cut < alen; cut += 7)
		refused += machine_load_devices(m2, a, cut) < 0;
	CHECK(refused == (int)DIV_ROUND_UP(alen, 7), "%s: every truncated stream is refused (%d)", what, refused);

	srand(1);
	uint8_t *c = malloc(alen);
	int loaded = 0;
	for (int i = 0; i < 2000; i++) {
		memcpy(c, a, alen);
		for (int k = 0; k < 4; k++)
			c[rand() % alen] ^= 1 << (rand() % 8);
		loaded += machine_load_devices(m2, c, alen) == 0;
	}
	CHECK(1, "%s: 2000 corrupted streams loaded or refused without a crash (%d loaded)", what, loaded);
	CHECK(machine_load_devices(m2, a, alen) == 0, "%s: the machine still loads good state afterwards", what);
	free(c);
	free(a);
	machine_free(m);
	machine_free(m2);
}

int main(int argc, char **argv)
{
	const char *kernel = getenv("HW_TEST_KERNEL");

	round_trip(kernel ? kernel : "o/rel/tests/guest/hw-hello.elf");
	if (access("/usr/share/seabios/bios-256k.bin", R_OK) == 0)
		round_trip(NULL);
	return unit_done();
}
