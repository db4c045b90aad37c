/* yjlink-sim: the feed simulator. Plays the police ICT side of YJL1
 * (interfaces.md §1): a synthetic population of children aged 10 to 17 and
 * their custody episodes, arrests, voluntary interviews and outcomes for one
 * force area, either live (occurred_at = now, paced at --rate) or as --days of
 * history, sent over a pipelining ZMQ_DEALER or written as JSON lines.
 *
 * Determinism is the point of the tool: tests and benchmarks compare runs,
 * and a crash test resends after a restart expecting DUP. So every payload is
 * a pure function of (--seed, --now, the generation options) and of its
 * position in the stream: people come from a per-child RNG, episode details
 * from a per-episode RNG, and the timeline from one RNG that never sees the
 * transport. --count only cuts the stream, it never changes a payload.
 *
 * Every person, name, address and phone number is invented; phone numbers
 * are in Ofcom's drama ranges and emails under the reserved .example TLD.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "refdata.h"
#include "sim_names.h"
#include "yjlink.pb-c.h"

/* Exit codes, as for yjlinkctl (interfaces.md §6). */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define S_DAY 86400
#define S_HOUR 3600
#define S_MIN 60

enum sim_feed { F_CUSTODY, F_ARREST, F_INTERVIEW, F_OUTCOME, F_COUNT };

static const char *const s_feed_names[F_COUNT] = {"custody", "arrest", "voluntary_interview", "outcome"};

enum sim_custody_status {
	CS_DETAINED,
	CS_RELEASED_NFA,
	CS_RELEASED_BAIL,
	CS_RELEASED_RUI,
	CS_CHARGED_BAILED,
	CS_CHARGED_REMANDED,
	CS_TRANSFERRED_LA,
	CS_RELEASED_OTHER,
};

static const char *const s_custody_status[] = {
	"detained", "released_nfa", "released_bail", "released_under_investigation",
	"charged_bailed", "charged_remanded", "transferred_la_accommodation", "released_other",
};

enum sim_iv_status { IV_SCHEDULED, IV_HELD, IV_CANCELLED };
static const char *const s_iv_status[] = {"scheduled", "held", "cancelled"};

/* What happens after `detained`: one or two further messages for the same
 * custody record. A repeated `detained` is the record updated in place (the
 * appropriate adult arrives), which police systems also send. */
struct sim_path {
	int weight;
	int n;
	uint8_t st[2];
};

static const struct sim_path s_paths[] = {
	{26, 1, {CS_RELEASED_RUI, 0}},
	{14, 1, {CS_RELEASED_BAIL, 0}},
	{14, 1, {CS_RELEASED_NFA, 0}},
	{14, 1, {CS_CHARGED_BAILED, 0}},
	{4, 1, {CS_RELEASED_OTHER, 0}},
	{8, 2, {CS_CHARGED_REMANDED, CS_TRANSFERRED_LA}},
	{5, 2, {CS_CHARGED_REMANDED, CS_RELEASED_OTHER}},
	{8, 2, {CS_DETAINED, CS_RELEASED_RUI}},
	{7, 2, {CS_DETAINED, CS_CHARGED_BAILED}},
};

/* Share of new episodes by feed. */
static const double s_type_weight[F_COUNT] = {0.40, 0.15, 0.20, 0.25};

/* ------------------------------------------------------------------ options */

struct sim_opts {
	const char *endpoint;
	const char *force;
	const char *now_text;
	const char *acks;
	const char *jsonl;
	const char *jsonl_dir;
	const char *ref_dir;
	const char *id_prefix;
	uint64_t seed;
	double rate;         /* events/s; 0 = unpaced */
	uint64_t count;      /* 0 = no cap */
	double duration;     /* seconds; 0 = none */
	int64_t days;        /* 0 = live mode */
	double per_day;
	uint64_t children;   /* 0 = derived */
	unsigned feeds;      /* bit per enum sim_feed */
	int feeds_given;     /* --feed was used */
	double lac_pct;
	uint64_t window;
	double timeout;
	int no_retry;
	int protobuf;
	int to_stdout;
	int quiet;
	int stats;            /* --stats: the situations line on stdout */
	/* the situations of real feeds, each a percentage (sim_opts defaults) */
	double late_pct;      /* messages sent hours to days after occurred_at */
	double t18_pct;       /* custody records of 17-year-olds who turn 18 in them */
	double nodob_pct;     /* children sent with apparent_age, no date_of_birth */
	double lac_unk_pct;   /* non-looked-after children sent without looked_after */
	double serious_pct;   /* custody records marked serious_offence */
	double live_pct;      /* episodes marked live_investigation */
	double adult_oc_pct;  /* outcomes with a code that cannot apply to a child */
	double away_pct;      /* children whose home is in another force's area */
	struct sim_quiet {
		unsigned feed;
		int64_t from, to;  /* seconds from the start of the history (live: --now) */
	} quiet_win[16];
	int n_quiet;
};

/* ---------------------------------------------------------------------- rng */

/* splitmix64: tiny, fast, and good enough that derived streams (per child,
 * per episode) are independent of each other. */
struct sim_rng {
	uint64_t s;
};

static uint64_t s_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t s_rng_next(struct sim_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ULL;
	return s_mix(r->s);
}

static void s_rng_init(struct sim_rng *r, uint64_t seed, uint64_t salt, uint64_t idx)
{
	r->s = s_mix(seed * 0xd1342543de82ef95ULL + salt) ^ s_mix(idx + 0x632be59bd9b4e019ULL * salt);
}

/* Uniform in [0, n); n > 0. The modulo bias is irrelevant at these sizes. */
static uint64_t s_rand_u(struct sim_rng *r, uint64_t n)
{
	return s_rng_next(r) % n;
}

static int64_t s_rand_range(struct sim_rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)s_rand_u(r, (uint64_t)(hi - lo + 1));
}

static double s_rand_f(struct sim_rng *r)
{
	return (double)(s_rng_next(r) >> 11) * 0x1p-53;
}

static int s_chance(struct sim_rng *r, double p)
{
	return s_rand_f(r) < p;
}

static size_t s_pick_weighted_int(struct sim_rng *r, const int *w, size_t n)
{
	int64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += w[i];
	int64_t x = (int64_t)s_rand_u(r, (uint64_t)(total > 0 ? total : 1));
	for (size_t i = 0; i < n; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return n - 1;
}

/* -------------------------------------------------------------------- time */

static int32_t s_day_of(int64_t t)
{
	return (int32_t)(t >= 0 ? t / S_DAY : -((-t + S_DAY - 1) / S_DAY));
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int s_weekday(int32_t day)
{
	return (int)(((day % 7) + 7 + 4) % 7);
}

/* UK civil time: BST from 01:00 UTC on the last Sunday of March to 01:00 UTC
 * on the last Sunday of October. Written out so that output does not depend
 * on the machine's tz database. */
static int s_uk_offset_min(int64_t t)
{
	int y;
	unsigned m, d;
	yj_civil_from_days(s_day_of(t), &y, &m, &d);
	int32_t mar = yj_days_from_civil(y, 3, 31);
	int32_t oct = yj_days_from_civil(y, 10, 31);
	mar -= s_weekday(mar);
	oct -= s_weekday(oct);
	int64_t start = (int64_t)mar * S_DAY + S_HOUR;
	int64_t end = (int64_t)oct * S_DAY + S_HOUR;
	return (t >= start && t < end) ? 60 : 0;
}

static int s_local_hour(int64_t t)
{
	int64_t l = t + (int64_t)s_uk_offset_min(t) * S_MIN;
	return (int)(((l % S_DAY) + S_DAY) % S_DAY / S_HOUR);
}

/* RFC 3339 in UTC ("Z") or in UK local time with its offset: police systems
 * send both, and the daemon must keep the offset it was given. */
static void s_fmt_ts(char *buf, size_t size, int64_t t, int local)
{
	int off = local ? s_uk_offset_min(t) : 0;
	int64_t l = t + (int64_t)off * S_MIN;
	int32_t day = s_day_of(l);
	int64_t sod = l - (int64_t)day * S_DAY;
	int y;
	unsigned m, d;
	yj_civil_from_days(day, &y, &m, &d);
	if (local) {
		snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d+%02d:%02d", y, m, d, (int)(sod / S_HOUR),
			 (int)(sod % S_HOUR / S_MIN), (int)(sod % S_MIN), off / 60, off % 60);
	} else {
		snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02dZ", y, m, d, (int)(sod / S_HOUR),
			 (int)(sod % S_HOUR / S_MIN), (int)(sod % S_MIN));
	}
}

static void s_fmt_date(char *buf, size_t size, int32_t day)
{
	int y;
	unsigned m, d;
	yj_civil_from_days(day, &y, &m, &d);
	snprintf(buf, size, "%04d-%02u-%02u", y, m, d);
}

static int s_digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return YJ_EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339 with a mandatory offset; fractions are accepted and dropped
 * because every generated time is whole seconds. */
static int s_parse_rfc3339(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	size_t len = strlen(s), i = 19;

	if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    s[13] != ':' || s[16] != ':')
		return YJ_EINVAL;
	if (s_digits(s, 4, &y) || s_digits(s + 5, 2, &mo) || s_digits(s + 8, 2, &d) || s_digits(s + 11, 2, &h) ||
	    s_digits(s + 14, 2, &mi) || s_digits(s + 17, 2, &se))
		return YJ_EINVAL;
	if (s[i] == '.') {
		i++;
		if (s[i] < '0' || s[i] > '9')
			return YJ_EINVAL;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if ((s[i] == 'Z' || s[i] == 'z') && s[i + 1] == '\0') {
		sign = 0;
	} else if ((s[i] == '+' || s[i] == '-') && len - i == 6 && s[i + 3] == ':') {
		sign = s[i] == '-' ? -1 : 1;
		if (s_digits(s + i + 1, 2, &oh) || s_digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return YJ_EINVAL;
	} else {
		return YJ_EINVAL;
	}
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59)
		return YJ_EINVAL;
	int32_t day = yj_days_from_civil(y, (unsigned)mo, (unsigned)d);
	int ry;
	unsigned rm, rd;
	yj_civil_from_days(day, &ry, &rm, &rd);
	if (ry != y || (int)rm != mo || (int)rd != d)
		return YJ_EINVAL;
	*out = (int64_t)day * S_DAY + h * S_HOUR + mi * S_MIN + se - sign * (oh * S_HOUR + om * S_MIN);
	return 0;
}

/* Whole years between two days, the way a birthday is counted. */
static int s_age(int32_t dob, int32_t on)
{
	int y1, y2;
	unsigned m1, d1, m2, d2;
	yj_civil_from_days(dob, &y1, &m1, &d1);
	yj_civil_from_days(on, &y2, &m2, &d2);
	int age = y2 - y1;
	if (m2 < m1 || (m2 == m1 && d2 < d1))
		age--;
	return age;
}

static int64_t s_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------ string buffer */

struct sim_buf {
	char *p;
	size_t len;
	size_t cap;
	int oom;  /* sticky: checked once after building */
};

