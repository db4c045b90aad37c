/* sd.h: everything yjlinkd says to systemd, in one place (after Knot's
 * common/systemd.c). All calls are no-ops outside systemd (no NOTIFY_SOCKET).
 */
#ifndef YJ_SD_H
#define YJ_SD_H

#include <stdint.h>

/* READY=1 with a STATUS= line. */
void yj_sd_ready(const char *status);
/* STATUS= only. */
void yj_sd_status(const char *status);
/* RELOADING=1 with MONOTONIC_USEC, before a reload is tried. */
void yj_sd_reloading(void);
/* STOPPING=1. */
void yj_sd_stopping(void);
/* WATCHDOG=1. */
void yj_sd_watchdog(void);
/* The watchdog period systemd asked for, in microseconds; 0 when off. */
uint64_t yj_sd_watchdog_usec(void);

#endif
