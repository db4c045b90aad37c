/* digest.c: see digest.h. */
#include "digest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "db/digests.h"
#include "db/events.h"
#include "db/notes.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "normalise.h"
#include "route.h"

#define S_TICK_MS 1000
/* Most digests one YJS plans in one pass: a daemon down for months catches
 * up over a few passes rather than in one long transaction. */
#define S_PLAN_MAX 64

/* --- time --- */

static void s_local(int64_t us, struct tm *tm)
{
	time_t t = (time_t)(us / 1000000);
	localtime_r(&t, tm);
}

/* The instant of local date (y, m, d) at hh:mm; mktime settles gaps and folds. */
static int64_t s_instant(int y, int m, int d, int hh, int mm)
{
	struct tm tm = { 0 };
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm) * 1000000;
}

int64_t yj_digest_next_after(const struct yj_strlist *times, int64_t after_us)
{
	struct tm tm;
	int64_t best = INT64_MAX;
	s_local(after_us, &tm);
	/* Today's, tomorrow's or the day after's first time later than after_us. */
	for (int k = -1; k <= 2 && best == INT64_MAX; k++) {
		struct tm day = tm;
		day.tm_mday += k;
		day.tm_hour = 12;
		day.tm_isdst = -1;
		mktime(&day);
		for (size_t i = 0; i < times->n; i++) {
			int hh = 0, mm = 0;
			if (sscanf(times->v[i], "%2d:%2d", &hh, &mm) != 2)
				continue;
			int64_t t = s_instant(day.tm_year + 1900, day.tm_mon + 1, day.tm_mday, hh, mm);
			if (t > after_us && t < best)
				best = t;
		}
	}
	return best;
}

static void s_fmt_utc(int64_t us, char *buf, size_t size)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void s_fmt_local(int64_t us, const char *fmt, char *buf, size_t size)
{
	struct tm tm;
	s_local(us, &tm);
	strftime(buf, size, fmt, &tm);
}

/* The part of a recipient id after its kind ("yjs:milton-keynes" -> "milton-keynes"). */
static const char *s_short(const char *id)
{
	const char *c = strchr(id, ':');
	return c ? c + 1 : id;
}

/* --- content --- */

enum s_section { S_CUSTODY, S_ARREST, S_INTERVIEW, S_OUTCOME, S_OTHER_AREA, S_STILL, S_NEW, S_NSECTIONS };
static const char *const s_section_names[S_NSECTIONS] = { "custody", "arrest", "voluntary_interview", "outcome",
							   "other_area", "still_in_custody", "new_child" };
static const char *const s_section_titles[S_NSECTIONS] = {
	"Children in police custody", "Arrests and summonses", "Voluntary interviews", "Outcome updates",
	"Children from other areas held in your suites", "Still in custody now", "Children new to the service (known history)",
};

struct s_row {
	enum s_section section;
	uint64_t seq;
	Yjlink__V1__Record *rec;  /* owned */
	int withheld;
	int overnight;            /* -1 not custody */
	const char *status_now;   /* custody: latest status of the record (borrowed from a record we own) */
};

struct s_build {
	struct yj_txn *txn;
	const struct yj_config *cfg;
	const struct yj_refdata *ref;
	const struct yj_recipient *yjs;
	const Yjlink__V1__Digest *d;
	struct s_row *rows;       /* owned */
	size_t n_rows, cap_rows;
	Yjlink__V1__Record **latest; /* latest record of each open custody key, owned */
	size_t n_latest;
	/* window entries: seq -> rule flags */
	uint64_t *seqs;
	unsigned *flags;          /* bit 0 other_area, bit 1 first contact, bit 2 primary rule */
	size_t n_seqs, cap_seqs;
	char **open;              /* open custody keys, owned */
	size_t n_open, cap_open;
};

static int s_add_row(struct s_build *b, enum s_section sec, uint64_t seq, Yjlink__V1__Record *rec, int withheld,
		     int overnight, const char *status_now)
{
	if (b->n_rows == b->cap_rows) {
		size_t ncap = b->cap_rows ? b->cap_rows * 2 : 256;
		struct s_row *nr = realloc(b->rows, ncap * sizeof(*nr));
		if (!nr)
			return YJ_ENOMEM;
		b->rows = nr;
		b->cap_rows = ncap;
	}
	b->rows[b->n_rows++] = (struct s_row){ sec, seq, rec, withheld, overnight, status_now };
	return 0;
}

static Yjlink__V1__Record *s_record(struct yj_txn *txn, uint64_t seq) { return yj_events_get_record(txn, seq); }

