/* out_webhook.c: the webhook transport (interfaces.md §3).
 *
 * One HTTP(S) POST of the message JSON per delivery (a notification, or the
 * digest object of §3), signed with the recipient's secret (HMAC-SHA256 over
 * the exact body), through the core's libcurl multi so nothing here ever
 * blocks the loop. The adapter only says OK, RETRY or FATAL (engineering
 * guide item 3): retries, backoff and the dead-letter queue are the core's.
 *
 * It has no section of its own; each webhook recipient carries `webhook = {
 * url; secret_file; timeout_ms; }` (s_recipient_table), which the core's
 * config loader reads and hands back with every message.
 *
 * The response body is read and thrown away unlogged: a receiver may echo
 * the personal data we sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "adapter.h"
#include "config.h"
#include "curlm.h"
#include "err.h"
#include "log.h"
#include "netaddr.h"

#define S_DEFAULT_TIMEOUT_MS 5000  /* as the table's default, for settings filled by hand */

/* What every webhook recipient carries, filled by the core's config loader
 * from s_recipient_table. */
struct s_recipient {
	char *url;                      /* webhook.url: the POST target */
	char *secret_file;              /* the first line of webhook.secret_file (the key, not the path); "" = none */
	char *secret;                   /* webhook.secret: the key inline (legacy); "" = none */
	int64_t timeout_ms;             /* webhook.timeout_ms: per request */
	int insecure;                   /* webhook.insecure: plain http:// to a host that is not loopback */
};

#define S_OFF(f) offsetof(struct s_recipient, f)
static const struct yj_setting s_recipient_table[] = {
	{ YJ_SETTING_STR, "webhook.url", S_OFF(url), NULL, 0, 0,
	  "transport webhook: the URL every message is POSTed to (http:// or https://)" },
	{ YJ_SETTING_SECRET_FILE, "webhook.secret_file", S_OFF(secret_file), "", 0, 0,
	  "file whose first line is the HMAC-SHA256 key of X-Yjlink-Signature (relative to the config file)" },
	{ YJ_SETTING_STR, "webhook.secret", S_OFF(secret), "", 0, 0,
	  "the key inline, when there is no secret_file (legacy: it then sits in the config)" },
	{ YJ_SETTING_INT, "webhook.timeout_ms", S_OFF(timeout_ms), "5000", 100, 600000,
	  "per-request timeout, milliseconds" },
	{ YJ_SETTING_BOOL, "webhook.insecure", S_OFF(insecure), "false", 0, 0,
	  "allow a plain http:// URL to a host that is not loopback (the body then crosses the network in clear)" },
};
#undef S_OFF

struct s_xfer;

struct s_state {
	const struct yj_core_api *api;  /* borrowed, valid until destroy */
	struct s_xfer *live;            /* owned: POSTs under way */
	int draining;                   /* drain() was called: take no new deliveries */
};

/* One POST under way, from deliver() to its completion. */
struct s_xfer {
	struct s_state *st;             /* the adapter it belongs to */
	CURL *easy;                     /* owned; holds its own copy of the body */
	struct curl_slist *headers;     /* owned */
	char *id;                       /* owned: notification or digest id, for the log line */
	char *address;                  /* owned: the URL without credentials, for log and audit */
	yj_delivery_done_fn done;       /* the core's, called exactly once unless destroyed first */
	void *arg;                      /* done's argument */
	struct s_xfer *prev;            /* in s_state.live */
	struct s_xfer *next;            /* (doubly linked: O(1) unlink) */
	char errbuf[CURL_ERROR_SIZE];   /* curl's own explanation of a failure */
};

static void s_xfer_free(struct s_xfer *x)
{
	if (!x)
		return;
	/* Also takes the handle out of the multi if it is still there. */
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->id);
	free(x->address);
	free(x);
}

static void s_unlink(struct s_state *st, struct s_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else if (st->live == x)
		st->live = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
}

/* Response bodies are never kept (they may echo personal data). */
static size_t s_discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* The URL as it may appear in logs and the audit: a token in the user
 * info or the query string is a credential, and must not leave here. */
