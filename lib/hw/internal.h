/*
 * lib/hw private interfaces: the machine structure, port and MMIO
 * dispatch, interrupt routing, timers, the device-state stream and the
 * constructors of every device.  Device code runs with m->lock held.
 */
#ifndef HW_INTERNAL_H
#define HW_INTERNAL_H

#include <pthread.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "hw/hw.h"

/* ---- device-state stream (state.c) ----
 * A section is: name (u8 length + bytes), version u32, length u32, data.
 * The whole stream starts with the magic "VMHW" and a u32 format version.
 * Readers check every length; a short read sets r->err and returns 0. */

struct hw_wbuf { uint8_t *p; size_t len, cap; };
struct hw_rbuf { const uint8_t *p; size_t len, pos; int err; };

void hw_put8(struct hw_wbuf *w, uint8_t v);
void hw_put16(struct hw_wbuf *w, uint16_t v);
void hw_put32(struct hw_wbuf *w, uint32_t v);
void hw_put64(struct hw_wbuf *w, uint64_t v);
void hw_putb(struct hw_wbuf *w, const void *p, size_t n);
uint8_t hw_get8(struct hw_rbuf *r);
uint16_t hw_get16(struct hw_rbuf *r);
uint32_t hw_get32(struct hw_rbuf *r);
uint64_t hw_get64(struct hw_rbuf *r);
void hw_getb(struct hw_rbuf *r, void *p, size_t n);
/* A value read that must be below max: sets r->err when not. */
uint32_t hw_get_index(struct hw_rbuf *r, uint32_t max, unsigned bytes);

/* ---- devices ---- */

/* What every device provides to the machine. */
struct hw_dev_ops {
	const char *name;	/* section name in saved state, e.g. "uart" */
	uint32_t version;	/* version of the saved section */
	/* Back to the power-on state (machine reset).  Optional. */
	void (*reset)(void *dev);
	/* Append the state to w.  Required. */
	void (*save)(void *dev, struct hw_wbuf *w);
	/* Replace the state from r (already checked to be `version`); 0 or
	 * -EINVAL on bad data, in which case the state is left valid. */
	int (*load)(void *dev, struct hw_rbuf *r);
	/* True while requests the device took from the guest are still
	 * being served on other threads, their results not yet in RAM and
	 * the device's rings (lock held).  savevm and loadvm wait for it to
	 * turn false.  Optional: a device that serves each request within
	 * the call that takes it is never busy. */
	bool (*busy)(void *dev);
	/* Release everything.  Required. */
	void (*free)(void *dev);
};

struct hw_dev { const struct hw_dev_ops *ops; void *dev; int instance; };

/* Port I/O or MMIO handlers; offset is from the region's base. */
struct hw_io_ops {
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, uint64_t val, unsigned size);
};

struct hw_io_region {
	uint64_t base, len;
	const struct hw_io_ops *ops;
	void *opaque;
	const char *name;
	bool read_unlocked;	/* port I/O: hw_pio_add_unlocked */
};

/* ---- timers (timer.c): callbacks run on the timer thread, lock held ---- */

struct hw_timer {
	int64_t deadline;	/* ns on CLOCK_MONOTONIC, -1 when idle */
	void (*cb)(void *opaque);
	void *opaque;
	struct hw_timer *next;
};


struct hw_vcpu {
	struct machine *m;
	int index;
	void *accel_vcpu;
	pthread_t thread;
	pthread_cond_t wake;	/* halted vCPU waits here (m->lock) */
	bool kicked;
	bool intr;		/* INTR level last given to the accelerator */
	struct hw_apic *apic;
};

enum { HW_REQ_NONE, HW_REQ_RESET, HW_REQ_STOP };

#define HW_PIO_REGIONS 64
#define HW_MMIO_REGIONS 64

struct machine {
	struct hw_config cfg;
	pthread_mutex_t lock;

	/* Guest RAM: [0, lowmem) and [4 GiB, 4 GiB + highmem) */
	uint8_t *ram;
	uint64_t ram_size, lowmem, highmem;
	uint8_t *bios;		/* firmware ROM at 4 GiB - bios_size and 0xe0000 */
	uint64_t bios_size;

	struct hw_io_region pio[HW_PIO_REGIONS];
	int npio;
	uint8_t pio_map[65536];	/* port -> index + 1 into pio, 0 = none */
	struct hw_io_region mmio[HW_MMIO_REGIONS];
	int nmmio;

	struct hw_dev devs[64];
	int ndevs;

