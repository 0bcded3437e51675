/*
 * lib/jit on the whole PC (lib/hw's machine with the jit accelerator):
 * boots the freestanding test kernel tests/guest/cpu/cpu-smp.elf with two
 * vCPUs - SMP start-up through INIT/SIPI, atomics racing between the vCPU
 * threads, IPIs, the local APIC timer in periodic and one-shot modes -
 * and turns each "ok - what" / "not ok - what" line it prints on COM1
 * into a check.  The kernel is looked up next to this binary
 * (../guest/cpu/); a missing one is reported as skipped.  A watchdog
 * quits the machine if the guest hangs.
 */
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "hw/hw.h"
#include "unit.h"

#define WATCHDOG_SECS 120

static struct {
	pthread_mutex_t lock;
	char buf[8192];
	size_t len;
} out = { PTHREAD_MUTEX_INITIALIZER, "", 0 };

static void out_write(void *o, const uint8_t *b, size_t n)
{
	pthread_mutex_lock(&out.lock);
	for (size_t i = 0; i < n && out.len < sizeof(out.buf) - 1; i++)
		out.buf[out.len++] = (char)b[i];
	pthread_mutex_unlock(&out.lock);
}

static const struct hw_char_ops out_ops = { out_write };

static void *watchdog(void *arg)
{
	sleep(WATCHDOG_SECS);
	machine_quit(arg, 99);
	return NULL;
}

static void run_kernel(const char *dir, const char *name, int smp)
{
	struct hw_config c = { .ram_size = 64u << 20, .smp = smp, .accel = "jit",
			       .debug_exit_port = 0xf4, .debug_exit_size = 4 };
	struct machine *m = NULL;
	enum hw_stop stop;
	pthread_t wd;
	char path[4096], *line, *save;
	int status = -1;

	snprintf(path, sizeof(path), "%s/../guest/cpu/%s.elf", dir, name);
	if (access(path, R_OK) < 0) {
		printf("ok %d - %s # SKIP %s not built\n", ++unit_n, name, path);
		return;
	}
	c.kernel = path;
	c.serial[0] = (struct hw_char_backend){ &out_ops, NULL };
	if (machine_new(&c, &m) < 0) {
		CHECK(0, "%s: machine_new: %s", name, err_msg());
		return;
	}
	out.len = 0;
	pthread_create(&wd, NULL, watchdog, m);
	stop = machine_run(m, &status);
	pthread_cancel(wd);
	pthread_join(wd, NULL);
	out.buf[out.len] = 0;
	for (line = strtok_r(out.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "ok - ", 5))
			CHECK(1, "%s: %s", name, line + 5);
		else if (!strncmp(line, "not ok - ", 9))
			CHECK(0, "%s: %s", name, line + 9);
	}
	CHECK(stop == HW_STOP_DEBUG_EXIT && status == 1,
	      "%s: exits through isa-debug-exit with status 1 (stop %d, status %d)", name,
	      (int)stop, status);
	machine_free(m);
}

int main(int argc, char **argv)
{
	char *self = strdup(argv[0]);
	const char *dir = dirname(self);

	run_kernel(dir, "cpu-smp", 2);
	free(self);
	return unit_done();
}
