/* out_yjn1.c: the zmq transport, a durable subscription (interfaces.md §3,
 * "Durable subscription: protocol YJN1 over ZeroMQ").
 *
 * A ZMQ_ROUTER bound at notify.endpoint. A subscriber (a DEALER) says HELLO
 * for one recipient with its cursor, the last number it acknowledged; it is
 * sent a NOTE per job after that, in number order, at most zmq.window of
 * them unacknowledged, and acknowledges cumulatively with ACK. The NOTE's
 * number is the outbox job's number (adapter.h: unique and increasing per
 * recipient), which is what makes the subscription durable without a queue
 * of our own: every job stays in the outbox (LMDB) until its ACK, and the
 * outbox hands the unacknowledged ones to us again after a restart, with
 * the same numbers.
 *
 * The outbox gives us every job of a zmq recipient at once (.window is the
 * largest zmq.window): we hold them all, in number order, whether or not a
 * subscriber is connected, send what its window allows, and say OK of a job
 * only when an ACK covers it (or a HELLO's cursor does: the subscriber had
 * it before, e.g. before our crash). The cursor is recorded with those
 * completions (api->position_put, the same transaction), so a restart
 * knows it for `yjlinkctl subscribers` and for telling a late job.
 *
 * Nothing here blocks: every send is ZMQ_DONTWAIT to a ROUTER with
 * ZMQ_ROUTER_MANDATORY; a subscriber whose pipe is full keeps its notes
 * here until the tick tries again, so a subscriber that stops reading costs
 * its own window and never stalls ingest or the other subscribers.
 *
 * Connections: a ROUTER names a connection by its routing id; a
 * disconnect is seen on the socket monitor (ZMQ_EVENT_DISCONNECTED, by the
 * connection's file descriptor, which every message carries as
 * ZMQ_SRCFD), or when a send finds the peer gone; heartbeats make a dead
 * peer's connection end. An ERROR ends the conversation: nothing more goes
 * to that connection, and what it says next is dropped.
 *
 * CURVE (interfaces.md §3): with notify.curve the socket is a CURVE server
 * in ZAP domain "yjn1"; only the keys of notify.subscribers get in (the
 * core's ZAP handler, zap.h), each with its name as the connection's user
 * id, and a HELLO for a recipient outside that subscriber's `recipients` is
 * told ERROR. A reload replaces the keys for the next handshakes and drops
 * no connection.
 *
 * Logs name recipients, numbers and notification ids, never a note's body.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adapter.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "zap.h"
#include "zguard.h"
#include "prom.h"

#define S_DEFAULT_WINDOW 1000   /* as the table's default, for settings filled by hand */
#define S_MAX_WINDOW 100000     /* zmq.window's bound, and so the core's window for this adapter */
#define S_SNDHWM 1000           /* NOTEs queued in libzmq per connection; beyond, EAGAIN and the tick retries */
#define S_RCVHWM 1000           /* HELLOs and ACKs queued from one connection */
#define S_MAX_MSG 4096          /* a subscriber's messages are tiny: more costs it its connection */
#define S_MAX_FRAMES 8          /* frames kept of a malformed message */
#define S_READ_MAX 1024         /* messages read per wake-up, then the loop comes back */
#define S_TICK_MS 100           /* retry of a full pipe */
#define S_HB_IVL_MS 5000        /* heartbeat: a dead peer is noticed within S_HB_TIMEOUT_MS */
#define S_HB_TIMEOUT_MS 15000
#define S_ID_MAX 255            /* a routing id is at most 255 bytes */
#define S_SILENCED 64           /* connections told ERROR, remembered so that nothing more goes to them */
#define S_DEPARTED 64           /* connections gone, remembered for the ACKs they sent before going */
#define S_NUM_MAX 20            /* decimal digits of a uint64 */
#define S_ADDR_MAX 160          /* "yjn1:" and the peer's address */
#define S_LOG_ID_MAX 64         /* of a recipient id a subscriber sent, quoted in a log line */

/* What every zmq recipient carries, filled by the core's config loader
 * from s_recipient_table. */
struct s_recipient {
	int64_t window;                 /* zmq.window: unacknowledged NOTEs at most */
};

#define S_OFF(f) offsetof(struct s_recipient, f)
static const struct yj_setting s_recipient_table[] = {
	{ YJ_SETTING_INT, "zmq.window", S_OFF(window), "1000", 1, S_MAX_WINDOW,
	  "transport zmq: NOTEs sent and not yet acknowledged at most; later ones wait for ACKs" },
};
#undef S_OFF

extern const struct yj_adapter yj_adapter_out_yjn1;

#define S_DOMAIN "yjn1"         /* ZAP domain of this socket's CURVE handshakes */
#define S_SUB_NAME_MAX 64       /* a subscriber's name: its connections' user id */

/* One entry of notify.subscribers, as the config loader fills it. */
struct s_subscriber_conf {
	char *name;                     /* the user id of its connections */
	char *public_key;               /* Z85 */
	struct yj_strlist recipients;   /* the recipient ids it may say HELLO for */
};

/* The adapter's share of the `notify` section. */
struct s_settings {
	char *secret_key;               /* notify.curve.secret_key_file, read: Z85; "" = no CURVE */
	struct yj_grouplist subscribers; /* of struct s_subscriber_conf */
};

#define S_OFF(f) offsetof(struct s_subscriber_conf, f)
static const struct yj_setting s_subscriber_table[] = {
	{ YJ_SETTING_STR, "name", S_OFF(name), NULL, 0, 0, "the subscriber's name, for the log (`[a-z0-9-]`, 1-64)" },
	{ YJ_SETTING_STR, "public_key", S_OFF(public_key), NULL, 0, 0,
	  "its CURVE public key (Z85, 40 characters, `yjlinkctl keygen`)" },
	{ YJ_SETTING_STRLIST, "recipients", S_OFF(recipients), NULL, 0, 0,
	  "recipient ids (transport zmq) it may say HELLO for; any other HELLO is told ERROR" },
};
#undef S_OFF

static const struct yj_setting_items s_subscriber_items = {
	s_subscriber_table, sizeof(s_subscriber_table) / sizeof(s_subscriber_table[0]), sizeof(struct s_subscriber_conf)
};

static const struct yj_setting s_section_table[] = {
	{ YJ_SETTING_SECRET_FILE, "curve.secret_key_file", offsetof(struct s_settings, secret_key), "", 0, 0,
	  "CURVE: this daemon's secret key for YJN1 (relative to the config file, mode 0600, `yjlinkctl keygen`); "
	  "empty = no CURVE (loopback or ipc:// only)" },
	{ YJ_SETTING_GROUPLIST, "subscribers", offsetof(struct s_settings, subscribers), &s_subscriber_items, 0, 1024,
	  "with curve: the subscribers let in, each with its key and recipients; any other key is refused at the handshake" },
};

static int s_sub_name_ok(const char *s)
{
	size_t len = strlen(s);
	if (len < 1 || len > S_SUB_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	}
	return 1;
}

