/* db/holds.h: events held for the officer in the case (routing.md "Live
 * investigations") and who has had each event. Only db/holds.c reads or
 * writes YJ_DB_HOLDS (seq (be64) -> packed yjlink.v1.Hold) and
 * YJ_DB_DISCLOSED (seq (be64) + recipient id -> "").
 *
 * Ownership: returned Holds are the caller's (yjlink__v1__hold__free_unpacked).
 */
#ifndef YJ_DB_HOLDS_H
#define YJ_DB_HOLDS_H

#include <stdint.h>

#include "store.h"
#include "yjlink.pb-c.h"

/* Hold event seq from now on. */
int yj_holds_put(struct yj_txn *txn, uint64_t seq, int64_t held_at_us);
/* Write hold h (h->seq set) whole: a new hold with its markers and
 * officer, or one changed (escalated). YJ_EINVAL without a seq. */
int yj_holds_store(struct yj_txn *txn, const Yjlink__V1__Hold *h);

/* 1 while event seq is held (not released), else 0. */
int yj_holds_is_held(struct yj_txn *txn, uint64_t seq);
/* The hold of seq, or NULL when it has none. */
Yjlink__V1__Hold *yj_holds_get(struct yj_txn *txn, uint64_t seq);
/* Release the hold of seq, recording the name given (by), who asked
 * through the control socket (actor, "uid:1000") and why: YJ_ENOENT when
 * not held at all, YJ_EEXIST when already released (nothing written). */
int yj_holds_release(struct yj_txn *txn, uint64_t seq, int64_t at_us, const char *by, const char *actor,
		     const char *reason);

typedef int (*yj_hold_fn)(void *arg, const Yjlink__V1__Hold *h);
/* Every hold, by seq (borrowed during the call; 0 go on, 1 stop, <0 fail). */
int yj_holds_each(struct yj_txn *txn, yj_hold_fn fn, void *arg);

/* Record that recipient has had event seq (hold release goes to them). */
int yj_disclosed_add(struct yj_txn *txn, uint64_t seq, const char *recipient);
typedef int (*yj_recipient_fn)(void *arg, const char *recipient);
/* Every recipient that has had seq. */
int yj_disclosed_each(struct yj_txn *txn, uint64_t seq, yj_recipient_fn fn, void *arg);

/* Retention: the hold of seq and every "who has had it" row, if any.
 * Returns how many rows went, or <0. */
int yj_holds_erase_event(struct yj_txn *txn, uint64_t seq);

#endif
