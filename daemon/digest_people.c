/* digest_people.c: the digest as a person reads it (text/plain and
 * text/html, interfaces.md §5): one entry per child, grouped by custody
 * record, what to act on first at the top, local time (Europe/London, the
 * day with it) and names from the reference tables, never codes.
 *
 * Both renderings are written side by side from the same phrases, child by
 * child, each record read again from the transaction when its child is
 * written (digest_int.h). Feed text is cleaned once, on its way into a
 * phrase: control characters (C0, DEL, C1, U+2028, U+2029) become a space
 * and bidi controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)
 * are dropped, so no name can start a line of the text part, forge an entry
 * or turn the text around it; the HTML then escapes the phrase as well
 * (docs/digest.md, "Hostile text").
 */
#include "digest_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bigbuf.h"
#include "db/events.h"
#include "err.h"
#include "normalise.h"
#include "route.h"

/* A large window (a catch-up after downtime) stays readable and bounded:
 * past these, a person's view says how many more there are and where they
 * are (the CSV has every row). */
#define S_MAX_CHILDREN 5000
#define S_MAX_EVENTS 200

/* --- a growable string, for one child's entry at a time --- */

struct s_sb {
	char *v;       /* owned, NUL-terminated when n > 0 */
	size_t n, cap;
	int err;       /* sticky: an allocation failed */
};

static void s_sb_add(struct s_sb *s, const char *p, size_t len)
{
	if (s->err)
		return;
	if (yj_buf_reserve(&s->v, &s->cap, s->n + len + 1, 0)) {
		s->err = 1;
		return;
	}
	memcpy(s->v + s->n, p, len);
	s->n += len;
	s->v[s->n] = '\0';
}

static void s_sb_str(struct s_sb *s, const char *p) { s_sb_add(s, p, strlen(p)); }

__attribute__((format(printf, 2, 3))) static void s_sb_fmt(struct s_sb *s, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (w > 0)
		s_sb_add(s, buf, (size_t)w < sizeof(buf) ? (size_t)w : sizeof(buf) - 1);
}

static void s_sb_reset(struct s_sb *s)
{
	s->n = 0;
	if (s->v)
		s->v[0] = '\0';
}

/* Feed text into a phrase: controls become a space, bidi controls go. At
 * most max bytes of it (cut on a character boundary). */
static void s_sb_clean(struct s_sb *s, const char *raw, size_t max)
{
	const unsigned char *p = (const unsigned char *)(raw ? raw : "");
	size_t start = s->n;
	while (*p && s->n - start < max) {
		size_t len = 1;
		int drop = 0, space = 0;
		if (*p < 0x20 || *p == 0x7f)
			space = 1;
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			space = 1, len = 2; /* C1 controls */
		else if (*p == 0xd8 && p[1] == 0x9c)
			drop = 1, len = 2; /* U+061C arabic letter mark */
		else if (*p == 0xe2 && p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xaa && p[2] <= 0xae)))
			drop = 1, len = 3; /* U+200E, U+200F, U+202A..U+202E */
		else if (*p == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
			space = 1, len = 3; /* U+2028, U+2029: line and paragraph separators */
		else if (*p == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			drop = 1, len = 3; /* U+2066..U+2069 */
		else {
			/* One whole UTF-8 character (the normaliser checked the encoding). */
			len = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
			for (size_t i = 1; i < len; i++) {
				if (!p[i]) {
					len = i;
					break;
				}
			}
		}
		if (space)
			s_sb_add(s, " ", 1);
		else if (!drop)
			s_sb_add(s, (const char *)p, len);
		p += len;
	}
}

/* HTML text of a phrase (already clean). */
static void s_sb_esc(struct s_sb *s, const char *v)
{
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '<': s_sb_str(s, "&lt;"); break;
		case '>': s_sb_str(s, "&gt;"); break;
		case '&': s_sb_str(s, "&amp;"); break;
		case '"': s_sb_str(s, "&quot;"); break;
		case '\'': s_sb_str(s, "&#39;"); break;
		default: s_sb_add(s, p, 1);
		}
	}
}

static void s_fesc(FILE *f, const char *v)
{
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*p, f);
		}
	}
}

/* --- words and times --- */

struct s_people {
	struct yj_dg_build *b;
	FILE *ft, *fh;               /* borrowed: the two renderings */
	uint32_t *order;             /* owned: row indices in the order a person reads them */
	int send_year;
	struct s_sb t, h;            /* one child's entry, text and HTML */
	struct s_sb p, w;            /* a phrase, and its time */
	struct s_sb offences;        /* a child's offence descriptions, "; "-separated */
	struct s_sb aa;              /* a custody record's appropriate adult */
	struct s_sb grounds;         /* a custody record's grounds */
	int last_yday, last_year;    /* the day of the last time shown in this entry */
	unsigned notes;              /* S_N_* of the child being written */
};

enum {
	S_N_DOB = 1 << 0,            /* date of birth differs between messages */
	S_N_AGE = 1 << 1,            /* age outside 10 to 17 on the day */
	S_N_OUTCOME = 1 << 2,        /* outcome code not in the reference table */
	S_N_OUTCOME_DATE = 1 << 3,   /* outcome code not in force on the decision date */
	S_N_SUITE = 1 << 4,          /* custody suite not in the reference table */
	S_N_LA = 1 << 5,             /* home authority not in the reference table */
	S_N_CUT = 1 << 6,            /* more events than one entry shows */
	S_N_NOT_CHILD = 1 << 7,      /* an outcome code that cannot apply to a child */
};

/* "Mon 30 Nov 18:13" (with the year when it is not the send time's), or
 * "18:13" when the last time shown was on the same day. */
static void s_when(struct s_people *pp, struct s_sb *s, int64_t us, int short_ok)
{
	struct tm tm;
	char buf[48];
	yj_dg_local(us, &tm);
	if (short_ok && tm.tm_yday == pp->last_yday && tm.tm_year == pp->last_year) {
		strftime(buf, sizeof(buf), "%H:%M", &tm);
	} else {
		char day[8];
		strftime(buf, sizeof(buf), "%a ", &tm);
		snprintf(day, sizeof(day), "%d ", tm.tm_mday);
		size_t n = strlen(buf);
		snprintf(buf + n, sizeof(buf) - n, "%s", day);
		n = strlen(buf);
		strftime(buf + n, sizeof(buf) - n, tm.tm_year + 1900 == pp->send_year ? "%b %H:%M" : "%b %Y %H:%M", &tm);
	}
	pp->last_yday = tm.tm_yday;
	pp->last_year = tm.tm_year;
	s_sb_str(s, buf);
}

