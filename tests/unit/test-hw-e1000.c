/*
 * lib/hw/e1000.c through the bus, as a driver sees it: the PCI function
 * 8086:100e is found and its BAR programmed through ports 0xcf8/0xcfc,
 * the MAC comes out of the Microwire EEPROM (and EERD) with a valid
 * checksum, the PHY answers on MDIC, a legacy transmit ring sends frames
 * (with TCP/IP checksum insertion) and a receive ring takes them, with
 * RDH/TDH moving, DD written back and ICR/IMS interrupt causes.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "hw/hw.h"
#include "hw/internal.h"
#include "unit.h"

#define BAR 0xfebc0000u
#define TXR 0x100000u	/* guest-physical: rings and buffers */
#define RXR 0x110000u
#define TXB 0x120000u
#define RXB 0x130000u

static uint8_t sent[4][2048];
static size_t sent_len[4];
static int nsent;

static void cap_send(void *o, const uint8_t *f, size_t n)
{
	if (nsent < 4 && n <= sizeof(sent[0])) {
		memcpy(sent[nsent], f, n);
		sent_len[nsent] = n;
	}
	nsent++;
}

static const struct hw_net_ops cap_net = { cap_send };
static const uint8_t mac[6] = { 0x52, 0x54, 0, 0xaa, 0xbb, 0x01 };

static uint32_t rd(struct machine *m, uint32_t r) { return hw_bus_mmio_read(m, 0, BAR + r, 4); }
static void wr(struct machine *m, uint32_t r, uint32_t v) { hw_bus_mmio_write(m, 0, BAR + r, v, 4); }

static uint32_t cfg(struct machine *m, int slot, int off, int write, uint32_t v)
{
	hw_bus_pio_out(m, 0xcf8, 0x80000000u | slot << 11 | off, 4);
	if (write)
		hw_bus_pio_out(m, 0xcfc, v, 4);
	return write ? 0 : hw_bus_pio_in(m, 0xcfc, 4);
}

static int find_and_map(struct machine *m)
{
	for (int slot = 0; slot < 32; slot++) {
		if (cfg(m, slot, 0, 0, 0) != 0x100e8086)
			continue;
		cfg(m, slot, 0x10, 1, BAR);
		cfg(m, slot, 0x04, 1, 0x7);
		return slot;
	}
	return -1;
}

/* Bit-bang one Microwire READ as Linux's e1000 driver does. */
static uint16_t ee_read(struct machine *m, int addr)
{
	uint32_t cmd = 6u << 6 | addr, v = 0x40 | 0x02;	/* REQ, CS */
	uint16_t w = 0;

	wr(m, 0x10, v);
	for (int i = 8; i >= 0; i--) {
		uint32_t di = (cmd >> i & 1) ? 0x04 : 0;
		wr(m, 0x10, v | di);
		wr(m, 0x10, v | di | 0x01);
		wr(m, 0x10, v | di);
	}
	for (int i = 0; i < 16; i++) {
		wr(m, 0x10, v | 0x01);
		w = w << 1 | !!(rd(m, 0x10) & 0x08);
		wr(m, 0x10, v);
	}
	wr(m, 0x10, 0x40);
	return w;
}

static uint16_t mdic_read(struct machine *m, int reg)
{
	wr(m, 0x20, 2u << 26 | 1u << 21 | reg << 16);
	uint32_t v = rd(m, 0x20);
	return (v & (1u << 28)) ? v & 0xffff : 0xdead;
}

static void eeprom_phy(struct machine *m)
{
	uint16_t w[64], sum = 0;

	for (int i = 0; i < 64; i++)
		sum += w[i] = ee_read(m, i);
	CHECK(w[0] == 0x5452 && w[1] == 0xaa00 && w[2] == 0x01bb, "EEPROM words 0-2 hold the MAC (%04x %04x %04x)", w[0], w[1], w[2]);
	CHECK(sum == 0xbaba, "EEPROM words add up to 0xbaba (0x%04x)", sum);
	wr(m, 0x14, 1 << 8 | 1);
	CHECK((rd(m, 0x14) & 0x10) && rd(m, 0x14) >> 16 == w[1], "EERD reads word 1 with DONE");
	CHECK(mdic_read(m, 2) == 0x0141 && mdic_read(m, 3) == 0x0c20, "MDIC: the PHY is an M88E1011");
	CHECK(mdic_read(m, 1) & 0x4, "MDIC: PHY status says link up");
	CHECK(rd(m, 0x08) & 0x2, "STATUS.LU: link up");
}

