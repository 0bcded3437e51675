/*
 * lib/common: what every tool of the suite shares and nothing more.
 *
 * Errors, logging, option and size parsing, JSON (through jansson), NBD
 * URIs, sockets and fd passing, an epoll event loop, a progress
 * indicator, secrets, a thread pool and scatter/gather lists.  Nothing here knows about image
 * formats, devices or CPUs.
 *
 * Conventions: functions return 0 (or a count) on success and -errno on
 * failure, after recording one human-readable message with err_set(); the
 * caller, usually cmd/<tool>/main.c, prints it with report_err().
 */
#ifndef VM_COMMON_H
#define VM_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ALIGN_UP(n, a) (((n) + (a) - 1) / (a) * (a))
#define ALIGN_DOWN(n, a) ((n) / (a) * (a))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

/* ---- memory (abort on exhaustion: there is nothing better to do) ---- */

void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) PRINTF(1, 2);

/* ---- errors (report.c) ----
 * Each thread keeps the last error message.  err_set() formats it;
 * err_set_errno() appends ": strerror(errnum)" and returns -errnum so that
 * `return err_set_errno(errno, "%s", path);` reads naturally.  err_prefix()
 * puts "CONTEXT: " in front of the message already recorded. */

int err_set(int neg_errno, const char *fmt, ...) PRINTF(2, 3);
int err_set_errno(int errnum, const char *fmt, ...) PRINTF(2, 3);
void err_prefix(const char *fmt, ...) PRINTF(1, 2);
const char *err_msg(void);
void err_clear(void);

/* The program name used by report(): "vm-img". */
void report_init(const char *progname);
const char *report_progname(void);
/* Print "PROG: message\n" to stderr. */
void report(const char *fmt, ...) PRINTF(1, 2);
/* Print "PROG: <recorded error>\n" to stderr. */
void report_err(void);
/* Flush and check stdout; on failure report it and return -1. */
int report_close_stdout(void);

/* ---- logging (log.c) ----
 * Levels go to stderr as "PROG: message"; debug categories are switched on
 * at run time with -d cat1,cat2 and cost one test when off. */

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

enum log_cat {
	LOG_GUEST_ERRORS = 1u << 0, /* the guest did something wrong */
	LOG_UNIMP = 1u << 1,        /* the guest touched something not implemented */
	LOG_INT = 1u << 2,          /* interrupts and exceptions */
	LOG_CPU = 1u << 3,          /* CPU state on entry to blocks */
	LOG_JIT = 1u << 4,          /* translator */
	LOG_MMU = 1u << 5,          /* paging, TLB */
	LOG_IOPORT = 1u << 6,       /* port I/O */
	LOG_MMIO = 1u << 7,         /* MMIO */
	LOG_VIRTIO = 1u << 8,       /* virtio devices */
	LOG_PCI = 1u << 9,          /* PCI configuration */
	LOG_NBD = 1u << 10,         /* NBD protocol */
	LOG_BLOCK = 1u << 11,       /* the block layer and image formats */
	LOG_NET = 1u << 12,         /* network back-ends */
	LOG_QMP = 1u << 13,         /* monitor traffic */
	LOG_BOOT = 1u << 14,        /* kernel and firmware loading */
};

/* Log settings: the only mutable globals of lib/common. */
extern unsigned log_mask;
extern enum log_level log_level;

void log_msg(enum log_level lvl, const char *fmt, ...) PRINTF(2, 3);
void log_cat_msg(unsigned cat, const char *fmt, ...) PRINTF(2, 3);
#define log_on(cat) (log_mask & (cat))
#define LOG(cat, ...) do { if (log_on(cat)) log_cat_msg((cat), __VA_ARGS__); } while (0)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)

/* Parse "cat1,cat2" (or "help", which lists them into *help and returns 1);
 * ORs the categories into *mask.  Returns 0, 1 for help, or -EINVAL. */
