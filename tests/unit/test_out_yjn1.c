/* test_out_yjn1.c: the YJN1 subscription adapter (adapters/out_yjn1.c)
 * against real DEALER sockets, driven by the real yj_loop.
 *
 * The adapter is not part of yjcore, so its source is compiled in here; that
 * gives the tests its recipient settings struct (filled by hand, as the
 * config loader would) and a look at its state (is a pipe full, is a
 * recipient connected) where the protocol alone cannot show it. The core's
 * side is a hand-filled config and an in-memory position table; every
 * done() is recorded with whether it came from inside deliver().
 *
 * The cases the integration test (tests/integration/test_subscribe.py)
 * cannot force: a full pipe (EAGAIN, retried from the tick), a job handed
 * over below numbers already sent (late), an ACK sent just before its
 * connection went, destroy and drain with jobs held, a reload that takes a
 * recipient off zmq.
 */
#include "../../adapters/out_yjn1.c"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "loop.h"

#define T_MAX 2000              /* jobs one test hands over */
#define T_SAFETY_MS 20000       /* a wait that never ends fails instead */
#define T_A "children_services:E06000042"
#define T_B "children_services:E09000033"

/* What done said of one job. */
struct t_result {
	int calls;                      /* must end at most 1 */
	int inside_deliver;             /* called while deliver() ran: never allowed */
	enum yj_delivery_result result; /* what it said */
	char detail[256];               /* copy of detail */
	char address[128];              /* copy of address */
};

struct t_ctx {
	struct yj_loop *loop;           /* owned */
	void *zctx;                     /* owned */
	struct yj_config cfg;           /* hand-filled: what the adapter reads */
	struct yj_recipient rcpt[2];    /* A (zmq), B (transport none) */
	struct s_recipient rs;          /* A's zmq settings */
	struct yj_core_api api;         /* what the adapter is given */
	void *ad;                       /* adapter state */
	char endpoint[128];             /* where it bound */
	struct t_result res[T_MAX + 1]; /* by job number */
	size_t finished;                /* done calls so far */
	int in_deliver;                 /* deliver() is running */
	char pos_key[256];              /* the one position the core keeps for us */
	char pos_val[64];               /* its value, NUL-terminated */
	size_t pos_len;                 /* its length; 0: none */
	int pos_puts;                   /* position_put calls */
	void *socks[64];                /* client sockets, closed at teardown */
	size_t n_socks;                 /* slots used */
	char *body;                     /* JSON handed with every job (NULL: a small one) */
};

/* What done's arg points at: the test and the job. */
struct t_tag {
	struct t_ctx *c;                /* the test it belongs to */
	uint64_t number;                /* the job's number, index into c->res */
};
static struct t_tag s_tags[T_MAX + 1];

/* ------------------------------------------------------------ the core's side */

static const struct yj_config *t_config(void *core) { return &((struct t_ctx *)core)->cfg; }

static int t_position_get(void *core, const char *key, void *buf, size_t size, size_t *len)
{
	struct t_ctx *c = core;
	if (!c->pos_len || strcmp(key, c->pos_key))
		return YJ_ENOENT;
	if (c->pos_len > size)
		return YJ_ERANGE;
	memcpy(buf, c->pos_val, c->pos_len);
	*len = c->pos_len;
	return 0;
}

static int t_position_put(void *core, const char *key, const void *val, size_t len)
{
	struct t_ctx *c = core;
	assert_true(len < sizeof(c->pos_val));
	snprintf(c->pos_key, sizeof(c->pos_key), "%s", key);
	memcpy(c->pos_val, val, len);
	c->pos_val[len] = '\0';
	c->pos_len = len;
	c->pos_puts++;
	return 0;
}

static void t_on_done(void *arg, enum yj_delivery_result result, const char *detail, const char *address)
{
	struct t_tag *tag = arg;
	struct t_result *r = &tag->c->res[tag->number];
	r->calls++;
	r->inside_deliver |= tag->c->in_deliver;
	r->result = result;
	snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "(null)");
	snprintf(r->address, sizeof(r->address), "%s", address ? address : "(null)");
	tag->c->finished++;
}

