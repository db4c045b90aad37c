/* control.c: see control.h. */
#include "control.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "adapter.h"
#include "bigbuf.h"
#include "clock.h"
#include "config.h"
#include "db/audit.h"
#include "db/digests.h"
#include "db/events.h"
#include "db/holds.h"
#include "db/notes.h"
#include "db/quarantine.h"
#include "digest.h"
#include "directory.h"
#include "err.h"
#include "event_json.h"
#include "ingest.h"
#include "log.h"
#include "boardpack.h"
#include "practice.h"
#include "u64vec.h"
#include "loop.h"
#include "normalise.h"
#include "outbox.h"
#include "refdata.h"
#include "report.h"
#include "reportjob.h"
#include "retention.h"
#include "route.h"
#include "store.h"
#include "yjlink.pb-c.h"

#ifndef YJ_VERSION
#define YJ_VERSION "0.1.0"
#endif

struct yj_control {
	struct yj_core *core;      /* borrowed */
	void *sock;                /* ROUTER, owned */
};

/* One command's context: the request and what the reply will carry. */
struct s_call {
	struct yj_control *ctl;
	const cJSON *args;   /* borrowed from the request */
	cJSON *out;          /* reply object, owned until sent */
	int code;            /* 0, 1 refused/failed, 2 usage */
	long uid;            /* caller's uid from the peer credentials, -1 unknown */
	int trim;            /* the reply was big: give the heap back after sending it */
	char *body;          /* owned until sent (yj_big_free): a reply written as text, sent instead of out */
	size_t body_len;
	int deferred;        /* the command answers later itself (s_reply_later) */
	const zmq_msg_t *id; /* the caller's routing id, borrowed */
};

/* A reply owed to a caller after s_handle returned (a report built in its
 * helper): the routing id it goes to, and what the command needs then. */
struct s_later {
	struct yj_control *ctl;
	char *format;
	long uid;
	size_t id_len;
	unsigned char id[];
};

static void s_fail(struct s_call *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void s_fail(struct s_call *c, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->code = code;
	cJSON_AddStringToObject(c->out, "error", msg);
}

static void s_send_reply(struct yj_control *ctl, const void *id, size_t id_len, int code, const cJSON *out, int trim)
{
	char digit[2] = { (char)('0' + code), 0 };
	char *body = cJSON_PrintUnformatted(out);
	zmq_send(ctl->sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(ctl->sock, "YJC1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(ctl->sock, digit, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(ctl->sock, body ? body : "{}", body ? strlen(body) : 2, ZMQ_DONTWAIT);
	cJSON_free(body);
	if (trim)
		malloc_trim(0);
}

/* Promise the caller of c a reply later: s_reply_later() sends it. */
static struct s_later *s_defer(struct s_call *c, const char *format)
{
	size_t len = zmq_msg_size((zmq_msg_t *)c->id);
	struct s_later *l = malloc(sizeof(*l) + len);
	if (!l || !(l->format = strdup(format))) {
		free(l);
		return NULL;
	}
	l->ctl = c->ctl;
	l->uid = c->uid;
	l->id_len = len;
	memcpy(l->id, zmq_msg_data((zmq_msg_t *)c->id), len);
	c->deferred = 1;
	return l;
}

static void s_reply_later(struct s_later *l, int code, const cJSON *out, int trim)
{
	s_send_reply(l->ctl, l->id, l->id_len, code, out, trim);
	free(l->format);
	free(l);
}

static const char *s_arg_str(const struct s_call *c, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->args, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A non-negative integer argument given as number or decimal string; -1 if absent, -2 if bad. */
static long long s_arg_u64(const struct s_call *c, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->args, name);
	if (!v)
		return -1;
	if (cJSON_IsNumber(v))
		return v->valuedouble >= 0 ? (long long)v->valuedouble : -2;
	if (cJSON_IsString(v)) {
		char *end = NULL;
		long long x = strtoll(v->valuestring, &end, 10);
		return (end && !*end && x >= 0 && *v->valuestring) ? x : -2;
	}
	return -2;
}

/* Commands that show personal data need a reason, recorded with the caller. */
/* A reason says something: not empty, not only blanks. */
static int s_reason_given(const char *reason)
{
	for (const char *p = reason; p && *p; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return 1;
	}
	return 0;
}

static int s_require_reason(struct s_call *c, const char *what)
{
	const char *reason = s_arg_str(c, "reason");
	if (!s_reason_given(reason)) {
		s_fail(c, 2, "%s shows personal data: give --reason TEXT (why you need it; it goes in the audit log)", what);
		return 0;
	}
	/* The reason text may name a child: it is kept out of the log. */
	yj_notice("control: %s by uid %ld (reason recorded)", what, c->uid);
	return 1;
}

/* Record that an operator looked at personal data (DPA 2018 s.62
 * "consultation"); refuse to show it when that cannot be recorded. */
static int s_audit_consult(struct s_call *c, const char *what, const uint64_t *seqs, size_t n);

/* --- status --- */
struct s_status_read {
	struct yj_store_stats st;
};

static int s_quar_usage_read(struct yj_txn *txn, void *arg)
{
	return yj_quarantine_usage(txn, arg);
}

/* Each data sharing agreement in force (routing.md "Legal basis wording"):
 * its review date, the days left to it, and who it covers. An id shared by
 * recipients with different review dates is shown once per date. */
static void s_status_dsa(const struct yj_config *cfg, cJSON *out)
{
	cJSON *all = NULL;
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		char key[96], date[16] = "";
		if (!r->dsa_id)
			continue;
		if (r->dsa_review != INT32_MIN) {
			int y;
			unsigned m, d;
			yj_civil_from_days(r->dsa_review, &y, &m, &d);
			snprintf(date, sizeof(date), "%04d-%02u-%02u", y, m, d);
		}
		snprintf(key, sizeof(key), "%s", r->dsa_id);
		if (!all)
			all = cJSON_AddObjectToObject(out, "dsa");
		cJSON *e = cJSON_GetObjectItemCaseSensitive(all, key);
		if (e && strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "review")), date)) {
			snprintf(key, sizeof(key), "%s@%s", r->dsa_id, *date ? date : "none");
			e = cJSON_GetObjectItemCaseSensitive(all, key);
		}
		if (!e) {
			e = cJSON_AddObjectToObject(all, key);
			cJSON_AddStringToObject(e, "id", r->dsa_id);
			cJSON_AddStringToObject(e, "review", date);
			if (*date) {
				int32_t left = yj_dsa_days_left(r->dsa_review);
				cJSON_AddNumberToObject(e, "days_left", left);
				if (left <= 30)
					cJSON_AddStringToObject(e, "warning", left < 0 ? "review overdue" : "review within 30 days");
			}
			cJSON_AddArrayToObject(e, "recipients");
		}
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(e, "recipients"), cJSON_CreateString(r->id));
	}
}

static void s_cmd_status(struct s_call *c)
{
	const struct yj_config *cfg = c->ctl->core->cfg;
	const struct yj_ingest_stats *is = yj_ingest_stats(c->ctl->core->ingest);
	struct yj_store_stats st;
	int64_t now = yj_clock_now_us();

	memset(&st, 0, sizeof(st));
	yj_store_stats(c->ctl->core->store, &st);
	cJSON_AddStringToObject(c->out, "version", YJ_VERSION);
	cJSON_AddNumberToObject(c->out, "uptime_seconds", (double)((yj_loop_now_ms() - c->ctl->core->started_ms) / 1000));
	cJSON_AddItemToObject(c->out, "now", yj_time_to_json(now));
	cJSON *dep = cJSON_AddObjectToObject(c->out, "deployment");
	cJSON_AddStringToObject(dep, "id", cfg->deployment_id);
	cJSON_AddStringToObject(dep, "name", cfg->deployment_name);
	cJSON_AddStringToObject(dep, "force", cfg->deployment_force);
	cJSON_AddStringToObject(dep, "config", cfg->source);
	if (c->ctl->core->reload_state && *c->ctl->core->reload_state)
		cJSON_AddStringToObject(dep, "reload_refused", c->ctl->core->reload_state);
	cJSON *feeds = cJSON_AddObjectToObject(c->out, "feeds");
	cJSON *yjl1 = cJSON_AddObjectToObject(feeds, "yjl1");
	cJSON_AddStringToObject(yjl1, "endpoint", cfg->ingest_endpoint);
	cJSON *ing = cJSON_AddObjectToObject(c->out, "ingest");
	cJSON *by_feed = cJSON_AddObjectToObject(ing, "ok_since_start");
	for (int f = 1; f < YJ_FEED_COUNT; f++)
		cJSON_AddNumberToObject(by_feed, yj_feed_name(f), (double)is->ingested[f]);
	cJSON *rej = cJSON_AddObjectToObject(ing, "rejected_since_start");
	for (int r = YJ_REJ_PROTOCOL; r <= YJ_REJ_FORBIDDEN; r++)
		cJSON_AddNumberToObject(rej, yj_reject_code_name(r), (double)is->rejected[r]);
	cJSON_AddNumberToObject(ing, "dup_since_start", (double)is->dups);
	cJSON_AddNumberToObject(ing, "retry_since_start", (double)is->retries);
	cJSON_AddNumberToObject(ing, "batches", (double)is->batches);
	uint64_t today = 0;
	yj_digest_events_today(c->ctl->core->store, &today);
	cJSON_AddNumberToObject(ing, "events_today", (double)today);
	cJSON_AddNumberToObject(ing, "last_seq", (double)st.last_seq);
	struct yj_outbox_stats os;
	if (c->ctl->core->outbox && yj_outbox_stats(c->ctl->core->outbox, &os) == 0) {
		cJSON *del = cJSON_AddObjectToObject(c->out, "delivery");
		cJSON_AddNumberToObject(del, "outbox_depth", (double)os.depth);
		cJSON_AddNumberToObject(del, "dead_letters", (double)os.dead_letters);
		cJSON_AddNumberToObject(del, "unroutable", (double)os.unroutable);
		cJSON_AddNumberToObject(del, "in_flight", (double)os.in_flight);
		cJSON_AddNumberToObject(del, "holds", (double)is->held);
	}
	if (c->ctl->core->digest)
		cJSON_AddItemToObject(c->out, "digests", yj_digest_status(c->ctl->core->digest));
	if (c->ctl->core->practice)
		cJSON_AddItemToObject(c->out, "practice", yj_practice_describe(c->ctl->core->practice));
	cJSON *sto = cJSON_AddObjectToObject(c->out, "store");
	cJSON_AddStringToObject(sto, "path", cfg->store_path);
	cJSON_AddNumberToObject(sto, "events", (double)st.events);
	cJSON_AddNumberToObject(sto, "quarantined", (double)st.quarantined);
	cJSON_AddNumberToObject(sto, "map_bytes", (double)st.map_size);
	cJSON_AddNumberToObject(sto, "used_bytes", (double)st.used_bytes);
	cJSON_AddNumberToObject(sto, "map_grows", (double)st.map_grows);
	struct yj_quarantine_usage qu;
	if (yj_store_read(c->ctl->core->store, s_quar_usage_read, &qu) == 0) {
		cJSON *qo = cJSON_AddObjectToObject(c->out, "quarantine");
		cJSON_AddNumberToObject(qo, "entries", (double)qu.entries);
		cJSON_AddNumberToObject(qo, "bytes", (double)qu.bytes);
		cJSON_AddNumberToObject(qo, "max_bytes", (double)cfg->quarantine_max_bytes);
		cJSON_AddNumberToObject(qo, "dropped", (double)qu.dropped);
		cJSON_AddNumberToObject(qo, "expired", (double)qu.expired);
		cJSON_AddNumberToObject(qo, "retention_days", (double)cfg->quarantine_retention_days);
	}
	s_status_dsa(cfg, c->out);
}

