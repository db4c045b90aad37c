/* digest.c: see digest.h. */
#include "digest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapter.h"
#include "audit.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "normalise.h"
#include "route.h"

#define S_TICK_MS 1000
#define S_META_STATE "digest.state."

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

static Yjlink__V1__Record *s_record(struct yj_txn *txn, uint64_t seq)
{
	const void *data;
	size_t len;
	if (yj_store_get_event(txn, seq, &data, &len))
		return NULL;
	return yjlink__v1__record__unpack(NULL, len, data);
}

struct s_window {
	struct s_build *b;
	size_t rlen;
};

static int s_window_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_window *w = arg;
	struct s_build *b = w->b;
	if (klen != w->rlen + 9 || memcmp(key, b->yjs->id, w->rlen) || ((const char *)key)[w->rlen])
		return 1;
	uint64_t seq = yj_be64_get((const uint8_t *)key + w->rlen + 1);
	if (seq > b->d->end_seq)
		return 1;
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
	char rule[128];
	snprintf(rule, sizeof(rule), "%.*s", (int)vlen, (const char *)val);
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

static int s_last_dup_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_last_dup *l = arg;
	(void)key;
	(void)klen;
	if (vlen != 8)
		return 0;
	uint64_t s = yj_be64_get(val);
	if (s <= l->limit && s > l->best)
		l->best = s;
	return 0;
}

/* The latest record of custody key (force/record) stored by the window's end. */
static Yjlink__V1__Record *s_latest_custody(struct s_build *b, const char *key)
{
	struct s_last_dup l = { b->d->end_seq, 0 };
	yj_txn_iter_dups(b->txn, YJ_DB_CUSTODY, key, strlen(key), s_last_dup_cb, &l);
	return l.best ? s_record(b->txn, l.best) : NULL;
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

static int s_hist_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_hist *h = arg;
	(void)key;
	(void)klen;
	if (vlen != 8)
		return 0;
	uint64_t s = yj_be64_get(val);
	if (s > h->limit)
		return 0;
	uint64_t *nv = realloc(h->v, (h->n + 1) * sizeof(*nv));
	if (!nv)
		return YJ_ENOMEM;
	h->v = nv;
	h->v[h->n++] = s;
	return 0;
}

