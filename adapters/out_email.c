/* out_email.c: notifications and daily digests by email (interfaces.md §3, §5).
 *
 * One SMTP transaction per delivery through libcurl's multi interface
 * (daemon/curlm.h), so a slow relay never blocks the loop. We build the
 * RFC 5322 message ourselves: every body part is base64 (lines of 76, so no
 * line ever nears 998 and nothing in a body can look like a MIME boundary or
 * need dot-stuffing); curl does the SMTP dot-stuffing of the whole.
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
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "clock.h"
#include "config.h"
#include "curlm.h"
#include "err.h"
#include "log.h"
#include "loop.h"

#define S_TIMEOUT_MS 60000        /* whole transaction, connect to final reply */
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
	{ YJ_SETTING_STR, "starttls", S_OFF(starttls), "optional", 0, 0, "STARTTLS: required, optional or off" },
	/* A plain string, not YJ_SETTING_SECRET_FILE: the adapter reads the file
	 * itself, at init and at every reload, and only warns about its mode. */
	{ YJ_SETTING_STR, "credentials_file", S_OFF(credentials_file), "", 0, 0,
	  "file holding user:password for the relay (relative to the config file); empty = no login" },
};
#undef S_OFF

static const struct yj_setting s_recipient_table[] = {
	{ YJ_SETTING_STRLIST, "email", offsetof(struct s_recipient, to), NULL, 0, 0,
	  "transport email: the addresses it goes to, all in one transaction" },
};

extern const struct yj_adapter yj_adapter_out_email;

struct s_job;

struct s_state {
	const struct yj_core_api *api;  /* borrowed */
	char *url;                      /* owned: email.smtp_url */
	char *from;                     /* owned: email.from */
	long use_ssl;                   /* CURLUSESSL_* from email.starttls */
	char *user;                     /* owned: from the credentials file, NULL when none */
	char *password;                 /* owned, wiped before free; never logged */
	struct s_job *jobs;             /* owned: deliveries under way, newest first */
};

/* One delivery under way. */
struct s_job {
	struct s_state *st;             /* the adapter it belongs to */
	struct s_job *prev, *next;      /* in st->jobs */
	CURL *easy;                     /* owned; in the multi while running */
	struct curl_slist *rcpt;        /* owned: "<address>" per recipient, read by curl */
	char *msg;                      /* owned: the whole RFC 5322 message */
	size_t len;                     /* of msg */
	size_t pos;                     /* how much of msg curl has read */
	char *id;                       /* owned: notification or digest id, for log lines */
	const char *what;               /* "notification" or "digest", for log lines (static) */
	char *address;                  /* owned: comma-joined recipients, for the audit */
	yj_delivery_done_fn done;       /* the core's callback */
	void *done_arg;                 /* its argument */
	int64_t timer;                  /* > 0: a refusal waiting to be reported from the loop */
	enum yj_delivery_result refusal;/* what that timer reports */
	char refusal_detail[200];       /* its detail */
	char errbuf[CURL_ERROR_SIZE];   /* curl's own words about a failure */
};

/* A growing buffer whose first allocation failure sticks (like a yj_txn):
 * builders append without checking and look at err once at the end. */
struct s_buf {
	char *p;                        /* owned, NUL-terminated when err == 0 */
	size_t len;                     /* bytes used, without the NUL */
	size_t cap;                     /* bytes allocated */
	int err;                        /* YJ_ENOMEM once anything failed */
};

static void s_buf_add(struct s_buf *b, const void *data, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = YJ_ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
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
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)d[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		char q[4] = { s_b64[(v >> 18) & 63], s_b64[(v >> 12) & 63], i + 1 < n ? s_b64[(v >> 6) & 63] : '=',
			      i + 2 < n ? s_b64[v & 63] : '=' };
		s_buf_add(b, q, 4);
	}
}

