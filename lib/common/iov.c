/*
 * Scatter/gather lists: their length, and pieces of them (the NBD
 * client's reads and writes of a request's iovecs, vm-run's requests
 * cut across connections).
 */
#include <sys/uio.h>

#include "common/common.h"

size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;

	for (int i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

int iov_seek(const struct iovec *iov, int n, size_t *skip)
{
	int i = 0;

	while (i < n && *skip >= iov[i].iov_len)
		*skip -= iov[i++].iov_len;
	return i;
}

int iov_slice(const struct iovec *iov, int n, int i, size_t skip, size_t len,
	      struct iovec *out, int max)
{
	int k = 0;

	for (; i < n && k < max && len; i++, skip = 0) {
		size_t c = MIN(iov[i].iov_len - skip, len);

		if (!c)
			continue;
		out[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + skip, c };
		len -= c;
	}
	return k;
}
