/*
 * Firmware boot (-bios, or SeaBIOS by default when there is no -kernel):
 * the image (a multiple of 64 KiB, at most 16 MiB) is mapped read-only
 * just below 4 GiB, and its last 128 KiB are copied to 0xe0000 as the
 * shadowed BIOS area.  The BSP starts at the reset vector F000:FFF0.
 */
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

#define DEFAULT_BIOS "/usr/share/seabios/bios-256k.bin"

int boot_bios(struct machine *m, const char *path)
{
	uint8_t *img;
	size_t len;
	int r;

	if (!path)
		path = DEFAULT_BIOS;
	if (!m->bios) {
		r = hw_read_file(path, &img, &len);
		if (r < 0)
			return r;
		if (!len || len % 65536 || len > (16u << 20)) {
			free(img);
			return err_set(-EINVAL, "%s: firmware size must be a multiple of 64 KiB up to 16 MiB", path);
		}
		m->bios = img;
		m->bios_size = len;
		r = m->accel->map(m->accel_state, 0x100000000ull - len, len, img, true);
		if (r < 0)
			return r;
	}
	size_t n = MIN(m->bios_size, 0x20000);
	memcpy(hw_ram_ptr(m, 0x100000 - n, n), m->bios + m->bios_size - n, n);
	LOG(LOG_BOOT, "firmware %s, %" PRIu64 " KiB", path, m->bios_size / 1024);
	return 0;
}
