/* deadline.h - absolute deadlines for pthread_cond_timedwait (deadline.c). Thread-safe. */
#ifndef RSSP_GW_DEADLINE_H
#define RSSP_GW_DEADLINE_H

#include <time.h>

/* Sets *out to the time on clock clk (the clock the condition variable waits on:
 * CLOCK_REALTIME by default, CLOCK_MONOTONIC when set with pthread_condattr_setclock)
 * ms milliseconds from now, tv_nsec normalised to [0, 1e9). */
void gw_deadline_after_ms(clockid_t clk, unsigned ms, struct timespec *out);

#endif
