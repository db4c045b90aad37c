/* zap.c: see zap.h. */
#include "zap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "loop.h"
#include "secret.h"

#define S_KEY_BYTES 32       /* a CURVE public key */
#define S_KEY_Z85 40         /* ... as Z85 text */
#define S_FRAMES 8           /* frames kept of a request: RFC 27 has 7 for CURVE */
#define S_READ_MAX 256       /* requests answered per wake-up, then the loop comes back */

struct s_key {
	uint8_t key[S_KEY_BYTES];   /* the public key, decoded */
	char *name;              /* owned: the user id answered for it */
};

/* Domains counted one by one for the metrics (yjl1, yjn1, and room). */
#define S_DOMAINS_COUNTED 8

struct s_domain {
	char *domain;            /* owned */
	struct s_key *keys;      /* owned, n of them */
	size_t n;
};

struct yj_zap {
	struct yj_loop *loop;    /* borrowed */
	void *sock;              /* REP, owned */
	struct s_domain *domains; /* owned, n_domains */
	size_t n_domains;
	uint64_t accepted, refused;     /* ZAP requests answered 200 and 400 since start (for a debugger) */
	struct {
		char domain[16];         /* "" = a free slot */
		uint64_t refused;
	} by_domain[S_DOMAINS_COUNTED]; /* refusals by the request's domain; the last slot is "other" */
	/* A refused client reconnects every few hundred milliseconds: its key
	 * is logged once a minute, with how many refusals were not logged. */
	uint8_t last_key[S_KEY_BYTES]; /* the last refused key logged */
	int64_t last_logged_ms;         /* when (loop clock); 0: none yet */
	uint64_t unlogged;              /* its refusals since, not logged */
};

#define S_LOG_EVERY_MS 60000

int yj_zap_key_ok(const char *text)
{
	uint8_t key[S_KEY_BYTES];
	if (!text || strlen(text) != S_KEY_Z85)
		return 0;
	return zmq_z85_decode(key, text) != NULL;
}

static void s_domain_clear(struct s_domain *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->keys[i].name);
	free(d->keys);
	d->keys = NULL;
	d->n = 0;
}

static struct s_domain *s_domain_find(struct yj_zap *zap, const void *name, size_t len)
{
	for (size_t i = 0; i < zap->n_domains; i++) {
		if (strlen(zap->domains[i].domain) == len && !memcmp(zap->domains[i].domain, name, len))
			return &zap->domains[i];
	}
	return NULL;
}

