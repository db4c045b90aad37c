/* in_yjl1.c: the YJL1 feed endpoint (interfaces.md §1).
 *
 * A ZMQ_ROUTER bound at ingest.endpoint. Each request is four frames from a
 * DEALER (the ROUTER prepends the peer's routing id); every request gets
 * exactly one four-frame reply, also when its framing is wrong, which the
 * core turns into REJECT protocol. Replies go out after the group commit, in
 * the order the requests arrived.
 */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "adapter.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "zguard.h"

#define S_MAX_FRAMES 8          /* frames kept of a malformed request */
/* A frame up to 16 times the payload limit still gets its REJECT too_large;
 * a larger one costs the peer its connection, not our memory (libzmq
 * allocates a frame whole when its header arrives). */
#define S_FRAME_FACTOR 16
/* Per peer: requests libzmq may queue for us (TCP pushes back beyond), and
 * replies it may queue for a peer that does not read them (the guard
 * closes such a peer first; a reply that cannot be queued is dropped: the
 * client's resend gets DUP). */
#define S_RCVHWM 256
#define S_SNDHWM 100000         /* far above any client's window: the guard's deaf_bytes binds first */
#define S_DEAF (1u << 20)        /* reply bytes a client leaves unread in libzmq (some 12,000 replies) */
#define S_PRESSURE (24u << 20)   /* private memory from which stalled peers go (the bar is 64 MiB) */
/* ... if they hold more than any one message being received could */
#define S_PRESSURE_HELD(max_message) (2 * (uint64_t)(max_message) + (64u << 10))

struct s_state {
	const struct yj_core_api *api;  /* borrowed */
	void *sock;                     /* ROUTER, owned */
	char *endpoint;                 /* owned */
	size_t drain_max;               /* messages read per wake-up */
	size_t max_message_bytes;       /* ingest.max_message_bytes */
	uint64_t unroutable;            /* replies whose peer had gone, or that it did not read */
	struct yj_zguard *guard;        /* owned: connection and buffer bounds */
};

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

/* Read one whole message (routing id + frames) and submit it. Returns 1 when
 * a message was read, 0 when none was waiting, <0 on error. */
static int s_read_one(struct s_state *st)
{
	zmq_msg_t f[S_MAX_FRAMES];
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
		if (total > 0)
			bytes += zmq_msg_size(m);
		total++;
		if (n < S_MAX_FRAMES)
			n++;
	}
	/* f[0] is the routing id; the request is f[1..]. */
	unsigned frames = total - 1;
	yj_zguard_consumed(st->guard, fd, bytes, frames);
	peer = malloc(sizeof(*peer) + zmq_msg_size(&f[0]));
	if (!peer) {
		rc = YJ_ENOMEM;
		goto out;
	}
	peer->st = st;
	peer->fd = fd;
	peer->len = zmq_msg_size(&f[0]);
	memcpy(peer->id, zmq_msg_data(&f[0]), peer->len);

	struct yj_request req = { .origin = "yjl1", .frames = frames };
	const char *uid = zmq_msg_gets(&f[0], "User-Id");
	req.sender = uid && *uid ? uid : NULL;
	char *joined = NULL;
	if (frames != 4 || zmq_msg_size(&f[1]) != 4 || memcmp(zmq_msg_data(&f[1]), "YJL1", 4) != 0) {
		req.protocol_error = frames != 4 ? "a request has exactly four frames" : "frame 0 must be YJL1";
		/* Keep every frame for the operator, joined. */
		size_t len = 0;
		for (unsigned i = 1; i < n; i++)
			len += zmq_msg_size(&f[i]);
		joined = malloc(len ? len : 1);
		if (!joined) {
			free(peer);
			rc = YJ_ENOMEM;
			goto out;
		}
		len = 0;
		for (unsigned i = 1; i < n; i++) {
			memcpy(joined + len, zmq_msg_data(&f[i]), zmq_msg_size(&f[i]));
			len += zmq_msg_size(&f[i]);
		}
		req.payload = joined;
		req.payload_len = len;
		if (frames >= 2) {
			req.feed = zmq_msg_data(&f[2]);
			req.feed_len = zmq_msg_size(&f[2]);
		}
		if (frames >= 3) {
			req.content_type = zmq_msg_data(&f[3]);
			req.content_type_len = zmq_msg_size(&f[3]);
		}
	} else {
		req.feed = zmq_msg_data(&f[2]);
		req.feed_len = zmq_msg_size(&f[2]);
		req.content_type = zmq_msg_data(&f[3]);
		req.content_type_len = zmq_msg_size(&f[3]);
		req.payload = zmq_msg_data(&f[4]);
		req.payload_len = zmq_msg_size(&f[4]);
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
	if (!st->endpoint) {
		free(st);
		return YJ_ENOMEM;
	}
	*state = st;
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
	return 0;
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
	.conf = { .name = "in_yjl1" },
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.metrics = s_metrics,
};
