/*
 * vm-net internals: one LAN per process.
 *
 * Every vm-net process runs one "LAN": a set of ports (stream connections
 * to vm-run, a real QEMU's -netdev stream, or another vm-net) plus at most
 * one local back-end (libslirp, a tap device, or nothing for a plain hub).
 * A frame that enters the LAN from anywhere is captured (--pcap) and then
 * sent to every other member, like QEMU's old "VLAN" hub.  The wire format
 * of a port is DESIGN.md's: a 4-byte big-endian length, then the frame.
 */
#ifndef VM_NET_H
#define VM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"

/* The largest frame accepted on a port: QEMU's own receive buffer
 * (NET_BUFSIZE, 4096 + 65536).  A length of 0 or above this is a protocol
 * error that closes the connection. */
#define FRAME_MAX 69632
/* A frame shorter than an Ethernet header is dropped (but is no protocol
 * error: the length prefix was sound). */
#define FRAME_MIN 14

struct lan;
struct port;
struct capture;

/* ---- frame.c: the stream framing ---- */

/* Look at `avail` received bytes.  Returns the number of bytes one whole
 * frame occupies (header included) and points *frame and *len at it; 0 when
 * more bytes are needed; -EPROTO when the header announces a bad length
 * (then *len holds that length). */
int frame_parse(const uint8_t *buf, size_t avail, const uint8_t **frame, uint32_t *len);
/* Write the 4-byte header announcing a frame of `len` bytes. */
void frame_header(uint8_t hdr[4], uint32_t len);

/* ---- the back-ends (backends.c lists them) ----
 * A back-end is the LAN's local member.  It hands frames it produces to
 * lan_input(lan, NULL, ...) and gets every frame from the ports through
 * `receive`. */
struct net_backend {
	const char *name;         /* "user", "hub", "tap" */
	const char *summary;      /* one line for --help */
	const char *const *keys;  /* accepted KEY=VALUE names, NULL-terminated */
	/* Parse `opts` and start.  Required.  Returns 0 and sets *state, or
	 * -errno with a message recorded. */
	int (*open)(struct lan *lan, const struct kvlist *opts, void **state);
	/* A frame from a port towards the back-end.  Optional (the hub has
	 * no local member). */
	void (*receive)(void *state, const uint8_t *frame, size_t len);
	/* Before each round of the event loop: (re)register descriptors and
	 * lower *timeout_ms (-1 = no limit) if needed.  Optional. */
	void (*prepare)(void *state, int *timeout_ms);
	/* After each round of the event loop.  Optional. */
	void (*dispatch)(void *state);
	/* Host forwards at run time, in QEMU's hostfwd syntax.  Optional:
	 * NULL means the back-end has none.  0 or -errno with a message. */
	int (*hostfwd_add)(void *state, const char *rule);
	int (*hostfwd_remove)(void *state, const char *rule);
	/* Describe the back-end's state, one fact per line.  Optional. */
	void (*info)(void *state, FILE *out);
	/* Stop and free.  Required. */
	void (*close)(void *state);
};

extern const struct net_backend user_backend, hub_backend, tap_backend;
/* NULL-terminated, in --help order. */
extern const struct net_backend *const net_backends[];
const struct net_backend *net_backend_find(const char *name);

/* ---- lan.c: the members and the forwarding ---- */

struct lan_config {
	unsigned snaplen;          /* capture: bytes kept of each frame */
	uint64_t pcap_size;        /* capture: rotate past this size (0: never) */
	const char *pcap;          /* capture file, or NULL */
};

struct listener;
struct target;
struct control;

/* The LAN: shared by lan.c, port.c and control.c. */
struct lan {
	struct loop *loop;
	struct lan_config cfg;
	const struct net_backend *be;   /* the local member, or NULL */
	void *be_state;
	char *id;                       /* the back-end's id= */
	struct capture *cap;
	struct port *ports;
	unsigned next_port_id;
	struct listener *listeners;
	struct target *targets;
	struct control *control;
	int sigfd;
	bool link_up;
	bool stop;
	uint64_t frames, bytes, dropped_link;
};

/* One stream connection. */
struct port {
	struct lan *lan;
	int fd;
	unsigned id;
	char *name;                     /* "unix:PATH#3", "tcp:1.2.3.4:5678", ... */
	uint8_t *rbuf;                  /* received bytes not yet a whole frame */
	size_t rlen;
	uint8_t *wbuf;                  /* queued bytes to send, from woff */
	size_t woff, wlen, wcap;
	bool dead;                      /* closed at the end of the loop round */
	bool watch_out;                 /* LOOP_OUT is on */
	struct target *target;          /* the --connect that made it, or NULL */
	uint64_t rx_frames, tx_frames, tx_dropped;
	struct port *next;
};

struct lan *lan_new(const struct lan_config *cfg);
void lan_free(struct lan *lan);
/* A frame enters the LAN from `from` (NULL: the local back-end): it is
 * captured, then sent to every port but `from`, and to the back-end
 * unless it came from there.  Dropped while the link is down. */
void lan_input(struct lan *lan, struct port *from, const uint8_t *frame, size_t len);
/* Run until lan->stop, SIGINT/SIGTERM/SIGHUP, or (when nothing listens
 * and nothing is to be reconnected) the last port leaving.  0 or -errno. */
int lan_run(struct lan *lan);
/* Describe the link, the ports and the counters. */
void lan_info(struct lan *lan, FILE *out);

/* Timers are lib/common's (loop_timer_* on lan->loop). */

/* ---- port.c: stream connections ---- */

/* Listen on "unix:PATH" (or a bare PATH) or "tcp:HOST:PORT"; socket files
 * get mode 0600. */
int port_listen(struct lan *lan, const char *addr);
/* An inherited descriptor: a listening socket is listened on, a
 * connected stream socket becomes a port. */
int port_adopt_fd(struct lan *lan, int fd);
/* Connect to another vm-net (or any stream peer) and reconnect once a
 * second while it is away.  Fails when the first attempt does. */
int port_connect(struct lan *lan, const char *addr);
/* Queue a frame towards the peer; dropped when too much is queued. */
void port_send(struct port *p, const uint8_t *frame, size_t len);
/* Close the ports marked dead (after a loop round). */
void port_sweep(struct lan *lan);
/* True while anything listens or reconnects: the LAN then outlives its
 * last port. */
bool port_persistent(const struct lan *lan);
/* Close every port, listener and connection target. */
void port_close_all(struct lan *lan);
void port_info(struct lan *lan, FILE *out);

/* ---- capture.c: pcap files through libpcap's dump API ---- */

/* Open `path` for capture (link type Ethernet).  rotate: start a new file
 * (PATH.1, PATH.2, ...) before one would grow past this many bytes; 0
 * never rotates. */
int capture_open(const char *path, unsigned snaplen, uint64_t rotate,
		 struct capture **out);
void capture_frame(struct capture *c, const uint8_t *frame, size_t len);
void capture_flush(struct capture *c);
void capture_close(struct capture *c);

/* ---- control.c: the control socket (line commands) ---- */

/* Take commands on "unix:PATH", PATH or "fd:N" (listening or connected). */
int control_listen(struct lan *lan, const char *addr);
void control_close(struct lan *lan);
/* Run one command line, writing reply lines and a final "OK" or
 * "ERROR: message" line to out. */
void control_exec(struct lan *lan, const char *line, FILE *out);
/* vm-net ctl SOCKET COMMAND...: send one command, print the reply.
 * Returns the exit status. */
int control_client(const char *path, int argc, char **argv);

#endif
