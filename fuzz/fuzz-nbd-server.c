/*
 * Fuzz vm-nbd's server with arbitrary client bytes: the fixed newstyle
 * handshake (options, export names, meta contexts) and then transmission
 * requests, served by the real server code (cmd/vm-nbd) over a
 * socketpair against a 1 MiB raw image in memory.  The client's bytes are
 * sent in full and its side then shut down; the server must answer or
 * hang up, never crash, hang or touch memory it should not.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "../cmd/vm-nbd/vm-nbd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct client { int fd; const uint8_t *data; size_t size; };

/* Send the input, then read and drop every reply until the server closes. */
static void *client_side(void *opaque)
{
	struct client *c = opaque;
	char buf[65536];

	write_full(c->fd, c->data, c->size);
	shutdown(c->fd, SHUT_WR);
	while (read(c->fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static struct export *fuzz_export(struct nbd_config *cfg)
{
	static struct export *exp;
	static char path[64];
	int fd;

	if (exp)
		return exp;
	fd = memfd_create("fuzz-nbd", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	cfg->filename = path;
	cfg->format = "raw";
	cfg->port = "10809";
	cfg->export_name = "";
	cfg->description = "fuzz";
	cfg->shared = 1;
	if (export_open(cfg, &exp) < 0)
		abort();
	return exp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nbd_config cfg;
	static struct pool *pool;
	struct server s = { 0 };
	struct client c = { .data = data, .size = size };
	pthread_t t;
	int sv[2];

	s.cfg = &cfg;
	s.exp = fuzz_export(&cfg);
	if (!pool)
		pool = pool_new(4);
	s.pool = pool;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	c.fd = sv[0];
	pthread_create(&t, NULL, client_side, &c);
	server_run_fd(&s, &sv[1], 1);
	pthread_join(t, NULL);
	close(sv[0]);
	close(s.notify[0]);
	close(s.notify[1]);
	pthread_mutex_destroy(&s.lock);
	return 0;
}
