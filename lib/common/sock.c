/*
 * Sockets: unix and TCP listen/connect, QEMU-style addresses
 * ("unix:PATH", "tcp:HOST:PORT", "fd:N"), descriptor passing with
 * SCM_RIGHTS (unix(7)), and full reads and writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"

/* A new unix stream socket and the address of path, or -errno. */
static int unix_socket(const char *path, struct sockaddr_un *sa)
{
	int fd;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return err_set(-ENAMETOOLONG, "%s: socket path is too long", path);
	strcpy(sa->sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	return fd < 0 ? err_set_errno(errno, "socket") : fd;
}

int sock_listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sa;
	int fd, r;

	if ((fd = unix_socket(path, &sa)) < 0)
		return fd;
	unlink(path);
	/* Nobody can connect before listen(), so the mode is set between the
	 * two; changing the umask instead would race with other threads. */
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r == 0 && chmod(path, mode) < 0)
		r = -1;
	if (r < 0 || listen(fd, 128) < 0) {
		r = err_set_errno(errno, "%s", path);
		close(fd);
		return r;
	}
	return fd;
}

int sock_connect_unix(const char *path)
{
	struct sockaddr_un sa;
	int fd, r;

	if ((fd = unix_socket(path, &sa)) < 0)
		return fd;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = err_set_errno(errno, "%s", path);
		close(fd);
		return r;
	}
	return fd;
}

static int tcp_resolve(const char *host, const char *port, bool passive, struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG,
	};
	int r;

	if (host && !*host)
		host = NULL;
	r = getaddrinfo(host, port, &hints, res);
	if (r)
		return err_set(-EHOSTUNREACH, "%s:%s: %s", host ? host : "*", port,
			       gai_strerror(r));
	return 0;
}

int sock_listen_tcp(const char *host, const char *port, int *fds, int max)
{
	struct addrinfo *res, *ai;
	int n = 0, r, one = 1, saved = 0;

	if ((r = tcp_resolve(host, port, true, &res)) < 0)
		return r;
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
			saved = errno;
			close(fd);
			continue;
		}
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	if (!n)
		return err_set_errno(saved ? saved : EADDRNOTAVAIL, "%s:%s",
				     host && *host ? host : "*", port);
	return n;
}

int sock_connect_tcp(const char *host, const char *port)
{
	struct addrinfo *res, *ai;
	int fd = -1, r, saved = ECONNREFUSED, one = 1;

	if ((r = tcp_resolve(host, port, false, &res)) < 0)
		return r;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err_set_errno(saved, "%s:%s", host, port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int sock_parse_fd(const char *s, int *fd)
{
	int v, r;

	if ((r = parse_int(s, 0, 65535, &v)) < 0)
		return err_set(r, "'%s' is not a file descriptor number", s);
	if (fcntl(v, F_GETFD) < 0)
		return err_set_errno(errno, "file descriptor %d", v);
	*fd = v;
	return 0;
}

/* "HOST:PORT" with HOST possibly "[v6]" or empty. */
static int split_host_port(const char *s, struct sock_addr *a)
{
	const char *colon;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return err_set(-EINVAL, "'%s': expected [ADDRESS]:PORT", s);
		a->host = strndup(s + 1, rb - s - 1);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return err_set(-EINVAL, "'%s': expected HOST:PORT", s);
		a->host = strndup(s, colon - s);
	}
	a->port = xstrdup(colon + 1);
	if (!*a->port)
		return err_set(-EINVAL, "'%s': missing port", s);
	return 0;
}

int sock_addr_parse(const char *s, struct sock_addr *a)
{
	int r = 0;

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	if (!strncmp(s, "unix:", 5)) {
		a->kind = SOCK_UNIX;
		a->path = xstrdup(s + 5);
		if (!*a->path)
			r = err_set(-EINVAL, "'%s': missing socket path", s);
	} else if (!strncmp(s, "tcp:", 4)) {
		a->kind = SOCK_TCP;
		r = split_host_port(s + 4, a);
	} else if (!strncmp(s, "fd:", 3) || !strncmp(s, "fd=", 3)) {
		a->kind = SOCK_FD;
		r = sock_parse_fd(s + 3, &a->fd);
	} else if (*s) {
		a->kind = SOCK_UNIX;
		a->path = xstrdup(s);
	} else {
		r = err_set(-EINVAL, "empty socket address");
	}
	if (r < 0)
		sock_addr_free(a);
	return r;
}

void sock_addr_free(struct sock_addr *a)
{
	free(a->path);
	free(a->host);
	free(a->port);
	a->path = a->host = a->port = NULL;
}

ssize_t sock_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (nfds < 0 || nfds > 16)
		return err_set(-EINVAL, "too many descriptors to pass (%d)", nfds);
	if (nfds) {
		memset(ctl, 0, sizeof(ctl));
		msg.msg_control = ctl;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? err_set_errno(errno, "sendmsg") : n;
}

ssize_t sock_recv_fds(int sock, void *buf, size_t len, int *fds, int *nfds, int max)
{
	char ctl[CMSG_SPACE(sizeof(int) * 16)];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_set_errno(errno, "recvmsg");
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		int cnt, *in;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		in = (int *)CMSG_DATA(c);
		for (int i = 0; i < cnt; i++) {
			if (*nfds < max)
				fds[(*nfds)++] = in[i];
			else
				close(in[i]);   /* more than the caller wants */
		}
	}
	return n;
}

int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0 || fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}
