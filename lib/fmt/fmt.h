/*
 * lib/fmt: the block layer.  One driver per image format (raw, qcow2, and
 * the NBD client) behind one ops table, opened by file name with the
 * format probed from the content (never the name) or forced, with backing
 * chains of any depth, QEMU-compatible image locking and many requests in
 * flight from several threads.
 *
 * Conventions: functions return 0 (or a count) on success and -errno after
 * recording one message with err_set().  Offsets and lengths are bytes of
 * the guest-visible (virtual) disk unless said otherwise.
 *
 * Thread safety: fmt_read, fmt_write, fmt_write_zeroes, fmt_discard,
 * fmt_flush, fmt_block_status, fmt_compress (each thread with its own
 * struct fmt_cdata), fmt_write_compressed and fmt_copy_range may be called
 * on one image from many threads at once (raw uses pread/pwrite; qcow2
 * locks its metadata internally).  Everything else (open, close, truncate, snapshots, check,
 * amend, backing changes) needs the image to itself.
 */
#ifndef VM_FMT_H
#define VM_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvlist;
struct json_t;
struct secret_store;
struct fmt_image;

/* ---- opening ---- */

enum fmt_open_flag {
	FMT_O_RDWR = 1u << 0,        /* open for writing (default read-only) */
	FMT_O_NO_BACKING = 1u << 1,  /* do not open the backing file */
	FMT_O_SHARE = 1u << 2,       /* -U: ignore other users' locks, take none */
	FMT_O_NOCACHE = 1u << 3,     /* cache=none: O_DIRECT on the image files */
	FMT_O_CHECK = 1u << 4,       /* for check: tolerate a dirty/corrupt image,
					no repair on open */
	FMT_O_NO_LOCK = 1u << 5,     /* locking=off */
	FMT_O_UNMAP = 1u << 6,       /* discard=unmap: write_zeroes may punch holes */
	FMT_O_UNSAFE = 1u << 7,      /* cache=unsafe: flushes do nothing */
};

struct fmt_open_opts {
	const char *format;          /* NULL: probe the content */
	unsigned flags;              /* enum fmt_open_flag */
	const char *snapshot;        /* open this internal snapshot (id or name),
					read-only (vm-nbd -l, convert -l) */
	const struct kvlist *opts;   /* driver options (--image-opts keys minus
					driver= and file.filename=) or NULL */
	const struct secret_store *secrets; /* --object secret, or NULL */
};

/* Open `filename` (a path, or an NBD URI when an nbd driver is
 * registered).  Backing files are opened read-only, recursively, relative
 * to the directory of the image naming them; loops are refused. */
int fmt_open(const char *filename, const struct fmt_open_opts *o,
	     struct fmt_image **out);
/* QEMU's --image-opts form: "driver=qcow2,file.filename=a.qcow2,..." (or
 * "filename=" / "file=").  Other keys go to the driver as options. */
int fmt_open_image_opts(const char *optstr, unsigned flags,
			const struct secret_store *secrets, struct fmt_image **out);
/* Flush (if writable) and close the whole chain.  Returns the flush result. */
int fmt_close(struct fmt_image *img);

const char *fmt_filename(const struct fmt_image *img);
const char *fmt_format(const struct fmt_image *img);     /* "qcow2" */
uint64_t fmt_size(const struct fmt_image *img);          /* virtual size */
bool fmt_writable(const struct fmt_image *img);
struct fmt_image *fmt_backing(const struct fmt_image *img); /* or NULL */
/* Backing file name as recorded in the image and its format (or NULL),
 * and the path it resolves to. */
const char *fmt_backing_name(const struct fmt_image *img);
const char *fmt_backing_format(const struct fmt_image *img);
const char *fmt_backing_path(const struct fmt_image *img);
/* Cluster size of formats that have one, else 0. */
uint32_t fmt_cluster_size(const struct fmt_image *img);
/* Bytes the image files occupy on the host (st_blocks * 512), or -errno. */
int64_t fmt_allocated_size(const struct fmt_image *img);

/* ---- I/O ---- */

enum fmt_write_flag {
	FMT_W_COMPRESSED = 1u << 0,  /* compress (whole clusters only; qcow2) */
	FMT_W_MAY_UNMAP = 1u << 1,   /* write_zeroes: may deallocate */
	FMT_W_NO_FALLBACK = 1u << 2, /* write_zeroes: -ENOTSUP if not cheap */
};

