/* db/notes.c: see db/notes.h. */
#include "db/notes.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "pbwire.h"

/* The NEXT number to hand out, be64 (absent: 1). The name is older than
 * this module: stores written before it keep their count. */
#define S_META_NEXT "route.next_notification"
#define S_NUM_LEN 8
/* Above LMDB's default key limit (511): a longer key is refused here, a
 * shorter one by the store if its own limit is lower. */
#define S_KEY_BUF 512
/* A notification longer than this is packed by protobuf-c into the heap. */
#define S_PLAIN_MAX 2048

static int s_db(enum yj_note_queue q, enum yj_db *db)
{
	switch (q) {
	case YJ_NOTES_OUTBOX: *db = YJ_DB_OUTBOX; return 0;
	case YJ_NOTES_DLQ: *db = YJ_DB_DLQ; return 0;
	case YJ_NOTES_UNROUTABLE: *db = YJ_DB_UNROUTABLE; return 0;
	}
	return YJ_EINVAL;
}

/* "<recipient>\0" + number (be64): the per-recipient index key. */
static int s_rcpt_key(uint8_t *buf, size_t size, const char *rcpt, uint64_t number, size_t *len)
{
	size_t rl = rcpt ? strlen(rcpt) : 0;
	if (!rl || rl + 1 + S_NUM_LEN > size)
		return YJ_EINVAL;
	memcpy(buf, rcpt, rl);
	buf[rl] = '\0';
	yj_be64_put(buf + rl + 1, number);
	*len = rl + 1 + S_NUM_LEN;
	return 0;
}

int yj_notes_next_number(struct yj_txn *txn, uint64_t *number)
{
	if (!number)
		return yj_txn_refuse(txn);
	return yj_txn_counter_next(txn, S_META_NEXT, number);
}

/* The wire encoding of a Notification (pbwire.h), for the one written per
 * routed event: protobuf-c's generic packer walks all 23 descriptors twice
 * (size, then bytes), a twelfth of the loop's work per event. */
size_t yj_notes_pack_plain(const Yjlink__V1__Notification *n, uint8_t *buf, size_t cap)
{
	if (!n || !buf || n->digest || n->report || n->base.n_unknown_fields)
		return 0;
	struct yj_pbw w = { buf, buf + cap, 0 };
	/* int64 fields go as their two's complement, as protobuf-c's int64. */
	yj_pbw_u64(&w, 1, n->has_number, n->number);
	yj_pbw_str(&w, 2, n->recipient);
	yj_pbw_str(&w, 3, n->rule);
	yj_pbw_str(&w, 4, n->kind);
	yj_pbw_u64(&w, 5, n->has_seq, n->seq);
	yj_pbw_u64(&w, 6, n->has_created_at_us, (uint64_t)n->created_at_us);
	yj_pbw_u64(&w, 7, n->has_not_before_us, (uint64_t)n->not_before_us);
	yj_pbw_u64(&w, 8, n->has_out_of_hours, n->out_of_hours ? 1 : 0);
	yj_pbw_str(&w, 9, n->legal_basis);
	yj_pbw_u64(&w, 10, n->has_attempts, n->attempts);
	yj_pbw_u64(&w, 11, n->has_next_attempt_us, (uint64_t)n->next_attempt_us);
	yj_pbw_str(&w, 12, n->last_error);
	yj_pbw_u64(&w, 13, n->has_failed_at_us, (uint64_t)n->failed_at_us);
	yj_pbw_u64(&w, 15, n->has_escalated_at_us, (uint64_t)n->escalated_at_us);
	yj_pbw_str(&w, 16, n->reason);
	yj_pbw_u64(&w, 17, n->has_about_number, n->about_number);
	yj_pbw_str(&w, 18, n->about_recipient);
	yj_pbw_str(&w, 19, n->about_rule);
	yj_pbw_str(&w, 20, n->detail);
	yj_pbw_str(&w, 21, n->about_feed);
	yj_pbw_u64(&w, 22, n->has_about_at_us, (uint64_t)n->about_at_us);
	return w.over ? 0 : (size_t)(w.p - buf);
}

