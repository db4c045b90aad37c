/* outbox.c: see outbox.h. */
#include "outbox.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db/audit.h"
#include "db/events.h"
#include "db/holds.h"
#include "db/notes.h"
#include "db/positions.h"
#include "digest.h"
#include "digestjob.h"
#include "err.h"
#include "event_json.h"
#include "log.h"
#include "loop.h"
#include "practice.h"
#include "route.h"

#define S_TICK_MS 100
/* Jobs under way per recipient while it is healthy, unless its adapter says
 * otherwise (a subscription keeps its unacknowledged notes under way). After
 * a transient failure it goes back to one at a time, oldest first, until it
 * has caught up, so order is kept while it fails. */
#define S_WINDOW 32
#define S_RCPT_MAX 300
/* Jobs one walk may pass over as not yet due on their index entry alone
 * (a cursor step each), beyond the jobs it reads. */
#define S_SKIP_MAX 4096
/* A dispatch pass starts jobs for at most this long (after its first), then
 * lets the loop serve its sockets and goes on at once: a digest or a board
 * pack is built as it starts, and a run of them (the catch-up after a
 * restart) held the loop for seconds, long enough under load for a
 * request or a control command to wait past its client's patience. */
#define S_PASS_BUDGET_MS 10
/* How often a recipient's walk starts from its oldest job again, whatever
 * else: a safety net, as every change below a walk's resume point kicks a
 * full walk itself (yj_outbox_kick). */
#define S_FULL_WALK_US (INT64_C(30) * 1000000)

/* A position waiting for the next completion commit (a subscription's cursor). */
struct s_position {
	char key[YJ_POSITION_KEY_MAX + 1];
	uint8_t val[YJ_POSITION_MAX];
	size_t len;
};

/* Delivery state of one recipient. */
struct s_rcpt {
	char *id;                   /* recipient id, owned */
	uint64_t *started;          /* owned, ascending: numbers started and not yet committed as done */
	unsigned n_started, cap_started;
	int ordered;                /* after a transient failure: one at a time, oldest first */
	int64_t next_attempt_us;    /* backoff: not before this */
	unsigned seen_pass;         /* last dispatch pass that found work for it */
	int warned;                 /* said once that its transport has no running adapter */
	/* Where the next walk starts. Every job below walked_to was started or
	 * passed over as not yet due, the earliest of those due again at
	 * due_again_us: until then, or until full_walk_at_us, a walk resumes at
	 * walked_to and reads only the jobs added since. Re-reading a few
	 * hundred referrals held for the L&D's opening on every pass was a
	 * tenth of the loop's time at full ingest (issue 14). */
	int resume;                 /* walked_to is valid */
	uint64_t walked_to;
	int64_t due_again_us;       /* INT64_MAX: nothing passed over */
	int64_t full_walk_at_us;    /* next walk from its oldest job (a job put back below walked_to) */
};

/* One delivery, from its start to the commit of its completion. */
struct s_done {
	struct yj_outbox *ob;
	size_t rcpt;                /* index in ob->rcpts (which may be reallocated) */
	uint64_t number;
	int adapter;                /* index in the adapter table, -1 when none ran */
	enum yj_delivery_result result;
	char *detail;               /* owned */
	char *address;              /* owned */
	struct yj_digest_content what; /* owned: what was disclosed (seqs, fields, counts), nothing rendered */
	int dead;                   /* the completion moved the job to the DLQ (set by the commit) */
	int64_t retry_at_us;        /* the completion's next attempt for the job (set by the commit) */
	char *job_id;               /* owned: for the log and the escalation hook */
	char *kind;                 /* owned */
	int finished;               /* done callback has run */
	int superseded;             /* an L&D referral whose record closed before the opening: taken out, not sent */
	struct s_done *prev, *next; /* the live list: started, not yet finished */
};

struct yj_outbox {
	struct yj_core *core;       /* borrowed */
	struct s_rcpt *rcpts;       /* owned, n_rcpts */
	size_t n_rcpts;
	struct s_done **done;       /* finished, not yet committed; owned */
	size_t n_done, cap_done;
	int64_t timer;              /* tick timer id */
	int64_t more_timer;         /* > 0: a pass cut short goes on at once (S_PASS_BUDGET_MS) */
	uint64_t in_flight;
	uint64_t dead_lettered;     /* since start */
	uint64_t (*attempts)[YJ_DELIVERY_RESULTS]; /* owned: per adapter, per result */
	int dispatching;            /* guards re-entry from synchronous completions */
	unsigned pass;              /* dispatch passes so far */
	struct s_done *live;        /* deliveries under way, freed at stop if never finished */
	yj_outbox_dead_fn dead_fn;  /* the escalation hook, may be NULL */
	void *dead_arg;
	struct s_position *positions; /* owned, n_positions: written with the next completions */
	size_t n_positions;
	int draining;               /* yj_outbox_drain: the daemon is stopping, start nothing new */
	struct yj_digestjobs *digestjobs; /* owned: digest jobs being built */
};

void yj_notification_id(const struct yj_config *cfg, uint64_t n, char *buf, size_t size)
{
	snprintf(buf, size, "%s-%012" PRIu64, cfg->deployment_id, n);
}

void yj_job_id(const struct yj_config *cfg, const Yjlink__V1__Notification *n, char *buf, size_t size)
{
	if (n->digest && n->digest->id)
		snprintf(buf, size, "%s", n->digest->id);
	else if (n->report && n->report->id)
		snprintf(buf, size, "%s", n->report->id);
	else
		yj_notification_id(cfg, n->number, buf, size);
}

uint64_t yj_outbox_attempts(const struct yj_outbox *ob, size_t adapter, enum yj_delivery_result result)
{
	if (!ob || adapter >= ob->core->n_adapters || (unsigned)result >= YJ_DELIVERY_RESULTS)
		return 0;
	return ob->attempts[adapter][result];
}

/* Index of number in rs->started, or where it would go (*found 0). */
static unsigned s_started_find(const struct s_rcpt *rs, uint64_t number, int *found)
{
	unsigned lo = 0, hi = rs->n_started;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (rs->started[mid] < number)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < rs->n_started && rs->started[lo] == number;
	return lo;
}

static int s_started_has(const struct s_rcpt *rs, uint64_t number)
{
	int found;
	s_started_find(rs, number, &found);
	return found;
}

/* Room for one more number in rs->started. */
static int s_started_reserve(struct s_rcpt *rs)
{
	if (rs->n_started < rs->cap_started)
		return 0;
	unsigned ncap = rs->cap_started ? rs->cap_started * 2 : 8;
	uint64_t *nv = realloc(rs->started, ncap * sizeof(*nv));
	if (!nv)
		return YJ_ENOMEM;
	rs->started = nv;
	rs->cap_started = ncap;
	return 0;
}

