/*
 * A QMP server on the lib/common event loop, after QEMU's
 * docs/interop/qmp-spec: each client gets the greeting ("Server
 * greeting"), must negotiate with qmp_capabilities before anything else
 * ("Capabilities negotiation"), then sends {"execute", "arguments",
 * "id"} and gets {"return"} or {"error": {"class", "desc"}} with the same
 * id ("Commands Responses"); negotiated clients also get every event
 * with its timestamp ("Asynchronous events").
 *
 * Bad input never ends a session: a text that is not JSON, not an
 * object, has unknown members, names an unknown command or carries
 * missing, mistyped or unexpected arguments is answered with the error
 * QEMU gives (same class, same wording) and the next message is read as
 * usual.  Arguments are checked against the schema string of each
 * command before its handler runs, so handlers see well-typed input.
 *
 * Threads: everything runs in the loop's thread except
 * qmp_server_event(), which queues the event and wakes the loop through
 * an eventfd.  Events are delivered before the reply of the command that
 * raised them, as QEMU does (a "stop" client sees STOP, then its return).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

#define QMP_MAX_LISTEN 8
#define QMP_MAX_OUT (16u << 20)   /* a client this far behind is dropped */
#define QMP_MAX_FDS 16            /* descriptors a client may have in flight */

struct qmp_conn {
	struct qmp_server *srv;
	int fd;
	struct qmp_stream in;
	char *out;                /* bytes not yet written */
	size_t out_len, out_cap;
	bool negotiated;
	bool dead;                /* closed, freed after the current callback */
	int fds[QMP_MAX_FDS];     /* passed with SCM_RIGHTS, not yet claimed */
	int nfds;
	struct qmp_conn *next;
};

/* A descriptor kept by getfd under a name. */
struct qmp_named_fd {
	char *name;
	int fd;
	struct qmp_named_fd *next;
};

struct qmp_server {
	struct loop *loop;
	struct qmp_server_config cfg;
	struct qmp_conn *conns;
	int listen_fd[QMP_MAX_LISTEN];
	char *listen_path[QMP_MAX_LISTEN];  /* unix sockets to unlink */
	int nlisten;
	int evfd;                 /* wakes the loop for queued events */
	pthread_mutex_t lock;     /* protects pending */
	json_t *pending;          /* queued event messages */
	struct hmp_session hmp;
	int depth;                /* callbacks running: defer freeing conns */
	struct qmp_conn *current; /* the client whose command is running */
	struct qmp_named_fd *named;
};

/* ---- the command table ---- */

static qmp_cmd_fn builtin_capabilities, builtin_commands, builtin_version, builtin_hmp,
	builtin_getfd, builtin_closefd;

static const struct qmp_cmd qmp_builtins[] = {
	{ "qmp_capabilities", builtin_capabilities, "*enable:a" },
	{ "query-commands", builtin_commands, "" },
	{ "query-version", builtin_version, "" },
	{ "human-monitor-command", builtin_hmp, "command-line:s,*cpu-index:i" },
	{ "getfd", builtin_getfd, "fdname:s" },
	{ "closefd", builtin_closefd, "fdname:s" },
};

/* A JSON string of text that may not be valid UTF-8 (a parser's
 * message quoting the bad bytes, a truncated name): bad bytes become '?'. */
static json_t *safe_string(const char *text)
{
	json_t *v = json_string(text);
	char *copy;

	if (v)
		return v;
	copy = xstrdup(text);
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static const struct qmp_cmd *server_find(const struct qmp_server *s, const char *name)
{
	for (size_t i = 0; i < s->cfg.cmd_count; i++)
		if (!strcmp(s->cfg.cmds[i].name, name))
			return &s->cfg.cmds[i];
	for (size_t i = 0; i < ARRAY_SIZE(qmp_builtins); i++)
		if (!strcmp(qmp_builtins[i].name, name))
			return &qmp_builtins[i];
	return NULL;
}

static const char *type_name(char t)
{
	switch (t) {
	case 's': return "string";
	case 'i': return "integer";
	case 'n': return "number";
	case 'b': return "boolean";
	case 'o': return "object";
	case 'a': return "array";
	default:  return "any";
	}
}

static bool type_ok(char t, json_t *v)
{
	switch (t) {
	case 's': return json_is_string(v);
	case 'i': return json_is_integer(v);
	case 'n': return json_is_number(v);
	case 'b': return json_is_boolean(v);
	case 'o': return json_is_object(v);
	case 'a': return json_is_array(v);
	default:  return true;
	}
}

/* Is key named in the schema? */
static bool schema_has(const char *schema, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = schema; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
		if (*p == '*')
			p++;
		if (!strncmp(p, key, n) && p[n] == ':')
			return true;
	}
	return false;
}

