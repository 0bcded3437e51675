/*
 * lib/hw private: the PIIX IDE controller's state, shared by ide.c (the
 * task file, ATA commands, PIO transfers) and ide-atapi.c (the ATAPI
 * packet interface of the CD-ROM).
 */
#ifndef HW_IDE_H
#define HW_IDE_H

#include "hw/internal.h"

#define IDE_BUF (128 * 1024)

enum { ST_ERR = 0x01, ST_DRQ = 0x08, ST_DSC = 0x10, ST_DRDY = 0x40, ST_BSY = 0x80 };
enum { ERR_ABRT = 0x04 };

struct ide_drive {
	struct hw_disk disk;
	bool present, atapi;
	uint64_t sectors;		/* 512-byte (ATA) or 2048-byte (ATAPI) blocks */
	uint16_t cyls, heads, spt;
	uint8_t mult;			/* READ/WRITE MULTIPLE block, sectors */
	uint8_t sense_key, asc;		/* ATAPI sense */
	/* For the monitor (not in the saved state): */
	int index;			/* in the machine's disks[] */
	uint8_t ascq;			/* ATAPI sense qualifier */
	uint8_t media_event;		/* GET EVENT STATUS: 2 new, 3 removed, 0 none */
	bool unit_attention;		/* medium changed: next command says so */
	bool locked, tray_open;		/* PREVENT MEDIUM REMOVAL; no medium after eject */
};

enum ide_xfer { X_NONE, X_READ, X_WRITE, X_PACKET, X_ATAPI_IN };

struct ide_channel {
	struct hw_ide *ide;
	int irq;
	struct ide_drive drive[2];
	/* task file (current and previous, for LBA48) */
	uint8_t feature, nsector, sector, lcyl, hcyl, select, status, error, ctrl;
	uint8_t hob_feature, hob_nsector, hob_sector, hob_lcyl, hob_hcyl;
	bool irq_pending;
	/* PIO transfer */
	enum ide_xfer xfer;
	uint8_t *buf;
	uint32_t pos, end;
	uint64_t lba;			/* next sector of a multi-block transfer */
	uint32_t remaining;		/* sectors (ATA) or bytes (ATAPI) still to go */
	uint32_t atapi_limit;		/* byte count limit of the packet command */
	bool lba48;
	uint8_t per_block;		/* sectors per DRQ block (READ/WRITE MULTIPLE) */
	uint32_t fill;			/* ATAPI: bytes valid in buf */
};

struct hw_ide {
	struct machine *m;
	struct ide_channel ch[2];
};

static inline struct ide_drive *ide_cur(struct ide_channel *c)
{
	return &c->drive[(c->select >> 4) & 1];
}

void ide_set_irq(struct ide_channel *c);
/* Start a PIO transfer of len bytes of c->buf to the host. */
void ide_pio_in(struct ide_channel *c, uint32_t len);
void ide_abort(struct ide_channel *c);
void atapi_packet_start(struct ide_channel *c);
void atapi_packet_ready(struct ide_channel *c);	/* the 12 command bytes are in */
void atapi_data_consumed(struct ide_channel *c);	/* the host read one DRQ block */
void atapi_identify(struct ide_drive *d, uint8_t *buf);
void ide_put_string(uint8_t *id, int word, int words, const char *s);
/* pci.c: the function at devfn (the IDE function's timing registers). */
struct hw_pci_dev *pci_get_fn(struct machine *m, int devfn);
/* One back-end request of drive d (kind: 'r', 'w' or 'f') with its
 * counters and the drive's rerror/werror policy (a stop waits for the
 * machine to run again and retries).  0 (also for an ignored failure) or
 * -errno to report.  `last`: the guest's command ends with it. */
int ide_blk_io(struct ide_channel *c, struct ide_drive *d, char kind, void *buf,
	       uint64_t off, size_t len, bool last);

#endif
