/*
 * An epoll(7) event loop: callbacks per descriptor, and an eventfd that
 * lets any thread wake the loop (and run a callback in it).  A watch
 * removed during dispatch is only marked dead and freed after the batch,
 * so a callback may remove any descriptor, its own included.
 *
 * Timers (one-shot or periodic, in milliseconds of CLOCK_MONOTONIC) live
 * on the same loop: each round's epoll_wait is bounded by the earliest
 * armed timer, and the expired ones fire after the descriptor callbacks.
 * A round fires each timer at most once, earliest first, so a callback that re-arms in
 * the past cannot starve the descriptors; a timer deleted during a round
 * (by any callback) is freed at its end, like a watch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

struct loop_watch {
	int fd;
	bool dead;
	loop_fn *fn;
	void *opaque;
	struct loop_watch *next;
};

struct loop_timer {
	struct loop *loop;
	loop_timer_fn *fn;
	void *opaque;
	int64_t when;                /* -1: disarmed */
	int64_t period;              /* 0: one-shot */
	bool dead;
	bool due;                    /* to fire in the current round */
	struct loop_timer *next;
};

struct loop {
	int epfd;
	int wakefd;
	bool stop;
	struct loop_watch *watches;
	struct loop_timer *timers;
	void (*wake_fn)(struct loop *l, void *opaque);
	void *wake_opaque;
};

static unsigned to_epoll(unsigned ev)
{
	return (ev & LOOP_IN ? EPOLLIN : 0) | (ev & LOOP_OUT ? EPOLLOUT : 0);
}

static unsigned from_epoll(unsigned ev)
{
	return (ev & EPOLLIN ? LOOP_IN : 0) | (ev & EPOLLOUT ? LOOP_OUT : 0) |
	       (ev & EPOLLERR ? LOOP_ERR : 0) | (ev & (EPOLLHUP | EPOLLRDHUP) ? LOOP_HUP : 0);
}

struct loop *loop_new(void)
{
	struct loop *l = xzalloc(sizeof(*l));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wakefd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
		err_set_errno(errno, "event loop");
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->wakefd >= 0)
			close(l->wakefd);
		free(l);
		return NULL;
	}
	return l;
}

static void loop_sweep(struct loop *l)
{
	struct loop_watch **pp = &l->watches;

	while (*pp) {
		struct loop_watch *w = *pp;

		if (w->dead) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (struct loop_watch *w = l->watches; w; w = w->next)
		w->dead = true;
	loop_sweep(l);
	while (l->timers) {
		struct loop_timer *t = l->timers;

		l->timers = t->next;
		free(t);
	}
	close(l->epfd);
	close(l->wakefd);
	free(l);
}

static struct loop_watch *loop_find(struct loop *l, int fd)
{
	for (struct loop_watch *w = l->watches; w; w = w->next)
		if (w->fd == fd && !w->dead)
			return w;
	return NULL;
}

int loop_add(struct loop *l, int fd, unsigned events, loop_fn *fn, void *opaque)
{
	struct loop_watch *w = xzalloc(sizeof(*w));
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = w };

	w->fd = fd;
	w->fn = fn;
	w->opaque = opaque;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = err_set_errno(errno, "epoll add fd %d", fd);

		free(w);
		return r;
	}
	w->next = l->watches;
	l->watches = w;
	return 0;
}

int loop_mod(struct loop *l, int fd, unsigned events)
{
	struct loop_watch *w = loop_find(l, fd);
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = w };

	if (!w)
		return err_set(-ENOENT, "fd %d is not watched", fd);
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return err_set_errno(errno, "epoll mod fd %d", fd);
	return 0;
}

int loop_del(struct loop *l, int fd)
{
	struct loop_watch *w = loop_find(l, fd);

	if (!w)
		return err_set(-ENOENT, "fd %d is not watched", fd);
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->dead = true;
	return 0;
}

/* ---- timers ---- */

int64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop_timer *loop_timer_new(struct loop *l, loop_timer_fn *fn, void *opaque)
{
	struct loop_timer *t = xzalloc(sizeof(*t));

	t->loop = l;
	t->fn = fn;
	t->opaque = opaque;
	t->when = -1;
	t->next = l->timers;
	l->timers = t;
	return t;
}

void loop_timer_mod(struct loop_timer *t, int64_t when)
{
	t->period = 0;
	t->when = when < 0 ? -1 : when;
}

void loop_timer_every(struct loop_timer *t, int64_t period_ms)
{
	if (period_ms <= 0) {
		loop_timer_mod(t, -1);
		return;
	}
	t->period = period_ms;
	t->when = loop_now_ms() + period_ms;
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->when >= 0;
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return;
	t->dead = true;
	t->due = false;
	t->when = -1;
}

static void loop_timer_sweep(struct loop *l)
{
	struct loop_timer **pp = &l->timers;

	while (*pp) {
		struct loop_timer *t = *pp;

		if (t->dead) {
			*pp = t->next;
			free(t);
		} else {
			pp = &t->next;
		}
	}
}

int loop_timeout(struct loop *l, int timeout_ms)
{
	int64_t now = loop_now_ms(), first = -1;

	for (struct loop_timer *t = l->timers; t; t = t->next)
		if (t->when >= 0 && (first < 0 || t->when < first))
			first = t->when;
	if (first < 0)
		return timeout_ms;
	first = first <= now ? 0 : MIN(first - now, INT32_MAX);
	return timeout_ms < 0 || first < timeout_ms ? (int)first : timeout_ms;
}

/* Fire the timers expired at the start of this step, each once, earliest
 * first.  The walk restarts after each callback, which may have changed
 * the list; `due` marks those still to fire. */
static int loop_timers_run(struct loop *l)
{
	int64_t now = loop_now_ms();
	int ran = 0;

	for (struct loop_timer *t = l->timers; t; t = t->next)
		t->due = !t->dead && t->when >= 0 && t->when <= now;
	for (;;) {
		struct loop_timer *t = NULL;

		for (struct loop_timer *u = l->timers; u; u = u->next)
			if (u->due && (!t || u->when < t->when))
				t = u;
		if (!t)
			break;
		t->due = false;
		if (t->period)
			t->when = MAX(t->when + t->period, now + 1);
		else
			t->when = -1;
		t->fn(t->opaque);
		ran++;
	}
	return ran;
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[64];
	int n, ran = 0;

	n = epoll_wait(l->epfd, evs, ARRAY_SIZE(evs), loop_timeout(l, timeout_ms));
	if (n < 0 && errno != EINTR)
		return err_set_errno(errno, "epoll_wait");
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = evs[i].data.ptr;

		if (!w) {
			uint64_t v;

			if (read(l->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return err_set_errno(errno, "eventfd");
			if (l->wake_fn)
				l->wake_fn(l, l->wake_opaque);
			ran++;
			continue;
		}
		if (w->dead)
			continue;
		w->fn(l, w->fd, from_epoll(evs[i].events), w->opaque);
		ran++;
	}
	loop_sweep(l);
	if (l->timers) {
		ran += loop_timers_run(l);
		loop_timer_sweep(l);
	}
	return ran;
}

int loop_run(struct loop *l)
{
	int r;

	l->stop = false;
	while (!l->stop)
		if ((r = loop_run_once(l, -1)) < 0)
			return r;
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
	loop_wake(l);
}

void loop_wake(struct loop *l)
{
	uint64_t one = 1;

	if (write(l->wakefd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, a wake-up is already pending */
	}
}

void loop_on_wake(struct loop *l, void (*fn)(struct loop *l, void *opaque), void *opaque)
{
	l->wake_fn = fn;
	l->wake_opaque = opaque;
}
