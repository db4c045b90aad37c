/* control.c: see control.h. */
#include "control.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "err.h"
#include "event_json.h"
#include "log.h"
#include "normalise.h"
#include "yjlink.pb-c.h"

#ifndef YJ_VERSION
#define YJ_VERSION "0.1.0"
#endif

struct yj_control {
	struct yj_control_deps d;  /* borrowed pointers */
	void *sock;                /* ROUTER, owned */
};

/* One command's context: the request and what the reply will carry. */
struct s_call {
	struct yj_control *ctl;
	const cJSON *args;   /* borrowed from the request */
	cJSON *out;          /* reply object, owned until sent */
	int code;            /* 0, 1 refused/failed, 2 usage */
	long uid;            /* caller's uid from the peer credentials, -1 unknown */
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
static int s_require_reason(struct s_call *c, const char *what)
{
	const char *reason = s_arg_str(c, "reason");
	if (!reason || !*reason) {
		s_fail(c, 2, "%s shows personal data: give --reason TEXT", what);
		return 0;
	}
	/* The reason text may name a child: it is kept out of the log. */
	yj_notice("control: %s by uid %ld (reason recorded)", what, c->uid);
	return 1;
}

static Yjlink__V1__Record *s_decode_record(const void *data, size_t len)
{
	return yjlink__v1__record__unpack(NULL, len, data);
}

static cJSON *s_time_json(int64_t us)
{
	char buf[48];
	Yjlink__V1__Time t = YJLINK__V1__TIME__INIT;
	t.has_unix_us = 1;
	t.unix_us = us;
	yj_time_format(&t, buf, sizeof(buf));
	return cJSON_CreateString(buf);
}

/* --- status --- */
struct s_status_read {
	struct yj_store_stats st;
};

static void s_cmd_status(struct s_call *c)
{
	const struct yj_config *cfg = *c->ctl->d.cfg;
	const struct yj_ingest_stats *is = yj_ingest_stats(c->ctl->d.ingest);
	struct yj_store_stats st;
	int64_t now = yj_clock_now_us();

	memset(&st, 0, sizeof(st));
	yj_store_stats(c->ctl->d.store, &st);
	cJSON_AddStringToObject(c->out, "version", YJ_VERSION);
	cJSON_AddNumberToObject(c->out, "uptime_seconds", (double)((now - c->ctl->d.started_us) / 1000000));
	cJSON_AddItemToObject(c->out, "now", s_time_json(now));
	cJSON *dep = cJSON_AddObjectToObject(c->out, "deployment");
	cJSON_AddStringToObject(dep, "id", cfg->deployment_id);
	cJSON_AddStringToObject(dep, "name", cfg->deployment_name);
	cJSON_AddStringToObject(dep, "force", cfg->deployment_force);
	cJSON_AddStringToObject(dep, "config", cfg->source);
	if (c->ctl->d.reload_state && **c->ctl->d.reload_state)
		cJSON_AddStringToObject(dep, "reload_refused", *c->ctl->d.reload_state);
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
	cJSON_AddNumberToObject(ing, "last_seq", (double)st.last_seq);
	cJSON *sto = cJSON_AddObjectToObject(c->out, "store");
	cJSON_AddStringToObject(sto, "path", cfg->store_path);
	cJSON_AddNumberToObject(sto, "events", (double)st.events);
	cJSON_AddNumberToObject(sto, "quarantined", (double)st.quarantined);
	cJSON_AddNumberToObject(sto, "map_bytes", (double)st.map_size);
	cJSON_AddNumberToObject(sto, "used_bytes", (double)st.used_bytes);
	cJSON_AddNumberToObject(sto, "map_grows", (double)st.map_grows);
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

static int s_events_add(struct s_events *e, uint64_t seq)
{
	const void *data;
	size_t len;
	int rc = yj_store_get_event(e->txn, seq, &data, &len);
	if (rc)
		return rc == YJ_ENOENT ? 0 : rc;
	Yjlink__V1__Record *r = s_decode_record(data, len);
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
	cJSON_AddItemToObject(o, "stored_at", s_time_json(r->stored_at_us));
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

static int s_events_seq_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_events *e = arg;
	(void)val;
	(void)vlen;
	if (klen != 8)
		return 0;
	return s_events_add(e, yj_be64_get(key));
}

static int s_events_dup_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_events *e = arg;
	(void)key;
	(void)klen;
	if (vlen != 8)
		return 0;
	return s_events_add(e, yj_be64_get(val));
}

static int s_events_read(struct yj_txn *txn, void *arg)
{
	struct s_events *e = arg;
	const char *child = s_arg_str(e->c, "child");
	e->txn = txn;
	if (child) {
		char key[400];
		const struct yj_config *cfg = *e->c->ctl->d.cfg;
		if (strchr(child, '/'))
			snprintf(key, sizeof(key), "%s", child);
		else
			snprintf(key, sizeof(key), "%s/%s", cfg->deployment_force, child);
		int rc = yj_txn_iter_dups(txn, YJ_DB_CHILD, key, strlen(key), s_events_dup_cb, e);
		return rc == YJ_ENOENT ? 0 : rc;
	}
	if (e->since_us != INT64_MIN) {
		uint8_t k[8];
		yj_be64_put(k, yj_time_key(e->since_us));
		return yj_txn_iter(txn, YJ_DB_TIME, k, 8, 0, s_events_dup_cb, e);
	}
	/* Newest first: what an operator wants to see. */
	return yj_txn_iter(txn, YJ_DB_EVENTS, NULL, 0, 1, s_events_seq_cb, e);
}

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
	e.list = cJSON_AddArrayToObject(c->out, "events");
	int rc = yj_store_read(c->ctl->d.store, s_events_read, &e);
	if (rc < 0)
		s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
}

