/*
 * lib/fmt private definitions: the driver ops table every image format
 * implements, the image handle, host file helpers (O_DIRECT bounce
 * buffers) and QEMU-compatible image locking.
 */
#ifndef VM_FMT_INTERNAL_H
#define VM_FMT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "fmt/fmt.h"

struct kvlist;
struct json_t;

/* ---- the host file under a format (file.c) ---- */

struct fmt_file {
	int fd;
	char *path;
	bool direct;        /* opened with O_DIRECT */
	bool writable;
	bool unsafe;        /* cache=unsafe: fmt_file_flush does nothing */
	uint32_t align;     /* O_DIRECT alignment (512 or 4096), else 1 */
	unsigned perm;      /* lock permission bits held (lock.c) */
};

int fmt_file_open(struct fmt_file *f, const char *path, unsigned flags);
void fmt_file_close(struct fmt_file *f);
int fmt_file_pread(struct fmt_file *f, void *buf, size_t len, uint64_t off);
int fmt_file_pwrite(struct fmt_file *f, const void *buf, size_t len, uint64_t off);
int64_t fmt_file_size(struct fmt_file *f);
int fmt_file_truncate(struct fmt_file *f, uint64_t size);
int fmt_file_flush(struct fmt_file *f);
/* Allocate [off, off+len) on the host: fallocate, or write zeros (full). */
int fmt_file_prealloc(struct fmt_file *f, uint64_t off, uint64_t len, bool full);
int fmt_file_punch(struct fmt_file *f, uint64_t off, uint64_t len);
int64_t fmt_file_allocated(struct fmt_file *f);

/* ---- locking (lock.c): QEMU file-posix's OFD byte locks ---- */

enum fmt_perm {
	FMT_PERM_CONSISTENT_READ = 1u << 0,
	FMT_PERM_WRITE = 1u << 1,
	FMT_PERM_WRITE_UNCHANGED = 1u << 2,
	FMT_PERM_RESIZE = 1u << 3,
	FMT_PERM_ALL = 0xf,
};
/* Take locks meaning "I use perm and do not share ~shared"; fails with
 * -EAGAIN and QEMU-like message if another process conflicts. */
int fmt_lock_apply(int fd, const char *path, unsigned perm, unsigned shared);
/* Permissions an open with `flags` (enum fmt_open_flag) needs and shares. */
void fmt_lock_perms(unsigned flags, unsigned *perm, unsigned *shared);

/* ---- the image handle ---- */

struct fmt_image {
	const struct fmt_driver *drv;
	char *filename;
	unsigned flags;         /* enum fmt_open_flag */
	bool probed;            /* format was probed, not named (raw guard) */
	uint64_t size;          /* virtual size */
	void *priv;             /* the driver's state */

	/* set by the driver's open when the image names one */
	char *backing_name;     /* as recorded */
	char *backing_fmt;      /* as recorded, or NULL */
	char *backing_path;     /* resolved */
	struct fmt_image *backing;
};

/*
 * One image format.  Members marked optional may be NULL; the generic layer
 * then answers -ENOTSUP ("Operation not supported for format X") or a
 * sensible default as noted.
 */
