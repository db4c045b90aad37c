/* report.c: the board report; see report.h and docs/report.md.
 *
 * The build is one walk of the time index over the period, in one read
 * transaction. Each event is decoded once and folded into compact tables
 * (children, custody records, arrests, interviews, outcome cases), keyed by
 * open-addressing hash tables whose keys live in one arena. Counting, the
 * statistics and suppression then run over those tables only, and every
 * rendering reads the finished cells: nothing is read from the store twice.
 */
#include "report.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "db/events.h"
#include "err.h"
#include "normalise.h"
#include "tz.h"
#include "yjlink.pb-c.h"

/* --- figures --- */

enum s_kind {
	S_COUNT = 0, /* a count: suppressed under the threshold, additive over a dimension's groups */
	S_STAT,      /* minutes over n records: suppressed when n is under the threshold */
	S_SHARE,     /* a percentage: suppressed when its numerator or the rest could be worked out */
};

enum s_fig {
	F_DETENTIONS,
	F_CHILDREN_DETAINED,
	F_REPEAT,
	F_OVERNIGHT,
	F_RUI,
	F_NFA,
	F_BAIL,
	F_CH_BAILED,
	F_CH_REMANDED,
	F_TRANSFERRED,
	F_RELEASED_OTHER,
	F_STILL_DETAINED,
	F_CHARGED,
	F_PACE_REQ,
	F_PACE_MADE,
	F_TIC_MED,
	F_TIC_P90,
	F_TIC_LONGEST,
	F_AA_MED,
	F_AA_P90,
	F_ARRESTS,
	F_SUMMONSES,
	F_VI,
	F_OUTCOMES,
	F_D_CHARGE,
	F_D_YC,
	F_D_YCC,
	F_D_CR,
	F_D_NFA,
	F_D_O21,
	F_D_O22,
	F_D_OTHER,
	F_D_NONE,
	F_FIRST_CONTACTS,
	F_CHILDREN,
	F_LAC_SHARE,
	F_UNKNOWN_DOB,
	F_DQ_ETHNICITY,
	F_DQ_LAC_UNKNOWN,
	F_DQ_AA_MISSING,
	F_DQ_NO_RESULT,
	F_NBASE
};

struct s_figdef {
	const char *id;
	enum s_kind kind;
	const char *label; /* what a board member reads */
};

static const struct s_figdef s_figs[F_NBASE] = {
	[F_DETENTIONS] = { "detentions", S_COUNT, "Detentions (custody records opened)" },
	[F_CHILDREN_DETAINED] = { "children_detained", S_COUNT, "Children detained" },
	[F_REPEAT] = { "repeat_detentions", S_COUNT, "Children detained twice or more" },
	[F_OVERNIGHT] = { "held_overnight", S_COUNT, "Detentions held overnight" },
	[F_RUI] = { "released_under_investigation", S_COUNT, "Released under investigation" },
	[F_NFA] = { "released_nfa", S_COUNT, "Released, no further action" },
	[F_BAIL] = { "released_bail", S_COUNT, "Released on bail" },
	[F_CH_BAILED] = { "charged_bailed", S_COUNT, "Charged and bailed" },
	[F_CH_REMANDED] = { "charged_remanded", S_COUNT, "Charged and remanded" },
	[F_TRANSFERRED] = { "transferred_la_accommodation", S_COUNT, "Transferred to local authority accommodation" },
	[F_RELEASED_OTHER] = { "released_other", S_COUNT, "Released otherwise" },
	[F_STILL_DETAINED] = { "still_detained", S_COUNT, "Still detained at the period's end" },
	[F_CHARGED] = { "charged", S_COUNT, "Charged (bailed or remanded)" },
	[F_PACE_REQ] = { "pace_transfers_requested", S_COUNT, "PACE s.38(6) transfers requested" },
	[F_PACE_MADE] = { "pace_transfers_made", S_COUNT, "PACE s.38(6) transfers made" },
	[F_TIC_MED] = { "time_in_custody_median_min", S_STAT, "Time in custody, median (minutes)" },
	[F_TIC_P90] = { "time_in_custody_p90_min", S_STAT, "Time in custody, 90th percentile (minutes)" },
	[F_TIC_LONGEST] = { "time_in_custody_longest_min", S_STAT, "Time in custody, longest (minutes)" },
	[F_AA_MED] = { "aa_wait_median_min", S_STAT, "Appropriate adult wait, median (minutes)" },
	[F_AA_P90] = { "aa_wait_p90_min", S_STAT, "Appropriate adult wait, 90th percentile (minutes)" },
	[F_ARRESTS] = { "arrests", S_COUNT, "Arrests" },
	[F_SUMMONSES] = { "summonses", S_COUNT, "Summonses" },
	[F_VI] = { "voluntary_interviews", S_COUNT, "Voluntary interviews" },
	[F_OUTCOMES] = { "outcomes", S_COUNT, "Cases given an outcome" },
	[F_D_CHARGE] = { "disposal_charge", S_COUNT, "Disposal: charge" },
	[F_D_YC] = { "disposal_youth_caution", S_COUNT, "Disposal: youth caution" },
	[F_D_YCC] = { "disposal_youth_conditional_caution", S_COUNT, "Disposal: youth conditional caution" },
	[F_D_CR] = { "disposal_community_resolution", S_COUNT, "Disposal: community resolution" },
	[F_D_NFA] = { "disposal_nfa", S_COUNT, "Disposal: no further action" },
	[F_D_O21] = { "disposal_outcome_21", S_COUNT, "Disposal: Outcome 21" },
	[F_D_O22] = { "disposal_outcome_22", S_COUNT, "Disposal: Outcome 22" },
	[F_D_OTHER] = { "disposal_other", S_COUNT, "Disposal: other" },
	[F_D_NONE] = { "disposal_not_given", S_COUNT, "Disposal not given" },
	[F_FIRST_CONTACTS] = { "first_contacts", S_COUNT, "First contacts (children new to yjlink)" },
	[F_CHILDREN] = { "children", S_COUNT, "Children with any event" },
	[F_LAC_SHARE] = { "looked_after_share_pct", S_SHARE, "Looked-after children's share of children detained (%)" },
	[F_UNKNOWN_DOB] = { "children_unknown_dob", S_COUNT, "Children with an unknown date of birth" },
	[F_DQ_ETHNICITY] = { "dq_ethnicity_not_stated", S_COUNT, "Data quality: children with no ethnicity or NS" },
	[F_DQ_LAC_UNKNOWN] = { "dq_looked_after_unknown", S_COUNT, "Data quality: children whose looked-after status is not given" },
	[F_DQ_AA_MISSING] = { "dq_aa_times_missing", S_COUNT, "Data quality: detentions with no appropriate adult times" },
	[F_DQ_NO_RESULT] = { "dq_open_at_period_end", S_COUNT, "Data quality: detentions with no result by the period's end" },
};

static const char *const s_disposals[] = { "charge", "youth_caution", "youth_conditional_caution",
					   "community_resolution", "nfa", "outcome_21", "outcome_22", "other" };

/* Custody statuses (interfaces.md §2) and the result figure of each. */
static const char *const s_statuses[] = { "detained", "released_nfa", "released_bail", "released_under_investigation",
					  "charged_bailed", "charged_remanded", "transferred_la_accommodation",
					  "released_other" };
static const enum s_fig s_status_fig[] = { F_STILL_DETAINED, F_NFA, F_BAIL, F_RUI, F_CH_BAILED, F_CH_REMANDED,
					   F_TRANSFERRED, F_RELEASED_OTHER };
#define S_NSTATUS 8
enum { S_DETAINED = 0, S_CH_BAILED = 4, S_CH_REMANDED = 5, S_TRANSFERRED = 6 }; /* indexes into s_statuses */

/* --- dimensions and groups --- */

enum { D_AGE, D_GENDER, D_ETH, D_LAC, S_NDIM };
static const char *const s_dim_names[S_NDIM] = { "age", "gender", "ethnicity", "looked_after" };
static const char *const s_genders[] = { "male", "female", "other", "unknown" };
static const char *const s_lac[] = { "yes", "no", "unknown" };

/* --- compact tables --- */

/* String keys -> index, open addressing, at most half full; keys in an arena. */
struct s_map {
	uint64_t *ix;      /* slot -> the key's hash (high 32 bits) and its index + 1 (low 32), owned */
	size_t cap;        /* slots, a power of two */
	const char **keys; /* index -> key (in the report's arena), owned array */
	size_t n, kcap;
};

enum { C_HOME = 1, C_NODOB = 2, C_FIRST = 4, C_ETH_NS = 8, C_LAC_UNK = 16 };

struct s_child {
	uint16_t g[S_NDIM]; /* group index per dimension, by the newest message in the period */
	uint8_t flags;      /* C_* */
	uint32_t detentions;
	uint64_t min_seq;   /* lowest seq seen in the period: first contact when it is the child's first ever */
};

enum { R_OPENED = 1, R_REMANDED = 2, R_TRANSFERRED = 4, R_AA = 8 };

struct s_record {
	uint32_t child;
	uint8_t status; /* index into s_statuses of the last status in the period */
	uint8_t flags;  /* R_* */
	int64_t arrived_us, status_us, aa_called_us, aa_arrived_us;
};

struct s_item {
	uint32_t child;
	int32_t v;   /* arrest: summons; interview: status index; outcome: code */
	int8_t disp; /* outcome: disposal index, -1 none */
};

struct s_cell {
	double value;
	uint8_t suppressed;
	uint8_t present; /* 0 for a statistic with no data */
	uint32_t n;      /* statistics: records it rests on */
};