/* Hand job `number` of recipient id over; check deliver()'s answer. */
static void t_deliver_to(struct t_ctx *c, const char *id, uint64_t number, int want_rc)
{
	char nid[48], json[128];
	assert_true(number <= T_MAX);
	snprintf(nid, sizeof(nid), "tvp-%012" PRIu64, number);
	snprintf(json, sizeof(json), "{\"notification_id\":\"%s\"}", nid);
	const char *body = c->body ? c->body : json;
	s_tags[number] = (struct t_tag){ c, number };
	const struct yj_recipient *r = yj_config_recipient(&c->cfg, id);
	/* On this stack frame only: the adapter copies what it keeps. */
	char *copy = strdup(body);
	assert_non_null(copy);
	struct yj_message m = { .kind = YJ_MESSAGE_NOTIFICATION, .id = nid, .number = number, .feed = "custody",
				.kind_name = "lac_in_custody", .recipient = r, .settings = r->output_settings,
				.json = copy, .json_len = strlen(copy) };
	c->in_deliver = 1;
	assert_int_equal(yj_adapter_out_yjn1.deliver(c->ad, &m, t_on_done, &s_tags[number]), want_rc);
	c->in_deliver = 0;
	memset(copy, 'X', strlen(copy));
	memset(nid, 'X', sizeof(nid) - 1);
	free(copy);
}

static void t_deliver(struct t_ctx *c, uint64_t number) { t_deliver_to(c, T_A, number, 0); }

/* ------------------------------------------------------------ running */

static int t_stop(struct yj_loop *loop, void *arg)
{
	(void)arg;
	yj_loop_stop(loop);
	return 0;
}

/* Run the loop for about ms. */
static void t_spin(struct t_ctx *c, int64_t ms)
{
	int64_t t = yj_loop_timer(c->loop, ms, 0, t_stop, c);
	assert_true(t > 0);
	assert_int_equal(yj_loop_run(c->loop), 0);
}

/* Run the loop in short slices until pred(c) holds; fail after T_SAFETY_MS. */
static void t_until(struct t_ctx *c, int (*pred)(struct t_ctx *c, void *arg), void *arg)
{
	int64_t deadline = yj_loop_now_ms() + T_SAFETY_MS;
	while (!pred(c, arg)) {
		assert_true(yj_loop_now_ms() < deadline);
		t_spin(c, 5);
	}
}

static int t_finished_at_least(struct t_ctx *c, void *arg) { return c->finished >= *(size_t *)arg; }

static void t_until_finished(struct t_ctx *c, size_t n) { t_until(c, t_finished_at_least, &n); }

static struct s_rcpt *t_rcpt(struct t_ctx *c, const char *id) { return s_rcpt_find(c->ad, id); }

static int t_connected(struct t_ctx *c, void *arg) { return t_rcpt(c, arg) && t_rcpt(c, arg)->connected; }

static int t_disconnected(struct t_ctx *c, void *arg) { return !t_rcpt(c, arg)->connected; }

/* ------------------------------------------------------------ clients */

