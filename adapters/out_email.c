/* out_email.c: notifications and daily digests by email (interfaces.md §3, §5).
 *
 * One SMTP transaction per delivery, run off the event loop by a small pool
 * of worker threads (below). We build the RFC 5322 message ourselves, on
 * the loop, before it crosses to a worker: every body part is base64 (lines
 * of 76, so no line ever nears 998 and nothing in a body can look like a
 * MIME boundary or need dot-stuffing); curl does the SMTP dot-stuffing of
 * the whole.
 *
 * Why threads, and why one transfer per thread. libcurl's SMTP end of DATA
 * blocks even under the multi interface: smtp_done() sends "." and waits for
 * the relay's reply in smtp_block_statemach(), polling the socket itself
 * for as long as the response timeout allows. Driven by the loop's multi, a
 * relay taking 3 s per message froze ingest, webhooks, control and the
 * watchdog (issue 11); driven by one worker's multi, it would freeze every
 * other transfer of that multi the same way. So each transfer runs in
 * curl_easy_perform() on a thread of its own, and a relay that hangs on one
 * connection holds one worker (until email.timeout_ms) while the others,
 * and the loop, go on.
 *
 * Threads and ownership:
 *  - The loop thread owns struct s_state and every job until deliver()
 *    queues it. It alone renders messages, reads settings, logs, and calls
 *    the core's done(), from s_on_finished when the eventfd rings.
 *  - A queued job belongs to the pool (struct s_pool); the worker that takes
 *    it from the queue owns it until it puts it on the finished list, and
 *    the loop thread owns it again once it takes it from there. Only the
 *    owner touches a job's fields; a job carries copies of everything the
 *    transfer needs (URL, From, credentials, timeout, the whole message),
 *    since the core's strings are borrowed only during deliver() and a
 *    reload may replace the settings. A worker never touches s_state.
 *  - Each worker owns its easy handle (so its one cached connection): made,
 *    used and cleaned up on that thread only.
 *  - pool->mu guards the queue, the finished list, the counters and the
 *    table of open sockets. It is held only to move jobs and to open, close
 *    or shut a socket, never while curl waits on the network.
 *  - destroy() marks the pool stopping and shuts down (does not close)
 *    every socket the workers' curl holds: a blocked end-of-DATA or QUIT
 *    wait wakes at once and fails, so no dying connection is waited for.
 *    It joins the workers for at most S_STOP_WAIT_MS, leaves any that have
 *    not ended (a getaddrinfo nobody can interrupt) to end by themselves,
 *    and frees what it owns. The pool is freed by the last of the adapter
 *    and its workers to let go of it (pool->refs). Jobs under way are
 *    abandoned without a done: the core kept them in the outbox and sends
 *    them again (same Message-ID) after a restart.
 *
 * The adapter owns its settings: the `email` section (relay, From, STARTTLS,
 * credentials) and every email recipient's `email = [ addresses ]`. It gets
 * each disclosure as data (struct yj_message) and renders the mail itself: a
 * notification's JSON as "path: value" lines and an HTML table, a digest as
 * its text, its HTML and its CSV attachment.
 *
 * The Message-ID comes from the notification (or digest) id, so a resend
 * (after a crash, or a retry whose first attempt did arrive) carries the same
 * Message-ID and the receiving side can drop the repeat.
 *
 * All recipients of one delivery are in one transaction, all or nothing:
 * curl gives up on the first refused RCPT, so one bad address fails the
 * delivery for everyone rather than silently leaving one mailbox out.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "adapter.h"
#include "bigbuf.h"
#include "clock.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "netaddr.h"
#include "loop.h"
#include "secret.h"
#include "tz.h"

#define S_TIMEOUT_MS 60000        /* email.timeout_ms when a config has none */
#define S_CONNECT_MS 10000        /* of that, at most this long to connect */
#define S_WORKERS 8               /* transfers at once: one worker thread each */
#define S_WORKER_FDS 8            /* sockets one worker's curl holds at once, at most */
#define S_STOP_WAIT_MS 1000       /* destroy waits this long for the workers to end */
#define S_CRED_MAX 4096           /* a credentials file longer than this is not one */
#define S_B64_LINE 76             /* base64 characters per body line (RFC 2045) */
#define S_SUBJECT_RAW_MAX 900     /* longer subjects are encoded, which folds them */
#define S_ALT_BOUNDARY "=_yjlink-alt"
#define S_MIXED_BOUNDARY "=_yjlink-mixed"
#define S_PATH_MAX 256            /* longest field path rendered; longer ones are cut */

/* The `email` section, filled by the core's config loader from s_section_table. */
struct s_settings {
	char *smtp_url;                 /* smtp:// or smtps:// URL of the relay */
	char *from;                     /* envelope and header From */
	char *starttls;                 /* required|optional|off */
	char *credentials_file;         /* "user:password" on one line; "" = none */
	int64_t timeout_ms;             /* one transaction, connect to the final reply */
};

/* What every email recipient carries (s_recipient_table). */
struct s_recipient {
	struct yj_strlist to;           /* `email = [ addresses ]` */
};

#define S_OFF(f) offsetof(struct s_settings, f)
static const struct yj_setting s_section_table[] = {
	{ YJ_SETTING_STR, "smtp_url", S_OFF(smtp_url), "smtp://127.0.0.1:2525", 0, 0,
	  "SMTP relay for email recipients (smtp:// or smtps://)" },
	{ YJ_SETTING_STR, "from", S_OFF(from), "yjlink@localhost", 0, 0, "envelope and header From of every email" },
	{ YJ_SETTING_STR, "starttls", S_OFF(starttls), "", 0, 0,
	  "STARTTLS: required, optional or off; empty = required unless the relay is loopback" },
	/* A plain string, not YJ_SETTING_SECRET_FILE: the adapter reads the file
	 * itself, at init and at every reload, and only warns about its mode. */
	{ YJ_SETTING_STR, "credentials_file", S_OFF(credentials_file), "", 0, 0,
	  "file holding user:password for the relay (relative to the config file); empty = no login" },
	{ YJ_SETTING_INT, "timeout_ms", S_OFF(timeout_ms), "60000", 1000, 600000,
	  "per-message timeout, connect to the relay's final reply, milliseconds; then RETRY" },
};
#undef S_OFF

static const struct yj_setting s_recipient_table[] = {
	{ YJ_SETTING_STRLIST, "email", offsetof(struct s_recipient, to), NULL, 0, 0,
	  "transport email: the addresses it goes to, all in one transaction" },
};

extern const struct yj_adapter yj_adapter_out_email;

struct s_job;
struct s_pool;

struct s_state {
	const struct yj_core_api *api;  /* borrowed */
	char *url;                      /* owned: email.smtp_url */
	char *from;                     /* owned: email.from */
	long use_ssl;                   /* CURLUSESSL_* from email.starttls */
	long timeout_ms;                /* email.timeout_ms */
	char *user;                     /* owned: from the credentials file, NULL when none */
	char *password;                 /* owned, wiped before free; never logged */
	struct s_job *jobs;             /* owned: refusals waiting for their loop timer, newest first */
	struct s_pool *pool;            /* one reference of it: the workers and what they share */
	int watching;                   /* the pool's eventfd is in the loop */
};

/* One delivery. Its owner is the loop thread, then the pool, then the
 * loop thread again (the header comment): never two threads at once. */
