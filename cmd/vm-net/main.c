/*
 * vm-net: network back-ends as a process.  Frames travel to vm-run (or a
 * QEMU -netdev stream) over a stream socket, each prefixed by its length
 * as a 4-byte big-endian integer.  Back-ends: user (libslirp), hub, tap.
 * Not built yet: the command line is checked, then it says so and exits 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static const char *const net_backends[] = { "user", "hub", "tap" };

static void net_usage(void)
{
	printf("Usage: vm-net [OPTIONS] BACKEND [KEY=VALUE,...]\n\n"
	       "Run a network back-end for vm-run or QEMU (-netdev stream framing).\n\n"
	       "Back-ends:\n"
	       "  user     user-mode networking (libslirp): net=, host=, dns=, hostfwd=, ...\n"
	       "  hub      join every connected port into one LAN (QEMU's VLAN)\n"
	       "  tap      a host tap device\n\n"
	       "Options:\n"
	       "  -k, --socket PATH    listen on a unix socket\n"
	       "  -l, --listen ADDR    listen on tcp:HOST:PORT\n"
	       "  -f, --fd N           serve an inherited, connected socket\n"
	       "      --pcap FILE      capture every frame to FILE (libpcap format)\n"
	       "      --snaplen N      capture at most N bytes of each frame\n"
	       "  -d CATEGORIES        debug logging (-d help lists them)\n"
	       "  -h, --help           show this help and exit\n"
	       "  -V, --version        show the version and exit\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'k' },
		{ "listen", required_argument, NULL, 'l' },
		{ "fd", required_argument, NULL, 'f' },
		{ "pcap", required_argument, NULL, 'p' },
		{ "snaplen", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c;

	report_init(argv[0]);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+k:l:f:d:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
		case 'l':
		case 'f':
		case 'p':
		case 's':
			break;
		case 'd':
			c = log_parse_categories(optarg, &log_mask);
			if (c == 1) {
				for (size_t i = 0; i < log_cat_count; i++)
					printf("%-14s %s\n", log_cat_names[i].name, log_cat_names[i].help);
				return report_close_stdout() ? 1 : 0;
			}
			if (c < 0) {
				report_err();
				return 1;
			}
			break;
		case 'h':
			net_usage();
			return report_close_stdout() ? 1 : 0;
		case 'V':
			printf("vm-net version %s\n", VM_VERSION);
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
		report("missing back-end: user, hub or tap (try --help)");
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(net_backends); i++)
		if (!strcmp(argv[optind], net_backends[i])) {
			report("%s: not implemented yet", argv[optind]);
			return 1;
		}
	report("unknown back-end '%s' (user, hub or tap)", argv[optind]);
	return 1;
}