/* "Fri 27 Nov 02:10" into buf, without the entry's state. */
static void s_when_buf(int send_year, int64_t us, char *buf, size_t size)
{
	struct tm tm;
	char day[8];
	yj_dg_local(us, &tm);
	strftime(buf, size, "%a ", &tm);
	snprintf(day, sizeof(day), "%d ", tm.tm_mday);
	size_t n = strlen(buf);
	snprintf(buf + n, size - n, "%s", day);
	n = strlen(buf);
	strftime(buf + n, size - n, tm.tm_year + 1900 == send_year ? "%b %H:%M" : "%b %Y %H:%M", &tm);
}

/* "3 h 15 min", "40 min", "2 days 3 h". */
static void s_duration(struct s_sb *s, int64_t us)
{
	int64_t min = us / 60000000;
	if (min < 1)
		s_sb_str(s, "under a minute");
	else if (min < 60)
		s_sb_fmt(s, "%" PRId64 " min", min);
	else if (min < 48 * 60)
		s_sb_fmt(s, min % 60 ? "%" PRId64 " h %" PRId64 " min" : "%" PRId64 " h", min / 60, min % 60);
	else
		s_sb_fmt(s, (min / 60) % 24 ? "%" PRId64 " days %" PRId64 " h" : "%" PRId64 " days", min / 1440,
			 (min / 60) % 24);
}

static const char *const s_months[12] = { "January", "February", "March", "April", "May", "June", "July",
					   "August", "September", "October", "November", "December" };

static int s_ymd(const char *s, int *y, int *m, int *d)
{
	char extra;
	return s && sscanf(s, "%4d-%2d-%2d%c", y, m, d, &extra) == 3 && *m >= 1 && *m <= 12 && *d >= 1 && *d <= 31;
}

/* A custody status as a person says it. */
static const char *s_status_words(const char *st)
{
	static const char *const map[][2] = {
		{ "detained", "detained" },
		{ "released_nfa", "released, no further action" },
		{ "released_bail", "released on bail" },
		{ "released_under_investigation", "released under investigation" },
		{ "charged_bailed", "charged and bailed" },
		{ "charged_remanded", "charged and remanded" },
		{ "transferred_la_accommodation", "moved to local authority accommodation" },
		{ "released_other", "released" },
	};
	for (size_t i = 0; st && i < sizeof(map) / sizeof(map[0]); i++) {
		if (!strcmp(map[i][0], st))
			return map[i][1];
	}
	return NULL;
}

/* A code of the vocabulary (interview status, disposal) with its '_' as spaces. */
static void s_words(struct s_sb *s, const char *code)
{
	static const char *const map[][2] = {
		{ "nfa", "no further action" },
		{ "outcome_21", "outcome 21 (further investigation not in the public interest)" },
		{ "outcome_22", "outcome 22 (deferred prosecution: diversion or intervention)" },
		{ "charge", "charged" },
	};
	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++) {
		if (!strcmp(map[i][0], code)) {
			s_sb_str(s, map[i][1]);
			return;
		}
	}
	size_t start = s->n;
	s_sb_clean(s, code, 80);
	for (size_t i = start; !s->err && i < s->n; i++) {
		if (s->v[i] == '_')
			s->v[i] = ' ';
	}
}

static const char *s_suite_name(const struct yj_dg_build *b, const char *id, unsigned *notes)
{
	const struct yj_suite *su = id ? yj_ref_suite(b->ref, id) : NULL;
	if (!su && id && notes)
		*notes |= S_N_SUITE;
	return su ? su->name : NULL;
}

/* "Milton Keynes custody suite" (or the suite id when the tables do not know it). */
static void s_suite(const struct yj_dg_build *b, struct s_sb *s, const char *id, unsigned *notes)
{
	const char *name = s_suite_name(b, id, notes);
	if (name) {
		s_sb_clean(s, name, 120);
		if (!strstr(name, "suite") && !strstr(name, "Suite") && !strstr(name, "station"))
			s_sb_str(s, " custody suite");
	} else {
		s_sb_str(s, "custody suite ");
		s_sb_clean(s, id, 60);
	}
}

/* --- the order a person reads --- */

static int s_cmp_people(const void *x, const void *y, void *arg)
{
	const struct yj_dg_build *b = arg;
	const struct yj_dg_row *r = &b->rows[*(const uint32_t *)x], *q = &b->rows[*(const uint32_t *)y];
	const struct yj_dg_child *a = &b->children[r->child], *c = &b->children[q->child];
	if (a->group != c->group)
		return a->group < c->group ? -1 : 1;
	if (a->rank != c->rank)
		return a->rank < c->rank ? -1 : 1;
	if (r->child != q->child) {
		if (a->first_seq != c->first_seq)
			return a->first_seq < c->first_seq ? -1 : 1;
		return r->child < q->child ? -1 : 1;
	}
	/* Within a child: each custody record's messages together, at its first. */
	uint64_t gr = r->custody >= 0 ? b->custody[r->custody].first_row_seq : r->seq;
	uint64_t gq = q->custody >= 0 ? b->custody[q->custody].first_row_seq : q->seq;
	if (gr != gq)
		return gr < gq ? -1 : 1;
	return r->seq < q->seq ? -1 : r->seq > q->seq;
}

/* --- one child's entry --- */

static const char *const s_group_ids[3] = { "act-first", "others", "other-areas" };
static const char *const s_group_titles[3] = { "Act on first", "Other children in this window",
					       "Children from other areas held in your suites" };

