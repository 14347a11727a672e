/* loadcap.c - login and long-poll admission limits (loadcap.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "loadcap.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned login_max = 16, logins;
static unsigned waits_per_client = 8, waits_max = 32, waits;

/* Waits per client: a short list, one entry per client that waits now (at most
 * waits_max entries, removed at zero). */
struct waiter {
	struct waiter *next;
	unsigned n;
	char id[GW_UUID_LEN + 1];
};
static struct waiter *waiters;

void
gw_loadcap_init(const struct gw_config *cfg)
{
	pthread_mutex_lock(&mu);
	login_max = cfg->login_queue;
	waits_per_client = cfg->waits_per_client;
	waits_max = cfg->waits_total ? cfg->waits_total :
	    (cfg->long_threads / 2 ? cfg->long_threads / 2 : 1);
	pthread_mutex_unlock(&mu);
}

int
gw_login_admit(void)
{
	int r = 0;

	pthread_mutex_lock(&mu);
	if (logins >= login_max)
		r = RSSP_E_EXHAUSTED;
	else
		logins++;
	pthread_mutex_unlock(&mu);
	return r;
}

void
gw_login_leave(void)
{
	pthread_mutex_lock(&mu);
	if (logins > 0)
		logins--;
	pthread_mutex_unlock(&mu);
}

int
gw_wait_admit(const char *client)
{
	struct waiter *w;
	int r = 0;

	pthread_mutex_lock(&mu);
	for (w = waiters; w != NULL; w = w->next)
		if (strcmp(w->id, client) == 0)
			break;
	if (w != NULL && w->n >= waits_per_client) {
		r = RSSP_E_EXHAUSTED;
	} else if (waits >= waits_max) {
		r = RSSP_E_UNAVAILABLE;
	} else {
		if (w == NULL) {
			if ((w = calloc(1, sizeof(*w))) == NULL) {
				r = RSSP_E_UNAVAILABLE;
				goto out;
			}
			strncpy(w->id, client, GW_UUID_LEN);
			w->next = waiters;
			waiters = w;
		}
		w->n++;
		waits++;
	}
out:
	pthread_mutex_unlock(&mu);
	return r;
}

void
gw_wait_leave(const char *client)
{
	struct waiter **pp, *w;

	pthread_mutex_lock(&mu);
	for (pp = &waiters; (w = *pp) != NULL; pp = &w->next)
		if (strcmp(w->id, client) == 0) {
			if (waits > 0)
				waits--;
			if (--w->n == 0) {
				*pp = w->next;
				free(w);
			}
			break;
		}
	pthread_mutex_unlock(&mu);
}

unsigned
gw_loadcap_waits_per_client(void)
{
	unsigned n;

	pthread_mutex_lock(&mu);
	n = waits_per_client;
	pthread_mutex_unlock(&mu);
	return n;
}
