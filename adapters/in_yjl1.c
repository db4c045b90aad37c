/* in_yjl1.c: the YJL1 feed endpoint (interfaces.md §1).
 *
 * A ZMQ_ROUTER bound at ingest.endpoint. Each request is four frames from a
 * DEALER (the ROUTER prepends the peer's routing id); every request gets
 * exactly one four-frame reply, also when its framing is wrong, which the
 * core turns into REJECT protocol. Replies go out after the group commit, in
 * the order the requests arrived.
 *
 * CURVE (interfaces.md §1): with ingest.curve the socket is a CURVE server
 * in ZAP domain "yjl1", and only the keys of ingest.clients get in (the
 * core's ZAP handler, zap.h, answers for them, with the client's name as the
 * user id). Each message carries that name as its "User-Id" property: it is
 * the request's sender (stored with the event) and picks the forces the
 * client may send for (any other is REJECT forbidden). A reload replaces the
 * keys for the next handshakes and drops no connection.
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
#include "zap.h"
#include "zguard.h"

#define S_MAX_FRAMES 8          /* frames kept of a malformed request */
/* A frame up to 16 times the payload limit still gets its REJECT too_large;
 * a larger one costs the peer its connection, not our memory (libzmq
 * allocates a frame whole when its header arrives). */
#define S_FRAME_FACTOR 16
/* Per peer: requests libzmq may queue for us (TCP pushes back beyond), and
 * replies it may queue for a peer that does not read them (the guard
 * closes such a peer first; a reply that cannot be queued is dropped: the
 * client's resend gets DUP). The requests queued while a commit syncs are
 * the next group commit: at 256 a pipelining client's batches stayed near
 * 600 and its rate near 82,000/s; at 1,024, 105,000-109,000/s (4,096 no
 * more; docs/performance.md, change 20). */
#define S_RCVHWM 1024
#define S_SNDHWM 100000         /* far above any client's window: the guard's deaf_bytes binds first */
#define S_DEAF (1u << 20)        /* reply bytes a client leaves unread in libzmq (some 12,000 replies) */
/* Reply bytes a client leaves unread in libzmq from which its requests are
 * answered RETRY overloaded, unprocessed and unstored (the spec's RETRY
 * reason): half of S_DEAF. Only what the kernel could not take counts, and
 * a client that reads has its own libzmq queue and both kernels' buffers
 * (hundreds of KiB at least) between its window and this mark, so a lone
 * client with thousands of requests in flight never reaches it; one that
 * stops reading does a few thousand replies after the kernels' buffers are
 * full, and the other half holds every 27-byte RETRY it gets meanwhile
 * (some 19,000) before it is closed, so one that starts reading again keeps
 * its connection and its answers. */
#define S_SHARE (S_DEAF / 2)
#define S_PRESSURE (24u << 20)   /* private memory from which stalled peers go (the bar is 64 MiB) */
/* ... if they hold more than any one message being received could */
#define S_PRESSURE_HELD(max_message) (2 * (uint64_t)(max_message) + (64u << 10))

extern const struct yj_adapter yj_adapter_in_yjl1;

#define S_DOMAIN "yjl1"         /* ZAP domain of this socket's CURVE handshakes */
#define S_CLIENT_MAX 64         /* a client name: the sender stored with each event */

/* One entry of ingest.clients, as the config loader fills it. */
struct s_client_conf {
	char *name;                     /* user id of its connections: the sender stored with its events */
	char *public_key;               /* Z85 */
	struct yj_strlist forces;       /* what it may send for */
};

/* The adapter's share of the `ingest` section. */
struct s_settings {
	char *secret_key;               /* ingest.curve.secret_key_file, read: Z85; "" = no CURVE */
	struct yj_grouplist clients;    /* of struct s_client_conf */
};

