/*
 * vm-mon: the monitor client for people and scripts.  It speaks QMP to a
 * running vm-run (or qemu-system-x86_64) over a unix socket, translating
 * human monitor commands into QMP.  Not built yet: the options are parsed
 * and checked, then it says so and exits 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static void mon_usage(void)
{
	printf("Usage: vm-mon [OPTIONS] SOCKET [COMMAND...]\n\n"
	       "Send monitor commands to a running vm-run or QEMU over QMP.\n"
	       "With no COMMAND, read commands from standard input, one per line.\n\n"
	       "Options:\n"
	       "  -j, --json           send COMMAND as raw QMP JSON and print raw replies\n"
	       "  -w, --wait EVENT     wait until EVENT arrives, then exit\n"
	       "  -t, --timeout S      give up waiting after S seconds (exit 1)\n"
	       "  -e, --events         print events as JSON lines until the VM goes away\n"
	       "  -h, --help           show this help and exit\n"
	       "  -V, --version        show the version and exit\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "wait", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "events", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c, timeout;

	report_init(argv[0]);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+jw:t:ehV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
		case 'w':
		case 'e':
			break;
		case 't':
			if (parse_int(optarg, 0, 86400 * 365, &timeout) < 0) {
				report("--timeout: %s", err_msg());
				return 1;
			}
			break;
		case 'h':
			mon_usage();
			return report_close_stdout() ? 1 : 0;
		case 'V':
			printf("vm-mon version %s\n", VM_VERSION);
			return report_close_stdout() ? 1 : 0;
		case ':':
			report("option '%s' needs an argument", argv[optind - 1]);
			return 1;
		default:
			report("unrecognized option '%s'", argv[optind - 1]);
			return 1;
		}
	}
	if (optind >= argc) {
		report("missing monitor SOCKET (try --help)");
		return 1;
	}
	report("the monitor client is not implemented yet");
	return 1;
}
