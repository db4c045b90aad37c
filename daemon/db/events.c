/* db/events.c: see db/events.h. */
#include "db/events.h"

#include <string.h>

#include "err.h"
#include "log.h"

#define S_SEQ_LEN 8
#define S_HASH_LEN 16
#define S_SOURCE_REF_LEN (S_SEQ_LEN + S_HASH_LEN)

int yj_events_next_seq(struct yj_txn *txn, uint64_t *seq)
{
	return yj_txn_next_id(txn, YJ_DB_EVENTS, seq);
}

int yj_events_put(struct yj_txn *txn, uint64_t seq, const struct yj_event_keys *keys, const void *record,
		  size_t len)
{
	uint8_t k[S_SEQ_LEN], tk[S_SEQ_LEN], ref[S_SOURCE_REF_LEN];
	int rc;
	if (!seq || !keys || !keys->source_key || !keys->hash || !keys->child_id || (!record && len))
		return yj_txn_refuse(txn);

	yj_be64_put(k, seq);
	memcpy(ref, k, sizeof(k));
	memcpy(ref + sizeof(k), keys->hash, S_HASH_LEN);
	/* The source key goes first: a (force, source_id) stored before is
	 * YJ_EEXIST with nothing written yet, and the transaction goes on. A
	 * key the store refuses (empty, over-long) fails the transaction
	 * whichever write it is in, so nothing half-written is committed. */
	if ((rc = yj_txn_put_new(txn, YJ_DB_SOURCE, keys->source_key, strlen(keys->source_key), ref, sizeof(ref))))
		return rc;
	if ((rc = yj_txn_append(txn, YJ_DB_EVENTS, k, sizeof(k), record, len)))
		return rc;
	if ((rc = yj_txn_put(txn, YJ_DB_CHILD, keys->child_id, strlen(keys->child_id), k, sizeof(k))))
		return rc;
	yj_be64_put(tk, yj_time_key(keys->occurred_us));
	if ((rc = yj_txn_put(txn, YJ_DB_TIME, tk, sizeof(tk), k, sizeof(k))))
		return rc;
	if (keys->custody_key &&
	    (rc = yj_txn_put(txn, YJ_DB_CUSTODY, keys->custody_key, strlen(keys->custody_key), k, sizeof(k))))
		return rc;
	return 0;
}

int yj_events_get(struct yj_txn *txn, uint64_t seq, const void **record, size_t *len)
{
	uint8_t k[S_SEQ_LEN];
	yj_be64_put(k, seq);
	return yj_txn_get(txn, YJ_DB_EVENTS, k, sizeof(k), record, len);
}

Yjlink__V1__Record *yj_events_get_record(struct yj_txn *txn, uint64_t seq)
{
	const void *data;
	size_t len;
	if (yj_events_get(txn, seq, &data, &len))
		return NULL;
	return yjlink__v1__record__unpack(NULL, len, data);
}

int yj_events_find_source(struct yj_txn *txn, const char *source_key, struct yj_source_ref *out)
{
	const void *v;
	size_t vlen;
	int rc;
	if (!source_key)
		return yj_txn_refuse(txn);
	if ((rc = yj_txn_get(txn, YJ_DB_SOURCE, source_key, strlen(source_key), &v, &vlen)))
		return rc;
	if (vlen != S_SOURCE_REF_LEN) {
		yj_err("store: source index entry of %zu bytes, expected %d", vlen, S_SOURCE_REF_LEN);
		return YJ_ESTORE;
	}
	if (out) {
		out->seq = yj_be64_get(v);
		memcpy(out->hash, (const uint8_t *)v + S_SEQ_LEN, sizeof(out->hash));
	}
	return 0;
}

int yj_events_child_known(struct yj_txn *txn, const char *child_id)
{
	if (!child_id)
		return yj_txn_refuse(txn);
	int rc = yj_txn_get(txn, YJ_DB_CHILD, child_id, strlen(child_id), NULL, NULL);
	if (rc == YJ_ENOENT)
		return 0;
	return rc ? rc : 1;
}

/* Walks hand each entry's seq to the caller's yj_seq_fn. */
struct s_seqs {
	yj_seq_fn fn;
	void *arg;
};

/* An index entry's value is the seq. */
static int s_val_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_seqs *s = arg;
	(void)key;
	(void)klen;
	if (vlen != S_SEQ_LEN)
		return 0;
	return s->fn(s->arg, yj_be64_get(val));
}

/* An event's key is the seq. */
static int s_key_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_seqs *s = arg;
	(void)val;
	(void)vlen;
	if (klen != S_SEQ_LEN)
		return 0;
	return s->fn(s->arg, yj_be64_get(key));
}

static int s_dups(struct yj_txn *txn, enum yj_db db, const char *key, yj_seq_fn fn, void *arg)
{
	struct s_seqs s = { fn, arg };
	if (!key || !fn)
		return yj_txn_refuse(txn);
	return yj_txn_iter_dups(txn, db, key, strlen(key), s_val_cb, &s);
}

int yj_events_of_child(struct yj_txn *txn, const char *child_id, yj_seq_fn fn, void *arg)
{
	return s_dups(txn, YJ_DB_CHILD, child_id, fn, arg);
}

int yj_events_of_custody(struct yj_txn *txn, const char *custody_key, yj_seq_fn fn, void *arg)
{
	return s_dups(txn, YJ_DB_CUSTODY, custody_key, fn, arg);
}

int yj_events_since(struct yj_txn *txn, int64_t since_us, yj_seq_fn fn, void *arg)
{
	struct s_seqs s = { fn, arg };
	uint8_t k[S_SEQ_LEN];
	if (!fn)
		return yj_txn_refuse(txn);
	yj_be64_put(k, yj_time_key(since_us));
	return yj_txn_iter(txn, YJ_DB_TIME, k, sizeof(k), 0, s_val_cb, &s);
}

int yj_events_each(struct yj_txn *txn, int reverse, yj_seq_fn fn, void *arg)
{
	struct s_seqs s = { fn, arg };
	if (!fn)
		return yj_txn_refuse(txn);
	return yj_txn_iter(txn, YJ_DB_EVENTS, NULL, 0, reverse, s_key_cb, &s);
}

int yj_events_last_seq(struct yj_txn *txn, uint64_t *seq)
{
	return yj_txn_last_u64(txn, YJ_DB_EVENTS, seq);
}

static int s_first_cb(void *arg, uint64_t seq)
{
	*(uint64_t *)arg = seq;
	return 1;
}

int yj_events_first_seq(struct yj_txn *txn, uint64_t *seq)
{
	uint64_t first = 0;
	if (!seq)
		return yj_txn_refuse(txn);
	int rc = yj_events_each(txn, 0, s_first_cb, &first);
	*seq = rc ? 0 : first;
	return rc;
}

int yj_events_count(struct yj_txn *txn, uint64_t *n)
{
	return yj_txn_count(txn, YJ_DB_EVENTS, n);
}

uint64_t yj_events_seq_at(struct yj_txn *txn, int64_t t_us)
{
	uint64_t lo = 0, hi = 0;
	if (yj_events_last_seq(txn, &hi) || hi == 0)
		return 0;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		Yjlink__V1__Record *r = yj_events_get_record(txn, mid);
		/* A gap (erased by retention) counts as stored long ago. */
		int64_t at = r ? r->stored_at_us : INT64_MIN;
		yjlink__v1__record__free_unpacked(r, NULL);
		if (at <= t_us)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}
