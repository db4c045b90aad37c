/* test_out_peer.c: the peer adapter (adapters/out_peer.c) against a
 * scripted YJL1 endpoint: a ZMQ_ROUTER of this test, driven by the same real
 * yj_loop as the adapter, answering each request as the test says (OK,
 * DUP, RETRY, REJECT, nothing, with or without its source_id).
 *
 * The adapter is not part of yjcore, so its source is compiled in here; that
 * also gives the tests its static helpers and its recipient settings struct,
 * which the tests fill by hand as the core's config loader would.
 */
#include "../../adapters/out_peer.c"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <unistd.h>

#include "diag.h"
#include "loop.h"

#define T_MAX 16                /* most deliveries one test waits for */
#define T_SAFETY_MS 20000       /* a test that hangs fails instead */
#define T_FORCE "E23000029"

/* How the scripted peer answers a request. */
enum t_mode {
	T_OK = 0,       /* OK <n> */
	T_DUP,          /* DUP 7 */
	T_RETRY,        /* RETRY store busy */
	T_REJECT,       /* REJECT forbidden */
	T_SILENT,       /* nothing: the request times out */
	T_NO_ID,        /* REJECT with an empty source_id (the peer could not read it) */
};

/* One result the adapter reported. */
struct t_result {
	int calls;                      /* how often done ran: must end at 1 */
	enum yj_delivery_result result; /* what it said */
	char detail[512];               /* copy of detail */
	char address[256];              /* copy of address */
};

struct t_ctx {
	struct yj_loop *loop;           /* owned */
	void *zctx;                     /* owned: the ZeroMQ context of adapter and peer */
	void *peer;                     /* owned: the scripted peer's ROUTER, NULL when none */
	char endpoint[128];             /* where it listens (or where nobody does) */
	char bound[128];                /* the ipc:// path it bound, removed when it stops */
	enum t_mode mode;               /* how it answers */
	unsigned requests;              /* requests it got */
	uint8_t rid[256];               /* the routing id of the last one: a test may answer it late */
	size_t rid_len;
	char frames[4][2048];           /* the last request's frames, NUL-terminated */
	size_t frame_len[4];
	struct yj_config cfg;           /* hand-filled, only what the adapter reads */
	struct yj_recipient rcpt;       /* the one recipient */
	struct s_recipient rs;          /* its peer settings, as the loader would fill them */
	struct yj_core_api api;         /* what the adapter is given */
	void *ad;                       /* adapter state */
	struct t_result res[T_MAX];     /* by delivery index */
	size_t expected;                /* stop the loop once this many came back */
	size_t finished;                /* how many came back */
	int in_deliver;                 /* deliver() is running: done must not be called now */
	int done_inside;                /* it was */
	int timed_out;                  /* the safety timer fired */
};

/* What done's arg points at: the context and the delivery's index. */
struct t_tag {
	struct t_ctx *ctx;              /* the test it belongs to */
	size_t i;                       /* index into ctx->res */
};
static struct t_tag s_tags[T_MAX];

static const char s_json[] =
	"{\"notification_id\":\"tvp-000000000001\",\"kind\":\"out_of_area_force\",\"recipient\":\"force:E23000001\","
	"\"created_at\":\"2026-11-21T23:14:02Z\",\"rule\":\"out_of_area_force\",\"legal_basis\":\"DPA 2018 Part 3\","
	"\"classification\":\"OFFICIAL-SENSITIVE\",\"event\":{\"seq\":42,\"feed\":\"custody\","
	"\"stored_at\":\"2026-11-21T23:14:01Z\",\"occurred_at\":\"2026-11-21T23:00:00Z\","
	"\"child\":{\"person_id\":\"TVP-P1\",\"date_of_birth\":\"2011-03-02\"},"
	"\"custody\":{\"record_id\":\"CR-1\",\"status\":\"detained\"}}}";

/* ------------------------------------------------------------ the scripted peer */