/* --- events --- */
struct s_events {
	struct s_call *c;
	cJSON *list;
	long limit;
	enum yj_feed feed;         /* YJ_FEED_NONE: every feed */
	int64_t since_us;          /* occurred_at lower bound, INT64_MIN: none */
	struct yj_txn *txn;
	int rc;
};

static int s_events_add(void *arg, uint64_t seq)
{
	struct s_events *e = arg;
	Yjlink__V1__Record *r = yj_events_get_record(e->txn, seq);
	if (!r || !r->event)
		goto done;
	const Yjlink__V1__Event *ev = r->event;
	if (e->feed != YJ_FEED_NONE && yj_event_feed(ev) != e->feed)
		goto done;
	if (ev->occurred_at && ev->occurred_at->unix_us < e->since_us)
		goto done;
	cJSON *o = cJSON_CreateObject();
	char buf[48];
	cJSON_AddNumberToObject(o, "seq", (double)r->seq);
	cJSON_AddStringToObject(o, "feed", r->feed ? r->feed : "");
	cJSON_AddItemToObject(o, "stored_at", yj_time_to_json(r->stored_at_us));
	if (ev->occurred_at) {
		yj_time_format(ev->occurred_at, buf, sizeof(buf));
		cJSON_AddStringToObject(o, "occurred_at", buf);
	}
	cJSON_AddStringToObject(o, "force", ev->force ? ev->force : "");
	cJSON_AddStringToObject(o, "source_id", ev->source_id ? ev->source_id : "");
	cJSON_AddStringToObject(o, "person_id", ev->child && ev->child->person_id ? ev->child->person_id : "");
	if (ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY && ev->custody) {
		cJSON_AddStringToObject(o, "custody_record_id", ev->custody->record_id ? ev->custody->record_id : "");
		cJSON_AddStringToObject(o, "custody_status", ev->custody->status ? ev->custody->status : "");
	}
	cJSON_AddItemToArray(e->list, o);
done:
	yjlink__v1__record__free_unpacked(r, NULL);
	return cJSON_GetArraySize(e->list) >= e->limit ? 1 : 0;
}

/* A child id as given ("TVP-P1", or "E23000029/TVP-P1") made whole. */
static void s_child_key(const struct yj_config *cfg, const char *child, char *key, size_t size)
{
	if (strchr(child, '/'))
		snprintf(key, size, "%s", child);
	else
		snprintf(key, size, "%s/%s", cfg->deployment_force, child);
}

static int s_events_read(struct yj_txn *txn, void *arg)
{
	struct s_events *e = arg;
	const char *child = s_arg_str(e->c, "child");
	e->txn = txn;
	if (child) {
		char key[400];
		s_child_key(e->c->ctl->core->cfg, child, key, sizeof(key));
		int rc = yj_events_of_child(txn, key, s_events_add, e);
		return rc == YJ_ENOENT ? 0 : rc;
	}
	if (e->since_us != INT64_MIN)
		return yj_events_since(txn, e->since_us, s_events_add, e);
	/* Newest first: what an operator wants to see. */
	return yj_events_each(txn, 1, s_events_add, e);
}

static void s_audit_listing(struct s_call *c, cJSON *out, const char *key, const char *what);

static void s_cmd_events(struct s_call *c)
{
	struct s_events e = { .c = c, .limit = 100, .since_us = INT64_MIN };
	long long lim = s_arg_u64(c, "limit");
	const char *feed = s_arg_str(c, "feed");
	const char *since = s_arg_str(c, "since");

	if (lim == -2 || lim == 0)
		return s_fail(c, 2, "--limit must be a positive integer");
	if (lim > 0)
		e.limit = (long)lim;
	if (feed && (e.feed = yj_feed_from_name(feed, strlen(feed))) == YJ_FEED_NONE)
		return s_fail(c, 2, "--feed must be custody, arrest, voluntary_interview or outcome");
	if (since) {
		int32_t off;
		if (yj_time_parse(since, strlen(since), &e.since_us, &off) != 0)
			return s_fail(c, 2, "--since must be an RFC 3339 time with offset, e.g. 2026-11-21T00:00:00Z");
	}
	/* A child's history is personal data however little of it is shown. */
	if (s_arg_str(c, "child") && !s_require_reason(c, "events --child"))
		return;
	e.list = cJSON_AddArrayToObject(c->out, "events");
	int rc = yj_store_read(c->ctl->core->store, s_events_read, &e);
	if (rc < 0)
		return s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
	/* Person ids are personal data too: every listing is a consultation
	 * (routing.md "Audit"), with the events it showed; --reason is
	 * required for a child's history and recorded when given otherwise. */
	s_audit_listing(c, c->out, "events", s_arg_str(c, "child") ? "events --child" : "events");
}

/* Audit the listing out[key] (objects with a "seq") as one consultation
 * named what; on failure nothing is shown. */
static void s_audit_listing(struct s_call *c, cJSON *out, const char *key, const char *what)
{
	cJSON *list = cJSON_GetObjectItemCaseSensitive(out, key);
	size_t n = (size_t)cJSON_GetArraySize(list), k = 0;
	uint64_t *seqs = malloc((n ? n : 1) * sizeof(*seqs));
	if (!seqs) {
		cJSON_DeleteItemFromObject(out, key);
		return s_fail(c, 1, "out of memory");
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, list)
	{
		const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "seq");
		if (cJSON_IsNumber(sq))
			seqs[k++] = (uint64_t)sq->valuedouble;
	}
	if (s_audit_consult(c, what, seqs, k))
		cJSON_DeleteItemFromObject(out, key);
	free(seqs);
}

/* --- show --- */
struct s_show {
	uint64_t seq;
	cJSON *event;
};

static int s_show_read(struct yj_txn *txn, void *arg)
{
	struct s_show *s = arg;
	Yjlink__V1__Record *r = yj_events_get_record(txn, s->seq);
	if (!r || !r->event) {
		yjlink__v1__record__free_unpacked(r, NULL);
		return yj_txn_rc(txn) ? yj_txn_rc(txn) : YJ_ENOENT;
	}
	s->event = yj_event_to_json(r->event, r->seq, r->stored_at_us, NULL, NULL);
	yjlink__v1__record__free_unpacked(r, NULL);
	return s->event ? 0 : YJ_ENOMEM;
}

static void s_cmd_show(struct s_call *c)
{
	long long seq = s_arg_u64(c, "seq");
	if (seq <= 0)
		return s_fail(c, 2, "show needs SEQ, a positive event number");
	if (!s_require_reason(c, "show"))
		return;
	struct s_show s = { (uint64_t)seq, NULL };
	int rc = yj_store_read(c->ctl->core->store, s_show_read, &s);
	if (rc == YJ_ENOENT)
		return s_fail(c, 1, "no event %lld", seq);
	if (rc < 0)
		return s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
	uint64_t one = (uint64_t)seq;
	if (s_audit_consult(c, "show", &one, 1)) {
		cJSON_Delete(s.event);
		return;
	}
	cJSON_AddItemToObject(c->out, "event", s.event);
}

/* --- quarantine --- */
struct s_quar {
	struct s_call *c;
	cJSON *list;
	long limit;
	uint64_t id;          /* show: this one */
	int full;             /* show: include the payload */
};

static cJSON *s_quar_json(uint64_t id, const Yjlink__V1__Quarantined *q, int full)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", (double)id);
	cJSON_AddItemToObject(o, "received_at", yj_time_to_json(q->received_at_us));
	cJSON_AddStringToObject(o, "origin", q->origin ? q->origin : "");
	cJSON_AddStringToObject(o, "feed", q->feed ? q->feed : "");
	cJSON_AddStringToObject(o, "content_type", q->content_type ? q->content_type : "");
	cJSON_AddStringToObject(o, "error", q->error ? q->error : "");
	cJSON_AddStringToObject(o, "field", q->field ? q->field : "");
	cJSON_AddStringToObject(o, "reason", q->reason ? q->reason : "");
	cJSON_AddStringToObject(o, "source_id", q->source_id ? q->source_id : "");
	cJSON_AddNumberToObject(o, "payload_bytes", (double)q->payload_bytes);
	cJSON_AddNumberToObject(o, "frames", (double)q->frames);
	if (full) {
		/* The payload may be binary or invalid UTF-8: hex keeps it exact. */
		char *hex = malloc(q->payload.len * 2 + 1);
		if (hex) {
			static const char digits[] = "0123456789abcdef";
			for (size_t i = 0; i < q->payload.len; i++) {
				hex[2 * i] = digits[q->payload.data[i] >> 4];
				hex[2 * i + 1] = digits[q->payload.data[i] & 15];
			}
			hex[q->payload.len * 2] = '\0';
			cJSON_AddStringToObject(o, "payload_hex", hex);
			free(hex);
		}
		cJSON_AddBoolToObject(o, "payload_truncated", q->payload.len < q->payload_bytes);
	}
	return o;
}

