/* test_out_email.c: the email output adapter (adapters/out_email.c) against
 * a real SMTP server (tests/integration/smtp_receiver.py, aiosmtpd), driven
 * by the real loop. Each stored message is parsed back with Python's email
 * package, the reference a mail client would be. Hostile relays (one that
 * takes seconds to answer the end of DATA, one that never answers it) show
 * that SMTP runs off the loop: the loop's timers keep firing, another
 * relay's delivery completes meanwhile, and destroy returns.
 *
 * The adapter's source is compiled in: the tests fill its settings structs
 * by hand, as the core's config loader would from its tables. */
#include "../../adapters/out_email.c"
#include "curlm.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <unistd.h>

#define MAX_DONE 32
#define RUN_LIMIT_MS 30000
#define TICK_MS 100                      /* the loop timer that shows the loop running */

struct fx {
	char dir[64];                    /* temp dir: maildir, credentials, parser */
	char maildir[96];                /* where the receiver writes NNNN.eml */
	pid_t rx;                        /* the receiver process, 0 when none */
	int port;                        /* its port */
	char maildir2[96];               /* a second receiver's maildir */
	pid_t rx2;                       /* a second receiver (another relay), 0 when none */
	int port2;                       /* its port */
	int ticks;                       /* TICK_MS loop timer firings */
	struct yj_loop *loop;            /* the real loop */
	struct yj_curlm *curlm;          /* the real multi, in that loop */
	struct yj_config cfg;            /* hand-filled: only source matters */
	struct s_settings settings;      /* the `email` section, as the loader would fill it */
	struct yj_recipient rcpt;        /* the one recipient, transport email */
	struct s_recipient rs;           /* its `email = [ ... ]` */
	char *to[4];                     /* rs.to.v */
	struct yj_core_api api;          /* what the adapter gets: loop, curlm, config(), settings() */
	void *state;                     /* the adapter's */
	int want;                        /* stop the loop after this many done calls */
	int n_done;                      /* done calls so far */
	int timed_out;                   /* the guard timer stopped the loop */
	enum yj_delivery_result res[MAX_DONE]; /* each done's result, in completion order */
	char detail[MAX_DONE][512];      /* its detail */
	char address[MAX_DONE][256];     /* its address */
	int order[MAX_DONE];             /* the arg of each done, in completion order */
};

static struct fx *s_fx;

static const struct yj_config *s_api_config(void *core)
{
	return &((struct fx *)core)->cfg;
}

/* The core's api->settings: the one config of the test holds the one section. */
static const void *s_api_settings(const struct yj_config *cfg, const struct yj_adapter *a)
{
	assert_ptr_equal(cfg, &s_fx->cfg);
	assert_ptr_equal(a, &yj_adapter_out_email);
	return &s_fx->settings;
}

static const char *s_source_dir(void)
{
	static char dir[512];
	const char *env = getenv("YJ_SOURCE_DIR");
	if (env && *env)
		return env;
	/* Run by hand: this file is SOURCE/tests/unit/test_out_email.c. */
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	for (int i = 0; i < 3; i++) {
		char *s = strrchr(dir, '/');
		if (s)
			*s = '\0';
	}
	return dir;
}

static int s_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Spawn a receiver in mode writing to maildir ("slow": answering the end
 * of DATA after delay seconds); returns its port once it listens. */
static int s_rx_spawn(const char *maildir, const char *mode, const char *auth, const char *delay, pid_t *pid_out)
{
	char script[600], port[16] = "0";
	int p[2], listening = 0;
	snprintf(script, sizeof(script), "%s/tests/integration/smtp_receiver.py", s_source_dir());
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		const char *argv[14] = { "/usr/bin/python3", script, "--port", port, "--mode", mode,
					 "--maildir", maildir, "--delay", delay ? delay : "3", NULL };
		if (auth) {
			argv[10] = "--auth";
			argv[11] = auth;
		}
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	close(p[1]);
	*pid_out = pid;
	/* Wait for "READY <port>": then it listens. */
	char line[64] = "";
	size_t got = 0;
	while (got < sizeof(line) - 1 && !strchr(line, '\n')) {
		struct pollfd pfd = { .fd = p[0], .events = POLLIN };
		assert_int_equal(poll(&pfd, 1, 20000), 1);
		ssize_t n = read(p[0], line + got, sizeof(line) - 1 - got);
		assert_true(n > 0);
		got += (size_t)n;
		line[got] = '\0';
	}
	close(p[0]);
	assert_int_equal(sscanf(line, "READY %d", &listening), 1);
	return listening;
}

static void s_set_url(struct fx *f, int port)
{
	free(f->settings.smtp_url);
	assert_true(asprintf(&f->settings.smtp_url, "smtp://127.0.0.1:%d", port) > 0);
}

/* Start the receiver in mode; "down" only reserves a port nobody listens on. */
static void s_rx_start_delay(struct fx *f, const char *mode, const char *auth, const char *delay)
{
	if (!strcmp(mode, "down")) {
		f->port = s_free_port();
		assert_true(f->port > 0);
	} else {
		f->port = s_rx_spawn(f->maildir, mode, auth, delay, &f->rx);
	}
	s_set_url(f, f->port);
}

static void s_rx_start(struct fx *f, const char *mode, const char *auth)
{
	s_rx_start_delay(f, mode, auth, NULL);
}

/* Stop one receiver: SIGTERM, and its exit waited for. One that has not
 * gone after S_RX_EXIT_S (a run of 2026-12-02 hung in the teardown that
 * stops a "hang" receiver, under two suites and stress at once, and never
 * again in 40 runs) is made to print its threads' Python stacks (SIGUSR1:
 * faulthandler, smtp_receiver.py), killed, and the test fails saying so,
 * instead of ctest's timeout saying nothing. */
#define S_RX_EXIT_S 30

static void s_rx_reap(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	int exited = 0;
	for (int i = 0; i < S_RX_EXIT_S * 50 && !exited; i++) {
		pid_t r = waitpid(*pid, NULL, WNOHANG);
		exited = r == *pid || (r < 0 && errno != EINTR);
		if (!exited)
			usleep(20000);
	}
	if (!exited) {
		kill(*pid, SIGUSR1);
		sleep(1);
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	pid_t was = *pid;
	*pid = 0;
	if (!exited)
		fail_msg("the SMTP receiver (pid %d) did not exit within %d s of SIGTERM: its stacks are above", (int)was,
			 S_RX_EXIT_S);
}

static void s_rx_stop(struct fx *f)
{
	s_rx_reap(&f->rx);
	s_rx_reap(&f->rx2);
}

static void s_rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR)
			s_rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/yj-test-email-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->maildir, sizeof(f->maildir), "%s/mail", f->dir);
	snprintf(f->maildir2, sizeof(f->maildir2), "%s/mail2", f->dir);
	f->loop = yj_loop_new();
	if (!f->loop || yj_curlm_new(f->loop, &f->curlm) != 0)
		return -1;
	char *src = NULL;
	if (asprintf(&src, "%s/yjlinkd.conf", f->dir) < 0)
		return -1;
	f->cfg.source = src;
	f->settings.smtp_url = strdup("smtp://127.0.0.1:1");
	f->settings.from = strdup("yjlink@tvp.example.org");
	f->settings.starttls = strdup("off");
	f->settings.credentials_file = strdup("");
	f->to[0] = "yot@mk.example.gov.uk";
	f->to[1] = "duty@mk.example.gov.uk";
	f->rs.to.v = f->to;
	f->rs.to.n = 2;
	f->rcpt.id = "yjs:milton-keynes";
	f->rcpt.name = "Milton Keynes YJS";
	f->rcpt.transport = "email";
	f->rcpt.output_settings = &f->rs;
	f->api = (struct yj_core_api){ .core = f, .loop = f->loop, .config = s_api_config, .settings = s_api_settings,
				       .curlm = f->curlm };
	s_fx = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	yj_adapter_out_email.destroy(&f->state);
	s_rx_stop(f);
	if (f->curlm)
		yj_curlm_destroy(&f->curlm);
	yj_loop_destroy(&f->loop);
	free(f->cfg.source);
	free(f->settings.smtp_url);
	free(f->settings.from);
	free(f->settings.starttls);
	free(f->settings.credentials_file);
	s_rm_tree(f->dir);
	free(f);
	s_fx = NULL;
	return 0;
}

static void s_done(void *arg, enum yj_delivery_result result, const char *detail, const char *address)
{
	struct fx *f = s_fx;
	int i = f->n_done++;
	if (i < MAX_DONE) {
		f->res[i] = result;
		f->order[i] = (int)(intptr_t)arg;
		snprintf(f->detail[i], sizeof(f->detail[i]), "%s", detail ? detail : "(null)");
		snprintf(f->address[i], sizeof(f->address[i]), "%s", address ? address : "(null)");
	}
	if (f->n_done >= f->want)
		yj_loop_stop(f->loop);
}

static int s_guard(struct yj_loop *loop, void *arg)
{
	((struct fx *)arg)->timed_out = 1;
	yj_loop_stop(loop);
	return 0;
}

