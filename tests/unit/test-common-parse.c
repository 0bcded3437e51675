/* Edge cases of lib/common's parsers: sizes, numbers, booleans, suboptions,
 * debug categories, NBD URIs and socket addresses. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "unit.h"

static void size_ok(const char *s, char dflt, uint64_t want)
{
	uint64_t v = 0;
	int r = size_parse(s, dflt, &v);

	CHECK(r == 0 && v == want, "size_parse(\"%s\") = %llu (r=%d, got %llu)", s,
	      (unsigned long long)want, r, (unsigned long long)v);
}

static void size_bad(const char *s, int want)
{
	uint64_t v = 12345;
	int r = size_parse(s, 0, &v);

	CHECK(r == want && v == 12345, "size_parse(\"%s\") fails with %d (got %d)", s, want, r);
}

static void test_sizes(void)
{
	char buf[SIZE_STR_LEN];

	size_ok("0", 0, 0);
	size_ok("512", 0, 512);
	size_ok("512b", 0, 512);
	size_ok("512B", 0, 512);
	size_ok("1k", 0, 1024);
	size_ok("1K", 0, 1024);
	size_ok("64M", 0, 64ull << 20);
	size_ok("1G", 0, 1ull << 30);
	size_ok("1GB", 0, 1ull << 30);
	size_ok("1GiB", 0, 1ull << 30);
	size_ok("2T", 0, 2ull << 40);
	size_ok("1P", 0, 1ull << 50);
	size_ok("15E", 0, 15ull << 60);
	size_ok("1.5G", 0, 3ull << 29);
	size_ok("0.5k", 0, 512);
	size_ok("10", 'M', 10ull << 20);
	size_ok("18446744073709551615", 0, UINT64_MAX);
	size_bad("", -EINVAL);
	size_bad("-1", -EINVAL);
	size_bad("-1G", -EINVAL);
	size_bad("1X", -EINVAL);
	size_bad("1kk", -EINVAL);
	size_bad("G", -EINVAL);
	size_bad(" 1", -EINVAL);
	size_bad("1.5", -EINVAL);
	size_bad("16E", -ERANGE);
	size_bad("18446744073709551616", -ERANGE);
	size_bad("99999999999999999999999", -ERANGE);
	size_bad("1.", -EINVAL);

	CHECK(!strcmp(size_to_str(0, buf), "0 B"), "size_to_str(0) = %s", buf);
	CHECK(!strcmp(size_to_str(512, buf), "512 B"), "size_to_str(512) = %s", buf);
	CHECK(!strcmp(size_to_str(999, buf), "999 B"), "size_to_str(999) = %s", buf);
	CHECK(!strcmp(size_to_str(1023, buf), "0.999 KiB"), "size_to_str(1023) = %s", buf);
	CHECK(!strcmp(size_to_str(1024, buf), "1 KiB"), "size_to_str(1024) = %s", buf);
	CHECK(!strcmp(size_to_str(1ull << 30, buf), "1 GiB"), "size_to_str(1G) = %s", buf);
	CHECK(!strcmp(size_to_str(3ull << 29, buf), "1.5 GiB"), "size_to_str(1.5G) = %s", buf);
	CHECK(!strcmp(size_to_str(10ull << 30, buf), "10 GiB"), "size_to_str(10G) = %s", buf);
	CHECK(!strcmp(size_to_str(196616, buf), "192 KiB"), "size_to_str(196616) = %s", buf);
	CHECK(!strcmp(size_to_str(UINT64_MAX, buf), "16 EiB"), "size_to_str(max) = %s", buf);
}

static void test_numbers(void)
{
	uint64_t v;
	int i;
	bool b;

	CHECK(parse_u64("42", 0, 100, &v) == 0 && v == 42, "parse_u64 42");
	CHECK(parse_u64("0x10", 0, 100, &v) == 0 && v == 16, "parse_u64 hex");
	CHECK(parse_u64("101", 0, 100, &v) == -ERANGE, "parse_u64 above max");
	CHECK(parse_u64("-1", 0, 100, &v) == -EINVAL, "parse_u64 negative");
	CHECK(parse_u64("", 0, 100, &v) == -EINVAL, "parse_u64 empty");
	CHECK(parse_u64("12a", 0, 100, &v) == -EINVAL, "parse_u64 junk");
	CHECK(parse_u64("99999999999999999999", 0, UINT64_MAX, &v) == -ERANGE, "parse_u64 overflow");
	CHECK(parse_int("-5", -10, 10, &i) == 0 && i == -5, "parse_int negative in range");
	CHECK(parse_int("11", -10, 10, &i) == -ERANGE, "parse_int above max");
	CHECK(parse_int("1 ", -10, 10, &i) == -EINVAL, "parse_int trailing space");
	CHECK(parse_bool("on", &b) == 0 && b, "parse_bool on");
	CHECK(parse_bool("off", &b) == 0 && !b, "parse_bool off");
	CHECK(parse_bool("yes", &b) == 0 && b, "parse_bool yes");
	CHECK(parse_bool("false", &b) == 0 && !b, "parse_bool false");
	CHECK(parse_bool("On", &b) == -EINVAL, "parse_bool is case-sensitive like QEMU");
	CHECK(parse_bool("", &b) == -EINVAL, "parse_bool empty");
}

static void test_opts(void)
{
	struct kvlist l;
	static const char *const known[] = { "file", "if", "readonly", NULL };
	uint64_t sz;
	bool b;

	CHECK(kv_parse("disk.img,if=virtio", "file", &l) == 0 && l.n == 2, "implied key parsed");
	CHECK(!strcmp(kv_get(&l, "file"), "disk.img") && !strcmp(kv_get(&l, "if"), "virtio"),
	      "implied key value and explicit key");
	CHECK(kv_check(&l, known) == 0, "known keys accepted");
	kv_free(&l);

	CHECK(kv_parse("file=a,,b,,c,if=ide", NULL, &l) == 0 && !strcmp(kv_get(&l, "file"), "a,b,c"),
	      "',,' is a literal comma (got '%s')", l.n ? kv_get(&l, "file") : "");
	kv_free(&l);

	CHECK(kv_parse("my,,disk.img,readonly", "file", &l) == 0 &&
	      !strcmp(kv_get(&l, "file"), "my,disk.img") && !strcmp(kv_get(&l, "readonly"), "on"),
	      "escaped comma in implied value, bare key is on");
	CHECK(kv_get_bool(&l, "readonly", false, &b) == 0 && b, "kv_get_bool");
	kv_free(&l);

	CHECK(kv_parse("a=1,a=2", NULL, &l) == 0 && !strcmp(kv_get(&l, "a"), "2"), "last value wins");
	CHECK(kv_get(&l, "b") == NULL, "missing key is NULL");
	kv_free(&l);

	CHECK(kv_parse("file=1,bogus=2", NULL, &l) == 0 && kv_check(&l, known) == -EINVAL &&
	      strstr(err_msg(), "bogus"), "unknown key rejected by name: %s", err_msg());
	kv_free(&l);

	CHECK(kv_parse("a=1,", NULL, &l) == -EINVAL, "trailing comma rejected");
	CHECK(kv_parse("=1", NULL, &l) == -EINVAL, "empty key rejected");
	CHECK(kv_parse("a=1,,=2", NULL, &l) == 0 && !strcmp(kv_get(&l, "a"), "1,=2"),
	      "escaped comma followed by '='");
	kv_free(&l);
	CHECK(kv_parse("", "file", &l) == 0 && l.n == 0, "empty string: no keys");
	kv_free(&l);
	CHECK(kv_parse("size=1G", NULL, &l) == 0 && kv_get_size(&l, "size", 0, &sz) == 0 &&
	      sz == 1ull << 30, "kv_get_size");
	kv_free(&l);
	CHECK(kv_parse("size=1Q", NULL, &l) == 0 && kv_get_size(&l, "size", 0, &sz) < 0 &&
	      strstr(err_msg(), "size"), "kv_get_size names the key: %s", err_msg());
	kv_free(&l);
	CHECK(kv_parse("ro=maybe", NULL, &l) == 0 && kv_get_bool(&l, "ro", false, &b) < 0,
	      "kv_get_bool rejects junk");
	kv_free(&l);

	CHECK(kv_is_help("help") && kv_is_help("?") && kv_is_help("help,x=1") &&
	      !kv_is_help("helpme") && !kv_is_help("file=help"), "kv_is_help");
	{
		char *e = kv_escape("a,b,,c");

		CHECK(!strcmp(e, "a,,b,,,,c"), "kv_escape doubles commas: %s", e);
		free(e);
	}
}

static void test_log(void)
{
	unsigned m = 0;

	CHECK(log_parse_categories("jit,mmu", &m) == 0 && m == (LOG_JIT | LOG_MMU), "categories");
	CHECK(log_parse_categories("help", &m) == 1, "help");
	CHECK(log_parse_categories("jit,nope", &m) == -EINVAL && strstr(err_msg(), "nope"),
	      "unknown category named: %s", err_msg());
	CHECK(log_parse_categories("jit,", &m) == -EINVAL, "trailing comma");
	CHECK(log_parse_categories("", &m) == -EINVAL, "empty");
	CHECK(log_parse_categories("ji", &m) == -EINVAL, "prefix is not a category");
}

static void test_uri(void)
{
	struct nbd_uri u;

	CHECK(nbd_uri_parse("nbd://example.com:10810/disk", &u) == 0 && u.transport == NBD_URI_TCP &&
	      !strcmp(u.host, "example.com") && !strcmp(u.port, "10810") && !strcmp(u.export, "disk"),
	      "nbd://host:port/export");
	nbd_uri_free(&u);
	CHECK(nbd_uri_parse("nbd://localhost", &u) == 0 && !strcmp(u.port, "10809") &&
	      !strcmp(u.export, ""), "default port, empty export");
	nbd_uri_free(&u);
	CHECK(nbd_uri_parse("nbd://[::1]:999/a%20b", &u) == 0 && !strcmp(u.host, "::1") &&
	      !strcmp(u.port, "999") && !strcmp(u.export, "a b"), "IPv6 and percent-decoding");
	nbd_uri_free(&u);
	CHECK(nbd_uri_parse("nbd+unix:///exp?socket=/tmp/s%2Cock", &u) == 0 &&
	      u.transport == NBD_URI_UNIX && !strcmp(u.socket, "/tmp/s,ock") &&
	      !strcmp(u.export, "exp"), "nbd+unix with socket");
	nbd_uri_free(&u);
	CHECK(nbd_uri_parse("nbd+unix:///?socket=/s", &u) == 0 && !strcmp(u.export, ""),
	      "nbd+unix default export");
	nbd_uri_free(&u);
	CHECK(nbd_uri_parse("nbds://h/", &u) == 0 && u.tls, "nbds is TLS");
	nbd_uri_free(&u);
	CHECK(nbd_uri_parse("nbd+unix:///x", &u) == -EINVAL, "nbd+unix needs a socket");
	CHECK(nbd_uri_parse("nbd+unix://host/x?socket=/s", &u) == -EINVAL, "nbd+unix takes no host");
	CHECK(nbd_uri_parse("nbd://h:0/", &u) == -EINVAL, "port 0 rejected");
	CHECK(nbd_uri_parse("nbd://h:99999/", &u) == -EINVAL, "port out of range");
	CHECK(nbd_uri_parse("nbd://h/%zz", &u) == -EINVAL, "bad escape rejected");
	CHECK(nbd_uri_parse("nbd://h/%2", &u) == -EINVAL, "short escape rejected");
	CHECK(nbd_uri_parse("nbd://h/%00", &u) == -EINVAL, "escaped NUL rejected");
	CHECK(nbd_uri_parse("nbd://[::1/", &u) == -EINVAL, "unterminated IPv6");
	CHECK(nbd_uri_parse("http://h/", &u) == -EINVAL, "other schemes rejected");
	CHECK(nbd_uri_is("nbd+unix:///") && !nbd_uri_is("disk.qcow2") && !nbd_uri_is("nbd:h:1"),
	      "nbd_uri_is");
}

static void test_sock_addr(void)
{
	struct sock_addr a;

	CHECK(sock_addr_parse("unix:/run/x.sock", &a) == 0 && a.kind == SOCK_UNIX &&
	      !strcmp(a.path, "/run/x.sock"), "unix:PATH");
	sock_addr_free(&a);
	CHECK(sock_addr_parse("tcp:localhost:4444", &a) == 0 && a.kind == SOCK_TCP &&
	      !strcmp(a.host, "localhost") && !strcmp(a.port, "4444"), "tcp:HOST:PORT");
	sock_addr_free(&a);
	CHECK(sock_addr_parse("tcp:[::1]:4444", &a) == 0 && !strcmp(a.host, "::1"), "tcp:[v6]:PORT");
	sock_addr_free(&a);
	CHECK(sock_addr_parse("tcp::4444", &a) == 0 && !strcmp(a.host, ""), "tcp::PORT (any host)");
	sock_addr_free(&a);
	CHECK(sock_addr_parse("fd:1", &a) == 0 && a.kind == SOCK_FD && a.fd == 1, "fd:N");
	CHECK(sock_addr_parse("fd:999", &a) == -EBADF, "fd:N of a closed descriptor");
	CHECK(sock_addr_parse("fd:x", &a) == -EINVAL, "fd: junk");
	CHECK(sock_addr_parse("tcp:nohostport", &a) == -EINVAL, "tcp without port");
	CHECK(sock_addr_parse("tcp:h:", &a) == -EINVAL, "tcp with empty port");
	CHECK(sock_addr_parse("", &a) == -EINVAL, "empty address");
}

/* opt_error: getopt_long's failure in glibc's words, for each kind. */
static const char *first_error(int argc, char **argv)
{
	static const struct option lo[] = { { "file", required_argument, NULL, 'f' },
					    { NULL, 0, NULL, 0 } };
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:f:v", lo, NULL)) != -1)
		if (c == '?' || c == ':')
			return opt_error(c, argv);
	return "";
}

static void test_opt_error(void)
{
	char *a[] = { "t", "--bogus", NULL }, *b[] = { "t", "-x", NULL };
	char *c[] = { "t", "-f", NULL }, *d[] = { "t", "--file", NULL };
	char *e[] = { "t", "-vf", NULL };

	CHECK(!strcmp(first_error(2, a), "unrecognized option '--bogus'"), "%s", first_error(2, a));
	CHECK(!strcmp(first_error(2, b), "invalid option -- 'x'"), "%s", first_error(2, b));
	CHECK(!strcmp(first_error(2, c), "option requires an argument -- 'f'"), "%s",
	      first_error(2, c));
	CHECK(!strcmp(first_error(2, d), "option '--file' requires an argument"), "%s",
	      first_error(2, d));
	CHECK(!strcmp(first_error(2, e), "option requires an argument -- 'f'"), "%s",
	      first_error(2, e));
}

int main(void)
{
	test_opt_error();
	test_sizes();
	test_numbers();
	test_opts();
	test_log();
	test_uri();
	test_sock_addr();
	return unit_done();
}
