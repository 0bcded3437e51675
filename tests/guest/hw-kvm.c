/*
 * hw-kvm: a freestanding multiboot test program for vm-run's interrupt
 * paths, written to run under KVM as well as the JIT, with either
 * -machine kernel_irqchip=on (KVM's in-kernel PIC, IOAPIC, local APIC and
 * PIT; ioeventfd and irqfd for virtio) or off (lib/hw's models).
 *
 * It prints "ok N - what" / "not ok N - what" on COM1: PIT interrupts
 * through the 8259 and through the IOAPIC (ISA IRQ 0 on GSI 2), the local
 * APIC timer, the PIT channel 2 gate and output on port 0x61, the second
 * CPU's start by INIT + SIPI with -smp 2, and virtio-blk (modern PCI)
 * reads driven by its INTx interrupt through the IOAPIC: sector i of the
 * disk must begin with "KVMSECT" and i as 8 decimal digits; then the same
 * reads with MSI-X enabled (vector 0x33, no ISR read).  It leaves
 * through isa-debug-exit: 0x10 (status 33) when all passed, else 1
 * (status 3).
 *
 * With "bench" on the multiboot command line it instead times 4 KiB
 * virtio-blk reads, one at a time, each waited for with HLT until its
 * interrupt (INTx through the IOAPIC, or MSI-X with "bench msix"), and
 * prints "kvmbench: N reads in T us, U us per read"; N is 5000 unless
 * "reads=N" says otherwise.
 *
 * With "ticker" it runs the PIT at 1 kHz through the IOAPIC and prints
 * "tick N" every 200 interrupts, forever: a snapshot taken while it runs
 * must bring back the interrupt controllers' state for the ticks to go on.
 * "idle" does the same silently: a guest that only halts and takes timer
 * interrupts, which the in-kernel irqchip serves with no exit at all.
 *
 * With "reboot" the first run starts the second CPU, leaves the PIT
 * ticking through the IOAPIC and resets the machine (i8042 0xfe); the
 * run after the reset (CMOS byte 0x40 tells them apart) must find the
 * chips at their power-on state and passes the tests above again.
 *
 * Interrupt handlers return without IRET: KVM's instruction emulator
 * (which kvm_pvm relies on) handles IRET only in real mode, so each
 * handler rebuilds the stack as EFLAGS, EIP and uses POPF; RET.
 */
#include <stdint.h>

#define U8(a) (*(volatile uint8_t *)(uintptr_t)(a))
#define U16(a) (*(volatile uint16_t *)(uintptr_t)(a))
#define U32(a) (*(volatile uint32_t *)(uintptr_t)(a))

__asm__(".section .multiboot,\"a\"\n.align 4\n.long 0x1badb002, 3, -(0x1badb002 + 3)\n"
	".text\n.globl _start\n_start: mov $0x80000, %esp\n push %ebx\n call cmain\n1: hlt\n jmp 1b\n");

/* Handlers: count, acknowledge, return through irq_return. */
volatile uint32_t pic_ticks, apic_ticks, ioapic_ticks, blk_irqs, blk_isr_addr, msi_irqs;
void h_pic(void), h_apic(void), h_ioapic(void), h_blk(void), h_msi(void), h_spurious(void), h_fault(void);
__asm__(".text\n"
	"h_pic: push %eax\n incl pic_ticks\n mov $0x20, %al\n out %al, $0x20\n jmp irq_return\n"
	"h_apic: push %eax\n incl apic_ticks\n movl $0, 0xfee000b0\n jmp irq_return\n"
	"h_ioapic: push %eax\n incl ioapic_ticks\n movl $0, 0xfee000b0\n jmp irq_return\n"
	"h_blk: push %eax\n mov blk_isr_addr, %eax\n test %eax, %eax\n jz 1f\n movzbl (%eax), %eax\n"
	" test %eax, %eax\n jz 1f\n incl blk_irqs\n 1: movl $0, 0xfee000b0\n jmp irq_return\n"
	"h_msi: push %eax\n incl msi_irqs\n movl $0, 0xfee000b0\n jmp irq_return\n"
	"h_spurious: push %eax\n jmp irq_return\n"
	"h_fault: mov $0x3f8, %dx\n mov $'!', %al\n out %al, %dx\n mov $0xf4, %dx\n mov $2, %al\n"
	" out %al, %dx\n 2: cli\n hlt\n jmp 2b\n"
	/* stack: eax, eip, cs, eflags -> eflags, eip */
	"irq_return: mov 4(%esp), %eax\n xchg %eax, 12(%esp)\n mov %eax, 8(%esp)\n pop %eax\n"
	" add $4, %esp\n popf\n ret\n");

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline void sti_hlt(void) { __asm__ volatile("sti\n hlt\n cli" ::: "memory"); }

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

