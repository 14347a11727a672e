/* metrics.c - counters and histograms rendered as Prometheus text at GET /metrics.
 * Labels are static strings (route paths from the tables, fixed names), never input. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "gw.h"
#include "metrics.h"
#include "gw_internal.h"

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB (sizeof(buckets) / sizeof(buckets[0]))

struct hist {
	unsigned long long b[NB];
	unsigned long long count;
	double sum;
};

/* A counter by (label, status) and a latency histogram by label, rendered under the
 * names and HELP texts it carries: HTTP requests by route, engine calls by method. */
struct status_count { const char *label; int status; unsigned long long n; };
struct label_hist { const char *label; struct hist h; };
struct timed_series {
	const char *label;                     /* the label's name: "route", "method" */
	const char *total, *total_help;        /* the counter */
	const char *duration, *duration_help;  /* the histogram */
	struct status_count *counts;
	unsigned n_counts, max_counts;
	struct label_hist *hists;
	unsigned n_hists, max_hists;
};

#define MAX_REQ 256
#define MAX_ENGINE 32
#define MAX_ENGINE_METHODS 8
#define MAX_ALGOS 32
struct sig_count { char algo[48]; unsigned long long n; };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct status_count req_counts[MAX_REQ], engine_counts[MAX_ENGINE];
static struct label_hist req_hists[MAX_REQ], engine_hists[MAX_ENGINE_METHODS];
static struct timed_series http = {"route",
	"rssp_http_requests_total", "HTTP requests by route and status.",
	"rssp_http_request_duration_seconds", "HTTP request latency by route.",
	req_counts, 0, MAX_REQ, req_hists, 0, MAX_REQ};
static struct timed_series engine = {"method",
	"rssp_engine_calls_total", "Engine calls by method and gRPC status (-1: unreachable).",
	"rssp_engine_call_duration_seconds", "Engine call latency by method.",
	engine_counts, 0, MAX_ENGINE, engine_hists, 0, MAX_ENGINE_METHODS};
static struct sig_count sigs[MAX_ALGOS + 1];
static unsigned n_sigs;
static unsigned long long sig_other;
struct login_count { const char *method, *result; unsigned long long n; };
static struct login_count logins[64];
static unsigned n_logins;

void
gw_metrics_login(const char *method, const char *result)
{
	unsigned i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < n_logins; i++)
		if (strcmp(logins[i].method, method) == 0 && strcmp(logins[i].result, result) == 0)
			break;
	if (i == n_logins && n_logins < 64) {
		logins[i].method = method;
		logins[i].result = result;
		n_logins++;
	}
	if (i < n_logins)
		logins[i].n++;
	pthread_mutex_unlock(&mu);
}

int
gw_metrics_init(void)
{
	return 0;
}

static void
hist_add(struct hist *h, double s)
{
	size_t i;

	for (i = 0; i < NB; i++)
		if (s <= buckets[i])
			h->b[i]++;
	h->count++;
	h->sum += s;
}

/* Labels are static strings: the same pointer, or (a label spelled twice) the same text. */
static int
same_label(const char *a, const char *b)
{
	return a == b || strcmp(a, b) == 0;
}

/* Counts one event (label, status) and adds its duration to the label's histogram; a new
 * label or pair past the series' capacity is not recorded. Called with mu held. */
static void
series_add(struct timed_series *s, const char *label, int status, double seconds)
{
	unsigned i;

	for (i = 0; i < s->n_counts; i++)
		if (same_label(s->counts[i].label, label) && s->counts[i].status == status)
			break;
	if (i == s->n_counts && s->n_counts < s->max_counts) {
		s->counts[i].label = label;
		s->counts[i].status = status;
		s->n_counts++;
	}
	if (i < s->n_counts)
		s->counts[i].n++;
	for (i = 0; i < s->n_hists; i++)
		if (same_label(s->hists[i].label, label))
			break;
	if (i == s->n_hists && s->n_hists < s->max_hists)
		s->hists[s->n_hists++].label = label;
	if (i < s->n_hists)
		hist_add(&s->hists[i].h, seconds);
}

void
gw_metrics_request(const char *route, int status, double seconds)
{
	pthread_mutex_lock(&mu);
	series_add(&http, route, status, seconds);
	pthread_mutex_unlock(&mu);
}

void
gw_metrics_engine_call(const char *method, int grpc_status, double seconds)
{
	pthread_mutex_lock(&mu);
	series_add(&engine, method, grpc_status, seconds);
	pthread_mutex_unlock(&mu);
}

