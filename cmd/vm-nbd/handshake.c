/*
 * The server side of the NBD handshake: fixed newstyle negotiation
 * (proto.md "Fixed newstyle negotiation", "Option types", "Option reply
 * types", "Metadata querying").
 *
 * How it goes: we send NBDMAGIC, IHAVEOPT and our handshake flags; the
 * client answers with its flags, then sends options one by one, each a
 * 16-byte header (IHAVEOPT, option, length) and `length` bytes of data.
 * Every option gets one or more replies (20-byte header: magic, option,
 * reply type, length, then data) ending in NBD_REP_ACK or an error --
 * except NBD_OPT_EXPORT_NAME, which has no error reply: on success it ends
 * the handshake with the export size and flags, on failure we hang up.
 * NBD_OPT_GO ends it too, with proper error replies.
 *
 * Untrusted input: the option data is read whole into a buffer of its
 * declared length (at most OPT_MAX; longer data is drained and answered
 * NBD_REP_ERR_TOO_BIG; absurd lengths hang up), and every field inside it
 * is bounds-checked against that length before use.  One function per
 * option, reached through one table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "common/common.h"
#include "vm-nbd.h"

#define OPT_MAX (64u << 10)          /* data we parse for one option */
#define OPT_DRAIN_MAX (16u << 20)    /* data we drain before hanging up */
#define OPT_COUNT_MAX 4096           /* options per connection */
#define HANDSHAKE_TIMEOUT 30         /* seconds the whole handshake may take */

/* What a handler returns: keep haggling, start transmission, or stop. */
enum { OPT_NEXT = 0, OPT_TRANSMIT = 1, OPT_QUIT = 2 };

struct opt {
	uint32_t opt;
	uint32_t len;
	uint8_t *data;
};

/* The client went away (or stalled past the handshake's time). */
static int gone(void)
{
	return err_set(-EIO, "client closed the connection");
}

static int send_rep(struct conn *c, uint32_t opt, uint32_t type,
		    const void *data, uint32_t len)
{
	uint8_t h[NBD_REP_HEADER_SIZE];

	nbd_put64(h, NBD_REP_MAGIC);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, type);
	nbd_put32(h + 16, len);
	LOG(LOG_NBD, "reply %s to %s, %u bytes", nbd_rep_name(type),
	    nbd_opt_name(opt), len);
	if (write_full(c->fd, h, sizeof(h)) < 0)
		return gone();
	if (len && write_full(c->fd, data, len) < 0)
		return gone();
	return 0;
}

/* An error reply carrying a message for the user; OPT_NEXT or -EIO. */
static int send_err(struct conn *c, uint32_t opt, uint32_t type, const char *msg)
{
	return send_rep(c, opt, type, msg, (uint32_t)strlen(msg));
}

static int send_ack(struct conn *c, uint32_t opt)
{
	return send_rep(c, opt, NBD_REP_ACK, NULL, 0);
}

/* ---- parsing helpers ---- */

struct cursor {
	const uint8_t *p;
	uint32_t left;
};

static bool take32(struct cursor *k, uint32_t *v)
{
	if (k->left < 4)
		return false;
	*v = nbd_get32(k->p);
	k->p += 4;
	k->left -= 4;
	return true;
}

/* A length-prefixed string (u32 length), copied NUL-terminated; strings
 * longer than NBD_MAX_STRING or with a NUL inside are refused. */
static bool take_string(struct cursor *k, char **out)
{
	uint32_t n;

	if (!take32(k, &n) || n > k->left || n > NBD_MAX_STRING ||
	    memchr(k->p, 0, n))
		return false;
	*out = xmalloc(n + 1);
	memcpy(*out, k->p, n);
	(*out)[n] = 0;
	k->p += n;
	k->left -= n;
	return true;
}

static bool name_matches(const struct conn *c, const char *name)
{
	return strcmp(name, c->srv->exp->name) == 0;
}

/* ---- NBD_OPT_EXPORT_NAME ---- */

