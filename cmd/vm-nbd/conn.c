/*
 * One client connection of vm-nbd: its two threads and its lifetime.
 *
 * The reader thread runs the handshake (handshake.c), then reads requests
 * (transmit.c) until the client sends NBD_CMD_DISC, goes away, or breaks
 * the protocol.  The writer thread sends replies as workers finish them.
 * Pool workers never touch the socket, so a client that stops reading
 * only ever blocks its own writer, never the other clients.  When the
 * reader stops, the connection waits for its requests in flight, lets the
 * writer drain, closes the socket and tells the accept loop.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/common.h"
#include "vm-nbd.h"

#define WRITE_BATCH 256   /* iovecs per writev() */

uint16_t conn_tflags(const struct conn *c)
{
	const struct export *e = c->srv->exp;
	const struct nbd_config *cfg = c->srv->cfg;
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
		     NBD_FLAG_SEND_CACHE;

	if (c->structured)
		f |= NBD_FLAG_SEND_DF;
	if (!e->writable)
		f |= NBD_FLAG_READ_ONLY;
	else
		f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |
		     NBD_FLAG_SEND_FAST_ZERO;
	/* Every connection shares one image and a flush reaches all of it,
	 * so what one client flushes is stable for all: multi-conn is safe.
	 * As qemu-nbd, advertise it only when several clients may connect,
	 * or clients like nbdcopy would wait for connections never accepted;
	 * --fd with several sockets is one client's several connections. */
	if (cfg->shared != 1 || cfg->nfds > 1)
		f |= NBD_FLAG_CAN_MULTI_CONN;
	return f;
}

/* ---- the writer ---- */

static int writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t k = writev(fd, iov, MIN(n, IOV_MAX));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -EIO;
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= k;
		}
	}
	return 0;
}

/* Wake the threads that wait on the connection's state (lock held), but
 * only those with something to do now: the writer when replies wait and
 * nobody sends, or when it may end; the reader when it waits for room
 * in the in-flight limits.  A wakeup for nothing costs a context switch
 * per reply on a busy host. */
static void wake_locked(struct conn *c)
{
	if ((c->replies && !c->writing) || (c->reading_done && !c->inflight))
		pthread_cond_signal(&c->wcond);
	if (c->admit_waiting)
		pthread_cond_signal(&c->cond);
}

/* A reply is gone (or will never go): free it and its slot (its pipe,
 * if empty, is kept for the next spliced read). */
static void release_locked(struct conn *c, struct nbd_req *r)
{
	c->inflight--;
	if (r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE)
		c->inflight_bytes -= r->len;
	if (r->pipe[0] >= 0 && !r->pipe_fill)
		splice_pipe_put_locked(c, r->pipe, r->pipe_cap);
	req_free(r);
}

/* Send as much of a list of replies as the socket takes without
 * blocking; returns the first reply not completely sent (its iovecs
 * trimmed of what went out), or NULL. */
static struct nbd_req *send_now(struct conn *c, struct nbd_req *list)
{
	struct iovec iov[WRITE_BATCH];
	struct msghdr m = { .msg_iov = iov };
	struct nbd_req *r;
	ssize_t k;
	int n = 0;

	for (r = list; r && r->niov && r->pipe[0] < 0 && n + r->niov <= WRITE_BATCH; r = r->next) {
		memcpy(iov + n, r->iov, sizeof(*iov) * r->niov);
		n += r->niov;
	}
	if (!n)
		return list;
	m.msg_iovlen = n;
	k = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (k <= 0)
		return list;
	for (r = list; r; r = r->next) {
		size_t total = 0;
		int i = 0;

		for (int j = 0; j < r->niov; j++)
			total += r->iov[j].iov_len;
		if ((size_t)k >= total) {
			k -= total;
			continue;
		}
		while ((size_t)k >= r->iov[i].iov_len)
			k -= r->iov[i++].iov_len;
		r->iov[i].iov_base = (uint8_t *)r->iov[i].iov_base + k;
		r->iov[i].iov_len -= k;
		memmove(r->iov, r->iov + i, sizeof(*r->iov) * (r->niov - i));
		r->niov -= i;
		break;
	}
	return r;
}

