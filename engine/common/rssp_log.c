#include "rssp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int rssp_log_threshold = RSSP_LOG_INFO;
static const char *log_component = "rssp";
static __thread char log_rid[129];

void
rssp_log_init(const char *component, int threshold)
{
	log_component = component;
	rssp_log_threshold = threshold;
}

void
rssp_log_set_request_id(const char *rid)
{
	if (rid == NULL) {
		log_rid[0] = '\0';
		return;
	}
	snprintf(log_rid, sizeof(log_rid), "%s", rid);
}

/* Writes s as a JSON string body (without quotes), escaping what JSON requires. */
static void
json_escape(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

void
rssp_log_write(int level, const char *func, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	char msg[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

	flockfile(stderr);
	fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"func\":\"",
	    ts, now.tv_nsec / 1000000L, names[level < 0 || level > 3 ? 0 : level], log_component);
	json_escape(stderr, func);
	fputs("\",\"request_id\":\"", stderr);
	json_escape(stderr, log_rid);
	fputs("\",\"msg\":\"", stderr);
	json_escape(stderr, msg);
	fputs("\"}\n", stderr);
	funlockfile(stderr);
}
