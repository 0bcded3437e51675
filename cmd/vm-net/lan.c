/*
 * The LAN of one vm-net process: QEMU's "VLAN" (a hub) as a process.
 *
 * A frame entering from any member is captured once (so a capture holds
 * every frame in both directions, in the order the LAN saw them) and then
 * repeated to every other member: the ports, and the local back-end.  A
 * hub learns nothing and filters nothing; with the link down (set_link
 * off) every frame is dropped.
 *
 * The process runs one epoll loop (lib/common), whose timers serve
 * libslirp and the reconnecting ports.  A round is: the back-end's
 * prepare, one loop_run_once (bounded by the next timer, which it then
 * fires), the back-end's dispatch, then closing the ports that failed and
 * flushing the capture.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

struct lan *lan_new(const struct lan_config *cfg)
{
	struct lan *lan = xzalloc(sizeof(*lan));

	lan->cfg = *cfg;
	lan->link_up = true;
	lan->sigfd = -1;
	lan->loop = loop_new();
	if (!lan->loop) {
		free(lan);
		return NULL;
	}
	if (cfg->pcap && capture_open(cfg->pcap, cfg->snaplen, cfg->pcap_size, &lan->cap) < 0) {
		loop_free(lan->loop);
		free(lan);
		return NULL;
	}
	return lan;
}

void lan_free(struct lan *lan)
{
	if (!lan)
		return;
	control_close(lan);
	port_close_all(lan);
	if (lan->be)
		lan->be->close(lan->be_state);
	capture_close(lan->cap);
	if (lan->sigfd >= 0)
		close(lan->sigfd);
	loop_free(lan->loop);
	free(lan->id);
	free(lan);
}

void lan_input(struct lan *lan, struct port *from, const uint8_t *frame, size_t len)
{
	if (!lan->link_up) {
		lan->dropped_link++;
		return;
	}
	lan->frames++;
	lan->bytes += len;
	if (lan->cap)
		capture_frame(lan->cap, frame, len);
	for (struct port *p = lan->ports; p; p = p->next)
		if (p != from)
			port_send(p, frame, len);
	if (from && lan->be && lan->be->receive)
		lan->be->receive(lan->be_state, frame, len);
}

/* ---- running ---- */

/* SIGINT, SIGTERM and SIGHUP stop the LAN through a self-pipe, so that a
 * signal arriving just before epoll_wait is not lost.  (Blocking them
 * for a signalfd would leave them blocked in guestfwd's children.) */
static int lan_sigpipe_wr = -1;

static void lan_on_sig(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(lan_sigpipe_wr, &c, 1) < 0) {
		/* the pipe is full: a stop is already pending */
	}
	errno = saved;
}

static void lan_on_signal(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct lan *lan = opaque;
	char c;

	if (read(fd, &c, 1) == 1) {
		LOG(LOG_NET, "signal %d: stopping", c);
		lan->stop = true;
	}
}

static int lan_signals(struct lan *lan)
{
	struct sigaction sa = { .sa_handler = lan_on_sig };
	int fds[2];

	signal(SIGPIPE, SIG_IGN);
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return err_set_errno(errno, "pipe");
	lan->sigfd = fds[0];
	lan_sigpipe_wr = fds[1];
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	return loop_add(lan->loop, lan->sigfd, LOOP_IN, lan_on_signal, lan);
}

int lan_run(struct lan *lan)
{
	int r;

	if ((r = lan_signals(lan)) < 0)
		return r;
	while (!lan->stop) {
		int timeout = -1;

		if (lan->be && lan->be->prepare)
			lan->be->prepare(lan->be_state, &timeout);
		if ((r = loop_run_once(lan->loop, timeout)) < 0)
			return r;
		if (lan->be && lan->be->dispatch)
			lan->be->dispatch(lan->be_state);
		port_sweep(lan);
		if (lan->cap)
			capture_flush(lan->cap);
		if (!lan->ports && !port_persistent(lan)) {
			LOG(LOG_NET, "the last port left: stopping");
			break;
		}
	}
	return 0;
}

void lan_info(struct lan *lan, FILE *out)
{
	fprintf(out, "backend %s%s%s link %s\n", lan->be ? lan->be->name : "none",
		lan->id ? " id=" : "", lan->id ? lan->id : "", lan->link_up ? "up" : "down");
	fprintf(out, "frames %" PRIu64 " bytes %" PRIu64 " dropped-link-down %" PRIu64 "\n",
		lan->frames, lan->bytes, lan->dropped_link);
	if (lan->cfg.pcap)
		fprintf(out, "capture %s snaplen %u\n", lan->cfg.pcap, lan->cfg.snaplen);
	port_info(lan, out);
	if (lan->be && lan->be->info)
		lan->be->info(lan->be_state, out);
}