/* Write the phrase (s_people.p, time in .w) as one event line of both renderings. */
static void s_emit_event(struct s_people *pp, uint64_t seq, const char *cls)
{
	s_sb_str(&pp->t, "    ");
	if (pp->w.n) {
		s_sb_add(&pp->t, pp->w.v, pp->w.n);
		s_sb_str(&pp->t, "  ");
	}
	s_sb_add(&pp->t, pp->p.v ? pp->p.v : "", pp->p.n);
	s_sb_str(&pp->t, "\r\n");
	s_sb_fmt(&pp->h, "<li data-seq=\"%" PRIu64 "\"%s%s%s>", seq, cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
	if (pp->w.n) {
		s_sb_str(&pp->h, "<span class=\"t\">");
		s_sb_esc(&pp->h, pp->w.v);
		s_sb_str(&pp->h, "</span> ");
	}
	s_sb_esc(&pp->h, pp->p.v ? pp->p.v : "");
	s_sb_str(&pp->h, "</li>\n");
}

/* A line that is no event (a record's summary), in both renderings. */
static void s_emit_note(struct s_people *pp, const char *cls)
{
	s_sb_str(&pp->t, "    ");
	s_sb_add(&pp->t, pp->p.v ? pp->p.v : "", pp->p.n);
	s_sb_str(&pp->t, "\r\n");
	s_sb_fmt(&pp->h, "<li class=\"%s\">", cls);
	s_sb_esc(&pp->h, pp->p.v ? pp->p.v : "");
	s_sb_str(&pp->h, "</li>\n");
}

static void s_add_offences(struct s_people *pp, const Yjlink__V1__Event *ev, int withheld)
{
	if (!yj_dg_shown(pp->b, "offences", withheld))
		return;
	for (size_t i = 0; i < ev->n_offences; i++) {
		const char *d = ev->offences[i]->description ? ev->offences[i]->description : ev->offences[i]->code;
		struct s_sb one = { 0 };
		s_sb_clean(&one, d, 300);
		if (one.n && !one.err && (!pp->offences.v || !strstr(pp->offences.v, one.v)) && pp->offences.n < 2000) {
			if (pp->offences.n)
				s_sb_str(&pp->offences, "; ");
			s_sb_add(&pp->offences, one.v, one.n);
		}
		free(one.v);
	}
}

/* The summary line of custody record cu after its messages. */
static void s_record_summary(struct s_people *pp, const struct yj_dg_custody *cu, int withheld)
{
	struct yj_dg_build *b = pp->b;
	s_sb_reset(&pp->p);
	s_sb_reset(&pp->w);
	if (cu->arrived_us && cu->until_us > cu->arrived_us && yj_dg_shown(b, "custody.arrived_at", 0)) {
		if (cu->open) {
			s_sb_str(&pp->p, "still in custody at the send time: ");
			s_duration(&pp->p, cu->until_us - cu->arrived_us);
			s_sb_str(&pp->p, " so far");
		} else {
			s_duration(&pp->p, cu->until_us - cu->arrived_us);
			s_sb_str(&pp->p, " in custody");
		}
		if (cu->overnight)
			s_sb_str(&pp->p, ", held overnight");
	} else if (cu->open) {
		s_sb_str(&pp->p, "still in custody at the send time");
	}
	if (pp->aa.n) {
		s_sb_str(&pp->p, pp->p.n ? "; appropriate adult: " : "appropriate adult: ");
		s_sb_add(&pp->p, pp->aa.v, pp->aa.n);
	}
	if (pp->grounds.n && !withheld) {
		s_sb_str(&pp->p, pp->p.n ? "; grounds: " : "grounds: ");
		s_sb_add(&pp->p, pp->grounds.v, pp->grounds.n);
	}
	if (pp->p.n)
		s_emit_note(pp, "sum");
}

/* The appropriate adult of a custody message, as the record's summary says it. */
static void s_note_aa(struct s_people *pp, const Yjlink__V1__Custody *cu, int withheld)
{
	const Yjlink__V1__AppropriateAdult *aa = cu->appropriate_adult;
	struct yj_dg_build *b = pp->b;
	if (!aa)
		return;
	s_sb_reset(&pp->aa);
	if (aa->name && yj_dg_shown(b, "custody.appropriate_adult.name", withheld))
		s_sb_clean(&pp->aa, aa->name, 120);
	if (aa->relationship && yj_dg_shown(b, "custody.appropriate_adult.relationship", withheld)) {
		s_sb_str(&pp->aa, pp->aa.n ? " (" : "");
		s_sb_clean(&pp->aa, aa->relationship, 80);
		s_sb_str(&pp->aa, pp->aa.n && aa->name && yj_dg_shown(b, "custody.appropriate_adult.name", withheld) ? ")" : "");
	}
	if (aa->arrived_at && yj_dg_shown(b, "custody.appropriate_adult.arrived_at", withheld)) {
		int64_t from = aa->called_at && yj_dg_shown(b, "custody.appropriate_adult.called_at", withheld)
				       ? aa->called_at->unix_us : 0;
		if (from && aa->arrived_at->unix_us >= from) {
			s_sb_str(&pp->aa, ", arrived ");
			s_duration(&pp->aa, aa->arrived_at->unix_us - from);
			s_sb_str(&pp->aa, " after being called");
		} else {
			char when[48];
			s_when_buf(pp->send_year, aa->arrived_at->unix_us, when, sizeof(when));
			s_sb_fmt(&pp->aa, ", arrived %s", when);
		}
	} else if (aa->called_at && yj_dg_shown(b, "custody.appropriate_adult.called_at", withheld)) {
		s_sb_str(&pp->aa, ", called, not yet arrived");
	}
}

static int64_t s_time_of(const Yjlink__V1__Time *t) { return t && t->has_unix_us ? t->unix_us : 0; }

/* The phrase of one event (time in pp->w, words in pp->p). */
static void s_event_phrase(struct s_people *pp, const struct yj_dg_row *r, const Yjlink__V1__Event *ev, int first_of_record)
{
	struct yj_dg_build *b = pp->b;
	int wh = r->withheld;
	int64_t at = yj_dg_shown(b, "occurred_at", 0) ? s_time_of(ev->occurred_at) : 0;
	s_sb_reset(&pp->p);
	s_sb_reset(&pp->w);
	switch (ev->body_case) {
	case YJLINK__V1__EVENT__BODY_CUSTODY: {
		const Yjlink__V1__Custody *cu = ev->custody;
		if (cu->status_at && yj_dg_shown(b, "custody.status_at", wh))
			at = cu->status_at->unix_us;
		const char *words = s_status_words(cu->status);
		if (cu->status && yj_dg_shown(b, "custody.status", wh)) {
			if (!first_of_record && !yj_dg_is_released(cu->status))
				s_sb_str(&pp->p, "still detained (update)");
			else if (words)
				s_sb_str(&pp->p, words);
			else
				s_words(&pp->p, cu->status);
		} else {
			s_sb_str(&pp->p, "custody message");
		}
		if (first_of_record && cu->suite && yj_dg_shown(b, "custody.suite", wh)) {
			s_sb_str(&pp->p, " at ");
			s_suite(b, &pp->p, cu->suite, &pp->notes);
		}
		if (first_of_record && cu->arrived_at && yj_dg_shown(b, "custody.arrived_at", wh) &&
		    cu->arrived_at->unix_us != at) {
			char when[48];
			struct tm ta, te;
			yj_dg_local(cu->arrived_at->unix_us, &ta);
			yj_dg_local(at, &te);
			if (at && ta.tm_yday == te.tm_yday && ta.tm_year == te.tm_year)
				strftime(when, sizeof(when), "%H:%M", &ta);
			else
				s_when_buf(pp->send_year, cu->arrived_at->unix_us, when, sizeof(when));
			s_sb_fmt(&pp->p, " (arrived %s)", when);
		}
		if (first_of_record && cu->record_id && yj_dg_shown(b, "custody.record_id", wh)) {
			s_sb_str(&pp->p, ", custody record ");
			s_sb_clean(&pp->p, cu->record_id, 80);
		}
		s_note_aa(pp, cu, wh);
		if (cu->reason && yj_dg_shown(b, "custody.reason", wh)) {
			s_sb_reset(&pp->grounds);
			s_sb_clean(&pp->grounds, cu->reason, 300);
		}
		break;
	}
	case YJLINK__V1__EVENT__BODY_ARREST: {
		const Yjlink__V1__Arrest *a = ev->arrest;
		if (a->arrested_at && yj_dg_shown(b, "arrest.arrested_at", wh))
			at = a->arrested_at->unix_us;
		int summons = a->has_summons && a->summons && yj_dg_shown(b, "arrest.summons", wh);
		s_sb_str(&pp->p, summons ? "summonsed" : "arrested");
		const struct yj_la *la = a->location_la && yj_dg_shown(b, "arrest.location_la", wh)
						 ? yj_ref_la(b->ref, a->location_la) : NULL;
		if (la) {
			s_sb_str(&pp->p, " in ");
			s_sb_clean(&pp->p, la->name, 120);
		}
		break;
	}
	case YJLINK__V1__EVENT__BODY_INTERVIEW: {
		const Yjlink__V1__Interview *iv = ev->interview;
		s_sb_str(&pp->p, "voluntary interview");
		if (iv->status && yj_dg_shown(b, "interview.status", wh)) {
			s_sb_str(&pp->p, " ");
			s_words(&pp->p, iv->status);
		}
		if (iv->at && yj_dg_shown(b, "interview.at", wh)) {
			char when[48];
			s_when_buf(pp->send_year, iv->at->unix_us, when, sizeof(when));
			s_sb_fmt(&pp->p, " for %s", when);
		}
		if (iv->location && yj_dg_shown(b, "interview.location", wh)) {
			s_sb_str(&pp->p, " at ");
			s_sb_clean(&pp->p, iv->location, 200);
		}
		break;
	}
	case YJLINK__V1__EVENT__BODY_OUTCOME: {
		const Yjlink__V1__Outcome *oc = ev->outcome;
		if (oc->decided_at && yj_dg_shown(b, "outcome.decided_at", wh))
			at = oc->decided_at->unix_us;
		s_sb_str(&pp->p, "outcome");
		if (oc->has_code && yj_dg_shown(b, "outcome.code", wh)) {
			const struct yj_outcome *o = yj_ref_outcome(b->ref, oc->code);
			s_sb_fmt(&pp->p, " %d: ", oc->code);
			if (o) {
				s_sb_clean(&pp->p, o->name, 200);
				int32_t day = at ? (int32_t)(at / 1000000 / 86400) : -1;
				if (day >= 0 && (day < o->valid_from || day > o->valid_to))
					pp->notes |= S_N_OUTCOME_DATE;
				/* Stored and shown as sent: the YJS needs to see it to
				 * have the force correct it. */
				if (!o->applies_to_children) {
					s_sb_str(&pp->p, " (a code that cannot apply to a child)");
					pp->notes |= S_N_NOT_CHILD;
				}
			} else {
				s_sb_str(&pp->p, "a code not in the reference table");
				pp->notes |= S_N_OUTCOME;
			}
		}
		if (oc->disposal && yj_dg_shown(b, "outcome.disposal", wh)) {
			s_sb_str(&pp->p, "; disposal: ");
			s_words(&pp->p, oc->disposal);
		}
		break;
	}
	default:
		s_sb_str(&pp->p, "message");
	}
	if (r->seq <= b->d->start_seq)
		s_sb_str(&pp->p, " (from an earlier digest)");
	if (wh)
		s_sb_str(&pp->p, " (details withheld)");
	if (at)
		s_when(pp, &pp->w, at, 1);
}

/* The heading and facts of a child (from their newest message), then the
 * entry's events, written to both renderings. */
static void s_child_head(struct s_people *pp, const struct yj_dg_child *c, const Yjlink__V1__Record *newest,
			 struct s_sb *ht, struct s_sb *hh)
{
	struct yj_dg_build *b = pp->b;
	const Yjlink__V1__Event *ev = newest->event;
	const Yjlink__V1__Child *ch = ev->child;
	struct s_sb name = { 0 }, facts = { 0 };
	int any_name = 0;
	if (ch && ch->given_name && yj_dg_shown(b, "child.given_name", 0)) {
		s_sb_clean(&name, ch->given_name, 120);
		any_name = 1;
	}
	if (ch && ch->family_name && yj_dg_shown(b, "child.family_name", 0)) {
		if (any_name)
			s_sb_str(&name, " ");
		s_sb_clean(&name, ch->family_name, 120);
		any_name = 1;
	}
	if (!any_name)
		s_sb_str(&name, "A child (name not shared)");

	/* Facts: age on the day (the feed's own date, as the normaliser
	 * judged it), born, home, looked after, references. */
	int apparent = 0, age = yj_event_child_age(ev, &apparent);
	if (ch && ch->date_of_birth && yj_dg_shown(b, "child.date_of_birth", 0)) {
		int y, m, d;
		if (s_ymd(ch->date_of_birth, &y, &m, &d) && age >= 0) {
			if (age < 10 || age > 17)
				pp->notes |= S_N_AGE;
			s_sb_fmt(&facts, "%d years old on the day (born %d %s %d)", age, d, s_months[m - 1], y);
		}
	} else if (ch && !ch->date_of_birth && apparent && yj_dg_shown(b, "child.apparent_age", 0)) {
		s_sb_fmt(&facts, "age about %d (date of birth not known)", age);
	}
	if (ch && yj_dg_shown(b, "child.home_la", 0)) {
		s_sb_str(&facts, facts.n ? "; home: " : "home: ");
		if (!ch->home_la) {
			s_sb_str(&facts, "no fixed abode");
		} else {
			const struct yj_la *la = yj_ref_la(b->ref, ch->home_la);
			if (la)
				s_sb_clean(&facts, la->name, 120);
			else {
				s_sb_str(&facts, "an authority not in the reference tables");
				pp->notes |= S_N_LA;
			}
		}
	}
	if (yj_dg_shown(b, "child.looked_after", 0)) {
		s_sb_str(&facts, facts.n ? "; looked after: " : "looked after: ");
		s_sb_str(&facts, !(c->flags & YJ_DG_F_LAC_KNOWN) ? "unknown" : (c->flags & YJ_DG_F_LAC) ? "yes" : "no");
	}
	if (ch && ch->responsible_la && (c->flags & YJ_DG_F_LAC) && yj_dg_shown(b, "child.responsible_la", 0)) {
		const struct yj_la *la = yj_ref_la(b->ref, ch->responsible_la);
		if (la) {
			s_sb_str(&facts, " (responsible authority: ");
			s_sb_clean(&facts, la->name, 120);
			s_sb_str(&facts, ")");
		}
	}
	if (ch && ch->social_worker && ch->social_worker->name && yj_dg_shown(b, "child.social_worker.name", 0)) {
		s_sb_str(&facts, "; social worker: ");
		s_sb_clean(&facts, ch->social_worker->name, 120);
	}
	if (ev->force && yj_dg_shown(b, "force", 0)) {
		const struct yj_force *f = yj_ref_force(b->ref, ev->force);
		if (f) {
			s_sb_str(&facts, "; force: ");
			s_sb_clean(&facts, f->name, 120);
		}
	}
	if (ch && ch->person_id && yj_dg_shown(b, "child.person_id", 0)) {
		s_sb_str(&facts, "; person ref ");
		s_sb_clean(&facts, ch->person_id, 80);
	}
	if (ch && ch->pnc_id && yj_dg_shown(b, "child.pnc_id", 0)) {
		s_sb_str(&facts, "; PNC ");
		s_sb_clean(&facts, ch->pnc_id, 40);
	}

	/* Flags: what makes this entry matter, then data-quality notes. */
	const char *flags[20];
	size_t nf = 0;
	unsigned f = c->flags;
	if (f & YJ_DG_F_STILL)
		flags[nf++] = "still in custody";
	if (f & YJ_DG_F_REMANDED)
		flags[nf++] = "remanded";
	if (f & YJ_DG_F_LAC)
		flags[nf++] = "looked after";
	if (f & YJ_DG_F_OVERNIGHT)
		flags[nf++] = "held overnight";
	if (f & YJ_DG_F_NEW)
		flags[nf++] = "first contact: new to the service";
	if (f & YJ_DG_F_COURT_ORDER)
		flags[nf++] = "on a court order";
	if (f & YJ_DG_F_MAPPA)
		flags[nf++] = "MAPPA";
	if (f & YJ_DG_F_SERIOUS)
		flags[nf++] = "serious offence";
	if (f & YJ_DG_F_WITHHELD)
		flags[nf++] = "details withheld (live investigation)";
	size_t nflags = nf;
	if (pp->notes & S_N_DOB)
		flags[nf++] = "data quality: the date of birth differs between messages";
	if (pp->notes & S_N_AGE)
		flags[nf++] = "data quality: the age on the day is outside 10 to 17";
	if (pp->notes & S_N_OUTCOME)
		flags[nf++] = "data quality: an outcome code not in the reference table";
	if (pp->notes & S_N_OUTCOME_DATE)
		flags[nf++] = "data quality: an outcome code not in force on its decision date";
	if (pp->notes & S_N_NOT_CHILD)
		flags[nf++] = "data quality: an outcome code that cannot apply to a child (adult caution, penalty "
			      "notice, cannabis/khat warning, or under the age of criminal responsibility): "
			      "ask the force to correct it";
	if (pp->notes & S_N_SUITE)
		flags[nf++] = "data quality: a custody suite not in the reference table";
	if (pp->notes & S_N_LA)
		flags[nf++] = "data quality: a home authority not in the reference tables";
	if (pp->notes & S_N_CUT)
		flags[nf++] = "more events than shown here: the CSV attachment has them all";

	/* Text */
	s_sb_str(ht, "\r\n* ");
	s_sb_add(ht, name.v ? name.v : "", name.n);
	if (nflags) {
		s_sb_str(ht, ": ");
		for (size_t i = 0; i < nflags; i++) {
			s_sb_str(ht, i ? ", " : "");
			s_sb_str(ht, flags[i]);
		}
	}
	s_sb_str(ht, "\r\n");
	if (facts.n) {
		s_sb_str(ht, "  ");
		s_sb_add(ht, facts.v, facts.n);
		s_sb_str(ht, "\r\n");
	}
	for (size_t i = nflags; i < nf; i++) {
		s_sb_str(ht, "  Note: ");
		s_sb_str(ht, flags[i]);
		s_sb_str(ht, "\r\n");
	}
	/* HTML */
	s_sb_fmt(hh, "<article class=\"child%s\" data-child=\"%zu\" aria-labelledby=\"c%zu\">\n<h3 id=\"c%zu\"><bdi>",
		 (f & YJ_DG_F_STILL) ? " urgent" : "", (size_t)(c - b->children), (size_t)(c - b->children),
		 (size_t)(c - b->children));
	s_sb_esc(hh, name.v ? name.v : "");
	s_sb_str(hh, "</bdi></h3>\n");
	if (nf) {
		s_sb_str(hh, "<ul class=\"flags\">");
		for (size_t i = 0; i < nf; i++) {
			s_sb_fmt(hh, "<li class=\"%s\">", i < nflags ? (i == 0 && (f & YJ_DG_F_STILL) ? "flag hot" : "flag")
								      : "dq");
			s_sb_esc(hh, flags[i]);
			s_sb_str(hh, "</li>");
		}
		s_sb_str(hh, "</ul>\n");
	}
	if (facts.n) {
		s_sb_str(hh, "<p class=\"facts\">");
		s_sb_esc(hh, facts.v);
		s_sb_str(hh, "</p>\n");
	}
	free(name.v);
	free(facts.v);
}

/* One child's entry: rows order[from, to) (all of child c), written out. */
static int s_child_entry(struct s_people *pp, size_t from, size_t to)
{
	struct yj_dg_build *b = pp->b;
	const struct yj_dg_child *c = &b->children[b->rows[pp->order[from]].child];
	struct s_sb ht = { 0 }, hh = { 0 }; /* owned: the head, written before the events */
	Yjlink__V1__Record *newest = yj_events_get_record(b->txn, c->newest_seq); /* owned */
	int rc = 0;
	if (!newest || !newest->event)
		goto out;
	const char *dob = newest->event->child ? newest->event->child->date_of_birth : NULL;
	s_sb_reset(&pp->t);
	s_sb_reset(&pp->h);
	s_sb_reset(&pp->offences);
	pp->notes = 0;
	pp->last_yday = pp->last_year = -1;
	s_sb_str(&pp->h, "<ul class=\"events\">\n");
	uint64_t prev_seq = 0;
	int32_t cur_record = -1;
	int cur_withheld = 0;
	size_t shown = 0;
	for (size_t i = from; i < to; i++) {
		const struct yj_dg_row *r = &b->rows[pp->order[i]];
		if (r->seq == prev_seq)
			continue; /* in two sections (custody and still, new_child): once here */
		prev_seq = r->seq;
		if (shown == S_MAX_EVENTS) {
			pp->notes |= S_N_CUT;
			break;
		}
		Yjlink__V1__Record *rec = yj_events_get_record(b->txn, r->seq); /* owned here */
		if (!rec || !rec->event) {
			yjlink__v1__record__free_unpacked(rec, NULL);
			continue;
		}
		const Yjlink__V1__Event *ev = rec->event;
		if (r->custody != cur_record) {
			if (cur_record >= 0)
				s_record_summary(pp, &b->custody[cur_record], cur_withheld);
			cur_record = r->custody;
			s_sb_reset(&pp->aa);
			s_sb_reset(&pp->grounds);
			cur_withheld = 0;
			pp->last_yday = -1;
		}
		cur_withheld |= r->withheld;
		const char *d2 = ev->child ? ev->child->date_of_birth : NULL;
		if (dob && d2 && strcmp(dob, d2) && yj_dg_shown(b, "child.date_of_birth", 0))
			pp->notes |= S_N_DOB;
		s_event_phrase(pp, r, ev, r->custody < 0 || r->seq == b->custody[r->custody].first_row_seq);
		s_emit_event(pp, r->seq, r->seq <= b->d->start_seq ? "earlier" : NULL);
		s_add_offences(pp, ev, r->withheld);
		if (r->custody < 0)
			cur_record = -1;
		shown++;
		yjlink__v1__record__free_unpacked(rec, NULL);
	}
	if (cur_record >= 0)
		s_record_summary(pp, &b->custody[cur_record], cur_withheld);
	s_sb_str(&pp->h, "</ul>\n");
	if (pp->offences.n) {
		s_sb_str(&pp->t, "  Offences: ");
		s_sb_add(&pp->t, pp->offences.v, pp->offences.n);
		s_sb_str(&pp->t, "\r\n");
		s_sb_str(&pp->h, "<p class=\"off\"><b>Offences:</b> ");
		s_sb_esc(&pp->h, pp->offences.v);
		s_sb_str(&pp->h, "</p>\n");
	}
	s_sb_str(&pp->h, "</article>\n");
	s_child_head(pp, c, newest, &ht, &hh);
	if (ht.err || hh.err || pp->t.err || pp->h.err || pp->offences.err || pp->p.err || pp->w.err || pp->aa.err) {
		rc = YJ_ENOMEM;
		goto out;
	}
	fwrite(ht.v, 1, ht.n, pp->ft);
	fwrite(pp->t.v, 1, pp->t.n, pp->ft);
	fwrite(hh.v, 1, hh.n, pp->fh);
	fwrite(pp->h.v, 1, pp->h.n, pp->fh);
out:
	yjlink__v1__record__free_unpacked(newest, NULL);
	free(ht.v);
	free(hh.v);
	return rc;
}

/* --- the whole --- */

static ssize_t s_discard(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	(void)buf;
	return (ssize_t)size;
}

static const char s_css[] =
	":root{color-scheme:light}"
	"body{font-family:system-ui,-apple-system,'Segoe UI',Arial,sans-serif;margin:0 auto;padding:12px;"
	"max-width:60em;color:#111;line-height:1.4}"
	".mark{background:#b00;color:#fff;font-weight:bold;padding:2px 8px;display:inline-block;margin:0}"
	"h1{font-size:1.35em;margin:.4em 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em;border-bottom:2px solid #333}"
	"h3{font-size:1.05em;margin:0 0 .2em}"
	".count{font-size:1.1em;font-weight:bold;margin:.4em 0}"
	".child{border:1px solid #999;border-left:6px solid #999;border-radius:4px;padding:8px 10px;margin:0 0 10px;"
	"break-inside:avoid}"
	".child.urgent{border-left-color:#b00}"
	".flags{list-style:none;margin:0 0 .3em;padding:0}"
	".flags li{display:inline-block;margin:0 4px 4px 0;padding:1px 6px;border-radius:3px;background:#eee;"
	"border:1px solid #bbb;font-size:.9em}"
	".flags li.hot{background:#b00;color:#fff;border-color:#b00;font-weight:bold}"
	".flags li.dq{background:#fff4d6;border-color:#d9a400}"
	".facts{margin:.2em 0;color:#222}"
	".events{margin:.3em 0;padding-left:1.3em}.events li{margin:.1em 0}"
	".events li.sum{list-style:none;margin-left:-1.3em;font-style:italic}"
	".events li.earlier{color:#444}"
	".t{font-weight:bold;white-space:nowrap}"
	".off{margin:.2em 0}"
	".none{font-style:italic}.warn{background:#fff4d6;border:1px solid #d9a400;padding:4px 8px}"
	"dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:.4em 0}dl.meta dt{font-weight:bold}"
	"dl.meta dd{margin:0}"
	"table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:2px 8px;text-align:left}"
	"nav ul{padding-left:1.2em}"
	"footer{font-size:.85em;color:#333;margin-top:2em}"
	"@media(max-width:600px){body{padding:8px}dl.meta{grid-template-columns:1fr}dl.meta dd{margin-bottom:4px}}"
	"@media print{body{max-width:none;padding:0;font-size:10pt}.mark{border:2px solid #000;color:#000;"
	"background:none}.flags li,.flags li.hot{background:none;color:#000;border-color:#000}a{color:#000;"
	"text-decoration:none}nav{display:none}}";

/* The count line: "7 children: 2 still in custody, 1 looked after, 3 new". */
static void s_count_line(const struct yj_dg_build *b, struct s_sb *s, const size_t *per_group)
{
	size_t still = 0, rem = 0, lac = 0, night = 0, fresh = 0;
	for (size_t i = 0; i < b->n_children; i++) {
		unsigned f = b->children[i].flags;
		still += !!(f & YJ_DG_F_STILL);
		rem += !!(f & YJ_DG_F_REMANDED);
		lac += !!(f & YJ_DG_F_LAC);
		night += !!(f & YJ_DG_F_OVERNIGHT);
		fresh += !!(f & YJ_DG_F_NEW);
	}
	s_sb_fmt(s, "%zu %s", b->n_children, b->n_children == 1 ? "child" : "children");
	const struct {
		size_t n;
		const char *what;
	} parts[] = { { still, "still in custody" }, { rem, "remanded" }, { lac, "looked after" },
		      { night, "held overnight" }, { fresh, "new" }, { per_group[2], "from other areas" } };
	int first = 1;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (!parts[i].n)
			continue;
		s_sb_fmt(s, "%s%zu %s", first ? ": " : ", ", parts[i].n, parts[i].what);
		first = 0;
	}
}

