/*
 * virtio-blk driven as a driver drives it, through BAR 4 of its PCI
 * function with no CPU running (VIRTIO 1.2 sections 4.1.4 and 5.2): the
 * request queue set up, then a read and a write on a back-end that can
 * start requests without waiting (hw_block_vec_ops.submit, as the NBD
 * client does).  The read must start on the thread that rings the
 * doorbell, before that MMIO write returns: no hop through the device's
 * thread pool.  The write, whose data may fill a socket, starts on a pool
 * thread.  Both complete into the used ring with their data and status.
 *
 * The queue has 1024 entries and seg_max is 1022, so that a 1 MiB read
 * of 4 KiB pages is one request.  Then indirect descriptors (section
 * 2.7.5.3): offered; refused while not negotiated; once negotiated, a
 * read of more segments than the ring has entries goes in one ring entry,
 * alone or after a direct header descriptor, and so does one of seg_max
 * segments; an indirect table inside another one, or an indirect
 * descriptor with NEXT, makes the device ask for a reset.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"
#include "unit.h"

static uint8_t disk[1 << 20];
static pthread_t notifier;
static int reads_here, reads_elsewhere, writes_here, writes_elsewhere;

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

static int mem_readv(void *o, const struct iovec *iov, int n, uint64_t off)
{
	for (int i = 0; i < n; off += iov[i].iov_len, i++)
		memcpy(iov[i].iov_base, disk + off, iov[i].iov_len);
	return 0;
}

static int mem_writev(void *o, const struct iovec *iov, int n, uint64_t off)
{
	for (int i = 0; i < n; off += iov[i].iov_len, i++)
		memcpy(disk + off, iov[i].iov_base, iov[i].iov_len);
	return 0;
}

/* A started request: done from a thread of its own, as the NBD client's
 * reader does (never from inside submit, where the caller may hold the
 * machine lock). */
struct started {
	void (*done)(void *arg, int err);
	void *arg;
};

static void *finish(void *p)
{
	struct started *s = p;

	s->done(s->arg, 0);
	free(s);
	return NULL;
}

static int mem_submit(void *o, bool write, const struct iovec *iov, int n, uint64_t off,
		      void (*done)(void *arg, int err), void *arg)
{
	struct started *s = xmalloc(sizeof(*s));
	bool here = pthread_equal(pthread_self(), notifier);
	pthread_t t;

	if (write) {
		__atomic_fetch_add(here ? &writes_here : &writes_elsewhere, 1, __ATOMIC_SEQ_CST);
		mem_writev(o, iov, n, off);
	} else {
		__atomic_fetch_add(here ? &reads_here : &reads_elsewhere, 1, __ATOMIC_SEQ_CST);
		mem_readv(o, iov, n, off);
	}
	*s = (struct started){ done, arg };
	if (pthread_create(&t, NULL, finish, s) != 0)
		abort();
	pthread_detach(t);
	return 0;
}

static const struct hw_block_vec_ops mem_vec = { mem_readv, mem_writev, mem_submit };

/* Guest-physical layout of the queue and the requests. */
#define DESC 0x100000
#define AVAIL 0x101000
#define USED 0x102000
#define HDR 0x103000
#define DATA 0x104000
#define STATUS 0x106000
#define INDT 0x107000
#define INDT2 0x108000
#define SEGS 0x110000		/* the indirect reads' segments */
#define QSIZE 8
#define NSEG 10			/* segments of an indirect read: more than QSIZE */
#define SEG_MAX 1022		/* the device's seg_max: its queue size, 1024, less 2 */

static struct machine *m;
static uint64_t bar;

/* The accelerator, with its ram_written op watched: the ranges devices
 * report writing (the JIT's translations of them go stale). */
static const struct hw_accel_ops *real_accel;
static struct hw_accel_ops spy_accel;
static pthread_mutex_t spy_lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *spy_p[16];
static size_t spy_len[16];
static int nspy;

static void spy_written(void *accel, const void *p, size_t len)
{
	pthread_mutex_lock(&spy_lock);
	if (nspy < 16)
		spy_p[nspy] = p, spy_len[nspy++] = len;
	pthread_mutex_unlock(&spy_lock);
	real_accel->ram_written(accel, p, len);
}

