/*
 * Suboptions in QEMU's syntax: "key=val,key2=val2".  The first element
 * may omit "key=" when the caller names an implied key ("disk.img,if=ide"),
 * ",," stands for a literal comma inside a value, a bare later key means
 * key=on, and "help" or "?" asks for help.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Copy one value up to an unescaped ',' (or the end); ",," becomes ','. */
static const char *kv_take_value(const char *p, char **val)
{
	char *out = xmalloc(strlen(p) + 1), *o = out;

	while (*p) {
		if (*p == ',') {
			if (p[1] != ',')
				break;
			p++;
		}
		*o++ = *p++;
	}
	*o = 0;
	*val = out;
	return p;
}

void kv_set(struct kvlist *l, const char *key, const char *val)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n].key = xstrdup(key);
	l->v[l->n].val = xstrdup(val);
	l->n++;
}

static void kv_push(struct kvlist *l, char *key, char *val)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n].key = key;
	l->v[l->n].val = val;
	l->n++;
}

int kv_parse(const char *s, const char *implied_key, struct kvlist *out)
{
	const char *p = s;
	bool first = true;

	out->v = NULL;
	out->n = 0;
	while (*p) {
		size_t klen = strcspn(p, "=,");
		char *key, *val;

		if (p[klen] != '=' && first && implied_key) {
			p = kv_take_value(p, &val);
			kv_push(out, xstrdup(implied_key), val);
		} else if (klen == 0) {
			kv_free(out);
			return err_set(-EINVAL, "'%s': empty parameter name", s);
		} else if (p[klen] != '=') {
			key = strndup(p, klen);
			kv_push(out, key, xstrdup("on"));
			p += klen;
		} else {
			key = strndup(p, klen);
			p = kv_take_value(p + klen + 1, &val);
			kv_push(out, key, val);
		}
		first = false;
		if (*p == ',') {
			p++;
			if (!*p) {
				kv_free(out);
				return err_set(-EINVAL, "'%s': empty parameter after ','", s);
			}
		}
	}
	return 0;
}

void kv_free(struct kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].key);
		free(l->v[i].val);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const char *kv_get(const struct kvlist *l, const char *key)
{
	for (size_t i = l->n; i-- > 0;)
		if (!strcmp(l->v[i].key, key))
			return l->v[i].val;
	return NULL;
}

bool kv_is_help(const char *s)
{
	size_t n = strcspn(s, ",");

	return (n == 4 && !strncmp(s, "help", 4)) || (n == 1 && s[0] == '?');
}

int kv_check(const struct kvlist *l, const char *const *known)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *const *k;

		for (k = known; *k; k++)
			if (!strcmp(*k, l->v[i].key))
				break;
		if (!*k)
			return err_set(-EINVAL, "invalid parameter '%s'", l->v[i].key);
	}
	return 0;
}

int kv_get_bool(const struct kvlist *l, const char *key, bool dflt, bool *out)
{
	const char *v = kv_get(l, key);

	*out = dflt;
	if (v && parse_bool(v, out) < 0)
		return err_set(-EINVAL, "parameter '%s' expects 'on' or 'off'", key);
	return 0;
}

int kv_get_size(const struct kvlist *l, const char *key, uint64_t dflt, uint64_t *out)
{
	const char *v = kv_get(l, key);
	int r;

	*out = dflt;
	if (v && (r = size_parse(v, 0, out)) < 0) {
		err_prefix("parameter '%s'", key);
		return r;
	}
	return 0;
}

int kv_get_u64(const struct kvlist *l, const char *key, uint64_t dflt,
	       uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = kv_get(l, key);
	int r;

	*out = dflt;
	if (v && (r = parse_u64(v, min, max, out)) < 0) {
		err_prefix("parameter '%s'", key);
		return r;
	}
	return 0;
}

char *kv_escape(const char *val)
{
	char *out = xmalloc(2 * strlen(val) + 1), *o = out;

	for (; *val; val++) {
		if (*val == ',')
			*o++ = ',';
		*o++ = *val;
	}
	*o = 0;
	return out;
}

const char *opt_error(int c, char *const *argv)
{
	static __thread char msg[320];
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = arg && !strncmp(arg, "--", 2);

	if (c == ':' && !is_long && optopt > 32 && optopt < 127)
		snprintf(msg, sizeof(msg), "option requires an argument -- '%c'", optopt);
	else if (c == ':')
		snprintf(msg, sizeof(msg), "option '%.256s' requires an argument", arg);
	else if (!is_long && optopt > 32 && optopt < 127)
		snprintf(msg, sizeof(msg), "invalid option -- '%c'", optopt);
	else
		snprintf(msg, sizeof(msg), "unrecognized option '%.256s'", arg);
	return msg;
}
