/* db/digests.h: what each YJS's daily digest is made of and where it
 * stands. Only db/digests.c reads or writes YJ_DB_DIGEST, YJ_DB_DIGEST_LOG
 * and the digest states in YJ_DB_META.
 *
 * Layout: "<yjs id>\0" + seq (be64) -> rule id (DUPSORT): an event routed to
 * that YJS's digest by a rule; "<yjs id>\0" + scheduled time (be64, sign
 * flipped) -> packed yjlink.v1.Digest: every digest planned; meta
 * "digest.state.<yjs id>" -> packed yjlink.v1.DigestState.
 *
 * Ownership: returned messages are the caller's (free_unpacked); those
 * passed to callbacks are borrowed for the call.
 */
#ifndef YJ_DB_DIGESTS_H
#define YJ_DB_DIGESTS_H

#include <stdint.h>

#include "store.h"
#include "yjlink.pb-c.h"

/* Event seq goes into the digest of yjs, by rule. */
int yj_digests_add(struct yj_txn *txn, const char *yjs, uint64_t seq, const char *rule);

/* The same for n rules at once (n >= 1): one entry holding them all (its
 * rules NUL-separated), where one a rule took a value of its own under the
 * key (a second value under a DUPSORT key is LMDB's costliest put). Read
 * back one rule at a time, in name order, as separate entries were. */
int yj_digests_add_rules(struct yj_txn *txn, const char *yjs, uint64_t seq, const char *const *rules, size_t n);

/* Every (seq, rule) of yjs's digest entries with after < seq <= upto, by
 * seq (0 go on, 1 stop, <0 fail). rule is NUL-terminated, borrowed. */
typedef int (*yj_digest_entry_fn)(void *arg, uint64_t seq, const char *rule);
int yj_digests_entries(struct yj_txn *txn, const char *yjs, uint64_t after, uint64_t upto, yj_digest_entry_fn fn,
		       void *arg);

/* The state of yjs, or NULL when it has none yet. */
Yjlink__V1__DigestState *yj_digests_state_get(struct yj_txn *txn, const char *yjs);
/* Write st (st->yjs names the YJS). */
int yj_digests_state_put(struct yj_txn *txn, const Yjlink__V1__DigestState *st);

/* Record digest d (by d->yjs and d->scheduled_us), replacing what was there. */
int yj_digests_log_put(struct yj_txn *txn, const Yjlink__V1__Digest *d);
/* The digest of yjs scheduled at scheduled_us, or NULL. */
Yjlink__V1__Digest *yj_digests_log_get(struct yj_txn *txn, const char *yjs, int64_t scheduled_us);
typedef int (*yj_digest_fn)(void *arg, const Yjlink__V1__Digest *d);
/* Every digest of yjs, oldest first. */
int yj_digests_log_each(struct yj_txn *txn, const char *yjs, yj_digest_fn fn, void *arg);

/* Retention: the digest entry of event seq for YJS yjs, if any (0 or YJ_ENOENT). */
int yj_digests_erase_entry(struct yj_txn *txn, const char *yjs, uint64_t seq);

#endif
