/* test_tz.c: tz.c's lock-free local and UTC time against the C library's
 * localtime_r, gmtime_r and mktime (TZ=Europe/London, as the daemon sets),
 * and a forked child that reads local time while another thread of its
 * parent sits in the library's time functions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tz.h"

#define S_1900 INT64_C(-2208988800)
#define S_2100 INT64_C(4102444800)

static int s_setup(void **state)
{
	(void)state;
	setenv("TZ", "Europe/London", 1);
	tzset();
	return yj_tz_init();
}

static void s_expect_tm(const struct tm *want, const struct tm *got, int64_t t, const char *what)
{
	if (want->tm_year != got->tm_year || want->tm_mon != got->tm_mon || want->tm_mday != got->tm_mday ||
	    want->tm_hour != got->tm_hour || want->tm_min != got->tm_min || want->tm_sec != got->tm_sec ||
	    want->tm_wday != got->tm_wday || want->tm_yday != got->tm_yday || want->tm_isdst != got->tm_isdst ||
	    want->tm_gmtoff != got->tm_gmtoff || strcmp(want->tm_zone, got->tm_zone) != 0)
		fail_msg("%s at %lld: libc %04d-%02d-%02d %02d:%02d:%02d wday %d yday %d dst %d off %ld %s, "
			 "tz.c %04d-%02d-%02d %02d:%02d:%02d wday %d yday %d dst %d off %ld %s",
			 what, (long long)t, want->tm_year + 1900, want->tm_mon + 1, want->tm_mday, want->tm_hour,
			 want->tm_min, want->tm_sec, want->tm_wday, want->tm_yday, want->tm_isdst, want->tm_gmtoff,
			 want->tm_zone, got->tm_year + 1900, got->tm_mon + 1, got->tm_mday, got->tm_hour, got->tm_min,
			 got->tm_sec, got->tm_wday, got->tm_yday, got->tm_isdst, got->tm_gmtoff, got->tm_zone);
}

static void s_check_local(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm want, got;
	localtime_r(&tt, &want);
	yj_tz_local(t, &got);
	s_expect_tm(&want, &got, t, "local");
	assert_int_equal(yj_tz_offset(t), want.tm_gmtoff);
}

/* Every hour of two centuries, and every minute of the two hours either
 * side of each change the hours show. */
static void test_local_matches_libc(void **state)
{
	(void)state;
	long prev = -1;
	size_t changes = 0;
	for (int64_t t = S_1900 + 3600; t < S_2100 - 3600; t += 3600) {
		time_t tt = (time_t)t;
		struct tm want;
		localtime_r(&tt, &want);
		if (yj_tz_offset(t) != want.tm_gmtoff)
			fail_msg("offset at %lld: libc %ld, tz.c %ld", (long long)t, want.tm_gmtoff, yj_tz_offset(t));
		if (prev != -1 && want.tm_gmtoff != prev) {
			changes++;
			for (int64_t u = t - 7200; u < t + 7200; u += 60)
				s_check_local(u);
		}
		prev = want.tm_gmtoff;
	}
	/* Two a year since 1972, and the wartime and 1968-71 ones. */
	assert_true(changes > 250);
	/* Odd steps through every field, before 1970 too. */
	for (int64_t t = S_1900 + 1; t < S_2100; t += 4 * 3600 + 17 * 60 + 13)
		s_check_local(t);
}

static void test_utc_matches_libc(void **state)
{
	(void)state;
	for (int64_t t = S_1900 - 86400 * 400; t < S_2100 + 86400 * 400; t += 5 * 3600 + 59 * 60 + 7) {
		time_t tt = (time_t)t;
		struct tm want, got;
		gmtime_r(&tt, &want);
		yj_tz_utc(t, &got);
		s_expect_tm(&want, &got, t, "utc");
	}
}

/* Local wall time (y, mon, d, h, mi, s) by tz.c's mktime: where the wall
 * time happens once, libc's mktime's answer; where twice (a fold), the
 * later; where never (a gap), the reading with the offset before it. libc's
 * own choice in folds and gaps follows its previous calls, not a rule. */
