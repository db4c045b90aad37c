/* test_out_email.c: the email output adapter (adapters/out_email.c) against
 * a real SMTP server (tests/integration/smtp_receiver.py, aiosmtpd), driven
 * by the real loop and curl multi. Each stored message is parsed back with
 * Python's email package, the reference a mail client would be. */
#include "../../adapters/out_email.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAX_DONE 32
#define RUN_LIMIT_MS 30000

struct fx {
	char dir[64];                    /* temp dir: maildir, credentials, parser */
	char maildir[96];                /* where the receiver writes NNNN.eml */
	pid_t rx;                        /* the receiver process, 0 when none */
	int port;                        /* its port */
	struct yj_loop *loop;            /* the real loop */
	struct yj_curlm *curlm;          /* the real multi, in that loop */
	struct yj_config cfg;            /* hand-filled: only the email settings matter */
	struct yj_recipient rcpt;        /* the one recipient, transport email */
	char *to[4];                     /* rcpt.email_to.v */
	struct yj_core_api api;          /* what the adapter gets: loop, curlm, config() */
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

/* Start the receiver in mode; "down" only reserves a port nobody listens on. */
static void s_rx_start(struct fx *f, const char *mode, const char *auth)
{
	if (!strcmp(mode, "down")) {
		f->port = s_free_port();
		assert_true(f->port > 0);
	} else {
		char script[600], port[16] = "0";
		int p[2];
		snprintf(script, sizeof(script), "%s/tests/integration/smtp_receiver.py", s_source_dir());
		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			dup2(p[1], 1);
			const char *argv[12] = { "/usr/bin/python3", script, "--port", port, "--mode", mode,
						 "--maildir", f->maildir, NULL };
			if (auth) {
				argv[8] = "--auth";
				argv[9] = auth;
			}
			execv(argv[0], (char **)argv);
			_exit(127);
		}
		close(p[1]);
		f->rx = pid;
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
		assert_int_equal(sscanf(line, "READY %d", &f->port), 1);
	}
	free(f->cfg.email_smtp_url);
	assert_true(asprintf(&f->cfg.email_smtp_url, "smtp://127.0.0.1:%d", f->port) > 0);
}