static int s_on_peer(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct t_ctx *c = arg;
	(void)loop;
	(void)fd;
	(void)revents;
	for (;;) {
		zmq_msg_t f[6];
		unsigned n = 0;
		int more = 1;
		while (more && n < 6) {
			zmq_msg_init(&f[n]);
			if (zmq_msg_recv(&f[n], sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
				zmq_msg_close(&f[n]);
				assert_int_equal(n, 0);
				return 0;
			}
			more = zmq_msg_more(&f[n]);
			n++;
		}
		assert_false(more);
		assert_int_equal(n, 5); /* routing id + the four frames of a request */
		c->requests++;
		assert_true(zmq_msg_size(&f[0]) <= sizeof(c->rid));
		c->rid_len = zmq_msg_size(&f[0]);
		memcpy(c->rid, zmq_msg_data(&f[0]), c->rid_len);
		for (unsigned i = 0; i < 4; i++) {
			size_t len = zmq_msg_size(&f[i + 1]);
			assert_true(len < sizeof(c->frames[i]));
			memcpy(c->frames[i], zmq_msg_data(&f[i + 1]), len);
			c->frames[i][len] = '\0';
			c->frame_len[i] = len;
		}
		cJSON *body = cJSON_Parse(c->frames[3]);
		const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "source_id"));
		char seq[16];
		snprintf(seq, sizeof(seq), "%u", 100 + c->requests);
		const char *status = NULL, *detail = NULL;
		switch (c->mode) {
		case T_OK: status = "OK"; detail = seq; break;
		case T_DUP: status = "DUP"; detail = "7"; break;
		case T_RETRY: status = "RETRY"; detail = "store busy"; break;
		case T_REJECT:
		case T_NO_ID:
			status = "REJECT";
			detail = "{\"error\":\"forbidden\",\"field\":\"force\",\"reason\":\"this sender may not send for force E23000029\"}";
			break;
		case T_SILENT: break;
		}
		if (c->mode == T_NO_ID)
			sid = "";
		if (status) {
			assert_true(zmq_send(sock, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), ZMQ_SNDMORE) >= 0);
			assert_true(zmq_send(sock, "YJL1", 4, ZMQ_SNDMORE) >= 0);
			assert_true(zmq_send(sock, status, strlen(status), ZMQ_SNDMORE) >= 0);
			assert_true(zmq_send(sock, sid, strlen(sid), ZMQ_SNDMORE) >= 0);
			assert_true(zmq_send(sock, detail, strlen(detail), 0) >= 0);
		}
		cJSON_Delete(body);
		for (unsigned i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
}

static void s_peer_start(struct t_ctx *c)
{
	int zero = 0;
	size_t len = sizeof(c->endpoint);
	static unsigned n;
	char where[128];
	c->peer = zmq_socket(c->zctx, ZMQ_ROUTER);
	assert_non_null(c->peer);
	zmq_setsockopt(c->peer, ZMQ_LINGER, &zero, sizeof(zero));
	/* ipc://, not a free TCP port: a DEALER reconnecting to a free port in
	 * the ephemeral range may connect to itself. */
	snprintf(where, sizeof(where), "ipc:///tmp/yj-test-out-peer-%d-%u.sock", (int)getpid(), ++n);
	assert_int_equal(zmq_bind(c->peer, where), 0);
	snprintf(c->bound, sizeof(c->bound), "%s", where + strlen("ipc://"));
	assert_int_equal(zmq_getsockopt(c->peer, ZMQ_LAST_ENDPOINT, c->endpoint, &len), 0);
	assert_int_equal(yj_loop_add(c->loop, c->peer, -1, ZMQ_POLLIN, s_on_peer, c), 0);
}

static void s_peer_stop(struct t_ctx *c)
{
	if (!c->peer)
		return;
	yj_loop_remove(c->loop, c->peer, -1);
	zmq_close(c->peer);
	c->peer = NULL;
	unlink(c->bound);
}

/* ------------------------------------------------------------ the core's side */

static const struct yj_config *s_api_config(void *core)
{
	return &((struct t_ctx *)core)->cfg;
}

