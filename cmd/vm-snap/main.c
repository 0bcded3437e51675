/*
 * vm-snap: VM and disk snapshots.  Offline internal qcow2 snapshots,
 * live savevm/loadvm/delvm through a running vm-run's monitor, external
 * overlays, commit and stream.  The subcommand table below generates
 * --help; subcommands that are not built yet say so and exit 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "snap.h"

static const struct snap_cmd snap_cmds[] = {
	{ "list", snap_list, "list [-U] [-f FMT] IMAGE", "list the internal snapshots of an image" },
	{ "create", snap_create, "create [-f FMT] IMAGE NAME", "create an internal snapshot offline" },
	{ "apply", snap_apply, "apply [-f FMT] IMAGE NAME", "revert an image to an internal snapshot" },
	{ "delete", snap_delete, "delete [-f FMT] IMAGE NAME", "delete an internal snapshot" },
	{ "save", snap_save, "save --monitor SOCKET [NAME]", "save the running VM (savevm)" },
	{ "load", snap_load, "load --monitor SOCKET NAME", "restore the running VM (loadvm)" },
	{ "del", snap_del, "del --monitor SOCKET NAME", "delete a VM snapshot (delvm)" },
	{ "overlay", snap_overlay, "overlay [-F FMT] BASE OVERLAY", "create a qcow2 overlay backed by BASE" },
	{ "commit", snap_commit, "commit [-d] OVERLAY", "write an overlay's data into its backing image" },
	{ "stream", snap_stream, "stream OVERLAY", "copy backing data into an overlay, then detach it" },
};

static void snap_usage(void)
{
	printf("Usage: vm-snap [-h|--help] [-V|--version] COMMAND [ARGS...]\n\n"
	       "VM and disk snapshots.\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(snap_cmds); i++)
		printf("  %-34s %s\n", snap_cmds[i].synopsis, snap_cmds[i].description);
	printf("\nOptions:\n"
	       "  -h, --help     show this help and exit\n"
	       "  -V, --version  show the version and exit\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c;

	report_init(argv[0]);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			snap_usage();
			return report_close_stdout() ? 1 : 0;
		case 'V':
			printf("vm-snap version %s\n", VM_VERSION);
			return report_close_stdout() ? 1 : 0;
		default:
			report("%s", opt_error(c, argv));
			return 1;
		}
	}
	if (optind >= argc) {
		report("missing command (try --help)");
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(snap_cmds); i++) {
		if (strcmp(argv[optind], snap_cmds[i].name))
			continue;
		if (!snap_cmds[i].fn) {
			report("%s: not implemented yet", snap_cmds[i].name);
			return 1;
		}
		return snap_cmds[i].fn(argc - optind, argv + optind);
	}
	report("unknown command '%s' (try --help)", argv[optind]);
	return 1;
}
