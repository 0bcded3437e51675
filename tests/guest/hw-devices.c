/*
 * hw-devices: a freestanding multiboot test program for vm-run's PC.  It
 * drives the devices the way an OS does and prints "ok N - what" or
 * "not ok N - what" on COM1: PIC + PIT interrupts, PIT channel 2 and port
 * 0x61, RTC, ACPI PM timer, i8042, local APIC timer, IOAPIC routing, the
 * PCI host and PIIX, the second CPU's start with -smp 2, and (when present) virtio-blk: sector 0 is read and
 * printed, "WRITTEN-BY-GUEST" is written to sector 1.  Then it powers off
 * through ACPI (status 0) or, when something failed, leaves through
 * isa-debug-exit with 1 (status 3).
 *
 * The multiboot command line selects other behaviour:
 *   reboot  triple-fault (tests -no-reboot);   idle  halt forever;
 *   echo    copy serial input back until 'q', then power off.
 */
#include <stdint.h>

#define U8(a) (*(volatile uint8_t *)(uintptr_t)(a))
#define U16(a) (*(volatile uint16_t *)(uintptr_t)(a))
#define U32(a) (*(volatile uint32_t *)(uintptr_t)(a))

__asm__(".section .multiboot,\"a\"\n.align 4\n.long 0x1badb002, 3, -(0x1badb002 + 3)\n"
	".text\n.globl _start\n_start: mov $0x80000, %esp\n push %ebx\n call cmain\n1: hlt\n jmp 1b\n");

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static void putc_(char c) { while (!(inb(0x3fd) & 0x20)) ; outb(0x3f8, c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void putdec(uint32_t v) { char b[12]; int n = 0; do b[n++] = '0' + v % 10; while (v /= 10); while (n) putc_(b[--n]); }

static int tests, failed;
static void check(int ok, const char *what)
{
	tests++;
	if (!ok) { failed++; puts_("not "); }
	puts_("ok "); putdec(tests); puts_(" - "); puts_(what); putc_('\n');
}

/* ---- descriptor tables and interrupts ---- */
struct frame;
static volatile uint32_t pic_ticks, apic_ticks, ioapic_ticks;
static uint64_t gdt[3] = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
static uint64_t idt[256];

static void eoi_pic(void) { outb(0x20, 0x20); }
static void lapic_eoi(void) { U32(0xfee000b0) = 0; }

__attribute__((interrupt)) static void h_pic(struct frame *f) { pic_ticks++; eoi_pic(); }
__attribute__((interrupt)) static void h_apic(struct frame *f) { apic_ticks++; lapic_eoi(); }
__attribute__((interrupt)) static void h_ioapic(struct frame *f) { ioapic_ticks++; lapic_eoi(); }
__attribute__((interrupt)) static void h_spurious(struct frame *f) { }
__attribute__((interrupt)) static void h_fault(struct frame *f)
{
	puts_("unexpected exception\n");
	outb(0xf4, 2);
	for (;;) __asm__ volatile("hlt");
}

static void set_gate(int v, void *h)
{
	uint32_t a = (uint32_t)(uintptr_t)h;
	idt[v] = (a & 0xffff) | (0x08u << 16) | ((uint64_t)0x8e00 << 32) | ((uint64_t)(a >> 16) << 48);
}

static void setup_tables(void)
{
	struct __attribute__((packed)) { uint16_t lim; uint32_t base; } g = { sizeof(gdt) - 1, (uint32_t)(uintptr_t)gdt },
		i = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };
	__asm__ volatile("lgdt %0\n ljmp $0x08, $1f\n 1: mov $0x10, %%ax\n mov %%ax, %%ds\n mov %%ax, %%es\n"
			 " mov %%ax, %%ss\n" :: "m"(g) : "eax", "memory");
	for (int v = 0; v < 32; v++)
		set_gate(v, h_fault);
	for (int v = 32; v < 256; v++)
		set_gate(v, h_spurious);
	set_gate(0x20, h_pic);
	set_gate(0x30, h_apic);
	set_gate(0x31, h_ioapic);
	__asm__ volatile("lidt %0" :: "m"(i));
}

static uint32_t pm_timer(void) { return inl(0x608) & 0xffffff; }
static void wait_ms(uint32_t ms)
{
	uint32_t start = pm_timer(), want = ms * 3580;
	while (((pm_timer() - start) & 0xffffff) < want) ;
}

static void pic_init(uint8_t mask)
{
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
	outb(0x21, mask); outb(0xa1, 0xff);
}

static void pit_periodic(uint16_t count)
{
	outb(0x43, 0x34); outb(0x40, count & 0xff); outb(0x40, count >> 8);
}

static void test_timers(void)
{
	uint32_t t0 = pm_timer();
	wait_ms(2);
	check(((pm_timer() - t0) & 0xffffff) >= 7000, "ACPI PM timer counts at 3.58 MHz");

	pic_init(0xfe);
	pit_periodic(1193);			/* 1 kHz */
	__asm__ volatile("sti");
	for (int i = 0; i < 200000 && pic_ticks < 10; i++) __asm__ volatile("hlt");
	__asm__ volatile("cli");
	check(pic_ticks >= 10, "PIT channel 0 interrupts through the 8259 (IRQ 0, vector 0x20)");
	outb(0x21, 0xff);

	outb(0x61, (inb(0x61) & ~2) | 1);	/* gate channel 2 on, speaker off */
	outb(0x43, 0xb0); outb(0x42, 0xff); outb(0x42, 0xff);
	uint8_t lo = inb(0x42), hi = inb(0x42);
	wait_ms(5);
	uint8_t lo2 = inb(0x42), hi2 = inb(0x42);
	uint16_t a = lo | hi << 8, b = lo2 | hi2 << 8;
	check((uint16_t)(a - b) >= 5900, "PIT channel 2 counts down at 1.19 MHz (at least 5900 in 5 ms)");
	wait_ms(60);
	check(inb(0x61) & 0x20, "port 0x61 shows channel 2's output after terminal count");
}

static void test_apic(void)
{
	check(U32(0xfee00030) == 0x50014, "local APIC version register");
	U32(0xfee000f0) = 0x1ff;		/* software enable, spurious 0xff */
	U32(0xfee003e0) = 0xb;			/* divide by 1 */
	U32(0xfee00320) = 0x30;			/* one-shot, vector 0x30 */
	U32(0xfee00380) = 2000000;		/* 2 ms at 1 GHz */
	__asm__ volatile("sti");
	for (int i = 0; i < 100000 && !apic_ticks; i++) __asm__ volatile("hlt");
	__asm__ volatile("cli");
	check(apic_ticks == 1, "local APIC one-shot timer interrupt (vector 0x30)");
	check(U32(0xfee00390) == 0, "timer current count is 0 after one-shot expiry");

	/* IOAPIC: ISA IRQ 0 arrives on GSI 2 (as the MADT says) */
	U32(0xfec00000) = 0x10 + 2 * 2;
	U32(0xfec00010) = 0x31;
	U32(0xfec00000) = 0x11 + 2 * 2;
	U32(0xfec00010) = 0;
	U32(0xfec00000) = 0x01;
	check((U32(0xfec00010) & 0xff) == 0x11, "IOAPIC version register");
	pit_periodic(1193);
	__asm__ volatile("sti");
	for (int i = 0; i < 200000 && ioapic_ticks < 5; i++) __asm__ volatile("hlt");
	__asm__ volatile("cli");
	check(ioapic_ticks >= 5, "PIT interrupts through the IOAPIC (GSI 2, vector 0x31)");
	U32(0xfec00000) = 0x10 + 2 * 2;
	U32(0xfec00010) = 0x10000;
}

/* With -smp 2 (CMOS 0x5f holds the CPU count - 1): start the AP with
 * INIT + SIPI at a real-mode trampoline that counts itself and halts. */
static void test_smp(void)
{
	static const uint8_t tramp[] = { 0xfa, 0x8c, 0xc8, 0x8e, 0xd8, 0xf0, 0xff, 0x06, 0x00, 0x01,
					 0xf4, 0xeb, 0xfd };
	outb(0x70, 0x5f);
	if (inb(0x71) < 1) {
		puts_("# one CPU\n");
		return;
	}
	for (unsigned i = 0; i < sizeof(tramp); i++)
		U8(0x8000 + i) = tramp[i];
	U16(0x8100) = 0;
	U32(0xfee00310) = 1u << 24;
	U32(0xfee00300) = 0x4500;		/* INIT */
	wait_ms(10);
	for (int k = 0; k < 2; k++) {
		U32(0xfee00310) = 1u << 24;
		U32(0xfee00300) = 0x4608;	/* startup at 0x8000 */
		wait_ms(1);
	}
	for (int i = 0; i < 200 && U16(0x8100) == 0; i++)
		wait_ms(1);
	check(U16(0x8100) == 1, "INIT + startup IPI start the second CPU at 0x8000, once");
}

static void test_misc(void)
{
	outb(0x64, 0xaa);
	for (int i = 0; i < 1000 && !(inb(0x64) & 1); i++) ;
	check(inb(0x60) == 0x55, "i8042 self test answers 0x55");
	outb(0x70, 0x0a);
	check((inb(0x71) & 0x7f) == 0x26, "RTC register A holds the 32.768 kHz divider");
	outb(0x70, 0x00);
	uint8_t s = inb(0x71);
	check((s & 15) < 10 && (s >> 4) < 6, "RTC seconds are BCD");
}

static uint32_t pci_cfg(int dev, int fn, int reg)
{
	outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | reg);
	return inl(0xcfc);
}