static void t_on_done(void *arg, enum yj_delivery_result result, const char *detail, const char *address)
{
	struct t_tag *tag = arg;
	struct t_ctx *c = tag->ctx;
	struct t_result *r = &c->res[tag->i];

	if (c->in_deliver)
		c->done_inside = 1;
	r->calls++;
	r->result = result;
	snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "(null)");
	snprintf(r->address, sizeof(r->address), "%s", address ? address : "(null)");
	c->finished++;
	if (c->finished >= c->expected)
		yj_loop_stop(c->loop);
}

static int s_on_safety(struct yj_loop *loop, void *arg)
{
	struct t_ctx *c = arg;
	c->timed_out = 1;
	yj_loop_stop(loop);
	return 0;
}

static int s_on_stop(struct yj_loop *loop, void *arg)
{
	(void)arg;
	yj_loop_stop(loop);
	return 0;
}

/* Start delivery i (notification id tvp-<i+1>) of kind; check deliver()'s answer. */
static void s_deliver_kind(struct t_ctx *c, size_t i, enum yj_message_kind kind, int want_rc)
{
	char id[48], feed[16] = "custody", *body = strdup(s_json);
	assert_true(i < T_MAX);
	assert_non_null(body);
	snprintf(id, sizeof(id), "tvp-%012zu", i + 1);
	s_tags[i] = (struct t_tag){ c, i };
	/* The message and its strings live on this stack frame only: the
	 * adapter must have copied what it needs when deliver returns. */
	struct yj_message m = {
		.kind = kind, .id = id, .number = i + 1, .feed = feed, .kind_name = "out_of_area_force",
		.recipient = &c->rcpt, .settings = &c->rs, .json = body, .json_len = strlen(body),
	};
	c->in_deliver = 1;
	assert_int_equal(yj_adapter_out_peer.deliver(c->ad, &m, t_on_done, &s_tags[i]), want_rc);
	c->in_deliver = 0;
	memset(body, 'X', strlen(body));
	memset(id, 'X', sizeof(id) - 1);
	memset(feed, 'X', sizeof(feed) - 1);
	free(body);
}

static void s_deliver_i(struct t_ctx *c, size_t i) { s_deliver_kind(c, i, YJ_MESSAGE_NOTIFICATION, 0); }

/* Run the loop until n results came back; fail on the safety timer. */
static void s_run(struct t_ctx *c, size_t n)
{
	c->expected = n;
	int64_t safety = yj_loop_timer(c->loop, T_SAFETY_MS, 0, s_on_safety, c);
	assert_true(safety > 0);
	if (c->finished < n)
		assert_int_equal(yj_loop_run(c->loop), 0);
	yj_loop_timer_cancel(c->loop, safety);
	assert_false(c->timed_out);
	assert_false(c->done_inside);
	assert_int_equal(c->finished, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c->res[i].calls, 1);
}

/* Run the loop for ms more, whatever happens (to see that nothing does). */
static void s_run_for(struct t_ctx *c, int64_t ms)
{
	c->expected = SIZE_MAX;
	assert_true(yj_loop_timer(c->loop, ms, 0, s_on_stop, c) > 0);
	assert_int_equal(yj_loop_run(c->loop), 0);
}

static int t_setup(void **state)
{
	struct t_ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->loop = yj_loop_new();
	assert_non_null(c->loop);
	c->zctx = zmq_ctx_new();
	assert_non_null(c->zctx);
	s_peer_start(c);
	c->rs = (struct s_recipient){ .endpoint = c->endpoint, .server_key = "", .key_file = "", .timeout_ms = 5000 };
	c->rcpt = (struct yj_recipient){
		.id = "force:E23000001", .kind = YJ_RCPT_FORCE, .name = "Metropolitan Police", .force = "E23000001",
		.transport = "peer", .output_settings = &c->rs,
	};
	c->cfg = (struct yj_config){ .deployment_id = "tvp", .deployment_force = T_FORCE, .recipients = &c->rcpt,
				     .n_recipients = 1 };
	c->api = (struct yj_core_api){ .core = c, .loop = c->loop, .zmq_ctx = c->zctx, .config = s_api_config };
	assert_int_equal(yj_adapter_out_peer.init(&c->api, &c->ad), 0);
	assert_int_equal(yj_adapter_out_peer.start(c->ad), 0);
	*state = c;
	return 0;
}

