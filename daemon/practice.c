/* practice.c: see practice.h. */
#include "practice.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "core.h"
#include "db/audit.h"
#include "db/events.h"
#include "db/holds.h"
#include "db/notes.h"
#include "db/positions.h"
#include "err.h"
#include "event_json.h"
#include "ingest.h"
#include "log.h"
#include "loop.h"
#include "normalise.h"
#include "outbox.h"
#include "u64vec.h"
#include "tz.h"

/* Often enough that an escalation due at 15 minutes goes within seconds of
 * it; each run reads only the jobs old enough to be due. */
#define S_INTERVAL_MS 5000
/* Jobs looked at per run, at most: a backlog is worked through over runs. */
#define S_SCAN_BUDGET 5000
#define S_SILENCE_KEY "practice/feed_silent/"
#define S_ANCHOR_KEY "practice/audit_anchor_day"

struct s_named {
	char *name;
	uint64_t n;
};

enum s_reason { S_UNROUTABLE = 0, S_DEAD, S_UNDELIVERED, S_HOLD, S_FEED_SILENT, S_FEED_RESUMED, S_ANCHOR, S_REASONS };
static const char *const s_reason_names[S_REASONS] = { "unroutable", "dead_letter",  "undelivered", "hold_escalation",
						       "feed_silent", "feed_resumed", "audit_anchor" };

struct yj_practice {
	struct yj_core *core;
	int64_t timer;
	struct s_named *stale;      /* by rule id, owned */
	size_t n_stale;
	uint64_t escalations[S_REASONS];
	uint64_t counters[YJ_PRACTICE_COUNTERS];
	uint64_t ld_updates;
	uint64_t outbox_cursor;     /* the scan resumes after this job number */
	uint64_t unroutable_cursor;
	/* Feeds, by enum yj_feed. */
	int64_t last_us[YJ_FEED_COUNT];     /* when the feed's last message was stored */
	uint64_t seen[YJ_FEED_COUNT];       /* ingest's OK count at the last run */
	int64_t silent_since[YJ_FEED_COUNT];/* 0, or when the duty recipient was told the feed is quiet */
};

static struct s_named *s_named_find(struct s_named **v, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++) {
		if (!strcmp((*v)[i].name, name))
			return &(*v)[i];
	}
	struct s_named *nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	*v = nv;
	if (!(nv[*n].name = strdup(name)))
		return NULL;
	nv[*n].n = 0;
	return &nv[(*n)++];
}

void yj_practice_add_routed(struct yj_practice *p, const struct yj_config *cfg, const struct yj_route_counts *c)
{
	if (!p || !c)
		return;
	for (size_t i = 0; i < cfg->n_rules && i < YJ_ROUTE_RULES_COUNTED; i++) {
		if (!c->stale_by_rule[i])
			continue;
		struct s_named *s = s_named_find(&p->stale, &p->n_stale, cfg->rules[i].id);
		if (s)
			s->n += c->stale_by_rule[i];
	}
	p->escalations[S_UNROUTABLE] += c->escalated;
	p->ld_updates += c->ld_updates;
	p->counters[YJ_PRACTICE_SUPERSEDED] += c->ld_superseded;
}

void yj_practice_count(struct yj_practice *p, enum yj_practice_counter c, uint64_t n)
{
	if (p && c < YJ_PRACTICE_COUNTERS)
		p->counters[c] += n;
}

/* --- the scan --- */

struct s_scan {
	struct yj_practice *p;
	const struct yj_config *cfg;
	int64_t now;
	int64_t min_limit_us;       /* the shortest escalate_after of any job */
	const char *duty;           /* its id, "" none */
	size_t looked;
	uint64_t after;             /* resume after this number */
	uint64_t last;              /* the last number looked at */
	int finished;               /* went to the end (or to jobs too young) */
	struct yj_u64vec due;
};

