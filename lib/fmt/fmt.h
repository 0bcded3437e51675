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

#endif
