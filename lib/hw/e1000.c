/*
 * Intel 82540EM Gigabit Ethernet controller (PCI 8086:100e), QEMU's
 * default NIC on pc, after Intel's "PCI/PCI-X Family of Gigabit Ethernet
 * Controllers Software Developer's Manual" (8254x SDM): as much as Linux's
 * e1000 driver uses.  Section 5 the EEPROM (Microwire, bit-banged through
 * EECD; EERD too), 8.2 the MDIC interface to the M88E1011 PHY, 13.4 the
 * registers, 3.2 legacy receive descriptors, 3.3 legacy, context and
 * TCP/IP data transmit descriptors with checksum insertion (no TSO
 * segmentation, no VLAN), 13.4.17-21 interrupts (ICR, ICS, IMS, IMC).
 * One BAR: 128 KiB of registers.  Receive accepts broadcast, multicast,
 * RAR0 and (UPE) everything; a frame with no free descriptor is dropped.
 */
#include <inttypes.h>
#include <string.h>
#include <zlib.h>

#include "common/common.h"
#include "hw/internal.h"

#define MMIO_SIZE 0x20000
#define FRAME_MAX 16384
#define TX_MAX (65536 + 256)	/* a TSO frame: header and 64 KiB payload */

enum {
	CTRL = 0x0000, STATUS = 0x0008, EECD = 0x0010, EERD = 0x0014, MDIC = 0x0020,
	ICR = 0x00c0, ICS = 0x00c8, IMS = 0x00d0, IMC = 0x00d8, RCTL = 0x0100,
	TCTL = 0x0400, RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808, RDH = 0x2810,
	RDT = 0x2818, TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808, TDH = 0x3810,
	TDT = 0x3818, RAL0 = 0x5400, RAH0 = 0x5404, STATS = 0x4000, STATS_END = 0x4100,
};

#define CTRL_RST (1u << 26)
#define CTRL_PHY_RST (1u << 31)
#define STATUS_UP 0x00080283u	/* GIO master, 1000 Mb/s, full duplex, ... */
#define STATUS_LU 0x2u
#define EECD_SK 0x01
#define EECD_CS 0x02
#define EECD_DI 0x04
#define EECD_DO 0x08
#define EECD_REQ 0x40
#define EECD_GNT 0x80
#define EECD_PRES 0x100
#define ICR_TXDW 0x01
#define ICR_TXQE 0x02
#define ICR_LSC 0x04
#define ICR_RXO 0x40
#define ICR_RXT0 0x80
#define ICR_INT (1u << 31)
#define RCTL_EN (1u << 1)
#define RCTL_UPE (1u << 3)
#define RCTL_SECRC (1u << 26)
#define TCTL_EN (1u << 1)
#define TX_EOP 0x01
#define TX_IC 0x04		/* legacy: insert checksum */
#define TX_RS 0x08
#define TX_TSE 0x04		/* DEXT: TCP segmentation */
#define TX_DEXT 0x20
#define POPTS_IXSM 0x01
#define POPTS_TXSM 0x02

enum { PHY_CTRL, PHY_STATUS, PHY_ID1, PHY_ID2, PHY_REGS = 32 };

struct e1000 {
	struct machine *m;
	struct hw_pci_dev *pci;
	struct hw_nic nic;
	int idx;
	uint32_t reg[MMIO_SIZE / 4];	/* only the low part is used */
	uint16_t phy[PHY_REGS];
	uint16_t eeprom[64];
	struct { uint32_t in; int nin, nout; uint16_t addr; bool reading; } ee;
	/* transmit context: offsets of the IP and TCP/UDP checksums */
	struct { uint8_t css, cso; uint16_t cse; } ipcs, tucs;
	/* TCP segmentation (TSE): header length, MSS, TUCMD bits */
	struct { uint8_t hdrlen, tucmd; uint16_t mss; bool on; } tso;
	uint8_t tx[TX_MAX];
	uint8_t seg[FRAME_MAX];
	size_t tx_len;
	uint8_t tx_popts;
	bool link_down;
};

#define R(s, r) ((s)->reg[(r) >> 2])