struct s_job {
	struct s_state *st;             /* the adapter it belongs to; never read by a worker */
	struct s_job *prev, *next;      /* in st->jobs; next alone in the pool's queue or finished list */
	struct curl_slist *rcpt;        /* owned: "<address>" per recipient, read by curl */
	char *msg;                      /* owned: the whole RFC 5322 message */
	int msg_big;                    /* msg is from yj_big_realloc (bigbuf.h) */
	size_t len;                     /* of msg */
	size_t pos;                     /* how much of msg curl has read */
	char *url;                      /* owned: the relay, as when delivered */
	char *mail_from;                /* owned: "<email.from>" */
	char *user;                     /* owned: the login, NULL when none */
	char *password;                 /* owned, wiped before free; never logged */
	long use_ssl;                   /* CURLUSESSL_* */
	long timeout_ms;                /* the whole transaction */
	char *id;                       /* owned: notification or digest id, for log lines */
	const char *what;               /* "notification" or "digest", for log lines (static) */
	char *address;                  /* owned: comma-joined recipients, for the audit */
	yj_delivery_done_fn done;       /* the core's callback, called on the loop only */
	void *done_arg;                 /* its argument */
	int64_t timer;                  /* > 0: a refusal waiting to be reported from the loop */
	enum yj_delivery_result refusal;/* what that timer reports */
	char refusal_detail[200];       /* its detail */
	enum yj_delivery_result res;    /* what the worker found */
	char detail[CURL_ERROR_SIZE + 160]; /* its words for it */
	char errbuf[CURL_ERROR_SIZE];   /* curl's own words about a failure */
};

/* One worker thread. */
struct s_worker {
	struct s_pool *pool;            /* the pool it belongs to */
	pthread_t tid;                  /* set by the loop thread when it starts the thread */
	curl_socket_t fds[S_WORKER_FDS];/* [mu] sockets its curl has open; -1 for a free slot */
};

/* What the loop thread and the workers share; [mu] fields only under mu.
 * Freed by the last reference let go (s_pool_unref). */
struct s_pool {
	pthread_mutex_t mu;             /* never held while curl waits on the network */
	pthread_cond_t work;            /* a job was queued, or stop was set */
	unsigned refs;                  /* [mu] the adapter's one, and one per worker thread */
	atomic_int stop;                /* set under mu by destroy; read by curl callbacks without it */
	struct s_job *queue;            /* [mu] owned: waiting for a worker, oldest first */
	struct s_job *queue_tail;       /* [mu] its last */
	size_t queued;                  /* [mu] its length */
	struct s_job *finished;         /* [mu] owned: transferred, for the loop to report, newest first */
	unsigned n_workers;             /* [mu] threads started (w[0..n_workers-1]); grown by the loop thread only */
	unsigned n_idle;                /* [mu] of them waiting for a job */
	int efd;                        /* eventfd the workers ring (under mu, while not stopping); the loop's */
	struct s_worker w[S_WORKERS];   /* the workers */
};

/* A growing buffer whose first allocation failure sticks (like a yj_txn):
 * builders append without checking and look at err once at the end. */
struct s_buf {
	char *p;                        /* owned, NUL-terminated when err == 0 */
	size_t len;                     /* bytes used, without the NUL */
	size_t cap;                     /* bytes allocated */
	int err;                        /* YJ_ENOMEM once anything failed */
	int big;                        /* p is from yj_big_realloc (bigbuf.h): a digest's tens of MiB */
};

