/*
 * vm-net: network back-ends as a process.  Frames travel to vm-run (or a
 * QEMU -netdev stream) over a stream socket, each prefixed by its length
 * as a 4-byte big-endian integer.  Back-ends: user (libslirp), hub, tap
 * (backends.c); the LAN that joins them to the ports is lan.c.
 *
 * main() parses the command line into one struct net_cmdline, then
 * builds the LAN (back-end, listeners, connections, control socket),
 * optionally detaches (--fork), and runs it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"

#define SNAPLEN_DEFAULT 65536   /* QEMU's dump len= default */
#define SNAPLEN_MAX 262144

struct net_cmdline {
	const char **listen;        /* -k and --listen addresses */
	size_t nlisten;
	int *fds;                   /* --fd */
	size_t nfds;
	const char **connect;       /* --connect */
	size_t nconnect;
	const char *control;
	const char *pid_file;
	bool fork;
	struct lan_config lan;
	const struct net_backend *be;
	struct kvlist opts;         /* every KEY=VALUE after the back-end */
};

enum {
	OPT_PCAP = 256, OPT_SNAPLEN, OPT_PCAP_SIZE, OPT_FORK, OPT_PID_FILE,
};

static void net_usage(void)
{
	printf("Usage: vm-net [OPTIONS] BACKEND [KEY=VALUE,...]...\n"
	       "       vm-net ctl SOCKET COMMAND [ARG...]\n\n"
	       "Run a network back-end for vm-run or QEMU (-netdev stream framing),\n"
	       "or send one command to a running vm-net's control socket.\n\n"
	       "Back-ends (BACKEND help lists its keys):\n");
	for (const struct net_backend *const *b = net_backends; *b; b++)
		printf("  %-8s %s\n", (*b)->name, (*b)->summary);
	printf("\nOptions:\n"
	       "  -k, --socket PATH     listen on a unix socket (mode 0600)\n"
	       "  -l, --listen ADDR     listen on tcp:HOST:PORT or unix:PATH\n"
	       "  -f, --fd N            serve an inherited socket (connected or listening)\n"
	       "  -c, --connect ADDR    connect to another vm-net (tcp:HOST:PORT or\n"
	       "                        unix:PATH) and reconnect while it is away\n"
	       "  -C, --control PATH    accept control commands on a unix socket (or fd:N)\n"
	       "      --pcap FILE       capture every frame to FILE (libpcap format)\n"
	       "      --snaplen N       capture at most N bytes of each frame (65536)\n"
	       "      --pcap-size SIZE  start a new capture file (FILE.1, ...) past SIZE\n"
	       "      --fork            run in the background once ready\n"
	       "      --pid-file FILE   write the process id to FILE\n"
	       "  -d CATEGORIES         debug logging (-d help lists them)\n"
	       "  -h, --help            show this help and exit\n"
	       "  -V, --version         show the version and exit\n");
}

static int backend_help(const struct net_backend *be)
{
	printf("%s: %s\nKeys:", be->name, be->summary);
	for (const char *const *k = be->keys; *k; k++)
		printf(" %s=", *k);
	printf("\n");
	return report_close_stdout() ? 1 : 0;
}

static void push_str(const char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = s;
}

/* -d, -h and -V: returns 0 to go on, -1 to exit 0, 1 to exit 1. */
static int net_info_option(int c)
{
	switch (c) {
	case 'd':
		c = log_parse_categories(optarg, &log_mask);
		if (c < 0) {
			report_err();
			return 1;
		}
		if (c == 0)
			return 0;
		for (size_t i = 0; i < log_cat_count; i++)
			printf("%-14s %s\n", log_cat_names[i].name, log_cat_names[i].help);
		break;
	case 'h':
		net_usage();
		break;
	default:
		printf("vm-net version %s\n", VM_VERSION);
		break;
	}
	return report_close_stdout() ? 1 : -1;
}

/* The capture options. */
static int net_pcap_option(struct net_cmdline *cl, int c)
{
	uint64_t v;

	switch (c) {
	case OPT_PCAP:
		cl->lan.pcap = optarg;
		return 0;
	case OPT_SNAPLEN:
		if (parse_u64(optarg, 1, SNAPLEN_MAX, &v) < 0) {
			report("--snaplen: '%s' is not a number from 1 to %d", optarg, SNAPLEN_MAX);
			return 1;
		}
		cl->lan.snaplen = (unsigned)v;
		return 0;
	default:
		if (size_parse(optarg, 0, &v) < 0) {
			err_prefix("--pcap-size");
			report_err();
			return 1;
		}
		if (v < 1024) {
			report("--pcap-size: %s is too small (at least 1k)", optarg);
			return 1;
		}
		cl->lan.pcap_size = v;
		return 0;
	}
}

/* One option; returns 0, or the exit status when main should stop (-1
 * for 0). */
static int net_option(struct net_cmdline *cl, int c, char **argv)
{
	int fd;

	switch (c) {
	case 'k':
	case 'l':
		push_str(&cl->listen, &cl->nlisten, optarg);
		return 0;
	case 'c':
		push_str(&cl->connect, &cl->nconnect, optarg);
		return 0;
	case 'f':
		if (sock_parse_fd(optarg, &fd) < 0) {
			report_err();
			return 1;
		}
		cl->fds = xrealloc(cl->fds, (cl->nfds + 1) * sizeof(*cl->fds));
		cl->fds[cl->nfds++] = fd;
		return 0;
	case 'C':
		cl->control = optarg;
		return 0;
	case OPT_PCAP:
	case OPT_SNAPLEN:
	case OPT_PCAP_SIZE:
		return net_pcap_option(cl, c);
	case OPT_FORK:
		cl->fork = true;
		return 0;
	case OPT_PID_FILE:
		cl->pid_file = optarg;
		return 0;
	case 'd':
	case 'h':
	case 'V':
		return net_info_option(c);
	default:
		report("%s", opt_error(c, argv));
		return 1;
	}
}