static uint16_t le16_read(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t le32_read(const uint8_t *p) { return le16_read(p) | (uint32_t)le16_read(p + 2) << 16; }
static uint64_t le64_read(const uint8_t *p) { return le32_read(p) | (uint64_t)le32_read(p + 4) << 32; }
static void le16_write(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }

static void update_irq(struct e1000 *s)
{
	bool on = R(s, ICR) & R(s, IMS);

	R(s, ICR) = on ? R(s, ICR) | ICR_INT : R(s, ICR) & ~ICR_INT;
	pci_set_intx(s->pci, on);
}

static void raise_irq(struct e1000 *s, uint32_t cause)
{
	R(s, ICR) |= cause;
	update_irq(s);
}

/* ---- EEPROM (SDM 5.3) and PHY ---- */

static void eeprom_init(struct e1000 *s)
{
	uint16_t sum = 0;

	memset(s->eeprom, 0, sizeof(s->eeprom));
	for (int i = 0; i < 3; i++)
		s->eeprom[i] = s->nic.mac[2 * i] | s->nic.mac[2 * i + 1] << 8;
	s->eeprom[0x0a] = 0x6400;	/* init control 1: signature, no LPLU */
	s->eeprom[0x0d] = 0x100e;	/* device id */
	s->eeprom[0x0e] = 0x8086;
	for (int i = 0; i < 0x3f; i++)
		sum += s->eeprom[i];
	s->eeprom[0x3f] = 0xbaba - sum;	/* words 0..3f add up to 0xbaba */
}

/* Microwire: 3 opcode bits (READ is 110b) and 6 address bits clocked in
 * on rising SK, then 16 data bits per word, MSB first, on DO. */
static void eecd_write(struct e1000 *s, uint32_t v)
{
	uint32_t old = R(s, EECD);

	R(s, EECD) = (v & (EECD_SK | EECD_CS | EECD_DI | EECD_REQ)) | EECD_PRES |
		((v & EECD_REQ) ? EECD_GNT : 0) | (old & EECD_DO);
	if (!(v & EECD_CS)) {
		s->ee.nin = s->ee.nout = 0;
		s->ee.in = 0;
		s->ee.reading = false;
		return;
	}
	if (!(v & EECD_SK) || (old & EECD_SK))
		return;		/* only rising edges count */
	if (!s->ee.reading) {
		s->ee.in = s->ee.in << 1 | !!(v & EECD_DI);
		if (++s->ee.nin == 9) {
			s->ee.reading = (s->ee.in >> 6) == 6;
			s->ee.addr = s->ee.in & 0x3f;
			s->ee.nout = 0;
		}
		R(s, EECD) &= ~EECD_DO;
		return;
	}
	uint16_t w = s->eeprom[(s->ee.addr + s->ee.nout / 16) & 0x3f];
	bool bit = w >> (15 - s->ee.nout % 16) & 1;
	s->ee.nout++;
	R(s, EECD) = bit ? R(s, EECD) | EECD_DO : R(s, EECD) & ~EECD_DO;
}

static void phy_reset(struct e1000 *s)
{
	static const uint16_t init[PHY_REGS] = {
		[PHY_CTRL] = 0x1140, [PHY_STATUS] = 0x796d, [PHY_ID1] = 0x0141,
		[PHY_ID2] = 0x0c20, [4] = 0x0de1, [5] = 0x41e1, [6] = 0x0001,
		[9] = 0x0e00, [10] = 0x3c00, [15] = 0x3000, [16] = 0x0360,
		[17] = 0xac00, [20] = 0x0d60,
	};
	memcpy(s->phy, init, sizeof(init));
	if (s->link_down)
		s->phy[PHY_STATUS] &= ~0x24;
}

static void mdic_write(struct e1000 *s, uint32_t v)
{
	unsigned reg = v >> 16 & 31, phy = v >> 21 & 31, op = v >> 26 & 3;

	v &= ~(3u << 28);
	if (phy != 1) {
		v |= 1u << 30;		/* error: no such PHY */
	} else if (op == 2) {
		v = (v & ~0xffffu) | s->phy[reg];
	} else if (op == 1 && reg != PHY_STATUS && reg != PHY_ID1 && reg != PHY_ID2) {
		s->phy[reg] = v;
		if (reg == PHY_CTRL && (v & 0x8000))
			phy_reset(s);
		s->phy[PHY_CTRL] &= ~0x8200;	/* reset and restart done at once */
	}
	R(s, MDIC) = v | 1u << 28;	/* ready */
	if (v & (1u << 29))
		raise_irq(s, 0x200);	/* MDAC */
}

/* ---- receive (SDM 3.2) ---- */

static uint32_t rx_buf_size(uint32_t rctl)
{
	static const uint32_t sz[2][4] = { { 2048, 1024, 512, 256 }, { 2048, 16384, 8192, 4096 } };
	return sz[!!(rctl & (1u << 25))][rctl >> 16 & 3];
}

static bool rx_accept(struct e1000 *s, const uint8_t *f)
{
	uint32_t lo = R(s, RAL0), hi = R(s, RAH0);
	uint8_t ra[6] = { lo, lo >> 8, lo >> 16, lo >> 24, hi, hi >> 8 };

	if ((f[0] & 1) || (R(s, RCTL) & RCTL_UPE))
		return true;		/* broadcast, multicast, promiscuous */
	return (hi & (1u << 31)) && !memcmp(f, ra, 6);
}

static void e1000_input(struct e1000 *s, const uint8_t *frame, size_t len)
{
	uint32_t rctl = R(s, RCTL), bufsz = rx_buf_size(rctl);
	uint32_t n = R(s, RDLEN) / 16, head = R(s, RDH), tail = R(s, RDT);
	uint64_t base = (uint64_t)R(s, RDBAH) << 32 | (R(s, RDBAL) & ~15u);
	uint8_t buf[FRAME_MAX + 64];
	size_t total = MAX(len, 60), done = 0;

	if (!(rctl & RCTL_EN) || s->link_down || len < 14 || len > FRAME_MAX || !rx_accept(s, frame))
		return;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, frame, len);
	if (!(rctl & RCTL_SECRC)) {
		uint32_t crc = crc32(0, buf, total);
		memcpy(buf + total, &crc, 4);
		total += 4;
	}
	while (done < total) {
		uint8_t d[16];
		if (!n || head >= n || head == tail) {
			LOG(LOG_NET, "e1000: no receive descriptor, frame dropped");
			raise_irq(s, ICR_RXO);
			return;
		}
		if (hw_dma_read(s->m, base + 16 * head, d, 16) < 0)
			return;
		uint64_t addr = le64_read(d);
		size_t chunk = MIN((size_t)bufsz, total - done);
		hw_dma_write(s->m, addr, buf + done, chunk);
		done += chunk;
		le16_write(d + 8, chunk);
		d[12] = 0x01 | 0x04 | (done == total ? 0x02 : 0);	/* DD, IXSM, EOP */
		d[13] = 0;
		hw_dma_write(s->m, base + 16 * head + 8, d + 8, 8);
		head = (head + 1) % n;
		R(s, RDH) = head;
	}
	raise_irq(s, ICR_RXT0);
}

