/* test_prom.c: the Prometheus text builder (prom.c) and the HTTP endpoint
 * that serves it (metrics.c).
 *
 * The exposition is checked twice: against exact expected text, and by
 * Prometheus's own Python parser (Debian python3-prometheus-client under
 * /usr/bin/python3), which must be installed: without it the test fails.
 * The HTTP side runs the real server on 127.0.0.1 (and ::1) with a port
 * the kernel picked free, and talks to it with libcurl.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "err.h"
#include "metrics.h"
#include "prom.h"

/* ------------------------------------------------------------ helpers */

static size_t s_count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
		n++;
	return n;
}

static void s_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ------------------------------------------------------------ prom.c */

static void test_family_header_once(void **state)
{
	struct yj_prom p;

	(void)state;
	yj_prom_init(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_dead_letters", "gauge", "Dead letters held."), 0);
	/* Reopening the open family is a no-op: a loop may open it per sample. */
	assert_int_equal(yj_prom_family(&p, "yjlink_dead_letters", "gauge", "Dead letters held."), 0);
	assert_int_equal(yj_prom_sample(&p, "yjlink_dead_letters", NULL, 3), 0);
	assert_int_equal(yj_prom_family(&p, "yjlink_dead_letters", "gauge", "Dead letters held."), 0);
	assert_int_equal(yj_prom_family(&p, "yjlink_up", "gauge", NULL), 0);
	assert_int_equal(yj_prom_sample(&p, "yjlink_up", NULL, 1), 0);
	assert_string_equal(p.buf,
			    "# HELP yjlink_dead_letters Dead letters held.\n"
			    "# TYPE yjlink_dead_letters gauge\n"
			    "yjlink_dead_letters 3\n"
			    "# TYPE yjlink_up gauge\n"
			    "yjlink_up 1\n");
	assert_int_equal(p.len, strlen(p.buf));
	assert_int_equal(s_count(p.buf, "# TYPE yjlink_dead_letters "), 1);

	/* Back to a closed family: its samples could not be contiguous. Sticky. */
	assert_int_equal(yj_prom_family(&p, "yjlink_dead_letters", "gauge", NULL), YJ_EEXIST);
	assert_int_equal(p.rc, YJ_EEXIST);
	assert_int_equal(yj_prom_family(&p, "yjlink_other", "gauge", NULL), YJ_EEXIST);
	assert_int_equal(yj_prom_sample(&p, "yjlink_up", NULL, 1), YJ_EEXIST);

	/* Reset keeps the buffer, forgets the text, the family and the error. */
	yj_prom_reset(&p);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.len, 0);
	assert_string_equal(p.buf, "");
	assert_int_equal(yj_prom_family(&p, "yjlink_dead_letters", "gauge", NULL), 0);

	/* The open family with another type. */
	assert_int_equal(yj_prom_family(&p, "yjlink_dead_letters", "counter", NULL), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_x", "summary", NULL), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_family(&p, "9lives", "gauge", NULL), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink-x", "gauge", NULL), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink:rule_x", "gauge", NULL), 0);
	yj_prom_reset(&p);
	/* A sample with no family open, or of another name. */
	assert_int_equal(yj_prom_sample(&p, "yjlink_up", NULL, 1), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_up", "gauge", NULL), 0);
	assert_int_equal(yj_prom_sample(&p, "yjlink_upx", NULL, 1), YJ_EINVAL);
	yj_prom_free(&p);
	assert_null(p.buf);
	yj_prom_free(&p);
}

static void test_help_escaping(void **state)
{
	struct yj_prom p;

	(void)state;
	yj_prom_init(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_x", "counter", "two\nlines, a \\ and \"quotes\""), 0);
	/* HELP escapes backslash and newline only; quotes stay as they are. */
	assert_string_equal(p.buf, "# HELP yjlink_x two\\nlines, a \\\\ and \"quotes\"\n"
				   "# TYPE yjlink_x counter\n");
	yj_prom_free(&p);
}

