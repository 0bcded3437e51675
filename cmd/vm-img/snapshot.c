/*
 * vm-img snapshot: qemu-img snapshot [-l | -a snap | -c snap | -d snap]
 * filename: list, apply, create or delete internal snapshots.
 */
#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static const struct option snap_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "force-share", no_argument, NULL, 'U' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int snap_do(struct fmt_image *img, int action, const char *name)
{
	struct fmt_snapshot sn = { 0 };
	struct timespec ts;
	int r;

	switch (action) {
	case 'l': {
		struct fmt_snapshot *l;
		size_t n;

		if (fmt_snapshot_list(img, &l, &n) == 0 && n) {
			printf("Snapshot list:\n");
			img_print_snapshots(img);
		}
		fmt_snapshots_free(l, n);
		return 0;
	}
	case 'c':
		clock_gettime(CLOCK_REALTIME, &ts);
		sn.name = (char *)name;
		sn.date_sec = (uint32_t)ts.tv_sec;
		sn.date_nsec = (uint32_t)ts.tv_nsec;
		sn.icount = 0;
		r = fmt_snapshot_create(img, &sn);
		if (r < 0)
			err_prefix("Could not create snapshot '%s'", name);
		break;
	case 'a':
		r = fmt_snapshot_apply(img, name);
		if (r < 0)
			err_prefix("Could not apply snapshot '%s'", name);
		break;
	default:
		r = fmt_snapshot_delete(img, name);
		if (r < 0)
			err_prefix("Could not delete snapshot '%s'", name);
		break;
	}
	if (r < 0) {
		report_err();
		return 1;
	}
	return 0;
}

int cmd_snapshot(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *name = NULL, *fmt = NULL;
	struct fmt_image *img;
	int c, r, action = 0;

	while ((c = getopt_long(argc, argv, ":hla:c:d:f:qU", snap_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'l': case 'a': case 'c': case 'd':
			if (action) {
				report("Cannot mix '-l', '-a', '-c', '-d'");
				return 1;
			}
			action = c;
			name = optarg;
			break;
		case 'f': fmt = optarg; break;
		case 'h': printf("usage: vm-img snapshot [-l | -a snapshot | -c snapshot | "
				 "-d snapshot] filename\n"); return 0;
		default: return img_bad_option("snapshot", optopt, argv);
		}
	}
	if (optind != argc - 1) {
		report("Expecting one image file name");
		return 1;
	}
	if (!action)
		action = 'l';
	if (img_open(&ctx, argv[optind], fmt, (action == 'l' ? 0 : FMT_O_RDWR) |
		     FMT_O_NO_BACKING, &img) < 0) {
		img_ctx_free(&ctx);
		return 1;
	}
	r = snap_do(img, action, name);
	if (fmt_close(img) < 0 && r == 0) {
		report_err();
		r = 1;
	}
	img_ctx_free(&ctx);
	return r;
}