static int64_t s_limit_us(const struct yj_config *cfg, const Yjlink__V1__Notification *n)
{
	for (size_t i = 0; n->rule && i < cfg->n_rules; i++) {
		if (!strcmp(cfg->rules[i].id, n->rule))
			return cfg->rules[i].escalate_after_s * INT64_C(1000000);
	}
	return cfg->delivery_escalate_after_s * INT64_C(1000000);
}

/* Outbox jobs are due when late; unroutable ones at once (they were made
 * unroutable by a reload, or before this version marked them). */
static int s_scan_cb(struct s_scan *s, const Yjlink__V1__Notification *n, int unroutable)
{
	if (n->number <= s->after)
		return 0;
	if (s->looked++ >= S_SCAN_BUDGET)
		return 1;
	s->last = n->number;
	/* Numbers grow with creation: from here on every job is younger. */
	if (!unroutable && n->created_at_us + s->min_limit_us > s->now) {
		s->finished = 1;
		return 1;
	}
	if ((n->has_escalated_at_us && n->escalated_at_us) || !strcmp(n->recipient ? n->recipient : "", s->duty))
		return 0;
	if (unroutable)
		return yj_u64vec_add(&s->due, n->number);
	int64_t from = n->created_at_us;
	if (n->has_not_before_us && n->not_before_us > from)
		from = n->not_before_us;  /* deferred to an opening on purpose: late only after it */
	if (s->now - from > s_limit_us(s->cfg, n))
		return yj_u64vec_add(&s->due, n->number);
	return 0;
}

static int s_outbox_cb(void *arg, const Yjlink__V1__Notification *n) { return s_scan_cb(arg, n, 0); }
static int s_unroutable_cb(void *arg, const Yjlink__V1__Notification *n) { return s_scan_cb(arg, n, 1); }

/* Escalate the jobs of queue q collected in due, marking each. */
static int s_escalate_due(struct yj_txn *txn, struct s_scan *s, enum yj_note_queue q, const char *reason,
			  unsigned *count)
{
	for (size_t i = 0; i < s->due.n; i++) {
		Yjlink__V1__Notification *n = yj_notes_get(txn, q, s->due.v[i]);
		if (!n)
			continue;
		n->has_escalated_at_us = 1;
		n->escalated_at_us = s->now;
		int rc = yj_notes_put(txn, q, n);
		if (!rc)
			rc = yj_route_escalate(txn, s->cfg, n, reason, n->last_error ? n->last_error : "", s->now);
		yjlink__v1__notification__free_unpacked(n, NULL);
		if (rc)
			return rc;
		(*count)++;
	}
	return 0;
}

struct s_holds_scan {
	int64_t now;
	int64_t limit_us;
	struct yj_u64vec due;
};

static int s_holds_cb(void *arg, const Yjlink__V1__Hold *h)
{
	struct s_holds_scan *s = arg;
	if ((h->has_released_at_us && h->released_at_us) || (h->has_escalated_at_us && h->escalated_at_us))
		return 0;
	if (s->now - h->held_at_us > s->limit_us)
		return yj_u64vec_add(&s->due, h->seq);
	return 0;
}

struct s_run {
	struct yj_practice *p;
	int64_t now;
	unsigned escalated[S_REASONS];
	int silent_new[YJ_FEED_COUNT];
	int resumed[YJ_FEED_COUNT];
	uint64_t outbox_cursor, unroutable_cursor;
};

static int s_feed_state_put(struct yj_txn *txn, int feed, int64_t since)
{
	char key[64];
	uint8_t v[8];
	snprintf(key, sizeof(key), S_SILENCE_KEY "%s", yj_feed_name((enum yj_feed)feed));
	yj_be64_put(v, (uint64_t)since);
	return yj_positions_put(txn, key, v, sizeof(v));
}

/* Days since 1970-01-01 of the local date of t, and whether the local time
 * of day is at or after "HH:MM". */