struct fmt_driver {
	/* Format name as qemu-img spells it ("raw", "qcow2"). */
	const char *name;
	/* Probe: a score 0..100 of how sure the driver is that the first `len`
	 * bytes (the start of the file, len >= 0) are its format.  Raw answers
	 * 1 (the fallback).  Optional: a driver without one is never probed. */
	int (*probe)(const uint8_t *buf, size_t len);
	/* True if `filename` is this driver's (NBD URIs); such names are never
	 * probed or opened as files.  Optional. */
	bool (*claims)(const char *filename);
	/* Open img->filename with img->flags: set img->size and img->priv,
	 * and img->backing_name/backing_fmt if the image has a backing file
	 * (the generic layer opens it).  Required. */
	int (*open)(struct fmt_image *img, const struct fmt_open_opts *o);
	/* Release everything open allocated.  Required. */
	void (*close)(struct fmt_image *img);
	/* Read len bytes at off (within img->size); unallocated parts come
	 * from img->backing (fmt_read, which zero-fills past its end) or are
	 * zeros.  Thread-safe.  Required. */
	int (*read)(struct fmt_image *img, void *buf, uint64_t off, size_t len);
	/* Write (flags: FMT_W_COMPRESSED).  Thread-safe.  Required unless the
	 * format is read-only. */
	int (*write)(struct fmt_image *img, const void *buf, uint64_t off,
		     size_t len, unsigned flags);
	/* Compress whole clusters into cd (see fmt_compress); changes nothing
	 * in the image.  Thread-safe.  Optional, together with
	 * write_compressed, which stores the result.  Thread-safe. */
	int (*compress)(struct fmt_image *img, const void *buf, uint64_t off,
			size_t len, bool skip_zero, struct fmt_cdata *cd);
	int (*write_compressed)(struct fmt_image *img, const struct fmt_cdata *cd);
	/* The host file descriptor holding the guest's bytes at the same
	 * offsets (raw), for copy_file_range; -1 if none.  Optional. */
	int (*plain_fd)(const struct fmt_image *img);
	/* Make a range read as zeros (flags: FMT_W_MAY_UNMAP,
	 * FMT_W_NO_FALLBACK).  Optional: the generic layer writes zeros. */
	int (*write_zeroes)(struct fmt_image *img, uint64_t off, uint64_t len,
			    unsigned flags);
	/* Drop a range (content afterwards unspecified but stable).  Optional:
	 * treated as a no-op. */
	int (*discard)(struct fmt_image *img, uint64_t off, uint64_t len);
	/* Make everything written so far durable.  Optional. */
	int (*flush)(struct fmt_image *img);
	/* Status of this layer only at off (ext->depth left 0): see struct
	 * fmt_extent.  Optional: everything is allocated data. */
	int (*block_status)(struct fmt_image *img, uint64_t off, uint64_t len,
			    struct fmt_extent *ext);
	/* Change the virtual size.  Optional. */
	int (*truncate)(struct fmt_image *img, uint64_t size,
			enum fmt_prealloc p, bool shrink);
	/* Creation options (NULL-name terminated) and create itself: make a
	 * new image at filename of `size` bytes.  Optional. */
	const struct fmt_create_opt *create_opts;
	int (*create)(const char *filename, uint64_t size,
		      const struct kvlist *opts);
	/* Check consistency; repair what `fix` allows.  Optional. */
	int (*check)(struct fmt_image *img, unsigned fix, struct fmt_check *c);
	/* Change creation options in place.  Optional. */
	int (*amend)(struct fmt_image *img, const struct kvlist *opts, bool force);
	/* Record a new backing file name and format.  Optional. */
	int (*set_backing)(struct fmt_image *img, const char *name,
			   const char *fmt);
	/* Discard all of this layer's data.  Optional. */
	int (*make_empty)(struct fmt_image *img);
	/* Internal snapshots (all optional, together). */
	int (*snapshot_list)(struct fmt_image *img, struct fmt_snapshot **l,
			     size_t *n);
	int (*snapshot_create)(struct fmt_image *img,
			       const struct fmt_snapshot *sn);
	int (*snapshot_apply)(struct fmt_image *img, const char *id_or_name);
	int (*snapshot_delete)(struct fmt_image *img, const char *id_or_name);
	int (*vmstate_rw)(struct fmt_image *img, void *buf, uint64_t off,
			  size_t len, bool write);
	/* Persistent dirty bitmaps (see fmt_bitmap_list and the rest).
	 * Optional: no bitmaps, and adding one is refused. */
	int (*bitmap_list)(struct fmt_image *img, struct fmt_bitmap **l, size_t *n);
	int (*bitmap_read)(struct fmt_image *img, const char *name, uint8_t **bits,
			   size_t *len);
	int (*bitmap_add)(struct fmt_image *img, const struct fmt_bitmap *b,
			  const uint8_t *bits);
	int (*bitmap_change)(struct fmt_image *img, const char *name,
			     const struct fmt_bitmap *b, const uint8_t *bits);
	/* Fill the "data" object of format-specific info.  Optional. */
	int (*info)(struct fmt_image *img, struct json_t *data);
	/* Dirty bit set?  Optional. */
	bool (*is_dirty)(const struct fmt_image *img);
	/* Cluster size, or 0.  Optional. */
	uint32_t (*cluster_size)(const struct fmt_image *img);
	/* Host bytes used.  Required for file-based formats. */
	int64_t (*allocated)(const struct fmt_image *img);
	/* Space needed for a new image (see fmt_measure).  Optional. */
	int (*measure)(const struct kvlist *opts, uint64_t size,
		       struct fmt_image *src, struct fmt_measure *m);
};

/* drivers.c */
extern const struct fmt_driver *const fmt_drivers[];
const struct fmt_driver *fmt_driver_find(const char *name);

