/*
 * NBD URIs, as the NBD URI specification writes them:
 *   nbd://host[:port]/export   nbds:// (TLS)   nbd+tcp://   nbd+unix:///export?socket=PATH
 * The export name is the percent-decoded path after the first '/'.  IPv6
 * addresses are bracketed: nbd://[::1]:10809/.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const struct {
	const char *scheme;
	enum nbd_transport transport;
	bool tls;
} nbd_schemes[] = {
	{ "nbd", NBD_URI_TCP, false },
	{ "nbd+tcp", NBD_URI_TCP, false },
	{ "nbds", NBD_URI_TCP, true },
	{ "nbds+tcp", NBD_URI_TCP, true },
	{ "nbd+unix", NBD_URI_UNIX, false },
	{ "nbds+unix", NBD_URI_UNIX, true },
};

static int hexval(int c)
{
	if (isdigit(c))
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int pct_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		int hi, lo;

		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if (!s[1] || !s[2])
			return -EINVAL;
		hi = hexval((unsigned char)s[1]);
		lo = hexval((unsigned char)s[2]);
		if (hi < 0 || lo < 0 || (hi | lo) == 0)
			return -EINVAL;
		*o++ = (char)(hi << 4 | lo);
		s += 2;
	}
	*o = 0;
	return 0;
}

char *pct_encode(const char *s)
{
	char *o = xmalloc(strlen(s) * 3 + 1), *p = o;

	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '%' || *s == 0x7f)
			p += sprintf(p, "%%%02X", (unsigned char)*s);
		else
			*p++ = *s;
	*p = 0;
	return o;
}

/* Decode %XX escapes of s[0..len) into a new string; NULL if malformed
 * (a short or non-hex escape, or an escaped NUL). */
static char *uri_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);

	memcpy(out, s, len);
	out[len] = 0;
	if (pct_decode(out) < 0) {
		free(out);
		return NULL;
	}
	return out;
}

bool nbd_uri_is(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(nbd_schemes); i++) {
		size_t n = strlen(nbd_schemes[i].scheme);

		if (!strncmp(s, nbd_schemes[i].scheme, n) && !strncmp(s + n, "://", 3))
			return true;
	}
	return false;
}

/* host[:port] or [v6][:port] of the authority part. */
static int uri_authority(const char *a, size_t len, struct nbd_uri *u, const char *s)
{
	const char *colon, *end = a + len;

	if (len && a[0] == '[') {
		const char *rb = memchr(a, ']', len);

		if (!rb)
			return err_set(-EINVAL, "%s: unterminated IPv6 address", s);
		u->host = strndup(a + 1, rb - a - 1);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != end)
			return err_set(-EINVAL, "%s: junk after IPv6 address", s);
	} else {
		colon = memchr(a, ':', len);
		u->host = strndup(a, colon ? (size_t)(colon - a) : len);
	}
	if (colon) {
		uint64_t port;

		u->port = strndup(colon + 1, end - colon - 1);
		if (parse_u64(u->port, 1, 65535, &port) < 0)
			return err_set(-EINVAL, "%s: invalid port '%s'", s, u->port);
	}
	if (!*u->host) {
		free(u->host);
		u->host = xstrdup("localhost");
	}
	if (!u->port)
		u->port = xstrdup("10809");
	return 0;
}

/* The query: only socket=PATH is meaningful (for nbd+unix). */
static int uri_query(const char *q, struct nbd_uri *u, const char *s)
{
	while (*q) {
		size_t n = strcspn(q, "&");

		if (n > 7 && !strncmp(q, "socket=", 7)) {
			free(u->socket);
			u->socket = uri_decode(q + 7, n - 7);
			if (!u->socket)
				return err_set(-EINVAL, "%s: bad escape in socket path", s);
		} else if (n && strncmp(q, "tls-", 4)) {
			return err_set(-EINVAL, "%s: unsupported query parameter '%.*s'", s, (int)n, q);
		}
		q += n + (q[n] == '&');
	}
	return 0;
}

int nbd_uri_parse(const char *s, struct nbd_uri *u)
{
	const char *p, *auth, *path, *query;
	size_t i, n;
	int r;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < ARRAY_SIZE(nbd_schemes); i++) {
		n = strlen(nbd_schemes[i].scheme);
		if (!strncmp(s, nbd_schemes[i].scheme, n) && !strncmp(s + n, "://", 3))
			break;
	}
	if (i == ARRAY_SIZE(nbd_schemes))
		return err_set(-EINVAL, "%s: not an NBD URI", s);
	u->transport = nbd_schemes[i].transport;
	u->tls = nbd_schemes[i].tls;
	auth = s + n + 3;
	path = auth + strcspn(auth, "/?#");
	query = strchr(path, '?');
	if (strchr(path, '#'))
		return err_set(-EINVAL, "%s: fragments are not allowed", s);
	p = query ? query : path + strlen(path);
	if (*path == '/')
		u->export = uri_decode(path + 1, p - path - 1);
	else
		u->export = xstrdup("");
	if (!u->export) {
		r = err_set(-EINVAL, "%s: bad escape in export name", s);
		goto fail;
	}
	if (u->transport == NBD_URI_UNIX) {
		if (path != auth) {
			r = err_set(-EINVAL, "%s: nbd+unix URIs take no host", s);
			goto fail;
		}
	} else if ((r = uri_authority(auth, path - auth, u, s)) < 0) {
		goto fail;
	}
	if (query && (r = uri_query(query + 1, u, s)) < 0)
		goto fail;
	if (u->transport == NBD_URI_UNIX && !u->socket) {
		r = err_set(-EINVAL, "%s: nbd+unix URIs need ?socket=PATH", s);
		goto fail;
	}
	return 0;
fail:
	nbd_uri_free(u);
	return r;
}

void nbd_uri_free(struct nbd_uri *u)
{
	free(u->host);
	free(u->port);
	free(u->socket);
	free(u->export);
	memset(u, 0, sizeof(*u));
}
