/* outbox.c: see outbox.h. */
#include "outbox.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "err.h"
#include "event_json.h"
#include "log.h"
#include "route.h"

#define S_TICK_MS 100
/* Deliveries under way per recipient while it is healthy. After a transient
 * failure it goes back to one at a time, oldest first, until it has caught
 * up, so order is kept while it fails. */
#define S_WINDOW 32

/* Delivery state of one recipient. */
struct s_rcpt {
	char *id;                 /* recipient id, owned */
	uint64_t started[S_WINDOW]; /* numbers started and not yet committed as done: never started twice */
	unsigned n_started;
	int ordered;              /* after a transient failure: one at a time, oldest first */
	int64_t next_attempt_us;  /* backoff: not before this */
	unsigned seen_pass;       /* last dispatch pass that found work for it */
};

/* One finished delivery, waiting for the completion commit. */
struct s_done {
	struct yj_outbox *ob;
	struct s_rcpt *rcpt;
	uint64_t number;
	uint64_t seq;
	enum yj_delivery_result result;
	int transport;
	char *detail;             /* owned */
	char *address;            /* owned */
	cJSON *fields;            /* field paths supplied, owned */
	int finished;             /* done callback has run */
	struct s_done *prev, *next; /* the live list: started, not yet finished */
};

struct yj_outbox {
	struct yj_outbox_deps d;
	struct s_rcpt *rcpts;     /* owned, n_rcpts */
	size_t n_rcpts;
	struct s_done **done;     /* finished, not yet committed; owned */
	size_t n_done, cap_done;
	int64_t timer;            /* tick timer id */
	uint64_t in_flight;
	uint64_t delivered[YJ_TRANSPORT_PEER + 1][YJ_DELIVERY_RESULTS];
	int dispatching;          /* guards re-entry from synchronous completions */
	unsigned pass;            /* dispatch passes so far */
	struct s_done *live;      /* deliveries under way, freed at stop if never finished */
};

static const char *s_transport_name(int t)
{
	static const char *const names[] = { "none", "email", "webhook", "zmq", "peer" };
	return t >= 0 && t <= YJ_TRANSPORT_PEER ? names[t] : "none";
}

void yj_notification_id(const struct yj_config *cfg, uint64_t n, char *buf, size_t size)
{
	snprintf(buf, size, "%s-%012" PRIu64, cfg->deployment_id, n);
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
	if (!(r->id = strdup(id)))
		return NULL;
	ob->n_rcpts++;
	return r;
}

/* --- the notification body --- */

struct s_filter {
	const struct yj_recipient *r;
	int held;                 /* live investigation not released */
	cJSON *fields;            /* collects supplied paths, may be NULL */
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

cJSON *yj_outbox_build(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *n,
		       const struct yj_recipient *r, cJSON *fields)
{
	const void *data;
	size_t len;
	char id[96];
	if (yj_store_get_event(txn, n->seq, &data, &len))
		return NULL;
	Yjlink__V1__Record *rec = yjlink__v1__record__unpack(NULL, len, data);
	if (!rec || !rec->event) {
		yjlink__v1__record__free_unpacked(rec, NULL);
		return NULL;
	}
	struct s_filter f = { r, yj_route_is_held(txn, n->seq), fields };
	cJSON *o = cJSON_CreateObject();
	yj_notification_id(cfg, n->number, id, sizeof(id));
	cJSON_AddStringToObject(o, "notification_id", id);
	cJSON_AddStringToObject(o, "kind", n->kind ? n->kind : "");
	cJSON_AddStringToObject(o, "recipient", n->recipient ? n->recipient : "");
	cJSON_AddItemToObject(o, "created_at", yj_time_to_json(n->created_at_us));
	cJSON_AddStringToObject(o, "rule", n->rule ? n->rule : "");
	cJSON_AddStringToObject(o, "legal_basis", n->legal_basis ? n->legal_basis : "");
	cJSON_AddStringToObject(o, "classification", "OFFICIAL-SENSITIVE");
	if (n->has_out_of_hours && n->out_of_hours)
		cJSON_AddBoolToObject(o, "out_of_hours", 1);
	if (f.held)
		cJSON_AddBoolToObject(o, "withheld", 1);
	cJSON *ev = yj_event_to_json(rec->event, rec->seq, rec->stored_at_us, s_allow, &f);
	yjlink__v1__record__free_unpacked(rec, NULL);
	if (!ev) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddItemToObject(o, "event", ev);
	return o;
}

/* Plain text and a phone-readable HTML table of the notification. */
static void s_render(const cJSON *o, const char *prefix, FILE *txt, FILE *html)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, o) {
		char path[256];
		if (it->string)
			snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", it->string);
		else
			snprintf(path, sizeof(path), "%s", prefix);
		if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
			s_render(it, path, txt, html);
			continue;
		}
		char *v = cJSON_IsString(it) ? strdup(it->valuestring) : cJSON_PrintUnformatted(it);
		fprintf(txt, "%s: %s\r\n", path, v ? v : "");
		fprintf(html, "<tr><th style=\"text-align:left;padding:4px\">%s</th><td style=\"padding:4px\">", path);
		for (const char *p = v ? v : ""; *p; p++) {
			switch (*p) {
			case '<': fputs("&lt;", html); break;
			case '>': fputs("&gt;", html); break;
			case '&': fputs("&amp;", html); break;
			case '"': fputs("&quot;", html); break;
			default: fputc(*p, html);
			}
		}
		fputs("</td></tr>\r\n", html);
		free(v);
	}
}

