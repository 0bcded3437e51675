/*
 * JSON output through jansson, in the two shapes QEMU uses: qemu-img's
 * pretty form (4-space indent, keys in insertion order) and QMP's compact
 * single line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "common.h"

char *vjson_dumps(struct json_t *v, int flags)
{
	size_t jflags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;

	if (flags & VJSON_COMPACT)
		jflags |= JSON_COMPACT;
	else
		jflags |= JSON_INDENT(4);
	return json_dumps(v, jflags);
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