/* Was [p, p + len) reported, in one range? */
static bool spied(const void *p, size_t len)
{
	bool yes = false;

	pthread_mutex_lock(&spy_lock);
	for (int i = 0; i < nspy; i++)
		yes |= (const uint8_t *)p >= spy_p[i] && (const uint8_t *)p + len <= spy_p[i] + spy_len[i];
	pthread_mutex_unlock(&spy_lock);
	return yes;
}

static void common_w(unsigned off, uint32_t v, unsigned size)
{
	hw_bus_mmio_write(m, 0, bar + off, v, size);
}

static uint32_t common_r(unsigned off, unsigned size)
{
	return (uint32_t)hw_bus_mmio_read(m, 0, bar + off, size);
}

static void put16(uint64_t gpa, uint16_t v) { memcpy(hw_ram_ptr(m, gpa, 2), &v, 2); }
static void put32(uint64_t gpa, uint32_t v) { memcpy(hw_ram_ptr(m, gpa, 4), &v, 4); }
static void put64(uint64_t gpa, uint64_t v) { memcpy(hw_ram_ptr(m, gpa, 8), &v, 8); }

static uint16_t used_idx(void)
{
	uint16_t v;

	__atomic_load((uint16_t *)hw_ram_ptr(m, USED + 2, 2), &v, __ATOMIC_ACQUIRE);
	return v;
}

static bool find_bar(void)
{
	struct hw_pci_info d[32];
	int n = machine_pci_list(m, d, 32);

	for (int i = 0; i < n; i++)
		if (d[i].vendor == 0x1af4 && d[i].device == 0x1042 && d[i].bar[4].size) {
			bar = d[i].bar[4].addr;
			return true;
		}
	return false;
}

/* ACKNOWLEDGE, DRIVER, VERSION_1 (and INDIRECT_DESC when indirect),
 * FEATURES_OK, queue 0 of QSIZE entries, DRIVER_OK. */
static void driver_setup(bool indirect)
{
	common_w(0x14, 1 | 2, 1);
	common_w(0x08, 0, 4);
	common_w(0x0c, indirect ? 1u << 28 : 0, 4);
	common_w(0x08, 1, 4);
	common_w(0x0c, 1, 4);		/* VIRTIO_F_VERSION_1 */
	common_w(0x14, 1 | 2 | 8, 1);
	common_w(0x16, 0, 2);
	common_w(0x18, QSIZE, 2);
	common_w(0x20, DESC, 4);
	common_w(0x24, 0, 4);
	common_w(0x28, AVAIL, 4);
	common_w(0x2c, 0, 4);
	common_w(0x30, USED, 4);
	common_w(0x34, 0, 4);
	common_w(0x1c, 1, 2);
	common_w(0x14, 1 | 2 | 8 | 4, 1);
}

static void desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	put64(table + 16 * i, addr);
	put32(table + 16 * i + 8, len);
	put16(table + 16 * i + 12, flags);
	put16(table + 16 * i + 14, next);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(DESC, i, addr, len, flags, next);
}

static void offer(uint16_t n)
{
	put16(AVAIL + 4 + 2 * (n % QSIZE), 0);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(AVAIL + 2, (uint16_t)(n + 1));
	common_w(0x3000, 0, 2);		/* queue 0's doorbell */
}

/* A read of NSEG segments of 512 bytes, 1 KiB apart in SEGS, at sector,
 * through an indirect table at INDT: with the header in it (direct_hdr
 * false) or in ring descriptor 0 ahead of the table (true). */
static void indirect_read(uint16_t n, uint64_t sector, bool direct_hdr, unsigned nseg)
{
	unsigned k = 0;

	put32(HDR, 0);
	put32(HDR + 4, 0);
	put64(HDR + 8, sector);
	*(uint8_t *)hw_ram_ptr(m, STATUS, 1) = 0xff;
	if (!direct_hdr)
		desc_at(INDT, k++, HDR, 16, 1, 1);
	for (unsigned i = 0; i < nseg; i++, k++)
		desc_at(INDT, k, SEGS + 1024 * i, 512, 1 | 2, (uint16_t)(k + 1));
	desc_at(INDT, k++, STATUS, 1, 2, 0);
	if (direct_hdr) {
		desc(0, HDR, 16, 1, 1);
		desc(1, INDT, 16 * k, 4, 0);
	} else {
		desc(0, INDT, 16 * k, 4, 0);
	}
	offer(n);
}