/* --- dispatch --- */

static void s_on_done(void *arg, enum yj_delivery_result result, const char *detail, const char *address)
{
	struct s_done *dn = arg;
	dn->result = result;
	dn->detail = strdup(detail ? detail : "");
	dn->address = strdup(address ? address : "");
	dn->finished = 1;
	struct yj_outbox *ob = dn->ob;
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
			/* Without memory the completion is lost: the notification stays in
			 * the outbox and goes again (same id) after a restart. */
			yj_err("outbox: out of memory recording a completion");
			return;
		}
		ob->done = nd;
		ob->cap_done = ncap;
	}
	ob->done[ob->n_done++] = dn;
	yj_loop_wake(ob->d.loop);
}

static const struct yj_adapter *s_adapter_for(struct yj_outbox *ob, int transport, void **state)
{
	for (size_t i = 0; yj_adapters[i]; i++) {
		if (yj_adapters[i]->deliver && yj_adapters[i]->transport == transport && ob->d.adapter_state[i]) {
			*state = ob->d.adapter_state[i];
			return yj_adapters[i];
		}
	}
	return NULL;
}

struct s_dispatch {
	struct yj_outbox *ob;
	int64_t now;
	char seen[300];           /* last recipient looked at */
	int started;
};

/* Start the head delivery of one recipient if it is due. */
static int s_dispatch_one(struct yj_txn *txn, struct s_dispatch *ds, const char *rcpt_id, uint64_t number)
{
	struct yj_outbox *ob = ds->ob;
	const struct yj_config *cfg = *ob->d.cfg;
	struct s_rcpt *rs = s_rcpt(ob, rcpt_id);
	uint8_t k[8];
	const void *v;
	size_t vlen;

	if (!rs || rs->n_started >= S_WINDOW || rs->next_attempt_us > ds->now)
		return 0;
	for (unsigned i = 0; i < rs->n_started; i++) {
		if (rs->started[i] == number)
			return 0;  /* under way, or delivered and waiting for its commit */
	}
	yj_be64_put(k, number);
	if (yj_txn_get(txn, YJ_DB_OUTBOX, k, 8, &v, &vlen))
		return 0;
	Yjlink__V1__Notification *n = yjlink__v1__notification__unpack(NULL, vlen, v);
	if (!n)
		return 0;
	const struct yj_recipient *r = yj_config_recipient(cfg, rcpt_id);
	void *astate = NULL;
	const struct yj_adapter *a = r ? s_adapter_for(ob, r->transport, &astate) : NULL;
	if (!a || (n->has_not_before_us && n->not_before_us > ds->now) ||
	    (n->has_next_attempt_us && n->next_attempt_us > ds->now)) {
		if (n->has_next_attempt_us && n->next_attempt_us > rs->next_attempt_us)
			rs->next_attempt_us = n->next_attempt_us;
		yjlink__v1__notification__free_unpacked(n, NULL);
		return 0;
	}
	struct s_done *dn = calloc(1, sizeof(*dn));
	cJSON *body = NULL;
	char *json = NULL, *txt = NULL, *html = NULL;
	size_t tlen = 0, hlen = 0;
	int rc = YJ_ENOMEM;
	if (!dn || !(dn->fields = cJSON_CreateArray()))
		goto out;
	body = yj_outbox_build(txn, cfg, n, r, dn->fields);
	if (!body || !(json = cJSON_PrintUnformatted(body)))
		goto out;
	FILE *ft = open_memstream(&txt, &tlen), *fh = open_memstream(&html, &hlen);
	if (ft && fh) {
		fputs("<!doctype html><html><head><meta charset=\"utf-8\">"
		      "<meta name=\"viewport\" content=\"width=device-width\"></head><body>"
		      "<p><b>OFFICIAL-SENSITIVE</b></p><table>\r\n", fh);
		s_render(body, "", ft, fh);
		fputs("</table></body></html>\r\n", fh);
	}
	if (ft)
		fclose(ft);
	if (fh)
		fclose(fh);
	char id[96], subject[200];
	yj_notification_id(cfg, n->number, id, sizeof(id));
	snprintf(subject, sizeof(subject), "[OFFICIAL-SENSITIVE] yjlink %s %s", n->kind ? n->kind : "notification", id);
	struct yj_delivery d = {
		.notification_id = id, .recipient = r, .kind = n->kind, .json = json, .json_len = strlen(json),
		.subject = subject, .text = txt ? txt : "", .html = html ? html : "",
	};
	dn->ob = ob;
	dn->rcpt = NULL;
	dn->number = n->number;
	dn->seq = n->seq;
	dn->transport = r->transport;
	rs->started[rs->n_started++] = number;
	ob->in_flight++;
	/* s_rcpt may realloc the array: remember the recipient by index. */
	dn->rcpt = (struct s_rcpt *)(uintptr_t)(rs - ob->rcpts);
	dn->next = ob->live;
	if (ob->live)
		ob->live->prev = dn;
	ob->live = dn;
	rc = a->deliver(astate, &d, s_on_done, dn);
	if (rc) {
		/* Not even started: try again after a backoff, like a RETRY. */
		s_on_done(dn, YJ_DELIVERY_RETRY, yj_strerror(rc), "");
		rc = 0;
	}
	dn = NULL;
	ds->started++;
out:
	if (dn) {
		cJSON_Delete(dn->fields);
		free(dn);
	}
	cJSON_Delete(body);
	cJSON_free(json);
	free(txt);
	free(html);
	yjlink__v1__notification__free_unpacked(n, NULL);
	return rc;
}