static void s_buf_reserve(struct sim_buf *b, size_t extra)
{
	if (b->oom || b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void s_buf_add(struct sim_buf *b, const char *s, size_t n)
{
	s_buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void s_buf_puts(struct sim_buf *b, const char *s)
{
	s_buf_add(b, s, strlen(s));
}

static void s_buf_printf(struct sim_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_buf_printf(struct sim_buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if ((size_t)n < sizeof(tmp)) {
		s_buf_add(b, tmp, (size_t)n);
		return;
	}
	s_buf_reserve(b, (size_t)n);
	if (b->oom)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A JSON string: quotes, backslash and control characters escaped; UTF-8
 * passes through as is (every source string is valid UTF-8). */
static void s_buf_jstr(struct sim_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	s_buf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		s_buf_add(b, run, (size_t)(s - run));
		run = s + 1;
		switch (c) {
		case '"': s_buf_add(b, "\\\"", 2); break;
		case '\\': s_buf_add(b, "\\\\", 2); break;
		case '\n': s_buf_add(b, "\\n", 2); break;
		case '\r': s_buf_add(b, "\\r", 2); break;
		case '\t': s_buf_add(b, "\\t", 2); break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			s_buf_add(b, u, 6);
		}
		}
	}
	s_buf_add(b, run, (size_t)(s - run));
	s_buf_add(b, "\"", 1);
}

/* ,"key":"value" (the comma unless first) */
static void s_buf_kstr(struct sim_buf *b, int *first, const char *key, const char *val)
{
	s_buf_printf(b, "%s\"%s\":", *first ? "" : ",", key);
	s_buf_jstr(b, val);
	*first = 0;
}

static void s_buf_kts(struct sim_buf *b, int *first, const char *key, int64_t t, int local)
{
	char ts[40];
	s_fmt_ts(ts, sizeof(ts), t, local);
	s_buf_kstr(b, first, key, ts);
}

static void s_buf_kbool(struct sim_buf *b, int *first, const char *key, int v)
{
	s_buf_printf(b, "%s\"%s\":%s", *first ? "" : ",", key, v ? "true" : "false");
	*first = 0;
}

/* ---------------------------------------------------------- reference data */

struct sim_tables {
	struct yj_refdata *ref;
	const struct yj_force *force;
	char prefix[8];   /* force initials, e.g. TVP, for person and record ids */
	int force_no;     /* two-digit PNC force number for ASNs and URNs */
	const struct yj_la **own;
	size_t n_own;
	const struct yj_la **near;
	size_t n_near;
	const struct yj_la **far;
	size_t n_far;
	const struct yj_la **any;   /* every upper-tier authority outside the force */
	size_t n_any;
	const struct yj_suite **suites;
	size_t n_suites;
	const struct sim_weighted_code *eth[SIM_COUNT(sim_ethnicities)];
	int eth_w[SIM_COUNT(sim_ethnicities)];
	size_t n_eth;
	const struct yj_outcome *oc[SIM_COUNT(sim_outcome_kinds)];
	const struct sim_outcome_kind *oc_kind[SIM_COUNT(sim_outcome_kinds)];
	size_t n_oc;
	const struct yj_outcome **oc_all;  /* fallback when no known code fits a date */
	size_t n_oc_all;
	int off_w[SIM_COUNT(sim_offences)];
};

static int s_push_la(const struct yj_la ***arr, size_t *n, const struct yj_la *la)
{
	const struct yj_la **p = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!p)
		return YJ_ENOMEM;
	p[(*n)++] = la;
	*arr = p;
	return 0;
}

static int s_la_list(const struct sim_tables *t, const char *const *codes, size_t n_codes,
		     const struct yj_la ***out, size_t *n_out)
{
	for (size_t i = 0; i < n_codes; i++) {
		const struct yj_la *la = yj_ref_la(t->ref, codes[i]);
		if (!la || !la->upper_tier || strcmp(la->force, t->force->code) == 0)
			continue;
		int rc = s_push_la(out, n_out, la);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* "Thames Valley" -> TVP: initials of the significant words plus P. */
static void s_force_prefix(const char *name, char *out, size_t size)
{
	size_t n = 0;
	const char *p = name;
	while (*p && n + 2 < size) {
		while (*p == ' ' || *p == ',' || *p == '-')
			p++;
		if (!*p)
			break;
		const char *w = p;
		while (*p && *p != ' ' && *p != ',' && *p != '-')
			p++;
		size_t wl = (size_t)(p - w);
		if ((wl == 3 && strncmp(w, "and", 3) == 0) || (wl == 2 && strncmp(w, "of", 2) == 0) ||
		    (wl == 6 && strncmp(w, "Police", 6) == 0) || (wl == 1 && *w == '&'))
			continue;
		if ((*w >= 'A' && *w <= 'Z') || (*w >= 'a' && *w <= 'z'))
			out[n++] = (char)(*w & ~0x20);
	}
	out[n++] = 'P';
	out[n] = '\0';
}

static void s_tables_free(struct sim_tables *t)
{
	free(t->own);
	free(t->near);
	free(t->far);
	free(t->any);
	free(t->suites);
	free(t->oc_all);
	yj_refdata_free(&t->ref);
	memset(t, 0, sizeof(*t));
}

/* Returns 0, YJ_EINVAL (force unknown: a usage error), YJ_ENOENT (the
 * tables lack what the feeds need) or a load error. */
static int s_tables_load(struct sim_tables *t, struct sim_opts *o)
{
	struct yj_diag diag = {0};
	int rc;

	rc = yj_refdata_load(o->ref_dir, &diag, &t->ref);
	if (rc < 0) {
		fprintf(stderr, "yjlink-sim: cannot load reference tables: %s\n", yj_strerror(rc));
		goto out;
	}
	t->force = yj_ref_force(t->ref, o->force);
	if (!t->force) {
		fprintf(stderr, "yjlink-sim: force %s is not in the reference table\n", o->force);
		rc = YJ_EINVAL;
		goto out;
	}
	s_force_prefix(t->force->name, t->prefix, sizeof(t->prefix));
	/* Thames Valley's real PNC force number; other forces get a stable
	 * stand-in from their code, since only the shape of an ASN matters. */
	t->force_no = strcmp(o->force, "E23000029") == 0 ? 43 : (int)(strtol(o->force + 3, NULL, 10) % 60) + 1;

	const struct yj_la *la;
	for (size_t i = 0; (la = yj_ref_la_at(t->ref, i)) != NULL; i++) {
		if (!la->upper_tier)
			continue;
		int own = strcmp(la->force, o->force) == 0;
		if ((rc = s_push_la(own ? &t->own : &t->any, own ? &t->n_own : &t->n_any, la)) < 0)
			goto out;
	}
	if ((rc = s_la_list(t, sim_near_las, SIM_COUNT(sim_near_las), &t->near, &t->n_near)) < 0 ||
	    (rc = s_la_list(t, sim_far_las, SIM_COUNT(sim_far_las), &t->far, &t->n_far)) < 0)
		goto out;
	/* For a force other than Thames Valley the neighbour list is mostly
	 * wrong; any other force's authority still exercises the same rules. */
	if (t->n_near == 0 || t->n_far == 0) {
		int fill_near = t->n_near == 0, fill_far = t->n_far == 0;
		for (size_t i = 0; (la = yj_ref_la_at(t->ref, i)) != NULL; i++) {
			if (!la->upper_tier || strcmp(la->force, o->force) == 0)
				continue;
			if ((fill_near && (rc = s_push_la(&t->near, &t->n_near, la)) < 0) ||
			    (fill_far && (rc = s_push_la(&t->far, &t->n_far, la)) < 0))
				goto out;
		}
		/* a table with one force only: "elsewhere" has to be home */
		fill_near = t->n_near == 0;
		fill_far = t->n_far == 0;
		for (size_t i = 0; t->n_any == 0 && i < t->n_own; i++) {
			if ((rc = s_push_la(&t->any, &t->n_any, t->own[i])) < 0)
				goto out;
		}
		for (size_t i = 0; i < t->n_own; i++) {
			if ((fill_near && (rc = s_push_la(&t->near, &t->n_near, t->own[i])) < 0) ||
			    (fill_far && (rc = s_push_la(&t->far, &t->n_far, t->own[i])) < 0))
				goto out;
		}
	}

	const struct yj_suite *su;
	for (size_t i = 0; (su = yj_ref_suite_at(t->ref, i)) != NULL; i++) {
		if (strcmp(su->force, o->force) != 0)
			continue;
		const struct yj_suite **p = realloc(t->suites, (t->n_suites + 1) * sizeof(*p));
		if (!p) {
			rc = YJ_ENOMEM;
			goto out;
		}
		p[t->n_suites++] = su;
		t->suites = p;
	}

	for (size_t i = 0; i < SIM_COUNT(sim_ethnicities); i++) {
		if (yj_ref_ethnicity(t->ref, sim_ethnicities[i].code)) {
			t->eth[t->n_eth] = &sim_ethnicities[i];
			t->eth_w[t->n_eth++] = sim_ethnicities[i].weight;
		}
	}
	for (size_t i = 0; i < SIM_COUNT(sim_outcome_kinds); i++) {
		const struct yj_outcome *oc = yj_ref_outcome(t->ref, sim_outcome_kinds[i].code);
		if (oc) {
			t->oc[t->n_oc] = oc;
			t->oc_kind[t->n_oc++] = &sim_outcome_kinds[i];
		}
	}
	const struct yj_outcome *oc;
	for (size_t i = 0; (oc = yj_ref_outcome_at(t->ref, i)) != NULL; i++) {
		const struct yj_outcome **p = realloc(t->oc_all, (t->n_oc_all + 1) * sizeof(*p));
		if (!p) {
			rc = YJ_ENOMEM;
			goto out;
		}
		p[t->n_oc_all++] = oc;
		t->oc_all = p;
	}
	for (size_t i = 0; i < SIM_COUNT(sim_offences); i++)
		t->off_w[i] = sim_offences[i].weight;

	rc = 0;
	if (t->n_own == 0) {
		fprintf(stderr, "yjlink-sim: no upper-tier local authority lies in force %s\n", o->force);
		rc = YJ_ENOENT;
	} else if ((o->feeds & (1u << F_CUSTODY)) && t->n_suites == 0 && o->feeds_given) {
		fprintf(stderr, "yjlink-sim: no custody suite of force %s in the reference table\n", o->force);
		rc = YJ_ENOENT;
	} else if ((o->feeds & (1u << F_CUSTODY)) && t->n_suites == 0) {
		/* not asked for by name: the other feeds are still worth having */
		fprintf(stderr, "yjlink-sim: no custody suite of force %s in the reference table: no custody feed\n",
			o->force);
		o->feeds &= ~(1u << F_CUSTODY);
	} else if ((o->feeds & (1u << F_OUTCOME)) && t->n_oc_all == 0) {
		fprintf(stderr, "yjlink-sim: the outcome table is empty\n");
		rc = YJ_ENOENT;
	}
out:
	return rc;
}

/* ---------------------------------------------------------------- children */

struct sim_child {
	char person_id[32];
	char pnc_id[16];            /* "" when none */
	const char *given;
	const char *family;
	int32_t dob;
	const char *gender;         /* NULL when not sent */
	const char *ethnicity;      /* NULL when not sent */
	const struct yj_la *home;   /* NULL: no fixed abode */
	char postcode[12];          /* "" when not sent */
	int looked_after;
	const struct yj_la *responsible;
	int has_sw;
	char sw_name[64];
	char sw_email[128];
	char sw_phone[24];          /* "" when not sent */
	int court_order;            /* on a court order: stable per child, as in life */
	int mappa;
	int dob_unknown;            /* sent with apparent_age instead of date_of_birth */
	int appear_off;             /* apparent_age minus the true age: -1, 0 or +1 */
	int lac_unknown;            /* looked_after not sent (never for a looked-after child) */
	int turns_18;               /* made for one custody record across the 18th birthday */
};

/* A child made for a custody record across its 18th birthday: the index
 * carries the birthday (days since 1970) so the child stays a pure function
 * of its index. Ordinary children have indices below 2^31. */
#define S_T18_BIT 0x80000000u

static uint32_t s_t18_idx(int32_t birthday, uint32_t ep)
{
	return S_T18_BIT | ((uint32_t)birthday & 0x7fffffu) << 8 | (ep & 0xffu);
}

static int32_t s_t18_birthday(uint32_t idx)
{
	return (int32_t)((idx >> 8) & 0x7fffffu);
}

static const char *s_postcode_area(const struct yj_la *la)
{
	for (size_t i = 0; i < SIM_COUNT(sim_postcode_areas); i++) {
		if (strcmp(sim_postcode_areas[i].la, la->code) == 0)
			return sim_postcode_areas[i].area;
	}
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = la->code; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return sim_postcode_fallback[h % SIM_COUNT(sim_postcode_fallback)];
}

/* Lower-case letters and digits of an authority's name, up to a comma
 * ("Bristol, City of" -> bristol), for a social worker's mail domain. */
static void s_slug(const char *name, char *out, size_t size)
{
	size_t n = 0;
	for (const char *p = name; *p && *p != ',' && n + 1 < size; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			out[n++] = c;
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, size, "council");
}

static void s_lower_ascii(char *s)
{
	for (; *s; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s + 32);
	}
}

/* Weights of ages 10..17 among children in the youth justice system. */
static const int s_age_w[8] = {2, 3, 5, 9, 14, 20, 23, 24};

/* Child idx. Its age is drawn for a day up to `span` days before `today`,
 * so that over a long history there are children of age at every point.
 * Draws come in a fixed order whatever the branches, so one attribute
 * never shifts another. */
static void s_child_make(const struct sim_opts *o, const struct sim_tables *t, int32_t today, uint32_t idx,
			 struct sim_child *c)
{
	uint64_t seed = o->seed;
	int64_t span = o->days;
	static const char pc_letters[] = "ABDEFGHJLNPQRSTUWXYZ";
	static const char pnc_check[] = "ZABCDEFGHJKLMNPQRTUVWXY";
	struct sim_rng r;
	char slug[64];

	memset(c, 0, sizeof(*c));
	s_rng_init(&r, seed, 0xc41d, idx);
	if (idx & S_T18_BIT)
		snprintf(c->person_id, sizeof(c->person_id), "%s-X%07" PRIu32, t->prefix, idx & ~S_T18_BIT);
	else
		snprintf(c->person_id, sizeof(c->person_id), "%s-P%06" PRIu32, t->prefix, idx + 1);

	double ug = s_rand_f(&r);
	size_t gm = s_rand_u(&r, SIM_COUNT(sim_given_male));
	size_t gf = s_rand_u(&r, SIM_COUNT(sim_given_female));
	int female;
	if (ug < 0.78) {
		c->gender = "male";
		female = 0;
	} else if (ug < 0.97) {
		c->gender = "female";
		female = 1;
	} else {
		c->gender = ug < 0.975 ? "other" : ug < 0.98 ? "unknown" : NULL;
		female = (int)(gm & 1);
	}
	c->given = female ? sim_given_female[gf] : sim_given_male[gm];
	c->family = sim_family[s_rand_u(&r, SIM_COUNT(sim_family))];

	/* dob: uniform over the days on which the child has the drawn age today */
	int age = 10 + (int)s_pick_weighted_int(&r, s_age_w, 8);
	int ty;
	unsigned tm, td;
	yj_civil_from_days(today - (int32_t)s_rand_u(&r, (uint64_t)span + 1), &ty, &tm, &td);
	int32_t hi = yj_days_from_civil(ty - age, tm, td);
	int32_t lo = yj_days_from_civil(ty - age - 1, tm, td) + 1;
	c->dob = (int32_t)s_rand_range(&r, lo, hi);
	{
		int y;
		unsigned m, d;
		yj_civil_from_days(c->dob, &y, &m, &d);
		/* a 29 February birthday makes "aged 10 on" ambiguous between
		 * implementations: keep the simulator out of that argument */
		if (m == 2 && d == 29)
			c->dob--;
	}

	size_t eth = t->n_eth ? s_pick_weighted_int(&r, t->eth_w, t->n_eth) : 0;
	c->ethnicity = (t->n_eth && !s_chance(&r, 0.04)) ? t->eth[eth]->code : NULL;

	/* home: no fixed abode; another force's area (a neighbour, a far city
	 * of county lines and placements, or any authority in England and
	 * Wales); else the force's own */
	double uh = s_rand_f(&r);
	uint64_t pick = s_rng_next(&r);
	double away = o->away_pct / 100.0;
	if (uh < 0.03) {
		c->home = NULL;
	} else if (uh < 0.03 + away) {
		double v = (uh - 0.03) / away;
		c->home = v < 0.45 ? t->near[pick % t->n_near] : v < 0.60 ? t->far[pick % t->n_far] : t->any[pick % t->n_any];
	} else {
		c->home = t->own[pick % t->n_own];
	}

	int district = (int)s_rand_range(&r, 1, 29);
	int inward = (int)s_rand_range(&r, 1, 9);
	char l1 = pc_letters[s_rand_u(&r, sizeof(pc_letters) - 1)];
	char l2 = pc_letters[s_rand_u(&r, sizeof(pc_letters) - 1)];
	double upc = s_rand_f(&r);
	if (c->home && upc < 0.96) {
		/* a few systems drop the space; the daemon normalises it */
		snprintf(c->postcode, sizeof(c->postcode), upc < 0.04 ? "%s%d%d%c%c" : "%s%d %d%c%c",
			 s_postcode_area(c->home), district, inward, l1, l2);
	}

	int has_pnc = s_chance(&r, 0.65);
	int pnc_span = age - 10;
	int pnc_year = ty - (int)s_rand_u(&r, (uint64_t)pnc_span + 1);
	uint32_t serial = (uint32_t)s_rand_range(&r, 100000, 999999);
	if (has_pnc) {
		/* PNC check character: (YY * 10^7 + serial) mod 23 */
		uint64_t v = (uint64_t)(pnc_year % 100) * 10000000ULL + serial;
		snprintf(c->pnc_id, sizeof(c->pnc_id), "%02d/%" PRIu32 "%c", pnc_year % 100, serial,
			 pnc_check[v % 23]);
	}

	c->looked_after = s_chance(&r, o->lac_pct / 100.0);
	double ur = s_rand_f(&r);
	uint64_t rpick = s_rng_next(&r);
	if (c->looked_after) {
		/* placed out of area: cared for by one authority, living in another */
		if (c->home && ur < 0.45)
			c->responsible = c->home;
		else if (ur < 0.65)
			c->responsible = t->far[rpick % t->n_far];
		else if (ur < 0.85)
			c->responsible = t->any[rpick % t->n_any];
		else
			c->responsible = t->own[rpick % t->n_own];
	}
	int sw = s_chance(&r, 0.9);
	int sw_f = s_chance(&r, 0.7);
	const char *swg = sw_f ? sim_adult_given_f[s_rand_u(&r, SIM_COUNT(sim_adult_given_f))]
			       : sim_adult_given_m[s_rand_u(&r, SIM_COUNT(sim_adult_given_m))];
	const char *swf = sim_adult_family[s_rand_u(&r, SIM_COUNT(sim_adult_family))];
	double uphone = s_rand_f(&r);
	unsigned phone = (unsigned)s_rand_u(&r, 1000);
	if (c->looked_after && sw) {
		c->has_sw = 1;
		snprintf(c->sw_name, sizeof(c->sw_name), "%s %s", swg, swf);
		s_slug(c->responsible->name, slug, sizeof(slug));
		snprintf(c->sw_email, sizeof(c->sw_email), "%s.%s@%s.example", swg, swf, slug);
		s_lower_ascii(c->sw_email);
		if (uphone < 0.45)
			snprintf(c->sw_phone, sizeof(c->sw_phone), "01632 960%03u", phone);
		else if (uphone < 0.9)
			snprintf(c->sw_phone, sizeof(c->sw_phone), "07700 900%03u", phone);
	}
	c->court_order = s_chance(&r, 0.06);
	c->mappa = s_chance(&r, 0.004);

	/* What the force does not know, from a stream of its own so that these
	 * shares never move any other attribute. A child whose date of birth
	 * is unknown is one the PNC does not know either. */
	struct sim_rng q;
	s_rng_init(&q, seed, 0xd0b5, idx);
	double u_dob = s_rand_f(&q), u_lac = s_rand_f(&q);
	int off_w[3] = {2, 6, 2};
	c->appear_off = (int)s_pick_weighted_int(&q, off_w, 3) - 1;
	if (idx & S_T18_BIT) {
		/* the 18th birthday is the one in the index */
		int32_t bday = s_t18_birthday(idx);
		int by;
		unsigned bm, bd;
		yj_civil_from_days(bday, &by, &bm, &bd);
		c->dob = yj_days_from_civil(by - 18, bm, bd);
		c->turns_18 = 1;
	} else if (u_dob < o->nodob_pct / 100.0) {
		c->dob_unknown = 1;
		c->pnc_id[0] = '\0';
	}
	c->lac_unknown = !c->looked_after && u_lac < o->lac_unk_pct / 100.0;
}

/* What apparent_age says on day `on`: the age the child looks, 10..17. */
static int s_apparent_age(const struct sim_child *c, int32_t on)
{
	int a = s_age(c->dob, on) + c->appear_off;
	return a < 10 ? 10 : a > 17 ? 17 : a;
}

/* Aged 10..17 from a day before the first event to a day after the last, so
 * the daemon's choice of time zone for "the date" cannot matter. */
static int s_child_ok(const struct sim_child *c, int64_t first, int64_t last)
{
	return s_age(c->dob, s_day_of(first - S_DAY)) >= 10 && s_age(c->dob, s_day_of(last + S_DAY)) <= 17;
}

/* ------------------------------------------------------------------ events */

struct sim_event {
	enum sim_feed feed;
	uint64_t n;
	char source_id[160];
	int64_t occurred;
	int local;
	struct sim_child child;
	int n_off;
	const struct sim_offence *off[3];
	int has_markers;
	int m_live, m_serious, m_mappa, m_court_order;
	char officer[64];           /* "" when not sent */
	char asn[32];               /* "" when not sent */
	/* custody */
	char record_id[40];
	const struct yj_suite *suite;
	int64_t arrived_at;
	const char *status;
	int64_t status_at;
	int has_aa;
	char aa_name[96];
	const char *aa_rel;
	int64_t aa_called;          /* 0 when not sent */
	int64_t aa_arrived;         /* 0 when not sent */
	char reason[400];           /* "" when not sent */
	/* arrest */
	char arrest_id[40];
	int64_t arrested_at;
	const struct yj_la *location_la;  /* NULL when not sent */
	int summons;                /* -1 when not sent */
	/* interview */
	char interview_id[40];
	const char *iv_status;
	int64_t iv_at;
	char iv_location[160];      /* "" when not sent */
	/* outcome */
	char case_ref[40];
	int code;
	int64_t decided_at;
	int has_offence_date;
	int32_t offence_date;
	const char *disposal;
	int apparent_age;           /* 0: date_of_birth is sent */
	int adult_code;             /* the outcome code cannot apply to a child */
};

/* One message still to come: the episode it belongs to is rebuilt from its
 * number, so a pending entry stays small even with a million in flight. */
struct sim_pending {
	int64_t due;      /* history: the event's time; live: the event's index */
	uint64_t order;   /* creation order: ties resolve the same way every run */
	int64_t at;       /* history: the event's time */
	int64_t t0;       /* custody arrival, arrest time, interview slot */
	uint32_t ep;
	uint32_t child;
	uint8_t feed;
	uint8_t status;   /* enum sim_custody_status or sim_iv_status */
	uint8_t linked;   /* arrest: part of a custody episode */
	uint8_t flags;    /* S_PF_* */
	int32_t late;     /* seconds sent after it happened (live: subtracted from the clock) */
};

#define S_PF_OPEN 1u  /* the message that opens a custody record */
#define S_PF_HELD 2u  /* held back by a quiet feed, sent when it resumed */

/* What the run produced of each situation, for --stats. */
struct sim_stats {
	uint64_t msgs, by_feed[F_COUNT];
	uint64_t late, held, quiet_dropped;
	uint64_t t18_records, t18_after;
	uint64_t nodob_msgs, lac_unk_msgs;
	uint64_t custody_serious, custody_mappa, live, officer;
	uint64_t adult_outcomes, yc, ycc;
	uint64_t children, nodob_children, lac_unk_children, lac_children, lac_other_la, away_children, nfa_children;
	size_t n_away_las;
	const struct yj_la *away_las[512];
	uint64_t *seen;       /* bit per child index */
	uint32_t *t18_seen;   /* the few children made to turn 18 */
	size_t n_t18, cap_t18;
};

struct sim_gen {
	const struct sim_opts *o;
	const struct sim_tables *t;
	int live;
	int64_t now;          /* the clock: --now or the real one */
	int32_t today;
	int64_t start, end;   /* history window */
	uint64_t limit;       /* 0: none */
	uint64_t emitted;
	uint32_t population;
	uint32_t next_ep;
	uint64_t order;
	struct sim_rng rng;   /* the timeline */
	double next_start;    /* history: next candidate episode start */
	double cand_rate;     /* history: candidates per second */
	double type_w[F_COUNT];
	double prof_mean[2];
	double prof_max_sum;
	struct sim_pending *heap;
	size_t n_heap, cap_heap;
	char id_prefix[128];
	struct sim_stats st;
};

/* Due first; among messages due at once (a quiet feed's backlog, late
 * messages at the end of the history) the oldest first. */
static int s_heap_less(const struct sim_pending *a, const struct sim_pending *b)
{
	if (a->due != b->due)
		return a->due < b->due;
	if (a->at != b->at)
		return a->at < b->at;
	return a->order < b->order;
}

static int s_heap_push(struct sim_gen *g, const struct sim_pending *p)
{
	if (g->n_heap == g->cap_heap) {
		size_t cap = g->cap_heap ? g->cap_heap * 2 : 1024;
		struct sim_pending *h = realloc(g->heap, cap * sizeof(*h));
		if (!h)
			return YJ_ENOMEM;
		g->heap = h;
		g->cap_heap = cap;
	}
	size_t i = g->n_heap++;
	g->heap[i] = *p;
	g->heap[i].order = g->order++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!s_heap_less(&g->heap[i], &g->heap[up]))
			break;
		struct sim_pending tmp = g->heap[i];
		g->heap[i] = g->heap[up];
		g->heap[up] = tmp;
		i = up;
	}
	return 0;
}

static void s_heap_pop(struct sim_gen *g, struct sim_pending *out)
{
	*out = g->heap[0];
	g->heap[0] = g->heap[--g->n_heap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < g->n_heap && s_heap_less(&g->heap[l], &g->heap[m]))
			m = l;
		if (r < g->n_heap && s_heap_less(&g->heap[r], &g->heap[m]))
			m = r;
		if (m == i)
			break;
		struct sim_pending tmp = g->heap[i];
		g->heap[i] = g->heap[m];
		g->heap[m] = tmp;
		i = m;
	}
}

