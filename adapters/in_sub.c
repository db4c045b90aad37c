/* in_sub.c: subscribing to police publishers (interfaces.md §1, "Subscribing
 * to a police publisher (ZMQ_SUB)").
 *
 * One ZMQ_SUB per entry of ingest.publishers, connected to its endpoint and
 * subscribed to the four feed topics. A message is three frames: the feed
 * (the topic), the publisher's decimal sequence number, the JSON payload.
 * Each goes to the core as a request that nobody can be answered for: the
 * reply callback only counts outcomes and logs refusals, which the core has
 * already quarantined. A publisher may send only for its own force (any
 * other is REJECT forbidden, quarantined).
 *
 * Gaps: the last sequence number of each publisher is its position
 * ("in_sub.<name>"), written by the core in the same transaction as the
 * message it stands for and read back at init, so a restart does not count
 * a false gap. A number other than last + 1 counts the messages skipped as
 * a gap (yjlink_feed_gaps_total, a warning); a number at or below the last
 * is the publisher having restarted its sequence: a reset, not a gap.
 * PUB/SUB has no replay, so what was lost stays lost: the count is what an
 * operator takes up with the force.
 *
 * CURVE: a publisher with a server_key is subscribed to as a CURVE client,
 * with the key pair of ingest.curve (in_yjl1's, yj_in_yjl1_keypair): the
 * publisher's key is checked at the handshake, and the publisher knows us
 * by our public key. Without one, only a loopback or ipc:// publisher is
 * subscribed to, unless ingest.insecure = true.
 *
 * Bounded: an explicit receive high-water mark per socket (beyond it libzmq
 * drops, which shows as a gap), and at most ingest.batch_max messages read
 * per wake-up per socket.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adapter.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "prom.h"
#include "secret.h"
#include "zap.h"

#define S_MAX_FRAMES 8          /* frames kept of a malformed message */
#define S_MAX_MSG (1 << 20)     /* a frame larger than this is no event: libzmq drops the connection (seen as a gap) */
#define S_RCVHWM 10000          /* messages queued per publisher before libzmq drops (seen as a gap) */
#define S_NAME_MAX 64           /* a publisher name: a metrics label and part of a position key */
#define S_SEQ_MAX 20            /* digits of a uint64 */

extern const struct yj_adapter yj_adapter_in_sub;
/* in_yjl1.c: ingest.curve's key pair, the one this daemon is known by on ingest. */
int yj_in_yjl1_keypair(const struct yj_core_api *api, const struct yj_config *cfg, char *public_z85, char *secret_z85);

/* The four feed topics (interfaces.md §1): a SUB subscribes to each. */
static const char *const s_feeds[] = { "custody", "arrest", "voluntary_interview", "outcome" };

/* One entry of ingest.publishers, as the config loader fills it. */
struct s_publisher_conf {
	char *name;                     /* [a-z0-9-]: metrics label and position key */
	char *endpoint;                 /* its PUB endpoint, connected to */
	char *force;                    /* the only force its messages may be for */
	char *server_key;               /* CURVE: its public key (Z85); "" = none */
};

/* The adapter's share of the `ingest` section. */
struct s_settings {
	struct yj_grouplist publishers; /* of struct s_publisher_conf */
};

#define S_OFF(f) offsetof(struct s_publisher_conf, f)
static const struct yj_setting s_publisher_table[] = {
	{ YJ_SETTING_STR, "name", S_OFF(name), NULL, 0, 0,
	  "the publisher's name: metrics label and position key (`[a-z0-9-]`, 1-64)" },
	{ YJ_SETTING_STR, "endpoint", S_OFF(endpoint), NULL, 0, 0, "its PUB endpoint, connected to (tcp:// or ipc://)" },
	{ YJ_SETTING_STR, "force", S_OFF(force), NULL, 0, 0,
	  "GSS code of the force it publishes for; a message for any other is REJECT forbidden (quarantined)" },
	{ YJ_SETTING_STR, "server_key", S_OFF(server_key), "", 0, 0,
	  "CURVE: the publisher's public key (Z85): subscribed to as a CURVE client with ingest.curve's key pair; "
	  "empty = no CURVE (loopback or ipc:// only, unless ingest.insecure)" },
};
#undef S_OFF

