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
 * kernel_irqchip=split (KVM_CAP_SPLIT_IRQCHIP) keeps only the local APICs
 * in the kernel: lib/hw's PIC, IOAPIC and PIT run in user space, the
 * IOAPIC sends each interrupt as the MSI its redirection entry describes
 * through GSI 0..23 routed to that message (KVM learns from those routes
 * which vectors are level-triggered and exits with KVM_EXIT_IOAPIC_EOI
 * when the guest ends them), and the PIC's ExtINT is injected with
 * KVM_INTERRUPT as without an irqchip.
 *
 * Reset: the power-on state of each chip and local APIC is read right
 * after creation and written back on a machine reset.
 *
 * State: the chips are one device section, "kvm-irqchip" (split or not,
 * the PICs, the IOAPIC, the PIT, each vCPU's local APIC and MP state as
 * KVM's own structures), so savevm and loadvm carry them; lib/hw's idle
 * PIC, IOAPIC and APIC sections ride along unused.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/common.h"
#include "hw/internal.h"

#define IOAPIC_PINS 24
#define PIC_PINS 16
#define MSI_ROUTES 64		/* GSIs 24.. for MSI irqfds */
#define ROUTES (PIC_PINS + IOAPIC_PINS + MSI_ROUTES)

struct kvm_chips {
	int vm;
	struct kvm_irqchip chip0[3];	/* power-on PIC master, slave, IOAPIC */
	struct kvm_pit_state2 pit0;
	struct kvm_lapic_state *lapic0[HW_MAX_CPUS];
	int vcpu_fd[HW_MAX_CPUS], ncpu;
	struct kvm_irq_routing *rt;	/* the whole table, as KVM has it */
	int nmsi;
	bool split;
	uint32_t pin_routed;		/* split: pins whose route is pin_msi */
	uint64_t pin_msi[IOAPIC_PINS];	/* address << 32 | data */
};

bool kvm_irqchip_split(struct kvm_chips *c) { return c->split; }

static void route(struct kvm_irq_routing_entry *e, uint32_t gsi, uint32_t chip, uint32_t pin)
{
	*e = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP };
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

/* QEMU's pc routing: ISA IRQ 0 is IOAPIC pin 2, everything else maps 1:1;
 * the MSI routes of irqfds follow. */
static int set_routing(struct kvm_chips *c)
{
	struct kvm_irq_routing *rt = c->rt;

	if (!rt && c->split) {
		rt = c->rt = xzalloc(sizeof(*rt) + ROUTES * sizeof(struct kvm_irq_routing_entry));
		for (int i = 0; i < IOAPIC_PINS; i++) {
			struct kvm_irq_routing_entry *e = &rt->entries[rt->nr++];
			*e = (struct kvm_irq_routing_entry){ .gsi = i, .type = KVM_IRQ_ROUTING_MSI };
			e->u.msi.address_lo = 0xfee00000;
		}
	} else if (!rt) {
		rt = c->rt = xzalloc(sizeof(*rt) + ROUTES * sizeof(struct kvm_irq_routing_entry));
		for (int i = 0; i < PIC_PINS; i++)
			route(&rt->entries[rt->nr++], i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, i & 7);
		for (int i = 0; i < IOAPIC_PINS; i++)
			route(&rt->entries[rt->nr++], i, KVM_IRQCHIP_IOAPIC, i == 0 ? 2 : i);
	}
	return ioctl(c->vm, KVM_SET_GSI_ROUTING, rt) < 0 ? err_set_errno(errno, "KVM_SET_GSI_ROUTING") : 0;
}

int kvm_irqchip_route_msi(struct kvm_chips *c, int gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry *e = NULL;

	if (gsi < 0) {
		if (c->nmsi == MSI_ROUTES)
			return err_set(-ENOSPC, "too many MSI routes");
		gsi = IOAPIC_PINS + c->nmsi++;
		e = &c->rt->entries[c->rt->nr++];
	}
	for (uint32_t i = 0; i < c->rt->nr && !e; i++)
		if (c->rt->entries[i].gsi == (uint32_t)gsi && c->rt->entries[i].type == KVM_IRQ_ROUTING_MSI)
			e = &c->rt->entries[i];
	if (!e)
		return err_set(-EINVAL, "GSI %d is no MSI route", gsi);
	*e = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_MSI };
	e->u.msi.address_lo = addr;
	e->u.msi.address_hi = addr >> 32;
	e->u.msi.data = data;
	int r = set_routing(c);
	return r < 0 ? r : gsi;
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

/* Split: only the local APICs in the kernel, 24 GSIs for the IOAPIC. */
static int new_split(struct kvm_chips *c, int kvm)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { IOAPIC_PINS } };

	c->split = true;
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_SPLIT_IRQCHIP) <= 0)
		return err_set(-ENOTSUP, "KVM has no split irqchip; use -machine kernel_irqchip=on or off");
	if (ioctl(c->vm, KVM_ENABLE_CAP, &cap) < 0)
		return err_set_errno(errno, "KVM_CAP_SPLIT_IRQCHIP");
	LOG(LOG_INT, "kvm: local APICs in the kernel, PIC, IOAPIC and PIT in user space");
	return set_routing(c);
}

