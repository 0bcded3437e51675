/*
 * hw-chaos: a multiboot program that does what a buggy or hostile guest
 * does: random values to every device register (ports, PCI configuration,
 * the APIC, IOAPIC and virtio BARs, including virtqueue addresses and
 * notifications), many times over.  vm-run must neither crash nor hang;
 * the program then leaves through isa-debug-exit with 0x10 (status 33).
 * "seed=N" on the command line picks another random sequence.
 * Registers that would legitimately end or reset the machine (debug exit,
 * reset and sleep controls, INIT through the ICR) are left alone.
 */
#include <stdint.h>

__asm__(".section .multiboot,\"a\"\n.align 4\n.long 0x1badb002, 3, -(0x1badb002 + 3)\n"
	".text\n.globl _start\n_start: mov $0x80000, %esp\n push %ebx\n call cmain\n1: hlt\n jmp 1b\n");

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static uint32_t seed = 0x12345678;
static uint32_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 17;
	seed ^= seed << 5;
	return seed;
}

static const uint16_t ports[] = {
	0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71,
	0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x2f8, 0x2f9, 0x2fa, 0x2fb, 0x2fc,
	0x60, 0x1f0, 0x1f1, 0x1f2, 0x1f3, 0x1f4, 0x1f5, 0x1f6, 0x1f7, 0x3f6,
	0x170, 0x171, 0x172, 0x173, 0x174, 0x175, 0x176, 0x177, 0x376,
	0xcf8, 0xcfc, 0xcfd, 0xcfe, 0xcff, 0x600, 0x601, 0x602, 0x603, 0x608, 0xb2, 0xb3,
	0x510, 0x511, 0x80, 0x1234,
};

static void puts_(const char *s) { while (*s) outb(0x3f8, *s++); }

static void poke_port(void)
{
	uint16_t p = ports[rnd() % (sizeof(ports) / sizeof(ports[0]))];
	uint32_t v = rnd();

	if (p >= 0x600 && p < 0x608) {		/* bytes only: a wide write could reach PM1a_CNT */
		outb(p, v);
		return;
	}
	switch (rnd() % 6) {
	case 0: outb(p, v); break;
	case 1: outw(p, v); break;
	case 2: outl(p, v); break;
	case 3: inb(p); break;
	case 4: inw(p); break;
	default: inl(p); break;
	}
}

static uint32_t bars[32];
static int nbars;

static void find_bars(void)
{
	for (int d = 0; d < 32; d++) {
		outl(0xcf8, 0x80000000u | d << 11 | 0x20);
		uint32_t b = inl(0xcfc) & ~0xfu;
		if (b && b != 0xfffffff0u)
			bars[nbars++] = b;
	}
}

static void poke_mmio(void)
{
	uint32_t base, off, v = rnd();

	switch (rnd() % 3) {
	case 0:
		base = 0xfee00000;
		off = (rnd() % 0x40) << 4;
		if (off == 0x300 || off == 0x310 || off == 0xf0)
			return;		/* ICR (INIT/SIPI to ourselves), SVR */
		break;
	case 1:
		base = 0xfec00000;
		off = (rnd() & 1) << 4;
		break;
	default:
		if (!nbars)
			return;
		base = bars[rnd() % nbars];
		off = rnd() % 0x4000;
		if (rnd() & 1)
			off &= 0x3f;		/* the common configuration, more often */
	}
	volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)(base + off);
	switch (rnd() % 4) {
	case 0: *p = v; break;
	case 1: *(volatile uint16_t *)(p - ((uintptr_t)p & 1)) = v; break;
	case 2: *(volatile uint32_t *)(p - ((uintptr_t)p & 3)) = v; break;
	default: (void)*(volatile uint32_t *)(p - ((uintptr_t)p & 3)); break;
	}
}

void cmain(uint32_t info);
void cmain(uint32_t info)
{
	const char *cmd = (*(uint32_t *)info & 4) ? (const char *)*(uint32_t *)(info + 16) : "";

	for (; *cmd; cmd++)		/* "seed=N" on the command line */
		if (cmd[0] == 's' && cmd[1] == 'e' && cmd[2] == 'e' && cmd[3] == 'd' && cmd[4] == '=') {
			seed = 0;
			for (cmd += 5; *cmd >= '0' && *cmd <= '9'; cmd++)
				seed = seed * 10 + *cmd - '0';
			if (!seed)
				seed = 1;
			break;
		}
	puts_("hw-chaos\n");
	__asm__ volatile("cli");
	find_bars();
	for (int i = 0; i < 1000000; i++) {
		if (rnd() & 1)
			poke_port();
		else
			poke_mmio();
		if (!(i % 50000)) {
			find_bars();
			outb(0x402, '.');
		}
	}
	outb(0x3fb, 0x03);		/* COM1 back to 8N1, no loopback */
	outb(0x3fc, 0x03);
	puts_("hw-chaos: survived\n");
	outb(0xf4, 0x10);
}
