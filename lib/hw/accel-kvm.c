/*
 * The KVM accelerator (Linux KVM API, Documentation/virt/kvm/api.rst).
 *
 * Two ways to hold the interrupt controllers, chosen by -machine
 * kernel_irqchip= (QEMU's option; on by default):
 *
 *  - on: KVM's in-kernel PIC, IOAPIC, local APICs and PIT
 *    (kvm-irqchip.c).  Device lines go in with KVM_IRQ_LINE, the kernel
 *    injects, HLT and INIT/SIPI stay in the kernel, and virtio doorbells
 *    and MSI-X messages take ioeventfds and irqfds, the doorbells served
 *    by the event thread (kvm-event.c).
 *  - split: KVM's local APICs, lib/hw's PIC, IOAPIC and PIT
 *    (kvm-irqchip.c); the PIC's ExtINT is injected as with off, INIT/SIPI
 *    and HLT stay in the kernel, doorbells and MSI-X as with on.
 *  - off: the machine's PIC, IOAPIC and local APICs decide what to
 *    inject, and this file injects it with KVM_INTERRUPT when the guest
 *    opens an interrupt window; application processors wait for their
 *    startup IPI here, in user space.
 *
 * Port I/O and MMIO exits go to the machine's bus.  A vCPU is kicked out
 * of KVM_RUN with SIGUSR1 and immediate_exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"

#define KICK_SIGNAL SIGUSR1

struct kvm_state {
	struct machine *m;
	int kvm, vm, slots;
	size_t run_size;
	struct kvm_cpuid2 *cpuid;
	struct kvm_chips *chips;	/* kernel_irqchip=on, else NULL */
	struct kvm_events *events;	/* with chips */
};

struct kvm_vcpu {
	struct kvm_state *k;
	int index, fd;
	struct kvm_run *run;
	pthread_t thread;
	atomic_bool have_thread, intr, want_nmi, want_init;
	atomic_int sipi;	/* -1 none, else vector */
	atomic_bool io_pending;	/* an I/O exit served, its instruction not yet done */
	bool wait_sipi;
	struct kvm_stats *stats;	/* with the in-kernel irqchip, if KVM has them */
};

bool hw_kvm_is_limited(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

static int kvm_probe(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), v;

	if (fd < 0)
		return err_set_errno(errno, "/dev/kvm");
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (v != KVM_API_VERSION)
		return err_set(-ENODEV, "/dev/kvm: API version %d, expected %d", v, KVM_API_VERSION);
	return 0;
}

static void kick_handler(int sig) { }