/* Feed health lines: when each feed last delivered; for the custody feed
 * in an empty window, whether it is quiet or there was nothing to send. */
static void s_feed_lines(struct s_people *pp, FILE *ft, FILE *fh)
{
	struct yj_dg_build *b = pp->b;
	char when[48];
	fputs("\r\nFeeds (every force this deployment takes):\r\n", ft);
	fputs("<h3 id=\"feeds\">Feeds</h3>\n<ul class=\"feeds\">\n", fh);
	for (int i = 0; i < 4; i++) {
		const struct yj_dg_feed *f = &b->feeds[i];
		struct s_sb line = { 0 };
		int quiet = !f->seq || f->stored_us <= b->d->start_us;
		if (f->seq) {
			s_when_buf(pp->send_year, f->stored_us, when, sizeof(when));
			s_sb_fmt(&line, "%s: last message %s", f->title, when);
		} else if (b->feeds_complete) {
			s_sb_fmt(&line, "%s: no message ever", f->title);
		} else {
			s_when_buf(pp->send_year, b->feeds_since_us, when, sizeof(when));
			s_sb_fmt(&line, "%s: no message since at least %s", f->title, when);
		}
		if (quiet)
			s_sb_str(&line, " (nothing in this window)");
		if (line.v) {
			line.v[0] = (char)(line.v[0] & ~0x20); /* a capital: the titles are ASCII */
			fprintf(ft, "- %s\r\n", line.v);
			fprintf(fh, "<li%s>", quiet ? " class=\"warn\"" : "");
			s_fesc(fh, line.v);
			fputs("</li>\n", fh);
		}
		free(line.v);
	}
	fputs("</ul>\n", fh);
}