static char *s_public_url(const char *url)
{
	CURLU *u = curl_url();
	char *s = NULL, *out = NULL;

	if (!u)
		goto out;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		/* Not parseable: nothing will be sent to it, and the operator needs
		 * to see what is configured to fix it. */
		out = strdup(url);
		goto out;
	}
	curl_url_set(u, CURLUPART_USER, NULL, 0);
	curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	curl_url_set(u, CURLUPART_QUERY, NULL, 0);
	curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
	if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
		out = strdup(s);
out:
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

/* Lowercase hex HMAC-SHA256 of body, keyed with the whole secret (any
 * length: HMAC hashes long keys itself, as every receiver's library does). */
static int s_sign(const char *secret, const char *body, size_t len, char hex[2 * crypto_auth_hmacsha256_BYTES + 1])
{
	crypto_auth_hmacsha256_state h;
	unsigned char mac[crypto_auth_hmacsha256_BYTES];

	if (crypto_auth_hmacsha256_init(&h, (const unsigned char *)secret, strlen(secret)) != 0 ||
	    crypto_auth_hmacsha256_update(&h, (const unsigned char *)body, len) != 0 ||
	    crypto_auth_hmacsha256_final(&h, mac) != 0)
		return YJ_EIO;
	sodium_bin2hex(hex, 2 * crypto_auth_hmacsha256_BYTES + 1, mac, sizeof(mac));
	sodium_memzero(&h, sizeof(h));
	return 0;
}

/* The key: secret_file's when it gave one, else the inline secret; NULL when neither. */
static const char *s_secret(const struct s_recipient *rs)
{
	if (rs->secret_file && *rs->secret_file)
		return rs->secret_file;
	if (rs->secret && *rs->secret)
		return rs->secret;
	return NULL;
}

/* A header value must not smuggle in a header of its own. */
static int s_header_safe(const char *v)
{
	if (!v)
		return 0;
	for (; *v; v++) {
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 0;
	}
	return 1;
}

__attribute__((format(printf, 2, 3))) static int s_add_header(struct curl_slist **list, const char *fmt, ...)
{
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return YJ_ENOMEM;
	/* curl copies the line. */
	struct curl_slist *l = curl_slist_append(*list, line);
	free(line);
	if (!l)
		return YJ_ENOMEM;
	*list = l;
	return 0;
}

static CURLcode s_setup(struct s_xfer *x, const struct yj_message *m, const struct s_recipient *rs)
{
	CURL *e = x->easy;
	long timeout = rs->timeout_ms > 0 ? (long)rs->timeout_ms : S_DEFAULT_TIMEOUT_MS;
	CURLcode c;

	if ((c = curl_easy_setopt(e, CURLOPT_URL, rs->url)) ||
	    /* Only HTTP(S); a redirect is the receiver's mistake (3xx is FATAL),
	     * never a reason to send personal data somewhere else. */
	    (c = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")) ||
	    (c = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L)) ||
	    /* Signals belong to the loop's signalfd (guide item 12). */
	    (c = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L)) ||
#if LIBCURL_VERSION_NUM >= 0x075700
	    /* A transfer that ends (its timeout, a stop) while its name is still
	     * being resolved leaves libcurl's resolver thread to finish alone:
	     * without this the end joins it, on the loop, until getaddrinfo
	     * gives up (docs/blocking.md, test_delivery WebhookDnsHoldTest). */
	    (c = curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L)) ||
#endif
	    (c = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout)) ||
	    (c = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf)) ||
	    (c = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_discard)) ||
	    (c = curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers)) ||
	    (c = curl_easy_setopt(e, CURLOPT_USERAGENT, "yjlinkd")) ||
	    (c = curl_easy_setopt(e, CURLOPT_POST, 1L)) ||
	    /* The size first: COPYPOSTFIELDS copies that many bytes, so the
	     * body survives the message struct and may contain NULs. */
	    (c = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->json_len)) ||
	    /* Never NULL: curl would then read the body from stdin. */
	    (c = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, m->json ? m->json : "")))
		return c;
	return CURLE_OK;
}