#define S_OFF(f) offsetof(struct s_client_conf, f)
static const struct yj_setting s_client_table[] = {
	{ YJ_SETTING_STR, "name", S_OFF(name), NULL, 0, 0,
	  "the client's name: the sender recorded with each event it sends (`[a-z0-9-]`, 1-64)" },
	{ YJ_SETTING_STR, "public_key", S_OFF(public_key), NULL, 0, 0,
	  "its CURVE public key (Z85, 40 characters, `yjlinkctl keygen`)" },
	{ YJ_SETTING_STRLIST, "forces", S_OFF(forces), NULL, 0, 0,
	  "force codes it may send for; any other is REJECT forbidden" },
};
#undef S_OFF

static const struct yj_setting_items s_client_items = {
	s_client_table, sizeof(s_client_table) / sizeof(s_client_table[0]), sizeof(struct s_client_conf)
};

static const struct yj_setting s_section_table[] = {
	{ YJ_SETTING_SECRET_FILE, "curve.secret_key_file", offsetof(struct s_settings, secret_key), "", 0, 0,
	  "CURVE: this daemon's secret key (relative to the config file, mode 0600, `yjlinkctl keygen`); "
	  "empty = no CURVE (loopback or ipc:// only)" },
	{ YJ_SETTING_GROUPLIST, "clients", offsetof(struct s_settings, clients), &s_client_items, 0, 1024,
	  "with curve: the feed clients let in, each with its key and forces; any other key is refused at the handshake" },
};

static int s_name_ok(const char *s)
{
	size_t len = strlen(s);
	if (len < 1 || len > S_CLIENT_MAX)
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

static void s_check(const void *settings, const struct yj_setting_site *at)
{
	const struct s_settings *s = settings;
	const struct s_client_conf *c = s->clients.items;

	if (*s->secret_key && !yj_zap_key_ok(s->secret_key))
		yj_diag_report(at->diag, at->file, at->line,
			       "'ingest.curve.secret_key_file': the file does not hold a CURVE secret key (40 characters of Z85, "
			       "as yjlinkctl keygen writes)");
	if (!*s->secret_key && s->clients.n)
		yj_diag_report(at->diag, at->file, s->clients.lines[0],
			       "'ingest.clients' needs ingest.curve = { secret_key_file = \"...\"; }: without CURVE no client has a key");
	for (size_t i = 0; i < s->clients.n; i++) {
		int line = s->clients.lines[i];
		if (!s_name_ok(c[i].name))
			yj_diag_report(at->diag, at->file, line, "'ingest.clients' item %zu: name must be 1-%d of [a-z0-9-], not '%s'",
				       i + 1, S_CLIENT_MAX, c[i].name);
		if (!yj_zap_key_ok(c[i].public_key))
			yj_diag_report(at->diag, at->file, line,
				       "client '%s': public_key must be a CURVE public key (40 characters of Z85)", c[i].name);
		if (!c[i].forces.n)
			yj_diag_report(at->diag, at->file, line, "client '%s': forces must name at least one force", c[i].name);
		for (size_t f = 0; f < c[i].forces.n; f++) {
			if (!s_force_ok(c[i].forces.v[f]))
				yj_diag_report(at->diag, at->file, line,
					       "client '%s': forces: '%s' is not the GSS code of a force area (E23xxxxxx, W15xxxxxx)",
					       c[i].name, c[i].forces.v[f]);
		}
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(c[i].name, c[j].name))
				yj_diag_report(at->diag, at->file, line, "client '%s' is declared twice (first at line %d)",
					       c[i].name, s->clients.lines[j]);
			else if (!strcmp(c[i].public_key, c[j].public_key))
				yj_diag_report(at->diag, at->file, line, "client '%s' has the key of client '%s' (line %d)",
					       c[i].name, c[j].name, s->clients.lines[j]);
		}
	}
}

/* ingest.endpoint is authenticated when CURVE is configured (settings.h). */
static int s_authenticates(const void *settings)
{
	return *((const struct s_settings *)settings)->secret_key != '\0';
}

/* This daemon's CURVE key pair for ingest (ingest.curve), as Z85 into
 * public_z85 and secret_z85 (41 bytes each): for in_sub, a CURVE client of
 * the publishers with the same pair (interfaces.md §1). YJ_ENOENT without
 * ingest.curve. The caller wipes secret_z85. */
