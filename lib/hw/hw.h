/*
 * lib/hw: the PC that vm-run emulates, modelled on QEMU's default `pc`
 * machine (i440FX + PIIX).
 *
 * A struct machine owns guest RAM, the physical address space (RAM, ROM,
 * MMIO and port dispatch), the interrupt routing, the devices and the
 * vCPUs.  The vCPUs run on an accelerator (struct hw_accel_ops): KVM or
 * lib/jit.  Devices never learn which accelerator runs them, and they
 * reach the host only through the small back-end interfaces below (char,
 * block, frame): lib/hw never opens a file or a socket.
 *
 * Threads: each vCPU runs on its own thread inside machine_run(); a timer
 * thread fires device timers.  Device code runs under one machine lock.
 * The calls of this header marked "any thread" take that lock themselves.
 */
#ifndef HW_H
#define HW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;

/* ---- back-ends: how devices reach the host ---- */

/* A character back-end (serial port, virtio console). */
struct hw_char_ops {
	/* Bytes from the guest.  Required.  Must not block for long. */
	void (*write)(void *opaque, const uint8_t *buf, size_t len);
};

/* A block back-end (a disk).  Calls are synchronous, from vCPU threads. */
struct hw_block_ops {
	/* Read or write len bytes at off; 0 or -errno.  Required. */
	int (*read)(void *opaque, void *buf, uint64_t off, size_t len);
	int (*write)(void *opaque, const void *buf, uint64_t off, size_t len);
	/* Make written data durable; 0 or -errno.  Optional. */
	int (*flush)(void *opaque);
};

/* Optional scatter/gather calls of a block back-end, beside its
 * hw_block_ops and with the same opaque (a table of its own, so that
 * every existing hw_block_ops initialiser stays complete).  Read into or
 * write from the n iovecs, as many bytes as they hold, at off; 0 or
 * -errno.  Both required in a table; a disk without one has its
 * scattered requests gathered through a bounce buffer. */
struct iovec;
struct hw_block_vec_ops {
	int (*readv)(void *opaque, const struct iovec *iov, int n, uint64_t off);
	int (*writev)(void *opaque, const struct iovec *iov, int n, uint64_t off);
	/* Optional: start the same without waiting.  0 when done(arg, 0 or
	 * -errno) will be called once, from any thread, maybe before submit
	 * returns; -errno (done never called) when it cannot start, and the
	 * device falls back to readv/writev.  The iovec array may go when
	 * submit returns; the memory it points to stays until done. */
	int (*submit)(void *opaque, bool write, const struct iovec *iov, int n, uint64_t off,
		      void (*done)(void *arg, int err), void *arg);
};

/* A frame back-end (a NIC's cable). */
struct hw_net_ops {
	/* One Ethernet frame from the guest.  Required. */
	void (*send)(void *opaque, const uint8_t *frame, size_t len);
};

struct hw_char_backend { const struct hw_char_ops *ops; void *opaque; };

enum hw_disk_if { HW_IF_VIRTIO, HW_IF_IDE };

/* What a disk does when its back-end fails a request (QEMU's -drive
 * rerror=/werror=): report the error to the guest, ignore it (the guest
 * sees success), stop the machine (the request is retried when it runs
 * again), or stop only for ENOSPC and report anything else. */
enum hw_blk_error_action { HW_BLKERR_REPORT, HW_BLKERR_IGNORE, HW_BLKERR_STOP, HW_BLKERR_ENOSPC };

/* A drive's counters, kept by its device model per guest request
 * (QEMU's query-blockstats).  Updated atomically by the device; read
 * them with __atomic_load_n. */
struct hw_block_stats {
	uint64_t rd_bytes, wr_bytes, rd_ops, wr_ops, flush_ops;
	uint64_t rd_ns, wr_ns, flush_ns;	/* time spent, summed */
	uint64_t failed_rd, failed_wr, failed_flush;
	int64_t last_ns;	/* hw_clock_ns() of the last request, 0: none yet */
};

