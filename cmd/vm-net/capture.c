/*
 * Capture: every frame the LAN carries, written in the classic libpcap
 * file format (pcap-savefile(5), link type DLT_EN10MB) through libpcap's
 * dump API, so tcpdump, tshark and wireshark read it.  This is QEMU's
 * "-net dump" / filter-dump: a snap length (QEMU's len=) keeps the first
 * bytes of each frame while the record still carries the frame's real
 * length; timestamps are the wall clock in microseconds.
 *
 * Rotation (--pcap-size): before a record would take a file past the
 * limit, that file is closed and the next one opened, numbered like
 * tcpdump's -C: FILE, FILE.1, FILE.2, ...  Each file is a complete
 * capture on its own.  Records are flushed after every loop round, so the
 * files can be read while vm-net runs.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "net.h"

#define PCAP_FILE_HEADER 24
#define PCAP_RECORD_HEADER 16

struct capture {
	pcap_t *dead;          /* the pcap_open_dead handle the dumper needs */
	pcap_dumper_t *dump;
	char *path;
	unsigned snaplen;
	uint64_t rotate;       /* 0: never */
	uint64_t size;         /* bytes in the current file */
	unsigned seq;          /* number of the current file (0: PATH) */
	bool failed;           /* a write failed: stop capturing */
};

static int capture_open_file(struct capture *c)
{
	char *name = c->seq ? xasprintf("%s.%u", c->path, c->seq) : xstrdup(c->path);

	c->dump = pcap_dump_open(c->dead, name);
	if (!c->dump) {
		int r = err_set(-EIO, "%s: %s", name, pcap_geterr(c->dead));

		free(name);
		return r;
	}
	LOG(LOG_NET, "capturing to %s", name);
	free(name);
	c->size = PCAP_FILE_HEADER;
	return 0;
}

int capture_open(const char *path, unsigned snaplen, uint64_t rotate, struct capture **out)
{
	struct capture *c = xzalloc(sizeof(*c));
	int r;

	c->dead = pcap_open_dead(DLT_EN10MB, (int)snaplen);
	if (!c->dead) {
		free(c);
		return err_set(-ENOMEM, "pcap_open_dead failed");
	}
	c->path = xstrdup(path);
	c->snaplen = snaplen;
	c->rotate = rotate;
	if ((r = capture_open_file(c)) < 0) {
		pcap_close(c->dead);
		free(c->path);
		free(c);
		return r;
	}
	*out = c;
	return 0;
}

static void capture_rotate(struct capture *c)
{
	pcap_dump_close(c->dump);
	c->dump = NULL;
	c->seq++;
	if (capture_open_file(c) < 0) {
		log_warn("capture stopped: %s", err_msg());
		c->failed = true;
	}
}

void capture_frame(struct capture *c, const uint8_t *frame, size_t len)
{
	struct pcap_pkthdr h;
	uint64_t rec;

	if (c->failed)
		return;
	h.caplen = (bpf_u_int32)MIN(len, (size_t)c->snaplen);
	h.len = (bpf_u_int32)len;
	rec = PCAP_RECORD_HEADER + h.caplen;
	if (c->rotate && c->size > PCAP_FILE_HEADER && c->size + rec > c->rotate) {
		capture_rotate(c);
		if (c->failed)
			return;
	}
	gettimeofday(&h.ts, NULL);
	pcap_dump((u_char *)c->dump, &h, frame);
	c->size += rec;
}

void capture_flush(struct capture *c)
{
	if (c && c->dump && !c->failed && pcap_dump_flush(c->dump) < 0) {
		log_warn("%s: capture write failed: %s", c->path, strerror(errno));
		c->failed = true;
	}
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	if (c->dump)
		pcap_dump_close(c->dump);
	pcap_close(c->dead);
	free(c->path);
	free(c);
}