static void s_check(const void *settings, const struct yj_setting_site *at)
{
	const struct s_settings *s = settings;
	const struct s_subscriber_conf *c = s->subscribers.items;

	if (*s->secret_key && !yj_zap_key_ok(s->secret_key))
		yj_diag_report(at->diag, at->file, at->line,
			       "'notify.curve.secret_key_file': the file does not hold a CURVE secret key (40 characters of Z85, "
			       "as yjlinkctl keygen writes)");
	if (!*s->secret_key && s->subscribers.n)
		yj_diag_report(at->diag, at->file, s->subscribers.lines[0],
			       "'notify.subscribers' needs notify.curve = { secret_key_file = \"...\"; }: without CURVE no "
			       "subscriber has a key");
	for (size_t i = 0; i < s->subscribers.n; i++) {
		int line = s->subscribers.lines[i];
		if (!s_sub_name_ok(c[i].name))
			yj_diag_report(at->diag, at->file, line,
				       "'notify.subscribers' item %zu: name must be 1-%d of [a-z0-9-], not '%s'", i + 1,
				       S_SUB_NAME_MAX, c[i].name);
		if (!yj_zap_key_ok(c[i].public_key))
			yj_diag_report(at->diag, at->file, line,
				       "subscriber '%s': public_key must be a CURVE public key (40 characters of Z85)", c[i].name);
		if (!c[i].recipients.n)
			yj_diag_report(at->diag, at->file, line, "subscriber '%s': recipients must name at least one recipient",
				       c[i].name);
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(c[i].name, c[j].name))
				yj_diag_report(at->diag, at->file, line, "subscriber '%s' is declared twice (first at line %d)",
					       c[i].name, s->subscribers.lines[j]);
			else if (!strcmp(c[i].public_key, c[j].public_key))
				yj_diag_report(at->diag, at->file, line, "subscriber '%s' has the key of subscriber '%s' (line %d)",
					       c[i].name, c[j].name, s->subscribers.lines[j]);
		}
	}
}

/* notify.endpoint is authenticated when CURVE is configured (settings.h). */
static int s_authenticates(const void *settings)
{
	return *((const struct s_settings *)settings)->secret_key != '\0';
}

/* One job the outbox handed us, held until an ACK (or a HELLO's cursor)
 * covers it. */
struct s_job {
	uint64_t number;                /* the job's number: the NOTE's */
	char *id;                       /* owned: notification or digest id, for the log */
	char *json;                     /* owned: the NOTE's last frame */
	size_t json_len;
	yj_delivery_done_fn done;       /* the core's, called exactly once unless destroyed first */
	void *arg;                      /* done's argument */
	int sent;                       /* sent on its recipient's current connection, not yet acknowledged */
	/* Handed to us below a number already sent or acknowledged (a dead
	 * letter retried, a job that waited for opening hours): sending it now
	 * would break the increasing order, so it waits for a connection whose
	 * cursor is below it, and fails once a cursor passes it. */
	int late;
	enum yj_delivery_result result; /* on the deferred list: what done is told */
	const char *detail;             /* on the deferred list: why (static text) */
	struct s_job *prev, *next;      /* in its recipient's held list (ascending number) or the deferred list */
};

/* A subscriber's connection, as the ROUTER knows it. */
struct s_peer {
	uint8_t id[S_ID_MAX];           /* routing id */
	size_t id_len;
	int fd;                         /* ZMQ_SRCFD: matched against the monitor's disconnects */
	char address[S_ADDR_MAX];       /* "yjn1:<Peer-Address>", for the audit and the log */
};

/* One zmq recipient: its held jobs, its cursor, its subscriber if connected. */
struct s_rcpt {
	char *id;                       /* owned: recipient id */
	char *key;                      /* owned: "out_yjn1.<id>", its cursor's position key */
	int in_config;                  /* still a zmq recipient of the config in force (reload sweep) */
	int connected;                  /* a subscriber said HELLO and has not gone */
	struct s_peer peer;             /* that subscriber, when connected */
	uint64_t acked;                 /* last number acknowledged, as committed or said since; never goes back */
	uint64_t high;                  /* highest number acknowledged or sent so far: a job at or below is late */
	uint64_t conn_acked;            /* this connection's cursor: its HELLO's, then its ACKs' */
	uint64_t sent_max;              /* highest number sent on this connection (from its cursor up) */
	struct s_job *head, *tail;      /* owned: held jobs, ascending number */
	struct s_job *to_send;          /* first held job not yet sent on this connection (NULL: none) */
	size_t n_held;                  /* jobs held, sent or not */
	size_t n_sent;                  /* of them, sent on this connection and not acknowledged */
	int blocked;                    /* the last send found the pipe full: the tick tries again */
	int warned_key;                 /* said once that its cursor cannot be recorded */
};

/* A connection told ERROR: what it says next is dropped. */
struct s_silenced {
	uint8_t id[S_ID_MAX];           /* routing id */
	size_t id_len;                  /* 0: free slot */
	int fd;                         /* forgotten when this descriptor disconnects */
};

/* A subscriber's connection that has gone: an ACK it sent just before
 * (read after the disconnect event, which is read first) still counts. */
struct s_departed {
	uint8_t id[S_ID_MAX];           /* routing id */
	size_t id_len;                  /* 0: free slot */
	char rcpt[S_ID_MAX + 1];        /* the recipient it subscribed to */
	char address[S_ADDR_MAX];       /* its address, for the audit */
};

struct s_state {
	const struct yj_core_api *api;  /* borrowed, valid until destroy */
	void *sock;                     /* ROUTER, owned */
	void *monitor;                  /* PAIR reading the ROUTER's disconnect events, owned */
	char monitor_ep[64];            /* its inproc endpoint, unique per state */
	struct yj_zguard *guard;        /* owned: connection and buffer bounds, fed by the monitor */
	char *endpoint;                 /* owned: notify.endpoint as bound */
	int64_t timer;                  /* the tick's id while one is armed (only when there is work), else 0 */
	struct s_rcpt **rcpts;          /* owned, n_rcpts: every zmq recipient seen */
	size_t n_rcpts;
	struct s_job *deferred;         /* owned: completions due from the tick (never from deliver) */
	struct s_job *deferred_tail;    /* its last, where the next one goes */
	struct s_silenced silenced[S_SILENCED]; /* ring of connections told ERROR */
	size_t silenced_next;           /* slot the next one takes */
	struct s_departed departed[S_DEPARTED]; /* ring of connections gone */
	size_t departed_next;           /* slot the next one takes */
	uint64_t errors;                /* ERRORs sent since start */
	int draining;                   /* drain() was called: take no new deliveries */
	int curve;                      /* a CURVE server (notify.curve at start: changes only on restart) */
};

/* Our settings in cfg; NULL when the core hands none (a unit test's). */
static const struct s_settings *s_own(const struct s_state *st, const struct yj_config *cfg)
{
	return st->api->settings ? st->api->settings(cfg, &yj_adapter_out_yjn1) : NULL;
}

/* Register the keys of cfg's notify.subscribers with the ZAP handler. */
static int s_set_keys(struct s_state *st, const struct yj_config *cfg)
{
	const struct s_settings *s = s_own(st, cfg);
	const struct s_subscriber_conf *c = s ? s->subscribers.items : NULL;
	size_t n = s ? s->subscribers.n : 0;
	const char **names = NULL, **keys = NULL;
	int rc = 0;

	if (n && (!(names = calloc(n, sizeof(*names))) || !(keys = calloc(n, sizeof(*keys))))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		names[i] = c[i].name;
		keys[i] = c[i].public_key;
	}
	rc = yj_zap_set_keys(st->api->zap, S_DOMAIN, names, keys, n);
out:
	free(names);
	free(keys);
	return rc;
}