static bool indirect_read_ok(uint64_t sector, unsigned nseg)
{
	uint8_t *data = hw_ram_ptr(m, SEGS, 1024 * nseg);

	for (unsigned i = 0; i < nseg; i++)
		if (memcmp(data + 1024 * i, disk + sector * 512 + 512 * i, 512) ||
		    data[1024 * i + 512] != 0xee)
			return false;
	return *(uint8_t *)hw_ram_ptr(m, STATUS, 1) == 0;
}

/* The device's status after offering a bad chain in ring descriptor 0. */
static bool asks_for_reset(uint16_t n)
{
	offer(n);
	return (common_r(0x14, 1) & 0x40) != 0;
}

/* One request of type (0 read, 1 write) of 8 KiB at sector: header,
 * data, status; offered as avail entry n, then the doorbell. */
static void request(uint16_t n, uint32_t type, uint64_t sector)
{
	put32(HDR, type);
	put32(HDR + 4, 0);
	put64(HDR + 8, sector);
	*(uint8_t *)hw_ram_ptr(m, STATUS, 1) = 0xff;
	desc(0, HDR, 16, 1, 1);
	desc(1, DATA, 8192, (uint16_t)(1 | (type == 0 ? 2 : 0)), 2);
	desc(2, STATUS, 1, 2, 0);
	offer(n);
}

static bool wait_used(uint16_t want)
{
	for (int i = 0; i < 5000 && used_idx() != want; i++)
		usleep(1000);
	return used_idx() == want;
}