/* What the core should do about a finished POST. */
static enum yj_delivery_result s_classify(CURLcode result, long status, const char *errbuf, char *detail,
					  size_t size)
{
	if (result != CURLE_OK) {
		snprintf(detail, size, "%s", *errbuf ? errbuf : curl_easy_strerror(result));
		/* A URL curl cannot use will not get better by waiting. */
		if (result == CURLE_URL_MALFORMAT || result == CURLE_UNSUPPORTED_PROTOCOL)
			return YJ_DELIVERY_FATAL;
		/* Everything else is the network or the receiver being slow. */
		return YJ_DELIVERY_RETRY;
	}
	snprintf(detail, size, "HTTP %ld", status);
	if (status >= 200 && status < 300)
		return YJ_DELIVERY_OK;
	if (status == 408 || status == 429 || (status >= 500 && status < 600) || status == 0)
		return YJ_DELIVERY_RETRY;
	return YJ_DELIVERY_FATAL;
}

static void s_on_done(void *arg, CURL *easy, CURLcode result)
{
	static const char *const names[] = { "OK", "RETRY", "FATAL" };
	struct s_xfer *x = arg;
	long status = 0;
	char detail[CURL_ERROR_SIZE + 16];

	if (result == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	enum yj_delivery_result r = s_classify(result, status, x->errbuf, detail, sizeof(detail));
	if (r == YJ_DELIVERY_OK)
		yj_debug("out_webhook: %s delivered to %s: %s", x->id, x->address, detail);
	else
		yj_warn("out_webhook: %s to %s: %s (%s)", x->id, x->address, detail, names[r]);
	/* Off the live list first: done may start the next delivery right away. */
	s_unlink(x->st, x);
	x->done(x->arg, r, detail, x->address);
	s_xfer_free(x);
}

static int s_deliver(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg)
{
	struct s_state *st = state;
	struct s_xfer *x = NULL;
	char sig[2 * crypto_auth_hmacsha256_BYTES + 1];
	int rc = 0;

	if (!st || !m || !done || !m->recipient || !m->id || (!m->json && m->json_len) ||
	    (m->kind != YJ_MESSAGE_NOTIFICATION && m->kind != YJ_MESSAGE_DIGEST && m->kind != YJ_MESSAGE_REPORT))
		return YJ_EINVAL;
	if (st->draining)
		return YJ_ESHUTDOWN;
	const int digest = m->kind == YJ_MESSAGE_DIGEST;
	const int report = m->kind == YJ_MESSAGE_REPORT;
	const struct s_recipient *rs = m->settings;
	const char *secret = rs ? s_secret(rs) : NULL;
	/* check_recipient refuses both; settings filled by hand must not crash us. */
	if (!rs || !rs->url || !*rs->url || !secret) {
		yj_warn("out_webhook: %s: recipient %s has no webhook url or secret", m->id,
			m->recipient->id ? m->recipient->id : "?");
		return YJ_EINVAL;
	}
	/* Not printed: it would smuggle lines into the log as well. */
	if (!s_header_safe(m->id) || (digest && (!s_header_safe(m->window_from) || !s_header_safe(m->window_to)))) {
		yj_warn("out_webhook: %s, refused", digest ? "a digest id or window missing or with control characters"
							     : "a notification id with control characters");
		return YJ_EINVAL;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		rc = YJ_ENOMEM;
		goto out;
	}
	x->st = st;
	x->done = done;
	x->arg = arg;
	if (!(x->id = strdup(m->id)) || !(x->address = s_public_url(rs->url)) || !(x->easy = curl_easy_init())) {
		rc = YJ_ENOMEM;
		goto out;
	}
	if ((rc = s_sign(secret, m->json ? m->json : "", m->json_len, sig)))
		goto out;
	if ((rc = s_add_header(&x->headers, "Content-Type: application/json")) ||
	    /* Without this curl waits up to a second for "100 Continue" on
	     * bodies over 1 KiB, which many receivers never send. */
	    (rc = s_add_header(&x->headers, "Expect:")))
		goto out;
	/* A digest is no notification: receivers tell the two apart by these. */
	if (digest)
		rc = s_add_header(&x->headers, "X-Yjlink-Digest-Id: %s", m->id);
	else if (report)
		rc = s_add_header(&x->headers, "X-Yjlink-Report-Id: %s", m->id);
	else
		rc = s_add_header(&x->headers, "X-Yjlink-Notification-Id: %s", m->id);
	if (rc || (digest && (rc = s_add_header(&x->headers, "X-Yjlink-Window: %s/%s", m->window_from, m->window_to))) ||
	    (rc = s_add_header(&x->headers, "X-Yjlink-Signature: sha256=%s", sig)))
		goto out;
	CURLcode c = s_setup(x, m, rs);
	if (c != CURLE_OK) {
		yj_err("out_webhook: %s: cannot set up the request: %s", m->id, curl_easy_strerror(c));
		rc = c == CURLE_OUT_OF_MEMORY ? YJ_ENOMEM : YJ_EIO;
		goto out;
	}
	if ((rc = yj_curlm_add(st->api->curlm, x->easy, s_on_done, x)))
		goto out;
	x->next = st->live;
	if (st->live)
		st->live->prev = x;
	st->live = x;
	x = NULL;
out:
	sodium_memzero(sig, sizeof(sig));
	s_xfer_free(x);
	return rc;
}

/* One webhook recipient, after the loader read its table (`--check` and
 * every load): a URL we would POST to, and a key to sign with. */
static void s_check_recipient(const void *settings, const struct yj_recipient *r, const struct yj_setting_site *at)
{
	const struct s_recipient *rs = settings;
	const char *id = r && r->id ? r->id : "?";
	if (!rs || !rs->url || (strncmp(rs->url, "http://", 7) && strncmp(rs->url, "https://", 8)))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': transport webhook needs webhook.url (http:// or https://)", id);
	/* A child's custody record in clear across a network: only when the
	 * recipient says so (quality.md "Security"). */
	else if (!strncmp(rs->url, "http://", 7) && !rs->insecure && !yj_url_host_is_loopback(rs->url))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': webhook.url is plain http:// to a host that is not loopback: use https://, "
			       "or say webhook.insecure = true",
			       id);
	/* An inline key sits in a config file others may read: only for a
	 * demo on this machine; anything else reads it from a 0600 file. */
	if (rs && rs->url && rs->secret && *rs->secret && !yj_url_host_is_loopback(rs->url))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': webhook.secret inline is for loopback demos only: put the key in a 0600 "
			       "file and name it in webhook.secret_file",
			       id);
	if (!rs || !s_secret(rs))
		yj_diag_report(at->diag, at->file, at->line,
			       "recipient '%s': transport webhook needs webhook.secret_file (or webhook.secret) giving a non-empty key",
			       id);
}