/* The drivers (one file each). */
extern const struct fmt_driver fmt_raw_driver;
extern const struct fmt_driver fmt_qcow2_driver;
extern const struct fmt_driver fmt_nbd_driver;

/* Helpers shared by drivers (image.c, create.c). */
/* Resolve a backing name relative to the directory of `image`. */
char *fmt_resolve_backing(const char *image, const char *backing);
/* Parse -o values shared by drivers: "preallocation". */
int fmt_opt_prealloc(const struct kvlist *opts, enum fmt_prealloc *p);

/* ---- qcow2 (qcow2*.c): QEMU's qcow2 specification, versions 2 and 3 ---- */

#include <pthread.h>

#define QCOW2_MAGIC 0x514649fbu          /* "QFI\xfb" */
#define QCOW2_OFLAG_COPIED (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO 1ull
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_REFT_MASK 0xfffffffffffffe00ull
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full
#define QCOW2_COMPAT_LAZY (1ull << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ull << 0)
#define QCOW2_EXT_END 0
#define QCOW2_EXT_BACKING_FMT 0xe2792acau
#define QCOW2_EXT_FEATURES 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u
#define QCOW2_MAX_L1_BYTES (32u << 20)
#define QCOW2_MAX_RT_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS 65536

/* A cache of cluster-sized tables (L2 tables or refcount blocks), keyed
 * by host offset, least recently used evicted.  Write-through, except
 * refcount blocks under lazy_refcounts once the dirty bit is set: their
 * changed bytes [dlo, dhi) are written on eviction, flush and close. */
struct qcow2_cache_ent {
	uint64_t off;
	uint64_t used;
	uint8_t *data;
	uint32_t dlo, dhi;      /* dirty byte range; dhi == 0: clean */
};
struct qcow2_cache { struct qcow2_cache_ent *e; int n; uint64_t tick; };

/* A header extension kept verbatim and written back (unknown ones,
 * bitmaps). */
struct qcow2_ext { uint32_t type; uint32_t len; uint8_t *data; };

struct qcow2_snap {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id, *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t vm_state_size;
	uint64_t disk_size;
	uint64_t icount;              /* UINT64_MAX: none */
	uint32_t extra_len;           /* extra data bytes as found */
	uint8_t *extra_rest;          /* extra bytes past those we know */
	uint32_t extra_rest_len;
};

/* An enabled persistent bitmap being kept up to date in memory while the
 * image is written (qcow2-bitmap.c); its directory entry says in-use. */
struct qcow2_bmtrack {
	char *name;
	uint32_t gran_bits;
	uint8_t *bits;
	size_t len;
};

struct qcow2 {
	struct fmt_file f;
	pthread_mutex_t lock;
	struct fmt_image *img;
	uint32_t version;
	uint32_t cluster_bits, cluster_size;
	uint64_t incompat, compat, autoclear;
	uint32_t header_len;
	uint8_t compression;          /* 0 zlib, 1 zstd */
	uint64_t l1_offset;
	uint32_t l1_size;
	uint64_t *l1;                 /* host order, l1_size entries */
	uint64_t rt_offset;
	uint32_t rt_clusters;
	uint64_t rt_size;             /* entries */
	uint64_t *rt;                 /* host order */
	uint32_t refcount_order, refcount_bits;
	uint32_t rb_bits;             /* log2 entries per refcount block */
	bool ext_l2;
	uint32_t l2_bits;             /* log2 entries per L2 table */
	uint32_t l2_entry_size;       /* 8, or 16 with extended L2 */
	uint32_t sc_bits;             /* log2 subcluster size (= cluster_bits) */
	uint32_t csize_shift;         /* compressed descriptor layout */
	uint64_t csize_mask;
	uint64_t backing_off;
	uint32_t backing_len;
	struct qcow2_ext *exts;       /* carried-through extensions */
	size_t n_exts;
	struct qcow2_snap *snaps;
	uint32_t n_snaps;
	uint64_t snaps_offset;
	uint64_t snaps_bytes;
	struct qcow2_cache l2c, rbc;
	uint64_t free_hint;           /* cluster index below which nothing is free */
	uint64_t file_end;            /* bytes; grows as clusters are allocated */
	uint64_t cbyte;               /* next free byte for compressed data, 0: none */
	bool dirty_set;               /* we set the dirty bit this session */
	bool snapshot_view;           /* opened on a snapshot (read-only) */
	bool writable;
	bool meta_prealloc_checked, meta_prealloc;
	struct qcow2_bmtrack *track;  /* enabled bitmaps, while track_on */
	size_t n_track;
	bool track_on;                /* directory marked in-use, bits in memory */
};

