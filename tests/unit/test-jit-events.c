/*
 * lib/jit's cross-thread signals (jit.h: jit_cpu_stop/nmi/init/sipi): a
 * stop that arrives together with an NMI, INIT or SIPI makes the run
 * return JIT_EXIT_STOP, and the other signal must still be handled by the
 * next run - the pending-events word may not be lost with the stop.  The
 * guests are a few real-mode bytes that report through port 0x80.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jit/jit.h"
#include "unit.h"

#define RAM_SIZE (1u << 20)

struct machine {
	uint8_t *ram;
	int port80;		/* last byte written to port 0x80, -1 when none */
};

static uint8_t *m_ram(void *o, uint64_t gpa, bool write)
{
	struct machine *m = o;

	return gpa < RAM_SIZE ? m->ram + gpa : NULL;
}

static uint64_t m_mmio_read(void *o, uint64_t gpa, unsigned size) { return ~0ull; }
static void m_mmio_write(void *o, uint64_t gpa, uint64_t v, unsigned size) { }
static uint32_t m_pio_in(void *o, uint16_t port, unsigned size) { return ~0u; }

static void m_pio_out(void *o, uint16_t port, uint32_t v, unsigned size)
{
	struct machine *m = o;

	if (port == 0x80)
		m->port80 = (int)(v & 0xff);
}

/* Real mode, CS = 0, IP = 0x1000 spinning on JMP $; NMI (IVT entry 2)
 * goes to 0x2000: MOV AL, 0x42; OUT 0x80, AL; JMP $.  An AP started by
 * SIPI vector 3 runs 0x3000: MOV AL, 0x33; OUT 0x80, AL; JMP $. */
static struct jit_cpu *new_cpu(struct machine *m, struct jit_bus *bus, int index)
{
	static const uint8_t spin[] = { 0xeb, 0xfe };
	static const uint8_t nmi[] = { 0xb0, 0x42, 0xe6, 0x80, 0xeb, 0xfe };
	static const uint8_t ap[] = { 0xb0, 0x33, 0xe6, 0x80, 0xeb, 0xfe };
	struct jit_regs r = { .rip = 0x1000, .rflags = 2 };
	struct jit_sregs s;
	struct jit_cpu *cpu;

	memset(m->ram, 0, RAM_SIZE);
	m->port80 = -1;
	memcpy(m->ram + 0x1000, spin, sizeof(spin));
	memcpy(m->ram + 0x2000, nmi, sizeof(nmi));
	memcpy(m->ram + 0x3000, ap, sizeof(ap));
	m->ram[2 * 4 + 0] = 0x00;	/* IVT[2] = 0000:2000 */
	m->ram[2 * 4 + 1] = 0x20;
	*bus = (struct jit_bus){ .opaque = m, .ram = m_ram, .mmio_read = m_mmio_read,
		.mmio_write = m_mmio_write, .pio_in = m_pio_in, .pio_out = m_pio_out };
	cpu = jit_cpu_new(bus, index);
	if (!cpu)
		return NULL;
	jit_cpu_reset(cpu, true);
	if (index == 0) {
		jit_cpu_get_sregs(cpu, &s);
		s.cs.selector = 0;
		s.cs.base = 0;
		jit_cpu_set_sregs(cpu, &s);
		jit_cpu_set_regs(cpu, &r);
	}
	return cpu;
}

static void stop_with_nmi(struct machine *m)
{
	struct jit_bus bus;
	struct jit_cpu *cpu = new_cpu(m, &bus, 0);
	enum jit_exit e;

	CHECK(cpu != NULL, "a real-mode vCPU is created");
	if (!cpu)
		return;
	jit_cpu_run(cpu, 100);
	jit_cpu_nmi(cpu);
	jit_cpu_stop(cpu);
	e = jit_cpu_run(cpu, 1000);
	CHECK(e == JIT_EXIT_STOP, "stop raised with an NMI returns JIT_EXIT_STOP (got %d)", (int)e);
	e = jit_cpu_run(cpu, 1000);
	CHECK(e == JIT_EXIT_BUDGET && m->port80 == 0x42,
	      "the NMI that raced with the stop is delivered by the next run (exit %d, port 0x80 %#x)",
	      (int)e, m->port80);
	jit_cpu_free(cpu);
}

static void stop_with_init_sipi(struct machine *m)
{
	struct jit_bus bus;
	struct jit_cpu *cpu = new_cpu(m, &bus, 1);
	enum jit_exit e;

	CHECK(cpu != NULL, "an application processor is created");
	if (!cpu)
		return;
	e = jit_cpu_run(cpu, 100);
	CHECK(e == JIT_EXIT_HLT && jit_cpu_halted(cpu), "the AP waits for SIPI (exit %d)", (int)e);
	jit_cpu_init(cpu);
	jit_cpu_sipi(cpu, 3);
	jit_cpu_stop(cpu);
	e = jit_cpu_run(cpu, 1000);
	CHECK(e == JIT_EXIT_STOP, "stop raised with INIT and SIPI returns JIT_EXIT_STOP (got %d)",
	      (int)e);
	e = jit_cpu_run(cpu, 1000);
	CHECK(e == JIT_EXIT_BUDGET && m->port80 == 0x33 && !jit_cpu_halted(cpu),
	      "the INIT and SIPI that raced with the stop start the AP at the vector "
	      "(exit %d, port 0x80 %#x)", (int)e, m->port80);
	jit_cpu_free(cpu);
}

static void stop_alone(struct machine *m)
{
	struct jit_bus bus;
	struct jit_cpu *cpu = new_cpu(m, &bus, 0);
	enum jit_exit e;

	if (!cpu)
		return;
	jit_cpu_stop(cpu);
	e = jit_cpu_run(cpu, 1000);
	CHECK(e == JIT_EXIT_STOP, "a stop alone returns JIT_EXIT_STOP");
	e = jit_cpu_run(cpu, 1000);
	CHECK(e == JIT_EXIT_BUDGET && m->port80 == -1,
	      "and the next run just runs (exit %d, port 0x80 %d)", (int)e, m->port80);
	jit_cpu_free(cpu);
}

int main(void)
{
	struct machine m = { .ram = calloc(1, RAM_SIZE) };

	stop_with_nmi(&m);
	stop_with_init_sipi(&m);
	stop_alone(&m);
	free(m.ram);
	return unit_done();
}