static Yjlink__V1__Notification *s_get(struct yj_txn *txn, enum yj_db db, uint64_t number, int *rc)
{
	uint8_t k[S_NUM_LEN];
	const void *v;
	size_t vlen;
	yj_be64_put(k, number);
	if ((*rc = yj_txn_get(txn, db, k, sizeof(k), &v, &vlen)))
		return NULL;
	return yjlink__v1__notification__unpack(NULL, vlen, v);
}

struct s_find {
	uint8_t num[S_NUM_LEN];
	uint8_t key[S_KEY_BUF];
	size_t klen;
};

static int s_find_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_find *f = arg;
	(void)val;
	(void)vlen;
	if (klen <= S_NUM_LEN || klen > sizeof(f->key) ||
	    memcmp((const uint8_t *)key + klen - S_NUM_LEN, f->num, S_NUM_LEN))
		return 0;
	memcpy(f->key, key, klen);
	f->klen = klen;
	return 1;
}

/* Take number's index entry out of the outbox's per-recipient index. rcpt
 * NULL: its job was undecodable, so the entry is searched for (only then,
 * as it reads the whole index). */
static int s_unindex(struct yj_txn *txn, const char *rcpt, uint64_t number)
{
	struct s_find f = { .klen = 0 };
	int rc;
	if (rcpt) {
		if ((rc = s_rcpt_key(f.key, sizeof(f.key), rcpt, number, &f.klen)))
			return rc;
	} else {
		yj_be64_put(f.num, number);
		if ((rc = yj_txn_iter(txn, YJ_DB_OUTBOX_RCPT, NULL, 0, 0, s_find_cb, &f)))
			return rc;
		if (!f.klen)
			return 0;
	}
	rc = yj_txn_del(txn, YJ_DB_OUTBOX_RCPT, f.key, f.klen);
	return rc == YJ_ENOENT ? 0 : rc;
}

static int s_put(struct yj_txn *txn, enum yj_note_queue q, const Yjlink__V1__Notification *n, int fresh);

int yj_notes_put(struct yj_txn *txn, enum yj_note_queue q, const Yjlink__V1__Notification *n)
{
	return s_put(txn, q, n, 0);
}

int yj_notes_put_new(struct yj_txn *txn, enum yj_note_queue q, const Yjlink__V1__Notification *n)
{
	return s_put(txn, q, n, 1);
}

/* fresh: n's number was just handed out, so no earlier version of it can
 * be stored (routing writes one per notification: the lookup was a B-tree
 * descent per routed event for nothing). */
