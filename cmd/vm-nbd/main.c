/*
 * vm-nbd: export a disk image over the NBD protocol, as qemu-nbd does
 * (same options, defaults and exit codes; see man/vm-nbd.1).
 *
 * main() wires the steps: parse the command line into struct nbd_config,
 * check it, fork if asked (the parent waits until the server is ready so
 * that errors still reach its stderr), open the image, open the listening
 * sockets, write the pid file, serve.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "fmt/fmt.h"
#include "vm-nbd.h"

#define LISTEN_FDS_START 3

enum {
	OPT_CACHE = 256, OPT_AIO, OPT_DISCARD, OPT_DETECT_ZEROES, OPT_FORK,
	OPT_PID_FILE, OPT_OBJECT, OPT_IMAGE_OPTS, OPT_FD, OPT_CONTROL_FD,
};

static const struct option long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "port", required_argument, NULL, 'p' },
	{ "bind", required_argument, NULL, 'b' },
	{ "socket", required_argument, NULL, 'k' },
	{ "offset", required_argument, NULL, 'o' },
	{ "format", required_argument, NULL, 'f' },
	{ "read-only", no_argument, NULL, 'r' },
	{ "partition", required_argument, NULL, 'P' },
	{ "snapshot", no_argument, NULL, 's' },
	{ "load-snapshot", required_argument, NULL, 'l' },
	{ "nocache", no_argument, NULL, 'n' },
	{ "cache", required_argument, NULL, OPT_CACHE },
	{ "aio", required_argument, NULL, OPT_AIO },
	{ "discard", required_argument, NULL, OPT_DISCARD },
	{ "detect-zeroes", required_argument, NULL, OPT_DETECT_ZEROES },
	{ "shared", required_argument, NULL, 'e' },
	{ "persistent", no_argument, NULL, 't' },
	{ "export-name", required_argument, NULL, 'x' },
	{ "description", required_argument, NULL, 'D' },
	{ "allocation-depth", no_argument, NULL, 'A' },
	{ "fork", no_argument, NULL, OPT_FORK },
	{ "pid-file", required_argument, NULL, OPT_PID_FILE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "object", required_argument, NULL, OPT_OBJECT },
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "control-fd", required_argument, NULL, OPT_CONTROL_FD },
	{ NULL, 0, NULL, 0 },
};

static const char short_opts[] = ":hVp:b:k:o:f:rP:sl:ne:tx:D:Av";

static void usage(void)
{
	printf(
"Usage: vm-nbd [OPTION]... FILENAME\n"
"Export a disk image over the NBD protocol.\n"
"\n"
"  -h, --help                display this help and exit\n"
"  -V, --version             output version information and exit\n"
"\n"
"Connection properties:\n"
"  -p, --port=PORT           TCP port to listen on (default 10809)\n"
"  -b, --bind=IFACE          interface to bind to (default: all, IPv4 and IPv6)\n"
"  -k, --socket=PATH         listen on the unix socket PATH (mode 0600)\n"
"      --fd=N[,N...]         serve the already-connected sockets, then exit\n"
"      --control-fd=N        take vm-run's snapshot and resize requests on socket N\n"
"  -e, --shared=NUM          serve up to NUM clients at once (default 1, 0 = no limit)\n"
"  -t, --persistent          don't exit when the last client disconnects\n"
"  -x, --export-name=NAME    the export name (default: the empty string)\n"
"  -D, --description=TEXT    the export description\n"
"  -A, --allocation-depth    accepted for qemu-nbd; qemu:allocation-depth is always offered\n"
"  -v, --verbose             log connections (twice: log NBD traffic)\n"
"      --fork                fork off the server and exit once it is ready\n"
"      --pid-file=PATH       write the server's process id to PATH\n"
"\n"
"Exposing part of the image:\n"
"  -o, --offset=OFFSET       export the image from OFFSET on\n"
"  -P, --partition=NUM       export only partition NUM (MBR 1-4, logical 5+, or GPT)\n"
"\n"
"General purpose options:\n"
"      --object secret,id=ID,data=...|file=...  define a secret\n"
"      --image-opts          FILENAME is a set of image options (driver=...,file.filename=...)\n"
"  -f, --format=FORMAT       the image format (default: probe)\n"
"  -r, --read-only           export read-only\n"
"  -s, --snapshot            write to a temporary overlay, never to the image\n"
"  -l, --load-snapshot=SNAPSHOT  export internal snapshot SNAPSHOT read-only\n"
"                            (snapshot.id=ID,snapshot.name=NAME or ID_OR_NAME)\n"
"  -n, --nocache             the same as --cache=none\n"
"      --cache=MODE          none, writeback (default), writethrough, directsync, unsafe\n"
"      --aio=MODE            threads (default), native or io_uring\n"
"      --discard=MODE        ignore (default, or off) or unmap (or on)\n"
"      --detect-zeroes=MODE  off (default), on or unmap\n"
"\n"
"Exit status: 0 when the server ended normally, 1 on errors.\n");
}

/* ---- parsing ---- */