static void s_rx_stop(struct fx *f)
{
	if (f->rx > 0) {
		kill(f->rx, SIGTERM);
		waitpid(f->rx, NULL, 0);
		f->rx = 0;
	}
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
	f->loop = yj_loop_new();
	if (!f->loop || yj_curlm_new(f->loop, &f->curlm) != 0)
		return -1;
	char *src = NULL;
	if (asprintf(&src, "%s/yjlinkd.conf", f->dir) < 0)
		return -1;
	f->cfg.source = src;
	f->cfg.email_smtp_url = strdup("smtp://127.0.0.1:1");
	f->cfg.email_from = strdup("yjlink@tvp.example.org");
	f->cfg.email_starttls = strdup("off");
	f->cfg.email_credentials_file = strdup("");
	f->to[0] = "yot@mk.example.gov.uk";
	f->to[1] = "duty@mk.example.gov.uk";
	f->rcpt.id = "yjs:milton-keynes";
	f->rcpt.transport = YJ_TRANSPORT_EMAIL;
	f->rcpt.email_to.v = f->to;
	f->rcpt.email_to.n = 2;
	f->api = (struct yj_core_api){ .core = f, .loop = f->loop, .config = s_api_config, .curlm = f->curlm };
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
	free(f->cfg.email_smtp_url);
	free(f->cfg.email_from);
	free(f->cfg.email_starttls);
	free(f->cfg.email_credentials_file);
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

static void s_init_adapter(struct fx *f)
{
	assert_int_equal(yj_adapter_out_email.init(&f->api, &f->state), 0);
	assert_int_equal(yj_adapter_out_email.start(f->state), 0);
}

static struct yj_delivery s_notification(struct fx *f, const char *id)
{
	return (struct yj_delivery){
		.notification_id = id,
		.recipient = &f->rcpt,
		.kind = "lac_in_custody",
		.subject = "[OFFICIAL-SENSITIVE] yjlink notification lac_in_custody",
		.text = "A looked-after child is in custody.\n.\nSee yjlink.\n",
		.html = "<p>A looked-after child is in custody.</p>",
		.extra_headers = "X-Yjlink-Kind: lac_in_custody\r\nX-Yjlink-Classification: OFFICIAL-SENSITIVE\r\n",
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
	char text[3000];
	/* A long line, a lone dot, non-ASCII: none may break the message. */
	memset(text, 'x', 2500);
	strcpy(text + 2500, "\r\n.\r\nCaf\xc3\xa9 \xe2\x80\x94 end\r\n");
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_delivery d = s_notification(f, "tvp-000000000042");
	d.text = text;
	d.subject = "[OFFICIAL-SENSITIVE] yjlink \xe2\x80\x94 notification f\xc3\xbcr MK";
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, (void *)1), 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);
	assert_string_equal(f->address[0], "yot@mk.example.gov.uk,duty@mk.example.gov.uk");

	cJSON *j = s_parse(f, 1);
	s_check_well_formed(j);
	assert_true(cJSON_GetObjectItemCaseSensitive(j, "max_line")->valueint <= 78);
	assert_string_equal(s_jstr(j, "shape"), "multipart/alternative(text/plain,text/html)");
	assert_string_equal(s_header(j, "subject"), d.subject);
	assert_string_equal(s_header(j, "x-yjlink-notification-id"), "tvp-000000000042");
	assert_string_equal(s_header(j, "x-yjlink-kind"), "lac_in_custody");
	assert_string_equal(s_header(j, "x-yjlink-classification"), "OFFICIAL-SENSITIVE");
	assert_string_equal(s_header(j, "to"), "yot@mk.example.gov.uk, duty@mk.example.gov.uk");
	assert_string_equal(s_header(j, "message-id"), "<yjlink.tvp-000000000042@tvp.example.org>");
	assert_string_equal(s_jstr(s_leaf(j, 0), "body"), text);
	assert_string_equal(s_jstr(s_leaf(j, 0), "charset"), "utf-8");
	assert_string_equal(s_jstr(s_leaf(j, 1), "body"), d.html);
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
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, (void *)2), 0);
	s_run(f, 2);
	assert_int_equal(f->res[1], YJ_DELIVERY_OK);
	j = s_parse(f, 2);
	assert_string_equal(s_header(j, "message-id"), "<yjlink.tvp-000000000042@tvp.example.org>");
	cJSON_Delete(j);
}

static void test_digest_ok(void **state)
{
	struct fx *f = *state;
	static const char csv[] =
		"section,seq,feed,source_id,occurred_at,person_id,given_name\r\n"
		"custody,42,custody,TVP-1,2026-11-21T23:14:02Z,P1,Zo\xc3\xab\r\n"
		"arrest,43,arrest,TVP-2,2026-11-21T23:20:00Z,P2,\"Smith, Jo\"\r\n";
	char subject[1200];
	/* Longer than one header line may be: it has to be encoded and folded. */
	snprintf(subject, sizeof(subject), "[OFFICIAL-SENSITIVE] yjlink daily digest %0*d 2026-11-22: 2 children",
		 1000, 7);
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_delivery d = {
		.notification_id = "tvp-digest-yjs:milton-keynes-2026-11-22",
		.recipient = &f->rcpt,
		.kind = "digest",
		.subject = subject,
		.text = "2 children.\n",
		.html = "<p>2 children.</p>\n",
		.extra_headers = "X-Yjlink-Digest-Id: tvp-digest-yjs:milton-keynes-2026-11-22\n"
				 "X-Yjlink-Window: 2026-11-21T07:00:00Z/2026-11-22T07:00:00Z",
		.attachment_name = "yjlink-digest-yjs:milton-keynes-2026-11-22.csv",
		.attachment = csv,
		.attachment_len = sizeof(csv) - 1,
	};
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_OK);

	cJSON *j = s_parse(f, 1);
	s_check_well_formed(j);
	assert_string_equal(s_jstr(j, "shape"),
			    "multipart/mixed(multipart/alternative(text/plain,text/html),text/csv)");
	assert_string_equal(s_header(j, "subject"), subject);
	assert_string_equal(s_header(j, "x-yjlink-notification-id"), d.notification_id);
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
	assert_string_equal(s_jstr(att, "body"), csv);
	cJSON_Delete(j);
}

