/*
 * The QMP server core with a tiny machine of its own (a run state, 4 KiB
 * of "guest memory", two registers), served from a loop thread, and
 * driven by the real client (qmp_client_*) and by raw sockets for the
 * malformed input QEMU answers: every error class and message, events
 * before replies, several clients at once, events from another thread,
 * human-monitor-command through the shared HMP layer with the machine's
 * own commands and memory.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "unit.h"

struct toy {
	struct qmp_server *srv;
	bool running;
	uint8_t mem[4096];
};

static int toy_status(void *opaque, json_t *args, json_t **ret)
{
	struct toy *t = opaque;

	*ret = json_pack("{s:s,s:b,s:b}", "status", t->running ? "running" : "paused",
			 "singlestep", 0, "running", t->running);
	return 0;
}

static int toy_stop(void *opaque, json_t *args, json_t **ret)
{
	struct toy *t = opaque;

	if (t->running)
		qmp_server_event(t->srv, "STOP", NULL);
	t->running = false;
	return 0;
}

static int toy_cont(void *opaque, json_t *args, json_t **ret)
{
	struct toy *t = opaque;

	if (!t->running)
		qmp_server_event(t->srv, "RESUME", NULL);
	t->running = true;
	return 0;
}

static int toy_eject(void *opaque, json_t *args, json_t **ret)
{
	const char *dev = json_string_value(json_object_get(args, "device"));

	if (strcmp(dev, "cd0"))
		return err_set(-ENODEV, "Device '%s' not found", dev);
	return 0;
}

static int toy_read(void *opaque, uint64_t addr, void *buf, size_t len, bool phys)
{
	struct toy *t = opaque;

	if (addr > sizeof(t->mem) || len > sizeof(t->mem) - addr)
		return -EFAULT;
	memcpy(buf, t->mem + addr, len);
	return 0;
}

static int toy_reg(void *opaque, const char *name, uint64_t *v)
{
	if (!strcmp(name, "pc"))
		*v = 0x100;
	else
		return -ENOENT;
	return 0;
}

static int toy_registers(void *opaque, const struct hmp_args *a, struct hmp_out *o)
{
	hmp_printf(o, "RIP=0000000000000100\n");
	return 0;
}

static const struct qmp_cmd toy_cmds[] = {
	{ "query-status", toy_status, "" },
	{ "stop", toy_stop, "" },
	{ "cont", toy_cont, "" },
	{ "eject", toy_eject, "device:s,*force:b" },
};

static const struct hmp_native toy_hmp[] = {
	{ "info registers", "cpu?", "show the cpu registers", toy_registers },
};

static const struct hmp_machine_ops toy_mach = { .read_mem = toy_read, .get_reg = toy_reg };

static void *loop_thread(void *l)
{
	loop_run(l);
	return NULL;
}

/* Send raw bytes and read one "\r\n"-terminated reply line. */
static char *raw(int fd, const char *text)
{
	static char buf[8192];
	size_t n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (text && write_full(fd, text, strlen(text)) < 0)
		return "";
	while (n < sizeof(buf) - 1 && poll(&p, 1, 5000) == 1) {
		if (read(fd, buf + n, 1) != 1)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return buf;
}

static int raw_connect(const char *path)
{
	int fd = sock_connect_unix(path);

	raw(fd, NULL);   /* the greeting */
	return fd;
}

static int pipe_fds[2];

/* getfd: a descriptor passed with SCM_RIGHTS is kept under its name. */
static void test_getfd(int fd)
{
	const char *req = "{\"execute\": \"getfd\", \"arguments\": {\"fdname\": \"pipe\"}}";
	char *r;

	if (pipe(pipe_fds) < 0)
		return;
	r = raw(fd, req);
	CHECK(strstr(r, "No file descriptor supplied via SCM_RIGHTS"), "getfd without a descriptor");
	sock_send_fds(fd, req, strlen(req), &pipe_fds[1], 1);
	close(pipe_fds[1]);
	r = raw(fd, NULL);
	CHECK(!strcmp(r, "{\"return\": {}}\r\n"), "getfd with a descriptor");
	r = raw(fd, "{\"execute\": \"closefd\", \"arguments\": {\"fdname\": \"nope\"}}");
	CHECK(strstr(r, "File descriptor named 'nope' not found"), "closefd of an unknown name");
}

static void test_raw(const char *path)
{
	int fd = raw_connect(path);
	char *r;

	r = raw(fd, "{\"execute\": \"query-status\"}");
	CHECK(strstr(r, "\"class\": \"CommandNotFound\"") &&
	      strstr(r, "Expecting capabilities negotiation with 'qmp_capabilities'"),
	      "before negotiation: CommandNotFound");
	r = raw(fd, "{\"execute\": \"qmp_capabilities\", \"id\": 1}");
	CHECK(!strcmp(r, "{\"return\": {}, \"id\": 1}\r\n"), "qmp_capabilities: {\"return\": {}} with the id");
	r = raw(fd, "{\"execute\": \"qmp_capabilities\"}");
	CHECK(strstr(r, "Capabilities negotiation is already complete"), "negotiating twice: CommandNotFound");
	r = raw(fd, "{\"bad\" }");
	CHECK(strstr(r, "\"GenericError\"") && strstr(r, "JSON parse error"), "not JSON: GenericError");
	r = raw(fd, "[1]");
	CHECK(strstr(r, "QMP input must be a JSON object"), "not an object");
	r = raw(fd, "{\"foo\": 1}");
	CHECK(strstr(r, "QMP input member 'foo' is unexpected"), "an unknown member");
	r = raw(fd, "{\"id\": 3}");
	CHECK(strstr(r, "QMP input lacks member 'execute'") && strstr(r, "\"id\": 3"), "no execute, id echoed");
	r = raw(fd, "{\"execute\": 1}");
	CHECK(strstr(r, "QMP input member 'execute' must be a string"), "execute not a string");
	r = raw(fd, "{\"execute\": \"stop\", \"arguments\": []}");
	CHECK(strstr(r, "QMP input member 'arguments' must be an object"), "arguments not an object");
	r = raw(fd, "{\"execute\": \"nope\", \"id\": \"x\"}");
	CHECK(strstr(r, "\"CommandNotFound\"") && strstr(r, "The command nope has not been found") &&
	      strstr(r, "\"id\": \"x\""), "unknown command: CommandNotFound with the id");
	r = raw(fd, "{\"execute\": \"eject\"}");
	CHECK(strstr(r, "Parameter 'device' is missing"), "missing argument");
	r = raw(fd, "{\"execute\": \"eject\", \"arguments\": {\"device\": 5}}");
	CHECK(strstr(r, "Invalid parameter type for 'device', expected: string"), "mistyped argument");
	r = raw(fd, "{\"execute\": \"eject\", \"arguments\": {\"device\": \"cd0\", \"zz\": 1}}");
	CHECK(strstr(r, "Parameter 'zz' is unexpected"), "unexpected argument");
	r = raw(fd, "{\"execute\": \"eject\", \"arguments\": {\"device\": \"hd9\"}}");
	CHECK(strstr(r, "\"class\": \"DeviceNotFound\"") && strstr(r, "Device 'hd9' not found"),
	      "-ENODEV from a handler: DeviceNotFound");
	r = raw(fd, "{\"execute\": \"query-status\"}");
	CHECK(strstr(r, "\"return\": {\"status\""), "after all that, the session still works");
	test_getfd(fd);
	r = raw(fd, "{\"execute\": \"stop\"}");
	CHECK(strstr(r, "\"event\": \"STOP\"") && strstr(r, "\"timestamp\": {\"seconds\": "),
	      "an event the command raised comes first, with a timestamp");
	r = raw(fd, NULL);
	CHECK(!strcmp(r, "{\"return\": {}}\r\n"), "then the reply");
	r = raw(fd, "{\"execute\": \"cont\"}");
	r = raw(fd, NULL);
	CHECK(!strcmp(r, "{\"return\": {}}\r\n"), "cont: RESUME, then the reply");
	close(fd);
}

static void test_client(const char *path, struct toy *t)
{
	struct qmp_client *c, *c2;
	json_t *ret = NULL, *ev = NULL;
	char *s;
	int r;

	r = qmp_client_open(path, 5000, &c);
	CHECK(r == 0 && json_integer_value(json_object_get(json_object_get(json_object_get(
		qmp_client_greeting(c), "version"), "qemu"), "major")) == 9 &&
	      json_is_array(json_object_get(qmp_client_greeting(c), "capabilities")),
	      "client: greeting with version and capabilities");
	qmp_client_set_timeout(c, 5000);
	CHECK(qmp_client_negotiate(c) == 0, "client: negotiated");
	qmp_client_open(path, 5000, &c2);
	qmp_client_set_timeout(c2, 5000);
	qmp_client_negotiate(c2);
	CHECK(qmp_client_execute(c, "stop", NULL, NULL) == 0, "client: stop");
	CHECK(qmp_client_event(c, 2000, &ev) == 0 &&
	      !strcmp(json_string_value(json_object_get(ev, "event")), "STOP"), "client: STOP queued");
	json_decref(ev);
	CHECK(qmp_client_event(c2, 2000, &ev) == 0 &&
	      !strcmp(json_string_value(json_object_get(ev, "event")), "STOP"),
	      "a second client gets the event too");
	json_decref(ev);
	r = qmp_client_execute(c, "eject", json_pack("{s:s}", "device", "x"), NULL);
	CHECK(r == -EREMOTEIO && !strcmp(qmp_client_error_class(c), "DeviceNotFound"),
	      "client: error class %s", qmp_client_error_class(c));
	CHECK(qmp_client_execute(c, "query-commands", NULL, &ret) == 0 && json_array_size(ret) == 10,
	      "query-commands lists the table and the built-ins");
	json_decref(ret);
	CHECK(qmp_client_execute(c, "query-version", NULL, &ret) == 0 &&
	      !strcmp(json_string_value(json_object_get(ret, "package")), "toy"), "query-version");
	json_decref(ret);

	static const char *const hmp[][2] = {
		{ "info status", "VM status: paused\r\n" },
		{ "xp/4xb 0x10", "0000000000000010: 0x10 0x11 0x12 0x13\r\n" },
		{ "x/2dh 0x10", "0000000000000010:  4368  4882\r\n" },
		{ "p/x $pc + 1", "0x101\r\n" },
		{ "info registers", "RIP=0000000000000100\r\n" },
		{ "info mtree", "Error: 'info mtree' is not supported by this machine\r\n" },
		{ "frob", "unknown command: 'frob'\r\n" },
		{ "eject hd7", "Error: Device 'hd7' not found\r\n" },
		{ "c", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(hmp); i++) {
		r = qmp_client_execute(c, "human-monitor-command",
				       json_pack("{s:s}", "command-line", hmp[i][0]), &ret);
		s = r == 0 ? (char *)json_string_value(ret) : NULL;
		CHECK(s && !strcmp(s, hmp[i][1]), "human-monitor-command '%s'", hmp[i][0]);
		if (!s || strcmp(s, hmp[i][1]))
			printf("# got: %s\n", s ? s : err_msg());
		json_decref(ret);
	}
	CHECK(t->running, "human 'c' ran the machine's cont");

	/* an event raised outside the loop thread */
	qmp_server_event(t->srv, "POWERDOWN", json_pack("{s:i}", "n", 1));
	do {
		r = qmp_client_event(c2, 2000, &ev);
		s = r == 0 ? (char *)json_string_value(json_object_get(ev, "event")) : "";
		bool pd = !strcmp(s, "POWERDOWN");
		if (pd)
			CHECK(json_integer_value(json_object_get(json_object_get(ev, "data"), "n")) == 1,
			      "an event from another thread arrives with its data");
		json_decref(ev);
		if (pd)
			break;
	} while (r == 0);
	CHECK(r == 0, "POWERDOWN seen");
	qmp_client_close(c2);
	qmp_client_close(c);
}

/* Read until the prompt "(qemu) " ends what arrived. */
static char *until_prompt(int fd, const char *send)
{
	static char buf[8192];
	size_t n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (send && write_full(fd, send, strlen(send)) < 0)
		return "";
	while (n < sizeof(buf) - 1 && poll(&p, 1, 5000) == 1) {
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
		buf[n] = '\0';
		if (n >= 7 && !strcmp(buf + n - 7, "(qemu) "))
			break;
	}
	buf[n] = '\0';
	return buf;
}

static void test_human(const char *path)
{
	int fd = sock_connect_unix(path);
	char *r;

	r = until_prompt(fd, NULL);
	CHECK(!strcmp(r, "toy 9.1.0 monitor - type 'help' for more information\r\n(qemu) "),
	      "human monitor: banner and prompt");
	r = until_prompt(fd, "info status\r\n");
	CHECK(!strcmp(r, "VM status: running\r\n(qemu) "), "human monitor: info status");
	r = until_prompt(fd, "xp/2xb 0x20\n");
	CHECK(!strcmp(r, "0000000000000020: 0x20 0x21\r\n(qemu) "), "human monitor: xp");
	r = until_prompt(fd, "frob\n");
	CHECK(!strcmp(r, "unknown command: 'frob'\r\n(qemu) "),
	      "human monitor: an error, then the prompt again");
	r = until_prompt(fd, "help stop\n");
	CHECK(!strcmp(r, "stop  -- stop emulation\r\n(qemu) "), "human monitor: help");
	close(fd);
}

int main(void)
{
	char dir[] = "/tmp/test-mon-XXXXXX", path[64], path2[80];
	struct toy t = { .running = true };
	struct qmp_server_config cfg = {
		.cmds = toy_cmds, .cmd_count = ARRAY_SIZE(toy_cmds), .opaque = &t,
		.major = 9, .minor = 1, .micro = 0, .package = "toy",
		.hmp = toy_hmp, .hmp_count = ARRAY_SIZE(toy_hmp), .mach = &toy_mach,
	};
	struct loop *l = loop_new();
	pthread_t th;
	int sv[2];

	for (size_t i = 0; i < sizeof(t.mem); i++)
		t.mem[i] = (uint8_t)i;
	if (!mkdtemp(dir))
		return 2;
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	t.srv = qmp_server_new(l, &cfg);
	CHECK(qmp_server_listen(t.srv, path) == 0, "listen on %s", path);
	snprintf(path2, sizeof(path2), "unix:%s/b.sock,server=on,wait=off", dir);
	CHECK(qmp_server_listen(t.srv, path2) == 0, "listen with QEMU's options");
	CHECK(qmp_server_listen(t.srv, "unix:/x,wait=on") == -ENOTSUP, "wait=on is refused");
	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	CHECK(qmp_server_add_client(t.srv, sv[0]) == 0, "a connected descriptor as a client");
	struct hmp_server *h = hmp_server_new(l, t.srv, "toy 9.1.0");
	char hspec[160], hpath[64];

	snprintf(hpath, sizeof(hpath), "%s/h.sock", dir);
	snprintf(hspec, sizeof(hspec), "unix:%s,server=on,wait=off", hpath);
	CHECK(hmp_server_listen(h, hspec) == 0, "human monitor listens");
	pthread_create(&th, NULL, loop_thread, l);

	test_raw(path);
	test_client(path, &t);
	test_human(hpath);

	struct qmp_client *c;
	CHECK(qmp_client_open_fd(sv[1], 5000, &c) == 0 && qmp_client_negotiate(c) == 0 &&
	      qmp_client_execute(c, "query-status", NULL, NULL) == 0, "a client over a socketpair");
	qmp_client_close(c);

	loop_stop(l);
	pthread_join(th, NULL);
	for (int i = 0; i < 20 && qmp_server_client_count(t.srv); i++)
		loop_run_once(l, 50);
	CHECK(qmp_server_client_count(t.srv) == 0, "closed clients are gone (%d left)",
	      qmp_server_client_count(t.srv));
	int pfd = qmp_server_take_fd(t.srv, "pipe");
	char ch = 0;

	CHECK(pfd >= 0 && write(pfd, "!", 1) == 1 && read(pipe_fds[0], &ch, 1) == 1 && ch == '!',
	      "the machine takes the passed descriptor and it works");
	close(pfd);
	close(pipe_fds[0]);
	hmp_server_free(h);
	qmp_server_free(t.srv);
	CHECK(access(path, F_OK) != 0, "the socket file is removed");
	loop_free(l);
	rmdir(dir);
	return unit_done();
}