/* Run the loop until want done calls have come (or the guard fires). */
static void s_run(struct fx *f, int want)
{
	f->want = want;
	int64_t guard = yj_loop_timer(f->loop, RUN_LIMIT_MS, 0, s_guard, f);
	assert_true(guard > 0);
	assert_int_equal(yj_loop_run(f->loop), 0);
	yj_loop_timer_cancel(f->loop, guard);
	assert_false(f->timed_out);
	assert_int_equal(f->n_done, want);
}

static void s_run_until_waiting(struct fx *f, const char *maildir, int want);

static void s_init_adapter(struct fx *f)
{
	assert_int_equal(yj_adapter_out_email.init(&f->api, &f->state), 0);
	assert_int_equal(yj_adapter_out_email.start(f->state), 0);
}

static const char s_json[] =
	"{\"notification_id\":\"tvp-000000000042\",\"kind\":\"lac_in_custody\","
	"\"recipient\":\"yjs:milton-keynes\",\"created_at\":\"2026-11-21T23:14:02Z\","
	"\"classification\":\"OFFICIAL-SENSITIVE\",\"event\":{\"seq\":42,\"feed\":\"custody\"}}";

/* A notification as the outbox hands it over: its JSON, nothing rendered. */
static struct yj_message s_notification(struct fx *f, const char *id)
{
	return (struct yj_message){
		.kind = YJ_MESSAGE_NOTIFICATION,
		.id = id,
		.kind_name = "lac_in_custody",
		.recipient = &f->rcpt,
		.settings = &f->rs,
		.json = s_json,
		.json_len = sizeof(s_json) - 1,
	};
}

static const char s_csv[] =
	"section,seq,feed,source_id,occurred_at,person_id,given_name\r\n"
	"custody,42,custody,TVP-1,2026-11-21T23:14:02Z,P1,Zo\xc3\xab\r\n"
	"arrest,43,arrest,TVP-2,2026-11-21T23:20:00Z,P2,\"Smith, Jo\"\r\n";

/* A digest as the outbox hands it over: built, with its text, HTML and CSV. */
static struct yj_message s_digest(struct fx *f, const char *id)
{
	return (struct yj_message){
		.kind = YJ_MESSAGE_DIGEST,
		.id = id,
		.kind_name = "daily_digest",
		.recipient = &f->rcpt,
		.settings = &f->rs,
		.json = "{}",
		.json_len = 2,
		.date = "2026-11-22",
		.window_from = "2026-11-21T07:00:00Z",
		.window_to = "2026-11-22T07:00:00Z",
		.children = 2,
		.events = 2,
		.text = "2 children.\n",
		.html = "<p>2 children.</p>\n",
		.csv = s_csv,
		.csv_len = sizeof(s_csv) - 1,
		.csv_name = "yjlink-digest-milton-keynes-2026-11-22.csv",
	};
}

/* Parse maildir/NNNN.eml with Python's email package. */
static cJSON *s_parse(struct fx *f, int n)
{
	static const char py[] =
		"import sys, json, email, email.policy\n"
		"raw = open(sys.argv[1], 'rb').read()\n"
		"m = email.message_from_bytes(raw, policy=email.policy.default)\n"
		"def shape(p):\n"
		"    if p.is_multipart():\n"
		"        return p.get_content_type() + '(' + ','.join(shape(q) for q in p.iter_parts()) + ')'\n"
		"    return p.get_content_type()\n"
		"leaves, defects = [], 0\n"
		"for p in m.walk():\n"
		"    defects += len(p.defects)\n"
		"    if not p.is_multipart():\n"
		"        leaves.append(dict(type=p.get_content_type(), charset=p.get_content_charset(),\n"
		"                           filename=p.get_filename(), disposition=p.get_content_disposition(),\n"
		"                           body=p.get_payload(decode=True).decode('utf-8')))\n"
		"print(json.dumps(dict(shape=shape(m), leaves=leaves, defects=defects,\n"
		"    headers={k.lower(): str(v) for k, v in m.items()},\n"
		"    bare_lf=raw.replace(b'\\r\\n', b'').count(b'\\n'),\n"
		"    max_line=max(len(l) for l in raw.split(b'\\r\\n')))))\n";
	char script[128], cmd[512], path[160];
	snprintf(script, sizeof(script), "%s/parse.py", f->dir);
	FILE *s = fopen(script, "w");
	assert_non_null(s);
	fputs(py, s);
	fclose(s);
	snprintf(path, sizeof(path), "%s/%04d.eml", f->maildir, n);
	assert_int_equal(access(path, R_OK), 0);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", script, path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	static char out[1 << 20];
	size_t len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = '\0';
	assert_int_equal(pclose(p), 0);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	return j;
}

static const char *s_jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *s_header(const cJSON *j, const char *name)
{
	return s_jstr(cJSON_GetObjectItemCaseSensitive(j, "headers"), name);
}

static const cJSON *s_leaf(const cJSON *j, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "leaves"), i);
}

static int s_count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), s = strlen(suffix);
		n += l > s && !strcmp(e->d_name + l - s, suffix);
	}
	closedir(d);
	return n;
}

static void s_check_well_formed(const cJSON *j)
{
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "defects")->valueint, 0);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "bare_lf")->valueint, 0);
	assert_true(cJSON_GetObjectItemCaseSensitive(j, "max_line")->valueint <= 998);
	assert_string_equal(s_header(j, "mime-version"), "1.0");
	assert_non_null(s_header(j, "date"));
	assert_string_equal(s_header(j, "from"), "yjlink@tvp.example.org");
}

/* ------------------------------------------------------------------------- */

static void test_notification_ok(void **state)
{
	struct fx *f = *state;
	char note[3000], json[3400], text[3400];
	/* A long line, a lone dot, non-ASCII, markup: none may break the message. */
	memset(note, 'x', 2500);
	strcpy(note + 2500, "\r\n.\r\nCaf\xc3\xa9 \xe2\x80\x94 end\r\n");
	snprintf(json, sizeof(json),
		 "{\"notification_id\":\"tvp-000000000042\",\"kind\":\"lac_in_custody\","
		 "\"event\":{\"seq\":42,\"note\":\"%.2500s\\r\\n.\\r\\nCaf\xc3\xa9 \xe2\x80\x94 end\\r\\n\","
		 "\"markup\":\"<b>&\\\"\",\"looked_after\":true}}",
		 note);
	/* The CRs and LFs of the value are spaces: a value never starts a line. */
	snprintf(text, sizeof(text),
		 "notification_id: tvp-000000000042\r\nkind: lac_in_custody\r\nevent.seq: 42\r\n"
		 "event.note: %.2500s  .  Caf\xc3\xa9 \xe2\x80\x94 end  \r\n"
		 "event.markup: <b>&\"\r\nevent.looked_after: true\r\n",
		 note);
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_message m = s_notification(f, "tvp-000000000042");
	m.json = json;
	m.json_len = strlen(json);
	m.kind_name = "\xe2\x80\x94 notification f\xc3\xbcr MK";
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, (void *)1), 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);
	assert_string_equal(f->address[0], "yot@mk.example.gov.uk,duty@mk.example.gov.uk");

	cJSON *j = s_parse(f, 1);
	s_check_well_formed(j);
	assert_true(cJSON_GetObjectItemCaseSensitive(j, "max_line")->valueint <= 78);
	assert_string_equal(s_jstr(j, "shape"), "multipart/alternative(text/plain,text/html)");
	/* The subject: kind and id, encoded because it is not ASCII. */
	assert_string_equal(s_header(j, "subject"),
			    "[OFFICIAL-SENSITIVE] yjlink \xe2\x80\x94 notification f\xc3\xbcr MK tvp-000000000042");
	assert_string_equal(s_header(j, "x-yjlink-notification-id"), "tvp-000000000042");
	assert_null(s_header(j, "x-yjlink-digest-id"));
	assert_null(s_header(j, "x-yjlink-window"));
	assert_string_equal(s_header(j, "to"), "yot@mk.example.gov.uk, duty@mk.example.gov.uk");
	assert_string_equal(s_header(j, "message-id"), "<yjlink.tvp-000000000042@tvp.example.org>");
	/* Rendered from the JSON: one "path: value" line per leaf, in order. */
	assert_string_equal(s_jstr(s_leaf(j, 0), "body"), text);
	assert_string_equal(s_jstr(s_leaf(j, 0), "charset"), "utf-8");
	/* ... and one table row per leaf, values escaped. */
	const char *html = s_jstr(s_leaf(j, 1), "body");
	assert_non_null(html);
	assert_true(!strncmp(html, "<!doctype html>", 15));
	assert_non_null(strstr(html, "<p><b>OFFICIAL-SENSITIVE</b></p><table>\r\n"
				     "<tr><th style=\"text-align:left;padding:4px\">notification_id</th>"
				     "<td style=\"padding:4px\">tvp-000000000042</td></tr>\r\n"));
	assert_non_null(strstr(html, "<tr><th style=\"text-align:left;padding:4px\">event.markup</th>"
				     "<td style=\"padding:4px\">&lt;b&gt;&amp;&quot;</td></tr>\r\n"));
	assert_non_null(strstr(html, "</table></body></html>\r\n"));
	cJSON_Delete(j);

	/* The envelope: our From, both recipients. */
	char idx[256], line[1024];
	snprintf(idx, sizeof(idx), "%s/index.jsonl", f->maildir);
	FILE *fp = fopen(idx, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	cJSON *e = cJSON_Parse(line);
	assert_non_null(e);
	assert_string_equal(s_jstr(e, "mail_from"), "yjlink@tvp.example.org");
	cJSON *rt = cJSON_GetObjectItemCaseSensitive(e, "rcpt_tos");
	assert_int_equal(cJSON_GetArraySize(rt), 2);
	assert_string_equal(cJSON_GetArrayItem(rt, 0)->valuestring, "yot@mk.example.gov.uk");
	assert_string_equal(cJSON_GetArrayItem(rt, 1)->valuestring, "duty@mk.example.gov.uk");
	cJSON_Delete(e);

	/* A resend of the same notification: the same Message-ID, so receivers can drop it. */
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, (void *)2), 0);
	s_run(f, 2);
	assert_int_equal(f->res[1], YJ_DELIVERY_OK);
	j = s_parse(f, 2);
	assert_string_equal(s_header(j, "message-id"), "<yjlink.tvp-000000000042@tvp.example.org>");
	cJSON_Delete(j);
}