int log_parse_categories(const char *s, unsigned *mask);
/* The table of categories, for help output. */
struct log_cat_name { const char *name; unsigned cat; const char *help; };
extern const struct log_cat_name log_cat_names[];
extern const size_t log_cat_count;

/* ---- numbers and sizes (size.c) ---- */

/* Decimal (or 0x hex) unsigned integer in [min, max]; the whole string. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int parse_int(const char *s, int min, int max, int *out);
/* A size with an optional suffix k/K M G T P E (powers of 1024); a trailing
 * 'b'/'B' after the suffix is ignored; a fraction is allowed with a suffix
 * ("1.5G").  `default_suffix` applies when none is given: 0 for bytes,
 * 'M' for qemu-img's MiB-default options, and so on.  Negative values,
 * overflow past UINT64_MAX, empty strings and unknown suffixes are -EINVAL
 * or -ERANGE with a message recorded. */
int size_parse(const char *s, char default_suffix, uint64_t *out);
/* QEMU's human form: three significant digits and a binary unit, "1 GiB",
 * "1.5 GiB", "512 B", "0.999 KiB".  buf needs SIZE_STR_LEN bytes. */
#define SIZE_STR_LEN 32
char *size_to_str(uint64_t v, char *buf);
/* "on/off/yes/no/true/false/1/0" */
int parse_bool(const char *s, bool *out);
/* What getopt_long (with opterr = 0) stopped at, as glibc would say it:
 * c is ':' (a missing argument; "+:" optstrings) or '?'.  Reads optopt
 * and argv[optind - 1]; the text lives until the next call. */
const char *opt_error(int c, char *const *argv);
/* Percent-encoding for names in line protocols (uri.c): bytes up to ' ',
 * '%' and DEL become %XX (a malloc'd copy); pct_decode undoes it in place,
 * -EINVAL on a short or non-hex escape or an escaped NUL. */
char *pct_encode(const char *s);
int pct_decode(char *s);

/* ---- suboptions (opts.c) ----
 * QEMU's key=val,key2=val2 with a leading implied key ("file.img,if=virtio"
 * with implied key "file"), ",," for a literal comma inside a value, and
 * "help" or "?" as a request for help.  A bare key with no '=' in a later
 * position is boolean on ("readonly" = "readonly=on"; "noreadonly" is not
 * supported, QEMU deprecated it). */

struct kv { char *key; char *val; };
struct kvlist { struct kv *v; size_t n; };

int kv_parse(const char *s, const char *implied_key, struct kvlist *out);
void kv_free(struct kvlist *l);
/* Last value of key, or NULL. */
const char *kv_get(const struct kvlist *l, const char *key);
/* Append key=val (duplicated). */
void kv_set(struct kvlist *l, const char *key, const char *val);
/* True if the string asks for help ("help" or "?" as the whole string or
 * as the implied value). */
bool kv_is_help(const char *s);
/* Reject any key not in the NULL-terminated `known`. */
int kv_check(const struct kvlist *l, const char *const *known);
int kv_get_bool(const struct kvlist *l, const char *key, bool dflt, bool *out);
int kv_get_size(const struct kvlist *l, const char *key, uint64_t dflt, uint64_t *out);
int kv_get_u64(const struct kvlist *l, const char *key, uint64_t dflt,
	       uint64_t min, uint64_t max, uint64_t *out);
/* Escape commas for printing a value back as a suboption: "a,b" -> "a,,b". */
char *kv_escape(const char *val);

/* ---- JSON (json.c) through jansson ---- */

struct json_t;
/* Print a value to stdout as qemu-img does (4-space indent, keys in
 * insertion order) followed by a newline; consumes no reference. */
int vjson_print(struct json_t *v);
/* The same as a malloc'd string (no trailing newline); flags 0 gives
 * QEMU's pretty form, VJSON_COMPACT one line as QMP sends. */
#define VJSON_COMPACT 1
char *vjson_dumps(struct json_t *v, int flags);

