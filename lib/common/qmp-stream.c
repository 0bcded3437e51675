/*
 * Splitting a QMP byte stream into JSON texts.
 *
 * QMP (QEMU's docs/interop/qmp-spec, "Wire protocol") sends JSON values
 * back to back with no length prefix; QEMU's own reader is a streaming
 * lexer that ends a message when its braces and brackets balance.  We do
 * the same with a tiny scanner that only knows about strings (so braces
 * inside them do not count) and nesting.  Whatever is not inside a value
 * still becomes a message (a bare word, a number, a stray closing brace,
 * a string broken by a control character), so that the server can answer
 * it with "JSON parse error" and carry on, as QEMU does.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void qmp_stream_init(struct qmp_stream *s)
{
	memset(s, 0, sizeof(*s));
	s->start = SIZE_MAX;
}

void qmp_stream_free(struct qmp_stream *s)
{
	free(s->buf);
	qmp_stream_init(s);
}

void qmp_stream_feed(struct qmp_stream *s, const void *data, size_t len)
{
	if (s->len + len + 1 > s->cap) {
		s->cap = MAX(s->cap * 2, s->len + len + 1);
		s->buf = xrealloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

/* Drop the first n bytes of the buffer. */
static void stream_consume(struct qmp_stream *s, size_t n)
{
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
	s->pos -= n;
	if (s->start != SIZE_MAX)
		s->start -= n;
}

/* Hand out [start, end) as a message and forget it. */
static int stream_emit(struct qmp_stream *s, size_t end, char **msg, size_t *len)
{
	size_t n = end - s->start;
	char *m = xmalloc(n + 1);

	memcpy(m, s->buf + s->start, n);
	m[n] = '\0';
	*msg = m;
	*len = n;
	s->pos = end;
	s->start = SIZE_MAX;
	stream_consume(s, end);
	return 1;
}

static bool stream_skip(struct qmp_stream *s)
{
	char *nl = memchr(s->buf, '\n', s->len);

	if (!nl) {
		s->len = s->pos = 0;
		return false;
	}
	s->skipping = false;
	s->pos = (size_t)(nl - s->buf) + 1;
	stream_consume(s, s->pos);
	return true;
}

/* A new message starts at pos with character c; returns true when it
 * is already complete (a stray closing bracket). */
static bool stream_begin(struct qmp_stream *s, char c)
{
	s->start = s->pos++;
	s->depth = 0;
	s->in_str = s->esc = s->bare = false;
	if (c == '{' || c == '[')
		s->depth = 1;
	else if (c == '"')
		s->in_str = true;
	else if (c == '}' || c == ']')
		return true;
	else
		s->bare = true;
	return false;
}

/* Scan one character of a message in progress; returns true when the
 * message ended (s->pos then points past it). */
static bool stream_step(struct qmp_stream *s, char c)
{
	if (s->bare) {
		if (isspace((unsigned char)c) || strchr("{}[]\"", c))
			return true;
	} else if (s->in_str) {
		if ((unsigned char)c < 0x20) {
			s->pos++;
			return true;   /* broken string: let the parser say so */
		}
		if (s->esc)
			s->esc = false;
		else if (c == '\\')
			s->esc = true;
		else if (c == '"') {
			s->in_str = false;
			if (s->depth == 0) {
				s->pos++;
				return true;
			}
		}
	} else if (c == '{' || c == '[') {
		s->depth++;
	} else if (c == '}' || c == ']') {
		if (--s->depth == 0) {
			s->pos++;
			return true;
		}
	} else if (c == '"') {
		s->in_str = true;
	}
	s->pos++;
	return false;
}

int qmp_stream_next(struct qmp_stream *s, char **msg, size_t *len)
{
	if (s->skipping && !stream_skip(s))
		return 0;
	while (s->pos < s->len) {
		char c = s->buf[s->pos];

		if (s->start == SIZE_MAX) {
			if (isspace((unsigned char)c)) {
				s->pos++;
				continue;
			}
			if (stream_begin(s, c))
				return stream_emit(s, s->pos, msg, len);
			continue;
		}
		if (stream_step(s, c))
			return stream_emit(s, s->pos, msg, len);
		if (s->pos - s->start > QMP_MAX_MSG) {
			s->start = SIZE_MAX;
			s->skipping = true;
			stream_consume(s, s->pos);
			return err_set(-EMSGSIZE, "QMP message longer than %u bytes", QMP_MAX_MSG);
		}
	}
	if (s->start == SIZE_MAX)
		s->len = s->pos = 0;
	else if (s->start > 0)
		stream_consume(s, s->start);
	return 0;
}

size_t qmp_stream_count(const char *text, bool *incomplete)
{
	struct qmp_stream s;
	size_t n = 0, len;
	char *m;

	qmp_stream_init(&s);
	qmp_stream_feed(&s, text, strlen(text));
	qmp_stream_feed(&s, "\n", 1);   /* ends a bare word at the end */
	while (qmp_stream_next(&s, &m, &len) > 0) {
		free(m);
		n++;
	}
	*incomplete = s.start != SIZE_MAX;
	qmp_stream_free(&s);
	return n;
}
