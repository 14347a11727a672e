/* engine_health.h - what the gateway knows about the engine's health: a circuit breaker
 * fed by a probe thread and by the outcome of every engine call.
 *
 * The probe is an unknown-method call ("/rssp.engine.v1.Engine/LivenessProbe") on a
 * channel of its own with a short deadline: any answer carrying the engine's metadata
 * (it must be UNIMPLEMENTED) proves the engine's RPC loop answers. It runs only while no
 * engine call has been answered for RSSP_ENGINE_PROBE_MS (default 500 ms), so a busy
 * service is not probed at all; an idle one costs one probe per period (the engine
 * counts probes into one `engine.probes` audit line an hour, PROTOCOL.md).
 *
 * States: UP (or not probed yet) - calls go through. DOWN (a probe went unanswered within
 * its deadline, or a call found no connection) - calls that need the engine are refused
 * at once with 503 engine_unavailable, every call in flight is cut short (they end as
 * "the engine may have acted": no refund), /readyz says 503; the probe then runs every
 * quarter period, on a fresh channel each time, until the engine answers again (and the
 * call channel is connected). AUDIT DOWN - the engine answered a call
 * "audit log unavailable" (nothing released, nothing spent): /readyz says 503
 * audit_unavailable until a call succeeds or 3 s pass without another such answer; calls still go through (the engine refuses them cheaply, and the first that
 * succeeds proves the log writable again).
 *
 * One instance per process (engine_health_start); every function is thread-safe and a
 * no-op (or "up") when none was started. */
#ifndef RSSP_GW_ENGINE_HEALTH_H
#define RSSP_GW_ENGINE_HEALTH_H

#include "rssp_err.h"

struct engine_client;
struct engine_result;

#define ENGINE_HEALTH_PROBE_METHOD "/rssp.engine.v1.Engine/LivenessProbe"
#define ENGINE_HEALTH_AUDIT_MSG "audit log unavailable" /* PROTOCOL.md section 2 */

/* Starts the probe thread for the engine at socket_path (a probe client of its own with
 * a deadline of probe_timeout_ms), probing every probe_ms while idle or down. calls and
 * keygen (either may be NULL) are the clients whose calls in flight are cut short when
 * the engine is found down (borrowed: stop the probe before freeing them). Returns 0,
 * RSSP_E_INVAL (already started, bad argument), RSSP_E_NOMEM. */
int engine_health_start(const char *socket_path, unsigned probe_ms, unsigned probe_timeout_ms,
    struct engine_client *calls, struct engine_client *keygen) RSSP_WUR;
/* Stops the probe thread and frees it; afterwards everything reports "up". */
void engine_health_stop(void);

/* 0 when a call needing the engine may be made, RSSP_E_UNAVAILABLE when the engine is
 * known not to answer (refuse with 503 engine_unavailable without calling it). */
int engine_health_admit(void);

/* Records the outcome of one typed engine call (engine_client.h). */
void engine_health_note(const struct engine_result *er);

/* 1 when the engine's last answer to a call (within AUDIT_HOLD_MS) was "audit log
 * unavailable". */
int engine_health_audit_down(void);

/* Readiness as far as the engine goes: 0 when ready; else RSSP_E_UNAVAILABLE and
 * *codep the error code for the reply ("engine_unavailable" | "audit_unavailable"),
 * *whyp a static description. */
int engine_health_ready(const char **codep, const char **whyp) RSSP_WUR;

#endif