static void *t_client(struct t_ctx *c, int rcvhwm, int rcvbuf)
{
	void *s = zmq_socket(c->zctx, ZMQ_DEALER);
	int zero = 0;
	assert_non_null(s);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (rcvhwm)
		zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
	if (rcvbuf)
		zmq_setsockopt(s, ZMQ_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	assert_int_equal(zmq_connect(s, c->endpoint), 0);
	if (c->n_socks == sizeof(c->socks) / sizeof(c->socks[0]))
		zmq_close(s); /* so that teardown's zmq_ctx_term cannot wait for it */
	assert_true(c->n_socks < sizeof(c->socks) / sizeof(c->socks[0]));
	c->socks[c->n_socks++] = s;
	return s;
}

static void t_close(struct t_ctx *c, void *s)
{
	for (size_t i = 0; i < c->n_socks; i++) {
		if (c->socks[i] == s)
			c->socks[i] = NULL;
	}
	zmq_close(s);
}

/* Send frames (NULL-terminated). */
static void t_send(void *s, ...)
{
	va_list ap;
	const char *f, *next;
	va_start(ap, s);
	f = va_arg(ap, const char *);
	while (f) {
		next = va_arg(ap, const char *);
		assert_true(zmq_send(s, f, strlen(f), next ? ZMQ_SNDMORE : 0) >= 0);
		f = next;
	}
	va_end(ap);
}

/* One message as received by a client. */
struct t_msg {
	int n;                          /* frames */
	char f[5][256];                 /* the first five, cut to 255 bytes, NUL-terminated */
	size_t len[5];                  /* their whole sizes */
};

/* The next message on s, running the loop meanwhile; 0 when none came within ms. */
static int t_recv(struct t_ctx *c, void *s, int64_t ms, struct t_msg *out)
{
	int64_t deadline = yj_loop_now_ms() + ms;
	memset(out, 0, sizeof(*out));
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) >= 0) {
			int more = 1;
			while (more) {
				if (out->n < 5) {
					size_t l = zmq_msg_size(&m);
					out->len[out->n] = l;
					memcpy(out->f[out->n], zmq_msg_data(&m), l < 255 ? l : 255);
				}
				out->n++;
				more = zmq_msg_more(&m);
				zmq_msg_close(&m);
				if (more) {
					zmq_msg_init(&m);
					assert_true(zmq_msg_recv(&m, s, 0) >= 0);
				}
			}
			return 1;
		}
		zmq_msg_close(&m);
		if (yj_loop_now_ms() >= deadline)
			return 0;
		t_spin(c, 2);
	}
}

/* The next message must be NOTE number. */
static void t_expect_note(struct t_ctx *c, void *s, uint64_t number)
{
	struct t_msg m;
	char num[32];
	snprintf(num, sizeof(num), "%" PRIu64, number);
	assert_true(t_recv(c, s, T_SAFETY_MS, &m));
	assert_int_equal(m.n, 4);
	assert_string_equal(m.f[0], "YJN1");
	assert_string_equal(m.f[1], "NOTE");
	assert_string_equal(m.f[2], num);
	if (!c->body) {
		char want[128];
		snprintf(want, sizeof(want), "{\"notification_id\":\"tvp-%012" PRIu64 "\"}", number);
		assert_string_equal(m.f[3], want);
	}
}

static void t_expect_error(struct t_ctx *c, void *s, const char *part)
{
	struct t_msg m;
	assert_true(t_recv(c, s, T_SAFETY_MS, &m));
	assert_int_equal(m.n, 3);
	assert_string_equal(m.f[0], "YJN1");
	assert_string_equal(m.f[1], "ERROR");
	if (!strstr(m.f[2], part))
		fail_msg("ERROR reason '%s' lacks '%s'", m.f[2], part);
}

static void t_expect_nothing(struct t_ctx *c, void *s)
{
	struct t_msg m;
	assert_false(t_recv(c, s, 200, &m));
}

static void t_hello(void *s, const char *rcpt, const char *cursor) { t_send(s, "YJN1", "HELLO", rcpt, cursor, NULL); }

static void t_ack(void *s, const char *n) { t_send(s, "YJN1", "ACK", n, NULL); }

/* ------------------------------------------------------------ fixture */

static int t_setup(void **state)
{
	struct t_ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->loop = yj_loop_new();
	c->zctx = zmq_ctx_new();
	assert_non_null(c->loop);
	assert_non_null(c->zctx);
	c->rs = (struct s_recipient){ .window = 3 };
	c->rcpt[0] = (struct yj_recipient){ .id = T_A, .kind = YJ_RCPT_CHILDREN_SERVICES, .name = "MK",
					    .transport = "zmq", .output_settings = &c->rs };
	c->rcpt[1] = (struct yj_recipient){ .id = T_B, .kind = YJ_RCPT_CHILDREN_SERVICES, .name = "Westminster",
					    .transport = "none", .output = -1 };
	c->cfg = (struct yj_config){ .deployment_id = "tvp", .notify_endpoint = "tcp://127.0.0.1:*",
				     .recipients = c->rcpt, .n_recipients = 2 };
	c->api = (struct yj_core_api){ .core = c, .loop = c->loop, .zmq_ctx = c->zctx, .config = t_config,
				       .position_get = t_position_get, .position_put = t_position_put };
	*state = c;
	return 0;
}

