/* db/quarantine.c: see db/quarantine.h. */
#include "db/quarantine.h"

#include <stdlib.h>

#include "err.h"

#define S_ID_LEN 8

int yj_quarantine_put(struct yj_txn *txn, Yjlink__V1__Quarantined *q, uint64_t *id)
{
	uint8_t k[S_ID_LEN];
	uint8_t *buf = NULL;
	uint64_t qid = 0;
	size_t len;
	int rc;

	if (!q)
		return yj_txn_refuse(txn);
	/* The store keeps ids growing across erasure of the newest entry. */
	if ((rc = yj_txn_next_id(txn, YJ_DB_QUARANTINE, &qid)))
		goto out;
	q->has_id = 1;
	q->id = qid;
	len = protobuf_c_message_get_packed_size(&q->base);
	if (!(buf = malloc(len ? len : 1))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	protobuf_c_message_pack(&q->base, buf);
	yj_be64_put(k, qid);
	if ((rc = yj_txn_append(txn, YJ_DB_QUARANTINE, k, sizeof(k), buf, len)))
		goto out;
	if (id)
		*id = qid;
out:
	free(buf);
	return rc;
}

Yjlink__V1__Quarantined *yj_quarantine_get(struct yj_txn *txn, uint64_t id)
{
	uint8_t k[S_ID_LEN];
	const void *v;
	size_t vlen;
	yj_be64_put(k, id);
	if (yj_txn_get(txn, YJ_DB_QUARANTINE, k, sizeof(k), &v, &vlen))
		return NULL;
	return yjlink__v1__quarantined__unpack(NULL, vlen, v);
}

int yj_quarantine_del(struct yj_txn *txn, uint64_t id)
{
	uint8_t k[S_ID_LEN];
	yj_be64_put(k, id);
	return yj_txn_del(txn, YJ_DB_QUARANTINE, k, sizeof(k));
}

struct s_each {
	yj_quarantine_fn fn;
	void *arg;
};

static int s_each_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_each *e = arg;
	if (klen != S_ID_LEN)
		return 0;
	Yjlink__V1__Quarantined *q = yjlink__v1__quarantined__unpack(NULL, vlen, val);
	/* One undecodable entry must not hide the others from an operator. */
	if (!q)
		return 0;
	int rc = e->fn(e->arg, yj_be64_get(key), q);
	yjlink__v1__quarantined__free_unpacked(q, NULL);
	return rc;
}

int yj_quarantine_each(struct yj_txn *txn, int reverse, yj_quarantine_fn fn, void *arg)
{
	struct s_each e = { fn, arg };
	if (!fn)
		return yj_txn_refuse(txn);
	return yj_txn_iter(txn, YJ_DB_QUARANTINE, NULL, 0, reverse, s_each_cb, &e);
}

int yj_quarantine_count(struct yj_txn *txn, uint64_t *n)
{
	return yj_txn_count(txn, YJ_DB_QUARANTINE, n);
}
