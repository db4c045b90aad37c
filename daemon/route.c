/* route.c: see route.h. */
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/digests.h"
#include "db/events.h"
#include "db/holds.h"
#include "db/notes.h"
#include "err.h"
#include "log.h"
#include "strjoin.h"
#include "u64vec.h"
#include "tz.h"

static int s_in_list(const struct yj_strlist *l, const char *v)
{
	for (size_t i = 0; i < l->n; i++) {
		if (v && !strcmp(l->v[i], v))
			return 1;
	}
	return 0;
}

const struct yj_recipient *yj_route_yjs_for_la(const struct yj_config *cfg, const char *la)
{
	return yj_config_yjs_for_la(cfg, la);
}

static const struct yj_recipient *s_ld_for_suite(const struct yj_config *cfg, const char *suite)
{
	for (size_t i = 0; suite && i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		if (r->kind == YJ_RCPT_LIAISON_DIVERSION && s_in_list(&r->suites, suite))
			return r;
	}
	return NULL;
}

void yj_route_facts(const struct yj_config *cfg, const struct yj_refdata *ref, const Yjlink__V1__Event *ev,
		    int first_contact, struct yj_route_facts *f)
{
	const Yjlink__V1__Child *c = ev->child;
	memset(f, 0, sizeof(*f));
	f->feed = yj_event_feed(ev);
	f->first_contact = first_contact;
	f->looked_after = c && c->has_looked_after && c->looked_after;
	const char *home = c ? c->home_la : NULL;
	f->home_served = yj_route_yjs_for_la(cfg, home) != NULL;
	const struct yj_la *la = home ? yj_ref_la(ref, home) : NULL;
	f->home_other_force = la && strcmp(la->force, cfg->deployment_force) != 0;
	f->age = yj_event_child_age(ev, NULL);
	if (ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY && ev->custody)
		f->custody_status = ev->custody->status;
	if (ev->body_case == YJLINK__V1__EVENT__BODY_OUTCOME && ev->outcome && ev->outcome->has_code) {
		f->has_outcome_code = 1;
		f->outcome_code = ev->outcome->code;
	}
	const Yjlink__V1__Markers *mk = ev->markers;
	if (mk) {
		f->markers |= mk->has_live_investigation && mk->live_investigation ? YJ_MARK_LIVE_INVESTIGATION : 0;
		f->markers |= mk->has_serious_offence && mk->serious_offence ? YJ_MARK_SERIOUS_OFFENCE : 0;
		f->markers |= mk->has_mappa && mk->mappa ? YJ_MARK_MAPPA : 0;
		f->markers |= mk->has_court_order && mk->court_order ? YJ_MARK_COURT_ORDER : 0;
	}
}

static int s_tri(int want, int have) { return want < 0 || (want ? 1 : 0) == (have ? 1 : 0); }

static unsigned s_marker_bit(const char *name)
{
	if (!strcmp(name, "live_investigation"))
		return YJ_MARK_LIVE_INVESTIGATION;
	if (!strcmp(name, "serious_offence"))
		return YJ_MARK_SERIOUS_OFFENCE;
	if (!strcmp(name, "mappa"))
		return YJ_MARK_MAPPA;
	if (!strcmp(name, "court_order"))
		return YJ_MARK_COURT_ORDER;
	return 0x100; /* never set: an unknown marker never matches */
}

int yj_rule_matches(const struct yj_rule *r, const struct yj_route_facts *f)
{
	if (r->feeds && !(r->feeds & (1u << f->feed)))
		return 0;
	if (r->custody_status.n && !s_in_list(&r->custody_status, f->custody_status))
		return 0;
	if (!s_tri(r->looked_after, f->looked_after) || !s_tri(r->home_served, f->home_served) ||
	    !s_tri(r->home_other_force, f->home_other_force) || !s_tri(r->first_contact, f->first_contact))
		return 0;
	if ((r->age_min > 0 || r->age_max < 99) && (f->age < r->age_min || f->age > r->age_max))
		return 0;
	if (r->n_outcome_codes) {
		size_t i;
		for (i = 0; i < r->n_outcome_codes && (!f->has_outcome_code || r->outcome_codes[i] != f->outcome_code); i++)
			;
		if (i == r->n_outcome_codes)
			return 0;
	}
	for (size_t i = 0; i < r->markers.n; i++) {
		if (!(f->markers & s_marker_bit(r->markers.v[i])))
			return 0;
	}
	return 1;
}