static int opt_export_name(struct conn *c, struct opt *o)
{
	uint8_t buf[10 + 124] = { 0 };
	char *name = xmalloc(o->len + 1);
	bool ok;

	memcpy(name, o->data, o->len);
	name[o->len] = 0;
	ok = o->len <= NBD_MAX_STRING && !memchr(o->data, 0, o->len) &&
	     name_matches(c, name);
	LOG(LOG_NBD, "export name \"%s\"%s", name, ok ? "" : ": unknown, hanging up");
	free(name);
	if (!ok)
		return OPT_QUIT;
	/* contexts set for another name do not carry over */
	if (c->meta_export && strcmp(c->meta_export, c->srv->exp->name))
		c->ctx_alloc = c->ctx_depth = 0;
	c->tflags = conn_tflags(c);
	nbd_put64(buf, c->srv->exp->size);
	nbd_put16(buf + 8, c->tflags);
	if (write_full(c->fd, buf, c->no_zeroes ? 10 : sizeof(buf)) < 0)
		return gone();
	return OPT_TRANSMIT;
}

/* ---- NBD_OPT_ABORT ---- */

static int opt_abort(struct conn *c, struct opt *o)
{
	send_ack(c, o->opt);   /* the client may already be gone */
	return OPT_QUIT;
}

/* ---- NBD_OPT_LIST ---- */