/* Start the adapter (after a test set the window or a committed cursor). */
static void t_start(struct t_ctx *c)
{
	size_t len = sizeof(c->endpoint);
	assert_int_equal(yj_adapter_out_yjn1.init(&c->api, &c->ad), 0);
	assert_int_equal(yj_adapter_out_yjn1.start(c->ad), 0);
	assert_int_equal(zmq_getsockopt(((struct s_state *)c->ad)->sock, ZMQ_LAST_ENDPOINT, c->endpoint, &len), 0);
}

static int t_teardown(void **state)
{
	struct t_ctx *c = *state;
	size_t calls = c->finished;
	if (c->ad)
		yj_adapter_out_yjn1.destroy(&c->ad);
	assert_null(c->ad);
	/* Destroy abandons what is held: no done from it. */
	assert_int_equal(c->finished, calls);
	for (size_t i = 0; i <= T_MAX; i++) {
		assert_true(c->res[i].calls <= 1);
		assert_false(c->res[i].inside_deliver);
	}
	for (size_t i = 0; i < c->n_socks; i++) {
		if (c->socks[i])
			zmq_close(c->socks[i]);
	}
	zmq_ctx_term(c->zctx);
	yj_loop_destroy(&c->loop);
	free(c->body);
	free(c);
	return 0;
}

/* ------------------------------------------------------------ tests */

static void test_settings_table(void **state)
{
	(void)state;
	const struct yj_settings_owner *o = &yj_adapter_out_yjn1.conf;
	assert_string_equal(o->name, "out_yjn1");
	assert_string_equal(o->transport, "zmq");
	assert_string_equal(o->section, "notify"); /* notify.curve and notify.subscribers */
	assert_int_equal(o->n_recipient_settings, 1);
	assert_string_equal(o->recipient_settings[0].name, "zmq.window");
	assert_string_equal(o->recipient_settings[0].def, "1000");
	assert_int_equal(o->recipient_settings[0].min, 1);
	assert_int_equal(o->recipient_settings[0].max, 100000);
	assert_int_equal(yj_adapter_out_yjn1.window, 100000);
	assert_int_equal(yj_adapter_out_yjn1.digest_parts, 8);
	assert_string_equal(yj_adapter_out_yjn1.command, "subscribers");
}

/* Held with no subscriber; the window; each ACK makes room; the cursor recorded. */
static void test_hello_window_ack(void **state)
{
	struct t_ctx *c = *state;
	t_start(c);
	for (uint64_t n = 1; n <= 6; n++)
		t_deliver(c, n);
	t_spin(c, 50);
	assert_int_equal(c->finished, 0);
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 1);
	t_expect_note(c, s, 2);
	t_expect_note(c, s, 3);
	t_expect_nothing(c, s);
	t_ack(s, "2");
	t_expect_note(c, s, 4);
	t_expect_note(c, s, 5);
	t_expect_nothing(c, s);
	assert_int_equal(c->finished, 2);
	for (int n = 1; n <= 2; n++) {
		assert_int_equal(c->res[n].result, YJ_DELIVERY_OK);
		assert_string_equal(c->res[n].detail, "acknowledged");
		assert_string_equal(c->res[n].address, "yjn1:127.0.0.1");
	}
	assert_string_equal(c->pos_key, "out_yjn1." T_A);
	assert_string_equal(c->pos_val, "2");
	/* A repeated or older ACK changes nothing. */
	t_ack(s, "1");
	t_spin(c, 20);
	assert_int_equal(c->finished, 2);
	assert_int_equal(c->pos_puts, 1);
	t_ack(s, "5");
	t_expect_note(c, s, 6);
	t_until_finished(c, 5);
	assert_string_equal(c->pos_val, "5");
}