static int t_teardown(void **state)
{
	struct t_ctx *c = *state;
	yj_adapter_out_peer.destroy(&c->ad);
	assert_null(c->ad);
	s_peer_stop(c);
	zmq_ctx_term(c->zctx);
	yj_loop_destroy(&c->loop);
	free(c);
	return 0;
}

/* ------------------------------------------------------------ delivery */

static void test_ok_and_the_frames(void **state)
{
	struct t_ctx *c = *state;
	s_deliver_i(c, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_OK);
	assert_string_equal(c->res[0].detail, "OK 101");
	assert_string_equal(c->res[0].address, c->endpoint);
	assert_int_equal(c->requests, 1);
	assert_string_equal(c->frames[0], "YJL1");
	assert_string_equal(c->frames[1], "custody");
	assert_string_equal(c->frames[2], "application/json");
	cJSON *body = cJSON_Parse(c->frames[3]);
	assert_non_null(body);
	/* yjlinkd's own fields out; the notification id and our force in. */
	assert_null(cJSON_GetObjectItemCaseSensitive(body, "seq"));
	assert_null(cJSON_GetObjectItemCaseSensitive(body, "feed"));
	assert_null(cJSON_GetObjectItemCaseSensitive(body, "stored_at"));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "source_id")), "tvp-000000000001");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "force")), T_FORCE);
	const cJSON *child = cJSON_GetObjectItemCaseSensitive(body, "child");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(child, "date_of_birth")), "2011-03-02");
	assert_non_null(cJSON_GetObjectItemCaseSensitive(body, "custody"));
	assert_null(cJSON_GetObjectItemCaseSensitive(body, "notification_id"));
	cJSON_Delete(body);
}

static void test_pipelined_replies_find_their_requests(void **state)
{
	struct t_ctx *c = *state;
	for (size_t i = 0; i < 8; i++)
		s_deliver_i(c, i);
	s_run(c, 8);
	assert_int_equal(c->requests, 8);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(c->res[i].result, YJ_DELIVERY_OK);
}

static void test_dup_is_delivered(void **state)
{
	struct t_ctx *c = *state;
	c->mode = T_DUP;
	s_deliver_i(c, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_OK);
	assert_string_equal(c->res[0].detail, "DUP 7");
}

static void test_retry_is_retried(void **state)
{
	struct t_ctx *c = *state;
	c->mode = T_RETRY;
	s_deliver_i(c, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_RETRY);
	assert_string_equal(c->res[0].detail, "RETRY store busy");
}

static void test_reject_is_fatal_with_the_peers_detail(void **state)
{
	struct t_ctx *c = *state;
	c->mode = T_REJECT;
	s_deliver_i(c, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_FATAL);
	cJSON *d = cJSON_Parse(c->res[0].detail);
	assert_non_null(d);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "error")), "forbidden");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "field")), "force");
	cJSON_Delete(d);
}

static void test_a_reply_without_source_id_is_the_one_waiting(void **state)
{
	struct t_ctx *c = *state;
	c->mode = T_NO_ID;
	s_deliver_i(c, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_FATAL);
}