static int s_quar_cb(void *arg, uint64_t id, const Yjlink__V1__Quarantined *q)
{
	struct s_quar *s = arg;
	cJSON_AddItemToArray(s->list, s_quar_json(id, q, 0));
	return cJSON_GetArraySize(s->list) >= s->limit ? 1 : 0;
}

static int s_quar_list_read(struct yj_txn *txn, void *arg)
{
	return yj_quarantine_each(txn, 1, s_quar_cb, arg);
}

static int s_quar_show_read(struct yj_txn *txn, void *arg)
{
	struct s_quar *s = arg;
	Yjlink__V1__Quarantined *q = yj_quarantine_get(txn, s->id);
	if (!q)
		return yj_txn_rc(txn) ? yj_txn_rc(txn) : YJ_ENOENT;
	cJSON_AddItemToObject(s->c->out, "entry", s_quar_json(s->id, q, 1));
	yjlink__v1__quarantined__free_unpacked(q, NULL);
	return 0;
}

static int s_quar_drop_write(struct yj_txn *txn, void *arg);

static void s_cmd_quarantine(struct s_call *c)
{
	const char *sub = s_arg_str(c, "sub");
	struct s_quar s = { .c = c, .limit = 100 };
	int rc;

	if (!sub || !strcmp(sub, "list")) {
		long long lim = s_arg_u64(c, "limit");
		if (lim == -2 || lim == 0)
			return s_fail(c, 2, "--limit must be a positive integer");
		if (lim > 0)
			s.limit = (long)lim;
		s.list = cJSON_AddArrayToObject(c->out, "entries");
		rc = yj_store_read(c->ctl->core->store, s_quar_list_read, &s);
	} else if (!strcmp(sub, "show")) {
		long long id = s_arg_u64(c, "id");
		if (id <= 0)
			return s_fail(c, 2, "quarantine show needs ID, a positive number");
		if (!s_require_reason(c, "quarantine show"))
			return;
		s.id = (uint64_t)id;
		rc = yj_store_read(c->ctl->core->store, s_quar_show_read, &s);
		if (rc == YJ_ENOENT)
			return s_fail(c, 1, "no quarantine entry %lld", id);
		char what[64];
		snprintf(what, sizeof(what), "quarantine show %lld", id);
		if (rc >= 0 && s_audit_consult(c, what, NULL, 0)) {
			cJSON_DeleteItemFromObject(c->out, "entry");
			return;
		}
	} else if (!strcmp(sub, "drop")) {
		long long id = s_arg_u64(c, "id");
		const char *reason = s_arg_str(c, "reason");
		if (id <= 0)
			return s_fail(c, 2, "quarantine drop needs ID, a positive number");
		if (!reason || !*reason)
			return s_fail(c, 2, "quarantine drop needs --reason TEXT (it is audited)");
		s.id = (uint64_t)id;
		rc = yj_store_write(c->ctl->core->store, s_quar_drop_write, &s);
		if (rc == YJ_ENOENT)
			return s_fail(c, 1, "no quarantine entry %lld", id);
		if (!rc) {
			yj_notice("control: quarantine entry %lld dropped by uid %ld", id, c->uid);
			cJSON_AddNumberToObject(c->out, "dropped", (double)id);
		}
	} else {
		return s_fail(c, 2, "quarantine takes list, show or drop");
	}
	if (rc < 0)
		s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
}

/* --- clock (tests only) --- */
static void s_cmd_clock(struct s_call *c)
{
	const char *to = s_arg_str(c, "set");
	if (!(c->ctl->core->cfg)->testing_clock_control)
		return s_fail(c, 1, "clock control is off (testing.clock_control = false)");
	if (to) {
		int64_t us;
		int32_t off;
		if (yj_time_parse(to, strlen(to), &us, &off) != 0)
			return s_fail(c, 2, "clock set needs an RFC 3339 time with offset");
		yj_clock_set_us(us);
		yj_notice("control: clock set by uid %ld", c->uid);
		/* What the new time makes due (escalations, quiet feeds) is due now. */
		if (c->ctl->core->practice)
			yj_practice_run_now(c->ctl->core->practice);
		if (c->ctl->core->boardpack)
			yj_boardpack_run_now(c->ctl->core->boardpack);
	}
	cJSON_AddItemToObject(c->out, "now", yj_time_to_json(yj_clock_now_us()));
}

static void s_cmd_reload(struct s_call *c)
{
	if (!c->ctl->core->reload)
		return s_fail(c, 1, "reload is not available");
	char actor[48];
	snprintf(actor, sizeof(actor), "uid:%ld", c->uid);
	int rc = c->ctl->core->reload(c->ctl->core, actor);
	if (rc)
		return s_fail(c, 1, "new config refused, old one kept: %s",
			      c->ctl->core->reload_state && *c->ctl->core->reload_state ? c->ctl->core->reload_state : "see log");
	cJSON_AddStringToObject(c->out, "result", "reloaded");
}

/* --- delivery: outbox, dead letters, holds, replay, audit --- */

static cJSON *s_note_json(const struct yj_config *cfg, const Yjlink__V1__Notification *n)
{
	char id[96];
	cJSON *o = cJSON_CreateObject();
	yj_notification_id(cfg, n->number, id, sizeof(id));
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddNumberToObject(o, "number", (double)n->number);
	cJSON_AddStringToObject(o, "recipient", n->recipient ? n->recipient : "");
	cJSON_AddStringToObject(o, "rule", n->rule ? n->rule : "");
	cJSON_AddStringToObject(o, "kind", n->kind ? n->kind : "");
	if (n->digest) {
		cJSON_AddStringToObject(o, "digest_id", n->digest->id ? n->digest->id : "");
		if (n->digest->resend)
			cJSON_AddBoolToObject(o, "resend", 1);
	} else if (n->report) {
		cJSON_AddStringToObject(o, "report_id", n->report->id ? n->report->id : "");
	} else {
		cJSON_AddNumberToObject(o, "seq", (double)n->seq);
	}
	cJSON_AddItemToObject(o, "created_at", yj_time_to_json(n->created_at_us));
	cJSON_AddNumberToObject(o, "attempts", n->attempts);
	cJSON_AddStringToObject(o, "last_error", n->last_error ? n->last_error : "");
	if (n->has_failed_at_us)
		cJSON_AddItemToObject(o, "failed_at", yj_time_to_json(n->failed_at_us));
	if (n->has_out_of_hours && n->out_of_hours)
		cJSON_AddBoolToObject(o, "out_of_hours", 1);
	if (n->has_not_before_us && n->not_before_us)
		cJSON_AddItemToObject(o, "not_before", yj_time_to_json(n->not_before_us));
	if (n->has_escalated_at_us && n->escalated_at_us)
		cJSON_AddItemToObject(o, "escalated_at", yj_time_to_json(n->escalated_at_us));
	return o;
}

static int s_audit_action(struct yj_txn *txn, struct s_call *c, const char *action, const uint64_t *seqs, size_t nseqs,
			  const char *recipient, const char *reason)
{
	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	char actor[48];
	snprintf(actor, sizeof(actor), "uid:%ld", c->uid);
	a.has_at_us = 1;
	a.at_us = yj_clock_now_us();
	a.action = (char *)action;
	a.actor = actor;
	a.recipient = (char *)(recipient ? recipient : "");
	a.n_seqs = nseqs;
	a.seqs = (uint64_t *)seqs;
	a.reason = (char *)(reason ? reason : "");
	return yj_audit_append(txn, &a);
}

struct s_consult {
	struct s_call *c;
	const char *what;
	const uint64_t *seqs;
	size_t n;
};

static int s_consult_write(struct yj_txn *txn, void *arg)
{
	struct s_consult *k = arg;
	char why[700];
	const char *reason = s_arg_str(k->c, "reason");
	snprintf(why, sizeof(why), "%s: %s", k->what, reason && *reason ? reason : "(no reason given)");
	return s_audit_action(txn, k->c, "consultation", k->seqs, k->n, "", why);
}

static int s_audit_consult(struct s_call *c, const char *what, const uint64_t *seqs, size_t n)
{
	struct s_consult k = { c, what, seqs, n };
	int rc = yj_store_write(c->ctl->core->store, s_consult_write, &k);
	if (rc)
		s_fail(c, 1, "not shown: the consultation could not be written to the audit log (%s)", yj_strerror(rc));
	return rc;
}

struct s_list {
	struct s_call *c;
	cJSON *list;
	long limit;
	enum yj_note_queue queue;
};

static int s_list_notes_cb(void *arg, const Yjlink__V1__Notification *n)
{
	struct s_list *l = arg;
	cJSON_AddItemToArray(l->list, s_note_json(l->c->ctl->core->cfg, n));
	return cJSON_GetArraySize(l->list) >= l->limit ? 1 : 0;
}

static int s_list_notes_read(struct yj_txn *txn, void *arg)
{
	struct s_list *l = arg;
	int rc = yj_notes_each(txn, l->queue, s_list_notes_cb, l);
	return rc < 0 ? rc : 0;
}

static void s_cmd_outbox(struct s_call *c)
{
	cJSON *by = yj_outbox_describe(c->ctl->core->outbox);
	if (!by)
		return s_fail(c, 1, "cannot read the outbox");
	cJSON_AddItemToObject(c->out, "recipients", by);
	struct s_list l = { c, cJSON_AddArrayToObject(c->out, "unroutable"), 1000, YJ_NOTES_UNROUTABLE };
	yj_store_read(c->ctl->core->store, s_list_notes_read, &l);
	/* The jobs themselves, oldest first, for --json (a human reads the summary above). */
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->args, "full"))) {
		long limit = s_arg_u64(c, "limit") > 0 ? (long)s_arg_u64(c, "limit") : 1000;
		struct s_list p = { c, cJSON_AddArrayToObject(c->out, "pending"), limit, YJ_NOTES_OUTBOX };
		yj_store_read(c->ctl->core->store, s_list_notes_read, &p);
	}
}

