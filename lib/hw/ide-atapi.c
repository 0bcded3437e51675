/*
 * The ATAPI CD-ROM behind ide.c: the PACKET command protocol of
 * ATA/ATAPI-6 section 9.8 (interrupt reason in the sector count
 * register, byte count limit in the cylinder registers, one interrupt
 * per DRQ block) and the MMC-3 commands that firmware, boot loaders and
 * Linux's sr driver send: TEST UNIT READY, REQUEST SENSE, INQUIRY,
 * READ CAPACITY, READ(10)/READ(12), READ TOC (formats 0 and 1), MODE
 * SENSE(10), GET CONFIGURATION, GET EVENT STATUS NOTIFICATION,
 * MECHANISM STATUS, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL.
 *
 * Removable media (SPC-3 and MMC-3 sense codes): with no medium the
 * medium-access commands fail NOT READY / MEDIUM NOT PRESENT (3A/02,
 * tray open); after the monitor loads a new medium the next command
 * (but INQUIRY, REQUEST SENSE, GET EVENT STATUS) fails UNIT ATTENTION /
 * MEDIUM MAY HAVE CHANGED (28/00), which is how Linux's sr driver
 * notices, and GET EVENT STATUS NOTIFICATION reports the media event.
 * START STOP UNIT with LoEj opens or closes the tray (refused while the
 * guest holds it locked) and tells the embedder (on_tray_moved).
 */
#include <string.h>

#include "common/common.h"
#include "hw/ide.h"

enum { SK_NOT_READY = 2, SK_ILLEGAL = 5, SK_UNIT_ATTENTION = 6 };

void atapi_identify(struct ide_drive *d, uint8_t *id)
{
	memset(id, 0, 512);
	id[0] = 0xc0; id[1] = 0x85;		/* ATAPI, CD-ROM, removable, 12-byte packets */
	ide_put_string(id, 10, 10, "VMRUN0002");
	ide_put_string(id, 23, 4, "0.1.0");
	ide_put_string(id, 27, 20, "VM-RUN DVD-ROM");
	id[49 * 2 + 1] = 0x02;			/* LBA */
	id[53 * 2] = 0x03;
	id[64 * 2] = 0x03;
	id[80 * 2] = 0x1e;
}

static void complete(struct ide_channel *c, uint8_t key, uint8_t asc)
{
	struct ide_drive *d = ide_cur(c);

	c->xfer = X_NONE;
	c->nsector = 3;				/* I/O, C/D: status phase */
	d->sense_key = key;
	d->asc = asc;
	d->ascq = key == SK_NOT_READY && asc == 0x3a ? (d->tray_open ? 2 : 1) : 0;
	if (key) {
		c->status = ST_DRDY | ST_ERR;
		c->error = key << 4 | ERR_ABRT;
	} else {
		c->status = ST_DRDY | ST_DSC;
		c->error = 0;
	}
	ide_set_irq(c);
}

/* Offer the next DRQ block, loading more of a READ when the buffer is spent. */
static void start_block(struct ide_channel *c)
{
	struct ide_drive *d = ide_cur(c);
	uint32_t blk;

	if (c->pos >= c->fill) {
		if (!c->remaining) {
			complete(c, 0, 0);
			return;
		}
		uint32_t n = MIN(c->remaining, IDE_BUF);
		if (ide_blk_io(c, d, 'r', c->buf, c->lba * 2048, n, n == c->remaining) < 0) {
			complete(c, 3, 0x11);	/* MEDIUM ERROR, unrecovered read error */
			return;
		}
		c->lba += n / 2048;
		c->remaining -= n;
		c->pos = 0;
		c->fill = n;
	}
	blk = MIN(c->fill - c->pos, c->atapi_limit);
	c->end = c->pos + blk;
	c->lcyl = blk;
	c->hcyl = blk >> 8;
	c->nsector = 2;				/* I/O: data to the host */
	c->xfer = X_ATAPI_IN;
	c->status = ST_DRDY | ST_DSC | ST_DRQ;
	ide_set_irq(c);
}

