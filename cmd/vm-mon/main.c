/*
 * vm-mon: the monitor client for people and scripts.  It speaks QMP to a
 * running vm-run (or qemu-system-x86_64) over a socket, translating human
 * monitor commands into QMP through the shared HMP layer
 * (lib/common/hmp*.c), or passing raw QMP through with --json.
 *
 *   vm-mon SOCKET 'info status'        one command; exit 0, or 1 + error
 *   vm-mon SOCKET < script             one command per line
 *   vm-mon SOCKET                      interactive (libedit) on a terminal
 *   vm-mon --wait SHUTDOWN SOCKET      until the event arrives
 *   vm-mon --events SOCKET             events as JSON lines
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "common/common.h"
#include "vm-mon.h"

static void mon_usage(void)
{
	printf("Usage: vm-mon [OPTIONS] SOCKET [COMMAND...]\n\n"
	       "Send monitor commands to a running vm-run or QEMU over QMP.\n"
	       "SOCKET is a unix socket path, unix:PATH, tcp:HOST:PORT or fd:N.\n"
	       "With no COMMAND, read commands from standard input, one per line\n"
	       "(interactively, with line editing and history, on a terminal).\n\n"
	       "Options:\n"
	       "  -j, --json           send COMMAND as raw QMP JSON and print raw replies\n"
	       "  -w, --wait EVENT     wait until EVENT arrives (after running COMMAND), then exit\n"
	       "  -t, --timeout S      give up waiting for a reply or event after S seconds (exit 1)\n"
	       "  -e, --events         print events as JSON lines until the VM goes away\n"
	       "  -d, --debug CATS     debug categories (qmp: log the traffic)\n"
	       "  -h, --help           show this help and exit\n"
	       "  -V, --version        show the version and exit\n");
}

/* Parse the command line into cfg; 0 to go on, 1 when done (help,
 * version), -1 on error (reported). */
static int mon_parse(int argc, char **argv, struct mon_config *cfg)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "wait", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "events", no_argument, NULL, 'e' },
		{ "debug", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c, t;

	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:jw:t:ed:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			cfg->json = true;
			break;
		case 'w':
			cfg->wait_event = optarg;
			break;
		case 'e':
			cfg->events = true;
			break;
		case 't':
			if (parse_int(optarg, 0, 86400 * 365, &t) < 0) {
				report("--timeout: %s", err_msg());
				return -1;
			}
			cfg->timeout_ms = t * 1000;
			break;
		case 'd':
			if (log_parse_categories(optarg, &log_mask) < 0) {
				report("--debug: %s", err_msg());
				return -1;
			}
			break;
		case 'h':
			mon_usage();
			return 1;
		case 'V':
			printf("vm-mon version %s\n", VM_VERSION);
			return 1;
		default:
			report("%s", opt_error(c, argv));
			return -1;
		}
	}
	if (optind >= argc) {
		report("missing monitor SOCKET (try --help)");
		return -1;
	}
	if (cfg->wait_event && cfg->events) {
		report("--wait and --events cannot be combined");
		return -1;
	}
	cfg->addr = argv[optind++];
	cfg->cmd = argv + optind;
	cfg->ncmd = argc - optind;
	return 0;
}

/* The command words joined by spaces, as one monitor line. */
static char *mon_join(char **words, int n)
{
	size_t len = 1;
	char *s;

	for (int i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	s = xzalloc(len);
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(s, " ");
		strcat(s, words[i]);
	}
	return s;
}

static int mon_connect(struct mon *m)
{
	int r, greet = m->cfg.timeout_ms >= 0 ? m->cfg.timeout_ms : 10000;

	if ((r = qmp_client_open(m->cfg.addr, greet, &m->qmp)) < 0)
		return r;
	qmp_client_set_timeout(m->qmp, m->cfg.timeout_ms);
	if ((r = qmp_client_negotiate(m->qmp)) < 0)
		err_prefix("%s: capabilities negotiation", m->cfg.addr);
	return r;
}

static int mon_run(struct mon *m)
{
	int status = 0;

	if (m->cfg.ncmd) {
		char *line = mon_join(m->cfg.cmd, m->cfg.ncmd);

		status = mon_line(m, line);
		free(line);
	} else if (!m->cfg.wait_event && !m->cfg.events) {
		status = isatty(STDIN_FILENO) ? mon_interactive(m) : mon_script(m, stdin);
	}
	if (status == 0 && m->cfg.wait_event)
		status = mon_wait(m, m->cfg.wait_event);
	if (status == 0 && m->cfg.events)
		status = mon_events(m);
	return status;
}

int main(int argc, char **argv)
{
	struct mon m = { 0 };
	int r;

	report_init(argv[0]);
	r = mon_parse(argc, argv, &m.cfg);
	if (r)
		return r > 0 ? (report_close_stdout() ? 1 : 0) : 1;
	if (mon_connect(&m) < 0) {
		report_err();
		qmp_client_close(m.qmp);
		return 1;
	}
	hmp_session_init(&m.hmp, mon_qmp, &m);
	r = mon_run(&m);
	qmp_client_close(m.qmp);
	if (report_close_stdout())
		r = 1;
	return r;
}
