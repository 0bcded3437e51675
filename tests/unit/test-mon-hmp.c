/*
 * Unit tests of the monitor's pure parts: the QMP stream splitter, the
 * human command parser and its translations into QMP, expressions, and
 * QEMU's output layouts (x/xp dumps and info formatters, checked against
 * text captured from QEMU 7.2).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "unit.h"

static void test_stream(void)
{
	struct qmp_stream s;
	char *m;
	size_t len;
	bool inc;
	const char *in = "{\"a\": \"}{\"}{\"b\":\n[1,{}]}  foo 12 }\"str\"{\"x\":\"bro\nken";
	const char *want[] = { "{\"a\": \"}{\"}", "{\"b\":\n[1,{}]}", "foo", "12", "}",
			       "\"str\"", "{\"x\":\"bro\n" };
	size_t n = 0;
	bool all = true;

	qmp_stream_init(&s);
	for (const char *p = in; *p; p++) {       /* byte by byte */
		qmp_stream_feed(&s, p, 1);
		while (qmp_stream_next(&s, &m, &len) > 0) {
			all &= n < ARRAY_SIZE(want) && !strcmp(m, want[n]);
			n++;
			free(m);
		}
	}
	CHECK(all && n == ARRAY_SIZE(want), "stream: %zu messages split at balanced braces", n);
	CHECK(qmp_stream_next(&s, &m, &len) == 0, "stream: an unfinished message waits");
	qmp_stream_free(&s);

	qmp_stream_init(&s);
	char *big = xmalloc(QMP_MAX_MSG + 16);
	memset(big, '[', QMP_MAX_MSG + 15);
	big[QMP_MAX_MSG + 15] = '\n';
	qmp_stream_feed(&s, big, QMP_MAX_MSG + 16);
	qmp_stream_feed(&s, "{}", 2);
	CHECK(qmp_stream_next(&s, &m, &len) == -EMSGSIZE, "stream: an overlong message is an error");
	CHECK(qmp_stream_next(&s, &m, &len) == 1 && !strcmp(m, "{}"),
	      "stream: resynchronised after the next newline");
	free(m);
	free(big);
	qmp_stream_free(&s);

	CHECK(qmp_stream_count("{\"execute\":\"x\"} {}", &inc) == 2 && !inc, "count: two messages");
	CHECK(qmp_stream_count("{\"execute\":", &inc) == 0 && inc, "count: incomplete");
	CHECK(qmp_stream_count("bogus", &inc) == 1 && !inc, "count: a bare word is one message");
}

static int no_qmp(void *opaque, const char *cmd, json_t *args, json_t **ret)
{
	json_decref(args);
	return err_set(-ENOTSUP, "no QMP here");
}

/* Parse line and translate it; returns the QMP request as compact JSON. */
static char *translate(const char *line)
{
	struct hmp_session s;
	const struct hmp_cmd *c;
	const struct hmp_native *n;
	struct hmp_args a;
	const char *cmd;
	json_t *args = NULL, *req;
	char *out = NULL;

	hmp_session_init(&s, no_qmp, NULL);
	if (hmp_parse(&s, line, &c, &n, &a) == 0 && c->translate &&
	    c->translate(&a, &cmd, &args) == 0) {
		req = json_pack("{s:s}", "execute", cmd);
		if (args)
			json_object_set_new(req, "arguments", args);
		out = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(req);
	}
	hmp_args_free(&a);
	return out;
}

static void check_tr(const char *line, const char *want)
{
	char *got = translate(line);

	CHECK(got && !strcmp(got, want), "translate '%s' -> %s (got %s)", line, want,
	      got ? got : err_msg());
	free(got);
}