/* Events after the clock have not happened yet: a child released tomorrow is
 * still in custody now, which is exactly what a digest must show. */
/* Hours to days, skewed to the short end: a message stuck in a queue
 * overnight is common, one a few days late rare. */
static int32_t s_late_delay(struct sim_rng *r)
{
	double lo = log(2.0 * S_HOUR), hi = log(4.0 * S_DAY);
	return (int32_t)exp(lo + (hi - lo) * s_rand_f(r) * s_rand_f(r));
}

/* The end of the quiet window of `feed` that holds send time `at`
 * (seconds since the start of the history), or -1 when none does.
 * Windows that overlap or touch chain. */
static int64_t s_quiet_until(const struct sim_opts *o, unsigned feed, int64_t at)
{
	int64_t until = -1;
	for (int moved = 1; moved;) {
		moved = 0;
		for (int i = 0; i < o->n_quiet; i++) {
			const struct sim_quiet *q = &o->quiet_win[i];
			int64_t x = until >= 0 ? until : at;
			if (q->feed == feed && x >= q->from && x < q->to && q->to != until) {
				until = q->to;
				moved = 1;
			}
		}
	}
	return until;
}

/* Events after the clock have not happened yet: a child released tomorrow is
 * still in custody now, which is exactly what a digest must show. In
 * history mode a late message is sent (takes its place in the stream)
 * hours to days after it happened, after later events; a quiet feed holds
 * what it would have sent until it resumes, then sends it in time order. */
static int s_schedule(struct sim_gen *g, struct sim_pending *p, int64_t at, int64_t live_due)
{
	if (g->live) {
		p->due = live_due;
		p->at = 0;
		return s_heap_push(g, p);
	}
	if (at > g->end)
		return 0;
	struct sim_pending q = *p;
	struct sim_rng lr;
	s_rng_init(&lr, g->o->seed, 0x1a7e, g->order);
	int late = s_chance(&lr, g->o->late_pct / 100.0);
	int32_t delay = s_late_delay(&lr);
	q.at = at;
	q.due = at;
	q.late = 0;
	if (late) {
		int64_t due = at + delay > g->end ? g->end : at + delay;
		if (due - at >= S_HOUR) {
			q.due = due;
			q.late = (int32_t)(due - at);
		}
	}
	if (g->o->n_quiet) {
		int64_t until = s_quiet_until(g->o, q.feed, q.due - g->start);
		if (until >= 0) {
			if (g->start + until > g->end) {
				g->st.quiet_dropped++;  /* the feed is still down at --now */
				return 0;
			}
			/* the backlog goes out at once, oldest first */
			q.due = g->start + until;
			q.flags |= S_PF_HELD;
		}
	}
	return s_heap_push(g, &q);
}

/* A child aged 10..17 across [first, last]. Repeat offenders are the norm in
 * youth justice, so low indices are drawn far more often (density 1/sqrt). */
static int s_pick_child(struct sim_gen *g, int64_t first, int64_t last, uint32_t *out)
{
	struct sim_child c;
	for (int tries = 0; tries < 64; tries++) {
		double u = s_rand_f(&g->rng);
		uint32_t idx = (uint32_t)(u * u * g->population);
		s_child_make(g->o, g->t, g->today, idx, &c);
		if (s_child_ok(&c, first, last)) {
			*out = idx;
			return 0;
		}
	}
	uint32_t start = (uint32_t)s_rand_u(&g->rng, g->population);
	for (uint32_t k = 0; k < g->population; k++) {
		uint32_t idx = (start + k) % g->population;
		s_child_make(g->o, g->t, g->today, idx, &c);
		if (s_child_ok(&c, first, last)) {
			*out = idx;
			return 0;
		}
	}
	return YJ_ERANGE;
}

/* Next 09:00-17:00 weekday slot 2..21 days after t, on a quarter hour. */
static int64_t s_interview_slot(struct sim_rng *r, int64_t t)
{
	int32_t day = s_day_of(t + (int64_t)s_uk_offset_min(t) * S_MIN) + (int32_t)s_rand_range(r, 2, 21);
	while (s_weekday(day) == 0 || s_weekday(day) == 6)
		day++;
	int64_t local = (int64_t)day * S_DAY + s_rand_range(r, 9, 16) * S_HOUR + s_rand_range(r, 0, 3) * 15 * S_MIN;
	return local - (int64_t)s_uk_offset_min(local - S_HOUR) * S_MIN;
}

/* A custody stay: mostly a few hours, a long tail to a day and more. */
static int64_t s_detention_secs(struct sim_rng *r)
{
	double h = 2.0 - log(1.0 - s_rand_f(r)) * 5.0;
	if (h > 30.0)
		h = 30.0;
	return (int64_t)(h * S_HOUR);
}

/* Start episode `type` at time t (live: at index idx). */
static int s_episode(struct sim_gen *g, enum sim_feed type, int64_t t, int64_t idx)
{
	struct sim_pending p = {0};
	struct sim_rng *r = &g->rng;
	int64_t horizon = g->live ? S_DAY : type == F_CUSTODY ? 3 * S_DAY : type == F_INTERVIEW ? 25 * S_DAY : S_DAY;
	int rc;

	if ((rc = s_pick_child(g, t, t + horizon, &p.child)) < 0)
		return rc;
	p.ep = g->next_ep++;
	p.feed = (uint8_t)type;

	/* The situations draw from a stream of their own per episode, so
	 * that a share set to 0 leaves the rest of the timeline as it was. */
	struct sim_rng xr;
	s_rng_init(&xr, g->o->seed, 0x5170, p.ep);
	double u_t18 = s_rand_f(&xr), u_late = s_rand_f(&xr);
	int64_t t18_at = s_rand_range(&xr, 0, 6 * S_HOUR), t18_out = s_rand_range(&xr, 2 * S_HOUR, 10 * S_HOUR);
	int32_t late_delay = s_late_delay(&xr);
	int64_t min_end = 0;  /* turning 18: the record's last status no earlier */

	if (type == F_CUSTODY && g->o->t18_pct > 0) {
		struct sim_child c;
		s_child_make(g->o, g->t, g->today, p.child, &c);
		if (s_age(c.dob, s_day_of(t)) == 17 && u_t18 < g->o->t18_pct / 100.0) {
			/* A 17-year-old arrives in the evening and is still held
			 * past midnight, into the 18th birthday: arrival the day
			 * before (live: yesterday), the last status on the day. */
			int32_t day = s_day_of(t + (int64_t)s_uk_offset_min(t) * S_MIN) - (g->live ? 1 : 0);
			int64_t a = 0;
			for (int k = 0; k < 3; k++, day++) {
				int64_t l = (int64_t)day * S_DAY + 17 * S_HOUR + t18_at;
				a = l - (int64_t)s_uk_offset_min(l) * S_MIN;
				if (g->live || a >= t + S_HOUR)
					break;
			}
			int32_t bday = s_day_of(a + (int64_t)s_uk_offset_min(a) * S_MIN) + 1;
			int y;
			unsigned m, d;
			yj_civil_from_days(bday, &y, &m, &d);
			/* not on 29 February: "turns 18" would be ambiguous */
			if (!(m == 2 && d == 29)) {
				int64_t l = (int64_t)bday * S_DAY + t18_out;
				min_end = l - (int64_t)s_uk_offset_min(l) * S_MIN;
				p.child = s_t18_idx(bday, p.ep);
				t = a;  /* the arrest (if any) is taken off below in live mode */
			}
		}
	}

	/* Live mode: a late episode happened a while ago, and every message
	 * of it carries the delay (history mode makes messages late one by
	 * one, in s_schedule). */
	if (g->live && !min_end && u_late < g->o->late_pct / 100.0) {
		p.late = late_delay;
		t -= late_delay;
	}

	switch (type) {
	case F_CUSTODY: {
		int linked = (g->o->feeds & (1u << F_ARREST)) && s_chance(r, 0.4);
		int64_t lead = linked ? s_rand_range(r, 15, 50) * S_MIN : 0;
		/* history: t is the arrest; turning 18 fixed the arrival instead */
		if (!g->live && min_end)
			t -= lead;
		/* live: the child arrives now, so the arrest lies in the past */
		if (g->live)
			t -= lead;
		int64_t t0 = t + lead;
		int path_w[SIM_COUNT(s_paths)];
		for (size_t i = 0; i < SIM_COUNT(s_paths); i++)
			path_w[i] = s_paths[i].weight;
		const struct sim_path *path = &s_paths[s_pick_weighted_int(r, path_w, SIM_COUNT(s_paths))];
		int64_t booked = t0 + s_rand_range(r, 5, 25) * S_MIN;
		int64_t stay = s_detention_secs(r);
		int64_t upd = t0 + s_rand_range(r, 40, 150) * S_MIN;
		int64_t step2 = s_rand_range(r, 60, 300) * S_MIN;
		int64_t court = s_rand_range(r, 0, 90) * S_MIN;
		int64_t live_gap1 = s_rand_range(r, 1, 3), live_gap2 = s_rand_range(r, 1, 48),
			live_gap3 = s_rand_range(r, 1, 48);

		p.t0 = t0;
		if (linked) {
			struct sim_pending a = p;
			a.feed = F_ARREST;
			a.linked = 1;
			a.t0 = t;
			if ((rc = s_schedule(g, &a, t + s_rand_range(r, 2, 10) * S_MIN, idx)) < 0)
				return rc;
		}
		p.status = CS_DETAINED;
		p.flags = S_PF_OPEN;
		int64_t ldue = idx + (linked ? live_gap1 : 0);
		if ((rc = s_schedule(g, &p, booked, ldue)) < 0)
			return rc;
		p.flags = 0;
		int64_t at = booked;
		for (int k = 0; k < path->n; k++) {
			int st = path->st[k];
			int64_t next;
			if (k == 0)
				next = st == CS_DETAINED ? (upd > booked ? upd : booked + 30 * S_MIN) : t0 + stay;
			else if (path->st[0] == CS_DETAINED)
				next = t0 + stay > at + 30 * S_MIN ? t0 + stay : at + 30 * S_MIN + stay / 4;
			else if (st == CS_RELEASED_OTHER) {
				/* remanded children go to the next morning's youth court */
				int64_t l = at + (int64_t)s_uk_offset_min(at) * S_MIN;
				int32_t day = s_day_of(l) + (s_local_hour(at) >= 6 ? 1 : 0);
				int64_t c9 = (int64_t)day * S_DAY + 9 * S_HOUR + 30 * S_MIN + court;
				next = c9 - (int64_t)s_uk_offset_min(c9) * S_MIN;
				if (next < at + S_HOUR)
					next = at + S_HOUR + court;
			} else
				next = at + step2;
			if (next <= at)
				next = at + 5 * S_MIN;
			if (k == path->n - 1 && next < min_end)
				next = min_end;
			at = next;
			ldue += k == 0 ? live_gap2 : live_gap3;
			p.status = (uint8_t)st;
			if ((rc = s_schedule(g, &p, at, ldue)) < 0)
				return rc;
		}
		break;
	}
	case F_ARREST:
		p.t0 = t;
		p.linked = 0;
		rc = s_schedule(g, &p, t + s_rand_range(r, 0, 20) * S_MIN, idx);
		break;
	case F_INTERVIEW: {
		int64_t slot = s_interview_slot(r, t);
		int held = s_chance(r, 0.78);
		int64_t after = s_rand_range(r, 45, 150) * S_MIN;
		int64_t before = s_rand_range(r, 1, 48) * S_HOUR;
		int64_t gap = s_rand_range(r, 1, 64);
		p.t0 = slot;
		p.status = IV_SCHEDULED;
		if ((rc = s_schedule(g, &p, t, idx)) < 0)
			return rc;
		int64_t when = held ? slot + after : slot - before;
		if (when <= t)
			when = t + S_HOUR;
		p.status = held ? IV_HELD : IV_CANCELLED;
		rc = s_schedule(g, &p, when, idx + gap);
		break;
	}
	case F_OUTCOME:
		p.t0 = t;
		rc = s_schedule(g, &p, t, idx);
		break;
	default:
		rc = YJ_EINVAL;
	}
	return rc;
}