/* ---- NBD URIs (uri.c): the NBD URI specification ----
 * nbd://host[:port]/export, nbds://..., nbd+unix:///export?socket=PATH,
 * nbd+tcp:// = nbd://.  Percent-escapes decoded.  IPv6 as [::1]. */

enum nbd_transport { NBD_URI_TCP, NBD_URI_UNIX };
struct nbd_uri {
	enum nbd_transport transport;
	bool tls;
	char *host;      /* TCP: host name or address ("localhost" if empty) */
	char *port;      /* TCP: "10809" if none */
	char *socket;    /* UNIX: path */
	char *export;    /* "" if none */
};
/* True if s starts like an NBD URI. */
bool nbd_uri_is(const char *s);
int nbd_uri_parse(const char *s, struct nbd_uri *out);
void nbd_uri_free(struct nbd_uri *u);

/* ---- sockets (sock.c) ---- */

/* Listen on a unix socket created with `mode` (0600 is the default
 * everywhere); an old socket file at the path is replaced. */
int sock_listen_unix(const char *path, mode_t mode);
int sock_connect_unix(const char *path);
/* Listen on host:port (host NULL or "" = all addresses, IPv4 and IPv6).
 * Fills fds (at most max) and returns how many, or -errno. */
int sock_listen_tcp(const char *host, const char *port, int *fds, int max);
int sock_connect_tcp(const char *host, const char *port);
/* QEMU-style addresses: "unix:PATH", "tcp:HOST:PORT" (HOST may be [v6]),
 * "fd:N" / "fd=N" (an inherited descriptor), or a bare PATH. */
enum sock_kind { SOCK_UNIX, SOCK_TCP, SOCK_FD };
struct sock_addr { enum sock_kind kind; char *path; char *host; char *port; int fd; };
int sock_addr_parse(const char *s, struct sock_addr *out);
void sock_addr_free(struct sock_addr *a);
/* Parse a descriptor number and check it is open. */
int sock_parse_fd(const char *s, int *fd);
/* Send/receive bytes together with up to `max` descriptors (SCM_RIGHTS). */
ssize_t sock_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
ssize_t sock_recv_fds(int sock, void *buf, size_t len, int *fds, int *nfds, int max);
/* Full reads and writes, retrying on EINTR and short counts: 0 on
 * success, -errno, or (read_full) -ENODATA at end of file. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int set_nonblock(int fd, bool on);
int set_cloexec(int fd, bool on);

/* ---- event loop (loop.c): epoll, with a wake-up from other threads ---- */

struct loop;
typedef void loop_fn(struct loop *l, int fd, unsigned events, void *opaque);
enum { LOOP_IN = 1, LOOP_OUT = 4, LOOP_ERR = 8, LOOP_HUP = 16 };

struct loop *loop_new(void);
void loop_free(struct loop *l);
int loop_add(struct loop *l, int fd, unsigned events, loop_fn *fn, void *opaque);
int loop_mod(struct loop *l, int fd, unsigned events);
int loop_del(struct loop *l, int fd);
/* Run one round, waiting at most timeout_ms (-1: forever).  Returns the
 * number of callbacks run, or -errno. */
int loop_run_once(struct loop *l, int timeout_ms);
/* Run until loop_stop(). */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* Interrupt a loop_run_once() from any thread; `fn` (if set) runs in the
 * loop thread. */
void loop_wake(struct loop *l);
void loop_on_wake(struct loop *l, void (*fn)(struct loop *l, void *opaque), void *opaque);

/* Timers on the loop, in milliseconds of CLOCK_MONOTONIC (loop_now_ms).
 * loop_run_once() waits no longer than the earliest armed timer and fires
 * the expired ones after the descriptor callbacks, each at most once per
 * round.  Loop thread only.  A callback may arm, disarm or free any timer,
 * its own included. */
