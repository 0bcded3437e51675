/* lib/common's runtime pieces: sockets and fd passing, the event loop
 * and its timers, the thread pool, secrets, the progress line and JSON output. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/common.h"
#include "unit.h"

static char tmpdir[] = "/tmp/vm-unit-XXXXXX";

static void test_unix_and_fds(void)
{
	char path[256], buf[8];
	struct stat st;
	int l, c, a, sv[2], fds[4], nfds = 0;

	snprintf(path, sizeof(path), "%s/s.sock", tmpdir);
	l = sock_listen_unix(path, 0600);
	CHECK(l >= 0, "listen on unix socket");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "socket created with mode 0600");
	c = sock_connect_unix(path);
	a = accept(l, NULL, NULL);
	CHECK(c >= 0 && a >= 0, "connect and accept");
	CHECK(write_full(c, "hello", 5) == 0 && read_full(a, buf, 5) == 0 && !memcmp(buf, "hello", 5),
	      "write_full/read_full");
	close(c);
	CHECK(read_full(a, buf, 1) == -ENODATA, "read_full at EOF is -ENODATA");
	close(a);
	close(l);
	CHECK(sock_connect_unix("/nonexistent/x.sock") == -ENOENT &&
	      strstr(err_msg(), "/nonexistent/x.sock"), "connect error names the path: %s", err_msg());

	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	{
		int p[2], pass[2];

		pipe(p);
		pass[0] = p[1];
		pass[1] = p[0];
		CHECK(sock_send_fds(sv[0], "x", 1, pass, 2) == 1, "send two fds");
		CHECK(sock_recv_fds(sv[1], buf, 1, fds, &nfds, 4) == 1 && nfds == 2, "receive two fds");
		if (nfds == 2) {
			CHECK(write(fds[0], "z", 1) == 1 && read(p[0], buf, 1) == 1 && buf[0] == 'z',
			      "received fd is the pipe's write end");
			close(fds[0]);
			close(fds[1]);
		}
		close(p[0]);
		close(p[1]);
		/* more than max: extra ones are closed, not leaked */
		pipe(p);
		pass[0] = p[0];
		pass[1] = p[1];
		sock_send_fds(sv[0], "y", 1, pass, 2);
		CHECK(sock_recv_fds(sv[1], buf, 1, fds, &nfds, 1) == 1 && nfds == 1, "max limits fds");
		close(fds[0]);
		close(p[0]);
		close(p[1]);
	}
	close(sv[0]);
	close(sv[1]);
}