struct s_week {
	int64_t start_us;
	struct s_cell det;
};

struct yj_report {
	const struct yj_config *cfg;  /* borrowed for the build only */
	const struct yj_refdata *ref; /* borrowed; outlives the report (control holds it) */
	char from[11], to[11];
	char *scope;                  /* "force" or the yjs id, owned */
	char *scope_name;             /* display name, owned */
	int64_t from_us, to_us, now_us;
	int threshold;
	size_t events;
	struct yj_arena arena;        /* every key, owned */
	struct s_map children_m, records_m, arrests_m, interviews_m, outcomes_m;
	struct s_child *children;     /* owned, parallel to children_m */
	struct s_record *records;     /* owned */
	struct s_item *arrests, *interviews, *outcomes; /* owned */
	size_t cap_c, cap_r, cap_a, cap_i, cap_o;
	/* groups: 0 the total, then each dimension's */
	size_t ngroups;
	size_t gstart[S_NDIM], gcount[S_NDIM];
	char **gname;                 /* group names, owned strings */
	char **glabel;                /* display labels, owned strings */
	/* figures: the base ones, then outcome_<code> for codes seen */
	size_t nfig;
	int *codes;                   /* outcome code of figure F_NBASE + i, owned */
	size_t ncodes, cap_codes;
	struct s_cell *cells;         /* nfig * ngroups, owned */
	struct s_week *weeks;         /* owned */
	size_t nweeks;
	double *pop;                  /* children per group, < 0 unknown, owned */
	char *pop_source;             /* owned */
};

#define CELL(r, f, g) (&(r)->cells[(size_t)(f) * (r)->ngroups + (g)])

static uint64_t s_hash(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	/* FNV's low bits cluster for keys that differ only in trailing digits
	 * (record ids): a final mix spreads them over the probed slots. */
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return h;
}

static int s_grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 256;
	void *nv = realloc(*v, ncap * size);
	if (!nv)
		return YJ_ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* The slot holding key (hash h), or the empty one it goes in. The hash kept
 * in the slot spares a string compare (and its cache misses) per probe. */
static size_t s_slot(const struct s_map *m, const uint64_t *ix, size_t cap, const char *key, uint64_t h)
{
	size_t mask = cap - 1, i = (size_t)h & mask;
	uint32_t tag = (uint32_t)(h >> 32);
	while (ix[i] && ((uint32_t)(ix[i] >> 32) != tag || strcmp(m->keys[(uint32_t)ix[i] - 1], key)))
		i = (i + 1) & mask;
	return i;
}

/* The index of key, added when new (*added = 1). */
static int s_map_get(struct yj_report *r, struct s_map *m, const char *key, uint32_t *out, int *added)
{
	*added = 0;
	if (!m->cap || (m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 1024;
		uint64_t *nix = calloc(ncap, sizeof(*nix)); /* owned by m once swapped in */
		if (!nix)
			return YJ_ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (m->ix[i]) {
				const char *k = m->keys[(uint32_t)m->ix[i] - 1];
				nix[s_slot(m, nix, ncap, k, s_hash(k))] = m->ix[i];
			}
		}
		free(m->ix);
		m->ix = nix;
		m->cap = ncap;
	}
	uint64_t h = s_hash(key);
	size_t slot = s_slot(m, m->ix, m->cap, key, h);
	if (m->ix[slot]) {
		*out = (uint32_t)m->ix[slot] - 1;
		return 0;
	}
	if (s_grow((void **)&m->keys, &m->kcap, m->n, sizeof(*m->keys)))
		return YJ_ENOMEM;
	char *k = yj_arena_strndup(&r->arena, key, strlen(key));
	if (!k)
		return YJ_ENOMEM;
	m->keys[m->n] = k;
	m->ix[slot] = (h & UINT64_C(0xffffffff00000000)) | (uint32_t)++m->n;
	*out = (uint32_t)(m->n - 1);
	*added = 1;
	return 0;
}

