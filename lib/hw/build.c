/*
 * Building and tearing down the machine, loading what it boots, and the
 * device-state stream that frames every device's section.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/internal.h"

const struct hw_accel_ops *const hw_accels[] = { &hw_accel_kvm, &hw_accel_jit, NULL };

const struct hw_accel_ops *hw_accel_find(const char *name)
{
	for (int i = 0; hw_accels[i]; i++)
		if (!strcmp(hw_accels[i]->name, name))
			return hw_accels[i];
	return NULL;
}

int hw_read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return err_set_errno(errno, "%s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (1ll << 31)) {
		close(fd);
		return err_set(-EINVAL, "%s: not a regular file of at most 2 GiB", path);
	}
	*len = st.st_size;
	*buf = xmalloc(*len + 1);
	r = read_full(fd, *buf, *len);
	close(fd);
	if (r < 0) {
		free(*buf);
		return err_set_errno(-r, "%s", path);
	}
	return 0;
}

static int add_devices(struct machine *m)
{
	const struct hw_config *c = &m->cfg;
	int r = 0;

	r = r < 0 ? r : pic_new(m);
	r = r < 0 ? r : pit_new(m);
	r = r < 0 ? r : rtc_new(m);
	r = r < 0 ? r : i8042_new(m);
	r = r < 0 ? r : port92_new(m);
	r = r < 0 ? r : ioapic_new(m);
	for (int i = 0; i < m->ncpu && r >= 0; i++)
		r = apic_new(m, i);
	for (int i = 0; i < HW_MAX_SERIAL && r >= 0; i++)
		if (c->serial[i].ops)
			r = uart_new(m, i, &c->serial[i]);
	if (r >= 0 && c->debug_exit_port)
		r = debugexit_new(m, c->debug_exit_port, c->debug_exit_size);
	r = r < 0 ? r : pci_new(m);
	r = r < 0 ? r : acpi_new(m);
	r = r < 0 ? r : ide_new(m);
	r = r < 0 ? r : debugcon_new(m);
	for (int i = 0; i < c->ndisks && r >= 0; i++)
		if (c->disks[i].iface == HW_IF_VIRTIO)
			r = virtio_blk_new(m, &c->disks[i]);
	for (int i = 0; i < c->nnics && r >= 0; i++)
		r = c->nics[i].model == HW_NIC_E1000 ? e1000_new(m, i, &c->nics[i])
						     : virtio_net_new(m, i, &c->nics[i]);
	if (r >= 0 && c->virtcon.ops)
		r = virtio_console_new(m, &c->virtcon);
	if (r >= 0 && c->rng)
		r = virtio_rng_new(m);
	if (r >= 0 && !c->kernel)
		r = fwcfg_new(m);
	if (r >= 0 && c->kernel)
		pci_assign_bars(m);
	return r;
}

static int add_accel(struct machine *m)
{
	int r;

	m->accel = hw_accel_find(m->cfg.accel ? m->cfg.accel : "jit");
	if (!m->accel)
		return err_set(-EINVAL, "no accelerator '%s'", m->cfg.accel);
	r = m->accel->init(m, &m->accel_state);
	if (r < 0)
		return r;
	r = m->accel->map(m->accel_state, 0, m->lowmem, m->ram, false);
	if (r >= 0 && m->highmem)
		r = m->accel->map(m->accel_state, 0x100000000ull, m->highmem, m->ram + m->lowmem, false);
	for (int i = 0; i < m->ncpu && r >= 0; i++)
		r = m->accel->vcpu_new(m->accel_state, i, &m->vcpu[i].accel_vcpu);
	return r;
}

/* Load the kernel or firmware into freshly reset memory. */
int machine_boot(struct machine *m)
{
	uint8_t *img;
	size_t len;
	int r;

	r = acpi_build_tables(m, 0xe0000, 0x10000);
	if (r < 0)
		return r;
	if (!m->cfg.kernel)
		return boot_bios(m, m->cfg.bios);
	r = hw_read_file(m->cfg.kernel, &img, &len);
	if (r < 0)
		return r;
	if (boot_is_multiboot(img, len))
		r = boot_multiboot(m, img, len);
	else
		r = boot_linux(m, img, len);
	free(img);
	return r;
}