static inline struct qcow2 *qcow2_of(const struct fmt_image *img)
{
	return img->priv;
}

/* qcow2.c */
int qcow2_header_write(struct qcow2 *s);
int qcow2_set_incompat(struct qcow2 *s, uint64_t bits, bool on);
int qcow2_corrupt(struct qcow2 *s, const char *fmt, ...) PRINTF(2, 3);
uint64_t qcow2_l1_entries_for(const struct qcow2 *s, uint64_t size);
int qcow2_parse_open(struct qcow2 *s, const uint8_t *hdr, size_t len, bool check);

/* qcow2-refcount.c (callers hold s->lock) */
void qcow2_cache_init(struct qcow2_cache *c, int n);
void qcow2_cache_free(struct qcow2_cache *c);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t off);
/* Write the deferred refcount block bytes (lazy_refcounts). */
int qcow2_rc_writeback(struct qcow2 *s);
int qcow2_cache_get(struct qcow2 *s, struct qcow2_cache *c, uint64_t off,
		    bool fresh, uint8_t **data);
int qcow2_refcount_get(struct qcow2 *s, uint64_t cluster, uint64_t *rc);
int qcow2_refcount_add(struct qcow2 *s, uint64_t cluster, uint64_t n, int64_t delta);
int qcow2_refcount_add_bytes(struct qcow2 *s, uint64_t off, uint64_t len, int64_t delta);
/* Add cnt[i] to the refcount of cluster first + i, i < n (one write per
 * refcount block touched). */
int qcow2_refcount_add_counts(struct qcow2 *s, uint64_t first, uint64_t n,
			      const uint32_t *cnt);
/* First cluster of a run of n free clusters (nothing allocated). */
int64_t qcow2_find_free(struct qcow2 *s, uint64_t n);
int64_t qcow2_alloc(struct qcow2 *s, uint64_t n);
int qcow2_free(struct qcow2 *s, uint64_t off, uint64_t len);
int qcow2_rebuild_refcounts(struct qcow2 *s, uint64_t *refs, uint64_t n,
			    uint32_t new_order);
uint64_t qcow2_rb_get(const struct qcow2 *s, const uint8_t *blk, uint64_t i);
void qcow2_rb_set(const struct qcow2 *s, uint8_t *blk, uint64_t i, uint64_t v);
int qcow2_l1_grow(struct qcow2 *s, uint64_t min_size);

/* qcow2-io.c */
enum qcow2_seg_kind { SEG_BACKING, SEG_ZERO, SEG_DATA, SEG_COMPRESSED };
/* A run inside one cluster of a single kind. */
struct qcow2_seg {
	enum qcow2_seg_kind kind;
	uint64_t host;     /* SEG_DATA: host offset of the run's start */
	uint64_t len;      /* bytes from the queried position */
};
#define L2_SC_ALL 0xffffffffull
uint64_t qcow2_l2_host(uint64_t e);
int qcow2_seg_of(struct qcow2 *s, uint64_t e, uint64_t bm, uint64_t coff,
		 struct qcow2_seg *g);
int qcow2_free_entry(struct qcow2 *s, uint64_t e);
int qcow2_mark_dirty(struct qcow2 *s);
/* Before guest data in [off, off + len) changes (lock held): the dirty
 * bit (lazy refcounts) and the enabled bitmaps' bits. */
int qcow2_before_write(struct qcow2 *s, uint64_t off, uint64_t len);
uint64_t qcow2_sc_bits(const struct qcow2 *s, uint64_t coff, uint64_t n);
int qcow2_l2_entry(struct qcow2 *s, uint64_t vaddr, uint64_t *entry, uint64_t *bitmap);
int qcow2_rw_locked(struct fmt_image *img, uint8_t *buf, uint64_t off, size_t len,
		    bool write);
int qcow2_read(struct fmt_image *img, void *buf, uint64_t off, size_t len);
int qcow2_write(struct fmt_image *img, const void *buf, uint64_t off,
		size_t len, unsigned flags);
int qcow2_write_zeroes(struct fmt_image *img, uint64_t off, uint64_t len,
		       unsigned flags);
int qcow2_discard(struct fmt_image *img, uint64_t off, uint64_t len);
int qcow2_block_status(struct fmt_image *img, uint64_t off, uint64_t len,
		       struct fmt_extent *ext);
