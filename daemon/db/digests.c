/* db/digests.c: see db/digests.h. */
#include "db/digests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define S_META_STATE "digest.state."
#define S_NUM_LEN 8
/* Above LMDB's default key limit (511): a longer key is refused here, a
 * shorter one by the store if its own limit is lower. */
#define S_KEY_BUF 512
/* Rules one entry can hold: every digest rule of a config naming one YJS. */
#define S_RULES_MAX 32

/* "<yjs id>\0" + n (be64): the key of both the entries and the log. */
static int s_yjs_key(uint8_t *buf, size_t size, const char *yjs, uint64_t n, size_t *len)
{
	size_t rl = yjs ? strlen(yjs) : 0;
	if (!rl || rl + 1 + S_NUM_LEN > size)
		return YJ_EINVAL;
	memcpy(buf, yjs, rl);
	buf[rl] = '\0';
	yj_be64_put(buf + rl + 1, n);
	*len = rl + 1 + S_NUM_LEN;
	return 0;
}

/* A key of this YJS: its id, then the NUL that no other id's keys have
 * there ("yjs:mk\0" is not a prefix of "yjs:mk2\0..."). 1 when it is one
 * and has its number, 0 when it is of another YJS, -1 when it is of this
 * one but not "<id>\0" + 8 bytes. */
static int s_own(const void *key, size_t klen, const char *yjs, size_t rl)
{
	const uint8_t *k = key;
	if (klen < rl + 1 || memcmp(k, yjs, rl) || k[rl])
		return 0;
	return klen == rl + 1 + S_NUM_LEN ? 1 : -1;
}

static int s_put_msg(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return YJ_ENOMEM;
	protobuf_c_message_pack(m, buf);
	int rc = yj_txn_put(txn, db, key, klen, buf, len);
	free(buf);
	return rc;
}

int yj_digests_add(struct yj_txn *txn, const char *yjs, uint64_t seq, const char *rule)
{
	return yj_digests_add_rules(txn, yjs, seq, &rule, 1);
}

int yj_digests_add_rules(struct yj_txn *txn, const char *yjs, uint64_t seq, const char *const *rules, size_t n)
{
	uint8_t k[S_KEY_BUF];
	char v[S_KEY_BUF];
	const char *sorted[S_RULES_MAX];
	size_t klen, vlen = 0;
	if (!rules || !n || n > S_RULES_MAX || s_yjs_key(k, sizeof(k), yjs, seq, &klen))
		return yj_txn_refuse(txn);
	/* In name order, as LMDB kept separate values. */
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		if (!rules[i] || !*rules[i])
			return yj_txn_refuse(txn);
		while (j > 0 && strcmp(sorted[j - 1], rules[i]) > 0) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = rules[i];
	}
	for (size_t i = 0; i < n; i++) {
		size_t rl = strlen(sorted[i]);
		if (vlen + rl + (i > 0) >= sizeof(v))
			return yj_txn_refuse(txn);
		if (i > 0)
			v[vlen++] = '\0';
		memcpy(v + vlen, sorted[i], rl);
		vlen += rl;
	}
	return yj_txn_put(txn, YJ_DB_DIGEST, k, klen, v, vlen);
}

struct s_entries {
	const char *yjs;
	size_t rl;
	uint64_t upto;
	yj_digest_entry_fn fn;
	void *arg;
};

static int s_entries_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_entries *e = arg;
	char rule[S_KEY_BUF];
	int own = s_own(key, klen, e->yjs, e->rl);
	if (!own)
		return 1;
	if (own < 0 || vlen >= sizeof(rule))
		return 0;
	uint64_t seq = yj_be64_get((const uint8_t *)key + e->rl + 1);
	if (seq > e->upto)
		return 1;
	/* One rule, or several NUL-separated (yj_digests_add_rules). */
	memcpy(rule, val, vlen);
	rule[vlen] = '\0';
	for (size_t at = 0; at < vlen;) {
		size_t rl = strlen(rule + at);
		if (rl) {
			int rc = e->fn(e->arg, seq, rule + at);
			if (rc)
				return rc;
		}
		at += rl + 1;
	}
	return 0;
}