struct loop_timer;
typedef void loop_timer_fn(void *opaque);
int64_t loop_now_ms(void);
/* A disarmed timer; freed by loop_timer_free() or loop_free(). */
struct loop_timer *loop_timer_new(struct loop *l, loop_timer_fn *fn, void *opaque);
/* One-shot at `when` (loop_now_ms() scale; in the past: the next round);
 * -1 disarms. */
void loop_timer_mod(struct loop_timer *t, int64_t when);
/* Periodic: every period_ms from now on (a late round skips the missed
 * ticks); 0 disarms. */
void loop_timer_every(struct loop_timer *t, int64_t period_ms);
bool loop_timer_armed(const struct loop_timer *t);
void loop_timer_free(struct loop_timer *t);
/* timeout_ms (-1: none) lowered to the wait until the earliest timer: for
 * callers that poll other things between rounds. */
int loop_timeout(struct loop *l, int timeout_ms);

/* ---- progress (progress.c): qemu-img's "-p" line "    (42.00/100%)" ---- */

struct progress {
	bool enabled;
	double last;      /* last printed percentage */
	double min_step;  /* print when it moved this much (qemu-img: 1.0) */
	int fd;           /* usually STDOUT */
};
void progress_init(struct progress *p, bool enabled, double min_step);
/* done out of total work units (total 0 counts as complete). */
void progress_update(struct progress *p, uint64_t done, uint64_t total);
void progress_end(struct progress *p);

/* ---- secrets (secret.c): --object secret,id=ID,data=..|file=..,format=raw|base64 ----
 * The bytes live in libsodium-guarded, mlock()ed memory and are wiped when
 * the store is freed. */

struct secret_store;
struct secret_store *secret_store_new(void);
void secret_store_free(struct secret_store *s);
/* Parse one --object argument of type secret and add it. */
int secret_add_object(struct secret_store *s, const char *objopt);
/* Find a secret: *data points at guarded memory owned by the store (with
 * a NUL after the last byte for convenience). */
int secret_lookup(const struct secret_store *s, const char *id,
		  const uint8_t **data, size_t *len);

/* ---- scatter/gather lists (iov.c) ---- */

struct iovec;
/* The bytes of iov[0..n). */
size_t iov_total(const struct iovec *iov, int n);
/* The iovec holding byte *skip of the list (*skip becomes the offset in
 * it); n when the list is shorter. */
int iov_seek(const struct iovec *iov, int n, size_t *skip);
/* Up to max iovecs in out covering at most len bytes from iov[i] + skip
 * (empty ones left out); returns how many. */
int iov_slice(const struct iovec *iov, int n, int i, size_t skip, size_t len,
	      struct iovec *out, int max);

/* ---- thread pool (pool.c) ---- */

struct pool;
struct pool *pool_new(int nthreads);   /* nthreads <= 0: the number of CPUs */
void pool_submit(struct pool *p, void (*fn)(void *arg), void *arg);
/* Wait until every submitted job has finished. */
void pool_wait(struct pool *p);
void pool_free(struct pool *p);        /* waits, then joins */
int pool_threads(const struct pool *p);
int cpu_count(void);

/* ======== the monitor: QMP and HMP ======== */

