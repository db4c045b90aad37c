/* out_peer.c: the peer transport (interfaces.md §3 `peer`): notifications to
 * another force's yjlinkd, which takes each in as a feed message over YJL1
 * (§1), exactly as it takes one from its own custody system.
 *
 * One ZMQ_DEALER per peer recipient, made on its first message, pipelines
 * one YJL1 request per job: `YJL1`, the event's feed, `application/json`,
 * and the notification's "event" object (the outbox has already cut it down
 * to the recipient's allowlist) without what yjlinkd adds for its own
 * receivers (seq, feed, stored_at), with source_id the notification id (a
 * retry is a DUP at the peer, never a second event) and force this
 * deployment's (the force the peer authorises the sender for).
 *
 * Replies come back on the same DEALER in any order (a peer answers a
 * refusal at once and an OK after its commit) and are matched by frame 2,
 * the source_id. The adapter only says OK (OK, DUP), RETRY (RETRY, not
 * connected, no reply in time) or FATAL (REJECT, with the peer's detail for
 * the dead-letter queue): retries and backoff are the core's.
 *
 * Nothing blocks and nothing queues for a peer that is not there: every
 * send is DONTWAIT on a socket with ZMQ_IMMEDIATE, so a peer that is down
 * costs a RETRY at once rather than a pile of requests, with their deadlines
 * long past, replayed at it when it comes back.
 *
 * CURVE: with peer.server_key and peer.key_file the DEALER is a CURVE client
 * (the peer's public key, our secret key and the public key derived from
 * it); with neither it is plain, which check_recipient allows only on
 * loopback and ipc:// (interfaces.md §1: anything else is CURVE).
 *
 * Neither the payload nor the peer's detail text is logged: the one is a
 * child's personal data, the other may echo some. Log lines carry ids,
 * recipient ids, endpoints and the peer's REJECT code and field.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adapter.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"

#define S_DEFAULT_TIMEOUT_MS 10000  /* as the table's default, for settings filled by hand */
#define S_HWM 1000                  /* per direction: far above the outbox's window, so never the limit */
#define S_RECONNECT_MS 250          /* first reconnect after a peer went away ... */
#define S_RECONNECT_MAX_MS 5000     /* ... backing off to this while it stays away */
#define S_HEARTBEAT_IVL_MS 10000    /* a peer host that vanished without a FIN is noticed ... */
#define S_HEARTBEAT_TTL_MS 30000    /* ... within this */
#define S_MAX_REPLY 65536           /* ZMQ_MAXMSGSIZE: a reply is a few hundred bytes */
#define S_SWEEP_MS 100              /* how often deadlines are looked at */
#define S_CONNECT_GRACE_MS 2000     /* a new DEALER's first connection: its requests wait this long for it */
#define S_READ_MAX 256              /* replies read per wake-up before the loop gets a turn */
#define S_DETAIL_MAX 1024           /* the peer's detail kept for the DLQ, at most */
#define S_Z85_KEY 40                /* a CURVE key as Z85 text */

/* What every peer recipient carries, filled by the core's config loader
 * from s_recipient_table. */
struct s_recipient {
	char *endpoint;                 /* peer.endpoint: the other force's YJL1 endpoint */
	char *server_key;               /* peer.server_key: its CURVE public key, Z85; "" = plain */
	char *key_file;                 /* the first line of peer.key_file (the key, not the path); "" = plain */
	int64_t timeout_ms;             /* peer.timeout_ms: a request's wait for its reply */
};

#define S_OFF(f) offsetof(struct s_recipient, f)
static const struct yj_setting s_recipient_table[] = {
	{ YJ_SETTING_STR, "peer.endpoint", S_OFF(endpoint), NULL, 0, 0,
	  "transport peer: the other force's yjlinkd YJL1 ingest endpoint (tcp:// or ipc://)" },
	{ YJ_SETTING_STR, "peer.server_key", S_OFF(server_key), "", 0, 0,
	  "the peer's CURVE public key (Z85, 40 characters); with key_file, or neither (plain: loopback or ipc:// only)" },
	{ YJ_SETTING_SECRET_FILE, "peer.key_file", S_OFF(key_file), "", 0, 0,
	  "file whose first line is this daemon's CURVE secret key for that peer (Z85; relative to the config file)" },
	{ YJ_SETTING_INT, "peer.timeout_ms", S_OFF(timeout_ms), "10000", 100, 600000,
	  "how long a request waits for the peer's reply before it is retried, milliseconds" },
};
#undef S_OFF

/* What a peer refuses as REJECT schema when it is missing (interfaces.md
 * §2, and the normaliser's tables): an allowlist that keeps one of them
 * back makes every such message fail. source_id and force are not here:
 * this adapter sets both itself. */
static const char *const s_required[] = {
	"occurred_at",
	"child.person_id", "child.given_name", "child.family_name", "child.date_of_birth",
	"custody.record_id", "custody.suite", "custody.arrived_at", "custody.status", "custody.status_at",
	"arrest.arrest_id", "arrest.arrested_at",
	"outcome.case_ref", "outcome.code", "outcome.decided_at",
};

/* Required only once something else is sent: the field of a value that
 * would otherwise arrive without its companion. */
