/* test_out_webhook.c: the webhook adapter (adapters/out_webhook.c) and the
 * libcurl multi it runs on (daemon/curlm.c), against a real HTTP receiver.
 *
 * The receiver is tests/integration/http_receiver.py under /usr/bin/python3,
 * one per test, listening on a port the kernel picked; it logs every request
 * as a JSON line, which the tests read back. Everything is driven by the
 * real yj_loop: a test starts deliveries, runs the loop until the expected
 * number of results came back (or a safety timer fires), then looks.
 *
 * The adapter is not part of yjcore, so its source is compiled in here; that
 * also gives the tests its static helpers (the signature, the URL redaction)
 * and its recipient settings struct, which the tests fill by hand as the
 * core's config loader would from the adapter's table.
 */
#include "../../adapters/out_webhook.c"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"

#define T_SECRET "s3cret-for-tests"
#define T_MAX 128               /* most deliveries one test waits for */
#define T_SAFETY_MS 20000       /* a test that hangs fails instead */

/* One result the adapter reported. */
struct t_result {
	int seen;                       /* done was called for it */
	int calls;                      /* how often: must end at 1 */
	enum yj_delivery_result result; /* what it said */
	char detail[512];               /* copy of detail */
	char address[512];              /* copy of address */
	int64_t at_ms;                  /* loop clock when done ran */
};

struct t_ctx {
	pid_t rx_pid;                   /* the receiver, 0 when none */
	int rx_port;                    /* where it listens */
	char log_path[64];              /* its request log */
	char url[256];                  /* webhook.url given to the recipient */
	struct yj_loop *loop;           /* owned */
	struct yj_curlm *curlm;         /* owned */
	struct yj_config cfg;           /* hand-filled, only what the adapter reads */
	struct yj_recipient rcpt;       /* the one recipient */
	struct s_recipient rs;          /* its webhook settings, as the loader would fill them */
	struct yj_core_api api;         /* what the adapter is given */
	void *ad;                       /* adapter state */
	struct t_result res[T_MAX];     /* by delivery index */
	size_t expected;                /* stop the loop once this many came back */
	size_t finished;                /* how many came back */
	int timed_out;                  /* the safety timer fired */
	size_t chain_left;              /* test_chain: deliveries still to start from done */
	char ids[T_MAX][48];            /* notification or digest ids, by index */
	const char *body;               /* the JSON every delivery sends */
	enum yj_message_kind kind;      /* what s_deliver_i sends: a notification unless a test says */
	size_t ticks;                   /* a periodic timer's firings during a run */
};

/* What done's arg points at: the context and the delivery's index. */
struct t_tag {
	struct t_ctx *ctx;              /* the test it belongs to */
	size_t i;                       /* index into ctx->res */
};
static struct t_tag s_tags[T_MAX];

static const char s_json[] =
	"{\"notification_id\":\"tvp-000000000042\",\"kind\":\"lac_in_custody\","
	"\"recipient\":\"children_services:E09000033\",\"created_at\":\"2026-11-21T23:14:02Z\","
	"\"rule\":\"lac_in_custody\",\"legal_basis\":\"Crime and Disorder Act 1998 s.115\","
	"\"classification\":\"OFFICIAL-SENSITIVE\",\"event\":{\"seq\":42,\"feed\":\"custody\"}}";

/* ------------------------------------------------------------ receiver */

/* The repository root: from CTest's environment, else from where this file
 * was compiled (a manual run from the build directory). */
static const char *s_source_dir(void)
{
	static char dir[1024];
	const char *d = getenv("YJ_SOURCE_DIR");
	if (d && *d)
		return d;
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	char *cut = strstr(dir, "/tests/unit/");
	if (cut)
		*cut = '\0';
	return dir;
}

/* Start http_receiver.py answering mode (and logging signature checks with
 * secret, if not NULL); wait for its READY line. */
static void s_rx_start(struct t_ctx *c, const char *mode)
{
	char script[1024];
	int pfd[2];

	if (snprintf(script, sizeof(script), "%.900s/tests/integration/http_receiver.py", s_source_dir()) >= (int)sizeof(script))
		fail_msg("source dir path too long");
	strcpy(c->log_path, "/tmp/yj_wh_log_XXXXXX");
	int lfd = mkstemp(c->log_path);
	assert_true(lfd >= 0);
	close(lfd);
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl("/usr/bin/python3", "python3", script, "--port", "0", "--mode", mode, "--log", c->log_path,
		      "--secret", T_SECRET, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	c->rx_pid = pid;

	char line[64] = "";
	size_t len = 0;
	int64_t deadline = yj_loop_now_ms() + 15000;
	while (!strchr(line, '\n') && len < sizeof(line) - 1) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - yj_loop_now_ms();
		assert_true(left > 0);
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t n = read(pfd[0], line + len, sizeof(line) - 1 - len);
		assert_true(n > 0);
		len += (size_t)n;
		line[len] = '\0';
	}
	close(pfd[0]);
	assert_int_equal(sscanf(line, "READY %d", &c->rx_port), 1);
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d/hook", c->rx_port);
}