static void s_map_free(struct s_map *m)
{
	free(m->ix);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

/* --- time --- */

static int s_digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* YYYY-MM-DD, by hand: it runs once per event. */
static int s_parse_date(const char *s, int *y, int *m, int *d)
{
	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	*y = s_digits(s, 4);
	*m = s_digits(s + 5, 2);
	*d = s_digits(s + 8, 2);
	if (*y < 0)
		return -1;
	if (*m < 1 || *m > 12 || *d < 1 || *d > 31)
		return -1;
	int32_t z = yj_days_from_civil(*y, (unsigned)*m, (unsigned)*d);
	int yy;
	unsigned mm, dd;
	yj_civil_from_days(z, &yy, &mm, &dd);
	return yy == *y && (int)mm == *m && (int)dd == *d ? 0 : -1;
}

/* The instant of local midnight starting date (y, m, d), overflow carried.
 * Time by tz.c, never localtime_r and friends: the report is built in a
 * helper forked from a daemon with threads (tz.h says why). */
static int64_t s_local_midnight(int y, int m, int d)
{
	return yj_tz_instant(y, m, d, 0, 0) * 1000000;
}

static long s_offset(time_t t)
{
	return yj_tz_offset((int64_t)t);
}

static void s_local(int64_t us, struct tm *tm)
{
	time_t t = (time_t)(us / 1000000 - (us % 1000000 < 0));
	yj_tz_local((int64_t)t, tm);
}

/* The local calendar date of us, by arithmetic. */
static void s_local_ymd(int64_t us, int *y, unsigned *m, unsigned *d)
{
	time_t t = (time_t)(us / 1000000 - (us % 1000000 < 0));
	time_t l = t + s_offset(t);
	yj_civil_from_days((int32_t)((l - ((l % 86400) + 86400) % 86400) / 86400), y, m, d);
}

/* The instant of local day `day` (days since 1970-01-01) at `minutes` past
 * local midnight: the offset found at the guess, then at the answer. */
static int64_t s_local_instant(int32_t day, int minutes)
{
	time_t wall = (time_t)day * 86400 + minutes * 60;
	time_t t = wall - s_offset(wall);
	t = wall - s_offset(t);
	return (int64_t)t * 1000000;
}

/* Days since 1970-01-01 of the local date of us. */
static int32_t s_local_day(int64_t us)
{
	time_t t = (time_t)(us / 1000000 - (us % 1000000 < 0));
	time_t l = t + s_offset(t);
	return (int32_t)((l - ((l % 86400) + 86400) % 86400) / 86400);
}

/* Whole years from dob to the local date of us; -1 when dob is unreadable. */
static int s_age(const char *dob, int64_t us)
{
	int y, m, d;
	if (s_parse_date(dob, &y, &m, &d))
		return -1;
	int ty;
	unsigned tm, td;
	s_local_ymd(us, &ty, &tm, &td);
	int age = ty - y;
	if ((int)tm < m || ((int)tm == m && (int)td < d))
		age--;
	return age;
}

static int s_minutes_of(const char *hhmm)
{
	int h = 0, m = 0;
	sscanf(hhmm, "%2d:%2d", &h, &m);
	return h * 60 + m;
}

/* Held overnight (interfaces.md §2): detained custody.overnight_hours or more
 * within one night's overnight period; the same rule as the digest's. */
static int s_overnight(const struct yj_config *cfg, int64_t from_us, int64_t to_us)
{
	if (to_us <= from_us)
		return 0;
	int a = s_minutes_of(cfg->custody_overnight_from), z = s_minutes_of(cfg->custody_overnight_to);
	int64_t need = cfg->custody_overnight_hours * 3600 * INT64_C(1000000);
	int32_t day0 = s_local_day(from_us);
	for (int k = -1; k < 60; k++) {
		int64_t start = s_local_instant(day0 + k, a), end = s_local_instant(day0 + k + (z <= a), z);
		if (start >= to_us)
			break;
		int64_t lo = from_us > start ? from_us : start, hi = to_us < end ? to_us : end;
		if (hi - lo >= need)
			return 1;
	}
	return 0;
}

/* --- groups --- */

static int s_add_group(struct yj_report *r, const char *name, const char *label, size_t *cap)
{
	if (s_grow((void **)&r->gname, cap, r->ngroups, sizeof(char *)))
		return YJ_ENOMEM;
	char **nl = realloc(r->glabel, *cap * sizeof(char *));
	if (!nl)
		return YJ_ENOMEM;
	r->glabel = nl;
	r->gname[r->ngroups] = strdup(name);
	r->glabel[r->ngroups] = strdup(label ? label : name);
	r->ngroups++;
	return r->gname[r->ngroups - 1] && r->glabel[r->ngroups - 1] ? 0 : YJ_ENOMEM;
}

static int s_groups(struct yj_report *r)
{
	size_t cap = 0;
	char name[16];
	int rc = s_add_group(r, "all", "All children", &cap);
	r->gstart[D_AGE] = r->ngroups;
	for (int a = 10; a <= 17 && !rc; a++) {
		snprintf(name, sizeof(name), "%d", a);
		rc = s_add_group(r, name, NULL, &cap);
	}
	if (!rc)
		rc = s_add_group(r, "unknown", NULL, &cap);
	r->gcount[D_AGE] = r->ngroups - r->gstart[D_AGE];
	r->gstart[D_GENDER] = r->ngroups;
	for (size_t i = 0; i < 4 && !rc; i++)
		rc = s_add_group(r, s_genders[i], NULL, &cap);
	r->gcount[D_GENDER] = r->ngroups - r->gstart[D_GENDER];
	r->gstart[D_ETH] = r->ngroups;
	const struct yj_ethnicity *e;
	for (size_t i = 0; !rc && (e = yj_ref_ethnicity_at(r->ref, i)); i++)
		rc = s_add_group(r, e->code, e->label, &cap);
	if (!rc)
		rc = s_add_group(r, "unknown", "Not recorded", &cap);
	r->gcount[D_ETH] = r->ngroups - r->gstart[D_ETH];
	r->gstart[D_LAC] = r->ngroups;
	for (size_t i = 0; i < 3 && !rc; i++)
		rc = s_add_group(r, s_lac[i], NULL, &cap);
	r->gcount[D_LAC] = r->ngroups - r->gstart[D_LAC];
	return rc;
}

static uint16_t s_group_of(const struct yj_report *r, int dim, const char *name)
{
	size_t s = r->gstart[dim], n = r->gcount[dim];
	for (size_t i = 0; name && i < n; i++) {
		if (!strcmp(r->gname[s + i], name))
			return (uint16_t)(s + i);
	}
	return (uint16_t)(s + n - 1); /* every dimension's last group is "unknown" */
}

/* --- the walk --- */

struct s_walk {
	struct yj_report *r;
	struct yj_txn *txn;
	const struct yj_recipient *yjs;
	struct yj_arena dec;  /* each event is decoded here, and forgotten at the next: owned */
	const struct yj_report_params *p;
};

static int s_home_here(const struct yj_recipient *yjs, const char *la)
{
	for (size_t i = 0; yjs && la && i < yjs->las.n; i++) {
		if (!strcmp(yjs->las.v[i], la))
			return 1;
	}
	return 0;
}

/* The instant the child's age is judged at, as the normaliser does per feed. */
static int64_t s_age_at(const Yjlink__V1__Event *ev)
{
	/* body is a oneof: only the member body_case names may be read. */
	switch (ev->body_case) {
	case YJLINK__V1__EVENT__BODY_CUSTODY:
		if (ev->custody && ev->custody->arrived_at)
			return ev->custody->arrived_at->unix_us;
		break;
	case YJLINK__V1__EVENT__BODY_ARREST:
		if (ev->arrest && ev->arrest->arrested_at)
			return ev->arrest->arrested_at->unix_us;
		break;
	case YJLINK__V1__EVENT__BODY_INTERVIEW:
		if (ev->interview && ev->interview->at)
			return ev->interview->at->unix_us;
		break;
	default:
		break;
	}
	if (ev->body_case == YJLINK__V1__EVENT__BODY_OUTCOME && ev->outcome && ev->outcome->offence_date) {
		int y, m, d;
		if (!s_parse_date(ev->outcome->offence_date, &y, &m, &d))
			return s_local_midnight(y, m, d) + INT64_C(43200000000);
	}
	return ev->occurred_at ? ev->occurred_at->unix_us : 0;
}

/* The child as this (newer) message describes them. */
static void s_profile(struct yj_report *r, struct s_child *c, const Yjlink__V1__Event *ev, const struct s_walk *w)
{
	const Yjlink__V1__Child *ch = ev->child;
	char age[8] = "unknown";
	/* Without a date of birth, the age the child appeared to be
	 * (interfaces.md §2) is the best there is for the age breakdown; the
	 * child still counts in children_unknown_dob. */
	int a = ch && ch->date_of_birth ? s_age(ch->date_of_birth, s_age_at(ev))
		: ch && ch->has_apparent_age ? (int)ch->apparent_age : -1;
	if (a >= 10 && a <= 17)
		snprintf(age, sizeof(age), "%d", a);
	uint8_t keep = c->flags & C_FIRST;
	c->flags = keep;
	c->g[D_AGE] = s_group_of(r, D_AGE, age);
	c->g[D_GENDER] = s_group_of(r, D_GENDER, ch ? ch->gender : NULL);
	c->g[D_ETH] = s_group_of(r, D_ETH, ch ? ch->ethnicity : NULL);
	c->g[D_LAC] = s_group_of(r, D_LAC, ch && ch->has_looked_after ? (ch->looked_after ? "yes" : "no") : NULL);
	if (!ch || !ch->date_of_birth)
		c->flags |= C_NODOB;
	if (!ch || !ch->ethnicity || !strcmp(ch->ethnicity, "NS"))
		c->flags |= C_ETH_NS;
	if (!ch || !ch->has_looked_after)
		c->flags |= C_LAC_UNK;
	if (!w->yjs || s_home_here(w->yjs, ch ? ch->home_la : NULL))
		c->flags |= C_HOME;
}

static int s_status_ix(const char *s)
{
	for (int i = 0; s && i < S_NSTATUS; i++) {
		if (!strcmp(s, s_statuses[i]))
			return i;
	}
	return -1;
}

static int s_item_add(struct yj_report *r, struct s_map *m, struct s_item **v, size_t *cap, const char *key,
		      uint32_t child, struct s_item **out)
{
	uint32_t ix;
	int added, rc = s_map_get(r, m, key, &ix, &added);
	if (rc)
		return rc;
	if (added) {
		if (s_grow((void **)v, cap, ix, sizeof(**v)))
			return YJ_ENOMEM;
		memset(&(*v)[ix], 0, sizeof(**v));
		(*v)[ix].disp = -1;
	}
	(*v)[ix].child = child;
	*out = &(*v)[ix];
	return 0;
}

/* "<force>/<id>" into buf (cut to fit), as the store's indexes name a record:
 * by hand, since it runs twice per event. */
static void s_key(char *buf, size_t size, const char *force, const char *id)
{
	size_t a = strlen(force), b = strlen(id);
	if (a > size - 2)
		a = size - 2;
	if (b > size - 2 - a)
		b = size - 2 - a;
	memcpy(buf, force, a);
	buf[a] = '/';
	memcpy(buf + a + 1, id, b);
	buf[a + 1 + b] = 0;
}

static int s_fold(struct s_walk *w, const Yjlink__V1__Record *rec)
{
	struct yj_report *r = w->r;
	const Yjlink__V1__Event *ev = rec->event;
	char key[300];
	uint32_t ci;
	int added, rc;

	s_key(key, sizeof(key), ev->force ? ev->force : "", ev->child && ev->child->person_id ? ev->child->person_id : "");
	if ((rc = s_map_get(r, &r->children_m, key, &ci, &added)))
		return rc;
	if (added) {
		if (s_grow((void **)&r->children, &r->cap_c, ci, sizeof(*r->children)))
			return YJ_ENOMEM;
		memset(&r->children[ci], 0, sizeof(*r->children));
		r->children[ci].min_seq = rec->seq;
	}
	struct s_child *c = &r->children[ci];
	if (rec->seq < c->min_seq)
		c->min_seq = rec->seq;
	/* The walk is in occurred_at order: this message is the child's newest so far. */
	s_profile(r, c, ev, w);

	const char *force = ev->force ? ev->force : "";
	struct s_item *it;
	if (ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY && ev->custody) {
		const Yjlink__V1__Custody *cu = ev->custody;
		uint32_t ri;
		s_key(key, sizeof(key), force, cu->record_id ? cu->record_id : "");
		if ((rc = s_map_get(r, &r->records_m, key, &ri, &added)))
			return rc;
		if (added) {
			if (s_grow((void **)&r->records, &r->cap_r, ri, sizeof(*r->records)))
				return YJ_ENOMEM;
			memset(&r->records[ri], 0, sizeof(*r->records));
		}
		struct s_record *rr = &r->records[ri];
		rr->child = ci;
		if (cu->arrived_at) {
			rr->arrived_us = cu->arrived_at->unix_us;
			if (rr->arrived_us >= r->from_us && rr->arrived_us < r->to_us)
				rr->flags |= R_OPENED;
			else
				rr->flags &= (uint8_t)~R_OPENED;
		}
		int si = s_status_ix(cu->status);
		if (si >= 0) {
			rr->status = (uint8_t)si;
			rr->status_us = cu->status_at ? cu->status_at->unix_us : ev->occurred_at->unix_us;
			if (si == S_CH_REMANDED)
				rr->flags |= R_REMANDED;
			if (si == S_TRANSFERRED)
				rr->flags |= R_TRANSFERRED;
		}
		const Yjlink__V1__AppropriateAdult *aa = cu->appropriate_adult;
		if (aa && aa->called_at && aa->arrived_at) {
			rr->flags |= R_AA;
			rr->aa_called_us = aa->called_at->unix_us;
			rr->aa_arrived_us = aa->arrived_at->unix_us;
		}
	} else if (ev->body_case == YJLINK__V1__EVENT__BODY_ARREST && ev->arrest) {
		s_key(key, sizeof(key), force, ev->arrest->arrest_id ? ev->arrest->arrest_id : "");
		if ((rc = s_item_add(r, &r->arrests_m, &r->arrests, &r->cap_a, key, ci, &it)))
			return rc;
		it->v = ev->arrest->has_summons && ev->arrest->summons;
	} else if (ev->body_case == YJLINK__V1__EVENT__BODY_INTERVIEW && ev->interview) {
		s_key(key, sizeof(key), force, ev->interview->interview_id ? ev->interview->interview_id : "");
		if ((rc = s_item_add(r, &r->interviews_m, &r->interviews, &r->cap_i, key, ci, &it)))
			return rc;
		it->v = ev->interview->status && !strcmp(ev->interview->status, "cancelled");
	} else if (ev->body_case == YJLINK__V1__EVENT__BODY_OUTCOME && ev->outcome) {
		s_key(key, sizeof(key), force, ev->outcome->case_ref ? ev->outcome->case_ref : "");
		if ((rc = s_item_add(r, &r->outcomes_m, &r->outcomes, &r->cap_o, key, ci, &it)))
			return rc;
		it->v = ev->outcome->code;
		it->disp = -1;
		for (size_t k = 0; ev->outcome->disposal && k < sizeof(s_disposals) / sizeof(*s_disposals); k++) {
			if (!strcmp(ev->outcome->disposal, s_disposals[k]))
				it->disp = (int8_t)k;
		}
	}
	return 0;
}

static int s_walk_cb(void *arg, uint64_t seq)
{
	struct s_walk *w = arg;
	const void *raw;
	size_t len;
	int rc = yj_events_get(w->txn, seq, &raw, &len);
	if (rc == YJ_ENOENT)
		return 0;
	if (rc)
		return rc;
	/* Decoded into the arena: a reset, not hundreds of frees, per event. */
	yj_arena_reset(&w->dec);
	Yjlink__V1__Record *rec = yjlink__v1__record__unpack(&w->dec.pb, len, raw); /* in w->dec */
	if (!rec || !rec->event || !rec->event->occurred_at)
		return 0;
	if (rec->event->occurred_at->unix_us >= w->r->to_us)
		return 1; /* past the period: the index is in occurred_at order */
	w->r->events++;
	return s_fold(w, rec);
}

static int s_first_cb(void *arg, uint64_t seq)
{
	*(uint64_t *)arg = seq;
	return 1;
}

static int s_read(struct yj_txn *txn, void *arg)
{
	struct s_walk *w = arg;
	w->txn = txn;
	if (w->p->in_snapshot)
		w->p->in_snapshot(w->p->in_snapshot_arg);
	int rc = yj_events_since(txn, w->r->from_us, s_walk_cb, w);
	if (rc < 0)
		return rc;
	/* First contact: the child's first event ever stored is one of the period's. */
	for (size_t i = 0; i < w->r->children_m.n; i++) {
		uint64_t first = 0;
		rc = yj_events_of_child(txn, w->r->children_m.keys[i], s_first_cb, &first);
		if (rc < 0)
			return rc;
		if (first && first == w->r->children[i].min_seq)
			w->r->children[i].flags |= C_FIRST;
	}
	return 0;
}

/* --- counting --- */

static void s_inc(struct yj_report *r, enum s_fig f, const struct s_child *c, double by)
{
	CELL(r, f, 0)->value += by;
	for (int d = 0; d < S_NDIM; d++)
		CELL(r, f, c->g[d])->value += by;
}

static int s_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n): the ceil(p/100 * n)-th value. */
static int64_t s_rank(const int64_t *v, size_t n, unsigned p)
{
	size_t k = (p * n + 99) / 100;
	return v[k ? k - 1 : 0];
}

