/*
 * A blocking QMP client (QEMU's docs/interop/qmp-spec): connect, read
 * the greeting ("Server greeting"), negotiate capabilities, run commands
 * tagged with an "id" and wait for the reply carrying that id, keeping
 * any event that arrives meanwhile ("Asynchronous events") in a queue
 * for qmp_client_event().  Every wait is bounded by a timeout when one
 * is set, so a silent server never hangs a script.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

struct qmp_client {
	int fd;
	int timeout_ms;           /* per reply; -1 forever */
	struct qmp_stream in;
	json_t *greeting;         /* the "QMP" member */
	json_t *events;           /* array: queued events, oldest first */
	unsigned long next_id;
	char err_class[64];
	bool eof;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read more bytes into the stream, waiting until deadline (-1: none). */
static int client_fill(struct qmp_client *c, int64_t deadline)
{
	char buf[65536];
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int r, wait;

	if (c->eof)
		return err_set(-ECONNRESET, "the monitor closed the connection");
	for (;;) {
		wait = deadline < 0 ? -1 : (int)MAX(deadline - now_ms(), 0);
		r = poll(&p, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set_errno(errno, "poll");
		if (r == 0)
			return err_set(-ETIMEDOUT, "timed out waiting for the monitor");
		n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0 && errno != ECONNRESET)
			return err_set_errno(errno, "reading from the monitor");
		if (n <= 0) {
			c->eof = true;
			return err_set(-ECONNRESET, "the monitor closed the connection");
		}
		qmp_stream_feed(&c->in, buf, (size_t)n);
		return 0;
	}
}

static int client_read(struct qmp_client *c, int64_t deadline, json_t **msg)
{
	json_error_t jerr;
	size_t len;
	char *text;
	int r;

	for (;;) {
		r = qmp_stream_next(&c->in, &text, &len);
		if (r < 0)
			return r;
		if (r > 0)
			break;
		if ((r = client_fill(c, deadline)) < 0)
			return r;
	}
	*msg = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	LOG(LOG_QMP, "qmp <- %s", text);
	free(text);
	if (!*msg)
		return err_set(-EPROTO, "the monitor sent invalid JSON: %s", jerr.text);
	return 0;
}

static int64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

int qmp_client_recv(struct qmp_client *c, int timeout_ms, json_t **msg)
{
	return client_read(c, deadline_of(timeout_ms), msg);
}

int qmp_client_open_fd(int fd, int timeout_ms, struct qmp_client **out)
{
	struct qmp_client *c = xzalloc(sizeof(*c));
	json_t *msg;
	int r;

	c->fd = fd;
	c->timeout_ms = -1;
	c->events = json_array();
	c->next_id = 1;
	qmp_stream_init(&c->in);
	r = client_read(c, deadline_of(timeout_ms), &msg);
	if (r == -ETIMEDOUT)
		err_set(r, "no QMP greeting within %d s (does another client hold the monitor?)",
			timeout_ms / 1000);
	else if (r < 0)
		err_prefix("no QMP greeting");
	if (r < 0) {
		qmp_client_close(c);
		return r;
	}
	c->greeting = json_incref(json_object_get(msg, "QMP"));
	json_decref(msg);
	if (!json_is_object(c->greeting)) {
		qmp_client_close(c);
		return err_set(-EPROTO, "not a QMP monitor (no greeting)");
	}
	*out = c;
	return 0;
}

int qmp_client_open(const char *addr, int timeout_ms, struct qmp_client **out)
{
	struct sock_addr a;
	int fd, r;

	if ((r = sock_addr_parse(addr, &a)) < 0)
		return r;
	if (a.kind == SOCK_UNIX)
		fd = sock_connect_unix(a.path);
	else if (a.kind == SOCK_TCP)
		fd = sock_connect_tcp(a.host, a.port);
	else
		fd = a.fd;
	sock_addr_free(&a);
	if (fd < 0)
		return fd;
	if ((r = qmp_client_open_fd(fd, timeout_ms, out)) < 0)
		err_prefix("%s", addr);
	return r;
}

void qmp_client_close(struct qmp_client *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	qmp_stream_free(&c->in);
	json_decref(c->greeting);
	json_decref(c->events);
	free(c);
}

json_t *qmp_client_greeting(const struct qmp_client *c)
{
	return c->greeting;
}

void qmp_client_set_timeout(struct qmp_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

const char *qmp_client_error_class(const struct qmp_client *c)
{
	return c->err_class;
}

int qmp_client_send_raw(struct qmp_client *c, const char *text, size_t len)
{
	int r;

	LOG(LOG_QMP, "qmp -> %.*s", (int)len, text);
	if ((r = write_full(c->fd, text, len)) < 0)
		return err_set_errno(-r, "writing to the monitor");
	return 0;
}

/* Take the reply apart: 0 with its return value, or -EREMOTEIO. */
static int client_reply(struct qmp_client *c, json_t *msg, json_t **ret)
{
	json_t *err = json_object_get(msg, "error");
	const char *cls, *desc;

	if (err) {
		cls = json_string_value(json_object_get(err, "class"));
		desc = json_string_value(json_object_get(err, "desc"));
		snprintf(c->err_class, sizeof(c->err_class), "%s", cls ? cls : "GenericError");
		return err_set(-EREMOTEIO, "%s", desc ? desc : "error without description");
	}
	if (!json_object_get(msg, "return"))
		return err_set(-EPROTO, "the monitor's reply has neither return nor error");
	if (ret)
		*ret = json_incref(json_object_get(msg, "return"));
	return 0;
}

int qmp_client_execute(struct qmp_client *c, const char *cmd, json_t *args, json_t **ret)
{
	json_t *req = json_object(), *msg, *id;
	char *text;
	int64_t deadline;
	int r;

	id = json_integer((json_int_t)c->next_id++);
	json_object_set_new(req, "execute", json_string(cmd));
	if (args)
		json_object_set_new(req, "arguments", args);
	json_object_set(req, "id", id);
	text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(req);
	r = qmp_client_send_raw(c, text, strlen(text));
	free(text);
	deadline = deadline_of(c->timeout_ms);
	while (r == 0) {
		if ((r = client_read(c, deadline, &msg)) < 0)
			break;
		if (json_object_get(msg, "event")) {
			json_array_append_new(c->events, msg);
			continue;
		}
		/* ours: our id, or an error the server could not tag (it
		 * failed to read our request, so it cannot know the id) */
		if (json_equal(json_object_get(msg, "id"), id) ||
		    (!json_object_get(msg, "id") && json_object_get(msg, "error"))) {
			r = client_reply(c, msg, ret);
			json_decref(msg);
			break;
		}
		json_decref(msg);   /* a reply to somebody else's request */
	}
	json_decref(id);
	return r;
}

int qmp_client_negotiate(struct qmp_client *c)
{
	return qmp_client_execute(c, "qmp_capabilities", NULL, NULL);
}

int qmp_client_event(struct qmp_client *c, int timeout_ms, json_t **ev)
{
	int64_t deadline = deadline_of(timeout_ms);
	json_t *msg;
	int r;

	if (json_array_size(c->events)) {
		*ev = json_incref(json_array_get(c->events, 0));
		json_array_remove(c->events, 0);
		return 0;
	}
	for (;;) {
		if ((r = client_read(c, deadline, &msg)) < 0)
			return r;
		if (json_object_get(msg, "event")) {
			*ev = msg;
			return 0;
		}
		json_decref(msg);
	}
}
