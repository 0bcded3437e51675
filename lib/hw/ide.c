/*
 * The PIIX3 IDE controller (PCI 00:01.1, legacy compatibility mode:
 * channels at 0x1f0/0x3f6 on IRQ 14 and 0x170/0x376 on IRQ 15) with ATA
 * hard disks and ATAPI CD-ROMs, following ATA/ATAPI-6 (T13/1410D): the
 * task file with the 48-bit "previous" registers, device control (nIEN,
 * SRST, HOB), signatures after reset, IDENTIFY (PACKET) DEVICE, READ and
 * WRITE SECTORS / MULTIPLE (28- and 48-bit LBA, and CHS), VERIFY, FLUSH
 * CACHE, SET FEATURES / MULTIPLE MODE, and the PACKET command handed to
 * ide-atapi.c.  PIO only: there is no bus-master DMA BAR.
 *
 * For the monitor: every back-end request goes through ide_blk_io(),
 * which counts it in the drive's hw_block_stats and applies the drive's
 * rerror/werror policy (QEMU's -drive options); machine_cdrom_change()
 * swaps the CD-ROM's medium.
 */
#include <string.h>

#include "common/common.h"
#include "hw/ide.h"

static const uint16_t ch_base[2] = { 0x1f0, 0x170 }, ch_ctl[2] = { 0x3f6, 0x376 };

void ide_set_irq(struct ide_channel *c)
{
	c->irq_pending = true;
	if (!(c->ctrl & 2))
		hw_set_irq(c->ide->m, c->irq, true);
}

static enum hw_blk_error_action error_action(const struct ide_drive *d, char kind, int err)
{
	enum hw_blk_error_action a = kind == 'r' ? d->disk.rerror : d->disk.werror;

	if (a == HW_BLKERR_ENOSPC)
		a = err == -ENOSPC ? HW_BLKERR_STOP : HW_BLKERR_REPORT;
	return a;
}

/* The machine stops for a failed request: this vCPU waits, counted as
 * parked, until it runs again.  False when the machine ends. */
static bool stop_and_wait_locked(struct machine *m)
{
	m->paused = true;
	for (int i = 0; i < m->ncpu; i++)
		hw_cpu_kick(m, i);
	m->nparked++;
	pthread_cond_broadcast(&m->state_cond);
	while (m->paused && !m->stopping)
		pthread_cond_wait(&m->state_cond, &m->lock);
	m->nparked--;
	return !m->stopping;
}

static void count(struct hw_block_stats *s, char kind, size_t len, bool last, int err, int64_t t0)
{
	int64_t now = hw_clock_ns();
	uint64_t *ops = kind == 'r' ? &s->rd_ops : kind == 'w' ? &s->wr_ops : &s->flush_ops;
	uint64_t *ns = kind == 'r' ? &s->rd_ns : kind == 'w' ? &s->wr_ns : &s->flush_ns;

	if (err < 0)
		__atomic_fetch_add(kind == 'r' ? &s->failed_rd : kind == 'w' ? &s->failed_wr :
				   &s->failed_flush, 1, __ATOMIC_RELAXED);
	else if (last)
		__atomic_fetch_add(ops, 1, __ATOMIC_RELAXED);
	if (err >= 0 && kind != 'f')
		__atomic_fetch_add(kind == 'r' ? &s->rd_bytes : &s->wr_bytes, len, __ATOMIC_RELAXED);
	__atomic_fetch_add(ns, (uint64_t)(now - t0), __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_ns, now, __ATOMIC_RELAXED);
}

int ide_blk_io(struct ide_channel *c, struct ide_drive *d, char kind, void *buf,
	       uint64_t off, size_t len, bool last)
{
	struct machine *m = c->ide->m;
	const struct hw_block_ops *ops = d->disk.ops;
	enum hw_blk_error_action a;
	int r;

	for (;;) {
		int64_t t0 = hw_clock_ns();
		if (!ops)
			r = -ENOMEDIUM;
		else if (kind == 'r')
			r = ops->read(d->disk.opaque, buf, off, len);
		else if (kind == 'w')
			r = ops->write(d->disk.opaque, buf, off, len);
		else
			r = ops->flush ? ops->flush(d->disk.opaque) : 0;
		if (d->disk.stats)
			count(d->disk.stats, kind, len, last, r, t0);
		if (r >= 0 || !ops)
			return r;
		a = error_action(d, kind, r);
		if (m->cfg.on_block_error)
			m->cfg.on_block_error(m->cfg.on_block_error_opaque, d->index, kind != 'r', r, a);
		if (a == HW_BLKERR_IGNORE)
			return 0;
		if (a != HW_BLKERR_STOP || !stop_and_wait_locked(m))
			return r;
		ops = d->disk.ops;
	}
}

