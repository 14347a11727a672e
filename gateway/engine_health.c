/* engine_health.c - the engine's circuit breaker and probe (engine_health.h). */
#include "engine_health.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "rssp_log.h"

#include "engine_client.h"

#define AUDIT_HOLD_MS 3000

enum { EH_UNKNOWN, EH_UP, EH_DOWN };

struct engine_health {
	struct engine_client *probe;  /* owned */
	char *socket_path;            /* owned */
	unsigned probe_timeout_ms;
	struct engine_client *calls;  /* borrowed */
	struct engine_client *keygen; /* borrowed */
	unsigned probe_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop, wake;
	atomic_int state;
	atomic_llong last_answer_ms;  /* CLOCK_MONOTONIC ms of the engine's last answer */
	atomic_llong audit_down_ms;   /* when it last answered "audit log unavailable"; 0: not */
};

static struct engine_health *eh;  /* the one instance; set before the server starts */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
wake_probe(struct engine_health *h)
{
	pthread_mutex_lock(&h->mu);
	h->wake = 1;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void
set_down(struct engine_health *h, const char *why)
{
	if (atomic_exchange(&h->state, EH_DOWN) != EH_DOWN) {
		log_warn("engine down: %s; refusing calls that need it until it answers", why);
		/* calls in flight would each wait out their deadline on HTTP threads */
		engine_client_cancel_all(h->calls);
		engine_client_cancel_all(h->keygen);
	}
}

static void
set_up(struct engine_health *h)
{
	atomic_store(&h->last_answer_ms, now_ms());
	if (atomic_exchange(&h->state, EH_UP) == EH_DOWN)
		log_info("engine answers again");
}

void
engine_health_note(const struct engine_result *er)
{
	struct engine_health *h = eh;

	if (h == NULL || er == NULL)
		return;
	if (er->answered) {
		set_up(h);
		if (er->status == ENGINE_OK)
			atomic_store(&h->audit_down_ms, 0);
		else if (strcmp(er->message, ENGINE_HEALTH_AUDIT_MSG) == 0)
			atomic_store(&h->audit_down_ms, now_ms());
	} else if (er->status == ENGINE_UNAVAILABLE) {
		set_down(h, "no connection");
		wake_probe(h);
	} else if (er->status == ENGINE_TIMEOUT) {
		wake_probe(h); /* the probe decides: slow call or hung engine */
	}
}

int
engine_health_admit(void)
{
	struct engine_health *h = eh;

	return h != NULL && atomic_load(&h->state) == EH_DOWN ? RSSP_E_UNAVAILABLE : 0;
}

int
engine_health_audit_down(void)
{
	struct engine_health *h = eh;
	long long t;

	if (h == NULL || (t = atomic_load(&h->audit_down_ms)) == 0)
		return 0;
	return now_ms() - t < AUDIT_HOLD_MS;
}

int
engine_health_ready(const char **codep, const char **whyp)
{
	struct engine_health *h = eh;

	if (h == NULL)
		return 0;
	if (atomic_load(&h->state) != EH_UP) {
		*codep = "engine_unavailable";
		*whyp = atomic_load(&h->state) == EH_DOWN ? "the signing engine is not answering" :
		    "the signing engine has not answered yet";
		return RSSP_E_UNAVAILABLE;
	}
	if (engine_health_audit_down()) {
		*codep = "audit_unavailable";
		*whyp = "the signing engine cannot write its audit log";
		return RSSP_E_UNAVAILABLE;
	}
	return 0;
}

static void
probe_once(struct engine_health *h)
{
	uint8_t *resp = NULL;
	size_t resplen = 0;
	char *msg = NULL;
	struct engine_client *fresh = NULL;
	int status = -1, r, was_up = atomic_load(&h->state) == EH_UP;

	/* not up: a fresh channel for each probe, so that it tries to connect now instead
	 * of failing at once while the old one waits out its reconnection backoff */
	if (!was_up && engine_client_new(h->socket_path, h->probe_timeout_ms, &fresh) == 0) {
		engine_client_free(h->probe);
		h->probe = fresh;
	}
	r = engine_call_path(h->probe, ENGINE_HEALTH_PROBE_METHOD, "engine-health-probe",
	    (const uint8_t *)"", 0, &resp, &resplen, &status, &msg);
	free(resp);
	free(msg);
	log_debug("probe: %s, status %d", rssp_strerror(r), status);
	if (r == 0 && !was_up) {
		/* back: the call channels connect now, not after their backoff, so the first
		 * calls admitted do not find them still failing */
		engine_client_reconnect(h->calls);
		engine_client_reconnect(h->keygen);
		if ((h->calls != NULL && engine_client_ready(h->calls, h->probe_ms) < 0) ||
		    (h->keygen != NULL && engine_client_ready(h->keygen, h->probe_ms) < 0))
			return;
	}
	if (r == 0)
		set_up(h);
	else if (r == RSSP_E_UNAVAILABLE || r == RSSP_E_TIMEOUT)
		set_down(h, r == RSSP_E_TIMEOUT ? "the probe went unanswered" : "no connection");
}

static void *
probe_main(void *arg)
{
	struct engine_health *h = arg;
	struct timespec ts;
	long long idle;

	for (;;) {
		pthread_mutex_lock(&h->mu);
		if (!h->stop && !h->wake) {
			unsigned tick = h->probe_ms / 4; /* a hung engine is seen within 2.75 periods */
			gw_deadline_after_ms(CLOCK_REALTIME, tick, &ts);
			while (!h->stop && !h->wake &&
			    pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
				;
		}
		h->wake = 0;
		if (h->stop) {
			pthread_mutex_unlock(&h->mu);
			return NULL;
		}
		pthread_mutex_unlock(&h->mu);
		idle = now_ms() - atomic_load(&h->last_answer_ms);
		/* a recent answer to a call proves as much as a probe would */
		if (atomic_load(&h->state) != EH_UP || idle >= (long long)h->probe_ms)
			probe_once(h);
	}
}

/* Frees an instance whose probe thread is not running (never started, or joined). */
static void
health_free(struct engine_health *h)
{
	engine_client_free(h->probe);
	free(h->socket_path);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

int
engine_health_start(const char *socket_path, unsigned probe_ms, unsigned probe_timeout_ms,
    struct engine_client *calls, struct engine_client *keygen)
{
	struct engine_health *h = NULL;
	int r = RSSP_E_INVAL;

	if (eh != NULL || socket_path == NULL || probe_ms == 0 || probe_timeout_ms == 0)
		return r;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return RSSP_E_NOMEM;
	if ((r = engine_client_new(socket_path, probe_timeout_ms, &h->probe)) < 0) {
		free(h);
		return r;
	}
	if ((h->socket_path = strdup(socket_path)) == NULL) {
		engine_client_free(h->probe);
		free(h);
		return RSSP_E_NOMEM;
	}
	h->probe_timeout_ms = probe_timeout_ms;
	h->calls = calls;
	h->keygen = keygen;
	h->probe_ms = probe_ms;
	atomic_init(&h->state, EH_UNKNOWN);
	atomic_init(&h->last_answer_ms, 0);
	atomic_init(&h->audit_down_ms, 0);
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->wake = 1; /* probe at once */
	eh = h;
	if (pthread_create(&h->thread, NULL, probe_main, h) != 0) {
		eh = NULL;
		health_free(h);
		return RSSP_E_NOMEM;
	}
	return 0;
}

void
engine_health_stop(void)
{
	struct engine_health *h = eh;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = 1;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	eh = NULL;
	health_free(h);
}
