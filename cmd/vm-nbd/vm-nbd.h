/*
 * vm-nbd internals: the configuration parsed from the command line, the
 * export (an image behind a small back-end interface, possibly narrowed
 * to an offset or a partition), the listening server and one connection.
 *
 * Threads: the main thread accepts; each connection has a reader thread
 * (handshake, then requests) and a writer thread (replies); the requests
 * themselves run on one shared thread pool, so a connection has many in
 * flight and answers them in whatever order they finish.
 */
#ifndef VM_NBD_H
#define VM_NBD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fmt/fmt.h"

struct kvlist;
struct secret_store;
struct pool;

/* ---- configuration (main.c) ---- */

enum detect_zeroes { DZ_OFF, DZ_ON, DZ_UNMAP };

#define MAX_FDS 16      /* --fd's sockets */

struct nbd_config {
	const char *filename;
	const char *format;          /* -f, or NULL to probe */
	bool image_opts;             /* --image-opts: filename is key=val,... */
	const char *bind;            /* -b (NULL: all addresses) */
	const char *port;            /* -p ("10809") */
	const char *sockpath;        /* -k */
	int fds[MAX_FDS];            /* --fd N[,N...]: connected sockets */
	int nfds;
	uint64_t offset;             /* -o */
	int partition;               /* -P N, 0 = whole disk */
	bool read_only;              /* -r */
	bool snapshot;               /* -s */
	const char *load_snapshot;   /* -l */
	char *load_snapshot_buf;     /* -l snapshot.id=...: the copy we own */
	const char *cache;           /* --cache / -n */
	const char *aio;             /* --aio */
	bool discard;                /* --discard=unmap */
	enum detect_zeroes detect_zeroes;
	int shared;                  /* -e (0: unlimited) */
	bool persistent;             /* -t */
	const char *export_name;     /* -x ("") */
	const char *description;     /* -D */
	bool fork;                   /* --fork */
	const char *pid_file;        /* --pid-file */
	bool verbose;                /* -v */
	bool allocation_depth;       /* -A (always offered; accepted for QEMU) */
	struct secret_store *secrets;/* --object secret,... */
	int control_fd;              /* --control-fd N, or -1 */
};

/* ---- the export (export.c): an image of lib/fmt ---- */

/* One extent as the server reports it: NBD_STATE_* and the depth of the
 * layer that allocates it (0: none, 1: the top image...). */
struct export_extent {
	uint64_t length;
	uint32_t flags;
	uint32_t depth;
};

struct fmt_image;

struct export {
	struct fmt_image *img;
	uint64_t image_size;         /* size of the whole image */
	uint64_t offset;             /* -o / -P: where the export starts */
	uint64_t size;               /* what clients see */
	bool writable;
	bool discard;                /* trim reaches the image */
	enum detect_zeroes detect_zeroes;
	bool writethrough;           /* cache=writethrough/directsync */
	bool unsafe;                 /* cache=unsafe: flush is a no-op */
	uint32_t min_block, pref_block, max_payload;
	const char *name;
	const char *description;
	pthread_rwlock_t lock;       /* shared by requests, exclusive for control.c */
	struct splice_file *splice_files;  /* layers splice.c may send from */
	int nsplice;
};

/* ---- zero-copy reads (splice.c) ---- */

struct splice_file { const char *name; int fd; };
/* Find the layers whose bytes can be spliced (after export_open). */
void splice_setup(struct export *e, const struct nbd_config *cfg);
void splice_close(struct export *e);
/* Move export bytes [off, off+len) into pipe_wr without copying, as far
 * as they qualify: the number of bytes moved (short: read the rest). */
ssize_t export_splice(struct export *e, uint64_t off, size_t len, int pipe_wr);
/* A pipe for want bytes of a reply; *cap: what it holds.  0 or -errno. */
int splice_pipe(int p[2], size_t want, size_t *cap);
struct conn;
/* The same, from connection c's spare pipes when one holds need bytes
 * or more (pipes are made once per connection, not once per read). */
int splice_pipe_get(struct conn *c, int p[2], size_t want, size_t need, size_t *cap);
/* Keep an empty pipe among c's spares when there is room (p becomes -1;
 * else the caller closes it); c's lock held. */
void splice_pipe_put_locked(struct conn *c, int p[2], size_t cap);
/* Close c's spare pipes (the connection ends). */
void splice_pipe_close(struct conn *c);
/* Send n bytes from a pipe to the socket; 0 or -EIO. */
int splice_send(int pipe_rd, int sock, size_t n, bool more);