static void clear_irq(struct ide_channel *c)
{
	c->irq_pending = false;
	hw_set_irq(c->ide->m, c->irq, false);
}

void ide_abort(struct ide_channel *c)
{
	c->xfer = X_NONE;
	c->error = ERR_ABRT;
	c->status = ST_DRDY | ST_ERR;
	ide_set_irq(c);
}

static void done(struct ide_channel *c)
{
	c->xfer = X_NONE;
	c->error = 0;
	c->status = ST_DRDY | ST_DSC;
	ide_set_irq(c);
}

void ide_pio_in(struct ide_channel *c, uint32_t len)
{
	c->pos = 0;
	c->end = len;
	c->status = ST_DRDY | ST_DSC | ST_DRQ;
	ide_set_irq(c);
}

void ide_put_string(uint8_t *id, int word, int words, const char *s)
{
	for (int i = 0; i < 2 * words; i++)
		id[2 * word + (i ^ 1)] = *s ? *s++ : ' ';
}

static void put_word(uint8_t *id, int w, uint16_t v) { id[2 * w] = v; id[2 * w + 1] = v >> 8; }

static void identify(struct ide_drive *d, uint8_t *id)
{
	uint64_t lba28 = MIN(d->sectors, 0x0fffffffull);

	memset(id, 0, 512);
	put_word(id, 0, 0x0040);
	put_word(id, 1, d->cyls);
	put_word(id, 3, d->heads);
	put_word(id, 6, d->spt);
	ide_put_string(id, 10, 10, "VMRUN0001");
	ide_put_string(id, 23, 4, "0.1.0");
	ide_put_string(id, 27, 20, "VM-RUN HARDDISK");
	put_word(id, 47, 0x8010);
	put_word(id, 49, 0x0200);
	put_word(id, 51, 0x0200);
	put_word(id, 53, 0x0007);
	put_word(id, 54, d->cyls);
	put_word(id, 55, d->heads);
	put_word(id, 56, d->spt);
	uint32_t chs = d->cyls * d->heads * d->spt;
	put_word(id, 57, chs);
	put_word(id, 58, chs >> 16);
	put_word(id, 59, d->mult ? 0x100 | d->mult : 0);
	put_word(id, 60, lba28);
	put_word(id, 61, lba28 >> 16);
	put_word(id, 64, 0x0003);
	put_word(id, 80, 0x007e);
	put_word(id, 82, 0x4000);
	put_word(id, 83, 0x7400);
	put_word(id, 84, 0x4000);
	put_word(id, 85, 0x4000);
	put_word(id, 86, 0x3400);
	put_word(id, 87, 0x4000);
	for (int i = 0; i < 4; i++)
		put_word(id, 100 + i, d->sectors >> (16 * i));
}

static uint64_t task_lba(struct ide_channel *c, bool lba48)
{
	if (lba48)
		return (uint64_t)c->hob_hcyl << 40 | (uint64_t)c->hob_lcyl << 32 |
		       (uint64_t)c->hob_sector << 24 | c->hcyl << 16 | c->lcyl << 8 | c->sector;
	if (c->select & 0x40)
		return (uint32_t)(c->select & 15) << 24 | c->hcyl << 16 | c->lcyl << 8 | c->sector;
	struct ide_drive *d = ide_cur(c);
	uint32_t cyl = c->hcyl << 8 | c->lcyl;
	return ((uint64_t)cyl * d->heads + (c->select & 15)) * d->spt + c->sector - 1;
}

/* Fill the buffer with the next block of a READ and offer it. */
static void read_block(struct ide_channel *c, unsigned per_block)
{
	struct ide_drive *d = ide_cur(c);
	uint32_t n = MIN(c->remaining, per_block);

	if (ide_blk_io(c, d, 'r', c->buf, c->lba * 512, n * 512, n == c->remaining) < 0) {
		ide_abort(c);
		return;
	}
	c->lba += n;
	c->remaining -= n;
	ide_pio_in(c, n * 512);
}

