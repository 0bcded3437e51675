/*
 * The human monitor (HMP): parsing a command line against a command's
 * argument syntax, running it, and help.
 *
 * Follows the commands and syntax of the QEMU user manual's "QEMU
 * Monitor" chapter: "info SUBCOMMAND", a "/fmt" suffix on x, xp and
 * print, words separated by spaces (a double-quoted word may contain
 * them), and "help [command]".  A command runs in one of three ways,
 * tried in this order:
 *   1. a native command of the embedding program (vm-run's "info
 *      registers"), when the session has one by that name;
 *   2. the shared command's `local` function (help, and x/xp/p when the
 *      session can read guest memory and registers itself);
 *   3. translated into one QMP command, run through the session's qmp
 *      function, and its reply formatted in QEMU's human layout.  A
 *      command QMP has no equivalent for travels as human-monitor-command
 *      (what QEMU itself offers), except in a server, which would only be
 *      asking itself.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void hmp_printf(struct hmp_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = o->cap - o->len;

		va_start(ap, fmt);
		n = vsnprintf(o->buf ? o->buf + o->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			o->len += (size_t)n;
			return;
		}
		o->cap = MAX(o->cap * 2, o->len + (size_t)n + 64);
		o->buf = xrealloc(o->buf, o->cap);
	}
}

void hmp_out_free(struct hmp_out *o)
{
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

void hmp_session_init(struct hmp_session *s, hmp_qmp_fn *qmp, void *opaque)
{
	memset(s, 0, sizeof(*s));
	s->qmp = qmp;
	s->opaque = opaque;
	s->machine = opaque;
	s->last_format = 'x';
	s->last_size = 4;
}

const char *hmp_arg(const struct hmp_args *a, const char *key)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->key[i], key))
			return a->val[i];
	return NULL;
}

void hmp_args_free(struct hmp_args *a)
{
	for (int i = 0; i < a->n; i++) {
		free((char *)a->key[i]);
		free(a->val[i]);
	}
	free((char *)a->name);
	free((char *)a->line);
	memset(a, 0, sizeof(*a));
}

/* Does `name` match one of the '|'-separated aliases in `names`? */
static bool name_matches(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names;;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return true;
		if (!bar)
			return false;
		p = bar + 1;
	}
}

static const struct hmp_cmd *find_cmd(const char *full)
{
	for (size_t i = 0; i < hmp_cmd_count; i++)
		if (name_matches(hmp_cmds[i].name, full))
			return &hmp_cmds[i];
	return NULL;
}

static const struct hmp_native *find_native(const struct hmp_session *s, const char *full)
{
	for (size_t i = 0; s->native && i < s->native_count; i++)
		if (name_matches(s->native[i].name, full))
			return &s->native[i];
	return NULL;
}

const struct hmp_cmd *hmp_find(const char *name, const char *sub)
{
	char full[128];

	snprintf(full, sizeof(full), "%s%s%s", name, sub ? " " : "", sub ? sub : "");
	return find_cmd(full);
}

static const char *skip_space(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/* The next word at *pp (a "quoted string" may hold spaces and \"),
 * or NULL at the end of the line. */
static char *next_word(const char **pp)
{
	const char *p = skip_space(*pp), *start = p;
	struct hmp_out w = { 0 };

	if (!*p)
		return NULL;
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1])
				p++;
			hmp_printf(&w, "%c", *p);
		}
		if (*p == '"')
			p++;
		*pp = p;
		return w.buf ? w.buf : xstrdup("");
	}
	while (*p && !isspace((unsigned char)*p))
		p++;
	*pp = p;
	return strndup(start, (size_t)(p - start));
}

/* "/[count][format][size]" right after the command name. */
static int parse_fmt(const struct hmp_session *s, const char **pp, struct hmp_fmt *f)
{
	const char *p = *pp;

	f->count = 1;
	f->format = s->last_format;
	f->size = f->format == 'i' ? -1 : s->last_size;
	if (*p != '/')
		return 0;
	p++;
	if (isdigit((unsigned char)*p))
		f->count = (unsigned)strtoul(p, (char **)&p, 10);
	int size = -1, format = -1;
	for (;; p++) {
		if (strchr("xduoci", *p) && *p)
			format = *p;
		else if (*p == 'b' || *p == 'h' || *p == 'w' || *p == 'g' || *p == 'L')
			size = *p == 'b' ? 1 : *p == 'h' ? 2 : *p == 'w' ? 4 : 8;
		else
			break;
	}
	if (*p && !isspace((unsigned char)*p))
		return err_set(-EINVAL, "invalid char in format: '%c'", *p);
	if (format < 0)
		format = s->last_format;
	if (format != 'i' && size < 0)
		size = s->last_size;
	f->format = (char)format;
	f->size = size;
	*pp = p;
	return 0;
}

static void args_add(struct hmp_args *a, const char *key, size_t klen, char *val)
{
	a->key[a->n] = strndup(key, klen);
	a->val[a->n++] = val;
}