static void s_buf_add(struct s_buf *b, const void *data, size_t n)
{
	if (b->err || (b->err = yj_buf_reserve(&b->p, &b->cap, b->len + n + 1, b->big)))
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void s_buf_free(struct s_buf *b)
{
	if (b->big)
		yj_big_free(b->p);
	else
		free(b->p);
	b->p = NULL;
}

static void s_buf_str(struct s_buf *b, const char *s)
{
	s_buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void s_buf_fmt(struct s_buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->err = YJ_EINVAL;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		s_buf_add(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->err = YJ_ENOMEM;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s_buf_add(b, big, (size_t)n);
	free(big);
}

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of data without line breaks (an RFC 2047 encoded word). */
static void s_buf_b64_word(struct s_buf *b, const unsigned char *d, size_t n)
{
	char out[256];  /* a chunk at a time: one append per 192 bytes, not per 3 */
	size_t k = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)d[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		out[k++] = s_b64[(v >> 18) & 63];
		out[k++] = s_b64[(v >> 12) & 63];
		out[k++] = i + 1 < n ? s_b64[(v >> 6) & 63] : '=';
		out[k++] = i + 2 < n ? s_b64[v & 63] : '=';
		if (k == sizeof(out)) {
			s_buf_add(b, out, k);
			k = 0;
		}
	}
	if (k)
		s_buf_add(b, out, k);
}

/* A body part's base64 in the making: its bytes go in as they come (a
 * string, or a digest's rendering as the core writes it), text in its
 * canonical form (RFC 2049: every line break CRLF, whatever the producer
 * used), and come out in CRLF-terminated lines of S_B64_LINE characters. No
 * copy of the part is ever made. */
struct s_b64 {
	struct s_buf *b;                /* borrowed: the message */
	int canon;                      /* text: line breaks made CRLF, the part ends at a NUL */
	int cr;                         /* the last byte was a CR (its CRLF is out: an LF next is part of it) */
	int ended;                      /* a NUL was seen: the rest is not text */
	unsigned char line[S_B64_LINE / 4 * 3];
	size_t n;                       /* bytes in line */
};

static void s_b64_put(struct s_b64 *e, const unsigned char *d, size_t n)
{
	while (n) {
		size_t k = sizeof(e->line) - e->n < n ? sizeof(e->line) - e->n : n;
		memcpy(e->line + e->n, d, k);
		e->n += k;
		d += k;
		n -= k;
		if (e->n == sizeof(e->line)) {
			s_buf_b64_word(e->b, e->line, e->n);
			s_buf_add(e->b, "\r\n", 2);
			e->n = 0;
		}
	}
}

static void s_b64_write(struct s_b64 *e, const void *data, size_t n)
{
	const unsigned char *d = data;
	if (!e->canon) {
		s_b64_put(e, d, n);
		return;
	}
	size_t run = 0;
	for (size_t i = 0; i < n && !e->ended; i++) {
		if (d[i] != '\r' && d[i] != '\n' && d[i] != '\0') {
			e->cr = 0;
			continue;
		}
		s_b64_put(e, d + run, i - run);
		run = i + 1;
		if (d[i] == '\0')
			e->ended = 1;
		else if (d[i] == '\r' || !e->cr)
			s_b64_put(e, (const unsigned char *)"\r\n", 2);
		e->cr = d[i] == '\r';
	}
	if (!e->ended)
		s_b64_put(e, d + run, n - run);
}

static void s_b64_end(struct s_b64 *e)
{
	if (e->n) {
		s_buf_b64_word(e->b, e->line, e->n);
		s_buf_add(e->b, "\r\n", 2);
	}
	e->n = 0;
}

static ssize_t s_b64_stream_write(void *cookie, const char *data, size_t n)
{
	struct s_b64 *e = cookie;
	s_b64_write(e, data, n);
	return e->b->err ? -1 : (ssize_t)n;
}

/* Digest rendering part of m (yj_message.write_part), written by the core
 * straight into its base64. */
static void s_b64_part(struct s_buf *b, const struct yj_message *m, unsigned part, int canon)
{
	static const cookie_io_functions_t io = { .write = s_b64_stream_write };
	struct s_b64 e = { .b = b, .canon = canon };
	FILE *f = fopencookie(&e, "w", io);
	if (!f) {
		b->err = YJ_ENOMEM;
		return;
	}
	int rc = m->write_part(m->write_arg, part, f);
	if (fclose(f) && !rc)
		rc = YJ_ENOMEM;
	s_b64_end(&e);
	if (rc && !b->err)
		b->err = rc;
}

static void s_free_str(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* An address we put in an SMTP command and a header as it is: printable
 * ASCII, no specials that would change the header's meaning, one '@' with
 * something on both sides. Anything else is refused, not repaired. */
static int s_address_ok(const char *a)
{
	const char *at = strchr(a, '@');
	size_t n = strlen(a);
	if (n == 0 || n > 254 || !at || at == a || !at[1] || strchr(at + 1, '@'))
		return 0;
	for (const char *p = a; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("<>,;:\"()[]\\", c))
			return 0;
	}
	return 1;
}

/* The credentials file's path: relative paths are relative to the config
 * file's directory (source), like every other path in the config. */
static char *s_cred_path(const char *source, const char *f)
{
	const char *slash = source ? strrchr(source, '/') : NULL;
	char *r = NULL;
	if (f[0] == '/' || !slash)
		return strdup(f);
	if (asprintf(&r, "%.*s/%s", (int)(slash - source), source, f) < 0)
		return NULL;
	return r;
}

/* Read "user:password" (one line; the password may contain ':') from the
 * file s names, relative to the config file source, through the one secret
 * reader (secret.h): a file group or others may read is refused, not
 * warned about, and every buffer the secret went through is wiped. */
static int s_read_credentials(const struct s_settings *s, const char *source, char **user, char **password)
{
	char buf[S_CRED_MAX + 1];
	char err[512];
	char *path = NULL;
	int rc = 0;

	*user = *password = NULL;
	if (!s->credentials_file || !s->credentials_file[0])
		return 0;
	path = s_cred_path(source, s->credentials_file);
	if (!path) {
		rc = YJ_ENOMEM;
		goto out;
	}
	err[0] = '\0';
	if (yj_secret_read(path, buf, sizeof(buf), err, sizeof(err)) < 0) {
		yj_err("out_email: email.credentials_file: %s", err[0] ? err : path);
		rc = YJ_ECONFIG;
		goto out;
	}
	char *colon = strchr(buf, ':');
	if (!colon || colon == buf) {
		/* Say what is wrong without a byte of what is in it. */
		yj_err("out_email: email.credentials_file %s: want one line user:password", path);
		rc = YJ_ECONFIG;
		goto out;
	}
	*colon = '\0';
	*user = strdup(buf);
	*password = strdup(colon + 1);
	if (!*user || !*password) {
		s_free_str(user);
		s_free_str(password);
		rc = YJ_ENOMEM;
	}
out:
	yj_secret_wipe(buf, sizeof(buf));
	free(path);
	return rc;
}

/* Take the email settings of cfg; on failure the state keeps what it had. */
static int s_configure(struct s_state *st, const struct yj_config *cfg)
{
	const struct s_settings *s = cfg ? st->api->settings(cfg, &yj_adapter_out_email) : NULL;
	char *url = NULL, *from = NULL, *user = NULL, *password = NULL;
	long use_ssl;
	int rc = 0;

	/* The loader fills every string (defaults included); a config built
	 * some other way must not crash us. */
	if (!s || !s->smtp_url || !s->from || !s->starttls) {
		yj_err("out_email: the config has no email settings");
		rc = YJ_EINVAL;
		goto out;
	}
	/* Unsaid, STARTTLS is required for any relay but this machine's: a
	 * looked-after child's custody must not cross a network in clear. */
	if (!strcmp(s->starttls, "required") || (!*s->starttls && !yj_url_host_is_loopback(s->smtp_url)))
		use_ssl = CURLUSESSL_ALL;
	else if (!strcmp(s->starttls, "off"))
		use_ssl = CURLUSESSL_NONE;
	else
		use_ssl = CURLUSESSL_TRY;
	if (!s_address_ok(s->from)) {
		yj_err("out_email: email.from '%s' is not a plain address (local@domain)", s->from);
		rc = YJ_ECONFIG;
		goto out;
	}
	rc = s_read_credentials(s, cfg->source, &user, &password);
	if (rc < 0)
		goto out;
	url = strdup(s->smtp_url);
	from = strdup(s->from);
	if (!url || !from) {
		rc = YJ_ENOMEM;
		goto out;
	}
	free(st->url);
	free(st->from);
	s_free_str(&st->user);
	s_free_str(&st->password);
	st->url = url;
	st->from = from;
	st->user = user;
	st->password = password;
	st->use_ssl = use_ssl;
	/* The loader bounds it; a config built some other way gets the default. */
	st->timeout_ms = s->timeout_ms > 0 ? (long)s->timeout_ms : S_TIMEOUT_MS;
	url = from = user = password = NULL;
out:
	free(url);
	free(from);
	s_free_str(&user);
	s_free_str(&password);
	return rc;
}

static void s_job_free(struct s_job *job)
{
	if (!job)
		return;
	curl_slist_free_all(job->rcpt);
	if (job->msg_big)
		yj_big_free(job->msg);
	else
		free(job->msg);
	free(job->url);
	free(job->mail_from);
	s_free_str(&job->user);
	s_free_str(&job->password);
	free(job->id);
	free(job->address);
	free(job);
}

static void s_job_free_list(struct s_job *job)
{
	while (job) {
		struct s_job *next = job->next;
		s_job_free(job);
		job = next;
	}
}

static void s_job_unlink(struct s_job *job)
{
	struct s_state *st = job->st;
	if (job->prev)
		job->prev->next = job->next;
	else if (st && st->jobs == job)
		st->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	job->prev = job->next = NULL;
}

/* --- the message ---------------------------------------------------------- */

static void s_put_date(struct s_buf *b)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	/* tz.c, not gmtime_r: this runs on a worker thread, and a thread inside
	 * the C library's time functions at a fork would leave the forked
	 * helper stuck on their lock (tz.h). */
	yj_tz_utc(yj_clock_now_us() / 1000000, &tm);
	/* By hand: strftime's %a and %b follow the locale, RFC 5322 wants English. */
	s_buf_fmt(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday], tm.tm_mday,
		  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Subject: as it is when it is short printable ASCII, else RFC 2047 "B"
 * encoded words of whole UTF-8 characters, one per folded line. Control
 * characters become spaces so nothing can end the header early. */
static void s_put_subject(struct s_buf *b, const char *subject)
{
	size_t n = strlen(subject);
	/* "=?" in a raw subject could read as an encoded word: encode those too. */
	int raw = n <= S_SUBJECT_RAW_MAX && !strstr(subject, "=?");
	for (size_t i = 0; i < n && raw; i++)
		raw = subject[i] >= 0x20 && subject[i] < 0x7f;
	s_buf_str(b, "Subject: ");
	if (raw) {
		s_buf_add(b, subject, n);
		s_buf_str(b, "\r\n");
		return;
	}
	unsigned char *clean = malloc(n + 1);
	if (!clean) {
		b->err = YJ_ENOMEM;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)subject[i];
		clean[i] = c < 0x20 || c == 0x7f ? ' ' : c;
	}
	/* 45 bytes are 60 base64 characters: with "=?UTF-8?B?" and "?=" a word
	 * stays within 75, its line within 76; the first shares "Subject: ". */
	size_t i = 0;
	while (i < n || i == 0) {
		size_t max = i == 0 ? 39 : 45;
		size_t take = n - i < max ? n - i : max;
		/* Never split a UTF-8 sequence: back off to the start of the cut character. */
		if (i + take < n)
			while (take > 1 && (clean[i + take] & 0xc0) == 0x80)
				take--;
		if (i > 0)
			s_buf_str(b, "\r\n ");
		s_buf_str(b, "=?UTF-8?B?");
		s_buf_b64_word(b, clean + i, take);
		s_buf_str(b, "?=");
		i += take;
		if (n == 0)
			break;
	}
	s_buf_str(b, "\r\n");
	free(clean);
}

/* To: the addresses, folded after a comma before a line grows past 78. */
static void s_put_to(struct s_buf *b, const struct yj_strlist *to)
{
	size_t col = 4;
	s_buf_str(b, "To: ");
	for (size_t i = 0; i < to->n; i++) {
		size_t len = strlen(to->v[i]);
		if (i > 0) {
			s_buf_str(b, ",");
			col++;
			if (col + 1 + len > 78) {
				s_buf_str(b, "\r\n");
				col = 0;
			}
			s_buf_str(b, " ");
			col++;
		}
		s_buf_add(b, to->v[i], len);
		col += len;
	}
	s_buf_str(b, "\r\n");
}

/* Message-ID: <yjlink.ID@DOMAIN>, ID the notification id with anything
 * outside [A-Za-z0-9-_] written =XX, DOMAIN that of email.from. */
static void s_put_message_id(struct s_buf *b, const char *id, const char *from)
{
	s_buf_str(b, "Message-ID: <yjlink.");
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_')
			s_buf_add(b, p, 1);
		else
			s_buf_fmt(b, "=%02X", *p);
	}
	s_buf_str(b, "@");
	const char *dom = strrchr(from, '@');
	dom = dom ? dom + 1 : "";
	size_t used = 0;
	for (const char *p = dom; *p; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    (*p == '.' && p != dom && p[1] && p[1] != '.')) {
			s_buf_add(b, p, 1);
			used++;
		}
	if (!used)
		s_buf_str(b, "yjlink.invalid");
	s_buf_str(b, ">\r\n");
}