struct s_first {
	char rcpt[300];           /* recipient id of the first key found */
	uint64_t number;          /* its number */
	int found;
};

static int s_first_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_first *f = arg;
	const char *k = key;
	size_t rl = strnlen(k, klen);
	(void)val;
	(void)vlen;
	if (rl + 9 != klen || rl >= sizeof(f->rcpt))
		return 1;
	memcpy(f->rcpt, k, rl);
	f->rcpt[rl] = '\0';
	f->number = yj_be64_get((const uint8_t *)key + rl + 1);
	f->found = 1;
	return 1;
}

static int s_dispatch_read(struct yj_txn *txn, void *arg)
{
	struct s_dispatch *ds = arg;
	uint8_t from[310];
	size_t flen = 0;
	for (;;) {
		struct s_first f = { "", 0, 0 };
		int rc = yj_txn_iter(txn, YJ_DB_OUTBOX_RCPT, flen ? from : NULL, flen, 0, s_first_cb, &f);
		if (rc < 0)
			return rc;
		if (!f.found)
			return 0;
		struct s_rcpt *rs = s_rcpt(ds->ob, f.rcpt);
		if (rs) {
			rs->seen_pass = ds->ob->pass;
			if (rs->ordered) {
				if (rs->n_started == 0 && (rc = s_dispatch_one(txn, ds, f.rcpt, f.number)))
					return rc;
			} else {
				/* Fill the window with the oldest not yet started. */
				uint64_t next = f.number;
				for (unsigned tries = 0; rs->n_started < S_WINDOW && tries < 2 * S_WINDOW; tries++) {
					struct s_first g = { "", 0, 0 };
					uint8_t k2[320];
					size_t k2len = yj_route_rcpt_key(k2, sizeof(k2), f.rcpt, next);
					rc = yj_txn_iter(txn, YJ_DB_OUTBOX_RCPT, k2, k2len, 0, s_first_cb, &g);
					if (rc < 0)
						return rc;
					if (!g.found || strcmp(g.rcpt, f.rcpt))
						break;
					unsigned before = rs->n_started;
					if ((rc = s_dispatch_one(txn, ds, g.rcpt, g.number)))
						return rc;
					if (rs->n_started == before && rs->next_attempt_us > ds->now)
						break;  /* backing off, or not due yet */
					next = g.number + 1;
				}
			}
		}
		/* Every key of this recipient sorts below "<id>\x01". */
		flen = strlen(f.rcpt);
		memcpy(from, f.rcpt, flen);
		from[flen++] = 1;
	}
}