static uint64_t gdt[3] = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
static uint64_t idt[256];

static void set_gate(int v, void (*h)(void))
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
	set_gate(0x32, h_blk);
	set_gate(0x33, h_msi);
	__asm__ volatile("lidt %0" :: "m"(i));
}

static uint32_t pm_timer(void) { return inl(0x608) & 0xffffff; }
static void wait_us(uint32_t us)
{
	uint32_t start = pm_timer(), want = us * 358 / 100;
	while (((pm_timer() - start) & 0xffffff) < want) ;
}

static void pit_periodic(uint16_t count) { outb(0x43, 0x34); outb(0x40, count & 0xff); outb(0x40, count >> 8); }
static void pit_stop(void) { outb(0x43, 0x30); outb(0x40, 0); outb(0x40, 0); }
static void ioapic_route(int pin, uint32_t lo) { U32(0xfec00000) = 0x10 + 2 * pin; U32(0xfec00010) = lo; U32(0xfec00000) = 0x11 + 2 * pin; U32(0xfec00010) = 0; }

/* Wait with HLT for *ctr to reach want; the 1 kHz APIC timer bounds it. */
static int wait_irq(volatile uint32_t *ctr, uint32_t want, uint32_t max_ms)
{
	uint32_t t0 = apic_ticks;
	while (*ctr < want && apic_ticks - t0 < max_ms)
		sti_hlt();
	return *ctr >= want;
}

static void test_pic(void)
{
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
	outb(0x21, 0xfe); outb(0xa1, 0xff);
	pit_periodic(1193);			/* 1 kHz */
	for (int i = 0; i < 100000 && pic_ticks < 10; i++)
		sti_hlt();
	check(pic_ticks >= 10, "PIT channel 0 interrupts through the 8259 (IRQ 0, vector 0x20)");
	pit_stop();
	outb(0x21, 0xff);
}

static void test_apic_timer(void)
{
	U32(0xfee000f0) = 0x1ff;		/* software enable, spurious 0xff */
	U32(0xfee003e0) = 0xb;			/* divide by 1 */
	U32(0xfee00320) = 0x30;			/* one-shot, vector 0x30 */
	U32(0xfee00380) = 2000000;		/* 2 ms at 1 GHz */
	for (int i = 0; i < 100000 && !apic_ticks; i++)
		sti_hlt();
	check(apic_ticks == 1, "local APIC one-shot timer interrupt (vector 0x30)");
	U32(0xfee00320) = 0x20030;		/* periodic from now on: 1 kHz */
	U32(0xfee00380) = 1000000;
	uint32_t t = apic_ticks, t0 = pm_timer();
	while (((pm_timer() - t0) & 0xffffff) < 1000 * 3580 && apic_ticks - t < 5)
		sti_hlt();		/* 5 ticks within 1 s: room for a loaded host */
	check(apic_ticks - t >= 5, "local APIC periodic timer ticks");
}

static void test_ioapic(void)
{
	ioapic_route(2, 0x31);			/* ISA IRQ 0 is GSI 2 (the MADT's override) */
	pit_periodic(1193);
	check(wait_irq(&ioapic_ticks, 5, 1000), "PIT interrupts through the IOAPIC (GSI 2, vector 0x31)");
	pit_stop();
	ioapic_route(2, 0x10000);
}

/* Channel 2's count, latched (both bytes of one instant). */
static uint16_t pit2_read(void)
{
	outb(0x43, 0x80);
	uint8_t lo = inb(0x42), hi = inb(0x42);
	return (uint16_t)(lo | hi << 8);
}