static void pci_wcfg(int dev, int reg, uint32_t v)
{
	outl(0xcf8, 0x80000000u | dev << 11 | reg);
	outl(0xcfc, v);
}

/* ---- virtio-blk through the modern PCI transport ---- */
static uint8_t vq[3 * 4096] __attribute__((aligned(4096)));
static uint8_t hdr[16], data[512], status;

static int blk_rw(uint32_t common, uint32_t notify, uint32_t type, uint32_t sector)
{
	volatile uint64_t *desc = (volatile uint64_t *)vq;
	volatile uint16_t *avail = (volatile uint16_t *)(vq + 4096);
	volatile uint16_t *used = (volatile uint16_t *)(vq + 8192);
	static uint16_t idx;
	uint16_t before = used[1];

	hdr[0] = type; hdr[8] = sector;
	desc[0] = (uint32_t)(uintptr_t)hdr; desc[1] = 16 | (uint64_t)1 << 32 | (uint64_t)1 << 48;
	desc[2] = (uint32_t)(uintptr_t)data; desc[3] = 512 | (uint64_t)((type == 0 ? 2 : 0) | 1) << 32 | (uint64_t)2 << 48;
	desc[4] = (uint32_t)(uintptr_t)&status; desc[5] = 1 | (uint64_t)2 << 32;
	status = 0xff;
	avail[2 + idx % 8] = 0;
	idx++;
	__asm__ volatile("" ::: "memory");
	avail[1] = idx;
	U16(notify) = 0;
	for (int i = 0; i < 1000000 && used[1] == before; i++) ;
	return used[1] != before ? status : -1;
}