static void test_no_reply_times_out_and_a_late_one_is_ignored(void **state)
{
	struct t_ctx *c = *state;
	c->mode = T_SILENT;
	c->rs.timeout_ms = 200;
	s_deliver_i(c, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_RETRY);
	assert_string_equal(c->res[0].detail, "no reply from the peer within 200 ms");
	assert_int_equal(c->requests, 1);
	/* The answer comes now, after the timeout: nothing waits for it. */
	assert_true(zmq_send(c->peer, c->rid, c->rid_len, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(c->peer, "YJL1", 4, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(c->peer, "OK", 2, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(c->peer, "tvp-000000000001", 16, ZMQ_SNDMORE) >= 0);
	assert_true(zmq_send(c->peer, "5", 1, 0) >= 0);
	s_run_for(c, 300);
	assert_int_equal(c->res[0].calls, 1);
	assert_int_equal(c->finished, 1);
	c->mode = T_OK;
	s_deliver_i(c, 1); /* a new request, answered: its reply must not be taken for the old */
	s_run(c, 2);
	assert_int_equal(c->res[0].calls, 1);
	assert_int_equal(c->res[1].result, YJ_DELIVERY_OK);
}

static void test_peer_not_there_is_retry_from_the_loop(void **state)
{
	struct t_ctx *c = *state;
	/* Connected once, then gone: the next request cannot go out. */
	s_deliver_i(c, 0);
	s_run(c, 1);
	s_peer_stop(c);
	/* Until the adapter's DEALER has seen the connection go, a send may still be taken (and then lost). */
	s_run_for(c, 500);
	s_deliver_i(c, 1);
	s_run(c, 2);
	assert_int_equal(c->res[1].result, YJ_DELIVERY_RETRY);
	assert_true(strstr(c->res[1].detail, "peer not reachable") || strstr(c->res[1].detail, "lost the connection"));
}

static void test_first_requests_wait_for_the_first_connection(void **state)
{
	struct t_ctx *c = *state;
	/* The DEALER is made by the first deliver: those right after it must not fail for that. */
	for (size_t i = 0; i < 3; i++)
		s_deliver_i(c, i);
	s_run(c, 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(c->res[i].result, YJ_DELIVERY_OK);
}

static void test_nobody_listening_is_not_reachable(void **state)
{
	struct t_ctx *c = *state;
	/* An ipc:// path nobody binds. */
	snprintf(c->endpoint, sizeof(c->endpoint), "ipc:///tmp/yj-test-out-peer-nobody-%d.sock", (int)getpid());
	s_deliver_i(c, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_RETRY);
	assert_string_equal(c->res[0].detail, "peer not reachable");
}

static void test_a_digest_is_fatal(void **state)
{
	struct t_ctx *c = *state;
	s_deliver_kind(c, 0, YJ_MESSAGE_DIGEST, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_FATAL);
	assert_int_equal(c->requests, 0);
}

static void test_settings_changed_reconnect(void **state)
{
	struct t_ctx *c = *state;
	c->mode = T_SILENT;
	s_deliver_i(c, 0);
	s_run_for(c, 300);
	assert_int_equal(c->requests, 1);
	/* A reload gives the recipient another timeout only: the connection stays. */
	c->rs.timeout_ms = 4000;
	assert_int_equal(yj_adapter_out_peer.reload(c->ad, &c->cfg), 0);
	assert_int_equal(c->finished, 0);
	/* Another endpoint: what waited is retried, the next goes the new way. */
	static char other[160];
	snprintf(other, sizeof(other), "%.128s-elsewhere", c->endpoint);
	c->rs.endpoint = other;
	assert_int_equal(yj_adapter_out_peer.reload(c->ad, &c->cfg), 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_RETRY);
	assert_true(strstr(c->res[0].detail, "settings changed") != NULL);
}

static void test_drain_refuses_and_destroy_abandons(void **state)
{
	struct t_ctx *c = *state;
	c->mode = T_SILENT;
	s_deliver_i(c, 0);
	s_run_for(c, 300);
	yj_adapter_out_peer.drain(c->ad);
	s_deliver_kind(c, 1, YJ_MESSAGE_NOTIFICATION, YJ_ESHUTDOWN);
	/* teardown destroys the adapter with request 0 unanswered: done is not called. */
	yj_adapter_out_peer.destroy(&c->ad);
	assert_int_equal(c->finished, 0);
}

/* ------------------------------------------------------------ check_recipient */

struct t_diag {
	char lines[8][512];             /* what was reported */
	int n;
};

static void t_report(void *arg, const char *file, int line, const char *msg)
{
	struct t_diag *d = arg;
	if (d->n < 8)
		snprintf(d->lines[d->n++], sizeof(d->lines[0]), "%s:%d: %s", file, line, msg);
}

/* check_recipient of rs with allow; returns the number of problems, d the lines. */
static int s_check(const struct s_recipient *rs, const char *const *allow, size_t n_allow, struct t_diag *d)
{
	struct yj_diag diag = { t_report, d, 0 };
	struct yj_setting_site at = { &diag, "y.conf", 12 };
	struct yj_recipient r = { .id = "force:E23000001", .kind = YJ_RCPT_FORCE, .transport = "peer" };
	r.allow.v = (char **)allow;
	r.allow.n = n_allow;
	memset(d, 0, sizeof(*d));
	yj_adapter_out_peer.conf.check_recipient(rs, &r, &at);
	return diag.count;
}

static void test_check_recipient(void **state)
{
	(void)state;
	static const char *const full[] = { "occurred_at", "child.*", "offences.*", "custody.*", "arrest.*", "outcome.*" };
	static const char *const no_dob[] = { "occurred_at", "child.person_id", "child.given_name", "child.family_name",
					      "custody.*", "arrest.*", "outcome.*" };
	static const char *const lac[] = { "occurred_at", "child.person_id", "child.given_name", "child.family_name",
					   "child.date_of_birth", "child.looked_after", "offences.description",
					   "custody.*", "arrest.*", "outcome.*" };
	struct s_recipient rs = { .endpoint = "tcp://127.0.0.1:7401", .server_key = "", .key_file = "", .timeout_ms = 10000 };
	struct t_diag d;
	char pub[41], sec[41];

	assert_int_equal(s_check(&rs, full, 6, &d), 0);
	assert_int_equal(s_check(&rs, no_dob, 7, &d), 1);
	assert_non_null(strstr(d.lines[0], "y.conf:12: "));
	assert_non_null(strstr(d.lines[0], "child.date_of_birth"));
	assert_int_equal(s_check(&rs, lac, 10, &d), 1);
	assert_non_null(strstr(d.lines[0], "child.responsible_la"));
	assert_non_null(strstr(d.lines[0], "offences.code"));

	rs.endpoint = "http://127.0.0.1:7401";
	assert_int_equal(s_check(&rs, full, 6, &d), 1);
	assert_non_null(strstr(d.lines[0], "peer.endpoint"));
	rs.endpoint = "tcp://yjlink.met.example:7401";
	assert_int_equal(s_check(&rs, full, 6, &d), 1);
	assert_non_null(strstr(d.lines[0], "not loopback"));

	assert_int_equal(zmq_curve_keypair(pub, sec), 0);
	rs.server_key = pub;
	assert_int_equal(s_check(&rs, full, 6, &d), 1);
	assert_non_null(strstr(d.lines[0], "go together"));
	rs.key_file = sec;
	assert_int_equal(s_check(&rs, full, 6, &d), 0);
	rs.key_file = "too short";
	assert_int_equal(s_check(&rs, full, 6, &d), 1);
	assert_non_null(strstr(d.lines[0], "peer.key_file"));
}

static void test_text_from_the_peer_is_made_safe(void **state)
{
	(void)state;
	char out[16];
	s_text("a\nb\x01\xff" "c", 6, out, sizeof(out));
	assert_string_equal(out, "a b ?c");
	/* Cut whole, never inside a UTF-8 sequence. */
	s_text("abcdefghijklm\xc3\xa9", 15, out, 15);
	assert_string_equal(out, "abcdefghijklm");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_and_the_frames, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_replies_find_their_requests, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_dup_is_delivered, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_retry_is_retried, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_reject_is_fatal_with_the_peers_detail, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_a_reply_without_source_id_is_the_one_waiting, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_no_reply_times_out_and_a_late_one_is_ignored, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_peer_not_there_is_retry_from_the_loop, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_first_requests_wait_for_the_first_connection, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_nobody_listening_is_not_reachable, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_a_digest_is_fatal, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_settings_changed_reconnect, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_drain_refuses_and_destroy_abandons, t_setup, t_teardown),
		cmocka_unit_test(test_check_recipient),
		cmocka_unit_test(test_text_from_the_peer_is_made_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