static void test_label_escaping(void **state)
{
	struct yj_prom p;
	const char *const labels[] = { "feed", "a\\b\"c\nd", "result", "ok", NULL };

	(void)state;
	yj_prom_init(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_deliveries_total", "counter", NULL), 0);
	assert_int_equal(yj_prom_sample(&p, "yjlink_deliveries_total", labels, 7), 0);
	assert_int_equal(yj_prom_sample_l(&p, "yjlink_deliveries_total", 8.0,
					  "transport", "smtp", "result", "", NULL), 0);
	assert_string_equal(p.buf, "# TYPE yjlink_deliveries_total counter\n"
				   "yjlink_deliveries_total{feed=\"a\\\\b\\\"c\\nd\",result=\"ok\"} 7\n"
				   "yjlink_deliveries_total{transport=\"smtp\",result=\"\"} 8\n");

	/* A name without a value. */
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_x", "gauge", NULL), 0);
	assert_int_equal(yj_prom_sample_l(&p, "yjlink_x", 1.0, "feed", NULL), YJ_EINVAL);
	/* Bad label names: reserved, leading digit, colon, dash. */
	static const char *const bad[] = { "__name__", "1feed", "fe:ed", "fe-ed", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		yj_prom_reset(&p);
		assert_int_equal(yj_prom_family(&p, "yjlink_x", "gauge", NULL), 0);
		assert_int_equal(yj_prom_sample_l(&p, "yjlink_x", 1.0, bad[i], "v", NULL), YJ_EINVAL);
	}
	/* YJ_PROM_MAX_LABELS pairs pass, one more does not. */
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_x", "gauge", NULL), 0);
	assert_int_equal(yj_prom_sample_l(&p, "yjlink_x", 1.0, "a", "1", "b", "2", "c", "3", "d", "4",
					  "e", "5", "f", "6", "g", "7", "h", "8", NULL), 0);
	assert_int_equal(yj_prom_sample_l(&p, "yjlink_x", 1.0, "a", "1", "b", "2", "c", "3", "d", "4",
					  "e", "5", "f", "6", "g", "7", "h", "8", "i", "9", "j", "10", NULL),
			 YJ_EINVAL);
	yj_prom_free(&p);
}

static void test_values(void **state)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{ 0.0, "0" },
		{ -0.0, "0" },
		{ 1.0, "1" },
		{ -3.0, "-3" },
		{ 1e15, "1000000000000000" },
		{ 9007199254740992.0, "9007199254740992" },   /* 2^53 */
		{ 123456789012.0, "123456789012" },
		{ 0.5, "0.5" },
		{ 0.1, "0.1" },
		{ 0.005, "0.005" },
		{ 1.0 / 3.0, "0.3333333333333333" },
		{ 2.5e-7, "2.5e-07" },
		{ 18446744073709551615.0, "18446744073709551616" },  /* 2^64, as a double */
		{ -1e20, "-100000000000000000000" },
		{ 1e21, "1e+21" },
		{ 1e300, "1e+300" },
		{ 5e-324, "5e-324" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
		{ NAN, "NaN" },
	};
	struct yj_prom p;
	char want[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		yj_prom_init(&p);
		assert_int_equal(yj_prom_family(&p, "v", "gauge", NULL), 0);
		assert_int_equal(yj_prom_sample(&p, "v", NULL, cases[i].v), 0);
		snprintf(want, sizeof(want), "# TYPE v gauge\nv %s\n", cases[i].text);
		assert_string_equal(p.buf, want);
		yj_prom_free(&p);
	}
}

