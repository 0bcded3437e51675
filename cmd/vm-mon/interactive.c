/*
 * The interactive monitor on a terminal: a "(vm-mon) " prompt with line
 * editing and history through libedit's readline interface, the history
 * kept in ~/.vm-mon_history.  Errors are reported and the session goes
 * on; it ends at end of input (Ctrl-D), on quit, or when the machine
 * goes away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <editline/readline.h>

#include "common/common.h"
#include "vm-mon.h"

static char *history_path(void)
{
	const char *home = getenv("HOME");

	return home && *home ? xasprintf("%s/.vm-mon_history", home) : NULL;
}

int mon_interactive(struct mon *m)
{
	char *hist = history_path(), *line;
	int status = 0;

	using_history();
	stifle_history(1000);
	if (hist)
		read_history(hist);
	while (!m->gone && (line = readline(m->cfg.json ? "(vm-mon json) " : "(vm-mon) "))) {
		const char *p = line + strspn(line, " \t");

		if (*p) {
			add_history(line);
			status = mon_line(m, p);
		}
		free(line);
	}
	if (!m->gone)
		putchar('\n');
	if (hist) {
		write_history(hist);
		free(hist);
	}
	return status;
}
