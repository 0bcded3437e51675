/*
 * lib/fmt/nbd.h: the NBD protocol, shared by the vm-nbd server and the
 * NBD client of the block layer.
 *
 * Follows the NBD protocol specification (NetworkBlockDevice/nbd,
 * doc/proto.md): fixed newstyle negotiation, the transmission phase with
 * simple and structured replies, and metadata contexts (base:allocation
 * and QEMU's qemu:allocation-depth).  Every number on the wire is big
 * endian; the helpers below put and get them from byte buffers, so no
 * struct is ever sent as it lies in memory.
 *
 * This is a temporary second header of lib/fmt; it will be folded into
 * fmt.h.
 */
#ifndef VM_FMT_NBD_H
#define VM_FMT_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- handshake (proto.md "Handshake", "Values") ---- */

#define NBD_DEFAULT_PORT "10809"
#define NBD_MAGIC 0x4e42444d41474943ULL      /* "NBDMAGIC" */
#define NBD_IHAVEOPT 0x49484156454F5054ULL   /* "IHAVEOPT" */
#define NBD_OLDSTYLE_MAGIC 0x00420281861253ULL
#define NBD_REP_MAGIC 0x3e889045565a9ULL

/* handshake flags (server) and client flags */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE NBD_FLAG_FIXED_NEWSTYLE
#define NBD_FLAG_C_NO_ZEROES NBD_FLAG_NO_ZEROES

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_ROTATIONAL (1u << 4)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)
#define NBD_FLAG_SEND_RESIZE (1u << 9)
#define NBD_FLAG_SEND_CACHE (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO (1u << 11)

/* options */
enum {
	NBD_OPT_EXPORT_NAME = 1,
	NBD_OPT_ABORT = 2,
	NBD_OPT_LIST = 3,
	NBD_OPT_PEEK_EXPORT = 4,
	NBD_OPT_STARTTLS = 5,
	NBD_OPT_INFO = 6,
	NBD_OPT_GO = 7,
	NBD_OPT_STRUCTURED_REPLY = 8,
	NBD_OPT_LIST_META_CONTEXT = 9,
	NBD_OPT_SET_META_CONTEXT = 10,
	NBD_OPT_EXTENDED_HEADERS = 11,
};

/* option replies; errors have bit 31 set */
#define NBD_REP_ERR(n) ((1u << 31) | (n))
enum {
	NBD_REP_ACK = 1,
	NBD_REP_SERVER = 2,
	NBD_REP_INFO = 3,
	NBD_REP_META_CONTEXT = 4,
};
#define NBD_REP_ERR_UNSUP NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG NBD_REP_ERR(9)

/* NBD_REP_INFO types */
enum {
	NBD_INFO_EXPORT = 0,
	NBD_INFO_NAME = 1,
	NBD_INFO_DESCRIPTION = 2,
	NBD_INFO_BLOCK_SIZE = 3,
};

/* ---- transmission ---- */

#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

#define NBD_REQUEST_SIZE 28      /* magic, flags, type, cookie, offset, length */
#define NBD_SIMPLE_REPLY_SIZE 16 /* magic, error, cookie */
#define NBD_CHUNK_SIZE 20        /* magic, flags, type, cookie, length */
#define NBD_OPT_HEADER_SIZE 16   /* IHAVEOPT, option, length */
#define NBD_REP_HEADER_SIZE 20   /* magic, option, type, length */

enum {
	NBD_CMD_READ = 0,
	NBD_CMD_WRITE = 1,
	NBD_CMD_DISC = 2,
	NBD_CMD_FLUSH = 3,
	NBD_CMD_TRIM = 4,
	NBD_CMD_CACHE = 5,
	NBD_CMD_WRITE_ZEROES = 6,
	NBD_CMD_BLOCK_STATUS = 7,
};

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

#define NBD_REPLY_FLAG_DONE (1u << 0)

enum {
	NBD_REPLY_TYPE_NONE = 0,
	NBD_REPLY_TYPE_OFFSET_DATA = 1,
	NBD_REPLY_TYPE_OFFSET_HOLE = 2,
	NBD_REPLY_TYPE_BLOCK_STATUS = 5,
	NBD_REPLY_TYPE_ERROR = (1 << 15) + 1,
	NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2,
};
#define NBD_REPLY_TYPE_IS_ERR(t) (((t) & (1u << 15)) != 0)

/* error values (proto.md "Error values") */
enum {
	NBD_EPERM = 1,
	NBD_EIO = 5,
	NBD_ENOMEM = 12,
	NBD_EINVAL = 22,
	NBD_ENOSPC = 28,
	NBD_EOVERFLOW = 75,
	NBD_ENOTSUP = 95,
	NBD_ESHUTDOWN = 108,
};

/* base:allocation flags */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)

#define NBD_CONTEXT_BASE_ALLOCATION "base:allocation"
#define NBD_CONTEXT_QEMU_DEPTH "qemu:allocation-depth"

/* limits: strings (names, messages) and the default payload maximum */
#define NBD_MAX_STRING 4096
#define NBD_MAX_PAYLOAD (32u << 20)

/* ---- byte order helpers ---- */

static inline void nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void nbd_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static inline void nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, v >> 32);
	nbd_put32(p + 4, (uint32_t)v);
}

static inline uint16_t nbd_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t nbd_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

/* ---- shared helpers (nbd-proto.c) ---- */

/* Map a host errno (positive) to the NBD error that carries it, and
 * back (unknown NBD errors read as EINVAL, as the spec asks). */