/* A digest with a YJS name too long for one header line: the subject is
 * encoded and folded, and still reads back whole. */
static void test_digest_ok(void **state)
{
	struct fx *f = *state;
	char name[1100], subject[1200];
	/* Longer than one header line may be: it has to be encoded and folded. */
	snprintf(name, sizeof(name), "%0*d", 1000, 7);
	snprintf(subject, sizeof(subject), "[OFFICIAL-SENSITIVE] yjlink daily digest %s 2026-11-22: 2 children", name);
	f->rcpt.name = name;
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_message m = s_digest(f, "tvp-digest-yjs:milton-keynes-2026-11-22");
	m.csv_name = "yjlink-digest-yjs:milton-keynes-2026-11-22.csv";
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, NULL), 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);

	cJSON *j = s_parse(f, 1);
	s_check_well_formed(j);
	assert_string_equal(s_jstr(j, "shape"),
			    "multipart/mixed(multipart/alternative(text/plain,text/html),text/csv)");
	assert_string_equal(s_header(j, "subject"), subject);
	assert_string_equal(s_header(j, "x-yjlink-notification-id"), m.id);
	assert_string_equal(s_header(j, "x-yjlink-digest-id"), "tvp-digest-yjs:milton-keynes-2026-11-22");
	assert_string_equal(s_header(j, "x-yjlink-window"), "2026-11-21T07:00:00Z/2026-11-22T07:00:00Z");
	/* Characters outside the Message-ID's alphabet are escaped, stably. */
	assert_string_equal(s_header(j, "message-id"),
			    "<yjlink.tvp-digest-yjs=3Amilton-keynes-2026-11-22@tvp.example.org>");
	/* Text parts in canonical form (CRLF), the attachment byte for byte. */
	assert_string_equal(s_jstr(s_leaf(j, 0), "body"), "2 children.\r\n");
	assert_string_equal(s_jstr(s_leaf(j, 1), "body"), "<p>2 children.</p>\r\n");
	const cJSON *att = s_leaf(j, 2);
	assert_string_equal(s_jstr(att, "type"), "text/csv");
	assert_string_equal(s_jstr(att, "charset"), "utf-8");
	assert_string_equal(s_jstr(att, "disposition"), "attachment");
	assert_string_equal(s_jstr(att, "filename"), "yjlink-digest-yjs:milton-keynes-2026-11-22.csv");
	assert_string_equal(s_jstr(att, "body"), s_csv);
	cJSON_Delete(j);
}

/* A digest as a YJS gets it (interfaces.md §5): the subject with its name,
 * date and children, its id and window in the header, the CSV attached
 * under its own name. An empty window is a digest too. */
static void test_digest_message(void **state)
{
	struct fx *f = *state;
	static const char empty_csv[] = "section,seq,feed,source_id,occurred_at,person_id,given_name\r\n";
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_message m = s_digest(f, "tvp-digest-milton-keynes-2026-11-22");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, (void *)1), 0);
	struct yj_message e = s_digest(f, "tvp-digest-milton-keynes-2026-11-23");
	e.date = "2026-11-23";
	e.window_from = "2026-11-22T07:00:00Z";
	e.window_to = "2026-11-23T07:00:00Z";
	e.children = e.events = 0;
	e.text = "No children in this window.\n";
	e.html = "<p>No children in this window.</p>\n";
	e.csv = empty_csv;
	e.csv_len = sizeof(empty_csv) - 1;
	e.csv_name = "yjlink-digest-milton-keynes-2026-11-23.csv";
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &e, s_done, (void *)2), 0);
	s_run(f, 2);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);
	assert_int_equal(f->res[1], YJ_DELIVERY_OK);
	assert_string_equal(f->address[0], "yot@mk.example.gov.uk,duty@mk.example.gov.uk");

	for (int n = 1; n <= 2; n++) {
		cJSON *j = s_parse(f, n);
		s_check_well_formed(j);
		assert_string_equal(s_jstr(j, "shape"),
				    "multipart/mixed(multipart/alternative(text/plain,text/html),text/csv)");
		assert_non_null(s_header(j, "x-yjlink-digest-id"));
		/* The two went concurrently: either may have arrived first. */
		int first = !strcmp(s_header(j, "x-yjlink-digest-id"), m.id);
		const struct yj_message *d = first ? &m : &e;
		assert_string_equal(s_header(j, "x-yjlink-digest-id"), d->id);
		assert_string_equal(s_header(j, "x-yjlink-notification-id"), d->id);
		assert_string_equal(s_header(j, "subject"),
				    first ? "[OFFICIAL-SENSITIVE] yjlink daily digest Milton Keynes YJS 2026-11-22: 2 children"
					  : "[OFFICIAL-SENSITIVE] yjlink daily digest Milton Keynes YJS 2026-11-23: 0 children");
		assert_string_equal(s_header(j, "x-yjlink-window"),
				    first ? "2026-11-21T07:00:00Z/2026-11-22T07:00:00Z"
					  : "2026-11-22T07:00:00Z/2026-11-23T07:00:00Z");
		const cJSON *att = s_leaf(j, 2);
		assert_string_equal(s_jstr(att, "type"), "text/csv");
		assert_string_equal(s_jstr(att, "disposition"), "attachment");
		assert_string_equal(s_jstr(att, "filename"), d->csv_name);
		assert_string_equal(s_jstr(att, "body"), d->csv);
		cJSON_Delete(j);
	}
}

/* A notification whose JSON does not parse cannot get better by waiting:
 * FATAL, from the loop, and nothing sent. */
static void test_bad_json_fatal(void **state)
{
	struct fx *f = *state;
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_message m = s_notification(f, "tvp-000000000012");
	m.json = "{\"notification_id\":";
	m.json_len = strlen(m.json);
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, NULL), 0);
	assert_int_equal(f->n_done, 0);
	m.json = "[1,2]";
	m.json_len = strlen(m.json);
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, NULL), 0);
	m.json = NULL;
	m.json_len = 0;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, NULL), 0);
	s_run(f, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(f->res[i], YJ_DELIVERY_FATAL);
		assert_non_null(strstr(f->detail[i], "JSON"));
	}
	assert_int_equal(s_count_files(f->maildir, ".eml"), 0);
	/* Refused at once, done never called: the core's RETRY. */
	m.kind = (enum yj_message_kind)7;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, NULL), YJ_EINVAL);
	m.kind = YJ_MESSAGE_NOTIFICATION;
	m.id = NULL;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, NULL), YJ_EINVAL);
	assert_int_equal(yj_adapter_out_email.deliver(f->state, NULL, s_done, NULL), YJ_EINVAL);
	assert_int_equal(f->n_done, 3);
}

/* One delivery against the receiver in mode; returns its result. */
static enum yj_delivery_result s_one(struct fx *f, const char *mode)
{
	s_rx_start(f, mode, NULL);
	s_init_adapter(f);
	struct yj_message d = s_notification(f, "tvp-000000000007");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 1);
	assert_string_equal(f->address[0], "yot@mk.example.gov.uk,duty@mk.example.gov.uk");
	assert_int_equal(s_count_files(f->maildir, ".eml"), 0 + (f->res[0] == YJ_DELIVERY_OK));
	return f->res[0];
}

static void test_data_451_retry(void **state)
{
	struct fx *f = *state;
	assert_int_equal(s_one(f, "451"), YJ_DELIVERY_RETRY);
	assert_non_null(strstr(f->detail[0], "451"));
}

static void test_data_550_fatal(void **state)
{
	struct fx *f = *state;
	assert_int_equal(s_one(f, "550"), YJ_DELIVERY_FATAL);
	assert_non_null(strstr(f->detail[0], "550"));
}