int kvm_irqchip_new(int vm, int kvm, bool split, struct kvm_chips **out)
{
	struct kvm_chips *c = xzalloc(sizeof(*c));
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	int r;

	c->vm = vm;
	if (split) {
		r = new_split(c, kvm);
		if (r < 0)
			goto fail;
		*out = c;
		return 0;
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) <= 0) {
		r = err_set(-ENOTSUP, "KVM has no in-kernel irqchip or PIT; use -machine kernel_irqchip=off");
		goto fail;
	}
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		r = err_set_errno(errno, "KVM_CREATE_IRQCHIP");
		goto fail;
	}
	r = set_routing(c);
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
	free(c->rt);
	free(c);
	return r;
}

void kvm_irqchip_free(struct kvm_chips *c)
{
	if (!c)
		return;
	for (int i = 0; i < HW_MAX_CPUS; i++)
		free(c->lapic0[i]);
	free(c->rt);
	free(c);
}

void kvm_irqchip_set_irq(struct kvm_chips *c, int gsi, bool level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = level };

	if (ioctl(c->vm, KVM_IRQ_LINE, &l) < 0)
		LOG(LOG_INT, "kvm: KVM_IRQ_LINE %d: %s", gsi, strerror(errno));
}

void kvm_irqchip_msi(struct kvm_chips *c, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = { .address_lo = addr, .address_hi = addr >> 32, .data = data };

	if (ioctl(c->vm, KVM_SIGNAL_MSI, &msi) < 0)
		LOG(LOG_INT, "kvm: KVM_SIGNAL_MSI 0x%" PRIx64 "/0x%x: %s", addr, data, strerror(errno));
}

void kvm_irqchip_ioapic_send(struct kvm_chips *c, int pin, uint64_t addr, uint32_t data)
{
	uint64_t msi = addr << 32 | data;
	struct kvm_irq_level l = { .irq = pin, .level = 1 };

	if (pin < 0 || pin >= IOAPIC_PINS)
		return;
	if (!(c->pin_routed & (1u << pin)) || c->pin_msi[pin] != msi) {
		if (kvm_irqchip_route_msi(c, pin, addr, data) < 0) {
			LOG(LOG_INT, "kvm: IOAPIC pin %d: %s", pin, err_msg());
			return;
		}
		c->pin_routed |= 1u << pin;
		c->pin_msi[pin] = msi;
	}
	if (ioctl(c->vm, KVM_IRQ_LINE, &l) < 0)
		LOG(LOG_INT, "kvm: KVM_IRQ_LINE %d: %s", pin, strerror(errno));
	l.level = 0;
	ioctl(c->vm, KVM_IRQ_LINE, &l);
}