static void test_port61(void)
{
	uint16_t a = 0, b = 0;

	outb(0x61, (inb(0x61) & ~2) | 1);	/* gate channel 2 on, speaker off */
	/* 5 ms is about 5966 counts.  The 16-bit count wraps after 55 ms: a
	 * vCPU preempted that long between the reads (a loaded host, the
	 * interpreter alone) measures again, up to 5 times. */
	for (int i = 0; i < 5; i++) {
		outb(0x43, 0xb0); outb(0x42, 0xff); outb(0x42, 0xff);
		uint32_t t0 = pm_timer();
		a = pit2_read();
		wait_us(5000);
		b = pit2_read();
		if (((pm_timer() - t0) & 0xffffff) < 40 * 3580)
			break;
	}
	check((uint16_t)(a - b) >= 5000, "PIT channel 2 counts with its gate on (port 0x61)");
	outb(0x43, 0xb0); outb(0x42, 100); outb(0x42, 0);
	wait_us(2000);
	check(inb(0x61) & 0x20, "port 0x61 shows channel 2's output after terminal count");
}

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
	wait_us(10000);
	for (int k = 0; k < 2; k++) {
		U32(0xfee00310) = 1u << 24;
		U32(0xfee00300) = 0x4608;	/* startup at 0x8000 */
		wait_us(1000);
	}
	for (int i = 0; i < 500 && U16(0x8100) == 0; i++)
		wait_us(1000);
	check(U16(0x8100) == 1, "INIT + startup IPI start the second CPU at 0x8000, once");
}

/* ---- virtio-blk through the modern PCI transport, interrupt-driven ---- */
static uint32_t pci_cfg(int dev, int reg)
{
	outl(0xcf8, 0x80000000u | dev << 11 | reg);
	return inl(0xcfc);
}

static uint8_t vq[3 * 4096] __attribute__((aligned(4096)));
static uint8_t hdr[16], data[4096] __attribute__((aligned(512))), status;
static uint32_t blk_notify, blk_common;
static int blk_dev;
static uint16_t blk_idx;
static int blk_fail;		/* why the last read failed: */
static const char *const blk_why[] = { "", "no interrupt in 5 s", "interrupt before its used entry",
					"status not 0" };

/* Find the disk, set it up with one 8-entry queue; its IOAPIC pin or -1. */
static int blk_setup(void)
{
	int dev = -1;

	for (int d = 2; d < 32; d++)
		if (pci_cfg(d, 0) == 0x10421af4)
			dev = d;
	if (dev < 0)
		return -1;
	uint32_t bar = pci_cfg(dev, 0x20) & ~0xfu, c = bar;
	outl(0xcf8, 0x80000000u | dev << 11 | 4);
	outl(0xcfc, (inl(0xcfc) | 6) & ~0x400u);	/* memory, bus master, INTx on */
	U8(c + 0x14) = 0; U8(c + 0x14) = 3;
	U32(c + 0x08) = 1; U32(c + 0x0c) = 1;
	U32(c + 0x08) = 0; U32(c + 0x0c) = 0;
	U8(c + 0x14) = 0x0b;
	U16(c + 0x16) = 0;
	U16(c + 0x18) = 8;
	U32(c + 0x20) = (uint32_t)(uintptr_t)vq; U32(c + 0x24) = 0;
	U32(c + 0x28) = (uint32_t)(uintptr_t)vq + 4096; U32(c + 0x2c) = 0;
	U32(c + 0x30) = (uint32_t)(uintptr_t)vq + 8192; U32(c + 0x34) = 0;
	U16(c + 0x1c) = 1;
	U8(c + 0x14) = 0x0f;
	blk_notify = bar + 0x3000 + U16(c + 0x1e) * 4;
	blk_common = c;
	blk_dev = dev;
	blk_isr_addr = bar + 0x1000;
	return pci_cfg(dev, 0x3c) & 0xff;
}