static int get_cpuid(struct kvm_state *k)
{
	/* x2APIC and the TSC deadline timer: the in-kernel APIC has them,
	 * our user-space APIC lacks them. */
	uint32_t drop = (1u << 21) | (1u << 24), add = 0;
	int n = 100;

	for (;;) {
		k->cpuid = xzalloc(sizeof(*k->cpuid) + n * sizeof(struct kvm_cpuid_entry2));
		k->cpuid->nent = n;
		if (ioctl(k->kvm, KVM_GET_SUPPORTED_CPUID, k->cpuid) == 0)
			break;
		free(k->cpuid);
		k->cpuid = NULL;
		if (errno != E2BIG || n > 1000)
			return err_set_errno(errno, "KVM_GET_SUPPORTED_CPUID");
		n *= 2;
	}
	if (k->chips) {
		drop = 0;
		if (ioctl(k->kvm, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
			add = 1u << 24;
	}
	for (unsigned i = 0; i < k->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &k->cpuid->entries[i];
		if (e->function == 1)
			e->ecx = (e->ecx & ~drop) | add;
	}
	return 0;
}

/* kernel_irqchip=on or split: the chips, then (on) the lines devices
 * already raised. */
static int irqchip_init(struct kvm_state *k)
{
	struct machine *m = k->m;
	bool split = m->cfg.kernel_irqchip == HW_IRQCHIP_SPLIT;
	int r;

	if (m->cfg.kernel_irqchip == HW_IRQCHIP_OFF)
		return 0;
	r = kvm_irqchip_new(k->vm, k->kvm, split, &k->chips);
	if (r < 0)
		return r;
	r = kvm_events_new(m, k->vm, &k->events);
	if (r < 0)
		return r;
	r = kvm_irqchip_register(m, k->chips);
	if (r < 0)
		return r;
	if (split) {
		m->kernel_lapic = true;
		return 0;
	}
	m->kernel_irqchip = true;
	for (int i = 0; i < 24; i++)
		if (m->irq_level & (1u << i))
			kvm_irqchip_set_irq(k->chips, i, true);
	return 0;
}

struct kvm_events *kvm_accel_events(struct machine *m)
{
	struct kvm_state *k = m->accel_state;

	return m->accel == &hw_accel_kvm && k ? k->events : NULL;
}

uint64_t kvm_accel_guest_events(struct machine *m)
{
	uint64_t sum = 0;

	if (m->accel != &hw_accel_kvm)
		return 0;
	for (int i = 0; i < m->ncpu; i++) {
		struct kvm_vcpu *v = m->vcpu[i].accel_vcpu;
		if (v)
			sum += kvm_stats_events(v->stats);
	}
	return sum;
}

struct kvm_chips *kvm_accel_chips(struct machine *m)
{
	struct kvm_state *k = m->accel_state;

	return m->accel == &hw_accel_kvm && k ? k->chips : NULL;
}

static int kvm_init(struct machine *m, void **accel)
{
	struct kvm_state *k = xzalloc(sizeof(*k));
	struct sigaction sa = { .sa_handler = kick_handler };
	int r;

	k->m = m;
	k->vm = -1;
	k->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm < 0) {
		r = err_set_errno(errno, "/dev/kvm");
		goto fail;
	}
	k->vm = ioctl(k->kvm, KVM_CREATE_VM, 0);
	if (k->vm < 0) {
		r = err_set_errno(errno, "KVM_CREATE_VM");
		goto fail;
	}
	if (ioctl(k->vm, KVM_SET_TSS_ADDR, 0xfeffd000ul) < 0) {
		r = err_set_errno(errno, "KVM_SET_TSS_ADDR");
		goto fail;
	}
	k->run_size = ioctl(k->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	r = irqchip_init(k);
	if (r < 0)
		goto fail;
	r = get_cpuid(k);
	if (r < 0)
		goto fail;
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL);
	*accel = k;
	return 0;
fail:
	kvm_events_free(k->events);
	kvm_irqchip_free(k->chips);
	m->kernel_irqchip = m->kernel_lapic = false;
	if (k->vm >= 0)
		close(k->vm);
	if (k->kvm >= 0)
		close(k->kvm);
	free(k);
	return r;
}

static void kvm_free(void *accel)
{
	struct kvm_state *k = accel;

	kvm_events_free(k->events);
	kvm_irqchip_free(k->chips);
	close(k->vm);
	close(k->kvm);
	free(k->cpuid);
	free(k);
}

static int kvm_map(void *accel, uint64_t gpa, uint64_t size, void *host, bool ro)
{
	struct kvm_state *k = accel;
	struct kvm_userspace_memory_region mr = {
		.slot = k->slots, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};

	if (ro && ioctl(k->kvm, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0)
		mr.flags = KVM_MEM_READONLY;
	else if (ro) {		/* no read-only slots: give KVM a private copy */
		void *copy = mmap(NULL, size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (copy == MAP_FAILED)
			return err_set_errno(errno, "firmware copy");
		memcpy(copy, host, size);
		mr.userspace_addr = (uintptr_t)copy;
	}
	if (ioctl(k->vm, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
		return err_set_errno(errno, "KVM_SET_USER_MEMORY_REGION at 0x%" PRIx64, gpa);
	k->slots++;
	return 0;
}

static void set_cpuid(struct kvm_vcpu *v)
{
	struct kvm_cpuid2 *c = v->k->cpuid;

	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | (uint32_t)v->index << 24;
		if (e->function == 0xb)
			e->edx = v->index;
	}
	ioctl(v->fd, KVM_SET_CPUID2, c);
}

static void kvm_vcpu_free(void *vcpu)
{
	struct kvm_vcpu *v = vcpu;

	kvm_stats_free(v->stats);
	munmap(v->run, v->k->run_size);
	close(v->fd);
	free(v);
}

static int kvm_vcpu_new(void *accel, int index, void **out)
{
	struct kvm_state *k = accel;
	struct kvm_vcpu *v = xzalloc(sizeof(*v));

	v->k = k;
	v->index = index;
	v->fd = ioctl(k->vm, KVM_CREATE_VCPU, index);
	if (v->fd < 0) {
		free(v);
		return err_set_errno(errno, "KVM_CREATE_VCPU %d", index);
	}
	v->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		close(v->fd);
		free(v);
		return err_set_errno(errno, "mmap of the KVM vCPU");
	}
	set_cpuid(v);
	if (k->chips && kvm_irqchip_vcpu_init(k->chips, v->fd, index) < 0) {
		kvm_vcpu_free(v);
		return -EIO;
	}
	if (k->chips)
		kvm_stats_open(k->kvm, v->fd, &v->stats);
	atomic_store(&v->sipi, -1);
	v->wait_sipi = index > 0 && !k->chips;
	*out = v;
	return 0;
}

/* ---- registers ---- */

/* A port I/O or MMIO exit's instruction completes only in the next
 * KVM_RUN (api.rst, KVM_EXIT_IO): until then RIP is still on it and an IN
 * or MMIO read has its value in the run page, not in the register, while
 * the device has already acted on it (a virtio ISR read has cleared the
 * ISR).  A vCPU kicked out to park right after serving one is in that
 * state: a snapshot of it would run the instruction again after a load
 * and read what the first read consumed, and registers written for a load
 * or reset would get the old instruction's completion on top.  So the
 * state accessors first finish it: KVM_RUN with immediate_exit completes
 * the pending operation and returns at once, running nothing else. */
static void complete_io(struct kvm_vcpu *v)
{
	if (!atomic_exchange(&v->io_pending, false))
		return;
	v->run->immediate_exit = 1;
	if (ioctl(v->fd, KVM_RUN, 0) == 0)
		LOG(LOG_INT, "kvm: vCPU %d: completing an I/O exit ran the guest", v->index);
	else if (errno != EINTR)
		LOG(LOG_INT, "kvm: vCPU %d: completing an I/O exit: %s", v->index, strerror(errno));
}

static int kvm_get_regs(void *vcpu, struct hw_regs *r)
{
	struct kvm_vcpu *v = vcpu;
	struct kvm_regs k;

	complete_io(v);
	if (ioctl(v->fd, KVM_GET_REGS, &k) < 0)
		return err_set_errno(errno, "KVM_GET_REGS");
	uint64_t g[16] = { k.rax, k.rcx, k.rdx, k.rbx, k.rsp, k.rbp, k.rsi, k.rdi,
			   k.r8, k.r9, k.r10, k.r11, k.r12, k.r13, k.r14, k.r15 };
	memcpy(r->gpr, g, sizeof(g));
	r->rip = k.rip;
	r->rflags = k.rflags;
	return 0;
}

static int kvm_set_regs(void *vcpu, const struct hw_regs *r)
{
	struct kvm_vcpu *v = vcpu;
	const uint64_t *g = r->gpr;
	struct kvm_regs k = { .rax = g[0], .rcx = g[1], .rdx = g[2], .rbx = g[3],
		.rsp = g[4], .rbp = g[5], .rsi = g[6], .rdi = g[7], .r8 = g[8], .r9 = g[9],
		.r10 = g[10], .r11 = g[11], .r12 = g[12], .r13 = g[13], .r14 = g[14],
		.r15 = g[15], .rip = r->rip, .rflags = r->rflags };

	complete_io(v);
	if (ioctl(v->fd, KVM_SET_REGS, &k) < 0)
		return err_set_errno(errno, "KVM_SET_REGS");
	return 0;
}

static int kvm_get_sregs(void *vcpu, struct hw_sregs *s)
{
	struct kvm_vcpu *v = vcpu;
	struct kvm_sregs k;

	complete_io(v);
	if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0)
		return err_set_errno(errno, "KVM_GET_SREGS");
	SREGS_COPY(*s, k);
	return 0;
}

static int kvm_set_sregs(void *vcpu, const struct hw_sregs *s)
{
	struct kvm_vcpu *v = vcpu;
	struct kvm_sregs k;

	complete_io(v);
	if (ioctl(v->fd, KVM_GET_SREGS, &k) < 0)
		return err_set_errno(errno, "KVM_GET_SREGS");
	SREGS_COPY(k, *s);
	memset(k.interrupt_bitmap, 0, sizeof(k.interrupt_bitmap));
	if (ioctl(v->fd, KVM_SET_SREGS, &k) < 0)
		return err_set_errno(errno, "KVM_SET_SREGS");
	return 0;
}

/* Power-on state (Intel SDM vol. 3, table 9-1), or a startup IPI's. */
static void reset_state(struct kvm_vcpu *v, int sipi)
{
	struct hw_sregs s;
	struct hw_regs r = { .rip = sipi >= 0 ? 0 : 0xfff0, .rflags = 2 };
	struct hw_segment seg = { .limit = 0xffff, .type = 3, .present = 1, .s = 1 };

	if (kvm_get_sregs(v, &s) < 0)
		return;
	s.ds = s.es = s.fs = s.gs = s.ss = seg;
	seg.type = 0xb;
	seg.selector = sipi >= 0 ? sipi << 8 : 0xf000;
	seg.base = sipi >= 0 ? (uint64_t)sipi << 12 : 0xffff0000;
	s.cs = seg;
	s.tr = (struct hw_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	s.ldt = (struct hw_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	s.gdt = s.idt = (struct hw_dtable){ 0, 0xffff };
	s.cr0 = 0x60000010;
	s.cr2 = s.cr3 = s.cr4 = s.cr8 = s.efer = 0;
	kvm_set_sregs(v, &s);
	r.gpr[2] = 0x600;
	kvm_set_regs(v, &r);
}

/* ---- running ---- */

static int do_io(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	struct machine *m = v->k->m;
	uint8_t *d = (uint8_t *)run + run->io.data_offset;
	unsigned sz = run->io.size;

	for (uint32_t i = 0; i < run->io.count; i++, d += sz) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			uint32_t val = 0;
			memcpy(&val, d, sz);
			hw_bus_pio_out(m, run->io.port, val, sz);
		} else {
			uint32_t val = hw_bus_pio_in(m, run->io.port, sz);
			memcpy(d, &val, sz);
		}
	}
	return 0;
}

static void do_mmio(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;
	struct machine *m = v->k->m;
	unsigned len = MIN(run->mmio.len, 8u);
	uint64_t val = 0;

	if (run->mmio.is_write) {
		memcpy(&val, run->mmio.data, len);
		hw_bus_mmio_write(m, v->index, run->mmio.phys_addr, val, len);
	} else {
		val = hw_bus_mmio_read(m, v->index, run->mmio.phys_addr, len);
		memcpy(run->mmio.data, &val, len);
	}
}

/* Requests from other threads, applied on the vCPU's own thread. */
static void take_signals(struct kvm_vcpu *v)
{
	int vec;

	if (atomic_exchange(&v->want_init, false) && v->index > 0) {
		v->wait_sipi = true;
		reset_state(v, -1);
	}
	vec = atomic_exchange(&v->sipi, -1);
	if (vec >= 0 && v->wait_sipi) {
		reset_state(v, vec);
		v->wait_sipi = false;
	}
	if (atomic_exchange(&v->want_nmi, false))
		ioctl(v->fd, KVM_NMI, 0);
}

static void inject(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;

	run->request_interrupt_window = 0;
	if (!atomic_load(&v->intr))
		return;
	if (run->ready_for_interrupt_injection && run->if_flag) {
		int vec = hw_bus_irq_ack(v->k->m, v->index);
		if (vec >= 0) {
			struct kvm_interrupt irq = { .irq = vec };
			ioctl(v->fd, KVM_INTERRUPT, &irq);
		}
	}
	run->request_interrupt_window = atomic_load(&v->intr);
}

static enum hw_exit exit_reason(struct kvm_vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		do_io(v);
		atomic_store(&v->io_pending, true);
		return HW_EXIT_AGAIN;
	case KVM_EXIT_MMIO:
		do_mmio(v);
		atomic_store(&v->io_pending, true);
		return HW_EXIT_AGAIN;
	case KVM_EXIT_HLT:
		return atomic_load(&v->intr) ? HW_EXIT_AGAIN : HW_EXIT_HLT;
	case KVM_EXIT_SHUTDOWN:
		return HW_EXIT_SHUTDOWN;
	case KVM_EXIT_IOAPIC_EOI:	/* split: a level-triggered vector ended */
		pthread_mutex_lock(&v->k->m->lock);
		if (v->k->m->ioapic)
			ioapic_eoi(v->k->m->ioapic, run->eoi.vector);
		pthread_mutex_unlock(&v->k->m->lock);
		return HW_EXIT_AGAIN;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_INTR:
		return HW_EXIT_AGAIN;
	case KVM_EXIT_FAIL_ENTRY:
		err_set(-EIO, "KVM: entry failed, reason 0x%llx",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return HW_EXIT_ERROR;
	case KVM_EXIT_INTERNAL_ERROR: {
		struct hw_regs r = { 0 };
		kvm_get_regs(v, &r);
		err_set(-EIO, "KVM: internal error %u%s at rip 0x%" PRIx64, run->internal.suberror,
			run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)" : "",
			r.rip);
		return HW_EXIT_ERROR;
	}
	default:
		err_set(-EIO, "KVM: unexpected exit reason %u", run->exit_reason);
		return HW_EXIT_ERROR;
	}
}

static enum hw_exit kvm_run(void *vcpu)
{
	struct kvm_vcpu *v = vcpu;

	if (!atomic_load(&v->have_thread)) {
		v->thread = pthread_self();
		atomic_store(&v->have_thread, true);
	}
	take_signals(v);
	if (v->wait_sipi)
		return HW_EXIT_HLT;
	if (!v->k->chips || kvm_irqchip_split(v->k->chips))
		inject(v);
	atomic_store(&v->io_pending, false);	/* this KVM_RUN completes it */
	if (ioctl(v->fd, KVM_RUN, 0) < 0) {
		v->run->immediate_exit = 0;
		if (errno == EINTR || errno == EAGAIN)
			return HW_EXIT_STOP;
		err_set_errno(errno, "KVM_RUN");
		return HW_EXIT_ERROR;
	}
	atomic_fetch_add(&v->k->m->progress, 1);
	return exit_reason(v);
}

static void kvm_kick(void *vcpu)
{
	struct kvm_vcpu *v = vcpu;

	v->run->immediate_exit = 1;
	if (atomic_load(&v->have_thread))
		pthread_kill(v->thread, KICK_SIGNAL);
}

static void kvm_irq_line(void *vcpu, bool level)
{
	struct kvm_vcpu *v = vcpu;

	atomic_store(&v->intr, level);
	if (level)
		kvm_kick(v);
}

static void kvm_nmi(void *vcpu)
{
	atomic_store(&((struct kvm_vcpu *)vcpu)->want_nmi, true);
	kvm_kick(vcpu);
}

static void kvm_init_ipi(void *vcpu)
{
	atomic_store(&((struct kvm_vcpu *)vcpu)->want_init, true);
	kvm_kick(vcpu);
}

static void kvm_sipi(void *vcpu, uint8_t vec)
{
	atomic_store(&((struct kvm_vcpu *)vcpu)->sipi, vec);
	kvm_kick(vcpu);
}

static void kvm_reset(void *vcpu)
{
	struct kvm_vcpu *v = vcpu;

	reset_state(v, -1);
	v->wait_sipi = v->index > 0 && !v->k->chips;
	atomic_store(&v->intr, false);
	if (v->k->chips) {
		struct machine *m = v->k->m;
		kvm_irqchip_vcpu_reset(v->k->chips, v->fd, v->index);
		if (v->index == 0) {	/* once per machine reset: the chips */
			kvm_irqchip_reset(v->k->chips);
			for (int i = 0; i < 24 && m->kernel_irqchip; i++)
				if (m->irq_level & (1u << i))
					kvm_irqchip_set_irq(v->k->chips, i, true);
		}
	}
}

/* ---- the rest of the vCPU state, for snapshots ---- */

/* struct kvm_fpu <-> the FXSAVE image (Intel SDM vol. 1, 10.5.1). */
static void fpu_to_fxsave(const struct kvm_fpu *f, uint8_t *b)
{
	memset(b, 0, 512);
	memcpy(b, &f->fcw, 2);
	memcpy(b + 2, &f->fsw, 2);
	b[4] = f->ftwx;
	memcpy(b + 6, &f->last_opcode, 2);
	memcpy(b + 8, &f->last_ip, 8);
	memcpy(b + 16, &f->last_dp, 8);
	memcpy(b + 24, &f->mxcsr, 4);
	memcpy(b + 32, f->fpr, 128);
	memcpy(b + 160, f->xmm, 256);
}

static void fxsave_to_fpu(const uint8_t *b, struct kvm_fpu *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(&f->fcw, b, 2);
	memcpy(&f->fsw, b + 2, 2);
	f->ftwx = b[4];
	memcpy(&f->last_opcode, b + 6, 2);
	memcpy(&f->last_ip, b + 8, 8);
	memcpy(&f->last_dp, b + 16, 8);
	memcpy(&f->mxcsr, b + 24, 4);
	memcpy(f->fpr, b + 32, 128);
	memcpy(f->xmm, b + 160, 256);
}

static int kvm_get_extra(void *vcpu, struct hw_cpu_extra *x)
{
	struct kvm_vcpu *v = vcpu;
	struct kvm_fpu fpu;
	struct kvm_debugregs dr;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events ev;
	struct { struct kvm_msrs h; struct kvm_msr_entry e; } one;

	memset(x, 0, sizeof(*x));
	complete_io(v);
	if (ioctl(v->fd, KVM_GET_FPU, &fpu) < 0)
		return err_set_errno(errno, "KVM_GET_FPU");
	fpu_to_fxsave(&fpu, x->fxsave);
	for (size_t i = 0; i < hw_n_saved_msrs && x->nmsrs < HW_CPU_MAX_MSRS; i++) {
		memset(&one, 0, sizeof(one));
		one.h.nmsrs = 1;
		one.e.index = hw_saved_msrs[i];
		if (ioctl(v->fd, KVM_GET_MSRS, &one) == 1)
			x->msrs[x->nmsrs++] = (struct hw_msr){ one.e.index, one.e.data };
	}
	if (ioctl(v->fd, KVM_GET_DEBUGREGS, &dr) == 0) {
		memcpy(x->dr, dr.db, sizeof(dr.db));
		x->dr[6] = dr.dr6;
		x->dr[7] = dr.dr7;
	}
	x->xcr0 = 1;
	if (ioctl(v->fd, KVM_GET_XCRS, &xcrs) == 0)
		for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
			if (xcrs.xcrs[i].xcr == 0)
				x->xcr0 = xcrs.xcrs[i].value;
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
		x->nmi_pending = ev.nmi.pending;
		x->nmi_blocked = ev.nmi.masked;
		x->shadow = ev.interrupt.shadow != 0;
		/* kicked out between taking the vector from the local APIC and
		 * delivering it: its ISR bit is set, so without it a load would
		 * never run the handler, and nothing of its priority or lower
		 * would be delivered again */
		x->irq_injected = ev.interrupt.injected && !ev.interrupt.soft;
		x->irq_vector = ev.interrupt.nr;
		if (x->irq_injected)
			LOG(LOG_INT, "kvm: vCPU %d: interrupt 0x%x being injected", v->index,
			    ev.interrupt.nr);
	}
	x->wait_sipi = v->wait_sipi;
	return 0;
}