struct s_dlq_op {
	struct s_call *c;
	uint64_t id;           /* 0 = all (retry --all) */
	int drop;
	const char *reason;
	int done;
};

static int s_dlq_retry_one(struct yj_txn *txn, struct s_dlq_op *op, uint64_t number)
{
	Yjlink__V1__Notification *n = yj_notes_get(txn, YJ_NOTES_DLQ, number);
	if (!n)
		return yj_txn_rc(txn) ? yj_txn_rc(txn) : YJ_ENOENT;
	int rc = yj_outbox_retry_dead(txn, op->c->ctl->core->cfg, number, yj_clock_now_us());
	if (!rc)
		rc = s_audit_action(txn, op->c, "retry", n->has_seq ? &n->seq : NULL, n->has_seq ? 1 : 0, n->recipient,
				    op->reason);
	yjlink__v1__notification__free_unpacked(n, NULL);
	op->done += !rc;
	return rc;
}


static int s_ids_note_cb(void *arg, const Yjlink__V1__Notification *n) { return yj_u64vec_add(arg, n->number); }
static int s_ids_seq_cb(void *arg, uint64_t seq) { return yj_u64vec_add(arg, seq); }

static int s_dlq_write(struct yj_txn *txn, void *arg)
{
	struct s_dlq_op *op = arg;
	int rc = 0;
	op->done = 0;
	if (op->drop) {
		Yjlink__V1__Notification *n = yj_notes_get(txn, YJ_NOTES_DLQ, op->id);
		if (!n)
			return yj_txn_rc(txn) ? yj_txn_rc(txn) : YJ_ENOENT;
		rc = yj_notes_del(txn, YJ_NOTES_DLQ, op->id);
		if (!rc)
			rc = s_audit_action(txn, op->c, "drop", n->has_seq ? &n->seq : NULL, n->has_seq ? 1 : 0, n->recipient,
					    op->reason);
		yjlink__v1__notification__free_unpacked(n, NULL);
		op->done = !rc;
		return rc;
	}
	if (op->id)
		return s_dlq_retry_one(txn, op, op->id);
	struct yj_u64vec ids = { NULL, 0, 0 };
	rc = yj_notes_each(txn, YJ_NOTES_DLQ, s_ids_note_cb, &ids);
	for (size_t i = 0; rc >= 0 && i < ids.n; i++)
		rc = s_dlq_retry_one(txn, op, ids.v[i]);
	free(ids.v);
	return rc < 0 ? rc : 0;
}

/* The number in "tvp-000000000042" or "42". */
static long long s_note_number(const char *s)
{
	const char *dash = s ? strrchr(s, '-') : NULL;
	const char *digits = dash ? dash + 1 : s;
	char *end = NULL;
	if (!digits || !*digits)
		return -1;
	long long v = strtoll(digits, &end, 10);
	return *end || v <= 0 ? -1 : v;
}

static void s_cmd_dlq(struct s_call *c)
{
	const char *sub = s_arg_str(c, "sub");
	const char *id = s_arg_str(c, "id");
	int all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->args, "all"));
	if (!sub || !strcmp(sub, "list")) {
		struct s_list l = { c, cJSON_AddArrayToObject(c->out, "dead_letters"), 1000, YJ_NOTES_DLQ };
		int rc = yj_store_read(c->ctl->core->store, s_list_notes_read, &l);
		if (rc < 0)
			s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
		return;
	}
	struct s_dlq_op op = { c, 0, 0, s_arg_str(c, "reason"), 0 };
	if (!strcmp(sub, "retry")) {
		if (!all && s_note_number(id) < 0)
			return s_fail(c, 2, "dlq retry needs ID (e.g. tvp-000000000042) or --all");
		op.id = all ? 0 : (uint64_t)s_note_number(id);
	} else if (!strcmp(sub, "drop")) {
		if (s_note_number(id) < 0)
			return s_fail(c, 2, "dlq drop needs ID");
		if (!op.reason || !*op.reason)
			return s_fail(c, 2, "dlq drop needs --reason TEXT (it is audited)");
		op.id = (uint64_t)s_note_number(id);
		op.drop = 1;
	} else {
		return s_fail(c, 2, "dlq takes list, retry or drop");
	}
	int rc = yj_store_write(c->ctl->core->store, s_dlq_write, &op);
	if (rc == YJ_ENOENT)
		return s_fail(c, 1, "no dead letter %s", id ? id : "");
	if (rc)
		return s_fail(c, 1, "store write failed: %s", yj_strerror(rc));
	yj_notice("control: dlq %s of %d job(s) by uid %ld", sub, op.done, c->uid);
	cJSON_AddNumberToObject(c->out, op.drop ? "dropped" : "retried", op.done);
	yj_outbox_kick(c->ctl->core->outbox);
}

/* holds */
struct s_holds_list {
	struct s_list *l;
	struct yj_txn *txn;
};

static int s_hold_waiter_cb(void *arg, const char *recipient)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(recipient));
	return 0;
}

static int s_holds_cb(void *arg, const Yjlink__V1__Hold *h)
{
	struct s_holds_list *hl = arg;
	cJSON *o = cJSON_CreateObject();
	int64_t now = yj_clock_now_us();
	cJSON_AddNumberToObject(o, "seq", (double)h->seq);
	Yjlink__V1__Record *rec = yj_events_get_record(hl->txn, h->seq);
	const Yjlink__V1__Event *ev = rec ? rec->event : NULL;
	cJSON_AddStringToObject(o, "person_id", ev && ev->child && ev->child->person_id ? ev->child->person_id : "");
	if (ev && ev->custody && ev->custody->record_id)
		cJSON_AddStringToObject(o, "custody_record", ev->custody->record_id);
	yjlink__v1__record__free_unpacked(rec, NULL);
	cJSON *mk = cJSON_AddArrayToObject(o, "markers");
	for (size_t i = 0; i < h->n_markers; i++)
		cJSON_AddItemToArray(mk, cJSON_CreateString(h->markers[i]));
	cJSON_AddStringToObject(o, "officer", h->officer ? h->officer : "");
	cJSON_AddStringToObject(o, "told", h->told ? h->told : "");
	cJSON_AddItemToObject(o, "held_at", yj_time_to_json(h->held_at_us));
	int released = h->has_released_at_us && h->released_at_us;
	cJSON_AddNumberToObject(o, "age_h", (double)(((released ? h->released_at_us : now) - h->held_at_us) / 3600000000LL));
	cJSON_AddBoolToObject(o, "released", released);
	if (h->has_escalated_at_us && h->escalated_at_us)
		cJSON_AddItemToObject(o, "escalated_at", yj_time_to_json(h->escalated_at_us));
	/* Who waits for the details: everyone who had the event without them. */
	int rc = yj_disclosed_each(hl->txn, h->seq, s_hold_waiter_cb, cJSON_AddArrayToObject(o, "waiting"));
	if (released) {
		cJSON_AddItemToObject(o, "released_at", yj_time_to_json(h->released_at_us));
		cJSON_AddStringToObject(o, "released_by", h->released_by ? h->released_by : "");
		cJSON_AddStringToObject(o, "released_actor", h->released_actor ? h->released_actor : "");
	}
	cJSON_AddItemToArray(hl->l->list, o);
	return rc < 0 ? rc : 0;
}

static int s_holds_read(struct yj_txn *txn, void *arg)
{
	struct s_holds_list hl = { arg, txn };
	int rc = yj_holds_each(txn, s_holds_cb, &hl);
	return rc < 0 ? rc : 0;
}

struct s_release {
	struct s_call *c;
	uint64_t seq;
	const char *by, *reason;
	unsigned queued;
	struct yj_route_counts counts;
};

static int s_release_write(struct yj_txn *txn, void *arg)
{
	struct s_release *r = arg;
	char why[600];
	char actor[48];
	snprintf(actor, sizeof(actor), "uid:%ld", r->c->uid);
	memset(&r->counts, 0, sizeof(r->counts));
	int rc = yj_route_release(txn, r->c->ctl->core->cfg, r->c->ctl->core->ref, r->seq, r->by, actor, r->reason,
				  yj_clock_now_us(), &r->queued, &r->counts);
	if (rc)
		return rc;
	snprintf(why, sizeof(why), "released by %s: %s", r->by, r->reason);
	return s_audit_action(txn, r->c, "release", &r->seq, 1, "", why);
}

static void s_cmd_holds(struct s_call *c)
{
	const char *sub = s_arg_str(c, "sub");
	if (!sub || !strcmp(sub, "list")) {
		struct s_list l = { c, cJSON_AddArrayToObject(c->out, "holds"), 100000, YJ_NOTES_OUTBOX };
		int rc = yj_store_read(c->ctl->core->store, s_holds_read, &l);
		if (rc < 0)
			return s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
		s_audit_listing(c, c->out, "holds", "holds list");
		return;
	}
	if (strcmp(sub, "release"))
		return s_fail(c, 2, "holds takes list or release");
	long long seq = s_arg_u64(c, "arg");
	const char *by = s_arg_str(c, "by"), *reason = s_arg_str(c, "reason");
	if (seq <= 0 || !by || !*by || !reason || !*reason)
		return s_fail(c, 2, "holds release needs SEQ --by NAME --reason TEXT");
	struct s_release r = { .c = c, .seq = (uint64_t)seq, .by = by, .reason = reason };
	int rc = yj_store_write(c->ctl->core->store, s_release_write, &r);
	if (rc == YJ_ENOENT)
		return s_fail(c, 1, "event %lld is not held", seq);
	if (rc == YJ_EEXIST)
		return s_fail(c, 1, "event %lld was already released", seq);
	if (rc)
		return s_fail(c, 1, "store write failed: %s", yj_strerror(rc));
	yj_practice_add_routed(c->ctl->core->practice, c->ctl->core->cfg, &r.counts);
	yj_notice("control: hold on seq %lld released by uid %ld; %u notification(s) queued, %u not (stale)", seq, c->uid,
		  r.queued, r.counts.stale);
	cJSON_AddNumberToObject(c->out, "stale", r.counts.stale);
	cJSON_AddNumberToObject(c->out, "released", (double)seq);
	cJSON_AddNumberToObject(c->out, "notifications", r.queued);
	yj_outbox_kick(c->ctl->core->outbox);
}