/*
 * The monitor: QEMU's machine protocol (QMP) and the human monitor
 * commands (HMP) layered on it, shared by vm-mon (the client) and vm-run
 * (the server, and its own stdio monitor).
 *
 * Wire protocol: QEMU's "QMP specification" (docs/interop/qmp-spec):
 * a greeting {"QMP": {"version", "capabilities"}}, capabilities
 * negotiation with qmp_capabilities, commands {"execute", "arguments",
 * "id"}, replies {"return"} or {"error": {"class", "desc"}} carrying the
 * request's id, and asynchronous events {"event", "data", "timestamp"}.
 *
 * The parts:
 *   qmp_stream_*  splits a byte stream into JSON texts (qmp-stream.c)
 *   qmp_client_*  a blocking client: connect, negotiate, execute, events
 *   hmp_*         human commands: a const table of {name, syntax, help,
 *                 translate-to-QMP, format-reply}; parsing, help, x/xp/p
 *   qmp_listen_*  opening -qmp/-monitor addresses (qmp-listen.c)
 *   qmp_server_*  a server on the lib/common event loop; the embedding
 *                 program supplies its command table and, for human
 *                 commands only it can run, a table of native ones
 *   hmp_server_*  the human monitor (-monitor) on sockets and stdio.
 *
 * Embedding (vm-run): fill a struct qmp_server_config with a const
 * table of {name, handler, argument schema}, the version, and
 * optionally native human commands and hmp_machine_ops; qmp_server_new()
 * on the machine's loop; qmp_server_listen() for each -qmp;
 * hmp_server_new() + hmp_server_listen() for each -monitor; raise events
 * with qmp_server_event() from any thread.
 *
 * Errors follow lib/common: -errno with one message recorded.  A QMP
 * error reply is -EREMOTEIO with the server's "desc" as the message.
 */

/* ---- JSON stream splitting (qmp-stream.c) ----
 * QMP has no framing: a message ends where its outermost braces (or
 * brackets) balance.  Bytes outside any object (a bare word, a number, a
 * stray '}') form a message of their own, so that the parser can answer
 * it with an error as QEMU does.  A message longer than QMP_MAX_MSG is an
 * error (-EMSGSIZE) and the splitter resynchronises at the next newline. */

#define QMP_MAX_MSG (4u << 20)

struct qmp_stream {
	char *buf;          /* bytes received and not yet returned */
	size_t len, cap;
	size_t pos;         /* how far buf has been scanned */
	size_t start;       /* start of the current message, or SIZE_MAX */
	int depth;          /* brace/bracket nesting at pos */
	bool in_str, esc;   /* inside a string, after a backslash */
	bool bare;          /* the current message is a bare token */
	bool skipping;      /* discarding an overlong message up to '\n' */
};

void qmp_stream_init(struct qmp_stream *s);
void qmp_stream_free(struct qmp_stream *s);
void qmp_stream_feed(struct qmp_stream *s, const void *data, size_t len);
/* Next complete message: 1 with *msg (malloc'd, NUL-terminated) and
 * *len; 0 when more bytes are needed; -EMSGSIZE for an overlong one
 * (reported once; the stream stays usable). */
int qmp_stream_next(struct qmp_stream *s, char **msg, size_t *len);
/* Count the complete messages in text and say whether it ends inside one
 * (used by vm-mon --json to know how many replies a line asks for). */
size_t qmp_stream_count(const char *text, bool *incomplete);

/* ---- client (qmp-client.c) ---- */

struct qmp_client;

/* Connect to "unix:PATH", "tcp:HOST:PORT", "fd:N" or a bare PATH and read
 * the greeting (waiting at most timeout_ms, -1 forever). */
int qmp_client_open(const char *addr, int timeout_ms, struct qmp_client **out);
/* The same over an already connected descriptor (taken over). */
int qmp_client_open_fd(int fd, int timeout_ms, struct qmp_client **out);
void qmp_client_close(struct qmp_client *c);
/* The greeting's "QMP" member (borrowed). */
json_t *qmp_client_greeting(const struct qmp_client *c);
/* Wait at most timeout_ms for each reply (-1, the default: forever). */
void qmp_client_set_timeout(struct qmp_client *c, int timeout_ms);
/* qmp_capabilities with no capabilities enabled. */
int qmp_client_negotiate(struct qmp_client *c);
/* Run a command (args: an object, stolen, or NULL).  0 and *ret (a new
 * reference to the "return" member; ret may be NULL); -EREMOTEIO for an
 * error reply (message = its desc, class in qmp_client_error_class());
 * -ECONNRESET if the server closed the connection first; -ETIMEDOUT.
 * Events read while waiting are queued for qmp_client_event(). */