static void s_rx_stop(struct t_ctx *c)
{
	if (c->rx_pid > 0) {
		kill(c->rx_pid, SIGTERM);
		int st;
		/* The receiver is a test helper: if it does not stop within 10 s,
		 * say so and kill it rather than hang the test. */
		int64_t deadline = yj_loop_now_ms() + 10000;
		pid_t r;
		while ((r = waitpid(c->rx_pid, &st, WNOHANG)) == 0 && yj_loop_now_ms() < deadline)
			usleep(10000);
		if (r == 0) {
			fprintf(stderr, "test_out_webhook: the HTTP receiver ignored SIGTERM for 10 s: killed\n");
			kill(c->rx_pid, SIGKILL);
			while (waitpid(c->rx_pid, &st, 0) < 0 && errno == EINTR)
				;
		}
		c->rx_pid = 0;
	}
	if (c->log_path[0]) {
		unlink(c->log_path);
		c->log_path[0] = '\0';
	}
}

/* The receiver's log, one parsed JSON object per request. */
static size_t s_rx_log(struct t_ctx *c, cJSON **out, size_t max)
{
	FILE *f = fopen(c->log_path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0;

	assert_non_null(f);
	while (getline(&line, &cap, f) > 0 && n < max) {
		out[n] = cJSON_Parse(line);
		assert_non_null(out[n]);
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

/* A request header, whatever case the client used. */
static const char *s_header(const cJSON *req, const char *name)
{
	const cJSON *h;
	cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(req, "headers"))
	{
		if (!strcasecmp(h->string, name))
			return cJSON_GetStringValue(h);
	}
	return NULL;
}

/* A port nothing listens on: bound by us, then closed. */
static int s_dead_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* ------------------------------------------------------------ the core's side */

static const struct yj_config *s_api_config(void *core)
{
	return &((struct t_ctx *)core)->cfg;
}

static void s_deliver_i(struct t_ctx *c, size_t i, int want_rc);

static void t_on_done(void *arg, enum yj_delivery_result result, const char *detail, const char *address)
{
	struct t_tag *tag = arg;
	struct t_ctx *c = tag->ctx;
	struct t_result *r = &c->res[tag->i];

	r->calls++;
	r->seen = 1;
	r->result = result;
	snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "(null)");
	snprintf(r->address, sizeof(r->address), "%s", address ? address : "(null)");
	r->at_ms = yj_loop_now_ms();
	c->finished++;
	/* A done that starts the next delivery, as the outbox does. */
	if (c->chain_left > 0) {
		c->chain_left--;
		s_deliver_i(c, tag->i + 1, 0);
	}
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

static int s_on_tick(struct yj_loop *loop, void *arg)
{
	(void)loop;
	((struct t_ctx *)arg)->ticks++;
	return 0;
}

#define T_WINDOW_FROM "2026-11-21T07:00:00Z"
#define T_WINDOW_TO "2026-11-22T07:00:00Z"

/* Start delivery i of c->body to the recipient, a notification or (c->kind)
 * a digest; check deliver()'s answer. */
static void s_deliver_i(struct t_ctx *c, size_t i, int want_rc)
{
	int digest = c->kind == YJ_MESSAGE_DIGEST;
	assert_true(i < T_MAX);
	if (digest)
		snprintf(c->ids[i], sizeof(c->ids[i]), "tvp-digest-milton-keynes-2026-11-%02zu", i + 1);
	else
		snprintf(c->ids[i], sizeof(c->ids[i]), "tvp-%012zu", i + 1);
	s_tags[i] = (struct t_tag){ c, i };
	/* The message and its strings live on this stack frame only: the
	 * adapter must have copied what it needs when deliver returns. */
	char id[48], from[32] = T_WINDOW_FROM, to[32] = T_WINDOW_TO, *body = strdup(c->body);
	assert_non_null(body);
	strcpy(id, c->ids[i]);
	struct yj_message m = {
		.kind = c->kind, .id = id, .kind_name = digest ? "daily_digest" : "lac_in_custody",
		.recipient = &c->rcpt, .settings = &c->rs, .json = body, .json_len = strlen(body),
	};
	if (digest) {
		m.date = "2026-11-22";
		m.window_from = from;
		m.window_to = to;
		m.children = 2;
		m.events = 3;
	}
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[i]), want_rc);
	memset(body, 'X', strlen(body));
	memset(id, 'X', sizeof(id) - 1);
	memset(from, 'X', sizeof(from) - 1);
	memset(to, 'X', sizeof(to) - 1);
	free(body);
}

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
	assert_int_equal(c->finished, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c->res[i].calls, 1);
}