/* Median, p90 (and longest) per group of the (group-tagged) minutes in vals;
 * vals holds pairs (minutes, child) sorted by minutes. */
static int s_stats(struct yj_report *r, const int64_t *vals, size_t n, enum s_fig fmed, enum s_fig fp90,
		   int longest)
{
	int64_t *tmp = malloc((n ? n : 1) * sizeof(*tmp)); /* owned here */
	if (!tmp)
		return YJ_ENOMEM;
	for (size_t g = 0; g < r->ngroups; g++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const struct s_child *c = &r->children[vals[2 * i + 1]];
			if (g == 0 || c->g[D_AGE] == g || c->g[D_GENDER] == g || c->g[D_ETH] == g || c->g[D_LAC] == g)
				tmp[k++] = vals[2 * i];
		}
		struct s_cell *cm = CELL(r, fmed, g), *cp = CELL(r, fp90, g);
		cm->n = cp->n = (uint32_t)k;
		if (!k)
			continue;
		cm->present = cp->present = 1;
		cm->value = (double)s_rank(tmp, k, 50);
		cp->value = (double)s_rank(tmp, k, 90);
		if (longest) {
			struct s_cell *cl = CELL(r, F_TIC_LONGEST, g);
			cl->n = (uint32_t)k;
			cl->present = 1;
			cl->value = (double)tmp[k - 1];
		}
	}
	free(tmp);
	return 0;
}

static int s_cmp_pair(const void *a, const void *b) { return s_cmp_i64(a, b); }

static int s_code_fig(const struct yj_report *r, int code)
{
	for (size_t i = 0; i < r->ncodes; i++) {
		if (r->codes[i] == code)
			return (int)(F_NBASE + i);
	}
	return -1;
}

static int s_count(struct yj_report *r)
{
	int rc = 0;
	int64_t *tic = NULL, *aa = NULL; /* (minutes, child) pairs, owned here */
	size_t ntic = 0, naa = 0;
	int64_t until_end = r->now_us < r->to_us ? r->now_us : r->to_us;

	/* Outcome codes seen among the cases in scope, ascending. */
	for (size_t i = 0; i < r->outcomes_m.n; i++) {
		if (!(r->children[r->outcomes[i].child].flags & C_HOME) || s_code_fig(r, r->outcomes[i].v) >= 0)
			continue;
		if (s_grow((void **)&r->codes, &r->cap_codes, r->ncodes, sizeof(int)))
			return YJ_ENOMEM;
		size_t j = r->ncodes++;
		while (j > 0 && r->codes[j - 1] > r->outcomes[i].v) {
			r->codes[j] = r->codes[j - 1];
			j--;
		}
		r->codes[j] = r->outcomes[i].v;
	}
	r->nfig = F_NBASE + r->ncodes;
	r->cells = calloc(r->nfig * r->ngroups, sizeof(*r->cells));
	tic = malloc((r->records_m.n ? r->records_m.n : 1) * 2 * sizeof(*tic));
	aa = malloc((r->records_m.n ? r->records_m.n : 1) * 2 * sizeof(*aa));
	int32_t d0 = s_local_day(r->from_us), d1 = s_local_day(r->to_us - 1);
	/* Weeks start on Monday (1970-01-01 was a Thursday). */
	int32_t w0 = d0 - (int32_t)(((d0 % 7) + 7 + 3) % 7);
	r->nweeks = (size_t)((d1 - w0) / 7 + 1);
	r->weeks = calloc(r->nweeks, sizeof(*r->weeks));
	if (!r->cells || !tic || !aa || !r->weeks) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < r->nweeks; k++) {
		int y;
		unsigned m, d;
		yj_civil_from_days(w0 + (int32_t)(7 * k), &y, &m, &d);
		r->weeks[k].start_us = s_local_midnight(y, (int)m, (int)d);
		r->weeks[k].det.present = 1;
	}
	for (size_t i = 0; i < r->records_m.n; i++) {
		const struct s_record *rr = &r->records[i];
		struct s_child *c = &r->children[rr->child];
		if (!(rr->flags & R_OPENED) || !(c->flags & C_HOME))
			continue;
		c->detentions++;
		s_inc(r, F_DETENTIONS, c, 1);
		s_inc(r, s_status_fig[rr->status], c, 1);
		if (rr->status == S_CH_BAILED || rr->status == S_CH_REMANDED)
			s_inc(r, F_CHARGED, c, 1);
		if (rr->flags & R_REMANDED)
			s_inc(r, F_PACE_REQ, c, 1);
		if (rr->flags & R_TRANSFERRED)
			s_inc(r, F_PACE_MADE, c, 1);
		int released = rr->status != S_DETAINED;
		int64_t until = released ? rr->status_us : until_end;
		if (s_overnight(r->cfg, rr->arrived_us, until))
			s_inc(r, F_OVERNIGHT, c, 1);
		if (released && rr->status_us >= rr->arrived_us) {
			tic[2 * ntic] = (rr->status_us - rr->arrived_us) / 60000000;
			tic[2 * ntic++ + 1] = rr->child;
		} else if (!released) {
			s_inc(r, F_DQ_NO_RESULT, c, 1);
		}
		if ((rr->flags & R_AA) && rr->aa_arrived_us >= rr->aa_called_us) {
			aa[2 * naa] = (rr->aa_arrived_us - rr->aa_called_us) / 60000000;
			aa[2 * naa++ + 1] = rr->child;
		} else {
			s_inc(r, F_DQ_AA_MISSING, c, 1);
		}
		int32_t day = s_local_day(rr->arrived_us);
		size_t wk = (size_t)((day - w0) / 7);
		if (wk < r->nweeks)
			r->weeks[wk].det.value++;
	}
	for (size_t i = 0; i < r->arrests_m.n; i++) {
		const struct s_child *c = &r->children[r->arrests[i].child];
		if (c->flags & C_HOME)
			s_inc(r, r->arrests[i].v ? F_SUMMONSES : F_ARRESTS, c, 1);
	}
	for (size_t i = 0; i < r->interviews_m.n; i++) {
		const struct s_child *c = &r->children[r->interviews[i].child];
		if ((c->flags & C_HOME) && !r->interviews[i].v)
			s_inc(r, F_VI, c, 1);
	}
	for (size_t i = 0; i < r->outcomes_m.n; i++) {
		const struct s_item *o = &r->outcomes[i];
		const struct s_child *c = &r->children[o->child];
		if (!(c->flags & C_HOME))
			continue;
		s_inc(r, F_OUTCOMES, c, 1);
		s_inc(r, o->disp >= 0 ? (enum s_fig)(F_D_CHARGE + o->disp) : F_D_NONE, c, 1);
		s_inc(r, (enum s_fig)s_code_fig(r, o->v), c, 1);
	}
	for (size_t i = 0; i < r->children_m.n; i++) {
		const struct s_child *c = &r->children[i];
		if (!(c->flags & C_HOME))
			continue;
		s_inc(r, F_CHILDREN, c, 1);
		if (c->detentions)
			s_inc(r, F_CHILDREN_DETAINED, c, 1);
		if (c->detentions >= 2)
			s_inc(r, F_REPEAT, c, 1);
		if (c->flags & C_FIRST)
			s_inc(r, F_FIRST_CONTACTS, c, 1);
		if (c->flags & C_NODOB)
			s_inc(r, F_UNKNOWN_DOB, c, 1);
		if (c->flags & C_ETH_NS)
			s_inc(r, F_DQ_ETHNICITY, c, 1);
		if (c->flags & C_LAC_UNK)
			s_inc(r, F_DQ_LAC_UNKNOWN, c, 1);
	}
	qsort(tic, ntic, 2 * sizeof(*tic), s_cmp_pair);
	qsort(aa, naa, 2 * sizeof(*aa), s_cmp_pair);
	if ((rc = s_stats(r, tic, ntic, F_TIC_MED, F_TIC_P90, 1)) || (rc = s_stats(r, aa, naa, F_AA_MED, F_AA_P90, 0)))
		goto out;
	/* The looked-after share per group: looked-after children detained in the group over all detained in it. */
	for (size_t g = 0; g < r->ngroups; g++) {
		double yes = 0;
		for (size_t i = 0; i < r->children_m.n; i++) {
			const struct s_child *c = &r->children[i];
			if (!(c->flags & C_HOME) || !c->detentions || c->g[D_LAC] != r->gstart[D_LAC])
				continue;
			if (g == 0 || c->g[D_AGE] == g || c->g[D_GENDER] == g || c->g[D_ETH] == g || c->g[D_LAC] == g)
				yes++;
		}
		struct s_cell *s = CELL(r, F_LAC_SHARE, g);
		double all = CELL(r, F_CHILDREN_DETAINED, g)->value;
		s->n = (uint32_t)all;
		s->present = all > 0;
		s->value = all > 0 ? round(1000.0 * yes / all) / 10.0 : 0;
		/* The share's numerator and the rest are cross-tabulated counts no other cell shows. */
		if (yes < r->threshold || all - yes < r->threshold)
			s->suppressed = 1;
	}
	for (size_t f = 0; f < r->nfig; f++) {
		for (size_t g = 0; g < r->ngroups; g++) {
			struct s_cell *x = CELL(r, f, g);
			if (f < F_NBASE && s_figs[f].kind == S_COUNT)
				x->present = 1;
			else if (f >= F_NBASE)
				x->present = 1;
		}
	}