/* ---- transmit (SDM 3.3) ---- */

/* The one's complement sum of f[css..cse] (cse 0: to the end) plus add,
 * stored at cso. */
static void put_csum(uint8_t *f, size_t len, unsigned css, unsigned cso, unsigned cse, uint32_t add)
{
	uint32_t sum = add;
	size_t end = cse ? MIN((size_t)cse + 1, len) : len;

	if (css >= end || cso + 2 > len)
		return;
	for (size_t i = css; i < end; i += 2)
		sum += (uint32_t)f[i] << 8 | (i + 1 < end ? f[i + 1] : 0);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	f[cso] = sum >> 8;
	f[cso + 1] = sum;
}

static void tx_frame(struct e1000 *s)
{
	if (s->tx_popts & POPTS_IXSM)
		put_csum(s->tx, s->tx_len, s->ipcs.css, s->ipcs.cso, s->ipcs.cse, 0);
	if (s->tx_popts & POPTS_TXSM)
		put_csum(s->tx, s->tx_len, s->tucs.css, s->tucs.cso, s->tucs.cse, 0);
	if (!s->link_down && s->tx_len)
		s->nic.ops->send(s->nic.opaque, s->tx, MIN(s->tx_len, (size_t)FRAME_MAX));
	s->tx_len = 0;
	s->tx_popts = 0;
}