static void rw_start(struct ide_channel *c, bool write, bool lba48, bool multiple)
{
	struct ide_drive *d = ide_cur(c);
	uint32_t count = lba48 ? (c->hob_nsector << 8 | c->nsector) : c->nsector;

	if (!count)
		count = lba48 ? 65536 : 256;
	c->lba = task_lba(c, lba48);
	c->lba48 = lba48;
	if (c->lba + count > d->sectors || (multiple && !d->mult) || (write && d->disk.readonly)) {
		ide_abort(c);
		return;
	}
	c->remaining = count;
	c->per_block = multiple ? d->mult : 1;
	if (write) {
		c->xfer = X_WRITE;
		c->pos = 0;
		c->end = MIN(c->remaining, c->per_block) * 512;
		c->status = ST_DRDY | ST_DSC | ST_DRQ;
	} else {
		c->xfer = X_READ;
		read_block(c, c->per_block);
	}
}

static void write_block_done(struct ide_channel *c)
{
	struct ide_drive *d = ide_cur(c);
	uint32_t n = c->end / 512;

	if (ide_blk_io(c, d, 'w', c->buf, c->lba * 512, c->end, n == c->remaining) < 0) {
		ide_abort(c);
		return;
	}
	c->lba += n;
	c->remaining -= n;
	if (!c->remaining) {
		done(c);
		return;
	}
	c->pos = 0;
	c->end = MIN(c->remaining, c->per_block) * 512;
	c->status = ST_DRDY | ST_DSC | ST_DRQ;
	ide_set_irq(c);
}

static void set_signature(struct ide_channel *c, struct ide_drive *d)
{
	c->nsector = c->sector = 1;
	c->lcyl = d->atapi ? 0x14 : 0;
	c->hcyl = d->atapi ? 0xeb : 0;
	c->error = 1;
	c->status = d->atapi || !d->present ? 0 : ST_DRDY | ST_DSC;
}

static void command(struct ide_channel *c, uint8_t cmd)
{
	struct ide_drive *d = ide_cur(c);

	if (!d->present)
		return;
	LOG(LOG_IOPORT, "ide%d: command 0x%02x", c->irq - 14, cmd);
	if (d->atapi) {
		switch (cmd) {
		case 0xa1: atapi_identify(d, c->buf); c->xfer = X_READ; c->remaining = 0; ide_pio_in(c, 512); return;
		case 0xa0: atapi_packet_start(c); return;
		case 0x08: set_signature(c, d); c->status = 0; ide_set_irq(c); return;
		case 0xef: case 0x00: done(c); return;
		case 0xec: set_signature(c, d); ide_abort(c); return;	/* tells the host: ATAPI */
		default: ide_abort(c); return;
		}
	}
	switch (cmd) {
	case 0xec: identify(d, c->buf); c->xfer = X_READ; c->remaining = 0; ide_pio_in(c, 512); return;
	case 0x20: case 0x21: rw_start(c, false, false, false); return;
	case 0x24: rw_start(c, false, true, false); return;
	case 0xc4: rw_start(c, false, false, true); return;
	case 0x29: rw_start(c, false, true, true); return;
	case 0x30: case 0x31: rw_start(c, true, false, false); return;
	case 0x34: rw_start(c, true, true, false); return;
	case 0xc5: rw_start(c, true, false, true); return;
	case 0x39: rw_start(c, true, true, true); return;
	case 0xc6:
		if (c->nsector > 16 || (c->nsector & (c->nsector - 1))) {
			ide_abort(c);
			return;
		}
		d->mult = c->nsector;
		done(c);
		return;
	case 0xe7: case 0xea:
		if (ide_blk_io(c, d, 'f', NULL, 0, 0, true) < 0) {
			ide_abort(c);
			return;
		}
		done(c);
		return;
	case 0xe5: c->nsector = 0xff; done(c); return;
	case 0x40: case 0x41: case 0x42: case 0x10: case 0x91: case 0xef:
	case 0xe0: case 0xe1: case 0xe2: case 0xe3: case 0x70:
		done(c);
		return;
	default:
		LOG(LOG_UNIMP, "ide: ATA command 0x%02x", cmd);
		ide_abort(c);
	}
}