out:
	free(tic);
	free(aa);
	return rc;
}

/* --- suppression --- */

static int s_is_count(size_t f) { return f >= F_NBASE || s_figs[f].kind == S_COUNT; }

/* In a set of cells that add up to a shown total (v[0], the total, then its
 * parts), one suppressed cell can be worked out: suppress the smallest other
 * part too, the total only when no other part is shown. 1 when something
 * changed. */
static int s_secondary(struct s_cell **v, size_t n)
{
	size_t sup = 0;
	struct s_cell *low = NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i]->suppressed)
			sup++;
		else if (i > 0 && (!low || v[i]->value < low->value))
			low = v[i];
	}
	if (!low && n && !v[0]->suppressed)
		low = v[0];
	if (sup != 1 || !low)
		return 0;
	low->suppressed = 1;
	return 1;
}

static int s_suppress(struct yj_report *r)
{
	size_t maxn = r->ngroups + r->nweeks + S_NSTATUS + r->ncodes + 16;
	struct s_cell **v = malloc(maxn * sizeof(*v)); /* owned here */
	if (!v)
		return YJ_ENOMEM;
	double t = r->threshold;
	for (size_t f = 0; f < r->nfig; f++) {
		for (size_t g = 0; g < r->ngroups; g++) {
			struct s_cell *x = CELL(r, f, g);
			if (s_is_count(f) && x->value < t)
				x->suppressed = 1;
			else if (f < F_NBASE && s_figs[f].kind == S_STAT && x->n < t)
				x->suppressed = 1;
			else if (f < F_NBASE && s_figs[f].kind == S_SHARE && !x->present)
				x->suppressed = 1;
		}
	}
	for (size_t k = 0; k < r->nweeks; k++)
		r->weeks[k].det.suppressed = r->weeks[k].det.value < t;
	for (int changed = 1, rounds = 0; changed && rounds < 100; rounds++) {
		changed = 0;
		for (size_t f = 0; f < r->nfig; f++) {
			if (!s_is_count(f))
				continue;
			for (int d = 0; d < S_NDIM; d++) {
				size_t n = 0;
				v[n++] = CELL(r, f, 0);
				for (size_t g = 0; g < r->gcount[d]; g++)
					v[n++] = CELL(r, f, r->gstart[d] + g);
				/* the total is a cell of the set: total = sum of the groups */
				changed |= s_secondary(v, n);
			}
		}
		for (size_t g = 0; g < r->ngroups; g++) {
			size_t n = 0;
			v[n++] = CELL(r, F_DETENTIONS, g);
			for (int s = 0; s < S_NSTATUS; s++)
				v[n++] = CELL(r, s_status_fig[s], g);
			changed |= s_secondary(v, n);
			/* "charged" is only a convenience sum of two figures of the spec:
			 * where one of them is hidden, hide the sum rather than the other. */
			struct s_cell *ch = CELL(r, F_CHARGED, g);
			if (!ch->suppressed && (CELL(r, F_CH_BAILED, g)->suppressed || CELL(r, F_CH_REMANDED, g)->suppressed)) {
				ch->suppressed = 1;
				changed = 1;
			}
			n = 0;
			v[n++] = CELL(r, F_OUTCOMES, g);
			for (size_t k = 0; k < r->ncodes; k++)
				v[n++] = CELL(r, F_NBASE + k, g);
			changed |= s_secondary(v, n);
			n = 0;
			v[n++] = CELL(r, F_OUTCOMES, g);
			for (int k = F_D_CHARGE; k <= F_D_NONE; k++)
				v[n++] = CELL(r, k, g);
			changed |= s_secondary(v, n);
		}
		size_t n = 0;
		v[n++] = CELL(r, F_DETENTIONS, 0);
		for (size_t k = 0; k < r->nweeks; k++)
			v[n++] = &r->weeks[k].det;
		changed |= s_secondary(v, n);
	}
	/* A share rests on counts: none where its total is hidden. */
	for (size_t g = 0; g < r->ngroups; g++) {
		if (CELL(r, F_CHILDREN_DETAINED, g)->suppressed)
			CELL(r, F_LAC_SHARE, g)->suppressed = 1;
	}
	free(v);
	return 0;
}

/* --- population --- */

static int s_population(struct yj_report *r, const char *text, char *err, size_t errlen)
{
	r->pop = malloc(r->ngroups * sizeof(*r->pop));
	if (!r->pop)
		return YJ_ENOMEM;
	for (size_t g = 0; g < r->ngroups; g++)
		r->pop[g] = -1;
	if (!text || !*text)
		return 0;
	const char *p = text;
	int line = 0;
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char buf[512];
		line++;
		if (len >= sizeof(buf)) {
			snprintf(err, errlen, "population: line %d too long", line);
			return YJ_EINVAL;
		}
		memcpy(buf, p, len);
		buf[len] = 0;
		if (len && buf[len - 1] == '\r')
			buf[--len] = 0;
		p = e ? e + 1 : p + len;
		if (!len)
			continue;
		if (buf[0] == '#') {
			const char *s = buf + 1;
			while (*s == ' ')
				s++;
			if (!r->pop_source && !strncmp(s, "source:", 7) && !(r->pop_source = strdup(s + 7)))
				return YJ_ENOMEM;
			continue;
		}
		char dim[64], grp[64];
		double n;
		if (sscanf(buf, "%63[^,],%63[^,],%lf", dim, grp, &n) != 3 || n < 0) {
			if (!strcmp(buf, "dimension,group,children"))
				continue;
			snprintf(err, errlen, "population: line %d: expected dimension,group,children", line);
			return YJ_EINVAL;
		}
		int d;
		for (d = 0; d < S_NDIM && strcmp(dim, s_dim_names[d]); d++)
			;
		if (!strcmp(dim, "all") && !strcmp(grp, "all")) {
			r->pop[0] = n;
			continue;
		}
		size_t g;
		for (g = 0; d < S_NDIM && g < r->gcount[d] && strcmp(r->gname[r->gstart[d] + g], grp); g++)
			;
		if (d == S_NDIM || g == r->gcount[d]) {
			snprintf(err, errlen, "population: line %d: unknown dimension or group '%s,%s'", line, dim, grp);
			return YJ_EINVAL;
		}
		r->pop[r->gstart[d] + g] = n;
	}
	if (!r->pop_source && !(r->pop_source = strdup(" not given")))
		return YJ_ENOMEM;
	return 0;
}

/* --- build --- */