static void test_histogram(void **state)
{
	static const double bounds[] = { 0.001, 0.005, 0.01, 0.1, 1 };
	static const uint64_t counts[] = { 2, 5, 0, 1, 3, 4 };  /* 4 above 1 s */
	struct yj_prom p;

	(void)state;
	yj_prom_init(&p);
	assert_int_equal(yj_prom_histogram(&p, "yjlink_commit_seconds", "Store commit latency.",
					   bounds, counts, 5, 12.25), 0);
	assert_string_equal(p.buf,
			    "# HELP yjlink_commit_seconds Store commit latency.\n"
			    "# TYPE yjlink_commit_seconds histogram\n"
			    "yjlink_commit_seconds_bucket{le=\"0.001\"} 2\n"
			    "yjlink_commit_seconds_bucket{le=\"0.005\"} 7\n"
			    "yjlink_commit_seconds_bucket{le=\"0.01\"} 7\n"
			    "yjlink_commit_seconds_bucket{le=\"0.1\"} 8\n"
			    "yjlink_commit_seconds_bucket{le=\"1\"} 11\n"
			    "yjlink_commit_seconds_bucket{le=\"+Inf\"} 15\n"
			    "yjlink_commit_seconds_sum 12.25\n"
			    "yjlink_commit_seconds_count 15\n");
	/* Written once only; and plain samples cannot join a histogram. */
	assert_int_equal(yj_prom_sample(&p, "yjlink_commit_seconds", NULL, 1), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, bounds, counts, 5, 0), 0);
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, bounds, counts, 5, 0), YJ_EEXIST);

	/* No finite bounds: only +Inf. Counts above 2^53 stay exact. */
	yj_prom_reset(&p);
	const uint64_t big[] = { UINT64_C(18446744073709551615) };
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, NULL, big, 0, 0.5), 0);
	assert_string_equal(p.buf, "# TYPE h histogram\n"
				   "h_bucket{le=\"+Inf\"} 18446744073709551615\n"
				   "h_sum 0.5\n"
				   "h_count 18446744073709551615\n");

	/* Refused: unordered, repeated, non-finite bounds; overflowing counts. */
	static const double unordered[] = { 0.1, 0.01 };
	static const double repeated[] = { 0.1, 0.1 };
	const double nonfinite[] = { 0.1, INFINITY };
	const uint64_t two[] = { 1, 1, 1 };
	const uint64_t overflow[] = { UINT64_C(18446744073709551615), 1, 0 };
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, unordered, two, 2, 0), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, repeated, two, 2, 0), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, nonfinite, two, 2, 0), YJ_EINVAL);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, bounds, overflow, 2, 0), YJ_ERANGE);
	yj_prom_reset(&p);
	assert_int_equal(yj_prom_histogram(&p, "h", NULL, bounds, NULL, 2, 0), YJ_EINVAL);
	assert_int_equal(p.len, 0);
	yj_prom_free(&p);
}

/* Grow past the first allocation many times over. */
static void test_growth(void **state)
{
	struct yj_prom p;
	char feed[32];

	(void)state;
	yj_prom_init(&p);
	assert_int_equal(yj_prom_family(&p, "yjlink_events_ingested_total", "counter", "Events."), 0);
	for (int i = 0; i < 5000; i++) {
		snprintf(feed, sizeof(feed), "feed%d", i);
		assert_int_equal(yj_prom_sample_l(&p, "yjlink_events_ingested_total", (double)i,
						  "feed", feed, NULL), 0);
	}
	assert_int_equal(p.len, strlen(p.buf));
	assert_non_null(strstr(p.buf, "yjlink_events_ingested_total{feed=\"feed4999\"} 4999\n"));
	assert_int_equal(s_count(p.buf, "\n"), 5000 + 2);
	yj_prom_free(&p);
}

