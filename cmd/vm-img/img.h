/*
 * vm-img internals: the subcommand table and helpers shared by the
 * subcommands (one file each).  Every subcommand returns its exit status.
 */
#ifndef VM_IMG_H
#define VM_IMG_H

#include <stdbool.h>
#include <stdint.h>

struct fmt_image;
struct secret_store;

struct img_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *synopsis;
	const char *description;
};

extern const struct img_cmd img_cmds[];
extern const int img_ncmds;

/* Long-only option codes shared by the subcommands. */
enum {
	OPT_OBJECT = 256, OPT_IMAGE_OPTS, OPT_OUTPUT, OPT_BACKING_CHAIN,
	OPT_FORCE, OPT_SHRINK, OPT_PREALLOC, OPT_START, OPT_MAXLEN,
	OPT_TARGET_OPTS, OPT_TARGET_ZERO, OPT_BITMAPS, OPT_SKIP_BROKEN,
	OPT_SIZE, OPT_FLUSH_INTERVAL, OPT_NO_DRAIN, OPT_PATTERN, OPT_HELP,
};

/* Options every image-opening subcommand shares. */
struct img_ctx {
	struct secret_store *secrets;
	bool image_opts;
	bool share;          /* -U */
	bool quiet;          /* -q */
	unsigned cache;      /* FMT_O_NOCACHE, FMT_O_UNSAFE from -t/-T */
};

/* Handle --object, --image-opts, -U, -q: 1 if consumed, 0 if not, -1 on error. */
int img_common_opt(struct img_ctx *c, int opt, const char *arg);
void img_ctx_free(struct img_ctx *c);
/* Open an image (fmt may be NULL); on failure report and return -1. */
int img_open(const struct img_ctx *c, const char *name, const char *fmt,
	     unsigned flags, struct fmt_image **out);
/* -t/-T: "none"/"directsync" -> FMT_O_NOCACHE, "unsafe" -> FMT_O_UNSAFE,
 * "writeback"/"writethrough" -> neither; -1 after reporting another. */
int img_cache_flags(const char *mode, unsigned *flags);
/* --output=human|json; -1 after reporting an unknown one. */
int img_output(const char *s, bool *json);
/* Report an unknown option / missing argument as qemu-img does; returns 1. */
int img_bad_option(const char *cmd, int opt, char **argv);
/* -r RATE (bytes per second, 0 = unlimited) of commit and convert; -1
 * after reporting a bad one. */
int img_parse_rate(const char *s, uint64_t *rate);
/* Sleep until `bytes` done since `start_ns` (CLOCK_MONOTONIC) fit `rate`. */
void img_pace(uint64_t rate, uint64_t start_ns, uint64_t bytes);
uint64_t img_now_ns(void);
/* Join repeated -o values with ','. */
void img_add_opts(char **acc, const char *more);
/* "-o help": print the creation options of fmt; returns 0. */
int img_print_create_opts(const char *fmt);
/* Print the snapshot table as qemu-img does ("ID TAG VM SIZE ..."). */
void img_print_snapshots(struct fmt_image *img);

int cmd_amend(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bitmap(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_dd(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_rebase(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);

#endif