/* A header value from the core's data (an id, a time): control characters
 * are dropped, so none can end the header or start another. */
static void s_put_clean(struct s_buf *b, const char *v)
{
	for (const char *p = v ? v : ""; *p; p++)
		if ((unsigned char)*p >= 0x20 && *p != 0x7f)
			s_buf_add(b, p, 1);
}

/* A text part. Text is encoded in its canonical form (RFC 2049): every
 * line break CRLF, whatever the producer used. */
static void s_put_text_head(struct s_buf *b, const char *boundary, const char *type)
{
	s_buf_fmt(b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary,
		  type);
}

static void s_put_text_part(struct s_buf *b, const char *boundary, const char *type, const char *text)
{
	struct s_b64 e = { .b = b, .canon = 1 };
	s_put_text_head(b, boundary, type);
	s_b64_write(&e, text, strlen(text));
	s_b64_end(&e);
}

/* The text and HTML of m: a digest's straight from the core (m's
 * write_part), each in turn, else the strings text and html. */
static void s_put_alternative(struct s_buf *b, const struct yj_message *m, const char *text, const char *html)
{
	if (m->write_part) {
		s_put_text_head(b, S_ALT_BOUNDARY, "text/plain");
		s_b64_part(b, m, 1, 1);
		s_put_text_head(b, S_ALT_BOUNDARY, "text/html");
		s_b64_part(b, m, 2, 1);
	} else {
		s_put_text_part(b, S_ALT_BOUNDARY, "text/plain", text ? text : "");
		if (html)
			s_put_text_part(b, S_ALT_BOUNDARY, "text/html", html);
	}
	s_buf_str(b, "--" S_ALT_BOUNDARY "--\r\n");
}

/* filename="..." when the name is printable ASCII without quotes, else the
 * RFC 2231 form filename*=utf-8''%XX... that mail clients decode. */
static void s_put_filename(struct s_buf *b, const char *param, const char *name)
{
	int plain = 1;
	for (const char *p = name; *p && plain; p++)
		plain = *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\';
	if (plain) {
		s_buf_fmt(b, "%s=\"%s\"", param, name);
		return;
	}
	s_buf_fmt(b, "%s*=utf-8''", param);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p))
			s_buf_add(b, p, 1);
		else
			s_buf_fmt(b, "%%%02X", *p);
	}
}

/* Feed text as a body may show it (docs/digest.md "Hostile text", the
 * digest's choice, so every email reads the same): control characters (C0
 * with CR, LF and TAB, DEL, C1) and U+2028/U+2029 become a space, so a value
 * can neither end its "path: value" line nor start a forged one, nor reach
 * the terminal of someone who prints the mail; bidi controls (U+061C,
 * U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) are dropped, so no value
 * reorders what follows it. Each value sits alone at the end of its line
 * and in a <td> of its own (a block, which bounds any right-to-left text),
 * so no <bdi> is needed. The normaliser checked the UTF-8. */
static void s_put_clean_text(struct s_buf *b, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	while (*p) {
		size_t len = 1;
		int drop = 0, space = 0;
		if (*p < 0x20 || *p == 0x7f)
			space = 1;
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			space = 1, len = 2; /* C1 controls */
		else if (p[0] == 0xd8 && p[1] == 0x9c)
			drop = 1, len = 2; /* U+061C arabic letter mark */
		else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xaa && p[2] <= 0xae)))
			drop = 1, len = 3; /* U+200E, U+200F, U+202A..U+202E */
		else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
			space = 1, len = 3; /* U+2028, U+2029 */
		else if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			drop = 1, len = 3; /* U+2066..U+2069 */
		if (space)
			s_buf_add(b, " ", 1);
		else if (!drop)
			s_buf_add(b, p, 1);
		p += drop || space ? len : 1;
	}
}

/* One value of a notification, cleaned as above, then HTML-escaped. */
static void s_put_escaped(struct s_buf *b, const char *v)
{
	struct s_buf clean = { 0 };
	s_buf_str(&clean, "");
	s_put_clean_text(&clean, v);
	if (clean.err) {
		b->err = clean.err;
		free(clean.p);
		return;
	}
	for (const char *p = clean.p; *p; p++) {
		switch (*p) {
		case '<': s_buf_str(b, "&lt;"); break;
		case '>': s_buf_str(b, "&gt;"); break;
		case '&': s_buf_str(b, "&amp;"); break;
		case '"': s_buf_str(b, "&quot;"); break;
		case '\'': s_buf_str(b, "&#39;"); break;
		default: s_buf_add(b, p, 1);
		}
	}
	free(clean.p);
}

/* Plain text and a phone-readable HTML table of a notification: one
 * "path: value" line and one table row per leaf of its JSON, in order.
 * Array elements keep the array's path. */
static void s_render(const cJSON *o, const char *prefix, struct s_buf *txt, struct s_buf *html)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, o) {
		char path[S_PATH_MAX];
		if (it->string)
			snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", it->string);
		else
			snprintf(path, sizeof(path), "%s", prefix);
		if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
			s_render(it, path, txt, html);
			continue;
		}
		char *printed = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
		const char *v = cJSON_IsString(it) ? it->valuestring : printed;
		if (!v) {
			txt->err = YJ_ENOMEM;
			return;
		}
		s_put_clean_text(txt, path);
		s_buf_str(txt, ": ");
		s_put_clean_text(txt, v);
		s_buf_str(txt, "\r\n");
		/* Paths are schema field names; escaped anyway, in case one ever is not. */
		s_buf_str(html, "<tr><th style=\"text-align:left;padding:4px\">");
		s_put_escaped(html, path);
		s_buf_str(html, "</th><td style=\"padding:4px\">");
		s_put_escaped(html, v);
		s_buf_str(html, "</td></tr>\r\n");
		cJSON_free(printed);
	}
}

/* The text and HTML bodies of notification m, from its JSON. Returns 0,
 * YJ_EINVAL when the JSON is not an object, or YJ_ENOMEM. */
