/* retention.c: see retention.h. */
#include "retention.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db/audit.h"
#include "db/digests.h"
#include "db/events.h"
#include "db/holds.h"
#include "db/notes.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "normalise.h"

#define S_US_PER_DAY (INT64_C(86400) * 1000000)
#define S_NOTES_MAX 10000 /* notifications looked at per batch in each queue */
#define S_BATCH 250       /* events per write transaction: ~10 ms, so ingest never waits long */
#define S_FIRST_MS 5000   /* the first look after start */
#define S_EVERY_MS 3600000 /* then hourly: "daily" erasure, never a day late */

int64_t yj_retention_cutoff(const struct yj_config *cfg, int64_t now_us)
{
	return now_us - cfg->retention_event_days * S_US_PER_DAY;
}

struct s_ctx {
	struct yj_txn *txn;
	const struct yj_config *cfg;
};

/* What refers to an event, erased with it. */
static int s_on_erase(void *arg, uint64_t seq)
{
	struct s_ctx *c = arg;
	int rc = yj_holds_erase_event(c->txn, seq);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < c->cfg->n_recipients; i++) {
		const struct yj_recipient *r = &c->cfg->recipients[i];
		if (r->kind != YJ_RCPT_YJS)
			continue;
		rc = yj_digests_erase_entry(c->txn, r->id, seq);
		if (rc && rc != YJ_ENOENT)
			return rc;
	}
	return 0;
}

struct s_notes {
	uint64_t upto;          /* event seqs <= upto are erased */
	uint64_t *numbers;      /* owned here */
	size_t n, max;
};

static int s_notes_cb(void *arg, const Yjlink__V1__Notification *n)
{
	struct s_notes *s = arg;
	if (!n->has_seq || !n->seq || n->seq > s->upto)
		return 0;
	if (s->n == s->max)
		return 1;
	s->numbers[s->n++] = n->number;
	return 0;
}

/* The dead letters and unroutable notifications about events at or below
 * upto (which are all erased): their copies of the event's fields go too. */
static int s_erase_notes(struct yj_txn *txn, uint64_t upto, uint64_t *erased)
{
	static const enum yj_note_queue queues[] = { YJ_NOTES_DLQ, YJ_NOTES_UNROUTABLE };
	struct s_notes s = { .upto = upto, .max = S_NOTES_MAX };
	int rc = 0;

	*erased = 0;
	if (!upto)
		return 0;
	if (!(s.numbers = malloc(s.max * sizeof(*s.numbers))))
		return YJ_ENOMEM;
	for (size_t q = 0; q < sizeof(queues) / sizeof(queues[0]); q++) {
		s.n = 0;
		if ((rc = yj_notes_each(txn, queues[q], s_notes_cb, &s)) < 0)
			goto out;
		rc = 0;
		for (size_t i = 0; i < s.n; i++) {
			rc = yj_notes_del(txn, queues[q], s.numbers[i]);
			if (rc && rc != YJ_ENOENT)
				goto out;
			rc = 0;
			(*erased)++;
		}
	}
out:
	free(s.numbers);
	return rc;
}

int yj_retention_batch(struct yj_txn *txn, const struct yj_config *cfg, int64_t now_us, size_t max,
		       const char *actor, struct yj_retention_batch *out)
{
	struct s_ctx c = { txn, cfg };
	struct yj_events_erased e;
	int64_t cut = yj_retention_cutoff(cfg, now_us);
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = yj_events_erase_before(txn, cut, max, s_on_erase, &c, &e)))
		return rc;
	out->events = e.n;
	out->first_seq = e.first_seq;
	out->last_seq = e.last_seq;
	out->more = e.more;
	/* The notifications once no event is due: by then every event they
	 * can be about is gone (seqs below the first one kept). */
	if (!e.more) {
		uint64_t first = 0;
		if ((rc = yj_events_first_seq(txn, &first)))
			return rc;
		uint64_t upto = first ? first - 1 : e.last_seq;
		if (!first) {
			/* No event left at all: everything up to the newest seq ever. */
			if ((rc = yj_events_next_seq(txn, &upto)))
				return rc;
			upto = upto ? upto - 1 : 0;
		}
		if ((rc = s_erase_notes(txn, upto, &out->notes)))
			return rc;
	}
	/* The audit log keeps retention.audit_days, once no event is due. */
	uint64_t audit_first = 0, audit_last = 0;
	if (!out->more) {
		int more = 0;
		int64_t audit_cut = now_us - cfg->retention_audit_days * S_US_PER_DAY;
		if ((rc = yj_audit_erase_before(txn, audit_cut, max, &out->audit, &audit_first, &audit_last, &more)))
			return rc;
		out->more = more;
	}
	if (!out->events && !out->notes && !out->audit)
		return 0;

	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	char reason[512], cutoff[40];
	Yjlink__V1__Time t = YJLINK__V1__TIME__INIT;
	t.has_unix_us = 1;
	t.unix_us = cut;
	yj_time_format(&t, cutoff, sizeof(cutoff));
	if (out->events)
		snprintf(reason, sizeof(reason),
			 "retention (retention.event_days = %" PRId64 "): erased %" PRIu64 " events, seqs %" PRIu64 "-%" PRIu64
			 ", stored before %s, with their indexes, holds and digest entries; %" PRIu64 " notifications",
			 (int64_t)cfg->retention_event_days, out->events, out->first_seq, out->last_seq, cutoff, out->notes);
	else if (out->notes)
		snprintf(reason, sizeof(reason),
			 "retention (retention.event_days = %" PRId64 "): erased %" PRIu64
			 " dead-letter and unroutable notifications about events erased before %s",
			 (int64_t)cfg->retention_event_days, out->notes, cutoff);
	else
		reason[0] = '\0';
	if (out->audit) {
		size_t used = strlen(reason);
		snprintf(reason + used, sizeof(reason) - used,
			 "%sretention (retention.audit_days = %" PRId64 "): erased %" PRIu64 " audit records, %" PRIu64
			 "-%" PRIu64 " (the chain goes on from %" PRIu64 ")",
			 used ? "; " : "", (int64_t)cfg->retention_audit_days, out->audit, audit_first, audit_last,
			 audit_last);
	}
	a.has_at_us = 1;
	a.at_us = now_us;
	a.action = "erasure";
	a.actor = (char *)(actor ? actor : "yjlinkd");
	a.reason = reason;
	return yj_audit_append(txn, &a);
}