int yj_in_yjl1_keypair(const struct yj_core_api *api, const struct yj_config *cfg, char *public_z85, char *secret_z85)
{
	const struct s_settings *s = api->settings(cfg, &yj_adapter_in_yjl1);
	if (!s || !*s->secret_key)
		return YJ_ENOENT;
	if (strlen(s->secret_key) != 40 || zmq_curve_public(public_z85, s->secret_key) != 0)
		return YJ_EINVAL;
	memcpy(secret_z85, s->secret_key, 41);
	return 0;
}

struct s_state {
	const struct yj_core_api *api;  /* borrowed */
	void *sock;                     /* ROUTER, owned */
	char *endpoint;                 /* owned */
	size_t drain_max;               /* messages read per wake-up */
	size_t max_message_bytes;       /* ingest.max_message_bytes */
	uint64_t unroutable;            /* replies whose peer had gone, or that it did not read */
	struct yj_zguard *guard;        /* owned: connection and buffer bounds */
	int curve;                      /* a CURVE server (ingest.curve at start: changes only on restart) */
};

/* Register the keys of cfg's ingest.clients with the ZAP handler: from the
 * next handshake on, only they get in. */
static int s_set_keys(struct s_state *st, const struct yj_config *cfg)
{
	const struct s_settings *s = st->api->settings(cfg, &yj_adapter_in_yjl1);
	const struct s_client_conf *c = s->clients.items;
	const char **names = NULL, **keys = NULL;
	int rc = 0;

	if (s->clients.n && (!(names = calloc(s->clients.n, sizeof(*names))) || !(keys = calloc(s->clients.n, sizeof(*keys))))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->clients.n; i++) {
		names[i] = c[i].name;
		keys[i] = c[i].public_key;
	}
	rc = yj_zap_set_keys(st->api->zap, S_DOMAIN, names, keys, s->clients.n);
out:
	free(names);
	free(keys);
	return rc;
}

/* The forces the client named by a CURVE user id may send for, from the
 * config in force. A name no longer listed (removed by a reload while its
 * connection stayed up) may send for none: the one empty code matches no
 * force, where an empty list would mean ingest.forces. */
static const char *const s_no_force[] = { "" };
static void s_client_forces(const struct s_state *st, const char *name, const char *const **forces, size_t *n)
{
	const struct yj_config *cfg = st->api->config(st->api->core);
	const struct s_settings *s = st->api->settings(cfg, &yj_adapter_in_yjl1);
	const struct s_client_conf *c = s->clients.items;
	for (size_t i = 0; name && i < s->clients.n; i++) {
		if (!strcmp(c[i].name, name) && c[i].forces.n) {
			*forces = (const char *const *)c[i].forces.v;
			*n = c[i].forces.n;
			return;
		}
	}
	*forces = s_no_force;
	*n = 1;
}

/* The routing id a reply goes back to; freed once the reply is sent. */
struct s_peer {
	struct s_state *st;
	int fd;                         /* ZMQ_SRCFD of its request, for the guard */
	size_t len;
	uint8_t id[];
};