static int s_started_add(struct s_rcpt *rs, uint64_t number)
{
	int found;
	unsigned at = s_started_find(rs, number, &found);
	if (found)
		return 0;
	if (s_started_reserve(rs))
		return YJ_ENOMEM;
	memmove(rs->started + at + 1, rs->started + at, (rs->n_started - at) * sizeof(*rs->started));
	rs->started[at] = number;
	rs->n_started++;
	return 0;
}

static void s_started_del(struct s_rcpt *rs, uint64_t number)
{
	int found;
	unsigned at = s_started_find(rs, number, &found);
	if (!found)
		return;
	memmove(rs->started + at, rs->started + at + 1, (rs->n_started - at - 1) * sizeof(*rs->started));
	rs->n_started--;
}

/* Jobs recipient id may have under way: its adapter's window, or ours. */
static unsigned s_window(const struct yj_outbox *ob, const char *id)
{
	const struct yj_config *cfg = ob->core->cfg;
	const struct yj_recipient *r = yj_config_recipient(cfg, id);
	if (!r || r->output < 0 || (size_t)r->output >= ob->core->n_adapters)
		return S_WINDOW;
	unsigned w = ob->core->adapters[r->output]->window;
	return w ? w : S_WINDOW;
}

static struct s_rcpt *s_rcpt(struct yj_outbox *ob, const char *id)
{
	for (size_t i = 0; i < ob->n_rcpts; i++) {
		if (!strcmp(ob->rcpts[i].id, id))
			return &ob->rcpts[i];
	}
	struct s_rcpt *nr = realloc(ob->rcpts, (ob->n_rcpts + 1) * sizeof(*nr));
	if (!nr)
		return NULL;
	ob->rcpts = nr;
	struct s_rcpt *r = &ob->rcpts[ob->n_rcpts];
	memset(r, 0, sizeof(*r));
	r->due_again_us = INT64_MAX;
	if (!(r->id = strdup(id)))
		return NULL;
	ob->n_rcpts++;
	return r;
}

/* --- the notification body --- */

struct s_filter {
	const struct yj_recipient *r;
	int held;                   /* live investigation not released */
	cJSON *fields;              /* collects supplied paths, may be NULL */
};

static int s_allow(void *arg, const char *path)
{
	struct s_filter *f = arg;
	if (f->held && yj_route_withheld(path))
		return 0;
	if (!yj_route_allowed(f->r, path))
		return 0;
	if (f->fields)
		cJSON_AddItemToArray(f->fields, cJSON_CreateString(path));
	return 1;
}

/* What a notice to the duty recipient or an officer is about (routing.md
 * "Practice rules"): metadata of the flow, never the child's data, which
 * comes only through the event under the recipient's own allowlist. */
static void s_about_json(const struct yj_config *cfg, const Yjlink__V1__Notification *n, cJSON *o)
{
	char id[96];
	cJSON *a = cJSON_AddObjectToObject(o, "about");
	cJSON_AddStringToObject(a, "reason", n->reason);
	if (n->has_about_number && n->about_number) {
		yj_notification_id(cfg, n->about_number, id, sizeof(id));
		cJSON_AddStringToObject(a, "notification_id", id);
	}
	if (n->about_recipient && *n->about_recipient) {
		const struct yj_recipient *r = yj_config_recipient(cfg, n->about_recipient);
		cJSON_AddStringToObject(a, "recipient", n->about_recipient);
		if (r && *r->name)
			cJSON_AddStringToObject(a, "recipient_name", r->name);
	}
	if (n->about_rule && *n->about_rule)
		cJSON_AddStringToObject(a, "rule", n->about_rule);
	if (n->about_feed && *n->about_feed)
		cJSON_AddStringToObject(a, "feed", n->about_feed);
	if (n->has_about_at_us && n->about_at_us)
		cJSON_AddItemToObject(a, n->about_feed && *n->about_feed ? "last_message_at" : "since", yj_time_to_json(n->about_at_us));
	if (n->detail && *n->detail)
		cJSON_AddStringToObject(a, !strcmp(n->reason, "hold_waiting")   ? "rules_waiting"
					   : !strcmp(n->reason, "audit_anchor") ? "audit_head"
										: "detail",
					n->detail);
}

/* The head every notification has (interfaces.md §3). */
static cJSON *s_note_head(const struct yj_config *cfg, const Yjlink__V1__Notification *n)
{
	char id[96];
	cJSON *o = cJSON_CreateObject();
	yj_notification_id(cfg, n->number, id, sizeof(id));
	cJSON_AddStringToObject(o, "notification_id", id);
	cJSON_AddStringToObject(o, "kind", n->kind ? n->kind : "");
	cJSON_AddStringToObject(o, "recipient", n->recipient ? n->recipient : "");
	cJSON_AddItemToObject(o, "created_at", yj_time_to_json(n->created_at_us));
	cJSON_AddStringToObject(o, "rule", n->rule ? n->rule : "");
	cJSON_AddStringToObject(o, "legal_basis", n->legal_basis ? n->legal_basis : "");
	cJSON_AddStringToObject(o, "classification", "OFFICIAL-SENSITIVE");
	return o;
}

cJSON *yj_notification_json(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *n,
			    const struct yj_recipient *r, cJSON *fields)
{
	Yjlink__V1__Record *rec = NULL;
	if (!n->has_seq || !n->seq) {
		if (!n->reason || !*n->reason)
			return NULL;
		/* A notice about a feed: there is no event to show. */
		cJSON *o = s_note_head(cfg, n);
		s_about_json(cfg, n, o);
		return o;
	}
	rec = yj_events_get_record(txn, n->seq);
	if (!rec || !rec->event) {
		yjlink__v1__record__free_unpacked(rec, NULL);
		return NULL;
	}
	struct s_filter f = { r, yj_route_is_held(txn, n->seq), fields };
	cJSON *o = s_note_head(cfg, n);
	if (n->has_out_of_hours && n->out_of_hours)
		cJSON_AddBoolToObject(o, "out_of_hours", 1);
	if (f.held)
		cJSON_AddBoolToObject(o, "withheld", 1);
	if (n->reason && *n->reason)
		s_about_json(cfg, n, o);
	char status[64];
	int64_t since = 0;
	if (r && r->kind == YJ_RCPT_LIAISON_DIVERSION &&
	    !yj_route_custody_now(txn, rec->seq, rec->event, status, sizeof(status), &since)) {
		/* routing.md: what L&D is sent says where the record stands now. */
		cJSON_AddStringToObject(o, "status_now", status);
		if (since)
			cJSON_AddItemToObject(o, "detained_since", yj_time_to_json(since));
	}
	cJSON *ev = yj_event_to_json(rec->event, rec->seq, rec->stored_at_us, s_allow, &f);
	yjlink__v1__record__free_unpacked(rec, NULL);
	if (!ev) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddItemToObject(o, "event", ev);
	return o;
}

/* --- dispatch --- */

static void s_done_free(struct s_done *dn)
{
	if (!dn)
		return;
	yj_digest_content_free(&dn->what);
	free(dn->detail);
	free(dn->address);
	free(dn->job_id);
	free(dn->kind);
	free(dn);
}

