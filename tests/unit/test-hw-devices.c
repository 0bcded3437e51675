/*
 * lib/hw devices driven through the machine's port and MMIO dispatch,
 * with no CPU running: the 16550 UART (transmit, receive, loopback,
 * interrupt identification), the 8259 pair (priority, EOI, masks), the
 * 8254's channel 2, the RTC index and BCD time, fw_cfg's signature and
 * file directory, and IDE (IDENTIFY, READ SECTORS, ATAPI INQUIRY).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"
#include "unit.h"

static uint8_t sent[64];
static size_t nsent;
static void cap_write(void *o, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n && nsent < sizeof(sent); i++)
		sent[nsent++] = b[i];
}
static const struct hw_char_ops cap_char = { cap_write };

static uint8_t disk[1 << 20];
static int mem_read(void *o, void *buf, uint64_t off, size_t len)
{
	memcpy(buf, disk + off, len);
	return 0;
}
static int mem_write(void *o, const void *buf, uint64_t off, size_t len)
{
	memcpy(disk + off, buf, len);
	return 0;
}
static const struct hw_block_ops mem_blk = { mem_read, mem_write, NULL };

static uint8_t in8(struct machine *m, uint16_t p) { return hw_bus_pio_in(m, p, 1); }
static void out8(struct machine *m, uint16_t p, uint8_t v) { hw_bus_pio_out(m, p, v, 1); }

static void test_uart(struct machine *m)
{
	out8(m, 0x3fb, 0x03);
	out8(m, 0x3f8, 'A');
	CHECK(nsent == 1 && sent[0] == 'A', "uart: THR goes to the back-end");
	CHECK(in8(m, 0x3fd) & 0x20, "uart: LSR says the transmitter is empty");
	machine_char_input(m, 0, (const uint8_t *)"xy", 2);
	CHECK(in8(m, 0x3fd) & 1, "uart: input sets LSR data ready");
	out8(m, 0x3f9, 0x01);
	CHECK((in8(m, 0x3fa) & 0x0f) == 0x04, "uart: IIR says received data");
	CHECK(in8(m, 0x3f8) == 'x' && in8(m, 0x3f8) == 'y' && !(in8(m, 0x3fd) & 1), "uart: RBR in order, then empty");
	out8(m, 0x3fc, 0x10 | 0x03);
	out8(m, 0x3f8, 'L');
	CHECK(in8(m, 0x3f8) == 'L' && nsent == 1, "uart: loopback returns the byte, not to the back-end");
	CHECK((in8(m, 0x3fe) & 0x30) == 0x30, "uart: loopback reflects DTR/RTS as DSR/CTS");
	out8(m, 0x3fc, 0);
	out8(m, 0x3fb, 0x83);
	out8(m, 0x3f8, 0x0c);
	CHECK(in8(m, 0x3f8) == 0x0c, "uart: divisor latch");
	out8(m, 0x3fb, 0x03);
	out8(m, 0x3f9, 0);
}

static void test_pic(struct machine *m)
{
	out8(m, 0x20, 0x11); out8(m, 0x21, 0x20); out8(m, 0x21, 4); out8(m, 0x21, 1);
	out8(m, 0xa0, 0x11); out8(m, 0xa1, 0x28); out8(m, 0xa1, 2); out8(m, 0xa1, 1);
	out8(m, 0x21, 0xf0);		/* IRQ 0-3 unmasked */
	out8(m, 0xa1, 0xff);
	pthread_mutex_lock(&m->lock);
	hw_set_irq(m, 3, true);
	hw_set_irq(m, 3, false);
	hw_set_irq(m, 1, true);
	hw_set_irq(m, 1, false);
	hw_set_irq(m, 5, true);		/* masked */
	bool out = pic_output(m->pic);
	int v1 = pic_ack(m->pic), v2 = pic_ack(m->pic);
	pthread_mutex_unlock(&m->lock);
	CHECK(out, "pic: an unmasked edge raises INT");
	CHECK(v1 == 0x21, "pic: IRQ 1 before IRQ 3 (vector 0x%x)", v1);
	CHECK(v2 == 0x27, "pic: IRQ 3 waits for IRQ 1's EOI: spurious 7 (vector 0x%x)", v2);
	out8(m, 0x20, 0x20);		/* EOI of IRQ 1 */
	pthread_mutex_lock(&m->lock);
	v1 = pic_ack(m->pic);
	pthread_mutex_unlock(&m->lock);
	CHECK(v1 == 0x23, "pic: then IRQ 3 (vector 0x%x)", v1);
	out8(m, 0x20, 0x0b);
	CHECK(in8(m, 0x20) == 0x08, "pic: OCW3 reads ISR");
	out8(m, 0x20, 0x20);
	CHECK(in8(m, 0x21) == 0xf0, "pic: IMR reads back");
	pthread_mutex_lock(&m->lock);
	hw_set_irq(m, 5, false);
	pthread_mutex_unlock(&m->lock);
}

/* Latch channel 2 and read LSB, then MSB. */
static uint16_t pit_latched(struct machine *m)
{
	uint8_t lo, hi;

	out8(m, 0x43, 0x80);
	lo = in8(m, 0x42);
	hi = in8(m, 0x42);
	return lo | hi << 8;
}

static void test_timers(struct machine *m)
{
	out8(m, 0x61, 1);
	out8(m, 0x43, 0xb0);
	out8(m, 0x42, 0xff);
	out8(m, 0x42, 0xff);
	uint16_t a = pit_latched(m);
	usleep(5000);
	uint16_t b = pit_latched(m);
	CHECK(a > b && a - b >= 5900, "pit: channel 2 counts down in real time (%u)", a - b);
	out8(m, 0x70, 0x0b);
	CHECK(in8(m, 0x71) == 0x02, "rtc: register B: 24-hour BCD");
	out8(m, 0x70, 0x04);
	uint8_t h = in8(m, 0x71);
	CHECK((h & 15) < 10 && (h >> 4) < 3, "rtc: hours in BCD");
}

