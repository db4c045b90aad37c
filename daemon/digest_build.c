/* digest_build.c: a digest's content (interfaces.md §5), gathered in one
 * pass into a compact index and written streaming: the CSV and the JSON
 * object here, the renderings a person reads in digest_people.c. See
 * digest_int.h for the shape of the index and digest.h for the API. */
#include "digest.h"
#include "digest_int.h"
#include "tz.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "db/audit.h"
#include "db/digests.h"
#include "db/events.h"
#include "err.h"
#include "normalise.h"
#include "route.h"

/* Feed health: how far back the walk for each feed's newest event goes. A
 * feed silent for longer reads "nothing since" the oldest event looked at. */
#define S_FEEDS_SCAN 500000

const char *const yj_dg_section_names[YJ_DG_NSECTIONS] = { "custody", "arrest", "voluntary_interview", "outcome",
							   "other_area", "still_in_custody", "new_child" };

/* --- time --- */

/* By tz.c, never localtime_r and friends: this runs in the digest helper,
 * forked from a daemon with threads (tz.h says why that matters). */
void yj_dg_local(int64_t us, struct tm *tm)
{
	yj_tz_local(us / 1000000, tm);
}

/* The instant of local date (y, m, d) at hh:mm; yj_tz_instant settles gaps
 * and folds. */
int64_t yj_dg_instant(int y, int m, int d, int hh, int mm)
{
	return yj_tz_instant(y, m, d, hh, mm) * 1000000;
}

