/* db/audit.c: see db/audit.h. */
#include "db/audit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define S_HASH 32
/* The newest record's number and hash: a chain alone cannot show that its
 * last records were cut off, this can. */
#define S_META_HEAD "audit.head"
#define S_META_BASE "audit.base" /* number (be64) + hash of the last record retention erased */

static int s_hash(Yjlink__V1__AuditRecord *rec, uint8_t out[S_HASH])
{
	ProtobufCBinaryData keep = rec->hash;
	protobuf_c_boolean had = rec->has_hash;
	rec->has_hash = 0;
	rec->hash.data = NULL;
	rec->hash.len = 0;
	size_t len = protobuf_c_message_get_packed_size(&rec->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		rec->hash = keep;
		rec->has_hash = had;
		return YJ_ENOMEM;
	}
	protobuf_c_message_pack(&rec->base, buf);
	crypto_generichash(out, S_HASH, buf, len, NULL, 0);
	free(buf);
	rec->hash = keep;
	rec->has_hash = had;
	return 0;
}

struct s_last {
	uint8_t hash[S_HASH];
	int found;
};

static int s_last_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_last *l = arg;
	(void)key;
	(void)klen;
	Yjlink__V1__AuditRecord *r = yjlink__v1__audit_record__unpack(NULL, vlen, val);
	if (r && r->has_hash && r->hash.len == S_HASH) {
		memcpy(l->hash, r->hash.data, S_HASH);
		l->found = 1;
	}
	yjlink__v1__audit_record__free_unpacked(r, NULL);
	return 1;
}

int yj_audit_append(struct yj_txn *txn, Yjlink__V1__AuditRecord *rec)
{
	uint64_t last = 0;
	struct s_last l = { { 0 }, 0 };
	uint8_t k[8], h[S_HASH], head[8 + S_HASH];
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (!rec)
		return yj_txn_refuse(txn);
	if ((rc = yj_txn_last_u64(txn, YJ_DB_AUDIT, &last)))
		goto out;
	if (last && (rc = yj_txn_iter(txn, YJ_DB_AUDIT, NULL, 0, 1, s_last_cb, &l)) < 0)
		goto out;
	if (!last) {
		/* Retention may have erased every record: the chain goes on from
		 * its base, never from 1 again. */
		const void *base;
		size_t blen;
		rc = yj_txn_get(txn, YJ_DB_META, S_META_BASE, strlen(S_META_BASE), &base, &blen);
		if (rc == 0 && blen == 8 + S_HASH) {
			last = yj_be64_get(base);
			memcpy(l.hash, (const uint8_t *)base + 8, S_HASH);
		} else if (rc != YJ_ENOENT) {
			rc = rc ? rc : YJ_ESTORE;
			goto out;
		}
		rc = 0;
	}
	rec->has_number = 1;
	rec->number = last + 1;
	rec->has_prev_hash = 1;
	rec->prev_hash.data = l.hash;
	rec->prev_hash.len = S_HASH;
	if ((rc = s_hash(rec, h)))
		goto out;
	rec->has_hash = 1;
	rec->hash.data = h;
	rec->hash.len = S_HASH;
	len = protobuf_c_message_get_packed_size(&rec->base);
	if (!(buf = malloc(len))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	protobuf_c_message_pack(&rec->base, buf);
	yj_be64_put(k, rec->number);
	if ((rc = yj_txn_append(txn, YJ_DB_AUDIT, k, 8, buf, len)))
		goto out;
	memcpy(head, k, 8);
	memcpy(head + 8, h, S_HASH);
	rc = yj_txn_put(txn, YJ_DB_META, S_META_HEAD, strlen(S_META_HEAD), head, sizeof(head));
out:
	/* The hashes were this call's locals: none may outlive it in rec. */
	rec->prev_hash.data = NULL;
	rec->prev_hash.len = 0;
	rec->hash.data = NULL;
	rec->hash.len = 0;
	rec->has_prev_hash = rec->has_hash = 0;
	free(buf);
	return rc;
}

struct s_verify {
	uint8_t prev[S_HASH];
	uint64_t expect;   /* next number */
	uint64_t checked;
	uint64_t bad;
	uint64_t base;     /* number of the last record erased (0 none) */
	uint8_t base_hash[S_HASH];
	uint64_t want;     /* a record whose hash to keep, when verified (0 none) */
	uint8_t want_hash[S_HASH];
	int want_found;
};

static int s_verify_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_verify *v = arg;
	uint8_t h[S_HASH];
	uint64_t n = klen == 8 ? yj_be64_get(key) : 0;
	Yjlink__V1__AuditRecord *r = yjlink__v1__audit_record__unpack(NULL, vlen, val);
	int ok = r && n == v->expect && r->number == n && r->has_prev_hash && r->prev_hash.len == S_HASH &&
		 !memcmp(r->prev_hash.data, v->prev, S_HASH) && r->has_hash && r->hash.len == S_HASH &&
		 s_hash(r, h) == 0 && !memcmp(h, r->hash.data, S_HASH);
	if (ok)
		memcpy(v->prev, r->hash.data, S_HASH);
	yjlink__v1__audit_record__free_unpacked(r, NULL);
	if (!ok) {
		v->bad = n ? n : v->expect;
		return YJ_ESTORE;
	}
	if (n == v->want) {
		memcpy(v->want_hash, v->prev, S_HASH);
		v->want_found = 1;
	}
	v->checked++;
	v->expect++;
	return 0;
}

