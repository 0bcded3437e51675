/*
 * A small fixed-size thread pool: submit jobs, wait until all are done.
 * Jobs run in submission order on whichever worker is free.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

struct pool_job {
	void (*fn)(void *arg);
	void *arg;
	struct pool_job *next;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work;     /* a job was queued, or shutdown */
	pthread_cond_t idle;     /* pending dropped to zero */
	struct pool_job *head, *tail;
	size_t pending;          /* queued + running */
	bool shutdown;
	int nthreads;
	pthread_t *threads;
};

int cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

static void *pool_worker(void *opaque)
{
	struct pool *p = opaque;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct pool_job *j;

		while (!p->head && !p->shutdown)
			pthread_cond_wait(&p->work, &p->lock);
		if (!p->head)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->lock);
		if (--p->pending == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct pool *pool_new(int nthreads)
{
	struct pool *p = xzalloc(sizeof(*p));

	if (nthreads <= 0)
		nthreads = cpu_count();
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->threads = xzalloc(sizeof(*p->threads) * nthreads);
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, pool_worker, p))
			break;
		p->nthreads++;
	}
	if (!p->nthreads) {
		err_set(-EAGAIN, "cannot start worker threads");
		free(p->threads);
		free(p);
		return NULL;
	}
	return p;
}

void pool_submit(struct pool *p, void (*fn)(void *arg), void *arg)
{
	struct pool_job *j = xmalloc(sizeof(*j));

	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->pending++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->lock);
}

void pool_wait(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->pending)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	pool_wait(p);
	pthread_mutex_lock(&p->lock);
	p->shutdown = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	free(p->threads);
	free(p);
}

int pool_threads(const struct pool *p)
{
	return p->nthreads;
}