static double s_prof(int office, int h)
{
	return office ? sim_hours_office[h] : sim_hours_street[h];
}

static int s_type_office(int type)
{
	return type == F_INTERVIEW || type == F_OUTCOME;
}

static int s_gen_init(struct sim_gen *g, const struct sim_opts *o, const struct sim_tables *t, int64_t now)
{
	/* Messages per episode on average (custody: detained plus 1.28 status
	 * changes; interviews: scheduled plus most outcomes): --per-day counts
	 * messages, so the episode rate divides by these. */
	static const double events_per[F_COUNT] = {2.28, 1.0, 1.85, 1.0};
	double wsum = 0, esum = 0;

	memset(g, 0, sizeof(*g));
	g->o = o;
	g->t = t;
	g->now = now;
	g->today = s_day_of(now);
	g->live = o->days == 0;
	g->end = now;
	g->start = now - o->days * S_DAY;
	g->limit = o->count;
	if (g->live && o->duration > 0) {
		uint64_t n = (uint64_t)llround(o->rate * o->duration);
		if (g->limit == 0 || n < g->limit)
			g->limit = n;
	}
	s_rng_init(&g->rng, o->seed, 0x713e, 0);
	snprintf(g->id_prefix, sizeof(g->id_prefix), "%s", o->id_prefix);

	/* The population does not depend on --count, so that a longer run
	 * starts with the same payloads as a shorter one. */
	if (o->children) {
		g->population = (uint32_t)o->children;
	} else if (g->live) {
		g->population = 5000;
	} else {
		double n = o->per_day * (double)o->days / 8.0;
		g->population = n < 200 ? 200 : n > 2000000 ? 2000000 : (uint32_t)n;
	}

	g->st.seen = calloc(g->population / 64 + 1, sizeof(uint64_t));
	if (!g->st.seen)
		return YJ_ENOMEM;

	for (int f = 0; f < F_COUNT; f++) {
		g->type_w[f] = (o->feeds & (1u << f)) ? s_type_weight[f] : 0.0;
		double e = events_per[f];
		if (f == F_CUSTODY && (o->feeds & (1u << F_ARREST)))
			e += 0.4;
		wsum += g->type_w[f];
		esum += g->type_w[f] * e;
	}
	if (wsum <= 0)
		return YJ_EINVAL;
	for (int f = 0; f < F_COUNT; f++)
		g->type_w[f] /= wsum;
	esum /= wsum;

	/* Thinning an inhomogeneous Poisson process per feed: candidates come
	 * at the peak combined rate, each kept with the hour's share. */
	for (int k = 0; k < 2; k++) {
		double s = 0;
		for (int h = 0; h < 24; h++)
			s += s_prof(k, h);
		g->prof_mean[k] = s / 24.0;
	}
	for (int h = 0; h < 24; h++) {
		double s = 0;
		for (int f = 0; f < F_COUNT; f++)
			s += g->type_w[f] * s_prof(s_type_office(f), h) / g->prof_mean[s_type_office(f)];
		if (s > g->prof_max_sum)
			g->prof_max_sum = s;
	}
	double episodes_per_sec = o->per_day / esum / S_DAY;
	g->cand_rate = episodes_per_sec * g->prof_max_sum;
	g->next_start = (double)g->start;
	if (!g->live && g->cand_rate > 0)
		g->next_start += -log(1.0 - s_rand_f(&g->rng)) / g->cand_rate;
	return 0;
}

static void s_gen_free(struct sim_gen *g)
{
	free(g->heap);
	g->heap = NULL;
	free(g->st.seen);
	g->st.seen = NULL;
	free(g->st.t18_seen);
	g->st.t18_seen = NULL;
}

static const char *s_disposal(const struct sim_tables *t, const struct yj_outcome *oc, int coin)
{
	for (size_t i = 0; i < t->n_oc; i++) {
		if (t->oc[i] == oc) {
			const char *d = t->oc_kind[i]->disposal;
			return d ? d : coin ? "youth_conditional_caution" : "youth_caution";
		}
	}
	return "other";
}

/* An outcome code valid on `day`, weighted towards what children get. */
static const struct yj_outcome *s_pick_outcome(const struct sim_tables *t, struct sim_rng *r, int32_t day)
{
	int w[SIM_COUNT(sim_outcome_kinds)];
	int any = 0;
	uint64_t u = s_rng_next(r);
	for (size_t i = 0; i < t->n_oc; i++) {
		int ok = t->oc[i]->valid_from <= day && day <= t->oc[i]->valid_to;
		w[i] = ok ? t->oc_kind[i]->weight : 0;
		any |= ok;
	}
	if (any) {
		struct sim_rng rr = {u};
		return t->oc[s_pick_weighted_int(&rr, w, t->n_oc)];
	}
	for (size_t k = 0; k < t->n_oc_all; k++) {
		const struct yj_outcome *oc = t->oc_all[(u + k) % t->n_oc_all];
		if (oc->valid_from <= day && day <= oc->valid_to)
			return oc;
	}
	return t->oc_all[u % t->n_oc_all];
}

/* Fill ev from pending p at time `when`. The episode's details come from
 * its own RNG, drawn in a fixed order, so every message of one custody
 * record repeats the same suite, offences and reason. */
static void s_build(struct sim_gen *g, const struct sim_pending *p, int64_t when, struct sim_event *ev)
{
	const struct sim_tables *t = g->t;
	struct sim_rng r;
	int y;
	unsigned mo, dd;

	memset(ev, 0, sizeof(*ev));
	if (g->live)
		when -= p->late;  /* a late episode happened that long before the clock */
	ev->feed = (enum sim_feed)p->feed;
	ev->n = g->emitted + 1;
	snprintf(ev->source_id, sizeof(ev->source_id), "%s-%" PRIu64, g->id_prefix, ev->n);
	ev->occurred = when;
	s_child_make(g->o, t, g->today, p->child, &ev->child);
	const struct sim_child *c = &ev->child;

	s_rng_init(&r, g->o->seed, 0xe915, p->ep);
	ev->local = s_chance(&r, 0.35);

	int n_off_w[3] = {80, 16, 4};
	int n_off = 1 + (int)s_pick_weighted_int(&r, n_off_w, 3);
	int has_off = s_chance(&r, 0.9);
	for (int i = 0; i < 3; i++) {
		size_t k = s_pick_weighted_int(&r, t->off_w, SIM_COUNT(sim_offences));
		if (i < n_off)
			ev->off[i] = &sim_offences[k];
	}
	/* an arrest that opens a custody episode is for the same offences */
	if (ev->feed == F_CUSTODY || p->linked) {
		ev->n_off = ev->feed == F_ARREST && n_off > 2 ? 2 : n_off;
	} else if (has_off) {
		ev->n_off = ev->feed == F_ARREST ? (n_off > 2 ? 2 : n_off) : 1;
	}
	/* Markers that hold details for the officer in the case (routing.md):
	 * a custody record (and the arrest that opened it) for a serious
	 * offence, some also MAPPA; a live investigation on any feed. Drawn
	 * per episode from a stream of their own; the draws the markers took
	 * before stay, so that nothing else in the episode moves. */
	(void)s_chance(&r, 0.03);
	(void)s_chance(&r, 0.3);
	(void)s_rand_range(&r, 1000, 9999);
	(void)s_rand_u(&r, SIM_COUNT(sim_adult_family));
	struct sim_rng mr;
	s_rng_init(&mr, g->o->seed, 0x4a7d, p->ep);
	double u_serious = s_rand_f(&mr), u_mappa = s_rand_f(&mr), u_live = s_rand_f(&mr);
	size_t oic = s_rand_u(&mr, SIM_COUNT(sim_officers));
	size_t grave = s_rand_u(&mr, SIM_COUNT(sim_offences));
	if ((ev->feed == F_CUSTODY || p->linked) && u_serious < g->o->serious_pct / 100.0) {
		ev->m_serious = 1;
		/* the offence is one that warrants it: the first serious one on
		 * from a drawn place in the list */
		for (size_t k = 0; k < SIM_COUNT(sim_offences); k++) {
			const struct sim_offence *of = &sim_offences[(grave + k) % SIM_COUNT(sim_offences)];
			if (of->serious) {
				ev->off[0] = of;
				break;
			}
		}
		if (ev->n_off == 0)
			ev->n_off = 1;
	}
	ev->m_live = u_live < g->o->live_pct / 100.0;
	ev->m_court_order = c->court_order;
	ev->m_mappa = c->mappa || (ev->m_serious && u_mappa < 0.25);
	if (ev->m_live || ev->m_serious)
		snprintf(ev->officer, sizeof(ev->officer), "%s", sim_officers[oic]);
	ev->has_markers = ev->m_live || ev->m_serious || ev->m_mappa || ev->m_court_order || ev->officer[0];

	int has_asn = s_chance(&r, 0.6);
	uint32_t asn_no = (uint32_t)s_rand_range(&r, 1, 9999999);
	yj_civil_from_days(s_day_of(p->t0), &y, &mo, &dd);
	if (has_asn) {
		static const char check[] = "ABCDEFGHJKLMNPQRTUVWXYZ";
		snprintf(ev->asn, sizeof(ev->asn), "%02d/%02d%c%c/01/%07" PRIu32 "%c", y % 100, t->force_no,
			 t->prefix[0], t->prefix[1] ? t->prefix[1] : 'X', asn_no, check[asn_no % 23]);
	}

	/* custody suite: usually the one in the child's own authority */
	const struct yj_suite *suite = NULL;
	double us = s_rand_f(&r);
	uint64_t spick = s_rng_next(&r);
	if (t->n_suites) {
		size_t n_local = 0;
		if (c->home && us < 0.75) {
			for (size_t i = 0; i < t->n_suites; i++)
				n_local += strcmp(t->suites[i]->la, c->home->code) == 0;
		}
		if (n_local) {
			size_t want = spick % n_local;
			for (size_t i = 0; i < t->n_suites; i++) {
				if (strcmp(t->suites[i]->la, c->home->code) == 0 && want-- == 0) {
					suite = t->suites[i];
					break;
				}
			}
		} else {
			suite = t->suites[spick % t->n_suites];
		}
	}

	int has_aa = s_chance(&r, 0.6);
	int aa_f = s_chance(&r, 0.7);
	size_t aa_rel_i = s_rng_next(&r);
	const char *aa_given = aa_f ? sim_adult_given_f[s_rand_u(&r, SIM_COUNT(sim_adult_given_f))]
				    : sim_adult_given_m[s_rand_u(&r, SIM_COUNT(sim_adult_given_m))];
	const char *aa_family = sim_adult_family[s_rand_u(&r, SIM_COUNT(sim_adult_family))];
	int64_t aa_called = p->t0 + s_rand_range(&r, 10, 40) * S_MIN;
	int64_t aa_arrived = aa_called + s_rand_range(&r, 30, 150) * S_MIN;
	size_t reason_i = s_rand_u(&r, SIM_COUNT(sim_reasons));
	int has_reason = s_chance(&r, 0.6);
	int has_loc = s_chance(&r, 0.9);
	int summons = s_chance(&r, 0.35);
	int arrest_loc = s_chance(&r, 0.8);
	uint64_t loc_pick = s_rng_next(&r);
	uint32_t urn = (uint32_t)s_rand_range(&r, 1, 99999);
	int has_offence_date = s_chance(&r, 0.7);
	int64_t offence_ago = s_rand_range(&r, 14, 240);
	int coin = s_chance(&r, 0.4);

	switch (ev->feed) {
	case F_CUSTODY: {
		snprintf(ev->record_id, sizeof(ev->record_id), "%s-CR-%02d-%07" PRIu32, t->prefix, y % 100, p->ep + 1);
		ev->suite = suite;
		ev->arrived_at = p->t0;
		ev->status = s_custody_status[p->status];
		ev->status_at = when;
		if (has_aa) {
			const char *rel;
			if (c->looked_after)
				rel = sim_aa_care_rel[aa_rel_i % SIM_COUNT(sim_aa_care_rel)];
			else if (aa_rel_i % 8 == 7)
				rel = "independent appropriate adult";
			else
				rel = aa_f ? sim_aa_family_rel_f[aa_rel_i % SIM_COUNT(sim_aa_family_rel_f)]
					   : sim_aa_family_rel_m[aa_rel_i % SIM_COUNT(sim_aa_family_rel_m)];
			/* family members share the child's surname */
			int family = strcmp(rel, "independent appropriate adult") != 0 && !c->looked_after;
			ev->has_aa = 1;
			ev->aa_rel = rel;
			snprintf(ev->aa_name, sizeof(ev->aa_name), "%s %s", aa_given, family ? c->family : aa_family);
			if (aa_called <= when)
				ev->aa_called = aa_called;
			if (aa_arrived <= when)
				ev->aa_arrived = aa_arrived;
		}
		if (has_reason) {
			char what[160];
			snprintf(what, sizeof(what), "%s", ev->off[0]->description);
			if (what[0] >= 'A' && what[0] <= 'Z')
				what[0] = (char)(what[0] + 32);
			snprintf(ev->reason, sizeof(ev->reason), sim_reasons[reason_i], what);
		}
		break;
	}
	case F_ARREST:
		snprintf(ev->arrest_id, sizeof(ev->arrest_id), "%s-AR-%02d-%07" PRIu32, t->prefix, y % 100, p->ep + 1);
		ev->arrested_at = p->t0;
		ev->summons = p->linked ? 0 : summons;
		if (p->linked && suite)
			ev->location_la = yj_ref_la(t->ref, suite->la);
		else if (arrest_loc)
			ev->location_la = (c->home && strcmp(c->home->force, t->force->code) == 0 && (loc_pick & 1))
						  ? c->home
						  : t->own[(loc_pick >> 1) % t->n_own];
		if (ev->location_la && !ev->location_la->upper_tier)
			ev->location_la = yj_ref_la(t->ref, ev->location_la->upper_code);
		break;
	case F_INTERVIEW:
		snprintf(ev->interview_id, sizeof(ev->interview_id), "%s-VI-%02d-%07" PRIu32, t->prefix, y % 100, p->ep + 1);
		ev->iv_status = s_iv_status[p->status];
		/* live mode compresses the weeks to the next slot into seconds, so
		 * a held interview took place just now rather than in the future */
		ev->iv_at = (g->live && p->status == IV_HELD) ? when - 45 * S_MIN : p->t0;
		if (has_loc && suite)
			snprintf(ev->iv_location, sizeof(ev->iv_location), "%s Police Station", suite->name);
		ev->asn[0] = '\0';
		break;
	case F_OUTCOME: {
		const struct yj_outcome *oc = s_pick_outcome(t, &r, s_day_of(when));
		snprintf(ev->case_ref, sizeof(ev->case_ref), "%02d%c%c%05" PRIu32 "%02d", t->force_no, t->prefix[0],
			 t->prefix[1] ? t->prefix[1] : 'X', urn, y % 100);
		ev->code = oc->code;
		ev->disposal = s_disposal(t, oc, coin);
		{
			/* now and then a code that cannot apply to a child */
			struct sim_rng orr;
			s_rng_init(&orr, g->o->seed, 0x0bad, p->ep);
			double u = s_rand_f(&orr);
			int w[SIM_COUNT(sim_adult_outcomes)];
			for (size_t i = 0; i < SIM_COUNT(sim_adult_outcomes); i++) {
				const struct yj_outcome *ao = yj_ref_outcome(t->ref, sim_adult_outcomes[i].code);
				int32_t day = s_day_of(when);
				w[i] = ao && ao->valid_from <= day && day <= ao->valid_to ? sim_adult_outcomes[i].weight : 0;
			}
			size_t k = s_pick_weighted_int(&orr, w, SIM_COUNT(w));
			if (u < g->o->adult_oc_pct / 100.0 && w[k] > 0) {
				ev->code = sim_adult_outcomes[k].code;
				ev->disposal = sim_adult_outcomes[k].disposal;
				ev->adult_code = 1;
			}
		}
		ev->decided_at = when;
		int32_t od = s_day_of(when) - (int32_t)offence_ago;
		/* the age rule moves to the offence date: keep it within 10..17 */
		if (has_offence_date && s_age(c->dob, od - 1) >= 10) {
			ev->has_offence_date = 1;
			ev->offence_date = od;
		}
		break;
	}
	default:
		break;
	}

	/* the age the child looks on the date its feed is age-checked on */
	if (c->dob_unknown) {
		int64_t on = ev->feed == F_CUSTODY ? ev->arrived_at
			   : ev->feed == F_ARREST  ? ev->arrested_at
			   : ev->feed == F_INTERVIEW ? ev->iv_at
						     : ev->occurred;
		ev->apparent_age = s_apparent_age(c, ev->feed == F_OUTCOME && ev->has_offence_date ? ev->offence_date
												       : s_day_of(on));
	}
}

