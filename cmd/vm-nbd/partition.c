/*
 * -P N: export one partition of the image instead of the whole disk.
 *
 * MBR (the classic PC partition table in sector 0): entries 1-4 are the
 * primary partitions; an extended partition (type 0x05, 0x0f or 0x85)
 * holds a chain of EBRs, each describing one logical partition (5, 6, ...)
 * relative to itself and the next EBR relative to the extended partition.
 * GPT (UEFI specification, chapter 5): a protective MBR with one entry of
 * type 0xee, the header at LBA 1 ("EFI PART"), and an array of entries
 * each holding first and last LBA (inclusive).  Sector size is 512.
 *
 * Everything read here is untrusted: every partition must lie inside the
 * image, chains are bounded, entry sizes are checked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "vm-nbd.h"

#define SECTOR 512
#define MAX_LOGICAL 128

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int read_sector(struct export *e, uint64_t lba, uint8_t *buf)
{
	if (lba >= e->image_size / SECTOR)
		return err_set(-EINVAL, "partition table points beyond the image");
	return fmt_read(e->img, buf, lba * SECTOR, SECTOR);
}

static bool is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static int found(struct export *e, uint64_t lba, uint64_t nsect,
		 uint64_t *start, uint64_t *len)
{
	if (!nsect || lba > e->image_size / SECTOR ||
	    nsect > e->image_size / SECTOR - lba)
		return err_set(-EINVAL, "partition lies outside the image");
	*start = lba * SECTOR;
	*len = nsect * SECTOR;
	return 0;
}

/* Logical partition n (>= 5) in the extended partition at ext_lba. */
static int find_logical(struct export *e, uint64_t ext_lba, int n,
			uint64_t *start, uint64_t *len)
{
	uint8_t s[SECTOR];
	uint64_t ebr = ext_lba;

	for (int i = 5; i < 5 + MAX_LOGICAL; i++) {
		const uint8_t *p = s + 446;
		int r = read_sector(e, ebr, s);

		if (r < 0)
			return r;
		if (s[510] != 0x55 || s[511] != 0xaa)
			break;
		if (i == n)
			return found(e, ebr + le32(p + 8), le32(p + 12), start, len);
		if (!is_extended(p[16 + 4]) || !le32(p + 16 + 8))
			break;
		ebr = ext_lba + le32(p + 16 + 8);
	}
	return err_set(-ENOENT, "partition %d not found", n);
}

static int find_gpt(struct export *e, int n, uint64_t *start, uint64_t *len)
{
	uint8_t h[SECTOR], s[SECTOR];
	uint64_t entries;
	uint32_t count, esize;
	int r = read_sector(e, 1, h);

	if (r < 0)
		return r;
	if (memcmp(h, "EFI PART", 8))
		return err_set(-EINVAL, "protective MBR without a GPT header");
	entries = le64(h + 72);
	count = le32(h + 80);
	esize = le32(h + 84);
	if (esize < 128 || esize > SECTOR || SECTOR % esize)
		return err_set(-EINVAL, "GPT entry size %u is not supported", esize);
	if ((uint32_t)n > count)
		return err_set(-ENOENT, "partition %d not found", n);
	r = read_sector(e, entries + (uint64_t)(n - 1) * esize / SECTOR, s);
	if (r < 0)
		return r;
	{
		const uint8_t *p = s + (uint64_t)(n - 1) * esize % SECTOR;
		uint64_t first = le64(p + 32), last = le64(p + 40);
		static const uint8_t unused[16];

		if (!memcmp(p, unused, 16) || last < first)
			return err_set(-ENOENT, "partition %d not found", n);
		return found(e, first, last - first + 1, start, len);
	}
}

int partition_find(struct export *e, int n, uint64_t *start, uint64_t *len)
{
	uint8_t s[SECTOR];
	int r = read_sector(e, 0, s);

	if (r < 0)
		return r;
	if (s[510] != 0x55 || s[511] != 0xaa)
		return err_set(-EINVAL, "no partition table found");
	for (int i = 0; i < 4; i++)
		if (s[446 + 16 * i + 4] == 0xee)
			return find_gpt(e, n, start, len);
	if (n <= 4) {
		const uint8_t *p = s + 446 + 16 * (n - 1);

		if (!p[4])
			return err_set(-ENOENT, "partition %d not found", n);
		return found(e, le32(p + 8), le32(p + 12), start, len);
	}
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = s + 446 + 16 * i;

		if (is_extended(p[4]))
			return find_logical(e, le32(p + 8), n, start, len);
	}
	return err_set(-ENOENT, "partition %d not found", n);
}