/* Base64 of a body, in CRLF-terminated lines of S_B64_LINE characters. */
static void s_buf_b64_body(struct s_buf *b, const void *data, size_t n)
{
	const unsigned char *d = data;
	const size_t per_line = S_B64_LINE / 4 * 3;
	for (size_t i = 0; i < n; i += per_line) {
		s_buf_b64_word(b, d + i, n - i < per_line ? n - i : per_line);
		s_buf_add(b, "\r\n", 2);
	}
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
 * file s names, relative to the config file source. */
static int s_read_credentials(const struct s_settings *s, const char *source, char **user, char **password)
{
	char buf[S_CRED_MAX + 1];
	char *path = NULL;
	ssize_t n = 0;
	int fd = -1, rc = 0;
	struct stat sb;

	*user = *password = NULL;
	if (!s->credentials_file || !s->credentials_file[0])
		return 0;
	path = s_cred_path(source, s->credentials_file);
	if (!path) {
		rc = YJ_ENOMEM;
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0) {
		yj_err("out_email: email.credentials_file %s: %s", path, strerror(errno));
		rc = YJ_ECONFIG;
		goto out;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO))
		yj_warn("out_email: email.credentials_file %s is readable by others (chmod 600 it)", path);
	size_t got = 0;
	while (got < sizeof(buf) && (n = read(fd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	if (n < 0 || got > S_CRED_MAX) {
		yj_err("out_email: email.credentials_file %s: %s", path, n < 0 ? strerror(errno) : "too long");
		rc = YJ_ECONFIG;
		goto out;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
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
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
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
	if (!strcmp(s->starttls, "required"))
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
	if (job->easy)
		curl_easy_cleanup(job->easy);
	curl_slist_free_all(job->rcpt);
	free(job->msg);
	free(job->id);
	free(job->address);
	free(job);
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
	time_t t = (time_t)(yj_clock_now_us() / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
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
static void s_put_text_part(struct s_buf *b, const char *boundary, const char *type, const char *text)
{
	struct s_buf canon = { 0 };
	s_buf_fmt(b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", boundary,
		  type);
	s_buf_str(&canon, "");
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\r\n");
		s_buf_add(&canon, p, len);
		p += len;
		if (!*p)
			break;
		s_buf_str(&canon, "\r\n");
		p += p[0] == '\r' && p[1] == '\n' ? 2 : 1;
	}
	if (canon.err)
		b->err = canon.err;
	else
		s_buf_b64_body(b, canon.p, canon.len);
	free(canon.p);
}

static void s_put_alternative(struct s_buf *b, const char *text, const char *html)
{
	s_put_text_part(b, S_ALT_BOUNDARY, "text/plain", text ? text : "");
	if (html)
		s_put_text_part(b, S_ALT_BOUNDARY, "text/html", html);
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

/* One value of a notification, HTML-escaped. */
static void s_put_escaped(struct s_buf *b, const char *v)
{
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '<': s_buf_str(b, "&lt;"); break;
		case '>': s_buf_str(b, "&gt;"); break;
		case '&': s_buf_str(b, "&amp;"); break;
		case '"': s_buf_str(b, "&quot;"); break;
		default: s_buf_add(b, p, 1);
		}
	}
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
		s_buf_fmt(txt, "%s: %s\r\n", path, v);
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
	if (m->kind != YJ_MESSAGE_DIGEST) {
		s_buf_str(b, "Content-Type: multipart/alternative; boundary=\"" S_ALT_BOUNDARY "\"\r\n\r\n"
			     "This is a MIME message.\r\n");
		s_put_alternative(b, text, html);
		return b->err;
	}
	s_buf_str(b, "X-Yjlink-Digest-Id: ");
	s_put_clean(b, m->id);
	s_buf_str(b, "\r\nX-Yjlink-Window: ");
	s_put_clean(b, m->window_from);
	s_buf_str(b, "/");
	s_put_clean(b, m->window_to);
	s_buf_str(b, "\r\n");
	const char *name = m->csv_name && *m->csv_name ? m->csv_name : "attachment.csv";
	s_buf_str(b, "Content-Type: multipart/mixed; boundary=\"" S_MIXED_BOUNDARY "\"\r\n\r\n"
		     "This is a MIME message.\r\n"
		     "--" S_MIXED_BOUNDARY "\r\n"
		     "Content-Type: multipart/alternative; boundary=\"" S_ALT_BOUNDARY "\"\r\n\r\n");
	s_put_alternative(b, text, html);
	s_buf_str(b, "--" S_MIXED_BOUNDARY "\r\nContent-Type: text/csv; charset=utf-8; ");
	s_put_filename(b, "name", name);
	s_buf_str(b, "\r\nContent-Disposition: attachment; ");
	s_put_filename(b, "filename", name);
	s_buf_str(b, "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	s_buf_b64_body(b, m->csv ? m->csv : "", m->csv ? m->csv_len : 0);
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

/* Report to the core and free job. One log line per failure: the id and
 * what went wrong (reply code included), never the subject or the body. */
static void s_finish(struct s_job *job, enum yj_delivery_result res, const char *detail)
{
	if (res != YJ_DELIVERY_OK)
		yj_warn("out_email: %s %s: %s: %s", job->what, job->id, s_result_name(res), detail);
	else
		yj_debug("out_email: %s %s: sent (%s)", job->what, job->id, detail);
	s_job_unlink(job);
	/* done may deliver the recipient's next notification: this job is out of the list by then. */
	job->done(job->done_arg, res, detail, job->address);
	s_job_free(job);
}

static void s_on_done(void *arg, CURL *easy, CURLcode result)
{
	struct s_job *job = arg;
	char detail[CURL_ERROR_SIZE + 160];
	long code = 0;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	enum yj_delivery_result res = s_classify(result, code, job->errbuf, detail, sizeof(detail));
	s_finish(job, res, detail);
}

static int s_on_refusal(struct yj_loop *loop, void *arg)
{
	struct s_job *job = arg;
	(void)loop;
	job->timer = 0;
	s_finish(job, job->refusal, job->refusal_detail);
	return 0;
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

static int s_setup_easy(struct s_state *st, struct s_job *job)
{
	CURL *e = curl_easy_init();
	char *mail_from = NULL;
	int rc = 0;
	if (!e || asprintf(&mail_from, "<%s>", st->from) < 0) {
		mail_from = NULL;
		rc = YJ_ENOMEM;
		goto out;
	}
	job->easy = e;
	CURLcode c = CURLE_OK;
	/* Every string option is copied by curl: a reload may free ours meanwhile. */
	c = c ? c : curl_easy_setopt(e, CURLOPT_URL, st->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	c = c ? c : curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#endif
	c = c ? c : curl_easy_setopt(e, CURLOPT_MAIL_FROM, mail_from);
	c = c ? c : curl_easy_setopt(e, CURLOPT_MAIL_RCPT, job->rcpt);
	c = c ? c : curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	c = c ? c : curl_easy_setopt(e, CURLOPT_READFUNCTION, s_read);
	c = c ? c : curl_easy_setopt(e, CURLOPT_READDATA, job);
	c = c ? c : curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)job->len);
	c = c ? c : curl_easy_setopt(e, CURLOPT_USE_SSL, st->use_ssl);
	c = c ? c : curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	c = c ? c : curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)S_TIMEOUT_MS);
	/* Bounds the blocking QUIT curl sends when it closes a cached connection. */
	c = c ? c : curl_easy_setopt(e, CURLOPT_SERVER_RESPONSE_TIMEOUT, 10L);
	c = c ? c : curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	c = c ? c : curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->errbuf);
	if (st->user) {
		c = c ? c : curl_easy_setopt(e, CURLOPT_USERNAME, st->user);
		c = c ? c : curl_easy_setopt(e, CURLOPT_PASSWORD, st->password);
	}
	if (c != CURLE_OK) {
		yj_err("out_email: curl setup: %s", curl_easy_strerror(c));
		rc = c == CURLE_OUT_OF_MEMORY ? YJ_ENOMEM : YJ_EIO;
	}
out:
	if (!job->easy && e)
		curl_easy_cleanup(e);
	free(mail_from);
	return rc;
}

/* Refuse job from the loop (done must never come from inside deliver()). */
static int s_refuse(struct s_state *st, struct s_job *job, enum yj_delivery_result res)
{
	job->refusal = res;
	int64_t t = yj_loop_timer(st->api->loop, 0, 0, s_on_refusal, job);
	job->timer = t > 0 ? t : 0;
	return t < 0 ? (int)t : 0;
}

static int s_deliver(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg)
{
	static const struct yj_strlist no_one = { 0 };
	struct s_state *st = state;
	struct s_buf addr = { 0 }, msg = { 0 }, text = { 0 }, html = { 0 };
	struct s_job *job = NULL;
	int rc = 0;

	if (!st || !m || !m->id || !m->recipient || !done ||
	    (m->kind != YJ_MESSAGE_NOTIFICATION && m->kind != YJ_MESSAGE_DIGEST))
		return YJ_EINVAL;
	const char *what = m->kind == YJ_MESSAGE_DIGEST ? "digest" : "notification";
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
	if (m->kind == YJ_MESSAGE_DIGEST) {
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
		job->len = msg.len;
		msg.p = NULL;
		rc = s_setup_easy(st, job);
		if (rc == 0)
			rc = yj_curlm_add(st->api->curlm, job->easy, s_on_done, job);
	}
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
	free(msg.p);
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
	if (!s->starttls || (strcmp(s->starttls, "required") && strcmp(s->starttls, "optional") &&
			     strcmp(s->starttls, "off")))
		yj_diag_report(at->diag, at->file, at->line, "'email.starttls' must be required, optional or off");
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
	if (!api->curlm || !api->settings) {
		yj_err("out_email: no curl multi handle or settings from the core");
		rc = YJ_EINVAL;
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
	*state = st;
	st = NULL;
out:
	free(st);
	return rc;
}

static int s_start(void *state)
{
	/* Nothing to bind: each delivery opens its own transaction. */
	(void)state;
	return 0;
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	/* Transfers under way keep the settings they started with (curl copied them). */
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
		/* curl_easy_cleanup takes a running handle out of the multi itself;
		 * curlm never touches its stale record of it (curlm.c). */
		s_job_free(job);
	}
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
};