static void s_count(struct sim_gen *g, const struct sim_pending *p, const struct sim_event *ev)
{
	struct sim_stats *st = &g->st;
	const struct sim_child *c = &ev->child;
	int nodob = ev->apparent_age && !g->o->protobuf;

	st->msgs++;
	st->by_feed[ev->feed]++;
	st->late += p->late > 0 && !(p->flags & S_PF_HELD);
	st->held += (p->flags & S_PF_HELD) != 0;
	st->nodob_msgs += nodob;
	st->lac_unk_msgs += c->lac_unknown;
	st->live += ev->m_live;
	st->officer += ev->officer[0] != 0;
	if (ev->feed == F_CUSTODY) {
		st->custody_serious += ev->m_serious;
		st->custody_mappa += ev->m_mappa;
		if (c->turns_18) {
			st->t18_records += (p->flags & S_PF_OPEN) != 0;
			int32_t sday = s_day_of(ev->status_at + (int64_t)s_uk_offset_min(ev->status_at) * S_MIN);
			st->t18_after += sday >= s_t18_birthday(p->child);
		}
	}
	if (ev->feed == F_OUTCOME) {
		st->adult_outcomes += ev->adult_code;
		st->yc += strcmp(ev->disposal, "youth_caution") == 0;
		st->ycc += strcmp(ev->disposal, "youth_conditional_caution") == 0;
	}
	/* children: once each */
	if (p->child & S_T18_BIT) {
		for (size_t i = 0; i < st->n_t18; i++) {
			if (st->t18_seen[i] == p->child)
				return;
		}
		if (st->n_t18 == st->cap_t18) {
			size_t cap = st->cap_t18 ? st->cap_t18 * 2 : 64;
			uint32_t *n = realloc(st->t18_seen, cap * sizeof(*n));
			if (!n)
				return;  /* only a count */
			st->t18_seen = n;
			st->cap_t18 = cap;
		}
		st->t18_seen[st->n_t18++] = p->child;
	} else {
		if (p->child >= g->population || !st->seen)
			return;
		uint64_t bit = 1ULL << (p->child % 64);
		if (st->seen[p->child / 64] & bit)
			return;
		st->seen[p->child / 64] |= bit;
	}
	st->children++;
	st->nodob_children += nodob;
	st->lac_unk_children += c->lac_unknown;
	st->lac_children += c->looked_after;
	st->lac_other_la += c->looked_after && c->responsible != c->home;
	st->nfa_children += c->home == NULL;
	if (c->home && strcmp(c->home->force, g->t->force->code) != 0) {
		st->away_children++;
		size_t i = 0;
		while (i < st->n_away_las && st->away_las[i] != c->home)
			i++;
		if (i == st->n_away_las && i < SIM_COUNT(st->away_las))
			st->away_las[st->n_away_las++] = c->home;
	}
}

/* The situations line (--stats): counts of each situation produced. */
static void s_stats_line(FILE *f, const struct sim_gen *g)
{
	const struct sim_stats *st = &g->st;
	fprintf(f,
		"situations: messages=%" PRIu64 " custody=%" PRIu64 " arrest=%" PRIu64 " voluntary_interview=%" PRIu64
		" outcome=%" PRIu64 " late=%" PRIu64 " quiet_held=%" PRIu64 " quiet_dropped=%" PRIu64
		" turning_18_records=%" PRIu64 " turning_18_after_birthday=%" PRIu64 " custody_serious=%" PRIu64
		" custody_mappa=%" PRIu64 " live_investigation=%" PRIu64 " officer_in_case=%" PRIu64
		" adult_outcome_code=%" PRIu64 " youth_caution=%" PRIu64 " youth_conditional_caution=%" PRIu64
		" unknown_dob_msgs=%" PRIu64 " lac_unknown_msgs=%" PRIu64 " children=%" PRIu64
		" unknown_dob_children=%" PRIu64 " lac_unknown_children=%" PRIu64 " looked_after_children=%" PRIu64
		" looked_after_other_la=%" PRIu64 " no_fixed_abode_children=%" PRIu64 " out_of_area_children=%" PRIu64
		" out_of_area_las=%zu\n",
		st->msgs, st->by_feed[F_CUSTODY], st->by_feed[F_ARREST], st->by_feed[F_INTERVIEW], st->by_feed[F_OUTCOME],
		st->late, st->held, st->quiet_dropped, st->t18_records, st->t18_after, st->custody_serious,
		st->custody_mappa, st->live, st->officer, st->adult_outcomes, st->yc, st->ycc, st->nodob_msgs,
		st->lac_unk_msgs, st->children, st->nodob_children, st->lac_unk_children, st->lac_children,
		st->lac_other_la, st->nfa_children, st->away_children, st->n_away_las);
	fflush(f);
}

/* 1 with *ev filled, 0 at the end of the stream, or a negative code. */
static int s_gen_next(struct sim_gen *g, struct sim_event *ev)
{
	struct sim_pending p;
	int rc;

	if (g->limit && g->emitted >= g->limit)
		return 0;
	if (g->live) {
		int64_t i = (int64_t)g->emitted;
		int64_t when = g->now + (g->o->rate > 0 ? (int64_t)floor((double)i / g->o->rate) : 0);
		for (;;) {
			if (g->n_heap == 0 || g->heap[0].due > i) {
				double u = s_rand_f(&g->rng), acc = 0;
				enum sim_feed type = F_OUTCOME;
				for (int f = 0; f < F_COUNT; f++) {
					acc += g->type_w[f];
					if (g->type_w[f] > 0 && u < acc) {
						type = (enum sim_feed)f;
						break;
					}
				}
				if ((rc = s_episode(g, type, when, i)) < 0)
					return rc;
			}
			s_heap_pop(g, &p);
			if (g->o->n_quiet) {
				/* a quiet feed holds the message until it resumes: it goes
				 * out then, with the time it happened */
				int64_t until = s_quiet_until(g->o, p.feed, when - g->now);
				if (until >= 0) {
					int64_t j = (int64_t)ceil((double)until * g->o->rate);
					if (j <= i)
						j = i + 1;
					int64_t later = g->now + (int64_t)floor((double)j / g->o->rate);
					p.late += (int32_t)(later - when);
					p.due = j;
					p.flags |= S_PF_HELD;
					if ((rc = s_heap_push(g, &p)) < 0)
						return rc;
					continue;
				}
			}
			s_build(g, &p, when, ev);
			s_count(g, &p, ev);
			g->emitted++;
			return 1;
		}
	}

	while (g->cand_rate > 0 && g->next_start <= (double)g->end &&
	       (g->n_heap == 0 || g->next_start <= (double)g->heap[0].due)) {
		int64_t t = (int64_t)floor(g->next_start);
		int h = s_local_hour(t);
		double v[F_COUNT], sum = 0;
		for (int f = 0; f < F_COUNT; f++) {
			v[f] = g->type_w[f] * s_prof(s_type_office(f), h) / g->prof_mean[s_type_office(f)];
			sum += v[f];
		}
		double u = s_rand_f(&g->rng) * g->prof_max_sum;
		if (u < sum) {
			enum sim_feed type = F_OUTCOME;
			double acc = 0;
			for (int f = 0; f < F_COUNT; f++) {
				acc += v[f];
				if (v[f] > 0 && u < acc) {
					type = (enum sim_feed)f;
					break;
				}
			}
			if ((rc = s_episode(g, type, t, 0)) < 0)
				return rc;
		}
		g->next_start += -log(1.0 - s_rand_f(&g->rng)) / g->cand_rate;
	}
	if (g->n_heap == 0)
		return 0;
	s_heap_pop(g, &p);
	s_build(g, &p, p.at, ev);
	s_count(g, &p, ev);
	g->emitted++;
	return 1;
}

/* ----------------------------------------------------------- serialisation */

static int s_event_json(const struct sim_event *ev, const char *force, struct sim_buf *b)
{
	const struct sim_child *c = &ev->child;
	int first = 1, f2;
	char date[16];

	b->len = 0;
	s_buf_add(b, "{", 1);
	s_buf_kstr(b, &first, "source_id", ev->source_id);
	s_buf_kstr(b, &first, "force", force);
	s_buf_kts(b, &first, "occurred_at", ev->occurred, ev->local);

	s_buf_puts(b, ",\"child\":{");
	f2 = 1;
	s_buf_kstr(b, &f2, "person_id", c->person_id);
	if (c->pnc_id[0])
		s_buf_kstr(b, &f2, "pnc_id", c->pnc_id);
	s_buf_kstr(b, &f2, "given_name", c->given);
	s_buf_kstr(b, &f2, "family_name", c->family);
	if (ev->apparent_age) {
		s_buf_printf(b, ",\"apparent_age\":%d", ev->apparent_age);
	} else {
		s_fmt_date(date, sizeof(date), c->dob);
		s_buf_kstr(b, &f2, "date_of_birth", date);
	}
	if (c->gender)
		s_buf_kstr(b, &f2, "gender", c->gender);
	if (c->ethnicity)
		s_buf_kstr(b, &f2, "ethnicity", c->ethnicity);
	if (c->home)
		s_buf_kstr(b, &f2, "home_la", c->home->code);
	if (c->postcode[0])
		s_buf_kstr(b, &f2, "home_postcode", c->postcode);
	if (!c->lac_unknown)
		s_buf_kbool(b, &f2, "looked_after", c->looked_after);
	if (c->looked_after)
		s_buf_kstr(b, &f2, "responsible_la", c->responsible->code);
	if (c->has_sw) {
		int f3 = 1;
		s_buf_puts(b, ",\"social_worker\":{");
		s_buf_kstr(b, &f3, "name", c->sw_name);
		s_buf_kstr(b, &f3, "email", c->sw_email);
		if (c->sw_phone[0])
			s_buf_kstr(b, &f3, "phone", c->sw_phone);
		s_buf_puts(b, "}");
	}
	s_buf_puts(b, "}");

	if (ev->n_off) {
		s_buf_puts(b, ",\"offences\":[");
		for (int i = 0; i < ev->n_off; i++) {
			int f3 = 1;
			s_buf_puts(b, i ? ",{" : "{");
			s_buf_kstr(b, &f3, "code", ev->off[i]->code);
			s_buf_kstr(b, &f3, "description", ev->off[i]->description);
			s_buf_puts(b, "}");
		}
		s_buf_puts(b, "]");
	}
	if (ev->has_markers) {
		f2 = 1;
		s_buf_puts(b, ",\"markers\":{");
		s_buf_kbool(b, &f2, "live_investigation", ev->m_live);
		s_buf_kbool(b, &f2, "serious_offence", ev->m_serious);
		s_buf_kbool(b, &f2, "mappa", ev->m_mappa);
		s_buf_kbool(b, &f2, "court_order", ev->m_court_order);
		if (ev->officer[0])
			s_buf_kstr(b, &f2, "officer_in_case", ev->officer);
		s_buf_puts(b, "}");
	}

	f2 = 1;
	switch (ev->feed) {
	case F_CUSTODY:
		s_buf_puts(b, ",\"custody\":{");
		s_buf_kstr(b, &f2, "record_id", ev->record_id);
		s_buf_kstr(b, &f2, "suite", ev->suite->id);
		s_buf_kts(b, &f2, "arrived_at", ev->arrived_at, ev->local);
		s_buf_kstr(b, &f2, "status", ev->status);
		s_buf_kts(b, &f2, "status_at", ev->status_at, ev->local);
		if (ev->asn[0])
			s_buf_kstr(b, &f2, "asn", ev->asn);
		if (ev->has_aa) {
			int f3 = 1;
			s_buf_puts(b, ",\"appropriate_adult\":{");
			s_buf_kstr(b, &f3, "name", ev->aa_name);
			s_buf_kstr(b, &f3, "relationship", ev->aa_rel);
			if (ev->aa_called)
				s_buf_kts(b, &f3, "called_at", ev->aa_called, ev->local);
			if (ev->aa_arrived)
				s_buf_kts(b, &f3, "arrived_at", ev->aa_arrived, ev->local);
			s_buf_puts(b, "}");
		}
		if (ev->reason[0])
			s_buf_kstr(b, &f2, "reason", ev->reason);
		break;
	case F_ARREST:
		s_buf_puts(b, ",\"arrest\":{");
		s_buf_kstr(b, &f2, "arrest_id", ev->arrest_id);
		s_buf_kts(b, &f2, "arrested_at", ev->arrested_at, ev->local);
		if (ev->asn[0])
			s_buf_kstr(b, &f2, "asn", ev->asn);
		if (ev->location_la)
			s_buf_kstr(b, &f2, "location_la", ev->location_la->code);
		s_buf_kbool(b, &f2, "summons", ev->summons);
		break;
	case F_INTERVIEW:
		s_buf_puts(b, ",\"interview\":{");
		s_buf_kstr(b, &f2, "interview_id", ev->interview_id);
		s_buf_kstr(b, &f2, "status", ev->iv_status);
		s_buf_kts(b, &f2, "at", ev->iv_at, ev->local);
		if (ev->iv_location[0])
			s_buf_kstr(b, &f2, "location", ev->iv_location);
		break;
	case F_OUTCOME:
		s_buf_puts(b, ",\"outcome\":{");
		s_buf_kstr(b, &f2, "case_ref", ev->case_ref);
		if (ev->asn[0])
			s_buf_kstr(b, &f2, "asn", ev->asn);
		s_buf_printf(b, ",\"code\":%d", ev->code);
		s_buf_kts(b, &f2, "decided_at", ev->decided_at, ev->local);
		if (ev->has_offence_date) {
			s_fmt_date(date, sizeof(date), ev->offence_date);
			s_buf_kstr(b, &f2, "offence_date", date);
		}
		s_buf_kstr(b, &f2, "disposal", ev->disposal);
		break;
	default:
		break;
	}
	s_buf_puts(b, "}}");
	return b->oom ? YJ_ENOMEM : 0;
}

static void s_pb_time(Yjlink__V1__Time *pt, int64_t t, int local)
{
	yjlink__v1__time__init(pt);
	pt->has_unix_us = 1;
	pt->unix_us = t * 1000000;
	pt->has_offset_minutes = 1;
	pt->offset_minutes = local ? s_uk_offset_min(t) : 0;
}

/* protoc-c declares strings char *; the packer never writes through them. */
#define S_PBSTR(s) ((char *)(uintptr_t)(s))