void atapi_data_consumed(struct ide_channel *c)
{
	start_block(c);
}

void atapi_packet_start(struct ide_channel *c)
{
	uint32_t lim = c->lcyl | c->hcyl << 8;

	c->atapi_limit = lim && lim != 0xffff ? lim & ~1u : 0xfffe;
	c->xfer = X_PACKET;
	c->pos = 0;
	c->end = 12;
	c->nsector = 1;				/* C/D: send the command */
	c->status = ST_DRDY | ST_DRQ;
}

/* Send len bytes already in c->buf, cut to the allocation length. */
static void reply(struct ide_channel *c, uint32_t len, uint32_t alloc)
{
	c->fill = MIN(len, alloc);
	c->pos = 0;
	c->remaining = 0;
	start_block(c);
}

static uint32_t be(const uint8_t *p, int n)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be(uint8_t *p, uint32_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = v;
}

static void lba_to_msf(uint8_t *p, uint32_t lba)
{
	lba += 150;
	p[0] = 0;
	p[1] = lba / (60 * 75);
	p[2] = (lba / 75) % 60;
	p[3] = lba % 75;
}

static uint32_t read_toc(struct ide_drive *d, const uint8_t *cdb, uint8_t *b)
{
	bool msf = cdb[1] & 2;
	int format = cdb[9] >> 6 ? cdb[9] >> 6 : cdb[2] & 15;

	memset(b, 0, 20);
	if (format == 1) {		/* session info */
		put_be(b, 10, 2);
		b[2] = b[3] = 1;
		b[5] = 0x14;
		b[6] = 1;
		return 12;
	}
	put_be(b, 18, 2);
	b[2] = b[3] = 1;
	b[5] = 0x14; b[6] = 1;		/* track 1, data */
	if (msf)
		lba_to_msf(b + 8, 0);
	b[13] = 0x14; b[14] = 0xaa;	/* lead-out */
	if (msf)
		lba_to_msf(b + 16, d->sectors);
	else
		put_be(b + 16, d->sectors, 4);
	return 20;
}

static void do_read(struct ide_channel *c, uint32_t lba, uint32_t count)
{
	struct ide_drive *d = ide_cur(c);

	if ((uint64_t)lba + count > d->sectors) {
		complete(c, SK_ILLEGAL, 0x21);	/* LBA out of range */
		return;
	}
	if (!count) {
		complete(c, 0, 0);
		return;
	}
	c->lba = lba;
	c->remaining = count * 2048;
	c->pos = c->fill = 0;
	start_block(c);
}

/* GET EVENT STATUS NOTIFICATION, media class only (MMC-3 5.6). */
static void event_status(struct ide_channel *c, struct ide_drive *d, const uint8_t *cdb)
{
	uint8_t *b = c->buf;

	if (!(cdb[1] & 1)) {			/* only polled requests */
		complete(c, SK_ILLEGAL, 0x24);
		return;
	}
	memset(b, 0, 8);
	put_be(b, 6, 2); b[2] = 4; b[3] = 0x10;
	b[4] = d->media_event;
	b[5] = d->tray_open ? 1 : d->sectors ? 2 : 0;	/* door open, media present */
	if (cdb[4] & 0x10)
		d->media_event = 0;
	reply(c, 8, be(cdb + 7, 2));
}

/* Unit attention and a missing medium, before the command runs:
 * true when the command was answered. */
static bool media_check(struct ide_channel *c, struct ide_drive *d, uint8_t op)
{
	bool info = op == 0x03 || op == 0x12 || op == 0x4a || op == 0x46 || op == 0xbd || op == 0x1e;

	if (d->unit_attention && !info) {
		d->unit_attention = false;
		complete(c, SK_UNIT_ATTENTION, 0x28);
		return true;
	}
	if ((d->disk.empty || d->tray_open) && !info && op != 0x1b && op != 0x5a) {
		complete(c, SK_NOT_READY, 0x3a);
		return true;
	}
	return false;
}