void
gw_metrics_signatures(const char *algo, unsigned n)
{
	unsigned i;

	pthread_mutex_lock(&mu);
	for (i = 0; i < n_sigs; i++)
		if (strcmp(sigs[i].algo, algo) == 0)
			break;
	if (i == n_sigs && n_sigs < MAX_ALGOS && strlen(algo) < sizeof(sigs[0].algo)) {
		snprintf(sigs[i].algo, sizeof(sigs[i].algo), "%s", algo);
		n_sigs++;
	}
	if (i < n_sigs)
		sigs[i].n += n;
	else
		sig_other += n;
	pthread_mutex_unlock(&mu);
}

/* printf onto the shared growable buffer (engine/common/buf.h); a failure is sticky. */
static void __attribute__((format(printf, 2, 3)))
sb_printf(struct rssp_buf *b, const char *fmt, ...)
{
	va_list ap;
	char line[512], *big;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = RSSP_E_NOMEM;
		return;
	}
	if ((size_t)n < sizeof(line)) {
		rssp_buf_put(b, line, (size_t)n);
		return;
	}
	if ((big = malloc((size_t)n + 1)) == NULL) {
		b->err = RSSP_E_NOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rssp_buf_put(b, big, (size_t)n);
	free(big);
}

/* Label values are static strings, but escape anyway: \ " and newline. */
static const char *
esc(const char *s, char *buf, size_t n)
{
	size_t j = 0;

	for (; *s && j + 2 < n; s++) {
		if (*s == '\\' || *s == '"') {
			buf[j++] = '\\';
			buf[j++] = *s;
		} else if (*s == '\n') {
			buf[j++] = '\\';
			buf[j++] = 'n';
		} else {
			buf[j++] = *s;
		}
	}
	buf[j] = '\0';
	return buf;
}

static void
hist_render(struct rssp_buf *b, const char *name, const char *label, const char *value, const struct hist *h)
{
	char e[256];
	size_t i;

	esc(value, e, sizeof(e));
	for (i = 0; i < NB; i++)
		sb_printf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, e, buckets[i], h->b[i]);
	sb_printf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, e, h->count);
	sb_printf(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, e, h->sum);
	sb_printf(b, "%s_count{%s=\"%s\"} %llu\n", name, label, e, h->count);
}

/* The series' counter, then its histogram. Called with mu held. */
static void
series_render(struct rssp_buf *b, const struct timed_series *s)
{
	char e[256];
	unsigned i;

	sb_printf(b, "# HELP %s %s\n# TYPE %s counter\n", s->total, s->total_help, s->total);
	for (i = 0; i < s->n_counts; i++)
		sb_printf(b, "%s{%s=\"%s\",status=\"%d\"} %llu\n", s->total, s->label,
		    esc(s->counts[i].label, e, sizeof(e)), s->counts[i].status, s->counts[i].n);
	sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", s->duration, s->duration_help, s->duration);
	for (i = 0; i < s->n_hists; i++)
		hist_render(b, s->duration, s->label, s->hists[i].label, &s->hists[i].h);
}

char *
gw_metrics_render(unsigned db_in_use, unsigned db_size)
{
	struct rssp_buf b = RSSP_BUF_INIT;
	char e[256];
	uint8_t *out;
	size_t len;
	unsigned i;

	pthread_mutex_lock(&mu);
	series_render(&b, &http);
	series_render(&b, &engine);
	sb_printf(&b, "# HELP rssp_signatures_total Signatures made, by algorithm.\n"
	    "# TYPE rssp_signatures_total counter\n");
	for (i = 0; i < n_sigs; i++)
		sb_printf(&b, "rssp_signatures_total{algo=\"%s\"} %llu\n", esc(sigs[i].algo, e, sizeof(e)), sigs[i].n);
	if (sig_other)
		sb_printf(&b, "rssp_signatures_total{algo=\"other\"} %llu\n", sig_other);
	sb_printf(&b, "# HELP rssp_logins_total Login attempts by method and result.\n"
	    "# TYPE rssp_logins_total counter\n");
	for (i = 0; i < n_logins; i++)
		sb_printf(&b, "rssp_logins_total{method=\"%s\",result=\"%s\"} %llu\n",
		    logins[i].method, logins[i].result, logins[i].n);
	pthread_mutex_unlock(&mu);
	sb_printf(&b, "# HELP rssp_db_pool_in_use Database connections borrowed.\n"
	    "# TYPE rssp_db_pool_in_use gauge\nrssp_db_pool_in_use %u\n", db_in_use);
	sb_printf(&b, "# HELP rssp_db_pool_size Database pool size.\n"
	    "# TYPE rssp_db_pool_size gauge\nrssp_db_pool_size %u\n", db_size);
	rssp_buf_putc(&b, '\0');
	if (rssp_buf_take(&b, &out, &len) != 0)
		return NULL;
	return (char *)out;
}