int main(void)
{
	const char *kernel = getenv("HW_TEST_KERNEL");
	struct hw_config c = { .ram_size = 64u << 20, .smp = 1, .accel = "jit",
			       .kernel = kernel ? kernel : "o/rel/tests/guest/hw-hello.elf" };
	uint8_t *data;

	for (size_t i = 0; i < sizeof(disk); i++)
		disk[i] = (uint8_t)(i * 13 + (i >> 9));
	c.disks[0] = (struct hw_disk){ .ops = &mem_blk, .vec = &mem_vec, .size = sizeof(disk),
				       .iface = HW_IF_VIRTIO, .index = -1 };
	c.ndisks = 1;
	if (machine_new(&c, &m) < 0) {
		CHECK(0, "machine_new: %s", err_msg());
		return unit_done();
	}
	if (!CHECK(find_bar(), "virtio-blk's PCI function has BAR 4"))
		return unit_done();
	notifier = pthread_self();
	common_w(0x16, 0, 2);
	CHECK(common_r(0x18, 2) == 1024 && common_r(0x2000 + 12, 4) == SEG_MAX,
	      "one queue of 1024 entries, seg_max %d (QEMU's queue-size=1024)", SEG_MAX);
	driver_setup(false);
	data = hw_ram_ptr(m, DATA, 8192);
	real_accel = m->accel;
	spy_accel = *real_accel;
	spy_accel.ram_written = spy_written;
	m->accel = &spy_accel;

	memset(data, 0, 8192);
	request(0, 0, 24);
	CHECK(__atomic_load_n(&reads_here, __ATOMIC_SEQ_CST) == 1,
	      "a read starts on the thread that rang the doorbell, before the write returns "
	      "(%d here, %d elsewhere)", reads_here, reads_elsewhere);
	CHECK(wait_used(1) && !memcmp(data, disk + 24 * 512, 8192) &&
	      *(uint8_t *)hw_ram_ptr(m, STATUS, 1) == 0, "the read completes with the disk's bytes");
	CHECK(spied(data, 8192) && spied(hw_ram_ptr(m, STATUS, 1), 1),
	      "the read's data and status are reported written to the accelerator (%d ranges)", nspy);
	CHECK(hw_dma_write(m, DATA + 4096, "x", 1) == 0 && spied(data + 4096, 1),
	      "hw_dma_write reports its bytes too");

	memset(data, 0x5a, 8192);
	request(1, 1, 100);
	CHECK(wait_used(2) && *(uint8_t *)hw_ram_ptr(m, STATUS, 1) == 0 &&
	      disk[100 * 512] == 0x5a && disk[100 * 512 + 8191] == 0x5a,
	      "a write completes, its data on the disk");
	CHECK(writes_elsewhere == 1 && writes_here == 0,
	      "the write started on a pool thread (%d here, %d elsewhere)", writes_here,
	      writes_elsewhere);
	m->accel = real_accel;

	/* indirect descriptors */
	common_w(0x08, 0, 4);
	CHECK(common_r(0x04, 4) & 1u << 28, "VIRTIO_F_INDIRECT_DESC is offered");
	desc(0, INDT, 16, 4, 0);
	desc_at(INDT, 0, HDR, 16, 0, 0);
	CHECK(asks_for_reset(2), "an indirect descriptor not negotiated makes the device ask for a reset");

	common_w(0x14, 0, 1);		/* reset */
	CHECK(common_r(0x14, 1) == 0 && used_idx() == 2, "the device resets");
	memset(hw_ram_ptr(m, USED, 4 + 8 * QSIZE), 0, 4 + 8 * QSIZE);
	put16(AVAIL + 2, 0);
	driver_setup(true);
	memset(hw_ram_ptr(m, SEGS, 1024 * NSEG), 0xee, 1024 * NSEG);
	indirect_read(0, 40, false, NSEG);
	CHECK(wait_used(1) && indirect_read_ok(40, NSEG),
	      "a read of %d segments, more than the ring's %d entries, in one indirect table", NSEG,
	      QSIZE);
	memset(hw_ram_ptr(m, SEGS, 1024 * NSEG), 0xee, 1024 * NSEG);
	indirect_read(1, 77, true, NSEG);
	CHECK(wait_used(2) && indirect_read_ok(77, NSEG),
	      "a direct header descriptor followed by an indirect table");
	memset(hw_ram_ptr(m, SEGS, 1024 * SEG_MAX), 0xee, 1024 * SEG_MAX);
	indirect_read(2, 3, false, SEG_MAX);
	CHECK(wait_used(3) && indirect_read_ok(3, SEG_MAX),
	      "a read of seg_max (%d) segments", SEG_MAX);

	desc(0, INDT, 32, 4, 0);
	desc_at(INDT, 0, HDR, 16, 1, 1);
	desc_at(INDT, 1, INDT2, 16, 4, 0);
	desc_at(INDT2, 0, STATUS, 1, 2, 0);
	CHECK(asks_for_reset(3), "an indirect table inside an indirect table makes the device ask "
	      "for a reset");
	common_w(0x14, 0, 1);
	memset(hw_ram_ptr(m, USED, 4 + 8 * QSIZE), 0, 4 + 8 * QSIZE);
	put16(AVAIL + 2, 0);
	driver_setup(true);
	desc(0, INDT, 16, 4 | 1, 1);
	desc_at(INDT, 0, HDR, 16, 0, 0);
	CHECK(asks_for_reset(0), "an indirect descriptor with NEXT makes the device ask for a reset");
	for (unsigned i = 0; i < 3; i++) {
		static const uint64_t at[] = { INDT, 0x8000000, (64u << 20) - 16 };
		static const uint32_t len[] = { 40, 32, 32 };
		static const char *const what[] = {
			"whose length is not a multiple of 16", "outside RAM", "that runs past the end of RAM",
		};

		common_w(0x14, 0, 1);
		memset(hw_ram_ptr(m, USED, 4 + 8 * QSIZE), 0, 4 + 8 * QSIZE);
		put16(AVAIL + 2, 0);
		driver_setup(true);
		desc(0, at[i], len[i], 4, 0);
		desc_at(INDT, 0, HDR, 16, 1, 1);
		desc_at(INDT, 1, STATUS, 1, 2, 0);
		CHECK(asks_for_reset(0), "an indirect table %s makes the device ask for a reset", what[i]);
	}
	common_w(0x14, 0, 1);
	memset(hw_ram_ptr(m, USED, 4 + 8 * QSIZE), 0, 4 + 8 * QSIZE);
	put16(AVAIL + 2, 0);
	driver_setup(true);
	memset(hw_ram_ptr(m, SEGS, 1024 * NSEG), 0xee, 1024 * NSEG);
	indirect_read(0, 12, false, NSEG);
	CHECK(wait_used(1) && indirect_read_ok(12, NSEG), "after a reset the device reads again");
	machine_free(m);
	return unit_done();
}