/* replay --since T [--rule R]: immediate rules again, new notifications */
struct s_replay {
	struct s_call *c;
	int64_t since_us;
	const char *rule;
	unsigned queued;
	struct yj_route_counts counts;
};

static int s_replay_write(struct yj_txn *txn, void *arg)
{
	struct s_replay *r = arg;
	memset(&r->counts, 0, sizeof(r->counts));
	int rc = yj_route_replay(txn, r->c->ctl->core->cfg, r->c->ctl->core->ref, r->since_us, r->rule, yj_clock_now_us(),
				 &r->queued, &r->counts);
	if (!rc && r->queued) {
		char why[700];
		snprintf(why, sizeof(why), "since %s: %s", s_arg_str(r->c, "since"), s_arg_str(r->c, "reason"));
		rc = s_audit_action(txn, r->c, "replay", NULL, 0, r->rule ? r->rule : "", why);
	}
	return rc;
}

static void s_cmd_replay(struct s_call *c)
{
	const char *since = s_arg_str(c, "since");
	struct s_replay r = { .c = c, .rule = s_arg_str(c, "rule") };
	int32_t off;
	if (!since || yj_time_parse(since, strlen(since), &r.since_us, &off))
		return s_fail(c, 2, "replay needs --since T (RFC 3339 with offset)");
	/* It discloses again: the audit must say why. */
	if (!s_reason_given(s_arg_str(c, "reason")))
		return s_fail(c, 2, "replay discloses events again: give --reason TEXT (it goes in the audit log)");
	if (r.rule) {
		size_t j;
		const struct yj_config *cfg = c->ctl->core->cfg;
		for (j = 0; j < cfg->n_rules && strcmp(cfg->rules[j].id, r.rule); j++)
			;
		if (j == cfg->n_rules)
			return s_fail(c, 2, "no rule '%s' in the config", r.rule);
	}
	int rc = yj_store_write(c->ctl->core->store, s_replay_write, &r);
	if (rc)
		return s_fail(c, 1, "store write failed: %s", yj_strerror(rc));
	yj_practice_add_routed(c->ctl->core->practice, c->ctl->core->cfg, &r.counts);
	yj_notice("control: replay queued %u notification(s), %u not made for events older than their rule's max_age_s, by uid %ld",
		  r.queued, r.counts.stale, c->uid);
	cJSON_AddNumberToObject(c->out, "notifications", r.queued);
	cJSON_AddNumberToObject(c->out, "stale", r.counts.stale);
	yj_outbox_kick(c->ctl->core->outbox);
}

/* audit */
struct s_audit_list {
	struct s_call *c;
	cJSON *list;
	long limit;
	int64_t since_us;
	const char *recipient;
	struct yj_u64vec child_seqs;   /* --child: that child's events */
	int by_child;
};

static int s_audit_cb(void *arg, const Yjlink__V1__AuditRecord *a)
{
	struct s_audit_list *l = arg;
	int keep = a->at_us >= l->since_us && (!l->recipient || (a->recipient && !strcmp(a->recipient, l->recipient)));
	if (keep && l->by_child) {
		keep = 0;
		for (size_t i = 0; i < a->n_seqs && !keep; i++) {
			for (size_t j = 0; j < l->child_seqs.n && !keep; j++)
				keep = a->seqs[i] == l->child_seqs.v[j];
		}
	}
	if (keep) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "number", (double)a->number);
		cJSON_AddItemToObject(o, "at", yj_time_to_json(a->at_us));
		cJSON_AddStringToObject(o, "action", a->action ? a->action : "");
		cJSON_AddStringToObject(o, "actor", a->actor ? a->actor : "");
		cJSON_AddStringToObject(o, "recipient", a->recipient ? a->recipient : "");
		cJSON_AddStringToObject(o, "address", a->address ? a->address : "");
		cJSON_AddStringToObject(o, "rule", a->rule ? a->rule : "");
		cJSON_AddStringToObject(o, "legal_basis", a->legal_basis ? a->legal_basis : "");
		cJSON_AddStringToObject(o, "notification_id", a->notification_id ? a->notification_id : "");
		if (a->dsa)
			cJSON_AddStringToObject(o, "dsa", a->dsa);
		cJSON_AddStringToObject(o, "reason", a->reason ? a->reason : "");
		cJSON *s = cJSON_AddArrayToObject(o, "seqs");
		for (size_t i = 0; i < a->n_seqs; i++)
			cJSON_AddItemToArray(s, cJSON_CreateNumber((double)a->seqs[i]));
		cJSON *f = cJSON_AddArrayToObject(o, "fields");
		for (size_t i = 0; i < a->n_fields; i++)
			cJSON_AddItemToArray(f, cJSON_CreateString(a->fields[i]));
		cJSON *fd = cJSON_AddArrayToObject(o, "feeds");
		for (size_t i = 0; i < a->n_feeds; i++)
			cJSON_AddItemToArray(fd, cJSON_CreateString(a->feeds[i]));
		cJSON_AddItemToArray(l->list, o);
	}
	return cJSON_GetArraySize(l->list) >= l->limit ? 1 : 0;
}

static int s_audit_read(struct yj_txn *txn, void *arg)
{
	struct s_audit_list *l = arg;
	const char *child = s_arg_str(l->c, "child");
	if (child) {
		char key[400];
		s_child_key(l->c->ctl->core->cfg, child, key, sizeof(key));
		l->by_child = 1;
		int rc = yj_events_of_child(txn, key, s_ids_seq_cb, &l->child_seqs);
		if (rc < 0 && rc != YJ_ENOENT)
			return rc;
	}
	int rc = yj_audit_each(txn, 1, s_audit_cb, l);
	return rc < 0 ? rc : 0;
}

static int s_verify_read(struct yj_txn *txn, void *arg)
{
	uint64_t *r = arg;
	return yj_audit_verify(txn, &r[0], &r[1]);
}

/* audit verify --anchor SEQ:HASH */
struct s_anchor_read {
	uint64_t number;
	uint8_t hash[32];
	struct yj_audit_anchor a;
};

static int s_anchor_read(struct yj_txn *txn, void *arg)
{
	struct s_anchor_read *r = arg;
	int rc = yj_audit_verify_anchor(txn, r->number, r->hash, &r->a);
	/* Not proven is an answer, not a failed read. */
	return rc == YJ_ESTORE && r->a.result != YJ_AUDIT_ANCHOR_PROVEN ? 0 : rc;
}

static void s_audit_anchor(struct s_call *c, const char *anchor)
{
	struct s_anchor_read r;
	char want[65], found[65];
	memset(&r, 0, sizeof(r));
	if (yj_audit_parse_anchor(anchor, &r.number, r.hash))
		return s_fail(c, 2, "--anchor takes SEQ:HASH (a record number, ':', its 64 hex digit hash), as a digest "
				    "shows it");
	int rc = yj_store_read(c->ctl->core->store, s_anchor_read, &r);
	if (rc)
		return s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
	const struct yj_audit_anchor *a = &r.a;
	unsigned long long n = (unsigned long long)r.number;
	yj_audit_hex(r.hash, want);
	yj_audit_hex(a->found, found);
	cJSON *o = cJSON_AddObjectToObject(c->out, "anchor");
	cJSON_AddNumberToObject(o, "number", (double)r.number);
	cJSON_AddStringToObject(o, "hash", want);
	cJSON_AddNumberToObject(c->out, "checked", (double)a->checked);
	cJSON_AddNumberToObject(c->out, "head", (double)a->head);
	cJSON_AddNumberToObject(c->out, "base", (double)a->base);
	switch (a->result) {
	case YJ_AUDIT_ANCHOR_PROVEN:
		cJSON_AddStringToObject(c->out, "result", "intact");
		cJSON_AddStringToObject(c->out, "anchor_result", "proven");
		return;
	case YJ_AUDIT_ANCHOR_BROKEN:
		cJSON_AddStringToObject(c->out, "anchor_result", "broken");
		cJSON_AddNumberToObject(c->out, "first_bad", (double)a->bad);
		return s_fail(c, 1, "audit chain broken at record %llu: a record was changed, removed or reordered",
			      (unsigned long long)a->bad);
	case YJ_AUDIT_ANCHOR_DIFFERENT:
		cJSON_AddStringToObject(c->out, "anchor_result", "different");
		cJSON_AddStringToObject(c->out, "found", found);
		return s_fail(c, 1, "anchor %llu:%s not in the log: record %llu now has hash %s: the log was rewritten "
				    "since the anchor was sent (the chain verifies on its own: it was re-hashed)",
			      n, want, n, found);
	case YJ_AUDIT_ANCHOR_MISSING:
		cJSON_AddStringToObject(c->out, "anchor_result", "missing");
		return s_fail(c, 1, "anchor %llu:%s not in the log: the log ends at record %llu, there is no record %llu: "
				    "records were removed since the anchor was sent",
			      n, want, (unsigned long long)a->head, n);
	case YJ_AUDIT_ANCHOR_ERASED:
		cJSON_AddStringToObject(c->out, "anchor_result", "erased");
		return s_fail(c, 1, "anchor %llu:%s cannot be proven: the anchor's record was erased by retention at base "
				    "%llu (retention.audit_days); prove a newer anchor",
			      n, want, (unsigned long long)a->base);
	}
	s_fail(c, 1, "anchor %llu: not proven", n);
}