static int opt_list(struct conn *c, struct opt *o)
{
	const struct export *e = c->srv->exp;
	size_t nlen = strlen(e->name), dlen = e->description ? strlen(e->description) : 0;
	uint8_t *buf;
	int r;

	if (o->len)
		return send_err(c, o->opt, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
	buf = xmalloc(4 + nlen + dlen);
	nbd_put32(buf, (uint32_t)nlen);
	memcpy(buf + 4, e->name, nlen);
	if (dlen)
		memcpy(buf + 4 + nlen, e->description, dlen);
	r = send_rep(c, o->opt, NBD_REP_SERVER, buf, (uint32_t)(4 + nlen + dlen));
	free(buf);
	return r < 0 ? r : send_ack(c, o->opt);
}

/* ---- NBD_OPT_INFO and NBD_OPT_GO ---- */

static int send_info(struct conn *c, uint32_t opt, uint16_t type,
		     const void *data, uint32_t len)
{
	uint8_t buf[2 + NBD_MAX_STRING + 16];

	nbd_put16(buf, type);
	memcpy(buf + 2, data, len);
	return send_rep(c, opt, NBD_REP_INFO, buf, 2 + len);
}

static int send_infos(struct conn *c, uint32_t opt, bool want_name, bool want_desc)
{
	const struct export *e = c->srv->exp;
	uint8_t b[12];
	int r;

	nbd_put64(b, e->size);
	nbd_put16(b + 8, c->tflags);
	r = send_info(c, opt, NBD_INFO_EXPORT, b, 10);
	if (!r && want_name)
		r = send_info(c, opt, NBD_INFO_NAME, e->name, (uint32_t)strlen(e->name));
	if (!r && want_desc && e->description)
		r = send_info(c, opt, NBD_INFO_DESCRIPTION, e->description,
			      (uint32_t)strlen(e->description));
	if (!r) {
		nbd_put32(b, e->min_block);
		nbd_put32(b + 4, e->pref_block);
		nbd_put32(b + 8, e->max_payload);
		r = send_info(c, opt, NBD_INFO_BLOCK_SIZE, b, 12);
	}
	return r;
}

static int opt_info_go(struct conn *c, struct opt *o)
{
	struct cursor k = { o->data, o->len };
	bool want_name = false, want_desc = false;
	char *name = NULL;
	uint16_t nreq;
	int r;

	if (!take_string(&k, &name) || k.left < 2 ||
	    (nreq = nbd_get16(k.p), k.left != 2 + 2u * nreq)) {
		free(name);
		return send_err(c, o->opt, NBD_REP_ERR_INVALID, "malformed request");
	}
	for (uint16_t i = 0; i < nreq; i++) {
		uint16_t t = nbd_get16(k.p + 2 + 2 * i);

		want_name |= t == NBD_INFO_NAME;
		want_desc |= t == NBD_INFO_DESCRIPTION;
	}
	if (!name_matches(c, name)) {
		char *msg = xasprintf("export '%s' not present", name);

		free(name);
		r = send_err(c, o->opt, NBD_REP_ERR_UNKNOWN, msg);
		free(msg);
		return r;
	}
	if (o->opt == NBD_OPT_GO && c->meta_export && strcmp(c->meta_export, name))
		c->ctx_alloc = c->ctx_depth = 0;
	free(name);
	c->tflags = conn_tflags(c);
	r = send_infos(c, o->opt, want_name, want_desc);
	if (!r)
		r = send_ack(c, o->opt);
	if (r < 0)
		return r;
	return o->opt == NBD_OPT_GO ? OPT_TRANSMIT : OPT_NEXT;
}

/* ---- NBD_OPT_STRUCTURED_REPLY ---- */

static int opt_structured_reply(struct conn *c, struct opt *o)
{
	if (o->len)
		return send_err(c, o->opt, NBD_REP_ERR_INVALID, "option takes no data");
	if (c->structured)
		return send_err(c, o->opt, NBD_REP_ERR_INVALID, "structured replies already on");
	c->structured = true;
	return send_ack(c, o->opt);
}

/* ---- NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT ---- */

enum { CTX_ALLOC = 1, CTX_DEPTH = 2 };

static const char *const ctx_names[] = {
	[CTX_ALLOC] = NBD_CONTEXT_BASE_ALLOCATION,
	[CTX_DEPTH] = NBD_CONTEXT_QEMU_DEPTH,
};

/* Contexts a query names: exact names for SET; for LIST also the
 * namespace wildcards "base:" and "qemu:". */
static unsigned query_match(const char *q, bool list)
{
	if (!strcmp(q, NBD_CONTEXT_BASE_ALLOCATION))
		return 1u << CTX_ALLOC;
	if (!strcmp(q, NBD_CONTEXT_QEMU_DEPTH))
		return 1u << CTX_DEPTH;
	if (list && !strcmp(q, "base:"))
		return 1u << CTX_ALLOC;
	if (list && !strcmp(q, "qemu:"))
		return 1u << CTX_DEPTH;
	return 0;
}

/* Parse export name and queries; fills the set of contexts matched. */
static int parse_meta(struct conn *c, struct opt *o, bool list, char **name,
		      unsigned *set)
{
	struct cursor k = { o->data, o->len };
	uint32_t nq;

	*set = 0;
	if (!take_string(&k, name) || !take32(&k, &nq))
		return -EINVAL;
	if (nq == 0 && list)
		*set = 1u << CTX_ALLOC | 1u << CTX_DEPTH;
	for (uint32_t i = 0; i < nq; i++) {
		char *q;

		if (!take_string(&k, &q))
			return -EINVAL;
		*set |= query_match(q, list);
		free(q);
	}
	return k.left ? -EINVAL : 0;
}

static int opt_meta_context(struct conn *c, struct opt *o)
{
	bool list = o->opt == NBD_OPT_LIST_META_CONTEXT;
	char *name = NULL;
	unsigned set;
	uint8_t buf[4 + 64];
	int r = 0;

	if (!list) {
		c->ctx_alloc = c->ctx_depth = 0;
		free(c->meta_export);
		c->meta_export = NULL;
	}
	if (!c->structured) {
		r = send_err(c, o->opt, NBD_REP_ERR_INVALID, "structured replies not negotiated");
		goto out;
	}
	if (parse_meta(c, o, list, &name, &set) < 0) {
		r = send_err(c, o->opt, NBD_REP_ERR_INVALID, "malformed request");
		goto out;
	}
	if (!name_matches(c, name)) {
		r = send_err(c, o->opt, NBD_REP_ERR_UNKNOWN, "export not present");
		goto out;
	}
	for (unsigned id = CTX_ALLOC; id <= CTX_DEPTH && !r; id++) {
		size_t n = strlen(ctx_names[id]);

		if (!(set & 1u << id))
			continue;
		nbd_put32(buf, list ? 0 : id);
		memcpy(buf + 4, ctx_names[id], n);
		r = send_rep(c, o->opt, NBD_REP_META_CONTEXT, buf, (uint32_t)(4 + n));
	}
	if (!list) {
		c->ctx_alloc = set & 1u << CTX_ALLOC ? CTX_ALLOC : 0;
		c->ctx_depth = set & 1u << CTX_DEPTH ? CTX_DEPTH : 0;
		c->meta_export = name;
		name = NULL;
	}
	if (!r)
		r = send_ack(c, o->opt);
out:
	free(name);
	return r;
}

/* ---- options we refuse ---- */

static int opt_starttls(struct conn *c, struct opt *o)
{
	return send_err(c, o->opt, NBD_REP_ERR_POLICY, "TLS is not configured");
}

static int opt_unsupported(struct conn *c, struct opt *o)
{
	return send_err(c, o->opt, NBD_REP_ERR_UNSUP, "option not supported");
}

/* ---- the option loop ---- */

static const struct {
	uint32_t opt;
	int (*fn)(struct conn *c, struct opt *o);
} opt_table[] = {
	{ NBD_OPT_EXPORT_NAME, opt_export_name },
	{ NBD_OPT_ABORT, opt_abort },
	{ NBD_OPT_LIST, opt_list },
	{ NBD_OPT_STARTTLS, opt_starttls },
	{ NBD_OPT_INFO, opt_info_go },
	{ NBD_OPT_GO, opt_info_go },
	{ NBD_OPT_STRUCTURED_REPLY, opt_structured_reply },
	{ NBD_OPT_LIST_META_CONTEXT, opt_meta_context },
	{ NBD_OPT_SET_META_CONTEXT, opt_meta_context },
};

/* Throw away n bytes of option data we will not parse. */
static int drain(int fd, uint32_t n)
{
	uint8_t buf[4096];

	while (n) {
		uint32_t k = MIN(n, (uint32_t)sizeof(buf));

		if (read_full(fd, buf, k) < 0)
			return gone();
		n -= k;
	}
	return 0;
}

/* Read one option and run its handler. */
static int one_option(struct conn *c)
{
	uint8_t h[NBD_OPT_HEADER_SIZE];
	struct opt o = { 0 };
	int (*fn)(struct conn *, struct opt *) = opt_unsupported;
	int r;

	if (read_full(c->fd, h, sizeof(h)) < 0)
		return gone();
	if (nbd_get64(h) != NBD_IHAVEOPT)
		return err_set(-EPROTO, "bad option magic");
	o.opt = nbd_get32(h + 8);
	o.len = nbd_get32(h + 12);
	LOG(LOG_NBD, "option %s (%u), %u bytes", nbd_opt_name(o.opt), o.opt, o.len);
	for (size_t i = 0; i < ARRAY_SIZE(opt_table); i++)
		if (opt_table[i].opt == o.opt)
			fn = opt_table[i].fn;
	if (!c->fixed && o.opt != NBD_OPT_EXPORT_NAME)
		return err_set(-EPROTO, "option %u without fixed newstyle", o.opt);
	if (o.len > OPT_MAX) {
		if (o.opt == NBD_OPT_EXPORT_NAME || o.len > OPT_DRAIN_MAX)
			return err_set(-EPROTO, "option of %u bytes", o.len);
		if (drain(c->fd, o.len) < 0)
			return gone();
		return send_err(c, o.opt, NBD_REP_ERR_TOO_BIG, "option too long");
	}
	o.data = xmalloc(o.len + 1);
	r = read_full(c->fd, o.data, o.len) < 0 ? gone() : fn(c, &o);
	free(o.data);
	return r;
}

static void set_timeout(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Shrink the receive timeout to what is left of the handshake's time, so
 * that a client trickling bytes cannot hold its slot for ever. */
static bool time_left(int fd, time_t deadline)
{
	time_t now = time(NULL);

	if (now >= deadline)
		return false;
	set_timeout(fd, (int)(deadline - now));
	return true;
}

/* Greeting, client flags, then options until transmission or the end. */
int handshake_run(struct conn *c)
{
	uint8_t g[18];
	uint32_t cflags;
	int r = OPT_NEXT;
	time_t deadline = time(NULL) + HANDSHAKE_TIMEOUT;

	nbd_put64(g, NBD_MAGIC);
	nbd_put64(g + 8, NBD_IHAVEOPT);
	nbd_put16(g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	set_timeout(c->fd, HANDSHAKE_TIMEOUT);
	if (write_full(c->fd, g, sizeof(g)) < 0 || read_full(c->fd, g, 4) < 0)
		return gone();
	cflags = nbd_get32(g);
	if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return err_set(-EPROTO, "unknown client flags 0x%x", cflags);
	c->fixed = cflags & NBD_FLAG_C_FIXED_NEWSTYLE;
	c->no_zeroes = cflags & NBD_FLAG_C_NO_ZEROES;
	for (int n = 0; r == OPT_NEXT && n < OPT_COUNT_MAX; n++)
		r = time_left(c->fd, deadline) ? one_option(c) : err_set(-ETIMEDOUT, "handshake too slow");
	set_timeout(c->fd, 0);
	if (r < 0)
		return r;
	return r == OPT_TRANSMIT ? 0 : 1;
}