int fmt_read(struct fmt_image *img, void *buf, uint64_t off, size_t len);
int fmt_write(struct fmt_image *img, const void *buf, uint64_t off, size_t len,
	      unsigned flags);
int fmt_write_zeroes(struct fmt_image *img, uint64_t off, uint64_t len,
		     unsigned flags);
int fmt_discard(struct fmt_image *img, uint64_t off, uint64_t len);
int fmt_flush(struct fmt_image *img);
/* True if the buffer holds only zero bytes. */
bool fmt_is_zero(const void *buf, size_t len);

/* Compressed writes in two steps.  Compressing is the slow part, so
 * fmt_compress may run on many threads at once and changes nothing in the
 * image; fmt_write_compressed then stores the result, packed tightly
 * after the compressed data written before it (call it in guest-offset
 * order for the layout qemu-img makes).  A struct fmt_cdata starts zeroed
 * and is reused from call to call (it keeps the compressor's state);
 * release it with fmt_cdata_free. */
struct fmt_cdata {
	uint64_t off;           /* guest offset of the first cluster */
	size_t n;               /* clusters */
	uint32_t cluster_size;
	uint8_t *buf;           /* the clusters' bytes, back to back */
	uint32_t *len;          /* bytes of each cluster in buf: 0 = leave the
				   cluster alone (it was zero and skipped),
				   cluster_size = store it uncompressed */
	const uint8_t *want;    /* set by the caller, or NULL: clusters i with
				   want[i] == 0 get len 0 unread */
	size_t cap, buf_cap;    /* allocated entries of len, bytes of buf */
	void *ctx;              /* the driver's compressor state */
	void (*ctx_free)(void *ctx);
};
/* Compress [off, off+len) (whole clusters; the last may be cut short by
 * the end of the image).  skip_zero: all-zero clusters get len 0. */
int fmt_compress(struct fmt_image *img, const void *buf, uint64_t off,
		 size_t len, bool skip_zero, struct fmt_cdata *cd);
int fmt_write_compressed(struct fmt_image *img, const struct fmt_cdata *cd);
void fmt_cdata_free(struct fmt_cdata *cd);

/* Copy len bytes from src at soff to dst at doff inside the kernel
 * (copy_file_range) when both are files used as is (raw); -ENOTSUP
 * (without a message) when that does not apply. */
int fmt_copy_range(struct fmt_image *src, uint64_t soff, struct fmt_image *dst,
		   uint64_t doff, uint64_t len);

/* Block status of one extent.  ALLOCATED: this layer decides the content
 * (else it comes from the backing file); DATA: bytes are stored; ZERO:
 * reads return zeros; OFFSET: host_offset is where the bytes sit in
 * `file` (uncompressed, contiguous for the whole extent). */
enum fmt_status {
	FMT_ST_DATA = 1u << 0,
	FMT_ST_ZERO = 1u << 1,
	FMT_ST_ALLOCATED = 1u << 2,
	FMT_ST_OFFSET = 1u << 3,
	FMT_ST_COMPRESSED = 1u << 4,
};

struct fmt_extent {
	uint64_t length;      /* bytes from the queried offset, > 0 */
	unsigned status;      /* enum fmt_status */
	int depth;            /* layer that decided: 0 = this image; for an
				 extent no layer allocates, the depth of the
				 bottom of the chain */
	uint64_t host_offset; /* valid with FMT_ST_OFFSET */
	const char *file;     /* host file of host_offset */
};

/* Status of [off, off + len) as far as it stays uniform (ext->length may be
 * shorter than len).  With `chain`, unallocated extents are resolved
 * through the backing chain (depth counts the layers). */
int fmt_block_status(struct fmt_image *img, uint64_t off, uint64_t len,
		     bool chain, struct fmt_extent *ext);
/* Depth of the layer that allocates [off, ...): NBD's
 * qemu:allocation-depth; 0 = unallocated in the whole chain, 1 = top. */
int fmt_allocation_depth(struct fmt_image *img, uint64_t off, uint64_t len,
			 uint64_t *run);

/* ---- size ---- */