static void s_dispatch(struct yj_outbox *ob)
{
	if (ob->dispatching)
		return;
	ob->dispatching = 1;
	ob->pass++;
	struct s_dispatch ds = { ob, yj_clock_now_us(), "", 0 };
	int rc = yj_store_read(ob->d.store, s_dispatch_read, &ds);
	if (rc < 0)
		yj_warn("outbox: cannot read the outbox: %s", yj_strerror(rc));
	/* A recipient in order mode with nothing left has caught up. */
	for (size_t i = 0; rc >= 0 && i < ob->n_rcpts; i++) {
		if (ob->rcpts[i].ordered && ob->rcpts[i].n_started == 0 && ob->rcpts[i].seen_pass != ob->pass)
			ob->rcpts[i].ordered = 0;
	}
	ob->dispatching = 0;
}

void yj_outbox_kick(struct yj_outbox *ob) { s_dispatch(ob); }

static int s_tick(struct yj_loop *loop, void *arg)
{
	(void)loop;
	s_dispatch(arg);
	return 0;
}

/* --- completions --- */

static int64_t s_backoff_us(const struct yj_config *cfg, uint32_t attempts)
{
	int64_t cap = cfg->delivery_backoff_max_ms, d = cfg->delivery_backoff_min_ms;
	for (uint32_t i = 1; i < attempts && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	/* Full jitter, with a floor so a flapping receiver is not hammered. */
	int64_t floor = cfg->delivery_backoff_min_ms / 2;
	return (floor + (int64_t)randombytes_uniform((uint32_t)(d > floor ? d - floor : 1))) * 1000;
}

/* Take notification number out of the outbox (both tables). */
static int s_remove(struct yj_txn *txn, const char *rcpt, uint64_t number)
{
	uint8_t k[8], rk[320];
	yj_be64_put(k, number);
	int rc = yj_txn_del(txn, YJ_DB_OUTBOX, k, 8);
	if (rc && rc != YJ_ENOENT)
		return rc;
	rc = yj_txn_del(txn, YJ_DB_OUTBOX_RCPT, rk, yj_route_rcpt_key(rk, sizeof(rk), rcpt, number));
	return rc == YJ_ENOENT ? 0 : rc;
}

static int s_audit_delivery(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *n,
			    const struct s_done *dn)
{
	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	char id[96];
	uint64_t seqs[1] = { n->seq };
	size_t nf = (size_t)cJSON_GetArraySize(dn->fields);
	char **fields = calloc(nf + 1, sizeof(char *));
	char *feeds[1] = { NULL };
	const void *data;
	size_t len;
	Yjlink__V1__Record *rec = NULL;
	if (!fields)
		return YJ_ENOMEM;
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, dn->fields) {
		fields[i++] = it->valuestring;
	}
	if (!yj_store_get_event(txn, n->seq, &data, &len))
		rec = yjlink__v1__record__unpack(NULL, len, data);
	feeds[0] = rec && rec->feed ? rec->feed : "";
	yj_notification_id(cfg, n->number, id, sizeof(id));
	a.has_at_us = 1;
	a.at_us = yj_clock_now_us();
	a.action = "disclosure";
	a.actor = "yjlinkd";
	a.recipient = n->recipient;
	a.address = dn->address;
	a.rule = n->rule;
	a.legal_basis = n->legal_basis;
	a.n_seqs = 1;
	a.seqs = seqs;
	a.n_fields = nf;
	a.fields = fields;
	a.n_feeds = 1;
	a.feeds = feeds;
	a.notification_id = id;
	int rc = yj_audit_append(txn, &a);
	yjlink__v1__record__free_unpacked(rec, NULL);
	free(fields);
	if (rc)
		return rc;
	/* Who has had this event: a hold release goes to them. */
	uint8_t dk[320];
	yj_be64_put(dk, n->seq);
	size_t rl = strlen(n->recipient);
	memcpy(dk + 8, n->recipient, rl);
	return yj_txn_put(txn, YJ_DB_DISCLOSED, dk, 8 + rl, "", 0);
}

