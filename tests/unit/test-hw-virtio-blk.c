/*
 * virtio-blk driven as a driver drives it, through BAR 4 of its PCI
 * function with no CPU running (VIRTIO 1.2 sections 4.1.4 and 5.2): the
 * request queue set up, then a read and a write on a back-end that can
 * start requests without waiting (hw_block_vec_ops.submit, as the NBD
 * client does).  The read must start on the thread that rings the
 * doorbell, before that MMIO write returns: no hop through the device's
 * thread pool.  The write, whose data may fill a socket, starts on a pool
 * thread.  Both complete into the used ring with their data and status.
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
#define QSIZE 8

static struct machine *m;
static uint64_t bar;

static void common_w(unsigned off, uint32_t v, unsigned size)
{
	hw_bus_mmio_write(m, 0, bar + off, v, size);
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

/* ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK, queue 0 of QSIZE entries,
 * DRIVER_OK. */
static void driver_setup(void)
{
	common_w(0x14, 1 | 2, 1);
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

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put64(DESC + 16 * i, addr);
	put32(DESC + 16 * i + 8, len);
	put16(DESC + 16 * i + 12, flags);
	put16(DESC + 16 * i + 14, next);
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
	put16(AVAIL + 4 + 2 * (n % QSIZE), 0);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(AVAIL + 2, (uint16_t)(n + 1));
	common_w(0x3000, 0, 2);		/* queue 0's doorbell */
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
	driver_setup();
	data = hw_ram_ptr(m, DATA, 8192);

	memset(data, 0, 8192);
	request(0, 0, 24);
	CHECK(__atomic_load_n(&reads_here, __ATOMIC_SEQ_CST) == 1,
	      "a read starts on the thread that rang the doorbell, before the write returns "
	      "(%d here, %d elsewhere)", reads_here, reads_elsewhere);
	CHECK(wait_used(1) && !memcmp(data, disk + 24 * 512, 8192) &&
	      *(uint8_t *)hw_ram_ptr(m, STATUS, 1) == 0, "the read completes with the disk's bytes");

	memset(data, 0x5a, 8192);
	request(1, 1, 100);
	CHECK(wait_used(2) && *(uint8_t *)hw_ram_ptr(m, STATUS, 1) == 0 &&
	      disk[100 * 512] == 0x5a && disk[100 * 512 + 8191] == 0x5a,
	      "a write completes, its data on the disk");
	CHECK(writes_elsewhere == 1 && writes_here == 0,
	      "the write started on a pool thread (%d here, %d elsewhere)", writes_here,
	      writes_elsewhere);
	machine_free(m);
	return unit_done();
}