/* Fill a's parameters from the rest of the line p, following params. */
static int parse_params(const char *params, const char *p, struct hmp_args *a)
{
	const char *spec = params;
	char *w;

	while (*(spec = skip_space(spec)) && a->n < HMP_MAX_ARGS) {
		size_t len = strcspn(spec, " ");
		bool opt = spec[len - 1] == '?';
		size_t klen = len - opt;
		bool rest = klen > 3 && !strncmp(spec + klen - 3, "...", 3);
		const char *q = skip_space(p);

		if (*spec == '/') {
			spec += len;
			continue;
		}
		if (*spec == '-') {   /* a flag */
			bool given = !strncmp(q, spec, len) && (!q[len] || isspace((unsigned char)q[len]));

			args_add(a, spec + 1, len - 1, given ? xstrdup("on") : NULL);
			if (given)
				p = q + len;
		} else if (rest) {
			args_add(a, spec, klen - 3, *q ? xstrdup(q) : NULL);
			p = q + strlen(q);
			if (!*q && !opt)
				return err_set(-EINVAL, "%s: missing argument '%.*s'", a->name, (int)klen - 3, spec);
		} else {
			w = next_word(&p);
			args_add(a, spec, klen, w);
			if (!w && !opt)
				return err_set(-EINVAL, "%s: missing argument '%.*s'", a->name, (int)klen, spec);
		}
		spec += len;
	}
	if (*skip_space(p))
		return err_set(-EINVAL, "%s: extraneous characters at the end of line", a->name);
	return 0;
}

int hmp_parse(const struct hmp_session *s, const char *line, const struct hmp_cmd **cmd,
	      const struct hmp_native **native, struct hmp_args *a)
{
	const char *p = skip_space(line), *params;
	char *name, *sub = NULL, full[128];
	size_t n;

	memset(a, 0, sizeof(*a));
	*cmd = NULL;
	*native = NULL;
	n = strcspn(p, " \t\n/");
	name = strndup(p, n);
	a->name = name;
	a->line = xstrdup(p);
	p += n;
	if (!strcmp(name, "info")) {
		const char *q = p;

		sub = next_word(&q);
		if (!sub)
			return err_set(-EINVAL, "info: missing subcommand (try 'help info')");
		p = q;
	}
	snprintf(full, sizeof(full), "%s%s%s", name, sub ? " " : "", sub ? sub : "");
	free(sub);
	*native = find_native(s, full);
	if (!*native)
		*cmd = find_cmd(full);
	if (!*native && !*cmd)
		return err_set(-ENOENT, "unknown command: '%s'", full);
	params = *native ? (*native)->params : (*cmd)->params;
	if (*p == '/' && (!params || !strstr(params, "/fmt")))
		return err_set(-ENOENT, "unknown command: '%.*s'", (int)strcspn(a->line, " \t"), a->line);
	if (parse_fmt(s, &p, &a->fmt) < 0)
		return -EINVAL;
	return parse_params(params ? params : "", p, a);
}

/* Run a translated command and format its reply. */
static int hmp_run_qmp(struct hmp_session *s, const struct hmp_cmd *c,
		       const struct hmp_args *a, struct hmp_out *out)
{
	const char *qcmd = NULL;
	json_t *args = NULL, *ret = NULL;
	int r;

	if (!c->translate)
		return err_set(-ENOTSUP, "'%s' cannot run here", a->name);
	if ((r = c->translate(a, &qcmd, &args)) < 0)
		return r;
	if (s->no_passthrough && !strcmp(qcmd, "human-monitor-command")) {
		json_decref(args);
		return err_set(-ENOTSUP, "'%.*s' is not supported by this machine",
			       (int)strcspn(c->name, "|"), c->name);
	}
	if ((r = s->qmp(s->opaque, qcmd, args, &ret)) < 0)
		return r;
	if (!ret)
		ret = json_object();
	if (c->format)
		r = c->format(a, ret, out);
	json_decref(ret);
	return r;
}

int hmp_run(struct hmp_session *s, const char *line, char **text)
{
	const struct hmp_native *nat;
	const struct hmp_cmd *c;
	struct hmp_out out = { 0 };
	struct hmp_args a;
	int r;

	*text = NULL;
	if (!*skip_space(line)) {
		*text = xstrdup("");
		return 0;
	}
	if (!strcmp(skip_space(line), "info"))   /* QEMU lists the subcommands */
		line = "help info";
	r = hmp_parse(s, line, &c, &nat, &a);
	if (r == 0 && nat) {
		r = nat->run(s->machine, &a, &out);
	} else if (r == 0) {
		r = c->local ? c->local(s, &a, &out) : -ENOTSUP;
		if (r == -ENOTSUP)
			r = hmp_run_qmp(s, c, &a, &out);
	}
	if (r == 0 && strchr("xduoc", a.fmt.format) && a.fmt.format) {
		s->last_format = a.fmt.format;
		if (a.fmt.size > 0)
			s->last_size = a.fmt.size;
	}
	hmp_args_free(&a);
	*text = out.buf ? out.buf : xstrdup("");
	return r;
}