int yj_report_build(struct yj_store *store, const struct yj_config *cfg, const struct yj_refdata *ref,
		    const struct yj_report_params *p, struct yj_report **out, char *err, size_t errlen)
{
	int y0, m0, d0, y1, m1, d1, rc = 0;
	struct yj_report *r = NULL;
	const struct yj_recipient *yjs = NULL;

	*out = NULL;
	if (s_parse_date(p->from, &y0, &m0, &d0) || s_parse_date(p->to, &y1, &m1, &d1)) {
		snprintf(err, errlen, "--from and --to must be dates YYYY-MM-DD");
		return YJ_EINVAL;
	}
	int32_t z0 = yj_days_from_civil(y0, (unsigned)m0, (unsigned)d0), z1 = yj_days_from_civil(y1, (unsigned)m1, (unsigned)d1);
	if (z1 < z0 || z1 - z0 > 3700) {
		snprintf(err, errlen, "the period must run forwards and cover at most 3,700 days");
		return YJ_EINVAL;
	}
	if (p->yjs && *p->yjs) {
		yjs = yj_config_recipient(cfg, p->yjs);
		if (!yjs || yjs->kind != YJ_RCPT_YJS) {
			snprintf(err, errlen, "no yjs recipient '%.200s' in the config", p->yjs);
			return YJ_EINVAL;
		}
	}
	if (!(r = calloc(1, sizeof(*r)))) /* owned by the caller once returned */
		return YJ_ENOMEM;
	yj_arena_init(&r->arena, 256 * 1024);
	r->cfg = cfg;
	r->ref = ref;
	r->threshold = (int)cfg->report_suppress_below;
	snprintf(r->from, sizeof(r->from), "%s", p->from);
	snprintf(r->to, sizeof(r->to), "%s", p->to);
	r->from_us = s_local_midnight(y0, m0, d0);
	r->to_us = s_local_midnight(y1, m1, d1 + 1);
	r->now_us = p->now_us;
	r->scope = strdup(yjs ? yjs->id : "force");
	r->scope_name = strdup(yjs ? (yjs->name ? yjs->name : yjs->id) : (cfg->deployment_name ? cfg->deployment_name : "force"));
	if (!r->scope || !r->scope_name || (rc = s_groups(r)) || (rc = s_population(r, p->population, err, errlen)))
		goto out;
	struct s_walk w = { .r = r, .yjs = yjs, .p = p };
	yj_arena_init(&w.dec, 64 * 1024);
	rc = yj_store_read(store, s_read, &w);
	yj_arena_free(&w.dec);
	if (rc < 0) {
		snprintf(err, errlen, "store read failed: %s", yj_strerror(rc));
		goto out;
	}
	rc = 0;
	if ((rc = s_count(r)) || (rc = s_suppress(r)))
		goto out;
	/* The tables were for counting; the cells are the report. */
	s_map_free(&r->children_m);
	s_map_free(&r->records_m);
	s_map_free(&r->arrests_m);
	s_map_free(&r->interviews_m);
	s_map_free(&r->outcomes_m);
	free(r->children);
	free(r->records);
	free(r->arrests);
	free(r->interviews);
	free(r->outcomes);
	r->children = NULL;
	r->records = NULL;
	r->arrests = r->interviews = r->outcomes = NULL;
	yj_arena_free(&r->arena);
	r->cfg = NULL;
out:
	if (rc) {
		if (rc == YJ_ENOMEM)
			snprintf(err, errlen, "out of memory");
		yj_report_free(&r);
		return rc;
	}
	*out = r;
	return 0;
}

size_t yj_report_events_read(const struct yj_report *r) { return r ? r->events : 0; }

void yj_report_free(struct yj_report **pr)
{
	struct yj_report *r = pr ? *pr : NULL;
	if (!r)
		return;
	s_map_free(&r->children_m);
	s_map_free(&r->records_m);
	s_map_free(&r->arrests_m);
	s_map_free(&r->interviews_m);
	s_map_free(&r->outcomes_m);
	free(r->children);
	free(r->records);
	free(r->arrests);
	free(r->interviews);
	free(r->outcomes);
	yj_arena_free(&r->arena);
	for (size_t g = 0; g < r->ngroups; g++) {
		free(r->gname[g]);
		free(r->glabel[g]);
	}
	free(r->gname);
	free(r->glabel);
	free(r->codes);
	free(r->cells);
	free(r->weeks);
	free(r->pop);
	free(r->pop_source);
	free(r->scope);
	free(r->scope_name);
	free(r);
	*pr = NULL;
}

/* --- names --- */

static void s_fig_id(const struct yj_report *r, size_t f, char *buf, size_t size)
{
	if (f < F_NBASE)
		snprintf(buf, size, "%s", s_figs[f].id);
	else
		snprintf(buf, size, "outcome_%d", r->codes[f - F_NBASE]);
}

static void s_fig_label(const struct yj_report *r, size_t f, char *buf, size_t size)
{
	if (f < F_NBASE) {
		snprintf(buf, size, "%s", s_figs[f].label);
		return;
	}
	const struct yj_outcome *o = yj_ref_outcome(r->ref, r->codes[f - F_NBASE]);
	/* Counted as sent, and marked: such a code about a child is the force's
	 * data to correct, not a disposal the board should read as given. */
	snprintf(buf, size, "Outcome %d: %s%s", r->codes[f - F_NBASE], o ? o->name : "(not in the outcome table)",
		 o && !o->applies_to_children ? " (data quality: cannot apply to a child)" : "");
}

/* --- disparity --- */

/* The funnel: arrests -> detentions -> RUI / NFA / charged -> outcomes. */
static const enum s_fig s_funnel[] = { F_ARRESTS, F_DETENTIONS, F_RUI, F_NFA, F_CHARGED, F_OUTCOMES };
static const enum s_fig s_funnel_base[] = { F_ARRESTS, F_ARRESTS, F_DETENTIONS, F_DETENTIONS, F_DETENTIONS, F_DETENTIONS };
#define S_NFUNNEL 6
/* Reference groups for relative rate indices (docs/report.md). */
static const char *const s_reference[S_NDIM] = { NULL, "male", "W1", "no" };
/* A comparison rests on small numbers when a count in it is under this. */
#define S_SMALL 20

static size_t s_ref_group(const struct yj_report *r, int d)
{
	if (!s_reference[d])
		return 0;
	return s_group_of(r, d, s_reference[d]);
}

/* The stage's rate in group g (per previous stage; the first per 1,000
 * children when a population is known, else itself): < 0 when unavailable. */
static double s_rate(const struct yj_report *r, size_t st, size_t g, int *small)
{
	const struct s_cell *n = CELL(r, s_funnel[st], g);
	if (n->suppressed)
		return -1;
	if (n->value < S_SMALL)
		*small = 1;
	if (st == 0) {
		return r->pop[g] > 0 ? 1000.0 * n->value / r->pop[g] : -1;
	}
	const struct s_cell *b = CELL(r, s_funnel_base[st], g);
	if (b->suppressed || b->value <= 0)
		return -1;
	if (b->value < S_SMALL)
		*small = 1;
	return n->value / b->value;
}

static cJSON *s_num_or_null(double v) { return v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(round(v * 1000) / 1000); }

static cJSON *s_disparity_json(const struct yj_report *r)
{
	cJSON *o = cJSON_CreateObject();
	char id[64];
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "population_source", r->pop_source ? r->pop_source + (r->pop_source[0] == ' ') : "none");
	cJSON *st = cJSON_AddArrayToObject(o, "stages");
	for (size_t s = 0; s < S_NFUNNEL; s++) {
		s_fig_id(r, s_funnel[s], id, sizeof(id));
		cJSON_AddItemToArray(st, cJSON_CreateString(id));
	}
	for (int d = 0; d < S_NDIM; d++) {
		size_t ref = s_ref_group(r, d);
		cJSON *dj = cJSON_AddObjectToObject(o, s_dim_names[d]);
		cJSON_AddStringToObject(dj, "reference", ref ? r->gname[ref] : "all");
		cJSON *gs = cJSON_AddObjectToObject(dj, "groups");
		for (size_t k = 0; k < r->gcount[d]; k++) {
			size_t g = r->gstart[d] + k;
			cJSON *gj = cJSON_AddObjectToObject(gs, r->gname[g]);
			cJSON *rates = cJSON_AddObjectToObject(gj, "rate"), *rri = cJSON_AddObjectToObject(gj, "rri");
			int small = 0;
			for (size_t s = 0; s < S_NFUNNEL; s++) {
				s_fig_id(r, s_funnel[s], id, sizeof(id));
				int sm = 0, smr = 0;
				double a = s_rate(r, s, g, &sm), b = s_rate(r, s, ref, &smr);
				cJSON_AddItemToObject(rates, id, s_num_or_null(a));
				cJSON_AddItemToObject(rri, id, s_num_or_null(a >= 0 && b > 0 ? a / b : -1));
				small |= sm | smr | (a < 0);
			}
			double pop = r->pop[g];
			cJSON_AddItemToObject(gj, "population", pop >= 0 ? cJSON_CreateNumber(pop) : cJSON_CreateNull());
			const struct s_cell *det = CELL(r, F_DETENTIONS, g);
			cJSON_AddItemToObject(gj, "detentions_per_1000",
					      s_num_or_null(pop > 0 && !det->suppressed ? 1000.0 * det->value / pop : -1));
			cJSON_AddBoolToObject(gj, "small_numbers", small);
		}
	}
	return o;
}

/* --- JSON --- */

/* {"value": N or null, "suppressed": bool} (interfaces.md §6). */
static cJSON *s_cell_json(const struct s_cell *x)
{
	cJSON *c = cJSON_CreateObject();
	if (!c)
		return NULL;
	if (x->suppressed || !x->present)
		cJSON_AddNullToObject(c, "value");
	else
		cJSON_AddNumberToObject(c, "value", x->value);
	cJSON_AddBoolToObject(c, "suppressed", x->suppressed);
	return c;
}