/* Check args against "name:T,*opt:T" with QEMU's messages. */
static int schema_check(const char *schema, json_t *args)
{
	const char *p = schema, *key;
	json_t *v;

	while (*p) {
		size_t len = strcspn(p, ",");
		bool opt = *p == '*';
		const char *name = p + opt, *colon = memchr(name, ':', len - opt);
		char buf[64];

		if (!colon)
			return err_set(-EINVAL, "bad schema '%s'", schema);
		snprintf(buf, sizeof(buf), "%.*s", (int)(colon - name), name);
		v = json_object_get(args, buf);
		if (!v && !opt)
			return err_set(-EINVAL, "Parameter '%s' is missing", buf);
		if (v && !type_ok(colon[1] == 'a' && colon[2] == 'n' ? '*' : colon[1], v))
			return err_set(-EINVAL, "Invalid parameter type for '%s', expected: %s",
				       buf, type_name(colon[1] == 'a' && colon[2] == 'n' ? '*' : colon[1]));
		p += len + (p[len] == ',');
	}
	json_object_foreach(args, key, v)
		if (!schema_has(schema, key))
			return err_set(-EINVAL, "Parameter '%s' is unexpected", key);
	return 0;
}

static const char *errno_class(int r)
{
	switch (r) {
	case -ENODEV:   return "DeviceNotFound";
	case -ENOTCONN: return "DeviceNotActive";
	case -ENOSYS:   return "CommandNotFound";
	default:        return "GenericError";
	}
}

/* Look up, check and run one command: 0 and *ret, or -errno with the
 * message recorded and *cls set. */
static int server_dispatch(struct qmp_server *s, const char *name, json_t *args,
			   json_t **ret, const char **cls)
{
	const struct qmp_cmd *c = server_find(s, name);
	json_t *empty = NULL;
	int r;

	*ret = NULL;
	*cls = "GenericError";
	if (!c) {
		*cls = "CommandNotFound";
		return err_set(-ENOSYS, "The command %s has not been found", name);
	}
	if (!args)
		args = empty = json_object();
	r = schema_check(c->args ? c->args : "", args);
	if (r == 0) {
		bool builtin = c >= qmp_builtins && c < qmp_builtins + ARRAY_SIZE(qmp_builtins);

		r = c->fn(builtin ? (void *)s : s->cfg.opaque, args, ret);
		if (r < 0)
			*cls = errno_class(r);
	}
	json_decref(empty);
	if (r == 0 && !*ret)
		*ret = json_object();
	return r;
}

static int builtin_capabilities(void *opaque, json_t *args, json_t **ret)
{
	json_t *en = json_object_get(args, "enable");

	if (json_array_size(en))
		return err_set(-EINVAL, "Capability '%s' not available",
			       json_string_value(json_array_get(en, 0)) ?: "?");
	return 0;
}

static int builtin_commands(void *opaque, json_t *args, json_t **ret)
{
	struct qmp_server *s = opaque;
	json_t *list = json_array();

	for (size_t i = 0; i < s->cfg.cmd_count; i++)
		json_array_append_new(list, json_pack("{s:s}", "name", s->cfg.cmds[i].name));
	for (size_t i = 0; i < ARRAY_SIZE(qmp_builtins); i++)
		if (!server_find(s, qmp_builtins[i].name) ||
		    server_find(s, qmp_builtins[i].name) == &qmp_builtins[i])
			json_array_append_new(list, json_pack("{s:s}", "name", qmp_builtins[i].name));
	*ret = list;
	return 0;
}