int yj_route_resolve(const struct yj_config *cfg, const struct yj_refdata *ref, const char *expr,
		     const Yjlink__V1__Event *ev, char *out, size_t size)
{
	const Yjlink__V1__Child *c = ev->child;
	const char *suite = ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY && ev->custody ? ev->custody->suite : NULL;
	const char *home = c ? c->home_la : NULL;

	if (!strcmp(expr, "yjs:home")) {
		const struct yj_recipient *y = yj_route_yjs_for_la(cfg, home);
		if (!y)
			return 0;
		yj_strjoin2(out, size, y->id, NULL);
		return 1;
	}
	if (!strcmp(expr, "yjs:suite")) {
		const struct yj_suite *s = suite ? yj_ref_suite(ref, suite) : NULL;
		if (!s)
			return 0;
		const struct yj_recipient *y = yj_route_yjs_for_la(cfg, s->la);
		if (y)
			yj_strjoin2(out, size, y->id, NULL);
		else
			yj_strjoin2(out, size, "yjs:", s->la);  /* unroutable: nobody here covers that suite */
		return 1;
	}
	if (!strcmp(expr, "children_services:responsible_la")) {
		if (!c || !c->responsible_la)
			return 0;
		yj_strjoin2(out, size, "children_services:", c->responsible_la);
		return 1;
	}
	if (!strcmp(expr, "children_services:home")) {
		/* PACE s.38(6): the authority whose care a looked-after child is in. */
		const char *la = c && c->has_looked_after && c->looked_after && c->responsible_la ? c->responsible_la : home;
		if (!la)
			return 0;
		yj_strjoin2(out, size, "children_services:", la);
		return 1;
	}
	if (!strcmp(expr, "liaison_diversion:suite")) {
		if (!suite)
			return 0;
		const struct yj_recipient *ld = s_ld_for_suite(cfg, suite);
		if (ld)
			yj_strjoin2(out, size, ld->id, NULL);
		else
			yj_strjoin2(out, size, "liaison_diversion:", suite);
		return 1;
	}
	if (!strcmp(expr, "force:home")) {
		const struct yj_la *la = home ? yj_ref_la(ref, home) : NULL;
		if (!la)
			return 0;
		yj_strjoin2(out, size, "force:", la->force);
		return 1;
	}
	return 0;
}

static int s_hours_open(const struct yj_hours *h, int64_t now_us, int64_t *next_open_us);

int yj_hours_open(const struct yj_hours *h, int64_t now_us, int64_t *next_open_us)
{
	/* A group commit routes thousands of events at one instant (the batch's
	 * clock) to the same few recipients: the answer for the last hours and
	 * instant is kept (a copy of the hours, not a pointer: a reload may put
	 * other hours at the same address). */
	static _Thread_local struct { struct yj_hours h; int64_t now_us, next; int open, valid; } last;
	if (last.valid && last.now_us == now_us && !memcmp(&last.h, h, sizeof(*h))) {
		*next_open_us = last.next;
		return last.open;
	}
	last.open = s_hours_open(h, now_us, &last.next);
	last.h = *h;
	last.now_us = now_us;
	last.valid = 1;
	*next_open_us = last.next;
	return last.open;
}

static int s_hours_open(const struct yj_hours *h, int64_t now_us, int64_t *next_open_us)
{
	int64_t now = now_us / 1000000;
	struct tm tm;
	yj_tz_local(now, &tm);
	*next_open_us = INT64_MAX;
	for (int k = 0; k < 8; k++) {
		struct tm day = tm;
		day.tm_mday += k;
		day.tm_hour = 12;  /* normalise the date away from any clock change */
		day.tm_min = day.tm_sec = 0;
		yj_tz_mktime(&day);
		int wd = (day.tm_wday + 6) % 7;
		if (h->open[wd] == h->close[wd])
			continue;
		struct tm o = day, cl = day;
		o.tm_hour = h->open[wd] / 60;
		o.tm_min = h->open[wd] % 60;
		cl.tm_hour = h->close[wd] / 60;
		cl.tm_min = h->close[wd] % 60;
		int64_t to = yj_tz_mktime(&o), tc = yj_tz_mktime(&cl);
		if (k == 0 && now >= to && now < tc)
			return 1;
		if (to > now) {
			*next_open_us = to * 1000000;
			return 0;
		}
	}
	return 0;
}

int yj_route_withheld(const char *path)
{
	return !strncmp(path, "offences", 8) || !strncmp(path, "markers", 7) || !strcmp(path, "custody.reason");
}

int yj_route_allowed(const struct yj_recipient *r, const char *path)
{
	size_t plen = strlen(path);
	for (size_t i = 0; i < r->allow.n; i++) {
		const char *a = r->allow.v[i];
		size_t alen = strlen(a);
		if (!strcmp(a, path) || !strcmp(a, "*"))
			return 1;
		/* "child.*" allows child and everything below it. */
		if (alen >= 2 && a[alen - 1] == '*' && a[alen - 2] == '.' &&
		    (!strncmp(a, path, alen - 1) || (plen == alen - 2 && !strncmp(a, path, plen))))
			return 1;
		/* An object is allowed when something inside it is. */
		if (alen > plen && !strncmp(a, path, plen) && a[plen] == '.')
			return 1;
	}
	return 0;
}