/* --- show --- */
struct s_show {
	uint64_t seq;
	cJSON *event;
};

static int s_show_read(struct yj_txn *txn, void *arg)
{
	struct s_show *s = arg;
	const void *data;
	size_t len;
	int rc = yj_store_get_event(txn, s->seq, &data, &len);
	if (rc)
		return rc;
	Yjlink__V1__Record *r = s_decode_record(data, len);
	if (!r || !r->event) {
		yjlink__v1__record__free_unpacked(r, NULL);
		return YJ_ESTORE;
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
	int rc = yj_store_read(c->ctl->d.store, s_show_read, &s);
	if (rc == YJ_ENOENT)
		return s_fail(c, 1, "no event %lld", seq);
	if (rc < 0)
		return s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
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
	cJSON_AddItemToObject(o, "received_at", s_time_json(q->received_at_us));
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

static int s_quar_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_quar *s = arg;
	if (klen != 8)
		return 0;
	Yjlink__V1__Quarantined *q = yjlink__v1__quarantined__unpack(NULL, vlen, val);
	if (!q)
		return 0;
	cJSON_AddItemToArray(s->list, s_quar_json(yj_be64_get(key), q, 0));
	yjlink__v1__quarantined__free_unpacked(q, NULL);
	return cJSON_GetArraySize(s->list) >= s->limit ? 1 : 0;
}

static int s_quar_list_read(struct yj_txn *txn, void *arg)
{
	return yj_txn_iter(txn, YJ_DB_QUARANTINE, NULL, 0, 1, s_quar_cb, arg);
}

static int s_quar_show_read(struct yj_txn *txn, void *arg)
{
	struct s_quar *s = arg;
	uint8_t k[8];
	const void *val;
	size_t vlen;
	yj_be64_put(k, s->id);
	int rc = yj_txn_get(txn, YJ_DB_QUARANTINE, k, 8, &val, &vlen);
	if (rc)
		return rc;
	Yjlink__V1__Quarantined *q = yjlink__v1__quarantined__unpack(NULL, vlen, val);
	if (!q)
		return YJ_ESTORE;
	cJSON_AddItemToObject(s->c->out, "entry", s_quar_json(s->id, q, 1));
	yjlink__v1__quarantined__free_unpacked(q, NULL);
	return 0;
}

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
		rc = yj_store_read(c->ctl->d.store, s_quar_list_read, &s);
	} else if (!strcmp(sub, "show")) {
		long long id = s_arg_u64(c, "id");
		if (id <= 0)
			return s_fail(c, 2, "quarantine show needs ID, a positive number");
		if (!s_require_reason(c, "quarantine show"))
			return;
		s.id = (uint64_t)id;
		rc = yj_store_read(c->ctl->d.store, s_quar_show_read, &s);
		if (rc == YJ_ENOENT)
			return s_fail(c, 1, "no quarantine entry %lld", id);
	} else {
		return s_fail(c, 2, "quarantine takes list or show");
	}
	if (rc < 0)
		s_fail(c, 1, "store read failed: %s", yj_strerror(rc));
}