static void s_cmd_audit(struct s_call *c)
{
	const char *sub = s_arg_str(c, "sub");
	if (sub && !strcmp(sub, "verify") && s_arg_str(c, "anchor"))
		return s_audit_anchor(c, s_arg_str(c, "anchor"));
	if (sub && !strcmp(sub, "verify")) {
		uint64_t r[2] = { 0, 0 };
		int rc = yj_store_read(c->ctl->core->store, s_verify_read, r);
		cJSON_AddNumberToObject(c->out, "checked", (double)r[0]);
		if (rc) {
			cJSON_AddNumberToObject(c->out, "first_bad", (double)r[1]);
			return s_fail(c, 1, "audit chain broken at record %llu: a record was changed, removed or reordered",
				      (unsigned long long)r[1]);
		}
		cJSON_AddStringToObject(c->out, "result", "intact");
		return;
	}
	if (sub)
		return s_fail(c, 2, "audit takes [--since T] [--recipient R] [--child ID], or verify [--anchor SEQ:HASH]");
	struct s_audit_list l = { .c = c, .limit = 1000, .since_us = INT64_MIN, .recipient = s_arg_str(c, "recipient") };
	long long lim = s_arg_u64(c, "limit");
	if (lim > 0)
		l.limit = (long)lim;
	const char *since = s_arg_str(c, "since");
	int32_t off;
	if (since && yj_time_parse(since, strlen(since), &l.since_us, &off))
		return s_fail(c, 2, "--since must be RFC 3339 with offset");
	/* Every disclosure of one child is that child's history. */
	if (s_arg_str(c, "child") && !s_require_reason(c, "audit --child"))
		return;
	l.list = cJSON_AddArrayToObject(c->out, "records");
	int rc = yj_store_read(c->ctl->core->store, s_audit_read, &l);
	if (rc >= 0 && s_arg_str(c, "child") && s_audit_consult(c, "audit --child", l.child_seqs.v, l.child_seqs.n))
		cJSON_DeleteItemFromObject(c->out, "records");
	free(l.child_seqs.v);
	if (rc < 0)
		s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
}

/* digest pending YJS: the events routed to a YJS's digest so far. */
struct s_pending_list {
	const char *rcpt;
	cJSON *list;
};

static int s_digest_pending_cb(void *arg, uint64_t seq, const char *rule)
{
	struct s_pending_list *p = arg;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "seq", (double)seq);
	cJSON_AddStringToObject(o, "rule", rule);
	cJSON_AddItemToArray(p->list, o);
	return 0;
}

static int s_digest_pending_read(struct yj_txn *txn, void *arg)
{
	struct s_pending_list *p = arg;
	int rc = yj_digests_entries(txn, p->rcpt, 0, UINT64_MAX, s_digest_pending_cb, p);
	return rc < 0 ? rc : 0;
}

/* A JSON string's content as cJSON prints it (the reply is the one
 * cJSON_PrintUnformatted would give). */
static void s_json_chars(struct yj_bigbuf *b, const char *v, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		char esc[8];
		const char *e = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f"
				: ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : NULL;
		if (!e) {
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			e = esc;
		}
		yj_bigbuf_add(b, v + run, i - run);
		yj_bigbuf_add(b, e, strlen(e));
		run = i + 1;
	}
	yj_bigbuf_add(b, v + run, n - run);
}

static void s_json_member(struct yj_bigbuf *b, const char *key, const char *v)
{
	yj_bigbuf_add(b, "\"", 1);
	s_json_chars(b, key, strlen(key));
	yj_bigbuf_add(b, "\":\"", 3);
	s_json_chars(b, v ? v : "", v ? strlen(v) : 0);
	yj_bigbuf_add(b, "\"", 1);
}

static ssize_t s_json_stream_write(void *cookie, const char *data, size_t n)
{
	struct yj_bigbuf *b = cookie;
	s_json_chars(b, data, n);
	return b->err ? -1 : (ssize_t)n;
}

/* The preview's reply, written as the digest is rendered: each rendering
 * goes into it as a JSON string straight away, so the daemon holds the
 * reply alone, never the renderings, a cJSON tree of them and its print as
 * well (docs/performance.md, "Memory"). */
struct s_preview {
	const struct yj_config *cfg;
	const char *yjs;
	int full;                /* --json: the HTML and the CSV too */
	struct yj_bigbuf body;   /* owned: the reply */
};

static int s_preview_write(void *arg, struct yj_digest_view *v, const struct yj_digest_content *dc)
{
	static const cookie_io_functions_t io = { .write = s_json_stream_write };
	static const struct {
		const char *key;
		unsigned part;
	} parts[] = { { "text", YJ_DIGEST_TEXT }, { "html", YJ_DIGEST_HTML }, { "csv", YJ_DIGEST_CSV } };
	struct s_preview *p = arg;
	struct yj_bigbuf *b = &p->body;
	char subject[400], num[64];
	int rc = 0;
	const struct yj_recipient *r = yj_config_recipient(p->cfg, p->yjs);
	/* As the email transport titles it (interfaces.md §5). */
	snprintf(subject, sizeof(subject), "[OFFICIAL-SENSITIVE] yjlink daily digest %s %s: %u children",
		 r ? r->name : p->yjs, dc->date, dc->children);
	yj_bigbuf_add(b, "{", 1);
	s_json_member(b, "id", dc->id);
	yj_bigbuf_add(b, ",", 1);
	s_json_member(b, "subject", subject);
	yj_bigbuf_add(b, ",", 1);
	s_json_member(b, "date", dc->date);
	yj_bigbuf_add(b, ",\"window\":{", 11);
	s_json_member(b, "from", dc->window_from);
	yj_bigbuf_add(b, ",", 1);
	s_json_member(b, "to", dc->window_to);
	yj_bigbuf_add(b, "},", 2);
	s_json_member(b, "attachment", dc->csv_name);
	int w = snprintf(num, sizeof(num), ",\"children\":%u,\"events\":%u", dc->children, dc->events);
	yj_bigbuf_add(b, num, (size_t)w);
	/* The HTML and the CSV only when asked for (--json): they are most of the size. */
	for (size_t i = 0; !rc && i < (p->full ? 3 : 1); i++) {
		yj_bigbuf_add(b, ",\"", 2);
		yj_bigbuf_add(b, parts[i].key, strlen(parts[i].key));
		yj_bigbuf_add(b, "\":\"", 3);
		FILE *f = fopencookie(b, "w", io); /* owned here */
		if (!f)
			return YJ_ENOMEM;
		rc = yj_digest_write(v, parts[i].part, f);
		if (fclose(f) && !rc)
			rc = YJ_ENOMEM;
		yj_bigbuf_add(b, "\"", 1);
	}
	yj_bigbuf_add(b, "}", 1);
	return rc ? rc : b->err;
}

static void s_digest_preview(struct s_call *c, const char *yjs, const char *date)
{
	struct yj_digest_content dc;
	struct s_preview p = { c->ctl->core->cfg, yjs, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->args, "full")),
			       { 0 } };
	char err[300] = "";
	int rc = yj_digest_preview_view(c->ctl->core->digest, yjs, date, s_preview_write, &p, &dc, err, sizeof(err));
	if (rc) {
		yj_bigbuf_free(&p.body);
		return s_fail(c, rc == YJ_EINVAL ? 2 : 1, "%s", err);
	}
	if (s_require_reason(c, "digest preview") && !s_audit_consult(c, "digest preview", dc.seqs, dc.n_seqs)) {
		c->body_len = p.body.len;
		c->body = yj_bigbuf_take(&p.body);
	}
	yj_bigbuf_free(&p.body);
	yj_digest_content_free(&dc);
	/* The index leaves a few MiB free in the heap: give them back once sent. */
	c->trim = 1;
}

static void s_cmd_digest(struct s_call *c)
{
	const char *sub = s_arg_str(c, "sub"), *yjs = s_arg_str(c, "arg"), *date = s_arg_str(c, "date");
	if (sub && !strcmp(sub, "preview") && yjs)
		return s_digest_preview(c, yjs, date);
	if (sub && !strcmp(sub, "send") && yjs) {
		char err[300] = "", actor[48];
		if (!date)
			return s_fail(c, 2, "digest send needs --date YYYY-MM-DD (the day of the digest to send again)");
		snprintf(actor, sizeof(actor), "uid:%ld", c->uid);
		int n = yj_digest_resend(c->ctl->core->digest, yjs, date, actor, err, sizeof(err));
		if (n < 0)
			return s_fail(c, n == YJ_EINVAL ? 2 : 1, "%s", err);
		yj_notice("control: digest of %s for %s resent by uid %ld", yjs, date, c->uid);
		cJSON_AddNumberToObject(c->out, "queued", n);
		yj_outbox_kick(c->ctl->core->outbox);
		return;
	}
	if (!sub || strcmp(sub, "pending") || !yjs)
		return s_fail(c, 2, "digest takes: preview YJS [--date D] | send YJS --date D | pending YJS");
	if (!yj_config_recipient(c->ctl->core->cfg, yjs))
		return s_fail(c, 1, "no recipient '%s' in the config", yjs);
	struct s_pending_list p = { yjs, cJSON_AddArrayToObject(c->out, "entries") };
	int rc = yj_store_read(c->ctl->core->store, s_digest_pending_read, &p);
	if (rc < 0)
		s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
}

static int s_quar_drop_write(struct yj_txn *txn, void *arg)
{
	struct s_quar *q = arg;
	char why[700];
	int rc = yj_quarantine_del(txn, q->id);
	if (rc)
		return rc;
	/* An erasure log names what was erased, never repeats it. */
	snprintf(why, sizeof(why), "quarantine entry %llu: %s", (unsigned long long)q->id, s_arg_str(q->c, "reason"));
	return s_audit_action(txn, q->c, "erasure", NULL, 0, "", why);
}

/* purge --dry-run: what retention would erase now (events by when they were
 * stored; audit records by their time). */
struct s_purge {
	int64_t event_cut_us, audit_cut_us;
	uint64_t events, first_seq, last_seq, audit;
};