int yj_zap_set_keys(struct yj_zap *zap, const char *domain, const char *const *names, const char *const *keys,
		    size_t n)
{
	struct s_key *v = NULL;
	size_t filled = 0;
	int rc = 0;

	if (!zap || !domain || (n && (!names || !keys)))
		return YJ_EINVAL;
	/* Built whole before the old table goes: a bad key changes nothing. */
	if (n && !(v = calloc(n, sizeof(*v)))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (; filled < n; filled++) {
		if (!yj_zap_key_ok(keys[filled])) {
			rc = YJ_EINVAL;
			goto out;
		}
		zmq_z85_decode(v[filled].key, keys[filled]);
		if (!(v[filled].name = strdup(names[filled] ? names[filled] : ""))) {
			rc = YJ_ENOMEM;
			goto out;
		}
	}
	struct s_domain *d = s_domain_find(zap, domain, strlen(domain));
	if (!d) {
		struct s_domain *nd = realloc(zap->domains, (zap->n_domains + 1) * sizeof(*nd));
		if (!nd) {
			rc = YJ_ENOMEM;
			goto out;
		}
		zap->domains = nd;
		d = &zap->domains[zap->n_domains];
		memset(d, 0, sizeof(*d));
		if (!(d->domain = strdup(domain))) {
			rc = YJ_ENOMEM;
			goto out;
		}
		zap->n_domains++;
	}
	s_domain_clear(d);
	d->keys = v;
	d->n = n;
	v = NULL;
out:
	if (v) {
		for (size_t i = 0; i < filled && i < n; i++)
			free(v[i].name);
		free(v);
	}
	return rc;
}

/* The name key stands for in domain d, or NULL. */
static void s_count_refusal(struct yj_zap *zap, const char *domain)
{
	const char *name = domain && strlen(domain) < sizeof(zap->by_domain[0].domain) ? domain : "other";
	size_t i;
	for (i = 0; i + 1 < S_DOMAINS_COUNTED; i++) {
		if (!zap->by_domain[i].domain[0])
			snprintf(zap->by_domain[i].domain, sizeof(zap->by_domain[i].domain), "%s", name);
		if (!strcmp(zap->by_domain[i].domain, name))
			break;
	}
	if (i + 1 == S_DOMAINS_COUNTED)
		snprintf(zap->by_domain[i].domain, sizeof(zap->by_domain[i].domain), "other");
	zap->by_domain[i].refused++;
}

size_t yj_zap_refusals(const struct yj_zap *zap, size_t i, const char **domain, uint64_t *n)
{
	if (!zap || i >= S_DOMAINS_COUNTED || !zap->by_domain[i].domain[0])
		return 0;
	*domain = zap->by_domain[i].domain;
	*n = zap->by_domain[i].refused;
	return 1;
}

static const char *s_lookup(const struct s_domain *d, const void *key, size_t len)
{
	if (!d || len != S_KEY_BYTES)
		return NULL;
	for (size_t i = 0; i < d->n; i++) {
		if (!memcmp(d->keys[i].key, key, S_KEY_BYTES))
			return d->keys[i].name;
	}
	return NULL;
}

/* The six frames of a ZAP reply (RFC 27): version, request id, status
 * code, status text, user id, metadata (none). */
static void s_reply(struct yj_zap *zap, zmq_msg_t *request_id, const char *code, const char *text, const char *user)
{
	int rc = zmq_send(zap->sock, "1.0", 3, ZMQ_SNDMORE);
	if (rc >= 0)
		rc = zmq_send(zap->sock, request_id ? zmq_msg_data(request_id) : "", request_id ? zmq_msg_size(request_id) : 0,
			      ZMQ_SNDMORE);
	if (rc >= 0)
		rc = zmq_send(zap->sock, code, 3, ZMQ_SNDMORE);
	if (rc >= 0)
		rc = zmq_send(zap->sock, text, strlen(text), ZMQ_SNDMORE);
	if (rc >= 0)
		rc = zmq_send(zap->sock, user, strlen(user), ZMQ_SNDMORE);
	if (rc >= 0)
		rc = zmq_send(zap->sock, "", 0, 0);
	if (rc < 0)
		yj_err("zap: cannot answer a ZAP request: %s", zmq_strerror(zmq_errno()));
}

static int s_frame_is(zmq_msg_t *m, const char *s)
{
	return zmq_msg_size(m) == strlen(s) && !memcmp(zmq_msg_data(m), s, strlen(s));
}

/* Read one request and answer it. 1 answered, 0 none waiting, <0 error. */
static int s_answer_one(struct yj_zap *zap)
{
	zmq_msg_t f[S_FRAMES];
	unsigned n = 0, total = 0;
	int more = 1, rc = 1;

	while (more) {
		zmq_msg_t *m = &f[n < S_FRAMES ? n : S_FRAMES - 1];
		if (n >= S_FRAMES)
			zmq_msg_close(m);
		zmq_msg_init(m);
		if (zmq_msg_recv(m, zap->sock, total == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(m);
			if (total == 0 && (zmq_errno() == EAGAIN || zmq_errno() == EINTR))
				return 0;
			rc = YJ_EIO;
			goto out;
		}
		more = zmq_msg_more(m);
		total++;
		if (n < S_FRAMES)
			n++;
	}
	/* A REP must answer every request, a malformed one too (RFC 27: 500). */
	if (total < 6 || !s_frame_is(&f[0], "1.0")) {
		yj_warn("zap: malformed ZAP request (%u frames) refused", total);
		s_reply(zap, total >= 2 ? &f[1] : NULL, "500", "malformed ZAP request", "");
		goto out;
	}
	const struct s_domain *d = s_domain_find(zap, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]));
	const char *name = NULL;
	if (s_frame_is(&f[5], "CURVE") && total == 7)
		name = s_lookup(d, zmq_msg_data(&f[6]), zmq_msg_size(&f[6]));
	char addr[64];
	size_t alen = zmq_msg_size(&f[3]) < sizeof(addr) - 1 ? zmq_msg_size(&f[3]) : sizeof(addr) - 1;
	memcpy(addr, zmq_msg_data(&f[3]), alen);
	addr[alen] = '\0';
	for (size_t i = 0; i < alen; i++) {
		if (addr[i] < 0x20 || addr[i] > 0x7e)
			addr[i] = '?';
	}
	if (name) {
		zap->accepted++;
		yj_info("zap: %.*s key of %s accepted from %s", (int)zmq_msg_size(&f[2]), (const char *)zmq_msg_data(&f[2]),
			name, addr);
		s_reply(zap, &f[1], "200", "OK", name);
	} else {
		char z85[S_KEY_Z85 + 1] = "";
		if (total == 7 && zmq_msg_size(&f[6]) == S_KEY_BYTES)
			zmq_z85_encode(z85, zmq_msg_data(&f[6]), S_KEY_BYTES);
		zap->refused++;
		s_count_refusal(zap, d ? d->domain : NULL);
		int64_t now = yj_loop_now_ms();
		int same = *z85 && !memcmp(zap->last_key, zmq_msg_data(&f[6]), S_KEY_BYTES);
		if (same && zap->last_logged_ms && now - zap->last_logged_ms < S_LOG_EVERY_MS) {
			zap->unlogged++;
		} else {
			/* Public keys and addresses only: neither is personal data of a child. */
			char more[64] = "";
			if (same && zap->unlogged)
				snprintf(more, sizeof(more), " (and %llu time(s) in the last minute)",
					 (unsigned long long)zap->unlogged);
			yj_notice("zap: %s key %s from %s refused: not listed for this endpoint%s", d ? d->domain : "unknown-domain",
				  *z85 ? z85 : "(not CURVE)", addr, more);
			zap->unlogged = 0;
			zap->last_logged_ms = now;
			if (*z85)
				memcpy(zap->last_key, zmq_msg_data(&f[6]), S_KEY_BYTES);
		}
		s_reply(zap, &f[1], "400", "key not allowed", "");
	}
out:
	for (unsigned i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct yj_zap *zap = arg;
	(void)sock;
	(void)fd;
	(void)revents;
	for (size_t i = 0; i < S_READ_MAX; i++) {
		int rc = s_answer_one(zap);
		if (rc < 0) {
			yj_err("zap: receive failed: %s", zmq_strerror(zmq_errno()));
			return 0;
		}
		if (rc == 0)
			return 0;
	}
	yj_loop_wake(loop);
	return 0;
}

int yj_zap_new(struct yj_loop *loop, void *zmq_ctx, struct yj_zap **out)
{
	struct yj_zap *zap = calloc(1, sizeof(*zap));
	int linger = 0, rc = 0;

	*out = NULL;
	if (!zap)
		return YJ_ENOMEM;
	zap->loop = loop;
	if (!(zap->sock = zmq_socket(zmq_ctx, ZMQ_REP))) {
		rc = YJ_EIO;
		goto out;
	}
	zmq_setsockopt(zap->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(zap->sock, YJ_ZAP_ENDPOINT) != 0) {
		yj_err("zap: cannot bind %s: %s", YJ_ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
		rc = YJ_EIO;
		goto out;
	}
	if ((rc = yj_loop_add(loop, zap->sock, -1, ZMQ_POLLIN, s_on_readable, zap)))
		goto out;
	*out = zap;
	zap = NULL;
out:
	if (zap) {
		if (zap->sock)
			zmq_close(zap->sock);
		free(zap);
	}
	return rc;
}

void yj_zap_destroy(struct yj_zap **pzap)
{
	struct yj_zap *zap = pzap ? *pzap : NULL;
	if (!zap)
		return;
	if (zap->sock) {
		yj_loop_remove(zap->loop, zap->sock, -1);
		zmq_close(zap->sock);
	}
	for (size_t i = 0; i < zap->n_domains; i++) {
		/* Public keys are no secret, but whom they stand for need not outlive us. */
		for (size_t k = 0; k < zap->domains[i].n; k++)
			yj_secret_wipe(zap->domains[i].keys[k].key, S_KEY_BYTES);
		s_domain_clear(&zap->domains[i]);
		free(zap->domains[i].domain);
	}
	free(zap->domains);
	free(zap);
	*pzap = NULL;
}
