/* tz.c: see tz.h. */
#include "tz.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "refdata.h"

/* 1900-01-01 and 2100-01-01, UTC seconds. */
#define S_FROM INT64_C(-2208988800)
#define S_TO INT64_C(4102444800)
/* The sampling step: no zone has changed twice within a week since 1900
 * (London's closest pair, 1947's BST and BDST, are four weeks apart). */
#define S_STEP (7 * 86400)
/* Two changes a year for 200 years, with room. */
#define S_MAX 1024

struct s_state {
	long off;
	int dst;
	char zone[8];
};

static struct s_state s_states[S_MAX];
static int64_t s_at[S_MAX]; /* the first UTC second of each state; s_at[0] stands for all before */
static size_t s_n;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_read(int64_t t, struct s_state *st)
{
	time_t tt = (time_t)t;
	struct tm tm;
	memset(st, 0, sizeof(*st));
	if (!localtime_r(&tt, &tm))
		return;
	st->off = tm.tm_gmtoff;
	st->dst = tm.tm_isdst > 0;
	if (tm.tm_zone)
		snprintf(st->zone, sizeof(st->zone), "%s", tm.tm_zone);
}

static int s_same(const struct s_state *a, const struct s_state *b)
{
	return a->off == b->off && a->dst == b->dst && strcmp(a->zone, b->zone) == 0;
}

static void s_build(void)
{
	struct s_state prev, cur;
	s_read(S_FROM, &prev);
	s_states[0] = prev;
	s_at[0] = S_FROM;
	s_n = 1;
	for (int64_t a = S_FROM; a < S_TO && s_n < S_MAX; a += S_STEP) {
		int64_t b = a + S_STEP;
		s_read(b, &cur);
		if (s_same(&cur, &prev))
			continue;
		/* The first second of the new state: a is the old one, b the new. */
		int64_t lo = a, hi = b;
		while (hi - lo > 1) {
			int64_t mid = lo + (hi - lo) / 2;
			struct s_state m;
			s_read(mid, &m);
			if (s_same(&m, &prev))
				lo = mid;
			else
				hi = mid;
		}
		s_read(hi, &s_states[s_n]);
		s_at[s_n++] = hi;
		prev = s_states[s_n - 1];
		/* A second change inside one step would be missed: read again from
		 * the change (never seen, but then it costs one step, not a wrong
		 * table). */
		if (!s_same(&prev, &cur))
			a = hi - S_STEP;
	}
}

int yj_tz_init(void)
{
	pthread_once(&s_once, s_build);
	return 0;
}

static const struct s_state *s_lookup(int64_t t)
{
	size_t lo = 0, hi;
	yj_tz_init();
	hi = s_n;
	/* The last state that starts at or before t. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s_at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return &s_states[lo];
}

long yj_tz_offset(int64_t t)
{
	return s_lookup(t)->off;
}

static void s_fill(int64_t t, struct tm *tm)
{
	int64_t days = t / 86400, secs = t % 86400;
	int y;
	unsigned m, d;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	yj_civil_from_days((int32_t)days, &y, &m, &d);
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = y - 1900;
	tm->tm_mon = (int)m - 1;
	tm->tm_mday = (int)d;
	tm->tm_hour = (int)(secs / 3600);
	tm->tm_min = (int)(secs / 60 % 60);
	tm->tm_sec = (int)(secs % 60);
	/* 1970-01-01 was a Thursday. */
	tm->tm_wday = (int)(((days % 7) + 11) % 7);
	tm->tm_yday = (int)(days - yj_days_from_civil(y, 1, 1));
}

void yj_tz_utc(int64_t t, struct tm *tm)
{
	s_fill(t, tm);
	tm->tm_zone = "GMT";
}

void yj_tz_local(int64_t t, struct tm *tm)
{
	const struct s_state *st = s_lookup(t);
	s_fill(t + st->off, tm);
	tm->tm_isdst = st->dst;
	tm->tm_gmtoff = st->off;
	tm->tm_zone = st->zone;
}

static int64_t s_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return q - ((a % b != 0) && ((a < 0) != (b < 0)));
}

int64_t yj_tz_mktime(struct tm *tm)
{
	int64_t carry = s_floor_div(tm->tm_mon, 12);
	int64_t y = (int64_t)tm->tm_year + 1900 + carry, mon = tm->tm_mon - carry * 12;
	int64_t days = (int64_t)yj_days_from_civil((int)y, (unsigned)mon + 1, 1) + tm->tm_mday - 1;
	int64_t wall = days * 86400 + (int64_t)tm->tm_hour * 3600 + (int64_t)tm->tm_min * 60 + tm->tm_sec;
	/* The offset at the wall time read as UTC, then at the instant that
	 * gives: the second guess is right but in a gap, where it takes the
	 * offset before it, and in a fold, where it takes the later. */
	int64_t t = wall - yj_tz_offset(wall);
	t = wall - yj_tz_offset(t);
	yj_tz_local(t, tm);
	return t;
}

int64_t yj_tz_instant(int y, int m, int d, int hh, int mm)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	return yj_tz_mktime(&tm);
}
