/* clock.h: the daemon's wall clock, injectable for tests.
 *
 * Everything that depends on the date (occurred_at in the future, ages,
 * digest windows, L&D opening hours) asks yj_clock_now_us(), never time().
 * Tests move the clock with `yjlinkctl clock set` when the config says
 * testing.clock_control = true; production never moves it.
 */
#ifndef YJ_CLOCK_H
#define YJ_CLOCK_H

#include <stdint.h>

/* Microseconds since the epoch, UTC, plus the injected offset. */
int64_t yj_clock_now_us(void);

/* Make yj_clock_now_us() return `now_us` at this instant (time then flows on). */
void yj_clock_set_us(int64_t now_us);

/* Back to the real clock. */
void yj_clock_reset(void);

#endif