static int bad(const char *fmt, const char *arg)
{
	report(fmt, arg);
	return -EINVAL;
}

/* -l: "snapshot.id=ID", "snapshot.name=NAME", or the bare id or name. */
static int parse_load_snapshot(const char *s, struct nbd_config *cfg)
{
	struct kvlist kv = { 0 };
	static const char *const known[] = { "snapshot.id", "snapshot.name", NULL };
	const char *v;

	if (strncmp(s, "snapshot.", 9)) {
		cfg->load_snapshot = s;
		return 0;
	}
	if (kv_parse(s, NULL, &kv) < 0 || kv_check(&kv, known) < 0) {
		kv_free(&kv);
		report_err();
		return -EINVAL;
	}
	v = kv_get(&kv, "snapshot.id");
	if (!v)
		v = kv_get(&kv, "snapshot.name");
	free(cfg->load_snapshot_buf);
	cfg->load_snapshot = cfg->load_snapshot_buf = v ? xstrdup(v) : NULL;
	kv_free(&kv);
	return v ? 0 : bad("%s: a snapshot id or name is needed", s);
}

static int parse_mode(int opt, const char *a, struct nbd_config *cfg)
{
	switch (opt) {
	case OPT_CACHE:
		if (strcmp(a, "none") && strcmp(a, "off") && strcmp(a, "writeback") &&
		    strcmp(a, "writethrough") && strcmp(a, "directsync") && strcmp(a, "unsafe"))
			return bad("Invalid cache mode '%s'", a);
		cfg->cache = a;
		return 0;
	case OPT_AIO:
		if (strcmp(a, "threads") && strcmp(a, "native") && strcmp(a, "io_uring"))
			return bad("invalid aio mode '%s'", a);
		cfg->aio = a;
		return 0;
	case OPT_DISCARD:
		if (!strcmp(a, "ignore") || !strcmp(a, "off"))
			cfg->discard = false;
		else if (!strcmp(a, "unmap") || !strcmp(a, "on"))
			cfg->discard = true;
		else
			return bad("Invalid discard option: %s", a);
		return 0;
	default:
		if (!strcmp(a, "off"))
			cfg->detect_zeroes = DZ_OFF;
		else if (!strcmp(a, "on"))
			cfg->detect_zeroes = DZ_ON;
		else if (!strcmp(a, "unmap"))
			cfg->detect_zeroes = DZ_UNMAP;
		else
			return bad("invalid detect-zeroes mode '%s'", a);
		return 0;
	}
}

/* --fd N[,N...]: one or more connected sockets, each a connection. */
static int parse_fds(const char *a, struct nbd_config *cfg)
{
	char *list = xstrdup(a), *save = NULL;
	int r = 0;

	cfg->nfds = 0;
	for (char *t = strtok_r(list, ",", &save); t && r == 0; t = strtok_r(NULL, ",", &save)) {
		if (cfg->nfds == MAX_FDS)
			r = bad("%s", "--fd takes at most 16 sockets");
		else if (sock_parse_fd(t, &cfg->fds[cfg->nfds++]) < 0)
			r = bad("Invalid file descriptor '%s'", t);
	}
	if (r == 0 && !cfg->nfds)
		r = bad("Invalid file descriptor '%s'", a);
	free(list);
	return r;
}

