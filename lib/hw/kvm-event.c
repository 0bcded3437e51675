/*
 * The event thread of a KVM machine with the in-kernel irqchip: virtio
 * doorbells as ioeventfds and MSI-X messages as irqfds (Linux KVM API,
 * Documentation/virt/kvm/api.rst: KVM_IOEVENTFD, KVM_IRQFD).
 *
 * An ioeventfd turns the guest's write to a doorbell into an eventfd
 * signal inside the kernel: the vCPU goes straight back into the guest,
 * and this thread runs the device's queue with the machine lock held.
 *
 * An MSI irqfd raises a GSI routed to the message (address, data) it
 * last sent, the route rewritten only when the message changes; the
 * kernel delivers it at once, in the writer's context.  Level-triggered
 * INTx is no irqfd: a resampling irqfd's raise on an IOAPIC pin goes
 * through a kernel work queue, and on a loaded host one was seen held
 * for seconds, the guest waiting for an interrupt its device had long
 * raised; INTx is a KVM_IRQ_LINE, done before the ioctl returns.
 *
 * While the machine is paused or being reset, doorbells wait (polled
 * every few milliseconds) so that devices never run behind a stopped
 * machine's back, as in savevm.
 *
 * Slots are fixed arrays, never freed while the thread runs: an event
 * that fires for a slot just released is recognised by its descriptor
 * and dropped.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"

#define IOEVENTS 64
#define MSIFDS 64
#define KIND_IO 1ull
#define KIND_STOP 3ull

struct hw_ioevent {
	struct kvm_events *ev;
	int fd;
	bool used, deferred;
	uint64_t gpa;
	unsigned len;
	void (*fn)(void *opaque, int arg);
	void *opaque;
	int arg;
};

struct hw_msifd {
	struct kvm_events *ev;
	int fd, gsi;
	bool routed;
	uint64_t addr;
	uint32_t data;
};

struct kvm_events {
	struct machine *m;
	int vm, ep, stop;
	bool any_length;
	pthread_t thread;
	struct hw_ioevent io[IOEVENTS];
	struct hw_msifd msi[MSIFDS];
	int nmsi;
};

static uint64_t ev_key(uint64_t kind, unsigned idx, int fd)
{
	return kind << 56 | (uint64_t)idx << 32 | (uint32_t)fd;
}

static void drain(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		LOG(LOG_VIRTIO, "eventfd read: %s", strerror(errno));
}

/* One event, machine lock held.  False when the loop must end. */
static bool dispatch(struct kvm_events *e, uint64_t key)
{
	unsigned kind = key >> 56, idx = (key >> 32) & 0xffffff;
	int fd = (int)(uint32_t)key;
	struct machine *m = e->m;

	if (kind == KIND_STOP)
		return false;
	if (kind == KIND_IO && idx < IOEVENTS && e->io[idx].used && e->io[idx].fd == fd) {
		struct hw_ioevent *io = &e->io[idx];
		drain(fd);
		if (m->paused || m->request)
			io->deferred = true;
		else
			io->fn(io->opaque, io->arg);
	}
	return true;
}

/* Doorbells rung while the machine was stopped; true if some still wait. */
static bool run_deferred(struct kvm_events *e)
{
	struct machine *m = e->m;
	bool left = false;

	for (int i = 0; i < IOEVENTS; i++) {
		struct hw_ioevent *io = &e->io[i];
		if (!io->used || !io->deferred)
			continue;
		if (m->paused || m->request) {
			left = true;
			continue;
		}
		io->deferred = false;
		io->fn(io->opaque, io->arg);
	}
	return left;
}

static void *event_thread(void *arg)
{
	struct kvm_events *e = arg;
	struct epoll_event evs[16];
	bool go = true, waiting = false;

	while (go) {
		int n = epoll_wait(e->ep, evs, ARRAY_SIZE(evs), waiting ? 10 : -1);
		if (n < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&e->m->lock);
		for (int i = 0; i < n && go; i++)
			go = dispatch(e, evs[i].data.u64);
		waiting = go && run_deferred(e);
		pthread_mutex_unlock(&e->m->lock);
	}
	return NULL;
}

static int watch(struct kvm_events *e, int fd, uint64_t key)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = key };

	if (epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return err_set_errno(errno, "epoll_ctl");
	return 0;
}

int kvm_events_new(struct machine *m, int vm, struct kvm_events **out)
{
	struct kvm_events *e = xzalloc(sizeof(*e));
	sigset_t all, old;
	int r;

	e->m = m;
	e->vm = vm;
	e->any_length = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0;
	e->ep = epoll_create1(EPOLL_CLOEXEC);
	e->stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->ep < 0 || e->stop < 0) {
		r = err_set_errno(errno, "event thread");
		goto fail;
	}
	r = watch(e, e->stop, ev_key(KIND_STOP, 0, e->stop));
	if (r < 0)
		goto fail;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&e->thread, NULL, event_thread, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		r = err_set_errno(r, "event thread");
		goto fail;
	}
	*out = e;
	return 0;
fail:
	if (e->ep >= 0)
		close(e->ep);
	if (e->stop >= 0)
		close(e->stop);
	free(e);
	return r;
}