static int64_t s_local_day(int64_t t_us, const char *hhmm, int *after)
{
	int64_t t = t_us / 1000000;
	struct tm tm;
	int h = 0, m = 0;
	yj_tz_local(t, &tm);
	sscanf(hhmm, "%d:%d", &h, &m);
	*after = tm.tm_hour * 60 + tm.tm_min >= h * 60 + m;
	return (t + tm.tm_gmtoff) / 86400;
}

/* quality.md / issue "an audit that cannot be rewritten unseen": once a
 * day the chain's head leaves the store, to the duty recipient. */
static int s_anchor(struct yj_txn *txn, const struct yj_config *cfg, int64_t now, int *sent)
{
	uint8_t v[8], hash[32];
	size_t len = 0;
	int after = 0;
	uint64_t number = 0;
	*sent = 0;
	if (!*cfg->audit_anchor_time)
		return 0;
	int64_t day = s_local_day(now, cfg->audit_anchor_time, &after);
	if (!after)
		return 0;
	if (!yj_positions_get(txn, S_ANCHOR_KEY, v, sizeof(v), &len) && len == sizeof(v) && (int64_t)yj_be64_get(v) >= day)
		return 0;
	int rc = yj_audit_head(txn, &number, hash);
	if (rc || !number)
		return rc; /* 0 with no number: nothing audited yet, nothing to anchor */
	char detail[96], hex[65];
	yj_audit_hex(hash, hex);
	snprintf(detail, sizeof(detail), "%" PRIu64 ":%s", number, hex);
	int queued = 0;
	if ((rc = yj_route_duty_notice(txn, cfg, "audit_anchor", 0, NULL, 0, detail, now, &queued)))
		return rc;
	yj_be64_put(v, (uint64_t)day);
	if ((rc = yj_positions_put(txn, S_ANCHOR_KEY, v, sizeof(v))))
		return rc;
	*sent = queued;
	return 0;
}

