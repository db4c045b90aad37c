/* digest.c: see digest.h. */
#include "digest.h"
#include "digest_int.h"

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
#include "tz.h"

#define S_TICK_MS 1000
/* A tick plans for at most this long before the loop polls again (at least one digest). */
#define S_PLAN_BUDGET_MS 20
/* Most digests one YJS plans in one pass: a daemon down for months catches
 * up over a few passes rather than in one long transaction. */
#define S_PLAN_MAX 64

/* The build and the helpers this file shares with it (time, custody
 * records) are in digest_build.c and digest_people.c (digest_int.h). */
static Yjlink__V1__Record *s_record(struct yj_txn *txn, uint64_t seq) { return yj_events_get_record(txn, seq); }

static int s_cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int64_t yj_digest_next_after(const struct yj_strlist *times, int64_t after_us)
{
	struct tm tm;
	int64_t best = INT64_MAX;
	yj_dg_local(after_us, &tm);
	/* Today's, tomorrow's or the day after's first time later than after_us. */
	for (int k = -1; k <= 2 && best == INT64_MAX; k++) {
		struct tm day = tm;
		day.tm_mday += k;
		day.tm_hour = 12;
		yj_tz_mktime(&day);
		for (size_t i = 0; i < times->n; i++) {
			int hh = 0, mm = 0;
			if (sscanf(times->v[i], "%2d:%2d", &hh, &mm) != 2)
				continue;
			int64_t t = yj_dg_instant(day.tm_year + 1900, day.tm_mon + 1, day.tm_mday, hh, mm);
			if (t > after_us && t < best)
				best = t;
		}
	}
	return best;
}

/* The part of a recipient id after its kind ("yjs:milton-keynes" -> "milton-keynes"). */
static const char *s_short(const char *id)
{
	const char *c = strchr(id, ':');
	return c ? c + 1 : id;
}

/* --- planning: each due digest becomes an outbox job --- */

struct yj_digest {
	struct yj_core *core;          /* borrowed */
	int64_t timer;                 /* the planner's tick */
	int64_t more_timer;            /* > 0: a tick cut short at its budget goes on at once */
	size_t resume;                 /* the YJS (recipient index) a tick cut short goes on with */
	int ticking;                   /* guards re-entry */
};

