/* db/events.c: see db/events.h. */
#include "db/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "normalise.h"

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
	return yj_events_put_first(txn, seq, keys, record, len, NULL);
}

int yj_events_put_first(struct yj_txn *txn, uint64_t seq, const struct yj_event_keys *keys, const void *record,
			size_t len, struct yj_event_firsts *firsts)
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
	/* The child's index entry counted as it is written: whether this is its
	 * first event costs no lookup of its own. */
	size_t child_events = 0;
	if ((rc = yj_txn_put_dup_count(txn, YJ_DB_CHILD, keys->child_id, strlen(keys->child_id), k, sizeof(k),
				       &child_events)))
		return rc;
	if (firsts)
		*firsts = (struct yj_event_firsts){ .first_contact = child_events == 1 };
	yj_be64_put(tk, yj_time_key(keys->occurred_us));
	/* The seq is the newest: above every other of the same instant. */
	if ((rc = yj_txn_put_dup_high(txn, YJ_DB_TIME, tk, sizeof(tk), k, sizeof(k))))
		return rc;
	if (!keys->custody_key)
		return 0;
	/* Counted like the child's: routing reads a record's other messages
	 * only when it has some. */
	size_t record_events = 0;
	if ((rc = yj_txn_put_dup_count(txn, YJ_DB_CUSTODY, keys->custody_key, strlen(keys->custody_key), k, sizeof(k),
				       &record_events)))
		return rc;
	if (firsts)
		firsts->record_alone = record_events == 1;
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

/* One protobuf varint of [*p, end); -1 when cut or over-long. */
static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t c = *(*p)++;
		r |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* stored_at_us (field 2) and feed (field 3) of a packed yjlink.v1.Record,
 * read off the wire: unpacking the whole event of every record a walk
 * passes would cost a thousand times more. -1 for a damaged record. */
