/*
 * Live VM snapshots through a running machine's monitor: vm-snap save,
 * load and del send QEMU's human commands savevm, loadvm and delvm over
 * QMP (human-monitor-command), so they work against vm-run and a real
 * qemu-system-x86_64 alike.  The VM state and the disks' internal
 * snapshots are written by the machine itself (for vm-run: by its vm-nbd
 * children, into the drives' qcow2 images).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "snap.h"

#define LIVE_CONNECT_MS 10000

/* Parse "--monitor SOCKET [TAG]"; *tag NULL when absent.  0 or -1. */
static int live_args(int argc, char **argv, bool tag_optional, const char **mon,
		     const char **tag)
{
	static const struct option longopts[] = {
		{ "monitor", required_argument, NULL, 'm' },
		{ 0 }
	};
	int c, left;

	optind = 1;
	opterr = 0;
	*mon = *tag = NULL;
	while ((c = getopt_long(argc, argv, "+:m:", longopts, NULL)) != -1) {
		if (c == 'm') {
			*mon = optarg;
			continue;
		}
		report("%s: %s", argv[0], opt_error(c, argv));
		return -1;
	}
	left = argc - optind;
	if (!*mon || left > 1 || (left == 0 && !tag_optional)) {
		report("%s: expected --monitor SOCKET %s (try --help)", argv[0],
		       tag_optional ? "[NAME]" : "NAME");
		return -1;
	}
	*tag = left ? argv[optind] : NULL;
	if (*tag && (!**tag || strchr(*tag, '\n'))) {
		report("%s: invalid snapshot name", argv[0]);
		return -1;
	}
	return 0;
}

/* Run one human command; its output, if any, is an error (as QEMU's
 * savevm/loadvm/delvm print nothing when they succeed). */
static int live_run(const char *mon, const char *line)
{
	struct qmp_client *c;
	json_t *ret = NULL;
	int r = qmp_client_open(mon, LIVE_CONNECT_MS, &c);

	if (r < 0) {
		report_err();
		return 1;
	}
	r = qmp_client_negotiate(c);
	if (r == 0)
		r = qmp_client_execute(c, "human-monitor-command",
				       json_pack("{s:s}", "command-line", line), &ret);
	qmp_client_close(c);
	if (r < 0) {
		report_err();
		return 1;
	}
	const char *out = json_string_value(ret);
	if (out && *out) {
		size_t n = strcspn(out, "\r\n");
		if (!strncmp(out, "Error: ", 7))
			out += 7, n -= 7;
		report("%.*s", (int)n, out);
		json_decref(ret);
		return 1;
	}
	json_decref(ret);
	return 0;
}

static int live_cmd(int argc, char **argv, const char *verb, bool tag_optional)
{
	const char *mon, *tag;
	char *line;
	int r;

	if (live_args(argc, argv, tag_optional, &mon, &tag) < 0)
		return 1;
	line = tag ? xasprintf("%s %s", verb, tag) : xstrdup(verb);
	r = live_run(mon, line);
	free(line);
	return r;
}

int snap_save(int argc, char **argv)
{
	return live_cmd(argc, argv, "savevm", true);
}

int snap_load(int argc, char **argv)
{
	return live_cmd(argc, argv, "loadvm", false);
}

int snap_del(int argc, char **argv)
{
	return live_cmd(argc, argv, "delvm", false);
}