struct hw_disk {
	const struct hw_block_ops *ops;
	void *opaque;
	uint64_t size;		/* bytes */
	bool readonly;
	bool cdrom;
	enum hw_disk_if iface;
	int index;		/* IDE: 0..3 (-hda..-hdd, cdrom 2); -1: next free */
	/* Added for the monitor; zero means "report" and no counters. */
	enum hw_blk_error_action rerror, werror;
	struct hw_block_stats *stats;	/* owned by the caller, or NULL */
	bool empty;		/* a CD-ROM drive with no medium (ops may be NULL) */
	const struct hw_block_vec_ops *vec;	/* optional, see above */
};

enum hw_nic_model { HW_NIC_VIRTIO, HW_NIC_E1000 };

struct hw_nic {
	const struct hw_net_ops *ops;
	void *opaque;
	uint8_t mac[6];
	enum hw_nic_model model;	/* virtio-net-pci or e1000 (82540EM) */
};

#define HW_MAX_SERIAL 4
#define HW_MAX_DISKS 8
#define HW_MAX_NICS 4
#define HW_MAX_CPUS 64

/* Where KVM runs the interrupt controllers (QEMU's -machine
 * kernel_irqchip=); the JIT ignores it.  DEFAULT means ON, as QEMU's pc
 * machine under KVM.  ON: KVM's in-kernel PIC, IOAPIC, local APICs and
 * PIT, device lines through KVM_IRQ_LINE, virtio notifies through
 * ioeventfd and its interrupts through irqfd.  OFF: lib/hw's own models
 * in user space.  SPLIT: KVM's local APICs (INIT/SIPI, HLT, APIC timer
 * in the kernel) with lib/hw's PIC, IOAPIC and PIT, as QEMU's split. */
enum hw_irqchip { HW_IRQCHIP_DEFAULT, HW_IRQCHIP_ON, HW_IRQCHIP_OFF, HW_IRQCHIP_SPLIT };

/* Everything the machine is built from; filled by vm-run's option parser. */
struct hw_config {
	uint64_t ram_size;		/* bytes */
	int smp;			/* vCPUs, 1..HW_MAX_CPUS */
	const char *accel;		/* "kvm" or "jit" */
	const char *kernel;		/* bzImage, multiboot ELF, or NULL */
	const char *initrd;
	const char *append;
	const char *bios;		/* firmware image path (-bios) */
	const char *boot_order;		/* -boot order=, e.g. "cd" (SeaBIOS) */
	bool no_reboot;			/* reset ends machine_run() */
	bool start_paused;		/* -S */
	struct hw_char_backend serial[HW_MAX_SERIAL];	/* ops NULL: no port */
	struct hw_char_backend virtcon;			/* ops NULL: none */
	bool rng;			/* virtio-rng */
	struct hw_disk disks[HW_MAX_DISKS];
	int ndisks;
	struct hw_nic nics[HW_MAX_NICS];
	int nnics;
	uint16_t debug_exit_port;	/* isa-debug-exit iobase, 0: none */
	uint8_t debug_exit_size;
	/* A reset was requested (guest or machine_reset()), not with
	 * no_reboot; called with the machine lock held.  Optional. */
	void (*on_reset)(void *opaque);
	void *on_reset_opaque;
	enum hw_irqchip kernel_irqchip;	/* KVM only */
	/* Run a bzImage's own decompressor in the guest rather than
	 * unpacking the kernel on the host (-machine kernel-decompress=guest). */
	bool guest_decompress;
	/* Neither read nor write the unpacked-kernel cache (boot-cache.c;
	 * -machine kernel-cache=off). */
	bool no_kernel_cache;
	/* Disk `disk` (index in disks[]) failed a request with -errno err
	 * and the device took `action` (REPORT, IGNORE or STOP; when STOP
	 * the machine is already paused).  Called with the machine lock
	 * held, from a vCPU or an I/O thread: raise events, nothing more.
	 * Optional. */
	void (*on_block_error)(void *opaque, int disk, bool write, int err,
			       enum hw_blk_error_action action);
	void *on_block_error_opaque;
	/* The guest opened or closed CD-ROM disk's tray (START STOP UNIT),
	 * machine lock held.  Optional; on_block_error_opaque is passed. */
	void (*on_tray_moved)(void *opaque, int disk, bool open);
};