static void s_on_done(void *arg, enum yj_delivery_result result, const char *detail, const char *address)
{
	struct s_done *dn = arg;
	struct yj_outbox *ob = dn->ob;
	dn->result = result;
	dn->detail = strdup(detail ? detail : "");
	dn->address = strdup(address ? address : "");
	dn->finished = 1;
	if (dn->prev)
		dn->prev->next = dn->next;
	else if (ob->live == dn)
		ob->live = dn->next;
	if (dn->next)
		dn->next->prev = dn->prev;
	dn->prev = dn->next = NULL;
	if (ob->n_done == ob->cap_done) {
		size_t ncap = ob->cap_done ? ob->cap_done * 2 : 64;
		struct s_done **nd = realloc(ob->done, ncap * sizeof(*nd));
		if (!nd) {
			/* Without memory the completion is lost: the job stays in the
			 * outbox and goes again (same id) after a restart. */
			yj_err("outbox: out of memory recording a completion");
			s_done_free(dn);
			return;
		}
		ob->done = nd;
		ob->cap_done = ncap;
	}
	ob->done[ob->n_done++] = dn;
	yj_loop_wake(ob->core->loop);
}

/* The message of a notification job: its JSON as the recipient may see it. */
static int s_build_notification(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *n,
				const struct yj_recipient *r, struct s_done *dn, char **json, char *feed, size_t feed_size)
{
	cJSON *body;
	if (!(dn->what.fields = cJSON_CreateArray()) || !(dn->what.seqs = malloc(sizeof(uint64_t))))
		return YJ_ENOMEM;
	if (!(body = yj_notification_json(txn, cfg, n, r, dn->what.fields)))
		return YJ_ENOENT;
	dn->what.seqs[0] = n->seq;
	dn->what.n_seqs = 1;
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(body, "event"), "feed");
	snprintf(feed, feed_size, "%s", cJSON_IsString(f) ? f->valuestring : "");
	*json = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	return *json ? 0 : YJ_ENOMEM;
}

/* dn's job is under way: never started twice, freed at stop if unfinished. */
static void s_under_way(struct yj_outbox *ob, struct s_rcpt *rs, struct s_done *dn)
{
	/* Room was made before the start (s_dispatch_one): this cannot fail. */
	s_started_add(rs, dn->number);
	ob->in_flight++;
	dn->next = ob->live;
	if (ob->live)
		ob->live->prev = dn;
	ob->live = dn;
}

/* A liaison_diversion referral deferred to the service's opening goes then
 * only while the custody record is still open (its latest status detained). */
static int s_superseded(struct yj_txn *txn, const Yjlink__V1__Notification *n, const struct yj_recipient *r)
{
	if (!r || r->kind != YJ_RCPT_LIAISON_DIVERSION || !n->has_out_of_hours || !n->out_of_hours || !n->kind ||
	    !n->rule || strcmp(n->kind, n->rule))
		return 0;
	Yjlink__V1__Record *rec = yj_events_get_record(txn, n->seq);
	char status[64];
	int64_t since = 0;
	int closed = rec && rec->event && !yj_route_custody_now(txn, rec->seq, rec->event, status, sizeof(status), &since) &&
		     strcmp(status, "detained") != 0;
	yjlink__v1__record__free_unpacked(rec, NULL);
	return closed;
}

/* yj_message.write_part of a digest job: the helper's file holds the part. */
static int s_digest_part(void *arg, unsigned part, FILE *f)
{
	return yj_digest_built_write(arg, part, f);
}

/* A digest job's helper has built it (or failed): hand it to its adapter.
 * The job has been under way since the helper started (s_dispatch_one). */
static void s_digest_built(void *arg, struct yj_digest_built *b)
{
	struct s_done *dn = arg;
	struct yj_outbox *ob = dn->ob;
	char *parts_in_memory[4] = { NULL, NULL, NULL, NULL };
	size_t lens[4] = { 0, 0, 0, 0 };
	int rc = 0;

	/* Stopping: the job stays in the outbox and goes after the restart
	 * (yj_outbox_stop frees dn with the rest under way). */
	if (b->rc == YJ_ESHUTDOWN || ob->draining)
		return;
	const struct yj_recipient *r = yj_config_recipient(ob->core->cfg, ob->rcpts[dn->rcpt].id);
	void *astate = r && r->output == dn->adapter && dn->adapter >= 0 ? ob->core->adapter_state[dn->adapter] : NULL;
	if (b->rc) {
		s_on_done(dn, YJ_DELIVERY_RETRY, b->err, "");
		goto kick;
	}
	if (!astate) {
		s_on_done(dn, YJ_DELIVERY_RETRY, "the recipient's output changed while its digest was built", "");
		goto kick;
	}
	const struct yj_adapter *a = ob->core->adapters[dn->adapter];
	unsigned streamed = b->parts & a->digest_streamed & ~(unsigned)YJ_DIGEST_JSON;
	for (unsigned i = 0; !rc && i < 4; i++) {
		if ((b->parts & ~streamed) & (1u << i))
			rc = yj_digest_built_read(b, 1u << i, &parts_in_memory[i], &lens[i]);
	}
	if (rc) {
		s_on_done(dn, YJ_DELIVERY_RETRY, "the digest's renderings cannot be read back: see the daemon's log", "");
		goto kick;
	}
	struct yj_message m = {
		.kind = YJ_MESSAGE_DIGEST,
		.id = dn->job_id,
		.number = dn->number,
		.kind_name = dn->kind,
		.recipient = r,
		.settings = r->output_settings,
		.text = parts_in_memory[0],
		.html = parts_in_memory[1],
		.csv = parts_in_memory[2],
		.csv_len = lens[2],
		.json = parts_in_memory[3],
		.json_len = lens[3],
		.csv_name = b->meta.csv_name,
		.date = b->meta.date,
		.window_from = b->meta.window_from,
		.window_to = b->meta.window_to,
		.children = b->meta.children,
		.events = b->meta.events,
		.write_part = streamed ? s_digest_part : NULL,
		.write_arg = b,
	};
	/* What the audit needs outlives the rendering. */
	dn->what.seqs = b->meta.seqs;
	dn->what.n_seqs = b->meta.n_seqs;
	dn->what.fields = b->meta.fields;
	dn->what.children = b->meta.children;
	dn->what.events = b->meta.events;
	b->meta.seqs = NULL;
	b->meta.n_seqs = 0;
	b->meta.fields = NULL;
	if ((rc = a->deliver(astate, &m, s_on_done, dn)))
		s_on_done(dn, YJ_DELIVERY_RETRY, yj_strerror(rc), "");
kick:
	for (int i = 0; i < 4; i++)
		free(parts_in_memory[i]);
	/* A helper is free for the next digest due. */
	yj_outbox_kick(ob);
}

struct s_dispatch {
	struct yj_outbox *ob;
	int64_t now;
	int started;
	int64_t until_ms;           /* the pass's budget ends (yj_loop_now_ms) */
	unsigned tries;             /* jobs looked at by this pass */
	int out_of_time;            /* the pass stopped at its budget: more may be due */
};