static int s_render_notification(const struct yj_message *m, struct s_buf *txt, struct s_buf *html)
{
	cJSON *o = m->json ? cJSON_ParseWithLength(m->json, m->json_len) : NULL;
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return YJ_EINVAL;
	}
	s_buf_str(txt, "");
	s_buf_str(html, "<!doctype html><html><head><meta charset=\"utf-8\">"
			"<meta name=\"viewport\" content=\"width=device-width\"></head><body>"
			"<p><b>OFFICIAL-SENSITIVE</b></p><table>\r\n");
	s_render(o, "", txt, html);
	s_buf_str(html, "</table></body></html>\r\n");
	cJSON_Delete(o);
	return txt->err ? txt->err : html->err;
}

/* The subject line, never personal data: the kind and id of a
 * notification; the YJS, date and number of children of a digest. */
static void s_subject(struct s_buf *b, const struct yj_message *m)
{
	if (m->kind == YJ_MESSAGE_DIGEST) {
		const char *name = m->recipient->name ? m->recipient->name : m->recipient->id ? m->recipient->id : "";
		s_buf_fmt(b, "[OFFICIAL-SENSITIVE] yjlink daily digest %s %s: %u children", name,
			  m->date ? m->date : "", m->children);
	} else if (m->kind == YJ_MESSAGE_REPORT) {
		const char *name = m->recipient->name ? m->recipient->name : m->recipient->id ? m->recipient->id : "";
		s_buf_fmt(b, "[OFFICIAL-SENSITIVE] yjlink board report %s %s", name, m->date ? m->date : "");
	} else {
		s_buf_fmt(b, "[OFFICIAL-SENSITIVE] yjlink %s %s", m->kind_name ? m->kind_name : "notification", m->id);
	}
}

/* The whole message to the addresses to, CRLF throughout: a notification
 * is multipart/alternative of text and html; a digest is multipart/mixed of
 * that and its CSV. Returns 0 or YJ_ENOMEM. */
static int s_build_message(const struct s_state *st, const struct yj_message *m, const struct yj_strlist *to,
			   const char *text, const char *html, struct s_buf *b)
{
	struct s_buf subject = { 0 };
	s_subject(&subject, m);
	if (subject.err)
		return subject.err;
	s_put_date(b);
	s_buf_fmt(b, "From: %s\r\n", st->from);
	s_put_to(b, to);
	s_put_subject(b, subject.p);
	free(subject.p);
	s_put_message_id(b, m->id, st->from);
	s_buf_str(b, "MIME-Version: 1.0\r\nX-Yjlink-Notification-Id: ");
	s_put_clean(b, m->id);
	s_buf_str(b, "\r\n");
	if (m->kind == YJ_MESSAGE_NOTIFICATION) {
		s_buf_str(b, "Content-Type: multipart/alternative; boundary=\"" S_ALT_BOUNDARY "\"\r\n\r\n"
			     "This is a MIME message.\r\n");
		s_put_alternative(b, m, text, html);
		return b->err;
	}
	s_buf_str(b, m->kind == YJ_MESSAGE_REPORT ? "X-Yjlink-Report-Id: " : "X-Yjlink-Digest-Id: ");
	s_put_clean(b, m->id);
	s_buf_str(b, m->kind == YJ_MESSAGE_REPORT ? "\r\nX-Yjlink-Period: " : "\r\nX-Yjlink-Window: ");
	s_put_clean(b, m->window_from);
	s_buf_str(b, "/");
	s_put_clean(b, m->window_to);
	s_buf_str(b, "\r\n");
	const char *name = m->csv_name && *m->csv_name ? m->csv_name : "attachment.csv";
	s_buf_str(b, "Content-Type: multipart/mixed; boundary=\"" S_MIXED_BOUNDARY "\"\r\n\r\n"
		     "This is a MIME message.\r\n"
		     "--" S_MIXED_BOUNDARY "\r\n"
		     "Content-Type: multipart/alternative; boundary=\"" S_ALT_BOUNDARY "\"\r\n\r\n");
	s_put_alternative(b, m, text, html);
	s_buf_str(b, "--" S_MIXED_BOUNDARY "\r\nContent-Type: text/csv; charset=utf-8; ");
	s_put_filename(b, "name", name);
	s_buf_str(b, "\r\nContent-Disposition: attachment; ");
	s_put_filename(b, "filename", name);
	s_buf_str(b, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	if (m->write_part) {
		s_b64_part(b, m, 4, 0);
	} else {
		struct s_b64 e = { .b = b };
		s_b64_write(&e, m->csv ? m->csv : "", m->csv ? m->csv_len : 0);
		s_b64_end(&e);
	}
	s_buf_str(b, "--" S_MIXED_BOUNDARY "--\r\n");
	return b->err;
}

/* --- the transfer --------------------------------------------------------- */

/* What one finished transaction means (engineering guide item 3). The reply
 * code is the last one the relay sent, so it is read only for failures that
 * come from a reply; a dropped connection after "354" is not the relay
 * refusing anything. */
static enum yj_delivery_result s_classify(CURLcode rc, long code, const char *errbuf, char *detail,
					  size_t size)
{
	const char *why = errbuf && *errbuf ? errbuf : curl_easy_strerror(rc);
	/* curl names no phase when the final reply after the data refuses. */
	if (rc == CURLE_WEIRD_SERVER_REPLY && code >= 400 && !(errbuf && *errbuf))
		why = "message refused after DATA";
	switch (rc) {
	case CURLE_OK:
		snprintf(detail, size, "SMTP %ld", code);
		return code >= 200 && code < 300 ? YJ_DELIVERY_OK : YJ_DELIVERY_RETRY;
	case CURLE_USE_SSL_FAILED:
		snprintf(detail, size, "STARTTLS required (email.starttls) but the relay does not offer it: %s", why);
		return YJ_DELIVERY_RETRY;
	case CURLE_LOGIN_DENIED:
		/* A relay-wide fault the operator fixes; dead-lettering every message meanwhile helps no one. */
		snprintf(detail, size, "SMTP %ld: relay refused our credentials: %s", code, why);
		return YJ_DELIVERY_RETRY;
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(detail, size, "connection: %s", why);
		return YJ_DELIVERY_RETRY;
	default:
		break;
	}
	snprintf(detail, size, "SMTP %ld: %s", code, why);
	/* 530 is "authentication (or STARTTLS) required": the relay's setup, not this message. */
	if (code >= 500 && code < 600 && code != 530)
		return YJ_DELIVERY_FATAL;
	return YJ_DELIVERY_RETRY;
}

static const char *s_result_name(enum yj_delivery_result r)
{
	return r == YJ_DELIVERY_OK ? "OK" : r == YJ_DELIVERY_RETRY ? "RETRY" : "FATAL";
}

/* Report to the core and free job (the loop thread). One log line per
 * failure: the id and what went wrong (reply code included), never the
 * subject or the body. */
static void s_finish(struct s_job *job, enum yj_delivery_result res, const char *detail)
{
	if (res != YJ_DELIVERY_OK)
		yj_warn("out_email: %s %s: %s: %s", job->what, job->id, s_result_name(res), detail);
	else
		yj_debug("out_email: %s %s: sent (%s)", job->what, job->id, detail);
	s_job_unlink(job);
	/* done may deliver the recipient's next notification: this job is out of every list by then. */
	job->done(job->done_arg, res, detail, job->address);
	s_job_free(job);
}

static int s_on_refusal(struct yj_loop *loop, void *arg)
{
	struct s_job *job = arg;
	(void)loop;
	job->timer = 0;
	s_finish(job, job->refusal, job->refusal_detail);
	return 0;
}

/* --- the pool: worker threads, each one transfer at a time ------------------ */

static int s_pool_new(struct s_pool **out)
{
	struct s_pool *p = calloc(1, sizeof(*p));
	int rc = 0, mu = 0;
	if (!p) {
		rc = YJ_ENOMEM;
		goto out;
	}
	p->efd = -1;
	if (pthread_mutex_init(&p->mu, NULL) != 0) {
		rc = YJ_EIO;
		goto out;
	}
	mu = 1;
	if (pthread_cond_init(&p->work, NULL) != 0) {
		rc = YJ_EIO;
		goto out;
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		pthread_cond_destroy(&p->work);
		rc = YJ_EIO;
		goto out;
	}
	atomic_init(&p->stop, 0);
	p->refs = 1;
	for (unsigned i = 0; i < S_WORKERS; i++) {
		p->w[i].pool = p;
		for (unsigned k = 0; k < S_WORKER_FDS; k++)
			p->w[i].fds[k] = CURL_SOCKET_BAD;
	}
	*out = p;
	p = NULL;
out:
	if (p && mu)
		pthread_mutex_destroy(&p->mu);
	free(p);
	return rc;
}

/* Let go of one reference; the last frees the pool and the jobs still in it. */
static void s_pool_unref(struct s_pool *p)
{
	pthread_mutex_lock(&p->mu);
	unsigned left = --p->refs;
	pthread_mutex_unlock(&p->mu);
	if (left)
		return;
	s_job_free_list(p->queue);
	s_job_free_list(p->finished);
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* CURLOPT_OPENSOCKETFUNCTION (a worker, inside curl): the socket is made
 * under mu and recorded, so destroy either sees it to shut it or this sees
 * stop and refuses to make it. */
static curl_socket_t s_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct s_worker *w = arg;
	curl_socket_t fd = CURL_SOCKET_BAD;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	pthread_mutex_lock(&w->pool->mu);
	unsigned k = 0;
	while (k < S_WORKER_FDS && w->fds[k] != CURL_SOCKET_BAD)
		k++;
	if (!atomic_load(&w->pool->stop) && k < S_WORKER_FDS) {
		fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
		if (fd >= 0)
			w->fds[k] = fd;
		else
			fd = CURL_SOCKET_BAD;
	}
	pthread_mutex_unlock(&w->pool->mu);
	return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: closed under mu, so destroy never shuts a
 * number the kernel has meanwhile given to someone else. */
static int s_close_socket(void *arg, curl_socket_t fd)
{
	struct s_worker *w = arg;
	pthread_mutex_lock(&w->pool->mu);
	for (unsigned k = 0; k < S_WORKER_FDS; k++)
		if (w->fds[k] == fd)
			w->fds[k] = CURL_SOCKET_BAD;
	int rc = close(fd);
	pthread_mutex_unlock(&w->pool->mu);
	return rc;
}

/* CURLOPT_XFERINFOFUNCTION: curl calls it at least once a second, also in
 * its blocking end-of-DATA wait; non-zero aborts the transfer. What the
 * socket shutdown does not wake (a name being resolved) ends here. */
static int s_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&((struct s_pool *)arg)->stop) != 0;
}