/*
 * Build the machine: RAM, devices, firmware or kernel loaded, vCPUs
 * created (not running).  Files named in cfg (kernel, initrd, bios) are
 * read here, by the loaders.  Returns 0 or -errno with a message recorded.
 */
int machine_new(const struct hw_config *cfg, struct machine **out);
void machine_free(struct machine *m);

/* Why machine_run() returned. */
enum hw_stop {
	HW_STOP_POWEROFF,	/* ACPI soft-off, or machine_quit(): status 0 */
	HW_STOP_RESET,		/* guest reset with no_reboot set */
	HW_STOP_DEBUG_EXIT,	/* isa-debug-exit: status (value << 1) | 1 */
	HW_STOP_QUIT,		/* machine_quit() from the host */
	HW_STOP_ERROR,		/* the accelerator failed; message recorded */
	HW_STOP_NO_PROGRESS,	/* the accelerator ran without progress */
};

/*
 * Run the vCPUs until the machine stops; *status gets the process exit
 * status QEMU would give (0, or the isa-debug-exit value).  After
 * HW_STOP_ERROR the reason is recorded (err_msg()) on the calling thread.
 */
enum hw_stop machine_run(struct machine *m, int *status);

/* Host-side requests, any thread. */
void machine_quit(struct machine *m, int status);
void machine_powerdown(struct machine *m);	/* ACPI power button */
void machine_reset(struct machine *m);
void machine_pause(struct machine *m, bool paused);

/* Bytes typed on the host for serial port idx (or the virtio console with
 * idx -1), any thread.  Dropped if the port does not exist. */
void machine_char_input(struct machine *m, int idx, const uint8_t *buf, size_t len);
/* One frame from NIC idx's cable, any thread. */
void machine_net_input(struct machine *m, int idx, const uint8_t *frame, size_t len);
/* The same for any NIC model (e1000 or virtio-net; e1000.c). */
void machine_nic_input(struct machine *m, int idx, const uint8_t *frame, size_t len);
/* NIC idx's link up or down (e1000: STATUS.LU, PHY and an LSC
 * interrupt; virtio-net has no link status), any thread. */
void machine_nic_set_link(struct machine *m, int idx, bool up);

/* Guest instructions or exits seen so far (progress watchdog). */
uint64_t machine_progress(struct machine *m);

/* The monitor's view (access.c), any thread.  read_phys: guest-physical
 * RAM, -EFAULT outside it.  get_cpu: registers of vCPU `cpu` (either
 * pointer may be NULL), read with every vCPU parked for a moment.
 * virt_to_phys: through vCPU 0's page tables (identity without paging).
 * nmi: an NMI to every vCPU. */
struct hw_regs;
struct hw_sregs;
int machine_read_phys(struct machine *m, uint64_t gpa, void *buf, size_t len);
int machine_get_cpu(struct machine *m, int cpu, struct hw_regs *r, struct hw_sregs *s);
int machine_virt_to_phys(struct machine *m, uint64_t va, uint64_t *pa);
bool machine_paused(struct machine *m);
int machine_cpu_count(struct machine *m);
void machine_nmi(struct machine *m);

/* ---- device controls for the monitor (any thread) ---- */

/* One PCI function as QEMU's query-pci shows it. */
struct hw_pci_bar {
	uint64_t addr, size;	/* size 0: the BAR is unused */
	bool io, mem64, prefetch;
};
struct hw_pci_info {
	int bus, slot, function;
	uint16_t vendor, device, subsys_vendor, subsys;
	uint16_t class_code;	/* base class << 8 | subclass */
	uint8_t revision, prog_if, irq, irq_pin;	/* irq_pin 0: none, 1: INTA# */
	struct hw_pci_bar bar[6];
};
/* Up to max functions of bus 0 in devfn order; returns how many. */
int machine_pci_list(struct machine *m, struct hw_pci_info *out, int max);

