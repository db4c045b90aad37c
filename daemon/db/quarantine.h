/* db/quarantine.h: refused input kept for an operator (interfaces.md §1,
 * §6). Only db/quarantine.c reads or writes YJ_DB_QUARANTINE: id (be64) ->
 * packed yjlink.v1.Quarantined. Ids only grow, also across erasure.
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

/* Store q under the next id (q->id is set here), returned in *id. */
int yj_quarantine_put(struct yj_txn *txn, Yjlink__V1__Quarantined *q, uint64_t *id);
/* The entry id, or NULL (absent or undecodable). */
Yjlink__V1__Quarantined *yj_quarantine_get(struct yj_txn *txn, uint64_t id);
/* Erase entry id; YJ_ENOENT when absent. */
int yj_quarantine_del(struct yj_txn *txn, uint64_t id);

/* Called per entry (borrowed: valid during the call); 0 go on, 1 stop, <0 fail. */
typedef int (*yj_quarantine_fn)(void *arg, uint64_t id, const Yjlink__V1__Quarantined *q);
/* Every entry; reverse = newest first. */
int yj_quarantine_each(struct yj_txn *txn, int reverse, yj_quarantine_fn fn, void *arg);
int yj_quarantine_count(struct yj_txn *txn, uint64_t *n);

#endif