int qmp_client_execute(struct qmp_client *c, const char *cmd, json_t *args, json_t **ret);
/* The class of the last error reply ("GenericError", ...). */
const char *qmp_client_error_class(const struct qmp_client *c);
/* Raw traffic: send bytes as they are, read the next message (queued
 * events are not consulted).  recv: 0 and *msg, -ETIMEDOUT, -ECONNRESET
 * at end of stream, -EPROTO for a reply that is not JSON. */
int qmp_client_send_raw(struct qmp_client *c, const char *text, size_t len);
int qmp_client_recv(struct qmp_client *c, int timeout_ms, json_t **msg);
/* The next event: a queued one first, else from the wire.  0 and *ev,
 * -ETIMEDOUT, -ECONNRESET when the server went away. */
int qmp_client_event(struct qmp_client *c, int timeout_ms, json_t **ev);

/* ---- human commands (hmp.c, hmp-cmds.c, hmp-info.c, hmp-mem.c) ---- */

/* Output of a human command: a growing string. */
struct hmp_out { char *buf; size_t len, cap; };
void hmp_printf(struct hmp_out *o, const char *fmt, ...) PRINTF(2, 3);
void hmp_out_free(struct hmp_out *o);

/* QEMU's "/fmt": /[count][format][size], format one of x d u o c i,
 * size b h w g (1, 2, 4, 8 bytes). */
struct hmp_fmt { unsigned count; char format; int size; };

#define HMP_MAX_ARGS 6

/* One parsed command line. */
struct hmp_args {
	const char *name;                /* the command as typed ("c", "info") */
	const char *line;                /* the whole line, trimmed */
	struct hmp_fmt fmt;              /* for commands taking /fmt */
	int n;                           /* parameters in the syntax */
	const char *key[HMP_MAX_ARGS];   /* their names */
	char *val[HMP_MAX_ARGS];         /* values; NULL when optional and absent */
};
/* The value of parameter `key`, or NULL when absent. */
const char *hmp_arg(const struct hmp_args *a, const char *key);

struct hmp_session;

/*
 * A human command.  `name` lists aliases separated by '|' ("c|cont"), and
 * "info X" commands are named with their subcommand ("info status").
 * `params` is the argument syntax, also shown by help:
 *     /fmt        a QEMU /count-format-size suffix on the command name
 *     NAME        a word            NAME?   an optional word
 *     NAME...     the rest of the line (NAME...? optional)
 *     -f          an optional flag (its value is "on" when given)
 * `translate` builds the QMP request: *cmd (static string) and *args (a
 * new object or NULL); returns 0 or -errno with a message.  Required
 * unless `local` always succeeds.
 * `format` prints the reply's "return" value in QEMU's human layout;
 * NULL prints nothing.
 * `local`, optional, runs the command without a QMP round trip (help, or
 * x/xp/p when the session has hmp_machine_ops); it returns -ENOTSUP when
 * this session cannot, and `translate` is used instead.
 */
struct hmp_cmd {
	const char *name;
	const char *params;
	const char *help;
	int (*translate)(const struct hmp_args *a, const char **cmd, json_t **args);
	int (*format)(const struct hmp_args *a, json_t *ret, struct hmp_out *out);
	int (*local)(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *out);
};

/* The shared table (hmp-cmds.c). */
extern const struct hmp_cmd hmp_cmds[];
extern const size_t hmp_cmd_count;

/* Human commands an embedding program runs itself (vm-run: info
 * registers, info mtree, info jit, hostfwd_add, ...); looked up before
 * the shared table.  `run` prints into out and returns 0 or -errno. */
struct hmp_native {
	const char *name;
	const char *params;
	const char *help;
	int (*run)(void *opaque, const struct hmp_args *a, struct hmp_out *out);
};

