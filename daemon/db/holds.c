/* db/holds.c: see db/holds.h. */
#include "db/holds.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

#define S_SEQ_LEN 8
/* Above LMDB's default key limit (511): a longer key is refused here, a
 * shorter one by the store if its own limit is lower. */
#define S_KEY_BUF 512

static int s_put_hold(struct yj_txn *txn, const Yjlink__V1__Hold *h)
{
	uint8_t k[S_SEQ_LEN];
	size_t len = protobuf_c_message_get_packed_size(&h->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return YJ_ENOMEM;
	protobuf_c_message_pack(&h->base, buf);
	yj_be64_put(k, h->seq);
	int rc = yj_txn_put(txn, YJ_DB_HOLDS, k, sizeof(k), buf, len);
	free(buf);
	return rc;
}

int yj_holds_put(struct yj_txn *txn, uint64_t seq, int64_t held_at_us)
{
	Yjlink__V1__Hold h = YJLINK__V1__HOLD__INIT;
	h.has_seq = h.has_held_at_us = 1;
	h.seq = seq;
	h.held_at_us = held_at_us;
	return s_put_hold(txn, &h);
}

int yj_holds_store(struct yj_txn *txn, const Yjlink__V1__Hold *h)
{
	if (!h->has_seq)
		return YJ_EINVAL;
	return s_put_hold(txn, h);
}

Yjlink__V1__Hold *yj_holds_get(struct yj_txn *txn, uint64_t seq)
{
	uint8_t k[S_SEQ_LEN];
	const void *v;
	size_t vlen;
	yj_be64_put(k, seq);
	if (yj_txn_get(txn, YJ_DB_HOLDS, k, sizeof(k), &v, &vlen))
		return NULL;
	return yjlink__v1__hold__unpack(NULL, vlen, v);
}

static int s_released(const Yjlink__V1__Hold *h)
{
	return h->has_released_at_us && h->released_at_us;
}

int yj_holds_is_held(struct yj_txn *txn, uint64_t seq)
{
	Yjlink__V1__Hold *h = yj_holds_get(txn, seq);
	int held = h && !s_released(h);
	yjlink__v1__hold__free_unpacked(h, NULL);
	return held;
}

int yj_holds_release(struct yj_txn *txn, uint64_t seq, int64_t at_us, const char *by, const char *actor,
		     const char *reason)
{
	uint8_t k[S_SEQ_LEN];
	const void *v;
	size_t vlen;
	Yjlink__V1__Hold *h = NULL;
	char *old_by, *old_reason, *old_actor;
	yj_be64_put(k, seq);
	int rc = yj_txn_get(txn, YJ_DB_HOLDS, k, sizeof(k), &v, &vlen);
	if (rc)
		goto out;
	if (!(h = yjlink__v1__hold__unpack(NULL, vlen, v))) {
		rc = YJ_ESTORE;
		goto out;
	}
	if (s_released(h)) {
		rc = YJ_EEXIST;
		goto out;
	}
	/* Changed in place, so that fields this build does not know survive;
	 * the borrowed strings go back out before the free. */
	old_by = h->released_by;
	old_reason = h->reason;
	old_actor = h->released_actor;
	h->released_actor = (char *)(actor ? actor : "");
	h->has_seq = 1;
	h->seq = seq;
	h->has_released_at_us = 1;
	h->released_at_us = at_us;
	h->released_by = (char *)by;
	h->reason = (char *)reason;
	rc = s_put_hold(txn, h);
	h->released_by = old_by;
	h->reason = old_reason;
	h->released_actor = old_actor;
out:
	yjlink__v1__hold__free_unpacked(h, NULL);
	return rc;
}

struct s_each {
	yj_hold_fn fn;
	void *arg;
};

static int s_each_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_each *e = arg;
	(void)key;
	(void)klen;
	Yjlink__V1__Hold *h = yjlink__v1__hold__unpack(NULL, vlen, val);
	/* One undecodable hold must not hide the others. */
	if (!h)
		return 0;
	int rc = e->fn(e->arg, h);
	yjlink__v1__hold__free_unpacked(h, NULL);
	return rc;
}