/* Swap the medium of CD-ROM disk `disk` (index in disks[]): NULL ejects
 * it (the tray opens), else the new medium is loaded and the guest gets
 * a UNIT ATTENTION (medium may have changed).  The back-end of the old
 * medium is no longer used when this returns.  0, -ENODEV when disk is
 * no CD-ROM. */
int machine_cdrom_change(struct machine *m, int disk, const struct hw_disk *medium);
/* Whether the guest locked the tray (PREVENT MEDIUM REMOVAL); -ENODEV. */
int machine_cdrom_locked(struct machine *m, int disk);
/* Ask the guest to unlock and eject (an "eject request" media event, as
 * the drive's button would); 0 or -ENODEV. */
int machine_cdrom_eject_request(struct machine *m, int disk);
/* Virtio disk `disk` now holds size bytes: the capacity in its config
 * space changes and the guest gets a configuration-change interrupt.
 * 0, -ENODEV when disk is no virtio-blk disk. */
int machine_disk_resize(struct machine *m, int disk, uint64_t size);

/* Keys typed into the PS/2 keyboard: QEMU's "qnum" codes (scancode set 1,
 * 0x80 | code for the 0xe0-prefixed ones), pressed in order and released
 * in reverse order hold_ms milliseconds later.  The i8042 delivers set 1
 * when its translation is on, else set 2.  0 or -EINVAL (bad code). */
int machine_send_keys(struct machine *m, const uint16_t *qnum, int n, int hold_ms);

/* vCPU cpu's lib/jit CPU (for its statistics: jit_cpu_stats), NULL when
 * another accelerator runs the machine. */
struct jit_cpu;
struct jit_cpu *machine_jit_cpu(struct machine *m, int cpu);

/* HMP's "info mtree": the memory and I/O address spaces as text
 * (malloc'd; NULL when out of memory). */
char *machine_mtree(struct machine *m);

/*
 * Device state: one versioned, tagged stream (every device its own
 * section).  Save into a malloc'd buffer; load treats the bytes as
 * untrusted.  The vCPUs must not be running.  0 or -errno.
 */
int machine_save_devices(struct machine *m, uint8_t **buf, size_t *len);
int machine_load_devices(struct machine *m, const uint8_t *buf, size_t len);

/*
 * The whole machine as one stream (vmstate.c): a header, every vCPU
 * (registers, segments, FPU/SSE, MSRs, execution state), the device
 * sections above and guest RAM (zero pages skipped, the rest zstd
 * compressed), ending in a CRC-32.  savevm/loadvm, -loadvm and migration
 * use it.  Any thread; the vCPUs are parked inside and left paused by
 * load (the caller resumes).  load checks the whole stream before it
 * changes anything: -EINVAL with a message and the machine unchanged;
 * -EIO when it failed part-way (the machine must stay stopped).
 */
int machine_save_state(struct machine *m, uint8_t **buf, size_t *len);
int machine_load_state(struct machine *m, const uint8_t *buf, size_t len);
/* Only the checks of machine_load_state (the machine is not touched). */
int machine_check_state(struct machine *m, const uint8_t *buf, size_t len);
/* Write guest-physical RAM (any thread; vmstate.c); -EFAULT outside it. */
int machine_write_phys(struct machine *m, uint64_t gpa, const void *buf, size_t len);

/* ---- accelerators ---- */

/* General-purpose registers, in instruction-encoding order. */
struct hw_regs {
	uint64_t gpr[16];
	uint64_t rip, rflags;
};

struct hw_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct hw_dtable { uint64_t base; uint16_t limit; };