int yj_route_is_held(struct yj_txn *txn, uint64_t seq) { return yj_holds_is_held(txn, seq); }

void yj_route_when(const struct yj_recipient *r, int64_t now_us, int64_t *not_before_us, int *out_of_hours)
{
	int64_t next = 0;
	*not_before_us = 0;
	*out_of_hours = 0;
	if (r && r->has_hours && !yj_hours_open(&r->hours, now_us, &next)) {
		*not_before_us = next;
		*out_of_hours = 1;
	}
}

int yj_route_stale(const struct yj_rule *r, const Yjlink__V1__Event *ev, int64_t now_us)
{
	if (r->mode != YJ_MODE_IMMEDIATE || r->max_age_s <= 0 || !ev->occurred_at)
		return 0;
	return now_us - ev->occurred_at->unix_us > r->max_age_s * INT64_C(1000000);
}

unsigned yj_route_hold_markers(const struct yj_config *cfg, const Yjlink__V1__Event *ev)
{
	struct yj_route_facts f;
	unsigned held = 0;
	const Yjlink__V1__Markers *mk = ev->markers;
	if (!mk)
		return 0;
	memset(&f, 0, sizeof(f));
	f.markers |= mk->has_live_investigation && mk->live_investigation ? YJ_MARK_LIVE_INVESTIGATION : 0;
	f.markers |= mk->has_serious_offence && mk->serious_offence ? YJ_MARK_SERIOUS_OFFENCE : 0;
	f.markers |= mk->has_mappa && mk->mappa ? YJ_MARK_MAPPA : 0;
	f.markers |= mk->has_court_order && mk->court_order ? YJ_MARK_COURT_ORDER : 0;
	for (size_t i = 0; i < cfg->holds_markers.n; i++)
		held |= f.markers & s_marker_bit(cfg->holds_markers.v[i]);
	return held;
}

/* Write notification n (number taken here) into the outbox, or into the
 * unroutable queue when r has no destination. */
static int s_put_note(struct yj_txn *txn, const struct yj_recipient *r, Yjlink__V1__Notification *n, int *unroutable)
{
	int rc = yj_notes_next_number(txn, &n->number);
	if (rc)
		return rc;
	n->has_number = 1;
	*unroutable = !r || r->output < 0;
	return yj_notes_put_new(txn, *unroutable ? YJ_NOTES_UNROUTABLE : YJ_NOTES_OUTBOX, n);
}

int yj_route_escalate(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *about,
		      const char *reason, const char *detail, int64_t now_us)
{
	const struct yj_recipient *duty = yj_config_duty(cfg);
	char id[64];
	/* The form of yj_notification_id() (outbox.h), which route.c, before the outbox, does not call. */
	snprintf(id, sizeof(id), "%s-%012llu", cfg->deployment_id, (unsigned long long)about->number);
	const char *who = about->recipient ? about->recipient : "";
	const char *rule = about->rule ? about->rule : (about->digest ? "daily_digest" : "");
	if (!duty) {
		yj_warn("route: %s for %s (rule %s) is %s, and no deployment.duty recipient is named to be told", id, who,
			rule, reason);
		return 0;
	}
	if (!strcmp(who, duty->id)) {
		/* The duty recipient's own notices never escalate to itself. */
		yj_warn("route: %s for the duty recipient %s is %s: look at `yjlinkctl outbox` and `yjlinkctl dlq list`", id,
			who, reason);
		return 0;
	}
	Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
	n.recipient = duty->id;
	n.rule = (char *)rule;
	n.kind = "escalation";
	n.has_seq = about->has_seq && about->seq;
	n.seq = about->seq;
	n.has_created_at_us = 1;
	n.created_at_us = now_us;
	n.legal_basis = duty->legal_basis;
	n.reason = (char *)reason;
	n.has_about_number = 1;
	n.about_number = about->number;
	n.about_recipient = (char *)who;
	n.about_rule = (char *)rule;
	n.detail = (char *)(detail ? detail : "");
	n.has_about_at_us = 1;
	n.about_at_us = about->created_at_us;
	int unroutable = 0;
	int rc = s_put_note(txn, duty, &n, &unroutable);
	if (!rc)
		yj_warn("route: %s for %s (rule %s) is %s: the duty recipient %s is told%s", id, who, rule, reason, duty->id,
			unroutable ? ", but it has no destination either" : "");
	return rc;
}