/* The host took the last byte of a DRQ block. */
static void data_in_done(struct ide_channel *c)
{
	if (c->xfer == X_READ && c->remaining) {
		read_block(c, c->per_block);
		return;
	}
	if (c->xfer == X_ATAPI_IN) {
		atapi_data_consumed(c);
		return;
	}
	c->xfer = X_NONE;
	c->status = ST_DRDY | ST_DSC;
}

static uint32_t data_read(struct ide_channel *c, unsigned size)
{
	uint32_t v = 0;

	if (!(c->status & ST_DRQ) || (c->xfer != X_READ && c->xfer != X_ATAPI_IN))
		return 0;
	for (unsigned i = 0; i < size && c->pos < c->end; i++)
		v |= (uint32_t)c->buf[c->pos++] << (8 * i);
	if (c->pos >= c->end)
		data_in_done(c);
	return v;
}

static void data_write(struct ide_channel *c, uint32_t v, unsigned size)
{
	if (!(c->status & ST_DRQ) || (c->xfer != X_WRITE && c->xfer != X_PACKET))
		return;
	for (unsigned i = 0; i < size && c->pos < c->end; i++)
		c->buf[c->pos++] = v >> (8 * i);
	if (c->pos < c->end)
		return;
	if (c->xfer == X_PACKET)
		atapi_packet_ready(c);
	else
		write_block_done(c);
}

static uint64_t ide_read(void *opaque, uint64_t off, unsigned size)
{
	struct ide_channel *c = opaque;
	struct ide_drive *d = ide_cur(c);
	bool hob = c->ctrl & 0x80, none = !c->drive[0].present && !c->drive[1].present;

	if (off == 0)
		return data_read(c, size);
	if (none)
		return 0xff;
	switch (off) {
	case 1: return hob ? c->hob_feature : c->error;
	case 2: return hob ? c->hob_nsector : c->nsector;
	case 3: return hob ? c->hob_sector : c->sector;
	case 4: return hob ? c->hob_lcyl : c->lcyl;
	case 5: return hob ? c->hob_hcyl : c->hcyl;
	case 6: return c->select;
	case 7:
		clear_irq(c);
		return d->present ? c->status : 0;
	default:	/* alternate status */
		return d->present ? c->status : 0;
	}
}

static void soft_reset(struct ide_channel *c)
{
	c->xfer = X_NONE;
	c->select = 0xa0;
	for (int i = 1; i >= 0; i--)
		if (c->drive[i].present)
			set_signature(c, &c->drive[i]);
	c->select = 0xa0;
	clear_irq(c);
}

static void ide_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct ide_channel *c = opaque;

	if (off >= 1 && off <= 5)
		c->ctrl &= ~0x80;
	switch (off) {
	case 0: data_write(c, v, size); return;
	case 1: c->hob_feature = c->feature; c->feature = v; return;
	case 2: c->hob_nsector = c->nsector; c->nsector = v; return;
	case 3: c->hob_sector = c->sector; c->sector = v; return;
	case 4: c->hob_lcyl = c->lcyl; c->lcyl = v; return;
	case 5: c->hob_hcyl = c->hcyl; c->hcyl = v; return;
	case 6: c->select = v | 0xa0; return;
	case 7: clear_irq(c); command(c, v); return;
	default:		/* device control */
		if ((v & 4) && !(c->ctrl & 4)) {
			c->status = ST_BSY;
		} else if (!(v & 4) && (c->ctrl & 4)) {
			soft_reset(c);
		}
		c->ctrl = v;
		if (c->irq_pending && !(v & 2))
			hw_set_irq(c->ide->m, c->irq, true);
		else if (v & 2)
			hw_set_irq(c->ide->m, c->irq, false);
	}
}

static uint64_t ctl_read(void *o, uint64_t off, unsigned size) { return ide_read(o, 8, size); }
static void ctl_write(void *o, uint64_t off, uint64_t v, unsigned size) { ide_write(o, 8, v, size); }

static const struct hw_io_ops ide_io = { ide_read, ide_write };
static const struct hw_io_ops ide_ctl_io = { ctl_read, ctl_write };

