/*
 * Running monitor lines: human commands through the shared HMP layer,
 * raw QMP (--json) passed through with every reply printed, scripts read
 * line by line, and the event modes (--wait, --events) that print
 * events as one JSON line each, in QEMU's spacing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "vm-mon.h"

int mon_qmp(void *opaque, const char *cmd, json_t *args, json_t **ret)
{
	struct mon *m = opaque;
	int r = qmp_client_execute(m->qmp, cmd, args, ret);

	/* quit: QEMU may close the connection before its reply arrives */
	if (r == -ECONNRESET && !strcmp(cmd, "quit")) {
		m->gone = true;
		return 0;
	}
	if (r == -ECONNRESET)
		m->gone = true;
	return r;
}

static void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	if (s) {
		printf("%s\n", s);
		free(s);
	}
	fflush(stdout);
}

/* Events that arrived during human commands are not shown: drop them so
 * a long session does not pile them up. */
static void drop_events(struct mon *m)
{
	json_t *ev;

	while (qmp_client_event(m->qmp, 0, &ev) == 0)
		json_decref(ev);
}

static int mon_human(struct mon *m, const char *line)
{
	char *out = NULL;
	int r = hmp_run(&m->hmp, line, &out);

	if (out)
		fputs(out, stdout);
	free(out);
	fflush(stdout);
	if (r < 0) {
		report_err();
		return 1;
	}
	if (!m->cfg.events && !m->cfg.wait_event && !m->gone)
		drop_events(m);
	return 0;
}

/* --json: send the line as it is and print each reply, and the events
 * that come before them, until every message in the line is answered. */
static int mon_raw(struct mon *m, const char *line)
{
	bool incomplete;
	size_t want = qmp_stream_count(line, &incomplete), got = 0;
	json_t *msg;
	int r, status = 0;

	if (incomplete) {
		report("incomplete JSON: %s", line);
		return 1;
	}
	if ((r = qmp_client_send_raw(m->qmp, line, strlen(line))) < 0 ||
	    (r = qmp_client_send_raw(m->qmp, "\n", 1)) < 0) {
		report_err();
		return 1;
	}
	while (got < want) {
		if ((r = qmp_client_recv(m->qmp, m->cfg.timeout_ms, &msg)) < 0) {
			m->gone = r == -ECONNRESET;
			report_err();
			return 1;
		}
		print_json(msg);
		if (!json_object_get(msg, "event")) {
			got++;
			status |= json_object_get(msg, "error") != NULL;
		}
		json_decref(msg);
	}
	return status;
}

int mon_line(struct mon *m, const char *line)
{
	return m->cfg.json ? mon_raw(m, line) : mon_human(m, line);
}

int mon_script(struct mon *m, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;

	while (!m->gone && (n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (!*line || *line == '#')
			continue;
		status |= mon_line(m, line);
	}
	free(line);
	return status;
}

static const char *event_name(json_t *ev)
{
	const char *s = json_string_value(json_object_get(ev, "event"));

	return s ? s : "";
}

/* --wait EVENT: print it when it comes, exit 0; 1 on timeout or when
 * the monitor goes away first.  EVENT may list several: A,B. */
int mon_wait(struct mon *m, const char *event)
{
	json_t *ev;
	int r;

	for (;;) {
		r = qmp_client_event(m->qmp, m->cfg.timeout_ms, &ev);
		if (r == -ETIMEDOUT) {
			report("timed out waiting for %s", event);
			return 1;
		}
		if (r < 0) {
			report("the monitor closed the connection before %s", event);
			return 1;
		}
		const char *name = event_name(ev);
		size_t n = strlen(name);
		bool hit = false;

		for (const char *p = event; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ','))
			hit |= strcspn(p, ",") == n && !strncmp(p, name, n);
		if (hit)
			print_json(ev);
		json_decref(ev);
		if (hit)
			return 0;
	}
}

/* --events: every event as a JSON line until the monitor goes away (exit
 * 0) or --timeout seconds pass without one (exit 0 as well: the stream
 * simply ended). */
int mon_events(struct mon *m)
{
	json_t *ev;
	int r;

	while ((r = qmp_client_event(m->qmp, m->cfg.timeout_ms, &ev)) == 0) {
		print_json(ev);
		json_decref(ev);
	}
	if (r == -ETIMEDOUT || r == -ECONNRESET)
		return 0;
	report_err();
	return 1;
}
