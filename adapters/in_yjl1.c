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

#define S_MAX_FRAMES 8          /* frames kept of a malformed request */
#define S_MAX_MSG (16 << 20)    /* larger messages cost the peer its connection, not our memory */

struct s_state {
	const struct yj_core_api *api;  /* borrowed */
	void *sock;                     /* ROUTER, owned */
	char *endpoint;                 /* owned */
	size_t drain_max;               /* messages read per wake-up */
	uint64_t unroutable;            /* replies whose peer had gone */
};

/* The routing id a reply goes back to; freed once the reply is sent. */
struct s_peer {
	struct s_state *st;
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
	if (rc < 0) {
		/* The peer disconnected: an OK it never saw is harmless, its resend gets DUP. */
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
	int more = 1, rc = 0;
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
		total++;
		if (n < S_MAX_FRAMES)
			n++;
	}
	/* f[0] is the routing id; the request is f[1..]. */
	unsigned frames = total - 1;
	peer = malloc(sizeof(*peer) + zmq_msg_size(&f[0]));
	if (!peer) {
		rc = YJ_ENOMEM;
		goto out;
	}
	peer->st = st;
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
		if (rc == 0)
			return 0;
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
	int one = 1, zero = 0, linger = 2000, hb_ivl = 10000, hb_ttl = 30000;
	int64_t maxmsg = S_MAX_MSG;

	st->sock = zmq_socket(st->api->zmq_ctx, ZMQ_ROUTER);
	if (!st->sock)
		return YJ_EIO;
	/* Replies must never be dropped silently for want of buffer: the
	 * pipelining window bounds them, so no send high-water mark. */
	zmq_setsockopt(st->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	zmq_setsockopt(st->sock, ZMQ_SNDHWM, &zero, sizeof(zero));
	zmq_setsockopt(st->sock, ZMQ_RCVHWM, &zero, sizeof(zero));
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
	yj_notice("in_yjl1: listening on %s", st->endpoint);
	return yj_loop_add(st->api->loop, st->sock, -1, ZMQ_POLLIN, s_on_readable, st);
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
};