static void be16_put(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }

/* TCP segmentation (SDM 3.5): the header in front of every MSS-sized
 * piece, with the IPv4 length and id, the TCP sequence number and flags
 * adjusted, and the checksums (the TCP one from the driver's pseudo-header
 * sum without the length) filled in. */
static void tx_tso(struct e1000 *s)
{
	unsigned hl = s->tso.hdrlen, mss = s->tso.mss, ip = s->ipcs.css, tu = s->tucs.css;
	size_t plen = s->tx_len > hl ? s->tx_len - hl : 0;
	bool ipv4 = s->tso.tucmd & 0x02, tcp = s->tso.tucmd & 0x01;

	if (!mss || hl + mss > FRAME_MAX || ip + 6 > hl || (tcp && tu + 20 > hl)) {
		LOG(LOG_GUEST_ERRORS, "e1000: bad TSO context (hdrlen %u mss %u)", hl, mss);
		s->tx_len = s->tx_popts = 0;
		return;
	}
	uint16_t id = s->tx[ip + 4] << 8 | s->tx[ip + 5];
	uint32_t seq = le32_read(s->tx + tu + 4);
	seq = __builtin_bswap32(seq);
	for (size_t off = 0, i = 0; off < plen || (!plen && !i); off += mss, i++) {
		size_t n = MIN((size_t)mss, plen - off), len = hl + n;
		uint8_t *f = s->seg;
		memcpy(f, s->tx, hl);
		memcpy(f + hl, s->tx + hl + off, n);
		if (ipv4) {
			be16_put(f + ip + 2, len - ip);
			be16_put(f + ip + 4, id + i);
		}
		if (tcp) {
			uint32_t sq = __builtin_bswap32(seq + off);
			memcpy(f + tu + 4, &sq, 4);
			if (off + n < plen)
				f[tu + 13] &= ~0x09;	/* FIN and PSH on the last one only */
		}
		if (s->tx_popts & POPTS_IXSM)
			put_csum(f, len, ip, s->ipcs.cso, s->ipcs.cse, 0);
		if (s->tx_popts & POPTS_TXSM)
			put_csum(f, len, tu, s->tucs.cso, 0, len - tu);
		if (!s->link_down)
			s->nic.ops->send(s->nic.opaque, f, len);
		if (!plen)
			break;
	}
	s->tx_len = 0;
	s->tx_popts = 0;
}

/* One descriptor: context (DEXT, DTYP 0), data (DEXT, DTYP 1) or legacy. */
static void tx_desc(struct e1000 *s, uint8_t *d)
{
	uint32_t lower = le32_read(d + 8), upper = le32_read(d + 12);
	uint8_t cmd = lower >> 24;
	size_t len = (cmd & TX_DEXT) ? (lower & 0xfffff) : (lower & 0xffff);

	if ((cmd & TX_DEXT) && (lower >> 20 & 15) == 0) {
		s->ipcs.css = d[0], s->ipcs.cso = d[1], s->ipcs.cse = le16_read(d + 2);
		s->tucs.css = d[4], s->tucs.cso = d[5], s->tucs.cse = le16_read(d + 6);
		s->tso.tucmd = cmd;
		s->tso.on = cmd & TX_TSE;
		s->tso.hdrlen = d[13];
		s->tso.mss = le16_read(d + 14);
		return;
	}
	if (cmd & TX_DEXT)
		s->tx_popts |= upper >> 8 & 0xff;
	len = MIN(len, sizeof(s->tx) - s->tx_len);
	if (hw_dma_read(s->m, le64_read(d), s->tx + s->tx_len, len) == 0)
		s->tx_len += len;
	if (!(cmd & TX_EOP))
		return;
	if (!(cmd & TX_DEXT) && (cmd & TX_IC))
		put_csum(s->tx, s->tx_len, upper >> 8 & 0xff, lower >> 16 & 0xff, 0, 0);
	if ((cmd & TX_DEXT) && (cmd & TX_TSE) && s->tso.on)
		tx_tso(s);
	else
		tx_frame(s);
}