/* Whether the subscriber named user (a CURVE user id) may say HELLO for
 * recipient id, by the config in force: a name a reload removed may not. */
static int s_allowed(const struct s_state *st, const struct yj_config *cfg, const char *user, const char *id)
{
	const struct s_settings *s = s_own(st, cfg);
	const struct s_subscriber_conf *c = s ? s->subscribers.items : NULL;
	for (size_t i = 0; user && s && i < s->subscribers.n; i++) {
		if (strcmp(c[i].name, user))
			continue;
		for (size_t j = 0; j < c[i].recipients.n; j++) {
			if (!strcmp(c[i].recipients.v[j], id))
				return 1;
		}
		return 0;
	}
	return 0;
}

/* --- small helpers --- */

static void s_job_free(struct s_job *j)
{
	if (!j)
		return;
	free(j->id);
	free(j->json);
	free(j);
}

/* Strict decimal: 1..20 digits, no sign, no space, within uint64. */
static int s_parse_u64(const void *p, size_t len, uint64_t *out)
{
	const char *s = p;
	uint64_t v = 0;
	if (!len || len > S_NUM_MAX)
		return YJ_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return YJ_EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return YJ_ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int s_frame_is(zmq_msg_t *m, const char *s)
{
	size_t n = strlen(s);
	return zmq_msg_size(m) == n && !memcmp(zmq_msg_data(m), s, n);
}

/* A recipient id a subscriber sent, fit for a log line: printable ASCII
 * and short, or "?" (it is untrusted text). */
static void s_log_id(const void *p, size_t len, char *out, size_t size)
{
	const unsigned char *s = p;
	int ok = len > 0 && len <= S_LOG_ID_MAX && len < size;
	for (size_t i = 0; ok && i < len; i++)
		ok = s[i] > 0x20 && s[i] < 0x7f;
	if (ok) {
		memcpy(out, s, len);
		out[len] = '\0';
	} else {
		snprintf(out, size, "?");
	}
}

static int s_is_zmq(const struct yj_recipient *r)
{
	return r && r->transport && !strcmp(r->transport, "zmq");
}

/* --- recipients --- */

static struct s_rcpt *s_rcpt_find(const struct s_state *st, const char *id)
{
	for (size_t i = 0; i < st->n_rcpts; i++) {
		if (!strcmp(st->rcpts[i]->id, id))
			return st->rcpts[i];
	}
	return NULL;
}

/* The recipient connected through routing id pid, or NULL. */
static struct s_rcpt *s_rcpt_by_peer(const struct s_state *st, const void *pid, size_t len)
{
	for (size_t i = 0; i < st->n_rcpts; i++) {
		struct s_rcpt *rc = st->rcpts[i];
		if (rc->connected && rc->peer.id_len == len && !memcmp(rc->peer.id, pid, len))
			return rc;
	}
	return NULL;
}

/* Recipient id's entry, made (with its committed cursor) when new. */
static struct s_rcpt *s_rcpt_get(struct s_state *st, const char *id)
{
	struct s_rcpt *rc = s_rcpt_find(st, id);
	char val[S_NUM_MAX + 8];
	size_t len = 0;
	if (rc)
		return rc;
	struct s_rcpt **nv = realloc(st->rcpts, (st->n_rcpts + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	st->rcpts = nv;
	if (!(rc = calloc(1, sizeof(*rc))) || !(rc->id = strdup(id)) || asprintf(&rc->key, "out_yjn1.%s", id) < 0) {
		if (rc)
			free(rc->id);
		free(rc);
		return NULL;
	}
	rc->peer.fd = -1;
	/* None yet, or one this adapter did not write (too long for val, not
	 * decimal): from 0, as a new subscription. */
	if (st->api->position_get && st->api->position_get(st->api->core, rc->key, val, sizeof(val), &len) == 0 &&
	    s_parse_u64(val, len, &rc->acked) != 0) {
		yj_warn("out_yjn1: %s: the recorded cursor is unreadable; taken as 0", id);
		rc->acked = 0;
	}
	rc->high = rc->acked;
	st->rcpts[st->n_rcpts++] = rc;
	return rc;
}

/* Unacknowledged NOTEs at most for rc, from the config in force (a reload applies at once). */
static size_t s_window(const struct s_state *st, const struct s_rcpt *rc)
{
	const struct yj_config *cfg = st->api->config(st->api->core);
	const struct yj_recipient *r = cfg ? yj_config_recipient(cfg, rc->id) : NULL;
	const struct s_recipient *rs = s_is_zmq(r) ? r->output_settings : NULL;
	if (!rs || rs->window < 1 || rs->window > S_MAX_WINDOW)
		return S_DEFAULT_WINDOW;
	return (size_t)rs->window;
}

/* --- the held list --- */

/* In number order; jobs mostly come in order, so from the tail. */
static void s_held_insert(struct s_rcpt *rc, struct s_job *j)
{
	struct s_job *after = rc->tail;
	while (after && after->number > j->number)
		after = after->prev;
	j->prev = after;
	j->next = after ? after->next : rc->head;
	if (j->next)
		j->next->prev = j;
	else
		rc->tail = j;
	if (after)
		after->next = j;
	else
		rc->head = j;
	rc->n_held++;
}

static void s_held_unlink(struct s_rcpt *rc, struct s_job *j)
{
	if (rc->to_send == j)
		rc->to_send = j->next;
	if (j->prev)
		j->prev->next = j->next;
	else
		rc->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		rc->tail = j->prev;
	j->prev = j->next = NULL;
	rc->n_held--;
	if (j->sent)
		rc->n_sent--;
}

static struct s_job *s_held_find(const struct s_rcpt *rc, uint64_t number)
{
	for (struct s_job *j = rc->tail; j && j->number >= number; j = j->prev) {
		if (j->number == number)
			return j;
	}
	return NULL;
}

/* Tell the core about j (already off every list) and free it. From the loop only. */
static void s_finish(struct s_job *j, enum yj_delivery_result result, const char *detail, const char *address)
{
	static const char *const names[] = { "OK", "RETRY", "FATAL" };
	if (result == YJ_DELIVERY_OK)
		yj_debug("out_yjn1: %s (number %" PRIu64 ") acknowledged", j->id, j->number);
	else
		yj_warn("out_yjn1: %s (number %" PRIu64 "): %s (%s)", j->id, j->number, detail, names[result]);
	j->done(j->arg, result, detail, address);
	s_job_free(j);
}

static int s_tick(struct yj_loop *loop, void *arg);

/* The tick, once, in delay_ms, unless one is armed already: an idle
 * adapter never wakes the loop. */
static void s_arm(struct s_state *st, int64_t delay_ms)
{
	if (st->timer > 0)
		return;
	int64_t t = yj_loop_timer(st->api->loop, delay_ms, 0, s_tick, st);
	if (t > 0)
		st->timer = t;
	else
		yj_err("out_yjn1: cannot arm a timer: %s", yj_strerror((int)t));
}

/* Complete j from the tick rather than now (we may be inside deliver()). */
static void s_defer(struct s_state *st, struct s_job *j, enum yj_delivery_result result, const char *detail)
{
	j->result = result;
	j->detail = detail;
	j->prev = j->next = NULL;
	if (st->deferred_tail)
		st->deferred_tail->next = j;
	else
		st->deferred = j;
	st->deferred_tail = j;
	s_arm(st, 0);
}

/* --- sending --- */

/* The cursor n acknowledged for rc: recorded with the completions it stands for. */
static void s_cursor(struct s_state *st, struct s_rcpt *rc, uint64_t n)
{
	char val[S_NUM_MAX + 1];
	if (n > rc->high)
		rc->high = n;
	if (n <= rc->acked)
		return;
	rc->acked = n;
	int len = snprintf(val, sizeof(val), "%" PRIu64, n);
	int rc_ = st->api->position_put ? st->api->position_put(st->api->core, rc->key, val, (size_t)len) : 0;
	if (rc_ && !rc->warned_key) {
		/* The jobs still complete; only a restart forgets the cursor (and
		 * the subscriber's HELLO tells it again). */
		yj_warn("out_yjn1: %s: cannot record the cursor: %s", rc->id, yj_strerror(rc_));
		rc->warned_key = 1;
	}
}

/* The subscriber of rc is gone (gone: its connection ended), or replaced,
 * or told ERROR: what was sent to it and not acknowledged goes again to the
 * next one, from its cursor. */
static void s_unbind(struct s_state *st, struct s_rcpt *rc, int gone, const char *why)
{
	if (!rc->connected)
		return;
	if (gone) {
		struct s_departed *d = &st->departed[st->departed_next];
		st->departed_next = (st->departed_next + 1) % S_DEPARTED;
		memcpy(d->id, rc->peer.id, rc->peer.id_len);
		d->id_len = rc->peer.id_len;
		snprintf(d->rcpt, sizeof(d->rcpt), "%s", rc->id);
		snprintf(d->address, sizeof(d->address), "%s", rc->peer.address);
	}
	yj_info("out_yjn1: the subscriber of %s at %s %s; %zu job(s) held", rc->id, rc->peer.address, why,
		rc->n_held);
	rc->connected = 0;
	rc->peer.id_len = 0;
	rc->peer.fd = -1;
	rc->blocked = 0;
	rc->to_send = NULL;
	rc->n_sent = 0;
	for (struct s_job *j = rc->head; j; j = j->next)
		j->sent = 0;
}

static int s_silenced(const struct s_state *st, const void *pid, size_t len)
{
	for (size_t i = 0; i < S_SILENCED; i++) {
		const struct s_silenced *s = &st->silenced[i];
		if (s->id_len == len && !memcmp(s->id, pid, len))
			return 1;
	}
	return 0;
}

/* ERROR to one connection, then nothing more: it is silenced, and what it
 * subscribed to is free for the next HELLO. */
static void s_error(struct s_state *st, const void *pid, size_t len, int fd, const char *address, const char *reason)
{
	struct s_rcpt *rc = s_rcpt_by_peer(st, pid, len);
	int r = zmq_send(st->sock, pid, len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (r >= 0)
		r = zmq_send(st->sock, "YJN1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (r >= 0)
		r = zmq_send(st->sock, "ERROR", 5, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (r >= 0)
		r = zmq_send(st->sock, reason, strlen(reason), ZMQ_DONTWAIT);
	st->errors++;
	yj_notice("out_yjn1: ERROR to %s%s%s: %s%s", address, rc ? ", subscriber of " : "", rc ? rc->id : "", reason,
		  r < 0 ? " (not delivered: the peer is gone or not reading)" : "");
	if (rc)
		s_unbind(st, rc, 0, "was told ERROR");
	struct s_silenced *s = &st->silenced[st->silenced_next];
	st->silenced_next = (st->silenced_next + 1) % S_SILENCED;
	memcpy(s->id, pid, len);
	s->id_len = len;
	s->fd = fd;
}

/* Send j as a NOTE to rc's subscriber. 0 sent; YJ_EAGAIN its pipe is full
 * (nothing went); YJ_ENOENT it is gone. */
static int s_send_note(struct s_state *st, struct s_rcpt *rc, const struct s_job *j)
{
	char num[S_NUM_MAX + 1];
	int len = snprintf(num, sizeof(num), "%" PRIu64, j->number);
	/* ROUTER_MANDATORY: the routing frame alone says whether the peer can
	 * take the message; once it is taken, the rest of the message is too. */
	if (zmq_send(st->sock, rc->peer.id, rc->peer.id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return zmq_errno() == EAGAIN ? YJ_EAGAIN : YJ_ENOENT;
	if (zmq_send(st->sock, "YJN1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(st->sock, "NOTE", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(st->sock, num, (size_t)len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(st->sock, j->json, j->json_len, ZMQ_DONTWAIT) < 0)
		return YJ_ENOENT;
	return 0;
}

/* Send rc's next jobs, in number order, while its window has room. */
static void s_pump(struct s_state *st, struct s_rcpt *rc)
{
	if (!rc->connected || rc->blocked)
		return;
	size_t window = s_window(st, rc);
	while (rc->to_send && rc->n_sent < window) {
		struct s_job *j = rc->to_send;
		if (j->late || j->sent) {
			/* Never past the send point, kept so by deliver(); not sent out of order. */
			rc->to_send = j->next;
			continue;
		}
		int r = s_send_note(st, rc, j);
		if (r == YJ_EAGAIN) {
			rc->blocked = 1;
			s_arm(st, S_TICK_MS);
			yj_debug("out_yjn1: the subscriber of %s is not reading; %zu job(s) wait", rc->id,
				 rc->n_held - rc->n_sent);
			return;
		}
		if (r) {
			s_unbind(st, rc, 1, "has gone");
			return;
		}
		j->sent = 1;
		rc->n_sent++;
		rc->sent_max = j->number;
		if (j->number > rc->high)
			rc->high = j->number;
		rc->to_send = j->next;
		yj_debug("out_yjn1: %s (number %" PRIu64 ") sent to %s", j->id, j->number, rc->id);
	}
}

/* --- what subscribers say --- */

/* Where a message came from. */
struct s_from {
	const void *id;                 /* routing id */
	size_t len;
	int fd;                         /* ZMQ_SRCFD */
	char address[S_ADDR_MAX];       /* "yjn1:<Peer-Address>" */
	const char *user;               /* CURVE user id (the subscriber's name), NULL without CURVE */
};

static void s_on_hello(struct s_state *st, const struct s_from *from, zmq_msg_t *rid, zmq_msg_t *cursor_frame)
{
	const struct yj_config *cfg = st->api->config(st->api->core);
	char id[S_ID_MAX + 1], shown[S_LOG_ID_MAX + 2];
	uint64_t cursor;

	if (s_parse_u64(zmq_msg_data(cursor_frame), zmq_msg_size(cursor_frame), &cursor)) {
		s_error(st, from->id, from->len, from->fd, from->address, "malformed: the cursor is not a decimal number");
		return;
	}
	size_t idlen = zmq_msg_size(rid);
	s_log_id(zmq_msg_data(rid), idlen, shown, sizeof(shown));
	const struct yj_recipient *r = NULL;
	if (idlen && idlen <= S_ID_MAX && !memchr(zmq_msg_data(rid), '\0', idlen)) {
		memcpy(id, zmq_msg_data(rid), idlen);
		id[idlen] = '\0';
		r = yj_config_recipient(cfg, id);
	}
	/* Before anything about the recipient is told: a key learns nothing
	 * of recipients it is not given (interfaces.md §3). */
	if (st->curve && (!r || !s_allowed(st, cfg, from->user, r->id))) {
		yj_notice("out_yjn1: HELLO from %s (subscriber %s) for '%s', which its key is not allowed", from->address,
			  from->user ? from->user : "?", shown);
		s_error(st, from->id, from->len, from->fd, from->address, "recipient not allowed for this subscriber's key");
		return;
	}
	if (!r) {
		yj_notice("out_yjn1: HELLO from %s for an unknown recipient '%s'", from->address, shown);
		s_error(st, from->id, from->len, from->fd, from->address, "unknown recipient");
		return;
	}
	if (!s_is_zmq(r)) {
		yj_notice("out_yjn1: HELLO from %s for %s, whose transport is %s", from->address, r->id, r->transport);
		s_error(st, from->id, from->len, from->fd, from->address,
			"recipient not served by YJN1 (its transport is not zmq)");
		return;
	}
	struct s_rcpt *rc = s_rcpt_get(st, r->id);
	if (!rc) {
		yj_err("out_yjn1: out of memory taking a HELLO for %s", r->id);
		return;
	}
	/* A cursor beyond anything sent: the subscriber's state belongs to
	 * another store (a restored backup, another deployment). Taking it
	 * would mark as delivered what it never had. */
	uint64_t limit = rc->high;
	if (rc->tail && rc->tail->number > limit)
		limit = rc->tail->number;
	if (cursor > limit) {
		yj_warn("out_yjn1: HELLO from %s for %s with cursor %" PRIu64 ", beyond the last number sent (%" PRIu64 ")",
			from->address, rc->id, cursor, limit);
		s_error(st, from->id, from->len, from->fd, from->address, "cursor ahead of the last number sent");
		return;
	}
	/* This connection may have been another recipient's subscriber. */
	struct s_rcpt *was = s_rcpt_by_peer(st, from->id, from->len);
	if (was && was != rc)
		s_unbind(st, was, 0, "subscribed to another recipient");
	/* The newer connection wins; the older is told so. */
	if (rc->connected && (rc->peer.id_len != from->len || memcmp(rc->peer.id, from->id, from->len)))
		s_error(st, rc->peer.id, rc->peer.id_len, rc->peer.fd, rc->peer.address,
			"replaced by a newer connection for this recipient");
	s_unbind(st, rc, 0, "says HELLO again");
	rc->connected = 1;
	memcpy(rc->peer.id, from->id, from->len);
	rc->peer.id_len = from->len;
	rc->peer.fd = from->fd;
	snprintf(rc->peer.address, sizeof(rc->peer.address), "%s", from->address);
	/* What it had already: acknowledged before (our crash lost the commit),
	 * so delivered; unless we know it was never sent, being late. */
	size_t had = 0, lost = 0;
	while (rc->head && rc->head->number <= cursor) {
		struct s_job *j = rc->head;
		s_held_unlink(rc, j);
		if (j->late) {
			lost++;
			s_finish(j, YJ_DELIVERY_FATAL,
				 "handed over after the subscriber's cursor had passed its number: YJN1 numbers only increase",
				 from->address);
		} else {
			had++;
			s_finish(j, YJ_DELIVERY_OK, "acknowledged (at or below the subscriber's cursor)", from->address);
		}
	}
	/* Everything after the cursor can go in order on this connection. */
	for (struct s_job *j = rc->head; j; j = j->next)
		j->late = 0;
	rc->conn_acked = cursor;
	rc->sent_max = cursor;
	rc->to_send = rc->head;
	s_cursor(st, rc, cursor);
	yj_info("out_yjn1: %s subscribed from %s, cursor %" PRIu64 ": %zu job(s) to send%s", rc->id, from->address,
		cursor, rc->n_held, had || lost ? " (some at or below the cursor completed)" : "");
	s_pump(st, rc);
}

/* ACK n of rc, from a subscriber at address: cumulative, every held job
 * up to n. A late one was never sent, and the cursor has now passed it for
 * good. */
static void s_ack(struct s_state *st, struct s_rcpt *rc, uint64_t n, const char *address)
{
	while (rc->head && rc->head->number <= n) {
		struct s_job *j = rc->head;
		int late = j->late;
		s_held_unlink(rc, j);
		if (!late)
			s_finish(j, YJ_DELIVERY_OK, "acknowledged", address);
		else
			s_finish(j, YJ_DELIVERY_FATAL,
				 "handed over after later numbers had been sent; the subscriber's cursor passed it: YJN1 "
				 "numbers only increase",
				 address);
	}
	if (n > rc->conn_acked)
		rc->conn_acked = n;
	if (n > rc->sent_max)
		rc->sent_max = n;
	s_cursor(st, rc, n);
	s_pump(st, rc);
}

static void s_on_ack(struct s_state *st, const struct s_from *from, zmq_msg_t *num)
{
	struct s_rcpt *rc = s_rcpt_by_peer(st, from->id, from->len);
	uint64_t n;
	if (s_parse_u64(zmq_msg_data(num), zmq_msg_size(num), &n)) {
		s_error(st, from->id, from->len, from->fd, from->address, "malformed: the number is not a decimal number");
		return;
	}
	if (!rc) {
		s_error(st, from->id, from->len, from->fd, from->address, "ACK before HELLO");
		return;
	}
	/* Sent on an earlier connection counts as sent: a subscriber may
	 * acknowledge what it had before it reconnected, before the HELLO's
	 * resend reaches that far. */
	if (n > rc->high) {
		s_error(st, from->id, from->len, from->fd, from->address, "ACK of a number never sent");
		return;
	}
	s_ack(st, rc, n, rc->peer.address);
}

/* A message from a connection that has gone: its last ACK still counts
 * (the rest it said no longer matters, and nothing can reach it). */
static void s_on_departed(struct s_state *st, const struct s_departed *d, zmq_msg_t *f, unsigned frames)
{
	struct s_rcpt *rc = s_rcpt_find(st, d->rcpt);
	uint64_t n;
	if (rc && frames == 3 && s_frame_is(&f[1], "YJN1") && s_frame_is(&f[2], "ACK") &&
	    !s_parse_u64(zmq_msg_data(&f[3]), zmq_msg_size(&f[3]), &n) && n <= rc->high)
		s_ack(st, rc, n, d->address);
	else
		yj_debug("out_yjn1: a message from %s, which has gone, dropped", d->address);
}

static struct s_departed *s_departed_find(struct s_state *st, const void *pid, size_t len)
{
	for (size_t i = 0; i < S_DEPARTED; i++) {
		struct s_departed *d = &st->departed[i];
		if (d->id_len == len && !memcmp(d->id, pid, len))
			return d;
	}
	return NULL;
}

/* One whole message, already read: f[0] the routing id, then the first
 * frames of the message (at least five are kept; frames counts them all). */
static void s_handle(struct s_state *st, zmq_msg_t *f, unsigned frames)
{
	/* The connection's properties from a frame it sent: a routing id the
	 * ROUTER prefetched for zmq_poll carries none. */
	zmq_msg_t *first = frames >= 1 ? &f[1] : &f[0];
	struct s_from from = { zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), zmq_msg_get(first, ZMQ_SRCFD), "", NULL };
	const char *pa = zmq_msg_gets(first, "Peer-Address");
	const char *user = frames >= 1 ? zmq_msg_gets(first, "User-Id") : NULL;
	from.user = user && *user ? user : NULL;
	snprintf(from.address, sizeof(from.address), "yjn1:%s", pa && *pa ? pa : "unknown");
	if (!from.len || from.len > S_ID_MAX)
		return;
	if (s_silenced(st, from.id, from.len)) {
		yj_debug("out_yjn1: a message from %s, which was told ERROR, dropped", from.address);
		return;
	}
	struct s_departed *gone = s_departed_find(st, from.id, from.len);
	if (gone && frames >= 2 && s_frame_is(&f[2], "HELLO")) {
		gone->id_len = 0; /* a routing id the client chose, on a new connection: a new conversation */
	} else if (gone) {
		s_on_departed(st, gone, f, frames);
		return;
	}
	if (frames < 1 || !s_frame_is(&f[1], "YJN1")) {
		s_error(st, from.id, from.len, from.fd, from.address, "malformed: frame 0 must be YJN1");
		return;
	}
	if (frames < 2) {
		s_error(st, from.id, from.len, from.fd, from.address, "malformed: no command");
		return;
	}
	if (s_frame_is(&f[2], "HELLO")) {
		if (frames != 4)
			s_error(st, from.id, from.len, from.fd, from.address, "malformed: HELLO has four frames");
		else
			s_on_hello(st, &from, &f[3], &f[4]);
	} else if (s_frame_is(&f[2], "ACK")) {
		if (frames != 3)
			s_error(st, from.id, from.len, from.fd, from.address, "malformed: ACK has three frames");
		else
			s_on_ack(st, &from, &f[3]);
	} else {
		s_error(st, from.id, from.len, from.fd, from.address, "malformed: unknown command");
	}
}

/* Read one whole message and handle it. 1 read, 0 none waiting, <0 error. */
static int s_read_one(struct s_state *st)
{
	zmq_msg_t f[S_MAX_FRAMES];
	unsigned n = 0, total = 0;
	size_t bytes = 0;
	int more = 1, rc = 1, fd = -1;

	while (more) {
		zmq_msg_t *m = &f[n < S_MAX_FRAMES ? n : S_MAX_FRAMES - 1];
		if (n >= S_MAX_FRAMES)
			zmq_msg_close(m); /* keep only the first frames of an absurd message */
		zmq_msg_init(m);
		if (zmq_msg_recv(m, st->sock, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(m);
			if (total == 0 && (zmq_errno() == EAGAIN || zmq_errno() == EINTR))
				return 0;
			rc = YJ_EIO;
			goto out;
		}
		more = zmq_msg_more(m);
		/* The routing id is made up by the ROUTER: it has no descriptor. */
		if (total == 1)
			fd = zmq_msg_get(m, ZMQ_SRCFD);
		if (total > 0)
			bytes += zmq_msg_size(m);
		total++;
		if (n < S_MAX_FRAMES)
			n++;
	}
	yj_zguard_consumed(st->guard, fd, bytes, total - 1);
	/* Frames past the kept ones are absurd anyway: the count says malformed. */
	s_handle(st, f, total - 1);
out:
	for (unsigned i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

/* The monitor's disconnect events: the subscriber on that descriptor is gone. */
static void s_read_monitor(struct s_state *st)
{
	for (;;) {
		zmq_msg_t ev, addr;
		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, st->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		uint16_t event = 0;
		uint32_t value = 0;
		if (zmq_msg_size(&ev) >= 6) {
			memcpy(&event, zmq_msg_data(&ev), 2);
			memcpy(&value, (const char *)zmq_msg_data(&ev) + 2, 4);
		}
		/* The second frame (the endpoint) says nothing we need. */
		int more = zmq_msg_more(&ev);
		zmq_msg_close(&ev);
		while (more) {
			zmq_msg_init(&addr);
			if (zmq_msg_recv(&addr, st->monitor, 0) < 0) {
				zmq_msg_close(&addr);
				break;
			}
			more = zmq_msg_more(&addr);
			zmq_msg_close(&addr);
		}
		yj_zguard_event(st->guard, event, (int)value);
		if (event != ZMQ_EVENT_DISCONNECTED)
			continue;
		for (size_t i = 0; i < st->n_rcpts; i++) {
			if (st->rcpts[i]->connected && st->rcpts[i]->peer.fd == (int)value)
				s_unbind(st, st->rcpts[i], 1, "disconnected");
		}
		for (size_t i = 0; i < S_SILENCED; i++) {
			if (st->silenced[i].id_len && st->silenced[i].fd == (int)value)
				st->silenced[i].id_len = 0;
		}
	}
}

static int s_on_monitor(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	(void)loop;
	(void)sock;
	(void)fd;
	(void)revents;
	s_read_monitor(arg);
	return 0;
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_state *st = arg;
	(void)sock;
	(void)fd;
	(void)revents;
	/* Disconnects first: a descriptor closed before this message's
	 * connection reused it must not end the new subscription. */
	s_read_monitor(st);
	for (size_t i = 0; i < S_READ_MAX; i++) {
		int rc = s_read_one(st);
		if (rc < 0) {
			yj_err("out_yjn1: receive failed: %s", zmq_strerror(zmq_errno()));
			return 0;
		}
		if (rc == 0) {
			yj_zguard_drained(st->guard);
			return 0;
		}
	}
	/* More may be waiting: let the completions commit, then come back. */
	yj_loop_wake(loop);
	return 0;
}

static int s_tick(struct yj_loop *loop, void *arg)
{
	struct s_state *st = arg;
	(void)loop;
	st->timer = 0; /* fired (once): s_arm makes the next */
	while (st->deferred) {
		struct s_job *j = st->deferred;
		st->deferred = j->next;
		if (!st->deferred)
			st->deferred_tail = NULL;
		j->next = NULL;
		s_finish(j, j->result, j->detail, "");
	}
	for (size_t i = 0; i < st->n_rcpts; i++) {
		struct s_rcpt *rc = st->rcpts[i];
		if (rc->blocked) {
			rc->blocked = 0;
			s_pump(st, rc);
		}
	}
	return 0;
}

/* --- the adapter --- */

static void s_destroy(void **state);

static int s_deliver(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg)
{
	struct s_state *st = state;
	struct s_job *j = NULL;

	if (!st || !m || !done || !m->recipient || !m->recipient->id || !m->id || (!m->json && m->json_len) ||
	    (m->kind != YJ_MESSAGE_NOTIFICATION && m->kind != YJ_MESSAGE_DIGEST && m->kind != YJ_MESSAGE_REPORT))
		return YJ_EINVAL;
	if (st->draining)
		return YJ_ESHUTDOWN;
	struct s_rcpt *rc = s_rcpt_get(st, m->recipient->id);
	if (!rc)
		return YJ_ENOMEM;
	if (s_held_find(rc, m->number))
		return YJ_EEXIST; /* the outbox never starts a job twice */
	if (!(j = calloc(1, sizeof(*j))) || !(j->id = strdup(m->id)) || !(j->json = malloc(m->json_len ? m->json_len : 1))) {
		s_job_free(j);
		return YJ_ENOMEM;
	}
	if (m->json_len)
		memcpy(j->json, m->json, m->json_len);
	j->json_len = m->json_len;
	j->number = m->number;
	j->done = done;
	j->arg = arg;
	if (rc->connected) {
		/* At or below what this connection has acknowledged: it can never
		 * take it. Below what was sent: it would come out of order. */
		if (j->number <= rc->conn_acked) {
			s_defer(st, j, YJ_DELIVERY_FATAL,
				"handed over after the subscriber's cursor had passed its number: YJN1 numbers only increase");
			return 0;
		}
		j->late = j->number <= rc->sent_max;
	} else {
		/* Decided at the next HELLO, by its cursor. */
		j->late = j->number <= rc->high;
	}
	s_held_insert(rc, j);
	if (rc->connected && !j->late) {
		/* Above everything sent, so at or before the send point (a job
		 * that waited for opening hours may come below one waiting for
		 * the window). */
		if (!rc->to_send || j->number < rc->to_send->number)
			rc->to_send = j;
		s_pump(st, rc);
	}
	return 0;
}

static int s_init(const struct yj_core_api *api, void **state)
{
	struct s_state *st = NULL;
	if (!api || !state || !api->config || !api->loop || !api->zmq_ctx)
		return YJ_EINVAL;
	const struct yj_config *cfg = api->config(api->core);
	if (!cfg || !cfg->notify_endpoint || !*cfg->notify_endpoint)
		return YJ_ENOENT;
	if (!(st = calloc(1, sizeof(*st))))
		return YJ_ENOMEM;
	st->api = api;
	if (!(st->endpoint = strdup(cfg->notify_endpoint)))
		goto fail;
	const struct s_settings *own = s_own(st, cfg);
	st->curve = own && *own->secret_key;
	snprintf(st->monitor_ep, sizeof(st->monitor_ep), "inproc://out_yjn1-monitor-%p", (void *)st);
	/* Every zmq recipient from the start, with its committed cursor, so
	 * `yjlinkctl subscribers` knows it before anything is delivered. */
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		if (s_is_zmq(&cfg->recipients[i]) && !s_rcpt_get(st, cfg->recipients[i].id))
			goto fail;
	}
	*state = st;
	return 0;
fail:
	s_destroy((void **)&st);
	return YJ_ENOMEM;
}

static int s_start(void *state)
{
	struct s_state *st = state;
	int one = 1, zero = 0, sndhwm = S_SNDHWM, rcvhwm = S_RCVHWM, hb_ivl = S_HB_IVL_MS, hb_to = S_HB_TIMEOUT_MS;
	int64_t maxmsg = S_MAX_MSG;

	if (!(st->sock = zmq_socket(st->api->zmq_ctx, ZMQ_ROUTER)))
		return YJ_EIO;
	/* A peer that is gone or full is an error we see (EHOSTUNREACH,
	 * EAGAIN), never a NOTE dropped in silence. */
	zmq_setsockopt(st->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	zmq_setsockopt(st->sock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
	zmq_setsockopt(st->sock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	/* Unacknowledged NOTEs are still in the outbox: nothing to wait for at close. */
	zmq_setsockopt(st->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(st->sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl));
	zmq_setsockopt(st->sock, ZMQ_HEARTBEAT_TTL, &hb_to, sizeof(hb_to));
	zmq_setsockopt(st->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof(hb_to));
	zmq_setsockopt(st->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (zmq_socket_monitor(st->sock, st->monitor_ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
	    !(st->monitor = zmq_socket(st->api->zmq_ctx, ZMQ_PAIR))) {
		yj_err("out_yjn1: cannot monitor the socket: %s", zmq_strerror(zmq_errno()));
		return YJ_EIO;
	}
	zmq_setsockopt(st->monitor, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(st->monitor, st->monitor_ep) != 0) {
		yj_err("out_yjn1: cannot monitor the socket: %s", zmq_strerror(zmq_errno()));
		return YJ_EIO;
	}
	if (st->curve) {
		/* Keys registered with the ZAP handler before the bind: no key gets in unchecked. */
		const struct s_settings *own = s_own(st, st->api->config(st->api->core));
		int rc = st->api->zap ? s_set_keys(st, st->api->config(st->api->core)) : YJ_EINVAL;
		if (rc) {
			yj_err("out_yjn1: cannot register the keys of notify.subscribers: %s", yj_strerror(rc));
			return rc;
		}
		if (zmq_setsockopt(st->sock, ZMQ_ZAP_DOMAIN, S_DOMAIN, strlen(S_DOMAIN)) ||
		    zmq_setsockopt(st->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
		    zmq_setsockopt(st->sock, ZMQ_CURVE_SECRETKEY, own->secret_key, strlen(own->secret_key))) {
			yj_err("out_yjn1: cannot make %s a CURVE server: %s", st->endpoint, zmq_strerror(zmq_errno()));
			return YJ_EIO;
		}
		yj_notice("out_yjn1: CURVE on %s: %zu subscriber key(s)", st->endpoint, own->subscribers.n);
	}
	if (zmq_bind(st->sock, st->endpoint) != 0) {
		yj_err("out_yjn1: cannot bind %s: %s (is another yjlinkd running? change notify.endpoint)", st->endpoint,
		       zmq_strerror(zmq_errno()));
		return YJ_EIO;
	}
	/* Subscribers get a quarter of the descriptors feeds get. */
	struct yj_zguard_limits lim = {
		.max_connections = yj_zguard_fd_budget(1, 4),
		.stall_bytes = S_MAX_MSG * 4,
		.pressure_bytes = 24u << 20,
		.pressure_held = 2 * S_MAX_MSG,
	};
	int rc = yj_zguard_new(st->api->loop, NULL, st->sock, "notify", &lim, &st->guard);
	if (!rc)
		rc = yj_loop_add(st->api->loop, st->monitor, -1, ZMQ_POLLIN, s_on_monitor, st);
	if (!rc)
		rc = yj_loop_add(st->api->loop, st->sock, -1, ZMQ_POLLIN, s_on_readable, st);
	if (rc)
		return rc;
	yj_notice("out_yjn1: YJN1 subscriptions on %s", st->endpoint);
	return 0;
}

/* Give every held job of rc back to the outbox (it goes by the
 * recipient's new transport, or waits as unroutable), and forget rc. */
static void s_release(struct s_state *st, size_t i)
{
	struct s_rcpt *rc = st->rcpts[i];
	if (rc->connected)
		s_error(st, rc->peer.id, rc->peer.id_len, rc->peer.fd, rc->peer.address,
			"recipient no longer served by YJN1");
	if (rc->n_held)
		yj_notice("out_yjn1: %s is no longer a zmq recipient: its %zu held job(s) go back to the outbox", rc->id,
			  rc->n_held);
	while (rc->head) {
		struct s_job *j = rc->head;
		s_held_unlink(rc, j);
		s_finish(j, YJ_DELIVERY_RETRY, "the recipient's transport is no longer zmq", "");
	}
	free(rc->id);
	free(rc->key);
	free(rc);
	memmove(&st->rcpts[i], &st->rcpts[i + 1], (st->n_rcpts - i - 1) * sizeof(*st->rcpts));
	st->n_rcpts--;
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	struct s_state *st = state;
	if (strcmp(cfg->notify_endpoint, st->endpoint) != 0)
		yj_warn("out_yjn1: notify.endpoint changes only on restart; still on %s", st->endpoint);
	const struct s_settings *own = s_own(st, cfg);
	if (own && !!*own->secret_key != st->curve)
		yj_warn("out_yjn1: notify.curve is switched on or off only on restart; still %s",
			st->curve ? "CURVE" : "without CURVE");
	else if (st->curve && s_set_keys(st, cfg))
		yj_err("out_yjn1: notify.subscribers not taken: the keys before the reload still apply");
	else if (st->curve)
		yj_notice("out_yjn1: notify.subscribers reloaded: %zu subscriber key(s)", own->subscribers.n);
	for (size_t i = 0; i < st->n_rcpts; i++)
		st->rcpts[i]->in_config = 0;
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		if (!s_is_zmq(&cfg->recipients[i]))
			continue;
		struct s_rcpt *rc = s_rcpt_get(st, cfg->recipients[i].id);
		if (!rc)
			return YJ_ENOMEM;
		rc->in_config = 1;
	}
	for (size_t i = st->n_rcpts; i-- > 0;) {
		if (!st->rcpts[i]->in_config)
			s_release(st, i);
	}
	/* A window may have grown. */
	for (size_t i = 0; i < st->n_rcpts; i++)
		s_pump(st, st->rcpts[i]);
	return 0;
}

static void s_drain(void *state)
{
	struct s_state *st = state;
	/* ACKs still complete jobs in the grace period; new jobs are refused
	 * and stay in the outbox for the next start. */
	if (st)
		st->draining = 1;
}

static void s_jobs_free(struct s_job *j)
{
	while (j) {
		struct s_job *next = j->next;
		s_job_free(j);
		j = next;
	}
}

static void s_destroy(void **state)
{
	struct s_state *st = state ? *state : NULL;
	if (!st)
		return;
	if (st->timer > 0)
		yj_loop_timer_cancel(st->api->loop, st->timer);
	yj_zguard_destroy(&st->guard);
	if (st->monitor) {
		yj_loop_remove(st->api->loop, st->monitor, -1);
		zmq_close(st->monitor);
	}
	if (st->sock) {
		yj_loop_remove(st->api->loop, st->sock, -1);
		zmq_close(st->sock);
	}
	/* Held and deferred jobs are abandoned without done: the core frees
	 * what it lent us, and the outbox hands them over again after the
	 * restart, same numbers. */
	s_jobs_free(st->deferred);
	for (size_t i = 0; i < st->n_rcpts; i++) {
		s_jobs_free(st->rcpts[i]->head);
		free(st->rcpts[i]->id);
		free(st->rcpts[i]->key);
		free(st->rcpts[i]);
	}
	free(st->rcpts);
	free(st->endpoint);
	free(st);
	*state = NULL;
}

/* `yjlinkctl subscribers`: every zmq recipient of the config in force. */
static int s_run_command(void *state, const char *args_json, char **out_json)
{
	struct s_state *st = state;
	const struct yj_config *cfg = st->api->config(st->api->core);
	(void)args_json;
	*out_json = NULL;
	cJSON *o = cJSON_CreateObject(), *list = o ? cJSON_AddArrayToObject(o, "subscribers") : NULL;
	if (!list)
		goto fail;
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		if (!s_is_zmq(&cfg->recipients[i]))
			continue;
		struct s_rcpt *rc = s_rcpt_get(st, cfg->recipients[i].id);
		cJSON *e = cJSON_CreateObject();
		if (!rc || !e || !cJSON_AddItemToArray(list, e))
			goto fail;
		cJSON_AddStringToObject(e, "recipient", rc->id);
		cJSON_AddBoolToObject(e, "connected", rc->connected);
		cJSON_AddStringToObject(e, "address", rc->connected ? rc->peer.address : "");
		cJSON_AddNumberToObject(e, "last_acked", (double)rc->acked);
		cJSON_AddNumberToObject(e, "held", (double)(rc->n_held - rc->n_sent));
		cJSON_AddNumberToObject(e, "in_flight", (double)rc->n_sent);
		cJSON_AddNumberToObject(e, "lag", (double)rc->n_held);
		cJSON_AddNumberToObject(e, "window", (double)s_window(st, rc));
	}
	if (!(*out_json = cJSON_PrintUnformatted(o)))
		goto fail;
	cJSON_Delete(o);
	return 0;
fail:
	cJSON_Delete(o);
	return 1;
}

static void s_metrics(void *state, struct yj_prom *p)
{
	yj_zguard_metrics(((struct s_state *)state)->guard, p);
	struct s_state *st = state;
	const struct yj_config *cfg = st->api->config(st->api->core);
	static const char lag[] = "yjlink_subscriber_lag", conn[] = "yjlink_subscriber_connected";
	/* Each family's samples together (prom.h): one pass per family. */
	yj_prom_family(p, lag, "gauge", "Jobs of a zmq recipient not yet acknowledged by its YJN1 subscriber");
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct s_rcpt *rc = s_is_zmq(&cfg->recipients[i]) ? s_rcpt_find(st, cfg->recipients[i].id) : NULL;
		if (rc)
			yj_prom_sample_l(p, lag, (double)rc->n_held, "recipient", rc->id, NULL);
	}
	yj_prom_family(p, conn, "gauge", "1 while a YJN1 subscriber of the zmq recipient is connected");
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct s_rcpt *rc = s_is_zmq(&cfg->recipients[i]) ? s_rcpt_find(st, cfg->recipients[i].id) : NULL;
		if (rc)
			yj_prom_sample_l(p, conn, rc->connected ? 1.0 : 0.0, "recipient", rc->id, NULL);
	}
}

const struct yj_adapter yj_adapter_out_yjn1 = {
	.conf = {
		.name = "out_yjn1",
		.section = "notify",
		.settings = s_section_table,
		.n_settings = sizeof(s_section_table) / sizeof(s_section_table[0]),
		.settings_size = sizeof(struct s_settings),
		.check = s_check,
		.endpoint = "notify.endpoint",
		.authenticates = s_authenticates,
		.transport = "zmq",
		.recipient_settings = s_recipient_table,
		.n_recipient_settings = sizeof(s_recipient_table) / sizeof(s_recipient_table[0]),
		.recipient_settings_size = sizeof(struct s_recipient),
	},
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.command = "subscribers",
	.run_command = s_run_command,
	.metrics = s_metrics,
	.deliver = s_deliver,
	/* Every job of a zmq recipient is held here until acknowledged; its own
	 * zmq.window (at most this) bounds what is sent. */
	.window = S_MAX_WINDOW,
	.digest_parts = 8, /* the digest object as one NOTE */
};