int yj_route_duty_notice(struct yj_txn *txn, const struct yj_config *cfg, const char *reason, uint64_t seq,
			 const char *feed, int64_t at_us, const char *detail, int64_t now_us, int *queued)
{
	const struct yj_recipient *duty = yj_config_duty(cfg);
	*queued = 0;
	if (!duty)
		return 0;
	Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
	n.recipient = duty->id;
	n.rule = (char *)reason;
	n.kind = (char *)reason;
	n.has_seq = seq != 0;
	n.seq = seq;
	n.has_created_at_us = 1;
	n.created_at_us = now_us;
	n.legal_basis = duty->legal_basis;
	n.reason = (char *)reason;
	n.about_feed = (char *)(feed ? feed : "");
	n.has_about_at_us = at_us != 0;
	n.about_at_us = at_us;
	n.detail = (char *)(detail ? detail : "");
	int unroutable = 0;
	int rc = s_put_note(txn, duty, &n, &unroutable);
	*queued = !rc;
	return rc;
}

/* The record's current message: the latest status_at (a late message
 * about an earlier moment does not make a closed record open again), the
 * later stored on a tie. */
struct s_current {
	struct yj_txn *txn;
	uint64_t own_seq;             /* the seq of own, 0 when not stored */
	const Yjlink__V1__Event *own; /* the event asked about: its message is not read back */
	int64_t status_at_us;
	uint64_t seq;
	char status[64];
	int64_t arrived_us;
};

static int s_current_cb(void *arg, uint64_t seq)
{
	struct s_current *c = arg;
	/* Most records have one or two messages, one of them the event being
	 * routed: unpacking it again from the store was an eighth of ingest. */
	Yjlink__V1__Record *rec = seq == c->own_seq ? NULL : yj_events_get_record(c->txn, seq);
	const Yjlink__V1__Custody *cu = seq == c->own_seq ? c->own->custody : rec && rec->event ? rec->event->custody : NULL;
	int64_t at = cu && cu->status_at ? cu->status_at->unix_us : INT64_MIN;
	if (cu && (!c->seq || at >= c->status_at_us)) {
		c->seq = seq;
		c->status_at_us = at;
		yj_strjoin2(c->status, sizeof(c->status), cu->status, NULL);
		c->arrived_us = cu->arrived_at ? cu->arrived_at->unix_us : 0;
	}
	yjlink__v1__record__free_unpacked(rec, NULL);
	return 0;
}

static int s_custody_key(const Yjlink__V1__Event *ev, char *buf, size_t size)
{
	if (ev->body_case != YJLINK__V1__EVENT__BODY_CUSTODY || !ev->custody || !ev->custody->record_id || !ev->force)
		return YJ_ENOENT;
	return yj_strjoin_sep(buf, size, ev->force, '/', ev->custody->record_id) >= size ? YJ_ERANGE : 0;
}

int yj_route_custody_now(struct yj_txn *txn, uint64_t seq, const Yjlink__V1__Event *ev, char *status, size_t size,
			 int64_t *detained_since_us)
{
	char key[600];
	struct s_current cur = { txn, seq, ev, INT64_MIN, 0, "", 0 };
	int rc = s_custody_key(ev, key, sizeof(key));
	if (rc)
		return rc;
	if ((rc = yj_events_of_custody(txn, key, s_current_cb, &cur)) < 0)
		return rc;
	if (!cur.seq)
		return YJ_ENOENT;
	yj_strjoin2(status, size, cur.status, NULL);
	*detained_since_us = cur.arrived_us;
	return 0;
}

int yj_route_notify(struct yj_txn *txn, const struct yj_config *cfg, const char *recipient, const char *rule,
		    const char *kind, uint64_t seq, const char *legal_basis, int64_t now_us, int *unroutable)
{
	const struct yj_recipient *r = yj_config_recipient(cfg, recipient);
	Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
	int64_t not_before = 0;
	int ooh = 0;
	uint64_t number = 0;
	int rc = yj_notes_next_number(txn, &number);
	if (rc)
		return rc;
	yj_route_when(r, now_us, &not_before, &ooh);
	n.has_number = 1;
	n.number = number;
	n.recipient = (char *)recipient;
	n.rule = (char *)rule;
	n.kind = (char *)kind;
	n.has_seq = 1;
	n.seq = seq;
	n.has_created_at_us = 1;
	n.created_at_us = now_us;
	n.has_not_before_us = not_before > 0;
	n.not_before_us = not_before;
	n.has_out_of_hours = ooh;
	n.out_of_hours = ooh ? 1 : 0;
	n.legal_basis = (char *)(legal_basis && *legal_basis ? legal_basis : r ? r->legal_basis : "");
	*unroutable = !r || r->output < 0;
	if (*unroutable) {
		/* routing.md "Nobody unreached without a human knowing": told now,
		 * and marked so that the outbox's scan does not tell again. */
		n.has_escalated_at_us = 1;
		n.escalated_at_us = now_us;
	}
	if ((rc = yj_notes_put_new(txn, *unroutable ? YJ_NOTES_UNROUTABLE : YJ_NOTES_OUTBOX, &n)))
		return rc;
	return *unroutable ? yj_route_escalate(txn, cfg, &n, "unroutable", "no destination is configured", now_us) : 0;
}