static int s_event_pb(const struct sim_event *ev, const char *force, struct sim_buf *b)
{
	const struct sim_child *c = &ev->child;
	Yjlink__V1__Event e;
	Yjlink__V1__Child ch;
	Yjlink__V1__SocialWorker sw;
	Yjlink__V1__Offence off[3], *offp[3];
	Yjlink__V1__Markers mk;
	Yjlink__V1__Custody cu;
	Yjlink__V1__AppropriateAdult aa;
	Yjlink__V1__Arrest ar;
	Yjlink__V1__Interview iv;
	Yjlink__V1__Outcome oc;
	Yjlink__V1__Time t_occ, t_a, t_b, t_c, t_d;
	char dob[16], od[16];

	yjlink__v1__event__init(&e);
	e.source_id = S_PBSTR(ev->source_id);
	e.force = S_PBSTR(force);
	s_pb_time(&t_occ, ev->occurred, ev->local);
	e.occurred_at = &t_occ;

	yjlink__v1__child__init(&ch);
	ch.person_id = S_PBSTR(c->person_id);
	ch.pnc_id = c->pnc_id[0] ? S_PBSTR(c->pnc_id) : NULL;
	ch.given_name = S_PBSTR(c->given);
	ch.family_name = S_PBSTR(c->family);
	s_fmt_date(dob, sizeof(dob), c->dob);
	ch.date_of_birth = dob;
	ch.gender = S_PBSTR(c->gender);
	ch.ethnicity = S_PBSTR(c->ethnicity);
	ch.home_la = c->home ? S_PBSTR(c->home->code) : NULL;
	ch.home_postcode = c->postcode[0] ? S_PBSTR(c->postcode) : NULL;
	/* yjlink.v1.Child has no apparent_age (yet): an unknown date of birth
	 * goes as the date the simulator knows */
	ch.has_looked_after = !c->lac_unknown;
	ch.looked_after = c->looked_after;
	ch.responsible_la = c->looked_after ? S_PBSTR(c->responsible->code) : NULL;
	if (c->has_sw) {
		yjlink__v1__social_worker__init(&sw);
		sw.name = S_PBSTR(c->sw_name);
		sw.email = S_PBSTR(c->sw_email);
		sw.phone = c->sw_phone[0] ? S_PBSTR(c->sw_phone) : NULL;
		ch.social_worker = &sw;
	}
	e.child = &ch;

	for (int i = 0; i < ev->n_off; i++) {
		yjlink__v1__offence__init(&off[i]);
		off[i].code = S_PBSTR(ev->off[i]->code);
		off[i].description = S_PBSTR(ev->off[i]->description);
		offp[i] = &off[i];
	}
	e.n_offences = (size_t)ev->n_off;
	e.offences = ev->n_off ? offp : NULL;

	if (ev->has_markers) {
		yjlink__v1__markers__init(&mk);
		mk.has_live_investigation = mk.has_serious_offence = mk.has_mappa = mk.has_court_order = 1;
		mk.live_investigation = ev->m_live;
		mk.serious_offence = ev->m_serious;
		mk.mappa = ev->m_mappa;
		mk.court_order = ev->m_court_order;
		mk.officer_in_case = ev->officer[0] ? S_PBSTR(ev->officer) : NULL;
		e.markers = &mk;
	}

	switch (ev->feed) {
	case F_CUSTODY:
		yjlink__v1__custody__init(&cu);
		cu.record_id = S_PBSTR(ev->record_id);
		cu.suite = S_PBSTR(ev->suite->id);
		s_pb_time(&t_a, ev->arrived_at, ev->local);
		cu.arrived_at = &t_a;
		cu.status = S_PBSTR(ev->status);
		s_pb_time(&t_b, ev->status_at, ev->local);
		cu.status_at = &t_b;
		cu.asn = ev->asn[0] ? S_PBSTR(ev->asn) : NULL;
		if (ev->has_aa) {
			yjlink__v1__appropriate_adult__init(&aa);
			aa.name = S_PBSTR(ev->aa_name);
			aa.relationship = S_PBSTR(ev->aa_rel);
			if (ev->aa_called) {
				s_pb_time(&t_c, ev->aa_called, ev->local);
				aa.called_at = &t_c;
			}
			if (ev->aa_arrived) {
				s_pb_time(&t_d, ev->aa_arrived, ev->local);
				aa.arrived_at = &t_d;
			}
			cu.appropriate_adult = &aa;
		}
		cu.reason = ev->reason[0] ? S_PBSTR(ev->reason) : NULL;
		e.body_case = YJLINK__V1__EVENT__BODY_CUSTODY;
		e.custody = &cu;
		break;
	case F_ARREST:
		yjlink__v1__arrest__init(&ar);
		ar.arrest_id = S_PBSTR(ev->arrest_id);
		s_pb_time(&t_a, ev->arrested_at, ev->local);
		ar.arrested_at = &t_a;
		ar.asn = ev->asn[0] ? S_PBSTR(ev->asn) : NULL;
		ar.location_la = ev->location_la ? S_PBSTR(ev->location_la->code) : NULL;
		ar.has_summons = 1;
		ar.summons = ev->summons;
		e.body_case = YJLINK__V1__EVENT__BODY_ARREST;
		e.arrest = &ar;
		break;
	case F_INTERVIEW:
		yjlink__v1__interview__init(&iv);
		iv.interview_id = S_PBSTR(ev->interview_id);
		iv.status = S_PBSTR(ev->iv_status);
		s_pb_time(&t_a, ev->iv_at, ev->local);
		iv.at = &t_a;
		iv.location = ev->iv_location[0] ? S_PBSTR(ev->iv_location) : NULL;
		e.body_case = YJLINK__V1__EVENT__BODY_INTERVIEW;
		e.interview = &iv;
		break;
	case F_OUTCOME:
		yjlink__v1__outcome__init(&oc);
		oc.case_ref = S_PBSTR(ev->case_ref);
		oc.asn = ev->asn[0] ? S_PBSTR(ev->asn) : NULL;
		oc.has_code = 1;
		oc.code = ev->code;
		s_pb_time(&t_a, ev->decided_at, ev->local);
		oc.decided_at = &t_a;
		if (ev->has_offence_date) {
			s_fmt_date(od, sizeof(od), ev->offence_date);
			oc.offence_date = od;
		}
		oc.disposal = S_PBSTR(ev->disposal);
		e.body_case = YJLINK__V1__EVENT__BODY_OUTCOME;
		e.outcome = &oc;
		break;
	default:
		return YJ_EINVAL;
	}

	size_t n = yjlink__v1__event__get_packed_size(&e);
	b->len = 0;
	s_buf_reserve(b, n);
	if (b->oom)
		return YJ_ENOMEM;
	b->len = yjlink__v1__event__pack(&e, (uint8_t *)b->p);
	return 0;
}

static int s_serialise(const struct sim_opts *o, const struct sim_event *ev, struct sim_buf *b)
{
	return o->protobuf ? s_event_pb(ev, o->force, b) : s_event_json(ev, o->force, b);
}

/* ------------------------------------------------------------------ pacing */

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
	(void)sig;
	/* a second ^C means now: the drain may be waiting on a dead daemon */
	if (s_stop)
		_exit(EXIT_FAIL);
	s_stop = 1;
}

