/*
 * JSON output through jansson, in the two shapes QEMU uses: qemu-img's
 * pretty form (4-space indent, keys in insertion order) and QMP's compact
 * single line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common.h"

/* QEMU's pretty printer opens and closes an empty array or object on two
 * lines ("[" then "]" at the line's indent); jansson writes "[]". */
static char *pretty_empties(char *s)
{
	size_t n = 0, i, o = 0, line = 0, extra = 0;
	bool str = false;
	char *r;

	for (i = 0; s[i]; i++)
		if ((s[i] == '[' || s[i] == '{') && (s[i + 1] == ']' || s[i + 1] == '}'))
			n++;
	if (!n)
		return s;
	r = xmalloc(i + n * 64 + 1);
	for (i = 0; s[i]; i++) {
		r[o++] = s[i];
		if (str) {
			if (s[i] == '\\' && s[i + 1])
				r[o++] = s[++i];
			else if (s[i] == '"')
				str = false;
			continue;
		}
		if (s[i] == '"')
			str = true;
		else if (s[i] == '\n')
			line = i + 1;
		else if ((s[i] == '[' && s[i + 1] == ']') || (s[i] == '{' && s[i + 1] == '}')) {
			for (extra = 0; s[line + extra] == ' ' && extra < 60; extra++)
				;
			r[o++] = '\n';
			memset(r + o, ' ', extra);
			o += extra;
		}
	}
	r[o] = 0;
	free(s);
	return r;
}

char *vjson_dumps(struct json_t *v, int flags)
{
	size_t jflags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
	char *s;

	if (flags & VJSON_COMPACT)
		return json_dumps(v, jflags | JSON_COMPACT);
	s = json_dumps(v, jflags | JSON_INDENT(4));
	return s ? pretty_empties(s) : NULL;
}

int vjson_print(struct json_t *v)
{
	char *s = vjson_dumps(v, 0);

	if (!s)
		return err_set(-ENOMEM, "cannot format JSON");
	printf("%s\n", s);
	free(s);
	return 0;
}