/* The exposition the Python parser checks, and the daemon's §7 families. */
static void s_render_sample(struct yj_prom *p)
{
	static const double bounds[] = { 0.001, 0.01, 0.1, 1 };
	static const uint64_t counts[] = { 4, 3, 2, 1, 0 };

	assert_int_equal(yj_prom_family(p, "yjlink_events_ingested_total", "counter",
					 "Events stored, by feed."), 0);
	assert_int_equal(yj_prom_sample_l(p, "yjlink_events_ingested_total", 12, "feed", "custody", NULL), 0);
	assert_int_equal(yj_prom_sample_l(p, "yjlink_events_ingested_total", 3, "feed", "q\"uo\\te\nnl", NULL), 0);
	assert_int_equal(yj_prom_family(p, "yjlink_ingest_rejected_total", "counter",
					 "Requests refused, by error."), 0);
	assert_int_equal(yj_prom_sample_l(p, "yjlink_ingest_rejected_total", 2, "error", "SCHEMA", NULL), 0);
	assert_int_equal(yj_prom_family(p, "yjlink_outbox_depth", "gauge", "Pending deliveries."), 0);
	assert_int_equal(yj_prom_sample_l(p, "yjlink_outbox_depth", 5, "recipient", "la-e09000007", NULL), 0);
	assert_int_equal(yj_prom_family(p, "yjlink_deliveries_total", "counter", "Delivery attempts."), 0);
	assert_int_equal(yj_prom_sample_l(p, "yjlink_deliveries_total", 9,
					  "transport", "smtp", "result", "ok", NULL), 0);
	assert_int_equal(yj_prom_family(p, "yjlink_dead_letters", "gauge", "Dead letters."), 0);
	assert_int_equal(yj_prom_sample(p, "yjlink_dead_letters", NULL, 0), 0);
	assert_int_equal(yj_prom_histogram(p, "yjlink_commit_seconds", "Commit latency, \\ and\nnewline.",
					   bounds, counts, 4, 0.0625), 0);
	assert_int_equal(p->rc, 0);
}

/* The parser's verdict, one line per family and a few checks of its own;
 * exit 3 says the module is missing. */
static const char s_py[] =
	"import json, sys\n"
	"try:\n"
	"    from prometheus_client.parser import text_string_to_metric_families\n"
	"except ImportError as e:\n"
	"    print('prometheus_client missing (%s): apt-get install -y python3-prometheus-client' % e)\n"
	"    sys.exit(3)\n"
	"text = open(sys.argv[1], encoding='utf-8').read()\n"
	"for f in text_string_to_metric_families(text):\n"
	"    print(f.name, f.type, len(f.samples), json.dumps(f.documentation))\n"
	"    for s in f.samples:\n"
	"        print(' ', s.name, json.dumps(s.labels, sort_keys=True), repr(s.value))\n"
	"    if f.type == 'histogram':\n"
	"        b = [s for s in f.samples if s.name.endswith('_bucket')]\n"
	"        c = [s.value for s in f.samples if s.name.endswith('_count')]\n"
	"        assert b[-1].labels['le'] == '+Inf', b\n"
	"        assert all(x.value <= y.value for x, y in zip(b, b[1:])), 'not cumulative'\n"
	"        assert c == [b[-1].value], 'count != +Inf bucket'\n";

