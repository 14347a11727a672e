/* rssp_log.h - diagnostic log lines (stderr, JSON lines). Not the engine's audit log.
 * The level is checked before the arguments are evaluated. Bound attacker-supplied
 * strings with %.100s. Never pass a PIN, passphrase, token, code or SAD. */
#ifndef RSSP_LOG_H
#define RSSP_LOG_H

enum rssp_log_level { RSSP_LOG_ERROR = 0, RSSP_LOG_WARN, RSSP_LOG_INFO, RSSP_LOG_DEBUG };

extern int rssp_log_threshold; /* default RSSP_LOG_INFO */

/* Sets the process name written in every line ("engine", "gateway"). */
void rssp_log_init(const char *component, int threshold);
/* The request id of the calling thread, or NULL; copied (at most 128 chars). */
void rssp_log_set_request_id(const char *rid);

void rssp_log_write(int level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RSSP_LOG(lvl, ...) do { \
	if ((lvl) <= rssp_log_threshold) rssp_log_write((lvl), __func__, __VA_ARGS__); \
} while (0)
#define log_error(...) RSSP_LOG(RSSP_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  RSSP_LOG(RSSP_LOG_WARN, __VA_ARGS__)
#define log_info(...)  RSSP_LOG(RSSP_LOG_INFO, __VA_ARGS__)
#define log_debug(...) RSSP_LOG(RSSP_LOG_DEBUG, __VA_ARGS__)

#endif