int yj_holds_each(struct yj_txn *txn, yj_hold_fn fn, void *arg)
{
	struct s_each e = { fn, arg };
	if (!fn)
		return yj_txn_refuse(txn);
	return yj_txn_iter(txn, YJ_DB_HOLDS, NULL, 0, 0, s_each_cb, &e);
}

int yj_disclosed_add(struct yj_txn *txn, uint64_t seq, const char *recipient)
{
	uint8_t k[S_KEY_BUF];
	size_t rl = recipient ? strlen(recipient) : 0;
	/* An empty id would make a key of the seq alone, no recipient. */
	if (!rl || rl > sizeof(k) - S_SEQ_LEN)
		return yj_txn_refuse(txn);
	yj_be64_put(k, seq);
	memcpy(k + S_SEQ_LEN, recipient, rl);
	return yj_txn_put(txn, YJ_DB_DISCLOSED, k, S_SEQ_LEN + rl, "", 0);
}

struct s_rcpts {
	uint8_t seq[S_SEQ_LEN];
	yj_recipient_fn fn;
	void *arg;
};

static int s_rcpts_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_rcpts *r = arg;
	char id[S_KEY_BUF];
	(void)val;
	(void)vlen;
	/* Keys sort by seq first: the first of another seq ends the walk. */
	if (klen <= S_SEQ_LEN || memcmp(key, r->seq, S_SEQ_LEN))
		return 1;
	size_t rl = klen - S_SEQ_LEN;
	if (rl >= sizeof(id))
		return 0;
	memcpy(id, (const uint8_t *)key + S_SEQ_LEN, rl);
	id[rl] = '\0';
	return r->fn(r->arg, id);
}

int yj_disclosed_each(struct yj_txn *txn, uint64_t seq, yj_recipient_fn fn, void *arg)
{
	struct s_rcpts r = { { 0 }, fn, arg };
	if (!fn)
		return yj_txn_refuse(txn);
	yj_be64_put(r.seq, seq);
	return yj_txn_iter(txn, YJ_DB_DISCLOSED, r.seq, sizeof(r.seq), 0, s_rcpts_cb, &r);
}

struct s_disc_keys {
	uint64_t seq;
	uint8_t (*keys)[S_KEY_BUF];
	size_t *lens;
	size_t n, cap;
};

static int s_disc_collect(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_disc_keys *d = arg;
	(void)val;
	(void)vlen;
	if (klen < S_SEQ_LEN || klen > S_KEY_BUF || yj_be64_get(key) != d->seq)
		return 1;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 8;
		uint8_t(*nk)[S_KEY_BUF] = realloc(d->keys, nc * sizeof(*nk));
		if (!nk)
			return YJ_ENOMEM;
		d->keys = nk;
		size_t *nl = realloc(d->lens, nc * sizeof(*nl));
		if (!nl)
			return YJ_ENOMEM;
		d->lens = nl;
		d->cap = nc;
	}
	memcpy(d->keys[d->n], key, klen);
	d->lens[d->n++] = klen;
	return 0;
}

int yj_holds_erase_event(struct yj_txn *txn, uint64_t seq)
{
	uint8_t k[S_SEQ_LEN];
	struct s_disc_keys d = { .seq = seq };
	int rc, n = 0;

	yj_be64_put(k, seq);
	rc = yj_txn_del(txn, YJ_DB_HOLDS, k, sizeof(k));
	if (rc == 0)
		n++;
	else if (rc != YJ_ENOENT)
		goto out;
	/* The disclosed rows start with the seq: collect, then delete (not
	 * under the walk's cursor). */
	if ((rc = yj_txn_iter(txn, YJ_DB_DISCLOSED, k, sizeof(k), 0, s_disc_collect, &d)) < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < d.n && !rc; i++) {
		rc = yj_txn_del(txn, YJ_DB_DISCLOSED, d.keys[i], d.lens[i]);
		if (rc == 0)
			n++;
	}
out:
	free(d.keys);
	free(d.lens);
	return rc && rc != YJ_ENOENT ? rc : n;
}