static void test_python_parser(void **state)
{
	static const char want[] =
		"yjlink_events_ingested counter 2 \"Events stored, by feed.\"\n"
		"  yjlink_events_ingested_total {\"feed\": \"custody\"} 12.0\n"
		"  yjlink_events_ingested_total {\"feed\": \"q\\\"uo\\\\te\\nnl\"} 3.0\n"
		"yjlink_ingest_rejected counter 1 \"Requests refused, by error.\"\n"
		"  yjlink_ingest_rejected_total {\"error\": \"SCHEMA\"} 2.0\n"
		"yjlink_outbox_depth gauge 1 \"Pending deliveries.\"\n"
		"  yjlink_outbox_depth {\"recipient\": \"la-e09000007\"} 5.0\n"
		"yjlink_deliveries counter 1 \"Delivery attempts.\"\n"
		"  yjlink_deliveries_total {\"result\": \"ok\", \"transport\": \"smtp\"} 9.0\n"
		"yjlink_dead_letters gauge 1 \"Dead letters.\"\n"
		"  yjlink_dead_letters {} 0.0\n"
		"yjlink_commit_seconds histogram 7 \"Commit latency, \\\\ and\\nnewline.\"\n"
		"  yjlink_commit_seconds_bucket {\"le\": \"0.001\"} 4.0\n"
		"  yjlink_commit_seconds_bucket {\"le\": \"0.01\"} 7.0\n"
		"  yjlink_commit_seconds_bucket {\"le\": \"0.1\"} 9.0\n"
		"  yjlink_commit_seconds_bucket {\"le\": \"1\"} 10.0\n"
		"  yjlink_commit_seconds_bucket {\"le\": \"+Inf\"} 10.0\n"
		"  yjlink_commit_seconds_sum {} 0.0625\n"
		"  yjlink_commit_seconds_count {} 10.0\n";
	char path[] = "/tmp/test_prom_XXXXXX";
	char script[] = "/tmp/test_prom_py_XXXXXX";
	char *cmd = NULL;
	char out[8192];
	size_t got = 0;
	struct yj_prom p;
	FILE *f = NULL;
	int fd = -1;
	int status = 0;

	(void)state;
	yj_prom_init(&p);
	s_render_sample(&p);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p.buf, p.len), (ssize_t)p.len);
	close(fd);
	fd = mkstemp(script);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, s_py, strlen(s_py)), (ssize_t)strlen(s_py));
	close(fd);

	/* -c runs the program text; it lives in a file only to spare the shell
	 * quoting: "$(cat ...)" hands it over verbatim. */
	assert_true(asprintf(&cmd, "/usr/bin/python3 -c \"$(cat %s)\" %s 2>&1", script, path) > 0);
	f = popen(cmd, "r");
	assert_non_null(f);
	got = fread(out, 1, sizeof(out) - 1, f);
	out[got] = '\0';
	status = pclose(f);
	unlink(path);
	unlink(script);
	free(cmd);
	yj_prom_free(&p);

	if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
		fail_msg("the Prometheus parser is needed: %s", out);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("prometheus_client rejected the exposition (status %d):\n%s", status, out);
	assert_string_equal(out, want);
}

/* ------------------------------------------------------------ metrics.c */

/* One HTTP exchange's results. */
struct s_resp {
	long status;           /* HTTP status, 0 when the request failed */
	char body[8192];       /* body, NUL-terminated */
	size_t len;            /* bytes in body */
	char ctype[128];       /* Content-Type, "" if none */
	char allow[64];        /* Allow header, "" if none */
	CURLcode err;          /* curl's verdict */
};

static size_t s_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct s_resp *r = arg;
	size_t n = size * nmemb;

	if (n > sizeof(r->body) - 1 - r->len)
		return 0;
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static size_t s_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct s_resp *r = arg;
	size_t n = size * nmemb;

	if (n > 7 && strncasecmp(data, "Allow: ", 7) == 0) {
		size_t l = n - 7;
		while (l > 0 && (data[7 + l - 1] == '\r' || data[7 + l - 1] == '\n'))
			l--;
		if (l < sizeof(r->allow)) {
			memcpy(r->allow, data + 7, l);
			r->allow[l] = '\0';
		}
	}
	return n;
}

/* method NULL: GET; "HEAD": no body; "POST": with a form body; anything
 * else: a custom request. */
static void s_http(const char *url, const char *method, struct s_resp *r)
{
	CURL *c = curl_easy_init();
	char *ct = NULL;

	memset(r, 0, sizeof(*r));
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (method && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (method && strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "a=1&b=2");  /* a body the server must not wait for */
	else if (method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	r->err = curl_easy_perform(c);
	if (r->err == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
		if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
			snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
	}
	curl_easy_cleanup(c);
}

/* A port nobody listens on now: bind port 0, read what the kernel chose. */
static int s_free_port(int family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_STREAM, 0);
	int port = 0;

	assert_true(fd >= 0);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	port = family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
				  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	close(fd);
	return port;
}

/* Whether every thread of this process but the caller blocks SIGTERM, read
 * from /proc: a signal delivered to the HTTP thread would never reach the
 * loop's signalfd. */
static int s_other_threads_block_sigterm(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e = NULL;
	char path[300];
	char line[256];
	int others = 0;
	int all = 1;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == gettid())
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "SigBlk:", 7) == 0) {
				unsigned long long mask = strtoull(line + 7, NULL, 16);
				others++;
				if (!(mask & (1ull << (SIGTERM - 1))))
					all = 0;
			}
		}
		fclose(f);
	}
	closedir(d);
	return others > 0 && all;
}

