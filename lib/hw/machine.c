/*
 * The machine: builds the PC from a struct hw_config (devices in the
 * order QEMU's pc creates them), runs one thread per vCPU, routes
 * interrupts from devices to the PIC, the IOAPIC and the local APICs, and
 * handles the requests that end or restart a run (ACPI soft-off, reset,
 * isa-debug-exit, the host's quit).
 *
 * Reset: the main thread parks every vCPU, resets the devices, reloads
 * the kernel or firmware and resets the vCPUs, then lets them go again.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "common/common.h"
#include "hw/internal.h"

int hw_dev_add(struct machine *m, const struct hw_dev_ops *ops, void *dev)
{
	int inst = 0;

	if (m->ndevs >= (int)ARRAY_SIZE(m->devs)) {
		ops->free(dev);
		return err_set(-ENOSPC, "too many devices");
	}
	for (int i = 0; i < m->ndevs; i++)
		if (!strcmp(m->devs[i].ops->name, ops->name))
			inst++;
	m->devs[m->ndevs++] = (struct hw_dev){ ops, dev, inst };
	return 0;
}

/* ---- interrupts ---- */

void hw_set_irq(struct machine *m, int irq, bool level)
{
	if (irq < 0 || irq >= 24)
		return;
	if (level)
		m->irq_level |= 1u << irq;
	else
		m->irq_level &= ~(1u << irq);
	if (m->kernel_irqchip) {	/* KVM's chips; its routing maps IRQ 0 to pin 2 */
		kvm_irqchip_set_irq(kvm_accel_chips(m), irq, level);
		return;
	}
	if (irq < 16 && m->pic)
		pic_set_irq(m->pic, irq, level);
	if (m->ioapic)
		ioapic_set_irq(m->ioapic, irq == 0 ? 2 : irq, level);
}

bool hw_irq_pending(struct machine *m, int irq)
{
	if (m->kernel_irqchip || irq < 0 || irq >= 24)
		return false;
	if (irq < 16 && m->pic && pic_irq_pending(m->pic, irq))
		return true;
	return m->ioapic && ioapic_pin_pending(m->ioapic, irq == 0 ? 2 : irq);
}

void hw_msi(struct machine *m, uint64_t addr, uint32_t data)
{
	if ((addr >> 20) != 0xfee) {
		LOG(LOG_GUEST_ERRORS, "MSI to 0x%" PRIx64 ", outside the local APICs' window", addr);
		return;
	}
	if (m->kernel_irqchip || m->kernel_lapic) {
		kvm_irqchip_msi(kvm_accel_chips(m), addr, data);
		return;
	}
	apic_deliver(m, (addr >> 12) & 0xff, addr & 4, (data >> 8) & 7, data & 0xff, false);
}

void hw_cpu_kick(struct machine *m, int cpu)
{
	struct hw_vcpu *v = &m->vcpu[cpu];

	v->kicked = true;
	pthread_cond_signal(&v->wake);
	if (v->accel_vcpu)
		m->accel->kick(v->accel_vcpu);
}

void hw_cpu_update_intr(struct machine *m, int cpu)
{
	struct hw_vcpu *v = &m->vcpu[cpu];
	bool level = v->apic && apic_has_intr(v->apic);

	if (m->kernel_lapic)	/* split irqchip: only the PIC's ExtINT is ours */
		level = cpu == 0 && m->pic && pic_output(m->pic);

	if (level == v->intr)
		return;
	v->intr = level;
	if (v->accel_vcpu)
		m->accel->irq_line(v->accel_vcpu, level);
	if (level) {
		v->kicked = true;
		pthread_cond_signal(&v->wake);
	}
}

int hw_bus_irq_ack(struct machine *m, int cpu)
{
	int vec = -1;

	pthread_mutex_lock(&m->lock);
	if (m->kernel_lapic && cpu == 0 && m->pic && pic_output(m->pic)) {
		vec = pic_ack(m->pic);
		hw_cpu_update_intr(m, cpu);
	} else if (m->kernel_lapic) {
		vec = -1;
	} else if (cpu >= 0 && cpu < m->ncpu && m->vcpu[cpu].apic) {
		vec = apic_ack(m->vcpu[cpu].apic);
		hw_cpu_update_intr(m, cpu);
	}
	pthread_mutex_unlock(&m->lock);
	if (vec >= 0)
		LOG(LOG_INT, "cpu %d: interrupt vector 0x%x", cpu, vec);
	return vec;
}

int hw_bus_msr_read(struct machine *m, int cpu, uint32_t msr, uint64_t *val)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = apic_msr_read(m->vcpu[cpu].apic, msr, val);
	pthread_mutex_unlock(&m->lock);
	return r;
}

int hw_bus_msr_write(struct machine *m, int cpu, uint32_t msr, uint64_t val)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = apic_msr_write(m->vcpu[cpu].apic, msr, val);
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* ---- stop and reset requests (lock held) ---- */

static void kick_all(struct machine *m)
{
	for (int i = 0; i < m->ncpu; i++)
		hw_cpu_kick(m, i);
}

void hw_request_exit(struct machine *m, enum hw_stop why, int status)
{
	if (m->stopping)
		return;
	m->stopping = true;
	m->stop_reason = why;
	m->exit_status = status;
	kick_all(m);
	pthread_cond_broadcast(&m->state_cond);
}

void hw_request_poweroff(struct machine *m)
{
	hw_request_exit(m, HW_STOP_POWEROFF, 0);
}

void hw_request_reset(struct machine *m)
{
	if (m->cfg.no_reboot) {
		hw_request_exit(m, HW_STOP_RESET, 0);
		return;
	}
	if (m->cfg.on_reset)
		m->cfg.on_reset(m->cfg.on_reset_opaque);
	m->request = HW_REQ_RESET;
	kick_all(m);
	pthread_cond_broadcast(&m->state_cond);
}

void machine_quit(struct machine *m, int status)
{
	pthread_mutex_lock(&m->lock);
	hw_request_exit(m, HW_STOP_QUIT, status);
	pthread_mutex_unlock(&m->lock);
}

void machine_reset(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	hw_request_reset(m);
	pthread_mutex_unlock(&m->lock);
}

void machine_pause(struct machine *m, bool paused)
{
	pthread_mutex_lock(&m->lock);
	m->paused = paused;
	kick_all(m);
	pthread_cond_broadcast(&m->state_cond);
	pthread_mutex_unlock(&m->lock);
}

void machine_char_input(struct machine *m, int idx, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&m->lock);
	if (idx >= 0 && idx < HW_MAX_SERIAL && m->uart[idx])
		uart_input(m->uart[idx], buf, len);
	else if (idx < 0 && m->virtcon)
		virtio_char_input(m->virtcon, buf, len);
	pthread_mutex_unlock(&m->lock);
}

void machine_net_input(struct machine *m, int idx, const uint8_t *frame, size_t len)
{
	pthread_mutex_lock(&m->lock);
	if (idx >= 0 && idx < HW_MAX_NICS && m->virtnet[idx])
		virtio_net_input(m->virtnet[idx], frame, len);
	pthread_mutex_unlock(&m->lock);
}

uint64_t machine_progress(struct machine *m)
{
	/* KVM's in-kernel irqchip serves timers and HLT with no exit: its
	 * counts of halts and interrupts show an idle guest is alive. */
	bool kernel = m->kernel_irqchip || m->kernel_lapic;

	return atomic_load(&m->progress) + (kernel ? kvm_accel_guest_events(m) : 0);
}
