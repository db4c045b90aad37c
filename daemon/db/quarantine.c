/* db/quarantine.c: see db/quarantine.h. */
#include "db/quarantine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/audit.h"
#include "err.h"
#include "log.h"
#include "tz.h"

#define S_ID_LEN 8
#define S_META_BYTES "quarantine.bytes"
#define S_META_DROPPED "quarantine.dropped"
#define S_META_EXPIRED "quarantine.expired"

/* --- the counters in YJ_DB_META --- */

/* *v = the counter name, *found = whether it is there (0 and 0 when not). */
static int s_meta_get(struct yj_txn *txn, const char *name, uint64_t *v, int *found)
{
	const void *val;
	size_t vlen;
	int rc = yj_txn_get(txn, YJ_DB_META, name, strlen(name), &val, &vlen);

	*v = 0;
	*found = 0;
	if (rc == YJ_ENOENT)
		return 0;
	if (rc)
		return rc;
	/* Not a counter: taken as absent, so the byte total is counted again
	 * (never taken for a small one, which would let the quarantine grow
	 * past its quota), and an error here would make every batch holding a
	 * refused message fail. */
	if (vlen != 8) {
		yj_warn("store: %s is damaged (%zu bytes): counted again", name, vlen);
		return 0;
	}
	*v = yj_be64_get(val);
	*found = 1;
	return 0;
}

static int s_meta_put(struct yj_txn *txn, const char *name, uint64_t v)
{
	uint8_t b[8];
	yj_be64_put(b, v);
	return yj_txn_put(txn, YJ_DB_META, name, strlen(name), b, sizeof(b));
}

static int s_meta_add(struct yj_txn *txn, const char *name, uint64_t n)
{
	uint64_t v = 0;
	int found = 0;
	int rc = s_meta_get(txn, name, &v, &found);
	if (rc)
		return rc;
	return s_meta_put(txn, name, v + n);
}

static int s_sum_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	uint64_t *sum = arg;
	(void)key;
	(void)val;
	*sum += klen + vlen;
	return 0;
}

/* The byte total; on a store from before it existed, counted by a walk (the
 * caller of a write stores it, so that happens once). */
static int s_bytes(struct yj_txn *txn, uint64_t *bytes)
{
	int found = 0;
	int rc = s_meta_get(txn, S_META_BYTES, bytes, &found);
	if (rc || found)
		return rc;
	*bytes = 0;
	return yj_txn_iter(txn, YJ_DB_QUARANTINE, NULL, 0, 0, s_sum_cb, bytes);
}

/* --- entries --- */

/* Pack q under the next id and append it unless the total would pass
 * max_bytes; *id = 0 when it was not kept. */
