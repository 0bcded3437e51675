/*
 * The DSDT, in AML written byte by byte (ACPI 6.x chapter 20, "ACPI
 * Machine Language Specification"): the \_S5 soft-off package that
 * acpi.c's PM1a control register acts on, and the PCI root bridge
 * \_SB.PCI0 (PNP0A03) with a _PRT that routes INTA-INTD of every slot
 * straight to the GSIs the PIIX PIRQ swizzle gives (10, 10, 11, 11), so
 * that an OS finds the PCI bus and its interrupts without link devices.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

/* Append op bytes, then a PkgLength covering itself and body. */
static void pkg(struct hw_wbuf *w, const uint8_t *op, size_t oplen, const struct hw_wbuf *body)
{
	size_t len = body->len;
	uint8_t b[4];
	int n;

	hw_putb(w, op, oplen);
	if (len + 1 < 0x40) {
		b[0] = len + 1;
		n = 1;
	} else if (len + 2 < 0x1000) {
		len += 2;
		b[0] = 0x40 | (len & 15);
		b[1] = len >> 4;
		n = 2;
	} else {
		len += 3;
		b[0] = 0x80 | (len & 15);
		b[1] = len >> 4;
		b[2] = len >> 12;
		n = 3;
	}
	hw_putb(w, b, n);
	hw_putb(w, body->p, body->len);
}

static void integer(struct hw_wbuf *w, uint32_t v)
{
	if (v == 0 || v == 1) {
		hw_put8(w, v);			/* ZeroOp, OneOp */
	} else if (v < 0x100) {
		hw_put8(w, 0x0a);
		hw_put8(w, v);
	} else {
		hw_put8(w, 0x0c);
		hw_put32(w, v);
	}
}

static void name(struct hw_wbuf *w, const char *seg)
{
	hw_put8(w, 0x08);			/* NameOp */
	hw_putb(w, seg, 4);
}

static void prt(struct hw_wbuf *w)
{
	static const uint8_t gsi[4] = { 10, 10, 11, 11 };
	struct hw_wbuf list = { 0 };
	int n = 0;

	for (int slot = 1; slot < 32; slot++)
		for (int pin = 0; pin < 4; pin++, n++) {
			struct hw_wbuf e = { 0 };
			hw_put8(&e, 4);
			integer(&e, (uint32_t)slot << 16 | 0xffff);
			integer(&e, pin);
			integer(&e, 0);
			integer(&e, gsi[(slot - 1 + pin) & 3]);
			pkg(&list, (const uint8_t[]){ 0x12 }, 1, &e);
			free(e.p);
		}
	struct hw_wbuf body = { 0 };
	hw_put8(&body, n);			/* NumElements */
	hw_putb(&body, list.p, list.len);
	name(w, "_PRT");
	pkg(w, (const uint8_t[]){ 0x12 }, 1, &body);
	free(list.p);
	free(body.p);
}

/* Word or DWord address space descriptor (6.4.3.5.2/3): type 0 memory,
 * 1 I/O, 2 bus; fixed minimum and maximum, no translation. */
static void addr_desc(struct hw_wbuf *w, bool dword, uint8_t type, uint8_t tflags,
		      uint32_t min, uint32_t max)
{
	hw_put8(w, dword ? 0x87 : 0x88);
	hw_put16(w, dword ? 23 : 13);
	hw_put8(w, type);
	hw_put8(w, 0x0c);			/* MinFixed, MaxFixed, producer */
	hw_put8(w, tflags);
	if (dword) {
		hw_put32(w, 0);			/* granularity */
		hw_put32(w, min);
		hw_put32(w, max);
		hw_put32(w, 0);			/* translation */
		hw_put32(w, max - min + 1);
	} else {
		hw_put16(w, 0);
		hw_put16(w, (uint16_t)min);
		hw_put16(w, (uint16_t)max);
		hw_put16(w, 0);
		hw_put16(w, (uint16_t)(max - min + 1));
	}
}

static void crs(struct hw_wbuf *w, uint64_t lowmem)
{
	struct hw_wbuf rt = { 0 }, buf = { 0 };

	addr_desc(&rt, false, 2, 0, 0, 0xff);			/* buses 0-255 */
	hw_putb(&rt, (const uint8_t[]){ 0x47, 1, 0xf8, 0x0c, 0xf8, 0x0c, 1, 8 }, 8);
	addr_desc(&rt, false, 1, 3, 0x0000, 0x0cf7);		/* EntireRange */
	addr_desc(&rt, false, 1, 3, 0x0d00, 0xffff);
	addr_desc(&rt, true, 0, 3, 0xa0000, 0xbffff);		/* cacheable, RW */
	addr_desc(&rt, true, 0, 1, (uint32_t)lowmem, 0xfebfffff);	/* RW */
	hw_putb(&rt, (const uint8_t[]){ 0x79, 0 }, 2);		/* end tag */
	integer(&buf, (uint32_t)rt.len);
	hw_putb(&buf, rt.p, rt.len);
	name(w, "_CRS");
	pkg(w, (const uint8_t[]){ 0x11 }, 1, &buf);		/* BufferOp */
	free(rt.p);
	free(buf.p);
}

/* The AML body of the DSDT (without the table header); lowmem: where RAM
 * below 4 GiB ends and the PCI hole begins. */
void acpi_dsdt_aml(struct hw_wbuf *w, uint64_t lowmem)
{
	struct hw_wbuf s5 = { 0 }, dev = { 0 }, scope = { 0 };

	hw_put8(&s5, 4);
	for (int i = 0; i < 4; i++)
		integer(&s5, 0);
	name(w, "_S5_");
	pkg(w, (const uint8_t[]){ 0x12 }, 1, &s5);

	hw_putb(&dev, "PCI0", 4);
	name(&dev, "_HID");
	hw_put8(&dev, 0x0c);
	hw_putb(&dev, (const uint8_t[]){ 0x41, 0xd0, 0x0a, 0x03 }, 4);	/* EisaId("PNP0A03") */
	name(&dev, "_ADR");
	integer(&dev, 0);
	name(&dev, "_UID");
	integer(&dev, 0);
	crs(&dev, lowmem);
	prt(&dev);
	hw_putb(&scope, "\\_SB_", 5);
	pkg(&scope, (const uint8_t[]){ 0x5b, 0x82 }, 2, &dev);	/* DeviceOp */
	pkg(w, (const uint8_t[]){ 0x10 }, 1, &scope);		/* ScopeOp */
	free(s5.p);
	free(dev.p);
	free(scope.p);
}
