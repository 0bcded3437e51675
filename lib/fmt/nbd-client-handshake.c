/*
 * The client side of the NBD handshake (proto.md "Fixed newstyle
 * negotiation", "Option types", "Option reply types").
 *
 * We read the greeting (NBDMAGIC, IHAVEOPT, handshake flags), answer with
 * our flags, then haggle: NBD_OPT_STRUCTURED_REPLY, then
 * NBD_OPT_SET_META_CONTEXT for base:allocation (and qemu:allocation-depth
 * when asked), then NBD_OPT_GO with an NBD_INFO_BLOCK_SIZE request.  A
 * server too old for GO (NBD_REP_ERR_UNSUP) gets NBD_OPT_EXPORT_NAME
 * instead.  Every reply is read whole (bounded) and checked before use;
 * a server breaking the protocol fails the open with a message.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "fmt/fmt.h"

#define REP_MAX (64u << 10)   /* longest option reply we accept */

struct rep {
	uint32_t type;
	uint32_t len;
	uint8_t *data;    /* NUL-terminated for error messages */
};

static int send_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[NBD_OPT_HEADER_SIZE];

	nbd_put64(h, NBD_IHAVEOPT);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, len);
	if (write_full(fd, h, sizeof(h)) < 0 || (len && write_full(fd, data, len) < 0))
		return err_set(-EIO, "NBD handshake: connection lost");
	return 0;
}

static int recv_rep(int fd, uint32_t opt, struct rep *r)
{
	uint8_t h[NBD_REP_HEADER_SIZE];

	free(r->data);
	r->data = NULL;
	if (read_full(fd, h, sizeof(h)) < 0)
		return err_set(-EIO, "NBD handshake: connection closed by the server");
	if (nbd_get64(h) != NBD_REP_MAGIC || nbd_get32(h + 8) != opt)
		return err_set(-EPROTO, "NBD handshake: bad option reply");
	r->type = nbd_get32(h + 12);
	r->len = nbd_get32(h + 16);
	if (r->len > REP_MAX)
		return err_set(-EPROTO, "NBD handshake: option reply of %u bytes", r->len);
	r->data = xmalloc(r->len + 1);
	r->data[r->len] = 0;
	if (read_full(fd, r->data, r->len) < 0)
		return err_set(-EIO, "NBD handshake: connection closed by the server");
	LOG(LOG_NBD, "client: %s: %s, %u bytes", nbd_opt_name(opt), nbd_rep_name(r->type), r->len);
	return 0;
}

/* An error reply as a message: the server's text if it sent one. */
static int rep_error(const struct rep *r, uint32_t opt, const char *what)
{
	int e = r->type == NBD_REP_ERR_UNKNOWN ? -ENOENT :
		r->type == NBD_REP_ERR_UNSUP ? -ENOTSUP :
		r->type == NBD_REP_ERR_POLICY ? -EACCES : -EINVAL;

	if (r->len && !memchr(r->data, 0, r->len))
		return err_set(e, "%s: server replied %s: %s", what,
			       nbd_rep_name(r->type), (const char *)r->data);
	return err_set(e, "%s: server replied %s", what, nbd_rep_name(r->type));
}

static int opt_structured(int fd, struct nbd_negotiated *n, struct rep *r)
{
	int ret = send_opt(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0);

	if (ret == 0)
		ret = recv_rep(fd, NBD_OPT_STRUCTURED_REPLY, r);
	if (ret < 0)
		return ret;
	n->structured = r->type == NBD_REP_ACK;
	return 0;
}

static void put_string(uint8_t **p, const char *s)
{
	size_t len = strlen(s);

	nbd_put32(*p, (uint32_t)len);
	memcpy(*p + 4, s, len);
	*p += 4 + len;
}

static int opt_set_meta(int fd, const char *export, bool depth,
			struct nbd_negotiated *n, struct rep *r)
{
	size_t elen = strlen(export);
	uint8_t *buf = xmalloc(elen + 128), *p = buf + 4;
	int ret;

	nbd_put32(buf, (uint32_t)elen);
	memcpy(p, export, elen);
	p += elen;
	nbd_put32(p, depth ? 2 : 1);
	p += 4;
	put_string(&p, NBD_CONTEXT_BASE_ALLOCATION);
	if (depth)
		put_string(&p, NBD_CONTEXT_QEMU_DEPTH);
	ret = send_opt(fd, NBD_OPT_SET_META_CONTEXT, buf, (uint32_t)(p - buf));
	free(buf);
	while (ret == 0 && (ret = recv_rep(fd, NBD_OPT_SET_META_CONTEXT, r)) == 0 &&
	       r->type == NBD_REP_META_CONTEXT) {
		if (r->len < 4)
			return err_set(-EPROTO, "NBD handshake: short meta context reply");
		if (!strcmp((char *)r->data + 4, NBD_CONTEXT_BASE_ALLOCATION)) {
			n->ctx_alloc = nbd_get32(r->data);
			n->has_alloc = true;
		} else if (!strcmp((char *)r->data + 4, NBD_CONTEXT_QEMU_DEPTH)) {
			n->ctx_depth = nbd_get32(r->data);
			n->has_depth = true;
		}
	}
	if (ret == 0 && r->type != NBD_REP_ACK)
		n->has_alloc = n->has_depth = false;   /* refused: no block status */
	return ret;
}