static int t_setup(void **state)
{
	struct t_ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->loop = yj_loop_new();
	assert_non_null(c->loop);
	assert_int_equal(yj_curlm_new(c->loop, &c->curlm), 0);
	c->rs = (struct s_recipient){ .url = c->url, .secret_file = T_SECRET, .secret = "", .timeout_ms = 5000 };
	c->rcpt = (struct yj_recipient){
		.id = "children_services:E09000033",
		.kind = YJ_RCPT_CHILDREN_SERVICES,
		.name = "Milton Keynes children's services",
		.transport = "webhook",
		.output_settings = &c->rs,
	};
	c->cfg = (struct yj_config){ .deployment_id = "tvp", .recipients = &c->rcpt, .n_recipients = 1 };
	c->api = (struct yj_core_api){ .core = c, .loop = c->loop, .config = s_api_config, .curlm = c->curlm };
	c->body = s_json;
	assert_int_equal(yj_adapter_out_webhook.init(&c->api, &c->ad), 0);
	assert_int_equal(yj_adapter_out_webhook.start(c->ad), 0);
	*state = c;
	return 0;
}

static int t_teardown(void **state)
{
	struct t_ctx *c = *state;
	/* The daemon's order: adapters first, then the multi, then the loop. */
	yj_adapter_out_webhook.destroy(&c->ad);
	assert_null(c->ad);
	yj_curlm_destroy(&c->curlm);
	assert_null(c->curlm);
	yj_loop_destroy(&c->loop);
	s_rx_stop(c);
	free(c);
	return 0;
}

/* One delivery against a receiver answering mode. */
static void s_one(struct t_ctx *c, const char *mode, enum yj_delivery_result want, const char *want_detail)
{
	s_rx_start(c, mode);
	s_deliver_i(c, 0, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, want);
	if (want_detail)
		assert_string_equal(c->res[0].detail, want_detail);
	assert_string_equal(c->res[0].address, c->url);
	assert_int_equal(yj_curlm_running(c->curlm), 0);
}

/* ------------------------------------------------------------ tests */

/* "sha256=<hex>" of body under secret, by libsodium directly (not s_sign). */
static void s_want_sig(const char *secret, const char *body, size_t len, char want[7 + 2 * crypto_auth_hmacsha256_BYTES + 1])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state h;
	crypto_auth_hmacsha256_init(&h, (const unsigned char *)secret, strlen(secret));
	crypto_auth_hmacsha256_update(&h, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&h, mac);
	strcpy(want, "sha256=");
	sodium_bin2hex(want + 7, 2 * sizeof(mac) + 1, mac, sizeof(mac));
}

/* RFC 4231 test cases 2 and 6: the signature is standard HMAC-SHA256, also
 * with a key longer than SHA-256's block (receivers use stock libraries). */
static void test_signature_vectors(void **state)
{
	char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	char key[132];
	(void)state;

	assert_true(sodium_init() >= 0);
	const char *d2 = "what do ya want for nothing?";
	assert_int_equal(s_sign("Jefe", d2, strlen(d2), hex), 0);
	assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(key, 0xaa, 131);
	key[131] = '\0';
	const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";
	assert_int_equal(s_sign(key, d6, strlen(d6), hex), 0);
	assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_ok_headers_signature(void **state)
{
	struct t_ctx *c = *state;
	cJSON *log[4] = { 0 };

	s_one(c, "200", YJ_DELIVERY_OK, "HTTP 200");
	assert_int_equal(s_rx_log(c, log, 4), 1);
	const cJSON *req = log[0];
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(req, "method")), "POST");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(req, "path")), "/hook");
	const char *body = cJSON_GetStringValue(cJSON_GetObjectItem(req, "body"));
	assert_non_null(body);
	assert_string_equal(body, s_json);
	assert_string_equal(s_header(req, "Content-Type"), "application/json");
	assert_string_equal(s_header(req, "X-Yjlink-Notification-Id"), "tvp-000000000001");
	/* A notification carries none of a digest's headers. */
	assert_null(s_header(req, "X-Yjlink-Digest-Id"));
	assert_null(s_header(req, "X-Yjlink-Window"));
	/* Our own recomputation over the body as received... */
	const char *sig = s_header(req, "X-Yjlink-Signature");
	assert_non_null(sig);
	char want[7 + 2 * crypto_auth_hmacsha256_BYTES + 1];
	s_want_sig(T_SECRET, body, strlen(body), want);
	assert_string_equal(sig, want);
	/* ...and Python's hmac module, which knows nothing of libsodium. */
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(req, "signature_ok")));
	cJSON_Delete(log[0]);
}