static void test_translate(void)
{
	check_tr("info status", "{\"execute\":\"query-status\"}");
	check_tr("  c  ", "{\"execute\":\"cont\"}");
	check_tr("q", "{\"execute\":\"quit\"}");
	check_tr("eject -f ide1-cd0", "{\"arguments\":{\"device\":\"ide1-cd0\",\"force\":true},\"execute\":\"eject\"}");
	check_tr("eject cd", "{\"arguments\":{\"device\":\"cd\",\"force\":false},\"execute\":\"eject\"}");
	check_tr("block_resize disk0 1G", "{\"arguments\":{\"device\":\"disk0\",\"size\":1073741824},\"execute\":\"block_resize\"}");
	check_tr("set_link n0 off", "{\"arguments\":{\"name\":\"n0\",\"up\":false},\"execute\":\"set_link\"}");
	check_tr("sendkey ctrl-alt-f1 200", "{\"arguments\":{\"hold-time\":200,\"keys\":[{\"data\":\"ctrl\",\"type\":\"qcode\"},"
		 "{\"data\":\"alt\",\"type\":\"qcode\"},{\"data\":\"f1\",\"type\":\"qcode\"}]},\"execute\":\"send-key\"}");
	check_tr("pmemsave 0x1000 4096 \"/tmp/a b\"", "{\"arguments\":{\"filename\":\"/tmp/a b\",\"size\":4096,\"val\":4096},\"execute\":\"pmemsave\"}");
	check_tr("change ide1-cd0 /tmp/x.iso raw", "{\"arguments\":{\"device\":\"ide1-cd0\",\"filename\":\"/tmp/x.iso\",\"format\":\"raw\"},\"execute\":\"blockdev-change-medium\"}");
	check_tr("info registers", "{\"arguments\":{\"command-line\":\"info registers\"},\"execute\":\"human-monitor-command\"}");
	check_tr("x/4xb $pc", "{\"arguments\":{\"command-line\":\"x/4xb $pc\"},\"execute\":\"human-monitor-command\"}");
	check_tr("hostfwd_add tcp::2222-:22", "{\"arguments\":{\"command-line\":\"hostfwd_add tcp::2222-:22\"},\"execute\":\"human-monitor-command\"}");
}

static void check_parse_err(const char *line, const char *want)
{
	struct hmp_session s;
	const struct hmp_cmd *c;
	const struct hmp_native *n;
	struct hmp_args a;
	int r;

	hmp_session_init(&s, no_qmp, NULL);
	r = hmp_parse(&s, line, &c, &n, &a);
	CHECK(r < 0 && !strcmp(err_msg(), want), "'%s' is refused: %s (got %s)", line, want,
	      r < 0 ? err_msg() : "success");
	hmp_args_free(&a);
}

static void test_parse(void)
{
	struct hmp_session s;
	const struct hmp_cmd *c;
	const struct hmp_native *n;
	struct hmp_args a;

	hmp_session_init(&s, no_qmp, NULL);
	CHECK(hmp_parse(&s, "xp/20ub 0xffff0", &c, &n, &a) == 0 && a.fmt.count == 20 &&
	      a.fmt.format == 'u' && a.fmt.size == 1 && !strcmp(hmp_arg(&a, "addr"), "0xffff0"),
	      "x/fmt: count, format and size");
	hmp_args_free(&a);
	CHECK(hmp_parse(&s, "x 0x10", &c, &n, &a) == 0 && a.fmt.count == 1 &&
	      a.fmt.format == 'x' && a.fmt.size == 4, "x without /fmt: QEMU's defaults");
	hmp_args_free(&a);
	s.last_format = 'd';
	s.last_size = 2;
	CHECK(hmp_parse(&s, "x/3 0x10", &c, &n, &a) == 0 && a.fmt.count == 3 &&
	      a.fmt.format == 'd' && a.fmt.size == 2, "x/3 remembers the last format and size");
	hmp_args_free(&a);
	check_parse_err("frobnicate", "unknown command: 'frobnicate'");
	check_parse_err("info frob", "unknown command: 'info frob'");
	check_parse_err("info", "info: missing subcommand (try 'help info')");
	check_parse_err("stop now", "stop: extraneous characters at the end of line");
	check_parse_err("memsave 0 16", "memsave: missing argument 'filename'");
	check_parse_err("x/4q 0", "invalid char in format: 'q'");
	check_parse_err("stop/x", "unknown command: 'stop/x'");
}

static void test_eval(void)
{
	uint64_t v = 0;

	CHECK(hmp_eval(NULL, "1+2*3", &v) == 0 && v == 7, "eval: precedence");
	CHECK(hmp_eval(NULL, "(1 + 2) * 3", &v) == 0 && v == 9, "eval: parentheses");
	CHECK(hmp_eval(NULL, "0x10 | 1 ^ 3", &v) == 0 && v == 0x12, "eval: logic lowest");
	CHECK(hmp_eval(NULL, "-1", &v) == 0 && v == UINT64_MAX, "eval: unary minus");
	CHECK(hmp_eval(NULL, "010", &v) == 0 && v == 8, "eval: octal");
	CHECK(hmp_eval(NULL, "7/0", &v) == -EDOM, "eval: division by zero");
	CHECK(hmp_eval(NULL, "1 +", &v) == -EINVAL, "eval: truncated");
	CHECK(hmp_eval(NULL, "$pc", &v) == -ENOTSUP, "eval: no registers without a machine");
	CHECK(hmp_eval(NULL, "((1", &v) == -EINVAL && !strcmp(err_msg(), "')' expected"),
	      "eval: unbalanced parenthesis");
	char deep[4001];
	memset(deep, '(', 4000);
	deep[4000] = '\0';
	CHECK(hmp_eval(NULL, deep, &v) == -EINVAL, "eval: nesting is bounded");
	memset(deep, '-', 4000);
	CHECK(hmp_eval(NULL, deep, &v) == -EINVAL, "eval: unary chains are bounded");
}

