/*
 * vm-net's stream framing (cmd/vm-net/frame.c): whole frames, partial
 * headers and bodies, back-to-back frames, and the lengths that are
 * protocol errors.  The tool's sources are not in a library, so the file
 * is compiled in here.
 */
#include <errno.h>
#include <string.h>

#include "../../cmd/vm-net/frame.c"
#include "unit.h"

int main(void)
{
	uint8_t buf[200], hdr[4];
	const uint8_t *f = NULL;
	uint32_t len = 0;

	frame_header(hdr, 0x01020304);
	CHECK(!memcmp(hdr, "\x01\x02\x03\x04", 4), "header is big-endian");

	frame_header(buf, 10);
	memset(buf + 4, 0xab, 10);
	frame_header(buf + 14, 3);
	memcpy(buf + 18, "xyz", 3);
	for (size_t n = 0; n < 14; n++)
		CHECK(frame_parse(buf, n, &f, &len) == 0, "%zu of 14 bytes: need more", n);
	CHECK(frame_parse(buf, 14, &f, &len) == 14 && f == buf + 4 && len == 10,
	      "a whole frame is 14 bytes with its header");
	CHECK(frame_parse(buf, 21, &f, &len) == 14, "the first of two frames");
	CHECK(frame_parse(buf + 14, 7, &f, &len) == 7 && len == 3 && !memcmp(f, "xyz", 3),
	      "the second frame follows");

	frame_header(buf, 0);
	CHECK(frame_parse(buf, 4, &f, &len) == -EPROTO && len == 0, "length 0 is an error");
	frame_header(buf, FRAME_MAX + 1);
	CHECK(frame_parse(buf, 4, &f, &len) == -EPROTO && len == FRAME_MAX + 1,
	      "length FRAME_MAX+1 is an error");
	frame_header(buf, 0xffffffff);
	CHECK(frame_parse(buf, 4, &f, &len) == -EPROTO, "length 2^32-1 is an error");
	frame_header(buf, FRAME_MAX);
	CHECK(frame_parse(buf, 100, &f, &len) == 0 && len == FRAME_MAX,
	      "length FRAME_MAX is fine (waits for the body)");
	return unit_done();
}