/* BACKEND[,KEY=VALUE...] [KEY=VALUE,...]...: the back-end and its keys. */
static int net_positional(struct net_cmdline *cl, int argc, char **argv)
{
	char *name = xstrdup(argv[0]), *comma = strchr(name, ',');

	if (comma)
		*comma++ = 0;
	cl->be = net_backend_find(name);
	if (!cl->be) {
		report("unknown back-end '%s' (user, hub or tap)", name);
		free(name);
		return 1;
	}
	for (int i = comma ? 0 : 1; i < argc; i++) {
		const char *s = i ? argv[i] : comma;
		struct kvlist one;

		if (kv_is_help(s)) {
			free(name);
			return backend_help(cl->be) ? 1 : -1;
		}
		if (kv_parse(s, NULL, &one) < 0) {
			report_err();
			free(name);
			return 1;
		}
		for (size_t k = 0; k < one.n; k++)
			kv_set(&cl->opts, one.v[k].key, one.v[k].val);
		kv_free(&one);
	}
	free(name);
	if (kv_check(&cl->opts, cl->be->keys) < 0) {
		err_prefix("%s", cl->be->name);
		report_err();
		return 1;
	}
	return 0;
}

static int net_parse(struct net_cmdline *cl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 'k' },
		{ "listen", required_argument, NULL, 'l' },
		{ "fd", required_argument, NULL, 'f' },
		{ "connect", required_argument, NULL, 'c' },
		{ "control", required_argument, NULL, 'C' },
		{ "pcap", required_argument, NULL, OPT_PCAP },
		{ "snaplen", required_argument, NULL, OPT_SNAPLEN },
		{ "pcap-size", required_argument, NULL, OPT_PCAP_SIZE },
		{ "fork", no_argument, NULL, OPT_FORK },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c, r;

	cl->lan.snaplen = SNAPLEN_DEFAULT;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:l:f:c:C:d:hV", longopts, NULL)) != -1)
		if ((r = net_option(cl, c, argv)) != 0)
			return r;
	if (optind >= argc) {
		report("missing back-end: user, hub or tap (try --help)");
		return 1;
	}
	if ((r = net_positional(cl, argc - optind, argv + optind)) != 0)
		return r;
	if (!cl->nlisten && !cl->nfds && !cl->nconnect) {
		report("nothing to serve: give -k PATH, --listen ADDR, --fd N or --connect ADDR");
		return 1;
	}
	return 0;
}

/* Detach once everything listens: the parent records the child's pid and
 * exits 0, so a script may connect as soon as `vm-net --fork` returns. */
static int net_daemonize(const struct net_cmdline *cl)
{
	pid_t pid = cl->fork ? fork() : getpid();
	FILE *f;
	int null;

	if (pid < 0)
		return err_set_errno(errno, "fork");
	if (cl->fork && pid == 0) {
		setsid();
		if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			close(null);
		}
		return 0;
	}
	if (cl->pid_file) {
		f = fopen(cl->pid_file, "w");
		if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0)
			return err_set_errno(errno, "%s", cl->pid_file);
	}
	if (cl->fork)
		_exit(0);
	return 0;
}

static int net_setup(struct lan *lan, const struct net_cmdline *cl)
{
	const char *id = kv_get(&cl->opts, "id");
	int r;

	if (id)
		lan->id = xstrdup(id);
	if ((r = cl->be->open(lan, &cl->opts, &lan->be_state)) < 0)
		return r;
	lan->be = cl->be;
	for (size_t i = 0; i < cl->nlisten; i++)
		if ((r = port_listen(lan, cl->listen[i])) < 0)
			return r;
	for (size_t i = 0; i < cl->nfds; i++)
		if ((r = port_adopt_fd(lan, cl->fds[i])) < 0)
			return r;
	for (size_t i = 0; i < cl->nconnect; i++)
		if ((r = port_connect(lan, cl->connect[i])) < 0)
			return r;
	if (cl->control && (r = control_listen(lan, cl->control)) < 0)
		return r;
	return net_daemonize(cl);
}

int main(int argc, char **argv)
{
	struct net_cmdline cl = { 0 };
	struct lan *lan;
	int r;

	report_init(argv[0]);
	if (argc >= 2 && !strcmp(argv[1], "ctl")) {
		if (argc < 4) {
			report("usage: vm-net ctl SOCKET COMMAND [ARG...]");
			return 1;
		}
		if (control_client(argv[2], argc - 3, argv + 3) < 0) {
			report_err();
			return 1;
		}
		return report_close_stdout() ? 1 : 0;
	}
	r = net_parse(&cl, argc, argv);
	if (r == 0) {
		lan = lan_new(&cl.lan);
		if (!lan || net_setup(lan, &cl) < 0 || lan_run(lan) < 0) {
			report_err();
			r = 1;
		}
		lan_free(lan);
	}
	kv_free(&cl.opts);
	free(cl.listen);
	free(cl.connect);
	free(cl.fds);
	return r < 0 ? 0 : r;
}
