/*
 * lib/jit's privileged behaviour: boots the freestanding test kernels of
 * tests/guest/cpu (multiboot ELF32) on a minimal machine - RAM, a COM1
 * sink collecting output, and QEMU's isa-debug-exit at port 0xf4 - and
 * turns each "ok - what" / "not ok - what" line they print into a check.
 * The kernels are looked up next to this binary (../guest/cpu/); a missing
 * one is reported as skipped.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit/jit.h"
#include "unit.h"

#define RAM_SIZE (16u << 20)

struct machine {
	uint8_t *ram;
	char out[8192];
	size_t out_len;
	int exit_code;		/* -1 until the guest writes port 0xf4 */
	char log[256];
};

static uint8_t *m_ram(void *o, uint64_t gpa, bool write)
{
	struct machine *m = o;

	return gpa < RAM_SIZE ? m->ram + gpa : NULL;
}

static uint64_t m_mmio_read(void *o, uint64_t gpa, unsigned size) { return ~0ull; }
static void m_mmio_write(void *o, uint64_t gpa, uint64_t v, unsigned size) { }

static uint32_t m_pio_in(void *o, uint16_t port, unsigned size)
{
	if (port == 0x3fd)
		return 0x60;	/* transmitter empty */
	return ~0u;
}

static void m_pio_out(void *o, uint16_t port, uint32_t v, unsigned size)
{
	struct machine *m = o;

	if (port == 0x3f8 && m->out_len < sizeof(m->out) - 1)
		m->out[m->out_len++] = (char)v;
	else if (port == 0xf4)
		m->exit_code = (int)((v << 1) | 1);
}

static void m_log(void *o, int cpu, const char *msg)
{
	struct machine *m = o;

	snprintf(m->log, sizeof(m->log), "%s", msg);
}

/* Load an ELF32 multiboot kernel; returns the entry point or 0. */
static uint32_t load_elf32(struct machine *m, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t h[52], ph[32];
	uint32_t entry, phoff;
	uint16_t phnum;

	if (!f)
		return 0;
	if (fread(h, 1, 52, f) != 52 || memcmp(h, "\x7f" "ELF\x01", 5)) {
		fclose(f);
		return 0;
	}
	memcpy(&entry, h + 24, 4);
	memcpy(&phoff, h + 28, 4);
	memcpy(&phnum, h + 44, 2);
	for (unsigned i = 0; i < phnum; i++) {
		uint32_t type, off, paddr, filesz, memsz;

		if (fseek(f, (long)(phoff + 32 * i), SEEK_SET) || fread(ph, 1, 32, f) != 32)
			break;
		memcpy(&type, ph, 4);
		memcpy(&off, ph + 4, 4);
		memcpy(&paddr, ph + 12, 4);
		memcpy(&filesz, ph + 16, 4);
		memcpy(&memsz, ph + 20, 4);
		if (type != 1 || paddr + memsz > RAM_SIZE)
			continue;
		memset(m->ram + paddr, 0, memsz);
		if (fseek(f, (long)off, SEEK_SET) || fread(m->ram + paddr, 1, filesz, f) != filesz)
			entry = 0;
	}
	fclose(f);
	return entry;
}

static void seg32(struct jit_segment *s, uint16_t sel, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->present = s->s = s->g = s->db = 1;
}

/* The multiboot handoff: flat 32-bit protected mode, EAX magic, EBX info. */
static void multiboot_state(struct jit_cpu *cpu, uint32_t entry)
{
	struct jit_sregs sr;
	struct jit_regs r = { .rip = entry, .rflags = 2 };

	jit_cpu_get_sregs(cpu, &sr);
	seg32(&sr.cs, 0x08, true);
	seg32(&sr.ds, 0x10, false);
	sr.es = sr.ss = sr.fs = sr.gs = sr.ds;
	sr.cr0 = 0x11;
	jit_cpu_set_sregs(cpu, &sr);
	r.gpr[JIT_RAX] = 0x2badb002;
	r.gpr[JIT_RBX] = 0x9000 - 0x100;
	jit_cpu_set_regs(cpu, &r);
}

static void run_kernel(const char *dir, const char *name)
{
	static struct machine m;
	struct jit_bus bus = {
		.opaque = &m, .ram = m_ram, .mmio_read = m_mmio_read, .mmio_write = m_mmio_write,
		.pio_in = m_pio_in, .pio_out = m_pio_out, .log = m_log,
	};
	char path[4096];
	struct jit_cpu *cpu;
	enum jit_exit e = JIT_EXIT_BUDGET;
	uint32_t entry;
	char *line, *save;

	memset(&m, 0, sizeof(m));
	m.exit_code = -1;
	m.ram = calloc(1, RAM_SIZE);
	snprintf(path, sizeof(path), "%s/../guest/cpu/%s.elf", dir, name);
	entry = load_elf32(&m, path);
	if (!entry) {
		printf("ok %d - %s # SKIP %s not built\n", ++unit_n, name, path);
		free(m.ram);
		return;
	}
	cpu = jit_cpu_new(&bus, 0);
	multiboot_state(cpu, entry);
	for (int i = 0; i < 2000 && m.exit_code < 0; i++) {
		e = jit_cpu_run(cpu, 100000);
		if (e != JIT_EXIT_BUDGET)
			break;
	}
	m.out[m.out_len] = 0;
	for (line = strtok_r(m.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "ok - ", 5))
			CHECK(1, "%s: %s", name, line + 5);
		else if (!strncmp(line, "not ok - ", 9))
			CHECK(0, "%s: %s", name, line + 9);
	}
	CHECK(m.exit_code == 1, "%s: exits through isa-debug-exit with status 1 (got %d, exit %d%s%s)",
	      name, m.exit_code, (int)e, m.log[0] ? ", last log: " : "", m.log);
	jit_cpu_free(cpu);
	free(m.ram);
}

int main(int argc, char **argv)
{
	char *self = strdup(argv[0]);
	const char *dir = dirname(self);

	run_kernel(dir, "cpu-modes");
	run_kernel(dir, "cpu-debug");
	run_kernel(dir, "cpu-task");
	free(self);
	return unit_done();
}
