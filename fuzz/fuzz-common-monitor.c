/*
 * Fuzz the monitor's parsers with arbitrary bytes: the QMP stream
 * splitter (what a client or server reads off a socket) and jansson on
 * each message, then every line as a human monitor command against a
 * stand-in machine that answers every QMP command with {}.  Nothing may
 * crash, hang or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int stub_qmp(void *opaque, const char *cmd, json_t *args, json_t **ret)
{
	json_decref(args);
	*ret = json_object();
	return 0;
}

static void stream_side(const uint8_t *data, size_t size)
{
	struct qmp_stream s;
	char *msg;
	size_t len;
	int r;

	qmp_stream_init(&s);
	/* feed in two pieces so split messages are exercised too */
	qmp_stream_feed(&s, data, size / 2);
	while ((r = qmp_stream_next(&s, &msg, &len)) != 0)
		if (r > 0) {
			json_decref(json_loadb(msg, len, 0, NULL));
			free(msg);
		}
	qmp_stream_feed(&s, data + size / 2, size - size / 2);
	while ((r = qmp_stream_next(&s, &msg, &len)) != 0)
		if (r > 0) {
			json_decref(json_loadb(msg, len, 0, NULL));
			free(msg);
		}
	qmp_stream_free(&s);
}

static void human_side(const uint8_t *data, size_t size)
{
	char *text = xmalloc(size + 1), *line, *save = NULL;
	struct hmp_session h;

	memcpy(text, data, size);
	text[size] = 0;
	hmp_session_init(&h, stub_qmp, NULL);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *out = NULL;

		/* quit-like commands only print here; nothing ends the process.
		 * *out is set on failure too (what printed before the error). */
		hmp_run(&h, line, &out);
		free(out);
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool incomplete;
	char *text = xmalloc(size + 1);

	memcpy(text, data, size);
	text[size] = 0;
	qmp_stream_count(text, &incomplete);
	free(text);
	stream_side(data, size);
	human_side(data, size);
	return 0;
}