static void s_sleep_until(int64_t mono_us)
{
	int64_t now = s_mono_us();
	if (mono_us <= now)
		return;
	struct timespec ts = {(time_t)((mono_us - now) / 1000000), (long)((mono_us - now) % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

struct sim_counts {
	uint64_t sent, ok, dup, reject, retry, failed;
};

/* rate: answered events per second when sending, written ones otherwise */
static void s_summary(FILE *f, const struct sim_counts *k, uint64_t done, int64_t t0_us)
{
	double el = (double)(s_mono_us() - t0_us) / 1e6;
	fprintf(f, "sent=%" PRIu64 " ok=%" PRIu64 " dup=%" PRIu64 " reject=%" PRIu64 " retry=%" PRIu64
		   " elapsed=%.3f rate=%.1f\n",
		k->sent, k->ok, k->dup, k->reject, k->retry, el, el > 0 ? (double)done / el : 0.0);
	fflush(f);
}

/* ------------------------------------------------------------- file output */

struct sim_spool {
	FILE *f[F_COUNT];
	char tmp[F_COUNT][4096];
	char dst[F_COUNT][4096];
};

static int s_spool_open(struct sim_spool *s, const char *dir, int64_t now, enum sim_feed feed)
{
	char stamp[32];
	int32_t day = s_day_of(now);
	int64_t sod = now - (int64_t)day * S_DAY;
	int y;
	unsigned m, d;

	yj_civil_from_days(day, &y, &m, &d);
	snprintf(stamp, sizeof(stamp), "%04d%02u%02uT%02d%02d", y, m, d, (int)(sod / S_HOUR), (int)(sod % S_HOUR / S_MIN));
	/* written under a dot name and renamed in at the end, so a watching
	 * daemon never takes a half-written file */
	snprintf(s->dst[feed], sizeof(s->dst[feed]), "%s/%s-%s.jsonl", dir, s_feed_names[feed], stamp);
	snprintf(s->tmp[feed], sizeof(s->tmp[feed]), "%s/.%s-%s.jsonl.tmp", dir, s_feed_names[feed], stamp);
	s->f[feed] = fopen(s->tmp[feed], "w");
	if (!s->f[feed]) {
		int rc = -errno;
		fprintf(stderr, "yjlink-sim: %s: %s\n", s->tmp[feed], strerror(errno));
		return rc;
	}
	return 0;
}

/* Close and publish every file; on failure (ok == 0) remove them instead.
 * Existing targets are checked for first so that a clash publishes none of
 * the set rather than some of it. */
static int s_spool_close(struct sim_spool *s, int ok)
{
	int rc = 0;
	for (int f = 0; ok && f < F_COUNT; f++) {
		if (s->f[f] && access(s->dst[f], F_OK) == 0) {
			fprintf(stderr, "yjlink-sim: %s exists already\n", s->dst[f]);
			rc = YJ_EEXIST;
		}
	}
	for (int f = 0; f < F_COUNT; f++) {
		if (!s->f[f])
			continue;
		if (fclose(s->f[f]) != 0 && rc == 0) {
			rc = -errno;
			fprintf(stderr, "yjlink-sim: %s: %s\n", s->tmp[f], strerror(errno));
		}
		s->f[f] = NULL;
		if (ok && rc == 0) {
			if (renameat2(AT_FDCWD, s->tmp[f], AT_FDCWD, s->dst[f], RENAME_NOREPLACE) != 0) {
				rc = -errno;
				fprintf(stderr, "yjlink-sim: cannot publish %s: %s\n", s->dst[f], strerror(errno));
			}
		}
		if (!ok || rc < 0)
			unlink(s->tmp[f]);
	}
	return rc;
}

static int s_run_files(const struct sim_opts *o, struct sim_gen *g, int64_t now, struct sim_counts *k)
{
	struct sim_spool sp;
	struct sim_event ev;
	struct sim_buf b = {0};
	FILE *out = NULL;
	int own_out = 0, rc = 0, r = 0;
	int64_t t0 = s_mono_us();

	memset(&sp, 0, sizeof(sp));
	if (o->to_stdout) {
		out = stdout;
	} else if (o->jsonl) {
		if (strcmp(o->jsonl, "-") == 0) {
			out = stdout;
		} else {
			out = fopen(o->jsonl, "w");
			if (!out) {
				rc = -errno;
				fprintf(stderr, "yjlink-sim: %s: %s\n", o->jsonl, strerror(errno));
				goto out;
			}
			own_out = 1;
		}
	}

	while (!s_stop && (r = s_gen_next(g, &ev)) > 0) {
		if (o->rate > 0)
			s_sleep_until(t0 + (int64_t)((double)k->sent * 1e6 / o->rate));
		if ((rc = s_event_json(&ev, o->force, &b)) < 0)
			goto out;
		if (o->jsonl_dir) {
			if (!sp.f[ev.feed] && (rc = s_spool_open(&sp, o->jsonl_dir, now, ev.feed)) < 0)
				goto out;
			fwrite(b.p, 1, b.len, sp.f[ev.feed]);
			fputc('\n', sp.f[ev.feed]);
		} else if (o->to_stdout) {
			fprintf(out, "%s\t%s\n", s_feed_names[ev.feed], b.p);
		} else {
			fwrite(b.p, 1, b.len, out);
			fputc('\n', out);
		}
		k->sent++;
	}
	if (r < 0) {
		rc = r;
		fprintf(stderr, "yjlink-sim: generator: %s\n", yj_strerror(rc));
		goto out;
	}
	if (out && fflush(out) != 0) {
		rc = YJ_EIO;
		fprintf(stderr, "yjlink-sim: write failed: %s\n", strerror(errno));
		goto out;
	}
out:
	if (own_out && fclose(out) != 0 && rc == 0) {
		rc = YJ_EIO;
		fprintf(stderr, "yjlink-sim: %s: %s\n", o->jsonl, strerror(errno));
	}
	if (o->jsonl_dir) {
		int c = s_spool_close(&sp, rc == 0);
		if (rc == 0)
			rc = c;
	}
	free(b.p);
	/* stdout carries the events themselves with --stdout */
	int ev_on_stdout = o->to_stdout || (o->jsonl && strcmp(o->jsonl, "-") == 0);
	s_stats_line(o->stats && !ev_on_stdout ? stdout : stderr, g);
	s_summary(ev_on_stdout ? stderr : stdout, k, k->sent, t0);
	return rc;
}

/* ------------------------------------------------------------------ sender */

struct sim_slot {
	uint64_t n;
	int waiting;        /* in the retry list, not on the wire */
	unsigned attempts;
	int64_t due_us;
	enum sim_feed feed;
	struct sim_buf buf;
	char sid[160];
};

struct sim_sender {
	const struct sim_opts *o;
	void *ctx;
	void *sock;
	struct sim_slot *slots;
	uint32_t n_slots;
	uint32_t *free_list;
	uint32_t n_free;
	int32_t *table;     /* open addressing: event number -> slot */
	uint32_t mask;
	uint32_t *retry;
	uint32_t n_retry;
	uint32_t in_flight;
	FILE *acks;
	char prefix[160];   /* "<id prefix>-" */
	size_t prefix_len;
	uint64_t bad_replies;
	unsigned rejects_shown;
	struct sim_counts k;
};

static uint32_t s_hash_n(const struct sim_sender *s, uint64_t n)
{
	return (uint32_t)s_mix(n) & s->mask;
}

static int32_t s_tab_find(const struct sim_sender *s, uint64_t n, uint32_t *pos)
{
	for (uint32_t i = s_hash_n(s, n);; i = (i + 1) & s->mask) {
		int32_t v = s->table[i];
		if (v < 0)
			return -1;
		if (s->slots[v].n == n) {
			*pos = i;
			return v;
		}
	}
}

static void s_tab_put(struct sim_sender *s, uint64_t n, uint32_t slot)
{
	uint32_t i = s_hash_n(s, n);
	while (s->table[i] >= 0)
		i = (i + 1) & s->mask;
	s->table[i] = (int32_t)slot;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void s_tab_del(struct sim_sender *s, uint32_t i)
{
	s->table[i] = -1;
	for (uint32_t j = (i + 1) & s->mask; s->table[j] >= 0; j = (j + 1) & s->mask) {
		uint32_t k = s_hash_n(s, s->slots[s->table[j]].n);
		int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		s->table[i] = s->table[j];
		s->table[j] = -1;
		i = j;
	}
}

static int s_zmq_err(const char *what)
{
	int e = zmq_errno();
	fprintf(stderr, "yjlink-sim: %s: %s\n", what, zmq_strerror(e));
	return e == EAGAIN ? YJ_EAGAIN : YJ_EIO;
}

static int s_send_slot(struct sim_sender *s, struct sim_slot *sl)
{
	static const char ct_json[] = "application/json";
	static const char ct_pb[] = "application/x-protobuf";
	const char *ct = s->o->protobuf ? ct_pb : ct_json;
	const char *feed = s_feed_names[sl->feed];
	struct {
		const void *p;
		size_t n;
	} fr[4] = {{"YJL1", 4}, {feed, strlen(feed)}, {ct, strlen(ct)}, {sl->buf.p, sl->buf.len}};

	for (int i = 0; i < 4; i++) {
		int rc;
		do {
			rc = zmq_send(s->sock, fr[i].p, fr[i].n, i < 3 ? ZMQ_SNDMORE : 0);
		} while (rc < 0 && zmq_errno() == EINTR);
		if (rc < 0)
			return s_zmq_err(zmq_errno() == EAGAIN ? "send timed out (is yjlinkd running?)" : "send");
	}
	return 0;
}

static void s_slot_release(struct sim_sender *s, uint32_t pos, int32_t slot)
{
	s_tab_del(s, pos);
	s->free_list[s->n_free++] = (uint32_t)slot;
	s->in_flight--;
}

static void s_ack_line(struct sim_sender *s, const char *status, const char *detail, size_t dlen, const char *sid)
{
	if (!s->acks)
		return;
	fputs(status, s->acks);
	fputc(' ', s->acks);
	if (dlen == 0)
		fputc('-', s->acks);
	/* REJECT details are JSON and may hold newlines: keep one reply a line */
	for (size_t i = 0; i < dlen; i++)
		fputc(detail[i] == '\n' || detail[i] == '\r' ? ' ' : detail[i], s->acks);
	fputc(' ', s->acks);
	fputs(sid[0] ? sid : "-", s->acks);
	fputc('\n', s->acks);
}

static int64_t s_backoff_us(unsigned attempts)
{
	int64_t us = 10000;
	for (unsigned i = 1; i < attempts && us < 1000000; i++)
		us *= 2;
	return us > 1000000 ? 1000000 : us;
}

/* One reply; returns 0, or a negative code on a socket error. Replies
 * that make no sense are counted and reported, never fatal. */
static int s_recv_one(struct sim_sender *s, int *got)
{
	zmq_msg_t fr[4], extra;
	size_t n = 0;
	int rc = 0, flags = ZMQ_DONTWAIT;

	*got = 0;
	for (size_t i = 0; i < 4; i++)
		zmq_msg_init(&fr[i]);
	zmq_msg_init(&extra);
	for (;;) {
		zmq_msg_t *m = n < 4 ? &fr[n] : &extra;
		if (zmq_msg_recv(m, s->sock, flags) < 0) {
			int e = zmq_errno();
			if (e == EINTR && n > 0)
				continue;
			if (n == 0 && (e == EAGAIN || e == EINTR))
				goto out;
			rc = s_zmq_err("receive");
			goto out;
		}
		n++;
		if (!zmq_msg_more(m))
			break;
		/* the rest of a multipart message is already here */
		flags = 0;
	}
	*got = 1;

	char status[16] = "", sid[160] = "";
	size_t sl = n == 4 ? zmq_msg_size(&fr[1]) : 0, il = n == 4 ? zmq_msg_size(&fr[2]) : 0;
	if (n != 4 || zmq_msg_size(&fr[0]) != 4 || memcmp(zmq_msg_data(&fr[0]), "YJL1", 4) != 0 ||
	    sl >= sizeof(status) || il >= sizeof(sid)) {
		s->bad_replies++;
		fprintf(stderr, "yjlink-sim: malformed reply (%zu frames)\n", n);
		goto out;
	}
	memcpy(status, zmq_msg_data(&fr[1]), sl);
	memcpy(sid, zmq_msg_data(&fr[2]), il);
	const char *detail = zmq_msg_data(&fr[3]);
	size_t dlen = zmq_msg_size(&fr[3]);
	s_ack_line(s, status, detail, dlen, sid);

	uint64_t num = 0;
	uint32_t pos = 0;
	int32_t slot = -1;
	if (il > s->prefix_len && memcmp(sid, s->prefix, s->prefix_len) == 0) {
		char *end;
		errno = 0;
		num = strtoull(sid + s->prefix_len, &end, 10);
		if (errno == 0 && *end == '\0')
			slot = s_tab_find(s, num, &pos);
	}
	if (slot < 0 || s->slots[slot].waiting) {
		s->bad_replies++;
		fprintf(stderr, "yjlink-sim: reply %s for %s, which is not in flight\n", status,
			sid[0] ? sid : "(no source_id)");
		goto out;
	}
	struct sim_slot *sp = &s->slots[slot];
	if (strcmp(status, "OK") == 0) {
		s->k.ok++;
		s_slot_release(s, pos, slot);
	} else if (strcmp(status, "DUP") == 0) {
		s->k.dup++;
		s_slot_release(s, pos, slot);
	} else if (strcmp(status, "REJECT") == 0) {
		s->k.reject++;
		if (s->rejects_shown++ < 10) {
			fprintf(stderr, "yjlink-sim: REJECT %s: ", sid);
			for (size_t i = 0; i < dlen && i < 400; i++)
				fputc(detail[i] == '\n' || detail[i] == '\r' ? ' ' : detail[i], stderr);
			fputc('\n', stderr);
		}
		s_slot_release(s, pos, slot);
	} else if (strcmp(status, "RETRY") == 0) {
		s->k.retry++;
		if (s->o->no_retry) {
			s->k.failed++;
			s_slot_release(s, pos, slot);
		} else {
			sp->attempts++;
			sp->waiting = 1;
			sp->due_us = s_mono_us() + s_backoff_us(sp->attempts);
			s->retry[s->n_retry++] = (uint32_t)slot;
		}
	} else {
		s->bad_replies++;
		fprintf(stderr, "yjlink-sim: unknown reply status '%s' for %s\n", status, sid);
		s_slot_release(s, pos, slot);
	}
out:
	for (size_t i = 0; i < 4; i++)
		zmq_msg_close(&fr[i]);
	zmq_msg_close(&extra);
	return rc;
}

static void s_sender_free(struct sim_sender *s)
{
	if (s->slots) {
		for (uint32_t i = 0; i < s->n_slots; i++)
			free(s->slots[i].buf.p);
	}
	free(s->slots);
	free(s->free_list);
	free(s->table);
	free(s->retry);
	if (s->sock)
		zmq_close(s->sock);
	if (s->ctx)
		zmq_ctx_term(s->ctx);
	if (s->acks)
		fclose(s->acks);
}

static int s_sender_init(struct sim_sender *s, const struct sim_opts *o)
{
	int linger = 0;
	int tmo = (int)(o->timeout * 1000);
	int hwm = (int)(o->window * 8 + 1024);
	uint32_t cap = 16;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	s->o = o;
	s->n_slots = (uint32_t)o->window;
	while (cap < 2 * s->n_slots)
		cap *= 2;
	s->mask = cap - 1;
	s->slots = calloc(s->n_slots, sizeof(*s->slots));
	s->free_list = calloc(s->n_slots, sizeof(*s->free_list));
	s->retry = calloc(s->n_slots, sizeof(*s->retry));
	s->table = malloc(cap * sizeof(*s->table));
	if (!s->slots || !s->free_list || !s->retry || !s->table) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < cap; i++)
		s->table[i] = -1;
	for (uint32_t i = 0; i < s->n_slots; i++)
		s->free_list[i] = s->n_slots - 1 - i;
	s->n_free = s->n_slots;
	snprintf(s->prefix, sizeof(s->prefix), "%s-", o->id_prefix);
	s->prefix_len = strlen(s->prefix);

	if (o->acks) {
		s->acks = fopen(o->acks, "a");
		if (!s->acks) {
			rc = -errno;
			fprintf(stderr, "yjlink-sim: %s: %s\n", o->acks, strerror(errno));
			goto out;
		}
	}
	s->ctx = zmq_ctx_new();
	if (!s->ctx) {
		rc = s_zmq_err("zmq context");
		goto out;
	}
	s->sock = zmq_socket(s->ctx, ZMQ_DEALER);
	if (!s->sock) {
		rc = s_zmq_err("zmq socket");
		goto out;
	}
	/* Linger 0: whatever is unanswered at exit is reported, not waited for.
	 * The send timeout stops a blocked send from hanging when the peer has
	 * gone away; replies are awaited by poll with --timeout. */
	if (zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_setsockopt(s->sock, ZMQ_SNDTIMEO, &tmo, sizeof(tmo)) < 0 ||
	    zmq_setsockopt(s->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo)) < 0 ||
	    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0) {
		rc = s_zmq_err("zmq_setsockopt");
		goto out;
	}
	if (zmq_connect(s->sock, o->endpoint) < 0) {
		rc = s_zmq_err(o->endpoint);
		goto out;
	}
out:
	return rc;
}

static void s_progress(const struct sim_sender *s, uint64_t *last_done, int64_t *last_us, int64_t now)
{
	uint64_t done = s->k.ok + s->k.dup + s->k.reject;
	double dt = (double)(now - *last_us) / 1e6;
	fprintf(stderr,
		"sent %" PRIu64 " ok %" PRIu64 " dup %" PRIu64 " reject %" PRIu64 " retry %" PRIu64 ", %.0f ev/s\n",
		s->k.sent, s->k.ok, s->k.dup, s->k.reject, s->k.retry, dt > 0 ? (double)(done - *last_done) / dt : 0.0);
	*last_done = done;
	*last_us = now;
}

static int s_run_send(const struct sim_opts *o, struct sim_gen *g, struct sim_counts *out_k)
{
	struct sim_sender s;
	struct sim_event ev;
	int64_t t0 = s_mono_us(), last_prog = t0, wait_since = t0;
	int64_t tmo_us = (int64_t)(o->timeout * 1e6);
	uint64_t last_done = 0;
	int gen_done = 0, rc;

	rc = s_sender_init(&s, o);
	if (rc < 0)
		goto out;

	for (;;) {
		int64_t now = s_mono_us(), wake = now + 1000000;

		for (uint32_t i = 0; i < s.n_retry;) {
			struct sim_slot *sl = &s.slots[s.retry[i]];
			if (sl->due_us > now) {
				if (sl->due_us < wake)
					wake = sl->due_us;
				i++;
				continue;
			}
			if (s.in_flight - s.n_retry == 0)
				wait_since = now;
			sl->waiting = 0;
			s.retry[i] = s.retry[--s.n_retry];
			if ((rc = s_send_slot(&s, sl)) < 0)
				goto out;
		}

		while (!gen_done && !s_stop && s.n_free > 0) {
			if (o->rate > 0) {
				int64_t due = t0 + (int64_t)((double)s.k.sent * 1e6 / o->rate);
				if (due > now) {
					if (due < wake)
						wake = due;
					break;
				}
			}
			int r = s_gen_next(g, &ev);
			if (r < 0) {
				rc = r;
				fprintf(stderr, "yjlink-sim: generator: %s\n", yj_strerror(rc));
				goto out;
			}
			if (r == 0) {
				gen_done = 1;
				break;
			}
			uint32_t slot = s.free_list[--s.n_free];
			struct sim_slot *sl = &s.slots[slot];
			sl->n = ev.n;
			sl->feed = ev.feed;
			sl->attempts = 0;
			sl->waiting = 0;
			snprintf(sl->sid, sizeof(sl->sid), "%s", ev.source_id);
			if ((rc = s_serialise(o, &ev, &sl->buf)) < 0)
				goto out;
			s_tab_put(&s, ev.n, slot);
			if (s.in_flight - s.n_retry == 0)
				wait_since = now;
			s.in_flight++;
			s.k.sent++;
			if ((rc = s_send_slot(&s, sl)) < 0)
				goto out;
		}

		if ((gen_done || s_stop) && s.in_flight == 0)
			break;

		uint32_t on_wire = s.in_flight - s.n_retry;
		if (on_wire > 0 && now - wait_since >= tmo_us) {
			fprintf(stderr, "yjlink-sim: no reply for %.0f s from %s (%u requests unanswered)\n", o->timeout,
				o->endpoint, on_wire);
			rc = YJ_EIO;
			goto out;
		}
		if (on_wire > 0 && wait_since + tmo_us < wake)
			wake = wait_since + tmo_us;
		if (last_prog + 1000000 < wake)
			wake = last_prog + 1000000;

		zmq_pollitem_t pi = {s.sock, 0, ZMQ_POLLIN, 0};
		long ms = (long)((wake - now + 999) / 1000);
		if (ms < 0)
			ms = 0;
		if (zmq_poll(&pi, 1, ms) < 0 && zmq_errno() != EINTR) {
			rc = s_zmq_err("poll");
			goto out;
		}
		int got_any = 0;
		if (pi.revents & ZMQ_POLLIN) {
			for (int n = 0; n < 100000; n++) {
				int got;
				if ((rc = s_recv_one(&s, &got)) < 0)
					goto out;
				if (!got)
					break;
				got_any = 1;
			}
		}
		now = s_mono_us();
		if (got_any) {
			wait_since = now;
			/* a crash test reads this file after killing the daemon:
			 * every OK must be on disk as soon as it is seen */
			if (s.acks && fflush(s.acks) != 0) {
				rc = YJ_EIO;
				fprintf(stderr, "yjlink-sim: %s: %s\n", o->acks, strerror(errno));
				goto out;
			}
		}
		if (now - last_prog >= 1000000) {
			if (!o->quiet)
				s_progress(&s, &last_done, &last_prog, now);
			else
				last_prog = now;
		}
	}
	rc = 0;
out:
	if (s.acks)
		fflush(s.acks);
	s.k.failed += s.bad_replies;
	*out_k = s.k;
	s_stats_line(o->stats ? stdout : stderr, g);
	s_summary(stdout, &s.k, s.k.ok + s.k.dup + s.k.reject, t0);
	s_sender_free(&s);
	return rc;
}

/* ----------------------------------------------------------------- options */

static void s_usage(FILE *f)
{
	fprintf(f,
		"usage: yjlink-sim [options]\n"
		"\n"
		"Simulates a police force's YJL1 feeds (custody, arrest, voluntary_interview,\n"
		"outcome) about synthetic children aged 10-17, and sends them to yjlinkd or\n"
		"writes them out. The same --seed and --now give byte-identical payloads.\n"
		"\n"
		"What to generate:\n"
		"  --force CODE        reporting force, a PFA code (default E23000029, Thames Valley)\n"
		"  --seed N            random seed (default 1)\n"
		"  --now T             the clock, RFC 3339 with offset (default: the real time)\n"
		"  --days N            history mode: events over the N days up to --now, in time\n"
		"                      order, occurred_at in the past, sent as fast as --window allows\n"
		"  --per-day K         history volume, events per day (default 40)\n"
		"  --rate R            R events/s. Without --days: live mode, occurred_at = now\n"
		"                      (--now plus i/R seconds for event i); with --days: replay pace\n"
		"  --count N           stop after N events (a prefix of the uncapped stream)\n"
		"  --duration S        live mode: run for S seconds (R*S events)\n"
		"                      Without --days and --rate: history of the last day (--days 1).\n"
		"                      Live mode without --count or --duration runs until SIGINT.\n"
		"  --feed LIST         only these feeds, comma-separated (default all four)\n"
		"  --children N        population size (default: live 5000, history per-day*days/8)\n"
		"  --looked-after PCT  share of looked-after children in percent (default 10)\n"
		"  --id-prefix P       source_id is P-<n>, n from 1 (default sim-<seed>)\n"
		"  --ref-dir DIR       reference tables from DIR (default: the embedded copies)\n"
		"\n"
		"Situations of real feeds (PCT: a percentage, 0 turns it off):\n"
		"  --late PCT          messages sent 2 h to 4 days after occurred_at (default 3);\n"
		"                      history: each out of time order, after later events; live:\n"
		"                      a whole episode happened that long before the clock\n"
		"  --turning-18 PCT    custody records of 17-year-olds who turn 18 while held\n"
		"                      (default 0.5): arrival the evening before the 18th birthday,\n"
		"                      a later status on it (custody is age-checked on arrived_at)\n"
		"  --unknown-dob PCT   children sent with child.apparent_age and no date_of_birth\n"
		"                      (default 3; not with --protobuf, which has no apparent_age)\n"
		"  --lac-unknown PCT   non-looked-after children sent without looked_after (unknown)\n"
		"                      (default 5)\n"
		"  --serious PCT       custody records (and the arrest that opened them) marked\n"
		"                      serious_offence, a quarter of them also mappa (default 2)\n"
		"  --live-investigation PCT\n"
		"                      episodes of any feed marked live_investigation (default 2);\n"
		"                      every held event names one of 8 fixed officers in the case\n"
		"                      (\"DC 4411 Patel\", ...)\n"
		"  --adult-outcome PCT outcomes with a code that cannot apply to a child: 3, 6, 7\n"
		"                      or 11 (default 1)\n"
		"  --out-of-area PCT   children whose home is in another force's area (default 15):\n"
		"                      neighbours, far cities, or any upper-tier authority in England\n"
		"                      and Wales; looked-after children are often in another\n"
		"                      authority's care than their home_la's\n"
		"  --quiet-feed FEED:FROM_H:HOURS\n"
		"                      FEED sends nothing for HOURS hours from FROM_H hours into the\n"
		"                      history (live: after --now); what it would have sent goes\n"
		"                      out when it resumes, oldest first (dropped if it is still\n"
		"                      quiet at --now). Repeatable (16 at most); default none.\n"
		"                      Live mode: some feed sent must have no quiet window\n"
		"  --stats             the situations line (below) on stdout, not stderr\n"
		"\n"
		"Sending (default):\n"
		"  --endpoint E        yjlinkd's YJL1 socket (default tcp://127.0.0.1:7401)\n"
		"  --window W          requests in flight at most (default 1000)\n"
		"  --timeout S         give up (exit 1) after S seconds without a reply (default 30)\n"
		"  --no-retry          count a RETRY as a failure instead of resending it\n"
		"                      (resends back off from 10 ms, doubling, to 1 s)\n"
		"  --acks FILE         append one line per reply: STATUS SEQ-or-detail SOURCE_ID,\n"
		"                      flushed after every batch of replies received\n"
		"  --protobuf          send application/x-protobuf (yjlink.v1.Event) instead of JSON\n"
		"  --quiet             no progress lines\n"
		"\n"
		"Writing instead of sending (always JSON):\n"
		"  --stdout            one event a line on stdout as FEED<TAB>JSON\n"
		"  --jsonl FILE        one JSON event a line into FILE (\"-\": stdout)\n"
		"  --jsonl-dir DIR     spool files DIR/<feed>-<YYYYMMDDTHHMM>.jsonl (UTC --now), one\n"
		"                      per feed, written under a dot name and renamed in when complete\n"
		"\n"
		"Output: progress on stderr each second while sending (sent N ok N dup N reject N\n"
		"retry N, R ev/s); at the end one line on stdout (on stderr when the events go\n"
		"to stdout): sent=N ok=N dup=N reject=N retry=N elapsed=S rate=R, where rate\n"
		"counts answered events (OK, DUP, REJECT) per second. Before it, on stderr (with\n"
		"--stats on stdout unless the events go there): situations: KEY=N ... counting\n"
		"messages, each feed, late, quiet_held, quiet_dropped, turning_18_records,\n"
		"turning_18_after_birthday (messages), custody_serious, custody_mappa,\n"
		"live_investigation, officer_in_case, adult_outcome_code, youth_caution,\n"
		"youth_conditional_caution, unknown_dob_msgs, lac_unknown_msgs (messages), and\n"
		"children, unknown_dob_children, lac_unknown_children, looked_after_children,\n"
		"looked_after_other_la, no_fixed_abode_children, out_of_area_children,\n"
		"out_of_area_las (distinct children and home authorities).\n"
		"Exit status: 0 every event got OK or DUP, 1 a REJECT, an unanswered request,\n"
		"a RETRY under --no-retry or another failure, 2 a usage error.\n");
}

static int s_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return YJ_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return YJ_EINVAL;
	*out = v;
	return 0;
}

static int s_parse_pos_double(const char *s, double min, double max, double *out)
{
	char *end;
	if (!s || !*s)
		return YJ_EINVAL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v >= min) || !(v <= max))
		return YJ_EINVAL;
	*out = v;
	return 0;
}