static int s_put(struct yj_txn *txn, enum yj_note_queue q, const Yjlink__V1__Notification *n, int fresh)
{
	enum yj_db db;
	uint8_t k[S_NUM_LEN], rk[S_KEY_BUF];
	size_t rklen = 0;
	uint8_t *buf = NULL;
	size_t len;
	Yjlink__V1__Notification *old = NULL;
	int rc;

	if (s_db(q, &db) || !n || !n->number || !n->recipient || !*n->recipient)
		return yj_txn_refuse(txn);
	if (q == YJ_NOTES_OUTBOX) {
		if (s_rcpt_key(rk, sizeof(rk), n->recipient, n->number, &rklen))
			return yj_txn_refuse(txn);
		/* A job written again for another recipient leaves no stale index entry. */
		rc = YJ_ENOENT;
		if (!fresh)
			old = s_get(txn, db, n->number, &rc);
		if (rc && rc != YJ_ENOENT)
			goto out;
		if (!rc && (!old || !old->recipient || strcmp(old->recipient, n->recipient)) &&
		    (rc = s_unindex(txn, old ? old->recipient : NULL, n->number)))
			goto out;
	}
	uint8_t plain[S_PLAIN_MAX];
	const uint8_t *bytes = plain;
	if (!(len = yj_notes_pack_plain(n, plain, sizeof(plain)))) {
		len = protobuf_c_message_get_packed_size(&n->base);
		if (!(buf = malloc(len ? len : 1))) {
			rc = YJ_ENOMEM;
			goto out;
		}
		protobuf_c_message_pack(&n->base, buf);
		bytes = buf;
	}
	yj_be64_put(k, n->number);
	/* A number just handed out is above every number stored. */
	if ((rc = fresh ? yj_txn_put_high(txn, db, k, sizeof(k), bytes, len) : yj_txn_put(txn, db, k, sizeof(k), bytes, len)))
		goto out;
	if (q == YJ_NOTES_OUTBOX) {
		/* When the job is due, beside its number: the outbox's walk passes
		 * over a job held for an opening without reading it. */
		uint8_t when[2 * S_NUM_LEN];
		yj_be64_put(when, n->has_not_before_us && n->not_before_us > 0 ? (uint64_t)n->not_before_us : 0);
		yj_be64_put(when + S_NUM_LEN,
			    n->has_next_attempt_us && n->next_attempt_us > 0 ? (uint64_t)n->next_attempt_us : 0);
		rc = yj_txn_put(txn, YJ_DB_OUTBOX_RCPT, rk, rklen, when, sizeof(when));
	}
out:
	yjlink__v1__notification__free_unpacked(old, NULL);
	free(buf);
	return rc;
}

Yjlink__V1__Notification *yj_notes_get(struct yj_txn *txn, enum yj_note_queue q, uint64_t number)
{
	enum yj_db db;
	int rc;
	if (s_db(q, &db))
		return NULL;
	return s_get(txn, db, number, &rc);
}

int yj_notes_del(struct yj_txn *txn, enum yj_note_queue q, uint64_t number)
{
	enum yj_db db;
	uint8_t k[S_NUM_LEN];
	Yjlink__V1__Notification *n = NULL;
	int rc;

	if (s_db(q, &db))
		return yj_txn_refuse(txn);
	n = s_get(txn, db, number, &rc);
	if (rc)
		goto out;
	if (q == YJ_NOTES_OUTBOX) {
		if (!n || !n->recipient || !*n->recipient)
			yj_warn("store: outbox job %llu undecodable or without recipient: searching the index for it",
				(unsigned long long)number);
		if ((rc = s_unindex(txn, n && n->recipient && *n->recipient ? n->recipient : NULL, number)))
			goto out;
	}
	yj_be64_put(k, number);
	rc = yj_txn_del(txn, db, k, sizeof(k));
out:
	yjlink__v1__notification__free_unpacked(n, NULL);
	return rc;
}

struct s_each {
	yj_note_fn fn;
	void *arg;
};

static int s_each_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_each *e = arg;
	(void)key;
	(void)klen;
	Yjlink__V1__Notification *n = yjlink__v1__notification__unpack(NULL, vlen, val);
	/* One undecodable job must not hide the others. */
	if (!n)
		return 0;
	int rc = e->fn(e->arg, n);
	yjlink__v1__notification__free_unpacked(n, NULL);
	return rc;
}

int yj_notes_each(struct yj_txn *txn, enum yj_note_queue q, yj_note_fn fn, void *arg)
{
	enum yj_db db;
	struct s_each e = { fn, arg };
	if (s_db(q, &db) || !fn)
		return yj_txn_refuse(txn);
	return yj_txn_iter(txn, db, NULL, 0, 0, s_each_cb, &e);
}

int yj_notes_count(struct yj_txn *txn, enum yj_note_queue q, uint64_t *n)
{
	enum yj_db db;
	if (s_db(q, &db))
		return yj_txn_refuse(txn);
	return yj_txn_count(txn, db, n);
}

struct s_next {
	char *buf;
	size_t size;
	int rc;  /* YJ_ENOENT until a recipient is found */
};