/* Read len bytes at sector, waiting for the interrupt; 0 or -1. */
static int blk_read_ctr(uint32_t sector, uint32_t len, volatile uint32_t *ctr)
{
	volatile uint64_t *desc = (volatile uint64_t *)vq;
	volatile uint16_t *avail = (volatile uint16_t *)(vq + 4096);
	volatile uint16_t *used = (volatile uint16_t *)(vq + 8192);
	uint32_t irqs = *ctr;

	for (int i = 0; i < 16; i++)
		hdr[i] = 0;
	for (int i = 0; i < 4; i++)
		hdr[8 + i] = sector >> (8 * i);
	desc[0] = (uint32_t)(uintptr_t)hdr; desc[1] = 16 | (uint64_t)1 << 32 | (uint64_t)1 << 48;
	desc[2] = (uint32_t)(uintptr_t)data; desc[3] = len | (uint64_t)3 << 32 | (uint64_t)2 << 48;
	desc[4] = (uint32_t)(uintptr_t)&status; desc[5] = 1 | (uint64_t)2 << 32;
	status = 0xff;
	avail[2 + blk_idx % 8] = 0;
	blk_idx++;
	__asm__ volatile("" ::: "memory");
	avail[1] = blk_idx;
	U16(blk_notify) = 0;
	if (!wait_irq(ctr, irqs + 1, 5000))
		return blk_fail = 1, -1;
	if (used[1] != blk_idx)
		return blk_fail = 2, -1;
	return status == 0 ? 0 : (blk_fail = 3, -1);
}

static int blk_read(uint32_t sector, uint32_t len) { return blk_read_ctr(sector, len, &blk_irqs); }

/* MSI-X: table entry 0 to the BSP's vector 0x33, queue 0 on it, enabled. */
static int msix_setup(void)
{
	uint8_t cap = 0;

	for (uint8_t p = pci_cfg(blk_dev, 0x34) & 0xff; p; p = (pci_cfg(blk_dev, p) >> 8) & 0xff)
		if ((pci_cfg(blk_dev, p) & 0xff) == 0x11)
			cap = p;
	if (!cap)
		return -1;
	uint32_t tab = pci_cfg(blk_dev, cap + 4), bar = pci_cfg(blk_dev, 0x10 + 4 * (tab & 7)) & ~0xfu;
	uint32_t e = bar + (tab & ~7u);
	U32(e + 0) = 0xfee00000; U32(e + 4) = 0; U32(e + 8) = 0x33; U32(e + 12) = 0;
	U16(blk_common + 0x16) = 0;
	U16(blk_common + 0x1a) = 0;
	if (U16(blk_common + 0x1a) != 0)
		return -1;
	outl(0xcf8, 0x80000000u | blk_dev << 11 | cap);
	outl(0xcfc, inl(0xcfc) | 0x80000000u);
	return 0;
}

static int sector_ok(uint32_t i)
{
	static const char tag[] = "KVMSECT";
	char num[8];

	for (int k = 7; k >= 0; k--, i /= 10)
		num[k] = '0' + i % 10;
	for (int k = 0; k < 7; k++)
		if (data[k] != tag[k])
			return 0;
	for (int k = 0; k < 8; k++)
		if (data[7 + k] != num[k])
			return 0;
	return 1;
}

static void test_blk(void)
{
	int pin = blk_setup(), good = 0;

	if (pin < 0) {
		puts_("# no virtio-blk disk\n");
		return;
	}
	ioapic_route(pin, 0x8000 | 0x32);	/* level, active high, vector 0x32 */
	for (uint32_t s = 0; s < 64; s++)
		if (blk_read(s, 512) == 0 && sector_ok(s))
			good++;
	check(good == 64, "virtio-blk reads 64 sectors of the known pattern, one interrupt each");
	check(blk_irqs == 64, "virtio-blk raised exactly one INTx per request through the IOAPIC");
	ioapic_route(pin, 0x10000);
	good = 0;
	check(msix_setup() == 0, "virtio-blk has MSI-X; queue 0 takes vector 0 of its table");
	for (uint32_t s = 64; s < 128; s++)
		if (blk_read_ctr(s, 512, &msi_irqs) == 0 && sector_ok(s))
			good++;
	check(good == 64 && msi_irqs == 64, "virtio-blk reads 64 more sectors, one MSI-X message each (vector 0x33)");
	check(blk_irqs == 64, "no INTx once MSI-X is on");
}