static int parse_number_opt(int opt, const char *a, struct nbd_config *cfg)
{
	uint64_t v;

	switch (opt) {
	case 'p':
		if (parse_u64(a, 1, 65535, &v) < 0)
			return bad("Invalid port number '%s'", a);
		cfg->port = a;
		return 0;
	case 'o':
		if (size_parse(a, 0, &cfg->offset) < 0)
			return bad("Invalid offset '%s'", a);
		return 0;
	case 'P':
		if (parse_int(a, 1, 128, &cfg->partition) < 0)
			return bad("Invalid partition '%s'", a);
		return 0;
	case 'e':
		if (parse_int(a, 0, 1 << 20, &cfg->shared) < 0)
			return bad("Invalid shared device number '%s'", a);
		return 0;
	case OPT_CONTROL_FD:
		if (sock_parse_fd(a, &cfg->control_fd) < 0)
			return bad("Invalid file descriptor '%s'", a);
		return 0;
	default:
		return parse_fds(a, cfg);
	}
}

static int parse_one(int opt, const char *a, struct nbd_config *cfg)
{
	switch (opt) {
	case 'p': case 'o': case 'P': case 'e': case OPT_FD: case OPT_CONTROL_FD:
		return parse_number_opt(opt, a, cfg);
	case OPT_CACHE: case OPT_AIO: case OPT_DISCARD: case OPT_DETECT_ZEROES:
		return parse_mode(opt, a, cfg);
	case 'n': cfg->cache = "none"; return 0;
	case 'b': cfg->bind = a; return 0;
	case 'k': cfg->sockpath = a; return 0;
	case 'f': cfg->format = a; return 0;
	case 'r': cfg->read_only = true; return 0;
	case 's': cfg->snapshot = true; return 0;
	case 'l': return parse_load_snapshot(a, cfg);
	case 't': cfg->persistent = true; return 0;
	case 'x': cfg->export_name = a; return 0;
	case 'D': cfg->description = a; return 0;
	case 'A': cfg->allocation_depth = true; return 0;
	case 'v': cfg->verbose = true; log_level = log_level < LOG_INFO ? LOG_INFO : LOG_DEBUG;
		if (log_level == LOG_DEBUG)
			log_mask |= LOG_NBD;
		return 0;
	case OPT_FORK: cfg->fork = true; return 0;
	case OPT_PID_FILE: cfg->pid_file = a; return 0;
	case OPT_IMAGE_OPTS: cfg->image_opts = true; return 0;
	case OPT_OBJECT:
		if (secret_add_object(cfg->secrets, a) < 0) {
			report_err();
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

static int check_config(struct nbd_config *cfg)
{
	if (!cfg->filename)
		return bad("%s", "Expected exactly one image file argument");
	if (strlen(cfg->export_name) > NBD_MAX_STRING)
		return bad("%s", "export name is longer than 4096 bytes");
	if (cfg->description && strlen(cfg->description) > NBD_MAX_STRING)
		return bad("%s", "description is longer than 4096 bytes");
	if (cfg->sockpath && (cfg->bind || cfg->port))
		return bad("%s", "-k cannot be used with -b or -p");
	if (cfg->nfds && (cfg->sockpath || cfg->bind || cfg->port))
		return bad("%s", "--fd cannot be used with -k, -b or -p");
	if (cfg->snapshot && cfg->load_snapshot)
		return bad("%s", "-s and -l cannot be used together");
	if (cfg->image_opts && cfg->format)
		return bad("%s", "--image-opts and --format are mutually exclusive");
	if (cfg->detect_zeroes == DZ_UNMAP && !cfg->discard)
		return bad("%s", "--detect-zeroes=unmap requires --discard=unmap");
	if (cfg->aio && !strcmp(cfg->aio, "native") &&
	    (!cfg->cache || (strcmp(cfg->cache, "none") && strcmp(cfg->cache, "directsync"))))
		return bad("%s", "aio=native was specified, but it requires cache.direct=on");
	return 0;
}

static int parse_args(int argc, char **argv, struct nbd_config *cfg)
{
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			usage();
			exit(report_close_stdout() ? 1 : 0);
		case 'V':
			printf("vm-nbd version %s\n", VM_VERSION);
			exit(report_close_stdout() ? 1 : 0);
		case '?':
		case ':':
			report("%s", opt_error(opt, argv));
			return -EINVAL;
		default:
			if (parse_one(opt, optarg, cfg) < 0)
				return -EINVAL;
		}
	}
	if (optind + 1 < argc)
		return bad("%s", "Expected exactly one image file argument");
	cfg->filename = optind < argc ? argv[optind] : NULL;
	return check_config(cfg);
}

/* ---- daemon, listening sockets, pid file ---- */

/* --fork: the parent waits for one byte on a pipe ("ready") and exits 0,
 * or exits 1 if the child dies first (it has printed why).  Returns the
 * pipe's write end in the child. */
static int daemonize(void)
{
	int p[2], status;
	pid_t pid;
	char b;

	if (pipe(p) < 0 || (pid = fork()) < 0) {
		report("fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &b, 1) == 1)
			exit(0);
		waitpid(pid, &status, 0);
		exit(1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

static void detach_stdio(int ready_fd)
{
	int fd = open("/dev/null", O_RDWR);
	char b = 1;

	if (write(ready_fd, &b, 1) < 0)
		log_warn("cannot signal readiness");
	close(ready_fd);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* systemd socket activation: LISTEN_PID is us, LISTEN_FDS sockets from 3. */
static int activation_fds(int *fds, int max)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	uint64_t p, k;

	if (!pid || !n || parse_u64(pid, 1, INT32_MAX, &p) < 0 || (pid_t)p != getpid() ||
	    parse_u64(n, 1, (uint64_t)max, &k) < 0)
		return 0;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (int i = 0; i < (int)k; i++) {
		fds[i] = LISTEN_FDS_START + i;
		set_cloexec(fds[i], true);
	}
	return (int)k;
}

static int open_listeners(const struct nbd_config *cfg, int *fds, int max, int nact)
{
	int fd;

	if (nact) {
		if (cfg->sockpath || cfg->bind || cfg->port)
			return err_set(-EINVAL, "-k, -b and -p cannot be used with socket activation");
		return nact;
	}
	if (cfg->sockpath) {
		fd = sock_listen_unix(cfg->sockpath, 0600);
		if (fd < 0)
			return fd;
		fds[0] = fd;
		return 1;
	}
	return sock_listen_tcp(cfg->bind, cfg->port ? cfg->port : NBD_DEFAULT_PORT, fds, max);
}

static int write_pid_file(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f)) {
		int e = errno;

		return err_set_errno(e, "Failed to write pid file '%s'", path);
	}
	return 0;
}

/* ---- main ---- */

static int serve(struct nbd_config *cfg, int ready_fd, int nact, int *lfds)
{
	struct server s = { .cfg = cfg, .notify = { -1, -1 } };
	struct control *ctl = NULL;
	int n = 0, r;

	if ((r = export_open(cfg, &s.exp)) < 0)
		return r;
	if (cfg->control_fd >= 0)
		ctl = control_start(s.exp, cfg, cfg->control_fd);
	if (!cfg->nfds && (n = r = open_listeners(cfg, lfds, 16, nact)) < 0)
		goto out;
	if (cfg->pid_file && (r = write_pid_file(cfg->pid_file)) < 0)
		goto out;
	if (ready_fd >= 0)
		detach_stdio(ready_fd);
	s.pool = pool_new(MAX(8, 4 * cpu_count()));
	if (!s.pool) {
		r = -EAGAIN;
		goto out;
	}
	r = cfg->nfds ? server_run_fd(&s, cfg->fds, cfg->nfds) : server_run(&s, lfds, n);
	pool_free(s.pool);
out:
	for (int i = 0; i < n; i++)
		close(lfds[i]);
	if (cfg->sockpath && n > 0)
		unlink(cfg->sockpath);
	if (cfg->pid_file && r >= 0)
		unlink(cfg->pid_file);
	control_stop(ctl);
	export_close(s.exp);
	return r;
}

int main(int argc, char **argv)
{
	struct nbd_config cfg = { .control_fd = -1, .shared = 1, .export_name = "" };
	int lfds[16], nact, ready_fd = -1, r;

	report_init("vm-nbd");
	/* Request buffers (up to 32 MiB) come and go all the time: keep them
	 * in the heap instead of fresh zeroed pages from mmap() each time. */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	cfg.secrets = secret_store_new();
	if (parse_args(argc, argv, &cfg) < 0) {
		secret_store_free(cfg.secrets);
		free(cfg.load_snapshot_buf);
		return 1;
	}
	nact = activation_fds(lfds, 16);
	if (cfg.fork)
		ready_fd = daemonize();
	r = serve(&cfg, ready_fd, nact, lfds);
	secret_store_free(cfg.secrets);
	free(cfg.load_snapshot_buf);
	if (r < 0) {
		report_err();
		return 1;
	}
	return 0;
}
