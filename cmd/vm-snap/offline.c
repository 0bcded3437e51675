/*
 * Internal qcow2 snapshots of an image that no machine is using: list,
 * create, apply, delete.  The list is printed in qemu-img snapshot -l's
 * layout, so scripts that read one read the other.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "snap.h"

/* Parse "[-U] [-f FMT] IMAGE [NAME]"; returns the index of IMAGE or -1. */
static int snap_args(int argc, char **argv, bool want_name, const char **format, bool *share)
{
	static const struct option longopts[] = {
		{ "force-share", no_argument, NULL, 'U' },
		{ "format", required_argument, NULL, 'f' },
		{ 0 }
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:Uf:", longopts, NULL)) != -1) {
		switch (c) {
		case 'U':
			*share = true;
			break;
		case 'f':
			*format = optarg;
			break;
		default:
			report("%s: %s", argv[0], opt_error(c, argv));
			return -1;
		}
	}
	if (argc - optind != (want_name ? 2 : 1)) {
		report("%s: expected %s (try --help)", argv[0], want_name ? "IMAGE NAME" : "IMAGE");
		return -1;
	}
	return optind;
}

static int snap_open(const char *path, const char *format, unsigned flags, struct fmt_image **img)
{
	struct fmt_open_opts o = { .format = format, .flags = flags };

	if (fmt_open(path, &o, img) < 0) {
		report_err();
		return -1;
	}
	return 0;
}

int snap_list(int argc, char **argv)
{
	const char *format = NULL;
	struct fmt_snapshot *list;
	struct fmt_image *img;
	bool share = false;
	size_t n;
	int i = snap_args(argc, argv, false, &format, &share);

	if (i < 0 || snap_open(argv[i], format, share ? FMT_O_SHARE : 0, &img) < 0)
		return 1;
	if (fmt_snapshot_list(img, &list, &n) < 0) {
		report("%s: %s", argv[i], err_msg());
		fmt_close(img);
		return 1;
	}
	if (n) {
		printf("Snapshot list:\n");
		printf("%s\n", fmt_snapshot_heading());
		for (size_t k = 0; k < n; k++) {
			char *row = fmt_snapshot_row(&list[k]);

			printf("%s\n", row);
			free(row);
		}
	}
	fmt_snapshots_free(list, n);
	fmt_close(img);
	return report_close_stdout() ? 1 : 0;
}

int snap_create(int argc, char **argv)
{
	const char *format = NULL;
	struct fmt_snapshot sn = { 0 };
	struct fmt_image *img;
	struct timespec now;
	bool share = false;
	int r, i = snap_args(argc, argv, true, &format, &share);

	if (i < 0 || snap_open(argv[i], format, FMT_O_RDWR, &img) < 0)
		return 1;
	clock_gettime(CLOCK_REALTIME, &now);
	sn.name = argv[i + 1];
	sn.date_sec = (uint32_t)now.tv_sec;
	sn.date_nsec = (uint32_t)now.tv_nsec;
	sn.icount = UINT64_MAX;
	sn.disk_size = fmt_size(img);
	r = fmt_snapshot_create(img, &sn);
	if (r < 0)
		report("Could not create snapshot '%s': %s", sn.name, err_msg());
	if (fmt_close(img) < 0 && r >= 0) {
		report_err();
		r = -1;
	}
	return r < 0 ? 1 : 0;
}

/* apply and delete differ only in the call and the words. */
static int snap_change(int argc, char **argv, int (*fn)(struct fmt_image *, const char *),
		       const char *verb)
{
	const char *format = NULL;
	struct fmt_image *img;
	bool share = false;
	int r, i = snap_args(argc, argv, true, &format, &share);

	if (i < 0 || snap_open(argv[i], format, FMT_O_RDWR, &img) < 0)
		return 1;
	r = fn(img, argv[i + 1]);
	if (r < 0)
		report("Could not %s snapshot '%s': %s", verb, argv[i + 1], err_msg());
	if (fmt_close(img) < 0 && r >= 0) {
		report_err();
		r = -1;
	}
	return r < 0 ? 1 : 0;
}

int snap_apply(int argc, char **argv)
{
	return snap_change(argc, argv, fmt_snapshot_apply, "apply");
}

int snap_delete(int argc, char **argv)
{
	return snap_change(argc, argv, fmt_snapshot_delete, "delete");
}