static int s_complete_one(struct yj_txn *txn, struct yj_outbox *ob, struct s_done *dn)
{
	const struct yj_config *cfg = *ob->d.cfg;
	struct s_rcpt *rs = &ob->rcpts[(uintptr_t)dn->rcpt];
	uint8_t k[8];
	const void *v;
	size_t vlen;
	yj_be64_put(k, dn->number);
	int rc = yj_txn_get(txn, YJ_DB_OUTBOX, k, 8, &v, &vlen);
	if (rc == YJ_ENOENT)
		return 0; /* dropped by an operator meanwhile */
	if (rc)
		return rc;
	Yjlink__V1__Notification *n = yjlink__v1__notification__unpack(NULL, vlen, v);
	if (!n)
		return YJ_ESTORE;
	int64_t now = yj_clock_now_us();
	char *saved_error = NULL;  /* the unpacked last_error, while dn->detail stands in for it */
	int swapped = 0;
	if (dn->result == YJ_DELIVERY_OK) {
		rc = s_remove(txn, rs->id, n->number);
		if (!rc)
			rc = s_audit_delivery(txn, cfg, n, dn);
	} else {
		n->has_attempts = 1;
		n->attempts++;
		saved_error = n->last_error;
		swapped = 1;
		n->last_error = dn->detail;
		int give_up = dn->result == YJ_DELIVERY_FATAL || now - n->created_at_us > cfg->delivery_max_age_s * 1000000;
		if (give_up) {
			n->has_failed_at_us = 1;
			n->failed_at_us = now;
			n->has_next_attempt_us = 0;
			rc = s_remove(txn, rs->id, n->number);
			if (!rc)
				rc = yj_route_put_note(txn, YJ_DB_DLQ, n);
		} else {
			n->has_next_attempt_us = 1;
			n->next_attempt_us = now + s_backoff_us(cfg, n->attempts);
			rc = yj_route_put_note(txn, YJ_DB_OUTBOX, n);
		}
	}
	/* The unpacked string goes back before the free: dn->detail is not ours to free here. */
	if (swapped)
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
	return 0;
}

