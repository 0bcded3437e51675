/*
 * Fuzz lib/common's text parsers with arbitrary bytes: suboptions, sizes,
 * numbers, debug categories, NBD URIs and socket addresses.  Each must
 * return an error or a result, never crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct kvlist kv;
	struct nbd_uri u;
	struct sock_addr a;
	uint64_t v;
	unsigned m = 0;
	char buf[SIZE_STR_LEN];

	memcpy(s, data, size);
	s[size] = 0;
	if (kv_parse(s, "file", &kv) == 0) {
		for (size_t i = 0; i < kv.n; i++) {
			char *e = kv_escape(kv.v[i].val);

			free(e);
		}
		kv_free(&kv);
	}
	if (size_parse(s, 0, &v) == 0)
		size_to_str(v, buf);
	parse_u64(s, 0, UINT64_MAX, &v);
	log_parse_categories(s, &m);
	if (nbd_uri_parse(s, &u) == 0)
		nbd_uri_free(&u);
	/* fd: addresses would probe real descriptors; skip them */
	if (strncmp(s, "fd", 2) && sock_addr_parse(s, &a) == 0)
		sock_addr_free(&a);
	free(s);
	return 0;
}