static void bench(int msix, uint32_t n)
{
	int pin = blk_setup(), bad = 0;
	volatile uint32_t *ctr = &blk_irqs;
	uint32_t t0, ticks = 0, last;

	if (pin < 0) {
		puts_("kvmbench: no virtio-blk disk\n");
		outb(0xf4, 1);
		return;
	}
	ioapic_route(pin, 0x8000 | 0x32);
	if (msix) {
		ioapic_route(pin, 0x10000);
		bad |= msix_setup();
		ctr = &msi_irqs;
	}
	uint32_t i;

	t0 = last = pm_timer();
	for (i = 0; i < n && !bad; i++) {
		bad |= blk_read_ctr((i * 8) % 16384, 4096, ctr);
		uint32_t now = pm_timer();
		ticks += (now - last) & 0xffffff;
		last = now;
	}
	(void)t0;
	uint32_t us = ticks / 358 * 100;
	if (bad) {
		volatile uint16_t *used = (volatile uint16_t *)(vq + 8192);
		puts_("kvmbench: read "); putdec(i); puts_(" failed: "); puts_(blk_why[blk_fail]);
		puts_(" (used index "); putdec(used[1]); puts_(", available "); putdec(blk_idx);
		puts_(")\n");
		n = i ? i : 1;
	}
	puts_("kvmbench: "); putdec(n); puts_(" reads in "); putdec(us); puts_(" us, ");
	putdec(us / n); puts_(" us per read\n");
	outb(0xf4, bad ? 1 : 0x10);
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

/* The decimal number after w in s, or dflt. */
static uint32_t num_after(const char *s, const char *w, uint32_t dflt)
{
	uint32_t v = 0;
	int any = 0;

	for (; s && *s; s++) {
		int i = 0;
		while (w[i] && s[i] == w[i]) i++;
		if (w[i])
			continue;
		for (s += i; *s >= '0' && *s <= '9'; s++, any = 1)
			v = v * 10 + (*s - '0');
		return any ? v : dflt;
	}
	return dflt;
}

static void ticker(int quiet)
{
	uint32_t n = 0;

	U32(0xfee000f0) = 0x1ff;		/* local APIC software enable */
	ioapic_route(2, 0x31);
	pit_periodic(1193);
	for (;;) {
		sti_hlt();
		if (!quiet && ioapic_ticks >= 200 * (n + 1)) {
			puts_("tick "); putdec(++n); putc_('\n');
		}
	}
}

/* The first run of "reboot": some state in every chip, then a reset. */
static void dirty_then_reset(void)
{
	outb(0x70, 0x40); outb(0x71, 0x5a);
	puts_("# first run: chips in use, then a reset through the i8042\n");
	U32(0xfee000f0) = 0x1ff;
	test_smp();
	ioapic_route(2, 0x31);
	pit_periodic(1193);
	wait_irq(&ioapic_ticks, 3, 1000);
	outb(0x64, 0xfe);
	for (;;)
		sti_hlt();
}

void cmain(uint32_t info);
void cmain(uint32_t info)
{
	const char *cmd = (U32(info) & 4) ? (const char *)(uintptr_t)U32(info + 16) : "";

	setup_tables();
	outb(0x21, 0xff); outb(0xa1, 0xff);
	puts_("hw-kvm: "); puts_(cmd); putc_('\n');
	if (has(cmd, "ticker") || has(cmd, "idle"))
		ticker(has(cmd, "idle"));
	if (has(cmd, "reboot")) {
		outb(0x70, 0x40);
		if (inb(0x71) != 0x5a)
			dirty_then_reset();
		puts_("# after the reset\n");
		outb(0x70, 0x40); outb(0x71, 0);
		U32(0xfec00000) = 0x10 + 2 * 2;
		check(U32(0xfec00010) & 0x10000, "the IOAPIC's entries are masked again after reset");
	}
	if (has(cmd, "bench")) {
		U32(0xfee000f0) = 0x1ff;
		U32(0xfee003e0) = 0xb;
		U32(0xfee00320) = 0x20030;
		U32(0xfee00380) = 1000000;
		bench(has(cmd, "msix"), num_after(cmd, "reads=", 5000));
		return;
	}
	test_pic();
	test_apic_timer();
	test_ioapic();
	test_port61();
	test_smp();
	test_blk();
	puts_("1.."); putdec(tests); putc_('\n');
	outb(0xf4, failed ? 1 : 0x10);
}