static const struct {
	const char *when;               /* this path, or anything below it, is let through ... */
	const char *need;               /* ... so this one must be too */
} s_required_with[] = {
	{ "child.looked_after", "child.responsible_la" },  /* looked_after true needs responsible_la */
	{ "child.date_of_birth", "child.apparent_age" },   /* a child whose date of birth is not known has only this */
	{ "offences", "offences.code" },                   /* an offence needs its code */
	{ "interview", "interview.interview_id" },         /* a feed object sent at all is sent whole */
	{ "interview", "interview.status" },
	{ "interview", "interview.at" },
};

struct s_peer;

/* One request, from deliver() to its done(). */
struct s_req {
	struct s_peer *peer;            /* the DEALER it went out on (or waits for); NULL in the report queue */
	int parked;                     /* on its peer's parked list (its first connection is not up yet), not live */
	char *feed;                     /* owned while parked: frame 1 */
	char *payload;                  /* owned while parked: frame 3 (the child's data: wiped when freed) */
	size_t payload_len;
	char *id;                       /* owned: the notification id, which the reply names as its source_id */
	char *address;                  /* owned: the endpoint, for the audit and the log */
	int64_t timeout_ms;             /* its wait for the reply ... */
	int64_t deadline_ms;            /* ... ending then (loop clock) */
	yj_delivery_done_fn done;       /* the core's, called exactly once unless destroyed first */
	void *arg;                      /* done's argument */
	enum yj_delivery_result result; /* report queue: what done() will say */
	char *detail;                   /* report queue: owned, what it will say it with */
	struct s_req *prev;             /* in its peer's live or parked list, or the report queue */
	struct s_req *next;             /* (doubly linked: O(1) unlink) */
};

struct s_state;

/* The DEALER of one peer recipient and what it waits for. */
struct s_peer {
	struct s_state *st;             /* the adapter it belongs to */
	char *rcpt;                     /* owned: the recipient id it serves */
	char *endpoint;                 /* owned: connected to */
	char *server_key;               /* owned: the peer's public key, "" = plain */
	char public_key[S_Z85_KEY + 1]; /* ours, derived from the secret, "" = plain: stands for the
	                                 * secret when settings are compared, and may be logged */
	void *sock;                     /* owned: the DEALER */
	void *mon;                      /* owned: PAIR reading sock's monitor events; NULL if monitoring failed */
	int64_t opened_ms;              /* loop clock when sock was made: its first connection's grace starts */
	int ever_connected;             /* a request got out on it once: from then on EAGAIN is RETRY at once */
	int connected;                  /* a handshake succeeded, no disconnect since */
	int handshake_failed;           /* the last handshake failed (said once per failure spell) */
	struct s_req *live;             /* sent, waiting for their reply */
	size_t n_live;
	struct s_req *parked;           /* oldest first: waiting for the first connection (S_CONNECT_GRACE_MS at most) */
	struct s_peer *next;            /* in s_state.peers */
};

struct s_state {
	const struct yj_core_api *api;  /* borrowed, valid until destroy */
	struct s_peer *peers;           /* owned: one per peer recipient that has had a message */
	struct s_req *reports;          /* owned: done() owed from the 0 ms timer (never from deliver()) */
	int64_t report_timer;           /* that timer's id, 0 when not armed */
	int64_t sweep_timer;            /* the reply deadlines' timer, 0 before start */
	unsigned monitors;              /* monitor endpoints made: each inproc name is used once */
	int draining;                   /* drain() was called: take no new deliveries */
};

/* --- requests ---------------------------------------------------------------- */

/* A parked request's frames, gone (it was sent, or will never be from here). */
static void s_req_unpark(struct s_req *q)
{
	if (q->payload) {
		memset(q->payload, 0, q->payload_len);
		cJSON_free(q->payload);
	}
	free(q->feed);
	q->payload = q->feed = NULL;
	q->payload_len = 0;
}

static void s_req_free(struct s_req *q)
{
	if (!q)
		return;
	s_req_unpark(q);
	free(q->id);
	free(q->address);
	free(q->detail);
	free(q);
}

static void s_push(struct s_req **head, struct s_req *q)
{
	q->prev = NULL;
	q->next = *head;
	if (*head)
		(*head)->prev = q;
	*head = q;
}

static void s_append(struct s_req **head, struct s_req *q)
{
	struct s_req **at = head, *prev = NULL;
	while (*at) {
		prev = *at;
		at = &(*at)->next;
	}
	q->prev = prev;
	q->next = NULL;
	*at = q;
}