static int s_run_write(struct yj_txn *txn, void *arg)
{
	struct s_run *r = arg;
	struct yj_practice *p = r->p;
	const struct yj_config *cfg = p->core->cfg;
	const struct yj_recipient *duty = yj_config_duty(cfg);
	int rc = 0;

	memset(r->escalated, 0, sizeof(r->escalated));
	memset(r->silent_new, 0, sizeof(r->silent_new));
	memset(r->resumed, 0, sizeof(r->resumed));
	if (!duty)
		return 0; /* nobody to tell: route.c logs each unroutable job as it comes */

	int64_t min_limit = cfg->delivery_escalate_after_s;
	for (size_t i = 0; i < cfg->n_rules; i++) {
		if (cfg->rules[i].mode == YJ_MODE_IMMEDIATE && cfg->rules[i].escalate_after_s < min_limit)
			min_limit = cfg->rules[i].escalate_after_s;
	}
	struct s_scan s = { p, cfg, r->now, min_limit * INT64_C(1000000), duty->id, 0, p->outbox_cursor, 0, 0, { 0 } };
	rc = yj_notes_each(txn, YJ_NOTES_OUTBOX, s_outbox_cb, &s);
	if (rc >= 0)
		rc = s_escalate_due(txn, &s, YJ_NOTES_OUTBOX, "undelivered", &r->escalated[S_UNDELIVERED]);
	r->outbox_cursor = s.finished || s.looked <= S_SCAN_BUDGET ? 0 : s.last;
	free(s.due.v);
	if (rc < 0)
		return rc;

	struct s_scan u = { p, cfg, r->now, 0, duty->id, 0, p->unroutable_cursor, 0, 0, { 0 } };
	rc = yj_notes_each(txn, YJ_NOTES_UNROUTABLE, s_unroutable_cb, &u);
	if (rc >= 0)
		rc = s_escalate_due(txn, &u, YJ_NOTES_UNROUTABLE, "unroutable", &r->escalated[S_UNROUTABLE]);
	r->unroutable_cursor = u.looked <= S_SCAN_BUDGET ? 0 : u.last;
	free(u.due.v);
	if (rc < 0)
		return rc;

	struct s_holds_scan hs = { r->now, cfg->holds_escalate_after_h * 3600 * INT64_C(1000000), { 0 } };
	rc = yj_holds_each(txn, s_holds_cb, &hs);
	for (size_t i = 0; rc >= 0 && i < hs.due.n; i++) {
		Yjlink__V1__Hold *h = yj_holds_get(txn, hs.due.v[i]);
		if (!h)
			continue;
		h->has_escalated_at_us = 1;
		h->escalated_at_us = r->now;
		int queued = 0;
		char detail[300];
		snprintf(detail, sizeof(detail), "waiting for %s since it was held; told: %s",
			 h->officer && *h->officer ? h->officer : "the officer in the case (not named)",
			 h->told && *h->told ? h->told : "nobody");
		rc = yj_holds_store(txn, h);
		if (!rc)
			rc = yj_route_duty_notice(txn, cfg, "hold_escalation", h->seq, NULL, h->held_at_us, detail, r->now,
						  &queued);
		if (!rc && queued) {
			r->escalated[S_HOLD]++;
			yj_warn("practice: the hold of event %" PRIu64 " has waited over %" PRId64 " h: the duty recipient %s is told",
				h->seq, cfg->holds_escalate_after_h, duty->id);
		}
		yjlink__v1__hold__free_unpacked(h, NULL);
	}
	free(hs.due.v);
	if (rc < 0)
		return rc;

	int anchored = 0;
	if ((rc = s_anchor(txn, cfg, r->now, &anchored)))
		return rc;
	r->escalated[S_ANCHOR] = (unsigned)anchored;

	for (int f = 1; f < YJ_FEED_COUNT; f++) {
		int64_t alarm_us = cfg->silence_alarm_h[f] * 3600 * INT64_C(1000000);
		int queued = 0;
		const char *name = yj_feed_name((enum yj_feed)f);
		if (p->silent_since[f] && p->last_us[f] > p->silent_since[f]) {
			if ((rc = yj_route_duty_notice(txn, cfg, "feed_resumed", 0, name, p->last_us[f], "", r->now, &queued)) ||
			    (rc = s_feed_state_put(txn, f, 0)))
				return rc;
			r->resumed[f] = 1;
		} else if (!p->silent_since[f] && alarm_us > 0 && r->now - p->last_us[f] > alarm_us) {
			char detail[96];
			snprintf(detail, sizeof(detail), "no %s message for more than %" PRId64 " h", name, cfg->silence_alarm_h[f]);
			if ((rc = yj_route_duty_notice(txn, cfg, "feed_silent", 0, name, p->last_us[f], detail, r->now, &queued)) ||
			    (rc = s_feed_state_put(txn, f, r->now)))
				return rc;
			r->silent_new[f] = 1;
		}
	}
	return 0;
}

int yj_practice_run_now(struct yj_practice *p)
{
	struct s_run r = { p, yj_clock_now_us(), { 0 }, { 0 }, { 0 }, 0, 0 };
	const struct yj_ingest_stats *is = yj_ingest_stats(p->core->ingest);
	for (int f = 1; f < YJ_FEED_COUNT; f++) {
		if (is->ingested[f] != p->seen[f]) {
			p->seen[f] = is->ingested[f];
			p->last_us[f] = is->last_ok_us_by_feed[f];
		}
	}
	int rc = yj_store_write(p->core->store, s_run_write, &r);
	if (rc) {
		yj_warn("practice: escalation scan not stored (%s); trying again in %d s", yj_strerror(rc), S_INTERVAL_MS / 1000);
		return rc;
	}
	p->outbox_cursor = r.outbox_cursor;
	p->unroutable_cursor = r.unroutable_cursor;
	unsigned any = 0;
	for (int i = 0; i < S_REASONS; i++) {
		p->escalations[i] += r.escalated[i];
		any += r.escalated[i];
	}
	for (int f = 1; f < YJ_FEED_COUNT; f++) {
		const char *name = yj_feed_name((enum yj_feed)f);
		if (r.silent_new[f]) {
			p->silent_since[f] = r.now;
			p->escalations[S_FEED_SILENT]++;
			any++;
			yj_warn("practice: feed %s has sent nothing for over %" PRId64 " h: the duty recipient is told", name,
				p->core->cfg->silence_alarm_h[f]);
		}
		if (r.resumed[f]) {
			p->silent_since[f] = 0;
			p->escalations[S_FEED_RESUMED]++;
			any++;
			yj_notice("practice: feed %s sends again: the duty recipient is told", name);
		}
	}
	if (any)
		yj_outbox_kick(p->core->outbox);
	return 0;
}