	/* Devices the machine wires together. */
	struct hw_pic *pic;
	struct hw_pit *pit;
	struct hw_ioapic *ioapic;
	struct hw_uart *uart[HW_MAX_SERIAL];
	struct hw_pci *pci;
	struct hw_acpi *acpi;
	struct hw_fwcfg *fwcfg;
	struct hw_virtio *virtcon, *virtnet[HW_MAX_NICS];
	struct e1000 *e1000[HW_MAX_NICS];	/* NIC idx when it is an e1000 */
	uint32_t irq_level;	/* ISA/GSI lines 0..31 as last set */
	bool kernel_irqchip;	/* KVM holds the PIC, IOAPIC, APICs and PIT */
	bool kernel_lapic;	/* split irqchip: KVM holds only the local APICs */

	const struct hw_accel_ops *accel;
	void *accel_state;
	struct hw_vcpu vcpu[HW_MAX_CPUS];
	int ncpu;

	/* Timers */
	struct hw_timer *timers;
	pthread_t timer_thread;
	pthread_cond_t timer_cond;
	bool timer_running;

	/* Run state */
	pthread_cond_t state_cond;
	bool stopping, paused;
	int request;		/* HW_REQ_* */
	int nparked;		/* vCPU threads parked for a reset or pause */
	enum hw_stop stop_reason;
	int exit_status;
	atomic_uint_fast64_t progress;
	uint64_t a20_mask;
	uint64_t rsdp_addr;	/* where the ACPI tables went (boot loaders) */
	char *error;		/* why a vCPU stopped the machine */
	pthread_t kcache_thread;	/* writing the unpacked kernel to the cache */
	bool kcache_busy;
};

/* ---- machine plumbing (machine.c, memory.c) ---- */

int hw_dev_add(struct machine *m, const struct hw_dev_ops *ops, void *dev);
int hw_pio_add(struct machine *m, uint16_t base, uint16_t len,
	       const struct hw_io_ops *ops, void *opaque, const char *name);
/* The same for ports whose reads need no machine lock (they look at
 * nothing the guest or a device changes, as a clock): a guest polling
 * them then does not contend for the lock with the threads that
 * complete its I/O.  Writes still take the lock. */
int hw_pio_add_unlocked(struct machine *m, uint16_t base, uint16_t len,
			const struct hw_io_ops *ops, void *opaque, const char *name);
int hw_mmio_add(struct machine *m, uint64_t base, uint64_t len,
		const struct hw_io_ops *ops, void *opaque, const char *name);
void hw_mmio_move(struct machine *m, void *opaque, int which, uint64_t base);
void hw_mmio_del(struct machine *m, void *opaque);
/* Host pointer to guest-physical RAM [gpa, gpa+len) or NULL. */
void *hw_ram_ptr(struct machine *m, uint64_t gpa, uint64_t len);
/* Copy to/from guest RAM (DMA); -EFAULT outside RAM. */
int hw_dma_read(struct machine *m, uint64_t gpa, void *buf, size_t len);
int hw_dma_write(struct machine *m, uint64_t gpa, const void *buf, size_t len);
/* A device wrote host bytes [p, p + len) of RAM (the accelerator's ram_written). */
void hw_ram_written(struct machine *m, const void *p, size_t len);
int hw_memory_init(struct machine *m);
/* The e820 map: fills up to max entries {addr, size, type}, returns count. */
struct hw_e820 { uint64_t addr, size; uint32_t type; };
int hw_e820(const struct machine *m, struct hw_e820 *e, int max);

/* Bus entry points for accelerators (they take m->lock). */
uint32_t hw_bus_pio_in(struct machine *m, uint16_t port, unsigned size);
void hw_bus_pio_out(struct machine *m, uint16_t port, uint32_t val, unsigned size);
uint64_t hw_bus_mmio_read(struct machine *m, int cpu, uint64_t gpa, unsigned size);
void hw_bus_mmio_write(struct machine *m, int cpu, uint64_t gpa, uint64_t val, unsigned size);
int hw_bus_irq_ack(struct machine *m, int cpu);
int hw_bus_msr_read(struct machine *m, int cpu, uint32_t msr, uint64_t *val);
int hw_bus_msr_write(struct machine *m, int cpu, uint32_t msr, uint64_t val);
/* The vCPU's INTR line should be re-evaluated (lock held). */
void hw_cpu_update_intr(struct machine *m, int cpu);
/* Make the vCPU's run return soon (accelerator kick) and wake it if halted. */
void hw_cpu_kick(struct machine *m, int cpu);

/* Stop requests from devices (lock held). */
void hw_request_poweroff(struct machine *m);
void hw_request_reset(struct machine *m);
void hw_request_exit(struct machine *m, enum hw_stop why, int status);

