/* log.c: see log.h. */
#include "log.h"
#include "tz.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum yj_log_level s_level = YJ_LOG_INFO;
static int s_timestamps;
static int s_forked;      /* yj_log_after_fork() was called */

void yj_log_set_level(enum yj_log_level level) { s_level = level; }
void yj_log_set_timestamps(int on) { s_timestamps = on; }

/* Bytes at p that a log line must not carry raw (0 when none): a C0
 * control or DEL (1 byte), a C1 control in UTF-8 (2), a bidi control
 * (U+061C, U+200E/F, U+202A-E, U+2066-9) or U+2028/9 (2 or 3). A CR or LF
 * from an argument would forge a second line in journald; ESC or a C1 CSI
 * would drive the terminal of whoever reads the log; a bidi override would
 * reorder what follows it. */
static size_t s_unsafe_len(const unsigned char *p)
{
	if (*p < 0x20 || *p == 0x7f)
		return 1;
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	if (p[0] == 0xd8 && p[1] == 0x9c)
		return 2;
	if (p[0] == 0xe2 && p[1] == 0x80 &&
	    (p[2] == 0x8e || p[2] == 0x8f || p[2] == 0xa8 || p[2] == 0xa9 || (p[2] >= 0xaa && p[2] <= 0xae)))
		return 3;
	if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
		return 3;
	return 0;
}

/* Replace each unsafe character of s (NUL-terminated, len bytes) by one
 * '?' in place: the line stays one line, shorter or as long as it was. */
static size_t s_sanitise(char *s, size_t len)
{
	size_t in = 0, out = 0;
	while (in < len) {
		size_t n = s_unsafe_len((const unsigned char *)s + in);
		if (n) {
			s[out++] = '?';
			in += n;
		} else {
			s[out++] = s[in++];
		}
	}
	s[out] = '\0';
	return out;
}

void yj_log(enum yj_log_level level, const char *fmt, ...)
{
	char line[1024];
	int n = 0;
	va_list ap;

	if (level > s_level)
		return;
	n = snprintf(line, sizeof(line), "<%d>", (int)level);
	if (s_timestamps) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		/* Not gmtime_r: threads log, and one inside the C library's time
		 * functions at a fork would leave its lock held in the helper. */
		yj_tz_utc((int64_t)ts.tv_sec, &tm);
		n += (int)strftime(line + n, sizeof(line) - (size_t)n, "%Y-%m-%dT%H:%M:%SZ ", &tm);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* Everything after the prefix, format and arguments alike: one event is
	 * one line (a format never means to hold a line break). */
	size_t len = (size_t)n + s_sanitise(line + n, strnlen(line + n, sizeof(line) - 2 - (size_t)n));
	/* One write per line so concurrent writers never interleave mid-line. */
	line[len++] = '\n';
	if (s_forked) {
		ssize_t w = write(STDERR_FILENO, line, len);
		(void)w;
		return;
	}
	fwrite(line, 1, len, stderr);
	fflush(stderr);
}

void yj_log_after_fork(void)
{
	s_forked = 1;
}