/* HELLO's cursor: what is at or below it was had before (our crash lost the commit). */
static void test_hello_cursor_completes_held(void **state)
{
	struct t_ctx *c = *state;
	/* The committed cursor, as a restart finds it. */
	snprintf(c->pos_key, sizeof(c->pos_key), "out_yjn1." T_A);
	strcpy(c->pos_val, "2");
	c->pos_len = 1;
	t_start(c);
	assert_int_equal(t_rcpt(c, T_A)->acked, 2);
	for (uint64_t n = 3; n <= 8; n++)
		t_deliver(c, n);
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "5");
	t_expect_note(c, s, 6);
	t_expect_note(c, s, 7);
	t_expect_note(c, s, 8);
	assert_int_equal(c->finished, 3);
	for (int n = 3; n <= 5; n++) {
		assert_int_equal(c->res[n].calls, 1);
		assert_int_equal(c->res[n].result, YJ_DELIVERY_OK);
	}
	assert_string_equal(c->pos_val, "5");
	/* Beyond anything sent: refused, the subscriber's state is not ours. */
	void *s2 = t_client(c, 0, 0);
	t_hello(s2, T_A, "9");
	t_expect_error(c, s2, "cursor ahead");
	assert_true(t_rcpt(c, T_A)->connected);
}