static void check_dump(const char *fmt, uint64_t addr, const char *want)
{
	static const uint8_t mem[] = { 0xea, 0x5b, 0xe0, 0x00, 0xf0, 0x30, 0x36, 0x2f,
				       0x32, 0x33, 0x2f, 0x39, 0x39, 0x00, 0xfc, 0x00,
				       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct hmp_session s;
	const struct hmp_cmd *c;
	const struct hmp_native *n;
	struct hmp_args a;
	struct hmp_out o = { 0 };
	char line[64];

	hmp_session_init(&s, no_qmp, NULL);
	snprintf(line, sizeof(line), "xp%s 0", fmt);
	if (hmp_parse(&s, line, &c, &n, &a) == 0)
		hmp_dump(&o, addr, mem, MIN(sizeof(mem), a.fmt.count * (size_t)a.fmt.size), &a.fmt);
	CHECK(o.buf && !strcmp(o.buf, want), "dump %s as QEMU", fmt);
	if (o.buf && strcmp(o.buf, want))
		printf("# got:\n%s# want:\n%s", o.buf, want);
	hmp_args_free(&a);
	hmp_out_free(&o);
}

static void test_dump(void)
{
	check_dump("/20xb", 0xffff0, "00000000000ffff0: 0xea 0x5b 0xe0 0x00 0xf0 0x30 0x36 0x2f\n"
		   "00000000000ffff8: 0x32 0x33 0x2f 0x39 0x39 0x00 0xfc 0x00\n"
		   "0000000000100000: 0x00 0x00 0x00 0x00\n");
	check_dump("/5dw", 0xffff0, "00000000000ffff0:   14703594  792080624  959394610   16515129\n"
		   "0000000000100000:          0\n");
	check_dump("/3ug", 0xffff0, "00000000000ffff0:  3401960375889976298    70931939903615794\n"
		   "0000000000100000:                    0\n");
	check_dump("/3oh", 0xffff0, "00000000000ffff0: 055752   0340 030360\n");
	check_dump("/5dh", 0xffff0, "00000000000ffff0: 23530   224 12528 12086 13106\n");
	check_dump("/3db", 0xffff0, "00000000000ffff0: 234  91 224\n");
	check_dump("/4cb", 0xffff0, "00000000000ffff0: '\\xea' '[' '\\xe0' '\\x00'\n");

	struct hmp_out o = { 0 };

	hmp_print_value(&o, 255, 'x');
	hmp_print_value(&o, 16, 'd');
	hmp_print_value(&o, 8, 'o');
	hmp_print_value(&o, 'A', 'c');
	CHECK(o.buf && !strcmp(o.buf, "0xff\n16\n010\n'A'\n"), "print formats as QEMU");
	hmp_out_free(&o);
}

static void check_fmt(hmp_format_fn *fn, const char *json, const char *want)
{
	struct hmp_args a = { 0 };
	struct hmp_out o = { 0 };
	json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);

	fn(&a, v, &o);
	CHECK(o.buf && !strcmp(o.buf, want), "format %.40s", json);
	if (o.buf && strcmp(o.buf, want))
		printf("# got:\n%s# want:\n%s", o.buf, want);
	json_decref(v);
	hmp_out_free(&o);
}