static void tx_ring(struct machine *m)
{
	uint8_t *ring = hw_ram_ptr(m, TXR, 256), *buf = hw_ram_ptr(m, TXB, 4096);
	uint8_t frame[64];

	memset(ring, 0, 256);
	for (int i = 0; i < 64; i++)
		frame[i] = i;
	memcpy(buf, frame, 64);
	/* descriptor 0: legacy, 20 bytes, no EOP; 1: the rest, EOP|RS */
	memcpy(ring, &(uint64_t){ TXB }, 8);
	memcpy(ring + 8, &(uint32_t){ 20 }, 4);
	memcpy(ring + 16, &(uint64_t){ TXB + 20 }, 8);
	memcpy(ring + 24, &(uint32_t){ 44 | 0x09u << 24 }, 4);
	wr(m, 0x3800, TXR);
	wr(m, 0x3804, 0);
	wr(m, 0x3808, 256);
	wr(m, 0x3810, 0);
	wr(m, 0x3818, 0);
	wr(m, 0xd0, 0x1);	/* IMS: TXDW */
	wr(m, 0x400, 0x2);	/* TCTL.EN */
	wr(m, 0x3818, 2);
	CHECK(nsent == 1 && sent_len[0] == 64 && !memcmp(sent[0], frame, 64),
	      "two descriptors make one 64-byte frame (%d sent)", nsent);
	CHECK(rd(m, 0x3810) == 2, "TDH follows TDT");
	CHECK(ring[28] & 1, "DD written back on the RS descriptor");
	uint32_t icr = rd(m, 0xc0);
	CHECK((icr & 0x80000001u) == 0x80000001u, "ICR: TXDW and INT_ASSERTED (0x%x)", icr);
	CHECK(rd(m, 0xc0) == 0, "ICR clears on read");

	/* context descriptor + data descriptor with TXSM: a UDP-like sum */
	memset(buf, 0, 64);
	buf[40] = 0x12;
	memset(ring + 32, 0, 32);
	ring[32 + 4] = 34;	/* TUCSS */
	ring[32 + 5] = 40;	/* TUCSO */
	memcpy(ring + 40, &(uint32_t){ 0x20u << 24 }, 4);	/* DEXT, DTYP 0 */
	memcpy(ring + 48, &(uint64_t){ TXB }, 8);
	memcpy(ring + 56, &(uint32_t){ 64 | 1u << 20 | 0x29u << 24 }, 4);	/* DEXT|RS|EOP */
	ring[61] = 0x02;	/* POPTS.TXSM */
	wr(m, 0x3818, 4);
	CHECK(nsent == 2 && sent[1][40] == 0xed && sent[1][41] == 0xff,
	      "TXSM inserts the one's complement sum at TUCSO (%02x%02x)", sent[1][40], sent[1][41]);
}

static uint16_t fold(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 2)
		sum += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* TSE: a 54-byte Ethernet/IPv4/TCP header and 2500 bytes, MSS 1000. */
static void tso(struct machine *m)
{
	uint8_t *ring = hw_ram_ptr(m, TXR, 256), *buf = hw_ram_ptr(m, TXB, 4096);
	static uint8_t ip_src[4] = { 10, 0, 2, 15 }, ip_dst[4] = { 10, 0, 2, 2 };
	uint32_t pseudo = 0;
	bool ok = true;

	memset(buf, 0, 54 + 2500);
	buf[12] = 0x08, buf[14] = 0x45, buf[23] = 6;
	memcpy(buf + 26, ip_src, 4), memcpy(buf + 30, ip_dst, 4);
	buf[38] = 0x12, buf[41] = 0x34;	/* seq 0x12000034 */
	buf[46] = 0x50, buf[47] = 0x19;	/* data offset 5; FIN, PSH, ACK */
	for (int i = 0; i < 2500; i++)
		buf[54 + i] = i * 7;
	pseudo = fold(6, ip_src, 4) + fold(0, ip_dst, 4);
	pseudo = fold(pseudo, (uint8_t[]){ 0, 0 }, 2);
	buf[50] = pseudo >> 8, buf[51] = pseudo;	/* the driver's partial sum */
	memset(ring + 64, 0, 32);
	ring[64] = 14, ring[65] = 24, ring[66] = 33;	/* IPCSS, IPCSO, IPCSE */
	ring[68] = 34, ring[69] = 50;	/* TUCSS, TUCSO */
	memcpy(ring + 72, &(uint32_t){ 2500 | 0x27u << 24 }, 4);	/* DEXT|TSE|IP|TCP */
	ring[77] = 54, ring[78] = 1000 & 0xff, ring[79] = 1000 >> 8;	/* HDRLEN, MSS */
	memcpy(ring + 80, &(uint64_t){ TXB }, 8);
	memcpy(ring + 88, &(uint32_t){ (54 + 2500) | 1u << 20 | 0x2du << 24 }, 4);
	ring[93] = 0x03;	/* POPTS: IXSM, TXSM */
	nsent = 0;
	wr(m, 0x3818, 6);
	CHECK(nsent == 3 && sent_len[0] == 1054 && sent_len[2] == 554, "TSO: 2500 bytes at MSS 1000 go out as 3 frames (%d)", nsent);
	for (int i = 0; i < 3 && i < nsent; i++) {
		uint8_t *f = sent[i];
		size_t tl = sent_len[i] - 34;
		uint32_t seq = (uint32_t)f[38] << 24 | f[39] << 16 | f[40] << 8 | f[41];
		uint32_t ps = fold(6 + tl, ip_src, 4) + fold(0, ip_dst, 4);
		ok &= (size_t)(f[16] << 8 | f[17]) == sent_len[i] - 14 && seq == 0x12000034u + 1000 * i;
		ok &= fold(0, f + 14, 20) == 0xffff && fold(ps, f + 34, tl) == 0xffff;
		ok &= (f[47] & 0x09) == (i == 2 ? 0x09 : 0);
	}
	CHECK(ok, "each with its IP length, sequence number, flags and valid IP and TCP checksums");
}