static void test_pci(void)
{
	int blk = -1;

	check(pci_cfg(0, 0, 0) == 0x12378086, "00:00.0 is the i440FX host bridge");
	check(pci_cfg(1, 0, 0) == 0x70008086, "00:01.0 is the PIIX3 ISA bridge");
	for (int d = 2; d < 32; d++)
		if (pci_cfg(d, 0, 0) == 0x10421af4)
			blk = d;
	if (blk < 0) {
		puts_("# no virtio-blk disk\n");
		return;
	}
	int types = 0;
	for (uint8_t p = pci_cfg(blk, 0, 0x34) & 0xff; p; p = (pci_cfg(blk, 0, p) >> 8) & 0xff)
		if ((pci_cfg(blk, 0, p) & 0xff) == 0x09)
			types |= 1 << ((pci_cfg(blk, 0, p) >> 24) & 0xff);
	check(types == 0x1e, "virtio-blk has the common, notify, ISR and device capabilities");
	uint32_t bar = pci_cfg(blk, 0, 0x20) & ~0xfu;
	check(bar && (pci_cfg(blk, 0, 4) & 2), "virtio-blk BAR 4 is assigned and memory decoding on");
	pci_wcfg(blk, 0x04, 0x07);
	uint32_t c = bar;
	U8(c + 0x14) = 0; U8(c + 0x14) = 1; U8(c + 0x14) = 3;
	U32(c + 0x00) = 1;
	check(U32(c + 0x04) & 1, "virtio-blk offers VIRTIO_F_VERSION_1");
	U32(c + 0x08) = 1; U32(c + 0x0c) = 1;
	U32(c + 0x08) = 0; U32(c + 0x0c) = 0;
	U8(c + 0x14) = 0x0b;
	check(U8(c + 0x14) & 8, "virtio-blk accepts the features (FEATURES_OK)");
	U16(c + 0x16) = 0;
	U16(c + 0x18) = 8;
	U32(c + 0x20) = (uint32_t)(uintptr_t)vq; U32(c + 0x24) = 0;
	U32(c + 0x28) = (uint32_t)(uintptr_t)vq + 4096; U32(c + 0x2c) = 0;
	U32(c + 0x30) = (uint32_t)(uintptr_t)vq + 8192; U32(c + 0x34) = 0;
	U16(c + 0x1c) = 1;
	U8(c + 0x14) = 0x0f;
	uint32_t cap = U32(bar + 0x2000);
	check(cap > 0, "virtio-blk reports its capacity");
	int st = blk_rw(c, bar + 0x3000, 0, 0);
	check(st == 0, "virtio-blk reads sector 0");
	puts_("# sector 0: ");
	for (int i = 0; i < 16 && data[i] >= 32 && data[i] < 127; i++)
		putc_(data[i]);
	putc_('\n');
	const char *w = "WRITTEN-BY-GUEST";
	for (int i = 0; i < 512; i++)
		data[i] = i < 16 ? w[i] : 0;
	check(blk_rw(c, bar + 0x3000, 1, 1) == 0, "virtio-blk writes sector 1");
	check(blk_rw(c, bar + 0x3000, 4, 0) == 0, "virtio-blk flushes");
}