static void ide_reset(void *dev)
{
	struct hw_ide *ide = dev;

	for (int i = 0; i < 2; i++) {
		struct ide_channel *c = &ide->ch[i];
		c->ctrl = 0;
		c->drive[0].mult = c->drive[1].mult = 16;
		soft_reset(c);
	}
}

static void ide_save(void *dev, struct hw_wbuf *w)
{
	struct hw_ide *ide = dev;

	for (int i = 0; i < 2; i++) {
		struct ide_channel *c = &ide->ch[i];
		uint8_t b[] = { c->feature, c->nsector, c->sector, c->lcyl, c->hcyl, c->select,
			c->status, c->error, c->ctrl, c->hob_feature, c->hob_nsector, c->hob_sector,
			c->hob_lcyl, c->hob_hcyl, c->irq_pending, c->xfer, c->lba48, c->per_block,
			c->drive[0].mult, c->drive[1].mult, c->drive[0].sense_key, c->drive[0].asc,
			c->drive[1].sense_key, c->drive[1].asc };
		hw_putb(w, b, sizeof(b));
		hw_put64(w, c->lba);
		hw_put32(w, c->remaining);
		hw_put32(w, c->atapi_limit);
		hw_put32(w, c->pos);
		hw_put32(w, c->end);
		hw_put32(w, c->fill);
		hw_putb(w, c->buf, MAX(c->end, c->fill));
	}
}

static int ide_load(void *dev, struct hw_rbuf *r)
{
	struct hw_ide *ide = dev;

	for (int i = 0; i < 2; i++) {
		struct ide_channel *c = &ide->ch[i], n = *c;
		uint8_t b[24];
		hw_getb(r, b, sizeof(b));
		n.feature = b[0]; n.nsector = b[1]; n.sector = b[2]; n.lcyl = b[3]; n.hcyl = b[4];
		n.select = b[5]; n.status = b[6]; n.error = b[7]; n.ctrl = b[8]; n.hob_feature = b[9];
		n.hob_nsector = b[10]; n.hob_sector = b[11]; n.hob_lcyl = b[12]; n.hob_hcyl = b[13];
		n.irq_pending = b[14] & 1; n.xfer = b[15]; n.lba48 = b[16] & 1; n.per_block = b[17];
		n.drive[0].mult = b[18]; n.drive[1].mult = b[19];
		n.drive[0].sense_key = b[20]; n.drive[0].asc = b[21];
		n.drive[1].sense_key = b[22]; n.drive[1].asc = b[23];
		n.lba = hw_get64(r);
		n.remaining = hw_get32(r);
		n.atapi_limit = hw_get32(r);
		n.pos = hw_get32(r);
		n.end = hw_get32(r);
		n.fill = hw_get32(r);
		uint32_t have = MAX(n.end, n.fill);
		if (r->err || b[15] > X_ATAPI_IN || n.end > IDE_BUF || n.fill > IDE_BUF ||
		    n.pos > have || have > r->len - r->pos || b[18] > 16 || b[19] > 16 || b[17] > 16)
			return -EINVAL;
		hw_getb(r, c->buf, have);
		*c = n;
		hw_set_irq(ide->m, c->irq, c->irq_pending && !(c->ctrl & 2));
	}
	return r->err;
}

static void ide_free(void *dev)
{
	struct hw_ide *ide = dev;

	free(ide->ch[0].buf);
	free(ide->ch[1].buf);
	free(ide);
}

static const struct hw_dev_ops ide_ops = {
	.name = "ide", .version = 1, .reset = ide_reset,
	.save = ide_save, .load = ide_load, .free = ide_free,
};

static void attach(struct ide_drive *d, const struct hw_disk *disk, int index)
{
	d->disk = *disk;
	d->index = index;
	d->present = true;
	d->atapi = disk->cdrom;
	d->tray_open = false;		/* an empty drive starts with its tray closed */
	d->sectors = disk->empty ? 0 : disk->size / (d->atapi ? 2048 : 512);
	d->heads = 16;
	d->spt = 63;
	d->cyls = MIN(d->sectors / (16 * 63), 16383);
	if (!d->cyls)
		d->cyls = 1;
	d->mult = 16;
}

