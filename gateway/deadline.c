/* deadline.c - absolute deadlines for timed waits (deadline.h). */
#include "deadline.h"

void
gw_deadline_after_ms(clockid_t clk, unsigned ms, struct timespec *out)
{
	clock_gettime(clk, out);
	out->tv_sec += ms / 1000;
	out->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}