static void ide_wait_drq(struct machine *m, uint16_t base)
{
	for (int i = 0; i < 100 && !(in8(m, base + 7) & 0x08); i++)
		;
}

static void test_ide(struct machine *m)
{
	uint16_t id[256], sec[256];

	out8(m, 0x1f6, 0xa0);
	out8(m, 0x1f7, 0xec);
	ide_wait_drq(m, 0x1f0);
	for (int i = 0; i < 256; i++)
		id[i] = hw_bus_pio_in(m, 0x1f0, 2);
	CHECK(id[0] == 0x0040 && (id[60] | id[61] << 16) == sizeof(disk) / 512,
	      "ide: IDENTIFY DEVICE of a 1 MiB disk (%u sectors)", id[60] | id[61] << 16);
	memcpy(disk + 512 * 5, "SECTOR5", 7);
	out8(m, 0x1f2, 1);
	out8(m, 0x1f3, 5);
	out8(m, 0x1f4, 0);
	out8(m, 0x1f5, 0);
	out8(m, 0x1f6, 0xe0);
	out8(m, 0x1f7, 0x20);
	ide_wait_drq(m, 0x1f0);
	for (int i = 0; i < 256; i++)
		sec[i] = hw_bus_pio_in(m, 0x1f0, 2);
	CHECK(!memcmp(sec, "SECTOR5", 7), "ide: READ SECTORS (LBA 5)");
	CHECK(!(in8(m, 0x1f7) & 0x09), "ide: no DRQ and no error afterwards");
	out8(m, 0x1f7, 0xa1);		/* IDENTIFY PACKET on a disk */
	CHECK(in8(m, 0x1f7) & 1, "ide: a disk aborts IDENTIFY PACKET DEVICE");
	/* the secondary master is a CD-ROM: its signature, then INQUIRY */
	out8(m, 0x176, 0xa0);
	CHECK(in8(m, 0x174) == 0x14 && in8(m, 0x175) == 0xeb, "ide: ATAPI signature 0x14 0xeb");
	out8(m, 0x171, 0);
	out8(m, 0x174, 0x00);
	out8(m, 0x175, 0x08);
	out8(m, 0x177, 0xa0);
	ide_wait_drq(m, 0x170);
	uint8_t cdb[12] = { 0x12, 0, 0, 0, 36 };
	for (int i = 0; i < 6; i++)
		hw_bus_pio_out(m, 0x170, cdb[2 * i] | cdb[2 * i + 1] << 8, 2);
	ide_wait_drq(m, 0x170);
	unsigned n = in8(m, 0x174) | in8(m, 0x175) << 8;
	uint8_t inq[36] = { 0 };
	for (unsigned i = 0; i < n / 2 && i < 18; i++) {
		uint16_t w = hw_bus_pio_in(m, 0x170, 2);
		inq[2 * i] = w;
		inq[2 * i + 1] = w >> 8;
	}
	CHECK(n == 36 && inq[0] == 5 && !memcmp(inq + 8, "VMRUN", 5), "ide: ATAPI INQUIRY: a CD-ROM (%u bytes)", n);
	CHECK((in8(m, 0x172) & 3) == 3 && !(in8(m, 0x177) & 0x09), "ide: packet command completes (I/O, C/D)");
}

static void test_fwcfg(struct machine *m)
{
	char sig[5] = { 0 };
	uint8_t dir[4];

	hw_bus_pio_out(m, 0x510, 0, 2);
	for (int i = 0; i < 4; i++)
		sig[i] = in8(m, 0x511);
	CHECK(!strcmp(sig, "QEMU"), "fw_cfg: signature");
	hw_bus_pio_out(m, 0x510, 0x19, 2);
	for (int i = 0; i < 4; i++)
		dir[i] = in8(m, 0x511);
	uint32_t files = (uint32_t)dir[0] << 24 | dir[1] << 16 | dir[2] << 8 | dir[3];
	bool e820 = false;
	for (uint32_t f = 0; f < files; f++) {
		char name[57] = { 0 };
		for (int i = 0; i < 8; i++)
			in8(m, 0x511);
		for (int i = 0; i < 56; i++)
			name[i] = in8(m, 0x511);
		e820 |= !strcmp(name, "etc/e820");
	}
	CHECK(files >= 4 && e820, "fw_cfg: file directory (%u files, etc/e820 among them)", files);
}

int main(void)
{
	struct hw_config c = { .ram_size = 64u << 20, .smp = 1, .accel = "jit" };
	struct machine *m;

	c.serial[0] = (struct hw_char_backend){ &cap_char, NULL };
	c.disks[0] = (struct hw_disk){ .ops = &mem_blk, .size = sizeof(disk), .iface = HW_IF_IDE, .index = 0 };
	c.disks[1] = (struct hw_disk){ .ops = &mem_blk, .size = sizeof(disk), .iface = HW_IF_IDE,
				       .index = 2, .cdrom = true, .readonly = true };
	c.ndisks = 2;
	if (access("/usr/share/seabios/bios-256k.bin", R_OK) < 0) {
		c.kernel = getenv("HW_TEST_KERNEL") ? getenv("HW_TEST_KERNEL") : "o/rel/tests/guest/hw-hello.elf";
	}
	if (machine_new(&c, &m) < 0) {
		CHECK(0, "machine_new: %s", err_msg());
		return unit_done();
	}
	test_uart(m);
	test_pic(m);
	test_timers(m);
	test_ide(m);
	if (!c.kernel)
		test_fwcfg(m);
	machine_free(m);
	return unit_done();
}