/* Whether the pass may look at one more job: always at least one. */
static int s_pass_has_time(struct s_dispatch *ds)
{
	if (ds->tries && yj_loop_now_ms() >= ds->until_ms) {
		ds->out_of_time = 1;
		return 0;
	}
	ds->tries++;
	return 1;
}

/* Start job number of recipient rcpt_id if it is due. */
static int s_dispatch_one(struct yj_txn *txn, struct s_dispatch *ds, const char *rcpt_id, uint64_t number)
{
	struct yj_outbox *ob = ds->ob;
	const struct yj_config *cfg = ob->core->cfg;
	struct s_rcpt *rs = s_rcpt(ob, rcpt_id);
	struct s_done *dn = NULL;
	struct yj_digest_content dc;
	char *json = NULL, feed[32] = "";
	int rc = 0;

	memset(&dc, 0, sizeof(dc));
	if (!rs || rs->n_started >= s_window(ob, rcpt_id) || rs->next_attempt_us > ds->now)
		return 0;
	if (s_started_has(rs, number))
		return 0; /* under way, or delivered and waiting for its commit */
	/* Room for it in the started set, so that the start cannot fail half-way. */
	if (s_started_reserve(rs))
		return YJ_ENOMEM;
	Yjlink__V1__Notification *n = yj_notes_get(txn, YJ_NOTES_OUTBOX, number);
	if (!n)
		return 0;
	if ((n->has_not_before_us && n->not_before_us > ds->now) || (n->has_next_attempt_us && n->next_attempt_us > ds->now)) {
		if (n->has_next_attempt_us && n->next_attempt_us > rs->next_attempt_us)
			rs->next_attempt_us = n->next_attempt_us;
		int64_t due = n->has_not_before_us ? n->not_before_us : 0;
		if (n->has_next_attempt_us && n->next_attempt_us > due)
			due = n->next_attempt_us;
		if (due < rs->due_again_us)
			rs->due_again_us = due;
		goto out;
	}
	if (n->digest && yj_digestjobs_running(ob->digestjobs) >= YJ_DIGESTJOB_MAX)
		goto out; /* every helper busy: the end of one kicks the outbox (s_digest_built) */
	const struct yj_recipient *r = yj_config_recipient(cfg, rcpt_id);
	/* The config knows outputs by their settings only; its owners are the
	 * core's adapters in the same order (main.c), so r->output names the adapter. */
	const struct yj_adapter *a = r && yj_config_output(cfg, r) ? ob->core->adapters[r->output] : NULL;
	void *astate = a ? ob->core->adapter_state[r->output] : NULL;
	char id[200];
	yj_job_id(cfg, n, id, sizeof(id));
	rc = YJ_ENOMEM;
	if (!(dn = calloc(1, sizeof(*dn))) || !(dn->job_id = strdup(id)) || !(dn->kind = strdup(n->kind ? n->kind : "")))
		goto out;
	dn->ob = ob;
	dn->rcpt = (size_t)(rs - ob->rcpts);
	dn->number = n->number;
	dn->adapter = a && astate ? r->output : -1;
	struct yj_message m = {
		.kind = n->digest ? YJ_MESSAGE_DIGEST : n->report ? YJ_MESSAGE_REPORT : YJ_MESSAGE_NOTIFICATION,
		.id = id,
		.number = n->number,
		.kind_name = n->kind ? n->kind : "",
		.recipient = r,
		.settings = r ? r->output_settings : NULL,
	};
	if (!a || !astate) {
		/* Reconcile keeps such jobs unroutable; an adapter that did not start
		 * must still show: fail the attempt, so it backs off and ages. */
		if (!rs->warned)
			yj_warn("outbox: %s: no running output adapter for transport '%s'; its jobs wait and are retried",
				rcpt_id, r ? r->transport : "?");
		rs->warned = 1;
		rc = 0;
		goto start_failed;
	}
	rs->warned = 0;
	if (n->digest) {
		/* Built in a helper (digestjob.h): the job is under way from now,
		 * and goes to its adapter when the helper has built it. */
		unsigned parts = a->digest_parts ? a->digest_parts : YJ_DIGEST_ALL;
		s_under_way(ob, rs, dn);
		if ((rc = yj_digestjob_start(ob->digestjobs, rcpt_id, n->digest, parts, s_digest_built, dn))) {
			char why[200];
			snprintf(why, sizeof(why), "the digest's build cannot be started (%s): see the daemon's log",
				 yj_strerror(rc));
			s_on_done(dn, YJ_DELIVERY_RETRY, why, "");
		}
		rc = 0;
		dn = NULL;
		ds->started++;
		goto out;
	} else if (n->report) {
		/* Built and rendered when it fell due (boardpack.c): every retry
		 * sends the same figures. Aggregate data: no event, no field of one. */
		const Yjlink__V1__BoardReport *b = n->report;
		char month[8] = "";
		snprintf(month, sizeof(month), "%.7s", b->from ? b->from : "");
		if (!(dc.csv_name = malloc(200)) || !(dn->what.fields = cJSON_CreateArray())) {
			rc = YJ_ENOMEM;
			goto out;
		}
		snprintf(dc.date, sizeof(dc.date), "%s", month);
		rc = 0;
		snprintf(dc.csv_name, 200, "yjlink-board-%s-%s.csv", b->scope && !strncmp(b->scope, "yjs:", 4) ? b->scope + 4 : "force",
			 month);
		cJSON_AddItemToArray(dn->what.fields, cJSON_CreateString("aggregate:board_report"));
		m.json = b->json ? b->json : "{}";
		m.json_len = strlen(m.json);
		m.html = b->html ? b->html : "";
		m.csv = b->csv ? b->csv : "";
		m.csv_len = strlen(m.csv);
		m.csv_name = dc.csv_name;
		m.date = dc.date;
		m.window_from = b->from;
		m.window_to = b->to;
		m.text = "Board report: the figures are in the HTML part and the attached CSV. Counts under the "
			 "suppression threshold are shown as <5 (or the threshold in force), and so is any total or share "
			 "they could be worked out from.";
	} else if (s_superseded(txn, n, r)) {
		/* routing.md "L&D gets current, not historic, referrals". */
		dn->superseded = 1;
		s_under_way(ob, rs, dn);
		s_on_done(dn, YJ_DELIVERY_OK, "superseded: the custody record closed before the opening", "");
		dn = NULL;
		rc = 0;
		goto out;
	} else {
		rc = s_build_notification(txn, cfg, n, r, dn, &json, feed, sizeof(feed));
		m.feed = feed;
		m.json = json;
		m.json_len = json ? strlen(json) : 0;
	}
	if (rc == YJ_ENOENT) {
		/* The event is gone (erased by retention): it can never be delivered. */
		s_under_way(ob, rs, dn);
		s_on_done(dn, YJ_DELIVERY_FATAL, "the event is no longer stored", "");
		dn = NULL;
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
start_failed:
	s_under_way(ob, rs, dn);
	if (!a || !astate) {
		s_on_done(dn, YJ_DELIVERY_RETRY, "no running output adapter for this transport", "");
	} else if ((rc = a->deliver(astate, &m, s_on_done, dn))) {
		/* Not even started: try again after a backoff, like a RETRY. */
		s_on_done(dn, YJ_DELIVERY_RETRY, yj_strerror(rc), "");
	}
	rc = 0;
	dn = NULL;
	ds->started++;
out:
	s_done_free(dn);
	yj_digest_content_free(&dc);
	cJSON_free(json);
	yjlink__v1__notification__free_unpacked(n, NULL);
	return rc;
}

/* One walk over a recipient's jobs (s_dispatch_rcpt), on one cursor. */
struct s_walk {
	struct yj_txn *txn;
	struct s_dispatch *ds;
	const char *rcpt;
	unsigned window, tries, skips;
	int rc;
};

static int s_walk_cb(void *arg, uint64_t number, const struct yj_note_when *w)
{
	struct s_walk *k = arg;
	int64_t now = k->ds->now;
	struct s_rcpt *rs = s_rcpt(k->ds->ob, k->rcpt);
	if (!rs) {
		k->rc = YJ_ENOMEM;
		return 1;
	}
	if (rs->n_started >= k->window || k->tries >= 2 * k->window)
		return 1;
	if (w->known && w->not_before_us > now && w->next_attempt_us <= now) {
		/* Not due yet, and not a retry (which sets the backoff): passed
		 * over on its index entry alone, unread. */
		if (k->skips++ >= S_SKIP_MAX)
			return 1;
		if (w->not_before_us < rs->due_again_us)
			rs->due_again_us = w->not_before_us;
		rs->walked_to = number + 1;
		return 0;
	}
	if (!s_pass_has_time(k->ds))
		return 1; /* walked_to stays: the next pass resumes here */
	k->tries++;
	unsigned before = rs->n_started;
	if ((k->rc = s_dispatch_one(k->txn, k->ds, k->rcpt, number)))
		return 1;
	if (!(rs = s_rcpt(k->ds->ob, k->rcpt))) {
		k->rc = YJ_ENOMEM;
		return 1;
	}
	if (rs->n_started == before && rs->next_attempt_us > now)
		return 1; /* backing off: this job was not looked at, the next walk starts with it */
	rs->walked_to = number + 1;  /* started, under way, gone, or not due (due_again_us) */
	return 0;
}

/* One recipient's due jobs: the window's worth, or only its oldest while
 * it is in order mode. */
static int s_dispatch_rcpt(struct yj_txn *txn, struct s_dispatch *ds, const char *rcpt)
{
	struct s_rcpt *rs = s_rcpt(ds->ob, rcpt);
	uint64_t number = 0;
	int rc;
	if (!rs)
		return YJ_ENOMEM;
	rs->seen_pass = ds->ob->pass;
	if (rs->ordered) {
		rs->resume = 0;  /* back in window mode, the first walk is a full one */
		if (rs->n_started)
			return 0;
		rc = yj_notes_recipient_next(txn, rcpt, 0, &number);
		return rc == YJ_ENOENT || (!rc && !s_pass_has_time(ds)) ? 0 : rc ? rc : s_dispatch_one(txn, ds, rcpt, number);
	}
	/* Fill the window with the oldest not yet started. A walk need not pass
	 * again the jobs under way (a subscription may hold thousands) nor
	 * those not yet due: it resumes where the last one stopped (see struct
	 * s_rcpt); from the start when one passed over falls due, after a
	 * kick that may have put a job back below (a dead letter retried, a
	 * reconcile), and now and then in any case. */
	struct s_walk k = { txn, ds, rcpt, s_window(ds->ob, rcpt), 0, 0, 0 };
	uint64_t from = 0;
	if (rs->resume && ds->now < rs->full_walk_at_us && ds->now < rs->due_again_us) {
		from = rs->walked_to;
	} else {
		rs->full_walk_at_us = ds->now + S_FULL_WALK_US;
		rs->due_again_us = INT64_MAX;
		rs->walked_to = 0;
		rs->resume = 1;
	}
	rc = yj_notes_recipient_each(txn, rcpt, from, s_walk_cb, &k);
	return rc ? rc : k.rc;
}

static int s_dispatch_read(struct yj_txn *txn, void *arg)
{
	struct s_dispatch *ds = arg;
	char rcpt[S_RCPT_MAX], prev[S_RCPT_MAX];
	int have_prev = 0;
	for (;;) {
		int rc = yj_notes_next_recipient(txn, have_prev ? prev : NULL, rcpt, sizeof(rcpt));
		if (rc == YJ_ENOENT)
			return 0;
		if (rc)
			return rc;
		if ((rc = s_dispatch_rcpt(txn, ds, rcpt)))
			return rc;
		if (ds->out_of_time)
			return 0;
		memcpy(prev, rcpt, sizeof(prev));
		have_prev = 1;
	}
}

/* Every recipient's next walk from its oldest job. */
static void s_rewalk(struct yj_outbox *ob)
{
	for (size_t i = 0; i < ob->n_rcpts; i++)
		ob->rcpts[i].resume = 0;
}

static void s_dispatch(struct yj_outbox *ob);

static int s_more(struct yj_loop *loop, void *arg)
{
	(void)loop;
	struct yj_outbox *ob = arg;
	ob->more_timer = 0;
	s_dispatch(ob);
	return 0;
}

static void s_dispatch(struct yj_outbox *ob)
{
	if (ob->dispatching || ob->draining)
		return;
	ob->dispatching = 1;
	ob->pass++;
	struct s_dispatch ds = { ob, yj_clock_now_us(), 0, yj_loop_now_ms() + S_PASS_BUDGET_MS, 0, 0 };
	int rc = yj_store_read(ob->core->store, s_dispatch_read, &ds);
	if (rc < 0)
		yj_warn("outbox: cannot read the outbox: %s", yj_strerror(rc));
	if (ds.out_of_time) {
		/* A zero-delay timer: the loop polls its sockets before it runs. */
		if (ob->more_timer <= 0)
			ob->more_timer = yj_loop_timer(ob->core->loop, 0, 0, s_more, ob);
		ob->dispatching = 0;
		return; /* recipients not reached this pass did not show they had caught up */
	}
	/* A recipient in order mode with nothing left has caught up. */
	for (size_t i = 0; rc >= 0 && i < ob->n_rcpts; i++) {
		if (ob->rcpts[i].ordered && ob->rcpts[i].n_started == 0 && ob->rcpts[i].seen_pass != ob->pass)
			ob->rcpts[i].ordered = 0;
	}
	ob->dispatching = 0;
}

int yj_outbox_pass_pending(const struct yj_outbox *ob) { return ob && ob->more_timer > 0; }

size_t yj_outbox_digests_building(const struct yj_outbox *ob) { return ob ? yj_digestjobs_running(ob->digestjobs) : 0; }

void yj_outbox_drain(struct yj_outbox *ob)
{
	if (ob)
		ob->draining = 1;
}

void yj_outbox_kick(struct yj_outbox *ob)
{
	if (!ob)
		return;
	s_rewalk(ob);
	s_dispatch(ob);
}

void yj_outbox_kick_appended(struct yj_outbox *ob)
{
	if (ob)
		s_dispatch(ob);
}

static int s_tick(struct yj_loop *loop, void *arg)
{
	(void)loop;
	s_dispatch(arg);
	return 0;
}

/* --- completions --- */

int64_t yj_outbox_backoff_us(const struct yj_config *cfg, uint32_t attempts, uint32_t (*rnd)(uint32_t bound))
{
	int64_t cap = cfg->delivery_backoff_max_ms, d = cfg->delivery_backoff_min_ms;
	for (uint32_t i = 1; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	/* Full jitter, with a floor so a flapping receiver is not hammered. */
	int64_t floor = cfg->delivery_backoff_min_ms / 2;
	return (floor + (int64_t)rnd((uint32_t)(d > floor ? d - floor : 1))) * 1000;
}

static uint32_t s_random(uint32_t bound) { return randombytes_uniform(bound); }

/* One audit record per disclosure: metadata only (routing.md "Audit"). */
static int s_audit_delivery(struct yj_txn *txn, const Yjlink__V1__Notification *n, const struct s_done *dn)
{
	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	static char *const digest_feeds[] = { "custody", "arrest", "voluntary_interview", "outcome" };
	size_t nf = (size_t)cJSON_GetArraySize(dn->what.fields);
	char **fields = calloc(nf + 1, sizeof(char *));
	char *feeds[1] = { NULL };
	Yjlink__V1__Record *rec = NULL;
	const Yjlink__V1__Digest *d = n->digest;
	int rc = 0;
	if (!fields)
		return YJ_ENOMEM;
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, dn->what.fields) {
		fields[i++] = it->valuestring;
	}
	a.has_at_us = 1;
	a.at_us = yj_clock_now_us();
	a.action = "disclosure";
	a.actor = d && d->resend && d->actor ? d->actor : "yjlinkd";
	a.recipient = n->recipient;
	a.address = dn->address;
	a.rule = n->rule;
	a.legal_basis = n->legal_basis;
	a.n_seqs = dn->what.n_seqs;
	a.seqs = dn->what.seqs;
	a.n_fields = nf;
	a.fields = fields;
	a.notification_id = dn->job_id;
	/* The agreement in force when it went: the config may have a new one by the time anyone asks. */
	const struct yj_recipient *dr = yj_config_recipient(dn->ob->core->cfg, n->recipient ? n->recipient : "");
	a.dsa = dr && dr->dsa_id ? dr->dsa_id : NULL;
	if (d || n->report) {
		a.n_feeds = 4;
		a.feeds = (char **)digest_feeds;
		a.reason = n->report ? "board pack: aggregate figures only (small numbers suppressed)"
				     : d->resend ? "digest resent by an operator" : "";
	} else {
		rec = yj_events_get_record(txn, n->seq);
		feeds[0] = rec && rec->feed ? rec->feed : "";
		a.n_feeds = 1;
		a.feeds = feeds;
	}
	rc = yj_audit_append(txn, &a);
	yjlink__v1__record__free_unpacked(rec, NULL);
	free(fields);
	/* Who has had each event: a hold release goes to them. */
	for (size_t k = 0; !rc && k < dn->what.n_seqs; k++)
		rc = yj_disclosed_add(txn, dn->what.seqs[k], n->recipient);
	return rc;
}

static int s_complete_one(struct yj_txn *txn, struct yj_outbox *ob, struct s_done *dn)
{
	const struct yj_config *cfg = ob->core->cfg;
	int rc = 0;
	dn->dead = 0;
	dn->retry_at_us = 0;
	Yjlink__V1__Notification *n = yj_notes_get(txn, YJ_NOTES_OUTBOX, dn->number);
	if (!n)
		return yj_txn_rc(txn); /* dropped by an operator meanwhile, or a store error */
	int64_t now = yj_clock_now_us();
	char *saved_error = n->last_error; /* unpacked with n: back before the free */
	if (dn->superseded) {
		/* Not a disclosure: no audit record; counted. */
		rc = yj_notes_del(txn, YJ_NOTES_OUTBOX, n->number);
		if (!rc)
			yj_practice_count(ob->core->practice, YJ_PRACTICE_SUPERSEDED, 1);
		if (!rc)
			yj_info("outbox: %s to %s superseded: the custody record closed before the opening", dn->job_id,
				n->recipient ? n->recipient : "");
	} else if (dn->result == YJ_DELIVERY_OK) {
		rc = yj_notes_del(txn, YJ_NOTES_OUTBOX, n->number);
		if (!rc)
			rc = s_audit_delivery(txn, n, dn);
		if (!rc && n->digest)
			rc = yj_digest_delivered(txn, n, &dn->what, now);
	} else {
		n->has_attempts = 1;
		n->attempts++;
		n->last_error = dn->detail;
		int give_up = dn->result == YJ_DELIVERY_FATAL || now - n->created_at_us > cfg->delivery_max_age_s * 1000000;
		const struct yj_recipient *r = yj_config_recipient(cfg, n->recipient ? n->recipient : "");
		if (!give_up && (!r || r->output < 0)) {
			/* A reload took its destination away while it was under way. */
			rc = yj_notes_del(txn, YJ_NOTES_OUTBOX, n->number);
			if (!rc)
				rc = yj_notes_put(txn, YJ_NOTES_UNROUTABLE, n);
		} else if (give_up) {
			n->has_failed_at_us = 1;
			n->failed_at_us = now;
			n->has_next_attempt_us = 0;
			/* Told even when it was told before that it waited: this is news. */
			n->has_escalated_at_us = 1;
			n->escalated_at_us = now;
			rc = yj_route_escalate(txn, cfg, n, "dead_letter", dn->detail, now);
			if (!rc && yj_config_duty(cfg) && strcmp(n->recipient ? n->recipient : "", cfg->deployment_duty))
				yj_practice_count(ob->core->practice, YJ_PRACTICE_DEAD_ESCALATED, 1);
			if (!rc)
				rc = yj_notes_del(txn, YJ_NOTES_OUTBOX, n->number);
			if (!rc)
				rc = yj_notes_put(txn, YJ_NOTES_DLQ, n);
			dn->dead = !rc;
		} else {
			n->has_next_attempt_us = 1;
			n->next_attempt_us = now + yj_outbox_backoff_us(cfg, n->attempts, s_random);
			dn->retry_at_us = n->next_attempt_us;
			rc = yj_notes_put(txn, YJ_NOTES_OUTBOX, n);
		}
	}
	n->last_error = saved_error;
	yjlink__v1__notification__free_unpacked(n, NULL);
	return rc;
}

static int s_complete(struct yj_txn *txn, void *arg)
{
	struct yj_outbox *ob = arg;
	for (size_t i = 0; i < ob->n_done; i++) {
		int rc = s_complete_one(txn, ob, ob->done[i]);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < ob->n_positions; i++) {
		int rc = yj_positions_put(txn, ob->positions[i].key, ob->positions[i].val, ob->positions[i].len);
		if (rc)
			return rc;
	}
	return 0;
}

int yj_outbox_position(struct yj_outbox *ob, const char *key, const void *val, size_t len)
{
	if (!ob || !key || strlen(key) > YJ_POSITION_KEY_MAX || !val || !len || len > YJ_POSITION_MAX)
		return YJ_EINVAL;
	/* The newest value of a key replaces what waits. */
	struct s_position *p = NULL;
	for (size_t i = 0; i < ob->n_positions && !p; i++) {
		if (!strcmp(ob->positions[i].key, key))
			p = &ob->positions[i];
	}
	if (!p) {
		struct s_position *np = realloc(ob->positions, (ob->n_positions + 1) * sizeof(*np));
		if (!np)
			return YJ_ENOMEM;
		ob->positions = np;
		p = &ob->positions[ob->n_positions++];
		snprintf(p->key, sizeof(p->key), "%s", key);
	}
	memcpy(p->val, val, len);
	p->len = len;
	yj_loop_wake(ob->core->loop);
	return 0;
}

static const char *s_transport(const struct yj_outbox *ob, int adapter)
{
	return adapter >= 0 ? ob->core->adapters[adapter]->conf.transport : "none";
}

int yj_outbox_flush(struct yj_outbox *ob)
{
	if (!ob || (ob->n_done == 0 && ob->n_positions == 0))
		return 0;
	int rc = yj_store_write(ob->core->store, s_complete, ob);
	if (!rc)
		ob->n_positions = 0; /* else kept for the next commit */
	int64_t now = yj_clock_now_us();
	const struct yj_config *cfg = ob->core->cfg;
	for (size_t i = 0; i < ob->n_done; i++) {
		struct s_done *dn = ob->done[i];
		struct s_rcpt *rs = &ob->rcpts[dn->rcpt];
		s_started_del(rs, dn->number);
		ob->in_flight--;
		if (dn->adapter >= 0)
			ob->attempts[dn->adapter][dn->result]++;
		if (rc) {
			/* Not recorded: it stays in the outbox and goes again, same id. */
			rs->next_attempt_us = now + 1000000;
			rs->ordered = 1;
		} else if (dn->result == YJ_DELIVERY_OK) {
			rs->next_attempt_us = 0;
			yj_info("outbox: %s delivered to %s by %s", dn->job_id, rs->id, s_transport(ob, dn->adapter));
		} else if (dn->dead) {
			rs->next_attempt_us = 0;
			ob->dead_lettered++;
			yj_warn("outbox: %s to %s failed for good (%s): dead-lettered", dn->job_id, rs->id, dn->detail);
			if (ob->dead_fn)
				ob->dead_fn(ob->dead_arg, dn->job_id, rs->id, dn->kind, dn->detail);
		} else {
			/* The recipient waits as long as its oldest job was told to: one
			 * backoff, the one in the store that `yjlinkctl outbox` shows. */
			rs->next_attempt_us = dn->retry_at_us ? dn->retry_at_us : now + cfg->delivery_backoff_min_ms * 1000;
			rs->ordered = 1;
			yj_notice("outbox: %s to %s will be retried (%s)", dn->job_id, rs->id, dn->detail);
		}
		s_done_free(dn);
	}
	ob->n_done = 0;
	if (rc)
		yj_err("outbox: cannot record deliveries: %s", yj_strerror(rc));
	s_dispatch(ob);
	return rc;
}

/* --- dead letters, reconcile, stats, describe --- */

int yj_outbox_retry_dead(struct yj_txn *txn, const struct yj_config *cfg, uint64_t number, int64_t now_us)
{
	Yjlink__V1__Notification *n = yj_notes_get(txn, YJ_NOTES_DLQ, number);
	if (!n)
		return yj_txn_rc(txn) ? yj_txn_rc(txn) : YJ_ENOENT;
	int rc = yj_notes_del(txn, YJ_NOTES_DLQ, number);
	const struct yj_recipient *r = yj_config_recipient(cfg, n->recipient ? n->recipient : "");
	char *last_error = n->last_error; /* unpacked with n: back before the free */
	n->has_attempts = 0;
	n->attempts = 0;
	n->has_next_attempt_us = 0;
	n->has_failed_at_us = 0;
	n->has_escalated_at_us = 0;
	n->escalated_at_us = 0;
	n->last_error = NULL;
	/* A retried job starts its life again: not dead-lettered for its age at
	 * once, and due when first routing would make it due now. */
	n->created_at_us = now_us;
	if (!n->digest) {
		int64_t not_before = 0;
		int ooh = 0;
		yj_route_when(r, now_us, &not_before, &ooh);
		n->has_not_before_us = not_before > 0;
		n->not_before_us = not_before;
		n->has_out_of_hours = ooh;
		n->out_of_hours = ooh ? 1 : 0;
	}
	if (!rc)
		rc = yj_notes_put(txn, r && r->output >= 0 ? YJ_NOTES_OUTBOX : YJ_NOTES_UNROUTABLE, n);
	n->last_error = last_error;
	yjlink__v1__notification__free_unpacked(n, NULL);
	return rc;
}

struct s_collect {
	uint64_t *numbers;
	size_t n, cap;
	int want_routable;          /* collect jobs whose recipient has (1) or lacks (0) a destination */
	const struct yj_config *cfg;
	const struct yj_outbox *ob;
};

/* A job under way stays where it is: its completion must find it (to audit
 * a disclosure that happened), and moves it itself if it has to go again. */
static int s_under_way_number(const struct yj_outbox *ob, uint64_t number)
{
	for (size_t i = 0; i < ob->n_rcpts; i++) {
		if (s_started_has(&ob->rcpts[i], number))
			return 1;
	}
	return 0;
}

static int s_collect_cb(void *arg, const Yjlink__V1__Notification *n)
{
	struct s_collect *c = arg;
	const struct yj_recipient *r = yj_config_recipient(c->cfg, n->recipient ? n->recipient : "");
	int routable = r && r->output >= 0;
	if (routable != c->want_routable || (!c->want_routable && s_under_way_number(c->ob, n->number)))
		return 0;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		uint64_t *nn = realloc(c->numbers, ncap * sizeof(*nn));
		if (!nn)
			return YJ_ENOMEM;
		c->numbers = nn;
		c->cap = ncap;
	}
	c->numbers[c->n++] = n->number;
	return 0;
}