static void s_unlink(struct s_req **head, struct s_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else if (*head == q)
		*head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

/* Take q off its peer's lists (it has its answer, or never will). */
static void s_unlive(struct s_req *q)
{
	if (!q->peer)
		return;
	if (q->parked) {
		s_unlink(&q->peer->parked, q);
		q->parked = 0;
	} else {
		s_unlink(&q->peer->live, q);
		q->peer->n_live--;
	}
	q->peer = NULL;
}

/* Say what happened to q and free it. Off every list first: done may start
 * the next delivery right away. */
static void s_finish(struct s_req *q, enum yj_delivery_result result, const char *detail)
{
	s_unlive(q);
	q->done(q->arg, result, detail, q->address ? q->address : "");
	s_req_free(q);
}

static int s_on_report(struct yj_loop *loop, void *arg)
{
	struct s_state *st = arg;
	(void)loop;
	st->report_timer = 0;
	/* The whole queue as it stands: a done() that delivers again queues for the next round. */
	struct s_req *q = st->reports;
	st->reports = NULL;
	while (q) {
		struct s_req *next = q->next;
		q->prev = q->next = NULL;
		q->done(q->arg, q->result, q->detail ? q->detail : "", q->address ? q->address : "");
		s_req_free(q);
		q = next;
	}
	return 0;
}

/* Owe q's done() from the 0 ms timer: never from inside deliver(), where
 * the outbox is in the middle of starting it (adapter.h). */
static void s_report(struct s_state *st, struct s_req *q, enum yj_delivery_result result, const char *detail)
{
	s_unlive(q);
	q->result = result;
	free(q->detail);
	q->detail = strdup(detail); /* NULL (out of memory): said as "" */
	s_push(&st->reports, q);
	if (!st->report_timer) {
		int64_t t = yj_loop_timer(st->api->loop, 0, 0, s_on_report, st);
		/* Without a timer now, the sweep's next round reports it. */
		st->report_timer = t > 0 ? t : 0;
	}
}

/* --- text from the peer -------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t s_utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (!len || len > n || (len == 2 && s[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

/* What a peer sent, made safe for the log, the DLQ and JSON output: valid
 * UTF-8 without control characters, cut whole at size - 1 bytes. */
static void s_text(const void *data, size_t len, char *out, size_t size)
{
	const unsigned char *s = data;
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t n = s_utf8_len(s + i, len - i);
		if (o + (n ? n : 1) >= size)
			break;
		if (n == 1 && (s[i] < 0x20 || s[i] == 0x7f)) {
			out[o++] = ' ';
		} else if (n) {
			memcpy(out + o, s + i, n);
			o += n;
		} else {
			out[o++] = '?';
			n = 1;
		}
		i += n;
	}
	out[o] = '\0';
}

static int s_is_decimal(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
	}
	return 1;
}

/* --- the peer's socket ---------------------------------------------------------- */

/* Our public key for rs's secret into pub ("" when plain). YJ_EINVAL when
 * the secret is not a Z85 CURVE key. */
static int s_public_key(const struct s_recipient *rs, char pub[S_Z85_KEY + 1])
{
	pub[0] = '\0';
	if (!rs->key_file || !*rs->key_file)
		return 0;
	/* zmq_z85_decode writes len * 4 / 5 bytes: only a key's length fits. */
	if (strlen(rs->key_file) != S_Z85_KEY || zmq_curve_public(pub, rs->key_file) != 0) {
		pub[0] = '\0';
		return YJ_EINVAL;
	}
	return 0;
}

static int s_z85_key_ok(const char *key)
{
	uint8_t bin[32];
	return key && strlen(key) == S_Z85_KEY && zmq_z85_decode(bin, key) != NULL;
}

/* Does p still stand for these settings (a reload may change them)? */
static int s_peer_same(const struct s_peer *p, const struct s_recipient *rs)
{
	char pub[S_Z85_KEY + 1];
	if (s_public_key(rs, pub))
		return 0;
	return !strcmp(p->endpoint, rs->endpoint) && !strcmp(p->server_key, rs->server_key ? rs->server_key : "") &&
	       !strcmp(p->public_key, pub);
}

/* Close p and free it; what it still waits for is retried (why says why). */
static void s_peer_close(struct s_peer *p, const char *why)
{
	struct s_state *st = p->st;
	while (p->live || p->parked) {
		struct s_req *q = p->live ? p->live : p->parked;
		if (why) {
			s_report(st, q, YJ_DELIVERY_RETRY, why);
		} else {
			/* destroy: abandoned without done, the outbox sends it again after the restart. */
			s_unlive(q);
			s_req_free(q);
		}
	}
	if (p->mon) {
		yj_loop_remove(st->api->loop, p->mon, -1);
		zmq_socket_monitor(p->sock, NULL, 0);
		zmq_close(p->mon);
	}
	if (p->sock) {
		yj_loop_remove(st->api->loop, p->sock, -1);
		zmq_close(p->sock);
	}
	free(p->rcpt);
	free(p->endpoint);
	free(p->server_key);
	free(p);
}