static void tx_run(struct e1000 *s)
{
	uint32_t n = R(s, TDLEN) / 16, head = R(s, TDH), tail = R(s, TDT);
	uint64_t base = (uint64_t)R(s, TDBAH) << 32 | (R(s, TDBAL) & ~15u);
	bool any = false;

	if (!(R(s, TCTL) & TCTL_EN) || !n || tail >= n)
		return;
	for (uint32_t guard = 0; head != tail && head < n && guard < n; guard++) {
		uint8_t d[16];
		if (hw_dma_read(s->m, base + 16 * head, d, 16) < 0)
			break;
		tx_desc(s, d);
		if (d[11] & TX_RS) {
			d[12] |= 0x01;	/* DD */
			hw_dma_write(s->m, base + 16 * head + 12, d + 12, 1);
		}
		head = (head + 1) % n;
		any = true;
	}
	R(s, TDH) = head;
	if (any)
		raise_irq(s, ICR_TXDW | ICR_TXQE);
}

/* ---- registers ---- */

static void regs_reset(struct e1000 *s)
{
	memset(s->reg, 0, sizeof(s->reg));
	R(s, STATUS) = s->link_down ? STATUS_UP & ~STATUS_LU : STATUS_UP;
	R(s, EECD) = EECD_PRES;
	R(s, CTRL) = 0x00140240;	/* full duplex, set link up, speed 1000 */
	R(s, RAL0) = le32_read(s->nic.mac);
	R(s, RAH0) = le16_read(s->nic.mac + 4) | 1u << 31;
	memset(&s->ee, 0, sizeof(s->ee));
	s->tx_len = 0;
	phy_reset(s);
	eeprom_init(s);
}

static uint64_t mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct e1000 *s = opaque;
	uint32_t v;

	if (off >= MMIO_SIZE || (off & 3))
		return 0;
	v = s->reg[off >> 2];
	if (off == ICR) {
		R(s, ICR) = 0;	/* read to clear */
		update_irq(s);
	} else if (off == ICS) {
		v = R(s, ICR);
	} else if (off >= STATS && off < STATS_END) {
		v = 0;		/* statistics: no counters kept */
	}
	return v;
}

static void reg_write(struct e1000 *s, uint32_t off, uint32_t v)
{
	switch (off) {
	case CTRL:
		if (v & CTRL_RST) {
			regs_reset(s);
			update_irq(s);
			return;
		}
		R(s, CTRL) = v & ~(CTRL_RST | CTRL_PHY_RST);
		return;
	case STATUS: return;
	case EECD: eecd_write(s, v); return;
	case EERD: {
		unsigned a = v >> 8 & 0xff;
		R(s, EERD) = (v & 0xff00) | 0x10 | (uint32_t)(a < 64 ? s->eeprom[a] : 0) << 16;
		return;
	}
	case MDIC: mdic_write(s, v); return;
	case ICR: R(s, ICR) &= ~v; update_irq(s); return;
	case ICS: raise_irq(s, v); return;
	case IMS: R(s, IMS) |= v; update_irq(s); return;
	case IMC: R(s, IMS) &= ~v; update_irq(s); return;
	case RDLEN: case TDLEN: R(s, off) = v & 0xfff80; return;
	case TDT: R(s, TDT) = v & 0xffff; tx_run(s); return;
	case TCTL: R(s, TCTL) = v; tx_run(s); return;
	case RDH: case RDT: case TDH: R(s, off) = v & 0xffff; return;
	}
	s->reg[off >> 2] = v;
}

static void mmio_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct e1000 *s = opaque;

	if (off >= MMIO_SIZE || (off & 3) || size != 4) {
		LOG(LOG_GUEST_ERRORS, "e1000: %u-byte write at 0x%" PRIx64, size, off);
		return;
	}
	reg_write(s, off, v);
}

static const struct hw_io_ops e1000_mmio = { mmio_read, mmio_write };