/* A digest (interfaces.md §3): one POST of its object, with the digest's
 * own headers and no notification id, signed over exactly those bytes. */
static void test_digest_headers_signature(void **state)
{
	struct t_ctx *c = *state;
	static const char digest[] =
		"{\"digest_id\":\"tvp-digest-milton-keynes-2026-11-01\",\"recipient\":\"yjs:milton-keynes\","
		"\"date\":\"2026-11-22\",\"window\":{\"from\":\"" T_WINDOW_FROM "\",\"to\":\"" T_WINDOW_TO "\"},"
		"\"summary\":{\"children\":2,\"events\":3},\"rows\":[{\"section\":\"custody\",\"seq\":\"42\","
		"\"given_name\":\"Zo\u00eb\"},{\"section\":\"arrest\",\"seq\":\"43\",\"given_name\":\"J\u00f6\"}]}";
	cJSON *log[2] = { 0 };
	char want[7 + 2 * crypto_auth_hmacsha256_BYTES + 1];

	c->kind = YJ_MESSAGE_DIGEST;
	c->body = digest;
	s_one(c, "200", YJ_DELIVERY_OK, "HTTP 200");
	assert_int_equal(s_rx_log(c, log, 2), 1);
	const cJSON *req = log[0];
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(req, "method")), "POST");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(req, "body")), digest);
	assert_string_equal(s_header(req, "Content-Type"), "application/json");
	assert_string_equal(s_header(req, "X-Yjlink-Digest-Id"), "tvp-digest-milton-keynes-2026-11-01");
	assert_string_equal(s_header(req, "X-Yjlink-Window"), T_WINDOW_FROM "/" T_WINDOW_TO);
	assert_null(s_header(req, "X-Yjlink-Notification-Id"));
	/* The signature is over the exact bytes we were handed, which are the bytes received. */
	s_want_sig(T_SECRET, digest, strlen(digest), want);
	assert_string_equal(s_header(req, "X-Yjlink-Signature"), want);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(req, "signature_ok")));
	cJSON_Delete(log[0]);
}

/* The legacy inline secret signs when there is no secret_file; a key read
 * from secret_file wins over an inline one. */
static void test_secret_sources(void **state)
{
	struct t_ctx *c = *state;
	cJSON *log[4] = { 0 };

	s_rx_start(c, "200");
	c->rs.secret_file = "";
	c->rs.secret = T_SECRET;
	s_deliver_i(c, 0, 0);
	c->rs.secret_file = T_SECRET;
	c->rs.secret = "not-the-key";
	s_deliver_i(c, 1, 0);
	s_run(c, 2);
	assert_int_equal(s_rx_log(c, log, 4), 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(c->res[i].result, YJ_DELIVERY_OK);
		/* The receiver checks with T_SECRET: both were signed with it. */
		assert_true(cJSON_IsTrue(cJSON_GetObjectItem(log[i], "signature_ok")));
		cJSON_Delete(log[i]);
	}
}

/* One problem report, as the loader's diag would print it. */
struct t_diag {
	int n;                          /* reports so far */
	char text[16][512];             /* "file:line: message" each */
};

static void s_on_report(void *arg, const char *file, int line, const char *msg)
{
	struct t_diag *d = arg;
	if (d->n < 16)
		snprintf(d->text[d->n], sizeof(d->text[d->n]), "%s:%d: %s", file, line, msg);
	d->n++;
}