static int s_put(struct yj_txn *txn, Yjlink__V1__Quarantined *q, uint64_t max_bytes, uint64_t *id)
{
	uint8_t k[S_ID_LEN];
	uint8_t *buf = NULL;   /* the packed entry, owned here */
	uint64_t qid = 0, total = 0;
	protobuf_c_boolean had_id = q->has_id;
	uint64_t old_id = q->id;
	size_t len;
	int rc;

	if (id)
		*id = 0;
	/* The store keeps ids growing across erasure of the newest entry; the
	 * id is only taken by the append below. */
	if ((rc = yj_txn_next_id(txn, YJ_DB_QUARANTINE, &qid)) || (rc = s_bytes(txn, &total)))
		goto out;
	q->has_id = 1;
	q->id = qid;
	len = protobuf_c_message_get_packed_size(&q->base);
	if (total + S_ID_LEN + len > max_bytes || total + S_ID_LEN + len < total) {
		q->has_id = had_id;
		q->id = old_id;
		rc = s_meta_add(txn, S_META_DROPPED, 1);
		goto out;
	}
	if (!(buf = malloc(len ? len : 1))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	protobuf_c_message_pack(&q->base, buf);
	yj_be64_put(k, qid);
	if ((rc = yj_txn_append(txn, YJ_DB_QUARANTINE, k, sizeof(k), buf, len)) ||
	    (rc = s_meta_put(txn, S_META_BYTES, total + S_ID_LEN + len)))
		goto out;
	if (id)
		*id = qid;
out:
	free(buf);
	return rc;
}

int yj_quarantine_put(struct yj_txn *txn, Yjlink__V1__Quarantined *q, uint64_t *id)
{
	if (!q)
		return yj_txn_refuse(txn);
	return s_put(txn, q, UINT64_MAX, id);
}

int yj_quarantine_put_within(struct yj_txn *txn, Yjlink__V1__Quarantined *q, uint64_t max_bytes, uint64_t *id)
{
	if (!q)
		return yj_txn_refuse(txn);
	return s_put(txn, q, max_bytes, id);
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

/* Erase one entry whose value is vlen bytes, from a total of *total. */
static int s_del(struct yj_txn *txn, uint64_t id, size_t vlen, uint64_t *total)
{
	uint8_t k[S_ID_LEN];
	int rc;
	yj_be64_put(k, id);
	if ((rc = yj_txn_del(txn, YJ_DB_QUARANTINE, k, sizeof(k))))
		return rc;
	/* The total is exact (kept in the same transactions as the entries);
	 * should it ever be less than an entry, it stops at 0 rather than
	 * wrapping round to "full" for ever. */
	*total = *total >= S_ID_LEN + vlen ? *total - S_ID_LEN - vlen : 0;
	return 0;
}

int yj_quarantine_del(struct yj_txn *txn, uint64_t id)
{
	uint8_t k[S_ID_LEN];
	const void *v;
	size_t vlen = 0;
	uint64_t total = 0;
	int rc;

	yj_be64_put(k, id);
	if ((rc = yj_txn_get(txn, YJ_DB_QUARANTINE, k, sizeof(k), &v, &vlen)))
		return rc;
	/* The total before the entry goes, so that a walk (first write on an
	 * old store) still counts it, and the subtraction is right. */
	if ((rc = s_bytes(txn, &total)) || (rc = s_del(txn, id, vlen, &total)))
		return rc;
	return s_meta_put(txn, S_META_BYTES, total);
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

int yj_quarantine_usage(struct yj_txn *txn, struct yj_quarantine_usage *u)
{
	int found = 0;
	int rc;

	if (!u)
		return yj_txn_refuse(txn);
	memset(u, 0, sizeof(*u));
	if ((rc = yj_txn_count(txn, YJ_DB_QUARANTINE, &u->entries)) || (rc = s_bytes(txn, &u->bytes)) ||
	    (rc = s_meta_get(txn, S_META_DROPPED, &u->dropped, &found)) ||
	    (rc = s_meta_get(txn, S_META_EXPIRED, &u->expired, &found)))
		return rc;
	return 0;
}

/* --- retention --- */

/* One varint at p[*i..len), *i moved past it. Returns 0, or -1 when cut
 * short or longer than 64 bits. */
static int s_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *i < len; shift += 7) {
		uint8_t b = p[(*i)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* received_at_us (field 2, a varint) read off the packed entry without
 * unpacking it: an entry holds up to ingest.quarantine_max_bytes of payload,
 * and retention looks at a thousand of them per transaction. Returns 0, or
 * -1 when the field is not there or the bytes do not parse. */
static int s_received_at(const uint8_t *p, size_t len, int64_t *out)
{
	size_t i = 0;
	uint64_t tag = 0, v = 0;

	while (i < len) {
		if (s_varint(p, len, &i, &tag))
			return -1;
		switch (tag & 7) {
		case 0: /* varint */
			if (s_varint(p, len, &i, &v))
				return -1;
			if (tag >> 3 == 2) {
				*out = (int64_t)v;
				return 0;
			}
			break;
		case 2: /* a length, then that many bytes */
			if (s_varint(p, len, &i, &v) || v > len - i)
				return -1;
			i += (size_t)v;
			break;
		case 1: /* 64 bits */
		case 5: /* 32 bits */
			if (len - i < ((tag & 7) == 1 ? 8u : 4u))
				return -1;
			i += (tag & 7) == 1 ? 8 : 4;
			break;
		default:
			return -1;
		}
	}
	return -1;
}

struct s_due {
	uint64_t *ids;               /* due ids, max of them; owned by yj_quarantine_expire */
	size_t *lens;                /* their value lengths */
	size_t n, max;
	int64_t before_us;
	int more;
};

static int s_due_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_due *d = arg;
	int64_t at = 0;

	if (klen != S_ID_LEN)
		return 0;
	/* An entry whose time cannot be read is erased as due: kept, it would
	 * stop retention at it for ever. */
	if (s_received_at(val, vlen, &at) == 0 && at >= d->before_us)
		return 1;
	if (d->n == d->max) {
		d->more = 1;
		return 1;
	}
	d->ids[d->n] = yj_be64_get(key);
	d->lens[d->n] = vlen;
	d->n++;
	return 0;
}

static void s_format_utc(int64_t us, char *buf, size_t size)
{
	struct tm tm;
	yj_tz_utc(us / 1000000, &tm);
	if (us < 0 || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "%" PRId64 " us", us);
}

int yj_quarantine_expire(struct yj_txn *txn, int64_t before_us, size_t max, int64_t now_us,
			 struct yj_quarantine_expiry *out)
{
	struct s_due d = { NULL, NULL, 0, max, before_us, 0 };
	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	char reason[200], cut[40];
	uint64_t total = 0;
	int rc = 0;

	if (!out || !max)
		return yj_txn_refuse(txn);
	memset(out, 0, sizeof(*out));
	d.ids = malloc(max * sizeof(*d.ids));
	d.lens = malloc(max * sizeof(*d.lens));
	if (!d.ids || !d.lens) {
		rc = YJ_ENOMEM;
		goto out;
	}
	/* Collected first, erased after: a cursor walk must not see its table change. */
	if ((rc = yj_txn_iter(txn, YJ_DB_QUARANTINE, NULL, 0, 0, s_due_cb, &d)) || !d.n)
		goto out;
	if ((rc = s_bytes(txn, &total)))
		goto out;
	for (size_t i = 0; i < d.n; i++) {
		uint64_t before = total;
		if ((rc = s_del(txn, d.ids[i], d.lens[i], &total)))
			goto out;
		out->bytes += before - total;
	}
	if ((rc = s_meta_put(txn, S_META_BYTES, total)) || (rc = s_meta_add(txn, S_META_EXPIRED, d.n)))
		goto out;
	out->erased = d.n;
	out->first_id = d.ids[0];
	out->last_id = d.ids[d.n - 1];
	out->more = d.more;
	s_format_utc(before_us, cut, sizeof(cut));
	snprintf(reason, sizeof(reason), "quarantine retention: erased %zu, ids %" PRIu64 "-%" PRIu64
		 ", received before %s", d.n, out->first_id, out->last_id, cut);
	a.has_at_us = 1;
	a.at_us = now_us;
	a.action = (char *)"erasure";
	a.actor = (char *)"yjlinkd";
	a.recipient = (char *)"";
	a.reason = reason;
	rc = yj_audit_append(txn, &a);
out:
	if (rc)
		memset(out, 0, sizeof(*out));
	free(d.ids);
	free(d.lens);
	return rc;
}