static void s_check_mktime(int y, int mon, int d, int h, int mi, int s)
{
	struct tm want, got, utc;
	memset(&want, 0, sizeof(want));
	want.tm_year = y - 1900;
	want.tm_mon = mon;
	want.tm_mday = d;
	want.tm_hour = h;
	want.tm_min = mi;
	want.tm_sec = s;
	want.tm_isdst = -1;
	got = want;
	utc = want;
	int64_t wall = (int64_t)timegm(&utc), mt = yj_tz_mktime(&got), expect = 0;
	int readings = 0;
	for (long o = 0; o <= 7200; o += 3600) {
		time_t t = (time_t)(wall - o);
		struct tm l;
		localtime_r(&t, &l);
		if (l.tm_gmtoff == o) {
			readings++;
			if (readings == 1 || wall - o > expect)
				expect = wall - o;
		}
	}
	if (readings == 0) {
		time_t before = (time_t)(wall - 86400);
		struct tm l;
		localtime_r(&before, &l);
		expect = wall - l.tm_gmtoff;
	}
	if (readings == 1)
		expect = (int64_t)mktime(&want);
	if (mt != expect)
		fail_msg("mktime of %04d/%d/%d %d:%d:%d (%d readings): expected %lld, tz.c %lld", y, mon, d, h, mi, s,
			 readings, (long long)expect, (long long)mt);
	time_t tt = (time_t)mt;
	localtime_r(&tt, &want);
	s_expect_tm(&want, &got, mt, "mktime");
}

/* Every day since 1970 at the hours a change can touch, gaps and folds
 * among them, and fields out of range the way the digest's day arithmetic
 * gives them. */
static void test_mktime_matches_libc(void **state)
{
	(void)state;
	static const int hm[][2] = { { 0, 0 }, { 0, 59 }, { 1, 0 }, { 1, 30 }, { 1, 59 }, { 2, 0 }, { 2, 30 }, { 3, 0 },
				     { 12, 0 }, { 23, 59 } };
	for (int y = 1970; y < 2100; y++)
		for (int mon = 0; mon < 12; mon++)
			for (int d = 1; d <= 31; d++)
				for (size_t k = 0; k < sizeof(hm) / sizeof(hm[0]); k++)
					s_check_mktime(y, mon, d, hm[k][0], hm[k][1], 0);
	s_check_mktime(2026, 11, 32, 12, 0, 0);
	s_check_mktime(2026, 12, 1, 7, 30, 0);
	s_check_mktime(2026, -1, 1, 7, 30, 0);
	s_check_mktime(2026, 2, 29 + 60, 12, 0, 0);
	s_check_mktime(2026, 2, 0, 0, 0, 0);
	s_check_mktime(2026, 2, -3, 25, -61, 3700);
	s_check_mktime(2024, 1, 29, 12, 0, 0);
	assert_int_equal(yj_tz_instant(2026, 3, 29, 1, 30), INT64_C(1774747800));
	assert_int_equal(yj_tz_instant(2026, 10, 25, 1, 30), INT64_C(1792891800));
	assert_int_equal(yj_tz_instant(2026, 12, 32, 7, 30), yj_tz_instant(2027, 1, 1, 7, 30));
}

/* --- a fork while another thread is in the library's time functions --- */

static volatile int s_spin;

static void *s_spinner(void *arg)
{
	(void)arg;
	time_t t = 1700000000;
	while (s_spin) {
		struct tm tm;
		char buf[64];
		localtime_r(&t, &tm);
		gmtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		t += 3607;
	}
	return NULL;
}

/* Fork `n` children while a thread spins in localtime_r and gmtime_r; each
 * child reads local time `use_libc` ? by the library : by tz.c, and is
 * counted stuck if it has not exited after `limit` seconds. */
static int s_forks_stuck(int n, int use_libc, unsigned limit)
{
	pthread_t th;
	int stuck = 0;
	s_spin = 1;
	assert_int_equal(pthread_create(&th, NULL, s_spinner, NULL), 0);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct tm tm;
			time_t t = 1774747800;
			alarm(limit);
			if (use_libc)
				localtime_r(&t, &tm);
			else
				yj_tz_local((int64_t)t, &tm);
			_exit(tm.tm_hour == 2 ? 0 : 1);
		}
		int status = 0;
		while (waitpid(pid, &status, 0) < 0)
			;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
			stuck++;
		else
			assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	s_spin = 0;
	pthread_join(th, NULL);
	return stuck;
}

static void test_fork_beside_a_thread_in_libc(void **state)
{
	(void)state;
	/* The library's way does get stuck (this is why tz.c exists); if a
	 * libc ever stops taking its lock the first count may read 0, and the
	 * second is the one that matters. */
	int libc_stuck = s_forks_stuck(5, 1, 1);
	print_message("children stuck reading local time by localtime_r: %d of 5\n", libc_stuck);
	/* A generous limit: a child that is only slow is not stuck. */
	assert_int_equal(s_forks_stuck(200, 0, 30), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_matches_libc),
		cmocka_unit_test(test_utc_matches_libc),
		cmocka_unit_test(test_mktime_matches_libc),
		cmocka_unit_test(test_fork_beside_a_thread_in_libc),
	};

	return cmocka_run_group_tests(tests, s_setup, NULL);
}