static void test_rcpt_451_retry(void **state)
{
	struct fx *f = *state;
	assert_int_equal(s_one(f, "rcpt451"), YJ_DELIVERY_RETRY);
	assert_non_null(strstr(f->detail[0], "451"));
}

static void test_rcpt_550_fatal(void **state)
{
	struct fx *f = *state;
	assert_int_equal(s_one(f, "rcpt550"), YJ_DELIVERY_FATAL);
	assert_non_null(strstr(f->detail[0], "550"));
}

static void test_down_retry(void **state)
{
	struct fx *f = *state;
	assert_int_equal(s_one(f, "down"), YJ_DELIVERY_RETRY);
}

static void test_starttls_required_retry(void **state)
{
	struct fx *f = *state;
	free(f->settings.starttls);
	f->settings.starttls = strdup("required");
	/* A plain relay must not get the message in clear when TLS is required. */
	assert_int_equal(s_one(f, "250"), YJ_DELIVERY_RETRY);
	assert_non_null(strstr(f->detail[0], "STARTTLS"));
}

static void test_starttls_optional_plain_ok(void **state)
{
	struct fx *f = *state;
	free(f->settings.starttls);
	f->settings.starttls = strdup("optional");
	assert_int_equal(s_one(f, "250"), YJ_DELIVERY_OK);
}

static void test_concurrent_20(void **state)
{
	struct fx *f = *state;
	char ids[20][32];
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	for (int i = 0; i < 20; i++) {
		snprintf(ids[i], sizeof(ids[i]), "tvp-%012d", 100 + i);
		struct yj_message d = s_notification(f, ids[i]);
		assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, (void *)(intptr_t)i), 0);
	}
	s_run(f, 20);
	int seen[20] = { 0 };
	for (int i = 0; i < 20; i++) {
		assert_int_equal(f->res[i], YJ_DELIVERY_OK);
		seen[f->order[i]]++;
	}
	for (int i = 0; i < 20; i++)
		assert_int_equal(seen[i], 1);
	assert_int_equal(s_count_files(f->maildir, ".eml"), 20);
	/* Each message carries its own notification id. */
	int found[20] = { 0 };
	for (int n = 1; n <= 20; n++) {
		cJSON *j = s_parse(f, n);
		const char *id = s_header(j, "x-yjlink-notification-id");
		assert_non_null(id);
		found[atoi(id + 4) - 100]++;
		cJSON_Delete(j);
	}
	for (int i = 0; i < 20; i++)
		assert_int_equal(found[i], 1);
}

static void s_write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(path, 0600);
}

static void test_credentials(void **state)
{
	struct fx *f = *state;
	char path[128];
	/* Relative to the config file; the password itself contains ':'. */
	snprintf(path, sizeof(path), "%s/smtp.cred", f->dir);
	s_write_file(path, "yjlink:s3cr:et\n");
	free(f->settings.credentials_file);
	f->settings.credentials_file = strdup("smtp.cred");
	assert_int_equal(s_one(f, "250") /* the receiver wants no AUTH */, YJ_DELIVERY_OK);
	s_rx_stop(f);
	yj_adapter_out_email.destroy(&f->state);

	/* Against a receiver that wants exactly these credentials. */
	f->n_done = 0;
	s_rm_tree(f->maildir);
	s_rx_start(f, "250", "yjlink:s3cr:et");
	s_init_adapter(f);
	struct yj_message d = s_notification(f, "tvp-000000000008");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);

	/* Wrong password after a reload: refused, retried (the relay's setup, not this message). */
	s_write_file(path, "yjlink:wrong\n");
	assert_int_equal(yj_adapter_out_email.reload(f->state, &f->cfg), 0);
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 2);
	assert_int_equal(f->res[1], YJ_DELIVERY_RETRY);
	/* Nothing of the password reaches the detail. */
	assert_null(strstr(f->detail[1], "wrong"));

	/* A reload that cannot read the file keeps the credentials it had. */
	s_write_file(path, "no colon here\n");
	assert_int_equal(yj_adapter_out_email.reload(f->state, &f->cfg), YJ_ECONFIG);
	unlink(path);
	assert_int_equal(yj_adapter_out_email.reload(f->state, &f->cfg), YJ_ECONFIG);
	void *st2 = NULL;
	assert_int_equal(yj_adapter_out_email.init(&f->api, &st2), YJ_ECONFIG);
	assert_null(st2);
}

static void test_bad_address_fatal(void **state)
{
	struct fx *f = *state;
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	f->to[1] = "duty@mk.example.gov.uk\r\nBcc: someone@elsewhere.example";
	struct yj_message d = s_notification(f, "tvp-000000000009");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	/* Reported from the loop, not from inside deliver(). */
	assert_int_equal(f->n_done, 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_FATAL);
	assert_int_equal(s_count_files(f->maildir, ".eml"), 0);

	f->rs.to.n = 0;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 2);
	assert_int_equal(f->res[1], YJ_DELIVERY_FATAL);
	assert_non_null(strstr(f->detail[1], "no email addresses"));

	/* No settings for the recipient at all: as good as no addresses. */
	d.settings = NULL;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 3);
	assert_int_equal(f->res[2], YJ_DELIVERY_FATAL);
	assert_non_null(strstr(f->detail[2], "recipient yjs:milton-keynes"));
	assert_int_equal(s_count_files(f->maildir, ".eml"), 0);
}

static void test_destroy_in_flight(void **state)
{
	struct fx *f = *state;
	/* A relay slow enough that the transfer is surely still under way. */
	s_rx_start_delay(f, "slow", NULL, "3");
	s_init_adapter(f);
	struct yj_message d = s_notification(f, "tvp-000000000010");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run_until_waiting(f, f->maildir, 1);
	f->to[0] = "bad address";
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	/* Shut down with both under way (the daemon's order: adapters, then the multi). */
	yj_adapter_out_email.destroy(&f->state);
	assert_null(f->state);
	yj_curlm_destroy(&f->curlm);
	assert_int_equal(f->n_done, 0);
}

static void test_classify(void **state)
{
	char d[512];
	(void)state;
	assert_int_equal(s_classify(CURLE_OK, 250, "", d, sizeof(d)), YJ_DELIVERY_OK);
	assert_int_equal(s_classify(CURLE_OPERATION_TIMEDOUT, 250, "timeout", d, sizeof(d)), YJ_DELIVERY_RETRY);
	assert_int_equal(s_classify(CURLE_COULDNT_CONNECT, 0, "", d, sizeof(d)), YJ_DELIVERY_RETRY);
	assert_int_equal(s_classify(CURLE_SEND_ERROR, 421, "", d, sizeof(d)), YJ_DELIVERY_RETRY);
	assert_int_equal(s_classify(CURLE_SEND_ERROR, 354, "", d, sizeof(d)), YJ_DELIVERY_RETRY);
	assert_int_equal(s_classify(CURLE_WEIRD_SERVER_REPLY, 554, "", d, sizeof(d)), YJ_DELIVERY_FATAL);
	assert_int_equal(s_classify(CURLE_SEND_ERROR, 552, "", d, sizeof(d)), YJ_DELIVERY_FATAL);
	assert_int_equal(s_classify(CURLE_SEND_ERROR, 530, "", d, sizeof(d)), YJ_DELIVERY_RETRY);
	assert_int_equal(s_classify(CURLE_LOGIN_DENIED, 535, "", d, sizeof(d)), YJ_DELIVERY_RETRY);
	assert_int_equal(s_classify(CURLE_USE_SSL_FAILED, 250, "", d, sizeof(d)), YJ_DELIVERY_RETRY);
	assert_non_null(strstr(d, "STARTTLS"));
}