static const struct yj_setting_items s_publisher_items = {
	s_publisher_table, sizeof(s_publisher_table) / sizeof(s_publisher_table[0]), sizeof(struct s_publisher_conf)
};

static const struct yj_setting s_section_table[] = {
	{ YJ_SETTING_GROUPLIST, "publishers", offsetof(struct s_settings, publishers), &s_publisher_items, 0, 256,
	  "police publishers this daemon subscribes to (ZMQ_SUB), each for one force" },
};

/* One publisher while running. Its strings are copies: a reload frees the
 * config they came from. */
struct s_pub {
	struct s_state *st;             /* back, for the reply callback */
	char *name;                     /* owned */
	char *endpoint;                 /* owned */
	char *force;                    /* owned; what req.forces points at */
	char *server_key;               /* owned: its CURVE public key (Z85), "" = no CURVE */
	char key[8 + S_NAME_MAX];       /* its position: "in_sub.<name>" */
	void *sock;                     /* SUB, owned; out of the loop once drained */
	uint64_t last;                  /* last sequence number received (or committed before a restart) */
	int have_last;                  /* last is known: no gap can be told before the first message */
	uint64_t messages;              /* messages received */
	uint64_t gaps;                  /* messages missed, by the sequence numbers */
	uint64_t resets;                /* sequence restarts of the publisher */
	uint64_t results[4];            /* replies, by enum yj_status */
};

struct s_state {
	const struct yj_core_api *api;  /* borrowed */
	struct s_pub *pubs;             /* owned, in the config's order */
	size_t n_pubs;                  /* publishers in pubs (0: none configured, metrics still shown) */
	size_t drain_max;               /* messages read per wake-up per socket */
};

/* s as printable ASCII into buf, for a log line: a source_id is the
 * sender's text, and must not break the line or the terminal. */
static const char *s_printable(char *buf, size_t size, const char *s, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[n] = '\0';
	return buf;
}

static int s_name_ok(const char *s)
{
	size_t len = strlen(s);
	if (len < 1 || len > S_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	}
	return 1;
}

/* A GSS code of a police force area: E23 or W15 and six digits. Whether it
 * is in forces.csv the core says of every message (REJECT value). */
static int s_force_ok(const char *s)
{
	if (strlen(s) != 9 || (strncmp(s, "E23", 3) && strncmp(s, "W15", 3)))
		return 0;
	for (size_t i = 3; i < 9; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return 1;
}

/* A decimal uint64 of 1 to 20 digits and nothing else. */
static int s_parse_seq(const void *data, size_t len, uint64_t *out)
{
	const unsigned char *d = data;
	uint64_t v = 0;
	if (len < 1 || len > S_SEQ_MAX)
		return YJ_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (d[i] < '0' || d[i] > '9')
			return YJ_EINVAL;
		unsigned digit = d[i] - '0';
		if (v > (UINT64_MAX - digit) / 10)
			return YJ_ERANGE;
		v = v * 10 + digit;
	}
	*out = v;
	return 0;
}

static void s_check(const void *settings, const struct yj_setting_site *at)
{
	const struct s_settings *s = settings;
	const struct s_publisher_conf *p = s->publishers.items;

	for (size_t i = 0; i < s->publishers.n; i++) {
		int line = s->publishers.lines[i];
		char who[S_NAME_MAX + 32];
		if (s_name_ok(p[i].name)) {
			snprintf(who, sizeof(who), "publisher '%s'", p[i].name);
		} else {
			snprintf(who, sizeof(who), "'ingest.publishers' item %zu", i + 1);
			yj_diag_report(at->diag, at->file, line, "%s: name must be 1-%d of [a-z0-9-], not '%s'", who, S_NAME_MAX,
				       p[i].name);
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(p[i].name, p[j].name))
				yj_diag_report(at->diag, at->file, line, "%s is declared twice (first at line %d)", who,
					       s->publishers.lines[j]);
		}
		if (strncmp(p[i].endpoint, "tcp://", 6) && strncmp(p[i].endpoint, "ipc://", 6))
			yj_diag_report(at->diag, at->file, line, "%s: endpoint must be tcp:// or ipc://, not '%s'", who,
				       p[i].endpoint);
		if (!s_force_ok(p[i].force))
			yj_diag_report(at->diag, at->file, line,
				       "%s: force must be the GSS code of a force area (E23xxxxxx, W15xxxxxx), not '%s'", who,
				       p[i].force);
		if (*p[i].server_key && !yj_zap_key_ok(p[i].server_key))
			yj_diag_report(at->diag, at->file, line,
				       "%s: server_key must be a CURVE public key (40 characters of Z85)", who);
	}
}