static const char *const s_marker_names[] = { "live_investigation", "serious_offence", "mappa", "court_order" };

/* Hold event seq for the officer in the case, and tell them (through the
 * officers table, else the duty recipient) that it waits, with the rules
 * waiting for its details. */
static int s_hold(struct yj_txn *txn, const struct yj_config *cfg, uint64_t seq, const Yjlink__V1__Event *ev,
		  unsigned markers, const char *waiting, int64_t now_us)
{
	Yjlink__V1__Hold h = YJLINK__V1__HOLD__INIT;
	char *names[4];
	size_t nm = 0;
	for (unsigned b = 0; b < 4; b++) {
		if (markers & (1u << b))
			names[nm++] = (char *)s_marker_names[b];
	}
	const char *officer = ev->markers && ev->markers->officer_in_case ? ev->markers->officer_in_case : "";
	const char *to = yj_config_officer(cfg, officer);
	const struct yj_recipient *duty = yj_config_duty(cfg);
	if (!to && duty)
		to = duty->id;
	h.has_seq = h.has_held_at_us = 1;
	h.seq = seq;
	h.held_at_us = now_us;
	h.n_markers = nm;
	h.markers = names;
	h.officer = (char *)officer;
	h.told = (char *)(to ? to : "");
	int rc = yj_holds_store(txn, &h);
	if (rc || !to)
		return rc;
	const struct yj_recipient *r = yj_config_recipient(cfg, to);
	Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
	n.recipient = (char *)to;
	n.rule = "hold_waiting";
	n.kind = "hold_waiting";
	n.has_seq = 1;
	n.seq = seq;
	n.has_created_at_us = 1;
	n.created_at_us = now_us;
	n.legal_basis = r ? r->legal_basis : "";
	n.reason = "hold_waiting";
	n.detail = (char *)waiting;
	int unroutable = 0;
	return s_put_note(txn, r, &n, &unroutable);
}

struct s_ld_told {
	const struct yj_config *cfg;
	uint64_t current;
	struct s_current before;    /* the record's current message among those stored before this one */
	char ld[300];               /* the L&D service told about the record, "" none */
};

static int s_ld_rcpt_cb(void *arg, const char *recipient)
{
	struct s_ld_told *t = arg;
	const struct yj_recipient *r = yj_config_recipient(t->cfg, recipient);
	if (r && r->kind == YJ_RCPT_LIAISON_DIVERSION) {
		snprintf(t->ld, sizeof(t->ld), "%s", recipient);
		return 1;
	}
	return 0;
}

static int s_ld_seq_cb(void *arg, uint64_t seq)
{
	struct s_ld_told *t = arg;
	if (seq >= t->current)
		return 1;
	int rc = s_current_cb(&t->before, seq);
	if (!rc && !*t->ld)
		rc = yj_disclosed_each(t->before.txn, seq, s_ld_rcpt_cb, t);
	return rc < 0 ? rc : 0;
}

/* routing.md "L&D gets current, not historic, referrals": a record L&D was
 * told about that now closes gets one update, within its hours. Only the
 * message that closes it sends one: the record was open until now (its
 * current message before this one was detained) and this one is the newest
 * moment of it (not a late message about an earlier one). */
static int s_ld_update(struct yj_txn *txn, const struct yj_config *cfg, uint64_t seq, const Yjlink__V1__Event *ev,
		       int64_t now_us, struct yj_route_counts *counts)
{
	char key[600];
	if (s_custody_key(ev, key, sizeof(key)) || !ev->custody->status || !strcmp(ev->custody->status, "detained"))
		return 0;
	/* Field by field: an initialiser zero-fills both strings on every event
	 * (a tenth of this function's time, docs/performance.md change 27). */
	struct s_ld_told t;
	t.cfg = cfg;
	t.current = seq;
	t.before.txn = txn;
	t.before.own_seq = 0;
	t.before.own = NULL;
	t.before.status_at_us = INT64_MIN;
	t.before.seq = 0;
	t.before.status[0] = '\0';
	t.before.arrived_us = 0;
	t.ld[0] = '\0';
	int rc = yj_events_of_custody(txn, key, s_ld_seq_cb, &t);
	if (rc < 0)
		return rc;
	int64_t at = ev->custody->status_at ? ev->custody->status_at->unix_us : INT64_MIN;
	if (!*t.ld || !t.before.seq || strcmp(t.before.status, "detained") || at < t.before.status_at_us)
		return 0;
	const char *basis = "";
	for (size_t i = 0; i < cfg->n_rules; i++) {
		if (!strcmp(cfg->rules[i].recipient, "liaison_diversion:suite") && *cfg->rules[i].legal_basis)
			basis = cfg->rules[i].legal_basis;
	}
	int unroutable = 0;
	if ((rc = yj_route_notify(txn, cfg, t.ld, "liaison_diversion", "liaison_diversion_update", seq, basis, now_us,
				  &unroutable)))
		return rc;
	counts->ld_updates++;
	return 0;
}

