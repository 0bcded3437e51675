/*
 * vm-img: create, inspect, check, convert and modify disk images offline,
 * with qemu-img's commands, options, output and exit codes.  main() only
 * finds the subcommand in the table (cmds.c) and runs it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "img.h"

static void usage(FILE *f)
{
	int i;

	fprintf(f, "usage: vm-img [-h | --help] [-V | --version] [-T trace] "
		"COMMAND [command options]\n\n"
		"Manage disk images offline (raw, qcow2), as qemu-img does.\n\n"
		"Commands:\n");
	for (i = 0; i < img_ncmds; i++)
		fprintf(f, "  %s\n      %s\n", img_cmds[i].synopsis,
			img_cmds[i].description);
	fprintf(f, "\nOptions:\n"
		"  -h, --help     show this help and exit\n"
		"  -V, --version  show the version and exit\n"
		"  -T, --trace    accepted for compatibility; ignored\n"
		"  -d CATS        debug log categories (block, ...)\n"
		"\nSupported formats: raw qcow2 nbd\n"
		"\nExit status: 0 on success, 1 on error; check: 0 consistent, "
		"1 check not completed, 2 corrupted, 3 leaked clusters only, "
		"63 checks not supported; compare: 0 identical, 1 different, "
		"2 error.\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "trace", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i;

	report_init("vm-img");
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hVT:d:", lo, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return report_close_stdout() ? 1 : 0;
		case 'V':
			printf("vm-img version %s\n", VM_VERSION);
			return report_close_stdout() ? 1 : 0;
		case 'T':
			break;
		case 'd':
			if (log_parse_categories(optarg, &log_mask) < 0) {
				report_err();
				return 1;
			}
			break;
		default:
			return img_bad_option("vm-img", optopt, argv);
		}
	}
	if (optind >= argc) {
		report("Not enough arguments; try 'vm-img --help'");
		return 1;
	}
	for (i = 0; i < img_ncmds; i++)
		if (strcmp(argv[optind], img_cmds[i].name) == 0) {
			int r;

			int first = optind;

			optind = 0;     /* restart getopt for the subcommand */
			r = img_cmds[i].fn(argc - first, argv + first);
			if (report_close_stdout() < 0 && r == 0)
				r = 1;
			return r;
		}
	report("Command not found: %s", argv[optind]);
	return 1;
}
