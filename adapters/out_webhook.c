/* out_webhook.c: the webhook transport (interfaces.md §3).
 *
 * One HTTP(S) POST of the notification JSON per delivery, signed with the
 * recipient's secret (HMAC-SHA256 over the exact body), through the core's
 * libcurl multi so nothing here ever blocks the loop. The adapter only says
 * OK, RETRY or FATAL (engineering guide item 3): retries, backoff and the
 * dead-letter queue are the core's.
 *
 * The response body is read and thrown away unlogged: a receiver may echo
 * the personal data we sent.
 */
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

#define S_DEFAULT_TIMEOUT_MS 5000  /* as config.c's default, for a recipient built by hand */

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
	char *id;                       /* owned: notification id, for the log line */
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

/* A header value must not smuggle in a header of its own. */
static int s_header_safe(const char *v)
{
	for (; *v; v++) {
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return 0;
	}
	return 1;
}

static int s_add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *n = curl_slist_append(*list, line);
	if (!n)
		return YJ_ENOMEM;
	*list = n;
	return 0;
}

static CURLcode s_setup(struct s_xfer *x, const struct yj_delivery *d, const char *url)
{
	CURL *e = x->easy;
	long timeout = d->recipient->webhook_timeout_ms > 0 ? (long)d->recipient->webhook_timeout_ms
							    : S_DEFAULT_TIMEOUT_MS;
	CURLcode c;

	if ((c = curl_easy_setopt(e, CURLOPT_URL, url)) ||
	    /* Only HTTP(S); a redirect is the receiver's mistake (3xx is FATAL),
	     * never a reason to send personal data somewhere else. */
	    (c = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https")) ||
	    (c = curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L)) ||
	    /* Signals belong to the loop's signalfd (guide item 12). */
	    (c = curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L)) ||
	    (c = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout)) ||
	    (c = curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf)) ||
	    (c = curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_discard)) ||
	    (c = curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers)) ||
	    (c = curl_easy_setopt(e, CURLOPT_USERAGENT, "yjlinkd")) ||
	    (c = curl_easy_setopt(e, CURLOPT_POST, 1L)) ||
	    /* The size first: COPYPOSTFIELDS copies that many bytes, so the
	     * body survives the delivery struct and may contain NULs. */
	    (c = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->json_len)) ||
	    /* Never NULL: curl would then read the body from stdin. */
	    (c = curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, d->json ? d->json : "")))
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

static int s_deliver(void *state, const struct yj_delivery *d, yj_delivery_done_fn done, void *arg)
{
	struct s_state *st = state;
	struct s_xfer *x = NULL;
	char sig[2 * crypto_auth_hmacsha256_BYTES + 1];
	char *line = NULL;
	int rc = 0;

	if (!st || !d || !done || !d->recipient || !d->notification_id || (!d->json && d->json_len))
		return YJ_EINVAL;
	if (st->draining)
		return YJ_ESHUTDOWN;
	const char *url = d->recipient->webhook_url;
	const char *secret = d->recipient->webhook_secret;
	/* config.c refuses both; a hand-built config must not crash us. */
	if (!url || !*url || !secret || !*secret) {
		yj_warn("out_webhook: %s: recipient %s has no webhook url or secret", d->notification_id,
			d->recipient->id ? d->recipient->id : "?");
		return YJ_EINVAL;
	}
	/* Not printed: it would smuggle lines into the log as well. */
	if (!s_header_safe(d->notification_id)) {
		yj_warn("out_webhook: a notification id with control characters, refused");
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
	if (!(x->id = strdup(d->notification_id)) || !(x->address = s_public_url(url)) ||
	    !(x->easy = curl_easy_init())) {
		rc = YJ_ENOMEM;
		goto out;
	}
	if ((rc = s_sign(secret, d->json ? d->json : "", d->json_len, sig)))
		goto out;
	if ((rc = s_add_header(&x->headers, "Content-Type: application/json")) ||
	    /* Without this curl waits up to a second for "100 Continue" on
	     * bodies over 1 KiB, which many receivers never send. */
	    (rc = s_add_header(&x->headers, "Expect:")))
		goto out;
	if (asprintf(&line, "X-Yjlink-Notification-Id: %s", d->notification_id) < 0) {
		line = NULL;
		rc = YJ_ENOMEM;
		goto out;
	}
	if ((rc = s_add_header(&x->headers, line)))
		goto out;
	free(line);
	if (asprintf(&line, "X-Yjlink-Signature: sha256=%s", sig) < 0) {
		line = NULL;
		rc = YJ_ENOMEM;
		goto out;
	}
	if ((rc = s_add_header(&x->headers, line)))
		goto out;
	CURLcode c = s_setup(x, d, url);
	if (c != CURLE_OK) {
		yj_err("out_webhook: %s: cannot set up the request: %s", d->notification_id, curl_easy_strerror(c));
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
	free(line);
	sodium_memzero(sig, sizeof(sig));
	s_xfer_free(x);
	return rc;
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
	/* URL, secret and timeout are read from the recipient at each delivery:
	 * a reload applies from the next one, POSTs under way keep theirs. */
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
	.name = "out_webhook",
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.transport = YJ_TRANSPORT_WEBHOOK,
	.deliver = s_deliver,
};