/* A referral about a record that is closed already (a late "detained"
 * message arriving after its release) would be historic at once. A record
 * whose only message is ev is what ev says: nothing is read back. */
static int s_ld_closed(struct yj_txn *txn, const struct yj_rule *r, uint64_t seq, const Yjlink__V1__Event *ev,
		       unsigned known)
{
	char status[64];
	int64_t since = 0;
	if (strcmp(r->recipient, "liaison_diversion:suite"))
		return 0;
	if ((known & YJ_ROUTE_RECORD_ALONE) && ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY && ev->custody)
		return strcmp(ev->custody->status ? ev->custody->status : "", "detained") != 0;
	if (yj_route_custody_now(txn, seq, ev, status, sizeof(status), &since))
		return 0;
	return strcmp(status, "detained") != 0;
}

int yj_route_plan(const struct yj_config *cfg, const struct yj_refdata *ref, const Yjlink__V1__Event *ev,
		  struct yj_arena *a, struct yj_route_plan *plan)
{
	char rcpt[300];
	struct yj_route_facts first;
	memset(plan, 0, sizeof(*plan));
	plan->cfg = cfg;
	plan->ref = ref;
	plan->held = yj_route_hold_markers(cfg, ev);
	yj_route_facts(cfg, ref, ev, 0, &plan->facts);
	first = plan->facts;
	first.first_contact = 1;
	plan->rcpt = yj_arena_alloc(a, cfg->n_rules * sizeof(*plan->rcpt));
	plan->match = yj_arena_alloc(a, cfg->n_rules);
	if (!plan->rcpt || !plan->match)
		return YJ_ENOMEM;
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct yj_rule *r = &cfg->rules[i];
		unsigned m = yj_rule_matches(r, &plan->facts) ? YJ_PLAN_MATCH : 0u;
		/* Only a rule that asks about first contact can answer differently. */
		if (r->first_contact < 0 ? m != 0 : yj_rule_matches(r, &first))
			m |= YJ_PLAN_MATCH_FIRST;
		plan->rcpt[i] = NULL;
		if (m && yj_route_resolve(cfg, ref, r->recipient, ev, rcpt, sizeof(rcpt)) &&
		    !(plan->rcpt[i] = yj_arena_strndup(a, rcpt, strlen(rcpt))))
			return YJ_ENOMEM;
		plan->match[i] = plan->rcpt[i] ? (unsigned char)m : 0;
	}
	plan->n_rules = cfg->n_rules;
	return 0;
}

/* Digest rules matching one event, written as one entry per YJS. */
#define S_DIGEST_HITS 8

/* The n digest hits (rcpt[i], rule[i]) of event seq: one entry per YJS
 * holding all its rules. */
static int s_digest_entries(struct yj_txn *txn, uint64_t seq, const char *const *rcpt, const char *const *rule,
			    size_t n)
{
	unsigned done = 0;
	for (size_t i = 0; i < n; i++) {
		const char *rules[S_DIGEST_HITS];
		size_t k = 0;
		if (done >> i & 1)
			continue;
		for (size_t j = i; j < n; j++) {
			if (!(done >> j & 1) && !strcmp(rcpt[j], rcpt[i])) {
				rules[k++] = rule[j];
				done |= 1u << j;
			}
		}
		int rc = yj_digests_add_rules(txn, rcpt[i], seq, rules, k);
		if (rc)
			return rc;
	}
	return 0;
}

/* Whom rule i names for ev (into rcpt, or the plan's), or NULL when it does
 * not apply: from the plan when there is one, else as the plan would. */
static const char *s_rule_target(const struct yj_config *cfg, const struct yj_refdata *ref,
				 const Yjlink__V1__Event *ev, const struct yj_route_plan *plan,
				 const struct yj_route_facts *f, size_t i, char *rcpt, size_t size)
{
	const struct yj_rule *r = &cfg->rules[i];
	if (plan)
		return plan->match[i] & (f->first_contact ? YJ_PLAN_MATCH_FIRST : YJ_PLAN_MATCH) ? plan->rcpt[i] : NULL;
	if (!yj_rule_matches(r, f) || !yj_route_resolve(cfg, ref, r->recipient, ev, rcpt, size))
		return NULL;
	return rcpt;
}

