/* tz.h: UTC and local (TZ, Europe/London in the daemon) broken-down time
 * without the C library's time-zone lock.
 *
 * Why not localtime_r, gmtime_r and mktime: glibc guards its zone state with
 * one process-wide lock that all three take. The digest and board-report
 * helpers are forked from a daemon with threads (the email workers, whose
 * logging and OpenSSL certificate checks call gmtime_r; the ingest parser;
 * libmicrohttpd's Date header), and a thread inside one of them at the fork
 * leaves the lock held in the child for ever: the child's first localtime_r
 * then waits until the 300 s limit kills it (test_digest's year, one digest
 * in 731 dead-lettered; test_month's digests left waiting).
 *
 * So the zone's offsets are read from the C library once, into a table of
 * transitions (yj_tz_init, called by main() after tzset() and before any
 * thread starts; the first call of any function here does it otherwise), and
 * everything else is arithmetic on that table: no lock, safe in a forked
 * child, and cheaper than the library's calls.
 *
 * The table spans 1900 to 2100; an instant outside takes the offset at the
 * nearer end. Every function is safe to call from any thread once the table
 * is built.
 */
#ifndef YJ_TZ_H
#define YJ_TZ_H

#include <stdint.h>
#include <time.h>

/* Build the table from the C library's zone (TZ as set now). Idempotent:
 * the first call builds, later calls return at once. Returns 0. */
int yj_tz_init(void);

/* The zone's offset, seconds east of UTC, at UTC second t. */
long yj_tz_offset(int64_t t);

/* gmtime_r, by arithmetic: every field of tm, tm_zone "GMT". */
void yj_tz_utc(int64_t t, struct tm *tm);

/* localtime_r, by arithmetic on the table: every field, tm_isdst, tm_gmtoff
 * and tm_zone (a string of this module's, valid for the process). */
void yj_tz_local(int64_t t, struct tm *tm);

/* mktime with tm_isdst = -1 (tm_isdst is not read): the UTC second of local
 * wall time tm, out-of-range fields carried the way mktime carries them, and
 * tm rewritten as yj_tz_local of the answer. A wall time in a gap reads with
 * the offset before it (01:30 on the spring day is 02:30 BST); one that
 * happens twice is the later, standard-time one; as glibc's mktime does. */
int64_t yj_tz_mktime(struct tm *tm);

/* The UTC second of local date (y, m, d) at hh:mm, the way yj_tz_mktime
 * reads it; m and d may run over (d = 32 is the next month's 1st). */
int64_t yj_tz_instant(int y, int m, int d, int hh, int mm);

#endif
