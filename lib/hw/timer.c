/*
 * Device timers: one thread sleeps until the earliest deadline and runs
 * the expired callbacks with the machine lock held.  Devices arm and
 * disarm timers under the same lock; arming wakes the thread.
 */
#include <errno.h>
#include <time.h>

#include "common/common.h"
#include "hw/internal.h"

int64_t hw_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void hw_timer_init(struct hw_timer *t, void (*cb)(void *), void *opaque)
{
	t->deadline = -1;
	t->cb = cb;
	t->opaque = opaque;
	t->next = NULL;
}

static void unlink_timer(struct machine *m, struct hw_timer *t)
{
	for (struct hw_timer **p = &m->timers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->next = NULL;
}

void hw_timer_del(struct machine *m, struct hw_timer *t)
{
	if (t->deadline >= 0)
		unlink_timer(m, t);
	t->deadline = -1;
}

void hw_timer_mod(struct machine *m, struct hw_timer *t, int64_t deadline)
{
	hw_timer_del(m, t);
	t->deadline = deadline;
	t->next = m->timers;
	m->timers = t;
	pthread_cond_signal(&m->timer_cond);
}

static void *timer_thread(void *arg)
{
	struct machine *m = arg;

	pthread_mutex_lock(&m->lock);
	while (m->timer_running) {
		int64_t now = hw_clock_ns(), next = INT64_MAX;
		struct hw_timer *t;

		for (t = m->timers; t; t = t->next)
			if (t->deadline <= now)
				break;
		if (t) {
			hw_timer_del(m, t);
			t->cb(t->opaque);
			continue;
		}
		for (t = m->timers; t; t = t->next)
			next = MIN(next, t->deadline);
		if (next == INT64_MAX) {
			pthread_cond_wait(&m->timer_cond, &m->lock);
		} else {
			struct timespec ts = { next / 1000000000, next % 1000000000 };
			pthread_cond_timedwait(&m->timer_cond, &m->lock, &ts);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int hw_timers_start(struct machine *m)
{
	int r;

	m->timer_running = true;
	r = pthread_create(&m->timer_thread, NULL, timer_thread, m);
	if (r) {
		m->timer_running = false;
		return err_set_errno(r, "timer thread");
	}
	return 0;
}

void hw_timers_stop(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
	if (!m->timer_running) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	m->timer_running = false;
	pthread_cond_signal(&m->timer_cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->timer_thread, NULL);
}
