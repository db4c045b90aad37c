/* db/quarantine.h: refused input kept for an operator (interfaces.md §1,
 * §6). Only db/quarantine.c reads or writes YJ_DB_QUARANTINE: id (be64) ->
 * packed yjlink.v1.Quarantined. Ids only grow, also across erasure.
 *
 * Quota and retention (docs/limits.md): the quarantine's size is kept as a
 * running total in YJ_DB_META ("quarantine.bytes", be64: every entry's key
 * and value bytes, what LMDB is asked to keep, page overhead not counted),
 * changed in the same transaction as every put and del, so it is always the
 * exact sum of what is stored. A store written before the total existed gets
 * it counted once, by a walk, at the first write that needs it. Two more
 * counters there ("quarantine.dropped", "quarantine.expired", be64) say how
 * many refused messages were not kept for want of room, and how many entries
 * retention erased, over the store's life.
 *
 * Ownership: returned messages are the caller's
 * (yjlink__v1__quarantined__free_unpacked).
 */
#ifndef YJ_DB_QUARANTINE_H
#define YJ_DB_QUARANTINE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "yjlink.pb-c.h"

/* Store q under the next id (q->id is set here), returned in *id; the byte
 * total grows by the entry's size. No quota: see yj_quarantine_put_within. */
int yj_quarantine_put(struct yj_txn *txn, Yjlink__V1__Quarantined *q, uint64_t *id);

/* The same, only if the byte total stays within max_bytes with q in it.
 * Otherwise nothing is stored, q is left as it was, "quarantine.dropped"
 * grows by one and *id is 0 (ids start at 1). Returns 0 either way, or a
 * store error. */
int yj_quarantine_put_within(struct yj_txn *txn, Yjlink__V1__Quarantined *q, uint64_t max_bytes, uint64_t *id);

/* The entry id, or NULL (absent or undecodable). */
Yjlink__V1__Quarantined *yj_quarantine_get(struct yj_txn *txn, uint64_t id);
/* Erase entry id (the byte total shrinks by its size); YJ_ENOENT when absent. */
int yj_quarantine_del(struct yj_txn *txn, uint64_t id);

/* Called per entry (borrowed: valid during the call); 0 go on, 1 stop, <0 fail. */
typedef int (*yj_quarantine_fn)(void *arg, uint64_t id, const Yjlink__V1__Quarantined *q);
/* Every entry; reverse = newest first. */
int yj_quarantine_each(struct yj_txn *txn, int reverse, yj_quarantine_fn fn, void *arg);
int yj_quarantine_count(struct yj_txn *txn, uint64_t *n);

/* What the quarantine holds, and what it did not keep. */
struct yj_quarantine_usage {
	uint64_t entries;            /* entries stored */
	uint64_t bytes;              /* their keys and values: what quarantine.max_bytes is held to */
	uint64_t dropped;            /* refused messages not kept because the quota was reached, ever */
	uint64_t expired;            /* entries erased by retention, ever */
};

/* Fill *u (read or write transaction). On a store that has no byte total
 * yet (written by an older yjlinkd) a read transaction counts it by a walk.
 * Returns 0 or a store error. */
int yj_quarantine_usage(struct yj_txn *txn, struct yj_quarantine_usage *u);

/* What one call of yj_quarantine_expire erased. */
struct yj_quarantine_expiry {
	uint64_t erased;             /* entries erased */
	uint64_t first_id, last_id;  /* the lowest and highest id erased (0 when none) */
	uint64_t bytes;              /* bytes they took */
	int more;                    /* 1: stopped at max; the next entry may be due as well */
};

/* Retention: erase, oldest id first, at most max (> 0) entries received
 * before before_us, stopping at the first entry received at or after it
 * (ids grow with time; after the clock was set back, an older entry behind
 * a younger one waits until that one is due too). When any was erased,
 * append in the same transaction one audit record: action "erasure", actor
 * "yjlinkd", at now_us, its reason naming the count, the id range and the
 * cut-off: never anything of the entries themselves. So no entry vanishes
 * unrecorded, and one call holds the writer for a bounded time. Returns 0
 * (also when nothing was due), YJ_EINVAL for max 0, or a store error. */
int yj_quarantine_expire(struct yj_txn *txn, int64_t before_us, size_t max, int64_t now_us,
			 struct yj_quarantine_expiry *out);

#endif
