/* db/notes.h: notifications waiting, failed or without a destination: the
 * transactional outbox's tables. Only db/notes.c reads or writes
 * YJ_DB_OUTBOX, YJ_DB_OUTBOX_RCPT, YJ_DB_DLQ, YJ_DB_UNROUTABLE and the
 * notification counter in YJ_DB_META.
 *
 * Layout: number (be64) -> packed yjlink.v1.Notification in each of the
 * three queues; the outbox also has "<recipient id>\0" + number (be64) -> ""
 * so that each recipient's jobs are read in number order. Every job of the
 * one delivery engine is a Notification: an event notification (seq set) or
 * a daily digest (digest set). A job is in exactly one queue.
 *
 * Ownership: returned Notifications are the caller's
 * (yjlink__v1__notification__free_unpacked); those passed to callbacks are
 * borrowed for the call.
 */
#ifndef YJ_DB_NOTES_H
#define YJ_DB_NOTES_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "yjlink.pb-c.h"

enum yj_note_queue {
	YJ_NOTES_OUTBOX = 0,   /* waiting for (another) delivery attempt */
	YJ_NOTES_DLQ,          /* failed for good, or too old: an operator retries or drops */
	YJ_NOTES_UNROUTABLE,   /* its recipient has no destination (yet) */
};

/* Take the next notification number (1, 2, ...; never reused). */
int yj_notes_next_number(struct yj_txn *txn, uint64_t *number);

/* Write n (under n->number) into queue q, replacing what was there; the
 * outbox's per-recipient index follows. n->recipient must be set. */
int yj_notes_put(struct yj_txn *txn, enum yj_note_queue q, const Yjlink__V1__Notification *n);
/* yj_notes_put for a notification whose number yj_notes_next_number()
 * handed out in this transaction (never stored before): the same, without
 * looking for an earlier version to unindex. */
int yj_notes_put_new(struct yj_txn *txn, enum yj_note_queue q, const Yjlink__V1__Notification *n);

/* n encoded as protobuf-c packs it, byte for byte, into buf (cap bytes):
 * the length, or 0 when it does not fit or has a part left to protobuf-c
 * (a digest, a report, unknown fields). For the hot path of
 * yj_notes_put_new; exposed so that its test can compare the two. */
size_t yj_notes_pack_plain(const Yjlink__V1__Notification *n, uint8_t *buf, size_t cap);

/* Number's job in queue q, or NULL (absent or undecodable). */
Yjlink__V1__Notification *yj_notes_get(struct yj_txn *txn, enum yj_note_queue q, uint64_t number);

/* Take number out of queue q (and out of the index). YJ_ENOENT if absent. */
int yj_notes_del(struct yj_txn *txn, enum yj_note_queue q, uint64_t number);

typedef int (*yj_note_fn)(void *arg, const Yjlink__V1__Notification *n);
/* Every job of queue q in number order (0 go on, 1 stop, <0 fail). */
int yj_notes_each(struct yj_txn *txn, enum yj_note_queue q, yj_note_fn fn, void *arg);
/* Jobs in queue q, in O(1). */
int yj_notes_count(struct yj_txn *txn, enum yj_note_queue q, uint64_t *n);

/* The outbox by recipient: the first recipient id after `after` (NULL: the
 * first of all) that has jobs, into buf. YJ_ENOENT when there is none,
 * YJ_ERANGE when the id does not fit in size bytes. */
int yj_notes_next_recipient(struct yj_txn *txn, const char *after, char *buf, size_t size);
/* The lowest outbox job number >= from of recipient. YJ_ENOENT when none. */
int yj_notes_recipient_next(struct yj_txn *txn, const char *recipient, uint64_t from, uint64_t *number);

/* When an outbox job is due, as its index entry says (the job's
 * not_before_us and next_attempt_us, 0 when unset); known 0 for an entry
 * written by a version that did not keep them: read the job. */
struct yj_note_when {
	int known;
	int64_t not_before_us, next_attempt_us;
};
/* yj_notes_recipient_next, with the job's times from the index into *when
 * (may be NULL). */
int yj_notes_recipient_next_when(struct yj_txn *txn, const char *recipient, uint64_t from, uint64_t *number,
				 struct yj_note_when *when);
typedef int (*yj_note_rcpt_fn)(void *arg, uint64_t number, const struct yj_note_when *when);
/* Recipient's outbox jobs numbered from `from` up, in number order, on one
 * cursor (fn: 0 go on, 1 stop, <0 fail). */
int yj_notes_recipient_each(struct yj_txn *txn, const char *recipient, uint64_t from, yj_note_rcpt_fn fn, void *arg);

#endif
