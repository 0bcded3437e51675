/*
 * hw-diskbench: sequential read throughput of the first virtio-blk disk
 * (modern PCI, device 1af4:1042) from a multiboot program, with no OS in
 * the way: 4 requests of 256 KiB in flight, polled, timed with the ACPI
 * PM timer at port 0x608.  Prints "diskbench: N MiB in T ms" on COM1 and
 * leaves through isa-debug-exit (0x10: status 33).  Runs the same under
 * vm-run and under QEMU (-device virtio-blk-pci,disable-legacy=on).
 */
#include <stdint.h>

#define U8(a) (*(volatile uint8_t *)(uintptr_t)(a))
#define U16(a) (*(volatile uint16_t *)(uintptr_t)(a))
#define U32(a) (*(volatile uint32_t *)(uintptr_t)(a))

__asm__(".section .multiboot,\"a\"\n.align 4\n.long 0x1badb002, 3, -(0x1badb002 + 3)\n"
	".text\n.globl _start\n_start: mov $0x80000, %esp\n call cmain\n1: hlt\n jmp 1b\n");

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static void putc_(char c) { while (!(inb(0x3fd) & 0x20)) ; outb(0x3f8, c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putdec(uint32_t v) { char b[12]; int n = 0; do b[n++] = '0' + v % 10; while (v /= 10); while (n) putc_(b[--n]); }

static uint32_t pm_last, pm_total;	/* PM timer ticks, accumulated across 24-bit wraps */
static void pm_poll(void)
{
	uint32_t now = inl(0x608) & 0xffffff;
	pm_total += (now - pm_last) & 0xffffff;
	pm_last = now;
}

static uint32_t pci_cfg(int dev, int reg)
{
	outl(0xcf8, 0x80000000u | dev << 11 | reg);
	return inl(0xcfc);
}

#define INFLIGHT 4
#define CHUNK (256 * 1024)
static uint8_t vq[3 * 4096] __attribute__((aligned(4096)));
static uint8_t hdr[INFLIGHT][16], st[INFLIGHT];
#define DATA(i) (0x1000000 + (i) * CHUNK)

void cmain(void);
void cmain(void)
{
	int dev = -1;

	for (int d = 0; d < 32; d++)
		if (pci_cfg(d, 0) == 0x10421af4)
			dev = d;
	if (dev < 0) {
		puts_("diskbench: no virtio-blk\n");
		outb(0xf4, 1);
		return;
	}
	uint32_t bar = pci_cfg(dev, 0x20) & ~0xfu, c = bar;
	outl(0xcf8, 0x80000000u | dev << 11 | 4);
	outl(0xcfc, inl(0xcfc) | 6);
	U8(c + 0x14) = 0; U8(c + 0x14) = 3;
	U32(c + 0x08) = 1; U32(c + 0x0c) = 1;
	U32(c + 0x08) = 0; U32(c + 0x0c) = 0;
	U8(c + 0x14) = 0x0b;
	U16(c + 0x16) = 0;
	U16(c + 0x18) = 16;
	U32(c + 0x20) = (uint32_t)(uintptr_t)vq; U32(c + 0x24) = 0;
	U32(c + 0x28) = (uint32_t)(uintptr_t)vq + 4096; U32(c + 0x2c) = 0;
	U32(c + 0x30) = (uint32_t)(uintptr_t)vq + 8192; U32(c + 0x34) = 0;
	U16(c + 0x1c) = 1;
	U8(c + 0x14) = 0x0f;
	uint32_t notify = bar + 0x3000 + U16(c + 0x1e) * 4;	/* notify_off_multiplier 4 */
	uint64_t sectors = U32(bar + 0x2000) | (uint64_t)U32(bar + 0x2004) << 32;
	uint32_t chunks = sectors * 512 / CHUNK;

	volatile uint64_t *desc = (volatile uint64_t *)vq;
	volatile uint16_t *avail = (volatile uint16_t *)(vq + 4096);
	volatile uint32_t *used = (volatile uint32_t *)(vq + 8192);
	for (int i = 0; i < INFLIGHT; i++) {
		desc[6 * i + 0] = (uint32_t)(uintptr_t)hdr[i];
		desc[6 * i + 1] = 16 | (uint64_t)1 << 32 | (uint64_t)(3 * i + 1) << 48;
		desc[6 * i + 2] = DATA(i);
		desc[6 * i + 3] = CHUNK | (uint64_t)3 << 32 | (uint64_t)(3 * i + 2) << 48;
		desc[6 * i + 4] = (uint32_t)(uintptr_t)&st[i];
		desc[6 * i + 5] = 1 | (uint64_t)2 << 32;
	}
	uint32_t sent = 0, done = 0;
	uint16_t aidx = 0, uidx = 0;
	pm_last = inl(0x608) & 0xffffff;
	while (done < chunks) {
		while (sent < chunks && sent - done < INFLIGHT) {
			int slot = sent % INFLIGHT;
			uint64_t sector = (uint64_t)sent * (CHUNK / 512);
			for (int k = 0; k < 8; k++)
				hdr[slot][8 + k] = sector >> (8 * k);
			avail[2 + aidx % 16] = 3 * slot;
			aidx++;
			__asm__ volatile("" ::: "memory");
			avail[1] = aidx;
			U16(notify) = 0;
			sent++;
		}
		while ((uint16_t)(used[0] >> 16) == uidx)
			pm_poll();
		uidx++;
		done++;
	}
	pm_poll();
	uint32_t ms = pm_total / 3580;
	puts_("diskbench: ");
	putdec(chunks * (CHUNK / 1024) / 1024);
	puts_(" MiB in ");
	putdec(ms);
	puts_(" ms\n");
	outb(0xf4, 0x10);
}