/* --- clock (tests only) --- */
static void s_cmd_clock(struct s_call *c)
{
	const char *to = s_arg_str(c, "set");
	if (!(*c->ctl->d.cfg)->testing_clock_control)
		return s_fail(c, 1, "clock control is off (testing.clock_control = false)");
	if (to) {
		int64_t us;
		int32_t off;
		if (yj_time_parse(to, strlen(to), &us, &off) != 0)
			return s_fail(c, 2, "clock set needs an RFC 3339 time with offset");
		yj_clock_set_us(us);
		yj_notice("control: clock set by uid %ld", c->uid);
	}
	cJSON_AddItemToObject(c->out, "now", s_time_json(yj_clock_now_us()));
}

static void s_cmd_reload(struct s_call *c)
{
	if (!c->ctl->d.reload)
		return s_fail(c, 1, "reload is not available");
	int rc = c->ctl->d.reload(c->ctl->d.reload_arg);
	if (rc)
		return s_fail(c, 1, "new config refused, old one kept: %s",
			      c->ctl->d.reload_state && *c->ctl->d.reload_state ? *c->ctl->d.reload_state : "see log");
	cJSON_AddStringToObject(c->out, "result", "reloaded");
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
};

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

static void s_handle(struct yj_control *ctl, zmq_msg_t *id, zmq_msg_t *frames, int n)
{
	struct s_call c = { .ctl = ctl, .out = cJSON_CreateObject(), .uid = s_peer_uid(&frames[0]) };
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
	if (i == sizeof(s_commands) / sizeof(s_commands[0]))
		s_fail(&c, 2, "unknown command '%.64s'", cmd->valuestring);
reply:;
	char code[2] = { (char)('0' + c.code), 0 };
	char *body = cJSON_PrintUnformatted(c.out);
	zmq_send(ctl->sock, zmq_msg_data(id), zmq_msg_size(id), ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(ctl->sock, "YJC1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(ctl->sock, code, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	zmq_send(ctl->sock, body ? body : "{}", body ? strlen(body) : 2, ZMQ_DONTWAIT);
	cJSON_free(body);
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

int yj_control_start(const struct yj_control_deps *deps, struct yj_control **out)
{
	struct yj_control *ctl = calloc(1, sizeof(*ctl));
	const char *ep = (*deps->cfg)->control_endpoint;
	int linger = 500;

	if (!ctl)
		return YJ_ENOMEM;
	ctl->d = *deps;
	ctl->sock = zmq_socket(deps->zmq_ctx, ZMQ_ROUTER);
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
	if (!strncmp(ep, "ipc://", 6))
		chmod(ep + 6, 0660);
	if (yj_loop_add(deps->loop, ctl->sock, -1, ZMQ_POLLIN, s_on_readable, ctl))
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
	yj_loop_remove(ctl->d.loop, ctl->sock, -1);
	zmq_close(ctl->sock);
	free(ctl);
	*pctl = NULL;
}