int yj_outbox_flush(struct yj_outbox *ob)
{
	if (ob->n_done == 0)
		return 0;
	int rc = yj_store_write(ob->d.store, s_complete, ob);
	int64_t now = yj_clock_now_us();
	const struct yj_config *cfg = *ob->d.cfg;
	for (size_t i = 0; i < ob->n_done; i++) {
		struct s_done *dn = ob->done[i];
		struct s_rcpt *rs = &ob->rcpts[(uintptr_t)dn->rcpt];
		char id[96];
		yj_notification_id(cfg, dn->number, id, sizeof(id));
		for (unsigned k = 0; k < rs->n_started; k++) {
			if (rs->started[k] == dn->number) {
				rs->started[k] = rs->started[--rs->n_started];
				break;
			}
		}
		ob->in_flight--;
		ob->delivered[dn->transport][dn->result]++;
		if (rc) {
			/* Not recorded: it stays in the outbox and goes again, same id. */
			rs->next_attempt_us = now + 1000000;
			rs->ordered = 1;
		} else if (dn->result == YJ_DELIVERY_OK) {
			rs->next_attempt_us = 0;
			yj_info("outbox: %s delivered to %s by %s", id, rs->id, s_transport_name(dn->transport));
		} else if (dn->result == YJ_DELIVERY_FATAL) {
			rs->next_attempt_us = 0;
			yj_warn("outbox: %s to %s failed for good (%s): dead-lettered", id, rs->id, dn->detail);
		} else {
			rs->next_attempt_us = now + s_backoff_us(cfg, 1);
			rs->ordered = 1;
			yj_notice("outbox: %s to %s will be retried (%s)", id, rs->id, dn->detail);
		}
		cJSON_Delete(dn->fields);
		free(dn->detail);
		free(dn->address);
		free(dn);
	}
	ob->n_done = 0;
	if (rc)
		yj_err("outbox: cannot record deliveries: %s", yj_strerror(rc));
	s_dispatch(ob);
	return rc;
}

/* --- reconcile, stats, describe --- */

struct s_collect {
	uint64_t *numbers;
	size_t n, cap;
	int from_unroutable;
	const struct yj_config *cfg;
};

static int s_collect_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_collect *c = arg;
	if (klen != 8)
		return 0;
	Yjlink__V1__Notification *n = yjlink__v1__notification__unpack(NULL, vlen, val);
	if (!n)
		return 0;
	const struct yj_recipient *r = yj_config_recipient(c->cfg, n->recipient ? n->recipient : "");
	int routable = r && r->transport != YJ_TRANSPORT_NONE;
	yjlink__v1__notification__free_unpacked(n, NULL);
	if (routable != c->from_unroutable)
		return 0;
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 64;
		uint64_t *nn = realloc(c->numbers, ncap * sizeof(*nn));
		if (!nn)
			return YJ_ENOMEM;
		c->numbers = nn;
		c->cap = ncap;
	}
	c->numbers[c->n++] = yj_be64_get(key);
	return 0;
}

struct s_reconcile {
	struct yj_outbox *ob;
	int moved;
};

static int s_reconcile_write(struct yj_txn *txn, void *arg)
{
	struct s_reconcile *rc_ = arg;
	const struct yj_config *cfg = *rc_->ob->d.cfg;
	struct s_collect c = { NULL, 0, 0, 1, cfg };
	int rc;
	rc_->moved = 0;
	for (int pass = 0; pass < 2; pass++) {
		enum yj_db from = pass == 0 ? YJ_DB_UNROUTABLE : YJ_DB_OUTBOX;
		c.n = 0;
		c.from_unroutable = pass == 0;
		if ((rc = yj_txn_iter(txn, from, NULL, 0, 0, s_collect_cb, &c)) < 0)
			goto out;
		for (size_t i = 0; i < c.n; i++) {
			uint8_t k[8], rk[320];
			const void *v;
			size_t vlen;
			yj_be64_put(k, c.numbers[i]);
			if ((rc = yj_txn_get(txn, from, k, 8, &v, &vlen)))
				goto out;
			Yjlink__V1__Notification *n = yjlink__v1__notification__unpack(NULL, vlen, v);
			if (!n) {
				rc = YJ_ESTORE;
				goto out;
			}
			if (pass == 0) {
				rc = yj_txn_del(txn, YJ_DB_UNROUTABLE, k, 8);
				if (!rc)
					rc = yj_route_put_note(txn, YJ_DB_OUTBOX, n);
				if (!rc)
					rc = yj_txn_put(txn, YJ_DB_OUTBOX_RCPT, rk, yj_route_rcpt_key(rk, sizeof(rk), n->recipient, n->number), "", 0);
			} else {
				rc = s_remove(txn, n->recipient, n->number);
				if (!rc)
					rc = yj_route_put_note(txn, YJ_DB_UNROUTABLE, n);
			}
			yjlink__v1__notification__free_unpacked(n, NULL);
			if (rc)
				goto out;
			rc_->moved++;
		}
	}
	rc = 0;
out:
	free(c.numbers);
	return rc;
}

