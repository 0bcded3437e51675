/*
 * The table of human monitor commands shared by vm-mon and vm-run, with
 * their translation into QMP (QEMU user manual, "QEMU Monitor", and the
 * QMP reference for each command's arguments).  Commands QMP has no
 * equivalent for (info registers, info mtree, x, savevm, hostfwd_add...)
 * travel as human-monitor-command, as QEMU's own tools do.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* A command that is one QMP command without arguments. */
#define PLAIN(fn, qmp) \
	static int fn(const struct hmp_args *a, const char **c, json_t **j) \
	{ *c = (qmp); *j = NULL; return 0; }

PLAIN(tr_status, "query-status")
PLAIN(tr_version, "query-version")
PLAIN(tr_name, "query-name")
PLAIN(tr_kvm, "query-kvm")
PLAIN(tr_cpus, "query-cpus-fast")
PLAIN(tr_block, "query-block")
PLAIN(tr_blockstats, "query-blockstats")
PLAIN(tr_pci, "query-pci")
PLAIN(tr_chardev, "query-chardev")
PLAIN(tr_stop, "stop")
PLAIN(tr_cont, "cont")
PLAIN(tr_reset, "system_reset")
PLAIN(tr_powerdown, "system_powerdown")
PLAIN(tr_quit, "quit")
PLAIN(tr_nmi, "inject-nmi")

/* Everything else QEMU only offers to humans. */
static int tr_human(const struct hmp_args *a, const char **c, json_t **j)
{
	*c = "human-monitor-command";
	*j = json_pack("{s:s}", "command-line", a->line);
	return 0;
}

static int eval_arg(const struct hmp_args *a, const char *key, uint64_t *v)
{
	int r = hmp_eval(NULL, hmp_arg(a, key), v);

	if (r < 0)
		err_prefix("%s: %s", a->name, key);
	return r;
}

static int tr_memsave(const struct hmp_args *a, const char **c, json_t **j)
{
	uint64_t addr, size;
	int r;

	if ((r = eval_arg(a, "addr", &addr)) < 0 || (r = eval_arg(a, "size", &size)) < 0)
		return r;
	*c = strcmp(a->name, "pmemsave") ? "memsave" : "pmemsave";
	*j = json_pack("{s:I,s:I,s:s}", "val", (json_int_t)addr, "size", (json_int_t)size,
		       "filename", hmp_arg(a, "filename"));
	return 0;
}

/* sendkey ctrl-alt-f1 [hold-ms]: QKeyCode names, or numbers (0x1d). */
static int tr_sendkey(const struct hmp_args *a, const char **c, json_t **j)
{
	char *keys = xstrdup(hmp_arg(a, "keys")), *save = NULL;
	json_t *list = json_array(), *args;
	const char *hold = hmp_arg(a, "hold-ms");
	uint64_t v;

	for (char *k = strtok_r(keys, "-", &save); k; k = strtok_r(NULL, "-", &save)) {
		if (parse_u64(k, 0, 0xffff, &v) == 0)
			json_array_append_new(list, json_pack("{s:s,s:I}", "type", "number",
							      "data", (json_int_t)v));
		else
			json_array_append_new(list, json_pack("{s:s,s:s}", "type", "qcode",
							      "data", k));
	}
	free(keys);
	args = json_pack("{s:o}", "keys", list);
	if (hold) {
		if (parse_u64(hold, 0, 1u << 30, &v) < 0) {
			json_decref(args);
			return err_set(-EINVAL, "sendkey: invalid hold time '%s'", hold);
		}
		json_object_set_new(args, "hold-time", json_integer((json_int_t)v));
	}
	*c = "send-key";
	*j = args;
	return 0;
}

static int tr_change(const struct hmp_args *a, const char **c, json_t **j)
{
	const char *fmt = hmp_arg(a, "format");

	*c = "blockdev-change-medium";
	*j = json_pack("{s:s,s:s}", "device", hmp_arg(a, "device"),
		       "filename", hmp_arg(a, "filename"));
	if (fmt)
		json_object_set_new(*j, "format", json_string(fmt));
	return 0;
}