/* check_recipient: a URL we would POST to, and a key, at the recipient's file:line. */
static void test_check_recipient(void **state)
{
	struct t_ctx *c = *state;
	struct t_diag td = { 0 };
	struct yj_diag diag = { .report = s_on_report, .arg = &td };
	struct yj_setting_site at = { .diag = &diag, .file = "/etc/yjlink/yjlinkd.conf", .line = 42 };
	struct s_recipient rs = { .url = "https://hooks.mk.example.gov.uk/yjlink", .secret_file = T_SECRET, .secret = "",
				  .timeout_ms = 5000 };

	assert_non_null(yj_adapter_out_webhook.conf.check_recipient);
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	rs.url = "http://127.0.0.1:8080/hook";
	rs.secret_file = "";
	rs.secret = "inline";
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 0);
	assert_int_equal(diag.count, 0);

	/* The key from a file from here on: an inline one is for loopback only. */
	rs.secret = "";
	rs.secret_file = T_SECRET;
	rs.url = "ftp://hooks.mk.example.gov.uk/yjlink";
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 1);
	assert_string_equal(td.text[0], "/etc/yjlink/yjlinkd.conf:42: recipient 'children_services:E09000033': "
					"transport webhook needs webhook.url (http:// or https://)");
	/* "http" alone is not enough (today's check took any "http..." prefix). */
	rs.url = "httpx://hooks.example";
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 2);
	rs.url = NULL;
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 3);

	rs.url = "https://hooks.mk.example.gov.uk/yjlink";
	rs.secret = "";
	rs.secret_file = "";
	at.line = 7;
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 4);
	assert_string_equal(td.text[3], "/etc/yjlink/yjlinkd.conf:7: recipient 'children_services:E09000033': "
					"transport webhook needs webhook.secret_file (or webhook.secret) giving a non-empty key");
	rs.secret = NULL;
	rs.secret_file = NULL;
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 5);
	/* No settings at all: both problems, no crash. */
	yj_adapter_out_webhook.conf.check_recipient(NULL, NULL, &at);
	assert_int_equal(td.n, 7);
	assert_non_null(strstr(td.text[5], "recipient '?'"));
	assert_int_equal(diag.count, 7);
	/* Plain http:// only to this machine, unless the recipient says insecure. */
	rs.secret_file = T_SECRET;
	rs.url = "http://hooks.mk.example.gov.uk/yjlink";
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 8);
	assert_string_equal(td.text[7], "/etc/yjlink/yjlinkd.conf:7: recipient 'children_services:E09000033': webhook.url "
					"is plain http:// to a host that is not loopback: use https://, or say "
					"webhook.insecure = true");
	rs.insecure = 1;
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	rs.insecure = 0;
	rs.url = "http://localhost:8088/hook";
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 8);
	/* An inline key to a host elsewhere: refused, however the URL is. */
	rs.url = "https://hooks.mk.example.gov.uk/yjlink";
	rs.secret = "inline";
	rs.secret_file = "";
	yj_adapter_out_webhook.conf.check_recipient(&rs, &c->rcpt, &at);
	assert_int_equal(td.n, 9);
	assert_non_null(strstr(td.text[8], "webhook.secret inline is for loopback demos only"));
}

/* The table the core's loader reads, defaults and documents. */
static void test_settings_table(void **state)
{
	const struct yj_adapter *a = &yj_adapter_out_webhook;
	(void)state;

	assert_string_equal(a->conf.name, "out_webhook");
	assert_string_equal(a->conf.transport, "webhook");
	assert_null(a->conf.section);
	assert_int_equal(a->conf.n_settings, 0);
	assert_null(a->conf.check);
	assert_non_null(a->deliver);
	assert_int_equal(a->conf.recipient_settings_size, sizeof(struct s_recipient));
	assert_int_equal(a->conf.n_recipient_settings, 5);
	const struct yj_setting *t = a->conf.recipient_settings;
	assert_int_equal(t[0].type, YJ_SETTING_STR);
	assert_string_equal(t[0].name, "webhook.url");
	assert_int_equal(t[0].offset, offsetof(struct s_recipient, url));
	assert_null(t[0].def);
	assert_int_equal(t[1].type, YJ_SETTING_SECRET_FILE);
	assert_string_equal(t[1].name, "webhook.secret_file");
	assert_int_equal(t[1].offset, offsetof(struct s_recipient, secret_file));
	assert_string_equal(t[1].def, "");
	assert_int_equal(t[2].type, YJ_SETTING_STR);
	assert_string_equal(t[2].name, "webhook.secret");
	assert_int_equal(t[2].offset, offsetof(struct s_recipient, secret));
	assert_string_equal(t[2].def, "");
	assert_int_equal(t[3].type, YJ_SETTING_INT);
	assert_string_equal(t[3].name, "webhook.timeout_ms");
	assert_int_equal(t[3].offset, offsetof(struct s_recipient, timeout_ms));
	assert_string_equal(t[3].def, "5000");
	assert_int_equal(t[3].min, 100);
	assert_int_equal(t[3].max, 600000);
	for (size_t i = 0; i < a->conf.n_recipient_settings; i++) {
		assert_non_null(t[i].doc);
		assert_true(strlen(t[i].doc) > 10);
	}
}

/* A body over 1 KiB: sent whole at once (no "Expect: 100-continue" wait,
 * which stalls a second on receivers that never answer it) and signed. */
static void test_big_body(void **state)
{
	struct t_ctx *c = *state;
	cJSON *log[2] = { 0 };
	size_t n = 64 * 1024;
	char *big = malloc(n + 32);

	assert_non_null(big);
	strcpy(big, "{\"pad\":\"");
	memset(big + 8, 'a', n);
	strcpy(big + 8 + n, "\"}");
	c->body = big;
	s_one(c, "200", YJ_DELIVERY_OK, "HTTP 200");
	assert_int_equal(s_rx_log(c, log, 2), 1);
	assert_null(s_header(log[0], "Expect"));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(log[0], "body")), big);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(log[0], "signature_ok")));
	cJSON_Delete(log[0]);
	free(big);
}