static void test_errors(void **state)
{
	struct t_ctx *c = *state;
	t_start(c);
	static const char *const bad_numbers[] = { "", "-1", "1a", " 1", "+1", "123456789012345678901" };
	struct {
		const char *f[6];
		const char *reason;
	} cases[] = {
		{ { "YJN1", "HELLO", "children_services:E99999999", "0" }, "unknown recipient" },
		{ { "YJN1", "HELLO", T_B, "0" }, "transport is not zmq" },
		{ { "YJN1", "HELLO", T_A }, "four frames" },
		{ { "YJN1", "HELLO", T_A, "0", "x" }, "four frames" },
		{ { "YJN2", "HELLO", T_A, "0" }, "frame 0 must be YJN1" },
		{ { "YJN1" }, "no command" },
		{ { "YJN1", "BYE" }, "unknown command" },
		{ { "YJN1", "ACK", "1" }, "ACK before HELLO" },
		{ { "YJN1", "ACK" }, "three frames" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *s = t_client(c, 0, 0);
		const char *const *f = cases[i].f;
		size_t n = 0;
		while (n < 6 && f[n])
			n++;
		for (size_t k = 0; k < n; k++)
			assert_true(zmq_send(s, f[k], strlen(f[k]), k + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
		t_expect_error(c, s, cases[i].reason);
		/* Then nothing more on that connection, not even for a good HELLO. */
		t_hello(s, T_A, "0");
		t_deliver(c, i + 1);
		t_expect_nothing(c, s);
		t_close(c, s);
	}
	for (size_t i = 0; i < sizeof(bad_numbers) / sizeof(bad_numbers[0]); i++) {
		void *s = t_client(c, 0, 0);
		t_hello(s, T_A, bad_numbers[i]);
		t_expect_error(c, s, "decimal");
		t_close(c, s);
	}
	/* An ACK beyond anything sent; the connection's subscription ends. */
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 1);
	t_expect_note(c, s, 2);
	t_expect_note(c, s, 3);
	t_ack(s, "1000");
	t_expect_error(c, s, "ACK of a number never sent");
	t_until(c, t_disconnected, T_A);
	assert_int_equal(((struct s_state *)c->ad)->errors, sizeof(cases) / sizeof(cases[0]) +
							   sizeof(bad_numbers) / sizeof(bad_numbers[0]) + 1);
	/* Nothing completed by any of it. */
	assert_int_equal(c->finished, 0);
	/* A good subscriber is served all along. */
	void *good = t_client(c, 0, 0);
	t_hello(good, T_A, "0");
	t_expect_note(c, good, 1);
}

static void test_newer_connection_wins(void **state)
{
	struct t_ctx *c = *state;
	t_start(c);
	t_deliver(c, 1);
	t_deliver(c, 2);
	void *old = t_client(c, 0, 0), *new = t_client(c, 0, 0);
	t_hello(old, T_A, "0");
	t_expect_note(c, old, 1);
	t_expect_note(c, old, 2);
	t_ack(old, "1");
	t_until_finished(c, 1);
	t_hello(new, T_A, "1");
	t_expect_note(c, new, 2);
	t_expect_error(c, old, "replaced");
	/* What the older says now is dropped. */
	t_ack(old, "2");
	t_spin(c, 50);
	assert_int_equal(c->finished, 1);
	t_ack(new, "2");
	t_until_finished(c, 2);
	/* The same connection saying HELLO again resynchronises, from its cursor. */
	t_deliver(c, 3);
	t_expect_note(c, new, 3);
	t_hello(new, T_A, "2");
	t_expect_note(c, new, 3);
}

/* Never inside deliver(); numbers below those sent are never sent out of
 * order, and fail once a cursor passes them. */
static void test_late_jobs(void **state)
{
	struct t_ctx *c = *state;
	c->rs.window = 10;
	t_start(c);
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_until(c, t_connected, T_A);
	t_deliver(c, 10);
	t_deliver(c, 12);
	t_expect_note(c, s, 10);
	t_expect_note(c, s, 12);
	t_ack(s, "10");
	t_until_finished(c, 1);
	/* At or below the cursor: it can never be taken; said from the tick, not from deliver. */
	t_deliver(c, 4);
	assert_int_equal(c->res[4].calls, 0);
	/* Between the cursor and the last sent: held, not sent out of order. */
	t_deliver(c, 11);
	t_expect_nothing(c, s);
	t_until_finished(c, 2);
	assert_int_equal(c->res[4].result, YJ_DELIVERY_FATAL);
	assert_non_null(strstr(c->res[4].detail, "only increase"));
	assert_int_equal(c->res[11].calls, 0);
	t_deliver(c, 13);
	t_expect_note(c, s, 13);
	/* The cursor passes the late one: it fails for good; the rest is delivered. */
	t_ack(s, "13");
	t_until_finished(c, 5);
	assert_int_equal(c->res[11].result, YJ_DELIVERY_FATAL);
	assert_non_null(strstr(c->res[11].detail, "cursor passed it"));
	assert_int_equal(c->res[12].result, YJ_DELIVERY_OK);
	assert_int_equal(c->res[13].result, YJ_DELIVERY_OK);
	/* Handed over with no subscriber, below what was sent: the next HELLO's cursor decides. */
	t_close(c, s);
	t_until(c, t_disconnected, T_A);
	t_deliver(c, 8);
	t_deliver(c, 14);
	s = t_client(c, 0, 0);
	t_hello(s, T_A, "13");
	t_expect_note(c, s, 14);
	t_until_finished(c, 6);
	assert_int_equal(c->res[8].result, YJ_DELIVERY_FATAL);
	/* ... and a late one above a (reset) cursor simply goes, in order. */
	t_close(c, s);
	t_until(c, t_disconnected, T_A);
	t_deliver(c, 9);
	s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 9);
	t_expect_note(c, s, 14);
}

/* A subscriber that does not read: its pipe fills (EAGAIN), the notes wait
 * here, and all of them go, in order, once it reads. */
static void test_full_pipe_waits_and_resumes(void **state)
{
	struct t_ctx *c = *state;
	const size_t n = 1500, size = 16384;
	c->rs.window = 100000;
	c->body = malloc(size + 1);
	assert_non_null(c->body);
	memset(c->body, 'j', size);
	c->body[size] = '\0';
	t_start(c);
	void *s = t_client(c, 1, 4096);
	t_hello(s, T_A, "0");
	t_until(c, t_connected, T_A);
	for (uint64_t k = 1; k <= n; k++)
		t_deliver(c, k);
	t_spin(c, 100);
	struct s_rcpt *rc = t_rcpt(c, T_A);
	assert_true(rc->blocked);
	assert_true(rc->n_sent < n);
	assert_int_equal(rc->n_held, n);
	for (uint64_t k = 1; k <= n; k++)
		t_expect_note(c, s, k);
	assert_int_equal(t_rcpt(c, T_A)->n_sent, n);
	t_ack(s, "1500");
	t_until_finished(c, n);
}

/* A disconnect is seen (monitor); the next connection gets what was not acknowledged. */
static void test_disconnect_and_resume(void **state)
{
	struct t_ctx *c = *state;
	t_start(c);
	t_deliver(c, 1);
	t_deliver(c, 2);
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 1);
	t_expect_note(c, s, 2);
	t_close(c, s);
	t_until(c, t_disconnected, T_A);
	assert_int_equal(t_rcpt(c, T_A)->n_sent, 0);
	s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 1);
	t_expect_note(c, s, 2);
	/* An ACK sent just before the connection went still counts. */
	int linger = 2000;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	t_ack(s, "2");
	t_close(c, s);
	t_until_finished(c, 2);
	assert_int_equal(c->res[2].result, YJ_DELIVERY_OK);
	assert_string_equal(c->pos_val, "2");
}