enum fmt_prealloc { FMT_PREALLOC_OFF, FMT_PREALLOC_METADATA,
		    FMT_PREALLOC_FALLOC, FMT_PREALLOC_FULL };
int fmt_prealloc_parse(const char *s, enum fmt_prealloc *out);
const char *fmt_prealloc_name(enum fmt_prealloc p);

int fmt_truncate(struct fmt_image *img, uint64_t size, enum fmt_prealloc p,
		 bool shrink);

/* ---- creation ---- */

/* One creation option of a driver, listed by `create -o help`. */
enum fmt_opt_type { FMT_OPT_STRING, FMT_OPT_SIZE, FMT_OPT_BOOL, FMT_OPT_NUMBER };
struct fmt_create_opt {
	const char *name;
	enum fmt_opt_type type;
	const char *help;
	const char *dflt;     /* printed in "Formatting ..." when not given; NULL: omitted */
};

/* Create an image.  `opts` are -o options (size, backing_file, backing_fmt,
 * cluster_size, ...); `size` is used when opts has none (UINT64_MAX: take
 * it from the backing file).  On success *summary (if non-NULL) is
 * qemu-img's "fmt=qcow2 cluster_size=65536 ... size=N ..." text. */
int fmt_create(const char *format, const char *filename, uint64_t size,
	       const struct kvlist *opts, const struct secret_store *secrets,
	       char **summary);
/* The creation options of a format (NULL-name terminated), or NULL. */
const struct fmt_create_opt *fmt_create_options(const char *format);
/* Names of the registered drivers, for help and error messages. */
const char *fmt_driver_name(size_t i);  /* NULL past the end */
bool fmt_format_known(const char *format);

/* ---- check and repair ---- */

enum fmt_fix { FMT_FIX_LEAKS = 1, FMT_FIX_ERRORS = 2 };

struct fmt_check {
	int corruptions, leaks, check_errors;
	int corruptions_fixed, leaks_fixed;
	bool has_alloc_info;         /* the counts below are valid */
	uint64_t total_clusters, allocated_clusters;
	uint64_t fragmented_clusters, compressed_clusters;
	uint64_t image_end_offset;   /* 0: unknown */
	/* Each problem found, one line (e.g. "Leaked cluster 5 refcount=1
	 * reference=0"); may be NULL. */
	void (*message)(void *opaque, const char *line);
	void *opaque;
};
int fmt_check(struct fmt_image *img, unsigned fix, struct fmt_check *c);

/* ---- amend, backing changes ---- */

/* Change creation options of an existing image (compat, lazy_refcounts,
 * refcount_bits, backing_file, backing_fmt, size). */
int fmt_amend(struct fmt_image *img, const struct kvlist *opts, bool force);
/* Record a new backing file name (NULL: none) without touching data. */
int fmt_set_backing(struct fmt_image *img, const char *backing,
		    const char *backing_fmt);
/* Discard everything in the top layer (commit without -d). */
int fmt_make_empty(struct fmt_image *img);

/* ---- internal snapshots ---- */

struct fmt_snapshot {
	char *id;               /* "1", "2", ... */
	char *name;             /* tag */
	uint64_t vm_state_size; /* bytes of the VM-state area */
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t icount;        /* UINT64_MAX: none recorded */
	uint64_t disk_size;     /* virtual size when taken */
};

/* List snapshots; free with fmt_snapshots_free(). */
int fmt_snapshot_list(struct fmt_image *img, struct fmt_snapshot **list,
		      size_t *n);
void fmt_snapshots_free(struct fmt_snapshot *list, size_t n);
/* Take a snapshot of the current state: sn->name required, sn->id NULL
 * (assigned) or given; vm_state_size bytes already written to the VM-state
 * area become part of it. */
int fmt_snapshot_create(struct fmt_image *img, const struct fmt_snapshot *sn);
/* Revert the image to a snapshot, found by id first, then by name. */
int fmt_snapshot_apply(struct fmt_image *img, const char *id_or_name);
int fmt_snapshot_delete(struct fmt_image *img, const char *id_or_name);
/* qemu-img's snapshot table (also HMP's info snapshots): the heading
 * line and one row (malloc'd, free it), both without the newline. */
const char *fmt_snapshot_heading(void);
char *fmt_snapshot_row(const struct fmt_snapshot *sn);
/* The VM-state area of the current state (saved into the next snapshot by
 * fmt_snapshot_create; after apply, holds the snapshot's state). */
