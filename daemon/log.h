/* log.h: one line per event of note on stderr, with the sd-daemon priority
 * prefix (<3> err ... <7> debug) so journald files each line at its level.
 *
 * Rule for every caller: never pass a child's name, date of birth, address or
 * any other personal data. Sequence numbers, source ids, force and LA codes
 * are the vocabulary of log lines.
 *
 * Whatever the arguments hold, a line is one line: control characters (C0,
 * DEL, C1), bidi controls and U+2028/U+2029 become "?" (log.c), so a value
 * from the feed can neither forge a second line nor reach a terminal raw.
 */
#ifndef YJ_LOG_H
#define YJ_LOG_H

enum yj_log_level {
	YJ_LOG_ERR = 3,
	YJ_LOG_WARNING = 4,
	YJ_LOG_NOTICE = 5,
	YJ_LOG_INFO = 6,
	YJ_LOG_DEBUG = 7,
};

/* Lines above this level are dropped. Default YJ_LOG_INFO. */
void yj_log_set_level(enum yj_log_level level);

/* Prefix each line with an ISO time (for runs outside journald). Default off. */
void yj_log_set_timestamps(int on);

/* In a child just forked from a threaded process: write each line with
 * write(2), not stdio, whose lock another thread of the parent may have held
 * at the fork (it would stay locked in the child for ever). */
void yj_log_after_fork(void);

void yj_log(enum yj_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define yj_err(...) yj_log(YJ_LOG_ERR, __VA_ARGS__)
#define yj_warn(...) yj_log(YJ_LOG_WARNING, __VA_ARGS__)
#define yj_notice(...) yj_log(YJ_LOG_NOTICE, __VA_ARGS__)
#define yj_info(...) yj_log(YJ_LOG_INFO, __VA_ARGS__)
#define yj_debug(...) yj_log(YJ_LOG_DEBUG, __VA_ARGS__)

#endif