int qcow2_l2_table(struct qcow2 *s, uint64_t vaddr, bool alloc, uint8_t **t);
uint64_t qcow2_l2_index(const struct qcow2 *s, uint64_t vaddr);
int qcow2_write_l2_range(struct qcow2 *s, uint64_t vaddr, const uint8_t *t,
			 uint64_t first, uint64_t n);

/* qcow2-compress.c */
int qcow2_decompress(struct qcow2 *s, const uint8_t *in, size_t inlen,
		     uint8_t *out, size_t outlen);
int qcow2_compress_clusters(struct fmt_image *img, const void *buf, uint64_t off,
			    size_t len, bool skip_zero, struct fmt_cdata *cd);
/* qcow2-cwrite.c */
int qcow2_write_compressed(struct fmt_image *img, const struct fmt_cdata *cd);
int qcow2_update_l2_locked(struct qcow2 *s, uint64_t vaddr, uint64_t entry,
			   uint64_t bitmap);
uint64_t qcow2_vmstate_offset(const struct qcow2 *s);
int qcow2_vmstate_rw(struct fmt_image *img, void *buf, uint64_t off, size_t len,
		     bool write);

/* qcow2-snapshot.c */
int qcow2_snapshots_read(struct qcow2 *s);
void qcow2_snapshots_free(struct qcow2 *s);
int qcow2_snapshot_list(struct fmt_image *img, struct fmt_snapshot **l, size_t *n);
int qcow2_snapshot_create(struct fmt_image *img, const struct fmt_snapshot *sn);
int qcow2_snapshot_apply(struct fmt_image *img, const char *id_or_name);
int qcow2_snapshot_delete(struct fmt_image *img, const char *id_or_name);
int qcow2_snapshot_find(struct qcow2 *s, const char *id_or_name);
int qcow2_tree_refs(struct qcow2 *s, const uint64_t *l1, uint32_t l1_size,
		    int64_t delta, bool fix_copied);

/* qcow2-bitmap.c */
/* Host ranges {offset, length} the bitmaps use (directory, tables, data). */
int qcow2_bitmap_ranges(struct qcow2 *s, uint64_t (**ranges)[2], size_t *n);
int qcow2_bitmap_list(struct fmt_image *img, struct fmt_bitmap **l, size_t *n);
void qcow2_bitmap_info(struct qcow2 *s, struct json_t *d);
int qcow2_bitmap_read(struct fmt_image *img, const char *name, uint8_t **bits,
		      size_t *len);
int qcow2_bitmap_add(struct fmt_image *img, const struct fmt_bitmap *b,
		     const uint8_t *bits);
int qcow2_bitmap_track_begin(struct qcow2 *s);
void qcow2_bitmap_track_mark(struct qcow2 *s, uint64_t off, uint64_t len);
int qcow2_bitmap_track_end(struct qcow2 *s);
int qcow2_bitmap_change(struct fmt_image *img, const char *name,
			const struct fmt_bitmap *b, const uint8_t *bits);

/* qcow2-check.c */
int qcow2_check(struct fmt_image *img, unsigned fix, struct fmt_check *c);
int qcow2_repair_dirty(struct qcow2 *s);
int qcow2_change_refcount_order(struct qcow2 *s, uint32_t order);

/* qcow2-create.c */
extern const struct fmt_create_opt qcow2_create_opts[];
int qcow2_create(const char *filename, uint64_t size, const struct kvlist *opts);
int qcow2_truncate(struct fmt_image *img, uint64_t size, enum fmt_prealloc p,
		   bool shrink);
int qcow2_amend(struct fmt_image *img, const struct kvlist *opts, bool force);
int qcow2_measure(const struct kvlist *opts, uint64_t size,
		  struct fmt_image *src, struct fmt_measure *m);
int qcow2_set_backing(struct fmt_image *img, const char *name, const char *fmt);
int qcow2_make_empty(struct fmt_image *img);
/* qcow2-map.c: make whole clusters of a range unallocated */
int qcow2_unmap(struct fmt_image *img, uint64_t off, uint64_t len);

/* Big-endian helpers */
static inline uint16_t be16_get(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] << 8 | b[1]);
}
static inline uint32_t be32_get(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static inline uint64_t be64_get(const void *p)
{
	const uint8_t *b = p;
	return (uint64_t)be32_get(b) << 32 | be32_get(b + 4);
}
static inline void be16_put(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void be32_put(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}
static inline void be64_put(void *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put((uint8_t *)p + 4, (uint32_t)v);
}

#endif
