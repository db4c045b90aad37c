/* db/events.h: the stored events and their indexes (one owner per stored
 * entity, after Knot's kasp_db.c). Only db/events.c builds or reads the keys
 * of YJ_DB_EVENTS, YJ_DB_SOURCE, YJ_DB_CHILD, YJ_DB_TIME and YJ_DB_CUSTODY.
 *
 * Layout: seq (be64) -> packed yjlink.v1.Record; "<force>/<source_id>" ->
 * seq + 16-byte content hash (idempotency); "<force>/<person_id>" -> seq
 * (DUPSORT|DUPFIXED); occurred_at (be64, sign-flipped) -> seq
 * (DUPSORT|DUPFIXED); "<force>/<record_id>" -> seq (DUPSORT|DUPFIXED) for
 * custody records.
 *
 * Ownership: records returned by yj_events_get_record() are the caller's
 * (yjlink__v1__record__free_unpacked); raw pointers from yj_events_get()
 * point into the map and live until the transaction ends.
 */
#ifndef YJ_DB_EVENTS_H
#define YJ_DB_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "yjlink.pb-c.h"

/* The index entries of one event. */
struct yj_event_keys {
	const char *source_key;   /* "<force>/<source_id>" */
	const uint8_t *hash;      /* 16-byte hash of the normalised event */
	const char *child_id;     /* "<force>/<person_id>" */
	int64_t occurred_us;      /* occurred_at, UTC microseconds */
	const char *custody_key;  /* "<force>/<record_id>", NULL for other feeds */
};

/* Idempotency record: the event a (force, source_id) pair was stored as. */
struct yj_source_ref {
	uint64_t seq;
	uint8_t hash[16];
};

/* The next event sequence number (last + 1, never reusing an erased one).
 * Within one transaction each call after a put returns the next one. */
int yj_events_next_seq(struct yj_txn *txn, uint64_t *seq);

/* Store the packed Record under seq (yj_events_next_seq's) with every index
 * entry of keys. YJ_EINVAL for a missing or over-long key (over-long or
 * empty: the transaction fails, as for any key the store refuses).
 * YJ_EEXIST when source_key is stored already: then nothing is written and
 * the transaction goes on (yj_txn_put_new), so a caller that did not look
 * first with yj_events_find_source() may still decide. */
int yj_events_put(struct yj_txn *txn, uint64_t seq, const struct yj_event_keys *keys, const void *record,
		  size_t len);
/* What yj_events_put_first learns from the child and custody indexes as
 * it writes them, at no lookup of its own. */
struct yj_event_firsts {
	int first_contact;  /* no event of this child was stored before (yj_events_child_known() was 0) */
	int record_alone;   /* a custody event, and the only one stored of its record */
};

/* yj_events_put, and *firsts (NULL: not wanted). */
int yj_events_put_first(struct yj_txn *txn, uint64_t seq, const struct yj_event_keys *keys, const void *record,
			size_t len, struct yj_event_firsts *firsts);

/* The packed Record of seq (pointing into the map). YJ_ENOENT if absent. */
int yj_events_get(struct yj_txn *txn, uint64_t seq, const void **record, size_t *len);

/* The unpacked Record of seq, or NULL when absent or undecodable. Caller frees. */
Yjlink__V1__Record *yj_events_get_record(struct yj_txn *txn, uint64_t seq);

/* YJ_ENOENT when this (force, source_id) was never stored; YJ_ESTORE for a
 * damaged index entry. */
int yj_events_find_source(struct yj_txn *txn, const char *source_key, struct yj_source_ref *out);

/* 1 when the child has any stored event, 0 when none, <0 on error. */
int yj_events_child_known(struct yj_txn *txn, const char *child_id);

/* Called per seq; return 0 to go on, 1 to stop (not an error), <0 to fail. */
typedef int (*yj_seq_fn)(void *arg, uint64_t seq);

/* Every event of one child, ascending seq. */
int yj_events_of_child(struct yj_txn *txn, const char *child_id, yj_seq_fn fn, void *arg);
/* Every message of one custody record, ascending seq. */
int yj_events_of_custody(struct yj_txn *txn, const char *custody_key, yj_seq_fn fn, void *arg);
/* Events with occurred_at >= since_us, in occurred_at order. */
int yj_events_since(struct yj_txn *txn, int64_t since_us, yj_seq_fn fn, void *arg);
/* Every event, by seq; reverse = newest first. */
int yj_events_each(struct yj_txn *txn, int reverse, yj_seq_fn fn, void *arg);

/* The highest seq stored (0 when none) and the lowest (0 when none). */
int yj_events_last_seq(struct yj_txn *txn, uint64_t *seq);
int yj_events_first_seq(struct yj_txn *txn, uint64_t *seq);
/* Events stored, in O(1). */
int yj_events_count(struct yj_txn *txn, uint64_t *n);

/* The last seq stored at or before t_us (0 if none): a binary search, since
 * stored_at grows with seq; an erased seq counts as stored long ago. */
uint64_t yj_events_seq_at(struct yj_txn *txn, int64_t t_us);

/* Retention: what one call of yj_events_erase_before() erased. */
struct yj_events_erased {
	uint64_t n;              /* events erased */
	uint64_t first_seq;      /* the lowest and highest of them (0 when none) */
	uint64_t last_seq;
	int more;                /* it stopped at max with more due */
};

/* Erase the oldest events stored before before_us, at most max, with every
 * index entry of each (source, child, time, custody); for each, before it
 * goes, on_erase(arg, seq) may erase what refers to it elsewhere (<0
 * fails the transaction). Events are erased in seq order, which is the
 * order they were stored in; an erased seq is never used again. */
int yj_events_erase_before(struct yj_txn *txn, int64_t before_us, size_t max, yj_seq_fn on_erase, void *arg,
			   struct yj_events_erased *out);
/* How many events are stored before before_us (for purge --dry-run), and
 * the range of their seqs. */
int yj_events_count_before(struct yj_txn *txn, int64_t before_us, uint64_t *n, uint64_t *first, uint64_t *last);

/* Feed health: the newest event of a feed. */
struct yj_events_feed_seen {
	const char *feed;   /* in: the feed's name ("custody"); borrowed */
	uint64_t seq;       /* out: its newest event with seq <= upto, 0 when none was found */
	int64_t stored_us;  /* out: when that event was stored */
};

/* For each of the n feeds, the newest event of that feed stored at or
 * before seq upto: a walk down from upto that reads only each record's
 * bookkeeping (stored_at_us, feed), never its event, and stops when every
 * feed is found or after max_scan events. *complete is 1 when the walk went
 * down to the first event stored (a feed not found then never delivered),
 * else *oldest_us is the stored time of the oldest event looked at (a feed
 * not found delivered nothing since then). Returns 0 or a store error. */
int yj_events_feeds_last(struct yj_txn *txn, uint64_t upto, size_t max_scan, struct yj_events_feed_seen *feeds,
			 size_t n, int64_t *oldest_us, int *complete);

#endif