/* Take the socket for writing when nobody writes and nothing waits. */
static bool claim_writer(struct conn *c)
{
	bool ok;

	pthread_mutex_lock(&c->lock);
	ok = !c->writing && !c->replies && !c->dead;
	if (ok)
		c->writing = true;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* Hand finished replies (a list from head to tail) over.  When nobody is
 * sending and nothing waits, the calling thread sends them itself (never
 * blocking: a client that does not read can only stall its own writer
 * thread); what is left, or everything when the socket is busy, joins
 * the writer's queue in order. */
void conn_queue_replies(struct conn *c, struct nbd_req *head, struct nbd_req *tail)
{
	struct nbd_req *rest = head;
	bool direct;

	tail->next = NULL;
	direct = claim_writer(c);
	if (direct)
		rest = send_now(c, head);
	pthread_mutex_lock(&c->lock);
	if (direct) {
		c->writing = false;
		while (head != rest) {
			struct nbd_req *next = head->next;

			release_locked(c, head);
			head = next;
		}
	}
	if (rest && direct) {     /* its first bytes may be out: it goes first */
		tail->next = c->replies;
		c->replies = rest;
		if (!c->replies_tail)
			c->replies_tail = tail;
	} else if (rest) {
		if (c->replies_tail)
			c->replies_tail->next = rest;
		else
			c->replies = rest;
		c->replies_tail = tail;
	}
	wake_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void conn_queue_reply(struct conn *c, struct nbd_req *r)
{
	conn_queue_replies(c, r, r);
}

/* A reply on its own: its headers and data, spliced data (an iovec
 * without a base) from the request's pipe. */
static int send_alone(struct conn *c, struct nbd_req *r)
{
	for (int i = 0, j; i < r->niov; i = j) {
		if (!r->iov[i].iov_base) {
			if (splice_send(r->pipe[0], c->fd, r->iov[i].iov_len, i + 1 < r->niov) < 0)
				return -EIO;
			r->pipe_fill -= MIN(r->pipe_fill, r->iov[i].iov_len);
			j = i + 1;
			continue;
		}
		for (j = i; j < r->niov && r->iov[j].iov_base; j++)
			;
		if (writev_all(c->fd, r->iov + i, j - i) < 0)
			return -EIO;
	}
	return 0;
}

/* Send a batch of finished replies; free them and release their slots. */
static void send_batch(struct conn *c, struct nbd_req *list, bool dead)
{
	struct iovec iov[WRITE_BATCH];
	struct nbd_req *r = list, *done;

	while (r) {
		int n = 0;

		done = r;
		while (r && (n == 0 || (r->pipe[0] < 0 && n + r->niov <= WRITE_BATCH))) {
			if (r->niov > WRITE_BATCH || r->pipe[0] >= 0) {   /* on its own */
				if (!dead && send_alone(c, r) < 0)
					dead = true;
				r = r->next;
				break;
			}
			if (r->niov)
				memcpy(iov + n, r->iov, sizeof(*iov) * r->niov);
			n += r->niov;
			r = r->next;
		}
		if (n && !dead && writev_all(c->fd, iov, n) < 0)
			dead = true;
		if (dead)
			shutdown(c->fd, SHUT_RDWR);
		pthread_mutex_lock(&c->lock);
		c->dead |= dead;
		while (done != r) {
			struct nbd_req *next = done->next;

			release_locked(c, done);
			done = next;
		}
		wake_locked(c);
		pthread_mutex_unlock(&c->lock);
	}
}

/* The reader thread's own replies: sent right here, blocking, when the
 * socket is free (spliced data included, so a read served from the
 * page cache never leaves the reader thread); else queued.  Blocking
 * the reader stalls only this client's connection. */
void conn_send_replies(struct conn *c, struct nbd_req *head, struct nbd_req *tail)
{
	bool direct;

	tail->next = NULL;
	direct = claim_writer(c);
	if (!direct) {
		conn_queue_replies(c, head, tail);
		return;
	}
	send_batch(c, head, false);
	pthread_mutex_lock(&c->lock);
	c->writing = false;
	wake_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static void *writer_main(void *opaque)
{
	struct conn *c = opaque;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct nbd_req *list;

		bool dead;

		while ((!c->replies || c->writing) && !(c->reading_done && !c->inflight))
			pthread_cond_wait(&c->wcond, &c->lock);
		if (!c->replies)
			break;
		list = c->replies;
		c->replies = c->replies_tail = NULL;
		c->writing = true;
		dead = c->dead;
		pthread_mutex_unlock(&c->lock);
		send_batch(c, list, dead);
		pthread_mutex_lock(&c->lock);
		c->writing = false;
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the reader and the lifetime ---- */

static void conn_end(struct conn *c)
{
	struct server *s = c->srv;
	struct conn **pp;
	char b = 1;

	pthread_mutex_lock(&s->lock);
	for (pp = &s->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	s->nconns--;
	pthread_mutex_unlock(&s->lock);
	close(c->fd);
	splice_pipe_close(c);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->wcond);
	free(c->meta_export);
	free(c);
	if (write(s->notify[1], &b, 1) < 0)
		LOG(LOG_NBD, "cannot wake the accept loop");
}

static void *reader_main(void *opaque)
{
	struct conn *c = opaque;
	int r = handshake_run(c);

	if (r < 0)
		log_info("handshake failed: %s", err_msg());
	if (r == 0 && pthread_create(&c->writer, NULL, writer_main, c) == 0) {
		LOG(LOG_NBD, "transmission phase, flags 0x%x", c->tflags);
		transmit_run(c);
		pthread_mutex_lock(&c->lock);
		c->reading_done = true;
		wake_locked(c);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->writer, NULL);
	}
	log_info("client disconnected");
	conn_end(c);
	return NULL;
}

void conn_start(struct server *s, int fd)
{
	struct conn *c = xzalloc(sizeof(*c));
	pthread_attr_t attr;

	c->srv = s;
	c->fd = fd;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_cond_init(&c->wcond, NULL);
	pthread_mutex_lock(&s->lock);
	c->next = s->conns;
	s->conns = c;
	s->nconns++;
	s->served++;
	pthread_mutex_unlock(&s->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&c->reader, &attr, reader_main, c)) {
		log_warn("cannot start a connection thread");
		conn_end(c);
	}
	pthread_attr_destroy(&attr);
}