static void test_message_lines(void **state)
{
	char *to[6] = { "youth.offending.team@milton-keynes.example.gov.uk", "duty@mk.example.gov.uk",
			"out-of-hours.duty.manager@milton-keynes.example.gov.uk", "a@b.example",
			"another.long.mailbox.name@children.milton-keynes.example.gov.uk", "x@y.example" };
	struct yj_strlist list = { to, 6 };
	struct yj_recipient r = { .id = "yjs:mk", .name = "MK" };
	struct s_state st = { .from = "yjlink@tvp.example.org" };
	struct yj_message n = { .kind = YJ_MESSAGE_NOTIFICATION, .id = "tvp-1", .kind_name = "looks =?encoded?= but is not",
				.recipient = &r };
	/* A digest whose id and window carry line breaks: none may become a header of its own. */
	struct yj_message d = { .kind = YJ_MESSAGE_DIGEST, .id = "tvp-d1\r\nBcc: x@evil.example", .recipient = &r,
				.date = "2026-11-22", .window_from = "2026-11-21T07:00:00Z\r\n\r\nX-A: b",
				.window_to = "2026-11-22T07:00:00Z\n", .text = "t", .csv = "a\r\n", .csv_len = 3,
				.csv_name = "d.csv" };
	struct s_buf b = { 0 };
	(void)state;
	assert_int_equal(s_build_message(&st, &n, &list, "t", NULL, &b), 0);
	assert_non_null(strstr(b.p, "\r\nSubject: =?UTF-8?B?"));
	/* No html: a text/plain alternative alone. */
	assert_null(strstr(b.p, "text/html"));
	assert_null(strstr(b.p, "X-Yjlink-Digest-Id"));
	for (int pass = 0; pass < 2; pass++) {
		/* Every line CRLF-terminated and within 78 characters, the To: list folded. */
		for (const char *p = b.p; *p;) {
			const char *e = strstr(p, "\r\n");
			assert_non_null(e);
			assert_true(e - p <= 78);
			assert_null(memchr(p, '\n', (size_t)(e - p)));
			p = e + 2;
		}
		if (pass == 1)
			break;
		free(b.p);
		b = (struct s_buf){ 0 };
		assert_int_equal(s_build_message(&st, &d, &list, d.text, d.html, &b), 0);
	}
	size_t headers_end = (size_t)(strstr(b.p, "\r\n\r\n") - b.p);
	assert_true(headers_end > (size_t)(strstr(b.p, "Content-Type: multipart/mixed") - b.p));
	assert_null(strstr(b.p, "\r\nBcc:"));
	assert_null(strstr(b.p, "\r\nX-A:"));
	assert_non_null(strstr(b.p, "\r\nX-Yjlink-Notification-Id: tvp-d1Bcc: x@evil.example\r\n"
				    "X-Yjlink-Digest-Id: tvp-d1Bcc: x@evil.example\r\n"
				    "X-Yjlink-Window: 2026-11-21T07:00:00ZX-A: b/2026-11-22T07:00:00Z\r\n"
				    "Content-Type: multipart/mixed"));
	assert_non_null(strstr(b.p, "\r\nMessage-ID: <yjlink.tvp-d1=0D=0ABcc=3A=20x=40evil=2Eexample@tvp.example.org>\r\n"));
	assert_null(strstr(b.p, "text/html"));
	assert_non_null(strstr(b.p, "name=\"d.csv\""));
	free(b.p);
}

/* Base64 of data in CRLF lines of 76, by libsodium (not the adapter's own encoder). */
static void s_b64_lines(struct s_buf *b, const char *data)
{
	size_t n = strlen(data);
	for (size_t i = 0; i < n; i += 57) {
		char line[80];
		size_t take = n - i < 57 ? n - i : 57;
		sodium_bin2base64(line, sizeof(line), (const unsigned char *)data + i, take, sodium_base64_VARIANT_ORIGINAL);
		s_buf_str(b, line);
		s_buf_str(b, "\r\n");
	}
}

/* The message bytes, Date: aside, exactly as the outbox and the digest
 * service produced them before the adapter rendered messages itself. */
static void test_message_bytes(void **state)
{
	static const char json[] =
		"{\"notification_id\":\"tvp-000000000042\",\"kind\":\"lac_in_custody\","
		"\"recipient\":\"children_services:E09000033\",\"created_at\":\"2026-11-21T23:14:02Z\","
		"\"rule\":\"lac_in_custody\",\"legal_basis\":\"Crime and Disorder Act 1998 s.115\","
		"\"classification\":\"OFFICIAL-SENSITIVE\",\"out_of_hours\":true,"
		"\"event\":{\"seq\":42,\"feed\":\"custody\",\"child\":{\"given_name\":\"Zo\\u00eb <b>&\\\"\",\"age\":15.5,"
		"\"markers\":[\"a\",\"b\"],\"none\":null},\"list\":[{\"x\":1},{\"y\":false}]}}";
	static const char text[] =
		"notification_id: tvp-000000000042\r\nkind: lac_in_custody\r\nrecipient: children_services:E09000033\r\n"
		"created_at: 2026-11-21T23:14:02Z\r\nrule: lac_in_custody\r\nlegal_basis: Crime and Disorder Act 1998 s.115\r\n"
		"classification: OFFICIAL-SENSITIVE\r\nout_of_hours: true\r\nevent.seq: 42\r\nevent.feed: custody\r\n"
		"event.child.given_name: Zo\xc3\xab <b>&\"\r\nevent.child.age: 15.5\r\nevent.child.markers: a\r\n"
		"event.child.markers: b\r\nevent.child.none: null\r\nevent.list.x: 1\r\nevent.list.y: false\r\n";
#define ROW(k, v) "<tr><th style=\"text-align:left;padding:4px\">" k "</th><td style=\"padding:4px\">" v "</td></tr>\r\n"
	static const char html[] =
		"<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
		"</head><body><p><b>OFFICIAL-SENSITIVE</b></p><table>\r\n"
		ROW("notification_id", "tvp-000000000042") ROW("kind", "lac_in_custody")
		ROW("recipient", "children_services:E09000033") ROW("created_at", "2026-11-21T23:14:02Z")
		ROW("rule", "lac_in_custody") ROW("legal_basis", "Crime and Disorder Act 1998 s.115")
		ROW("classification", "OFFICIAL-SENSITIVE") ROW("out_of_hours", "true") ROW("event.seq", "42")
		ROW("event.feed", "custody") ROW("event.child.given_name", "Zo\xc3\xab &lt;b&gt;&amp;&quot;")
		ROW("event.child.age", "15.5") ROW("event.child.markers", "a") ROW("event.child.markers", "b")
		ROW("event.child.none", "null") ROW("event.list.x", "1") ROW("event.list.y", "false")
		"</table></body></html>\r\n";
#undef ROW
	static const char csv[] = "section,seq,feed\r\ncustody,42,custody\r\narrest,43,\"Smith, Jo\"\r\n";
	static const char head[] = "From: yjlink@tvp.example.org\r\nTo: yot@mk.example.gov.uk, duty@mk.example.gov.uk\r\n";
	static const char part[] = "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
	char *to_v[] = { "yot@mk.example.gov.uk", "duty@mk.example.gov.uk" };
	struct yj_strlist to = { to_v, 2 };
	struct yj_recipient r = { .id = "yjs:milton-keynes", .name = "Milton Keynes YJS" };
	struct s_state st = { .from = "yjlink@tvp.example.org" };
	struct yj_message n = { .kind = YJ_MESSAGE_NOTIFICATION, .id = "tvp-000000000042", .kind_name = "lac_in_custody",
				.recipient = &r, .json = json, .json_len = sizeof(json) - 1 };
	struct yj_message d = { .kind = YJ_MESSAGE_DIGEST, .id = "tvp-digest-milton-keynes-2026-11-22",
				.kind_name = "daily_digest", .recipient = &r, .json = "{}", .json_len = 2,
				.date = "2026-11-22", .window_from = "2026-11-21T07:00:00Z",
				.window_to = "2026-11-22T07:00:00Z", .children = 2, .events = 3,
				.text = "Daily digest\n2 children.\n", .html = "<p>2 children.</p>\n", .csv = csv,
				.csv_len = sizeof(csv) - 1, .csv_name = "yjlink-digest-milton-keynes-2026-11-22.csv" };
	struct s_buf t = { 0 }, h = { 0 }, got = { 0 }, want = { 0 };
	(void)state;

	assert_true(sodium_init() >= 0);
	assert_int_equal(s_render_notification(&n, &t, &h), 0);
	assert_string_equal(t.p, text);
	assert_string_equal(h.p, html);
	assert_int_equal(s_build_message(&st, &n, &to, t.p, h.p, &got), 0);
	assert_true(!strncmp(got.p, "Date: ", 6));
	s_buf_str(&want, head);
	s_buf_str(&want, "Subject: [OFFICIAL-SENSITIVE] yjlink lac_in_custody tvp-000000000042\r\n"
			 "Message-ID: <yjlink.tvp-000000000042@tvp.example.org>\r\n"
			 "MIME-Version: 1.0\r\nX-Yjlink-Notification-Id: tvp-000000000042\r\n"
			 "Content-Type: multipart/alternative; boundary=\"=_yjlink-alt\"\r\n\r\n"
			 "This is a MIME message.\r\n--=_yjlink-alt\r\n");
	s_buf_fmt(&want, part, "text/plain");
	s_b64_lines(&want, text);
	s_buf_str(&want, "--=_yjlink-alt\r\n");
	s_buf_fmt(&want, part, "text/html");
	s_b64_lines(&want, html);
	s_buf_str(&want, "--=_yjlink-alt--\r\n");
	assert_non_null(want.p);
	assert_string_equal(strstr(got.p, "\r\n") + 2, want.p);
	free(got.p);
	free(want.p);
	got = want = (struct s_buf){ 0 };

	assert_int_equal(s_build_message(&st, &d, &to, d.text, d.html, &got), 0);
	s_buf_str(&want, head);
	s_buf_str(&want, "Subject: [OFFICIAL-SENSITIVE] yjlink daily digest Milton Keynes YJS 2026-11-22: 2 children\r\n"
			 "Message-ID: <yjlink.tvp-digest-milton-keynes-2026-11-22@tvp.example.org>\r\n"
			 "MIME-Version: 1.0\r\nX-Yjlink-Notification-Id: tvp-digest-milton-keynes-2026-11-22\r\n"
			 "X-Yjlink-Digest-Id: tvp-digest-milton-keynes-2026-11-22\r\n"
			 "X-Yjlink-Window: 2026-11-21T07:00:00Z/2026-11-22T07:00:00Z\r\n"
			 "Content-Type: multipart/mixed; boundary=\"=_yjlink-mixed\"\r\n\r\n"
			 "This is a MIME message.\r\n--=_yjlink-mixed\r\n"
			 "Content-Type: multipart/alternative; boundary=\"=_yjlink-alt\"\r\n\r\n--=_yjlink-alt\r\n");
	s_buf_fmt(&want, part, "text/plain");
	s_b64_lines(&want, "Daily digest\r\n2 children.\r\n");
	s_buf_str(&want, "--=_yjlink-alt\r\n");
	s_buf_fmt(&want, part, "text/html");
	s_b64_lines(&want, "<p>2 children.</p>\r\n");
	s_buf_str(&want, "--=_yjlink-alt--\r\n--=_yjlink-mixed\r\n"
			 "Content-Type: text/csv; charset=utf-8; name=\"yjlink-digest-milton-keynes-2026-11-22.csv\"\r\n"
			 "Content-Disposition: attachment; filename=\"yjlink-digest-milton-keynes-2026-11-22.csv\"\r\n"
			 "Content-Transfer-Encoding: base64\r\n\r\n");
	s_b64_lines(&want, csv);
	s_buf_str(&want, "--=_yjlink-mixed--\r\n");
	assert_non_null(want.p);
	assert_string_equal(strstr(got.p, "\r\n") + 2, want.p);
	free(got.p);
	free(want.p);
	free(t.p);
	free(h.p);
}