void kvm_events_free(struct kvm_events *e)
{
	uint64_t one = 1;

	if (!e)
		return;
	if (write(e->stop, &one, sizeof(one)) != sizeof(one))
		log_msg(LOG_WARN, "event thread: cannot stop it");
	pthread_join(e->thread, NULL);
	for (int i = 0; i < IOEVENTS; i++)
		if (e->io[i].used)
			close(e->io[i].fd);
	for (int i = 0; i < e->nmsi; i++)
		close(e->msi[i].fd);
	close(e->ep);
	close(e->stop);
	free(e);
}

/* ---- ioeventfds ---- */

static int ioeventfd(struct hw_ioevent *io, bool add)
{
	struct kvm_ioeventfd k = {
		.addr = io->gpa, .len = io->len, .fd = io->fd,
		.flags = add ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(io->ev->vm, KVM_IOEVENTFD, &k) < 0 ? -errno : 0;
}

int hw_ioevent_add(struct machine *m, uint64_t gpa, void (*fn)(void *opaque, int arg),
		   void *opaque, int arg, struct hw_ioevent **out)
{
	struct kvm_events *e = kvm_accel_events(m);
	struct hw_ioevent *io = NULL;
	int r;

	if (!e)
		return -ENOTSUP;
	for (int i = 0; i < IOEVENTS && !io; i++)
		if (!e->io[i].used && !e->io[i].deferred)
			io = &e->io[i];
	if (!io)
		return err_set(-ENOSPC, "too many ioeventfds");
	*io = (struct hw_ioevent){ .ev = e, .gpa = gpa, .len = e->any_length ? 0 : 2,
				   .fn = fn, .opaque = opaque, .arg = arg };
	io->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (io->fd < 0)
		return err_set_errno(errno, "eventfd");
	r = ioeventfd(io, true);
	if (r == 0)
		r = watch(e, io->fd, ev_key(KIND_IO, io - e->io, io->fd));
	else
		r = err_set_errno(-r, "KVM_IOEVENTFD at 0x%" PRIx64, gpa);
	if (r < 0) {
		close(io->fd);
		return r;
	}
	io->used = true;
	LOG(LOG_VIRTIO, "kvm: ioeventfd at 0x%" PRIx64 " (%s)", gpa, e->any_length ? "any size" : "2 bytes");
	*out = io;
	return 0;
}

void hw_ioevent_del(struct machine *m, struct hw_ioevent *io)
{
	if (!io || !io->used)
		return;
	epoll_ctl(io->ev->ep, EPOLL_CTL_DEL, io->fd, NULL);
	if (ioeventfd(io, false) < 0)
		LOG(LOG_VIRTIO, "kvm: KVM_IOEVENTFD deassign at 0x%" PRIx64 " failed", io->gpa);
	close(io->fd);
	io->used = io->deferred = false;
	io->fd = -1;
}

void hw_ioevent_ring(struct hw_ioevent *io)
{
	uint64_t one = 1;

	if (io && io->used && write(io->fd, &one, sizeof(one)) != sizeof(one))
		LOG(LOG_VIRTIO, "kvm: ioeventfd at 0x%" PRIx64 ": %s", io->gpa, strerror(errno));
}

/* ---- MSI irqfds ---- */

int hw_msifd_new(struct machine *m, struct hw_msifd **out)
{
	struct kvm_events *e = kvm_accel_events(m);
	struct kvm_irqfd k = { 0 };
	struct hw_msifd *f;

	if (!e)
		return -ENOTSUP;
	if (e->nmsi == MSIFDS)
		return err_set(-ENOSPC, "too many MSI irqfds");
	f = &e->msi[e->nmsi];
	*f = (struct hw_msifd){ .ev = e };
	f->gsi = kvm_irqchip_route_msi(kvm_accel_chips(m), -1, 0xfee00000, 0);
	if (f->gsi < 0)
		return f->gsi;
	f->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	k.fd = f->fd;
	k.gsi = f->gsi;
	if (f->fd < 0 || ioctl(e->vm, KVM_IRQFD, &k) < 0) {
		int r = err_set_errno(errno, "KVM_IRQFD on GSI %d", f->gsi);
		if (f->fd >= 0)
			close(f->fd);
		return r;
	}
	e->nmsi++;
	LOG(LOG_VIRTIO, "kvm: irqfd on GSI %d (MSI)", f->gsi);
	*out = f;
	return 0;
}

void hw_msifd_send(struct hw_msifd *f, uint64_t addr, uint32_t data)
{
	uint64_t one = 1;

	if (!f->routed || f->addr != addr || f->data != data) {
		struct machine *m = f->ev->m;
		if (kvm_irqchip_route_msi(kvm_accel_chips(m), f->gsi, addr, data) < 0) {
			LOG(LOG_INT, "kvm: MSI route of GSI %d: %s", f->gsi, err_msg());
			return;
		}
		LOG(LOG_INT, "kvm: GSI %d routed to MSI 0x%" PRIx64 " data 0x%x", f->gsi, addr, data);
		f->routed = true;
		f->addr = addr;
		f->data = data;
	}
	if (write(f->fd, &one, sizeof(one)) != sizeof(one))
		LOG(LOG_INT, "kvm: MSI irqfd on GSI %d: %s", f->gsi, strerror(errno));
}