/* The core's answer to one message: nobody to send it to. Counted, and a
 * refusal or a loss said in the log (codes and source ids only). */
static void s_on_reply(void *arg, const struct yj_reply *r)
{
	struct s_pub *pub = arg;
	char sid[130];

	pub->results[r->status]++;
	if (r->status == YJ_STATUS_REJECT)
		yj_notice("in_sub: publisher %s: REJECT %s source_id=%s: quarantined (yjlinkctl quarantine list)", pub->name,
			  r->error ? r->error : "?", s_printable(sid, sizeof(sid), r->source_id, r->source_id_len));
	else if (r->status == YJ_STATUS_RETRY)
		yj_warn("in_sub: publisher %s: message not stored (%s) and cannot be asked for again: source_id=%s",
			pub->name, r->reason ? r->reason : "retry", s_printable(sid, sizeof(sid), r->source_id, r->source_id_len));
}

/* What the sequence number seq says of the messages before it. */
static void s_sequence(struct s_pub *pub, uint64_t seq)
{
	if (pub->have_last && seq > pub->last && seq - pub->last > 1) {
		uint64_t missed = seq - pub->last - 1;
		pub->gaps += missed;
		yj_warn("in_sub: publisher %s: gap of %llu message(s): got %llu after %llu", pub->name,
			(unsigned long long)missed, (unsigned long long)seq, (unsigned long long)pub->last);
	} else if (pub->have_last && seq <= pub->last) {
		pub->resets++;
		yj_notice("in_sub: publisher %s: sequence reset (got %llu after %llu): the publisher restarted", pub->name,
			  (unsigned long long)seq, (unsigned long long)pub->last);
	}
	pub->last = seq;
	pub->have_last = 1;
}

/* Read one whole message and submit it. Returns 1 when one was read, 0 when
 * none was waiting, <0 on error. */