static int s_audit_old_cb(void *arg, const Yjlink__V1__AuditRecord *a)
{
	struct s_purge *p = arg;
	if (a->at_us >= p->audit_cut_us)
		return 1;
	p->audit++;
	return 0;
}

static int s_purge_read(struct yj_txn *txn, void *arg)
{
	struct s_purge *p = arg;
	uint64_t cut = yj_events_seq_at(txn, p->event_cut_us);
	int rc = yj_events_first_seq(txn, &p->first_seq);
	if (rc < 0)
		return rc;
	if (cut && p->first_seq && cut >= p->first_seq) {
		p->events = cut - p->first_seq + 1;
		p->last_seq = cut;
	}
	rc = yj_audit_each(txn, 0, s_audit_old_cb, p);
	return rc < 0 ? rc : 0;
}

static void s_cmd_purge(struct s_call *c)
{
	const struct yj_config *cfg = c->ctl->core->cfg;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->args, "dry_run"))) {
		/* Erase now what the hourly job would: in bounded batches on the
		 * loop (ingest commits in between), audited with the caller. */
		char actor[48];
		uint64_t due = 0;
		snprintf(actor, sizeof(actor), "uid:%ld", c->uid);
		int rc = c->ctl->core->retention ? yj_retention_run_now(c->ctl->core->retention, actor, &due) : YJ_ENOENT;
		if (rc)
			return s_fail(c, 1, "cannot start the erasure: %s", yj_strerror(rc));
		cJSON_AddBoolToObject(c->out, "started", 1);
		cJSON_AddNumberToObject(c->out, "events", (double)due);
		cJSON_AddItemToObject(c->out, "events_stored_before",
				      yj_time_to_json(yj_retention_cutoff(cfg, yj_clock_now_us())));
		return;
	}
	int64_t now = yj_clock_now_us();
	struct s_purge p = { now - cfg->retention_event_days * 86400 * INT64_C(1000000),
			     now - cfg->retention_audit_days * 86400 * INT64_C(1000000), 0, 0, 0, 0 };
	int rc = yj_store_read(c->ctl->core->store, s_purge_read, &p);
	if (rc < 0)
		return s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
	cJSON_AddNumberToObject(c->out, "events", (double)p.events);
	if (p.events) {
		cJSON_AddNumberToObject(c->out, "first_seq", (double)p.first_seq);
		cJSON_AddNumberToObject(c->out, "last_seq", (double)p.last_seq);
	}
	cJSON_AddItemToObject(c->out, "events_stored_before", yj_time_to_json(p.event_cut_us));
	cJSON_AddNumberToObject(c->out, "audit_records", (double)p.audit);
	cJSON_AddItemToObject(c->out, "audit_before", yj_time_to_json(p.audit_cut_us));
}

/* report --from D --to D [--yjs ID] --format html|csv|json (interfaces.md
 * §6): aggregate figures only, suppressed (report.c), so no --reason; who
 * asked is logged. The report is built in a helper process (reportjob.h),
 * so the loop goes on meanwhile; the reply follows when it is ready,
 * carrying the rendering ("report" for json, "content" for html and csv). */
static void s_report_ready(void *arg, struct yj_report_result *res)
{
	struct s_later *l = arg;
	cJSON *out = cJSON_CreateObject();
	int code = 0;

	if (!out) {
		s_reply_later(l, 1, NULL, 0);
		return;
	}
	if (res->rc) {
		code = res->rc == YJ_EINVAL ? 2 : 1;
		cJSON_AddStringToObject(out, "error", *res->err ? res->err : yj_strerror(res->rc));
		goto out;
	}
	yj_notice("control: report for uid %ld ready: %zu events read", l->uid, res->events_read);
	if (!strcmp(l->format, "json")) {
		cJSON *o = cJSON_Parse(res->json);
		if (!o || !cJSON_AddItemToObject(out, "report", o)) {
			cJSON_Delete(o);
			code = 1;
			cJSON_AddStringToObject(out, "error", "report: out of memory");
			goto out;
		}
	} else {
		const char *text = !strcmp(l->format, "csv") ? res->csv : res->html;
		if (!cJSON_AddStringToObject(out, "content", text ? text : "")) {
			code = 1;
			cJSON_AddStringToObject(out, "error", "report: out of memory");
			goto out;
		}
	}
	cJSON_AddStringToObject(out, "format", l->format);
out:
	s_reply_later(l, code, out, 1);
	cJSON_Delete(out);
}

static void s_cmd_report(struct s_call *c)
{
	const char *from = s_arg_str(c, "from"), *to = s_arg_str(c, "to"), *yjs = s_arg_str(c, "yjs");
	const char *format = s_arg_str(c, "format");

	if (!from || !to || !format)
		return s_fail(c, 2, "report needs --from YYYY-MM-DD --to YYYY-MM-DD --format html|csv|json");
	if (strcmp(format, "html") && strcmp(format, "csv") && strcmp(format, "json"))
		return s_fail(c, 2, "--format must be html, csv or json");
	if (!c->ctl->core->reports)
		return s_fail(c, 1, "reports are not available");
	struct yj_report_params p = { .from = from, .to = to, .yjs = yjs, .population = s_arg_str(c, "population"), .now_us = yj_clock_now_us() };
	unsigned formats = !strcmp(format, "json") ? YJ_REPORT_JSON : !strcmp(format, "csv") ? YJ_REPORT_CSV : YJ_REPORT_HTML;
	struct s_later *l = s_defer(c, format);
	if (!l)
		return s_fail(c, 1, "report: out of memory");
	int rc = yj_reportjob_start(c->ctl->core->reports, &p, formats, s_report_ready, l);
	if (rc) {
		c->deferred = 0;
		free(l->format);
		free(l);
		if (rc == YJ_EAGAIN)
			return s_fail(c, 1, "%d reports are being built already: ask again in a moment", YJ_REPORTJOB_MAX);
		return s_fail(c, 1, "report: the helper cannot be started: %s (see the daemon's log)", yj_strerror(rc));
	}
	yj_notice("control: report %s..%s (%s, %s) by uid %ld: building", from, to, yjs ? yjs : "force", format, c->uid);
}

/* --- recipients (interfaces.md §6) --- */

/* Jobs per recipient id and queue, counted in one read. */
struct s_rcpt_count {
	char *id;
	uint64_t n[3];  /* by enum yj_note_queue */
};

struct s_rcpt_counts {
	struct s_rcpt_count *v;
	size_t n, cap;
	enum yj_note_queue q;
	int rc;
};

static struct s_rcpt_count *s_rcpt_count_of(struct s_rcpt_counts *k, const char *id, int add)
{
	for (size_t i = 0; i < k->n; i++) {
		if (!strcmp(k->v[i].id, id))
			return &k->v[i];
	}
	if (!add)
		return NULL;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		struct s_rcpt_count *nv = realloc(k->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		k->v = nv;
		k->cap = cap;
	}
	struct s_rcpt_count *e = &k->v[k->n];
	memset(e, 0, sizeof(*e));
	if (!(e->id = strdup(id)))
		return NULL;
	k->n++;
	return e;
}

static int s_rcpt_count_cb(void *arg, const Yjlink__V1__Notification *n)
{
	struct s_rcpt_counts *k = arg;
	struct s_rcpt_count *e = s_rcpt_count_of(k, n->recipient ? n->recipient : "", 1);
	if (!e)
		return YJ_ENOMEM;
	e->n[k->q]++;
	return 0;
}

static int s_rcpt_count_read(struct yj_txn *txn, void *arg)
{
	struct s_rcpt_counts *k = arg;
	for (int q = YJ_NOTES_OUTBOX; q <= YJ_NOTES_UNROUTABLE; q++) {
		k->q = (enum yj_note_queue)q;
		int rc = yj_notes_each(txn, k->q, s_rcpt_count_cb, k);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static const char *s_rcpt_kind_name(enum yj_rcpt_kind k)
{
	static const char *const names[] = { "yjs", "children_services", "liaison_diversion", "force" };
	return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

/* What an operator needs of a recipient's jobs in one word. */
static const char *s_rcpt_state(const struct yj_recipient *r, const struct s_rcpt_count *e)
{
	if (!r || r->output < 0)
		return e && e->n[YJ_NOTES_UNROUTABLE] ? "unroutable: notifications waiting" : "no destination";
	if (e && e->n[YJ_NOTES_DLQ])
		return "dead letters";
	if (e && e->n[YJ_NOTES_OUTBOX])
		return "notifications waiting";
	return "ok";
}

static void s_rcpt_counts_json(cJSON *o, const struct s_rcpt_count *e)
{
	cJSON_AddNumberToObject(o, "waiting", e ? (double)e->n[YJ_NOTES_OUTBOX] : 0);
	cJSON_AddNumberToObject(o, "unroutable", e ? (double)e->n[YJ_NOTES_UNROUTABLE] : 0);
	cJSON_AddNumberToObject(o, "dead_letters", e ? (double)e->n[YJ_NOTES_DLQ] : 0);
}

struct s_missing {
	cJSON *list;
	struct s_rcpt_counts *k;
};

static void s_missing_cb(void *arg, enum yj_directory_kind kind, const char *id, const char *code, const char *name)
{
	struct s_missing *m = arg;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "kind", kind == YJ_DIRECTORY_FORCE ? "force" : "children_services");
	cJSON_AddStringToObject(o, "code", code);
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "directory", yj_directory_file(kind));
	s_rcpt_counts_json(o, s_rcpt_count_of(m->k, id, 0));
	cJSON_AddItemToArray(m->list, o);
}

static void s_cmd_recipients(struct s_call *c)
{
	const struct yj_config *cfg = c->ctl->core->cfg;
	struct s_rcpt_counts k = { 0 };
	int missing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->args, "missing"));

	int rc = yj_store_read(c->ctl->core->store, s_rcpt_count_read, &k);
	if (rc) {
		s_fail(c, 1, "cannot read the outbox: %s", yj_strerror(rc));
		goto out;
	}
	if (missing) {
		struct s_missing m = { cJSON_AddArrayToObject(c->out, "missing"), &k };
		size_t n = yj_directory_missing(cfg, c->ctl->core->ref, s_missing_cb, &m);
		cJSON_AddNumberToObject(c->out, "count", (double)n);
		goto out;
	}
	cJSON *list = cJSON_AddArrayToObject(c->out, "recipients");
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		const struct s_rcpt_count *e = s_rcpt_count_of(&k, r->id, 0);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", r->id);
		cJSON_AddStringToObject(o, "kind", s_rcpt_kind_name(r->kind));
		cJSON_AddStringToObject(o, "name", r->name);
		cJSON_AddStringToObject(o, "transport", r->transport);
		cJSON_AddStringToObject(o, "source", r->from_directory ? "directory" : "config");
		cJSON_AddStringToObject(o, "declared_at", r->file ? r->file : "");
		cJSON_AddNumberToObject(o, "line", r->line);
		if (r->dsa_id)
			cJSON_AddStringToObject(o, "dsa", r->dsa_id);
		cJSON_AddStringToObject(o, "state", s_rcpt_state(r, e));
		s_rcpt_counts_json(o, e);
		cJSON_AddItemToArray(list, o);
	}
	/* Jobs for ids nobody declares (a directory row still empty): they wait too, and are shown. */
	for (size_t i = 0; i < k.n; i++) {
		if (yj_config_recipient(cfg, k.v[i].id))
			continue;
		cJSON *o = cJSON_CreateObject();
		const char *colon = strchr(k.v[i].id, ':');
		char kind[40];
		cJSON_AddStringToObject(o, "id", k.v[i].id);
		snprintf(kind, sizeof(kind), "%.*s", colon ? (int)(colon - k.v[i].id) : 0, k.v[i].id);
		cJSON_AddStringToObject(o, "kind", kind);
		cJSON_AddStringToObject(o, "name", "");
		cJSON_AddStringToObject(o, "transport", "none");
		cJSON_AddStringToObject(o, "source", "none");
		cJSON_AddStringToObject(o, "state", s_rcpt_state(NULL, &k.v[i]));
		s_rcpt_counts_json(o, &k.v[i]);
		cJSON_AddItemToArray(list, o);
	}
