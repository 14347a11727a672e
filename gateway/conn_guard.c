/* conn_guard.c - a whole-request deadline (conn_guard.h). */
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "conn_guard.h"
#include "deadline.h"
#include "rssp_log.h"

struct cstate {
	struct cstate *prev, *next;
	int fd;
	int busy;
	int cut;
	double since;          /* monotonic seconds: waiting for a request since */
};

struct gw_conn_guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int stop;
	double deadline;
	struct cstate *head;
	unsigned long cut;
};

static double
mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *
guard_main(void *arg)
{
	struct gw_conn_guard *g = arg;
	struct timespec until;
	struct cstate *c;
	double now;

	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		gw_deadline_after_ms(CLOCK_MONOTONIC, 1000, &until);
		(void)pthread_cond_timedwait(&g->cv, &g->mu, &until);
		now = mono();
		for (c = g->head; c != NULL; c = c->next)
			if (!c->busy && !c->cut && now - c->since > g->deadline) {
				/* MHD sees the end of the stream and closes the connection itself;
				 * the fd stays open (and ours) until MHD's CLOSED notice, which takes
				 * this lock */
				(void)shutdown(c->fd, SHUT_RDWR);
				c->cut = 1;
				g->cut++;
				log_info("connection cut: no whole request within %.0f s", g->deadline);
			}
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

int
gw_conn_guard_start(unsigned deadline_seconds, struct gw_conn_guard **gp)
{
	struct gw_conn_guard *g;
	pthread_condattr_t ca;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return RSSP_E_NOMEM;
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	g->deadline = (double)deadline_seconds;
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
		free(g);
		return RSSP_E_NOMEM;
	}
	*gp = g;
	return 0;
}

void
gw_conn_guard_stop(struct gw_conn_guard *g)
{
	struct cstate *c, *next;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	for (c = g->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

void
gw_conn_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct gw_conn_guard *g = cls;
	struct cstate *c;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci == NULL || (c = calloc(1, sizeof(*c))) == NULL)
			return; /* unguarded: the idle timeout still applies */
		c->fd = ci->connect_fd;
		c->since = mono();
		pthread_mutex_lock(&g->mu);
		c->next = g->head;
		if (g->head != NULL)
			g->head->prev = c;
		g->head = c;
		pthread_mutex_unlock(&g->mu);
		*socket_context = c;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && (c = *socket_context) != NULL) {
		pthread_mutex_lock(&g->mu);
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			g->head = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		pthread_mutex_unlock(&g->mu);
		free(c);
		*socket_context = NULL;
	}
}

void
gw_conn_guard_busy(struct gw_conn_guard *g, struct MHD_Connection *conn, int busy)
{
	const union MHD_ConnectionInfo *ci;
	struct cstate *c;

	if (g == NULL)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (c = ci->socket_context) == NULL)
		return;
	pthread_mutex_lock(&g->mu);
	c->busy = busy;
	if (!busy)
		c->since = mono();
	pthread_mutex_unlock(&g->mu);
}

unsigned long
gw_conn_guard_cut(struct gw_conn_guard *g)
{
	unsigned long n;

	pthread_mutex_lock(&g->mu);
	n = g->cut;
	pthread_mutex_unlock(&g->mu);
	return n;
}