struct hw_sregs {
	struct hw_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct hw_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

/* vCPU state beyond hw_regs/hw_sregs that a snapshot carries. */
#define HW_CPU_MAX_MSRS 64
struct hw_msr { uint32_t index; uint64_t value; };
struct hw_cpu_extra {
	uint8_t fxsave[512];		/* x87/MMX/SSE, FXSAVE layout */
	uint64_t xcr0, dr[8];
	uint32_t nmsrs;
	struct hw_msr msrs[HW_CPU_MAX_MSRS];	/* the CPU's own, TSC included */
	bool halted, wait_sipi, shadow, nmi_blocked, nmi_pending;
	/* An external interrupt the CPU was entering when it stopped: taken
	 * from the local APIC (its vector in the ISR), not yet delivered.
	 * KVM redelivers it on the next entry; the JIT has no such state. */
	bool irq_injected;
	uint8_t irq_vector;
};

/* Why an accelerator's run returned. */
enum hw_exit {
	HW_EXIT_AGAIN,		/* budget or an I/O exit handled: run again */
	HW_EXIT_HLT,		/* halted until an interrupt or SIPI */
	HW_EXIT_SHUTDOWN,	/* triple fault */
	HW_EXIT_STOP,		/* kicked */
	HW_EXIT_ERROR,		/* cannot go on; message recorded */
};

/*
 * A CPU accelerator.  The machine drives it; it calls back into the
 * machine (hw_bus_* in internal.h) for port I/O, MMIO, interrupt
 * acknowledge and the machine-owned MSRs.
 */
struct hw_accel_ops {
	const char *name;
	/* 0 when usable on this host, else -errno with a message.  Required. */
	int (*probe)(void);
	/* Create the accelerator for m (guest RAM is already allocated). */
	int (*init)(struct machine *m, void **accel);
	void (*free)(void *accel);
	/* Make RAM (or ROM if readonly) at gpa visible; called after init for
	 * every RAM range.  0 or -errno. */
	int (*map)(void *accel, uint64_t gpa, uint64_t size, void *host, bool readonly);
	/* host bytes [p, p + len) of guest RAM were written by a device (after
	 * the write, from any thread): the vCPUs see it as cross-modifying
	 * code.  Optional. */
	void (*ram_written)(void *accel, const void *p, size_t len);
	/* A vCPU in the reset state; index 0 is the BSP, others wait for SIPI. */
	int (*vcpu_new)(void *accel, int index, void **vcpu);
	void (*vcpu_free)(void *vcpu);
	/* Run on the calling thread until an exit reason. */
	enum hw_exit (*run)(void *vcpu);
	int (*get_regs)(void *vcpu, struct hw_regs *r);
	int (*set_regs)(void *vcpu, const struct hw_regs *r);
	int (*get_sregs)(void *vcpu, struct hw_sregs *s);
	int (*set_sregs)(void *vcpu, const struct hw_sregs *s);
	/* The level of INTR changed (any thread). */
	void (*irq_line)(void *vcpu, bool level);
	/* NMI, INIT, startup IPI, and "return from run soon" (any thread). */
	void (*nmi)(void *vcpu);
	void (*init_ipi)(void *vcpu);
	void (*sipi)(void *vcpu, uint8_t vector);
	void (*kick)(void *vcpu);
	/* Power-on reset of the vCPU (machine reset). */
	void (*reset)(void *vcpu);
	/* Guest code in [gpa, gpa+len) changed behind the CPU (DMA). Optional. */
	void (*invalidate)(void *vcpu, uint64_t gpa, uint64_t len);
	/* The rest of the vCPU state for snapshots (vCPU parked); set is
	 * called after set_sregs and forgets cached translations and TLB
	 * entries.  0 or -errno.  Optional (snapshots then carry registers
	 * and segments only). */
	int (*get_extra)(void *vcpu, struct hw_cpu_extra *x);
	int (*set_extra)(void *vcpu, const struct hw_cpu_extra *x);
};

/* The accelerators, by name, NULL-terminated. */
extern const struct hw_accel_ops *const hw_accels[];
const struct hw_accel_ops *hw_accel_find(const char *name);
/* True when /dev/kvm is kvm_pvm, which cannot boot a stock Linux kernel. */
bool hw_kvm_is_limited(void);
/* True when the file at path is a multiboot kernel (else bzImage or junk). */
bool hw_kernel_is_multiboot(const char *path);
/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t hw_clock_ns(void);

#endif
