/*
 * The vm-img subcommand table: name, function, synopsis (qemu-img's) and
 * a one-line description.  It also generates `vm-img --help`.
 */
#include "common/common.h"
#include "img.h"

const struct img_cmd img_cmds[] = {
	{ "amend", cmd_amend, "amend [--object objectdef] [--image-opts] [-p] [-q] "
	  "[-f fmt] [-t cache] [--force] -o options filename",
	  "change format-specific options of an image" },
	{ "bench", cmd_bench, "bench [-c count] [-d depth] [-f fmt] "
	  "[--flush-interval=flush_interval] [-i aio] [-n] [--no-drain] "
	  "[-o offset] [--pattern=pattern] [-q] [-s buffer_size] [-S step_size] "
	  "[-t cache] [-w] [-U] filename",
	  "run a simple read or write benchmark on an image" },
	{ "bitmap", cmd_bitmap, "bitmap (--merge SOURCE | --add | --remove | "
	  "--clear | --enable | --disable)... [-b source_file [-F source_fmt]] "
	  "[-g granularity] [--object objectdef] [--image-opts | -f fmt] "
	  "filename bitmap",
	  "add, remove, clear, enable, disable or merge a persistent bitmap" },
	{ "check", cmd_check, "check [--object objectdef] [--image-opts] [-q] "
	  "[-f fmt] [--output=ofmt] [-r [leaks | all]] [-T src_cache] [-U] filename",
	  "check an image for consistency, optionally repairing it" },
	{ "commit", cmd_commit, "commit [--object objectdef] [--image-opts] [-q] "
	  "[-f fmt] [-t cache] [-b base] [-r rate_limit] [-d] [-p] filename",
	  "write an image's changes into its backing file" },
	{ "compare", cmd_compare, "compare [--object objectdef] [--image-opts] "
	  "[-f fmt] [-F fmt] [-T src_cache] [-p] [-q] [-s] [-U] filename1 filename2",
	  "check whether two images have the same content" },
	{ "convert", cmd_convert, "convert [--object objectdef] [--image-opts] "
	  "[--target-image-opts] [--target-is-zero] [--bitmaps] "
	  "[--skip-broken-bitmaps] [-U] [-C] [-c] "
	  "[-p] [-q] [-n] [-f fmt] [-t cache] [-T src_cache] [-O output_fmt] "
	  "[-B backing_file [-F backing_fmt]] [-o options] [-l snapshot_param] "
	  "[-S sparse_size] [-r rate_limit] [-m num_coroutines] [-W] "
	  "filename [filename2 [...]] output_filename",
	  "copy images into a new image of any format" },
	{ "create", cmd_create, "create [--object objectdef] [-q] [-f fmt] "
	  "[-b backing_file [-F backing_fmt]] [-u] [-o options] filename [size]",
	  "create a new image" },
	{ "dd", cmd_dd, "dd [--image-opts] [-U] [-f fmt] [-O output_fmt] "
	  "[bs=block_size] [count=blocks] [skip=blocks] if=input of=output",
	  "copy from input to output like dd(1)" },
	{ "info", cmd_info, "info [--object objectdef] [--image-opts] [-f fmt] "
	  "[--output=ofmt] [--backing-chain] [-U] filename",
	  "show information about an image" },
	{ "map", cmd_map, "map [--object objectdef] [--image-opts] [-f fmt] "
	  "[--start-offset=offset] [--max-length=len] [--output=ofmt] [-U] filename",
	  "show where the data of an image lives" },
	{ "measure", cmd_measure, "measure [--output=ofmt] [-O output_fmt] "
	  "[-o options] [--size N | [--object objectdef] [--image-opts] [-f fmt] "
	  "[-l snapshot_param] filename]",
	  "compute the size a new image needs" },
	{ "rebase", cmd_rebase, "rebase [--object objectdef] [--image-opts] [-U] "
	  "[-q] [-f fmt] [-t cache] [-T src_cache] [-p] [-u] -b backing_file "
	  "[-F backing_fmt] filename",
	  "change the backing file of an image" },
	{ "resize", cmd_resize, "resize [--object objectdef] [--image-opts] "
	  "[-f fmt] [--preallocation=prealloc] [-q] [--shrink] filename [+ | -]size",
	  "change the virtual size of an image" },
	{ "snapshot", cmd_snapshot, "snapshot [--object objectdef] [--image-opts] "
	  "[-U] [-q] [-l | -a snapshot | -c snapshot | -d snapshot] filename",
	  "list, create, apply or delete internal snapshots" },
};

const int img_ncmds = (int)ARRAY_SIZE(img_cmds);