/* The parts test_message_streamed gives, by enum yj_digest_part bit. */
static const char *s_stream_part(unsigned part)
{
	/* Every kind of line break, a CR and its LF in two writes, lines longer
	 * than one base64 line. */
	return part == 1   ? "Daily digest\r\n2 children.\nA line of more than fifty-seven bytes, so that one base64 "
			     "line does not hold it.\r\rlone CR\r\n\n"
	       : part == 2 ? "<p>2 children.</p>\n<p>\r</p>\r\n"
			     : "section,seq,feed\r\ncustody,42,custody\r\narrest,43,\"Smith,\r\nJo\"\r\n";
}

/* yj_message.write_part as the outbox's: here one byte per write, flushed,
 * so the encoder sees every split there is. */
static int s_write_part(void *arg, unsigned part, FILE *f)
{
	(void)arg;
	for (const char *p = s_stream_part(part); *p; p++) {
		if (fputc(*p, f) == EOF || fflush(f))
			return YJ_ENOMEM;
	}
	return 0;
}

/* A digest whose renderings the core writes straight into the message
 * (write_part) is byte for byte the message built from the same renderings
 * as strings. */
static void test_message_streamed(void **state)
{
	char *to_v[] = { "yot@mk.example.gov.uk" };
	struct yj_strlist to = { to_v, 1 };
	struct yj_recipient r = { .id = "yjs:milton-keynes", .name = "Milton Keynes YJS" };
	struct s_state st = { .from = "yjlink@tvp.example.org" };
	struct yj_message d = { .kind = YJ_MESSAGE_DIGEST, .id = "tvp-digest-milton-keynes-2026-11-22",
				.kind_name = "daily_digest", .recipient = &r, .date = "2026-11-22",
				.window_from = "2026-11-21T07:00:00Z", .window_to = "2026-11-22T07:00:00Z",
				.children = 2, .events = 3, .csv_name = "yjlink-digest-milton-keynes-2026-11-22.csv" };
	struct yj_message sd = d;
	struct s_buf strings = { 0 }, streamed = { .big = 1 };
	(void)state;

	d.text = s_stream_part(1);
	d.html = s_stream_part(2);
	d.csv = s_stream_part(4);
	d.csv_len = strlen(d.csv);
	sd.write_part = s_write_part;
	assert_int_equal(s_build_message(&st, &d, &to, d.text, d.html, &strings), 0);
	assert_int_equal(s_build_message(&st, &sd, &to, NULL, NULL, &streamed), 0);
	/* Date: aside (the first line). */
	assert_string_equal(strstr(streamed.p, "\r\n"), strstr(strings.p, "\r\n"));
	s_buf_free(&strings);
	s_buf_free(&streamed);
}

/* Problems reported through a yj_diag, each as "file:line: message". */
struct t_diag {
	int n;
	char text[8][512];
};

static void s_on_report(void *arg, const char *file, int line, const char *msg)
{
	struct t_diag *d = arg;
	if (d->n < 8)
		snprintf(d->text[d->n], sizeof(d->text[d->n]), "%s:%d: %s", file, line, msg);
	d->n++;
}

/* The `email` section's check: a bad value is reported at the section's file:line. */
/* Hostile values (docs/security.md "Hostile text"): CRLF, lone CR and LF,
 * ESC, OSC 52, C1, DEL, bidi overrides, U+2028, markup. Each value stays on
 * its own "path: value" line and in its own cell, with no raw control and
 * no element or attribute of its own. */
static void test_render_hostile(void **state)
{
	static const char json[] =
		"{\"a\":\"Jo\\r\\nevent.child.looked_after: true\","
		"\"b\":\"x\\ry\\nz\","
		"\"c\":\"\\u001b[31mred\\u001b]52;c;aGk=\\u0007\\u007f\\u0085\\u009b2J\","
		"\"d\":\"\\u202eevil\\u202c \\u2066i\\u2069 \\u200f\\u061c\\u2028\\u2029\","
		"\"e\":\"\\\"><img src=x onerror=alert(1)>'<script>&amp;\","
		"\"f\":\"\\tTAB\"}";
	static const char text[] =
		"a: Jo  event.child.looked_after: true\r\n"
		"b: x y z\r\n"
		"c:  [31mred ]52;c;aGk=    2J\r\n"
		"d: evil i   \r\n"
		"e: \"><img src=x onerror=alert(1)>'<script>&amp;\r\n"
		"f:  TAB\r\n";
	struct yj_recipient r = { .id = "children_services:E06000042" };
	struct yj_message n = { .kind = YJ_MESSAGE_NOTIFICATION, .id = "tvp-000000000077", .recipient = &r,
				.json = json, .json_len = sizeof(json) - 1 };
	struct s_buf t = { 0 }, h = { 0 };
	(void)state;

	assert_int_equal(s_render_notification(&n, &t, &h), 0);
	assert_string_equal(t.p, text);
	assert_non_null(strstr(h.p, "<td style=\"padding:4px\">Jo  event.child.looked_after: true</td>"));
	assert_non_null(strstr(h.p, "<td style=\"padding:4px\">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
				    "&#39;&lt;script&gt;&amp;amp;</td>"));
	/* Nothing below U+0020 but the template's CRLFs; no DEL, C1 or bidi. */
	for (const char *b = h.p; *b; b++) {
		unsigned char c = (unsigned char)*b;
		if (c == '\r')
			assert_int_equal(b[1], '\n');
		else if (c != '\n')
			assert_true(c >= 0x20 && c != 0x7f);
	}
	for (const char *body = t.p; body; body = body == t.p ? h.p : NULL) {
		assert_null(strstr(body, "\xc2\x85"));
		assert_null(strstr(body, "\xc2\x9b"));
		assert_null(strstr(body, "\xe2\x80\xae"));
		assert_null(strstr(body, "\xe2\x81\xa6"));
		assert_null(strstr(body, "\xe2\x80\xa8"));
	}
	/* One <td> per leaf, as many as the text has lines. */
	int tds = 0;
	for (const char *q = h.p; (q = strstr(q, "<td")); q++)
		tds++;
	assert_int_equal(tds, 6);
	free(t.p);
	free(h.p);
}

/* A log line is one line, whatever its arguments hold (log.h): the detail
 * of a delivery the adapter logs comes from a relay's reply, a notification
 * id from the core; neither may forge a line or drive a terminal. */
static void test_log_one_line(void **state)
{
	char path[] = "/tmp/yj-test-log-XXXXXX", got[2048];
	int fd = mkstemp(path), saved = dup(2);
	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);
	yj_warn("out_email: notification %s: RETRY: %s", "tvp-1\r\n<3>forged",
		"451 \x1b]52;c;Zm9v\x07 \xc2\x9b" "2J \xe2\x80\xae\x7f\n<2>also forged");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, got, sizeof(got) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	got[n] = '\0';
	/* Each control, C1 and bidi character is one '?' (split: no trigraphs). */
	assert_string_equal(got, "<4>out_email: notification tvp-1?" "?<3>forged: RETRY: 451 ?]52;c;Zm9v? ?2J ?"
				 "?" "?<2>also forged\n");
}

/* The credentials file is a secret: one group or others may read stops the
 * start (secret.h), where it used to be only a warning. */