struct s_reconcile {
	struct yj_outbox *ob;
	int moved;
};

static int s_reconcile_write(struct yj_txn *txn, void *arg)
{
	struct s_reconcile *rc_ = arg;
	struct s_collect c = { NULL, 0, 0, 1, rc_->ob->core->cfg, rc_->ob };
	int rc = 0;
	rc_->moved = 0;
	for (int pass = 0; pass < 2 && rc >= 0; pass++) {
		enum yj_note_queue from = pass == 0 ? YJ_NOTES_UNROUTABLE : YJ_NOTES_OUTBOX;
		enum yj_note_queue to = pass == 0 ? YJ_NOTES_OUTBOX : YJ_NOTES_UNROUTABLE;
		c.n = 0;
		c.want_routable = pass == 0;
		if ((rc = yj_notes_each(txn, from, s_collect_cb, &c)) < 0)
			break;
		for (size_t i = 0; rc >= 0 && i < c.n; i++) {
			Yjlink__V1__Notification *n = yj_notes_get(txn, from, c.numbers[i]);
			if (!n) {
				rc = yj_txn_rc(txn) ? yj_txn_rc(txn) : YJ_ESTORE;
				break;
			}
			rc = yj_notes_del(txn, from, n->number);
			if (!rc)
				rc = yj_notes_put(txn, to, n);
			yjlink__v1__notification__free_unpacked(n, NULL);
			rc_->moved += !rc;
		}
	}
	free(c.numbers);
	return rc < 0 ? rc : 0;
}