static json_t *server_version(const struct qmp_server *s)
{
	return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "micro", s->cfg.micro,
			 "minor", s->cfg.minor, "major", s->cfg.major,
			 "package", s->cfg.package ? s->cfg.package : "");
}

static int builtin_version(void *opaque, json_t *args, json_t **ret)
{
	*ret = server_version(opaque);
	return 0;
}

/* human-monitor-command: the text as QEMU returns it, "\r\n" line ends;
 * a failing human command is reported in the text, as QEMU does. */
static int builtin_hmp(void *opaque, json_t *args, json_t **ret)
{
	struct qmp_server *s = opaque;
	const char *line = json_string_value(json_object_get(args, "command-line"));
	struct hmp_out o = { 0 };
	char *text = NULL;
	int r = hmp_run(&s->hmp, line, &text);

	for (const char *p = text; p && *p; p++)
		hmp_printf(&o, *p == '\n' ? "\r\n" : "%c", *p);
	if (r < 0)   /* QEMU's layout: "Error: why", but not for unknown commands */
		hmp_printf(&o, "%s%s\r\n", r == -ENOENT ? "" : "Error: ", err_msg());
	free(text);
	*ret = safe_string(o.buf ? o.buf : "");
	hmp_out_free(&o);
	return 0;
}

/* getfd/closefd: descriptors passed with SCM_RIGHTS, kept by name until
 * the machine claims them (qmp_server_take_fd) or closefd. */
static struct qmp_named_fd **named_find(struct qmp_server *s, const char *name)
{
	struct qmp_named_fd **pp = &s->named;

	while (*pp && strcmp((*pp)->name, name))
		pp = &(*pp)->next;
	return pp;
}

static int builtin_getfd(void *opaque, json_t *args, json_t **ret)
{
	struct qmp_server *s = opaque;
	struct qmp_conn *c = s->current;
	const char *name = json_string_value(json_object_get(args, "fdname"));
	struct qmp_named_fd **pp = named_find(s, name), *n;

	if (!c || !c->nfds)
		return err_set(-EINVAL, "No file descriptor supplied via SCM_RIGHTS");
	if (isdigit((unsigned char)*name))
		return err_set(-EINVAL, "Parameter 'fdname' expects a name not starting with a digit");
	n = *pp;
	if (!n) {
		n = *pp = xzalloc(sizeof(*n));
		n->name = xstrdup(name);
	} else {
		close(n->fd);
	}
	n->fd = c->fds[0];
	memmove(c->fds, c->fds + 1, sizeof(int) * (size_t)--c->nfds);
	return 0;
}