/* drain: no new jobs, ACKs still count; destroy: held jobs abandoned without done. */
static void test_drain_and_destroy(void **state)
{
	struct t_ctx *c = *state;
	t_start(c);
	t_deliver(c, 1);
	t_deliver(c, 2);
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 1);
	t_expect_note(c, s, 2);
	yj_adapter_out_yjn1.drain(c->ad);
	t_deliver_to(c, T_A, 3, YJ_ESHUTDOWN);
	t_ack(s, "1");
	t_until_finished(c, 1);
	/* teardown destroys it with job 2 held, and checks that done is not called */
}

/* A reload that takes the recipient off zmq gives its jobs back (RETRY) and ends its subscription. */
static void test_reload_releases(void **state)
{
	struct t_ctx *c = *state;
	t_start(c);
	t_deliver(c, 1);
	t_deliver(c, 2);
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 1);
	c->rs.window = 5;
	assert_int_equal(yj_adapter_out_yjn1.reload(c->ad, &c->cfg), 0);
	assert_int_equal(c->finished, 0);
	c->rcpt[0].transport = "webhook";
	assert_int_equal(yj_adapter_out_yjn1.reload(c->ad, &c->cfg), 0);
	assert_int_equal(c->finished, 2);
	assert_int_equal(c->res[1].result, YJ_DELIVERY_RETRY);
	assert_int_equal(c->res[2].result, YJ_DELIVERY_RETRY);
	t_expect_note(c, s, 2);
	t_expect_error(c, s, "no longer served");
	assert_null(t_rcpt(c, T_A));
}

static void test_command_and_metrics(void **state)
{
	struct t_ctx *c = *state;
	struct yj_prom p;
	char *out = NULL;
	t_start(c);
	for (uint64_t n = 1; n <= 4; n++)
		t_deliver(c, n);
	void *s = t_client(c, 0, 0);
	t_hello(s, T_A, "0");
	t_expect_note(c, s, 1);
	t_ack(s, "1");
	t_until_finished(c, 1);
	assert_int_equal(yj_adapter_out_yjn1.run_command(c->ad, "{}", &out), 0);
	cJSON *o = cJSON_Parse(out);
	free(out);
	assert_non_null(o);
	const cJSON *list = cJSON_GetObjectItem(o, "subscribers");
	assert_int_equal(cJSON_GetArraySize(list), 1); /* B is not zmq */
	const cJSON *e = cJSON_GetArrayItem(list, 0);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "recipient")), T_A);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "connected")));
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "last_acked")), 1);
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "in_flight")), 3);
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "held")), 0);
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "lag")), 3);
	assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "window")), 3);
	cJSON_Delete(o);
	yj_prom_init(&p);
	yj_adapter_out_yjn1.metrics(c->ad, &p);
	assert_int_equal(p.rc, 0);
	assert_non_null(strstr(p.buf, "# TYPE yjlink_subscriber_lag gauge\n"));
	assert_non_null(strstr(p.buf, "yjlink_subscriber_lag{recipient=\"" T_A "\"} 3\n"));
	assert_non_null(strstr(p.buf, "yjlink_subscriber_connected{recipient=\"" T_A "\"} 1\n"));
	assert_null(strstr(p.buf, T_B));
	yj_prom_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_table),
		cmocka_unit_test_setup_teardown(test_hello_window_ack, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_hello_cursor_completes_held, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_errors, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_newer_connection_wins, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_late_jobs, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_full_pipe_waits_and_resumes, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_and_resume, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_drain_and_destroy, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_reload_releases, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_command_and_metrics, t_setup, t_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