static int go_info(struct nbd_negotiated *n, const struct rep *r)
{
	uint16_t type;

	if (r->len < 2)
		return err_set(-EPROTO, "NBD handshake: short info reply");
	type = nbd_get16(r->data);
	if (type == NBD_INFO_EXPORT && r->len == 12) {
		n->size = nbd_get64(r->data + 2);
		n->flags = nbd_get16(r->data + 10);
	} else if (type == NBD_INFO_BLOCK_SIZE && r->len == 14) {
		n->min_block = nbd_get32(r->data + 2);
		n->pref_block = nbd_get32(r->data + 6);
		n->max_payload = nbd_get32(r->data + 10);
	}
	return 0;
}

/* NBD_OPT_GO; 1 when the server does not know it (fall back). */
static int opt_go(int fd, const char *export, struct nbd_negotiated *n, struct rep *r)
{
	size_t elen = strlen(export);
	uint8_t *buf = xmalloc(elen + 8);
	bool have_export = false;
	int ret;

	nbd_put32(buf, (uint32_t)elen);
	memcpy(buf + 4, export, elen);
	nbd_put16(buf + 4 + elen, 1);
	nbd_put16(buf + 6 + elen, NBD_INFO_BLOCK_SIZE);
	ret = send_opt(fd, NBD_OPT_GO, buf, (uint32_t)(elen + 8));
	free(buf);
	while (ret == 0 && (ret = recv_rep(fd, NBD_OPT_GO, r)) == 0 && r->type == NBD_REP_INFO) {
		have_export |= r->len >= 2 && nbd_get16(r->data) == NBD_INFO_EXPORT;
		ret = go_info(n, r);
	}
	if (ret < 0)
		return ret;
	if (r->type == NBD_REP_ERR_UNSUP)
		return 1;
	if (r->type != NBD_REP_ACK)
		return rep_error(r, NBD_OPT_GO, export[0] ? export : "default export");
	if (!have_export)
		return err_set(-EPROTO, "NBD handshake: no export information");
	return 0;
}

static int opt_export_name(int fd, const char *export, bool no_zeroes,
			   struct nbd_negotiated *n)
{
	uint8_t buf[10 + 124];
	int ret = send_opt(fd, NBD_OPT_EXPORT_NAME, export, (uint32_t)strlen(export));

	if (ret < 0)
		return ret;
	if (read_full(fd, buf, no_zeroes ? 10 : sizeof(buf)) < 0)
		return err_set(-ENOENT, "export '%s' refused by the server", export);
	n->size = nbd_get64(buf);
	n->flags = nbd_get16(buf + 8);
	n->has_alloc = n->has_depth = false;
	return 0;
}

static int greeting(int fd, uint16_t *hflags)
{
	uint8_t g[18];
	uint32_t cflags;

	if (read_full(fd, g, sizeof(g)) < 0)
		return err_set(-EIO, "NBD handshake: connection closed by the server");
	if (nbd_get64(g) != NBD_MAGIC)
		return err_set(-EPROTO, "not an NBD server (bad magic)");
	if (nbd_get64(g + 8) != NBD_IHAVEOPT)
		return err_set(-EPROTO, "NBD server speaks the old style protocol");
	*hflags = nbd_get16(g + 16);
	cflags = *hflags & (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	nbd_put32(g, cflags);
	if (write_full(fd, g, 4) < 0)
		return err_set(-EIO, "NBD handshake: connection lost");
	return 0;
}

int nbd_client_handshake(int fd, const struct nbd_client_opts *o,
			 struct nbd_negotiated *n)
{
	static const struct nbd_client_opts dflt;
	const char *export;
	struct rep r = { 0 };
	uint16_t hflags = 0;
	int ret;

	o = o ? o : &dflt;
	export = o->export ? o->export : "";
	memset(n, 0, sizeof(*n));
	n->min_block = 1;
	n->pref_block = 4096;
	n->max_payload = NBD_MAX_PAYLOAD;
	if ((ret = greeting(fd, &hflags)) < 0)
		return ret;
	if (!(hflags & NBD_FLAG_FIXED_NEWSTYLE)) {
		ret = opt_export_name(fd, export, hflags & NBD_FLAG_NO_ZEROES, n);
		goto out;
	}
	if (!o->no_structured && (ret = opt_structured(fd, n, &r)) < 0)
		goto out;
	if (n->structured && (ret = opt_set_meta(fd, export, o->want_depth, n, &r)) < 0)
		goto out;
	ret = opt_go(fd, export, n, &r);
	if (ret == 1)
		ret = opt_export_name(fd, export, hflags & NBD_FLAG_NO_ZEROES, n);
out:
	free(r.data);
	if (ret == 0 && (n->max_payload == 0 || n->max_payload > NBD_MAX_PAYLOAD))
		n->max_payload = NBD_MAX_PAYLOAD;
	if (ret == 0 && (n->min_block == 0 || n->min_block > 65536 ||
			 (n->min_block & (n->min_block - 1))))
		n->min_block = 1;
	return ret;
}

int nbd_client_connect_uri(const char *uri, char **export)
{
	struct nbd_uri u;
	int fd;

	if (nbd_uri_parse(uri, &u) < 0)
		return -EINVAL;
	if (u.tls) {
		nbd_uri_free(&u);
		return err_set(-ENOTSUP, "%s: TLS is not supported", uri);
	}
	if (u.transport == NBD_URI_UNIX)
		fd = sock_connect_unix(u.socket);
	else
		fd = sock_connect_tcp(u.host, u.port);
	if (fd >= 0 && export)
		*export = xstrdup(u.export ? u.export : "");
	nbd_uri_free(&u);
	return fd;
}
