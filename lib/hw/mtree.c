/*
 * The machine's address spaces as HMP's "info mtree" shows them: the
 * memory space (RAM below and above 4 GiB, the firmware ROM, every MMIO
 * region at its current address, the local APICs' window) and the I/O
 * space (every port range), each a flat list under its root region, in
 * QEMU's line layout "start-end (prio 0, kind): name".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

struct mt_line { uint64_t base, len; const char *kind, *name; };

static int mt_cmp(const void *a, const void *b)
{
	const struct mt_line *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

static void mt_print(FILE *f, struct mt_line *l, int n, int width)
{
	qsort(l, (size_t)n, sizeof(*l), mt_cmp);
	for (int i = 0; i < n; i++)
		fprintf(f, "    %0*llx-%0*llx (prio 0, %s): %s\n", width,
			(unsigned long long)l[i].base, width,
			(unsigned long long)(l[i].base + l[i].len - 1), l[i].kind, l[i].name);
}

char *machine_mtree(struct machine *m)
{
	struct mt_line l[HW_MMIO_REGIONS + HW_PIO_REGIONS + 8];
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	int n = 0;

	if (!f)
		return NULL;
	pthread_mutex_lock(&m->lock);
	fprintf(f, "address-space: memory\n  %016llx-%016llx (prio 0, i/o): system\n",
		0ull, ~0ull);
	l[n++] = (struct mt_line){ 0, m->lowmem, "ram", "pc.ram" };
	if (m->highmem)
		l[n++] = (struct mt_line){ 1ull << 32, m->highmem, "ram", "pc.ram above-4g" };
	if (m->bios)
		l[n++] = (struct mt_line){ (1ull << 32) - m->bios_size, m->bios_size, "rom",
					   "pc.bios" };
	if (!m->kernel_irqchip && !m->kernel_lapic)
		l[n++] = (struct mt_line){ 0xfee00000, 0x100000, "i/o", "apic-msi" };
	for (int i = 0; i < m->nmmio; i++)
		if (m->mmio[i].base && m->mmio[i].len)
			l[n++] = (struct mt_line){ m->mmio[i].base, m->mmio[i].len, "i/o",
						   m->mmio[i].name };
	mt_print(f, l, n, 16);
	fprintf(f, "\naddress-space: I/O\n  %016llx-%016llx (prio 0, i/o): io\n", 0ull, 0xffffull);
	n = 0;
	for (int i = 0; i < m->npio; i++)
		l[n++] = (struct mt_line){ m->pio[i].base, m->pio[i].len, "i/o", m->pio[i].name };
	mt_print(f, l, n, 16);
	pthread_mutex_unlock(&m->lock);
	fputc('\n', f);
	fclose(f);
	return text;
}