static void s_digest_id(const struct yj_config *cfg, const char *yjs, int64_t scheduled_us, char *buf, size_t size)
{
	char when[32];
	yj_dg_fmt_local(scheduled_us, "%Y%m%dT%H%M", when, sizeof(when));
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
		yj_dg_custody_key(r->event, key, sizeof(key));
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
		Yjlink__V1__Record *latest = yj_dg_latest_custody_at(txn, o.keys.v[i], d->end_seq);
		const char *st = latest && latest->event && latest->event->custody ? latest->event->custody->status : NULL;
		if (st && !yj_dg_is_released(st))
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
	int64_t until_ms;              /* the tick's budget ends (yj_loop_now_ms) */
	int planned;                   /* out: digests queued */
	int more;                      /* out: stopped at the budget with more due */
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
		/* Each window's planning reads its entries (s_open_after): a
		 * catch-up of many is cut into loop passes, as the outbox's are. */
		if (p->planned && yj_loop_now_ms() >= p->until_ms) {
			p->more = 1;
			break;
		}
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

static int s_more_timer(struct yj_loop *loop, void *arg);

int yj_digest_tick(struct yj_digest *dg)
{
	const struct yj_config *cfg = dg->core->cfg;
	int total = 0, more = 0;
	if (dg->ticking)
		return 0;
	dg->ticking = 1;
	int64_t now = yj_clock_now_us();
	int64_t until_ms = yj_loop_now_ms() + S_PLAN_BUDGET_MS;
	size_t n = cfg->n_recipients, first = dg->resume < n ? dg->resume : 0;
	for (size_t k = 0; k < n && !more; k++) {
		size_t i = (first + k) % n;
		const struct yj_recipient *r = &cfg->recipients[i];
		if (r->kind != YJ_RCPT_YJS || r->digest_times.n == 0)
			continue;
		if (total && yj_loop_now_ms() >= until_ms) {
			more = 1;
			dg->resume = i;
			break;
		}
		struct s_plan p = { dg, r, now, until_ms, 0, 0 };
		int rc = yj_store_write(dg->core->store, s_plan_write, &p);
		if (rc) {
			yj_warn("digest: cannot plan the digest of %s: %s (trying again in a second)", r->id, yj_strerror(rc));
			continue;
		}
		if (p.planned)
			yj_info("digest: %d digest(s) of %s queued for delivery%s", p.planned, r->id,
				p.more ? "; more are due, planned next" : "");
		total += p.planned;
		if (p.more) {
			more = 1;
			dg->resume = i;
		}
	}
	if (!more)
		dg->resume = 0;
	else if (dg->more_timer <= 0)
		/* A zero-delay timer: the loop polls its sockets before it runs. */
		dg->more_timer = yj_loop_timer(dg->core->loop, 0, 0, s_more_timer, dg);
	dg->ticking = 0;
	return total;
}

static int s_more_timer(struct yj_loop *loop, void *arg)
{
	struct yj_digest *dg = arg;
	(void)loop;
	dg->more_timer = 0;
	yj_digest_tick(dg);
	return 0;
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
	if (dg->more_timer > 0)
		yj_loop_timer_cancel(dg->core->loop, dg->more_timer);
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

Yjlink__V1__Digest *yj_digest_copy(const Yjlink__V1__Digest *d)
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
	yj_dg_fmt_local(d->scheduled_us, "%Y-%m-%d", day, sizeof(day));
	if (strcmp(day, f->date))
		return 0;
	Yjlink__V1__Digest **nf = realloc(f->found, (f->n + 1) * sizeof(*nf));
	if (!nf)
		return YJ_ENOMEM;
	f->found = nf;
	if (!(f->found[f->n] = yj_digest_copy(d)))
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
	unsigned parts;                /* without fn: the renderings wanted in out */
	yj_digest_view_fn fn;          /* else: given the opened digest */
	void *arg;
	struct yj_digest_content *out;
};

static int s_build_read(struct yj_txn *txn, void *arg)
{
	struct s_build_read *br = arg;
	struct yj_digest_view *v = NULL; /* owned here */
	int rc = yj_digest_open(txn, br->dg->core->cfg, br->dg->core->ref, br->yjs, br->d, &v, br->out);
	if (!rc)
		rc = br->fn ? br->fn(br->arg, v, br->out) : yj_digest_render(v, br->parts, br->out);
	yj_digest_close(&v);
	if (rc)
		yj_digest_content_free(br->out);
	return rc;
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

static int s_preview(struct yj_digest *dg, const char *yjs_id, const char *date, unsigned parts,
		     yj_digest_view_fn fn, void *fn_arg, struct yj_digest_content *out, char *err, size_t errlen)
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
	struct s_build_read br = { dg, yjs, want, parts, fn, fn_arg, out };
	rc = yj_store_read(dg->core->store, s_build_read, &br);
out:
	s_find_free(&f);
	if (rc && !*err)
		snprintf(err, errlen, "%s", yj_strerror(rc));
	return rc;
}

int yj_digest_preview(struct yj_digest *dg, const char *yjs, const char *date, unsigned parts,
		      struct yj_digest_content *out, char *err, size_t errlen)
{
	return s_preview(dg, yjs, date, parts, NULL, NULL, out, err, errlen);
}

int yj_digest_preview_view(struct yj_digest *dg, const char *yjs, const char *date, yj_digest_view_fn fn, void *arg,
			   struct yj_digest_content *out, char *err, size_t errlen)
{
	return s_preview(dg, yjs, date, 0, fn, arg, out, err, errlen);
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
			yj_dg_fmt_utc(last_sent, buf, sizeof(buf));
			cJSON_AddStringToObject(o, "last_digest", buf);
		} else {
			cJSON_AddStringToObject(o, "last_digest", "none yet");
		}
		cJSON_AddNumberToObject(o, "sent", st ? (double)st->sent : 0);
		int64_t next = yj_digest_next_after(&r->digest_times, st ? st->last_scheduled_us : yj_clock_now_us());
		if (next != INT64_MAX) {
			yj_dg_fmt_utc(next, buf, sizeof(buf));
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
	yj_dg_local(yj_clock_now_us(), &tm);
	struct s_today t = { yj_dg_instant(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, 0, 0), 0 };
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