/* Open the image named in the config with its back-end. */
int export_open(const struct nbd_config *cfg, struct export **out);
void export_close(struct export *e);
/* Wrapper calls in export coordinates (offset added, bounds known good). */
int export_read(struct export *e, void *buf, uint64_t off, size_t len);
int export_write(struct export *e, const void *buf, uint64_t off, size_t len,
		 bool fua);
int export_write_zeroes(struct export *e, uint64_t off, uint64_t len,
			bool no_hole, bool fast, bool fua);
int export_trim(struct export *e, uint64_t off, uint64_t len, bool fua);
int export_flush(struct export *e);
int export_block_status(struct export *e, uint64_t off, uint64_t len,
			struct export_extent *ext);

/* ---- the control channel (control.c): vm-run's snapshots and resize ---- */

struct control;
/* Serve control requests on fd on a thread of its own (NULL: none). */
struct control *control_start(struct export *e, const struct nbd_config *cfg, int fd);
/* Hang up and wait for the thread. */
void control_stop(struct control *c);

/* ---- partitions (partition.c): -P N of an MBR or GPT disk ---- */

int partition_find(struct export *e, int n, uint64_t *start, uint64_t *len);

/* ---- server (server.c) and connections (conn.c) ---- */

struct server {
	const struct nbd_config *cfg;
	struct export *exp;
	struct pool *pool;
	pthread_mutex_t lock;
	int nconns;                  /* connections alive */
	int served;                  /* connections accepted so far */
	int notify[2];               /* a connection ended: wake accept loop */
	struct conn *conns;          /* list of live connections */
};

int server_run(struct server *s, const int *lfds, int nlfds);
/* Serve one already-connected socket, return when it closes. */
int server_run_fd(struct server *s, const int *fds, int nfds);

/* A request on its way through the pool. */
struct nbd_req {
	struct conn *c;
	uint16_t flags, type;
	uint64_t cookie, offset;
	uint32_t len;
	uint8_t *data;               /* write payload or read buffer */
	struct nbd_req *next;        /* in the connection's reply queue */
	/* the reply, built by the worker */
	struct iovec *iov;
	int niov;
	uint8_t *hdrs;               /* reply headers the iovecs point into */
	size_t hdr_used;
	bool last_hdr;               /* iov[niov-1] is header bytes */
	uint8_t *extra;              /* another buffer the reply points into */
	int pipe[2];                 /* spliced read data (splice.c), or -1 */
	size_t pipe_cap;             /*   its capacity */
	size_t pipe_fill;            /*   bytes in it, not sent yet */
	size_t copied;               /* read data that went through memory */
};

#define SPARE_PIPES 4   /* a connection's empty pipes kept for reuse */

struct conn {
	struct server *srv;
	int fd;
	struct conn *next;
	pthread_t reader, writer;
	/* negotiated in the handshake */
	bool fixed, no_zeroes, structured;
	uint32_t ctx_alloc, ctx_depth;  /* metadata context ids, 0 = off */
	char *meta_export;              /* export the contexts were set for */
	uint16_t tflags;                /* transmission flags sent */
	/* transmission state, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* the reader, waiting in admit() */
	pthread_cond_t wcond;           /* the writer thread */
	bool admit_waiting;             /* the reader waits on cond */
	int inflight;                   /* requests not yet answered */
	size_t inflight_bytes;
	struct nbd_req *replies, *replies_tail;  /* ready to send */
	bool dead;                      /* socket broken: stop everything */
	bool writing;                   /* a thread is sending on the socket */
	uint64_t inline_after;          /* reader thread only: see run_inline() */
	bool reading_done;              /* reader finished: writer may end */
	struct { int fd[2]; size_t cap; } spare[SPARE_PIPES];
	int nspare;                     /* empty pipes kept for spliced reads */
};

/* conn.c */
void conn_start(struct server *s, int fd);
/* handshake.c: 0 = go to transmission, 1 = client left cleanly, -errno. */
int handshake_run(struct conn *c);
/* transmit.c: the request loop of one connection. */
void transmit_run(struct conn *c);
void transmit_reply_done(struct nbd_req *r);
void req_free(struct nbd_req *r);
/* Send finished replies now if the socket is free, else queue them for
 * the writer thread (one reply, or a list linked through ->next). */
void conn_queue_reply(struct conn *c, struct nbd_req *r);
void conn_queue_replies(struct conn *c, struct nbd_req *head, struct nbd_req *tail);
/* The same from the connection's reader thread, which may block. */
void conn_send_replies(struct conn *c, struct nbd_req *head, struct nbd_req *tail);
/* Transmission flags of this export for connection c. */
uint16_t conn_tflags(const struct conn *c);

#endif