int ide_new(struct machine *m)
{
	struct hw_ide *ide = xzalloc(sizeof(*ide));
	const struct hw_config *cfg = &m->cfg;
	bool used[4] = { false };
	int r;

	ide->m = m;
	for (int i = 0; i < 2; i++) {
		ide->ch[i].ide = ide;
		ide->ch[i].irq = 14 + i;
		ide->ch[i].buf = xzalloc(IDE_BUF);
	}
	for (int i = 0; i < cfg->ndisks; i++) {
		const struct hw_disk *d = &cfg->disks[i];
		int idx = d->index;
		if (d->iface != HW_IF_IDE)
			continue;
		if (idx < 0)
			for (idx = 0; idx < 4 && used[idx]; idx++)
				;
		if (idx > 3 || used[idx]) {
			ide_free(ide);
			return err_set(-EINVAL, "IDE: no room for another drive (index %d)", idx);
		}
		used[idx] = true;
		attach(&ide->ch[idx / 2].drive[idx % 2], d, i);
	}
	pci_add_fn(m, (1 << 3) | 1, 0x8086, 0x7010, 0x01018000);
	/* IDETIM of both channels: decode enabled (82371AB 3.3.1), as
	 * firmware leaves it; Linux's ata_piix skips a channel without. */
	struct hw_pci_dev *fn = pci_get_fn(m, (1 << 3) | 1);
	if (fn)
		fn->cfg[0x41] = fn->cfg[0x43] = 0x80;
	ide_reset(ide);
	r = hw_dev_add(m, &ide_ops, ide);
	for (int i = 0; i < 2 && r >= 0; i++) {
		r = hw_pio_add(m, ch_base[i], 8, &ide_io, &ide->ch[i], "ide");
		r = r < 0 ? r : hw_pio_add(m, ch_ctl[i], 1, &ide_ctl_io, &ide->ch[i], "ide");
	}
	return r;
}

/* ---- removable media (the monitor's eject and change) ---- */

/* The CD-ROM drive of disk `disk`, or NULL (lock held). */
static struct ide_drive *cdrom_locked(struct machine *m, int disk)
{
	for (int i = 0; i < m->ndevs; i++) {
		struct hw_ide *ide = m->devs[i].dev;
		if (m->devs[i].ops != &ide_ops)
			continue;
		for (int k = 0; k < 4; k++) {
			struct ide_drive *d = &ide->ch[k / 2].drive[k % 2];
			if (d->present && d->atapi && d->index == disk)
				return d;
		}
	}
	return NULL;
}

int machine_cdrom_change(struct machine *m, int disk, const struct hw_disk *medium)
{
	struct ide_drive *d;

	pthread_mutex_lock(&m->lock);
	d = cdrom_locked(m, disk);
	if (d && medium) {
		d->disk.ops = medium->ops;
		d->disk.opaque = medium->opaque;
		d->disk.size = medium->size;
		d->disk.empty = false;
		d->sectors = medium->size / 2048;
		d->tray_open = false;
		d->media_event = 2;
		d->unit_attention = true;
	} else if (d) {
		d->disk.ops = NULL;
		d->disk.opaque = NULL;
		d->disk.size = 0;
		d->disk.empty = true;
		d->sectors = 0;
		d->tray_open = true;
		d->media_event = 3;
		d->unit_attention = false;
	}
	pthread_mutex_unlock(&m->lock);
	return d ? 0 : err_set(-ENODEV, "disk %d is no CD-ROM", disk);
}

int machine_cdrom_locked(struct machine *m, int disk)
{
	struct ide_drive *d;
	int r;

	pthread_mutex_lock(&m->lock);
	d = cdrom_locked(m, disk);
	r = !d ? -ENODEV : d->locked;
	pthread_mutex_unlock(&m->lock);
	return r < 0 ? err_set(r, "disk %d is no CD-ROM", disk) : r;
}

int machine_cdrom_eject_request(struct machine *m, int disk)
{
	struct ide_drive *d;

	pthread_mutex_lock(&m->lock);
	d = cdrom_locked(m, disk);
	if (d)
		d->media_event = 1;
	pthread_mutex_unlock(&m->lock);
	return d ? 0 : err_set(-ENODEV, "disk %d is no CD-ROM", disk);
}