static int s_window_cb(void *arg, uint64_t seq, const char *rule)
{
	struct s_build *b = arg;
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

/* Collected unsorted; s_dedupe_open() makes the set once all are in. */
static int s_add_open(struct s_build *b, const char *key)
{
	if (b->n_open == b->cap_open) {
		size_t ncap = b->cap_open ? b->cap_open * 2 : 32;
		char **no = realloc(b->open, ncap * sizeof(*no));
		if (!no)
			return YJ_ENOMEM;
		b->open = no;
		b->cap_open = ncap;
	}
	if (!(b->open[b->n_open] = strdup(key)))
		return YJ_ENOMEM;
	b->n_open++;
	return 0;
}

static int s_cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void s_dedupe_open(struct s_build *b)
{
	size_t keep = 0;
	if (b->n_open)
		qsort(b->open, b->n_open, sizeof(*b->open), s_cmp_cstr);
	for (size_t i = 0; i < b->n_open; i++) {
		if (keep && !strcmp(b->open[keep - 1], b->open[i]))
			free(b->open[i]);
		else
			b->open[keep++] = b->open[i];
	}
	b->n_open = keep;
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

/* The latest record of custody key (force/record) stored by seq limit. */
static Yjlink__V1__Record *s_latest_custody_at(struct yj_txn *txn, const char *key, uint64_t limit)
{
	struct s_last_dup l = { limit, 0 };
	yj_events_of_custody(txn, key, s_last_dup_cb, &l);
	return l.best ? s_record(txn, l.best) : NULL;
}

static Yjlink__V1__Record *s_latest_custody(struct s_build *b, const char *key)
{
	return s_latest_custody_at(b->txn, key, b->d->end_seq);
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
	s_local(from_us, &tm);
	for (int k = -1; k < 60; k++) {
		struct tm day = tm;
		day.tm_mday += k;
		day.tm_hour = 12;
		day.tm_isdst = -1;
		mktime(&day);
		int64_t start = s_instant(day.tm_year + 1900, day.tm_mon + 1, day.tm_mday, a / 60, a % 60);
		int64_t end = s_instant(day.tm_year + 1900, day.tm_mon + 1, day.tm_mday + (z <= a), z / 60, z % 60);
		if (start >= to_us)
			break;
		int64_t lo = from_us > start ? from_us : start, hi = to_us < end ? to_us : end;
		if (hi - lo >= need)
			return 1;
	}
	return 0;
}

static int s_is_released(const char *status) { return status && strcmp(status, "detained") != 0; }

/* Overnight for a custody record as it stands at the window's end. */
static int s_record_overnight(struct s_build *b, const Yjlink__V1__Record *latest)
{
	const Yjlink__V1__Custody *c = latest && latest->event ? latest->event->custody : NULL;
	if (!c || !c->arrived_at)
		return 0;
	int64_t end = s_is_released(c->status) && c->status_at ? c->status_at->unix_us : b->d->scheduled_us;
	return s_overnight(b->cfg, c->arrived_at->unix_us, end);
}

static const Yjlink__V1__Record *s_keep_latest(struct s_build *b, Yjlink__V1__Record *r)
{
	if (!r)
		return NULL;
	Yjlink__V1__Record **nl = realloc(b->latest, (b->n_latest + 1) * sizeof(*nl));
	if (!nl) {
		yjlink__v1__record__free_unpacked(r, NULL);
		return NULL;
	}
	b->latest = nl;
	b->latest[b->n_latest++] = r;
	return r;
}

static void s_custody_key(const Yjlink__V1__Event *ev, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", ev->force ? ev->force : "", ev->custody && ev->custody->record_id ? ev->custody->record_id : "");
}

struct s_hist {
	uint64_t *v;
	size_t n;
	uint64_t limit;
};

static int s_hist_cb(void *arg, uint64_t s)
{
	struct s_hist *h = arg;
	if (s > h->limit)
		return 0;
	uint64_t *nv = realloc(h->v, (h->n + 1) * sizeof(*nv));
	if (!nv)
		return YJ_ENOMEM;
	h->v = nv;
	h->v[h->n++] = s;
	return 0;
}

static int s_gather(struct s_build *b)
{
	const Yjlink__V1__Digest *d = b->d;
	char ckey[300];
	int rc;
	if ((rc = yj_digests_entries(b->txn, b->yjs->id, d->start_seq, d->end_seq, s_window_cb, b)) < 0)
		return rc;

	/* Open custody records: those open at the last digest, and those seen now. */
	for (size_t i = 0; i < d->n_open_before; i++) {
		if ((rc = s_add_open(b, d->open_before[i])))
			return rc;
	}
	for (size_t i = 0; i < b->n_seqs; i++) {
		Yjlink__V1__Record *r = s_record(b->txn, b->seqs[i]);
		if (!r || !r->event) {
			yjlink__v1__record__free_unpacked(r, NULL);
			continue;
		}
		const Yjlink__V1__Event *ev = r->event;
		enum yj_feed feed = yj_event_feed(ev);
		enum s_section sec = (b->flags[i] & 1) ? S_OTHER_AREA
				     : feed == YJ_FEED_CUSTODY ? S_CUSTODY
				     : feed == YJ_FEED_ARREST ? S_ARREST
				     : feed == YJ_FEED_VOLUNTARY_INTERVIEW ? S_INTERVIEW
									: S_OUTCOME;
		int overnight = -1;
		const char *status_now = NULL;
		if (feed == YJ_FEED_CUSTODY) {
			s_custody_key(ev, ckey, sizeof(ckey));
			const Yjlink__V1__Record *latest = s_keep_latest(b, s_latest_custody(b, ckey));
			overnight = s_record_overnight(b, latest);
			status_now = latest && latest->event && latest->event->custody ? latest->event->custody->status : NULL;
			if ((rc = s_add_open(b, ckey)))
				goto fail;
		}
		int withheld = yj_route_is_held(b->txn, b->seqs[i]);
		if ((rc = s_add_row(b, sec, b->seqs[i], r, withheld, overnight, status_now)))
			goto fail;
		continue;
fail:
		yjlink__v1__record__free_unpacked(r, NULL);
		return rc;
	}
	/* Still in custody at send time; the rest are closed and dropped from the set. */
	s_dedupe_open(b);
	size_t keep = 0;
	for (size_t i = 0; i < b->n_open; i++) {
		const Yjlink__V1__Record *latest = s_keep_latest(b, s_latest_custody(b, b->open[i]));
		const char *st = latest && latest->event && latest->event->custody ? latest->event->custody->status : NULL;
		if (!st || s_is_released(st)) {
			free(b->open[i]);
			continue;
		}
		b->open[keep++] = b->open[i];
		Yjlink__V1__Record *copy = s_record(b->txn, latest->seq);
		if (copy && (rc = s_add_row(b, S_STILL, copy->seq, copy, yj_route_is_held(b->txn, copy->seq), s_record_overnight(b, latest),
					    st))) {
			yjlink__v1__record__free_unpacked(copy, NULL);
			return rc;
		}
	}
	b->n_open = keep;
	/* New children: each with every event known of them up to the window's end. */
	for (size_t i = 0; i < b->n_seqs; i++) {
		if (!(b->flags[i] & 2))
			continue;
		Yjlink__V1__Record *r = s_record(b->txn, b->seqs[i]);
		char child[300];
		if (!r || !r->event) {
			yjlink__v1__record__free_unpacked(r, NULL);
			continue;
		}
		yj_event_child_id(r->event, child, sizeof(child));
		yjlink__v1__record__free_unpacked(r, NULL);
		struct s_hist h = { NULL, 0, b->d->end_seq };
		rc = yj_events_of_child(b->txn, child, s_hist_cb, &h);
		for (size_t j = 0; rc >= 0 && j < h.n; j++) {
			Yjlink__V1__Record *hr = s_record(b->txn, h.v[j]);
			const char *now_status = NULL;
			int night = -1;
			if (hr && hr->event && yj_event_feed(hr->event) == YJ_FEED_CUSTODY) {
				s_custody_key(hr->event, ckey, sizeof(ckey));
				const Yjlink__V1__Record *latest = s_keep_latest(b, s_latest_custody(b, ckey));
				now_status = latest && latest->event && latest->event->custody ? latest->event->custody->status : NULL;
				night = s_record_overnight(b, latest);
			}
			if (hr && (rc = s_add_row(b, S_NEW, hr->seq, hr, yj_route_is_held(b->txn, hr->seq), night, now_status)))
				yjlink__v1__record__free_unpacked(hr, NULL);
		}
		free(h.v);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* --- rendering --- */

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

/* Cell value of column c for row r, into buf ("" when absent or not allowed). */
static void s_cell(const struct s_build *b, const struct s_row *r, size_t c, char *buf, size_t size)
{
	const struct s_col *col = &s_cols[c];
	const Yjlink__V1__Event *ev = r->rec->event;
	const Yjlink__V1__Child *ch = ev->child;
	const Yjlink__V1__Custody *cu = ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY ? ev->custody : NULL;
	const Yjlink__V1__Outcome *oc = ev->body_case == YJLINK__V1__EVENT__BODY_OUTCOME ? ev->outcome : NULL;
	*buf = '\0';
	if (col->path && !yj_route_allowed(b->yjs, col->path))
		return;
	if (col->path && r->withheld && yj_route_withheld(col->path))
		return;
#define S(v) snprintf(buf, size, "%s", (v) ? (v) : "")
	switch (c) {
	case 0: S(s_section_names[r->section]); break;
	case 1: snprintf(buf, size, "%" PRIu64, r->seq); break;
	case 2: S(r->rec->feed); break;
	case 3: S(ev->source_id); break;
	case 4: s_time_str(ev->occurred_at, buf, size); break;
	case 5: S(ch ? ch->person_id : NULL); break;
	case 6: S(ch ? ch->pnc_id : NULL); break;
	case 7: S(ch ? ch->given_name : NULL); break;
	case 8: S(ch ? ch->family_name : NULL); break;
	case 9: S(ch ? ch->date_of_birth : NULL); break;
	case 10: S(ch ? ch->home_la : NULL); break;
	case 11: S(ch && ch->looked_after ? "yes" : "no"); break;
	case 12: S(cu ? cu->record_id : NULL); break;
	case 13: S(cu ? cu->suite : NULL); break;
	case 14: S(cu ? cu->status : NULL); break;
	case 15: s_time_str(cu ? cu->arrived_at : NULL, buf, size); break;
	case 16: S(r->overnight < 0 ? "" : r->overnight ? "yes" : "no"); break;
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
		t.unix_us = r->rec->stored_at_us;
		s_time_str(&t, buf, size);
		break;
	}
	case 22: S(cu ? r->status_now : NULL); break;
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
	}
#undef S
}

static void s_csv_field(FILE *f, const char *v)
{
	if (strpbrk(v, ",\"\r\n")) {
		fputc('"', f);
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

static void s_html_text(FILE *f, const char *v)
{
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*p, f);
		}
	}
}

/* Columns shown in the HTML and text: what a person reads on a phone. */
static const size_t s_show[] = { 1, 7, 8, 9, 10, 11, 13, 14, 22, 15, 16, 24, 17, 18, 19, 26, 4, 20 };
#define S_NSHOW (sizeof(s_show) / sizeof(s_show[0]))
static const char *const s_show_titles[S_NSHOW] = {
	"Seq", "Given name", "Family name", "Date of birth", "Home LA", "Looked after", "Suite", "Status",
	"Status now", "Arrived", "Overnight", "Appropriate adult", "Interview", "Outcome", "Outcome name", "Offences",
	"Occurred", "Withheld",
};

static int s_cmp_row(const void *a, const void *b)
{
	const struct s_row *x = a, *y = b;
	if (x->section != y->section)
		return x->section < y->section ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int s_cmp_str(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	return strcmp(x ? x : "", y ? y : "");
}

/* A JSON string (cells are valid UTF-8: the normaliser saw to that). */
static void s_json_str(FILE *f, const char *v)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* What every rendering says at its top. */
struct s_head {
	char date[16];            /* local YYYY-MM-DD of the send time */
	char start[32], end[32];  /* the window, RFC 3339 UTC */
	char whenl[48];           /* the send time as a person reads it */
	int holiday;              /* a bank holiday in England and Wales */
	unsigned children;
	unsigned events;
};

static size_t s_section_rows(const struct s_build *b, int sc)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n_rows; i++)
		n += b->rows[i].section == (enum s_section)sc;
	return n;
}

/* The CSV of interfaces.md §5: header row, then section by section in seq order. */
static void s_render_csv(const struct s_build *b, FILE *fc)
{
	char cell[1200];
	for (size_t c = 0; c < S_NCOLS; c++) {
		if (c)
			fputc(',', fc);
		fputs(s_cols[c].name, fc);
	}
	fputs("\r\n", fc);
	for (size_t i = 0; i < b->n_rows; i++) {
		for (size_t c = 0; c < S_NCOLS; c++) {
			s_cell(b, &b->rows[i], c, cell, sizeof(cell));
			if (c)
				fputc(',', fc);
			s_csv_field(fc, cell);
		}
		fputs("\r\n", fc);
	}
}

/* The digest as data (interfaces.md §3): what a webhook or a subscriber
 * receives; its rows are the CSV's, keyed by column name. Written as text
 * straight away: a tree of every cell would cost several times the digest. */
static void s_render_json(const struct s_build *b, const struct s_head *h, FILE *fj)
{
	char cell[1200];
	fputs("{\"digest_id\":", fj);
	s_json_str(fj, b->d->id ? b->d->id : "");
	fputs(",\"recipient\":", fj);
	s_json_str(fj, b->yjs->id);
	fprintf(fj, ",\"date\":\"%s\",\"window\":{\"from\":\"%s\",\"to\":\"%s\"},", h->date, h->start, h->end);
	fprintf(fj, "\"summary\":{\"children\":%u,\"events\":%u,\"empty\":%s,\"sections\":{", h->children, h->events,
		b->n_rows ? "false" : "true");
	int first = 1;
	for (int sc = 0; sc < S_NSECTIONS; sc++) {
		size_t n = s_section_rows(b, sc);
		if (n) {
			fprintf(fj, "%s\"%s\":%zu", first ? "" : ",", s_section_names[sc], n);
			first = 0;
		}
	}
	fputs("}},\"rows\":[", fj);
	for (size_t i = 0; i < b->n_rows; i++) {
		fputs(i ? ",{" : "{", fj);
		for (size_t c = 0; c < S_NCOLS; c++) {
			s_cell(b, &b->rows[i], c, cell, sizeof(cell));
			fprintf(fj, "%s\"%s\":", c ? "," : "", s_cols[c].name);
			s_json_str(fj, cell);
		}
		fputc('}', fj);
	}
	fputs("]}", fj);
}

static ssize_t s_discard(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	(void)buf;
	return (ssize_t)size;
}

/* The digest as a person reads it: text/plain and text/html, both written
 * side by side (they share every cell); one not asked for goes to a sink. */
static int s_render_people(const struct s_build *b, const struct s_head *h, FILE *ft, FILE *fh)
{
	static const cookie_io_functions_t sink = { .write = s_discard };
	const Yjlink__V1__Digest *d = b->d;
	const char *whenl = h->whenl, *start = h->start, *end = h->end;
	int holiday = h->holiday;
	unsigned children = h->children;
	char cell[1200];
	struct { unsigned events; } o = { h->events }, *out = &o;
	FILE *null = !ft || !fh ? fopencookie(NULL, "w", sink) : NULL;
	if (!ft && !(ft = null))
		return YJ_ENOMEM;
	if (!fh && !(fh = null))
		return YJ_ENOMEM;
	fprintf(ft, "OFFICIAL-SENSITIVE\r\n\r\nyjlink daily digest for %s\r\n%s%s\r\nWindow: %s to %s (stored by yjlinkd)\r\n"
		    "Digest id: %s\r\n%u children, %u new events.\r\n",
		b->yjs->name, whenl, holiday ? " (bank holiday)" : "", start, end, d->id, children, out->events);
	fprintf(fh,
		"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		"<title>yjlink daily digest</title><style>"
		"body{font-family:system-ui,Arial,sans-serif;margin:0;padding:12px;color:#111}"
		".mark{background:#b00;color:#fff;font-weight:bold;padding:4px 8px;display:inline-block}"
		"h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.4em;border-bottom:2px solid #333}"
		".wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}"
		"table{border-collapse:collapse;font-size:0.9em;min-width:100%%}"
		"th,td{border:1px solid #bbb;padding:4px 6px;text-align:left;white-space:nowrap}"
		"th{background:#eee}tr:nth-child(even) td{background:#f7f7f7}"
		"td.long{white-space:normal;min-width:14em}tr.withheld td{background:#fff4d6}"
		".t{white-space:nowrap}.none{color:#555;font-style:italic}"
		/* Phones: each row becomes a card of label: value lines, empty ones hidden. */
		"@media(max-width:600px){table,thead,tbody,tr,td{display:block;min-width:0}thead{display:none}"
		"tr{border:1px solid #999;margin:0 0 10px;padding:4px}td{border:0;white-space:normal;padding:2px 4px}"
		"td:empty{display:none}td::before{content:attr(data-label) \": \";font-weight:bold}"
		"tr:nth-child(even) td{background:none}}"
		"</style></head><body>\n"
		"<div class=\"mark\">OFFICIAL-SENSITIVE</div>\n<h1>yjlink daily digest: ");
	s_html_text(fh, b->yjs->name);
	fprintf(fh, "</h1>\n<p>%s%s<br>Window <span class=\"t\">%s</span> to <span class=\"t\">%s</span> "
		    "(when yjlinkd stored the events)<br>Digest <code>%s</code><br>"
		    "<b>%u children</b>, %u new events.</p>\n",
		whenl, holiday ? " (bank holiday)" : "", start, end, d->id, children, out->events);
	if (b->n_rows == 0) {
		fputs("\r\nNothing happened in this window: no child in custody, no arrest, interview or outcome.\r\n", ft);
		fputs("<p class=\"none\" id=\"nothing\">Nothing happened in this window: no child in custody, no arrest, "
		      "interview or outcome.</p>\n", fh);
	}
	for (int s = 0; s < S_NSECTIONS; s++) {
		size_t n = 0;
		for (size_t i = 0; i < b->n_rows; i++)
			n += b->rows[i].section == (enum s_section)s;
		if (!n)
			continue;
		fprintf(ft, "\r\n== %s (%zu)\r\n", s_section_titles[s], n);
		fprintf(fh, "<h2 id=\"%s\">%s (%zu)</h2>\n<div class=\"wrap\"><table data-section=\"%s\"><thead><tr>",
			s_section_names[s], s_section_titles[s], n, s_section_names[s]);
		for (size_t k = 0; k < S_NSHOW; k++)
			fprintf(fh, "<th>%s</th>", s_show_titles[k]);
		fputs("</tr></thead><tbody>\n", fh);
		for (size_t i = 0; i < b->n_rows; i++) {
			if (b->rows[i].section != (enum s_section)s)
				continue;
			fprintf(fh, "<tr data-seq=\"%" PRIu64 "\"%s>", b->rows[i].seq,
				b->rows[i].withheld ? " class=\"withheld\"" : "");
			fputs("-", ft);
			for (size_t k = 0; k < S_NSHOW; k++) {
				s_cell(b, &b->rows[i], s_show[k], cell, sizeof(cell));
				size_t col = s_show[k];
				fprintf(fh, "<td data-label=\"%s\"%s>", s_show_titles[k],
					col == 19 || col == 24 || col == 26 ? " class=\"long\"" : "");
				s_html_text(fh, cell);
				fputs("</td>", fh);
				if (*cell)
					fprintf(ft, " %s: %s;", s_show_titles[k], cell);
			}
			fputs("</tr>\n", fh);
			fputs("\r\n", ft);
		}
		fputs("</tbody></table></div>\n", fh);
	}
	fputs("<p style=\"font-size:0.8em;color:#555\">Sent by yjlink under the data sharing agreement of this "
	      "service. Do not forward.</p></body></html>\n", fh);
	fputs("\r\nSent by yjlink under the data sharing agreement of this service. Do not forward.\r\n", ft);
	if (null)
		fclose(null);
	return 0;
}

static int s_render(struct s_build *b, unsigned parts, struct yj_digest_content *out)
{
	const Yjlink__V1__Digest *d = b->d;
	struct s_head h;
	char *txt = NULL, *html = NULL, *csv = NULL, *json = NULL;
	size_t tlen = 0, hlen = 0, clen = 0, jlen = 0;
	FILE *ft = NULL, *fh = NULL, *fc = NULL, *fj = NULL;
	int rc = YJ_ENOMEM;

	memset(&h, 0, sizeof(h));
	if (b->n_rows)
		qsort(b->rows, b->n_rows, sizeof(*b->rows), s_cmp_row);
	/* Children: distinct child ids across the digest (sorted, then counted). */
	char **ids = calloc(b->n_rows + 1, sizeof(*ids));
	if (!ids)
		goto out;
	for (size_t i = 0; i < b->n_rows; i++) {
		char id[300];
		yj_event_child_id(b->rows[i].rec->event, id, sizeof(id));
		ids[i] = strdup(id);
	}
	if (b->n_rows)
		qsort(ids, b->n_rows, sizeof(*ids), s_cmp_str);
	for (size_t i = 0; i < b->n_rows; i++)
		h.children += ids[i] && (i == 0 || !ids[i - 1] || strcmp(ids[i], ids[i - 1]));
	for (size_t i = 0; i < b->n_rows; i++)
		free(ids[i]);
	free(ids);
	h.events = (unsigned)b->n_seqs;
	s_fmt_local(d->scheduled_us, "%Y-%m-%d", h.date, sizeof(h.date));
	s_fmt_local(d->scheduled_us, "%A %e %B %Y %H:%M %Z", h.whenl, sizeof(h.whenl));
	s_fmt_utc(d->start_us, h.start, sizeof(h.start));
	s_fmt_utc(d->scheduled_us, h.end, sizeof(h.end));
	h.holiday = yj_ref_is_bank_holiday(b->ref, (int32_t)((d->scheduled_us / 1000000 + 43200) / 86400));
	out->children = h.children;
	out->events = h.events;
	snprintf(out->date, sizeof(out->date), "%s", h.date);
	snprintf(out->window_from, sizeof(out->window_from), "%s", h.start);
	snprintf(out->window_to, sizeof(out->window_to), "%s", h.end);
	if (asprintf(&out->csv_name, "yjlink-digest-%s-%s.csv", s_short(b->yjs->id), h.date) < 0) {
		out->csv_name = NULL;
		goto out;
	}
	/* Only the renderings the caller will use: each costs about the digest's size. */
	if (((parts & YJ_DIGEST_TEXT) && !(ft = open_memstream(&txt, &tlen))) ||
	    ((parts & YJ_DIGEST_HTML) && !(fh = open_memstream(&html, &hlen))) ||
	    ((parts & YJ_DIGEST_CSV) && !(fc = open_memstream(&csv, &clen))) ||
	    ((parts & YJ_DIGEST_JSON) && !(fj = open_memstream(&json, &jlen))))
		goto out;
	if (fc)
		s_render_csv(b, fc);
	if (fj)
		s_render_json(b, &h, fj);
	rc = ft || fh ? s_render_people(b, &h, ft, fh) : 0;
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

static void s_build_free(struct s_build *b)
{
	for (size_t i = 0; i < b->n_rows; i++)
		yjlink__v1__record__free_unpacked(b->rows[i].rec, NULL);
	free(b->rows);
	for (size_t i = 0; i < b->n_latest; i++)
		yjlink__v1__record__free_unpacked(b->latest[i], NULL);
	free(b->latest);
	free(b->seqs);
	free(b->flags);
	for (size_t i = 0; i < b->n_open; i++)
		free(b->open[i]);
	free(b->open);
}

static int s_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int yj_digest_build(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref,
		    const struct yj_recipient *yjs, const Yjlink__V1__Digest *d, unsigned parts,
		    struct yj_digest_content *out)
{
	struct s_build b = { .txn = txn, .cfg = cfg, .ref = ref, .yjs = yjs, .d = d };
	memset(out, 0, sizeof(*out));
	int rc = s_gather(&b);
	if (!rc)
		rc = s_render(&b, parts, out);
	if (!rc && !(out->id = strdup(d->id ? d->id : "")))
		rc = YJ_ENOMEM;
	if (!rc) {
		/* Disclosed: every event shown, each once, ascending. */
		out->seqs = malloc((b.n_rows + 1) * sizeof(*out->seqs));
		if (!out->seqs)
			rc = YJ_ENOMEM;
		for (size_t i = 0; !rc && i < b.n_rows; i++)
			out->seqs[i] = b.rows[i].seq;
		if (!rc && b.n_rows)
			qsort(out->seqs, b.n_rows, sizeof(*out->seqs), s_cmp_u64);
		for (size_t i = 0; !rc && i < b.n_rows; i++) {
			if (i == 0 || out->seqs[i] != out->seqs[out->n_seqs - 1])
				out->seqs[out->n_seqs++] = out->seqs[i];
		}
		out->fields = cJSON_CreateArray();
		for (size_t c = 0; out->fields && c < S_NCOLS; c++) {
			if (s_cols[c].path && yj_route_allowed(yjs, s_cols[c].path))
				cJSON_AddItemToArray(out->fields, cJSON_CreateString(s_cols[c].path));
		}
		out->open = b.open;
		out->n_open = b.n_open;
		b.open = NULL;
		b.n_open = 0;
	}
	s_build_free(&b);
	if (rc)
		yj_digest_content_free(out);
	return rc;
}

/* --- planning: each due digest becomes an outbox job --- */

struct yj_digest {
	struct yj_core *core;          /* borrowed */
	int64_t timer;                 /* the planner's tick */
	int ticking;                   /* guards re-entry */
};

static void s_digest_id(const struct yj_config *cfg, const char *yjs, int64_t scheduled_us, char *buf, size_t size)
{
	char when[32];
	s_fmt_local(scheduled_us, "%Y%m%dT%H%M", when, sizeof(when));
	snprintf(buf, size, "%s-digest-%s-%s", cfg->deployment_id, s_short(yjs), when);
}

static int s_strlist_add(struct yj_strlist *l, const char *v)
{
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return YJ_ENOMEM;
	l->v = nv;
	if (!(l->v[l->n] = strdup(v)))
		return YJ_ENOMEM;
	l->n++;
	return 0;
}

struct s_open {
	struct yj_txn *txn;
	struct yj_strlist keys;        /* custody keys seen, unsorted, with repeats */
};

static int s_open_entry(void *arg, uint64_t seq, const char *rule)
{
	struct s_open *o = arg;
	char key[300];
	(void)rule;
	Yjlink__V1__Record *r = s_record(o->txn, seq);
	int rc = 0;
	if (r && r->event && yj_event_feed(r->event) == YJ_FEED_CUSTODY) {
		s_custody_key(r->event, key, sizeof(key));
		rc = s_strlist_add(&o->keys, key);
	}
	yjlink__v1__record__free_unpacked(r, NULL);
	return rc;
}

/* The custody records still open at the end of window d: those open before
 * it and those seen in it, whose latest status by d's end is detained. The
 * same set yj_digest_build() shows as "still in custody", without building
 * the rest, so that planning stays a short write transaction. */
static int s_open_after(struct yj_txn *txn, const struct yj_recipient *yjs, const Yjlink__V1__Digest *d,
			struct yj_strlist *out)
{
	struct s_open o = { txn, { NULL, 0 } };
	int rc = 0;
	out->v = NULL;
	out->n = 0;
	for (size_t i = 0; !rc && i < d->n_open_before; i++)
		rc = s_strlist_add(&o.keys, d->open_before[i]);
	if (!rc)
		rc = yj_digests_entries(txn, yjs->id, d->start_seq, d->end_seq, s_open_entry, &o);
	if (rc >= 0 && o.keys.n)
		qsort(o.keys.v, o.keys.n, sizeof(*o.keys.v), s_cmp_cstr);
	for (size_t i = 0; rc >= 0 && i < o.keys.n; i++) {
		if (i && !strcmp(o.keys.v[i], o.keys.v[i - 1]))
			continue;
		Yjlink__V1__Record *latest = s_latest_custody_at(txn, o.keys.v[i], d->end_seq);
		const char *st = latest && latest->event && latest->event->custody ? latest->event->custody->status : NULL;
		if (st && !s_is_released(st))
			rc = s_strlist_add(out, o.keys.v[i]);
		yjlink__v1__record__free_unpacked(latest, NULL);
	}
	yj_strlist_free(&o.keys);
	if (rc < 0)
		yj_strlist_free(out);
	return rc < 0 ? rc : 0;
}

/* Queue digest d for yjs as an outbox job (or unroutable, when the YJS has
 * no destination) and log it. */
static int s_queue(struct yj_txn *txn, const struct yj_recipient *yjs, Yjlink__V1__Digest *d, int64_t now)
{
	Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
	uint64_t number = 0;
	int rc = yj_notes_next_number(txn, &number);
	if (rc)
		return rc;
	n.has_number = 1;
	n.number = number;
	n.recipient = yjs->id;
	n.rule = "daily_digest";
	n.kind = "daily_digest";
	n.has_created_at_us = 1;
	n.created_at_us = now;
	n.legal_basis = yjs->legal_basis;
	n.digest = d;
	return yj_notes_put(txn, yjs->output >= 0 ? YJ_NOTES_OUTBOX : YJ_NOTES_UNROUTABLE, &n);
}

struct s_plan {
	struct yj_digest *dg;
	const struct yj_recipient *yjs;
	int64_t now;
	int planned;                   /* out: digests queued */
};

/* Plan, in one transaction, every digest of one YJS now due: each gets its
 * window, goes into the outbox and the log, and the state moves past it. */
static int s_plan_write(struct yj_txn *txn, void *arg)
{
	struct s_plan *p = arg;
	const struct yj_config *cfg = p->dg->core->cfg;
	struct yj_strlist open = { NULL, 0 }, next_open = { NULL, 0 };
	int rc = 0;
	p->planned = 0;
	Yjlink__V1__DigestState *st = yj_digests_state_get(txn, p->yjs->id);
	if (!st) {
		if ((rc = yj_txn_rc(txn)))
			return rc;
		/* First sight of this YJS: its first digest covers everything stored so far. */
		Yjlink__V1__DigestState init = YJLINK__V1__DIGEST_STATE__INIT;
		init.yjs = p->yjs->id;
		init.has_last_scheduled_us = init.has_last_end_seq = 1;
		init.last_scheduled_us = p->now;
		init.last_end_seq = 0;
		return yj_digests_state_put(txn, &init);
	}
	for (size_t i = 0; !rc && i < st->n_open_custody; i++)
		rc = s_strlist_add(&open, st->open_custody[i]);
	uint64_t last_end = st->last_end_seq;
	int64_t last_sched = st->last_scheduled_us;
	while (!rc && p->planned < S_PLAN_MAX) {
		Yjlink__V1__Digest d = YJLINK__V1__DIGEST__INIT;
		char id[200];
		if (st->pending && p->planned == 0) {
			/* Recorded by a version before the one outbox and never confirmed:
			 * it goes as it was, its window unchanged. */
			d = *st->pending;
		} else {
			int64_t next = yj_digest_next_after(&p->yjs->digest_times, last_sched);
			if (next == INT64_MAX || next > p->now)
				break;
			s_digest_id(cfg, p->yjs->id, next, id, sizeof(id));
			d.id = id;
			d.yjs = p->yjs->id;
			d.has_scheduled_us = d.has_start_us = d.has_start_seq = d.has_end_seq = 1;
			d.scheduled_us = next;
			d.start_us = last_sched;
			d.start_seq = last_end;
			d.end_seq = yj_events_seq_at(txn, next);
			if (d.end_seq < d.start_seq)
				d.end_seq = d.start_seq;
		}
		d.n_open_before = open.n;
		d.open_before = open.v;
		d.has_resend = 0;
		d.actor = NULL;
		if ((rc = s_open_after(txn, p->yjs, &d, &next_open)) || (rc = s_queue(txn, p->yjs, &d, p->now)) ||
		    (rc = yj_digests_log_put(txn, &d)))
			break;
		last_sched = d.scheduled_us;
		last_end = d.end_seq;
		yj_strlist_free(&open);
		open = next_open;
		next_open.v = NULL;
		next_open.n = 0;
		p->planned++;
	}
	if (!rc && p->planned) {
		/* The unpacked state's own strings go back in place before its free. */
		char **keep_open = st->open_custody;
		size_t keep_n = st->n_open_custody;
		Yjlink__V1__Digest *keep_pending = st->pending;
		st->open_custody = open.v;
		st->n_open_custody = open.n;
		st->pending = NULL;
		if (!st->has_planned || st->planned < st->sent)
			st->planned = st->sent;
		st->has_last_scheduled_us = st->has_last_end_seq = st->has_planned = 1;
		st->last_scheduled_us = last_sched;
		st->last_end_seq = last_end;
		st->planned += (uint64_t)p->planned;
		rc = yj_digests_state_put(txn, st);
		st->open_custody = keep_open;
		st->n_open_custody = keep_n;
		st->pending = keep_pending;
	}
	yj_strlist_free(&open);
	yj_strlist_free(&next_open);
	yjlink__v1__digest_state__free_unpacked(st, NULL);
	return rc;
}

int yj_digest_tick(struct yj_digest *dg)
{
	const struct yj_config *cfg = dg->core->cfg;
	int total = 0;
	if (dg->ticking)
		return 0;
	dg->ticking = 1;
	int64_t now = yj_clock_now_us();
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		if (r->kind != YJ_RCPT_YJS || r->digest_times.n == 0)
			continue;
		struct s_plan p = { dg, r, now, 0 };
		int rc = yj_store_write(dg->core->store, s_plan_write, &p);
		if (rc) {
			yj_warn("digest: cannot plan the digest of %s: %s (trying again in a second)", r->id, yj_strerror(rc));
			continue;
		}
		if (p.planned)
			yj_info("digest: %d digest(s) of %s queued for delivery", p.planned, r->id);
		total += p.planned;
	}
	dg->ticking = 0;
	return total;
}

int yj_digest_delivered(struct yj_txn *txn, const Yjlink__V1__Notification *n, const struct yj_digest_content *c,
			int64_t now_us)
{
	const Yjlink__V1__Digest *d = n->digest;
	int rc = 0;
	if (!d || !d->yjs || d->resend)
		return 0; /* a resend changes nothing of the schedule */
	Yjlink__V1__Digest *logd = yj_digests_log_get(txn, d->yjs, d->scheduled_us);
	if (logd) {
		logd->has_sent_at_us = logd->has_children = logd->has_events = 1;
		logd->sent_at_us = now_us;
		logd->children = c->children;
		logd->events = c->events;
		rc = yj_digests_log_put(txn, logd);
		yjlink__v1__digest__free_unpacked(logd, NULL);
		if (rc)
			return rc;
	}
	Yjlink__V1__DigestState *st = yj_digests_state_get(txn, d->yjs);
	if (!st)
		return yj_txn_rc(txn);
	st->has_sent = st->has_last_sent_scheduled_us = 1;
	st->sent++;
	if (d->scheduled_us > st->last_sent_scheduled_us)
		st->last_sent_scheduled_us = d->scheduled_us;
	rc = yj_digests_state_put(txn, st);
	yjlink__v1__digest_state__free_unpacked(st, NULL);
	return rc;
}

static int s_tick_timer(struct yj_loop *loop, void *arg)
{
	struct yj_digest *dg = arg;
	(void)loop;
	/* The outbox's own tick picks up what was planned. */
	yj_digest_tick(dg);
	return 0;
}

int yj_digest_start(struct yj_core *core, struct yj_digest **out)
{
	struct yj_digest *dg = calloc(1, sizeof(*dg));
	if (!dg)
		return YJ_ENOMEM;
	dg->core = core;
	dg->timer = yj_loop_timer(core->loop, 0, S_TICK_MS, s_tick_timer, dg);
	if (dg->timer < 0) {
		free(dg);
		return YJ_ENOMEM;
	}
	*out = dg;
	return 0;
}

void yj_digest_stop(struct yj_digest **pdg)
{
	struct yj_digest *dg = pdg ? *pdg : NULL;
	if (!dg)
		return;
	yj_loop_timer_cancel(dg->core->loop, dg->timer);
	free(dg);
	*pdg = NULL;
}

/* --- preview, resend, status --- */

struct s_find {
	const char *yjs;
	char date[16];                 /* local YYYY-MM-DD wanted, "" for none */
	Yjlink__V1__Digest **found;    /* owned copies */
	size_t n;
	Yjlink__V1__DigestState *state; /* owned */
};

static Yjlink__V1__Digest *s_digest_copy(const Yjlink__V1__Digest *d)
{
	size_t len = protobuf_c_message_get_packed_size(&d->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return NULL;
	protobuf_c_message_pack(&d->base, buf);
	Yjlink__V1__Digest *c = yjlink__v1__digest__unpack(NULL, len, buf);
	free(buf);
	return c;
}

static int s_find_cb(void *arg, const Yjlink__V1__Digest *d)
{
	struct s_find *f = arg;
	char day[16];
	s_fmt_local(d->scheduled_us, "%Y-%m-%d", day, sizeof(day));
	if (strcmp(day, f->date))
		return 0;
	Yjlink__V1__Digest **nf = realloc(f->found, (f->n + 1) * sizeof(*nf));
	if (!nf)
		return YJ_ENOMEM;
	f->found = nf;
	if (!(f->found[f->n] = s_digest_copy(d)))
		return YJ_ENOMEM;
	f->n++;
	return 0;
}

static int s_find_read(struct yj_txn *txn, void *arg)
{
	struct s_find *f = arg;
	f->state = yj_digests_state_get(txn, f->yjs);
	if (!*f->date)
		return 0;
	int rc = yj_digests_log_each(txn, f->yjs, s_find_cb, f);
	return rc < 0 ? rc : 0;
}

static int s_check_date(const char *date)
{
	int y, m, d;
	char extra;
	return date && sscanf(date, "%4d-%2d-%2d%c", &y, &m, &d, &extra) == 3 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static void s_find_free(struct s_find *f)
{
	for (size_t i = 0; i < f->n; i++)
		yjlink__v1__digest__free_unpacked(f->found[i], NULL);
	free(f->found);
	yjlink__v1__digest_state__free_unpacked(f->state, NULL);
}

struct s_build_read {
	struct yj_digest *dg;
	const struct yj_recipient *yjs;
	const Yjlink__V1__Digest *d;
	unsigned parts;
	struct yj_digest_content *out;
};

static int s_build_read(struct yj_txn *txn, void *arg)
{
	struct s_build_read *br = arg;
	return yj_digest_build(txn, br->dg->core->cfg, br->dg->core->ref, br->yjs, br->d, br->parts, br->out);
}

static const struct yj_recipient *s_yjs(struct yj_digest *dg, const char *id, char *err, size_t errlen)
{
	const struct yj_recipient *yjs = yj_config_recipient(dg->core->cfg, id);
	if (!yjs || yjs->kind != YJ_RCPT_YJS) {
		snprintf(err, errlen, "no YJS '%s' in the config", id);
		return NULL;
	}
	return yjs;
}

int yj_digest_preview(struct yj_digest *dg, const char *yjs_id, const char *date, unsigned parts,
		      struct yj_digest_content *out, char *err, size_t errlen)
{
	const struct yj_config *cfg = dg->core->cfg;
	struct s_find f = { yjs_id, "", NULL, 0, NULL };
	int rc;
	memset(out, 0, sizeof(*out));
	const struct yj_recipient *yjs = s_yjs(dg, yjs_id, err, errlen);
	if (!yjs)
		return YJ_ENOENT;
	if (date && !s_check_date(date)) {
		snprintf(err, errlen, "--date must be YYYY-MM-DD");
		return YJ_EINVAL;
	}
	if (date)
		snprintf(f.date, sizeof(f.date), "%s", date);
	if ((rc = yj_store_read(dg->core->store, s_find_read, &f)))
		goto out;
	Yjlink__V1__Digest d = YJLINK__V1__DIGEST__INIT;
	const Yjlink__V1__Digest *want = &d;
	char id[200];
	if (date) {
		if (f.n == 0) {
			snprintf(err, errlen, "no digest was planned for %s on %s", yjs_id, date);
			rc = YJ_ENOENT;
			goto out;
		}
		want = f.found[f.n - 1]; /* the last of that day, exactly as it went */
	} else {
		/* The next digest as it stands now: from the last window's end to now. */
		int64_t now = yj_clock_now_us();
		d.has_scheduled_us = d.has_start_us = d.has_start_seq = d.has_end_seq = 1;
		d.scheduled_us = now;
		d.start_us = f.state ? f.state->last_scheduled_us : 0;
		d.start_seq = f.state ? f.state->last_end_seq : 0;
		d.end_seq = UINT64_MAX;
		d.yjs = (char *)yjs_id;
		if (f.state) {
			d.n_open_before = f.state->n_open_custody;
			d.open_before = f.state->open_custody;
		}
		int64_t next = f.state ? yj_digest_next_after(&yjs->digest_times, f.state->last_scheduled_us) : now;
		s_digest_id(cfg, yjs_id, next == INT64_MAX ? now : next, id, sizeof(id));
		d.id = id;
	}
	struct s_build_read br = { dg, yjs, want, parts, out };
	rc = yj_store_read(dg->core->store, s_build_read, &br);
out:
	s_find_free(&f);
	if (rc && !*err)
		snprintf(err, errlen, "%s", yj_strerror(rc));
	return rc;
}

struct s_resend {
	const struct yj_recipient *yjs;
	Yjlink__V1__Digest **found;
	size_t n;
	const char *actor;
	int64_t now;
};

static int s_resend_write(struct yj_txn *txn, void *arg)
{
	struct s_resend *r = arg;
	for (size_t i = 0; i < r->n; i++) {
		Yjlink__V1__Digest d = *r->found[i];
		d.has_resend = 1;
		d.resend = 1;
		d.actor = (char *)r->actor;
		int rc = s_queue(txn, r->yjs, &d, r->now);
		if (rc)
			return rc;
	}
	return 0;
}

int yj_digest_resend(struct yj_digest *dg, const char *yjs_id, const char *date, const char *actor, char *err,
		     size_t errlen)
{
	struct s_find f = { yjs_id, "", NULL, 0, NULL };
	int rc;
	const struct yj_recipient *yjs = s_yjs(dg, yjs_id, err, errlen);
	if (!yjs)
		return YJ_ENOENT;
	if (!s_check_date(date)) {
		snprintf(err, errlen, "digest send needs --date YYYY-MM-DD");
		return YJ_EINVAL;
	}
	snprintf(f.date, sizeof(f.date), "%s", date);
	if ((rc = yj_store_read(dg->core->store, s_find_read, &f)))
		goto out;
	if (f.n == 0) {
		snprintf(err, errlen, "no digest was planned for %s on %s", yjs_id, date);
		rc = YJ_ENOENT;
		goto out;
	}
	struct s_resend r = { yjs, f.found, f.n, actor, yj_clock_now_us() };
	rc = yj_store_write(dg->core->store, s_resend_write, &r);
out:
	s_find_free(&f);
	if (rc && !*err)
		snprintf(err, errlen, "%s", yj_strerror(rc));
	return rc ? rc : (int)f.n;
}

struct s_status_read {
	struct yj_digest *dg;
	cJSON *out;
};

static int s_status_read(struct yj_txn *txn, void *arg)
{
	struct s_status_read *s = arg;
	const struct yj_config *cfg = s->dg->core->cfg;
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		if (r->kind != YJ_RCPT_YJS)
			continue;
		Yjlink__V1__DigestState *st = yj_digests_state_get(txn, r->id);
		cJSON *o = cJSON_AddObjectToObject(s->out, r->id);
		char buf[40];
		/* A state from before the one outbox knew only the last sent digest. */
		int64_t last_sent = st && st->has_last_sent_scheduled_us ? st->last_sent_scheduled_us
				    : st && st->sent ? st->last_scheduled_us : 0;
		uint64_t planned = st && st->has_planned ? st->planned : st ? st->sent : 0;
		if (last_sent) {
			s_fmt_utc(last_sent, buf, sizeof(buf));
			cJSON_AddStringToObject(o, "last_digest", buf);
		} else {
			cJSON_AddStringToObject(o, "last_digest", "none yet");
		}
		cJSON_AddNumberToObject(o, "sent", st ? (double)st->sent : 0);
		int64_t next = yj_digest_next_after(&r->digest_times, st ? st->last_scheduled_us : yj_clock_now_us());
		if (next != INT64_MAX) {
			s_fmt_utc(next, buf, sizeof(buf));
			cJSON_AddStringToObject(o, "next_digest", buf);
		}
		/* Planned and not yet delivered: in the outbox, or dead-lettered. */
		cJSON_AddBoolToObject(o, "pending", st && (planned > st->sent || st->pending));
		cJSON_AddStringToObject(o, "transport", r->transport);
		yjlink__v1__digest_state__free_unpacked(st, NULL);
	}
	return 0;
}

struct s_today {
	int64_t midnight_us;
	uint64_t count;
};

static int s_today_read(struct yj_txn *txn, void *arg)
{
	struct s_today *t = arg;
	uint64_t last = 0;
	int rc = yj_events_last_seq(txn, &last);
	if (rc)
		return rc;
	t->count = last - yj_events_seq_at(txn, t->midnight_us - 1);
	return 0;
}

int yj_digest_events_today(struct yj_store *store, uint64_t *count)
{
	struct tm tm;
	s_local(yj_clock_now_us(), &tm);
	struct s_today t = { s_instant(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, 0, 0), 0 };
	int rc = yj_store_read(store, s_today_read, &t);
	*count = t.count;
	return rc;
}

int yj_digest_last_sent(struct yj_digest *dg, char *buf, size_t size)
{
	cJSON *st = yj_digest_status(dg), *it;
	const char *best = NULL;
	cJSON_ArrayForEach(it, st) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(it, "last_digest");
		if (cJSON_IsString(l) && strcmp(l->valuestring, "none yet") && (!best || strcmp(l->valuestring, best) > 0))
			best = l->valuestring;
	}
	snprintf(buf, size, "%s", best ? best : "none yet");
	cJSON_Delete(st);
	return 0;
}

cJSON *yj_digest_status(struct yj_digest *dg)
{
	struct s_status_read s = { dg, cJSON_CreateObject() };
	if (s.out)
		yj_store_read(dg->core->store, s_status_read, &s);
	return s.out;
}