/* Copy segment and system-register state field by field between the
 * accelerators' structs (KVM's, the JIT's, ours), which share field names
 * but not layouts. */
#define SEG_COPY(D_, S_) do { (D_).base = (S_).base; (D_).limit = (S_).limit; \
	(D_).selector = (S_).selector; (D_).type = (S_).type; (D_).present = (S_).present; \
	(D_).dpl = (S_).dpl; (D_).db = (S_).db; (D_).s = (S_).s; (D_).l = (S_).l; (D_).g = (S_).g; \
	(D_).avl = (S_).avl; (D_).unusable = (S_).unusable; } while (0)
#define SREGS_COPY(D_, S_) do { SEG_COPY((D_).cs, (S_).cs); SEG_COPY((D_).ds, (S_).ds); \
	SEG_COPY((D_).es, (S_).es); SEG_COPY((D_).fs, (S_).fs); SEG_COPY((D_).gs, (S_).gs); \
	SEG_COPY((D_).ss, (S_).ss); SEG_COPY((D_).tr, (S_).tr); SEG_COPY((D_).ldt, (S_).ldt); \
	(D_).gdt.base = (S_).gdt.base; (D_).gdt.limit = (S_).gdt.limit; \
	(D_).idt.base = (S_).idt.base; (D_).idt.limit = (S_).idt.limit; \
	(D_).cr0 = (S_).cr0; (D_).cr2 = (S_).cr2; (D_).cr3 = (S_).cr3; (D_).cr4 = (S_).cr4; \
	(D_).cr8 = (S_).cr8; (D_).efer = (S_).efer; (D_).apic_base = (S_).apic_base; } while (0)

/* ---- interrupts ---- */

/* Set ISA IRQ / GSI line (lock held): goes to the PIC (irq < 16) and the
 * IOAPIC (ISA IRQ 0 is GSI 2, as the MADT says). */
void hw_set_irq(struct machine *m, int irq, bool level);
/* A message-signalled interrupt (MSI, MSI-X) written to addr (the local
 * APICs' window, 0xfeexxxxx) with data (lock held).  Edge-triggered. */
void hw_msi(struct machine *m, uint64_t addr, uint32_t data);
/* An edge on ISA IRQ irq that the PIC or a local APIC still holds, not
 * yet taken by a CPU (lock held; false under KVM's in-kernel chips). */
bool hw_irq_pending(struct machine *m, int irq);
/* Park every vCPU (lock held) and keep them parked until hw_unpark_all
 * gives back the paused flag hw_park_all returned.  Outside machine_run()
 * (no timer thread) there are no vCPU threads to wait for, and ones that
 * start later park at once; otherwise it waits at most 1 s. */
bool hw_park_all(struct machine *m);
/* The MSRs each accelerator's get_extra saves (vmstate.c). */
extern const uint32_t hw_saved_msrs[];
extern const size_t hw_n_saved_msrs;
void hw_unpark_all(struct machine *m, bool paused);
static inline void hw_pulse_irq(struct machine *m, int irq)
{
	hw_set_irq(m, irq, true);
	hw_set_irq(m, irq, false);
}

/* ---- timers ---- */
void hw_timer_init(struct hw_timer *t, void (*cb)(void *), void *opaque);
void hw_timer_mod(struct machine *m, struct hw_timer *t, int64_t deadline_ns);
void hw_timer_del(struct machine *m, struct hw_timer *t);
int hw_timers_start(struct machine *m);
void hw_timers_stop(struct machine *m);

/* ---- devices (one file each) ---- */

struct hw_pic;
int pic_new(struct machine *m);
bool pic_output(struct hw_pic *p);	/* INT pin of the master */
int pic_ack(struct hw_pic *p);		/* INTA cycle: vector */
void pic_set_irq(struct hw_pic *p, int irq, bool level);
bool pic_irq_pending(const struct hw_pic *p, int irq);

int pit_new(struct machine *m);
int rtc_new(struct machine *m);
int uart_new(struct machine *m, int index, const struct hw_char_backend *be);
void uart_input(struct hw_uart *u, const uint8_t *buf, size_t len);
int i8042_new(struct machine *m);
int debugexit_new(struct machine *m, uint16_t port, uint8_t size);
int port92_new(struct machine *m);
int debugcon_new(struct machine *m);

struct hw_fwcfg;
int fwcfg_new(struct machine *m);
void fwcfg_add_file(struct hw_fwcfg *f, const char *name, const void *data, uint32_t len);
/* The ACPI tables as fw_cfg files with QEMU's linker/loader script. */
void acpi_fwcfg_tables(struct machine *m, struct hw_fwcfg *f);