static void s_peer_drop(struct s_state *st, struct s_peer *p, const char *why)
{
	for (struct s_peer **pp = &st->peers; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	s_peer_close(p, why);
}

/* One request, whole or not at all. YJ_EAGAIN when the peer cannot take it now. */
static int s_send(void *sock, const char *feed, const char *payload, size_t len)
{
	static const char ct[] = "application/json";
	if (zmq_send(sock, "YJL1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return zmq_errno() == EAGAIN ? YJ_EAGAIN : YJ_EIO;
	/* libzmq takes a multipart message whole once its first frame is in:
	 * the rest cannot meet a full pipe. */
	if (zmq_send(sock, feed, strlen(feed), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(sock, ct, sizeof(ct) - 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 || zmq_send(sock, payload, len, ZMQ_DONTWAIT) < 0)
		return YJ_EIO;
	return 0;
}

/* q is out on p: it waits for its reply from now. */
static void s_go_live(struct s_peer *p, struct s_req *q)
{
	s_unlive(q);
	s_req_unpark(q);
	q->deadline_ms = yj_loop_now_ms() + q->timeout_ms;
	q->peer = p;
	s_push(&p->live, q);
	p->n_live++;
	p->ever_connected = 1;
}

/* Why a request that could not go out is retried. */
static void s_send_failed(struct s_peer *p, int rc, char *why, size_t size)
{
	if (rc == YJ_EAGAIN)
		snprintf(why, size, "peer not reachable%s", p->handshake_failed ? " (its handshake failed: keys?)" : "");
	else
		snprintf(why, size, "cannot send to the peer: %s", zmq_strerror(zmq_errno()));
}

/* Send what waits for p's first connection, oldest first, now that it may
 * be up (the monitor says so, or the sweep looks again). What still cannot
 * go once the grace is over is retried: the peer is not there. */
static void s_flush_parked(struct s_peer *p)
{
	char why[160];
	while (p->parked) {
		struct s_req *q = p->parked;
		int rc = s_send(p->sock, q->feed, q->payload, q->payload_len);
		if (!rc) {
			s_go_live(p, q);
			continue;
		}
		if (rc == YJ_EAGAIN && yj_loop_now_ms() - p->opened_ms < S_CONNECT_GRACE_MS)
			return;
		s_send_failed(p, rc, why, sizeof(why));
		s_report(p->st, q, YJ_DELIVERY_RETRY, why);
	}
}

/* One reply, or none waiting. Returns 1 when a message was read, 0 when
 * none was there, <0 on a socket error. */
static int s_read_reply(struct s_peer *p)
{
	zmq_msg_t f[4];
	unsigned n = 0, total = 0;
	int more = 1;
	char detail[S_DETAIL_MAX + 32], text[S_DETAIL_MAX], sid[160];

	while (more) {
		zmq_msg_t extra, *m = n < 4 ? &f[n] : &extra;
		zmq_msg_init(m);
		/* The rest of a message is there once its first frame is. */
		if (zmq_msg_recv(m, p->sock, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(m);
			if (total == 0 && (zmq_errno() == EAGAIN || zmq_errno() == EINTR))
				return 0;
			for (unsigned i = 0; i < n; i++)
				zmq_msg_close(&f[i]);
			return YJ_EIO;
		}
		more = zmq_msg_more(m);
		total++;
		if (m == &extra)
			zmq_msg_close(m);
		else
			n++;
	}
	struct s_req *q = NULL;
	if (total != 4 || zmq_msg_size(&f[0]) != 4 || memcmp(zmq_msg_data(&f[0]), "YJL1", 4)) {
		yj_warn("out_peer: %s (%s) sent a reply that is not YJL1 (%u frames): ignored", p->rcpt, p->endpoint, total);
		goto out;
	}
	const char *status = zmq_msg_data(&f[1]), *id = zmq_msg_data(&f[2]);
	size_t status_len = zmq_msg_size(&f[1]), id_len = zmq_msg_size(&f[2]);
	for (struct s_req *it = p->live; it && !q; it = it->next) {
		if (strlen(it->id) == id_len && !memcmp(it->id, id, id_len))
			q = it;
	}
	/* A reply to a request whose source_id the peer could not read (a
	 * refusal before parsing, "shutting down") names none: it is the one
	 * request waiting, when only one is; otherwise the waiting ones time
	 * out and go again, one at a time (the outbox's order mode), and the
	 * answer then finds its request. */
	if (!q && id_len == 0 && p->n_live == 1)
		q = p->live;
	s_text(id, id_len, sid, sizeof(sid));
	if (!q) {
		yj_debug("out_peer: %s: a reply for '%s' that no request waits for (answered after its timeout?): ignored",
			 p->rcpt, sid);
		goto out;
	}
	s_text(zmq_msg_data(&f[3]), zmq_msg_size(&f[3]), text, sizeof(text));
	if ((status_len == 2 && !memcmp(status, "OK", 2)) || (status_len == 3 && !memcmp(status, "DUP", 3))) {
		/* DUP: the peer had it already (a retry after a lost reply): delivered all the same. */
		snprintf(detail, sizeof(detail), "%.*s %s", (int)status_len, status, s_is_decimal(text) ? text : "?");
		yj_debug("out_peer: %s delivered to %s (%s): %s", q->id, p->rcpt, p->endpoint, detail);
		s_finish(q, YJ_DELIVERY_OK, detail);
	} else if (status_len == 5 && !memcmp(status, "RETRY", 5)) {
		snprintf(detail, sizeof(detail), "RETRY %s", text);
		s_finish(q, YJ_DELIVERY_RETRY, detail);
	} else if (status_len == 6 && !memcmp(status, "REJECT", 6)) {
		/* The log gets the code and the field; the reason stays in the DLQ. */
		cJSON *j = cJSON_Parse(text);
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "error");
		const cJSON *field = cJSON_GetObjectItemCaseSensitive(j, "field");
		yj_warn("out_peer: %s refused by %s (%s): REJECT %s%s%s", q->id, p->rcpt, p->endpoint,
			cJSON_IsString(code) ? code->valuestring : "?",
			cJSON_IsString(field) && *field->valuestring ? " at " : "",
			cJSON_IsString(field) ? field->valuestring : "");
		cJSON_Delete(j);
		s_finish(q, YJ_DELIVERY_FATAL, text);
	} else {
		/* A status of a later protocol version: not ours to judge, so transient. */
		char st_text[16];
		s_text(status, status_len, st_text, sizeof(st_text));
		snprintf(detail, sizeof(detail), "the peer answered an unknown status '%s'", st_text);
		yj_warn("out_peer: %s to %s: %s", q->id, p->rcpt, detail);
		s_finish(q, YJ_DELIVERY_RETRY, detail);
	}
out:
	for (unsigned i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return 1;
}

/* Read the replies waiting, S_READ_MAX at most. Returns 1 when more may wait. */
static int s_drain_replies(struct s_peer *p)
{
	for (size_t i = 0; i < S_READ_MAX; i++) {
		int rc = s_read_reply(p);
		if (rc < 0) {
			yj_err("out_peer: %s: receive failed: %s", p->rcpt, zmq_strerror(zmq_errno()));
			return 0;
		}
		if (rc == 0)
			return 0;
	}
	return 1;
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	(void)sock;
	(void)fd;
	(void)revents;
	/* More may be waiting: let the completions commit, then come straight back. */
	if (s_drain_replies(arg))
		yj_loop_wake(loop);
	return 0;
}

/* The monitor says how the connection stands: said once per change, so an
 * operator sees a peer come and go and a key that does not fit. */
static int s_on_monitor(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_peer *p = arg;
	(void)loop;
	(void)fd;
	(void)revents;
	for (size_t i = 0; i < S_READ_MAX; i++) {
		zmq_msg_t f;
		uint16_t event = 0;
		zmq_msg_init(&f);
		if (zmq_msg_recv(&f, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&f);
			return 0;
		}
		if (zmq_msg_size(&f) >= sizeof(event))
			memcpy(&event, zmq_msg_data(&f), sizeof(event));
		/* The rest (the endpoint) is the one we connected to: read and dropped. */
		int more = zmq_msg_more(&f);
		zmq_msg_close(&f);
		while (more) {
			zmq_msg_init(&f);
			if (zmq_msg_recv(&f, sock, 0) < 0) {
				zmq_msg_close(&f);
				return 0;
			}
			more = zmq_msg_more(&f);
			zmq_msg_close(&f);
		}
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && !p->connected) {
			p->connected = 1;
			p->handshake_failed = 0;
			yj_notice("out_peer: %s: connected to %s (%s)", p->rcpt, p->endpoint, *p->server_key ? "CURVE" : "plain");
			s_flush_parked(p);
		} else if (event == ZMQ_EVENT_DISCONNECTED && p->connected) {
			p->connected = 0;
			/* The peer answers on the connection a request came by: what it
			 * has not answered yet it never will. What did arrive is read
			 * first; the rest goes again now rather than at its timeout (a
			 * peer that had stored one answers DUP). */
			s_drain_replies(p);
			if (p->n_live)
				yj_warn("out_peer: %s: lost the connection to %s; %zu unanswered request(s) go again", p->rcpt,
					p->endpoint, p->n_live);
			else
				yj_warn("out_peer: %s: lost the connection to %s", p->rcpt, p->endpoint);
			while (p->live)
				s_report(p->st, p->live, YJ_DELIVERY_RETRY, "lost the connection to the peer before its reply");
		} else if ((event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
			    event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) && !p->handshake_failed) {
			p->handshake_failed = 1;
			if (*p->server_key)
				yj_warn("out_peer: %s: the CURVE handshake with %s failed: check peer.server_key, and that "
					"the peer lists our public key %s",
					p->rcpt, p->endpoint, p->public_key);
			else
				yj_warn("out_peer: %s: the handshake with %s failed (does it want CURVE?)", p->rcpt, p->endpoint);
		}
	}
	return 0;
}

static int s_setopt_int(void *sock, int opt, int v) { return zmq_setsockopt(sock, opt, &v, sizeof(v)); }

/* Watch p's connection through a monitor; without one p works all the same. */
static void s_peer_monitor(struct s_peer *p)
{
	char name[64];
	snprintf(name, sizeof(name), "inproc://out_peer-monitor-%u", ++p->st->monitors);
	if (zmq_socket_monitor(p->sock, name,
			       ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
		goto failed;
	if (!(p->mon = zmq_socket(p->st->api->zmq_ctx, ZMQ_PAIR)))
		goto stop;
	s_setopt_int(p->mon, ZMQ_LINGER, 0);
	if (zmq_connect(p->mon, name) != 0 || yj_loop_add(p->st->api->loop, p->mon, -1, ZMQ_POLLIN, s_on_monitor, p))
		goto stop;
	return;
stop:
	if (p->mon)
		zmq_close(p->mon);
	p->mon = NULL;
	zmq_socket_monitor(p->sock, NULL, 0);
failed:
	yj_warn("out_peer: %s: cannot watch the connection (%s); delivering without", p->rcpt, zmq_strerror(zmq_errno()));
}

/* A new DEALER for recipient rcpt, connecting to rs's endpoint. */
static int s_peer_open(struct s_state *st, const char *rcpt, const struct s_recipient *rs, struct s_peer **out)
{
	struct s_peer *p = calloc(1, sizeof(*p));
	int rc = YJ_ENOMEM;
	const int64_t maxmsg = S_MAX_REPLY;

	if (!p)
		return YJ_ENOMEM;
	p->st = st;
	if (!(p->rcpt = strdup(rcpt)) || !(p->endpoint = strdup(rs->endpoint)) ||
	    !(p->server_key = strdup(rs->server_key ? rs->server_key : "")))
		goto out;
	rc = YJ_EINVAL;
	if (s_public_key(rs, p->public_key) || (*p->server_key != '\0') != (*p->public_key != '\0')) {
		/* check_recipient refuses it; settings filled by hand must not get through plain. */
		yj_err("out_peer: %s: peer.server_key and peer.key_file must both be CURVE keys, or both empty", rcpt);
		goto out;
	}
	rc = YJ_EIO;
	if (!(p->sock = zmq_socket(st->api->zmq_ctx, ZMQ_DEALER)))
		goto out;
	p->opened_ms = yj_loop_now_ms();
	/* Nothing waits for a peer that is not connected (a send says EAGAIN at
	 * once), nothing outlives the socket, and a dead host is noticed. */
	if (s_setopt_int(p->sock, ZMQ_IMMEDIATE, 1) || s_setopt_int(p->sock, ZMQ_LINGER, 0) ||
	    s_setopt_int(p->sock, ZMQ_SNDHWM, S_HWM) || s_setopt_int(p->sock, ZMQ_RCVHWM, S_HWM) ||
	    s_setopt_int(p->sock, ZMQ_RECONNECT_IVL, S_RECONNECT_MS) ||
	    s_setopt_int(p->sock, ZMQ_RECONNECT_IVL_MAX, S_RECONNECT_MAX_MS) ||
	    s_setopt_int(p->sock, ZMQ_HEARTBEAT_IVL, S_HEARTBEAT_IVL_MS) ||
	    s_setopt_int(p->sock, ZMQ_HEARTBEAT_TTL, S_HEARTBEAT_TTL_MS) ||
	    s_setopt_int(p->sock, ZMQ_HEARTBEAT_TIMEOUT, S_HEARTBEAT_TTL_MS) ||
	    zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg))) {
		yj_err("out_peer: %s: cannot set up a socket: %s", rcpt, zmq_strerror(zmq_errno()));
		goto out;
	}
	/* The server key makes this the CURVE client; all three before connect. */
	if (*p->server_key &&
	    (zmq_setsockopt(p->sock, ZMQ_CURVE_SERVERKEY, p->server_key, S_Z85_KEY) ||
	     zmq_setsockopt(p->sock, ZMQ_CURVE_PUBLICKEY, p->public_key, S_Z85_KEY) ||
	     zmq_setsockopt(p->sock, ZMQ_CURVE_SECRETKEY, rs->key_file, S_Z85_KEY))) {
		yj_err("out_peer: %s: cannot set the CURVE keys: %s", rcpt, zmq_strerror(zmq_errno()));
		goto out;
	}
	s_peer_monitor(p);
	if (zmq_connect(p->sock, p->endpoint) != 0) {
		yj_err("out_peer: %s: cannot connect to %s: %s", rcpt, p->endpoint, zmq_strerror(zmq_errno()));
		goto out;
	}
	if ((rc = yj_loop_add(st->api->loop, p->sock, -1, ZMQ_POLLIN, s_on_readable, p)))
		goto out;
	yj_info("out_peer: %s: connecting to %s (%s)", rcpt, p->endpoint, *p->server_key ? "CURVE" : "plain");
	p->next = st->peers;
	st->peers = p;
	*out = p;
	return 0;
out:
	s_peer_close(p, NULL);
	return rc;
}

/* The peer of recipient rcpt as rs describes it: the one there is, or a new
 * one (in place of one whose settings a reload changed). */
static int s_peer_get(struct s_state *st, const char *rcpt, const struct s_recipient *rs, struct s_peer **out)
{
	for (struct s_peer *p = st->peers; p; p = p->next) {
		if (strcmp(p->rcpt, rcpt))
			continue;
		if (s_peer_same(p, rs)) {
			*out = p;
			return 0;
		}
		yj_notice("out_peer: %s: peer settings changed; reconnecting to %s", rcpt, rs->endpoint);
		s_peer_drop(st, p, "the peer's settings changed: sent again");
		break;
	}
	return s_peer_open(st, rcpt, rs, out);
}

/* --- delivery ---------------------------------------------------------------------- */

/* The YJL1 payload of notification m: its "event" object as the peer takes
 * a feed message. YJ_EINVAL when m holds no event object. */
static int s_payload(const struct yj_message *m, const char *force, char **out, size_t *len)
{
	static const char *const ours[] = { "seq", "feed", "stored_at" };
	int rc = YJ_ENOMEM;
	/* The outbox made this JSON: when it does not parse, memory ran out. */
	cJSON *root = cJSON_ParseWithLength(m->json, m->json_len);
	cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "event");

	*out = NULL;
	if (!root)
		goto out;
	rc = YJ_EINVAL;
	if (!cJSON_IsObject(ev))
		goto out;
	/* What yjlinkd adds for its own receivers: the peer refuses unknown fields. */
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		cJSON_DeleteItemFromObjectCaseSensitive(ev, ours[i]);
	/* The notification id, stable across retries: a repeat is a DUP there. */
	cJSON_DeleteItemFromObjectCaseSensitive(ev, "source_id");
	cJSON_DeleteItemFromObjectCaseSensitive(ev, "force");
	rc = YJ_ENOMEM;
	if (!cJSON_AddStringToObject(ev, "source_id", m->id) || !cJSON_AddStringToObject(ev, "force", force))
		goto out;
	if (!(*out = cJSON_PrintUnformatted(ev)))
		goto out;
	*len = strlen(*out);
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static int s_deliver(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg)
{
	struct s_state *st = state;
	struct s_req *q = NULL;
	struct s_peer *p = NULL;
	char why[160];
	int rc = 0;

	if (!st || !m || !done || !m->id || !m->recipient || !m->recipient->id || (!m->json && m->json_len))
		return YJ_EINVAL;
	if (st->draining)
		return YJ_ESHUTDOWN;
	const struct s_recipient *rs = m->settings;
	/* check_recipient refuses it; settings filled by hand must not crash us. */
	if (!rs || !rs->endpoint || !*rs->endpoint) {
		yj_warn("out_peer: %s: recipient %s has no peer.endpoint", m->id, m->recipient->id);
		return YJ_EINVAL;
	}
	const struct yj_config *cfg = st->api->config(st->api->core);
	if (!(q = calloc(1, sizeof(*q))))
		return YJ_ENOMEM;
	q->done = done;
	q->arg = arg;
	q->timeout_ms = rs->timeout_ms > 0 ? rs->timeout_ms : S_DEFAULT_TIMEOUT_MS;
	if (!(q->id = strdup(m->id)) || !(q->address = strdup(rs->endpoint))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	/* Neither gets better by waiting: FATAL, so it shows in the DLQ. */
	if (m->kind != YJ_MESSAGE_NOTIFICATION || !m->feed || !*m->feed) {
		s_report(st, q, YJ_DELIVERY_FATAL, "a peer takes event notifications only, not digests or board packs");
		q = NULL;
		goto out;
	}
	rc = m->json ? s_payload(m, cfg->deployment_force, &q->payload, &q->payload_len) : YJ_EINVAL;
	if (rc == YJ_EINVAL) {
		s_report(st, q, YJ_DELIVERY_FATAL, "the notification holds no event object to send");
		q = NULL;
		rc = 0;
		goto out;
	}
	if (rc || (rc = s_peer_get(st, m->recipient->id, rs, &p)))
		goto out;
	/* What waited for the connection goes first. */
	s_flush_parked(p);
	rc = p->parked ? YJ_EAGAIN : s_send(p->sock, m->feed, q->payload, q->payload_len);
	if (!rc) {
		s_go_live(p, q);
	} else if (rc == YJ_EAGAIN && !p->ever_connected && yj_loop_now_ms() - p->opened_ms < S_CONNECT_GRACE_MS) {
		/* A DEALER made just now is not connected yet: its first requests
		 * wait (a moment, bounded) rather than fail every start-up's first
		 * notification to each peer. */
		if (!(q->feed = strdup(m->feed))) {
			rc = YJ_ENOMEM;
			goto out;
		}
		q->peer = p;
		q->parked = 1;
		s_append(&p->parked, q);
	} else {
		s_send_failed(p, rc, why, sizeof(why));
		s_report(st, q, YJ_DELIVERY_RETRY, why);
	}
	q = NULL;
	rc = 0;
out:
	s_req_free(q);
	return rc;
}

/* Requests past their deadline are retried; a reply that comes for one
 * later finds nothing waiting and is ignored. */
static int s_on_sweep(struct yj_loop *loop, void *arg)
{
	struct s_state *st = arg;
	int64_t now = yj_loop_now_ms();
	(void)loop;
	for (struct s_peer *p = st->peers; p; p = p->next) {
		s_flush_parked(p);
		struct s_req *q = p->live;
		while (q) {
			struct s_req *next = q->next;
			if (q->deadline_ms <= now) {
				char why[96];
				snprintf(why, sizeof(why), "no reply from the peer within %lld ms", (long long)q->timeout_ms);
				yj_notice("out_peer: %s to %s (%s): %s", q->id, p->rcpt, p->endpoint, why);
				s_finish(q, YJ_DELIVERY_RETRY, why);
			}
			q = next;
		}
	}
	/* The 0 ms timer could not be armed: what it owes goes now. */
	if (st->reports && !st->report_timer)
		s_on_report(loop, st);
	return 0;
}

/* --- checks and lifecycle ------------------------------------------------------------ */

/* The outbox's allowlist semantics (route.c yj_route_allowed): is path let through? */
static int s_allowed(const struct yj_strlist *allow, const char *path)
{
	size_t plen = strlen(path);
	for (size_t i = 0; i < allow->n; i++) {
		const char *a = allow->v[i];
		size_t alen = strlen(a);
		if (!strcmp(a, path) || !strcmp(a, "*"))
			return 1;
		if (alen >= 2 && a[alen - 1] == '*' && a[alen - 2] == '.' &&
		    (!strncmp(a, path, alen - 1) || (plen == alen - 2 && !strncmp(a, path, plen))))
			return 1;
		if (alen > plen && !strncmp(a, path, plen) && a[plen] == '.')
			return 1;
	}
	return 0;
}

/* Add path to the comma-separated list in buf. */
static void s_list_add(char *buf, size_t size, const char *path)
{
	size_t len = strlen(buf);
	snprintf(buf + len, size - len, "%s%s", len ? ", " : "", path);
}

static int s_loopback(const char *e)
{
	return !strncmp(e, "ipc://", 6) || !strncmp(e, "tcp://127.", 10) || !strncmp(e, "tcp://localhost:", 16) ||
	       !strncmp(e, "tcp://[::1]:", 12);
}

/* One peer recipient, after the loader read its table (`--check` and every
 * load): an endpoint, keys that make sense together, and an allowlist that
 * gives the peer every field it requires. */
static void s_check_recipient(const void *settings, const struct yj_recipient *r, const struct yj_setting_site *at)
{
	const struct s_recipient *rs = settings;
	const char *id = r && r->id ? r->id : "?";
	char pub[S_Z85_KEY + 1];

	if (!rs || !rs->endpoint || (strncmp(rs->endpoint, "tcp://", 6) && strncmp(rs->endpoint, "ipc://", 6)) ||
	    !rs->endpoint[6]) {
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': transport peer needs peer.endpoint, the other force's YJL1 endpoint (tcp:// or "
			       "ipc://), not '%s'",
			       id, rs && rs->endpoint ? rs->endpoint : "");
		return;
	}
	int has_server = rs->server_key && *rs->server_key, has_secret = rs->key_file && *rs->key_file;
	if (has_server != has_secret)
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': peer.server_key and peer.key_file go together (CURVE), or neither is given "
			       "(plain, loopback or ipc:// only)",
			       id);
	if (has_server && !s_z85_key_ok(rs->server_key))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': peer.server_key must be a CURVE public key, 40 characters of Z85", id);
	if (has_secret && s_public_key(rs, pub))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': the first line of peer.key_file must be a CURVE secret key, 40 characters of Z85",
			       id);
	if ((has_server || has_secret) && !zmq_has("curve"))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': this build's libzmq has no CURVE; peer.server_key cannot be used", id);
	if (!has_server && !has_secret && !s_loopback(rs->endpoint))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': peer.endpoint %s is not loopback: a peer elsewhere needs CURVE "
			       "(peer.server_key and peer.key_file)",
			       id, rs->endpoint);
	/* A digest is no feed message: a peer could never take one. */
	if (r && r->digest_times.n)
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': transport peer takes event notifications only, not daily digests "
			       "(digest_times)",
			       id);
	/* What the peer requires, and this recipient's data sharing agreement would keep back. */
	char missing[1024] = "";
	if (r) {
		for (size_t i = 0; i < sizeof(s_required) / sizeof(s_required[0]); i++) {
			if (!s_allowed(&r->allow, s_required[i]))
				s_list_add(missing, sizeof(missing), s_required[i]);
		}
		for (size_t i = 0; i < sizeof(s_required_with) / sizeof(s_required_with[0]); i++) {
			if (s_allowed(&r->allow, s_required_with[i].when) && !s_allowed(&r->allow, s_required_with[i].need))
				s_list_add(missing, sizeof(missing), s_required_with[i].need);
		}
	}
	if (*missing)
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': the allow list lacks %s, which a peer requires of every message that has it "
			       "(interfaces.md §2): it would refuse them all",
			       id, missing);
}

static int s_init(const struct yj_core_api *api, void **state)
{
	struct s_state *st = NULL;

	if (!api || !state)
		return YJ_EINVAL;
	if (!api->zmq_ctx || !api->loop || !api->config) {
		yj_err("out_peer: the core offers no ZeroMQ context or loop");
		return YJ_EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return YJ_ENOMEM;
	st->api = api;
	*state = st;
	return 0;
}

static int s_start(void *state)
{
	struct s_state *st = state;
	/* Sockets come with each recipient's first message; only the deadlines need a clock. */
	int64_t t = yj_loop_timer(st->api->loop, S_SWEEP_MS, S_SWEEP_MS, s_on_sweep, st);
	if (t < 0)
		return (int)t;
	st->sweep_timer = t;
	return 0;
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	struct s_state *st = state;
	/* A peer whose recipient is gone, or is no longer a peer like this one,
	 * is let go now (what it waits for is retried under the new config);
	 * timeouts come with each message and apply from the next. */
	struct s_peer *p = st->peers;
	while (p) {
		struct s_peer *next = p->next;
		const struct yj_recipient *r = NULL;
		for (size_t i = 0; i < cfg->n_recipients && !r; i++) {
			if (!strcmp(cfg->recipients[i].id, p->rcpt))
				r = &cfg->recipients[i];
		}
		if (!r || strcmp(r->transport, "peer") || !r->output_settings || !s_peer_same(p, r->output_settings)) {
			yj_notice("out_peer: %s: changed or gone in the new config; its connection to %s is closed", p->rcpt,
				  p->endpoint);
			s_peer_drop(st, p, "the peer's settings changed: sent again");
		}
		p = next;
	}
	return 0;
}

static void s_drain(void *state)
{
	struct s_state *st = state;
	/* Requests under way may still be answered in the grace period; new ones
	 * are refused and the core keeps those notifications for the next start. */
	if (st)
		st->draining = 1;
}

static void s_destroy(void **state)
{
	struct s_state *st = state ? *state : NULL;
	if (!st)
		return;
	/* Unanswered requests are abandoned without done: the core frees what it
	 * lent us, and the notifications go again (same id) after the restart,
	 * which the peer answers DUP if it had them. */
	if (st->sweep_timer)
		yj_loop_timer_cancel(st->api->loop, st->sweep_timer);
	if (st->report_timer)
		yj_loop_timer_cancel(st->api->loop, st->report_timer);
	while (st->peers) {
		struct s_peer *p = st->peers;
		st->peers = p->next;
		s_peer_close(p, NULL);
	}
	while (st->reports) {
		struct s_req *q = st->reports;
		s_unlink(&st->reports, q);
		s_req_free(q);
	}
	free(st);
	*state = NULL;
}

const struct yj_adapter yj_adapter_out_peer = {
	.conf = {
		.name = "out_peer",
		.transport = "peer",
		.recipient_settings = s_recipient_table,
		.n_recipient_settings = sizeof(s_recipient_table) / sizeof(s_recipient_table[0]),
		.recipient_settings_size = sizeof(struct s_recipient),
		.check_recipient = s_check_recipient,
	},
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.deliver = s_deliver,
	.digest_parts = 8, /* check_recipient keeps digests away; the cheapest rendering if one ever came */
};