static void test_tcp(void)
{
	int fds[4], n, c, a;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char port[16];

	n = sock_listen_tcp("127.0.0.1", "0", fds, 4);
	CHECK(n == 1, "listen on 127.0.0.1 port 0");
	if (n != 1)
		return;
	getsockname(fds[0], (struct sockaddr *)&ss, &len);
	snprintf(port, sizeof(port), "%u", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	c = sock_connect_tcp("127.0.0.1", port);
	a = accept(fds[0], NULL, NULL);
	CHECK(c >= 0 && a >= 0, "TCP connect and accept on port %s", port);
	close(c);
	close(a);
	close(fds[0]);
	CHECK(sock_connect_tcp("127.0.0.1", port) < 0, "connect to a closed port fails");
}

struct loop_ctx { int reads; int wakes; int fd; };

static void on_read(struct loop *l, int fd, unsigned ev, void *opaque)
{
	struct loop_ctx *c = opaque;
	char b[16];

	if (read(fd, b, sizeof(b)) > 0)
		c->reads++;
	loop_del(l, fd);   /* removing ourselves during dispatch is allowed */
}

static void on_wake(struct loop *l, void *opaque)
{
	((struct loop_ctx *)opaque)->wakes++;
	loop_stop(l);
}

static void test_loop(void)
{
	struct loop *l = loop_new();
	struct loop_ctx ctx = { 0 };
	int p[2];

	pipe(p);
	CHECK(loop_add(l, p[0], LOOP_IN, on_read, &ctx) == 0, "loop_add");
	CHECK(loop_run_once(l, 0) == 0, "nothing ready");
	write(p[1], "a", 1);
	CHECK(loop_run_once(l, 1000) == 1 && ctx.reads == 1, "callback runs on input");
	write(p[1], "b", 1);
	CHECK(loop_run_once(l, 0) == 0 && ctx.reads == 1, "deleted watch no longer fires");
	CHECK(loop_del(l, p[0]) == -ENOENT, "double delete reports ENOENT");
	loop_on_wake(l, on_wake, &ctx);
	loop_wake(l);
	CHECK(loop_run(l) == 0 && ctx.wakes == 1, "wake callback runs and stops the loop");
	loop_free(l);
	close(p[0]);
	close(p[1]);
}

static atomic_int pool_count;

static void pool_job(void *arg)
{
	usleep(1000);
	atomic_fetch_add(&pool_count, (int)(intptr_t)arg);
}

/* Timers: a one-shot fires once, a periodic one keeps firing, a callback
 * may free another timer (which then never fires) or re-arm itself. */
struct timer_ctx {
	struct loop *l;
	struct loop_timer *self, *victim;
	int once, ticks, victim_fired, rearms;
	int64_t first_at;
};

static void on_once(void *opaque)
{
	struct timer_ctx *c = opaque;

	c->once++;
	c->first_at = loop_now_ms();
	loop_timer_free(c->victim);	/* due 1 ms later */
	c->victim = NULL;
}

static void on_tick(void *opaque)
{
	((struct timer_ctx *)opaque)->ticks++;
}

static void on_victim(void *opaque)
{
	((struct timer_ctx *)opaque)->victim_fired++;
}

static void on_rearm(void *opaque)
{
	struct timer_ctx *c = opaque;

	if (++c->rearms < 3)
		loop_timer_mod(c->self, 0);	/* in the past: next round */
	else
		loop_timer_free(c->self);
}

static void test_loop_timers(void)
{
	struct loop *l = loop_new();
	struct timer_ctx c = { .l = l };
	struct loop_timer *once = loop_timer_new(l, on_once, &c);
	struct loop_timer *tick = loop_timer_new(l, on_tick, &c);
	int64_t start = loop_now_ms(), end;
	int bad = 0;

	c.victim = loop_timer_new(l, on_victim, &c);
	CHECK(!loop_timer_armed(once) && loop_timeout(l, -1) == -1, "new timers are disarmed");
	CHECK(loop_timeout(l, 500) == 500, "no armed timer keeps the caller's timeout");
	loop_timer_mod(once, start + 50);
	loop_timer_mod(c.victim, start + 51);
	loop_timer_every(tick, 20);
	CHECK(loop_timer_armed(once) && loop_timeout(l, -1) <= 20, "the earliest timer bounds the wait");
	CHECK(loop_timeout(l, 5) == 5, "a shorter caller timeout wins");
	while ((end = loop_now_ms()) < start + 130 && bad >= 0)
		bad = loop_run_once(l, -1);	/* waits for the timers only */
	CHECK(bad >= 0, "rounds driven by timers alone");
	CHECK(c.once == 1 && !loop_timer_armed(once), "a one-shot fires once, then is disarmed");
	CHECK(c.first_at >= start + 50 && c.first_at < start + 100, "at its time (%lld ms late)",
	      (long long)(c.first_at - start - 50));
	CHECK(c.victim_fired == 0, "a timer freed by an earlier callback never fires");
	CHECK(c.ticks >= 4 && c.ticks <= (end - start) / 20 + 1, "a periodic timer ticks every 20 ms (%d)",
	      c.ticks);
	loop_timer_every(tick, 0);
	CHECK(!loop_timer_armed(tick), "a period of 0 disarms");
	c.self = loop_timer_new(l, on_rearm, &c);
	loop_timer_mod(c.self, 0);
	for (int i = 0; i < 5; i++)
		loop_run_once(l, 0);
	CHECK(c.rearms == 3, "a timer re-armed in the past fires once per round (%d)", c.rearms);
	loop_timer_free(once);
	loop_free(l);	/* frees the timers still there */
}

static void test_pool(void)
{
	struct pool *p = pool_new(3);

	CHECK(p && pool_threads(p) == 3, "pool of 3 threads");
	for (int i = 1; i <= 100; i++)
		pool_submit(p, pool_job, (void *)(intptr_t)i);
	pool_wait(p);
	CHECK(atomic_load(&pool_count) == 5050, "all 100 jobs ran before pool_wait returned");
	pool_submit(p, pool_job, (void *)(intptr_t)1);
	pool_free(p);
	CHECK(atomic_load(&pool_count) == 5051, "pool_free waits for queued jobs");
	CHECK(cpu_count() >= 1, "cpu_count");
}

static void test_secret(void)
{
	struct secret_store *s = secret_store_new();
	const uint8_t *d;
	size_t n;
	char path[256];
	FILE *f;

	CHECK(secret_add_object(s, "secret,id=a,data=hunter2") == 0, "raw data secret");
	CHECK(secret_lookup(s, "a", &d, &n) == 0 && n == 7 && !memcmp(d, "hunter2", 8), "lookup raw");
	CHECK(secret_add_object(s, "secret,id=b,data=aGVsbG8=,format=base64") == 0 &&
	      secret_lookup(s, "b", &d, &n) == 0 && n == 5 && !memcmp(d, "hello", 5), "base64 secret");
	snprintf(path, sizeof(path), "%s/secret", tmpdir);
	f = fopen(path, "w");
	fputs("filepass", f);
	fclose(f);
	{
		char *o = xasprintf("secret,id=c,file=%s", path);

		CHECK(secret_add_object(s, o) == 0 && secret_lookup(s, "c", &d, &n) == 0 && n == 8,
		      "file secret");
		free(o);
	}
	CHECK(secret_add_object(s, "secret,id=a,data=x") == -EEXIST, "duplicate id");
	CHECK(secret_add_object(s, "secret,id=d") == -EINVAL, "neither data nor file");
	CHECK(secret_add_object(s, "secret,id=e,data=x,file=/y") == -EINVAL, "both data and file");
	CHECK(secret_add_object(s, "secret,id=f,data=!!!,format=base64") == -EINVAL, "bad base64");
	CHECK(secret_add_object(s, "secret,data=x") == -EINVAL, "missing id");
	CHECK(secret_add_object(s, "tls-creds-x509,id=g") == -EINVAL, "other object types");
	CHECK(secret_add_object(s, "secret,id=h,data=x,colour=red") == -EINVAL, "unknown key");
	CHECK(secret_add_object(s, "secret,id=i,file=/nonexistent") == -ENOENT, "missing file");
	CHECK(secret_lookup(s, "zz", &d, &n) == -ENOENT, "unknown id");
	secret_store_free(s);
}

/* Run fn with stdout captured into buf. */
static void capture(void (*fn)(void), char *buf, size_t len)
{
	int p[2], saved = dup(1);
	ssize_t n;

	fflush(stdout);
	pipe(p);
	dup2(p[1], 1);
	fn();
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	close(p[0]);
}

static void progress_run(void)
{
	struct progress p;

	progress_init(&p, true, 1.0);
	progress_update(&p, 1, 200);   /* 0.5%: not printed */
	progress_update(&p, 50, 100);
	progress_end(&p);
}

static void json_run(void)
{
	json_t *o = json_object();

	json_object_set_new(o, "virtual-size", json_integer(1073741824));
	json_object_set_new(o, "filename", json_string("a.img"));
	json_object_set_new(o, "dirty-flag", json_false());
	vjson_print(o);
	json_decref(o);
}

static void test_output(void)
{
	char buf[512];

	capture(progress_run, buf, sizeof(buf));
	CHECK(!strcmp(buf, "    (0.00/100%)\r    (50.00/100%)\r    (100.00/100%)\r\n"),
	      "progress lines as qemu-img prints them");
	capture(json_run, buf, sizeof(buf));
	CHECK(!strcmp(buf, "{\n    \"virtual-size\": 1073741824,\n    \"filename\": \"a.img\",\n"
			   "    \"dirty-flag\": false\n}\n"), "JSON in qemu-img's layout");
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 2;
	test_unix_and_fds();
	test_tcp();
	test_loop();
	test_loop_timers();
	test_pool();
	test_secret();
	test_output();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		system(cmd);
	}
	return unit_done();
}