struct hw_apic;
int apic_new(struct machine *m, int cpu);
bool apic_has_intr(struct hw_apic *a);		/* something to deliver on INTR */
int apic_ack(struct hw_apic *a);		/* vector or -1 */
void apic_deliver(struct machine *m, uint8_t dest, bool logical, uint8_t mode,
		  uint8_t vector, bool level_trig);
int apic_msr_read(struct hw_apic *a, uint32_t msr, uint64_t *val);
int apic_msr_write(struct hw_apic *a, uint32_t msr, uint64_t val);
bool apic_enabled(struct hw_apic *a);
bool apic_irr_test(const struct hw_apic *a, uint8_t vec);
/* The local APIC window of cpu, if the access falls in it (lock held). */
bool apic_mmio(struct hw_apic *a, uint64_t gpa, uint64_t *val, bool write, unsigned size);
/* What firmware leaves behind: LINT0 ExtINT, LINT1 NMI, software-enabled. */
void apic_bios_setup(struct hw_apic *a);
void apic_eoi_notify(struct machine *m, uint8_t vector);	/* to the IOAPIC */

int ioapic_new(struct machine *m);
void ioapic_set_irq(struct hw_ioapic *io, int gsi, bool level);
bool ioapic_pin_pending(const struct hw_ioapic *io, int pin);
void ioapic_eoi(struct hw_ioapic *io, uint8_t vector);

int acpi_new(struct machine *m);
int acpi_build_tables(struct machine *m, uint64_t addr, uint64_t room);
void acpi_dsdt_aml(struct hw_wbuf *w, uint64_t lowmem);

#define HW_PCI_IRQ0 10		/* INTx of slots route to GSI 10, 11 */
struct hw_pci_dev;
struct hw_pci_ops {
	/* Config space access beyond the header is by the device. Optional. */
	uint32_t (*cfg_read)(struct hw_pci_dev *d, unsigned off, unsigned size);
	void (*cfg_write)(struct hw_pci_dev *d, unsigned off, uint32_t v, unsigned size);
	/* BAR n moved to addr (or was disabled, addr 0). Optional. */
	void (*bar_map)(struct hw_pci_dev *d, int bar, uint64_t addr, bool io);
};
struct hw_pci_dev {
	struct machine *m;
	const struct hw_pci_ops *ops;
	void *opaque;
	uint8_t cfg[256];
	uint32_t bar_size[6];	/* 0 = unused; bit 0 set = I/O BAR */
	bool bar64[6];
	int slot;
	int irq;		/* GSI of INTA */
};
int pci_new(struct machine *m);
/* A plain function at devfn with no device behind its config space. */
void pci_add_fn(struct machine *m, int devfn, uint16_t vendor, uint16_t device, uint32_t class_rev);
struct hw_pci_dev *pci_add(struct machine *m, uint16_t vendor, uint16_t device,
			   uint32_t class_rev, uint16_t subsys,
			   const struct hw_pci_ops *ops, void *opaque);
void pci_set_bar(struct hw_pci_dev *d, int bar, uint32_t size, bool io, bool is64);
uint8_t pci_add_cap(struct hw_pci_dev *d, const uint8_t *cap, unsigned len);
void pci_set_intx(struct hw_pci_dev *d, bool level);
/* Give every BAR an address and enable decoding, as a BIOS would. */
void pci_assign_bars(struct machine *m);

int ide_new(struct machine *m);
int virtio_blk_new(struct machine *m, const struct hw_disk *d);
int virtio_console_new(struct machine *m, const struct hw_char_backend *be);
int virtio_rng_new(struct machine *m);
int virtio_net_new(struct machine *m, int idx, const struct hw_nic *n);
struct e1000;
int e1000_new(struct machine *m, int idx, const struct hw_nic *n);
void virtio_char_input(struct hw_virtio *v, const uint8_t *buf, size_t len);
void virtio_net_input(struct hw_virtio *v, const uint8_t *frame, size_t len);
void virtio_net_set_link(struct hw_virtio *v, bool up);

/* ---- loaders ---- */
int boot_linux(struct machine *m, const uint8_t *img, size_t len);
int boot_unpack(struct machine *m, const uint8_t *img, size_t len, uint8_t *zp,
		const char *cmdline, uint64_t *entry);
/* The unpacked-kernel cache (boot-cache.c): get gives a new buffer with
 * what payload inflates to (-ENOENT: no good entry); put takes data and
 * writes the entry in the background; wait ends that (machine_free). */