static void test_credentials_mode(void **state)
{
	struct fx *f = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/smtp.cred", f->dir);
	s_write_file(path, "yjlink:s3cret\n");
	chmod(path, 0644);
	free(f->settings.credentials_file);
	f->settings.credentials_file = strdup("smtp.cred");
	void *st = NULL;
	assert_int_equal(yj_adapter_out_email.init(&f->api, &st), YJ_ECONFIG);
	assert_null(st);
	chmod(path, 0600);
	assert_int_equal(yj_adapter_out_email.init(&f->api, &st), 0);
	yj_adapter_out_email.destroy(&st);
}

static void test_check(void **state)
{
	struct t_diag td = { 0 };
	struct yj_diag diag = { .report = s_on_report, .arg = &td };
	struct yj_setting_site at = { .diag = &diag, .file = "/etc/yjlink/yjlinkd.conf", .line = 12 };
	struct s_settings s = { .smtp_url = "smtp://127.0.0.1:2525", .from = "yjlink@localhost", .starttls = "optional",
				.credentials_file = "" };
	(void)state;

	assert_non_null(yj_adapter_out_email.conf.check);
	yj_adapter_out_email.conf.check(&s, &at);
	s.smtp_url = "smtps://relay.example.gov.uk:465";
	s.starttls = "required";
	yj_adapter_out_email.conf.check(&s, &at);
	s.starttls = "off";
	yj_adapter_out_email.conf.check(&s, &at);
	assert_int_equal(td.n, 0);

	s.starttls = "sometimes";
	yj_adapter_out_email.conf.check(&s, &at);
	assert_int_equal(td.n, 1);
	assert_string_equal(td.text[0], "/etc/yjlink/yjlinkd.conf:12: 'email.starttls' must be required, optional or off");
	s.starttls = "optional";
	s.smtp_url = "http://relay.example.gov.uk";
	at.line = 13;
	yj_adapter_out_email.conf.check(&s, &at);
	assert_int_equal(td.n, 2);
	assert_string_equal(td.text[1], "/etc/yjlink/yjlinkd.conf:13: 'email.smtp_url' must start smtp:// or smtps://");
	s.smtp_url = "smtp://127.0.0.1:2525";
	s.from = "yjlink <yjlink@localhost>";
	yj_adapter_out_email.conf.check(&s, &at);
	assert_int_equal(td.n, 3);
	assert_string_equal(td.text[2], "/etc/yjlink/yjlinkd.conf:13: 'email.from' 'yjlink <yjlink@localhost>' "
					"is not a plain address (local@domain)");
	s.from = "a@b\r\nBcc: c@d";
	yj_adapter_out_email.conf.check(&s, &at);
	assert_int_equal(td.n, 4);
	assert_null(strchr(td.text[3], '\r'));
	assert_int_equal(diag.count, 4);
}

/* An email recipient's check: addresses, all plain, at the recipient's file:line. */
static void test_check_recipient(void **state)
{
	struct t_diag td = { 0 };
	struct yj_diag diag = { .report = s_on_report, .arg = &td };
	struct yj_setting_site at = { .diag = &diag, .file = "yjlinkd.conf", .line = 80 };
	struct yj_recipient r = { .id = "yjs:milton-keynes", .transport = "email" };
	char *to[3] = { "yot@mk.example.gov.uk", "duty@mk.example.gov.uk", "not an address" };
	struct s_recipient rs = { .to = { to, 2 } };
	(void)state;

	assert_non_null(yj_adapter_out_email.conf.check_recipient);
	yj_adapter_out_email.conf.check_recipient(&rs, &r, &at);
	assert_int_equal(td.n, 0);
	rs.to.n = 0;
	yj_adapter_out_email.conf.check_recipient(&rs, &r, &at);
	assert_int_equal(td.n, 1);
	assert_string_equal(td.text[0], "yjlinkd.conf:80: recipient 'yjs:milton-keynes': transport email needs email = [ addresses ]");
	rs.to.n = 3;
	yj_adapter_out_email.conf.check_recipient(&rs, &r, &at);
	assert_int_equal(td.n, 2);
	assert_string_equal(td.text[1], "yjlinkd.conf:80: recipient 'yjs:milton-keynes': email address 3 "
					"'not an address' is not a plain address (local@domain)");
	to[2] = "duty@mk.example.gov.uk\r\nBcc: someone@elsewhere.example";
	yj_adapter_out_email.conf.check_recipient(&rs, &r, &at);
	assert_int_equal(td.n, 3);
	assert_null(strchr(td.text[2], '\r'));
	yj_adapter_out_email.conf.check_recipient(NULL, NULL, &at);
	assert_int_equal(td.n, 4);
	assert_non_null(strstr(td.text[3], "recipient '?'"));
}

/* The tables the core's loader reads, defaults and documents. */
static void test_settings_table(void **state)
{
	const struct yj_adapter *a = &yj_adapter_out_email;
	static const struct {
		const char *name;
		size_t offset;
		const char *def;
	} want[] = {
		{ "smtp_url", offsetof(struct s_settings, smtp_url), "smtp://127.0.0.1:2525" },
		{ "from", offsetof(struct s_settings, from), "yjlink@localhost" },
		{ "starttls", offsetof(struct s_settings, starttls), "" },
		{ "credentials_file", offsetof(struct s_settings, credentials_file), "" },
		{ "timeout_ms", offsetof(struct s_settings, timeout_ms), "60000" },
	};
	(void)state;

	assert_string_equal(a->conf.name, "out_email");
	assert_string_equal(a->conf.section, "email");
	assert_string_equal(a->conf.transport, "email");
	assert_int_equal(a->conf.settings_size, sizeof(struct s_settings));
	assert_int_equal(a->conf.n_settings, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(a->conf.settings[i].type, i < 4 ? YJ_SETTING_STR : YJ_SETTING_INT);
		assert_string_equal(a->conf.settings[i].name, want[i].name);
		assert_int_equal(a->conf.settings[i].offset, want[i].offset);
		assert_string_equal(a->conf.settings[i].def, want[i].def);
		assert_non_null(a->conf.settings[i].doc);
	}
	/* Every default passes the check: a config without an email section is valid. */
	struct t_diag td = { 0 };
	struct yj_diag diag = { .report = s_on_report, .arg = &td };
	struct yj_setting_site at = { .diag = &diag, .file = "x", .line = 1 };
	struct s_settings s;
	for (size_t i = 0; i < 4; i++)
		*(char **)((char *)&s + a->conf.settings[i].offset) = (char *)a->conf.settings[i].def;
	s.timeout_ms = 60000;
	a->conf.check(&s, &at);
	assert_int_equal(td.n, 0);
	/* The timeout: a second at least, ten minutes at most (RFC 5321's wait for the end of DATA). */
	assert_int_equal(a->conf.settings[4].min, 1000);
	assert_int_equal(a->conf.settings[4].max, 600000);

	assert_int_equal(a->conf.recipient_settings_size, sizeof(struct s_recipient));
	assert_int_equal(a->conf.n_recipient_settings, 1);
	assert_int_equal(a->conf.recipient_settings[0].type, YJ_SETTING_STRLIST);
	assert_string_equal(a->conf.recipient_settings[0].name, "email");
	assert_int_equal(a->conf.recipient_settings[0].offset, offsetof(struct s_recipient, to));
	/* Required of every email recipient. */
	assert_null(a->conf.recipient_settings[0].def);
	assert_non_null(a->conf.recipient_settings[0].doc);
	assert_non_null(a->init);
	assert_non_null(a->deliver);
}

static void test_receiver_script_index(void **state)
{
	/* The script's index line names a complete file (what integration tests rely on). */
	struct fx *f = *state;
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_message d = s_notification(f, "tvp-000000000011");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 1);
	char idx[256], line[1024];
	snprintf(idx, sizeof(idx), "%s/index.jsonl", f->maildir);
	FILE *fp = fopen(idx, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	assert_null(fgets(line + 512, 512, fp));
	fclose(fp);
	cJSON *e = cJSON_Parse(line);
	assert_non_null(e);
	assert_string_equal(s_jstr(e, "file"), "0001.eml");
	char path[256];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/0001.eml", f->maildir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((double)sb.st_size, cJSON_GetObjectItemCaseSensitive(e, "size")->valuedouble);
	cJSON_Delete(e);
}

/* --- hostile relays: SMTP runs off the loop ---------------------------------- */

static int s_tick(struct yj_loop *loop, void *arg)
{
	(void)loop;
	((struct fx *)arg)->ticks++;
	return 0;
}

/* Ends of DATA the receiver writing to maildir has left waiting ("slow", "hang"). */
static int s_waiting_lines(const char *maildir)
{
	char path[160];
	int n = 0, c;
	snprintf(path, sizeof(path), "%s/waiting.jsonl", maildir);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return 0;
	while ((c = fgetc(fp)) != EOF)
		n += c == '\n';
	fclose(fp);
	return n;
}

struct t_wait {
	const char *maildir;             /* the receiver's */
	int want;                        /* ends of DATA waiting */
	int reached;                     /* seen */
};

static int s_poll_waiting(struct yj_loop *loop, void *arg)
{
	struct t_wait *w = arg;
	if (s_waiting_lines(w->maildir) >= w->want) {
		w->reached = 1;
		yj_loop_stop(loop);
	}
	return 0;
}

