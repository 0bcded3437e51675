/*
 * KVM's in-kernel interrupt controllers (Linux KVM API,
 * Documentation/virt/kvm/api.rst: KVM_CREATE_IRQCHIP, KVM_SET_GSI_ROUTING,
 * KVM_CREATE_PIT2, KVM_IRQ_LINE, KVM_GET/SET_IRQCHIP, KVM_GET/SET_LAPIC,
 * KVM_SET_MP_STATE), used with -machine kernel_irqchip=on.
 *
 * The kernel then models the two 8259s, the IOAPIC, every local APIC and
 * the 8254 with its port 0x61 gate (KVM_PIT_SPEAKER_DUMMY), so the guest's
 * accesses to them never leave the kernel; lib/hw's own models of those
 * chips stay idle for this machine.  Device lines reach the chips through
 * KVM_IRQ_LINE on a GSI routing table shaped as QEMU's pc: GSI 0..15 to
 * the PICs, GSI 0..23 to the IOAPIC pins of the same number except ISA
 * IRQ 0, which is IOAPIC pin 2 (the MADT's interrupt source override).
 * Application processors wait in the kernel for INIT and SIPI.
 *
 * Reset: the power-on state of each chip and local APIC is read right
 * after creation and written back on a machine reset.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/common.h"
#include "hw/internal.h"

#define IOAPIC_PINS 24
#define PIC_PINS 16

struct kvm_chips {
	int vm;
	struct kvm_irqchip chip0[3];	/* power-on PIC master, slave, IOAPIC */
	struct kvm_pit_state2 pit0;
	struct kvm_lapic_state *lapic0[HW_MAX_CPUS];
};

static void route(struct kvm_irq_routing_entry *e, uint32_t gsi, uint32_t chip, uint32_t pin)
{
	*e = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP };
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

/* QEMU's pc routing: ISA IRQ 0 is IOAPIC pin 2, everything else maps 1:1. */
static int set_routing(int vm)
{
	struct kvm_irq_routing *rt = xzalloc(sizeof(*rt) +
		(PIC_PINS + IOAPIC_PINS) * sizeof(struct kvm_irq_routing_entry));
	int r;

	for (int i = 0; i < PIC_PINS; i++)
		route(&rt->entries[rt->nr++], i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, i & 7);
	for (int i = 0; i < IOAPIC_PINS; i++)
		route(&rt->entries[rt->nr++], i, KVM_IRQCHIP_IOAPIC, i == 0 ? 2 : i);
	r = ioctl(vm, KVM_SET_GSI_ROUTING, rt);
	free(rt);
	return r < 0 ? err_set_errno(errno, "KVM_SET_GSI_ROUTING") : 0;
}

static int save_power_on(struct kvm_chips *c)
{
	for (int i = 0; i < 3; i++) {
		c->chip0[i].chip_id = i;
		if (ioctl(c->vm, KVM_GET_IRQCHIP, &c->chip0[i]) < 0)
			return err_set_errno(errno, "KVM_GET_IRQCHIP");
	}
	if (ioctl(c->vm, KVM_GET_PIT2, &c->pit0) < 0)
		return err_set_errno(errno, "KVM_GET_PIT2");
	return 0;
}

int kvm_irqchip_new(int vm, int kvm, struct kvm_chips **out)
{
	struct kvm_chips *c = xzalloc(sizeof(*c));
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int r;

	c->vm = vm;
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) <= 0) {
		r = err_set(-ENOTSUP, "KVM has no in-kernel irqchip or PIT; use -machine kernel_irqchip=off");
		goto fail;
	}
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		r = err_set_errno(errno, "KVM_CREATE_IRQCHIP");
		goto fail;
	}
	r = set_routing(vm);
	if (r < 0)
		goto fail;
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) {
		r = err_set_errno(errno, "KVM_CREATE_PIT2");
		goto fail;
	}
	r = save_power_on(c);
	if (r < 0)
		goto fail;
	LOG(LOG_INT, "kvm: in-kernel PIC, IOAPIC, local APICs and PIT");
	*out = c;
	return 0;
fail:
	free(c);
	return r;
}

void kvm_irqchip_free(struct kvm_chips *c)
{
	if (!c)
		return;
	for (int i = 0; i < HW_MAX_CPUS; i++)
		free(c->lapic0[i]);
	free(c);
}

void kvm_irqchip_set_irq(struct kvm_chips *c, int gsi, bool level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level };

	if (ioctl(c->vm, KVM_IRQ_LINE, &l) < 0)
		LOG(LOG_INT, "kvm: KVM_IRQ_LINE %d: %s", gsi, strerror(errno));
}

void kvm_irqchip_reset(struct kvm_chips *c)
{
	for (int i = 0; i < 3; i++)
		if (ioctl(c->vm, KVM_SET_IRQCHIP, &c->chip0[i]) < 0)
			LOG(LOG_INT, "kvm: KVM_SET_IRQCHIP %d: %s", i, strerror(errno));
	if (ioctl(c->vm, KVM_SET_PIT2, &c->pit0) < 0)
		LOG(LOG_INT, "kvm: KVM_SET_PIT2: %s", strerror(errno));
}

int kvm_irqchip_vcpu_init(struct kvm_chips *c, int fd, int index)
{
	if (index < 0 || index >= HW_MAX_CPUS)
		return err_set(-EINVAL, "vCPU index %d", index);
	c->lapic0[index] = xzalloc(sizeof(struct kvm_lapic_state));
	if (ioctl(fd, KVM_GET_LAPIC, c->lapic0[index]) < 0)
		return err_set_errno(errno, "KVM_GET_LAPIC");
	return 0;
}

void kvm_irqchip_vcpu_reset(struct kvm_chips *c, int fd, int index)
{
	struct kvm_mp_state mp = { index ? KVM_MP_STATE_UNINITIALIZED : KVM_MP_STATE_RUNNABLE };

	if (c->lapic0[index] && ioctl(fd, KVM_SET_LAPIC, c->lapic0[index]) < 0)
		LOG(LOG_INT, "kvm: KVM_SET_LAPIC %d: %s", index, strerror(errno));
	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		LOG(LOG_INT, "kvm: KVM_SET_MP_STATE %d: %s", index, strerror(errno));
}