/* What x/xp/p need from a machine, when the session runs them itself.
 * Both optional.  read_mem: copy len bytes at addr (guest-physical when
 * phys, else virtual through the current CPU's page tables); 0 or
 * -errno.  get_reg: the value of register `name` ("eax", "pc", "rip"),
 * 0 or -ENOENT. */
struct hmp_machine_ops {
	int (*read_mem)(void *opaque, uint64_t addr, void *buf, size_t len, bool phys);
	int (*get_reg)(void *opaque, const char *name, uint64_t *val);
};

/* Run one QMP command for the human layer (args: an object or NULL,
 * stolen): 0 and *ret (new reference, may be NULL for {}), or -errno
 * with the message recorded. */
typedef int hmp_qmp_fn(void *opaque, const char *cmd, json_t *args, json_t **ret);

struct hmp_session {
	hmp_qmp_fn *qmp;                 /* how QMP commands are run */
	void *opaque;                    /* for qmp */
	void *machine;                   /* for native and mach (init: opaque) */
	const struct hmp_native *native; /* may be NULL */
	size_t native_count;
	const struct hmp_machine_ops *mach;  /* may be NULL */
	bool no_passthrough;             /* a server: never send human-monitor-command */
	char last_format;                /* QEMU remembers x's last format and size */
	int last_size;
};

void hmp_session_init(struct hmp_session *s, hmp_qmp_fn *qmp, void *opaque);
/* Run one command line.  0 with the output in *out (malloc'd, maybe ""),
 * or -errno with the message recorded ("unknown command: 'foo'", the
 * server's error for a failed QMP command) and in *out whatever was
 * printed before the failure.  The caller frees *out in both cases. */
int hmp_run(struct hmp_session *s, const char *line, char **out);

/* Pieces for tests and the server. */
const struct hmp_cmd *hmp_find(const char *name, const char *sub);
/* Parse a line against a command's syntax into a (trimmed, split) args;
 * hmp_args_free releases it. */
int hmp_parse(const struct hmp_session *s, const char *line,
	      const struct hmp_cmd **cmd, const struct hmp_native **native,
	      struct hmp_args *a);
void hmp_args_free(struct hmp_args *a);
/* Evaluate a monitor expression (numbers, + - * / % & | ^ ~ ( ), and
 * $reg through the session's get_reg). */
int hmp_eval(const struct hmp_session *s, const char *expr, uint64_t *val);
/* QEMU's memory dump layout for x/xp of bytes already read. */
void hmp_dump(struct hmp_out *o, uint64_t addr, const uint8_t *mem, size_t len,
	      const struct hmp_fmt *f);
/* QEMU's p/print of one value. */
void hmp_print_value(struct hmp_out *o, uint64_t v, char format);

/* Building blocks of the shared table, for embedders' own tables too:
 * x, xp and print run locally (hmp-mem.c); formatters of QMP replies in
 * QEMU's layout (hmp-info.c); hmp_fmt_text prints a human-monitor-command
 * reply without its "\r". */
int hmp_local_x(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o);
int hmp_local_xp(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o);
int hmp_local_print(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o);
typedef int hmp_format_fn(const struct hmp_args *a, json_t *ret, struct hmp_out *o);
hmp_format_fn hmp_fmt_status, hmp_fmt_version, hmp_fmt_name, hmp_fmt_kvm, hmp_fmt_cpus,
	hmp_fmt_chardev, hmp_fmt_blockstats, hmp_fmt_block, hmp_fmt_pci, hmp_fmt_text;

/* ---- monitor sockets (qmp-listen.c) ----
 * What -qmp and -monitor name: "unix:PATH", "tcp:HOST:PORT" or "fd:N",
 * with QEMU's ",server=on,wait=off" (wait=on is refused).  Opens the
 * listening sockets (TCP: one per address family), or takes an fd:N
 * that is already connected (`connected`: it is the one client). */