/* What an empty window says: nothing happened, and whether the custody feed is up. */
static void s_empty(struct s_people *pp, FILE *ft, FILE *fh)
{
	struct yj_dg_build *b = pp->b;
	const struct yj_dg_feed *cf = &b->feeds[0];
	char when[48], line[200];
	if (cf->seq)
		s_when_buf(pp->send_year, cf->stored_us, when, sizeof(when));
	if (cf->seq && cf->stored_us > b->d->start_us) {
		snprintf(line, sizeof(line), "No children in custody in this window: the custody feed is up (last message %s).",
			 when);
	} else if (cf->seq) {
		snprintf(line, sizeof(line), "No custody messages since %s: check that the custody feed is running.", when);
	} else if (b->feeds_complete) {
		snprintf(line, sizeof(line), "No custody message has ever been received: check that the custody feed is running.");
	} else {
		s_when_buf(pp->send_year, b->feeds_since_us, when, sizeof(when));
		snprintf(line, sizeof(line), "No custody messages since at least %s: check that the custody feed is running.",
			 when);
	}
	fprintf(ft, "\r\nNothing happened in this window: no child in custody, no arrest, interview or outcome.\r\n%s\r\n",
		line);
	fputs("<p class=\"none\" id=\"nothing\">Nothing happened in this window: no child in custody, no arrest, "
	      "interview or outcome.</p>\n<p id=\"feed-state\">", fh);
	s_fesc(fh, line);
	fputs("</p>\n", fh);
}