int yj_report_json(const struct yj_report *r, char **out)
{
	char id[64], label[300];
	cJSON *o = cJSON_CreateObject();
	*out = NULL;
	if (!o)
		return YJ_ENOMEM;
	cJSON_AddStringToObject(o, "from", r->from);
	cJSON_AddStringToObject(o, "to", r->to);
	cJSON_AddStringToObject(o, "scope", r->scope);
	cJSON_AddNumberToObject(o, "suppression_threshold", r->threshold);
	cJSON *figs = cJSON_AddObjectToObject(o, "figures");
	cJSON *labels = cJSON_AddObjectToObject(o, "labels");
	cJSON *fl = cJSON_AddObjectToObject(labels, "figures");
	for (size_t f = 0; f < r->nfig; f++) {
		s_fig_id(r, f, id, sizeof(id));
		s_fig_label(r, f, label, sizeof(label));
		cJSON_AddItemToObject(figs, id, s_cell_json(CELL(r, f, 0)));
		cJSON_AddStringToObject(fl, id, label);
	}
	cJSON *bd = cJSON_AddObjectToObject(o, "breakdowns");
	cJSON *gl = cJSON_AddObjectToObject(labels, "groups");
	for (int d = 0; d < S_NDIM; d++) {
		cJSON *dj = cJSON_AddObjectToObject(bd, s_dim_names[d]), *dl = cJSON_AddObjectToObject(gl, s_dim_names[d]);
		for (size_t k = 0; k < r->gcount[d]; k++) {
			size_t g = r->gstart[d] + k;
			cJSON *gj = cJSON_AddObjectToObject(dj, r->gname[g]);
			cJSON_AddStringToObject(dl, r->gname[g], r->glabel[g]);
			for (size_t f = 0; f < r->nfig; f++) {
				s_fig_id(r, f, id, sizeof(id));
				cJSON_AddItemToObject(gj, id, s_cell_json(CELL(r, f, g)));
			}
		}
	}
	cJSON *wk = cJSON_AddArrayToObject(o, "weekly");
	for (size_t k = 0; k < r->nweeks; k++) {
		cJSON *e = cJSON_CreateObject();
		struct tm tm;
		char d[16];
		s_local(r->weeks[k].start_us, &tm);
		strftime(d, sizeof(d), "%Y-%m-%d", &tm);
		cJSON_AddStringToObject(e, "week_start", d);
		cJSON_AddItemToObject(e, "detentions", s_cell_json(&r->weeks[k].det));
		cJSON_AddItemToArray(wk, e);
	}
	cJSON_AddItemToObject(o, "disparity", s_disparity_json(r));
	*out = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *out ? 0 : YJ_ENOMEM;
}

/* --- CSV --- */

/* One RFC 4180 field; a leading = + - @ TAB CR gets a quote mark so that a
 * spreadsheet does not run it as a formula. */
static void s_csv_field(FILE *f, const char *s)
{
	int quote = strpbrk(s, ",\"\r\n") != NULL;
	int guard = *s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r';
	if (quote || guard)
		fputc('"', f);
	if (guard)
		fputc('\'', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	if (quote || guard)
		fputc('"', f);
}

static void s_value_text(const struct yj_report *r, const struct s_cell *x, char *buf, size_t size)
{
	if (x->suppressed)
		snprintf(buf, size, "<%d", r->threshold);
	else if (!x->present)
		snprintf(buf, size, "%s", "");
	else if (x->value == floor(x->value))
		snprintf(buf, size, "%.0f", x->value);
	else
		snprintf(buf, size, "%.1f", x->value);
}

static void s_csv_row(FILE *f, const char *dim, const char *grp, const char *fig, const char *val)
{
	s_csv_field(f, dim);
	fputc(',', f);
	s_csv_field(f, grp);
	fputc(',', f);
	s_csv_field(f, fig);
	fputc(',', f);
	s_csv_field(f, val);
	fputs("\r\n", f);
}

int yj_report_csv(const struct yj_report *r, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len); /* *out owned by the caller after fclose */
	char id[64], val[32];
	if (!f)
		return YJ_ENOMEM;
	s_csv_row(f, "dimension", "group", "figure", "value");
	for (size_t f2 = 0; f2 < r->nfig; f2++) {
		s_fig_id(r, f2, id, sizeof(id));
		s_value_text(r, CELL(r, f2, 0), val, sizeof(val));
		s_csv_row(f, "all", "all", id, val);
	}
	for (int d = 0; d < S_NDIM; d++) {
		for (size_t k = 0; k < r->gcount[d]; k++) {
			size_t g = r->gstart[d] + k;
			for (size_t f2 = 0; f2 < r->nfig; f2++) {
				s_fig_id(r, f2, id, sizeof(id));
				s_value_text(r, CELL(r, f2, g), val, sizeof(val));
				s_csv_row(f, s_dim_names[d], r->gname[g], id, val);
			}
		}
	}
	for (size_t k = 0; k < r->nweeks; k++) {
		struct tm tm;
		char d[16];
		s_local(r->weeks[k].start_us, &tm);
		strftime(d, sizeof(d), "%Y-%m-%d", &tm);
		s_value_text(r, &r->weeks[k].det, val, sizeof(val));
		s_csv_row(f, "week", d, "detentions", val);
	}
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return YJ_ENOMEM;
	}
	return 0;
}

/* --- HTML --- */

static void s_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static void s_html_value(FILE *f, const struct yj_report *r, const struct s_cell *x)
{
	char val[32];
	s_value_text(r, x, val, sizeof(val));
	if (!*val)
		fputs("&ndash;", f);
	else
		s_esc(f, val);
}

/* A horizontal bar chart of figure f over dimension d's groups (suppressed
 * bars drawn hatched, without a length), then the same numbers as a table. */
static void s_bars(FILE *f, const struct yj_report *r, size_t fig, int d, const char *title)
{
	double max = 1;
	size_t n = r->gcount[d];
	for (size_t k = 0; k < n; k++) {
		const struct s_cell *x = CELL(r, fig, r->gstart[d] + k);
		if (!x->suppressed && x->value > max)
			max = x->value;
	}
	int rowh = 22, w = 640, lab = 230, h = (int)n * rowh + 10;
	fprintf(f, "<figure><figcaption>");
	s_esc(f, title);
	fprintf(f, "</figcaption><svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", w, h);
	s_esc(f, title);
	fputs(" (numbers in the table below)\">", f);
	for (size_t k = 0; k < n; k++) {
		size_t g = r->gstart[d] + k;
		const struct s_cell *x = CELL(r, fig, g);
		int y = 5 + (int)k * rowh;
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"l\">", lab - 6, y + 15);
		char gl[64];
		snprintf(gl, sizeof(gl), "%s", r->glabel[g]);
		if (strlen(r->glabel[g]) > 40)
			strcpy(gl + 37, "...");
		s_esc(f, gl);
		fputs("</text>", f);
		if (x->suppressed) {
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"24\" height=\"16\" class=\"sup\"/>", lab, y + 2);
		} else {
			int bw = (int)((w - lab - 60) * x->value / max);
			fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"16\" class=\"bar\"/>", lab, y + 2, bw);
		}
		fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"v\">", lab + (x->suppressed ? 30 : (int)((w - lab - 60) * x->value / max) + 6), y + 15);
		s_html_value(f, r, x);
		fputs("</text>", f);
	}
	fputs("</svg></figure>\n<table><caption>", f);
	s_esc(f, title);
	fputs("</caption><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Number</th></tr></thead><tbody>", f);
	for (size_t k = 0; k < n; k++) {
		size_t g = r->gstart[d] + k;
		fputs("<tr><th scope=\"row\">", f);
		s_esc(f, r->glabel[g]);
		fputs("</th><td>", f);
		s_html_value(f, r, CELL(r, fig, g));
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table>\n", f);
}

static void s_funnel_chart(FILE *f, const struct yj_report *r)
{
	static const char *const names[] = { "Arrests", "Detentions", "Released under investigation",
					     "Released, no further action", "Charged", "Outcomes" };
	double max = 1;
	for (size_t s = 0; s < S_NFUNNEL; s++) {
		const struct s_cell *x = CELL(r, s_funnel[s], 0);
		if (!x->suppressed && x->value > max)
			max = x->value;
	}
	/* Labels in a column of their own, bars centred in the rest (a funnel's
	 * shape), the number after: nothing is drawn over a bar too short for it. */
	int w = 640, rowh = 34, lab = 200, area = w - lab - 50;
	fprintf(f, "<figure><figcaption>The funnel: arrest, custody, result, outcome</figcaption>"
		   "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"funnel (numbers in the table below)\">",
		w, S_NFUNNEL * rowh + 10);
	for (size_t s = 0; s < S_NFUNNEL; s++) {
		const struct s_cell *x = CELL(r, s_funnel[s], 0);
		int bw = x->suppressed ? 24 : (int)(area * x->value / max);
		if (bw < 2)
			bw = 2;
		int y = 5 + (int)s * rowh;
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"l\">%s</text>", lab - 6, y + 19,
			names[s]);
		fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"28\" class=\"%s\"/>", lab + (area - bw) / 2, y,
			bw, x->suppressed ? "sup" : s < 2 ? "bar" : "bar2");
		fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"v\">", lab + area + 4, y + 19);
		s_html_value(f, r, x);
		fputs("</text>", f);
	}
	fputs("</svg></figure>\n<table><caption>The funnel</caption><thead><tr><th scope=\"col\">Stage</th>"
	      "<th scope=\"col\">Number</th></tr></thead><tbody>", f);
	for (size_t s = 0; s < S_NFUNNEL; s++) {
		fprintf(f, "<tr><th scope=\"row\">%s</th><td>", names[s]);
		s_html_value(f, r, CELL(r, s_funnel[s], 0));
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table>\n", f);
}