struct qmp_listen {
	int fd[4];
	int n;
	bool connected;
	char *path;        /* the unix socket to unlink when done (malloc'd) */
};
int qmp_listen_open(const char *spec, struct qmp_listen *out);

/* ---- server (qmp-server.c) ---- */

struct qmp_server;

/*
 * A command of the embedding program.  `args` is its argument schema:
 * "name:T,*opt:T" with T one of s (string), i (integer), n (number), b
 * (boolean), o (object), a (array), any; a leading '*' marks an optional
 * argument.  Arguments missing, mistyped or unknown are answered with
 * QEMU's GenericError messages before the handler runs.
 * The handler returns 0 with *ret set (a new reference; NULL means {}),
 * or -errno with a message recorded; the error class comes from the
 * errno: -ENODEV DeviceNotFound, -ENOTCONN DeviceNotActive, -ENOSYS
 * CommandNotFound, anything else GenericError.
 */
typedef int qmp_cmd_fn(void *opaque, json_t *args, json_t **ret);
struct qmp_cmd {
	const char *name;
	qmp_cmd_fn *fn;
	const char *args;
};

struct qmp_server_config {
	const struct qmp_cmd *cmds;      /* the embedder's commands */
	size_t cmd_count;
	void *opaque;                    /* for handlers, hmp native, mach */
	int major, minor, micro;         /* the greeting's and query-version's */
	const char *package;
	const struct hmp_native *hmp;    /* human commands only it can run */
	size_t hmp_count;
	const struct hmp_machine_ops *mach;
};

/* Built in: qmp_capabilities, query-commands, query-version, getfd,
 * closefd, human-monitor-command (through an hmp_session whose QMP calls
 * are dispatched in-process). */
struct qmp_server *qmp_server_new(struct loop *l, const struct qmp_server_config *cfg);
/* Flushes what it can to clients (briefly), closes them and the
 * listeners. */
void qmp_server_free(struct qmp_server *s);
/* Listen on "unix:PATH", "tcp:HOST:PORT" or "fd:N" (a listening socket,
 * or a connected one which becomes a client). */
int qmp_server_listen(struct qmp_server *s, const char *addr);
/* Serve one already connected descriptor (taken over). */
int qmp_server_add_client(struct qmp_server *s, int fd);
/* Broadcast an event to negotiated clients (data stolen, may be NULL).
 * Safe from any thread; events raised by a command reach its client
 * before the command's reply. */
void qmp_server_event(struct qmp_server *s, const char *name, json_t *data);
/* In-process use (vm-run's stdio monitor): run a command or a human
 * command line as a client would. */
int qmp_server_execute(struct qmp_server *s, const char *cmd, json_t *args, json_t **ret);
int qmp_server_hmp(struct qmp_server *s, const char *line, char **out);
/* A descriptor a client passed with getfd (SCM_RIGHTS, QEMU's getfd
 * and closefd are built in): ownership moves to the caller.  -ENOENT
 * when no descriptor has that name. */
int qmp_server_take_fd(struct qmp_server *s, const char *name);
/* Connected clients (for tests and statistics). */
int qmp_server_client_count(struct qmp_server *s);

/* ---- the human monitor on sockets and terminals (hmp-server.c) ----
 * QEMU's -monitor: a banner ("BANNER monitor - type 'help' ..."), the
 * "(qemu) " prompt, one command per line run through
 * qmp_server_hmp(), output with "\r\n" line ends. */
struct hmp_server;
struct hmp_server *hmp_server_new(struct loop *l, struct qmp_server *qmp, const char *banner);
/* Listen as qmp_server_listen() does ("unix:PATH,server=on,wait=off"). */
int hmp_server_listen(struct hmp_server *h, const char *spec);
/* Serve a client reading from in and writing to out (the same socket, or
 * STDIN_FILENO and STDOUT_FILENO, which are never closed). */
int hmp_server_add(struct hmp_server *h, int in, int out);
void hmp_server_free(struct hmp_server *h);

#endif