static int s_record_head(const uint8_t *p, size_t len, int64_t *stored_us, const char **feed, size_t *flen)
{
	const uint8_t *end = p + len;
	*stored_us = 0;
	*feed = NULL;
	*flen = 0;
	while (p < end) {
		uint64_t tag, v;
		if (s_varint(&p, end, &tag))
			return -1;
		switch (tag & 7) {
		case 0:
			if (s_varint(&p, end, &v))
				return -1;
			if ((tag >> 3) == 2)
				*stored_us = (int64_t)v;
			break;
		case 1:
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 2:
			if (s_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return -1;
			if ((tag >> 3) == 3) {
				*feed = (const char *)p;
				*flen = (size_t)v;
			}
			p += v;
			break;
		case 5:
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

struct s_feeds_walk {
	struct yj_events_feed_seen *feeds;
	size_t n, missing, left;
	int64_t oldest_us;
	int complete;
};

static int s_feeds_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_feeds_walk *w = arg;
	int64_t at;
	const char *feed;
	size_t flen;
	if (klen != S_SEQ_LEN)
		return 0;
	if (w->left == 0) {
		w->complete = 0;
		return 1;
	}
	w->left--;
	if (s_record_head(val, vlen, &at, &feed, &flen))
		return 0; /* a damaged record says nothing of its feed */
	w->oldest_us = at;
	for (size_t i = 0; feed && i < w->n; i++) {
		struct yj_events_feed_seen *f = &w->feeds[i];
		if (!f->seq && strlen(f->feed) == flen && !memcmp(f->feed, feed, flen)) {
			f->seq = yj_be64_get(key);
			f->stored_us = at;
			if (--w->missing == 0) {
				w->complete = 0;
				return 1;
			}
		}
	}
	return 0;
}

int yj_events_feeds_last(struct yj_txn *txn, uint64_t upto, size_t max_scan, struct yj_events_feed_seen *feeds,
			 size_t n, int64_t *oldest_us, int *complete)
{
	uint8_t k[S_SEQ_LEN];
	struct s_feeds_walk w = { feeds, n, n, max_scan, 0, 1 };
	if (!feeds || !oldest_us || !complete)
		return yj_txn_refuse(txn);
	for (size_t i = 0; i < n; i++) {
		feeds[i].seq = 0;
		feeds[i].stored_us = 0;
	}
	yj_be64_put(k, upto);
	int rc = n ? yj_txn_iter(txn, YJ_DB_EVENTS, k, sizeof(k), 1, s_feeds_cb, &w) : 0;
	*oldest_us = w.oldest_us;
	*complete = w.complete;
	return rc < 0 ? rc : 0;
}

struct s_due {
	int64_t before_us;
	size_t max;
	uint64_t *seqs;          /* owned by the caller */
	size_t n;
	int more;
	uint64_t count, first, last; /* for the count walk */
};

static int s_due_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_due *d = arg;
	int64_t at;
	const char *feed;
	size_t flen;
	if (klen != S_SEQ_LEN)
		return 0;
	/* A damaged record is erased with the others of its time: its seq
	 * says it was stored among them. */
	if (!s_record_head(val, vlen, &at, &feed, &flen) && at >= d->before_us)
		return 1;
	uint64_t seq = yj_be64_get(key);
	if (d->seqs) {
		if (d->n == d->max) {
			d->more = 1;
			return 1;
		}
		d->seqs[d->n++] = seq;
		return 0;
	}
	if (!d->count)
		d->first = seq;
	d->count++;
	d->last = seq;
	return 0;
}

/* The index keys of a stored record, built as ingest built them. */
static int s_erase_one(struct yj_txn *txn, uint64_t seq)
{
	uint8_t k[S_SEQ_LEN], tk[S_SEQ_LEN];
	char key[600];
	const Yjlink__V1__Event *ev;
	int rc = 0;

	yj_be64_put(k, seq);
	Yjlink__V1__Record *r = yj_events_get_record(txn, seq);
	if (r && (ev = r->event) && ev->force && ev->source_id) {
		snprintf(key, sizeof(key), "%s/%s", ev->force, ev->source_id);
		rc = yj_txn_del(txn, YJ_DB_SOURCE, key, strlen(key));
		size_t n = yj_event_child_id(ev, key, sizeof(key));
		if ((!rc || rc == YJ_ENOENT) && n)
			rc = yj_txn_del_dup(txn, YJ_DB_CHILD, key, n, k, sizeof(k));
		if ((!rc || rc == YJ_ENOENT) && ev->occurred_at) {
			yj_be64_put(tk, yj_time_key(ev->occurred_at->unix_us));
			rc = yj_txn_del_dup(txn, YJ_DB_TIME, tk, sizeof(tk), k, sizeof(k));
		}
		if ((!rc || rc == YJ_ENOENT) && ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY && ev->custody &&
		    ev->custody->record_id) {
			snprintf(key, sizeof(key), "%s/%s", ev->force, ev->custody->record_id);
			rc = yj_txn_del_dup(txn, YJ_DB_CUSTODY, key, strlen(key), k, sizeof(k));
		}
	}
	yjlink__v1__record__free_unpacked(r, NULL);
	/* An index entry already gone is no reason to keep the event. */
	if (rc && rc != YJ_ENOENT)
		return rc;
	rc = yj_txn_del(txn, YJ_DB_EVENTS, k, sizeof(k));
	return rc == YJ_ENOENT ? 0 : rc;
}

int yj_events_erase_before(struct yj_txn *txn, int64_t before_us, size_t max, yj_seq_fn on_erase, void *arg,
			   struct yj_events_erased *out)
{
	struct s_due d = { .before_us = before_us, .max = max };
	int rc;

	memset(out, 0, sizeof(*out));
	if (!max)
		return 0;
	if (!(d.seqs = malloc(max * sizeof(*d.seqs))))
		return YJ_ENOMEM;
	if ((rc = yj_txn_iter(txn, YJ_DB_EVENTS, NULL, 0, 0, s_due_cb, &d)) < 0)
		goto out;
	rc = 0;
	for (size_t i = 0; i < d.n; i++) {
		if (on_erase && (rc = on_erase(arg, d.seqs[i])) < 0)
			goto out;
		if ((rc = s_erase_one(txn, d.seqs[i])))
			goto out;
	}
	out->n = d.n;
	out->first_seq = d.n ? d.seqs[0] : 0;
	out->last_seq = d.n ? d.seqs[d.n - 1] : 0;
	out->more = d.more;
out:
	free(d.seqs);
	return rc;
}

int yj_events_count_before(struct yj_txn *txn, int64_t before_us, uint64_t *n, uint64_t *first, uint64_t *last)
{
	struct s_due d = { .before_us = before_us };
	int rc = yj_txn_iter(txn, YJ_DB_EVENTS, NULL, 0, 0, s_due_cb, &d);
	if (rc < 0)
		return rc;
	*n = d.count;
	*first = d.first;
	*last = d.last;
	return 0;
}