int yj_digests_entries(struct yj_txn *txn, const char *yjs, uint64_t after, uint64_t upto, yj_digest_entry_fn fn,
		       void *arg)
{
	uint8_t k[S_KEY_BUF];
	size_t klen;
	struct s_entries e = { yjs, 0, upto, fn, arg };
	if (!fn)
		return yj_txn_refuse(txn);
	/* Checked before after + 1 is formed: it cannot wrap. */
	if (after >= upto)
		return yj_txn_rc(txn);
	if (s_yjs_key(k, sizeof(k), yjs, after + 1, &klen))
		return yj_txn_refuse(txn);
	e.rl = strlen(yjs);
	return yj_txn_iter(txn, YJ_DB_DIGEST, k, klen, 0, s_entries_cb, &e);
}

static int s_state_key(char *buf, size_t size, const char *yjs, size_t *len)
{
	if (!yjs || !*yjs)
		return YJ_EINVAL;
	int n = snprintf(buf, size, "%s%s", S_META_STATE, yjs);
	if (n < 0 || (size_t)n >= size)
		return YJ_EINVAL;
	*len = (size_t)n;
	return 0;
}

Yjlink__V1__DigestState *yj_digests_state_get(struct yj_txn *txn, const char *yjs)
{
	char k[S_KEY_BUF];
	size_t klen;
	const void *v;
	size_t vlen;
	if (s_state_key(k, sizeof(k), yjs, &klen) || yj_txn_get(txn, YJ_DB_META, k, klen, &v, &vlen))
		return NULL;
	return yjlink__v1__digest_state__unpack(NULL, vlen, v);
}

int yj_digests_state_put(struct yj_txn *txn, const Yjlink__V1__DigestState *st)
{
	char k[S_KEY_BUF];
	size_t klen;
	if (!st || s_state_key(k, sizeof(k), st->yjs, &klen))
		return yj_txn_refuse(txn);
	return s_put_msg(txn, YJ_DB_META, k, klen, &st->base);
}

int yj_digests_log_put(struct yj_txn *txn, const Yjlink__V1__Digest *d)
{
	uint8_t k[S_KEY_BUF];
	size_t klen;
	if (!d || s_yjs_key(k, sizeof(k), d->yjs, yj_time_key(d->scheduled_us), &klen))
		return yj_txn_refuse(txn);
	return s_put_msg(txn, YJ_DB_DIGEST_LOG, k, klen, &d->base);
}

Yjlink__V1__Digest *yj_digests_log_get(struct yj_txn *txn, const char *yjs, int64_t scheduled_us)
{
	uint8_t k[S_KEY_BUF];
	size_t klen;
	const void *v;
	size_t vlen;
	if (s_yjs_key(k, sizeof(k), yjs, yj_time_key(scheduled_us), &klen) ||
	    yj_txn_get(txn, YJ_DB_DIGEST_LOG, k, klen, &v, &vlen))
		return NULL;
	return yjlink__v1__digest__unpack(NULL, vlen, v);
}

struct s_log {
	const char *yjs;
	size_t rl;
	yj_digest_fn fn;
	void *arg;
};

static int s_log_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_log *l = arg;
	int own = s_own(key, klen, l->yjs, l->rl);
	if (!own)
		return 1;
	if (own < 0)
		return 0;
	Yjlink__V1__Digest *d = yjlink__v1__digest__unpack(NULL, vlen, val);
	/* One undecodable digest must not hide the others. */
	if (!d)
		return 0;
	int rc = l->fn(l->arg, d);
	yjlink__v1__digest__free_unpacked(d, NULL);
	return rc;
}

int yj_digests_log_each(struct yj_txn *txn, const char *yjs, yj_digest_fn fn, void *arg)
{
	uint8_t k[S_KEY_BUF];
	size_t klen;
	struct s_log l = { yjs, 0, fn, arg };
	/* From "<yjs>\0" + 0: the oldest time key there can be. */
	if (!fn || s_yjs_key(k, sizeof(k), yjs, 0, &klen))
		return yj_txn_refuse(txn);
	l.rl = strlen(yjs);
	return yj_txn_iter(txn, YJ_DB_DIGEST_LOG, k, klen, 0, s_log_cb, &l);
}

int yj_digests_erase_entry(struct yj_txn *txn, const char *yjs, uint64_t seq)
{
	uint8_t k[S_KEY_BUF];
	size_t klen;
	if (s_yjs_key(k, sizeof(k), yjs, seq, &klen))
		return yj_txn_refuse(txn);
	return yj_txn_del(txn, YJ_DB_DIGEST, k, klen);
}
