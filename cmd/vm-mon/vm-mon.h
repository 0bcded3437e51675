/*
 * vm-mon's pieces: main.c parses the options and connects; run.c runs
 * human or raw QMP lines, scripts, --wait and --events; interactive.c is
 * the terminal front end (libedit).
 */
#ifndef VM_MON_H
#define VM_MON_H

#include <stdbool.h>
#include <stdio.h>

#include "common/common.h"

struct mon_config {
	const char *addr;        /* the monitor socket */
	bool json;               /* --json: lines are raw QMP */
	const char *wait_event;  /* --wait EVENT */
	bool events;             /* --events */
	int timeout_ms;          /* --timeout, -1 for none */
	char **cmd;              /* the command words, if any */
	int ncmd;
};

struct mon {
	struct mon_config cfg;
	struct qmp_client *qmp;
	struct hmp_session hmp;
	bool gone;               /* the monitor closed the connection */
};

/* hmp_qmp_fn over the client. */
int mon_qmp(void *opaque, const char *cmd, json_t *args, json_t **ret);
/* Run one line (human or, with --json, raw QMP); print its output or
 * report its error.  Returns the exit status, 0 or 1. */
int mon_line(struct mon *m, const char *line);
/* Every line of f; 1 if any failed. */
int mon_script(struct mon *m, FILE *f);
int mon_interactive(struct mon *m);
int mon_wait(struct mon *m, const char *event);
int mon_events(struct mon *m);

#endif
