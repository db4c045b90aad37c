/* sd.c: see sd.h. */
#include "sd.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

void yj_sd_ready(const char *status) { sd_notifyf(0, "READY=1\nSTATUS=%s", status); }
void yj_sd_status(const char *status) { sd_notifyf(0, "STATUS=%s", status); }

void yj_sd_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* systemd's Type=notify-reload wants the monotonic time with RELOADING=1. */
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

void yj_sd_stopping(void) { sd_notify(0, "STOPPING=1"); }
void yj_sd_watchdog(void) { sd_notify(0, "WATCHDOG=1"); }

uint64_t yj_sd_watchdog_usec(void)
{
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}