static int s_init(const struct yj_core_api *api, void **state)
{
	struct s_state *st = NULL;

	if (!api || !state)
		return YJ_EINVAL;
	if (!api->curlm || !api->loop) {
		yj_err("out_webhook: the core offers no libcurl multi");
		return YJ_EINVAL;
	}
	/* Idempotent: 1 means another part of the process got there first. */
	if (sodium_init() < 0) {
		yj_err("out_webhook: libsodium cannot be initialised");
		return YJ_EIO;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return YJ_ENOMEM;
	st->api = api;
	*state = st;
	return 0;
}

static int s_start(void *state)
{
	/* Nothing to bind: transfers join the loop through the multi. */
	(void)state;
	return 0;
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	/* URL, secret and timeout come with each message (its recipient's
	 * settings): a reload applies from the next one, POSTs under way keep theirs. */
	(void)state;
	(void)cfg;
	return 0;
}

static void s_drain(void *state)
{
	struct s_state *st = state;
	/* POSTs under way may still finish in the grace period; new ones are
	 * refused and the core keeps those notifications for the next start. */
	if (st)
		st->draining = 1;
}

static void s_destroy(void **state)
{
	struct s_state *st = state ? *state : NULL;
	if (!st)
		return;
	/* Unfinished POSTs are abandoned without calling done: the core frees
	 * what it lent us, and the notifications go again (same id) after the
	 * restart, which receivers dedupe. */
	while (st->live) {
		struct s_xfer *x = st->live;
		s_unlink(st, x);
		s_xfer_free(x);
	}
	free(st);
	*state = NULL;
}

const struct yj_adapter yj_adapter_out_webhook = {
	.conf = {
		.name = "out_webhook",
		.transport = "webhook",
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
	.digest_parts = 8, /* the digest object as the POST body */
};