/* ---- virtio-net: one frame out, the peer's answer in ---- */
static uint8_t nq[2][3 * 4096] __attribute__((aligned(4096)));
static uint8_t txbuf[12 + 64], rxbuf[12 + 1514];

static void queue_setup(uint32_t c, int q, uint8_t *mem)
{
	U16(c + 0x16) = q;
	U16(c + 0x18) = 8;
	U32(c + 0x20) = (uint32_t)(uintptr_t)mem; U32(c + 0x24) = 0;
	U32(c + 0x28) = (uint32_t)(uintptr_t)mem + 4096; U32(c + 0x2c) = 0;
	U32(c + 0x30) = (uint32_t)(uintptr_t)mem + 8192; U32(c + 0x34) = 0;
	U16(c + 0x1c) = 1;
}

static void test_net(void)
{
	int dev = -1;

	for (int d = 2; d < 32; d++)
		if (pci_cfg(d, 0, 0) == 0x10411af4)
			dev = d;
	if (dev < 0) {
		puts_("# no virtio-net\n");
		return;
	}
	uint32_t bar = pci_cfg(dev, 0, 0x20) & ~0xfu, c = bar;
	U8(c + 0x14) = 0; U8(c + 0x14) = 3;
	U32(c + 0x08) = 1; U32(c + 0x0c) = 1;
	U32(c + 0x08) = 0; U32(c + 0x0c) = 1u << 5;		/* VIRTIO_NET_F_MAC */
	U8(c + 0x14) = 0x0b;
	check(U8(bar + 0x2000) == 0x52 && U8(bar + 0x2005) == 0x56, "virtio-net MAC 52:54:00:12:34:56");
	queue_setup(c, 0, nq[0]);
	queue_setup(c, 1, nq[1]);
	U8(c + 0x14) = 0x0f;
	/* one receive buffer */
	volatile uint64_t *rd = (volatile uint64_t *)nq[0];
	volatile uint16_t *ra = (volatile uint16_t *)(nq[0] + 4096), *ru = (volatile uint16_t *)(nq[0] + 8192);
	rd[0] = (uint32_t)(uintptr_t)rxbuf; rd[1] = sizeof(rxbuf) | (uint64_t)2 << 32;
	ra[2] = 0; ra[1] = 1;
	U16(bar + 0x3000) = 0;
	/* one frame out: broadcast, ethertype 0x88b5, "PING" */
	for (int i = 0; i < 12 + 64; i++) txbuf[i] = 0;
	for (int i = 0; i < 6; i++) txbuf[12 + i] = 0xff;
	txbuf[12 + 12] = 0x88; txbuf[12 + 13] = 0xb5;
	txbuf[12 + 14] = 'P'; txbuf[12 + 15] = 'I'; txbuf[12 + 16] = 'N'; txbuf[12 + 17] = 'G';
	volatile uint64_t *td = (volatile uint64_t *)nq[1];
	volatile uint16_t *ta = (volatile uint16_t *)(nq[1] + 4096), *tu = (volatile uint16_t *)(nq[1] + 8192);
	td[0] = (uint32_t)(uintptr_t)txbuf; td[1] = sizeof(txbuf);
	ta[2] = 0; ta[1] = 1;
	U16(bar + 0x3000 + 4) = 1;
	for (int i = 0; i < 1000 && tu[1] == 0; i++) wait_ms(1);
	check(tu[1] == 1, "virtio-net transmits a frame");
	for (int i = 0; i < 3000 && ru[1] == 0; i++) wait_ms(1);
	check(ru[1] == 1 && rxbuf[12 + 14] == 'P' && rxbuf[12 + 15] == 'O', "virtio-net receives the peer's answer (PONG)");
}