static int builtin_closefd(void *opaque, json_t *args, json_t **ret)
{
	int fd = qmp_server_take_fd(opaque, json_string_value(json_object_get(args, "fdname")));

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

int qmp_server_take_fd(struct qmp_server *s, const char *name)
{
	struct qmp_named_fd **pp = named_find(s, name), *n = *pp;
	int fd;

	if (!n)
		return err_set(-ENOENT, "File descriptor named '%s' not found", name);
	fd = n->fd;
	*pp = n->next;
	free(n->name);
	free(n);
	return fd;
}

/* The human layer's QMP calls stay inside the process. */
static int server_hmp_qmp(void *opaque, const char *cmd, json_t *args, json_t **ret)
{
	const char *cls;
	int r = server_dispatch(opaque, cmd, args, ret, &cls);

	json_decref(args);
	return r;
}

/* ---- connections ---- */

static void conn_close(struct qmp_conn *c)
{
	if (c->dead)
		return;
	loop_del(c->srv->loop, c->fd);
	close(c->fd);
	while (c->nfds)
		close(c->fds[--c->nfds]);
	c->dead = true;
}

/* Free the connections closed since, once no callback is running. */
static void server_reap(struct qmp_server *s)
{
	struct qmp_conn **pp = &s->conns;

	if (s->depth)
		return;
	while (*pp) {
		struct qmp_conn *c = *pp;

		if (c->dead) {
			*pp = c->next;
			qmp_stream_free(&c->in);
			free(c->out);
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void conn_flush(struct qmp_conn *c)
{
	while (c->out_len && !c->dead) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == ENOTSOCK)
			n = write(c->fd, c->out, c->out_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			LOG(LOG_QMP, "qmp: client write failed, closing");
			conn_close(c);
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	if (!c->dead)
		loop_mod(c->srv->loop, c->fd, LOOP_IN | (c->out_len ? LOOP_OUT : 0));
}

/* Queue one message ("\r\n" after it, as QEMU) and write what we can. */
static void conn_send(struct qmp_conn *c, json_t *msg)
{
	char *text;
	size_t n;

	if (c->dead)
		return;
	text = json_dumps(msg, JSON_PRESERVE_ORDER);
	if (!text)
		text = xstrdup("{\"error\": {\"class\": \"GenericError\", "
			       "\"desc\": \"reply could not be encoded\"}}");
	n = strlen(text);
	LOG(LOG_QMP, "qmp -> %s", text);
	if (c->out_len + n + 2 > QMP_MAX_OUT) {
		free(text);
		log_warn("QMP client does not read its replies; disconnecting it");
		conn_close(c);
		return;
	}
	if (c->out_len + n + 2 > c->out_cap) {
		c->out_cap = MAX(c->out_cap * 2, c->out_len + n + 2);
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, text, n);
	memcpy(c->out + c->out_len + n, "\r\n", 2);
	c->out_len += n + 2;
	free(text);
	conn_flush(c);
}

/* Deliver queued events to every negotiated client. */
static void server_flush_events(struct qmp_server *s)
{
	json_t *ev, *list;
	size_t i;

	pthread_mutex_lock(&s->lock);
	list = s->pending;
	s->pending = json_array();
	pthread_mutex_unlock(&s->lock);
	json_array_foreach(list, i, ev)
		for (struct qmp_conn *c = s->conns; c; c = c->next)
			if (c->negotiated)
				conn_send(c, ev);
	json_decref(list);
}

static void conn_error(struct qmp_conn *c, json_t *id, const char *cls, const char *desc)
{
	json_t *msg = json_pack("{s:{s:s,s:o}}", "error", "class", cls, "desc", safe_string(desc));

	if (id)
		json_object_set(msg, "id", id);
	conn_send(c, msg);
	json_decref(msg);
}

/* The envelope: {"execute": name, "arguments": {...}, "id": any}. */
static int check_envelope(json_t *req, const char **name)
{
	const char *key;
	json_t *v;

	if (!json_is_object(req))
		return err_set(-EINVAL, "QMP input must be a JSON object");
	json_object_foreach(req, key, v)
		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id"))
			return err_set(-EINVAL, "QMP input member '%s' is unexpected", key);
	v = json_object_get(req, "execute");
	if (!v)
		return err_set(-EINVAL, "QMP input lacks member 'execute'");
	if (!json_is_string(v))
		return err_set(-EINVAL, "QMP input member 'execute' must be a string");
	v = json_object_get(req, "arguments");
	if (v && !json_is_object(v))
		return err_set(-EINVAL, "QMP input member 'arguments' must be an object");
	*name = json_string_value(json_object_get(req, "execute"));
	return 0;
}

static void conn_execute(struct qmp_conn *c, json_t *req)
{
	json_t *id = json_object_get(req, "id"), *ret = NULL, *msg;
	const char *name = NULL, *cls;
	int r;

	if (check_envelope(req, &name) < 0)
		return conn_error(c, json_is_object(req) ? id : NULL, "GenericError", err_msg());
	if (!c->negotiated && strcmp(name, "qmp_capabilities"))
		return conn_error(c, id, "CommandNotFound",
				  "Expecting capabilities negotiation with 'qmp_capabilities'");
	if (c->negotiated && !strcmp(name, "qmp_capabilities"))
		return conn_error(c, id, "CommandNotFound",
				  "Capabilities negotiation is already complete, command ignored");
	c->srv->current = c;
	r = server_dispatch(c->srv, name, json_object_get(req, "arguments"), &ret, &cls);
	c->srv->current = NULL;
	server_flush_events(c->srv);
	if (r < 0)
		return conn_error(c, id, cls, err_msg());
	if (!strcmp(name, "qmp_capabilities"))
		c->negotiated = true;
	msg = json_pack("{s:o}", "return", ret);
	if (id)
		json_object_set(msg, "id", id);
	conn_send(c, msg);
	json_decref(msg);
}

static void conn_message(struct qmp_conn *c, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *req = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	char desc[256];

	LOG(LOG_QMP, "qmp <- %s", text);
	if (!req) {
		snprintf(desc, sizeof(desc), "JSON parse error, %s", jerr.text);
		conn_error(c, NULL, "GenericError", desc);
		return;
	}
	conn_execute(c, req);
	json_decref(req);
}

/* Read bytes and any descriptors that came with them; -errno. */
static ssize_t conn_recv(struct qmp_conn *c, char *buf, size_t len)
{
	int fds[QMP_MAX_FDS], nfds = 0;
	ssize_t n = sock_recv_fds(c->fd, buf, len, fds, &nfds, QMP_MAX_FDS);

	if (n == -ENOTSOCK) {
		n = read(c->fd, buf, len);
		return n < 0 ? -errno : n;
	}
	for (int i = 0; i < nfds; i++) {
		if (c->nfds < QMP_MAX_FDS)
			c->fds[c->nfds++] = fds[i];
		else
			close(fds[i]);
	}
	return n;
}

static void conn_readable(struct qmp_conn *c)
{
	char buf[65536], *text;
	size_t len;
	ssize_t n;
	int r;

	n = conn_recv(c, buf, sizeof(buf));
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	qmp_stream_feed(&c->in, buf, (size_t)n);
	while (!c->dead && (r = qmp_stream_next(&c->in, &text, &len)) != 0) {
		if (r < 0) {
			conn_error(c, NULL, "GenericError", err_msg());
			continue;
		}
		conn_message(c, text, len);
		free(text);
	}
}

static void conn_event(struct loop *l, int fd, unsigned events, void *opaque)
{
	struct qmp_conn *c = opaque;
	struct qmp_server *s = c->srv;

	s->depth++;
	if (events & LOOP_OUT)
		conn_flush(c);
	if (!c->dead && (events & (LOOP_IN | LOOP_HUP | LOOP_ERR)))
		conn_readable(c);
	s->depth--;
	server_reap(s);
}

int qmp_server_add_client(struct qmp_server *s, int fd)
{
	struct qmp_conn *c = xzalloc(sizeof(*c));
	json_t *greet;
	int r;

	c->srv = s;
	c->fd = fd;
	qmp_stream_init(&c->in);
	set_nonblock(fd, true);
	if ((r = loop_add(s->loop, fd, LOOP_IN, conn_event, c)) < 0) {
		close(fd);
		free(c);
		return r;
	}
	c->next = s->conns;
	s->conns = c;
	greet = json_pack("{s:{s:o,s:[]}}", "QMP", "version", server_version(s), "capabilities");
	conn_send(c, greet);
	json_decref(greet);
	server_reap(s);
	return 0;
}

static void server_accept(struct loop *l, int fd, unsigned events, void *opaque)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("QMP: accept: %s", strerror(errno));
		return;
	}
	if (qmp_server_add_client(opaque, cfd) < 0)
		log_warn("QMP: %s", err_msg());
}

static void server_wakeup(struct loop *l, int fd, unsigned events, void *opaque)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("QMP: eventfd: %s", strerror(errno));
	server_flush_events(opaque);
	server_reap(opaque);
}

/* ---- the public face ---- */

struct qmp_server *qmp_server_new(struct loop *l, const struct qmp_server_config *cfg)
{
	struct qmp_server *s = xzalloc(sizeof(*s));

	s->loop = l;
	s->cfg = *cfg;
	s->pending = json_array();
	pthread_mutex_init(&s->lock, NULL);
	s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->evfd < 0 || loop_add(l, s->evfd, LOOP_IN, server_wakeup, s) < 0) {
		err_set_errno(errno, "QMP server eventfd");
		if (s->evfd >= 0)
			close(s->evfd);
		json_decref(s->pending);
		free(s);
		return NULL;
	}
	hmp_session_init(&s->hmp, server_hmp_qmp, s);
	s->hmp.native = cfg->hmp;
	s->hmp.native_count = cfg->hmp_count;
	s->hmp.mach = cfg->mach;
	s->hmp.no_passthrough = true;
	s->hmp.machine = cfg->opaque;
	return s;
}