static void s_weeks_chart(FILE *f, const struct yj_report *r)
{
	double max = 1;
	for (size_t k = 0; k < r->nweeks; k++) {
		if (!r->weeks[k].det.suppressed && r->weeks[k].det.value > max)
			max = r->weeks[k].det.value;
	}
	int w = 640, h = 200, left = 40, base = 170;
	double step = (double)(w - left - 10) / (double)(r->nweeks ? r->nweeks : 1);
	fprintf(f, "<figure><figcaption>Detentions by week (weeks starting Monday)</figcaption>"
		   "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"detentions by week (numbers in the table below)\">"
		   "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>",
		w, h, left, base, w - 10, base);
	/* The scale's top: the largest week shown (none when every week is hidden). */
	if (max >= r->threshold)
		fprintf(f, "<text x=\"%d\" y=\"20\" text-anchor=\"end\" class=\"l\">%.0f</text>", left - 4, max);
	for (size_t k = 0; k < r->nweeks; k++) {
		const struct s_cell *x = &r->weeks[k].det;
		double x0 = left + step * (double)k;
		if (x->suppressed) {
			fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"6\" class=\"sup\"/>", x0 + 1, base - 6,
				step > 3 ? step - 2 : 1);
		} else {
			double bh = (base - 20) * x->value / max;
			fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"bar\"/>", x0 + 1,
				base - bh, step > 3 ? step - 2 : 1, bh);
		}
	}
	fputs("</svg></figure>\n<table><caption>Detentions by week</caption><thead><tr><th scope=\"col\">Week starting</th>"
	      "<th scope=\"col\">Detentions</th></tr></thead><tbody>", f);
	for (size_t k = 0; k < r->nweeks; k++) {
		struct tm tm;
		char d[32];
		s_local(r->weeks[k].start_us, &tm);
		strftime(d, sizeof(d), "%a %e %b %Y", &tm);
		fprintf(f, "<tr><th scope=\"row\">%s</th><td>", d);
		s_html_value(f, r, &r->weeks[k].det);
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table>\n", f);
}

static void s_disparity_html(FILE *f, const struct yj_report *r)
{
	static const char *const stage_names[] = { "Arrests per 1,000 children", "Detained per arrest", "RUI per detention",
						   "NFA per detention", "Charged per detention", "Outcomes per detention" };
	fputs("<h2>Disparity</h2><p>Each stage's rate in a group, and its relative rate index (RRI) against the reference "
	      "group: 1.00 is the same rate, above 1 more often. A rate rests on the counts of two stages; where a count "
	      "is hidden, so is the rate. Comparisons marked <strong>small numbers</strong> rest on a count under 20 and "
	      "should not be read as a difference.</p>",
	      f);
	fputs("<p>Population: ", f);
	s_esc(f, r->pop_source ? r->pop_source : " none supplied (no rates per 1,000 children)");
	fputs("</p>\n", f);
	for (int d = 1; d < S_NDIM; d++) {
		size_t ref = s_ref_group(r, d);
		fprintf(f, "<table class=\"wide\"><caption>By %s (reference: ", s_dim_names[d]);
		s_esc(f, r->glabel[ref]);
		fputs(")</caption><thead><tr><th scope=\"col\">Group</th>", f);
		for (size_t s = 0; s < S_NFUNNEL; s++)
			fprintf(f, "<th scope=\"col\">%s (RRI)</th>", stage_names[s]);
		fputs("<th scope=\"col\">Small numbers</th></tr></thead><tbody>", f);
		for (size_t k = 0; k < r->gcount[d]; k++) {
			size_t g = r->gstart[d] + k;
			int small = 0;
			fputs("<tr><th scope=\"row\">", f);
			s_esc(f, r->glabel[g]);
			fputs("</th>", f);
			for (size_t s = 0; s < S_NFUNNEL; s++) {
				int sm = 0, smr = 0;
				double a = s_rate(r, s, g, &sm), b = s_rate(r, s, ref, &smr);
				small |= sm | smr | (a < 0);
				if (a < 0)
					fputs("<td>&ndash;</td>", f);
				else if (b > 0)
					fprintf(f, "<td>%.2f (%.2f)</td>", a, a / b);
				else
					fprintf(f, "<td>%.2f</td>", a);
			}
			fprintf(f, "<td>%s</td></tr>", small ? "small numbers" : "");
		}
		fputs("</tbody></table>\n", f);
	}
}

int yj_report_html(const struct yj_report *r, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len); /* *out owned by the caller after fclose */
	char label[300];
	if (!f)
		return YJ_ENOMEM;
	fputs("<!DOCTYPE html>\n<html lang=\"en-GB\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>", f);
	fputs("Children in police custody: board report ", f);
	s_esc(f, r->from);
	fputs(" to ", f);
	s_esc(f, r->to);
	fputs("</title><style>"
	      "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;line-height:1.4;color:#111}"
	      "table{border-collapse:collapse;margin:0 0 1.5rem;width:100%;font-size:.95rem}"
	      "caption{text-align:left;font-weight:600;padding:.3rem 0}"
	      "th,td{border:1px solid #999;padding:.25rem .4rem;text-align:left;vertical-align:top}"
	      "td{text-align:right}thead th{background:#eee}"
	      ".wide{display:block;overflow-x:auto}"
	      "figure{margin:1rem 0}figcaption{font-weight:600}"
	      "svg.chart{width:100%;height:auto;max-width:40rem;display:block}"
	      ".bar{fill:#1d4f91}.bar2{fill:#5b8ccf}.sup{fill:none;stroke:#555;stroke-dasharray:3 2}"
	      ".l,.v,.fl{font-size:12px;fill:#111}.fl{fill:#fff;font-weight:600}.axis{stroke:#333}"
	      "@media print{body{max-width:none}figure,table{break-inside:avoid}.bar,.bar2{fill:#333}}"
	      "</style></head><body>\n<h1>Children in police custody</h1><p>Board report for ",
	      f);
	s_esc(f, r->scope_name);
	fprintf(f, ", %s to %s (local days, inclusive). Figures under %d are shown as &ldquo;&lt;%d&rdquo;, and so are "
		   "totals, shares and other numbers from which one could be worked out. OFFICIAL.</p>\n",
		r->from, r->to, r->threshold, r->threshold);
	fputs("<h2>Figures</h2><table><caption>Figures for the period</caption><thead><tr><th scope=\"col\">Figure</th>"
	      "<th scope=\"col\">Number</th></tr></thead><tbody>",
	      f);
	for (size_t fig = 0; fig < r->nfig; fig++) {
		s_fig_label(r, fig, label, sizeof(label));
		fputs("<tr><th scope=\"row\">", f);
		s_esc(f, label);
		fputs("</th><td>", f);
		s_html_value(f, r, CELL(r, fig, 0));
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table>\n<h2>Charts</h2>\n", f);
	s_funnel_chart(f, r);
	s_weeks_chart(f, r);
	s_bars(f, r, F_CHILDREN_DETAINED, D_AGE, "Children detained by age");
	s_bars(f, r, F_CHILDREN_DETAINED, D_GENDER, "Children detained by gender");
	s_bars(f, r, F_CHILDREN_DETAINED, D_ETH, "Children detained by ethnicity");
	s_bars(f, r, F_CHILDREN_DETAINED, D_LAC, "Children detained by looked-after status");
	fputs("<h2>Breakdowns</h2>\n", f);
	for (int d = 0; d < S_NDIM; d++) {
		fprintf(f, "<table class=\"wide\"><caption>Figures by %s</caption><thead><tr><th scope=\"col\">Figure</th>",
			s_dim_names[d]);
		for (size_t k = 0; k < r->gcount[d]; k++) {
			fputs("<th scope=\"col\">", f);
			s_esc(f, d == D_ETH ? r->gname[r->gstart[d] + k] : r->glabel[r->gstart[d] + k]);
			fputs("</th>", f);
		}
		fputs("</tr></thead><tbody>", f);
		for (size_t fig = 0; fig < r->nfig; fig++) {
			s_fig_label(r, fig, label, sizeof(label));
			fputs("<tr><th scope=\"row\">", f);
			s_esc(f, label);
			fputs("</th>", f);
			for (size_t k = 0; k < r->gcount[d]; k++) {
				fputs("<td>", f);
				s_html_value(f, r, CELL(r, fig, r->gstart[d] + k));
				fputs("</td>", f);
			}
			fputs("</tr>", f);
		}
		fputs("</tbody></table>\n", f);
		if (d == D_ETH) {
			fputs("<table><caption>Ethnicity codes</caption><thead><tr><th scope=\"col\">Code</th>"
			      "<th scope=\"col\">Label</th></tr></thead><tbody>",
			      f);
			for (size_t k = 0; k < r->gcount[d]; k++) {
				fputs("<tr><th scope=\"row\">", f);
				s_esc(f, r->gname[r->gstart[d] + k]);
				fputs("</th><td>", f);
				s_esc(f, r->glabel[r->gstart[d] + k]);
				fputs("</td></tr>", f);
			}
			fputs("</tbody></table>\n", f);
		}
	}
	s_disparity_html(f, r);
	fputs("<h2>About these figures</h2><p>A detention is a custody record whose arrival falls in the period; its "
	      "result is its last status in the period. A child is counted in the group their newest message in the "
	      "period gives (age on the date of that event). Data-quality figures count what the police systems did "
	      "not say.</p>\n</body></html>\n",
	      f);
	if (fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return YJ_ENOMEM;
	}
	return 0;
}