static void test_500_retry(void **state) { s_one(*state, "500", YJ_DELIVERY_RETRY, "HTTP 500"); }
static void test_503_retry(void **state) { s_one(*state, "503", YJ_DELIVERY_RETRY, "HTTP 503"); }
static void test_429_retry(void **state) { s_one(*state, "429", YJ_DELIVERY_RETRY, "HTTP 429"); }
static void test_408_retry(void **state) { s_one(*state, "408", YJ_DELIVERY_RETRY, "HTTP 408"); }
static void test_400_fatal(void **state) { s_one(*state, "400", YJ_DELIVERY_FATAL, "HTTP 400"); }
static void test_404_fatal(void **state) { s_one(*state, "404", YJ_DELIVERY_FATAL, "HTTP 404"); }
static void test_204_ok(void **state) { s_one(*state, "204", YJ_DELIVERY_OK, "HTTP 204"); }

/* A redirect is not followed: personal data goes only where configured. */
static void test_302_fatal_not_followed(void **state)
{
	struct t_ctx *c = *state;
	cJSON *log[4] = { 0 };

	s_one(c, "302", YJ_DELIVERY_FATAL, "HTTP 302");
	assert_int_equal(s_rx_log(c, log, 4), 1);
	cJSON_Delete(log[0]);
}

/* The connection closes without an answer: the receiver may or may not
 * have it, so the core must send again. */
static void test_close_retry(void **state)
{
	struct t_ctx *c = *state;
	s_one(c, "close", YJ_DELIVERY_RETRY, NULL);
	assert_true(strlen(c->res[0].detail) > 0);
}

static void test_refused_retry(void **state)
{
	struct t_ctx *c = *state;

	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d/hook", s_dead_port());
	s_deliver_i(c, 0, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_RETRY);
	/* curl's own words, not a bare code. */
	assert_non_null(strstr(c->res[0].detail, "onnect"));
	assert_string_equal(c->res[0].address, c->url);
}

/* A receiver that never answers costs one timeout, not a blocked loop. */
static void test_hang_times_out(void **state)
{
	struct t_ctx *c = *state;

	c->rs.timeout_ms = 500;
	s_rx_start(c, "hang");
	int64_t t0 = yj_loop_now_ms();
	int64_t tick = yj_loop_timer(c->loop, 50, 50, s_on_tick, c);
	assert_true(tick > 0);
	s_deliver_i(c, 0, 0);
	s_run(c, 1);
	yj_loop_timer_cancel(c->loop, tick);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_RETRY);
	int64_t took = c->res[0].at_ms - t0;
	/* Not before the timeout; the upper bound is only "not stuck" (the
	 * machines are shared: no tight timing asserts). */
	assert_true(took >= 450);
	assert_true(took < 10000);
	/* The loop kept turning meanwhile. */
	assert_true(c->ticks >= 2);
	assert_non_null(strstr(c->res[0].detail, "imed out"));
}

/* 100 at once: deliver() never waits for the network, and all finish. */
static void test_concurrent_100(void **state)
{
	struct t_ctx *c = *state;
	cJSON *log[T_MAX] = { 0 };
	enum { N = 100 };

	s_rx_start(c, "200");
	for (size_t i = 0; i < N; i++)
		s_deliver_i(c, i, 0);
	/* Nothing can have finished yet: only the loop runs transfers. */
	assert_int_equal(c->finished, 0);
	assert_int_equal(yj_curlm_running(c->curlm), N);
	s_run(c, N);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(c->res[i].result, YJ_DELIVERY_OK);
		assert_string_equal(c->res[i].detail, "HTTP 200");
	}
	assert_int_equal(yj_curlm_running(c->curlm), 0);
	/* Each id arrived exactly once. */
	size_t n = s_rx_log(c, log, T_MAX);
	assert_int_equal(n, N);
	int seen[N] = { 0 };
	for (size_t i = 0; i < n; i++) {
		const char *id = s_header(log[i], "X-Yjlink-Notification-Id");
		unsigned long k = 0;
		assert_non_null(id);
		assert_int_equal(sscanf(id, "tvp-%lu", &k), 1);
		assert_true(k >= 1 && k <= N);
		seen[k - 1]++;
		assert_true(cJSON_IsTrue(cJSON_GetObjectItem(log[i], "signature_ok")));
		cJSON_Delete(log[i]);
	}
	for (size_t i = 0; i < N; i++)
		assert_int_equal(seen[i], 1);
}