/* One listening socket: unix, tcp (several: IPv4 and IPv6) or fd. */
static int server_add_listener(struct qmp_server *s, int fd, const char *path)
{
	int r;

	if (s->nlisten == QMP_MAX_LISTEN) {
		close(fd);
		return err_set(-EMFILE, "too many QMP listeners");
	}
	set_nonblock(fd, true);
	if ((r = loop_add(s->loop, fd, LOOP_IN, server_accept, s)) < 0) {
		close(fd);
		return r;
	}
	s->listen_fd[s->nlisten] = fd;
	s->listen_path[s->nlisten++] = path ? xstrdup(path) : NULL;
	return 0;
}

int qmp_server_listen(struct qmp_server *s, const char *spec)
{
	struct qmp_listen l;
	int r;

	if ((r = qmp_listen_open(spec, &l)) < 0)
		return r;
	if (l.connected)
		r = qmp_server_add_client(s, l.fd[0]);
	for (int i = 0; i < l.n && !l.connected; i++)
		if (r >= 0)
			r = server_add_listener(s, l.fd[i], i == 0 ? l.path : NULL);
		else
			close(l.fd[i]);
	free(l.path);
	return r < 0 ? r : 0;
}

void qmp_server_free(struct qmp_server *s)
{
	if (!s)
		return;
	server_flush_events(s);
	for (struct qmp_conn *c = s->conns; c; c = c->next) {
		conn_flush(c);
		conn_close(c);
	}
	s->depth = 0;
	server_reap(s);
	for (int i = 0; i < s->nlisten; i++) {
		loop_del(s->loop, s->listen_fd[i]);
		close(s->listen_fd[i]);
		if (s->listen_path[i])
			unlink(s->listen_path[i]);
		free(s->listen_path[i]);
	}
	loop_del(s->loop, s->evfd);
	close(s->evfd);
	while (s->named) {
		int fd = qmp_server_take_fd(s, s->named->name);

		close(fd);
	}
	json_decref(s->pending);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void qmp_server_event(struct qmp_server *s, const char *name, json_t *data)
{
	struct timeval tv;
	json_t *ev;
	uint64_t one = 1;

	gettimeofday(&tv, NULL);
	ev = json_pack("{s:{s:I,s:I},s:s}", "timestamp", "seconds", (json_int_t)tv.tv_sec,
		       "microseconds", (json_int_t)tv.tv_usec, "event", name);
	if (data)
		json_object_set_new(ev, "data", data);
	pthread_mutex_lock(&s->lock);
	json_array_append_new(s->pending, ev);
	pthread_mutex_unlock(&s->lock);
	if (write(s->evfd, &one, sizeof(one)) < 0) {
		/* EAGAIN: a wake-up is pending already */
	}
}

int qmp_server_execute(struct qmp_server *s, const char *cmd, json_t *args, json_t **ret)
{
	const char *cls;
	json_t *r = NULL;
	int rc = server_dispatch(s, cmd, args, &r, &cls);

	if (ret)
		*ret = r;
	else
		json_decref(r);
	return rc;
}

int qmp_server_hmp(struct qmp_server *s, const char *line, char **out)
{
	return hmp_run(&s->hmp, line, out);
}

int qmp_server_client_count(struct qmp_server *s)
{
	int n = 0;

	for (struct qmp_conn *c = s->conns; c; c = c->next)
		n += !c->dead;
	return n;
}