int yj_route_event(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref, uint64_t seq,
		   const Yjlink__V1__Event *ev, const struct yj_route_plan *plan, unsigned known, int64_t now_us,
		   struct yj_route_counts *counts)
{
	struct yj_route_facts f;
	char own[300];
	int rc = 0;
	/* The digest rules that matched, by YJS: one entry each (db/digests.h). */
	const char *dg_rcpt[S_DIGEST_HITS], *dg_rule[S_DIGEST_HITS];
	char dg_own[S_DIGEST_HITS][sizeof(own)];
	size_t n_dg = 0;

	char waiting[512];
	waiting[0] = '\0';
	size_t wlen = 0;
	if (plan && (plan->cfg != cfg || plan->ref != ref || plan->n_rules != cfg->n_rules))
		plan = NULL;
	unsigned held = plan ? plan->held : yj_route_hold_markers(cfg, ev);

	if (plan)
		f = plan->facts;
	else
		yj_route_facts(cfg, ref, ev, 0, &f);
	f.first_contact = (known & YJ_ROUTE_FIRST_CONTACT) != 0;
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct yj_rule *r = &cfg->rules[i];
		const char *rcpt = s_rule_target(cfg, ref, ev, plan, &f, i, own, sizeof(own));
		if (!rcpt)
			continue;
		if (r->mode == YJ_MODE_DIGEST) {
			/* Kept to be written one entry per YJS below; beyond the
			 * room, an entry of its own (read back the same). */
			if (n_dg < S_DIGEST_HITS) {
				dg_rule[n_dg] = r->id;
				dg_rcpt[n_dg] = rcpt == own ? strcpy(dg_own[n_dg], own) : rcpt;
				n_dg++;
			} else if ((rc = yj_digests_add(txn, rcpt, seq, r->id))) {
				return rc;
			}
			counts->digest++;
			continue;
		}
		if (yj_route_stale(r, ev, now_us)) {
			counts->stale++;
			if (i < YJ_ROUTE_RULES_COUNTED)
				counts->stale_by_rule[i]++;
			continue;
		}
		if (s_ld_closed(txn, r, seq, ev, known)) {
			counts->ld_superseded++;
			continue;
		}
		int unroutable = 0;
		if ((rc = yj_route_notify(txn, cfg, rcpt, r->id, r->id, seq, r->legal_basis, now_us, &unroutable)))
			return rc;
		if (unroutable) {
			counts->unroutable++;
			counts->escalated += yj_config_duty(cfg) != NULL;
		} else {
			counts->outbox++;
		}
		if (held && wlen + strlen(r->id) + 2 < sizeof(waiting))
			wlen += (size_t)snprintf(waiting + wlen, sizeof(waiting) - wlen, "%s%s", wlen ? "," : "", r->id);
	}
	if ((rc = s_digest_entries(txn, seq, dg_rcpt, dg_rule, n_dg)))
		return rc;
	if (held) {
		if ((rc = s_hold(txn, cfg, seq, ev, held, waiting, now_us)))
			return rc;
		counts->held++;
	}
	return s_ld_update(txn, cfg, seq, ev, now_us, counts);
}

/* --- replay and hold release: the same path as first routing --- */

int yj_route_replay(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref, int64_t since_us,
		    const char *rule, int64_t now_us, unsigned *queued, struct yj_route_counts *counts)
{
	struct yj_u64vec seqs = { NULL, 0, 0 };
	*queued = 0;
	/* Collected first: the walk must not see the notifications it writes. */
	int rc = yj_events_since(txn, since_us, yj_u64vec_add_cb, &seqs);
	for (size_t i = 0; rc >= 0 && i < seqs.n; i++) {
		Yjlink__V1__Record *rec = yj_events_get_record(txn, seqs.v[i]);
		if (!rec || !rec->event) {
			yjlink__v1__record__free_unpacked(rec, NULL);
			continue;
		}
		struct yj_route_facts f;
		/* first_contact is a digest flag: no immediate rule of a replay can ask it of history. */
		yj_route_facts(cfg, ref, rec->event, 0, &f);
		for (size_t j = 0; rc >= 0 && j < cfg->n_rules; j++) {
			const struct yj_rule *r = &cfg->rules[j];
			char rcpt[300];
			if (r->mode != YJ_MODE_IMMEDIATE || (rule && strcmp(rule, r->id)) || !yj_rule_matches(r, &f) ||
			    !yj_route_resolve(cfg, ref, r->recipient, rec->event, rcpt, sizeof(rcpt)))
				continue;
			if (yj_route_stale(r, rec->event, now_us)) {
				if (counts) {
					counts->stale++;
					if (j < YJ_ROUTE_RULES_COUNTED)
						counts->stale_by_rule[j]++;
				}
				continue;
			}
			int unroutable = 0;
			rc = yj_route_notify(txn, cfg, rcpt, r->id, r->id, seqs.v[i], r->legal_basis, now_us, &unroutable);
			*queued += !rc;
			if (!rc && counts) {
				counts->outbox += !unroutable;
				counts->unroutable += unroutable;
			}
		}
		yjlink__v1__record__free_unpacked(rec, NULL);
	}
	free(seqs.v);
	return rc < 0 ? rc : 0;
}

