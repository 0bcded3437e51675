/*
 * Running the machine: one thread per vCPU drives its accelerator; the
 * caller's thread of machine_run() waits for a stop or a reset request
 * and carries out the reset with every vCPU parked.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "hw/internal.h"

/* Wait (lock held) while the machine is paused or a reset is pending.
 * False when the machine is stopping. */
static bool park(struct machine *m)
{
	while ((m->paused || m->request) && !m->stopping) {
		m->nparked++;
		pthread_cond_broadcast(&m->state_cond);
		pthread_cond_wait(&m->state_cond, &m->lock);
		m->nparked--;
	}
	return !m->stopping;
}

static void halt_wait(struct machine *m, struct hw_vcpu *v)
{
	pthread_mutex_lock(&m->lock);
	while (!v->kicked && !m->stopping && !m->request && !m->paused)
		pthread_cond_wait(&v->wake, &m->lock);
	v->kicked = false;
	pthread_mutex_unlock(&m->lock);
}

static void *vcpu_thread(void *arg)
{
	struct hw_vcpu *v = arg;
	struct machine *m = v->m;
	bool go = true;

	while (go) {
		pthread_mutex_lock(&m->lock);
		go = park(m);
		pthread_mutex_unlock(&m->lock);
		if (!go)
			break;
		switch (m->accel->run(v->accel_vcpu)) {
		case HW_EXIT_AGAIN:
		case HW_EXIT_STOP:
			break;
		case HW_EXIT_HLT:
			halt_wait(m, v);
			break;
		case HW_EXIT_SHUTDOWN:
			LOG(LOG_GUEST_ERRORS, "cpu %d: triple fault, resetting", v->index);
			pthread_mutex_lock(&m->lock);
			hw_request_reset(m);
			pthread_mutex_unlock(&m->lock);
			break;
		case HW_EXIT_ERROR:
			pthread_mutex_lock(&m->lock);
			if (!m->error)
				m->error = xasprintf("cpu %d: %s", v->index, err_msg());
			hw_request_exit(m, HW_STOP_ERROR, 1);
			pthread_mutex_unlock(&m->lock);
			break;
		}
	}
	return NULL;
}

int machine_boot(struct machine *m);

/* Reset with every vCPU parked (lock held on entry and exit). */
static void do_reset(struct machine *m)
{
	while (m->nparked < m->ncpu && !m->stopping)
		pthread_cond_wait(&m->state_cond, &m->lock);
	if (m->stopping)
		return;
	LOG(LOG_BOOT, "system reset");
	for (int i = 0; i < m->ndevs; i++)
		if (m->devs[i].ops->reset)
			m->devs[i].ops->reset(m->devs[i].dev);
	for (int i = 0; i < m->ncpu; i++) {
		m->accel->reset(m->vcpu[i].accel_vcpu);
		m->vcpu[i].intr = false;
		m->vcpu[i].kicked = false;
	}
	if (machine_boot(m) < 0) {
		log_msg(LOG_ERROR, "reset: %s", err_msg());
		hw_request_exit(m, HW_STOP_ERROR, 1);
	}
	m->request = HW_REQ_NONE;
	pthread_cond_broadcast(&m->state_cond);
}

enum hw_stop machine_run(struct machine *m, int *status)
{
	int started = 0, r = 0;

	if (hw_timers_start(m) < 0) {
		*status = 1;
		return HW_STOP_ERROR;
	}
	for (; started < m->ncpu; started++) {
		r = pthread_create(&m->vcpu[started].thread, NULL, vcpu_thread, &m->vcpu[started]);
		if (r)
			break;
	}
	pthread_mutex_lock(&m->lock);
	if (r) {
		err_set_errno(r, "cannot start vCPU thread");
		hw_request_exit(m, HW_STOP_ERROR, 1);
	}
	while (!m->stopping) {
		if (m->request == HW_REQ_RESET)
			do_reset(m);
		else
			pthread_cond_wait(&m->state_cond, &m->lock);
	}
	pthread_cond_broadcast(&m->state_cond);
	for (int i = 0; i < m->ncpu; i++)
		hw_cpu_kick(m, i);
	pthread_mutex_unlock(&m->lock);
	for (int i = 0; i < started; i++)
		pthread_join(m->vcpu[i].thread, NULL);
	hw_timers_stop(m);
	*status = m->exit_status;
	if (m->stop_reason == HW_STOP_ERROR && m->error)
		err_set(-EIO, "%s", m->error);
	return m->stop_reason;
}