static int s_parse_feeds(const char *s, unsigned *out)
{
	unsigned m = 0;
	const char *p = s;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		int found = 0;
		for (int f = 0; f < F_COUNT; f++) {
			if (strlen(s_feed_names[f]) == n && strncmp(p, s_feed_names[f], n) == 0) {
				m |= 1u << f;
				found = 1;
			}
		}
		if (!found)
			return YJ_EINVAL;
		p += n + (e ? 1 : 0);
	}
	if (!m)
		return YJ_EINVAL;
	*out = m;
	return 0;
}

enum {
	O_ENDPOINT = 256, O_FORCE, O_SEED, O_NOW, O_RATE, O_COUNT, O_DURATION, O_DAYS, O_PER_DAY, O_WINDOW,
	O_TIMEOUT, O_NO_RETRY, O_ACKS, O_PROTOBUF, O_STDOUT, O_JSONL, O_JSONL_DIR, O_REF_DIR, O_ID_PREFIX,
	O_CHILDREN, O_FEED, O_LAC, O_QUIET, O_HELP, O_LATE, O_T18, O_NODOB, O_LAC_UNK, O_SERIOUS, O_LIVE_INV,
	O_ADULT_OC, O_AWAY, O_QUIET_FEED, O_STATS,
};

/* FEED:FROM_H:HOURS */
static int s_parse_quiet(const char *s, struct sim_opts *o)
{
	char name[32];
	const char *c1 = strchr(s, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	uint64_t from, hours;
	unsigned feed;
	char num[32];

	if (!c1 || !c2 || (size_t)(c1 - s) >= sizeof(name) || (size_t)(c2 - c1 - 1) >= sizeof(num) ||
	    o->n_quiet >= (int)SIM_COUNT(o->quiet_win))
		return YJ_EINVAL;
	memcpy(name, s, (size_t)(c1 - s));
	name[c1 - s] = '\0';
	memcpy(num, c1 + 1, (size_t)(c2 - c1 - 1));
	num[c2 - c1 - 1] = '\0';
	if (s_parse_feeds(name, &feed) < 0 || (feed & (feed - 1)) != 0 || s_parse_u64(num, 0, 100000, &from) < 0 ||
	    s_parse_u64(c2 + 1, 1, 100000, &hours) < 0)
		return YJ_EINVAL;
	struct sim_quiet *q = &o->quiet_win[o->n_quiet++];
	q->feed = 0;
	while (!(feed & (1u << q->feed)))
		q->feed++;
	q->from = (int64_t)from * S_HOUR;
	q->to = (int64_t)(from + hours) * S_HOUR;
	return 0;
}

/* 0, or YJ_EINVAL after printing why (a usage error); 1 for --help. */
static int s_parse_args(int argc, char **argv, struct sim_opts *o, char *prefix_buf, size_t prefix_size)
{
	static const struct option lopts[] = {
		{"endpoint", required_argument, NULL, O_ENDPOINT},
		{"force", required_argument, NULL, O_FORCE},
		{"seed", required_argument, NULL, O_SEED},
		{"now", required_argument, NULL, O_NOW},
		{"rate", required_argument, NULL, O_RATE},
		{"count", required_argument, NULL, O_COUNT},
		{"duration", required_argument, NULL, O_DURATION},
		{"days", required_argument, NULL, O_DAYS},
		{"per-day", required_argument, NULL, O_PER_DAY},
		{"window", required_argument, NULL, O_WINDOW},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"no-retry", no_argument, NULL, O_NO_RETRY},
		{"acks", required_argument, NULL, O_ACKS},
		{"protobuf", no_argument, NULL, O_PROTOBUF},
		{"stdout", no_argument, NULL, O_STDOUT},
		{"jsonl", required_argument, NULL, O_JSONL},
		{"jsonl-dir", required_argument, NULL, O_JSONL_DIR},
		{"ref-dir", required_argument, NULL, O_REF_DIR},
		{"id-prefix", required_argument, NULL, O_ID_PREFIX},
		{"children", required_argument, NULL, O_CHILDREN},
		{"feed", required_argument, NULL, O_FEED},
		{"looked-after", required_argument, NULL, O_LAC},
		{"quiet", no_argument, NULL, O_QUIET},
		{"help", no_argument, NULL, O_HELP},
		{"late", required_argument, NULL, O_LATE},
		{"turning-18", required_argument, NULL, O_T18},
		{"unknown-dob", required_argument, NULL, O_NODOB},
		{"lac-unknown", required_argument, NULL, O_LAC_UNK},
		{"serious", required_argument, NULL, O_SERIOUS},
		{"live-investigation", required_argument, NULL, O_LIVE_INV},
		{"adult-outcome", required_argument, NULL, O_ADULT_OC},
		{"out-of-area", required_argument, NULL, O_AWAY},
		{"quiet-feed", required_argument, NULL, O_QUIET_FEED},
		{"stats", no_argument, NULL, O_STATS},
		{NULL, 0, NULL, 0},
	};
	uint64_t u;
	int c, li = -1, days_set = 0;

	memset(o, 0, sizeof(*o));
	o->endpoint = "tcp://127.0.0.1:7401";
	o->force = "E23000029";
	o->seed = 1;
	o->per_day = 40;
	o->window = 1000;
	o->timeout = 30;
	o->lac_pct = 10;
	o->feeds = (1u << F_COUNT) - 1;
	o->late_pct = 3;
	o->t18_pct = 0.5;
	o->nodob_pct = 3;
	o->lac_unk_pct = 5;
	o->serious_pct = 2;
	o->live_pct = 2;
	o->adult_oc_pct = 1;
	o->away_pct = 15;

	opterr = 0;
	while ((li = -1, c = getopt_long(argc, argv, "h", lopts, &li)) != -1) {
		int bad = 0;
		switch (c) {
		case O_ENDPOINT: o->endpoint = optarg; break;
		case O_FORCE: o->force = optarg; break;
		case O_SEED: bad = s_parse_u64(optarg, 0, UINT64_MAX, &o->seed); break;
		case O_NOW: o->now_text = optarg; break;
		case O_RATE: bad = s_parse_pos_double(optarg, 1e-6, 1e9, &o->rate); break;
		case O_COUNT: bad = s_parse_u64(optarg, 1, UINT64_MAX, &o->count); break;
		case O_DURATION: bad = s_parse_pos_double(optarg, 1e-3, 1e9, &o->duration); break;
		case O_DAYS:
			bad = s_parse_u64(optarg, 1, 3660, &u);
			o->days = (int64_t)u;
			days_set = 1;
			break;
		case O_PER_DAY: bad = s_parse_pos_double(optarg, 1e-3, 1e9, &o->per_day); break;
		case O_WINDOW: bad = s_parse_u64(optarg, 1, 1000000, &o->window); break;
		case O_TIMEOUT: bad = s_parse_pos_double(optarg, 0.001, 1e6, &o->timeout); break;
		case O_NO_RETRY: o->no_retry = 1; break;
		case O_ACKS: o->acks = optarg; break;
		case O_PROTOBUF: o->protobuf = 1; break;
		case O_STDOUT: o->to_stdout = 1; break;
		case O_JSONL: o->jsonl = optarg; break;
		case O_JSONL_DIR: o->jsonl_dir = optarg; break;
		case O_REF_DIR: o->ref_dir = optarg; break;
		case O_ID_PREFIX: o->id_prefix = optarg; break;
		case O_CHILDREN: bad = s_parse_u64(optarg, 1, 100000000, &o->children); break;
		case O_FEED:
			bad = s_parse_feeds(optarg, &o->feeds);
			o->feeds_given = 1;
			break;
		case O_LAC: bad = s_parse_pos_double(optarg, 0, 100, &o->lac_pct); break;
		case O_QUIET: o->quiet = 1; break;
		case O_LATE: bad = s_parse_pos_double(optarg, 0, 100, &o->late_pct); break;
		case O_T18: bad = s_parse_pos_double(optarg, 0, 100, &o->t18_pct); break;
		case O_NODOB: bad = s_parse_pos_double(optarg, 0, 100, &o->nodob_pct); break;
		case O_LAC_UNK: bad = s_parse_pos_double(optarg, 0, 100, &o->lac_unk_pct); break;
		case O_SERIOUS: bad = s_parse_pos_double(optarg, 0, 100, &o->serious_pct); break;
		case O_LIVE_INV: bad = s_parse_pos_double(optarg, 0, 100, &o->live_pct); break;
		case O_ADULT_OC: bad = s_parse_pos_double(optarg, 0, 100, &o->adult_oc_pct); break;
		case O_AWAY: bad = s_parse_pos_double(optarg, 0, 97, &o->away_pct); break;
		case O_QUIET_FEED: bad = s_parse_quiet(optarg, o); break;
		case O_STATS: o->stats = 1; break;
		case 'h':
		case O_HELP: return 1;
		default:
			fprintf(stderr, "yjlink-sim: unknown option or missing value: %s\n", argv[optind - 1]);
			return YJ_EINVAL;
		}
		if (bad) {
			fprintf(stderr, "yjlink-sim: bad value for --%s: %s\n", li >= 0 ? lopts[li].name : "?", optarg);
			return YJ_EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "yjlink-sim: unexpected argument: %s\n", argv[optind]);
		return YJ_EINVAL;
	}
	if (!days_set && o->rate == 0)
		o->days = 1;
	if (o->duration > 0 && (o->rate == 0 || days_set)) {
		fprintf(stderr, "yjlink-sim: --duration needs --rate and live mode (no --days)\n");
		return YJ_EINVAL;
	}
	if ((o->to_stdout != 0) + (o->jsonl != NULL) + (o->jsonl_dir != NULL) > 1) {
		fprintf(stderr, "yjlink-sim: choose one of --stdout, --jsonl, --jsonl-dir\n");
		return YJ_EINVAL;
	}
	if (o->protobuf && (o->to_stdout || o->jsonl || o->jsonl_dir)) {
		fprintf(stderr, "yjlink-sim: --protobuf applies to sending only\n");
		return YJ_EINVAL;
	}
	if (o->days == 0 && o->n_quiet) {
		/* live mode holds a quiet feed's messages back by index: some
		 * feed has to keep sending meanwhile */
		unsigned quiet = 0;
		for (int i = 0; i < o->n_quiet; i++)
			quiet |= 1u << o->quiet_win[i].feed;
		if ((o->feeds & ~quiet) == 0) {
			fprintf(stderr, "yjlink-sim: live mode: --quiet-feed may not silence every feed sent\n");
			return YJ_EINVAL;
		}
	}
	if (!o->id_prefix) {
		snprintf(prefix_buf, prefix_size, "sim-%" PRIu64, o->seed);
		o->id_prefix = prefix_buf;
	}
	if (strlen(o->id_prefix) == 0 || strlen(o->id_prefix) > 100) {
		fprintf(stderr, "yjlink-sim: --id-prefix must be 1..100 bytes\n");
		return YJ_EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sim_opts o;
	struct sim_tables t;
	struct sim_gen g;
	struct sim_counts k = {0};
	char prefix_buf[64];
	int64_t now;
	int rc, status = EXIT_FAIL, gen_ok = 0;

	memset(&t, 0, sizeof(t));
	memset(&g, 0, sizeof(g));
	rc = s_parse_args(argc, argv, &o, prefix_buf, sizeof(prefix_buf));
	if (rc == 1) {
		s_usage(stdout);
		status = EXIT_OK;
		goto out;
	}
	if (rc < 0) {
		s_usage(stderr);
		status = EXIT_USAGE;
		goto out;
	}
	if (o.now_text) {
		if (s_parse_rfc3339(o.now_text, &now) < 0) {
			fprintf(stderr, "yjlink-sim: --now must be RFC 3339 with an offset: %s\n", o.now_text);
			s_usage(stderr);
			status = EXIT_USAGE;
			goto out;
		}
	} else {
		now = (int64_t)time(NULL);
	}

	rc = s_tables_load(&t, &o);
	if (rc < 0) {
		status = rc == YJ_EINVAL ? EXIT_USAGE : EXIT_FAIL;
		goto out;
	}
	rc = s_gen_init(&g, &o, &t, now);
	if (rc < 0) {
		fprintf(stderr, "yjlink-sim: nothing to generate\n");
		goto out;
	}
	gen_ok = 1;

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = s_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o.to_stdout || o.jsonl || o.jsonl_dir) {
		rc = s_run_files(&o, &g, now, &k);
		status = rc < 0 ? EXIT_FAIL : EXIT_OK;
		goto out;
	}
	rc = s_run_send(&o, &g, &k);
	status = (rc < 0 || k.reject || k.failed || k.ok + k.dup != k.sent) ? EXIT_FAIL : EXIT_OK;
out:
	(void)gen_ok;
	s_gen_free(&g);
	s_tables_free(&t);
	return status;
}