static void rx_ring(struct machine *m)
{
	uint8_t *ring = hw_ram_ptr(m, RXR, 128), *buf = hw_ram_ptr(m, RXB, 8192);
	uint8_t f[100];

	memset(ring, 0, 128);
	for (int i = 0; i < 4; i++)
		memcpy(ring + 16 * i, &(uint64_t){ RXB + 2048 * i }, 8);
	wr(m, 0x2800, RXR);
	wr(m, 0x2808, 128);
	wr(m, 0x2810, 0);
	wr(m, 0x2818, 2);	/* two descriptors for the device */
	wr(m, 0xd0, 0x80);	/* IMS: RXT0 */
	wr(m, 0x100, 0x2 | 1u << 26);	/* RCTL: EN, SECRC, 2048-byte buffers */
	memset(f, 0xee, sizeof(f));
	memcpy(f, mac, 6);
	machine_nic_input(m, 0, f, sizeof(f));
	CHECK(rd(m, 0x2810) == 1 && (ring[12] & 3) == 3, "a frame for our MAC fills descriptor 0 (DD|EOP)");
	CHECK(ring[8] == 100 && !memcmp(buf, f, 100), "with its length and bytes");
	CHECK(rd(m, 0xc0) & 0x80, "ICR: RXT0");
	f[0] = 0x02;	/* someone else's unicast */
	machine_nic_input(m, 0, f, sizeof(f));
	CHECK(rd(m, 0x2810) == 1, "a frame for another MAC is filtered");
	memset(f, 0xff, 6);
	machine_nic_input(m, 0, f, sizeof(f));
	machine_nic_input(m, 0, f, sizeof(f));
	CHECK(rd(m, 0x2810) == 2, "RDH stops at RDT: the frame without a descriptor is dropped");
	CHECK(rd(m, 0xc0) & 0x40, "ICR: RXO on the drop");
	wr(m, 0x100, 0x2);	/* CRC not stripped: 4 more bytes */
	wr(m, 0x2818, 3);
	machine_nic_input(m, 0, f, 30);
	CHECK(ring[2 * 16 + 8] == 64, "short frames are padded to 60 bytes, plus the FCS (%d)", ring[40]);
}

int main(void)
{
	struct hw_config c = { .ram_size = 64u << 20, .smp = 1, .accel = "jit" };
	struct machine *m = NULL;

	c.nics[0] = (struct hw_nic){ .ops = &cap_net, .model = HW_NIC_E1000 };
	memcpy(c.nics[0].mac, mac, 6);
	c.nnics = 1;
	if (machine_new(&c, &m) < 0) {
		printf("# machine_new: %s\n", err_msg());
		CHECK(0, "a machine with an e1000 builds");
		return unit_done();
	}
	CHECK(find_and_map(m) >= 0, "PCI 8086:100e is on the bus");
	eeprom_phy(m);
	tx_ring(m);
	tso(m);
	rx_ring(m);
	rd(m, 0xc0);
	wr(m, 0xd0, 0x4);	/* IMS: LSC */
	machine_nic_set_link(m, 0, false);
	CHECK(!(rd(m, 0x08) & 0x2) && (rd(m, 0xc0) & 0x4), "back-end gone: STATUS.LU clears, ICR.LSC");
	CHECK(!(mdic_read(m, 1) & 0x4), "and the PHY reports the link down");
	int before = nsent;
	wr(m, 0x3818, 5);
	CHECK(nsent == before, "frames sent with the link down go nowhere");
	machine_free(m);
	return unit_done();
}