/* One delivery against the receiver in mode; returns its result. */
static enum yj_delivery_result s_one(struct fx *f, const char *mode)
{
	s_rx_start(f, mode, NULL);
	s_init_adapter(f);
	struct yj_delivery d = s_notification(f, "tvp-000000000007");
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
	free(f->cfg.email_starttls);
	f->cfg.email_starttls = strdup("required");
	/* A plain relay must not get the message in clear when TLS is required. */
	assert_int_equal(s_one(f, "250"), YJ_DELIVERY_RETRY);
	assert_non_null(strstr(f->detail[0], "STARTTLS"));
}

static void test_starttls_optional_plain_ok(void **state)
{
	struct fx *f = *state;
	free(f->cfg.email_starttls);
	f->cfg.email_starttls = strdup("optional");
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
		struct yj_delivery d = s_notification(f, ids[i]);
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
	free(f->cfg.email_credentials_file);
	f->cfg.email_credentials_file = strdup("smtp.cred");
	assert_int_equal(s_one(f, "250") /* the receiver wants no AUTH */, YJ_DELIVERY_OK);
	s_rx_stop(f);
	yj_adapter_out_email.destroy(&f->state);

	/* Against a receiver that wants exactly these credentials. */
	f->n_done = 0;
	s_rm_tree(f->maildir);
	s_rx_start(f, "250", "yjlink:s3cr:et");
	s_init_adapter(f);
	struct yj_delivery d = s_notification(f, "tvp-000000000008");
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
	struct yj_delivery d = s_notification(f, "tvp-000000000009");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	/* Reported from the loop, not from inside deliver(). */
	assert_int_equal(f->n_done, 0);
	s_run(f, 1);
	assert_int_equal(f->res[0], YJ_DELIVERY_FATAL);
	assert_int_equal(s_count_files(f->maildir, ".eml"), 0);

	f->rcpt.email_to.n = 0;
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	s_run(f, 2);
	assert_int_equal(f->res[1], YJ_DELIVERY_FATAL);
}

static void test_destroy_in_flight(void **state)
{
	struct fx *f = *state;
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_delivery d = s_notification(f, "tvp-000000000010");
	assert_int_equal(yj_adapter_out_email.deliver(f->state, &d, s_done, NULL), 0);
	/* One loop pass: curl's first timer fires and the connection is under way. */
	int64_t stop = yj_loop_timer(f->loop, 1, 0, s_guard, f);
	assert_true(stop > 0);
	assert_int_equal(yj_loop_run(f->loop), 0);
	assert_int_equal(f->n_done, 0);
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
	struct yj_recipient r = { .id = "yjs:mk", .email_to = { to, 6 } };
	struct s_state st = { .from = "yjlink@tvp.example.org" };
	struct yj_delivery d = { .notification_id = "tvp-1", .recipient = &r, .subject = "looks =?encoded?= but is not",
				 .text = "t", .html = NULL, .extra_headers = "\r\n\r\nX-A: b\n\nX-C: d" };
	struct s_buf b = { 0 };
	(void)state;
	assert_int_equal(s_build_message(&st, &d, &b), 0);
	size_t headers_end = (size_t)(strstr(b.p, "\r\n\r\n") - b.p);
	/* Extra headers: CRLF each, and no empty line that would end the header early. */
	assert_non_null(strstr(b.p, "\r\nX-A: b\r\nX-C: d\r\nContent-Type: multipart/alternative"));
	assert_true(headers_end > (size_t)(strstr(b.p, "Content-Type:") - b.p));
	assert_non_null(strstr(b.p, "\r\nSubject: =?UTF-8?B?"));
	/* Every line CRLF-terminated and within 78 characters, the To: list folded. */
	for (const char *p = b.p; *p;) {
		const char *e = strstr(p, "\r\n");
		assert_non_null(e);
		assert_true(e - p <= 78);
		assert_null(memchr(p, '\n', (size_t)(e - p)));
		p = e + 2;
	}
	/* No html: a text/plain alternative alone. */
	assert_null(strstr(b.p, "text/html"));
	free(b.p);
}

static void test_receiver_script_index(void **state)
{
	/* The script's index line names a complete file (what integration tests rely on). */
	struct fx *f = *state;
	s_rx_start(f, "250", NULL);
	s_init_adapter(f);
	struct yj_delivery d = s_notification(f, "tvp-000000000011");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_message_lines),
		cmocka_unit_test_setup_teardown(test_notification_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digest_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_451_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_550_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_451_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_550_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_required_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_starttls_optional_plain_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_20, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_address_fatal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receiver_script_index, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
