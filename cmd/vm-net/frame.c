/*
 * The stream framing of DESIGN.md and QEMU's -netdev stream/socket: each
 * Ethernet frame travels as a 4-byte big-endian length followed by that
 * many bytes.  A length of 0 or above FRAME_MAX cannot come from a sane
 * peer and is a protocol error (the caller drops the connection).
 */
#include <errno.h>

#include "net.h"

int frame_parse(const uint8_t *buf, size_t avail, const uint8_t **frame, uint32_t *len)
{
	uint32_t n;

	if (avail < 4)
		return 0;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	*len = n;
	if (n == 0 || n > FRAME_MAX)
		return -EPROTO;
	if (avail - 4 < n)
		return 0;
	*frame = buf + 4;
	return (int)(n + 4);
}

void frame_header(uint8_t hdr[4], uint32_t len)
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}