int yj_dg_render_people(struct yj_dg_build *b, FILE *ft, FILE *fh)
{
	static const cookie_io_functions_t sink = { .write = s_discard };
	const Yjlink__V1__Digest *d = b->d;
	struct s_people pp = { .b = b };
	FILE *null = !ft || !fh ? fopencookie(NULL, "w", sink) : NULL; /* owned: the rendering not asked for */
	size_t per_group[3] = { 0 }, per_section[YJ_DG_NSECTIONS] = { 0 };
	struct s_sb count = { 0 };
	char whenl[64], from[48], to[48];
	int rc = 0;
	if ((!ft || !fh) && !null)
		return YJ_ENOMEM;
	if (!ft)
		ft = null;
	if (!fh)
		fh = null;
	pp.ft = ft;
	pp.fh = fh;
	struct tm stm;
	yj_dg_local(d->scheduled_us, &stm);
	pp.send_year = stm.tm_year + 1900;

	if (!(pp.order = malloc((b->n_rows + 1) * sizeof(*pp.order)))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < b->n_rows; i++) {
		pp.order[i] = (uint32_t)i;
		per_section[b->rows[i].section]++;
	}
	if (b->n_rows)
		qsort_r(pp.order, b->n_rows, sizeof(*pp.order), s_cmp_people, b);
	for (size_t i = 0; i < b->n_children; i++)
		per_group[b->children[i].group]++;
	s_count_line(b, &count, per_group);
	if (count.err) {
		rc = YJ_ENOMEM;
		goto out;
	}

	strftime(whenl, sizeof(whenl), "%A %e %B %Y, %H:%M", &stm);
	s_when_buf(pp.send_year, d->start_us, from, sizeof(from));
	s_when_buf(pp.send_year, d->scheduled_us, to, sizeof(to));
	char *sp = whenl; /* "%e" pads the day with a space */
	for (char *q = whenl; *q; q++) {
		if (!(q[0] == ' ' && q[1] == ' '))
			*sp++ = *q;
	}
	*sp = '\0';

	/* The heading and the summary: the count line, what follows, the window. */
	fprintf(ft, "OFFICIAL-SENSITIVE\r\n\r\n%s: yjlink daily digest\r\n%s%s\r\n\r\n%s\r\n", b->yjs->name, whenl,
		b->holiday ? " (bank holiday)" : "", count.v ? count.v : "");
	fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	      "<meta name=\"color-scheme\" content=\"light\"><title>", fh);
	s_fesc(fh, b->yjs->name);
	fprintf(fh, ": yjlink daily digest, %s</title><style>%s</style></head><body>\n<header>\n"
		    "<p class=\"mark\">OFFICIAL-SENSITIVE</p>\n<h1>", whenl, s_css);
	s_fesc(fh, b->yjs->name);
	fprintf(fh, ": yjlink daily digest</h1>\n<p>%s%s</p>\n</header>\n<main>\n"
		    "<section aria-labelledby=\"summary\">\n<h2 id=\"summary\">Summary</h2>\n<p class=\"count\">",
		whenl, b->holiday ? " (bank holiday)" : "");
	s_fesc(fh, count.v ? count.v : "");
	fputs("</p>\n", fh);
	if (b->n_rows == 0) {
		s_empty(&pp, ft, fh);
	} else {
		fputs("<nav aria-label=\"Parts of this digest\"><ul>\n", fh);
		for (int g = 0; g < 3; g++) {
			if (!per_group[g])
				continue;
			fprintf(ft, "- %s: %zu\r\n", s_group_titles[g], per_group[g]);
			fprintf(fh, "<li><a href=\"#%s\">%s</a>: %zu</li>\n", s_group_ids[g], s_group_titles[g], per_group[g]);
		}
		fputs("</ul></nav>\n", fh);
	}
	fprintf(ft, "\r\nWindow: %s to %s (when yjlinkd stored the events); %zu new events\r\nDigest id: %s\r\n", from, to,
		b->n_seqs, d->id ? d->id : "");
	fprintf(fh, "<dl class=\"meta\"><dt>Window</dt><dd>%s to %s (when yjlinkd stored the events)</dd>"
		    "<dt>New events</dt><dd>%zu</dd><dt>Digest id</dt><dd><code>", from, to, b->n_seqs);
	s_fesc(fh, d->id ? d->id : "");
	fputs("</code></dd></dl>\n", fh);
	s_feed_lines(&pp, ft, fh);
	fputs("</section>\n", fh);

	/* The children, group by group, one entry each. */
	size_t written = 0, skipped = 0, i = 0;
	int group = -1;
	while (i < b->n_rows) {
		uint32_t child = b->rows[pp.order[i]].child;
		size_t j = i;
		while (j < b->n_rows && b->rows[pp.order[j]].child == child)
			j++;
		int g = b->children[child].group;
		if (g != group) {
			if (group >= 0)
				fputs("</section>\n", fh);
			group = g;
			fprintf(ft, "\r\n== %s (%zu)\r\n", s_group_titles[g], per_group[g]);
			fprintf(fh, "<section aria-labelledby=\"%s\">\n<h2 id=\"%s\">%s (%zu)</h2>\n", s_group_ids[g],
				s_group_ids[g], s_group_titles[g], per_group[g]);
		}
		if (written < S_MAX_CHILDREN) {
			if ((rc = s_child_entry(&pp, i, j)))
				goto out;
			written++;
		} else {
			skipped++;
		}
		i = j;
	}
	if (group >= 0)
		fputs("</section>\n", fh);
	if (skipped) {
		fprintf(ft, "\r\n%zu more children are not listed here: the CSV attachment has every one.\r\n", skipped);
		fprintf(fh, "<p class=\"warn\" id=\"more\">%zu more children are not listed here: the CSV attachment has "
			    "every one.</p>\n", skipped);
	}

	/* What the CSV holds, section by section (§5), for the record. */
	fputs("\r\nIn the CSV attachment (one row per event and section):\r\n", ft);
	fputs("<section aria-labelledby=\"about\">\n<h2 id=\"about\">In the CSV attachment</h2>\n"
	      "<table><thead><tr><th scope=\"col\">Section</th><th scope=\"col\">Rows</th></tr></thead><tbody>\n", fh);
	static const char *const titles[YJ_DG_NSECTIONS] = {
		"Children in police custody", "Arrests and summonses", "Voluntary interviews", "Outcome updates",
		"Children from other areas held in your suites", "Still in custody now",
		"Children new to the service (known history)",
	};
	for (int s = 0; s < YJ_DG_NSECTIONS; s++) {
		fprintf(ft, "- %s: %zu\r\n", titles[s], per_section[s]);
		fprintf(fh, "<tr><th scope=\"row\">%s</th><td>%zu</td></tr>\n", titles[s], per_section[s]);
	}
	fputs("</tbody></table>\n</section>\n</main>\n", fh);
	fputs("<footer><p>Sent by yjlink under the data sharing agreement of this service. Do not forward.</p>\n", fh);
	fputs("\r\nSent by yjlink under the data sharing agreement of this service. Do not forward.\r\n", ft);
	/* The anchor (docs/security.md): the audit chain's head as this
	 * rendering was built. In the text part a continuation of the footer,
	 * indented: no line of the digest's own starts otherwise. */
	if (*b->audit_hash) {
		fprintf(ft, "  Audit chain head: %" PRIu64 ":%s \xe2\x80\x94 keep this digest: `yjlinkctl audit verify "
			    "--anchor %" PRIu64 ":%s` proves the log was not rewritten since\r\n",
			b->audit_number, b->audit_hash, b->audit_number, b->audit_hash);
		fprintf(fh, "<p id=\"audit-anchor\">Audit chain head: <code>%" PRIu64 ":%s</code> \xe2\x80\x94 keep this "
			    "digest: <code>yjlinkctl audit verify --anchor %" PRIu64 ":%s</code> proves the log was not "
			    "rewritten since</p>\n",
			b->audit_number, b->audit_hash, b->audit_number, b->audit_hash);
	} else {
		fputs("  Audit chain head: unavailable (the audit log's head could not be read: run yjlinkctl audit "
		      "verify)\r\n", ft);
		fputs("<p id=\"audit-anchor\">Audit chain head: unavailable (the audit log's head could not be read: "
		      "run <code>yjlinkctl audit verify</code>)</p>\n", fh);
	}
	fputs("</footer>\n</body></html>\n", fh);
out:
	free(pp.order);
	free(pp.t.v);
	free(pp.h.v);
	free(pp.p.v);
	free(pp.w.v);
	free(pp.offences.v);
	free(pp.aa.v);
	free(pp.grounds.v);
	free(count.v);
	if (null)
		fclose(null);
	return rc;
}
