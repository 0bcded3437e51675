/*
 * Secrets for --object secret,id=ID,data=STRING|file=PATH[,format=raw|base64]
 * (QEMU's "secret" object).  The bytes live in libsodium's guarded,
 * mlock()ed allocations and are wiped (sodium_free zeroes them) when the
 * store is freed; they never pass through an unlocked heap buffer longer
 * than it takes to copy them in, and those copies are wiped too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common.h"

#define SECRET_MAX (64 * 1024)

struct secret {
	char *id;
	uint8_t *data;      /* sodium_malloc'd, len + 1 bytes, NUL-terminated */
	size_t len;
	struct secret *next;
};

struct secret_store {
	struct secret *list;
};

struct secret_store *secret_store_new(void)
{
	if (sodium_init() < 0)
		return NULL;
	return xzalloc(sizeof(struct secret_store));
}

void secret_store_free(struct secret_store *s)
{
	if (!s)
		return;
	while (s->list) {
		struct secret *e = s->list;

		s->list = e->next;
		sodium_free(e->data);
		free(e->id);
		free(e);
	}
	free(s);
}

/* Read a secret file into guarded memory. */
static int secret_read_file(const char *path, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set_errno(errno, "%s", path);
	if (fstat(fd, &st) < 0 || st.st_size > SECRET_MAX) {
		r = st.st_size > SECRET_MAX ? err_set(-EFBIG, "%s: secret is too large", path)
					    : err_set_errno(errno, "%s", path);
		close(fd);
		return r;
	}
	buf = sodium_malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return err_set(-ENOMEM, "cannot lock memory for a secret");
	}
	r = read_full(fd, buf, (size_t)st.st_size);
	close(fd);
	if (r < 0) {
		sodium_free(buf);
		return err_set_errno(-r, "%s", path);
	}
	buf[st.st_size] = 0;
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

/* Decode base64 from guarded memory into new guarded memory. */
static int secret_base64(struct secret *e)
{
	size_t max = e->len / 4 * 3 + 3, n;
	uint8_t *dec = sodium_malloc(max + 1);

	if (!dec)
		return err_set(-ENOMEM, "cannot lock memory for a secret");
	if (sodium_base642bin(dec, max, (const char *)e->data, e->len, "\n\r ", &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) < 0) {
		sodium_free(dec);
		return err_set(-EINVAL, "secret '%s': invalid base64 data", e->id);
	}
	dec[n] = 0;
	sodium_free(e->data);
	e->data = dec;
	e->len = n;
	return 0;
}

static int secret_fill(struct secret *e, const struct kvlist *kv)
{
	const char *data = kv_get(kv, "data"), *file = kv_get(kv, "file");
	const char *format = kv_get(kv, "format");

	if (!!data == !!file)
		return err_set(-EINVAL, "secret '%s': give exactly one of data= and file=", e->id);
	if (kv_get(kv, "keyid") || kv_get(kv, "iv"))
		return err_set(-ENOTSUP, "secret '%s': encrypted secrets (keyid=, iv=) are not supported", e->id);
	if (format && strcmp(format, "raw") && strcmp(format, "base64"))
		return err_set(-EINVAL, "secret '%s': format must be raw or base64", e->id);
	if (data) {
		e->len = strlen(data);
		e->data = sodium_malloc(e->len + 1);
		if (!e->data)
			return err_set(-ENOMEM, "cannot lock memory for a secret");
		memcpy(e->data, data, e->len + 1);
	} else {
		int r = secret_read_file(file, &e->data, &e->len);

		if (r < 0)
			return r;
	}
	if (format && !strcmp(format, "base64"))
		return secret_base64(e);
	return 0;
}

int secret_add_object(struct secret_store *s, const char *objopt)
{
	static const char *const known[] = { "qom-type", "id", "data", "file", "format",
					     "keyid", "iv", NULL };
	struct kvlist kv;
	struct secret *e;
	const char *id;
	int r;

	if ((r = kv_parse(objopt, "qom-type", &kv)) < 0)
		return r;
	if (!kv_get(&kv, "qom-type") || strcmp(kv_get(&kv, "qom-type"), "secret")) {
		r = err_set(-EINVAL, "--object: unsupported object type '%s' (only 'secret')",
			    kv_get(&kv, "qom-type") ? kv_get(&kv, "qom-type") : "");
		goto out;
	}
	if ((r = kv_check(&kv, known)) < 0)
		goto out;
	id = kv_get(&kv, "id");
	if (!id || !*id) {
		r = err_set(-EINVAL, "--object secret: parameter 'id' is missing");
		goto out;
	}
	if (secret_lookup(s, id, NULL, NULL) == 0) {
		r = err_set(-EEXIST, "--object secret: duplicate id '%s'", id);
		goto out;
	}
	e = xzalloc(sizeof(*e));
	e->id = xstrdup(id);
	if ((r = secret_fill(e, &kv)) < 0) {
		if (e->data)
			sodium_free(e->data);
		free(e->id);
		free(e);
		goto out;
	}
	e->next = s->list;
	s->list = e;
out:
	/* The option string's copy of data= is wiped as well. */
	for (size_t i = 0; i < kv.n; i++)
		sodium_memzero(kv.v[i].val, strlen(kv.v[i].val));
	kv_free(&kv);
	return r;
}

int secret_lookup(const struct secret_store *s, const char *id,
		  const uint8_t **data, size_t *len)
{
	for (const struct secret *e = s ? s->list : NULL; e; e = e->next) {
		if (strcmp(e->id, id))
			continue;
		if (data)
			*data = e->data;
		if (len)
			*len = e->len;
		return 0;
	}
	return err_set(-ENOENT, "no secret with id '%s'", id);
}