void kvm_irqchip_reset(struct kvm_chips *c)
{
	if (c->split)
		return;
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
	c->vcpu_fd[index] = fd;
	c->ncpu = MAX(c->ncpu, index + 1);
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

/* ---- the "kvm-irqchip" device-state section ---- */

struct chips_state {
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_lapic_state lapic[HW_MAX_CPUS];
	struct kvm_mp_state mp[HW_MAX_CPUS];
};

static void put_blob(struct hw_wbuf *w, const void *p, uint32_t len)
{
	hw_put32(w, len);
	hw_putb(w, p, len);
}

static void get_blob(struct hw_rbuf *r, void *p, uint32_t len)
{
	if (hw_get32(r) != len)
		r->err = 1;
	else
		hw_getb(r, p, len);
}

static void chips_save(void *dev, struct hw_wbuf *w)
{
	struct kvm_chips *c = dev;
	struct chips_state *st = xzalloc(sizeof(*st));

	hw_put8(w, c->split);
	for (int i = 0; i < 3 && !c->split; i++) {
		st->chip[i].chip_id = i;
		if (ioctl(c->vm, KVM_GET_IRQCHIP, &st->chip[i]) < 0)
			log_msg(LOG_WARN, "kvm: KVM_GET_IRQCHIP %d: %s", i, strerror(errno));
		put_blob(w, &st->chip[i].chip, sizeof(st->chip[i].chip));
	}
	if (!c->split && ioctl(c->vm, KVM_GET_PIT2, &st->pit) < 0)
		log_msg(LOG_WARN, "kvm: KVM_GET_PIT2: %s", strerror(errno));
	if (!c->split)
		put_blob(w, &st->pit, sizeof(st->pit));
	hw_put32(w, c->ncpu);
	for (int i = 0; i < c->ncpu; i++) {
		if (ioctl(c->vcpu_fd[i], KVM_GET_LAPIC, &st->lapic[i]) < 0 ||
		    ioctl(c->vcpu_fd[i], KVM_GET_MP_STATE, &st->mp[i]) < 0)
			log_msg(LOG_WARN, "kvm: vCPU %d's local APIC: %s", i, strerror(errno));
		put_blob(w, &st->lapic[i], sizeof(st->lapic[i]));
		hw_put32(w, st->mp[i].mp_state);
	}
	free(st);
}

/* Everything is read and checked before KVM is told anything. */
static int chips_parse(struct kvm_chips *c, struct hw_rbuf *r, struct chips_state *st)
{
	if (hw_get8(r) != c->split)
		return -EINVAL;
	for (int i = 0; i < 3 && !c->split; i++) {
		st->chip[i].chip_id = i;
		get_blob(r, &st->chip[i].chip, sizeof(st->chip[i].chip));
	}
	if (!c->split)
		get_blob(r, &st->pit, sizeof(st->pit));
	if (hw_get32(r) != (uint32_t)c->ncpu)
		return -EINVAL;
	for (int i = 0; i < c->ncpu; i++) {
		get_blob(r, &st->lapic[i], sizeof(st->lapic[i]));
		st->mp[i].mp_state = hw_get32(r);
		if (st->mp[i].mp_state > KVM_MP_STATE_AP_RESET_HOLD)
			return -EINVAL;
	}
	return r->err ? -EINVAL : 0;
}

static int chips_load(void *dev, struct hw_rbuf *r)
{
	struct kvm_chips *c = dev;
	struct chips_state *st = xzalloc(sizeof(*st));
	int ret = chips_parse(c, r, st);

	for (int i = 0; i < 3 && ret == 0 && !c->split; i++)
		if (ioctl(c->vm, KVM_SET_IRQCHIP, &st->chip[i]) < 0)
			ret = -errno;
	if (ret == 0 && !c->split && ioctl(c->vm, KVM_SET_PIT2, &st->pit) < 0)
		ret = -errno;
	for (int i = 0; i < c->ncpu && ret == 0; i++)
		if (ioctl(c->vcpu_fd[i], KVM_SET_LAPIC, &st->lapic[i]) < 0 ||
		    ioctl(c->vcpu_fd[i], KVM_SET_MP_STATE, &st->mp[i]) < 0)
			ret = -errno;
	free(st);
	return ret < 0 ? -EINVAL : 0;
}

/* The chips belong to the accelerator, which frees them. */
static void chips_free(void *dev) { }

static const struct hw_dev_ops chips_dev_ops = {
	.name = "kvm-irqchip", .version = 2,
	.save = chips_save, .load = chips_load, .free = chips_free,
};

int kvm_irqchip_register(struct machine *m, struct kvm_chips *c)
{
	return hw_dev_add(m, &chips_dev_ops, c);
}