int yj_outbox_reconcile(struct yj_outbox *ob)
{
	struct s_reconcile r = { ob, 0 };
	int rc = yj_store_write(ob->d.store, s_reconcile_write, &r);
	if (rc)
		return rc;
	if (r.moved)
		yj_notice("outbox: %d notification(s) moved between outbox and unroutable after the config change", r.moved);
	s_dispatch(ob);
	return r.moved;
}

static int s_stats_read(struct yj_txn *txn, void *arg)
{
	struct yj_outbox_stats *st = arg;
	int rc = yj_txn_count(txn, YJ_DB_OUTBOX, &st->depth);
	if (!rc)
		rc = yj_txn_count(txn, YJ_DB_DLQ, &st->dead_letters);
	if (!rc)
		rc = yj_txn_count(txn, YJ_DB_UNROUTABLE, &st->unroutable);
	return rc;
}

int yj_outbox_stats(struct yj_outbox *ob, struct yj_outbox_stats *st)
{
	memset(st, 0, sizeof(*st));
	memcpy(st->delivered, ob->delivered, sizeof(st->delivered));
	st->in_flight = ob->in_flight;
	return yj_store_read(ob->d.store, s_stats_read, st);
}

struct s_describe {
	cJSON *by;                /* recipient id -> {pending, next_attempt, in_flight} */
};

static int s_describe_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_describe *d = arg;
	(void)key;
	(void)klen;
	Yjlink__V1__Notification *n = yjlink__v1__notification__unpack(NULL, vlen, val);
	if (!n)
		return 0;
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
	yjlink__v1__notification__free_unpacked(n, NULL);
	return 0;
}

static int s_describe_read(struct yj_txn *txn, void *arg)
{
	int rc = yj_txn_iter(txn, YJ_DB_OUTBOX, NULL, 0, 0, s_describe_cb, arg);
	return rc < 0 ? rc : 0;
}

cJSON *yj_outbox_describe(struct yj_outbox *ob)
{
	struct s_describe d = { cJSON_CreateObject() };
	if (!d.by)
		return NULL;
	yj_store_read(ob->d.store, s_describe_read, &d);
	return d.by;
}

static int s_flush_hook(struct yj_loop *loop, void *arg)
{
	(void)loop;
	yj_outbox_flush(arg);
	return 0;
}

int yj_outbox_start(const struct yj_outbox_deps *deps, struct yj_outbox **out)
{
	struct yj_outbox *ob = calloc(1, sizeof(*ob));
	if (!ob)
		return YJ_ENOMEM;
	if (sodium_init() < 0) {
		free(ob);
		return YJ_EIO;
	}
	ob->d = *deps;
	ob->timer = yj_loop_timer(ob->d.loop, S_TICK_MS, S_TICK_MS, s_tick, ob);
	if (ob->timer < 0 || yj_loop_before_sleep(ob->d.loop, s_flush_hook, ob)) {
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
	yj_loop_timer_cancel(ob->d.loop, ob->timer);
	/* Finished but uncommitted completions go again after restart (same id). */
	for (size_t i = 0; i < ob->n_done; i++) {
		cJSON_Delete(ob->done[i]->fields);
		free(ob->done[i]->detail);
		free(ob->done[i]->address);
		free(ob->done[i]);
	}
	free(ob->done);
	/* Deliveries still under way are abandoned: they go again after restart. */
	while (ob->live) {
		struct s_done *dn = ob->live;
		ob->live = dn->next;
		cJSON_Delete(dn->fields);
		free(dn);
	}
	for (size_t i = 0; i < ob->n_rcpts; i++)
		free(ob->rcpts[i].id);
	free(ob->rcpts);
	free(ob);
	*pob = NULL;
}
