/*
 * lib/fmt/nbd-proto.c: small pieces of the NBD protocol shared by the
 * server (cmd/vm-nbd) and the client (nbd-client.c): the mapping between
 * host errno values and the error values of proto.md "Error values", and
 * the names of options, commands and replies for debug logs.
 */
#include <errno.h>

#include "common/common.h"
#include "fmt/fmt.h"

uint32_t nbd_errno_to_wire(int err)
{
	switch (err) {
	case 0:
		return 0;
	case EPERM:
	case EROFS:
	case EACCES:
		return NBD_EPERM;
	case ENOMEM:
		return NBD_ENOMEM;
	case EINVAL:
	case ERANGE:
		return NBD_EINVAL;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return NBD_ENOSPC;
	case EOVERFLOW:
		return NBD_EOVERFLOW;
	case ENOTSUP:
		return NBD_ENOTSUP;
	case ESHUTDOWN:
		return NBD_ESHUTDOWN;
	default:
		return NBD_EIO;
	}
}

int nbd_wire_to_errno(uint32_t nbd_err)
{
	switch (nbd_err) {
	case 0:
		return 0;
	case NBD_EPERM:
		return EPERM;
	case NBD_EIO:
		return EIO;
	case NBD_ENOMEM:
		return ENOMEM;
	case NBD_ENOSPC:
		return ENOSPC;
	case NBD_EOVERFLOW:
		return EOVERFLOW;
	case NBD_ENOTSUP:
		return ENOTSUP;
	case NBD_ESHUTDOWN:
		return ESHUTDOWN;
	default:
		return EINVAL;
	}
}

static const char *const opt_names[] = {
	[NBD_OPT_EXPORT_NAME] = "NBD_OPT_EXPORT_NAME",
	[NBD_OPT_ABORT] = "NBD_OPT_ABORT",
	[NBD_OPT_LIST] = "NBD_OPT_LIST",
	[NBD_OPT_PEEK_EXPORT] = "NBD_OPT_PEEK_EXPORT",
	[NBD_OPT_STARTTLS] = "NBD_OPT_STARTTLS",
	[NBD_OPT_INFO] = "NBD_OPT_INFO",
	[NBD_OPT_GO] = "NBD_OPT_GO",
	[NBD_OPT_STRUCTURED_REPLY] = "NBD_OPT_STRUCTURED_REPLY",
	[NBD_OPT_LIST_META_CONTEXT] = "NBD_OPT_LIST_META_CONTEXT",
	[NBD_OPT_SET_META_CONTEXT] = "NBD_OPT_SET_META_CONTEXT",
	[NBD_OPT_EXTENDED_HEADERS] = "NBD_OPT_EXTENDED_HEADERS",
};

static const char *const cmd_names[] = {
	[NBD_CMD_READ] = "NBD_CMD_READ",
	[NBD_CMD_WRITE] = "NBD_CMD_WRITE",
	[NBD_CMD_DISC] = "NBD_CMD_DISC",
	[NBD_CMD_FLUSH] = "NBD_CMD_FLUSH",
	[NBD_CMD_TRIM] = "NBD_CMD_TRIM",
	[NBD_CMD_CACHE] = "NBD_CMD_CACHE",
	[NBD_CMD_WRITE_ZEROES] = "NBD_CMD_WRITE_ZEROES",
	[NBD_CMD_BLOCK_STATUS] = "NBD_CMD_BLOCK_STATUS",
};

static const char *const rep_names[] = {
	[NBD_REP_ACK] = "NBD_REP_ACK",
	[NBD_REP_SERVER] = "NBD_REP_SERVER",
	[NBD_REP_INFO] = "NBD_REP_INFO",
	[NBD_REP_META_CONTEXT] = "NBD_REP_META_CONTEXT",
};

static const char *const rep_err_names[] = {
	[1] = "NBD_REP_ERR_UNSUP",
	[2] = "NBD_REP_ERR_POLICY",
	[3] = "NBD_REP_ERR_INVALID",
	[4] = "NBD_REP_ERR_PLATFORM",
	[5] = "NBD_REP_ERR_TLS_REQD",
	[6] = "NBD_REP_ERR_UNKNOWN",
	[7] = "NBD_REP_ERR_SHUTDOWN",
	[8] = "NBD_REP_ERR_BLOCK_SIZE_REQD",
	[9] = "NBD_REP_ERR_TOO_BIG",
};

static const char *lookup(const char *const *t, size_t n, uint32_t i)
{
	return i < n && t[i] ? t[i] : "unknown";
}

const char *nbd_opt_name(uint32_t opt)
{
	return lookup(opt_names, ARRAY_SIZE(opt_names), opt);
}

const char *nbd_cmd_name(uint16_t cmd)
{
	return lookup(cmd_names, ARRAY_SIZE(cmd_names), cmd);
}

const char *nbd_rep_name(uint32_t rep)
{
	if (rep & (1u << 31))
		return lookup(rep_err_names, ARRAY_SIZE(rep_err_names), rep & ~(1u << 31));
	return lookup(rep_names, ARRAY_SIZE(rep_names), rep);
}