/* done starts the next transfer from inside the multi's completion pass. */
static void test_chain_from_done(void **state)
{
	struct t_ctx *c = *state;
	enum { N = 20 };

	s_rx_start(c, "200");
	c->chain_left = N - 1;
	s_deliver_i(c, 0, 0);
	s_run(c, N);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(c->res[i].result, YJ_DELIVERY_OK);
	assert_int_equal(yj_curlm_running(c->curlm), 0);
}

/* Credentials in the URL are used but never logged or audited. */
static void test_address_redacted(void **state)
{
	struct t_ctx *c = *state;
	cJSON *log[2] = { 0 };
	char plain[256];

	s_rx_start(c, "200");
	snprintf(plain, sizeof(plain), "%s", c->url);
	snprintf(c->url, sizeof(c->url), "http://user:pw@127.0.0.1:%d/hook?token=abc#frag", c->rx_port);
	s_deliver_i(c, 0, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_OK);
	assert_string_equal(c->res[0].address, plain);
	assert_int_equal(s_rx_log(c, log, 2), 1);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(log[0], "path")), "/hook?token=abc");
	assert_non_null(s_header(log[0], "Authorization"));
	cJSON_Delete(log[0]);
}

/* Anything but http(s) is refused by curl, permanently. */
static void test_bad_scheme_fatal(void **state)
{
	struct t_ctx *c = *state;

	snprintf(c->url, sizeof(c->url), "file:///etc/passwd");
	s_deliver_i(c, 0, 0);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_FATAL);
}

/* An empty body is still a POST of exactly that (not of curl's stdin). */
static void test_empty_body(void **state)
{
	struct t_ctx *c = *state;
	cJSON *log[2] = { 0 };

	c->body = "";
	s_one(c, "200", YJ_DELIVERY_OK, "HTTP 200");
	assert_int_equal(s_rx_log(c, log, 2), 1);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(log[0], "body")), "");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(log[0], "signature_ok")));
	cJSON_Delete(log[0]);
}

/* Refused at once (done never called): the core treats it as RETRY. */
static void test_refused_inputs(void **state)
{
	struct t_ctx *c = *state;
	struct yj_message m = { .kind = YJ_MESSAGE_NOTIFICATION, .id = "tvp-1", .recipient = &c->rcpt,
				.settings = &c->rs, .json = "{}", .json_len = 2 };

	/* No key at all: neither the file's nor an inline one. */
	c->rs.secret_file = "";
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	c->rs.secret_file = NULL;
	c->rs.secret = NULL;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	c->rs.secret_file = T_SECRET;
	c->rs.url = NULL;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	c->rs.url = c->url;
	snprintf(c->url, sizeof(c->url), "http://127.0.0.1:1/hook");
	m.settings = NULL;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	m.settings = &c->rs;
	m.id = "tvp-1\r\nX-Evil: 1";
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	m.id = NULL;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	m.id = "tvp-1";
	m.json = NULL;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	m.json = "{}";
	/* A digest needs its window, and the window goes into a header too. */
	m.kind = YJ_MESSAGE_DIGEST;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	m.window_from = T_WINDOW_FROM;
	m.window_to = T_WINDOW_TO "\r\nX-Evil: 1";
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	m.window_to = T_WINDOW_TO;
	m.kind = (enum yj_message_kind)7;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	m.kind = YJ_MESSAGE_NOTIFICATION;
	m.recipient = NULL;
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, &m, t_on_done, &s_tags[0]), YJ_EINVAL);
	assert_int_equal(yj_adapter_out_webhook.deliver(c->ad, NULL, t_on_done, &s_tags[0]), YJ_EINVAL);
	assert_int_equal(yj_curlm_running(c->curlm), 0);
	assert_int_equal(c->finished, 0);
}

/* After drain: new deliveries refused, those under way still finish. */
static void test_drain(void **state)
{
	struct t_ctx *c = *state;

	s_rx_start(c, "200");
	s_deliver_i(c, 0, 0);
	yj_adapter_out_webhook.drain(c->ad);
	s_deliver_i(c, 1, YJ_ESHUTDOWN);
	s_run(c, 1);
	assert_int_equal(c->res[0].result, YJ_DELIVERY_OK);
	assert_false(c->res[1].seen);
}

/* Destroyed with POSTs under way (shutdown): done is never called, nothing
 * leaks (the sanitizer build checks), the multi is destroyed after. */