uint32_t nbd_errno_to_wire(int err);
int nbd_wire_to_errno(uint32_t nbd_err);
/* Names for logs: "NBD_OPT_GO", "NBD_CMD_READ", "NBD_REP_ERR_UNSUP"... */
const char *nbd_opt_name(uint32_t opt);
const char *nbd_cmd_name(uint16_t cmd);
const char *nbd_rep_name(uint32_t rep);

/* ---- the client (nbd-client*.c) ----
 *
 * One struct nbd_client is one connection in transmission phase.  Every
 * I/O function may be called from several threads at once: requests are
 * sent under a lock, each caller sleeps until its own reply arrives (a
 * reader thread matches replies to requests by cookie), so many requests
 * are in flight together and replies may come back in any order.  All
 * functions return 0 (or a count) on success and -errno after err_set().
 * A server error arrives as the matching errno (EIO, EINVAL, ENOSPC,
 * EPERM, ENOTSUP, ...); a broken connection fails every pending and
 * later request with -EIO (-ESHUTDOWN when the server is shutting down).
 */

struct nbd_client;

struct nbd_client_opts {
	const char *export;      /* export name ("" = default) */
	bool want_depth;         /* also negotiate qemu:allocation-depth */
	bool no_structured;      /* don't ask for structured replies (tests) */
};

/* Connect to an NBD URI (nbd://host[:port]/export,
 * nbd+unix:///export?socket=PATH); the export in the URI wins over
 * opts->export.  opts may be NULL. */
int nbd_client_open_uri(const char *uri, const struct nbd_client_opts *opts,
			struct nbd_client **out);
/* Run the handshake on an already-connected stream socket (a socketpair
 * from vm-run, an inherited fd).  The client owns fd afterwards, also on
 * failure. */
int nbd_client_open_fd(int fd, const struct nbd_client_opts *opts,
		       struct nbd_client **out);
/* Send NBD_CMD_DISC after the requests in flight, close, free. */
void nbd_client_close(struct nbd_client *c);

uint64_t nbd_client_size(const struct nbd_client *c);
/* NBD_FLAG_* transmission flags as negotiated (READ_ONLY, SEND_TRIM...). */
uint16_t nbd_client_flags(const struct nbd_client *c);
bool nbd_client_read_only(const struct nbd_client *c);
/* Block size constraints from NBD_INFO_BLOCK_SIZE (1, 4096, 32M when the
 * server sent none).  Requests are split to max_payload internally. */
void nbd_client_block_size(const struct nbd_client *c, uint32_t *min,
			   uint32_t *preferred, uint32_t *max_payload);
/* True when base:allocation (and qemu:allocation-depth) were agreed. */
bool nbd_client_has_block_status(const struct nbd_client *c);
bool nbd_client_has_depth(const struct nbd_client *c);

/* I/O.  flags: NBD_CMD_FLAG_FUA on writes, NBD_CMD_FLAG_NO_HOLE and
 * NBD_CMD_FLAG_FAST_ZERO on write_zeroes.  Lengths may be any size; the
 * client splits them to the server's maximum payload. */
int nbd_client_read(struct nbd_client *c, void *buf, uint64_t offset, size_t len);
int nbd_client_write(struct nbd_client *c, const void *buf, uint64_t offset,
		     size_t len, uint32_t flags);
int nbd_client_write_zeroes(struct nbd_client *c, uint64_t offset,
			    uint64_t len, uint32_t flags);
int nbd_client_trim(struct nbd_client *c, uint64_t offset, uint64_t len,
		    uint32_t flags);
int nbd_client_flush(struct nbd_client *c);
int nbd_client_cache(struct nbd_client *c, uint64_t offset, uint64_t len);

/* One extent of block status. */
struct nbd_extent {
	uint64_t offset;
	uint64_t length;
	uint32_t flags;   /* NBD_STATE_HOLE | NBD_STATE_ZERO (base:allocation) */
	uint32_t depth;   /* qemu:allocation-depth: 0 unallocated, 1 this
			   * layer, 2 its backing file...; 1 if not agreed */
};
/* Status of [offset, offset+len): fills at most max extents, the first
 * starting at offset, consecutive, and returns how many (>= 1).  When the
 * server has no block status the whole range is reported as data
 * (flags 0, depth 1). */
int nbd_client_block_status(struct nbd_client *c, uint64_t offset,
			    uint64_t len, struct nbd_extent *ext, int max);

/* ---- the handshake of the client (nbd-client-handshake.c) ----
 * What nbd_client_open_* negotiates before transmission starts; exposed
 * for tests and for listing tools. */

struct nbd_negotiated {
	uint64_t size;
	uint16_t flags;                 /* transmission flags */
	uint32_t min_block, pref_block, max_payload;
	bool structured;
	uint32_t ctx_alloc, ctx_depth;  /* context ids */
	bool has_alloc, has_depth;
};
/* Run the client handshake on fd (blocking) up to transmission. */
int nbd_client_handshake(int fd, const struct nbd_client_opts *o,
			 struct nbd_negotiated *n);
/* Connect to the server an NBD URI names; returns the socket.  *export
 * (if non-NULL) gets the URI's export name, malloc'd. */
int nbd_client_connect_uri(const char *uri, char **export);

/* ---- the block-layer driver (nbd-driver.c) ----
 * The `nbd` entry of lib/fmt's driver table: claims NBD URIs. */
struct fmt_driver;
extern const struct fmt_driver fmt_nbd_driver;

#endif