static int s_read_one(struct s_state *st, struct s_pub *pub)
{
	zmq_msg_t f[S_MAX_FRAMES];
	unsigned n = 0, total = 0;
	int more = 1, rc = 0;
	char *joined = NULL;

	while (more) {
		zmq_msg_t *m = &f[n < S_MAX_FRAMES ? n : S_MAX_FRAMES - 1];
		if (n >= S_MAX_FRAMES)
			zmq_msg_close(m); /* keep only the first frames of an absurd message */
		zmq_msg_init(m);
		if (zmq_msg_recv(m, pub->sock, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(m);
			if (total == 0 && (zmq_errno() == EAGAIN || zmq_errno() == EINTR))
				return 0;
			rc = YJ_EIO;
			goto out;
		}
		more = zmq_msg_more(m);
		total++;
		if (n < S_MAX_FRAMES)
			n++;
	}
	pub->messages++;

	const char *const forces[] = { pub->force };
	char pos[S_SEQ_MAX + 1];
	uint64_t seq = 0;
	struct yj_request req = {
		.origin = "sub",
		.feed = zmq_msg_data(&f[0]),
		.feed_len = zmq_msg_size(&f[0]),
		.content_type = "application/json",
		.content_type_len = strlen("application/json"),
		.forces = forces,
		.n_forces = 1,
	};
	if (total == 3 && s_parse_seq(zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), &seq) == 0) {
		s_sequence(pub, seq);
		req.payload = zmq_msg_data(&f[2]);
		req.payload_len = zmq_msg_size(&f[2]);
		/* A YJL1 request's four frames: what the quarantine shows of a well-formed one. */
		req.frames = 4;
		req.position_key = pub->key;
		req.position = pos;
		req.position_len = (size_t)snprintf(pos, sizeof(pos), "%llu", (unsigned long long)seq);
	} else {
		/* No sequence to trust: no gap told, no position moved. Every frame kept for the operator. */
		req.protocol_error = total != 3 ? "a publisher message has exactly three frames: feed, sequence number, payload"
						: "frame 1 of a publisher message must be its decimal sequence number";
		req.frames = total;
		size_t len = 0;
		for (unsigned i = 0; i < n; i++)
			len += zmq_msg_size(&f[i]);
		if (!(joined = malloc(len ? len : 1))) {
			rc = YJ_ENOMEM;
			goto out;
		}
		len = 0;
		for (unsigned i = 0; i < n; i++) {
			memcpy(joined + len, zmq_msg_data(&f[i]), zmq_msg_size(&f[i]));
			len += zmq_msg_size(&f[i]);
		}
		req.payload = joined;
		req.payload_len = len;
	}
	/* submit answers through s_on_reply whatever it returns. */
	rc = st->api->submit(st->api->core, &req, s_on_reply, pub);
	rc = rc < 0 && rc != YJ_ENOMEM ? rc : 1;
out:
	free(joined);
	for (unsigned i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_pub *pub = arg;
	(void)sock;
	(void)fd;
	(void)revents;
	for (size_t i = 0; i < pub->st->drain_max; i++) {
		int rc = s_read_one(pub->st, pub);
		if (rc < 0) {
			yj_err("in_sub: publisher %s: receive failed: %s", pub->name, zmq_strerror(zmq_errno()));
			return 0;
		}
		if (rc == 0)
			return 0;
	}
	/* More may be waiting: commit this batch, then come straight back. */
	yj_loop_wake(loop);
	return 0;
}

/* The last sequence number committed for pub, so that a restart tells no false gap. */
static int s_read_position(struct s_state *st, struct s_pub *pub)
{
	char buf[256 + 1];
	size_t len = 0;
	int rc = st->api->position_get(st->api->core, pub->key, buf, sizeof(buf) - 1, &len);
	if (rc == YJ_ENOENT)
		return 0;
	if (rc)
		return rc;
	if (s_parse_seq(buf, len, &pub->last) == 0) {
		pub->have_last = 1;
	} else {
		/* Not ours to fail on: the next message starts the count afresh. */
		yj_warn("in_sub: publisher %s: stored position is not a sequence number; ignored", pub->name);
	}
	return 0;
}

static void s_free_pubs(struct s_state *st)
{
	for (size_t i = 0; i < st->n_pubs; i++) {
		free(st->pubs[i].name);
		free(st->pubs[i].endpoint);
		free(st->pubs[i].force);
		free(st->pubs[i].server_key);
	}
	free(st->pubs);
	st->pubs = NULL;
	st->n_pubs = 0;
}

static int s_loopback(const char *e)
{
	return !strncmp(e, "ipc://", 6) || !strncmp(e, "tcp://127.", 10) || !strncmp(e, "tcp://localhost:", 16) ||
	       !strncmp(e, "tcp://[::1]:", 12);
}

static int s_init(const struct yj_core_api *api, void **state)
{
	const struct yj_config *cfg = api->config(api->core);
	const struct s_settings *s = api->settings(cfg, &yj_adapter_in_sub);
	const struct s_publisher_conf *p = s->publishers.items;
	struct s_state *st = calloc(1, sizeof(*st));
	int rc = 0;

	if (!st)
		return YJ_ENOMEM;
	st->api = api;
	st->drain_max = (size_t)cfg->ingest_batch_max;
	/* Started with no publishers too: yjlink_feed_gaps_total is always there to alert on. */
	if (s->publishers.n && !(st->pubs = calloc(s->publishers.n, sizeof(*st->pubs)))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->publishers.n; i++) {
		struct s_pub *pub = &st->pubs[st->n_pubs++];
		pub->st = st;
		pub->name = strdup(p[i].name);
		pub->endpoint = strdup(p[i].endpoint);
		pub->force = strdup(p[i].force);
		pub->server_key = strdup(p[i].server_key);
		if (!pub->name || !pub->endpoint || !pub->force || !pub->server_key) {
			rc = YJ_ENOMEM;
			goto out;
		}
		snprintf(pub->key, sizeof(pub->key), "in_sub.%s", pub->name);
		char pk[41], sk[41];
		if (*pub->server_key && (rc = yj_in_yjl1_keypair(api, cfg, pk, sk))) {
			yj_err("in_sub: publisher %s: server_key needs this daemon's key pair: set ingest.curve = { "
			       "secret_key_file = \"...\"; }",
			       pub->name);
			rc = YJ_ECONFIG;
			goto out;
		}
		yj_secret_wipe(sk, sizeof(sk));
		/* Anything but loopback or ipc:// is authenticated with CURVE (interfaces.md §1). */
		if (!*pub->server_key && !s_loopback(pub->endpoint) && !cfg->ingest_insecure) {
			yj_err("in_sub: publisher %s: endpoint %s is not loopback: give its server_key (CURVE), or say "
			       "ingest.insecure = true to subscribe unauthenticated",
			       pub->name, pub->endpoint);
			rc = YJ_ECONFIG;
			goto out;
		}
		if ((rc = s_read_position(st, pub))) {
			yj_err("in_sub: publisher %s: cannot read its position: %s", pub->name, yj_strerror(rc));
			goto out;
		}
	}
out:
	if (rc) {
		s_free_pubs(st);
		free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static int s_start(void *state)
{
	struct s_state *st = state;
	int hwm = S_RCVHWM, linger = 0, hb_ivl = 10000, hb_ttl = 30000, reconnect_max = 10000;
	int64_t maxmsg = S_MAX_MSG;

	for (size_t i = 0; i < st->n_pubs; i++) {
		struct s_pub *pub = &st->pubs[i];
		pub->sock = zmq_socket(st->api->zmq_ctx, ZMQ_SUB);
		if (!pub->sock)
			return YJ_EIO;
		zmq_setsockopt(pub->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
		zmq_setsockopt(pub->sock, ZMQ_LINGER, &linger, sizeof(linger));
		zmq_setsockopt(pub->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
		/* A publisher gone silent behind a dead TCP path is noticed and reconnected. */
		zmq_setsockopt(pub->sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl));
		zmq_setsockopt(pub->sock, ZMQ_HEARTBEAT_TTL, &hb_ttl, sizeof(hb_ttl));
		zmq_setsockopt(pub->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_ttl, sizeof(hb_ttl));
		zmq_setsockopt(pub->sock, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof(reconnect_max));
		for (size_t f = 0; f < sizeof(s_feeds) / sizeof(s_feeds[0]); f++)
			zmq_setsockopt(pub->sock, ZMQ_SUBSCRIBE, s_feeds[f], strlen(s_feeds[f]));
		if (*pub->server_key) {
			char pk[41], sk[41];
			int rc = yj_in_yjl1_keypair(st->api, st->api->config(st->api->core), pk, sk);
			if (!rc && (zmq_setsockopt(pub->sock, ZMQ_CURVE_SERVERKEY, pub->server_key, 40) ||
				    zmq_setsockopt(pub->sock, ZMQ_CURVE_PUBLICKEY, pk, 40) ||
				    zmq_setsockopt(pub->sock, ZMQ_CURVE_SECRETKEY, sk, 40)))
				rc = YJ_EIO;
			yj_secret_wipe(sk, sizeof(sk));
			if (rc) {
				yj_err("in_sub: publisher %s: cannot set up CURVE: %s", pub->name, yj_strerror(rc));
				return rc;
			}
		}
		if (zmq_connect(pub->sock, pub->endpoint) != 0) {
			yj_err("in_sub: publisher %s: cannot connect to %s: %s", pub->name, pub->endpoint,
			       zmq_strerror(zmq_errno()));
			return YJ_EIO;
		}
		int rc = yj_loop_add(st->api->loop, pub->sock, -1, ZMQ_POLLIN, s_on_readable, pub);
		if (rc)
			return rc;
		if (pub->have_last)
			yj_notice("in_sub: subscribed to publisher %s at %s (force %s%s), after sequence number %llu", pub->name,
				  pub->endpoint, pub->force, *pub->server_key ? ", CURVE" : "", (unsigned long long)pub->last);
		else
			yj_notice("in_sub: subscribed to publisher %s at %s (force %s%s)", pub->name, pub->endpoint, pub->force,
				  *pub->server_key ? ", CURVE" : "");
	}
	return 0;
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	struct s_state *st = state;
	const struct s_settings *s = st->api->settings(cfg, &yj_adapter_in_sub);
	const struct s_publisher_conf *p = s->publishers.items;
	int same = s->publishers.n == st->n_pubs;

	st->drain_max = (size_t)cfg->ingest_batch_max;
	for (size_t i = 0; same && i < st->n_pubs; i++)
		same = !strcmp(p[i].name, st->pubs[i].name) && !strcmp(p[i].endpoint, st->pubs[i].endpoint) &&
		       !strcmp(p[i].force, st->pubs[i].force) && !strcmp(p[i].server_key, st->pubs[i].server_key);
	if (!same)
		yj_warn("in_sub: ingest.publishers changes only on restart; still subscribed to the %zu publisher(s) started with",
			st->n_pubs);
	return 0;
}

/* Stop reading: the core would only answer RETRY now, which loses the
 * message as surely as leaving it unread. */
static void s_drain(void *state)
{
	struct s_state *st = state;
	for (size_t i = 0; i < st->n_pubs; i++) {
		if (st->pubs[i].sock)
			yj_loop_remove(st->api->loop, st->pubs[i].sock, -1);
	}
}

static void s_metrics(void *state, struct yj_prom *p)
{
	static const char *const results[] = { "ok", "dup", "reject", "retry" };
	struct s_state *st = state;

	yj_prom_family(p, "yjlink_feed_gaps_total", "counter",
		       "Messages missed in a publisher's sequence numbers, by publisher, since start");
	for (size_t i = 0; i < st->n_pubs; i++)
		yj_prom_sample_l(p, "yjlink_feed_gaps_total", (double)st->pubs[i].gaps, "publisher", st->pubs[i].name, NULL);
	yj_prom_family(p, "yjlink_feed_messages_total", "counter", "Messages received from each publisher since start");
	for (size_t i = 0; i < st->n_pubs; i++)
		yj_prom_sample_l(p, "yjlink_feed_messages_total", (double)st->pubs[i].messages, "publisher", st->pubs[i].name,
				 NULL);
	yj_prom_family(p, "yjlink_feed_resets_total", "counter", "Sequence restarts of each publisher since start");
	for (size_t i = 0; i < st->n_pubs; i++)
		yj_prom_sample_l(p, "yjlink_feed_resets_total", (double)st->pubs[i].resets, "publisher", st->pubs[i].name, NULL);
	yj_prom_family(p, "yjlink_feed_results_total", "counter",
		       "What became of each publisher's messages (ok, dup, reject: quarantined, retry: lost)");
	for (size_t i = 0; i < st->n_pubs; i++) {
		for (size_t r = 0; r < 4; r++)
			yj_prom_sample_l(p, "yjlink_feed_results_total", (double)st->pubs[i].results[r], "publisher",
					 st->pubs[i].name, "result", results[r], NULL);
	}
}

static void s_destroy(void **state)
{
	struct s_state *st = state ? *state : NULL;
	if (!st)
		return;
	for (size_t i = 0; i < st->n_pubs; i++) {
		if (st->pubs[i].sock) {
			yj_loop_remove(st->api->loop, st->pubs[i].sock, -1);
			zmq_close(st->pubs[i].sock);
		}
	}
	s_free_pubs(st);
	free(st);
	*state = NULL;
}

const struct yj_adapter yj_adapter_in_sub = {
	.conf = {
		.name = "in_sub",
		.section = "ingest",
		.settings = s_section_table,
		.n_settings = sizeof(s_section_table) / sizeof(s_section_table[0]),
		.settings_size = sizeof(struct s_settings),
		.check = s_check,
	},
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.metrics = s_metrics,
};