/* The whole chain from its base to audit.head, into v (v->want set by the
 * caller). 0 intact, YJ_ESTORE with v->bad. */
static int s_walk(struct yj_txn *txn, struct s_verify *v)
{
	const void *base;
	size_t blen;
	v->expect = 1;
	/* After retention the chain starts at its base: the record after the
	 * last one erased must follow that one's hash. */
	int rc = yj_txn_get(txn, YJ_DB_META, S_META_BASE, strlen(S_META_BASE), &base, &blen);
	if (rc == 0 && blen == 8 + S_HASH) {
		v->base = yj_be64_get(base);
		memcpy(v->base_hash, (const uint8_t *)base + 8, S_HASH);
		v->expect = v->base + 1;
		memcpy(v->prev, v->base_hash, S_HASH);
	} else if (rc != YJ_ENOENT) {
		v->bad = 1;
		return YJ_ESTORE;
	}
	rc = yj_txn_iter(txn, YJ_DB_AUDIT, NULL, 0, 0, s_verify_cb, v);
	if (rc < 0)
		return YJ_ESTORE;
	const void *head;
	size_t hlen;
	rc = yj_txn_get(txn, YJ_DB_META, S_META_HEAD, strlen(S_META_HEAD), &head, &hlen);
	if (rc == YJ_ENOENT)
		return v->checked ? YJ_ESTORE : 0;
	if (rc || hlen != 8 + S_HASH || yj_be64_get(head) != v->expect - 1 ||
	    memcmp((const uint8_t *)head + 8, v->prev, S_HASH)) {
		v->bad = v->expect;  /* records after the last one seen are missing */
		return YJ_ESTORE;
	}
	return 0;
}

int yj_audit_verify(struct yj_txn *txn, uint64_t *checked, uint64_t *bad)
{
	struct s_verify v = { .want = 0 };
	if (!checked || !bad)
		return yj_txn_refuse(txn);
	int rc = s_walk(txn, &v);
	*checked = v.checked;
	*bad = rc ? v.bad : 0;
	return rc;
}

int yj_audit_head(struct yj_txn *txn, uint64_t *number, uint8_t hash[S_HASH])
{
	const void *head;
	size_t hlen;
	if (!number || !hash)
		return yj_txn_refuse(txn);
	*number = 0;
	memset(hash, 0, S_HASH);
	int rc = yj_txn_get(txn, YJ_DB_META, S_META_HEAD, strlen(S_META_HEAD), &head, &hlen);
	if (rc == YJ_ENOENT)
		return 0;
	if (rc)
		return rc;
	if (hlen != 8 + S_HASH)
		return YJ_ESTORE;
	*number = yj_be64_get(head);
	memcpy(hash, (const uint8_t *)head + 8, S_HASH);
	return 0;
}

int yj_audit_verify_anchor(struct yj_txn *txn, uint64_t number, const uint8_t hash[S_HASH], struct yj_audit_anchor *out)
{
	struct s_verify v = { .want = number };
	uint8_t head_hash[S_HASH];
	if (!hash || !out)
		return yj_txn_refuse(txn);
	memset(out, 0, sizeof(*out));
	int rc = s_walk(txn, &v);
	out->checked = v.checked;
	out->base = v.base;
	if (rc) {
		out->result = YJ_AUDIT_ANCHOR_BROKEN;
		out->bad = v.bad;
		return YJ_ESTORE;
	}
	/* The walk matched audit.head: it is the chain's last record. */
	if ((rc = yj_audit_head(txn, &out->head, head_hash)))
		return rc;
	if (number < v.base) {
		out->result = YJ_AUDIT_ANCHOR_ERASED;
	} else if (number == v.base) {
		/* The base is the last record erased (or, with none, the zeros the
		 * first record follows): the chain after it is verified from it. */
		memcpy(out->found, v.base_hash, S_HASH);
		out->result = memcmp(v.base_hash, hash, S_HASH) ? YJ_AUDIT_ANCHOR_DIFFERENT : YJ_AUDIT_ANCHOR_PROVEN;
	} else if (!v.want_found) {
		out->result = YJ_AUDIT_ANCHOR_MISSING;
	} else {
		memcpy(out->found, v.want_hash, S_HASH);
		out->result = memcmp(v.want_hash, hash, S_HASH) ? YJ_AUDIT_ANCHOR_DIFFERENT : YJ_AUDIT_ANCHOR_PROVEN;
	}
	return out->result == YJ_AUDIT_ANCHOR_PROVEN ? 0 : YJ_ESTORE;
}