int yj_outbox_reconcile(struct yj_outbox *ob)
{
	struct s_reconcile r = { ob, 0 };
	int rc = yj_store_write(ob->core->store, s_reconcile_write, &r);
	if (rc)
		return rc;
	if (r.moved)
		yj_notice("outbox: %d job(s) moved between outbox and unroutable after the config change", r.moved);
	s_rewalk(ob);  /* a job moved back into the outbox keeps its old number */
	s_dispatch(ob);
	return r.moved;
}

static int s_stats_read(struct yj_txn *txn, void *arg)
{
	struct yj_outbox_stats *st = arg;
	int rc = yj_notes_count(txn, YJ_NOTES_OUTBOX, &st->depth);
	if (!rc)
		rc = yj_notes_count(txn, YJ_NOTES_DLQ, &st->dead_letters);
	if (!rc)
		rc = yj_notes_count(txn, YJ_NOTES_UNROUTABLE, &st->unroutable);
	return rc;
}

int yj_outbox_stats(struct yj_outbox *ob, struct yj_outbox_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!ob)
		return 0;
	st->in_flight = ob->in_flight;
	st->dead_lettered = ob->dead_lettered;
	return yj_store_read(ob->core->store, s_stats_read, st);
}

struct s_describe {
	cJSON *by;                  /* recipient id -> {pending, oldest, next_attempt, attempts, last_error} */
};