static void s_send_reply(void *arg, const struct yj_reply *r)
{
	static const char *const names[] = { "OK", "DUP", "REJECT", "RETRY" };
	struct s_peer *peer = arg;
	struct s_state *st = peer->st;
	const char *status = names[r->status];
	int rc = zmq_send(st->sock, peer->id, peer->len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (rc >= 0)
		rc = zmq_send(st->sock, "YJL1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (rc >= 0)
		rc = zmq_send(st->sock, status, strlen(status), ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (rc >= 0)
		rc = zmq_send(st->sock, r->source_id, r->source_id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (rc >= 0)
		rc = zmq_send(st->sock, r->detail, r->detail_len, ZMQ_DONTWAIT);
	if (rc >= 0)
		yj_zguard_sent(st->guard, peer->fd, 4 + strlen(status) + r->source_id_len + r->detail_len, 4);
	if (rc < 0) {
		/* The peer disconnected, or stopped reading its replies: an OK
		 * it never saw is harmless, its resend gets DUP. */
		st->unroutable++;
		yj_debug("in_yjl1: reply not delivered: %s", zmq_strerror(zmq_errno()));
	}
	free(peer);
}

/* The request's parts from its frames f (n kept of frames received, f[0]
 * the routing id) into req; a malformed request's frames joined into
 * *joined (the caller frees it) for the quarantine. */
/* The request of frames f[1..n) (frames in all), each frame's data and size
 * read once by the caller (a libzmq call each, ten per request before). */
static int s_take_frames(void *const *data, const size_t *size, unsigned n, unsigned frames, struct yj_request *req,
			 char **joined)
{
	if (frames == 4 && size[1] == 4 && memcmp(data[1], "YJL1", 4) == 0) {
		req->feed = data[2];
		req->feed_len = size[2];
		req->content_type = data[3];
		req->content_type_len = size[3];
		req->payload = data[4];
		req->payload_len = size[4];
		return 0;
	}
	req->protocol_error = frames != 4 ? "a request has exactly four frames" : "frame 0 must be YJL1";
	/* Keep every frame for the operator, joined. */
	size_t len = 0;
	for (unsigned i = 1; i < n; i++)
		len += size[i];
	if (!(*joined = malloc(len ? len : 1)))
		return YJ_ENOMEM;
	len = 0;
	for (unsigned i = 1; i < n; i++) {
		memcpy(*joined + len, data[i], size[i]);
		len += size[i];
	}
	req->payload = *joined;
	req->payload_len = len;
	if (frames >= 2) {
		req->feed = data[2];
		req->feed_len = size[2];
	}
	if (frames >= 3) {
		req->content_type = data[3];
		req->content_type_len = size[3];
	}
	return 0;
}

/* Read one whole message (routing id + frames) and submit it. Returns 1 when
 * a message was read, 0 when none was waiting, <0 on error. */
static int s_read_one(struct s_state *st)
{
	zmq_msg_t f[S_MAX_FRAMES];
	void *data[S_MAX_FRAMES];
	size_t size[S_MAX_FRAMES];
	unsigned n = 0, total = 0;
	size_t bytes = 0;
	int more = 1, rc = 0, fd = -1;
	struct s_peer *peer = NULL;

	while (more) {
		zmq_msg_t *m = &f[n < S_MAX_FRAMES ? n : S_MAX_FRAMES - 1];
		if (n >= S_MAX_FRAMES)
			zmq_msg_close(m);  /* keep only the first frames of an absurd request */
		zmq_msg_init(m);
		if (zmq_msg_recv(m, st->sock, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(m);
			if (total == 0 && zmq_errno() == EAGAIN)
				return 0;
			if (zmq_errno() == EINTR && total == 0)
				return 0;
			rc = YJ_EIO;
			goto out;
		}
		more = zmq_msg_more(m);
		/* The routing id is made up by the ROUTER: it has no descriptor. */
		if (total == 1)
			fd = zmq_msg_get(m, ZMQ_SRCFD);
		size_t sz = zmq_msg_size(m);
		if (total > 0)
			bytes += sz;
		total++;
		/* m is f[n], or past the cap the last slot again (its frame now) */
		data[m - f] = zmq_msg_data(m);
		size[m - f] = sz;
		if (n < S_MAX_FRAMES)
			n++;
	}
	/* f[0] is the routing id; the request is f[1..]. */
	unsigned frames = total - 1;
	yj_zguard_consumed(st->guard, fd, bytes, frames);
	peer = malloc(sizeof(*peer) + size[0]);
	if (!peer) {
		rc = YJ_ENOMEM;
		goto out;
	}
	peer->st = st;
	peer->fd = fd;
	peer->len = size[0];
	memcpy(peer->id, data[0], peer->len);

	struct yj_request req = { .origin = "yjl1", .frames = frames };
	char *joined = NULL;
	/* A client that does not read its replies gets the cheapest answer,
	 * before any work is spent on what it sent: nothing of it is looked at. */
	req.overloaded = yj_zguard_over_share(st->guard, fd);
	if (!req.overloaded) {
		/* The connection's properties are on the frames it sent: the
		 * routing id the ROUTER made up carries none. */
		/* Only the ZAP handler names a sender, and only CURVE asks it (a
		 * property lookup per message for nothing otherwise). */
		const char *uid = st->curve && frames >= 1 ? zmq_msg_gets(&f[1], "User-Id") : NULL;
		req.sender = uid && *uid ? uid : NULL;
		if (st->curve)
			s_client_forces(st, req.sender, &req.forces, &req.n_forces);
		if ((rc = s_take_frames(data, size, n, frames, &req, &joined))) {
			free(peer);
			goto out;
		}
	}
	/* submit answers through s_send_reply, which frees peer, whatever it returns. */
	rc = st->api->submit(st->api->core, &req, s_send_reply, peer);
	free(joined);
	rc = rc < 0 && rc != YJ_ENOMEM ? rc : 1;
out:
	for (unsigned i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_state *st = arg;
	(void)sock;
	(void)fd;
	(void)revents;
	for (size_t i = 0; i < st->drain_max; i++) {
		int rc = s_read_one(st);
		if (rc < 0) {
			yj_err("in_yjl1: receive failed: %s", zmq_strerror(zmq_errno()));
			return 0;
		}
		if (rc == 0) {
			yj_zguard_drained(st->guard);
			return 0;
		}
	}
	/* More may be waiting: commit this batch, then come straight back. */
	yj_loop_wake(loop);
	return 0;
}

static int s_init(const struct yj_core_api *api, void **state)
{
	const struct yj_config *cfg = api->config(api->core);
	struct s_state *st = calloc(1, sizeof(*st));
	if (!st)
		return YJ_ENOMEM;
	st->api = api;
	st->endpoint = strdup(cfg->ingest_endpoint);
	st->drain_max = (size_t)cfg->ingest_batch_max;
	st->max_message_bytes = (size_t)cfg->ingest_max_message_bytes;
	const struct s_settings *s = api->settings(cfg, &yj_adapter_in_yjl1);
	st->curve = s && *s->secret_key;
	if (!st->endpoint) {
		free(st);
		return YJ_ENOMEM;
	}
	*state = st;
	return 0;
}

/* Make the socket a CURVE server in domain "yjl1", its keys registered
 * with the ZAP handler first: bound after this, no key gets in unchecked. */
static int s_curve_server(struct s_state *st)
{
	const struct yj_config *cfg = st->api->config(st->api->core);
	const struct s_settings *s = st->api->settings(cfg, &yj_adapter_in_yjl1);
	int one = 1, rc;

	if (!st->api->zap) {
		yj_err("in_yjl1: CURVE needs the core's ZAP handler, and there is none");
		return YJ_EINVAL;
	}
	if ((rc = s_set_keys(st, cfg))) {
		yj_err("in_yjl1: cannot register the keys of ingest.clients: %s", yj_strerror(rc));
		return rc;
	}
	if (zmq_setsockopt(st->sock, ZMQ_ZAP_DOMAIN, S_DOMAIN, strlen(S_DOMAIN)) ||
	    zmq_setsockopt(st->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(st->sock, ZMQ_CURVE_SECRETKEY, s->secret_key, strlen(s->secret_key))) {
		yj_err("in_yjl1: cannot make %s a CURVE server: %s", st->endpoint, zmq_strerror(zmq_errno()));
		return YJ_EIO;
	}
	yj_notice("in_yjl1: CURVE on %s: %zu client key(s)", st->endpoint, s->clients.n);
	return 0;
}

static int s_start(void *state)
{
	struct s_state *st = state;
	int one = 1, linger = 2000, hb_ivl = 10000, hb_ttl = 30000, rcvhwm = S_RCVHWM, sndhwm = S_SNDHWM;
	int64_t maxmsg = (int64_t)st->max_message_bytes * S_FRAME_FACTOR + 4096;
	int rc;

	st->sock = zmq_socket(st->api->zmq_ctx, ZMQ_ROUTER);
	if (!st->sock)
		return YJ_EIO;
	/* MANDATORY: a reply that cannot be queued is seen (EAGAIN) and
	 * counted, never dropped unseen. */
	zmq_setsockopt(st->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	zmq_setsockopt(st->sock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
	zmq_setsockopt(st->sock, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	zmq_setsockopt(st->sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(st->sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl));
	zmq_setsockopt(st->sock, ZMQ_HEARTBEAT_TTL, &hb_ttl, sizeof(hb_ttl));
	zmq_setsockopt(st->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_ttl, sizeof(hb_ttl));
	zmq_setsockopt(st->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	if (st->curve && (rc = s_curve_server(st)))
		return rc;
	if (zmq_bind(st->sock, st->endpoint) != 0) {
		yj_err("in_yjl1: cannot bind %s: %s (is another yjlinkd running? change ingest.endpoint)",
		       st->endpoint, zmq_strerror(zmq_errno()));
		return YJ_EIO;
	}
	struct yj_zguard_limits lim = {
		.max_connections = yj_zguard_fd_budget(3, 4),
		/* More than the largest frame libzmq lets in, with the
		 * request's other frames. */
		.stall_bytes = (uint64_t)maxmsg + (64u << 10),
		.pressure_bytes = S_PRESSURE,
		.pressure_held = S_PRESSURE_HELD(st->max_message_bytes),
		.deaf_bytes = S_DEAF,
		.share_bytes = S_SHARE,
	};
	if ((rc = yj_zguard_new(st->api->loop, st->api->zmq_ctx, st->sock, "ingest", &lim, &st->guard))) {
		yj_err("in_yjl1: cannot watch the connections of %s: %s", st->endpoint, yj_strerror(rc));
		return rc;
	}
	yj_notice("in_yjl1: listening on %s (at most %zu connections)", st->endpoint, lim.max_connections);
	return yj_loop_add(st->api->loop, st->sock, -1, ZMQ_POLLIN, s_on_readable, st);
}

static void s_metrics(void *state, struct yj_prom *p)
{
	struct s_state *st = state;
	yj_zguard_metrics(st->guard, p);
	yj_prom_family(p, "yjlink_ingest_replies_dropped_total", "counter",
		       "YJL1 replies not delivered since start: the client had gone or did not read them");
	yj_prom_sample_l(p, "yjlink_ingest_replies_dropped_total", (double)st->unroutable, NULL);
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	struct s_state *st = state;
	st->drain_max = (size_t)cfg->ingest_batch_max;
	if (strcmp(cfg->ingest_endpoint, st->endpoint) != 0)
		yj_warn("in_yjl1: ingest.endpoint changes only on restart; still on %s", st->endpoint);
	const struct s_settings *s = st->api->settings(cfg, &yj_adapter_in_yjl1);
	if (!!*s->secret_key != st->curve) {
		yj_warn("in_yjl1: ingest.curve is switched on or off only on restart; still %s", st->curve ? "CURVE" : "without CURVE");
		return 0;
	}
	/* Key rotation: new handshakes see the new keys; no connection drops. */
	int rc = st->curve ? s_set_keys(st, cfg) : 0;
	if (rc)
		yj_err("in_yjl1: ingest.clients not taken (%s): the keys before the reload still apply", yj_strerror(rc));
	else if (st->curve)
		yj_notice("in_yjl1: ingest.clients reloaded: %zu client key(s)", s->clients.n);
	return rc;
}

static void s_drain(void *state)
{
	/* Nothing to do here: the core answers RETRY while draining, and the
	 * socket stays open so every late request still gets its reply. */
	(void)state;
}

static void s_destroy(void **state)
{
	struct s_state *st = state ? *state : NULL;
	if (!st)
		return;
	yj_zguard_destroy(&st->guard);
	if (st->sock) {
		yj_loop_remove(st->api->loop, st->sock, -1);
		zmq_close(st->sock);
	}
	free(st->endpoint);
	free(st);
	*state = NULL;
}

const struct yj_adapter yj_adapter_in_yjl1 = {
	.conf = {
		.name = "in_yjl1",
		.section = "ingest",
		.settings = s_section_table,
		.n_settings = sizeof(s_section_table) / sizeof(s_section_table[0]),
		.settings_size = sizeof(struct s_settings),
		.check = s_check,
		.endpoint = "ingest.endpoint",
		.authenticates = s_authenticates,
	},
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.metrics = s_metrics,
};