static int tr_eject(const struct hmp_args *a, const char **c, json_t **j)
{
	*c = "eject";
	*j = json_pack("{s:s,s:b}", "device", hmp_arg(a, "device"), "force",
		       hmp_arg(a, "f") != NULL);
	return 0;
}

static int tr_block_resize(const struct hmp_args *a, const char **c, json_t **j)
{
	uint64_t size;
	int r;

	if ((r = size_parse(hmp_arg(a, "size"), 0, &size)) < 0 || size > INT64_MAX) {
		err_prefix("block_resize");
		return r < 0 ? r : -ERANGE;
	}
	*c = "block_resize";
	*j = json_pack("{s:s,s:I}", "device", hmp_arg(a, "device"), "size", (json_int_t)size);
	return 0;
}

static int tr_set_link(const struct hmp_args *a, const char **c, json_t **j)
{
	bool up;

	if (parse_bool(hmp_arg(a, "up"), &up) < 0)
		return err_set(-EINVAL, "set_link: expected on or off, not '%s'", hmp_arg(a, "up"));
	*c = "set_link";
	*j = json_pack("{s:s,s:b}", "name", hmp_arg(a, "name"), "up", up);
	return 0;
}

static int help_local(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o);

const struct hmp_cmd hmp_cmds[] = {
	{ "help|?", "cmd...?", "show the help", NULL, NULL, help_local },
	{ "info status", "", "show the current VM status (running|paused)", tr_status, hmp_fmt_status, NULL },
	{ "info version", "", "show the version of QEMU", tr_version, hmp_fmt_version, NULL },
	{ "info name", "", "show the current VM name", tr_name, hmp_fmt_name, NULL },
	{ "info registers", "cpu?", "show the cpu registers", tr_human, hmp_fmt_text, NULL },
	{ "info cpus", "", "show infos for each CPU", tr_cpus, hmp_fmt_cpus, NULL },
	{ "info block", "device?", "show info of one block device or all block devices",
	  tr_block, hmp_fmt_block, NULL },
	{ "info blockstats", "", "show block device statistics", tr_blockstats, hmp_fmt_blockstats, NULL },
	{ "info pci", "", "show PCI info", tr_pci, hmp_fmt_pci, NULL },
	{ "info mtree", "flags...?", "show memory tree", tr_human, hmp_fmt_text, NULL },
	{ "info network", "", "show the network state", tr_human, hmp_fmt_text, NULL },
	{ "info chardev", "", "show the character devices", tr_chardev, hmp_fmt_chardev, NULL },
	{ "info snapshots", "", "show the currently saved VM snapshots", tr_human, hmp_fmt_text, NULL },
	{ "info kvm", "", "show KVM information", tr_kvm, hmp_fmt_kvm, NULL },
	{ "info jit", "", "show dynamic compiler info", tr_human, hmp_fmt_text, NULL },
	{ "stop", "", "stop emulation", tr_stop, NULL, NULL },
	{ "c|cont", "", "resume emulation", tr_cont, NULL, NULL },
	{ "system_reset", "", "reset the system", tr_reset, NULL, NULL },
	{ "system_powerdown", "", "send system power down event", tr_powerdown, NULL, NULL },
	{ "q|quit", "", "quit the emulator", tr_quit, NULL, NULL },
	{ "x", "/fmt addr...", "virtual memory dump starting at 'addr'",
	  tr_human, hmp_fmt_text, hmp_local_x },
	{ "xp", "/fmt addr...", "physical memory dump starting at 'addr'",
	  tr_human, hmp_fmt_text, hmp_local_xp },
	{ "p|print", "/fmt expr...", "print expression value (use $reg for CPU register access)",
	  tr_human, hmp_fmt_text, hmp_local_print },
	{ "sendkey", "keys hold-ms?", "send keys to the VM (e.g. 'sendkey ctrl-alt-f1')",
	  tr_sendkey, NULL, NULL },
	{ "memsave", "addr size filename", "save to disk virtual memory dump starting at 'addr' of size 'size'",
	  tr_memsave, NULL, NULL },
	{ "pmemsave", "addr size filename", "save to disk physical memory dump starting at 'addr' of size 'size'",
	  tr_memsave, NULL, NULL },
	{ "change", "device filename format?", "change a removable medium", tr_change, NULL, NULL },
	{ "eject", "-f device", "eject a removable medium (use -f to force it)", tr_eject, NULL, NULL },
	{ "block_resize", "device size", "resize a block image", tr_block_resize, NULL, NULL },
	{ "nmi", "", "inject an NMI", tr_nmi, NULL, NULL },
	{ "set_link", "name up", "change the link status of a network adapter (on|off)", tr_set_link, NULL, NULL },
	{ "hostfwd_add", "spec...", "redirect TCP or UDP connections from host to guest "
	  "([hub_id] [netdev] [tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport)", tr_human, hmp_fmt_text, NULL },
	{ "hostfwd_remove", "spec...", "remove host-to-guest TCP or UDP redirection "
	  "([hub_id] [netdev] [tcp|udp]:[hostaddr]:hostport)", tr_human, hmp_fmt_text, NULL },
	{ "savevm", "tag?", "save a VM snapshot", tr_human, hmp_fmt_text, NULL },
	{ "loadvm", "tag", "restore a VM snapshot from its tag", tr_human, hmp_fmt_text, NULL },
	{ "delvm", "tag", "delete a VM snapshot from its tag", tr_human, hmp_fmt_text, NULL },
};
const size_t hmp_cmd_count = ARRAY_SIZE(hmp_cmds);

