/*
 * vm-img convert: the copy engine (convert-copy.c) and the state it shares
 * with option parsing and setup (convert.c).
 */
#ifndef VM_IMG_CONVERT_H
#define VM_IMG_CONVERT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

struct fmt_image;
struct conv_job;

struct conv {
	struct fmt_image **src;
	uint64_t *src_start;     /* offset of each source in the whole */
	int nsrc;
	uint64_t total;          /* bytes of all sources together */
	uint64_t chunk;          /* bytes one worker handles at a time */
	uint64_t sparse;         /* -S: zero runs this long are not written */
	uint64_t rate;           /* -r: bytes per second, 0 = unlimited */
	struct fmt_image *dst;
	bool compress;           /* -c */
	bool zero_init;          /* the target reads as zeros already */
	bool top_only;           /* -B: copy only what the top layer allocates */
	bool in_order;           /* write chunks in guest order (no -W) */
	bool copy_range;         /* -C: copy_file_range where it applies */

	/* run time, under lock */
	pthread_mutex_t lock;
	pthread_cond_t space;    /* a slot of the reorder window came free */
	int space_waiters;
	struct conv_job *slots;  /* in order: chunk i is planned in slot
				    i % nslots, committed when its turn comes */
	int nslots;
	bool committing;         /* a worker is committing ready slots */
	uint64_t nchunks, next, written, done_bytes, rate_bytes;
	uint64_t start_ns;
	int err;
	char errmsg[512];
	struct progress prog;
};

/* Copy everything with `threads` workers; reports errors itself and
 * returns the exit status (0 or 1). */
int conv_copy(struct conv *c, int threads);

#endif