static int s_describe_cb(void *arg, const Yjlink__V1__Notification *n)
{
	struct s_describe *d = arg;
	const char *rid = n->recipient ? n->recipient : "";
	cJSON *r = cJSON_GetObjectItemCaseSensitive(d->by, rid);
	if (!r) {
		r = cJSON_AddObjectToObject(d->by, rid);
		cJSON_AddNumberToObject(r, "pending", 0);
		cJSON_AddNumberToObject(r, "oldest", (double)n->number);
		int64_t next = n->has_next_attempt_us ? n->next_attempt_us : n->has_not_before_us ? n->not_before_us : 0;
		cJSON_AddItemToObject(r, "next_attempt", next ? yj_time_to_json(next) : cJSON_CreateString("now"));
		cJSON_AddNumberToObject(r, "attempts", n->attempts);
		cJSON_AddStringToObject(r, "last_error", n->last_error ? n->last_error : "");
	}
	cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "pending");
	if (p)
		cJSON_SetNumberValue(p, p->valuedouble + 1);
	if (n->digest) {
		cJSON *dg = cJSON_GetObjectItemCaseSensitive(r, "digests");
		if (!dg)
			dg = cJSON_AddNumberToObject(r, "digests", 0);
		if (dg)
			cJSON_SetNumberValue(dg, dg->valuedouble + 1);
	}
	return 0;
}