void yj_audit_hex(const uint8_t hash[S_HASH], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < S_HASH; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 15];
	}
	out[2 * S_HASH] = '\0';
}

static int s_xdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int yj_audit_parse_anchor(const char *s, uint64_t *number, uint8_t hash[S_HASH])
{
	uint64_t n = 0;
	const char *p = s;
	if (!s || !number || !hash || *p < '0' || *p > '9')
		return YJ_EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return YJ_EINVAL;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (*p++ != ':' || strlen(p) != 2 * S_HASH)
		return YJ_EINVAL;
	for (size_t i = 0; i < S_HASH; i++) {
		int hi = s_xdigit(p[2 * i]), lo = s_xdigit(p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return YJ_EINVAL;
		hash[i] = (uint8_t)(hi << 4 | lo);
	}
	*number = n;
	return 0;
}

struct s_each {
	yj_audit_fn fn;
	void *arg;
};

static int s_each_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_each *e = arg;
	(void)key;
	(void)klen;
	Yjlink__V1__AuditRecord *r = yjlink__v1__audit_record__unpack(NULL, vlen, val);
	/* An undecodable record is for yj_audit_verify() to report; a listing
	 * shows the others. */
	if (!r)
		return 0;
	int rc = e->fn(e->arg, r);
	yjlink__v1__audit_record__free_unpacked(r, NULL);
	return rc;
}

int yj_audit_each(struct yj_txn *txn, int reverse, yj_audit_fn fn, void *arg)
{
	struct s_each e = { fn, arg };
	if (!fn)
		return yj_txn_refuse(txn);
	return yj_txn_iter(txn, YJ_DB_AUDIT, NULL, 0, reverse, s_each_cb, &e);
}

struct s_old {
	int64_t before_us;
	size_t max, n;
	uint64_t *numbers;      /* owned by the caller */
	uint8_t last_hash[S_HASH];
	int more;
};

static int s_old_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_old *o = arg;
	if (klen != 8)
		return 1;
	Yjlink__V1__AuditRecord *r = yjlink__v1__audit_record__unpack(NULL, vlen, val);
	/* An undecodable record is not erased: verify must still see it. */
	int due = r && r->at_us < o->before_us && r->has_hash && r->hash.len == S_HASH;
	if (due && o->n == o->max) {
		o->more = 1;
		due = 0;
	} else if (due) {
		o->numbers[o->n++] = yj_be64_get(key);
		memcpy(o->last_hash, r->hash.data, S_HASH);
	}
	yjlink__v1__audit_record__free_unpacked(r, NULL);
	return due ? 0 : 1;
}

int yj_audit_erase_before(struct yj_txn *txn, int64_t before_us, size_t max, uint64_t *erased, uint64_t *first,
			  uint64_t *last, int *more)
{
	struct s_old o = { .before_us = before_us, .max = max };
	uint8_t k[8], base[8 + S_HASH];
	int rc = 0;

	*erased = *first = *last = 0;
	*more = 0;
	if (!max)
		return 0;
	if (!(o.numbers = malloc(max * sizeof(*o.numbers))))
		return YJ_ENOMEM;
	if ((rc = yj_txn_iter(txn, YJ_DB_AUDIT, NULL, 0, 0, s_old_cb, &o)) < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < o.n; i++) {
		yj_be64_put(k, o.numbers[i]);
		if ((rc = yj_txn_del(txn, YJ_DB_AUDIT, k, sizeof(k))))
			goto out;
	}
	if (o.n) {
		yj_be64_put(base, o.numbers[o.n - 1]);
		memcpy(base + 8, o.last_hash, S_HASH);
		if ((rc = yj_txn_put(txn, YJ_DB_META, S_META_BASE, strlen(S_META_BASE), base, sizeof(base))))
			goto out;
		*erased = o.n;
		*first = o.numbers[0];
		*last = o.numbers[o.n - 1];
	}
	*more = o.more;
out:
	free(o.numbers);
	return rc;
}
