/* clock.c: see clock.h. */
#include "clock.h"

#include <time.h>

static int64_t s_offset_us;

static int64_t s_real_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t yj_clock_now_us(void) { return s_real_us() + s_offset_us; }
void yj_clock_set_us(int64_t now_us) { s_offset_us = now_us - s_real_us(); }
void yj_clock_reset(void) { s_offset_us = 0; }