static void bar_map(struct hw_pci_dev *d, int bar, uint64_t addr, bool io)
{
	if (bar == 0)
		hw_mmio_move(d->m, d->opaque, 0, addr);
}

static const struct hw_pci_ops e1000_pci = { .bar_map = bar_map };

/* ---- state ---- */

static void dev_reset(void *dev)
{
	struct e1000 *s = dev;

	regs_reset(s);
	update_irq(s);
}

static void dev_save(void *dev, struct hw_wbuf *w)
{
	struct e1000 *s = dev;

	for (int i = 0; i < STATS / 4; i++)
		hw_put32(w, s->reg[i]);
	for (int i = RAL0 / 4; i < RAL0 / 4 + 32; i++)
		hw_put32(w, s->reg[i]);
	for (int i = 0; i < PHY_REGS; i++)
		hw_put16(w, s->phy[i]);
}

static int dev_load(void *dev, struct hw_rbuf *r)
{
	struct e1000 *s = dev;
	uint32_t reg[STATS / 4], ra[32];
	uint16_t phy[PHY_REGS];

	for (int i = 0; i < STATS / 4; i++)
		reg[i] = hw_get32(r);
	for (int i = 0; i < 32; i++)
		ra[i] = hw_get32(r);
	for (int i = 0; i < PHY_REGS; i++)
		phy[i] = hw_get16(r);
	if (r->err)
		return -EINVAL;
	memcpy(s->reg, reg, sizeof(reg));
	memcpy(s->reg + RAL0 / 4, ra, sizeof(ra));
	memcpy(s->phy, phy, sizeof(phy));
	R(s, RDH) &= 0xffff;
	R(s, TDH) &= 0xffff;
	return 0;
}

static void dev_free(void *dev) { free(dev); }

static const struct hw_dev_ops e1000_dev = {
	.name = "e1000", .version = 1, .reset = dev_reset, .save = dev_save,
	.load = dev_load, .free = dev_free,
};

int e1000_new(struct machine *m, int idx, const struct hw_nic *nic)
{
	struct e1000 *s = xzalloc(sizeof(*s));
	int r;

	s->m = m;
	s->nic = *nic;
	s->idx = idx;
	s->pci = pci_add(m, 0x8086, 0x100e, 0x020000 << 8 | 3, 0, &e1000_pci, s);
	if (!s->pci) {
		free(s);
		return -ENOSPC;
	}
	pci_set_bar(s->pci, 0, MMIO_SIZE, false, false);
	regs_reset(s);
	r = hw_dev_add(m, &e1000_dev, s);
	if (r < 0) {
		free(s);
		return r;
	}
	r = hw_mmio_add(m, 0, MMIO_SIZE, &e1000_mmio, s, "e1000");
	if (r < 0)
		return r;
	m->e1000[idx] = s;
	return 0;
}

/* Link state from the host (the back-end went away or came back). */
static void e1000_set_link(struct e1000 *s, bool up)
{
	if (s->link_down == !up)
		return;
	s->link_down = !up;
	R(s, STATUS) = up ? R(s, STATUS) | STATUS_LU : R(s, STATUS) & ~STATUS_LU;
	s->phy[PHY_STATUS] = up ? s->phy[PHY_STATUS] | 0x24 : s->phy[PHY_STATUS] & ~0x24;
	raise_irq(s, ICR_LSC);
}

void machine_nic_input(struct machine *m, int idx, const uint8_t *frame, size_t len)
{
	if (idx < 0 || idx >= HW_MAX_NICS)
		return;
	pthread_mutex_lock(&m->lock);
	struct e1000 *s = m->e1000[idx];
	if (s)
		e1000_input(s, frame, len);
	pthread_mutex_unlock(&m->lock);
	if (!s)
		machine_net_input(m, idx, frame, len);
}


void machine_nic_set_link(struct machine *m, int idx, bool up)
{
	if (idx < 0 || idx >= HW_MAX_NICS)
		return;
	pthread_mutex_lock(&m->lock);
	if (m->e1000[idx])
		e1000_set_link(m->e1000[idx], up);
	else if (m->virtnet[idx])
		virtio_net_set_link(m->virtnet[idx], up);
	pthread_mutex_unlock(&m->lock);
}