int boot_cache_get(struct machine *m, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen);
void boot_cache_put(struct machine *m, const uint8_t *payload, size_t len, uint8_t *data,
		    size_t dlen);
void boot_cache_wait(struct machine *m);
int boot_multiboot(struct machine *m, const uint8_t *img, size_t len);
bool boot_is_multiboot(const uint8_t *img, size_t len);
int boot_bios(struct machine *m, const char *path);
int boot_enter32(struct machine *m, uint32_t eip, uint32_t eax, uint32_t ebx, uint32_t esi);
int hw_read_file(const char *path, uint8_t **buf, size_t *len);

/* ---- fast device paths (kvm-event.c) ----
 * Under KVM with the in-kernel irqchip a device can skip the vCPU's exit
 * to user space.  An ioevent: a guest write to the MMIO address gpa calls
 * fn(opaque, arg) on the machine's event thread with m->lock held.  It
 * and the MSI irqfd below return -ENOTSUP on other accelerators (the
 * device keeps its MMIO handler and hw_msi); call them with m->lock
 * held. */
struct hw_ioevent;
int hw_ioevent_add(struct machine *m, uint64_t gpa, void (*fn)(void *opaque, int arg),
		   void *opaque, int arg, struct hw_ioevent **out);
void hw_ioevent_del(struct machine *m, struct hw_ioevent *e);
/* Run e's handler soon, as if the guest had written (after a load). */
void hw_ioevent_ring(struct hw_ioevent *e);
/* An MSI irqfd: each send delivers message (addr, data) through an
 * eventfd on a GSI routed to it (the route follows the message). */
struct hw_msifd;
int hw_msifd_new(struct machine *m, struct hw_msifd **out);
void hw_msifd_send(struct hw_msifd *f, uint64_t addr, uint32_t data);

/* ---- the KVM accelerator's pieces (accel-kvm.c, kvm-*.c) ---- */
struct kvm_chips;
struct kvm_events;
/* In-kernel PIC + IOAPIC (KVM_CREATE_IRQCHIP), QEMU's GSI routing and the
 * PIT (KVM_CREATE_PIT2), or with split only the local APICs
 * (KVM_CAP_SPLIT_IRQCHIP); power-on state kept for reset. */
int kvm_irqchip_new(int vm, int kvm, bool split, struct kvm_chips **out);
bool kvm_irqchip_split(struct kvm_chips *c);
/* Split irqchip: lib/hw's IOAPIC sends pin's message to KVM's APICs. */
void kvm_irqchip_ioapic_send(struct kvm_chips *c, int pin, uint64_t addr, uint32_t data);
void kvm_irqchip_free(struct kvm_chips *c);
void kvm_irqchip_set_irq(struct kvm_chips *c, int gsi, bool level);
void kvm_irqchip_reset(struct kvm_chips *c);
void kvm_irqchip_msi(struct kvm_chips *c, uint64_t addr, uint32_t data);
/* Route GSI gsi (-1: a new one, 24 and up) to an MSI; the GSI or -errno. */
int kvm_irqchip_route_msi(struct kvm_chips *c, int gsi, uint64_t addr, uint32_t data);
/* Add the chips' device-state section ("kvm-irqchip") to the machine. */
int kvm_irqchip_register(struct machine *m, struct kvm_chips *c);
/* A vCPU's local APIC: keep its power-on state; put it back with the
 * MP state of a reset (BSP runnable, APs waiting for INIT/SIPI). */
int kvm_irqchip_vcpu_init(struct kvm_chips *c, int fd, int index);
void kvm_irqchip_vcpu_reset(struct kvm_chips *c, int fd, int index);
/* Halts and interrupt injections KVM counted for a vCPU (kvm-stats.c). */
struct kvm_stats;
int kvm_stats_open(int kvm, int vcpu_fd, struct kvm_stats **out);
uint64_t kvm_stats_events(struct kvm_stats *s);
void kvm_stats_free(struct kvm_stats *s);
/* accel-kvm.c: their sum over the vCPUs (the watchdog's progress). */
uint64_t kvm_accel_guest_events(struct machine *m);
/* The event thread serving ioeventfds. */
int kvm_events_new(struct machine *m, int vm, struct kvm_events **out);
void kvm_events_free(struct kvm_events *e);
/* accel-kvm.c: the machine's event thread, NULL without kernel irqchip. */
struct kvm_events *kvm_accel_events(struct machine *m);
struct kvm_chips *kvm_accel_chips(struct machine *m);

extern const struct hw_accel_ops hw_accel_kvm;
extern const struct hw_accel_ops hw_accel_jit;

#endif