static int s_next_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_next *x = arg;
	size_t rl = strnlen(key, klen);
	(void)val;
	(void)vlen;
	/* Not "<id>\0" + number: not an index entry, skipped. */
	if (!rl || rl + 1 + S_NUM_LEN != klen)
		return 0;
	if (rl >= x->size) {
		x->rc = YJ_ERANGE;
		return 1;
	}
	memcpy(x->buf, key, rl);
	x->buf[rl] = '\0';
	x->rc = 0;
	return 1;
}

int yj_notes_next_recipient(struct yj_txn *txn, const char *after, char *buf, size_t size)
{
	uint8_t from[S_KEY_BUF];
	size_t flen = 0;
	struct s_next x = { buf, size, YJ_ENOENT };
	if (!buf || !size)
		return yj_txn_refuse(txn);
	if (after) {
		/* Every key of `after` is "<after>\0..." and sorts below "<after>\1",
		 * which in turn sorts below the keys of any longer id it begins. */
		flen = strlen(after);
		if (flen + 1 > sizeof(from))
			return yj_txn_refuse(txn);
		memcpy(from, after, flen);
		from[flen++] = 1;
	}
	int rc = yj_txn_iter(txn, YJ_DB_OUTBOX_RCPT, after ? from : NULL, flen, 0, s_next_cb, &x);
	return rc ? rc : x.rc;
}

struct s_reach {
	const char *rcpt;
	size_t rl;
	yj_note_rcpt_fn fn;
	void *arg;
};

static int s_reach_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_reach *x = arg;
	const uint8_t *k = key;
	struct yj_note_when w;
	/* Past this recipient's keys: "<id>\0" is a prefix of each of them only. */
	if (klen < x->rl + 1 || memcmp(k, x->rcpt, x->rl) || k[x->rl])
		return 1;
	if (klen != x->rl + 1 + S_NUM_LEN)
		return 0;
	/* An entry written before the index held the times is "" (unknown). */
	w.known = vlen == 2 * S_NUM_LEN;
	w.not_before_us = w.known ? (int64_t)yj_be64_get(val) : 0;
	w.next_attempt_us = w.known ? (int64_t)yj_be64_get((const uint8_t *)val + S_NUM_LEN) : 0;
	return x->fn(x->arg, yj_be64_get(k + x->rl + 1), &w);
}

int yj_notes_recipient_each(struct yj_txn *txn, const char *recipient, uint64_t from, yj_note_rcpt_fn fn, void *arg)
{
	uint8_t k[S_KEY_BUF];
	size_t klen;
	struct s_reach x = { recipient, 0, fn, arg };
	if (!fn || s_rcpt_key(k, sizeof(k), recipient, from, &klen))
		return yj_txn_refuse(txn);
	x.rl = strlen(recipient);
	return yj_txn_iter(txn, YJ_DB_OUTBOX_RCPT, k, klen, 0, s_reach_cb, &x);
}

struct s_rnext {
	uint64_t number;
	struct yj_note_when when;
	int rc;  /* YJ_ENOENT until a job is found */
};

static int s_rnext_cb(void *arg, uint64_t number, const struct yj_note_when *when)
{
	struct s_rnext *x = arg;
	x->number = number;
	x->when = *when;
	x->rc = 0;
	return 1;
}

int yj_notes_recipient_next_when(struct yj_txn *txn, const char *recipient, uint64_t from, uint64_t *number,
				 struct yj_note_when *when)
{
	struct s_rnext x = { 0, { 0, 0, 0 }, YJ_ENOENT };
	if (!number)
		return yj_txn_refuse(txn);
	int rc = yj_notes_recipient_each(txn, recipient, from, s_rnext_cb, &x);
	if (rc)
		return rc;
	if (!x.rc) {
		*number = x.number;
		if (when)
			*when = x.when;
	}
	return x.rc;
}

int yj_notes_recipient_next(struct yj_txn *txn, const char *recipient, uint64_t from, uint64_t *number)
{
	return yj_notes_recipient_next_when(txn, recipient, from, number, NULL);
}