static int s_gather(struct s_build *b, const struct yj_strlist *open_before)
{
	struct s_window w = { b, strlen(b->yjs->id) };
	uint8_t from[320];
	char ckey[300];
	int rc;
	if (w.rlen > 300)
		return YJ_EINVAL;
	memcpy(from, b->yjs->id, w.rlen);
	from[w.rlen] = '\0';
	yj_be64_put(from + w.rlen + 1, b->d->start_seq + 1);
	if ((rc = yj_txn_iter(b->txn, YJ_DB_DIGEST, from, w.rlen + 9, 0, s_window_cb, &w)) < 0)
		return rc;

	/* Open custody records: those open at the last digest, and those seen now. */
	for (size_t i = 0; open_before && i < open_before->n; i++) {
		if ((rc = s_add_open(b, open_before->v[i])))
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
		rc = yj_txn_iter_dups(b->txn, YJ_DB_CHILD, child, strlen(child), s_hist_cb, &h);
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

static int s_render(struct s_build *b, struct yj_digest_content *out)
{
	const Yjlink__V1__Digest *d = b->d;
	char *txt = NULL, *html = NULL, *csv = NULL;
	size_t tlen = 0, hlen = 0, clen = 0;
	char cell[1200], date[16], start[32], end[32], whenl[40];
	FILE *ft = open_memstream(&txt, &tlen), *fh = open_memstream(&html, &hlen), *fc = open_memstream(&csv, &clen);
	int rc = YJ_ENOMEM;

	if (!ft || !fh || !fc)
		goto out;
	if (b->n_rows)
		qsort(b->rows, b->n_rows, sizeof(*b->rows), s_cmp_row);
	/* Children: distinct child ids across the digest (sorted, then counted). */
	unsigned children = 0;
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
		children += ids[i] && (i == 0 || !ids[i - 1] || strcmp(ids[i], ids[i - 1]));
	for (size_t i = 0; i < b->n_rows; i++)
		free(ids[i]);
	free(ids);
	out->children = children;
	out->events = (unsigned)b->n_seqs;
	s_fmt_local(d->scheduled_us, "%Y-%m-%d", date, sizeof(date));
	s_fmt_local(d->scheduled_us, "%A %e %B %Y %H:%M %Z", whenl, sizeof(whenl));
	s_fmt_utc(d->start_us, start, sizeof(start));
	s_fmt_utc(d->scheduled_us, end, sizeof(end));
	int32_t day = (int32_t)((d->scheduled_us / 1000000 + 43200) / 86400);
	int holiday = yj_ref_is_bank_holiday(b->ref, day);
	if (asprintf(&out->subject, "[OFFICIAL-SENSITIVE] yjlink daily digest %s %s: %u children", b->yjs->name, date,
		     children) < 0 ||
	    asprintf(&out->csv_name, "yjlink-digest-%s-%s.csv", s_short(b->yjs->id), date) < 0 ||
	    asprintf(&out->headers, "X-Yjlink-Digest-Id: %s\r\nX-Yjlink-Window: %s/%s\r\n", d->id, start, end) < 0)
		goto out;

	/* CSV: header row, then section by section in seq order. */
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

	/* Text and HTML. */
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
	rc = 0;
out:
	if (ft)
		fclose(ft);
	if (fh)
		fclose(fh);
	if (fc)
		fclose(fc);
	out->text = txt;
	out->html = html;
	out->csv = csv;
	out->csv_len = clen;
	if (!txt || !html || !csv)
		rc = YJ_ENOMEM;
	return rc;
}

void yj_digest_content_free(struct yj_digest_content *c)
{
	free(c->id);
	free(c->subject);
	free(c->text);
	free(c->html);
	free(c->csv);
	free(c->csv_name);
	free(c->headers);
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
		    const struct yj_recipient *yjs, const Yjlink__V1__Digest *d, const struct yj_strlist *open_before,
		    struct yj_digest_content *out)
{
	struct s_build b = { .txn = txn, .cfg = cfg, .ref = ref, .yjs = yjs, .d = d };
	memset(out, 0, sizeof(*out));
	int rc = s_gather(&b, open_before);
	if (!rc)
		rc = s_render(&b, out);
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

/* --- the service --- */

/* One YJS's digest on its way out. */
struct s_flight {
	struct yj_digest *dg;
	char *yjs;                     /* recipient id, owned */
	Yjlink__V1__Digest *d;         /* owned (unpacked copy) */
	struct yj_digest_content c;    /* owned */
	int resend;                    /* an operator's resend: no state change */
	char *actor;                   /* resend: who asked */
	int64_t started_us;
	struct s_flight *prev, *next;  /* the service's list of digests under way */
};

struct s_yjs_state {
	char *id;                      /* owned */
	int in_flight;
	int64_t retry_at_us;           /* after a failure */
	uint32_t failures;
};

struct yj_digest {
	struct yj_digest_deps d;
	struct s_yjs_state *st;        /* owned */
	size_t n_st;
	int64_t timer;
	uint64_t sent;                 /* since start */
	int ticking;
	struct s_flight *live;         /* under way: freed at stop when never finished */
};

static struct s_yjs_state *s_state_mem(struct yj_digest *dg, const char *id)
{
	for (size_t i = 0; i < dg->n_st; i++) {
		if (!strcmp(dg->st[i].id, id))
			return &dg->st[i];
	}
	struct s_yjs_state *ns = realloc(dg->st, (dg->n_st + 1) * sizeof(*ns));
	if (!ns)
		return NULL;
	dg->st = ns;
	memset(&ns[dg->n_st], 0, sizeof(*ns));
	if (!(ns[dg->n_st].id = strdup(id)))
		return NULL;
	return &ns[dg->n_st++];
}

static size_t s_state_key(char *buf, size_t size, const char *yjs)
{
	return (size_t)snprintf(buf, size, "%s%s", S_META_STATE, yjs);
}

static Yjlink__V1__DigestState *s_state_get(struct yj_txn *txn, const char *yjs)
{
	char k[400];
	const void *v;
	size_t vlen;
	size_t klen = s_state_key(k, sizeof(k), yjs);
	if (yj_txn_get(txn, YJ_DB_META, k, klen, &v, &vlen))
		return NULL;
	return yjlink__v1__digest_state__unpack(NULL, vlen, v);
}

static int s_state_put(struct yj_txn *txn, const char *yjs, const Yjlink__V1__DigestState *st)
{
	char k[400];
	size_t klen = s_state_key(k, sizeof(k), yjs);
	size_t len = protobuf_c_message_get_packed_size(&st->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return YJ_ENOMEM;
	protobuf_c_message_pack(&st->base, buf);
	int rc = yj_txn_put(txn, YJ_DB_META, k, klen, buf, len);
	free(buf);
	return rc;
}

/* The last seq stored at or before t: binary search, stored_at grows with seq. */
uint64_t yj_digest_seq_at(struct yj_txn *txn, int64_t t_us)
{
	uint64_t lo = 0, hi = 0;
	if (yj_txn_last_u64(txn, YJ_DB_EVENTS, &hi) || hi == 0)
		return 0;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		Yjlink__V1__Record *r = s_record(txn, mid);
		/* A gap (erased by retention) counts as stored long ago. */
		int64_t at = r ? r->stored_at_us : INT64_MIN;
		yjlink__v1__record__free_unpacked(r, NULL);
		if (at <= t_us)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static void s_digest_id(const struct yj_config *cfg, const char *yjs, int64_t scheduled_us, char *buf, size_t size)
{
	char when[32];
	s_fmt_local(scheduled_us, "%Y%m%dT%H%M", when, sizeof(when));
	snprintf(buf, size, "%s-digest-%s-%s", cfg->deployment_id, s_short(yjs), when);
}

struct s_plan {
	struct yj_digest *dg;
	const struct yj_recipient *yjs;
	int64_t now;
	Yjlink__V1__Digest *due;        /* out: the digest to send now (owned), or NULL */
	Yjlink__V1__DigestState *state; /* out: state as read (owned) */
};

/* Decide (and record as pending) the digest due for one YJS. */
static int s_plan_write(struct yj_txn *txn, void *arg)
{
	struct s_plan *p = arg;
	const struct yj_config *cfg = *p->dg->d.cfg;
	int rc = 0;
	if (p->due) {
		yjlink__v1__digest__free_unpacked(p->due, NULL);
		p->due = NULL;
	}
	if (p->state) {
		yjlink__v1__digest_state__free_unpacked(p->state, NULL);
		p->state = NULL;
	}
	Yjlink__V1__DigestState *st = s_state_get(txn, p->yjs->id);
	if (!st) {
		/* First sight of this YJS: its first digest covers everything stored so far. */
		Yjlink__V1__DigestState init = YJLINK__V1__DIGEST_STATE__INIT;
		init.yjs = p->yjs->id;
		init.has_last_scheduled_us = 1;
		init.last_scheduled_us = p->now;
		init.has_last_end_seq = 1;
		init.last_end_seq = 0;
		if ((rc = s_state_put(txn, p->yjs->id, &init)))
			return rc;
		return 0;
	}
	p->state = st;
	if (st->pending) {
		/* Recorded before a crash or a failure: the same digest goes again. */
		size_t len = protobuf_c_message_get_packed_size(&st->pending->base);
		uint8_t *buf = malloc(len ? len : 1);
		if (!buf)
			return YJ_ENOMEM;
		protobuf_c_message_pack(&st->pending->base, buf);
		p->due = yjlink__v1__digest__unpack(NULL, len, buf);
		free(buf);
		return p->due ? 0 : YJ_ENOMEM;
	}
	int64_t next = yj_digest_next_after(&p->yjs->digest_times, st->last_scheduled_us);
	if (next == INT64_MAX || next > p->now)
		return 0;
	char id[200];
	s_digest_id(cfg, p->yjs->id, next, id, sizeof(id));
	Yjlink__V1__Digest d = YJLINK__V1__DIGEST__INIT;
	d.id = id;
	d.yjs = p->yjs->id;
	d.has_scheduled_us = d.has_start_us = d.has_start_seq = d.has_end_seq = 1;
	d.scheduled_us = next;
	d.start_us = st->last_scheduled_us;
	d.start_seq = st->last_end_seq;
	d.end_seq = yj_digest_seq_at(txn, next);
	if (d.end_seq < d.start_seq)
		d.end_seq = d.start_seq;
	st->pending = &d;
	rc = s_state_put(txn, p->yjs->id, st);
	st->pending = NULL;
	if (rc)
		return rc;
	size_t len = protobuf_c_message_get_packed_size(&d.base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return YJ_ENOMEM;
	protobuf_c_message_pack(&d.base, buf);
	p->due = yjlink__v1__digest__unpack(NULL, len, buf);
	free(buf);
	return p->due ? 0 : YJ_ENOMEM;
}

struct s_build_read {
	struct yj_digest *dg;
	const struct yj_recipient *yjs;
	const Yjlink__V1__Digest *d;
	struct yj_strlist open;
	struct yj_digest_content *out;
};

static int s_build_read(struct yj_txn *txn, void *arg)
{
	struct s_build_read *br = arg;
	return yj_digest_build(txn, *br->dg->d.cfg, *br->dg->d.ref, br->yjs, br->d, &br->open, br->out);
}

static const struct yj_adapter *s_email(struct yj_digest *dg, void **state)
{
	for (size_t i = 0; yj_adapters[i]; i++) {
		if (yj_adapters[i]->deliver && yj_adapters[i]->transport == YJ_TRANSPORT_EMAIL && dg->d.adapter_state[i]) {
			*state = dg->d.adapter_state[i];
			return yj_adapters[i];
		}
	}
	return NULL;
}

struct s_confirm {
	struct s_flight *f;
	const char *address;
};

static int s_confirm_write(struct yj_txn *txn, void *arg)
{
	struct s_confirm *cf = arg;
	struct s_flight *f = cf->f;
	const struct yj_config *cfg = *f->dg->d.cfg;
	const struct yj_recipient *r = yj_config_recipient(cfg, f->yjs);
	int64_t now = yj_clock_now_us();
	int rc;
	if (!f->resend) {
		Yjlink__V1__DigestState *st = s_state_get(txn, f->yjs);
		if (!st || !st->pending || !st->pending->id || strcmp(st->pending->id, f->d->id)) {
			yjlink__v1__digest_state__free_unpacked(st, NULL);
			return 0; /* already confirmed */
		}
		Yjlink__V1__DigestState ns = YJLINK__V1__DIGEST_STATE__INIT;
		ns.yjs = f->yjs;
		ns.has_last_scheduled_us = ns.has_last_end_seq = ns.has_sent = 1;
		ns.last_scheduled_us = f->d->scheduled_us;
		ns.last_end_seq = f->d->end_seq;
		ns.sent = st->sent + 1;
		ns.n_open_custody = f->c.n_open;
		ns.open_custody = f->c.open;
		rc = s_state_put(txn, f->yjs, &ns);
		yjlink__v1__digest_state__free_unpacked(st, NULL);
		if (rc)
			return rc;
		/* The log of sent digests, for preview --date and resend. */
		Yjlink__V1__Digest logd = *f->d;
		logd.has_sent_at_us = logd.has_children = logd.has_events = 1;
		logd.sent_at_us = now;
		logd.children = f->c.children;
		logd.events = f->c.events;
		size_t len = protobuf_c_message_get_packed_size(&logd.base);
		uint8_t *buf = malloc(len ? len : 1), key[400];
		if (!buf)
			return YJ_ENOMEM;
		protobuf_c_message_pack(&logd.base, buf);
		size_t rl = strlen(f->yjs);
		memcpy(key, f->yjs, rl);
		key[rl] = '\0';
		yj_be64_put(key + rl + 1, yj_time_key(f->d->scheduled_us));
		rc = yj_txn_put(txn, YJ_DB_DIGEST_LOG, key, rl + 9, buf, len);
		free(buf);
		if (rc)
			return rc;
	}
	/* One audit record listing every event the digest disclosed. */
	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	size_t nf = (size_t)cJSON_GetArraySize(f->c.fields);
	char **fields = calloc(nf + 1, sizeof(char *));
	char *feeds[] = { "custody", "arrest", "voluntary_interview", "outcome" };
	if (!fields)
		return YJ_ENOMEM;
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, f->c.fields) {
		fields[i++] = it->valuestring;
	}
	a.has_at_us = 1;
	a.at_us = now;
	a.action = "disclosure";
	a.actor = f->resend ? f->actor : "yjlinkd";
	a.recipient = f->yjs;
	a.address = (char *)cf->address;
	a.rule = "daily_digest";
	a.legal_basis = r ? r->legal_basis : "";
	a.n_seqs = f->c.n_seqs;
	a.seqs = f->c.seqs;
	a.n_fields = nf;
	a.fields = fields;
	a.n_feeds = 4;
	a.feeds = feeds;
	a.notification_id = f->d->id;
	a.reason = f->resend ? "digest resent by an operator" : "";
	rc = yj_audit_append(txn, &a);
	free(fields);
	for (size_t k = 0; !rc && k < f->c.n_seqs; k++) {
		uint8_t dk[400];
		size_t rl = strlen(f->yjs);
		yj_be64_put(dk, f->c.seqs[k]);
		memcpy(dk + 8, f->yjs, rl);
		rc = yj_txn_put(txn, YJ_DB_DISCLOSED, dk, 8 + rl, "", 0);
	}
	return rc;
}

static void s_flight_free(struct s_flight *f)
{
	yj_digest_content_free(&f->c);
	yjlink__v1__digest__free_unpacked(f->d, NULL);
	free(f->yjs);
	free(f->actor);
	free(f);
}

static void s_unlink(struct s_flight *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else if (f->dg->live == f)
		f->dg->live = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
}

static void s_on_sent(void *arg, enum yj_delivery_result result, const char *detail, const char *address)
{
	struct s_flight *f = arg;
	struct yj_digest *dg = f->dg;
	s_unlink(f);
	struct s_yjs_state *ms = s_state_mem(dg, f->yjs);
	if (result == YJ_DELIVERY_OK) {
		struct s_confirm cf = { f, address ? address : "" };
		int rc = yj_store_write(dg->d.store, s_confirm_write, &cf);
		if (rc) {
			/* Sent but not recorded: after a restart it goes again with the same id. */
			yj_err("digest: %s sent but not recorded: %s", f->d->id, yj_strerror(rc));
			if (ms)
				ms->retry_at_us = yj_clock_now_us() + 5000000;
		} else {
			dg->sent++;
			yj_notice("digest: %s sent to %s (%u children, %u events)", f->d->id, f->yjs, f->c.children, f->c.events);
			if (ms) {
				ms->failures = 0;
				ms->retry_at_us = 0;
			}
		}
	} else {
		/* Never dead-lettered: a digest must arrive. Retry with a capped backoff. */
		if (ms) {
			ms->failures++;
			int64_t delay = (int64_t)(1u << (ms->failures < 8 ? ms->failures : 8)) * 500000;
			ms->retry_at_us = yj_clock_now_us() + delay;
		}
		yj_warn("digest: %s to %s not sent (%s); retrying", f->d->id, f->yjs, detail ? detail : "");
	}
	if (ms)
		ms->in_flight = 0;
	s_flight_free(f);
	/* The next one (a catch-up after downtime) may be due already. */
	yj_loop_wake(dg->d.loop);
	yj_digest_tick(dg);
}

static int s_send(struct yj_digest *dg, const struct yj_recipient *yjs, Yjlink__V1__Digest *d,
		  const struct yj_strlist *open, int resend, const char *actor)
{
	struct s_flight *f = calloc(1, sizeof(*f));
	void *astate = NULL;
	const struct yj_adapter *a = s_email(dg, &astate);
	int rc = YJ_ENOMEM;
	if (!f) {
		yjlink__v1__digest__free_unpacked(d, NULL);
		return rc;
	}
	f->dg = dg;
	f->d = d;
	f->resend = resend;
	if (!(f->yjs = strdup(yjs->id)) || (actor && !(f->actor = strdup(actor))))
		goto fail;
	struct s_build_read br = { dg, yjs, d, *open, &f->c };
	if ((rc = yj_store_read(dg->d.store, s_build_read, &br)))
		goto fail;
	if (!a) {
		rc = YJ_ENOENT;
		yj_err("digest: no email output available for %s", yjs->id);
		goto fail;
	}
	struct yj_delivery del = {
		.notification_id = d->id, .recipient = yjs, .kind = "daily_digest", .json = "", .json_len = 0,
		.subject = f->c.subject, .text = f->c.text, .html = f->c.html, .extra_headers = f->c.headers,
		.attachment_name = f->c.csv_name, .attachment = f->c.csv, .attachment_len = f->c.csv_len,
	};
	struct s_yjs_state *ms = s_state_mem(dg, yjs->id);
	if (ms)
		ms->in_flight = 1;
	f->started_us = yj_clock_now_us();
	f->next = dg->live;
	if (dg->live)
		dg->live->prev = f;
	dg->live = f;
	rc = a->deliver(astate, &del, s_on_sent, f);
	if (rc) {
		s_unlink(f);
		if (ms)
			ms->in_flight = 0;
		goto fail;
	}
	return 0;
fail:
	s_flight_free(f);
	return rc;
}

void yj_digest_tick(struct yj_digest *dg)
{
	const struct yj_config *cfg = *dg->d.cfg;
	if (dg->ticking)
		return;
	dg->ticking = 1;
	int64_t now = yj_clock_now_us();
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		if (r->kind != YJ_RCPT_YJS || r->digest_times.n == 0 || r->transport != YJ_TRANSPORT_EMAIL)
			continue;
		struct s_yjs_state *ms = s_state_mem(dg, r->id);
		if (!ms || ms->in_flight || ms->retry_at_us > now)
			continue;
		struct s_plan p = { dg, r, now, NULL, NULL };
		int rc = yj_store_write(dg->d.store, s_plan_write, &p);
		if (rc)
			yj_warn("digest: cannot plan the digest of %s: %s", r->id, yj_strerror(rc));
		if (!rc && p.due) {
			struct yj_strlist open = { p.state ? p.state->open_custody : NULL, p.state ? p.state->n_open_custody : 0 };
			Yjlink__V1__Digest *due = p.due;
			p.due = NULL;
			rc = s_send(dg, r, due, &open, 0, NULL);
			if (rc && (ms = s_state_mem(dg, r->id)))
				ms->retry_at_us = now + 5000000;
		}
		if (p.due)
			yjlink__v1__digest__free_unpacked(p.due, NULL);
		yjlink__v1__digest_state__free_unpacked(p.state, NULL);
	}
	dg->ticking = 0;
}

static int s_tick_timer(struct yj_loop *loop, void *arg)
{
	(void)loop;
	yj_digest_tick(arg);
	return 0;
}

int yj_digest_start(const struct yj_digest_deps *deps, struct yj_digest **out)
{
	struct yj_digest *dg = calloc(1, sizeof(*dg));
	if (!dg)
		return YJ_ENOMEM;
	dg->d = *deps;
	dg->timer = yj_loop_timer(dg->d.loop, 0, S_TICK_MS, s_tick_timer, dg);
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
	yj_loop_timer_cancel(dg->d.loop, dg->timer);
	/* Abandoned sends stay pending in the store and go again, same id. */
	while (dg->live) {
		struct s_flight *f = dg->live;
		dg->live = f->next;
		s_flight_free(f);
	}
	for (size_t i = 0; i < dg->n_st; i++)
		free(dg->st[i].id);
	free(dg->st);
	free(dg);
	*pdg = NULL;
}

/* --- preview, resend, status --- */

struct s_find {
	const char *yjs;
	size_t rlen;
	char date[16];            /* local YYYY-MM-DD wanted */
	Yjlink__V1__Digest **found;
	size_t n;
	Yjlink__V1__DigestState *state;
};

static int s_find_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_find *f = arg;
	if (klen != f->rlen + 9 || memcmp(key, f->yjs, f->rlen) || ((const char *)key)[f->rlen])
		return 1;
	Yjlink__V1__Digest *d = yjlink__v1__digest__unpack(NULL, vlen, val);
	if (!d)
		return 0;
	char day[16];
	s_fmt_local(d->scheduled_us, "%Y-%m-%d", day, sizeof(day));
	if (strcmp(day, f->date)) {
		yjlink__v1__digest__free_unpacked(d, NULL);
		return 0;
	}
	Yjlink__V1__Digest **nf = realloc(f->found, (f->n + 1) * sizeof(*nf));
	if (!nf) {
		yjlink__v1__digest__free_unpacked(d, NULL);
		return YJ_ENOMEM;
	}
	f->found = nf;
	f->found[f->n++] = d;
	return 0;
}

static int s_find_read(struct yj_txn *txn, void *arg)
{
	struct s_find *f = arg;
	uint8_t from[400];
	memcpy(from, f->yjs, f->rlen);
	from[f->rlen] = '\0';
	f->state = s_state_get(txn, f->yjs);
	if (!*f->date)
		return 0;
	int rc = yj_txn_iter(txn, YJ_DB_DIGEST_LOG, from, f->rlen + 1, 0, s_find_cb, f);
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

int yj_digest_preview(struct yj_digest *dg, const char *yjs_id, const char *date, struct yj_digest_content *out,
		      char *err, size_t errlen)
{
	const struct yj_config *cfg = *dg->d.cfg;
	const struct yj_recipient *yjs = yj_config_recipient(cfg, yjs_id);
	struct s_find f = { yjs_id, strlen(yjs_id), "", NULL, 0, NULL };
	int rc;
	memset(out, 0, sizeof(*out));
	if (!yjs || yjs->kind != YJ_RCPT_YJS) {
		snprintf(err, errlen, "no YJS '%s' in the config", yjs_id);
		return YJ_ENOENT;
	}
	if (date && !s_check_date(date)) {
		snprintf(err, errlen, "--date must be YYYY-MM-DD");
		return YJ_EINVAL;
	}
	if (f.rlen > 300)
		return YJ_EINVAL;
	if (date)
		snprintf(f.date, sizeof(f.date), "%s", date);
	if ((rc = yj_store_read(dg->d.store, s_find_read, &f)))
		goto out;
	Yjlink__V1__Digest d = YJLINK__V1__DIGEST__INIT;
	char id[200];
	struct yj_strlist open = { f.state ? f.state->open_custody : NULL, f.state ? f.state->n_open_custody : 0 };
	if (date) {
		if (f.n == 0) {
			snprintf(err, errlen, "no digest was sent to %s on %s", yjs_id, date);
			rc = YJ_ENOENT;
			goto out;
		}
		/* The last of that day; its open set is not kept, so still-in-custody is as of now. */
		d = *f.found[f.n - 1];
		open.n = 0;
	} else {
		int64_t now = yj_clock_now_us();
		d.has_scheduled_us = d.has_start_us = d.has_start_seq = d.has_end_seq = 1;
		d.scheduled_us = now;
		d.start_us = f.state ? f.state->last_scheduled_us : 0;
		d.start_seq = f.state ? f.state->last_end_seq : 0;
		d.end_seq = UINT64_MAX;
		int64_t next = f.state ? yj_digest_next_after(&yjs->digest_times, f.state->last_scheduled_us) : now;
		s_digest_id(cfg, yjs_id, next == INT64_MAX ? now : next, id, sizeof(id));
		d.id = id;
	}
	struct s_build_read br = { dg, yjs, &d, open, out };
	rc = yj_store_read(dg->d.store, s_build_read, &br);
out:
	s_find_free(&f);
	if (rc && !*err)
		snprintf(err, errlen, "%s", yj_strerror(rc));
	return rc;
}

int yj_digest_resend(struct yj_digest *dg, const char *yjs_id, const char *date, const char *actor, char *err,
		     size_t errlen)
{
	const struct yj_config *cfg = *dg->d.cfg;
	const struct yj_recipient *yjs = yj_config_recipient(cfg, yjs_id);
	struct s_find f = { yjs_id, strlen(yjs_id), "", NULL, 0, NULL };
	int rc, queued = 0;
	if (!yjs || yjs->kind != YJ_RCPT_YJS) {
		snprintf(err, errlen, "no YJS '%s' in the config", yjs_id);
		return YJ_ENOENT;
	}
	if (!s_check_date(date)) {
		snprintf(err, errlen, "digest send needs --date YYYY-MM-DD");
		return YJ_EINVAL;
	}
	snprintf(f.date, sizeof(f.date), "%s", date);
	if ((rc = yj_store_read(dg->d.store, s_find_read, &f)))
		goto out;
	if (f.n == 0) {
		snprintf(err, errlen, "no digest was sent to %s on %s", yjs_id, date);
		rc = YJ_ENOENT;
		goto out;
	}
	for (size_t i = 0; i < f.n; i++) {
		struct yj_strlist none = { NULL, 0 };
		Yjlink__V1__Digest *d = f.found[i];
		f.found[i] = NULL;
		if ((rc = s_send(dg, yjs, d, &none, 1, actor)))
			break;
		queued++;
	}
out:
	s_find_free(&f);
	if (rc && !*err)
		snprintf(err, errlen, "%s", yj_strerror(rc));
	return rc ? rc : queued;
}

struct s_status_read {
	struct yj_digest *dg;
	cJSON *out;
};

static int s_status_read(struct yj_txn *txn, void *arg)
{
	struct s_status_read *s = arg;
	const struct yj_config *cfg = *s->dg->d.cfg;
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		if (r->kind != YJ_RCPT_YJS)
			continue;
		Yjlink__V1__DigestState *st = s_state_get(txn, r->id);
		cJSON *o = cJSON_AddObjectToObject(s->out, r->id);
		char buf[40];
		if (st && st->sent) {
			s_fmt_utc(st->last_scheduled_us, buf, sizeof(buf));
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
		cJSON_AddBoolToObject(o, "pending", st && st->pending);
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
	int rc = yj_txn_last_u64(txn, YJ_DB_EVENTS, &last);
	if (rc)
		return rc;
	t->count = last - yj_digest_seq_at(txn, t->midnight_us - 1);
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
		yj_store_read(dg->d.store, s_status_read, &s);
	return s.out;
}