static int kvm_set_extra(void *vcpu, const struct hw_cpu_extra *x)
{
	struct kvm_vcpu *v = vcpu;
	struct kvm_fpu fpu;
	struct kvm_debugregs dr = { 0 };
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = x->xcr0 | 1 } } };
	struct kvm_vcpu_events ev;
	struct { struct kvm_msrs h; struct kvm_msr_entry e; } one;

	fxsave_to_fpu(x->fxsave, &fpu);
	complete_io(v);
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return err_set_errno(errno, "KVM_SET_FPU");
	for (uint32_t i = 0; i < x->nmsrs && i < HW_CPU_MAX_MSRS; i++) {
		memset(&one, 0, sizeof(one));
		one.h.nmsrs = 1;
		one.e.index = x->msrs[i].index;
		one.e.data = x->msrs[i].value;
		if (ioctl(v->fd, KVM_SET_MSRS, &one) != 1)
			LOG(LOG_UNIMP, "snapshot: MSR 0x%x not restored", one.e.index);
	}
	memcpy(dr.db, x->dr, sizeof(dr.db));
	dr.dr6 = x->dr[6];
	dr.dr7 = x->dr[7];
	ioctl(v->fd, KVM_SET_DEBUGREGS, &dr);
	ioctl(v->fd, KVM_SET_XCRS, &xcrs);
	if (ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) == 0) {
		ev.nmi.pending = x->nmi_pending;
		ev.nmi.masked = x->nmi_blocked;
		ev.interrupt.shadow = x->shadow ? KVM_X86_SHADOW_INT_STI : 0;
		ev.interrupt.injected = x->irq_injected;
		ev.interrupt.nr = x->irq_vector;
		ev.interrupt.soft = 0;
		ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
		ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev);
	}
	v->wait_sipi = x->wait_sipi;
	return 0;
}

const struct hw_accel_ops hw_accel_kvm = {
	.name = "kvm", .probe = kvm_probe, .init = kvm_init, .free = kvm_free,
	.map = kvm_map, .vcpu_new = kvm_vcpu_new, .vcpu_free = kvm_vcpu_free,
	.run = kvm_run, .get_regs = kvm_get_regs, .set_regs = kvm_set_regs,
	.get_sregs = kvm_get_sregs, .set_sregs = kvm_set_sregs,
	.irq_line = kvm_irq_line, .nmi = kvm_nmi, .init_ipi = kvm_init_ipi,
	.sipi = kvm_sipi, .kick = kvm_kick, .reset = kvm_reset,
	.get_extra = kvm_get_extra, .set_extra = kvm_set_extra,
};