/* START STOP UNIT with LoEj set: load (close the tray) or eject. */
static void load_eject(struct ide_channel *c, struct ide_drive *d, bool load)
{
	const struct hw_config *cfg = &c->ide->m->cfg;

	if (!load && d->locked) {
		complete(c, SK_ILLEGAL, 0x53);	/* MEDIUM REMOVAL PREVENTED */
		d->ascq = 2;
		return;
	}
	if (d->tray_open != !load) {
		d->tray_open = !load;
		if (load && !d->disk.empty) {
			d->unit_attention = true;
			d->media_event = 2;
		}
		if (cfg->on_tray_moved)
			cfg->on_tray_moved(cfg->on_block_error_opaque, d->index, !load);
	}
	complete(c, 0, 0);
}

void atapi_packet_ready(struct ide_channel *c)
{
	struct ide_drive *d = ide_cur(c);
	uint8_t cdb[12], *b = c->buf;

	memcpy(cdb, c->buf, 12);
	LOG(LOG_IOPORT, "atapi: command 0x%02x", cdb[0]);
	if (cdb[0] != 0x03)
		d->sense_key = d->asc = d->ascq = 0;
	if (media_check(c, d, cdb[0]))
		return;
	switch (cdb[0]) {
	case 0x1e:
		d->locked = cdb[4] & 1;
		complete(c, 0, 0);
		return;
	case 0x1b:
		if (cdb[4] & 2)
			load_eject(c, d, cdb[4] & 1);
		else
			complete(c, 0, 0);
		return;
	case 0x00: case 0x35:
		complete(c, 0, 0);
		return;
	case 0x03:
		memset(b, 0, 18);
		b[0] = 0x70; b[2] = d->sense_key; b[7] = 10; b[12] = d->asc; b[13] = d->ascq;
		d->sense_key = d->asc = d->ascq = 0;
		reply(c, 18, cdb[4]);
		return;
	case 0x12:
		memset(b, 0, 36);
		b[0] = 0x05; b[1] = 0x80; b[2] = 0x00; b[3] = 0x21; b[4] = 31;
		memcpy(b + 8, "VMRUN   DVD-ROM         0.1 ", 28);
		reply(c, 36, cdb[4]);
		return;
	case 0x25:
		put_be(b, d->sectors - 1, 4);
		put_be(b + 4, 2048, 4);
		reply(c, 8, 8);
		return;
	case 0x28: do_read(c, be(cdb + 2, 4), be(cdb + 7, 2)); return;
	case 0xa8: do_read(c, be(cdb + 2, 4), be(cdb + 6, 4)); return;
	case 0x43: reply(c, read_toc(d, cdb, b), be(cdb + 7, 2)); return;
	case 0x46:
		memset(b, 0, 8);
		put_be(b, 4, 4);
		put_be(b + 6, 0x0008, 2);		/* current profile: CD-ROM */
		reply(c, 8, be(cdb + 7, 2));
		return;
	case 0x4a:
		event_status(c, d, cdb);
		return;
	case 0x5a:
		if ((cdb[2] & 0x3f) != 0x2a && (cdb[2] & 0x3f) != 0x3f) {
			complete(c, SK_ILLEGAL, 0x24);
			return;
		}
		memset(b, 0, 28);
		put_be(b, 26, 2);
		b[2] = 0x70;				/* medium type: closed tray */
		b[8] = 0x2a; b[9] = 18; b[10] = 0x03; b[14] = 0x29;	/* reads CD-R/RW, lock, eject */
		reply(c, 28, be(cdb + 7, 2));
		return;
	case 0xbd:
		memset(b, 0, 8);
		reply(c, 8, be(cdb + 8, 2));
		return;
	default:
		LOG(LOG_UNIMP, "atapi: command 0x%02x", cdb[0]);
		complete(c, SK_ILLEGAL, 0x20);		/* invalid command operation code */
	}
}
