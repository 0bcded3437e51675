/*
 * vm-img info: qemu-img info [-f fmt] [--output=human|json]
 * [--backing-chain] [-U] filename.  The human form prints the JSON
 * "format-specific" data generically, as qemu-img does ("compression-type"
 * becomes "compression type").
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "img.h"

static json_t *info_snapshots(struct fmt_image *img)
{
	struct fmt_snapshot *l;
	json_t *a;
	size_t n, i;

	if (fmt_snapshot_list(img, &l, &n) < 0)
		return NULL;
	if (n == 0) {
		fmt_snapshots_free(l, n);
		return NULL;
	}
	a = json_array();
	for (i = 0; i < n; i++) {
		json_t *o = json_object();

		if (l[i].icount != UINT64_MAX)
			json_object_set_new(o, "icount", json_integer((json_int_t)l[i].icount));
		json_object_set_new(o, "vm-clock-nsec",
				    json_integer((json_int_t)(l[i].vm_clock_nsec % 1000000000)));
		json_object_set_new(o, "name", json_string(l[i].name));
		json_object_set_new(o, "date-sec", json_integer(l[i].date_sec));
		json_object_set_new(o, "date-nsec", json_integer(l[i].date_nsec));
		json_object_set_new(o, "vm-clock-sec",
				    json_integer((json_int_t)(l[i].vm_clock_nsec / 1000000000)));
		json_object_set_new(o, "id", json_string(l[i].id));
		json_object_set_new(o, "vm-state-size", json_integer((json_int_t)l[i].vm_state_size));
		json_array_append_new(a, o);
	}
	fmt_snapshots_free(l, n);
	return a;
}

static json_t *info_json(struct fmt_image *img)
{
	json_t *o = json_object(), *sn, *fs;
	int64_t asz = fmt_allocated_size(img);

	if (fmt_backing_name(img) && fmt_backing_format(img))
		json_object_set_new(o, "backing-filename-format",
				    json_string(fmt_backing_format(img)));
	if ((sn = info_snapshots(img)))
		json_object_set_new(o, "snapshots", sn);
	json_object_set_new(o, "virtual-size", json_integer((json_int_t)fmt_size(img)));
	json_object_set_new(o, "filename", json_string(fmt_filename(img)));
	if (fmt_cluster_size(img))
		json_object_set_new(o, "cluster-size", json_integer(fmt_cluster_size(img)));
	json_object_set_new(o, "format", json_string(fmt_format(img)));
	if (asz >= 0)
		json_object_set_new(o, "actual-size", json_integer(asz));
	if ((fs = fmt_info_specific(img)))
		json_object_set_new(o, "format-specific", fs);
	if (fmt_backing_name(img)) {
		json_object_set_new(o, "full-backing-filename",
				    json_string(fmt_backing_path(img)));
		json_object_set_new(o, "backing-filename",
				    json_string(fmt_backing_name(img)));
	}
	json_object_set_new(o, "dirty-flag", json_boolean(fmt_is_dirty(img)));
	return o;
}

static void info_human_value(json_t *v, int indent);

static void info_human_obj(json_t *o, int indent)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		char key[128];
		size_t i;

		snprintf(key, sizeof(key), "%s", k);
		for (i = 0; key[i]; i++)
			if (key[i] == '-')
				key[i] = ' ';
		if (json_is_object(v) || json_is_array(v)) {
			printf("%*s%s:\n", indent, "", key);
			info_human_value(v, indent + 4);
		} else {
			printf("%*s%s: ", indent, "", key);
			info_human_value(v, 0);
		}
	}
}

static void info_human_value(json_t *v, int indent)
{
	size_t i;
	json_t *e;

	if (json_is_object(v))
		info_human_obj(v, indent);
	else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if (json_is_object(e) || json_is_array(e)) {
				printf("%*s[%zu]:\n", indent, "", i);
				info_human_value(e, indent + 4);
			} else {
				printf("%*s[%zu]: ", indent, "", i);
				info_human_value(e, 0);
			}
		}
	} else if (json_is_string(v))
		printf("%s\n", json_string_value(v));
	else if (json_is_boolean(v))
		printf("%s\n", json_is_true(v) ? "true" : "false");
	else if (json_is_integer(v))
		printf("%lld\n", (long long)json_integer_value(v));
}

static void info_human(struct fmt_image *img)
{
	char a[SIZE_STR_LEN], b[SIZE_STR_LEN];
	int64_t asz = fmt_allocated_size(img);
	struct fmt_snapshot *l;
	json_t *fs;
	size_t n;

	printf("image: %s\nfile format: %s\n", fmt_filename(img), fmt_format(img));
	printf("virtual size: %s (%llu bytes)\n", size_to_str(fmt_size(img), a),
	       (unsigned long long)fmt_size(img));
	printf("disk size: %s\n", asz >= 0 ? size_to_str((uint64_t)asz, b) : "unavailable");
	if (fmt_cluster_size(img))
		printf("cluster_size: %u\n", fmt_cluster_size(img));
	if (fmt_backing_name(img)) {
		printf("backing file: %s", fmt_backing_name(img));
		if (strcmp(fmt_backing_name(img), fmt_backing_path(img)))
			printf(" (actual path: %s)", fmt_backing_path(img));
		printf("\n");
		if (fmt_backing_format(img))
			printf("backing file format: %s\n", fmt_backing_format(img));
	}
	if (fmt_is_dirty(img))
		printf("cleanly shut down: no\n");
	if (fmt_snapshot_list(img, &l, &n) == 0 && n) {
		printf("Snapshot list:\n");
		img_print_snapshots(img);
	}
	fmt_snapshots_free(l, n);
	if ((fs = fmt_info_specific(img))) {
		printf("Format specific information:\n");
		info_human_obj(json_object_get(fs, "data"), 4);
		json_decref(fs);
	}
}

static const struct option info_lo[] = {
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
	{ "force-share", no_argument, NULL, 'U' },
	{ "format", required_argument, NULL, 'f' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int cmd_info(int argc, char **argv)
{
	struct img_ctx ctx = { 0 };
	const char *fmt = NULL;
	bool json = false, chain = false;
	struct fmt_image *img, *i;
	json_t *arr = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, ":hf:U", info_lo, NULL)) != -1) {
		if ((r = img_common_opt(&ctx, c, optarg)) != 0) {
			if (r < 0)
				return 1;
			continue;
		}
		switch (c) {
		case 'f': fmt = optarg; break;
		case OPT_OUTPUT: if (img_output(optarg, &json) < 0) return 1; break;
		case OPT_BACKING_CHAIN: chain = true; break;
		case 'h': printf("usage: vm-img %s\n", img_cmds[8].synopsis); return 0;
		default: return img_bad_option("info", optopt, argv);
		}
	}
	if (optind != argc - 1) {
		report(optind >= argc ? "Expecting one image file name" :
		       "Expecting one image file name");
		return 1;
	}
	if (img_open(&ctx, argv[optind], fmt, chain ? 0 : FMT_O_NO_BACKING, &img) < 0) {
		img_ctx_free(&ctx);
		return 1;
	}
	if (json && chain)
		arr = json_array();
	for (i = img; i; i = chain ? fmt_backing(i) : NULL) {
		if (arr)
			json_array_append_new(arr, info_json(i));
		else if (json) {
			json_t *o = info_json(i);

			vjson_print(o);
			json_decref(o);
		} else {
			if (i != img)
				printf("\n");
			info_human(i);
		}
	}
	if (arr) {
		vjson_print(arr);
		json_decref(arr);
	}
	fmt_close(img);
	img_ctx_free(&ctx);
	return 0;
}