static void test_parse_endpoint(void **state)
{
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", ":9402", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:99999999", "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:0x50",
		"localhost:9402", "127.1:9402", "::1:9402", "[::1]9402", "[::1]:", "[]:80",
		"[127.0.0.1]:80", "[::1:80", "1.2.3.4.5:80", "[fe80::1%eth0]:80",
	};
	struct sockaddr_storage ss;
	socklen_t len = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (yj_metrics_parse_endpoint(bad[i], &ss, &len) != YJ_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(yj_metrics_parse_endpoint(NULL, &ss, &len), YJ_EINVAL);

	assert_int_equal(yj_metrics_parse_endpoint("127.0.0.1:9402", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9402);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(yj_metrics_parse_endpoint("0.0.0.0:1", &ss, &len), 0);
	assert_int_equal(yj_metrics_parse_endpoint("[::1]:65535", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 65535);
	assert_memory_equal(&((struct sockaddr_in6 *)&ss)->sin6_addr, &in6addr_loopback, 16);
	assert_int_equal(yj_metrics_parse_endpoint("[::]:9402", &ss, &len), 0);
}

static void test_http(void **state)
{
	static const char text[] = "# TYPE yjlink_up gauge\nyjlink_up 1\n";
	struct yj_metrics *m = NULL;
	struct yj_metrics *m2 = NULL;
	struct s_resp r;
	sigset_t before, after;
	char endpoint[64];
	char base[64];
	char url[128];
	char why[400];
	int port = s_free_port(AF_INET);

	(void)state;
	assert_true(port > 0);
	snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", port);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);

	assert_int_equal(yj_metrics_start("127.0.0.1", 300, &m), YJ_EINVAL);
	assert_null(m);
	assert_int_equal(yj_metrics_start(endpoint, 0, &m), YJ_EINVAL);
	assert_null(m);

	pthread_sigmask(SIG_SETMASK, NULL, &before);
	assert_int_equal(yj_metrics_start(endpoint, 300, &m), 0);
	assert_non_null(m);
	pthread_sigmask(SIG_SETMASK, NULL, &after);
	assert_int_equal(sigismember(&before, SIGTERM), sigismember(&after, SIGTERM));
	assert_int_equal(sigismember(&before, SIGUSR1), sigismember(&after, SIGUSR1));
	assert_true(s_other_threads_block_sigterm());

	/* The address is taken: a second server cannot bind it. */
	assert_int_equal(yj_metrics_start(endpoint, 300, &m2), YJ_EIO);
	assert_null(m2);

	/* Before the first publish: an empty exposition. */
	snprintf(url, sizeof(url), "%s/metrics", base);
	s_http(url, NULL, &r);
	assert_int_equal(r.err, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);

	yj_metrics_publish(m, text, strlen(text));
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(r.body, text);
	s_http(url, "HEAD", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	/* Publishing replaces the text; the caller's buffer is copied. */
	char again[] = "# TYPE yjlink_up gauge\nyjlink_up 0\n";
	yj_metrics_publish(m, again, strlen(again));
	memset(again, 'x', sizeof(again) - 1);
	s_http(url, NULL, &r);
	assert_string_equal(r.body, "# TYPE yjlink_up gauge\nyjlink_up 0\n");

	/* Methods other than GET and HEAD: 405 naming the allowed ones. */
	s_http(url, "POST", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "GET, HEAD");
	s_http(url, "DELETE", &r);
	assert_int_equal(r.status, 405);
	/* Other paths: 404, whatever the method. */
	snprintf(url, sizeof(url), "%s/", base);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 404);
	snprintf(url, sizeof(url), "%s/metrics/", base);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 404);
	snprintf(url, sizeof(url), "%s/healthzz", base);
	s_http(url, "POST", &r);
	assert_int_equal(r.status, 404);
	/* A query string does not change the path. */
	snprintf(url, sizeof(url), "%s/metrics?name[]=yjlink_up", base);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 200);

	/* Healthy: beating and the store writable. */
	snprintf(url, sizeof(url), "%s/healthz", base);
	yj_metrics_beat(m);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	assert_string_equal(r.ctype, "text/plain; charset=utf-8");
	s_http(url, "PUT", &r);
	assert_int_equal(r.status, 405);

	/* The loop stops beating: 503 once the beat is stall_ms old. */
	s_sleep_ms(400);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 503);
	assert_int_equal(strncmp(r.body, "main loop stalled for ", 22), 0);
	long stalled = strtol(r.body + 22, NULL, 10);
	assert_true(stalled >= 300 && stalled < 5000);
	assert_string_equal(r.body + strlen(r.body) - 4, " ms\n");
	/* /metrics still answers while the loop is stalled. */
	snprintf(url, sizeof(url), "%s/metrics", base);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 200);
	snprintf(url, sizeof(url), "%s/healthz", base);
	yj_metrics_beat(m);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 200);

	/* The store failed; then recovered. The reason is one line. */
	yj_metrics_set_store_ok(m, 0, "No space left on device");
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "store not writable: No space left on device\n");
	yj_metrics_set_store_ok(m, 0, "two\nlines\r");
	s_http(url, NULL, &r);
	assert_string_equal(r.body, "store not writable: two lines \n");
	yj_metrics_set_store_ok(m, 0, NULL);
	s_http(url, NULL, &r);
	assert_string_equal(r.body, "store not writable: unknown reason\n");
	/* A long reason is cut at 200 bytes, never inside a UTF-8 character. */
	memset(why, 'a', 199);
	strcpy(why + 199, "\xc3\xa9\xc3\xa9");
	yj_metrics_set_store_ok(m, 0, why);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 503);
	assert_int_equal(strlen(r.body), strlen("store not writable: \n") + 199);
	yj_metrics_set_store_ok(m, 1, NULL);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 200);

	/* Bound to 127.0.0.1 only: another loopback address finds no one. */
	snprintf(url, sizeof(url), "http://127.0.0.2:%d/healthz", port);
	s_http(url, NULL, &r);
	assert_int_equal(r.err, CURLE_COULDNT_CONNECT);

	yj_metrics_stop(&m);
	assert_null(m);
	yj_metrics_stop(&m);
	yj_metrics_stop(NULL);
	/* Stopped: the port is closed. */
	snprintf(url, sizeof(url), "%s/healthz", base);
	s_http(url, NULL, &r);
	assert_int_equal(r.err, CURLE_COULDNT_CONNECT);
}

static void test_http_ipv6(void **state)
{
	struct yj_metrics *m = NULL;
	struct s_resp r;
	char endpoint[64];
	char url[128];
	int port = s_free_port(AF_INET6);

	(void)state;
	/* A host without IPv6 loopback cannot run this: say so, loudly. */
	if (port < 0)
		fail_msg("no IPv6 loopback (::1) on this host to test \"[::1]:PORT\" on");
	snprintf(endpoint, sizeof(endpoint), "[::1]:%d", port);
	assert_int_equal(yj_metrics_start(endpoint, 1000, &m), 0);
	snprintf(url, sizeof(url), "http://[::1]:%d/healthz", port);
	s_http(url, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	/* IPv6-only: the same port on 127.0.0.1 is not served. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
	s_http(url, NULL, &r);
	assert_int_equal(r.err, CURLE_COULDNT_CONNECT);
	yj_metrics_stop(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_header_once),
		cmocka_unit_test(test_help_escaping),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_python_parser),
		cmocka_unit_test(test_parse_endpoint),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_ipv6),
	};
	int rc = 0;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