static size_t s_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct s_job *job = arg;
	size_t n = size * nitems;
	if (n > job->len - job->pos)
		n = job->len - job->pos;
	memcpy(buf, job->msg + job->pos, n);
	job->pos += n;
	return n;
}

/* One SMTP transaction of job on the worker's easy handle e, blocking this
 * thread only; the outcome goes into job->res and job->detail. */
static void s_transfer(struct s_worker *w, CURL *e, struct s_job *job)
{
	CURLcode c = e ? CURLE_OK : CURLE_FAILED_INIT;
	long code = 0;
	/* curl waits in seconds for a reply; the whole transaction bounds it in ms. */
	long reply_s = (job->timeout_ms + 999) / 1000;
	long connect_ms = job->timeout_ms < S_CONNECT_MS ? job->timeout_ms : S_CONNECT_MS;

	job->errbuf[0] = '\0';
	if (e) {
		/* Reset keeps the handle's connection cache: the next message may reuse it. */
		curl_easy_reset(e);
		c = c ? c : curl_easy_setopt(e, CURLOPT_URL, job->url);
#if LIBCURL_VERSION_NUM >= 0x075500
		c = c ? c : curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#endif
		c = c ? c : curl_easy_setopt(e, CURLOPT_MAIL_FROM, job->mail_from);
		c = c ? c : curl_easy_setopt(e, CURLOPT_MAIL_RCPT, job->rcpt);
		c = c ? c : curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		c = c ? c : curl_easy_setopt(e, CURLOPT_READFUNCTION, s_read);
		c = c ? c : curl_easy_setopt(e, CURLOPT_READDATA, job);
		c = c ? c : curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)job->len);
		c = c ? c : curl_easy_setopt(e, CURLOPT_USE_SSL, job->use_ssl);
		c = c ? c : curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		c = c ? c : curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, job->timeout_ms);
		c = c ? c : curl_easy_setopt(e, CURLOPT_SERVER_RESPONSE_TIMEOUT, reply_s);
		c = c ? c : curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
		c = c ? c : curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->errbuf);
		/* One cached connection per worker: the sockets table stays small. */
		c = c ? c : curl_easy_setopt(e, CURLOPT_MAXCONNECTS, 1L);
		c = c ? c : curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, s_open_socket);
		c = c ? c : curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, w);
		c = c ? c : curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, s_close_socket);
		c = c ? c : curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, w);
		c = c ? c : curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
		c = c ? c : curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, s_progress);
		c = c ? c : curl_easy_setopt(e, CURLOPT_XFERINFODATA, w->pool);
#if LIBCURL_VERSION_NUM >= 0x075700
		/* A transfer that ends (timeout, stop) while its name is still
		 * being resolved leaves the resolver thread to finish alone,
		 * rather than wait here for a getaddrinfo nobody can interrupt. */
		c = c ? c : curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
		if (job->user) {
			c = c ? c : curl_easy_setopt(e, CURLOPT_USERNAME, job->user);
			c = c ? c : curl_easy_setopt(e, CURLOPT_PASSWORD, job->password);
		}
		if (c == CURLE_OK)
			c = curl_easy_perform(e);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	}
	job->res = s_classify(c, code, job->errbuf, job->detail, sizeof(job->detail));
}

static void *s_worker_main(void *arg)
{
	struct s_worker *w = arg;
	struct s_pool *p = w->pool;
	/* This thread's alone. NULL (no memory): every job it takes fails RETRY. */
	CURL *easy = curl_easy_init();

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->queue && !atomic_load(&p->stop)) {
			p->n_idle++;
			pthread_cond_wait(&p->work, &p->mu);
			p->n_idle--;
		}
		if (atomic_load(&p->stop))
			break;
		struct s_job *job = p->queue;
		p->queue = job->next;
		if (!p->queue)
			p->queue_tail = NULL;
		p->queued--;
		job->next = NULL;
		pthread_mutex_unlock(&p->mu);

		s_transfer(w, easy, job);

		pthread_mutex_lock(&p->mu);
		if (atomic_load(&p->stop)) {
			/* Abandoned: nobody reads the finished list any more. */
			pthread_mutex_unlock(&p->mu);
			s_job_free(job);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		job->next = p->finished;
		p->finished = job;
		uint64_t one = 1;
		/* Fails only with 2^64 - 2 rings unread, and then the loop is woken already. */
		ssize_t rung = write(p->efd, &one, sizeof(one));
		(void)rung;
	}
	pthread_mutex_unlock(&p->mu);
	/* A QUIT on a live cached connection; destroy has shut the sockets of any other. */
	if (easy)
		curl_easy_cleanup(easy);
	s_pool_unref(p);
	return NULL;
}