struct s_release {
	struct yj_txn *txn;
	const struct yj_config *cfg;
	uint64_t seq;
	int64_t now_us;
	unsigned queued;
	char **rcpts;             /* collected first: notify writes the tables being walked */
	size_t n;
};

static int s_release_rcpt(void *arg, const char *recipient)
{
	struct s_release *r = arg;
	char **nv = realloc(r->rcpts, (r->n + 1) * sizeof(*nv));
	if (!nv)
		return YJ_ENOMEM;
	r->rcpts = nv;
	if (!(r->rcpts[r->n] = strdup(recipient)))
		return YJ_ENOMEM;
	r->n++;
	return 0;
}

/* The index of the immediate rule that sends ev to recipient, or -1 (the
 * duty recipient or an officer, told by no rule). */
static int s_rule_for(const struct yj_config *cfg, const struct yj_refdata *ref, const Yjlink__V1__Event *ev,
		      const struct yj_route_facts *f, const char *recipient)
{
	char rcpt[300];
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct yj_rule *r = &cfg->rules[i];
		if (r->mode == YJ_MODE_IMMEDIATE && yj_rule_matches(r, f) &&
		    yj_route_resolve(cfg, ref, r->recipient, ev, rcpt, sizeof(rcpt)) && !strcmp(rcpt, recipient))
			return (int)i;
	}
	return -1;
}

int yj_route_release(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref, uint64_t seq,
		     const char *by, const char *actor, const char *reason, int64_t now_us, unsigned *queued,
		     struct yj_route_counts *counts)
{
	struct s_release r = { txn, cfg, seq, now_us, 0, NULL, 0 };
	struct yj_route_facts f;
	*queued = 0;
	int rc = yj_holds_release(txn, seq, now_us, by, actor, reason);
	if (rc)
		return rc;
	Yjlink__V1__Record *rec = yj_events_get_record(txn, seq);
	if (rec && rec->event)
		yj_route_facts(cfg, ref, rec->event, 0, &f);
	/* Everyone who already had the event now gets what was withheld, as
	 * first routing would send it now: not when it has gone stale under
	 * the rule that sent it. */
	rc = yj_disclosed_each(txn, seq, s_release_rcpt, &r);
	for (size_t i = 0; rc >= 0 && i < r.n; i++) {
		int j = rec && rec->event ? s_rule_for(cfg, ref, rec->event, &f, r.rcpts[i]) : -1;
		if (j >= 0 && yj_route_stale(&cfg->rules[j], rec->event, now_us)) {
			if (counts) {
				counts->stale++;
				if (j < YJ_ROUTE_RULES_COUNTED)
					counts->stale_by_rule[j]++;
			}
			continue;
		}
		int unroutable = 0;
		rc = yj_route_notify(txn, cfg, r.rcpts[i], "hold_release", "hold_released", seq, "", now_us, &unroutable);
		r.queued += !rc;
	}
	yjlink__v1__record__free_unpacked(rec, NULL);
	for (size_t i = 0; i < r.n; i++)
		free(r.rcpts[i]);
	free(r.rcpts);
	*queued = r.queued;
	return rc < 0 ? rc : 0;
}

void yj_route_check_config(const struct yj_config *cfg, const struct yj_refdata *ref, struct yj_diag *diag)
{
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		for (size_t j = 0; j < r->las.n; j++) {
			const struct yj_la *la = yj_ref_la(ref, r->las.v[j]);
			if (!la || !la->upper_tier)
				yj_diag_report(diag, r->file, r->line, "recipient '%s': %s is not an upper-tier local authority in local_authorities.csv",
					       r->id, r->las.v[j]);
		}
		for (size_t j = 0; j < r->suites.n; j++) {
			if (!yj_ref_suite(ref, r->suites.v[j]))
				yj_diag_report(diag, r->file, r->line, "recipient '%s': suite %s is not in custody_suites.csv", r->id,
					       r->suites.v[j]);
		}
		if (r->kind == YJ_RCPT_FORCE && *r->force && !yj_ref_force(ref, r->force))
			yj_diag_report(diag, r->file, r->line, "recipient '%s': force %s is not in forces.csv", r->id, r->force);
	}
}
