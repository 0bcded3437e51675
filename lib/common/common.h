/*
 * lib/common: what every tool of the suite shares and nothing more.
 *
 * Errors, logging, option and size parsing, JSON (through jansson), NBD
 * URIs, sockets and fd passing, an epoll event loop, a progress
 * indicator, secrets and a thread pool.  Nothing here knows about image
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

/* ---- thread pool (pool.c) ---- */

struct pool;
struct pool *pool_new(int nthreads);   /* nthreads <= 0: the number of CPUs */
void pool_submit(struct pool *p, void (*fn)(void *arg), void *arg);
/* Wait until every submitted job has finished. */
void pool_wait(struct pool *p);
void pool_free(struct pool *p);        /* waits, then joins */
int pool_threads(const struct pool *p);
int cpu_count(void);

#endif