/* Start one more worker when every one is busy (the loop thread, no lock
 * held). Returns 0, or YJ_EIO when there is not a single worker. */
static int s_pool_grow(struct s_pool *p)
{
	sigset_t all, old;
	unsigned i;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	if (p->queued <= p->n_idle || p->n_workers >= S_WORKERS) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	i = p->n_workers++;
	p->refs++;
	pthread_mutex_unlock(&p->mu);

	/* Signals are the loop's (signalfd): a worker must never take one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->w[i].tid, NULL, s_worker_main, &p->w[i]);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		return 0;
	pthread_mutex_lock(&p->mu);
	p->n_workers--;
	p->refs--;
	unsigned left = p->n_workers;
	pthread_mutex_unlock(&p->mu);
	yj_warn("out_email: cannot start a worker thread: %s", strerror(rc));
	return left ? 0 : YJ_EIO;
}

/* Hand job to the workers (the loop thread). Returns 0, or YJ_EIO when no
 * worker can run it: the job is then the caller's again. */
static int s_pool_submit(struct s_pool *p, struct s_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->queue_tail)
		p->queue_tail->next = job;
	else
		p->queue = job;
	p->queue_tail = job;
	p->queued++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	int rc = s_pool_grow(p);
	if (rc == 0)
		return 0;
	/* No worker at all to run it: take it back. */
	pthread_mutex_lock(&p->mu);
	struct s_job **pp = &p->queue, *last = NULL;
	while (*pp && *pp != job) {
		last = *pp;
		pp = &(*pp)->next;
	}
	if (*pp) {
		*pp = job->next;
		if (p->queue_tail == job)
			p->queue_tail = last;
		p->queued--;
	}
	pthread_mutex_unlock(&p->mu);
	job->next = NULL;
	return rc;
}

/* The workers' doorbell rang (the loop): report what they finished, oldest first. */
static int s_on_finished(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_state *st = arg;
	struct s_job *list, *fifo = NULL;
	uint64_t rings;
	(void)loop;
	(void)sock;
	(void)revents;
	/* EAGAIN: an earlier pass took these jobs already. */
	if (read(fd, &rings, sizeof(rings)) < 0 && errno != EAGAIN)
		yj_warn("out_email: reading the workers' eventfd: %s", strerror(errno));
	pthread_mutex_lock(&st->pool->mu);
	list = st->pool->finished;
	st->pool->finished = NULL;
	pthread_mutex_unlock(&st->pool->mu);
	while (list) {
		struct s_job *next = list->next;
		list->next = fifo;
		fifo = list;
		list = next;
	}
	while (fifo) {
		struct s_job *job = fifo;
		fifo = job->next;
		job->next = NULL;
		s_finish(job, job->res, job->detail);
	}
	return 0;
}

/* Stop the workers and let go of the pool (destroy, the loop thread). */
static void s_pool_stop(struct s_pool *p)
{
	struct s_job *queued, *finished;
	struct timespec deadline;
	unsigned n;

	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	/* Shut, not close: curl owns the descriptors and closes them itself. A
	 * shut socket wakes curl's poll at once and makes its QUIT fail instead
	 * of waiting for a relay that is not answering. */
	for (unsigned i = 0; i < p->n_workers; i++)
		for (unsigned k = 0; k < S_WORKER_FDS; k++)
			if (p->w[i].fds[k] != CURL_SOCKET_BAD)
				shutdown(p->w[i].fds[k], SHUT_RDWR);
	queued = p->queue;
	finished = p->finished;
	p->queue = p->queue_tail = p->finished = NULL;
	p->queued = 0;
	n = p->n_workers;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	/* Abandoned without a done: the outbox still has them. */
	s_job_free_list(queued);
	s_job_free_list(finished);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += S_STOP_WAIT_MS / 1000;
	deadline.tv_nsec += (long)(S_STOP_WAIT_MS % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	unsigned left = 0;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_timedjoin_np(p->w[i].tid, NULL, &deadline) != 0) {
			/* It holds its own reference and frees what it has when it ends. */
			pthread_detach(p->w[i].tid);
			left++;
		}
	}
	if (left)
		yj_warn("out_email: %u worker thread(s) still in curl at stop; left to end by themselves", left);
	s_pool_unref(p);
}

/* Refuse job from the loop (done must never come from inside deliver()). */
static int s_refuse(struct s_state *st, struct s_job *job, enum yj_delivery_result res)
{
	job->refusal = res;
	int64_t t = yj_loop_timer(st->api->loop, 0, 0, s_on_refusal, job);
	job->timer = t > 0 ? t : 0;
	return t < 0 ? (int)t : 0;
}

/* What the worker needs of the settings in force, copied into job. */
static int s_job_settings(const struct s_state *st, struct s_job *job)
{
	job->use_ssl = st->use_ssl;
	job->timeout_ms = st->timeout_ms > 0 ? st->timeout_ms : S_TIMEOUT_MS;
	job->url = strdup(st->url);
	if (asprintf(&job->mail_from, "<%s>", st->from) < 0)
		job->mail_from = NULL;
	if (st->user) {
		job->user = strdup(st->user);
		job->password = strdup(st->password);
	}
	if (!job->url || !job->mail_from || (st->user && (!job->user || !job->password)))
		return YJ_ENOMEM;
	return 0;
}

static int s_deliver(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg)
{
	static const struct yj_strlist no_one = { 0 };
	struct s_state *st = state;
	struct s_buf addr = { 0 }, msg = { 0 }, text = { 0 }, html = { 0 };
	struct s_job *job = NULL;
	int rc = 0;

	if (!st || !m || !m->id || !m->recipient || !done ||
	    (m->kind != YJ_MESSAGE_NOTIFICATION && m->kind != YJ_MESSAGE_DIGEST && m->kind != YJ_MESSAGE_REPORT))
		return YJ_EINVAL;
	const char *what = m->kind == YJ_MESSAGE_DIGEST ? "digest" : m->kind == YJ_MESSAGE_REPORT ? "board report" : "notification";
	/* A digest's or a board pack's message is tens of MiB: a mapping of its own. */
	msg.big = m->kind != YJ_MESSAGE_NOTIFICATION;
	job = calloc(1, sizeof(*job));
	if (!job) {
		rc = YJ_ENOMEM;
		goto out;
	}
	job->st = st;
	job->done = done;
	job->done_arg = arg;
	job->what = what;
	job->id = strdup(m->id);
	if (!job->id) {
		rc = YJ_ENOMEM;
		goto out;
	}
	/* No settings is no addresses: refused below, like an empty list. */
	const struct s_recipient *rs = m->settings;
	const struct yj_strlist *to = rs ? &rs->to : &no_one;
	const char *bad = NULL;
	for (size_t i = 0; i < to->n; i++) {
		if (!s_address_ok(to->v[i]))
			bad = "a recipient address is not a plain local@domain address";
		if (i > 0)
			s_buf_str(&addr, ",");
		s_buf_str(&addr, to->v[i]);
		char *cmd = NULL;
		struct curl_slist *l = NULL;
		if (asprintf(&cmd, "<%s>", to->v[i]) < 0 || !(l = curl_slist_append(job->rcpt, cmd))) {
			free(cmd);
			rc = YJ_ENOMEM;
			goto out;
		}
		free(cmd);
		job->rcpt = l;
	}
	if (to->n == 0)
		bad = "the recipient has no email addresses";
	s_buf_str(&addr, "");
	if (addr.err) {
		rc = addr.err;
		goto out;
	}
	job->address = addr.p;
	addr.p = NULL;

	if (bad) {
		/* Resending cannot fix a config fault; done must still come from the loop.
		 * The config check should have caught it: name the recipient to fix. */
		snprintf(job->refusal_detail, sizeof(job->refusal_detail), "recipient %.64s: %s",
			 m->recipient->id ? m->recipient->id : "?", bad);
		rc = s_refuse(st, job, YJ_DELIVERY_FATAL);
		goto queue;
	}
	if (m->kind != YJ_MESSAGE_NOTIFICATION) {
		rc = s_build_message(st, m, to, m->text, m->html, &msg);
	} else {
		rc = s_render_notification(m, &text, &html);
		if (rc == YJ_EINVAL) {
			/* The same JSON comes back on every retry: nothing to wait for. */
			snprintf(job->refusal_detail, sizeof(job->refusal_detail), "the notification JSON is not an object");
			rc = s_refuse(st, job, YJ_DELIVERY_FATAL);
			goto queue;
		}
		if (rc == 0)
			rc = s_build_message(st, m, to, text.p, html.p, &msg);
	}
	if (rc == 0) {
		job->msg = msg.p;
		job->msg_big = msg.big;
		job->len = msg.len;
		msg.p = NULL;
		rc = s_job_settings(st, job);
	}
	/* From here the job is the pool's: whole, borrowing nothing of m. */
	if (rc == 0 && (rc = s_pool_submit(st->pool, job)) == 0)
		job = NULL;
	goto out;
queue:
	if (rc < 0)
		goto out;
	job->next = st->jobs;
	if (st->jobs)
		st->jobs->prev = job;
	st->jobs = job;
	job = NULL;
out:
	if (rc < 0)
		yj_warn("out_email: %s %s not started: %s", what, m->id, yj_strerror(rc));
	s_job_free(job);
	free(addr.p);
	s_buf_free(&msg);
	free(text.p);
	free(html.p);
	return rc;
}