/* Run the loop until the receiver writing to maildir holds want
 * deliveries at their end of DATA; no done may come meanwhile. */
static void s_run_until_waiting(struct fx *f, const char *maildir, int want)
{
	struct t_wait w = { .maildir = maildir, .want = want };
	f->want = MAX_DONE + 1;
	int64_t poll_timer = yj_loop_timer(f->loop, 20, 20, s_poll_waiting, &w);
	int64_t guard = yj_loop_timer(f->loop, RUN_LIMIT_MS, 0, s_guard, f);
	assert_true(poll_timer > 0 && guard > 0);
	assert_int_equal(yj_loop_run(f->loop), 0);
	yj_loop_timer_cancel(f->loop, poll_timer);
	yj_loop_timer_cancel(f->loop, guard);
	assert_false(f->timed_out);
	assert_true(w.reached);
	assert_int_equal(f->n_done, 0);
}

/* A relay that takes 3 s to answer the end of DATA: the message goes, and
 * the loop runs meanwhile. */
static void test_slow_relay_loop_runs(void **state)
{
	struct fx *f = *state;
	s_rx_start_delay(f, "slow", NULL, "3");
	s_init_adapter(f);
	struct yj_message m = s_notification(f, "tvp-000000000051");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, (void *)1), 0);
	int64_t tick = yj_loop_timer(f->loop, TICK_MS, TICK_MS, s_tick, f);
	assert_true(tick > 0);
	s_run(f, 1);
	yj_loop_timer_cancel(f->loop, tick);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);
	assert_int_equal(s_count_files(f->maildir, ".eml"), 1);
	/* The relay did keep it waiting at the end of DATA. */
	assert_int_equal(s_waiting_lines(f->maildir), 1);
	/* A count, not a latency: some 30 firings in those 3 s when the loop
	 * runs; a loop held inside curl for them fires it 0 to 2 times. */
	print_message("slow relay: %d firings of a %d ms loop timer during one delivery\n", f->ticks, TICK_MS);
	assert_true(f->ticks >= 10);
}

/* A relay that never answers the end of DATA: that delivery ends RETRY
 * after email.timeout_ms, and a second recipient's delivery through a
 * healthy relay completes while the first is stuck. */
static void test_hung_relay_retry_others_proceed(void **state)
{
	struct fx *f = *state;
	char *to2[1] = { "edt@westminster.example" };
	struct s_recipient rs2 = { .to = { to2, 1 } };
	struct yj_recipient r2 = { .id = "children_services:E09000033", .name = "Westminster Children's Services",
				   .transport = "email", .output_settings = &rs2 };

	f->settings.timeout_ms = 2000;
	s_rx_start(f, "hang", NULL);
	s_init_adapter(f);
	struct yj_message m1 = s_notification(f, "tvp-000000000061");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m1, s_done, (void *)1), 0);
	s_run_until_waiting(f, f->maildir, 1);

	/* The second goes through another relay, which answers: a reload
	 * (the transfer under way keeps the settings it started with). */
	f->port2 = s_rx_spawn(f->maildir2, "250", NULL, NULL, &f->rx2);
	s_set_url(f, f->port2);
	assert_int_equal(yj_adapter_out_email.reload(f->state, &f->cfg), 0);
	struct yj_message m2 = s_notification(f, "tvp-000000000062");
	m2.recipient = &r2;
	m2.settings = &rs2;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m2, s_done, (void *)2), 0);
	int64_t tick = yj_loop_timer(f->loop, TICK_MS, TICK_MS, s_tick, f);
	assert_true(tick > 0);
	s_run(f, 2);
	yj_loop_timer_cancel(f->loop, tick);

	/* The healthy relay's first, while the hung one still held the other. */
	assert_int_equal(f->order[0], 2);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);
	assert_string_equal(f->address[0], "edt@westminster.example");
	assert_int_equal(s_count_files(f->maildir2, ".eml"), 1);
	/* The hung one: RETRY, for the timeout, with nothing kept by that relay. */
	assert_int_equal(f->order[1], 1);
	assert_int_equal(f->res[1], YJ_DELIVERY_RETRY);
	assert_non_null(strcasestr(f->detail[1], "timeout") ? strcasestr(f->detail[1], "timeout")
							   : strcasestr(f->detail[1], "timed out"));
	assert_string_equal(f->address[1], "yot@mk.example.gov.uk,duty@mk.example.gov.uk");
	assert_int_equal(s_count_files(f->maildir, ".eml"), 0);
	print_message("hung relay: %d firings of a %d ms loop timer until its timeout (%s)\n", f->ticks, TICK_MS,
		      f->detail[1]);
	assert_true(f->ticks >= 5);
}

/* destroy with transfers stuck at their end of DATA (one per worker) and
 * more queued behind them returns, without a done: the alarm kills the
 * test, rather than let it hang, if it does not. */
static void test_destroy_stuck(void **state)
{
	struct fx *f = *state;
	char ids[S_WORKERS + 2][32];
	s_rx_start(f, "hang", NULL);
	s_init_adapter(f);
	for (int i = 0; i < S_WORKERS + 2; i++) {
		snprintf(ids[i], sizeof(ids[i]), "tvp-%012d", 80 + i);
		struct yj_message m = s_notification(f, ids[i]);
		assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, (void *)(intptr_t)i), 0);
	}
	s_run_until_waiting(f, f->maildir, S_WORKERS);
	alarm(5);
	int64_t t0 = yj_loop_now_ms();
	yj_adapter_out_email.destroy(&f->state);
	int64_t took = yj_loop_now_ms() - t0;
	alarm(0);
	assert_null(f->state);
	print_message("destroy with %d transfers stuck at the end of DATA and 2 queued: %lld ms\n", S_WORKERS,
		      (long long)took);
	/* Nothing reported, also not from the loop afterwards. */
	int64_t stop = yj_loop_timer(f->loop, 200, 0, s_guard, f);
	assert_true(stop > 0);
	assert_int_equal(yj_loop_run(f->loop), 0);
	assert_int_equal(f->n_done, 0);
	f->timed_out = 0;
}

/* deliver() copies everything it needs: the core's strings are borrowed
 * only during the call, and a reload right after does not change the
 * transaction under way. */
static void test_message_copied(void **state)
{
	struct fx *f = *state;
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	char *id = strdup("tvp-000000000071");
	char *json = strdup(s_json);
	char *kind = strdup("lac_in_custody");
	char *addr = strdup("yot@mk.example.gov.uk");
	char **to = calloc(1, sizeof(*to));
	struct s_recipient *rs = calloc(1, sizeof(*rs));
	struct yj_recipient *r = calloc(1, sizeof(*r));
	assert_true(id && json && kind && addr && to && rs && r);
	to[0] = addr;
	rs->to.v = to;
	rs->to.n = 1;
	r->id = "yjs:milton-keynes";
	r->name = "Milton Keynes YJS";
	struct yj_message m = s_notification(f, id);
	m.json = json;
	m.kind_name = kind;
	m.recipient = r;
	m.settings = rs;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &m, s_done, NULL), 0);
	memset(id, 'X', strlen(id));
	memset(json, 'X', strlen(json));
	memset(addr, 'X', strlen(addr));
	free(id);
	free(json);
	free(kind);
	free(addr);
	free(to);
	free(rs);
	free(r);
	free(f->settings.from);
	f->settings.from = strdup("other@tvp.example.org");
	s_set_url(f, 1);
	assert_int_equal(yj_adapter_out_email.reload(f->state, &f->cfg), 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);
	assert_string_equal(f->address[0], "yot@mk.example.gov.uk");
	cJSON *j = s_parse(f, 1);
	assert_string_equal(s_header(j, "message-id"), "<yjlink.tvp-000000000071@tvp.example.org>");
	assert_string_equal(s_header(j, "to"), "yot@mk.example.gov.uk");
	assert_string_equal(s_header(j, "from"), "yjlink@tvp.example.org");
	cJSON_Delete(j);
	char idx[256], line[1024];
	snprintf(idx, sizeof(idx), "%s/index.jsonl", f->maildir);
	FILE *fp = fopen(idx, "r");
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof(line), fp));
	fclose(fp);
	cJSON *e = cJSON_Parse(line);
	assert_non_null(e);
	assert_string_equal(s_jstr(e, "mail_from"), "yjlink@tvp.example.org");
	cJSON_Delete(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_message_lines),
		cmocka_unit_test(test_message_bytes),
		cmocka_unit_test(test_message_streamed),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_recipient),
		cmocka_unit_test(test_settings_table),
		cmocka_unit_test_setup_teardown(test_notification_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_json_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_451_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_550_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_451_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_550_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_required_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_optional_plain_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_20, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials_mode, setup, teardown),
		cmocka_unit_test(test_render_hostile),
		cmocka_unit_test(test_log_one_line),
		cmocka_unit_test_setup_teardown(test_bad_address_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receiver_script_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_relay_loop_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_relay_retry_others_proceed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_stuck, setup, teardown),
		cmocka_unit_test_setup_teardown(test_message_copied, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