static int s_tick(struct yj_loop *loop, void *arg)
{
	(void)loop;
	yj_practice_run_now(arg);
	return 0;
}

/* --- start: feeds' last messages and silence state from the store --- */

struct s_start {
	struct yj_practice *p;
	int64_t now;
};

static int s_start_read(struct yj_txn *txn, void *arg)
{
	struct s_start *s = arg;
	struct yj_practice *p = s->p;
	struct yj_events_feed_seen seen[YJ_FEED_COUNT - 1];
	uint64_t last = 0;
	int64_t oldest = 0;
	int complete = 0;
	for (int f = 1; f < YJ_FEED_COUNT; f++) {
		seen[f - 1].feed = yj_feed_name((enum yj_feed)f);
		seen[f - 1].seq = 0;
		seen[f - 1].stored_us = 0;
	}
	int rc = yj_events_last_seq(txn, &last);
	if (!rc && last)
		rc = yj_events_feeds_last(txn, last, 200000, seen, YJ_FEED_COUNT - 1, &oldest, &complete);
	if (rc)
		return rc;
	for (int f = 1; f < YJ_FEED_COUNT; f++) {
		/* Never seen: quiet since the daemon started (a new deployment
		 * is not alarmed about its first hours). */
		p->last_us[f] = seen[f - 1].seq ? seen[f - 1].stored_us : s->now;
		char key[64];
		uint8_t v[8];
		size_t len = 0;
		snprintf(key, sizeof(key), S_SILENCE_KEY "%s", yj_feed_name((enum yj_feed)f));
		if (!yj_positions_get(txn, key, v, sizeof(v), &len) && len == sizeof(v))
			p->silent_since[f] = (int64_t)yj_be64_get(v);
	}
	return 0;
}