/* --- settings checks -------------------------------------------------------- */

/* v as a check may quote it: diagnostics go to a terminal. */
static const char *s_quotable(const char *v)
{
	for (const char *p = v ? v : ""; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "(with control characters)";
	return v ? v : "";
}

/* The `email` section, after the loader read it (`--check` and every load). */
static void s_check(const void *settings, const struct yj_setting_site *at)
{
	const struct s_settings *s = settings;
	if (!s->starttls || (*s->starttls && strcmp(s->starttls, "required") && strcmp(s->starttls, "optional") &&
			     strcmp(s->starttls, "off")))
		yj_diag_report(at->diag, at->file, at->line, "'email.starttls' must be required, optional or off");
	else if ((!strcmp(s->starttls, "optional") || !strcmp(s->starttls, "off")) && s->smtp_url &&
		 !strncmp(s->smtp_url, "smtp://", 7) && !yj_url_host_is_loopback(s->smtp_url))
		yj_warn("%s:%d: email.starttls = \"%s\" to %s, which is not loopback: mail may cross the network in clear",
			at->file, at->line, s->starttls, s->smtp_url);
	if (!s->smtp_url || (strncmp(s->smtp_url, "smtp://", 7) && strncmp(s->smtp_url, "smtps://", 8)))
		yj_diag_report(at->diag, at->file, at->line, "'email.smtp_url' must start smtp:// or smtps://");
	if (!s->from || !s_address_ok(s->from))
		yj_diag_report(at->diag, at->file, at->line, "'email.from' '%.100s' is not a plain address (local@domain)",
			       s_quotable(s->from));
}

/* One email recipient: something to send to, and nothing we would refuse
 * at delivery (and dead-letter) that could be said now. */
static void s_check_recipient(const void *settings, const struct yj_recipient *r, const struct yj_setting_site *at)
{
	const struct s_recipient *s = settings;
	const char *id = r && r->id ? r->id : "?";
	if (!s || s->to.n == 0) {
		yj_diag_report(at->diag, at->file, at->line, "recipient '%s': transport email needs email = [ addresses ]", id);
		return;
	}
	for (size_t i = 0; i < s->to.n; i++) {
		if (!s->to.v[i] || !s_address_ok(s->to.v[i]))
			yj_diag_report(at->diag, at->file, at->line,
				       "recipient '%s': email address %zu '%.100s' is not a plain address (local@domain)", id,
				       i + 1, s_quotable(s->to.v[i]));
	}
}

/* --- adapter callbacks ------------------------------------------------------ */

static int s_init(const struct yj_core_api *api, void **state)
{
	struct s_state *st = NULL;
	int rc = 0;
	if (!api->loop || !api->settings) {
		yj_err("out_email: no loop or settings from the core");
		rc = YJ_EINVAL;
		goto out;
	}
	/* Reference-counted and thread-safe in this libcurl: the workers' easy
	 * handles need it done before the first of them starts. Never undone:
	 * a worker left running at stop may still be in curl. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		yj_err("out_email: libcurl cannot be initialised");
		rc = YJ_EIO;
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		rc = YJ_ENOMEM;
		goto out;
	}
	st->api = api;
	rc = s_configure(st, api->config(api->core));
	if (rc < 0)
		goto out;
	rc = s_pool_new(&st->pool);
	if (rc < 0)
		goto out;
	*state = st;
	st = NULL;
out:
	if (st) {
		free(st->url);
		free(st->from);
		s_free_str(&st->user);
		s_free_str(&st->password);
	}
	free(st);
	return rc;
}

static int s_start(void *state)
{
	struct s_state *st = state;
	/* Nothing to bind: each delivery opens (or reuses) its own connection,
	 * on a worker started when there is work for it. */
	int rc = yj_loop_add(st->api->loop, NULL, st->pool->efd, ZMQ_POLLIN, s_on_finished, st);
	st->watching = rc == 0;
	return rc;
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	/* Transfers under way keep the settings they started with (each job has its copy). */
	return s_configure(state, cfg);
}

static void s_drain(void *state)
{
	/* Transfers under way finish (or time out) on their own; the core stops sending new ones. */
	(void)state;
}

static void s_destroy(void **state)
{
	struct s_state *st = state ? *state : NULL;
	if (!st)
		return;
	/* Whatever is still under way is abandoned without a done: the core
	 * kept it in the outbox and sends it again (same Message-ID) on start. */
	while (st->jobs) {
		struct s_job *job = st->jobs;
		s_job_unlink(job);
		if (job->timer > 0)
			yj_loop_timer_cancel(st->api->loop, job->timer);
		s_job_free(job);
	}
	if (st->watching)
		yj_loop_remove(st->api->loop, NULL, st->pool->efd);
	/* No worker rings the eventfd once stop is set: the pool may close it. */
	s_pool_stop(st->pool);
	st->pool = NULL;
	free(st->url);
	free(st->from);
	s_free_str(&st->user);
	s_free_str(&st->password);
	free(st);
	*state = NULL;
}

const struct yj_adapter yj_adapter_out_email = {
	.conf = {
		.name = "out_email",
		.section = "email",
		.settings = s_section_table,
		.n_settings = sizeof(s_section_table) / sizeof(s_section_table[0]),
		.settings_size = sizeof(struct s_settings),
		.check = s_check,
		.transport = "email",
		.recipient_settings = s_recipient_table,
		.n_recipient_settings = sizeof(s_recipient_table) / sizeof(s_recipient_table[0]),
		.recipient_settings_size = sizeof(struct s_recipient),
		.check_recipient = s_check_recipient,
	},
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.deliver = s_deliver,
	/* The email a person reads, and the CSV case systems import. */
	.digest_parts = 1 | 2 | 4,
	.digest_streamed = 1 | 2 | 4, /* each written straight into its base64: the message alone is held */
};