int machine_new(const struct hw_config *cfg, struct machine **out)
{
	struct machine *m = xzalloc(sizeof(*m));
	pthread_condattr_t ca;
	int r;

	m->cfg = *cfg;
	m->ncpu = cfg->smp < 1 ? 1 : MIN(cfg->smp, HW_MAX_CPUS);
	m->paused = cfg->start_paused;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->state_cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	for (int i = 0; i < m->ncpu; i++) {
		m->vcpu[i].m = m;
		m->vcpu[i].index = i;
		pthread_cond_init(&m->vcpu[i].wake, NULL);
	}
	r = hw_memory_init(m);
	r = r < 0 ? r : add_devices(m);
	r = r < 0 ? r : add_accel(m);
	r = r < 0 ? r : machine_boot(m);
	if (r < 0) {
		machine_free(m);
		return r;
	}
	*out = m;
	return 0;
}

void machine_free(struct machine *m)
{
	if (!m)
		return;
	boot_cache_wait(m);
	for (int i = 0; i < m->ncpu; i++)
		if (m->vcpu[i].accel_vcpu)
			m->accel->vcpu_free(m->vcpu[i].accel_vcpu);
	/* the devices first: their back-ends' threads may still finish a
	 * request, and report its writes to the accelerator (ram_written) */
	for (int i = m->ndevs - 1; i >= 0; i--)
		m->devs[i].ops->free(m->devs[i].dev);
	if (m->accel_state)
		m->accel->free(m->accel_state);
	if (m->ram)
		munmap(m->ram, m->ram_size);
	free(m->bios);
	free(m->error);
	free(m);
}

/* ---- device state ---- */

#define STATE_MAGIC 0x57484d56u	/* "VMHW" */

int machine_save_devices(struct machine *m, uint8_t **buf, size_t *len)
{
	struct hw_wbuf w = { 0 };

	hw_put32(&w, STATE_MAGIC);
	hw_put32(&w, 1);
	hw_put32(&w, m->ndevs);
	for (int i = 0; i < m->ndevs; i++) {
		const struct hw_dev *d = &m->devs[i];
		size_t at;
		uint8_t n = strlen(d->ops->name);

		hw_put8(&w, n);
		hw_putb(&w, d->ops->name, n);
		hw_put32(&w, d->instance);
		hw_put32(&w, d->ops->version);
		at = w.len;
		hw_put32(&w, 0);
		d->ops->save(d->dev, &w);
		uint32_t sl = w.len - at - 4;
		for (int b = 0; b < 4; b++)
			w.p[at + b] = sl >> (8 * b);
	}
	*buf = w.p;
	*len = w.len;
	return 0;
}

static struct hw_dev *find_dev(struct machine *m, const char *name, uint32_t inst)
{
	for (int i = 0; i < m->ndevs; i++)
		if (!strcmp(m->devs[i].ops->name, name) && m->devs[i].instance == (int)inst)
			return &m->devs[i];
	return NULL;
}

static int load_section(struct machine *m, struct hw_rbuf *r)
{
	char name[256];
	uint8_t n = hw_get8(r);
	uint32_t inst, ver, len;
	struct hw_dev *d;

	hw_getb(r, name, n);
	name[n] = 0;
	inst = hw_get32(r);
	ver = hw_get32(r);
	len = hw_get32(r);
	if (r->err || len > r->len - r->pos)
		return err_set(-EINVAL, "device state: truncated section");
	d = find_dev(m, name, inst);
	if (!d)
		return err_set(-EINVAL, "device state: unknown device '%s' %u", name, inst);
	if (ver != d->ops->version)
		return err_set(-EINVAL, "device state: %s version %u, expected %u",
			       name, ver, d->ops->version);
	struct hw_rbuf sub = { r->p + r->pos, len, 0, 0 };
	r->pos += len;
	if (d->ops->load(d->dev, &sub) < 0 || sub.err || sub.pos != sub.len)
		return err_set(-EINVAL, "device state: bad section for %s", name);
	return 0;
}

int machine_load_devices(struct machine *m, const uint8_t *buf, size_t len)
{
	struct hw_rbuf r = { buf, len, 0, 0 };
	uint32_t magic = hw_get32(&r), ver = hw_get32(&r), n = hw_get32(&r);
	int ret = 0;

	if (r.err || magic != STATE_MAGIC || ver != 1)
		return err_set(-EINVAL, "device state: bad header");
	pthread_mutex_lock(&m->lock);
	for (uint32_t i = 0; i < n && ret == 0; i++)
		ret = load_section(m, &r);
	pthread_mutex_unlock(&m->lock);
	if (ret == 0 && r.pos != r.len)
		ret = err_set(-EINVAL, "device state: trailing bytes");
	return ret;
}
