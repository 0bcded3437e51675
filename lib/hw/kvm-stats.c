/*
 * A vCPU's signs of life from KVM's binary statistics (Linux KVM API,
 * Documentation/virt/kvm/api.rst, KVM_GET_STATS_FD).
 *
 * vm-run's watchdog counts exits to user space to tell a guest that runs
 * from one KVM cannot run (kvm_pvm stuck in a kernel's decompressor).
 * With the in-kernel irqchip, an idle guest halts and takes its timer
 * interrupts without a single exit, so the halts and interrupt
 * injections KVM counts in the kernel stand in for them: a guest stuck
 * spinning has neither.  The counters are read with pread() on the
 * statistics descriptor, which never waits for a running vCPU.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"

struct kvm_stats {
	int fd;
	int nat;
	off_t at[2];		/* halt_exits, irq_injections */
};

static const char *const wanted[] = { "halt_exits", "irq_injections" };

/* Find the wanted counters' offsets among the descriptors. */
static int find_counters(struct kvm_stats *s, const struct kvm_stats_header *h)
{
	size_t one = sizeof(struct kvm_stats_desc) + h->name_size;
	uint8_t *d;

	if (h->num_desc > 4096 || h->name_size > 4096)
		return -EINVAL;
	d = xmalloc(one * h->num_desc);
	if (pread(s->fd, d, one * h->num_desc, h->desc_offset) != (ssize_t)(one * h->num_desc)) {
		free(d);
		return -EIO;
	}
	for (uint32_t i = 0; i < h->num_desc; i++) {
		const struct kvm_stats_desc *x = (const void *)(d + i * one);
		for (size_t k = 0; k < ARRAY_SIZE(wanted); k++)
			if (s->nat < (int)ARRAY_SIZE(s->at) && x->size == 1 &&
			    !strncmp(x->name, wanted[k], h->name_size))
				s->at[s->nat++] = h->data_offset + x->offset;
		if (s->nat == (int)ARRAY_SIZE(s->at))
			break;
	}
	free(d);
	return s->nat ? 0 : -ENOENT;
}

int kvm_stats_open(int kvm, int vcpu_fd, struct kvm_stats **out)
{
	struct kvm_stats *s;
	struct kvm_stats_header h;

	*out = NULL;
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0)
		return -ENOTSUP;
	s = xzalloc(sizeof(*s));
	s->fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (s->fd < 0 || pread(s->fd, &h, sizeof(h), 0) != sizeof(h) || find_counters(s, &h) < 0) {
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return -ENOTSUP;
	}
	*out = s;
	return 0;
}

uint64_t kvm_stats_events(struct kvm_stats *s)
{
	uint64_t sum = 0, v;

	for (int i = 0; s && i < s->nat; i++)
		if (pread(s->fd, &v, sizeof(v), s->at[i]) == sizeof(v))
			sum += v;
	return sum;
}

void kvm_stats_free(struct kvm_stats *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}