out:
	for (size_t i = 0; i < k.n; i++)
		free(k.v[i].id);
	free(k.v);
}

struct s_command {
	const char *name;
	void (*fn)(struct s_call *c);
};

static const struct s_command s_commands[] = {
	{ "status", s_cmd_status },
	{ "events", s_cmd_events },
	{ "show", s_cmd_show },
	{ "quarantine", s_cmd_quarantine },
	{ "clock", s_cmd_clock },
	{ "reload", s_cmd_reload },
	{ "outbox", s_cmd_outbox },
	{ "dlq", s_cmd_dlq },
	{ "holds", s_cmd_holds },
	{ "replay", s_cmd_replay },
	{ "audit", s_cmd_audit },
	{ "digest", s_cmd_digest },
	{ "purge", s_cmd_purge },
	{ "report", s_cmd_report },
	{ "recipients", s_cmd_recipients },
};

/* A command an adapter answers (adapter.h: `command`): 1 when one did. */
static int s_adapter_command(struct s_call *c, const char *name)
{
	const struct yj_core *core = c->ctl->core;
	for (size_t i = 0; i < core->n_adapters; i++) {
		const struct yj_adapter *a = core->adapters[i];
		if (!a->command || strcmp(a->command, name) || !a->run_command)
			continue;
		if (!core->adapter_state[i]) {
			s_fail(c, 1, "%s is not running: nothing to show", a->conf.name);
			return 1;
		}
		char *args = c->args ? cJSON_PrintUnformatted(c->args) : NULL, *answer = NULL;
		int code = a->run_command(core->adapter_state[i], args ? args : "{}", &answer);
		cJSON_free(args);
		cJSON *o = answer ? cJSON_Parse(answer) : NULL;
		free(answer);
		if (!cJSON_IsObject(o)) {
			cJSON_Delete(o);
			s_fail(c, 1, "%s gave no answer", a->conf.name);
			return 1;
		}
		cJSON_Delete(c->out);
		c->out = o;
		c->code = code >= 0 && code <= 2 ? code : 1;
		return 1;
	}
	return 0;
}

static long s_peer_uid(zmq_msg_t *m)
{
	/* libzmq appends ":uid:gid:pid" from SO_PEERCRED to an ipc peer's address. */
	const char *pa = zmq_msg_gets(m, "Peer-Address");
	if (!pa)
		return -1;
	const char *p = strchr(pa, ':');
	if (!p)
		return -1;
	char *end = NULL;
	long uid = strtol(p + 1, &end, 10);
	return end != p + 1 ? uid : -1;
}

static void s_body_free(void *data, void *hint)
{
	(void)hint;
	yj_big_free(data);
}

static void s_handle(struct yj_control *ctl, zmq_msg_t *id, zmq_msg_t *frames, int n)
{
	struct s_call c = { .ctl = ctl, .out = cJSON_CreateObject(), .uid = s_peer_uid(&frames[0]), .id = id };
	cJSON *req = NULL;

	if (!c.out)
		return;
	if (n != 2 || zmq_msg_size(&frames[0]) != 4 || memcmp(zmq_msg_data(&frames[0]), "YJC1", 4)) {
		s_fail(&c, 2, "expected frames YJC1, JSON request");
		goto reply;
	}
	req = cJSON_ParseWithLength(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]));
	const cJSON *cmd = req ? cJSON_GetObjectItemCaseSensitive(req, "cmd") : NULL;
	c.args = req ? cJSON_GetObjectItemCaseSensitive(req, "args") : NULL;
	if (!cJSON_IsString(cmd)) {
		s_fail(&c, 2, "request must be a JSON object with \"cmd\"");
		goto reply;
	}
	size_t i;
	for (i = 0; i < sizeof(s_commands) / sizeof(s_commands[0]); i++) {
		if (!strcmp(s_commands[i].name, cmd->valuestring)) {
			s_commands[i].fn(&c);
			break;
		}
	}
	if (i == sizeof(s_commands) / sizeof(s_commands[0]) && !s_adapter_command(&c, cmd->valuestring))
		s_fail(&c, 2, "unknown command '%.64s'", cmd->valuestring);
reply:
	if (c.body) {
		char code[2] = { (char)('0' + c.code), 0 };
		zmq_send(ctl->sock, zmq_msg_data(id), zmq_msg_size(id), ZMQ_SNDMORE | ZMQ_DONTWAIT);
		zmq_send(ctl->sock, "YJC1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
		zmq_send(ctl->sock, code, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
		/* Handed over, not copied: ZeroMQ unmaps it once sent (a digest preview's tens of MiB). */
		zmq_msg_t m;
		if (zmq_msg_init_data(&m, c.body, c.body_len, s_body_free, NULL)) {
			yj_big_free(c.body);
		} else if (zmq_msg_send(&m, ctl->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
		}
		c.body = NULL;
	} else if (!c.deferred) {
		s_send_reply(ctl, zmq_msg_data(id), zmq_msg_size(id), c.code, c.out, c.trim);
	}
	cJSON_Delete(c.out);
	cJSON_Delete(req);
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct yj_control *ctl = arg;
	(void)loop;
	(void)fd;
	(void)revents;
	for (int budget = 0; budget < 64; budget++) {
		zmq_msg_t id, f[3];
		int n = 0, more;
		zmq_msg_init(&id);
		if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&id);
			return 0;
		}
		more = zmq_msg_more(&id);
		while (more) {
			zmq_msg_t *m = &f[n < 3 ? n : 2];
			if (n >= 3)
				zmq_msg_close(m);
			zmq_msg_init(m);
			if (zmq_msg_recv(m, sock, 0) < 0) {
				zmq_msg_close(m);
				break;
			}
			more = zmq_msg_more(m);
			n++;
		}
		int kept = n < 3 ? n : 3;
		if (kept >= 1)
			s_handle(ctl, &id, f, n);
		for (int i = 0; i < kept; i++)
			zmq_msg_close(&f[i]);
		zmq_msg_close(&id);
	}
	return 0;
}

int yj_control_start(struct yj_core *core, struct yj_control **out)
{
	struct yj_control *ctl = calloc(1, sizeof(*ctl));
	const char *ep = core->cfg->control_endpoint;
	int linger = 500;

	if (!ctl)
		return YJ_ENOMEM;
	ctl->core = core;
	ctl->sock = zmq_socket(core->zmq_ctx, ZMQ_ROUTER);
	if (!ctl->sock)
		goto fail;
	zmq_setsockopt(ctl->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (!strncmp(ep, "ipc://", 6)) {
		/* A stale socket file from a crash would make bind fail. */
		unlink(ep + 6);
	}
	if (zmq_bind(ctl->sock, ep) != 0) {
		yj_err("control: cannot bind %s: %s (does its directory exist? set control.endpoint)", ep,
		       zmq_strerror(zmq_errno()));
		goto fail;
	}
	if (!strncmp(ep, "ipc://", 6)) {
		/* Who may connect is who may write the socket file: the owner and
		 * the yjlink group (the unit's; an operator joins it). */
		struct group *g = getgrnam("yjlink");
		if (g && chown(ep + 6, (uid_t)-1, g->gr_gid) != 0)
			yj_warn("control: cannot give %s to group yjlink: %s", ep + 6, strerror(errno));
		if (chmod(ep + 6, 0660) != 0) {
			yj_err("control: cannot make %s mode 0660: %s", ep + 6, strerror(errno));
			goto fail;
		}
	}
	if (yj_loop_add(core->loop, ctl->sock, -1, ZMQ_POLLIN, s_on_readable, ctl))
		goto fail;
	*out = ctl;
	return 0;
fail:
	if (ctl->sock)
		zmq_close(ctl->sock);
	free(ctl);
	return YJ_EIO;
}

void yj_control_stop(struct yj_control **pctl)
{
	struct yj_control *ctl = pctl ? *pctl : NULL;
	if (!ctl)
		return;
	yj_loop_remove(ctl->core->loop, ctl->sock, -1);
	zmq_close(ctl->sock);
	free(ctl);
	*pctl = NULL;
}