static void acpi_poweroff(void)
{
	for (uint32_t p = 0xe0000; p < 0x100000; p += 16) {
		if (U32(p) != 0x20445352 || U32(p + 4) != 0x20525450)	/* "RSD PTR " */
			continue;
		uint32_t rsdt = U32(p + 16), n = (U32(rsdt + 4) - 36) / 4;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t t = U32(rsdt + 36 + 4 * i);
			if (U32(t) == 0x50434146) {			/* "FACP" */
				puts_("# ACPI soft-off\n");
				outw(U32(t + 64), 1 << 13);
			}
		}
	}
	puts_("# no ACPI soft-off\n");
	outb(0xf4, 4);
}

static int has(const char *s, const char *w)
{
	for (; s && *s; s++) {
		int i = 0;
		while (w[i] && s[i] == w[i]) i++;
		if (!w[i]) return 1;
	}
	return 0;
}

void cmain(uint32_t info);
void cmain(uint32_t info)
{
	const char *cmd = (U32(info) & 4) ? (const char *)(uintptr_t)U32(info + 16) : "";

	setup_tables();
	puts_("hw-devices: "); puts_(cmd); putc_('\n');
	if (has(cmd, "reboot")) {
		static uint64_t none[1];
		struct __attribute__((packed)) { uint16_t lim; uint32_t base; } z = { 0, (uint32_t)(uintptr_t)none };
		__asm__ volatile("lidt %0\n int3" :: "m"(z));
	}
	if (has(cmd, "idle")) {
		puts_("idle\n");
		for (;;) __asm__ volatile("cli; hlt");
	}
	if (has(cmd, "echo")) {
		puts_("echo: type, q ends\n");
		for (;;) {
			while (!(inb(0x3fd) & 1)) ;
			char ch = inb(0x3f8);
			if (ch == 'q') break;
			putc_(ch);
		}
		putc_('\n');
		acpi_poweroff();
	}
	check(U32(info + 8) > 1024, "multiboot reports upper memory");
	test_misc();
	test_timers();
	test_apic();
	test_smp();
	test_pci();
	test_net();
	puts_("1.."); putdec(tests); putc_('\n');
	if (failed)
		outb(0xf4, 1);
	acpi_poweroff();
	for (;;) __asm__ volatile("cli; hlt");
}