void yj_dg_fmt_utc(int64_t us, char *buf, size_t size)
{
	struct tm tm;
	yj_tz_utc(us / 1000000, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void yj_dg_fmt_local(int64_t us, const char *fmt, char *buf, size_t size)
{
	struct tm tm;
	yj_dg_local(us, &tm);
	strftime(buf, size, fmt, &tm);
}

/* --- custody records --- */

int yj_dg_is_released(const char *status) { return status && strcmp(status, "detained") != 0; }

void yj_dg_custody_key(const Yjlink__V1__Event *ev, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", ev->force ? ev->force : "",
		 ev->custody && ev->custody->record_id ? ev->custody->record_id : "");
}

struct s_last_dup {
	uint64_t limit;
	uint64_t best;
};

static int s_last_dup_cb(void *arg, uint64_t seq)
{
	struct s_last_dup *l = arg;
	if (seq <= l->limit && seq > l->best)
		l->best = seq;
	return 0;
}

Yjlink__V1__Record *yj_dg_latest_custody_at(struct yj_txn *txn, const char *key, uint64_t limit)
{
	struct s_last_dup l = { limit, 0 };
	yj_events_of_custody(txn, key, s_last_dup_cb, &l);
	return l.best ? yj_events_get_record(txn, l.best) : NULL;
}

int yj_dg_shown(const struct yj_dg_build *b, const char *path, int withheld)
{
	if (!yj_route_allowed(b->yjs, path))
		return 0;
	return !(withheld && yj_route_withheld(path));
}

/* Minutes since local midnight of the configured "HH:MM". */
static int s_minutes(const char *hhmm)
{
	int h = 0, m = 0;
	sscanf(hhmm, "%2d:%2d", &h, &m);
	return h * 60 + m;
}

/* Held overnight: detained >= overnight_hours within one night's period. */
static int s_overnight(const struct yj_config *cfg, int64_t from_us, int64_t to_us)
{
	if (to_us <= from_us)
		return 0;
	int a = s_minutes(cfg->custody_overnight_from), z = s_minutes(cfg->custody_overnight_to);
	int64_t need = cfg->custody_overnight_hours * 3600 * INT64_C(1000000);
	struct tm tm;
	yj_dg_local(from_us, &tm);
	for (int k = -1; k < 60; k++) {
		struct tm day = tm;
		day.tm_mday += k;
		day.tm_hour = 12;
		yj_tz_mktime(&day);
		int64_t start = yj_dg_instant(day.tm_year + 1900, day.tm_mon + 1, day.tm_mday, a / 60, a % 60);
		int64_t end = yj_dg_instant(day.tm_year + 1900, day.tm_mon + 1, day.tm_mday + (z <= a), z / 60, z % 60);
		if (start >= to_us)
			break;
		int64_t lo = from_us > start ? from_us : start, hi = to_us < end ? to_us : end;
		if (hi - lo >= need)
			return 1;
	}
	return 0;
}

/* --- the index: children and custody records by key --- */

static uint64_t s_hash(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
	return h;
}

typedef const char *(*s_key_fn)(const struct yj_dg_build *b, uint32_t i);
static const char *s_child_key(const struct yj_dg_build *b, uint32_t i) { return b->children[i].id; }
static const char *s_record_key(const struct yj_dg_build *b, uint32_t i) { return b->custody[i].key; }

/* The slot of key in the table: the one holding it, or the empty one it goes in. */
static size_t s_ix_slot(const struct yj_dg_build *b, const uint32_t *ix, size_t cap, const char *key, s_key_fn kf)
{
	size_t m = cap - 1, i = (size_t)s_hash(key) & m;
	while (ix[i] && strcmp(kf(b, ix[i] - 1), key))
		i = (i + 1) & m;
	return i;
}

/* Room for one more of n entries, at most half full (open addressing). */
static int s_ix_room(const struct yj_dg_build *b, uint32_t **ix, size_t *cap, size_t n, s_key_fn kf)
{
	if (*cap && (n + 1) * 2 <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 256;
	uint32_t *nix = calloc(ncap, sizeof(*nix)); /* owned by b once swapped in */
	if (!nix)
		return YJ_ENOMEM;
	for (size_t i = 0; i < *cap; i++) {
		if ((*ix)[i])
			nix[s_ix_slot(b, nix, ncap, kf(b, (*ix)[i] - 1), kf)] = (*ix)[i];
	}
	free(*ix);
	*ix = nix;
	*cap = ncap;
	return 0;
}

static int s_grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *nv = realloc(*v, ncap * size);
	if (!nv)
		return YJ_ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

/* The index of child id, added when new. */
static int s_child(struct yj_dg_build *b, const char *id, uint32_t *out)
{
	int rc = s_ix_room(b, &b->child_ix, &b->child_ix_cap, b->n_children, s_child_key);
	if (rc)
		return rc;
	size_t slot = s_ix_slot(b, b->child_ix, b->child_ix_cap, id, s_child_key);
	if (b->child_ix[slot]) {
		*out = b->child_ix[slot] - 1;
		return 0;
	}
	if ((rc = s_grow((void **)&b->children, &b->cap_children, b->n_children, sizeof(*b->children))))
		return rc;
	struct yj_dg_child *c = &b->children[b->n_children];
	memset(c, 0, sizeof(*c));
	if (!(c->id = strdup(id)))
		return YJ_ENOMEM;
	c->first_seq = UINT64_MAX;
	b->child_ix[slot] = (uint32_t)++b->n_children;
	*out = (uint32_t)(b->n_children - 1);
	return 0;
}

static int s_child_of(struct yj_dg_build *b, const Yjlink__V1__Event *ev, uint32_t *out)
{
	char id[300];
	yj_event_child_id(ev, id, sizeof(id));
	return s_child(b, id, out);
}

/* The index of custody record key, added when new with its state at the
 * window's end (its latest message decoded once, here). */
static int s_record(struct yj_dg_build *b, const char *key, int32_t *out)
{
	int rc = s_ix_room(b, &b->custody_ix, &b->custody_ix_cap, b->n_custody, s_record_key);
	if (rc)
		return rc;
	size_t slot = s_ix_slot(b, b->custody_ix, b->custody_ix_cap, key, s_record_key);
	if (b->custody_ix[slot]) {
		*out = (int32_t)(b->custody_ix[slot] - 1);
		return 0;
	}
	if ((rc = s_grow((void **)&b->custody, &b->cap_custody, b->n_custody, sizeof(*b->custody))))
		return rc;
	struct yj_dg_custody *c = &b->custody[b->n_custody];
	memset(c, 0, sizeof(*c));
	if (!(c->key = strdup(key)))
		return YJ_ENOMEM;
	c->first_row_seq = UINT64_MAX;
	b->custody_ix[slot] = (uint32_t)++b->n_custody;
	int32_t ix = (int32_t)(b->n_custody - 1);
	Yjlink__V1__Record *r = yj_dg_latest_custody_at(b->txn, key, b->d->end_seq); /* owned here */
	const Yjlink__V1__Custody *cu = r && r->event ? r->event->custody : NULL;
	if (cu) {
		c->latest_seq = r->seq;
		c->open = cu->status && !yj_dg_is_released(cu->status);
		if (cu->status && !(c->status_now = strdup(cu->status))) {
			rc = YJ_ENOMEM;
			goto out;
		}
		c->arrived_us = cu->arrived_at ? cu->arrived_at->unix_us : 0;
		c->until_us = yj_dg_is_released(cu->status) && cu->status_at ? cu->status_at->unix_us : b->d->scheduled_us;
		c->overnight = c->arrived_us ? s_overnight(b->cfg, c->arrived_us, c->until_us) : 0;
	}
	*out = ix;
out:
	yjlink__v1__record__free_unpacked(r, NULL);
	return rc;
}

static int s_home_here(const struct yj_recipient *yjs, const char *la)
{
	for (size_t i = 0; la && i < yjs->las.n; i++) {
		if (!strcmp(yjs->las.v[i], la))
			return 1;
	}
	return 0;
}

/* Row seq of rec in section sec: its child's and custody record's facts go
 * into the index with it. */
static int s_add_row(struct yj_dg_build *b, enum yj_dg_section sec, const Yjlink__V1__Record *rec)
{
	const Yjlink__V1__Event *ev = rec->event;
	uint32_t child = 0;
	int32_t cust = -1;
	char key[300];
	int rc;
	if ((rc = s_child_of(b, ev, &child)))
		return rc;
	if (yj_event_feed(ev) == YJ_FEED_CUSTODY) {
		yj_dg_custody_key(ev, key, sizeof(key));
		if ((rc = s_record(b, key, &cust)))
			return rc;
	}
	if ((rc = s_grow((void **)&b->rows, &b->cap_rows, b->n_rows, sizeof(*b->rows))))
		return rc;
	int withheld = yj_route_is_held(b->txn, rec->seq);
	b->rows[b->n_rows++] = (struct yj_dg_row){ rec->seq, child, cust, (uint8_t)sec, (uint8_t)withheld };

	struct yj_dg_child *c = &b->children[child];
	if (rec->seq < c->first_seq)
		c->first_seq = rec->seq;
	if (rec->seq >= c->newest_seq) {
		/* The child as their newest message describes them. */
		const Yjlink__V1__Child *ch = ev->child;
		c->newest_seq = rec->seq;
		c->flags &= ~(unsigned)(YJ_DG_F_LAC | YJ_DG_F_LAC_KNOWN | YJ_DG_F_HOME_HERE);
		if (ch && ch->has_looked_after && yj_dg_shown(b, "child.looked_after", 0))
			c->flags |= YJ_DG_F_LAC_KNOWN | (ch->looked_after ? YJ_DG_F_LAC : 0);
		if (ch && s_home_here(b->yjs, ch->home_la))
			c->flags |= YJ_DG_F_HOME_HERE;
	}
	c->flags |= sec == YJ_DG_OTHER_AREA ? YJ_DG_F_OTHER_AREA : sec == YJ_DG_STILL ? YJ_DG_F_STILL : YJ_DG_F_HOME_ROW;
	if (sec == YJ_DG_NEW)
		c->flags |= YJ_DG_F_NEW;
	if (withheld)
		c->flags |= YJ_DG_F_WITHHELD;
	const Yjlink__V1__Markers *mk = ev->markers;
	if (mk && !withheld) {
		if (mk->court_order && yj_dg_shown(b, "markers.court_order", 0))
			c->flags |= YJ_DG_F_COURT_ORDER;
		if (mk->mappa && yj_dg_shown(b, "markers.mappa", 0))
			c->flags |= YJ_DG_F_MAPPA;
		if (mk->serious_offence && yj_dg_shown(b, "markers.serious_offence", 0))
			c->flags |= YJ_DG_F_SERIOUS;
	}
	if (cust >= 0) {
		struct yj_dg_custody *r = &b->custody[cust];
		if (rec->seq < r->first_row_seq)
			r->first_row_seq = rec->seq;
		if (r->overnight)
			c->flags |= YJ_DG_F_OVERNIGHT;
		if (r->status_now && !strcmp(r->status_now, "charged_remanded"))
			c->flags |= YJ_DG_F_REMANDED;
	}
	return 0;
}

/* Row of event seq in section sec, read from the store for the moment it
 * takes (a gone or undecodable record makes no row, as it could show none). */
static int s_add_seq(struct yj_dg_build *b, enum yj_dg_section sec, uint64_t seq, unsigned entry_flags)
{
	Yjlink__V1__Record *r = yj_events_get_record(b->txn, seq); /* owned here */
	int rc = 0;
	if (r && r->event) {
		if ((int)sec < 0) {
			enum yj_feed feed = yj_event_feed(r->event);
			sec = (entry_flags & 1) ? YJ_DG_OTHER_AREA
			      : feed == YJ_FEED_CUSTODY ? YJ_DG_CUSTODY
			      : feed == YJ_FEED_ARREST ? YJ_DG_ARREST
			      : feed == YJ_FEED_VOLUNTARY_INTERVIEW ? YJ_DG_INTERVIEW
								 : YJ_DG_OUTCOME;
		}
		rc = s_add_row(b, sec, r);
	}
	yjlink__v1__record__free_unpacked(r, NULL);
	return rc;
}

static int s_window_cb(void *arg, uint64_t seq, const char *rule)
{
	struct yj_dg_build *b = arg;
	if (b->n_seqs == 0 || b->seqs[b->n_seqs - 1] != seq) {
		if (b->n_seqs == b->cap_seqs) {
			size_t ncap = b->cap_seqs ? b->cap_seqs * 2 : 256;
			uint64_t *ns = realloc(b->seqs, ncap * sizeof(*ns));
			unsigned *nf = ns ? realloc(b->flags, ncap * sizeof(*nf)) : NULL;
			if (ns)
				b->seqs = ns;
			if (!nf)
				return YJ_ENOMEM;
			b->flags = nf;
			b->cap_seqs = ncap;
		}
		b->seqs[b->n_seqs] = seq;
		b->flags[b->n_seqs] = 0;
		b->n_seqs++;
	}
	unsigned *f = &b->flags[b->n_seqs - 1];
	const struct yj_rule *r = NULL;
	for (size_t i = 0; i < b->cfg->n_rules; i++) {
		if (!strcmp(b->cfg->rules[i].id, rule))
			r = &b->cfg->rules[i];
	}
	const char *section = r ? r->section : (!strcmp(rule, "first_contact") ? "new_child" : "");
	if (!strcmp(section, "other_area"))
		*f |= 1;
	else if (!strcmp(section, "new_child"))
		*f |= 2;
	else
		*f |= 4;
	return 0;
}

struct s_hist {
	struct yj_dg_build *b;
	uint64_t limit;
};

static int s_hist_cb(void *arg, uint64_t s)
{
	struct s_hist *h = arg;
	return s > h->limit ? 0 : s_add_seq(h->b, YJ_DG_NEW, s, 0);
}

static int s_cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Still in custody at the window's end: of the records open at the last
 * digest and those seen now, the ones whose latest status is detained, each
 * with its latest message; and the set of them, for the next digest. */
static int s_still(struct yj_dg_build *b)
{
	int rc = 0;
	int32_t ix;
	for (size_t i = 0; i < b->d->n_open_before; i++) {
		if ((rc = s_record(b, b->d->open_before[i], &ix)))
			return rc;
	}
	size_t n = 0;
	for (size_t i = 0; i < b->n_custody; i++)
		n += b->custody[i].open && b->custody[i].latest_seq;
	if (!(b->open = calloc(n + 1, sizeof(*b->open))))
		return YJ_ENOMEM;
	for (size_t i = 0; i < b->n_custody; i++) {
		if (!b->custody[i].open || !b->custody[i].latest_seq)
			continue;
		if (!(b->open[b->n_open] = strdup(b->custody[i].key)))
			return YJ_ENOMEM;
		b->n_open++;
	}
	if (b->n_open)
		qsort(b->open, b->n_open, sizeof(*b->open), s_cmp_cstr);
	/* In key order, as the set: rows are sorted for every rendering anyway. */
	for (size_t i = 0; i < b->n_open; i++) {
		const char *key = b->open[i];
		uint32_t slot = b->custody_ix[s_ix_slot(b, b->custody_ix, b->custody_ix_cap, key, s_record_key)];
		if (slot && (rc = s_add_seq(b, YJ_DG_STILL, b->custody[slot - 1].latest_seq, 0)))
			return rc;
	}
	return 0;
}

static const char *const s_feed_ids[4] = { "custody", "arrest", "voluntary_interview", "outcome" };
static const char *const s_feed_titles[4] = { "custody", "arrest", "voluntary interview", "outcome" };

static int s_feeds(struct yj_dg_build *b)
{
	struct yj_events_feed_seen seen[4];
	for (int i = 0; i < 4; i++)
		seen[i] = (struct yj_events_feed_seen){ s_feed_ids[i], 0, 0 };
	int rc = yj_events_feeds_last(b->txn, b->d->end_seq, S_FEEDS_SCAN, seen, 4, &b->feeds_since_us,
				      &b->feeds_complete);
	for (int i = 0; i < 4; i++)
		b->feeds[i] = (struct yj_dg_feed){ s_feed_ids[i], s_feed_titles[i], seen[i].seq, seen[i].stored_us };
	return rc;
}

/* What to act on first, and in which part of a person's view a child goes. */
static void s_rank(struct yj_dg_build *b)
{
	for (size_t i = 0; i < b->n_children; i++) {
		struct yj_dg_child *c = &b->children[i];
		unsigned f = c->flags;
		int other = !(f & YJ_DG_F_HOME_ROW) && ((f & YJ_DG_F_OTHER_AREA) || !(f & YJ_DG_F_HOME_HERE));
		c->rank = (f & YJ_DG_F_STILL) ? 0 : (f & YJ_DG_F_REMANDED) ? 1 : (f & YJ_DG_F_LAC) ? 2
			  : (f & YJ_DG_F_OVERNIGHT) ? 3 : (f & YJ_DG_F_NEW) ? 4 : 5;
		c->group = other ? 2 : c->rank < 5 ? 0 : 1;
	}
}

static int s_gather(struct yj_dg_build *b)
{
	int rc;
	if ((rc = yj_digests_entries(b->txn, b->yjs->id, b->d->start_seq, b->d->end_seq, s_window_cb, b)) < 0)
		return rc;
	for (size_t i = 0; i < b->n_seqs; i++) {
		if ((rc = s_add_seq(b, (enum yj_dg_section)-1, b->seqs[i], b->flags[i])))
			return rc;
	}
	if ((rc = s_still(b)))
		return rc;
	/* New children: each with every event known of them up to the window's end. */
	for (size_t i = 0; i < b->n_seqs; i++) {
		if (!(b->flags[i] & 2))
			continue;
		Yjlink__V1__Record *r = yj_events_get_record(b->txn, b->seqs[i]); /* owned here */
		char child[300];
		if (!r || !r->event) {
			yjlink__v1__record__free_unpacked(r, NULL);
			continue;
		}
		yj_event_child_id(r->event, child, sizeof(child));
		yjlink__v1__record__free_unpacked(r, NULL);
		struct s_hist h = { b, b->d->end_seq };
		if ((rc = yj_events_of_child(b->txn, child, s_hist_cb, &h)) < 0)
			return rc;
	}
	if ((rc = s_feeds(b)))
		return rc;
	s_rank(b);
	return 0;
}

/* --- the machine renderings: CSV and JSON, codes as stored --- */

struct s_col {
	const char *name;   /* CSV header */
	const char *path;   /* data sharing agreement path; NULL = always */
};

static const struct s_col s_cols[] = {
	{ "section", NULL }, { "seq", NULL }, { "feed", NULL }, { "source_id", "source_id" },
	{ "occurred_at", "occurred_at" }, { "person_id", "child.person_id" }, { "pnc_id", "child.pnc_id" },
	{ "given_name", "child.given_name" }, { "family_name", "child.family_name" },
	{ "date_of_birth", "child.date_of_birth" }, { "home_la", "child.home_la" },
	{ "looked_after", "child.looked_after" }, { "custody_record_id", "custody.record_id" },
	{ "suite", "custody.suite" }, { "custody_status", "custody.status" }, { "arrived_at", "custody.arrived_at" },
	{ "overnight", "custody.arrived_at" }, { "interview_status", "interview.status" },
	{ "outcome_code", "outcome.code" }, { "outcome_name", "outcome.code" }, { "withheld", NULL },
	/* more columns, after the fixed ones */
	{ "stored_at", NULL }, { "status_now", "custody.status" }, { "status_at", "custody.status_at" },
	{ "appropriate_adult", "custody.appropriate_adult.name" }, { "summons", "arrest.summons" },
	{ "offences", "offences" }, { "outcome_decided_at", "outcome.decided_at" },
	{ "apparent_age", "child.apparent_age" }, { "outcome_disposal", "outcome.disposal" },
	/* an issue found in a field: shown with that field */
	{ "data_quality", "outcome.code" },
};
#define S_NCOLS (sizeof(s_cols) / sizeof(s_cols[0]))

static void s_time_str(const Yjlink__V1__Time *t, char *buf, size_t size)
{
	if (!t) {
		*buf = '\0';
		return;
	}
	yj_time_format(t, buf, size);
}

/* Cell value of column c for row r (whose record is rec), into buf ("" when
 * absent or not allowed). */
static void s_cell(const struct yj_dg_build *b, const struct yj_dg_row *r, const Yjlink__V1__Record *rec, size_t c,
		   char *buf, size_t size)
{
	const struct s_col *col = &s_cols[c];
	const Yjlink__V1__Event *ev = rec->event;
	const Yjlink__V1__Child *ch = ev->child;
	const Yjlink__V1__Custody *cu = ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY ? ev->custody : NULL;
	const Yjlink__V1__Outcome *oc = ev->body_case == YJLINK__V1__EVENT__BODY_OUTCOME ? ev->outcome : NULL;
	const struct yj_dg_custody *rs = r->custody >= 0 ? &b->custody[r->custody] : NULL;
	*buf = '\0';
	if (col->path && !yj_dg_shown(b, col->path, r->withheld))
		return;
#define S(v) snprintf(buf, size, "%s", (v) ? (v) : "")
	switch (c) {
	case 0: S(yj_dg_section_names[r->section]); break;
	case 1: snprintf(buf, size, "%" PRIu64, r->seq); break;
	case 2: S(rec->feed); break;
	case 3: S(ev->source_id); break;
	case 4: s_time_str(ev->occurred_at, buf, size); break;
	case 5: S(ch ? ch->person_id : NULL); break;
	case 6: S(ch ? ch->pnc_id : NULL); break;
	case 7: S(ch ? ch->given_name : NULL); break;
	case 8: S(ch ? ch->family_name : NULL); break;
	case 9: S(ch ? ch->date_of_birth : NULL); break;
	case 10: S(ch ? ch->home_la : NULL); break;
	case 11: S(!ch || !ch->has_looked_after ? "unknown" : ch->looked_after ? "yes" : "no"); break;
	case 12: S(cu ? cu->record_id : NULL); break;
	case 13: S(cu ? cu->suite : NULL); break;
	case 14: S(cu ? cu->status : NULL); break;
	case 15: s_time_str(cu ? cu->arrived_at : NULL, buf, size); break;
	case 16: S(!cu || !rs ? "" : rs->overnight ? "yes" : "no"); break;
	case 17: S(ev->body_case == YJLINK__V1__EVENT__BODY_INTERVIEW && ev->interview ? ev->interview->status : NULL); break;
	case 18:
		if (oc && oc->has_code)
			snprintf(buf, size, "%d", oc->code);
		break;
	case 19: {
		const struct yj_outcome *o = oc && oc->has_code ? yj_ref_outcome(b->ref, oc->code) : NULL;
		S(o ? o->name : NULL);
		break;
	}
	case 20: S(r->withheld ? "yes" : "no"); break;
	case 21: {
		Yjlink__V1__Time t = YJLINK__V1__TIME__INIT;
		t.has_unix_us = 1;
		t.unix_us = rec->stored_at_us;
		s_time_str(&t, buf, size);
		break;
	}
	case 22: S(cu && rs ? rs->status_now : NULL); break;
	case 23: s_time_str(cu ? cu->status_at : NULL, buf, size); break;
	case 24:
		if (cu && cu->appropriate_adult)
			snprintf(buf, size, "%s%s%s%s", cu->appropriate_adult->name ? cu->appropriate_adult->name : "",
				 cu->appropriate_adult->relationship ? " (" : "",
				 cu->appropriate_adult->relationship ? cu->appropriate_adult->relationship : "",
				 cu->appropriate_adult->relationship ? ")" : "");
		break;
	case 25:
		if (ev->body_case == YJLINK__V1__EVENT__BODY_ARREST && ev->arrest && ev->arrest->has_summons)
			S(ev->arrest->summons ? "yes" : "no");
		break;
	case 26: {
		size_t n = 0;
		for (size_t i = 0; i < ev->n_offences && n + 2 < size; i++) {
			int w = snprintf(buf + n, size - n, "%s%s", i ? "; " : "",
					 ev->offences[i]->description ? ev->offences[i]->description
					 : ev->offences[i]->code ? ev->offences[i]->code : "");
			if (w < 0)
				break;
			n += (size_t)w;
		}
		break;
	}
	case 27: s_time_str(oc ? oc->decided_at : NULL, buf, size); break;
	case 28:
		if (ch && ch->has_apparent_age)
			snprintf(buf, size, "%u", (unsigned)ch->apparent_age);
		break;
	case 29: S(oc ? oc->disposal : NULL); break;
	case 30: S(yj_event_data_quality(ev, b->ref)); break;
	}
#undef S
}

/* A CSV field (RFC 4180), the value as stored but for one thing: a cell a
 * spreadsheet would take for a formula (= + - @, TAB, CR first) gets a
 * leading apostrophe (OWASP "CSV injection"), so it reads as text. */
static void s_csv_field(FILE *f, const char *v)
{
	int formula = *v && strchr("=+-@\t\r", *v);
	if (formula || strpbrk(v, ",\"\r\n")) {
		fputc('"', f);
		if (formula)
			fputc('\'', f);
		for (const char *p = v; *p; p++) {
			if (*p == '"')
				fputc('"', f);
			fputc(*p, f);
		}
		fputc('"', f);
	} else {
		fputs(v, f);
	}
}

/* A JSON string (cells are valid UTF-8: the normaliser saw to that). */
static void s_json_str(FILE *f, const char *v)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static int s_cmp_row(const void *a, const void *b)
{
	const struct yj_dg_row *x = a, *y = b;
	if (x->section != y->section)
		return x->section < y->section ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

typedef void (*s_row_fn)(const struct yj_dg_build *b, const struct yj_dg_row *r, const Yjlink__V1__Record *rec,
			 FILE *f, size_t i);

/* Each row in section and seq order, its record read for the moment it is
 * written. */
static void s_each_row(const struct yj_dg_build *b, FILE *f, s_row_fn fn)
{
	for (size_t i = 0; i < b->n_rows; i++) {
		Yjlink__V1__Record *rec = yj_events_get_record(b->txn, b->rows[i].seq); /* owned here */
		if (rec && rec->event)
			fn(b, &b->rows[i], rec, f, i);
		yjlink__v1__record__free_unpacked(rec, NULL);
	}
}

static void s_csv_row(const struct yj_dg_build *b, const struct yj_dg_row *r, const Yjlink__V1__Record *rec, FILE *f,
		      size_t i)
{
	char cell[1200];
	(void)i;
	for (size_t c = 0; c < S_NCOLS; c++) {
		s_cell(b, r, rec, c, cell, sizeof(cell));
		if (c)
			fputc(',', f);
		s_csv_field(f, cell);
	}
	fputs("\r\n", f);
}

/* The CSV of interfaces.md §5: header row, then section by section in seq order. */
static void s_render_csv(const struct yj_dg_build *b, FILE *fc)
{
	for (size_t c = 0; c < S_NCOLS; c++) {
		if (c)
			fputc(',', fc);
		fputs(s_cols[c].name, fc);
	}
	fputs("\r\n", fc);
	s_each_row(b, fc, s_csv_row);
}

static void s_json_row(const struct yj_dg_build *b, const struct yj_dg_row *r, const Yjlink__V1__Record *rec, FILE *f,
		       size_t i)
{
	char cell[1200];
	fputs(i ? ",{" : "{", f);
	for (size_t c = 0; c < S_NCOLS; c++) {
		s_cell(b, r, rec, c, cell, sizeof(cell));
		fprintf(f, "%s\"%s\":", c ? "," : "", s_cols[c].name);
		s_json_str(f, cell);
	}
	fputc('}', f);
}

/* The digest as data (interfaces.md §3): what a webhook or a subscriber
 * receives; its rows are the CSV's, keyed by column name, with the values
 * as stored (no apostrophe: JSON has no formulas). Written as text straight
 * away: a tree of every cell would cost several times the digest. */
static void s_render_json(const struct yj_dg_build *b, FILE *fj)
{
	size_t per[YJ_DG_NSECTIONS] = { 0 };
	for (size_t i = 0; i < b->n_rows; i++)
		per[b->rows[i].section]++;
	fputs("{\"digest_id\":", fj);
	s_json_str(fj, b->d->id ? b->d->id : "");
	fputs(",\"recipient\":", fj);
	s_json_str(fj, b->yjs->id);
	fprintf(fj, ",\"date\":\"%s\",\"window\":{\"from\":\"%s\",\"to\":\"%s\"},", b->date, b->start, b->end);
	fprintf(fj, "\"summary\":{\"children\":%zu,\"events\":%zu,\"empty\":%s,\"sections\":{", b->n_children, b->n_seqs,
		b->n_rows ? "false" : "true");
	int first = 1;
	for (int sc = 0; sc < YJ_DG_NSECTIONS; sc++) {
		if (per[sc]) {
			fprintf(fj, "%s\"%s\":%zu", first ? "" : ",", yj_dg_section_names[sc], per[sc]);
			first = 0;
		}
	}
	fputs("},\"feeds\":{", fj);
	for (int i = 0; i < 4; i++) {
		char when[32] = "";
		if (b->feeds[i].seq)
			yj_dg_fmt_utc(b->feeds[i].stored_us, when, sizeof(when));
		fprintf(fj, "%s\"%s\":", i ? "," : "", b->feeds[i].feed);
		if (*when)
			fprintf(fj, "\"%s\"", when);
		else
			fputs("null", fj);
	}
	/* The anchor: the audit chain's head as this digest was built (null
	 * when the head could not be read). */
	if (*b->audit_hash)
		fprintf(fj, "},\"audit_head\":{\"number\":%" PRIu64 ",\"hash\":\"%s\"}},\"rows\":[", b->audit_number,
			b->audit_hash);
	else
		fputs("},\"audit_head\":null},\"rows\":[", fj);
	s_each_row(b, fj, s_json_row);
	fputs("]}", fj);
}

/* --- the build --- */

static const char *s_short(const char *id)
{
	const char *c = strchr(id, ':');
	return c ? c + 1 : id;
}

/* A digest opened for rendering (digest.h): the index, complete. */
struct yj_digest_view {
	struct yj_dg_build b;
};

static int s_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Once the index is complete: what every rendering shares (rows in section
 * and seq order, the window in words), and out's data. */
static int s_prepare(struct yj_dg_build *b, struct yj_digest_content *out)
{
	const Yjlink__V1__Digest *d = b->d;
	if (b->n_rows)
		qsort(b->rows, b->n_rows, sizeof(*b->rows), s_cmp_row);
	yj_dg_fmt_local(d->scheduled_us, "%Y-%m-%d", b->date, sizeof(b->date));
	yj_dg_fmt_utc(d->start_us, b->start, sizeof(b->start));
	yj_dg_fmt_utc(d->scheduled_us, b->end, sizeof(b->end));
	b->holiday = yj_ref_is_bank_holiday(b->ref, (int32_t)((d->scheduled_us / 1000000 + 43200) / 86400));
	out->children = (unsigned)b->n_children;
	out->events = (unsigned)b->n_seqs;
	snprintf(out->date, sizeof(out->date), "%s", b->date);
	snprintf(out->window_from, sizeof(out->window_from), "%s", b->start);
	snprintf(out->window_to, sizeof(out->window_to), "%s", b->end);
	if (asprintf(&out->csv_name, "yjlink-digest-%s-%s.csv", s_short(b->yjs->id), b->date) < 0) {
		out->csv_name = NULL;
		return YJ_ENOMEM;
	}
	if (!(out->id = strdup(d->id ? d->id : "")))
		return YJ_ENOMEM;
	/* Disclosed: every event shown, each once, ascending. */
	if (!(out->seqs = malloc((b->n_rows + 1) * sizeof(*out->seqs))))
		return YJ_ENOMEM;
	for (size_t i = 0; i < b->n_rows; i++)
		out->seqs[i] = b->rows[i].seq;
	if (b->n_rows)
		qsort(out->seqs, b->n_rows, sizeof(*out->seqs), s_cmp_u64);
	for (size_t i = 0; i < b->n_rows; i++) {
		if (i == 0 || out->seqs[i] != out->seqs[out->n_seqs - 1])
			out->seqs[out->n_seqs++] = out->seqs[i];
	}
	if (!(out->fields = cJSON_CreateArray()))
		return YJ_ENOMEM;
	for (size_t c = 0; c < S_NCOLS; c++) {
		if (s_cols[c].path && yj_route_allowed(b->yjs, s_cols[c].path))
			cJSON_AddItemToArray(out->fields, cJSON_CreateString(s_cols[c].path));
	}
	out->open = b->open;
	out->n_open = b->n_open;
	b->open = NULL;
	b->n_open = 0;
	return 0;
}

int yj_digest_write(struct yj_digest_view *v, unsigned part, FILE *f)
{
	int rc = 0;
	switch (part) {
	case YJ_DIGEST_TEXT: rc = yj_dg_render_people(&v->b, f, NULL); break;
	case YJ_DIGEST_HTML: rc = yj_dg_render_people(&v->b, NULL, f); break;
	case YJ_DIGEST_CSV: s_render_csv(&v->b, f); break;
	case YJ_DIGEST_JSON: s_render_json(&v->b, f); break;
	default: return YJ_EINVAL;
	}
	return rc ? rc : ferror(f) ? YJ_ENOMEM : 0;
}

int yj_digest_render(struct yj_digest_view *v, unsigned parts, struct yj_digest_content *out)
{
	struct yj_dg_build *b = &v->b;
	char *txt = NULL, *html = NULL, *csv = NULL, *json = NULL; /* owned until handed to out */
	size_t tlen = 0, hlen = 0, clen = 0, jlen = 0;
	FILE *ft = NULL, *fh = NULL, *fc = NULL, *fj = NULL;
	int rc = YJ_ENOMEM;

	/* Only the renderings the caller will use: each costs about the digest's size. */
	if (((parts & YJ_DIGEST_TEXT) && !(ft = open_memstream(&txt, &tlen))) ||
	    ((parts & YJ_DIGEST_HTML) && !(fh = open_memstream(&html, &hlen))) ||
	    ((parts & YJ_DIGEST_CSV) && !(fc = open_memstream(&csv, &clen))) ||
	    ((parts & YJ_DIGEST_JSON) && !(fj = open_memstream(&json, &jlen))))
		goto out;
	if (fc)
		s_render_csv(b, fc);
	if (fj)
		s_render_json(b, fj);
	/* Both a person's renderings in one pass, when both are wanted in memory. */
	rc = ft || fh ? yj_dg_render_people(b, ft, fh) : 0;
out:
	if (ft && fclose(ft))
		rc = YJ_ENOMEM;
	if (fh && fclose(fh))
		rc = YJ_ENOMEM;
	if (fc && fclose(fc))
		rc = YJ_ENOMEM;
	if (fj && fclose(fj))
		rc = YJ_ENOMEM;
	out->text = txt;
	out->html = html;
	out->csv = csv;
	out->csv_len = clen;
	out->json = json;
	out->json_len = jlen;
	if (((parts & YJ_DIGEST_TEXT) && !txt) || ((parts & YJ_DIGEST_HTML) && !html) ||
	    ((parts & YJ_DIGEST_CSV) && !csv) || ((parts & YJ_DIGEST_JSON) && !json))
		rc = YJ_ENOMEM;
	return rc;
}

void yj_digest_content_free(struct yj_digest_content *c)
{
	free(c->id);
	free(c->json);
	free(c->text);
	free(c->html);
	free(c->csv);
	free(c->csv_name);
	free(c->seqs);
	for (size_t i = 0; i < c->n_open; i++)
		free(c->open[i]);
	free(c->open);
	cJSON_Delete(c->fields);
	memset(c, 0, sizeof(*c));
}

static void s_build_free(struct yj_dg_build *b)
{
	free(b->rows);
	for (size_t i = 0; i < b->n_children; i++)
		free(b->children[i].id);
	free(b->children);
	for (size_t i = 0; i < b->n_custody; i++) {
		free(b->custody[i].key);
		free(b->custody[i].status_now);
	}
	free(b->custody);
	free(b->child_ix);
	free(b->custody_ix);
	free(b->seqs);
	free(b->flags);
	for (size_t i = 0; i < b->n_open; i++)
		free(b->open[i]);
	free(b->open);
}

int yj_digest_open(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref,
		   const struct yj_recipient *yjs, const Yjlink__V1__Digest *d, struct yj_digest_view **view,
		   struct yj_digest_content *out)
{
	struct yj_digest_view *v = calloc(1, sizeof(*v)); /* owned here until handed to *view */
	uint8_t head[32];
	int rc = YJ_ENOMEM;
	memset(out, 0, sizeof(*out));
	*view = NULL;
	if (!v)
		goto out;
	v->b = (struct yj_dg_build){ .txn = txn, .cfg = cfg, .ref = ref, .yjs = yjs, .d = d };
	/* Read in the build's own transaction: the head of the log as it
	 * stands with what this digest shows. A head that cannot be read
	 * (malformed) leaves the anchor out, never the digest: "audit verify"
	 * is where that is reported. */
	if (yj_audit_head(txn, &v->b.audit_number, head) == 0)
		yj_audit_hex(head, v->b.audit_hash);
	else
		v->b.audit_number = 0;
	if ((rc = s_gather(&v->b)) || (rc = s_prepare(&v->b, out)))
		goto out;
	*view = v;
	v = NULL;
out:
	if (v) {
		s_build_free(&v->b);
		free(v);
	}
	if (rc)
		yj_digest_content_free(out);
	return rc;
}

void yj_digest_close(struct yj_digest_view **v)
{
	if (!v || !*v)
		return;
	s_build_free(&(*v)->b);
	free(*v);
	*v = NULL;
}

int yj_digest_build(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref,
		    const struct yj_recipient *yjs, const Yjlink__V1__Digest *d, unsigned parts,
		    struct yj_digest_content *out)
{
	struct yj_digest_view *v = NULL;
	int rc = yj_digest_open(txn, cfg, ref, yjs, d, &v, out);
	if (!rc)
		rc = yj_digest_render(v, parts, out);
	yj_digest_close(&v);
	if (rc)
		yj_digest_content_free(out);
	return rc;
}