static void test_destroy_in_flight(void **state)
{
	struct t_ctx *c = *state;

	s_rx_start(c, "hang");
	for (size_t i = 0; i < 5; i++)
		s_deliver_i(c, i, 0);
	/* Let them connect and send, so sockets are in the loop. */
	int64_t t = yj_loop_timer(c->loop, 300, 0, s_on_safety, c);
	assert_true(t > 0);
	assert_int_equal(yj_loop_run(c->loop), 0);
	c->timed_out = 0;
	assert_int_equal(c->finished, 0);
	yj_adapter_out_webhook.destroy(&c->ad);
	assert_null(c->ad);
	/* The multi still runs fine for others after the adapter is gone. */
	assert_int_equal(yj_adapter_out_webhook.init(&c->api, &c->ad), 0);
	c->rs.timeout_ms = 300;
	s_deliver_i(c, 10, 0);
	c->expected = 1;
	int64_t safety = yj_loop_timer(c->loop, T_SAFETY_MS, 0, s_on_safety, c);
	assert_int_equal(yj_loop_run(c->loop), 0);
	yj_loop_timer_cancel(c->loop, safety);
	assert_false(c->timed_out);
	assert_int_equal(c->res[10].result, YJ_DELIVERY_RETRY);
	for (size_t i = 0; i < 5; i++)
		assert_false(c->res[i].seen);
}

/* curlm alone: a raw easy handle, done gets the CURLcode and may clean up. */
static int s_raw_done_calls;
static CURLcode s_raw_result;
static void s_raw_done(void *arg, CURL *easy, CURLcode result)
{
	struct yj_loop *loop = arg;
	s_raw_done_calls++;
	s_raw_result = result;
	curl_easy_cleanup(easy);
	yj_loop_stop(loop);
}

static void test_curlm_raw(void **state)
{
	struct t_ctx *c = *state;

	assert_int_equal(yj_curlm_add(NULL, NULL, s_raw_done, NULL), YJ_EIO);
	s_rx_start(c, "200");
	CURL *e = curl_easy_init();
	assert_non_null(e);
	curl_easy_setopt(e, CURLOPT_URL, c->url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_discard);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	assert_int_equal(yj_curlm_add(c->curlm, e, s_raw_done, c->loop), 0);
	/* Twice is refused by curl: done must not be called for the refusal. */
	assert_int_equal(yj_curlm_add(c->curlm, e, s_raw_done, c->loop), YJ_EIO);
	assert_int_equal(yj_curlm_running(c->curlm), 1);
	int64_t safety = yj_loop_timer(c->loop, T_SAFETY_MS, 0, s_on_safety, c);
	assert_int_equal(yj_loop_run(c->loop), 0);
	yj_loop_timer_cancel(c->loop, safety);
	assert_false(c->timed_out);
	assert_int_equal(s_raw_done_calls, 1);
	assert_int_equal(s_raw_result, CURLE_OK);
	assert_int_equal(yj_curlm_running(c->curlm), 0);
}

/* Destroying the multi with transfers still in it: their done is not called. */
static void test_curlm_destroy_running(void **state)
{
	struct t_ctx *c = *state;
	CURL *e[3];

	s_rx_start(c, "hang");
	s_raw_done_calls = 0;
	for (size_t i = 0; i < 3; i++) {
		e[i] = curl_easy_init();
		assert_non_null(e[i]);
		curl_easy_setopt(e[i], CURLOPT_URL, c->url);
		curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
		assert_int_equal(yj_curlm_add(c->curlm, e[i], s_raw_done, c->loop), 0);
	}
	int64_t t = yj_loop_timer(c->loop, 300, 0, s_on_safety, c);
	assert_true(t > 0);
	assert_int_equal(yj_loop_run(c->loop), 0);
	/* One is cleaned up by its owner while under way (as the adapter's
	 * destroy does), the others stay in the multi until it goes. */
	curl_easy_cleanup(e[1]);
	yj_curlm_destroy(&c->curlm);
	assert_null(c->curlm);
	yj_curlm_destroy(&c->curlm);  /* idempotent */
	assert_int_equal(s_raw_done_calls, 0);
	curl_easy_cleanup(e[0]);
	curl_easy_cleanup(e[2]);
	/* The loop no longer watches anything of curl's: a run is idle. */
	t = yj_loop_timer(c->loop, 100, 0, s_on_safety, c);
	assert_int_equal(yj_loop_run(c->loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature_vectors),
		cmocka_unit_test(test_settings_table),
		cmocka_unit_test_setup_teardown(test_check_recipient, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_digest_headers_signature, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_secret_sources, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_ok_headers_signature, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_big_body, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_204_ok, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_empty_body, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_500_retry, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_503_retry, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_429_retry, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_408_retry, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_400_fatal, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_404_fatal, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_302_fatal_not_followed, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_close_retry, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_refused_retry, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_hang_times_out, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_100, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_chain_from_done, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_address_redacted, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_bad_scheme_fatal, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_refused_inputs, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_drain, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_destroy_in_flight, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_curlm_raw, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_curlm_destroy_running, t_setup, t_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