static void test_formats(void)
{
	check_fmt(hmp_fmt_status, "{\"status\": \"prelaunch\", \"singlestep\": false, \"running\": false}",
		  "VM status: paused (prelaunch)\n");
	check_fmt(hmp_fmt_status, "{\"status\": \"paused\", \"running\": false}", "VM status: paused\n");
	check_fmt(hmp_fmt_status, "{\"status\": \"running\", \"running\": true}", "VM status: running\n");
	check_fmt(hmp_fmt_kvm, "{\"enabled\": false, \"present\": true}", "kvm support: disabled\n");
	check_fmt(hmp_fmt_cpus, "[{\"thread-id\": 9765, \"cpu-index\": 0}, {\"thread-id\": 9766, \"cpu-index\": 1}]",
		  "* CPU #0: thread_id=9765\n  CPU #1: thread_id=9766\n");
	check_fmt(hmp_fmt_version, "{\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \" (x)\"}",
		  "7.2.22 (x)\n");
	check_fmt(hmp_fmt_chardev, "[{\"filename\": \"null\", \"label\": \"c0\"}]", "c0: filename=null\n");
	check_fmt(hmp_fmt_text, "\"a\\r\\nb\\r\\n\"", "a\nb\n");
	check_fmt(hmp_fmt_block,
		  "[{\"io-status\": \"ok\", \"device\": \"ide1-cd0\", \"locked\": false, \"removable\": true,"
		  " \"qdev\": \"/machine/unattached/device[18]\", \"tray_open\": false},"
		  " {\"device\": \"disk0\", \"removable\": false, \"inserted\": {\"ro\": false, \"drv\": \"qcow2\","
		  " \"node-name\": \"#block195\", \"file\": \"d.qcow2\", \"detect_zeroes\": \"off\","
		  " \"cache\": {\"no-flush\": false, \"direct\": false, \"writeback\": true}}}]",
		  "ide1-cd0: [not inserted]\n"
		  "    Attached to:      /machine/unattached/device[18]\n"
		  "    Removable device: not locked, tray closed\n\n"
		  "disk0 (#block195): d.qcow2 (qcow2)\n"
		  "    Cache mode:       writeback\n");
	check_fmt(hmp_fmt_pci,
		  "[{\"bus\": 0, \"devices\": [{\"irq_pin\": 1, \"bus\": 0, \"qdev_id\": \"\", \"irq\": 11, \"slot\": 2,"
		  " \"class_info\": {\"class\": 512, \"desc\": \"Ethernet controller\"}, \"id\": {\"device\": 4110,"
		  " \"subsystem-vendor\": 6900, \"vendor\": 32902, \"subsystem\": 4352}, \"function\": 0, \"regions\":"
		  " [{\"prefetch\": false, \"mem_type_64\": false, \"bar\": 0, \"size\": 131072, \"address\": 4273995776,"
		  " \"type\": \"memory\"}, {\"bar\": 1, \"size\": 64, \"address\": 49216, \"type\": \"io\"}]}]}]",
		  "  Bus  0, device   2, function 0:\n"
		  "    Ethernet controller: PCI device 8086:100e\n"
		  "      PCI subsystem 1af4:1100\n"
		  "      IRQ 11, pin A\n"
		  "      BAR0: 32 bit memory at 0xfec00000 [0xfec1ffff].\n"
		  "      BAR1: I/O at 0xc040 [0xc07f].\n"
		  "      id \"\"\n");
}

static void test_help(void)
{
	struct hmp_session s;
	char *out = NULL;

	hmp_session_init(&s, no_qmp, NULL);
	CHECK(hmp_run(&s, "help", &out) == 0 && strstr(out, "c|cont  -- resume emulation\n") &&
	      strstr(out, "info [subcommand] --") && !strstr(out, "info status"), "help lists commands");
	free(out);
	CHECK(hmp_run(&s, "help info", &out) == 0 && strstr(out, "info status  -- ") &&
	      !strstr(out, "cont"), "help info lists the info subcommands");
	free(out);
	CHECK(hmp_run(&s, "help eject", &out) == 0 &&
	      !strcmp(out, "eject [-f] device -- eject a removable medium (use -f to force it)\n"),
	      "help CMD shows its syntax");
	free(out);
	CHECK(hmp_run(&s, "help nosuch", &out) == -ENOENT, "help of an unknown command fails");
	free(out);
	CHECK(hmp_run(&s, "p 2*(3+4)", &out) == 0 && !strcmp(out, "0xe\n"), "print runs locally");
	free(out);
	CHECK(hmp_run(&s, "info status", &out) == -ENOTSUP && !strcmp(err_msg(), "no QMP here"),
	      "a QMP failure is the command's error");
	free(out);
}

int main(void)
{
	test_stream();
	test_translate();
	test_parse();
	test_eval();
	test_dump();
	test_formats();
	test_help();
	return unit_done();
}