int yj_retention_due(struct yj_txn *txn, const struct yj_config *cfg, int64_t now_us, uint64_t *events,
		     uint64_t *first_seq, uint64_t *last_seq)
{
	return yj_events_count_before(txn, yj_retention_cutoff(cfg, now_us), events, first_seq, last_seq);
}

struct yj_retention {
	struct yj_core *core;        /* borrowed */
	int64_t timer;               /* the hourly look */
	int64_t step;                /* the next batch's timer while a run is under way */
	int running;                 /* a run's batches are under way */
	char actor[48];              /* who asked for the run under way */
	struct yj_retention_stats st;
	uint64_t run_events;         /* erased in the run under way */
};

struct s_write {
	struct yj_retention *r;
	struct yj_retention_batch b;
	int64_t now_us;
};

static int s_batch_write(struct yj_txn *txn, void *arg)
{
	struct s_write *w = arg;
	return yj_retention_batch(txn, w->r->core->cfg, w->now_us, S_BATCH, w->r->actor, &w->b);
}

static int s_step(struct yj_loop *loop, void *arg)
{
	struct yj_retention *r = arg;
	struct s_write w = { .r = r, .now_us = yj_clock_now_us() };
	r->step = 0;
	int rc = yj_store_write(r->core->store, s_batch_write, &w);
	if (rc) {
		yj_warn("retention: could not erase what is due (%s); trying again within the hour", yj_strerror(rc));
		r->running = 0;
		return 0;
	}
	r->st.erased_events += w.b.events;
	r->st.erased_notes += w.b.notes;
	r->run_events += w.b.events;
	if (w.b.events)
		yj_info("retention: erased %llu events, seqs %llu-%llu (audited)", (unsigned long long)w.b.events,
			(unsigned long long)w.b.first_seq, (unsigned long long)w.b.last_seq);
	if (w.b.audit)
		yj_info("retention: erased %llu audit records past retention.audit_days (audited)",
			(unsigned long long)w.b.audit);
	if (w.b.notes)
		yj_info("retention: erased %llu dead-letter and unroutable notifications about erased events (audited)",
			(unsigned long long)w.b.notes);
	/* Next batch at the next iteration, after that iteration's commit. */
	if (w.b.more && (r->step = yj_loop_timer(loop, 0, 0, s_step, r)) > 0)
		return 0;
	r->step = 0;
	if (r->run_events)
		yj_notice("retention: run done, %llu events erased", (unsigned long long)r->run_events);
	r->running = 0;
	r->st.last_end_us = w.now_us;
	return 0;
}

static int s_kick(struct yj_retention *r, const char *actor)
{
	if (r->running)
		return 0;
	snprintf(r->actor, sizeof(r->actor), "%s", actor ? actor : "yjlinkd");
	r->run_events = 0;
	int64_t t = yj_loop_timer(r->core->loop, 0, 0, s_step, r);
	if (t < 0)
		return (int)t;
	r->step = t;
	r->running = 1;
	return 0;
}

static int s_hourly(struct yj_loop *loop, void *arg)
{
	(void)loop;
	s_kick(arg, "yjlinkd");
	return 0;
}

int yj_retention_start(struct yj_core *core, struct yj_retention **out)
{
	struct yj_retention *r = calloc(1, sizeof(*r));
	if (!r)
		return YJ_ENOMEM;
	r->core = core;
	r->timer = yj_loop_timer(core->loop, S_FIRST_MS, S_EVERY_MS, s_hourly, r);
	if (r->timer < 0) {
		int rc = (int)r->timer;
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void yj_retention_stop(struct yj_retention **rp)
{
	struct yj_retention *r = rp ? *rp : NULL;
	if (!r)
		return;
	yj_loop_timer_cancel(r->core->loop, r->timer);
	if (r->step > 0)
		yj_loop_timer_cancel(r->core->loop, r->step);
	free(r);
	*rp = NULL;
}

struct s_due_read {
	const struct yj_config *cfg;
	int64_t now_us;
	uint64_t n, first, last;
};

static int s_due_read(struct yj_txn *txn, void *arg)
{
	struct s_due_read *d = arg;
	return yj_retention_due(txn, d->cfg, d->now_us, &d->n, &d->first, &d->last);
}

int yj_retention_run_now(struct yj_retention *r, const char *actor, uint64_t *due)
{
	struct s_due_read d = { r->core->cfg, yj_clock_now_us(), 0, 0, 0 };
	int rc = yj_store_read(r->core->store, s_due_read, &d);
	if (rc)
		return rc;
	*due = d.n;
	return s_kick(r, actor);
}

void yj_retention_stats(const struct yj_retention *r, struct yj_retention_stats *out)
{
	if (r) {
		*out = r->st;
		out->running = r->running;
	} else {
		memset(out, 0, sizeof(*out));
	}
}