static int s_describe_read(struct yj_txn *txn, void *arg)
{
	int rc = yj_notes_each(txn, YJ_NOTES_OUTBOX, s_describe_cb, arg);
	return rc < 0 ? rc : 0;
}

cJSON *yj_outbox_describe(struct yj_outbox *ob)
{
	struct s_describe d = { cJSON_CreateObject() };
	if (!d.by)
		return NULL;
	if (yj_store_read(ob->core->store, s_describe_read, &d) < 0) {
		cJSON_Delete(d.by);
		return NULL;
	}
	return d.by;
}

void yj_outbox_set_dead_hook(struct yj_outbox *ob, yj_outbox_dead_fn fn, void *arg)
{
	ob->dead_fn = fn;
	ob->dead_arg = arg;
}

int yj_outbox_start(struct yj_core *core, struct yj_outbox **out)
{
	struct yj_outbox *ob = calloc(1, sizeof(*ob));
	if (!ob)
		return YJ_ENOMEM;
	if (sodium_init() < 0) {
		free(ob);
		return YJ_EIO;
	}
	ob->core = core;
	if (yj_digestjobs_new(core, &ob->digestjobs)) {
		free(ob);
		return YJ_ENOMEM;
	}
	ob->attempts = calloc(core->n_adapters + 1, sizeof(*ob->attempts));
	ob->timer = ob->attempts ? yj_loop_timer(core->loop, S_TICK_MS, S_TICK_MS, s_tick, ob) : -1;
	if (ob->timer < 0) {
		yj_digestjobs_destroy(&ob->digestjobs);
		free(ob->attempts);
		free(ob);
		return YJ_ENOMEM;
	}
	*out = ob;
	yj_outbox_reconcile(ob);
	return 0;
}

void yj_outbox_stop(struct yj_outbox **pob)
{
	struct yj_outbox *ob = pob ? *pob : NULL;
	if (!ob)
		return;
	yj_loop_timer_cancel(ob->core->loop, ob->timer);
	if (ob->more_timer > 0)
		yj_loop_timer_cancel(ob->core->loop, ob->more_timer);
	/* Digests being built are killed; their jobs are under way (below). */
	yj_digestjobs_destroy(&ob->digestjobs);
	/* Finished but uncommitted completions go again after restart (same id). */
	size_t left = ob->n_done;
	for (size_t i = 0; i < ob->n_done; i++)
		s_done_free(ob->done[i]);
	free(ob->done);
	/* Deliveries still under way are abandoned: their jobs were never taken
	 * out of the outbox, so they go again after restart (same id). */
	while (ob->live) {
		struct s_done *dn = ob->live;
		ob->live = dn->next;
		s_done_free(dn);
		left++;
	}
	if (left)
		yj_notice("outbox: stop: %zu deliveries under way left in the outbox; they go again at the next start, "
			  "with the same ids", left);
	for (size_t i = 0; i < ob->n_rcpts; i++) {
		free(ob->rcpts[i].id);
		free(ob->rcpts[i].started);
	}
	free(ob->rcpts);
	free(ob->attempts);
	free(ob->positions);
	free(ob);
	*pob = NULL;
}