int fmt_vmstate_write(struct fmt_image *img, const void *buf, uint64_t off,
		      size_t len);
int fmt_vmstate_read(struct fmt_image *img, void *buf, uint64_t off, size_t len);

/* ---- persistent dirty bitmaps (qcow2's bitmaps extension) ---- */

struct fmt_bitmap {
	char *name;
	uint32_t granularity;   /* bytes of disk per bit */
	bool in_use;            /* not saved cleanly: inconsistent */
	bool enabled;           /* "auto": records writes */
};

/* The image's bitmaps (none for formats without); free the list with
 * fmt_bitmaps_free(). */
int fmt_bitmap_list(struct fmt_image *img, struct fmt_bitmap **list, size_t *n);
void fmt_bitmaps_free(struct fmt_bitmap *list, size_t n);
/* A bitmap's bits: bit i (byte i / 8, least significant bit first) covers
 * disk bytes [i * granularity, (i + 1) * granularity); *len is
 * DIV_ROUND_UP(DIV_ROUND_UP(size, granularity), 8).  Free *bits. */
int fmt_bitmap_read(struct fmt_image *img, const char *name, uint8_t **bits,
		    size_t *len);
/* Store a new persistent bitmap (name, granularity, enabled) with bits
 * laid out as fmt_bitmap_read returns them. */
int fmt_bitmap_add(struct fmt_image *img, const struct fmt_bitmap *b,
		   const uint8_t *bits);
/* Change bitmap `name`: b NULL removes it; else it becomes enabled as
 * b->enabled says and, when bits is not NULL, holds those bits. */
int fmt_bitmap_change(struct fmt_image *img, const char *name,
		      const struct fmt_bitmap *b, const uint8_t *bits);

/* ---- info and measure ---- */

/* Format-specific information as qemu-img's "format-specific" object
 * {"type": ..., "data": {...}}; NULL when the format has none. */
struct json_t *fmt_info_specific(struct fmt_image *img);
/* Is the dirty bit set (qemu-img's "dirty-flag")? */
bool fmt_is_dirty(const struct fmt_image *img);

struct fmt_measure { uint64_t required, fully_allocated, bitmaps; };
/* Space a new image of `format` with `opts` needs: for a new empty disk
 * of `size` (src NULL) or for a copy of src's data. */
int fmt_measure(const char *format, const struct kvlist *opts, uint64_t size,
		struct fmt_image *src, struct fmt_measure *m);

/* ======== the NBD protocol and client ======== */

/*
 * The NBD protocol, shared by the vm-nbd server and the
 * NBD client of the block layer.
 *
 * Follows the NBD protocol specification (NetworkBlockDevice/nbd,
 * doc/proto.md): fixed newstyle negotiation, the transmission phase with
 * simple and structured replies, and metadata contexts (base:allocation
 * and QEMU's qemu:allocation-depth).  Every number on the wire is big
 * endian; the helpers below put and get them from byte buffers, so no
 * struct is ever sent as it lies in memory.
 */
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
/* The export's size as the client checks requests against it, after its
 * server resized it (NBD itself does not say so). */
void nbd_client_set_size(struct nbd_client *c, uint64_t size);
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
/* The same scattered over (gathered from) niov iovecs, as many bytes
 * as they hold: a read's reply is received straight into them, a
 * write's header and data leave in one writev. */
struct iovec;
int nbd_client_readv(struct nbd_client *c, const struct iovec *iov, int niov,
		     uint64_t offset);
int nbd_client_writev(struct nbd_client *c, const struct iovec *iov, int niov,
		      uint64_t offset, uint32_t flags);
/* Start one read (write) of the iovecs' bytes at offset, at most the
 * maximum payload, without waiting: 0 when done(arg, 0 or -errno) will
 * be called, from the client's reader thread (maybe before this
 * returns) once the reply is in; -errno (nothing will be called) when
 * the request cannot start.  The iovecs are copied; the memory they
 * point to must stay until done.  done must not wait for other replies
 * of this connection. */
int nbd_client_submit(struct nbd_client *c, bool write, const struct iovec *iov, int niov,
		      uint64_t offset, void (*done)(void *arg, int err), void *arg);
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