/* QEMU's help line: "name params -- help", optional parameters in [ ]. */
static void help_line(struct hmp_out *o, const char *name, const char *params, const char *help)
{
	const char *p = params ? params : "";

	hmp_printf(o, "%s", name);
	while (*p) {
		size_t len = strcspn(p, " ");
		bool opt = p[len - 1] == '?' || *p == '-';
		size_t shown = len - (p[len - 1] == '?');

		if (shown > 3 && !strncmp(p + shown - 3, "...", 3))
			shown -= 3;
		hmp_printf(o, " %s%.*s%s", opt ? "[" : "", (int)shown, p, opt ? "]" : "");
		p += len;
		while (*p == ' ')
			p++;
	}
	hmp_printf(o, "%s -- %s\n", params && *params ? "" : " ", help);
}

/* Which commands "help [want]" lists: all but info's subcommands, info's
 * subcommands ("help info"), or the one asked for. */
static bool help_wanted(const char *name, const struct hmp_cmd *c, const char *want)
{
	bool is_info = !strncmp(name, "info ", 5);

	if (!want)
		return !is_info;
	if (!strcmp(want, "info"))
		return is_info;
	if (c)
		return c == hmp_find(want, NULL) || c == hmp_find("info", want);
	return !strcmp(name, want) || (is_info && !strcmp(name + 5, want));
}

static void help_list(const struct hmp_session *s, struct hmp_out *o, const char *want)
{
	for (size_t i = 0; s->native && i < s->native_count; i++) {
		const struct hmp_native *n = &s->native[i];

		if (help_wanted(n->name, NULL, want))
			help_line(o, n->name, n->params, n->help);
	}
	for (size_t i = 0; i < hmp_cmd_count; i++) {
		const struct hmp_cmd *c = &hmp_cmds[i];

		if (help_wanted(c->name, c, want))
			help_line(o, c->name, c->params, c->help);
	}
	if (!want)
		hmp_printf(o, "info [subcommand] -- show various information about the system state\n");
}

static int help_local(struct hmp_session *s, const struct hmp_args *a, struct hmp_out *o)
{
	const char *want = hmp_arg(a, "cmd");
	char word[64] = "";

	if (want)
		snprintf(word, sizeof(word), "%.*s", (int)strcspn(want, " \t"), want);
	if (want && strcmp(word, "info") && !hmp_find(word, NULL) && !hmp_find("info", word)) {
		bool native = false;

		for (size_t i = 0; s->native && i < s->native_count; i++)
			native |= help_wanted(s->native[i].name, NULL, word);
		if (!native)
			return err_set(-ENOENT, "unknown command: '%s'", word);
	}
	help_list(s, o, want ? word : NULL);
	return 0;
}