int yj_practice_start(struct yj_core *core, struct yj_practice **out)
{
	struct yj_practice *p = calloc(1, sizeof(*p));
	if (!p)
		return YJ_ENOMEM;
	p->core = core;
	struct s_start s = { p, yj_clock_now_us() };
	int rc = yj_store_read(core->store, s_start_read, &s);
	if (rc) {
		free(p);
		return rc;
	}
	const struct yj_ingest_stats *is = yj_ingest_stats(core->ingest);
	for (int f = 1; f < YJ_FEED_COUNT; f++)
		p->seen[f] = is->ingested[f];
	p->timer = yj_loop_timer(core->loop, S_INTERVAL_MS, S_INTERVAL_MS, s_tick, p);
	if (p->timer < 0) {
		rc = (int)p->timer;
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void yj_practice_stop(struct yj_practice **pp)
{
	struct yj_practice *p = pp ? *pp : NULL;
	if (!p)
		return;
	yj_loop_timer_cancel(p->core->loop, p->timer);
	for (size_t i = 0; i < p->n_stale; i++)
		free(p->stale[i].name);
	free(p->stale);
	free(p);
	*pp = NULL;
}

/* --- what it shows --- */

static uint64_t s_escalated_total(const struct yj_practice *p)
{
	uint64_t n = 0;
	for (int i = 0; i < S_REASONS; i++)
		n += i == S_FEED_RESUMED || i == S_ANCHOR ? 0 : p->escalations[i];
	return n + p->counters[YJ_PRACTICE_DEAD_ESCALATED];
}

void yj_practice_summary(const struct yj_practice *p, uint64_t *escalated, unsigned *silent_feeds)
{
	*escalated = p ? s_escalated_total(p) : 0;
	*silent_feeds = 0;
	for (int f = 1; p && f < YJ_FEED_COUNT; f++)
		*silent_feeds += p->silent_since[f] != 0;
}

cJSON *yj_practice_describe(struct yj_practice *p)
{
	cJSON *o = cJSON_CreateObject();
	const struct yj_config *cfg = p->core->cfg;
	cJSON_AddStringToObject(o, "duty", cfg->deployment_duty);
	cJSON *feeds = cJSON_AddObjectToObject(o, "feeds");
	for (int f = 1; f < YJ_FEED_COUNT; f++) {
		cJSON *fo = cJSON_AddObjectToObject(feeds, yj_feed_name((enum yj_feed)f));
		cJSON_AddItemToObject(fo, "last_message_at", yj_time_to_json(p->last_us[f]));
		cJSON_AddBoolToObject(fo, "silent", p->silent_since[f] != 0);
		cJSON_AddNumberToObject(fo, "silence_alarm_h", (double)cfg->silence_alarm_h[f]);
	}
	cJSON *esc = cJSON_AddObjectToObject(o, "escalations");
	for (int i = 0; i < S_REASONS; i++)
		cJSON_AddNumberToObject(esc, s_reason_names[i],
					(double)(p->escalations[i] + (i == S_DEAD ? p->counters[YJ_PRACTICE_DEAD_ESCALATED] : 0)));
	cJSON *st = cJSON_AddObjectToObject(o, "stale");
	for (size_t i = 0; i < p->n_stale; i++)
		cJSON_AddNumberToObject(st, p->stale[i].name, (double)p->stale[i].n);
	cJSON_AddNumberToObject(o, "ld_superseded", (double)p->counters[YJ_PRACTICE_SUPERSEDED]);
	cJSON_AddNumberToObject(o, "ld_updates", (double)p->ld_updates);
	return o;
}

void yj_practice_prom(struct yj_practice *p, struct yj_prom *prom)
{
	if (!p)
		return;
	yj_prom_family(prom, "yjlink_stale_total", "counter",
		       "Immediate notifications not made because the event was older than the rule's max_age_s, by rule");
	for (size_t i = 0; i < p->n_stale; i++)
		yj_prom_sample_l(prom, "yjlink_stale_total", (double)p->stale[i].n, "rule", p->stale[i].name, NULL);
	yj_prom_family(prom, "yjlink_escalations_total", "counter", "Notices to the duty recipient since start, by reason");
	for (int i = 0; i < S_REASONS; i++)
		yj_prom_sample_l(prom, "yjlink_escalations_total",
				 (double)(p->escalations[i] + (i == S_DEAD ? p->counters[YJ_PRACTICE_DEAD_ESCALATED] : 0)),
				 "reason", s_reason_names[i], NULL);
	yj_prom_family(prom, "yjlink_ld_superseded_total", "counter",
		       "L&D referrals not sent at the opening because the custody record had closed");
	yj_prom_sample(prom, "yjlink_ld_superseded_total", NULL, (double)p->counters[YJ_PRACTICE_SUPERSEDED]);
	yj_prom_family(prom, "yjlink_ld_updates_total", "counter", "liaison_diversion_update notices queued");
	yj_prom_sample(prom, "yjlink_ld_updates_total", NULL, (double)p->ld_updates);
	yj_prom_family(prom, "yjlink_feed_silent", "gauge", "1 while a feed is past its silence alarm, by feed");
	for (int f = 1; f < YJ_FEED_COUNT; f++)
		yj_prom_sample_l(prom, "yjlink_feed_silent", p->silent_since[f] ? 1.0 : 0.0, "feed",
				 yj_feed_name((enum yj_feed)f), NULL);
}
